/* The tokens file: parsing, errors with line numbers, lookups. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "al_auth.h"
#include "al_tokens.h"

static void hex(const uint8_t *d, char out[65])
{
    for (int i = 0; i < 32; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

static void digest_of(const char *tok, uint8_t d[32])
{
    al_sha256(tok, strlen(tok), d);
}

static al_tokens *parse_ok(const char *text)
{
    al_tokens *t = NULL;
    char err[400] = "";
    int rc = al_tokens_parse(text, strlen(text), &t, err, sizeof err);
    if (rc)
        fail_msg("parse failed: %s", err);
    return t;
}

static void parse_err(const char *text, const char *want)
{
    al_tokens *t = NULL;
    char err[400] = "";
    int rc = al_tokens_parse(text, strlen(text), &t, err, sizeof err);
    if (rc != -EINVAL)
        fail_msg("accepted: %s", text);
    if (!strstr(err, want))
        fail_msg("error '%s' does not say '%s'", err, want);
    assert_null(t);
}

static void test_sha256_known(void **st)
{
    (void)st;
    uint8_t d[32];
    char h[65];
    digest_of("abc", d);
    hex(d, h);
    assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_ct_equal(void **st)
{
    (void)st;
    uint8_t a[32] = {0}, b[32] = {0};
    assert_true(al_ct_equal(a, b, 32));
    for (int i = 0; i < 32; i++) {
        b[i] = 0x80;
        assert_false(al_ct_equal(a, b, 32));
        b[i] = 0;
    }
    assert_true(al_ct_equal(a, b, 0));
}

static void test_parse_and_find(void **st)
{
    (void)st;
    uint8_t d1[32], d2[32];
    char h1[65], h2[65];
    digest_of("token-one", d1);
    digest_of("token-two", d2);
    hex(d1, h1);
    hex(d2, h2);
    for (int i = 0; i < 64; i++) /* upper case hex is accepted too */
        if (h2[i] >= 'a')
            h2[i] -= 32;
    char text[2048];
    snprintf(text, sizeof text,
             "# tokens\n"
             "\n"
             "   %s alice /Rides/Start /grpc.testing.TestService/*   # trailing\n"
             "sha256:%s\tbob *\tadmin\r\n"
             "\"subject:/CN=dev client/O=rpchost\" carol /Rides/*\n"
             "san:URI:spiffe://rpchost.dev/dev-client dave *\n"
             "san:DNS:plain eve\n",
             h1, h2);
    al_tokens *t = parse_ok(text);
    assert_int_equal(t->n, 5);
    assert_int_equal(t->n_tokens, 2);
    assert_int_equal(t->n_certs, 3);
    const al_entry *e = al_tokens_find_digest(t, d1);
    assert_non_null(e);
    assert_string_equal(e->principal, "alice");
    assert_int_equal(e->line, 3);
    assert_int_equal(e->perms.n, 2);
    e = al_tokens_find_digest(t, d2);
    assert_non_null(e);
    assert_string_equal(e->principal, "bob");
    assert_true(al_perms_has_admin(&e->perms));
    uint8_t d3[32];
    digest_of("token-three", d3);
    assert_null(al_tokens_find_digest(t, d3));

    e = al_tokens_find_cert(t, "/CN=dev client/O=rpchost", NULL, 0);
    assert_non_null(e);
    assert_string_equal(e->principal, "carol");
    assert_null(al_tokens_find_cert(t, "/CN=dev client", NULL, 0));
    const char *sans[] = {"DNS:dev-client", "URI:spiffe://rpchost.dev/dev-client"};
    e = al_tokens_find_cert(t, "/CN=other", sans, 2);
    assert_non_null(e);
    assert_string_equal(e->principal, "dave");
    const char *untyped[] = {"plain"}; /* a host that reports bare values */
    e = al_tokens_find_cert(t, NULL, untyped, 1);
    assert_non_null(e);
    assert_string_equal(e->principal, "eve");
    assert_int_equal(e->perms.n, 0);
    const char *wrong_type[] = {"URI:plain"};
    assert_null(al_tokens_find_cert(t, NULL, wrong_type, 1));
    assert_null(al_tokens_find_cert(t, NULL, NULL, 0));
    al_tokens_free(t);
}

static void test_many_tokens(void **st)
{
    (void)st;
    size_t n = 5000;
    char *text = malloc(n * 100);
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        char tok[32], h[65];
        uint8_t d[32];
        snprintf(tok, sizeof tok, "tok-%zu", i);
        digest_of(tok, d);
        hex(d, h);
        len += (size_t)sprintf(text + len, "%s p%zu *\n", h, i);
    }
    al_tokens *t = NULL;
    char err[400];
    assert_int_equal(al_tokens_parse(text, len, &t, err, sizeof err), 0);
    assert_int_equal(t->n_tokens, n);
    for (size_t i = 0; i < n; i++) {
        char tok[32], want[32];
        uint8_t d[32];
        snprintf(tok, sizeof tok, "tok-%zu", i);
        snprintf(want, sizeof want, "p%zu", i);
        digest_of(tok, d);
        const al_entry *e = al_tokens_find_digest(t, d);
        assert_non_null(e);
        assert_string_equal(e->principal, want);
        snprintf(tok, sizeof tok, "nope-%zu", i);
        digest_of(tok, d);
        assert_null(al_tokens_find_digest(t, d));
    }
    al_tokens_free(t);
    free(text);
}

static void test_empty_file(void **st)
{
    (void)st;
    al_tokens *t = parse_ok("# nothing yet\n\n   \n");
    assert_int_equal(t->n, 0);
    uint8_t d[32];
    digest_of("x", d);
    assert_null(al_tokens_find_digest(t, d));
    al_tokens_free(t);
    t = parse_ok("");
    al_tokens_free(t);
}

static void test_errors(void **st)
{
    (void)st;
    uint8_t d[32];
    char h[65], text[600];
    digest_of("t", d);
    hex(d, h);
    parse_err("mysecrettoken alice *\n", "line 1: the first field must be the SHA-256");
    parse_err("# c\nabcd alice *\n", "line 2:");
    snprintf(text, sizeof text, "%s\n", h);
    parse_err(text, "line 1: expected IDENTITY PRINCIPAL");
    snprintf(text, sizeof text, "%s alice /Rides\n", h);
    parse_err(text, "line 1: a method pattern is");
    snprintf(text, sizeof text, "%s \"al ice\" *\n", h);
    parse_err(text, "line 1: bad principal");
    snprintf(text, sizeof text, "%s alice *\n%s bob *\n", h, h);
    parse_err(text, "line 2: the same token is already on line 1");
    parse_err("subject:/CN=a x *\nsubject:/CN=a y *\n", "line 2: subject:/CN=a is already mapped on line 1");
    parse_err("\"subject:/CN=a x *\n", "line 1: unterminated quote");
    parse_err("subject: x *\n", "line 1: empty subject: identity");
    snprintf(text, sizeof text, "%sz alice *\n", h);
    parse_err(text, "line 1: the first field");
    char *longline = malloc(AL_TOKENS_LINE_MAX + 100);
    memset(longline, 'a', AL_TOKENS_LINE_MAX + 10);
    longline[AL_TOKENS_LINE_MAX + 10] = '\0';
    parse_err(longline, "line 1: longer than");
    free(longline);
    char nul[] = "subject:a b\0c *\n";
    al_tokens *t = NULL;
    char err[400];
    assert_int_equal(al_tokens_parse(nul, sizeof nul - 1, &t, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "NUL"));
}

static void test_load_file(void **st)
{
    (void)st;
    char path[] = "/tmp/authlog-tokens-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    uint8_t d[32];
    char h[65], line[200];
    digest_of("secret", d);
    hex(d, h);
    int n = snprintf(line, sizeof line, "%s svc /Rides/*", h); /* no final newline */
    assert_int_equal(write(fd, line, (size_t)n), n);
    close(fd);
    al_tokens *t = NULL;
    char err[600];
    assert_int_equal(al_tokens_load(path, &t, err, sizeof err), 0);
    assert_non_null(al_tokens_find_digest(t, d));
    al_tokens_free(t);
    unlink(path);
    t = NULL;
    assert_int_equal(al_tokens_load(path, &t, err, sizeof err), -ENOENT);
    assert_non_null(strstr(err, path));
    assert_null(t);
    assert_int_equal(al_tokens_load("/tmp", &t, err, sizeof err), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_known),
        cmocka_unit_test(test_ct_equal),
        cmocka_unit_test(test_parse_and_find),
        cmocka_unit_test(test_many_tokens),
        cmocka_unit_test(test_empty_file),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_load_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
