/* The authentication decision (see al_auth.h). */
#include "al_auth.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <string.h>

void al_sha256(const void *data, size_t len, uint8_t out[AL_DIGEST_LEN])
{
    SHA256(data, len, out);
}

int al_hasher_init(al_hasher *h)
{
    h->last_len = 0;
    h->md = EVP_MD_fetch(NULL, "SHA256", NULL);
    h->ctx = EVP_MD_CTX_new();
    if (!h->md || !h->ctx) {
        al_hasher_free(h);
        return -ENOMEM;
    }
    return 0;
}

void al_hasher_free(al_hasher *h)
{
    OPENSSL_cleanse(h->last_token, sizeof h->last_token);
    h->last_len = 0;
    EVP_MD_CTX_free(h->ctx);
    EVP_MD_free(h->md);
    h->ctx = NULL;
    h->md = NULL;
}

int al_hasher_digest(al_hasher *h, const void *data, size_t len,
                     uint8_t out[AL_DIGEST_LEN])
{
    if (len && len == h->last_len && al_ct_equal(data, h->last_token, len)) {
        memcpy(out, h->last_digest, AL_DIGEST_LEN);
        return 0;
    }
    unsigned int n = 0;
    if (EVP_DigestInit_ex2(h->ctx, h->md, NULL) != 1 ||
        EVP_DigestUpdate(h->ctx, data, len) != 1 ||
        EVP_DigestFinal_ex(h->ctx, out, &n) != 1 || n != AL_DIGEST_LEN) {
        h->last_len = 0;
        return -EIO;
    }
    h->last_len = 0;
    if (len && len <= sizeof h->last_token) {
        memcpy(h->last_token, data, len);
        memcpy(h->last_digest, out, AL_DIGEST_LEN);
        h->last_len = len;
    }
    return 0;
}

static bool is_blank(uint8_t c)
{
    return c == ' ' || c == '\t';
}

/* RFC 6750 token68 characters but '=' (only allowed as trailing padding). */
static const uint8_t token68_chars[256] = {
    ['-'] = 1, ['.'] = 1, ['_'] = 1, ['~'] = 1, ['+'] = 1, ['/'] = 1,
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1,
    ['7'] = 1, ['8'] = 1, ['9'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1,
    ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1,
    ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1,
    ['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1,
    ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1,
    ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1,
    ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

static uint8_t lower(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c;
}

al_verdict al_bearer_parse(const uint8_t *v, size_t len, const uint8_t **tok,
                           size_t *tok_len)
{
    static const char scheme[] = "bearer";
    const size_t slen = sizeof scheme - 1;
    while (len && is_blank(v[0])) {
        v++;
        len--;
    }
    while (len && is_blank(v[len - 1]))
        len--;
    if (len < slen)
        return AL_MISSING;
    for (size_t i = 0; i < slen; i++)
        if (lower(v[i]) != (uint8_t)scheme[i])
            return AL_MISSING;
    if (len > slen && !is_blank(v[slen]))
        return AL_MISSING; /* "Bearerxyz": some other scheme */
    v += slen;
    len -= slen;
    while (len && is_blank(v[0])) {
        v++;
        len--;
    }
    if (len == 0)
        return AL_MISSING;
    if (len > AL_TOKEN_MAX)
        return AL_INVALID;
    /* token68: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" */
    size_t i = 0;
    while (i < len && token68_chars[v[i]])
        i++;
    if (i == 0)
        return AL_INVALID;
    while (i < len && v[i] == '=')
        i++;
    if (i != len)
        return AL_INVALID;
    *tok = v;
    *tok_len = len;
    return AL_ALLOW;
}

static const al_entry *identify(const al_tokens *tokens, const al_auth_req *req,
                                al_verdict *why)
{
    if (req->authorization) {
        const uint8_t *tok;
        size_t tok_len;
        *why = al_bearer_parse(req->authorization, req->authorization_len, &tok,
                               &tok_len);
        if (*why != AL_ALLOW)
            return NULL;
        uint8_t d[AL_DIGEST_LEN];
        if (!req->hasher)
            al_sha256(tok, tok_len, d);
        else if (al_hasher_digest(req->hasher, tok, tok_len, d)) {
            *why = AL_INVALID; /* cannot check it: refuse, never let it in */
            return NULL;
        }
        const al_entry *e = al_tokens_find_digest(tokens, d);
        *why = e ? AL_ALLOW : AL_INVALID;
        return e;
    }
    const al_entry *e = NULL;
    if (req->subject || req->n_sans)
        e = al_tokens_find_cert(tokens, req->subject, req->sans, req->n_sans);
    *why = e ? AL_ALLOW : AL_MISSING;
    return e;
}

al_verdict al_auth_decide(const al_tokens *tokens, const al_perms *exempt,
                          const al_auth_req *req, const al_entry **who)
{
    al_verdict v;
    *who = NULL;
    if (exempt && al_perms_match(exempt, req->method, req->method_len)) {
        /* Never refused; still attributed when the credentials are good. */
        *who = identify(tokens, req, &v);
        return AL_EXEMPT;
    }
    const al_entry *e = identify(tokens, req, &v);
    if (!e)
        return v;
    *who = e;
    return al_perms_match(&e->perms, req->method, req->method_len) ? AL_ALLOW
                                                                   : AL_DENIED;
}
