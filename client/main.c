/* rpcall: a command-line gRPC client (list, describe, call, bench).
 * main() parses the command line, opens the session when one is needed,
 * and hands over to the mode. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "catalog.h"
#include "describe.h"
#include "invoke.h"
#include "options.h"
#include "session.h"
#include "statusdetail.h"

/* A reflection or descriptor failure: a gRPC status from the server
 * exits like a call would, anything else is a plain failure. */
static int catalog_failure(const catalog *cat)
{
    fprintf(stderr, "rpcall: %s\n", cat->err);
    if (cat->unknown_service)
        return EXIT_STATUS_BASE + 12; /* what the server would answer: UNIMPLEMENTED */
    if (cat->reflection && cat->r.status_from_call && cat->r.status > 0 &&
        cat->r.status <= 16 && cat->r.status != 12)
        return EXIT_STATUS_BASE + cat->r.status;
    return EXIT_FAIL;
}

static int do_list(const rpcall_opts *o, catalog *cat)
{
    if (!o->target) {
        char **names;
        size_t n;
        if (catalog_services(cat, &names, &n) < 0)
            return catalog_failure(cat);
        for (size_t i = 0; i < n; i++)
            printf("%s\n", names[i]);
        reflect_free_names(names, n);
        return EXIT_OK;
    }
    if (catalog_need(cat, o->target) < 0)
        return catalog_failure(cat);
    const descpool_symbol *svc = descpool_find_kind(cat->pool, o->target, DESCPOOL_SERVICE);
    if (!svc) {
        fprintf(stderr, "rpcall: '%s' is not a service; use describe to see what it is\n",
                o->target);
        return EXIT_FAIL;
    }
    for (size_t i = 0; i < svc->u.service->n_method; i++)
        printf("%s.%s\n", svc->full_name, svc->u.service->method[i]->name);
    return EXIT_OK;
}

static int do_describe(const rpcall_opts *o, catalog *cat)
{
    if (o->target) {
        const char *sym = o->target[0] == '.' ? o->target + 1 : o->target;
        char buf[600];
        snprintf(buf, sizeof(buf), "%s", sym);
        char *slash = strchr(buf, '/'); /* Service/Method -> Service.Method */
        if (slash)
            *slash = '.';
        if (catalog_need(cat, buf) < 0)
            return catalog_failure(cat);
        return describe_symbol(stdout, cat->pool, buf) == 0 ? EXIT_OK : EXIT_FAIL;
    }
    char **names;
    size_t n;
    if (catalog_services(cat, &names, &n) < 0)
        return catalog_failure(cat);
    int rc = EXIT_OK;
    for (size_t i = 0; i < n && rc == EXIT_OK; i++) {
        if (catalog_need(cat, names[i]) < 0)
            rc = catalog_failure(cat);
        else
            describe_symbol(stdout, cat->pool, names[i]);
    }
    reflect_free_names(names, n);
    return rc;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    rpcall_opts o;
    char err[700];
    int rc = options_parse(&o, argc, argv, err, sizeof(err));
    if (rc != 0) {
        options_free(&o);
        if (rc > 0)
            return EXIT_OK;
        fprintf(stderr, "rpcall: %s\nTry 'rpcall --help'.\n", err);
        return EXIT_USAGE;
    }
    if (o.mode == MODE_BENCH) {
        rc = bench_run(&o);
        options_free(&o);
        return rc;
    }
    int64_t start = conn_now_ms();
    session s;
    rc = session_prepare(&s, &o.conn, o.authority, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "rpcall: %s\n", err);
        session_close(&s);
        options_free(&o);
        return rc == -EINVAL && !o.conn.cacert && !o.conn.cert ? EXIT_USAGE : EXIT_FAIL;
    }
    if (o.max_time > 0)
        s.deadline_ms = start + (int64_t)(o.max_time * 1000.0 + 0.5);
    /* --protoset makes list and describe work without a server. */
    bool need_server = o.mode == MODE_CALL || o.n_protosets == 0;
    int exit_code = EXIT_FAIL;
    catalog cat;
    memset(&cat, 0, sizeof(cat));
    if (need_server) {
        int64_t cdl = o.connect_timeout > 0
                          ? start + (int64_t)(o.connect_timeout * 1000.0 + 0.5) : 0;
        rc = session_connect(&s, cdl, err, sizeof(err));
        if (rc < 0) {
            fprintf(stderr, "rpcall: %s\n", err);
            goto out;
        }
    }
    if (catalog_init(&cat, &o, need_server ? &s : NULL) < 0) {
        exit_code = catalog_failure(&cat);
        goto out;
    }
    switch (o.mode) {
    case MODE_LIST:
        exit_code = do_list(&o, &cat);
        break;
    case MODE_DESCRIBE:
        exit_code = do_describe(&o, &cat);
        break;
    case MODE_CALL: {
        const descpool_symbol *m = catalog_method(&cat, o.target);
        if (!m) {
            exit_code = catalog_failure(&cat);
            break;
        }
        if (o.verbose && cat.reflection)
            fprintf(stderr, "Descriptors from server reflection (grpc.reflection.%s)\n\n",
                    cat.r.version == 2 ? "v1alpha" : "v1");
        exit_code = invoke_run(&o, &s, &cat, m);
        break;
    }
    default:
        break;
    }
out:
    fflush(stdout);
    statusdetail_cleanup();
    catalog_free(&cat);
    session_close(&s);
    options_free(&o);
    return exit_code;
}
