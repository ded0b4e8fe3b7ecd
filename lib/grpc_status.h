/* gRPC status codes <-> their canonical names ("INVALID_ARGUMENT"). */
#ifndef RPCHOST_LIB_GRPC_STATUS_H
#define RPCHOST_LIB_GRPC_STATUS_H

#include <stddef.h>

/* Name of a code 0..16; "UNKNOWN" for anything else. */
const char *grpc_status_name(int code);
/* Code of a name (case-insensitive; also accepts the decimal number);
 * -1 if unknown. */
int grpc_status_from_name(const char *name);
/* Parses a grpc-status header value (decimal digits, len bytes); returns
 * the code, or -1 if it is not a number in 0..999. Codes above 16 are
 * returned as they are (callers map them to UNKNOWN if they must). */
int grpc_status_parse(const char *s, size_t len);

#endif
