/* Log-linear latency histogram (see hist.h).
 * Bucket index: values below 2*HIST_SUB map to themselves; above, a value
 * with its top bit at position m is shifted right by m-6 to a mantissa in
 * [64, 128) and lands in row m-5, column mantissa-64. */
#include "hist.h"

#include <string.h>

void hist_init(hist *h)
{
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

static unsigned index_of(uint64_t v)
{
    if (v < 2 * HIST_SUB)
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = msb - 6;
    unsigned idx = (shift + 1) * HIST_SUB + (unsigned)((v >> shift) - HIST_SUB);
    return idx < HIST_BUCKETS ? idx : HIST_BUCKETS - 1;
}

static uint64_t lower_of(unsigned idx)
{
    if (idx < 2 * HIST_SUB)
        return idx;
    unsigned shift = idx / HIST_SUB - 1;
    return ((uint64_t)(idx % HIST_SUB) + HIST_SUB) << shift;
}

static uint64_t width_of(unsigned idx)
{
    return idx < 2 * HIST_SUB ? 1 : (uint64_t)1 << (idx / HIST_SUB - 1);
}

void hist_add(hist *h, uint64_t v)
{
    h->b[index_of(v)]++;
    h->count++;
    h->sum += v;
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
}

void hist_merge(hist *into, const hist *from)
{
    for (unsigned i = 0; i < HIST_BUCKETS; i++)
        into->b[i] += from->b[i];
    into->count += from->count;
    into->sum += from->sum;
    if (from->min < into->min)
        into->min = from->min;
    if (from->max > into->max)
        into->max = from->max;
}

uint64_t hist_quantile(const hist *h, double q)
{
    if (h->count == 0)
        return 0;
    uint64_t rank = (uint64_t)(q * (double)h->count + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > h->count)
        rank = h->count;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank) {
            uint64_t v = lower_of(i) + width_of(i) / 2;
            return v < h->min ? h->min : v > h->max ? h->max : v;
        }
    }
    return h->max;
}

uint64_t hist_count_le(const hist *h, uint64_t v)
{
    uint64_t n = 0;
    unsigned last = index_of(v);
    for (unsigned i = 0; i <= last; i++)
        n += h->b[i];
    return n;
}
