/* lib/grpc_codec: inflating untrusted bytes under a hard output cap,
 * checked against zlib's one-shot inflate of the same bytes.
 *
 * Input: byte 0 picks the algorithm (bit 0) and the cap (the rest), the
 * rest is the compressed message. Invariants: never more than the cap is
 * produced or allocated; OK exactly when the reference decodes the whole
 * input to at most cap bytes (and then to the same bytes); TOO_BIG only
 * when the reference's output passes the cap; what inflated compresses
 * and inflates back to itself. The inflater is reused across inputs, as
 * the host reuses one per worker. */
#include <string.h>
#include <zlib.h>

#include "fuzz.h"
#include "grpc_codec.h"

static grpc_inflater *inf;
static grpc_deflater *def;

/* zlib one-shot into cap + 1 bytes: 1 decoded within cap (*len set),
 * 2 more than cap, 0 invalid or truncated or trailing bytes. */
static int reference(grpc_codec_algo algo, const uint8_t *in, size_t len, size_t cap,
                     uint8_t *out, size_t *out_len)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, algo == GRPC_CODEC_GZIP ? 31 : 15) != Z_OK) abort();
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap + 1;
    int rc = inflate(&z, Z_FINISH);
    size_t produced = z.total_out;
    size_t left = z.avail_in;
    inflateEnd(&z);
    if (produced > cap) return 2;
    if (rc != Z_STREAM_END || left != 0) return 0;
    *out_len = produced;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    static const size_t caps[] = {0, 1, 64, 1000, 4096, 65536, 1u << 20};
    grpc_codec_algo algo = (data[0] & 1) ? GRPC_CODEC_DEFLATE : GRPC_CODEC_GZIP;
    size_t cap = caps[(data[0] >> 1) % (sizeof caps / sizeof caps[0])];
    const uint8_t *in = data + 1;
    size_t len = size - 1;
    if (!inf) inf = grpc_inflater_new();
    if (!def) def = grpc_deflater_new(GRPC_CODEC_LEVEL_DEFAULT);
    FUZZ_CHECK(inf && def, "out of memory");

    grpc_codec_buf out = {0};
    int rc = grpc_inflate(inf, algo, in, len, cap, &out);
    FUZZ_CHECK(out.cap <= cap, "buffer of %zu bytes under a cap of %zu", out.cap, cap);
    FUZZ_CHECK(rc != GRPC_INFLATE_NOMEM, "out of memory");

    uint8_t *want = malloc(cap + 1);
    size_t want_len = 0;
    int ref = reference(algo, in, len, cap, want, &want_len);
    if (rc == GRPC_INFLATE_OK) {
        FUZZ_CHECK(ref == 1, "inflated %zu bytes, reference says %d", out.len, ref);
        FUZZ_CHECK(out.len == want_len, "%zu bytes, reference %zu", out.len, want_len);
        FUZZ_CHECK(out.len == 0 || memcmp(out.p, want, out.len) == 0, "bytes differ");
        /* what came out goes back in and out again */
        size_t bound = grpc_codec_bound(def, algo, out.len);
        uint8_t *c = malloc(bound);
        size_t clen = grpc_deflate(def, algo, out.p, out.len, c, bound);
        FUZZ_CHECK(clen > 0, "compressing %zu bytes failed", out.len);
        grpc_codec_buf back = {0};
        FUZZ_CHECK(grpc_inflate(inf, algo, c, clen, out.len, &back) == GRPC_INFLATE_OK,
                   "round trip failed");
        FUZZ_CHECK(back.len == out.len && (out.len == 0 || memcmp(back.p, out.p, out.len) == 0),
                   "round trip differs");
        grpc_codec_buf_free(&back);
        free(c);
    } else if (rc == GRPC_INFLATE_TOO_BIG) {
        FUZZ_CHECK(ref == 2, "refused as too big, reference says %d", ref);
    } else {
        FUZZ_CHECK(ref == 0, "error %d (%s), reference decoded it (%d)", rc,
                   grpc_inflate_strerror(rc), ref);
    }
    free(want);
    grpc_codec_buf_free(&out);
    return 0;
}

FUZZ_CASES(FUZZ_CASE(""), FUZZ_CASE("\x00"), FUZZ_CASE("\x01"),
           /* gzip of "hello\n" */
           FUZZ_CASE("\x0c\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xcb\x48\xcd\xc9\xc9\xe7\x02"
                     "\x00\x20\x30\x3a\x36\x06\x00\x00\x00"),
           /* the same under a cap of 1 byte */
           FUZZ_CASE("\x02\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xcb\x48\xcd\xc9\xc9\xe7\x02"
                     "\x00\x20\x30\x3a\x36\x06\x00\x00\x00"),
           /* zlib format of "hello\n", and with trailing bytes */
           FUZZ_CASE("\x0d\x78\x9c\xcb\x48\xcd\xc9\xc9\xe7\x02\x00\x08\x4b\x02\x1f"),
           FUZZ_CASE("\x0d\x78\x9c\xcb\x48\xcd\xc9\xc9\xe7\x02\x00\x08\x4b\x02\x1fxx"),
           /* a preset-dictionary header */
           FUZZ_CASE("\x0d\x78\xbb\x00\x00\x00\x01"));
