/* Test-only plugin: rpchost.review.Hold/Keep takes a call reference and
 * keeps the call until fini, which answers it (send, finish) and drops the
 * reference from the control thread, as a plugin with a background queue
 * does when it is stopped. The host must accept that after its workers
 * stopped (the calls were cancelled by the drain timeout). */
#include <pthread.h>
#include <stdio.h>

#include "rpchost/plugin.h"
#include "rpchost_descriptor_set.h"
#include "review_hold.pb-c.h"

#define HELD_MAX 64

static const rh_host_api *api;
static rh_plugin_ctx *self;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static rh_call *held[HELD_MAX];
static size_t n_held;

static void keep_on_message(rh_call *call, const ProtobufCMessage *msg)
{
    (void)msg;
    pthread_mutex_lock(&lock);
    if (n_held == HELD_MAX) {
        pthread_mutex_unlock(&lock);
        api->finish(call, RH_RESOURCE_EXHAUSTED, "review_hold: too many held calls");
        return;
    }
    api->call_ref(call);
    held[n_held++] = call;
    size_t n = n_held;
    pthread_mutex_unlock(&lock);
    /* The test waits for these lines, not for a time, before it stops. */
    api->log(self, RH_LOG_INFO, "holding call %zu", n);
}

static int hold_init(const rh_host_api *host, rh_plugin_ctx *ctx)
{
    api = host;
    self = ctx;
    return 0;
}

static void hold_fini(rh_plugin_ctx *ctx)
{
    (void)ctx;
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < n_held; i++) {
        Rpchost__Review__Resp r = RPCHOST__REVIEW__RESP__INIT;
        r.text = "late";
        int s = api->send(held[i], &r.base);
        int f = api->finish(held[i], RH_OK, NULL);
        api->log(self, RH_LOG_INFO, "fini answered a held call: send %d finish %d", s, f);
        api->call_unref(held[i]);
    }
    n_held = 0;
    pthread_mutex_unlock(&lock);
}

static const rh_method methods[] = {{.name = "Keep", .on_message = keep_on_message}};
static const rh_service services[] = {{&rpchost__review__hold__descriptor, methods}};

static const rh_plugin_descriptor desc = {
    .abi = RH_ABI_BLOCK_INIT("review_hold", "1.0.0"),
    .services = services,
    .n_services = 1,
    .descriptor_set = rh_descriptor_set,
    .descriptor_set_len = sizeof rh_descriptor_set,
    .init = hold_init,
    .fini = hold_fini,
};

RPCHOST_PLUGIN_NOTE("review_hold", "1.0.0");
RPCHOST_PLUGIN_DEFINE(desc);
