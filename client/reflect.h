/* Server reflection client: grpc.reflection.v1 first, and
 * grpc.reflection.v1alpha when the server answers UNIMPLEMENTED for v1.
 * Each question is one ServerReflectionInfo stream (request, half-close,
 * answer) on the session's connection. The few messages involved are
 * written and read by hand (pbwire.h): they are fixed by the protocol. */
#ifndef RPCALL_REFLECT_H
#define RPCALL_REFLECT_H

#include <stdbool.h>
#include <stddef.h>

#include "descpool.h"
#include "session.h"

typedef struct reflect {
    session *s;
    const char *const *md; /* -H metadata sent with every question */
    size_t n_md;
    size_t max_recv;
    int version;           /* 0 not yet known, 1 = v1, 2 = v1alpha */
    int status;            /* gRPC status of the last failed question */
    bool status_from_call; /* ... and it ended the call (not an error_response) */
    char err[600];
} reflect;

void reflect_init(reflect *r, session *s, const char *const *md, size_t n_md, size_t max_recv);

/* Names of every service the server lists (malloc'd array of malloc'd
 * strings, sorted). Returns 0, -EPROTO when the server has no reflection,
 * or another -errno; r->err says what failed. */
int reflect_list_services(reflect *r, char ***names, size_t *n);

/* Adds to pool the file that defines symbol (service, method, message,
 * enum, ...) and every file it depends on. -ENOENT when the server knows
 * no such symbol. */
int reflect_load_symbol(reflect *r, descpool *pool, const char *symbol);

void reflect_free_names(char **names, size_t n);

#endif
