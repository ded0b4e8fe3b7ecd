/* SPSC byte ring (see al_ring.h). Positions grow without wrapping (size_t
 * of 64 bits does not overflow in practice); index = pos & (cap - 1). */
#include "al_ring.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int al_ring_init(al_ring *r, size_t cap)
{
    size_t c = 4096;
    while (c < cap)
        c *= 2;
    memset(r, 0, sizeof *r);
    r->buf = malloc(c);
    if (!r->buf)
        return -ENOMEM;
    r->cap = c;
    atomic_init(&r->head, 0);
    atomic_init(&r->tail, 0);
    atomic_init(&r->dropped, 0);
    atomic_init(&r->wake_pending, false);
    return 0;
}

void al_ring_destroy(al_ring *r)
{
    free(r->buf);
    r->buf = NULL;
}

int al_ring_push(al_ring *r, const void *data, size_t len, bool *half_full)
{
    size_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    if (head + len - r->tail_cache > r->cap) {
        r->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
        if (head + len - r->tail_cache > r->cap) {
            atomic_fetch_add_explicit(&r->dropped, 1, memory_order_relaxed);
            *half_full = true;
            return -ENOSPC;
        }
    }
    size_t at = head & (r->cap - 1);
    size_t first = r->cap - at < len ? r->cap - at : len;
    memcpy(r->buf + at, data, first);
    memcpy(r->buf, (const char *)data + first, len - first);
    atomic_store_explicit(&r->head, head + len, memory_order_release);
    if (head + len - r->tail_cache > r->cap / 2) /* stale? look again */
        r->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
    *half_full = head + len - r->tail_cache > r->cap / 2;
    return 0;
}

size_t al_ring_peek(al_ring *r, const char **p1, size_t *n1, const char **p2,
                    size_t *n2)
{
    size_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    size_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    size_t n = head - tail;
    size_t at = tail & (r->cap - 1);
    size_t first = r->cap - at < n ? r->cap - at : n;
    *p1 = r->buf + at;
    *n1 = first;
    *p2 = r->buf;
    *n2 = n - first;
    return n;
}

void al_ring_consume(al_ring *r, size_t n)
{
    size_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    atomic_store_explicit(&r->tail, tail + n, memory_order_release);
}
