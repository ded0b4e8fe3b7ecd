/* host/rpc: gRPC calls over the transport's streams (call_stream_ops) and
 * the plugin API table. The interface the layers above include. */
#ifndef RPCHOST_HOST_RPC_H
#define RPCHOST_HOST_RPC_H

#include "rpc/api.h"
#include "rpc/call.h"
#include "rpc/recent_errors.h"

#endif
