/* trust.c: which plugin directories and files the host accepts, and the
 * one sentence it gives for each refusal. Ownership cases need root (to
 * chown to another user) and are skipped otherwise. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "registry/trust.h"

#define OTHER_UID 54321

static char base[256]; /* mkdtemp under /tmp: root-owned sticky parent */

static void path_of(char *out, const char *rel)
{
    snprintf(out, PATH_MAX, "%.255s/%.255s", base, rel);
}

static void mk(const char *rel, mode_t mode)
{
    char p[PATH_MAX];
    path_of(p, rel);
    assert_int_equal(mkdir(p, 0700), 0);
    assert_int_equal(chmod(p, mode), 0);
}

static void touch(const char *rel, mode_t mode)
{
    char p[PATH_MAX];
    path_of(p, rel);
    int fd = open(p, O_CREAT | O_WRONLY | O_TRUNC, 0600);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(chmod(p, mode), 0);
}

static int setup(void **state)
{
    (void)state;
    snprintf(base, sizeof base, "/tmp/rpchost-trust-XXXXXX");
    assert_non_null(mkdtemp(base));
    assert_int_equal(chmod(base, 0755), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
    return system(cmd) == 0 ? 0 : -1;
}

static int check_dir(const char *rel, char *err)
{
    char p[PATH_MAX];
    path_of(p, rel);
    return trust_check_dir(p, geteuid(), err, 256);
}

static int check_file(const char *rel, char *err)
{
    char p[PATH_MAX];
    path_of(p, rel);
    return trust_check_file(p, geteuid(), err, 256);
}

static void test_safe_dir_and_file_accepted(void **state)
{
    (void)state;
    char err[256] = "";
    mk("ok", 0755);
    touch("ok/a.so", 0755);
    assert_int_equal(check_dir("ok", err), 0);
    assert_int_equal(check_file("ok/a.so", err), 0);
}

static void test_world_writable_dir_refused(void **state)
{
    (void)state;
    char err[256], want[PATH_MAX + 64];
    mk("ww", 0777);
    assert_int_equal(check_dir("ww", err), -1);
    snprintf(want, sizeof want, "%s/ww is writable by group and others (mode 0777)", base);
    assert_string_equal(err, want);
}

static void test_group_writable_dir_refused(void **state)
{
    (void)state;
    char err[256], want[PATH_MAX + 64];
    mk("gw", 0775);
    assert_int_equal(check_dir("gw", err), -1);
    snprintf(want, sizeof want, "%s/gw is writable by its group (mode 0775)", base);
    assert_string_equal(err, want);
}

static void test_sticky_plugin_dir_itself_refused(void **state)
{
    (void)state;
    char err[256];
    mk("sticky", 01777);
    assert_int_equal(check_dir("sticky", err), -1);
    assert_non_null(strstr(err, "writable by group and others (mode 1777)"));
}

static void test_writable_file_refused(void **state)
{
    (void)state;
    char err[256], want[PATH_MAX + 64];
    mk("f", 0755);
    touch("f/b.so", 0646);
    assert_int_equal(check_file("f/b.so", err), -1);
    snprintf(want, sizeof want, "%s/f/b.so is writable by others (mode 0646)", base);
    assert_string_equal(err, want);
}

static void test_unsafe_parent_refused(void **state)
{
    (void)state;
    char err[256], want[PATH_MAX + 64];
    mk("up", 0757);
    mk("up/plugins", 0755);
    assert_int_equal(check_dir("up/plugins", err), -1);
    snprintf(want, sizeof want, "%s/up is writable by others (mode 0757)", base);
    assert_string_equal(err, want);
}

static void test_sticky_root_parent_accepted(void **state)
{
    (void)state;
    char err[256] = "";
    if (geteuid() != 0) skip();
    mk("tmpish", 01777);
    mk("tmpish/plugins", 0700);
    assert_int_equal(check_dir("tmpish/plugins", err), 0);
}

static void test_symlink_checked_at_its_target(void **state)
{
    (void)state;
    char err[256], target[PATH_MAX], link[PATH_MAX];
    mk("real", 0777);
    path_of(target, "real");
    path_of(link, "link");
    assert_int_equal(symlink(target, link), 0);
    assert_int_equal(check_dir("link", err), -1);
    assert_non_null(strstr(err, "/real is writable"));
}

static void test_foreign_owner_refused_own_user_accepted(void **state)
{
    (void)state;
    char err[256], p[PATH_MAX], want[PATH_MAX + 64];
    if (geteuid() != 0) skip();
    mk("own", 0755);
    touch("own/c.so", 0644);
    path_of(p, "own/c.so");
    assert_int_equal(chown(p, OTHER_UID, OTHER_UID), 0);
    assert_int_equal(trust_check_file(p, 0, err, sizeof err), -1);
    snprintf(want, sizeof want, "%s is owned by uid %d, not by root or root", p, OTHER_UID);
    assert_string_equal(err, want);
    /* The host's own user may own its plugins. */
    assert_int_equal(trust_check_file(p, OTHER_UID, err, sizeof err), 0);
}

static void test_missing_path_is_an_error(void **state)
{
    (void)state;
    char err[256];
    assert_int_equal(check_dir("nope", err), -1);
    assert_non_null(strstr(err, "No such file or directory"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_safe_dir_and_file_accepted),
        cmocka_unit_test(test_world_writable_dir_refused),
        cmocka_unit_test(test_group_writable_dir_refused),
        cmocka_unit_test(test_sticky_plugin_dir_itself_refused),
        cmocka_unit_test(test_writable_file_refused),
        cmocka_unit_test(test_unsafe_parent_refused),
        cmocka_unit_test(test_sticky_root_parent_accepted),
        cmocka_unit_test(test_symlink_checked_at_its_target),
        cmocka_unit_test(test_foreign_owner_refused_own_user_accepted),
        cmocka_unit_test(test_missing_path_is_an_error),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
