/* The tokens file (see al_tokens.h). */
#include "al_tokens.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Every byte is always read and folded in: the time depends on n only.
 * Words first (8 bytes at a time), then the tail. */
bool al_ct_equal(const void *a, const void *b, size_t n)
{
    const unsigned char *x = a, *y = b;
    uint64_t diff = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t u, v;
        memcpy(&u, x + i, 8);
        memcpy(&v, y + i, 8);
        diff |= u ^ v;
    }
    for (; i < n; i++)
        diff |= (uint64_t)(x[i] ^ y[i]);
    /* keep the compiler from turning the fold into an early exit */
    __asm__ volatile("" : "+r"(diff));
    return diff == 0;
}

static void errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void errf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static void entry_free(al_entry *e)
{
    free(e->id);
    free(e->principal);
    al_perms_free(&e->perms);
}

void al_tokens_free(al_tokens *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++)
        entry_free(&t->v[i]);
    free(t->v);
    free(t->slots);
    free(t);
}

/* --- one line into fields ---------------------------------------------- */

#define MAX_FIELDS 256

typedef struct field {
    char *s; /* NUL-terminated, quotes removed (points into the line copy) */
    size_t len;
} field;

/* Splits a mutable line into fields in place. Returns the field count or
 * -1 with *why set. */
static int split_fields(char *line, field *f, const char **why)
{
    int n = 0;
    char *p = line;
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '\0' || *p == '#')
            return n;
        if (n == MAX_FIELDS) {
            *why = "too many fields";
            return -1;
        }
        char *out = p, *start = p;
        bool quoted = false;
        while (*p && (quoted || (*p != ' ' && *p != '\t'))) {
            if (*p == '"') {
                quoted = !quoted;
                p++;
            } else if (quoted && *p == '\\' && (p[1] == '"' || p[1] == '\\')) {
                *out++ = p[1];
                p += 2;
            } else {
                *out++ = *p++;
            }
        }
        if (quoted) {
            *why = "unterminated quote";
            return -1;
        }
        bool more = *p != '\0';
        *out = '\0';
        f[n].s = start;
        f[n].len = (size_t)(out - start);
        n++;
        if (!more)
            return n;
        p++;
    }
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool parse_digest(const char *s, size_t len, uint8_t d[AL_DIGEST_LEN])
{
    if (len != 2 * AL_DIGEST_LEN)
        return false;
    for (size_t i = 0; i < AL_DIGEST_LEN; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        d[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

static bool principal_ok(const char *s, size_t len)
{
    if (len == 0 || len > AL_PRINCIPAL_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\')
            return false;
    }
    return true;
}

static int grow(al_tokens *t)
{
    if (t->n < t->cap)
        return 0;
    size_t cap = t->cap ? t->cap * 2 : 16;
    al_entry *v = realloc(t->v, cap * sizeof *v);
    if (!v)
        return -ENOMEM;
    t->v = v;
    t->cap = cap;
    return 0;
}

static const al_entry *find_id(const al_tokens *t, al_id_kind kind, const char *id)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->v[i].kind == kind && strcmp(t->v[i].id, id) == 0)
            return &t->v[i];
    return NULL;
}

static size_t slot_of(const uint8_t d[AL_DIGEST_LEN], size_t mask)
{
    uint64_t h;
    memcpy(&h, d, sizeof h); /* a SHA-256 output is already uniform */
    return (size_t)h & mask;
}

/* Parses one line (already split) into a new entry of t. */
static int parse_entry(al_tokens *t, field *f, int nf, unsigned lineno,
                       char *err, size_t errlen)
{
    if (nf < 2) {
        errf(err, errlen, "line %u: expected IDENTITY PRINCIPAL [METHODS...]",
             lineno);
        return -EINVAL;
    }
    int rc = grow(t);
    if (rc)
        return rc;
    al_entry *e = &t->v[t->n];
    memset(e, 0, sizeof *e);
    e->line = lineno;
    const char *id = f[0].s;
    size_t id_len = f[0].len;
    if (strncmp(id, "subject:", 8) == 0 || strncmp(id, "san:", 4) == 0) {
        bool subj = id[1] == 'u';
        size_t skip = subj ? 8 : 4;
        if (id_len == skip) {
            errf(err, errlen, "line %u: empty %s identity", lineno,
                 subj ? "subject:" : "san:");
            return -EINVAL;
        }
        e->kind = subj ? AL_ID_SUBJECT : AL_ID_SAN;
        const al_entry *dup = find_id(t, e->kind, id + skip);
        if (dup) {
            errf(err, errlen, "line %u: %s is already mapped on line %u", lineno,
                 id, dup->line);
            return -EINVAL;
        }
        e->id = strdup(id + skip);
        if (!e->id)
            return -ENOMEM;
    } else {
        if (strncmp(id, "sha256:", 7) == 0) {
            id += 7;
            id_len -= 7;
        }
        if (!parse_digest(id, id_len, e->digest)) {
            errf(err, errlen,
                 "line %u: the first field must be the SHA-256 of a token as 64 "
                 "hex digits (scripts/rpchost-token makes them), subject:... "
                 "or san:...", lineno);
            return -EINVAL;
        }
        e->kind = AL_ID_TOKEN;
    }
    if (!principal_ok(f[1].s, f[1].len)) {
        errf(err, errlen,
             "line %u: bad principal (1-%d printable characters, no blanks or "
             "quotes)", lineno, AL_PRINCIPAL_MAX);
        entry_free(e);
        return -EINVAL;
    }
    e->principal = strdup(f[1].s);
    if (!e->principal) {
        entry_free(e);
        return -ENOMEM;
    }
    for (int i = 2; i < nf; i++) {
        const char *why = NULL;
        rc = al_perms_add(&e->perms, f[i].s, f[i].len, &why);
        if (rc == -EINVAL)
            errf(err, errlen, "line %u: %s: '%s'", lineno, why, f[i].s);
        if (rc) {
            entry_free(e);
            return rc;
        }
    }
    t->n++;
    if (e->kind == AL_ID_TOKEN)
        t->n_tokens++;
    else
        t->n_certs++;
    return 0;
}

/* Builds the digest index; refuses duplicate tokens. */
static int build_index(al_tokens *t, char *err, size_t errlen)
{
    size_t n_slots = 16;
    while (n_slots < t->n_tokens * 2)
        n_slots *= 2;
    t->slots = calloc(n_slots, sizeof *t->slots);
    if (!t->slots)
        return -ENOMEM;
    t->n_slots = n_slots;
    for (size_t i = 0; i < t->n; i++) {
        const al_entry *e = &t->v[i];
        if (e->kind != AL_ID_TOKEN)
            continue;
        size_t s = slot_of(e->digest, n_slots - 1);
        while (t->slots[s]) {
            const al_entry *o = &t->v[t->slots[s] - 1];
            if (memcmp(o->digest, e->digest, AL_DIGEST_LEN) == 0) {
                errf(err, errlen, "line %u: the same token is already on line %u",
                     e->line, o->line);
                return -EINVAL;
            }
            s = (s + 1) & (n_slots - 1);
        }
        t->slots[s] = (uint32_t)(i + 1);
    }
    return 0;
}

int al_tokens_parse(const char *text, size_t len, al_tokens **out, char *err,
                    size_t errlen)
{
    al_tokens *t = calloc(1, sizeof *t);
    char *line = malloc(AL_TOKENS_LINE_MAX + 1);
    field *f = malloc(MAX_FIELDS * sizeof *f);
    int rc = 0;
    if (!t || !line || !f) {
        rc = -ENOMEM;
        goto done;
    }
    unsigned lineno = 0;
    size_t pos = 0;
    while (pos < len && rc == 0) {
        lineno++;
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len;
        size_t ll = end - pos;
        if (ll > 0 && text[end - 1] == '\r')
            ll--;
        if (ll > AL_TOKENS_LINE_MAX) {
            errf(err, errlen, "line %u: longer than %u bytes", lineno,
                 AL_TOKENS_LINE_MAX);
            rc = -EINVAL;
            break;
        }
        if (memchr(text + pos, '\0', ll)) {
            errf(err, errlen, "line %u: contains a NUL byte", lineno);
            rc = -EINVAL;
            break;
        }
        memcpy(line, text + pos, ll);
        line[ll] = '\0';
        pos = nl ? end + 1 : len;
        const char *why = NULL;
        int nf = split_fields(line, f, &why);
        if (nf < 0) {
            errf(err, errlen, "line %u: %s", lineno, why);
            rc = -EINVAL;
        } else if (nf > 0) {
            rc = parse_entry(t, f, nf, lineno, err, errlen);
        }
    }
    if (rc == 0 && t->n > UINT32_MAX - 1) {
        errf(err, errlen, "too many entries");
        rc = -EINVAL;
    }
    if (rc == 0)
        rc = build_index(t, err, errlen);
done:
    if (rc == -ENOMEM)
        errf(err, errlen, "out of memory");
    free(line);
    free(f);
    if (rc) {
        al_tokens_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

int al_read_file(const char *path, size_t max, char **out, size_t *out_len,
                 char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        errf(err, errlen, "cannot open %s: %s", path, strerror(e));
        return -e;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        errf(err, errlen, "%s is not a regular file", path);
        close(fd);
        return -EINVAL;
    }
    if ((uint64_t)st.st_size > max) {
        errf(err, errlen, "%s is larger than %zu bytes", path, max);
        close(fd);
        return -EFBIG;
    }
    /* Read up to one byte more than fstat said, to notice growth. */
    size_t cap = (size_t)st.st_size + 1, len = 0;
    char *buf = malloc(cap);
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    while (len < cap) {
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            errf(err, errlen, "cannot read %s: %s", path, strerror(e));
            free(buf);
            close(fd);
            return -e;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    if (len == cap) { /* it grew while we read: the caller retries later */
        errf(err, errlen, "%s changed while being read", path);
        free(buf);
        return -EAGAIN;
    }
    *out = buf;
    *out_len = len;
    return 0;
}

int al_tokens_load(const char *path, al_tokens **out, char *err, size_t errlen)
{
    char *buf;
    size_t len;
    int rc = al_read_file(path, AL_TOKENS_FILE_MAX, &buf, &len, err, errlen);
    if (rc)
        return rc;
    char perr[400];
    rc = al_tokens_parse(buf, len, out, perr, sizeof perr);
    free(buf);
    if (rc)
        errf(err, errlen, "%s %s", path, perr);
    return rc;
}

const al_entry *al_tokens_find_digest(const al_tokens *t,
                                      const uint8_t d[AL_DIGEST_LEN])
{
    if (!t || !t->n_slots)
        return NULL;
    size_t mask = t->n_slots - 1;
    for (size_t s = slot_of(d, mask);; s = (s + 1) & mask) {
        uint32_t i = t->slots[s];
        if (!i)
            return NULL;
        if (al_ct_equal(t->v[i - 1].digest, d, AL_DIGEST_LEN))
            return &t->v[i - 1];
    }
}

/* SAN text: "TYPE:value" in the file; hosts may report either form. */
static bool san_equal(const char *conf, const char *got)
{
    if (strcmp(conf, got) == 0)
        return true;
    static const char *const types[] = {"DNS:", "IP:", "URI:", "email:"};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        size_t n = strlen(types[i]);
        if (strncmp(got, types[i], n) == 0)
            return false; /* typed, and already compared exactly */
    }
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        size_t n = strlen(types[i]);
        if (strncmp(conf, types[i], n) == 0)
            return strcmp(conf + n, got) == 0;
    }
    return false;
}

const al_entry *al_tokens_find_cert(const al_tokens *t, const char *subject,
                                    const char *const *sans, size_t n_sans)
{
    if (!t || !t->n_certs)
        return NULL;
    for (size_t i = 0; i < t->n; i++) {
        const al_entry *e = &t->v[i];
        if (e->kind == AL_ID_SUBJECT && subject && strcmp(e->id, subject) == 0)
            return e;
        if (e->kind == AL_ID_SAN)
            for (size_t j = 0; j < n_sans; j++)
                if (sans[j] && san_equal(e->id, sans[j]))
                    return e;
    }
    return NULL;
}
