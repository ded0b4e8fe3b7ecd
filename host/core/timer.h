/* Per-worker timers: a binary min-heap of intrusive entries keyed by an
 * absolute CLOCK_MONOTONIC time in ns. Deadlines, call_later, handshake
 * timeouts and the shutdown stages all use it. One heap per worker, used
 * only by that worker's thread: no locks. */
#ifndef RPCHOST_HOST_TIMER_H
#define RPCHOST_HOST_TIMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rh_timer rh_timer;
typedef void (*rh_timer_cb)(rh_timer *t);

struct rh_timer {
    int64_t when;
    size_t idx; /* position in the heap + 1; 0 = not armed */
    rh_timer_cb cb;
};

typedef struct timer_heap {
    rh_timer **v;
    size_t n, cap;
} timer_heap;

int64_t now_ns(void);

void timer_heap_free(timer_heap *h);
static inline bool timer_armed(const rh_timer *t) { return t->idx != 0; }
/* Arms (or re-arms) t to fire at `when`. 0 or -ENOMEM. */
int timer_arm(timer_heap *h, rh_timer *t, int64_t when, rh_timer_cb cb);
void timer_cancel(timer_heap *h, rh_timer *t);
/* Time of the earliest timer, or -1 if none. */
int64_t timer_next(const timer_heap *h);
/* Fires every timer due at `now` (a callback may arm or cancel timers). */
void timer_run(timer_heap *h, int64_t now);

#endif
