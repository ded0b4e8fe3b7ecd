/* percent: grpc-message encoding both ways. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "percent.h"

static void enc(const char *in, const char *want)
{
    char out[256];
    size_t n = percent_encode(out, (const uint8_t *)in, strlen(in));
    assert_int_equal(n, percent_encoded_len((const uint8_t *)in, strlen(in)));
    out[n] = 0;
    assert_string_equal(out, want);
}

static void dec(const char *in, const char *want)
{
    uint8_t out[256];
    size_t n = percent_decode(out, in, strlen(in));
    out[n] = 0;
    assert_string_equal((char *)out, want);
}

static void test_encode(void **state)
{
    (void)state;
    enc("", "");
    enc("plain text ~!", "plain text ~!");
    enc("100%", "100%25");
    enc("a\nb\tc", "a%0Ab%09c");
    enc("\x7f", "%7F");
    enc("\xe2\x82\xac", "%E2%82%AC"); /* UTF-8 euro sign */
}

static void test_decode(void **state)
{
    (void)state;
    dec("100%25", "100%");
    dec("%E2%82%AC", "\xe2\x82\xac");
    dec("%e2%82%ac", "\xe2\x82\xac");
    /* invalid sequences are kept, never an error */
    dec("%", "%");
    dec("%2", "%2");
    dec("%zz", "%zz");
    dec("50%", "50%");
    dec("%%41", "%A");
}

static void test_round_trip_all_bytes(void **state)
{
    (void)state;
    uint8_t in[256], back[256];
    char mid[768];
    for (int i = 0; i < 256; i++) in[i] = (uint8_t)i;
    size_t n = percent_encode(mid, in, 256);
    for (size_t i = 0; i < n; i++) assert_true(mid[i] >= 0x20 && mid[i] <= 0x7e);
    size_t m = percent_decode(back, mid, n);
    assert_int_equal(m, 256);
    assert_memory_equal(in, back, 256);
    /* in place */
    m = percent_decode((uint8_t *)mid, mid, n);
    assert_memory_equal(in, mid, 256);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode),
        cmocka_unit_test(test_decode),
        cmocka_unit_test(test_round_trip_all_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
