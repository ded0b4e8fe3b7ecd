/* A nesting limit for protobuf-c: protobuf_c_message_unpack recurses once
 * per nested message, with a large stack frame and no limit of its own, so
 * a message type that can contain itself (google.protobuf.Struct/Value,
 * DescriptorProto, a plugin's tree type) lets 15-35 KB of nested fields
 * overflow a thread's stack. pb_depth_check walks the wire data with the
 * message's descriptor first, without allocating, and refuses deeper
 * nesting; protobuf's own parsers stop at 100 levels too.
 *
 * It checks depth only: malformed data is left for the unpack that follows
 * to refuse (the walk stops where protobuf-c would stop too). */
#ifndef RPCHOST_LIB_PB_DEPTH_H
#define RPCHOST_LIB_PB_DEPTH_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#define PB_DEPTH_DEFAULT 100

/* 0, or -ELOOP if messages nest more than max_depth levels below desc. */
int pb_depth_check(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
                   unsigned max_depth);

#endif
