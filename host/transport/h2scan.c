/* h2scan: drops RST_STREAM frames for idle client streams (see h2scan.h). */
#include "transport/h2scan.h"

#include <string.h>

enum { FRAME_HEADERS = 0x1, FRAME_RST_STREAM = 0x3 };

void h2scan_init(h2scan *s)
{
    memset(s, 0, sizeof *s);
    s->preface_left = H2SCAN_PREFACE_LEN;
}

static uint32_t be24(const uint8_t *p) { return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2]; }

static uint32_t stream_id(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]) &
           0x7fffffffu;
}

/* Decides what to do with the frame whose header is hdr: true to drop. */
static int drop_frame(h2scan *s, const uint8_t *hdr)
{
    uint8_t type = hdr[3];
    uint32_t id = stream_id(hdr + 5);
    if (type == FRAME_HEADERS && id > s->max_opened)
        s->max_opened = id;
    /* Odd: a client stream. Even or 0 ones go on, for nghttp2 to judge. */
    if (type == FRAME_RST_STREAM && (id & 1) && id > s->max_opened) {
        s->dropped++;
        return 1;
    }
    return 0;
}

int h2scan_feed(h2scan *s, const uint8_t *data, size_t n, h2scan_sink sink, void *arg)
{
    const uint8_t *run = data; /* start of the bytes to pass on */
    const uint8_t *p = data, *end = data + n;
    int rv;
    if (s->preface_left) {
        size_t k = (size_t)(end - p) < s->preface_left ? (size_t)(end - p) : s->preface_left;
        s->preface_left -= (uint32_t)k;
        p += k;
    }
    while (p < end) {
        if (s->body_left) {
            size_t k = (size_t)(end - p) < s->body_left ? (size_t)(end - p) : s->body_left;
            s->body_left -= (uint32_t)k;
            p += k;
            if (s->skipping) {
                run = p;
                if (!s->body_left)
                    s->skipping = 0;
            }
            continue;
        }
        /* A frame header: whole in data, or completed from the held part. */
        const uint8_t *hdr;
        if (s->hdr_have == 0 && end - p >= H2SCAN_FRAME_HDR) {
            hdr = p;
            p += H2SCAN_FRAME_HDR;
        } else {
            size_t k = H2SCAN_FRAME_HDR - s->hdr_have;
            if ((size_t)(end - p) < k)
                k = (size_t)(end - p);
            /* Bytes before the held header go on now; the header waits. */
            if (s->hdr_have == 0 && p > run && (rv = sink(arg, run, (size_t)(p - run))) != 0)
                return rv;
            memcpy(s->hdr + s->hdr_have, p, k);
            s->hdr_have += (uint8_t)k;
            p += k;
            run = p;
            if (s->hdr_have < H2SCAN_FRAME_HDR)
                return 0;
            s->hdr_have = 0;
            hdr = s->hdr;
        }
        s->body_left = be24(hdr);
        if (drop_frame(s, hdr)) {
            /* Pass what came before this frame, skip the frame. */
            const uint8_t *frame_start = hdr == s->hdr ? run : p - H2SCAN_FRAME_HDR;
            if (frame_start > run && (rv = sink(arg, run, (size_t)(frame_start - run))) != 0)
                return rv;
            s->skipping = s->body_left > 0;
            run = p;
        } else if (hdr == s->hdr && (rv = sink(arg, s->hdr, H2SCAN_FRAME_HDR)) != 0) {
            return rv; /* the held header goes on before the rest */
        }
    }
    if (p > run && (rv = sink(arg, run, (size_t)(p - run))) != 0)
        return rv;
    return 0;
}
