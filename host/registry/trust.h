/* Who may put code into the host: the trust checks on the plugin directory
 * and on every plugin file, in the spirit of sshd's StrictModes.
 *
 * A path is trusted when the file itself and every directory from it up to
 * "/" is owned by root or by the host's own user and is writable by neither
 * group nor others. One exception, for the directories above the plugin
 * directory only: a root-owned directory with the sticky bit (/tmp) may be
 * writable by all, since there only an entry's owner may rename or remove
 * it. Symbolic links are resolved first and the real path is checked.
 *
 * The checks are pure functions over stat(2); the policy (on or off, whose
 * user) is set once at start and read by the loader. Owner: trust.c. */
#ifndef RPCHOST_TRUST_H
#define RPCHOST_TRUST_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Checks the plugin directory and the directories above it. On refusal
 * returns -1 and writes one sentence to err naming the path and the bit
 * ("/srv/plugins is writable by others (mode 0777)"); 0 when trusted. */
int trust_check_dir(const char *dir, uid_t host_uid, char *err, size_t errlen);

/* Checks one plugin file (and, through its real path, its directories).
 * Same contract as trust_check_dir. */
int trust_check_file(const char *path, uid_t host_uid, char *err, size_t errlen);

/* The policy: whether the loader checks each plugin file before reading it
 * (on by default; --unsafe-plugin-dir turns it off) and the host's own
 * user, who may own plugin files besides root (default: the effective
 * uid). Set once at start, before any plugin is loaded. */
void trust_set_policy(bool enforce, uid_t host_uid);

/* trust_check_file under the policy: 0 when checks are off. */
int trust_policy_check_file(const char *path, char *err, size_t errlen);

#endif
