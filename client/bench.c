/* rpcall bench (see bench.h).
 *
 * Threads: --threads (default: one per CPU, at most one per connection),
 * each with a poll loop over its connections (connection i belongs to
 * thread i % threads for life); the only shared writes are the atomic
 * budget of calls to start (-n) and the stop flag. Statistics are per
 * thread and merged at the end. More threads than CPUs would only add
 * context switches, which on a loaded machine cost more than the calls.
 * Per call the hot path does: nghttp2_submit_request with the shared
 * header array (names and values not copied), a data provider reading the
 * shared framed request, and on close one histogram increment. */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include "bench.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <sched.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "catalog.h"
#include "hist.h"
#include "invoke.h"
#include "json_pb.h"
#include "jsonin.h"
#include "session.h"

#define BENCH_DEFAULT_CALL_TIMEOUT 20.0 /* seconds, as ghz */
#define BENCH_MAX_ERRORS 8              /* distinct error messages kept */
#define BENCH_TICK_MS 50                /* loop wake-up to check clocks */

typedef struct bench_err {
    int status;
    char message[160];
    uint64_t count;
} bench_err;

typedef struct bench_shared {
    const rpcall_opts *o;
    const session *proto;
    call_headers hd;
    call_encoding enc;        /* --compress, --accept-encoding */
    uint8_t *req;             /* every request message, framed (compressed once
                               * here with --compress: the run measures the
                               * server's inflating, not the client's deflating) */
    size_t req_len;
    uint64_t req_msgs;
    int64_t call_timeout_ns;
    int64_t t_measure_ns;     /* calls started before this are warm-up */
    int64_t t_end_ns;         /* --duration end (0: -n mode) */
    atomic_long issued;       /* measured calls started (-n budget) */
    atomic_bool stop;
} bench_shared;

struct bench_worker;
struct bench_conn;

typedef struct bench_slot {
    call c;
    struct bench_conn *bc;
    bool busy;
    bool used; /* c holds a finished call to free */
} bench_slot;

/* One connection with its share of the calls in flight. */
typedef struct bench_conn {
    struct bench_worker *w;
    int id;
    session s;
    bench_slot *slots;
    long n_slots;
    long busy;
} bench_conn;

/* One thread: a poll loop over its connections. */
typedef struct bench_worker {
    bench_shared *sh;
    bench_conn **conns;
    int n_conns;
    long busy;                /* calls in flight on all its connections */
    double rate;              /* calls/s this worker may start (0: no cap) */
    int64_t next_start_ns;
    /* statistics */
    hist h;
    uint64_t status[17];
    uint64_t count, msgs_in, msgs_out, reconnects;
    bench_err errs[BENCH_MAX_ERRORS];
    int n_errs;
    uint64_t other_errs;
    bool failed;
    char err[700];
    pthread_t tid;
} bench_worker;

/* Ctrl-C stops starting calls; the report covers what was done. A second
 * Ctrl-C kills as usual. */
static atomic_bool *interrupt_flag;

static void on_sigint(int sig)
{
    (void)sig;
    if (interrupt_flag)
        atomic_store(interrupt_flag, true);
    signal(SIGINT, SIG_DFL);
}

/* ---- per call ---------------------------------------------------------- */

static void note_error(bench_worker *w, int status, const char *msg)
{
    for (int i = 0; i < w->n_errs; i++)
        if (w->errs[i].status == status && strncmp(w->errs[i].message, msg,
                                                   sizeof(w->errs[i].message) - 1) == 0) {
            w->errs[i].count++;
            return;
        }
    if (w->n_errs == BENCH_MAX_ERRORS) {
        w->other_errs++;
        return;
    }
    bench_err *e = &w->errs[w->n_errs++];
    e->status = status;
    snprintf(e->message, sizeof(e->message), "%s", msg);
    e->count = 1;
}

static void on_close(call *c, void *ud)
{
    bench_slot *slot = ud;
    bench_conn *bc = slot->bc;
    bench_worker *w = bc->w;
    slot->busy = false;
    bc->busy--;
    w->busy--;
    if (c->start_ns < w->sh->t_measure_ns)
        return; /* warm-up */
    int64_t now = conn_now_ns();
    hist_add(&w->h, (uint64_t)(now - c->start_ns));
    w->count++;
    w->status[c->status >= 0 && c->status <= 16 ? c->status : 2]++;
    w->msgs_in += c->msgs_in;
    w->msgs_out += w->sh->req_msgs;
    if (c->status != 0)
        note_error(w, c->status, c->message ? c->message : "");
}

/* May this worker start a call now? *wait_ms gets how long until it may
 * (for --rps) when it may not yet; *over is set when the run is over. */
static bool may_start(bench_worker *w, int64_t now, int *wait_ms, bool *over)
{
    bench_shared *sh = w->sh;
    if (atomic_load_explicit(&sh->stop, memory_order_relaxed) ||
        (sh->t_end_ns && now >= sh->t_end_ns)) {
        *over = true;
        return false;
    }
    if (w->rate > 0 && now < w->next_start_ns) {
        int ms = (int)((w->next_start_ns - now + 999999) / 1000000);
        if (ms < *wait_ms || *wait_ms < 0)
            *wait_ms = ms;
        return false;
    }
    if (!sh->t_end_ns && now >= sh->t_measure_ns) {
        long n = atomic_fetch_add_explicit(&sh->issued, 1, memory_order_relaxed);
        if (n >= sh->o->total) {
            *over = true;
            return false;
        }
    }
    if (w->rate > 0) {
        int64_t step = (int64_t)(1e9 / w->rate);
        /* Catch up on at most 250 ms of lateness (on a busy machine a
         * thread that slept waits tens of ms for a CPU); a longer stall
         * must not turn into a burst. */
        int64_t floor = now - 250 * 1000000LL;
        w->next_start_ns = w->next_start_ns + step < floor ? floor : w->next_start_ns + step;
    }
    return true;
}

/* Starts calls in the free slots of a connection, as allowed. */
static void refill(bench_conn *bc, int64_t now, int *wait_ms, bool *over)
{
    static const call_cbs cbs = {.on_close = on_close};
    bench_worker *w = bc->w;
    for (long i = 0; i < bc->n_slots && !*over; i++) {
        bench_slot *slot = &bc->slots[i];
        if (slot->busy)
            continue;
        if (!may_start(w, now, wait_ms, over))
            break;
        if (slot->used)
            call_free(&slot->c);
        slot->used = true;
        slot->busy = true;
        bc->busy++;
        w->busy++;
        if (call_start(&slot->c, &bc->s.h, &w->sh->hd, w->sh->o->max_msg_size, false, &cbs,
                       slot) == 0) {
            call_send_borrowed(&slot->c, w->sh->req, w->sh->req_len);
            call_half_close(&slot->c);
        }
    }
}

/* Cancels calls past their deadline (a server that never answers must
 * not hang the run). */
static void expire(bench_conn *bc, int64_t now)
{
    for (long i = 0; i < bc->n_slots; i++) {
        bench_slot *slot = &bc->slots[i];
        if (slot->busy && now - slot->c.start_ns > bc->w->sh->call_timeout_ns)
            call_cancel(&slot->c, 4, "deadline exceeded (client side)");
    }
}

/* (Re)connects a connection that is not open; false when it cannot. */
static bool ensure_open(bench_conn *bc)
{
    bench_worker *w = bc->w;
    if (bc->s.open && !bc->s.h.closed)
        return true;
    if (bc->s.open) {
        session_close(&bc->s);
        w->reconnects++;
    }
    const rpcall_opts *o = w->sh->o;
    int64_t dl = o->connect_timeout > 0
                     ? conn_now_ms() + (int64_t)(o->connect_timeout * 1000.0) : 0;
    char err[700];
    if (session_connect(&bc->s, dl, err, sizeof(err)) < 0) {
        snprintf(w->err, sizeof(w->err), "connection %d: %.600s", bc->id, err);
        w->failed = true;
        atomic_store(&w->sh->stop, true);
        return false;
    }
    return true;
}

static void *worker_main(void *arg)
{
    bench_worker *w = arg;
    struct pollfd *pfd = calloc((size_t)w->n_conns, sizeof(*pfd));
    w->next_start_ns = conn_now_ns();
    int64_t last_expire = 0;
    bool over = false;
    while (pfd && (!over || w->busy > 0)) {
        int64_t now = conn_now_ns();
        int wait_ms = -1;
        for (int i = 0; i < w->n_conns; i++) {
            bench_conn *bc = w->conns[i];
            if (!over && !ensure_open(bc))
                over = true;
            if (!over && bc->s.open && !bc->s.h.closed)
                refill(bc, now, &wait_ms, &over);
            if (bc->s.open && !bc->s.h.closed)
                h2c_flush(&bc->s.h); /* a failure fails its calls */
        }
        if (now - last_expire > 10 * 1000000LL) {
            for (int i = 0; i < w->n_conns; i++)
                expire(w->conns[i], now);
            last_expire = now;
        }
        if (over && w->busy == 0)
            break;
        int timeout = BENCH_TICK_MS;
        if (wait_ms >= 0 && wait_ms < timeout)
            timeout = wait_ms;
        int n = 0;
        for (int i = 0; i < w->n_conns; i++) {
            bench_conn *bc = w->conns[i];
            bool live = bc->s.open && !bc->s.h.closed;
            pfd[i] = (struct pollfd){.fd = live ? bc->s.c.fd : -1,
                                     .events = live ? h2c_poll_events(&bc->s.h) : 0};
            n += live;
        }
        if (n == 0 && over)
            break; /* nothing open, nothing to wait for */
        if (poll(pfd, (nfds_t)w->n_conns, timeout) <= 0)
            continue;
        for (int i = 0; i < w->n_conns; i++) {
            bench_conn *bc = w->conns[i];
            if (!pfd[i].revents || !bc->s.open || bc->s.h.closed)
                continue;
            if ((pfd[i].revents & POLLOUT) && h2c_flush(&bc->s.h) < 0)
                continue;
            h2c_read(&bc->s.h);
        }
    }
    free(pfd);
    for (int i = 0; i < w->n_conns; i++)
        session_close(&w->conns[i]->s);
    return NULL;
}

/* ---- set-up ------------------------------------------------------------ */

/* With --compress: compresses pb in place (*pb replaced, freed). */
static int compress_request(grpc_deflater *def, grpc_codec_algo algo, uint8_t **pb,
                            size_t *pb_len)
{
    size_t bound = grpc_codec_bound(def, algo, *pb_len);
    uint8_t *z = malloc(bound ? bound : 1);
    if (!z)
        return -ENOMEM;
    size_t n = grpc_deflate(def, algo, *pb, *pb_len, z, bound);
    if (n == 0) {
        free(z);
        return -ENOMEM;
    }
    free(*pb);
    *pb = z;
    *pb_len = n;
    return 0;
}

/* Encodes the -d input once into framed bytes. */
static int encode_requests(const rpcall_opts *o, catalog *cat, const descpool_symbol *m,
                           bench_shared *sh)
{
    grpc_deflater *def = NULL;
    if (o->compress && !(def = grpc_deflater_new(GRPC_CODEC_LEVEL_DEFAULT))) {
        fprintf(stderr, "rpcall: out of memory\n");
        return -ENOMEM;
    }
    const Google__Protobuf__MethodDescriptorProto *md = m->u.method;
    const char *in_type = md->input_type[0] == '.' ? md->input_type + 1 : md->input_type;
    jsonin in;
    char err[600];
    if (invoke_open_input(o->data, &in, err, sizeof(err)) < 0) {
        fprintf(stderr, "rpcall: %s\n", err);
        return -EINVAL;
    }
    int rc = 0;
    while (rc == 0 && in.fd >= 0 && !in.eof) {
        int r = jsonin_fill(&in);
        if (r == -EAGAIN) {
            usleep(1000);
            continue;
        }
        if (r < 0)
            rc = r;
    }
    size_t cap = 0;
    for (;;) {
        const char *text;
        size_t len;
        rc = jsonin_next(&in, &text, &len, err, sizeof(err));
        if (rc <= 0)
            break;
        uint8_t *pb = NULL;
        size_t pb_len = 0;
        json_pb_error jerr = {{0}};
        if (json_pb_encode(cat->pool, in_type, text, len, &pb, &pb_len, &jerr) < 0) {
            snprintf(err, sizeof(err), "request message %zu is not a valid %s: %s", in.count,
                     in_type, jerr.text);
            free(pb);
            rc = -EINVAL;
            break;
        }
        if (def && compress_request(def, (grpc_codec_algo)o->compress, &pb, &pb_len) < 0) {
            free(pb);
            rc = -ENOMEM;
            snprintf(err, sizeof(err), "out of memory");
            break;
        }
        if (sh->req_len + 5 + pb_len > cap) {
            cap = (sh->req_len + 5 + pb_len) * 2;
            uint8_t *p = realloc(sh->req, cap);
            if (!p) {
                free(pb);
                rc = -ENOMEM;
                snprintf(err, sizeof(err), "out of memory");
                break;
            }
            sh->req = p;
        }
        grpc_frame_prefix(sh->req + sh->req_len, def != NULL, (uint32_t)pb_len);
        if (pb_len)
            memcpy(sh->req + sh->req_len + 5, pb, pb_len);
        sh->req_len += 5 + pb_len;
        sh->req_msgs++;
        free(pb);
    }
    grpc_deflater_free(def);
    int in_fd = in.fd;
    jsonin_free(&in); /* restores the fd's flags first */
    if (in_fd > 0)
        close(in_fd);
    if (rc < 0) {
        fprintf(stderr, "rpcall: %s\n", err);
        return rc;
    }
    if (!md->client_streaming && sh->req_msgs != 1) {
        fprintf(stderr, "rpcall: %s takes exactly one request message; the data holds %llu\n",
                m->full_name, (unsigned long long)sh->req_msgs);
        return -EINVAL;
    }
    return 0;
}

/* ---- report ------------------------------------------------------------ */

static double ms(uint64_t ns) { return (double)ns / 1e6; }

static void report_text(const rpcall_opts *o, const bench_shared *sh, const hist *h,
                        const uint64_t *status, uint64_t count, double secs,
                        uint64_t msgs_in, uint64_t msgs_out, const bench_err *errs, int n_errs,
                        uint64_t other_errs, double cpu_s, uint64_t reconnects)
{
    printf("Summary:\n");
    printf("  Method:        %s\n", o->target);
    printf("  Target:        %s (%s, %ld connection%s, %ld concurrent)\n", o->address,
           o->conn.plaintext ? "h2c" : "TLS", o->connections, o->connections == 1 ? "" : "s",
           o->concurrency);
    printf("  Count:         %llu\n", (unsigned long long)count);
    printf("  Total:         %.3f s\n", secs);
    printf("  Calls/s:       %.1f\n", secs > 0 ? (double)count / secs : 0.0);
    if (sh->req_msgs != 1 || msgs_in != count) {
        printf("  Messages out:  %llu (%.1f/s)\n", (unsigned long long)msgs_out,
               secs > 0 ? (double)msgs_out / secs : 0.0);
        printf("  Messages in:   %llu (%.1f/s)\n", (unsigned long long)msgs_in,
               secs > 0 ? (double)msgs_in / secs : 0.0);
    }
    if (count) {
        printf("  Fastest:       %.3f ms\n", ms(h->min));
        printf("  Slowest:       %.3f ms\n", ms(h->max));
        printf("  Average:       %.3f ms\n", ms(h->sum / h->count));
    }
    printf("  Client CPU:    %.2f s (%.1f us per call)\n", cpu_s,
           count ? cpu_s * 1e6 / (double)count : 0.0);
    if (reconnects)
        printf("  Reconnects:    %llu\n", (unsigned long long)reconnects);
    if (count) {
        printf("\nLatency distribution:\n");
        static const double qs[] = {0.10, 0.25, 0.50, 0.75, 0.90, 0.95, 0.99, 0.999};
        static const char *const qn[] = {"p10", "p25", "p50", "p75", "p90", "p95", "p99",
                                         "p99.9"};
        for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++)
            printf("  %-6s %10.3f ms\n", qn[i], ms(hist_quantile(h, qs[i])));
        printf("\nLatency histogram:\n");
        uint64_t lo = h->min, hi = h->max, step = (hi - lo) / 10 + 1, prev = 0, top = 0;
        uint64_t counts[10];
        for (int i = 0; i < 10; i++) {
            uint64_t le = hist_count_le(h, lo + step * (uint64_t)(i + 1));
            counts[i] = (i == 9 ? count : le) - prev;
            prev = i == 9 ? count : le;
            if (counts[i] > top)
                top = counts[i];
        }
        for (int i = 0; i < 10; i++) {
            int bar = top ? (int)(counts[i] * 40 / top) : 0;
            printf("  %10.3f ms [%llu]\t|", ms(lo + step * (uint64_t)(i + 1)),
                   (unsigned long long)counts[i]);
            for (int k = 0; k < bar; k++)
                putchar('#');
            putchar('\n');
        }
    }
    printf("\nStatus code distribution:\n");
    for (int i = 0; i <= 16; i++)
        if (status[i])
            printf("  [%s]%*s%llu\n", call_code_name(i), (int)(20 - strlen(call_code_name(i))),
                   "", (unsigned long long)status[i]);
    if (n_errs) {
        printf("\nErrors:\n");
        for (int i = 0; i < n_errs; i++)
            printf("  [%s] %s: %llu\n", call_code_name(errs[i].status), errs[i].message,
                   (unsigned long long)errs[i].count);
        if (other_errs)
            printf("  (%llu more with other messages)\n", (unsigned long long)other_errs);
    }
}

static void report_json(const rpcall_opts *o, const bench_shared *sh, const hist *h,
                        const uint64_t *status, uint64_t count, double secs,
                        uint64_t msgs_in, uint64_t msgs_out, const bench_err *errs, int n_errs,
                        uint64_t other_errs, double cpu_s, uint64_t reconnects)
{
    (void)sh;
    json_t *r = json_object();
    json_object_set_new(r, "method", json_string(o->target));
    json_object_set_new(r, "address", json_string(o->address));
    json_object_set_new(r, "tls", json_boolean(!o->conn.plaintext));
    json_object_set_new(r, "connections", json_integer(o->connections));
    json_object_set_new(r, "concurrency", json_integer(o->concurrency));
    json_object_set_new(r, "count", json_integer((json_int_t)count));
    json_object_set_new(r, "total_s", json_real(secs));
    json_object_set_new(r, "calls_per_s", json_real(secs > 0 ? (double)count / secs : 0));
    json_object_set_new(r, "messages_out", json_integer((json_int_t)msgs_out));
    json_object_set_new(r, "messages_in", json_integer((json_int_t)msgs_in));
    json_object_set_new(r, "client_cpu_s", json_real(cpu_s));
    json_object_set_new(r, "reconnects", json_integer((json_int_t)reconnects));
    json_t *lat = json_object();
    json_object_set_new(lat, "min", json_real(count ? ms(h->min) : 0));
    json_object_set_new(lat, "mean", json_real(count ? ms(h->sum / h->count) : 0));
    json_object_set_new(lat, "p50", json_real(ms(hist_quantile(h, 0.50))));
    json_object_set_new(lat, "p90", json_real(ms(hist_quantile(h, 0.90))));
    json_object_set_new(lat, "p99", json_real(ms(hist_quantile(h, 0.99))));
    json_object_set_new(lat, "p99.9", json_real(ms(hist_quantile(h, 0.999))));
    json_object_set_new(lat, "max", json_real(count ? ms(h->max) : 0));
    json_object_set_new(r, "latency_ms", lat);
    json_t *hg = json_array();
    if (count) {
        uint64_t lo = h->min, step = (h->max - lo) / 10 + 1, prev = 0;
        for (int i = 0; i < 10; i++) {
            uint64_t le = i == 9 ? count : hist_count_le(h, lo + step * (uint64_t)(i + 1));
            json_t *b = json_object();
            json_object_set_new(b, "le_ms", json_real(ms(lo + step * (uint64_t)(i + 1))));
            json_object_set_new(b, "count", json_integer((json_int_t)(le - prev)));
            json_array_append_new(hg, b);
            prev = le;
        }
    }
    json_object_set_new(r, "histogram", hg);
    json_t *st = json_object();
    for (int i = 0; i <= 16; i++)
        if (status[i])
            json_object_set_new(st, call_code_name(i), json_integer((json_int_t)status[i]));
    json_object_set_new(r, "status", st);
    json_t *ea = json_array();
    for (int i = 0; i < n_errs; i++) {
        json_t *e = json_object();
        json_object_set_new(e, "code", json_string(call_code_name(errs[i].status)));
        json_object_set_new(e, "message", json_string(errs[i].message));
        json_object_set_new(e, "count", json_integer((json_int_t)errs[i].count));
        json_array_append_new(ea, e);
    }
    json_object_set_new(r, "errors", ea);
    json_object_set_new(r, "other_errors", json_integer((json_int_t)other_errs));
    char *text = json_dumps(r, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
    if (text)
        printf("%s\n", text);
    free(text);
    json_decref(r);
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* CPUs this process may run on (taskset narrows it). */
static long usable_cpus(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? n : 1;
}

/* ---- run ---------------------------------------------------------------- */

static void merge_errors(bench_err *all, int *n_all, uint64_t *other, const bench_worker *w)
{
    *other += w->other_errs;
    for (int i = 0; i < w->n_errs; i++) {
        int k;
        for (k = 0; k < *n_all; k++)
            if (all[k].status == w->errs[i].status &&
                strcmp(all[k].message, w->errs[i].message) == 0)
                break;
        if (k < *n_all)
            all[k].count += w->errs[i].count;
        else if (*n_all < BENCH_MAX_ERRORS)
            all[(*n_all)++] = w->errs[i];
        else
            *other += w->errs[i].count;
    }
}

int bench_run(const rpcall_opts *o)
{
    char err[700];
    session proto;
    int rc = session_prepare(&proto, &o->conn, o->authority, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "rpcall: %s\n", err);
        session_close(&proto);
        return EXIT_FAIL;
    }
    int exit_code = EXIT_FAIL;
    catalog cat;
    memset(&cat, 0, sizeof(cat));
    bench_shared sh;
    memset(&sh, 0, sizeof(sh));
    sh.o = o;
    sh.proto = &proto;
    bench_worker *ws = NULL;
    bench_conn *cs = NULL;
    long n_threads = 0;
    /* Descriptors: reflection on a first connection, or --protoset. */
    if (o->n_protosets == 0) {
        int64_t dl = o->connect_timeout > 0
                         ? conn_now_ms() + (int64_t)(o->connect_timeout * 1000.0) : 0;
        if (session_connect(&proto, dl, err, sizeof(err)) < 0) {
            fprintf(stderr, "rpcall: %s\n", err);
            goto out;
        }
        proto.deadline_ms = conn_now_ms() + 30000;
    }
    if (catalog_init(&cat, o, &proto) < 0) {
        fprintf(stderr, "rpcall: %s\n", cat.err);
        goto out;
    }
    const descpool_symbol *m = catalog_method(&cat, o->target);
    if (!m) {
        fprintf(stderr, "rpcall: %s\n", cat.err);
        goto out;
    }
    if (proto.open) {
        h2c_shutdown(&proto.h);
        h2c_free(&proto.h);
        proto.open = false;
        conn_close(&proto.c);
    }
    sh.enc = (call_encoding){(grpc_codec_algo)o->compress, o->accept_encoding};
    if (encode_requests(o, &cat, m, &sh) < 0)
        goto out;
    double call_timeout = o->max_time > 0 ? o->max_time : BENCH_DEFAULT_CALL_TIMEOUT;
    sh.call_timeout_ns = (int64_t)(call_timeout * 1e9);
    char path[600];
    snprintf(path, sizeof(path), "/%s/%s", m->parent ? m->parent->full_name : "",
             m->u.method->name);
    /* grpc-timeout only when asked for: a deadline makes the server arm a
     * timer per call, which h2load's requests (the cross-check) do not. The
     * default bound is enforced here only. */
    if (call_headers_build(&sh.hd, proto.scheme, proto.authority, path,
                           o->max_time > 0 ? sh.call_timeout_ns : 0,
                           o->headers, o->n_headers, &sh.enc, err, sizeof(err)) < 0) {
        fprintf(stderr, "rpcall: %s\n", err);
        goto out;
    }
    n_threads = o->threads > 0 ? o->threads : usable_cpus();
    if (n_threads < 1)
        n_threads = 1;
    if (n_threads > o->connections)
        n_threads = o->connections;
    cs = calloc((size_t)o->connections, sizeof(*cs));
    ws = calloc((size_t)n_threads, sizeof(*ws));
    if (!cs || !ws) {
        fprintf(stderr, "rpcall: out of memory\n");
        goto out;
    }
    for (long t = 0; t < n_threads; t++) {
        bench_worker *w = &ws[t];
        w->sh = &sh;
        w->rate = o->rps > 0 ? o->rps / (double)n_threads : 0;
        hist_init(&w->h);
        w->conns = calloc((size_t)(o->connections / n_threads + 1), sizeof(bench_conn *));
        if (!w->conns) {
            fprintf(stderr, "rpcall: out of memory\n");
            goto out;
        }
    }
    /* Connection i goes to thread i % threads; calls spread evenly. */
    for (long i = 0; i < o->connections; i++) {
        bench_conn *bc = &cs[i];
        bench_worker *w = &ws[i % n_threads];
        bc->w = w;
        bc->id = (int)i;
        bc->n_slots = o->concurrency / o->connections + (i < o->concurrency % o->connections);
        bc->slots = calloc((size_t)bc->n_slots, sizeof(bench_slot));
        if (!bc->slots) {
            fprintf(stderr, "rpcall: out of memory\n");
            goto out;
        }
        for (long k = 0; k < bc->n_slots; k++)
            bc->slots[k].bc = bc;
        session_init_shared(&bc->s, &proto);
        w->conns[w->n_conns++] = bc;
    }
    int64_t t0 = conn_now_ns();
    sh.t_measure_ns = t0 + (int64_t)(o->warmup * 1e9);
    sh.t_end_ns = o->duration > 0 ? sh.t_measure_ns + (int64_t)(o->duration * 1e9) : 0;
    double cpu0 = cpu_seconds();
    interrupt_flag = &sh.stop;
    signal(SIGINT, on_sigint);
    long started = 0;
    for (long t = 0; t < n_threads; t++) {
        if (pthread_create(&ws[t].tid, NULL, worker_main, &ws[t]) != 0)
            break;
        started++;
    }
    if (started < n_threads) {
        fprintf(stderr, "rpcall: cannot start bench threads\n");
        atomic_store(&sh.stop, true);
    }
    for (long t = 0; t < started; t++)
        pthread_join(ws[t].tid, NULL);
    int64_t t1 = conn_now_ns();
    double cpu_s = cpu_seconds() - cpu0;
    signal(SIGINT, SIG_DFL);
    interrupt_flag = NULL;
    /* Merge. */
    hist *h = malloc(sizeof(hist));
    if (!h) {
        fprintf(stderr, "rpcall: out of memory\n");
        goto out;
    }
    hist_init(h);
    uint64_t status[17] = {0}, count = 0, msgs_in = 0, msgs_out = 0, other = 0, reconnects = 0;
    bench_err errs[BENCH_MAX_ERRORS];
    int n_errs = 0;
    bool failed = started < n_threads;
    for (long i = 0; i < started; i++) {
        bench_worker *w = &ws[i];
        hist_merge(h, &w->h);
        for (int k = 0; k <= 16; k++)
            status[k] += w->status[k];
        count += w->count;
        msgs_in += w->msgs_in;
        msgs_out += w->msgs_out;
        reconnects += w->reconnects;
        merge_errors(errs, &n_errs, &other, w);
        if (w->failed) {
            if (!failed)
                fprintf(stderr, "rpcall: %s\n", w->err);
            failed = true;
        }
    }
    double secs = (double)(t1 - (sh.t_measure_ns > t1 ? t1 : sh.t_measure_ns)) / 1e9;
    if (o->compact)
        report_json(o, &sh, h, status, count, secs, msgs_in, msgs_out, errs, n_errs, other,
                    cpu_s, reconnects);
    else
        report_text(o, &sh, h, status, count, secs, msgs_in, msgs_out, errs, n_errs, other,
                    cpu_s, reconnects);
    free(h);
    exit_code = !failed && count > 0 && status[0] == count ? EXIT_OK : EXIT_FAIL;
out:
    for (long i = 0; cs && i < o->connections; i++) {
        for (long k = 0; cs[i].slots && k < cs[i].n_slots; k++)
            if (cs[i].slots[k].used)
                call_free(&cs[i].slots[k].c);
        free(cs[i].slots);
    }
    for (long t = 0; ws && t < n_threads; t++)
        free(ws[t].conns);
    free(cs);
    free(ws);
    call_headers_free(&sh.hd);
    free(sh.req);
    catalog_free(&cat);
    session_close(&proto);
    return exit_code;
}
