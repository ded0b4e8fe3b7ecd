/* The registry: plugin instances, the immutable routing snapshot workers
 * read, and the retire -> fini -> dlclose path of replaced and removed
 * plugins. See registry.h for the lifetimes.
 *
 * Locks: `ctl` serialises every change (load, replace, unload, rescan,
 * finalise, listing); `snap_lock` only guards the current-snapshot pointer
 * for the instant of taking a reference; `q_lock` guards the queue of
 * instances whose last reference went (that can happen on any thread) and
 * of jobs posted to the control thread. Order: ctl -> snap_lock, ctl ->
 * q_lock; never the other way round. */
#define _GNU_SOURCE
#include "registry/registry.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "registry/loader.h"
#include "core/core.h"
#include "registry/reg_routes.h"
#include "config/config.h"
#include "crash/crash.h"
#include "metrics/metrics.h"

#define REG_DEFAULT_DRAIN_MS 30000

struct rh_plugin_ctx {
    reg_instance *inst;
};

/* One generation of a plugin's [plugin.NAME] section. Older generations are
 * kept until fini, since config_get's results stay valid until then. */
typedef struct inst_config {
    settings_kv *kv;
    size_t n;
    struct inst_config *older;
} inst_config;

struct reg_instance {
    struct rh_plugin_ctx ctx;
    atomic_long refs;      /* the registry's live ref + one per snapshot */
    atomic_long in_flight; /* calls running in this instance */
    atomic_ullong served;  /* calls ended */
    _Atomic(inst_config *) config;
    char name[RH_NAME_MAX];
    char version[RH_VERSION_MAX];
    char *file; /* NULL for built-ins */
    rh_plugin_descriptor desc;
    loader_image img;
    bool has_image;
    bool builtin;
    bool initialised;
    atomic_bool retired;
    atomic_bool not_serving; /* set_serving(0): health says NOT_SERVING */
    bool finalised; /* fini ran but the object stayed mapped (kept listed) */
    bool cancel_sent;
    int64_t drain_deadline_ms; /* CLOCK_MONOTONIC */
    int64_t loaded_at_ms;      /* Unix time */
    uint64_t order;            /* load order; a replacement takes its slot */
    reg_route *routes;
    size_t n_routes;
    reg_chain_entry *icpts;
    size_t n_icpts;
    bool cannot_unload;
    char unload_note[256];
    pid_t *init_tids; /* threads that appeared while init ran */
    size_t n_init_tids;
    int crash_slot;        /* in crash.c's image table, -1 none */
    char build_key[17];    /* loader_image.build_key */
    /* A quarantined build: no code, its routes answer UNAVAILABLE with
     * q_message; q_services are the services health reports NOT_SERVING. */
    bool quarantined;
    char *q_message;
    char *q_services; /* "\n"-separated */
    reg_instance *next;      /* R.instances (every instance not freed) */
    reg_instance *dead_next; /* R.dead */
};

typedef struct snap_full {
    reg_snapshot pub;
    uint32_t mask;
    int32_t *slots; /* open addressing: index into routes, -1 empty */
    reg_route *routes;
    reg_chain_entry *chain;
    reg_instance **insts;
} snap_full;

typedef enum { FR_LOADED, FR_FAILED, FR_UNLOADED } file_state;

/* What we last did with a file of the directory, and the identity of the
 * file we did it with: unchanged files are not retried on a rescan. */
typedef struct file_rec {
    char *path;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    file_state state;
} file_rec;

typedef struct job {
    void (*fn)(void *arg);
    void *arg;
    struct job *next;
} job;

static struct {
    pthread_mutex_t ctl;
    pthread_mutex_t snap_lock;
    pthread_mutex_t q_lock;
    reg_snapshot *current;
    _Atomic uint64_t generation;
    uint64_t next_generation;
    reg_instance *instances;
    uint64_t next_order;
    reg_instance *dead;
    job *jobs, *jobs_tail;
    int efd;
    const rh_host_api *api;
    void (*cancel)(reg_instance *, rh_status, const char *);
    struct {
        void (*cb)(void *);
        void *arg;
    } on_change[8];
    size_t n_on_change;
    char *dir;
    file_rec *files;
    size_t n_files;
} R = {
    .ctl = PTHREAD_MUTEX_INITIALIZER,
    .snap_lock = PTHREAD_MUTEX_INITIALIZER,
    .q_lock = PTHREAD_MUTEX_INITIALIZER,
    .efd = -1,
};

/* ------------------------------------------------------------- helpers */

static int64_t now_ms(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Route table hash: eight bytes a step (a byte-wise FNV-1a cost ~7
 * instructions per byte of every request's :path, the largest single
 * item of a route lookup). Multiply-xorshift mixing; the table is built
 * from plugin routes and probing stops at the first empty slot, so a
 * client choosing colliding paths only lengthens its own lookup. */
static uint64_t route_hash(const char *s, size_t n)
{
    const uint64_t k = 0x9e3779b97f4a7c15ull;
    uint64_t h = 0xcbf29ce484222325ull ^ n;
    uint64_t w;
    for (; n >= 8; s += 8, n -= 8) {
        memcpy(&w, s, 8);
        h = (h ^ w) * k;
        h ^= h >> 29;
    }
    w = 0;
    memcpy(&w, s, n);
    h = (h ^ w) * k;
    return h ^ (h >> 32);
}

/* The process's thread ids (sorted), from /proc/self/task. */
static size_t list_tids(pid_t **out)
{
    *out = NULL;
    DIR *d = opendir("/proc/self/task");
    if (!d) return 0;
    size_t n = 0, cap = 0;
    pid_t *v = NULL;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            pid_t *grown = realloc(v, ncap * sizeof *v);
            if (!grown) break;
            v = grown;
            cap = ncap;
        }
        v[n++] = (pid_t)atoi(e->d_name);
    }
    closedir(d);
    *out = v;
    return n;
}

static bool tid_alive(pid_t tid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d", (int)tid);
    return access(path, F_OK) == 0;
}

/* Threads started by init still alive after fini: give them a moment to
 * finish exiting (a fini that signals and joins is done already). */
static size_t threads_left(const reg_instance *inst)
{
    size_t alive = 0;
    for (int round = 0; round < 20; round++) {
        alive = 0;
        for (size_t i = 0; i < inst->n_init_tids; i++) alive += tid_alive(inst->init_tids[i]);
        if (!alive) break;
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    return alive;
}

static const char *inst_label(const reg_instance *inst)
{
    return inst->file ? inst->file : "(built-in)";
}

static void wake_control(void)
{
    if (R.efd >= 0) {
        uint64_t one = 1;
        ssize_t w = write(R.efd, &one, sizeof one);
        (void)w;
    }
}

static uint32_t drain_ms(void)
{
    const rh_settings *s = settings_get();
    return s ? s->drain_timeout_ms : REG_DEFAULT_DRAIN_MS;
}

/* ------------------------------------------------------ instance refs */

static void inst_unref(reg_instance *inst)
{
    if (atomic_fetch_sub(&inst->refs, 1) != 1) return;
    /* Last reference: finalising runs plugin code and dlclose, which
     * belong on the control thread, not on whichever worker got here. */
    pthread_mutex_lock(&R.q_lock);
    inst->dead_next = R.dead;
    R.dead = inst;
    pthread_mutex_unlock(&R.q_lock);
    wake_control();
}

void reg_instance_call_begin(reg_instance *inst) { atomic_fetch_add(&inst->in_flight, 1); }

void reg_instance_call_end(reg_instance *inst)
{
    atomic_fetch_add(&inst->served, 1);
    atomic_fetch_sub(&inst->in_flight, 1);
}

rh_plugin_ctx *reg_instance_ctx(reg_instance *inst) { return &inst->ctx; }
reg_instance *reg_ctx_instance(rh_plugin_ctx *ctx) { return ctx ? ctx->inst : NULL; }
void reg_instance_ref(reg_instance *inst) { atomic_fetch_add(&inst->refs, 1); }
void reg_instance_unref(reg_instance *inst) { inst_unref(inst); }

const reg_route *reg_instance_route(const reg_instance *inst, const char *path, size_t len)
{
    for (size_t i = 0; i < inst->n_routes; i++)
        if (inst->routes[i].path_len == len && memcmp(inst->routes[i].path, path, len) == 0)
            return &inst->routes[i];
    return NULL;
}
const char *reg_instance_name(const reg_instance *inst) { return inst->name; }
const rh_plugin_descriptor *reg_instance_descriptor(const reg_instance *inst)
{
    return &inst->desc;
}
int64_t reg_instance_in_flight(const reg_instance *inst) { return atomic_load(&inst->in_flight); }
uint64_t reg_instance_served(const reg_instance *inst) { return atomic_load(&inst->served); }

/* ------------------------------------------------------------ snapshots */

uint64_t reg_generation(void) { return atomic_load_explicit(&R.generation, memory_order_acquire); }

reg_snapshot *reg_acquire(void)
{
    pthread_mutex_lock(&R.snap_lock);
    reg_snapshot *s = R.current;
    if (s) atomic_fetch_add(&s->refs, 1);
    pthread_mutex_unlock(&R.snap_lock);
    return s;
}

void reg_snapshot_ref(reg_snapshot *snap) { atomic_fetch_add(&snap->refs, 1); }

void reg_snapshot_release(reg_snapshot *snap)
{
    if (!snap || atomic_fetch_sub(&snap->refs, 1) != 1) return;
    snap_full *f = snap->priv;
    for (size_t i = 0; i < snap->n_instances; i++) inst_unref(f->insts[i]);
    free(f->slots);
    free(f->routes);
    free(f->chain);
    free(f->insts);
    free(f);
}

const reg_route *reg_route_find(const reg_snapshot *snap, const char *path, size_t len)
{
    const snap_full *f = snap->priv;
    if (snap->n_routes == 0) return NULL;
    uint32_t h = (uint32_t)route_hash(path, len) & f->mask;
    for (;;) {
        int32_t i = f->slots[h];
        if (i < 0) return NULL;
        const reg_route *r = &f->routes[i];
        if (r->path_len == len && memcmp(r->path, path, len) == 0) return r;
        h = (h + 1) & f->mask;
    }
}

static int cmp_order(const void *a, const void *b)
{
    const reg_instance *x = *(reg_instance *const *)a, *y = *(reg_instance *const *)b;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* Interceptors named in [rpchost] interceptors come first in that order,
 * the others after them in load order. */
static size_t order_chain(reg_chain_entry *chain, size_t n)
{
    const rh_settings *s = settings_get();
    if (!s || !s->interceptors || n == 0) return n;
    char *list = strdup(s->interceptors);
    if (!list) return n;
    size_t placed = 0;
    char *save = NULL;
    for (char *tok = strtok_r(list, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
        for (size_t i = placed; i < n; i++) {
            if (strcmp(chain[i].full_name, tok) != 0) continue;
            reg_chain_entry e = chain[i];
            memmove(&chain[placed + 1], &chain[placed], (i - placed) * sizeof e);
            chain[placed++] = e;
            break;
        }
    }
    free(list);
    return n;
}

static snap_full *build_snapshot(void)
{
    size_t n_inst = 0, n_routes = 0, n_chain = 0;
    for (reg_instance *i = R.instances; i; i = i->next) {
        if (atomic_load(&i->retired)) continue;
        n_inst++;
        n_routes += i->n_routes;
        n_chain += i->n_icpts;
    }
    snap_full *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    uint32_t cap = 8;
    while (cap < n_routes * 2 + 1) cap <<= 1;
    f->mask = cap - 1;
    f->slots = malloc(cap * sizeof *f->slots);
    f->routes = calloc(n_routes ? n_routes : 1, sizeof *f->routes);
    f->chain = calloc(n_chain ? n_chain : 1, sizeof *f->chain);
    f->insts = calloc(n_inst ? n_inst : 1, sizeof *f->insts);
    if (!f->slots || !f->routes || !f->chain || !f->insts) {
        free(f->slots);
        free(f->routes);
        free(f->chain);
        free(f->insts);
        free(f);
        return NULL;
    }
    memset(f->slots, 0xff, cap * sizeof *f->slots);
    size_t k = 0;
    for (reg_instance *i = R.instances; i; i = i->next)
        if (!atomic_load(&i->retired)) f->insts[k++] = i;
    qsort(f->insts, n_inst, sizeof *f->insts, cmp_order);
    size_t r = 0, c = 0;
    for (size_t j = 0; j < n_inst; j++) {
        reg_instance *inst = f->insts[j];
        atomic_fetch_add(&inst->refs, 1);
        for (size_t m = 0; m < inst->n_routes; m++) {
            f->routes[r] = inst->routes[m];
            uint32_t h = (uint32_t)route_hash(inst->routes[m].path, inst->routes[m].path_len) & f->mask;
            while (f->slots[h] >= 0) h = (h + 1) & f->mask;
            f->slots[h] = (int32_t)r++;
        }
        for (size_t m = 0; m < inst->n_icpts; m++) f->chain[c++] = inst->icpts[m];
    }
    order_chain(f->chain, n_chain);
    atomic_init(&f->pub.refs, 1);
    f->pub.generation = ++R.next_generation;
    f->pub.routes = f->routes;
    f->pub.n_routes = n_routes;
    f->pub.chain = f->chain;
    f->pub.n_chain = n_chain;
    f->pub.instances = f->insts;
    f->pub.n_instances = n_inst;
    f->pub.priv = f;
    return f;
}

/* Tells the change callbacks (health's Watch streams) that what is served,
 * or how it is, changed. Control thread. The callbacks are copied under
 * their own lock: registering one must not need ctl (a built-in may
 * register from its init, under ctl). */
static void run_change_callbacks(void *unused)
{
    (void)unused;
    pthread_mutex_lock(&R.q_lock);
    size_t n = R.n_on_change;
    __typeof__(R.on_change) cbs;
    memcpy(cbs, R.on_change, sizeof cbs);
    pthread_mutex_unlock(&R.q_lock);
    for (size_t i = 0; i < n; i++) cbs[i].cb(cbs[i].arg);
}

/* Publishes the live instances as the new current snapshot. Under ctl. */
static int publish(void)
{
    snap_full *f = build_snapshot();
    if (!f) {
        log_error("registry: out of memory building a snapshot; the previous one stays");
        return -ENOMEM;
    }
    pthread_mutex_lock(&R.snap_lock);
    reg_snapshot *old = R.current;
    R.current = &f->pub;
    atomic_store_explicit(&R.generation, f->pub.generation, memory_order_release);
    pthread_mutex_unlock(&R.snap_lock);
    reg_snapshot_release(old);
    run_change_callbacks(NULL);
    return 0;
}

void reg_on_change(void (*cb)(void *arg), void *arg)
{
    pthread_mutex_lock(&R.q_lock);
    if (R.n_on_change < sizeof R.on_change / sizeof R.on_change[0]) {
        R.on_change[R.n_on_change].cb = cb;
        R.on_change[R.n_on_change].arg = arg;
        R.n_on_change++;
    } else {
        log_error("registry: too many change callbacks; one is ignored");
    }
    pthread_mutex_unlock(&R.q_lock);
}

/* ------------------------------------------------------------- config */

static void config_free(inst_config *c)
{
    while (c) {
        inst_config *older = c->older;
        for (size_t i = 0; i < c->n; i++) {
            free(c->kv[i].key);
            free(c->kv[i].value);
        }
        free(c->kv);
        free(c);
        c = older;
    }
}

static inst_config *config_from_settings(const char *name)
{
    inst_config *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    const rh_settings *s = settings_get();
    const settings_section *sec = s ? settings_section_find(s, name) : NULL;
    if (!sec || sec->n_kv == 0) return c;
    c->kv = calloc(sec->n_kv, sizeof *c->kv);
    if (!c->kv) {
        free(c);
        return NULL;
    }
    for (size_t i = 0; i < sec->n_kv; i++) {
        c->kv[i].key = strdup(sec->kv[i].key);
        c->kv[i].value = strdup(sec->kv[i].value);
        c->n = i + 1;
        if (!c->kv[i].key || !c->kv[i].value) {
            config_free(c);
            return NULL;
        }
    }
    return c;
}

const char *plugin_ctx_config_get(rh_plugin_ctx *ctx, const char *key)
{
    if (!ctx || !key) return NULL;
    inst_config *c = atomic_load(&ctx->inst->config);
    for (size_t i = 0; c && i < c->n; i++)
        if (strcmp(c->kv[i].key, key) == 0) return c->kv[i].value;
    return NULL;
}

void plugin_ctx_config_each(rh_plugin_ctx *ctx, const char *prefix,
                            void (*fn)(const char *key, const char *value, void *arg), void *arg)
{
    if (!ctx || !prefix) return;
    size_t pl = strlen(prefix);
    inst_config *c = atomic_load(&ctx->inst->config);
    for (size_t i = 0; c && i < c->n; i++)
        if (strncmp(c->kv[i].key, prefix, pl) == 0) fn(c->kv[i].key, c->kv[i].value, arg);
}
const char *plugin_ctx_name(rh_plugin_ctx *ctx) { return ctx ? ctx->inst->name : NULL; }
int plugin_ctx_set_serving(rh_plugin_ctx *ctx, int serving)
{
    if (!ctx || !ctx->inst) return RH_E_INVALID;
    bool was_not = atomic_exchange(&ctx->inst->not_serving, !serving);
    if (was_not == !serving) return 0;
    return reg_control_post(run_change_callbacks, NULL) < 0 ? RH_E_NOMEM : 0;
}

bool reg_instance_serving(const reg_instance *inst)
{
    return !atomic_load(&inst->not_serving);
}

void plugin_ctx_log(rh_plugin_ctx *ctx, rh_log_level level, const char *fmt, ...)
{
    if ((int)level < RH_LOG_ERROR || (int)level > RH_LOG_DEBUG) level = RH_LOG_ERROR;
    char prefix[RH_NAME_MAX + 8];
    snprintf(prefix, sizeof prefix, "plugin %s", ctx ? ctx->inst->name : "?");
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(level, prefix, fmt, ap);
    va_end(ap);
}

/* ---------------------------------------------------- building instances */

static void inst_free(reg_instance *inst)
{
    reg_routes r = {inst->routes, inst->n_routes, inst->icpts, inst->n_icpts};
    reg_routes_free(&r);
    config_free(atomic_load(&inst->config));
    free(inst->init_tids);
    free(inst->q_message);
    free(inst->q_services);
    free(inst->file);
    free(inst);
}

static reg_instance *inst_new(const rh_plugin_descriptor *desc, const char *file)
{
    reg_instance *inst = calloc(1, sizeof *inst);
    if (!inst) return NULL;
    inst->ctx.inst = inst;
    inst->crash_slot = -1;
    atomic_init(&inst->refs, 1); /* the registry's live reference */
    atomic_init(&inst->in_flight, 0);
    atomic_init(&inst->served, 0);
    atomic_init(&inst->retired, false);
    inst->desc = *desc;
    snprintf(inst->name, sizeof inst->name, "%.*s", RH_NAME_MAX - 1, desc->abi.name);
    snprintf(inst->version, sizeof inst->version, "%.*s", RH_VERSION_MAX - 1, desc->abi.version);
    if (file && !(inst->file = strdup(file))) {
        free(inst);
        return NULL;
    }
    return inst;
}

static int inst_prepare(reg_instance *inst, char *why, size_t whylen)
{
    reg_routes r;
    int rc = reg_routes_build(&inst->desc, inst, inst->name, &r, why, whylen);
    inst->routes = r.routes;
    inst->n_routes = r.n_routes;
    inst->icpts = r.icpts;
    inst->n_icpts = r.n_icpts;
    return rc;
}

static reg_instance *find_live(const char *file, const char *name)
{
    for (reg_instance *i = R.instances; i; i = i->next) {
        if (atomic_load(&i->retired)) continue;
        if (file && i->file && strcmp(i->file, file) == 0) return i;
        if (name && strcmp(i->name, name) == 0) return i;
    }
    return NULL;
}

/* A new instance may not share a plugin name or a method path with a live
 * instance other than the one it replaces. */
static int check_conflicts(const reg_instance *inst, const reg_instance *replaces, char *why,
                           size_t whylen)
{
    for (reg_instance *o = R.instances; o; o = o->next) {
        if (o == replaces || atomic_load(&o->retired)) continue;
        if (strcmp(o->name, inst->name) == 0) {
            snprintf(why, whylen, "a plugin named '%s' is already loaded from %s", o->name,
                     inst_label(o));
            return -EEXIST;
        }
        for (size_t a = 0; a < inst->n_routes; a++)
            for (size_t b = 0; b < o->n_routes; b++)
                if (strcmp(inst->routes[a].path, o->routes[b].path) == 0) {
                    snprintf(why, whylen, "method %s is already served by plugin %s (%s)",
                             inst->routes[a].path, o->name, inst_label(o));
                    return -EEXIST;
                }
    }
    return 0;
}

static int inst_init(reg_instance *inst, char *why, size_t whylen)
{
    inst_config *cfg = config_from_settings(inst->name);
    if (!cfg) {
        snprintf(why, whylen, "out of memory");
        return -ENOMEM;
    }
    atomic_store(&inst->config, cfg);
    if (inst->desc.init) {
        pid_t *before, *after;
        size_t nb = list_tids(&before);
        int rc = inst->desc.init(R.api, &inst->ctx);
        size_t na = list_tids(&after);
        /* init runs under ctl on the control thread, so new threads are
         * (almost always) the plugin's own. */
        inst->init_tids = calloc(na ? na : 1, sizeof *inst->init_tids);
        for (size_t i = 0; inst->init_tids && i < na; i++) {
            bool old = false;
            for (size_t j = 0; j < nb && !old; j++) old = before[j] == after[i];
            if (!old) inst->init_tids[inst->n_init_tids++] = after[i];
        }
        free(before);
        free(after);
        if (rc != 0) {
            snprintf(why, whylen, "its init failed (%d%s%s); see its log lines above", rc,
                     rc < 0 ? ": " : "", rc < 0 ? strerror(-rc) : "");
            return rc < 0 ? rc : -EIO;
        }
    }
    inst->initialised = true;
    inst->loaded_at_ms = now_ms(CLOCK_REALTIME);
    return 0;
}

static void list_names(const reg_instance *inst, char *out, size_t outlen, bool services)
{
    size_t n = 0;
    out[0] = '\0';
    size_t count = services ? inst->desc.n_services : inst->n_icpts;
    for (size_t i = 0; i < count && n < outlen; i++) {
        const char *nm = services ? inst->desc.services[i].descriptor->name
                                  : inst->icpts[i].full_name;
        int k = snprintf(out + n, outlen - n, "%s%s", i ? ", " : "", nm);
        if (k < 0) break;
        n += (size_t)k;
    }
}

static void log_loaded(const reg_instance *inst, const reg_instance *old)
{
    char svcs[1024], icpts[512];
    list_names(inst, svcs, sizeof svcs, true);
    list_names(inst, icpts, sizeof icpts, false);
    if (!inst->builtin) mx_inc(old ? mxh.plugin_replaces : mxh.plugin_loads);
    if (old)
        log_info("plugin %s %s replaced %s from %s: services [%s] interceptors [%s]; the old "
                 "instance finishes its %ld running calls",
                 inst->name, inst->version, old->version, inst_label(inst), svcs, icpts,
                 (long)atomic_load(&old->in_flight));
    else if (inst->builtin)
        log_info("built-in %s %s: services [%s]", inst->name, inst->version, svcs);
    else
        log_info("plugin %s %s loaded from %s: services [%s] interceptors [%s]", inst->name,
                 inst->version, inst_label(inst), svcs, icpts);
    if (inst->cannot_unload)
        log_warn("plugin %s (%s) will not be unloadable: %s", inst->name, inst_label(inst),
                 inst->unload_note);
}

/* ---------------------------------------------------------- file records */

static file_rec *rec_find(const char *path)
{
    for (size_t i = 0; i < R.n_files; i++)
        if (strcmp(R.files[i].path, path) == 0) return &R.files[i];
    return NULL;
}

static void rec_set(const char *path, const struct stat *st, file_state state)
{
    file_rec *r = rec_find(path);
    if (!r) {
        file_rec *grown = realloc(R.files, (R.n_files + 1) * sizeof *grown);
        if (!grown) return;
        R.files = grown;
        r = &R.files[R.n_files];
        memset(r, 0, sizeof *r);
        if (!(r->path = strdup(path))) return;
        R.n_files++;
    }
    r->dev = st->st_dev;
    r->ino = st->st_ino;
    r->size = st->st_size;
    r->mtime = st->st_mtim;
    r->state = state;
    sup_report_file(path, st, (int)state); /* a restarted process starts from it */
}

static void rec_set_path(const char *path, file_state state)
{
    struct stat st;
    if (stat(path, &st) == 0) rec_set(path, &st, state);
}

static bool rec_same(const file_rec *r, const struct stat *st)
{
    return r->dev == st->st_dev && r->ino == st->st_ino && r->size == st->st_size &&
           r->mtime.tv_sec == st->st_mtim.tv_sec && r->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

/* ------------------------------------------------------ retire, finalise */

static void retire(reg_instance *inst)
{
    atomic_store(&inst->retired, true);
    inst->drain_deadline_ms = now_ms(CLOCK_MONOTONIC) + drain_ms();
}

/* fini + dlclose. Under ctl, on the control thread. */
static void finalise(reg_instance *inst)
{
    uint64_t served = atomic_load(&inst->served);
    if (inst->initialised && inst->desc.fini) {
        CRASH_ENTER(NULL);
        inst->desc.fini(&inst->ctx);
        CRASH_LEAVE();
    }
    inst->initialised = false;
    bool gone = true;
    size_t left = inst->has_image ? threads_left(inst) : 0;
    if (left) {
        /* Unmapping code a thread still runs would crash the host: keep the
         * copy mapped and say so. */
        gone = false;
        inst->cannot_unload = true;
        snprintf(inst->unload_note, sizeof inst->unload_note,
                 "%zu thread%s started by its init still running after fini; its code stays "
                 "mapped (fini must stop and join its threads)",
                 left, left == 1 ? "" : "s");
        log_warn("plugin %s %s (%s) could not be unloaded: %s", inst->name, inst->version,
                 inst_label(inst), inst->unload_note);
    } else if (inst->has_image) {
        char why[256];
        crash_image_remove(inst->crash_slot); /* before the range is unmapped */
        inst->crash_slot = -1;
        gone = loader_close(&inst->img, why, sizeof why);
        if (!gone) {
            inst->cannot_unload = true;
            snprintf(inst->unload_note, sizeof inst->unload_note, "%s", why);
            log_warn("plugin %s %s (%s) could not be unloaded: %s", inst->name, inst->version,
                     inst_label(inst), why);
        }
    }
    if (inst->builtin)
        log_debug("built-in %s finalised after %llu calls", inst->name,
                  (unsigned long long)served);
    else
        log_info("plugin %s %s (%s) finalised after %llu calls%s", inst->name, inst->version,
                 inst_label(inst), (unsigned long long)served, gone ? " and unloaded" : "");
    /* Unlink from the instance list unless it stays mapped (then it stays
     * listed, so the admin listing shows the leak). */
    if (!gone) {
        inst->finalised = true;
        return;
    }
    for (reg_instance **p = &R.instances; *p; p = &(*p)->next)
        if (*p == inst) {
            *p = inst->next;
            break;
        }
    inst_free(inst);
}

/* ------------------------------------------- state hand-over, retire */

/* The new instance shares the old one's state (plugin.h, export_state).
 * Under ctl, after the new instance's init, before it serves. */
static void hand_over_state(reg_instance *old, reg_instance *inst)
{
    if (!old->initialised || !old->desc.export_state) {
        if (inst->desc.import_state)
            log_info("plugin %s %s starts empty: the build it replaces (%s) exports no state",
                     inst->name, inst->version, old->version);
        return;
    }
    uint32_t version = 0;
    void *state = old->desc.export_state(&old->ctx, &version);
    if (!state) {
        log_info("plugin %s %s starts empty: %s exported no state", inst->name, inst->version,
                 old->version);
        return;
    }
    if (!inst->desc.import_state) {
        log_warn("plugin %s %s starts empty: it takes no state (no import_state), and %s "
                 "exported state version %u",
                 inst->name, inst->version, old->version, version);
        return;
    }
    int rc = inst->desc.import_state(&inst->ctx, state, version);
    if (rc == 0)
        log_info("plugin %s %s took over the state of %s (state version %u)", inst->name,
                 inst->version, old->version, version);
    else
        log_warn("plugin %s %s did not take the state of %s (state version %u: %s); it starts "
                 "empty",
                 inst->name, inst->version, old->version, version,
                 rc < 0 ? strerror(-rc) : "refused");
}

/* Tells a retired instance at once, so it can end its long-lived calls.
 * Under ctl, after the snapshot without it was published. */
static void notify_retire(reg_instance *inst, rh_retire_reason why)
{
    if (inst->initialised && inst->desc.retire) inst->desc.retire(&inst->ctx, why);
}

/* ------------------------------------------------------------- loading */

static void refuse(const char *label, const char *why, bool old_serving)
{
    mx_inc(mxh.plugin_refusals);
    log_error("plugin %s refused: %s%s", label, why,
              old_serving ? "; the loaded version keeps serving" : "");
}

/* Adds an instance that passed loading: conflicts, init, publish. Under ctl.
 * On failure the instance is not published and the caller discards it. */
static int install(reg_instance *inst, char *why, size_t whylen)
{
    reg_instance *old = inst->file ? find_live(inst->file, NULL) : NULL;
    int rc = inst_prepare(inst, why, whylen);
    if (rc == 0) rc = check_conflicts(inst, old, why, whylen);
    if (rc == 0) rc = inst_init(inst, why, whylen);
    if (rc < 0) return rc;
    if (old) hand_over_state(old, inst);
    inst->order = old ? old->order : R.next_order++;
    inst->next = R.instances;
    R.instances = inst;
    if (old) retire(old);
    rc = publish();
    if (rc < 0) {
        /* Undo: the snapshot never showed the new one. */
        R.instances = inst->next;
        if (old) atomic_store(&old->retired, false);
        if (inst->desc.fini) inst->desc.fini(&inst->ctx);
        inst->initialised = false;
        snprintf(why, whylen, "out of memory publishing it");
        return rc;
    }
    log_loaded(inst, old);
    if (old) {
        notify_retire(old, RH_RETIRE_REPLACED);
        inst_unref(old); /* the live reference */
    }
    return 0;
}

static void discard(reg_instance *inst)
{
    if (inst->has_image && threads_left(inst)) {
        /* A failed init left a thread running in the plugin: unmapping it
         * would crash the host. Leak the copy (its fd stays open too). */
        log_warn("plugin %s (%s): its failed init left threads running; its code stays mapped",
                 inst->name, inst_label(inst));
        inst_free(inst);
        return;
    }
    if (inst->has_image) {
        char why[8];
        loader_close(&inst->img, why, sizeof why);
    }
    inst_free(inst);
}

/* The newline-separated full names of an instance's services and its
 * method paths (for the supervisor: what a quarantine placeholder needs). */
static void describe_routes(const reg_instance *inst, char **services, char **methods,
                            char **icpts)
{
    size_t sl = 1, ml = 1, il = 1;
    for (size_t i = 0; i < inst->desc.n_services; i++)
        sl += strlen(inst->desc.services[i].descriptor->name) + 1;
    for (size_t i = 0; i < inst->n_routes; i++) ml += inst->routes[i].path_len + 1;
    for (size_t i = 0; i < inst->n_icpts; i++) il += strlen(inst->icpts[i].full_name) + 1;
    *services = calloc(1, sl);
    *methods = calloc(1, ml);
    *icpts = calloc(1, il);
    if (!*services || !*methods || !*icpts) return;
    for (size_t i = 0; i < inst->n_icpts; i++) {
        strcat(*icpts, inst->icpts[i].full_name);
        strcat(*icpts, "\n");
    }
    for (size_t i = 0; i < inst->desc.n_services; i++) {
        strcat(*services, inst->desc.services[i].descriptor->name);
        strcat(*services, "\n");
    }
    for (size_t i = 0; i < inst->n_routes; i++) {
        strcat(*methods, inst->routes[i].path);
        strcat(*methods, "\n");
    }
}

/* Tells the supervisor (and the crash handler) about a build that now
 * serves. */
static void register_build(reg_instance *inst)
{
    const loader_image *img = &inst->img;
    inst->crash_slot = crash_image_add(img->handle, inst, inst->file, inst->name, inst->version,
                                       img->elf.build_id, img->build_key);
    if (!sup_attached()) return;
    sup_build_msg m;
    memset(&m, 0, sizeof m);
    snprintf(m.file, sizeof m.file, "%s", inst->file);
    snprintf(m.key, sizeof m.key, "%s", img->build_key);
    snprintf(m.name, sizeof m.name, "%s", inst->name);
    snprintf(m.version, sizeof m.version, "%s", inst->version);
    snprintf(m.build_id, sizeof m.build_id, "%s", img->elf.build_id);
    m.ident.dev = img->st.st_dev;
    m.ident.ino = img->st.st_ino;
    m.ident.size = img->st.st_size;
    m.ident.mtime = img->st.st_mtim;
    char *services = NULL, *methods = NULL, *icpts = NULL;
    describe_routes(inst, &services, &methods, &icpts);
    if (services && methods && icpts) sup_report_build(&m, services, methods, icpts, img->memfd);
    free(services);
    free(methods);
    free(icpts);
}

/* A quarantined build keeps its method paths and services, without its
 * code: calls get UNAVAILABLE naming it and why, health NOT_SERVING. */
static int install_quarantined(const char *path, const sup_build *b)
{
    reg_instance *old = find_live(path, NULL);
    if (old && old->quarantined) return 0;
    rh_plugin_descriptor desc;
    memset(&desc, 0, sizeof desc);
    snprintf(desc.abi.name, sizeof desc.abi.name, "%s", b->name);
    snprintf(desc.abi.version, sizeof desc.abi.version, "%s", b->version);
    reg_instance *inst = inst_new(&desc, path);
    if (!inst) return -ENOMEM;
    inst->quarantined = true;
    snprintf(inst->build_key, sizeof inst->build_key, "%s", b->key);
    char msg[768];
    snprintf(msg, sizeof msg,
             "plugin %s %s is quarantined: %s; replace its file or reload it with the admin "
             "service",
             b->name, b->version, b->reason);
    inst->q_message = strdup(msg);
    inst->q_services = strdup(b->services ? b->services : "");
    size_t n = 0;
    for (const char *p = b->methods; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : "")
        n++;
    inst->routes = calloc(n ? n : 1, sizeof *inst->routes);
    if (!inst->q_message || !inst->q_services || !inst->routes) {
        inst_free(inst);
        return -ENOMEM;
    }
    for (const char *p = b->methods; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        reg_route *r = &inst->routes[inst->n_routes];
        if (len && (r->path = strndup(p, len))) {
            r->path_len = len;
            r->instance = inst;
            r->unavailable = inst->q_message;
            inst->n_routes++;
        }
        p += len + (nl ? 1 : 0);
    }
    /* Its interceptors stay in the chain and refuse every call. */
    static const rh_interceptor refusing = {"quarantined", NULL, NULL};
    size_t ni = 0;
    for (const char *p = b->interceptors; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : "")
        ni++;
    if (ni && !(inst->icpts = calloc(ni, sizeof *inst->icpts))) {
        inst_free(inst);
        return -ENOMEM;
    }
    for (const char *p = b->interceptors; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        reg_chain_entry *e = &inst->icpts[inst->n_icpts];
        if (len && (e->full_name = strndup(p, len))) {
            e->instance = inst;
            e->interceptor = &refusing;
            e->unavailable = inst->q_message;
            inst->n_icpts++;
        }
        p += len + (nl ? 1 : 0);
    }
    char why[512];
    if (check_conflicts(inst, old, why, sizeof why) < 0) {
        log_warn("quarantined plugin %s (%s) not listed: %s", inst->name, path, why);
        inst_free(inst);
        return -EEXIST;
    }
    inst->order = old ? old->order : R.next_order++;
    inst->loaded_at_ms = now_ms(CLOCK_REALTIME);
    inst->next = R.instances;
    R.instances = inst;
    if (old) retire(old);
    if (publish() < 0) {
        R.instances = inst->next;
        if (old) atomic_store(&old->retired, false);
        inst_free(inst);
        return -ENOMEM;
    }
    if (old) inst_unref(old);
    return 0;
}

/* source: read the build from there instead of path (a kept private copy
 * after a restart). force: an admin load, which tries a quarantined or
 * refused build again. */
static int load_locked(const char *path, const char *source, const struct stat *source_st,
                       bool force, char *err, size_t errlen)
{
    char why[768];
    loader_image img;
    bool old_serving = find_live(path, NULL) != NULL;
    int rc = loader_read(path, source, &img, why, sizeof why);
    if (rc < 0) {
        refuse(path, why, old_serving);
        rec_set_path(path, FR_FAILED);
        if (err) snprintf(err, errlen, "%s: %s", path, why);
        return rc;
    }
    if (source && source_st) img.st = *source_st; /* the file it was read from first */
    sup_build *blocked = sup_blocked_of(path);
    if (blocked && strcmp(blocked->key, img.build_key) == 0 && !force) {
        /* Nothing of it runs: it crashed the host before. */
        snprintf(why, sizeof why, "%s: %.255s; replace the file or reload it with the admin "
                 "service to try again",
                 blocked->state == BUILD_QUARANTINED ? "quarantined" : "refused",
                 blocked->reason);
        char tmp[8];
        loader_close(&img, tmp, sizeof tmp);
        if (blocked->state == BUILD_QUARANTINED) {
            log_error("plugin %s %s (%s) quarantined: %s; its methods answer UNAVAILABLE",
                      blocked->name, blocked->version, path, blocked->reason);
            install_quarantined(path, blocked);
        } else {
            log_error("plugin %s refused: it %s before; the loaded version (if any) keeps "
                      "serving; replace the file or reload it with the admin service",
                      path, blocked->reason);
        }
        rec_set_path(path, FR_FAILED);
        if (err) snprintf(err, errlen, "%s: %s", path, why);
        return -EPERM;
    }
    /* Another build of the file (not a kept copy restored after a crash:
     * that is the build the blocked one was to replace): the block goes. */
    if (blocked && !source) {
        log_info("plugin %s: %s build lifted (%s)", path,
                 blocked->state == BUILD_QUARANTINED ? "quarantine of its" : "refusal of its",
                 force ? "reloaded by the admin service" : "the file changed");
        sup_report_lift(path);
    }
    crash_init_begin(path, img.elf.abi.name, img.elf.abi.version, img.elf.build_id,
                     img.build_key);
    rc = loader_link(&img, why, sizeof why);
    /* From here a fault in its code (init included) is attributed by pc. */
    int slot = rc < 0 ? -1
                      : crash_image_add(img.handle, NULL, path, img.elf.abi.name,
                                        img.elf.abi.version, img.elf.build_id, img.build_key);
    if (rc < 0) {
        crash_init_end();
        refuse(path, why, old_serving);
        rec_set_path(path, FR_FAILED);
        if (err) snprintf(err, errlen, "%s: %s", path, why);
        return rc;
    }
    reg_instance *inst = inst_new(&img.desc, path);
    if (!inst) {
        crash_init_end();
        crash_image_remove(slot);
        char tmp[8];
        loader_close(&img, tmp, sizeof tmp);
        refuse(path, "out of memory", old_serving);
        if (err) snprintf(err, errlen, "%s: out of memory", path);
        return -ENOMEM;
    }
    inst->img = img;
    inst->has_image = true;
    snprintf(inst->build_key, sizeof inst->build_key, "%s", img.build_key);
    const char *blocker = loader_unload_blocker(&img);
    if (blocker) {
        inst->cannot_unload = true;
        snprintf(inst->unload_note, sizeof inst->unload_note, "%s", blocker);
    }
    rc = install(inst, why, sizeof why);
    crash_init_end();
    if (rc < 0) {
        crash_image_remove(slot);
        refuse(path, why, old_serving);
        rec_set(path, &img.st, FR_FAILED);
        if (err) snprintf(err, errlen, "%s: %s", path, why);
        discard(inst);
        return rc;
    }
    register_build(inst);
    crash_image_remove(slot); /* register_build added it with its instance */
    rec_set(path, &img.st, FR_LOADED);
    return 0;
}

int reg_load_file_err(const char *path, char *err, size_t errlen)
{
    pthread_mutex_lock(&R.ctl);
    int rc = load_locked(path, NULL, NULL, true, err, errlen);
    pthread_mutex_unlock(&R.ctl);
    return rc;
}

int reg_load_file(const char *path) { return reg_load_file_err(path, NULL, 0); }

int reg_add_builtin(const rh_plugin_descriptor *desc)
{
    char why[512];
    if (!desc) return -EINVAL;
    pthread_mutex_lock(&R.ctl);
    reg_instance *inst = inst_new(desc, NULL);
    int rc = -ENOMEM;
    if (inst) {
        inst->builtin = true;
        rc = install(inst, why, sizeof why);
        if (rc < 0) {
            log_error("built-in service %s refused: %s", inst->name, why);
            discard(inst);
        }
    }
    pthread_mutex_unlock(&R.ctl);
    return rc;
}

static int unload_locked(const char *path, char *err, size_t errlen)
{
    reg_instance *inst = find_live(path, NULL);
    if (!inst) {
        if (err) snprintf(err, errlen, "%s is not loaded", path);
        return -ENOENT;
    }
    retire(inst);
    int rc = publish();
    if (rc < 0) {
        atomic_store(&inst->retired, false);
        if (err) snprintf(err, errlen, "out of memory");
        return rc;
    }
    long running = (long)atomic_load(&inst->in_flight);
    mx_inc(mxh.plugin_unloads);
    log_info("plugin %s %s (%s) removed: new calls get UNIMPLEMENTED; %ld running calls get "
             "%.1f s to finish",
             inst->name, inst->version, path, running, drain_ms() / 1000.0);
    notify_retire(inst, RH_RETIRE_REMOVED);
    inst_unref(inst); /* the live reference */
    return 0;
}

int reg_unload_file_err(const char *path, char *err, size_t errlen)
{
    pthread_mutex_lock(&R.ctl);
    int rc = unload_locked(path, err, errlen);
    if (rc == 0) rec_set_path(path, FR_UNLOADED);
    pthread_mutex_unlock(&R.ctl);
    return rc;
}

int reg_unload_file(const char *path)
{
    pthread_mutex_lock(&R.ctl);
    int rc = unload_locked(path, NULL, 0);
    pthread_mutex_unlock(&R.ctl);
    return rc;
}

/* ------------------------------------------------- directory events */

static void rec_drop(const char *path)
{
    file_rec *r = rec_find(path);
    if (!r) return;
    sup_report_file(path, NULL, -1);
    free(r->path);
    *r = R.files[--R.n_files];
}

/* Loads (or replaces with) path unless it is the very file we already
 * loaded, refused or unloaded: a refused file is retried only once it
 * changed. Under ctl. */
static int file_changed_locked(const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0 || !S_ISREG(st.st_mode)) return 0;
    file_rec *r = rec_find(path);
    if (r && rec_same(r, &st) && (r->state != FR_LOADED || find_live(path, NULL))) {
        log_debug("plugin file %s unchanged; nothing to do", path);
        return 0;
    }
    return load_locked(path, NULL, NULL, false, NULL, 0);
}

int reg_file_changed(const char *path)
{
    pthread_mutex_lock(&R.ctl);
    int rc = file_changed_locked(path);
    pthread_mutex_unlock(&R.ctl);
    return rc;
}

int reg_file_removed(const char *path)
{
    pthread_mutex_lock(&R.ctl);
    int rc = find_live(path, NULL) ? unload_locked(path, NULL, 0) : 0;
    rec_drop(path);
    pthread_mutex_unlock(&R.ctl);
    return rc;
}

/* ----------------------------------------------------------- directory */

static bool is_plugin_file_name(const char *name)
{
    size_t n = strlen(name);
    return name[0] != '.' && n > 3 && strcmp(name + n - 3, ".so") == 0;
}

static int filter_so(const struct dirent *d) { return is_plugin_file_name(d->d_name); }

static int rescan_locked(void)
{
    struct dirent **names;
    int n = scandir(R.dir, &names, filter_so, alphasort);
    if (n < 0) {
        log_error("cannot read plugin directory %s: %s", R.dir, strerror(errno));
        return -errno;
    }
    char path[PATH_MAX];
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/%s", R.dir, names[i]->d_name);
        free(names[i]);
        file_changed_locked(path);
    }
    free(names);
    /* Files that went away while we were not looking (or events lost). */
    for (bool again = true; again;) {
        again = false;
        for (reg_instance *i = R.instances; i; i = i->next) {
            struct stat st;
            if (atomic_load(&i->retired) || !i->file || stat(i->file, &st) == 0) continue;
            char *file = strdup(i->file);
            if (!file) break;
            unload_locked(file, NULL, 0);
            free(file);
            again = true; /* the list changed under us */
            break;
        }
    }
    return 0;
}

int reg_rescan(void)
{
    if (!R.dir) return 0;
    pthread_mutex_lock(&R.ctl);
    int rc = rescan_locked();
    pthread_mutex_unlock(&R.ctl);
    return rc;
}

/* After a restart: the file records and the builds the previous serving
 * process had (kept by the supervisor as private copies, so the same code
 * serves even if a file changed on disk since), before the rescan; the
 * rescan then treats files as changed only if they differ from what the
 * previous process last saw. Under ctl. */
static void restore_locked(void)
{
    size_t nf, nb;
    const sup_file *files = sup_files(&nf);
    for (size_t i = 0; i < nf; i++) {
        struct stat st;
        memset(&st, 0, sizeof st);
        st.st_dev = files[i].ident.dev;
        st.st_ino = files[i].ident.ino;
        st.st_size = files[i].ident.size;
        st.st_mtim = files[i].ident.mtime;
        rec_set(files[i].path, &st, (file_state)files[i].state);
    }
    sup_build *builds = sup_builds(&nb);
    size_t restored = 0;
    for (size_t i = 0; i < nb; i++) {
        const sup_build *b = &builds[i];
        if (!b->current || b->memfd < 0) continue;
        char source[40];
        snprintf(source, sizeof source, "/proc/self/fd/%d", b->memfd);
        struct stat st;
        memset(&st, 0, sizeof st);
        st.st_dev = b->ident.dev;
        st.st_ino = b->ident.ino;
        st.st_size = b->ident.size;
        st.st_mtim = b->ident.mtime;
        char file[SUP_PATH_MAX];
        snprintf(file, sizeof file, "%s", b->file); /* the table may change under the load */
        if (load_locked(file, source, &st, false, NULL, 0) == 0) restored++;
    }
    if (restored) log_info("restart: %zu plugin builds restored from their kept copies", restored);
    /* The next serving process gets them from the supervisor too. */
    sup_close_inherited();
}

int reg_load_dir(const char *dir)
{
    struct stat st;
    if (stat(dir, &st) < 0) {
        int e = errno;
        fprintf(stderr, "rpchost: plugin directory %s: %s\n", dir, strerror(e));
        return -e;
    }
    if (!S_ISDIR(st.st_mode)) {
        fprintf(stderr, "rpchost: plugin directory %s is not a directory\n", dir);
        return -ENOTDIR;
    }
    pthread_mutex_lock(&R.ctl);
    free(R.dir);
    R.dir = strdup(dir);
    size_t n = R.dir ? strlen(R.dir) : 0;
    while (n > 1 && R.dir[n - 1] == '/') R.dir[--n] = '\0';
    if (R.dir) restore_locked();
    int rc = R.dir ? rescan_locked() : -ENOMEM;
    pthread_mutex_unlock(&R.ctl);
    return rc;
}

const char *reg_dir(void) { return R.dir; }

const char *reg_file_of(const char *name, char *buf, size_t buflen)
{
    const char *out = NULL;
    pthread_mutex_lock(&R.ctl);
    reg_instance *i = find_live(NULL, name);
    if (i && i->file) {
        snprintf(buf, buflen, "%s", i->file);
        out = buf;
    }
    pthread_mutex_unlock(&R.ctl);
    return out;
}

/* ------------------------------------------------------ SIGHUP config */

void reg_reconfigure(void)
{
    pthread_mutex_lock(&R.ctl);
    for (reg_instance *i = R.instances; i; i = i->next) {
        if (atomic_load(&i->retired) || !i->initialised) continue;
        inst_config *c = config_from_settings(i->name);
        if (!c) {
            log_error("plugin %s: out of memory re-reading its configuration", i->name);
            continue;
        }
        c->older = atomic_load(&i->config);
        atomic_store(&i->config, c);
        if (i->desc.reload) {
            i->desc.reload(&i->ctx);
            log_info("plugin %s: configuration reloaded", i->name);
        }
    }
    pthread_mutex_unlock(&R.ctl);
}

/* ------------------------------------------------------ control thread */

void reg_set_host(const rh_host_api *api,
                  void (*cancel)(reg_instance *inst, rh_status code, const char *message))
{
    R.api = api;
    R.cancel = cancel;
}

int reg_control_fd(void) { return R.efd; }

int reg_control_post(void (*fn)(void *arg), void *arg)
{
    job *j = malloc(sizeof *j);
    if (!j) return -ENOMEM;
    j->fn = fn;
    j->arg = arg;
    j->next = NULL;
    pthread_mutex_lock(&R.q_lock);
    if (R.jobs_tail) R.jobs_tail->next = j;
    else R.jobs = j;
    R.jobs_tail = j;
    pthread_mutex_unlock(&R.q_lock);
    wake_control();
    return 0;
}

void reg_control_run(void)
{
    if (R.efd >= 0) {
        uint64_t v;
        ssize_t r = read(R.efd, &v, sizeof v);
        (void)r;
    }
    for (;;) {
        pthread_mutex_lock(&R.q_lock);
        reg_instance *dead = R.dead;
        job *jobs = R.jobs;
        R.dead = NULL;
        R.jobs = R.jobs_tail = NULL;
        pthread_mutex_unlock(&R.q_lock);
        if (!dead && !jobs) break;
        if (dead) {
            pthread_mutex_lock(&R.ctl);
            while (dead) {
                reg_instance *next = dead->dead_next;
                finalise(dead);
                dead = next;
            }
            pthread_mutex_unlock(&R.ctl);
        }
        while (jobs) {
            job *next = jobs->next;
            jobs->fn(jobs->arg);
            free(jobs);
            jobs = next;
        }
    }
}

int reg_next_timeout_ms(void)
{
    int64_t best = -1, now = now_ms(CLOCK_MONOTONIC);
    pthread_mutex_lock(&R.ctl);
    for (reg_instance *i = R.instances; i; i = i->next) {
        if (!atomic_load(&i->retired) || i->cancel_sent || i->finalised) continue;
        int64_t left = i->drain_deadline_ms - now;
        if (left < 0) left = 0;
        if (best < 0 || left < best) best = left;
    }
    pthread_mutex_unlock(&R.ctl);
    return best > INT32_MAX ? INT32_MAX : (int)best;
}

void reg_tick(void)
{
    int64_t now = now_ms(CLOCK_MONOTONIC);
    pthread_mutex_lock(&R.ctl);
    for (reg_instance *i = R.instances; i; i = i->next) {
        if (!atomic_load(&i->retired) || i->cancel_sent || i->finalised ||
            now < i->drain_deadline_ms)
            continue;
        i->cancel_sent = true;
        long running = (long)atomic_load(&i->in_flight);
        if (running > 0)
            log_warn("plugin %s %s (%s): drain timeout passed with %ld calls running; "
                     "cancelling them with UNAVAILABLE",
                     i->name, i->version, inst_label(i), running);
        if (R.cancel) {
            char msg[160];
            snprintf(msg, sizeof msg, "plugin %s was unloaded and its drain timeout passed",
                     i->name);
            R.cancel(i, RH_UNAVAILABLE, msg);
        }
    }
    pthread_mutex_unlock(&R.ctl);
}

/* ------------------------------------------------------------- listing */

static void fill_info(const reg_instance *i, reg_plugin_info *o)
{
    memset(o, 0, sizeof *o);
    snprintf(o->file, sizeof o->file, "%s", i->file ? i->file : "");
    snprintf(o->name, sizeof o->name, "%s", i->name);
    snprintf(o->version, sizeof o->version, "%s", i->version);
    list_names(i, o->services, sizeof o->services, true);
    list_names(i, o->interceptors, sizeof o->interceptors, false);
    o->loaded_at_ms = i->loaded_at_ms;
    o->in_flight = atomic_load(&i->in_flight);
    o->served = atomic_load(&i->served);
    o->builtin = i->builtin;
    o->draining = atomic_load(&i->retired);
    o->finalised = i->finalised;
    o->cannot_unload = i->cannot_unload;
    snprintf(o->unload_note, sizeof o->unload_note, "%s", i->unload_note);
    o->quarantined = i->quarantined;
    if (i->has_image) snprintf(o->build_id, sizeof o->build_id, "%s", i->img.elf.build_id);
    const sup_build *b = i->file ? sup_build_find(i->file, i->build_key) : NULL;
    if (b) {
        o->crash_count = b->crashes;
        o->last_crash_unix_ms = b->last_crash_unix_ms;
        snprintf(o->last_crash, sizeof o->last_crash, "%s", b->last_crash);
        if (i->quarantined) {
            snprintf(o->quarantine_reason, sizeof o->quarantine_reason, "%s", b->reason);
            snprintf(o->build_id, sizeof o->build_id, "%s", b->build_id);
        }
    }
    if (i->quarantined) {
        /* its services, as the build had them */
        size_t n = 0;
        o->services[0] = '\0';
        for (const char *p = i->q_services; p && *p && n < sizeof o->services;) {
            const char *nl = strchr(p, '\n');
            int len = nl ? (int)(nl - p) : (int)strlen(p);
            int k = snprintf(o->services + n, sizeof o->services - n, "%s%.*s", n ? ", " : "",
                             len, p);
            if (k < 0) break;
            n += (size_t)k;
            p += len + (nl ? 1 : 0);
        }
    }
}

bool reg_service_quarantined(const reg_snapshot *snap, const char *service)
{
    size_t n = strlen(service);
    for (size_t i = 0; snap && i < snap->n_instances; i++) {
        const reg_instance *inst = snap->instances[i];
        if (!inst->quarantined || !inst->q_services) continue;
        for (const char *p = inst->q_services; *p;) {
            const char *nl = strchr(p, '\n');
            size_t len = nl ? (size_t)(nl - p) : strlen(p);
            if (len == n && memcmp(p, service, n) == 0) return true;
            p += len + (nl ? 1 : 0);
        }
    }
    return false;
}

size_t reg_list(reg_plugin_info **out)
{
    pthread_mutex_lock(&R.ctl);
    size_t n = 0;
    for (reg_instance *i = R.instances; i; i = i->next) n++;
    reg_instance **sorted = calloc(n ? n : 1, sizeof *sorted);
    reg_plugin_info *infos = calloc(n ? n : 1, sizeof *infos);
    if (!sorted || !infos) {
        free(sorted);
        free(infos);
        pthread_mutex_unlock(&R.ctl);
        *out = NULL;
        return 0;
    }
    size_t k = 0;
    for (reg_instance *i = R.instances; i; i = i->next) sorted[k++] = i;
    qsort(sorted, n, sizeof *sorted, cmp_order);
    /* Serving ones first, then draining/stuck ones, each in load order. */
    k = 0;
    for (int pass = 0; pass < 2; pass++)
        for (size_t j = 0; j < n; j++)
            if (atomic_load(&sorted[j]->retired) == (pass == 1)) fill_info(sorted[j], &infos[k++]);
    pthread_mutex_unlock(&R.ctl);
    free(sorted);
    *out = infos;
    return n;
}

/* ------------------------------------------------------- init, shutdown */

/* The plugin gauges of docs/metrics.md, from the listing, right before a
 * scrape reads them (a collector runs outside the metrics lock). */
static void collect_plugins(void *arg)
{
    (void)arg;
    reg_plugin_info *list = NULL;
    size_t n = reg_list(&list);
    double serving = 0, draining = 0, calls = 0, stuck = 0;
    for (size_t i = 0; i < n; i++) {
        if (list[i].draining) {
            draining++;
            calls += (double)list[i].in_flight;
        } else {
            serving++;
        }
        if (list[i].cannot_unload) stuck++;
    }
    free(list);
    mx_gauge_set(mxh.plugins_serving, serving);
    mx_gauge_set(mxh.plugins_draining, draining);
    mx_gauge_set(mxh.plugin_draining_calls, calls);
    mx_gauge_set(mxh.plugins_unloadable, stuck);
}

int reg_init(void)
{
    pthread_mutex_lock(&R.ctl);
    int rc = 0;
    if (R.efd < 0) {
        R.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (R.efd < 0) rc = -errno;
    }
    if (rc == 0 && !R.current) rc = publish();
    pthread_mutex_unlock(&R.ctl);
    if (rc == 0 && mx_enabled()) rc = mx_collect_add(collect_plugins, NULL);
    if (rc < 0) log_error("registry: cannot start: %s", strerror(-rc));
    return rc;
}

void reg_shutdown(void)
{
    pthread_mutex_lock(&R.ctl);
    pthread_mutex_lock(&R.snap_lock);
    reg_snapshot *old = R.current;
    R.current = NULL;
    pthread_mutex_unlock(&R.snap_lock);
    reg_snapshot_release(old);
    /* Drop the live references (inst_unref only queues; nothing is freed
     * while we walk the list). */
    for (reg_instance *i = R.instances; i; i = i->next)
        if (!atomic_load(&i->retired)) {
            retire(i);
            inst_unref(i);
        }
    pthread_mutex_unlock(&R.ctl);
    reg_control_run();
    /* Whatever is still referenced (a call a plugin still holds, whose
     * snapshot names every instance) is finalised anyway: the server has
     * stopped, no call can run. Every such fini runs before any instance
     * is freed: a fini may drop the last reference on a call it held, and
     * releasing that call's snapshot unrefs the other instances. */
    pthread_mutex_lock(&R.ctl);
    for (reg_instance *i = R.instances; i; i = i->next) {
        if (i->finalised || !i->initialised) continue;
        log_warn("plugin %s %s: %ld references left at shutdown; finalising anyway", i->name,
                 i->version, (long)atomic_load(&i->refs));
        if (i->desc.fini) i->desc.fini(&i->ctx);
        i->initialised = false;
    }
    pthread_mutex_unlock(&R.ctl);
    reg_control_run(); /* instances whose last reference those fini dropped */
    pthread_mutex_lock(&R.ctl);
    while (R.instances) {
        reg_instance *i = R.instances;
        if (!i->finalised) {
            finalise(i); /* fini already ran: unload */
            if (R.instances != i) continue;
        }
        R.instances = i->next;
        inst_free(i);
    }
    for (size_t i = 0; i < R.n_files; i++) free(R.files[i].path);
    free(R.files);
    R.files = NULL;
    R.n_files = 0;
    free(R.dir);
    R.dir = NULL;
    pthread_mutex_lock(&R.q_lock);
    R.n_on_change = 0;
    pthread_mutex_unlock(&R.q_lock);
    R.next_order = 0;
    if (R.efd >= 0) close(R.efd);
    R.efd = -1;
    pthread_mutex_unlock(&R.ctl);
}
