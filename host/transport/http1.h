/* HTTP/1.1 on a connection: requests parsed with Debian's libhttp-parser
 * (docs/web.md says why), one request served at a time so pipelined
 * requests are answered in order, keep-alive, chunked bodies, limits and
 * timeouts, and the response writer the web protocols use.
 *
 * A parsed request goes up through the web_handler (http_req.h), which
 * answers it through the web_req's response functions. While a request is served,
 * bytes of the next ones wait in the connection's input buffer (at most
 * HTTP1_PIPELINE_MAX; past it the connection stops reading).
 *
 * Everything here runs on the connection's worker thread. The http1
 * object belongs to the conn (conn->h1) and goes with it. */
#ifndef RPCHOST_HOST_TRANSPORT_HTTP1_H
#define RPCHOST_HOST_TRANSPORT_HTTP1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "transport/conn.h"
#include "transport/http_req.h"

/* Unparsed bytes of pipelined requests kept while one is served. */
#define HTTP1_PIPELINE_MAX (64 * 1024)
/* Header fields per request. */
#define HTTP1_MAX_FIELDS 100

/* The connection starts speaking HTTP/1.1 (after ALPN or sniffing).
 * 0, or -1 out of memory. */
int http1_start(conn *c);
void http1_free(conn *c);
/* Request bytes (plaintext). -1 when the connection stops reading. */
int http1_feed(conn *c, const uint8_t *data, size_t n);
/* True while pipelined input waits for the request being served. */
bool http1_input_paused(const conn *c);
/* Response bytes to write (conn_flush takes them). */
buf *http1_output(conn *c);
/* conn_flush wrote everything: a streaming response may go on. */
void http1_output_written(conn *c);
/* True when the connection should close once its output is written. */
bool http1_done(const conn *c);
/* Server stop: close when idle, else after the current response. */
void http1_begin_shutdown(conn *c);

#endif
