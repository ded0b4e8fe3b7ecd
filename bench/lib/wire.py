"""gRPC request bodies for the load generators, and decoding of answers.

Every request body is built with `protoc --encode` from protobuf text
format and framed as gRPC length-prefixed messages (1 flag byte 0, 4 bytes
big-endian length, the message), exactly what h2load sends with -d FILE.
"""
import os
import re
import subprocess

GRPC_PROTO_DIR = "/usr/share/grpc-proto"
SYSTEM_PROTO_DIR = "/usr/include"


def frame(msg):
    """One gRPC length-prefixed message."""
    return b"\0" + len(msg).to_bytes(4, "big") + msg


def unframe(body):
    """Splits a gRPC response body into its messages; raises on garbage."""
    out, i = [], 0
    while i < len(body):
        if i + 5 > len(body):
            raise ValueError("truncated gRPC message prefix at byte %d" % i)
        if body[i] != 0:
            raise ValueError("compressed or bad flag byte %d at byte %d" % (body[i], i))
        n = int.from_bytes(body[i + 1:i + 5], "big")
        if i + 5 + n > len(body):
            raise ValueError("truncated gRPC message at byte %d" % i)
        out.append(body[i + 5:i + 5 + n])
        i += 5 + n
    return out


class Protos:
    """protoc --encode / --decode for the Rides and interop protos."""

    def __init__(self, rides_dir):
        self.rides_dir = rides_dir
        self.includes = ["-I" + d for d in (rides_dir, GRPC_PROTO_DIR, SYSTEM_PROTO_DIR) if os.path.isdir(d)]

    def _file_for(self, msg_type):
        return "rides.proto" if "." not in msg_type else "grpc/testing/messages.proto"

    def encode(self, msg_type, text):
        r = subprocess.run(["protoc"] + self.includes + ["--encode=" + msg_type,
                                                          self._file_for(msg_type)],
                           input=text.encode(), capture_output=True, check=False)
        if r.returncode != 0:
            raise RuntimeError("protoc --encode=%s failed: %s" % (msg_type, r.stderr.decode().strip()))
        return r.stdout

    def decode(self, msg_type, data):
        r = subprocess.run(["protoc"] + self.includes + ["--decode=" + msg_type,
                                                          self._file_for(msg_type)],
                           input=data, capture_output=True, check=False)
        if r.returncode != 0:
            raise RuntimeError("protoc --decode=%s failed: %s" % (msg_type, r.stderr.decode().strip()))
        return r.stdout.decode()


class Request:
    """A request body on disk plus what a correct answer looks like.

    path: the gRPC method path; file: the framed body; messages: request
    messages per call (client streaming) or response messages per call
    (server streaming) -- what "messages/s" counts; answer_bytes: exact
    response DATA bytes per call (h2load's "data" figure must equal
    calls * answer_bytes); check(messages) raises unless the decoded answer
    messages are right.
    """

    def __init__(self, name, path, file, messages, answer_bytes, check):
        self.name, self.path, self.file = name, path, file
        self.messages, self.answer_bytes, self.check = messages, answer_bytes, check


START_TEXT = ('car_id: 7 driver_id: "Bond" passenger_ids: "M" passenger_ids: "Q" type: POOL '
              'location { lat: 51.4871871 lng: -0.1266743 } '
              'time { seconds: 1645369687 nanos: 915156117 }')
UNARY_PAYLOAD = 16     # interop UnaryCall: 16-byte request and response payloads
STREAM_MSG_SIZE = 1024  # server streaming: 1 KiB response payloads


def track_texts():
    """The original client's 7 Track events (car 7, +0.0001 lat, -0.0001
    lng, +17.3 s each); longer calls cycle through them."""
    out = []
    for i in range(7):
        ns = 1645369687 * 10**9 + 915156117 + i * 17300000000
        out.append('car_id: 7 time { seconds: %d nanos: %d } location { lat: %.7f lng: %.7f }'
                   % (ns // 10**9, ns % 10**9, 51.4871871 + i * 0.0001, -0.1266743 - i * 0.0001))
    return out


INPUT_PAYLOAD = 32  # client streaming without storage: 36-byte messages, about a TrackRequest's size


def build_requests(protos, out_dir, track_sizes=(100, 100000), stream_count=1000):
    """Writes every request body into out_dir; returns {name: Request}."""
    os.makedirs(out_dir, exist_ok=True)
    reqs = {}

    def write(name, body):
        path = os.path.join(out_dir, name + ".bin")
        with open(path, "wb") as f:
            f.write(body)
        return path

    have_rides = os.path.exists(os.path.join(protos.rides_dir, "rides.proto"))
    if have_rides:
        _rides_requests(protos, reqs, write, track_sizes)
    _interop_requests(protos, reqs, write, stream_count)
    _input_requests(protos, reqs, write, track_sizes)
    return reqs


def _input_requests(protos, reqs, write, sizes):
    """grpc.testing.TestService/StreamingInputCall: client streaming with
    no storage behind it (the server sums the payload sizes)."""
    one = frame(protos.encode("grpc.testing.StreamingInputCallRequest",
                              'payload { body: "%s" }' % ("y" * INPUT_PAYLOAD)))
    for n in sizes:
        answer = frame(protos.encode("grpc.testing.StreamingInputCallResponse",
                                     "aggregated_payload_size: %d" % (n * INPUT_PAYLOAD)))

        def check(msgs, n=n, answer=answer):
            if len(msgs) != 1 or msgs[0] != answer[5:]:
                raise AssertionError("StreamingInputCall: answer %r, want aggregated_payload_size %d"
                                     % (msgs, n * INPUT_PAYLOAD))
        name = "input%d" % n
        reqs[name] = Request(name, "/grpc.testing.TestService/StreamingInputCall",
                             write(name, one * n), n, len(answer), check)


def _rides_requests(protos, reqs, write, track_sizes):
    # Rides/Start
    start = frame(protos.encode("StartRequest", START_TEXT))
    id_bytes = len(frame(protos.encode("StartResponse", 'id: "%s"' % ("0" * 32))))

    def check_start(msgs):
        if len(msgs) != 1:
            raise AssertionError("Start: %d answer messages, want 1" % len(msgs))
        text = protos.decode("StartResponse", msgs[0])
        if not re.fullmatch(r'id: "[0-9a-f]{32}"\s*', text):
            raise AssertionError("Start: answer is not a 32-hex id: %r" % text)
    reqs["start"] = Request("start", "/Rides/Start", write("start", start), 1, id_bytes, check_start)

    # Rides/Track, client streaming
    points = [frame(protos.encode("TrackRequest", t)) for t in track_texts()]
    for n in track_sizes:
        data = b"".join(points[i % len(points)] for i in range(n))
        answer = frame(protos.encode("TrackResponse", "count: %d" % n))

        def check_track(msgs, n=n, answer=answer):
            if len(msgs) != 1 or msgs[0] != answer[5:]:
                raise AssertionError("Track: answer %r, want count %d" % (msgs, n))
        name = "track%d" % n
        reqs[name] = Request(name, "/Rides/Track", write(name, data), n, len(answer), check_track)


def _interop_requests(protos, reqs, write, stream_count):
    # grpc.testing.TestService/UnaryCall, small payload
    body = "x" * UNARY_PAYLOAD
    unary = frame(protos.encode("grpc.testing.SimpleRequest",
                                'response_size: %d payload { body: "%s" }' % (UNARY_PAYLOAD, body)))
    unary_answer = frame(protos.encode("grpc.testing.SimpleResponse",
                                       'payload { body: "%s" }' % ("\\000" * UNARY_PAYLOAD)))

    def check_unary(msgs):
        if len(msgs) != 1 or msgs[0] != unary_answer[5:]:
            raise AssertionError("UnaryCall: answer %r, want one SimpleResponse with a %d-byte zero payload"
                                 % (msgs, UNARY_PAYLOAD))
    reqs["unary"] = Request("unary", "/grpc.testing.TestService/UnaryCall", write("unary", unary),
                            1, len(unary_answer), check_unary)
    reqs["unary_answer"] = unary_answer  # the floor's static file

    # grpc.testing.TestService/StreamingOutputCall, server streaming
    params = " ".join("response_parameters { size: %d }" % STREAM_MSG_SIZE for _ in range(stream_count))
    stream = frame(protos.encode("grpc.testing.StreamingOutputCallRequest", params))
    one = frame(protos.encode("grpc.testing.StreamingOutputCallResponse",
                              'payload { body: "%s" }' % ("\\000" * STREAM_MSG_SIZE)))

    def check_stream(msgs):
        if len(msgs) != stream_count or any(m != one[5:] for m in msgs):
            raise AssertionError("StreamingOutputCall: %d answers (want %d of %d bytes)"
                                 % (len(msgs), stream_count, len(one) - 5))
    reqs["stream"] = Request("stream", "/grpc.testing.TestService/StreamingOutputCall",
                             write("stream", stream), stream_count, stream_count * len(one), check_stream)
