/* Text exposition (mx_expose.h). Formats:
 * https://prometheus.io/docs/instrumenting/exposition_formats/ and the
 * OpenMetrics 1.0 specification. The differences that matter here: in
 * OpenMetrics a counter family is named without "_total" (its samples keep
 * it), and the text ends with "# EOF". */
#include "metrics/mx_expose.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/mx_core.h"
#include "metrics/mx_collect.h"

typedef struct writer {
    buf *out;
    bool om;
    int err;
} writer;

static void put(writer *w, const char *s, size_t n)
{
    if (!w->err && buf_append(w->out, s, n) < 0) w->err = -ENOMEM;
}

static void puts_(writer *w, const char *s) { put(w, s, strlen(s)); }

/* Escapes \ and newline (HELP), plus " in label values. */
static void put_escaped(writer *w, const char *s, bool quote)
{
    const char *run = s;
    for (const char *p = s; *p; p++) {
        const char *rep = *p == '\\' ? "\\\\" : *p == '\n' ? "\\n" : (quote && *p == '"') ? "\\\"" : NULL;
        if (!rep) continue;
        put(w, run, (size_t)(p - run));
        puts_(w, rep);
        run = p + 1;
    }
    puts_(w, run);
}

/* Shortest text that reads back as the same double; integers exactly. */
static void put_number(writer *w, double v)
{
    char t[40];
    if (isnan(v)) snprintf(t, sizeof t, "NaN");
    else if (isinf(v)) snprintf(t, sizeof t, v > 0 ? "+Inf" : "-Inf");
    else if (v == floor(v) && fabs(v) < 1e15) snprintf(t, sizeof t, "%.0f", v);
    else {
        for (int prec = 6; prec <= 17; prec++) {
            snprintf(t, sizeof t, "%.*g", prec, v);
            if (strtod(t, NULL) == v) break;
        }
    }
    puts_(w, t);
}

static void put_u64(writer *w, uint64_t v)
{
    char t[24];
    snprintf(t, sizeof t, "%llu", (unsigned long long)v);
    puts_(w, t);
}

static size_t family_base_len(const writer *w, const mx_family *f)
{
    size_t n = strlen(f->name);
    if (w->om && f->type == MX_COUNTER && n > 6 && strcmp(f->name + n - 6, "_total") == 0)
        n -= 6;
    return n;
}

static int on_family(void *arg, const mx_family *f)
{
    writer *w = arg;
    static const char *const types[] = {"counter", "gauge", "histogram"};
    size_t n = family_base_len(w, f);
    puts_(w, "# HELP ");
    put(w, f->name, n);
    puts_(w, " ");
    put_escaped(w, f->help, false);
    puts_(w, "\n# TYPE ");
    put(w, f->name, n);
    puts_(w, " ");
    puts_(w, types[f->type]);
    puts_(w, "\n");
    return w->err;
}

/* name{labels[,le="x"]} */
static void put_head(writer *w, const mx_family *f, const mx_series *s, const char *suffix,
                     const char *le)
{
    puts_(w, f->name);
    if (suffix) puts_(w, suffix);
    if (!f->n_labels && !le) return;
    puts_(w, "{");
    for (size_t i = 0; i < f->n_labels; i++) {
        if (i) puts_(w, ",");
        puts_(w, f->label_names[i]);
        puts_(w, "=\"");
        put_escaped(w, s->label_values[i], true);
        puts_(w, "\"");
    }
    if (le) {
        if (f->n_labels) puts_(w, ",");
        puts_(w, "le=\"");
        puts_(w, le);
        puts_(w, "\"");
    }
    puts_(w, "}");
}

static int on_series(void *arg, const mx_family *f, const mx_series *s, const mx_value *v)
{
    writer *w = arg;
    if (f->type != MX_HISTOGRAM) {
        put_head(w, f, s, NULL, NULL);
        puts_(w, " ");
        put_number(w, v->value);
        puts_(w, "\n");
        return w->err;
    }
    for (size_t i = 0; i <= f->n_bounds; i++) {
        char le[40];
        if (i == f->n_bounds) {
            snprintf(le, sizeof le, "+Inf");
        } else {
            for (int prec = 6; prec <= 17; prec++) {
                snprintf(le, sizeof le, "%.*g", prec, f->bounds[i]);
                if (strtod(le, NULL) == f->bounds[i]) break;
            }
            /* OpenMetrics wants a float: "1" -> "1.0" */
            if (w->om && !strpbrk(le, ".eE")) strcat(le, ".0");
        }
        put_head(w, f, s, "_bucket", le);
        puts_(w, " ");
        put_u64(w, v->buckets[i]);
        puts_(w, "\n");
    }
    put_head(w, f, s, "_sum", NULL);
    puts_(w, " ");
    put_number(w, v->sum);
    puts_(w, "\n");
    put_head(w, f, s, "_count", NULL);
    puts_(w, " ");
    put_u64(w, v->count);
    puts_(w, "\n");
    return w->err;
}

int mx_expose(buf *out, bool openmetrics)
{
    mx_collect_run();
    writer w = {.out = out, .om = openmetrics};
    mx_visitor v = {.family = on_family, .series = on_series, .arg = &w};
    int rv = mx_read(&v);
    if (rv == 0 && openmetrics) puts_(&w, "# EOF\n");
    return rv ? rv : w.err;
}

bool mx_accepts_openmetrics(const char *accept)
{
    /* Any listed application/openmetrics-text not refused with q=0. */
    const char *p = accept;
    while (p && (p = strstr(p, "application/openmetrics-text"))) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        char part[256];
        snprintf(part, sizeof part, "%.*s", (int)(n < 255 ? n : 255), p);
        const char *q = strstr(part, "q=");
        if (!q || strtod(q + 2, NULL) > 0) return true;
        p += 1;
    }
    return false;
}
