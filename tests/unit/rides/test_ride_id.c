/* Ride ids: uuid4 as 32 lowercase hex, from getrandom(2). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ride_id.h"

static void assert_uuid4_hex(const char *id)
{
    assert_int_equal(strlen(id), RIDE_ID_LEN);
    for (int i = 0; i < RIDE_ID_LEN; i++)
        assert_non_null(strchr("0123456789abcdef", id[i]));
    assert_int_equal(id[12], '4');                    /* version */
    assert_non_null(strchr("89ab", id[16]));          /* RFC 4122 variant */
}

static void test_format_known_bytes(void **state)
{
    (void)state;
    uint8_t b[16];
    for (int i = 0; i < 16; i++)
        b[i] = (uint8_t)(0xf0 + i);
    char id[RIDE_ID_LEN + 1];
    ride_id_format(b, id);
    /* byte 6 (0xf6) -> 0x46, byte 8 (0xf8) -> 0xb8 */
    assert_string_equal(id, "f0f1f2f3f4f546f7b8f9fafbfcfdfeff");
    memset(b, 0, sizeof b);
    ride_id_format(b, id);
    assert_string_equal(id, "00000000000040008000000000000000");
}

static int cmp(const void *a, const void *b)
{
    return memcmp(a, b, RIDE_ID_LEN + 1);
}

static void test_new_ids_are_uuid4_and_distinct(void **state)
{
    (void)state;
    enum { N = 20000 };
    char(*ids)[RIDE_ID_LEN + 1] = calloc(N, sizeof *ids);
    assert_non_null(ids);
    for (int i = 0; i < N; i++) {
        assert_int_equal(ride_id_new(ids[i]), 0);
        assert_uuid4_hex(ids[i]);
    }
    qsort(ids, N, sizeof *ids, cmp);
    for (int i = 1; i < N; i++)
        assert_int_not_equal(cmp(ids[i - 1], ids[i]), 0);
    free(ids);
}

static void test_randomness_spreads_over_all_digits(void **state)
{
    (void)state;
    /* Every free hex position takes many values over 2000 ids: catches a
     * constant or a short buffer reused. */
    enum { N = 2000 };
    int seen[RIDE_ID_LEN][16] = {{0}};
    char id[RIDE_ID_LEN + 1];
    for (int i = 0; i < N; i++) {
        assert_int_equal(ride_id_new(id), 0);
        for (int k = 0; k < RIDE_ID_LEN; k++)
            seen[k][id[k] <= '9' ? id[k] - '0' : id[k] - 'a' + 10] = 1;
    }
    for (int k = 0; k < RIDE_ID_LEN; k++) {
        int distinct = 0;
        for (int d = 0; d < 16; d++)
            distinct += seen[k][d];
        if (k == 12)
            assert_int_equal(distinct, 1);
        else if (k == 16)
            assert_int_equal(distinct, 4);
        else
            assert_int_equal(distinct, 16);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_known_bytes),
        cmocka_unit_test(test_new_ids_are_uuid4_and_distinct),
        cmocka_unit_test(test_randomness_spreads_over_all_digits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
