/* grpc_frame: re-assembly of length-prefixed messages however split. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "grpc_frame.h"

/* Builds a stream of n messages; message i has length lens[i] and bytes
 * (i * 31 + k) & 0xff. Returns its length. */
static size_t build(uint8_t *out, const uint32_t *lens, size_t n, bool compressed)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        grpc_frame_prefix(out + o, compressed, lens[i]);
        o += 5;
        for (uint32_t k = 0; k < lens[i]; k++) out[o++] = (uint8_t)(i * 31 + k);
    }
    return o;
}

static void check_msg(const grpc_frame_msg *m, size_t i, uint32_t len)
{
    assert_int_equal(m->len, len);
    for (uint32_t k = 0; k < len; k++) assert_int_equal(m->data[k], (uint8_t)(i * 31 + k));
}

/* Feeds buf in chunks of `step` bytes and checks every message arrives. */
static void feed_split(const uint8_t *buf, size_t total, size_t step, const uint32_t *lens,
                       size_t n)
{
    grpc_frame_reader r;
    grpc_frame_reader_init(&r, 1 << 20);
    size_t got = 0;
    for (size_t off = 0; off < total; off += step) {
        size_t clen = total - off < step ? total - off : step;
        const uint8_t *c = buf + off;
        while (clen > 0 || (r.in_body && r.len == r.have)) {
            size_t used = 0;
            grpc_frame_msg m;
            int rv = grpc_frame_feed(&r, c, clen, &used, &m);
            assert_true(rv >= 0);
            assert_true(used <= clen);
            c += used;
            clen -= used;
            if (rv == 1) {
                assert_true(got < n);
                check_msg(&m, got, lens[got]);
                assert_false(m.compressed);
                got++;
            } else {
                assert_int_equal(clen, 0);
                break;
            }
        }
    }
    assert_int_equal(got, n);
    assert_false(grpc_frame_reader_partial(&r));
    grpc_frame_reader_free(&r);
}

static void test_every_split(void **state)
{
    (void)state;
    const uint32_t lens[] = {0, 1, 4, 5, 300, 0, 17};
    uint8_t buf[512];
    size_t total = build(buf, lens, 7, false);
    for (size_t step = 1; step <= total; step++) feed_split(buf, total, step, lens, 7);
}

static void test_zero_copy_when_contiguous(void **state)
{
    (void)state;
    const uint32_t lens[] = {10, 20};
    uint8_t buf[64];
    size_t total = build(buf, lens, 2, false);
    grpc_frame_reader r;
    grpc_frame_reader_init(&r, 100);
    grpc_frame_msg m;
    size_t used;
    assert_int_equal(grpc_frame_feed(&r, buf, total, &used, &m), 1);
    assert_ptr_equal(m.data, buf + 5);
    assert_int_equal(used, 15);
    assert_int_equal(grpc_frame_feed(&r, buf + used, total - used, &used, &m), 1);
    assert_ptr_equal(m.data, buf + 20);
    assert_null(r.buf); /* never needed a gather buffer */
    grpc_frame_reader_free(&r);
}

static void test_split_prefix(void **state)
{
    (void)state;
    uint8_t buf[16];
    const uint32_t lens[] = {3};
    size_t total = build(buf, lens, 1, true);
    grpc_frame_reader r;
    grpc_frame_reader_init(&r, 100);
    grpc_frame_msg m;
    size_t used;
    assert_int_equal(grpc_frame_feed(&r, buf, 2, &used, &m), 0);
    assert_int_equal(used, 2);
    assert_true(grpc_frame_reader_partial(&r));
    assert_int_equal(grpc_frame_feed(&r, buf + 2, 3, &used, &m), 0);
    assert_true(grpc_frame_reader_partial(&r));
    assert_int_equal(grpc_frame_feed(&r, buf + 5, total - 5, &used, &m), 1);
    assert_true(m.compressed);
    check_msg(&m, 0, 3);
    assert_false(grpc_frame_reader_partial(&r));
    grpc_frame_reader_free(&r);
}

static void test_limit(void **state)
{
    (void)state;
    grpc_frame_reader r;
    grpc_frame_reader_init(&r, 4 << 20);
    uint8_t p[5];
    grpc_frame_msg m;
    size_t used;
    /* exactly at the limit: accepted (needs more bytes) */
    grpc_frame_prefix(p, false, 4 << 20);
    assert_int_equal(grpc_frame_feed(&r, p, 5, &used, &m), 0);
    grpc_frame_reader_free(&r);
    /* one byte over: refused as soon as the prefix is known, split or not */
    grpc_frame_reader_init(&r, 4 << 20);
    grpc_frame_prefix(p, false, (4 << 20) + 1);
    assert_int_equal(grpc_frame_feed(&r, p, 3, &used, &m), 0);
    assert_int_equal(grpc_frame_feed(&r, p + 3, 2, &used, &m), -EMSGSIZE);
    assert_int_equal(r.over_len, (4 << 20) + 1);
    grpc_frame_reader_free(&r);
    grpc_frame_reader_init(&r, 4 << 20);
    assert_int_equal(grpc_frame_feed(&r, p, 5, &used, &m), -EMSGSIZE);
    /* the largest prefix: 4 GiB - 1 */
    memset(p + 1, 0xff, 4);
    grpc_frame_reader_init(&r, 4 << 20);
    assert_int_equal(grpc_frame_feed(&r, p, 5, &used, &m), -EMSGSIZE);
    assert_int_equal(r.over_len, 0xffffffffu);
    grpc_frame_reader_free(&r);
}

static void test_memory_follows_received_bytes(void **state)
{
    (void)state;
    /* A prefix claiming 1 MiB followed by 10 bytes must not allocate 1 MiB. */
    grpc_frame_reader r;
    grpc_frame_reader_init(&r, 4 << 20);
    uint8_t buf[15] = {0};
    grpc_frame_prefix(buf, false, 1 << 20);
    grpc_frame_msg m;
    size_t used;
    assert_int_equal(grpc_frame_feed(&r, buf, sizeof buf, &used, &m), 0);
    assert_true(r.cap < 4096);
    assert_true(grpc_frame_reader_partial(&r));
    grpc_frame_reader_free(&r);
}

static void test_large_reassembly(void **state)
{
    (void)state;
    uint32_t lens[] = {300000};
    uint8_t *buf = malloc(300005);
    size_t total = build(buf, lens, 1, false);
    feed_split(buf, total, 16384, lens, 1);
    feed_split(buf, total, 7, lens, 1);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_split),
        cmocka_unit_test(test_zero_copy_when_contiguous),
        cmocka_unit_test(test_split_prefix),
        cmocka_unit_test(test_limit),
        cmocka_unit_test(test_memory_follows_received_bytes),
        cmocka_unit_test(test_large_reassembly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
