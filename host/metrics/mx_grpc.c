/* gRPC server series (mx_grpc.h). */
#define _GNU_SOURCE
#include "metrics/mx_grpc.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* grpc-go codes.Code.String(), which go-grpc-prometheus puts in grpc_code. */
static const char *const code_names[MX_GRPC_CODES] = {
    "OK",       "Canceled",          "Unknown",           "InvalidArgument",
    "DeadlineExceeded", "NotFound",  "AlreadyExists",     "PermissionDenied",
    "ResourceExhausted", "FailedPrecondition", "Aborted", "OutOfRange",
    "Unimplemented", "Internal",     "Unavailable",       "DataLoss",
    "Unauthenticated"};

static mx_family *f_started, *f_handled, *f_received, *f_sent, *f_seconds;

/* Methods by path and kind; registration is rare (plugin loads). */
typedef struct method_rec {
    char *path;
    const char *type;
    mx_method m;
    struct method_rec *next;
} method_rec;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static method_rec *methods;
static const mx_method *unrouted;

const char *mx_grpc_code_name(int code)
{
    return code >= 0 && code < MX_GRPC_CODES ? code_names[code] : "Unknown";
}

static const char *type_name(bool cs, bool ss)
{
    return cs ? (ss ? "bidi_stream" : "client_stream") : (ss ? "server_stream" : "unary");
}

static int fill(mx_method *m, const char *type, const char *svc, const char *meth)
{
    m->started = mx_series_v(f_started, type, svc, meth);
    m->received = mx_series_v(f_received, type, svc, meth);
    m->sent = mx_series_v(f_sent, type, svc, meth);
    m->seconds = mx_series_v(f_seconds, type, svc, meth);
    bool ok = m->started && m->received && m->sent && m->seconds;
    for (int c = 0; c < MX_GRPC_CODES; c++) {
        m->handled[c] = mx_series_v(f_handled, type, svc, meth, code_names[c]);
        ok = ok && m->handled[c];
    }
    return ok ? 0 : -1;
}

int mx_grpc_init(const double *bounds, size_t n_bounds)
{
    static const char lbl[] = "grpc_type,grpc_service,grpc_method";
    f_started = mx_family_new(MX_COUNTER, "grpc_server_started_total",
                              "Total number of RPCs started on the server.", lbl, NULL, 0, NULL,
                              NULL, 0);
    f_handled = mx_family_new(MX_COUNTER, "grpc_server_handled_total",
                              "Total number of RPCs completed on the server, regardless of "
                              "success or failure.",
                              "grpc_type,grpc_service,grpc_method,grpc_code", NULL, 0, NULL, NULL,
                              0);
    f_received = mx_family_new(MX_COUNTER, "grpc_server_msg_received_total",
                               "Total number of RPC stream messages received on the server.", lbl,
                               NULL, 0, NULL, NULL, 0);
    f_sent = mx_family_new(MX_COUNTER, "grpc_server_msg_sent_total",
                           "Total number of gRPC stream messages sent by the server.", lbl, NULL,
                           0, NULL, NULL, 0);
    f_seconds = mx_family_seconds("grpc_server_handling_seconds",
                                  "Histogram of response latency (seconds) of gRPC that had been "
                                  "application-level handled by the server.",
                                  lbl, bounds, n_bounds);
    if (!f_started || !f_handled || !f_received || !f_sent || !f_seconds) return -1;
    static mx_method un;
    if (fill(&un, "unary", "unknown", "unknown") < 0) return -1;
    unrouted = &un;
    return 0;
}

const mx_method *mx_grpc_unrouted(void) { return unrouted; }

const mx_method *mx_grpc_method(const char *path, bool client_streaming, bool server_streaming)
{
    if (!unrouted || !path || path[0] != '/') return NULL;
    const char *slash = strchr(path + 1, '/');
    if (!slash) return NULL;
    const char *type = type_name(client_streaming, server_streaming);
    pthread_mutex_lock(&lock);
    method_rec *r;
    for (r = methods; r; r = r->next)
        if (r->type == type && strcmp(r->path, path) == 0) break;
    if (!r && (r = calloc(1, sizeof *r))) {
        char *svc = strndup(path + 1, (size_t)(slash - path - 1));
        r->path = strdup(path);
        r->type = type;
        if (!svc || !r->path || fill(&r->m, type, svc, slash + 1) < 0) {
            free(r->path);
            free(r);
            r = NULL;
        } else {
            r->next = methods;
            methods = r;
        }
        free(svc);
    }
    pthread_mutex_unlock(&lock);
    return r ? &r->m : NULL;
}

void mx_grpc_free(void)
{
    pthread_mutex_lock(&lock);
    while (methods) {
        method_rec *r = methods;
        methods = r->next;
        free(r->path);
        free(r);
    }
    unrouted = NULL;
    f_started = f_handled = f_received = f_sent = f_seconds = NULL;
    pthread_mutex_unlock(&lock);
}
