/* lib/percent: grpc-message decoding of any bytes (never fails, never
 * grows, in place gives the same as out of place, a valid %XX becomes one
 * byte and anything else stays as it is), and encode -> decode giving the
 * bytes back. */
#include <string.h>

#include "fuzz.h"
#include "percent.h"

static int hexval(uint8_t c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t cap = size ? size : 1;
    char *in = malloc(cap);
    uint8_t *out = malloc(cap), *inplace = malloc(cap);
    size_t elen = percent_encoded_len(data, size);
    char *enc = malloc(elen ? elen : 1);
    uint8_t *back = malloc(elen ? elen : 1);
    if (!in || !out || !inplace || !enc || !back) goto done;
    memcpy(in, data, size);

    /* Decode: a reference walk over the same input. */
    size_t n = percent_decode(out, in, size);
    FUZZ_CHECK(n <= size, "decoded %zu bytes from %zu", n, size);
    size_t o = 0;
    for (size_t i = 0; i < size; i++) {
        int hi, lo;
        if (data[i] == '%' && i + 2 < size && (hi = hexval(data[i + 1])) >= 0 &&
            (lo = hexval(data[i + 2])) >= 0) {
            FUZZ_CHECK(o < n && out[o] == (hi << 4 | lo), "%%-escape at %zu", i);
            i += 2;
        } else {
            FUZZ_CHECK(o < n && out[o] == data[i], "byte %zu not kept", i);
        }
        o++;
    }
    FUZZ_CHECK(o == n, "decoded %zu bytes, reference %zu", n, o);
    memcpy(inplace, data, size);
    size_t m = percent_decode(inplace, (const char *)inplace, size);
    FUZZ_CHECK(m == n && memcmp(inplace, out, n) == 0, "in-place decode differs");

    /* Encode: only printable ASCII but '%' left bare; decode gives it back. */
    size_t e = percent_encode(enc, data, size);
    FUZZ_CHECK(e == elen, "encoded %zu bytes, announced %zu", e, elen);
    for (size_t i = 0; i < e; i++)
        FUZZ_CHECK(enc[i] >= 0x20 && enc[i] <= 0x7e, "unprintable byte in the encoding");
    size_t b = percent_decode(back, enc, e);
    FUZZ_CHECK(b == size && memcmp(back, data, size) == 0, "decode(encode(x)) != x");
done:
    free(in);
    free(out);
    free(inplace);
    free(enc);
    free(back);
    return 0;
}

FUZZ_CASES(FUZZ_CASE("%"), FUZZ_CASE("%4"), FUZZ_CASE("%41"), FUZZ_CASE("%%41"),
           FUZZ_CASE("%zz%4"), FUZZ_CASE("a%2"), FUZZ_CASE("\xff\x00%00"),
           FUZZ_CASE("%E2%82%AC%"), FUZZ_CASE(""));
