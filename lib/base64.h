/* Base64 (RFC 4648 standard alphabet) for -bin metadata. gRPC emits
 * values unpadded and must accept both padded and unpadded ones. */
#ifndef RPCHOST_LIB_BASE64_H
#define RPCHOST_LIB_BASE64_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Length of the encoding of len bytes, with or without '=' padding. */
size_t base64_encoded_len(size_t len, bool pad);
/* Encodes into out (base64_encoded_len bytes, no NUL); returns the length. */
size_t base64_encode(char *out, const uint8_t *in, size_t len, bool pad);
/* Upper bound of the decoded length of len characters. */
static inline size_t base64_decoded_max(size_t len) { return len / 4 * 3 + 3; }
/* Decodes padded or unpadded input into out (base64_decoded_max bytes);
 * *out_len gets the decoded length. Returns 0, or -EINVAL on a character
 * outside the alphabet, misplaced padding, or an impossible length. */
int base64_decode(uint8_t *out, size_t *out_len, const char *in, size_t len);

#endif
