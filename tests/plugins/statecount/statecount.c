/* statecount: an interceptor that counts every call started on the host,
 * and a service that reports the count. The counter is state shared with
 * the successor across a replace, so no call is missed or counted twice
 * while both builds run calls. */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "rpchost/plugin.h"
#include "rpchost_descriptor_set.h"
#include "statecount.pb-c.h"

#define STATE_LAYOUT 1

typedef struct count_state {
    uint32_t layout;
    atomic_int users;
    atomic_ullong calls;
} count_state;

static const rh_host_api *api;
static count_state *state;

static void state_release(count_state *st)
{
    if (st && atomic_fetch_sub(&st->users, 1) == 1) free(st);
}

static rh_status count_start(rh_call *call, const char **message)
{
    (void)call;
    (void)message;
    atomic_fetch_add(&state->calls, 1);
    return RH_OK;
}

static void total(rh_call *call, const ProtobufCMessage *msg)
{
    (void)msg;
    Rpchost__Test__TotalReply reply = RPCHOST__TEST__TOTAL_REPLY__INIT;
    reply.calls = atomic_load(&state->calls);
    if (api->send(call, &reply.base) == 0) api->finish(call, RH_OK, NULL);
}

static const rh_method methods[] = {{.name = "Total", .on_message = total}};
static const rh_service services[] = {{&rpchost__test__call_count__descriptor, methods}};
static const rh_interceptor interceptors[] = {{.name = "count", .on_start = count_start}};

static int init(const rh_host_api *host, rh_plugin_ctx *ctx)
{
    (void)ctx;
    api = host;
    state = calloc(1, sizeof *state);
    if (!state) return -ENOMEM;
    state->layout = STATE_LAYOUT;
    atomic_init(&state->users, 1);
    return 0;
}

static void fini(rh_plugin_ctx *ctx)
{
    (void)ctx;
    state_release(state);
}

static void *export_state(rh_plugin_ctx *ctx, uint32_t *version)
{
    (void)ctx;
    *version = STATE_LAYOUT;
    return state;
}

static int import_state(rh_plugin_ctx *ctx, void *blob, uint32_t version)
{
    count_state *st = blob;
    if (version != STATE_LAYOUT || st->layout != STATE_LAYOUT) {
        api->log(ctx, RH_LOG_WARN, "state layout %u unknown: counting from 0", version);
        return -EPROTO;
    }
    atomic_fetch_add(&st->users, 1);
    state_release(state);
    state = st;
    api->log(ctx, RH_LOG_INFO, "took over the count at %llu",
             (unsigned long long)atomic_load(&st->calls));
    return 0;
}

static const rh_plugin_descriptor descriptor = {
    .services = services,
    .n_services = 1,
    .interceptors = interceptors,
    .n_interceptors = 1,
    .descriptor_set = rh_descriptor_set,
    .descriptor_set_len = sizeof rh_descriptor_set,
    .init = init,
    .fini = fini,
    .export_state = export_state,
    .import_state = import_state,
};

RPCHOST_PLUGIN("statecount", STATECOUNT_VERSION, descriptor);
