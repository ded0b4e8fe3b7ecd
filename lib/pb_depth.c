#include "pb_depth.h"

#include <errno.h>

/* Reads a varint; 0 when truncated or longer than 10 bytes. */
static size_t varint(const uint8_t *p, size_t len, uint64_t *v)
{
    uint64_t x = 0;
    for (size_t i = 0; i < len && i < 10; i++) {
        x |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if (!(p[i] & 0x80)) {
            *v = x;
            return i + 1;
        }
    }
    return 0;
}

static const ProtobufCFieldDescriptor *field_of(const ProtobufCMessageDescriptor *d,
                                                uint64_t number)
{
    for (unsigned i = 0; i < d->n_fields; i++)
        if (d->fields[i].id == number) return &d->fields[i];
    return NULL;
}

/* Recursion is bounded by max_depth (small frames). */
static int walk(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t len,
                unsigned depth_left)
{
    size_t off = 0;
    while (off < len) {
        uint64_t key, v;
        size_t n = varint(p + off, len - off, &key);
        if (!n) return 0; /* malformed: unpack refuses it */
        off += n;
        switch (key & 7) {
        case 0:
            if (!(n = varint(p + off, len - off, &v))) return 0;
            off += n;
            break;
        case 1:
            if (len - off < 8) return 0;
            off += 8;
            break;
        case 5:
            if (len - off < 4) return 0;
            off += 4;
            break;
        case 2: {
            if (!(n = varint(p + off, len - off, &v)) || v > len - off - n) return 0;
            off += n;
            const ProtobufCFieldDescriptor *f = field_of(d, key >> 3);
            if (f && f->type == PROTOBUF_C_TYPE_MESSAGE) {
                if (depth_left == 0) return -ELOOP;
                int rc = walk(f->descriptor, p + off, (size_t)v, depth_left - 1);
                if (rc < 0) return rc;
            }
            off += (size_t)v;
            break;
        }
        default:
            return 0; /* groups and unknown wire types: unpack refuses them */
        }
    }
    return 0;
}

int pb_depth_check(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
                   unsigned max_depth)
{
    return len ? walk(desc, data, len, max_depth) : 0;
}
