/* `rpcall bench`: a load generator in the spirit of ghz. The request is
 * encoded once; each connection is driven by its own thread with its own
 * event loop and keeps its share of -c calls in flight, reusing the same
 * request headers and framed bytes for every call. Reports count,
 * calls/s, latency quantiles and a histogram, and status counts, as text
 * or JSON. */
#ifndef RPCALL_BENCH_H
#define RPCALL_BENCH_H

#include "options.h"

/* Runs the benchmark and prints the report; returns the exit code (0 when
 * every call ended OK, 1 otherwise or when it could not run). */
int bench_run(const rpcall_opts *o);

#endif
