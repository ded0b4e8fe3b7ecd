/* The client side of one gRPC call over HTTP/2. Every nghttp2 stream
 * callback finds its call through the stream user data; a call closed
 * locally (cancel, deadline) clears it, so late frames for that stream are
 * ignored and the call's memory may be reused at once. */
#include "call.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "grpc_status.h"
#include "grpc_timeout.h"
#include "percent.h"

const char *call_code_name(int code)
{
    /* grpcurl prints Go's names; scripts match on them. */
    static const char *const names[] = {
        "OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound",
        "AlreadyExists", "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
        "Aborted", "OutOfRange", "Unimplemented", "Internal", "Unavailable", "DataLoss",
        "Unauthenticated"};
    return code >= 0 && code <= 16 ? names[code] : "Unknown";
}

/* ---- request headers -------------------------------------------------- */

typedef struct sbuf {
    char *p;
    size_t len, cap;
} sbuf;

/* Appends len bytes plus a NUL; returns the offset or -1. */
static long sb_add(sbuf *b, const char *s, size_t len)
{
    if (b->len + len + 1 > b->cap) {
        size_t cap = (b->cap ? b->cap * 2 : 512) + len + 1;
        char *p = realloc(b->p, cap);
        if (!p)
            return -1;
        b->p = p;
        b->cap = cap;
    }
    long off = (long)b->len;
    memcpy(b->p + b->len, s, len);
    b->p[b->len + len] = 0;
    b->len += len + 1;
    return off;
}

static bool valid_md_name(const char *s, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!(isdigit(ch) || islower(ch) || ch == '-' || ch == '_' || ch == '.'))
            return false;
    }
    return true;
}

static bool reserved_md_name(const char *s)
{
    static const char *const reserved[] = {"content-type", "te", "grpc-timeout", "host",
                                           "connection", "transfer-encoding", "upgrade",
                                           "keep-alive", "proxy-connection"};
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
        if (strcmp(s, reserved[i]) == 0)
            return true;
    return false;
}

/* Parses one -H "name: value" into (name, value) appended to sb; -bin
 * values are checked as base64 and re-encoded unpadded. */
static int add_md(sbuf *sb, long *name_off, long *value_off, const char *md, char *err,
                  size_t errlen)
{
    const char *colon = strchr(md, ':');
    if (!colon) {
        snprintf(err, errlen, "bad -H '%s': use -H 'name: value'", md);
        return -EINVAL;
    }
    size_t nlen = (size_t)(colon - md);
    while (nlen && isspace((unsigned char)md[nlen - 1]))
        nlen--;
    char name[256];
    if (nlen == 0 || nlen >= sizeof(name)) {
        snprintf(err, errlen, "bad -H '%s': the name is empty or too long", md);
        return -EINVAL;
    }
    for (size_t i = 0; i < nlen; i++)
        name[i] = (char)tolower((unsigned char)md[i]);
    name[nlen] = 0;
    if (!valid_md_name(name, nlen)) {
        snprintf(err, errlen, "bad -H '%s': metadata names may hold only a-z 0-9 - _ .", md);
        return -EINVAL;
    }
    if (reserved_md_name(name) || strncmp(name, "grpc-", 5) == 0) {
        snprintf(err, errlen, "-H '%s': '%s' is reserved by the gRPC protocol and set by "
                 "rpcall (use --max-time for grpc-timeout)", md, name);
        return -EINVAL;
    }
    const char *v = colon + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    size_t vlen = strlen(v);
    while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
        vlen--;
    *name_off = sb_add(sb, name, nlen);
    if (nlen > 4 && strcmp(name + nlen - 4, "-bin") == 0) {
        uint8_t *raw = malloc(base64_decoded_max(vlen) + 1);
        size_t rawlen = 0;
        if (!raw)
            return -ENOMEM;
        if (base64_decode(raw, &rawlen, v, vlen) != 0) {
            free(raw);
            snprintf(err, errlen, "-H '%s': the value of a -bin key must be base64 "
                     "(e.g. $(printf 'bytes' | base64))", md);
            return -EINVAL;
        }
        char *enc = malloc(base64_encoded_len(rawlen, false) + 1);
        if (!enc) {
            free(raw);
            return -ENOMEM;
        }
        size_t elen = base64_encode(enc, raw, rawlen, false);
        *value_off = sb_add(sb, enc, elen);
        free(raw);
        free(enc);
    } else {
        for (size_t i = 0; i < vlen; i++) {
            unsigned char ch = (unsigned char)v[i];
            if (ch < 0x20 || ch > 0x7e) {
                snprintf(err, errlen, "-H '%s': the value must be printable ASCII; send bytes "
                         "with a name ending in -bin (base64 value)", md);
                return -EINVAL;
            }
        }
        *value_off = sb_add(sb, v, vlen);
    }
    if (*name_off < 0 || *value_off < 0)
        return -ENOMEM;
    return 0;
}

int call_headers_build(call_headers *hd, const char *scheme, const char *authority,
                       const char *path, int64_t timeout_ns, const char *const *md,
                       size_t n_md, const call_encoding *enc, char *err, size_t errlen)
{
    memset(hd, 0, sizeof(*hd));
    size_t max = 10 + n_md;
    long (*off)[2] = calloc(max, sizeof(*off));
    sbuf sb = {0};
    size_t n = 0;
    int rc = -ENOMEM;
    if (!off)
        goto out;
    char tmo[GRPC_TIMEOUT_MAX_LEN];
    const char *fixed[][2] = {
        {":method", "POST"}, {":scheme", scheme}, {":path", path},
        {":authority", authority}, {"content-type", "application/grpc"},
        {"te", "trailers"}, {"user-agent", "rpcall/" RPCALL_VERSION},
    };
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        off[n][0] = sb_add(&sb, fixed[i][0], strlen(fixed[i][0]));
        off[n][1] = sb_add(&sb, fixed[i][1], strlen(fixed[i][1]));
        if (off[n][0] < 0 || off[n][1] < 0)
            goto out;
        n++;
    }
    if (timeout_ns > 0) {
        size_t l = grpc_timeout_format(timeout_ns, tmo);
        off[n][0] = sb_add(&sb, "grpc-timeout", 12);
        off[n][1] = sb_add(&sb, tmo, l);
        if (off[n][0] < 0 || off[n][1] < 0)
            goto out;
        n++;
    }
    const char *codec_hdr[2][2] = {
        {"grpc-encoding", enc && enc->send != GRPC_CODEC_IDENTITY ? grpc_codec_name(enc->send) : NULL},
        {"grpc-accept-encoding", enc ? enc->accept : NULL},
    };
    for (size_t i = 0; i < 2; i++) {
        if (!codec_hdr[i][1])
            continue;
        off[n][0] = sb_add(&sb, codec_hdr[i][0], strlen(codec_hdr[i][0]));
        off[n][1] = sb_add(&sb, codec_hdr[i][1], strlen(codec_hdr[i][1]));
        if (off[n][0] < 0 || off[n][1] < 0)
            goto out;
        n++;
    }
    for (size_t i = 0; i < n_md; i++) {
        rc = add_md(&sb, &off[n][0], &off[n][1], md[i], err, errlen);
        if (rc < 0)
            goto out;
        n++;
    }
    rc = -ENOMEM;
    hd->nv = calloc(n, sizeof(nghttp2_nv));
    if (!hd->nv)
        goto out;
    for (size_t i = 0; i < n; i++) {
        hd->nv[i].name = (uint8_t *)sb.p + off[i][0];
        hd->nv[i].namelen = strlen(sb.p + off[i][0]);
        hd->nv[i].value = (uint8_t *)sb.p + off[i][1];
        hd->nv[i].valuelen = strlen(sb.p + off[i][1]);
        hd->nv[i].flags = NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE;
    }
    hd->n = n;
    hd->store = sb.p;
    sb.p = NULL;
    rc = 0;
out:
    if (rc == -ENOMEM)
        snprintf(err, errlen, "out of memory building request headers");
    free(off);
    free(sb.p);
    if (rc < 0)
        call_headers_free(hd);
    return rc;
}

void call_headers_free(call_headers *hd)
{
    free(hd->nv);
    free(hd->store);
    memset(hd, 0, sizeof(*hd));
}

/* ---- call lifetime ---------------------------------------------------- */

static void link_call(call *c)
{
    c->next = c->h->calls;
    c->prev = NULL;
    if (c->next)
        c->next->prev = c;
    c->h->calls = c;
}

static void unlink_call(call *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else if (c->h->calls == c)
        c->h->calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->next = c->prev = NULL;
}

/* Ends the call locally with a final status and tells the owner. */
static void finish(call *c, int status, const char *message)
{
    if (c->done)
        return;
    c->done = true;
    c->status = status;
    free(c->message);
    c->message = strdup(message ? message : "");
    if (c->stream_id > 0 && c->h->ng)
        nghttp2_session_set_stream_user_data(c->h->ng, c->stream_id, NULL);
    unlink_call(c);
    if (c->cbs.on_close)
        c->cbs.on_close(c, c->ud);
}

static ssize_t data_read(nghttp2_session *s, int32_t stream_id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    (void)src;
    (void)ud;
    call *c = nghttp2_session_get_stream_user_data(s, stream_id);
    if (!c)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* closed locally */
    size_t n = 0;
    if (c->borrowed_off < c->borrowed_len) {
        size_t k = c->borrowed_len - c->borrowed_off;
        if (k > length)
            k = length;
        memcpy(buf, c->borrowed + c->borrowed_off, k);
        c->borrowed_off += k;
        n += k;
    }
    if (n < length && c->q_off < c->q_len) {
        size_t k = c->q_len - c->q_off;
        if (k > length - n)
            k = length - n;
        memcpy(buf + n, c->q + c->q_off, k);
        c->q_off += k;
        n += k;
        if (c->q_off == c->q_len)
            c->q_off = c->q_len = 0;
    }
    if (call_pending(c) == 0) {
        if (c->half_close)
            *flags |= NGHTTP2_DATA_FLAG_EOF;
        else if (n == 0) {
            c->deferred = true;
            return NGHTTP2_ERR_DEFERRED;
        }
    }
    return (ssize_t)n;
}

int call_start(call *c, h2c *h, const call_headers *hd, size_t max_recv, bool keep_md,
               const call_cbs *cbs, void *ud)
{
    memset(c, 0, sizeof(*c));
    c->h = h;
    c->keep_md = keep_md;
    c->grpc_status = -1;
    c->recv_enc = GRPC_CODEC_IDENTITY;
    c->cbs = *cbs;
    c->ud = ud;
    c->start_ns = conn_now_ns();
    grpc_frame_reader_init(&c->fr, max_recv);
    if (h->closed) {
        c->stream_id = -1;
        finish(c, 14, h->err[0] ? h->err : "the connection is closed");
        return -ECONNRESET;
    }
    nghttp2_data_provider prd = {.source = {.ptr = c}, .read_callback = data_read};
    int32_t id = nghttp2_submit_request(h->ng, NULL, hd->nv, hd->n, &prd, c);
    if (id < 0) {
        c->stream_id = -1;
        char m[200];
        snprintf(m, sizeof(m), "cannot start a stream: %s%s", nghttp2_strerror(id),
                 id == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE ? " (reconnect)" : "");
        finish(c, 14, m);
        return -EIO;
    }
    c->stream_id = id;
    link_call(c);
    return 0;
}

size_t call_pending(const call *c)
{
    return (c->borrowed_len - c->borrowed_off) + (c->q_len - c->q_off);
}

static void resume(call *c)
{
    if (c->deferred && !c->done) {
        c->deferred = false;
        nghttp2_session_resume_data(c->h->ng, c->stream_id);
    }
}

int call_frame_compressed(h2c *h, const uint8_t *msg, size_t len, const uint8_t **framed,
                          size_t *framed_len)
{
    h2c_codec *z = &h->codec;
    if (!z->deflater && !(z->deflater = grpc_deflater_new(GRPC_CODEC_LEVEL_DEFAULT)))
        return -ENOMEM;
    size_t need = GRPC_FRAME_PREFIX + grpc_codec_bound(z->deflater, z->send, len);
    if (need > z->zcap) {
        uint8_t *p = realloc(z->zbuf, need);
        if (!p)
            return -ENOMEM;
        z->zbuf = p;
        z->zcap = need;
    }
    size_t clen = grpc_deflate(z->deflater, z->send, msg, len, z->zbuf + GRPC_FRAME_PREFIX,
                               need - GRPC_FRAME_PREFIX);
    if (clen == 0 || clen > UINT32_MAX)
        return -ENOMEM;
    grpc_frame_prefix(z->zbuf, true, (uint32_t)clen);
    *framed = z->zbuf;
    *framed_len = GRPC_FRAME_PREFIX + clen;
    return 0;
}

int call_send(call *c, const uint8_t *msg, size_t len)
{
    if (c->done || c->half_close)
        return -EPIPE;
    if (len > UINT32_MAX)
        return -EMSGSIZE;
    const uint8_t *framed = NULL;
    size_t framed_len = 0;
    if (c->h->codec.send != GRPC_CODEC_IDENTITY) {
        int rc = call_frame_compressed(c->h, msg, len, &framed, &framed_len);
        if (rc < 0)
            return rc;
        /* from here on, the framed message is what is queued */
        msg = framed + GRPC_FRAME_PREFIX;
        len = framed_len - GRPC_FRAME_PREFIX;
    }
    size_t need = GRPC_FRAME_PREFIX + len;
    if (c->q_off > 0 && c->q_off == c->q_len)
        c->q_off = c->q_len = 0;
    if (c->q_len + need > c->q_cap) {
        if (c->q_off > 0) { /* compact before growing */
            memmove(c->q, c->q + c->q_off, c->q_len - c->q_off);
            c->q_len -= c->q_off;
            c->q_off = 0;
        }
        if (c->q_len + need > c->q_cap) {
            size_t cap = c->q_cap ? c->q_cap : 1024;
            while (cap < c->q_len + need)
                cap *= 2;
            uint8_t *p = realloc(c->q, cap);
            if (!p)
                return -ENOMEM;
            c->q = p;
            c->q_cap = cap;
        }
    }
    grpc_frame_prefix(c->q + c->q_len, framed != NULL, (uint32_t)len);
    if (len)
        memcpy(c->q + c->q_len + GRPC_FRAME_PREFIX, msg, len);
    c->q_len += need;
    c->msgs_out++;
    resume(c);
    return 0;
}

int call_send_borrowed(call *c, const uint8_t *framed, size_t len)
{
    if (c->done || c->half_close)
        return -EPIPE;
    c->borrowed = framed;
    c->borrowed_len = len;
    c->borrowed_off = 0;
    resume(c);
    return 0;
}

int call_half_close(call *c)
{
    if (c->done)
        return -EPIPE;
    c->half_close = true;
    resume(c);
    return 0;
}

void call_cancel(call *c, int status, const char *message)
{
    if (c->done)
        return;
    if (c->stream_id > 0 && !c->h->closed)
        nghttp2_submit_rst_stream(c->h->ng, NGHTTP2_FLAG_NONE, c->stream_id, NGHTTP2_CANCEL);
    finish(c, status, message);
}

static void free_md(call_md *md, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(md[i].name);
        free(md[i].value);
    }
    free(md);
}

void call_free(call *c)
{
    if (!c->done && c->h)
        call_cancel(c, 1, "cancelled");
    grpc_frame_reader_free(&c->fr);
    free(c->q);
    free_md(c->headers, c->n_headers);
    free_md(c->trailers, c->n_trailers);
    free(c->grpc_message);
    free(c->details_b64);
    free(c->message);
    free(c->details);
    memset(c, 0, sizeof(*c));
}

void call_fail_all(h2c *h, int status, const char *message)
{
    while (h->calls)
        finish(h->calls, status, message);
}

/* ---- response --------------------------------------------------------- */

static int md_add(call_md **arr, size_t *n, const uint8_t *name, size_t nlen,
                  const uint8_t *value, size_t vlen)
{
    call_md *p = realloc(*arr, (*n + 1) * sizeof(**arr));
    if (!p)
        return -ENOMEM;
    *arr = p;
    p[*n].name = strndup((const char *)name, nlen);
    p[*n].value = strndup((const char *)value, vlen);
    if (!p[*n].name || !p[*n].value) {
        free(p[*n].name);
        free(p[*n].value);
        return -ENOMEM;
    }
    (*n)++;
    return 0;
}

static bool name_is(const uint8_t *name, size_t len, const char *lit)
{
    return len == strlen(lit) && memcmp(name, lit, len) == 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
                     size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
    (void)flags;
    (void)ud;
    if (f->hd.type != NGHTTP2_HEADERS)
        return 0;
    call *c = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (!c)
        return 0;
    bool trailer = f->headers.cat == NGHTTP2_HCAT_HEADERS;
    if (name_is(name, nlen, ":status")) {
        c->http_status = atoi((const char *)value); /* nghttp2 checked: 3 digits */
        return 0;
    }
    if (c->http_status >= 100 && c->http_status < 200)
        return 0; /* interim response */
    if (!trailer && name_is(name, nlen, "grpc-encoding")) {
        c->recv_enc = grpc_codec_from_name((const char *)value, vlen);
        size_t l = vlen < sizeof(c->recv_enc_name) - 1 ? vlen : sizeof(c->recv_enc_name) - 1;
        memcpy(c->recv_enc_name, value, l);
        c->recv_enc_name[l] = 0;
    }
    if (name_is(name, nlen, "content-type")) {
        size_t l = vlen < sizeof(c->content_type) - 1 ? vlen : sizeof(c->content_type) - 1;
        memcpy(c->content_type, value, l);
        c->content_type[l] = 0;
        c->grpc_content_type = vlen >= 16 && memcmp(value, "application/grpc", 16) == 0 &&
                               (vlen == 16 || value[16] == '+' || value[16] == ';');
    } else if (name_is(name, nlen, "grpc-status")) {
        int code = grpc_status_parse((const char *)value, vlen);
        c->grpc_status = code < 0 ? 2 : code;
        if (code < 0) {
            free(c->grpc_message);
            c->grpc_message = strdup("server sent a malformed grpc-status");
        }
    } else if (name_is(name, nlen, "grpc-message")) {
        free(c->grpc_message);
        c->grpc_message = malloc(vlen + 1);
        if (!c->grpc_message)
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        size_t l = percent_decode((uint8_t *)c->grpc_message, (const char *)value, vlen);
        c->grpc_message[l] = 0;
    } else if (name_is(name, nlen, "grpc-status-details-bin")) {
        free(c->details_b64);
        c->details_b64 = strndup((const char *)value, vlen);
    }
    if (c->keep_md && md_add(trailer ? &c->trailers : &c->headers,
                             trailer ? &c->n_trailers : &c->n_headers, name, nlen, value,
                             vlen) < 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    return 0;
}

int call_on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    (void)ud;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_RESPONSE)
        return 0;
    call *c = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (!c || c->http_status < 200)
        return 0;
    c->got_headers = true;
    if (f->hd.flags & NGHTTP2_FLAG_END_STREAM) {
        /* Trailers-only response: what came is the trailers. */
        c->trailers = c->headers;
        c->n_trailers = c->n_headers;
        c->headers = NULL;
        c->n_headers = 0;
    } else if (c->cbs.on_headers) {
        c->cbs.on_headers(c, c->ud);
    }
    return 0;
}

/* Inflates a compressed response message in place of m, at most
 * --max-msg-size bytes. -1 after cancelling the call. */
static int inflate_message(call *c, grpc_frame_msg *m)
{
    char msg[200];
    if (c->recv_enc == GRPC_CODEC_IDENTITY) {
        call_cancel(c, 13, "the server sent a compressed message without a grpc-encoding");
        return -1;
    }
    if (c->recv_enc < 0) {
        snprintf(msg, sizeof(msg), "the server compressed with grpc-encoding %s, which rpcall "
                 "does not support (it accepts gzip and deflate)", c->recv_enc_name);
        call_cancel(c, 12, msg);
        return -1;
    }
    h2c_codec *z = &c->h->codec;
    if (!z->inflater && !(z->inflater = grpc_inflater_new())) {
        call_cancel(c, 8, "out of memory inflating a response message");
        return -1;
    }
    int rc = grpc_inflate(z->inflater, (grpc_codec_algo)c->recv_enc, m->data, m->len,
                          c->fr.max_len, &z->inflated);
    if (rc != GRPC_INFLATE_OK) {
        const char *name = grpc_codec_name((grpc_codec_algo)c->recv_enc);
        bool big = rc == GRPC_INFLATE_TOO_BIG;
        if (big)
            snprintf(msg, sizeof(msg), "a %s response message inflates past the limit of %zu "
                     "bytes; raise --max-msg-size", name, c->fr.max_len);
        else
            snprintf(msg, sizeof(msg), "could not inflate a %s response message: %s", name,
                     grpc_inflate_strerror(rc));
        call_cancel(c, big ? 8 : 13, msg);
        return -1;
    }
    c->msgs_in_compressed++;
    m->data = z->inflated.p;
    m->len = (uint32_t)z->inflated.len;
    return 0;
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t stream_id, const uint8_t *data,
                   size_t len, void *ud)
{
    (void)flags;
    (void)ud;
    call *c = nghttp2_session_get_stream_user_data(s, stream_id);
    while (c && !c->done && len > 0) {
        size_t used = 0;
        grpc_frame_msg m;
        int rc = grpc_frame_feed(&c->fr, data, len, &used, &m);
        data += used;
        len -= used;
        if (rc == 0)
            break;
        char msg[200];
        if (rc == -EMSGSIZE) {
            snprintf(msg, sizeof(msg), "response message of %u bytes is larger than the "
                     "limit of %zu bytes; raise --max-msg-size", c->fr.over_len, c->fr.max_len);
            call_cancel(c, 8, msg);
            break;
        }
        if (rc < 0) {
            call_cancel(c, 8, "out of memory receiving a message");
            break;
        }
        if (m.compressed && inflate_message(c, &m) < 0)
            break;
        c->msgs_in++;
        if (c->cbs.on_message)
            c->cbs.on_message(c, m.data, m.len, c->ud);
    }
    return 0;
}

/* gRPC's mapping of HTTP status to a code, when there is no grpc-status. */
static int http_to_code(int http)
{
    switch (http) {
    case 400: return 13;
    case 401: return 16;
    case 403: return 7;
    case 404: return 12;
    case 429: case 502: case 503: case 504: return 14;
    default: return 2;
    }
}

static int rst_to_code(uint32_t e)
{
    switch (e) {
    case NGHTTP2_REFUSED_STREAM: return 14;
    case NGHTTP2_CANCEL: return 1;
    case NGHTTP2_ENHANCE_YOUR_CALM: return 8;
    case NGHTTP2_INADEQUATE_SECURITY: return 7;
    default: return 13;
    }
}

static void decode_details(call *c)
{
    if (!c->details_b64)
        return;
    size_t l = strlen(c->details_b64), out = 0;
    c->details = malloc(base64_decoded_max(l) + 1);
    if (c->details && base64_decode(c->details, &out, c->details_b64, l) == 0) {
        c->details_len = out;
    } else {
        free(c->details);
        c->details = NULL;
    }
}

static int on_stream_close(nghttp2_session *s, int32_t stream_id, uint32_t error_code, void *ud)
{
    (void)ud;
    call *c = nghttp2_session_get_stream_user_data(s, stream_id);
    if (!c || c->done)
        return 0;
    char m[600];
    if (c->grpc_status >= 0) {
        if (c->grpc_status == 0 && grpc_frame_reader_partial(&c->fr)) {
            finish(c, 13, "the stream ended in the middle of a response message");
            return 0;
        }
        decode_details(c);
        finish(c, c->grpc_status, c->grpc_message ? c->grpc_message : "");
        return 0;
    }
    if (error_code != NGHTTP2_NO_ERROR) {
        if (error_code == NGHTTP2_REFUSED_STREAM)
            snprintf(m, sizeof(m), "the server refused the stream (REFUSED_STREAM); it is "
                     "shutting down or overloaded, retry");
        else
            snprintf(m, sizeof(m), "the stream was reset (RST_STREAM %s) before a status "
                     "arrived", h2c_error_name(error_code));
        finish(c, rst_to_code(error_code), m);
        return 0;
    }
    if (c->got_headers && c->http_status != 200) {
        snprintf(m, sizeof(m), "the server answered HTTP %d without a gRPC status; is %s a "
                 "gRPC endpoint?", c->http_status, c->h->c->peer);
        finish(c, http_to_code(c->http_status), m);
        return 0;
    }
    if (c->got_headers && !c->grpc_content_type) {
        snprintf(m, sizeof(m), "the server answered with content-type '%s', not gRPC",
                 c->content_type[0] ? c->content_type : "(none)");
        finish(c, 2, m);
        return 0;
    }
    finish(c, 13, "the server ended the stream without a grpc-status trailer");
    return 0;
}

void call_set_session_callbacks(nghttp2_session_callbacks *cbs)
{
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, call_on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
}
