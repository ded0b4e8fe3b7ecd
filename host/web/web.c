/* The web protocols (web.h): which protocol a request speaks, CORS, the
 * gRPC call that carries it, and the translation of the call's output.
 *
 * A request becomes a call of call.c exactly as an HTTP/2 gRPC request
 * would: the same header callbacks (":path", "content-type:
 * application/grpc", metadata from the HTTP headers), then the framed
 * request messages, then the end of the stream. So routing, interceptors
 * (authentication, access log), deadlines and message limits are shared.
 * The call's response frames come back through web_call_output. */
#include "web/web.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base64.h"
#include "core/core.h"
#include "json_pb.h"
#include "percent.h"
#include "rpc/rpc.h"
#include "web/web_gateway.h"
#include "web/web_rules.h"
#include "web/web_static.h"
#include "web/web_h2.h"

/* ---------------------------------------------------------------------
 * Status mappings
 * ------------------------------------------------------------------- */

/* grpc-gateway's runtime.HTTPStatusFromCode; Connect uses the same. */
static int http_status_of(rh_status code)
{
    static const int map[] = {200, 499, 500, 400, 504, 404, 409, 403, 429,
                              400, 409, 400, 501, 500, 503, 500, 401};
    return (unsigned)code < sizeof map / sizeof map[0] ? map[code] : 500;
}

static const char *connect_code(rh_status code)
{
    static const char *const names[] = {
        "ok", "canceled", "unknown", "invalid_argument", "deadline_exceeded", "not_found",
        "already_exists", "permission_denied", "resource_exhausted", "failed_precondition",
        "aborted", "out_of_range", "unimplemented", "internal", "unavailable", "data_loss",
        "unauthenticated"};
    return (unsigned)code < sizeof names / sizeof names[0] ? names[code] : "unknown";
}

/* ---------------------------------------------------------------------
 * Responses
 * ------------------------------------------------------------------- */

#define MAX_RESP_HDRS 48
/* The Content-Security-Policy of static files: no inline script or style,
 * nothing from another origin, not framed. */
#define STATIC_CSP                                                                  \
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " \
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

typedef struct hdrs {
    web_hdr h[MAX_RESP_HDRS];
    size_t n;
} hdrs;

static void hdr_add(hdrs *h, const char *name, const char *value)
{
    if (h->n < MAX_RESP_HDRS) h->h[h->n++] = (web_hdr){name, value};
}

static void cors_headers(const web_req *r, hdrs *h)
{
    if (!r->cors) return;
    size_t len;
    const char *origin = web_field_get(r, "origin", &len);
    char *o = r->call ? call_arena_alloc(r->call, len + 1) : NULL;
    static __thread char scratch[512];
    if (!o && len < sizeof scratch) o = scratch;
    if (!o) return;
    memcpy(o, origin, len);
    o[len] = 0;
    hdr_add(h, "Access-Control-Allow-Origin", o);
    hdr_add(h, "Vary", "Origin");
    hdr_add(h, "Access-Control-Expose-Headers",
            "Grpc-Status, Grpc-Message, Grpc-Status-Details-Bin, Content-Type");
}

/* A whole response with a body. */
static void respond(web_req *r, int status, const char *content_type, const void *body,
                    size_t len, hdrs *extra)
{
    hdrs h = {.n = 0};
    if (content_type) hdr_add(&h, "Content-Type", content_type);
    for (size_t i = 0; extra && i < extra->n; i++) hdr_add(&h, extra->h[i].name, extra->h[i].value);
    cors_headers(r, &h);
    r->ops->head(r, status, h.h, h.n, (int64_t)len);
    r->ops->body(r, body, len);
    r->head_sent = true;
    r->ops->end(r);
}

/* An error before any call: google.rpc.Status JSON for the gateway,
 * Connect's error JSON for Connect, a trailer frame for gRPC-Web. */
static void respond_status(web_req *r, int http_status, rh_status code, const char *message)
{
    char *text = NULL;
    json_t *j = NULL;
    if (r->proto == WEB_GRPC_WEB || r->proto == WEB_GRPC_WEB_TEXT) {
        /* gRPC-Web: HTTP 200 with the status as the trailer frame. */
        char tr[600];
        size_t mlen = strlen(message);
        char enc[512 * 3];
        size_t elen = mlen < 500 ? percent_encode(enc, (const uint8_t *)message, mlen) : 0;
        int n = snprintf(tr, sizeof tr, "grpc-status:%d\r\ngrpc-message:%.*s\r\n", (int)code,
                         (int)elen, enc);
        buf b = {0};
        (void)web_frame_append(&b, (const uint8_t *)tr, (size_t)n, 0x80);
        hdrs h = {.n = 0};
        respond(r, 200, r->proto == WEB_GRPC_WEB ? "application/grpc-web+proto"
                                                 : "application/grpc-web-text+proto",
                b.p, b.len, &h);
        free(b.p);
        return;
    }
    if (r->proto == WEB_CONNECT || r->proto == WEB_CONNECT_STREAM)
        j = json_pack("{s:s,s:s}", "code", connect_code(code), "message", message);
    else
        j = json_pack("{s:i,s:s,s:[]}", "code", (int)code, "message", message, "details");
    if (j) text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (r->proto == WEB_CONNECT_STREAM) {
        /* streaming Connect errors travel in the end-of-stream envelope */
        free(text);
        j = json_pack("{s:{s:s,s:s}}", "error", "code", connect_code(code), "message", message);
        text = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        buf b = {0};
        if (text) (void)web_frame_append(&b, (const uint8_t *)text, strlen(text), 0x02);
        respond(r, 200, r->json ? "application/connect+json" : "application/connect+proto", b.p,
                b.len, NULL);
        free(b.p);
        free(text);
        return;
    }
    respond(r, http_status, "application/json", text ? text : "{}", text ? strlen(text) : 2, NULL);
    free(text);
}

/* ---------------------------------------------------------------------
 * CORS
 * ------------------------------------------------------------------- */

static bool origin_allowed(const char *origin, size_t len)
{
    const char *list = settings_get()->cors_origins;
    if (!list || !origin) return false;
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == ',') p++;
        const char *e = p;
        while (*e && *e != ',' && *e != ' ') e++;
        size_t n = (size_t)(e - p);
        if ((n == 1 && *p == '*') || (n == len && strncasecmp(p, origin, n) == 0)) return true;
        p = e;
    }
    return false;
}

/* OPTIONS with Access-Control-Request-Method: the preflight. */
static void preflight(web_req *r)
{
    size_t hlen;
    const char *req_headers = web_field_get(r, "access-control-request-headers", &hlen);
    if (!r->cors) {
        r->proto = WEB_NONE;
        respond(r, 403, "text/plain", "origin not allowed\n", 19, NULL);
        return;
    }
    char allow[1024];
    snprintf(allow, sizeof allow, "%.*s", req_headers && hlen < sizeof allow ? (int)hlen : 0,
             req_headers ? req_headers : "");
    hdrs h = {.n = 0};
    hdr_add(&h, "Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE");
    if (allow[0]) hdr_add(&h, "Access-Control-Allow-Headers", allow);
    hdr_add(&h, "Access-Control-Max-Age", "7200");
    hdrs all = {.n = 0};
    cors_headers(r, &all);
    for (size_t i = 0; i < h.n; i++) hdr_add(&all, h.h[i].name, h.h[i].value);
    r->ops->head(r, 204, all.h, all.n, 0);
    r->head_sent = true;
    r->ops->end(r);
}

/* ---------------------------------------------------------------------
 * Starting the call
 * ------------------------------------------------------------------- */

/* Headers that describe the HTTP exchange, not the call. */
static bool hop_header(const char *n, size_t len)
{
    static const char *const skip[] = {
        "host", "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade",
        "content-length", "content-type", "te", "accept", "accept-encoding", "expect", "trailer",
        "content-encoding", "connect-protocol-version", "connect-timeout-ms",
        "connect-content-encoding", "connect-accept-encoding", "grpc-accept-encoding",
        "grpc-encoding", "origin", "referer", "http2-settings", "sec-fetch-mode",
        "sec-fetch-site", "sec-fetch-dest", "priority"};
    for (size_t i = 0; i < sizeof skip / sizeof skip[0]; i++)
        if (strlen(skip[i]) == len && memcmp(skip[i], n, len) == 0) return true;
    return false;
}

static int hdr(rh_call *call, const char *name, const char *value, size_t vlen)
{
    return call_on_header(call, (const uint8_t *)name, strlen(name), (const uint8_t *)value, vlen);
}

/* Creates the call, gives it the request headers and messages. The call
 * may be answered before this returns. */
static void start_call(web_req *r, const char *grpc_path, const buf *framed)
{
    rh_call *call = call_new(r->c, 0);
    if (!call) {
        respond_status(r, 503, RH_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    call->web = r;
    call->web_proto = (uint8_t)r->proto;
    r->call = call;
    r->n_resp = 0;
    r->resp.off = r->resp.len = 0;
    hdr(call, ":method", "POST", 4);
    hdr(call, ":path", grpc_path, strlen(grpc_path));
    hdr(call, "content-type", "application/grpc", 16);
    hdr(call, "te", "trailers", 8);
    for (uint32_t i = 0; i < r->n_fields; i++) {
        const web_field *f = &r->fields[i];
        const char *name = (const char *)r->raw.p + f->name_off;
        const char *value = (const char *)r->raw.p + f->value_off;
        size_t nlen = f->name_len;
        if (hop_header(name, nlen)) continue;
        if (nlen > 14 && memcmp(name, "grpc-metadata-", 14) == 0) {
            name += 14; /* grpc-gateway's prefix for metadata */
            nlen -= 14;
        }
        if (call_on_header(call, (const uint8_t *)name, nlen, (const uint8_t *)value, f->value_len))
            break; /* over the hard limit: answered at the end of the headers */
    }
    size_t tl;
    const char *timeout = web_field_get(r, "connect-timeout-ms", &tl);
    if (timeout && (r->proto == WEB_CONNECT || r->proto == WEB_CONNECT_STREAM)) {
        char t[16];
        bool digits = tl > 0 && tl <= 8;
        for (size_t i = 0; i < tl && digits; i++) digits = timeout[i] >= '0' && timeout[i] <= '9';
        int n = snprintf(t, sizeof t, "%.*sm", digits ? (int)tl : 1, digits ? timeout : "x");
        hdr(call, "grpc-timeout", t, (size_t)n);
    }
    call_on_headers_end(call);
    if (!call->finished) call_on_data(call, framed->p, framed->len, true);
    if (!call->finished || call->handler) call_on_remote_end(call);
}

/* ---------------------------------------------------------------------
 * Protocols: request side
 * ------------------------------------------------------------------- */

/* "application/json; charset=utf-8" -> "application/json" (lowercase). */
static void media_type(const web_req *r, char *out, size_t size)
{
    size_t len;
    const char *ct = web_field_get(r, "content-type", &len);
    size_t n = 0;
    while (ct && n < len && n + 1 < size && ct[n] != ';' && ct[n] != ' ') {
        char ch = ct[n];
        out[n++] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
    }
    out[n] = 0;
}

static bool method_is(const web_req *r, const char *m) { return strcmp(r->method, m) == 0; }

/* gRPC-Web-text bodies are base64, possibly several padded pieces. */
static int unbase64(const buf *in, buf *out)
{
    const char *p = (const char *)in->p;
    size_t len = in->len, start = 0;
    if (buf_reserve(out, base64_decoded_max(len)) < 0) return -ENOMEM;
    for (size_t i = 0; i <= len; i++) {
        bool cut = i == len || (p[i] == '=' && (i + 1 == len || p[i + 1] != '='));
        if (!cut) continue;
        size_t end = i == len ? len : i + 1;
        if (end > start) {
            size_t n;
            if (base64_decode(out->p + out->len, &n, p + start, end - start) < 0) return -EINVAL;
            out->len += n;
        }
        start = end;
    }
    return 0;
}

/* Connect streaming request envelopes: JSON ones are re-encoded. */
static int connect_envelopes(const web_table *t, const reg_route *route, const char *in_type,
                             const web_req *r, buf *out, char *err, size_t errlen)
{
    const uint8_t *p = r->body.p;
    size_t len = r->body.len, off = 0;
    (void)route;
    while (off < len) {
        if (len - off < 5) {
            snprintf(err, errlen, "truncated envelope");
            return -EINVAL;
        }
        uint8_t flags = p[off];
        uint32_t n = (uint32_t)p[off + 1] << 24 | (uint32_t)p[off + 2] << 16 |
                     (uint32_t)p[off + 3] << 8 | p[off + 4];
        if (n > len - off - 5) {
            snprintf(err, errlen, "truncated envelope");
            return -EINVAL;
        }
        if (flags != 0) {
            snprintf(err, errlen, "envelope flags 0x%02x not supported (no compression)", flags);
            return -EINVAL;
        }
        const uint8_t *m = p + off + 5;
        if (r->json) {
            uint8_t *pb = NULL;
            size_t pl = 0;
            json_pb_error je;
            if (json_pb_encode(t->pool, in_type, (const char *)m, n, &pb, &pl, &je) < 0) {
                snprintf(err, errlen, "%s", je.text);
                free(pb);
                return -EINVAL;
            }
            int rv = web_frame_append(out, pb, pl, 0);
            free(pb);
            if (rv < 0) return rv;
        } else if (web_frame_append(out, m, n, 0) < 0) {
            return -ENOMEM;
        }
        off += 5 + (size_t)n;
    }
    return 0;
}

/* The input type's full name for a route, from the pool. */
static const char *type_name(const web_table *t, const char *grpc_path, bool output)
{
    const descpool_symbol *m = descpool_find_method(t->pool, grpc_path);
    if (!m) return NULL;
    const descpool_symbol *s = descpool_resolve(t->pool, m->parent->full_name,
                                                output ? m->u.method->output_type
                                                       : m->u.method->input_type);
    return s ? s->full_name : NULL;
}

/* /Service/Method with a gRPC-Web or Connect content type. */
static bool serve_rpc_path(web_req *r, const web_table *t, const reg_route *route,
                           const char *path)
{
    char mt[80];
    media_type(r, mt, sizeof mt);
    if (strcmp(mt, "application/grpc-web") == 0 || strcmp(mt, "application/grpc-web+proto") == 0)
        r->proto = WEB_GRPC_WEB;
    else if (strcmp(mt, "application/grpc-web-text") == 0 ||
             strcmp(mt, "application/grpc-web-text+proto") == 0)
        r->proto = WEB_GRPC_WEB_TEXT;
    else if (strcmp(mt, "application/connect+json") == 0 || strcmp(mt, "application/connect+proto") == 0)
        r->proto = WEB_CONNECT_STREAM, r->json = mt[20] == 'j';
    else if (strcmp(mt, "application/json") == 0 || strcmp(mt, "application/proto") == 0)
        r->proto = WEB_CONNECT, r->json = mt[12] == 'j';
    else if (strncmp(mt, "application/grpc", 16) == 0) {
        r->proto = WEB_NONE;
        respond(r, 415, "text/plain", "gRPC needs HTTP/2; use gRPC-Web or Connect over HTTP/1.1\n",
                58, NULL);
        return true;
    } else {
        return false; /* maybe a gateway rule */
    }
    if (!method_is(r, "POST")) {
        hdrs h = {.n = 0};
        hdr_add(&h, "Allow", "POST");
        r->proto = WEB_NONE;
        respond(r, 405, "text/plain", "use POST\n", 9, &h);
        return true;
    }
    buf framed = {0};
    char err[300] = "";
    int rv = 0;
    switch (r->proto) {
    case WEB_GRPC_WEB:
        framed = r->body; /* already gRPC frames */
        break;
    case WEB_GRPC_WEB_TEXT:
        rv = unbase64(&r->body, &framed);
        if (rv == -EINVAL) snprintf(err, sizeof err, "the grpc-web-text body is not base64");
        break;
    case WEB_CONNECT:
        if (route->client_streaming || route->server_streaming) {
            respond_status(r, 415, RH_UNIMPLEMENTED,
                           "a streaming method needs application/connect+json or +proto");
            return true;
        }
        if (r->json) {
            const char *in = type_name(t, path, false);
            uint8_t *pb = NULL;
            size_t pl = 0;
            json_pb_error je;
            if (!in) {
                snprintf(err, sizeof err, "no descriptor for %.200s", path);
                rv = -EINVAL;
            } else if ((rv = json_pb_encode(t->pool, in,
                                            r->body.len ? (const char *)r->body.p : "{}",
                                            r->body.len ? r->body.len : 2, &pb, &pl, &je)) < 0) {
                snprintf(err, sizeof err, "%s", je.text);
            } else {
                rv = web_frame_append(&framed, pb, pl, 0);
            }
            free(pb);
        } else {
            rv = web_frame_append(&framed, r->body.p, r->body.len, 0);
        }
        break;
    case WEB_CONNECT_STREAM: {
        const char *in = type_name(t, path, false);
        if (!in && r->json) {
            snprintf(err, sizeof err, "no descriptor for %.200s", path);
            rv = -EINVAL;
        } else {
            rv = connect_envelopes(t, route, in, r, &framed, err, sizeof err);
        }
        break;
    }
    default:
        break;
    }
    if (rv < 0) {
        if (framed.p != r->body.p) free(framed.p);
        respond_status(r, rv == -ENOMEM ? 503 : 400, rv == -ENOMEM ? RH_RESOURCE_EXHAUSTED : RH_INVALID_ARGUMENT,
                       err[0] ? err : "out of memory");
        return true;
    }
    start_call(r, path, &framed);
    if (framed.p != r->body.p) free(framed.p);
    return true;
}

/* A gateway rule for method + path. */
static void serve_gateway(web_req *r, const web_table *t, const char *path, size_t plen,
                          const char *query, size_t qlen)
{
    r->proto = WEB_GATEWAY;
    r->json = true;
    bool path_known = false;
    for (size_t i = 0; i < t->n_rules; i++) {
        const web_rule *rule = &t->rules[i];
        char *vals[WEB_RULE_MAX_VARS];
        if (!web_rule_match(rule, path, plen, vals)) continue;
        bool same = strcmp(rule->http_method, r->method) == 0;
        if (!same) {
            path_known = true;
            for (uint32_t v = 0; v < rule->n_vars; v++) free(vals[v]);
            continue;
        }
        r->rule = rule;
        buf framed = {0};
        char err[300] = "";
        int rv = web_gateway_request(t, rule, vals, query, qlen, r->body.p, r->body.len, &framed,
                                     err, sizeof err);
        for (uint32_t v = 0; v < rule->n_vars; v++) free(vals[v]);
        if (rv < 0) {
            free(framed.p);
            respond_status(r, rv == -ENOMEM ? 503 : 400,
                           rv == -ENOMEM ? RH_RESOURCE_EXHAUSTED : RH_INVALID_ARGUMENT, err);
            return;
        }
        start_call(r, rule->grpc_path, &framed);
        free(framed.p);
        return;
    }
    if (path_known) {
        respond_status(r, 405, RH_UNIMPLEMENTED, "Method Not Allowed");
        return;
    }
    respond_status(r, 404, RH_NOT_FOUND, "Not Found");
}

void web_dispatch(web_req *r)
{
    r->proto = WEB_NONE;
    r->json = false;
    r->head_sent = false;
    r->rule = NULL;
    r->call = NULL;
    size_t olen;
    const char *origin = web_field_get(r, "origin", &olen);
    r->cors = origin && origin_allowed(origin, olen);

    const char *target = (const char *)r->raw.p;
    size_t tlen = r->target_len;
    const char *q = memchr(target, '?', tlen);
    size_t plen = q ? (size_t)(q - target) : tlen;
    size_t qlen = q ? tlen - plen - 1 : 0;
    if (plen == 0 || target[0] != '/' || plen > 2048) {
        respond(r, 400, "text/plain", "bad request target\n", 19, NULL);
        return;
    }
    if (method_is(r, "OPTIONS") && web_field_get(r, "access-control-request-method", &olen)) {
        preflight(r);
        return;
    }
    bool head = method_is(r, "HEAD");
    const web_static_file *f = (head || method_is(r, "GET")) ? web_static_find(target, plen) : NULL;
    if (f) {
        hdrs h = {.n = 0};
        hdr_add(&h, "Content-Type", f->content_type);
        hdr_add(&h, "Cache-Control", "no-cache");
        /* Static files are consoles shipped with the host: their own
         * scripts and styles only, data from this origin only. */
        hdr_add(&h, "Content-Security-Policy", STATIC_CSP);
        hdr_add(&h, "X-Content-Type-Options", "nosniff");
        hdr_add(&h, "Referrer-Policy", "no-referrer");
        cors_headers(r, &h);
        r->ops->head(r, 200, h.h, h.n, (int64_t)f->len);
        if (!head) r->ops->body(r, f->body, f->len);
        r->head_sent = true;
        r->ops->end(r);
        return;
    }
    reg_snapshot *snap = worker_snapshot(r->c->w);
    if (!snap) {
        respond_status(r, 503, RH_UNAVAILABLE, "no services loaded");
        return;
    }
    const web_table *t = web_table_get(snap);
    if (!t) {
        respond_status(r, 503, RH_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    char path[2049];
    memcpy(path, target, plen);
    path[plen] = 0;
    const reg_route *route = q ? NULL : reg_route_find(snap, path, plen);
    if (route && serve_rpc_path(r, t, route, path)) return;
    serve_gateway(r, t, path, plen, q ? q + 1 : NULL, qlen);
}

/* ---------------------------------------------------------------------
 * Protocols: response side
 * ------------------------------------------------------------------- */

/* Metadata as HTTP headers (copied NUL-terminated into the call arena). */
static void md_headers(rh_call *call, const md_list *l, const char *prefix, hdrs *h)
{
    size_t pl = strlen(prefix);
    for (uint32_t i = 0; i < l->n; i++) {
        const nghttp2_nv *nv = &l->v[i];
        char *name = call_arena_alloc(call, pl + nv->namelen + 1);
        char *value = call_arena_alloc(call, nv->valuelen + 1);
        if (!name || !value) return;
        memcpy(name, prefix, pl);
        memcpy(name + pl, nv->name, nv->namelen);
        name[pl + nv->namelen] = 0;
        memcpy(value, nv->value, nv->valuelen);
        value[nv->valuelen] = 0;
        hdr_add(h, name, value);
    }
}

static void stream_head(web_req *r, const char *content_type)
{
    if (r->head_sent) return;
    hdrs h = {.n = 0};
    hdr_add(&h, "Content-Type", content_type);
    md_headers(r->call, &r->call->init_md,
               r->proto == WEB_GATEWAY ? "Grpc-Metadata-" : "", &h);
    cors_headers(r, &h);
    r->ops->head(r, 200, h.h, h.n, -1);
    r->head_sent = true;
}

static bool streams_out(const web_req *r)
{
    const reg_route *route = r->call->route;
    if (r->proto == WEB_CONNECT_STREAM) return true;
    if (r->proto == WEB_GRPC_WEB || r->proto == WEB_GRPC_WEB_TEXT || r->proto == WEB_GATEWAY)
        return route && route->server_streaming;
    return false;
}

static const char *grpc_web_type(const web_req *r)
{
    return r->proto == WEB_GRPC_WEB ? "application/grpc-web+proto"
                                    : "application/grpc-web-text+proto";
}

/* Sends bytes of a gRPC-Web body (base64 for -text, one padded piece per
 * write, which the protocol allows). */
static void grpc_web_body(web_req *r, const uint8_t *p, size_t n)
{
    if (r->proto == WEB_GRPC_WEB) {
        r->ops->body(r, p, n);
        return;
    }
    char *b64 = malloc(base64_encoded_len(n, true));
    if (!b64) return;
    size_t m = base64_encode(b64, p, n, true);
    r->ops->body(r, (const uint8_t *)b64, m);
    free(b64);
}

/* One response message (payload of a frame) of a streaming response. */
static void stream_message(web_req *r, const uint8_t *msg, size_t len)
{
    const web_table *t = web_table_get(r->call->snap);
    char err[300];
    switch (r->proto) {
    case WEB_GRPC_WEB:
    case WEB_GRPC_WEB_TEXT: {
        buf b = {0};
        stream_head(r, grpc_web_type(r));
        if (web_frame_append(&b, msg, len, 0) == 0) grpc_web_body(r, b.p, b.len);
        free(b.p);
        break;
    }
    case WEB_CONNECT_STREAM: {
        stream_head(r, r->json ? "application/connect+json" : "application/connect+proto");
        buf b = {0};
        if (r->json) {
            char *j = NULL;
            json_pb_error je;
            const char *out = t ? type_name(t, r->call->path, true) : NULL;
            if (out && json_pb_decode(t->pool, out, msg, len, JSON_PB_COMPACT, &j, &je) == 0)
                (void)web_frame_append(&b, (const uint8_t *)j, strlen(j), 0);
            free(j);
        } else {
            (void)web_frame_append(&b, msg, len, 0);
        }
        r->ops->body(r, b.p, b.len);
        free(b.p);
        break;
    }
    case WEB_GATEWAY: {
        stream_head(r, "application/json");
        char *j = NULL;
        if (t && web_gateway_response(t, r->rule, msg, len, &j, err, sizeof err) == 0) {
            r->ops->body(r, (const uint8_t *)"{\"result\":", 10);
            r->ops->body(r, (const uint8_t *)j, strlen(j));
            r->ops->body(r, (const uint8_t *)"}\n", 2);
        }
        free(j);
        break;
    }
    default:
        break;
    }
}

/* The end of a streaming response: the status in the protocol's form. */
static void stream_end(web_req *r, rh_call *call)
{
    switch (r->proto) {
    case WEB_GRPC_WEB:
    case WEB_GRPC_WEB_TEXT: {
        stream_head(r, grpc_web_type(r));
        buf tr = {0}, fr = {0};
        char line[64];
        snprintf(line, sizeof line, "grpc-status:%d\r\n", (int)call->status);
        (void)buf_append(&tr, line, strlen(line));
        size_t ml = strlen(call->status_msg);
        if (ml) {
            char *enc = malloc(percent_encoded_len((const uint8_t *)call->status_msg, ml) + 1);
            if (enc) {
                size_t el = percent_encode(enc, (const uint8_t *)call->status_msg, ml);
                (void)buf_append(&tr, "grpc-message:", 13);
                (void)buf_append(&tr, enc, el);
                (void)buf_append(&tr, "\r\n", 2);
                free(enc);
            }
        }
        for (uint32_t i = 0; i < call->trail_md.n; i++) {
            const nghttp2_nv *nv = &call->trail_md.v[i];
            (void)buf_append(&tr, nv->name, nv->namelen);
            (void)buf_append(&tr, ":", 1);
            (void)buf_append(&tr, nv->value, nv->valuelen);
            (void)buf_append(&tr, "\r\n", 2);
        }
        if (web_frame_append(&fr, tr.p, tr.len, 0x80) == 0) grpc_web_body(r, fr.p, fr.len);
        free(tr.p);
        free(fr.p);
        break;
    }
    case WEB_CONNECT_STREAM: {
        stream_head(r, r->json ? "application/connect+json" : "application/connect+proto");
        json_t *end = json_object();
        if (call->status != RH_OK)
            json_object_set_new(end, "error",
                                json_pack("{s:s,s:s}", "code", connect_code(call->status),
                                          "message", call->status_msg));
        if (call->trail_md.n) {
            json_t *md = json_object();
            for (uint32_t i = 0; i < call->trail_md.n; i++) {
                const nghttp2_nv *nv = &call->trail_md.v[i];
                char key[256];
                snprintf(key, sizeof key, "%.*s", (int)nv->namelen, nv->name);
                json_object_set_new(md, key, json_pack("[s%]", (const char *)nv->value, nv->valuelen));
            }
            json_object_set_new(end, "metadata", md);
        }
        char *text = json_dumps(end, JSON_COMPACT);
        json_decref(end);
        buf b = {0};
        if (text) (void)web_frame_append(&b, (const uint8_t *)text, strlen(text), 0x02);
        r->ops->body(r, b.p, b.len);
        free(b.p);
        free(text);
        break;
    }
    case WEB_GATEWAY: {
        stream_head(r, "application/json");
        if (call->status != RH_OK) {
            json_t *e = json_pack("{s:{s:i,s:s,s:[]}}", "error", "code", (int)call->status,
                                  "message", call->status_msg, "details");
            char *text = e ? json_dumps(e, JSON_COMPACT) : NULL;
            json_decref(e);
            if (text) {
                r->ops->body(r, (const uint8_t *)text, strlen(text));
                r->ops->body(r, (const uint8_t *)"\n", 1);
            }
            free(text);
        }
        break;
    }
    default:
        break;
    }
    r->ops->end(r);
}

/* The end of a unary response: one message in r->resp, or an error. */
static void unary_end(web_req *r, rh_call *call)
{
    hdrs h = {.n = 0};
    const uint8_t *msg = r->resp.p + 5;
    size_t mlen = r->resp.len >= 5 ? r->resp.len - 5 : 0;
    bool ok = call->status == RH_OK;
    if (ok && r->n_resp != 1 && r->proto != WEB_GRPC_WEB && r->proto != WEB_GRPC_WEB_TEXT) {
        call->status = RH_INTERNAL;
        call->status_msg = r->n_resp ? "the method sent more than one response" : "the method sent no response";
        ok = false;
    }
    switch (r->proto) {
    case WEB_GRPC_WEB:
    case WEB_GRPC_WEB_TEXT: {
        /* one body: the messages, then the trailer frame */
        stream_head(r, grpc_web_type(r));
        if (r->resp.len) grpc_web_body(r, r->resp.p, r->resp.len);
        stream_end(r, call);
        return;
    }
    case WEB_CONNECT:
        if (!ok) break;
        md_headers(call, &call->init_md, "", &h);
        md_headers(call, &call->trail_md, "Trailer-", &h);
        if (r->json) {
            const web_table *t = web_table_get(call->snap);
            const char *out = t ? type_name(t, call->path, true) : NULL;
            char *j = NULL;
            json_pb_error je;
            if (out && json_pb_decode(t->pool, out, msg, mlen, JSON_PB_COMPACT, &j, &je) == 0) {
                respond(r, 200, "application/json", j, strlen(j), &h);
                free(j);
                return;
            }
            free(j);
            call->status = RH_INTERNAL;
            call->status_msg = "the response does not convert to JSON";
            ok = false;
            break;
        }
        respond(r, 200, "application/proto", msg, mlen, &h);
        return;
    case WEB_GATEWAY: {
        if (!ok) break;
        md_headers(call, &call->init_md, "Grpc-Metadata-", &h);
        md_headers(call, &call->trail_md, "Grpc-Metadata-", &h);
        const web_table *t = web_table_get(call->snap);
        char *j = NULL;
        char err[300] = "out of memory";
        if (t && web_gateway_response(t, r->rule, msg, mlen, &j, err, sizeof err) == 0) {
            respond(r, 200, "application/json", j, strlen(j), &h);
            free(j);
            return;
        }
        call->status = RH_INTERNAL;
        call->status_msg = "the response does not convert to JSON";
        ok = false;
        break;
    }
    default:
        break;
    }
    respond_status(r, http_status_of(call->status), call->status, call->status_msg);
}

void web_call_output(rh_call *call)
{
    web_req *r = call->web;
    size_t n = buf_avail(&call->outq);
    if (n) {
        /* send() queues whole frames: take them all */
        const uint8_t *p = call->outq.p + call->outq.off;
        size_t off = 0;
        bool stream = streams_out(r);
        r->out_blocked = false;
        while (off + 5 <= n) {
            if (stream && r->ops->queued(r) > WEB_OUT_HIGH) {
                r->out_blocked = true; /* the rest waits in the call's queue */
                break;
            }
            size_t len = (size_t)p[off + 1] << 24 | (size_t)p[off + 2] << 16 |
                         (size_t)p[off + 3] << 8 | p[off + 4];
            if (len > n - off - 5) break;
            r->n_resp++;
            if (stream)
                stream_message(r, p + off + 5, len);
            else
                (void)buf_append(&r->resp, p + off, 5 + len);
            off += 5 + len;
        }
        call_outq_taken(call, off);
    }
    /* the status goes after every message */
    if (!call->finished || call->trailers_submitted || buf_avail(&call->outq)) return;
    call->trailers_submitted = true;
    if (streams_out(r))
        stream_end(r, call);
    else
        unary_end(r, call);
}

void web_output_drained(web_req *r)
{
    rh_call *call = r->call;
    if (!r->out_blocked || !call || !call->conn || call->closed) return;
    web_call_output(call);
}

void web_req_release(web_req *r)
{
    rh_call *call = r->call;
    if (!call) return;
    r->call = NULL;
    call->web = NULL;
    if (call->conn) call_on_stream_close(call, NGHTTP2_NO_ERROR);
}

/* ---------------------------------------------------------------------
 * Wiring
 * ------------------------------------------------------------------- */

static const web_handler handler = {
    .dispatch = web_dispatch,
    .release = web_req_release,
    .drained = web_output_drained,
    .thread_end = web_table_release,
};

static const call_web_hooks call_hooks = {
    .output = web_call_output,
    .claim = web_h2_claim,
    .data = web_h2_data,
    .end = web_h2_end,
    .close = web_h2_close,
};

void web_init(void)
{
    web_set_handler(&handler);
    call_set_web_hooks(&call_hooks);
}
