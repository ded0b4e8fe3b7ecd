/* Test-only plugin for tests/fuzz/h2/test_deep_nesting.py: Measure answers
 * how deep the request tree is. */
#include "rpchost/plugin.h"
#include "rpchost_descriptor_set.h"
#include "fuzztree.pb-c.h"

static const rh_host_api *api;

static uint32_t depth(const Rpchost__Fuzztree__Node *n)
{
    uint32_t d = 0;
    for (size_t i = 0; i < n->n_children; i++) {
        uint32_t c = depth(n->children[i]);
        if (c > d) d = c;
    }
    return d + 1;
}

static void measure_on_message(rh_call *call, const ProtobufCMessage *msg)
{
    Rpchost__Fuzztree__Depth r = RPCHOST__FUZZTREE__DEPTH__INIT;
    r.levels = depth((const Rpchost__Fuzztree__Node *)msg);
    api->send(call, &r.base);
    api->finish(call, RH_OK, NULL);
}

static const rh_method methods[] = {{"Measure", 0, measure_on_message, NULL, NULL}};
static const rh_service services[] = {{&rpchost__fuzztree__tree__descriptor, methods}};

static int tree_init(const rh_host_api *host, rh_plugin_ctx *ctx)
{
    (void)ctx;
    api = host;
    return 0;
}

static const rh_plugin_descriptor descriptor = {
    .abi = RH_ABI_BLOCK_INIT("fuzztree", "1"),
    .services = services,
    .n_services = 1,
    .descriptor_set = rh_descriptor_set,
    .descriptor_set_len = sizeof rh_descriptor_set,
    .init = tree_init,
};

RPCHOST_PLUGIN_NOTE("fuzztree", "1");
RPCHOST_PLUGIN_DEFINE(descriptor);
