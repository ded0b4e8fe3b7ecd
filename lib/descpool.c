/* descpool: files and symbols of FileDescriptorSets, indexed by name.
 *
 * Every file is unpacked on its own from the exact bytes it had inside the
 * set, so reflection can hand those bytes back unchanged. Symbols are
 * allocated one by one (stable addresses) and indexed in two open-addressing
 * hash tables: by full name, and by descriptor address (reverse lookup). */
#include "descpool.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pb_depth.h"

typedef Google__Protobuf__FileDescriptorProto file_proto;
typedef Google__Protobuf__DescriptorProto msg_proto;
typedef Google__Protobuf__EnumDescriptorProto enum_proto;
typedef Google__Protobuf__ServiceDescriptorProto svc_proto;

/* Largest set we accept (a protoset of a big API is a few MiB). */
#define DESCPOOL_MAX_SET (256u << 20)
/* Nesting of messages inside messages: deeper is surely garbage. */
#define DESCPOOL_MAX_NEST 100

/* ---- a small open-addressing hash table -------------------------------- */

typedef struct dp_slot {
    const void *key; /* string (by value) or pointer (by address) */
    void *val;
} dp_slot;

typedef struct dp_map {
    dp_slot *slots;
    size_t cap; /* power of two or 0 */
    size_t len;
    bool by_string;
} dp_map;

static uint64_t dp_hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    while (*s) {
        h ^= (unsigned char)*s++;
        h *= 1099511628211ull;
    }
    return h;
}

static uint64_t dp_hash_ptr(const void *p)
{
    uint64_t x = (uint64_t)(uintptr_t)p;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

static uint64_t dp_map_hash(const dp_map *m, const void *key)
{
    return m->by_string ? dp_hash_str(key) : dp_hash_ptr(key);
}

static bool dp_map_eq(const dp_map *m, const void *a, const void *b)
{
    return m->by_string ? strcmp(a, b) == 0 : a == b;
}

static dp_slot *dp_map_slot(const dp_map *m, const void *key)
{
    if (!m->cap)
        return NULL;
    size_t mask = m->cap - 1;
    for (size_t i = dp_map_hash(m, key) & mask;; i = (i + 1) & mask) {
        dp_slot *s = &m->slots[i];
        if (!s->key || dp_map_eq(m, s->key, key))
            return s;
    }
}

static void *dp_map_get(const dp_map *m, const void *key)
{
    dp_slot *s = dp_map_slot(m, key);
    return s && s->key ? s->val : NULL;
}

static int dp_map_grow(dp_map *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 64;
    dp_slot *old = m->slots;
    size_t ocap = m->cap;
    m->slots = calloc(ncap, sizeof *m->slots);
    if (!m->slots) {
        m->slots = old;
        return -ENOMEM;
    }
    m->cap = ncap;
    for (size_t i = 0; i < ocap; i++)
        if (old[i].key)
            *dp_map_slot(m, old[i].key) = old[i];
    free(old);
    return 0;
}

/* Inserts key -> val unless key is present. 1 inserted, 0 present, -ENOMEM. */
static int dp_map_put(dp_map *m, const void *key, void *val)
{
    if ((m->len + 1) * 4 > m->cap * 3 && dp_map_grow(m) < 0)
        return -ENOMEM;
    dp_slot *s = dp_map_slot(m, key);
    if (s->key)
        return 0;
    s->key = key;
    s->val = val;
    m->len++;
    return 1;
}

/* ---- the pool ----------------------------------------------------------- */

typedef struct dp_file {
    file_proto *proto; /* unpacked, owned */
    uint8_t *bytes;    /* serialized, owned */
    size_t len;
} dp_file;

typedef struct dp_vec {
    void **items;
    size_t len, cap;
} dp_vec;

struct descpool {
    dp_file *files;
    size_t n_files, cap_files;
    const file_proto **file_list; /* for descpool_files() */
    dp_map file_by_name;          /* name -> dp_file index + 1 */
    dp_map sym_by_name;           /* full name -> descpool_symbol */
    dp_map sym_by_desc;           /* descriptor address -> descpool_symbol */
    dp_vec by_kind[DESCPOOL_KIND_COUNT];
    dp_vec owned_syms;            /* every symbol allocated, to free */
    char error[256];
};

static int dp_vec_push(dp_vec *v, void *item)
{
    if (v->len == v->cap) {
        size_t ncap = v->cap ? v->cap * 2 : 16;
        void **n = realloc(v->items, ncap * sizeof *n);
        if (!n)
            return -ENOMEM;
        v->items = n;
        v->cap = ncap;
    }
    v->items[v->len++] = item;
    return 0;
}

__attribute__((format(printf, 2, 3)))
static int dp_fail(descpool *pool, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pool->error, sizeof pool->error, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

descpool *descpool_new(void)
{
    descpool *pool = calloc(1, sizeof *pool);
    if (!pool)
        return NULL;
    pool->file_by_name.by_string = true;
    pool->sym_by_name.by_string = true;
    pool->sym_by_desc.by_string = false;
    return pool;
}

void descpool_free(descpool *pool)
{
    if (!pool)
        return;
    for (size_t i = 0; i < pool->owned_syms.len; i++) {
        descpool_symbol *s = pool->owned_syms.items[i];
        free((char *)s->full_name);
        free(s);
    }
    free(pool->owned_syms.items);
    for (size_t k = 0; k < DESCPOOL_KIND_COUNT; k++)
        free(pool->by_kind[k].items);
    for (size_t i = 0; i < pool->n_files; i++) {
        google__protobuf__file_descriptor_proto__free_unpacked(pool->files[i].proto, NULL);
        free(pool->files[i].bytes);
    }
    free(pool->files);
    free(pool->file_list);
    free(pool->file_by_name.slots);
    free(pool->sym_by_name.slots);
    free(pool->sym_by_desc.slots);
    free(pool);
}

const char *descpool_error(const descpool *pool)
{
    return pool->error;
}

/* ---- indexing symbols --------------------------------------------------- */

static char *dp_join(const char *scope, const char *name)
{
    size_t a = scope ? strlen(scope) : 0, b = strlen(name);
    char *s = malloc(a + b + 2);
    if (!s)
        return NULL;
    if (a) {
        memcpy(s, scope, a);
        s[a++] = '.';
    }
    memcpy(s + a, name, b + 1);
    return s;
}

/* protoc's rule for a name: letters, digits and '_' (no dots: a dot in a
 * name would make it another symbol's full name, and "" or "." none). */
static bool dp_name_ok(const char *name)
{
    for (const char *p = name; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_')
            return false;
    return true;
}

/* Adds one symbol. A full name already defined keeps its first definition
 * (returns 0 with *out = NULL so children are not indexed twice). */
static int dp_add_sym(descpool *pool, descpool_kind kind, const char *scope, const char *name,
                      const file_proto *file, const descpool_symbol *parent,
                      const void *desc, const descpool_symbol **out)
{
    if (out)
        *out = NULL;
    if (!name || !*name)
        return dp_fail(pool, "%s: a definition has no name", file->name);
    if (kind != DESCPOOL_PACKAGE && !dp_name_ok(name))
        return dp_fail(pool, "%s: \"%.64s\" is not a valid name (letters, digits, _)",
                       file->name, name);
    descpool_symbol *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->full_name = dp_join(scope, name);
    bool dup = s->full_name && dp_map_get(&pool->sym_by_name, s->full_name);
    if (!s->full_name || dup || dp_vec_push(&pool->owned_syms, s) < 0) {
        free((char *)s->full_name);
        free(s);
        return dup ? 0 : -ENOMEM; /* a duplicate keeps its first definition */
    }
    s->name = strrchr(s->full_name, '.') ? strrchr(s->full_name, '.') + 1 : s->full_name;
    s->kind = kind;
    s->file = file;
    s->parent = parent;
    s->u.any = desc;
    /* From here s is owned by the pool (owned_syms) whatever fails. */
    if (dp_map_put(&pool->sym_by_name, s->full_name, s) < 0 ||
        dp_vec_push(&pool->by_kind[kind], s) < 0 ||
        (desc && dp_map_put(&pool->sym_by_desc, desc, s) < 0))
        return -ENOMEM;
    if (out)
        *out = s;
    return 0;
}

static int dp_index_enum(descpool *pool, const file_proto *file, const char *scope,
                         const descpool_symbol *parent, const enum_proto *e)
{
    const descpool_symbol *es;
    int rc = dp_add_sym(pool, DESCPOOL_ENUM, scope, e->name, file, parent, e, &es);
    if (rc < 0 || !es)
        return rc;
    /* Enum values are siblings of their enum (C++ scoping rules). */
    for (size_t i = 0; i < e->n_value; i++) {
        rc = dp_add_sym(pool, DESCPOOL_ENUM_VALUE, scope, e->value[i]->name, file, es,
                        e->value[i], NULL);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int dp_index_message(descpool *pool, const file_proto *file, const char *scope,
                            const descpool_symbol *parent, const msg_proto *m, int depth)
{
    if (depth > DESCPOOL_MAX_NEST)
        return dp_fail(pool, "%s: messages nested too deeply", file->name);
    const descpool_symbol *ms;
    int rc = dp_add_sym(pool, DESCPOOL_MESSAGE, scope, m->name, file, parent, m, &ms);
    if (rc < 0 || !ms)
        return rc;
    for (size_t i = 0; i < m->n_field && rc == 0; i++)
        rc = dp_add_sym(pool, DESCPOOL_FIELD, ms->full_name, m->field[i]->name, file, ms,
                        m->field[i], NULL);
    for (size_t i = 0; i < m->n_oneof_decl && rc == 0; i++)
        rc = dp_add_sym(pool, DESCPOOL_ONEOF, ms->full_name, m->oneof_decl[i]->name, file, ms,
                        m->oneof_decl[i], NULL);
    for (size_t i = 0; i < m->n_nested_type && rc == 0; i++)
        rc = dp_index_message(pool, file, ms->full_name, ms, m->nested_type[i], depth + 1);
    for (size_t i = 0; i < m->n_enum_type && rc == 0; i++)
        rc = dp_index_enum(pool, file, ms->full_name, ms, m->enum_type[i]);
    return rc;
}

static int dp_index_package(descpool *pool, const file_proto *file)
{
    const char *pkg = file->package;
    if (!pkg || !*pkg)
        return 0;
    /* "a.b.c" defines packages "a", "a.b" and "a.b.c". */
    size_t n = strlen(pkg);
    for (size_t i = 0; i <= n; i++) { /* identifiers joined by single dots */
        bool sep = pkg[i] == '.' || pkg[i] == '\0';
        if (sep ? i == 0 || pkg[i - 1] == '.' : !isalnum((unsigned char)pkg[i]) && pkg[i] != '_')
            return dp_fail(pool, "%s: package \"%.64s\" is not a valid name", file->name, pkg);
    }
    char *buf = malloc(n + 1);
    if (!buf)
        return -ENOMEM;
    int rc = 0;
    for (size_t i = 0; i <= n && rc == 0; i++) {
        if (pkg[i] != '.' && pkg[i] != '\0')
            continue;
        memcpy(buf, pkg, i);
        buf[i] = '\0';
        if (!dp_map_get(&pool->sym_by_name, buf))
            rc = dp_add_sym(pool, DESCPOOL_PACKAGE, NULL, buf, file, NULL, NULL, NULL);
    }
    free(buf);
    return rc;
}

static int dp_index_file(descpool *pool, const file_proto *f)
{
    const char *pkg = f->package && *f->package ? f->package : NULL;
    int rc = dp_index_package(pool, f);
    for (size_t i = 0; i < f->n_message_type && rc == 0; i++)
        rc = dp_index_message(pool, f, pkg, NULL, f->message_type[i], 0);
    for (size_t i = 0; i < f->n_enum_type && rc == 0; i++)
        rc = dp_index_enum(pool, f, pkg, NULL, f->enum_type[i]);
    for (size_t i = 0; i < f->n_service && rc == 0; i++) {
        const svc_proto *s = f->service[i];
        const descpool_symbol *ss;
        rc = dp_add_sym(pool, DESCPOOL_SERVICE, pkg, s->name, f, NULL, s, &ss);
        for (size_t j = 0; ss && j < s->n_method && rc == 0; j++)
            rc = dp_add_sym(pool, DESCPOOL_METHOD, ss->full_name, s->method[j]->name, f, ss,
                            s->method[j], NULL);
    }
    return rc;
}

/* ---- adding files ------------------------------------------------------- */

/* Takes one serialized FileDescriptorProto (copied). */
static int dp_add_file_bytes(descpool *pool, const uint8_t *data, size_t len)
{
    /* protobuf-c has no recursion limit (DescriptorProto nests itself). */
    if (pb_depth_check(&google__protobuf__file_descriptor_proto__descriptor, data, len,
                       DESCPOOL_MAX_NEST + 20) < 0)
        return dp_fail(pool, "a FileDescriptorProto nests messages more than %d levels deep",
                       DESCPOOL_MAX_NEST);
    file_proto *f = google__protobuf__file_descriptor_proto__unpack(NULL, len, data);
    if (!f)
        return dp_fail(pool, "not a valid FileDescriptorProto (%zu bytes)", len);
    if (!f->name || !*f->name) {
        google__protobuf__file_descriptor_proto__free_unpacked(f, NULL);
        return dp_fail(pool, "a FileDescriptorProto has no name");
    }
    if (dp_map_get(&pool->file_by_name, f->name)) {
        google__protobuf__file_descriptor_proto__free_unpacked(f, NULL);
        return 0; /* same file from another set */
    }
    if (pool->n_files == pool->cap_files) {
        size_t ncap = pool->cap_files ? pool->cap_files * 2 : 16;
        dp_file *nf = realloc(pool->files, ncap * sizeof *nf);
        const file_proto **nl = nf ? realloc(pool->file_list, ncap * sizeof *nl) : NULL;
        if (nf)
            pool->files = nf;
        if (!nl) {
            google__protobuf__file_descriptor_proto__free_unpacked(f, NULL);
            return -ENOMEM;
        }
        pool->file_list = nl;
        pool->cap_files = ncap;
    }
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy) {
        google__protobuf__file_descriptor_proto__free_unpacked(f, NULL);
        return -ENOMEM;
    }
    memcpy(copy, data, len);
    size_t idx = pool->n_files++;
    pool->files[idx] = (dp_file){f, copy, len};
    pool->file_list[idx] = f;
    if (dp_map_put(&pool->file_by_name, f->name, (void *)(uintptr_t)(idx + 1)) < 0)
        return -ENOMEM;
    return dp_index_file(pool, f);
}

/* Reads a base-128 varint; returns bytes used or 0 if truncated/too long. */
static size_t dp_varint(const uint8_t *p, size_t len, uint64_t *v)
{
    uint64_t x = 0;
    for (size_t i = 0; i < len && i < 10; i++) {
        x |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if (!(p[i] & 0x80)) {
            *v = x;
            return i + 1;
        }
    }
    return 0;
}

int descpool_add_set(descpool *pool, const uint8_t *data, size_t len)
{
    pool->error[0] = '\0';
    if (len > DESCPOOL_MAX_SET)
        return dp_fail(pool, "descriptor set too large (%zu bytes)", len);
    /* Walk the set's fields ourselves so each file keeps its exact bytes:
     * FileDescriptorSet is `repeated FileDescriptorProto file = 1`. */
    size_t off = 0;
    while (off < len) {
        uint64_t key, flen;
        size_t n = dp_varint(data + off, len - off, &key);
        if (!n)
            return dp_fail(pool, "not a FileDescriptorSet: truncated at byte %zu", off);
        off += n;
        unsigned wt = key & 7;
        uint64_t field = key >> 3;
        if (wt == 2) {
            n = dp_varint(data + off, len - off, &flen);
            if (!n || flen > len - off - n)
                return dp_fail(pool, "not a FileDescriptorSet: truncated at byte %zu", off);
            off += n;
            if (field == 1) {
                int rc = dp_add_file_bytes(pool, data + off, (size_t)flen);
                if (rc < 0)
                    return rc;
            }
            off += (size_t)flen;
        } else if (wt == 0) {
            n = dp_varint(data + off, len - off, &flen);
            if (!n)
                return dp_fail(pool, "not a FileDescriptorSet: truncated at byte %zu", off);
            off += n;
        } else if (wt == 1 || wt == 5) {
            size_t w = wt == 1 ? 8 : 4;
            if (len - off < w)
                return dp_fail(pool, "not a FileDescriptorSet: truncated at byte %zu", off);
            off += w;
        } else {
            return dp_fail(pool, "not a FileDescriptorSet: bad wire type %u at byte %zu", wt,
                           off);
        }
        if (field == 0)
            return dp_fail(pool, "not a FileDescriptorSet: field number 0");
    }
    return 0;
}

int descpool_add_file(descpool *pool, const uint8_t *data, size_t len)
{
    pool->error[0] = '\0';
    if (len > DESCPOOL_MAX_SET)
        return dp_fail(pool, "file descriptor too large (%zu bytes)", len);
    return dp_add_file_bytes(pool, data, len);
}

int descpool_add_set_file(descpool *pool, const char *path)
{
    pool->error[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        snprintf(pool->error, sizeof pool->error, "cannot open %s: %s", path, strerror(e));
        return -e;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > DESCPOOL_MAX_SET) {
        close(fd);
        return dp_fail(pool, "%s: not a regular file of at most %u bytes", path,
                       DESCPOOL_MAX_SET);
    }
    size_t size = (size_t)st.st_size, got = 0;
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    while (got < size) {
        ssize_t r = read(fd, buf + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int e = r < 0 ? errno : EIO;
            snprintf(pool->error, sizeof pool->error, "cannot read %s: %s", path, strerror(e));
            free(buf);
            close(fd);
            return -e;
        }
        got += (size_t)r;
    }
    close(fd);
    int rc = descpool_add_set(pool, buf, size);
    if (rc == -EINVAL) {
        char why[sizeof pool->error];
        memcpy(why, pool->error, sizeof why);
        snprintf(pool->error, sizeof pool->error, "%.90s: %.90s (make it with protoc "
                 "--include_imports --descriptor_set_out)", path, why);
    }
    free(buf);
    return rc;
}

/* ---- lookups ------------------------------------------------------------ */

const descpool_symbol *descpool_find(const descpool *pool, const char *full_name)
{
    if (!full_name)
        return NULL;
    if (*full_name == '.')
        full_name++;
    return dp_map_get(&pool->sym_by_name, full_name);
}

const descpool_symbol *descpool_find_kind(const descpool *pool, const char *full_name,
                                          descpool_kind kind)
{
    const descpool_symbol *s = descpool_find(pool, full_name);
    return s && s->kind == kind ? s : NULL;
}

const descpool_symbol *descpool_find_method(const descpool *pool, const char *path)
{
    if (!path)
        return NULL;
    if (*path == '/')
        path++;
    size_t n = strlen(path);
    char *buf = malloc(n + 1);
    if (!buf)
        return NULL;
    memcpy(buf, path, n + 1);
    char *slash = strrchr(buf, '/');
    if (slash)
        *slash = '.';
    const descpool_symbol *s = descpool_find_kind(pool, buf, DESCPOOL_METHOD);
    free(buf);
    return s;
}

static bool dp_is_type(const descpool_symbol *s)
{
    return s && (s->kind == DESCPOOL_MESSAGE || s->kind == DESCPOOL_ENUM);
}

const descpool_symbol *descpool_resolve(const descpool *pool, const char *scope,
                                        const char *type_name)
{
    if (!type_name || !*type_name)
        return NULL;
    if (*type_name == '.') {
        const descpool_symbol *s = descpool_find(pool, type_name + 1);
        return dp_is_type(s) ? s : NULL;
    }
    /* Innermost scope first: "a.b.C" + "T" tries a.b.C.T, a.b.T, a.T, T. */
    size_t sl = scope ? strlen(scope) : 0, tl = strlen(type_name);
    char *buf = malloc(sl + tl + 2);
    if (!buf)
        return NULL;
    const descpool_symbol *found = NULL;
    for (;;) {
        size_t n = sl;
        if (n) {
            memcpy(buf, scope, n);
            buf[n++] = '.';
        }
        memcpy(buf + n, type_name, tl + 1);
        const descpool_symbol *s = dp_map_get(&pool->sym_by_name, buf);
        if (dp_is_type(s)) {
            found = s;
            break;
        }
        if (!sl)
            break;
        while (sl && scope[sl - 1] != '.')
            sl--;
        if (sl)
            sl--; /* drop the dot */
    }
    free(buf);
    return found;
}

const descpool_symbol *descpool_symbol_of(const descpool *pool, const void *descriptor)
{
    return descriptor ? dp_map_get(&pool->sym_by_desc, descriptor) : NULL;
}

const descpool_symbol *const *descpool_list(const descpool *pool, descpool_kind kind,
                                            size_t *n)
{
    if ((unsigned)kind >= DESCPOOL_KIND_COUNT) {
        *n = 0;
        return NULL;
    }
    *n = pool->by_kind[kind].len;
    return (const descpool_symbol *const *)pool->by_kind[kind].items;
}

/* ---- files -------------------------------------------------------------- */

static const dp_file *dp_file_entry(const descpool *pool, const char *name)
{
    uintptr_t idx = name ? (uintptr_t)dp_map_get(&pool->file_by_name, name) : 0;
    return idx ? &pool->files[idx - 1] : NULL;
}

const Google__Protobuf__FileDescriptorProto *descpool_file(const descpool *pool,
                                                           const char *name)
{
    const dp_file *e = dp_file_entry(pool, name);
    return e ? e->proto : NULL;
}

const Google__Protobuf__FileDescriptorProto *const *descpool_files(const descpool *pool,
                                                                   size_t *n)
{
    *n = pool->n_files;
    return pool->file_list;
}

typedef struct dp_closure {
    const descpool *pool;
    const file_proto **out;
    size_t n, cap;
    bool missing;
} dp_closure;

static bool dp_closure_has(const dp_closure *c, const file_proto *f)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->out[i] == f)
            return true;
    return false;
}

/* Post-order walk; `visiting` marks files on the current path so a cycle
 * (invalid, but possible in hostile input) ends instead of recursing. */
static int dp_closure_walk(dp_closure *c, const file_proto *f, const file_proto **path,
                           size_t depth)
{
    if (dp_closure_has(c, f))
        return 0;
    for (size_t i = 0; i < depth; i++)
        if (path[i] == f)
            return 0;
    if (depth >= c->pool->n_files)
        return 0;
    path[depth] = f;
    for (size_t i = 0; i < f->n_dependency; i++) {
        const file_proto *d = descpool_file(c->pool, f->dependency[i]);
        if (!d) {
            c->missing = true;
            continue;
        }
        int rc = dp_closure_walk(c, d, path, depth + 1);
        if (rc < 0)
            return rc;
    }
    if (c->n == c->cap)
        return -ENOMEM; /* cap is n_files: cannot happen */
    c->out[c->n++] = f;
    return 0;
}

int descpool_file_closure(const descpool *pool,
                          const Google__Protobuf__FileDescriptorProto *file,
                          const Google__Protobuf__FileDescriptorProto ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    size_t cap = pool->n_files ? pool->n_files : 1;
    dp_closure c = {pool, calloc(cap, sizeof(*c.out)), 0, cap, false};
    const file_proto **path = calloc(cap + 1, sizeof *path);
    if (!c.out || !path) {
        free(c.out);
        free(path);
        return -ENOMEM;
    }
    int rc = dp_closure_walk(&c, file, path, 0);
    free(path);
    if (rc < 0) {
        free(c.out);
        return rc;
    }
    *out = c.out;
    *n = c.n;
    return c.missing ? -ENOENT : 0;
}

const uint8_t *descpool_file_bytes(const descpool *pool,
                                   const Google__Protobuf__FileDescriptorProto *file,
                                   size_t *len)
{
    const dp_file *e = file ? dp_file_entry(pool, file->name) : NULL;
    if (!e || e->proto != file) {
        *len = 0;
        return NULL;
    }
    *len = e->len;
    return e->bytes;
}

/* ---- message helpers ---------------------------------------------------- */

const Google__Protobuf__FieldDescriptorProto *
descpool_field_by_number(const Google__Protobuf__DescriptorProto *msg, int32_t number)
{
    for (size_t i = 0; i < msg->n_field; i++)
        if (msg->field[i]->number == number)
            return msg->field[i];
    return NULL;
}

const Google__Protobuf__FieldDescriptorProto *
descpool_field_by_name(const Google__Protobuf__DescriptorProto *msg, const char *name)
{
    for (size_t i = 0; i < msg->n_field; i++)
        if (msg->field[i]->name && strcmp(msg->field[i]->name, name) == 0)
            return msg->field[i];
    return NULL;
}

char *descpool_json_name(const char *proto_name, char *buf, size_t size)
{
    /* protoc's rule: drop each '_' and upper-case the letter after it. */
    size_t o = 0;
    bool upper = false;
    if (!size)
        return buf;
    for (const char *p = proto_name; *p && o + 1 < size; p++) {
        if (*p == '_') {
            upper = true;
            continue;
        }
        buf[o++] = upper ? (char)toupper((unsigned char)*p) : *p;
        upper = false;
    }
    buf[o] = '\0';
    return buf;
}

const Google__Protobuf__FieldDescriptorProto *
descpool_field_by_json_name(const Google__Protobuf__DescriptorProto *msg, const char *name)
{
    char buf[256];
    for (size_t i = 0; i < msg->n_field; i++) {
        const Google__Protobuf__FieldDescriptorProto *f = msg->field[i];
        const char *jn = f->json_name;
        if (!jn)
            jn = descpool_json_name(f->name ? f->name : "", buf, sizeof buf);
        if (strcmp(jn, name) == 0)
            return f;
    }
    return descpool_field_by_name(msg, name);
}

int descpool_is_map_entry(const Google__Protobuf__DescriptorProto *msg)
{
    return msg->options && msg->options->has_map_entry && msg->options->map_entry;
}
