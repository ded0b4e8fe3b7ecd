/* buf: append, consume, compaction, clear. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core/buf.h"

static void test_fifo(void **state)
{
    (void)state;
    buf b = {0};
    uint8_t src[5000];
    for (size_t i = 0; i < sizeof src; i++) src[i] = (uint8_t)i;
    size_t written = 0, read = 0;
    for (int round = 0; round < 200; round++) {
        size_t n = (size_t)(round * 37 % 900);
        assert_int_equal(buf_append(&b, src + written % 4000, n), 0);
        /* check the consumer sees the same byte sequence */
        written += n;
        size_t take = buf_avail(&b) / 2;
        buf_consume(&b, take);
        read += take;
        assert_int_equal(buf_avail(&b), written - read);
    }
    assert_true(b.cap <= 4096); /* compaction keeps it small */
    buf_clear(&b, 0);
    assert_null(b.p);
    assert_int_equal(buf_avail(&b), 0);
}

static void test_content(void **state)
{
    (void)state;
    buf b = {0};
    buf_append(&b, "hello ", 6);
    buf_consume(&b, 2);
    buf_append(&b, "world", 5);
    assert_int_equal(buf_avail(&b), 9);
    assert_memory_equal(b.p + b.off, "llo world", 9);
    buf_consume(&b, 9);
    assert_int_equal(b.off, 0);
    assert_int_equal(b.len, 0);
    buf_clear(&b, 1 << 20); /* keeps small storage */
    assert_non_null(b.p);
    buf_clear(&b, 0);
}

static void test_huge_sizes(void **state)
{
    (void)state;
    buf b = {0};
    assert_int_equal(buf_append(&b, "abc", 3), 0);
    /* sizes no buffer can have: refused, the contents kept */
    assert_int_equal(buf_reserve(&b, SIZE_MAX), -ENOMEM);
    assert_int_equal(buf_reserve(&b, SIZE_MAX - 2), -ENOMEM);
    assert_int_equal(buf_reserve(&b, SIZE_MAX / 2), -ENOMEM);
    assert_int_equal(buf_avail(&b), 3);
    assert_memory_equal(b.p + b.off, "abc", 3);
    buf_clear(&b, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo),
        cmocka_unit_test(test_content),
        cmocka_unit_test(test_huge_sizes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
