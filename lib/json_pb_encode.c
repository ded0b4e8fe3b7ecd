/* json_pb_encode: proto3 JSON -> protobuf wire format, driven by a
 * descpool. Every value is checked against its field's type; the first
 * problem ends the encoding with an error naming the field's path. */
#include "json_pb_internal.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int enc_message(jp_ctx *ctx, const char *type, const descpool_symbol *msym,
                       const json_t *v, jp_buf *out, const char *skip_key);

static const char *enc_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER:
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

/* ---- scalars ------------------------------------------------------------ */

/* A scalar ready for the wire: `bits` is the varint payload or the fixed
 * 32/64-bit pattern; strings and bytes point at str/len. */
typedef struct enc_scalar {
    uint64_t bits;
    const char *str;
    size_t len;
    uint8_t *owned; /* decoded base64, freed by enc_scalar_free */
    bool zero;      /* the type's default value (omitted in proto3) */
} enc_scalar;

static void enc_scalar_free(enc_scalar *s)
{
    free(s->owned);
    s->owned = NULL;
}

/* A decimal integer string, strictly: optional '-', digits, nothing else. */
static bool enc_int_text(const char *s, bool is_signed, uint64_t *mag, bool *neg)
{
    *neg = false;
    if (*s == '-') {
        if (!is_signed)
            return false;
        *neg = true;
        s++;
    }
    if (*s < '0' || *s > '9')
        return false;
    uint64_t v = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false; /* overflow: reported as out of range below */
        v = v * 10 + d;
    }
    if (*s)
        return false;
    *mag = v;
    return true;
}

/* An integer of `bits` bits from a JSON number or string. Signed values
 * come back in two's complement. */
static int enc_int(jp_ctx *ctx, const json_t *v, bool is_signed, int bits, uint64_t *out)
{
    const uint64_t umax = bits == 64 ? UINT64_MAX : (1ull << bits) - 1;
    const int64_t smax = bits == 64 ? INT64_MAX : (int64_t)((1ull << (bits - 1)) - 1);
    const int64_t smin = -smax - 1;
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (is_signed ? (i < smin || i > smax) : (i < 0 || (uint64_t)i > umax))
            return jp_fail(ctx, "%lld is out of range for a%s %d-bit integer", (long long)i,
                           is_signed ? " signed" : "n unsigned", bits);
        *out = (uint64_t)(int64_t)i;
        return 0;
    }
    if (json_is_real(v)) {
        /* Bounds as exact powers of two (no libm): [-2^(b-1), 2^(b-1)) or [0, 2^b). */
        double two_31 = 2147483648.0, two_63 = 9223372036854775808.0;
        double hi = bits == 32 ? (is_signed ? two_31 : 2 * two_31) : (is_signed ? two_63 : 2 * two_63);
        double lo = is_signed ? -hi : 0, d = json_real_value(v);
        if (!(d >= lo && d < hi)) /* also NaN */
            return jp_fail(ctx, "%g is out of range for a%s %d-bit integer", d,
                           is_signed ? " signed" : "n unsigned", bits);
        /* In range, so the conversion is defined; a fraction shows up as a difference. */
        if (is_signed ? d != (double)(int64_t)d : d != (double)(uint64_t)d)
            return jp_fail(ctx, "%g is not an integer", d);
        *out = is_signed ? (uint64_t)(int64_t)d : (uint64_t)d;
        return 0;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        uint64_t mag;
        bool neg;
        if (!enc_int_text(s, is_signed, &mag, &neg)) {
            if (!is_signed && *s == '-')
                return jp_fail(ctx, "\"%.60s\" is negative, the field is unsigned", s);
            return jp_fail(ctx, "\"%.60s\" is not an integer", s);
        }
        bool ok = is_signed ? (neg ? mag <= (uint64_t)smax + 1 : mag <= (uint64_t)smax)
                            : mag <= umax;
        if (!ok)
            return jp_fail(ctx, "%s is out of range for a%s %d-bit integer", s,
                           is_signed ? " signed" : "n unsigned", bits);
        *out = neg ? (uint64_t)0 - mag : mag;
        return 0;
    }
    return jp_fail(ctx, "expected an integer, got %s", enc_kind(v));
}

/* JSON number grammar for numbers given as strings. */
static bool enc_number_text(const char *s)
{
    if (*s == '-')
        s++;
    if (*s < '0' || *s > '9')
        return false;
    while (*s >= '0' && *s <= '9')
        s++;
    if (*s == '.') {
        s++;
        if (*s < '0' || *s > '9')
            return false;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-')
            s++;
        if (*s < '0' || *s > '9')
            return false;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    return *s == '\0';
}

static int enc_double(jp_ctx *ctx, const json_t *v, bool is_float, double *out)
{
    double d;
    if (json_is_integer(v)) {
        d = (double)json_integer_value(v);
    } else if (json_is_real(v)) {
        d = json_real_value(v);
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        if (!strcmp(s, "NaN"))
            d = NAN;
        else if (!strcmp(s, "Infinity"))
            d = INFINITY;
        else if (!strcmp(s, "-Infinity"))
            d = -INFINITY;
        else if (enc_number_text(s) && isfinite(d = strtod(s, NULL)))
            ;
        else
            return jp_fail(ctx, "\"%.60s\" is not a number", s);
    } else {
        return jp_fail(ctx, "expected a number, got %s", enc_kind(v));
    }
    if (is_float && isfinite(d) && (d > FLT_MAX || d < -FLT_MAX))
        return jp_fail(ctx, "%g is out of range for a float", d);
    *out = d;
    return 0;
}

static int enc_enum(jp_ctx *ctx, const descpool_symbol *esym, const char *type_name,
                    const json_t *v, int32_t *out)
{
    if (json_is_null(v) && !strcmp(type_name, "google.protobuf.NullValue")) {
        *out = 0;
        return 0;
    }
    if (json_is_integer(v) || json_is_real(v)) {
        uint64_t u;
        int rc = enc_int(ctx, v, true, 32, &u);
        *out = (int32_t)u;
        return rc;
    }
    if (!json_is_string(v))
        return jp_fail(ctx, "expected an enum value name or number, got %s", enc_kind(v));
    if (!esym)
        return jp_fail(ctx, "enum type %s is not in the descriptor set", type_name);
    const char *name = json_string_value(v);
    const Google__Protobuf__EnumDescriptorProto *e = esym->u.enum_type;
    for (size_t i = 0; i < e->n_value; i++)
        if (e->value[i]->name && !strcmp(e->value[i]->name, name)) {
            *out = e->value[i]->number;
            return 0;
        }
    return jp_fail(ctx, "\"%.60s\" is not a value of enum %s", name, esym->full_name);
}

static int enc_scalar_value(jp_ctx *ctx, int type, const descpool_symbol *esym,
                            const char *type_name, const json_t *v, enc_scalar *s)
{
    memset(s, 0, sizeof *s);
    int rc = 0;
    double d;
    switch (type) {
    case JP_T(INT32): case JP_T(SFIXED32): case JP_T(SINT32):
        rc = enc_int(ctx, v, true, 32, &s->bits);
        if (type == JP_T(SINT32) && !rc) {
            int32_t x = (int32_t)s->bits;
            s->bits = (uint32_t)(((uint32_t)x << 1) ^ (uint32_t)(x >> 31));
        } else if (type == JP_T(SFIXED32)) {
            s->bits &= 0xffffffffu;
        }
        break;
    case JP_T(INT64): case JP_T(SFIXED64): case JP_T(SINT64):
        rc = enc_int(ctx, v, true, 64, &s->bits);
        if (type == JP_T(SINT64) && !rc) {
            int64_t x = (int64_t)s->bits;
            s->bits = ((uint64_t)x << 1) ^ (uint64_t)(x >> 63);
        }
        break;
    case JP_T(UINT32): case JP_T(FIXED32):
        rc = enc_int(ctx, v, false, 32, &s->bits);
        break;
    case JP_T(UINT64): case JP_T(FIXED64):
        rc = enc_int(ctx, v, false, 64, &s->bits);
        break;
    case JP_T(DOUBLE):
        rc = enc_double(ctx, v, false, &d);
        memcpy(&s->bits, &d, sizeof d);
        break;
    case JP_T(FLOAT): {
        rc = enc_double(ctx, v, true, &d);
        float f = (float)d;
        uint32_t b;
        memcpy(&b, &f, sizeof b);
        s->bits = b;
        break;
    }
    case JP_T(BOOL):
        if (!json_is_boolean(v))
            return jp_fail(ctx, "expected true or false, got %s", enc_kind(v));
        s->bits = json_is_true(v);
        break;
    case JP_T(ENUM): {
        int32_t e = 0;
        rc = enc_enum(ctx, esym, type_name, v, &e);
        s->bits = (uint64_t)(int64_t)e; /* negative enums are 10-byte varints */
        break;
    }
    case JP_T(STRING):
        if (!json_is_string(v))
            return jp_fail(ctx, "expected a string, got %s", enc_kind(v));
        s->str = json_string_value(v);
        s->len = json_string_length(v);
        break;
    case JP_T(BYTES):
        if (!json_is_string(v))
            return jp_fail(ctx, "expected a base64 string, got %s", enc_kind(v));
        rc = jp_base64_decode(json_string_value(v), json_string_length(v), &s->owned, &s->len);
        if (rc == -ENOMEM)
            return jp_oom(ctx);
        if (rc)
            return jp_fail(ctx, "not valid base64");
        s->str = (const char *)s->owned;
        break;
    default:
        return jp_fail(ctx, "field type %d is not supported (groups are not)", type);
    }
    s->zero = s->bits == 0 && s->len == 0;
    return rc;
}

/* Writes a scalar; field 0 = no tag (an element of a packed field). */
static int enc_scalar_write(jp_buf *b, uint32_t field, int type, const enc_scalar *s)
{
    int wt = jp_wire_type(type), rc = 0;
    if (field && (rc = jp_buf_tag(b, field, wt)) < 0)
        return rc;
    switch (wt) {
    case JP_WT_I32: return jp_buf_fixed32(b, (uint32_t)s->bits);
    case JP_WT_I64: return jp_buf_fixed64(b, s->bits);
    case JP_WT_LEN:
        rc = jp_buf_varint(b, s->len);
        return rc ? rc : jp_buf_put(b, s->str, s->len);
    default: return jp_buf_varint(b, s->bits);
    }
}

/* ---- fields ------------------------------------------------------------- */

/* One value of a field (a singular field, an element of a repeated field,
 * or a map value), written with its tag. */
static int enc_single(jp_ctx *ctx, const descpool_symbol *msym, const jp_field *f,
                      const json_t *v, jp_buf *out, bool skip_default)
{
    uint32_t num = (uint32_t)f->number;
    if (f->type == JP_T(MESSAGE)) {
        jp_buf sub = {0};
        int rc = enc_message(ctx, jp_type_name(f), jp_field_type(ctx, msym, f), v, &sub, NULL);
        if (!rc && jp_buf_len_field(out, num, sub.p, sub.len) < 0)
            rc = jp_oom(ctx);
        jp_buf_free(&sub);
        return rc;
    }
    const descpool_symbol *esym = f->type == JP_T(ENUM) ? jp_field_type(ctx, msym, f) : NULL;
    enc_scalar s;
    int rc = enc_scalar_value(ctx, f->type, esym, jp_type_name(f), v, &s);
    if (!rc && !(skip_default && s.zero) && enc_scalar_write(out, num, f->type, &s) < 0)
        rc = jp_oom(ctx);
    enc_scalar_free(&s);
    return rc;
}

static int enc_map(jp_ctx *ctx, const jp_field *f, const descpool_symbol *entry,
                   const json_t *v, jp_buf *out)
{
    if (!json_is_object(v))
        return jp_fail(ctx, "expected an object (a map), got %s", enc_kind(v));
    const jp_field *kf = descpool_field_by_number(entry->u.message, 1);
    const jp_field *vf = descpool_field_by_number(entry->u.message, 2);
    if (!kf || !vf)
        return jp_fail(ctx, "map entry %s lacks its key or value field", entry->full_name);
    const char *key;
    json_t *val;
    int rc = 0;
    json_object_foreach((json_t *)v, key, val) {
        size_t mark = jp_path_key(ctx, key);
        json_t *kv;
        if (kf->type == JP_T(BOOL)) {
            kv = !strcmp(key, "true") ? json_true() : !strcmp(key, "false") ? json_false() : NULL;
            if (!kv)
                rc = jp_fail(ctx, "map key must be \"true\" or \"false\"");
        } else {
            kv = json_string(key);
            if (!kv)
                rc = jp_oom(ctx);
        }
        jp_buf e = {0};
        if (!rc)
            rc = enc_single(ctx, entry, kf, kv, &e, false);
        json_decref(kv);
        if (!rc && json_is_null(val) &&
            !(vf->type == JP_T(MESSAGE) && !strcmp(jp_type_name(vf), "google.protobuf.Value")))
            rc = jp_fail(ctx, "null is not allowed as a map value");
        if (!rc)
            rc = enc_single(ctx, entry, vf, val, &e, false);
        if (!rc && jp_buf_len_field(out, (uint32_t)f->number, e.p, e.len) < 0)
            rc = jp_oom(ctx);
        jp_buf_free(&e);
        jp_path_pop(ctx, mark);
        if (rc)
            break;
    }
    return rc;
}

static int enc_repeated(jp_ctx *ctx, const descpool_symbol *msym, const jp_field *f,
                        const json_t *v, jp_buf *out)
{
    if (!json_is_array(v))
        return jp_fail(ctx, "expected an array, got %s", enc_kind(v));
    bool packed = jp_packed(msym, f);
    jp_buf pk = {0};
    const descpool_symbol *esym = f->type == JP_T(ENUM) ? jp_field_type(ctx, msym, f) : NULL;
    int rc = 0;
    for (size_t i = 0; i < json_array_size(v) && !rc; i++) {
        json_t *el = json_array_get(v, i);
        size_t mark = jp_path_index(ctx, i);
        if (json_is_null(el) && !(f->type == JP_T(MESSAGE) &&
                                  !strcmp(jp_type_name(f), "google.protobuf.Value"))) {
            rc = jp_fail(ctx, "null is not allowed in a repeated field");
        } else if (packed) {
            enc_scalar s;
            rc = enc_scalar_value(ctx, f->type, esym, jp_type_name(f), el, &s);
            if (!rc && enc_scalar_write(&pk, 0, f->type, &s) < 0)
                rc = jp_oom(ctx);
            enc_scalar_free(&s);
        } else {
            rc = enc_single(ctx, msym, f, el, out, false);
        }
        jp_path_pop(ctx, mark);
    }
    if (!rc && packed && pk.len && jp_buf_len_field(out, (uint32_t)f->number, pk.p, pk.len) < 0)
        rc = jp_oom(ctx);
    jp_buf_free(&pk);
    return rc;
}

static int enc_field(jp_ctx *ctx, const descpool_symbol *msym, const jp_field *f,
                     const json_t *v, jp_buf *out)
{
    const descpool_symbol *entry;
    if (jp_is_map(ctx, msym, f, &entry))
        return enc_map(ctx, f, entry, v, out);
    if (f->label == JP_REPEATED)
        return enc_repeated(ctx, msym, f, v, out);
    return enc_single(ctx, msym, f, v, out, jp_implicit_presence(msym, f));
}

/* null means "not set", except where null is itself a value. */
static bool enc_null_is_value(const jp_field *f)
{
    const char *t = jp_type_name(f);
    return f->label != JP_REPEATED &&
           ((f->type == JP_T(MESSAGE) && !strcmp(t, "google.protobuf.Value")) ||
            (f->type == JP_T(ENUM) && !strcmp(t, "google.protobuf.NullValue")));
}

static int enc_fields(jp_ctx *ctx, const descpool_symbol *msym, const json_t *v, jp_buf *out,
                      const char *skip_key)
{
    if (!json_is_object(v))
        return jp_fail(ctx, "expected an object (message %s), got %s", msym->full_name,
                       enc_kind(v));
    const jp_msg *m = msym->u.message;
    const jp_field **seen = calloc(m->n_field + 1, sizeof *seen);
    const jp_field **oneof = calloc(m->n_oneof_decl + 1, sizeof *oneof);
    if (!seen || !oneof) {
        free(seen);
        free(oneof);
        return jp_oom(ctx);
    }
    const char *key;
    json_t *val;
    int rc = 0;
    json_object_foreach((json_t *)v, key, val) {
        if (skip_key && !strcmp(key, skip_key))
            continue;
        size_t mark = jp_path_field(ctx, key);
        const jp_field *f = descpool_field_by_json_name(m, key);
        size_t idx = 0;
        while (f && m->field[idx] != f)
            idx++;
        if (!f) {
            rc = jp_fail(ctx, "unknown field (message %s has no such field)", msym->full_name);
        } else if (seen[idx]) {
            rc = jp_fail(ctx, "field %s is given twice", f->name);
        } else if (json_is_null(val) && !enc_null_is_value(f)) {
            seen[idx] = f; /* null: the field stays unset */
        } else if (f->has_oneof_index && (size_t)f->oneof_index < m->n_oneof_decl &&
                   oneof[f->oneof_index]) {
            rc = jp_fail(ctx, "%s and %s are both set, but they are members of oneof %s",
                         oneof[f->oneof_index]->name, f->name,
                         m->oneof_decl[f->oneof_index]->name);
        } else {
            seen[idx] = f;
            if (f->has_oneof_index && (size_t)f->oneof_index < m->n_oneof_decl)
                oneof[f->oneof_index] = f;
            rc = enc_field(ctx, msym, f, val, out);
        }
        jp_path_pop(ctx, mark);
        if (rc)
            break;
    }
    free(seen);
    free(oneof);
    return rc;
}

/* ---- well-known types ----------------------------------------------------- */

static int enc_seconds_nanos(jp_buf *out, int64_t seconds, int32_t nanos)
{
    int rc = 0;
    if (seconds && !(rc = jp_buf_tag(out, 1, JP_WT_VARINT)))
        rc = jp_buf_varint(out, (uint64_t)seconds);
    if (!rc && nanos && !(rc = jp_buf_tag(out, 2, JP_WT_VARINT)))
        rc = jp_buf_varint(out, (uint64_t)(int64_t)nanos);
    return rc;
}

static int enc_timestamp(jp_ctx *ctx, const json_t *v, jp_buf *out)
{
    int64_t s;
    int32_t n;
    if (!json_is_string(v))
        return jp_fail(ctx, "expected an RFC 3339 timestamp string, got %s", enc_kind(v));
    if (jp_timestamp_parse(json_string_value(v), &s, &n))
        return jp_fail(ctx, "\"%.60s\" is not an RFC 3339 timestamp between years 1 and 9999 "
                       "(e.g. \"2022-02-20T15:08:07.915156117+00:00\")", json_string_value(v));
    return enc_seconds_nanos(out, s, n) ? jp_oom(ctx) : 0;
}

static int enc_duration(jp_ctx *ctx, const json_t *v, jp_buf *out)
{
    int64_t s;
    int32_t n;
    if (!json_is_string(v))
        return jp_fail(ctx, "expected a duration string such as \"1.5s\", got %s", enc_kind(v));
    if (jp_duration_parse(json_string_value(v), &s, &n))
        return jp_fail(ctx, "\"%.60s\" is not a duration (seconds with up to 9 decimals and "
                       "an \"s\", e.g. \"1.5s\", at most 315576000000s)", json_string_value(v));
    return enc_seconds_nanos(out, s, n) ? jp_oom(ctx) : 0;
}

static int enc_field_mask(jp_ctx *ctx, const json_t *v, jp_buf *out)
{
    if (!json_is_string(v))
        return jp_fail(ctx, "expected a field mask string such as \"a.b,cD\", got %s",
                       enc_kind(v));
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    /* lowerCamelCase paths joined by commas; a '_', a NUL or an empty path
     * would not come back the same from the wire. */
    for (size_t i = 0; i < n; i++)
        if (s[i] == '_' || s[i] == '\0' ||
            (s[i] == ',' && (i == 0 || i + 1 == n || s[i + 1] == ',')))
            return jp_fail(ctx, "\"%.60s\" is not a field mask (lowerCamelCase paths joined "
                           "by commas, e.g. \"a.b,cD\")", s);
    char *path = malloc(2 * n + 1);
    if (!path)
        return jp_oom(ctx);
    int rc = 0;
    for (const char *p = s; *p && !rc;) {
        size_t o = 0;
        for (; *p && *p != ','; p++) {
            if (*p >= 'A' && *p <= 'Z') {
                path[o++] = '_';
                path[o++] = (char)(*p - 'A' + 'a');
            } else {
                path[o++] = *p;
            }
        }
        if (*p == ',')
            p++;
        if (jp_buf_len_field(out, 1, path, o) < 0)
            rc = jp_oom(ctx);
    }
    free(path);
    return rc;
}

static int enc_value(jp_ctx *ctx, const json_t *v, jp_buf *out);

static int enc_struct(jp_ctx *ctx, const json_t *v, jp_buf *out)
{
    if (!json_is_object(v))
        return jp_fail(ctx, "expected an object (google.protobuf.Struct), got %s", enc_kind(v));
    const char *key;
    json_t *val;
    int rc = 0;
    json_object_foreach((json_t *)v, key, val) {
        size_t mark = jp_path_field(ctx, key);
        jp_buf e = {0}, vb = {0};
        rc = enc_value(ctx, val, &vb);
        if (!rc && (jp_buf_len_field(&e, 1, key, strlen(key)) < 0 ||
                    jp_buf_len_field(&e, 2, vb.p, vb.len) < 0 ||
                    jp_buf_len_field(out, 1, e.p, e.len) < 0))
            rc = jp_oom(ctx);
        jp_buf_free(&e);
        jp_buf_free(&vb);
        jp_path_pop(ctx, mark);
        if (rc)
            break;
    }
    return rc;
}

static int enc_list(jp_ctx *ctx, const json_t *v, jp_buf *out)
{
    if (!json_is_array(v))
        return jp_fail(ctx, "expected an array (google.protobuf.ListValue), got %s",
                       enc_kind(v));
    int rc = 0;
    for (size_t i = 0; i < json_array_size(v) && !rc; i++) {
        size_t mark = jp_path_index(ctx, i);
        jp_buf vb = {0};
        rc = enc_value(ctx, json_array_get(v, i), &vb);
        if (!rc && jp_buf_len_field(out, 1, vb.p, vb.len) < 0)
            rc = jp_oom(ctx);
        jp_buf_free(&vb);
        jp_path_pop(ctx, mark);
    }
    return rc;
}

/* google.protobuf.Value: every JSON value. Its oneof is always written,
 * even at a default (0, "", false), since which member is set matters. */
static int enc_value(jp_ctx *ctx, const json_t *v, jp_buf *out)
{
    if (++ctx->depth > JSON_PB_MAX_DEPTH) {
        ctx->depth--;
        return jp_fail(ctx, "nested deeper than %d levels", JSON_PB_MAX_DEPTH);
    }
    int rc = 0;
    jp_buf sub = {0};
    switch (json_typeof(v)) {
    case JSON_NULL:
        rc = jp_buf_tag(out, 1, JP_WT_VARINT) || jp_buf_varint(out, 0) ? jp_oom(ctx) : 0;
        break;
    case JSON_INTEGER:
    case JSON_REAL: {
        double d = json_number_value(v);
        uint64_t bits;
        memcpy(&bits, &d, sizeof d);
        rc = jp_buf_tag(out, 2, JP_WT_I64) || jp_buf_fixed64(out, bits) ? jp_oom(ctx) : 0;
        break;
    }
    case JSON_STRING:
        rc = jp_buf_len_field(out, 3, json_string_value(v), json_string_length(v)) ? jp_oom(ctx)
                                                                                   : 0;
        break;
    case JSON_TRUE:
    case JSON_FALSE:
        rc = jp_buf_tag(out, 4, JP_WT_VARINT) || jp_buf_varint(out, json_is_true(v))
                 ? jp_oom(ctx) : 0;
        break;
    case JSON_OBJECT:
        rc = enc_struct(ctx, v, &sub);
        if (!rc && jp_buf_len_field(out, 5, sub.p, sub.len) < 0)
            rc = jp_oom(ctx);
        break;
    case JSON_ARRAY:
        rc = enc_list(ctx, v, &sub);
        if (!rc && jp_buf_len_field(out, 6, sub.p, sub.len) < 0)
            rc = jp_oom(ctx);
        break;
    }
    jp_buf_free(&sub);
    ctx->depth--;
    return rc;
}

static int enc_wrapper(jp_ctx *ctx, int type, const json_t *v, jp_buf *out)
{
    enc_scalar s;
    int rc = enc_scalar_value(ctx, type, NULL, "", v, &s);
    if (!rc && !s.zero && enc_scalar_write(out, 1, type, &s) < 0)
        rc = jp_oom(ctx);
    enc_scalar_free(&s);
    return rc;
}

static int enc_any(jp_ctx *ctx, const json_t *v, jp_buf *out)
{
    if (!json_is_object(v))
        return jp_fail(ctx, "expected an object with \"@type\" (google.protobuf.Any), got %s",
                       enc_kind(v));
    json_t *t = json_object_get(v, "@type");
    if (!t) {
        if (json_object_size(v) == 0)
            return 0; /* an empty Any */
        return jp_fail(ctx, "\"@type\" is missing (google.protobuf.Any)");
    }
    if (!json_is_string(t))
        return jp_fail(ctx, "\"@type\" must be a string such as "
                       "\"type.googleapis.com/pkg.Message\"");
    const char *url = json_string_value(t);
    const char *type = strrchr(url, '/') ? strrchr(url, '/') + 1 : url;
    const descpool_symbol *sym = jp_message(ctx, type);
    jp_wkt wkt = jp_wkt_of(type, NULL);
    if (!sym && wkt == JP_WKT_NONE)
        return jp_fail(ctx, "Any type \"%.80s\" is not in the descriptor set", url);
    jp_buf body = {0};
    int rc;
    if (wkt != JP_WKT_NONE) {
        /* Types with a special JSON form sit in "value". */
        json_t *val = json_object_get(v, "value");
        if (!val || json_object_size(v) != 2)
            rc = jp_fail(ctx, "an Any of %s takes exactly \"@type\" and \"value\"", type);
        else {
            size_t mark = jp_path_field(ctx, "value");
            rc = enc_message(ctx, type, sym, val, &body, NULL);
            jp_path_pop(ctx, mark);
        }
    } else {
        rc = enc_message(ctx, type, sym, v, &body, "@type");
    }
    if (!rc && (jp_buf_len_field(out, 1, url, strlen(url)) < 0 ||
                (body.len && jp_buf_len_field(out, 2, body.p, body.len) < 0)))
        rc = jp_oom(ctx);
    jp_buf_free(&body);
    return rc;
}

static int enc_message(jp_ctx *ctx, const char *type, const descpool_symbol *msym,
                       const json_t *v, jp_buf *out, const char *skip_key)
{
    if (++ctx->depth > JSON_PB_MAX_DEPTH) {
        ctx->depth--;
        return jp_fail(ctx, "nested deeper than %d levels", JSON_PB_MAX_DEPTH);
    }
    int wrapped = 0, rc;
    switch (jp_wkt_of(type, &wrapped)) {
    case JP_WKT_TIMESTAMP: rc = enc_timestamp(ctx, v, out); break;
    case JP_WKT_DURATION: rc = enc_duration(ctx, v, out); break;
    case JP_WKT_FIELD_MASK: rc = enc_field_mask(ctx, v, out); break;
    case JP_WKT_STRUCT: rc = enc_struct(ctx, v, out); break;
    case JP_WKT_VALUE: rc = enc_value(ctx, v, out); break;
    case JP_WKT_LIST_VALUE: rc = enc_list(ctx, v, out); break;
    case JP_WKT_WRAPPER: rc = enc_wrapper(ctx, wrapped, v, out); break;
    case JP_WKT_ANY: rc = enc_any(ctx, v, out); break;
    default:
        if (!msym)
            rc = jp_fail(ctx, "message type %s is not in the descriptor set", type);
        else
            rc = enc_fields(ctx, msym, v, out, skip_key);
    }
    ctx->depth--;
    return rc;
}

/* ---- API ------------------------------------------------------------------ */

int json_pb_encode_value(const descpool *pool, const char *type, const json_t *value,
                         uint8_t **out, size_t *out_len, json_pb_error *err)
{
    jp_ctx ctx;
    jp_ctx_init(&ctx, pool, err, 0);
    *out = NULL;
    *out_len = 0;
    if (!type)
        type = "";
    if (*type == '.')
        type++;
    const descpool_symbol *msym = jp_message(&ctx, type);
    if (!msym && jp_wkt_of(type, NULL) == JP_WKT_NONE) {
        jp_fail(&ctx, "message type \"%s\" is not in the descriptor set", type);
        return -ENOENT;
    }
    jp_buf b = {0};
    int rc = enc_message(&ctx, type, msym, value, &b, NULL);
    if (rc) {
        jp_buf_free(&b);
        return rc;
    }
    if (!b.p && !(b.p = malloc(1))) /* an empty message: still a buffer */
        return jp_oom(&ctx);
    *out = b.p;
    *out_len = b.len;
    return 0;
}

int json_pb_encode(const descpool *pool, const char *type, const char *json, size_t len,
                   uint8_t **out, size_t *out_len, json_pb_error *err)
{
    json_error_t je;
    *out = NULL;
    *out_len = 0;
    /* JSON_ALLOW_NUL: "\u0000" is a valid character of a proto string. */
    json_t *v = json_loadb(json, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL,
                           &je);
    if (!v) {
        jp_ctx ctx;
        jp_ctx_init(&ctx, pool, err, 0);
        bool big = json_error_code(&je) == json_error_numeric_overflow;
        return jp_fail(&ctx, "invalid JSON at line %d, column %d: %s%s", je.line, je.column,
                       je.text, big ? " (give 64-bit integers as strings: \"18446744073709551615\")"
                                    : "");
    }
    int rc = json_pb_encode_value(pool, type, v, out, out_len, err);
    json_decref(v);
    return rc;
}
