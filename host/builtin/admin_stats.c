/* Snapshots of the gRPC series for WatchStats (admin_stats.h). */
#include "builtin/admin_stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct take_ctx {
    stats_snap *s;
    enum { FAM_OTHER, FAM_HANDLED, FAM_SECONDS } fam;
} take_ctx;

static int on_family(void *arg, const mx_family *f)
{
    take_ctx *t = arg;
    if (strcmp(f->name, "grpc_server_handled_total") == 0)
        t->fam = FAM_HANDLED;
    else if (strcmp(f->name, "grpc_server_handling_seconds") == 0) {
        t->fam = FAM_SECONDS;
        t->s->n_bounds = f->n_bounds;
        memcpy(t->s->bounds, f->bounds, f->n_bounds * sizeof f->bounds[0]);
    } else
        t->fam = FAM_OTHER;
    return 0;
}

/* The entry of the series' method, made the first time; NULL when full. */
static stats_method *entry_of(stats_snap *s, const mx_series *se)
{
    char path[sizeof s->m[0].path];
    const char *type = se->label_values[0];
    snprintf(path, sizeof path, "/%s/%s", se->label_values[1], se->label_values[2]);
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->m[i].path, path) == 0 && strcmp(s->m[i].type, type) == 0) return &s->m[i];
    if (s->n == STATS_MAX_METHODS) return NULL;
    stats_method *m = &s->m[s->n++];
    snprintf(m->path, sizeof m->path, "%s", path);
    snprintf(m->type, sizeof m->type, "%s", type);
    return m;
}

static int code_of(const char *name)
{
    for (int c = 0; c < MX_GRPC_CODES; c++)
        if (strcmp(mx_grpc_code_name(c), name) == 0) return c;
    return -1;
}

static int on_series(void *arg, const mx_family *f, const mx_series *se, const mx_value *v)
{
    take_ctx *t = arg;
    if (t->fam == FAM_OTHER || f->n_labels < 3) return 0;
    stats_method *m = entry_of(t->s, se);
    if (!m) return 0;
    if (t->fam == FAM_HANDLED && f->n_labels == 4) {
        int c = code_of(se->label_values[3]);
        if (c >= 0) m->handled[c] = (uint64_t)v->value;
    } else if (t->fam == FAM_SECONDS) {
        memcpy(m->buckets, v->buckets, (f->n_bounds + 1) * sizeof v->buckets[0]);
    }
    return 0;
}

stats_snap *stats_snap_take(void)
{
    stats_snap *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    s->mono_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    if (mx_enabled()) {
        take_ctx t = {.s = s};
        mx_visitor v = {.family = on_family, .series = on_series, .arg = &t};
        mx_read(&v);
    }
    return s;
}

void stats_snap_free(stats_snap *s) { free(s); }

const stats_method *stats_snap_find(const stats_snap *s, const char *path, const char *type)
{
    for (size_t i = 0; s && i < s->n; i++)
        if (strcmp(s->m[i].path, path) == 0 && strcmp(s->m[i].type, type) == 0) return &s->m[i];
    return NULL;
}

static uint64_t delta(const stats_method *cur, const stats_method *prev, size_t i)
{
    uint64_t was = prev ? prev->buckets[i] : 0;
    return cur->buckets[i] > was ? cur->buckets[i] - was : 0;
}

double stats_quantile(const stats_snap *snap, const stats_method *cur, const stats_method *prev,
                      double q)
{
    size_t nb = snap->n_bounds;
    uint64_t total = delta(cur, prev, nb);
    if (total == 0 || nb == 0) return 0;
    double rank = q * (double)total;
    for (size_t i = 0; i < nb; i++) {
        uint64_t below = delta(cur, prev, i);
        if ((double)below >= rank) {
            double lo = i ? snap->bounds[i - 1] : 0;
            uint64_t start = i ? delta(cur, prev, i - 1) : 0;
            uint64_t in = below - start;
            if (in == 0) return snap->bounds[i];
            return lo + (snap->bounds[i] - lo) * ((rank - (double)start) / (double)in);
        }
    }
    return snap->bounds[nb - 1];
}
