/* conn_parse_target: every ADDRESS form, and clear refusals. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "conn.h"

static void ok(const char *addr, int is_unix, const char *host, const char *port,
               const char *authority)
{
    conn_target t;
    char err[256];
    assert_int_equal(conn_parse_target(addr, &t, err, sizeof(err)), 0);
    assert_int_equal(t.is_unix, is_unix);
    assert_string_equal(t.host, host);
    assert_string_equal(t.port, port);
    assert_string_equal(t.authority, authority);
}

static void bad(const char *addr, const char *why)
{
    conn_target t;
    char err[256];
    assert_int_equal(conn_parse_target(addr, &t, err, sizeof(err)), -EINVAL);
    if (!strstr(err, why))
        fail_msg("'%s': '%s' does not say '%s'", addr, err, why);
}

static void test_forms(void **state)
{
    (void)state;
    ok("localhost:8888", 0, "localhost", "8888", "localhost:8888");
    ok("127.0.0.1:1", 0, "127.0.0.1", "1", "127.0.0.1:1");
    ok("[::1]:65535", 0, "::1", "65535", "[::1]:65535");
    ok("unix:/run/x.sock", 1, "/run/x.sock", "", "localhost");
    ok("unix:///run/x.sock", 1, "/run/x.sock", "", "localhost");
    ok("unix:rel.sock", 1, "rel.sock", "", "localhost");
}

static void test_refusals(void **state)
{
    (void)state;
    bad("", "no ADDRESS");
    bad("localhost", "has no port");
    bad("localhost:", "port in 1..65535");
    bad("localhost:0", "port in 1..65535");
    bad("localhost:65536", "port in 1..65535");
    bad("localhost:8x", "port in 1..65535");
    bad("::1:8888", "brackets");
    bad("[::1]8888", "[ADDR]:PORT");
    bad(":8888", "HOST:PORT");
    bad("unix:", "unix:/path");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forms),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
