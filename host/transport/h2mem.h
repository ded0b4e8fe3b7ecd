/* The allocator nghttp2 sessions use: malloc, except for blocks of
 * H2MEM_MMAP_MIN bytes or more (each session's 16 KiB frame buffer), which
 * are mapped from the kernel so that the pages an idle connection never
 * writes are never resident. Cuts the RSS of an idle connection by about
 * 12 KiB at the cost of an mmap/munmap pair per connection. */
#ifndef RPCHOST_HOST_H2MEM_H
#define RPCHOST_HOST_H2MEM_H

#include <nghttp2/nghttp2.h>

#define H2MEM_MMAP_MIN (12 * 1024)

nghttp2_mem *h2mem(void);

#endif
