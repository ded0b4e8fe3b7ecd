#include "rpc/compress.h"

#include <stdio.h>
#include <stdlib.h>

#include "core/core.h"

/* Buffers above this are freed after use: a burst of large messages must
 * not leave every worker holding megabytes. */
#define KEEP_SCRATCH (64 * 1024)

static compress_scratch *scratch(worker *w)
{
    if (w->zs) return w->zs;
    compress_scratch *zs = calloc(1, sizeof *zs);
    if (!zs) return NULL;
    zs->inflater = grpc_inflater_new();
    zs->deflater = grpc_deflater_new((int)w->s->compression_level);
    if (!zs->inflater || !zs->deflater) {
        compress_scratch_free(zs);
        return NULL;
    }
    w->zs = zs;
    return zs;
}

void compress_scratch_free(compress_scratch *zs)
{
    if (!zs) return;
    grpc_inflater_free(zs->inflater);
    grpc_deflater_free(zs->deflater);
    grpc_codec_buf_free(&zs->inflated);
    free(zs->packed.p);
    free(zs->framed.p);
    free(zs);
}

void compress_choose(rh_call *call)
{
    int algo = call->w->s->compression;
    if (algo != GRPC_CODEC_IDENTITY && (call->accept_enc & GRPC_CODEC_BIT(algo)))
        call->resp_enc = (uint8_t)algo;
}

/* ------------------------------------------------------------------------
 * Requests
 * ---------------------------------------------------------------------- */

int compress_inflate_request(rh_call *call, const grpc_frame_msg *wire, grpc_frame_msg *out)
{
    char msg[256];
    const char *name = grpc_codec_name((grpc_codec_algo)call->req_enc);
    if (call->req_enc == GRPC_CODEC_IDENTITY) {
        /* PROTOCOL-HTTP2.md: a compressed flag without an encoding to
         * decode it with is an INTERNAL error. */
        call_abort(call, RH_INTERNAL,
                   "request message has the compressed flag set but the call declared no "
                   "grpc-encoding to inflate it with");
        return -1;
    }
    compress_scratch *zs = scratch(call->w);
    if (!zs) {
        call_abort(call, RH_RESOURCE_EXHAUSTED, "out of memory inflating the request message");
        return -1;
    }
    /* The inflated bytes count in the connection's receive budget like
     * gathered ones: a bomb can take at most what the limits leave. */
    conn *c = call->conn;
    size_t limit = call->w->s->max_recv_message;
    size_t budget = CONN_RX_BUDGET(limit);
    size_t used = c ? c->rx_bytes : 0;
    size_t room = used < budget ? budget - used : 0;
    size_t max_out = limit < room ? limit : room;
    int rc = grpc_inflate(zs->inflater, (grpc_codec_algo)call->req_enc, wire->data, wire->len,
                          max_out, &zs->inflated);
    if (rc != GRPC_INFLATE_OK) {
        rh_status code = RH_INTERNAL;
        if (rc == GRPC_INFLATE_TOO_BIG && max_out == limit) {
            code = RH_RESOURCE_EXHAUSTED;
            snprintf(msg, sizeof msg,
                     "Received message larger than max: the %s request message (%u bytes) "
                     "inflates past the limit of %zu bytes ([rpchost] max_recv_message)",
                     name, wire->len, limit);
        } else if (rc == GRPC_INFLATE_TOO_BIG) {
            code = RH_RESOURCE_EXHAUSTED;
            snprintf(msg, sizeof msg,
                     "the %s request message (%u bytes) inflates to more than this connection "
                     "may still hold (%zu of %zu bytes in use); send smaller messages or fewer "
                     "at once",
                     name, wire->len, used, budget);
        } else if (rc == GRPC_INFLATE_NOMEM) {
            code = RH_RESOURCE_EXHAUSTED;
            snprintf(msg, sizeof msg, "out of memory inflating the %s request message", name);
        } else {
            snprintf(msg, sizeof msg, "could not decompress the %s request message: %s", name,
                     grpc_inflate_strerror(rc));
        }
        compress_request_done(call);
        call_abort(call, code, msg);
        return -1;
    }
    if (c) {
        zs->charged = zs->inflated.cap;
        c->rx_bytes += zs->charged;
    }
    out->data = zs->inflated.p;
    out->len = (uint32_t)zs->inflated.len;
    out->compressed = false;
    return 0;
}

void compress_request_done(rh_call *call)
{
    compress_scratch *zs = call->w->zs;
    if (!zs) return;
    /* The charge is the buffer's size: it is what the memory costs. */
    if (call->conn) call->conn->rx_bytes -= zs->charged;
    zs->charged = 0;
    zs->inflated.len = 0;
    if (zs->inflated.cap > KEEP_SCRATCH) grpc_codec_buf_free(&zs->inflated);
}

/* ------------------------------------------------------------------------
 * Responses
 * ---------------------------------------------------------------------- */

uint8_t *compress_pack_buf(rh_call *call, size_t n)
{
    compress_scratch *zs = scratch(call->w);
    if (!zs) return NULL;
    zs->packed.len = zs->packed.off = 0;
    if (buf_reserve(&zs->packed, n + GRPC_FRAME_PREFIX) < 0) return NULL;
    return zs->packed.p;
}

int compress_response(rh_call *call, const uint8_t *msg, size_t n, const uint8_t **framed,
                      size_t *framed_len)
{
    compress_scratch *zs = scratch(call->w);
    if (!zs) return -1;
    grpc_codec_algo algo = (grpc_codec_algo)call->resp_enc;
    size_t bound = grpc_codec_bound(zs->deflater, algo, n);
    zs->framed.len = zs->framed.off = 0;
    if (buf_reserve(&zs->framed, bound + GRPC_FRAME_PREFIX) < 0) return -1;
    size_t clen = grpc_deflate(zs->deflater, algo, msg, n, zs->framed.p + GRPC_FRAME_PREFIX, bound);
    if (clen == 0 || clen > UINT32_MAX) {
        log_debug("stream %d: compressing a %zu-byte response failed; sent uncompressed",
                  call->stream_id, n);
        return -1;
    }
    /* Configured compression is an optimisation: not worth a larger
     * message. A plugin's explicit choice is kept (the client may be
     * checking for it, as the interop tests do). */
    if (!call->resp_enc_forced && clen >= n) return -1;
    grpc_frame_prefix(zs->framed.p, true, (uint32_t)clen);
    *framed = zs->framed.p;
    *framed_len = clen + GRPC_FRAME_PREFIX;
    return 0;
}

void compress_response_done(worker *w)
{
    compress_scratch *zs = w->zs;
    if (!zs) return;
    if (zs->packed.cap > KEEP_SCRATCH) buf_clear(&zs->packed, 0);
    if (zs->framed.cap > KEEP_SCRATCH) buf_clear(&zs->framed, 0);
}
