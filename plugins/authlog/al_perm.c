/* Method permission patterns (see al_perm.h). */
#include "al_perm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static bool is_sep(char c)
{
    return c == ',' || c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* A service or method name: printable ASCII without '/', '*' or spaces. */
static bool name_ok(const char *s, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f || c == '/' || c == '*')
            return false;
    }
    return true;
}

static int push(al_perms *ps, al_perm_kind kind, const char *s, size_t len)
{
    if (ps->n == ps->cap) {
        size_t cap = ps->cap ? ps->cap * 2 : 4;
        al_perm *v = realloc(ps->v, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        ps->v = v;
        ps->cap = cap;
    }
    al_perm *p = &ps->v[ps->n];
    p->kind = kind;
    p->len = len;
    p->str = NULL;
    if (s) {
        p->str = malloc(len + 1);
        if (!p->str)
            return -ENOMEM;
        memcpy(p->str, s, len);
        p->str[len] = '\0';
    }
    ps->n++;
    return 0;
}

int al_perms_add(al_perms *ps, const char *pat, size_t len, const char **why)
{
    if (len == 1 && pat[0] == '*')
        return push(ps, AL_PERM_ALL, NULL, 0);
    if (len == 5 && memcmp(pat, "admin", 5) == 0)
        return push(ps, AL_PERM_ADMIN, NULL, 0);
    if (len < 2 || pat[0] != '/') {
        *why = "a method pattern is *, admin, /Service/* or /Service/Method";
        return -EINVAL;
    }
    const char *slash = memchr(pat + 1, '/', len - 1);
    if (!slash) {
        *why = "a method pattern is *, admin, /Service/* or /Service/Method";
        return -EINVAL;
    }
    size_t svc_len = (size_t)(slash - pat - 1);
    const char *rest = slash + 1;
    size_t rest_len = len - svc_len - 2;
    if (!name_ok(pat + 1, svc_len)) {
        *why = "bad service name in method pattern";
        return -EINVAL;
    }
    if (rest_len == 1 && rest[0] == '*')
        return push(ps, AL_PERM_SERVICE, pat, len - 1); /* keep "/Service/" */
    if (!name_ok(rest, rest_len)) {
        *why = "bad method name in method pattern (only a whole service may be "
               "matched with /Service/*)";
        return -EINVAL;
    }
    return push(ps, AL_PERM_EXACT, pat, len);
}

int al_perms_parse_list(al_perms *ps, const char *list, const char **why,
                        const char **bad, size_t *bad_len)
{
    const char *p = list;
    while (*p) {
        while (*p && is_sep(*p))
            p++;
        const char *start = p;
        while (*p && !is_sep(*p))
            p++;
        if (p == start)
            break;
        int rc = al_perms_add(ps, start, (size_t)(p - start), why);
        if (rc == -EINVAL) {
            *bad = start;
            *bad_len = (size_t)(p - start);
        }
        if (rc)
            return rc;
    }
    return 0;
}

static bool is_admin_method(const char *method, size_t len)
{
    size_t plen = sizeof AL_ADMIN_SERVICE_PREFIX - 1;
    return len >= plen && memcmp(method, AL_ADMIN_SERVICE_PREFIX, plen) == 0;
}

bool al_perms_match(const al_perms *ps, const char *method, size_t method_len)
{
    bool admin = is_admin_method(method, method_len);
    for (size_t i = 0; i < ps->n; i++) {
        const al_perm *p = &ps->v[i];
        switch (p->kind) {
        case AL_PERM_ALL:
            if (!admin)
                return true;
            break;
        case AL_PERM_ADMIN:
            if (admin)
                return true;
            break;
        case AL_PERM_SERVICE:
            if (method_len > p->len && memcmp(method, p->str, p->len) == 0 &&
                !memchr(method + p->len, '/', method_len - p->len))
                return true;
            break;
        case AL_PERM_EXACT:
            if (method_len == p->len && memcmp(method, p->str, p->len) == 0)
                return true;
            break;
        }
    }
    return false;
}

bool al_perms_has_admin(const al_perms *ps)
{
    size_t plen = sizeof AL_ADMIN_SERVICE_PREFIX - 1;
    for (size_t i = 0; i < ps->n; i++) {
        const al_perm *p = &ps->v[i];
        if (p->kind == AL_PERM_ADMIN ||
            ((p->kind == AL_PERM_EXACT || p->kind == AL_PERM_SERVICE) &&
             p->len >= plen && memcmp(p->str, AL_ADMIN_SERVICE_PREFIX, plen) == 0))
            return true;
    }
    return false;
}

void al_perms_free(al_perms *ps)
{
    for (size_t i = 0; i < ps->n; i++)
        free(ps->v[i].str);
    free(ps->v);
    ps->v = NULL;
    ps->n = ps->cap = 0;
}
