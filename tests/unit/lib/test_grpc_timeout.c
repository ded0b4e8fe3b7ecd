/* grpc_timeout: every unit, limits, garbage, and format round trips. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "grpc_timeout.h"

static int64_t parse(const char *s)
{
    int64_t ns = -1;
    int rv = grpc_timeout_parse(s, strlen(s), &ns);
    return rv < 0 ? rv : ns;
}

static void test_units(void **state)
{
    (void)state;
    assert_int_equal(parse("1n"), 1);
    assert_int_equal(parse("1u"), 1000);
    assert_int_equal(parse("1m"), 1000000);
    assert_int_equal(parse("1S"), 1000000000LL);
    assert_int_equal(parse("1M"), 60000000000LL);
    assert_int_equal(parse("1H"), 3600000000000LL);
    assert_int_equal(parse("0m"), 0);
    assert_int_equal(parse("99999999n"), 99999999);
    assert_int_equal(parse("00000100m"), 100000000);
    /* 99999999 hours overflows int64 ns: saturate */
    assert_int_equal(parse("99999999H"), INT64_MAX);
}

static void test_garbage(void **state)
{
    (void)state;
    const char *bad[] = {"", "m", "1", "1s", "1h", "1x", "-1m", "+1m", " 1m", "1m ",
                         "1.5S", "123456789m", "1 m", "abcS", "1mm", "0x10S"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(parse(bad[i]), -EINVAL);
    /* the length is authoritative, not the NUL */
    int64_t ns;
    assert_int_equal(grpc_timeout_parse("5S", 1, &ns), -EINVAL);
    assert_int_equal(grpc_timeout_parse("5Sxx", 2, &ns), 0);
    assert_int_equal(ns, 5000000000LL);
}

static void test_format(void **state)
{
    (void)state;
    char out[GRPC_TIMEOUT_MAX_LEN];
    assert_int_equal(grpc_timeout_format(0, out), 2);
    assert_string_equal(out, "0n");
    grpc_timeout_format(99999999, out);
    assert_string_equal(out, "99999999n");
    grpc_timeout_format(100000000, out);
    assert_string_equal(out, "100000u");
    grpc_timeout_format(100000001, out); /* rounds up, never down */
    assert_string_equal(out, "100001u");
    grpc_timeout_format(INT64_MAX, out);
    assert_string_equal(out, "2562048H");
    grpc_timeout_format(-5, out);
    assert_string_equal(out, "0n");
    /* round trip: parse(format(x)) >= x and within one unit */
    const int64_t xs[] = {1, 999, 1000000, 123456789, 5000000000LL, 86400000000000LL};
    for (size_t i = 0; i < sizeof xs / sizeof xs[0]; i++) {
        size_t n = grpc_timeout_format(xs[i], out);
        int64_t back;
        assert_int_equal(grpc_timeout_parse(out, n, &back), 0);
        assert_true(back >= xs[i]);
        assert_true(back - xs[i] < back / 1000 + 1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_units),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
