/* The auth decision: header parsing and every verdict. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "al_auth.h"

static al_verdict bearer(const char *v, char *tok_out)
{
    const uint8_t *tok = NULL;
    size_t len = 0;
    al_verdict r = al_bearer_parse((const uint8_t *)v, strlen(v), &tok, &len);
    if (r == AL_ALLOW && tok_out) {
        memcpy(tok_out, tok, len);
        tok_out[len] = '\0';
    }
    return r;
}

static void test_bearer_parse(void **st)
{
    (void)st;
    char tok[5000];
    assert_int_equal(bearer("Bearer abc", tok), AL_ALLOW);
    assert_string_equal(tok, "abc");
    assert_int_equal(bearer("bearer   a-b_c.d~e+f/g==  ", tok), AL_ALLOW);
    assert_string_equal(tok, "a-b_c.d~e+f/g==");
    assert_int_equal(bearer("BEARER\tx", tok), AL_ALLOW);
    assert_string_equal(tok, "x");
    /* no scheme, other scheme, empty token: "missing bearer token" */
    assert_int_equal(bearer("", NULL), AL_MISSING);
    assert_int_equal(bearer("abc", NULL), AL_MISSING);
    assert_int_equal(bearer("Basic dXNlcjpwYXNz", NULL), AL_MISSING);
    assert_int_equal(bearer("Bearer", NULL), AL_MISSING);
    assert_int_equal(bearer("Bearer    ", NULL), AL_MISSING);
    assert_int_equal(bearer("Bearerabc", NULL), AL_MISSING);
    assert_int_equal(bearer("Bear abc", NULL), AL_MISSING);
    /* a token outside token68: "invalid token" */
    assert_int_equal(bearer("Bearer a b", NULL), AL_INVALID);
    assert_int_equal(bearer("Bearer =abc", NULL), AL_INVALID);
    assert_int_equal(bearer("Bearer ab=c", NULL), AL_INVALID);
    assert_int_equal(bearer("Bearer a\"b", NULL), AL_INVALID);
    /* 8 KiB of junk */
    char *junk = malloc(8200);
    strcpy(junk, "Bearer ");
    for (int i = 7; i < 8199; i++)
        junk[i] = (char)('!' + i % 90);
    junk[8199] = '\0';
    assert_int_equal(bearer(junk, NULL), AL_INVALID);
    memset(junk + 7, 'A', 8192);
    junk[8199] = '\0';
    assert_int_equal(bearer(junk, NULL), AL_INVALID); /* too long */
    memset(junk, 'x', 8199);
    assert_int_equal(bearer(junk, NULL), AL_MISSING); /* no scheme */
    free(junk);
    /* the longest token accepted */
    char *max = malloc(AL_TOKEN_MAX + 8);
    strcpy(max, "Bearer ");
    memset(max + 7, 'q', AL_TOKEN_MAX);
    max[7 + AL_TOKEN_MAX] = '\0';
    const uint8_t *t;
    size_t tl;
    assert_int_equal(al_bearer_parse((uint8_t *)max, strlen(max), &t, &tl), AL_ALLOW);
    assert_int_equal(tl, AL_TOKEN_MAX);
    free(max);
}

static al_tokens *tokens;
static al_perms exempt;
static al_hasher hasher;

static int setup(void **st)
{
    (void)st;
    char text[2048];
    uint8_t d[3][32];
    al_sha256("alice-token", 11, d[0]);
    al_sha256("bob-token", 9, d[1]);
    al_sha256("ops-token", 9, d[2]);
    char h[3][65];
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < 32; i++)
            sprintf(h[k] + 2 * i, "%02x", d[k][i]);
    snprintf(text, sizeof text,
             "%s alice /Rides/Start /grpc.testing.TestService/*\n"
             "%s bob /Rides/Track\n"
             "%s ops * admin\n"
             "subject:/CN=dev-client/O=rpchost certguy /Rides/*\n"
             "san:URI:spiffe://x/y sanguy /grpc.testing.TestService/EmptyCall\n",
             h[0], h[1], h[2]);
    char err[400];
    assert_int_equal(al_tokens_parse(text, strlen(text), &tokens, err, sizeof err), 0);
    const char *why, *bad;
    size_t bl;
    assert_int_equal(al_perms_parse_list(&exempt, AL_DEFAULT_EXEMPT, &why, &bad, &bl), 0);
    assert_int_equal(al_hasher_init(&hasher), 0);
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    al_tokens_free(tokens);
    al_perms_free(&exempt);
    al_hasher_free(&hasher);
    return 0;
}

static al_verdict decide(const al_tokens *t, const char *method, const char *authz,
                         const char *subject, const char *san, const char **who)
{
    al_auth_req r = {0};
    r.method = method;
    r.method_len = strlen(method);
    if (authz) {
        r.authorization = (const uint8_t *)authz;
        r.authorization_len = strlen(authz);
    }
    r.subject = subject;
    /* the workers' reusable hasher; the file was made with one-shot SHA256 */
    r.hasher = (r.method_len & 1) ? &hasher : NULL;
    const char *sans[1] = {san};
    if (san) {
        r.sans = sans;
        r.n_sans = 1;
    }
    const al_entry *e = NULL;
    al_verdict v = al_auth_decide(t, &exempt, &r, &e);
    *who = e ? e->principal : NULL;
    return v;
}

static void test_decide(void **st)
{
    (void)st;
    const char *who;
    assert_int_equal(decide(tokens, "/Rides/Start", "Bearer alice-token", NULL, NULL, &who), AL_ALLOW);
    assert_string_equal(who, "alice");
    assert_int_equal(decide(tokens, "/grpc.testing.TestService/UnaryCall", "Bearer alice-token", NULL, NULL, &who), AL_ALLOW);
    assert_int_equal(decide(tokens, "/Rides/Track", "Bearer alice-token", NULL, NULL, &who), AL_DENIED);
    assert_string_equal(who, "alice");
    assert_int_equal(decide(tokens, "/Rides/Track", "Bearer bob-token", NULL, NULL, &who), AL_ALLOW);
    assert_int_equal(decide(tokens, "/Rides/Start", NULL, NULL, NULL, &who), AL_MISSING);
    assert_null(who);
    assert_int_equal(decide(tokens, "/Rides/Start", "Bearer nope", NULL, NULL, &who), AL_INVALID);
    assert_null(who);
    assert_int_equal(decide(tokens, "/Rides/Start", "Bearer ", NULL, NULL, &who), AL_MISSING);
    assert_int_equal(decide(tokens, "/Rides/Start", "alice-token", NULL, NULL, &who), AL_MISSING);
    /* admin only by name */
    assert_int_equal(decide(tokens, "/rpchost.admin.v1.Admin/List", "Bearer ops-token", NULL, NULL, &who), AL_ALLOW);
    assert_int_equal(decide(tokens, "/Rides/Start", "Bearer ops-token", NULL, NULL, &who), AL_ALLOW);
    assert_int_equal(decide(tokens, "/rpchost.admin.v1.Admin/List", "Bearer alice-token", NULL, NULL, &who), AL_DENIED);
}

static void test_exempt(void **st)
{
    (void)st;
    const char *who;
    assert_int_equal(decide(tokens, "/grpc.health.v1.Health/Check", NULL, NULL, NULL, &who), AL_EXEMPT);
    assert_null(who);
    assert_int_equal(decide(tokens, "/grpc.health.v1.Health/Check", "Bearer junk", NULL, NULL, &who), AL_EXEMPT);
    assert_null(who);
    assert_int_equal(decide(tokens, "/grpc.health.v1.Health/Check", "Bearer bob-token", NULL, NULL, &who), AL_EXEMPT);
    assert_string_equal(who, "bob");
    assert_int_equal(decide(tokens, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", NULL, NULL, NULL, &who), AL_EXEMPT);
}

static void test_certificates(void **st)
{
    (void)st;
    const char *who;
    assert_int_equal(decide(tokens, "/Rides/Track", NULL, "/CN=dev-client/O=rpchost", NULL, &who), AL_ALLOW);
    assert_string_equal(who, "certguy");
    assert_int_equal(decide(tokens, "/grpc.testing.TestService/EmptyCall", NULL, "/CN=dev-client/O=rpchost", NULL, &who), AL_DENIED);
    assert_int_equal(decide(tokens, "/grpc.testing.TestService/EmptyCall", NULL, "/CN=other", "URI:spiffe://x/y", &who), AL_ALLOW);
    assert_string_equal(who, "sanguy");
    assert_int_equal(decide(tokens, "/Rides/Start", NULL, "/CN=unknown", "DNS:unknown", &who), AL_MISSING);
    /* a bearer token decides alone, even next to a good certificate */
    assert_int_equal(decide(tokens, "/Rides/Track", "Bearer nope", "/CN=dev-client/O=rpchost", NULL, &who), AL_INVALID);
    assert_int_equal(decide(tokens, "/Rides/Track", "Bearer bob-token", "/CN=dev-client/O=rpchost", NULL, &who), AL_ALLOW);
    assert_string_equal(who, "bob");
}

static void test_hasher_matches_sha256(void **st)
{
    (void)st;
    uint8_t a[32], b[32];
    for (size_t n = 0; n < 300; n += 7) {
        char buf[300];
        memset(buf, (int)n, n);
        al_sha256(buf, n, a);
        assert_int_equal(al_hasher_digest(&hasher, buf, n, b), 0);
        assert_memory_equal(a, b, 32);
    }
}

/* The hasher's last-token cache never hands out the digest of another
 * token, same length or not. */
static void test_hasher_cache(void **st)
{
    (void)st;
    const char *toks[] = {"token-aaaa", "token-aaab", "token-aaaa", "token-aaaa", "x",
                          "token-aaab", "", "token-aaab"};
    for (size_t i = 0; i < sizeof toks / sizeof toks[0]; i++) {
        uint8_t a[32], b[32];
        al_sha256(toks[i], strlen(toks[i]), a);
        assert_int_equal(al_hasher_digest(&hasher, toks[i], strlen(toks[i]), b), 0);
        assert_memory_equal(a, b, 32);
    }
    char big[300];
    memset(big, 'b', sizeof big); /* longer than the cache: hashed each time */
    for (int k = 0; k < 2; k++) {
        uint8_t a[32], b[32];
        big[299] = (char)('0' + k);
        al_sha256(big, sizeof big, a);
        assert_int_equal(al_hasher_digest(&hasher, big, sizeof big, b), 0);
        assert_memory_equal(a, b, 32);
    }
}

static void test_no_tokens_file(void **st)
{
    (void)st;
    const char *who;
    assert_int_equal(decide(NULL, "/Rides/Start", "Bearer alice-token", NULL, NULL, &who), AL_INVALID);
    assert_int_equal(decide(NULL, "/Rides/Start", NULL, "/CN=dev-client/O=rpchost", NULL, &who), AL_MISSING);
    assert_int_equal(decide(NULL, "/grpc.health.v1.Health/Check", NULL, NULL, NULL, &who), AL_EXEMPT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bearer_parse),
        cmocka_unit_test(test_decide),
        cmocka_unit_test(test_exempt),
        cmocka_unit_test(test_certificates),
        cmocka_unit_test(test_hasher_matches_sha256),
        cmocka_unit_test(test_hasher_cache),
        cmocka_unit_test(test_no_tokens_file),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
