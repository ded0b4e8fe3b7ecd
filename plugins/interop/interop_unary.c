/* The unary methods: EmptyCall, UnaryCall, CacheableUnaryCall and
 * UnimplementedCall. Each answers from its on_message. */
#include <stdio.h>
#include <time.h>

#include "interop.h"

/* A unary call that half-closes without a request (the host normally
 * refuses those itself): answer instead of leaving the call open. */
void interop_unary_on_half_close(rh_call *call) {
    if (!API->is_done(call))
        interop_finish(call, RH_INTERNAL, "unary call without a request message");
}

void interop_empty_on_message(rh_call *call, const ProtobufCMessage *msg) {
    (void)msg;
    Grpc__Testing__Empty resp = GRPC__TESTING__EMPTY__INIT;
    interop_echo_initial(call);
    if (API->send(call, &resp.base) == 0)
        interop_finish(call, RH_OK, NULL);
}

/* Checks a SimpleRequest: returns RH_OK or the status to fail with. */
static rh_status check_simple_request(rh_call *call, const Grpc__Testing__SimpleRequest *req,
                                      const char **why) {
    /* The feature probe of client_compressed_unary: an uncompressed
     * request that expects compression fails. */
    rh_status st = interop_check_compressed(call, req->expect_compressed, why);
    if (st != RH_OK)
        return st;
    if (req->response_type != GRPC__TESTING__PAYLOAD_TYPE__COMPRESSABLE) {
        *why = "unsupported response_type";
        return RH_INVALID_ARGUMENT;
    }
    return interop_check_size(req->response_size, why);
}

/* UnaryCall and CacheableUnaryCall: `body` NULL means response_size zero
 * bytes, else the given body (the cacheable timestamp). */
static void answer_simple(rh_call *call, const Grpc__Testing__SimpleRequest *req,
                          const char *body, size_t body_len) {
    interop_echo_initial(call);
    if (interop_status_requested(req->response_status)) {
        const Grpc__Testing__EchoStatus *st = req->response_status;
        interop_finish(call, interop_status_code(st->code), st->message);
        return;
    }
    const char *why = NULL;
    rh_status bad = check_simple_request(call, req, &why);
    if (bad != RH_OK) {
        interop_finish(call, bad, why);
        return;
    }
    Grpc__Testing__Payload payload;
    interop_payload_zeros(&payload, (size_t)req->response_size);
    if (body != NULL) {
        payload.body.data = (uint8_t *)body;
        payload.body.len = body_len;
    }
    Grpc__Testing__SimpleResponse resp = GRPC__TESTING__SIMPLE_RESPONSE__INIT;
    resp.payload = &payload;
    interop_response_compression(call, req->response_compressed);
    /* Echo Authenticated Username: the principal an interceptor attached
     * (authlog), when there is one. OAuth scope stays empty. */
    if (req->fill_username) {
        const char *who = API->principal(call);
        if (who != NULL)
            resp.username = (char *)who;
    }
    if (API->send(call, &resp.base) == 0)
        interop_finish(call, RH_OK, NULL);
}

void interop_unary_on_message(rh_call *call, const ProtobufCMessage *msg) {
    answer_simple(call, (const Grpc__Testing__SimpleRequest *)msg, NULL, 0);
}

/* The content is ignored; the payload is the current time in ns, so two
 * responses differ unless a caching proxy answered the second. */
void interop_cacheable_on_message(rh_call *call, const ProtobufCMessage *msg) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char now[32];
    int n = snprintf(now, sizeof now, "%lld",
                     (long long)ts.tv_sec * 1000000000LL + (long long)ts.tv_nsec);
    static const char cache[] = "max-age=60, public";
    API->add_metadata(call, RH_MD_INITIAL, "cache-control", cache, sizeof cache - 1);
    answer_simple(call, (const Grpc__Testing__SimpleRequest *)msg, now, (size_t)n);
}

void interop_unimplemented_on_message(rh_call *call, const ProtobufCMessage *msg) {
    (void)msg;
    interop_echo_initial(call);
    interop_finish(call, RH_UNIMPLEMENTED,
                   "grpc.testing.TestService/UnimplementedCall is not implemented by design");
}
