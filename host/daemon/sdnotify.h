/* The service manager's notification protocol (sd_notify(3), spoken
 * directly: one datagram per message to $NOTIFY_SOCKET), so that the build
 * needs no libsystemd and does nothing where systemd is absent.
 *
 * READY=1 once serving, RELOADING=1 + MONOTONIC_USEC / READY=1 around a
 * SIGHUP, STOPPING=1 on stop, STATUS= lines, and WATCHDOG=1 keep-alives
 * when the unit sets WatchdogSec. Control thread only. Owner: sdnotify.c. */
#ifndef RPCHOST_SDNOTIFY_H
#define RPCHOST_SDNOTIFY_H

#include <stdbool.h>
#include <stdint.h>

/* Reads and then removes NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID from
 * the environment (plugins and child processes must not speak for us). */
void sdnotify_init(void);

/* Sends one message ("READY=1\nSTATUS=..."); a no-op without a socket.
 * Returns 0, or -errno when the send failed (the caller may log it). */
int sdnotify_send(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Whether a service manager listens (so callers skip building STATUS). */
bool sdnotify_active(void);

/* RELOADING=1 with the MONOTONIC_USEC systemd 253 wants beside it. */
int sdnotify_reloading(void);

/* Watchdog: the interval at which WATCHDOG=1 should be sent (half the
 * unit's WatchdogSec) in ms, or 0 when no watchdog is asked for. */
uint32_t sdnotify_watchdog_interval_ms(void);

#endif
