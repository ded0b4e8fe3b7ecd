/* `rpcall ADDRESS SERVICE/METHOD`: one call of any kind, requests from -d
 * (JSON, sent as read for client and bidi streams), responses printed as
 * JSON as they arrive, the status reported as the exit code. */
#ifndef RPCALL_INVOKE_H
#define RPCALL_INVOKE_H

#include "catalog.h"
#include "options.h"
#include "session.h"

/* Runs the call; returns the process exit code. */
int invoke_run(const rpcall_opts *o, session *s, catalog *cat, const descpool_symbol *method);

/* Opens the request input named by -d (NULL: "{}"); returns 0 or -errno
 * with err set. Used by bench too. */
struct jsonin;
int invoke_open_input(const char *data, struct jsonin *in, char *err, size_t errlen);

/* Prints "ERROR: <Code>: <message>" and the status details on stderr. */
void invoke_print_status(const descpool *pool, int status, const char *message,
                         const uint8_t *details, size_t details_len);

#endif
