/* The authentication decision for one call, without any host state: which
 * credentials the call carries, who that is, and whether they may call the
 * method. al_state.c feeds it the current tables. Owner: al_auth.c. */
#ifndef AUTHLOG_AL_AUTH_H
#define AUTHLOG_AL_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/types.h>

#include "al_perm.h"
#include "al_tokens.h"

#define AL_TOKEN_MAX 4096 /* longer bearer tokens are refused unhashed */
#define AL_HASHER_CACHE_MAX 128 /* longer tokens are hashed every time */

#define AL_MSG_MISSING "missing bearer token"
#define AL_MSG_INVALID "invalid token"

typedef enum al_verdict {
    AL_ALLOW = 0,   /* known and allowed: *who is set */
    AL_EXEMPT,      /* exempt method: *who is set if credentials were valid */
    AL_MISSING,     /* UNAUTHENTICATED "missing bearer token" */
    AL_INVALID,     /* UNAUTHENTICATED "invalid token" */
    AL_DENIED       /* PERMISSION_DENIED: *who may not call the method */
} al_verdict;

/* A reusable SHA-256 context: the one-shot SHA256() of OpenSSL 3 fetches
 * the algorithm on every call (about 3x the cost of the hash itself on a
 * 43-byte token); a worker keeps one of these instead. */
typedef struct al_hasher {
    EVP_MD_CTX *ctx;
    EVP_MD *md;
    /* The last token hashed and its digest: a client sends the same token
     * on every call, and comparing (in constant time) is far cheaper than
     * hashing. Only the thread owning the hasher reads it; wiped on free. */
    size_t last_len; /* 0: empty */
    uint8_t last_digest[AL_DIGEST_LEN];
    uint8_t last_token[AL_HASHER_CACHE_MAX];
} al_hasher;

int al_hasher_init(al_hasher *h);   /* 0 or -ENOMEM */
void al_hasher_free(al_hasher *h);
/* SHA-256 of data (reusing the digest of the previous identical input).
 * 0, or -EIO if OpenSSL failed (the digest is then unusable). */
int al_hasher_digest(al_hasher *h, const void *data, size_t len,
                     uint8_t out[AL_DIGEST_LEN]);

typedef struct al_auth_req {
    const char *method;
    size_t method_len;
    const uint8_t *authorization; /* header value; NULL if absent */
    size_t authorization_len;
    const char *subject;          /* verified client certificate, or NULL */
    const char *const *sans;
    size_t n_sans;
    al_hasher *hasher;            /* the calling thread's; NULL: one-shot */
} al_auth_req;

/* Extracts the token of an `authorization: Bearer <token>` value.
 * Returns AL_ALLOW with *tok set, AL_MISSING (no Bearer scheme or empty
 * token) or AL_INVALID (characters outside RFC 6750's token68, or longer
 * than AL_TOKEN_MAX). */
al_verdict al_bearer_parse(const uint8_t *v, size_t len, const uint8_t **tok,
                           size_t *tok_len);

/* Decides a call. tokens may be NULL (no tokens file: nobody is known).
 * A bearer token, when present, decides alone; without one, a client
 * certificate mapped in the tokens file identifies the caller. */
al_verdict al_auth_decide(const al_tokens *tokens, const al_perms *exempt,
                          const al_auth_req *req, const al_entry **who);

/* SHA-256 (OpenSSL). */
void al_sha256(const void *data, size_t len, uint8_t out[AL_DIGEST_LEN]);

#endif
