/* A single-producer single-consumer byte ring: the worker thread that owns
 * it appends whole log lines, the flusher thread takes them out. No lock,
 * no system call; a line that does not fit is dropped and counted, never
 * waited for. Owner: al_ring.c. */
#ifndef AUTHLOG_AL_RING_H
#define AUTHLOG_AL_RING_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct al_ring {
    /* Producer side. */
    alignas(64) atomic_size_t head; /* bytes ever written */
    size_t tail_cache;              /* last tail the producer saw */
    atomic_uint_fast64_t dropped;   /* lines that did not fit */
    /* Consumer side. */
    alignas(64) atomic_size_t tail; /* bytes ever consumed */
    uint64_t dropped_seen;          /* consumer's last reading of dropped */
    atomic_bool wake_pending;       /* producer asked the consumer to drain */
    /* Fixed. */
    alignas(64) char *buf;
    size_t cap; /* power of two */
} al_ring;

/* cap is rounded up to a power of two (at least 4096). 0 or -ENOMEM. */
int al_ring_init(al_ring *r, size_t cap);
void al_ring_destroy(al_ring *r);

/* Producer: appends len bytes as one unit. Returns 0, or -ENOSPC after
 * counting a dropped line. *half_full is set when the ring holds more than
 * half its capacity after the push. */
int al_ring_push(al_ring *r, const void *data, size_t len, bool *half_full);

/* Consumer: the readable bytes as up to two spans; returns the total. */
size_t al_ring_peek(al_ring *r, const char **p1, size_t *n1, const char **p2,
                    size_t *n2);
/* Consumer: releases n bytes returned by peek. */
void al_ring_consume(al_ring *r, size_t n);

#endif
