/* rpcall's command line: every option and the mode it selects. */
#ifndef RPCALL_OPTIONS_H
#define RPCALL_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>

#include "conn.h"

/* Exit codes. A call that ends with gRPC status N exits 64 + N (grpcurl's
 * convention); a status from the server and one rpcall decided (deadline,
 * lost connection) are reported the same way. */
enum {
    EXIT_OK = 0,
    EXIT_FAIL = 1,  /* could not call: connection, TLS, descriptors, bad request data */
    EXIT_USAGE = 2, /* bad command line */
    EXIT_STATUS_BASE = 64,
};

typedef enum rpcall_mode {
    MODE_CALL,
    MODE_LIST,
    MODE_DESCRIBE,
    MODE_BENCH,
} rpcall_mode;

typedef struct rpcall_opts {
    rpcall_mode mode;
    const char *address;
    const char *target;       /* SERVICE/METHOD, SERVICE, SYMBOL, or NULL */
    conn_opts conn;           /* conn.address == address */
    const char *authority;    /* --authority */
    const char *data;         /* -d */
    const char **headers;     /* -H, n_headers of them */
    size_t n_headers;
    const char **protosets;   /* --protoset, n_protosets */
    size_t n_protosets;
    double max_time;          /* seconds, 0 = none */
    double connect_timeout;   /* seconds */
    size_t max_msg_size;
    bool emit_defaults;
    bool verbose;
    bool compact;             /* --format json-lines (call) / json (bench) */
    int compress;             /* --compress: grpc_codec_algo of requests (0: none) */
    const char *accept_encoding; /* --accept-encoding: grpc-accept-encoding sent */
    /* bench */
    long concurrency;         /* -c */
    long connections;         /* --connections */
    long threads;             /* --threads (0: one per CPU, at most connections) */
    long total;               /* -n (0: use --duration) */
    double duration;          /* --duration seconds */
    double rps;               /* --rps cap (0: none) */
    double warmup;            /* --warmup seconds */
} rpcall_opts;

/* Parses argv. Returns 0, 1 if --help/--version was printed (exit 0), or
 * -EINVAL with one line in err. The arrays in o are malloc'd. */
int options_parse(rpcall_opts *o, int argc, char **argv, char *err, size_t errlen);
void options_free(rpcall_opts *o);

#endif
