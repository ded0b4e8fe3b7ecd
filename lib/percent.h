/* Percent-encoding of grpc-message (grpc/grpc doc/PROTOCOL-HTTP2.md):
 * bytes outside 0x20..0x7E, and '%' itself, are sent as %XX (uppercase
 * hex); the message is UTF-8 before encoding. Decoding never fails: an
 * invalid %-sequence is kept as it is, as the spec asks. */
#ifndef RPCHOST_LIB_PERCENT_H
#define RPCHOST_LIB_PERCENT_H

#include <stddef.h>
#include <stdint.h>

/* Length of the encoding of len bytes (no NUL). */
size_t percent_encoded_len(const uint8_t *in, size_t len);
/* Encodes into out (percent_encoded_len bytes); returns that length. */
size_t percent_encode(char *out, const uint8_t *in, size_t len);
/* Decodes into out (at most len bytes; out may equal in); returns the
 * decoded length. */
size_t percent_decode(uint8_t *out, const char *in, size_t len);

#endif
