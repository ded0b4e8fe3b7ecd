/* The metrics listener: a small, strict HTTP/1.1 server on its own thread
 * (never a worker) answering GET /metrics, on its own address (never the
 * gRPC port), over TLS with metrics_tls. Limits: 8 KiB of request head, 64 connections, 10 s for a
 * request to arrive and its answer to leave; keep-alive; no request
 * bodies. An optional bearer token must match (Authorization: Bearer T). */
#ifndef RPCHOST_HOST_MX_HTTP_H
#define RPCHOST_HOST_MX_HTTP_H

/* What the listener serves with; strings are read during mx_http_start. */
typedef struct mx_http_config {
    const char *host, *port;  /* numeric or a name getaddrinfo resolves */
    const char *token_file;   /* bearer token on its first line, or NULL */
    const char *cert, *key;   /* PEM pair: serve HTTPS; NULL: plain HTTP */
} mx_http_config;

/* Binds and starts the listener thread (errors are logged; -errno). */
int mx_http_start(const mx_http_config *cfg);
void mx_http_stop(void);

#endif
