/* The console's files (console.h): the generated console_files.h holds
 * them as byte arrays (cmake/rpchost_embed_files.cmake); each is served at
 * /console/NAME, and index.html also at /console/ and /console. */
#include "console/console.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "web/web.h"

typedef struct embedded_file {
    const char *name;
    const uint8_t *data;
    size_t len;
} embedded_file;

#include "console_files.h"

#define CONSOLE_PREFIX "/console/"
#define CONSOLE_FILES (sizeof console_files / sizeof console_files[0])

/* Paths of the files: static storage, as web_static_add keeps pointers. */
static char paths[CONSOLE_FILES][64];

static const char *content_type(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (dot && strcmp(dot, ".html") == 0) return "text/html; charset=utf-8";
    if (dot && strcmp(dot, ".css") == 0) return "text/css; charset=utf-8";
    if (dot && strcmp(dot, ".js") == 0) return "text/javascript; charset=utf-8";
    if (dot && strcmp(dot, ".png") == 0) return "image/png";
    if (dot && strcmp(dot, ".svg") == 0) return "image/svg+xml";
    return "application/octet-stream";
}

int console_init(void)
{
    static bool done; /* the table outlives a server restart in one process */
    if (done) return 0;
    done = true;
    for (size_t i = 0; i < CONSOLE_FILES; i++) {
        const embedded_file *f = &console_files[i];
        snprintf(paths[i], sizeof paths[i], CONSOLE_PREFIX "%s", f->name);
        const char *type = content_type(f->name);
        int rc = web_static_add(paths[i], type, f->data, f->len);
        if (rc == 0 && strcmp(f->name, "index.html") == 0) {
            rc = web_static_add(CONSOLE_PREFIX, type, f->data, f->len);
            if (rc == 0) rc = web_static_add("/console", type, f->data, f->len);
        }
        if (rc < 0) return rc;
    }
    return 0;
}
