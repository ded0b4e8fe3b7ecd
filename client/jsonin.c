/* Splitting a byte stream into top-level JSON objects (see jsonin.h). */
#include "jsonin.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define JSONIN_READ 65536
#define JSONIN_MAX_OBJECT (64u << 20) /* one request larger than this is refused */

static void init(jsonin *j, int fd, const char *name)
{
    memset(j, 0, sizeof(*j));
    j->fd = fd;
    j->name = name;
    j->saved_flags = -1;
}

int jsonin_init_text(jsonin *j, const char *text, size_t len, const char *name)
{
    init(j, -1, name);
    j->buf = malloc(len + 1);
    if (!j->buf)
        return -ENOMEM;
    memcpy(j->buf, text, len);
    j->len = len;
    j->cap = len + 1;
    j->eof = true;
    return 0;
}

int jsonin_init_fd(jsonin *j, int fd, const char *name)
{
    init(j, fd, name);
    struct stat st;
    if (fstat(fd, &st) == 0 && !S_ISREG(st.st_mode)) {
        int fl = fcntl(fd, F_GETFL);
        if (fl >= 0 && !(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0)
            j->saved_flags = fl;
    }
    return 0;
}

void jsonin_free(jsonin *j)
{
    if (j->saved_flags >= 0)
        fcntl(j->fd, F_SETFL, j->saved_flags);
    j->saved_flags = -1;
    free(j->buf);
    j->buf = NULL;
}

int jsonin_fill(jsonin *j)
{
    if (j->eof)
        return 0;
    /* Drop what was returned already, keeping the object in progress. */
    size_t keep_from = j->depth > 0 ? j->start : j->pos;
    if (keep_from > 0) {
        memmove(j->buf, j->buf + keep_from, j->len - keep_from);
        j->len -= keep_from;
        j->pos -= keep_from;
        j->start -= keep_from < j->start ? keep_from : j->start;
        j->consumed += keep_from;
    }
    if (j->cap - j->len < JSONIN_READ) {
        size_t cap = j->cap ? j->cap * 2 : JSONIN_READ * 2;
        while (cap - j->len < JSONIN_READ)
            cap *= 2;
        char *p = realloc(j->buf, cap);
        if (!p)
            return -ENOMEM;
        j->buf = p;
        j->cap = cap;
    }
    ssize_t n = read(j->fd, j->buf + j->len, j->cap - j->len - 1);
    if (n < 0)
        return errno == EAGAIN || errno == EINTR ? -EAGAIN : -errno;
    if (n == 0) {
        j->eof = true;
        return 0;
    }
    j->len += (size_t)n;
    return (int)n;
}

int jsonin_next(jsonin *j, const char **text, size_t *len, char *err, size_t errlen)
{
    while (j->pos < j->len) {
        char ch = j->buf[j->pos];
        if (j->depth == 0) {
            if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == ',') {
                j->pos++;
                continue;
            }
            if (ch != '{') {
                snprintf(err, errlen, "request data (%s), message %zu at byte %zu: expected a "
                         "JSON object '{', got '%c'", j->name, j->count + 1,
                         j->consumed + j->pos, ch >= 0x20 && ch < 0x7f ? ch : '?');
                return -EINVAL;
            }
            j->start = j->pos;
            j->depth = 1;
            j->pos++;
            continue;
        }
        j->pos++;
        if (j->in_str) {
            if (j->esc)
                j->esc = false;
            else if (ch == '\\')
                j->esc = true;
            else if (ch == '"')
                j->in_str = false;
            continue;
        }
        if (ch == '"')
            j->in_str = true;
        else if (ch == '{' || ch == '[')
            j->depth++;
        else if (ch == '}' || ch == ']') {
            if (--j->depth == 0) {
                *text = j->buf + j->start;
                *len = j->pos - j->start;
                j->count++;
                return 1;
            }
        }
    }
    if (j->depth > 0 && j->pos - j->start > JSONIN_MAX_OBJECT) {
        snprintf(err, errlen, "request data (%s): message %zu is larger than %u MiB",
                 j->name, j->count + 1, JSONIN_MAX_OBJECT >> 20);
        return -EINVAL;
    }
    if (j->eof && j->depth > 0) {
        snprintf(err, errlen, "request data (%s) ended inside message %zu (unbalanced braces "
                 "or an unterminated string)", j->name, j->count + 1);
        return -EINVAL;
    }
    return 0;
}
