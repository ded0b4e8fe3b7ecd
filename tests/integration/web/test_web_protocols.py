"""The web protocols on the gRPC port, through curl (HTTP/1.1 and HTTP/2)
and raw sockets: the JSON gateway (Rides' POST /start and /track, path
templates, query parameters, response_body, server streaming), Connect
(unary JSON and proto, server streaming), gRPC-Web (binary and text,
unary and server streaming), CORS, pipelining, the access log's
protocol, and gRPC itself on the same port (TLS and plaintext)."""
import base64
import json
import re

import grpc

from web_common import rpchost_test  # noqa: I100 (sets the import path)
from web_common import (AUTH, START_JSON, SVC, TIMEOUT, Raw, curl, envelope, expect, frames,
                        grpc_web_trailers, host, messages, post, rides_pb2, wait_for)

results = rpchost_test.Results()
ID = re.compile(r"[0-9a-f]{32}")


def gateway_start(h):
    for http in ("1.1", "2"):
        st, hd, body = curl(h, "/start", "-H", AUTH, http=http, data=START_JSON)
        expect(st == 200, "HTTP/%s POST /start: %d %r" % (http, st, body))
        j = json.loads(body)
        expect(list(j) == ["id"] and ID.fullmatch(j["id"]), "answer %r" % j)
        expect(hd.get("content-type") == "application/json", "content-type %r" % hd)


def gateway_errors(h):
    for http in ("1.1", "2"):
        st, _, body = curl(h, "/start", "-H", AUTH, http=http,
                           data='{"driver_id": "", "car_id": 7}')
        j = json.loads(body)
        expect(st == 400 and j["code"] == 3 and j["message"] == "driver_id is empty",
               "empty driver_id over HTTP/%s: %d %r" % (http, st, j))
        st, _, body = curl(h, "/start", http=http, data=START_JSON)
        j = json.loads(body)
        expect(st == 401 and j["code"] == 16 and "bearer" in j["message"],
               "no token: %d %r" % (st, j))
    st, _, body = curl(h, "/start", "-H", AUTH, data='{"driver_id": "x", "colour": 1}')
    j = json.loads(body)
    expect(st == 400 and j["code"] == 3 and "colour" in j["message"], "unknown field: %d %r" % (st, j))
    st, _, body = curl(h, "/start", "-H", AUTH, data='{"driver_id": ')
    expect(st == 400 and "not JSON" in json.loads(body)["message"], "bad JSON: %d %r" % (st, body))
    st, _, body = curl(h, "/nowhere", "-H", AUTH, data="{}")
    expect(st == 404 and json.loads(body)["code"] == 5, "unknown path: %d %r" % (st, body))
    st, _, body = curl(h, "/start", "-H", AUTH)
    expect(st == 405 and json.loads(body)["code"] == 12, "GET /start: %d %r" % (st, body))


def gateway_track(h):
    lines = "".join('{"car_id": 7, "location": {"lat": %f, "lng": -0.1266743}}\n' % (51.48 + i * 1e-4)
                    for i in range(7))
    for http in ("1.1", "2"):
        st, _, body = curl(h, "/track", "-H", AUTH, http=http, data=lines)
        expect(st == 200 and json.loads(body) == {"count": "7"}, "track: %d %r" % (st, body))
    st, _, body = curl(h, "/track", "-H", AUTH, data='{"car_id": 7}\n[1]\n')
    expect(st == 400 and "message 2" in json.loads(body)["message"], "bad stream: %d %r" % (st, body))


def gateway_templates(h):
    # a path variable into an int32, a query enum, response_body
    st, _, body = curl(h, "/v1/unary/5?response_type=COMPRESSABLE", "-H", AUTH)
    j = json.loads(body)
    expect(st == 200 and base64.b64decode(j["body"]) == b"\0" * 5, "GET template: %d %r" % (st, j))
    st, _, body = curl(h, "/v1/unary/5?no_such=1", "-H", AUTH)
    expect(st == 400 and "no_such" in json.loads(body)["message"], "unknown query: %r" % body)
    st, _, body = curl(h, "/v1/unary/five", "-H", AUTH)
    expect(st == 400, "bad int in path: %d %r" % (st, body))
    # verb, body field, multi-segment variable
    st, _, body = curl(h, "/v1/cars/7:start", "-H", AUTH, data='{"lat": 1, "lng": 2}')
    expect(st == 400 and json.loads(body)["message"] == "driver_id is empty",
           "verb rule reached Start: %d %r" % (st, body))
    st, _, body = curl(h, "/v1/drivers/a/b%20c", "-H", AUTH)
    expect(st == 200 and ID.fullmatch(json.loads(body)["id"]), "** template: %d %r" % (st, body))
    st, _, body = curl(h, "/v1/cars/7:stop", "-H", AUTH, data="{}")
    expect(st == 404, "another verb: %d %r" % (st, body))


def gateway_server_stream(h):
    req = json.dumps({"response_parameters": [{"size": 3}, {"size": 1}]})
    for http in ("1.1", "2"):
        st, _, body = curl(h, "/v1/stream", "-H", AUTH, http=http, data=req)
        lines = [json.loads(x) for x in body.decode().splitlines()]
        expect(st == 200 and len(lines) == 2 and
               [len(base64.b64decode(x["result"]["payload"]["body"])) for x in lines] == [3, 1],
               "server stream over HTTP/%s: %r" % (http, body))


def connect_unary(h):
    for http in ("1.1", "2"):
        st, hd, body = curl(h, "/Rides/Start", "-H", AUTH, "-H", "content-type: application/json",
                            "-H", "connect-protocol-version: 1", http=http, data=START_JSON)
        expect(st == 200 and ID.fullmatch(json.loads(body)["id"]), "Connect JSON: %d %r" % (st, body))
        st, hd, body = curl(h, "/Rides/Start", "-H", AUTH, "-H", "content-type: application/json",
                            http=http, data='{"driver_id": ""}')
        j = json.loads(body)
        expect(st == 400 and j == {"code": "invalid_argument", "message": "driver_id is empty"},
               "Connect error: %d %r" % (st, j))
        req = rides_pb2.StartRequest(car_id=7, driver_id="Bond").SerializeToString()
        st, hd, body = curl(h, "/Rides/Start", "-H", AUTH, "-H", "content-type: application/proto",
                            http=http, data=req)
        expect(st == 200 and hd["content-type"] == "application/proto" and
               ID.fullmatch(rides_pb2.StartResponse.FromString(body).id), "Connect proto: %r" % body)
    st, _, body = curl(h, "/Rides/Start", "-H", "content-type: application/json", data="{}")
    expect(st == 401 and json.loads(body)["code"] == "unauthenticated", "Connect 401: %r" % body)
    st, _, body = curl(h, "/Rides/Start", "-H", AUTH, "-H", "content-type: application/json",
                       "-H", "connect-timeout-ms: 0", data="{}")
    expect(st == 504 and json.loads(body)["code"] == "deadline_exceeded", "timeout 0: %d %r" % (st, body))


def connect_stream(h):
    req = json.dumps({"responseParameters": [{"size": 2}, {"size": 4}]}).encode()
    for http in ("1.1", "2"):
        st, hd, body = curl(h, SVC + "StreamingOutputCall", "-H", AUTH,
                            "-H", "content-type: application/connect+json", http=http,
                            data=envelope(req))
        fr = frames(body)
        expect(st == 200 and hd["content-type"] == "application/connect+json", "head %d %r" % (st, hd))
        expect([f for f, _ in fr] == [0, 0, 2], "envelope flags %r" % fr)
        sizes = [len(base64.b64decode(json.loads(p)["payload"]["body"])) for _, p in fr[:2]]
        expect(sizes == [2, 4] and json.loads(fr[2][1]) == {}, "stream %r" % fr)
    st, _, body = curl(h, SVC + "StreamingOutputCall", "-H", "content-type: application/connect+proto",
                       data=envelope(b""))
    end = json.loads(frames(body)[-1][1])
    expect(st == 200 and end["error"]["code"] == "unauthenticated", "stream error %r" % end)


def grpc_web(h):
    req = messages.SimpleRequest(response_size=4, payload=messages.Payload(body=b"abc"))
    for http in ("1.1", "2"):
        st, hd, body = curl(h, SVC + "UnaryCall", "-H", AUTH, "-H",
                            "content-type: application/grpc-web+proto", "-H", "x-grpc-web: 1",
                            http=http, data=envelope(req.SerializeToString()))
        fr = frames(body)
        expect(st == 200 and [f for f, _ in fr] == [0, 0x80], "grpc-web unary %r" % fr)
        expect(len(messages.SimpleResponse.FromString(fr[0][1]).payload.body) == 4, "payload")
        expect(grpc_web_trailers(fr[1][1])["grpc-status"] == "0", "trailers %r" % fr[1][1])
    # text, server streaming
    sreq = messages.StreamingOutputCallRequest(
        response_parameters=[messages.ResponseParameters(size=s) for s in (1, 2, 3)])
    st, hd, body = curl(h, SVC + "StreamingOutputCall", "-H", AUTH, "-H",
                        "content-type: application/grpc-web-text",
                        data=base64.b64encode(envelope(sreq.SerializeToString())))
    raw = b"".join(base64.b64decode(p + b"=" * (-len(p) % 4))
                   for p in re.findall(rb"[A-Za-z0-9+/]+=*", body))
    fr = frames(raw)
    expect(hd["content-type"].startswith("application/grpc-web-text") and
           [len(messages.StreamingOutputCallResponse.FromString(p).payload.body) for f, p in fr[:-1]]
           == [1, 2, 3] and fr[-1][0] == 0x80, "grpc-web-text stream %r" % fr)
    # a response far over the transport's high-water mark: paced, complete
    big = messages.StreamingOutputCallRequest(
        response_parameters=[messages.ResponseParameters(size=65536) for _ in range(48)])
    for http in ("1.1", "2"):
        st, hd, body = curl(h, SVC + "StreamingOutputCall", "-H", AUTH, "-H",
                            "content-type: application/grpc-web+proto", http=http,
                            data=envelope(big.SerializeToString()))
        fr = frames(body)
        expect(len(fr) == 49 and all(len(p) > 65536 for _, p in fr[:-1]) and
               grpc_web_trailers(fr[-1][1])["grpc-status"] == "0",
               "3 MiB stream over HTTP/%s: %d frames" % (http, len(fr)))
    # errors travel in the trailer frame
    st, hd, body = curl(h, SVC + "UnaryCall", "-H", "content-type: application/grpc-web+proto",
                        data=envelope(b""))
    t = grpc_web_trailers(frames(body)[-1][1])
    expect(st == 200 and t["grpc-status"] == "16", "grpc-web unauthenticated %r" % t)
    st, hd, body = curl(h, SVC + "UnaryCall", "-H", AUTH, "-H",
                        "content-type: application/grpc-web+proto", "-H", "grpc-timeout: 0m",
                        data=envelope(b""))
    expect(grpc_web_trailers(frames(body)[-1][1])["grpc-status"] == "4", "deadline via grpc-web")


def pipelining(h):
    r = Raw(h)
    sizes = (3, 1, 2)
    r.send(b"".join(post(SVC + "UnaryCall", json.dumps({"responseSize": n})) for n in sizes))
    got = []
    for _ in sizes:
        st, hd, body = r.response()
        expect(st == 200, "pipelined answer %d %r" % (st, body))
        got.append(len(base64.b64decode(json.loads(body)["payload"]["body"])))
    expect(got == list(sizes), "answers in order: %r" % got)
    # keep-alive: the same connection serves more
    r.send(post("/start", START_JSON))
    st, _, body = r.response()
    expect(st == 200 and ID.fullmatch(json.loads(body)["id"]), "after the pipeline: %r" % body)
    r.close()


def cors(h):
    st, hd, body = curl(h, "/Rides/Start", "-X", "OPTIONS", "-H", "origin: https://app.example",
                        "-H", "access-control-request-method: POST",
                        "-H", "access-control-request-headers: content-type, x-grpc-web")
    expect(st == 204 and hd.get("access-control-allow-origin") == "https://app.example" and
           "x-grpc-web" in hd.get("access-control-allow-headers", ""), "preflight %d %r" % (st, hd))
    st, hd, _ = curl(h, "/Rides/Start", "-X", "OPTIONS", "-H", "origin: https://evil.example",
                     "-H", "access-control-request-method: POST")
    expect(st == 403 and "access-control-allow-origin" not in hd, "foreign preflight %d" % st)
    st, hd, _ = curl(h, "/start", "-H", AUTH, "-H", "origin: https://app.example", data=START_JSON)
    expect(st == 200 and hd.get("access-control-allow-origin") == "https://app.example" and
           "Grpc-Status" in hd.get("access-control-expose-headers", ""), "CORS response %r" % hd)
    st, hd, _ = curl(h, "/start", "-H", AUTH, "-H", "origin: https://evil.example", data=START_JSON)
    expect("access-control-allow-origin" not in hd, "no CORS for a foreign origin")


def access_log(h):
    wait_for(lambda: all(("protocol=%s" % p) in h.logs() for p in ("http-json", "connect", "grpc-web")),
             "access log lines naming each protocol")
    line = [ln for ln in h.logs().splitlines() if "/Rides/Start" in ln and "protocol=http-json" in ln]
    expect(line and "principal=dev" in line[0], "gateway call logged with its principal: %r" % line[:1])


def native_grpc(h):
    ch = h.channel()
    call = rpchost_test.stub(ch, "unary_unary", "/Rides/Start", rides_pb2.StartResponse)
    r = call(rides_pb2.StartRequest(car_id=1, driver_id="Bond"), timeout=TIMEOUT,
             metadata=(("authorization", "Bearer web-test-token"),))
    expect(ID.fullmatch(r.id), "gRPC on the same port: %r" % r)
    ch.close()


def plaintext():
    with host(plaintext=True) as h:
        st, _, body = curl(h, "/start", "-H", AUTH, data=START_JSON)
        expect(st == 200 and ID.fullmatch(json.loads(body)["id"]), "h2c port, HTTP/1.1: %r" % body)
        st, _, body = curl(h, "/start", "-H", AUTH, http="2", data=START_JSON)
        expect(st == 200 and ID.fullmatch(json.loads(body)["id"]), "h2c prior knowledge: %r" % body)
        ch = grpc.insecure_channel("127.0.0.1:%d" % h.port)
        call = rpchost_test.stub(ch, "unary_unary", "/Rides/Start", rides_pb2.StartResponse)
        r = call(rides_pb2.StartRequest(car_id=1, driver_id="Bond"), timeout=TIMEOUT,
                 metadata=(("authorization", "Bearer web-test-token"),))
        expect(ID.fullmatch(r.id), "gRPC h2c beside HTTP/1.1: %r" % r)
        ch.close()


def main():
    with host('cors_origins = https://app.example') as h:
        for name, fn in [("gateway POST /start, HTTP/1.1 and HTTP/2", gateway_start),
                         ("gateway errors as google.rpc.Status", gateway_errors),
                         ("gateway POST /track, newline-delimited JSON", gateway_track),
                         ("gateway templates, query, response_body", gateway_templates),
                         ("gateway server streaming", gateway_server_stream),
                         ("Connect unary JSON and proto", connect_unary),
                         ("Connect server streaming", connect_stream),
                         ("gRPC-Web binary and text", grpc_web),
                         ("HTTP/1.1 pipelining and keep-alive", pipelining),
                         ("CORS", cors),
                         ("access log names the protocol", access_log),
                         ("native gRPC on the same port", native_grpc)]:
            results.run(name, fn, h)
    results.run("plaintext listener: HTTP/1.1, h2c and gRPC", plaintext)
    results.finish()


if __name__ == "__main__":
    main()
