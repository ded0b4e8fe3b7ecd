/* The metrics listener (mx_http.h). One thread, one epoll loop. Every
 * connection reads one request head into a fixed buffer, gets one answer
 * built in full (a scrape is one read of the shards), and either waits for
 * the next request or closes. */
#define _GNU_SOURCE
#include "metrics/mx_http.h"

#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "core/core.h"
#include "metrics/mx_expose.h"

#define HEAD_MAX 8192
#define TOKEN_MAX 1024 /* bytes of a metrics_token_file token */
#define MAX_CONNS 64
#define IO_TIMEOUT_NS (10LL * 1000000000)
#define LINGER_NS (2LL * 1000000000)

typedef struct hconn {
    int fd;
    char in[HEAD_MAX];
    size_t in_len;
    buf out;
    bool close_after; /* close once out is written */
    bool lingering;   /* answer sent, write side shut: discarding input */
    SSL *ssl;         /* NULL: plain HTTP */
    int64_t deadline;
} hconn;

static struct {
    int lfd, evfd, epfd;
    pthread_t thread;
    bool running;
    char *token; /* NULL: no token asked */
    SSL_CTX *tls;  /* NULL: plain HTTP */
    hconn *conns[MAX_CONNS];
} H = {.lfd = -1, .evfd = -1, .epfd = -1};

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void hconn_close(int slot)
{
    hconn *c = H.conns[slot];
    if (c->ssl) {
        ERR_clear_error();
        SSL_free(c->ssl);
    }
    close(c->fd); /* also leaves the epoll set */
    free(c->out.p);
    free(c);
    H.conns[slot] = NULL;
}

static void respond(hconn *c, int status, const char *reason, const char *ctype,
                    const char *extra_headers, const uint8_t *body, size_t len, bool head_only)
{
    char hdr[512];
    int n = snprintf(hdr, sizeof hdr,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s%s\r\n",
                     status, reason, ctype, len, extra_headers ? extra_headers : "",
                     c->close_after ? "Connection: close\r\n" : "");
    if (buf_append(&c->out, hdr, (size_t)n) < 0 ||
        (!head_only && len && buf_append(&c->out, body, len) < 0))
        c->close_after = true;
}

static void respond_text(hconn *c, int status, const char *reason, const char *text,
                         const char *extra)
{
    respond(c, status, reason, "text/plain; charset=utf-8", extra, (const uint8_t *)text,
            strlen(text), false);
}

/* Value of a header in the head (case-insensitive name), copied to out. */
static bool header_value(const char *head, const char *name, char *out, size_t outlen)
{
    size_t nlen = strlen(name);
    for (const char *p = strstr(head, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n")) {
        const char *line = p + 2;
        if (strncasecmp(line, name, nlen) != 0 || line[nlen] != ':') continue;
        const char *v = line + nlen + 1;
        while (*v == ' ' || *v == '\t') v++;
        const char *e = strstr(v, "\r\n");
        size_t n = e ? (size_t)(e - v) : strlen(v);
        while (n && (v[n - 1] == ' ' || v[n - 1] == '\t')) n--;
        if (n >= outlen) n = outlen - 1;
        memcpy(out, v, n);
        out[n] = 0;
        return true;
    }
    return false;
}

static bool token_ok(const char *auth)
{
    if (!H.token) return true;
    if (strncasecmp(auth, "Bearer ", 7) != 0) return false;
    const char *t = auth + 7;
    size_t a = strlen(t), b = strlen(H.token);
    unsigned diff = (unsigned)(a ^ b);
    for (size_t i = 0; i < a && i < b; i++) diff |= (unsigned)(t[i] ^ H.token[i]);
    return diff == 0; /* time depends on the length only */
}

/* One complete head (NUL-terminated, without the blank line). */
static void handle_request(hconn *c, char *head)
{
    char method[16], target[1024], version[16];
    if (sscanf(head, "%15s %1023s %15s", method, target, version) != 3 ||
        strncmp(version, "HTTP/1.", 7) != 0) {
        c->close_after = true;
        respond_text(c, 400, "Bad Request", "malformed request line\n", NULL);
        return;
    }
    bool http10 = strcmp(version, "HTTP/1.0") == 0;
    if (!http10 && strcmp(version, "HTTP/1.1") != 0) {
        c->close_after = true;
        respond_text(c, 505, "HTTP Version Not Supported", "HTTP/1.0 or HTTP/1.1 only\n", NULL);
        return;
    }
    char v[512];
    if (header_value(head, "Connection", v, sizeof v)) {
        if (strcasestr(v, "close")) c->close_after = true;
        else if (http10 && !strcasestr(v, "keep-alive")) c->close_after = true;
    } else if (http10) {
        c->close_after = true;
    }
    if ((header_value(head, "Content-Length", v, sizeof v) && strcmp(v, "0") != 0) ||
        header_value(head, "Transfer-Encoding", v, sizeof v)) {
        c->close_after = true; /* the body would be read as the next request */
        respond_text(c, 400, "Bad Request", "a scrape has no request body\n", NULL);
        return;
    }
    bool head_only = strcmp(method, "HEAD") == 0;
    if (strcmp(method, "GET") != 0 && !head_only) {
        respond_text(c, 405, "Method Not Allowed", "GET /metrics\n", "Allow: GET, HEAD\r\n");
        return;
    }
    char *q = strchr(target, '?');
    if (q) *q = 0;
    if (strcmp(target, "/metrics") != 0) {
        respond_text(c, 404, "Not Found", "metrics are at /metrics\n", NULL);
        return;
    }
    /* Sized for the longest token read_token accepts: a shorter buffer
     * would cut a long token and refuse every scrape that carries it. */
    char auth[sizeof "Bearer " + TOKEN_MAX];
    if (!header_value(head, "Authorization", auth, sizeof auth)) auth[0] = 0;
    if (!token_ok(auth)) {
        respond_text(c, 401, "Unauthorized", "a bearer token is required\n",
                     "WWW-Authenticate: Bearer realm=\"metrics\"\r\n");
        return;
    }
    if (!header_value(head, "Accept", v, sizeof v)) v[0] = 0;
    bool om = mx_accepts_openmetrics(v);
    buf body = {0};
    if (mx_expose(&body, om) < 0) {
        free(body.p);
        c->close_after = true;
        respond_text(c, 503, "Service Unavailable", "out of memory\n", NULL);
        return;
    }
    respond(c, 200, "OK", om ? MX_CT_OPENMETRICS : MX_CT_TEXT, NULL, body.p, body.len,
            head_only);
    free(body.p);
}

/* Socket or TLS I/O: bytes, 0 at the end of the stream, -1 on an error,
 * -2 when it would block (TLS: the handshake runs inside these). */
static ssize_t io_recv(hconn *c, void *b, size_t n)
{
    for (;;) {
        if (!c->ssl) {
            ssize_t r = recv(c->fd, b, n, 0);
            if (r < 0 && errno == EINTR) continue;
            if (r < 0) return errno == EAGAIN || errno == EWOULDBLOCK ? -2 : -1;
            return r;
        }
        ERR_clear_error();
        int r = SSL_read(c->ssl, b, (int)n);
        if (r > 0) return r;
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return -2;
        return e == SSL_ERROR_ZERO_RETURN ? 0 : -1;
    }
}

static ssize_t io_send(hconn *c, const void *b, size_t n)
{
    for (;;) {
        if (!c->ssl) {
            ssize_t r = send(c->fd, b, n, MSG_NOSIGNAL);
            if (r < 0 && errno == EINTR) continue;
            if (r < 0) return errno == EAGAIN || errno == EWOULDBLOCK ? -2 : -1;
            return r;
        }
        ERR_clear_error();
        int r = SSL_write(c->ssl, b, n > INT32_MAX ? INT32_MAX : (int)n);
        if (r > 0) return r;
        int e = SSL_get_error(c->ssl, r);
        return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? -2 : -1;
    }
}

/* Writes what is queued; 0 when all went, 1 when the socket is full,
 * -1 when the connection is done. */
static int flush_out(hconn *c)
{
    while (buf_avail(&c->out)) {
        ssize_t n = io_send(c, c->out.p + c->out.off, buf_avail(&c->out));
        if (n == -2) return 1;
        if (n <= 0) return -1;
        buf_consume(&c->out, (size_t)n);
    }
    buf_clear(&c->out, 64 * 1024);
    if (!c->close_after) return 0;
    /* Closing with unread input would make the kernel send a reset that
     * can destroy the answer in flight: shut our side, then read until
     * the client closes (or a short while passes). */
    if (!c->lingering) {
        c->lingering = true;
        c->deadline = mono_ns() + LINGER_NS;
        if (c->ssl) SSL_shutdown(c->ssl); /* close_notify; the rest is raw */
        shutdown(c->fd, SHUT_WR);
    }
    return 1;
}

/* Lingering: discard input until EOF. -1: close now. */
static int discard_input(hconn *c)
{
    char sink[4096];
    for (;;) {
        ssize_t n = recv(c->fd, sink, sizeof sink, 0);
        if (n > 0) continue;
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
        return -1;
    }
}

/* Sends what was answered; once lingering, drains what is already there
 * (edge-triggered: no new event would come for it). */
static int after_answer(hconn *c)
{
    if (flush_out(c) < 0) return -1;
    return c->lingering ? discard_input(c) : 0;
}

/* Answers the complete heads in the buffer, one at a time: the next one
 * only once the answer before it has gone out. A client that pipelines
 * requests without reading the answers then costs one answer's memory,
 * not one per request, and a moving write buffer never meets an SSL_write
 * that waits for a retry. 0: wants more input; 1: an answer waits for the
 * socket (read nothing more); -1: close. */
static int answer_heads(hconn *c)
{
    while (!c->close_after) {
        if (buf_avail(&c->out)) {
            int rv = flush_out(c);
            if (rv != 0) return rv;
        }
        char *end = c->in_len >= 4 ? memmem(c->in, c->in_len, "\r\n\r\n", 4) : NULL;
        if (!end) return 0;
        size_t used = (size_t)(end - c->in) + 4;
        end[2] = 0; /* keep the last line's CRLF for header_value */
        if (memchr(c->in, 0, (size_t)(end - c->in))) {
            c->close_after = true;
            respond_text(c, 400, "Bad Request", "NUL in the request head\n", NULL);
        } else {
            handle_request(c, c->in);
        }
        memmove(c->in, c->in + used, c->in_len - used);
        c->in_len -= used;
        c->deadline = mono_ns() + IO_TIMEOUT_NS;
    }
    return 1;
}

/* Reads and answers the requests that are complete. -1: close. */
static int on_readable(hconn *c)
{
    if (c->lingering) return discard_input(c);
    for (;;) {
        int rv = answer_heads(c);
        if (rv < 0) return -1;
        if (rv > 0) break; /* answering or closing: input waits */
        if (c->in_len == HEAD_MAX) {
            c->close_after = true;
            respond_text(c, 431, "Request Header Fields Too Large",
                         "request head over 8192 bytes\n", NULL);
            break;
        }
        ssize_t n = io_recv(c, c->in + c->in_len, HEAD_MAX - c->in_len);
        if (n == -2) break;
        if (n <= 0) return -1;
        c->in_len += (size_t)n;
    }
    return after_answer(c);
}

static void do_accept(void)
{
    for (;;) {
        int fd = accept4(H.lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return;
        int slot = -1;
        for (int i = 0; i < MAX_CONNS && slot < 0; i++)
            if (!H.conns[i]) slot = i;
        hconn *c = slot < 0 ? NULL : calloc(1, sizeof *c);
        if (!c) {
            close(fd); /* full: the scraper retries at its next interval */
            continue;
        }
        c->fd = fd;
        c->deadline = mono_ns() + IO_TIMEOUT_NS;
        if (H.tls && (!(c->ssl = SSL_new(H.tls)) || SSL_set_fd(c->ssl, fd) != 1)) {
            if (c->ssl) SSL_free(c->ssl);
            close(fd);
            free(c);
            continue;
        }
        if (c->ssl) SSL_set_accept_state(c->ssl);
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                                 .data.u32 = (uint32_t)slot};
        H.conns[slot] = c;
        if (epoll_ctl(H.epfd, EPOLL_CTL_ADD, fd, &ev) < 0) hconn_close(slot);
    }
}

#define EV_LISTEN 0xfffffff0u
#define EV_STOP 0xfffffff1u

static void *http_main(void *arg)
{
    (void)arg;
    for (;;) {
        struct epoll_event evs[16];
        int n = epoll_wait(H.epfd, evs, 16, 1000);
        int64_t now = mono_ns();
        for (int i = 0; i < n; i++) {
            uint32_t id = evs[i].data.u32;
            if (id == EV_STOP) return NULL;
            if (id == EV_LISTEN) {
                do_accept();
                continue;
            }
            hconn *c = H.conns[id];
            if (!c) continue;
            int rv = 0;
            if ((evs[i].events & EPOLLOUT) && !c->lingering) rv = after_answer(c);
            /* Any event retries the read side: TLS reads may wait on a
             * write (handshake), and heads already buffered wait for the
             * answer before them to leave (answer_heads), with no new
             * EPOLLIN to come for them (edge-triggered). */
            if (rv >= 0) rv = on_readable(c);
            if (rv < 0) hconn_close((int)id);
        }
        /* A head or an answer that takes longer than the timeout ends it. */
        for (int i = 0; i < MAX_CONNS; i++)
            if (H.conns[i] && now > H.conns[i]->deadline) hconn_close(i);
    }
}

static int bind_listener(const mx_http_config *l)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int rv = getaddrinfo(l->host && l->host[0] ? l->host : NULL, l->port, &hints, &res);
    if (rv != 0) {
        log_error("metrics_listen %s:%s: cannot resolve: %s", l->host, l->port, gai_strerror(rv));
        return -EINVAL;
    }
    int fd = -1, err = 0;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 64) < 0) {
            err = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0) {
        log_error("metrics_listen %s:%s: %s", l->host, l->port, strerror(err ? err : EINVAL));
        return -(err ? err : EINVAL);
    }
    return fd;
}

static int read_token(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        log_error("metrics_token_file %s: %s", path, strerror(errno));
        return -EINVAL;
    }
    char line[TOKEN_MAX + 2]; /* the token, its newline, the NUL */
    char *ok = fgets(line, sizeof line, f);
    bool cut = ok && !strchr(line, '\n') && fgetc(f) != EOF;
    fclose(f);
    size_t n = ok ? strcspn(line, "\r\n") : 0;
    line[n] = 0;
    if (cut || n > TOKEN_MAX) {
        log_error("metrics_token_file %s: the token is longer than %d bytes", path, TOKEN_MAX);
        return -EINVAL;
    }
    if (n == 0) {
        log_error("metrics_token_file %s: empty; put the bearer token on its first line", path);
        return -EINVAL;
    }
    H.token = strdup(line);
    return H.token ? 0 : -ENOMEM;
}

/* The listener's own TLS context (metrics_cert/key or the host's pair).
 * Loaded once at start. */
static int tls_setup(const char *cert, const char *key)
{
    H.tls = SSL_CTX_new(TLS_server_method());
    if (!H.tls) return -ENOMEM;
    SSL_CTX_set_min_proto_version(H.tls, TLS1_2_VERSION);
    ERR_clear_error();
    if (SSL_CTX_use_certificate_chain_file(H.tls, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(H.tls, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(H.tls) != 1) {
        char err[256] = "unknown error";
        unsigned long e = ERR_get_error();
        if (e) ERR_error_string_n(e, err, sizeof err);
        log_error("metrics TLS: cannot use certificate %s with key %s: %s", cert, key, err);
        return -EINVAL;
    }
    return 0;
}

int mx_http_start(const mx_http_config *cfg)
{
    if (cfg->token_file && read_token(cfg->token_file) < 0) return -EINVAL;
    if (cfg->cert && tls_setup(cfg->cert, cfg->key) < 0) {
        mx_http_stop();
        return -EINVAL;
    }
    H.lfd = bind_listener(cfg);
    if (H.lfd < 0) return H.lfd;
    H.epfd = epoll_create1(EPOLL_CLOEXEC);
    H.evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct epoll_event lev = {.events = EPOLLIN, .data.u32 = EV_LISTEN};
    struct epoll_event sev = {.events = EPOLLIN, .data.u32 = EV_STOP};
    if (H.epfd < 0 || H.evfd < 0 || epoll_ctl(H.epfd, EPOLL_CTL_ADD, H.lfd, &lev) < 0 ||
        epoll_ctl(H.epfd, EPOLL_CTL_ADD, H.evfd, &sev) < 0) {
        int e = errno;
        log_error("metrics listener: %s", strerror(e));
        mx_http_stop();
        return -e;
    }
    int rv = pthread_create(&H.thread, NULL, http_main, NULL);
    if (rv != 0) {
        log_error("metrics listener: cannot start its thread: %s", strerror(rv));
        mx_http_stop();
        return -rv;
    }
    H.running = true;
    return 0;
}

void mx_http_stop(void)
{
    if (H.running) {
        uint64_t one = 1;
        ssize_t n = write(H.evfd, &one, sizeof one);
        (void)n;
        pthread_join(H.thread, NULL);
        H.running = false;
    }
    for (int i = 0; i < MAX_CONNS; i++)
        if (H.conns[i]) hconn_close(i);
    if (H.lfd >= 0) close(H.lfd);
    if (H.epfd >= 0) close(H.epfd);
    if (H.evfd >= 0) close(H.evfd);
    H.lfd = H.epfd = H.evfd = -1;
    free(H.token);
    H.token = NULL;
    if (H.tls) SSL_CTX_free(H.tls);
    H.tls = NULL;
}
