/* Least privilege: the switch from root to the configured user once the
 * listeners are bound and the keys read, and the refusal to serve as root
 * when no user is configured (unless the operator insists).
 * Owner: privdrop.c. Called on the main thread before any thread exists. */
#ifndef RPCHOST_PRIVDROP_H
#define RPCHOST_PRIVDROP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Before binding: resolves user (NULL: none) and checks the combination of
 * it, allow_root and the current identity. On refusal returns -1 with one
 * sentence in err; *uid is the identity plugins will run as. */
int privdrop_plan(const char *user, bool allow_root, uid_t *uid, char *err, size_t errlen);

/* After binding: becomes user (supplementary groups, gid, uid), then checks
 * that root cannot be regained. A no-op when user is NULL or already the
 * current identity. -1 with one sentence in err on failure. */
int privdrop_switch(const char *user, char *err, size_t errlen);

#endif
