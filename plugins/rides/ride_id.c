/* Ride ids: see ride_id.h. */
#include "ride_id.h"

#include <errno.h>
#include <string.h>
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

/* Kernel randomness fetched RIDE_ID_BATCH ids at a time, per thread: one
 * getrandom(2) per 64 ids instead of one per id (it was 2.5% of a durable
 * Start's CPU). Each byte is handed out once and wiped when taken. */
#define RIDE_ID_BATCH 64
static __thread uint8_t pool[RIDE_ID_BATCH * 16];
static __thread size_t pool_left; /* unused bytes at the end of pool */

static int refill(void)
{
    size_t got = 0;
    while (got < sizeof pool) {
        /* Blocks only before the kernel's pool is first initialised. */
        ssize_t n = getrandom(pool + got, sizeof pool - got, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        got += (size_t)n;
    }
    pool_left = sizeof pool;
    return 0;
}

int ride_id_new(char out[RIDE_ID_LEN + 1])
{
    if (pool_left < 16) {
        int rc = refill();
        if (rc != 0)
            return rc;
    }
    uint8_t *b = pool + sizeof pool - pool_left;
    pool_left -= 16;
    ride_id_format(b, out);
    memset(b, 0, 16);
    return 0;
}
