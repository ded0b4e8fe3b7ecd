/* json_pb helpers: error paths, field classification, well-known types,
 * base64, RFC 3339 timestamps and durations, wire buffers and readers. */
#include "json_pb_internal.h"

#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- context, paths, errors ------------------------------------------- */

void jp_ctx_init(jp_ctx *ctx, const descpool *pool, json_pb_error *err, unsigned flags)
{
    ctx->pool = pool;
    ctx->err = err;
    ctx->flags = flags;
    ctx->depth = 0;
    ctx->path_len = 0;
    ctx->path[0] = '\0';
    if (err)
        err->text[0] = '\0';
}

/* Appends text; a path too long for the buffer ends in "..." instead. */
static size_t jp_path_append(jp_ctx *ctx, const char *a, const char *b, const char *c)
{
    size_t old = ctx->path_len, room = sizeof ctx->path - old;
    int n = snprintf(ctx->path + old, room, "%s%s%s", a, b, c);
    if (n < 0 || (size_t)n >= room) {
        memcpy(ctx->path + sizeof ctx->path - 4, "...", 4);
        ctx->path_len = sizeof ctx->path - 1;
    } else {
        ctx->path_len = old + (size_t)n;
    }
    return old;
}

size_t jp_path_field(jp_ctx *ctx, const char *name)
{
    return jp_path_append(ctx, ctx->path_len ? "." : "", name, "");
}

size_t jp_path_index(jp_ctx *ctx, size_t index)
{
    char num[32];
    snprintf(num, sizeof num, "%zu", index);
    return jp_path_append(ctx, "[", num, "]");
}

size_t jp_path_key(jp_ctx *ctx, const char *key)
{
    char k[64];
    snprintf(k, sizeof k, "%s", key);
    if (strlen(key) >= sizeof k)
        memcpy(k + sizeof k - 4, "...", 4);
    return jp_path_append(ctx, "[\"", k, "\"]");
}

void jp_path_pop(jp_ctx *ctx, size_t len)
{
    ctx->path_len = len;
    ctx->path[len] = '\0';
}

int jp_fail(jp_ctx *ctx, const char *fmt, ...)
{
    if (!ctx->err || ctx->err->text[0]) /* keep the innermost (first) error */
        return -EINVAL;
    char msg[sizeof ctx->err->text];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* "path: message", the path cut to half the line at most. */
    char *t = ctx->err->text;
    size_t cap = sizeof ctx->err->text, o = 0;
    if (ctx->path_len) {
        o = ctx->path_len < cap / 2 ? ctx->path_len : cap / 2;
        memcpy(t, ctx->path, o);
        t[o++] = ':';
        t[o++] = ' ';
    }
    size_t n = strlen(msg);
    if (n > cap - 1 - o)
        n = cap - 1 - o;
    memcpy(t + o, msg, n);
    t[o + n] = '\0';
    /* Input quoted in the message or the path (map keys) stays one line. */
    for (size_t i = 0; i < o + n; i++)
        if ((unsigned char)t[i] < 0x20 || t[i] == 0x7f)
            t[i] = '?';
    return -EINVAL;
}

int jp_oom(jp_ctx *ctx)
{
    if (ctx->err && !ctx->err->text[0])
        snprintf(ctx->err->text, sizeof ctx->err->text, "out of memory");
    return -ENOMEM;
}

/* ---- types -------------------------------------------------------------- */

jp_wkt jp_wkt_of(const char *n, int *wrapped)
{
    static const struct {
        const char *name;
        int type;
    } wrappers[] = {
        {"DoubleValue", JP_T(DOUBLE)}, {"FloatValue", JP_T(FLOAT)},
        {"Int64Value", JP_T(INT64)},   {"UInt64Value", JP_T(UINT64)},
        {"Int32Value", JP_T(INT32)},   {"UInt32Value", JP_T(UINT32)},
        {"BoolValue", JP_T(BOOL)},     {"StringValue", JP_T(STRING)},
        {"BytesValue", JP_T(BYTES)},
    };
    if (!n || strncmp(n, "google.protobuf.", 16) != 0)
        return JP_WKT_NONE;
    n += 16;
    if (!strcmp(n, "Any"))
        return JP_WKT_ANY;
    if (!strcmp(n, "Timestamp"))
        return JP_WKT_TIMESTAMP;
    if (!strcmp(n, "Duration"))
        return JP_WKT_DURATION;
    if (!strcmp(n, "FieldMask"))
        return JP_WKT_FIELD_MASK;
    if (!strcmp(n, "Struct"))
        return JP_WKT_STRUCT;
    if (!strcmp(n, "Value"))
        return JP_WKT_VALUE;
    if (!strcmp(n, "ListValue"))
        return JP_WKT_LIST_VALUE;
    for (size_t i = 0; i < sizeof wrappers / sizeof *wrappers; i++)
        if (!strcmp(n, wrappers[i].name)) {
            if (wrapped)
                *wrapped = wrappers[i].type;
            return JP_WKT_WRAPPER;
        }
    return JP_WKT_NONE;
}

const descpool_symbol *jp_message(const jp_ctx *ctx, const char *full_name)
{
    return descpool_find_kind(ctx->pool, full_name, DESCPOOL_MESSAGE);
}

const char *jp_type_name(const jp_field *f)
{
    const char *t = f->type_name ? f->type_name : "";
    return *t == '.' ? t + 1 : t;
}

const descpool_symbol *jp_field_type(const jp_ctx *ctx, const descpool_symbol *msg,
                                     const jp_field *f)
{
    return descpool_resolve(ctx->pool, msg ? msg->full_name : NULL, f->type_name);
}

const char *jp_json_name(const jp_field *f, char *buf, size_t size)
{
    if (f->json_name && *f->json_name)
        return f->json_name;
    return descpool_json_name(f->name ? f->name : "", buf, size);
}

static bool jp_is_proto3(const descpool_symbol *msg)
{
    return msg && msg->file && msg->file->syntax && !strcmp(msg->file->syntax, "proto3");
}

bool jp_implicit_presence(const descpool_symbol *msg, const jp_field *f)
{
    return jp_is_proto3(msg) && f->label != JP_REPEATED && f->type != JP_T(MESSAGE) &&
           f->type != JP_T(GROUP) && !f->has_oneof_index && !f->proto3_optional;
}

bool jp_is_map(const jp_ctx *ctx, const descpool_symbol *msg, const jp_field *f,
               const descpool_symbol **entry)
{
    if (f->label != JP_REPEATED || f->type != JP_T(MESSAGE))
        return false;
    const descpool_symbol *t = jp_field_type(ctx, msg, f);
    if (!t || t->kind != DESCPOOL_MESSAGE || !descpool_is_map_entry(t->u.message))
        return false;
    if (entry)
        *entry = t;
    return true;
}

bool jp_packable(int type)
{
    return type != JP_T(STRING) && type != JP_T(BYTES) && type != JP_T(MESSAGE) &&
           type != JP_T(GROUP);
}

int jp_wire_type(int type)
{
    switch (type) {
    case JP_T(DOUBLE): case JP_T(FIXED64): case JP_T(SFIXED64):
        return JP_WT_I64;
    case JP_T(FLOAT): case JP_T(FIXED32): case JP_T(SFIXED32):
        return JP_WT_I32;
    case JP_T(STRING): case JP_T(BYTES): case JP_T(MESSAGE):
        return JP_WT_LEN;
    default:
        return JP_WT_VARINT;
    }
}

bool jp_packed(const descpool_symbol *msg, const jp_field *f)
{
    if (f->label != JP_REPEATED || !jp_packable(f->type))
        return false;
    if (f->options && f->options->has_packed)
        return f->options->packed;
    return jp_is_proto3(msg);
}

/* ---- base64 ------------------------------------------------------------- */

static const char jp_b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *jp_base64_encode(const uint8_t *d, size_t len)
{
    char *out = malloc((len + 2) / 3 * 4 + 1), *o = out;
    if (!out)
        return NULL;
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8 | d[i + 2];
        *o++ = jp_b64[v >> 18];
        *o++ = jp_b64[(v >> 12) & 63];
        *o++ = jp_b64[(v >> 6) & 63];
        *o++ = jp_b64[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)d[i] << 16;
        *o++ = jp_b64[v >> 18];
        *o++ = jp_b64[(v >> 12) & 63];
        *o++ = '=';
        *o++ = '=';
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8;
        *o++ = jp_b64[v >> 18];
        *o++ = jp_b64[(v >> 12) & 63];
        *o++ = jp_b64[(v >> 6) & 63];
        *o++ = '=';
    }
    *o = '\0';
    return out;
}

static int jp_b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

int jp_base64_decode(const char *s, size_t n, uint8_t **out, size_t *out_len)
{
    while (n && s[n - 1] == '=')
        n--;
    if (n % 4 == 1)
        return -EINVAL;
    uint8_t *buf = malloc(n / 4 * 3 + 3);
    if (!buf)
        return -ENOMEM;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = jp_b64_value(s[i]);
        if (v < 0) {
            free(buf);
            return -EINVAL;
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[o++] = (uint8_t)(acc >> bits);
        }
    }
    *out = buf;
    *out_len = o;
    return 0;
}

/* ---- times ---------------------------------------------------------------- */

#define JP_TS_MIN (-62135596800LL) /* 0001-01-01T00:00:00Z */
#define JP_TS_MAX 253402300799LL   /* 9999-12-31T23:59:59Z */
#define JP_DUR_MAX 315576000000LL  /* 10000 years */

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * civil-date arithmetic, shifted so years start in March). */
static int64_t jp_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;                                /* [0, 399] */
    int64_t mp = m > 2 ? (int64_t)m - 3 : (int64_t)m + 9;       /* March = 0 */
    int64_t doy = (153 * mp + 2) / 5 + (int64_t)d - 1;          /* [0, 365] */
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;        /* [0, 146096] */
    return era * 146097 + doe - 719468;
}

static void jp_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static bool jp_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Reads exactly n digits. */
static bool jp_digits(const char **s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*s)[i];
        if (c < '0' || c > '9')
            return false;
        v = v * 10 + (c - '0');
    }
    *s += n;
    *out = v;
    return true;
}

/* ".d{1,9}" -> nanoseconds; no fraction leaves *nanos 0. */
static bool jp_fraction(const char **s, int32_t *nanos)
{
    *nanos = 0;
    if (**s != '.')
        return true;
    (*s)++;
    int n = 0;
    int32_t v = 0;
    while (**s >= '0' && **s <= '9') {
        if (++n > 9)
            return false;
        v = v * 10 + (**s - '0');
        (*s)++;
    }
    if (!n)
        return false;
    for (int i = n; i < 9; i++)
        v *= 10;
    *nanos = v;
    return true;
}

int jp_timestamp_parse(const char *s, int64_t *seconds, int32_t *nanos)
{
    static const unsigned mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, mo, d, h, mi, se;
    if (!jp_digits(&s, 4, &y) || *s++ != '-' || !jp_digits(&s, 2, &mo) || *s++ != '-' ||
        !jp_digits(&s, 2, &d))
        return -EINVAL;
    if (*s != 'T' && *s != 't')
        return -EINVAL;
    s++;
    if (!jp_digits(&s, 2, &h) || *s++ != ':' || !jp_digits(&s, 2, &mi) || *s++ != ':' ||
        !jp_digits(&s, 2, &se) || !jp_fraction(&s, nanos))
        return -EINVAL;
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || se > 59)
        return -EINVAL;
    unsigned dim = mdays[mo - 1] + (mo == 2 && jp_leap(y));
    if ((unsigned)d > dim)
        return -EINVAL;
    int64_t offset = 0;
    if (*s == 'Z' || *s == 'z') {
        s++;
    } else if (*s == '+' || *s == '-') {
        int sign = *s++ == '-' ? -1 : 1, oh, om;
        if (!jp_digits(&s, 2, &oh) || *s++ != ':' || !jp_digits(&s, 2, &om) || oh > 23 ||
            om > 59)
            return -EINVAL;
        offset = sign * (oh * 3600 + om * 60);
    } else {
        return -EINVAL;
    }
    if (*s)
        return -EINVAL;
    int64_t t = jp_days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 +
                mi * 60 + se - offset;
    if (t < JP_TS_MIN || t > JP_TS_MAX)
        return -EINVAL;
    *seconds = t;
    return 0;
}

/* Fraction digits as protobuf prints them: none, 3, 6 or 9. */
static int jp_format_nanos(int32_t nanos, char *buf, size_t size)
{
    if (nanos == 0)
        return snprintf(buf, size, "%s", "");
    if (nanos % 1000000 == 0)
        return snprintf(buf, size, ".%03d", (int)(nanos / 1000000));
    if (nanos % 1000 == 0)
        return snprintf(buf, size, ".%06d", (int)(nanos / 1000));
    return snprintf(buf, size, ".%09d", (int)nanos);
}

int jp_timestamp_format(int64_t seconds, int32_t nanos, char *buf, size_t size)
{
    if (seconds < JP_TS_MIN || seconds > JP_TS_MAX || nanos < 0 || nanos > 999999999)
        return -EINVAL;
    int64_t days = seconds / 86400, rem = seconds % 86400;
    if (rem < 0) {
        rem += 86400;
        days--;
    }
    int64_t y;
    unsigned m, d;
    jp_civil_from_days(days, &y, &m, &d);
    char frac[16];
    jp_format_nanos(nanos, frac, sizeof frac);
    snprintf(buf, size, "%04d-%02u-%02uT%02d:%02d:%02d%sZ", (int)y, m, d, (int)(rem / 3600),
             (int)(rem / 60 % 60), (int)(rem % 60), frac);
    return 0;
}

int jp_duration_parse(const char *s, int64_t *seconds, int32_t *nanos)
{
    bool neg = *s == '-';
    if (neg)
        s++;
    if (*s < '0' || *s > '9')
        return -EINVAL;
    int64_t v = 0;
    while (*s >= '0' && *s <= '9') {
        v = v * 10 + (*s++ - '0');
        if (v > JP_DUR_MAX)
            return -EINVAL;
    }
    int32_t n;
    if (!jp_fraction(&s, &n) || *s++ != 's' || *s)
        return -EINVAL;
    *seconds = neg ? -v : v;
    *nanos = neg ? -n : n;
    return 0;
}

int jp_duration_format(int64_t seconds, int32_t nanos, char *buf, size_t size)
{
    if (seconds < -JP_DUR_MAX || seconds > JP_DUR_MAX || nanos <= -1000000000 ||
        nanos >= 1000000000 || (seconds > 0 && nanos < 0) || (seconds < 0 && nanos > 0))
        return -EINVAL;
    bool neg = seconds < 0 || nanos < 0;
    uint64_t s = seconds < 0 ? (uint64_t)-seconds : (uint64_t)seconds;
    char frac[16];
    jp_format_nanos(nanos < 0 ? -nanos : nanos, frac, sizeof frac);
    snprintf(buf, size, "%s%" PRIu64 "%ss", neg ? "-" : "", s, frac);
    return 0;
}

/* ---- wire buffers ------------------------------------------------------ */

int jp_buf_put(jp_buf *b, const void *data, size_t n)
{
    if (n > b->cap - b->len) {
        size_t ncap = b->cap ? b->cap : 64;
        while (ncap - b->len < n) {
            if (ncap > SIZE_MAX / 2)
                return -ENOMEM;
            ncap *= 2;
        }
        uint8_t *p = realloc(b->p, ncap);
        if (!p)
            return -ENOMEM;
        b->p = p;
        b->cap = ncap;
    }
    if (n)
        memcpy(b->p + b->len, data, n);
    b->len += n;
    return 0;
}

int jp_buf_varint(jp_buf *b, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    do {
        tmp[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v)
            tmp[n] |= 0x80;
        n++;
    } while (v);
    return jp_buf_put(b, tmp, n);
}

int jp_buf_tag(jp_buf *b, uint32_t field, int wire_type)
{
    return jp_buf_varint(b, (uint64_t)field << 3 | (unsigned)wire_type);
}

int jp_buf_fixed32(jp_buf *b, uint32_t v)
{
    uint8_t t[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    return jp_buf_put(b, t, 4);
}

int jp_buf_fixed64(jp_buf *b, uint64_t v)
{
    int rc = jp_buf_fixed32(b, (uint32_t)v);
    return rc ? rc : jp_buf_fixed32(b, (uint32_t)(v >> 32));
}

int jp_buf_len_field(jp_buf *b, uint32_t field, const void *data, size_t n)
{
    int rc = jp_buf_tag(b, field, JP_WT_LEN);
    if (!rc)
        rc = jp_buf_varint(b, n);
    if (!rc)
        rc = jp_buf_put(b, data, n);
    return rc;
}

void jp_buf_free(jp_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* ---- wire reader --------------------------------------------------------- */

int jp_read_varint(jp_reader *r, uint64_t *v)
{
    if (r->p >= r->end)
        return 0;
    uint64_t x = 0;
    for (int i = 0; i < 10; i++) {
        if (r->p >= r->end)
            return -EINVAL;
        uint8_t c = *r->p++;
        x |= (uint64_t)(c & 0x7f) << (7 * i);
        if (!(c & 0x80)) {
            *v = x;
            return 1;
        }
    }
    return -EINVAL;
}

int jp_read_tag(jp_reader *r, uint32_t *field, int *wire_type)
{
    uint64_t key;
    int rc = jp_read_varint(r, &key);
    if (rc <= 0)
        return rc;
    if (key >> 3 == 0 || key >> 3 > 536870911)
        return -EINVAL;
    *field = (uint32_t)(key >> 3);
    *wire_type = (int)(key & 7);
    return 1;
}

int jp_read_value(jp_reader *r, int wire_type, uint64_t *v, const uint8_t **data,
                  size_t *len)
{
    size_t avail = (size_t)(r->end - r->p);
    switch (wire_type) {
    case JP_WT_VARINT:
        return jp_read_varint(r, v) == 1 ? 1 : -EINVAL;
    case JP_WT_I64:
    case JP_WT_I32: {
        size_t n = wire_type == JP_WT_I64 ? 8 : 4;
        if (avail < n)
            return -EINVAL;
        uint64_t x = 0;
        for (size_t i = 0; i < n; i++)
            x |= (uint64_t)r->p[i] << (8 * i);
        r->p += n;
        *v = x;
        return 1;
    }
    case JP_WT_LEN: {
        uint64_t n;
        if (jp_read_varint(r, &n) != 1 || n > (uint64_t)(r->end - r->p))
            return -EINVAL;
        *data = r->p;
        *len = (size_t)n;
        r->p += n;
        return 1;
    }
    default: /* groups (3, 4) and 6, 7 are not supported */
        return -EINVAL;
    }
}

/* ---- text ----------------------------------------------------------------- */

bool jp_utf8_valid(const uint8_t *s, size_t n)
{
    json_t *j = json_stringn((const char *)s, n); /* jansson's own check */
    bool ok = j != NULL;
    json_decref(j);
    return ok;
}

/* ---- numbers -------------------------------------------------------------- */

/* If a normal double has a round-tripping text of at most DBL_DIG (15)
 * digits, %.15g finds it (rounding to 15 digits lands on it, and %g drops
 * the trailing zeros), so the search starts there. Subnormals have fewer
 * significant bits, so shorter texts round-trip that 15-digit rounding
 * misses: they search from 1 digit. Same for floats at FLT_DIG. */
void jp_format_double(double d, char *buf, size_t size)
{
    int first = d > -DBL_MIN && d < DBL_MIN ? 1 : DBL_DIG;
    for (int prec = first; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            return;
    }
}

double jp_float_to_double(float f)
{
    if (!isfinite(f))
        return (double)f;
    char buf[32];
    int first = f > -FLT_MIN && f < FLT_MIN ? 1 : FLT_DIG;
    for (int prec = first; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)f);
        if (strtof(buf, NULL) == f)
            return strtod(buf, NULL);
    }
    return (double)f;
}
