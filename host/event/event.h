/* host/event: worker threads, their epoll loops, listeners and posted
 * operations. Knows no connection and no call: the layers above plug in
 * through ev_handle.on_event, worker_hooks and xop.apply (worker.h). The
 * interface the layers above include. */
#ifndef RPCHOST_HOST_EVENT_H
#define RPCHOST_HOST_EVENT_H

#include "event/worker.h"

#endif
