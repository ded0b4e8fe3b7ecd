/* Trust checks on plugin paths. See trust.h for the rule and why. */
#define _GNU_SOURCE
#include "registry/trust.h"

#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void owner_name(uid_t uid, char *out, size_t outlen)
{
    struct passwd pw, *res = NULL;
    char buf[1024];
    if (getpwuid_r(uid, &pw, buf, sizeof buf, &res) == 0 && res)
        snprintf(out, outlen, "%s", pw.pw_name);
    else
        snprintf(out, outlen, "uid %u", (unsigned)uid);
}

/* One path component: owner and mode. above: a directory above the plugin
 * directory, where a root-owned sticky directory is accepted. */
static int check_one(const char *path, const struct stat *st, uid_t host_uid, int above,
                     char *err, size_t errlen)
{
    if (st->st_uid != 0 && st->st_uid != host_uid) {
        char who[64], host[64];
        owner_name(st->st_uid, who, sizeof who);
        owner_name(host_uid, host, sizeof host);
        snprintf(err, errlen, "%s is owned by %s, not by root or %s", path, who, host);
        return -1;
    }
    mode_t w = st->st_mode & (S_IWGRP | S_IWOTH);
    if (!w) return 0;
    if (above && S_ISDIR(st->st_mode) && (st->st_mode & S_ISVTX) && st->st_uid == 0)
        return 0;
    snprintf(err, errlen, "%s is writable by %s (mode %04o)", path,
             (w & S_IWGRP) && (w & S_IWOTH) ? "group and others"
             : (w & S_IWGRP)                ? "its group"
                                            : "others",
             (unsigned)(st->st_mode & 07777));
    return -1;
}

/* Checks real (an absolute, resolved path; cut down in place) and every
 * directory above it. own: how many components, counted from the end, are
 * the checked object itself rather than "above" it: 1 for the plugin
 * directory, 2 for a plugin file (the file and the plugin directory). */
static int check_chain(char *real, uid_t host_uid, int own, char *err, size_t errlen)
{
    int depth = 0;
    for (;;) {
        struct stat st;
        if (stat(real, &st) < 0) {
            snprintf(err, errlen, "%s: %s", real, strerror(errno));
            return -1;
        }
        if (check_one(real, &st, host_uid, depth >= own, err, errlen) < 0) return -1;
        if (strcmp(real, "/") == 0) return 0;
        char *slash = strrchr(real, '/');
        if (slash == real) slash[1] = '\0';
        else *slash = '\0';
        depth++;
    }
}

static int resolve(const char *path, char *out, char *err, size_t errlen)
{
    if (!realpath(path, out)) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

int trust_check_dir(const char *dir, uid_t host_uid, char *err, size_t errlen)
{
    char real[PATH_MAX];
    if (resolve(dir, real, err, errlen) < 0) return -1;
    return check_chain(real, host_uid, 1, err, errlen);
}

int trust_check_file(const char *path, uid_t host_uid, char *err, size_t errlen)
{
    char real[PATH_MAX];
    if (resolve(path, real, err, errlen) < 0) return -1;
    struct stat st;
    if (stat(real, &st) < 0) {
        snprintf(err, errlen, "%s: %s", real, strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s is not a regular file", real);
        return -1;
    }
    return check_chain(real, host_uid, 2, err, errlen);
}

static bool policy_enforced = true;
static uid_t policy_uid = (uid_t)-1; /* -1: whoever we run as */

void trust_set_policy(bool enforce, uid_t host_uid)
{
    policy_enforced = enforce;
    policy_uid = host_uid;
}

int trust_policy_check_file(const char *path, char *err, size_t errlen)
{
    if (!policy_enforced) return 0;
    uid_t uid = policy_uid == (uid_t)-1 ? geteuid() : policy_uid;
    return trust_check_file(path, uid, err, errlen);
}
