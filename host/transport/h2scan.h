/* h2scan: frame boundaries of a connection's inbound HTTP/2 bytes, to drop
 * RST_STREAM frames for streams the client never opened.
 *
 * Why: gRPC's C core (grpcio for Python, Ruby, C++, PHP, ...) sends
 * RST_STREAM for a call cancelled right after it started, before the
 * call's HEADERS were written: the stream is idle on the wire, and
 * RFC 9113 6.4 makes that a connection error, which nghttp2 enforces. One
 * cancelled call then ends every other call on the connection
 * (grpc/grpc#19655, #38758). The call was never seen, so there is nothing
 * to cancel: the frame is dropped, as gRPC's own server does.
 *
 * Ownership: h2scan lives in the conn, no allocation. Thread: the
 * connection's worker. Cost: one branch per frame header, not per byte. */
#ifndef RPCHOST_HOST_TRANSPORT_H2SCAN_H
#define RPCHOST_HOST_TRANSPORT_H2SCAN_H

#include <stddef.h>
#include <stdint.h>

#define H2SCAN_PREFACE_LEN 24 /* "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" */
#define H2SCAN_FRAME_HDR 9

typedef struct h2scan {
    uint32_t preface_left;   /* client magic bytes still to pass */
    uint32_t body_left;      /* bytes of the current frame's payload */
    uint8_t hdr[H2SCAN_FRAME_HDR]; /* a frame header split across reads */
    uint8_t hdr_have;
    uint8_t skipping;        /* the current payload is dropped */
    uint32_t max_opened;     /* highest client stream id with HEADERS */
    uint64_t dropped;        /* RST_STREAM frames dropped */
} h2scan;

void h2scan_init(h2scan *s);

/* Called with each run of bytes to hand on (in order); a non-zero return
 * stops the scan and is returned by h2scan_feed. */
typedef int (*h2scan_sink)(void *arg, const uint8_t *data, size_t n);

/* Splits data into frames, passing on every byte but those of dropped
 * frames. A frame header split across calls is held (at most 8 bytes)
 * until it is whole. */
int h2scan_feed(h2scan *s, const uint8_t *data, size_t n, h2scan_sink sink, void *arg);

#endif
