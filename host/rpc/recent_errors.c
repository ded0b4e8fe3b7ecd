/* The ring of recent failed calls (recent_errors.h). */
#include "rpc/recent_errors.h"

#include <pthread.h>
#include <stdio.h>
#include <time.h>

static pthread_mutex_t ring_lock = PTHREAD_MUTEX_INITIALIZER;
static recent_error ring[RECENT_ERRORS_MAX];
static uint64_t noted; /* entries ever noted; the next slot is noted % MAX */

void recent_errors_note(const char *method, uint32_t code, const char *message,
                        const char *peer)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    pthread_mutex_lock(&ring_lock);
    recent_error *e = &ring[noted % RECENT_ERRORS_MAX];
    e->unix_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    e->code = code;
    snprintf(e->method, sizeof e->method, "%s", method ? method : "");
    snprintf(e->message, sizeof e->message, "%s", message ? message : "");
    snprintf(e->peer, sizeof e->peer, "%s", peer ? peer : "");
    noted++;
    pthread_mutex_unlock(&ring_lock);
}

size_t recent_errors_read(recent_error *out, size_t max)
{
    pthread_mutex_lock(&ring_lock);
    size_t have = noted < RECENT_ERRORS_MAX ? (size_t)noted : RECENT_ERRORS_MAX;
    size_t n = have < max ? have : max;
    for (size_t i = 0; i < n; i++) out[i] = ring[(noted - 1 - i) % RECENT_ERRORS_MAX];
    pthread_mutex_unlock(&ring_lock);
    return n;
}
