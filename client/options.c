/* Command-line parsing and --help. */
#include "options.h"

#include "grpc_codec.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
"Usage:\n"
"  rpcall [options] ADDRESS list [SERVICE]      list services, or a service's methods\n"
"  rpcall [options] ADDRESS describe [SYMBOL]   show a service, method, message or enum\n"
"  rpcall [options] ADDRESS SERVICE/METHOD      call a method (also SERVICE.METHOD)\n"
"  rpcall bench [options] ADDRESS SERVICE/METHOD   load test a method\n"
"\n"
"ADDRESS is HOST:PORT, [IPv6]:PORT or unix:PATH (plaintext unless a TLS option\n"
"is given). Descriptors come from the\n"
"server's reflection service (grpc.reflection.v1, else v1alpha) or from\n"
"--protoset files.\n"
"\n"
"Request and response:\n"
"  -d, --data DATA         request JSON; @FILE reads a file, @- reads stdin. Client\n"
"                          and bidi streams take a sequence of objects, each sent as\n"
"                          soon as it is read. Default: {} (one empty message)\n"
"  -H, --header 'K: V'     request metadata (repeatable); keys ending in -bin take\n"
"                          base64 values\n"
"      --format FMT        pretty (default) or json-lines (one message per line);\n"
"                          for bench: text (default) or json\n"
"      --emit-defaults     print fields that have their default value\n"
"  -v, --verbose           show response headers and trailers (on stderr)\n"
"      --max-time SECS     deadline for the whole run, sent as grpc-timeout\n"
"      --max-msg-size N    largest response message accepted (default 4194304);\n"
"                          compressed responses are inflated up to this size\n"
"      --compress ALGO     compress request messages: gzip or deflate (default:\n"
"                          none); sent as grpc-encoding\n"
"      --accept-encoding LIST   response compression rpcall accepts, as\n"
"                          grpc-accept-encoding (default gzip,deflate; identity\n"
"                          asks for none)\n"
"      --protoset FILE     FileDescriptorSet (protoc --descriptor_set_out\n"
"                          --include_imports); repeatable; no reflection needed\n"
"\n"
"Connection:\n"
"      --plaintext         HTTP/2 without TLS (h2c, prior knowledge)\n"
"      --cacert FILE       trust the CAs in FILE (PEM) instead of the system store\n"
"      --cert FILE         client certificate (mTLS), with --key FILE\n"
"      --key FILE          client private key\n"
"      --insecure          do not verify the server's certificate\n"
"      --servername NAME   TLS server name (SNI) and the name verified\n"
"      --authority NAME    :authority header (default: ADDRESS)\n"
"      --connect-timeout SECS   time to connect and handshake (default 10)\n"
"\n"
"Bench (rpcall bench ...):\n"
"  -c, --concurrency N     calls in flight (default 16)\n"
"      --connections N     connections, the calls spread over them (default 1)\n"
"      --threads N         threads driving the connections (default: one per CPU)\n"
"  -n, --total N           calls to make (default 1000 unless --duration)\n"
"      --duration SECS     run for this long instead of -n\n"
"      --rps N             cap on calls started per second\n"
"      --warmup SECS       calls not counted before measuring (default 0)\n"
"\n"
"Exit status: 0 on OK; 64 + the gRPC status code when a call fails (e.g. 69 for\n"
"NOT_FOUND); 1 when the call could not be made (connection, TLS, descriptors,\n"
"request data); 2 on a bad command line. Errors are printed on stderr as\n"
"  ERROR: <Code>: <message>\n"
"followed by any google.rpc.Status details.\n"
"\n"
"Examples:\n"
"  rpcall --cacert certs/out/ca.pem localhost:8888 list\n"
"  rpcall --cacert ca.pem localhost:8888 Rides/Start -d '{\"driver_id\": \"Bond\"}'\n"
"  tail -f events.jsonl | rpcall --plaintext localhost:8888 Rides/Track -d @-\n"
"  rpcall bench --plaintext -c 64 -n 100000 localhost:8888 Rides/Start -d @req.json\n";

enum {
    OPT_PLAINTEXT = 256, OPT_INSECURE, OPT_CACERT, OPT_CERT, OPT_KEY, OPT_SERVERNAME,
    OPT_AUTHORITY, OPT_MAX_TIME, OPT_CONNECT_TIMEOUT, OPT_PROTOSET, OPT_EMIT_DEFAULTS,
    OPT_FORMAT, OPT_MAX_MSG, OPT_CONNECTIONS, OPT_DURATION, OPT_RPS, OPT_WARMUP, OPT_VERSION, OPT_THREADS,
    OPT_COMPRESS, OPT_ACCEPT_ENCODING,
};

static const struct option long_opts[] = {
    {"data", required_argument, NULL, 'd'},
    {"header", required_argument, NULL, 'H'},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {"plaintext", no_argument, NULL, OPT_PLAINTEXT},
    {"insecure", no_argument, NULL, OPT_INSECURE},
    {"cacert", required_argument, NULL, OPT_CACERT},
    {"cert", required_argument, NULL, OPT_CERT},
    {"key", required_argument, NULL, OPT_KEY},
    {"servername", required_argument, NULL, OPT_SERVERNAME},
    {"authority", required_argument, NULL, OPT_AUTHORITY},
    {"max-time", required_argument, NULL, OPT_MAX_TIME},
    {"connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT},
    {"protoset", required_argument, NULL, OPT_PROTOSET},
    {"emit-defaults", no_argument, NULL, OPT_EMIT_DEFAULTS},
    {"format", required_argument, NULL, OPT_FORMAT},
    {"max-msg-size", required_argument, NULL, OPT_MAX_MSG},
    {"concurrency", required_argument, NULL, 'c'},
    {"connections", required_argument, NULL, OPT_CONNECTIONS},
    {"total", required_argument, NULL, 'n'},
    {"duration", required_argument, NULL, OPT_DURATION},
    {"rps", required_argument, NULL, OPT_RPS},
    {"warmup", required_argument, NULL, OPT_WARMUP},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"version", no_argument, NULL, OPT_VERSION},
    {"compress", required_argument, NULL, OPT_COMPRESS},
    {"accept-encoding", required_argument, NULL, OPT_ACCEPT_ENCODING},
    {NULL, 0, NULL, 0},
};

static int parse_seconds(const char *opt, const char *s, double *out, char *err, size_t errlen)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !isfinite(v) || v < 0 || v > 1e7) {
        snprintf(err, errlen, "%s '%s': expected seconds, e.g. 2.5", opt, s);
        return -EINVAL;
    }
    *out = v;
    return 0;
}

static int parse_count(const char *opt, const char *s, long min, long max, long *out,
                       char *err, size_t errlen)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno || v < min || v > max) {
        snprintf(err, errlen, "%s '%s': expected a whole number in %ld..%ld", opt, s, min, max);
        return -EINVAL;
    }
    *out = v;
    return 0;
}

static int push(const char ***arr, size_t *n, const char *v)
{
    const char **p = realloc(*arr, (*n + 1) * sizeof(char *));
    if (!p)
        return -ENOMEM;
    p[(*n)++] = v;
    *arr = p;
    return 0;
}

static int parse_compress(const char *s, int *out, char *err, size_t errlen)
{
    int a = grpc_codec_from_name(s, strlen(s));
    if (a < 0) {
        snprintf(err, errlen, "--compress '%s': use gzip or deflate", s);
        return -EINVAL;
    }
    *out = a;
    return 0;
}

/* Every name in the list must be one rpcall can inflate. */
static int check_accept(const char *s, char *err, size_t errlen)
{
    const char *p = s;
    while (*p) {
        size_t n = strcspn(p, ",");
        const char *name = p;
        size_t len = n;
        while (len && (*name == ' ' || *name == '\t'))
            name++, len--;
        while (len && (name[len - 1] == ' ' || name[len - 1] == '\t'))
            len--;
        if (grpc_codec_from_name(name, len) < 0) {
            snprintf(err, errlen, "--accept-encoding '%s': '%.*s' is not one of identity, gzip, "
                     "deflate", s, (int)len, name);
            return -EINVAL;
        }
        p += n + (p[n] == ',');
    }
    return 0;
}

void options_free(rpcall_opts *o)
{
    free(o->headers);
    free(o->protosets);
    o->headers = o->protosets = NULL;
}

/* Positional arguments: [bench] ADDRESS (list [S] | describe [S] | METHOD). */
static int parse_positionals(rpcall_opts *o, char **pos, int n, char *err, size_t errlen)
{
    int i = 0;
    if (n > 0 && strcmp(pos[0], "bench") == 0) {
        o->mode = MODE_BENCH;
        i++;
    }
    if (i >= n) {
        snprintf(err, errlen, "no ADDRESS given");
        return -EINVAL;
    }
    o->address = pos[i++];
    if (i >= n) {
        snprintf(err, errlen, "after ADDRESS, say what to do: list, describe or SERVICE/METHOD");
        return -EINVAL;
    }
    const char *what = pos[i++];
    if (o->mode == MODE_BENCH) {
        o->target = what;
    } else if (strcmp(what, "list") == 0) {
        o->mode = MODE_LIST;
        o->target = i < n ? pos[i++] : NULL;
    } else if (strcmp(what, "describe") == 0) {
        o->mode = MODE_DESCRIBE;
        o->target = i < n ? pos[i++] : NULL;
    } else {
        o->mode = MODE_CALL;
        o->target = what;
    }
    if (i < n) {
        snprintf(err, errlen, "unexpected argument '%s' (options go before or after, "
                 "request data goes in -d)", pos[i]);
        return -EINVAL;
    }
    if ((o->mode == MODE_CALL || o->mode == MODE_BENCH) &&
        !strchr(o->target, '/') && !strchr(o->target, '.')) {
        snprintf(err, errlen, "'%s' is not a method; use SERVICE/METHOD (e.g. Rides/Start), "
                 "or list / describe", o->target);
        return -EINVAL;
    }
    return 0;
}

int options_parse(rpcall_opts *o, int argc, char **argv, char *err, size_t errlen)
{
    memset(o, 0, sizeof(*o));
    o->connect_timeout = 10;
    o->max_msg_size = 4 * 1024 * 1024;
    o->accept_encoding = GRPC_CODEC_ACCEPT_VALUE;
    o->concurrency = 16;
    o->connections = 1;
    bool format_bench = false, format_call = false, bench_opt = false;
    const char *bench_name = NULL;
    long l = 0;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "d:H:vhc:n:", long_opts, NULL)) != -1) {
        int rc = 0;
        switch (c) {
        case 'd': o->data = optarg; break;
        case 'H': rc = push(&o->headers, &o->n_headers, optarg); break;
        case 'v': o->verbose = true; break;
        case 'h': fputs(usage_text, stdout); return 1;
        case OPT_VERSION: printf("rpcall %s\n", RPCALL_VERSION); return 1;
        case OPT_PLAINTEXT: o->conn.plaintext = true; break;
        case OPT_INSECURE: o->conn.insecure = true; break;
        case OPT_CACERT: o->conn.cacert = optarg; break;
        case OPT_CERT: o->conn.cert = optarg; break;
        case OPT_KEY: o->conn.key = optarg; break;
        case OPT_SERVERNAME: o->conn.servername = optarg; break;
        case OPT_AUTHORITY: o->authority = optarg; break;
        case OPT_MAX_TIME: rc = parse_seconds("--max-time", optarg, &o->max_time, err, errlen); break;
        case OPT_CONNECT_TIMEOUT:
            rc = parse_seconds("--connect-timeout", optarg, &o->connect_timeout, err, errlen);
            break;
        case OPT_PROTOSET: rc = push(&o->protosets, &o->n_protosets, optarg); break;
        case OPT_EMIT_DEFAULTS: o->emit_defaults = true; break;
        case OPT_COMPRESS: rc = parse_compress(optarg, &o->compress, err, errlen); break;
        case OPT_ACCEPT_ENCODING:
            rc = check_accept(optarg, err, errlen);
            o->accept_encoding = optarg;
            break;
        case OPT_MAX_MSG:
            rc = parse_count("--max-msg-size", optarg, 1, 1L << 30, &l, err, errlen);
            o->max_msg_size = (size_t)l;
            break;
        case OPT_FORMAT:
            if (strcmp(optarg, "pretty") == 0 || strcmp(optarg, "text") == 0) {
                o->compact = false;
                *(strcmp(optarg, "text") == 0 ? &format_bench : &format_call) = true;
            } else if (strcmp(optarg, "json-lines") == 0 || strcmp(optarg, "json") == 0) {
                o->compact = true;
                *(strcmp(optarg, "json") == 0 ? &format_bench : &format_call) = true;
            } else {
                snprintf(err, errlen, "--format '%s': use pretty or json-lines (bench: text "
                         "or json)", optarg);
                rc = -EINVAL;
            }
            break;
        case 'c':
            bench_opt = true, bench_name = "-c";
            rc = parse_count("-c", optarg, 1, 100000, &o->concurrency, err, errlen);
            break;
        case 'n':
            bench_opt = true, bench_name = "-n";
            rc = parse_count("-n", optarg, 1, 1000000000L, &o->total, err, errlen);
            break;
        case OPT_CONNECTIONS:
            bench_opt = true, bench_name = "--connections";
            rc = parse_count("--connections", optarg, 1, 1000, &o->connections, err, errlen);
            break;
        case OPT_DURATION:
            bench_opt = true, bench_name = "--duration";
            rc = parse_seconds("--duration", optarg, &o->duration, err, errlen);
            break;
        case OPT_RPS:
            bench_opt = true, bench_name = "--rps";
            rc = parse_seconds("--rps", optarg, &o->rps, err, errlen);
            break;
        case OPT_THREADS:
            bench_opt = true, bench_name = "--threads";
            rc = parse_count("--threads", optarg, 1, 256, &o->threads, err, errlen);
            break;
        case OPT_WARMUP:
            bench_opt = true, bench_name = "--warmup";
            rc = parse_seconds("--warmup", optarg, &o->warmup, err, errlen);
            break;
        case ':':
            snprintf(err, errlen, "option %s needs a value", argv[optind - 1]);
            return -EINVAL;
        default:
            snprintf(err, errlen, "unknown option %s", argv[optind - 1]);
            return -EINVAL;
        }
        if (rc == -ENOMEM) {
            snprintf(err, errlen, "out of memory");
            return rc;
        }
        if (rc < 0)
            return rc;
    }
    int rc = parse_positionals(o, argv + optind, argc - optind, err, errlen);
    if (rc < 0)
        return rc;
    o->conn.address = o->address;
    /* A Unix socket is local: rpchost serves it without TLS, so unix:
     * means plaintext unless a TLS option asks for TLS. */
    if (o->address && strncmp(o->address, "unix:", 5) == 0 && !o->conn.cacert &&
        !o->conn.cert && !o->conn.insecure && !o->conn.servername)
        o->conn.plaintext = true;
    if (o->conn.plaintext && (o->conn.cacert || o->conn.cert || o->conn.insecure ||
                              o->conn.servername)) {
        snprintf(err, errlen, "--plaintext does not go with TLS options (--cacert, --cert, "
                 "--insecure, --servername)");
        return -EINVAL;
    }
    if (o->mode != MODE_BENCH && bench_opt) {
        snprintf(err, errlen, "%s is a bench option: rpcall bench [options] ADDRESS "
                 "SERVICE/METHOD", bench_name);
        return -EINVAL;
    }
    if (o->mode == MODE_BENCH && format_call) {
        snprintf(err, errlen, "bench reports take --format text or json");
        return -EINVAL;
    }
    if (o->mode != MODE_BENCH && format_bench) {
        snprintf(err, errlen, "calls print --format pretty or json-lines");
        return -EINVAL;
    }
    if (o->mode == MODE_BENCH) {
        if (o->total && o->duration > 0) {
            snprintf(err, errlen, "give either -n or --duration, not both");
            return -EINVAL;
        }
        if (!o->total && o->duration <= 0)
            o->total = 1000;
        if (o->connections > o->concurrency) {
            snprintf(err, errlen, "--connections %ld is more than -c %ld: every connection "
                     "needs at least one call in flight", o->connections, o->concurrency);
            return -EINVAL;
        }
    }
    return 0;
}
