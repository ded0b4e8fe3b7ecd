/* nghttp2 client session over a conn, driven through memory buffers.
 * Reads go socket -> in[] -> nghttp2_session_mem_recv; writes go
 * nghttp2_session_mem_send -> out[] -> socket, coalesced so one TLS record
 * carries many frames. */
#include "h2client.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "call.h"

#define H2C_IN_CAP (64 * 1024)
#define H2C_OUT_FLUSH (64 * 1024) /* write once this much is gathered */
/* Response flow-control windows: big enough that a server stream is never
 * throttled by us; we consume every byte as soon as it arrives. */
#define H2C_STREAM_WINDOW (16 * 1024 * 1024)
#define H2C_CONN_WINDOW (64 * 1024 * 1024)

const char *h2c_error_name(uint32_t code)
{
    static const char *const names[] = {
        "NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR",
        "SETTINGS_TIMEOUT", "STREAM_CLOSED", "FRAME_SIZE_ERROR", "REFUSED_STREAM",
        "CANCEL", "COMPRESSION_ERROR", "CONNECT_ERROR", "ENHANCE_YOUR_CALM",
        "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED"};
    return code < sizeof(names) / sizeof(names[0]) ? names[code] : "UNKNOWN_ERROR";
}

static int on_frame_recv_conn(nghttp2_session *s, const nghttp2_frame *f, void *ud);

int h2c_init(h2c *h, conn *c, bool plaintext)
{
    memset(h, 0, sizeof(*h));
    h->c = c;
    h->plaintext = plaintext;
    h->in_cap = H2C_IN_CAP;
    h->in = malloc(h->in_cap);
    h->out_cap = H2C_OUT_FLUSH * 2;
    h->out = malloc(h->out_cap);
    if (!h->in || !h->out)
        goto nomem;
    nghttp2_session_callbacks *cbs;
    if (nghttp2_session_callbacks_new(&cbs) != 0)
        goto nomem;
    call_set_session_callbacks(cbs);
    /* call.c handles stream frames; we look at connection frames first. */
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv_conn);
    nghttp2_option *opt;
    if (nghttp2_option_new(&opt) != 0) {
        nghttp2_session_callbacks_del(cbs);
        goto nomem;
    }
    nghttp2_option_set_no_http_messaging(opt, 0);
    int rc = nghttp2_session_client_new2(&h->ng, cbs, h, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    if (rc != 0)
        goto nomem;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2C_STREAM_WINDOW},
        {NGHTTP2_SETTINGS_MAX_FRAME_SIZE, 64 * 1024},
    };
    if (nghttp2_submit_settings(h->ng, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])) != 0 ||
        nghttp2_session_set_local_window_size(h->ng, NGHTTP2_FLAG_NONE, 0, H2C_CONN_WINDOW) != 0)
        goto nomem;
    return 0;
nomem:
    h2c_free(h);
    snprintf(h->err, sizeof(h->err), "out of memory starting the HTTP/2 session");
    return -ENOMEM;
}

void h2c_free(h2c *h)
{
    if (h->ng)
        nghttp2_session_del(h->ng);
    h->ng = NULL;
    free(h->in);
    free(h->out);
    h->in = h->out = NULL;
    grpc_deflater_free(h->codec.deflater);
    grpc_inflater_free(h->codec.inflater);
    grpc_codec_buf_free(&h->codec.inflated);
    free(h->codec.zbuf);
    memset(&h->codec, 0, sizeof h->codec);
}

short h2c_poll_events(const h2c *h)
{
    if (h->closed)
        return 0;
    short ev = POLLIN;
    if (h->out_len > h->out_off || nghttp2_session_want_write(h->ng) || h->c->read_want_write)
        ev |= POLLOUT;
    return ev;
}

static int fail(h2c *h, int rc, const char *msg)
{
    if (!h->closed) {
        h->closed = true;
        if (msg)
            snprintf(h->err, sizeof(h->err), "%s", msg);
        call_fail_all(h, 14 /* UNAVAILABLE */, h->err);
    }
    return rc;
}

/* A GOAWAY tells why the server is closing; keep it for the message. */
static int on_frame_recv_conn(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    h2c *h = ud;
    if (f->hd.type == NGHTTP2_SETTINGS && !(f->hd.flags & NGHTTP2_FLAG_ACK))
        h->got_settings = true;
    if (f->hd.type == NGHTTP2_GOAWAY) {
        h->goaway = true;
        h->goaway_code = f->goaway.error_code;
        h->goaway_last_stream = f->goaway.last_stream_id;
        size_t l = f->goaway.opaque_data_len < sizeof(h->goaway_msg) - 1
                       ? f->goaway.opaque_data_len : sizeof(h->goaway_msg) - 1;
        memcpy(h->goaway_msg, f->goaway.opaque_data, l);
        h->goaway_msg[l] = 0;
        for (size_t i = 0; i < l; i++)
            if ((unsigned char)h->goaway_msg[i] < 0x20 || (unsigned char)h->goaway_msg[i] > 0x7e)
                h->goaway_msg[i] = '?';
        return 0;
    }
    return call_on_frame_recv(s, f, ud);
}

/* Why the server went away, for calls that never finished. */
static void closed_message(h2c *h, const char *what)
{
    if (h->goaway && h->goaway_code != NGHTTP2_NO_ERROR)
        snprintf(h->err, sizeof(h->err), "the server closed the connection (GOAWAY %s%s%s)",
                 h2c_error_name(h->goaway_code), h->goaway_msg[0] ? ": " : "", h->goaway_msg);
    else if (h->goaway)
        snprintf(h->err, sizeof(h->err), "the server closed the connection (GOAWAY)");
    else if (!h->got_data && h->plaintext)
        snprintf(h->err, sizeof(h->err), "%s %s before answering; if it expects TLS, drop "
                 "--plaintext", h->c->peer, what);
    else
        snprintf(h->err, sizeof(h->err), "%s %s", h->c->peer, what);
}

/* A plaintext client talking to a TLS server gets a TLS alert back. */
static bool looks_like_tls(const uint8_t *p, size_t n)
{
    return n >= 3 && (p[0] == 0x15 || p[0] == 0x16) && p[1] == 0x03 && p[2] <= 0x04;
}

static int do_read(h2c *h)
{
    for (;;) {
        ssize_t n = conn_read(h->c, h->in, h->in_cap);
        if (n == -EAGAIN)
            return 0;
        if (n < 0)
            return fail(h, (int)n, h->c->err);
        if (n == 0) {
            closed_message(h, "closed the connection");
            return fail(h, -ECONNRESET, NULL);
        }
        if (!h->got_data && h->plaintext && looks_like_tls(h->in, (size_t)n)) {
            char m[400];
            snprintf(m, sizeof(m), "%s answered with TLS to a plaintext (h2c) connection; "
                     "drop --plaintext", h->c->peer);
            return fail(h, -EPROTO, m);
        }
        bool first = !h->got_data;
        h->got_data = true;
        ssize_t r = nghttp2_session_mem_recv(h->ng, h->in, (size_t)n);
        if (r < 0) {
            char m[400];
            snprintf(m, sizeof(m), "HTTP/2 error from %s: %s%s", h->c->peer,
                     nghttp2_strerror((int)r),
                     first ? "; is it an HTTP/2 (gRPC) server?" : "");
            return fail(h, -EPROTO, m);
        }
        /* A short read means the socket (and OpenSSL's buffer) is drained
         * for now; poll() is level-triggered and says when there is more,
         * which saves the read() that would only return EAGAIN. */
        if ((size_t)n < h->in_cap && (!h->c->ssl || !SSL_has_pending(h->c->ssl)))
            return 0;
    }
}

/* Writes out[] until it is empty or the socket is full. */
static int write_out(h2c *h)
{
    while (h->out_off < h->out_len) {
        ssize_t n = conn_write(h->c, h->out + h->out_off, h->out_len - h->out_off);
        if (n == -EAGAIN)
            return -EAGAIN;
        if (n < 0)
            return fail(h, (int)n, h->c->err);
        h->out_off += (size_t)n;
    }
    h->out_off = h->out_len = 0;
    return 0;
}

int h2c_flush(h2c *h)
{
    if (h->closed)
        return -ECONNRESET;
    for (;;) {
        int rc = write_out(h);
        if (rc == -EAGAIN)
            return 0;
        if (rc < 0)
            return rc;
        /* Gather frames until the buffer is worth a write. */
        while (h->out_len < H2C_OUT_FLUSH) {
            const uint8_t *data;
            ssize_t n = nghttp2_session_mem_send(h->ng, &data);
            if (n < 0)
                return fail(h, -EPROTO, nghttp2_strerror((int)n));
            if (n == 0)
                break;
            if (h->out_len + (size_t)n > h->out_cap) {
                size_t cap = h->out_len + (size_t)n;
                uint8_t *p = realloc(h->out, cap);
                if (!p)
                    return fail(h, -ENOMEM, "out of memory");
                h->out = p;
                h->out_cap = cap;
            }
            memcpy(h->out + h->out_len, data, (size_t)n);
            h->out_len += (size_t)n;
        }
        if (h->out_len == 0)
            break;
    }
    if (!nghttp2_session_want_read(h->ng) && !nghttp2_session_want_write(h->ng) &&
        h->out_len == 0) {
        closed_message(h, "ended the HTTP/2 session");
        return fail(h, -ECONNRESET, NULL);
    }
    return 0;
}

int h2c_read(h2c *h)
{
    if (h->closed)
        return -ECONNRESET;
    return do_read(h);
}

int h2c_io(h2c *h)
{
    int rc = h2c_read(h);
    if (rc < 0)
        return rc;
    return h2c_flush(h);
}

void h2c_shutdown(h2c *h)
{
    if (h->closed || !h->ng)
        return;
    nghttp2_session_terminate_session(h->ng, NGHTTP2_NO_ERROR);
    h2c_flush(h);
    h->closed = true;
}
