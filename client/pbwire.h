/* The protobuf wire format at its smallest: enough to write and read the
 * few fixed messages rpcall speaks without a descriptor (server reflection
 * requests and responses, google.rpc.Status) and to show unknown bytes
 * field by field (as protoc --decode_raw does). */
#ifndef RPCALL_PBWIRE_H
#define RPCALL_PBWIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum { PBW_VARINT = 0, PBW_I64 = 1, PBW_LEN = 2, PBW_I32 = 5 };

typedef struct pbw_reader {
    const uint8_t *p, *end;
} pbw_reader;

typedef struct pbw_field {
    uint32_t number;
    int wire_type;
    uint64_t u64;          /* VARINT, I64, I32 */
    const uint8_t *data;   /* LEN */
    size_t len;
} pbw_field;

static inline void pbw_reader_init(pbw_reader *r, const uint8_t *p, size_t len)
{
    r->p = p;
    r->end = p + len;
}

/* Next field: 1 read, 0 at the end, -EINVAL on malformed bytes (group
 * wire types included: proto3 has none). */
int pbw_next(pbw_reader *r, pbw_field *f);

/* Appends a length-delimited field (tag + length + bytes) to a growing
 * buffer; returns 0 or -ENOMEM. */
typedef struct pbw_buf {
    uint8_t *p;
    size_t len, cap;
} pbw_buf;
int pbw_put_bytes(pbw_buf *b, uint32_t number, const void *data, size_t len);
void pbw_buf_free(pbw_buf *b);

/* True if the bytes parse completely as a message (a guess at nesting). */
bool pbw_is_message(const uint8_t *p, size_t len);
/* Prints the bytes as protoc --decode_raw would, indented. */
void pbw_print_raw(FILE *out, const uint8_t *p, size_t len, int indent);

#endif
