/* lib/json_pb, both ways, over a pool of the Rides, interop
 * (grpc.testing) and json-mapping test protos (every well-known type).
 *
 * Input: byte 0 picks the message type (any message of the pool but map
 * entries), byte 1 the direction (bit 0: 0 JSON -> wire, 1 wire -> JSON)
 * and the output flags (bits 1-3: EMIT_DEFAULTS, PROTO_NAMES,
 * ENUMS_AS_INTS); the rest is the JSON text or the wire bytes.
 *
 * Invariants, besides "no crash, no leak, no UB":
 *  - an error is -EINVAL/-ENOENT/-ENOMEM with a one-line reason;
 *  - what the encoder produces, protobuf-c (an independent implementation)
 *    unpacks, and json_pb decodes;
 *  - what the decoder prints (with any flags), the encoder takes back, and
 *    decoding that again prints the same text (the printed form is a
 *    fixed point: rpcall users paste responses back as requests). */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "descpool.h"
#include "fuzz.h"
#include "fuzz_json_set.h"
#include "json_pb.h"
#include "pb_depth.h"

#include "google/protobuf/struct.pb-c.h"
#include "grpc/testing/empty.pb-c.h"
#include "grpc/testing/messages.pb-c.h"
#include "jsontest.pb-c.h"
#include "rides.pb-c.h"

static descpool *pool;
static const char **types;
static size_t n_types;

/* protobuf-c descriptors by full name: the top-level ones below and every
 * message type reachable from their fields. */
static const ProtobufCMessageDescriptor *pbc[256];
static size_t n_pbc;

static void add_pbc(const ProtobufCMessageDescriptor *d)
{
    for (size_t i = 0; i < n_pbc; i++)
        if (pbc[i] == d) return;
    if (n_pbc == sizeof pbc / sizeof pbc[0]) return;
    pbc[n_pbc++] = d;
    for (unsigned i = 0; i < d->n_fields; i++)
        if (d->fields[i].type == PROTOBUF_C_TYPE_MESSAGE) add_pbc(d->fields[i].descriptor);
}

static const ProtobufCMessageDescriptor *find_pbc(const char *name)
{
    for (size_t i = 0; i < n_pbc; i++)
        if (strcmp(pbc[i]->name, name) == 0) return pbc[i];
    return NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    pool = descpool_new();
    if (!pool || descpool_add_set(pool, rh_descriptor_set, sizeof rh_descriptor_set) != 0) {
        fprintf(stderr, "fuzz_json_pb: cannot build the pool\n");
        abort();
    }
    size_t n = 0;
    const descpool_symbol *const *v = descpool_list(pool, DESCPOOL_MESSAGE, &n);
    types = calloc(n, sizeof *types);
    for (size_t i = 0; i < n; i++)
        if (!descpool_is_map_entry(v[i]->u.message)) types[n_types++] = v[i]->full_name;
    static const ProtobufCMessageDescriptor *const top[] = {
        &location__descriptor, &start_request__descriptor, &start_response__descriptor,
        &track_request__descriptor, &track_response__descriptor,
        &grpc__testing__empty__descriptor, &grpc__testing__simple_request__descriptor,
        &grpc__testing__simple_response__descriptor,
        &grpc__testing__streaming_input_call_request__descriptor,
        &grpc__testing__streaming_output_call_request__descriptor,
        &grpc__testing__streaming_output_call_response__descriptor,
        &grpc__testing__load_balancer_stats_response__descriptor,
        &grpc__testing__load_balancer_accumulated_stats_response__descriptor,
        &grpc__testing__client_configure_request__descriptor,
        &grpc__testing__test_orca_report__descriptor,
        &rpchost__jsontest__inner__descriptor, &rpchost__jsontest__scalars__descriptor,
        &rpchost__jsontest__repeats__descriptor, &rpchost__jsontest__maps__descriptor,
        &rpchost__jsontest__oneofs__descriptor, &rpchost__jsontest__wkt__descriptor,
        &rpchost__jsontest__names__descriptor, &google__protobuf__value__descriptor,
    };
    for (size_t i = 0; i < sizeof top / sizeof top[0]; i++) add_pbc(top[i]);
    return 0;
}

static void check_err(int rv, const json_pb_error *err, const char *what)
{
    FUZZ_CHECK(rv == -EINVAL || rv == -ENOENT || rv == -ENOMEM, "%s returned %d", what, rv);
    size_t n = strnlen(err->text, sizeof err->text);
    FUZZ_CHECK(n > 0 && n < sizeof err->text, "%s: no reason", what);
    FUZZ_CHECK(!memchr(err->text, '\n', n), "%s: reason of more than one line", what);
}

/* Object members whose value is null, removed at every level. */
static void strip_null_members(json_t *v)
{
    if (json_is_object(v)) {
        const char *key;
        json_t *m;
        void *tmp;
        json_object_foreach_safe(v, tmp, key, m)
        {
            if (json_is_null(m))
                json_object_del(v, key);
            else
                strip_null_members(m);
        }
    } else if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++)
            strip_null_members(json_array_get(v, i));
    }
}

/* The same JSON value, but for two losses the proto3 JSON mapping itself
 * makes, accepted (docs/fuzzing.md):
 *  - a negative zero prints as -0 (as protobuf's C++ and Go printers do),
 *    which jansson (json_pb's reader) reads as the integer 0;
 *  - a google.protobuf.NullValue field holding a number other than 0 prints
 *    as null (the mapping has nothing else), which reads back as 0, the
 *    default, left out.
 * Both texts are read with jansson (so -0 is 0) and null members dropped. */
static bool same_json(const char *a, const char *b)
{
    json_t *x = json_loads(a, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    json_t *y = json_loads(b, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    FUZZ_CHECK(x && y, "printed text is not JSON:\n%s\n%s", a, b);
    strip_null_members(x);
    strip_null_members(y);
    bool same = json_equal(x, y);
    json_decref(x);
    json_decref(y);
    return same;
}

/* wire -> text with flags; then text -> wire -> text must repeat. */
static void decode_fixed_point(const char *type, const uint8_t *wire, size_t len,
                               unsigned flags, bool must_decode)
{
    char *t1 = NULL;
    json_pb_error err = {{0}};
    int rv = json_pb_decode(pool, type, wire, len, flags, &t1, &err);
    if (rv != 0) {
        FUZZ_CHECK(!must_decode, "%s: own encoding does not decode: %s", type, err.text);
        check_err(rv, &err, "decode");
        return;
    }
    uint8_t *w2 = NULL;
    size_t w2len = 0;
    rv = json_pb_encode(pool, type, t1, strlen(t1), &w2, &w2len, &err);
    FUZZ_CHECK(rv == 0, "%s: decoder output does not encode back: %s\n%s", type, err.text, t1);
    char *t2 = NULL;
    rv = json_pb_decode(pool, type, w2, w2len, flags, &t2, &err);
    FUZZ_CHECK(rv == 0, "%s: re-encoded output does not decode: %s", type, err.text);
    FUZZ_CHECK(strcmp(t1, t2) == 0 || same_json(t1, t2), "%s: not a fixed point:\n%s\n%s",
               type, t1, t2);
    free(t1);
    free(t2);
    free(w2);
}

/* google.protobuf.Value nested `levels` deep through list_value (two
 * messages a level). Too deep, the depth check must refuse it before
 * protobuf-c unpacks (which would overflow the stack) and json_pb on its
 * own limit; shallow, both take it. */
static void deep_value(size_t levels, bool too_deep)
{
    size_t cap = levels * 12 + 16;
    uint8_t *buf = malloc(cap), *p = buf + cap;
    if (!buf) return;
    *--p = 0x00;
    *--p = 0x08; /* null_value: NULL_VALUE */
    for (size_t i = 0; i < levels; i++) {
        p = prepend_varint(p, (size_t)(buf + cap - p));
        *--p = 0x0a; /* ListValue.values */
        p = prepend_varint(p, (size_t)(buf + cap - p));
        *--p = 0x32; /* Value.list_value */
    }
    size_t len = (size_t)(buf + cap - p);
    FUZZ_CHECK(pb_depth_check(&google__protobuf__value__descriptor, p, len,
                              PB_DEPTH_DEFAULT) == (too_deep ? -ELOOP : 0),
               "depth check wrong at %zu levels", levels);
    if (!too_deep) {
        ProtobufCMessage *m =
            protobuf_c_message_unpack(&google__protobuf__value__descriptor, NULL, len, p);
        FUZZ_CHECK(m != NULL, "protobuf-c refused %zu levels", levels);
        protobuf_c_message_free_unpacked(m, NULL);
    }
    char *text = NULL;
    json_pb_error err = {{0}};
    int rv = json_pb_decode(pool, "google.protobuf.Value", p, len, 0, &text, &err);
    FUZZ_CHECK(too_deep ? rv == -EINVAL : rv == 0, "json_pb returned %d at %zu levels", rv,
               levels);
    free(text);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool once;
    if (!once) {
        once = true;
        deep_value(20, false);
        deep_value(100000, true);
    }
    if (size < 2) return 0;
    const char *type = types[data[0] % n_types];
    unsigned flags = JSON_PB_COMPACT;
    if (data[1] & 2) flags |= JSON_PB_EMIT_DEFAULTS;
    if (data[1] & 4) flags |= JSON_PB_PROTO_NAMES;
    if (data[1] & 8) flags |= JSON_PB_ENUMS_AS_INTS;
    size_t len = size - 2;
    uint8_t *in = malloc(len ? len : 1);
    if (!in) return 0;
    memcpy(in, data + 2, len);
    json_pb_error err = {{0}};
    if (data[1] & 1) {
        decode_fixed_point(type, in, len, flags, false);
        /* The host's path: the depth check, then protobuf-c. */
        const ProtobufCMessageDescriptor *d = find_pbc(type);
        if (d && pb_depth_check(d, in, len, PB_DEPTH_DEFAULT) == 0) {
            ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, len, in);
            if (m) protobuf_c_message_free_unpacked(m, NULL);
        }
    } else {
        uint8_t *wire = NULL;
        size_t wlen = 0;
        int rv = json_pb_encode(pool, type, (const char *)in, len, &wire, &wlen, &err);
        if (rv == 0) {
            FUZZ_CHECK(wire != NULL, "no buffer");
            const ProtobufCMessageDescriptor *d = find_pbc(type);
            if (d) {
                ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, wlen, wire);
                FUZZ_CHECK(m != NULL, "%s: protobuf-c cannot unpack the encoding", type);
                protobuf_c_message_free_unpacked(m, NULL);
            }
            decode_fixed_point(type, wire, wlen, flags, true);
            free(wire);
        } else {
            check_err(rv, &err, "encode");
        }
    }
    free(in);
    return 0;
}

FUZZ_CASES(FUZZ_CASE("\x00\x00{}"), FUZZ_CASE("\x00\x01"), FUZZ_CASE("\x01\x00[]"),
           FUZZ_CASE("\x02\x00{\"a\":1e400}"), FUZZ_CASE("\x03\x00null"),
           FUZZ_CASE("\x04\x01\x0a\x80"), FUZZ_CASE("\x05\x01\xff\xff\xff\xff\xff"));
