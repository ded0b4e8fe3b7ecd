"""A request nested deeper than the host's limit (100 levels) is refused
with INTERNAL and a message saying so; the worker's stack is not at risk
(protobuf-c alone overflowed it at about 10,000 levels, some 30 KB), and the
host keeps serving. A tree within the limit is decoded and answered."""
import os
import sys

import grpc

sys.path.insert(0, os.path.join(os.environ["RPCHOST_SOURCE_DIR"], "tests/integration/lib"))
import rpchost_test as rt  # noqa: E402

PATH = "/rpchost.fuzztree.Tree/Measure"


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


def nested(levels):
    """Node{children: [Node{children: [...]}]}, levels deep (wire bytes):
    each level's header (tag, length of all inside it), outermost first."""
    heads, inner = [], 0
    for _ in range(levels - 1):
        h = b"\x12" + varint(inner)
        heads.append(h)
        inner += len(h)
    return b"".join(reversed(heads))


def call(ch, body):
    fn = ch.unary_unary(PATH, request_serializer=lambda b: b,
                        response_deserializer=lambda b: b)
    return fn(body, timeout=20)


def main():
    res = rt.Results()
    with rt.Host(plugins=["interop", "fuzztree"], plaintext=True) as h:
        ch = h.channel()

        def within_limit():
            got = call(ch, nested(100))
            assert got == b"\x08" + varint(100), got

        def far_too_deep():
            try:
                call(ch, nested(200000))
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.INTERNAL, e.code()
                assert "nests more than 100 levels" in e.details(), e.details()
                return
            raise AssertionError("a 200,000-level request was answered")

        def just_over():
            try:
                call(ch, nested(102))
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.INTERNAL, e.code()
                return
            raise AssertionError("a 102-level request was answered")

        def still_serving():
            assert call(ch, nested(3)) == b"\x08\x03"
            empty = ch.unary_unary("/grpc.testing.TestService/EmptyCall",
                                   request_serializer=lambda b: b,
                                   response_deserializer=lambda b: b)
            assert empty(b"", timeout=10) == b""

        res.run("tree within the limit is answered", within_limit)
        res.run("200,000 levels: INTERNAL, no crash", far_too_deep)
        res.run("102 levels: INTERNAL", just_over)
        res.run("host still serving", still_serving)
    sys.exit(res.finish())


if __name__ == "__main__":
    main()
