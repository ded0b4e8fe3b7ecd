/* host/transport/flow.c: rx_hold (connection window of held request bytes) and the
 * notify_writable waiter list. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "transport/flow.h"

/* Under the budget every held byte gets its connection window back at once. */
static void test_hold_under_budget(void **state)
{
    (void)state;
    rx_hold h = {.budget = 1000};
    assert_int_equal(rx_hold_add(&h, 300), 300);
    assert_int_equal(rx_hold_add(&h, 700), 700);
    assert_int_equal(h.held, 1000);
    assert_int_equal(h.owed, 0);
    /* leaving bytes were returned already */
    assert_int_equal(rx_hold_release(&h, 1000), 0);
    assert_int_equal(h.held, 0);
}

/* Past the budget the window is withheld; it comes back as the hold shrinks. */
static void test_hold_over_budget(void **state)
{
    (void)state;
    rx_hold h = {.budget = 1000};
    assert_int_equal(rx_hold_add(&h, 800), 800);
    assert_int_equal(rx_hold_add(&h, 500), 200); /* 300 withheld */
    assert_int_equal(h.owed, 300);
    assert_int_equal(rx_hold_add(&h, 100), 0);
    assert_int_equal(h.owed, 400);
    assert_int_equal(rx_hold_release(&h, 150), 150);
    assert_int_equal(h.owed, 250);
    assert_int_equal(rx_hold_release(&h, 1250), 250);
    assert_int_equal(h.held, 0);
    assert_int_equal(h.owed, 0);
}

/* Whatever the order, every byte's connection window is returned exactly
 * once by the time the hold is empty, and at no time are more than
 * `budget` held bytes returned. */
static void test_hold_conserves(void **state)
{
    (void)state;
    srand(7);
    for (int round = 0; round < 200; round++) {
        rx_hold h = {.budget = (size_t)(rand() % 5000)};
        size_t added = 0, returned = 0, released = 0;
        for (int i = 0; i < 300; i++) {
            if (rand() % 2) {
                size_t n = (size_t)(rand() % 700);
                added += n;
                returned += rx_hold_add(&h, n);
            } else if (h.held) {
                size_t n = (size_t)rand() % (h.held + 1);
                released += n;
                returned += rx_hold_release(&h, n);
            }
            assert_int_equal(h.held, added - released);
            assert_true(returned - released <= h.budget);  /* returned while held */
            assert_int_equal(returned - released + h.owed, h.held);
        }
        returned += rx_hold_release(&h, h.held);
        assert_int_equal(returned, added);
    }
}

static void cb_nop(struct rh_call *call, void *arg)
{
    (void)call;
    (void)arg;
}

static void test_waiters(void **state)
{
    (void)state;
    flow_waiters l = {0};
    flow_waiter w[4] = {{.low_water = 100, .cb = cb_nop},
                        {.low_water = 0, .cb = cb_nop},
                        {.low_water = 500, .cb = cb_nop},
                        {.low_water = 100, .cb = cb_nop}};
    assert_false(flow_waiters_due(&l, 0, true));
    for (int i = 0; i < 4; i++) flow_waiters_push(&l, &w[i]);
    assert_int_equal(l.max_low, 500);
    assert_false(flow_waiters_due(&l, 501, false));
    assert_true(flow_waiters_due(&l, 501, true));
    assert_null(flow_waiters_take_due(&l, 501, false));
    assert_int_equal(l.max_low, 500);

    /* 100 queued: the 100 and 500 marks are due, in registration order */
    assert_true(flow_waiters_due(&l, 100, false));
    flow_waiter *due = flow_waiters_take_due(&l, 100, false);
    assert_ptr_equal(due, &w[0]);
    assert_ptr_equal(due->next, &w[2]);
    assert_ptr_equal(due->next->next, &w[3]);
    assert_null(due->next->next->next);
    assert_ptr_equal(l.head, &w[1]);
    assert_ptr_equal(l.tail, &w[1]);
    assert_int_equal(l.max_low, 0);

    /* pushing after a take keeps the list well formed */
    flow_waiters_push(&l, &w[0]);
    assert_ptr_equal(l.head->next, &w[0]);
    assert_int_equal(l.max_low, 100);
    /* the call ended: everything is due */
    due = flow_waiters_take_due(&l, 1 << 20, true);
    assert_ptr_equal(due, &w[1]);
    assert_ptr_equal(due->next, &w[0]);
    assert_null(l.head);
    assert_null(l.tail);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hold_under_budget),
        cmocka_unit_test(test_hold_over_budget),
        cmocka_unit_test(test_hold_conserves),
        cmocka_unit_test(test_waiters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
