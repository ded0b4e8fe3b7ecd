"""A server that is not rpchost: Debian's python3-grpcio serving the Rides
contract (no reflection: grpcio's reflection module is not packaged), so
rpcall is checked against another implementation with --protoset.

    rides_server.py PORT [--tls] [--reflection-v1alpha PROTOSET]

Prints "ready" on stdout once it serves. With --reflection-v1alpha it also
serves grpc.reflection.v1alpha.ServerReflection (and not v1) from the
descriptors in PROTOSET, like older servers do, so rpcall's fallback from
v1 to v1alpha is checked against a real second implementation. Start with driver_id "details"
fails with INVALID_ARGUMENT and a google.rpc.Status in
grpc-status-details-bin holding a google.rpc.ErrorInfo and a detail of a
type nobody describes, written by hand
(Debian has no google/rpc protos).
"""
import os
import sys
import time
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
    # and a type no descriptor describes: {1: 42, 2: "why"}
    custom = field_bytes(1, b"type.googleapis.com/rides.example.Custom") + \
        field_bytes(2, field_varint(1, 42) + field_bytes(2, b"why"))
    return (field_varint(1, code) + field_bytes(2, message.encode()) + field_bytes(3, anyv) +
            field_bytes(3, custom))


class _Status(grpc.Status):
    def __init__(self, code, details, md):
        self.code = code
        self.details = details
        self.trailing_metadata = md


def start(req, ctx):
    if req.driver_id == "":
        ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, "driver_id is empty")
    if req.driver_id == "slow":
        return start_slow(req, ctx)
    if req.driver_id == "details":
        msg = "driver details is banned"
        ctx.abort_with_status(_Status(grpc.StatusCode.INVALID_ARGUMENT, msg,
                                      (("grpc-status-details-bin", status_details(3, msg)),)))
    md = dict(ctx.invocation_metadata())
    if "x-echo" in md:
        ctx.set_trailing_metadata((("x-echo", md["x-echo"]),))
    return rides.StartResponse(id=uuid.uuid4().hex)


def start_slow(req, ctx):
    time.sleep(5)
    return rides.StartResponse(id="late")


def track(reqs, ctx):
    n = 0
    for _ in reqs:
        n += 1
    return rides.TrackResponse(count=n)


class Reflection:
    """v1alpha ServerReflectionInfo over the files of a FileDescriptorSet."""

    def __init__(self, protoset):
        from google.protobuf import descriptor_pb2
        self.refl = rt.proto_module("grpc/reflection/v1alpha/reflection.proto")
        fds = descriptor_pb2.FileDescriptorSet()
        with open(protoset, "rb") as f:
            fds.ParseFromString(f.read())
        self.files = {fd.name: fd for fd in fds.file}
        self.symbols = {}
        self.services = []
        for fd in fds.file:
            prefix = fd.package + "." if fd.package else ""
            for svc in fd.service:
                self.services.append(prefix + svc.name)
                self.symbols[prefix + svc.name] = fd.name
                for m in svc.method:
                    self.symbols[prefix + svc.name + "." + m.name] = fd.name
            todo = [(prefix, m) for m in fd.message_type]
            while todo:
                pre, m = todo.pop()
                self.symbols[pre + m.name] = fd.name
                todo += [(pre + m.name + ".", n) for n in m.nested_type]
                for e in m.enum_type:
                    self.symbols[pre + m.name + "." + e.name] = fd.name
            for e in fd.enum_type:
                self.symbols[prefix + e.name] = fd.name

    def closure(self, name):
        out, todo = [], [name]
        while todo:
            n = todo.pop()
            if n in out or n not in self.files:
                continue
            out.append(n)
            todo += list(self.files[n].dependency)
        return [self.files[n].SerializeToString() for n in out]

    def info(self, reqs, ctx):
        r = self.refl
        for req in reqs:
            resp = r.ServerReflectionResponse(original_request=req)
            kind = req.WhichOneof("message_request")
            if kind == "list_services":
                resp.list_services_response.service.extend(
                    [r.ServiceResponse(name=s) for s in self.services])
            elif kind == "file_containing_symbol" and req.file_containing_symbol in self.symbols:
                resp.file_descriptor_response.file_descriptor_proto.extend(
                    self.closure(self.symbols[req.file_containing_symbol]))
            elif kind == "file_by_filename" and req.file_by_filename in self.files:
                resp.file_descriptor_response.file_descriptor_proto.extend(
                    self.closure(req.file_by_filename))
            else:
                resp.error_response.error_code = grpc.StatusCode.NOT_FOUND.value[0]
                resp.error_response.error_message = "not found"
            yield resp

    def handler(self):
        r = self.refl
        return grpc.method_handlers_generic_handler("grpc.reflection.v1alpha.ServerReflection", {
            "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
                self.info, request_deserializer=r.ServerReflectionRequest.FromString,
                response_serializer=r.ServerReflectionResponse.SerializeToString)})


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
    if "--reflection-v1alpha" in sys.argv:
        protoset = sys.argv[sys.argv.index("--reflection-v1alpha") + 1]
        server.add_generic_rpc_handlers((Reflection(protoset).handler(),))
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
