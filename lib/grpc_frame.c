#include "grpc_frame.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void grpc_frame_reader_init(grpc_frame_reader *r, size_t max_len)
{
    memset(r, 0, sizeof *r);
    r->max_len = max_len;
}

void grpc_frame_reader_free(grpc_frame_reader *r)
{
    free(r->buf);
    r->buf = NULL;
    r->cap = 0;
}

bool grpc_frame_reader_partial(const grpc_frame_reader *r)
{
    return r->prefix_have > 0 || r->in_body;
}

/* Grows the gather buffer to hold need bytes, at most the message length:
 * memory follows the bytes really received, not what a prefix claims. */
static int reserve(grpc_frame_reader *r, size_t need)
{
    if (need <= r->cap) return 0;
    size_t cap = r->cap ? r->cap : 256;
    while (cap < need) cap *= 2;
    if (cap > r->len) cap = r->len;
    uint8_t *p = realloc(r->buf, cap);
    if (!p) return -ENOMEM;
    r->buf = p;
    r->cap = cap;
    return 0;
}

/* Parses a complete prefix; moves the reader into the body state. */
static int start_body(grpc_frame_reader *r, const uint8_t *p)
{
    uint32_t len = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4];
    if (len > r->max_len) {
        r->over_len = len;
        return -EMSGSIZE;
    }
    r->compressed = p[0] & 1;
    r->len = len;
    r->have = 0;
    r->in_body = true;
    r->prefix_have = 0;
    return 0;
}

static void deliver(grpc_frame_reader *r, const uint8_t *data, grpc_frame_msg *out)
{
    out->data = data;
    out->len = r->len;
    out->compressed = r->compressed;
    r->in_body = false;
    r->have = 0;
}

int grpc_frame_feed(grpc_frame_reader *r, const uint8_t *data, size_t len,
                    size_t *consumed, grpc_frame_msg *out)
{
    size_t off = 0;
    int rv;
    while (off < len || (r->in_body && r->len == r->have)) {
        if (!r->in_body) {
            /* Fast path: whole prefix and whole body in this chunk, no
             * earlier bytes pending: no copy at all. */
            if (r->prefix_have == 0 && len - off >= GRPC_FRAME_PREFIX) {
                if ((rv = start_body(r, data + off)) < 0) goto fail;
                off += GRPC_FRAME_PREFIX;
                if (len - off >= r->len) {
                    deliver(r, data + off, out);
                    *consumed = off + out->len;
                    return 1;
                }
                continue;
            }
            size_t take = GRPC_FRAME_PREFIX - r->prefix_have;
            if (take > len - off) take = len - off;
            memcpy(r->prefix + r->prefix_have, data + off, take);
            r->prefix_have += (uint8_t)take;
            off += take;
            if (r->prefix_have < GRPC_FRAME_PREFIX) break;
            if ((rv = start_body(r, r->prefix)) < 0) goto fail;
            continue;
        }
        /* Body: zero-copy if nothing gathered yet and it is all here. */
        if (r->have == 0 && len - off >= r->len) {
            deliver(r, data + off, out);
            *consumed = off + out->len;
            return 1;
        }
        size_t take = r->len - r->have;
        if (take > len - off) take = len - off;
        if ((rv = reserve(r, (size_t)r->have + take)) < 0) goto fail;
        memcpy(r->buf + r->have, data + off, take);
        r->have += (uint32_t)take;
        off += take;
        if (r->have == r->len) {
            deliver(r, r->buf, out);
            *consumed = off;
            return 1;
        }
    }
    *consumed = off;
    return 0;
fail:
    *consumed = off;
    return rv;
}
