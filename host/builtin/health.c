/* grpc.health.v1.Health, a built-in service written against the plugin
 * API (protocol: grpc/grpc doc/health-checking.md).
 *
 * Status of a service:
 *  - ""  (the host as a whole): SERVING, NOT_SERVING once draining;
 *  - a service of an instance in the current registry snapshot: SERVING,
 *    NOT_SERVING once draining or while the plugin says it cannot serve
 *    (set_serving, ABI 1.2: e.g. Rides while its database is down);
 *  - a service that was served earlier and whose plugin is gone, or a
 *    service of a quarantined plugin (crashed the host too often):
 *    NOT_SERVING;
 *  - any other name: Check answers NOT_FOUND; Watch sends SERVICE_UNKNOWN
 *    and keeps watching (the plugin may arrive later).
 *
 * Watch streams live in a list. The registry calls health_changed() on the
 * control thread after every snapshot it publishes; each watcher then
 * recomputes its status and sends it if it changed. A watcher lives in its
 * call's state; while listed it holds a call reference, so the call (and
 * the watcher) stay valid for sends from the control thread. All Watch
 * sends go under one lock, and each send recomputes the status under it,
 * so whatever the interleaving, the last message a client gets is the
 * current status. On shutdown every stream gets NOT_SERVING, then ends
 * with UNAVAILABLE so the drain does not wait on streams that never end. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builtin_descriptor_set.h"
#include "builtin/builtin.h"
#include "grpc/health/v1/health.pb-c.h"
#include "registry/registry.h"

#define HEALTH_MAX_KNOWN 4096 /* names remembered as "was served" */
#define HEALTH_MAX_NAME 512

enum {
    ST_NOT_FOUND = -1,
    ST_SERVING = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING,
    ST_NOT_SERVING = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING,
    ST_UNKNOWN = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN,
};

/* One Watch stream; lives in the call state (zeroed by the host). */
typedef struct watcher {
    rh_call *call;
    const char *service; /* in the call arena */
    bool started;        /* its request arrived */
    bool listed;         /* in H.watchers, holding a call reference */
    bool ended;          /* finished by us */
    int last;            /* last status sent, 0 = none */
    struct watcher *next;
} watcher;

static const rh_host_api *api;
static atomic_bool draining;

static struct {
    pthread_mutex_t lock;      /* watchers, known */
    pthread_mutex_t send_lock; /* every Watch send, and watcher.last/ended */
    watcher *watchers;
    char **known;
    size_t n_known;
    bool hooked;
} H = {.lock = PTHREAD_MUTEX_INITIALIZER, .send_lock = PTHREAD_MUTEX_INITIALIZER};

/* ---- status ------------------------------------------------------------- */

/* The instance of the snapshot that serves the service, or NULL. */
static const reg_instance *snapshot_server(const reg_snapshot *snap, const char *name)
{
    for (size_t i = 0; snap && i < snap->n_instances; i++) {
        const rh_plugin_descriptor *d = reg_instance_descriptor(snap->instances[i]);
        for (size_t s = 0; s < d->n_services; s++)
            if (d->services[s].descriptor && d->services[s].descriptor->name &&
                !strcmp(d->services[s].descriptor->name, name))
                return snap->instances[i];
    }
    return NULL;
}

static bool known_has(const char *name)
{
    bool found = false;
    pthread_mutex_lock(&H.lock);
    for (size_t i = 0; i < H.n_known && !found; i++)
        found = !strcmp(H.known[i], name);
    pthread_mutex_unlock(&H.lock);
    return found;
}

/* Remembers every service of the snapshot (so a removed one reads as
 * NOT_SERVING rather than unknown). */
static void known_add_all(const reg_snapshot *snap)
{
    pthread_mutex_lock(&H.lock);
    if (!H.known)
        H.known = calloc(HEALTH_MAX_KNOWN, sizeof *H.known);
    for (size_t i = 0; H.known && snap && i < snap->n_instances; i++) {
        const rh_plugin_descriptor *d = reg_instance_descriptor(snap->instances[i]);
        for (size_t s = 0; s < d->n_services && H.n_known < HEALTH_MAX_KNOWN; s++) {
            const char *name = d->services[s].descriptor ? d->services[s].descriptor->name : NULL;
            bool seen = !name;
            for (size_t k = 0; k < H.n_known && !seen; k++)
                seen = !strcmp(H.known[k], name);
            if (!seen && (H.known[H.n_known] = strdup(name)))
                H.n_known++;
        }
    }
    pthread_mutex_unlock(&H.lock);
}

/* ST_SERVING / ST_NOT_SERVING, or ST_NOT_FOUND for a name never served. */
static int status_of(const char *name)
{
    bool drain = atomic_load(&draining);
    if (!*name)
        return drain ? ST_NOT_SERVING : ST_SERVING;
    reg_snapshot *snap = reg_acquire();
    const reg_instance *inst = snapshot_server(snap, name);
    /* A plugin may say it cannot serve (set_serving, ABI 1.2). */
    bool serving = inst && reg_instance_serving(inst);
    /* A quarantined plugin's service exists but does not serve. */
    bool quarantined = !inst && reg_service_quarantined(snap, name);
    if (snap)
        reg_snapshot_release(snap);
    if (inst)
        return drain || !serving ? ST_NOT_SERVING : ST_SERVING;
    return quarantined || known_has(name) ? ST_NOT_SERVING : ST_NOT_FOUND;
}

static int send_status(rh_call *call, int st)
{
    Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    resp.status = (Grpc__Health__V1__HealthCheckResponse__ServingStatus)st;
    return api->send(call, &resp.base);
}

/* ---- Check -------------------------------------------------------------- */

static void check_on_message(rh_call *call, const ProtobufCMessage *msg)
{
    const Grpc__Health__V1__HealthCheckRequest *req = (const void *)msg;
    const char *name = req->service ? req->service : "";
    int st = status_of(name);
    if (st == ST_NOT_FOUND) {
        char m[HEALTH_MAX_NAME + 32];
        snprintf(m, sizeof m, "unknown service: %.*s", HEALTH_MAX_NAME, name);
        api->finish(call, RH_NOT_FOUND, m);
        return;
    }
    if (send_status(call, st) == 0)
        api->finish(call, RH_OK, NULL);
}

/* ---- Watch -------------------------------------------------------------- */

/* Drops w from the list and its call reference, once. */
static void watcher_unlist(watcher *w)
{
    bool was;
    pthread_mutex_lock(&H.lock);
    was = w->listed;
    if (was) {
        for (watcher **p = &H.watchers; *p; p = &(*p)->next)
            if (*p == w) {
                *p = w->next;
                break;
            }
        w->listed = false;
    }
    pthread_mutex_unlock(&H.lock);
    if (was)
        api->call_unref(w->call);
}

/* Sends w's current status if it changed; on shutdown also ends the call.
 * The caller holds a call reference. */
static void watcher_notify(watcher *w, bool end)
{
    pthread_mutex_lock(&H.send_lock);
    int rc = 0;
    if (!w->ended) {
        int st = status_of(w->service);
        if (st == ST_NOT_FOUND)
            st = ST_UNKNOWN;
        if (st != w->last) {
            rc = send_status(w->call, st);
            w->last = st;
        }
        if (end && rc == 0) {
            rc = api->finish(w->call, RH_UNAVAILABLE, "rpchost is shutting down");
            w->ended = true;
        }
    }
    pthread_mutex_unlock(&H.send_lock);
    if (end || rc != 0) /* ended, cancelled, or cannot send: stop watching */
        watcher_unlist(w);
}

/* Every listed watcher, each with a call reference; the caller unrefs. */
static watcher **watchers_take(size_t *n)
{
    pthread_mutex_lock(&H.lock);
    size_t count = 0;
    for (watcher *w = H.watchers; w; w = w->next)
        count++;
    watcher **all = calloc(count + 1, sizeof *all);
    *n = 0;
    for (watcher *w = H.watchers; all && w; w = w->next) {
        api->call_ref(w->call);
        all[(*n)++] = w;
    }
    pthread_mutex_unlock(&H.lock);
    return all;
}

static void watchers_notify_all(bool end)
{
    size_t n;
    watcher **all = watchers_take(&n);
    for (size_t i = 0; i < n; i++) {
        rh_call *call = all[i]->call;
        watcher_notify(all[i], end);
        api->call_unref(call);
    }
    free(all);
}

static void watch_on_message(rh_call *call, const ProtobufCMessage *msg)
{
    watcher *w = api->call_state(call);
    if (w->started)
        return; /* one request per Watch; more are ignored */
    const Grpc__Health__V1__HealthCheckRequest *req = (const void *)msg;
    const char *name = req->service ? req->service : "";
    size_t len = strnlen(name, HEALTH_MAX_NAME);
    char *copy = api->arena_alloc(call, len + 1);
    if (!copy) {
        api->finish(call, RH_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    memcpy(copy, name, len);
    copy[len] = '\0';
    w->call = call;
    w->service = copy;
    w->started = true;
    api->call_ref(call); /* the list's reference */
    pthread_mutex_lock(&H.lock);
    w->listed = true;
    w->next = H.watchers;
    H.watchers = w;
    pthread_mutex_unlock(&H.lock);
    /* Listed before the first send, so no change can slip between. */
    watcher_notify(w, atomic_load(&draining));
}

static void watch_on_half_close(rh_call *call)
{
    watcher *w = api->call_state(call);
    if (!w->started)
        api->finish(call, RH_INVALID_ARGUMENT, "Watch needs a HealthCheckRequest");
    /* Otherwise the client is done sending: the stream goes on. */
}

static void watch_on_cancel(rh_call *call)
{
    watcher *w = api->call_state(call);
    if (w->started)
        watcher_unlist(w);
}

/* ---- registry hooks --------------------------------------------------------- */

/* Runs on the control thread after every published snapshot. */
static void health_changed(void *arg)
{
    (void)arg;
    if (!api)
        return; /* not initialised yet */
    reg_snapshot *snap = reg_acquire();
    known_add_all(snap);
    if (snap)
        reg_snapshot_release(snap);
    watchers_notify_all(atomic_load(&draining));
}

void health_begin_shutdown(void)
{
    atomic_store(&draining, true);
    if (api)
        watchers_notify_all(true);
}

static const rh_method methods[] = {
    {.name = "Check", .on_message = check_on_message},
    {.name = "Watch",
     .call_state_size = sizeof(watcher),
     .on_message = watch_on_message,
     .on_half_close = watch_on_half_close,
     .on_cancel = watch_on_cancel},
};
static const rh_service services[] = {{&grpc__health__v1__health__descriptor, methods}};

static int health_init(const rh_host_api *host, rh_plugin_ctx *ctx)
{
    (void)ctx;
    api = host;
    return 0;
}

static void health_fini(rh_plugin_ctx *ctx)
{
    (void)ctx;
    /* Streams still listed (none after a drain): let their calls go. */
    size_t n;
    watcher **all = watchers_take(&n);
    for (size_t i = 0; i < n; i++) {
        rh_call *call = all[i]->call;
        watcher_unlist(all[i]);
        api->call_unref(call);
    }
    free(all);
    pthread_mutex_lock(&H.lock);
    for (size_t i = 0; i < H.n_known; i++)
        free(H.known[i]);
    free(H.known);
    H.known = NULL;
    H.n_known = 0;
    pthread_mutex_unlock(&H.lock);
    api = NULL;
}

static const rh_plugin_descriptor health_descriptor = {
    .abi = RH_ABI_BLOCK_INIT("health", RPCHOST_VERSION),
    .services = services,
    .n_services = 1,
    .descriptor_set = rh_descriptor_set,
    .descriptor_set_len = sizeof rh_descriptor_set,
    .init = health_init,
    .fini = health_fini,
};

const rh_plugin_descriptor *builtin_health(void)
{
    /* Hooked here, not in init: init runs under the registry's lock, which
     * reg_on_change takes too. */
    pthread_mutex_lock(&H.lock);
    bool hook = !H.hooked;
    H.hooked = true;
    pthread_mutex_unlock(&H.lock);
    if (hook)
        reg_on_change(health_changed, NULL);
    return &health_descriptor;
}
