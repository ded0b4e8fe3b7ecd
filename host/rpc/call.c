#include "rpc/call.h"
#include "crash/crash.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "rpc/compress.h"
#include "rpc/recent_errors.h"
#include "grpc_codec.h"
#include "grpc_timeout.h"
#include "metrics/metrics.h"
#include "pb_depth.h"
#include "percent.h"

/* The web layer's entry points (call_set_web_hooks); call->web and
 * call->exchange are only ever set through them. */
static const call_web_hooks *web_hooks;

void call_set_web_hooks(const call_web_hooks *hooks) { web_hooks = hooks; }

#define FREE_CALLS_MAX 512
#define KEEP_READER_BUF (64 * 1024)
#define KEEP_OUTQ (16 * 1024)

#define NV_STATIC(NAME, VALUE)                                                    \
    {(uint8_t *)(NAME), (uint8_t *)(VALUE), sizeof(NAME) - 1, sizeof(VALUE) - 1,  \
     NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE}

static const char *const status_str[] = {"0", "1", "2", "3", "4", "5", "6", "7", "8",
                                         "9", "10", "11", "12", "13", "14", "15", "16"};

/* ------------------------------------------------------------------------
 * Allocation and recycling
 * ---------------------------------------------------------------------- */

rh_call *call_new(conn *c, int32_t stream_id)
{
    worker *w = c->w;
    rh_call *call = w->free_calls;
    uint8_t *rbuf = NULL, *obuf = NULL;
    size_t rcap = 0, ocap = 0;
    if (call) {
        w->free_calls = call->next;
        w->n_free_calls--;
        rbuf = call->reader.buf;
        rcap = call->reader.cap;
        obuf = call->outq.p;
        ocap = call->outq.cap;
    } else {
        call = malloc(sizeof *call);
        if (!call) return NULL;
    }
    /* Zero the bookkeeping, not the inline arena storage. */
    memset(call, 0, offsetof(rh_call, arena_inline));
    call->w = w;
    call->conn = c;
    call->peer = c->peer;
    c->peer->refs++;
    call->stream_id = stream_id;
    atomic_init(&call->refs, 1); /* the stream's reference */
    atomic_init(&call->xstate, 0);
    atomic_init(&call->sendq, 0);
    atomic_init(&call->xpending, 0);
    arena_init(&call->arena, call->arena_inline, sizeof call->arena_inline);
    arena_pb_allocator(&call->arena, &call->pa);
    arena_init(&call->msg_arena, call->msg_inline, sizeof call->msg_inline);
    arena_pb_allocator(&call->msg_arena, &call->msg_pa);
    atomic_flag_clear(&call->arena_lock);
    grpc_frame_reader_init(&call->reader, w->s->max_recv_message);
    call->reader.buf = rbuf;
    call->reader.cap = rcap;
    call->outq.p = obuf;
    call->outq.cap = ocap;
    call->status_msg = "";
    call->start_ns = now_ns();
    mx_inc(mxh.streams_opened); /* closed: call_on_stream_close, once per call */
    call->next = c->calls;
    if (c->calls) c->calls->prev = call;
    c->calls = call;
    c->n_calls++;
    return call;
}

static void call_release(rh_call *call)
{
    worker *w = call->w;
    if (call->routed) reg_instance_call_end(call->route->instance);
    if (call->adopted) reg_instance_unref(call->adopted);
    if (call->snap) reg_snapshot_release(call->snap);
    peer_info_release(call->peer);
    arena_reset(&call->arena);
    arena_reset(&call->msg_arena);
    if (call->reader.cap > KEEP_READER_BUF) grpc_frame_reader_free(&call->reader);
    buf_clear(&call->outq, KEEP_OUTQ);
    buf_clear(&call->held, 0); /* rarely used: not kept */
    if (w->n_free_calls < FREE_CALLS_MAX && !w->stopping) {
        call->next = w->free_calls;
        w->free_calls = call;
        w->n_free_calls++;
        return;
    }
    grpc_frame_reader_free(&call->reader);
    free(call->outq.p);
    free(call);
}

static void writable_check(rh_call *call);
static void arm_resume(rh_call *call);

void call_unref_local(rh_call *call)
{
    if (atomic_fetch_sub_explicit(&call->refs, 1, memory_order_acq_rel) == 1) call_release(call);
}

void call_free_list(worker *w)
{
    while (w->free_calls) {
        rh_call *call = w->free_calls;
        w->free_calls = call->next;
        grpc_frame_reader_free(&call->reader);
        free(call->outq.p);
        free(call);
    }
    w->n_free_calls = 0;
    compress_scratch_free(w->zs);
    w->zs = NULL;
}

void *call_arena_alloc(rh_call *call, size_t size)
{
    /* Plugins may allocate from any thread; the worker allocates here too
     * (metadata, status). Uncontended in practice: a few ns. */
    while (atomic_flag_test_and_set_explicit(&call->arena_lock, memory_order_acquire)) {
    }
    void *p = arena_alloc(&call->arena, size);
    atomic_flag_clear_explicit(&call->arena_lock, memory_order_release);
    return p;
}

static char *call_strndup(rh_call *call, const char *s, size_t len)
{
    char *p = call_arena_alloc(call, len + 1);
    if (!p) return NULL;
    memcpy(p, s, len);
    p[len] = 0;
    return p;
}

/* ------------------------------------------------------------------------
 * Request headers
 * ---------------------------------------------------------------------- */

static bool eq(const uint8_t *a, size_t alen, const char *lit)
{
    size_t n = strlen(lit);
    return alen == n && memcmp(a, lit, n) == 0;
}

/* application/grpc, application/grpc+proto, optionally with ;parameters */
static bool grpc_content_type(const uint8_t *v, size_t n)
{
    static const char base[] = "application/grpc";
    size_t b = sizeof base - 1;
    if (n < b || memcmp(v, base, b) != 0) return false;
    v += b;
    n -= b;
    if (n >= 6 && memcmp(v, "+proto", 6) == 0) {
        v += 6;
        n -= 6;
    }
    return n == 0 || v[0] == ';';
}

static int add_request_md(rh_call *call, const uint8_t *name, size_t namelen,
                          const uint8_t *value, size_t valuelen)
{
    if (call->n_md == call->cap_md) {
        uint32_t cap = call->cap_md ? call->cap_md * 2 : 8;
        rh_metadata *v = call_arena_alloc(call, cap * sizeof *v);
        if (!v) return -ENOMEM;
        if (call->n_md) memcpy(v, call->md, call->n_md * sizeof *v);
        call->md = v;
        call->cap_md = cap;
    }
    rh_metadata *e = &call->md[call->n_md];
    e->key = call_strndup(call, (const char *)name, namelen);
    if (!e->key) return -ENOMEM;
    if (namelen > 4 && memcmp(name + namelen - 4, "-bin", 4) == 0) {
        uint8_t *out = call_arena_alloc(call, base64_decoded_max(valuelen) + 1);
        size_t outlen;
        if (!out) return -ENOMEM;
        if (base64_decode(out, &outlen, (const char *)value, valuelen) < 0) return -EINVAL;
        out[outlen] = 0;
        e->value = out;
        e->value_len = outlen;
    } else {
        e->value = (const uint8_t *)call_strndup(call, (const char *)value, valuelen);
        if (!e->value) return -ENOMEM;
        e->value_len = valuelen;
    }
    call->n_md++;
    return 0;
}

int call_on_header(rh_call *call, const uint8_t *name, size_t namelen, const uint8_t *value,
                   size_t valuelen)
{
    const rh_settings *s = call->w->s;
    /* RFC 9113 6.5.2: name + value + 32 per field. Counted as the fields
     * arrive so nothing past the limit is ever kept. */
    call->hdr_bytes += (uint32_t)(namelen + valuelen + 32);
    if (call->hdr_bytes > s->header_list_hard) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    if (call->hdr_too_big) return 0;
    if (call->hdr_bytes > s->header_list_soft) {
        call->hdr_too_big = true; /* answered at the end of the block */
        return 0;
    }
    /* Client trailers are counted, never kept: the metadata list and the
     * deadline are fixed once the call started (plugin threads read them). */
    if (call->headers_done || call->closed || call->finished) return 0;
    if (name[0] == ':') {
        if (eq(name, namelen, ":method")) {
            call->method_post = eq(value, valuelen, "POST");
            /* kept for the web protocols (GET rules, preflight) */
            if (!call->method_post)
                call->method_name = call_strndup(call, (const char *)value, valuelen > 16 ? 16 : valuelen);
        } else if (eq(name, namelen, ":path")) {
            call->path = call_strndup(call, (const char *)value, valuelen);
            call->path_len = valuelen;
            if (!call->path) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
        return 0;
    }
    switch (name[0]) {
    case 'c':
        if (eq(name, namelen, "content-type")) {
            call->ct_seen = true;
            call->ct_ok = grpc_content_type(value, valuelen);
            /* kept for the web protocols only: gRPC's is not needed */
            if (!call->ct_ok)
                call->ct_value = call_strndup(call, (const char *)value, valuelen > 128 ? 128 : valuelen);
            return 0;
        }
        break;
    case 't':
        if (eq(name, namelen, "te")) {
            call->te_ok = eq(value, valuelen, "trailers");
            return 0;
        }
        break;
    case 'g':
        if (eq(name, namelen, "grpc-timeout")) {
            int64_t ns;
            if (grpc_timeout_parse((const char *)value, valuelen, &ns) < 0) {
                call->timeout_bad = true;
            } else {
                call->deadline = ns > INT64_MAX - call->start_ns ? INT64_MAX : call->start_ns + ns;
            }
            return 0;
        }
        if (eq(name, namelen, "grpc-encoding")) {
            int algo = grpc_codec_from_name((const char *)value, valuelen);
            if (algo < 0) {
                call->enc_bad = true;
                call->enc_name = call_strndup(call, (const char *)value, valuelen > 64 ? 64 : valuelen);
            } else {
                call->req_enc = (uint8_t)algo;
            }
            return 0;
        }
        if (eq(name, namelen, "grpc-accept-encoding")) {
            call->accept_enc = (uint8_t)grpc_codec_parse_accept((const char *)value, valuelen);
            return 0;
        }
        break;
    }
    int rv = add_request_md(call, name, namelen, value, valuelen);
    if (rv == -EINVAL) {
        /* A -bin value that is not base64: refused at the end of the
         * headers with a message naming the key. */
        if (!call->bin_bad) call->bad_key = call->md[call->n_md].key;
        call->bin_bad = true;
        return 0;
    }
    return rv < 0 ? NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE : 0;
}

/* ------------------------------------------------------------------------
 * Response headers and status
 * ---------------------------------------------------------------------- */

static void mark_dirty(rh_call *call)
{
    if (call->conn) conn_mark_dirty(call->conn);
}

static bool stream_open(const rh_call *call) { return call->conn && !call->closed; }

static nghttp2_nv nv_make(const char *name, size_t nlen, const uint8_t *value, size_t vlen)
{
    nghttp2_nv nv = {(uint8_t *)name, (uint8_t *)value, nlen, vlen,
                     NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE};
    return nv;
}

/* grpc-status and grpc-message into nv (2 entries at most). */
static size_t status_nv(rh_call *call, nghttp2_nv *nv)
{
    size_t n = 0;
    int code = (int)call->status;
    const char *cs;
    if (code >= 0 && code <= 16) {
        cs = status_str[code];
    } else {
        char tmp[16];
        int k = snprintf(tmp, sizeof tmp, "%d", code < 0 ? 2 : code);
        cs = call_strndup(call, tmp, (size_t)k);
        if (!cs) cs = "2";
    }
    nv[n++] = nv_make("grpc-status", 11, (const uint8_t *)cs, strlen(cs));
    size_t mlen = strlen(call->status_msg);
    if (mlen) {
        size_t elen = percent_encoded_len((const uint8_t *)call->status_msg, mlen);
        char *enc = call_arena_alloc(call, elen + 1);
        if (enc) {
            percent_encode(enc, (const uint8_t *)call->status_msg, mlen);
            nv[n++] = nv_make("grpc-message", 12, (const uint8_t *)enc, elen);
        }
    }
    return n;
}

/* nghttp2_submit_* copy the array itself (only names and values are
 * borrowed, NO_COPY), so a header block of the usual size is built on the
 * stack; the arena holds only blocks with much metadata. */
#define NV_STACK 8

static nghttp2_nv *nv_array(rh_call *call, nghttp2_nv *stack, size_t n)
{
    return n <= NV_STACK ? stack : call_arena_alloc(call, n * sizeof(nghttp2_nv));
}

static void submit_trailers(rh_call *call)
{
    nghttp2_nv stack[NV_STACK];
    nghttp2_nv *nv = nv_array(call, stack, 2 + call->trail_md.n);
    if (!nv) return;
    size_t n = status_nv(call, nv);
    for (uint32_t i = 0; i < call->trail_md.n; i++) nv[n++] = call->trail_md.v[i];
    call->trailers_submitted = true;
    int rv = nghttp2_submit_trailer(call->conn->h2, call->stream_id, nv, n);
    if (rv != 0) log_debug("stream %d: submit trailer: %s", call->stream_id, nghttp2_strerror(rv));
}

/* Headers with END_STREAM carrying the status: a trailers-only response
 * (also used for the HTTP-level errors 405 and 415). */
static void submit_trailers_only(rh_call *call, const char *http_status)
{
    if (call->web) {
        web_hooks->output(call);
        return;
    }
    size_t cap = 5 + call->init_md.n + call->trail_md.n;
    nghttp2_nv stack[NV_STACK];
    nghttp2_nv *nv = nv_array(call, stack, cap);
    if (!nv) return;
    size_t n = 0;
    nv[n++] = nv_make(":status", 7, (const uint8_t *)http_status, strlen(http_status));
    nv[n++] = (nghttp2_nv)NV_STATIC("content-type", "application/grpc");
    nv[n++] = (nghttp2_nv)NV_STATIC("grpc-accept-encoding", GRPC_CODEC_ACCEPT_VALUE);
    n += status_nv(call, nv + n);
    for (uint32_t i = 0; i < call->init_md.n; i++) nv[n++] = call->init_md.v[i];
    for (uint32_t i = 0; i < call->trail_md.n; i++) nv[n++] = call->trail_md.v[i];
    call->headers_sent = call->trailers_submitted = true;
    int rv = nghttp2_submit_response(call->conn->h2, call->stream_id, nv, n, NULL);
    if (rv != 0) log_debug("stream %d: submit response: %s", call->stream_id, nghttp2_strerror(rv));
    mark_dirty(call);
}

static void submit_headers(rh_call *call)
{
    nghttp2_nv stack[NV_STACK];
    nghttp2_nv *nv = nv_array(call, stack, 4 + call->init_md.n);
    if (!nv) return;
    size_t n = 0;
    nv[n++] = (nghttp2_nv)NV_STATIC(":status", "200");
    nv[n++] = (nghttp2_nv)NV_STATIC("content-type", "application/grpc");
    /* Every response says what the server inflates (HPACK makes the
     * repeats one byte each); grpc-encoding when responses may come
     * compressed (each message's flag says whether it is). */
    nv[n++] = (nghttp2_nv)NV_STATIC("grpc-accept-encoding", GRPC_CODEC_ACCEPT_VALUE);
    if (call->resp_enc == GRPC_CODEC_GZIP)
        nv[n++] = (nghttp2_nv)NV_STATIC("grpc-encoding", "gzip");
    else if (call->resp_enc == GRPC_CODEC_DEFLATE)
        nv[n++] = (nghttp2_nv)NV_STATIC("grpc-encoding", "deflate");
    for (uint32_t i = 0; i < call->init_md.n; i++) nv[n++] = call->init_md.v[i];
    nghttp2_data_provider prd;
    prd.source.ptr = call;
    prd.read_callback = call_data_read;
    call->headers_sent = true;
    int rv = nghttp2_submit_response(call->conn->h2, call->stream_id, nv, n, &prd);
    if (rv != 0) log_debug("stream %d: submit response: %s", call->stream_id, nghttp2_strerror(rv));
}

/* Lets nghttp2 see new response bytes or the status. */
static void kick_output(rh_call *call)
{
    if (!stream_open(call)) return;
    if (call->web) {
        web_hooks->output(call);
        return;
    }
    if (!call->headers_sent) {
        submit_headers(call);
    } else if (call->deferred) {
        call->deferred = false;
        nghttp2_session_resume_data(call->conn->h2, call->stream_id);
    }
    mark_dirty(call);
}

static void send_status(rh_call *call)
{
    if (!stream_open(call) || call->trailers_submitted) return;
    if (call->web) {
        web_hooks->output(call);
        return;
    }
    if (!call->headers_sent)
        submit_trailers_only(call, "200");
    else
        kick_output(call); /* data_read submits the trailers after the data */
}

ssize_t call_data_read(nghttp2_session *s, int32_t stream_id, uint8_t *dst, size_t length,
                       uint32_t *flags, nghttp2_data_source *src, void *user)
{
    (void)s;
    (void)stream_id;
    (void)dst;
    (void)user;
    rh_call *call = src->ptr;
    size_t avail = buf_avail(&call->outq);
    if (avail == 0) {
        if (call->finished) {
            *flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
            submit_trailers(call);
            return 0;
        }
        call->deferred = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    size_t n = avail < length ? avail : length;
    *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    if (n == avail && call->finished) {
        *flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
        submit_trailers(call);
    }
    return (ssize_t)n;
}

void call_outq_taken(rh_call *call, size_t length)
{
    buf_consume(&call->outq, length);
    if (call->conn) call->conn->send_queued -= length;
    atomic_fetch_sub_explicit(&call->sendq, length, memory_order_relaxed);
    if (call->waiters.head) writable_check(call);
}

int call_data_send(rh_call *call, const uint8_t *framehd, size_t length)
{
    buf *out = &call->w->obuf;
    if (buf_reserve(out, 9 + length) < 0) return NGHTTP2_ERR_CALLBACK_FAILURE;
    memcpy(out->p + out->len, framehd, 9);
    memcpy(out->p + out->len + 9, call->outq.p + call->outq.off, length);
    out->len += 9 + length;
    call_outq_taken(call, length);
    return 0;
}

/* Unsent response bytes are dropped (the status is what matters now, or
 * the stream is gone); the connection's queue budget gets them back. */
static void outq_drop(rh_call *call)
{
    size_t n = buf_avail(&call->outq);
    if (call->conn) call->conn->send_queued -= n;
    atomic_fetch_sub_explicit(&call->sendq, n, memory_order_relaxed);
    call->outq.off = call->outq.len = 0;
}

/* ------------------------------------------------------------------------
 * Ending a call
 * ---------------------------------------------------------------------- */

static void run_on_end(rh_call *call)
{
    if (!call->chain || call->ended) return;
    call->ended = true;
    rh_call_stats st = {
        .status = call->status,
        .message = call->status_msg,
        .duration_ns = (uint64_t)(call->end_ns - call->start_ns),
        .bytes_in = call->bytes_in,
        .bytes_out = call->bytes_out,
        .messages_in = call->msgs_in,
        .messages_out = call->msgs_out,
        .bytes_in_uncompressed = call->bytes_in_plain,
        .bytes_out_uncompressed = call->bytes_out_plain,
    };
    const reg_snapshot *snap = call->snap;
    CRASH_ENTER(call);
    for (size_t i = 0; i < snap->n_chain; i++) {
        const rh_interceptor *ic = snap->chain[i].interceptor;
        if (ic->on_end) ic->on_end(call, &st);
    }
    CRASH_LEAVE();
}

/* Every call is counted once, when its status is decided: calls that never
 * reached a route (unknown method, bad headers, stream reset before the
 * headers ended) under the "unknown" method's series. */
static void count_handled(rh_call *call, rh_status code)
{
    const mx_method *mx = call->mx;
    if (!mx) {
        if (!(mx = mx_grpc_unrouted())) return; /* metrics off */
        call->mx = mx;
        mx_inc(mx->started);
    }
    mx_inc(mx->handled[(unsigned)code < MX_GRPC_CODES ? code : RH_UNKNOWN]);
    mx_observe_ns(mx->seconds, call->end_ns - call->start_ns);
}

static void set_status(rh_call *call, rh_status code, const char *message, bool cancelled)
{
    call->finished = true;
    call->status = code;
    if (message && *message) {
        const char *m = call_strndup(call, message, strlen(message));
        call->status_msg = m ? m : "";
    }
    call->end_ns = now_ns();
    /* A stream that carried a web request ends "cancelled" when it closes;
     * the request's own call was counted (and its failure noted). */
    if (!call->carrier) {
        count_handled(call, code);
        if (code != RH_OK)
            recent_errors_note(call->path, (uint32_t)code, call->status_msg,
                               call->peer ? call->peer->addr : NULL);
    }
    atomic_fetch_or_explicit(&call->xstate, XS_DONE | (cancelled ? XS_CANCELLED : 0),
                             memory_order_release);
    timer_cancel(&call->w->timers, &call->deadline_timer);
    /* The call ended: pending notify_writable callbacks are due, and held
     * request bytes are dropped from the loop (a half-close held behind
     * them is still delivered, as it would have been without the pause). */
    writable_check(call);
    arm_resume(call);
}

/* An error answered before any handler or interceptor ran. */
static void reply_error(rh_call *call, const char *http_status, rh_status code,
                        const char *message)
{
    set_status(call, code, message, true);
    if (stream_open(call)) submit_trailers_only(call, http_status);
}

int call_finish(rh_call *call, rh_status code, const char *message)
{
    if (atomic_load_explicit(&call->xstate, memory_order_acquire) & XS_CANCELLED)
        return RH_E_CANCELLED;
    if (call->finished) return RH_E_INVALID;
    set_status(call, code, message, false);
    send_status(call);
    run_on_end(call);
    return 0;
}

static void cancel_fired(rh_timer *t)
{
    rh_call *call = (rh_call *)((char *)t - offsetof(rh_call, cancel_timer));
    if (call->cancel_due) {
        call->cancel_due = false;
        if (call->m->on_cancel) {
            CRASH_ENTER(call);
            call->m->on_cancel(call);
            CRASH_LEAVE();
        }
    }
    run_on_end(call); /* once: it marks the call ended */
    call_unref_local(call); /* the timer's reference */
}

/* defer: the plugin is inside an API function of this call (a send that
 * ended it): its on_cancel and the interceptors' on_end run from the loop
 * instead, so no handler callback ever runs inside send. The handler gets
 * nothing else in between. */
static void abort_call(rh_call *call, rh_status code, const char *message, bool defer)
{
    if (call->finished) return;
    set_status(call, code, message, true);
    /* Unsent responses are dropped: the status is what matters now. */
    if (call->headers_sent && !call->trailers_submitted) outq_drop(call);
    send_status(call);
    if (defer && !atomic_load(&call->w->exited)) {
        bool had_handler = call->handler;
        call->handler = false;
        call->cancel_due = had_handler;
        atomic_fetch_add_explicit(&call->refs, 1, memory_order_relaxed);
        if (timer_arm(&call->w->timers, &call->cancel_timer, now_ns(), cancel_fired) == 0) return;
        atomic_fetch_sub_explicit(&call->refs, 1, memory_order_relaxed);
        call->cancel_due = false;
        call->handler = had_handler; /* no memory for the timer: inline, as before */
    }
    if (call->handler) {
        call->handler = false;
        if (call->m->on_cancel) {
            CRASH_ENTER(call);
            call->m->on_cancel(call);
            CRASH_LEAVE();
        }
    }
    run_on_end(call);
}

void call_abort(rh_call *call, rh_status code, const char *message)
{
    abort_call(call, code, message, false);
}

static void deadline_fired(rh_timer *t)
{
    rh_call *call = (rh_call *)((char *)t - offsetof(rh_call, deadline_timer));
    call_abort(call, RH_DEADLINE_EXCEEDED, "Deadline Exceeded");
}

/* ------------------------------------------------------------------------
 * Routing and interceptors
 * ---------------------------------------------------------------------- */

static void reply_unimplemented(rh_call *call, const reg_snapshot *snap)
{
    /* Tell an unknown service from an unknown method: worth a scan on
     * this error path only. */
    const char *slash = call->path_len > 1 ? memchr(call->path + 1, '/', call->path_len - 1) : NULL;
    char msg[512];
    bool service_known = false;
    if (slash) {
        size_t plen = (size_t)(slash - call->path) + 1;
        for (size_t i = 0; i < snap->n_routes && !service_known; i++)
            service_known = snap->routes[i].path_len > plen &&
                            memcmp(snap->routes[i].path, call->path, plen) == 0;
    }
    if (!slash || call->path[0] != '/') {
        snprintf(msg, sizeof msg, "malformed method path \"%.200s\": expected /package.Service/Method",
                 call->path);
    } else if (service_known) {
        snprintf(msg, sizeof msg, "unknown method %.200s for service %.*s", slash + 1,
                 (int)(slash - call->path - 1), call->path + 1);
    } else {
        snprintf(msg, sizeof msg, "unknown service %.*s", (int)(slash - call->path - 1),
                 call->path + 1);
    }
    reply_error(call, "200", RH_UNIMPLEMENTED, msg);
}

static bool header_errors(rh_call *call)
{
    char msg[256];
    const rh_settings *s = call->w->s;
    if (!call->method_post) {
        reply_error(call, "405", RH_INTERNAL, "gRPC requires the POST method");
        return true;
    }
    if (!call->ct_ok) {
        reply_error(call, "415", RH_INTERNAL,
                    call->ct_seen ? "content-type is not application/grpc"
                                  : "content-type missing: gRPC requires application/grpc");
        return true;
    }
    if (call->hdr_too_big) {
        mx_inc(mxh.hdr_soft);
        snprintf(msg, sizeof msg,
                 "request metadata of %u bytes exceeds the limit of %u bytes; send less metadata",
                 call->hdr_bytes, s->header_list_soft);
        reply_error(call, "200", RH_RESOURCE_EXHAUSTED, msg);
        return true;
    }
    if (call->timeout_bad) {
        reply_error(call, "200", RH_INTERNAL, "malformed grpc-timeout header");
        return true;
    }
    if (call->enc_bad) {
        /* grpc-accept-encoding goes with every response (the client
         * learns what to use next time). */
        snprintf(msg, sizeof msg,
                 "grpc-encoding %s is not supported; this server accepts identity, gzip and "
                 "deflate",
                 call->enc_name ? call->enc_name : "?");
        reply_error(call, "200", RH_UNIMPLEMENTED, msg);
        return true;
    }
    if (call->bin_bad) {
        snprintf(msg, sizeof msg, "metadata %.100s is not valid base64", call->bad_key);
        reply_error(call, "200", RH_INTERNAL, msg);
        return true;
    }
    return false;
}

void call_on_headers_end(rh_call *call)
{
    call->headers_done = true;
    if (call->finished) return;
    /* Not gRPC: gRPC-Web, Connect or the JSON gateway may take it. */
    if (!call->ct_ok && !call->hdr_too_big && !call->bin_bad && web_hooks && web_hooks->claim(call)) {
        call->carrier = true;
        return;
    }
    if (header_errors(call)) return;
    worker *w = call->w;
    reg_snapshot *snap = worker_snapshot(w);
    const reg_route *route = snap ? reg_route_find(snap, call->path, call->path_len) : NULL;
    if (!route) {
        static const reg_snapshot empty;
        reply_unimplemented(call, snap ? snap : &empty);
        return;
    }
    if (route->unavailable) { /* a quarantined plugin's method */
        reply_error(call, "200", RH_UNAVAILABLE, route->unavailable);
        return;
    }
    reg_snapshot_ref(snap);
    call->snap = snap;
    call->route = route;
    call->m = route->method;
    reg_instance_call_begin(route->instance);
    call->routed = true;
    if ((call->mx = route->mx)) mx_inc(call->mx->started);
    if (call->m->call_state_size) {
        call->state = call_arena_alloc(call, call->m->call_state_size);
        if (!call->state) {
            reply_error(call, "200", RH_RESOURCE_EXHAUSTED, "out of memory for the call state");
            return;
        }
        memset(call->state, 0, call->m->call_state_size);
    }
    if (call->deadline) {
        if (call->deadline <= now_ns()) {
            reply_error(call, "200", RH_DEADLINE_EXCEEDED, "Deadline Exceeded");
            return;
        }
        timer_arm(&w->timers, &call->deadline_timer, call->deadline, deadline_fired);
    }
    if (snap->n_chain) {
        call->chain = true;
        for (size_t i = 0; i < snap->n_chain; i++) {
            const rh_interceptor *ic = snap->chain[i].interceptor;
            if (snap->chain[i].unavailable) {
                /* A quarantined interceptor fails closed: an auth check
                 * that cannot run must not let calls through. */
                set_status(call, RH_UNAVAILABLE, snap->chain[i].unavailable, true);
                send_status(call);
                run_on_end(call);
                return;
            }
            if (!ic->on_start) continue;
            const char *msg = NULL;
            CRASH_ENTER(call);
            rh_status st = ic->on_start(call, &msg);
            CRASH_LEAVE();
            if (st != RH_OK) {
                set_status(call, st, msg, true);
                send_status(call);
                run_on_end(call);
                return;
            }
        }
    }
    if (w->s->compression != GRPC_CODEC_IDENTITY) compress_choose(call);
    call->handler = true;
}

/* ------------------------------------------------------------------------
 * Request messages
 * ---------------------------------------------------------------------- */

/* A decoded request message counts in the connection's receive budget for
 * as long as it lives: protobuf-c's structures can be many times the wire
 * size (a 2-byte unknown field becomes a 40-byte entry), and a client keeps
 * the request of a single-message call alive by not ending its stream. */
static void decoded_uncharge(rh_call *call)
{
    if (call->conn) call->conn->rx_bytes -= call->rx_decoded;
    call->rx_decoded = 0;
}

/* Decodes under what the connection's budget has left (the arena refuses
 * to grow past it, so even the decoding cannot take more) and charges the
 * result. NULL after answering the call. */
static ProtobufCMessage *decode(rh_call *call, const grpc_frame_msg *fm)
{
    char msg[256];
    conn *c = call->conn;
    size_t budget = CONN_RX_BUDGET(call->w->s->max_recv_message);
    size_t used = c ? c->rx_bytes : 0;
    size_t room = used < budget ? budget - used : 0;
    /* A single-message call frees its gather buffer right after (below,
     * in deliver): that space is the decoding's too. */
    if (!call->route->client_streaming) room += call->rx_charged;
    call->msg_arena.limit = room ? room : 1;
    ProtobufCMessage *pm =
        protobuf_c_message_unpack(call->route->input, &call->msg_pa, fm->len, fm->data);
    call->rx_decoded = call->msg_arena.heap;
    if (c) c->rx_bytes += call->rx_decoded;
    if (pm) return pm;
    bool over = call->msg_arena.over_limit;
    arena_reset(&call->msg_arena); /* what the failed decode took, at once */
    decoded_uncharge(call);
    if (over) {
        snprintf(msg, sizeof msg,
                 "the request message (%u bytes) decodes to more memory than this connection "
                 "may still hold (%zu of %zu bytes in use); send smaller messages or fewer at "
                 "once",
                 fm->len, used, budget);
        call_abort(call, RH_RESOURCE_EXHAUSTED, msg);
    } else {
        snprintf(msg, sizeof msg, "could not decode the request message as %s",
                 call->route->input->name);
        call_abort(call, RH_INTERNAL, msg);
    }
    return NULL;
}

/* Decodes one (inflated) request message; NULL after answering the call. */
static ProtobufCMessage *decode_checked(rh_call *call, const grpc_frame_msg *fm)
{
    /* protobuf-c has no recursion limit: a type that nests itself would
     * let a small message overflow the worker's stack. */
    if (pb_depth_check(call->route->input, fm->data, fm->len, PB_DEPTH_DEFAULT) < 0) {
        char msg[128];
        snprintf(msg, sizeof msg, "the request message nests more than %d levels deep",
                 PB_DEPTH_DEFAULT);
        call_abort(call, RH_INTERNAL, msg);
        return NULL;
    }
    return decode(call, fm);
}

/* A unary request is kept for END_STREAM, a streaming one goes to
 * on_message. */
static void hand_over(rh_call *call, ProtobufCMessage *pm, bool streaming)
{
    if (streaming) {
        CRASH_ENTER(call);
        call->m->on_message(call, pm);
        CRASH_LEAVE();
        return;
    }
    call->unary_msg = pm;
    /* No other message may follow: the bytes a large request was gathered
     * in are not needed any more (protobuf-c copied them). */
    if (call->reader.cap > KEEP_READER_BUF) {
        if (call->conn) call->conn->rx_bytes -= call->rx_charged;
        call->rx_charged = 0;
        grpc_frame_reader_free(&call->reader);
    }
}

static void deliver(rh_call *call, const grpc_frame_msg *wire)
{
    call->msgs_in++;
    call->bytes_in += wire->len + GRPC_FRAME_PREFIX;
    if (call->mx) mx_inc(call->mx->received);
    bool streaming = call->route->client_streaming;
    if (!streaming && call->msgs_in > 1) {
        char msg[256];
        snprintf(msg, sizeof msg, "unary method %.200s got more than one request message",
                 call->path);
        call_abort(call, RH_INTERNAL, msg);
        return;
    }
    if (streaming) {
        arena_reset(&call->msg_arena);
        decoded_uncharge(call);
    }
    grpc_frame_msg fm = *wire;
    call->msg_compressed = wire->compressed;
    if (wire->compressed && compress_inflate_request(call, wire, &fm) < 0) return;
    call->bytes_in_plain += fm.len + GRPC_FRAME_PREFIX;
    ProtobufCMessage *pm = decode_checked(call, &fm);
    /* protobuf-c copied what it keeps: the inflated bytes go back before
     * the handler runs. */
    if (wire->compressed) compress_request_done(call);
    if (pm) hand_over(call, pm, streaming);
}

/* Feeds request bytes to the frame reader and delivers the messages, until
 * the bytes are used up, the call stops taking them (finished or no
 * handler: the rest is dropped) or the plugin paused it (the rest is left
 * to the caller). Returns the bytes taken: delivered, gathered or dropped. */
static size_t call_feed(rh_call *call, const uint8_t *data, size_t len)
{
    size_t taken = 0;
    while (taken < len) {
        if (!call->handler || call->finished) return len;
        if (call->paused) return taken;
        size_t used = 0;
        grpc_frame_msg fm;
        int rv = grpc_frame_feed(&call->reader, data + taken, len - taken, &used, &fm);
        taken += used;
        if (call->reader.cap != call->rx_charged && call->conn) {
            /* the gather buffer grew: charge the connection's budget */
            call->conn->rx_bytes += call->reader.cap - call->rx_charged;
            call->rx_charged = call->reader.cap;
            if (call->conn->rx_bytes > CONN_RX_BUDGET(call->w->s->max_recv_message)) {
                char msg[160];
                snprintf(msg, sizeof msg,
                         "too many partly received messages on this connection (%zu bytes)",
                         call->conn->rx_bytes);
                call_abort(call, RH_RESOURCE_EXHAUSTED, msg);
                return len;
            }
        }
        if (rv == 0) return len;
        if (rv < 0) {
            char msg[128];
            if (rv == -EMSGSIZE)
                snprintf(msg, sizeof msg, "Received message larger than max (%u vs. %zu)",
                         call->reader.over_len, call->reader.max_len);
            else
                snprintf(msg, sizeof msg, "out of memory re-assembling a request message");
            call_abort(call, RH_RESOURCE_EXHAUSTED, msg);
            return len;
        }
        deliver(call, &fm);
    }
    return taken;
}

/* The gRPC layer took n request bytes: give their flow-control window
 * back. Without the stream level once the client ended the stream (a
 * WINDOW_UPDATE for a stream that sends nothing more is wasted). */
/* The HTTP/2 session whose windows this call's request bytes count in:
 * none for HTTP/1.1, and none for a call translated from a web request
 * (the HTTP/2 stream carrying that request returned the window). */
static nghttp2_session *flow_h2(const rh_call *call)
{
    return call->conn && !call->web ? call->conn->h2 : NULL;
}

static void window_return(rh_call *call, size_t n, bool stream_too)
{
    nghttp2_session *h2 = flow_h2(call);
    if (!h2 || !n) return;
    int rv = stream_too && !call->closed ? nghttp2_session_consume(h2, call->stream_id, n)
                                         : nghttp2_session_consume_connection(h2, n);
    if (rv != 0) log_debug("stream %d: consume: %s", call->stream_id, nghttp2_strerror(rv));
}

/* n held bytes left the hold: the connection's share of their window
 * (flow.h) and, if delivered on an open stream, the stream's. */
static void held_release(rh_call *call, size_t n, bool stream_too)
{
    conn *c = call->conn;
    if (!n) return;
    buf_consume(&call->held, n);
    if (!c) return;
    size_t give = rx_hold_release(&c->hold, n);
    nghttp2_session *h2 = flow_h2(call);
    if (h2 && stream_too && !call->closed && !call->remote_end)
        nghttp2_session_consume_stream(h2, call->stream_id, n);
    if (h2 && give) nghttp2_session_consume_connection(h2, give);
    conn_mark_dirty(c); /* the WINDOW_UPDATEs */
}

/* Keeps request bytes of a paused call. The stream's window stays used
 * (so the client stops when it is spent); the connection's comes back
 * while the connection holds less than its budget (flow.h). */
static void hold(rh_call *call, const uint8_t *data, size_t n)
{
    conn *c = call->conn;
    if (!c) return;
    if (buf_append(&call->held, data, n) < 0) {
        window_return(call, n, false);
        call_abort(call, RH_RESOURCE_EXHAUSTED,
                   "out of memory holding request data for a paused call");
        return;
    }
    size_t give = rx_hold_add(&c->hold, n);
    if (give && flow_h2(call)) nghttp2_session_consume_connection(flow_h2(call), give);
}

/* Whether the plugin's pause holds deliveries back now (a call that ended
 * only drops what it held). */
static bool holding(const rh_call *call)
{
    return call->paused && call->handler && !call->finished;
}

void call_on_data(rh_call *call, const uint8_t *data, size_t len, bool last)
{
    if (call->exchange) {
        /* an HTTP/2 stream carrying a web request: its body */
        web_hooks->data(call, data, len);
        window_return(call, len, !last);
        return;
    }
    size_t taken = 0;
    if (!call->handler || call->finished)
        taken = len; /* dropped */
    else if (!call->paused && !buf_avail(&call->held))
        taken = call_feed(call, data, len);
    window_return(call, taken, !last);
    if (taken < len) hold(call, data + taken, len - taken);
}

static void remote_end_deliver(rh_call *call)
{
    if (!call->handler) return;
    CRASH_ENTER(call);
    if (!call->finished) {
        if (grpc_frame_reader_partial(&call->reader)) {
            call_abort(call, RH_INTERNAL, "request stream ended inside a message");
            CRASH_LEAVE();
            return;
        }
        if (!call->route->client_streaming) {
            if (!call->unary_msg) {
                char msg[256];
                snprintf(msg, sizeof msg, "unary method %.200s got no request message", call->path);
                call_abort(call, RH_INTERNAL, msg);
                CRASH_LEAVE();
                return;
            }
            call->m->on_message(call, call->unary_msg);
        }
    }
    if (call->handler && call->m->on_half_close) call->m->on_half_close(call);
    CRASH_LEAVE();
}

void call_on_remote_end(rh_call *call)
{
    call->remote_end = true;
    if (call->exchange) {
        web_hooks->end(call);
        return;
    }
    if (buf_avail(&call->held) || holding(call)) {
        call->end_held = true; /* after the held bytes, when resumed */
        return;
    }
    remote_end_deliver(call);
}

/* Delivers (or, for a call that ended, drops) what was held, then a held
 * half-close; stops when the plugin pauses again. From the loop, never
 * inside a plugin's callback. */
static void deliver_held(rh_call *call)
{
    if (!stream_open(call)) return;
    atomic_fetch_add_explicit(&call->refs, 1, memory_order_relaxed);
    while (buf_avail(&call->held) && !holding(call) && stream_open(call)) {
        size_t n = call_feed(call, call->held.p + call->held.off, buf_avail(&call->held));
        held_release(call, n, true);
    }
    if (call->end_held && !buf_avail(&call->held) && !holding(call) && stream_open(call)) {
        call->end_held = false;
        remote_end_deliver(call);
    }
    call_unref_local(call);
}

static void resume_fired(rh_timer *t)
{
    deliver_held((rh_call *)((char *)t - offsetof(rh_call, resume_timer)));
}

static void arm_resume(rh_call *call)
{
    if ((!buf_avail(&call->held) && !call->end_held) || holding(call) || !stream_open(call) ||
        timer_armed(&call->resume_timer))
        return;
    if (timer_arm(&call->w->timers, &call->resume_timer, now_ns(), resume_fired) < 0)
        call_abort(call, RH_RESOURCE_EXHAUSTED, "out of memory resuming a paused call");
}

void call_pause_reading(rh_call *call, bool paused)
{
    if (call->paused == paused) return;
    call->paused = paused;
    if (!paused) arm_resume(call);
}

void call_on_stream_close(rh_call *call, uint32_t error_code)
{
    call->closed = true;
    if (call->exchange) web_hooks->close(call); /* ends the web request's call */
    mx_inc(mxh.streams_closed);
    if (!call->finished)
        call_abort(call, RH_CANCELLED,
                   error_code == NGHTTP2_NO_ERROR || error_code == NGHTTP2_CANCEL
                       ? "call cancelled by the client"
                       : "stream reset or connection lost");
    call->handler = false;
    timer_cancel(&call->w->timers, &call->resume_timer);
    call->end_held = false;
    conn *c = call->conn;
    if (c) {
        outq_drop(call); /* a closed stream sends nothing more */
        held_release(call, buf_avail(&call->held), false);
        if (call->prev) call->prev->next = call->next;
        else c->calls = call->next;
        if (call->next) call->next->prev = call->prev;
        call->prev = call->next = NULL;
        c->n_calls--;
        c->rx_bytes -= call->rx_charged;
        call->rx_charged = 0;
        decoded_uncharge(call);
        call->conn = NULL;
    }
    call_unref_local(call);
}

/* ------------------------------------------------------------------------
 * Responses (worker thread)
 * ---------------------------------------------------------------------- */

/* The connection's budget for response bytes waiting on a client that does
 * not read them ([rpchost] max_send_queue): send cannot block, so without it
 * a handler streaming to a client whose window stays closed makes the host
 * buffer without end. Past it the sending call ends RESOURCE_EXHAUSTED; if
 * the client's window is closed the trailers could not leave either, so the
 * stream is reset with ENHANCE_YOUR_CALM (RESOURCE_EXHAUSTED to a gRPC
 * client). 0 when n more bytes may be queued. */
static int outq_admit(rh_call *call, size_t n, bool defer)
{
    conn *c = call->conn;
    if (!c) return 0;
    size_t limit = call->w->s->max_send_queue;
    if (c->send_queued + n <= limit) {
        c->send_queued += n;
        return 0;
    }
    char m[256];
    snprintf(m, sizeof m,
             "%zu response bytes would wait on this connection for a client that does not read "
             "them (limit %zu bytes: [rpchost] max_send_queue)",
             c->send_queued + n, limit);
    log_info("%s: stream %d: %s", call->peer->addr, call->stream_id, m);
    mx_inc(mxh.send_queue_full);
    abort_call(call, RH_RESOURCE_EXHAUSTED, m, defer);
    if (stream_open(call) && flow_h2(call) && (nghttp2_session_get_stream_remote_window_size(c->h2, call->stream_id) <= 0 ||
                              nghttp2_session_get_remote_window_size(c->h2) <= 0))
        nghttp2_submit_rst_stream(c->h2, NGHTTP2_FLAG_NONE, call->stream_id,
                                  NGHTTP2_ENHANCE_YOUR_CALM);
    return RH_E_CANCELLED;
}

/* Queues a framed message; plain_len is its size before compression.
 * defer: made by the plugin's own send on the worker (outq_admit). */
static int send_packed(rh_call *call, const uint8_t *framed, size_t len, size_t plain_len,
                       bool defer)
{
    if (atomic_load_explicit(&call->xstate, memory_order_acquire) & XS_CANCELLED)
        return RH_E_CANCELLED;
    if (call->finished) return RH_E_INVALID;
    int rv = outq_admit(call, len, defer);
    if (rv < 0) return rv;
    if (buf_append(&call->outq, framed, len) < 0) {
        if (call->conn) call->conn->send_queued -= len;
        return RH_E_NOMEM;
    }
    call->msgs_out++;
    call->bytes_out += len;
    call->bytes_out_plain += plain_len;
    if (call->mx) mx_inc(call->mx->sent);
    kick_output(call);
    return 0;
}

int call_send_packed(rh_call *call, const uint8_t *framed, size_t len, bool counted,
                     uint32_t flags)
{
    const uint8_t *out = framed;
    size_t out_len = len;
    bool was_counted = counted;
    if (compress_wanted(call, len - GRPC_FRAME_PREFIX, flags) &&
        compress_response(call, framed + GRPC_FRAME_PREFIX, len - GRPC_FRAME_PREFIX, &out,
                          &out_len) == 0 &&
        counted) {
        /* sendq counted the uncompressed message: count what is queued */
        atomic_fetch_sub_explicit(&call->sendq, len, memory_order_relaxed);
        counted = false;
    }
    /* Not counted: the plugin's send on the worker, whose on_cancel must
     * not run inside send. */
    int rv = send_packed(call, out, out_len, len, !was_counted);
    if (call->w->zs) compress_response_done(call->w);
    if (rv == 0 && !counted)
        atomic_fetch_add_explicit(&call->sendq, out_len, memory_order_relaxed);
    else if (rv != 0 && counted)
        atomic_fetch_sub_explicit(&call->sendq, len, memory_order_relaxed);
    if (rv != 0 && was_counted && call->waiters.head) writable_check(call);
    return rv;
}

int call_send(rh_call *call, const ProtobufCMessage *msg, uint32_t flags)
{
    if (atomic_load_explicit(&call->xstate, memory_order_acquire) & XS_CANCELLED)
        return RH_E_CANCELLED;
    if (call->finished) return RH_E_INVALID;
    size_t n = protobuf_c_message_get_packed_size(msg);
    if (n > call->w->s->max_send_message) {
        char m[128];
        snprintf(m, sizeof m, "response message of %zu bytes exceeds the send limit of %zu", n,
                 call->w->s->max_send_message);
        abort_call(call, RH_RESOURCE_EXHAUSTED, m, true);
        return RH_E_INVALID;
    }
    if (compress_wanted(call, n, flags)) {
        /* Serialised into scratch, then compressed into the queue. */
        uint8_t *p = compress_pack_buf(call, n);
        if (!p) return RH_E_NOMEM;
        grpc_frame_prefix(p, false, (uint32_t)n);
        protobuf_c_message_pack(msg, p + GRPC_FRAME_PREFIX);
        return call_send_packed(call, p, n + GRPC_FRAME_PREFIX, false, flags);
    }
    int rv = outq_admit(call, n + GRPC_FRAME_PREFIX, true);
    if (rv < 0) return rv;
    /* Serialise straight into the output queue: the one copy of the
     * response before TLS. */
    if (buf_reserve(&call->outq, n + GRPC_FRAME_PREFIX) < 0) {
        if (call->conn) call->conn->send_queued -= n + GRPC_FRAME_PREFIX;
        return RH_E_NOMEM;
    }
    uint8_t *p = call->outq.p + call->outq.len;
    grpc_frame_prefix(p, false, (uint32_t)n);
    protobuf_c_message_pack(msg, p + GRPC_FRAME_PREFIX);
    call->outq.len += n + GRPC_FRAME_PREFIX;
    atomic_fetch_add_explicit(&call->sendq, n + GRPC_FRAME_PREFIX, memory_order_relaxed);
    call->msgs_out++;
    call->bytes_out += n + GRPC_FRAME_PREFIX;
    call->bytes_out_plain += n + GRPC_FRAME_PREFIX;
    if (call->mx) mx_inc(call->mx->sent);
    kick_output(call);
    return 0;
}

int call_set_compression(rh_call *call, rh_compression algo)
{
    if (atomic_load_explicit(&call->xstate, memory_order_acquire) & XS_CANCELLED)
        return RH_E_CANCELLED;
    /* grpc-encoding is a response header: fixed once they left. */
    if (call->finished || call->headers_sent) return RH_E_INVALID;
    if (algo == RH_COMPRESS_NONE) {
        call->resp_enc = GRPC_CODEC_IDENTITY;
        call->resp_enc_forced = false;
        return 0;
    }
    if (!(call->accept_enc & GRPC_CODEC_BIT(algo))) return RH_E_UNSUPPORTED;
    call->resp_enc = (uint8_t)algo;
    call->resp_enc_forced = true;
    return 0;
}

static int md_push(rh_call *call, md_list *l, nghttp2_nv nv)
{
    if (l->n == l->cap) {
        uint32_t cap = l->cap ? l->cap * 2 : 4;
        nghttp2_nv *v = call_arena_alloc(call, cap * sizeof *v);
        if (!v) return RH_E_NOMEM;
        if (l->n) memcpy(v, l->v, l->n * sizeof *v);
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = nv;
    return 0;
}

int call_add_metadata(rh_call *call, rh_md_where where, const char *key, const void *value,
                      size_t len)
{
    if (atomic_load_explicit(&call->xstate, memory_order_acquire) & XS_CANCELLED)
        return RH_E_CANCELLED;
    if (call->finished) return RH_E_INVALID;
    if (where == RH_MD_INITIAL && call->headers_sent) return RH_E_INVALID;
    size_t klen = strlen(key);
    char *k = call_arena_alloc(call, klen + 1);
    if (!k) return RH_E_NOMEM;
    for (size_t i = 0; i <= klen; i++)
        k[i] = (key[i] >= 'A' && key[i] <= 'Z') ? (char)(key[i] + 32) : key[i];
    uint8_t *v;
    size_t vlen;
    if (klen > 4 && memcmp(k + klen - 4, "-bin", 4) == 0) {
        vlen = base64_encoded_len(len, false);
        v = call_arena_alloc(call, vlen + 1);
        if (!v) return RH_E_NOMEM;
        base64_encode((char *)v, value, len, false);
    } else {
        vlen = len;
        v = call_arena_alloc(call, len + 1);
        if (!v) return RH_E_NOMEM;
        memcpy(v, value, len);
    }
    return md_push(call, where == RH_MD_INITIAL ? &call->init_md : &call->trail_md,
                   nv_make(k, klen, v, vlen));
}

void call_adopt(rh_call *call, reg_instance *inst, const reg_route *route)
{
    /* The caller's reference on inst becomes the call's (or is dropped). */
    if (call->finished || !call->handler || !call->routed) {
        reg_instance_unref(inst);
        return;
    }
    reg_instance_call_end(call->route->instance);
    reg_instance_call_begin(inst);
    if (call->adopted) reg_instance_unref(call->adopted);
    call->adopted = inst;
    call->route = route;
    call->m = route->method;
}

int call_send_headers(rh_call *call)
{
    if (atomic_load_explicit(&call->xstate, memory_order_acquire) & XS_CANCELLED)
        return RH_E_CANCELLED;
    if (call->finished) return RH_E_INVALID;
    kick_output(call); /* submits the headers if they were not sent yet */
    return 0;
}

/* ------------------------------------------------------------------------
 * call_later
 * ---------------------------------------------------------------------- */

/* On the heap, freed when it fired: a timer in the call arena would stay
 * there until the call ends, so a stream that waits between messages would
 * grow its arena by one entry per wait. */
typedef struct later_timer {
    rh_timer t; /* first: the timer callback casts back */
    rh_call *call;
    void (*cb)(rh_call *, void *);
    void *arg;
} later_timer;

static void later_fired(rh_timer *t)
{
    later_timer *l = (later_timer *)t;
    rh_call *call = l->call;
    void (*cb)(rh_call *, void *) = l->cb;
    void *arg = l->arg;
    free(l);
    CRASH_ENTER(call);
    cb(call, arg);
    CRASH_LEAVE();
    call_unref_local(call); /* the timer's reference */
}

int call_later_local(rh_call *call, uint64_t delay_ns, void (*cb)(rh_call *, void *), void *arg)
{
    if (atomic_load(&call->w->exited)) {
        /* The worker's loop has ended (its last timers already ran): the
         * call was cancelled; run cb now, as promised, exactly once. */
        cb(call, arg);
        return 0;
    }
    later_timer *l = malloc(sizeof *l);
    if (!l) return RH_E_NOMEM;
    memset(l, 0, sizeof *l);
    l->call = call;
    l->cb = cb;
    l->arg = arg;
    atomic_fetch_add_explicit(&call->refs, 1, memory_order_relaxed);
    int64_t when = delay_ns > (uint64_t)INT64_MAX / 2 ? INT64_MAX / 2 : now_ns() + (int64_t)delay_ns;
    if (timer_arm(&call->w->timers, &l->t, when, later_fired) < 0) {
        atomic_fetch_sub(&call->refs, 1);
        free(l);
        return RH_E_NOMEM;
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * notify_writable
 * ---------------------------------------------------------------------- */

static void writable_fired(rh_timer *t)
{
    rh_call *call = (rh_call *)((char *)t - offsetof(rh_call, writable_timer));
    size_t queued = atomic_load_explicit(&call->sendq, memory_order_relaxed);
    flow_waiter *due = flow_waiters_take_due(&call->waiters, queued, call->finished);
    /* Each waiter holds a reference: the call outlives every cb but
     * possibly not the last unref. */
    while (due) {
        flow_waiter *wt = due;
        due = wt->next;
        CRASH_ENTER(call);
        wt->cb(call, wt->arg);
        CRASH_LEAVE();
        free(wt);
        call_unref_local(call);
    }
}

/* Runs the due waiters from the loop (never inside nghttp2's send
 * callback or a plugin's call). */
static void writable_check(rh_call *call)
{
    if (timer_armed(&call->writable_timer) ||
        !flow_waiters_due(&call->waiters,
                          atomic_load_explicit(&call->sendq, memory_order_relaxed),
                          call->finished))
        return;
    if (timer_arm(&call->w->timers, &call->writable_timer, now_ns(), writable_fired) < 0)
        log_error("stream %d: out of memory arming a notify_writable callback; it runs when "
                  "the call's output moves next", call->stream_id);
}

int call_notify_writable_local(rh_call *call, size_t low_water, void (*cb)(rh_call *, void *),
                               void *arg)
{
    if (atomic_load(&call->w->exited)) {
        /* The worker's loop has ended: the call was cancelled; cb now,
         * exactly once (as call_later does). */
        cb(call, arg);
        return 0;
    }
    flow_waiter *wt = malloc(sizeof *wt);
    if (!wt) return RH_E_NOMEM;
    wt->low_water = low_water;
    wt->cb = cb;
    wt->arg = arg;
    atomic_fetch_add_explicit(&call->refs, 1, memory_order_relaxed);
    flow_waiters_push(&call->waiters, wt);
    writable_check(call);
    return 0;
}

uint32_t call_header_bytes(const rh_call *call) { return call->hdr_bytes; }

void call_close_all(conn *c)
{
    while (c->calls) {
        rh_call *call = c->calls;
        if (c->h2) nghttp2_session_set_stream_user_data(c->h2, call->stream_id, NULL);
        call_on_stream_close(call, NGHTTP2_INTERNAL_ERROR);
    }
}

/* The transport's view of a call: one per request stream (h2.h). */
const h2_stream_ops call_stream_ops = {
    .open = call_new,
    .header = call_on_header,
    .header_bytes = call_header_bytes,
    .headers_end = call_on_headers_end,
    .remote_end = call_on_remote_end,
    .data = call_on_data,
    .close = call_on_stream_close,
    .send_data = call_data_send,
    .close_all = call_close_all,
};

/* ------------------------------------------------------------------------
 * Crash records (crash/crash.h): runs in a fatal-signal handler, so plain
 * reads and bounded copies only.
 * ---------------------------------------------------------------------- */

static void copy_field(char *dst, size_t cap, const char *src, size_t n)
{
    size_t i = 0;
    for (; src && i < n && i + 1 < cap && src[i]; i++) dst[i] = src[i];
    dst[i] = '\0';
}

const void *call_crash_describe(const rh_call *call, crash_record *r)
{
    r->has_call = 1;
    copy_field(r->method, sizeof r->method, call->path, call->path_len);
    if (call->peer) copy_field(r->peer, sizeof r->peer, call->peer->addr, sizeof r->peer);
    return call->routed && call->route ? call->route->instance : NULL;
}
