/* Ride ids: see ride_id.h. */
#include "ride_id.h"

#include <errno.h>
#include <sys/random.h>

void ride_id_format(uint8_t b[16], char out[RIDE_ID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hex[b[i] >> 4];
        out[2 * i + 1] = hex[b[i] & 0x0f];
    }
    out[RIDE_ID_LEN] = '\0';
}

int ride_id_new(char out[RIDE_ID_LEN + 1])
{
    uint8_t b[16];
    size_t got = 0;
    while (got < sizeof b) {
        /* Blocks only before the kernel's pool is first initialised. */
        ssize_t n = getrandom(b + got, sizeof b - got, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        got += (size_t)n;
    }
    ride_id_format(b, out);
    return 0;
}
