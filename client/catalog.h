/* Where rpcall's descriptors come from: --protoset files (loaded whole,
 * no connection needed) or server reflection (asked symbol by symbol).
 * Either way they end up in one descpool used for list, describe and
 * JSON transcoding. */
#ifndef RPCALL_CATALOG_H
#define RPCALL_CATALOG_H

#include <stdbool.h>
#include <stddef.h>

#include "descpool.h"
#include "options.h"
#include "reflect.h"
#include "session.h"

typedef struct catalog {
    descpool *pool;
    bool reflection;
    reflect r;
    char err[700];
    /* catalog_method: server reflection does not know the service; a call
     * of it would be answered UNIMPLEMENTED, and rpcall says so. */
    bool unknown_service;
} catalog;

/* s is NULL with --protoset (no connection needed for list/describe). */
int catalog_init(catalog *cat, const rpcall_opts *o, session *s);
void catalog_free(catalog *cat);

/* Every service, sorted (malloc'd array of malloc'd strings). */
int catalog_services(catalog *cat, char ***names, size_t *n);
/* Makes sure symbol and its dependencies are in the pool; -ENOENT with a
 * message naming what exists when it is unknown. */
int catalog_need(catalog *cat, const char *symbol);
/* Finds a method given as SERVICE/METHOD or SERVICE.METHOD (loading the
 * service first); NULL with cat->err set. */
const descpool_symbol *catalog_method(catalog *cat, const char *target);

#endif
