/* base64: RFC 4648 vectors, padded and unpadded, and bad input. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "base64.h"

static const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
static const char *padded[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
static const char *unpadded[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};

static void test_encode(void **state)
{
    (void)state;
    char out[32];
    for (int i = 0; i < 7; i++) {
        size_t len = strlen(plain[i]);
        size_t n = base64_encode(out, (const uint8_t *)plain[i], len, true);
        assert_int_equal(n, base64_encoded_len(len, true));
        out[n] = 0;
        assert_string_equal(out, padded[i]);
        n = base64_encode(out, (const uint8_t *)plain[i], len, false);
        assert_int_equal(n, base64_encoded_len(len, false));
        out[n] = 0;
        assert_string_equal(out, unpadded[i]);
    }
}

static void test_decode_both(void **state)
{
    (void)state;
    uint8_t out[32];
    size_t n;
    for (int i = 0; i < 7; i++) {
        assert_int_equal(base64_decode(out, &n, padded[i], strlen(padded[i])), 0);
        assert_int_equal(n, strlen(plain[i]));
        assert_memory_equal(out, plain[i], n);
        assert_int_equal(base64_decode(out, &n, unpadded[i], strlen(unpadded[i])), 0);
        assert_int_equal(n, strlen(plain[i]));
        assert_memory_equal(out, plain[i], n);
        assert_true(n <= base64_decoded_max(strlen(padded[i])));
    }
}

static void test_bad(void **state)
{
    (void)state;
    uint8_t out[32];
    size_t n;
    const char *bad[] = {"Z", "Zg=", "Z===", "Zm9v!", "Zm 9v", "=Zm9", "Zg==Zg==", "Zm9v-_"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(base64_decode(out, &n, bad[i], strlen(bad[i])), -EINVAL);
}

static void test_binary_round_trip(void **state)
{
    (void)state;
    uint8_t in[256], back[260];
    char mid[400];
    for (int i = 0; i < 256; i++) in[i] = (uint8_t)(255 - i);
    for (size_t len = 0; len <= 256; len += 13) {
        for (int pad = 0; pad < 2; pad++) {
            size_t n = base64_encode(mid, in, len, pad);
            size_t m;
            assert_int_equal(base64_decode(back, &m, mid, n), 0);
            assert_int_equal(m, len);
            assert_memory_equal(back, in, len);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode),
        cmocka_unit_test(test_decode_both),
        cmocka_unit_test(test_bad),
        cmocka_unit_test(test_binary_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
