/* gRPC message compression (grpc/grpc doc/compression.md): the codecs a
 * `grpc-encoding` names, shared by the host (requests in, responses out)
 * and rpcall (the other way round).
 *
 *   identity  no compression
 *   gzip      RFC 1952 (zlib's gzip wrapper)
 *   deflate   RFC 1950 (zlib format), as gRPC's core and grpc-js send it
 *
 * Inflating is streamed with a hard output cap: the output buffer grows
 * with the bytes really produced, never to what a header claims, and
 * inflating stops as soon as the cap is passed, so a small "bomb" costs at
 * most the cap in memory and time. Compressing takes a whole message (the
 * caller has it serialised anyway) and writes at most
 * grpc_codec_bound(len) bytes.
 *
 * Backends, chosen per direction by measurement (docs/transport.md,
 * "Compression"): compressing with libdeflate (whole buffers, faster than
 * zlib at the same level); inflating with libdeflate in one go when the
 * message fits the buffer it is given (gzip's trailer says the size; the
 * zlib format gets the buffer at hand or 8x the input), else with zlib's
 * streaming inflate, which holds the cap without a buffer of the cap's
 * size and gives the verdict on bad input.
 *
 * Neither object is thread-safe: one per thread (the host keeps one per
 * worker, rpcall one per connection). */
#ifndef RPCHOST_LIB_GRPC_CODEC_H
#define RPCHOST_LIB_GRPC_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum grpc_codec_algo {
    GRPC_CODEC_IDENTITY = 0,
    GRPC_CODEC_GZIP = 1,
    GRPC_CODEC_DEFLATE = 2,
} grpc_codec_algo;

#define GRPC_CODEC_COUNT 3
/* Bit of an algorithm in a set of them (what a peer accepts). */
#define GRPC_CODEC_BIT(a) (1u << (a))
/* The algorithms this module implements, as a grpc-accept-encoding value
 * (identity is implicit in gRPC and always accepted). No spaces: grpc-js
 * splits the list on ',' without trimming, so " deflate" would not match. */
#define GRPC_CODEC_ACCEPT_VALUE "gzip,deflate"
#define GRPC_CODEC_LEVEL_DEFAULT 6

/* The algorithm named by a grpc-encoding value (exact, lowercase), or -1. */
int grpc_codec_from_name(const char *name, size_t len);
const char *grpc_codec_name(grpc_codec_algo algo);
/* The set of known algorithms in a comma-separated grpc-accept-encoding
 * value (unknown names ignored; identity always included). */
unsigned grpc_codec_parse_accept(const char *value, size_t len);

/* --- inflating ----------------------------------------------------------- */

typedef struct grpc_inflater grpc_inflater;

grpc_inflater *grpc_inflater_new(void);
void grpc_inflater_free(grpc_inflater *inf);

/* The output of an inflate: owned by the caller, reused between calls (it
 * only ever grows to the largest message accepted); free with
 * grpc_codec_buf_free. */
typedef struct grpc_codec_buf {
    uint8_t *p;
    size_t len; /* bytes of the last result */
    size_t cap;
} grpc_codec_buf;

void grpc_codec_buf_free(grpc_codec_buf *b);

#define GRPC_INFLATE_OK 0
#define GRPC_INFLATE_TOO_BIG (-1)   /* more than max_out bytes: refused */
#define GRPC_INFLATE_CORRUPT (-2)   /* not a valid stream of that algorithm */
#define GRPC_INFLATE_TRUNCATED (-3) /* the input ended inside the stream */
#define GRPC_INFLATE_NOMEM (-4)

/* Inflates one whole compressed message into out (out->len = its size).
 * At most max_out bytes are ever produced or allocated (+1 byte of probe
 * to tell "exactly max_out" from "more"). Bytes after the end of the
 * compressed stream are an error (CORRUPT): a message is one stream.
 * algo must not be identity. Returns GRPC_INFLATE_*. */
int grpc_inflate(grpc_inflater *inf, grpc_codec_algo algo, const uint8_t *in, size_t in_len,
                 size_t max_out, grpc_codec_buf *out);
/* A short English reason for a GRPC_INFLATE_* code. */
const char *grpc_inflate_strerror(int rc);

/* --- compressing --------------------------------------------------------- */

typedef struct grpc_deflater grpc_deflater;

/* level 1 (fastest) .. 9 (smallest); others clamp. */
grpc_deflater *grpc_deflater_new(int level);
void grpc_deflater_free(grpc_deflater *d);

/* Largest output of compressing len bytes with algo. */
size_t grpc_codec_bound(grpc_deflater *d, grpc_codec_algo algo, size_t len);

/* Compresses in into out (out_cap >= grpc_codec_bound). Returns the
 * compressed size, or 0 on failure (then send the message uncompressed). */
size_t grpc_deflate(grpc_deflater *d, grpc_codec_algo algo, const uint8_t *in, size_t in_len,
                    uint8_t *out, size_t out_cap);

#endif
