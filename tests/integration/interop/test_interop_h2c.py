"""The interop cases over plaintext HTTP/2 (h2c with prior knowledge)."""
import grpc

import interop_cases as ic
import rpchost_test

results = rpchost_test.Results()
with rpchost_test.Host(plugins=["interop"], plaintext=True) as h:
    ic.run_cases(results, h, "h2c")


def configured_limit():
    """[plugin.interop] max_response_size reaches the plugin's init."""
    cfg = "[plugin.interop]\nmax_response_size = 1000\n"
    with rpchost_test.Host(plugins=["interop"], plaintext=True, config=cfg) as h:
        ch = h.channel()
        try:
            r = ic.unary_call(ch)(ic.messages.SimpleRequest(response_size=1000), timeout=ic.TIMEOUT)
            ic.expect(len(r.payload.body) == 1000, "body %d" % len(r.payload.body))
            ic.fails_with(lambda: ic.unary_call(ch)(ic.messages.SimpleRequest(response_size=1001),
                                                    timeout=ic.TIMEOUT),
                          grpc.StatusCode.INVALID_ARGUMENT)
        finally:
            ch.close()


def bad_config_refused():
    """A bad [plugin.interop] value: init fails, the host logs why and keeps
    serving (TestService is then unknown: UNIMPLEMENTED)."""
    cfg = "[plugin.interop]\nmax_response_size = lots\n"
    with rpchost_test.Host(plugins=["interop"], plaintext=True, config=cfg) as h:
        ch = h.channel()
        try:
            ic.fails_with(lambda: ic.empty_call(ch)(ic.empty_pb2.Empty(), timeout=ic.TIMEOUT),
                          grpc.StatusCode.UNIMPLEMENTED)
            logs = h.logs()
            ic.expect("max_response_size" in logs and "lots" in logs, "no log line naming the key:\n" + logs)
        finally:
            ch.close()


def configured_compression():
    """[rpchost] compression: checked on the wire, and the interop cases
    through grpcio with every response compressed that may be."""
    cfg = "[rpchost]\ncompression = gzip\ncompression_min_bytes = 1000\n"
    with rpchost_test.Host(plugins=["interop"], plaintext=True, config=cfg) as h:
        ic.configured_compression_wire(h)
        ch = h.channel()
        try:
            for case in (ic.large_unary, ic.server_streaming, ic.ping_pong, ic.custom_metadata,
                         ic.client_compressed_unary, ic.server_compressed_streaming):
                case(ch)
        finally:
            ch.close()


results.run("h2c [rpchost] compression = gzip", configured_compression)
results.run("h2c [plugin.interop] max_response_size", configured_limit)
results.run("h2c bad [plugin.interop] value refuses the plugin", bad_config_refused)
results.finish()
