/* Latency histogram for rpcall bench: log-linear buckets (64 per power of
 * two, so every value is kept within 1.6%), fixed size, no allocation per
 * sample, mergeable across threads. Values are nanoseconds. */
#ifndef RPCALL_HIST_H
#define RPCALL_HIST_H

#include <stdint.h>

#define HIST_SUB 64
#define HIST_BUCKETS (HIST_SUB * 42) /* values up to 2^47 ns (39 hours) */

typedef struct hist {
    uint64_t count;
    uint64_t sum;
    uint64_t min, max;
    uint64_t b[HIST_BUCKETS];
} hist;

void hist_init(hist *h);
void hist_add(hist *h, uint64_t v);
void hist_merge(hist *into, const hist *from);
/* The value at quantile q (0..1), as the bucket's midpoint, clamped to
 * [min, max]. 0 when empty. */
uint64_t hist_quantile(const hist *h, double q);
/* Samples <= v (bucket resolution). */
uint64_t hist_count_le(const hist *h, uint64_t v);

#endif
