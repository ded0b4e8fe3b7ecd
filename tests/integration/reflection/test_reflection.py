#!/usr/bin/env python3
"""rpchost's server reflection, checked by an independent client: raw
ServerReflectionInfo streams (grpcio, pb2 modules built by protoc from
grpc-proto's reflection.proto, v1 and v1alpha). Every file descriptor the
host returns is loaded into a fresh protobuf DescriptorPool, so an answer
missing a dependency or holding a broken file fails here."""
import os
import queue
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "../lib"))

import grpc  # noqa: E402
from google.protobuf import descriptor_pb2, descriptor_pool  # noqa: E402
import rpchost_test as rt  # noqa: E402

V1 = rt.proto_module("grpc/reflection/v1/reflection.proto")
V1A = rt.proto_module("grpc/reflection/v1alpha/reflection.proto")
PATH = {V1: "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        V1A: "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"}
NOT_FOUND = grpc.StatusCode.NOT_FOUND.value[0]
INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT.value[0]


class Stream:
    """One ServerReflectionInfo call: ask() sends a request and waits for
    its answer on the same open stream."""

    def __init__(self, ch, mod=V1):
        self.mod = mod
        self.q = queue.Queue()
        call = rt.stub(ch, "stream_stream", PATH[mod], mod.ServerReflectionResponse)
        self.responses = call(iter(self.q.get, None), timeout=60)

    def ask(self, **kw):
        req = self.mod.ServerReflectionRequest(**kw)
        self.q.put(req)
        resp = next(self.responses)
        assert resp.original_request == req, "original_request not echoed: %s" % resp
        return resp

    def close(self):
        self.q.put(None)
        rest = list(self.responses)  # the status: OK, nothing more
        assert rest == [], rest


def services(resp):
    assert resp.WhichOneof("message_response") == "list_services_response", resp
    return [s.name for s in resp.list_services_response.service]


def files(resp):
    assert resp.WhichOneof("message_response") == "file_descriptor_response", resp
    return [descriptor_pb2.FileDescriptorProto.FromString(b)
            for b in resp.file_descriptor_response.file_descriptor_proto]


def error(resp):
    assert resp.WhichOneof("message_response") == "error_response", resp
    return resp.error_response.error_code, resp.error_response.error_message


def load_pool(fds):
    """Adds files to a new pool, dependencies first; fails if one is
    missing from the answer."""
    pool = descriptor_pool.DescriptorPool()
    pending, added = list(fds), set()
    while pending:
        ready = [f for f in pending if all(d in added for d in f.dependency)]
        assert ready, "answer lacks dependencies: %s" % [
            (f.name, [d for d in f.dependency if d not in added]) for f in pending]
        for f in ready:
            pool.Add(f)
            added.add(f.name)
            pending.remove(f)
    assert len(added) == len(fds), "a file came twice: %s" % [f.name for f in fds]
    return pool


def check_symbol(s, symbol, first_file, deps=()):
    fds = files(s.ask(file_containing_symbol=symbol))
    names = [f.name for f in fds]
    assert names[0] == first_file, "%s: first file %s, want %s" % (symbol, names, first_file)
    for d in deps:
        assert d in names, "%s: %s lacks dependency %s" % (symbol, names, d)
    return load_pool(fds)


def test_list(host):
    with host.channel() as ch:
        s = Stream(ch)
        names = services(s.ask(list_services="*"))
        for want in ("grpc.testing.TestService", "Rides", "grpc.health.v1.Health",
                     "grpc.reflection.v1.ServerReflection",
                     "grpc.reflection.v1alpha.ServerReflection"):
            assert want in names, "%s not listed: %s" % (want, names)
        assert len(names) == len(set(names)), names
        s.close()


def test_symbols(host):
    with host.channel() as ch:
        s = Stream(ch)
        pool = check_symbol(s, "grpc.testing.TestService", "grpc/testing/test.proto",
                            ["grpc/testing/messages.proto", "grpc/testing/empty.proto"])
        svc = pool.FindServiceByName("grpc.testing.TestService")
        assert "FullDuplexCall" in svc.methods_by_name and "UnaryCall" in svc.methods_by_name
        check_symbol(s, "grpc.testing.TestService.FullDuplexCall", "grpc/testing/test.proto")
        pool = check_symbol(s, "grpc.testing.SimpleRequest", "grpc/testing/messages.proto")
        assert "response_size" in pool.FindMessageTypeByName(
            "grpc.testing.SimpleRequest").fields_by_name
        check_symbol(s, "grpc.testing.PayloadType", "grpc/testing/messages.proto")
        check_symbol(s, "grpc.testing.LoadBalancerStatsResponse.RpcsByPeer",
                     "grpc/testing/messages.proto")
        check_symbol(s, "grpc.testing.SimpleRequest.response_size", "grpc/testing/messages.proto")
        # A file without a package, importing a well-known type.
        pool = check_symbol(s, "Rides", "rides.proto", ["google/protobuf/timestamp.proto"])
        start = pool.FindMessageTypeByName("StartRequest")
        assert start.fields_by_name["time"].message_type.full_name == "google.protobuf.Timestamp"
        check_symbol(s, "Rides.Track", "rides.proto")
        check_symbol(s, "RideType", "rides.proto")
        # The built-in services describe themselves too.
        check_symbol(s, "grpc.health.v1.Health", "grpc/health/v1/health.proto")
        check_symbol(s, "grpc.reflection.v1alpha.ServerReflection",
                     "grpc/reflection/v1alpha/reflection.proto")
        s.close()


def test_files_and_errors(host):
    with host.channel() as ch:
        s = Stream(ch)
        fds = files(s.ask(file_by_filename="grpc/testing/empty.proto"))
        assert [f.name for f in fds] == ["grpc/testing/empty.proto"], fds
        fds = files(s.ask(file_by_filename="grpc/testing/test.proto"))
        load_pool(fds)
        assert fds[0].name == "grpc/testing/test.proto"
        fds = files(s.ask(file_by_filename="google/protobuf/timestamp.proto"))
        assert fds[0].package == "google.protobuf"

        code, msg = error(s.ask(file_containing_symbol="grpc.testing.NoSuchThing"))
        assert code == NOT_FOUND and "grpc.testing.NoSuchThing" in msg, (code, msg)
        code, msg = error(s.ask(file_containing_symbol="grpc.testing"))  # a package
        assert code == NOT_FOUND, (code, msg)
        code, msg = error(s.ask(file_by_filename="no/such.proto"))
        assert code == NOT_FOUND and "no/such.proto" in msg, (code, msg)
        code, msg = error(s.ask(all_extension_numbers_of_type="no.Such"))
        assert code == NOT_FOUND, (code, msg)
        code, msg = error(s.ask(file_containing_extension=V1.ExtensionRequest(
            containing_type="grpc.testing.SimpleRequest", extension_number=1000)))
        assert code == NOT_FOUND, (code, msg)
        code, msg = error(s.ask(host="h"))  # no request kind set
        assert code == INVALID_ARGUMENT, (code, msg)

        r = s.ask(all_extension_numbers_of_type="grpc.testing.SimpleRequest")
        assert r.all_extension_numbers_response.base_type_name == "grpc.testing.SimpleRequest"
        assert list(r.all_extension_numbers_response.extension_number) == []
        r = s.ask(host="myhost", list_services="")
        assert r.valid_host == "myhost", r
        # The stream stays usable after errors, for many requests in a row.
        for i in range(50):
            if i % 2:
                assert "Rides" in services(s.ask(list_services=""))
            else:
                assert error(s.ask(file_by_filename="x%d.proto" % i))[0] == NOT_FOUND
        s.close()


def test_v1alpha(host):
    with host.channel() as ch:
        s = Stream(ch, V1A)
        names = services(s.ask(list_services=""))
        assert "grpc.testing.TestService" in names and "Rides" in names, names
        check_symbol(s, "grpc.testing.TestService", "grpc/testing/test.proto",
                     ["grpc/testing/messages.proto"])
        code, msg = error(s.ask(file_containing_symbol="Nope"))
        assert code == NOT_FOUND and "Nope" in msg, (code, msg)
        s.close()


def test_many_streams(host):
    """Concurrent reflection streams, as several rpcall runs would open."""
    import threading
    failures = []

    def worker():
        try:
            with host.channel() as ch:
                s = Stream(ch)
                for _ in range(10):
                    check_symbol(s, "StartRequest", "rides.proto")
                s.close()
        except Exception as e:  # noqa: BLE001
            failures.append(e)
    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not failures, failures


def wait_until(fn, what, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if fn():
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting until " + what)


def test_hot_add_remove():
    """A plugin dropped in is listed at once; a removed one is gone."""
    with rt.Host(plugins=["interop"], plaintext=True) as h, h.channel() as ch:
        s = Stream(ch)
        assert "Rides" not in services(s.ask(list_services=""))
        assert error(s.ask(file_containing_symbol="StartRequest"))[0] == NOT_FOUND
        h.add_plugin("rides")
        wait_until(lambda: "Rides" in services(s.ask(list_services="")), "Rides is listed")
        check_symbol(s, "StartRequest", "rides.proto", ["google/protobuf/timestamp.proto"])
        os.unlink(os.path.join(h.plugin_dir, "rides.so"))
        wait_until(lambda: "Rides" not in services(s.ask(list_services="")), "Rides is gone")
        code, _ = error(s.ask(file_containing_symbol="StartRequest"))
        assert code == NOT_FOUND
        assert "grpc.testing.TestService" in services(s.ask(list_services=""))
        s.close()


def main():
    r = rt.Results()
    with rt.Host(plugins=["interop", "rides"]) as h:
        r.run("list services (TLS)", test_list, h)
        r.run("file containing symbol: services, methods, messages, enums, nested, "
              "fields", test_symbols, h)
        r.run("file by filename, NOT_FOUND answers, long stream", test_files_and_errors, h)
        r.run("v1alpha", test_v1alpha, h)
        r.run("8 concurrent streams", test_many_streams, h)
    r.run("hot add and remove (h2c)", test_hot_add_remove)
    r.finish()


if __name__ == "__main__":
    main()
