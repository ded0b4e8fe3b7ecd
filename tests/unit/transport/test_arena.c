/* arena: alignment, inline storage first, growth, reset. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core/arena.h"

static void test_inline_then_blocks(void **state)
{
    (void)state;
    _Alignas(16) uint8_t store[256];
    arena a;
    arena_init(&a, store, sizeof store);
    void *p = arena_alloc(&a, 10);
    assert_ptr_equal(p, store);
    void *q = arena_alloc(&a, 1);
    assert_int_equal((uintptr_t)q % 16, 0);
    assert_true((uint8_t *)q >= store && (uint8_t *)q < store + sizeof store);
    assert_null(a.blocks);
    /* too big for what is left: a malloc'd block */
    uint8_t *big = arena_alloc(&a, 10000);
    assert_non_null(big);
    assert_non_null(a.blocks);
    assert_true(big < store || big >= store + sizeof store);
    memset(big, 0xab, 10000); /* ASan checks the size */
    for (int i = 0; i < 1000; i++) {
        uint8_t *x = arena_alloc(&a, 100 + i);
        assert_int_equal((uintptr_t)x % 16, 0);
        memset(x, i, 100 + (size_t)i);
    }
    arena_reset(&a);
    assert_null(a.blocks);
    assert_ptr_equal(arena_alloc(&a, 8), store);
    arena_reset(&a);
}

static void test_unaligned_store_and_helpers(void **state)
{
    (void)state;
    uint8_t raw[300];
    arena a;
    arena_init(&a, raw + 3, 200); /* storage need not be aligned */
    void *p = arena_alloc(&a, 1);
    assert_int_equal((uintptr_t)p % 16, 0);
    char *s = arena_strndup(&a, "hello world", 5);
    assert_string_equal(s, "hello");
    uint8_t *z = arena_calloc(&a, 64);
    for (int i = 0; i < 64; i++) assert_int_equal(z[i], 0);
    assert_non_null(arena_alloc(&a, 0));
    arena_reset(&a);
}

static void test_protobuf_allocator(void **state)
{
    (void)state;
    uint8_t store[128];
    arena a;
    arena_init(&a, store, sizeof store);
    ProtobufCAllocator pa;
    arena_pb_allocator(&a, &pa);
    void *p = pa.alloc(pa.allocator_data, 40);
    assert_non_null(p);
    pa.free(pa.allocator_data, p); /* no-op; freed with the arena */
    arena_reset(&a);
}

/* limit bounds the malloc'd bytes (not the owner's storage); an
 * allocation past it fails and says why; reset keeps the limit. */
static void test_limit(void **state)
{
    (void)state;
    uint8_t store[256];
    arena a;
    arena_init(&a, store, sizeof store);
    a.limit = 10000;
    assert_non_null(arena_alloc(&a, 200)); /* inline */
    assert_int_equal(a.heap, 0);
    assert_non_null(arena_alloc(&a, 3000)); /* a 4096-byte block */
    assert_int_equal(a.heap, 4096);
    assert_false(a.over_limit);
    /* The next block would be 8192: past the limit; the exact size fits. */
    assert_non_null(arena_alloc(&a, 2000));
    assert_true(a.heap <= a.limit);
    assert_null(arena_alloc(&a, 8000));
    assert_true(a.over_limit);
    assert_true(a.heap <= a.limit);
    arena_reset(&a);
    assert_int_equal(a.heap, 0);
    assert_false(a.over_limit);
    assert_int_equal(a.limit, 10000);
    assert_null(arena_alloc(&a, 20000)); /* bigger than the limit alone */
    assert_true(a.over_limit);
    a.limit = 0; /* no limit */
    assert_non_null(arena_alloc(&a, 20000));
    arena_reset(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inline_then_blocks),
        cmocka_unit_test(test_unaligned_store_and_helpers),
        cmocka_unit_test(test_protobuf_allocator),
        cmocka_unit_test(test_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
