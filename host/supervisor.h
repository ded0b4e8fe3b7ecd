/* The supervisor: the process the operator starts. It binds the listening
 * sockets, then forks the serving process (today's threads, unchanged) and
 * restarts it at once when it dies; the sockets stay bound and listening,
 * so connections wait in the backlog during a restart instead of being
 * refused. Signals it gets (TERM, INT, HUP) go to the serving process; on
 * TERM/INT it exits with the serving process's status.
 *
 * What outlives a serving process (kept builds, file records, crash
 * counts, quarantines: crash/crash.h) lives in this process's tables and
 * reaches the next serving process by fork, as do the settings as
 * reloaded by SIGHUP. The serving process reports over one SOCK_SEQPACKET
 * socket. Owner: supervisor.c (top level: it uses the event layer's
 * listen sets and the crash layer's tables). */
#ifndef RPCHOST_HOST_SUPERVISOR_H
#define RPCHOST_HOST_SUPERVISOR_H

#include "config/config.h"
#include "event/event.h"

/* The serving process's main: settings, the listen sets of its workers,
 * the channel fd (-1 when not supervised). Returns the exit status. */
typedef int (*sup_serve_fn)(rh_settings *s, const listen_set *sets, int chan);

/* Runs the supervisor until TERM/INT; returns the exit status. */
int supervisor_run(rh_settings *s, listen_set *sets, int n_sets, sup_serve_fn serve);

#endif
