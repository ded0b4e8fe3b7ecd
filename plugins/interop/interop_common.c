/* Helpers every TestService method uses: payloads, Echo Metadata and
 * Echo Status (grpc/grpc doc/interop-test-descriptions.md, "Server"). */
#include "interop.h"

#define ECHO_INITIAL_KEY "x-grpc-test-echo-initial"
#define ECHO_TRAILING_KEY "x-grpc-test-echo-trailing-bin"

rh_status interop_check_size(int64_t size, const char **why) {
    if (size < 0) {
        *why = "response size must not be negative";
        return RH_INVALID_ARGUMENT;
    }
    if ((uint64_t)size > interop_g.max_response_size) {
        *why = "response size over this server's limit (max_response_size of "
               "[plugin.interop], 16 MiB by default)";
        return RH_INVALID_ARGUMENT;
    }
    return RH_OK;
}

void interop_payload_zeros(Grpc__Testing__Payload *p, size_t size) {
    grpc__testing__payload__init(p);
    p->type = GRPC__TESTING__PAYLOAD_TYPE__COMPRESSABLE;
    p->body.len = size;
    /* protobuf-c's field is not const; the host only reads it. */
    p->body.data = size ? (uint8_t *)interop_g.zeros : NULL;
}

static void echo(rh_call *call, const char *key, rh_md_where where) {
    size_t len;
    const uint8_t *v = API->metadata_get(call, key, &len);
    if (v != NULL)
        API->add_metadata(call, where, key, v, len);
}

void interop_echo_initial(rh_call *call) {
    echo(call, ECHO_INITIAL_KEY, RH_MD_INITIAL);
}

void interop_echo_trailing(rh_call *call) {
    echo(call, ECHO_TRAILING_KEY, RH_MD_TRAILING);
}

rh_status interop_status_code(int32_t code) {
    if (code < RH_OK || code > RH_UNAUTHENTICATED)
        return RH_UNKNOWN;
    return (rh_status)code;
}

bool interop_status_requested(const Grpc__Testing__EchoStatus *st) {
    return st != NULL && st->code != 0;
}

rh_status interop_check_compressed(rh_call *call, const Grpc__Testing__BoolValue *expect,
                                   const char **why) {
    if (expect == NULL || !expect->value)
        return RH_OK;
    if (!interop_g.compression) {
        *why = "expected a compressed request; this host supports no compression";
        return RH_INVALID_ARGUMENT;
    }
    if (!API->message_compressed(call)) {
        *why = "expected a compressed request message, got an uncompressed one";
        return RH_INVALID_ARGUMENT;
    }
    return RH_OK;
}

void interop_response_compression(rh_call *call, const Grpc__Testing__BoolValue *want) {
    if (want == NULL || !interop_g.compression)
        return;
    if (!want->value) {
        API->set_compression(call, RH_COMPRESS_NONE);
        return;
    }
    /* RH_E_INVALID: the headers left already (a later request of a
     * duplex call); the call keeps what it had. */
    int rc = API->set_compression(call, RH_COMPRESS_GZIP);
    if (rc == RH_E_UNSUPPORTED)
        rc = API->set_compression(call, RH_COMPRESS_DEFLATE);
    if (rc == RH_E_UNSUPPORTED)
        API->log(API->call_plugin(call), RH_LOG_DEBUG,
                 "response compression asked for, but the client accepts neither gzip nor "
                 "deflate: responses go uncompressed");
}

int interop_finish(rh_call *call, rh_status code, const char *message) {
    interop_echo_trailing(call);
    return API->finish(call, code, message);
}
