/* Access log lines (see al_logline.h). */
#include "al_logline.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *const status_names[] = {
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED",
    "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"};

const char *al_status_name(int code)
{
    if (code < 0 || (size_t)code >= sizeof status_names / sizeof status_names[0])
        return "UNKNOWN_CODE";
    return status_names[code];
}

int al_log_format_parse(const char *s)
{
    if (strcmp(s, "text") == 0)
        return AL_FMT_TEXT;
    if (strcmp(s, "json") == 0)
        return AL_FMT_JSON;
    return -1;
}

/* A bounded output buffer: appends past the end are dropped, and the
 * callers keep AL_LINE_MAX large enough that this never cuts a line. */
typedef struct obuf {
    char *p;
    size_t len, cap;
} obuf;

/* The per-field helpers run for every call on the worker: always inline. */
#define AL_INLINE static inline __attribute__((always_inline))

AL_INLINE void put(obuf *o, const char *s, size_t n)
{
    if (n > o->cap - o->len)
        n = o->cap - o->len;
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

AL_INLINE void puts_(obuf *o, const char *s)
{
    put(o, s, strlen(s));
}

/* A string literal, without strlen. */
#define put_lit(o, lit) put((o), (lit), sizeof(lit) - 1)

AL_INLINE void putc_(obuf *o, char c)
{
    if (o->len < o->cap)
        o->p[o->len++] = c;
}

/* v in decimal, at least width digits (zero-padded). */
AL_INLINE void putu_w(obuf *o, uint64_t v, int width)
{
    char tmp[24];
    int i = (int)sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while ((int)sizeof tmp - i < width)
        tmp[--i] = '0';
    put(o, tmp + i, sizeof tmp - (size_t)i);
}

AL_INLINE void putu(obuf *o, uint64_t v)
{
    putu_w(o, v, 1);
}

static const char hexd[] = "0123456789abcdef";

/* Which bytes a field copies as they are: PLAIN_TEXT in an unquoted text
 * field (printable, no blank, quote or backslash), PLAIN_QUOTED inside
 * quotes and in JSON strings (blank allowed too). NUL is in neither, so
 * the scans stop at the end of the string by themselves. */
enum { PLAIN_TEXT = 1, PLAIN_QUOTED = 2 };
static const uint8_t plain[256] = {
    [' '] = PLAIN_QUOTED,
    ['!'] = 3,
    ['#' ... '['] = 3,
    [']' ... '~'] = 3,
};

/* Text fields: what is not plain is written \xNN, so a line always splits
 * on blanks. Runs of plain bytes are copied in one go. */
static void put_text(obuf *o, const char *s, bool quoted)
{
    const uint8_t want = quoted ? PLAIN_QUOTED : PLAIN_TEXT;
    size_t start = o->len;
    while (*s) {
        /* An escape may have taken the field past the limit: no room. */
        size_t used = o->len - start;
        size_t room = used < AL_FIELD_MAX ? AL_FIELD_MAX - used : 0;
        size_t n = 0;
        while (n < room && (plain[(unsigned char)s[n]] & want))
            n++;
        put(o, s, n);
        s += n;
        if (!*s)
            return;
        if (o->len - start >= AL_FIELD_MAX) {
            put_lit(o, "...");
            return;
        }
        unsigned char c = (unsigned char)*s++;
        char e[4] = {'\\', 'x', hexd[c >> 4], hexd[c & 15]};
        put(o, e, 4);
    }
}

/* JSON string contents; bytes >= 0x80 become \u00XX so the line stays
 * valid JSON whatever the client sent. */
static void put_json(obuf *o, const char *s)
{
    size_t start = o->len;
    putc_(o, '"');
    while (*s) {
        size_t used = o->len - start; /* the quote counts */
        size_t room = used < AL_FIELD_MAX + 1 ? AL_FIELD_MAX + 1 - used : 0;
        size_t n = 0;
        while (n < room && (plain[(unsigned char)s[n]] & PLAIN_QUOTED))
            n++;
        put(o, s, n);
        s += n;
        if (!*s)
            break;
        if (o->len - start >= AL_FIELD_MAX + 1) {
            put_lit(o, "...");
            break;
        }
        unsigned char c = (unsigned char)*s++;
        if (c == '"' || c == '\\') {
            putc_(o, '\\');
            putc_(o, (char)c);
        } else {
            char e[6] = {'\\', 'u', '0', '0', hexd[c >> 4], hexd[c & 15]};
            put(o, e, 6);
        }
    }
    putc_(o, '"');
}

static void put_time(obuf *o, const al_logrec *r, al_timecache *tc)
{
    al_timecache local;
    if (!tc) {
        tc = &local;
        tc->sec = INT64_MIN;
    }
    if (tc->sec != r->time_sec) {
        time_t t = (time_t)r->time_sec;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(tc->text, sizeof tc->text, "%Y-%m-%dT%H:%M:%S", &tm);
        tc->sec = r->time_sec;
    }
    puts_(o, tc->text);
    putc_(o, '.');
    putu_w(o, r->time_usec, 6);
    putc_(o, 'Z');
}

/* Seconds with six decimals, rounded up so a call never shows 0. */
static void put_seconds(obuf *o, uint64_t ns)
{
    uint64_t us = ns / 1000 + (ns % 1000 != 0);
    putu(o, us / 1000000);
    putc_(o, '.');
    putu_w(o, us % 1000000, 6);
}

size_t al_logline_format(char *buf, size_t cap, al_log_format fmt,
                         const al_logrec *r, al_timecache *tc)
{
    obuf o = {buf, 0, cap - 1}; /* room for the final '\n' */
    const char *method = r->method ? r->method : "-";
    bool has_msg = r->message && r->message[0];
    if (fmt == AL_FMT_JSON) {
        put_lit(&o, "{\"time\":\"");
        put_time(&o, r, tc);
        put_lit(&o, "\",\"method\":");
        put_json(&o, method);
        put_lit(&o, ",\"status\":\"");
        puts_(&o, al_status_name(r->status));
        put_lit(&o, "\",\"code\":");
        putu(&o, (uint64_t)(unsigned)r->status);
        put_lit(&o, ",\"duration\":");
        put_seconds(&o, r->duration_ns);
        put_lit(&o, ",\"duration_ns\":");
        putu(&o, r->duration_ns);
        put_lit(&o, ",\"peer\":");
        if (r->peer)
            put_json(&o, r->peer);
        else
            put_lit(&o, "null");
        put_lit(&o, ",\"principal\":");
        if (r->principal)
            put_json(&o, r->principal);
        else
            put_lit(&o, "null");
        put_lit(&o, ",\"bytes_in\":");
        putu(&o, r->bytes_in);
        put_lit(&o, ",\"bytes_out\":");
        putu(&o, r->bytes_out);
        put_lit(&o, ",\"bytes_in_uncompressed\":");
        putu(&o, r->bytes_in_uncompressed);
        put_lit(&o, ",\"bytes_out_uncompressed\":");
        putu(&o, r->bytes_out_uncompressed);
        put_lit(&o, ",\"messages_in\":");
        putu(&o, r->messages_in);
        put_lit(&o, ",\"messages_out\":");
        putu(&o, r->messages_out);
        put_lit(&o, ",\"message\":");
        put_json(&o, has_msg ? r->message : "");
        put_lit(&o, ",\"protocol\":");
        put_json(&o, r->protocol ? r->protocol : "grpc");
        putc_(&o, '}');
    } else {
        put_time(&o, r, tc);
        putc_(&o, ' ');
        put_text(&o, method, false);
        put_lit(&o, " took ");
        put_seconds(&o, r->duration_ns);
        put_lit(&o, "sec status=");
        puts_(&o, al_status_name(r->status));
        put_lit(&o, " peer=");
        put_text(&o, r->peer ? r->peer : "-", false);
        put_lit(&o, " principal=");
        put_text(&o, r->principal ? r->principal : "-", false);
        put_lit(&o, " in=");
        putu(&o, r->bytes_in);
        put_lit(&o, " out=");
        putu(&o, r->bytes_out);
        /* gRPC calls keep the original line; other protocols say which */
        if (r->protocol && strcmp(r->protocol, "grpc") != 0) {
            put_lit(&o, " protocol=");
            puts_(&o, r->protocol);
        }
        if (r->bytes_in_uncompressed != r->bytes_in || r->bytes_out_uncompressed != r->bytes_out) {
            put_lit(&o, " in_uncompressed=");
            putu(&o, r->bytes_in_uncompressed);
            put_lit(&o, " out_uncompressed=");
            putu(&o, r->bytes_out_uncompressed);
        }
        if (has_msg) {
            put_lit(&o, " message=\"");
            put_text(&o, r->message, true);
            putc_(&o, '"');
        }
    }
    buf[o.len++] = '\n';
    return o.len;
}
