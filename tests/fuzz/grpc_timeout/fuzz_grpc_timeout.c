/* lib/grpc_timeout: the grpc-timeout header parser against the grammar
 * (1-8 digits, one unit), and format -> parse never shortening a timeout.
 *
 * The whole input is parsed as a header value; its first 8 bytes are also
 * formatted as a nanosecond count and parsed back. */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "grpc_timeout.h"

static const int64_t unit_ns[128] = {
    ['H'] = 3600LL * 1000000000LL, ['M'] = 60LL * 1000000000LL, ['S'] = 1000000000LL,
    ['m'] = 1000000LL, ['u'] = 1000LL, ['n'] = 1LL,
};

/* The grammar, written independently. */
static int ref_parse(const uint8_t *s, size_t len, int64_t *ns)
{
    if (len < 2 || len > 9) return -EINVAL;
    uint8_t u = s[len - 1];
    if (u >= 128 || unit_ns[u] == 0) return -EINVAL;
    __int128 v = 0;
    for (size_t i = 0; i + 1 < len; i++) {
        if (s[i] < '0' || s[i] > '9') return -EINVAL;
        v = v * 10 + (s[i] - '0');
    }
    v *= unit_ns[u];
    *ns = v > INT64_MAX ? INT64_MAX : (int64_t)v;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact copy: the parser must not read past len. */
    char *s = malloc(size ? size : 1);
    if (!s) return 0;
    memcpy(s, data, size);
    int64_t ns = -1, want = -1;
    int rv = grpc_timeout_parse(s, size, &ns);
    int rr = ref_parse(data, size, &want);
    FUZZ_CHECK(rv == rr, "parse returned %d, grammar says %d", rv, rr);
    FUZZ_CHECK(rv != 0 || ns == want, "parsed %lld, want %lld", (long long)ns,
               (long long)want);
    free(s);

    if (size >= 8) {
        int64_t in;
        memcpy(&in, data, 8);
        char out[GRPC_TIMEOUT_MAX_LEN];
        memset(out, 'x', sizeof out);
        size_t n = grpc_timeout_format(in, out);
        FUZZ_CHECK(n >= 2 && n <= GRPC_TIMEOUT_MAX_LEN - 1, "formatted length %zu", n);
        FUZZ_CHECK(out[n] == 0, "not NUL-terminated");
        int64_t back = -1;
        FUZZ_CHECK(grpc_timeout_parse(out, n, &back) == 0, "cannot parse own output \"%s\"",
                   out);
        int64_t floor = in < 0 ? 0 : in;
        /* Never shorter than asked; the largest encodable value saturates. */
        FUZZ_CHECK(back >= floor || back == INT64_MAX || strcmp(out, "99999999H") == 0,
                   "%lld formatted as \"%s\" = %lld (shorter)", (long long)in, out,
                   (long long)back);
    }
    return 0;
}

FUZZ_CASES(FUZZ_CASE("1S"), FUZZ_CASE("99999999H"), FUZZ_CASE("00000000n"),
           FUZZ_CASE("123456789S"), FUZZ_CASE("S"), FUZZ_CASE(""), FUZZ_CASE("1"),
           FUZZ_CASE("-1S"), FUZZ_CASE("1 S"), FUZZ_CASE("\xff\xff\xff\xff\xff\xff\xff\x7f"),
           FUZZ_CASE("\x00\x00\x00\x00\x00\x00\x00\x80"), FUZZ_CASE("1\0S"));
