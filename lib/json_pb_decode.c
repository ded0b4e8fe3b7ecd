/* json_pb_decode: protobuf wire format -> proto3 JSON, driven by a
 * descpool. Unknown fields are skipped (as every protobuf parser does);
 * malformed wire data ends the decoding with an error naming the path. */
#include "json_pb_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int dec_message(jp_ctx *ctx, const char *type, const descpool_symbol *msym,
                       const uint8_t *data, size_t len, json_t **out);

static int dec_malformed(jp_ctx *ctx)
{
    return jp_fail(ctx, "malformed protobuf data (truncated or corrupt)");
}

/* Adds a new reference; fails cleanly when the value could not be made. */
static int dec_set(jp_ctx *ctx, json_t *obj, const char *key, json_t *v)
{
    if (!v || json_object_set_new(obj, key, v) < 0)
        return jp_oom(ctx);
    return 0;
}

/* ---- scalars ------------------------------------------------------------ */

static json_t *dec_float_json(double d)
{
    if (isnan(d))
        return json_string("NaN");
    if (isinf(d))
        return json_string(d > 0 ? "Infinity" : "-Infinity");
    return json_real(d);
}

static json_t *dec_int64_json(int64_t v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRId64, v);
    return json_string(buf);
}

static json_t *dec_uint64_json(uint64_t v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRIu64, v);
    return json_string(buf);
}

static json_t *dec_enum_json(const jp_ctx *ctx, const descpool_symbol *esym,
                             const char *type_name, int32_t v)
{
    if (!strcmp(type_name, "google.protobuf.NullValue"))
        return json_null();
    if (esym && !(ctx->flags & JSON_PB_ENUMS_AS_INTS)) {
        const Google__Protobuf__EnumDescriptorProto *e = esym->u.enum_type;
        for (size_t i = 0; i < e->n_value; i++)
            if (e->value[i]->number == v && e->value[i]->name)
                return json_string(e->value[i]->name);
    }
    return json_integer(v); /* a value this side does not know */
}

/* A scalar from its raw wire value (varint/fixed in v, LEN in data/len).
 * *zero tells whether it is the type's default. */
static int dec_scalar(jp_ctx *ctx, int type, const descpool_symbol *esym, const char *type_name,
                      uint64_t v, const uint8_t *data, size_t len, json_t **out, bool *zero)
{
    json_t *j = NULL;
    *zero = v == 0 && len == 0;
    switch (type) {
    case JP_T(INT32): case JP_T(SFIXED32): j = json_integer((int32_t)v); break;
    case JP_T(UINT32): case JP_T(FIXED32): j = json_integer((uint32_t)v); break;
    case JP_T(SINT32): {
        uint32_t u = (uint32_t)v;
        j = json_integer((int32_t)((u >> 1) ^ (0u - (u & 1))));
        break;
    }
    case JP_T(INT64): case JP_T(SFIXED64): j = dec_int64_json((int64_t)v); break;
    case JP_T(UINT64): case JP_T(FIXED64): j = dec_uint64_json(v); break;
    case JP_T(SINT64): j = dec_int64_json((int64_t)((v >> 1) ^ (0ull - (v & 1)))); break;
    case JP_T(BOOL): j = json_boolean(v != 0); break;
    case JP_T(ENUM): j = dec_enum_json(ctx, esym, type_name, (int32_t)v); break;
    case JP_T(DOUBLE): {
        double d;
        memcpy(&d, &v, sizeof d);
        j = dec_float_json(d);
        break;
    }
    case JP_T(FLOAT): {
        uint32_t b = (uint32_t)v;
        float f;
        memcpy(&f, &b, sizeof f);
        j = dec_float_json(jp_float_to_double(f));
        break;
    }
    case JP_T(STRING):
        j = json_stringn((const char *)(data ? data : (const uint8_t *)""), len);
        if (!j)
            return jp_fail(ctx, "string is not valid UTF-8");
        break;
    case JP_T(BYTES): {
        char *b64 = jp_base64_encode(data, len);
        j = b64 ? json_string(b64) : NULL;
        free(b64);
        break;
    }
    default:
        return jp_fail(ctx, "field type %d is not supported (groups are not)", type);
    }
    if (!j)
        return jp_oom(ctx);
    *out = j;
    return 0;
}

/* ---- fields ------------------------------------------------------------- */

typedef struct dec_state {
    json_t *val;          /* scalar, array (repeated) or object (map) */
    const uint8_t *msg;   /* singular message: first occurrence */
    size_t msg_len;
    jp_buf merged;        /* singular message seen again: all occurrences */
    bool has_msg;
    bool zero;            /* singular scalar at its default */
} dec_state;

static void dec_state_clear(dec_state *st)
{
    json_decref(st->val);
    jp_buf_free(&st->merged);
    memset(st, 0, sizeof *st);
}

/* One value of field f (its element type) from the wire. */
static int dec_value(jp_ctx *ctx, const descpool_symbol *msym, const jp_field *f, uint64_t v,
                     const uint8_t *data, size_t len, json_t **out, bool *zero)
{
    if (f->type == JP_T(MESSAGE)) {
        *zero = false;
        return dec_message(ctx, jp_type_name(f), jp_field_type(ctx, msym, f), data, len, out);
    }
    const descpool_symbol *esym = f->type == JP_T(ENUM) ? jp_field_type(ctx, msym, f) : NULL;
    return dec_scalar(ctx, f->type, esym, jp_type_name(f), v, data, len, out, zero);
}

/* A map key as JSON object key text: strings as they are, numbers and
 * bools as their decimal / literal text (buf holds those). */
static const char *dec_map_key(jp_ctx *ctx, const json_t *k, char *buf, size_t size)
{
    if (json_is_string(k))
        return json_string_value(k);
    if (json_is_integer(k))
        snprintf(buf, size, "%" JSON_INTEGER_FORMAT, json_integer_value(k));
    else if (json_is_boolean(k))
        snprintf(buf, size, "%s", json_is_true(k) ? "true" : "false");
    else {
        jp_fail(ctx, "map key of an unsupported type");
        return NULL;
    }
    return buf;
}

static int dec_map_entry(jp_ctx *ctx, const descpool_symbol *entry, const uint8_t *data,
                         size_t len, json_t *obj)
{
    const jp_field *kf = descpool_field_by_number(entry->u.message, 1);
    const jp_field *vf = descpool_field_by_number(entry->u.message, 2);
    if (!kf || !vf)
        return jp_fail(ctx, "map entry %s lacks its key or value field", entry->full_name);
    uint64_t kv = 0, vv = 0;
    const uint8_t *kd = NULL, *vd = NULL;
    size_t kl = 0, vl = 0;
    jp_reader r = jp_reader_of(data, len);
    for (;;) {
        uint32_t num;
        int wt, rc = jp_read_tag(&r, &num, &wt);
        if (rc == 0)
            break;
        uint64_t x = 0;
        const uint8_t *d = NULL;
        size_t l = 0;
        if (rc < 0 || jp_read_value(&r, wt, &x, &d, &l) < 0)
            return dec_malformed(ctx);
        if (num == 1 && wt == jp_wire_type(kf->type)) {
            kv = x, kd = d, kl = l;
        } else if (num == 2 && wt == jp_wire_type(vf->type)) {
            vv = x, vd = d, vl = l;
        }
    }
    json_t *k = NULL, *v = NULL;
    bool zero;
    int rc = dec_value(ctx, entry, kf, kv, kd, kl, &k, &zero);
    char buf[32];
    const char *key = rc ? NULL : dec_map_key(ctx, k, buf, sizeof buf);
    if (key) {
        size_t mark = jp_path_key(ctx, key);
        rc = dec_value(ctx, entry, vf, vv, vd, vl, &v, &zero);
        jp_path_pop(ctx, mark);
        if (!rc)
            rc = dec_set(ctx, obj, key, v);
    } else if (!rc) {
        rc = -EINVAL;
    }
    json_decref(k);
    return rc;
}

/* Appends one element (or a packed run of them) of a repeated field. */
static int dec_repeated(jp_ctx *ctx, const descpool_symbol *msym, const jp_field *f,
                        dec_state *st, int wt, uint64_t v, const uint8_t *data, size_t len)
{
    if (!st->val && !(st->val = json_array()))
        return jp_oom(ctx);
    int ewt = jp_wire_type(f->type);
    bool zero;
    json_t *el;
    if (wt == JP_WT_LEN && ewt != JP_WT_LEN) { /* packed */
        jp_reader r = jp_reader_of(data, len);
        while (r.p < r.end) {
            uint64_t x;
            if (jp_read_value(&r, ewt, &x, NULL, NULL) < 0)
                return dec_malformed(ctx);
            size_t mark = jp_path_index(ctx, json_array_size(st->val));
            int rc = dec_value(ctx, msym, f, x, NULL, 0, &el, &zero);
            jp_path_pop(ctx, mark);
            if (rc)
                return rc;
            if (json_array_append_new(st->val, el) < 0)
                return jp_oom(ctx);
        }
        return 0;
    }
    size_t mark = jp_path_index(ctx, json_array_size(st->val));
    int rc = dec_value(ctx, msym, f, v, data, len, &el, &zero);
    jp_path_pop(ctx, mark);
    if (rc)
        return rc;
    return json_array_append_new(st->val, el) < 0 ? jp_oom(ctx) : 0;
}

/* A singular message field may occur more than once: the occurrences
 * merge, which on the wire is their concatenation. */
static int dec_message_part(jp_ctx *ctx, dec_state *st, const uint8_t *data, size_t len)
{
    if (!st->has_msg) {
        st->has_msg = true;
        st->msg = data;
        st->msg_len = len;
        return 0;
    }
    if (!st->merged.len && jp_buf_put(&st->merged, st->msg, st->msg_len) < 0)
        return jp_oom(ctx);
    if (jp_buf_put(&st->merged, data, len) < 0)
        return jp_oom(ctx);
    st->msg = st->merged.p;
    st->msg_len = st->merged.len;
    return 0;
}

static int dec_field(jp_ctx *ctx, const descpool_symbol *msym, const jp_field *f,
                     dec_state *st, int wt, jp_reader *r)
{
    uint64_t v = 0;
    const uint8_t *data = NULL;
    size_t len = 0;
    if (jp_read_value(r, wt, &v, &data, &len) < 0)
        return dec_malformed(ctx);
    const descpool_symbol *entry;
    if (jp_is_map(ctx, msym, f, &entry)) {
        if (wt != JP_WT_LEN)
            return 0; /* wrong wire type: an unknown field */
        if (!st->val && !(st->val = json_object()))
            return jp_oom(ctx);
        return dec_map_entry(ctx, entry, data, len, st->val);
    }
    if (f->label == JP_REPEATED) {
        if (wt != jp_wire_type(f->type) && !(wt == JP_WT_LEN && jp_packable(f->type)))
            return 0;
        return dec_repeated(ctx, msym, f, st, wt, v, data, len);
    }
    if (wt != jp_wire_type(f->type))
        return 0;
    if (f->type == JP_T(MESSAGE))
        return dec_message_part(ctx, st, data, len);
    json_t *j;
    int rc = dec_value(ctx, msym, f, v, data, len, &j, &st->zero);
    if (rc)
        return rc;
    json_decref(st->val);
    st->val = j;
    return 0;
}

/* The JSON of a field nobody set, for JSON_PB_EMIT_DEFAULTS; NULL if the
 * field has presence (unset messages and optionals stay out). */
static int dec_default(jp_ctx *ctx, const descpool_symbol *msym, const jp_field *f,
                       json_t **out)
{
    *out = NULL;
    if (jp_is_map(ctx, msym, f, NULL))
        *out = json_object();
    else if (f->label == JP_REPEATED)
        *out = json_array();
    else if (jp_implicit_presence(msym, f)) {
        bool zero;
        return dec_value(ctx, msym, f, 0, NULL, 0, out, &zero);
    } else
        return 0;
    return *out ? 0 : jp_oom(ctx);
}

static int dec_fields(jp_ctx *ctx, const descpool_symbol *msym, const uint8_t *data,
                      size_t len, json_t **out)
{
    const jp_msg *m = msym->u.message;
    dec_state *st = calloc(m->n_field + 1, sizeof *st);
    json_t *obj = json_object();
    int rc = st && obj ? 0 : jp_oom(ctx);
    jp_reader r = jp_reader_of(data, len);
    char nbuf[256];
    while (!rc) {
        uint32_t num;
        int wt, t = jp_read_tag(&r, &num, &wt);
        if (t == 0)
            break;
        if (t < 0) {
            rc = dec_malformed(ctx);
            break;
        }
        size_t i = 0;
        while (i < m->n_field && m->field[i]->number != (int32_t)num)
            i++;
        if (i == m->n_field) { /* unknown field: skip it */
            uint64_t v;
            const uint8_t *d;
            size_t l;
            if (jp_read_value(&r, wt, &v, &d, &l) < 0)
                rc = dec_malformed(ctx);
            continue;
        }
        const jp_field *f = m->field[i];
        size_t mark = jp_path_field(ctx, jp_json_name(f, nbuf, sizeof nbuf));
        rc = dec_field(ctx, msym, f, &st[i], wt, &r);
        jp_path_pop(ctx, mark);
        /* The last member of a oneof on the wire wins. */
        if (!rc && f->has_oneof_index && (st[i].val || st[i].has_msg))
            for (size_t j = 0; j < m->n_field; j++)
                if (j != i && m->field[j]->has_oneof_index &&
                    m->field[j]->oneof_index == f->oneof_index)
                    dec_state_clear(&st[j]);
    }
    for (size_t i = 0; !rc && i < m->n_field; i++) {
        const jp_field *f = m->field[i];
        const char *name = ctx->flags & JSON_PB_PROTO_NAMES ? f->name
                                                            : jp_json_name(f, nbuf, sizeof nbuf);
        size_t mark = jp_path_field(ctx, name);
        if (st[i].has_msg)
            rc = dec_message(ctx, jp_type_name(f), jp_field_type(ctx, msym, f), st[i].msg,
                             st[i].msg_len, &st[i].val);
        json_t *v = st[i].val;
        st[i].val = NULL;
        if (!rc && v && st[i].zero && jp_implicit_presence(msym, f) &&
            !(ctx->flags & JSON_PB_EMIT_DEFAULTS)) {
            json_decref(v); /* an explicit default on the wire: not shown */
            v = NULL;
        }
        if (!rc && v && f->label == JP_REPEATED && json_is_array(v) && !json_array_size(v) &&
            !(ctx->flags & JSON_PB_EMIT_DEFAULTS)) {
            json_decref(v); /* only empty packed runs on the wire: as absent */
            v = NULL;
        }
        if (!rc && !v && (ctx->flags & JSON_PB_EMIT_DEFAULTS))
            rc = dec_default(ctx, msym, f, &v);
        if (!rc && v)
            rc = dec_set(ctx, obj, name, v);
        else
            json_decref(v);
        jp_path_pop(ctx, mark);
    }
    for (size_t i = 0; st && i < m->n_field; i++)
        dec_state_clear(&st[i]);
    free(st);
    if (rc) {
        json_decref(obj);
        return rc;
    }
    *out = obj;
    return 0;
}

/* ---- well-known types --------------------------------------------------- */

/* Walks the fields of a small well-known message, calling cb for each. */
typedef int (*dec_wkt_cb)(jp_ctx *ctx, void *arg, uint32_t num, int wt, uint64_t v,
                          const uint8_t *data, size_t len);

static int dec_walk(jp_ctx *ctx, const uint8_t *data, size_t len, dec_wkt_cb cb, void *arg)
{
    jp_reader r = jp_reader_of(data, len);
    for (;;) {
        uint32_t num;
        int wt, rc = jp_read_tag(&r, &num, &wt);
        if (rc == 0)
            return 0;
        uint64_t v = 0;
        const uint8_t *d = NULL;
        size_t l = 0;
        if (rc < 0 || jp_read_value(&r, wt, &v, &d, &l) < 0)
            return dec_malformed(ctx);
        if ((rc = cb(ctx, arg, num, wt, v, d, l)) < 0)
            return rc;
    }
}

typedef struct dec_secs {
    int64_t seconds;
    int32_t nanos;
} dec_secs;

static int dec_secs_cb(jp_ctx *ctx, void *arg, uint32_t num, int wt, uint64_t v,
                       const uint8_t *data, size_t len)
{
    (void)ctx, (void)data, (void)len;
    dec_secs *s = arg;
    if (wt == JP_WT_VARINT && num == 1)
        s->seconds = (int64_t)v;
    else if (wt == JP_WT_VARINT && num == 2)
        s->nanos = (int32_t)v;
    return 0;
}

static int dec_time(jp_ctx *ctx, bool duration, const uint8_t *data, size_t len,
                    json_t **out)
{
    dec_secs s = {0, 0};
    int rc = dec_walk(ctx, data, len, dec_secs_cb, &s);
    if (rc)
        return rc;
    char buf[64];
    if (duration ? jp_duration_format(s.seconds, s.nanos, buf, sizeof buf)
                 : jp_timestamp_format(s.seconds, s.nanos, buf, sizeof buf))
        return jp_fail(ctx, "%s out of range (seconds %" PRId64 ", nanos %d)",
                       duration ? "duration" : "timestamp", s.seconds, (int)s.nanos);
    *out = json_string(buf);
    return *out ? 0 : jp_oom(ctx);
}

static int dec_mask_cb(jp_ctx *ctx, void *arg, uint32_t num, int wt, uint64_t v,
                       const uint8_t *data, size_t len)
{
    (void)v;
    jp_buf *b = arg;
    if (num != 1 || wt != JP_WT_LEN)
        return 0;
    /* Only paths whose JSON form reads back as the same path (protobuf's
     * rule): not empty, no upper case, ',' or NUL, and '_' only before a
     * lower-case letter. Anything else would print as another mask. */
    for (size_t i = 0; i <= len; i++) {
        uint8_t c = i < len ? data[i] : 0;
        bool ok = i == len ? len > 0
                           : !(c >= 'A' && c <= 'Z') && c != ',' && c != 0 &&
                                 (c != '_' || (i + 1 < len && data[i + 1] >= 'a' &&
                                               data[i + 1] <= 'z'));
        if (!ok)
            return jp_fail(ctx, "field mask path \"%.*s\" has no JSON form (lower_snake_case "
                           "names joined by dots)", (int)(len > 60 ? 60 : len), (const char *)data);
    }
    if (b->len && jp_buf_put(b, ",", 1) < 0)
        return jp_oom(ctx);
    bool upper = false;
    for (size_t i = 0; i < len; i++) {
        char c = (char)data[i];
        if (c == '_') {
            upper = true;
            continue;
        }
        if (upper && c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        upper = false;
        if (jp_buf_put(b, &c, 1) < 0)
            return jp_oom(ctx);
    }
    return 0;
}

static int dec_field_mask(jp_ctx *ctx, const uint8_t *data, size_t len, json_t **out)
{
    jp_buf b = {0};
    int rc = dec_walk(ctx, data, len, dec_mask_cb, &b);
    if (!rc && !(*out = json_stringn(b.p ? (const char *)b.p : "", b.len)))
        rc = jp_fail(ctx, "field mask is not valid UTF-8");
    jp_buf_free(&b);
    return rc;
}

typedef struct dec_wrap {
    int type;
    uint64_t v;
    const uint8_t *data;
    size_t len;
} dec_wrap;

static int dec_wrap_cb(jp_ctx *ctx, void *arg, uint32_t num, int wt, uint64_t v,
                       const uint8_t *data, size_t len)
{
    (void)ctx;
    dec_wrap *w = arg;
    if (num == 1 && wt == jp_wire_type(w->type)) {
        w->v = v;
        w->data = data;
        w->len = len;
    }
    return 0;
}

static int dec_wrapper(jp_ctx *ctx, int type, const uint8_t *data, size_t len, json_t **out)
{
    dec_wrap w = {type, 0, NULL, 0};
    bool zero;
    int rc = dec_walk(ctx, data, len, dec_wrap_cb, &w);
    return rc ? rc : dec_scalar(ctx, type, NULL, "", w.v, w.data, w.len, out, &zero);
}

static int dec_value_msg(jp_ctx *ctx, const uint8_t *data, size_t len, json_t **out);

static int dec_struct_cb(jp_ctx *ctx, void *arg, uint32_t num, int wt, uint64_t v,
                         const uint8_t *data, size_t len)
{
    (void)v;
    if (num != 1 || wt != JP_WT_LEN)
        return 0;
    /* One map entry: key = 1 (string), value = 2 (Value). */
    jp_reader r = jp_reader_of(data, len);
    const uint8_t *kd = NULL, *vd = NULL;
    size_t kl = 0, vl = 0;
    for (;;) {
        uint32_t n;
        int t, rc = jp_read_tag(&r, &n, &t);
        if (rc == 0)
            break;
        uint64_t x;
        const uint8_t *d = NULL;
        size_t l = 0;
        if (rc < 0 || jp_read_value(&r, t, &x, &d, &l) < 0)
            return dec_malformed(ctx);
        if (n == 1 && t == JP_WT_LEN)
            kd = d, kl = l;
        else if (n == 2 && t == JP_WT_LEN)
            vd = d, vl = l;
    }
    if (kl && !jp_utf8_valid(kd, kl))
        return jp_fail(ctx, "a google.protobuf.Struct key is not valid UTF-8");
    char *key = strndup(kd ? (const char *)kd : "", kl);
    if (!key)
        return jp_oom(ctx);
    size_t mark = jp_path_field(ctx, key);
    json_t *val = NULL;
    int rc = dec_value_msg(ctx, vd, vl, &val);
    if (!rc)
        rc = dec_set(ctx, arg, key, val);
    jp_path_pop(ctx, mark);
    free(key);
    return rc;
}

static int dec_struct(jp_ctx *ctx, const uint8_t *data, size_t len, json_t **out)
{
    json_t *obj = json_object();
    if (!obj)
        return jp_oom(ctx);
    int rc = dec_walk(ctx, data, len, dec_struct_cb, obj);
    if (rc)
        json_decref(obj);
    else
        *out = obj;
    return rc;
}

static int dec_list_cb(jp_ctx *ctx, void *arg, uint32_t num, int wt, uint64_t v,
                       const uint8_t *data, size_t len)
{
    (void)v;
    if (num != 1 || wt != JP_WT_LEN)
        return 0;
    size_t mark = jp_path_index(ctx, json_array_size(arg));
    json_t *val = NULL;
    int rc = dec_value_msg(ctx, data, len, &val);
    jp_path_pop(ctx, mark);
    if (rc)
        return rc;
    return json_array_append_new(arg, val) < 0 ? jp_oom(ctx) : 0;
}

static int dec_list(jp_ctx *ctx, const uint8_t *data, size_t len, json_t **out)
{
    json_t *arr = json_array();
    if (!arr)
        return jp_oom(ctx);
    int rc = dec_walk(ctx, data, len, dec_list_cb, arr);
    if (rc)
        json_decref(arr);
    else
        *out = arr;
    return rc;
}

/* google.protobuf.Value: the last kind on the wire wins. */
typedef struct dec_val {
    uint32_t num;
    uint64_t v;
    const uint8_t *data;
    size_t len;
} dec_val;

static int dec_val_cb(jp_ctx *ctx, void *arg, uint32_t num, int wt, uint64_t v,
                      const uint8_t *data, size_t len)
{
    (void)ctx;
    static const int want[] = {0, JP_WT_VARINT, JP_WT_I64, JP_WT_LEN, JP_WT_VARINT,
                               JP_WT_LEN, JP_WT_LEN};
    if (num >= 1 && num <= 6 && wt == want[num])
        *(dec_val *)arg = (dec_val){num, v, data, len};
    return 0;
}

static int dec_value_msg(jp_ctx *ctx, const uint8_t *data, size_t len, json_t **out)
{
    if (++ctx->depth > JSON_PB_MAX_DEPTH) {
        ctx->depth--;
        return jp_fail(ctx, "nested deeper than %d levels", JSON_PB_MAX_DEPTH);
    }
    dec_val k = {0, 0, NULL, 0};
    int rc = dec_walk(ctx, data, len, dec_val_cb, &k);
    double d;
    if (!rc) {
        switch (k.num) {
        case 0: case 1: *out = json_null(); break;
        case 2:
            memcpy(&d, &k.v, sizeof d);
            if (!isfinite(d))
                rc = jp_fail(ctx, "a google.protobuf.Value number cannot be NaN or infinite");
            else
                *out = json_real(d);
            break;
        case 3:
            *out = json_stringn(k.data ? (const char *)k.data : "", k.len);
            if (!*out)
                rc = jp_fail(ctx, "string is not valid UTF-8");
            break;
        case 4: *out = json_boolean(k.v != 0); break;
        case 5: rc = dec_struct(ctx, k.data, k.len, out); break;
        default: rc = dec_list(ctx, k.data, k.len, out); break;
        }
        if (!rc && !*out)
            rc = jp_oom(ctx);
    }
    ctx->depth--;
    return rc;
}

typedef struct dec_anyv {
    const uint8_t *url, *value;
    size_t url_len, value_len;
} dec_anyv;

static int dec_any_cb(jp_ctx *ctx, void *arg, uint32_t num, int wt, uint64_t v,
                      const uint8_t *data, size_t len)
{
    (void)ctx, (void)v;
    dec_anyv *a = arg;
    if (wt == JP_WT_LEN && num == 1)
        a->url = data, a->url_len = len;
    else if (wt == JP_WT_LEN && num == 2)
        a->value = data, a->value_len = len;
    return 0;
}

static int dec_any(jp_ctx *ctx, const uint8_t *data, size_t len, json_t **out)
{
    dec_anyv a = {0};
    int rc = dec_walk(ctx, data, len, dec_any_cb, &a);
    if (rc)
        return rc;
    if (!a.url_len && !a.value_len)
        return (*out = json_object()) ? 0 : jp_oom(ctx);
    if (a.url_len && !jp_utf8_valid(a.url, a.url_len))
        return jp_fail(ctx, "google.protobuf.Any type URL is not valid UTF-8");
    char *url = strndup(a.url ? (const char *)a.url : "", a.url_len);
    if (!url)
        return jp_oom(ctx);
    const char *type = strrchr(url, '/') ? strrchr(url, '/') + 1 : url;
    const descpool_symbol *sym = jp_message(ctx, type);
    jp_wkt wkt = jp_wkt_of(type, NULL);
    json_t *body = NULL, *obj = NULL;
    if (!sym && wkt == JP_WKT_NONE)
        rc = jp_fail(ctx, "Any holds type \"%.80s\", which is not in the descriptor set", url);
    else
        rc = dec_message(ctx, type, sym, a.value, a.value_len, &body);
    if (!rc && !(obj = json_object()))
        rc = jp_oom(ctx);
    if (!rc)
        rc = dec_set(ctx, obj, "@type", json_string(url));
    if (!rc && wkt != JP_WKT_NONE)
        rc = dec_set(ctx, obj, "value", json_incref(body));
    else if (!rc && json_object_update(obj, body) < 0)
        rc = jp_oom(ctx);
    json_decref(body);
    free(url);
    if (rc) {
        json_decref(obj);
        return rc;
    }
    *out = obj;
    return 0;
}

static int dec_message(jp_ctx *ctx, const char *type, const descpool_symbol *msym,
                       const uint8_t *data, size_t len, json_t **out)
{
    if (++ctx->depth > JSON_PB_MAX_DEPTH) {
        ctx->depth--;
        return jp_fail(ctx, "nested deeper than %d levels", JSON_PB_MAX_DEPTH);
    }
    int wrapped = 0, rc;
    switch (jp_wkt_of(type, &wrapped)) {
    case JP_WKT_TIMESTAMP: rc = dec_time(ctx, false, data, len, out); break;
    case JP_WKT_DURATION: rc = dec_time(ctx, true, data, len, out); break;
    case JP_WKT_FIELD_MASK: rc = dec_field_mask(ctx, data, len, out); break;
    case JP_WKT_STRUCT: rc = dec_struct(ctx, data, len, out); break;
    case JP_WKT_VALUE: rc = dec_value_msg(ctx, data, len, out); break;
    case JP_WKT_LIST_VALUE: rc = dec_list(ctx, data, len, out); break;
    case JP_WKT_WRAPPER: rc = dec_wrapper(ctx, wrapped, data, len, out); break;
    case JP_WKT_ANY: rc = dec_any(ctx, data, len, out); break;
    default:
        if (!msym)
            rc = jp_fail(ctx, "message type %s is not in the descriptor set", type);
        else
            rc = dec_fields(ctx, msym, data, len, out);
    }
    ctx->depth--;
    return rc;
}

/* ---- API ------------------------------------------------------------------ */

int json_pb_decode_value(const descpool *pool, const char *type, const uint8_t *data,
                         size_t len, unsigned flags, json_t **out, json_pb_error *err)
{
    jp_ctx ctx;
    jp_ctx_init(&ctx, pool, err, flags);
    *out = NULL;
    if (!type)
        type = "";
    if (*type == '.')
        type++;
    const descpool_symbol *msym = jp_message(&ctx, type);
    if (!msym && jp_wkt_of(type, NULL) == JP_WKT_NONE) {
        jp_fail(&ctx, "message type \"%s\" is not in the descriptor set", type);
        return -ENOENT;
    }
    if (!data)
        data = (const uint8_t *)"";
    return dec_message(&ctx, type, msym, data, len, out);
}

int json_pb_decode(const descpool *pool, const char *type, const uint8_t *data, size_t len,
                   unsigned flags, char **out, json_pb_error *err)
{
    json_t *v;
    *out = NULL;
    int rc = json_pb_decode_value(pool, type, data, len, flags, &v, err);
    if (rc)
        return rc;
    *out = json_pb_dump(v, flags);
    json_decref(v);
    if (!*out) {
        if (err)
            snprintf(err->text, sizeof err->text, "out of memory");
        return -ENOMEM;
    }
    return 0;
}
