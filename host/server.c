/* The data plane's entry points for main: init (TLS, HTTP/2 options,
 * workers with their listeners), start, graceful shutdown, TLS reload and
 * the cancellation of an instance's calls. */
#include "server.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "transport/h2.h"
#include "core/log.h"
#include "transport/tls.h"
#include "event/worker.h"

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
    for (int i = 0; i < n_workers; i++) worker_free(&workers[i]);
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
    if ((rv = h2_init(&cfg)) < 0) {
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
        xop *op = xop_new(XOP_REFRESH, 0);
        if (op) worker_post(&workers[i], op);
    }
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
            xop *op = xop_new(XOP_SHUTDOWN, 0);
            if (!op) continue; /* the worker then stops at the hard limit below */
            op->u.shutdown.drain_deadline = deadline;
            worker_post(&workers[i], op);
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
        xop *op = xop_new(XOP_CANCEL_INST, mlen + 1);
        if (!op) continue;
        op->u.cancel.inst = inst;
        op->u.cancel.code = code;
        memcpy(op->data, message ? message : "", mlen + 1);
        worker_post(&workers[i], op);
    }
}
