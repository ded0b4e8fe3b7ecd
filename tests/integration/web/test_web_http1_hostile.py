"""Hostile HTTP/1.1 clients: huge headers, smuggling shapes (Content-Length
with Transfer-Encoding, two Content-Lengths), bad chunk sizes, bodies over
max_recv_message, missing lengths, wrong versions, garbage, slow headers
and idle keep-alive connections. Each gets its clear status (or a close)
within the configured time, and the host keeps serving."""
import json
import time

from web_common import rpchost_test  # noqa: I100 (sets the import path)
from web_common import START_JSON, TOKEN, Raw, expect, host, post

results = rpchost_test.Results()

CONFIG = "\n".join(["max_recv_message = 4096", "http1_request_timeout_ms = 1000",
                    "http1_keepalive_timeout_ms = 1500", "header_list_hard = 8192"])


def answer(h, request, want, close=True):
    r = Raw(h)
    r.send(request)
    st, hd, body = r.response()
    expect(st == want, "want %d, got %d %r" % (want, st, body))
    if close:
        expect(hd.get("connection") == "close", "no Connection: close with %d" % st)
        expect(r.closed_within(5), "connection not closed after %d" % st)
    r.close()
    return body


def serves(h):
    r = Raw(h)
    r.send(post("/start", START_JSON))
    st, _, body = r.response()
    expect(st == 200 and len(json.loads(body)["id"]) == 32, "host no longer serves: %r" % body)
    r.close()


def cases(h):
    head = "POST /start HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n" % TOKEN
    c = [
        ("huge header -> 431", lambda: answer(h, head + "X-Big: " + "a" * 10000 + "\r\n\r\n", 431)),
        ("many headers -> 431",
         lambda: answer(h, head + "".join("X-%d: 1\r\n" % i for i in range(150)) + "\r\n", 431)),
        ("Content-Length + Transfer-Encoding -> 400",
         lambda: answer(h, head + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
                        "0\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n", 400)),
        ("two Content-Lengths -> 400",
         lambda: answer(h, head + "Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 400)),
        ("Transfer-Encoding not ending in chunked -> 400",
         lambda: answer(h, head + "Transfer-Encoding: chunked, identity\r\n\r\n2\r\n{}\r\n0\r\n\r\n", 400)),
        ("bad chunk size -> 400",
         lambda: answer(h, head + "Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n", 400)),
        ("chunk size overflow -> 400",
         lambda: answer(h, head + "Transfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n", 400)),
        ("Content-Length over max_recv_message -> 413",
         lambda: answer(h, head + "Content-Length: 5000\r\n\r\n", 413)),
        ("chunked body over max_recv_message -> 413",
         lambda: answer(h, head + "Transfer-Encoding: chunked\r\n\r\n" +
                        ("400\r\n" + "a" * 1024 + "\r\n") * 5 + "0\r\n\r\n", 413)),
        ("POST without a length -> 411", lambda: answer(h, head + "\r\n", 411)),
        ("HTTP/2.0 request line -> 505", lambda: answer(h, "GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505)),
        ("garbage -> 400", lambda: answer(h, "\x00\x01\x02 nonsense\r\n\r\n", 400)),
        ("GET on a gRPC method path -> 405",
         lambda: answer(h, "GET /Rides/Start HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                        "\r\n\r\n", 405, close=False)),
        ("application/grpc over HTTP/1.1 -> 415",
         lambda: answer(h, post("/Rides/Start", "", ctype="application/grpc"), 415, close=False)),
        ("unknown content type at a method path -> 404/415",
         lambda: answer(h, post("/Rides/Start", "x", ctype="text/plain"), 404, close=False)),
    ]
    for name, fn in c:
        results.run(name, lambda fn=fn: (fn(), serves(h)))


def slow_headers(h):
    r = Raw(h)
    t = time.monotonic()
    r.send("POST /start HTTP/1.1\r\nHost: x\r\n")  # and nothing more
    st, hd, _ = r.response(timeout=6)
    took = time.monotonic() - t
    expect(st == 408 and 0.8 < took < 5, "408 after %.1fs (timeout 1s): %d" % (took, st))
    expect(r.closed_within(5), "closed after 408")
    r.close()


def slow_body(h):
    r = Raw(h)
    t = time.monotonic()
    r.send(post("/start", START_JSON)[:-10])  # the body never completes
    st, _, _ = r.response(timeout=6)
    expect(st == 408 and time.monotonic() - t < 5, "slow body: %d" % st)
    r.close()


def idle_keepalive(h):
    r = Raw(h)
    r.send(post("/start", START_JSON))
    st, _, _ = r.response()
    expect(st == 200, "first request %d" % st)
    t = time.monotonic()
    expect(r.closed_within(6), "idle keep-alive connection not closed")
    took = time.monotonic() - t
    expect(1.0 < took < 5, "closed after %.1fs (keep-alive timeout 1.5s)" % took)
    r.close()


def silent_connection(h):
    # a TLS client that never sends a request: closed by the keep-alive timer
    r = Raw(h)
    expect(r.closed_within(6), "silent HTTP/1.1 connection not closed")
    r.close()


def close_mid_call(h):
    # the client goes away with a request in flight: the host stays well
    r = Raw(h)
    r.send(post("/track", '{"car_id": 1}\n' * 3))
    r.close()


def main():
    with host(CONFIG) as h:
        cases(h)
        results.run("slow headers -> 408", slow_headers, h)
        results.run("slow body -> 408", slow_body, h)
        results.run("idle keep-alive closed", idle_keepalive, h)
        results.run("silent connection closed", silent_connection, h)
        results.run("client gone mid-call", lambda: (close_mid_call(h), serves(h)))
        results.run("still serves", serves, h)
    results.finish()


if __name__ == "__main__":
    main()
