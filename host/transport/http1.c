/* HTTP/1.1 connections (see http1.h).
 *
 * Parsing: libhttp-parser (Debian's libhttp-parser-dev 2.9.4) in strict
 * mode. It refuses a request carrying both Content-Length and
 * Transfer-Encoding, duplicate Content-Length, a Transfer-Encoding whose
 * last coding is not chunked, bad chunk sizes and bare LF in headers, so
 * those smuggling shapes end as 400 and a closed connection.
 *
 * One request at a time: the parser pauses at the end of each message;
 * bytes after it (pipelined requests) stay in `in` until the response is
 * complete, then parsing resumes from a zero-delay timer (never inside
 * the plugin's finish, which may be where the response ended).
 *
 * Timers: `request_timeout` runs from a request's first byte to its last
 * (slow headers or slow bodies get 408 and the connection closes);
 * `keepalive_timeout` closes an idle connection between requests. While a
 * request is served no timer runs: the call's deadline applies. */
#include "transport/http1.h"

#include <ctype.h>
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "event/event.h"

typedef struct http1 http1;

typedef enum h1_phase {
    H1_IDLE,    /* between requests */
    H1_READING, /* a request is arriving */
    H1_SERVING, /* a complete request is being answered */
} h1_phase;

struct http1 {
    conn *c;
    http_parser parser;
    h1_phase phase;
    buf in;           /* unparsed input (pipelined requests) */
    buf out;          /* response bytes for conn_flush */
    web_req req;      /* the request being read or served */
    bool in_value;    /* the last header callback was a value */
    bool expect_continue;
    bool chunked_out; /* the response body is sent chunked */
    bool keep_alive;  /* the request allows another one after it */
    bool close_after; /* close once the current response is written */
    bool done;        /* nothing more: close when the output is written */
    int error_status; /* set by a callback that stops the parser */
    const char *error_text;
    uint32_t header_bytes;
    rh_timer timer;   /* request or keep-alive timeout */
    rh_timer resume;  /* parse what waited after a response */
};

static http_parser_settings parser_settings;

static http1 *h1_of(const conn *c) { return c->h1; }

/* ---------------------------------------------------------------------
 * Responses
 * ------------------------------------------------------------------- */

static const char *reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 499: return "Client Closed Request";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Status";
    }
}

static void out_str(http1 *h, const char *s) { (void)buf_append(&h->out, s, strlen(s)); }

static void resp_head(web_req *r, int status, const web_hdr *hd, size_t n, int64_t body_len)
{
    http1 *h = r->c->h1;
    char line[96];
    /* HTTP/1.0 has no chunked coding: a streamed body ends with the
     * connection. */
    bool v10 = h->parser.http_minor == 0;
    h->chunked_out = body_len < 0 && !v10;
    if (body_len < 0 && v10) h->close_after = true;
    snprintf(line, sizeof line, "HTTP/1.%d %d %s\r\n", v10 ? 0 : 1, status, reason(status));
    out_str(h, line);
    for (size_t i = 0; i < n; i++) {
        out_str(h, hd[i].name);
        out_str(h, ": ");
        out_str(h, hd[i].value);
        out_str(h, "\r\n");
    }
    if (body_len >= 0) {
        snprintf(line, sizeof line, "Content-Length: %lld\r\n", (long long)body_len);
        out_str(h, line);
    } else if (h->chunked_out) {
        out_str(h, "Transfer-Encoding: chunked\r\n");
    }
    if (h->close_after || !h->keep_alive)
        out_str(h, "Connection: close\r\n");
    else if (v10)
        out_str(h, "Connection: keep-alive\r\n");
    out_str(h, "\r\n");
    conn_mark_dirty(r->c);
}

static void resp_body(web_req *r, const uint8_t *p, size_t n)
{
    http1 *h = r->c->h1;
    if (!n) return;
    if (h->chunked_out) {
        char size[24];
        snprintf(size, sizeof size, "%zx\r\n", n);
        out_str(h, size);
    }
    (void)buf_append(&h->out, p, n);
    if (h->chunked_out) out_str(h, "\r\n");
    conn_mark_dirty(r->c);
}

static void resume_fired(rh_timer *t);

static void resp_end(web_req *r)
{
    http1 *h = r->c->h1;
    if (h->chunked_out) out_str(h, "0\r\n\r\n");
    h->chunked_out = false;
    conn_mark_dirty(r->c);
    if (h->phase != H1_SERVING) return;
    h->phase = H1_IDLE;
    if (h->close_after || !h->keep_alive) {
        h->done = true;
        return;
    }
    /* Parse what waited (pipelined requests), from the loop. */
    timer_arm(&h->c->w->timers, &h->resume, now_ns(), resume_fired);
}

static size_t resp_queued(const web_req *r)
{
    const conn *c = r->c;
    return buf_avail(&c->h1->out) + buf_avail(&c->pend);
}

static const web_resp_ops http1_ops = {resp_head, resp_body, resp_end, resp_queued};

/* An HTTP-level error: a short text body, and the connection closes (the
 * request's framing may not be trustworthy). */
static void answer_error(http1 *h, int status, const char *text)
{
    char body[256];
    int n = snprintf(body, sizeof body, "%s\n", text);
    h->close_after = true;
    h->phase = H1_SERVING;
    web_hdr hd[] = {{"Content-Type", "text/plain; charset=utf-8"}};
    resp_head(&h->req, status, hd, 1, n);
    resp_body(&h->req, (const uint8_t *)body, (size_t)n);
    resp_end(&h->req);
    log_debug("%s: HTTP/1.1 %d: %s", h->c->peer->addr, status, text);
}

/* ---------------------------------------------------------------------
 * Timers
 * ------------------------------------------------------------------- */

static void timeout_fired(rh_timer *t)
{
    http1 *h = (http1 *)((char *)t - offsetof(http1, timer));
    if (h->phase == H1_READING) {
        answer_error(h, 408, "request not received in time");
        return;
    }
    if (h->phase == H1_IDLE) conn_close(h->c, "HTTP/1.1 keep-alive timeout");
}

static void arm_timer(http1 *h, uint32_t ms)
{
    if (ms)
        timer_arm(&h->c->w->timers, &h->timer, now_ns() + (int64_t)ms * 1000000, timeout_fired);
    else
        timer_cancel(&h->c->w->timers, &h->timer);
}

/* ---------------------------------------------------------------------
 * Parser callbacks
 * ------------------------------------------------------------------- */

static int stop(http1 *h, int status, const char *text)
{
    h->error_status = status;
    h->error_text = text;
    return -1;
}

/* Counts header bytes (target included) against the limit. */
static int charge(http1 *h, size_t n)
{
    h->header_bytes += (uint32_t)n;
    if (h->header_bytes > h->c->w->s->header_list_hard)
        return stop(h, 431, "request header fields too large");
    return 0;
}

static int on_message_begin(http_parser *p)
{
    http1 *h = p->data;
    web_req *r = &h->req;
    r->raw.off = r->raw.len = 0;
    r->body.off = r->body.len = 0;
    r->target_len = 0;
    r->n_fields = 0;
    h->in_value = false;
    h->expect_continue = false;
    h->header_bytes = 0;
    h->phase = H1_READING;
    arm_timer(h, h->c->w->s->http1_request_timeout_ms);
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    http1 *h = p->data;
    if (charge(h, n) < 0) return -1;
    if (buf_append(&h->req.raw, at, n) < 0) return stop(h, 500, "out of memory");
    h->req.target_len += (uint32_t)n;
    return 0;
}

static int append_lower(buf *b, const char *at, size_t n)
{
    if (buf_reserve(b, n) < 0) return -1;
    for (size_t i = 0; i < n; i++) b->p[b->len + i] = (uint8_t)tolower((unsigned char)at[i]);
    b->len += n;
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
    http1 *h = p->data;
    web_req *r = &h->req;
    if (charge(h, n + (h->in_value || !r->n_fields ? 32 : 0)) < 0) return -1;
    if (h->in_value || r->n_fields == 0) {
        if (r->n_fields == WEB_MAX_FIELDS) return stop(h, 431, "too many request header fields");
        web_field *f = &r->fields[r->n_fields++];
        f->name_off = (uint32_t)r->raw.len;
        f->name_len = 0;
        f->value_off = 0;
        f->value_len = 0;
        h->in_value = false;
    }
    if (append_lower(&r->raw, at, n) < 0) return stop(h, 500, "out of memory");
    r->fields[r->n_fields - 1].name_len += (uint32_t)n;
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
    http1 *h = p->data;
    web_req *r = &h->req;
    if (charge(h, n) < 0) return -1;
    web_field *f = &r->fields[r->n_fields - 1];
    if (!h->in_value) {
        f->value_off = (uint32_t)r->raw.len;
        h->in_value = true;
    }
    if (buf_append(&r->raw, at, n) < 0) return stop(h, 500, "out of memory");
    f->value_len += (uint32_t)n;
    return 0;
}

static bool field_is(const web_req *r, const char *name, const char *value)
{
    size_t len;
    const char *v = web_field_get(r, name, &len);
    return v && len == strlen(value) && strncasecmp(v, value, len) == 0;
}

static int on_headers_complete(http_parser *p)
{
    http1 *h = p->data;
    web_req *r = &h->req;
    const rh_settings *s = h->c->w->s;
    if (p->http_major != 1) return stop(h, 505, "only HTTP/1.0 and HTTP/1.1 are served here");
    r->method = http_method_str((enum http_method)p->method);
    h->keep_alive = http_should_keep_alive(p) != 0;
    bool chunked = (p->flags & F_CHUNKED) != 0;
    bool has_length = (p->flags & F_CONTENTLENGTH) != 0;
    bool wants_body = p->method == HTTP_POST || p->method == HTTP_PUT || p->method == HTTP_PATCH;
    size_t te_len;
    if (!chunked && web_field_get(r, "transfer-encoding", &te_len))
        return stop(h, 400, "Transfer-Encoding must end in chunked");
    if (wants_body && !chunked && !has_length)
        return stop(h, 411, "a request body needs Content-Length or chunked Transfer-Encoding");
    if (has_length && p->content_length > s->max_recv_message)
        return stop(h, 413, "request body larger than max_recv_message");
    if (field_is(r, "expect", "100-continue")) h->expect_continue = true;
    if (h->expect_continue && p->http_minor >= 1) {
        out_str(h, "HTTP/1.1 100 Continue\r\n\r\n");
        conn_mark_dirty(h->c);
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    http1 *h = p->data;
    web_req *r = &h->req;
    if (buf_avail(&r->body) + n > h->c->w->s->max_recv_message)
        return stop(h, 413, "request body larger than max_recv_message");
    if (buf_append(&r->body, at, n) < 0) return stop(h, 500, "out of memory");
    return 0;
}

static int on_message_complete(http_parser *p)
{
    http1 *h = p->data;
    h->phase = H1_SERVING;
    timer_cancel(&h->c->w->timers, &h->timer);
    http_parser_pause(p, 1); /* one request at a time */
    return 0;
}

/* ---------------------------------------------------------------------
 * Input
 * ------------------------------------------------------------------- */

/* A complete request goes up to the web layer. */
static void dispatch(http1 *h)
{
    const web_handler *wh = web_get_handler();
    if (!wh) {
        answer_error(h, 503, "no web protocols in this build");
        return;
    }
    wh->dispatch(&h->req);
}

/* Parses from data until a request is complete (then serves it), the
 * bytes are used up or an error ends the connection. Returns the bytes
 * taken; the caller keeps the rest for later. */
static size_t parse(http1 *h, const uint8_t *data, size_t n)
{
    size_t taken = 0;
    while (taken < n && h->phase != H1_SERVING && !h->done) {
        if (h->phase == H1_IDLE) arm_timer(h, h->c->w->s->http1_request_timeout_ms);
        size_t used = http_parser_execute(&h->parser, &parser_settings,
                                          (const char *)data + taken, n - taken);
        taken += used;
        enum http_errno e = HTTP_PARSER_ERRNO(&h->parser);
        if (e == HPE_PAUSED) {
            http_parser_pause(&h->parser, 0);
            dispatch(h);
            continue;
        }
        if (e != HPE_OK) {
            if (h->error_status)
                answer_error(h, h->error_status, h->error_text);
            else
                answer_error(h, 400, http_errno_description(e));
            return n;
        }
    }
    return taken;
}

int http1_feed(conn *c, const uint8_t *data, size_t n)
{
    http1 *h = h1_of(c);
    if (h->done) return -1; /* input after a closing response is ignored */
    if (!buf_avail(&h->in)) {
        size_t taken = parse(h, data, n);
        data += taken;
        n -= taken;
    }
    if (n && !h->done && buf_append(&h->in, data, n) < 0) {
        conn_close(c, "out of memory");
        return -1;
    }
    return c->state == CONN_CLOSED ? -1 : 0;
}

bool http1_input_paused(const conn *c)
{
    const http1 *h = h1_of(c);
    return h->done || buf_avail(&h->in) >= HTTP1_PIPELINE_MAX;
}

static void resume_fired(rh_timer *t)
{
    http1 *h = (http1 *)((char *)t - offsetof(http1, resume));
    conn *c = h->c;
    if (h->phase == H1_SERVING) return;
    const web_handler *wh = web_get_handler();
    if (wh) wh->release(&h->req);
    arm_timer(h, c->w->s->http1_keepalive_timeout_ms);
    if (buf_avail(&h->in)) {
        size_t taken = parse(h, h->in.p + h->in.off, buf_avail(&h->in));
        if (c->state == CONN_CLOSED) return;
        buf_consume(&h->in, taken);
    }
    if (!buf_avail(&h->in)) buf_clear(&h->in, 0);
    /* Reading may have stopped while the pipeline was full. */
    if (!h->done) conns_mark_readable(c->w, c);
}

/* ---------------------------------------------------------------------
 * Life
 * ------------------------------------------------------------------- */

int http1_start(conn *c)
{
    static bool settings_ready;
    if (!settings_ready) {
        /* Constant after the first call; every worker sets the same. */
        parser_settings.on_message_begin = on_message_begin;
        parser_settings.on_url = on_url;
        parser_settings.on_header_field = on_header_field;
        parser_settings.on_header_value = on_header_value;
        parser_settings.on_headers_complete = on_headers_complete;
        parser_settings.on_body = on_body;
        parser_settings.on_message_complete = on_message_complete;
        settings_ready = true;
    }
    http1 *h = calloc(1, sizeof *h);
    if (!h) return -1;
    h->c = c;
    http_parser_init(&h->parser, HTTP_REQUEST);
    h->parser.data = h;
    h->req.c = c;
    h->req.ops = &http1_ops;
    h->req.transport = "HTTP/1.1";
    c->h1 = h;
    arm_timer(h, c->w->s->http1_keepalive_timeout_ms);
    return 0;
}

void http1_free(conn *c)
{
    http1 *h = h1_of(c);
    timer_cancel(&c->w->timers, &h->timer);
    timer_cancel(&c->w->timers, &h->resume);
    free(h->in.p);
    free(h->out.p);
    free(h->req.raw.p);
    free(h->req.body.p);
    free(h->req.resp.p);
    free(h);
    c->h1 = NULL;
}

buf *http1_output(conn *c) { return &h1_of(c)->out; }

void http1_output_written(conn *c)
{
    const web_handler *wh = web_get_handler();
    if (wh) wh->drained(&h1_of(c)->req);
}

bool http1_done(const conn *c)
{
    const http1 *h = h1_of(c);
    return h->done && h->phase != H1_SERVING;
}

void http1_begin_shutdown(conn *c)
{
    http1 *h = h1_of(c);
    h->close_after = true;
    if (h->phase != H1_SERVING) {
        h->done = true;
        conn_mark_dirty(c);
    }
}
