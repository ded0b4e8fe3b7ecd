/* A growable byte buffer with a read offset: output queues of calls and
 * connections. Ownership: the struct owns p (malloc). */
#ifndef RPCHOST_HOST_BUF_H
#define RPCHOST_HOST_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct buf {
    uint8_t *p;
    size_t off; /* first unread byte */
    size_t len; /* end of data */
    size_t cap;
} buf;

static inline size_t buf_avail(const buf *b) { return b->len - b->off; }

/* Makes room for n more bytes at the end (compacting first). 0 or -ENOMEM. */
int buf_reserve(buf *b, size_t n);
int buf_append(buf *b, const void *data, size_t n);
/* Drops n bytes from the front (n <= buf_avail). */
void buf_consume(buf *b, size_t n);
/* Empties the buffer; frees its storage if it is larger than keep bytes. */
void buf_clear(buf *b, size_t keep);

#endif
