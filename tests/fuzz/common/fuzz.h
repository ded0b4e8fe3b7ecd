/* What every harness in tests/fuzz/<target>/ defines, and the two ways it
 * is built:
 *  - libFuzzer (tests/fuzz/run: clang -fsanitize=fuzzer,address,undefined)
 *    calls LLVMFuzzerTestOneInput with generated inputs;
 *  - the regression test (ctest, normal compiler) links driver.c, whose
 *    main() feeds the harness's built-in cases (FUZZ_CASES) and every file
 *    of the target's corpus directory, so every crash found stays fixed.
 *
 * A harness reports a broken invariant with FUZZ_CHECK: a message on
 * stderr and abort(), which both libFuzzer and ctest see as a failure. */
#ifndef RPCHOST_FUZZ_H
#define RPCHOST_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Optional one-time set-up (libFuzzer calls it if defined). */
int LLVMFuzzerInitialize(int *argc, char ***argv);

typedef struct fuzz_case {
    const char *data;
    size_t len;
} fuzz_case;

/* Built-in tricky inputs: FUZZ_CASES(FUZZ_CASE("..."), ...) once per
 * harness. String literals may hold NULs ("\0"); the length excludes the
 * literal's terminating NUL. */
#define FUZZ_CASE(lit) {(lit), sizeof(lit) - 1}
#define FUZZ_CASES(...)                                                       \
    const fuzz_case fuzz_cases[] = {__VA_ARGS__};                             \
    const size_t fuzz_n_cases = sizeof fuzz_cases / sizeof fuzz_cases[0]
extern const fuzz_case fuzz_cases[];
extern const size_t fuzz_n_cases;

#define FUZZ_CHECK(cond, ...)                                                 \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "%s:%d: invariant broken: %s: ", __FILE__,        \
                    __LINE__, #cond);                                         \
            fprintf(stderr, __VA_ARGS__);                                     \
            fputc('\n', stderr);                                              \
            abort();                                                          \
        }                                                                     \
    } while (0)

/* A small deterministic generator for choices a harness derives from its
 * input (chunk sizes, ...): the same input always takes the same path. */
typedef struct fuzz_rng {
    uint64_t s;
} fuzz_rng;

static inline uint32_t fuzz_rng_next(fuzz_rng *r)
{
    r->s = r->s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(r->s >> 33);
}

/* Writes a varint ending just before *end; returns the new start. */
static inline uint8_t *prepend_varint(uint8_t *end, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    do {
        tmp[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    end -= n;
    memcpy(end, tmp, n);
    return end;
}

#endif
