/* kv: an in-memory key-value store with watches, the reference plugin for
 * long-lived streams and state across replace (docs/plugin-guide.md of
 * rpchost, "Long-lived streams and state across replace"). It serves
 * kv.v1.KV from kv.proto:
 *   Put    unary:            {key, value} -> {version}
 *   Get    unary:            {key} -> {value, version}, NOT_FOUND if unknown
 *   Watch  server streaming: {prefix} -> every later Put under prefix
 *
 * What it shows:
 * - Fan-out from any worker: a Put sends the event to each watcher right
 *   from the Put's thread; the host delivers one call's sends in the order
 *   they were made, whichever threads made them, so holding the store's
 *   lock while sending is all it takes to keep events in version order.
 * - Backpressure: a watcher whose client reads slowly gets its events
 *   queued here (up to watch_backlog of them) and drained by a
 *   notify_writable callback; one that falls further behind is ended with
 *   RESOURCE_EXHAUSTED instead of growing the host's memory.
 * - State across replace: the store is one heap object that the old
 *   instance exports and the new one imports; both use it until the old
 *   one's fini, so no write is lost while the switch happens.
 * - Streams across replace: the new build adopts the running Watch calls
 *   of the old one (adopt_call), so a Watch keeps streaming, every event
 *   once and in order, while kv.so is replaced.
 * - Retire: when removed, or replaced by a build that cannot take the
 *   store (another layout), the instance ends its watches with UNAVAILABLE
 *   at once instead of leaving them silent until the drain timeout.
 *
 * Configuration ([plugin.kv]):
 *   max_bytes      = 67108864  keys + values the store may hold
 *   watch_backlog  = 4096      events queued per slow watcher at most
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpchost/plugin.h"
#include "rpchost_descriptor_set.h"
#include "kv.pb-c.h"

#if RPCHOST_ABI_MINOR < 2
#error "kv needs rpchost ABI 1.2 (post, send_headers, retire, export_state)"
#endif

#ifndef KV_VERSION
#define KV_VERSION "1.0.0"
#endif
/* The layout of kv_store and what hangs off it. Change it whenever those
 * structs change: a build with another layout then starts empty (and says
 * so) instead of reading the old build's memory wrongly. */
#ifndef KV_STATE_VERSION
#define KV_STATE_VERSION 2 /* 2: watchers count their queued bytes */
#endif

#define KV_MAX_KEY 4096
#define KV_DEFAULT_MAX_BYTES (64u << 20)
#define KV_DEFAULT_BACKLOG 4096
/* A watcher's response bytes held by the host before we queue here
 * instead, and the level at which the queue drains again. */
#define KV_SEND_HIGH (256u << 10)
#define KV_SEND_LOW (64u << 10)

/* ----------------------------------------------------------------------
 * The store: shared by the instances of a replace (see kv_export). It
 * holds no pointer into this image's code or static data.
 * -------------------------------------------------------------------- */

typedef struct kv_item {
    struct kv_item *next; /* hash chain */
    uint64_t hash;
    int64_t version;
    size_t klen, vlen;
    uint8_t data[]; /* key, then value */
} kv_item;

typedef struct kv_event {
    struct kv_event *next;
    int64_t version;
    size_t klen, vlen;
    uint8_t data[]; /* key, then value */
} kv_event;

/* One Watch call, in its call state (host memory until the call's last
 * reference goes: we hold one while it is linked). */
typedef struct watcher {
    struct watcher *prev, *next; /* store->watchers, while linked */
    rh_call *call;
    const uint8_t *prefix; /* the request's bytes: valid for the whole call */
    size_t plen;
    const void *owner;    /* the instance (ctx) that accepted it */
    kv_event *head, *tail; /* events waiting for the client to read */
    size_t backlog;        /* events queued */
    size_t backlog_bytes;  /* their keys and values */
    bool linked;
    bool waiting; /* a notify_writable is pending */
} watcher;

typedef struct kv_store {
    uint32_t layout; /* KV_STATE_VERSION */
    atomic_int users; /* instances using it; the last fini frees it */
    pthread_mutex_t mu;
    int64_t version;
    size_t n_items, n_buckets, bytes;
    kv_item **buckets;
    watcher *watchers;
} kv_store;

/* Per instance (each load is its own copy of these). */
static const rh_host_api *api;
static rh_plugin_ctx *self;
static kv_store *store;
static size_t max_bytes = KV_DEFAULT_MAX_BYTES;
static size_t max_backlog = KV_DEFAULT_BACKLOG;

static uint64_t hash_key(const uint8_t *k, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ k[i]) * 1099511628211ull;
    return h;
}

static kv_store *store_new(void)
{
    kv_store *st = calloc(1, sizeof *st);
    if (!st) return NULL;
    st->n_buckets = 1024;
    st->buckets = calloc(st->n_buckets, sizeof *st->buckets);
    if (!st->buckets || pthread_mutex_init(&st->mu, NULL) != 0) {
        free(st->buckets);
        free(st);
        return NULL;
    }
    st->layout = KV_STATE_VERSION;
    atomic_init(&st->users, 1);
    return st;
}

/* Only when no instance uses it any more: no watcher is linked then (each
 * instance's calls ended before its fini). */
static void store_free(kv_store *st)
{
    for (size_t b = 0; b < st->n_buckets; b++)
        for (kv_item *it = st->buckets[b], *next; it; it = next) {
            next = it->next;
            free(it);
        }
    free(st->buckets);
    pthread_mutex_destroy(&st->mu);
    free(st);
}

static void store_release(kv_store *st)
{
    if (st && atomic_fetch_sub(&st->users, 1) == 1) store_free(st);
}

static kv_item **find_slot(kv_store *st, const uint8_t *key, size_t klen, uint64_t h)
{
    kv_item **pp = &st->buckets[h & (st->n_buckets - 1)];
    for (; *pp; pp = &(*pp)->next)
        if ((*pp)->hash == h && (*pp)->klen == klen && memcmp((*pp)->data, key, klen) == 0)
            return pp;
    return pp;
}

/* Doubles the table when it is full; on no memory it stays as it is
 * (longer chains, still correct). Under st->mu. */
static void maybe_grow(kv_store *st)
{
    if (st->n_items < st->n_buckets) return;
    size_t n = st->n_buckets * 2;
    kv_item **b = calloc(n, sizeof *b);
    if (!b) return;
    for (size_t i = 0; i < st->n_buckets; i++)
        for (kv_item *it = st->buckets[i], *next; it; it = next) {
            next = it->next;
            it->next = b[it->hash & (n - 1)];
            b[it->hash & (n - 1)] = it;
        }
    free(st->buckets);
    st->buckets = b;
    st->n_buckets = n;
}

/* ----------------------------------------------------------------------
 * Watchers
 * -------------------------------------------------------------------- */

static void backlog_free(watcher *w)
{
    for (kv_event *e = w->head, *next; e; e = next) {
        next = e->next;
        free(e);
    }
    w->head = w->tail = NULL;
    w->backlog = w->backlog_bytes = 0;
}

/* Takes w out of the store. Returns whether it was linked: the caller then
 * drops the call reference the link held, after unlocking. Under st->mu. */
static bool unlink_watcher(kv_store *st, watcher *w)
{
    if (!w->linked) return false;
    w->linked = false;
    if (w->prev) w->prev->next = w->next;
    else st->watchers = w->next;
    if (w->next) w->next->prev = w->prev;
    w->prev = w->next = NULL;
    backlog_free(w);
    return true;
}

static int send_event(watcher *w, const uint8_t *key, size_t klen, const uint8_t *val,
                      size_t vlen, int64_t version)
{
    Kv__V1__Event ev = KV__V1__EVENT__INIT;
    ev.key.data = (uint8_t *)key;
    ev.key.len = klen;
    ev.value.data = (uint8_t *)val;
    ev.value.len = vlen;
    ev.version = version;
    return api->send(w->call, &ev.base); /* serialised now: ev may go */
}

static void drain(rh_call *call, void *arg);

/* Sends queued events while the host holds little of this watcher's
 * output; waits for it to drain otherwise. Under st->mu. */
static void pump(watcher *w)
{
    while (w->head && api->send_queued(w->call) <= KV_SEND_HIGH) {
        kv_event *e = w->head;
        send_event(w, e->data, e->klen, e->data + e->klen, e->vlen, e->version);
        w->head = e->next;
        if (!w->head) w->tail = NULL;
        w->backlog--;
        w->backlog_bytes -= e->klen + e->vlen;
        free(e);
    }
    if (w->head && !w->waiting) {
        /* Never runs drain inside notify_writable: safe under our lock. */
        if (api->notify_writable(w->call, KV_SEND_LOW, drain, w) == 0) w->waiting = true;
    }
}

/* notify_writable callback, on the watcher's worker. The host holds a call
 * reference until we return, so w (in the call state) is valid. */
static void drain(rh_call *call, void *arg)
{
    watcher *w = arg;
    (void)call;
    pthread_mutex_lock(&store->mu);
    w->waiting = false;
    if (w->linked) pump(w);
    pthread_mutex_unlock(&store->mu);
}

/* One Put, to one watcher. Under st->mu. Returns false when the watcher
 * must be ended (too far behind, or no memory to queue). */
static bool deliver(watcher *w, const kv_item *it)
{
    const uint8_t *key = it->data, *val = it->data + it->klen;
    if (!w->head && api->send_queued(w->call) <= KV_SEND_HIGH) {
        send_event(w, key, it->klen, val, it->vlen, it->version);
        return true; /* RH_E_CANCELLED: on_cancel unlinks it */
    }
    /* Bounded in bytes too: events are copies, and a client that does
     * not read could otherwise pin watch_backlog large values (4096 of
     * 4 MiB: 16 GiB). A watcher never queues more than the store holds. */
    size_t size = it->klen + it->vlen;
    if (w->backlog >= max_backlog || size > max_bytes - w->backlog_bytes) return false;
    kv_event *e = malloc(sizeof *e + it->klen + it->vlen);
    if (!e) return false;
    e->next = NULL;
    e->version = it->version;
    e->klen = it->klen;
    e->vlen = it->vlen;
    memcpy(e->data, key, it->klen + it->vlen);
    if (w->tail) w->tail->next = e;
    else w->head = e;
    w->tail = e;
    w->backlog++;
    w->backlog_bytes += size;
    pump(w);
    return true;
}

/* ----------------------------------------------------------------------
 * Handlers
 * -------------------------------------------------------------------- */

static void finish_error(rh_call *call, rh_status code, const char *fmt, size_t n)
{
    char why[160];
    snprintf(why, sizeof why, fmt, n);
    api->finish(call, code, why);
}

static void kv_put(rh_call *call, const ProtobufCMessage *msg)
{
    const Kv__V1__PutRequest *req = (const Kv__V1__PutRequest *)msg;
    size_t klen = req->key.len, vlen = req->value.len;
    if (klen == 0 || klen > KV_MAX_KEY) {
        finish_error(call, RH_INVALID_ARGUMENT, "key must be 1 to %zu bytes", KV_MAX_KEY);
        return;
    }
    kv_item *it = malloc(sizeof *it + klen + vlen);
    if (!it) {
        api->finish(call, RH_RESOURCE_EXHAUSTED, "kv: out of memory");
        return;
    }
    it->hash = hash_key(req->key.data, klen);
    it->klen = klen;
    it->vlen = vlen;
    memcpy(it->data, req->key.data, klen);
    if (vlen) memcpy(it->data + klen, req->value.data, vlen);

    kv_store *st = store;
    watcher *ended = NULL; /* chained through prev once unlinked */
    pthread_mutex_lock(&st->mu);
    kv_item **slot = find_slot(st, it->data, klen, it->hash);
    size_t old_bytes = *slot ? (*slot)->klen + (*slot)->vlen : 0;
    if (st->bytes - old_bytes + klen + vlen > max_bytes) {
        pthread_mutex_unlock(&st->mu);
        free(it);
        finish_error(call, RH_RESOURCE_EXHAUSTED,
                     "the store is full ([plugin.kv] max_bytes = %zu)", max_bytes);
        return;
    }
    it->version = ++st->version;
    it->next = *slot ? (*slot)->next : NULL;
    if (*slot) free(*slot);
    else st->n_items++;
    *slot = it;
    st->bytes = st->bytes - old_bytes + klen + vlen;
    for (watcher *w = st->watchers, *next; w; w = next) {
        next = w->next;
        /* An empty prefix (its bytes may be NULL) watches everything. */
        if (w->plen && (w->plen > klen || memcmp(w->prefix, it->data, w->plen) != 0)) continue;
        if (!deliver(w, it)) {
            unlink_watcher(st, w);
            w->prev = ended;
            ended = w;
        }
    }
    int64_t version = it->version;
    maybe_grow(st);
    pthread_mutex_unlock(&st->mu);

    while (ended) {
        watcher *w = ended;
        ended = w->prev;
        rh_call *wc = w->call;
        char why[200];
        snprintf(why, sizeof why,
                 "watcher fell more than %zu events or %zu bytes behind: read faster or watch "
                 "a narrower prefix",
                 max_backlog, max_bytes);
        api->finish(wc, RH_RESOURCE_EXHAUSTED, why);
        api->call_unref(wc); /* w may be gone from here on */
    }
    Kv__V1__PutReply reply = KV__V1__PUT_REPLY__INIT;
    reply.version = version;
    if (api->send(call, &reply.base) == 0) api->finish(call, RH_OK, NULL);
}

static void kv_get(rh_call *call, const ProtobufCMessage *msg)
{
    const Kv__V1__GetRequest *req = (const Kv__V1__GetRequest *)msg;
    size_t klen = req->key.len;
    if (klen == 0 || klen > KV_MAX_KEY) {
        finish_error(call, RH_INVALID_ARGUMENT, "key must be 1 to %zu bytes", KV_MAX_KEY);
        return;
    }
    Kv__V1__GetReply reply = KV__V1__GET_REPLY__INIT;
    uint8_t *copy = NULL;
    bool found = false, nomem = false;
    kv_store *st = store;
    pthread_mutex_lock(&st->mu);
    kv_item *it = *find_slot(st, req->key.data, klen, hash_key(req->key.data, klen));
    if (it) {
        found = true;
        /* A copy: a Put may free the item as soon as we unlock. */
        copy = malloc(it->vlen ? it->vlen : 1);
        if (copy) {
            memcpy(copy, it->data + it->klen, it->vlen);
            reply.value.data = copy;
            reply.value.len = it->vlen;
            reply.version = it->version;
        } else {
            nomem = true;
        }
    }
    pthread_mutex_unlock(&st->mu);
    if (!found) {
        api->finish(call, RH_NOT_FOUND, "no such key");
    } else if (nomem) {
        api->finish(call, RH_RESOURCE_EXHAUSTED, "kv: out of memory");
    } else if (api->send(call, &reply.base) == 0) {
        api->finish(call, RH_OK, NULL);
    }
    free(copy);
}

static void kv_watch(rh_call *call, const ProtobufCMessage *msg)
{
    const Kv__V1__WatchRequest *req = (const Kv__V1__WatchRequest *)msg;
    watcher *w = api->call_state(call);
    w->call = call;
    w->prefix = req->prefix.data;
    w->plen = req->prefix.len;
    w->owner = self;
    api->call_ref(call); /* held while linked */
    kv_store *st = store;
    pthread_mutex_lock(&st->mu);
    w->linked = true;
    w->next = st->watchers;
    if (w->next) w->next->prev = w;
    st->watchers = w;
    pthread_mutex_unlock(&st->mu);
    /* Registered: the headers tell the client so before any event. */
    api->send_headers(call, NULL, 0);
}

/* The client went away, or the host ended the call. */
static void kv_watch_cancel(rh_call *call)
{
    watcher *w = api->call_state(call);
    pthread_mutex_lock(&store->mu);
    bool was_linked = unlink_watcher(store, w);
    pthread_mutex_unlock(&store->mu);
    if (was_linked) api->call_unref(call);
}

static const rh_method kv_methods[] = {
    {.name = "Put", .on_message = kv_put},
    {.name = "Get", .on_message = kv_get},
    {.name = "Watch",
     .call_state_size = sizeof(watcher),
     .on_message = kv_watch,
     .on_cancel = kv_watch_cancel},
};
static const rh_service services[] = {
    {&kv__v1__kv__descriptor, kv_methods},
};

/* ----------------------------------------------------------------------
 * Lifecycle
 * -------------------------------------------------------------------- */

static int config_size(rh_plugin_ctx *ctx, const char *key, size_t *out)
{
    const char *v = api->config_get(ctx, key);
    if (!v) return 0;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno || end == v || *end || n == 0 || v[0] == '-') {
        api->log(ctx, RH_LOG_ERROR, "[plugin.kv] %s = \"%s\": want a positive whole number", key,
                 v);
        return -EINVAL;
    }
    *out = (size_t)n;
    return 0;
}

static int kv_init(const rh_host_api *host, rh_plugin_ctx *ctx)
{
    api = host;
    self = ctx;
    if (api->size <= offsetof(rh_host_api, adopt_call)) {
        api->log(ctx, RH_LOG_ERROR,
                 "this host is older than ABI 1.2: kv needs send_headers and adopt_call");
        return -ENOTSUP;
    }
    if (config_size(ctx, "max_bytes", &max_bytes) < 0 ||
        config_size(ctx, "watch_backlog", &max_backlog) < 0)
        return -EINVAL;
    store = store_new();
    if (!store) {
        api->log(ctx, RH_LOG_ERROR, "out of memory for the store");
        return -ENOMEM;
    }
    return 0;
}

static void kv_fini(rh_plugin_ctx *ctx)
{
    (void)ctx;
    store_release(store);
    store = NULL;
}

/* Watches the successor did not adopt (removed, or a build with another
 * store layout) end now instead of at the drain timeout. */
static void kv_retire(rh_plugin_ctx *ctx, rh_retire_reason why)
{
    watcher *ended = NULL;
    pthread_mutex_lock(&store->mu);
    for (watcher *w = store->watchers, *next; w; w = next) {
        next = w->next;
        if (w->owner != ctx) continue; /* the successor's, in a shared store */
        unlink_watcher(store, w);
        w->prev = ended;
        ended = w;
    }
    pthread_mutex_unlock(&store->mu);
    while (ended) {
        watcher *w = ended;
        ended = w->prev;
        rh_call *call = w->call;
        api->finish(call, RH_UNAVAILABLE,
                    why == RH_RETIRE_REPLACED
                        ? "kv is being replaced by a new build: watch again"
                        : "kv was removed from this server");
        api->call_unref(call);
    }
}

static void *kv_export(rh_plugin_ctx *ctx, uint32_t *state_version)
{
    (void)ctx;
    *state_version = KV_STATE_VERSION;
    return store;
}

static int kv_import(rh_plugin_ctx *ctx, void *state, uint32_t state_version)
{
    kv_store *st = state;
    if (state_version != KV_STATE_VERSION || st->layout != KV_STATE_VERSION) {
        api->log(ctx, RH_LOG_WARN,
                 "the running build keeps its store in layout %u, this build reads layout %d: "
                 "starting with an empty store",
                 state_version, KV_STATE_VERSION);
        return -EPROTO;
    }
    atomic_fetch_add(&st->users, 1);
    store_release(store); /* our own, empty and never used */
    store = st;
    /* The running watches move to this build: they keep streaming (the
     * store, and so their events, is shared) and the old build's drain
     * timeout no longer ends them. */
    size_t adopted = 0, kept = 0;
    pthread_mutex_lock(&st->mu);
    for (watcher *w = st->watchers; w; w = w->next) {
        if (w->owner == ctx) continue;
        if (api->adopt_call(ctx, w->call) == 0) {
            w->owner = ctx;
            adopted++;
        } else {
            kept++; /* ending: its on_cancel unlinks it */
        }
    }
    size_t n = st->n_items;
    int64_t version = st->version;
    pthread_mutex_unlock(&st->mu);
    api->log(ctx, RH_LOG_INFO, "took over %zu keys at version %lld and %zu running watches%s", n,
             (long long)version, adopted, kept ? " (others were ending)" : "");
    return 0;
}

static const rh_plugin_descriptor descriptor = {
    .services = services,
    .n_services = sizeof services / sizeof services[0],
    .descriptor_set = rh_descriptor_set,
    .descriptor_set_len = sizeof rh_descriptor_set,
    .init = kv_init,
    .fini = kv_fini,
    .retire = kv_retire,
    .export_state = kv_export,
    .import_state = kv_import,
};

RPCHOST_PLUGIN("kv", KV_VERSION, descriptor);
