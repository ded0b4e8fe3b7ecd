/* Access log lines: fields, escaping, limits; JSON lines parse (jansson). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "al_logline.h"

static al_logrec rec(void)
{
    al_logrec r = {0};
    r.time_sec = 1714566896; /* 2024-05-01T12:34:56Z */
    r.time_usec = 1234;
    r.method = "/Rides/Start";
    r.peer = "ipv4:127.0.0.1:40000";
    r.principal = "alice";
    r.status = 0;
    r.duration_ns = 412345;
    r.bytes_in = 57;
    r.bytes_out = 39;
    r.bytes_in_uncompressed = 57;
    r.bytes_out_uncompressed = 39;
    r.messages_in = 1;
    r.messages_out = 1;
    return r;
}

static char *fmt(al_log_format f, const al_logrec *r)
{
    static char buf[AL_LINE_MAX];
    size_t n = al_logline_format(buf, sizeof buf, f, r, NULL);
    assert_true(n > 0 && n <= AL_LINE_MAX);
    assert_int_equal(buf[n - 1], '\n');
    assert_null(memchr(buf, '\n', n - 1));
    buf[n - 1] = '\0';
    return buf;
}

static void test_text(void **st)
{
    (void)st;
    al_logrec r = rec();
    assert_string_equal(fmt(AL_FMT_TEXT, &r),
                        "2024-05-01T12:34:56.001234Z /Rides/Start took 0.000413sec "
                        "status=OK peer=ipv4:127.0.0.1:40000 principal=alice in=57 out=39");
    r.principal = NULL;
    r.status = 16;
    r.message = "missing bearer token";
    r.duration_ns = 2500000000ull;
    assert_string_equal(fmt(AL_FMT_TEXT, &r),
                        "2024-05-01T12:34:56.001234Z /Rides/Start took 2.500000sec "
                        "status=UNAUTHENTICATED peer=ipv4:127.0.0.1:40000 principal=- "
                        "in=57 out=39 message=\"missing bearer token\"");
    /* compressed: both sizes */
    r.message = NULL;
    r.bytes_out_uncompressed = 4100;
    assert_string_equal(fmt(AL_FMT_TEXT, &r),
                        "2024-05-01T12:34:56.001234Z /Rides/Start took 2.500000sec "
                        "status=UNAUTHENTICATED peer=ipv4:127.0.0.1:40000 principal=- "
                        "in=57 out=39 in_uncompressed=57 out_uncompressed=4100");
}

static void test_duration_never_zero(void **st)
{
    (void)st;
    al_logrec r = rec();
    r.duration_ns = 1;
    assert_non_null(strstr(fmt(AL_FMT_TEXT, &r), " took 0.000001sec "));
    r.duration_ns = 0;
    assert_non_null(strstr(fmt(AL_FMT_TEXT, &r), " took 0.000000sec "));
    r.duration_ns = 1000;
    assert_non_null(strstr(fmt(AL_FMT_TEXT, &r), " took 0.000001sec "));
}

static void test_status_names(void **st)
{
    (void)st;
    assert_string_equal(al_status_name(0), "OK");
    assert_string_equal(al_status_name(1), "CANCELLED");
    assert_string_equal(al_status_name(4), "DEADLINE_EXCEEDED");
    assert_string_equal(al_status_name(7), "PERMISSION_DENIED");
    assert_string_equal(al_status_name(12), "UNIMPLEMENTED");
    assert_string_equal(al_status_name(16), "UNAUTHENTICATED");
    assert_string_equal(al_status_name(17), "UNKNOWN_CODE");
    assert_string_equal(al_status_name(-1), "UNKNOWN_CODE");
    assert_int_equal(al_log_format_parse("text"), AL_FMT_TEXT);
    assert_int_equal(al_log_format_parse("json"), AL_FMT_JSON);
    assert_int_equal(al_log_format_parse("JSON"), -1);
}

static void test_json(void **st)
{
    (void)st;
    al_logrec r = rec();
    r.status = 7;
    r.message = "principal alice may not call /Rides/Track";
    json_error_t e;
    json_t *j = json_loads(fmt(AL_FMT_JSON, &r), 0, &e);
    if (!j)
        fail_msg("not JSON: %s", e.text);
    assert_string_equal(json_string_value(json_object_get(j, "time")), "2024-05-01T12:34:56.001234Z");
    assert_string_equal(json_string_value(json_object_get(j, "method")), "/Rides/Start");
    assert_string_equal(json_string_value(json_object_get(j, "status")), "PERMISSION_DENIED");
    assert_int_equal(json_integer_value(json_object_get(j, "code")), 7);
    assert_true(json_real_value(json_object_get(j, "duration")) > 0.000412);
    assert_int_equal(json_integer_value(json_object_get(j, "duration_ns")), 412345);
    assert_string_equal(json_string_value(json_object_get(j, "peer")), "ipv4:127.0.0.1:40000");
    assert_string_equal(json_string_value(json_object_get(j, "principal")), "alice");
    assert_int_equal(json_integer_value(json_object_get(j, "bytes_in")), 57);
    assert_int_equal(json_integer_value(json_object_get(j, "bytes_in_uncompressed")), 57);
    assert_int_equal(json_integer_value(json_object_get(j, "bytes_out_uncompressed")), 39);
    assert_int_equal(json_integer_value(json_object_get(j, "bytes_out")), 39);
    assert_int_equal(json_integer_value(json_object_get(j, "messages_in")), 1);
    assert_int_equal(json_integer_value(json_object_get(j, "messages_out")), 1);
    assert_string_equal(json_string_value(json_object_get(j, "message")), r.message);
    json_decref(j);

    r.principal = NULL;
    r.peer = NULL;
    r.message = NULL;
    j = json_loads(fmt(AL_FMT_JSON, &r), 0, &e);
    assert_non_null(j);
    assert_true(json_is_null(json_object_get(j, "principal")));
    assert_true(json_is_null(json_object_get(j, "peer")));
    assert_string_equal(json_string_value(json_object_get(j, "message")), "");
    json_decref(j);
}

static void test_hostile_fields(void **st)
{
    (void)st;
    al_logrec r = rec();
    r.method = "/a b/\"c\\d\"\n\x01\xff";
    r.message = "quote \" back \\ newline \n tab \t";
    /* text: nothing breaks the line or its blank-separated fields */
    char *t = fmt(AL_FMT_TEXT, &r);
    assert_non_null(strstr(t, " /a\\x20b/\\x22c\\x5cd\\x22\\x0a\\x01\\xff took "));
    assert_non_null(strstr(t, "message=\"quote \\x22 back \\x5c newline \\x0a tab \\x09\""));
    /* json: valid, and the printable parts come back */
    json_error_t e;
    json_t *j = json_loads(fmt(AL_FMT_JSON, &r), 0, &e);
    if (!j)
        fail_msg("not JSON: %s", e.text);
    const char *m = json_string_value(json_object_get(j, "method"));
    assert_memory_equal(m, "/a b/\"c\\d\"\n\x01", 12);
    assert_string_equal(json_string_value(json_object_get(j, "message")), r.message);
    json_decref(j);
}

static void test_long_fields(void **st)
{
    (void)st;
    char *big = malloc(20000);
    memset(big, '\x01', 19999); /* escapes to 6 bytes each in JSON */
    big[19999] = '\0';
    al_logrec r = rec();
    r.method = big;
    r.peer = big;
    r.principal = big;
    r.message = big;
    for (int f = 0; f < 2; f++) {
        char buf[AL_LINE_MAX];
        size_t n = al_logline_format(buf, sizeof buf, (al_log_format)f, &r, NULL);
        assert_true(n <= AL_LINE_MAX);
        assert_int_equal(buf[n - 1], '\n');
        buf[n - 1] = '\0';
        assert_non_null(strstr(buf, "..."));
        if (f == AL_FMT_JSON) {
            json_error_t e;
            json_t *j = json_loads(buf, 0, &e);
            if (!j)
                fail_msg("cut JSON line does not parse: %s", e.text);
            assert_int_equal(json_integer_value(json_object_get(j, "bytes_out")), 39);
            json_decref(j);
        } else {
            assert_non_null(strstr(buf, " out=39 message=\""));
        }
    }
    free(big);
}

/* Escapes that carry a field past its limit, then plain bytes: the field
 * is still cut there (found by fuzzing: the room left underflowed). */
static void test_escape_across_limit(void **st)
{
    (void)st;
    /* plain bytes up to just under the limit, one escape, then a long
     * plain run: the escape ends past the limit */
    char *mixed = malloc(8001);
    for (int shift = 0; shift < 8; shift++) {
        memset(mixed, 'a', 8000);
        mixed[8000] = '\0';
        mixed[AL_FIELD_MAX - 8 + shift] = '\x01';
        al_logrec r = rec();
        r.method = mixed;
        r.peer = mixed + 1;
        r.principal = mixed + 2;
        r.message = mixed;
        for (int f = 0; f < 2; f++) {
            char buf[AL_LINE_MAX];
            size_t n = al_logline_format(buf, sizeof buf, (al_log_format)f, &r, NULL);
            assert_true(n <= AL_LINE_MAX);
            buf[n - 1] = '\0';
            if (f == AL_FMT_JSON) {
                json_error_t e;
                json_t *j = json_loads(buf, 0, &e);
                if (!j)
                    fail_msg("shift %d: JSON line does not parse: %s", shift, e.text);
                assert_int_equal(json_integer_value(json_object_get(j, "messages_out")), 1);
                json_decref(j);
            } else {
                assert_non_null(strstr(buf, " in=57 out=39 message=\""));
                assert_int_equal(buf[n - 2], '"');
            }
        }
    }
    free(mixed);
}

static void test_time_cache(void **st)
{
    (void)st;
    al_timecache tc = {.sec = INT64_MIN};
    al_logrec r = rec();
    char buf[AL_LINE_MAX];
    al_logline_format(buf, sizeof buf, AL_FMT_TEXT, &r, &tc);
    assert_memory_equal(buf, "2024-05-01T12:34:56.001234Z", 27);
    r.time_sec += 86400 + 3600 + 61;
    r.time_usec = 999999;
    al_logline_format(buf, sizeof buf, AL_FMT_TEXT, &r, &tc);
    assert_memory_equal(buf, "2024-05-02T13:35:57.999999Z", 27);
    r.time_sec = 0;
    r.time_usec = 0;
    al_logline_format(buf, sizeof buf, AL_FMT_TEXT, &r, &tc);
    assert_memory_equal(buf, "1970-01-01T00:00:00.000000Z", 27);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text),
        cmocka_unit_test(test_duration_never_zero),
        cmocka_unit_test(test_status_names),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_hostile_fields),
        cmocka_unit_test(test_long_fields),
        cmocka_unit_test(test_escape_across_limit),
        cmocka_unit_test(test_time_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
