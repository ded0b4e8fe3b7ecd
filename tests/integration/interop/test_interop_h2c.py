"""The interop cases over plaintext HTTP/2 (h2c with prior knowledge)."""
import interop_cases as ic
import rpchost_test

results = rpchost_test.Results()
with rpchost_test.Host(plugins=["interop"], plaintext=True) as h:
    ic.run_cases(results, h, "h2c")
results.finish()
