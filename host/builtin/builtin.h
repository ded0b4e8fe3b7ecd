/* Services compiled into the host, written against the plugin API and
 * registered with reg_add_builtin() like any plugin.
 * Owners: builtin_reflection.c, builtin_health.c, builtin_admin.c. */
#ifndef RPCHOST_HOST_BUILTINS_H
#define RPCHOST_HOST_BUILTINS_H

#include "rpchost/plugin.h"

/* grpc.reflection.v1 and v1alpha ServerReflection, in one descriptor. */
const rh_plugin_descriptor *builtin_reflection(void);
/* grpc.health.v1.Health. */
const rh_plugin_descriptor *builtin_health(void);
/* Tell Health the host is draining: every status becomes NOT_SERVING and
 * Watch streams see it. Called by main on SIGTERM/SIGINT. */
void health_begin_shutdown(void);
/* rpchost.admin.v1.Admin. */
const rh_plugin_descriptor *builtin_admin(void);

#endif
