/* settings.c: command line, environment, INI file, precedence, refusals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "config/settings.h"

static int load(rh_settings *s, const char **args)
{
    char *argv[32];
    int argc = 0;
    argv[argc++] = (char *)"rpchost";
    for (; args[argc - 1]; argc++) argv[argc] = (char *)args[argc - 1];
    argv[argc] = NULL;
    return settings_load(s, argc, argv);
}

static char *write_tmp(const char *text)
{
    static char path[64];
    if (path[0]) unlink(path); /* one temp file at a time */
    strcpy(path, "/tmp/rpchost-settings-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void clear_env(void)
{
    unsetenv("HOST");
    unsetenv("PORT");
    unsetenv("CERT_FILE");
    unsetenv("KEY_FILE");
}

static void test_defaults(void **st)
{
    (void)st;
    clear_env();
    rh_settings s;
    const char *a[] = {"--plugins", "/p", "--plaintext", NULL};
    assert_int_equal(load(&s, a), 0);
    assert_string_equal(s.plugins_dir, "/p");
    assert_int_equal(s.n_listen, 1);
    assert_string_equal(s.listen[0].host, "::");
    assert_string_equal(s.listen[0].port, "8888");
    assert_true(s.plaintext);
    assert_int_equal(s.max_concurrent_streams, 100);
    assert_int_equal(s.header_list_soft, 8192);
    assert_int_equal(s.header_list_hard, 16384);
    assert_int_equal(s.compression, 0); /* off by default */
    assert_int_equal(s.compression_min_bytes, 1024);
    assert_int_equal(s.compression_level, 6);
    assert_int_equal(s.max_recv_message, 4u << 20);
    assert_int_equal(s.drain_timeout_ms, 30000);
    assert_true(s.workers >= 1);
    settings_free(&s);
}

static void test_listen_forms(void **st)
{
    (void)st;
    settings_listen l;
    char why[128];
    assert_int_equal(settings_parse_listen("127.0.0.1:80", &l, why, sizeof why), 0);
    assert_string_equal(l.host, "127.0.0.1");
    assert_string_equal(l.port, "80");
    assert_int_equal(settings_parse_listen("[::1]:8443", &l, why, sizeof why), 0);
    assert_string_equal(l.host, "::1");
    assert_string_equal(l.port, "8443");
    assert_int_equal(settings_parse_listen(":9000", &l, why, sizeof why), 0);
    assert_string_equal(l.host, "::");
    assert_int_equal(settings_parse_listen("unix:/run/x.sock", &l, why, sizeof why), 0);
    assert_true(l.unix_socket);
    assert_string_equal(l.host, "/run/x.sock");
    assert_int_equal(settings_parse_listen("::1:80", &l, why, sizeof why), -22);
    assert_non_null(strstr(why, "brackets"));
    assert_int_equal(settings_parse_listen("host:0", &l, why, sizeof why), -22);
    assert_int_equal(settings_parse_listen("host:65536", &l, why, sizeof why), -22);
    assert_int_equal(settings_parse_listen("host", &l, why, sizeof why), -22);
    assert_int_equal(settings_parse_listen("unix:", &l, why, sizeof why), -22);
}

static void test_env_and_argv_precedence(void **st)
{
    (void)st;
    clear_env();
    setenv("HOST", "127.0.0.1", 1);
    setenv("PORT", "9999", 1);
    setenv("CERT_FILE", "/env/cert.pem", 1);
    setenv("KEY_FILE", "/env/key.pem", 1);
    rh_settings s;
    const char *a[] = {"--plugins", "/p", NULL};
    assert_int_equal(load(&s, a), 0);
    assert_string_equal(s.listen[0].host, "127.0.0.1");
    assert_string_equal(s.listen[0].port, "9999");
    assert_string_equal(s.cert_file, "/env/cert.pem");
    settings_free(&s);

    const char *b[] = {"--plugins", "/p", "--cert", "/c", "--key", "/k", "--listen",
                       "[::1]:1", "--listen", "unix:/tmp/a.sock", "--workers", "3",
                       "--drain-timeout", "1.5", NULL};
    assert_int_equal(load(&s, b), 0);
    assert_int_equal(s.n_listen, 2);
    assert_string_equal(s.listen[0].host, "::1");
    assert_true(s.listen[1].unix_socket);
    assert_string_equal(s.cert_file, "/c");
    assert_int_equal(s.workers, 3);
    assert_int_equal(s.drain_timeout_ms, 1500);
    settings_free(&s);
    clear_env();
}

static void test_config_file(void **st)
{
    (void)st;
    clear_env();
    const char *path = write_tmp("[rpchost]\n"
                                 "plugins = /from/config\n"
                                 "listen = 127.0.0.1:7001, [::1]:7002\n"
                                 "plaintext = yes\n"
                                 "max_concurrent_streams = 50\n"
                                 "drain_timeout = 2\n"
                                 "admin_principals = root, ops\n"
                                 "log_level = debug\n"
                                 "compression = deflate\n"
                                 "compression_min_bytes = 0\n"
                                 "compression_level = 9\n"
                                 "[plugin.rides]\n"
                                 "db = /var/rides.db\n"
                                 "[plugin.authlog]\n"
                                 "tokens = a b\n");
    rh_settings s;
    const char *a[] = {"--config", path, "--workers", "2", NULL};
    assert_int_equal(load(&s, a), 0);
    assert_string_equal(s.plugins_dir, "/from/config");
    assert_int_equal(s.n_listen, 2);
    assert_string_equal(s.listen[1].host, "::1");
    assert_int_equal(s.max_concurrent_streams, 50);
    assert_int_equal(s.drain_timeout_ms, 2000);
    assert_int_equal(s.log_level, RH_LOG_DEBUG);
    assert_string_equal(s.admin_principals, "root, ops");
    assert_int_equal(s.compression, 2); /* GRPC_CODEC_DEFLATE */
    assert_int_equal(s.compression_min_bytes, 0);
    assert_int_equal(s.compression_level, 9);
    const settings_section *sec = settings_section_find(&s, "rides");
    assert_non_null(sec);
    assert_int_equal(sec->n_kv, 1);
    assert_string_equal(sec->kv[0].key, "db");
    assert_string_equal(sec->kv[0].value, "/var/rides.db");
    assert_null(settings_section_find(&s, "nope"));

    /* SIGHUP: a changed section is picked up. */
    FILE *f = fopen(path, "w");
    fputs("[rpchost]\nplugins = /x\n[plugin.rides]\ndb = /new.db\nextra = 1\n", f);
    fclose(f);
    assert_int_equal(settings_reload_sections(&s), 0);
    sec = settings_section_find(&s, "rides");
    assert_int_equal(sec->n_kv, 2);
    assert_string_equal(sec->kv[0].value, "/new.db");
    assert_null(settings_section_find(&s, "authlog"));
    /* A broken file keeps the old sections. */
    f = fopen(path, "w");
    fputs("[rpchost\n", f);
    fclose(f);
    assert_true(settings_reload_sections(&s) < 0);
    assert_non_null(settings_section_find(&s, "rides"));
    settings_free(&s);
}

static void test_refusals(void **st)
{
    (void)st;
    clear_env();
    rh_settings s;
    const char *unknown[] = {"--plugins", "/p", "--plaintext", "--bogus", NULL};
    assert_int_equal(load(&s, unknown), 2);
    const char *noval[] = {"--plugins", "/p", "--plaintext", "--workers", NULL};
    assert_int_equal(load(&s, noval), 2);
    const char *badworkers[] = {"--plugins", "/p", "--plaintext", "--workers", "0", NULL};
    assert_int_equal(load(&s, badworkers), 2);
    const char *badlevel[] = {"--plugins", "/p", "--plaintext", "--log-level", "loud", NULL};
    assert_int_equal(load(&s, badlevel), 2);
    const char *nodir[] = {"--plaintext", NULL};
    assert_int_equal(load(&s, nodir), 2);
    const char *notls[] = {"--plugins", "/p", NULL};
    assert_int_equal(load(&s, notls), 2);
    const char *both[] = {"--plugins", "/p", "--plaintext", "--cert", "c", "--key", "k", NULL};
    assert_int_equal(load(&s, both), 2);
    const char *ca[] = {"--plugins", "/p", "--plaintext", "--client-ca", "x", NULL};
    assert_int_equal(load(&s, ca), 2);
    const char *stray[] = {"--plugins", "/p", "--plaintext", "extra", NULL};
    assert_int_equal(load(&s, stray), 2);
    const char *nocfg[] = {"--plugins", "/p", "--plaintext", "--config", "/nonexistent.ini", NULL};
    assert_int_equal(load(&s, nocfg), 2);
    const char *path = write_tmp("[rpchost]\nno_such_key = 1\n");
    const char *badkey[] = {"--config", path, "--plugins", "/p", "--plaintext", NULL};
    assert_int_equal(load(&s, badkey), 2);
    path = write_tmp("[elsewhere]\na = 1\n");
    const char *badsec[] = {"--config", path, "--plugins", "/p", "--plaintext", NULL};
    assert_int_equal(load(&s, badsec), 2);
    path = write_tmp("[rpchost]\nmax_recv_message = lots\n");
    const char *badval[] = {"--config", path, "--plugins", "/p", "--plaintext", NULL};
    assert_int_equal(load(&s, badval), 2);
    static const char *const bad_compression[] = {
        "compression = br\n", "compression = GZIP\n", "compression_level = 0\n",
        "compression_level = 10\n", "compression_min_bytes = -1\n"};
    for (size_t i = 0; i < sizeof bad_compression / sizeof bad_compression[0]; i++) {
        char text[128];
        snprintf(text, sizeof text, "[rpchost]\n%s", bad_compression[i]);
        path = write_tmp(text);
        const char *badc[] = {"--config", path, "--plugins", "/p", "--plaintext", NULL};
        assert_int_equal(load(&s, badc), 2);
    }
    setenv("PORT", "http", 1);
    const char *envport[] = {"--plugins", "/p", "--plaintext", NULL};
    assert_int_equal(load(&s, envport), 2);
    clear_env();
    const char *help[] = {"--help", NULL};
    assert_int_equal(load(&s, help), 1);
    const char *version[] = {"--version", NULL};
    assert_int_equal(load(&s, version), 1);
    unlink(path);
}

int main(void)
{
    log_set_level(RH_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_listen_forms),
        cmocka_unit_test(test_env_and_argv_precedence),
        cmocka_unit_test(test_config_file),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
