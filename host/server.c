/* The data plane's entry points for main: init (TLS, HTTP/2 options,
 * workers with their listeners), start, graceful shutdown, TLS reload and
 * the cancellation of an instance's calls. Also the wiring of the layers:
 * the transport's hooks into the event loop, the calls' stream ops into
 * HTTP/2, and the operations that span connections and calls (drain,
 * instance cancellation), posted to each worker. */
#include "server.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "crash/crash.h"
#include "event/event.h"
#include "transport/transport.h"
#include "web/web.h"
#include "console/console.h"

#define HARD_STOP_NS (1000LL * 1000000) /* after the drain timeout */

static rh_settings cfg; /* the settings with defaults filled in */
static worker *workers;
static int n_workers;
static bool running;

#define DEFAULT(field, value)                                                                \
    do {                                                                                     \
        if (!cfg.field) cfg.field = (value);                                                 \
    } while (0)

int server_workers(const rh_settings *s)
{
    if (s->workers > 0) return s->workers;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static void fill_defaults(const rh_settings *s)
{
    cfg = *s; /* strings stay owned by s, which lives until exit */
    DEFAULT(max_concurrent_streams, 100);
    DEFAULT(header_list_soft, 8192);
    DEFAULT(header_list_hard, 16384);
    if (cfg.header_list_hard < cfg.header_list_soft) cfg.header_list_hard = cfg.header_list_soft;
    DEFAULT(max_continuations, 8);
    DEFAULT(stream_reset_burst, 1000);
    DEFAULT(stream_reset_rate, 33);
    DEFAULT(max_settings, 32);
    DEFAULT(max_outbound_ack, 1000);
    DEFAULT(max_recv_message, 4u << 20);
    DEFAULT(max_send_message, 4u << 20);
    DEFAULT(max_send_queue, 64u << 20);
    DEFAULT(stream_window, 1u << 20);
    DEFAULT(conn_window, 8u << 20);
    /* Below the protocol's initial 65535 a window would shrink, which
     * HTTP/2 allows but gains nothing. */
    if (cfg.stream_window < 65535) cfg.stream_window = 65535;
    if (cfg.conn_window < 65535) cfg.conn_window = 65535;
    /* One message must always fit. */
    if (cfg.max_send_queue < cfg.max_send_message + 5) cfg.max_send_queue = cfg.max_send_message + 5;
    DEFAULT(drain_timeout_ms, 30000);
    cfg.workers = server_workers(s);
}

static void free_workers(void)
{
    for (int i = 0; i < n_workers; i++) {
        conns_close_all(&workers[i], "server freed");
        call_free_list(&workers[i]);
        worker_free(&workers[i]);
    }
    free(workers);
    workers = NULL;
    n_workers = 0;
}

int server_init(const rh_settings *s, const listen_set *sets)
{
    /* A peer that vanished must not kill the process on write. */
    signal(SIGPIPE, SIG_IGN);
    fill_defaults(s);
    int rv = tls_init(&cfg);
    if (rv < 0) return rv;
    worker_set_hooks(&conn_worker_hooks);
    crash_set_call_describer(call_crash_describe); /* method and peer of a crash */
    web_init(); /* HTTP/1.1 and the web protocols (docs/web.md) */
    if ((rv = console_init()) < 0) { /* the operator console (docs/console.md) */
        log_error("console: cannot register its files: %s", strerror(-rv));
        return rv;
    }
    if ((rv = h2_init(&cfg, &call_stream_ops)) < 0) {
        log_error("http2: cannot set up nghttp2 (out of memory)");
        return rv;
    }
    workers = calloc((size_t)cfg.workers, sizeof *workers);
    if (!workers) return -ENOMEM;
    for (int i = 0; i < cfg.workers; i++) {
        n_workers = i + 1;
        if ((rv = worker_init(&workers[i], i, &cfg)) < 0 ||
            (rv = worker_listen(&workers[i], &sets[i])) < 0) {
            free_workers();
            h2_free();
            tls_free();
            return rv;
        }
    }
    return 0;
}

static void registry_changed(void *arg)
{
    (void)arg;
    /* Wake idle workers so they drop a snapshot that pins retired
     * instances. */
    for (int i = 0; i < n_workers; i++) {
        xop *op = xop_new(sizeof *op, worker_refresh);
        if (op) worker_post(&workers[i], op);
    }
}

/* --- graceful stop, on each worker ------------------------------------------ */

typedef struct shutdown_op {
    xop base;
    int64_t drain_deadline;
} shutdown_op;

static void cancel_all(worker *w, rh_status code, const char *msg)
{
    for (conn *c = w->conns; c; c = c->next)
        for (rh_call *call = c->calls; call; call = call->next) call_abort(call, code, msg);
}

static void hard_stop(rh_timer *t)
{
    worker *w = (worker *)((char *)t - offsetof(worker, hard_timer));
    while (w->conns) conn_close(w->conns, "server stopped");
}

static void drain_expired(rh_timer *t)
{
    worker *w = (worker *)((char *)t - offsetof(worker, drain_timer));
    if (w->n_conns) log_info("worker %d: drain timeout: cancelling what is still running", w->id);
    cancel_all(w, RH_UNAVAILABLE, "server shutting down");
    conns_flush_dirty(w);
    /* Whatever is left after the statuses went out: close. */
    conn *c = w->conns;
    while (c) {
        conn *next = c->next;
        if (!c->calls && !buf_avail(&c->pend)) conn_close(c, "server stopped");
        c = next;
    }
    /* A last second for the statuses to leave, then everything goes. */
    if (w->n_conns) timer_arm(&w->timers, &w->hard_timer, now_ns() + HARD_STOP_NS, hard_stop);
}

static void shutdown_begin(worker *w, xop *base)
{
    int64_t drain_deadline = ((shutdown_op *)base)->drain_deadline;
    free(base);
    if (!worker_stop_accepting(w)) return;
    w->drain_deadline = drain_deadline;
    for (conn *c = w->conns; c;) {
        conn *next = c->next;
        conn_begin_shutdown(c);
        c = next;
    }
    timer_arm(&w->timers, &w->drain_timer, drain_deadline, drain_expired);
}

/* --- an instance's calls cancelled, on each worker --------------------------- */

typedef struct cancel_op {
    xop base;
    reg_instance *inst;
    rh_status code;
    char message[]; /* NUL-terminated */
} cancel_op;

static void cancel_instance(worker *w, xop *base)
{
    cancel_op *op = (cancel_op *)base;
    for (conn *c = w->conns; c; c = c->next)
        for (rh_call *call = c->calls; call; call = call->next)
            if (call->routed && call->route->instance == op->inst)
                call_abort(call, op->code, op->message);
    free(op);
}

int server_start(void)
{
    for (int i = 0; i < n_workers; i++) {
        int rv = worker_start(&workers[i]);
        if (rv < 0) return rv;
    }
    running = true;
    reg_on_change(registry_changed, NULL);
    return 0;
}

void server_shutdown(uint32_t drain_timeout_ms)
{
    if (!workers) return;
    if (running) {
        int64_t deadline = now_ns() + (int64_t)drain_timeout_ms * 1000000;
        for (int i = 0; i < n_workers; i++) {
            shutdown_op *op = xop_new(sizeof *op, shutdown_begin);
            if (!op) continue; /* the worker then stops at the hard limit below */
            op->drain_deadline = deadline;
            worker_post(&workers[i], &op->base);
        }
        for (int i = 0; i < n_workers; i++) worker_join(&workers[i]);
        running = false;
    }
    h2_free();
    tls_free();
}

void server_free(void) { free_workers(); }

int server_reload_tls(void) { return tls_reload(); }

void server_cancel_instance(reg_instance *inst, rh_status code, const char *message)
{
    size_t mlen = message ? strlen(message) : 0;
    for (int i = 0; i < n_workers; i++) {
        cancel_op *op = xop_new(sizeof *op + mlen + 1, cancel_instance);
        if (!op) continue;
        op->inst = inst;
        op->code = code;
        memcpy(op->message, message ? message : "", mlen + 1);
        worker_post(&workers[i], &op->base);
    }
}
