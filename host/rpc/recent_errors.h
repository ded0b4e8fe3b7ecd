/* The last failed calls, for the admin service (ListRecentErrors,
 * WatchStats) and the console.
 *
 * A fixed ring of RECENT_ERRORS_MAX slots with fixed-size strings: noting
 * a failed call copies (and truncates) method, message and peer into the
 * oldest slot under a mutex, so the call path never allocates and a burst
 * of failures costs a bounded copy each. Successful calls never come here.
 *
 * Owner: host/rpc/. Threads: note from any thread (workers, at the end of
 * a call); read from any thread. */
#ifndef RPCHOST_HOST_RECENT_ERRORS_H
#define RPCHOST_HOST_RECENT_ERRORS_H

#include <stddef.h>
#include <stdint.h>

#define RECENT_ERRORS_MAX 64

typedef struct recent_error {
    int64_t unix_ms;
    uint32_t code;
    char method[160];
    char message[256];
    char peer[80];
} recent_error;

/* Records one failed call; NULL strings count as "". */
void recent_errors_note(const char *method, uint32_t code, const char *message,
                        const char *peer);
/* Copies up to max entries, newest first, into out; returns how many. */
size_t recent_errors_read(recent_error *out, size_t max);

#endif
