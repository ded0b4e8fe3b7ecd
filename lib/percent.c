#include "percent.h"

static int needs_escape(uint8_t c) { return c < 0x20 || c > 0x7E || c == '%'; }

size_t percent_encoded_len(const uint8_t *in, size_t len)
{
    size_t n = len;
    for (size_t i = 0; i < len; i++)
        if (needs_escape(in[i])) n += 2;
    return n;
}

size_t percent_encode(char *out, const uint8_t *in, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = in[i];
        if (needs_escape(c)) {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        } else {
            out[o++] = (char)c;
        }
    }
    return o;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

size_t percent_decode(uint8_t *out, const char *in, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int hi, lo;
        if (in[i] == '%' && i + 2 < len &&
            (hi = hexval(in[i + 1])) >= 0 && (lo = hexval(in[i + 2])) >= 0) {
            out[o++] = (uint8_t)(hi << 4 | lo);
            i += 2;
        } else {
            out[o++] = (uint8_t)in[i];
        }
    }
    return o;
}
