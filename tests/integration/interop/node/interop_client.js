// The gRPC interop cases (grpc/grpc doc/interop-test-descriptions.md)
// through Node's @grpc/grpc-js: a second client, independent of grpcio's C
// core. Usage:
//   node interop_client.js --address localhost:PORT (--ca ca.pem | --plaintext) [--label L]
// Prints one line per case and "N passed, N failed"; exits 1 on a failure.
'use strict';
const fs = require('fs');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const args = {};
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (a === '--plaintext') args.plaintext = true;
  else args[a.replace(/^--/, '')] = process.argv[++i];
}
const label = args.label || (args.plaintext ? 'node h2c' : 'node tls');
const TIMEOUT_MS = 30000;
const REQ_SIZES = [27182, 8, 1828, 45904];
const RESP_SIZES = [31415, 9, 2653, 58979];
const SPECIAL_MESSAGE = '\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \u{1f608}\t\n';
const RECV_LIMIT = 4 << 20;

const def = protoLoader.loadSync('grpc/testing/test.proto', {
  includeDirs: [args.protos || '/usr/share/grpc-proto'],
  keepCase: true, longs: Number, enums: Number, defaults: true,
});
const testing = grpc.loadPackageDefinition(def).grpc.testing;
const creds = args.plaintext ? grpc.credentials.createInsecure()
  : grpc.credentials.createSsl(fs.readFileSync(args.ca));
const opts = {'grpc.max_receive_message_length': 64 << 20, 'grpc.max_send_message_length': 64 << 20};
const client = new testing.TestService(args.address, creds, opts);
// Compression is a channel option in grpc-js (2 = gzip, 1 = deflate); a
// write's flags can exempt one message (WriteFlags.NoCompress = 2).
const NO_COMPRESS = 2;
const gzipClient = new testing.TestService(args.address, creds,
  {...opts, 'grpc.default_compression_algorithm': 2});
const deflateClient = new testing.TestService(args.address, creds,
  {...opts, 'grpc.default_compression_algorithm': 1});
const unimplemented = new testing.UnimplementedService(args.address, creds, opts);

function expect(cond, what) {
  if (!cond) throw new Error(what);
}
const deadline = (ms = TIMEOUT_MS) => ({deadline: Date.now() + ms});
const zeros = (n) => ({body: Buffer.alloc(n)});
const params = (sizes, interval_us = 0) => sizes.map((size) => ({size, interval_us}));

// Runs a unary call; resolves {err, resp, initial, status}.
function unary(method, req, md = new grpc.Metadata(), options = deadline(), svc = client) {
  return unaryOn(svc, method, req, md, options);
}

function unaryOn(svc, method, req, md = new grpc.Metadata(), options = deadline()) {
  return new Promise((resolve) => {
    const out = {};
    const call = svc[method](req, md, options, (err, resp) => {
      out.err = err;
      out.resp = resp;
    });
    call.on('metadata', (m) => { out.initial = m; });
    call.on('status', (s) => { out.status = s; setImmediate(() => resolve(out)); });
  });
}

// Reads a call's responses to the end; resolves {msgs, initial, status}.
function collect(call) {
  return new Promise((resolve) => {
    const out = {msgs: []};
    call.on('data', (m) => out.msgs.push(m));
    call.on('metadata', (m) => { out.initial = m; });
    call.on('error', () => {});
    call.on('status', (s) => { out.status = s; resolve(out); });
  });
}

// The next response of a duplex call, or a rejection at its end.
function nextMessage(call) {
  return new Promise((resolve, reject) => {
    const onData = (m) => { done(); resolve(m); };
    const onEnd = (s) => { done(); reject(new Error('stream ended: ' + (s && s.details))); };
    const done = () => { call.off('data', onData); call.off('status', onEnd); };
    call.on('data', onData);
    call.on('status', onEnd);
  });
}

const expectCode = (s, code, details) => {
  expect(s.code === code, `status ${s.code} (${JSON.stringify(s.details)}), want ${code}`);
  if (details !== undefined)
    expect(s.details === details, `message ${JSON.stringify(s.details)}, want ${JSON.stringify(details)}`);
};
const bodySizes = (msgs) => msgs.map((m) => m.payload.body.length);

const cases = {
  async empty_unary() {
    const r = await unary('EmptyCall', {});
    expectCode(r.status, grpc.status.OK);
    expect(r.resp !== undefined && r.resp !== null, 'no response');
  },
  async large_unary() {
    const r = await unary('UnaryCall', {response_size: 314159, payload: zeros(271828)});
    expectCode(r.status, grpc.status.OK);
    expect(r.resp.payload.body.length === 314159, `body ${r.resp.payload.body.length}`);
    expect(r.resp.payload.body.equals(Buffer.alloc(314159)), 'body not zeros');
  },
  async client_streaming() {
    const resp = await new Promise((resolve, reject) => {
      const call = client.StreamingInputCall(deadline(), (err, r) => (err ? reject(err) : resolve(r)));
      for (const n of REQ_SIZES) call.write({payload: zeros(n)});
      call.end();
    });
    expect(resp.aggregated_payload_size === 74922, `aggregated ${resp.aggregated_payload_size}`);
  },
  async server_streaming() {
    const r = await collect(client.StreamingOutputCall({response_parameters: params(RESP_SIZES)}, deadline()));
    expectCode(r.status, grpc.status.OK);
    expect(JSON.stringify(bodySizes(r.msgs)) === JSON.stringify(RESP_SIZES), `sizes ${bodySizes(r.msgs)}`);
  },
  async ping_pong() {
    const call = client.FullDuplexCall(deadline());
    const all = collect(call);
    try {
      for (let i = 0; i < REQ_SIZES.length; i++) {
        const next = nextMessage(call);
        call.write({response_parameters: params([RESP_SIZES[i]]), payload: zeros(REQ_SIZES[i])});
        const m = await next;
        expect(m.payload.body.length === RESP_SIZES[i], `response ${m.payload.body.length}`);
      }
      call.end();
      const r = await all;
      expectCode(r.status, grpc.status.OK);
      expect(r.msgs.length === 4, `${r.msgs.length} responses`);
    } finally {
      call.cancel();
    }
  },
  async empty_stream() {
    const call = client.FullDuplexCall(deadline());
    const all = collect(call);
    call.end();
    const r = await all;
    expectCode(r.status, grpc.status.OK);
    expect(r.msgs.length === 0, `${r.msgs.length} responses`);
  },
  async custom_metadata() {
    const md = () => {
      const m = new grpc.Metadata();
      m.add('x-grpc-test-echo-initial', 'test_initial_metadata_value');
      m.add('x-grpc-test-echo-trailing-bin', Buffer.from([0xab, 0xab, 0xab]));
      return m;
    };
    const check = (initial, trailing) => {
      expect(initial && initial.get('x-grpc-test-echo-initial')[0] === 'test_initial_metadata_value',
             'initial metadata ' + JSON.stringify(initial && initial.getMap()));
      const t = trailing.get('x-grpc-test-echo-trailing-bin')[0];
      expect(Buffer.isBuffer(t) && t.equals(Buffer.from([0xab, 0xab, 0xab])),
             'trailing metadata ' + JSON.stringify(trailing.getMap()));
    };
    const r = await unary('UnaryCall', {response_size: 314159, payload: zeros(271828)}, md());
    expectCode(r.status, grpc.status.OK);
    check(r.initial, r.status.metadata);
    const call = client.FullDuplexCall(md(), deadline());
    const all = collect(call);
    call.write({response_parameters: params([314159]), payload: zeros(271828)});
    call.end();
    const s = await all;
    expectCode(s.status, grpc.status.OK);
    expect(JSON.stringify(bodySizes(s.msgs)) === '[314159]', `sizes ${bodySizes(s.msgs)}`);
    check(s.initial, s.status.metadata);
  },
  async status_code_and_message() {
    await statusEcho(2, 'test status message');
  },
  async special_status_message() {
    await statusEcho(2, SPECIAL_MESSAGE);
  },
  async unimplemented_method() {
    const r = await unary('UnimplementedCall', {});
    expectCode(r.status, grpc.status.UNIMPLEMENTED);
  },
  async unimplemented_service() {
    const r = await unary('UnimplementedCall', {}, new grpc.Metadata(), deadline(), unimplemented);
    expectCode(r.status, grpc.status.UNIMPLEMENTED);
  },
  async cancel_after_begin() {
    const st = await new Promise((resolve) => {
      const call = client.StreamingInputCall(deadline(), () => {});
      call.on('status', resolve);
      call.cancel();
    });
    expectCode(st, grpc.status.CANCELLED);
    await cases.empty_unary();
  },
  async cancel_after_first_response() {
    const call = client.FullDuplexCall(deadline());
    const all = collect(call);
    const next = nextMessage(call);
    call.write({response_parameters: params([31415]), payload: zeros(27182)});
    const m = await next;
    expect(m.payload.body.length === 31415, `first response ${m.payload.body.length}`);
    call.cancel();
    expectCode((await all).status, grpc.status.CANCELLED);
    await cases.empty_unary();
  },
  async timeout_on_sleeping_server() {
    const call = client.FullDuplexCall(deadline(1));
    const all = collect(call);
    call.write({payload: zeros(27182)});
    expectCode((await all).status, grpc.status.DEADLINE_EXCEEDED);
    await cases.empty_unary();
  },
  async client_compressed_unary() {
    const req = (expect) => ({expect_compressed: {value: expect}, response_size: 314159,
                              payload: zeros(271828)});
    const probe = await unary('UnaryCall', req(true));
    expectCode(probe.status, grpc.status.INVALID_ARGUMENT);
    for (const [svc, expectCompressed] of [[gzipClient, true], [deflateClient, true], [client, false]]) {
      const r = await unaryOn(svc, 'UnaryCall', req(expectCompressed));
      expectCode(r.status, grpc.status.OK);
      expect(r.resp.payload.body.length === 314159, `body ${r.resp.payload.body.length}`);
    }
  },
  async client_compressed_streaming() {
    const probe = await new Promise((resolve) => {
      const call = client.StreamingInputCall(deadline(), () => {});
      call.on('status', resolve);
      call.write({expect_compressed: {value: true}, payload: zeros(27182)});
      call.end();
    });
    expectCode(probe, grpc.status.INVALID_ARGUMENT);
    for (const svc of [gzipClient, deflateClient]) {
      const resp = await new Promise((resolve, reject) => {
        const call = svc.StreamingInputCall(deadline(), (err, r) => (err ? reject(err) : resolve(r)));
        call.write({expect_compressed: {value: true}, payload: zeros(27182)});
        call.write({expect_compressed: {value: false}, payload: zeros(45904)}, NO_COMPRESS);
        call.end();
      });
      expect(resp.aggregated_payload_size === 73086, `aggregated ${resp.aggregated_payload_size}`);
    }
  },
  // grpc-js inflates without telling whether a message was compressed:
  // the flags are checked on the wire by the Python suite.
  async server_compressed_unary() {
    for (const compressed of [true, false]) {
      const r = await unary('UnaryCall', {response_compressed: {value: compressed},
                                          response_size: 314159, payload: zeros(271828)});
      expectCode(r.status, grpc.status.OK);
      expect(r.resp.payload.body.equals(Buffer.alloc(314159)), `body ${r.resp.payload.body.length}`);
    }
  },
  async server_compressed_streaming() {
    const r = await collect(client.StreamingOutputCall({response_parameters: [
      {compressed: {value: true}, size: 31415}, {compressed: {value: false}, size: 92653}]}, deadline()));
    expectCode(r.status, grpc.status.OK);
    expect(JSON.stringify(bodySizes(r.msgs)) === '[31415,92653]', `sizes ${bodySizes(r.msgs)}`);
    expect(r.msgs.every((m) => m.payload.body.equals(Buffer.alloc(m.payload.body.length))), 'not zeros');
  },
  async receive_limit() {
    // SimpleRequest{payload{body: n}}: 1 + varint + (1 + varint + n) bytes.
    const req = (total) => {
      for (let n = total - 16; ; n++) {
        const inner = 1 + varintLen(n) + n;
        if (1 + varintLen(inner) + inner === total) return {payload: zeros(n)};
      }
    };
    const ok = await unary('UnaryCall', req(RECV_LIMIT));
    expectCode(ok.status, grpc.status.OK);
    const over = await unary('UnaryCall', req(RECV_LIMIT + 1));
    expectCode(over.status, grpc.status.RESOURCE_EXHAUSTED);
    await cases.empty_unary();
  },
};

function varintLen(n) {
  let len = 1;
  while (n >= 128) { n = Math.floor(n / 128); len++; }
  return len;
}

async function statusEcho(code, message) {
  const response_status = {code, message};
  const r = await unary('UnaryCall', {response_status});
  expectCode(r.status, code, message);
  const call = client.FullDuplexCall(deadline());
  const all = collect(call);
  call.write({response_status});
  call.end();
  expectCode((await all).status, code, message);
}

(async () => {
  let passed = 0;
  let failed = 0;
  for (const [name, fn] of Object.entries(cases)) {
    const t = Date.now();
    try {
      await fn();
      passed++;
      console.log(`ok   ${label} ${name} (${((Date.now() - t) / 1000).toFixed(2)}s)`);
    } catch (e) {
      failed++;
      console.log(`FAIL ${label} ${name} (${((Date.now() - t) / 1000).toFixed(2)}s): ${e.stack || e}`);
    }
  }
  client.close();
  gzipClient.close();
  deflateClient.close();
  unimplemented.close();
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
})();
