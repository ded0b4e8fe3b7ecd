/* jsonin: objects split as their closing brace arrives, whatever the
 * chunking; strings and escapes hide braces; bad input is named. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "jsonin.h"

static void expect_next(jsonin *j, const char *want)
{
    const char *t;
    size_t l;
    char err[256];
    assert_int_equal(jsonin_next(j, &t, &l, err, sizeof(err)), 1);
    assert_int_equal(l, strlen(want));
    assert_memory_equal(t, want, l);
}

static void expect_none(jsonin *j)
{
    const char *t;
    size_t l;
    char err[256];
    assert_int_equal(jsonin_next(j, &t, &l, err, sizeof(err)), 0);
}

static void test_text_sequence(void **state)
{
    (void)state;
    const char *in = " {\"a\":1}\n{\"b\":{\"c\":[1,{}]}}{\"s\":\"}{\\\"\"} ,{}";
    jsonin j;
    assert_int_equal(jsonin_init_text(&j, in, strlen(in), "-d"), 0);
    expect_next(&j, "{\"a\":1}");
    expect_next(&j, "{\"b\":{\"c\":[1,{}]}}");
    expect_next(&j, "{\"s\":\"}{\\\"\"}");
    expect_next(&j, "{}");
    expect_none(&j);
    assert_int_equal(j.count, 4);
    jsonin_free(&j);
}

static void test_empty_and_whitespace(void **state)
{
    (void)state;
    jsonin j;
    assert_int_equal(jsonin_init_text(&j, " \n\t ", 4, "-d"), 0);
    expect_none(&j);
    assert_int_equal(j.count, 0);
    jsonin_free(&j);
}

static void test_errors(void **state)
{
    (void)state;
    const char *t;
    size_t l;
    char err[256];
    jsonin j;
    assert_int_equal(jsonin_init_text(&j, "{} [1]", 6, "-d"), 0);
    expect_next(&j, "{}");
    assert_int_equal(jsonin_next(&j, &t, &l, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "message 2 at byte 3"));
    assert_non_null(strstr(err, "expected a JSON object"));
    jsonin_free(&j);
    assert_int_equal(jsonin_init_text(&j, "{\"a\": \"}", 8, "stdin"), 0);
    assert_int_equal(jsonin_next(&j, &t, &l, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "ended inside message 1"));
    assert_non_null(strstr(err, "stdin"));
    jsonin_free(&j);
}

/* Byte-at-a-time through a pipe: each object comes out as soon as its
 * last byte has been read, not later. */
static void test_pipe_byte_by_byte(void **state)
{
    (void)state;
    const char *in = "{\"x\": \"a}b\"}  {\"y\": [ {} ]}";
    int p[2];
    assert_int_equal(pipe(p), 0);
    jsonin j;
    assert_int_equal(jsonin_init_fd(&j, p[0], "pipe"), 0);
    const char *t;
    size_t l;
    char err[256];
    int got = 0;
    for (size_t i = 0; in[i]; i++) {
        assert_int_equal(write(p[1], in + i, 1), 1);
        assert_int_equal(jsonin_fill(&j), 1);
        int rc = jsonin_next(&j, &t, &l, err, sizeof(err));
        assert_true(rc >= 0);
        bool closes = (i == 11) || in[i + 1] == 0;
        assert_int_equal(rc, closes ? 1 : 0);
        if (rc == 1) {
            got++;
            assert_memory_equal(t, got == 1 ? "{\"x\": \"a}b\"}" : "{\"y\": [ {} ]}", l);
        }
    }
    assert_int_equal(jsonin_fill(&j), -EAGAIN);
    close(p[1]);
    assert_int_equal(jsonin_fill(&j), 0);
    assert_true(j.eof);
    expect_none(&j);
    assert_int_equal(got, 2);
    jsonin_free(&j);
    close(p[0]);
}

/* A large object split across many reads keeps its start. */
static void test_large_object_across_fills(void **state)
{
    (void)state;
    FILE *f = tmpfile();
    assert_non_null(f);
    fputs("{\"a\": \"", f);
    for (int i = 0; i < 300000; i++)
        fputc('x', f);
    fputs("\"} {}", f);
    fflush(f);
    rewind(f);
    jsonin j;
    assert_int_equal(jsonin_init_fd(&j, fileno(f), "file"), 0);
    const char *t;
    size_t l;
    char err[256];
    int rc;
    while ((rc = jsonin_next(&j, &t, &l, err, sizeof(err))) == 0 && !j.eof)
        assert_true(jsonin_fill(&j) >= 0);
    assert_int_equal(rc, 1);
    assert_int_equal(l, 7 + 300000 + 2);
    assert_memory_equal(t, "{\"a\": \"xxx", 10);
    assert_memory_equal(t + l - 2, "\"}", 2);
    while ((rc = jsonin_next(&j, &t, &l, err, sizeof(err))) == 0 && !j.eof)
        assert_true(jsonin_fill(&j) >= 0);
    assert_int_equal(rc, 1);
    assert_int_equal(l, 2);
    jsonin_free(&j);
    fclose(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_sequence),
        cmocka_unit_test(test_empty_and_whitespace),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_pipe_byte_by_byte),
        cmocka_unit_test(test_large_object_across_fills),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
