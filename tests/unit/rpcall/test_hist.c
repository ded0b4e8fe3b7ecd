/* hist: quantiles within the bucket precision, merge, extremes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "hist.h"

static void assert_near(uint64_t got, uint64_t want)
{
    double err = (double)(got > want ? got - want : want - got) / (double)want;
    if (err > 0.016)
        fail_msg("got %llu want %llu (%.3f off)", (unsigned long long)got,
                 (unsigned long long)want, err);
}

static void test_uniform(void **state)
{
    (void)state;
    hist *h = malloc(sizeof(hist));
    hist_init(h);
    for (uint64_t v = 1; v <= 100000; v++)
        hist_add(h, v * 1000); /* 1 us .. 100 ms */
    assert_int_equal(h->count, 100000);
    assert_int_equal(h->min, 1000);
    assert_int_equal(h->max, 100000000);
    assert_near(hist_quantile(h, 0.5), 50000000);
    assert_near(hist_quantile(h, 0.9), 90000000);
    assert_near(hist_quantile(h, 0.99), 99000000);
    assert_near(hist_quantile(h, 0.999), 99900000);
    assert_int_equal(hist_quantile(h, 1.0), 100000000);
    assert_near(hist_count_le(h, 25000000), 25000);
    free(h);
}

static void test_small_values_exact(void **state)
{
    (void)state;
    hist *h = malloc(sizeof(hist));
    hist_init(h);
    for (uint64_t v = 0; v < 128; v++)
        hist_add(h, v);
    assert_int_equal(hist_quantile(h, 0.5), 63);
    assert_int_equal(hist_quantile(h, 0.0), 0);
    free(h);
}

static void test_merge_and_huge(void **state)
{
    (void)state;
    hist *a = malloc(sizeof(hist)), *b = malloc(sizeof(hist));
    hist_init(a);
    hist_init(b);
    hist_add(a, 10);
    hist_add(b, UINT64_MAX / 2); /* beyond the last bucket: clamped, not lost */
    hist_merge(a, b);
    assert_int_equal(a->count, 2);
    assert_int_equal(a->min, 10);
    assert_int_equal(a->max, UINT64_MAX / 2);
    assert_int_equal(hist_quantile(a, 0.5), 10);
    assert_true(hist_quantile(a, 1.0) > 10);
    hist_init(b);
    assert_int_equal(hist_quantile(b, 0.5), 0);
    free(a);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uniform),
        cmocka_unit_test(test_small_values_exact),
        cmocka_unit_test(test_merge_and_huge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
