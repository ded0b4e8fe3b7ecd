/* h2scan: RST_STREAM frames for streams never opened are dropped, every
 * other byte is passed on in order, whatever the read boundaries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "transport/h2scan.h"

static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

typedef struct out {
    uint8_t b[1024];
    size_t n;
} out;

static int sink(void *arg, const uint8_t *data, size_t n)
{
    out *o = arg;
    assert_true(n > 0);
    assert_true(o->n + n <= sizeof o->b);
    memcpy(o->b + o->n, data, n);
    o->n += n;
    return 0;
}

static size_t frame(uint8_t *p, uint8_t type, uint32_t id, size_t len, uint8_t fill)
{
    p[0] = (uint8_t)(len >> 16), p[1] = (uint8_t)(len >> 8), p[2] = (uint8_t)len;
    p[3] = type, p[4] = 0;
    p[5] = (uint8_t)(id >> 24), p[6] = (uint8_t)(id >> 16), p[7] = (uint8_t)(id >> 8),
    p[8] = (uint8_t)id;
    memset(p + 9, fill, len);
    return 9 + len;
}

/* in: preface, SETTINGS, HEADERS 1, RST 7 (idle: dropped), DATA 1,
 * RST 1 (open: kept), RST 0 and RST 2 (nghttp2 judges), HEADERS 3. */
static size_t build(uint8_t *in, uint8_t *want, size_t *want_n)
{
    size_t n = 0, w = 0, k;
    memcpy(in, preface, 24), n = 24;
    n += frame(in + n, 0x4, 0, 6, 0);
    n += frame(in + n, 0x1, 1, 20, 'h');
    memcpy(want, in, n), w = n;
    n += frame(in + n, 0x3, 7, 4, 'x'); /* dropped */
    k = frame(in + n, 0x0, 1, 30, 'd');
    k += frame(in + n + k, 0x3, 1, 4, 'r');
    k += frame(in + n + k, 0x3, 0, 4, 'z');
    k += frame(in + n + k, 0x3, 2, 4, 'e');
    k += frame(in + n + k, 0x1, 3, 10, 'i');
    memcpy(want + w, in + n, k), w += k, n += k;
    n += frame(in + n, 0x3, 5, 4, 'y'); /* dropped: 5 was never opened */
    k = frame(in + n, 0x3, 3, 4, 's');
    memcpy(want + w, in + n, k), w += k, n += k;
    *want_n = w;
    return n;
}

static void test_whole(void **st)
{
    (void)st;
    uint8_t in[512], want[512];
    size_t want_n, n = build(in, want, &want_n);
    h2scan s;
    out o = {.n = 0};
    h2scan_init(&s);
    assert_int_equal(h2scan_feed(&s, in, n, sink, &o), 0);
    assert_int_equal(o.n, want_n);
    assert_memory_equal(o.b, want, want_n);
    assert_int_equal(s.dropped, 2);
    assert_int_equal(s.max_opened, 3);
}

/* Every split into two reads, and reads of 1 to 13 bytes. */
static void test_split(void **st)
{
    (void)st;
    uint8_t in[512], want[512];
    size_t want_n, n = build(in, want, &want_n);
    for (size_t cut = 0; cut <= n; cut++) {
        h2scan s;
        out o = {.n = 0};
        h2scan_init(&s);
        assert_int_equal(h2scan_feed(&s, in, cut, sink, &o), 0);
        assert_int_equal(h2scan_feed(&s, in + cut, n - cut, sink, &o), 0);
        assert_int_equal(o.n, want_n);
        assert_memory_equal(o.b, want, want_n);
        assert_int_equal(s.dropped, 2);
    }
    for (size_t step = 1; step <= 13; step++) {
        h2scan s;
        out o = {.n = 0};
        h2scan_init(&s);
        for (size_t i = 0; i < n; i += step)
            assert_int_equal(h2scan_feed(&s, in + i, n - i < step ? n - i : step, sink, &o), 0);
        assert_int_equal(o.n, want_n);
        assert_memory_equal(o.b, want, want_n);
    }
}

static int stop_sink(void *arg, const uint8_t *data, size_t n)
{
    (void)arg, (void)data, (void)n;
    return -1;
}

static void test_sink_error_stops(void **st)
{
    (void)st;
    uint8_t in[512], want[512];
    size_t want_n, n = build(in, want, &want_n);
    h2scan s;
    h2scan_init(&s);
    assert_int_equal(h2scan_feed(&s, in, n, stop_sink, NULL), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whole),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_sink_error_stops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
