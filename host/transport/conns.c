/* The connections of one worker: the lists its loop walks once per
 * iteration (input left over from a spent read budget, output to
 * produce), the connections closed this iteration and freed at its end,
 * and the idle scan of the 1 s tick. The event layer calls in through
 * conn_worker_hooks (event/worker.h, worker_hooks). Worker thread only. */
#include "transport/conn.h"
#include "transport/http_req.h"
#include "metrics/metrics.h"

#include <stdlib.h>

static __thread conn *tls_dead; /* closed this iteration */

void conns_mark_dirty(worker *w, conn *c)
{
    c->dirty = true;
    c->next_dirty = w->dirty;
    w->dirty = c;
}

void conns_mark_readable(worker *w, conn *c)
{
    if (c->in_readable) return;
    c->in_readable = true;
    c->next_readable = w->readable;
    w->readable = c;
}

void conns_closed(worker *w, conn *c)
{
    if (c->prev) c->prev->next = c->next;
    else w->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    w->n_conns--;
    /* Freed at the end of the iteration: lists may still point to it. */
    c->prev = NULL;
    c->next = tls_dead;
    tls_dead = c;
}

/* Frees the connections closed so far, except those still on this
 * iteration's readable or dirty list (those lists drop closed connections
 * when they are next walked; the free then happens one iteration later). */
static void free_dead(bool force)
{
    conn **pp = &tls_dead;
    while (*pp) {
        conn *c = *pp;
        if (!force && (c->in_readable || c->dirty)) {
            pp = &c->next;
            continue;
        }
        *pp = c->next;
        peer_info_release(c->peer);
        free(c);
    }
}

void conns_flush_dirty(worker *w)
{
    while (w->dirty) {
        conn *c = w->dirty;
        w->dirty = c->next_dirty;
        c->dirty = false;
        conn_flush(c);
    }
}

static void run_readable(worker *w)
{
    conn *list = w->readable;
    w->readable = NULL;
    while (list) {
        conn *c = list;
        list = c->next_readable;
        c->in_readable = false;
        if (conn_reading(c)) conn_read(c);
    }
}

static void iteration_end(worker *w)
{
    run_readable(w);
    conns_flush_dirty(w);
    free_dead(false);
}

/* Connections without calls and without input for idle_timeout_ms get a
 * graceful GOAWAY (a scan per second: no timer work per read). */
static void tick(worker *w)
{
    int64_t idle = (int64_t)w->s->idle_timeout_ms * 1000000;
    if (!idle || w->stopping) return;
    int64_t now = now_ns();
    for (conn *c = w->conns; c;) {
        conn *next = c->next;
        if (c->state == CONN_H2 && c->n_calls == 0 && now - c->last_active_ns > idle) {
            log_debug("%s: idle for %u ms; sending GOAWAY", c->peer->addr, w->s->idle_timeout_ms);
            c->mx_goaway = MX_GOAWAY_IDLE;
            conn_final_goaway(c);
        }
        c = next;
    }
}

static void loop_end(worker *w)
{
    (void)w;
    free_dead(true);
    const web_handler *wh = web_get_handler();
    if (wh && wh->thread_end) wh->thread_end(); /* the web layer's per-thread state */
}

static void accept_conn(worker *w, int fd, const struct sockaddr *sa, socklen_t salen,
                        const char *unix_path)
{
    conn_new(w, fd, sa, salen, unix_path); /* on failure it logged and closed fd */
}

void conns_close_all(worker *w, const char *why)
{
    while (w->conns) conn_close(w->conns, why);
    free_dead(true);
}

const worker_hooks conn_worker_hooks = {
    .accept = accept_conn,
    .iteration_end = iteration_end,
    .tick = tick,
    .loop_end = loop_end,
};
