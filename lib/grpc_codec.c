#include "grpc_codec.h"

#include <libdeflate.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static const char *const names[GRPC_CODEC_COUNT] = {"identity", "gzip", "deflate"};

int grpc_codec_from_name(const char *name, size_t len)
{
    for (int a = 0; a < GRPC_CODEC_COUNT; a++)
        if (strlen(names[a]) == len && memcmp(names[a], name, len) == 0) return a;
    return -1;
}

const char *grpc_codec_name(grpc_codec_algo algo)
{
    return (unsigned)algo < GRPC_CODEC_COUNT ? names[algo] : "?";
}

static bool is_space(char c) { return c == ' ' || c == '\t'; }

unsigned grpc_codec_parse_accept(const char *value, size_t len)
{
    unsigned set = GRPC_CODEC_BIT(GRPC_CODEC_IDENTITY);
    size_t i = 0;
    while (i < len) {
        size_t start = i;
        while (i < len && value[i] != ',') i++;
        size_t end = i++;
        while (start < end && is_space(value[start])) start++;
        while (end > start && is_space(value[end - 1])) end--;
        int a = grpc_codec_from_name(value + start, end - start);
        if (a >= 0) set |= GRPC_CODEC_BIT(a);
    }
    return set;
}

/* ------------------------------------------------------------------------
 * Inflating: libdeflate in one go when the output fits the buffer it is
 * given (2-3x fewer instructions than zlib: bench/codec/run
 * --instructions), zlib streaming otherwise, so the cap stays exact.
 * ---------------------------------------------------------------------- */

struct grpc_inflater {
    struct libdeflate_decompressor *fast;
    /* One stream per wrapper, set up on first use and reset per message:
     * inflateReset keeps the 32 KiB window and the state allocated. */
    z_stream z[GRPC_CODEC_COUNT];
    bool ready[GRPC_CODEC_COUNT];
};

grpc_inflater *grpc_inflater_new(void)
{
    grpc_inflater *inf = calloc(1, sizeof *inf);
    if (!inf) return NULL;
    inf->fast = libdeflate_alloc_decompressor();
    if (!inf->fast) {
        free(inf);
        return NULL;
    }
    return inf;
}

void grpc_inflater_free(grpc_inflater *inf)
{
    if (!inf) return;
    for (int a = 0; a < GRPC_CODEC_COUNT; a++)
        if (inf->ready[a]) inflateEnd(&inf->z[a]);
    libdeflate_free_decompressor(inf->fast);
    free(inf);
}

void grpc_codec_buf_free(grpc_codec_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

static z_stream *inflate_stream(grpc_inflater *inf, grpc_codec_algo algo)
{
    z_stream *z = &inf->z[algo];
    if (inf->ready[algo]) return inflateReset(z) == Z_OK ? z : NULL;
    memset(z, 0, sizeof *z);
    /* 15: the largest window; +16: gzip wrapper only (no auto-detect, so
     * "deflate" never accepts a gzip stream or the other way round). */
    int bits = algo == GRPC_CODEC_GZIP ? 15 + 16 : 15;
    if (inflateInit2(z, bits) != Z_OK) return NULL;
    inf->ready[algo] = true;
    return z;
}

/* Grows out towards max_out: doubling (so a large message costs a few
 * reallocs), never past max_out. */
static int out_grow(grpc_codec_buf *out, size_t in_len, size_t max_out)
{
    size_t cap = out->cap ? out->cap * 2 : (in_len * 4 > 4096 ? in_len * 4 : 4096);
    if (cap > max_out) cap = max_out;
    uint8_t *p = realloc(out->p, cap);
    if (!p) return GRPC_INFLATE_NOMEM;
    out->p = p;
    out->cap = cap;
    return 0;
}

/* The output size to try the one-shot inflate with, 0 for none. gzip
 * states the size in its trailer (mod 2^32, and the sender may lie: only a
 * hint, the cap still decides); the zlib format says nothing, so the
 * buffer at hand or 8x the input. Never more than max_out: a message
 * claiming more goes straight to the streaming path, which refuses it
 * after inflating at most the cap. */
static size_t one_shot_size(grpc_codec_algo algo, const uint8_t *in, size_t in_len,
                            const grpc_codec_buf *out, size_t max_out)
{
    size_t guess;
    if (algo == GRPC_CODEC_GZIP) {
        if (in_len < 18) return 0; /* not even a header and a trailer */
        const uint8_t *t = in + in_len - 4;
        guess = (size_t)t[0] | (size_t)t[1] << 8 | (size_t)t[2] << 16 | (size_t)t[3] << 24;
        if (guess > max_out) return 0;
    } else {
        guess = in_len > SIZE_MAX / 8 ? SIZE_MAX : in_len * 8;
        if (guess < out->cap) guess = out->cap;
        if (guess < 4096) guess = 4096;
        if (guess > max_out) guess = max_out;
    }
    return guess;
}

/* libdeflate into size bytes: 1 when the whole input was one stream that
 * fit (out->len set), 0 when zlib must decide (too big for the buffer,
 * or any error: zlib's verdict is the one reported), -1 out of memory. */
static int inflate_one_shot(grpc_inflater *inf, grpc_codec_algo algo, const uint8_t *in,
                            size_t in_len, size_t size, grpc_codec_buf *out)
{
    if (size > out->cap) {
        uint8_t *p = realloc(out->p, size);
        if (!p) return -1;
        out->p = p;
        out->cap = size;
    }
    size_t in_used = 0, got = 0;
    enum libdeflate_result r =
        algo == GRPC_CODEC_GZIP
            ? libdeflate_gzip_decompress_ex(inf->fast, in, in_len, out->p, size, &in_used, &got)
            : libdeflate_zlib_decompress_ex(inf->fast, in, in_len, out->p, size, &in_used, &got);
    if (r != LIBDEFLATE_SUCCESS || in_used != in_len) return 0;
    out->len = got;
    return 1;
}

int grpc_inflate(grpc_inflater *inf, grpc_codec_algo algo, const uint8_t *in, size_t in_len,
                 size_t max_out, grpc_codec_buf *out)
{
    out->len = 0;
    if (algo != GRPC_CODEC_GZIP && algo != GRPC_CODEC_DEFLATE) return GRPC_INFLATE_CORRUPT;
    if (in_len > UINT_MAX) return GRPC_INFLATE_TOO_BIG;
    size_t size = one_shot_size(algo, in, in_len, out, max_out);
    if (size > 0) {
        int rc = inflate_one_shot(inf, algo, in, in_len, size, out);
        if (rc < 0) return GRPC_INFLATE_NOMEM;
        if (rc > 0) return GRPC_INFLATE_OK;
    }
    z_stream *z = inflate_stream(inf, algo);
    if (!z) return GRPC_INFLATE_NOMEM;
    z->next_in = (Bytef *)in;
    z->avail_in = (uInt)in_len;
    size_t produced = 0;
    uint8_t probe;
    for (;;) {
        bool probing = false;
        if (produced == out->cap && out->cap < max_out && out_grow(out, in_len, max_out) < 0)
            return GRPC_INFLATE_NOMEM;
        /* A buffer kept from a larger message may exceed this cap. */
        size_t usable = out->cap < max_out ? out->cap : max_out;
        size_t room = usable - produced;
        if (room > 0) {
            z->next_out = out->p + produced;
            z->avail_out = room > UINT_MAX ? UINT_MAX : (uInt)room;
        } else {
            /* At the cap: one more byte out means the message is too big. */
            z->next_out = &probe;
            z->avail_out = 1;
            probing = true;
        }
        uInt before = z->avail_out;
        int rc = inflate(z, Z_NO_FLUSH);
        if (probing && z->avail_out == 0) return GRPC_INFLATE_TOO_BIG;
        if (!probing) produced += before - z->avail_out;
        switch (rc) {
        case Z_STREAM_END:
            if (z->avail_in != 0) return GRPC_INFLATE_CORRUPT; /* bytes after the stream */
            out->len = produced;
            return GRPC_INFLATE_OK;
        case Z_OK:
            break;
        case Z_BUF_ERROR:
            /* No progress: with output room left, the input is used up. */
            if (z->avail_in == 0) return GRPC_INFLATE_TRUNCATED;
            break;
        case Z_MEM_ERROR:
            return GRPC_INFLATE_NOMEM;
        default: /* Z_DATA_ERROR, Z_NEED_DICT (no preset dictionaries in gRPC) */
            return GRPC_INFLATE_CORRUPT;
        }
    }
}

const char *grpc_inflate_strerror(int rc)
{
    switch (rc) {
    case GRPC_INFLATE_OK:
        return "ok";
    case GRPC_INFLATE_TOO_BIG:
        return "inflates past the size limit";
    case GRPC_INFLATE_CORRUPT:
        return "not a valid compressed stream";
    case GRPC_INFLATE_TRUNCATED:
        return "compressed stream ends early";
    case GRPC_INFLATE_NOMEM:
        return "out of memory inflating";
    default:
        return "unknown inflate error";
    }
}

/* ------------------------------------------------------------------------
 * Compressing (libdeflate: whole buffers)
 * ---------------------------------------------------------------------- */

struct grpc_deflater {
    struct libdeflate_compressor *c;
};

grpc_deflater *grpc_deflater_new(int level)
{
    if (level < 1) level = 1;
    if (level > 9) level = 9;
    grpc_deflater *d = malloc(sizeof *d);
    if (!d) return NULL;
    d->c = libdeflate_alloc_compressor(level);
    if (!d->c) {
        free(d);
        return NULL;
    }
    return d;
}

void grpc_deflater_free(grpc_deflater *d)
{
    if (!d) return;
    libdeflate_free_compressor(d->c);
    free(d);
}

size_t grpc_codec_bound(grpc_deflater *d, grpc_codec_algo algo, size_t len)
{
    return algo == GRPC_CODEC_GZIP ? libdeflate_gzip_compress_bound(d->c, len)
                                   : libdeflate_zlib_compress_bound(d->c, len);
}

size_t grpc_deflate(grpc_deflater *d, grpc_codec_algo algo, const uint8_t *in, size_t in_len,
                    uint8_t *out, size_t out_cap)
{
    switch (algo) {
    case GRPC_CODEC_GZIP:
        return libdeflate_gzip_compress(d->c, in, in_len, out, out_cap);
    case GRPC_CODEC_DEFLATE:
        return libdeflate_zlib_compress(d->c, in, in_len, out, out_cap);
    default:
        return 0;
    }
}
