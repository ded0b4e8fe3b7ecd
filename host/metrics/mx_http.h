/* The metrics listener: a small, strict HTTP/1.1 server on its own thread
 * (never a worker) answering GET /metrics, on its own address (never the
 * gRPC port), over TLS with metrics_tls. Limits: 8 KiB of request head, 64 connections, 10 s for a
 * request to arrive and its answer to leave; keep-alive; no request
 * bodies. An optional bearer token must match (Authorization: Bearer T). */
#ifndef RPCHOST_HOST_MX_HTTP_H
#define RPCHOST_HOST_MX_HTTP_H

#include "config/settings.h"

/* Binds s->metrics_listen (errors are logged; -errno). */
int mx_http_start(const rh_settings *s);
void mx_http_stop(void);

#endif
