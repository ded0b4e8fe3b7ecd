/* The rh_host_api table handed to plugins. Its call functions run on any
 * thread: off the call's worker they post a call operation to it (api.c). */
#ifndef RPCHOST_HOST_API_H
#define RPCHOST_HOST_API_H

#include "rpchost/plugin.h"

/* The function table handed to every plugin's init. */
const rh_host_api *host_api(void);

#endif
