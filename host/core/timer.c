#include "core/timer.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void timer_heap_free(timer_heap *h)
{
    free(h->v);
    h->v = NULL;
    h->n = h->cap = 0;
}

static void place(timer_heap *h, size_t i, rh_timer *t)
{
    h->v[i] = t;
    t->idx = i + 1;
}

static void sift_up(timer_heap *h, size_t i)
{
    rh_timer *t = h->v[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (h->v[parent]->when <= t->when) break;
        place(h, i, h->v[parent]);
        i = parent;
    }
    place(h, i, t);
}

static void sift_down(timer_heap *h, size_t i)
{
    rh_timer *t = h->v[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && h->v[c + 1]->when < h->v[c]->when) c++;
        if (t->when <= h->v[c]->when) break;
        place(h, i, h->v[c]);
        i = c;
    }
    place(h, i, t);
}

void timer_cancel(timer_heap *h, rh_timer *t)
{
    if (!t->idx) return;
    size_t i = t->idx - 1;
    t->idx = 0;
    h->n--;
    if (i == h->n) return;
    rh_timer *moved = h->v[h->n];
    place(h, i, moved);
    sift_down(h, i);
    sift_up(h, moved->idx - 1);
}

int timer_arm(timer_heap *h, rh_timer *t, int64_t when, rh_timer_cb cb)
{
    timer_cancel(h, t);
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        rh_timer **v = realloc(h->v, cap * sizeof *v);
        if (!v) return -ENOMEM;
        h->v = v;
        h->cap = cap;
    }
    t->when = when;
    t->cb = cb;
    place(h, h->n++, t);
    sift_up(h, h->n - 1);
    return 0;
}

int64_t timer_next(const timer_heap *h) { return h->n ? h->v[0]->when : -1; }

void timer_run(timer_heap *h, int64_t now)
{
    while (h->n && h->v[0]->when <= now) {
        rh_timer *t = h->v[0];
        timer_cancel(h, t);
        t->cb(t);
    }
}
