/* lib/descpool: byte 0 bit 0 picks descpool_add_set (0) or
 * descpool_add_file (1) for the rest of the input. Whatever was added is
 * then walked through every lookup the pool offers (each symbol found by
 * its name, with and without the leading dot, and by its descriptor; each
 * field's type resolved; each file's closure and bytes; each method by
 * path), and, with bit 1 set, each message (up to 16) decodes the input as
 * wire data with json_pb and must encode its own JSON output again: the
 * schemas of a hostile set must not crash the transcoder either. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "descpool.h"
#include "fuzz.h"
#include "json_pb.h"

static void walk_symbols(const descpool *pool)
{
    for (int k = DESCPOOL_PACKAGE; k < DESCPOOL_KIND_COUNT; k++) {
        size_t n = 0;
        const descpool_symbol *const *v = descpool_list(pool, (descpool_kind)k, &n);
        for (size_t i = 0; i < n; i++) {
            const descpool_symbol *s = v[i];
            FUZZ_CHECK(s->kind == (descpool_kind)k, "kind");
            FUZZ_CHECK(descpool_find(pool, s->full_name) == s, "%s not found", s->full_name);
            size_t fl = strlen(s->full_name);
            char *dotted = malloc(fl + 2);
            if (dotted) {
                dotted[0] = '.';
                memcpy(dotted + 1, s->full_name, fl + 1);
                FUZZ_CHECK(descpool_find(pool, dotted) == s, "%s not found", dotted);
                free(dotted);
            }
            FUZZ_CHECK(s->name && strlen(s->name) <= fl, "name");
            if (s->u.any && k != DESCPOOL_FIELD && k != DESCPOOL_ONEOF &&
                k != DESCPOOL_ENUM_VALUE && k != DESCPOOL_METHOD)
                FUZZ_CHECK(descpool_symbol_of(pool, s->u.any) == s, "reverse lookup");
            if (k == DESCPOOL_MESSAGE) {
                const Google__Protobuf__DescriptorProto *m = s->u.message;
                for (size_t f = 0; f < m->n_field; f++) {
                    const Google__Protobuf__FieldDescriptorProto *fd = m->field[f];
                    if (fd->type_name) descpool_resolve(pool, s->full_name, fd->type_name);
                    if (fd->name) {
                        char buf[256];
                        const char *jn = fd->json_name
                                             ? fd->json_name
                                             : descpool_json_name(fd->name, buf, sizeof buf);
                        FUZZ_CHECK(descpool_field_by_json_name(m, jn) != NULL ||
                                       strlen(fd->name) >= sizeof buf,
                                   "field %s not found by its JSON name %s", fd->name, jn);
                        FUZZ_CHECK(descpool_field_by_name(m, fd->name) != NULL, "by name");
                    }
                    FUZZ_CHECK(descpool_field_by_number(m, fd->number) != NULL, "by number");
                }
                descpool_is_map_entry(m);
            }
            if (k == DESCPOOL_METHOD && s->parent) {
                size_t pl = strlen(s->parent->full_name), nl = strlen(s->name);
                char *path = malloc(pl + nl + 3);
                if (path) {
                    snprintf(path, pl + nl + 3, "/%s/%s", s->parent->full_name, s->name);
                    const descpool_symbol *m = descpool_find_method(pool, path);
                    FUZZ_CHECK(m && m->kind == DESCPOOL_METHOD, "%s not found", path);
                    free(path);
                }
                const Google__Protobuf__MethodDescriptorProto *md = s->u.method;
                descpool_resolve(pool, NULL, md->input_type);
                descpool_resolve(pool, NULL, md->output_type);
            }
        }
    }
}

static void walk_files(const descpool *pool)
{
    size_t n = 0;
    const Google__Protobuf__FileDescriptorProto *const *files = descpool_files(pool, &n);
    for (size_t i = 0; i < n; i++) {
        FUZZ_CHECK(descpool_file(pool, files[i]->name) == files[i], "file by name");
        size_t len = 0;
        FUZZ_CHECK(descpool_file_bytes(pool, files[i], &len) != NULL, "file bytes");
        const Google__Protobuf__FileDescriptorProto **clo = NULL;
        size_t cn = 0;
        int rv = descpool_file_closure(pool, files[i], &clo, &cn);
        FUZZ_CHECK(rv == 0 || rv == -ENOENT || rv == -ENOMEM, "closure %d", rv);
        if (clo) {
            FUZZ_CHECK(cn >= 1 && cn <= n && clo[cn - 1] == files[i], "closure order");
            for (size_t a = 0; a < cn; a++)
                for (size_t b = a + 1; b < cn; b++) FUZZ_CHECK(clo[a] != clo[b], "twice");
        }
        free(clo);
    }
}

static void transcode(const descpool *pool, const uint8_t *data, size_t size)
{
    size_t n = 0;
    const descpool_symbol *const *v = descpool_list(pool, DESCPOOL_MESSAGE, &n);
    for (size_t i = 0; i < n && i < 16; i++) {
        char *text = NULL;
        json_pb_error err = {{0}};
        int rv = json_pb_decode(pool, v[i]->full_name, data, size, JSON_PB_COMPACT, &text,
                                &err);
        FUZZ_CHECK(rv == 0 || rv == -EINVAL || rv == -ENOENT || rv == -ENOMEM,
                   "decode returned %d", rv);
        if (rv == 0) {
            uint8_t *wire = NULL;
            size_t wlen = 0;
            json_pb_error e2 = {{0}};
            int r2 = json_pb_encode(pool, v[i]->full_name, text, strlen(text), &wire, &wlen,
                                    &e2);
            /* A schema json_pb cannot encode (a bogus type name) may be
             * refused, but only with a reason. */
            FUZZ_CHECK(r2 == 0 || (r2 < 0 && e2.text[0]), "encode %d without a reason", r2);
            free(wire);
            free(text);
        } else {
            FUZZ_CHECK(err.text[0], "decode %d without a reason", rv);
        }
        uint8_t *wire = NULL;
        size_t wlen = 0;
        json_pb_error e3 = {{0}};
        if (json_pb_encode(pool, v[i]->full_name, "{}", 2, &wire, &wlen, &e3) == 0)
            FUZZ_CHECK(wlen == 0, "{} encoded to %zu bytes", wlen);
        free(wire);
    }
}

/* A FileDescriptorProto whose message nests `levels` DescriptorProtos
 * (nested_type): protobuf-c would recurse once per level and overflow the
 * stack at about 10,000; the pool must refuse it before unpacking. */
static void deep_file(size_t levels)
{
    size_t cap = levels * 6 + 64;
    uint8_t *buf = malloc(cap), *p = buf + cap;
    if (!buf) return;
    for (size_t i = 0; i < levels; i++) {
        p = prepend_varint(p, (size_t)(buf + cap - p));
        *--p = 0x1a; /* DescriptorProto.nested_type */
    }
    p = prepend_varint(p, (size_t)(buf + cap - p));
    *--p = 0x22; /* FileDescriptorProto.message_type */
    static const char name[] = "\x0a\x0a" "deep.proto";
    p -= sizeof name - 1;
    memcpy(p, name, sizeof name - 1);
    descpool *pool = descpool_new();
    if (pool) {
        int rv = descpool_add_file(pool, p, (size_t)(buf + cap - p));
        FUZZ_CHECK(rv == -EINVAL, "%zu levels: returned %d", levels, rv);
        descpool_free(pool);
    }
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool once;
    if (!once) {
        once = true;
        deep_file(200);
        deep_file(200000);
    }
    if (size < 1) return 0;
    uint8_t *copy = malloc(size - 1 ? size - 1 : 1);
    descpool *pool = descpool_new();
    if (!copy || !pool) goto done;
    memcpy(copy, data + 1, size - 1);
    int rv = data[0] & 1 ? descpool_add_file(pool, copy, size - 1)
                         : descpool_add_set(pool, copy, size - 1);
    FUZZ_CHECK(rv == 0 || rv == -EINVAL || rv == -ENOMEM, "add returned %d", rv);
    if (rv == -EINVAL) FUZZ_CHECK(descpool_error(pool)[0], "no reason for -EINVAL");
    walk_symbols(pool);
    walk_files(pool);
    if (data[0] & 2) transcode(pool, copy, size - 1);
done:
    descpool_free(pool);
    free(copy);
    return 0;
}

FUZZ_CASES(FUZZ_CASE("\x00"), FUZZ_CASE("\x00\x0a\x00"), FUZZ_CASE("\x01\x0a\x01x"),
           FUZZ_CASE("\x00\x0a\x05\x0a\x03" "a.p" "\x0a\x05\x0a\x03" "a.p"),
           FUZZ_CASE("\x00\x00\x00"), FUZZ_CASE("\x00\x0a\xff\xff\xff\xff\x0f"));
