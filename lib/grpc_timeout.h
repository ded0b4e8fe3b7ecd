/* grpc-timeout header values: TimeoutValue TimeoutUnit, where the value is
 * 1 to 8 ASCII digits and the unit one of H M S m u n (hours ... nanos). */
#ifndef RPCHOST_LIB_GRPC_TIMEOUT_H
#define RPCHOST_LIB_GRPC_TIMEOUT_H

#include <stddef.h>
#include <stdint.h>

/* Largest encodable timeout: 99999999 hours, in ns, saturates int64. */
#define GRPC_TIMEOUT_MAX_LEN 10 /* 8 digits + unit + NUL */

/* Parses len bytes; *ns gets the timeout in nanoseconds (saturated at
 * INT64_MAX). Returns 0, or -EINVAL on anything but the grammar above. */
int grpc_timeout_parse(const char *s, size_t len, int64_t *ns);
/* Formats ns (>= 0) with the finest unit that fits in 8 digits, rounding
 * up so the peer never sees a shorter timeout than asked. out must hold
 * GRPC_TIMEOUT_MAX_LEN bytes. Returns the length written (no NUL counted). */
size_t grpc_timeout_format(int64_t ns, char out[GRPC_TIMEOUT_MAX_LEN]);

#endif
