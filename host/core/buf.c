#include "core/buf.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int buf_reserve(buf *b, size_t n)
{
    size_t used = b->len - b->off;
    if (used == 0) b->off = b->len = 0;
    if (n <= b->cap - b->len) return 0;
    if (b->off) {
        /* Compact only when the end is full: the data moves to the front. */
        memmove(b->p, b->p + b->off, used);
        b->off = 0;
        b->len = used;
        if (n <= b->cap - used) return 0;
    }
    /* The checks above are written so that no sum wraps; past half the
     * address space the doubling below would wrap cap to 0 and spin. */
    if (n > SIZE_MAX / 2 - used) return -ENOMEM;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < used + n) cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p) return -ENOMEM;
    b->p = p;
    b->cap = cap;
    return 0;
}

int buf_append(buf *b, const void *data, size_t n)
{
    int rv = buf_reserve(b, n);
    if (rv < 0) return rv;
    if (n) memcpy(b->p + b->len, data, n);
    b->len += n;
    return 0;
}

void buf_consume(buf *b, size_t n)
{
    b->off += n;
    if (b->off >= b->len) b->off = b->len = 0;
}

void buf_clear(buf *b, size_t keep)
{
    b->off = b->len = 0;
    if (b->cap > keep) {
        free(b->p);
        b->p = NULL;
        b->cap = 0;
    }
}
