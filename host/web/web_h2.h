/* Web requests on HTTP/2: a stream whose request is not gRPC (gRPC-Web,
 * Connect, the JSON gateway, CORS preflight) is carried by its call
 * object ("the carrier": never routed, no interceptors) while web.c
 * serves the request with a second call of its own. The carrier collects
 * the body, dispatches at END_STREAM, and writes the response on its
 * stream through a data provider.
 *
 * Worker thread only; driven from call.c. */
#ifndef RPCHOST_HOST_WEB_WEB_H2_H
#define RPCHOST_HOST_WEB_WEB_H2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rh_call rh_call;
typedef struct web_h2 web_h2;

/* At the end of the request headers of a non-gRPC stream: true if the
 * web layer takes the stream (call->exchange is then set). It declines a
 * gRPC method path without a web content type, so gRPC's own answers
 * (405, 415) stay. */
bool web_h2_claim(rh_call *carrier);
/* Request body bytes of the carrier's stream (their window is returned
 * by the caller). Past max_recv_message the request is answered 413. */
void web_h2_data(rh_call *carrier, const uint8_t *data, size_t len);
/* END_STREAM: the request is complete. */
void web_h2_end(rh_call *carrier);
/* The stream closed: the web request's call ends (cancelled if still
 * running) and the exchange is freed. */
void web_h2_close(rh_call *carrier);

#endif
