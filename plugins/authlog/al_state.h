/* The state of one authlog instance: per-thread records, the tables the
 * auth interceptor reads, and the background thread that drains the log
 * rings, reopens the log and watches the tokens file.
 *
 * Hot path (the host's worker threads): al_thread_get() returns the calling
 * thread's record (created and linked in once per thread, lock-free). The
 * auth interceptor reads the current tables between al_read_begin() and
 * al_read_end(), which only bump a counter in the thread's own record; the
 * log interceptor appends to the record's ring. Neither takes a lock or
 * makes a system call.
 *
 * Tables are replaced RCU-style by the background thread only: swap the
 * pointer, wait until every thread that was inside a read section when the
 * swap happened has left it (its counter moved on), then free the old one.
 * Owner: al_state.c. */
#ifndef AUTHLOG_AL_STATE_H
#define AUTHLOG_AL_STATE_H

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "rpchost/plugin.h"
#include "al_auth.h"
#include "al_logline.h"
#include "al_perm.h"
#include "al_ring.h"
#include "al_sink.h"
#include "al_tokens.h"

#define AL_LOG_BUFFER_DEFAULT (1u << 20)
#define AL_FLUSH_INTERVAL_MS 20
#define AL_TOKENS_POLL_MS 100

/* One reading of the [plugin.authlog] keys; every pointer owned. */
typedef struct al_config {
    char *log_file;       /* NULL: stderr */
    al_log_format log_format;
    size_t log_buffer;    /* ring bytes per worker thread (init only) */
    char *tokens_file;    /* NULL: no tokens (only exempt methods pass) */
    al_perms exempt;
    bool mtls;            /* map verified client certificates */
    bool auth;            /* authlog.auth checks calls (off: lets all pass) */
    bool log;             /* authlog.log writes lines (off: nothing) */
} al_config;

void al_config_free(al_config *c);

/* One record per thread that ever ran an interceptor of this instance. */
typedef struct al_thread {
    alignas(64) atomic_uint_fast64_t rcu_seq; /* odd inside a read section */
    struct al_thread *next;                   /* set before publication */
    al_timecache tc;
    al_hasher hasher;
    al_ring ring;
} al_thread;

/* What the tokens-file watcher knows (background thread only). */
typedef struct al_watch {
    char *path;
    struct stat seen;        /* last stat observed */
    bool have_seen;
    int64_t changing_since_ms; /* first poll of a change not yet read; 0 */
    struct stat loaded;      /* the file whose content is in force */
    bool have_loaded;
    uint8_t loaded_hash[AL_DIGEST_LEN];
    bool have_hash;
    struct stat failed;      /* a broken version already reported */
    uint8_t failed_hash[AL_DIGEST_LEN];
    bool have_failed;
    int last_errno;          /* last stat/read error reported, 0 if none */
    int64_t read_ms;         /* CLOCK_REALTIME when the content was last read */
    bool have_read;
} al_watch;

typedef struct al_state {
    const rh_host_api *api;
    rh_plugin_ctx *ctx;
    pthread_key_t key;
    size_t ring_cap;
    _Atomic(al_thread *) threads;     /* lock-free push-only list */

    /* Read by the workers. */
    _Atomic(al_tokens *) tokens;      /* NULL: nobody is known */
    _Atomic(al_perms *) exempt;
    atomic_int log_format;
    atomic_bool mtls;
    atomic_bool auth_on;
    atomic_bool log_on;

    /* Control -> background thread. */
    int wake_fd;                      /* eventfd */
    atomic_bool stop;
    pthread_mutex_t pending_mu;
    al_config *pending;               /* set by reload, taken by the thread */

    /* Background thread only (and init/fini). */
    pthread_t thread;
    al_sink sink;
    al_watch watch;
    uint64_t dropped_unreported;
    uint64_t lost_unreported;         /* lines a failed write(2) lost */
    int last_write_errno;
    int64_t last_drop_report_ms;
} al_state;

/* Starts an instance with cfg (taken over in all cases). On failure logs
 * nothing, fills err and returns -errno. */
int al_state_start(al_state **out, const rh_host_api *api, rh_plugin_ctx *ctx,
                   al_config *cfg, char *err, size_t errlen);
/* Stops the thread after a last drain, closes the log, frees everything.
 * Only after the last call of the instance ended. */
void al_state_stop(al_state *s);
/* Hands a new configuration to the background thread (taken over), which
 * reopens the log file, re-reads the tokens file and swaps the tables. */
void al_state_reconfigure(al_state *s, al_config *cfg);

al_thread *al_thread_register(al_state *s);
static inline al_thread *al_thread_get(al_state *s)
{
    al_thread *t = pthread_getspecific(s->key);
    return t ? t : al_thread_register(s);
}

static inline void al_read_begin(al_thread *t)
{
    atomic_fetch_add(&t->rcu_seq, 1); /* seq_cst: before the table loads */
}

static inline void al_read_end(al_thread *t)
{
    atomic_fetch_add_explicit(&t->rcu_seq, 1, memory_order_release);
}

/* Asks the background thread to drain now (a ring is half full). */
void al_state_wake(al_state *s);

#endif
