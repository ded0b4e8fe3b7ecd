/* StreamingOutputCall, FullDuplexCall and HalfDuplexCall: every
 * ResponseParameters of every request becomes one queued response; the
 * queue is sent in order, each response after its interval_us on a host
 * timer (never sleeping on the worker's loop).
 *
 * Pacing: a response is sent only while the host holds at most
 * send_high_water bytes of the call's responses (send_queued); above it the
 * stream waits for notify_writable at half the mark, so a client that reads
 * slowly (or not at all) makes the host hold about one high-water mark and
 * one response for the call, however long the stream.
 *
 * Lifetime: the queue (malloc) belongs to the call state. It is freed when
 * the call ends (finish or on_cancel), unless a timer or a writable
 * notification is outstanding: then that callback frees it. The host holds
 * a call reference for each, so the call state outlives them. */
#include <stdlib.h>
#include <string.h>

#include "interop.h"

static void stream_pump(rh_call *call, interop_stream_state *st);

static bool stream_waiting(const interop_stream_state *st) {
    return st->timer_armed || st->writable_armed;
}

static void stream_release(interop_stream_state *st) {
    free(st->q);
    st->q = NULL;
    st->head = st->len = st->cap = 0;
    st->pending_bytes = 0;
    free(st->status_message);
    st->status_message = NULL;
}

/* Ends the call with a status; nothing is sent afterwards. */
static void stream_end(rh_call *call, interop_stream_state *st, rh_status code,
                       const char *message) {
    if (!st->echoed_initial) {
        interop_echo_initial(call);
        st->echoed_initial = true;
    }
    interop_finish(call, code, message); /* copies message */
    st->done = true;
    if (!stream_waiting(st))
        stream_release(st);
}

/* Appends one response to the queue; RH_OK or the status to fail with. */
static rh_status stream_push(interop_stream_state *st, int32_t size, int32_t interval_us,
                             int8_t compressed, const char **why) {
    if (st->len >= interop_g.max_pending) {
        *why = "too many responses queued for this call (max_pending of [plugin.interop])";
        return RH_RESOURCE_EXHAUSTED;
    }
    if ((size_t)size > interop_g.max_pending_bytes - st->pending_bytes) {
        *why = "too many response bytes queued for this call "
               "(max_pending_bytes of [plugin.interop])";
        return RH_RESOURCE_EXHAUSTED;
    }
    if (st->len == st->cap) {
        size_t cap = st->cap ? st->cap * 2 : 8;
        if (cap > interop_g.max_pending)
            cap = interop_g.max_pending;
        interop_pending *q = malloc(cap * sizeof *q);
        if (q == NULL) {
            *why = "out of memory queueing a response";
            return RH_RESOURCE_EXHAUSTED;
        }
        for (size_t i = 0; i < st->len; i++) /* unwrap the ring */
            q[i] = st->q[(st->head + i) % st->cap];
        free(st->q);
        st->q = q;
        st->head = 0;
        st->cap = cap;
    }
    st->q[(st->head + st->len) % st->cap] = (interop_pending){size, interval_us, compressed};
    st->len++;
    st->pending_bytes += (size_t)size;
    return RH_OK;
}

static void stream_on_timer(rh_call *call, void *arg) {
    (void)arg;
    interop_stream_state *st = API->call_state(call);
    st->timer_armed = false;
    if (st->done) { /* cancelled or failed while the timer ran */
        stream_release(st);
        return;
    }
    st->delay_done = true;
    stream_pump(call, st);
}

static void stream_on_writable(rh_call *call, void *arg) {
    (void)arg;
    interop_stream_state *st = API->call_state(call);
    st->writable_armed = false;
    if (st->done || API->is_done(call)) { /* ended while the client was slow */
        st->done = true;
        stream_release(st);
        return;
    }
    stream_pump(call, st);
}

/* True when the host holds too much of this call's output: the stream then
 * continues from notify_writable. */
static bool stream_must_wait(rh_call *call, interop_stream_state *st) {
    size_t high = interop_g.send_high_water;
    if (high == 0 || API->send_queued(call) <= high)
        return false;
    if (API->notify_writable(call, high / 2, stream_on_writable, NULL) != 0)
        return false; /* out of memory: send anyway, the host's cap still applies */
    st->writable_armed = true;
    return true;
}

/* Sends what may be sent now; arms a timer for the next delayed response;
 * ends the call once everything is sent and the client half-closed. */
static void stream_pump(rh_call *call, interop_stream_state *st) {
    while (!st->done && !stream_waiting(st)) {
        if (st->hold && !st->half_closed)
            return;
        if (st->len == 0) {
            if (st->status_pending)
                stream_end(call, st, st->status_code, st->status_message);
            else if (st->half_closed)
                stream_end(call, st, RH_OK, NULL);
            return;
        }
        interop_pending next = st->q[st->head];
        if (next.interval_us > 0 && !st->delay_done) {
            int rc = API->call_later(call, (uint64_t)next.interval_us * 1000u, stream_on_timer,
                                     NULL);
            if (rc < 0) {
                stream_end(call, st, RH_RESOURCE_EXHAUSTED, "could not arm a timer");
                return;
            }
            st->timer_armed = true;
            return;
        }
        if (stream_must_wait(call, st))
            return;
        st->head = (st->head + 1) % st->cap;
        st->len--;
        st->pending_bytes -= (size_t)next.size;
        st->delay_done = false;

        Grpc__Testing__Payload payload;
        interop_payload_zeros(&payload, (size_t)next.size);
        Grpc__Testing__StreamingOutputCallResponse resp =
            GRPC__TESTING__STREAMING_OUTPUT_CALL_RESPONSE__INIT;
        resp.payload = &payload;
        /* CompressedResponse per message: compressed = false exempts it
         * from the call's compression (a gRPC write's "no compress"). */
        int rc = next.compressed == 0 && interop_g.compression
                     ? API->send_ex(call, &resp.base, RH_SEND_NO_COMPRESS)
                     : API->send(call, &resp.base);
        if (rc == RH_E_CANCELLED) { /* the client went away; on_cancel follows */
            st->done = true;
            stream_release(st);
            return;
        }
        if (rc < 0) {
            stream_end(call, st, RH_INTERNAL, "sending a response failed");
            return;
        }
    }
}

/* Queues the responses one request asks for (or its echoed status). */
static void stream_on_request(rh_call *call, const ProtobufCMessage *msg, bool hold) {
    interop_stream_state *st = API->call_state(call);
    const Grpc__Testing__StreamingOutputCallRequest *req =
        (const Grpc__Testing__StreamingOutputCallRequest *)msg;
    st->hold = hold;
    if (!st->echoed_initial) {
        interop_echo_initial(call);
        st->echoed_initial = true;
    }
    /* Echo Status: after a status request, no further message is processed. */
    if (st->done || st->status_pending)
        return;
    if (req->response_type != GRPC__TESTING__PAYLOAD_TYPE__COMPRESSABLE) {
        stream_end(call, st, RH_INVALID_ARGUMENT, "unsupported response_type");
        return;
    }
    if (interop_status_requested(req->response_status)) {
        const char *m = req->response_status->message ? req->response_status->message : "";
        st->status_message = strdup(m);
        if (st->status_message == NULL) {
            stream_end(call, st, RH_RESOURCE_EXHAUSTED, "out of memory");
            return;
        }
        st->status_code = interop_status_code(req->response_status->code);
        st->status_pending = true;
        stream_pump(call, st);
        return;
    }
    for (size_t i = 0; i < req->n_response_parameters; i++) {
        const Grpc__Testing__ResponseParameters *rp = req->response_parameters[i];
        const char *why = NULL;
        rh_status bad = interop_check_size(rp->size, &why);
        if (bad == RH_OK && rp->interval_us < 0) {
            bad = RH_INVALID_ARGUMENT;
            why = "interval_us must not be negative";
        }
        int8_t compressed = rp->compressed == NULL ? -1 : rp->compressed->value ? 1 : 0;
        /* The first message asking for compression turns it on for the
         * call (before the headers leave, if they have not yet). */
        if (compressed == 1)
            interop_response_compression(call, rp->compressed);
        if (bad == RH_OK)
            bad = stream_push(st, rp->size, rp->interval_us, compressed, &why);
        if (bad != RH_OK) {
            stream_end(call, st, bad, why);
            return;
        }
    }
    stream_pump(call, st);
}

void interop_output_on_message(rh_call *call, const ProtobufCMessage *msg) {
    interop_stream_state *st = API->call_state(call);
    /* Server streaming has exactly one request: the client is done. */
    st->half_closed = true;
    stream_on_request(call, msg, false);
}

void interop_full_duplex_on_message(rh_call *call, const ProtobufCMessage *msg) {
    stream_on_request(call, msg, false);
}

void interop_half_duplex_on_message(rh_call *call, const ProtobufCMessage *msg) {
    stream_on_request(call, msg, true);
}

void interop_stream_on_half_close(rh_call *call) {
    interop_stream_state *st = API->call_state(call);
    if (!st->echoed_initial) {
        interop_echo_initial(call);
        st->echoed_initial = true;
    }
    st->half_closed = true;
    stream_pump(call, st);
}

void interop_stream_on_cancel(rh_call *call) {
    interop_stream_state *st = API->call_state(call);
    st->done = true;
    if (!stream_waiting(st))
        stream_release(st);
}
