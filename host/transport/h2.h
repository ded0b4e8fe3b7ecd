/* HTTP/2 with nghttp2: the server session of a connection, its callbacks
 * (which drive the gRPC calls) and the limits, including those
 * Debian's libnghttp2 1.52 does not have (see h2.c and docs/transport.md). */
#ifndef RPCHOST_HOST_H2_H
#define RPCHOST_HOST_H2_H

#include "transport/conn.h"
#include "config/settings.h"

/* Builds the shared callbacks and options from the settings. */
int h2_init(const rh_settings *s);
void h2_free(void);
/* Creates the server session of c and queues our SETTINGS. */
int h2_session_new(conn *c);

/* Opaque data of the shutdown PING (stage two follows its ACK). */
extern const uint8_t h2_drain_ping[8];

#endif
