/* json_pb: descriptor-driven JSON <-> protobuf wire format, following the
 * proto3 JSON mapping (https://protobuf.dev/programming-guides/proto3/#json).
 *
 * Encoding (JSON -> wire) accepts:
 *  - field names in lowerCamelCase (or the descriptor's json_name) and the
 *    original proto names; a JSON key that names no field is rejected with
 *    its path ("location.latt: unknown field");
 *  - `null` for any field (= default / absent), except google.protobuf.Value
 *    where it is NULL_VALUE;
 *  - 64-bit integers as strings or numbers, 32-bit integers as numbers or
 *    strings, floats as numbers or "NaN" / "Infinity" / "-Infinity";
 *  - enums by value name or number; bytes as base64 (standard or URL-safe,
 *    padding optional);
 *  - google.protobuf.Timestamp as RFC 3339 with any fraction up to 9 digits
 *    and a "Z" or "+hh:mm"/"-hh:mm" offset; Duration as "1.5s"; FieldMask as
 *    "a.b,cD"; wrappers as their bare value; Empty as {}; Struct / Value /
 *    ListValue as any JSON; Any as {"@type": ..., ...} when the type is in
 *    the pool;
 *  - maps as JSON objects (keys are strings; bool/int keys parsed), oneof
 *    (two members of one oneof set is an error), nested and repeated.
 * Decoding (wire -> JSON) accepts packed and unpacked repeated scalars,
 * skips unknown fields, and emits lowerCamelCase names (or proto names with
 * JSON_PB_PROTO_NAMES), 64-bit integers as strings, enums by name (number
 * when the value is unknown), and leaves out fields at their default unless
 * JSON_PB_EMIT_DEFAULTS.
 *
 * Errors: functions return 0 or -errno (-EINVAL bad input, -ENOENT unknown
 * message type, -ENOMEM); on failure `err` (may be NULL) holds one line
 * naming the path of the offending field, e.g.
 *   "passengerIds[1]: expected a string, got a number"
 *   "time: invalid RFC 3339 timestamp \"yesterday\""
 * Malformed input of any kind gives an error, never a crash.
 *
 * Messages are named by their full name in the pool ("StartRequest",
 * "grpc.testing.SimpleRequest"; a leading dot is accepted).
 */
#ifndef RPCHOST_LIB_JSON_PB_H
#define RPCHOST_LIB_JSON_PB_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "descpool.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Output flags of the decoding side (wire -> JSON). */
enum {
    JSON_PB_EMIT_DEFAULTS = 1 << 0, /* also print fields at their default */
    JSON_PB_PROTO_NAMES = 1 << 1,   /* proto field names, not lowerCamelCase */
    JSON_PB_COMPACT = 1 << 2,       /* one line (json_pb_to_json only) */
    JSON_PB_ENUMS_AS_INTS = 1 << 3, /* enum numbers, not names */
};

typedef struct json_pb_error {
    char text[256]; /* "path: what is wrong", "" when no error */
} json_pb_error;

/* Maximum nesting of messages / JSON values accepted either way. */
#define JSON_PB_MAX_DEPTH 64

/* --- JSON -> wire ------------------------------------------------------ */

/* Parses the JSON text (len bytes, not necessarily NUL-terminated) and
 * encodes it as message `type`. On success *out is a malloc'd buffer of
 * *out_len bytes (the caller frees it; an empty message gives *out_len 0
 * and a non-NULL *out). */
int json_pb_encode(const descpool *pool, const char *type, const char *json, size_t len,
                   uint8_t **out, size_t *out_len, json_pb_error *err);
/* The same from an already parsed value (rpcall reads a stream of JSON
 * objects and encodes each as it arrives). */
int json_pb_encode_value(const descpool *pool, const char *type, const json_t *value,
                         uint8_t **out, size_t *out_len, json_pb_error *err);

/* --- wire -> JSON ------------------------------------------------------ */

/* Decodes `len` bytes of message `type` to a new JSON object (*out, one
 * reference owned by the caller: json_decref it). */
int json_pb_decode_value(const descpool *pool, const char *type, const uint8_t *data,
                         size_t len, unsigned flags, json_t **out, json_pb_error *err);
/* The same printed: pretty (2-space indent) unless JSON_PB_COMPACT, no
 * trailing newline. *out is malloc'd, NUL-terminated; the caller frees. */
int json_pb_decode(const descpool *pool, const char *type, const uint8_t *data, size_t len,
                   unsigned flags, char **out, json_pb_error *err);

/* --- printing -----------------------------------------------------------
 * Prints any JSON value as json_pb_decode does: keys in insertion order,
 * doubles in their shortest round-trip form ("51.4871871", not
 * "51.487187099999998"), pretty (2-space indent) unless JSON_PB_COMPACT.
 * Returns a malloc'd NUL-terminated string, NULL on allocation failure or
 * a value JSON cannot hold (NaN / infinite reals). */
char *json_pb_dump(const json_t *value, unsigned flags);

#ifdef __cplusplus
}
#endif
#endif /* RPCHOST_LIB_JSON_PB_H */
