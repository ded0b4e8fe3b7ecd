/* timer heap: order, cancel from anywhere, re-arm, callbacks arming. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/timer.h"

#define N 500

static int64_t fired[N * 2];
static size_t n_fired;

static void record(rh_timer *t)
{
    fired[n_fired++] = t->when;
}

static void test_order_and_cancel(void **state)
{
    (void)state;
    timer_heap h = {0};
    static rh_timer ts[N];
    memset(ts, 0, sizeof ts);
    srand(7);
    for (int i = 0; i < N; i++) assert_int_equal(timer_arm(&h, &ts[i], rand() % 10000, record), 0);
    /* cancel every third, re-arm every fifth */
    for (int i = 0; i < N; i += 3) timer_cancel(&h, &ts[i]);
    for (int i = 0; i < N; i += 5) timer_arm(&h, &ts[i], rand() % 10000, record);
    size_t armed = 0;
    for (int i = 0; i < N; i++) armed += timer_armed(&ts[i]);
    assert_int_equal(armed, h.n);
    n_fired = 0;
    timer_run(&h, 4999);
    for (size_t i = 0; i < n_fired; i++) {
        assert_true(fired[i] <= 4999);
        if (i) assert_true(fired[i - 1] <= fired[i]);
    }
    size_t first = n_fired;
    assert_true(timer_next(&h) >= 5000);
    timer_run(&h, INT64_MAX);
    assert_int_equal(n_fired, armed);
    for (size_t i = first + 1; i < n_fired; i++) assert_true(fired[i - 1] <= fired[i]);
    assert_int_equal(timer_next(&h), -1);
    for (int i = 0; i < N; i++) assert_false(timer_armed(&ts[i]));
    timer_cancel(&h, &ts[0]); /* cancel of an unarmed timer: nothing */
    timer_heap_free(&h);
}

static timer_heap *g_heap;
static int chain_left;

static void rearm(rh_timer *t)
{
    if (--chain_left > 0) timer_arm(g_heap, t, t->when + 1, rearm);
}

static void test_callback_rearms(void **state)
{
    (void)state;
    timer_heap h = {0};
    g_heap = &h;
    rh_timer t = {0};
    chain_left = 10;
    timer_arm(&h, &t, 1, rearm);
    timer_run(&h, 5); /* fires at 1..5 */
    assert_int_equal(chain_left, 5);
    assert_true(timer_armed(&t));
    timer_run(&h, 100);
    assert_int_equal(chain_left, 0);
    assert_false(timer_armed(&t));
    timer_heap_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_and_cancel),
        cmocka_unit_test(test_callback_rearms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
