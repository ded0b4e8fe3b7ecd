/* Test-only plugin: rpchost.testsvc.TestSvc plus an interceptor "gate".
 *
 * gate.on_start: metadata x-reject: CODE rejects the call with that status;
 * x-principal: P sets the principal. gate.on_end records the stats of
 * TestSvc calls (GetStats excluded) for GetStats to return, so tests can see
 * what interceptors and handlers observed (on_cancel, bytes, status). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rpchost/plugin.h"
#include "rpchost_descriptor_set.h"
#include "testsvc.pb-c.h"

static const rh_host_api *api;

static atomic_long cancels, ends, handler_runs;
static pthread_mutex_t stats_lock = PTHREAD_MUTEX_INITIALIZER;
static rh_call_stats last;
static char last_message[256], last_method[256];

#define PREFIX "/rpchost.testsvc.TestSvc/"

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void fill_identity(rh_call *call, Rpchost__Testsvc__Resp *r)
{
    const char *p = api->principal(call);
    r->principal = (char *)(p ? p : "");
    r->peer = (char *)api->peer(call);
    const char *s = api->peer_subject(call);
    r->subject = (char *)(s ? s : "");
    size_t n = 0;
    const char *const *sans = api->peer_sans(call, &n);
    r->n_sans = n;
    r->sans = (char **)sans;
    r->method = (char *)api->method(call);
    int64_t d = api->deadline_ns(call);
    r->deadline_left_ms = d ? (d - mono_ns()) / 1000000 : -1;
}

static void echo_metadata(rh_call *call)
{
    size_t n = 0;
    const rh_metadata *md = api->metadata(call, &n);
    for (size_t i = 0; i < n; i++) {
        if (strncmp(md[i].key, "x-", 2) != 0) continue;
        api->add_metadata(call, RH_MD_INITIAL, md[i].key, md[i].value, md[i].value_len);
        api->add_metadata(call, RH_MD_TRAILING, md[i].key, md[i].value, md[i].value_len);
    }
}

/* Answers an Echo request (on any thread). */
static void answer(rh_call *call, const Rpchost__Testsvc__Req *req)
{
    if (req->code) {
        api->finish(call, (rh_status)req->code, req->message[0] ? req->message : NULL);
        return;
    }
    Rpchost__Testsvc__Resp r = RPCHOST__TESTSVC__RESP__INIT;
    r.text = req->text;
    fill_identity(call, &r);
    uint8_t *payload = NULL;
    if (req->size > 0) {
        payload = calloc(1, (size_t)req->size);
        r.payload.data = payload;
        r.payload.len = (size_t)req->size;
    }
    api->send(call, &r.base);
    free(payload);
    api->finish(call, RH_OK, NULL);
}

typedef struct deferred {
    rh_call *call;
    Rpchost__Testsvc__Req *req; /* unpacked copy (malloc) */
} deferred;

static void *answer_thread(void *arg)
{
    deferred *d = arg;
    usleep(10000);
    answer(d->call, d->req);
    /* A late second finish must be refused, not crash. */
    int again = api->finish(d->call, RH_OK, NULL);
    (void)again;
    api->call_unref(d->call);
    rpchost__testsvc__req__free_unpacked(d->req, NULL);
    free(d);
    return NULL;
}

static void answer_later(rh_call *call, void *arg)
{
    (void)arg;
    const Rpchost__Testsvc__Req *req = *(Rpchost__Testsvc__Req **)api->call_state(call);
    if (api->is_done(call)) return;
    answer(call, req);
}

static void echo_on_message(rh_call *call, const ProtobufCMessage *msg)
{
    const Rpchost__Testsvc__Req *req = (const Rpchost__Testsvc__Req *)msg;
    atomic_fetch_add(&handler_runs, 1);
    if (req->echo_metadata) echo_metadata(call);
    if (req->from_thread) {
        /* Copy the request: it is only valid during the call, and the
         * thread outlives nothing but must not depend on the arena. */
        uint8_t buf[4096];
        size_t n = rpchost__testsvc__req__pack(req, buf);
        deferred *d = malloc(sizeof *d);
        d->call = call;
        d->req = rpchost__testsvc__req__unpack(NULL, n, buf);
        api->call_ref(call);
        pthread_t t;
        pthread_create(&t, NULL, answer_thread, d);
        pthread_detach(t);
        return;
    }
    if (req->delay_ms > 0) {
        *(const Rpchost__Testsvc__Req **)api->call_state(call) = req;
        api->call_later(call, (uint64_t)req->delay_ms * 1000000u, answer_later, NULL);
        return;
    }
    answer(call, req);
}

static void count_cancel(rh_call *call)
{
    (void)call;
    atomic_fetch_add(&cancels, 1);
}

static void stream_on_message(rh_call *call, const ProtobufCMessage *msg)
{
    const Rpchost__Testsvc__Req *req = (const Rpchost__Testsvc__Req *)msg;
    if (req->echo_metadata) echo_metadata(call);
    uint8_t *payload = req->size > 0 ? calloc(1, (size_t)req->size) : NULL;
    for (int i = 0; i < req->count; i++) {
        Rpchost__Testsvc__Resp r = RPCHOST__TESTSVC__RESP__INIT;
        r.value = i;
        r.text = req->text;
        r.payload.data = payload;
        r.payload.len = payload ? (size_t)req->size : 0;
        if (api->send(call, &r.base) != 0) break;
    }
    free(payload);
    if (req->code)
        api->finish(call, (rh_status)req->code, req->message);
    else
        api->finish(call, RH_OK, NULL);
}

typedef struct collect_state {
    int64_t n, bytes;
} collect_state;

static void collect_on_message(rh_call *call, const ProtobufCMessage *msg)
{
    const Rpchost__Testsvc__Req *req = (const Rpchost__Testsvc__Req *)msg;
    collect_state *st = api->call_state(call);
    st->n++;
    st->bytes += (int64_t)strlen(req->text);
}

static void collect_on_half_close(rh_call *call)
{
    collect_state *st = api->call_state(call);
    Rpchost__Testsvc__Resp r = RPCHOST__TESTSVC__RESP__INIT;
    r.value = st->n;
    char text[32];
    snprintf(text, sizeof text, "%lld", (long long)st->bytes);
    r.text = text;
    api->send(call, &r.base);
    api->finish(call, RH_OK, NULL);
}

static void bidi_on_message(rh_call *call, const ProtobufCMessage *msg)
{
    const Rpchost__Testsvc__Req *req = (const Rpchost__Testsvc__Req *)msg;
    Rpchost__Testsvc__Resp r = RPCHOST__TESTSVC__RESP__INIT;
    r.text = req->text;
    api->send(call, &r.base);
    if (req->code) api->finish(call, (rh_status)req->code, req->message);
}

static void bidi_on_half_close(rh_call *call) { api->finish(call, RH_OK, NULL); }

static void hang_on_message(rh_call *call, const ProtobufCMessage *msg)
{
    (void)call;
    (void)msg; /* never answers */
}

static void stats_on_message(rh_call *call, const ProtobufCMessage *msg)
{
    (void)msg;
    Rpchost__Testsvc__Stats s = RPCHOST__TESTSVC__STATS__INIT;
    s.cancels = atomic_load(&cancels);
    s.ends = atomic_load(&ends);
    s.handler_runs = atomic_load(&handler_runs);
    pthread_mutex_lock(&stats_lock);
    s.last_status = (int32_t)last.status;
    s.last_message = last_message;
    s.last_bytes_in = (int64_t)last.bytes_in;
    s.last_bytes_out = (int64_t)last.bytes_out;
    s.last_msgs_in = (int64_t)last.messages_in;
    s.last_msgs_out = (int64_t)last.messages_out;
    s.last_method = last_method;
    api->send(call, &s.base);
    pthread_mutex_unlock(&stats_lock);
    api->finish(call, RH_OK, NULL);
}

static const rh_method methods[] = {
    {"Echo", sizeof(void *), echo_on_message, NULL, count_cancel},
    {"Stream", 0, stream_on_message, NULL, count_cancel},
    {"Collect", sizeof(collect_state), collect_on_message, collect_on_half_close, count_cancel},
    {"Bidi", 0, bidi_on_message, bidi_on_half_close, count_cancel},
    {"Hang", 0, hang_on_message, NULL, count_cancel},
    {"GetStats", 0, stats_on_message, NULL, NULL},
};

static const rh_service services[] = {
    {&rpchost__testsvc__test_svc__descriptor, methods},
};

/* --- the interceptor ------------------------------------------------------- */

static rh_status gate_on_start(rh_call *call, const char **message)
{
    size_t len;
    const uint8_t *v = api->metadata_get(call, "x-reject", &len);
    if (v) {
        *message = "rejected by testsvc.gate";
        int code = atoi((const char *)v);
        return code > 0 ? (rh_status)code : RH_PERMISSION_DENIED;
    }
    v = api->metadata_get(call, "x-principal", &len);
    if (v) api->set_principal(call, (const char *)v);
    return RH_OK;
}

static void gate_on_end(rh_call *call, const rh_call_stats *st)
{
    const char *m = api->method(call);
    if (strncmp(m, PREFIX, sizeof PREFIX - 1) != 0 || strcmp(m, PREFIX "GetStats") == 0) return;
    pthread_mutex_lock(&stats_lock);
    last = *st;
    snprintf(last_message, sizeof last_message, "%s", st->message ? st->message : "");
    snprintf(last_method, sizeof last_method, "%s", m);
    pthread_mutex_unlock(&stats_lock);
    atomic_fetch_add(&ends, 1);
}

static const rh_interceptor interceptors[] = {
    {"gate", gate_on_start, gate_on_end},
};

static int testsvc_init(const rh_host_api *host, rh_plugin_ctx *ctx)
{
    (void)ctx;
    api = host;
    return 0;
}

RPCHOST_PLUGIN_NOTE("testsvc", "1.0.0");

static const rh_plugin_descriptor testsvc_descriptor = {
    .abi = RH_ABI_BLOCK_INIT("testsvc", "1.0.0"),
    .services = services,
    .n_services = 1,
    .interceptors = interceptors,
    .n_interceptors = 1,
    .descriptor_set = rh_descriptor_set,
    .descriptor_set_len = sizeof rh_descriptor_set,
    .init = testsvc_init,
};

RPCHOST_PLUGIN_DEFINE(testsvc_descriptor);
