/* StreamingInputCall: sums the request payload sizes and answers with the
 * total once the client half-closes. */
#include "interop.h"

void interop_input_on_message(rh_call *call, const ProtobufCMessage *msg) {
    interop_input_state *st = API->call_state(call);
    const Grpc__Testing__StreamingInputCallRequest *req =
        (const Grpc__Testing__StreamingInputCallRequest *)msg;
    if (st->failed)
        return;
    const char *why = NULL;
    if (interop_check_compressed(call, req->expect_compressed, &why) != RH_OK) {
        /* the probe of client_compressed_streaming */
        st->failed = true;
        interop_echo_initial(call);
        interop_finish(call, RH_INVALID_ARGUMENT, why);
        return;
    }
    if (req->payload != NULL)
        st->aggregated += (int64_t)req->payload->body.len;
    if (st->aggregated > INT32_MAX) {
        st->failed = true;
        interop_echo_initial(call);
        interop_finish(call, RH_OUT_OF_RANGE,
                       "aggregated payload size does not fit aggregated_payload_size (int32)");
    }
}

void interop_input_on_half_close(rh_call *call) {
    interop_input_state *st = API->call_state(call);
    if (st->failed)
        return;
    Grpc__Testing__StreamingInputCallResponse resp =
        GRPC__TESTING__STREAMING_INPUT_CALL_RESPONSE__INIT;
    resp.aggregated_payload_size = (int32_t)st->aggregated;
    interop_echo_initial(call);
    if (API->send(call, &resp.base) == 0)
        interop_finish(call, RH_OK, NULL);
}
