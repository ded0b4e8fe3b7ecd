/* Socket activation (sd_listen_fds(3), read directly): the listening
 * sockets a service manager passed as fds 3.. with LISTEN_FDS and
 * LISTEN_PID. When there are any, rpchost serves on them instead of binding
 * its listen settings. Owner: listenfds.c. Main thread, before threads. */
#ifndef RPCHOST_LISTENFDS_H
#define RPCHOST_LISTENFDS_H

#include <stdbool.h>
#include <stddef.h>

#define LISTENFDS_START 3 /* SD_LISTEN_FDS_START */

/* Takes the passed sockets: checks each is a listening stream socket (IPv4,
 * IPv6 or Unix), makes it non-blocking and close-on-exec, and removes the
 * variables from the environment. Fills fds[] and is_unix[] (at most max)
 * and returns how many (0: none passed, or passed to another process).
 * -1 with one sentence in err when the passed sockets are unusable. */
int listenfds_take(int *fds, bool *is_unix, size_t max, char *err, size_t errlen);

/* "127.0.0.1:8888, [::1]:8888, unix:/run/x.sock" of fds[0..n), for the
 * serving-on log line. */
void listenfds_describe(const int *fds, size_t n, char *out, size_t outlen);

#endif
