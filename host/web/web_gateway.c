/* The JSON gateway's translation (web_gateway.h). The request is built as
 * one JSON object and encoded by json_pb, so every rule of the proto3
 * JSON mapping (names, 64-bit strings, enums, well-known types) holds for
 * bodies, path variables and query parameters alike. */
#include "web/web_gateway.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grpc_frame.h"
#include "json_pb.h"
#include "percent.h"

#define FT(x) GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_##x
#define REPEATED GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__LABEL__LABEL_REPEATED

typedef Google__Protobuf__FieldDescriptorProto field_proto;

int web_frame_append(buf *out, const uint8_t *msg, size_t len, uint8_t flags)
{
    if (len > UINT32_MAX || buf_reserve(out, 5 + len) < 0) return -ENOMEM;
    uint8_t *p = out->p + out->len;
    p[0] = flags;
    p[1] = (uint8_t)(len >> 24);
    p[2] = (uint8_t)(len >> 16);
    p[3] = (uint8_t)(len >> 8);
    p[4] = (uint8_t)len;
    if (len) memcpy(p + 5, msg, len);
    out->len += 5 + len;
    return 0;
}

/* The field a dotted path names, starting at message `type`; *scope gets
 * the full name of the message holding the last field. NULL if absent. */
static const field_proto *field_at(const descpool *pool, const char *type, const char *path,
                                   char *scope, size_t scope_size)
{
    const descpool_symbol *m = descpool_find_kind(pool, type, DESCPOOL_MESSAGE);
    const field_proto *f = NULL;
    char part[256];
    while (m && *path) {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);
        if (n >= sizeof part) return NULL;
        memcpy(part, path, n);
        part[n] = 0;
        f = descpool_field_by_json_name(m->u.message, part);
        if (!f) return NULL;
        snprintf(scope, scope_size, "%s", m->full_name);
        if (!dot) return f;
        if (f->type != FT(MESSAGE)) return NULL;
        m = descpool_resolve(pool, m->full_name, f->type_name);
        if (!m || m->kind != DESCPOOL_MESSAGE) return NULL;
        path = dot + 1;
    }
    return NULL;
}

/* A path or query value as the JSON value json_pb expects for the field. */
static json_t *scalar_json(const field_proto *f, const char *v)
{
    char *end;
    switch (f->type) {
    case FT(BOOL):
        if (strcmp(v, "true") == 0) return json_true();
        if (strcmp(v, "false") == 0) return json_false();
        return json_string(v); /* json_pb names the error */
    case FT(DOUBLE):
    case FT(FLOAT): {
        double d = strtod(v, &end);
        if (*v && !*end) return json_real(d);
        return json_string(v);
    }
    case FT(ENUM): {
        long long n = strtoll(v, &end, 10);
        if (*v && !*end) return json_integer(n);
        return json_string(v);
    }
    default:
        return json_string(v); /* integers as strings are valid proto3 JSON */
    }
}

/* Sets (or appends to, for repeated fields) obj[path] = value. The JSON
 * keys are the path's components as written. */
static int set_path(json_t *obj, const char *path, json_t *value, bool repeated,
                    bool keep_existing)
{
    char part[256];
    for (;;) {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);
        if (n >= sizeof part) {
            json_decref(value);
            return -EINVAL;
        }
        memcpy(part, path, n);
        part[n] = 0;
        json_t *cur = json_object_get(obj, part);
        if (!dot) {
            if (repeated) {
                if (!json_is_array(cur)) {
                    cur = json_array();
                    json_object_set_new(obj, part, cur);
                }
                return json_array_append_new(cur, value) == 0 ? 0 : -ENOMEM;
            }
            if (cur && keep_existing) {
                json_decref(value);
                return 0;
            }
            return json_object_set_new(obj, part, value) == 0 ? 0 : -ENOMEM;
        }
        if (!json_is_object(cur)) {
            cur = json_object();
            if (json_object_set_new(obj, part, cur) != 0) {
                json_decref(value);
                return -ENOMEM;
            }
        }
        obj = cur;
        path = dot + 1;
    }
}

static int set_field(const web_table *t, const char *type, json_t *obj, const char *path,
                     const char *value, bool keep_existing, char *err, size_t errlen)
{
    char scope[256];
    const field_proto *f = field_at(t->pool, type, path, scope, sizeof scope);
    if (!f) {
        snprintf(err, errlen, "%s names no field of %s", path, type);
        return -EINVAL;
    }
    if (f->type == FT(MESSAGE)) {
        /* well-known types with a string form (Timestamp, Duration, wrappers) */
        return set_path(obj, path, json_string(value), f->label == REPEATED, keep_existing);
    }
    return set_path(obj, path, scalar_json(f, value), f->label == REPEATED, keep_existing);
}

/* name=value&... into fields; "+" is a space in a query. */
static int query_fields(const web_table *t, const web_rule *rule, json_t *obj, const char *q,
                        size_t qlen, char *err, size_t errlen)
{
    const char *end = q + qlen;
    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *e = amp ? amp : end;
        const char *eq = memchr(q, '=', (size_t)(e - q));
        size_t nl = (size_t)((eq ? eq : e) - q);
        size_t vl = eq ? (size_t)(e - eq - 1) : 0;
        if (nl) {
            char *name = malloc(nl + 1), *value = malloc(vl + 1);
            if (!name || !value) {
                free(name);
                free(value);
                return -ENOMEM;
            }
            memcpy(name, q, nl);
            for (size_t i = 0; i < nl; i++) if (name[i] == '+') name[i] = ' ';
            name[percent_decode((uint8_t *)name, name, nl)] = 0;
            if (eq) memcpy(value, eq + 1, vl);
            for (size_t i = 0; i < vl; i++) if (value[i] == '+') value[i] = ' ';
            value[percent_decode((uint8_t *)value, value, vl)] = 0;
            /* fields bound by the path or the body keep their value */
            int rv = set_field(t, rule->input_type, obj, name, value, true, err, errlen);
            if (rv == -EINVAL) snprintf(err, errlen, "query parameter %s names no field of %s",
                                        name, rule->input_type);
            free(name);
            free(value);
            if (rv < 0) return rv;
        }
        q = e + (amp ? 1 : 0);
    }
    return 0;
}

static int encode_one(const web_table *t, const char *type, const json_t *obj, buf *out,
                      char *err, size_t errlen)
{
    uint8_t *pb = NULL;
    size_t pb_len = 0;
    json_pb_error je;
    int rv = json_pb_encode_value(t->pool, type, obj, &pb, &pb_len, &je);
    if (rv < 0) {
        snprintf(err, errlen, "%s", rv == -ENOMEM ? "out of memory" : je.text);
        free(pb);
        return rv == -ENOMEM ? -ENOMEM : -EINVAL;
    }
    rv = web_frame_append(out, pb, pb_len, 0);
    free(pb);
    return rv;
}

/* Client streaming: JSON objects one after another (newline-delimited,
 * any whitespace between them), each a message. */
static int stream_body(const web_table *t, const web_rule *rule, const uint8_t *body,
                       size_t len, buf *out, char *err, size_t errlen)
{
    size_t off = 0, n = 0;
    for (;;) {
        while (off < len && strchr(" \t\r\n", body[off])) off++;
        if (off == len) return 0;
        json_error_t je;
        json_t *v = json_loadb((const char *)body + off, len - off,
                               JSON_DISABLE_EOF_CHECK | JSON_DECODE_ANY, &je);
        if (!v) {
            snprintf(err, errlen, "message %zu of the request stream is not JSON: %s", n + 1, je.text);
            return -EINVAL;
        }
        off += je.position;
        int rv = json_is_object(v) ? encode_one(t, rule->input_type, v, out, err, errlen) : -EINVAL;
        if (rv == -EINVAL && !json_is_object(v))
            snprintf(err, errlen, "message %zu of the request stream is not a JSON object", n + 1);
        json_decref(v);
        if (rv < 0) return rv;
        n++;
    }
}

int web_gateway_request(const web_table *t, const web_rule *rule, char *const *vals,
                        const char *query, size_t query_len, const uint8_t *body,
                        size_t body_len, buf *out, char *err, size_t errlen)
{
    if (rule->client_streaming && rule->body && strcmp(rule->body, "*") == 0 && rule->n_vars == 0)
        return stream_body(t, rule, body, body_len, out, err, errlen);
    json_t *obj = NULL;
    bool has_body = false;
    for (size_t i = 0; i < body_len && !has_body; i++) has_body = !strchr(" \t\r\n", body[i]);
    if (rule->body && has_body) {
        json_error_t je;
        json_t *v = json_loadb((const char *)body, body_len, JSON_DECODE_ANY, &je);
        if (!v) {
            snprintf(err, errlen, "the request body is not JSON: %s (line %d, column %d)", je.text,
                     je.line, je.column);
            return -EINVAL;
        }
        if (strcmp(rule->body, "*") == 0) {
            if (!json_is_object(v)) {
                json_decref(v);
                snprintf(err, errlen, "the request body must be a JSON object");
                return -EINVAL;
            }
            obj = v;
        } else {
            obj = json_object();
            if (!obj || set_path(obj, rule->body, v, false, false) < 0) {
                json_decref(obj);
                snprintf(err, errlen, "out of memory");
                return -ENOMEM;
            }
        }
    } else {
        obj = json_object();
        if (!obj) return -ENOMEM;
    }
    int rv = 0;
    for (uint32_t i = 0; i < rule->n_vars && rv == 0; i++)
        rv = set_field(t, rule->input_type, obj, rule->vars[i].field, vals[i], false, err, errlen);
    if (rv == 0 && query_len && !(rule->body && strcmp(rule->body, "*") == 0))
        rv = query_fields(t, rule, obj, query, query_len, err, errlen);
    if (rv == 0) rv = encode_one(t, rule->input_type, obj, out, err, errlen);
    json_decref(obj);
    return rv;
}

int web_gateway_response(const web_table *t, const web_rule *rule, const uint8_t *msg,
                         size_t len, char **out, char *err, size_t errlen)
{
    json_pb_error je;
    json_t *v = NULL;
    int rv = json_pb_decode_value(t->pool, rule->output_type, msg, len, JSON_PB_EMIT_DEFAULTS, &v, &je);
    if (rv < 0) {
        snprintf(err, errlen, "%s", je.text);
        return rv;
    }
    json_t *shown = v;
    if (rule->response_body) {
        char json_name[256];
        shown = json_object_get(v, descpool_json_name(rule->response_body, json_name, sizeof json_name));
        if (!shown) shown = json_null();
    }
    *out = json_pb_dump(shown, JSON_PB_COMPACT);
    json_decref(v);
    if (!*out) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    return 0;
}
