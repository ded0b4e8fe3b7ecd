/* The host's settings: defaults, then environment (HOST, PORT, CERT_FILE,
 * KEY_FILE), then the INI config file, then the command line. Parsed once
 * at start (and re-read on SIGHUP for plugin sections and TLS files).
 * Owner: settings.c. Every string is owned by the rh_settings. */
#ifndef RPCHOST_HOST_SETTINGS_H
#define RPCHOST_HOST_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SETTINGS_MAX_LISTEN 8

typedef struct settings_listen {
    char host[256]; /* "::", "127.0.0.1", "localhost"; brackets stripped;
                     * for a Unix socket: the socket path */
    char port[16];  /* "" for a Unix socket */
    bool unix_socket; /* "unix:/path" form: peers are "unix:/path" */
} settings_listen;

typedef struct settings_kv {
    char *key;
    char *value;
} settings_kv;

/* One [plugin.NAME] section of the config file. */
typedef struct settings_section {
    char *name;
    settings_kv *kv;
    size_t n_kv;
} settings_section;

typedef struct rh_settings {
    char *plugins_dir;
    settings_listen listen[SETTINGS_MAX_LISTEN];
    size_t n_listen;           /* default one: [::]:8888 */
    char *cert_file;           /* TLS certificate chain (PEM) */
    char *key_file;            /* TLS private key (PEM) */
    char *client_ca;           /* verify client certificates (mTLS) if set */
    bool client_cert_optional; /* with client_ca: a client may present none */
    bool plaintext;            /* h2c with prior knowledge, no TLS */
    int workers;               /* default: number of online CPUs */
    char *config_file;
    int log_level;             /* rh_log_level */
    char *admin_socket;        /* Unix socket path for the admin service, or NULL;
                                * settings_load also appends it to listen[] as
                                * a unix_socket entry, so the transport only
                                * has to serve listen[] */

    /* HTTP/2 limits (safe defaults; all configurable in [rpchost]) */
    uint32_t max_concurrent_streams;   /* 100 */
    uint32_t header_list_soft;         /* 8192: over it, the stream is reset */
    uint32_t header_list_hard;         /* 16384: over it, the connection ends */
    uint32_t max_continuations;        /* 8 */
    uint32_t stream_reset_burst;       /* 1000 */
    uint32_t stream_reset_rate;        /* 33 per second */
    uint32_t max_settings;             /* 32 */
    uint32_t max_outbound_ack;         /* 1000 */
    uint32_t server_reset_budget;      /* resets the server issues per minute per conn: 1000 */
    uint32_t ping_min_interval_ms;     /* pings closer than this are strikes: 5000? default 300000 w/o calls */
    uint32_t ping_max_strikes;         /* 2: then GOAWAY ENHANCE_YOUR_CALM */
    uint32_t max_connections;          /* per worker: 10000 */
    uint32_t handshake_timeout_ms;     /* 10000 */
    uint32_t idle_timeout_ms;          /* 0 = none */
    uint32_t stream_window;            /* 1 MiB: HTTP/2 receive window per stream,
                                        * the most a paused call holds */
    uint32_t conn_window;              /* 8 MiB: receive window per connection;
                                        * paused calls of one connection hold at
                                        * most twice this (docs/transport.md) */

    /* gRPC */
    size_t max_recv_message;           /* 4 MiB */
    size_t max_send_message;           /* 4 MiB */
    size_t max_send_queue;             /* 64 MiB: response bytes waiting on one
                                        * connection (client not reading);
                                        * past it the sending call ends
                                        * RESOURCE_EXHAUSTED */
    uint32_t drain_timeout_ms;         /* 30000: graceful stop and plugin removal */

    /* HTTP/1.1 and the web protocols (docs/web.md) */
    uint32_t http1_request_timeout_ms; /* 10000: first byte of a request to its end */
    uint32_t http1_keepalive_timeout_ms; /* 60000: idle between requests */
    char *cors_origins;                /* comma-separated origins, or "*"; NULL = none */
    /* Response compression (docs/transport.md, "Compression"): the
     * grpc_codec_algo used for responses when the client accepts it;
     * identity (0) = off, the default. Messages smaller than min_bytes go
     * uncompressed. Requests are inflated whatever this says. */
    int compression;                   /* grpc_codec_algo */
    size_t compression_min_bytes;      /* 1024 */
    uint32_t compression_level;        /* 1-9, 6 */

    /* Interceptor order, e.g. "authlog.auth, authlog.log"; NULL = load order */
    char *interceptors;

    settings_section *sections;
    size_t n_sections;

    /* Principals (set by an interceptor) allowed to use the admin service,
     * comma-separated; NULL = none (only Unix-socket peers). */
    char *admin_principals;
    /* Metrics (docs/metrics.md): off unless metrics_listen is set. */
    bool metrics_on;
    settings_listen metrics_listen;  /* HOST:PORT of the scrape listener */
    char *metrics_token_file;        /* bearer token for the scrape, or NULL */
    char *metrics_buckets;           /* grpc_server_handling_seconds bounds, or NULL */
    bool metrics_tls;                /* scrape over TLS (HTTPS) */
    char *metrics_cert, *metrics_key; /* its certificate; NULL: the host's */

    /* Whether log_level came from the command line (SIGHUP keeps it). */
    bool log_level_from_argv;
    /* Least privilege (docs/deploy-debian.md). */
    char *user;                /* switch to this user after binding, or NULL */
    bool allow_root;           /* serve as root (refused unless set) */
    bool unsafe_plugin_dir;    /* skip the plugin trust checks (development) */
} rh_settings;

/* Fills defaults, environment, config file and argv. On a bad option or
 * file prints one line to stderr and returns 2; --help / --version print
 * and return 1 (caller exits 0); success returns 0. */
int settings_load(rh_settings *s, int argc, char **argv);
void settings_free(rh_settings *s);
/* SIGHUP: re-reads the config file's [plugin.*] sections (and log_level
 * unless given on the command line) into s. On error logs one line, keeps
 * the old sections and returns a negative code. */
int settings_reload_sections(rh_settings *s);
/* Parses one listen address: "HOST:PORT", "[IPv6]:PORT", ":PORT" or
 * "unix:/path". On error writes the reason to why and returns -EINVAL. */
int settings_parse_listen(const char *spec, settings_listen *out, char *why, size_t whylen);
/* The section for a plugin name, or NULL. */
const settings_section *settings_section_find(const rh_settings *s, const char *name);
/* The process-wide settings, set once by main before any worker starts. */
const rh_settings *settings_get(void);
void settings_set(rh_settings *s);

#endif
