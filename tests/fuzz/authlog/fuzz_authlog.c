/* plugins/authlog: byte 0 picks what the rest of the input is.
 *   0  a tokens file: parsed; every entry must then be found by what
 *      identifies it, and its permissions must match what they name;
 *   1  an `authorization` header value (and, after the first NUL, a method
 *      path): parsed and decided against a fixed tokens table; a verdict
 *      must agree with what the header and table say;
 *   2  a permission list (up to the first NUL) and a method path: `*` and
 *      service patterns never grant the admin service;
 *   3  an access-log record (fields separated by NULs): the line is one
 *      line, within AL_LINE_MAX, and in JSON mode a valid JSON object
 *      whose fields are the ones given. */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <string.h>

#include "al_auth.h"
#include "al_logline.h"
#include "al_perm.h"
#include "al_tokens.h"
#include "fuzz.h"

/* sha256("secret-token") and ("admin-token"), computed at start. */
static al_tokens *table;
static al_perms exempt;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    uint8_t d1[AL_DIGEST_LEN], d2[AL_DIGEST_LEN];
    al_sha256("secret-token", 12, d1);
    al_sha256("admin-token", 11, d2);
    char text[512], h1[65], h2[65];
    for (int i = 0; i < AL_DIGEST_LEN; i++) {
        snprintf(h1 + 2 * i, 3, "%02x", d1[i]);
        snprintf(h2 + 2 * i, 3, "%02x", d2[i]);
    }
    snprintf(text, sizeof text,
             "%s alice /Rides/* /grpc.testing.TestService/UnaryCall\n"
             "sha256:%s root * admin\n"
             "subject:CN=client1 bob /Rides/Start\n"
             "san:DNS:client2 carol *\n",
             h1, h2);
    char err[256];
    if (al_tokens_parse(text, strlen(text), &table, err, sizeof err) != 0) {
        fprintf(stderr, "fuzz_authlog: fixed table refused: %s\n", err);
        abort();
    }
    const char *why, *bad;
    size_t bad_len;
    if (al_perms_parse_list(&exempt, AL_DEFAULT_EXEMPT, &why, &bad, &bad_len) != 0) abort();
    return 0;
}

static bool admin_method(const char *m, size_t n)
{
    size_t p = sizeof AL_ADMIN_SERVICE_PREFIX - 1;
    return n >= p && memcmp(m, AL_ADMIN_SERVICE_PREFIX, p) == 0;
}

/* 0: the tokens file. */
static void tokens_file(const char *text, size_t len)
{
    al_tokens *t = NULL;
    char err[256] = "";
    int rv = al_tokens_parse(text, len, &t, err, sizeof err);
    FUZZ_CHECK(rv == 0 || rv == -EINVAL, "unexpected return %d", rv);
    if (rv) {
        FUZZ_CHECK(err[0] && strnlen(err, sizeof err) < sizeof err, "no error text");
        FUZZ_CHECK(strncmp(err, "line ", 5) == 0, "error without a line: %s", err);
        return;
    }
    FUZZ_CHECK(t->n == t->n_tokens + t->n_certs, "entry counts");
    for (size_t i = 0; i < t->n; i++) {
        const al_entry *e = &t->v[i];
        size_t pl = strlen(e->principal);
        FUZZ_CHECK(pl > 0 && pl <= AL_PRINCIPAL_MAX, "principal length %zu", pl);
        for (size_t k = 0; k < pl; k++)
            FUZZ_CHECK(e->principal[k] > 0x20 && e->principal[k] < 0x7f &&
                           e->principal[k] != '"' && e->principal[k] != '\\',
                       "bad principal byte");
        if (e->kind == AL_ID_TOKEN) {
            FUZZ_CHECK(al_tokens_find_digest(t, e->digest) == e, "token of line %u not found",
                       e->line);
        } else if (e->kind == AL_ID_SUBJECT) {
            FUZZ_CHECK(al_tokens_find_cert(t, e->id, NULL, 0) != NULL,
                       "subject of line %u not found", e->line);
        } else {
            const char *sans[1] = {e->id};
            FUZZ_CHECK(al_tokens_find_cert(t, NULL, sans, 1) != NULL,
                       "san of line %u not found", e->line);
        }
        for (size_t k = 0; k < e->perms.n; k++) {
            const al_perm *p = &e->perms.v[k];
            if (p->kind == AL_PERM_EXACT)
                FUZZ_CHECK(al_perms_match(&e->perms, p->str, p->len), "exact pattern");
        }
    }
    /* A digest nobody has: a miss, not a loop. */
    uint8_t zero[AL_DIGEST_LEN] = {0};
    const al_entry *z = al_tokens_find_digest(t, zero);
    FUZZ_CHECK(!z || memcmp(z->digest, zero, AL_DIGEST_LEN) == 0, "wrong digest match");
    al_tokens_free(t);
}

/* 1: the authorization header. */
static void bearer(const uint8_t *v, size_t len)
{
    const uint8_t *nul = memchr(v, 0, len);
    size_t hlen = nul ? (size_t)(nul - v) : len;
    char method[256] = "/Rides/Start";
    if (nul) {
        size_t ml = len - hlen - 1;
        if (ml >= sizeof method) ml = sizeof method - 1;
        memcpy(method, nul + 1, ml);
        method[ml] = 0;
    }
    const uint8_t *tok = NULL;
    size_t tok_len = 0;
    al_verdict pv = al_bearer_parse(v, hlen, &tok, &tok_len);
    FUZZ_CHECK(pv == AL_ALLOW || pv == AL_MISSING || pv == AL_INVALID, "verdict %d", pv);
    if (pv == AL_ALLOW) {
        FUZZ_CHECK(tok >= v && tok + tok_len <= v + hlen && tok_len > 0 &&
                       tok_len <= AL_TOKEN_MAX,
                   "token outside the header");
        for (size_t i = 0; i < tok_len; i++)
            FUZZ_CHECK(tok[i] > 0x20 && tok[i] < 0x7f, "blank or control in the token");
    }
    al_hasher h;
    bool hashed = al_hasher_init(&h) == 0;
    al_auth_req req = {.method = method, .method_len = strlen(method),
                       .authorization = v, .authorization_len = hlen,
                       .hasher = hashed ? &h : NULL};
    const al_entry *who = NULL;
    al_verdict d = al_auth_decide(table, &exempt, &req, &who);
    if (d == AL_ALLOW) {
        FUZZ_CHECK(who && pv == AL_ALLOW, "allowed without a valid token");
        FUZZ_CHECK((tok_len == 12 && memcmp(tok, "secret-token", 12) == 0) ||
                       (tok_len == 11 && memcmp(tok, "admin-token", 11) == 0),
                   "allowed with an unknown token");
        FUZZ_CHECK(al_perms_match(&who->perms, method, strlen(method)), "not permitted");
    }
    if (admin_method(method, strlen(method)) && d == AL_ALLOW)
        FUZZ_CHECK(strcmp(who->principal, "root") == 0, "admin for %s", who->principal);
    if (hashed) al_hasher_free(&h);
}

/* 2: permission list and method. */
static void perms(const uint8_t *v, size_t len)
{
    const uint8_t *nul = memchr(v, 0, len);
    if (!nul) return;
    size_t ll = (size_t)(nul - v);
    char *list = malloc(ll + 1);
    if (!list) return;
    memcpy(list, v, ll);
    list[ll] = 0;
    const char *method = (const char *)nul + 1;
    size_t mlen = len - ll - 1;
    al_perms ps = {0};
    const char *why = NULL, *bad = NULL;
    size_t bad_len = 0;
    int rv = al_perms_parse_list(&ps, list, &why, &bad, &bad_len);
    FUZZ_CHECK(rv == 0 || rv == -EINVAL, "unexpected return %d", rv);
    if (rv == -EINVAL)
        FUZZ_CHECK(why && bad >= list && bad + bad_len <= list + ll, "bad item outside");
    if (rv == 0 && al_perms_match(&ps, method, mlen) && admin_method(method, mlen))
        FUZZ_CHECK(al_perms_has_admin(&ps), "an admin method granted without admin rights");
    al_perms_free(&ps);
    free(list);
}

/* 3: an access-log line. */
static void logline(const uint8_t *v, size_t len)
{
    if (len < 16) return;
    al_logrec r = {0};
    uint64_t nums;
    memcpy(&nums, v, 8);
    r.status = (int)(int8_t)v[8];
    /* Counters as a process can reach them (below 2^63: jansson, the
     * checking parser, reads no larger integers). */
    r.duration_ns = nums >> 1;
    r.bytes_in = nums >> 7;
    /* bit 1 of byte 9: a compressed call (uncompressed sizes differ) */
    bool compressed = v[9] & 2;
    r.bytes_in_uncompressed = compressed ? r.bytes_in >> 1 : r.bytes_in;
    r.bytes_out_uncompressed = compressed ? nums >> 9 : r.bytes_out;
    r.time_sec = 1700000000 + (int64_t)(nums % 100000000);
    r.time_usec = (uint32_t)(nums % 1000000);
    al_log_format fmt = v[9] & 1 ? AL_FMT_JSON : AL_FMT_TEXT;
    /* method NUL peer NUL principal NUL message */
    char *s = malloc(len - 10 + 1);
    if (!s) return;
    memcpy(s, v + 10, len - 10);
    s[len - 10] = 0;
    const char *f[4] = {NULL, NULL, NULL, NULL};
    char *p = s, *end = s + (len - 10);
    for (int i = 0; i < 4 && p <= end; i++) {
        f[i] = p;
        p += strlen(p) + 1;
    }
    r.method = f[0];
    r.peer = f[1];
    r.principal = f[2];
    r.message = f[3];
    char buf[AL_LINE_MAX];
    size_t n = al_logline_format(buf, sizeof buf, fmt, &r, NULL);
    FUZZ_CHECK(n > 0 && n <= AL_LINE_MAX, "line length %zu", n);
    FUZZ_CHECK(buf[n - 1] == '\n', "no final newline");
    FUZZ_CHECK(memchr(buf, '\n', n - 1) == NULL && memchr(buf, '\r', n) == NULL &&
                   memchr(buf, 0, n) == NULL,
               "a field broke the line");
    if (fmt == AL_FMT_JSON) {
        json_error_t je;
        json_t *o = json_loadb(buf, n, 0, &je);
        FUZZ_CHECK(o && json_is_object(o), "not a JSON object (%s): %.*s", je.text, (int)n, buf);
        FUZZ_CHECK(json_integer_value(json_object_get(o, "bytes_in")) == (json_int_t)r.bytes_in,
                   "bytes_in lost");
        FUZZ_CHECK(json_integer_value(json_object_get(o, "bytes_out_uncompressed")) ==
                       (json_int_t)r.bytes_out_uncompressed,
                   "bytes_out_uncompressed lost");
        const char *m = json_string_value(json_object_get(o, "method"));
        FUZZ_CHECK(m, "no method");
        /* ASCII printable methods short enough come out unchanged. */
        bool plain = strlen(r.method) <= 512;
        for (const char *q = r.method; plain && *q; q++)
            plain = *q >= 0x20 && *q < 0x7f;
        if (plain) FUZZ_CHECK(strcmp(m, r.method) == 0, "method changed");
        json_decref(o);
    } else {
        /* Text: fields never contain a blank of their own. */
        size_t blanks = 0;
        for (size_t i = 0; i + 1 < n; i++) blanks += buf[i] == ' ';
        size_t msg_blanks = 0;
        const char *mq = memmem(buf, n, " message=\"", 10);
        if (mq)
            for (const char *q = mq + 10; q < buf + n - 1; q++) msg_blanks += *q == ' ';
        /* the uncompressed sizes: two more fields when they differ */
        bool sizes2 = r.bytes_in_uncompressed != r.bytes_in || r.bytes_out_uncompressed != r.bytes_out;
        FUZZ_CHECK(blanks - msg_blanks == (mq ? 9u : 8u) + (sizes2 ? 2u : 0u),
                   "%zu blanks outside the message: %.*s",
                   blanks - msg_blanks, (int)n, buf);
    }
    free(s);
}

/* A field just under AL_FIELD_MAX, an escaped byte, then a long plain run:
 * the run must still be cut at AL_FIELD_MAX. */
static void long_field_case(int fmt)
{
    size_t len = 10 + 899 + 1 + 3000 + 3;
    uint8_t *in = malloc(len);
    if (!in) return;
    memset(in, 0, len);
    in[8] = 0;
    in[9] = (uint8_t)fmt;
    memset(in + 10, 'a', 899);
    in[10 + 899] = 0x01;
    memset(in + 10 + 900, 'b', 3000);
    logline(in, len);
    free(in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool once;
    if (!once) {
        once = true;
        long_field_case(AL_FMT_JSON);
        long_field_case(AL_FMT_TEXT);
    }
    if (size < 1) return 0;
    /* exact copies, so ASan sees reads past the end */
    size_t len = size - 1;
    char *copy = malloc(len ? len : 1);
    if (!copy) return 0;
    memcpy(copy, data + 1, len);
    switch (data[0] & 3) {
    case 0: tokens_file(copy, len); break;
    case 1: bearer((const uint8_t *)copy, len); break;
    case 2: perms((const uint8_t *)copy, len); break;
    case 3: logline((const uint8_t *)copy, len); break;
    }
    free(copy);
    return 0;
}

FUZZ_CASES(
    FUZZ_CASE("\x00" "# comment\n\n  \t\r\n"),
    FUZZ_CASE("\x00" "\"subject:CN=a b, O=\\\"x\\\"\" p /S/*\n"),
    FUZZ_CASE("\x00" "san:URI:spiffe://x/y p * admin /a/b\r\n"),
    FUZZ_CASE("\x00" "subject:x p\nsubject:x q\n"),
    FUZZ_CASE("\x00" "\"unterminated p\n"),
    FUZZ_CASE("\x01" "Bearer secret-token"),
    FUZZ_CASE("\x01" "  bearer \t admin-token  \0/rpchost.admin.v1.Admin/List"),
    FUZZ_CASE("\x01" "Bearer secret-token\0/rpchost.admin.v1.Admin/List"),
    FUZZ_CASE("\x01" "Bearerx"),
    FUZZ_CASE("\x01" "Bearer ==="),
    FUZZ_CASE("\x01" "Bearer a=b"),
    FUZZ_CASE("\x02" "*\0/rpchost.admin.v1.Admin/Load"),
    FUZZ_CASE("\x02" "/rpchost.admin.v1.Admin/*, /x/y\0/rpchost.admin.v1.Admin/Load"),
    FUZZ_CASE("\x02" "/Svc/*\0/Svc/a/b"),
    FUZZ_CASE("\x03" "\x01\x02\x03\x04\x05\x06\x07\x08\x00\x01" "/m\0ipv4:1.2.3.4:5\0al\"ice\0msg \x01\xff"),
    FUZZ_CASE("\x03" "\x01\x02\x03\x04\x05\x06\x07\x08\x10\x00" "/m e\0\0\0a message"),
);
