/* descpool: lookups of every kind of symbol, type resolution, dependency
 * closure, serialized files, bad input. The set is protoc's own output for
 * jsontest.proto and rides.proto (with imports). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "descpool.h"
#include "jsontest_set.h"

static descpool *load(void)
{
    descpool *p = descpool_new();
    assert_non_null(p);
    assert_int_equal(descpool_add_set(p, rh_descriptor_set, sizeof rh_descriptor_set), 0);
    return p;
}

static void test_files(void **state)
{
    (void)state;
    descpool *p = load();
    size_t n;
    const Google__Protobuf__FileDescriptorProto *const *files = descpool_files(p, &n);
    assert_int_equal(n, 10); /* 7 well-known + jsontest, rides, optional */
    const Google__Protobuf__FileDescriptorProto *f = descpool_file(p, "jsontest.proto");
    assert_non_null(f);
    assert_string_equal(f->package, "rpchost.jsontest");
    assert_ptr_equal(files[n - 3], f);
    assert_non_null(descpool_file(p, "google/protobuf/timestamp.proto"));
    assert_null(descpool_file(p, "nope.proto"));
    assert_null(descpool_file(p, NULL));
    descpool_free(p);
}

static void test_symbols(void **state)
{
    (void)state;
    descpool *p = load();
    const descpool_symbol *s;

    s = descpool_find(p, "rpchost.jsontest.Scalars");
    assert_non_null(s);
    assert_int_equal(s->kind, DESCPOOL_MESSAGE);
    assert_string_equal(s->name, "Scalars");
    assert_string_equal(s->file->name, "jsontest.proto");
    assert_ptr_equal(descpool_find(p, ".rpchost.jsontest.Scalars"), s);
    assert_ptr_equal(descpool_symbol_of(p, s->u.message), s);

    s = descpool_find(p, "rpchost.jsontest.Inner.Level");
    assert_non_null(s);
    assert_int_equal(s->kind, DESCPOOL_ENUM);
    assert_string_equal(s->parent->full_name, "rpchost.jsontest.Inner");
    s = descpool_find(p, "rpchost.jsontest.Inner.HIGH"); /* C++ scoping */
    assert_non_null(s);
    assert_int_equal(s->kind, DESCPOOL_ENUM_VALUE);
    assert_int_equal(s->u.enum_value->number, 1);

    s = descpool_find(p, "rpchost.jsontest.JsonTest");
    assert_non_null(s);
    assert_int_equal(s->kind, DESCPOOL_SERVICE);
    s = descpool_find(p, "rpchost.jsontest.JsonTest.Stream");
    assert_int_equal(s->kind, DESCPOOL_METHOD);
    assert_true(s->u.method->client_streaming);
    assert_string_equal(s->parent->full_name, "rpchost.jsontest.JsonTest");

    assert_ptr_equal(descpool_find_method(p, "/rpchost.jsontest.JsonTest/Echo"),
                     descpool_find(p, "rpchost.jsontest.JsonTest.Echo"));
    assert_ptr_equal(descpool_find_method(p, "rpchost.jsontest.JsonTest/Echo"),
                     descpool_find(p, "rpchost.jsontest.JsonTest.Echo"));
    assert_non_null(descpool_find_method(p, "Rides/Start"));
    assert_non_null(descpool_find_method(p, "Rides.Track"));
    assert_null(descpool_find_method(p, "Rides/Nope"));

    s = descpool_find(p, "rpchost.jsontest.Scalars.f_int64");
    assert_int_equal(s->kind, DESCPOOL_FIELD);
    assert_int_equal(s->u.field->number, 4);
    s = descpool_find(p, "rpchost.jsontest.Oneofs.choice");
    assert_int_equal(s->kind, DESCPOOL_ONEOF);
    /* Map entries are nested messages like any other. */
    s = descpool_find(p, "rpchost.jsontest.Maps.StrIntEntry");
    assert_non_null(s);
    assert_true(descpool_is_map_entry(s->u.message));
    assert_int_equal(descpool_find(p, "rpchost.jsontest")->kind, DESCPOOL_PACKAGE);
    assert_int_equal(descpool_find(p, "rpchost")->kind, DESCPOOL_PACKAGE);

    /* A file without a package: names have no prefix. */
    assert_int_equal(descpool_find(p, "StartRequest")->kind, DESCPOOL_MESSAGE);
    assert_int_equal(descpool_find(p, "Rides")->kind, DESCPOOL_SERVICE);
    assert_int_equal(descpool_find(p, "POOL")->kind, DESCPOOL_ENUM_VALUE);

    assert_null(descpool_find(p, "rpchost.jsontest.Nope"));
    assert_null(descpool_find(p, ""));
    assert_null(descpool_find(p, NULL));
    assert_null(descpool_find_kind(p, "rpchost.jsontest.Scalars", DESCPOOL_ENUM));
    descpool_free(p);
}

static void test_lists(void **state)
{
    (void)state;
    descpool *p = load();
    size_t n;
    const descpool_symbol *const *svcs = descpool_list(p, DESCPOOL_SERVICE, &n);
    assert_int_equal(n, 2);
    assert_string_equal(svcs[0]->full_name, "rpchost.jsontest.JsonTest");
    assert_string_equal(svcs[1]->full_name, "Rides");
    descpool_list(p, DESCPOOL_METHOD, &n);
    assert_int_equal(n, 4);
    descpool_list(p, DESCPOOL_KIND_COUNT, &n);
    assert_int_equal(n, 0);
    descpool_free(p);
}

static void test_resolve(void **state)
{
    (void)state;
    descpool *p = load();
    const descpool_symbol *inner = descpool_find(p, "rpchost.jsontest.Inner");
    assert_ptr_equal(descpool_resolve(p, NULL, ".rpchost.jsontest.Inner"), inner);
    /* Relative names, innermost scope first. */
    assert_ptr_equal(descpool_resolve(p, "rpchost.jsontest.Scalars", "Inner"), inner);
    assert_ptr_equal(descpool_resolve(p, "rpchost.jsontest.Inner", "Level"),
                     descpool_find(p, "rpchost.jsontest.Inner.Level"));
    assert_ptr_equal(descpool_resolve(p, "rpchost.jsontest", "jsontest.Inner"), inner);
    assert_ptr_equal(descpool_resolve(p, "rpchost.jsontest.Wkt", "google.protobuf.Timestamp"),
                     descpool_find(p, "google.protobuf.Timestamp"));
    /* Only types resolve: not fields, services or packages. */
    assert_null(descpool_resolve(p, "rpchost.jsontest.Scalars", "f_int32"));
    assert_null(descpool_resolve(p, NULL, "rpchost.jsontest.JsonTest"));
    assert_null(descpool_resolve(p, NULL, "rpchost"));
    assert_null(descpool_resolve(p, "a.b", "Missing"));
    assert_null(descpool_resolve(p, NULL, ""));
    descpool_free(p);
}

static void test_closure_and_bytes(void **state)
{
    (void)state;
    descpool *p = load();
    const Google__Protobuf__FileDescriptorProto *f = descpool_file(p, "jsontest.proto");
    const Google__Protobuf__FileDescriptorProto **dep;
    size_t n;
    assert_int_equal(descpool_file_closure(p, f, &dep, &n), 0);
    assert_int_equal(n, 8); /* 7 imports, then the file itself */
    assert_ptr_equal(dep[n - 1], f);
    for (size_t i = 0; i + 1 < n; i++)
        assert_int_equal(strncmp(dep[i]->name, "google/protobuf/", 16), 0);
    free(dep);

    /* Serialized bytes read back as the same file. */
    size_t len;
    const uint8_t *b = descpool_file_bytes(p, f, &len);
    assert_non_null(b);
    Google__Protobuf__FileDescriptorProto *u =
        google__protobuf__file_descriptor_proto__unpack(NULL, len, b);
    assert_non_null(u);
    assert_string_equal(u->name, "jsontest.proto");
    assert_int_equal(u->n_message_type, f->n_message_type);
    google__protobuf__file_descriptor_proto__free_unpacked(u, NULL);

    /* A pool built from single files (as reflection returns them). */
    descpool *q = descpool_new();
    const Google__Protobuf__FileDescriptorProto *const *files = descpool_files(p, &n);
    for (size_t i = n; i-- > 0;) { /* dependents first: order must not matter */
        b = descpool_file_bytes(p, files[i], &len);
        assert_int_equal(descpool_add_file(q, b, len), 0);
    }
    assert_non_null(descpool_find(q, "rpchost.jsontest.Maps.StrIntEntry"));
    assert_non_null(descpool_find(q, "StartRequest"));
    /* Not a file of q. */
    assert_null(descpool_file_bytes(q, f, &len));
    descpool_free(q);
    descpool_free(p);
}

static void test_missing_dependency(void **state)
{
    (void)state;
    descpool *p = load();
    size_t len;
    const uint8_t *b = descpool_file_bytes(p, descpool_file(p, "rides.proto"), &len);
    descpool *q = descpool_new();
    assert_int_equal(descpool_add_file(q, b, len), 0);
    const Google__Protobuf__FileDescriptorProto **dep;
    size_t n;
    assert_int_equal(descpool_file_closure(q, descpool_file(q, "rides.proto"), &dep, &n),
                     -ENOENT);
    assert_int_equal(n, 1);
    free(dep);
    /* Unresolvable types are NULL, not a crash. */
    assert_null(descpool_resolve(q, "StartRequest", ".google.protobuf.Timestamp"));
    descpool_free(q);
    descpool_free(p);
}

static void test_duplicates(void **state)
{
    (void)state;
    descpool *p = load();
    /* The same set twice (two plugins with the same imports): no change. */
    assert_int_equal(descpool_add_set(p, rh_descriptor_set, sizeof rh_descriptor_set), 0);
    size_t n;
    descpool_files(p, &n);
    assert_int_equal(n, 10);
    descpool_list(p, DESCPOOL_SERVICE, &n);
    assert_int_equal(n, 2);
    descpool_free(p);
}

static void test_bad_input(void **state)
{
    (void)state;
    descpool *p = descpool_new();
    const uint8_t junk[] = {0x0a, 0x05, 0x01, 0x02};
    assert_int_equal(descpool_add_set(p, junk, sizeof junk), -EINVAL);
    assert_non_null(strstr(descpool_error(p), "truncated"));
    const uint8_t notfile[] = {0x0a, 0x02, 0xff, 0xff};
    assert_int_equal(descpool_add_set(p, notfile, sizeof notfile), -EINVAL);
    assert_non_null(strstr(descpool_error(p), "FileDescriptorProto"));
    const uint8_t badwt[] = {0x0f};
    assert_int_equal(descpool_add_set(p, badwt, sizeof badwt), -EINVAL);
    /* An empty set is a valid, empty set. */
    assert_int_equal(descpool_add_set(p, junk, 0), 0);
    /* Every truncation of a real set: an error or a partial pool, no crash. */
    for (size_t cut = 0; cut < sizeof rh_descriptor_set; cut += 7) {
        descpool *q = descpool_new();
        int rc = descpool_add_set(q, rh_descriptor_set, cut);
        assert_true(rc == 0 || rc == -EINVAL);
        descpool_free(q);
    }
    assert_int_equal(descpool_add_set_file(p, "/nonexistent/x.protoset"), -ENOENT);
    assert_non_null(strstr(descpool_error(p), "/nonexistent/x.protoset"));
    descpool_free(p);
}

static void test_set_file(void **state)
{
    (void)state;
    char path[] = "/tmp/descpool-test-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, rh_descriptor_set, sizeof rh_descriptor_set),
                     (ssize_t)sizeof rh_descriptor_set);
    close(fd);
    descpool *p = descpool_new();
    assert_int_equal(descpool_add_set_file(p, path), 0);
    assert_non_null(descpool_find(p, "Rides.Start"));
    descpool_free(p);
    /* Not a descriptor set: says which file and how to make one. */
    fd = open(path, O_WRONLY | O_TRUNC);
    assert_int_equal(write(fd, "hello world\n", 12), 12);
    close(fd);
    p = descpool_new();
    assert_int_equal(descpool_add_set_file(p, path), -EINVAL);
    assert_non_null(strstr(descpool_error(p), path));
    assert_non_null(strstr(descpool_error(p), "--descriptor_set_out"));
    descpool_free(p);
    unlink(path);
}

static void test_field_helpers(void **state)
{
    (void)state;
    descpool *p = load();
    const Google__Protobuf__DescriptorProto *m =
        descpool_find(p, "rpchost.jsontest.Names")->u.message;
    assert_int_equal(descpool_field_by_json_name(m, "snakeCaseName")->number, 1);
    assert_int_equal(descpool_field_by_json_name(m, "snake_case_name")->number, 1);
    assert_int_equal(descpool_field_by_json_name(m, "renamed")->number, 2);
    assert_int_equal(descpool_field_by_json_name(m, "custom")->number, 2);
    assert_int_equal(descpool_field_by_json_name(m, "alreadyCamelCase")->number, 3);
    assert_null(descpool_field_by_json_name(m, "SnakeCaseName"));
    assert_int_equal(descpool_field_by_number(m, 3)->number, 3);
    assert_null(descpool_field_by_number(m, 4));
    char buf[32];
    assert_string_equal(descpool_json_name("car_id", buf, sizeof buf), "carId");
    assert_string_equal(descpool_json_name("a_b_c", buf, sizeof buf), "aBC");
    assert_string_equal(descpool_json_name("x", buf, sizeof buf), "x");
    assert_string_equal(descpool_json_name("long_name_here", buf, 5), "long");
    descpool_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_files),          cmocka_unit_test(test_symbols),
        cmocka_unit_test(test_lists),          cmocka_unit_test(test_resolve),
        cmocka_unit_test(test_closure_and_bytes), cmocka_unit_test(test_missing_dependency),
        cmocka_unit_test(test_duplicates),     cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_set_file),       cmocka_unit_test(test_field_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
