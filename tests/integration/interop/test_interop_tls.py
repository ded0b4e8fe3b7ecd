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
        # A client trusting only a freshly made, unrelated CA must refuse the
        # server's certificate (own subchannel pool: no reused connection).
        import os
        import subprocess
        import tempfile
        with tempfile.TemporaryDirectory() as d:
            key, crt = os.path.join(d, "k.pem"), os.path.join(d, "c.pem")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                            "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
                            "-subj", "/CN=unrelated test CA", "-keyout", key, "-out", crt],
                           check=True, capture_output=True)
            with open(crt, "rb") as f:
                untrusted = f.read()
        creds = grpc.ssl_channel_credentials(root_certificates=untrusted)
        ch = grpc.secure_channel(h.address, creds, options=[("grpc.use_local_subchannel_pool", 1)])
        try:
            ic.fails_with(lambda: ic.empty_call(ch)(ic.empty_pb2.Empty(), timeout=5),
                          grpc.StatusCode.UNAVAILABLE)
        finally:
            ch.close()
    results.run("tls untrusted server certificate refused by client", wrong_ca)
results.finish()
