/* The host's own series (prefix rpchost_): connections, streams, bytes,
 * TLS, HTTP/2 defences, plugin lifecycle, worker loop busy time, build
 * info. Every pointer is NULL while metrics are off, and the update
 * functions of metrics.h take NULL as "do nothing", so the transport calls
 * them unconditionally. docs/metrics.md lists them. */
#ifndef RPCHOST_HOST_MX_HOST_H
#define RPCHOST_HOST_MX_HOST_H

#include <stdint.h>

#include "metrics/mx_core.h"

/* Why a connection closed (label reason). */
typedef enum mx_close_reason {
    MX_CLOSE_PEER,        /* the client closed (FIN, TLS close_notify) */
    MX_CLOSE_DONE,        /* the session ended after GOAWAY (graceful) */
    MX_CLOSE_HANDSHAKE_TIMEOUT,
    MX_CLOSE_TLS_ERROR,   /* handshake failure, no ALPN h2 */
    MX_CLOSE_IO_ERROR,    /* read/write/socket errors */
    MX_CLOSE_PROTOCOL,    /* HTTP/2 session error, connection terminated */
    MX_CLOSE_SERVER_STOP, /* drain or stop */
    MX_CLOSE_NO_MEMORY,
    MX_CLOSE_REASONS
} mx_close_reason;

/* Why the server sent a GOAWAY (label reason). */
typedef enum mx_goaway_reason {
    MX_GOAWAY_NGHTTP2,    /* sent by nghttp2 itself: a protocol error or flood */
    MX_GOAWAY_SHUTDOWN,   /* graceful stop (notice and final frame) */
    MX_GOAWAY_IDLE,       /* idle_timeout_ms */
    MX_GOAWAY_PINGS,      /* too many pings (ping strikes) */
    MX_GOAWAY_HEADERS,    /* header list over header_list_hard */
    MX_GOAWAY_RESETS,     /* server reset budget spent */
    MX_GOAWAY_REASONS
} mx_goaway_reason;

#define MX_H2_CODES 14 /* HTTP/2 error codes 0x0-0xd */

typedef struct mx_host_series {
    const mx_series *conn_opened;
    const mx_series *conn_closed[MX_CLOSE_REASONS];
    const mx_series *streams_opened, *streams_closed;
    const mx_series *bytes_in, *bytes_out;
    const mx_series *tls_ok, *tls_failed, *tls_no_alpn, *tls_timeout;
    const mx_series *rst_sent[MX_H2_CODES + 1], *rst_received[MX_H2_CODES + 1];
    const mx_series *goaway[MX_GOAWAY_REASONS];
    const mx_series *ping_strikes;
    const mx_series *hdr_soft, *hdr_hard;
    const mx_series *send_queue_full;
    const mx_series *accept_paused;
    const mx_series *plugin_loads, *plugin_replaces, *plugin_refusals, *plugin_unloads;
    /* gauges the registry sets from its collector (at scrape time) */
    const mx_series *plugins_serving, *plugins_draining, *plugin_draining_calls,
        *plugins_unloadable;
} mx_host_series;

extern mx_host_series mxh;

/* Makes the host families and series; call after mx_init. */
int mx_host_init(int n_workers);
void mx_host_free(void);
/* Worker N's busy-time counter (ns), NULL while metrics are off. */
const mx_series *mx_host_worker_busy(int worker_id);
/* The reason label of a conn_close "why" text. */
mx_close_reason mx_close_reason_of(const char *why);

static inline const mx_series *mx_h2_code(const mx_series *const *v, uint32_t code)
{
    return v[code < MX_H2_CODES ? code : MX_H2_CODES];
}

#endif
