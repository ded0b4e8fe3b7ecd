/* The SPSC log ring: wrap-around, drops, and a producer/consumer race. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "al_ring.h"

static size_t take_all(al_ring *r, char *out)
{
    const char *p1, *p2;
    size_t n1, n2;
    size_t n = al_ring_peek(r, &p1, &n1, &p2, &n2);
    memcpy(out, p1, n1);
    memcpy(out + n1, p2, n2);
    al_ring_consume(r, n);
    return n;
}

static void test_wrap_and_drop(void **st)
{
    (void)st;
    al_ring r;
    assert_int_equal(al_ring_init(&r, 100), 0);
    assert_int_equal(r.cap, 4096);
    char line[1000], out[8192];
    bool half;
    memset(line, 'a', sizeof line);
    for (int i = 0; i < 4; i++)
        assert_int_equal(al_ring_push(&r, line, sizeof line, &half), 0);
    assert_true(half);
    /* 4000 of 4096 used: the fifth line does not fit and is counted */
    assert_int_equal(al_ring_push(&r, line, sizeof line, &half), -ENOSPC);
    assert_int_equal(atomic_load(&r.dropped), 1);
    assert_int_equal(take_all(&r, out), 4000);
    /* now the next lines wrap around the end of the buffer */
    for (int k = 0; k < 50; k++) {
        for (int i = 0; i < 3; i++) {
            memset(line, 'a' + (k + i) % 26, sizeof line);
            assert_int_equal(al_ring_push(&r, line, sizeof line - (size_t)i, &half), 0);
        }
        assert_int_equal(take_all(&r, out), 3000 - 3);
        assert_int_equal(out[0], 'a' + k % 26);
        assert_int_equal(out[999], 'a' + k % 26);
        assert_int_equal(out[1000], 'a' + (k + 1) % 26);
        assert_int_equal(out[1999], 'a' + (k + 2) % 26);
        assert_int_equal(out[2996], 'a' + (k + 2) % 26);
    }
    const char *p1, *p2;
    size_t n1, n2;
    assert_int_equal(al_ring_peek(&r, &p1, &n1, &p2, &n2), 0);
    al_ring_push(&r, "x", 1, &half);
    assert_false(half);
    al_ring_destroy(&r);
}

#define LINES 200000

static void *producer(void *arg)
{
    al_ring *r = arg;
    char line[64];
    for (unsigned i = 0; i < LINES;) {
        int n = snprintf(line, sizeof line, "line %u\n", i);
        bool half;
        if (al_ring_push(r, line, (size_t)n, &half) == 0)
            i++;
        else
            atomic_fetch_sub(&r->dropped, 1); /* retry this one instead */
    }
    return NULL;
}

static void test_threads(void **st)
{
    (void)st;
    al_ring r;
    assert_int_equal(al_ring_init(&r, 8192), 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, producer, &r), 0);
    unsigned want = 0;
    char buf[64];
    size_t blen = 0;
    while (want < LINES) {
        const char *p1, *p2;
        size_t n1, n2;
        size_t n = al_ring_peek(&r, &p1, &n1, &p2, &n2);
        for (size_t i = 0; i < n; i++) {
            char c = i < n1 ? p1[i] : p2[i - n1];
            assert_true(blen < sizeof buf - 1);
            buf[blen++] = c;
            if (c == '\n') {
                buf[blen] = '\0';
                char expect[64];
                snprintf(expect, sizeof expect, "line %u\n", want);
                assert_string_equal(buf, expect);
                want++;
                blen = 0;
            }
        }
        al_ring_consume(&r, n);
    }
    pthread_join(th, NULL);
    assert_int_equal(blen, 0);
    al_ring_destroy(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wrap_and_drop),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
