/* registry.c + loader.c with real plugin files: routes and streaming flags,
 * snapshot pinning across a replace, retire -> fini -> dlclose when the last
 * reference goes (checked in /proc/self/maps), refusals that leave the
 * serving version alone, drain timeout -> cancel, NODELETE reporting. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "registry/registry.h"
#include "config/settings.h"

static rh_host_api test_api;
static char dir[64];
static rh_settings test_settings;
static int cancels;
static reg_instance *cancelled_inst;
static rh_status cancelled_code;

static void on_cancel(reg_instance *inst, rh_status code, const char *message)
{
    (void)message;
    cancels++;
    cancelled_inst = inst;
    cancelled_code = code;
}

static void copy_in(const char *plugin, const char *dest)
{
    char src[512], tmp[512], dst[512];
    snprintf(src, sizeof src, "%s/%s", TEST_PLUGIN_DIR, plugin);
    snprintf(tmp, sizeof tmp, "%s/.incoming", dir);
    snprintf(dst, sizeof dst, "%s/%s", dir, dest);
    int in = open(src, O_RDONLY), out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(in >= 0 && out >= 0);
    char buf[65536];
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) > 0) assert_int_equal(write(out, buf, (size_t)n), n);
    close(in);
    close(out);
    assert_int_equal(rename(tmp, dst), 0);
}

static char *path_of(const char *name)
{
    static char p[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
    return p[k];
}

/* Private copies of plugin files mapped right now (distinct memfds). */
static int mapped_copies(const char *file)
{
    char want[128];
    snprintf(want, sizeof want, "/memfd:rpchost:%s", file);
    FILE *f = fopen("/proc/self/maps", "r");
    char line[1024];
    unsigned long inodes[64];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        if (!strstr(line, want)) continue;
        unsigned long ino = 0;
        sscanf(line, "%*s %*s %*s %*s %lu", &ino);
        bool seen = false;
        for (int i = 0; i < n; i++) seen |= inodes[i] == ino;
        if (!seen && n < 64) inodes[n++] = ino;
    }
    fclose(f);
    return n;
}

static const char *version_of(const reg_snapshot *s, const char *path)
{
    const reg_route *r = reg_route_find(s, path, strlen(path));
    return r ? reg_instance_descriptor(r->instance)->abi.version : NULL;
}

static const char *VERSION_PATH = "/rpchost.test.Swap/Version";

static int setup(void **st)
{
    (void)st;
    strcpy(dir, "/tmp/rpchost-reg-XXXXXX");
    assert_non_null(mkdtemp(dir));
    memset(&test_settings, 0, sizeof test_settings);
    test_settings.drain_timeout_ms = 100;
    settings_set(&test_settings);
    test_api.size = sizeof test_api;
    test_api.abi_major = RPCHOST_ABI_MAJOR;
    test_api.abi_minor = RPCHOST_ABI_MINOR;
    test_api.config_get = plugin_ctx_config_get;
    test_api.log = plugin_ctx_log;
    reg_set_host(&test_api, on_cancel);
    cancels = 0;
    return reg_init();
}

static int teardown(void **st)
{
    (void)st;
    reg_shutdown();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd);
}

static void test_routes(void **st)
{
    (void)st;
    copy_in("swap_v1.so", "swap.so");
    copy_in("testauth.so", "testauth.so");
    assert_int_equal(reg_load_dir(dir), 0);
    reg_snapshot *s = reg_acquire();
    assert_int_equal(s->generation, reg_generation());
    const reg_route *r = reg_route_find(s, VERSION_PATH, strlen(VERSION_PATH));
    assert_non_null(r);
    assert_false(r->client_streaming);
    assert_false(r->server_streaming);
    assert_string_equal(r->method->name, "Version");
    assert_string_equal(r->input->name, "rpchost.test.VersionRequest");
    const char *sp = "/rpchost.test.Swap/Stream";
    r = reg_route_find(s, sp, strlen(sp));
    assert_non_null(r);
    assert_true(r->server_streaming);
    assert_false(r->client_streaming);
    assert_null(reg_route_find(s, "/rpchost.test.Swap/Nope", 23));
    assert_null(reg_route_find(s, VERSION_PATH, strlen(VERSION_PATH) - 1));
    assert_int_equal(s->n_chain, 1);
    assert_string_equal(s->chain[0].full_name, "testauth.principal");
    assert_int_equal(s->n_instances, 2);
    reg_snapshot_release(s);
}

static void test_replace_pins_old(void **st)
{
    (void)st;
    copy_in("swap_v1.so", "swap.so");
    assert_int_equal(reg_load_dir(dir), 0);
    reg_snapshot *s1 = reg_acquire();
    assert_string_equal(version_of(s1, VERSION_PATH), "1");
    const reg_route *r1 = reg_route_find(s1, VERSION_PATH, strlen(VERSION_PATH));
    reg_instance_call_begin(r1->instance); /* a call running in version 1 */
    uint64_t gen = reg_generation();

    copy_in("swap_v2.so", "swap.so");
    assert_int_equal(reg_file_changed(path_of("swap.so")), 0);
    assert_true(reg_generation() > gen);
    reg_snapshot *s2 = reg_acquire();
    assert_string_equal(version_of(s2, VERSION_PATH), "2");
    assert_string_equal(version_of(s1, VERSION_PATH), "1"); /* the pinned one */
    assert_int_equal(mapped_copies("swap.so"), 2);

    reg_plugin_info *info;
    size_t n = reg_list(&info);
    assert_int_equal(n, 2);
    assert_string_equal(info[0].version, "2");
    assert_false(info[0].draining);
    assert_string_equal(info[1].version, "1");
    assert_true(info[1].draining);
    assert_int_equal(info[1].in_flight, 1);
    free(info);

    /* The call ends, its snapshot goes: fini + dlclose on the control run. */
    reg_instance_call_end(r1->instance);
    reg_snapshot_release(s1);
    reg_control_run();
    assert_int_equal(mapped_copies("swap.so"), 1);
    n = reg_list(&info);
    assert_int_equal(n, 1);
    assert_string_equal(info[0].version, "2");
    free(info);

    /* The same file again (no change): nothing happens. */
    gen = reg_generation();
    assert_int_equal(reg_file_changed(path_of("swap.so")), 0);
    assert_int_equal(reg_generation(), gen);
    reg_snapshot_release(s2);

    /* 200 swaps: no copy of an old build stays mapped, no fd stays open. */
    int fds_before = 0;
    for (int fd = 0; fd < 1024; fd++) fds_before += fcntl(fd, F_GETFD) >= 0;
    for (int i = 0; i < 200; i++) {
        copy_in(i % 2 ? "swap_v2.so" : "swap_v1.so", "swap.so");
        assert_int_equal(reg_file_changed(path_of("swap.so")), 0);
        reg_control_run();
    }
    int fds_after = 0;
    for (int fd = 0; fd < 1024; fd++) fds_after += fcntl(fd, F_GETFD) >= 0;
    assert_int_equal(fds_after, fds_before);
    assert_int_equal(mapped_copies("swap.so"), 1);
}

static void test_refusals_keep_old(void **st)
{
    (void)st;
    copy_in("swap_v1.so", "swap.so");
    assert_int_equal(reg_load_dir(dir), 0);
    uint64_t gen = reg_generation();
    const char *bad[] = {"swap_badinit.so", "swap_abi2.so", "nosym.so"};
    for (int i = 0; i < 3; i++) {
        copy_in(bad[i], "swap.so");
        assert_true(reg_file_changed(path_of("swap.so")) < 0);
        assert_int_equal(reg_generation(), gen);
        /* Unchanged, so not retried. */
        assert_int_equal(reg_file_changed(path_of("swap.so")), 0);
    }
    char err[512];
    copy_in("swapdup.so", "zdup.so");
    assert_true(reg_load_file_err(path_of("zdup.so"), err, sizeof err) < 0);
    assert_non_null(strstr(err, "already served by plugin swap"));
    FILE *f = fopen(path_of("junk.so"), "w");
    fputs("not an ELF file\n", f);
    fclose(f);
    assert_true(reg_load_file_err(path_of("junk.so"), err, sizeof err) < 0);
    assert_non_null(strstr(err, "not a shared object"));
    /* Half-written: a truncated copy. */
    copy_in("swap_v2.so", "half.so");
    assert_int_equal(truncate(path_of("half.so"), 6000), 0);
    assert_true(reg_load_file_err(path_of("half.so"), err, sizeof err) < 0);
    assert_int_equal(reg_generation(), gen);
    reg_snapshot *s = reg_acquire();
    assert_string_equal(version_of(s, VERSION_PATH), "1");
    reg_snapshot_release(s);
    /* A rescan leaves the failed, unchanged files alone. */
    assert_int_equal(reg_rescan(), 0);
    assert_int_equal(reg_generation(), gen);
    /* A good build at the same path wins. */
    copy_in("swap_v2.so", "swap.so");
    assert_int_equal(reg_rescan(), 0);
    s = reg_acquire();
    assert_string_equal(version_of(s, VERSION_PATH), "2");
    reg_snapshot_release(s);
    reg_control_run();
}

static void test_unload_drain_cancel(void **st)
{
    (void)st;
    copy_in("swap_v1.so", "swap.so");
    assert_int_equal(reg_load_dir(dir), 0);
    reg_snapshot *s = reg_acquire();
    const reg_route *r = reg_route_find(s, VERSION_PATH, strlen(VERSION_PATH));
    reg_instance *inst = r->instance;
    reg_instance_call_begin(inst);
    assert_int_equal(unlink(path_of("swap.so")), 0);
    assert_int_equal(reg_file_removed(path_of("swap.so")), 0);
    reg_snapshot *now = reg_acquire();
    assert_null(reg_route_find(now, VERSION_PATH, strlen(VERSION_PATH)));
    reg_snapshot_release(now);
    int left = reg_next_timeout_ms();
    assert_true(left >= 0 && left <= 100);
    reg_tick();
    assert_int_equal(cancels, 0);
    struct timespec ts = {0, 150 * 1000000};
    nanosleep(&ts, NULL);
    reg_tick();
    assert_int_equal(cancels, 1);
    assert_ptr_equal(cancelled_inst, inst);
    assert_int_equal(cancelled_code, RH_UNAVAILABLE);
    reg_tick();
    assert_int_equal(cancels, 1); /* once */
    reg_instance_call_end(inst);
    reg_snapshot_release(s);
    reg_control_run();
    reg_plugin_info *info;
    assert_int_equal(reg_list(&info), 0);
    free(info);
    assert_int_equal(mapped_copies("swap.so"), 0);
}

static void test_nodelete_reported(void **st)
{
    (void)st;
    copy_in("nodelete.so", "nodelete.so");
    assert_int_equal(reg_load_dir(dir), 0);
    reg_plugin_info *info;
    assert_int_equal(reg_list(&info), 1);
    assert_true(info[0].cannot_unload);
    assert_non_null(strstr(info[0].unload_note, "NODELETE"));
    free(info);
    assert_int_equal(reg_unload_file(path_of("nodelete.so")), 0);
    reg_control_run();
    assert_int_equal(reg_list(&info), 1); /* still mapped, still listed */
    assert_true(info[0].cannot_unload);
    assert_non_null(strstr(info[0].unload_note, "stays mapped"));
    free(info);
}

static void test_config_and_reload(void **st)
{
    (void)st;
    settings_kv kv = {(char *)"greeting", (char *)"hello"};
    settings_section sec = {(char *)"swap", &kv, 1};
    test_settings.sections = &sec;
    test_settings.n_sections = 1;
    copy_in("swap_v1.so", "swap.so");
    assert_int_equal(reg_load_dir(dir), 0);
    reg_snapshot *s = reg_acquire();
    const reg_route *r = reg_route_find(s, VERSION_PATH, strlen(VERSION_PATH));
    rh_plugin_ctx *ctx = reg_instance_ctx(r->instance);
    const char *v1 = plugin_ctx_config_get(ctx, "greeting");
    assert_string_equal(v1, "hello");
    assert_null(plugin_ctx_config_get(ctx, "nope"));
    kv.value = (char *)"bonjour";
    reg_reconfigure();
    assert_string_equal(plugin_ctx_config_get(ctx, "greeting"), "bonjour");
    assert_string_equal(v1, "hello"); /* old value still valid until fini */
    reg_snapshot_release(s);
    test_settings.sections = NULL;
    test_settings.n_sections = 0;
}

static void test_thread_left_running_keeps_code(void **st)
{
    (void)st;
    copy_in("leakthread.so", "leakthread.so");
    assert_int_equal(reg_load_dir(dir), 0);
    assert_int_equal(reg_unload_file(path_of("leakthread.so")), 0);
    reg_control_run();
    reg_plugin_info *info;
    assert_int_equal(reg_list(&info), 1);
    assert_true(info[0].cannot_unload);
    assert_true(info[0].finalised);
    assert_non_null(strstr(info[0].unload_note, "thread"));
    free(info);
    /* Still mapped: the thread keeps running its code without crashing. */
    assert_int_equal(mapped_copies("leakthread.so"), 1);
    struct timespec ts = {0, 50 * 1000000};
    nanosleep(&ts, NULL);
}

int main(void)
{
    log_set_level(RH_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_routes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replace_pins_old, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals_keep_old, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unload_drain_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nodelete_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_and_reload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_thread_left_running_keeps_code, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
