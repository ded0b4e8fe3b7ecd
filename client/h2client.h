/* The HTTP/2 client session of rpcall: an nghttp2 client session driven
 * through memory buffers (nghttp2_session_mem_recv / mem_send) over a
 * conn (TLS or plaintext). The owner runs the event loop: it polls the
 * socket for h2c_poll_events() and calls h2c_io() when it is ready; the
 * calls on the session (call.h) are driven from inside h2c_io(). */
#ifndef RPCALL_H2CLIENT_H
#define RPCALL_H2CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <nghttp2/nghttp2.h>

#include "conn.h"
#include "grpc_codec.h"

/* Message compression of the calls on one connection (lib/grpc_codec.h):
 * what requests are compressed with, and the codecs, made on first use.
 * One per connection: a connection is driven by one thread. */
typedef struct h2c_codec {
    grpc_codec_algo send;     /* --compress; identity = requests go as they are */
    grpc_deflater *deflater;
    grpc_inflater *inflater;
    grpc_codec_buf inflated;  /* the response message being handed over */
    uint8_t *zbuf;            /* a compressed request message */
    size_t zcap;
} h2c_codec;

typedef struct h2c {
    conn *c;
    nghttp2_session *ng;
    uint8_t *out;          /* bytes from nghttp2 not yet written */
    size_t out_len, out_off, out_cap;
    uint8_t *in;           /* read buffer */
    size_t in_cap;
    bool plaintext;
    bool got_data;         /* any byte received from the server */
    bool got_settings;     /* the server's connection preface (SETTINGS) arrived */
    bool closed;           /* socket closed or session failed */
    bool goaway;           /* server sent GOAWAY */
    uint32_t goaway_code;
    int32_t goaway_last_stream;
    char goaway_msg[160];
    struct call *calls;    /* open calls (call.c keeps the list) */
    h2c_codec codec;
    char err[512];         /* why the connection failed (closed == true) */
} h2c;

/* Starts the session and queues the preface and SETTINGS. Returns 0 or
 * -ENOMEM. c stays owned by the caller. */
int h2c_init(h2c *h, conn *c, bool plaintext);
void h2c_free(h2c *h);

/* poll() events the session waits for (POLLIN, plus POLLOUT while there
 * is something to write). */
short h2c_poll_events(const h2c *h);

/* Reads what is available, runs the session, writes what it can. Returns
 * 0, or a negative errno when the connection is gone (h->err says why;
 * every open call has been closed with UNAVAILABLE). */
int h2c_io(h2c *h);

/* Only the reading half of h2c_io (the caller flushes after submitting
 * more: bench starts new calls between the two). */
int h2c_read(h2c *h);

/* Writes what nghttp2 has queued (after submitting from outside h2c_io). */
int h2c_flush(h2c *h);

/* Sends GOAWAY and flushes it, best effort. */
void h2c_shutdown(h2c *h);

/* The HTTP/2 error code name (for messages). */
const char *h2c_error_name(uint32_t code);

#endif
