/* The rh_host_api table handed to plugins (host_api() in server.h), and
 * the worker-side half of operations plugins start on other threads. */
#ifndef RPCHOST_HOST_API_H
#define RPCHOST_HOST_API_H

#include "event/worker.h"

/* Applies a call operation posted from another thread; frees op. */
void api_apply(xop *op);

#endif
