#include "core/arena.h"

#include <stdlib.h>
#include <string.h>

struct arena_block {
    arena_block *next;
    size_t size;
    /* data follows, 16-byte aligned */
    _Alignas(16) uint8_t data[];
};

#define ALIGN ARENA_ALIGN
#define MIN_BLOCK 4096

void arena_init(arena *a, void *first, size_t first_size)
{
    uintptr_t p = (uintptr_t)first, q = (p + ALIGN - 1) & ~(uintptr_t)(ALIGN - 1);
    a->first = (uint8_t *)q;
    a->first_size = first_size > q - p ? first_size - (q - p) : 0;
    a->ptr = a->first;
    a->end = a->first + a->first_size;
    a->blocks = NULL;
    a->next_size = MIN_BLOCK;
    a->heap = 0;
    a->limit = 0;
    a->over_limit = false;
}

/* size is already rounded to ALIGN by arena_alloc. */
void *arena_alloc_slow(arena *a, size_t size)
{
    size_t bsize = a->next_size;
    if (bsize < size) bsize = size;
    if (a->limit && (a->heap + bsize > a->limit || bsize > a->limit)) {
        bsize = size; /* the exact size may still fit */
        if (a->heap + bsize > a->limit || bsize > a->limit) {
            a->over_limit = true;
            return NULL;
        }
    }
    arena_block *b = malloc(sizeof *b + bsize);
    if (!b) return NULL;
    b->next = a->blocks;
    b->size = bsize;
    a->blocks = b;
    a->heap += bsize;
    /* Grow geometrically so a call that allocates a lot makes few mallocs;
     * cap the step so one big call does not make the next block huge. */
    if (a->next_size < (1u << 20)) a->next_size *= 2;
    a->ptr = b->data + size;
    a->end = b->data + bsize;
    return b->data;
}

void *arena_calloc(arena *a, size_t size)
{
    void *p = arena_alloc(a, size);
    if (p) memset(p, 0, size);
    return p;
}

char *arena_strndup(arena *a, const char *s, size_t len)
{
    char *p = arena_alloc(a, len + 1);
    if (!p) return NULL;
    memcpy(p, s, len);
    p[len] = 0;
    return p;
}

void arena_reset(arena *a)
{
    arena_block *b = a->blocks;
    while (b) {
        arena_block *next = b->next;
        free(b);
        b = next;
    }
    a->blocks = NULL;
    a->ptr = a->first;
    a->end = a->first + a->first_size;
    a->next_size = MIN_BLOCK;
    a->heap = 0;
    a->over_limit = false;
}

static void *pb_alloc(void *data, size_t size) { return arena_alloc(data, size); }
static void pb_free(void *data, void *ptr)
{
    (void)data;
    (void)ptr;
}

void arena_pb_allocator(arena *a, ProtobufCAllocator *pa)
{
    pa->alloc = pb_alloc;
    pa->free = pb_free;
    pa->allocator_data = a;
}
