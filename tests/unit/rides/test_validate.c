/* Validation of Start requests and Track points: the messages clients see. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "validate.h"

/* The original client's request: car 7, driver Bond, passengers M and Q,
 * POOL, the original location and time. */
typedef struct fixture {
    StartRequest req;
    Location loc;
    Google__Protobuf__Timestamp ts;
    char *passengers[2];
} fixture;

static void original(fixture *f)
{
    start_request__init(&f->req);
    location__init(&f->loc);
    google__protobuf__timestamp__init(&f->ts);
    f->loc.lat = 51.4871871;
    f->loc.lng = -0.1266743;
    f->ts.seconds = 1645369687;
    f->ts.nanos = 915156117;
    f->passengers[0] = "M";
    f->passengers[1] = "Q";
    f->req.car_id = 7;
    f->req.driver_id = "Bond";
    f->req.n_passenger_ids = 2;
    f->req.passenger_ids = f->passengers;
    f->req.type = RIDE_TYPE__POOL;
    f->req.location = &f->loc;
    f->req.time = &f->ts;
}

/* Asserts that validation fails with exactly `want`. */
static void expect_start(const StartRequest *req, const char *want)
{
    char msg[VALIDATE_MSG_MAX] = "";
    int rc = validate_start(req, msg, sizeof msg);
    if (want == NULL) {
        assert_int_equal(rc, 0);
    } else {
        assert_int_equal(rc, -22);
        assert_string_equal(msg, want);
    }
}

static void test_original_is_valid(void **state)
{
    (void)state;
    fixture f;
    original(&f);
    expect_start(&f.req, NULL);
}

static void test_empty_driver(void **state)
{
    (void)state;
    fixture f;
    original(&f);
    f.req.driver_id = "";
    expect_start(&f.req, "driver_id is empty");
    /* checked first, as in the original: other faults do not mask it */
    f.req.type = 9;
    f.loc.lat = 1000;
    expect_start(&f.req, "driver_id is empty");
}

static void test_defaults_need_a_driver(void **state)
{
    (void)state;
    StartRequest req = START_REQUEST__INIT; /* what an empty request decodes to */
    expect_start(&req, "driver_id is empty");
    req.driver_id = "Bond";
    expect_start(&req, NULL); /* no location, no time: allowed, stored as NULL */
}

static void test_passengers(void **state)
{
    (void)state;
    fixture f;
    original(&f);
    f.passengers[1] = "";
    expect_start(&f.req, "passenger_ids[1] is empty");
    f.passengers[1] = "Q";
    f.req.n_passenger_ids = 0;
    expect_start(&f.req, NULL);
}

static void test_utf8_strings(void **state)
{
    (void)state;
    fixture f;
    original(&f);
    f.req.driver_id = "Bj\xc3\xb6rn \xe2\x82\xac \xf0\x9f\x9a\x95"; /* Björn € taxi */
    expect_start(&f.req, NULL);
    f.req.driver_id = "bad\xc3";
    expect_start(&f.req, "driver_id is not valid UTF-8");
    f.req.driver_id = "Bond";
    f.passengers[0] = "\xed\xa0\x80"; /* a surrogate */
    expect_start(&f.req, "passenger_ids[0] is not valid UTF-8");
}

static void test_utf8_validator(void **state)
{
    (void)state;
    assert_true(validate_utf8("", 0));
    assert_true(validate_utf8("plain", 5));
    assert_true(validate_utf8("\xf4\x8f\xbf\xbf", 4));  /* U+10FFFF */
    assert_false(validate_utf8("\xf4\x90\x80\x80", 4)); /* above U+10FFFF */
    assert_false(validate_utf8("\xc0\xaf", 2));         /* overlong '/' */
    assert_false(validate_utf8("\xe0\x80\xaf", 3));     /* overlong */
    assert_false(validate_utf8("\x80", 1));             /* lone continuation */
    assert_false(validate_utf8("\xe2\x82", 2));         /* truncated */
    assert_false(validate_utf8("\xff", 1));
}

static void test_type(void **state)
{
    (void)state;
    fixture f;
    original(&f);
    f.req.type = RIDE_TYPE__REGULAR;
    expect_start(&f.req, NULL);
    f.req.type = 7;
    expect_start(&f.req, "type is 7, not a RideType (REGULAR = 0, POOL = 1)");
    f.req.type = -1;
    expect_start(&f.req, "type is -1, not a RideType (REGULAR = 0, POOL = 1)");
}

static void test_location(void **state)
{
    (void)state;
    fixture f;
    original(&f);
    f.loc.lat = 90;
    f.loc.lng = -180;
    expect_start(&f.req, NULL);
    f.loc.lat = -90;
    f.loc.lng = 180;
    expect_start(&f.req, NULL);
    f.loc.lat = 91.5;
    expect_start(&f.req, "location.lat is 91.5, outside [-90, 90]");
    f.loc.lat = -90.0001;
    expect_start(&f.req, "location.lat is -90.0001, outside [-90, 90]");
    f.loc.lat = 0;
    f.loc.lng = 180.25;
    expect_start(&f.req, "location.lng is 180.25, outside [-180, 180]");
    f.loc.lng = NAN;
    expect_start(&f.req, "location.lng is not a finite number (nan)");
    f.loc.lng = 0;
    f.loc.lat = -INFINITY;
    expect_start(&f.req, "location.lat is not a finite number (-inf)");
}

static void test_time(void **state)
{
    (void)state;
    fixture f;
    original(&f);
    f.ts.nanos = -1;
    expect_start(&f.req, "time.nanos is -1, outside [0, 999999999]");
    f.ts.nanos = 1000000000;
    expect_start(&f.req, "time.nanos is 1000000000, outside [0, 999999999]");
    f.ts.nanos = 999999999;
    expect_start(&f.req, NULL);
    f.ts.seconds = INT64_C(253402300800); /* 10000-01-01 */
    expect_start(&f.req, "time.seconds is 253402300800, outside years 0001 to 9999");
    f.ts.seconds = INT64_C(-62135596800); /* 0001-01-01 */
    expect_start(&f.req, NULL);
}

static void test_track_point(void **state)
{
    (void)state;
    TrackRequest req = TRACK_REQUEST__INIT;
    Location loc = LOCATION__INIT;
    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    char msg[VALIDATE_MSG_MAX] = "";
    assert_int_equal(validate_track_point(&req, 0, msg, sizeof msg), 0);
    req.location = &loc;
    req.time = &ts;
    loc.lat = 51.4871871;
    loc.lng = -0.1266743;
    assert_int_equal(validate_track_point(&req, 3, msg, sizeof msg), 0);
    loc.lat = 95;
    assert_int_equal(validate_track_point(&req, 3, msg, sizeof msg), -22);
    assert_string_equal(msg, "message[3].location.lat is 95, outside [-90, 90]");
    loc.lat = 0;
    loc.lng = INFINITY;
    assert_int_equal(validate_track_point(&req, 999999, msg, sizeof msg), -22);
    assert_string_equal(msg, "message[999999].location.lng is not a finite number (inf)");
    loc.lng = 0;
    ts.nanos = -5;
    assert_int_equal(validate_track_point(&req, 12, msg, sizeof msg), -22);
    assert_string_equal(msg, "message[12].time.nanos is -5, outside [0, 999999999]");
}

static void test_small_buffer_truncates(void **state)
{
    (void)state;
    fixture f;
    original(&f);
    f.req.driver_id = "";
    char msg[8];
    assert_int_equal(validate_start(&f.req, msg, sizeof msg), -22);
    assert_string_equal(msg, "driver_");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_original_is_valid),
        cmocka_unit_test(test_empty_driver),
        cmocka_unit_test(test_defaults_need_a_driver),
        cmocka_unit_test(test_passengers),
        cmocka_unit_test(test_utf8_strings),
        cmocka_unit_test(test_utf8_validator),
        cmocka_unit_test(test_type),
        cmocka_unit_test(test_location),
        cmocka_unit_test(test_time),
        cmocka_unit_test(test_track_point),
        cmocka_unit_test(test_small_buffer_truncates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
