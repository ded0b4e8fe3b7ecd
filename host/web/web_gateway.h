/* The JSON gateway's request side: an HTTP request matched by a rule
 * (web_rules.h) becomes the framed protobuf request of its gRPC method,
 * as grpc-gateway builds it: the body ("*" or one field), then the path
 * variables, then query parameters (not with body "*"). A client-streaming
 * method takes newline-delimited JSON objects, one message each. */
#ifndef RPCHOST_HOST_WEB_WEB_GATEWAY_H
#define RPCHOST_HOST_WEB_WEB_GATEWAY_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "web/web_rules.h"

/* Appends the framed request message(s) to out. 0, or -EINVAL with a
 * one-line reason in err (answered INVALID_ARGUMENT), -ENOMEM.
 * vals: the rule's variable values from web_rule_match. */
int web_gateway_request(const web_table *t, const web_rule *rule, char *const *vals,
                        const char *query, size_t query_len, const uint8_t *body,
                        size_t body_len, buf *out, char *err, size_t errlen);

/* Converts the response message (wire format) to the JSON the client
 * gets: the whole message, or the rule's response_body field. *out is
 * malloc'd (compact JSON, NUL-terminated). 0 or -errno with err set. */
int web_gateway_response(const web_table *t, const web_rule *rule, const uint8_t *msg,
                         size_t len, char **out, char *err, size_t errlen);

/* Appends a 5-byte gRPC prefix and the message to out. */
int web_frame_append(buf *out, const uint8_t *msg, size_t len, uint8_t flags);

#endif
