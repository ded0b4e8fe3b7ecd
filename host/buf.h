/* A growable byte buffer with a read offset: output queues of calls and
 * connections. Ownership: the struct owns p (malloc). */
#ifndef RPCHOST_HOST_BUF_H
#define RPCHOST_HOST_BUF_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct buf {
    uint8_t *p;
    size_t off; /* first unread byte */
    size_t len; /* end of data */
    size_t cap;
} buf;

static inline size_t buf_avail(const buf *b) { return b->len - b->off; }

/* Makes room for n more bytes at the end (compacting first). */
static inline int buf_reserve(buf *b, size_t n)
{
    if (b->off && b->off == b->len) b->off = b->len = 0;
    if (b->len + n <= b->cap) return 0;
    if (b->off) {
        memmove(b->p, b->p + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
        if (b->len + n <= b->cap) return 0;
    }
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + n) cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p) return -ENOMEM;
    b->p = p;
    b->cap = cap;
    return 0;
}

static inline int buf_append(buf *b, const void *data, size_t n)
{
    int rv = buf_reserve(b, n);
    if (rv < 0) return rv;
    memcpy(b->p + b->len, data, n);
    b->len += n;
    return 0;
}

static inline void buf_consume(buf *b, size_t n)
{
    b->off += n;
    if (b->off == b->len) b->off = b->len = 0;
}

/* Empties the buffer; frees it if it grew past keep bytes. */
static inline void buf_clear(buf *b, size_t keep)
{
    b->off = b->len = 0;
    if (b->cap > keep) {
        free(b->p);
        b->p = NULL;
        b->cap = 0;
    }
}

#endif
