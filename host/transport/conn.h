/* One client connection: a non-blocking socket, TLS or plaintext h2c with
 * prior knowledge, an nghttp2 server session driven with mem_recv /
 * mem_send, output gathered into one buffer per loop iteration and
 * written with one SSL_write (or write), backpressure, and the handshake
 * timeout. */
#ifndef RPCHOST_HOST_CONN_H
#define RPCHOST_HOST_CONN_H

#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/core.h"
#include "event/event.h"
#include "transport/flow.h"
#include "transport/h2scan.h"
#include "transport/tls.h"

typedef struct rh_call rh_call;

/* Bytes of partly received messages one connection may hold across its
 * calls: 4 messages of the receive limit, at least 16 MiB. Without it 100
 * streams could each hold a message just under the limit. */
#define CONN_RX_BUDGET(max_recv) ((max_recv) * 4 > (16u << 20) ? (max_recv) * 4 : (16u << 20))

/* Who the peer is: shared by the connection and its calls, so a call a
 * plugin holds after the connection went away still answers peer().
 * Reference counted on the worker thread only. */
typedef struct peer_info {
    int refs;
    char *subject;     /* TLS client certificate subject, or NULL */
    char **sans;       /* its subjectAltNames */
    size_t n_sans;
    char addr[];       /* "ipv4:1.2.3.4:5", "ipv6:[::1]:5", "unix:/path" */
} peer_info;

void peer_info_release(peer_info *p);

typedef enum conn_state {
    CONN_HANDSHAKE, /* TLS handshake running */
    CONN_SNIFF,     /* no ALPN: the first bytes tell HTTP/2 from HTTP/1.1 */
    CONN_H2,        /* HTTP/2 session up */
    CONN_HTTP1,     /* HTTP/1.1 (host/web/http1.c) */
    CONN_CLOSED,
} conn_state;

/* The HTTP/2 client preface; its first bytes are what sniffing compares. */
#define CONN_H2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define CONN_H2_PREFACE_LEN 24

struct http1;

struct conn {
    ev_handle ev;
    worker *w;
    int fd;
    SSL *ssl; /* NULL for plaintext */
    nghttp2_session *h2;   /* CONN_H2 */
    struct http1 *h1;      /* CONN_HTTP1 */
    conn_state state;
    bool dirty;        /* on the worker's dirty list */
    bool in_readable;  /* on the worker's readable list */
    bool read_blocked; /* too much unsent output: stop reading */
    bool preface_seen; /* the client's SETTINGS arrived */
    bool rdhup;        /* epoll saw the peer's FIN: read to the end */
    conn *next_dirty, *next_readable;
    conn *prev, *next; /* worker's list */

    buf pend;          /* output written only in part: the rest */
    rh_timer hs_timer; /* handshake (TLS + h2 preface) timeout */
    rh_timer shutdown_timer;

    rh_call *calls;    /* open streams with a call (doubly linked) */
    /* The call of the stream the last frame was about: a request's
     * headers, data and end all name one stream in a row, so this spares
     * nghttp2's stream map lookup per header (h2.c keeps it equal to the
     * stream's user data; 0 = none). */
    int32_t last_stream_id;
    rh_call *last_call;
    uint32_t n_calls;
    size_t rx_bytes;   /* re-assembly buffers of its calls (budget: CONN_RX_BUDGET) */
    size_t send_queued; /* sum of the calls' unsent outq bytes (max_send_queue) */
    rx_hold hold;      /* request bytes held for paused calls (budget: conn_window) */
    h2scan scan;       /* inbound frames: drops idle-stream RST_STREAMs */

    /* abuse limits nghttp2 1.52 does not have */
    double reset_tokens;     /* resets the server may still issue */
    int64_t reset_refill_ns; /* last refill */
    uint32_t ping_strikes;
    int64_t last_ping_ns;
    bool goaway_notice; /* shutdown: GOAWAY(max id) + PING sent */
    bool goaway_final;  /* GOAWAY(last id) sent */
    bool closing;       /* terminate once the output is written */
    int64_t last_active_ns; /* last input, for idle_timeout_ms */
    uint8_t mx_goaway; /* mx_goaway_reason of the next GOAWAY we send; 0:
                          nghttp2 sends it on its own (protocol error) */

    uint8_t sniffed[CONN_H2_PREFACE_LEN]; /* CONN_SNIFF: first bytes seen */
    uint8_t n_sniffed;

    peer_info *peer;
    tls_source src; /* ciphertext being handed to OpenSSL (worker buffer) */
};

/* Takes ownership of fd (accepted, non-blocking). NULL on failure (fd
 * closed). */
conn *conn_new(worker *w, int fd, const struct sockaddr *sa, socklen_t salen,
               const char *unix_path);
void conn_on_event(conn *c, uint32_t events);
/* Reads what the socket has (bounded), feeding nghttp2. */
void conn_read(conn *c);
/* Produces nghttp2 output and writes it; closes a finished connection. */
void conn_flush(conn *c);
/* Cancels the calls, frees the session, closes the socket. */
void conn_close(conn *c, const char *why);
void conn_mark_dirty(conn *c);
/* Whether the connection carries requests (HTTP/2 or HTTP/1.1). */
static inline bool conn_serving(const conn *c) { return c->state == CONN_H2 || c->state == CONN_HTTP1; }
/* Whether input is read (serving, or sniffing the protocol). */
static inline bool conn_reading(const conn *c) { return conn_serving(c) || c->state == CONN_SNIFF; }

/* Graceful shutdown, stage one (GOAWAY with the max stream id + PING);
 * stage two follows the PING ack (or a timeout). */
void conn_begin_shutdown(conn *c);
void conn_final_goaway(conn *c);

/* Counts a reset the server issues; false when the budget is spent (the
 * connection is then being terminated with ENHANCE_YOUR_CALM). */
bool conn_charge_reset(conn *c);

/* --- a worker's connections (conns.c) -------------------------------------- */
/* What the event loop calls at its fixed points (server.c installs it). */
extern const worker_hooks conn_worker_hooks;
/* Output to produce at the end of this iteration / input left to read. */
void conns_mark_dirty(worker *w, conn *c);
void conns_mark_readable(worker *w, conn *c);
/* c was closed: off the worker's list, freed at the end of the iteration. */
void conns_closed(worker *w, conn *c);
/* Produces and writes the output of every dirty connection now. */
void conns_flush_dirty(worker *w);
/* Closes every connection of w and frees them (teardown). */
void conns_close_all(worker *w, const char *why);

#endif
