/* lib/grpc_frame: re-assembly of length-prefixed messages fed in random
 * chunkings, checked against a reference parser that sees the whole
 * stream at once.
 *
 * Input: byte 0 picks the receive limit, bytes 1..8 seed the chunking,
 * the rest is the stream. Each chunk is copied into its own allocation and
 * freed after it was fed, so a message pointer kept past its chunk (or a
 * read past it) is caught by ASan. */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "grpc_frame.h"

/* The reference: message i of the stream, or -EMSGSIZE / 0 (truncated or
 * end). */
typedef struct ref_msg {
    size_t off; /* of the payload in the stream */
    uint32_t len;
    bool compressed;
} ref_msg;

static int ref_next(const uint8_t *s, size_t len, size_t *pos, size_t max, ref_msg *m)
{
    if (len - *pos < GRPC_FRAME_PREFIX) return 0;
    const uint8_t *p = s + *pos;
    uint32_t n = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4];
    if (n > max) return -EMSGSIZE;
    if (len - *pos - GRPC_FRAME_PREFIX < n) return 0;
    m->off = *pos + GRPC_FRAME_PREFIX;
    m->len = n;
    m->compressed = p[0] & 1;
    *pos += GRPC_FRAME_PREFIX + n;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 9) return 0;
    static const size_t limits[] = {0, 1, 4, 5, 16, 255, 256, 257, 4096, 4u << 20};
    size_t max = limits[data[0] % (sizeof limits / sizeof limits[0])];
    fuzz_rng rng = {0};
    memcpy(&rng.s, data + 1, 8);
    const uint8_t *s = data + 9;
    size_t len = size - 9;

    grpc_frame_reader r;
    grpc_frame_reader_init(&r, max);
    size_t fed = 0, ref_pos = 0, got = 0;
    bool failed = false;
    while (fed < len && !failed) {
        /* Chunks mostly small (split prefixes), sometimes large. */
        uint32_t k = fuzz_rng_next(&rng);
        size_t chunk = (k & 3) == 0 ? 1 + (k >> 2) % 4096 : 1 + (k >> 2) % 9;
        if (chunk > len - fed) chunk = len - fed;
        uint8_t *c = malloc(chunk);
        if (!c) break;
        memcpy(c, s + fed, chunk);
        size_t off = 0;
        for (;;) {
            size_t consumed = 0;
            grpc_frame_msg msg = {0};
            int rv = grpc_frame_feed(&r, c + off, chunk - off, &consumed, &msg);
            FUZZ_CHECK(consumed <= chunk - off, "consumed %zu of %zu", consumed, chunk - off);
            off += consumed;
            ref_msg want;
            if (rv == 1) {
                int rr = ref_next(s, len, &ref_pos, max, &want);
                FUZZ_CHECK(rr == 1, "reader gave message %zu, reference says %d", got, rr);
                FUZZ_CHECK(msg.len == want.len, "message %zu: len %u, want %u", got, msg.len,
                           want.len);
                FUZZ_CHECK(msg.compressed == want.compressed, "message %zu: flag", got);
                FUZZ_CHECK(msg.len == 0 || memcmp(msg.data, s + want.off, msg.len) == 0,
                           "message %zu: payload differs", got);
                got++;
                continue; /* the rest of this chunk, if any */
            }
            if (rv == -EMSGSIZE) {
                int rr = ref_next(s, len, &ref_pos, max, &want);
                FUZZ_CHECK(rr == -EMSGSIZE, "reader refused message %zu, reference says %d",
                           got, rr);
                FUZZ_CHECK(r.over_len > max, "over_len %u not over %zu", r.over_len, max);
                failed = true;
                break;
            }
            FUZZ_CHECK(rv == 0, "unexpected return %d", rv);
            FUZZ_CHECK(off == chunk, "returned 0 with %zu bytes left", chunk - off);
            break;
        }
        free(c);
        fed += chunk;
    }
    if (!failed) {
        /* Everything fed: the reference must have nothing complete left,
         * and "partial" must match what is left over. */
        ref_msg want;
        size_t pos = ref_pos;
        int rr = ref_next(s, len, &pos, max, &want);
        if (rr == -EMSGSIZE) {
            /* Only possible if the reader still lacks the prefix: the
             * stream ended inside it... which cannot be: the reference
             * needs the whole prefix too. */
            FUZZ_CHECK(0, "reference refused a message the reader never saw");
        }
        FUZZ_CHECK(rr == 0, "reader missed message %zu", got);
        FUZZ_CHECK(grpc_frame_reader_partial(&r) == (ref_pos < len),
                   "partial %d but %zu bytes after the last message",
                   grpc_frame_reader_partial(&r), len - ref_pos);
    }
    grpc_frame_reader_free(&r);
    return 0;
}

FUZZ_CASES(
    /* limit 0, one empty message */
    FUZZ_CASE("\x00" "12345678" "\x00\x00\x00\x00\x00"),
    /* a prefix split byte by byte, then the body */
    FUZZ_CASE("\x04" "\x00\x00\x00\x00\x00\x00\x00\x00" "\x01\x00\x00\x00\x03" "abc"),
    /* over the limit */
    FUZZ_CASE("\x01" "abcdefgh" "\x00\x00\x00\x00\x02" "xy"),
    /* max length prefix with a 4 MiB limit */
    FUZZ_CASE("\x09" "zzzzzzzz" "\x00\xff\xff\xff\xff"),
    /* two messages and a truncated third */
    FUZZ_CASE("\x06" "\x10\x20\x30\x40\x50\x60\x70\x80" "\x00\x00\x00\x00\x01" "A"
              "\x01\x00\x00\x00\x02" "BC" "\x00\x00\x00"),
);
