/* Static files the host serves itself on every listener, over HTTP/1.1
 * and HTTP/2: exact paths answered to GET and HEAD before the gateway's
 * rules (for a browser console shipped with the host, say).
 *
 * Registration happens at start-up, before the workers start (the table is
 * then read without locks from every worker). The body is not copied: it
 * must live for the life of the process (static data, or memory never
 * freed). */
#ifndef RPCHOST_HOST_WEB_WEB_STATIC_H
#define RPCHOST_HOST_WEB_WEB_STATIC_H

#include <stddef.h>
#include <stdint.h>

#define WEB_STATIC_MAX 64

typedef struct web_static_file {
    const char *path;         /* "/console/", "/console/app.js" */
    const char *content_type; /* "text/html; charset=utf-8" */
    const uint8_t *body;
    size_t len;
} web_static_file;

/* 0, -EINVAL (path not starting with '/'), -EEXIST, -ENOSPC. */
int web_static_add(const char *path, const char *content_type, const void *body, size_t len);
/* The file at exactly this path, or NULL. */
const web_static_file *web_static_find(const char *path, size_t len);

#endif
