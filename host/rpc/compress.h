/* Message compression of gRPC calls (lib/grpc_codec.h does the bytes):
 * request messages inflated under the receive limits, response messages
 * compressed when the call has an algorithm for them.
 *
 * The codec state and its buffers belong to the worker (struct
 * compress_scratch, made on the first compressed message), so a call
 * that never compresses costs no memory and a branch or two. Everything
 * here runs on the call's worker thread. */
#ifndef RPCHOST_HOST_COMPRESS_H
#define RPCHOST_HOST_COMPRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rpc/call.h"
#include "grpc_codec.h"

typedef struct compress_scratch {
    grpc_inflater *inflater;
    grpc_codec_buf inflated; /* the request message being decoded */
    size_t charged;          /* of it, counted in the call's conn->rx_bytes */
    grpc_deflater *deflater;
    buf packed;              /* a response serialised before compressing */
    buf framed;              /* a compressed response with its prefix */
} compress_scratch;

/* Inflates a compressed request message into the worker's buffer, at most
 * what max_recv_message and the connection's receive budget still allow,
 * and charges the result to that budget. On success *out points at the
 * inflated bytes until compress_request_done; on failure the call was
 * answered (INTERNAL or RESOURCE_EXHAUSTED) and -1 is returned. */
int compress_inflate_request(rh_call *call, const grpc_frame_msg *wire, grpc_frame_msg *out);
/* The inflated message was decoded: uncharges it, frees a large buffer. */
void compress_request_done(rh_call *call);

/* Whether a response message of n serialised bytes goes compressed. */
static inline bool compress_wanted(const rh_call *call, size_t n, uint32_t flags)
{
    if (!call->resp_enc || (flags & RH_SEND_NO_COMPRESS)) return false;
    return call->resp_enc_forced || n >= call->w->s->compression_min_bytes;
}

/* Compresses a serialised response message (msg, n bytes) into a framed
 * message (prefix with the compressed flag) in the worker's scratch:
 * *framed / *framed_len are valid until the next call on this worker.
 * Returns 0, or -1 when the message should go uncompressed (the codec
 * failed, or a configured -- not forced -- compression would not make it
 * smaller). */
int compress_response(rh_call *call, const uint8_t *msg, size_t n, const uint8_t **framed,
                      size_t *framed_len);
/* Scratch to serialise a response of n bytes (plus prefix) into before
 * compress_response; NULL without memory. */
uint8_t *compress_pack_buf(rh_call *call, size_t n);

/* The response was queued: frees scratch a large message grew (a worker
 * that sent one 4 MiB response must not keep 8 MiB for good). */
void compress_response_done(worker *w);

/* At request headers: the algorithm for responses from [rpchost]
 * compression, if the client accepts it. */
void compress_choose(rh_call *call);

/* Worker teardown. */
void compress_scratch_free(compress_scratch *zs);

#endif
