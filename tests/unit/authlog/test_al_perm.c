/* Method patterns: parsing, matching, the admin rule. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "al_perm.h"

static bool m(const al_perms *ps, const char *method)
{
    return al_perms_match(ps, method, strlen(method));
}

static al_perms list(const char *s)
{
    al_perms ps = {0};
    const char *why = NULL, *bad = NULL;
    size_t bad_len = 0;
    assert_int_equal(al_perms_parse_list(&ps, s, &why, &bad, &bad_len), 0);
    return ps;
}

static void test_exact_and_service(void **st)
{
    (void)st;
    al_perms ps = list("/Rides/Start, /grpc.testing.TestService/*");
    assert_int_equal(ps.n, 2);
    assert_true(m(&ps, "/Rides/Start"));
    assert_false(m(&ps, "/Rides/Track"));
    assert_false(m(&ps, "/Rides/StartX"));
    assert_false(m(&ps, "/Rides/Star"));
    assert_true(m(&ps, "/grpc.testing.TestService/UnaryCall"));
    assert_true(m(&ps, "/grpc.testing.TestService/EmptyCall"));
    assert_false(m(&ps, "/grpc.testing.TestService/"));
    assert_false(m(&ps, "/grpc.testing.TestService/a/b"));
    assert_false(m(&ps, "/grpc.testing.TestServiceX/UnaryCall"));
    assert_false(m(&ps, "/grpc.testing.UnimplementedService/UnimplementedCall"));
    al_perms_free(&ps);
}

static void test_all_excludes_admin(void **st)
{
    (void)st;
    al_perms ps = list("*");
    assert_true(m(&ps, "/Rides/Start"));
    assert_true(m(&ps, "/anything.At/All"));
    assert_false(m(&ps, "/rpchost.admin.v1.Admin/List"));
    assert_false(al_perms_has_admin(&ps));
    al_perms_free(&ps);

    ps = list("admin");
    assert_true(m(&ps, "/rpchost.admin.v1.Admin/List"));
    assert_false(m(&ps, "/Rides/Start"));
    assert_true(al_perms_has_admin(&ps));
    al_perms_free(&ps);

    ps = list("* admin");
    assert_true(m(&ps, "/rpchost.admin.v1.Admin/Unload"));
    assert_true(m(&ps, "/Rides/Start"));
    al_perms_free(&ps);

    ps = list("/rpchost.admin.v1.Admin/List");
    assert_true(al_perms_has_admin(&ps));
    assert_true(m(&ps, "/rpchost.admin.v1.Admin/List"));
    assert_false(m(&ps, "/rpchost.admin.v1.Admin/Unload"));
    al_perms_free(&ps);
}

static void test_separators(void **st)
{
    (void)st;
    al_perms ps = list("  /A/b,/C/*\t, ,\n/D/e  ");
    assert_int_equal(ps.n, 3);
    assert_true(m(&ps, "/A/b"));
    assert_true(m(&ps, "/C/x"));
    assert_true(m(&ps, "/D/e"));
    al_perms_free(&ps);
    ps = list("");
    assert_int_equal(ps.n, 0);
    assert_false(m(&ps, "/A/b"));
    al_perms_free(&ps);
}

static void test_default_exempt(void **st)
{
    (void)st;
    al_perms ps = list(AL_DEFAULT_EXEMPT);
    assert_true(m(&ps, "/grpc.health.v1.Health/Check"));
    assert_true(m(&ps, "/grpc.health.v1.Health/Watch"));
    assert_true(m(&ps, "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"));
    assert_true(m(&ps, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"));
    assert_false(m(&ps, "/Rides/Start"));
    al_perms_free(&ps);
}

static void test_bad_patterns(void **st)
{
    (void)st;
    const char *bad[] = {"Rides/Start", "/", "//x", "/Rides", "/Rides/", "/Rides/St*",
                         "/Ri*/x", "/Rides/**", "/A/b/c", "**", "Admin", "/A /b",
                         "/A/\x01", "/A/\xc3\xa9"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        al_perms ps = {0};
        const char *why = NULL;
        int rc = al_perms_add(&ps, bad[i], strlen(bad[i]), &why);
        if (rc != -EINVAL)
            fail_msg("pattern '%s' was accepted", bad[i]);
        assert_non_null(why);
        al_perms_free(&ps);
    }
    al_perms ps = {0};
    const char *why = NULL, *badp = NULL;
    size_t bad_len = 0;
    assert_int_equal(al_perms_parse_list(&ps, "/A/b, nope, /C/d", &why, &badp, &bad_len),
                     -EINVAL);
    assert_int_equal(bad_len, 4);
    assert_memory_equal(badp, "nope", 4);
    al_perms_free(&ps);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_and_service),
        cmocka_unit_test(test_all_excludes_admin),
        cmocka_unit_test(test_separators),
        cmocka_unit_test(test_default_exempt),
        cmocka_unit_test(test_bad_patterns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
