/* rpchost.admin.v1.Admin, a built-in service written against the plugin
 * API. Handlers run on a worker; they only check the caller and post the
 * work to the control thread (loading runs plugin init and may take a
 * while; a worker loop must not block), which answers the call from there
 * (send/finish are callable from any thread). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "builtin_descriptor_set.h"
#include "builtin/builtin.h"
#include "registry/registry.h"
#include "rpchost/admin/v1/admin.pb-c.h"
#include "config/config.h"

#define ADMIN_MAX_LIST 64 /* services / interceptors listed per plugin */

static const rh_host_api *api;

typedef enum { OP_LIST, OP_LOAD, OP_RELOAD, OP_UNLOAD } admin_op;

typedef struct admin_job {
    rh_call *call;
    admin_op op;
    char name[RH_NAME_MAX];
    char file[NAME_MAX + 1];
} admin_job;

/* A Plugin message and the storage its strings point into. */
typedef struct plugin_msg {
    Rpchost__Admin__V1__Plugin msg;
    reg_plugin_info info;
    char *services[ADMIN_MAX_LIST];
    char *interceptors[ADMIN_MAX_LIST];
    char loaded_at[40];
} plugin_msg;

/* ------------------------------------------------------------ access */

static bool principal_listed(const char *principal)
{
    const rh_settings *s = settings_get();
    if (!principal || !*principal || !s || !s->admin_principals) return false;
    size_t n = strlen(principal);
    for (const char *p = s->admin_principals; *p;) {
        p += strspn(p, ", \t");
        size_t len = strcspn(p, ", \t");
        if (len == n && len && strncmp(p, principal, n) == 0) return true;
        /* "*": any principal an interceptor vouched for (e.g. authlog, which
         * already requires its admin permission for this service). */
        if (len == 1 && *p == '*') return true;
        p += len;
    }
    return false;
}

static bool admin_allowed(rh_call *call)
{
    const char *peer = api->peer(call);
    if (peer && strncmp(peer, "unix:", 5) == 0) return true;
    return principal_listed(api->principal(call));
}

/* ------------------------------------------------------ building replies */

static size_t split_list(char *s, char **out)
{
    size_t n = 0;
    char *save = NULL;
    for (char *t = strtok_r(s, ", ", &save); t && n < ADMIN_MAX_LIST; t = strtok_r(NULL, ", ", &save))
        out[n++] = t;
    return n;
}

static void plugin_fill(plugin_msg *m, const reg_plugin_info *info)
{
    rpchost__admin__v1__plugin__init(&m->msg);
    m->info = *info;
    reg_plugin_info *i = &m->info;
    m->msg.file = i->file;
    m->msg.name = i->name;
    m->msg.version = i->version;
    m->msg.n_services = split_list(i->services, m->services);
    m->msg.services = m->services;
    m->msg.n_interceptors = split_list(i->interceptors, m->interceptors);
    m->msg.interceptors = m->interceptors;
    time_t t = (time_t)(i->loaded_at_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t k = strftime(m->loaded_at, sizeof m->loaded_at, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(m->loaded_at + k, sizeof m->loaded_at - k, ".%03dZ", (int)(i->loaded_at_ms % 1000));
    m->msg.loaded_at = m->loaded_at;
    m->msg.loaded_at_unix_ms = i->loaded_at_ms;
    m->msg.calls_in_flight = i->in_flight;
    m->msg.calls_served = i->served;
    m->msg.cannot_unload = i->cannot_unload;
    m->msg.cannot_unload_reason = i->unload_note;
    m->msg.builtin = i->builtin;
    m->msg.crash_count = i->crash_count;
    m->msg.last_crash = i->last_crash;
    m->msg.last_crash_unix_ms = i->last_crash_unix_ms;
    m->msg.quarantine_reason = i->quarantine_reason;
    m->msg.build_id = i->build_id;
    m->msg.state = i->quarantined ? RPCHOST__ADMIN__V1__PLUGIN_STATE__PLUGIN_STATE_QUARANTINED
                   : i->finalised ? RPCHOST__ADMIN__V1__PLUGIN_STATE__PLUGIN_STATE_STUCK
                   : i->draining ? RPCHOST__ADMIN__V1__PLUGIN_STATE__PLUGIN_STATE_DRAINING
                                 : RPCHOST__ADMIN__V1__PLUGIN_STATE__PLUGIN_STATE_SERVING;
}

static void answer_list(rh_call *call)
{
    reg_plugin_info *infos;
    size_t n = reg_list(&infos);
    plugin_msg *msgs = calloc(n ? n : 1, sizeof *msgs);
    Rpchost__Admin__V1__Plugin **ptrs = calloc(n ? n : 1, sizeof *ptrs);
    if (!msgs || !ptrs) {
        api->finish(call, RH_RESOURCE_EXHAUSTED, "out of memory listing plugins");
    } else {
        for (size_t i = 0; i < n; i++) {
            plugin_fill(&msgs[i], &infos[i]);
            ptrs[i] = &msgs[i].msg;
        }
        Rpchost__Admin__V1__ListPluginsResponse resp =
            RPCHOST__ADMIN__V1__LIST_PLUGINS_RESPONSE__INIT;
        resp.n_plugins = n;
        resp.plugins = ptrs;
        api->send(call, &resp.base);
        api->finish(call, RH_OK, NULL);
    }
    free(ptrs);
    free(msgs);
    free(infos);
}

/* Answers with the instance loaded from path (the draining one if want
 * draining). */
static void answer_plugin(rh_call *call, const char *path, bool want_draining)
{
    reg_plugin_info *infos;
    size_t n = reg_list(&infos);
    const reg_plugin_info *hit = NULL;
    for (size_t i = 0; i < n && !hit; i++)
        if (strcmp(infos[i].file, path) == 0 && infos[i].draining == want_draining)
            hit = &infos[i];
    Rpchost__Admin__V1__PluginResponse resp = RPCHOST__ADMIN__V1__PLUGIN_RESPONSE__INIT;
    plugin_msg *m = hit ? malloc(sizeof *m) : NULL;
    if (m) {
        plugin_fill(m, hit);
        resp.plugin = &m->msg;
    }
    api->send(call, &resp.base);
    api->finish(call, RH_OK, NULL);
    free(m);
    free(infos);
}

/* ----------------------------------------------------------- the work */

static bool valid_file_name(const char *f)
{
    size_t n = strlen(f);
    return n > 3 && f[0] != '.' && !strchr(f, '/') && strcmp(f + n - 3, ".so") == 0;
}

/* The path the job is about, or NULL after finishing the call. */
static const char *job_path(admin_job *j, char *buf, size_t buflen)
{
    const char *dir = reg_dir();
    if (j->file[0]) {
        if (!valid_file_name(j->file)) {
            api->finish(j->call, RH_INVALID_ARGUMENT,
                        "file must be a plugin file name in the plugin directory, like "
                        "\"rides.so\" (no path, not hidden)");
            return NULL;
        }
        if (!dir) {
            api->finish(j->call, RH_FAILED_PRECONDITION, "the host has no plugin directory");
            return NULL;
        }
        snprintf(buf, buflen, "%s/%s", dir, j->file);
        return buf;
    }
    if (j->name[0]) {
        if (reg_file_of(j->name, buf, buflen)) return buf;
        char msg[256];
        snprintf(msg, sizeof msg,
                 "no plugin named '%s' is loaded from the plugin directory (built-in services "
                 "cannot be reloaded or unloaded)",
                 j->name);
        api->finish(j->call, RH_NOT_FOUND, msg);
        return NULL;
    }
    api->finish(j->call, RH_INVALID_ARGUMENT, "give the plugin's name or file");
    return NULL;
}

static void job_run(void *arg)
{
    admin_job *j = arg;
    char path[PATH_MAX], err[PATH_MAX + 1024];
    struct stat st;
    if (j->op == OP_LIST) {
        answer_list(j->call);
    } else if (job_path(j, path, sizeof path)) {
        int rc;
        if (j->op == OP_UNLOAD) {
            rc = reg_unload_file_err(path, err, sizeof err);
            if (rc < 0)
                api->finish(j->call, RH_NOT_FOUND, err);
            else
                answer_plugin(j->call, path, true);
        } else if (stat(path, &st) < 0) {
            snprintf(err, sizeof err, "%s: %s", path, strerror(errno));
            api->finish(j->call, RH_NOT_FOUND, err);
        } else {
            rc = reg_load_file_err(path, err, sizeof err);
            if (rc < 0)
                api->finish(j->call, RH_FAILED_PRECONDITION, err);
            else
                answer_plugin(j->call, path, false);
        }
    }
    api->call_unref(j->call);
    free(j);
}

static void post(rh_call *call, admin_op op, const char *name, const char *file)
{
    if (!admin_allowed(call)) {
        api->finish(call, RH_PERMISSION_DENIED,
                    "the admin service needs an admin principal ([rpchost] admin_principals) "
                    "or a connection to the admin Unix socket");
        return;
    }
    if ((name && strlen(name) >= RH_NAME_MAX) || (file && strlen(file) > NAME_MAX)) {
        api->finish(call, RH_INVALID_ARGUMENT, "plugin name or file name too long");
        return;
    }
    admin_job *j = calloc(1, sizeof *j);
    if (!j) {
        api->finish(call, RH_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    j->call = call;
    j->op = op;
    snprintf(j->name, sizeof j->name, "%s", name ? name : "");
    snprintf(j->file, sizeof j->file, "%s", file ? file : "");
    api->call_ref(call);
    if (reg_control_post(job_run, j) < 0) {
        api->call_unref(call);
        free(j);
        api->finish(call, RH_RESOURCE_EXHAUSTED, "out of memory");
    }
}

/* ------------------------------------------------------------ handlers */

static void list_on_message(rh_call *call, const ProtobufCMessage *msg)
{
    (void)msg;
    post(call, OP_LIST, NULL, NULL);
}

static void load_on_message(rh_call *call, const ProtobufCMessage *msg)
{
    const Rpchost__Admin__V1__LoadPluginRequest *r = (const void *)msg;
    if (!r->file || !*r->file) {
        if (admin_allowed(call))
            api->finish(call, RH_INVALID_ARGUMENT, "LoadPlugin needs file, like \"rides.so\"");
        else
            post(call, OP_LOAD, NULL, NULL); /* answers PERMISSION_DENIED */
        return;
    }
    post(call, OP_LOAD, NULL, r->file);
}

static void reload_on_message(rh_call *call, const ProtobufCMessage *msg)
{
    const Rpchost__Admin__V1__ReloadPluginRequest *r = (const void *)msg;
    post(call, OP_RELOAD, r->name, r->file);
}

static void unload_on_message(rh_call *call, const ProtobufCMessage *msg)
{
    const Rpchost__Admin__V1__UnloadPluginRequest *r = (const void *)msg;
    post(call, OP_UNLOAD, r->name, r->file);
}

/* Same order as the service's methods in admin.proto. */
static const rh_method admin_methods[] = {
    {"ListPlugins", 0, list_on_message, NULL, NULL},
    {"LoadPlugin", 0, load_on_message, NULL, NULL},
    {"ReloadPlugin", 0, reload_on_message, NULL, NULL},
    {"UnloadPlugin", 0, unload_on_message, NULL, NULL},
};

static const rh_service admin_services[] = {
    {&rpchost__admin__v1__admin__descriptor, admin_methods},
};

static int admin_init(const rh_host_api *host, rh_plugin_ctx *ctx)
{
    (void)ctx;
    api = host;
    return 0;
}

static const rh_plugin_descriptor admin_descriptor = {
    .abi = RH_ABI_BLOCK_INIT("admin", RPCHOST_VERSION),
    .services = admin_services,
    .n_services = 1,
    .descriptor_set = rh_descriptor_set,
    .descriptor_set_len = sizeof rh_descriptor_set,
    .init = admin_init,
};

const rh_plugin_descriptor *builtin_admin(void) { return &admin_descriptor; }
