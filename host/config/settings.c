/* Settings: defaults, then the environment (HOST, PORT, CERT_FILE,
 * KEY_FILE), then the INI config file, then the command line; each layer
 * overrides the one before. Any bad value is one line on stderr naming the
 * option (or file:line) and what is accepted; settings_load returns 2. */
#include "config/settings.h"

#include <errno.h>
#include <getopt.h>
#include <ini.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/core.h"
#include "grpc_codec.h"
#include "metrics/metrics.h"

#ifndef RPCHOST_VERSION
#define RPCHOST_VERSION "0.0.0"
#endif

static rh_settings *g_settings;

const rh_settings *settings_get(void) { return g_settings; }
void settings_set(rh_settings *s) { g_settings = s; }

/* ---------------------------------------------------------------- errors */

typedef struct settings_err {
    char msg[512];
    bool set;
} settings_err;

__attribute__((format(printf, 2, 3))) static void err_set(settings_err *e, const char *fmt, ...)
{
    if (e->set) return; /* keep the first error: it is usually the cause */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    e->set = true;
}

/* --------------------------------------------------------- value parsers */

static int replace_str(char **dst, const char *value)
{
    char *copy = strdup(value);
    if (!copy) return -ENOMEM;
    free(*dst);
    *dst = copy;
    return 0;
}

static int parse_u64(const char *v, uint64_t max, uint64_t *out)
{
    if (!v || !*v || *v == '-' || *v == '+') return -EINVAL;
    errno = 0;
    char *end;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno || *end || n > max) return -EINVAL;
    *out = n;
    return 0;
}

static int parse_bool(const char *v, bool *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0) return *out = true, 0;
        if (strcasecmp(v, no[i]) == 0) return *out = false, 0;
    }
    return -EINVAL;
}

/* Seconds, fractions allowed ("0.5"), up to one hour. */
static int parse_seconds_ms(const char *v, uint32_t *out_ms)
{
    if (!v || !*v) return -EINVAL;
    errno = 0;
    char *end;
    double d = strtod(v, &end);
    if (errno || *end || !isfinite(d) || d < 0 || d > 3600) return -EINVAL;
    *out_ms = (uint32_t)(d * 1000.0 + 0.5);
    return 0;
}

static int parse_port(const char *p, char out[16])
{
    uint64_t n;
    if (parse_u64(p, 65535, &n) < 0 || n == 0) return -EINVAL;
    snprintf(out, 16, "%u", (unsigned)n);
    return 0;
}

/* "host:port", "[v6]:port", ":port" (all addresses) or "unix:/path". */
int settings_parse_listen(const char *v, settings_listen *out, char *why, size_t whylen)
{
    memset(out, 0, sizeof *out);
    if (strncmp(v, "unix:", 5) == 0) {
        const char *path = v + 5;
        if (!*path) return snprintf(why, whylen, "empty Unix socket path"), -EINVAL;
        if (strlen(path) >= 108) /* sizeof sockaddr_un.sun_path */
            return snprintf(why, whylen, "Unix socket path longer than 107 bytes"), -EINVAL;
        snprintf(out->host, sizeof out->host, "%s", path);
        out->unix_socket = true;
        return 0;
    }
    const char *colon;
    size_t hlen;
    const char *host = v;
    if (*v == '[') {
        const char *close = strchr(v, ']');
        if (!close || close[1] != ':')
            return snprintf(why, whylen, "expected [ADDRESS]:PORT"), -EINVAL;
        host = v + 1;
        hlen = (size_t)(close - host);
        colon = close + 1;
    } else {
        colon = strrchr(v, ':');
        if (!colon) return snprintf(why, whylen, "expected HOST:PORT"), -EINVAL;
        if (memchr(v, ':', (size_t)(colon - v)))
            return snprintf(why, whylen, "an IPv6 address needs brackets: [::1]:8888"), -EINVAL;
        hlen = (size_t)(colon - v);
    }
    if (hlen >= sizeof out->host) return snprintf(why, whylen, "host name too long"), -EINVAL;
    if (hlen == 0) {
        strcpy(out->host, "::");
    } else {
        memcpy(out->host, host, hlen);
        out->host[hlen] = '\0';
    }
    if (parse_port(colon + 1, out->port) < 0)
        return snprintf(why, whylen, "port must be 1-65535"), -EINVAL;
    return 0;
}

/* A comma- or space-separated list of listen addresses (config file). */
static int parse_listen_list(rh_settings *s, const char *v, settings_err *e, const char *where)
{
    char *copy = strdup(v);
    if (!copy) return -ENOMEM;
    size_t n = 0;
    settings_listen tmp[SETTINGS_MAX_LISTEN];
    int rc = 0;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
        char why[128];
        if (n == SETTINGS_MAX_LISTEN) {
            err_set(e, "%smore than %d listen addresses", where, SETTINGS_MAX_LISTEN);
            rc = -EINVAL;
            break;
        }
        if (settings_parse_listen(tok, &tmp[n], why, sizeof why) < 0) {
            err_set(e, "%sbad listen address '%s': %s", where, tok, why);
            rc = -EINVAL;
            break;
        }
        n++;
    }
    free(copy);
    if (rc == 0 && n == 0) {
        err_set(e, "%sempty listen list", where);
        rc = -EINVAL;
    }
    if (rc == 0) {
        memcpy(s->listen, tmp, n * sizeof tmp[0]);
        s->n_listen = n;
    }
    return rc;
}

/* ------------------------------------------------- the [rpchost] keys */

typedef enum {
    K_STR, K_BOOL, K_U32, K_SIZE, K_WORKERS, K_LOGLEVEL, K_SECONDS, K_LISTEN, K_CODEC, K_BYTES,
    K_METRICS_LISTEN
} key_kind;

typedef struct key_def {
    const char *name;
    key_kind kind;
    size_t off;
    uint64_t max;
} key_def;

#define F(field) offsetof(rh_settings, field)
static const key_def keys[] = {
    {"plugins", K_STR, F(plugins_dir), 0},
    {"listen", K_LISTEN, 0, 0},
    {"cert", K_STR, F(cert_file), 0},
    {"key", K_STR, F(key_file), 0},
    {"client_ca", K_STR, F(client_ca), 0},
    {"client_cert_optional", K_BOOL, F(client_cert_optional), 0},
    {"plaintext", K_BOOL, F(plaintext), 0},
    {"workers", K_WORKERS, F(workers), 256},
    {"log_level", K_LOGLEVEL, F(log_level), 0},
    {"admin_socket", K_STR, F(admin_socket), 0},
    {"admin_principals", K_STR, F(admin_principals), 0},
    {"interceptors", K_STR, F(interceptors), 0},
    {"drain_timeout", K_SECONDS, F(drain_timeout_ms), 0},
    {"drain_timeout_ms", K_U32, F(drain_timeout_ms), 3600000},
    {"max_concurrent_streams", K_U32, F(max_concurrent_streams), UINT32_MAX},
    {"header_list_soft", K_U32, F(header_list_soft), 1u << 24},
    {"header_list_hard", K_U32, F(header_list_hard), 1u << 24},
    {"max_continuations", K_U32, F(max_continuations), 1024},
    {"stream_reset_burst", K_U32, F(stream_reset_burst), UINT32_MAX},
    {"stream_reset_rate", K_U32, F(stream_reset_rate), UINT32_MAX},
    {"max_settings", K_U32, F(max_settings), UINT32_MAX},
    {"max_outbound_ack", K_U32, F(max_outbound_ack), UINT32_MAX},
    {"server_reset_budget", K_U32, F(server_reset_budget), UINT32_MAX},
    {"ping_min_interval_ms", K_U32, F(ping_min_interval_ms), UINT32_MAX},
    {"ping_max_strikes", K_U32, F(ping_max_strikes), UINT32_MAX},
    {"max_connections", K_U32, F(max_connections), UINT32_MAX},
    {"handshake_timeout_ms", K_U32, F(handshake_timeout_ms), UINT32_MAX},
    {"idle_timeout_ms", K_U32, F(idle_timeout_ms), UINT32_MAX},
    {"stream_window", K_U32, F(stream_window), INT32_MAX},
    {"conn_window", K_U32, F(conn_window), INT32_MAX},
    {"max_recv_message", K_SIZE, F(max_recv_message), 1ull << 31},
    {"max_send_message", K_SIZE, F(max_send_message), 1ull << 31},
    {"max_send_queue", K_SIZE, F(max_send_queue), 1ull << 40},
    {"http1_request_timeout_ms", K_U32, F(http1_request_timeout_ms), UINT32_MAX},
    {"http1_keepalive_timeout_ms", K_U32, F(http1_keepalive_timeout_ms), UINT32_MAX},
    {"cors_origins", K_STR, F(cors_origins), 0},
    {"user", K_STR, F(user), 0},
    {"allow_root", K_BOOL, F(allow_root), 0},
    {"unsafe_plugin_dir", K_BOOL, F(unsafe_plugin_dir), 0},
    {"compression", K_CODEC, F(compression), 0},
    {"compression_min_bytes", K_BYTES, F(compression_min_bytes), 1ull << 31},
    {"compression_level", K_U32, F(compression_level), 9},
    {"metrics_listen", K_METRICS_LISTEN, 0, 0},
    {"metrics_token_file", K_STR, F(metrics_token_file), 0},
    {"metrics_buckets", K_STR, F(metrics_buckets), 0},
    {"metrics_tls", K_BOOL, F(metrics_tls), 0},
    {"metrics_cert", K_STR, F(metrics_cert), 0},
    {"metrics_key", K_STR, F(metrics_key), 0},
};
#undef F

static int apply_key(rh_settings *s, const key_def *k, const char *v, settings_err *e,
                     const char *where)
{
    char *base = (char *)s;
    uint64_t n;
    switch (k->kind) {
    case K_STR:
        if (!*v) {
            err_set(e, "%s%s is empty", where, k->name);
            return -EINVAL;
        }
        return replace_str((char **)(base + k->off), v);
    case K_BOOL:
        if (parse_bool(v, (bool *)(base + k->off)) < 0) {
            err_set(e, "%s%s must be true or false, not '%s'", where, k->name, v);
            return -EINVAL;
        }
        return 0;
    case K_U32:
        if (parse_u64(v, k->max, &n) < 0) {
            err_set(e, "%s%s must be a whole number 0-%llu, not '%s'", where, k->name,
                    (unsigned long long)k->max, v);
            return -EINVAL;
        }
        *(uint32_t *)(base + k->off) = (uint32_t)n;
        return 0;
    case K_SIZE:
        if (parse_u64(v, k->max, &n) < 0 || n == 0) {
            err_set(e, "%s%s must be a byte count 1-%llu, not '%s'", where, k->name,
                    (unsigned long long)k->max, v);
            return -EINVAL;
        }
        *(size_t *)(base + k->off) = (size_t)n;
        return 0;
    case K_BYTES: /* a byte count that may be 0 */
        if (parse_u64(v, k->max, &n) < 0) {
            err_set(e, "%s%s must be a byte count 0-%llu, not '%s'", where, k->name,
                    (unsigned long long)k->max, v);
            return -EINVAL;
        }
        *(size_t *)(base + k->off) = (size_t)n;
        return 0;
    case K_CODEC: {
        int a = grpc_codec_from_name(v, strlen(v));
        if (a < 0 && strcmp(v, "none") != 0) {
            err_set(e, "%s%s must be none, gzip or deflate, not '%s'", where, k->name, v);
            return -EINVAL;
        }
        *(int *)(base + k->off) = a < 0 ? GRPC_CODEC_IDENTITY : a;
        return 0;
    }
    case K_WORKERS:
        if (parse_u64(v, k->max, &n) < 0 || n == 0) {
            err_set(e, "%s%s must be 1-%llu, not '%s'", where, k->name,
                    (unsigned long long)k->max, v);
            return -EINVAL;
        }
        *(int *)(base + k->off) = (int)n;
        return 0;
    case K_LOGLEVEL: {
        int lvl = log_level_parse(v);
        if (lvl < 0) {
            err_set(e, "%s%s must be error, warn, info or debug, not '%s'", where, k->name, v);
            return -EINVAL;
        }
        *(int *)(base + k->off) = lvl;
        return 0;
    }
    case K_SECONDS:
        if (parse_seconds_ms(v, (uint32_t *)(base + k->off)) < 0) {
            err_set(e, "%s%s must be seconds 0-3600, not '%s'", where, k->name, v);
            return -EINVAL;
        }
        return 0;
    case K_LISTEN:
        return parse_listen_list(s, v, e, where);
    case K_METRICS_LISTEN: {
        char why[128];
        if (settings_parse_listen(v, &s->metrics_listen, why, sizeof why) < 0 ||
            s->metrics_listen.unix_socket) {
            err_set(e, "%smetrics_listen '%s': %s", where, v,
                    s->metrics_listen.unix_socket ? "give HOST:PORT" : why);
            return -EINVAL;
        }
        s->metrics_on = true;
        return 0;
    }
    }
    return -EINVAL;
}

/* ---------------------------------------------------- plugin sections */

static void section_free(settings_section *sec)
{
    for (size_t i = 0; i < sec->n_kv; i++) {
        free(sec->kv[i].key);
        free(sec->kv[i].value);
    }
    free(sec->kv);
    free(sec->name);
}

static void sections_free(settings_section *secs, size_t n)
{
    for (size_t i = 0; i < n; i++) section_free(&secs[i]);
    free(secs);
}

static settings_section *section_get(settings_section **secs, size_t *n, const char *name)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*secs)[i].name, name) == 0) return &(*secs)[i];
    settings_section *grown = realloc(*secs, (*n + 1) * sizeof **secs);
    if (!grown) return NULL;
    *secs = grown;
    settings_section *sec = &grown[*n];
    memset(sec, 0, sizeof *sec);
    sec->name = strdup(name);
    if (!sec->name) return NULL;
    (*n)++;
    return sec;
}

static int section_set(settings_section *sec, const char *key, const char *value)
{
    for (size_t i = 0; i < sec->n_kv; i++)
        if (strcmp(sec->kv[i].key, key) == 0) return replace_str(&sec->kv[i].value, value);
    settings_kv *grown = realloc(sec->kv, (sec->n_kv + 1) * sizeof *grown);
    if (!grown) return -ENOMEM;
    sec->kv = grown;
    char *k = strdup(key), *v = strdup(value);
    if (!k || !v) {
        free(k);
        free(v);
        return -ENOMEM;
    }
    sec->kv[sec->n_kv].key = k;
    sec->kv[sec->n_kv].value = v;
    sec->n_kv++;
    return 0;
}

const settings_section *settings_section_find(const rh_settings *s, const char *name)
{
    for (size_t i = 0; i < s->n_sections; i++)
        if (strcmp(s->sections[i].name, name) == 0) return &s->sections[i];
    return NULL;
}

/* ------------------------------------------------------ the INI file */

typedef struct ini_ctx {
    rh_settings *s;
    settings_err *e;
    const char *file;
    bool sections_only; /* SIGHUP: only [plugin.*] (and log_level) */
    settings_section *secs;
    size_t n_secs;
    int log_level;
    int line; /* counted by the handler: inih reports only the first error */
} ini_ctx;

static int settings_ini_handler(void *user, const char *section, const char *name, const char *value)
{
    ini_ctx *c = user;
    const char *where = ""; /* load_ini prefixes file:line */
    if (!name) return 1; /* section header without keys (INI_CALL_HANDLER_ON_NEW_SECTION) */
    if (strncmp(section, "plugin.", 7) == 0) {
        const char *pname = section + 7;
        if (!*pname) {
            err_set(c->e, "a plugin section needs a name: [plugin.NAME]");
            return 0;
        }
        settings_section *sec = section_get(&c->secs, &c->n_secs, pname);
        if (!sec || section_set(sec, name, value) < 0) {
            err_set(c->e, "out of memory");
            return 0;
        }
        return 1;
    }
    if (strcmp(section, "rpchost") != 0) {
        err_set(c->e, "unknown section [%s]; use [rpchost] or [plugin.NAME]", section);
        return 0;
    }
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        if (strcmp(keys[i].name, name) != 0) continue;
        if (c->sections_only) {
            if (keys[i].kind == K_LOGLEVEL) {
                int lvl = log_level_parse(value);
                if (lvl < 0) {
                    err_set(c->e, "%slog_level must be error, warn, info or debug, not '%s'",
                            where, value);
                    return 0;
                }
                c->log_level = lvl;
            }
            return 1;
        }
        return apply_key(c->s, &keys[i], value, c->e, where) == 0;
    }
    err_set(c->e, "unknown key '%s' in [rpchost] (see rpchost --help)", name);
    return 0;
}

static int load_ini(ini_ctx *c)
{
    FILE *f = fopen(c->file, "r");
    if (!f) {
        err_set(c->e, "cannot open config file %s: %s", c->file, strerror(errno));
        return -EINVAL;
    }
    int line = ini_parse_file(f, settings_ini_handler, c);
    fclose(f);
    if (line != 0 || c->e->set) {
        if (c->e->set) {
            /* Prefix file:line so the operator finds it. */
            char msg[sizeof c->e->msg];
            memcpy(msg, c->e->msg, sizeof msg);
            snprintf(c->e->msg, sizeof c->e->msg, "%.200s:%d: %.300s", c->file, line, msg);
        } else {
            err_set(c->e, "%s:%d: syntax error (expected [section] or key = value)", c->file, line);
        }
        return -EINVAL;
    }
    return 0;
}

/* ----------------------------------------------------- command line */

static const char usage[] =
    "usage: rpchost --plugins DIR [--listen HOST:PORT]... [--cert F --key F | --plaintext]\n"
    "               [--client-ca F] [--workers N] [--config FILE] [--log-level L]\n"
    "               [--drain-timeout S] [--admin-socket PATH]\n"
    "               [--user NAME | --allow-root] [--unsafe-plugin-dir]\n"
    "               [--metrics-listen HOST:PORT [--metrics-token-file F]]\n"
    "\n"
    "A TLS HTTP/2 gRPC host serving the shared-object plugins of DIR; plugins\n"
    "added, replaced or removed there are loaded, swapped or drained live.\n"
    "\n"
    "  --plugins DIR         plugin directory (*.so; watched for changes)\n"
    "  --listen ADDR         HOST:PORT, [IPv6]:PORT or unix:/path; repeatable\n"
    "                        (default [::]:8888, or $HOST:$PORT)\n"
    "  --cert F, --key F     server certificate chain and key, PEM\n"
    "                        (defaults $CERT_FILE, $KEY_FILE)\n"
    "  --plaintext           serve h2c (prior knowledge) without TLS\n"
    "  --client-ca F         require client certificates signed by F (mTLS)\n"
    "  --client-cert-optional  with --client-ca: verify a certificate a client\n"
    "                        presents, but let clients without one in (tokens)\n"
    "  --workers N           worker threads (default: one per core)\n"
    "  --config FILE         INI file: [rpchost] settings, [plugin.NAME] plugin keys\n"
    "  --log-level L         error, warn, info (default) or debug\n"
    "  --drain-timeout S     seconds running calls get on stop or plugin removal (30)\n"
    "  --admin-socket PATH   also listen on a Unix socket (admin service allowed)\n"
    "  --user NAME           switch to NAME and its groups once listeners are bound\n"
    "                        and keys read\n"
    "  --allow-root          serve as root (refused otherwise; also $RPCHOST_ALLOW_ROOT=1)\n"
    "  --unsafe-plugin-dir   load plugins from paths others may write (development only)\n"
    "  --metrics-listen ADDR serve Prometheus metrics at http://ADDR/metrics\n"
    "  --metrics-token-file F  require the bearer token of file F for a scrape\n"
    "  --help, --version\n"
    "\n"
    "Signals: SIGTERM/SIGINT drain and stop; SIGHUP rescans the plugin directory,\n"
    "reloads TLS certificates and the config's plugin sections.\n";

enum {
    OPT_PLUGINS = 256, OPT_LISTEN, OPT_CERT, OPT_KEY, OPT_PLAINTEXT, OPT_CLIENT_CA, OPT_CLIENT_CERT_OPTIONAL,
    OPT_WORKERS, OPT_CONFIG, OPT_LOG_LEVEL, OPT_DRAIN, OPT_ADMIN_SOCKET, OPT_USER, OPT_ALLOW_ROOT,
    OPT_UNSAFE_PLUGIN_DIR, OPT_METRICS_LISTEN, OPT_METRICS_TOKEN, OPT_HELP, OPT_VERSION
};

static const struct option long_opts[] = {
    {"plugins", required_argument, NULL, OPT_PLUGINS},
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"cert", required_argument, NULL, OPT_CERT},
    {"key", required_argument, NULL, OPT_KEY},
    {"plaintext", no_argument, NULL, OPT_PLAINTEXT},
    {"client-cert-optional", no_argument, NULL, OPT_CLIENT_CERT_OPTIONAL},
    {"client-ca", required_argument, NULL, OPT_CLIENT_CA},
    {"workers", required_argument, NULL, OPT_WORKERS},
    {"config", required_argument, NULL, OPT_CONFIG},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"drain-timeout", required_argument, NULL, OPT_DRAIN},
    {"admin-socket", required_argument, NULL, OPT_ADMIN_SOCKET},
    {"user", required_argument, NULL, OPT_USER},
    {"allow-root", no_argument, NULL, OPT_ALLOW_ROOT},
    {"unsafe-plugin-dir", no_argument, NULL, OPT_UNSAFE_PLUGIN_DIR},
    {"metrics-listen", required_argument, NULL, OPT_METRICS_LISTEN},
    {"metrics-token-file", required_argument, NULL, OPT_METRICS_TOKEN},
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

static void set_defaults(rh_settings *s)
{
    memset(s, 0, sizeof *s);
    strcpy(s->listen[0].host, "::");
    strcpy(s->listen[0].port, "8888");
    s->n_listen = 1;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    s->workers = ncpu > 0 ? (int)(ncpu > 256 ? 256 : ncpu) : 1;
    s->log_level = RH_LOG_INFO;
    s->max_concurrent_streams = 100;
    s->header_list_soft = 8192;
    s->header_list_hard = 16384;
    s->max_continuations = 8;
    s->stream_reset_burst = 1000;
    s->stream_reset_rate = 33;
    s->max_settings = 32;
    s->max_outbound_ack = 1000;
    s->server_reset_budget = 1000;
    s->ping_min_interval_ms = 5000;
    s->ping_max_strikes = 2;
    s->max_connections = 10000;
    s->handshake_timeout_ms = 10000;
    s->idle_timeout_ms = 0;
    s->http1_request_timeout_ms = 10000;
    s->http1_keepalive_timeout_ms = 60000;
    s->stream_window = 1u << 20;
    s->conn_window = 8u << 20;
    s->max_recv_message = 4u << 20;
    s->max_send_message = 4u << 20;
    s->max_send_queue = 64u << 20;
    s->compression = GRPC_CODEC_IDENTITY;
    s->compression_min_bytes = 1024;
    s->compression_level = GRPC_CODEC_LEVEL_DEFAULT;
    s->drain_timeout_ms = 30000;
}

static int apply_env(rh_settings *s, settings_err *e)
{
    const char *host = getenv("HOST"), *port = getenv("PORT");
    if ((host && *host) || (port && *port)) {
        settings_listen *l = &s->listen[0];
        if (host && *host) {
            size_t n = strlen(host);
            if (host[0] == '[' && n > 2 && host[n - 1] == ']') host++, n -= 2;
            if (n >= sizeof l->host) {
                err_set(e, "environment HOST is too long");
                return -EINVAL;
            }
            memcpy(l->host, host, n);
            l->host[n] = '\0';
        }
        if (port && *port && parse_port(port, l->port) < 0) {
            err_set(e, "environment PORT='%s' is not a port (1-65535)", port);
            return -EINVAL;
        }
    }
    const char *cert = getenv("CERT_FILE"), *key = getenv("KEY_FILE");
    if (cert && *cert && replace_str(&s->cert_file, cert) < 0) return -ENOMEM;
    if (key && *key && replace_str(&s->key_file, key) < 0) return -ENOMEM;
    /* Test harnesses and development shells run as root on purpose. */
    const char *root = getenv("RPCHOST_ALLOW_ROOT");
    if (root && strcmp(root, "1") == 0) s->allow_root = true;
    return 0;
}

/* The value of --config (either form), or NULL. Pre-scan: the file is read
 * before the other options so that the command line overrides it. */
static const char *find_config_arg(int argc, char **argv, bool *help, bool *version)
{
    const char *cfg = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) break;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) *help = true;
        else if (strcmp(a, "--version") == 0) *version = true;
        else if (strcmp(a, "--config") == 0 && i + 1 < argc) cfg = argv[++i];
        else if (strncmp(a, "--config=", 9) == 0) cfg = a + 9;
    }
    return cfg;
}

static const key_def *find_key(const char *name)
{
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (strcmp(keys[i].name, name) == 0) return &keys[i];
    return NULL;
}

static int apply_argv(rh_settings *s, int argc, char **argv, settings_err *e)
{
    bool listen_seen = false, cert_seen = false, plaintext_seen = false;
    opterr = 0;
    optind = 1;
    int c, idx;
    while ((c = getopt_long(argc, argv, ":", long_opts, &idx)) != -1) {
        const char *v = optarg;
        char where[64], why[128];
        int rc = 0;
        switch (c) {
        case OPT_PLUGINS: rc = apply_key(s, &keys[0], v, e, "--plugins: "); break;
        case OPT_LISTEN:
            if (!listen_seen) s->n_listen = 0; /* the command line replaces the default */
            listen_seen = true;
            if (s->n_listen == SETTINGS_MAX_LISTEN) {
                err_set(e, "--listen: at most %d addresses", SETTINGS_MAX_LISTEN);
                return -EINVAL;
            }
            if (settings_parse_listen(v, &s->listen[s->n_listen], why, sizeof why) < 0) {
                err_set(e, "--listen '%s': %s", v, why);
                return -EINVAL;
            }
            s->n_listen++;
            break;
        case OPT_CERT: cert_seen = true; rc = replace_str(&s->cert_file, v); break;
        case OPT_KEY: rc = replace_str(&s->key_file, v); break;
        case OPT_PLAINTEXT: plaintext_seen = true; s->plaintext = true; break;
        case OPT_CLIENT_CERT_OPTIONAL: s->client_cert_optional = true; break;
        case OPT_CLIENT_CA: rc = replace_str(&s->client_ca, v); break;
        case OPT_CONFIG: rc = replace_str(&s->config_file, v); break;
        case OPT_ADMIN_SOCKET: rc = replace_str(&s->admin_socket, v); break;
        case OPT_USER: rc = apply_key(s, find_key("user"), v, e, "--user: "); break;
        case OPT_ALLOW_ROOT: s->allow_root = true; break;
        case OPT_UNSAFE_PLUGIN_DIR: s->unsafe_plugin_dir = true; break;
        case OPT_METRICS_TOKEN: rc = replace_str(&s->metrics_token_file, v); break;
        case OPT_METRICS_LISTEN:
            for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
                if (keys[i].kind == K_METRICS_LISTEN)
                    rc = apply_key(s, &keys[i], v, e, "--metrics-listen: ");
            break;
        case OPT_WORKERS:
        case OPT_LOG_LEVEL:
        case OPT_DRAIN: {
            const char *key = c == OPT_WORKERS ? "workers" : c == OPT_LOG_LEVEL ? "log_level"
                                                                                : "drain_timeout";
            snprintf(where, sizeof where, "--%s: ", long_opts[idx].name);
            for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
                if (strcmp(keys[i].name, key) == 0) rc = apply_key(s, &keys[i], v, e, where);
            if (c == OPT_LOG_LEVEL) s->log_level_from_argv = true;
            break;
        }
        case OPT_HELP:
        case OPT_VERSION: break; /* handled by the pre-scan */
        case ':':
            err_set(e, "option '%s' needs a value; see rpchost --help", argv[optind - 1]);
            return -EINVAL;
        default:
            err_set(e, "unknown option '%s'; see rpchost --help", argv[optind - 1]);
            return -EINVAL;
        }
        if (rc < 0) {
            if (rc == -ENOMEM) err_set(e, "out of memory");
            return rc;
        }
    }
    if (optind < argc) {
        err_set(e, "unexpected argument '%s'; see rpchost --help", argv[optind]);
        return -EINVAL;
    }
    if (plaintext_seen && cert_seen) {
        err_set(e, "--plaintext and --cert exclude each other: choose TLS or h2c");
        return -EINVAL;
    }
    return 0;
}

static int validate(rh_settings *s, settings_err *e)
{
    if (!s->plugins_dir) {
        err_set(e, "no plugin directory: pass --plugins DIR (or plugins = DIR in [rpchost])");
        return -EINVAL;
    }
    if (s->plaintext) {
        if (s->client_ca) {
            err_set(e, "--client-ca needs TLS: drop --plaintext or --client-ca");
            return -EINVAL;
        }
        /* Certificates from the environment do not apply to h2c. */
        free(s->cert_file);
        free(s->key_file);
        s->cert_file = s->key_file = NULL;
    } else if (!s->cert_file || !s->key_file) {
        err_set(e, "TLS needs a certificate and a key: pass --cert F --key F "
                   "(or CERT_FILE/KEY_FILE), or --plaintext for h2c");
        return -EINVAL;
    }
    if (s->compression_level < 1) {
        err_set(e, "compression_level must be 1 (fastest) to 9 (smallest), not 0");
        return -EINVAL;
    }
    if (s->header_list_soft > s->header_list_hard) {
        err_set(e, "header_list_soft (%u) must not exceed header_list_hard (%u)",
                s->header_list_soft, s->header_list_hard);
        return -EINVAL;
    }
    if (s->metrics_buckets) {
        double b[MX_MAX_BUCKETS];
        size_t nb;
        char why[128];
        if (mx_parse_buckets(s->metrics_buckets, b, &nb, why, sizeof why) < 0) {
            err_set(e, "metrics_buckets '%.100s': %s", s->metrics_buckets, why);
            return -EINVAL;
        }
    }
    if ((s->metrics_token_file || s->metrics_buckets || s->metrics_tls || s->metrics_cert ||
         s->metrics_key) && !s->metrics_on) {
        err_set(e, "metrics_token_file, metrics_buckets and metrics_tls need metrics_listen "
                   "(--metrics-listen)");
        return -EINVAL;
    }
    if (!s->metrics_cert != !s->metrics_key) {
        err_set(e, "metrics_cert and metrics_key go together");
        return -EINVAL;
    }
    if (s->metrics_cert) s->metrics_tls = true;
    if (s->metrics_tls && !s->metrics_cert && !s->cert_file) {
        err_set(e, "metrics_tls: the host serves h2c and has no certificate; set metrics_cert "
                   "and metrics_key");
        return -EINVAL;
    }
    if (s->metrics_on) {
        for (size_t i = 0; i < s->n_listen; i++)
            if (!s->listen[i].unix_socket && strcmp(s->listen[i].port, s->metrics_listen.port) == 0 &&
                (strcmp(s->listen[i].host, s->metrics_listen.host) == 0 || !s->listen[i].host[0] ||
                 strcmp(s->listen[i].host, "::") == 0 || strcmp(s->listen[i].host, "0.0.0.0") == 0)) {
                err_set(e, "metrics_listen %s:%s is a gRPC listen address; give the metrics "
                           "their own port", s->metrics_listen.host, s->metrics_listen.port);
                return -EINVAL;
            }
    }
    if (s->admin_socket) {
        bool present = false;
        for (size_t i = 0; i < s->n_listen; i++)
            if (s->listen[i].unix_socket && strcmp(s->listen[i].host, s->admin_socket) == 0)
                present = true;
        if (!present) {
            char why[128], spec[300];
            snprintf(spec, sizeof spec, "unix:%s", s->admin_socket);
            if (s->n_listen == SETTINGS_MAX_LISTEN ||
                settings_parse_listen(spec, &s->listen[s->n_listen], why, sizeof why) < 0) {
                err_set(e, "admin socket '%s': %s", s->admin_socket,
                        s->n_listen == SETTINGS_MAX_LISTEN ? "too many listen addresses" : why);
                return -EINVAL;
            }
            s->n_listen++;
        }
    }
    return 0;
}

int settings_load(rh_settings *s, int argc, char **argv)
{
    settings_err e = {0};
    bool help = false, version = false;
    set_defaults(s);
    const char *cfg = find_config_arg(argc, argv, &help, &version);
    if (help) {
        fputs(usage, stdout);
        return 1;
    }
    if (version) {
        printf("rpchost %s (plugin ABI %d.%d)\n", RPCHOST_VERSION, RPCHOST_ABI_MAJOR,
               RPCHOST_ABI_MINOR);
        return 1;
    }
    int rc = apply_env(s, &e);
    if (rc == 0 && cfg) {
        rc = replace_str(&s->config_file, cfg);
        if (rc == 0) {
            ini_ctx c = {.s = s, .e = &e, .file = s->config_file, .log_level = -1};
            rc = load_ini(&c);
            s->sections = c.secs;
            s->n_sections = c.n_secs;
        }
    }
    if (rc == 0) rc = apply_argv(s, argc, argv, &e);
    if (rc == 0) rc = validate(s, &e);
    if (rc < 0) {
        if (!e.set) err_set(&e, "%s", strerror(-rc));
        fprintf(stderr, "rpchost: %s\n", e.msg);
        settings_free(s);
        return 2;
    }
    return 0;
}

int settings_reload_sections(rh_settings *s)
{
    if (!s->config_file) return 0;
    settings_err e = {0};
    ini_ctx c = {.s = s, .e = &e, .file = s->config_file, .sections_only = true, .log_level = -1};
    if (load_ini(&c) < 0) {
        sections_free(c.secs, c.n_secs);
        log_error("config reload: %s; keeping the previous plugin sections", e.msg);
        return -EINVAL;
    }
    sections_free(s->sections, s->n_sections);
    s->sections = c.secs;
    s->n_sections = c.n_secs;
    if (c.log_level >= 0 && !s->log_level_from_argv) {
        s->log_level = c.log_level;
        log_set_level((rh_log_level)c.log_level);
    }
    return 0;
}

void settings_free(rh_settings *s)
{
    free(s->plugins_dir);
    free(s->cert_file);
    free(s->key_file);
    free(s->client_ca);
    free(s->config_file);
    free(s->admin_socket);
    free(s->admin_principals);
    free(s->cors_origins);
    free(s->interceptors);
    free(s->user);
    free(s->metrics_token_file);
    free(s->metrics_buckets);
    free(s->metrics_cert);
    free(s->metrics_key);
    sections_free(s->sections, s->n_sections);
    memset(s, 0, sizeof *s);
}
