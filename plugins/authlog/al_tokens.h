/* The tokens file, parsed into an immutable table.
 *
 * One entry a line; '#' starts a comment; fields are separated by blanks and
 * a field may be double-quoted (with \" and \\ inside) to hold blanks:
 *
 *   IDENTITY  PRINCIPAL  [PERMISSION ...]
 *
 * IDENTITY is one of
 *   <64 hex digits> or sha256:<64 hex digits>  SHA-256 of a bearer token
 *   subject:<subject>    a verified client certificate's subject, exactly
 *                        as the host reports it
 *   san:<TYPE:value>     one of its subjectAltNames, e.g. san:DNS:client1,
 *                        san:URI:spiffe://example/client1
 * PRINCIPAL is the name the call runs as (printable, no blanks or quotes,
 * at most AL_PRINCIPAL_MAX bytes). PERMISSIONs are al_perm.h patterns.
 *
 * A table is built once and never changed; the plugin swaps whole tables
 * (al_state.c). Owner: al_tokens.c. */
#ifndef AUTHLOG_AL_TOKENS_H
#define AUTHLOG_AL_TOKENS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "al_perm.h"

#define AL_DIGEST_LEN 32
#define AL_PRINCIPAL_MAX 128
#define AL_TOKENS_FILE_MAX (16u << 20) /* refuse larger files */
#define AL_TOKENS_LINE_MAX 8192

typedef enum al_id_kind { AL_ID_TOKEN = 0, AL_ID_SUBJECT, AL_ID_SAN } al_id_kind;

typedef struct al_entry {
    al_id_kind kind;
    uint8_t digest[AL_DIGEST_LEN]; /* AL_ID_TOKEN */
    char *id;                      /* AL_ID_SUBJECT / AL_ID_SAN value */
    char *principal;
    al_perms perms;
    unsigned line;
} al_entry;

typedef struct al_tokens {
    al_entry *v;
    size_t n, cap;
    size_t n_tokens, n_certs;
    /* Open-addressing index of the token entries by digest: 0 = empty,
     * otherwise entry index + 1. n_slots is a power of two. */
    uint32_t *slots;
    size_t n_slots;
} al_tokens;

/* Parses a whole file's text. On error returns -EINVAL (or -ENOMEM) and
 * writes "line N: why" into err. */
int al_tokens_parse(const char *text, size_t len, al_tokens **out, char *err,
                    size_t errlen);
/* Reads a whole regular file of at most max bytes into a malloc'd buffer
 * (*out, freed by the caller). -EAGAIN if it grew while being read. */
int al_read_file(const char *path, size_t max, char **out, size_t *out_len,
                 char *err, size_t errlen);
/* Reads and parses a file; errors name the file. */
int al_tokens_load(const char *path, al_tokens **out, char *err, size_t errlen);
void al_tokens_free(al_tokens *t);

/* The entry whose token digest is d, or NULL. Digests are compared in
 * constant time; the probe sequence depends only on the digest. */
const al_entry *al_tokens_find_digest(const al_tokens *t,
                                      const uint8_t d[AL_DIGEST_LEN]);
/* The entry mapping a client certificate (its subject or any SAN), or
 * NULL. subject and sans may be NULL. */
const al_entry *al_tokens_find_cert(const al_tokens *t, const char *subject,
                                    const char *const *sans, size_t n_sans);

/* Constant-time equality of two byte strings of the same length. */
bool al_ct_equal(const void *a, const void *b, size_t n);

#endif
