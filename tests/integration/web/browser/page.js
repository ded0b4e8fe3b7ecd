// The browser test page's code (bundled by esbuild at test time): calls
// Rides.Start through Connect (JSON and binary) and gRPC-Web with the
// @connectrpc client libraries, and the interop unary and server-streaming
// cases through gRPC-Web. Message types are declared at run time (no code
// generation step); field numbers follow rides.proto and
// grpc/testing/messages.proto.
import { MethodKind, proto3 } from "@bufbuild/protobuf";
import { ConnectError, createPromiseClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";

const DOUBLE = 1, INT64 = 3, INT32 = 5, STRING = 9, BYTES = 12;

const Location = proto3.makeMessageType("Location", [
  { no: 1, name: "lat", kind: "scalar", T: DOUBLE },
  { no: 2, name: "lng", kind: "scalar", T: DOUBLE },
]);
const StartRequest = proto3.makeMessageType("StartRequest", [
  { no: 1, name: "car_id", kind: "scalar", T: INT64 },
  { no: 2, name: "driver_id", kind: "scalar", T: STRING },
  { no: 3, name: "passenger_ids", kind: "scalar", T: STRING, repeated: true },
  { no: 5, name: "location", kind: "message", T: Location },
]);
const StartResponse = proto3.makeMessageType("StartResponse", [
  { no: 1, name: "id", kind: "scalar", T: STRING },
]);
const Rides = {
  typeName: "Rides",
  methods: { start: { name: "Start", I: StartRequest, O: StartResponse, kind: MethodKind.Unary } },
};

const Payload = proto3.makeMessageType("grpc.testing.Payload", [
  { no: 2, name: "body", kind: "scalar", T: BYTES },
]);
const SimpleRequest = proto3.makeMessageType("grpc.testing.SimpleRequest", [
  { no: 2, name: "response_size", kind: "scalar", T: INT32 },
  { no: 3, name: "payload", kind: "message", T: Payload },
]);
const SimpleResponse = proto3.makeMessageType("grpc.testing.SimpleResponse", [
  { no: 1, name: "payload", kind: "message", T: Payload },
]);
const ResponseParameters = proto3.makeMessageType("grpc.testing.ResponseParameters", [
  { no: 1, name: "size", kind: "scalar", T: INT32 },
]);
const StreamingOutputCallRequest = proto3.makeMessageType("grpc.testing.StreamingOutputCallRequest", [
  { no: 2, name: "response_parameters", kind: "message", T: ResponseParameters, repeated: true },
]);
const StreamingOutputCallResponse = proto3.makeMessageType("grpc.testing.StreamingOutputCallResponse", [
  { no: 1, name: "payload", kind: "message", T: Payload },
]);
const TestService = {
  typeName: "grpc.testing.TestService",
  methods: {
    unaryCall: { name: "UnaryCall", I: SimpleRequest, O: SimpleResponse, kind: MethodKind.Unary },
    streamingOutputCall: {
      name: "StreamingOutputCall", I: StreamingOutputCallRequest, O: StreamingOutputCallResponse,
      kind: MethodKind.ServerStreaming,
    },
  },
};

async function outcome(promise) {
  try {
    await promise;
    return "no error";
  } catch (e) {
    const ce = ConnectError.from(e);
    return ce.code + ":" + ce.rawMessage;
  }
}

async function run(base, token) {
  const headers = { authorization: "Bearer " + token };
  const out = {};
  const transports = [
    ["connect-json", createConnectTransport({ baseUrl: base })],
    ["connect-proto", createConnectTransport({ baseUrl: base, useBinaryFormat: true })],
    ["grpc-web", createGrpcWebTransport({ baseUrl: base })],
  ];
  for (const [name, transport] of transports) {
    const rides = createPromiseClient(Rides, transport);
    const r = await rides.start({
      carId: 7n, driverId: "Bond", passengerIds: ["M", "Q"],
      location: { lat: 51.4871871, lng: -0.1266743 },
    }, { headers });
    out[name + " start"] = r.id;
    out[name + " empty driver"] = await outcome(rides.start({ carId: 7n, driverId: "" }, { headers }));
    out[name + " no token"] = await outcome(rides.start({ driverId: "Bond" }));
  }
  // interop cases through gRPC-Web
  const t = createPromiseClient(TestService, createGrpcWebTransport({ baseUrl: base }));
  const u = await t.unaryCall({ responseSize: 314159, payload: { body: new Uint8Array(271828) } },
                              { headers });
  out["interop large_unary"] = u.payload.body.length;
  const sizes = [];
  const req = { responseParameters: [31415, 9, 2653, 58979].map((size) => ({ size })) };
  for await (const m of t.streamingOutputCall(req, { headers })) sizes.push(m.payload.body.length);
  out["interop server_streaming"] = sizes.join(",");
  return out;
}

window.rpchostTest = run;
