/* Being a daemon: what the process does for its operator and its service
 * manager, apart from serving. Least privilege (privdrop.h), socket
 * activation (listenfds.h) and the
 * systemd notification protocol (sdnotify.h). Used by main.c only. */
#ifndef RPCHOST_DAEMON_H
#define RPCHOST_DAEMON_H

#include "daemon/listenfds.h"
#include "daemon/privdrop.h"
#include "daemon/sdnotify.h"

#endif
