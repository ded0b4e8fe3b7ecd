/* host/console: the operator console, static files compiled into the
 * binary and served at /console/ on the gRPC port (docs/console.md). The
 * page gets its data only from the Admin, reflection and health services
 * over Connect, from the same origin, so the host's authentication applies
 * to it as to any client. */
#ifndef RPCHOST_HOST_CONSOLE_H
#define RPCHOST_HOST_CONSOLE_H

/* Registers the console's files with the static-file table (web_static.h).
 * Start-up only, before the workers start. 0, or -errno. */
int console_init(void);

#endif
