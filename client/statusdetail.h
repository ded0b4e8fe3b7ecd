/* google.rpc.Status from grpc-status-details-bin, printed under the
 * "ERROR:" line: each detail (an Any) as JSON when its type is in the
 * descriptor pool or is one of the standard google.rpc error details
 * (embedded: ErrorInfo, BadRequest, RetryInfo, ...), else field by field
 * as protoc --decode_raw shows it.
 *
 *   message Status { int32 code = 1; string message = 2;
 *                    repeated google.protobuf.Any details = 3; }
 *   message Any    { string type_url = 1; bytes value = 2; }
 *
 * Debian ships no google/rpc/status.proto, and the message is fixed, so
 * it is read by hand (pbwire.h). */
#ifndef RPCALL_STATUSDETAIL_H
#define RPCALL_STATUSDETAIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "descpool.h"

/* Prints the details; code/message are those of grpc-status and
 * grpc-message (the Status is expected to repeat them; a mismatch is shown). */
void statusdetail_print(FILE *out, const descpool *pool, const uint8_t *data, size_t len,
                        int code, const char *message);

/* Frees the embedded google.rpc types, if they were loaded. */
void statusdetail_cleanup(void);

#endif
