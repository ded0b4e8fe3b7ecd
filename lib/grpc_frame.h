/* gRPC length-prefixed messages (grpc/grpc doc/PROTOCOL-HTTP2.md):
 *   Length-Prefixed-Message = Compressed-Flag(1 byte) Length(4 bytes, BE) Message
 *
 * grpc_frame_reader re-assembles messages from the DATA chunks of one
 * stream, however the peer split them (a prefix may itself be split). It
 * copies only when it must: a message that lies whole inside the chunk
 * being fed is returned as a pointer into that chunk (valid until the
 * caller's chunk goes away); a message spread over chunks is gathered in
 * a buffer owned by the reader, valid until the next call to
 * grpc_frame_feed or grpc_frame_reader_free.
 *
 * Used by the host (requests) and by rpcall (responses). */
#ifndef RPCHOST_LIB_GRPC_FRAME_H
#define RPCHOST_LIB_GRPC_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GRPC_FRAME_PREFIX 5

typedef struct grpc_frame_msg {
    const uint8_t *data;
    uint32_t len;
    bool compressed;
} grpc_frame_msg;

typedef struct grpc_frame_reader {
    size_t max_len;        /* largest message accepted (payload bytes) */
    uint8_t prefix[GRPC_FRAME_PREFIX];
    uint8_t prefix_have;   /* bytes of the current prefix seen */
    bool in_body;          /* prefix complete, gathering the body */
    bool compressed;       /* flag of the current message */
    uint32_t len;          /* length of the current message */
    uint32_t have;         /* body bytes gathered in buf */
    uint8_t *buf;          /* gather buffer (malloc), reused */
    size_t cap;
    uint32_t over_len;     /* length of the message that broke the limit */
} grpc_frame_reader;

void grpc_frame_reader_init(grpc_frame_reader *r, size_t max_len);
void grpc_frame_reader_free(grpc_frame_reader *r);
/* True while a message is partly received (prefix or body bytes seen):
 * end of stream then means a truncated message. */
bool grpc_frame_reader_partial(const grpc_frame_reader *r);

/* Feeds bytes. Consumes input until one whole message is available or the
 * input is exhausted; *consumed gets the bytes taken. Returns:
 *   1        a message is in *out (call again with the rest of the input)
 *   0        all input consumed, no complete message yet
 *   -EMSGSIZE  a prefix announced more than max_len (r->over_len says how
 *            much); the stream should be ended with RESOURCE_EXHAUSTED
 *   -ENOMEM  the gather buffer could not be grown */
int grpc_frame_feed(grpc_frame_reader *r, const uint8_t *data, size_t len,
                    size_t *consumed, grpc_frame_msg *out);

/* Writes the 5-byte prefix of a message of len bytes. */
static inline void grpc_frame_prefix(uint8_t out[GRPC_FRAME_PREFIX], bool compressed,
                                     uint32_t len)
{
    out[0] = compressed ? 1 : 0;
    out[1] = (uint8_t)(len >> 24);
    out[2] = (uint8_t)(len >> 16);
    out[3] = (uint8_t)(len >> 8);
    out[4] = (uint8_t)len;
}

#endif
