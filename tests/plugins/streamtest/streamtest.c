/* streamtest: Events(count, via) sends count events, each from its own
 * callback on the call's worker: post() (via 0) or call_later(0) (via 1),
 * paced with send_queued / notify_writable. A stream of a million events
 * makes a million callbacks: what each one costs the host in memory for
 * the life of the call shows as RSS growth. */
#include <stdint.h>

#include "rpchost/plugin.h"
#include "rpchost_descriptor_set.h"
#include "streamtest.pb-c.h"

#define HIGH (64u << 10)
#define LOW (16u << 10)
#define MAX_COUNT 10000000u

static const rh_host_api *api;

typedef struct stream_state {
    uint64_t sent, count;
    uint32_t via;
} stream_state;

static void step(rh_call *call, void *arg);

static int schedule(rh_call *call, stream_state *st)
{
    if (api->send_queued(call) > HIGH) return api->notify_writable(call, LOW, step, st);
    if (st->via == 1) return api->call_later(call, 0, step, st);
    return api->post(call, step, st);
}

/* One event per callback. */
static void step(rh_call *call, void *arg)
{
    stream_state *st = arg;
    if (api->is_done(call)) {
        api->call_unref(call);
        return;
    }
    if (st->sent == st->count) {
        api->finish(call, RH_OK, NULL);
        api->call_unref(call);
        return;
    }
    Rpchost__Test__Seq ev = RPCHOST__TEST__SEQ__INIT;
    ev.seq = ++st->sent;
    int rc = api->send(call, &ev.base);
    if (rc == 0) rc = schedule(call, st);
    if (rc != 0) {
        api->finish(call, RH_INTERNAL, "streamtest: cannot go on");
        api->call_unref(call);
    }
}

static void events(rh_call *call, const ProtobufCMessage *msg)
{
    const Rpchost__Test__EventsRequest *req = (const Rpchost__Test__EventsRequest *)msg;
    if (req->count > MAX_COUNT || req->via > 1) {
        api->finish(call, RH_INVALID_ARGUMENT, "count up to 10000000, via 0 or 1");
        return;
    }
    stream_state *st = api->call_state(call);
    st->count = req->count;
    st->via = req->via;
    api->call_ref(call); /* dropped by the last step */
    if (schedule(call, st) != 0) {
        api->finish(call, RH_INTERNAL, "streamtest: cannot start");
        api->call_unref(call);
    }
}

static const rh_method methods[] = {
    {.name = "Events", .call_state_size = sizeof(stream_state), .on_message = events},
};
static const rh_service services[] = {{&rpchost__test__streams__descriptor, methods}};

static int init(const rh_host_api *host, rh_plugin_ctx *ctx)
{
    (void)ctx;
    api = host;
    return 0;
}

static const rh_plugin_descriptor descriptor = {
    .services = services,
    .n_services = 1,
    .descriptor_set = rh_descriptor_set,
    .descriptor_set_len = sizeof rh_descriptor_set,
    .init = init,
};

RPCHOST_PLUGIN("streamtest", "1.0.0", descriptor);
