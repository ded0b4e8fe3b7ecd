/* Server reflection client (see reflect.h).
 *
 * ServerReflectionRequest:  3 file_by_filename, 4 file_containing_symbol,
 *                           7 list_services (all strings, one of them set)
 * ServerReflectionResponse: 4 file_descriptor_response { 1 repeated bytes },
 *                           6 list_services_response { 1 repeated { 1 name } },
 *                           7 error_response { 1 error_code, 2 error_message }
 * v1 and v1alpha have the same wire format; only the path differs. */
#include "reflect.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pbwire.h"

#define PATH_V1 "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
#define PATH_V1ALPHA "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
#define MAX_FILES 1000 /* bound on the dependency walk */

void reflect_init(reflect *r, session *s, const char *const *md, size_t n_md, size_t max_recv)
{
    memset(r, 0, sizeof(*r));
    r->s = s;
    r->md = md;
    r->n_md = n_md;
    r->max_recv = max_recv;
}

typedef struct answer {
    pbw_buf bytes; /* the first response message */
    int n;
} answer;

static void on_msg(call *c, const uint8_t *msg, size_t len, void *ud)
{
    (void)c;
    answer *a = ud;
    if (a->n++ == 0 && len) {
        a->bytes.p = malloc(len);
        if (a->bytes.p) {
            memcpy(a->bytes.p, msg, len);
            a->bytes.len = a->bytes.cap = len;
        }
    }
}

/* Asks one question on one stream; *out gets the answer's bytes. */
static int ask_version(reflect *r, const char *path, const pbw_buf *req, answer *out)
{
    call_headers hd;
    char err[300];
    /* Reflection asks for no compression: its answers are small. */
    int rc = call_headers_build(&hd, r->s->scheme, r->s->authority, path, 0, r->md, r->n_md,
                                NULL, err, sizeof(err));
    if (rc < 0) {
        snprintf(r->err, sizeof(r->err), "%s", err);
        return rc;
    }
    call c;
    call_cbs cbs = {.on_message = on_msg};
    memset(out, 0, sizeof(*out));
    if (call_start(&c, &r->s->h, &hd, r->max_recv, false, &cbs, out) == 0) {
        call_send(&c, req->p, req->len);
        call_half_close(&c);
        h2c_flush(&r->s->h);
        session_wait(r->s, &c);
    }
    r->status = c.status;
    r->status_from_call = c.status != 0;
    rc = 0;
    if (c.status != 0) {
        snprintf(r->err, sizeof(r->err), "%s", c.message ? c.message : "");
        rc = -EIO;
    } else if (out->n == 0) {
        snprintf(r->err, sizeof(r->err), "the server's reflection service sent no answer");
        r->status = 13;
        r->status_from_call = false;
        rc = -EIO;
    }
    call_free(&c);
    call_headers_free(&hd);
    if (rc < 0)
        pbw_buf_free(&out->bytes);
    return rc;
}

/* Asks with v1, falling back to v1alpha once if the server lacks v1. */
static int ask(reflect *r, const pbw_buf *req, answer *out)
{
    if (r->version == 2)
        return ask_version(r, PATH_V1ALPHA, req, out);
    int rc = ask_version(r, PATH_V1, req, out);
    if (rc == 0) {
        r->version = 1;
        return 0;
    }
    if (r->version == 0 && r->status == 12 /* UNIMPLEMENTED */) {
        rc = ask_version(r, PATH_V1ALPHA, req, out);
        if (rc == 0) {
            r->version = 2;
            return 0;
        }
        if (r->status == 12) {
            snprintf(r->err, sizeof(r->err), "%s does not support server reflection "
                     "(grpc.reflection.v1 and v1alpha are UNIMPLEMENTED); pass --protoset FILE "
                     "(made with protoc --descriptor_set_out --include_imports)",
                     r->s->c.peer);
            return -EPROTO;
        }
    }
    char m[sizeof(r->err)];
    snprintf(m, sizeof(m), "server reflection failed: %s: %.500s", call_code_name(r->status), r->err);
    snprintf(r->err, sizeof(r->err), "%s", m);
    return rc;
}

/* Checks for error_response; returns 0 or -ENOENT/-EIO with r->err set. */
static int answer_error(reflect *r, const answer *a, const char *what)
{
    pbw_reader rd;
    pbw_field f;
    pbw_reader_init(&rd, a->bytes.p, a->bytes.len);
    int rc;
    while ((rc = pbw_next(&rd, &f)) == 1) {
        if (f.number != 7 || f.wire_type != PBW_LEN)
            continue;
        pbw_reader er;
        pbw_field g;
        int code = 2;
        char msg[300] = "";
        pbw_reader_init(&er, f.data, f.len);
        while (pbw_next(&er, &g) == 1) {
            if (g.number == 1 && g.wire_type == PBW_VARINT)
                code = (int)g.u64;
            else if (g.number == 2 && g.wire_type == PBW_LEN)
                snprintf(msg, sizeof(msg), "%.*s", (int)(g.len > 250 ? 250 : g.len),
                         (const char *)g.data);
        }
        r->status = code;
        r->status_from_call = false;
        if (code == 5)
            snprintf(r->err, sizeof(r->err), "the server does not know %s%s%s", what,
                     msg[0] ? ": " : "", msg);
        else
            snprintf(r->err, sizeof(r->err), "server reflection failed for %s: %s: %s", what,
                     call_code_name(code), msg);
        return code == 5 ? -ENOENT : -EIO;
    }
    if (rc < 0) {
        snprintf(r->err, sizeof(r->err), "the server's reflection answer is malformed");
        return -EPROTO;
    }
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void reflect_free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

int reflect_list_services(reflect *r, char ***names, size_t *n)
{
    *names = NULL;
    *n = 0;
    pbw_buf req = {0};
    answer a;
    if (pbw_put_bytes(&req, 7, "", 0) < 0)
        return -ENOMEM;
    int rc = ask(r, &req, &a);
    pbw_buf_free(&req);
    if (rc < 0)
        return rc;
    rc = answer_error(r, &a, "the service list");
    pbw_reader rd, lr, sr;
    pbw_field f, g, h;
    pbw_reader_init(&rd, a.bytes.p, a.bytes.len);
    while (rc == 0 && pbw_next(&rd, &f) == 1) {
        if (f.number != 6 || f.wire_type != PBW_LEN)
            continue;
        pbw_reader_init(&lr, f.data, f.len);
        while (rc == 0 && pbw_next(&lr, &g) == 1) {
            if (g.number != 1 || g.wire_type != PBW_LEN)
                continue;
            pbw_reader_init(&sr, g.data, g.len);
            while (pbw_next(&sr, &h) == 1) {
                if (h.number != 1 || h.wire_type != PBW_LEN)
                    continue;
                char **p = realloc(*names, (*n + 1) * sizeof(char *));
                if (!p || !(p[*n] = strndup((const char *)h.data, h.len))) {
                    if (p)
                        *names = p;
                    rc = -ENOMEM;
                    break;
                }
                *names = p;
                (*n)++;
            }
        }
    }
    pbw_buf_free(&a.bytes);
    if (rc < 0) {
        reflect_free_names(*names, *n);
        *names = NULL;
        *n = 0;
        return rc;
    }
    qsort(*names, *n, sizeof(char *), cmp_str);
    return 0;
}

/* Adds every FileDescriptorProto of an answer to the pool. */
static int add_files(reflect *r, descpool *pool, const answer *a)
{
    pbw_reader rd, fr;
    pbw_field f, g;
    pbw_reader_init(&rd, a->bytes.p, a->bytes.len);
    while (pbw_next(&rd, &f) == 1) {
        if (f.number != 4 || f.wire_type != PBW_LEN)
            continue;
        pbw_reader_init(&fr, f.data, f.len);
        while (pbw_next(&fr, &g) == 1) {
            if (g.number != 1 || g.wire_type != PBW_LEN)
                continue;
            int rc = descpool_add_file(pool, g.data, g.len);
            if (rc < 0) {
                snprintf(r->err, sizeof(r->err), "the server sent a bad file descriptor: %s",
                         descpool_error(pool));
                return rc;
            }
        }
    }
    return 0;
}

static int fetch(reflect *r, descpool *pool, uint32_t field, const char *name, const char *what)
{
    pbw_buf req = {0};
    answer a;
    if (pbw_put_bytes(&req, field, name, strlen(name)) < 0)
        return -ENOMEM;
    int rc = ask(r, &req, &a);
    pbw_buf_free(&req);
    if (rc < 0)
        return rc;
    rc = answer_error(r, &a, what);
    if (rc == 0)
        rc = add_files(r, pool, &a);
    pbw_buf_free(&a.bytes);
    return rc;
}

/* Asks for every dependency of every file in the pool that is missing. */
static int fetch_missing_deps(reflect *r, descpool *pool)
{
    for (int round = 0; round < MAX_FILES; round++) {
        size_t n;
        const Google__Protobuf__FileDescriptorProto *const *files = descpool_files(pool, &n);
        const char *missing = NULL;
        for (size_t i = 0; i < n && !missing; i++)
            for (size_t d = 0; d < files[i]->n_dependency && !missing; d++)
                if (!descpool_file(pool, files[i]->dependency[d]))
                    missing = files[i]->dependency[d];
        if (!missing)
            return 0;
        char what[300], name[256];
        snprintf(name, sizeof(name), "%s", missing);
        snprintf(what, sizeof(what), "file %s", name);
        int rc = fetch(r, pool, 3, name, what);
        if (rc < 0)
            return rc;
        if (!descpool_file(pool, name)) {
            snprintf(r->err, sizeof(r->err), "the server did not send %s, which its "
                     "descriptors import", name);
            return -EPROTO;
        }
    }
    snprintf(r->err, sizeof(r->err), "more than %d descriptor files; giving up", MAX_FILES);
    return -E2BIG;
}

int reflect_load_symbol(reflect *r, descpool *pool, const char *symbol)
{
    const char *sym = symbol[0] == '.' ? symbol + 1 : symbol;
    char what[300];
    snprintf(what, sizeof(what), "the symbol '%s'", sym);
    int rc = fetch(r, pool, 4, sym, what);
    /* Servers may index only top-level names: try the enclosing ones
     * ("pkg.Msg.field" -> "pkg.Msg"). */
    char buf[512];
    snprintf(buf, sizeof(buf), "%s", sym);
    while (rc == -ENOENT) {
        char *dot = strrchr(buf, '.');
        if (!dot)
            break;
        *dot = 0;
        char saved[sizeof(r->err)];
        snprintf(saved, sizeof(saved), "%s", r->err);
        rc = fetch(r, pool, 4, buf, what);
        if (rc == -ENOENT)
            snprintf(r->err, sizeof(r->err), "%s", saved);
        else if (rc == 0 && !descpool_find(pool, sym)) {
            snprintf(r->err, sizeof(r->err), "%s", saved);
            rc = -ENOENT;
            break;
        }
    }
    if (rc < 0)
        return rc;
    return fetch_missing_deps(r, pool);
}
