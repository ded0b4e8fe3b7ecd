/* Test-only plugin for hot operations. One source, several builds chosen by
 * compile definitions (see CMakeLists.txt):
 *   SWAP_NAME / SWAP_VERSION  identity ("swap" "1", "swap" "2", ...)
 *   SWAP_FAIL_INIT            init fails (a replacement that must not win)
 *   SWAP_ABI_MAJOR            the ELF note claims another ABI major
 *   SWAP_NO_SYMBOL            the note is there, rpchost_plugin is not
 *   SWAP_NO_SERVICE           serves nothing (for the NODELETE build)
 *   SWAP_INTERCEPTOR          adds interceptor "principal": metadata
 *                             x-test-principal becomes the call principal
 *   SWAP_LEAK_THREAD          init starts a thread that fini never stops
 *                             (the host must not unmap its code) */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "rpchost/plugin.h"
#include "rpchost_descriptor_set.h"
#include "swap.pb-c.h"

#ifndef SWAP_NAME
#define SWAP_NAME "swap"
#endif
#ifndef SWAP_VERSION
#define SWAP_VERSION "1"
#endif

static const rh_host_api *api;
static rh_plugin_ctx *self;

typedef struct stream_state {
    uint32_t count, interval_ms, seq;
} stream_state;

static void reply(rh_call *call, uint32_t seq)
{
    Rpchost__Test__VersionReply r = RPCHOST__TEST__VERSION_REPLY__INIT;
    r.version = (char *)SWAP_VERSION;
    r.seq = seq;
    const char *g = api->config_get(self, "greeting");
    r.greeting = (char *)(g ? g : "");
    const char *p = api->principal(call);
    r.principal = (char *)(p ? p : "");
    api->send(call, &r.base);
}

static void version_on_message(rh_call *call, const ProtobufCMessage *msg)
{
    (void)msg;
    api->add_metadata(call, RH_MD_INITIAL, "x-plugin-version", SWAP_VERSION,
                      strlen(SWAP_VERSION));
    reply(call, 0);
    api->finish(call, RH_OK, NULL);
}

static void stream_tick(rh_call *call, void *arg)
{
    (void)arg;
    stream_state *st = api->call_state(call);
    if (api->is_done(call)) return; /* cancelled: the timer's ref goes with us */
    reply(call, ++st->seq);
    if (st->seq >= st->count)
        api->finish(call, RH_OK, NULL);
    else
        api->call_later(call, (uint64_t)st->interval_ms * 1000000u, stream_tick, NULL);
}

static void stream_on_message(rh_call *call, const ProtobufCMessage *msg)
{
    const Rpchost__Test__VersionRequest *req = (const Rpchost__Test__VersionRequest *)msg;
    stream_state *st = api->call_state(call);
    st->count = req->count ? req->count : 1;
    st->interval_ms = req->interval_ms;
    api->add_metadata(call, RH_MD_INITIAL, "x-plugin-version", SWAP_VERSION,
                      strlen(SWAP_VERSION));
    api->call_later(call, (uint64_t)st->interval_ms * 1000000u, stream_tick, NULL);
}

__attribute__((unused)) static const rh_method swap_methods[] = {
    {"Version", 0, version_on_message, NULL, NULL},
    {"Stream", sizeof(stream_state), stream_on_message, NULL, NULL},
};

#ifndef SWAP_NO_SERVICE
static const rh_service services[] = {
    {&rpchost__test__swap__descriptor, swap_methods},
};
#define N_SERVICES 1
#else
static const rh_service *const services = NULL;
#define N_SERVICES 0
#endif

#ifdef SWAP_INTERCEPTOR
static rh_status principal_on_start(rh_call *call, const char **message)
{
    (void)message;
    size_t len;
    const uint8_t *v = api->metadata_get(call, "x-test-principal", &len);
    if (v && len < 128) {
        char buf[128];
        memcpy(buf, v, len);
        buf[len] = '\0';
        api->set_principal(call, buf);
    }
    return RH_OK;
}
static const rh_interceptor interceptors[] = {{"principal", principal_on_start, NULL}};
#define N_INTERCEPTORS 1
#else
static const rh_interceptor *const interceptors = NULL;
#define N_INTERCEPTORS 0
#endif

#ifdef SWAP_LEAK_THREAD
static void *forever(void *arg)
{
    (void)arg;
    for (;;) {
        struct timespec ts = {0, 5 * 1000000};
        nanosleep(&ts, NULL); /* returns into this plugin's code every 5 ms */
    }
    return NULL;
}
#endif

static int swap_init(const rh_host_api *host, rh_plugin_ctx *ctx)
{
    api = host;
    self = ctx;
#ifdef SWAP_LEAK_THREAD
    pthread_t t;
    if (pthread_create(&t, NULL, forever, NULL) != 0) return -EAGAIN;
    pthread_detach(t);
#endif
#ifdef SWAP_FAIL_INIT
    api->log(ctx, RH_LOG_ERROR, "this build refuses to start (SWAP_FAIL_INIT)");
    return -EIO;
#else
    api->log(ctx, RH_LOG_DEBUG, "version %s started", SWAP_VERSION);
    return 0;
#endif
}

static void swap_fini(rh_plugin_ctx *ctx)
{
    api->log(ctx, RH_LOG_DEBUG, "version %s stopped", SWAP_VERSION);
}

static void swap_reload(rh_plugin_ctx *ctx)
{
    const char *g = api->config_get(ctx, "greeting");
    api->log(ctx, RH_LOG_INFO, "reload: greeting is now '%s'", g ? g : "");
}

static const rh_plugin_descriptor descriptor = {
    .abi = RH_ABI_BLOCK_INIT(SWAP_NAME, SWAP_VERSION),
    .services = services,
    .n_services = N_SERVICES,
    .interceptors = interceptors,
    .n_interceptors = N_INTERCEPTORS,
    .descriptor_set = rh_descriptor_set,
    .descriptor_set_len = sizeof rh_descriptor_set,
    .init = swap_init,
    .fini = swap_fini,
    .reload = swap_reload,
};

#ifdef SWAP_ABI_MAJOR
/* A hand-made note claiming another major: the host must refuse the file
 * without running any of it (this constructor would say so). */
__attribute__((section(".note.rpchost"), used, aligned(4))) static const rh_plugin_note note = {
    sizeof(RH_NOTE_NAME), sizeof(rh_abi_block), RH_NOTE_TYPE, RH_NOTE_NAME,
    {RH_PLUGIN_MAGIC, SWAP_ABI_MAJOR, 0, (uint32_t)sizeof(rh_plugin_descriptor), 0, SWAP_NAME,
     SWAP_VERSION}};
__attribute__((constructor)) static void must_not_run(void)
{
    fprintf(stderr, "BUG: constructor of a plugin with a foreign ABI ran\n");
}
#else
RPCHOST_PLUGIN_NOTE(SWAP_NAME, SWAP_VERSION);
#endif

#ifndef SWAP_NO_SYMBOL
RPCHOST_PLUGIN_DEFINE(descriptor);
#else
/* Keep the descriptor referenced so the build does not drop it. */
__attribute__((used)) static const rh_plugin_descriptor *keep = &descriptor;
#endif
