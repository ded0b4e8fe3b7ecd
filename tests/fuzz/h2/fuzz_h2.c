/* The host's HTTP/2 + gRPC request path, in process and without a network:
 * each input is turned into the bytes a client would send on one h2c
 * connection (client preface, then frames), which go through a socketpair
 * into a real connection (host/transport/conn.c -> nghttp2 -> h2.c -> rpc/call.c ->
 * interceptors and handlers -> responses -> nghttp2 -> the socket). The
 * harness is the worker loop: it reads, runs timers (deadlines,
 * call_later), flushes, and drains what the server answered.
 *
 * Served: the interop plugin (grpc.testing.TestService), the authlog
 * plugin (its auth and log interceptors, a tokens file with one token:
 * "Bearer secret-token"), and the built-in reflection and health services.
 * Each input gets a fresh worker, so nothing carries over but the registry.
 *
 * Input: a sequence of operations, each one byte (op % 13) and its
 * arguments (missing bytes read as 0):
 *   0 raw      n, n bytes sent as they are
 *   1 headers  stream, flags, count, count x header (see add_header)
 *   2 data     stream, flags, len16, payload (gRPC-framed unless raw)
 *   3 rst      stream, error code
 *   4 ping     flags, 8 bytes
 *   5 window   stream, 4-byte increment
 *   6 settings flags, count, count x 6 bytes
 *   7 goaway   4-byte last stream, error code
 *   8 priority stream, 5 bytes
 *   9 flush    what was written so far goes to the server, which runs
 *  10 call     method, flags, len16, payload: a whole gRPC call (headers,
 *              one message, end of stream) on a new stream
 *  11 time     ms16: timers due within that many milliseconds run (deadlines,
 *              call_later), as if the time had passed
 *  12 stall    the client stops (or resumes) reading what the server sends
 * Stream selector byte: see pick_stream. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <nghttp2/nghttp2.h>
#include <openssl/sha.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "builtin/builtin.h"
#include "rpc/call.h"
#include "transport/conn.h"
#include "fuzz.h"
#include "grpc_frame.h"
#include "transport/h2.h"
#include "core/log.h"
#include "registry/registry.h"
#include "server.h"
#include "config/settings.h"
#include "core/timer.h"
#include "event/worker.h"

/* ---- one-time set-up -------------------------------------------------- */

static rh_settings settings;
static char tmpdir[64], tokens_path[128], config_path[128];

static void cleanup(void)
{
    /* Plugins first (authlog re-reads its tokens file until its fini). */
    reg_shutdown();
    h2_free();
    unlink(tokens_path);
    unlink(config_path);
    rmdir(tmpdir);
}

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fputs(text, f);
    return fclose(f);
}

static void die(const char *what)
{
    fprintf(stderr, "fuzz_h2: set-up failed: %s\n", what);
    abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    strcpy(tmpdir, "/tmp/rpchost-fuzz-h2-XXXXXX");
    if (!mkdtemp(tmpdir)) die("mkdtemp");
    atexit(cleanup);
    snprintf(tokens_path, sizeof tokens_path, "%s/tokens", tmpdir);
    snprintf(config_path, sizeof config_path, "%s/rpchost.ini", tmpdir);
    uint8_t d[SHA256_DIGEST_LENGTH];
    SHA256((const uint8_t *)"secret-token", 12, d);
    char line[256];
    size_t o = 0;
    for (size_t i = 0; i < sizeof d; i++) o += (size_t)sprintf(line + o, "%02x", d[i]);
    strcpy(line + o, " alice *\n");
    char cfg[512];
    snprintf(cfg, sizeof cfg,
             "[plugin.authlog]\ntokens_file = %s\nlog_file = /dev/null\nlog_format = json\n",
             tokens_path);
    if (write_file(tokens_path, line) || write_file(config_path, cfg)) die("temporary files");

    static const char *const env[] = {"HOST", "PORT", "CERT_FILE", "KEY_FILE"};
    for (size_t i = 0; i < sizeof env / sizeof env[0]; i++) unsetenv(env[i]);
    char *args[] = {"fuzz_h2", "--plaintext", "--plugins", tmpdir, "--workers", "1",
                    "--log-level", "error", "--config", config_path, NULL};
    if (settings_load(&settings, 10, args) != 0) die("settings");
    settings_set(&settings);
    log_set_level(RH_LOG_ERROR);
    signal(SIGPIPE, SIG_IGN);
    if (h2_init(&settings, &call_stream_ops) < 0) die("h2_init");
    reg_set_host(host_api(), server_cancel_instance);
    if (reg_init() < 0 || reg_add_builtin(builtin_reflection()) < 0 ||
        reg_add_builtin(builtin_health()) < 0)
        die("registry");
    if (reg_load_file(FUZZ_H2_INTEROP) < 0) die(FUZZ_H2_INTEROP);
    if (reg_load_file(FUZZ_H2_AUTHLOG) < 0) die(FUZZ_H2_AUTHLOG);
    return 0;
}

/* ---- the client side: building frames --------------------------------- */

typedef struct bytes {
    uint8_t *p;
    size_t len, cap;
} bytes;

static void put(bytes *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n) cap *= 2;
        uint8_t *q = realloc(b->p, cap);
        if (!q) abort();
        b->p = q;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void put_u32(bytes *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    put(b, x, 4);
}

static void frame_head(bytes *b, size_t len, uint8_t type, uint8_t flags, uint32_t sid)
{
    uint8_t h[9] = {(uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len, type, flags,
                    (uint8_t)(sid >> 24 & 0x7f), (uint8_t)(sid >> 16), (uint8_t)(sid >> 8),
                    (uint8_t)sid};
    put(b, h, 9);
}

typedef struct input {
    const uint8_t *p, *end;
} input;

static uint8_t next(input *in) { return in->p < in->end ? *in->p++ : 0; }

static size_t take(input *in, size_t n, const uint8_t **out)
{
    size_t have = (size_t)(in->end - in->p);
    if (n > have) n = have;
    *out = in->p;
    in->p += n;
    return n;
}

typedef struct client {
    int fd;
    bool stalled; /* not reading: the server's output backs up */
    bytes out;
    nghttp2_hd_deflater *hd;
    uint32_t next_sid, last_sid;
} client;

/* 0-2: a new stream; 3: the last one; 4: stream 0; 5: an even (server)
 * id; 6-7: an earlier client stream. */
static uint32_t pick_stream(client *c, uint8_t b)
{
    switch (b & 7) {
    case 0: case 1: case 2:
        c->last_sid = c->next_sid;
        c->next_sid += 2;
        return c->last_sid;
    case 3: return c->last_sid ? c->last_sid : 1;
    case 4: return 0;
    case 5: return 2u + 2u * (b >> 3);
    default: {
        uint32_t back = 2u * (b >> 3);
        return c->last_sid > back ? c->last_sid - back : 1;
    }
    }
}

#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, sizeof(v) - 1, 0}
static const nghttp2_nv dict[] = {
    NV(":method", "POST"), NV(":scheme", "http"), NV(":authority", "localhost"),
    NV(":path", "/grpc.testing.TestService/UnaryCall"), NV("content-type", "application/grpc"),
    NV("te", "trailers"), NV("authorization", "Bearer secret-token"),
    NV(":path", "/grpc.testing.TestService/EmptyCall"),
    NV(":path", "/grpc.testing.TestService/StreamingOutputCall"),
    NV(":path", "/grpc.testing.TestService/StreamingInputCall"),
    NV(":path", "/grpc.testing.TestService/FullDuplexCall"),
    NV(":path", "/grpc.testing.TestService/HalfDuplexCall"),
    NV(":path", "/grpc.testing.TestService/UnimplementedCall"),
    NV(":path", "/grpc.health.v1.Health/Check"), NV(":path", "/grpc.health.v1.Health/Watch"),
    NV(":path", "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"),
    NV(":path", "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"),
    NV(":path", "/no.Such/Method"), NV(":path", "/"), NV(":path", "*"),
    NV(":method", "GET"), NV(":method", "PUT"), NV(":scheme", "https"),
    NV("content-type", "application/grpc+proto"), NV("content-type", "application/json"),
    NV("content-type", "application/grpc;charset=utf-8"), NV("te", "gzip"),
    NV("grpc-timeout", "1S"), NV("grpc-timeout", "1n"), NV("grpc-timeout", "0m"),
    NV("grpc-timeout", "99999999H"), NV("grpc-timeout", "12x"), NV("grpc-encoding", "gzip"),
    NV("grpc-encoding", "identity"), NV("grpc-accept-encoding", "identity,gzip"),
    NV("user-agent", "grpc-fuzz/1.0"), NV("x-user", "value"), NV("x-user-bin", "AAECAw"),
    NV("x-user-bin", "AAECAw=="), NV("x-user-bin", "!!!"), NV("x-grpc-test-echo-initial", "a"),
    NV("x-grpc-test-echo-trailing-bin", "CgsM"), NV("authorization", "Bearer wrong"),
    NV("authorization", "Basic dXNlcg=="), NV("grpc-message", "%41"), NV("grpc-status", "0"),
    NV("connection", "keep-alive"), NV(":status", "200"), NV("host", "localhost"),
    /* compression (the inflate path of host/compress.c) */
    NV("grpc-encoding", "deflate"), NV("grpc-encoding", "snappy"),
    NV("grpc-accept-encoding", "gzip,deflate"),
};
#define N_DICT (sizeof dict / sizeof dict[0])

static const char *const methods[] = {
    "/grpc.testing.TestService/UnaryCall", "/grpc.testing.TestService/EmptyCall",
    "/grpc.testing.TestService/StreamingOutputCall",
    "/grpc.testing.TestService/StreamingInputCall",
    "/grpc.testing.TestService/FullDuplexCall", "/grpc.testing.TestService/HalfDuplexCall",
    "/grpc.testing.TestService/UnimplementedCall", "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch", "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", "/no.Such/Method",
};
#define N_METHODS (sizeof methods / sizeof methods[0])

/* Header block, split into HEADERS + CONTINUATION frames as flags say. */
static void emit_headers(client *c, uint32_t sid, uint8_t flags, const nghttp2_nv *nv,
                         size_t n)
{
    size_t bound = nghttp2_hd_deflate_bound(c->hd, nv, n);
    uint8_t *blk = malloc(bound ? bound : 1);
    if (!blk) abort();
    ssize_t len = nghttp2_hd_deflate_hd(c->hd, blk, bound, nv, n);
    if (len < 0) {
        free(blk);
        return;
    }
    bool split = flags & 2, open = flags & 4, padded = flags & 8, prio = flags & 16;
    size_t first = split ? (size_t)len / 2 : (size_t)len;
    uint8_t fl = (flags & 1 ? NGHTTP2_FLAG_END_STREAM : 0) |
                 (!split && !open ? NGHTTP2_FLAG_END_HEADERS : 0) |
                 (padded ? NGHTTP2_FLAG_PADDED : 0) | (prio ? NGHTTP2_FLAG_PRIORITY : 0);
    size_t extra = (padded ? 1 + 3 : 0) + (prio ? 5 : 0);
    frame_head(&c->out, first + extra, NGHTTP2_HEADERS, fl, sid);
    if (padded) put(&c->out, "\x03", 1);
    if (prio) put(&c->out, "\x00\x00\x00\x00\x10", 5);
    put(&c->out, blk, first);
    if (padded) put(&c->out, "\0\0\0", 3);
    if (split) {
        frame_head(&c->out, (size_t)len - first, NGHTTP2_CONTINUATION,
                   open ? 0 : NGHTTP2_FLAG_END_HEADERS, sid);
        put(&c->out, blk + first, (size_t)len - first);
    }
    free(blk);
}

/* A header: a dictionary entry, a literal, or a long value (header list
 * limits). Literal names and values live in the input or in `scratch`. */
static bool add_header(input *in, nghttp2_nv *nv, char *scratch, size_t cap)
{
    uint8_t k = next(in);
    if (k < 200) {
        *nv = dict[k % N_DICT];
        return true;
    }
    const uint8_t *name, *value;
    size_t nl = take(in, next(in) % 32, &name);
    if (k == 255) {
        /* a value of up to 20 KiB */
        size_t vl = (size_t)next(in) * 80;
        if (vl > cap) vl = cap;
        memset(scratch, 'v', vl);
        *nv = (nghttp2_nv){(uint8_t *)(nl ? name : (const uint8_t *)"x-long"),
                           (uint8_t *)scratch, nl ? nl : 6, vl, 0};
        return true;
    }
    size_t vl = take(in, next(in), &value);
    *nv = (nghttp2_nv){(uint8_t *)name, (uint8_t *)value, nl, vl, 0};
    return true;
}

static void op_headers(client *c, input *in)
{
    uint32_t sid = pick_stream(c, next(in));
    uint8_t flags = next(in);
    size_t n = next(in) % 24;
    nghttp2_nv nv[24];
    static char scratch[20480];
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (add_header(in, &nv[k], scratch, sizeof scratch)) k++;
    emit_headers(c, sid, flags, nv, k);
}

/* A DATA frame: a gRPC message (prefix + payload), or raw bytes. */
static void op_data(client *c, input *in)
{
    uint32_t sid = pick_stream(c, next(in));
    uint8_t flags = next(in);
    size_t want = next(in);
    want |= (size_t)next(in) << 8;
    const uint8_t *payload;
    size_t n = take(in, want % 4096, &payload);
    bool raw = flags & 2, padded = flags & 16;
    uint8_t prefix[GRPC_FRAME_PREFIX];
    uint32_t announced = (uint32_t)n;
    if (flags & 8) announced = (uint32_t)n + next(in);    /* longer than sent */
    if (flags & 32) announced = (4u << 20) + 1;           /* over the limit */
    grpc_frame_prefix(prefix, flags & 4, announced);
    size_t len = n + (raw ? 0 : GRPC_FRAME_PREFIX) + (padded ? 1 + 7 : 0);
    frame_head(&c->out, len, NGHTTP2_DATA,
               (flags & 1 ? NGHTTP2_FLAG_END_STREAM : 0) | (padded ? NGHTTP2_FLAG_PADDED : 0),
               sid);
    if (padded) put(&c->out, "\x07", 1);
    if (!raw) put(&c->out, prefix, sizeof prefix);
    put(&c->out, payload, n);
    if (padded) put(&c->out, "\0\0\0\0\0\0\0", 7);
}

/* Headers of a well-formed call to methods[m], one message, end. */
static void op_call(client *c, input *in)
{
    uint8_t m = next(in), flags = next(in);
    const char *path = methods[m % N_METHODS];
    nghttp2_nv nv[8] = {NV(":method", "POST"), NV(":scheme", "http"),
                        NV(":authority", "localhost"), NV(":path", ""),
                        NV("content-type", "application/grpc"), NV("te", "trailers"),
                        NV("authorization", "Bearer secret-token"), NV("grpc-timeout", "5S")};
    nv[3].value = (uint8_t *)path;
    nv[3].valuelen = strlen(path);
    size_t n = flags & 1 ? 8 : 7; /* with a deadline */
    uint32_t sid = pick_stream(c, 0);
    emit_headers(c, sid, 0, nv, n);
    size_t want = next(in);
    want |= (size_t)next(in) << 8;
    const uint8_t *payload;
    size_t len = take(in, want % 4096, &payload);
    uint8_t prefix[GRPC_FRAME_PREFIX];
    grpc_frame_prefix(prefix, false, (uint32_t)len);
    bool end = !(flags & 2); /* else the stream stays open (streaming) */
    frame_head(&c->out, len + GRPC_FRAME_PREFIX, NGHTTP2_DATA,
               end ? NGHTTP2_FLAG_END_STREAM : 0, sid);
    put(&c->out, prefix, sizeof prefix);
    put(&c->out, payload, len);
}

static void op_simple(client *c, input *in, uint8_t op)
{
    const uint8_t *p;
    switch (op) {
    case 3: { /* RST_STREAM */
        uint32_t sid = pick_stream(c, next(in));
        frame_head(&c->out, 4, NGHTTP2_RST_STREAM, 0, sid);
        put_u32(&c->out, next(in) % 16);
        break;
    }
    case 4: { /* PING */
        uint8_t fl = next(in) & 1;
        frame_head(&c->out, 8, NGHTTP2_PING, fl, 0);
        uint8_t o[8] = {0};
        size_t n = take(in, 8, &p);
        memcpy(o, p, n);
        put(&c->out, o, 8);
        break;
    }
    case 5: { /* WINDOW_UPDATE */
        uint32_t sid = next(in) & 1 ? 0 : pick_stream(c, next(in));
        uint32_t inc = (uint32_t)next(in) << 24 | (uint32_t)next(in) << 16 |
                       (uint32_t)next(in) << 8 | next(in);
        frame_head(&c->out, 4, NGHTTP2_WINDOW_UPDATE, 0, sid);
        put_u32(&c->out, inc & 0x7fffffff);
        break;
    }
    case 6: { /* SETTINGS */
        uint8_t fl = next(in) & 1;
        size_t n = next(in) % 8;
        size_t got = take(in, n * 6, &p);
        frame_head(&c->out, got, NGHTTP2_SETTINGS, fl, 0);
        put(&c->out, p, got);
        break;
    }
    case 7: { /* GOAWAY */
        frame_head(&c->out, 8, NGHTTP2_GOAWAY, 0, 0);
        put_u32(&c->out, c->last_sid);
        put_u32(&c->out, next(in) % 16);
        break;
    }
    case 8: { /* PRIORITY */
        uint32_t sid = pick_stream(c, next(in));
        uint8_t pr[5] = {0};
        size_t n = take(in, 5, &p);
        memcpy(pr, p, n);
        frame_head(&c->out, 5, NGHTTP2_PRIORITY, 0, sid);
        put(&c->out, pr, 5);
        break;
    }
    }
}

/* ---- the server side: one worker driven from here ----------------------- */

static size_t answered; /* bytes the server sent for this input */

static size_t drain_client(int fd)
{
    static uint8_t sink[65536];
    size_t total = 0;
    for (;;) {
        ssize_t n = read(fd, sink, sizeof sink);
        if (n <= 0) break;
        total += (size_t)n;
    }
    answered += total;
    return total;
}

/* One loop iteration as worker_main does it, until nothing moves (or a
 * bound: a stream of timers firing at once). cfd < 0: the client does not
 * read. */
static void pump(worker *w, conn *c, int cfd)
{
    for (int round = 0; round < 64; round++) {
        w->now = now_ns();
        if (c->state != CONN_CLOSED) conn_on_event(c, EPOLLIN | EPOLLOUT);
        timer_run(&w->timers, now_ns());
        conn *list = w->readable;
        w->readable = NULL;
        while (list) {
            conn *r = list;
            list = r->next_readable;
            r->in_readable = false;
            if (r->state == CONN_H2) conn_read(r);
        }
        while (w->dirty) {
            conn *d = w->dirty;
            w->dirty = d->next_dirty;
            d->dirty = false;
            conn_flush(d);
        }
        size_t got = cfd >= 0 ? drain_client(cfd) : 0;
        int64_t due = timer_next(&w->timers);
        if (!got && !w->readable && !w->dirty && (due < 0 || due > now_ns())) break;
    }
}

/* Sends what the client wrote so far, pumping while the socket is full. */
static void send_out(client *cl, worker *w, conn *c)
{
    size_t off = 0;
    for (int stuck = 0; off < cl->out.len && stuck < 8;) {
        ssize_t n = write(cl->fd, cl->out.p + off, cl->out.len - off);
        if (n > 0) {
            off += (size_t)n;
            stuck = 0;
        } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
            break; /* the server closed */
        } else {
            stuck++;
        }
        pump(w, c, cl->stalled ? -1 : cl->fd);
    }
    cl->out.len = 0;
}

/* Runs the timers due within ms milliseconds from now, then the loop. */
static void advance(client *cl, worker *w, conn *c, unsigned ms)
{
    send_out(cl, w, c);
    timer_run(&w->timers, now_ns() + (int64_t)ms * 1000000);
    pump(w, c, cl->stalled ? -1 : cl->fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    worker w;
    if (worker_init(&w, 0, &settings) < 0) abort();
    worker_self = &w;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) abort();
    conn *c = conn_new(&w, sv[0], NULL, 0, "fuzz"); /* a Unix peer: h2c */
    if (!c) abort();
    client cl = {.fd = sv[1], .next_sid = 1};
    if (nghttp2_hd_deflate_new(&cl.hd, 4096) != 0) abort();
    put(&cl.out, NGHTTP2_CLIENT_MAGIC, NGHTTP2_CLIENT_MAGIC_LEN);
    frame_head(&cl.out, 0, NGHTTP2_SETTINGS, 0, 0);

    input in = {data, data + size};
    while (in.p < in.end) {
        uint8_t op = next(&in) % 13;
        switch (op) {
        case 0: {
            const uint8_t *p;
            size_t n = take(&in, next(&in), &p);
            put(&cl.out, p, n);
            break;
        }
        case 1: op_headers(&cl, &in); break;
        case 2: op_data(&cl, &in); break;
        case 9: send_out(&cl, &w, c); break;
        case 10: op_call(&cl, &in); break;
        case 11: {
            unsigned ms = next(&in);
            ms |= (unsigned)next(&in) << 8;
            advance(&cl, &w, c, ms);
            break;
        }
        case 12: cl.stalled = !cl.stalled; break;
        default: op_simple(&cl, &in, op); break;
        }
    }
    send_out(&cl, &w, c);

    /* The client goes away: the server sees end of file and closes;
     * call_later callbacks of cancelled calls run once, as on shutdown. */
    close(cl.fd);
    pump(&w, c, -1);
    while (w.conns) conn_close(w.conns, "fuzz: end of input");
    timer_run(&w.timers, INT64_MAX);
    conns_close_all(&w, "fuzz: end of input"); /* frees the closed connections */
    call_free_list(&w);
    worker_free(&w);
    worker_self = NULL;
    nghttp2_hd_deflate_del(cl.hd);
    free(cl.out.p);
    if (getenv("FUZZ_H2_VERBOSE")) fprintf(stderr, "fuzz_h2: %zu bytes in, %zu out\n", size, answered);
    answered = 0;
    return 0;
}

FUZZ_CASES(
    /* a unary call, a flush, a ping */
    FUZZ_CASE("\x0a\x00\x00\x05\x00" "\x10\x01\x18\x05\x00" "\x09" "\x04\x00" "12345678"),
    /* a reflection stream listing services */
    FUZZ_CASE("\x0a\x09\x02\x03\x00" "\x3a\x01*" "\x09"),
    /* headers only, no content-type, end of stream */
    FUZZ_CASE("\x01\x00\x01\x03\x00\x03\x01"),
    /* a message longer than the limit */
    FUZZ_CASE("\x01\x00\x00\x05\x00\x01\x02\x03\x04" "\x02\x03\x20\x02\x00" "ab"),
    /* a 20 KiB header value (over the hard header-list limit) */
    FUZZ_CASE("\x01\x00\x01\x05\x00\x01\x02\x03\xff\x00\xff"),
    /* a call whose deadline is already over */
    FUZZ_CASE("\x01\x00\x00\x07\x00\x01\x02\x03\x04\x05\x1c" "\x09"),
    /* a 5 s deadline on an open call, then 6 s pass */
    FUZZ_CASE("\x0a\x00\x03\x02\x00" "\x10\x01" "\x0b\x70\x17"),
    /* a server stream with 10 ms intervals, time passing, a stalled client */
    FUZZ_CASE("\x0a\x02\x00\x0e\x00" "\x12\x05\x08\x64\x10\x90\x4e\x12\x05\x08\x64\x10\x90\x4e"
              "\x0c" "\x0b\x64\x00" "\x0c" "\x0b\x64\x00"),
    /* a server stream then a reset */
    FUZZ_CASE("\x0a\x02\x02\x08\x00" "\x22\x02\x08\x05\x22\x02\x08\x05" "\x09" "\x03\x03\x08"),
);
