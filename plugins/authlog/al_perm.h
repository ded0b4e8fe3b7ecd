// Method permission patterns: the method lists of the tokens file and the
// `exempt` configuration key.
//
//   *                every method except the admin service
//   admin            the host's admin service (/rpchost.admin.v1.Admin/*)
//   /Service/*       every method of one service
//   /Service/Method  one method
//
// `*` deliberately leaves out the admin service: administrative rights are
// only ever granted by name. Owner: al_perm.c.
#ifndef AUTHLOG_AL_PERM_H
#define AUTHLOG_AL_PERM_H

#include <stdbool.h>
#include <stddef.h>

#define AL_ADMIN_SERVICE_PREFIX "/rpchost.admin.v1.Admin/"

typedef enum al_perm_kind {
    AL_PERM_EXACT = 0,  /* str is the full path */
    AL_PERM_SERVICE,    /* str is "/Service/" (prefix, slash included) */
    AL_PERM_ALL,        /* "*" */
    AL_PERM_ADMIN       /* "admin" */
} al_perm_kind;

typedef struct al_perm {
    al_perm_kind kind;
    size_t len;
    char *str; /* owned; NULL for ALL and ADMIN */
} al_perm;

/* A list of patterns. */
typedef struct al_perms {
    al_perm *v;
    size_t n;
    size_t cap;
} al_perms;

/* Parses one pattern and appends it. Returns 0, or -EINVAL with *why set to
 * a static explanation, or -ENOMEM. */
int al_perms_add(al_perms *ps, const char *pat, size_t len, const char **why);

/* Parses a list separated by commas and/or whitespace ("a, b c").
 * On -EINVAL, *why explains and *bad / *bad_len point at the bad item. */
int al_perms_parse_list(al_perms *ps, const char *list, const char **why,
                        const char **bad, size_t *bad_len);

/* Whether `method` ("/Service/Method") is covered by any pattern. */
bool al_perms_match(const al_perms *ps, const char *method, size_t method_len);

/* Whether the list grants any method of the admin service (the `admin`
 * marker or a pattern naming it). */
bool al_perms_has_admin(const al_perms *ps);

void al_perms_free(al_perms *ps);

/* The default `exempt` list: health and reflection. */
#define AL_DEFAULT_EXEMPT                                                     \
    "/grpc.health.v1.Health/*, /grpc.reflection.v1.ServerReflection/*, "      \
    "/grpc.reflection.v1alpha.ServerReflection/*"

#endif
