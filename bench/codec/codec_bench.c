/* zlib against libdeflate for whole gRPC messages: compress and inflate
 * one message of 1 KiB and of 64 KiB, each many times, and print ns per
 * message and the compressed size. The data is protobuf-like text
 * (JSON-ish records with counters), compressible as typical messages are.
 *
 * zlib is timed as the codec would use it: one stream kept and reset per
 * message (deflateReset / inflateReset). Both at level 6 (zlib's default).
 * Build and run: bench/codec/run. */
#include <libdeflate.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* Minimum over rounds of the mean ns per iteration of op: the minimum is
 * the least disturbed by other load on a shared machine. */
#define ROUNDS 9
#define TIME_MIN(result, budget_s, body)                                      \
    do {                                                                      \
        double best_ = 1e30;                                                  \
        for (int r_ = 0; r_ < ROUNDS; r_++) {                                 \
            long it_ = 0;                                                     \
            double t0_ = now(), t_;                                           \
            do {                                                              \
                body;                                                         \
                it_++;                                                        \
            } while ((t_ = now()) - t0_ < (budget_s) * 1e9 / ROUNDS);         \
            if ((t_ - t0_) / it_ < best_) best_ = (t_ - t0_) / it_;           \
        }                                                                     \
        (result) = best_;                                                     \
    } while (0)

static void sample(uint8_t *p, size_t n)
{
    size_t o = 0;
    for (unsigned i = 0; o < n; i++) {
        char line[96];
        int k = snprintf(line, sizeof line,
                         "{\"rider\":\"r-%05u\",\"lat\":52.%04u,\"lon\":13.%04u,\"state\":%u},",
                         i % 5000, i * 37 % 10000, i * 91 % 10000, i % 4);
        for (int j = 0; j < k && o < n; j++) p[o++] = (uint8_t)line[j];
    }
}

#define LEVEL 6

/* --instructions: each operation a fixed number of times in its own
 * function, for `valgrind --tool=callgrind` (instruction counts are the
 * figure a shared machine cannot disturb; bench/codec/run --instructions). */
#define INSTR_ITERS 50

__attribute__((noinline)) static size_t zlib_compress(z_stream *z, const uint8_t *in, size_t n,
                                                      uint8_t *out, size_t cap)
{
    deflateReset(z);
    z->next_in = (Bytef *)in; z->avail_in = (uInt)n;
    z->next_out = out; z->avail_out = (uInt)cap;
    if (deflate(z, Z_FINISH) != Z_STREAM_END) abort();
    return z->total_out;
}

__attribute__((noinline)) static void zlib_inflate(z_stream *z, const uint8_t *in, size_t n,
                                                   uint8_t *out, size_t cap)
{
    inflateReset(z);
    z->next_in = (Bytef *)in; z->avail_in = (uInt)n;
    z->next_out = out; z->avail_out = (uInt)cap;
    if (inflate(z, Z_FINISH) != Z_STREAM_END) abort();
}

__attribute__((noinline)) static size_t libdeflate_compress(struct libdeflate_compressor *c, int gz,
                                                            const uint8_t *in, size_t n,
                                                            uint8_t *out, size_t cap)
{
    size_t r = gz ? libdeflate_gzip_compress(c, in, n, out, cap) : libdeflate_zlib_compress(c, in, n, out, cap);
    if (!r) abort();
    return r;
}

__attribute__((noinline)) static void libdeflate_inflate(struct libdeflate_decompressor *d, int gz,
                                                         const uint8_t *in, size_t n, uint8_t *out,
                                                         size_t cap)
{
    size_t got;
    enum libdeflate_result r = gz ? libdeflate_gzip_decompress(d, in, n, out, cap, &got)
                                  : libdeflate_zlib_decompress(d, in, n, out, cap, &got);
    if (r != LIBDEFLATE_SUCCESS || got != cap) abort();
}

static void sample(uint8_t *p, size_t n);

/* One size and wrapper, every operation INSTR_ITERS times; the function
 * names carry size and format for callgrind_annotate. */
#define INSTR_CASE(NAME, SIZE, GZ)                                                          \
    __attribute__((noinline)) static void NAME(void)                                       \
    {                                                                                      \
        size_t n = SIZE, cap = 2 * SIZE + 1024, clen = 0;                                   \
        uint8_t *src = malloc(n), *c = malloc(cap), *out = malloc(n);                       \
        sample(src, n);                                                                    \
        z_stream zd, zi;                                                                   \
        memset(&zd, 0, sizeof zd);                                                         \
        memset(&zi, 0, sizeof zi);                                                         \
        deflateInit2(&zd, LEVEL, Z_DEFLATED, GZ ? 31 : 15, 8, Z_DEFAULT_STRATEGY);         \
        inflateInit2(&zi, GZ ? 31 : 15);                                                   \
        struct libdeflate_compressor *lc = libdeflate_alloc_compressor(LEVEL);             \
        struct libdeflate_decompressor *ld = libdeflate_alloc_decompressor();              \
        for (int i = 0; i < INSTR_ITERS; i++) clen = zlib_compress(&zd, src, n, c, cap);   \
        for (int i = 0; i < INSTR_ITERS; i++) zlib_inflate(&zi, c, clen, out, n);          \
        for (int i = 0; i < INSTR_ITERS; i++) clen = libdeflate_compress(lc, GZ, src, n, c, cap); \
        for (int i = 0; i < INSTR_ITERS; i++) libdeflate_inflate(ld, GZ, c, clen, out, n); \
        deflateEnd(&zd);                                                                   \
        inflateEnd(&zi);                                                                   \
        libdeflate_free_compressor(lc);                                                    \
        libdeflate_free_decompressor(ld);                                                  \
        free(src);                                                                         \
        free(c);                                                                           \
        free(out);                                                                         \
    }

INSTR_CASE(case_1k_gzip, 1024, 1)
INSTR_CASE(case_1k_deflate, 1024, 0)
INSTR_CASE(case_64k_gzip, 65536, 1)
INSTR_CASE(case_64k_deflate, 65536, 0)

int main(int argc, char **argv)
{
    if (argc > 2 && strcmp(argv[1], "--instructions") == 0) {
        static const struct {
            const char *name;
            void (*fn)(void);
        } cases[] = {{"1k-gzip", case_1k_gzip}, {"1k-deflate", case_1k_deflate},
                     {"64k-gzip", case_64k_gzip}, {"64k-deflate", case_64k_deflate}};
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
            if (strcmp(argv[2], cases[i].name) == 0) cases[i].fn();
        return 0;
    }
    double budget_s = argc > 1 ? atof(argv[1]) : 0.5; /* per measurement, over ROUNDS rounds */
    static const size_t sizes[] = {1024, 65536};
    static const char *const wrap[] = {"gzip", "deflate"};
    printf("%-8s %-7s %-10s %12s %12s %10s\n", "size", "format", "library", "compress ns",
           "inflate ns", "bytes");
    for (size_t si = 0; si < 2; si++) {
        size_t n = sizes[si];
        uint8_t *src = malloc(n), *c = malloc(2 * n + 1024), *out = malloc(n);
        sample(src, n);
        for (int w = 0; w < 2; w++) {
            int bits = w == 0 ? 31 : 15;
            /* zlib */
            z_stream zd, zi;
            memset(&zd, 0, sizeof zd);
            memset(&zi, 0, sizeof zi);
            deflateInit2(&zd, LEVEL, Z_DEFLATED, bits, 8, Z_DEFAULT_STRATEGY);
            inflateInit2(&zi, bits);
            size_t clen = 0;
            double zc, zin;
            TIME_MIN(zc, budget_s, {
                deflateReset(&zd);
                zd.next_in = src; zd.avail_in = (uInt)n;
                zd.next_out = c; zd.avail_out = (uInt)(2 * n + 1024);
                if (deflate(&zd, Z_FINISH) != Z_STREAM_END) abort();
                clen = zd.total_out;
            });
            TIME_MIN(zin, budget_s, {
                inflateReset(&zi);
                zi.next_in = c; zi.avail_in = (uInt)clen;
                zi.next_out = out; zi.avail_out = (uInt)n;
                if (inflate(&zi, Z_FINISH) != Z_STREAM_END) abort();
            });
            printf("%-8zu %-7s %-10s %12.0f %12.0f %10zu\n", n, wrap[w], "zlib", zc, zin, clen);
            deflateEnd(&zd);
            inflateEnd(&zi);
            /* libdeflate */
            struct libdeflate_compressor *lc = libdeflate_alloc_compressor(LEVEL);
            struct libdeflate_decompressor *ld = libdeflate_alloc_decompressor();
            double lcns, lin;
            TIME_MIN(lcns, budget_s, {
                clen = w == 0 ? libdeflate_gzip_compress(lc, src, n, c, 2 * n + 1024)
                              : libdeflate_zlib_compress(lc, src, n, c, 2 * n + 1024);
                if (!clen) abort();
            });
            TIME_MIN(lin, budget_s, {
                size_t got;
                enum libdeflate_result r = w == 0 ? libdeflate_gzip_decompress(ld, c, clen, out, n, &got)
                                                  : libdeflate_zlib_decompress(ld, c, clen, out, n, &got);
                if (r != LIBDEFLATE_SUCCESS || got != n) abort();
            });
            printf("%-8zu %-7s %-10s %12.0f %12.0f %10zu\n", n, wrap[w], "libdeflate", lcns, lin,
                   clen);
            libdeflate_free_compressor(lc);
            libdeflate_free_decompressor(ld);
        }
        free(src);
        free(c);
        free(out);
    }
    return 0;
}
