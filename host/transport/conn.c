#include "transport/conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/err.h>

#include "transport/h2.h"
#include "transport/tls.h"
#include "transport/http1.h"
#include "metrics/metrics.h"

/* Output batched per flush before one write; past PEND_HIGH unsent bytes
 * the connection stops reading (the client is not reading its answers). */
#define FLUSH_BATCH (256 * 1024)
#define PEND_HIGH (256 * 1024)
#define READ_BUDGET 16
#define SHUTDOWN_PING_WAIT_NS (2LL * 1000000000)

void peer_info_release(peer_info *p)
{
    if (!p || --p->refs > 0) return;
    for (size_t i = 0; i < p->n_sans; i++) free(p->sans[i]);
    free(p->sans);
    free(p->subject);
    free(p);
}

static peer_info *peer_new(const struct sockaddr *sa, const char *unix_path)
{
    char text[160];
    if (unix_path) {
        snprintf(text, sizeof text, "unix:%s", unix_path);
    } else if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        char a[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &in->sin_addr, a, sizeof a);
        snprintf(text, sizeof text, "ipv4:%s:%u", a, ntohs(in->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        char a[INET6_ADDRSTRLEN];
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
            /* a dual-stack listener: report the IPv4 peer as such */
            inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], a, sizeof a);
            snprintf(text, sizeof text, "ipv4:%s:%u", a, ntohs(in6->sin6_port));
        } else {
            inet_ntop(AF_INET6, &in6->sin6_addr, a, sizeof a);
            snprintf(text, sizeof text, "ipv6:[%s]:%u", a, ntohs(in6->sin6_port));
        }
    } else {
        snprintf(text, sizeof text, "unknown");
    }
    size_t n = strlen(text);
    peer_info *p = calloc(1, sizeof *p + n + 1);
    if (!p) return NULL;
    p->refs = 1;
    memcpy(p->addr, text, n + 1);
    return p;
}

static void hs_timeout(rh_timer *t)
{
    conn *c = (conn *)((char *)t - offsetof(conn, hs_timer));
    log_debug("%s: no TLS handshake and HTTP/2 preface within %u ms; closing", c->peer->addr,
              c->w->s->handshake_timeout_ms);
    conn_close(c, "handshake timeout");
}

static int start_http1(conn *c)
{
    timer_cancel(&c->w->timers, &c->hs_timer); /* HTTP/1.1 has its own timers */
    if (http1_start(c) < 0) {
        conn_close(c, "out of memory");
        return -1;
    }
    c->state = CONN_HTTP1;
    return 0;
}

static int start_h2(conn *c)
{
    if (h2_session_new(c) < 0) {
        conn_close(c, "cannot create the HTTP/2 session");
        return -1;
    }
    c->state = CONN_H2;
    conn_mark_dirty(c); /* our SETTINGS */
    return 0;
}

/* The event loop's entry: epoll events of the connection's socket. */
static void conn_ev(ev_handle *h, uint32_t events)
{
    conn *c = (conn *)h;
    if (c->state != CONN_CLOSED) conn_on_event(c, events);
}

conn *conn_new(worker *w, int fd, const struct sockaddr *sa, socklen_t salen,
               const char *unix_path)
{
    (void)salen;
    conn *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return NULL;
    }
    c->ev.kind = EV_IO;
    c->ev.on_event = conn_ev;
    c->w = w;
    c->fd = fd;
    c->peer = peer_new(sa, unix_path);
    if (!c->peer) goto fail;
    c->hold.budget = w->s->conn_window;
    h2scan_init(&c->scan);
    c->reset_tokens = w->s->server_reset_budget;
    c->reset_refill_ns = now_ns();
    c->last_active_ns = c->reset_refill_ns;
    if (!w->s->plaintext && !unix_path) {
        c->ssl = tls_new_ssl();
        if (!c->ssl || SSL_set_fd(c->ssl, fd) != 1) goto fail;
        SSL_set_accept_state(c->ssl);
        c->state = CONN_HANDSHAKE;
    } else if (unix_path) {
        c->state = CONN_H2; /* Unix sockets (admin) speak h2c only */
    } else {
        c->state = CONN_SNIFF; /* plaintext: the HTTP/2 preface or an HTTP/1.1 request */
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                             .data.ptr = &c->ev};
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) goto fail;
    c->next = w->conns;
    if (w->conns) w->conns->prev = c;
    w->conns = c;
    w->n_conns++;
    mx_inc(mxh.conn_opened); /* from here on conn_close counts it closed */
    if (w->s->handshake_timeout_ms)
        timer_arm(&w->timers, &c->hs_timer,
                  now_ns() + (int64_t)w->s->handshake_timeout_ms * 1000000, hs_timeout);
    if (c->state == CONN_H2 && start_h2(c) < 0) return NULL;
    return c;
fail:
    if (c->ssl) SSL_free(c->ssl);
    peer_info_release(c->peer);
    close(fd);
    free(c);
    return NULL;
}

void conn_mark_dirty(conn *c)
{
    if (!c->dirty && c->state != CONN_CLOSED) conns_mark_dirty(c->w, c);
}

void conn_close(conn *c, const char *why)
{
    if (c->state == CONN_CLOSED) return;
    worker *w = c->w;
    log_debug("%s: closing connection: %s", c->peer->addr, why);
    mx_inc(mxh.conn_closed[mx_close_reason_of(why)]);
    if (c->state == CONN_HANDSHAKE && c->ssl && strncmp(why, "server ", 7) != 0)
        mx_inc(strncmp(why, "handshake timeout", 17) == 0 ? mxh.tls_timeout : mxh.tls_failed);
    c->state = CONN_CLOSED;
    /* nghttp2_session_del does not call on_stream_close: end the calls. */
    h2_close_streams(c);
    timer_cancel(&w->timers, &c->hs_timer);
    timer_cancel(&w->timers, &c->shutdown_timer);
    epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    if (c->h2) nghttp2_session_del(c->h2);
    c->h2 = NULL;
    if (c->h1) http1_free(c);
    if (c->ssl) {
        /* Best effort close_notify; never wait for the peer's. */
        if (SSL_is_init_finished(c->ssl)) SSL_shutdown(c->ssl);
        ERR_clear_error();
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    close(c->fd);
    c->fd = -1;
    free(c->pend.p);
    c->pend.p = NULL;
    conns_closed(w, c); /* frees c at the end of the iteration */
}

/* --------------------------------------------------------------------- */

static void load_peer_cert(conn *c)
{
    if (!c->w->s->client_ca) return;
    c->peer->subject = tls_peer_subject(c->ssl);
    c->peer->sans = tls_peer_sans(c->ssl, &c->peer->n_sans);
}

static void handshake(conn *c)
{
    ERR_clear_error();
    int r = SSL_do_handshake(c->ssl);
    if (r == 1) {
        mx_inc(mxh.tls_ok);
        load_peer_cert(c);
        if (tls_use_source(c->ssl, &c->src) < 0) {
            conn_close(c, "out of memory");
            return;
        }
        /* ALPN decides; a client that sent none is sniffed like h2c. */
        switch (tls_alpn_protocol(c->ssl)) {
        case TLS_ALPN_H2: start_h2(c); break;
        case TLS_ALPN_HTTP1: start_http1(c); break;
        default: c->state = CONN_SNIFF; break;
        }
        return;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return;
    unsigned long err = ERR_peek_last_error();
    char reason[200] = "connection closed";
    if (err) ERR_error_string_n(err, reason, sizeof reason);
    log_debug("%s: TLS handshake failed: %s", c->peer->addr, reason);
    conn_close(c, "TLS handshake failed");
}

/* Writes up to len bytes; returns how many were taken, or -1 if the
 * connection was closed. */
static ssize_t conn_write(conn *c, const uint8_t *p, size_t len)
{
    size_t done = 0;
    while (done < len) {
        if (c->ssl) {
            ERR_clear_error();
            size_t chunk = len - done > (size_t)INT32_MAX ? (size_t)INT32_MAX : len - done;
            int r = SSL_write(c->ssl, p + done, (int)chunk);
            if (r > 0) {
                done += (size_t)r;
                continue;
            }
            int e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) break;
            conn_close(c, "TLS write failed");
            return -1;
        }
        ssize_t n = send(c->fd, p + done, len - done, MSG_NOSIGNAL);
        if (n > 0) {
            done += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        conn_close(c, "write failed");
        return -1;
    }
    mx_count(mxh.bytes_out, done);
    return (ssize_t)done;
}

/* 0 when nothing is left pending, 1 when some is, -1 when closed. */
static int write_pending(conn *c)
{
    ssize_t n = conn_write(c, c->pend.p + c->pend.off, buf_avail(&c->pend));
    if (n < 0) return -1;
    buf_consume(&c->pend, (size_t)n);
    if (buf_avail(&c->pend)) return 1;
    buf_clear(&c->pend, 0); /* idle connections keep no output buffer */
    if (c->read_blocked) {
        c->read_blocked = false;
        conns_mark_readable(c->w, c);
    }
    return 0;
}

/* Writes an HTTP/1.1 connection's response bytes; closes it once a
 * response that ends the connection is out. */
static void flush_http1(conn *c)
{
    if (buf_avail(&c->pend) && write_pending(c) != 0) return;
    buf *out = http1_output(c);
    if (buf_avail(out)) {
        ssize_t w = conn_write(c, out->p + out->off, buf_avail(out));
        if (w < 0) return;
        buf_consume(out, (size_t)w);
        if (buf_avail(out)) {
            if (buf_append(&c->pend, out->p + out->off, buf_avail(out)) < 0) {
                conn_close(c, "out of memory");
                return;
            }
            if (buf_avail(&c->pend) > PEND_HIGH) c->read_blocked = true;
        }
        buf_clear(out, 64 * 1024);
    }
    if (buf_avail(&c->pend)) return;
    /* All written: a streaming response paused on the output goes on
     * (what it adds marks the connection dirty again). */
    http1_output_written(c);
    if (c->state == CONN_HTTP1 && !buf_avail(out) && http1_done(c))
        conn_close(c, "HTTP/1.1 connection finished");
}

void conn_flush(conn *c)
{
    if (c->state == CONN_HTTP1) {
        flush_http1(c);
        return;
    }
    if (c->state != CONN_H2) return;
    if (buf_avail(&c->pend) && write_pending(c) != 0) return;
    buf *out = &c->w->obuf;
    for (;;) {
        out->off = out->len = 0;
        while (out->len < FLUSH_BATCH) {
            const uint8_t *data;
            ssize_t n = nghttp2_session_mem_send(c->h2, &data);
            if (n < 0) {
                log_debug("%s: http2 send: %s", c->peer->addr, nghttp2_strerror((int)n));
                conn_close(c, "http2 send error");
                return;
            }
            if (n == 0) break;
            if (buf_append(out, data, (size_t)n) < 0) {
                conn_close(c, "out of memory");
                return;
            }
        }
        if (out->len == 0) break;
        ssize_t w = conn_write(c, out->p, out->len);
        if (w < 0) return;
        if ((size_t)w < out->len) {
            if (buf_append(&c->pend, out->p + w, out->len - (size_t)w) < 0) {
                conn_close(c, "out of memory");
                return;
            }
            if (buf_avail(&c->pend) > PEND_HIGH) c->read_blocked = true;
            break;
        }
    }
    out->off = out->len = 0;
    if (buf_avail(&c->pend)) return;
    if (c->closing ||
        (!nghttp2_session_want_read(c->h2) && !nghttp2_session_want_write(c->h2)))
        conn_close(c, c->closing ? "terminated" : "session finished");
}

static int feed(conn *c, const uint8_t *data, size_t n);

/* No ALPN (or plaintext): the HTTP/2 client preface starts HTTP/2, any
 * other first bytes HTTP/1.1. Bytes are kept until they differ from the
 * preface or all of it arrived, so a preface split across reads works. */
static int sniff(conn *c, const uint8_t *data, size_t n)
{
    size_t take = CONN_H2_PREFACE_LEN - c->n_sniffed;
    if (take > n) take = n;
    memcpy(c->sniffed + c->n_sniffed, data, take);
    c->n_sniffed = (uint8_t)(c->n_sniffed + take);
    bool h2 = memcmp(c->sniffed, CONN_H2_PREFACE, c->n_sniffed) == 0;
    if (h2 && c->n_sniffed < CONN_H2_PREFACE_LEN) return 0; /* need more */
    if ((h2 ? start_h2(c) : start_http1(c)) < 0) return -1;
    /* the sniffed bytes, then the rest of this read */
    if (feed(c, c->sniffed, c->n_sniffed) < 0) return -1;
    return n > take ? feed(c, data + take, n - take) : 0;
}

/* One run of plaintext into nghttp2 (h2scan's sink). */
static int feed_h2(void *arg, const uint8_t *data, size_t n)
{
    conn *c = arg;
    ssize_t rv = nghttp2_session_mem_recv(c->h2, data, n);
    if (c->state == CONN_CLOSED) return -1;
    if (rv < 0) {
        log_debug("%s: http2: %s", c->peer->addr, nghttp2_strerror((int)rv));
        /* BAD_CLIENT_MAGIC, FLOODED or a fatal callback error: send what
         * nghttp2 queued (a GOAWAY) and close. */
        c->closing = true;
        conn_mark_dirty(c);
        return -1;
    }
    return 0;
}

/* Hands plaintext to the connection's protocol: HTTP/1.1, or nghttp2 less
 * the RST_STREAM frames of streams the client never opened (h2scan.h).
 * -1 when the connection must stop reading. */
static int feed(conn *c, const uint8_t *data, size_t n)
{
    c->last_active_ns = c->w->now;
    mx_count(mxh.bytes_in, n);
    if (c->state == CONN_SNIFF) return sniff(c, data, n);
    if (c->state == CONN_HTTP1) return http1_feed(c, data, n);
    uint64_t dropped = c->scan.dropped;
    if (h2scan_feed(&c->scan, data, n, feed_h2, c) < 0) return -1;
    if (c->scan.dropped != dropped)
        log_debug("%s: RST_STREAM for a stream the client never opened: ignored",
                  c->peer->addr);
    conn_mark_dirty(c);
    return 0;
}

/* Decrypts everything OpenSSL can from what it holds and c->src. */
static int tls_drain(conn *c)
{
    worker *w = c->w;
    for (;;) {
        ERR_clear_error();
        int r = SSL_read(c->ssl, w->rbuf, (int)w->rbuf_size);
        if (r > 0) {
            if (feed(c, w->rbuf, (size_t)r) < 0) break;
            continue;
        }
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ) return 0;
        c->src.len = 0;
        conn_close(c, e == SSL_ERROR_ZERO_RETURN ? "peer closed TLS" : "TLS read failed");
        return -1;
    }
    c->src.len = 0; /* the worker's buffer is reused by the next connection */
    return -1;
}

void conn_read(conn *c)
{
    worker *w = c->w;
    if (c->ssl && SSL_has_pending(c->ssl) && tls_drain(c) < 0) return;
    for (int budget = READ_BUDGET; budget > 0; budget--) {
        if (!conn_reading(c) || c->read_blocked || c->closing) return;
        if (c->state == CONN_HTTP1 && http1_input_paused(c)) return;
        uint8_t *into = c->ssl ? w->tbuf : w->rbuf;
        ssize_t n = read(c->fd, into, w->rbuf_size);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            conn_close(c, "read failed");
            return;
        }
        if (n == 0) {
            conn_close(c, "peer closed");
            return;
        }
        if (c->ssl) {
            c->src.p = into;
            c->src.len = (size_t)n;
            if (tls_drain(c) < 0) return;
        } else if (feed(c, into, (size_t)n) < 0) {
            return;
        }
        /* A short read emptied the socket; edge-triggered epoll tells us
         * about the next bytes. Not when the same edge reported the FIN:
         * no other edge would come, so read on to see the end. */
        if ((size_t)n < w->rbuf_size && !c->rdhup) return;
    }
    conns_mark_readable(w, c); /* budget spent: more next iteration */
}

void conn_on_event(conn *c, uint32_t events)
{
    if (events & EPOLLERR) {
        conn_close(c, "socket error");
        return;
    }
    if (c->state == CONN_HANDSHAKE) {
        handshake(c);
        /* OpenSSL may already hold the client's first frames. */
        if (conn_reading(c)) conn_read(c);
        return;
    }
    if ((events & EPOLLOUT) && buf_avail(&c->pend)) {
        if (write_pending(c) < 0) return;
        conn_mark_dirty(c);
    }
    if (events & (EPOLLRDHUP | EPOLLHUP)) c->rdhup = true;
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) conn_read(c);
}

/* --------------------------------------------------------------------- */

bool conn_charge_reset(conn *c)
{
    uint32_t budget = c->w->s->server_reset_budget;
    if (!budget) return true;
    int64_t now = now_ns();
    c->reset_tokens += (double)(now - c->reset_refill_ns) * budget / 60e9;
    if (c->reset_tokens > budget) c->reset_tokens = budget;
    c->reset_refill_ns = now;
    c->reset_tokens -= 1;
    if (c->reset_tokens >= 0 || c->closing) return c->reset_tokens >= 0;
    static const char why[] = "too many stream resets";
    c->mx_goaway = MX_GOAWAY_RESETS;
    log_info("%s: the server reset more than %u streams in a minute; sending GOAWAY "
             "ENHANCE_YOUR_CALM",
             c->peer->addr, budget);
    nghttp2_submit_goaway(c->h2, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(c->h2),
                          NGHTTP2_ENHANCE_YOUR_CALM, (const uint8_t *)why, sizeof why - 1);
    c->closing = true;
    conn_mark_dirty(c);
    return false;
}

static void shutdown_ping_timeout(rh_timer *t)
{
    conn *c = (conn *)((char *)t - offsetof(conn, shutdown_timer));
    conn_final_goaway(c);
}

void conn_begin_shutdown(conn *c)
{
    if (c->state == CONN_HANDSHAKE) {
        conn_close(c, "server shutting down");
        return;
    }
    if (c->state == CONN_SNIFF) {
        conn_close(c, "server shutting down");
        return;
    }
    if (c->state == CONN_HTTP1) {
        http1_begin_shutdown(c);
        return;
    }
    if (c->state != CONN_H2 || c->goaway_notice || c->goaway_final) return;
    c->goaway_notice = true;
    c->mx_goaway = MX_GOAWAY_SHUTDOWN;
    /* Stage one: GOAWAY with the largest stream id, so the client stops
     * opening streams without losing any already on the wire, and a PING
     * to learn when it has seen it. */
    nghttp2_submit_shutdown_notice(c->h2);
    nghttp2_submit_ping(c->h2, NGHTTP2_FLAG_NONE, h2_drain_ping);
    timer_arm(&c->w->timers, &c->shutdown_timer, now_ns() + SHUTDOWN_PING_WAIT_NS,
              shutdown_ping_timeout);
    conn_mark_dirty(c);
}

void conn_final_goaway(conn *c)
{
    if (c->state != CONN_H2 || c->goaway_final) return;
    c->goaway_final = true;
    if (!c->mx_goaway) c->mx_goaway = MX_GOAWAY_SHUTDOWN; /* callers may say idle */
    timer_cancel(&c->w->timers, &c->shutdown_timer);
    /* Stage two: the last stream id we really took. */
    nghttp2_submit_goaway(c->h2, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(c->h2),
                          NGHTTP2_NO_ERROR, NULL, 0);
    conn_mark_dirty(c);
}
