/* Flow-control bookkeeping: see flow.h. */
#include "transport/flow.h"

/* Held bytes over the budget keep their connection window. */
static size_t owed_for(const rx_hold *h)
{
    return h->held > h->budget ? h->held - h->budget : 0;
}

size_t rx_hold_add(rx_hold *h, size_t n)
{
    h->held += n;
    size_t owed = owed_for(h);
    size_t newly_owed = owed - h->owed; /* <= n */
    h->owed = owed;
    return n - newly_owed;
}

size_t rx_hold_release(rx_hold *h, size_t n)
{
    if (n > h->held) n = h->held;
    h->held -= n;
    /* The bytes leaving count as returned ones; as the hold shrinks under
     * the budget, withheld bytes become returnable. */
    size_t owed = owed_for(h);
    size_t give = h->owed > owed ? h->owed - owed : 0;
    h->owed = owed;
    return give;
}

void flow_waiters_push(flow_waiters *l, flow_waiter *w)
{
    w->next = NULL;
    if (l->tail) l->tail->next = w;
    else l->head = w;
    l->tail = w;
    if (w->low_water > l->max_low) l->max_low = w->low_water;
}

flow_waiter *flow_waiters_take_due(flow_waiters *l, size_t queued, bool done)
{
    flow_waiter *due = NULL, **due_tail = &due;
    flow_waiter **pp = &l->head;
    l->tail = NULL;
    l->max_low = 0;
    while (*pp) {
        flow_waiter *w = *pp;
        if (done || queued <= w->low_water) {
            *pp = w->next;
            w->next = NULL;
            *due_tail = w;
            due_tail = &w->next;
            continue;
        }
        if (w->low_water > l->max_low) l->max_low = w->low_water;
        l->tail = w;
        pp = &w->next;
    }
    return due;
}
