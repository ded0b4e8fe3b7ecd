/* A bump allocator freed in one go: the per-call arena of the plugin ABI
 * and the per-message arena requests are decoded into.
 *
 * The first block is storage the owner provides (inside the call object,
 * so a call that fits in it never reaches malloc); later blocks are
 * malloc'd and released by arena_reset. Allocations are 16-byte aligned.
 * Not thread-safe by itself: the call wraps the user-visible arena in a
 * spinlock because plugins may allocate from any thread. */
#ifndef RPCHOST_HOST_ARENA_H
#define RPCHOST_HOST_ARENA_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct arena_block arena_block;

typedef struct arena {
    uint8_t *ptr;         /* next free byte of the current block */
    uint8_t *end;         /* end of the current block */
    arena_block *blocks;  /* malloc'd blocks, newest first */
    uint8_t *first;       /* the owner's storage */
    size_t first_size;
    size_t next_size;     /* size of the next malloc'd block */
    size_t heap;          /* bytes of malloc'd blocks */
    size_t limit;         /* most heap bytes allowed; 0 = no limit */
    bool over_limit;      /* an allocation failed because of limit */
} arena;

void arena_init(arena *a, void *first, size_t first_size);
#define ARENA_ALIGN 16

/* The block-full case of arena_alloc (a new block from malloc). */
void *arena_alloc_slow(arena *a, size_t size);

/* NULL when malloc fails or a new block would take heap past limit
 * (over_limit then says so). Inline: a call makes a dozen or more of
 * these (metadata, status, nv arrays), almost all a pointer bump. */
static inline void *arena_alloc(arena *a, size_t size)
{
    size = (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (size == 0) size = ARENA_ALIGN;
    if ((size_t)(a->end - a->ptr) >= size) {
        void *p = a->ptr;
        a->ptr += size;
        return p;
    }
    return arena_alloc_slow(a, size);
}
void *arena_calloc(arena *a, size_t size);
char *arena_strndup(arena *a, const char *s, size_t len);
/* Frees every malloc'd block; the arena is empty again (limit stays). */
void arena_reset(arena *a);
/* A protobuf-c allocator over the arena (free does nothing). */
void arena_pb_allocator(arena *a, ProtobufCAllocator *pa);

#endif
