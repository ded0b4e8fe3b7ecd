/* Test-only plugin that faults on request, for crash containment tests.
 * Builds (CMakeLists.txt): crashy_v1 and crashy_v2 differ in their
 * version only; crashy_initcrash stores through NULL in its init (a hot
 * add or replace that must not take the host down); crashgate is an
 * interceptor that faults on calls with metadata x-crash (a quarantined
 * interceptor must fail closed). Every fault is real:
 * the kernel raises the signal, nothing calls raise(). */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "crashy.pb-c.h"
#include "rpchost/plugin.h"
#include "rpchost_descriptor_set.h"

#ifndef CRASHY_VERSION
#define CRASHY_VERSION "1"
#endif
#ifndef CRASHY_NAME
#define CRASHY_NAME "crashy"
#endif

static const rh_host_api *api;
static volatile int zero;         /* read at run time: no constant folding */
static int *volatile nowhere;     /* NULL */

static void fault_segv(void) { *nowhere = 1; }

static void fault_bus(void)
{
    /* A shared mapping of an empty file: touching it is SIGBUS. */
    int fd = memfd_create("crashy-bus", 0);
    volatile char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p != MAP_FAILED) p[0] = 1;
}

static void fault_fpe(void)
{
    volatile int x = 42 / zero;
    (void)x;
}

static void fault_ill(void) { __builtin_trap(); }

/* Not a tail call, and the frame is big: the stack runs out quickly. */
static int recurse(int depth)
{
    volatile char pad[512];
    if (depth < 0) return 0; /* never: zero is 0 */
    pad[depth % sizeof pad] = (char)depth;
    return recurse(depth + 1) + pad[0];
}

static void *thread_main(void *arg)
{
    (void)arg;
    fault_segv();
    return NULL;
}

static void crash_on_message(rh_call *call, const ProtobufCMessage *msg)
{
    const Rpchost__Test__CrashRequest *req = (const void *)msg;
    const char *how = req->how ? req->how : "";
    if (!strcmp(how, "segv")) {
        fault_segv();
    } else if (!strcmp(how, "bus")) {
        fault_bus();
    } else if (!strcmp(how, "fpe")) {
        fault_fpe();
    } else if (!strcmp(how, "ill")) {
        fault_ill();
    } else if (!strcmp(how, "abort")) {
        abort();
    } else if (!strcmp(how, "stack")) {
        recurse(zero);
    } else if (!strcmp(how, "thread")) {
        pthread_t t;
        if (pthread_create(&t, NULL, thread_main, NULL) == 0) pthread_join(t, NULL);
    } else if (strcmp(how, "ok") != 0) {
        api->finish(call, RH_INVALID_ARGUMENT, "unknown fault");
        return;
    }
    Rpchost__Test__CrashReply r = RPCHOST__TEST__CRASH_REPLY__INIT;
    r.version = (char *)CRASHY_VERSION;
    api->send(call, &r.base);
    api->finish(call, RH_OK, NULL);
}

__attribute__((unused)) static const rh_method crashy_methods[] = {
    {"Crash", 0, crash_on_message, NULL, NULL},
};

#ifndef CRASHY_INTERCEPTOR
static const rh_service services[] = {
    {&rpchost__test__crashy__descriptor, crashy_methods},
};
#define N_SERVICES 1
static const rh_interceptor *const interceptors = NULL;
#define N_INTERCEPTORS 0
#else
/* An interceptor only: every call passes it; one with metadata x-crash
 * makes it store through NULL. */
static rh_status gate_on_start(rh_call *call, const char **message)
{
    (void)message;
    size_t len;
    if (api->metadata_get(call, "x-crash", &len)) fault_segv();
    return RH_OK;
}
static const rh_interceptor interceptors[] = {{"gate", gate_on_start, NULL}};
#define N_INTERCEPTORS 1
static const rh_service *const services = NULL;
#define N_SERVICES 0
#endif

static int crashy_init(const rh_host_api *host, rh_plugin_ctx *ctx)
{
    (void)ctx;
    api = host;
#ifdef CRASHY_INIT_CRASH
    fault_segv();
#endif
    return 0;
}

RPCHOST_PLUGIN_NOTE(CRASHY_NAME, CRASHY_VERSION);

static const rh_plugin_descriptor descriptor = {
    .abi = RH_ABI_BLOCK_INIT(CRASHY_NAME, CRASHY_VERSION),
    .services = services,
    .n_services = N_SERVICES,
    .interceptors = interceptors,
    .n_interceptors = N_INTERCEPTORS,
    .descriptor_set = rh_descriptor_set,
    .descriptor_set_len = sizeof rh_descriptor_set,
    .init = crashy_init,
};

RPCHOST_PLUGIN_DEFINE(descriptor);
