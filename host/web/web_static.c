/* The static-file table (web_static.h). A small array scanned linearly:
 * it holds a handful of entries and is consulted only for GET and HEAD. */
#include "web/web_static.h"

#include <errno.h>
#include <string.h>

static web_static_file files[WEB_STATIC_MAX];
static size_t n_files;

int web_static_add(const char *path, const char *content_type, const void *body, size_t len)
{
    if (!path || path[0] != '/' || !content_type) return -EINVAL;
    if (web_static_find(path, strlen(path))) return -EEXIST;
    if (n_files == WEB_STATIC_MAX) return -ENOSPC;
    files[n_files++] = (web_static_file){path, content_type, body, len};
    return 0;
}

const web_static_file *web_static_find(const char *path, size_t len)
{
    for (size_t i = 0; i < n_files; i++)
        if (strlen(files[i].path) == len && memcmp(files[i].path, path, len) == 0) return &files[i];
    return NULL;
}
