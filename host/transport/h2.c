/* nghttp2 callbacks and limits.
 *
 * Limits nghttp2 1.52 enforces through options: max_continuations,
 * stream reset rate limit (incoming RST_STREAM), max_settings,
 * max_outbound_ack, concurrent streams (REFUSED_STREAM past our SETTINGS).
 * Limits implemented here because that version lacks them:
 *  - the request header list size, counted field by field in the header
 *    callback (call.c): nothing past the soft limit is kept, the call is
 *    answered RESOURCE_EXHAUSTED; past the hard limit the stream is reset
 *    and the connection gets a graceful GOAWAY;
 *  - a budget for resets the server itself issues (newer nghttp2 has a
 *    "glitch" counter for this): conn_charge_reset;
 *  - keepalive ping enforcement as gRPC does it: a PING that comes sooner
 *    than ping_min_interval_ms after the previous one, with no headers or
 *    data sent in between, is a strike; past ping_max_strikes the
 *    connection gets GOAWAY ENHANCE_YOUR_CALM "too_many_pings".
 * Receive windows are not returned automatically: call.c consumes what
 * the gRPC layer took and keeps the window of bytes held for a paused call
 * (pause_reading), which is what bounds them (docs/transport.md,
 * "Backpressure"). */
#include "transport/h2.h"

#include <string.h>

#include "transport/h2mem.h"
#include "metrics/metrics.h"

const uint8_t h2_drain_ping[8] = {'r', 'h', 'd', 'r', 'a', 'i', 'n', 0};

static nghttp2_session_callbacks *callbacks;
static nghttp2_option *options;
static const rh_settings *settings;
static const h2_stream_ops *ops;

static rh_call *stream_call(conn *c, nghttp2_session *s, int32_t stream_id)
{
    if (stream_id <= 0) return NULL;
    if (stream_id == c->last_stream_id) return c->last_call;
    rh_call *call = nghttp2_session_get_stream_user_data(s, stream_id);
    c->last_stream_id = stream_id;
    c->last_call = call;
    return call;
}

/* Every change of a stream's user data goes through here, so the cache
 * in stream_call never names a call that is gone. */
static void stream_set_call(conn *c, nghttp2_session *s, int32_t stream_id, rh_call *call)
{
    nghttp2_session_set_stream_user_data(s, stream_id, call);
    c->last_stream_id = stream_id;
    c->last_call = call;
}

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *frame, void *user)
{
    conn *c = user;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    rh_call *call = ops->open(c, frame->hd.stream_id);
    if (!call) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets the stream */
    stream_set_call(c, s, frame->hd.stream_id, call);
    return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user)
{
    (void)flags;
    conn *c = user;
    rh_call *call = stream_call(c, s, frame->hd.stream_id);
    if (!call) return 0;
    int rv = ops->header(call, name, namelen, value, valuelen);
    if (rv != 0 && ops->header_bytes(call) > settings->header_list_hard && !c->closing) {
        /* Past the hard limit: this stream is reset, and the client is
         * told to go away once its other calls are done. */
        log_debug("%s: request header list over %u bytes; resetting the stream and sending GOAWAY",
                  c->peer->addr, settings->header_list_hard);
        static const char why[] = "header list too large";
        mx_inc(mxh.hdr_hard);
        c->mx_goaway = MX_GOAWAY_HEADERS;
        nghttp2_submit_goaway(s, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(s),
                              NGHTTP2_ENHANCE_YOUR_CALM, (const uint8_t *)why, sizeof why - 1);
        c->goaway_final = true;
    }
    return rv;
}

static void on_ping(conn *c, nghttp2_session *s)
{
    int64_t now = now_ns();
    int64_t min = (int64_t)settings->ping_min_interval_ms * 1000000;
    if (c->last_ping_ns && now - c->last_ping_ns < min) {
        mx_inc(mxh.ping_strikes);
        if (++c->ping_strikes > settings->ping_max_strikes) {
            static const char why[] = "too_many_pings";
            c->mx_goaway = MX_GOAWAY_PINGS;
            log_info("%s: too many pings; sending GOAWAY ENHANCE_YOUR_CALM", c->peer->addr);
            nghttp2_submit_goaway(s, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(s),
                                  NGHTTP2_ENHANCE_YOUR_CALM, (const uint8_t *)why, sizeof why - 1);
            c->closing = true;
        }
    }
    c->last_ping_ns = now;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *frame, void *user)
{
    conn *c = user;
    rh_call *call;
    switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
        call = stream_call(c, s, frame->hd.stream_id);
        if (!call) break;
        if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) ops->headers_end(call);
        if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) ops->remote_end(call);
        break;
    case NGHTTP2_DATA:
        if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
            call = stream_call(c, s, frame->hd.stream_id);
            if (call) ops->remote_end(call);
        }
        break;
    case NGHTTP2_SETTINGS:
        if (!(frame->hd.flags & NGHTTP2_FLAG_ACK) && !c->preface_seen) {
            c->preface_seen = true;
            timer_cancel(&c->w->timers, &c->hs_timer);
        }
        break;
    case NGHTTP2_RST_STREAM:
        mx_inc(mx_h2_code(mxh.rst_received, frame->rst_stream.error_code));
        break;
    case NGHTTP2_PING:
        if (frame->hd.flags & NGHTTP2_FLAG_ACK) {
            if (memcmp(frame->ping.opaque_data, h2_drain_ping, 8) == 0) conn_final_goaway(c);
        } else {
            on_ping(c, s);
        }
        break;
    default:
        break;
    }
    return 0;
}

/* Flow control is manual (no_auto_window_update): the call returns the
 * window of the bytes it took and keeps it for bytes held while paused. */
static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t stream_id,
                         const uint8_t *data, size_t len, void *user)
{
    rh_call *call = stream_call(user, s, stream_id);
    if (call)
        ops->data(call, data, len, (flags & NGHTTP2_FLAG_END_STREAM) != 0);
    else
        nghttp2_session_consume(s, stream_id, len); /* no call: dropped */
    return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t stream_id, uint32_t error_code,
                           void *user)
{
    conn *c = user;
    rh_call *call = stream_call(c, s, stream_id);
    if (call) {
        stream_set_call(c, s, stream_id, NULL);
        ops->close(call, error_code);
    }
    return 0; /* never fatal: a closing stream must not take the connection */
}

static int on_frame_send(nghttp2_session *s, const nghttp2_frame *frame, void *user)
{
    conn *c = user;
    switch (frame->hd.type) {
    case NGHTTP2_RST_STREAM:
        mx_inc(mx_h2_code(mxh.rst_sent, frame->rst_stream.error_code));
        if (frame->rst_stream.error_code != NGHTTP2_NO_ERROR) conn_charge_reset(c);
        break;
    case NGHTTP2_GOAWAY:
        mx_inc(mxh.goaway[c->mx_goaway < MX_GOAWAY_REASONS ? c->mx_goaway : 0]);
        break;
    case NGHTTP2_HEADERS:
    case NGHTTP2_DATA:
        /* Sending headers or data makes the client's next ping legitimate. */
        c->last_ping_ns = 0;
        c->ping_strikes = 0;
        /* Our side ended while the client is still sending: tell it to
         * stop (RFC 9113 8.1), as gRPC servers do. */
        if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
            nghttp2_session_get_stream_remote_close(s, frame->hd.stream_id) == 0)
            nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, frame->hd.stream_id, NGHTTP2_NO_ERROR);
        break;
    default:
        break;
    }
    return 0;
}

static int send_data(nghttp2_session *s, nghttp2_frame *frame, const uint8_t *framehd,
                     size_t length, nghttp2_data_source *src, void *user)
{
    (void)s;
    (void)frame;
    (void)user;
    return ops->send_data(src->ptr, framehd, length);
}

static int on_invalid_frame(nghttp2_session *s, const nghttp2_frame *frame, int err, void *user)
{
    (void)s;
    conn *c = user;
    log_debug("%s: invalid frame type %u on stream %d: %s", c->peer->addr, frame->hd.type,
              frame->hd.stream_id, nghttp2_strerror(err));
    return 0;
}

static int on_error(nghttp2_session *s, int code, const char *msg, size_t len, void *user)
{
    (void)s;
    (void)code;
    conn *c = user;
    log_debug("%s: http2: %.*s", c->peer->addr, (int)len, msg);
    return 0;
}

int h2_init(const rh_settings *s, const h2_stream_ops *stream_ops)
{
    settings = s;
    ops = stream_ops;
    if (nghttp2_session_callbacks_new(&callbacks) != 0) return -12;
    nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(callbacks, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(callbacks, on_frame_send);
    nghttp2_session_callbacks_set_send_data_callback(callbacks, send_data);
    nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(callbacks, on_invalid_frame);
    nghttp2_session_callbacks_set_error_callback2(callbacks, on_error);

    if (nghttp2_option_new(&options) != 0) return -12;
    nghttp2_option_set_max_continuations(options, s->max_continuations);
    nghttp2_option_set_stream_reset_rate_limit(options, s->stream_reset_burst,
                                               s->stream_reset_rate);
    nghttp2_option_set_max_settings(options, s->max_settings);
    nghttp2_option_set_max_outbound_ack(options, s->max_outbound_ack);
    /* Closed streams are kept only for RFC 7540 priorities: not needed. */
    nghttp2_option_set_no_closed_streams(options, 1);
    /* Receive windows are returned by call.c as the gRPC layer takes the
     * bytes, so a paused call (pause_reading) really stops its client. */
    nghttp2_option_set_no_auto_window_update(options, 1);
    return 0;
}

void h2_free(void)
{
    nghttp2_session_callbacks_del(callbacks);
    nghttp2_option_del(options);
    callbacks = NULL;
    options = NULL;
}

int h2_session_new(conn *c)
{
    int rv = nghttp2_session_server_new3(&c->h2, callbacks, c, options, h2mem());
    if (rv != 0) return -12;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, settings->max_concurrent_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, settings->stream_window},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, settings->header_list_soft},
    };
    rv = nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]);
    if (rv == 0) rv = nghttp2_session_set_local_window_size(c->h2, NGHTTP2_FLAG_NONE, 0,
                                                            (int32_t)settings->conn_window);
    return rv == 0 ? 0 : -22;
}

void h2_close_streams(conn *c)
{
    c->last_stream_id = 0; /* the calls go without on_stream_close */
    c->last_call = NULL;
    ops->close_all(c);
}
