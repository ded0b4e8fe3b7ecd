/* json_pb_print: JSON text out. jansson prints reals with 17 significant
 * digits (51.4871871 comes out as 51.487187099999998); protobuf's JSON
 * printers use the shortest text that reads back to the same double, and
 * so do we. */
#include "json_pb_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct pr_buf {
    char *p;
    size_t len, cap;
    bool failed; /* out of memory or a value JSON cannot hold */
} pr_buf;

static void pr_put(pr_buf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (n + 1 > b->cap - b->len) {
        size_t ncap = b->cap ? b->cap : 256;
        while (ncap - b->len < n + 1)
            ncap *= 2;
        char *p = realloc(b->p, ncap);
        if (!p) {
            b->failed = true;
            return;
        }
        b->p = p;
        b->cap = ncap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void pr_str(pr_buf *b, const char *s)
{
    pr_put(b, s, strlen(s));
}

static void pr_indent(pr_buf *b, int level)
{
    static const char spaces[] = "                                ";
    pr_put(b, "\n", 1);
    for (int n = level * 2; n > 0; n -= 32)
        pr_put(b, spaces, n < 32 ? (size_t)n : 32);
}

static void pr_string(pr_buf *b, const char *s, size_t n)
{
    pr_put(b, "\"", 1);
    size_t run = 0; /* bytes copied as they are */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char u[8];
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        default:
            if (c < 0x20 || c == 0x7f) {
                snprintf(u, sizeof u, "\\u%04x", c);
                esc = u;
            }
        }
        if (!esc)
            continue;
        pr_put(b, s + run, i - run);
        pr_str(b, esc);
        run = i + 1;
    }
    pr_put(b, s + run, n - run);
    pr_put(b, "\"", 1);
}

static void pr_value(pr_buf *b, const json_t *v, bool pretty, int level)
{
    char num[64];
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        if (!json_object_size(v)) {
            pr_str(b, "{}");
            break;
        }
        pr_put(b, "{", 1);
        const char *key;
        json_t *val;
        bool first = true;
        json_object_foreach((json_t *)v, key, val) {
            if (!first)
                pr_put(b, ",", 1);
            first = false;
            if (pretty)
                pr_indent(b, level + 1);
            pr_string(b, key, strlen(key));
            pr_str(b, pretty ? ": " : ":");
            pr_value(b, val, pretty, level + 1);
        }
        if (pretty)
            pr_indent(b, level);
        pr_put(b, "}", 1);
        break;
    }
    case JSON_ARRAY:
        if (!json_array_size(v)) {
            pr_str(b, "[]");
            break;
        }
        pr_put(b, "[", 1);
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i)
                pr_put(b, ",", 1);
            if (pretty)
                pr_indent(b, level + 1);
            pr_value(b, json_array_get(v, i), pretty, level + 1);
        }
        if (pretty)
            pr_indent(b, level);
        pr_put(b, "]", 1);
        break;
    case JSON_STRING:
        pr_string(b, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        pr_str(b, num);
        break;
    case JSON_REAL:
        if (!isfinite(json_real_value(v))) {
            b->failed = true;
            break;
        }
        jp_format_double(json_real_value(v), num, sizeof num);
        pr_str(b, num);
        break;
    case JSON_TRUE: pr_str(b, "true"); break;
    case JSON_FALSE: pr_str(b, "false"); break;
    case JSON_NULL: pr_str(b, "null"); break;
    }
}

char *json_pb_dump(const json_t *value, unsigned flags)
{
    pr_buf b = {0};
    if (!value)
        return NULL;
    pr_value(&b, value, !(flags & JSON_PB_COMPACT), 0);
    pr_put(&b, "", 0);
    if (b.failed) {
        free(b.p);
        return NULL;
    }
    return b.p;
}
