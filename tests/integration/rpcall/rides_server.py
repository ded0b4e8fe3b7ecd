"""A server that is not rpchost: Debian's python3-grpcio serving the Rides
contract (no reflection: grpcio's reflection module is not packaged), so
rpcall is checked against another implementation with --protoset.

    rides_server.py PORT [--tls]

Prints "ready" on stdout once it serves. Start with driver_id "details"
fails with INVALID_ARGUMENT and a google.rpc.Status in
grpc-status-details-bin holding one google.rpc.ErrorInfo, written by hand
(Debian has no google/rpc protos).
"""
import os
import sys
import uuid
from concurrent import futures

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../lib"))
import grpc  # noqa: E402
import rpchost_test as rt  # noqa: E402

rides = rt.proto_module("rides.proto", [os.path.join(rt.SOURCE_DIR, "plugins/rides")])


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field_bytes(num, data):
    return varint(num << 3 | 2) + varint(len(data)) + data


def field_varint(num, v):
    return varint(num << 3) + varint(v)


def status_details(code, message):
    # google.rpc.ErrorInfo { reason = 1; domain = 2; map<string,string> metadata = 3 }
    entry = field_bytes(1, b"field") + field_bytes(2, b"driver_id")
    info = field_bytes(1, b"DRIVER_BANNED") + field_bytes(2, b"rides.example") + field_bytes(3, entry)
    anyv = field_bytes(1, b"type.googleapis.com/google.rpc.ErrorInfo") + field_bytes(2, info)
    return field_varint(1, code) + field_bytes(2, message.encode()) + field_bytes(3, anyv)


class _Status(grpc.Status):
    def __init__(self, code, details, md):
        self.code = code
        self.details = details
        self.trailing_metadata = md


def start(req, ctx):
    if req.driver_id == "":
        ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, "driver_id is empty")
    if req.driver_id == "details":
        msg = "driver details is banned"
        ctx.abort_with_status(_Status(grpc.StatusCode.INVALID_ARGUMENT, msg,
                                      (("grpc-status-details-bin", status_details(3, msg)),)))
    md = dict(ctx.invocation_metadata())
    if "x-echo" in md:
        ctx.set_trailing_metadata((("x-echo", md["x-echo"]),))
    return rides.StartResponse(id=uuid.uuid4().hex)


def track(reqs, ctx):
    n = 0
    for _ in reqs:
        n += 1
    return rides.TrackResponse(count=n)


def main():
    port = int(sys.argv[1])
    tls = "--tls" in sys.argv[2:]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    handler = grpc.method_handlers_generic_handler("Rides", {
        "Start": grpc.unary_unary_rpc_method_handler(
            start, request_deserializer=rides.StartRequest.FromString,
            response_serializer=rides.StartResponse.SerializeToString),
        "Track": grpc.stream_unary_rpc_method_handler(
            track, request_deserializer=rides.TrackRequest.FromString,
            response_serializer=rides.TrackResponse.SerializeToString),
    })
    server.add_generic_rpc_handlers((handler,))
    addr = "127.0.0.1:%d" % port
    if tls:
        rt.ensure_certs()
        with open(rt.SERVER_KEY, "rb") as f:
            key = f.read()
        with open(rt.SERVER_CERT, "rb") as f:
            cert = f.read()
        server.add_secure_port(addr, grpc.ssl_server_credentials(((key, cert),)))
    else:
        server.add_insecure_port(addr)
    server.start()
    print("ready", flush=True)
    try:
        sys.stdin.read()  # the test closes stdin to stop us
    finally:
        server.stop(0)


if __name__ == "__main__":
    main()
