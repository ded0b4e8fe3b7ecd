/* host/config: the settings (command line, environment, INI file). The
 * interface the layers above include. */
#ifndef RPCHOST_HOST_CONFIG_H
#define RPCHOST_HOST_CONFIG_H

#include "config/settings.h"

#endif
