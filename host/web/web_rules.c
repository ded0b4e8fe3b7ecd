/* HTTP rules: templates, matching, and the per-worker table (web_rules.h). */
#include "web/web_rules.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "percent.h"

/* google.api.http: the MethodOptions extension number of HttpRule. */
#define HTTP_RULE_EXTENSION 72295728u

/* ---------------------------------------------------------------------
 * Templates
 * ------------------------------------------------------------------- */

static int fail(char *why, size_t whylen, const char *fmt, const char *arg)
{
    snprintf(why, whylen, fmt, arg);
    return -EINVAL;
}

static bool literal_ok(const char *p, size_t n)
{
    if (!n) return false;
    for (size_t i = 0; i < n; i++)
        if (strchr("/{}*=:?#", p[i]) || (unsigned char)p[i] <= ' ') return false;
    return true;
}

/* One segment of text [p, p+n) into r->segs. */
static int add_seg(web_rule *r, const char *p, size_t n, char *why, size_t whylen)
{
    if (r->n_segs == WEB_RULE_MAX_SEGS) return fail(why, whylen, "%s: too many segments", r->pattern);
    web_seg *s = &r->segs[r->n_segs];
    if (n == 1 && p[0] == '*') {
        s->kind = SEG_STAR;
    } else if (n == 2 && p[0] == '*' && p[1] == '*') {
        s->kind = SEG_DSTAR;
    } else if (literal_ok(p, n)) {
        s->kind = SEG_LITERAL;
        s->literal = p;
        s->literal_len = n;
    } else {
        return fail(why, whylen, "%s: bad path segment", r->pattern);
    }
    r->n_segs++;
    return 0;
}

/* segments separated by '/' in [p, end) */
static int add_segs(web_rule *r, const char *p, const char *end, char *why, size_t whylen)
{
    while (p <= end) {
        const char *slash = memchr(p, '/', (size_t)(end - p));
        const char *e = slash ? slash : end;
        if (add_seg(r, p, (size_t)(e - p), why, whylen) < 0) return -EINVAL;
        if (!slash) break;
        p = slash + 1;
    }
    return 0;
}

int web_rule_parse_template(web_rule *r, const char *pattern, char *why, size_t whylen)
{
    r->pattern = strdup(pattern);
    if (!r->pattern) return fail(why, whylen, "%s", "out of memory");
    char *p = r->pattern;
    if (p[0] != '/') return fail(why, whylen, "%s: a template starts with /", pattern);
    /* the verb: a ':' after the last '/' and outside braces */
    char *last_slash = strrchr(p, '/');
    char *close = strrchr(p, '}');
    char *colon = strrchr(last_slash, ':');
    if (colon && (!close || colon > close)) {
        *colon = 0;
        r->verb = colon + 1;
        if (!literal_ok(r->verb, strlen(r->verb)))
            return fail(why, whylen, "%s: bad verb", pattern);
    }
    char *s = p + 1;
    if (!*s) return 0; /* "/" */
    while (*s) {
        if (*s == '{') {
            char *end = strchr(s, '}');
            if (!end) return fail(why, whylen, "%s: unclosed {", pattern);
            if (r->n_vars == WEB_RULE_MAX_VARS)
                return fail(why, whylen, "%s: too many variables", pattern);
            *end = 0;
            char *eq = strchr(s + 1, '=');
            if (eq) *eq = 0;
            web_var *v = &r->vars[r->n_vars++];
            v->field = strdup(s + 1);
            if (!v->field || !*v->field) return fail(why, whylen, "%s: empty variable", pattern);
            for (char *f = v->field; *f; f++)
                if (!isalnum((unsigned char)*f) && *f != '_' && *f != '.')
                    return fail(why, whylen, "%s: bad variable name", pattern);
            v->first = r->n_segs;
            if (eq) {
                if (add_segs(r, eq + 1, end, why, whylen) < 0) return -EINVAL;
            } else if (add_seg(r, "*", 1, why, whylen) < 0) {
                return -EINVAL;
            }
            v->end = r->n_segs;
            s = end + 1;
        } else {
            char *slash = strchr(s, '/');
            char *brace = strchr(s, '{');
            char *e = slash ? slash : s + strlen(s);
            if (brace && brace < e) return fail(why, whylen, "%s: { inside a segment", pattern);
            if (add_seg(r, s, (size_t)(e - s), why, whylen) < 0) return -EINVAL;
            s = e;
        }
        if (*s == '/') {
            s++;
            if (!*s) return fail(why, whylen, "%s: trailing /", pattern);
        } else if (*s) {
            return fail(why, whylen, "%s: expected / between segments", pattern);
        }
    }
    for (uint32_t i = 0; i + 1 < r->n_segs; i++)
        if (r->segs[i].kind == SEG_DSTAR) return fail(why, whylen, "%s: ** must be last", pattern);
    return 0;
}

/* Splits path into segments: starts/lengths; -1 if too many. */
static int split(const char *path, size_t len, const char **start, size_t *slen, size_t max)
{
    if (len == 0 || path[0] != '/') return -1;
    if (len == 1) return 0;
    size_t n = 0;
    const char *p = path + 1, *end = path + len;
    for (;;) {
        if (n == max) return -1;
        const char *slash = memchr(p, '/', (size_t)(end - p));
        const char *e = slash ? slash : end;
        start[n] = p;
        slen[n++] = (size_t)(e - p);
        if (!slash) break;
        p = slash + 1;
    }
    return (int)n;
}

bool web_rule_match(const web_rule *r, const char *path, size_t len, char **vals)
{
    /* the verb is the part after the last ':' of the last segment */
    if (r->verb) {
        size_t vl = strlen(r->verb);
        if (len < vl + 2 || path[len - vl - 1] != ':' || memcmp(path + len - vl, r->verb, vl) != 0)
            return false;
        len -= vl + 1;
    }
    const char *st[WEB_RULE_MAX_SEGS * 2];
    size_t sl[WEB_RULE_MAX_SEGS * 2];
    int n = split(path, len, st, sl, sizeof st / sizeof st[0]);
    if (n < 0) return false;
    uint32_t seg_of[WEB_RULE_MAX_SEGS + 1]; /* first path segment of each rule segment */
    int k = 0;
    for (uint32_t i = 0; i < r->n_segs; i++) {
        seg_of[i] = (uint32_t)k;
        const web_seg *s = &r->segs[i];
        if (s->kind == SEG_DSTAR) {
            k = n;
            continue;
        }
        if (k >= n || sl[k] == 0) return false;
        if (s->kind == SEG_LITERAL &&
            (sl[k] != s->literal_len || memcmp(st[k], s->literal, sl[k]) != 0))
            return false;
        k++;
    }
    seg_of[r->n_segs] = (uint32_t)k;
    if (k != n) return false;
    for (uint32_t v = 0; v < r->n_vars; v++) vals[v] = NULL;
    for (uint32_t v = 0; v < r->n_vars; v++) {
        uint32_t a = seg_of[r->vars[v].first], b = seg_of[r->vars[v].end];
        size_t from = a < (uint32_t)n ? (size_t)(st[a] - path) : len;
        size_t to = b > a ? (size_t)(st[b - 1] + sl[b - 1] - path) : from;
        char *val = malloc(to - from + 1);
        if (!val) {
            for (uint32_t i = 0; i < v; i++) free(vals[i]);
            return false;
        }
        /* one segment: everything decoded; several: "/" stays a separator */
        size_t m = percent_decode((uint8_t *)val, path + from, to - from);
        val[m] = 0;
        vals[v] = val;
    }
    return true;
}

void web_rule_free(web_rule *r)
{
    free(r->http_method);
    free(r->pattern);
    for (uint32_t i = 0; i < r->n_vars; i++) free(r->vars[i].field);
    free(r->body);
    free(r->response_body);
    free(r->grpc_path);
    free(r->input_type);
    free(r->output_type);
    memset(r, 0, sizeof *r);
}

/* ---------------------------------------------------------------------
 * The table
 * ------------------------------------------------------------------- */

static __thread web_table *tls_table;

static void table_free(web_table *t)
{
    if (!t) return;
    for (size_t i = 0; i < t->n_rules; i++) web_rule_free(&t->rules[i]);
    free(t->rules);
    descpool_free(t->pool);
    free(t);
}

static char *strdup_or_null(const char *s) { return s && *s ? strdup(s) : NULL; }

/* Fills the gRPC side of a rule from a method symbol. */
static int bind_method(web_table *t, web_rule *r, const descpool_symbol *m)
{
    const Google__Protobuf__MethodDescriptorProto *md = m->u.method;
    const descpool_symbol *svc = m->parent;
    const descpool_symbol *in = descpool_resolve(t->pool, svc->full_name, md->input_type);
    const descpool_symbol *out = descpool_resolve(t->pool, svc->full_name, md->output_type);
    if (!in || !out) return -ENOENT;
    size_t n = strlen(svc->full_name) + strlen(m->name) + 3;
    r->grpc_path = malloc(n);
    r->input_type = strdup(in->full_name);
    r->output_type = strdup(out->full_name);
    if (!r->grpc_path || !r->input_type || !r->output_type) return -ENOMEM;
    snprintf(r->grpc_path, n, "/%s/%s", svc->full_name, m->name);
    r->client_streaming = md->has_client_streaming && md->client_streaming;
    r->server_streaming = md->has_server_streaming && md->server_streaming;
    return 0;
}

static void add_rule(web_table *t, web_rule *r, const char *plugin)
{
    if (t->n_rules == WEB_RULES_MAX) {
        log_warn("plugin %s: more than %d HTTP rules; %s %s left out", plugin, WEB_RULES_MAX,
                 r->http_method, r->pattern);
        web_rule_free(r);
        return;
    }
    if (t->n_rules == t->cap_rules) {
        /* rules point into their own strings, never into the array: it may move */
        size_t cap = t->cap_rules ? t->cap_rules * 2 : 8;
        web_rule *grown = realloc(t->rules, cap * sizeof *grown);
        if (!grown) {
            log_warn("plugin %s: out of memory; HTTP rule %s %s left out", plugin, r->http_method,
                     r->pattern);
            web_rule_free(r);
            return;
        }
        t->rules = grown;
        t->cap_rules = cap;
    }
    t->rules[t->n_rules++] = *r;
}

/* --- rules from the config: "POST /start Rides.Start body=*, ..." --- */

static void config_rules(web_table *t, const char *text, const char *plugin)
{
    char *copy = strdup(text);
    if (!copy) return;
    char *save = NULL;
    for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char *words[6];
        int nw = 0;
        char *ws = NULL;
        for (char *w = strtok_r(item, " \t", &ws); w && nw < 6; w = strtok_r(NULL, " \t", &ws))
            words[nw++] = w;
        if (nw == 0) continue;
        web_rule r = {0};
        char why[256] = "";
        const descpool_symbol *m = nw >= 3 ? descpool_find_method(t->pool, words[2]) : NULL;
        if (nw < 3) {
            snprintf(why, sizeof why, "expected METHOD TEMPLATE SERVICE.METHOD [body=F] [response_body=F]");
        } else if (!m) {
            snprintf(why, sizeof why, "no method %s in the plugin's descriptors", words[2]);
        } else if (web_rule_parse_template(&r, words[1], why, sizeof why) == 0) {
            r.http_method = strdup(words[0]);
            for (char *c = r.http_method; c && *c; c++) *c = (char)toupper((unsigned char)*c);
            for (int i = 3; i < nw && !why[0]; i++) {
                if (strncmp(words[i], "body=", 5) == 0)
                    r.body = strdup_or_null(words[i] + 5);
                else if (strncmp(words[i], "response_body=", 14) == 0)
                    r.response_body = strdup_or_null(words[i] + 14);
                else
                    snprintf(why, sizeof why, "unknown option %s", words[i]);
            }
            if (!why[0] && bind_method(t, &r, m) < 0)
                snprintf(why, sizeof why, "types of %s not in the descriptors", words[2]);
        }
        if (why[0]) {
            log_warn("plugin %s: [plugin.%s] http_rule: %s; rule left out", plugin, plugin, why);
            web_rule_free(&r);
            continue;
        }
        add_rule(t, &r, plugin);
    }
    free(copy);
}

/* --- rules from google.api.http annotations ------------------------ */

typedef struct wire {
    const uint8_t *p, *end;
} wire;

static bool varint(wire *w, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64 && w->p < w->end; shift += 7) {
        uint8_t b = *w->p++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) return true;
    }
    return false;
}

/* Next field of a message: number, wire type, and for length-delimited
 * fields the payload. false at the end or on malformed input. */
static bool next_field(wire *w, uint32_t *num, uint32_t *type, wire *payload)
{
    uint64_t key, v;
    if (w->p >= w->end || !varint(w, &key)) return false;
    *num = (uint32_t)(key >> 3);
    *type = (uint32_t)(key & 7);
    switch (*type) {
    case 0: return varint(w, &v);
    case 1: if (w->end - w->p < 8) return false; w->p += 8; return true;
    case 5: if (w->end - w->p < 4) return false; w->p += 4; return true;
    case 2:
        if (!varint(w, &v) || v > (uint64_t)(w->end - w->p)) return false;
        payload->p = w->p;
        payload->end = w->p + v;
        w->p += v;
        return true;
    default: return false;
    }
}

static char *wire_str(const wire *w)
{
    size_t n = (size_t)(w->end - w->p);
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, w->p, n);
        s[n] = 0;
    }
    return s;
}

/* One HttpRule (and its additional_bindings, one level as the spec says). */
static void annotation_rule(web_table *t, const descpool_symbol *m, wire w, const char *plugin,
                            int depth)
{
    static const char *const verbs[] = {NULL, NULL, "GET", "PUT", "POST", "DELETE", "PATCH"};
    web_rule r = {0};
    char *path = NULL;
    uint32_t num, type;
    wire pl = {0};
    wire start = w;
    while (next_field(&w, &num, &type, &pl)) {
        if (type != 2) continue;
        if (num >= 2 && num <= 6) {
            free(r.http_method);
            free(path);
            r.http_method = strdup(verbs[num]);
            path = wire_str(&pl);
        } else if (num == 8) { /* custom: kind, path */
            wire c = pl;
            wire cp = {0};
            uint32_t cn, ct;
            while (next_field(&c, &cn, &ct, &cp)) {
                if (ct != 2) continue;
                if (cn == 1) {
                    free(r.http_method);
                    r.http_method = wire_str(&cp);
                } else if (cn == 2) {
                    free(path);
                    path = wire_str(&cp);
                }
            }
        } else if (num == 7) {
            free(r.body);
            r.body = wire_str(&pl);
        } else if (num == 12) {
            free(r.response_body);
            r.response_body = wire_str(&pl);
        }
    }
    if (r.body && !*r.body) { free(r.body); r.body = NULL; }
    if (r.response_body && !*r.response_body) { free(r.response_body); r.response_body = NULL; }
    char why[256] = "";
    if (r.http_method && path) {
        if (web_rule_parse_template(&r, path, why, sizeof why) == 0 && bind_method(t, &r, m) < 0)
            snprintf(why, sizeof why, "types of %s not in the descriptors", m->full_name);
        if (why[0]) {
            log_warn("plugin %s: google.api.http of %s: %s; rule left out", plugin, m->full_name, why);
            web_rule_free(&r);
        } else {
            add_rule(t, &r, plugin);
        }
    } else {
        web_rule_free(&r);
    }
    free(path);
    if (depth > 0) return;
    w = start;
    while (next_field(&w, &num, &type, &pl))
        if (num == 11 && type == 2) annotation_rule(t, m, pl, plugin, 1);
}

static void annotated_rules(web_table *t, const rh_plugin_descriptor *d, const char *plugin)
{
    for (size_t s = 0; s < d->n_services; s++) {
        const ProtobufCServiceDescriptor *sd = d->services[s].descriptor;
        if (!sd) continue;
        for (unsigned i = 0; i < sd->n_methods; i++) {
            char name[512];
            snprintf(name, sizeof name, "%s.%s", sd->name, sd->methods[i].name);
            const descpool_symbol *m = descpool_find_kind(t->pool, name, DESCPOOL_METHOD);
            if (!m || !m->u.method->options) continue;
            const ProtobufCMessage *opts = &m->u.method->options->base;
            for (unsigned u = 0; u < opts->n_unknown_fields; u++) {
                const ProtobufCMessageUnknownField *f = &opts->unknown_fields[u];
                if (f->tag != HTTP_RULE_EXTENSION || f->wire_type != PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED)
                    continue;
                /* protobuf-c keeps the length prefix in the data */
                wire w = {f->data, f->data + f->len};
                uint64_t len;
                if (!varint(&w, &len) || len != (uint64_t)(w.end - w.p)) continue;
                annotation_rule(t, m, w, plugin, 0);
            }
        }
    }
}

typedef struct cfg_arg {
    web_table *t;
    const char *plugin;
} cfg_arg;

static void config_key(const char *key, const char *value, void *arg)
{
    (void)key;
    cfg_arg *a = arg;
    config_rules(a->t, value, a->plugin);
}

static web_table *table_build(const reg_snapshot *snap)
{
    web_table *t = calloc(1, sizeof *t);
    if (!t || !(t->pool = descpool_new())) {
        table_free(t);
        return NULL;
    }
    t->generation = snap->generation;
    for (size_t i = 0; i < snap->n_instances; i++) {
        const rh_plugin_descriptor *d = reg_instance_descriptor(snap->instances[i]);
        if (d->descriptor_set && d->descriptor_set_len)
            (void)descpool_add_set(t->pool, d->descriptor_set, d->descriptor_set_len);
    }
    for (size_t i = 0; i < snap->n_instances; i++) {
        reg_instance *inst = snap->instances[i];
        const char *name = reg_instance_name(inst);
        annotated_rules(t, reg_instance_descriptor(inst), name);
        cfg_arg a = {t, name};
        plugin_ctx_config_each(reg_instance_ctx(inst), "http_rule", config_key, &a);
    }
    return t;
}

const web_table *web_table_get(const reg_snapshot *snap)
{
    if (tls_table && tls_table->generation == snap->generation) return tls_table;
    web_table *t = table_build(snap);
    if (!t) return tls_table; /* keep serving the old one */
    table_free(tls_table);
    tls_table = t;
    return t;
}

void web_table_release(void)
{
    table_free(tls_table);
    tls_table = NULL;
}
