/* grpc_codec: names, accept lists, inflating with a hard cap (bombs,
 * corrupt and truncated streams) and compressing, checked against zlib as
 * an independent encoder/decoder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <zlib.h>

#include "grpc_codec.h"

/* Compressible test data: text with numbers, like a typical message. */
static uint8_t *sample(size_t n)
{
    uint8_t *p = malloc(n ? n : 1);
    size_t o = 0;
    for (unsigned i = 0; o < n; i++) {
        char line[64];
        int k = snprintf(line, sizeof line, "{\"id\":%u,\"name\":\"rider %u\"},", i, i * 7 % 1000);
        for (int j = 0; j < k && o < n; j++) p[o++] = (uint8_t)line[j];
    }
    return p;
}

/* zlib as the reference encoder: gzip (31) or zlib format (15). */
static size_t z_compress(grpc_codec_algo algo, const uint8_t *in, size_t len, uint8_t **out)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, algo == GRPC_CODEC_GZIP ? 31 : 15, 8,
                                  Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&z, len) + 32;
    *out = malloc(cap);
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)len;
    z.next_out = *out;
    z.avail_out = (uInt)cap;
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    size_t n = z.total_out;
    deflateEnd(&z);
    return n;
}

/* zlib as the reference decoder of what grpc_deflate made. */
static void z_check(grpc_codec_algo algo, const uint8_t *c, size_t clen, const uint8_t *want,
                    size_t len)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    assert_int_equal(inflateInit2(&z, algo == GRPC_CODEC_GZIP ? 31 : 15), Z_OK);
    uint8_t *out = malloc(len + 1);
    z.next_in = (Bytef *)c;
    z.avail_in = (uInt)clen;
    z.next_out = out;
    z.avail_out = (uInt)len + 1;
    assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
    assert_int_equal(z.total_out, len);
    assert_memory_equal(out, want, len);
    inflateEnd(&z);
    free(out);
}

static void names(void **state)
{
    (void)state;
    assert_int_equal(grpc_codec_from_name("gzip", 4), GRPC_CODEC_GZIP);
    assert_int_equal(grpc_codec_from_name("deflate", 7), GRPC_CODEC_DEFLATE);
    assert_int_equal(grpc_codec_from_name("identity", 8), GRPC_CODEC_IDENTITY);
    assert_int_equal(grpc_codec_from_name("GZIP", 4), -1);
    assert_int_equal(grpc_codec_from_name("snappy", 6), -1);
    assert_int_equal(grpc_codec_from_name("gzi", 3), -1);
    assert_string_equal(grpc_codec_name(GRPC_CODEC_DEFLATE), "deflate");
    const char *v = "identity, deflate ,\tsnappy,gzip";
    assert_int_equal(grpc_codec_parse_accept(v, strlen(v)), 7u);
    assert_int_equal(grpc_codec_parse_accept("", 0), 1u);
    assert_int_equal(grpc_codec_parse_accept("deflate", 7), 5u);
    assert_int_equal(grpc_codec_parse_accept(",,gzip,", 7), 3u);
}

static void round_trips(void **state)
{
    (void)state;
    static const size_t sizes[] = {0, 1, 100, 1024, 65536, 1u << 20};
    grpc_inflater *inf = grpc_inflater_new();
    grpc_deflater *d = grpc_deflater_new(GRPC_CODEC_LEVEL_DEFAULT);
    grpc_codec_buf out = {0};
    for (int a = GRPC_CODEC_GZIP; a <= GRPC_CODEC_DEFLATE; a++) {
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            size_t n = sizes[i];
            uint8_t *src = sample(n);
            /* ours -> zlib, and ours -> ours */
            size_t bound = grpc_codec_bound(d, (grpc_codec_algo)a, n);
            uint8_t *c = malloc(bound);
            size_t clen = grpc_deflate(d, (grpc_codec_algo)a, src, n, c, bound);
            assert_true(clen > 0);
            if (n >= 1024) assert_true(clen < n / 3); /* it really compresses */
            z_check((grpc_codec_algo)a, c, clen, src, n);
            assert_int_equal(grpc_inflate(inf, (grpc_codec_algo)a, c, clen, n, &out),
                             GRPC_INFLATE_OK);
            assert_int_equal(out.len, n);
            if (n) assert_memory_equal(out.p, src, n);
            free(c);
            /* zlib -> ours */
            clen = z_compress((grpc_codec_algo)a, src, n, &c);
            assert_int_equal(grpc_inflate(inf, (grpc_codec_algo)a, c, clen, 4u << 20, &out),
                             GRPC_INFLATE_OK);
            assert_int_equal(out.len, n);
            if (n) assert_memory_equal(out.p, src, n);
            free(c);
            free(src);
        }
    }
    grpc_codec_buf_free(&out);
    grpc_deflater_free(d);
    grpc_inflater_free(inf);
}

/* The cap is exact: max_out bytes pass, max_out + 1 do not. */
static void cap_exact(void **state)
{
    (void)state;
    grpc_inflater *inf = grpc_inflater_new();
    grpc_codec_buf out = {0};
    uint8_t *src = sample(10000), *c;
    size_t clen = z_compress(GRPC_CODEC_GZIP, src, 10000, &c);
    assert_int_equal(grpc_inflate(inf, GRPC_CODEC_GZIP, c, clen, 10000, &out), GRPC_INFLATE_OK);
    assert_int_equal(out.len, 10000);
    assert_int_equal(grpc_inflate(inf, GRPC_CODEC_GZIP, c, clen, 9999, &out),
                     GRPC_INFLATE_TOO_BIG);
    assert_true(out.cap <= 10000);
    assert_int_equal(grpc_inflate(inf, GRPC_CODEC_GZIP, c, clen, 0, &out), GRPC_INFLATE_TOO_BIG);
    /* the inflater is fine after a refusal */
    assert_int_equal(grpc_inflate(inf, GRPC_CODEC_GZIP, c, clen, 1u << 20, &out), GRPC_INFLATE_OK);
    free(c);
    /* an empty message under a cap of 0 */
    clen = z_compress(GRPC_CODEC_DEFLATE, src, 0, &c);
    grpc_codec_buf none = {0};
    assert_int_equal(grpc_inflate(inf, GRPC_CODEC_DEFLATE, c, clen, 0, &none), GRPC_INFLATE_OK);
    assert_int_equal(none.len, 0);
    assert_null(none.p);
    free(c);
    free(src);
    grpc_codec_buf_free(&out);
    grpc_inflater_free(inf);
}

/* 64 MiB of zeros in ~64 KiB: refused at a 4 MiB cap having allocated at
 * most the cap. */
static void bomb(void **state)
{
    (void)state;
    size_t n = 64u << 20;
    uint8_t *zeros = calloc(1, n), *c;
    for (int a = GRPC_CODEC_GZIP; a <= GRPC_CODEC_DEFLATE; a++) {
        size_t clen = z_compress((grpc_codec_algo)a, zeros, n, &c);
        assert_true(clen < 100000);
        grpc_inflater *inf = grpc_inflater_new();
        grpc_codec_buf out = {0};
        assert_int_equal(grpc_inflate(inf, (grpc_codec_algo)a, c, clen, 4u << 20, &out),
                         GRPC_INFLATE_TOO_BIG);
        assert_true(out.cap <= 4u << 20);
        grpc_codec_buf_free(&out);
        grpc_inflater_free(inf);
        free(c);
    }
    free(zeros);
}

static void bad_streams(void **state)
{
    (void)state;
    grpc_inflater *inf = grpc_inflater_new();
    grpc_codec_buf out = {0};
    uint8_t *src = sample(5000), *c;
    size_t clen = z_compress(GRPC_CODEC_GZIP, src, 5000, &c);
    /* truncated anywhere */
    for (size_t cut = 0; cut < clen; cut += clen / 7 + 1) {
        int rc = grpc_inflate(inf, GRPC_CODEC_GZIP, c, cut, 1u << 20, &out);
        assert_true(rc == GRPC_INFLATE_TRUNCATED || rc == GRPC_INFLATE_CORRUPT);
    }
    assert_int_equal(grpc_inflate(inf, GRPC_CODEC_GZIP, c, 0, 1u << 20, &out),
                     GRPC_INFLATE_TRUNCATED);
    assert_int_equal(grpc_inflate(inf, GRPC_CODEC_GZIP, c, clen - 1, 1u << 20, &out),
                     GRPC_INFLATE_TRUNCATED);
    /* a gzip stream is not deflate, and the other way round */
    assert_int_equal(grpc_inflate(inf, GRPC_CODEC_DEFLATE, c, clen, 1u << 20, &out),
                     GRPC_INFLATE_CORRUPT);
    /* bytes after the end of the stream */
    uint8_t *more = malloc(clen + 3);
    memcpy(more, c, clen);
    memcpy(more + clen, "abc", 3);
    assert_int_equal(grpc_inflate(inf, GRPC_CODEC_GZIP, more, clen + 3, 1u << 20, &out),
                     GRPC_INFLATE_CORRUPT);
    /* a flipped bit in the body: the CRC (gzip) or the data catch it */
    more[clen / 2] ^= 0x10;
    assert_int_not_equal(grpc_inflate(inf, GRPC_CODEC_GZIP, more, clen, 1u << 20, &out),
                         GRPC_INFLATE_OK);
    free(more);
    free(c);
    clen = z_compress(GRPC_CODEC_DEFLATE, src, 5000, &c);
    assert_int_equal(grpc_inflate(inf, GRPC_CODEC_GZIP, c, clen, 1u << 20, &out),
                     GRPC_INFLATE_CORRUPT);
    assert_int_equal(grpc_inflate(inf, GRPC_CODEC_IDENTITY, c, clen, 1u << 20, &out),
                     GRPC_INFLATE_CORRUPT);
    static const uint8_t junk[] = "this is not compressed at all";
    assert_int_equal(grpc_inflate(inf, GRPC_CODEC_DEFLATE, junk, sizeof junk, 1u << 20, &out),
                     GRPC_INFLATE_CORRUPT);
    /* and the inflater still works */
    assert_int_equal(grpc_inflate(inf, GRPC_CODEC_DEFLATE, c, clen, 1u << 20, &out),
                     GRPC_INFLATE_OK);
    assert_memory_equal(out.p, src, 5000);
    assert_string_equal(grpc_inflate_strerror(GRPC_INFLATE_TOO_BIG), "inflates past the size limit");
    free(c);
    free(src);
    grpc_codec_buf_free(&out);
    grpc_inflater_free(inf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(names),     cmocka_unit_test(round_trips), cmocka_unit_test(cap_exact),
        cmocka_unit_test(bomb),      cmocka_unit_test(bad_streams),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
