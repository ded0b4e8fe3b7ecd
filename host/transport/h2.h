/* HTTP/2 with nghttp2: the server session of a connection, its callbacks
 * (which drive the gRPC calls) and the limits, including those
 * Debian's libnghttp2 1.52 does not have (see h2.c and docs/transport.md). */
#ifndef RPCHOST_HOST_H2_H
#define RPCHOST_HOST_H2_H

#include "config/config.h"
#include "transport/conn.h"

/* What the layer above (rpc/: one gRPC call per request stream) does with
 * each stream, as nghttp2 gives its user callbacks: the one seam between
 * the transport and the calls. A stream's rh_call is opaque here; it is
 * the stream's nghttp2 user data from open to close. All run on the
 * connection's worker, from inside nghttp2 (mem_recv / mem_send) except
 * close_all. Every member is required. */
typedef struct h2_stream_ops {
    /* The first HEADERS of a request stream. NULL resets the stream. */
    rh_call *(*open)(conn *c, int32_t stream_id);
    /* One request header field: 0, or an nghttp2 error code to return from
     * nghttp2's header callback (the stream is then reset). */
    int (*header)(rh_call *call, const uint8_t *name, size_t namelen, const uint8_t *value,
                  size_t valuelen);
    /* The request header list's size so far, as RFC 9113 counts it (read
     * when header failed, to tell the hard limit from the soft one). */
    uint32_t (*header_bytes)(const rh_call *call);
    void (*headers_end)(rh_call *call);
    /* The client ended its side (END_STREAM). */
    void (*remote_end)(rh_call *call);
    /* A DATA chunk; `last` when its frame carries END_STREAM. The op
     * returns the flow-control window of what it took. */
    void (*data)(rh_call *call, const uint8_t *data, size_t len, bool last);
    /* The stream closed (reset, or done): the stream's hold on the call
     * ends; it may be freed on return. */
    void (*close)(rh_call *call, uint32_t error_code);
    /* Writes one DATA frame of a response (nghttp2's send_data callback;
     * the data source's ptr is the call). */
    int (*send_data)(rh_call *call, const uint8_t *framehd, size_t length);
    /* The connection is going without nghttp2 closing its streams: end
     * the call of every open stream of c (c->calls). */
    void (*close_all)(conn *c);
} h2_stream_ops;

/* Builds the shared callbacks and options from the settings; ops (static
 * storage) drive the streams of every session. */
int h2_init(const rh_settings *s, const h2_stream_ops *ops);
void h2_free(void);
/* Creates the server session of c and queues our SETTINGS. */
int h2_session_new(conn *c);
/* Ends the call of every open stream of c (the connection is closing). */
void h2_close_streams(conn *c);

/* Opaque data of the shutdown PING (stage two follows its ACK). */
extern const uint8_t h2_drain_ping[8];

#endif
