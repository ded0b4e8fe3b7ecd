/* The Rides service (package-less, as in the original: /Rides/Start and
 * /Rides/Track), storing rides and tracks durably in SQLite.
 *
 * Handlers run on the host's worker threads and never touch the database:
 * they validate, copy what must be stored into a writer job, take a call
 * reference and queue the job. The writer thread (writer.c) commits the
 * jobs of many calls at once and answers each call from there, after its
 * COMMIT, so an OK always means the rows are on disk. */
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rpchost/plugin.h"
#include "rpchost_descriptor_set.h"
#include "rides.pb-c.h"
#include "ride_id.h"
#include "store.h"
#include "validate.h"
#include "writer.h"

#ifndef RIDES_VERSION /* a test build overrides it (tests/plugins/rides_v2) */
#define RIDES_VERSION "1.0.0"
#endif
/* RIDES_NO_STORE: the benchmark build tests/plugins/rides_nostore, which
 * validates, makes ids and answers exactly like this plugin but stores
 * nothing and answers on the worker at once: what storage costs is the
 * difference between the two (bench/run, scenario 2). Never shipped. */
/* Points a Track handler gathers before handing a batch to the writer. */
#define TRACK_BATCH 512
/* Points queued to the writer, over all calls, before Track calls pause
 * their reading until it drains (about 40 bytes each: a 5 MiB bound). */
#define MAX_QUEUED_POINTS (128 * 1024)

/* The plugin instance. A global is right here: the host loads every
 * instance from a private copy of the .so, so each has its own. */
static struct rides {
    const rh_host_api *api;
    rh_plugin_ctx *ctx;
    store *st;
    writer w;
    int writer_up;
    /* docs/metrics.md; NULL on a host without metrics (ABI < 1.2 or off) */
    rh_series *mx_batch, *mx_queued;
} R;

/* Queue depth and group-commit size as series (ABI 1.2): the gauge goes up
 * per job submitted and down by the jobs of each commit. */
static void metrics_init(void)
{
    static const double jobs[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};
    const rh_host_api *a = R.api;
    if (a->size < offsetof(rh_host_api, metric_observe) + sizeof a->metric_observe)
        return;
    R.mx_queued = a->metric_series(
        a->metric_new(R.ctx, RH_METRIC_GAUGE, "rides_writer_queued_jobs",
                      "Jobs (calls' work) waiting for the writer thread.", NULL, NULL, 0),
        NULL);
    R.mx_batch = a->metric_series(
        a->metric_new(R.ctx, RH_METRIC_HISTOGRAM, "rides_commit_batch_jobs",
                      "Jobs per group commit.", NULL, jobs, sizeof jobs / sizeof jobs[0]),
        NULL);
    if (!R.mx_queued)
        R.mx_batch = NULL;
}

static int submit(writer_job *j)
{
    if (R.mx_batch)
        R.api->metric_gauge_add(R.mx_queued, 1);
    return writer_submit(&R.w, j);
}

typedef struct track_state {
    int done;            /* answered, failed or ended: ignore what follows */
    uint64_t stage_id;   /* 0 until the first batch or the end */
    uint64_t count;      /* messages received */
    uint64_t flushed;    /* points handed to the writer */
    size_t n;            /* points in batch */
    atomic_int failed;   /* set on the writer thread: staged points lost */
    rh_call *call;       /* for the waiter's resume */
    writer_waiter waiter; /* while paused: in the writer's list, with a call reference */
    store_point batch[TRACK_BATCH];
} track_state;

static int64_t unix_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void job_done(void *arg, writer_job *j);

/* ---------------------------------------------------------------- Start */

/* One block: the job, the passenger pointer array, then every string. */
static writer_job *start_job_new(rh_call *call, const StartRequest *req)
{
    const char *principal = R.api->principal(call);
    size_t size = sizeof(writer_job) + req->n_passenger_ids * sizeof(char *);
    size += strlen(req->driver_id) + 1 + (principal ? strlen(principal) + 1 : 0);
    for (size_t i = 0; i < req->n_passenger_ids; i++)
        size += strlen(req->passenger_ids[i]) + 1;
    writer_job *j = malloc(size);
    if (j == NULL)
        return NULL;
    memset(j, 0, sizeof *j);
    char **pass = (char **)(j + 1);
    char *p = (char *)(pass + req->n_passenger_ids);
    store_ride *r = &j->u.ride;
#define COPY(dst, src)                                                        \
    do {                                                                      \
        size_t len_ = strlen(src) + 1;                                        \
        memcpy(p, (src), len_);                                               \
        (dst) = p;                                                            \
        p += len_;                                                            \
    } while (0)
    COPY(r->driver_id, req->driver_id);
    for (size_t i = 0; i < req->n_passenger_ids; i++)
        COPY(pass[i], req->passenger_ids[i]);
    if (principal)
        COPY(r->principal, principal);
#undef COPY
    j->kind = JOB_START;
    j->call = call;
    r->passenger_ids = (const char *const *)pass;
    r->n_passengers = req->n_passenger_ids;
    r->car_id = req->car_id;
    r->type = (int)req->type;
    if (req->location) {
        r->has_location = 1;
        r->lat = req->location->lat;
        r->lng = req->location->lng;
    }
    if (req->time) {
        r->has_time = 1;
        r->time_seconds = req->time->seconds;
        r->time_nanos = req->time->nanos;
    }
    r->received_unix_ns = unix_ns();
    return j;
}

static void start_on_message(rh_call *call, const ProtobufCMessage *msg)
{
    const StartRequest *req = (const StartRequest *)msg;
    char why[VALIDATE_MSG_MAX];
    if (validate_start(req, why, sizeof why) != 0) {
        R.api->finish(call, RH_INVALID_ARGUMENT, why);
        return;
    }
    writer_job *j = start_job_new(call, req);
    if (j == NULL) {
        R.api->finish(call, RH_RESOURCE_EXHAUSTED, "cannot store the ride: out of memory");
        return;
    }
    int rc = ride_id_new(j->u.ride.id);
    if (rc != 0) {
        free(j);
        R.api->log(R.ctx, RH_LOG_ERROR, "getrandom failed: %s", strerror(-rc));
        R.api->finish(call, RH_UNAVAILABLE, "cannot make a ride id: no randomness");
        return;
    }
    R.api->call_ref(call); /* dropped in job_done, after the answer */
#ifdef RIDES_NO_STORE
    job_done(NULL, j);
    free(j);
#else
    submit(j); /* a Start never waits, full queue or not */
#endif
}

/* ---------------------------------------------------------------- Track */

static writer_job *track_job_new(rh_call *call, track_state *ts, writer_job_kind kind,
                                 size_t extra)
{
    writer_job *j = malloc(sizeof *j + extra);
    if (j == NULL)
        return NULL;
    memset(j, 0, sizeof *j);
    j->kind = kind;
    j->call = call;
    j->track_failed = &ts->failed;
    if (ts->stage_id == 0)
        ts->stage_id = writer_new_stage_id(&R.w);
    return j;
}

/* Returns writer_submit's verdict: 1 when the writer's queue is full. */
static int submit_with_ref(rh_call *call, writer_job *j)
{
    if (call)
        R.api->call_ref(call);
    return submit(j);
}

/* Runs on the writer thread once its queue drained (or at stop). */
static void track_resume(writer_waiter *wt)
{
    track_state *ts = (track_state *)((char *)wt - offsetof(track_state, waiter));
    rh_call *call = ts->call;
    R.api->pause_reading(call, 0);
    R.api->call_unref(call); /* the waiter's; ts may be gone after it */
}

/* Backpressure: the writer's queue is full, so this Track stops reading
 * (its client's HTTP/2 window closes) until the writer drained it. Only
 * this call waits; its worker serves everyone else. The pause is made on
 * the worker after the waiter is linked: a resume the writer posts in
 * between reaches the worker after this callback, i.e. after the pause. */
static void track_pause(rh_call *call, track_state *ts)
{
    ts->call = call;
    ts->waiter.resume = track_resume;
    R.api->call_ref(call);
    size_t queued = writer_wait_room(&R.w, &ts->waiter);
    if (queued == 0) { /* drained meanwhile */
        R.api->call_unref(call);
        return;
    }
    R.api->pause_reading(call, 1);
    R.api->log(R.ctx, RH_LOG_DEBUG,
               "track: %zu points wait for the writer (bound %d); pausing the call's reading "
               "until it drains",
               queued, MAX_QUEUED_POINTS);
}

/* Drops what the writer staged for this call. The job needs no call. */
static void track_discard(track_state *ts)
{
    ts->done = 1;
    if (ts->stage_id == 0 || ts->flushed == 0)
        return;
    writer_job *j = malloc(sizeof *j);
    if (j == NULL)
        return; /* the rows go with the connection's temp file */
    memset(j, 0, sizeof *j);
    j->kind = JOB_DISCARD;
    j->u.discard.stage_id = ts->stage_id;
    submit(j);
}

/* Hands the gathered points to the writer. 0, 1 when the writer's queue
 * is full (the caller pauses), or -ENOMEM. */
static int track_flush(rh_call *call, track_state *ts)
{
    if (ts->n == 0)
        return 0;
#ifdef RIDES_NO_STORE
    ts->flushed += ts->n;
    ts->n = 0;
    return 0;
#endif
    writer_job *j = track_job_new(call, ts, JOB_POINTS, ts->n * sizeof(store_point));
    if (j == NULL)
        return -ENOMEM;
    j->u.points.stage_id = ts->stage_id;
    j->u.points.first_seq = ts->flushed;
    j->u.points.n = ts->n;
    j->u.points.points = (store_point *)(j + 1);
    memcpy(j->u.points.points, ts->batch, ts->n * sizeof(store_point));
    ts->flushed += ts->n;
    ts->n = 0;
    return submit_with_ref(call, j);
}

static void point_from(const TrackRequest *req, store_point *p)
{
    memset(p, 0, sizeof *p);
    p->car_id = req->car_id;
    if (req->location) {
        p->has_location = 1;
        p->lat = req->location->lat;
        p->lng = req->location->lng;
    }
    if (req->time) {
        p->has_time = 1;
        p->time_seconds = req->time->seconds;
        p->time_nanos = req->time->nanos;
    }
}

static void track_fail(rh_call *call, track_state *ts, rh_status code, const char *why)
{
    R.api->finish(call, code, why);
    track_discard(ts);
}

static void track_on_message(rh_call *call, const ProtobufCMessage *msg)
{
    track_state *ts = R.api->call_state(call);
    if (ts->done)
        return;
    if (atomic_load(&ts->failed)) { /* the writer already answered */
        track_discard(ts);
        return;
    }
    const TrackRequest *req = (const TrackRequest *)msg;
    char why[VALIDATE_MSG_MAX];
    if (validate_track_point(req, ts->count, why, sizeof why) != 0) {
        track_fail(call, ts, RH_INVALID_ARGUMENT, why);
        return;
    }
    point_from(req, &ts->batch[ts->n++]);
    ts->count++;
    if (ts->n < TRACK_BATCH)
        return;
    int rc = track_flush(call, ts);
    if (rc < 0)
        track_fail(call, ts, RH_RESOURCE_EXHAUSTED, "cannot store the track: out of memory");
    else if (rc > 0)
        track_pause(call, ts);
}

static void track_on_half_close(rh_call *call)
{
    track_state *ts = R.api->call_state(call);
    if (ts->done)
        return;
    if (atomic_load(&ts->failed)) {
        track_discard(ts);
        return;
    }
    const char *principal = R.api->principal(call);
    size_t plen = principal ? strlen(principal) + 1 : 0;
    writer_job *j = NULL;
    if (track_flush(call, ts) < 0 || (j = track_job_new(call, ts, JOB_TRACK, plen)) == NULL) {
        track_fail(call, ts, RH_RESOURCE_EXHAUSTED, "cannot store the track: out of memory");
        return;
    }
    ts->done = 1;
    j->u.track.stage_id = ts->stage_id;
    j->u.track.count = ts->count;
    j->u.track.received_unix_ns = unix_ns();
    if (principal) {
        memcpy(j + 1, principal, plen);
        j->u.track.principal = (const char *)(j + 1);
    }
#ifdef RIDES_NO_STORE
    R.api->call_ref(call);
    job_done(NULL, j);
    free(j);
    return;
#endif
    submit_with_ref(call, j);
}

static void track_on_cancel(rh_call *call)
{
    track_state *ts = R.api->call_state(call);
    if (!ts->done)
        track_discard(ts);
}

/* ------------------------------------------------------- writer results */

/* A storage failure as the client sees it: the SQLite reason, no path. */
static void fail_call(rh_call *call, const writer_job *j, const char *what)
{
    char msg[384];
    rh_status code = RH_UNAVAILABLE;
    if (j->rc == -EEXIST) {
        code = RH_INTERNAL;
        snprintf(msg, sizeof msg, "%s: its id is already taken; retry", what);
    } else {
        snprintf(msg, sizeof msg, "%s: the database is unavailable (%s); retry later",
                 what, j->error);
    }
    R.api->finish(call, code, msg);
}

/* Runs on the writer thread after the job's transaction ended. */
/* Every OK answer names the build that served it, so operators (and the
 * hot-replace test) can see which version answered during a swap. */
static void send_version(rh_call *call)
{
    R.api->add_metadata(call, RH_MD_INITIAL, "x-rides-version", RIDES_VERSION,
                        sizeof RIDES_VERSION - 1);
}

static void job_done(void *arg, writer_job *j)
{
    (void)arg;
    rh_call *call = j->call;
    switch (j->kind) {
    case JOB_START:
        if (j->rc == 0) {
            StartResponse resp = START_RESPONSE__INIT;
            resp.id = j->u.ride.id;
            send_version(call);
            R.api->send(call, &resp.base);
            R.api->finish(call, RH_OK, NULL);
        } else {
            fail_call(call, j, "cannot store the ride");
        }
        break;
    case JOB_POINTS:
        if (j->rc == -EIO)
            fail_call(call, j, "cannot store the track");
        break;
    case JOB_TRACK:
        if (j->rc == 0) {
            TrackResponse resp = TRACK_RESPONSE__INIT;
            resp.count = j->u.track.count;
            send_version(call);
            R.api->send(call, &resp.base);
            R.api->finish(call, RH_OK, NULL);
        } else if (j->rc == -EIO) {
            fail_call(call, j, "cannot store the track");
        }
        break;
    case JOB_DISCARD:
        break;
    }
    if (call)
        R.api->call_unref(call);
}

static void commit_report(void *arg, size_t jobs, size_t rides, size_t points,
                          size_t tracks, uint64_t ns, int rc, const char *error)
{
    (void)arg;
    if (R.mx_batch) {
        R.api->metric_observe(R.mx_batch, (double)jobs);
        R.api->metric_gauge_add(R.mx_queued, -(double)jobs);
    }
    if (rc)
        R.api->log(R.ctx, RH_LOG_ERROR, "commit of %zu calls' work failed: %s", jobs, error);
    else
        R.api->log(R.ctx, RH_LOG_DEBUG,
                   "group commit: %zu rides, %zu points staged, %zu tracks, %zu jobs "
                   "in %.3f ms",
                   rides, points, tracks, jobs, (double)ns / 1e6);
}

/* ---------------------------------------------------------- the plugin */

/* " 1:a 2-3:b ..." of a histogram (writer.h), or " none". */
static void format_hist(const uint64_t *hist, char *out, size_t len)
{
    size_t off = 0;
    out[0] = '\0';
    for (int b = 0; b < WRITER_HIST && off < len; b++) {
        if (hist[b] == 0)
            continue;
        unsigned long lo = 1ul << b, hi = (2ul << b) - 1;
        int k = lo == hi ? snprintf(out + off, len - off, " %lu:%llu", lo,
                                    (unsigned long long)hist[b])
                         : snprintf(out + off, len - off, " %lu-%lu:%llu", lo, hi,
                                    (unsigned long long)hist[b]);
        if (k > 0)
            off += (size_t)k;
    }
    if (off == 0)
        snprintf(out, len, " none");
}

static void log_stats(const writer_stats *st)
{
    writer_stats s = *st;
    char rides[256], calls[256];
    format_hist(s.rides_hist, rides, sizeof rides);
    format_hist(s.calls_hist, calls, sizeof calls);
    R.api->log(R.ctx, RH_LOG_INFO,
               "stored %llu rides, %llu tracks, %llu points in %llu commits (%llu failed); "
               "rides per commit: max %llu, mean %.1f; histogram (rides:commits)%s; "
               "calls per commit: max %llu; histogram (calls:commits)%s; "
               "tracks paused for the writer %llu times",
               (unsigned long long)s.rides, (unsigned long long)s.tracks,
               (unsigned long long)s.points, (unsigned long long)s.commits,
               (unsigned long long)s.failed_commits,
               (unsigned long long)s.max_rides_per_commit,
               s.commits ? (double)s.rides / (double)s.commits : 0.0, rides,
               (unsigned long long)s.max_calls_per_commit, calls,
               (unsigned long long)s.waits);
}

/* synchronous from the config, or FULL; -1 after logging a bad value. */
static int config_sync(void)
{
    const char *v = R.api->config_get(R.ctx, "synchronous");
    if (v == NULL)
        return STORE_SYNC_FULL;
    int s = store_sync_parse(v);
    if (s < 0)
        R.api->log(R.ctx, RH_LOG_ERROR,
                   "synchronous = %s in [plugin.rides] is not OFF, NORMAL or FULL; "
                   "fix the config (FULL is the durable default)",
                   v);
    return s;
}

/* commit_delay_ms: a test and benchmark knob that makes the writer sleep
 * before each commit, as a slow disk would. -1 after logging a bad value. */
static int64_t config_commit_delay_ns(void)
{
    const char *v = R.api->config_get(R.ctx, "commit_delay_ms");
    if (v == NULL)
        return 0;
    char *end;
    errno = 0;
    long ms = strtol(v, &end, 10);
    if (errno || end == v || *end || ms < 0 || ms > 60000) {
        R.api->log(R.ctx, RH_LOG_ERROR,
                   "commit_delay_ms = %s in [plugin.rides] is not a whole number of "
                   "milliseconds from 0 to 60000; fix the config (it is a test knob: leave "
                   "it out in production)",
                   v);
        return -1;
    }
    return (int64_t)ms * 1000000;
}

static int rides_init(const rh_host_api *api, rh_plugin_ctx *ctx)
{
    memset(&R, 0, sizeof R);
    R.api = api;
    R.ctx = ctx;
    if (api->size < offsetof(rh_host_api, pause_reading) + sizeof api->pause_reading) {
        api->log(ctx, RH_LOG_ERROR,
                 "this host offers rpchost ABI %u.%u without pause_reading; rides needs 1.1 "
                 "or newer (its Track pauses reading while the disk catches up): upgrade "
                 "rpchost",
                 api->abi_major, api->abi_minor);
        return -ENOTSUP;
    }
    const char *db = api->config_get(ctx, "db");
    if (db == NULL)
        db = "rides.db";
    if (db[0] == '\0' || db[0] == ':' || strncmp(db, "file:", 5) == 0) {
        api->log(ctx, RH_LOG_ERROR,
                 "db = %s in [plugin.rides] is not a file path; set it to a file "
                 "(default rides.db in the host's working directory)",
                 db);
        return -EINVAL;
    }
    int sync = config_sync();
    if (sync < 0)
        return -EINVAL;
    int64_t delay = config_commit_delay_ns();
    if (delay < 0)
        return -EINVAL;
#ifdef RIDES_NO_STORE
    api->log(ctx, RH_LOG_WARN, "benchmark build: rides are validated and answered, never stored");
    return 0;
#endif
    char err[512];
    int rc = store_open(db, (store_sync)sync, &R.st, err, sizeof err);
    if (rc != 0) {
        api->log(ctx, RH_LOG_ERROR, "%s", err);
        return rc;
    }
    metrics_init();
    rc = writer_init(&R.w, R.st, MAX_QUEUED_POINTS, job_done, commit_report, NULL);
    if (rc == 0)
        writer_set_commit_delay(&R.w, (uint64_t)delay);
    if (rc == 0 && (rc = writer_start(&R.w)) != 0)
        writer_stop(&R.w, NULL);
    if (rc != 0) {
        api->log(ctx, RH_LOG_ERROR, "cannot start the writer thread: %s", strerror(-rc));
        store_close(R.st);
        R.st = NULL;
        return rc;
    }
    R.writer_up = 1;
    api->log(ctx, RH_LOG_INFO, "storing rides in %s (WAL, synchronous=%s, schema v%d)",
             store_filename(R.st), store_sync_name((store_sync)sync), STORE_SCHEMA_VERSION);
    if (delay)
        api->log(ctx, RH_LOG_WARN, "commit_delay_ms = %lld: every commit waits that long "
                 "(a test knob simulating a slow disk)", (long long)(delay / 1000000));
    return 0;
}

static void rides_fini(rh_plugin_ctx *ctx)
{
    (void)ctx;
    if (R.writer_up) {
        writer_stats s;
        writer_stop(&R.w, &s); /* commits and answers whatever is queued */
        log_stats(&s);
        R.writer_up = 0;
    }
    store_close(R.st);
    R.st = NULL;
}

static void rides_reload(rh_plugin_ctx *ctx)
{
    (void)ctx;
    int64_t delay = config_commit_delay_ns();
    if (delay >= 0 && R.writer_up)
        writer_set_commit_delay(&R.w, (uint64_t)delay);
    int sync = config_sync();
    if (sync >= 0 && R.writer_up) {
        writer_set_sync(&R.w, (store_sync)sync);
        R.api->log(R.ctx, RH_LOG_INFO, "synchronous=%s from the next commit on",
                   store_sync_name((store_sync)sync));
    }
    const char *db = R.api->config_get(R.ctx, "db");
    if (R.st && db && strcmp(db, store_path(R.st)) != 0)
        R.api->log(R.ctx, RH_LOG_WARN,
                   "db = %s needs a restart or a plugin replace; still storing in %s", db,
                   store_path(R.st));
}

static const rh_method rides_methods[] = {
    /* Same order as rides__descriptor.methods: Start, Track. */
    {.name = "Start", .on_message = start_on_message},
    {.name = "Track",
     .call_state_size = sizeof(track_state),
     .on_message = track_on_message,
     .on_half_close = track_on_half_close,
     .on_cancel = track_on_cancel},
};

static const rh_service rides_services[] = {
    {.descriptor = &rides__descriptor, .methods = rides_methods},
};

static const rh_plugin_descriptor rides_plugin = {
    .abi = RH_ABI_BLOCK_INIT("rides", RIDES_VERSION),
    .services = rides_services,
    .n_services = 1,
    .descriptor_set = rh_descriptor_set,
    .descriptor_set_len = sizeof rh_descriptor_set,
    .init = rides_init,
    .fini = rides_fini,
    .reload = rides_reload,
};

RPCHOST_PLUGIN_NOTE("rides", RIDES_VERSION);
RPCHOST_PLUGIN_DEFINE(rides_plugin);
