/* host/core: utilities that know no layer (the log, the call arena, byte
 * buffers, the timer heap). The interface the layers above include. */
#ifndef RPCHOST_HOST_CORE_H
#define RPCHOST_HOST_CORE_H

#include "core/arena.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/timer.h"

#endif
