/* The host's series (mx_host.h). */
#include "metrics/mx_host.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/mx_collect.h"
#include "rpchost/plugin.h"

mx_host_series mxh;

static const mx_series **busy; /* per worker */
static int n_busy;
static mx_family *f_conn_closed, *f_streams_closed;

static const char *const close_names[MX_CLOSE_REASONS] = {
    "peer_closed", "session_done", "handshake_timeout", "tls_error",
    "io_error",    "protocol_error", "server_stop",     "out_of_memory"};

static const char *const goaway_names[MX_GOAWAY_REASONS] = {
    "protocol", "shutdown", "idle", "too_many_pings", "header_list_too_large", "reset_budget"};

static const char *const h2_code_names[MX_H2_CODES + 1] = {
    "NO_ERROR",        "PROTOCOL_ERROR", "INTERNAL_ERROR",     "FLOW_CONTROL_ERROR",
    "SETTINGS_TIMEOUT", "STREAM_CLOSED", "FRAME_SIZE_ERROR",   "REFUSED_STREAM",
    "CANCEL",          "COMPRESSION_ERROR", "CONNECT_ERROR",   "ENHANCE_YOUR_CALM",
    "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED", "UNKNOWN"};

/* conn_close's texts, by prefix. */
static const struct {
    const char *why;
    mx_close_reason r;
} close_map[] = {
    {"peer closed", MX_CLOSE_PEER},         {"session finished", MX_CLOSE_DONE},
    {"terminated", MX_CLOSE_PROTOCOL},      {"http2", MX_CLOSE_PROTOCOL},
    {"handshake timeout", MX_CLOSE_HANDSHAKE_TIMEOUT},
    {"TLS handshake", MX_CLOSE_TLS_ERROR},  {"no ALPN", MX_CLOSE_TLS_ERROR},
    {"server", MX_CLOSE_SERVER_STOP},       {"out of memory", MX_CLOSE_NO_MEMORY},
    {"cannot create", MX_CLOSE_NO_MEMORY},
};

mx_close_reason mx_close_reason_of(const char *why)
{
    for (size_t i = 0; why && i < sizeof close_map / sizeof close_map[0]; i++)
        if (strncmp(why, close_map[i].why, strlen(close_map[i].why)) == 0) return close_map[i].r;
    return MX_CLOSE_IO_ERROR; /* read/write/socket failures */
}

static mx_family *counter(const char *name, const char *help, const char *labels)
{
    return mx_family_new(MX_COUNTER, name, help, labels, NULL, 0, NULL, NULL, 0);
}

static mx_family *gauge(const char *name, const char *help, const char *labels)
{
    return mx_family_new(MX_GAUGE, name, help, labels, NULL, 0, NULL, NULL, 0);
}

static double sum_series(const mx_family *f)
{
    double v = 0;
    for (const mx_series *s = f ? f->series : NULL; s; s = s->next) v += (double)mx_cell_sum(s->cell);
    return v;
}

static double read_conn_open(const mx_series *s, void *arg)
{
    (void)s;
    (void)arg;
    return (double)mx_cell_sum(mxh.conn_opened->cell) - sum_series(f_conn_closed);
}

static double read_streams_open(const mx_series *s, void *arg)
{
    (void)s;
    (void)arg;
    return (double)mx_cell_sum(mxh.streams_opened->cell) - sum_series(f_streams_closed);
}

int mx_host_init(int n_workers)
{
    mx_family *f;
    f = counter("rpchost_connections_opened_total", "Connections accepted.", NULL);
    mxh.conn_opened = mx_series_get(f, NULL);
    f_conn_closed = counter("rpchost_connections_closed_total", "Connections closed, by reason.",
                            "reason");
    for (int r = 0; r < MX_CLOSE_REASONS; r++)
        mxh.conn_closed[r] = mx_series_v(f_conn_closed, close_names[r]);
    f = mx_family_computed(MX_GAUGE, "rpchost_connections_open", "Connections open now.", NULL,
                           read_conn_open, NULL);
    mx_series_get(f, NULL);

    f = counter("rpchost_http2_streams_opened_total", "HTTP/2 streams opened by clients.", NULL);
    mxh.streams_opened = mx_series_get(f, NULL);
    f_streams_closed = counter("rpchost_http2_streams_closed_total", "HTTP/2 streams closed.", NULL);
    mxh.streams_closed = mx_series_get(f_streams_closed, NULL);
    f = mx_family_computed(MX_GAUGE, "rpchost_http2_streams_open", "HTTP/2 streams open now.",
                           NULL, read_streams_open, NULL);
    mx_series_get(f, NULL);

    f = counter("rpchost_received_bytes_total",
                "Bytes read from client sockets (TLS records included).", NULL);
    mxh.bytes_in = mx_series_get(f, NULL);
    f = counter("rpchost_sent_bytes_total",
                "Bytes written to client sockets (TLS records included).", NULL);
    mxh.bytes_out = mx_series_get(f, NULL);

    f = counter("rpchost_tls_handshakes_total", "TLS handshakes completed with ALPN h2.", NULL);
    mxh.tls_ok = mx_series_get(f, NULL);
    f = counter("rpchost_tls_handshake_failures_total", "TLS handshakes that failed, by reason.",
                "reason");
    mxh.tls_failed = mx_series_v(f, "error");
    mxh.tls_no_alpn = mx_series_v(f, "no_alpn_h2");
    mxh.tls_timeout = mx_series_v(f, "timeout");

    f = counter("rpchost_http2_resets_sent_total",
                "RST_STREAM frames sent by the server, by HTTP/2 error code.", "code");
    for (int i = 0; i <= MX_H2_CODES; i++) mxh.rst_sent[i] = mx_series_v(f, h2_code_names[i]);
    f = counter("rpchost_http2_resets_received_total",
                "RST_STREAM frames received from clients, by HTTP/2 error code.", "code");
    for (int i = 0; i <= MX_H2_CODES; i++) mxh.rst_received[i] = mx_series_v(f, h2_code_names[i]);
    f = counter("rpchost_http2_goaway_sent_total", "GOAWAY frames sent, by reason.", "reason");
    for (int i = 0; i < MX_GOAWAY_REASONS; i++) mxh.goaway[i] = mx_series_v(f, goaway_names[i]);
    f = counter("rpchost_http2_ping_strikes_total",
                "Client PINGs closer than ping_min_interval_ms with nothing sent in between.",
                NULL);
    mxh.ping_strikes = mx_series_get(f, NULL);
    f = counter("rpchost_http2_header_list_rejected_total",
                "Request header lists over a limit: soft (call answered RESOURCE_EXHAUSTED) or "
                "hard (stream reset, GOAWAY).",
                "limit");
    mxh.hdr_soft = mx_series_v(f, "soft");
    mxh.hdr_hard = mx_series_v(f, "hard");
    f = counter("rpchost_send_queue_exceeded_total",
                "Calls ended because their connection's unsent responses passed max_send_queue.",
                NULL);
    mxh.send_queue_full = mx_series_get(f, NULL);
    f = counter("rpchost_accept_paused_total",
                "Times a worker stopped accepting for want of descriptors or memory.", NULL);
    mxh.accept_paused = mx_series_get(f, NULL);

    f = counter("rpchost_plugin_loads_total", "Plugins loaded (first load of a name).", NULL);
    mxh.plugin_loads = mx_series_get(f, NULL);
    f = counter("rpchost_plugin_replaces_total", "Plugins replaced by a new file (hot replace).",
                NULL);
    mxh.plugin_replaces = mx_series_get(f, NULL);
    f = counter("rpchost_plugin_refusals_total",
                "Plugin files refused (ABI, descriptor, conflicts, failed init).", NULL);
    mxh.plugin_refusals = mx_series_get(f, NULL);
    f = counter("rpchost_plugin_unloads_total", "Plugins removed (file deleted or admin unload).",
                NULL);
    mxh.plugin_unloads = mx_series_get(f, NULL);
    f = gauge("rpchost_plugins", "Plugin instances by state: serving, or draining (replaced or "
                                 "removed, finishing their calls).",
              "state");
    mxh.plugins_serving = mx_series_v(f, "serving");
    mxh.plugins_draining = mx_series_v(f, "draining");
    f = gauge("rpchost_plugin_draining_calls", "Calls still running on draining plugin instances.",
              NULL);
    mxh.plugin_draining_calls = mx_series_get(f, NULL);
    f = gauge("rpchost_plugins_unloadable",
              "Plugin instances whose code cannot be unmapped (threads left, nodelete).", NULL);
    mxh.plugins_unloadable = mx_series_get(f, NULL);

    f = counter("rpchost_worker_busy_seconds_total",
                "Time each worker's event loop spent working (not waiting in epoll).", "worker");
    if (f) f->scale = 1e-9; /* cells count ns */
    busy = calloc((size_t)(n_workers > 0 ? n_workers : 1), sizeof *busy);
    n_busy = busy ? n_workers : 0;
    for (int i = 0; i < n_busy; i++) {
        char id[16];
        snprintf(id, sizeof id, "%d", i);
        busy[i] = mx_series_v(f, id);
    }

    f = gauge("rpchost_build_info", "The host's version and plugin ABI; the value is 1.",
              "version,abi");
    char abi[16];
    snprintf(abi, sizeof abi, "%d.%d", RPCHOST_ABI_MAJOR, RPCHOST_ABI_MINOR);
    mx_gauge_set(mx_series_v(f, RPCHOST_VERSION, abi), 1);

    return mxh.conn_opened && mxh.plugin_unloads && mxh.plugins_unloadable && busy ? 0 : -1;
}

const mx_series *mx_host_worker_busy(int worker_id)
{
    return worker_id >= 0 && worker_id < n_busy ? busy[worker_id] : NULL;
}

void mx_host_free(void)
{
    free(busy);
    busy = NULL;
    n_busy = 0;
    memset(&mxh, 0, sizeof mxh);
}
