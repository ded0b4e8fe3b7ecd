/* Test-only plugin: rpchost.flowtest.FlowTest (see flowtest.proto).
 *
 * Sink pauses its call's reading after the first message (pause_reading),
 * holding a call reference in a list; Resume hands that list to a plugin
 * thread, which resumes each call (pause_reading from another thread) and
 * drops its reference, then answers. Built twice: flowtest (ABI 1.1) and
 * flowtest10 (FLOWTEST_ABI10: the note and descriptor claim ABI 1.0 and
 * the plugin never touches the 1.1 functions, like a plugin built before). */
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "rpchost/plugin.h"
#include "rpchost_descriptor_set.h"
#include "flowtest.pb-c.h"

#ifdef FLOWTEST_ABI10
#define FT_NAME "flowtest10"
#define FT_MINOR 0
#else
#define FT_NAME "flowtest"
#define FT_MINOR RPCHOST_ABI_MINOR
#endif
#define FT_VERSION "1.0.0"

static const rh_host_api *api;
static int has_flow;

typedef struct paused_call {
    struct paused_call *next;
    rh_call *call;
} paused_call;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static paused_call *paused_list; /* each entry holds a call reference */
static int n_paused;
static pthread_t threads[256];
static int n_threads;

typedef struct sink_state {
    int64_t messages, bytes, pauses;
} sink_state;

static void sink_on_message(rh_call *call, const ProtobufCMessage *msg)
{
    const Rpchost__Flowtest__Chunk *c = (const Rpchost__Flowtest__Chunk *)msg;
    sink_state *st = api->call_state(call);
    st->messages++;
    st->bytes += (int64_t)c->data.len;
    if (st->messages != 1 || !has_flow) return;
    paused_call *p = malloc(sizeof *p);
    if (!p) return;
    api->call_ref(call);
    p->call = call;
    st->pauses++;
    api->pause_reading(call, 1);
    pthread_mutex_lock(&lock);
    p->next = paused_list;
    paused_list = p;
    n_paused++;
    pthread_mutex_unlock(&lock);
}

static void sink_on_half_close(rh_call *call)
{
    sink_state *st = api->call_state(call);
    Rpchost__Flowtest__SinkResult r = RPCHOST__FLOWTEST__SINK_RESULT__INIT;
    r.messages = st->messages;
    r.bytes = st->bytes;
    r.pauses = st->pauses;
    api->send(call, &r.base);
    api->finish(call, RH_OK, NULL);
}

/* A paused call that is cancelled leaves the list (its reference with it),
 * so a test that never resumes cannot keep the host from stopping. */
static void sink_on_cancel(rh_call *call)
{
    paused_call *found = NULL;
    pthread_mutex_lock(&lock);
    for (paused_call **pp = &paused_list; *pp; pp = &(*pp)->next) {
        if ((*pp)->call == call) {
            found = *pp;
            *pp = found->next;
            n_paused--;
            break;
        }
    }
    pthread_mutex_unlock(&lock);
    if (found) {
        api->call_unref(call);
        free(found);
    }
}

static void *resume_thread(void *arg)
{
    rh_call *call = arg;
    pthread_mutex_lock(&lock);
    paused_call *list = paused_list;
    paused_list = NULL;
    n_paused = 0;
    pthread_mutex_unlock(&lock);
    int n = 0;
    while (list) {
        paused_call *p = list;
        list = p->next;
        api->pause_reading(p->call, 0);
        api->pause_reading(p->call, 0); /* idempotent */
        api->call_unref(p->call);
        free(p);
        n++;
    }
    Rpchost__Flowtest__Ctl r = RPCHOST__FLOWTEST__CTL__INIT;
    r.calls = n;
    api->send(call, &r.base);
    api->finish(call, RH_OK, NULL);
    api->call_unref(call);
    return NULL;
}

static void resume_on_message(rh_call *call, const ProtobufCMessage *msg)
{
    (void)msg;
    pthread_mutex_lock(&lock);
    int ok = n_threads < (int)(sizeof threads / sizeof threads[0]);
    api->call_ref(call);
    if (ok && pthread_create(&threads[n_threads], NULL, resume_thread, call) == 0) {
        n_threads++;
        pthread_mutex_unlock(&lock);
        return;
    }
    pthread_mutex_unlock(&lock);
    api->call_unref(call);
    api->finish(call, RH_RESOURCE_EXHAUSTED, "cannot start a resume thread");
}

static void paused_on_message(rh_call *call, const ProtobufCMessage *msg)
{
    (void)msg;
    Rpchost__Flowtest__Ctl r = RPCHOST__FLOWTEST__CTL__INIT;
    pthread_mutex_lock(&lock);
    r.calls = n_paused;
    pthread_mutex_unlock(&lock);
    r.abi_minor = api->abi_minor;
    r.has_flow = has_flow;
    api->send(call, &r.base);
    api->finish(call, RH_OK, NULL);
}

static int ft_init(const rh_host_api *host, rh_plugin_ctx *ctx)
{
    (void)ctx;
    api = host;
#ifdef FLOWTEST_ABI10
    has_flow = 0;
#else
    has_flow = host->size >= offsetof(rh_host_api, notify_writable) + sizeof host->notify_writable;
#endif
    return 0;
}

static void ft_fini(rh_plugin_ctx *ctx)
{
    (void)ctx;
    for (int i = 0; i < n_threads; i++) pthread_join(threads[i], NULL);
    n_threads = 0;
}

static const rh_method methods[] = {
    {"Sink", sizeof(sink_state), sink_on_message, sink_on_half_close, sink_on_cancel},
    {"Resume", 0, resume_on_message, NULL, NULL},
    {"Paused", 0, paused_on_message, NULL, NULL},
};

static const rh_service services[] = {
    {&rpchost__flowtest__flow_test__descriptor, methods},
};

static const rh_plugin_descriptor descriptor = {
    .abi = {RH_PLUGIN_MAGIC, RPCHOST_ABI_MAJOR, FT_MINOR, (uint32_t)sizeof(rh_plugin_descriptor),
            0, FT_NAME, FT_VERSION},
    .services = services,
    .n_services = 1,
    .descriptor_set = rh_descriptor_set,
    .descriptor_set_len = sizeof rh_descriptor_set,
    .init = ft_init,
    .fini = ft_fini,
};

__attribute__((section(".note.rpchost"), used, aligned(4))) static const rh_plugin_note note = {
    sizeof(RH_NOTE_NAME), sizeof(rh_abi_block), RH_NOTE_TYPE, RH_NOTE_NAME,
    {RH_PLUGIN_MAGIC, RPCHOST_ABI_MAJOR, FT_MINOR, (uint32_t)sizeof(rh_plugin_descriptor), 0,
     FT_NAME, FT_VERSION}};

RPCHOST_PLUGIN_DEFINE(descriptor);
