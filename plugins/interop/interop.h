/* Internals of the interop plugin (grpc.testing.TestService, see
 * docs/interop.md). Shared between its source files only. */
#ifndef RPCHOST_INTEROP_H
#define RPCHOST_INTEROP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rpchost/plugin.h"
#include "grpc/testing/test.pb-c.h"

/* Defaults of the [plugin.interop] keys (docs/interop.md). */
#define INTEROP_MAX_RESPONSE_SIZE_DEFAULT (16u << 20)   /* one response body */
#define INTEROP_MAX_PENDING_DEFAULT 10000u             /* queued responses per call */
#define INTEROP_MAX_PENDING_BYTES_DEFAULT (1u << 30)   /* queued body bytes per call */
#define INTEROP_SEND_HIGH_WATER_DEFAULT (1u << 20)     /* host queue per call before pausing */

/* Set once by init, read-only while calls run. */
typedef struct interop_globals {
    const rh_host_api *api;
    const uint8_t *zeros;       /* read-only zero pages, max_response_size long */
    size_t max_response_size;
    size_t max_pending;
    size_t max_pending_bytes;
    /* Pacing (ABI 1.1): stop sending while the host holds more than
     * send_high_water bytes of the call's responses, continue from
     * notify_writable at half of it. 0: no pacing (the host's limits). */
    size_t send_high_water;
    /* The host has the compression functions (ABI 1.2). */
    bool compression;
} interop_globals;

extern interop_globals interop_g;

#define API (interop_g.api)

/* Checks a requested body size; on error fills *why (static string) and
 * returns the status to fail the call with, else RH_OK. */
rh_status interop_check_size(int64_t size, const char **why);
/* A payload of `size` zero bytes pointing into the shared zero pages
 * (size already checked). */
void interop_payload_zeros(Grpc__Testing__Payload *p, size_t size);

/* Echo Metadata: copies "x-grpc-test-echo-initial" from the request into
 * the initial metadata, "x-grpc-test-echo-trailing-bin" into the trailers.
 * Call echo_initial before the first send, echo_trailing before finish. */
void interop_echo_initial(rh_call *call);
void interop_echo_trailing(rh_call *call);

/* An EchoStatus code as a status: codes outside 0..16 become UNKNOWN, as
 * a gRPC client would read them. */
rh_status interop_status_code(int32_t code);
/* True if an EchoStatus asks the server to fail the call. */
bool interop_status_requested(const Grpc__Testing__EchoStatus *st);

/* CompressedRequest: with expect_compressed true, the request message must
 * have arrived compressed. RH_OK, or INVALID_ARGUMENT with *why. */
rh_status interop_check_compressed(rh_call *call, const Grpc__Testing__BoolValue *expect,
                                   const char **why);
/* CompressedResponse: true compresses the call's responses (gzip, else
 * deflate, whichever the client accepts), false turns it off; NULL keeps
 * the host's default. Call before the first send. */
void interop_response_compression(rh_call *call, const Grpc__Testing__BoolValue *want);

/* Echoes trailing metadata and finishes the call. Returns finish's result. */
int interop_finish(rh_call *call, rh_status code, const char *message);

/* Per-call state of StreamingInputCall. */
typedef struct interop_input_state {
    int64_t aggregated;  /* sum of request payload sizes so far */
    bool failed;         /* finished early with an error */
} interop_input_state;

/* One response still to send: body size and the delay before it. */
typedef struct interop_pending {
    int32_t size;
    int32_t interval_us;
    int8_t compressed; /* ResponseParameters.compressed: -1 unset, 0, 1 */
} interop_pending;

/* Per-call state of the three output-streaming methods: a queue of
 * responses sent in order, each after its interval on a host timer. */
typedef struct interop_stream_state {
    interop_pending *q;     /* ring of cap entries (malloc); owned here */
    size_t head, len, cap;
    size_t pending_bytes;   /* sum of queued sizes */
    char *status_message;   /* echoed status to end with (malloc), or NULL */
    rh_status status_code;
    bool status_pending;    /* end with status_code once the queue drains */
    bool hold;              /* HalfDuplexCall: send nothing before half close */
    bool half_closed;
    bool timer_armed;       /* a call_later is outstanding */
    bool writable_armed;    /* a notify_writable is outstanding */
    bool delay_done;        /* the head's interval has elapsed */
    bool done;              /* finished or cancelled: no more sends */
    bool echoed_initial;
} interop_stream_state;

/* Handlers, in the order of TestService's methods in test.proto. */
void interop_empty_on_message(rh_call *call, const ProtobufCMessage *msg);
void interop_unary_on_message(rh_call *call, const ProtobufCMessage *msg);
void interop_cacheable_on_message(rh_call *call, const ProtobufCMessage *msg);
void interop_unimplemented_on_message(rh_call *call, const ProtobufCMessage *msg);
void interop_unary_on_half_close(rh_call *call);

void interop_input_on_message(rh_call *call, const ProtobufCMessage *msg);
void interop_input_on_half_close(rh_call *call);

void interop_output_on_message(rh_call *call, const ProtobufCMessage *msg);
void interop_full_duplex_on_message(rh_call *call, const ProtobufCMessage *msg);
void interop_half_duplex_on_message(rh_call *call, const ProtobufCMessage *msg);
void interop_stream_on_half_close(rh_call *call);
void interop_stream_on_cancel(rh_call *call);

#endif
