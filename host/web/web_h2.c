/* Web requests on HTTP/2 streams (web_h2.h). */
#include "web/web_h2.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "rpc/rpc.h"
#include "core/core.h"
#include "web/web.h"

struct web_h2 {
    web_req req;      /* first: web.c's view */
    rh_call *carrier;
    buf out;          /* response body bytes not yet taken by nghttp2 */
    bool eof;         /* the response is complete */
    bool deferred;    /* the data provider waits for bytes */
    bool dispatched;
    bool too_big;     /* the body passed max_recv_message: answered 413 */
    rh_timer drained; /* out emptied while the response was blocked */
};

static void drained_fired(rh_timer *t)
{
    web_h2 *x = (web_h2 *)((char *)t - offsetof(web_h2, drained));
    web_output_drained(&x->req);
}

static void resume(web_h2 *x)
{
    rh_call *carrier = x->carrier;
    if (carrier->closed || !carrier->conn) return;
    if (x->deferred) {
        x->deferred = false;
        nghttp2_session_resume_data(carrier->conn->h2, carrier->stream_id);
    }
    conn_mark_dirty(carrier->conn);
}

static ssize_t data_read(nghttp2_session *s, int32_t stream_id, uint8_t *dst, size_t length,
                         uint32_t *flags, nghttp2_data_source *src, void *user)
{
    (void)s;
    (void)stream_id;
    (void)user;
    web_h2 *x = src->ptr;
    size_t n = buf_avail(&x->out);
    if (n > length) n = length;
    if (n) { /* an empty body (204, HEAD) has no buffer at all */
        memcpy(dst, x->out.p + x->out.off, n);
        buf_consume(&x->out, n);
    }
    if (!buf_avail(&x->out)) {
        /* go on from the loop, not inside nghttp2's callback */
        if (x->req.out_blocked && !x->eof)
            timer_arm(&x->carrier->w->timers, &x->drained, now_ns(), drained_fired);
        if (x->eof) {
            *flags |= NGHTTP2_DATA_FLAG_EOF;
            buf_clear(&x->out, 0);
        } else if (n == 0) {
            x->deferred = true;
            return NGHTTP2_ERR_DEFERRED;
        }
    }
    return (ssize_t)n;
}

static void resp_head(web_req *r, int status, const web_hdr *h, size_t n, int64_t body_len)
{
    web_h2 *x = (web_h2 *)r;
    rh_call *carrier = x->carrier;
    if (carrier->closed || !carrier->conn) return;
    nghttp2_nv *nv = call_arena_alloc(carrier, (n + 2) * sizeof *nv);
    char *st = call_arena_alloc(carrier, 8);
    char *cl = call_arena_alloc(carrier, 24);
    if (!nv || !st || !cl) return;
    size_t k = 0;
    snprintf(st, 8, "%d", status);
    nv[k++] = (nghttp2_nv){(uint8_t *)":status", (uint8_t *)st, 7, strlen(st), NGHTTP2_NV_FLAG_NONE};
    for (size_t i = 0; i < n; i++) {
        size_t nl = strlen(h[i].name);
        char *name = call_arena_alloc(carrier, nl + 1);
        if (!name) return;
        for (size_t j = 0; j <= nl; j++) name[j] = (char)tolower((unsigned char)h[i].name[j]);
        nv[k++] = (nghttp2_nv){(uint8_t *)name, (uint8_t *)h[i].value, nl, strlen(h[i].value),
                               NGHTTP2_NV_FLAG_NONE};
    }
    if (body_len >= 0) {
        snprintf(cl, 24, "%lld", (long long)body_len);
        nv[k++] = (nghttp2_nv){(uint8_t *)"content-length", (uint8_t *)cl, 14, strlen(cl),
                               NGHTTP2_NV_FLAG_NONE};
    }
    nghttp2_data_provider prd = {.source.ptr = x, .read_callback = data_read};
    int rv = nghttp2_submit_response(carrier->conn->h2, carrier->stream_id, nv, k, &prd);
    if (rv != 0) log_debug("stream %d: submit response: %s", carrier->stream_id, nghttp2_strerror(rv));
    conn_mark_dirty(carrier->conn);
}

static void resp_body(web_req *r, const uint8_t *p, size_t n)
{
    web_h2 *x = (web_h2 *)r;
    if (n && buf_append(&x->out, p, n) == 0) resume(x);
}

static void resp_end(web_req *r)
{
    web_h2 *x = (web_h2 *)r;
    x->eof = true;
    resume(x);
}

static size_t resp_queued(const web_req *r) { return buf_avail(&((const web_h2 *)r)->out); }

static const web_resp_ops h2_ops = {resp_head, resp_body, resp_end, resp_queued};

/* The carrier's headers as the web request's fields (-bin values back to
 * base64, as they came). */
static int fill_fields(web_h2 *x, rh_call *carrier)
{
    web_req *r = &x->req;
    if (buf_append(&r->raw, carrier->path, carrier->path_len) < 0) return -1;
    r->target_len = (uint32_t)carrier->path_len;
    char timeout[24];
    if (carrier->deadline) {
        int64_t ms = (carrier->deadline - now_ns()) / 1000000;
        snprintf(timeout, sizeof timeout, "%lldm", (long long)(ms > 0 ? ms : 1));
    }
    for (uint32_t i = 0; i < carrier->n_md + 2 && r->n_fields < WEB_MAX_FIELDS; i++) {
        const char *name, *value;
        size_t vlen;
        char *b64 = NULL;
        if (i == carrier->n_md) {
            if (!carrier->ct_value) continue;
            name = "content-type";
            value = carrier->ct_value;
            vlen = strlen(value);
        } else if (i == carrier->n_md + 1) {
            if (!carrier->deadline) continue;
            name = "grpc-timeout";
            value = timeout;
            vlen = strlen(timeout);
        } else {
            const rh_metadata *m = &carrier->md[i];
            name = m->key;
            size_t kl = strlen(name);
            if (kl > 4 && strcmp(name + kl - 4, "-bin") == 0) {
                b64 = malloc(base64_encoded_len(m->value_len, true));
                if (!b64) return -1;
                vlen = base64_encode(b64, m->value, m->value_len, true);
                value = b64;
            } else {
                value = (const char *)m->value;
                vlen = m->value_len;
            }
        }
        web_field *f = &r->fields[r->n_fields++];
        f->name_off = (uint32_t)r->raw.len;
        f->name_len = (uint32_t)strlen(name);
        int rv = buf_append(&r->raw, name, f->name_len);
        f->value_off = (uint32_t)r->raw.len;
        f->value_len = (uint32_t)vlen;
        if (rv == 0) rv = buf_append(&r->raw, value, vlen);
        free(b64);
        if (rv < 0) return -1;
    }
    return 0;
}

/* Whether a request is for the web layer: a web content type, or a path
 * that is no gRPC method (a gateway rule, or a 404 in JSON). */
static bool wanted(rh_call *carrier)
{
    const char *ct = carrier->ct_value;
    if (ct && (strncasecmp(ct, "application/grpc-web", 20) == 0 ||
               strncasecmp(ct, "application/connect+", 20) == 0 ||
               strncasecmp(ct, "application/json", 16) == 0 ||
               strncasecmp(ct, "application/proto", 17) == 0))
        return true;
    if (carrier->method_name && strcmp(carrier->method_name, "OPTIONS") == 0) return true;
    reg_snapshot *snap = worker_snapshot(carrier->w);
    return !carrier->path || !snap || !reg_route_find(snap, carrier->path, carrier->path_len);
}

bool web_h2_claim(rh_call *carrier)
{
    if (!carrier->path || !carrier->conn || !carrier->conn->h2 || !wanted(carrier)) return false;
    web_h2 *x = calloc(1, sizeof *x);
    if (!x) return false;
    x->carrier = carrier;
    x->req.c = carrier->conn;
    x->req.ops = &h2_ops;
    x->req.transport = "HTTP/2";
    x->req.method = carrier->method_post ? "POST"
                                         : carrier->method_name ? carrier->method_name : "GET";
    if (fill_fields(x, carrier) < 0) {
        free(x->req.raw.p);
        free(x);
        return false;
    }
    carrier->exchange = x;
    return true;
}

void web_h2_data(rh_call *carrier, const uint8_t *data, size_t len)
{
    web_h2 *x = carrier->exchange;
    if (x->too_big || x->dispatched) return;
    if (buf_avail(&x->req.body) + len > carrier->w->s->max_recv_message) {
        static const char msg[] = "request body larger than max_recv_message\n";
        web_hdr h[] = {{"Content-Type", "text/plain; charset=utf-8"}};
        x->too_big = true;
        resp_head(&x->req, 413, h, 1, sizeof msg - 1);
        resp_body(&x->req, (const uint8_t *)msg, sizeof msg - 1);
        resp_end(&x->req);
        return;
    }
    if (buf_append(&x->req.body, data, len) < 0) x->too_big = true;
}

void web_h2_end(rh_call *carrier)
{
    web_h2 *x = carrier->exchange;
    if (x->too_big || x->dispatched) return;
    x->dispatched = true;
    web_dispatch(&x->req);
}

void web_h2_close(rh_call *carrier)
{
    web_h2 *x = carrier->exchange;
    carrier->exchange = NULL;
    timer_cancel(&carrier->w->timers, &x->drained);
    web_req_release(&x->req);
    free(x->req.raw.p);
    free(x->req.body.p);
    free(x->req.resp.p);
    free(x->out.p);
    free(x);
}
