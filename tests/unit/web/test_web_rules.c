/* Templates of the JSON gateway's HTTP rules (google.api.http syntax):
 * parsing, refusals, matching with variables, "**" and verbs; and the
 * static-file table. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "web/web_rules.h"
#include "web/web_static.h"

static web_rule parse_ok(const char *t)
{
    web_rule r = {0};
    char why[256] = "";
    int rc = web_rule_parse_template(&r, t, why, sizeof why);
    if (rc != 0) fail_msg("%s: %s", t, why);
    return r;
}

static void parse_bad(const char *t, const char *reason)
{
    web_rule r = {0};
    char why[256] = "";
    assert_int_equal(web_rule_parse_template(&r, t, why, sizeof why), -EINVAL);
    if (!strstr(why, reason)) fail_msg("%s: reason '%s' lacks '%s'", t, why, reason);
    web_rule_free(&r);
}

/* Matches path; on success checks the variables' values, NULL-terminated. */
static void match(web_rule *r, const char *path, bool want, ...)
{
    char *vals[WEB_RULE_MAX_VARS];
    bool got = web_rule_match(r, path, strlen(path), vals);
    if (got != want) fail_msg("%s against %s: %s", path, r->pattern, got ? "matched" : "no match");
    if (!got) return;
    va_list ap;
    va_start(ap, want);
    for (uint32_t i = 0; i < r->n_vars; i++) {
        const char *v = va_arg(ap, const char *);
        assert_non_null(v);
        assert_string_equal(vals[i], v);
        free(vals[i]);
    }
    va_end(ap);
}

static void test_literals(void **state)
{
    (void)state;
    web_rule r = parse_ok("/start");
    match(&r, "/start", true);
    match(&r, "/start/", false);
    match(&r, "/stop", false);
    match(&r, "/", false);
    web_rule_free(&r);
    r = parse_ok("/");
    match(&r, "/", true);
    match(&r, "/x", false);
    web_rule_free(&r);
}

static void test_variables(void **state)
{
    (void)state;
    web_rule r = parse_ok("/v1/shelves/{shelf}/books/{book.id}");
    assert_int_equal(r.n_vars, 2);
    assert_string_equal(r.vars[1].field, "book.id");
    match(&r, "/v1/shelves/s1/books/b%202", true, "s1", "b 2");
    match(&r, "/v1/shelves//books/b", false);
    match(&r, "/v1/shelves/s1/books", false);
    web_rule_free(&r);

    r = parse_ok("/v1/{name=shelves/*}");
    match(&r, "/v1/shelves/7", true, "shelves/7");
    match(&r, "/v1/books/7", false);
    match(&r, "/v1/shelves/7/x", false);
    web_rule_free(&r);

    r = parse_ok("/v1/{path=files/**}");
    match(&r, "/v1/files/a/b/c", true, "files/a/b/c");
    match(&r, "/v1/files", true, "files");
    match(&r, "/v1/other/a", false);
    web_rule_free(&r);
}

static void test_verbs(void **state)
{
    (void)state;
    web_rule r = parse_ok("/v1/cars/{car_id}:start");
    assert_string_equal(r.verb, "start");
    match(&r, "/v1/cars/7:start", true, "7");
    match(&r, "/v1/cars/7:stop", false);
    match(&r, "/v1/cars/7", false);
    web_rule_free(&r);
}

static void test_refusals(void **state)
{
    (void)state;
    parse_bad("start", "starts with /");
    parse_bad("/a/{b", "unclosed");
    parse_bad("/a/**/b", "** must be last");
    parse_bad("/a/x{b}", "inside a segment");
    parse_bad("/a/{}", "empty variable");
    parse_bad("/a/{b-c}", "bad variable name");
    parse_bad("/a/", "trailing /");
    parse_bad("/a//b", "bad path segment");
}

static void test_static_files(void **state)
{
    (void)state;
    static const char page[] = "<!doctype html>";
    assert_int_equal(web_static_add("/console/", "text/html", page, sizeof page - 1), 0);
    assert_int_equal(web_static_add("/console/", "text/html", page, 1), -EEXIST);
    assert_int_equal(web_static_add("console", "text/html", page, 1), -EINVAL);
    const web_static_file *f = web_static_find("/console/", 9);
    assert_non_null(f);
    assert_int_equal(f->len, sizeof page - 1);
    assert_null(web_static_find("/console", 8));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literals),   cmocka_unit_test(test_variables),
        cmocka_unit_test(test_verbs),      cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_static_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
