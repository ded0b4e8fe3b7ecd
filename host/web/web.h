/* The web protocols on top of a request/response transport: the JSON
 * gateway (google.api.http rules), Connect, gRPC-Web, CORS. A request is
 * translated into a gRPC call of the same call layer (call.c), so routing,
 * interceptors, deadlines and limits are those of native gRPC; the call's
 * framed response messages and status are translated back.
 *
 * The transport (transport/http1.c) fills a web_req (transport/http_req.h)
 * and calls web_dispatch through its web_handler; web.c answers through
 * web_req->ops. Worker thread only. */
#ifndef RPCHOST_HOST_WEB_WEB_H
#define RPCHOST_HOST_WEB_WEB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rpc/rpc.h"
#include "rpchost/plugin.h"
#include "transport/transport.h"
#include "web/web_static.h"

/* Serves a complete request: answers at once (errors, preflight) or
 * starts the call whose output answers it later. */
void web_dispatch(web_req *r);

/* From call.c, for a call with call->web set and its stream open: new
 * framed response bytes in call->outq, or the status was decided. */
void web_call_output(rh_call *call);

/* The transport wrote what it held: a blocked response goes on. */
void web_output_drained(web_req *r);

/* The response is complete: the call's stream ends (the transport calls
 * this before it reuses r). */
void web_req_release(web_req *r);

/* Plugs the web layer into the transport (HTTP/1.1 requests) and the
 * call layer (HTTP/2 streams that are not gRPC, the output of the calls
 * it starts). Once, at start-up, before the workers run. */
void web_init(void);

#endif
