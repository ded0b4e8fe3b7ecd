/* Minimal protobuf wire reader/writer (see pbwire.h). */
#include "pbwire.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int varint(pbw_reader *r, uint64_t *v)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end)
            return -EINVAL;
        uint8_t b = *r->p++;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return -EINVAL;
}

int pbw_next(pbw_reader *r, pbw_field *f)
{
    if (r->p >= r->end)
        return 0;
    uint64_t key;
    if (varint(r, &key) < 0 || (key >> 3) == 0 || (key >> 3) > 0x1fffffff)
        return -EINVAL;
    memset(f, 0, sizeof(*f));
    f->number = (uint32_t)(key >> 3);
    f->wire_type = (int)(key & 7);
    switch (f->wire_type) {
    case PBW_VARINT:
        return varint(r, &f->u64) < 0 ? -EINVAL : 1;
    case PBW_I64:
        if (r->end - r->p < 8)
            return -EINVAL;
        for (int i = 7; i >= 0; i--)
            f->u64 = (f->u64 << 8) | r->p[i];
        r->p += 8;
        return 1;
    case PBW_I32:
        if (r->end - r->p < 4)
            return -EINVAL;
        for (int i = 3; i >= 0; i--)
            f->u64 = (f->u64 << 8) | r->p[i];
        r->p += 4;
        return 1;
    case PBW_LEN: {
        uint64_t len;
        if (varint(r, &len) < 0 || len > (uint64_t)(r->end - r->p))
            return -EINVAL;
        f->data = r->p;
        f->len = (size_t)len;
        r->p += len;
        return 1;
    }
    default:
        return -EINVAL;
    }
}

static int grow(pbw_buf *b, size_t need)
{
    if (b->len + need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + need)
        cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p)
        return -ENOMEM;
    b->p = p;
    b->cap = cap;
    return 0;
}

static void put_varint(pbw_buf *b, uint64_t v)
{
    while (v >= 0x80) {
        b->p[b->len++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    b->p[b->len++] = (uint8_t)v;
}

int pbw_put_bytes(pbw_buf *b, uint32_t number, const void *data, size_t len)
{
    if (grow(b, 20 + len) < 0)
        return -ENOMEM;
    put_varint(b, ((uint64_t)number << 3) | PBW_LEN);
    put_varint(b, len);
    if (len)
        memcpy(b->p + b->len, data, len);
    b->len += len;
    return 0;
}

void pbw_buf_free(pbw_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

bool pbw_is_message(const uint8_t *p, size_t len)
{
    if (len == 0)
        return false;
    pbw_reader r;
    pbw_field f;
    pbw_reader_init(&r, p, len);
    int rc;
    while ((rc = pbw_next(&r, &f)) == 1)
        ;
    return rc == 0;
}

static bool printable(const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!isprint(p[i]) && p[i] != '\n' && p[i] != '\t')
            return false;
    return true;
}

static void print_string(FILE *out, const uint8_t *p, size_t len)
{
    fputc('"', out);
    for (size_t i = 0; i < len; i++) {
        if (p[i] == '"' || p[i] == '\\')
            fprintf(out, "\\%c", p[i]);
        else if (isprint(p[i]))
            fputc(p[i], out);
        else
            fprintf(out, "\\%03o", p[i]);
    }
    fputc('"', out);
}

void pbw_print_raw(FILE *out, const uint8_t *p, size_t len, int indent)
{
    pbw_reader r;
    pbw_field f;
    pbw_reader_init(&r, p, len);
    int rc;
    while ((rc = pbw_next(&r, &f)) == 1) {
        fprintf(out, "%*s%u", indent, "", f.number);
        switch (f.wire_type) {
        case PBW_VARINT:
            fprintf(out, ": %llu\n", (unsigned long long)f.u64);
            break;
        case PBW_I64:
            fprintf(out, ": 0x%016llx\n", (unsigned long long)f.u64);
            break;
        case PBW_I32:
            fprintf(out, ": 0x%08llx\n", (unsigned long long)f.u64);
            break;
        default:
            if (f.len > 0 && !printable(f.data, f.len) && pbw_is_message(f.data, f.len) &&
                indent < 40) {
                fprintf(out, " {\n");
                pbw_print_raw(out, f.data, f.len, indent + 2);
                fprintf(out, "%*s}\n", indent, "");
            } else {
                fprintf(out, ": ");
                print_string(out, f.data, f.len);
                fputc('\n', out);
            }
        }
    }
    if (rc < 0)
        fprintf(out, "%*s(malformed bytes follow)\n", indent, "");
}
