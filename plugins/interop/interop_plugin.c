/* The interop plugin's descriptor, init and fini: configuration and the
 * shared zero pages every response payload points into. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "interop.h"
#include "rpchost_descriptor_set.h"

interop_globals interop_g;

/* Instances of this plugin loaded from the same file share interop_g; the
 * zero pages live while any of them does. init/fini run on the host's
 * control thread, one at a time. */
static unsigned instances;
static size_t zeros_len;

/* Reads a positive size key of [plugin.interop]; 0 on success. */
static int config_size(rh_plugin_ctx *ctx, const char *key, size_t min, size_t max,
                       size_t *out) {
    const char *v = API->config_get(ctx, key);
    if (v == NULL)
        return 0;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || v[0] == '-' || n < min || n > max) {
        API->log(ctx, RH_LOG_ERROR,
                 "config [plugin.interop] %s = \"%s\": expected a whole number from %zu to %zu",
                 key, v, min, max);
        return -EINVAL;
    }
    *out = (size_t)n;
    return 0;
}

static int interop_init(const rh_host_api *api, rh_plugin_ctx *ctx) {
    if (api->size < offsetof(rh_host_api, call_plugin) + sizeof api->call_plugin) {
        api->log(ctx, RH_LOG_ERROR, "host function table too small (%zu bytes)", api->size);
        return -ENOTSUP;
    }
    interop_g.api = api;
    size_t max_resp = INTEROP_MAX_RESPONSE_SIZE_DEFAULT;
    size_t max_pending = INTEROP_MAX_PENDING_DEFAULT;
    size_t max_pending_bytes = INTEROP_MAX_PENDING_BYTES_DEFAULT;
    size_t high_water = INTEROP_SEND_HIGH_WATER_DEFAULT;
    if (config_size(ctx, "max_response_size", 0, 1u << 30, &max_resp) < 0 ||
        config_size(ctx, "max_pending", 1, 1u << 20, &max_pending) < 0 ||
        config_size(ctx, "max_pending_bytes", 0, (size_t)1 << 34, &max_pending_bytes) < 0 ||
        config_size(ctx, "send_high_water", 0, (size_t)1 << 31, &high_water) < 0)
        return -EINVAL;
    /* A 1.0 host has no send_queued/notify_writable: no pacing there. */
    if (api->size < offsetof(rh_host_api, notify_writable) + sizeof api->notify_writable)
        high_water = 0;
    /* A 1.0/1.1 host has no compression functions: nothing is compressed. */
    interop_g.compression =
        api->size >= offsetof(rh_host_api, message_compressed) + sizeof api->message_compressed;

    if (instances == 0 || max_resp > zeros_len) {
        /* Anonymous read-only pages all map the kernel's zero page: a
         * 16 MiB payload source that costs no memory. */
        void *z = mmap(NULL, max_resp ? max_resp : 1, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS,
                       -1, 0);
        if (z == MAP_FAILED) {
            int err = errno;
            api->log(ctx, RH_LOG_ERROR, "mmap of %zu zero bytes failed: %s", max_resp,
                     strerror(err));
            return -err;
        }
        /* An older instance may still point into the old pages: keep them
         * until the last instance goes (a small, bounded leak only when a
         * second instance asks for a larger limit). */
        if (instances == 0 && interop_g.zeros != NULL)
            munmap((void *)interop_g.zeros, zeros_len ? zeros_len : 1);
        interop_g.zeros = z;
        zeros_len = max_resp;
    }
    interop_g.max_response_size = max_resp;
    interop_g.max_pending = max_pending;
    interop_g.max_pending_bytes = max_pending_bytes;
    interop_g.send_high_water = high_water;
    instances++;
    api->log(ctx, RH_LOG_DEBUG,
             "interop: max_response_size=%zu max_pending=%zu max_pending_bytes=%zu "
             "send_high_water=%zu",
             max_resp, max_pending, max_pending_bytes, high_water);
    return 0;
}

static void interop_fini(rh_plugin_ctx *ctx) {
    (void)ctx;
    if (instances > 0 && --instances == 0 && interop_g.zeros != NULL) {
        munmap((void *)interop_g.zeros, zeros_len ? zeros_len : 1);
        interop_g.zeros = NULL;
        zeros_len = 0;
    }
}

/* Same order as the methods of TestService in grpc/testing/test.proto. */
static const rh_method test_service_methods[] = {
    {"EmptyCall", 0, interop_empty_on_message, interop_unary_on_half_close, NULL},
    {"UnaryCall", 0, interop_unary_on_message, interop_unary_on_half_close, NULL},
    {"CacheableUnaryCall", 0, interop_cacheable_on_message, interop_unary_on_half_close, NULL},
    {"StreamingOutputCall", sizeof(interop_stream_state), interop_output_on_message,
     interop_stream_on_half_close, interop_stream_on_cancel},
    {"StreamingInputCall", sizeof(interop_input_state), interop_input_on_message,
     interop_input_on_half_close, NULL},
    {"FullDuplexCall", sizeof(interop_stream_state), interop_full_duplex_on_message,
     interop_stream_on_half_close, interop_stream_on_cancel},
    {"HalfDuplexCall", sizeof(interop_stream_state), interop_half_duplex_on_message,
     interop_stream_on_half_close, interop_stream_on_cancel},
    {"UnimplementedCall", 0, interop_unimplemented_on_message, interop_unary_on_half_close,
     NULL},
};

static const rh_service services[] = {
    {&grpc__testing__test_service__descriptor, test_service_methods},
};

RPCHOST_PLUGIN_NOTE("interop", "1.0.0");

static const rh_plugin_descriptor interop_descriptor = {
    .abi = RH_ABI_BLOCK_INIT("interop", "1.0.0"),
    .services = services,
    .n_services = sizeof services / sizeof services[0],
    .descriptor_set = rh_descriptor_set,
    .descriptor_set_len = sizeof rh_descriptor_set,
    .init = interop_init,
    .fini = interop_fini,
};

RPCHOST_PLUGIN_DEFINE(interop_descriptor);
