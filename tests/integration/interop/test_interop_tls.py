"""The interop cases over TLS (server certificate checked against the dev
CA), on IPv4 and IPv6 loopback."""
import grpc

import interop_cases as ic
import rpchost_test

results = rpchost_test.Results()
with rpchost_test.Host(plugins=["interop"]) as h:
    ic.run_cases(results, h, "tls")
    ch6 = h.channel(target="[::1]:%d" % h.port)
    results.run("tls ipv6 empty_unary", ic.empty_unary, ch6)
    ch6.close()

    def wrong_ca():
        # Trusting only the server's own (non-CA) certificate: the chain
        # does not verify, the handshake must fail.
        with open(rpchost_test.SERVER_CERT, "rb") as f:
            untrusted = f.read()
        creds = grpc.ssl_channel_credentials(root_certificates=untrusted)
        ch = grpc.secure_channel(h.address, creds)
        try:
            ic.fails_with(lambda: ic.empty_call(ch)(ic.empty_pb2.Empty(), timeout=5),
                          grpc.StatusCode.UNAVAILABLE)
        finally:
            ch.close()
    results.run("tls untrusted server certificate refused by client", wrong_ca)
results.finish()
