/* Flow-control bookkeeping of the data plane (docs/transport.md,
 * "Backpressure"): pure arithmetic and lists, no I/O, no nghttp2, so it
 * is unit-tested on its own (tests/unit/flow).
 *
 * rx_hold: the request bytes a connection holds for paused calls
 * (pause_reading). Their stream-level window is never returned while they
 * are held: one paused stream holds at most its stream window. Their
 * connection-level window is returned at once while the connection holds
 * at most `budget` such bytes, so one paused stream does not block the
 * other streams of the connection; past the budget it is withheld too.
 * A connection therefore holds at most budget + its connection window.
 *
 * flow_waiters: the notify_writable callbacks pending on one call, each
 * with its low-water mark. */
#ifndef RPCHOST_HOST_FLOW_H
#define RPCHOST_HOST_FLOW_H

#include <stdbool.h>
#include <stddef.h>

typedef struct rx_hold {
    size_t held;   /* bytes held for paused calls */
    size_t owed;   /* of those, bytes whose connection window was withheld */
    size_t budget; /* held bytes whose connection window may be returned */
} rx_hold;

/* n more bytes are held. Returns the bytes of connection window to return
 * now (nghttp2_session_consume_connection). */
size_t rx_hold_add(rx_hold *h, size_t n);
/* n held bytes left the hold (delivered or dropped; their stream window is
 * the caller's business). Returns the bytes of connection window to
 * return now. */
size_t rx_hold_release(rx_hold *h, size_t n);

struct rh_call;

typedef struct flow_waiter {
    struct flow_waiter *next;
    size_t low_water;
    void (*cb)(struct rh_call *call, void *arg);
    void *arg;
} flow_waiter;

typedef struct flow_waiters {
    flow_waiter *head, *tail; /* in registration order */
    size_t max_low;           /* largest low_water pending: due if queued <= it */
} flow_waiters;

void flow_waiters_push(flow_waiters *l, flow_waiter *w);
/* Whether any waiter is due with `queued` bytes queued (all are when done). */
static inline bool flow_waiters_due(const flow_waiters *l, size_t queued, bool done)
{
    return l->head && (done || queued <= l->max_low);
}
/* Unlinks and returns the due waiters, in registration order (NULL if
 * none); the others stay, max_low is recomputed. */
flow_waiter *flow_waiters_take_due(flow_waiters *l, size_t queued, bool done);

#endif
