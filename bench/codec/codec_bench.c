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

int main(int argc, char **argv)
{
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
