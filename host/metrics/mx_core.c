/* Shards, cells, families and series (mx_core.h). */
#define _GNU_SOURCE
#include "metrics/mx_core.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__thread mx_shard *mx_tls_shard;
mx_shard mx_shared_shard;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static mx_shard *worker_shards; /* n_worker_shards */
static int n_worker_shards;
static uint32_t cells_used;
static mx_family *families, *families_last;

/* Per-family index of series by label values: open addressing. */
typedef struct series_index {
    mx_series **slots;
    size_t cap; /* power of two, or 0 */
} series_index;

typedef struct family_priv {
    mx_family f; /* first: a family pointer is a family_priv pointer */
    series_index idx;
} family_priv;

/* ------------------------------------------------------------------ cells */

static int chunk_ensure(uint32_t chunk)
{
    if (chunk >= MX_MAX_CHUNKS) return -ENOSPC;
    for (int i = -1; i < n_worker_shards; i++) {
        mx_shard *s = i < 0 ? &mx_shared_shard : &worker_shards[i];
        if (atomic_load_explicit(&s->chunks[chunk], memory_order_relaxed)) continue;
        /* cache-line aligned: no line is shared by two shards */
        mx_cell *c = aligned_alloc(64, MX_CHUNK_CELLS * sizeof *c);
        if (!c) return -ENOMEM;
        memset(c, 0, MX_CHUNK_CELLS * sizeof *c);
        atomic_store_explicit(&s->chunks[chunk], c, memory_order_release);
    }
    return 0;
}

/* n consecutive cells in one chunk, zeroed; under lock. */
static int cells_alloc(uint32_t n, uint32_t *first)
{
    uint32_t at = cells_used;
    if ((at & (MX_CHUNK_CELLS - 1)) + n > MX_CHUNK_CELLS) /* would straddle: next chunk */
        at = (at | (MX_CHUNK_CELLS - 1)) + 1;
    int rv = chunk_ensure(at >> MX_CHUNK_SHIFT);
    if (rv < 0) return rv;
    *first = at;
    cells_used = at + n;
    return 0;
}

uint64_t mx_cell_sum(uint32_t idx)
{
    uint64_t sum = atomic_load_explicit(mx_cell_at(&mx_shared_shard, idx), memory_order_relaxed);
    for (int i = 0; i < n_worker_shards; i++)
        sum += atomic_load_explicit(mx_cell_at(&worker_shards[i], idx), memory_order_relaxed);
    return sum;
}

static double bits_double(uint64_t b)
{
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}

static uint64_t double_bits(double d)
{
    uint64_t b;
    memcpy(&b, &d, sizeof b);
    return b;
}

/* A cell holding a double: += d. */
static void cell_add_double(uint32_t idx, double d)
{
    mx_shard *s = mx_tls_shard;
    if (s) {
        mx_cell *c = mx_cell_at(s, idx);
        uint64_t old = atomic_load_explicit(c, memory_order_relaxed);
        atomic_store_explicit(c, double_bits(bits_double(old) + d), memory_order_relaxed);
        return;
    }
    mx_cell *c = mx_cell_at(&mx_shared_shard, idx);
    uint64_t old = atomic_load_explicit(c, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(c, &old, double_bits(bits_double(old) + d),
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
}

static double cell_sum_double(uint32_t idx)
{
    double sum = bits_double(atomic_load_explicit(mx_cell_at(&mx_shared_shard, idx),
                                                  memory_order_relaxed));
    for (int i = 0; i < n_worker_shards; i++)
        sum += bits_double(atomic_load_explicit(mx_cell_at(&worker_shards[i], idx),
                                                memory_order_relaxed));
    return sum;
}

/* -------------------------------------------------------------- lifetime */

int mx_init(int n_workers)
{
    pthread_mutex_lock(&lock);
    int rv = 0;
    if (!worker_shards) {
        worker_shards = calloc((size_t)(n_workers > 0 ? n_workers : 1), sizeof *worker_shards);
        if (!worker_shards) rv = -ENOMEM;
        else n_worker_shards = n_workers;
        /* Cells handed out before (none in the server; unit tests) get
         * their chunks in the worker shards now. */
        for (uint32_t c = 0; rv == 0 && c <= (cells_used ? (cells_used - 1) >> MX_CHUNK_SHIFT : 0);
             c++)
            rv = chunk_ensure(c);
    }
    pthread_mutex_unlock(&lock);
    return rv;
}

bool mx_enabled(void) { return worker_shards != NULL; }

void mx_thread_attach(int worker_id)
{
    mx_tls_shard = worker_id >= 0 && worker_id < n_worker_shards ? &worker_shards[worker_id] : NULL;
}

static void series_free(mx_series *s, size_t n_labels)
{
    for (size_t i = 0; i < n_labels; i++) free(s->label_values[i]);
    free(s->label_values);
    free(s);
}

void mx_shutdown(void)
{
    pthread_mutex_lock(&lock);
    for (mx_family *f = families; f;) {
        mx_family *next = f->next;
        for (mx_series *s = f->series; s;) {
            mx_series *sn = s->next;
            series_free(s, f->n_labels);
            s = sn;
        }
        for (size_t i = 0; i < f->n_labels; i++) free(f->label_names[i]);
        free(f->name);
        free(f->help);
        free(f->owner);
        free(((family_priv *)f)->idx.slots);
        free(f);
        f = next;
    }
    families = families_last = NULL;
    for (int i = -1; i < n_worker_shards; i++) {
        mx_shard *s = i < 0 ? &mx_shared_shard : &worker_shards[i];
        for (size_t c = 0; c < MX_MAX_CHUNKS; c++) {
            free(atomic_load(&s->chunks[c]));
            atomic_store(&s->chunks[c], NULL);
        }
    }
    free(worker_shards);
    worker_shards = NULL;
    n_worker_shards = 0;
    cells_used = 0;
    pthread_mutex_unlock(&lock);
}

/* --------------------------------------------------------------- families */

static bool name_ok(const char *n, bool label)
{
    if (!n || !*n || strlen(n) >= MX_NAME_MAX) return false;
    for (const char *p = n; *p; p++) {
        char c = *p;
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                     (!label && c == ':');
        if (!alpha && !(p > n && c >= '0' && c <= '9')) return false;
    }
    if (label && n[0] == '_' && n[1] == '_') return false; /* reserved */
    return true;
}

static mx_family *family_find(const char *name)
{
    for (mx_family *f = families; f; f = f->next)
        if (strcmp(f->name, name) == 0) return f;
    return NULL;
}

/* Splits "a, b" into f->label_names. */
static int parse_labels(mx_family *f, const char *labels, char *why, size_t whylen)
{
    if (!labels) return 0;
    const char *p = labels;
    while (*p) {
        while (*p == ' ' || *p == ',') p++;
        if (!*p) break;
        const char *e = p;
        while (*e && *e != ',' && *e != ' ') e++;
        if (f->n_labels == MX_MAX_LABELS) {
            snprintf(why, whylen, "more than %d labels", MX_MAX_LABELS);
            return -EINVAL;
        }
        char *l = strndup(p, (size_t)(e - p));
        if (!l) return -ENOMEM;
        f->label_names[f->n_labels++] = l;
        if (!name_ok(l, true) || strcmp(l, "le") == 0 || strcmp(l, "quantile") == 0) {
            snprintf(why, whylen, "label name '%.60s' is not valid (or reserved)", l);
            return -EINVAL;
        }
        for (size_t i = 0; i + 1 < f->n_labels; i++)
            if (strcmp(f->label_names[i], l) == 0) {
                snprintf(why, whylen, "label '%.60s' given twice", l);
                return -EINVAL;
            }
        p = e;
    }
    return 0;
}

static bool same_shape(const mx_family *a, const mx_family *b)
{
    if (a->type != b->type || a->n_labels != b->n_labels || a->n_bounds != b->n_bounds)
        return false;
    for (size_t i = 0; i < a->n_labels; i++)
        if (strcmp(a->label_names[i], b->label_names[i]) != 0) return false;
    for (size_t i = 0; i < a->n_bounds; i++)
        if (a->bounds[i] != b->bounds[i]) return false;
    return true;
}

static void family_free_unlinked(mx_family *f)
{
    for (size_t i = 0; i < f->n_labels; i++) free(f->label_names[i]);
    free(f->name);
    free(f->help);
    free(f->owner);
    free(f);
}

static int check_bounds(const double *b, size_t n, char *why, size_t whylen)
{
    if (n > MX_MAX_BUCKETS) {
        snprintf(why, whylen, "more than %d buckets", MX_MAX_BUCKETS);
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(b[i]) || (i && b[i] <= b[i - 1])) {
            snprintf(why, whylen, "bucket bounds must be finite and increasing");
            return -EINVAL;
        }
    }
    return 0;
}

static const double default_bounds[] = {.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10};

/* Strict UTF-8 (no overlong forms, no surrogates, at most U+10FFFF).
 * Prometheus refuses a whole scrape over one label value or HELP text
 * that is not UTF-8, so such text never gets into the exposition. */
static bool utf8_ok(const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    while (*s) {
        unsigned c = *s++;
        if (c < 0x80) continue;
        int more = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc2 ? 1 : -1;
        if (more < 0 || c > 0xf4) return false;
        unsigned cp = c & (0x3fu >> more);
        for (int i = 0; i < more; i++, s++) {
            if ((*s & 0xc0) != 0x80) return false; /* also stops at the NUL */
            cp = cp << 6 | (*s & 0x3fu);
        }
        if ((more == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (more == 3 && (cp < 0x10000 || cp > 0x10ffff)))
            return false;
    }
    return true;
}

static mx_family *family_make(mx_type type, const char *name, const char *help,
                              const char *labels, const double *bounds, size_t n_bounds,
                              const char *owner, char *why, size_t whylen)
{
    char dummy[8];
    if (!why) why = dummy, whylen = sizeof dummy;
    if (!name_ok(name, false)) {
        snprintf(why, whylen, "metric name '%.100s' is not valid ([a-zA-Z_:][a-zA-Z0-9_:]*)",
                 name ? name : "(null)");
        return NULL;
    }
    if (help && !utf8_ok(help)) {
        snprintf(why, whylen, "the help text of '%.100s' is not UTF-8", name);
        return NULL;
    }
    if (type == MX_HISTOGRAM && !bounds) {
        bounds = default_bounds;
        n_bounds = sizeof default_bounds / sizeof default_bounds[0];
    }
    if (type == MX_HISTOGRAM && check_bounds(bounds, n_bounds, why, whylen) < 0) return NULL;
    family_priv *fp = calloc(1, sizeof *fp);
    if (!fp) {
        snprintf(why, whylen, "out of memory");
        return NULL;
    }
    mx_family *f = &fp->f;
    f->type = type;
    f->name = strdup(name);
    f->help = strdup(help ? help : "");
    f->owner = owner ? strdup(owner) : NULL;
    if (!f->name || !f->help || (owner && !f->owner)) {
        snprintf(why, whylen, "out of memory");
        family_free_unlinked(f);
        return NULL;
    }
    if (parse_labels(f, labels, why, whylen) < 0) {
        family_free_unlinked(f);
        return NULL;
    }
    if (type == MX_HISTOGRAM) {
        f->n_bounds = n_bounds;
        for (size_t i = 0; i < n_bounds; i++) {
            f->bounds[i] = bounds[i];
            double ns = bounds[i] * 1e9;
            f->bounds_ns[i] = ns >= 9e18 ? INT64_MAX : ns <= 0 ? 0 : (int64_t)(ns + 0.5);
        }
    }
    return f;
}

/* Links f, or returns the existing family of that name (f freed); under lock. */
static mx_family *family_link(mx_family *f, char *why, size_t whylen)
{
    mx_family *old = family_find(f->name);
    if (old) {
        bool same_owner = (!old->owner && !f->owner) ||
                          (old->owner && f->owner && strcmp(old->owner, f->owner) == 0);
        if (!same_owner || !same_shape(old, f) || old->read || f->read) {
            if (why)
                snprintf(why, whylen, "metric %.100s exists already%s%.64s", f->name,
                         same_owner ? " with another type, labels or buckets" : " (owner: ",
                         same_owner ? "" : old->owner ? old->owner : "the host");
            if (why && !same_owner) strncat(why, ")", whylen - strlen(why) - 1);
            family_free_unlinked(f);
            return NULL;
        }
        family_free_unlinked(f);
        return old;
    }
    if (families_last) families_last->next = f;
    else families = f;
    families_last = f;
    return f;
}

mx_family *mx_family_new(mx_type type, const char *name, const char *help, const char *labels,
                         const double *bounds, size_t n_bounds, const char *owner, char *why,
                         size_t whylen)
{
    mx_family *f = family_make(type, name, help, labels, bounds, n_bounds, owner, why, whylen);
    if (!f) return NULL;
    pthread_mutex_lock(&lock);
    f = family_link(f, why, whylen);
    pthread_mutex_unlock(&lock);
    return f;
}

mx_family *mx_family_seconds(const char *name, const char *help, const char *labels,
                             const double *bounds, size_t n_bounds)
{
    mx_family *f = family_make(MX_HISTOGRAM, name, help, labels, bounds, n_bounds, NULL, NULL, 0);
    if (!f) return NULL;
    f->sum_ns = true;
    pthread_mutex_lock(&lock);
    f = family_link(f, NULL, 0);
    pthread_mutex_unlock(&lock);
    return f;
}

mx_family *mx_family_computed(mx_type type, const char *name, const char *help,
                              const char *labels, mx_read_fn fn, void *arg)
{
    mx_family *f = family_make(type, name, help, labels, NULL, 0, NULL, NULL, 0);
    if (!f) return NULL;
    f->read = fn;
    f->read_arg = arg;
    pthread_mutex_lock(&lock);
    f = family_link(f, NULL, 0);
    pthread_mutex_unlock(&lock);
    return f;
}

/* ----------------------------------------------------------------- series */

static uint64_t labels_hash(const char *const *v, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        for (const char *p = v[i]; *p; p++) h = (h ^ (uint8_t)*p) * 1099511628211ull;
        h = (h ^ 0xff) * 1099511628211ull; /* separator */
    }
    return h;
}

static bool labels_eq(const mx_series *s, const char *const *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s->label_values[i], v[i]) != 0) return false;
    return true;
}

static int index_put(series_index *ix, mx_series *s, size_t n_labels)
{
    size_t mask = ix->cap - 1;
    size_t i = labels_hash((const char *const *)s->label_values, n_labels) & mask;
    while (ix->slots[i]) i = (i + 1) & mask;
    ix->slots[i] = s;
    return 0;
}

static int index_grow(family_priv *fp)
{
    series_index *ix = &fp->idx;
    size_t cap = ix->cap ? ix->cap * 2 : 16;
    mx_series **slots = calloc(cap, sizeof *slots);
    if (!slots) return -ENOMEM;
    free(ix->slots);
    ix->slots = slots;
    ix->cap = cap;
    for (mx_series *s = fp->f.series; s; s = s->next) index_put(ix, s, fp->f.n_labels);
    return 0;
}

static uint32_t cells_per_series(const mx_family *f)
{
    return f->type == MX_HISTOGRAM ? (uint32_t)f->n_bounds + 2 : 1;
}

mx_series *mx_series_get(mx_family *f, const char *const *values)
{
    if (!f) return NULL;
    family_priv *fp = (family_priv *)f;
    for (size_t i = 0; i < f->n_labels; i++)
        if (!values || !values[i] || strlen(values[i]) >= MX_LABEL_VALUE_MAX ||
            !utf8_ok(values[i]))
            return NULL;
    uint64_t h = labels_hash(values, f->n_labels);
    pthread_mutex_lock(&lock);
    mx_series *found = NULL;
    if (fp->idx.cap) {
        size_t mask = fp->idx.cap - 1;
        for (size_t i = h & mask; fp->idx.slots[i]; i = (i + 1) & mask)
            if (labels_eq(fp->idx.slots[i], values, f->n_labels)) {
                found = fp->idx.slots[i];
                break;
            }
    }
    if (found || f->n_series >= MX_MAX_SERIES_PER_FAMILY) goto out;
    if ((f->n_series + 1) * 2 > fp->idx.cap && index_grow(fp) < 0) goto out;
    mx_series *s = calloc(1, sizeof *s);
    if (!s) goto out;
    s->family = f;
    s->label_values = calloc(f->n_labels ? f->n_labels : 1, sizeof *s->label_values);
    bool ok = s->label_values != NULL;
    for (size_t i = 0; ok && i < f->n_labels; i++) ok = (s->label_values[i] = strdup(values[i]));
    if (!ok || (!f->read && cells_alloc(cells_per_series(f), &s->cell) < 0)) {
        if (s->label_values) series_free(s, f->n_labels);
        else free(s);
        goto out;
    }
    if (f->last) f->last->next = s;
    else f->series = s;
    f->last = s;
    f->n_series++;
    index_put(&fp->idx, s, f->n_labels);
    found = s;
out:
    pthread_mutex_unlock(&lock);
    return found;
}

mx_series *mx_series_v(mx_family *f, ...)
{
    if (!f) return NULL;
    const char *v[MX_MAX_LABELS];
    va_list ap;
    va_start(ap, f);
    for (size_t i = 0; i < f->n_labels; i++) v[i] = va_arg(ap, const char *);
    va_end(ap);
    return mx_series_get(f, v);
}

/* ---------------------------------------------------------------- updates */

void mx_gauge_set(const mx_series *s, double v)
{
    if (!s || s->family->read) return;
    /* Gauges are one word in the shared shard: "set" has no per-shard
     * meaning. */
    atomic_store_explicit(mx_cell_at(&mx_shared_shard, s->cell), double_bits(v),
                          memory_order_relaxed);
}

void mx_gauge_add(const mx_series *s, double d)
{
    if (!s || s->family->read) return;
    mx_cell *c = mx_cell_at(&mx_shared_shard, s->cell);
    uint64_t old = atomic_load_explicit(c, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(c, &old, double_bits(bits_double(old) + d),
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
}

void mx_observe(const mx_series *s, double v)
{
    if (!s || s->family->type != MX_HISTOGRAM || isnan(v)) return;
    const mx_family *f = s->family;
    if (f->sum_ns) {
        /* clamp before converting: a double outside int64_t's range
         * (say -inf) makes the conversion undefined */
        double ns = v * 1e9;
        mx_observe_ns(s, ns >= 9e18 ? INT64_MAX : ns <= -9e18 ? INT64_MIN : (int64_t)ns);
        return;
    }
    size_t i = 0;
    while (i < f->n_bounds && v > f->bounds[i]) i++;
    mx_add(s->cell + (uint32_t)i, 1);
    cell_add_double(s->cell + (uint32_t)f->n_bounds + 1, v);
}

/* ---------------------------------------------------------------- reading */

static void series_value(const mx_family *f, const mx_series *s, mx_value *v)
{
    memset(v, 0, offsetof(mx_value, buckets));
    if (f->read) {
        v->value = f->read(s, f->read_arg);
        return;
    }
    switch (f->type) {
    case MX_COUNTER:
        v->value = (double)mx_cell_sum(s->cell);
        if (f->scale) v->value *= f->scale;
        break;
    case MX_GAUGE:
        v->value = bits_double(atomic_load_explicit(mx_cell_at(&mx_shared_shard, s->cell),
                                                    memory_order_relaxed));
        break;
    case MX_HISTOGRAM: {
        uint64_t cum = 0;
        for (size_t i = 0; i <= f->n_bounds; i++) {
            cum += mx_cell_sum(s->cell + (uint32_t)i);
            v->buckets[i] = cum;
        }
        v->count = cum;
        uint32_t sc = s->cell + (uint32_t)f->n_bounds + 1;
        v->sum = f->sum_ns ? (double)mx_cell_sum(sc) / 1e9 : cell_sum_double(sc);
        break;
    }
    }
}

int mx_read(const mx_visitor *v)
{
    int rv = 0;
    pthread_mutex_lock(&lock);
    for (mx_family *f = families; f && rv == 0; f = f->next) {
        if (!f->series) continue;
        if (v->family && (rv = v->family(v->arg, f)) != 0) break;
        for (mx_series *s = f->series; s && rv == 0; s = s->next) {
            mx_value val;
            series_value(f, s, &val);
            if (v->series) rv = v->series(v->arg, f, s, &val);
        }
    }
    pthread_mutex_unlock(&lock);
    return rv;
}

int mx_parse_buckets(const char *text, double *out, size_t *n, char *why, size_t whylen)
{
    size_t k = 0;
    const char *p = text;
    while (*p) {
        while (*p == ' ' || *p == ',' || *p == '\t') p++;
        if (!*p) break;
        if (k == MX_MAX_BUCKETS) {
            snprintf(why, whylen, "more than %d buckets", MX_MAX_BUCKETS);
            return -EINVAL;
        }
        char *end;
        errno = 0;
        double d = strtod(p, &end);
        if (end == p || errno || (*end && *end != ',' && *end != ' ' && *end != '\t')) {
            snprintf(why, whylen, "'%.40s' is not a number of seconds", p);
            return -EINVAL;
        }
        if (!isfinite(d) || d <= 0 || (k && d <= out[k - 1])) {
            snprintf(why, whylen, "bounds must be positive, finite and increasing");
            return -EINVAL;
        }
        out[k++] = d;
        p = end;
    }
    if (k == 0) {
        snprintf(why, whylen, "no bucket bounds");
        return -EINVAL;
    }
    *n = k;
    return 0;
}
