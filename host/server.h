/* The data plane: worker threads, each with its own epoll loop and
 * SO_REUSEPORT listener(s); TLS; HTTP/2 sessions; gRPC calls.
 * Owner: server.c, worker.c, conn.c, tls.c, h2.c, call.c, api.c. */
#ifndef RPCHOST_HOST_SERVER_H
#define RPCHOST_HOST_SERVER_H

#include "config/config.h"
#include "registry/registry.h"
#include "rpc/rpc.h"
#include "rpchost/plugin.h"
#include "event/event.h"

/* The number of workers (--workers, default: online CPUs). */
int server_workers(const rh_settings *s);
/* Loads TLS material and starts listening on every worker's sockets
 * (sets[i] for worker i, bound by the supervisor). Any error (unreadable
 * cert/key, mismatch) is logged as one line on stderr and returns a
 * negative code: the process exits 2 before serving. */
int server_init(const rh_settings *s, const listen_set *sets);
/* Starts the worker threads; returns at once. */
int server_start(void);
/* Graceful stop: GOAWAY(max id) + PING, then GOAWAY(last id) to every
 * connection, stop accepting, wait for in-flight calls up to the drain
 * timeout, cancel the rest, join the workers. Blocks; call from main. */
void server_shutdown(uint32_t drain_timeout_ms);
/* Frees the workers. After reg_shutdown: until then plugins may still
 * answer and release calls they hold (from their fini), which the stopped
 * workers apply on the caller's thread. */
void server_free(void);
/* Reloads the certificate and key for new connections (SIGHUP). */
int server_reload_tls(void);
/* Cancels every running call of an instance (drain timeout on removal):
 * the handlers get on_cancel and clients get `code` + `message`. */
void server_cancel_instance(reg_instance *inst, rh_status code, const char *message);

#endif
