/* Session set-up and the poll() loop for a single connection. */
#include "session.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>

int session_prepare(session *s, const conn_opts *o, const char *authority, char *err,
                    size_t errlen)
{
    memset(s, 0, sizeof(*s));
    s->opts = o;
    s->c.fd = -1;
    int rc = conn_parse_target(o->address, &s->target, err, errlen);
    if (rc < 0)
        return rc;
    s->scheme = o->plaintext ? "http" : "https";
    s->authority = authority ? authority : s->target.authority;
    if (!o->plaintext) {
        rc = conn_tls_ctx_new(o, &s->ctx, err, errlen);
        if (rc < 0)
            return rc;
        s->own_ctx = true;
    }
    return 0;
}

void session_init_shared(session *s, const session *proto)
{
    memset(s, 0, sizeof(*s));
    s->opts = proto->opts;
    s->target = proto->target;
    s->ctx = proto->ctx;
    s->own_ctx = false;
    s->c.fd = -1;
    s->scheme = proto->scheme;
    s->authority = proto->authority == proto->target.authority ? s->target.authority
                                                                 : proto->authority;
}

int session_connect(session *s, int64_t connect_deadline_ms, char *err, size_t errlen)
{
    int64_t dl = connect_deadline_ms;
    if (s->deadline_ms > 0 && (dl <= 0 || s->deadline_ms < dl))
        dl = s->deadline_ms;
    int rc = conn_open(&s->c, s->opts, &s->target, s->opts->plaintext ? NULL : s->ctx, dl,
                       err, errlen);
    if (rc < 0)
        return rc;
    rc = h2c_init(&s->h, &s->c, s->opts->plaintext);
    if (rc < 0) {
        snprintf(err, errlen, "%s", s->h.err);
        conn_close(&s->c);
        return rc;
    }
    s->open = true;
    rc = h2c_flush(&s->h);
    /* The connection is up once the server's preface (SETTINGS) is in:
     * a server that accepts but never speaks HTTP/2 fails here, within the
     * connect timeout, not as a call that hangs. */
    int64_t start = conn_now_ms();
    while (rc == 0 && !s->h.got_settings) {
        int left = -1;
        if (dl > 0) {
            int64_t l = dl - conn_now_ms();
            if (l <= 0) {
                snprintf(err, errlen, "%s accepted the connection but sent no HTTP/2 settings "
                         "within %.1fs; is it a gRPC server%s? (or raise --connect-timeout)",
                         s->c.peer, (double)(conn_now_ms() - start) / 1000.0,
                         s->opts->plaintext ? " without TLS (else drop --plaintext)" : "");
                return -ETIMEDOUT;
            }
            left = (int)l;
        }
        rc = session_step(s, -1, NULL, left);
    }
    if (rc < 0) {
        snprintf(err, errlen, "%s", s->h.err);
        return rc;
    }
    return 0;
}

int session_ms_left(const session *s)
{
    if (s->deadline_ms <= 0)
        return -1;
    int64_t left = s->deadline_ms - conn_now_ms();
    return left <= 0 ? 0 : left > 3600000 ? 3600000 : (int)left;
}

int session_step(session *s, int extra_fd, short *extra_revents, int timeout_ms)
{
    struct pollfd p[2];
    int n = 0;
    p[n++] = (struct pollfd){.fd = s->c.fd, .events = h2c_poll_events(&s->h)};
    if (extra_fd >= 0)
        p[n++] = (struct pollfd){.fd = extra_fd, .events = POLLIN};
    if (extra_revents)
        *extra_revents = 0;
    int r = poll(p, (nfds_t)n, timeout_ms);
    if (r < 0 && errno != EINTR) {
        snprintf(s->err, sizeof(s->err), "poll: %s", strerror(errno));
        return -errno;
    }
    if (r <= 0)
        return 0;
    if (extra_fd >= 0 && extra_revents)
        *extra_revents = p[1].revents;
    if (p[0].revents) {
        int rc = h2c_io(&s->h);
        if (rc < 0) {
            snprintf(s->err, sizeof(s->err), "%s", s->h.err);
            return rc;
        }
    }
    return 0;
}

int session_step_read(session *s, int timeout_ms)
{
    struct pollfd p = {.fd = s->c.fd, .events = h2c_poll_events(&s->h)};
    int r = poll(&p, 1, timeout_ms);
    if (r < 0 && errno != EINTR) {
        snprintf(s->err, sizeof(s->err), "poll: %s", strerror(errno));
        return -errno;
    }
    if (r <= 0 || !p.revents)
        return 0;
    if (p.revents & POLLOUT) {
        int rc = h2c_flush(&s->h);
        if (rc < 0)
            return rc;
    }
    int rc = h2c_read(&s->h);
    if (rc < 0)
        snprintf(s->err, sizeof(s->err), "%s", s->h.err);
    return rc;
}

void session_wait(session *s, call *c)
{
    while (!c->done) {
        int left = session_ms_left(s);
        if (left == 0) {
            call_cancel(c, 4, "deadline exceeded (--max-time)");
            h2c_flush(&s->h);
            return;
        }
        if (session_step(s, -1, NULL, left) < 0)
            return; /* the call was closed with UNAVAILABLE */
    }
}

void session_close(session *s)
{
    if (s->open) {
        h2c_shutdown(&s->h);
        h2c_free(&s->h);
        s->open = false;
    }
    conn_close(&s->c);
    if (s->own_ctx && s->ctx)
        SSL_CTX_free(s->ctx);
    s->ctx = NULL;
}
