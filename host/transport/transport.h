/* host/transport: one connection's bytes, TLS and HTTP/2 (nghttp2), and
 * the flow-control bookkeeping. The layer above drives one request per
 * stream through h2_stream_ops (h2.h). The interface the layers above
 * include. */
#ifndef RPCHOST_HOST_TRANSPORT_H
#define RPCHOST_HOST_TRANSPORT_H

#include "transport/conn.h"
#include "transport/flow.h"
#include "transport/h2.h"
#include "transport/http1.h"
#include "transport/http_req.h"
#include "transport/tls.h"

#endif
