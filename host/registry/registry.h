/* The registry: which plugin instance serves which method path, and the
 * interceptor chain, as one immutable snapshot published by an atomic
 * pointer swap (all changes happen under one control mutex; readers never
 * take it on the hot path).
 *
 * Lifetimes:
 *  - A snapshot holds a reference on every instance it names.
 *  - A call holds a reference on the snapshot it started with (so the chain
 *    and the method it started with are the ones it finishes with) and
 *    counts itself in-flight on its instance.
 *  - A retired instance (replaced or removed) is finalised (fini) and
 *    dlclose'd when its last reference goes, from the control thread.
 * Owner: registry.c (routes, snapshots), loader.c (files, dlopen).
 */
#ifndef RPCHOST_HOST_REGISTRY_H
#define RPCHOST_HOST_REGISTRY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "registry/trust.h"
#include "registry/watch.h"
#include "rpchost/plugin.h"

typedef struct reg_instance reg_instance;

typedef struct reg_route {
    const char *path; /* "/pkg.Service/Method", owned by the snapshot */
    size_t path_len;
    reg_instance *instance;
    const rh_method *method;
    const ProtobufCMessageDescriptor *input;
    const ProtobufCMessageDescriptor *output;
    bool client_streaming; /* from the plugin's embedded descriptor set */
    bool server_streaming;
    const struct mx_method *mx; /* its gRPC series (NULL: metrics off) */
} reg_route;

typedef struct reg_chain_entry {
    reg_instance *instance;
    const rh_interceptor *interceptor;
    const char *full_name; /* "plugin.name" */
} reg_chain_entry;

typedef struct reg_snapshot {
    atomic_long refs;
    uint64_t generation;
    const reg_route *routes; /* n_routes, looked up with reg_route_find */
    size_t n_routes;
    const reg_chain_entry *chain; /* interceptors in configured order */
    size_t n_chain;
    reg_instance *const *instances; /* every instance serving (reflection) */
    size_t n_instances;
    void *priv; /* registry.c's index (hash table) */
} reg_snapshot;

/* --- readers (workers) ------------------------------------------------ */

/* The generation of the current snapshot; a worker keeps its own acquired
 * snapshot and re-acquires only when this differs (one atomic load per
 * call). */
uint64_t reg_generation(void);
/* +1 reference on the current snapshot (short lock; not per call). */
reg_snapshot *reg_acquire(void);
void reg_snapshot_ref(reg_snapshot *snap);   /* atomic ++ */
void reg_snapshot_release(reg_snapshot *snap); /* atomic --, frees at 0 */
const reg_route *reg_route_find(const reg_snapshot *snap, const char *path, size_t len);

/* In-flight accounting for drain and the admin listing (atomics). */
void reg_instance_call_begin(reg_instance *inst);
void reg_instance_call_end(reg_instance *inst);
rh_plugin_ctx *reg_instance_ctx(reg_instance *inst);
reg_instance *reg_ctx_instance(rh_plugin_ctx *ctx);
/* A reference that keeps an instance (and its routes) from being
 * finalised: an adopted call holds one on its new instance. */
void reg_instance_ref(reg_instance *inst);
void reg_instance_unref(reg_instance *inst);
/* The instance's own route for path (adopt_call), or NULL. */
const reg_route *reg_instance_route(const reg_instance *inst, const char *path, size_t len);
const char *reg_instance_name(const reg_instance *inst);
/* The plugin's descriptor (services, embedded descriptor set). */
const rh_plugin_descriptor *reg_instance_descriptor(const reg_instance *inst);

/* --- control (main thread, admin service) ------------------------------ */

int reg_init(void);
/* Loads every *.so of the directory (refusals are logged, not fatal). */
int reg_load_dir(const char *dir);
/* Load / replace / unload one file; 0 or -errno (already logged). */
int reg_load_file(const char *path);
int reg_unload_file(const char *path);
/* Registers a built-in service plugin (reflection, health, admin) that is
 * compiled into the host; it goes through init like any plugin. */
int reg_add_builtin(const rh_plugin_descriptor *desc);
/* Called after every publish, on the control thread (health Watch; the
 * transport should use it to make idle workers drop a cached snapshot, or
 * a retired instance stays pinned until that worker's next call). Up to 8
 * callbacks; each registration adds one. */
void reg_on_change(void (*cb)(void *arg), void *arg);
/* Finalises every instance (after the server stopped); frees all. */
void reg_shutdown(void);

/* --- control-thread plumbing (main.c's loop; added by control) -------- */

/* What plugin init receives, and how a drain timeout cancels the calls of
 * an instance (server_cancel_instance). Set by main before any load. */
void reg_set_host(const rh_host_api *api,
                  void (*cancel)(reg_instance *inst, rh_status code, const char *message));
/* An eventfd that is readable when reg_control_run() has work: instances
 * whose last reference went (fini + dlclose) and posted jobs. */
int reg_control_fd(void);
void reg_control_run(void);
/* Runs fn(arg) on the control thread (the admin service posts its
 * load/unload work here instead of blocking a worker). */
int reg_control_post(void (*fn)(void *arg), void *arg);
/* Drain deadlines: milliseconds until the next one (-1: none), and the
 * check that cancels the calls of instances past it (UNAVAILABLE). */
int reg_next_timeout_ms(void);
void reg_tick(void);
/* SIGHUP / inotify overflow: load new or changed files, unload vanished
 * ones; unchanged files that failed (or were unloaded by the admin) are
 * left alone until they change. */
int reg_rescan(void);
/* Directory events (watch.c): a file was closed after writing or renamed
 * in -> load or replace it, unless it is the very file already loaded,
 * refused or unloaded; a file was deleted or renamed out -> drain and
 * unload it. */
int reg_file_changed(const char *path);
int reg_file_removed(const char *path);
/* SIGHUP: hand every instance its new [plugin.NAME] section and call its
 * reload hook. */
void reg_reconfigure(void);
/* reg_load_file / reg_unload_file with the reason of a refusal in err. */
int reg_load_file_err(const char *path, char *err, size_t errlen);
int reg_unload_file_err(const char *path, char *err, size_t errlen);
/* The plugin directory given to reg_load_dir (NULL before). */
const char *reg_dir(void);
/* The file of a loaded (not retired) plugin by name, or NULL; the string
 * is copied into buf. */
const char *reg_file_of(const char *name, char *buf, size_t buflen);

/* One row of the admin listing. */
typedef struct reg_plugin_info {
    char file[512];      /* "" for built-ins */
    char name[RH_NAME_MAX];
    char version[RH_VERSION_MAX];
    char services[1024]; /* full service names, comma-separated */
    char interceptors[512];
    int64_t loaded_at_ms; /* Unix time */
    int64_t in_flight;
    uint64_t served;
    bool builtin;
    bool draining;       /* retired: finishing its last calls */
    bool finalised;      /* fini ran but the object stayed mapped */
    bool cannot_unload;  /* dlclose will not (or did not) unmap it */
    char unload_note[256];
} reg_plugin_info;
/* Every instance, serving ones first in load order; *out is malloc'ed. */
size_t reg_list(reg_plugin_info **out);

/* Instance counters (admin, tests). */
int64_t reg_instance_in_flight(const reg_instance *inst);
uint64_t reg_instance_served(const reg_instance *inst);

/* --- plugin ctx functions that go into rh_host_api ---------------------- */
const char *plugin_ctx_config_get(rh_plugin_ctx *ctx, const char *key);
/* Calls fn for every key of the instance's config section that starts
 * with prefix, in file order (the web layer's http_rule keys). Worker
 * threads may call it, as they may config_get. */
void plugin_ctx_config_each(rh_plugin_ctx *ctx, const char *prefix,
                            void (*fn)(const char *key, const char *value, void *arg), void *arg);
/* The plugin's name (owner of its metric families). */
const char *plugin_ctx_name(rh_plugin_ctx *ctx);
void plugin_ctx_log(rh_plugin_ctx *ctx, rh_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
