/* ordertest (test only): two interceptors, ordertest.a and ordertest.b,
 * that record when they run, so a test can check the host honours the
 * configured interceptor order:
 *   - each on_start adds the initial metadata "x-ordertest: <name>
 *     principal=<principal or ->" (the client sees them in order), and
 *   - if [plugin.ordertest] record_file is set, each on_start and on_end
 *     appends "<start|end> <name> <method> principal=<p>" to it (one
 *     O_APPEND write a line).
 * With `reject = /Service/Method`, ordertest.b refuses that method with
 * FAILED_PRECONDITION "rejected by ordertest.b". */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "rpchost/plugin.h"
#include "rpchost_descriptor_set.h"

static const rh_host_api *g_api;
static int g_fd = -1;
static const char *g_reject;

static void record(rh_call *call, const char *what, const char *name)
{
    const char *p = g_api->principal(call);
    char line[512];
    int n = snprintf(line, sizeof line, "%s ordertest.%s principal=%s", what, name,
                     p ? p : "-");
    if (strcmp(what, "start") == 0)
        g_api->add_metadata(call, RH_MD_INITIAL, "x-ordertest", line + 6,
                            (size_t)n - 6);
    if (g_fd >= 0) {
        n = snprintf(line, sizeof line, "%s ordertest.%s %s principal=%s\n", what,
                     name, g_api->method(call), p ? p : "-");
        if (n > 0 && write(g_fd, line, (size_t)n) < 0)
            g_api->log(g_api->call_plugin(call), RH_LOG_ERROR, "ordertest: write failed");
    }
}

static rh_status a_start(rh_call *call, const char **message)
{
    (void)message;
    record(call, "start", "a");
    return RH_OK;
}

static rh_status b_start(rh_call *call, const char **message)
{
    record(call, "start", "b");
    if (g_reject && strcmp(g_api->method(call), g_reject) == 0) {
        *message = "rejected by ordertest.b";
        return RH_FAILED_PRECONDITION;
    }
    return RH_OK;
}

static void a_end(rh_call *call, const rh_call_stats *stats)
{
    (void)stats;
    record(call, "end", "a");
}

static void b_end(rh_call *call, const rh_call_stats *stats)
{
    (void)stats;
    record(call, "end", "b");
}

static const rh_interceptor interceptors[] = {
    {.name = "a", .on_start = a_start, .on_end = a_end},
    {.name = "b", .on_start = b_start, .on_end = b_end},
};

static int ordertest_init(const rh_host_api *api, rh_plugin_ctx *ctx)
{
    g_api = api;
    const char *path = api->config_get(ctx, "record_file");
    if (path && *path) {
        g_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (g_fd < 0) {
            api->log(ctx, RH_LOG_ERROR, "cannot open record_file %s", path);
            return -1;
        }
    }
    g_reject = api->config_get(ctx, "reject");
    return 0;
}

static void ordertest_fini(rh_plugin_ctx *ctx)
{
    (void)ctx;
    if (g_fd >= 0)
        close(g_fd);
    g_fd = -1;
}

static const rh_plugin_descriptor descriptor = {
    .abi = RH_ABI_BLOCK_INIT("ordertest", "1.0.0"),
    .interceptors = interceptors,
    .n_interceptors = 2,
    .descriptor_set = rh_descriptor_set,
    .descriptor_set_len = sizeof rh_descriptor_set,
    .init = ordertest_init,
    .fini = ordertest_fini,
};

RPCHOST_PLUGIN_NOTE("ordertest", "1.0.0");
RPCHOST_PLUGIN_DEFINE(descriptor)
