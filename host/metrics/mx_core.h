/* Metrics: counters, gauges and histograms kept in per-worker shards and
 * summed when read (a scrape, the admin service).
 *
 * Storage. Every value lives in a "cell" (64 bits) addressed by an index.
 * There is one shard of cells per worker plus one shared shard for every
 * other thread (control thread, plugin threads). A worker is the only
 * writer of its shard, so an update there is a relaxed load and a relaxed
 * store (plain moves on x86/arm64: no locked instruction, no shared cache
 * line); the shared shard takes an atomic add. Cells are allocated in
 * chunks for all shards at registration time (control thread, under a
 * mutex), never on the call path; an index is handed out only after its
 * chunk exists in every shard.
 *
 * Families and series. A family is a name, a help text, a type and label
 * names; a series is one set of label values and the cells that hold its
 * value (a counter: 1 cell; a gauge: 1 cell in the shared shard holding a
 * double; a histogram: one cell per bucket, +Inf included, and one for the
 * sum). Families and series are never freed before mx_shutdown: a series
 * handle stays valid for the life of the process (a plugin's handles too,
 * across hot replace: see docs/metrics.md).
 *
 * Reading. mx_read walks every family and series in registration order and
 * hands each series' summed value to a visitor (mx_expose.c turns that
 * into the Prometheus text format; the admin service can stream it).
 *
 * Owner: host/metrics/. Threads: updates from any thread; registration and
 * reading from any thread (a mutex, not on the hot path). */
#ifndef RPCHOST_HOST_MX_CORE_H
#define RPCHOST_HOST_MX_CORE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MX_CHUNK_SHIFT 12 /* 4096 cells (32 KiB) per chunk and shard */
#define MX_CHUNK_CELLS (1u << MX_CHUNK_SHIFT)
#define MX_MAX_CHUNKS 256 /* 1M cells: far above any sane series count */
#define MX_MAX_LABELS 8
#define MX_MAX_BUCKETS 32
#define MX_MAX_SERIES_PER_FAMILY 20000
#define MX_NAME_MAX 128
#define MX_LABEL_VALUE_MAX 256

typedef _Atomic uint64_t mx_cell;

typedef struct mx_shard {
    _Atomic(mx_cell *) chunks[MX_MAX_CHUNKS];
} mx_shard;

/* The shard of the calling thread: a worker's own, or NULL (shared). */
extern __thread mx_shard *mx_tls_shard;
extern mx_shard mx_shared_shard;

static inline mx_cell *mx_cell_at(mx_shard *s, uint32_t idx)
{
    mx_cell *chunk = atomic_load_explicit(&s->chunks[idx >> MX_CHUNK_SHIFT], memory_order_acquire);
    return &chunk[idx & (MX_CHUNK_CELLS - 1)];
}

/* cell += n from any thread. */
static inline void mx_add(uint32_t idx, uint64_t n)
{
    mx_shard *s = mx_tls_shard;
    if (s) {
        mx_cell *c = mx_cell_at(s, idx);
        atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                              memory_order_relaxed);
    } else {
        atomic_fetch_add_explicit(mx_cell_at(&mx_shared_shard, idx), n, memory_order_relaxed);
    }
}

typedef enum mx_type { MX_COUNTER, MX_GAUGE, MX_HISTOGRAM } mx_type;

typedef struct mx_family mx_family;

typedef struct mx_series {
    mx_family *family;
    uint32_t cell;           /* first cell: value, or bucket 0 */
    char **label_values;     /* family->n_labels strings */
    struct mx_series *next;  /* family's list, in creation order */
} mx_series;

/* Computes the value of a series at read time instead of cells (process_
 * metrics, gauges derived from counters). */
typedef double (*mx_read_fn)(const mx_series *s, void *arg);

struct mx_family {
    char *name, *help;
    mx_type type;
    size_t n_labels;
    char *label_names[MX_MAX_LABELS];
    /* histograms: upper bounds, increasing; +Inf is implicit */
    size_t n_bounds;
    double bounds[MX_MAX_BUCKETS];
    int64_t bounds_ns[MX_MAX_BUCKETS]; /* bounds in ns, for mx_observe_ns */
    bool sum_ns;         /* the sum cell counts ns (integer), else a double */
    double scale;        /* counters: exposed value = cells * scale (0: 1) */
    char *owner;         /* plugin name, NULL for the host */
    mx_read_fn read;     /* NULL: the cells */
    void *read_arg;
    mx_series *series, *last;
    size_t n_series;
    mx_family *next;
};

/* --- lifetime ------------------------------------------------------------ */
int mx_init(int n_workers);
/* Whether mx_init ran (metrics on). */
bool mx_enabled(void);
/* The calling worker thread writes shard `worker_id` from now on. */
void mx_thread_attach(int worker_id);
void mx_shutdown(void);

/* --- registration (any thread; not on the hot path) --------------------- */
/* A family; labels comma-separated ("" or NULL for none). A family of the
 * same name and owner with the same type and labels is returned again (hot
 * replace); another shape, another owner or a bad name gives NULL with the
 * reason in why. */
mx_family *mx_family_new(mx_type type, const char *name, const char *help, const char *labels,
                         const double *bounds, size_t n_bounds, const char *owner, char *why,
                         size_t whylen);
/* A histogram of durations in seconds whose sum is kept in integer ns
 * (mx_observe_ns); host families only. */
mx_family *mx_family_seconds(const char *name, const char *help, const char *labels,
                             const double *bounds, size_t n_bounds);
/* A family whose values are computed by fn when read. */
mx_family *mx_family_computed(mx_type type, const char *name, const char *help,
                              const char *labels, mx_read_fn fn, void *arg);
/* The series of these label values (n_labels of them), created the first
 * time; NULL past MX_MAX_SERIES_PER_FAMILY or out of memory. */
mx_series *mx_series_get(mx_family *f, const char *const *values);
/* Label values given as one variadic list (host code, fixed labels). */
mx_series *mx_series_v(mx_family *f, ...);

/* --- updates (any thread) ------------------------------------------------ */
static inline void mx_inc(const mx_series *s)
{
    if (s) mx_add(s->cell, 1);
}
static inline void mx_count(const mx_series *s, uint64_t n)
{
    if (s) mx_add(s->cell, n);
}
void mx_gauge_set(const mx_series *s, double v);
void mx_gauge_add(const mx_series *s, double d);
void mx_observe(const mx_series *s, double v);

/* A duration into a histogram family made with mx_family_seconds: bucket
 * i (n_bounds = +Inf) is cell + i, the sum in ns is cell + n_bounds + 1.
 * Integer compares only: this runs once per call. */
static inline void mx_observe_ns(const mx_series *s, int64_t ns)
{
    if (!s) return;
    const mx_family *f = s->family;
    size_t i = 0;
    while (i < f->n_bounds && ns > f->bounds_ns[i]) i++;
    mx_add(s->cell + (uint32_t)i, 1);
    mx_add(s->cell + (uint32_t)f->n_bounds + 1, ns > 0 ? (uint64_t)ns : 0);
}

/* The summed value of a cell over all shards. */
uint64_t mx_cell_sum(uint32_t idx);

/* --- reading ----------------------------------------------------------- */
typedef struct mx_value {
    double value;              /* counter, gauge */
    /* histogram: cumulative counts per bound, then +Inf (= count) */
    uint64_t buckets[MX_MAX_BUCKETS + 1];
    uint64_t count;
    double sum;
} mx_value;

typedef struct mx_visitor {
    /* Called once per family that has at least one series. */
    int (*family)(void *arg, const mx_family *f);
    int (*series)(void *arg, const mx_family *f, const mx_series *s, const mx_value *v);
    void *arg;
} mx_visitor;

/* Walks every family and series (registration order) under the registry
 * lock; stops at the first visitor return != 0 and returns it. */
int mx_read(const mx_visitor *v);

/* Parses "0.005,0.01,..." (increasing, positive, finite) into bounds. */
int mx_parse_buckets(const char *text, double *out, size_t *n, char *why, size_t whylen);

#endif
