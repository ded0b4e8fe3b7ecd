/* Descriptor sources (see catalog.h). */
#include "catalog.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int catalog_init(catalog *cat, const rpcall_opts *o, session *s)
{
    memset(cat, 0, sizeof(*cat));
    cat->pool = descpool_new();
    if (!cat->pool) {
        snprintf(cat->err, sizeof(cat->err), "out of memory");
        return -ENOMEM;
    }
    if (o->n_protosets == 0) {
        cat->reflection = true;
        /* Descriptor answers are not limited by --max-msg-size (which is
         * about the method's responses): big services have big files. */
        reflect_init(&cat->r, s, o->headers, o->n_headers, 64u << 20);
        return 0;
    }
    for (size_t i = 0; i < o->n_protosets; i++) {
        int rc = descpool_add_set_file(cat->pool, o->protosets[i]);
        if (rc < 0) {
            if (rc == -EINVAL)
                snprintf(cat->err, sizeof(cat->err), "--protoset %s: %s; make it with protoc "
                         "--descriptor_set_out=FILE --include_imports", o->protosets[i],
                         descpool_error(cat->pool));
            else
                snprintf(cat->err, sizeof(cat->err), "--protoset %s: %s", o->protosets[i],
                         descpool_error(cat->pool)[0] ? descpool_error(cat->pool)
                                                      : strerror(-rc));
            return rc;
        }
    }
    return 0;
}

void catalog_free(catalog *cat)
{
    if (cat->pool)
        descpool_free(cat->pool);
    cat->pool = NULL;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int catalog_services(catalog *cat, char ***names, size_t *n)
{
    if (cat->reflection) {
        int rc = reflect_list_services(&cat->r, names, n);
        if (rc < 0)
            snprintf(cat->err, sizeof(cat->err), "%s", cat->r.err);
        return rc;
    }
    size_t k;
    const descpool_symbol *const *svcs = descpool_list(cat->pool, DESCPOOL_SERVICE, &k);
    *names = calloc(k ? k : 1, sizeof(char *));
    if (!*names)
        return -ENOMEM;
    for (size_t i = 0; i < k; i++)
        if (!((*names)[i] = strdup(svcs[i]->full_name))) {
            reflect_free_names(*names, i);
            return -ENOMEM;
        }
    *n = k;
    qsort(*names, k, sizeof(char *), cmp_str);
    return 0;
}

int catalog_need(catalog *cat, const char *symbol)
{
    if (descpool_find(cat->pool, symbol))
        return 0;
    if (cat->reflection) {
        int rc = reflect_load_symbol(&cat->r, cat->pool, symbol);
        if (rc < 0) {
            snprintf(cat->err, sizeof(cat->err), "%s", cat->r.err);
            return rc;
        }
        if (descpool_find(cat->pool, symbol))
            return 0;
    }
    snprintf(cat->err, sizeof(cat->err), "symbol '%s' not found%s; 'list' shows the services",
             symbol, cat->reflection ? " on the server" : " in the --protoset files");
    return -ENOENT;
}

/* "a, b, c" of the methods of a service, for messages. */
static void method_names(const descpool_symbol *svc, char *out, size_t len)
{
    size_t used = 0;
    out[0] = 0;
    for (size_t i = 0; i < svc->u.service->n_method && used + 2 < len; i++)
        used += (size_t)snprintf(out + used, len - used, "%s%s", i ? ", " : "",
                                 svc->u.service->method[i]->name);
}

const descpool_symbol *catalog_method(catalog *cat, const char *target)
{
    const char *t = target[0] == '/' ? target + 1 : target;
    char service[512];
    const char *slash = strchr(t, '/');
    const char *sep = slash ? slash : strrchr(t, '.');
    if (!sep || sep == t || !sep[1] || (size_t)(sep - t) >= sizeof(service)) {
        snprintf(cat->err, sizeof(cat->err), "'%s' is not a method name; use SERVICE/METHOD",
                 target);
        return NULL;
    }
    memcpy(service, t, (size_t)(sep - t));
    service[sep - t] = 0;
    int rc = catalog_need(cat, service);
    if (rc < 0) {
        if (rc == -ENOENT && cat->reflection) {
            cat->unknown_service = true;
            snprintf(cat->err, sizeof(cat->err),
                     "Unimplemented: the server's reflection does not know service '%s'; 'list' "
                     "shows the services it has (to call it anyway, describe it with --protoset "
                     "FILE)", service);
        } else if (rc == -ENOENT) {
            snprintf(cat->err, sizeof(cat->err), "service '%s' not found in the --protoset "
                     "files; 'list' shows the services", service);
        }
        return NULL;
    }
    const descpool_symbol *svc = descpool_find_kind(cat->pool, service, DESCPOOL_SERVICE);
    if (!svc) {
        snprintf(cat->err, sizeof(cat->err), "'%s' is not a service", service);
        return NULL;
    }
    const descpool_symbol *m = descpool_find_method(cat->pool, t);
    if (!m) {
        char names[400];
        method_names(svc, names, sizeof(names));
        /* a long list is cut where err ends: the names come last */
        if (snprintf(cat->err, sizeof(cat->err), "service %s has no method '%s' (it has: %s)",
                     service, sep + 1, names) >= (int)sizeof(cat->err))
            memcpy(cat->err + sizeof(cat->err) - 4, "...", 4);
        return NULL;
    }
    return m;
}
