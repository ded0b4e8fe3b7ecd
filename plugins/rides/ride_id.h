/* Ride ids: a version-4 UUID from the kernel's random source (getrandom(2)),
 * written as 32 lowercase hex characters without dashes, as the original
 * service did with uuid.uuid4().hex. */
#ifndef RIDES_RIDE_ID_H
#define RIDES_RIDE_ID_H

#include <stddef.h>
#include <stdint.h>

#define RIDE_ID_LEN 32 /* hex characters, without the NUL */

/* Writes RIDE_ID_LEN hex characters and a NUL into out. Returns 0, or
 * -errno if the kernel gave no randomness (never a predictable id). */
int ride_id_new(char out[RIDE_ID_LEN + 1]);

/* Formats 16 bytes as a uuid4 (sets the version and variant bits of
 * bytes; exposed for the unit tests). */
void ride_id_format(uint8_t bytes[16], char out[RIDE_ID_LEN + 1]);

#endif
