/* rpchost.admin.v1.Admin, a built-in service written against the plugin
 * API. Handlers run on a worker; they only check the caller and post the
 * work to the control thread (loading runs plugin init and may take a
 * while; a worker loop must not block), which answers the call from there
 * (send/finish are callable from any thread). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "builtin_descriptor_set.h"
#include "builtin/admin_stats.h"
#include "builtin/builtin.h"
#include "registry/registry.h"
#include "rpchost/admin/v1/admin.pb-c.h"
#include "config/config.h"
#include "rpc/rpc.h"

#define ADMIN_MAX_LIST 64 /* services / interceptors listed per plugin */
/* Largest build UploadPlugin takes. The host's max_recv_message (4 MiB by
 * default) bounds the request first; this bounds what a host configured
 * for big messages writes to its plugin directory. */
#define ADMIN_MAX_UPLOAD (64u << 20)
#define WATCH_MIN_INTERVAL_MS 250
#define WATCH_DEFAULT_INTERVAL_MS 1000
#define WATCH_MAX_ERRORS 16 /* recent errors in each Stats message */

static const rh_host_api *api;

typedef enum { OP_LIST, OP_LOAD, OP_RELOAD, OP_UNLOAD, OP_UPLOAD, OP_RESTORE, OP_ERRORS } admin_op;

typedef struct admin_job {
    rh_call *call;
    admin_op op;
    char name[RH_NAME_MAX];
    char file[NAME_MAX + 1];
    char sha256[65];   /* OP_UPLOAD: the digest the caller claims, hex */
    uint8_t *content;  /* OP_UPLOAD: the build (malloc'ed, owned by the job) */
    size_t content_len;
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

#define ADMIN_DENIED                                                                   \
    "the admin service needs an admin principal ([rpchost] admin_principals) or a "     \
    "connection to the admin Unix socket"

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

/* ------------------------------------------------------- recent errors */

/* RecentError messages for up to max entries; strings point into errs. */
static size_t errors_fill(recent_error *errs, Rpchost__Admin__V1__RecentError *msgs,
                          Rpchost__Admin__V1__RecentError **ptrs, size_t max)
{
    size_t n = recent_errors_read(errs, max);
    for (size_t i = 0; i < n; i++) {
        rpchost__admin__v1__recent_error__init(&msgs[i]);
        msgs[i].method = errs[i].method;
        msgs[i].code = errs[i].code;
        msgs[i].code_name = (char *)mx_grpc_code_name((int)errs[i].code);
        msgs[i].message = errs[i].message;
        msgs[i].peer = errs[i].peer;
        msgs[i].unix_ms = errs[i].unix_ms;
        ptrs[i] = &msgs[i];
    }
    return n;
}

static void answer_errors(rh_call *call)
{
    recent_error *errs = malloc(RECENT_ERRORS_MAX * sizeof *errs);
    Rpchost__Admin__V1__RecentError *msgs = malloc(RECENT_ERRORS_MAX * sizeof *msgs);
    Rpchost__Admin__V1__RecentError **ptrs = malloc(RECENT_ERRORS_MAX * sizeof *ptrs);
    if (!errs || !msgs || !ptrs) {
        api->finish(call, RH_RESOURCE_EXHAUSTED, "out of memory listing errors");
    } else {
        Rpchost__Admin__V1__ListRecentErrorsResponse resp =
            RPCHOST__ADMIN__V1__LIST_RECENT_ERRORS_RESPONSE__INIT;
        resp.n_errors = errors_fill(errs, msgs, ptrs, RECENT_ERRORS_MAX);
        resp.errors = ptrs;
        api->send(call, &resp.base);
        api->finish(call, RH_OK, NULL);
    }
    free(ptrs);
    free(msgs);
    free(errs);
}

/* ---------------------------------------------------------- WatchStats */

/* One WatchStats stream. It holds a call reference from the request to
 * the tick that finds the call done. Ticks alternate between the call's
 * worker (the timer) and the control thread (building the message: the
 * plugin listing takes the registry's control lock, which a plugin load
 * holds for as long as the plugin's init runs, so a worker must not). */
typedef struct watch {
    rh_call *call;
    uint64_t interval_ns;
    stats_snap *prev;
} watch;

static void watch_end(watch *w)
{
    api->call_unref(w->call);
    stats_snap_free(w->prev);
    free(w);
}

/* Per method figures of one interval; strings point into cur. */
typedef struct method_msgs {
    Rpchost__Admin__V1__MethodStats msg;
    Rpchost__Admin__V1__CodeCount codes[MX_GRPC_CODES];
    Rpchost__Admin__V1__CodeCount *code_ptrs[MX_GRPC_CODES];
} method_msgs;

static void method_fill(method_msgs *mm, const stats_snap *snap, const stats_method *cur,
                        const stats_method *prev, double seconds)
{
    Rpchost__Admin__V1__MethodStats *m = &mm->msg;
    rpchost__admin__v1__method_stats__init(m);
    m->method = (char *)cur->path;
    m->type = (char *)cur->type;
    for (int c = 0; c < MX_GRPC_CODES; c++) {
        uint64_t was = prev ? prev->handled[c] : 0;
        uint64_t d = cur->handled[c] > was ? cur->handled[c] - was : 0;
        m->calls_total += cur->handled[c];
        m->calls += d;
        if (c == RH_OK) continue;
        m->errors_total += cur->handled[c];
        if (!d) continue;
        Rpchost__Admin__V1__CodeCount *cc = &mm->codes[m->n_errors];
        rpchost__admin__v1__code_count__init(cc);
        cc->code = (char *)mx_grpc_code_name(c);
        cc->count = d;
        mm->code_ptrs[m->n_errors++] = cc;
    }
    m->errors = mm->code_ptrs;
    m->calls_per_second = seconds > 0 ? (double)m->calls / seconds : 0;
    m->p50_seconds = stats_quantile(snap, cur, prev, 0.50);
    m->p99_seconds = stats_quantile(snap, cur, prev, 0.99);
}

/* Builds and sends one Stats message; false when the stream cannot go on. */
static bool watch_send(watch *w, stats_snap *cur)
{
    Rpchost__Admin__V1__Stats st = RPCHOST__ADMIN__V1__STATS__INIT;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    st.unix_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    st.interval_seconds = w->prev ? (double)(cur->mono_ns - w->prev->mono_ns) / 1e9 : 0;
    st.metrics_off = !mx_enabled();

    method_msgs *mm = calloc(cur->n ? cur->n : 1, sizeof *mm);
    Rpchost__Admin__V1__MethodStats **mptrs = calloc(cur->n ? cur->n : 1, sizeof *mptrs);
    reg_plugin_info *infos = NULL;
    size_t np = reg_list(&infos);
    plugin_msg *pm = calloc(np ? np : 1, sizeof *pm);
    Rpchost__Admin__V1__Plugin **pptrs = calloc(np ? np : 1, sizeof *pptrs);
    recent_error errs[WATCH_MAX_ERRORS];
    Rpchost__Admin__V1__RecentError emsgs[WATCH_MAX_ERRORS], *eptrs[WATCH_MAX_ERRORS];
    bool ok = mm && mptrs && pm && pptrs && (infos || np == 0);
    if (ok) {
        for (size_t i = 0; i < cur->n; i++) {
            const stats_method *c = &cur->m[i], *p = stats_snap_find(w->prev, c->path, c->type);
            uint64_t total = c->buckets[cur->n_bounds];
            for (int k = 0; k < MX_GRPC_CODES; k++) total += c->handled[k];
            if (!total) continue; /* never called: not worth a row */
            method_fill(&mm[st.n_methods], cur, c, p, st.interval_seconds);
            mptrs[st.n_methods] = &mm[st.n_methods].msg;
            st.n_methods++;
        }
        st.methods = mptrs;
        for (size_t i = 0; i < np; i++) {
            plugin_fill(&pm[i], &infos[i]);
            pptrs[i] = &pm[i].msg;
            st.calls_in_flight += infos[i].in_flight;
            st.calls_served += infos[i].served;
        }
        st.n_plugins = np;
        st.plugins = pptrs;
        st.n_recent_errors = errors_fill(errs, emsgs, eptrs, WATCH_MAX_ERRORS);
        st.recent_errors = eptrs;
        ok = api->send(w->call, &st.base) == 0;
    }
    free(pptrs);
    free(pm);
    free(infos);
    free(mptrs);
    free(mm);
    return ok;
}

static void watch_timer(rh_call *call, void *arg);

static void watch_tick(void *arg)
{
    watch *w = arg;
    if (api->is_done(w->call)) {
        watch_end(w);
        return;
    }
    stats_snap *cur = stats_snap_take();
    if (!cur) {
        api->finish(w->call, RH_RESOURCE_EXHAUSTED, "out of memory reading the metrics");
        watch_end(w);
        return;
    }
    bool ok = watch_send(w, cur);
    stats_snap_free(w->prev);
    w->prev = cur;
    if (!ok) {
        api->finish(w->call, RH_RESOURCE_EXHAUSTED, "could not send the stats");
        watch_end(w);
    } else if (api->call_later(w->call, w->interval_ns, watch_timer, w) != 0) {
        api->finish(w->call, RH_RESOURCE_EXHAUSTED, "out of memory arming the stats timer");
        watch_end(w);
    }
}

/* On the call's worker: hand the next message to the control thread. */
static void watch_timer(rh_call *call, void *arg)
{
    watch *w = arg;
    if (api->is_done(call)) {
        watch_end(w);
    } else if (reg_control_post(watch_tick, w) < 0) {
        api->finish(call, RH_RESOURCE_EXHAUSTED, "out of memory");
        watch_end(w);
    }
}

static void watch_on_message(rh_call *call, const ProtobufCMessage *msg)
{
    const Rpchost__Admin__V1__WatchStatsRequest *r = (const void *)msg;
    if (!admin_allowed(call)) {
        api->finish(call, RH_PERMISSION_DENIED, ADMIN_DENIED);
        return;
    }
    uint32_t ms = r->interval_ms ? r->interval_ms : WATCH_DEFAULT_INTERVAL_MS;
    if (ms < WATCH_MIN_INTERVAL_MS || ms > 3600 * 1000) {
        api->finish(call, RH_INVALID_ARGUMENT, "interval_ms must be 0 (one second) or 250..3600000");
        return;
    }
    watch *w = calloc(1, sizeof *w);
    if (!w) {
        api->finish(call, RH_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    w->call = call;
    w->interval_ns = (uint64_t)ms * 1000000u;
    api->call_ref(call);
    if (reg_control_post(watch_tick, w) < 0) {
        api->finish(call, RH_RESOURCE_EXHAUSTED, "out of memory");
        watch_end(w);
    }
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

/* ------------------------------------------------------------ uploads */

static void sha256_hex(const uint8_t *data, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) != 1 || n != 32) {
        out[0] = '\0';
        return;
    }
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* "<dir>/.<file><suffix>": a dot-file, which the directory watch ignores. */
static void dot_path(char *buf, size_t len, const char *file, const char *suffix)
{
    snprintf(buf, len, "%s/.%s%s", reg_dir(), file, suffix);
}

/* Writes the build to tmp and syncs it; 0 or -errno. */
static int write_synced(const char *tmp, const uint8_t *data, size_t len)
{
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
    if (fd < 0) return -errno;
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) {
            int e = errno;
            close(fd);
            unlink(tmp);
            return -e;
        }
        off += (size_t)w;
    }
    if (fsync(fd) < 0 || close(fd) < 0) {
        int e = errno;
        unlink(tmp);
        return -e;
    }
    return 0;
}

/* The rename is durable once the directory is synced. */
static void sync_dir(void)
{
    int fd = open(reg_dir(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

static void finish_errno(rh_call *call, rh_status code, const char *what, const char *path, int e)
{
    char msg[PATH_MAX + 256];
    snprintf(msg, sizeof msg, "%s %s: %s", what, path, strerror(e));
    api->finish(call, code, msg);
}

/* Control thread: check, write beside, keep the old build, rename in, load;
 * put the old build back if the new one is refused. */
static void upload_run(admin_job *j, const char *path)
{
    char got[65], tmp[PATH_MAX], prev[PATH_MAX], err[PATH_MAX + 1024];
    sha256_hex(j->content, j->content_len, got);
    if (strcmp(got, j->sha256) != 0) {
        char msg[320]; /* the text, two digests and a size fit whole */
        snprintf(msg, sizeof msg,
                 "sha256 mismatch: the %zu bytes received hash to %s, the request says %s; "
                 "the build was damaged or the digest is of another file; nothing was written",
                 j->content_len, got, j->sha256);
        api->finish(j->call, RH_INVALID_ARGUMENT, msg);
        return;
    }
    dot_path(tmp, sizeof tmp, j->file, ".upload");
    dot_path(prev, sizeof prev, j->file, ".previous");
    int rc = write_synced(tmp, j->content, j->content_len);
    if (rc < 0) {
        finish_errno(j->call, RH_UNAVAILABLE, "cannot write", tmp, -rc);
        return;
    }
    /* The build in place stays, as a hard link under a dot-name: moving it
     * away would read as a removal and unload the plugin. */
    bool had_previous = access(path, F_OK) == 0;
    if (had_previous && ((unlink(prev) < 0 && errno != ENOENT) || link(path, prev) < 0)) {
        int e = errno;
        unlink(tmp);
        finish_errno(j->call, RH_UNAVAILABLE, "cannot keep the previous build as", prev, e);
        return;
    }
    if (rename(tmp, path) < 0) {
        int e = errno;
        unlink(tmp);
        finish_errno(j->call, RH_UNAVAILABLE, "cannot rename the upload to", path, e);
        return;
    }
    sync_dir();
    /* The directory watch sees the rename too; loading here first lets the
     * answer say how it went, and the watch then finds the file unchanged. */
    rc = reg_load_file_err(path, err, sizeof err);
    if (rc >= 0) {
        answer_plugin(j->call, path, false);
        return;
    }
    bool restored = had_previous ? rename(prev, path) == 0 : unlink(path) == 0;
    sync_dir();
    char msg[PATH_MAX + 1400];
    snprintf(msg, sizeof msg, "%s; %s", err,
             !restored      ? "and the previous build could not be put back: fix the plugin "
                              "directory by hand"
             : had_previous ? "the previous build is back in place and keeps serving"
                            : "the upload was removed");
    api->finish(j->call, RH_FAILED_PRECONDITION, msg);
}

static void restore_run(admin_job *j, const char *path)
{
    char prev[PATH_MAX], err[PATH_MAX + 1024];
    dot_path(prev, sizeof prev, j->file, ".previous");
    if (rename(prev, path) < 0) {
        int e = errno;
        if (e == ENOENT) {
            char msg[PATH_MAX + NAME_MAX + 64];
            snprintf(msg, sizeof msg, "no previous build of %s to restore (%s)", j->file, prev);
            api->finish(j->call, RH_NOT_FOUND, msg);
        } else {
            finish_errno(j->call, RH_UNAVAILABLE, "cannot restore", prev, e);
        }
        return;
    }
    sync_dir();
    if (reg_load_file_err(path, err, sizeof err) < 0)
        api->finish(j->call, RH_FAILED_PRECONDITION, err);
    else
        answer_plugin(j->call, path, false);
}

static void job_run(void *arg)
{
    admin_job *j = arg;
    char path[PATH_MAX], err[PATH_MAX + 1024];
    struct stat st;
    if (j->op == OP_LIST) {
        answer_list(j->call);
    } else if ((j->op == OP_UPLOAD || j->op == OP_RESTORE) && job_path(j, path, sizeof path)) {
        if (j->op == OP_UPLOAD)
            upload_run(j, path);
        else
            restore_run(j, path);
    } else if (j->op == OP_UPLOAD || j->op == OP_RESTORE) {
        /* job_path answered */
    } else if (j->op == OP_ERRORS) {
        answer_errors(j->call);
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
    free(j->content);
    free(j);
}

static void post_job(rh_call *call, admin_job *j);

static void post(rh_call *call, admin_op op, const char *name, const char *file)
{
    if (!admin_allowed(call)) {
        api->finish(call, RH_PERMISSION_DENIED, ADMIN_DENIED);
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
    j->op = op;
    snprintf(j->name, sizeof j->name, "%s", name ? name : "");
    snprintf(j->file, sizeof j->file, "%s", file ? file : "");
    post_job(call, j);
}

/* Hands j (owned from here on) to the control thread, which answers. */
static void post_job(rh_call *call, admin_job *j)
{
    j->call = call;
    api->call_ref(call);
    if (reg_control_post(job_run, j) < 0) {
        api->call_unref(call);
        free(j->content);
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

static bool is_hex64(const char *s)
{
    if (!s || strlen(s) != 64) return false;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f'))) return false;
    return true;
}

/* Worker: checks what is cheap to check and copies the build into the job;
 * hashing and writing run on the control thread. */
static void upload_on_message(rh_call *call, const ProtobufCMessage *msg)
{
    const Rpchost__Admin__V1__UploadPluginRequest *r = (const void *)msg;
    if (!admin_allowed(call)) {
        post(call, OP_UPLOAD, NULL, NULL); /* answers PERMISSION_DENIED */
        return;
    }
    const char *why = NULL;
    if (!r->file || !valid_file_name(r->file) || strlen(r->file) > NAME_MAX - 10)
        why = "file must be a plugin file name in the plugin directory, like \"rides.so\" "
              "(no path, not hidden)";
    else if (r->content.len == 0)
        why = "content is empty: send the plugin build's bytes";
    else if (r->content.len > ADMIN_MAX_UPLOAD)
        why = "content is larger than 64 MiB, the most UploadPlugin takes";
    else if (!is_hex64(r->sha256))
        why = "sha256 must be the build's SHA-256 as 64 lowercase hex digits";
    if (why) {
        api->finish(call, RH_INVALID_ARGUMENT, why);
        return;
    }
    admin_job *j = calloc(1, sizeof *j);
    uint8_t *copy = j ? malloc(r->content.len) : NULL;
    if (!copy) {
        free(j);
        api->finish(call, RH_RESOURCE_EXHAUSTED, "out of memory for the upload");
        return;
    }
    memcpy(copy, r->content.data, r->content.len);
    j->op = OP_UPLOAD;
    j->content = copy;
    j->content_len = r->content.len;
    snprintf(j->file, sizeof j->file, "%s", r->file);
    snprintf(j->sha256, sizeof j->sha256, "%s", r->sha256);
    post_job(call, j);
}

static void restore_on_message(rh_call *call, const ProtobufCMessage *msg)
{
    const Rpchost__Admin__V1__RestorePluginRequest *r = (const void *)msg;
    if (admin_allowed(call) && (!r->file || !*r->file)) {
        api->finish(call, RH_INVALID_ARGUMENT, "RestorePlugin needs file, like \"rides.so\"");
        return;
    }
    post(call, OP_RESTORE, NULL, r->file);
}

static void errors_on_message(rh_call *call, const ProtobufCMessage *msg)
{
    (void)msg;
    post(call, OP_ERRORS, NULL, NULL);
}

/* Same order as the service's methods in admin.proto. */
static const rh_method admin_methods[] = {
    {"ListPlugins", 0, list_on_message, NULL, NULL},
    {"LoadPlugin", 0, load_on_message, NULL, NULL},
    {"ReloadPlugin", 0, reload_on_message, NULL, NULL},
    {"UnloadPlugin", 0, unload_on_message, NULL, NULL},
    {"UploadPlugin", 0, upload_on_message, NULL, NULL},
    {"RestorePlugin", 0, restore_on_message, NULL, NULL},
    {"WatchStats", 0, watch_on_message, NULL, NULL},
    {"ListRecentErrors", 0, errors_on_message, NULL, NULL},
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
