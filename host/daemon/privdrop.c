/* Dropping root. See privdrop.h. */
#define _GNU_SOURCE
#include "daemon/privdrop.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int lookup(const char *user, struct passwd *pw, char *buf, size_t buflen, char *err,
                  size_t errlen)
{
    struct passwd *res = NULL;
    int rc = getpwnam_r(user, pw, buf, buflen, &res);
    if (rc != 0 || !res) {
        snprintf(err, errlen, "user '%s': %s", user, rc ? strerror(rc) : "no such user");
        return -1;
    }
    return 0;
}

int privdrop_plan(const char *user, bool allow_root, uid_t *uid, char *err, size_t errlen)
{
    *uid = geteuid();
    if (!user) {
        if (*uid == 0 && !allow_root) {
            snprintf(err, errlen, "refusing to serve as root: set --user NAME (user = NAME in "
                                  "[rpchost]), or --allow-root to insist");
            return -1;
        }
        return 0;
    }
    struct passwd pw;
    char buf[4096];
    if (lookup(user, &pw, buf, sizeof buf, err, errlen) < 0) return -1;
    if (pw.pw_uid == 0 && !allow_root) {
        snprintf(err, errlen, "user '%s' is root: choose an unprivileged user", user);
        return -1;
    }
    if (*uid != 0 && *uid != pw.pw_uid) {
        snprintf(err, errlen, "--user %s needs root to switch users (running as uid %u)", user,
                 (unsigned)*uid);
        return -1;
    }
    *uid = pw.pw_uid;
    return 0;
}

int privdrop_switch(const char *user, char *err, size_t errlen)
{
    if (!user) return 0;
    struct passwd pw;
    char buf[4096];
    if (lookup(user, &pw, buf, sizeof buf, err, errlen) < 0) return -1;
    if (geteuid() == pw.pw_uid && getuid() == pw.pw_uid) return 0;
    /* Groups first: after setuid we could no longer change them. */
    if (initgroups(pw.pw_name, pw.pw_gid) < 0 || setgid(pw.pw_gid) < 0) {
        snprintf(err, errlen, "cannot take the groups of '%s': %s", user, strerror(errno));
        return -1;
    }
    if (setuid(pw.pw_uid) < 0) {
        snprintf(err, errlen, "cannot become '%s': %s", user, strerror(errno));
        return -1;
    }
    if (pw.pw_uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
        snprintf(err, errlen, "still able to regain root after switching to '%s'", user);
        return -1;
    }
    return 0;
}
