/* Internals shared by json_pb_encode.c (JSON -> wire), json_pb_decode.c
 * (wire -> JSON), json_pb_print.c (JSON text out) and json_pb_util.c
 * (paths, errors, base64, RFC 3339 times, well-known types). Not part of
 * the library's API. */
#ifndef RPCHOST_LIB_JSON_PB_INTERNAL_H
#define RPCHOST_LIB_JSON_PB_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "json_pb.h"

typedef Google__Protobuf__FieldDescriptorProto jp_field;
typedef Google__Protobuf__DescriptorProto jp_msg;

#define JP_T(x) GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_##x
#define JP_REPEATED GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__LABEL__LABEL_REPEATED

/* Wire types. */
enum { JP_WT_VARINT = 0, JP_WT_I64 = 1, JP_WT_LEN = 2, JP_WT_I32 = 5 };

/* One transcoding: the pool, where we are, and where errors go. */
typedef struct jp_ctx {
    const descpool *pool;
    json_pb_error *err;
    unsigned flags;
    int depth;
    size_t path_len;
    char path[400]; /* "location.lat", "passengerIds[2]", "labels[\"k\"]" */
} jp_ctx;

void jp_ctx_init(jp_ctx *ctx, const descpool *pool, json_pb_error *err, unsigned flags);

/* Path: each push returns the previous length to pop back to. */
size_t jp_path_field(jp_ctx *ctx, const char *name);
size_t jp_path_index(jp_ctx *ctx, size_t index);
size_t jp_path_key(jp_ctx *ctx, const char *key);
void jp_path_pop(jp_ctx *ctx, size_t len);

/* "path: <message>" into ctx->err; returns -EINVAL. */
int jp_fail(jp_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same for -ENOMEM. */
int jp_oom(jp_ctx *ctx);

/* Well-known types with a special JSON form. */
typedef enum jp_wkt {
    JP_WKT_NONE = 0,
    JP_WKT_ANY,
    JP_WKT_TIMESTAMP,
    JP_WKT_DURATION,
    JP_WKT_FIELD_MASK,
    JP_WKT_STRUCT,
    JP_WKT_VALUE,
    JP_WKT_LIST_VALUE,
    JP_WKT_WRAPPER, /* DoubleValue ... BytesValue: the bare value */
} jp_wkt;

/* Classifies a message full name (no leading dot). For wrappers,
 * *wrapped gets the field type of `value`. */
jp_wkt jp_wkt_of(const char *full_name, int *wrapped);

/* A message type by full name: its symbol, or NULL (well-known types with
 * a special JSON form work without their descriptor in the pool). */
const descpool_symbol *jp_message(const jp_ctx *ctx, const char *full_name);
/* The message or enum a field refers to, resolved from its message. */
const descpool_symbol *jp_field_type(const jp_ctx *ctx, const descpool_symbol *msg,
                                     const jp_field *f);
/* The full name a field's type_name refers to, without the leading dot. */
const char *jp_type_name(const jp_field *f);
/* The JSON name of a field (descriptor's json_name or computed). */
const char *jp_json_name(const jp_field *f, char *buf, size_t size);
/* Field has no presence in proto3 (omitted at its default value). */
bool jp_implicit_presence(const descpool_symbol *msg, const jp_field *f);
bool jp_is_map(const jp_ctx *ctx, const descpool_symbol *msg, const jp_field *f,
               const descpool_symbol **entry);
/* Numeric scalar types that may be packed. */
bool jp_packable(int type);
/* The wire type of a (non-packed) scalar or message type. */
int jp_wire_type(int type);
/* Written packed when repeated (proto3 default, or [packed=true]). */
bool jp_packed(const descpool_symbol *msg, const jp_field *f);

/* Base64 (RFC 4648): encode with padding; decode standard or URL-safe,
 * padding optional. decode: 0, -EINVAL (bad input), -ENOMEM. */
char *jp_base64_encode(const uint8_t *data, size_t len);
int jp_base64_decode(const char *s, size_t n, uint8_t **out, size_t *out_len);

/* RFC 3339 times and "1.5s" durations. Range checks as in the mapping:
 * Timestamp 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59.999999999Z,
 * Duration +-315576000000s. Parsers: 0 or -EINVAL. Formatters write at
 * most 40 bytes, with 0, 3, 6 or 9 fraction digits. */
int jp_timestamp_parse(const char *s, int64_t *seconds, int32_t *nanos);
int jp_timestamp_format(int64_t seconds, int32_t nanos, char *buf, size_t size);
int jp_duration_parse(const char *s, int64_t *seconds, int32_t *nanos);
int jp_duration_format(int64_t seconds, int32_t nanos, char *buf, size_t size);

/* A growable byte buffer. */
typedef struct jp_buf {
    uint8_t *p;
    size_t len, cap;
} jp_buf;
int jp_buf_put(jp_buf *b, const void *data, size_t n);
int jp_buf_varint(jp_buf *b, uint64_t v);
int jp_buf_tag(jp_buf *b, uint32_t field, int wire_type);
int jp_buf_fixed32(jp_buf *b, uint32_t v);
int jp_buf_fixed64(jp_buf *b, uint64_t v);
/* tag + length + bytes */
int jp_buf_len_field(jp_buf *b, uint32_t field, const void *data, size_t n);
void jp_buf_free(jp_buf *b);

/* Reading the wire format. */
typedef struct jp_reader {
    const uint8_t *p, *end;
} jp_reader;
/* A reader over len bytes. data may be NULL when len is 0 (an absent
 * field's value), and NULL + 0 is undefined behaviour in C. */
static inline jp_reader jp_reader_of(const uint8_t *data, size_t len)
{
    return (jp_reader){data, data ? data + len : data};
}
/* 1 = read a value, 0 = end of input, -EINVAL = malformed. */
int jp_read_varint(jp_reader *r, uint64_t *v);
int jp_read_tag(jp_reader *r, uint32_t *field, int *wire_type);
/* Reads the value of a wire type: varint/fixed in *v, LEN in *data and *len. */
int jp_read_value(jp_reader *r, int wire_type, uint64_t *v, const uint8_t **data,
                  size_t *len);

/* Whether n bytes are valid UTF-8 (what JSON strings and keys must be). */
bool jp_utf8_valid(const uint8_t *s, size_t n);

/* Shortest text of a double that reads back to the same value. */
void jp_format_double(double d, char *buf, size_t size);
/* The double whose shortest text is the float's shortest text (so 0.1f
 * prints as 0.1, not 0.10000000149011612). */
double jp_float_to_double(float f);

#endif
