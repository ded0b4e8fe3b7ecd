/* authlog: an interceptor plugin with no services and two interceptors,
 *   authlog.auth  bearer tokens / client certificates -> principal, checked
 *                 against the method lists of a tokens file;
 *   authlog.log   one access log line per finished call.
 * Configuration: the [plugin.authlog] keys read by config_read() below;
 * docs/interceptors.md describes them.
 *
 * Interceptor callbacks get the call but no plugin context, so the instance
 * state lives in one static pointer. Every load of the plugin is a private
 * copy of the file (the host's loader), hence every instance has its own. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "rpchost/plugin.h"
#include "rpchost_descriptor_set.h"

#include "al_auth.h"
#include "al_logline.h"
#include "al_state.h"

static al_state *g_state;

/* --- configuration ----------------------------------------------------- */

/* "262144", "256K", "1M": 4 KiB to 256 MiB. */
static int parse_size(const char *v, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno || end == v)
        return -EINVAL;
    if (*end == 'k' || *end == 'K') {
        n <<= 10;
        end++;
    } else if (*end == 'm' || *end == 'M') {
        n <<= 20;
        end++;
    }
    if (*end || n < 4096 || n > (256ull << 20))
        return -EINVAL;
    *out = (size_t)n;
    return 0;
}

static int parse_bool(const char *v, bool *out)
{
    static const char *const yes[] = {"on", "true", "yes", "1"};
    static const char *const no[] = {"off", "false", "no", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -EINVAL;
}

static const char *cfg(const rh_host_api *api, rh_plugin_ctx *ctx, const char *key)
{
    const char *v = api->config_get(ctx, key);
    return v && *v ? v : NULL;
}

/* Reads the [plugin.authlog] keys into c. On a bad value writes one line
 * naming the key into err and returns -EINVAL. */
static int config_read(const rh_host_api *api, rh_plugin_ctx *ctx, al_config *c,
                       char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    c->log_format = AL_FMT_TEXT;
    c->log_buffer = AL_LOG_BUFFER_DEFAULT;
    c->mtls = true;
    c->auth = true;
    c->log = true;
    const char *v;
    if ((v = cfg(api, ctx, "log_file")) && strcmp(v, "stderr") != 0 &&
        strcmp(v, "-") != 0 && !(c->log_file = strdup(v)))
        goto nomem;
    if ((v = cfg(api, ctx, "log_format"))) {
        int f = al_log_format_parse(v);
        if (f < 0) {
            snprintf(err, errlen, "[plugin.authlog] log_format = %s: use text or json", v);
            goto bad;
        }
        c->log_format = (al_log_format)f;
    }
    if ((v = cfg(api, ctx, "log_buffer")) && parse_size(v, &c->log_buffer)) {
        snprintf(err, errlen,
                 "[plugin.authlog] log_buffer = %s: use a size from 4K to 256M "
                 "(bytes per worker thread)", v);
        goto bad;
    }
    static const struct {
        const char *key;
        size_t off;
    } bools[] = {{"mtls", offsetof(al_config, mtls)},
                 {"auth", offsetof(al_config, auth)},
                 {"log", offsetof(al_config, log)}};
    for (size_t i = 0; i < sizeof bools / sizeof bools[0]; i++) {
        if ((v = cfg(api, ctx, bools[i].key)) &&
            parse_bool(v, (bool *)((char *)c + bools[i].off))) {
            snprintf(err, errlen, "[plugin.authlog] %s = %s: use on or off", bools[i].key, v);
            goto bad;
        }
    }
    if ((v = cfg(api, ctx, "tokens_file")) && !(c->tokens_file = strdup(v)))
        goto nomem;
    v = api->config_get(ctx, "exempt");
    if (!v)
        v = AL_DEFAULT_EXEMPT;
    if (strcmp(v, "none") != 0) {
        const char *why = NULL, *badp = NULL;
        size_t bad_len = 0;
        int rc = al_perms_parse_list(&c->exempt, v, &why, &badp, &bad_len);
        if (rc == -ENOMEM)
            goto nomem;
        if (rc || al_perms_has_admin(&c->exempt)) {
            if (!rc) {
                why = "the admin service cannot be exempt";
                badp = v;
                bad_len = strlen(v);
            }
            snprintf(err, errlen, "[plugin.authlog] exempt: '%.*s': %s",
                     (int)(bad_len > 200 ? 200 : bad_len), badp, why);
            goto bad;
        }
    }
    return 0;
nomem:
    snprintf(err, errlen, "out of memory");
    al_config_free(c);
    return -ENOMEM;
bad:
    al_config_free(c);
    return -EINVAL;
}

/* --- the interceptors --------------------------------------------------- */

static const rh_host_api *g_api;

/* Metrics (ABI 1.2; docs/metrics.md); NULL on an older host or with
 * metrics off, and the host's metric functions ignore NULL. */
static rh_series *g_mx_decision[AL_DENIED + 1], *g_mx_dropped;

static void metrics_init(const rh_host_api *api, rh_plugin_ctx *ctx)
{
    static const char *const results[AL_DENIED + 1] = {"allow", "exempt", "missing_token",
                                                       "invalid_token", "denied"};
    if (api->size < offsetof(rh_host_api, metric_observe) + sizeof api->metric_observe)
        return;
    rh_metric *m = api->metric_new(ctx, RH_METRIC_COUNTER, "authlog_decisions_total",
                                   "authlog.auth decisions by result.", "result", NULL, 0);
    for (int v = 0; v <= AL_DENIED; v++)
        g_mx_decision[v] = api->metric_series(m, &results[v]);
    m = api->metric_new(ctx, RH_METRIC_COUNTER, "authlog_log_lines_dropped_total",
                        "Access log lines dropped because the sink fell behind.", NULL, NULL, 0);
    g_mx_dropped = api->metric_series(m, NULL);
}

static void mx_add(rh_series *s)
{
    if (s)
        g_api->metric_add(s, 1);
}

static rh_status auth_on_start(rh_call *call, const char **message)
{
    al_state *s = g_state;
    const rh_host_api *api = g_api;
    if (!atomic_load_explicit(&s->auth_on, memory_order_relaxed))
        return RH_OK;
    al_thread *t = al_thread_get(s);
    if (!t) {
        *message = "authlog: out of memory";
        return RH_RESOURCE_EXHAUSTED;
    }
    al_auth_req req = {0};
    req.hasher = &t->hasher;
    req.method = api->method(call);
    req.method_len = strlen(req.method);
    req.authorization = api->metadata_get(call, "authorization", &req.authorization_len);
    if (atomic_load_explicit(&s->mtls, memory_order_relaxed)) {
        req.subject = api->peer_subject(call);
        req.sans = api->peer_sans(call, &req.n_sans);
    }

    rh_status st = RH_OK;
    const al_entry *who;
    al_read_begin(t);
    al_verdict v = al_auth_decide(atomic_load(&s->tokens), atomic_load(&s->exempt),
                                  &req, &who);
    /* set_principal copies: the entry may be freed after al_read_end. */
    bool attributed = who && api->set_principal(call, who->principal) == 0;
    switch (v) {
    case AL_ALLOW:
        if (!attributed) { /* never run a call as nobody by accident */
            st = RH_RESOURCE_EXHAUSTED;
            *message = "authlog: out of memory";
        }
        break;
    case AL_EXEMPT:
        break;
    case AL_MISSING:
        st = RH_UNAUTHENTICATED;
        *message = AL_MSG_MISSING;
        break;
    case AL_INVALID:
        st = RH_UNAUTHENTICATED;
        *message = AL_MSG_INVALID;
        break;
    case AL_DENIED: {
        static const char fmt[] = "principal %s may not call %s";
        size_t n = sizeof fmt + strlen(who->principal) + req.method_len;
        char *m = api->arena_alloc(call, n);
        if (m)
            snprintf(m, n, fmt, who->principal, req.method);
        st = RH_PERMISSION_DENIED;
        *message = m ? m : "permission denied";
        break;
    }
    }
    al_read_end(t);
    mx_add(g_mx_decision[v]);
    return st;
}

static rh_status log_on_start(rh_call *call, const char **message)
{
    (void)call;
    (void)message;
    return RH_OK;
}

static void log_on_end(rh_call *call, const rh_call_stats *stats)
{
    al_state *s = g_state;
    const rh_host_api *api = g_api;
    if (!atomic_load_explicit(&s->log_on, memory_order_relaxed))
        return;
    al_thread *t = al_thread_get(s);
    if (!t)
        return;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    al_logrec r = {
        .time_sec = now.tv_sec,
        .time_usec = (uint32_t)(now.tv_nsec / 1000),
        .method = api->method(call),
        .peer = api->peer(call),
        .principal = api->principal(call),
        .message = stats->message,
        .status = (int)stats->status,
        .duration_ns = stats->duration_ns,
        .bytes_in = stats->bytes_in,
        .bytes_out = stats->bytes_out,
        /* ABI 1.2 fields: this plugin needs a 1.2 host, which fills them. */
        .bytes_in_uncompressed = stats->bytes_in_uncompressed,
        .bytes_out_uncompressed = stats->bytes_out_uncompressed,
        .messages_in = stats->messages_in,
        .messages_out = stats->messages_out,
        .protocol = offsetof(rh_host_api, protocol) < api->size ? api->protocol(call) : NULL,
    };
    char line[AL_LINE_MAX];
    al_log_format fmt =
        (al_log_format)atomic_load_explicit(&s->log_format, memory_order_relaxed);
    size_t n = al_logline_format(line, sizeof line, fmt, &r, &t->tc);
    bool half_full;
    if (al_ring_push(&t->ring, line, n, &half_full) < 0)
        mx_add(g_mx_dropped);
    if (half_full && !atomic_exchange(&t->ring.wake_pending, true))
        al_state_wake(s); /* one write(2) per drain at most, not per call */
}

static const rh_interceptor authlog_interceptors[] = {
    {.name = "auth", .on_start = auth_on_start, .on_end = NULL},
    {.name = "log", .on_start = log_on_start, .on_end = log_on_end},
};

/* --- lifecycle ---------------------------------------------------------- */

static int authlog_init(const rh_host_api *api, rh_plugin_ctx *ctx)
{
    char err[600];
    al_config *c = malloc(sizeof *c);
    if (!c)
        return -ENOMEM;
    int rc = config_read(api, ctx, c, err, sizeof err);
    if (rc) {
        free(c);
        api->log(ctx, RH_LOG_ERROR, "%s", err);
        return rc;
    }
    bool no_tokens = !c->tokens_file && c->auth;
    g_api = api;
    metrics_init(api, ctx);
    rc = al_state_start(&g_state, api, ctx, c, err, sizeof err);
    free(c);
    if (rc) {
        api->log(ctx, RH_LOG_ERROR, "%s", err);
        return rc;
    }
    if (no_tokens)
        api->log(ctx, RH_LOG_WARN,
                 "no tokens_file in [plugin.authlog]: authlog.auth lets only "
                 "exempt methods through (scripts/rpchost-token makes a tokens file)");
    return 0;
}

static void authlog_fini(rh_plugin_ctx *ctx)
{
    (void)ctx;
    if (g_state)
        al_state_stop(g_state);
    g_state = NULL;
}

static void authlog_reload(rh_plugin_ctx *ctx)
{
    char err[600];
    al_config *c = malloc(sizeof *c);
    if (!c || !g_state) {
        free(c);
        return;
    }
    int rc = config_read(g_api, ctx, c, err, sizeof err);
    if (rc) {
        free(c);
        g_api->log(ctx, RH_LOG_ERROR, "%s; keeping the previous configuration", err);
        return;
    }
    al_state_reconfigure(g_state, c); /* reopens the log, re-reads tokens */
}

static const rh_plugin_descriptor authlog_descriptor = {
    .abi = RH_ABI_BLOCK_INIT("authlog", "1.0.0"),
    .services = NULL,
    .n_services = 0,
    .interceptors = authlog_interceptors,
    .n_interceptors = sizeof authlog_interceptors / sizeof authlog_interceptors[0],
    .descriptor_set = rh_descriptor_set,
    .descriptor_set_len = sizeof rh_descriptor_set,
    .init = authlog_init,
    .fini = authlog_fini,
    .reload = authlog_reload,
};

RPCHOST_PLUGIN_NOTE("authlog", "1.0.0");
RPCHOST_PLUGIN_DEFINE(authlog_descriptor)
