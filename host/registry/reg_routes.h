/* From a plugin descriptor to what the registry routes with: checks the
 * services (method tables in descriptor order, each with on_message) and
 * interceptors, reads each method's streaming flags from the plugin's
 * embedded FileDescriptorSet, and builds the "/pkg.Service/Method" routes
 * and "plugin.interceptor" chain entries. Owner: reg_routes.c. */
#ifndef RPCHOST_HOST_REG_ROUTES_H
#define RPCHOST_HOST_REG_ROUTES_H

#include "registry/registry.h"

#define REG_MAX_SERVICES 256
#define REG_MAX_METHODS 4096
#define REG_MAX_INTERCEPTORS 64

typedef struct reg_routes {
    reg_route *routes; /* paths malloc'ed; instance = the one given */
    size_t n_routes;
    reg_chain_entry *icpts; /* full_name malloc'ed */
    size_t n_icpts;
} reg_routes;

/* 0, or a negative code with the reason in why; on failure *out holds
 * what was built so far (free it with reg_routes_free). */
int reg_routes_build(const rh_plugin_descriptor *d, reg_instance *inst, const char *name,
                     reg_routes *out, char *why, size_t whylen);
void reg_routes_free(reg_routes *r);

#endif
