#include "transport/h2mem.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* Every block carries its size and origin in front (16 bytes keeps the
 * caller's alignment). */
typedef struct h2mem_hdr {
    size_t size;   /* usable bytes */
    size_t mapped; /* 1 = mmap'ed, the mapping is size + header */
} h2mem_hdr;

static void *mem_malloc(size_t size, void *ud)
{
    (void)ud;
    if (size > SIZE_MAX - sizeof(h2mem_hdr)) return NULL;
    h2mem_hdr *h;
    if (size >= H2MEM_MMAP_MIN) {
        void *p = mmap(NULL, size + sizeof *h, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) return NULL;
        h = p;
        h->mapped = 1;
    } else {
        h = malloc(size + sizeof *h);
        if (!h) return NULL;
        h->mapped = 0;
    }
    h->size = size;
    return h + 1;
}

static void mem_free(void *ptr, void *ud)
{
    (void)ud;
    if (!ptr) return;
    h2mem_hdr *h = (h2mem_hdr *)ptr - 1;
    if (h->mapped)
        munmap(h, h->size + sizeof *h);
    else
        free(h);
}

static void *mem_calloc(size_t n, size_t size, void *ud)
{
    if (size && n > SIZE_MAX / size) return NULL;
    void *p = mem_malloc(n * size, ud);
    if (p && n * size < H2MEM_MMAP_MIN) memset(p, 0, n * size); /* mappings are zeroed */
    return p;
}

static void *mem_realloc(void *ptr, size_t size, void *ud)
{
    if (!ptr) return mem_malloc(size, ud);
    if (size == 0) {
        mem_free(ptr, ud);
        return NULL;
    }
    h2mem_hdr *h = (h2mem_hdr *)ptr - 1;
    if (!h->mapped && size < H2MEM_MMAP_MIN) {
        h2mem_hdr *n = realloc(h, size + sizeof *h);
        if (!n) return NULL;
        n->size = size;
        return n + 1;
    }
    void *p = mem_malloc(size, ud);
    if (!p) return NULL;
    memcpy(p, ptr, h->size < size ? h->size : size);
    mem_free(ptr, ud);
    return p;
}

static nghttp2_mem the_mem = {NULL, mem_malloc, mem_free, mem_calloc, mem_realloc};

nghttp2_mem *h2mem(void) { return &the_mem; }
