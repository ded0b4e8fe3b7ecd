/* json_pb: every JSON type of the proto3 mapping, both directions. What
 * json_pb encodes is unpacked by protobuf-c's generated code (an
 * independent implementation), and what protobuf-c packs is decoded by
 * json_pb. Malformed input of every kind must give an error naming the
 * path, never a crash (run under ASan in CI). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_pb.h"
#include "json_pb_internal.h"
#include "jsontest.pb-c.h"
#include "jsontest_set.h"
#include "rides.pb-c.h"

static descpool *pool;

static int setup(void **state)
{
    (void)state;
    pool = descpool_new();
    return descpool_add_set(pool, rh_descriptor_set, sizeof rh_descriptor_set);
}

static int teardown(void **state)
{
    (void)state;
    descpool_free(pool);
    return 0;
}

#define T(name) "rpchost.jsontest." name

/* Encodes or fails the test, showing the error. */
static uint8_t *enc(const char *type, const char *json, size_t *len)
{
    uint8_t *out;
    json_pb_error err;
    int rc = json_pb_encode(pool, type, json, strlen(json), &out, len, &err);
    if (rc)
        fail_msg("encode %s %s: %d %s", type, json, rc, err.text);
    return out;
}

/* Decodes to compact JSON or fails the test. */
static char *dec(const char *type, const uint8_t *data, size_t len, unsigned flags)
{
    char *out;
    json_pb_error err;
    int rc = json_pb_decode(pool, type, data, len, flags | JSON_PB_COMPACT, &out, &err);
    if (rc)
        fail_msg("decode %s: %d %s", type, rc, err.text);
    return out;
}

/* JSON -> wire -> JSON gives `want` (compact). */
static void round_trip(const char *type, const char *json, const char *want, unsigned flags)
{
    size_t len;
    uint8_t *b = enc(type, json, &len);
    char *got = dec(type, b, len, flags);
    if (strcmp(got, want))
        fail_msg("round trip of %s\n  got  %s\n  want %s", json, got, want);
    free(got);
    free(b);
}

/* Encoding fails with -EINVAL and an error containing `want`. */
static void enc_fails(const char *type, const char *json, const char *want)
{
    uint8_t *out = (uint8_t *)"untouched";
    size_t len = 99;
    json_pb_error err;
    int rc = json_pb_encode(pool, type, json, strlen(json), &out, &len, &err);
    if (rc != -EINVAL || !strstr(err.text, want))
        fail_msg("encode %s %s: rc %d, error \"%s\", want \"%s\"", type, json, rc, err.text,
                 want);
    assert_null(out);
    assert_int_equal(len, 0);
}

/* ---- the original request ------------------------------------------------ */

static const char origin_json[] =
    "{\"car_id\": 7, \"driver_id\": \"Bond\", \"passenger_ids\": [\"M\", \"Q\"],"
    " \"type\": \"POOL\", \"location\": {\"lat\": 51.4871871, \"lng\": -0.1266743},"
    " \"time\": \"2022-02-20T15:08:07.915156117+00:00\"}";

static void test_origin_request(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = enc("StartRequest", origin_json, &len);
    StartRequest *r = start_request__unpack(NULL, len, b);
    assert_non_null(r);
    assert_int_equal(r->car_id, 7);
    assert_string_equal(r->driver_id, "Bond");
    assert_int_equal(r->n_passenger_ids, 2);
    assert_string_equal(r->passenger_ids[0], "M");
    assert_string_equal(r->passenger_ids[1], "Q");
    assert_int_equal(r->type, RIDE_TYPE__POOL);
    assert_non_null(r->location);
    assert_true(r->location->lat == 51.4871871);
    assert_true(r->location->lng == -0.1266743);
    assert_non_null(r->time);
    assert_int_equal(r->time->seconds, 1645369687);
    assert_int_equal(r->time->nanos, 915156117);
    start_request__free_unpacked(r, NULL);

    char *j = dec("StartRequest", b, len, 0);
    assert_string_equal(j, "{\"carId\":\"7\",\"driverId\":\"Bond\",\"passengerIds\":[\"M\",\"Q\"],"
                           "\"type\":\"POOL\",\"location\":{\"lat\":51.4871871,"
                           "\"lng\":-0.1266743},\"time\":\"2022-02-20T15:08:07.915156117Z\"}");
    free(j);
    /* The same through the leading-dot name and the original names. */
    j = dec(".StartRequest", b, len, JSON_PB_PROTO_NAMES);
    assert_non_null(strstr(j, "\"car_id\":\"7\",\"driver_id\":\"Bond\""));
    free(j);
    free(b);

    /* The missing-driver request of the original's unit test. */
    b = enc("StartRequest", "{\"car_id\": 7}", &len);
    r = start_request__unpack(NULL, len, b);
    assert_string_equal(r->driver_id, "");
    start_request__free_unpacked(r, NULL);
    free(b);
    enc_fails("StartRequest", "{\"location\": {\"latt\": 1}}", "location.latt: unknown field");
}

/* ---- scalars ------------------------------------------------------------- */

static void test_scalars_encode(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = enc(T("Scalars"),
                     "{\"fDouble\": -2.5e-3, \"fFloat\": 0.1, \"fInt32\": -42,"
                     " \"fInt64\": \"-9223372036854775808\", \"fUint32\": 4294967295,"
                     " \"fUint64\": \"18446744073709551615\", \"fSint32\": -2147483648,"
                     " \"fSint64\": \"9223372036854775807\", \"fFixed32\": 7,"
                     " \"fFixed64\": 9007199254740993, \"fSfixed32\": -7,"
                     " \"fSfixed64\": \"-1\", \"fBool\": true, \"fString\": \"h\\u00e9\\n\","
                     " \"fBytes\": \"AAEC/w==\", \"fEnum\": \"GREEN\","
                     " \"fInner\": {\"a\": 1, \"b\": \"x\", \"level\": \"HIGH\"}}",
                     &len);
    Rpchost__Jsontest__Scalars *m = rpchost__jsontest__scalars__unpack(NULL, len, b);
    assert_non_null(m);
    assert_true(m->f_double == -2.5e-3);
    assert_true(m->f_float == 0.1f);
    assert_int_equal(m->f_int32, -42);
    assert_true(m->f_int64 == INT64_MIN);
    assert_int_equal(m->f_uint32, UINT32_MAX);
    assert_true(m->f_uint64 == UINT64_MAX);
    assert_int_equal(m->f_sint32, INT32_MIN);
    assert_true(m->f_sint64 == INT64_MAX);
    assert_int_equal(m->f_fixed32, 7);
    assert_true(m->f_fixed64 == 9007199254740993ull);
    assert_int_equal(m->f_sfixed32, -7);
    assert_true(m->f_sfixed64 == -1);
    assert_true(m->f_bool);
    assert_string_equal(m->f_string, "h\xc3\xa9\n");
    assert_int_equal(m->f_bytes.len, 4);
    assert_memory_equal(m->f_bytes.data, "\x00\x01\x02\xff", 4);
    assert_int_equal(m->f_enum, RPCHOST__JSONTEST__COLOR__GREEN);
    assert_int_equal(m->f_inner->a, 1);
    assert_string_equal(m->f_inner->b, "x");
    assert_int_equal(m->f_inner->level, RPCHOST__JSONTEST__INNER__LEVEL__HIGH);
    /* Byte for byte what protobuf-c writes for the same message. */
    uint8_t *again = malloc(rpchost__jsontest__scalars__get_packed_size(m));
    size_t n = rpchost__jsontest__scalars__pack(m, again);
    assert_int_equal(n, len);
    assert_memory_equal(again, b, len);
    free(again);
    rpchost__jsontest__scalars__free_unpacked(m, NULL);
    free(b);
}

static void test_scalars_decode(void **state)
{
    (void)state;
    Rpchost__Jsontest__Scalars m = RPCHOST__JSONTEST__SCALARS__INIT;
    Rpchost__Jsontest__Inner in = RPCHOST__JSONTEST__INNER__INIT;
    m.f_double = 51.4871871;
    m.f_float = 0.1f;
    m.f_int32 = -1;
    m.f_int64 = INT64_MIN;
    m.f_uint32 = 3000000000u;
    m.f_uint64 = UINT64_MAX;
    m.f_sint32 = -3;
    m.f_sint64 = -4;
    m.f_fixed32 = 5;
    m.f_fixed64 = 6;
    m.f_sfixed32 = -7;
    m.f_sfixed64 = -8;
    m.f_bool = 1;
    m.f_string = "q\"\\\x01";
    m.f_bytes.data = (uint8_t *)"\xfb\xff";
    m.f_bytes.len = 2;
    m.f_enum = RPCHOST__JSONTEST__COLOR__NEGATIVE;
    in.b = "";
    m.f_inner = &in;
    uint8_t buf[512];
    size_t len = rpchost__jsontest__scalars__pack(&m, buf);
    char *j = dec(T("Scalars"), buf, len, 0);
    assert_string_equal(
        j, "{\"fDouble\":51.4871871,\"fFloat\":0.1,\"fInt32\":-1,"
           "\"fInt64\":\"-9223372036854775808\",\"fUint32\":3000000000,"
           "\"fUint64\":\"18446744073709551615\",\"fSint32\":-3,\"fSint64\":\"-4\","
           "\"fFixed32\":5,\"fFixed64\":\"6\",\"fSfixed32\":-7,\"fSfixed64\":\"-8\","
           "\"fBool\":true,\"fString\":\"q\\\"\\\\\\u0001\",\"fBytes\":\"+/8=\","
           "\"fEnum\":\"NEGATIVE\",\"fInner\":{}}");
    free(j);
    j = dec(T("Scalars"), buf, len, JSON_PB_ENUMS_AS_INTS);
    assert_non_null(strstr(j, "\"fEnum\":-1"));
    free(j);
}

static void test_number_forms(void **state)
{
    (void)state;
    /* Numbers as strings and strings as numbers, as the mapping allows. */
    round_trip(T("Scalars"), "{\"fInt32\": \"12\", \"fInt64\": 13, \"fUint64\": 1e3}",
               "{\"fInt32\":12,\"fInt64\":\"13\",\"fUint64\":\"1000\"}", 0);
    round_trip(T("Scalars"), "{\"fDouble\": \"NaN\", \"fFloat\": \"-Infinity\"}",
               "{\"fDouble\":\"NaN\",\"fFloat\":\"-Infinity\"}", 0);
    round_trip(T("Scalars"), "{\"fDouble\": \"Infinity\", \"fFloat\": \"2.5\"}",
               "{\"fDouble\":\"Infinity\",\"fFloat\":2.5}", 0);
    round_trip(T("Scalars"), "{\"fDouble\": 1, \"fInt32\": 2.0, \"fSint64\": \"-0\"}",
               "{\"fDouble\":1,\"fInt32\":2}", 0);
    round_trip(T("Scalars"), "{\"fDouble\": 1e308, \"fFloat\": 3.4028234e38}",
               "{\"fDouble\":1e+308,\"fFloat\":3.4028235e+38}", 0);

    enc_fails(T("Scalars"), "{\"fInt32\": 2147483648}", "fInt32: 2147483648 is out of range");
    enc_fails(T("Scalars"), "{\"fInt32\": \"-2147483649\"}", "fInt32: -2147483649 is out of");
    enc_fails(T("Scalars"), "{\"fUint32\": -1}", "fUint32: -1 is out of range");
    enc_fails(T("Scalars"), "{\"fUint64\": \"-1\"}", "fUint64: \"-1\" is negative");
    enc_fails(T("Scalars"), "{\"fUint64\": \"18446744073709551616\"}", "is not an integer");
    enc_fails(T("Scalars"), "{\"fInt64\": \"9223372036854775808\"}", "out of range");
    enc_fails(T("Scalars"), "{\"fInt32\": 1.5}", "fInt32: 1.5 is not an integer");
    enc_fails(T("Scalars"), "{\"fInt32\": \"1x\"}", "fInt32: \"1x\" is not an integer");
    enc_fails(T("Scalars"), "{\"fInt32\": \" 1\"}", "is not an integer");
    enc_fails(T("Scalars"), "{\"fInt32\": true}", "fInt32: expected an integer, got a boolean");
    enc_fails(T("Scalars"), "{\"fInt64\": {}}", "fInt64: expected an integer, got an object");
    enc_fails(T("Scalars"), "{\"fFloat\": 1e39}", "fFloat: 1e+39 is out of range for a float");
    enc_fails(T("Scalars"), "{\"fDouble\": \"nan\"}", "fDouble: \"nan\" is not a number");
    enc_fails(T("Scalars"), "{\"fDouble\": \"1e999\"}", "is not a number");
    enc_fails(T("Scalars"), "{\"fDouble\": [1]}", "fDouble: expected a number, got an array");
    enc_fails(T("Scalars"), "{\"fBool\": \"true\"}", "fBool: expected true or false");
    enc_fails(T("Scalars"), "{\"fBool\": 1}", "fBool: expected true or false, got a number");
    enc_fails(T("Scalars"), "{\"fString\": 5}", "fString: expected a string, got a number");
    enc_fails(T("Scalars"), "{\"fInner\": \"x\"}", "fInner: expected an object");
    enc_fails(T("Scalars"), "{\"fInner\": {\"a\": \"z\"}}", "fInner.a: \"z\" is not an integer");
}

static void test_defaults_and_null(void **state)
{
    (void)state;
    /* proto3 implicit presence: defaults are not written, so not shown. */
    size_t len;
    uint8_t *b = enc(T("Scalars"), "{\"fInt32\": 0, \"fString\": \"\", \"fBool\": false,"
                                   " \"fEnum\": \"COLOR_UNSPECIFIED\", \"fDouble\": null}",
                     &len);
    assert_int_equal(len, 0);
    free(b);
    round_trip(T("Scalars"), "{\"fInner\": {}}", "{\"fInner\":{}}", 0);
    round_trip(T("Scalars"), "{\"fInner\": null}", "{}", 0);
    round_trip(T("Scalars"), "{}",
               "{\"fDouble\":0,\"fFloat\":0,\"fInt32\":0,\"fInt64\":\"0\",\"fUint32\":0,"
               "\"fUint64\":\"0\",\"fSint32\":0,\"fSint64\":\"0\",\"fFixed32\":0,"
               "\"fFixed64\":\"0\",\"fSfixed32\":0,\"fSfixed64\":\"0\",\"fBool\":false,"
               "\"fString\":\"\",\"fBytes\":\"\",\"fEnum\":\"COLOR_UNSPECIFIED\"}",
               JSON_PB_EMIT_DEFAULTS);
    round_trip(T("Repeats"), "{}",
               "{\"rInt32\":[],\"rInt64\":[],\"rDouble\":[],\"rString\":[],\"rBytes\":[],"
               "\"rEnum\":[],\"rMsg\":[],\"rSint64\":[],\"rFixed32\":[],\"rBool\":[],"
               "\"rFloat\":[],\"rUnpacked\":[]}",
               JSON_PB_EMIT_DEFAULTS);
    round_trip(T("Maps"), "{}",
               "{\"strInt\":{},\"int64Str\":{},\"boolMsg\":{},\"u32Enum\":{},\"strValue\":{},"
               "\"s32Bytes\":{}}",
               JSON_PB_EMIT_DEFAULTS);
    /* A default written explicitly on the wire is still not shown. */
    const uint8_t zero_int32[] = {0x18, 0x00};
    char *j = dec(T("Scalars"), zero_int32, sizeof zero_int32, 0);
    assert_string_equal(j, "{}");
    free(j);
}

static void test_enums(void **state)
{
    (void)state;
    round_trip(T("Scalars"), "{\"fEnum\": 1}", "{\"fEnum\":\"RED\"}", 0);
    round_trip(T("Scalars"), "{\"fEnum\": \"NEGATIVE\"}", "{\"fEnum\":\"NEGATIVE\"}", 0);
    /* A number this schema does not know: kept, printed as a number. */
    round_trip(T("Scalars"), "{\"fEnum\": 77}", "{\"fEnum\":77}", 0);
    round_trip(T("Scalars"), "{\"fInner\": {\"level\": \"HIGH\"}}",
               "{\"fInner\":{\"level\":\"HIGH\"}}", 0);
    enc_fails(T("Scalars"), "{\"fEnum\": \"BLUE\"}",
              "fEnum: \"BLUE\" is not a value of enum rpchost.jsontest.Color");
    enc_fails(T("Scalars"), "{\"fEnum\": \"red\"}", "is not a value of enum");
    enc_fails(T("Scalars"), "{\"fEnum\": 1.5}", "fEnum: 1.5 is not an integer");
    enc_fails(T("Scalars"), "{\"fEnum\": []}", "fEnum: expected an enum value name or number");
}

static void test_bytes(void **state)
{
    (void)state;
    round_trip(T("Scalars"), "{\"fBytes\": \"aGVsbG8=\"}", "{\"fBytes\":\"aGVsbG8=\"}", 0);
    round_trip(T("Scalars"), "{\"fBytes\": \"aGVsbG8\"}", "{\"fBytes\":\"aGVsbG8=\"}", 0);
    round_trip(T("Scalars"), "{\"fBytes\": \"-_8\"}", "{\"fBytes\":\"+/8=\"}", 0);
    round_trip(T("Scalars"), "{\"fBytes\": \"YQ==\"}", "{\"fBytes\":\"YQ==\"}", 0);
    enc_fails(T("Scalars"), "{\"fBytes\": \"a*b=\"}", "fBytes: not valid base64");
    enc_fails(T("Scalars"), "{\"fBytes\": \"abcde\"}", "fBytes: not valid base64");
    enc_fails(T("Scalars"), "{\"fBytes\": 12}", "fBytes: expected a base64 string");
}

/* ---- repeated, maps, oneof, names ---------------------------------------- */

static void test_repeated(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = enc(T("Repeats"),
                     "{\"rInt32\": [1, -2, 300], \"rInt64\": [\"5\", 6],"
                     " \"rDouble\": [0.5, \"NaN\"], \"rString\": [\"a\", \"\"],"
                     " \"rBytes\": [\"AA==\"], \"rEnum\": [\"RED\", 2, \"NEGATIVE\"],"
                     " \"rMsg\": [{\"a\": 1}, {}, {\"children\": [{\"b\": \"z\"}]}],"
                     " \"rSint64\": [\"-1\"], \"rFixed32\": [1, 2], \"rBool\": [true, false],"
                     " \"rFloat\": [1.5], \"rUnpacked\": [7, 8]}",
                     &len);
    Rpchost__Jsontest__Repeats *m = rpchost__jsontest__repeats__unpack(NULL, len, b);
    assert_non_null(m);
    assert_int_equal(m->n_r_int32, 3);
    assert_int_equal(m->r_int32[1], -2);
    assert_int_equal(m->r_int32[2], 300);
    assert_int_equal(m->n_r_int64, 2);
    assert_int_equal(m->r_int64[1], 6);
    assert_true(isnan(m->r_double[1]));
    assert_string_equal(m->r_string[1], "");
    assert_int_equal(m->n_r_enum, 3);
    assert_int_equal(m->r_enum[2], -1);
    assert_int_equal(m->n_r_msg, 3);
    assert_string_equal(m->r_msg[2]->children[0]->b, "z");
    assert_true(m->r_sint64[0] == -1);
    assert_int_equal(m->n_r_bool, 2);
    assert_int_equal(m->n_r_unpacked, 2);
    /* Packed in proto3 by default, [packed = false] honoured: protobuf-c
     * packs the same message to the same bytes. */
    uint8_t *again = malloc(rpchost__jsontest__repeats__get_packed_size(m));
    assert_int_equal(rpchost__jsontest__repeats__pack(m, again), len);
    assert_memory_equal(again, b, len);
    free(again);
    rpchost__jsontest__repeats__free_unpacked(m, NULL);
    char *j = dec(T("Repeats"), b, len, 0);
    assert_string_equal(
        j, "{\"rInt32\":[1,-2,300],\"rInt64\":[\"5\",\"6\"],\"rDouble\":[0.5,\"NaN\"],"
           "\"rString\":[\"a\",\"\"],\"rBytes\":[\"AA==\"],\"rEnum\":[\"RED\",\"GREEN\","
           "\"NEGATIVE\"],\"rMsg\":[{\"a\":1},{},{\"children\":[{\"b\":\"z\"}]}],"
           "\"rSint64\":[\"-1\"],\"rFixed32\":[1,2],\"rBool\":[true,false],\"rFloat\":[1.5],"
           "\"rUnpacked\":[7,8]}");
    free(j);
    free(b);

    /* Decoding accepts packed and unpacked, even mixed, for any field. */
    const uint8_t mixed[] = {0x08, 0x01, 0x0a, 0x02, 0x02, 0x03, 0x08, 0x04, /* rInt32 */
                             0x62, 0x02, 0x05, 0x06};                       /* rUnpacked */
    j = dec(T("Repeats"), mixed, sizeof mixed, 0);
    assert_string_equal(j, "{\"rInt32\":[1,2,3,4],\"rUnpacked\":[5,6]}");
    free(j);

    enc_fails(T("Repeats"), "{\"rInt32\": 5}", "rInt32: expected an array, got a number");
    enc_fails(T("Repeats"), "{\"rInt32\": [1, \"x\"]}", "rInt32[1]: \"x\" is not an integer");
    enc_fails(T("Repeats"), "{\"rInt32\": [null]}", "rInt32[0]: null is not allowed");
    enc_fails(T("Repeats"), "{\"rMsg\": [{}, {\"children\": [{\"zz\": 1}]}]}",
              "rMsg[1].children[0].zz: unknown field");
    round_trip(T("Repeats"), "{\"rInt32\": []}", "{}", 0);
}

static void test_maps(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = enc(T("Maps"),
                     "{\"strInt\": {\"a\": 1, \"b\": 0}, \"int64Str\": {\"-5\": \"x\"},"
                     " \"boolMsg\": {\"true\": {\"a\": 2}, \"false\": {}},"
                     " \"u32Enum\": {\"7\": \"GREEN\"},"
                     " \"strValue\": {\"n\": null, \"l\": [1, \"s\"]},"
                     " \"s32Bytes\": {\"-1\": \"AQ==\"}}",
                     &len);
    Rpchost__Jsontest__Maps *m = rpchost__jsontest__maps__unpack(NULL, len, b);
    assert_non_null(m);
    assert_int_equal(m->n_str_int, 2);
    assert_string_equal(m->str_int[0]->key, "a");
    assert_int_equal(m->str_int[0]->value, 1);
    assert_int_equal(m->int64_str[0]->key, -5);
    assert_string_equal(m->int64_str[0]->value, "x");
    assert_true(m->bool_msg[0]->key);
    assert_int_equal(m->bool_msg[0]->value->a, 2);
    assert_int_equal(m->u32_enum[0]->key, 7);
    assert_int_equal(m->u32_enum[0]->value, RPCHOST__JSONTEST__COLOR__GREEN);
    assert_int_equal(m->str_value[0]->value->kind_case, GOOGLE__PROTOBUF__VALUE__KIND_NULL_VALUE);
    assert_int_equal(m->str_value[1]->value->kind_case, GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE);
    assert_int_equal(m->s32_bytes[0]->key, -1);
    rpchost__jsontest__maps__free_unpacked(m, NULL);
    char *j = dec(T("Maps"), b, len, 0);
    assert_string_equal(
        j, "{\"strInt\":{\"a\":1,\"b\":0},\"int64Str\":{\"-5\":\"x\"},"
           "\"boolMsg\":{\"true\":{\"a\":2},\"false\":{}},\"u32Enum\":{\"7\":\"GREEN\"},"
           "\"strValue\":{\"n\":null,\"l\":[1,\"s\"]},\"s32Bytes\":{\"-1\":\"AQ==\"}}");
    free(j);
    free(b);

    /* An entry missing its key or value gives the defaults. */
    const uint8_t sparse[] = {0x0a, 0x00, 0x12, 0x02, 0x08, 0x03};
    j = dec(T("Maps"), sparse, sizeof sparse, 0);
    assert_string_equal(j, "{\"strInt\":{\"\":0},\"int64Str\":{\"3\":\"\"}}");
    free(j);

    enc_fails(T("Maps"), "{\"int64Str\": {\"abc\": \"x\"}}",
              "int64Str[\"abc\"]: \"abc\" is not an integer");
    enc_fails(T("Maps"), "{\"boolMsg\": {\"yes\": {}}}", "boolMsg[\"yes\"]: map key must be");
    enc_fails(T("Maps"), "{\"strInt\": {\"a\": null}}", "strInt[\"a\"]: null is not allowed");
    enc_fails(T("Maps"), "{\"strInt\": [1]}", "strInt: expected an object (a map), got an array");
    enc_fails(T("Maps"), "{\"boolMsg\": {\"true\": {\"q\": 1}}}",
              "boolMsg[\"true\"].q: unknown field");
    enc_fails(T("Maps"), "{\"u32Enum\": {\"-1\": \"RED\"}}", "u32Enum[\"-1\"]: \"-1\" is negative");
}

static void test_oneof_and_optional(void **state)
{
    (void)state;
    round_trip(T("Oneofs"), "{\"name\": \"\"}", "{\"name\":\"\"}", 0); /* presence kept */
    round_trip(T("Oneofs"), "{\"number\": 0, \"plain\": \"p\"}",
               "{\"number\":0,\"plain\":\"p\"}", 0);
    round_trip(T("Oneofs"), "{\"inner\": {}}", "{\"inner\":{}}", 0);
    round_trip(T("Oneofs"), "{\"val\": null}", "{\"val\":null}", 0);
    round_trip(T("Oneofs"), "{\"name\": null, \"number\": 3}", "{\"number\":3}", 0);
    enc_fails(T("Oneofs"), "{\"name\": \"a\", \"number\": 1}",
              "number: name and number are both set, but they are members of oneof choice");
    /* On the wire the last member wins. */
    const uint8_t two[] = {0x0a, 0x01, 'a', 0x10, 0x05};
    char *j = dec(T("Oneofs"), two, sizeof two, 0);
    assert_string_equal(j, "{\"number\":5}");
    free(j);
    /* protobuf-c agrees. */
    Rpchost__Jsontest__Oneofs *o = rpchost__jsontest__oneofs__unpack(NULL, sizeof two, two);
    assert_int_equal(o->choice_case, RPCHOST__JSONTEST__ONEOFS__CHOICE_NUMBER);
    rpchost__jsontest__oneofs__free_unpacked(o, NULL);

    /* proto3 optional: explicit presence, so a set 0 is written and shown. */
    round_trip(T("Optionals"), "{\"optInt\": 0, \"optString\": \"\", \"plain\": 0}",
               "{\"optInt\":0,\"optString\":\"\"}", 0);
    round_trip(T("Optionals"), "{}", "{\"plain\":0}", JSON_PB_EMIT_DEFAULTS);
}

static void test_names(void **state)
{
    (void)state;
    round_trip(T("Names"), "{\"snake_case_name\": 1, \"renamed\": 2, \"already_camelCase\": 3}",
               "{\"snakeCaseName\":1,\"renamed\":2,\"alreadyCamelCase\":3}", 0);
    round_trip(T("Names"), "{\"snakeCaseName\": 1, \"custom\": 2, \"alreadyCamelCase\": 3}",
               "{\"snake_case_name\":1,\"custom\":2,\"already_camelCase\":3}",
               JSON_PB_PROTO_NAMES);
    enc_fails(T("Names"), "{\"snakeCaseName\": 1, \"snake_case_name\": 2}",
              "snake_case_name: field snake_case_name is given twice");
    enc_fails(T("Names"), "{\"SnakeCaseName\": 1}", "SnakeCaseName: unknown field");
    enc_fails(T("Names"), "{\"a\": 1, \"a\": 2}", "duplicate object key");
}

/* ---- well-known types ---------------------------------------------------- */

static void test_timestamp(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
        int64_t seconds;
        int32_t nanos;
    } ok[] = {
        {"1970-01-01T00:00:00Z", "1970-01-01T00:00:00Z", 0, 0},
        {"2022-02-20T15:08:07.915156117+00:00", "2022-02-20T15:08:07.915156117Z", 1645369687,
         915156117},
        {"2022-02-20T16:08:07.9+01:00", "2022-02-20T15:08:07.900Z", 1645369687, 900000000},
        {"2022-02-20T10:08:07.123456-05:00", "2022-02-20T15:08:07.123456Z", 1645369687,
         123456000},
        {"2000-02-29t23:59:59z", "2000-02-29T23:59:59Z", 951868799, 0},
        {"1969-12-31T23:59:59.999999999Z", "1969-12-31T23:59:59.999999999Z", -1, 999999999},
        {"0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z", -62135596800LL, 0},
        {"9999-12-31T23:59:59.999999999Z", "9999-12-31T23:59:59.999999999Z", 253402300799LL,
         999999999},
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        char json[128], want[128];
        snprintf(json, sizeof json, "{\"ts\": \"%s\"}", ok[i].in);
        snprintf(want, sizeof want, "{\"ts\":\"%s\"}", ok[i].out);
        size_t len;
        uint8_t *b = enc(T("Wkt"), json, &len);
        Rpchost__Jsontest__Wkt *m = rpchost__jsontest__wkt__unpack(NULL, len, b);
        assert_non_null(m->ts);
        assert_true(m->ts->seconds == ok[i].seconds);
        assert_int_equal(m->ts->nanos, ok[i].nanos);
        rpchost__jsontest__wkt__free_unpacked(m, NULL);
        char *j = dec(T("Wkt"), b, len, 0);
        assert_string_equal(j, want);
        free(j);
        free(b);
    }
    static const char *bad[] = {
        "yesterday", "2022-02-30T00:00:00Z", "2022-02-20 15:08:07Z", "2022-02-20T15:08:07",
        "2022-02-20T24:00:00Z", "2022-02-20T15:08:07.Z", "2022-02-20T15:08:07.1234567890Z",
        "2022-02-20T15:08:07+0100", "2022-13-01T00:00:00Z", "0000-12-31T23:59:59Z",
        "2021-02-29T00:00:00Z", "2022-02-20T15:08:07Zjunk", "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char json[128];
        snprintf(json, sizeof json, "{\"ts\": \"%s\"}", bad[i]);
        enc_fails(T("Wkt"), json, "ts: \"");
        enc_fails(T("Wkt"), json, "is not an RFC 3339 timestamp");
    }
    enc_fails(T("Wkt"), "{\"ts\": 1645369687}", "ts: expected an RFC 3339 timestamp string");
    enc_fails(T("Wkt"), "{\"rTs\": [\"2022-02-20T15:08:07Z\", \"x\"]}", "rTs[1]: \"x\" is not");
    /* Out of range on the wire. */
    const uint8_t far[] = {0x0a, 0x07, 0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20}; /* 2^40 s */
    char *out;
    json_pb_error err;
    assert_int_equal(json_pb_decode(pool, T("Wkt"), far, sizeof far, 0, &out, &err), -EINVAL);
    assert_non_null(strstr(err.text, "ts: timestamp out of range"));
}

static void test_duration(void **state)
{
    (void)state;
    round_trip(T("Wkt"), "{\"dur\": \"1.5s\"}", "{\"dur\":\"1.500s\"}", 0);
    round_trip(T("Wkt"), "{\"dur\": \"-0.5s\"}", "{\"dur\":\"-0.500s\"}", 0);
    round_trip(T("Wkt"), "{\"dur\": \"3s\"}", "{\"dur\":\"3s\"}", 0);
    round_trip(T("Wkt"), "{\"dur\": \"0s\"}", "{\"dur\":\"0s\"}", 0);
    round_trip(T("Wkt"), "{\"dur\": \"-1.000000001s\"}", "{\"dur\":\"-1.000000001s\"}", 0);
    round_trip(T("Wkt"), "{\"dur\": \"315576000000.000001s\"}",
               "{\"dur\":\"315576000000.000001s\"}", 0);
    size_t len;
    uint8_t *b = enc(T("Wkt"), "{\"dur\": \"-1.25s\"}", &len);
    Rpchost__Jsontest__Wkt *m = rpchost__jsontest__wkt__unpack(NULL, len, b);
    assert_int_equal(m->dur->seconds, -1);
    assert_int_equal(m->dur->nanos, -250000000);
    rpchost__jsontest__wkt__free_unpacked(m, NULL);
    free(b);
    static const char *bad[] = {"1.5", "s", "1.5 s", "+1s", "1e3s", "315576000001s",
                                "1.0000000001s", "--1s", "1.s", ""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char json[64];
        snprintf(json, sizeof json, "{\"dur\": \"%s\"}", bad[i]);
        enc_fails(T("Wkt"), json, "dur: \"");
        enc_fails(T("Wkt"), json, "is not a duration");
    }
    enc_fails(T("Wkt"), "{\"dur\": 1.5}", "dur: expected a duration string");
    /* Seconds and nanos of different signs on the wire: refused. */
    const uint8_t mixed[] = {0x12, 0x0d, 0x08, 0x01, 0x10, 0xff, 0xff, 0xff, 0xff,
                             0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    char *out;
    json_pb_error err;
    assert_int_equal(json_pb_decode(pool, T("Wkt"), mixed, sizeof mixed, 0, &out, &err),
                     -EINVAL);
    assert_non_null(strstr(err.text, "dur: duration out of range"));
}

static void test_wrappers(void **state)
{
    (void)state;
    const char *json =
        "{\"wDouble\": 1.25, \"wFloat\": \"NaN\", \"wInt64\": \"-3\", \"wUint64\": 4,"
        " \"wInt32\": -5, \"wUint32\": 6, \"wBool\": false, \"wString\": \"\","
        " \"wBytes\": \"AQI=\"}";
    size_t len;
    uint8_t *b = enc(T("Wkt"), json, &len);
    Rpchost__Jsontest__Wkt *m = rpchost__jsontest__wkt__unpack(NULL, len, b);
    assert_true(m->w_double->value == 1.25);
    assert_true(isnan(m->w_float->value));
    assert_true(m->w_int64->value == -3);
    assert_int_equal(m->w_uint64->value, 4);
    assert_int_equal(m->w_int32->value, -5);
    assert_int_equal(m->w_uint32->value, 6);
    assert_non_null(m->w_bool); /* present, though false */
    assert_false(m->w_bool->value);
    assert_string_equal(m->w_string->value, "");
    assert_int_equal(m->w_bytes->value.len, 2);
    rpchost__jsontest__wkt__free_unpacked(m, NULL);
    char *j = dec(T("Wkt"), b, len, 0);
    assert_string_equal(j, "{\"wDouble\":1.25,\"wFloat\":\"NaN\",\"wInt64\":\"-3\","
                           "\"wUint64\":\"4\",\"wInt32\":-5,\"wUint32\":6,\"wBool\":false,"
                           "\"wString\":\"\",\"wBytes\":\"AQI=\"}");
    free(j);
    free(b);
    round_trip(T("Wkt"), "{\"wInt32\": null}", "{}", 0);
    enc_fails(T("Wkt"), "{\"wInt32\": {\"value\": 1}}", "wInt32: expected an integer");
    enc_fails(T("Wkt"), "{\"wBool\": \"no\"}", "wBool: expected true or false");
}

static void test_struct_value_list(void **state)
{
    (void)state;
    const char *json = "{\"st\": {\"a\": 1, \"b\": [true, null, \"x\", {\"c\": -0.5}],"
                       " \"d\": {}}, \"val\": 0, \"list\": [[], {}, 2.5]}";
    size_t len;
    uint8_t *b = enc(T("Wkt"), json, &len);
    Rpchost__Jsontest__Wkt *m = rpchost__jsontest__wkt__unpack(NULL, len, b);
    assert_int_equal(m->st->n_fields, 3);
    assert_string_equal(m->st->fields[1]->key, "b");
    Google__Protobuf__ListValue *l = m->st->fields[1]->value->list_value;
    assert_int_equal(l->n_values, 4);
    assert_int_equal(l->values[1]->kind_case, GOOGLE__PROTOBUF__VALUE__KIND_NULL_VALUE);
    /* Value's oneof is written even at the default: 0 is a number. */
    assert_int_equal(m->val->kind_case, GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE);
    assert_int_equal(m->list->n_values, 3);
    rpchost__jsontest__wkt__free_unpacked(m, NULL);
    char *j = dec(T("Wkt"), b, len, 0);
    assert_string_equal(j, "{\"st\":{\"a\":1,\"b\":[true,null,\"x\",{\"c\":-0.5}],\"d\":{}},"
                           "\"val\":0,\"list\":[[],{},2.5]}");
    free(j);
    free(b);
    round_trip(T("Wkt"), "{\"val\": null}", "{\"val\":null}", 0);
    round_trip(T("Wkt"), "{\"val\": \"\"}", "{\"val\":\"\"}", 0);
    round_trip(T("Wkt"), "{\"val\": false}", "{\"val\":false}", 0);
    round_trip(T("Wkt"), "{\"val\": {\"k\": [1, [2, [3]]]}}", "{\"val\":{\"k\":[1,[2,[3]]]}}", 0);
    round_trip(T("Wkt"), "{\"nullV\": null}", "{}", 0);
    round_trip(T("Wkt"), "{\"nullV\": \"NULL_VALUE\"}", "{}", 0);
    round_trip(T("Wkt"), "{}", "{\"rTs\":[],\"nullV\":null}", JSON_PB_EMIT_DEFAULTS);
    enc_fails(T("Wkt"), "{\"st\": [1]}", "st: expected an object (google.protobuf.Struct)");
    enc_fails(T("Wkt"), "{\"list\": {}}", "list: expected an array (google.protobuf.ListValue)");
    /* Nesting deeper than the limit: an error, not a stack overflow. */
    char deep[1024];
    size_t o = 0;
    o += (size_t)snprintf(deep + o, sizeof deep - o, "{\"val\": ");
    for (int i = 0; i < 200; i++)
        deep[o++] = '[';
    for (int i = 0; i < 200; i++)
        deep[o++] = ']';
    deep[o++] = '}';
    deep[o] = '\0';
    enc_fails(T("Wkt"), deep, "nested deeper than 64 levels");
}

static void test_any_empty_mask(void **state)
{
    (void)state;
    round_trip(T("Wkt"),
               "{\"any\": {\"@type\": \"type.googleapis.com/rpchost.jsontest.Inner\","
               " \"a\": 5, \"level\": \"HIGH\"}}",
               "{\"any\":{\"@type\":\"type.googleapis.com/rpchost.jsontest.Inner\",\"a\":5,"
               "\"level\":\"HIGH\"}}",
               0);
    round_trip(T("Wkt"),
               "{\"any\": {\"@type\": \"type.googleapis.com/google.protobuf.Duration\","
               " \"value\": \"2s\"}}",
               "{\"any\":{\"@type\":\"type.googleapis.com/google.protobuf.Duration\","
               "\"value\":\"2s\"}}",
               0);
    round_trip(T("Wkt"), "{\"any\": {}}", "{\"any\":{}}", 0);
    size_t len;
    uint8_t *b = enc(T("Wkt"), "{\"any\": {\"@type\": \"x/StartRequest\", \"carId\": 3}}",
                     &len);
    Rpchost__Jsontest__Wkt *m = rpchost__jsontest__wkt__unpack(NULL, len, b);
    assert_string_equal(m->any->type_url, "x/StartRequest");
    StartRequest *r = start_request__unpack(NULL, m->any->value.len, m->any->value.data);
    assert_int_equal(r->car_id, 3);
    start_request__free_unpacked(r, NULL);
    rpchost__jsontest__wkt__free_unpacked(m, NULL);
    free(b);
    enc_fails(T("Wkt"), "{\"any\": {\"a\": 1}}", "any: \"@type\" is missing");
    enc_fails(T("Wkt"), "{\"any\": {\"@type\": \"t/no.Such\"}}",
              "any: Any type \"t/no.Such\" is not in the descriptor set");
    enc_fails(T("Wkt"), "{\"any\": {\"@type\": \"t/rpchost.jsontest.Inner\", \"q\": 1}}",
              "any.q: unknown field");
    enc_fails(T("Wkt"), "{\"any\": {\"@type\": \"t/google.protobuf.Duration\"}}",
              "takes exactly \"@type\" and \"value\"");

    round_trip(T("Wkt"), "{\"empty\": {}}", "{\"empty\":{}}", 0);
    enc_fails(T("Wkt"), "{\"empty\": {\"x\": 1}}", "empty.x: unknown field");

    b = enc(T("Wkt"), "{\"mask\": \"fInt32,fInner.someField,a\"}", &len);
    m = rpchost__jsontest__wkt__unpack(NULL, len, b);
    assert_int_equal(m->mask->n_paths, 3);
    assert_string_equal(m->mask->paths[0], "f_int32");
    assert_string_equal(m->mask->paths[1], "f_inner.some_field");
    rpchost__jsontest__wkt__free_unpacked(m, NULL);
    char *j = dec(T("Wkt"), b, len, 0);
    assert_string_equal(j, "{\"mask\":\"fInt32,fInner.someField,a\"}");
    free(j);
    free(b);
    round_trip(T("Wkt"), "{\"mask\": \"\"}", "{\"mask\":\"\"}", 0);
}

/* A well-known type as the request itself. */
static void test_wkt_top_level(void **state)
{
    (void)state;
    round_trip("google.protobuf.Timestamp", "\"2022-02-20T15:08:07Z\"",
               "\"2022-02-20T15:08:07Z\"", 0);
    round_trip("google.protobuf.Empty", "{}", "{}", 0);
    round_trip("google.protobuf.Struct", "{\"a\": [1]}", "{\"a\":[1]}", 0);
    round_trip("google.protobuf.Int64Value", "\"5\"", "\"5\"", 0);
}

/* ---- errors ---------------------------------------------------------------- */

static void test_bad_json(void **state)
{
    (void)state;
    enc_fails(T("Scalars"), "{\"fInt32\": ", "invalid JSON at line 1");
    enc_fails(T("Scalars"), "", "invalid JSON");
    enc_fails(T("Scalars"), "{} {}", "invalid JSON");
    enc_fails(T("Scalars"), "[1]", "expected an object (message rpchost.jsontest.Scalars)");
    enc_fails(T("Scalars"), "\"x\"", "expected an object");
    enc_fails(T("Scalars"), "{\"fString\": \"\\ud800\"}", "invalid JSON");
    enc_fails(T("Scalars"), "{\"fUint64\": 18446744073709551615}",
              "give 64-bit integers as strings");
    /* A NUL is a valid character of a proto string. */
    round_trip(T("Scalars"), "{\"fString\": \"a\\u0000b\"}", "{\"fString\":\"a\\u0000b\"}", 0);
    /* Unknown message type: -ENOENT. */
    uint8_t *out;
    size_t len;
    json_pb_error err;
    assert_int_equal(json_pb_encode(pool, "no.Such", "{}", 2, &out, &len, &err), -ENOENT);
    assert_non_null(strstr(err.text, "no.Such"));
    char *s;
    assert_int_equal(json_pb_decode(pool, "no.Such", NULL, 0, 0, &s, &err), -ENOENT);
    /* A NULL error pointer is allowed. */
    assert_int_equal(json_pb_encode(pool, T("Scalars"), "[", 1, &out, &len, NULL), -EINVAL);
    /* Not NUL-terminated input: only len bytes are read. */
    const char unterminated[] = {'{', '}', 'x'};
    assert_int_equal(json_pb_encode(pool, T("Scalars"), unterminated, 2, &out, &len, &err), 0);
    assert_int_equal(len, 0);
    free(out);
}

static void test_bad_wire(void **state)
{
    (void)state;
    static const struct {
        const char *type;
        const char *bytes;
        size_t len;
        const char *want;
    } bad[] = {
        {T("Scalars"), "\x18", 1, "malformed"},                         /* no value */
        {T("Scalars"), "\x18\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 11, "malformed"},
        {T("Scalars"), "\x72\x05" "ab", 4, "malformed"},                /* short string */
        {T("Scalars"), "\x72\x02\xc3\x28", 4, "fString: string is not valid UTF-8"},
        {T("Scalars"), "\x8a\x01\x03\x12\x05x", 6, "fInner.b: malformed"}, /* nested short */
        {T("Scalars"), "\x00\x01", 2, "malformed"},                     /* field 0 */
        {T("Scalars"), "\x0b", 1, "malformed"},                         /* group */
        {T("Repeats"), "\x0a\x03\x01\x02", 4, "malformed"},
        {T("Repeats"), "\x4a\x03\x01\x02\x03", 5, "rFixed32: malformed"}, /* packed 4-byte */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char *out = NULL;
        json_pb_error err;
        int rc = json_pb_decode(pool, bad[i].type, (const uint8_t *)bad[i].bytes, bad[i].len, 0,
                                &out, &err);
        if (rc != -EINVAL || !strstr(err.text, bad[i].want))
            fail_msg("case %zu: rc %d \"%s\", want \"%s\"", i, rc, err.text, bad[i].want);
        assert_null(out);
    }
    /* Unknown fields and wrong wire types are skipped, as protobuf does. */
    const uint8_t unknown[] = {0xf8, 0x06, 0x01, 0x1d, 0x01, 0x02, 0x03, 0x04, 0x18, 0x09};
    char *j = dec(T("Scalars"), unknown, sizeof unknown, 0);
    assert_string_equal(j, "{\"fInt32\":9}");
    free(j);
    /* A singular message given twice merges, as protobuf does. */
    const uint8_t twice[] = {0x8a, 0x01, 0x02, 0x08, 0x01, 0x8a, 0x01, 0x03, 0x12, 0x01, 'z'};
    j = dec(T("Scalars"), twice, sizeof twice, 0);
    assert_string_equal(j, "{\"fInner\":{\"a\":1,\"b\":\"z\"}}");
    free(j);
}

/* Every truncation and many corruptions of a rich message decode to JSON
 * or to an error: never a crash, a leak or a hang (ASan checks). */
static void test_wire_fuzz(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = enc(T("Wkt"),
                     "{\"ts\": \"2022-02-20T15:08:07Z\", \"dur\": \"1s\", \"wString\": \"s\","
                     " \"st\": {\"a\": [1, {\"b\": null}]}, \"any\": {\"@type\":"
                     " \"t/rpchost.jsontest.Maps\", \"strInt\": {\"k\": 1},"
                     " \"boolMsg\": {\"true\": {\"children\": [{\"a\": 1}]}}},"
                     " \"mask\": \"aB\", \"rTs\": [\"1970-01-01T00:00:00Z\"]}",
                     &len);
    uint8_t *m = malloc(len);
    uint32_t seed = 12345;
    int ok = 0, failed = 0;
    for (size_t cut = 0; cut <= len; cut++) {
        char *out = NULL;
        json_pb_error err;
        int rc = json_pb_decode(pool, T("Wkt"), b, cut, 0, &out, &err);
        assert_true(rc == 0 || rc == -EINVAL);
        rc == 0 ? ok++ : failed++;
        free(out);
    }
    for (int round = 0; round < 3000; round++) {
        memcpy(m, b, len);
        for (int k = 0; k < 3; k++) {
            seed = seed * 1103515245u + 12345u;
            m[(seed >> 8) % len] = (uint8_t)(seed >> 20);
        }
        char *out = NULL;
        json_pb_error err;
        int rc = json_pb_decode(pool, T("Wkt"), m, len, 0, &out, &err);
        if (rc != 0 && rc != -EINVAL)
            fail_msg("round %d: rc %d %s", round, rc, err.text);
        if (rc)
            assert_true(err.text[0] != '\0');
        rc == 0 ? ok++ : failed++;
        free(out);
    }
    assert_true(ok > 0 && failed > 0);
    free(m);
    free(b);
}

/* ---- printing ---------------------------------------------------------- */

static void test_print(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = enc(T("Scalars"), "{\"fInt32\": 1, \"fInner\": {\"children\": [{}, {\"a\": 2}]}}",
                     &len);
    char *out;
    json_pb_error err;
    assert_int_equal(json_pb_decode(pool, T("Scalars"), b, len, 0, &out, &err), 0);
    assert_string_equal(out, "{\n"
                             "  \"fInt32\": 1,\n"
                             "  \"fInner\": {\n"
                             "    \"children\": [\n"
                             "      {},\n"
                             "      {\n"
                             "        \"a\": 2\n"
                             "      }\n"
                             "    ]\n"
                             "  }\n"
                             "}");
    free(out);
    free(b);
    json_t *v = json_pack("{s:f,s:f,s:f,s:s}", "x", 0.1 + 0.2, "y", 1e-7, "z", -0.0, "s",
                          "tab\there\x7f");
    out = json_pb_dump(v, JSON_PB_COMPACT);
    assert_string_equal(out,
                        "{\"x\":0.30000000000000004,\"y\":1e-07,\"z\":-0,\"s\":\"tab\\there\\u007f\"}");
    free(out);
    json_decref(v);
    assert_null(json_pb_dump(NULL, 0));
}

/* The fast shortest-text search (starting at 15 digits) gives what an
 * exhaustive one (from 1 digit) gives, for doubles of every magnitude;
 * and floats print as their own shortest text. */
static void test_shortest_numbers(void **state)
{
    (void)state;
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        double d;
        /* Any bits; a moderate exponent; or a subnormal. */
        uint64_t bits = i % 3 == 0   ? x
                        : i % 3 == 1 ? (x & 0x800fffffffffffffull) | (uint64_t)(1023 + i % 40 - 20) << 52
                                     : x & 0x800fffffffffffffull;
        memcpy(&d, &bits, sizeof d);
        if (!isfinite(d))
            continue;
        char fast[40], slow[40];
        jp_format_double(d, fast, sizeof fast);
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(slow, sizeof slow, "%.*g", prec, d);
            if (strtod(slow, NULL) == d)
                break;
        }
        /* The same decimal (the notation may differ: 1e14 reads
         * "100000000000000" at %.15g), and it reads back. */
        if (strtod(fast, NULL) != strtod(slow, NULL) || strtod(fast, NULL) != d)
            fail_msg("%a: fast %s, exhaustive %s", d, fast, slow);
        float f = (float)d;
        if (!isfinite(f))
            continue;
        double g = jp_float_to_double(f);
        assert_true((float)g == f);
        for (int prec = 1; prec <= 9; prec++) {
            snprintf(slow, sizeof slow, "%.*g", prec, (double)f);
            if (strtof(slow, NULL) == f)
                break;
        }
        jp_format_double(g, fast, sizeof fast);
        if (strtod(fast, NULL) != strtod(slow, NULL) || strtof(fast, NULL) != f)
            fail_msg("float %a: printed %s, shortest %s", (double)f, fast, slow);
    }
    char buf[40];
    jp_format_double(0.1, buf, sizeof buf);
    assert_string_equal(buf, "0.1");
    jp_format_double(5e-324, buf, sizeof buf);
    assert_string_equal(buf, "5e-324");
    jp_format_double(1e23, buf, sizeof buf);
    assert_string_equal(buf, "1e+23");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_origin_request),   cmocka_unit_test(test_scalars_encode),
        cmocka_unit_test(test_scalars_decode),   cmocka_unit_test(test_number_forms),
        cmocka_unit_test(test_defaults_and_null), cmocka_unit_test(test_enums),
        cmocka_unit_test(test_bytes),            cmocka_unit_test(test_repeated),
        cmocka_unit_test(test_maps),             cmocka_unit_test(test_oneof_and_optional),
        cmocka_unit_test(test_names),            cmocka_unit_test(test_timestamp),
        cmocka_unit_test(test_duration),         cmocka_unit_test(test_wrappers),
        cmocka_unit_test(test_struct_value_list), cmocka_unit_test(test_any_empty_mask),
        cmocka_unit_test(test_wkt_top_level),    cmocka_unit_test(test_bad_json),
        cmocka_unit_test(test_bad_wire),         cmocka_unit_test(test_wire_fuzz),
        cmocka_unit_test(test_print),            cmocka_unit_test(test_shortest_numbers),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
