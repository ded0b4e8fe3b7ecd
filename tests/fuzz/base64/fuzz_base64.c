/* lib/base64 (-bin metadata): decoding any text stays inside
 * base64_decoded_max and either fails or gives bytes that encode back to
 * the same text (up to padding and ignored trailing bits); encoding any
 * bytes, padded or not, decodes back to them. */
#include <errno.h>
#include <string.h>

#include "base64.h"
#include "fuzz.h"

static void roundtrip(const uint8_t *data, size_t size, bool pad)
{
    size_t elen = base64_encoded_len(size, pad);
    char *enc = malloc(elen ? elen : 1);
    uint8_t *dec = malloc(base64_decoded_max(elen));
    if (!enc || !dec) goto done;
    size_t e = base64_encode(enc, data, size, pad);
    FUZZ_CHECK(e == elen, "encoded %zu, announced %zu", e, elen);
    size_t n = 0;
    int rv = base64_decode(dec, &n, enc, e);
    FUZZ_CHECK(rv == 0, "own encoding (pad %d) refused: %d", pad, rv);
    FUZZ_CHECK(n == size && memcmp(dec, data, size) == 0, "decode(encode(x)) != x");
done:
    free(enc);
    free(dec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = malloc(size ? size : 1);
    size_t max = base64_decoded_max(size);
    uint8_t *out = malloc(max);
    if (!in || !out) goto done;
    memcpy(in, data, size);
    size_t n = (size_t)-1;
    int rv = base64_decode(out, &n, in, size);
    FUZZ_CHECK(rv == 0 || rv == -EINVAL, "unexpected return %d", rv);
    if (rv == 0) {
        FUZZ_CHECK(n <= max, "decoded %zu, max %zu", n, max);
        /* Unpadded re-encoding equals the input without its padding, but
         * for the last character whose unused low bits may differ. */
        size_t stripped = size;
        while (stripped && in[stripped - 1] == '=') stripped--;
        size_t elen = base64_encoded_len(n, false);
        FUZZ_CHECK(elen == stripped, "%zu bytes re-encode to %zu chars, input had %zu", n,
                   elen, stripped);
        char *enc = malloc(elen ? elen : 1);
        if (enc) {
            base64_encode(enc, out, n, false);
            FUZZ_CHECK(elen == 0 || memcmp(enc, in, elen - 1) == 0, "re-encoding differs");
            free(enc);
        }
    }
    roundtrip(data, size, false);
    roundtrip(data, size, true);
done:
    free(in);
    free(out);
    return 0;
}

FUZZ_CASES(FUZZ_CASE(""), FUZZ_CASE("="), FUZZ_CASE("=="), FUZZ_CASE("===="),
           FUZZ_CASE("A"), FUZZ_CASE("AA"), FUZZ_CASE("AA=="), FUZZ_CASE("AAA="),
           FUZZ_CASE("AA="), FUZZ_CASE("A==="), FUZZ_CASE("AB=C"), FUZZ_CASE("AAAA===="),
           FUZZ_CASE("-_-_"), FUZZ_CASE("QQ\0A"), FUZZ_CASE("////++++"));
