/* One call from the command line (see invoke.h). */
#include "invoke.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json_pb.h"
#include "jsonin.h"
#include "statusdetail.h"

/* Stop reading input while this much is queued and not yet sent. */
#define INPUT_HIGH_WATER (1u << 20)

typedef struct invoke {
    const rpcall_opts *o;
    session *s;
    catalog *cat;
    const char *in_type, *out_type;
    bool client_stream, server_stream;
    unsigned json_flags;
    jsonin in;
    bool input_done;
    call c;
    bool local_error; /* the call was cancelled because of us */
    bool headers_shown;
    char local_err[700];
} invoke;

int invoke_open_input(const char *data, jsonin *in, char *err, size_t errlen)
{
    if (!data)
        return jsonin_init_text(in, "{}", 2, "default {}");
    if (strcmp(data, "@-") == 0)
        return jsonin_init_fd(in, 0, "stdin");
    if (data[0] == '@') {
        int fd = open(data + 1, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            int e = errno;
            snprintf(err, errlen, "cannot open request data file %s: %s", data + 1, strerror(e));
            return -e;
        }
        return jsonin_init_fd(in, fd, data + 1);
    }
    return jsonin_init_text(in, data, strlen(data), "-d");
}

void invoke_print_status(const descpool *pool, int status, const char *message,
                         const uint8_t *details, size_t details_len)
{
    fprintf(stderr, "ERROR: %s: %s\n", call_code_name(status), message ? message : "");
    if (details && details_len)
        statusdetail_print(stderr, pool, details, details_len, status, message ? message : "");
}

static void fail_local(invoke *v, const char *msg)
{
    if (v->local_error)
        return;
    v->local_error = true;
    snprintf(v->local_err, sizeof(v->local_err), "%s", msg);
    call_cancel(&v->c, 1, msg);
}

static void print_md(const char *title, const call_md *md, size_t n)
{
    fprintf(stderr, "%s:\n", title);
    if (n == 0)
        fprintf(stderr, "(empty)\n");
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, "%s: %s\n", md[i].name, md[i].value);
    fputc('\n', stderr);
}

static void on_headers(call *c, void *ud)
{
    invoke *v = ud;
    if (v->o->verbose)
        print_md("Response headers received", c->headers, c->n_headers);
    v->headers_shown = true;
}

static void on_message(call *c, const uint8_t *msg, size_t len, void *ud)
{
    invoke *v = ud;
    char *text = NULL;
    json_pb_error err = {{0}};
    int rc = json_pb_decode(v->cat->pool, v->out_type, msg, len, v->json_flags, &text, &err);
    if (rc < 0) {
        char m[600];
        snprintf(m, sizeof(m), "cannot decode response message %llu as %s: %s",
                 (unsigned long long)c->msgs_in, v->out_type,
                 err.text[0] ? err.text : strerror(-rc));
        free(text);
        fail_local(v, m);
        return;
    }
    if (fputs(text, stdout) < 0 || fputc('\n', stdout) < 0 || fflush(stdout) != 0) {
        char m[200];
        snprintf(m, sizeof(m), "cannot write to stdout: %s", strerror(errno));
        fail_local(v, m);
    }
    free(text);
}

/* Encodes and queues every complete object the input holds. At the end of
 * the input the call is half-closed. */
static void pump_input(invoke *v)
{
    while (!v->input_done && !v->c.done && call_pending(&v->c) < INPUT_HIGH_WATER) {
        const char *text;
        size_t len;
        char err[400];
        int rc = jsonin_next(&v->in, &text, &len, err, sizeof(err));
        if (rc < 0) {
            fail_local(v, err);
            return;
        }
        if (rc == 0) {
            if (v->in.eof) {
                v->input_done = true;
                call_half_close(&v->c);
            }
            return;
        }
        uint8_t *pb = NULL;
        size_t pb_len = 0;
        json_pb_error jerr = {{0}};
        rc = json_pb_encode(v->cat->pool, v->in_type, text, len, &pb, &pb_len, &jerr);
        if (rc < 0) {
            char m[600];
            snprintf(m, sizeof(m), "request message %zu (%s) is not a valid %s: %s",
                     v->in.count, v->in.name, v->in_type, jerr.text[0] ? jerr.text : strerror(-rc));
            free(pb);
            fail_local(v, m);
            return;
        }
        rc = call_send(&v->c, pb, pb_len);
        free(pb);
        if (rc < 0 && rc != -EPIPE) {
            fail_local(v, "out of memory queueing a request");
            return;
        }
    }
}

/* Unary and server-streaming methods take exactly one request: read all
 * of the input before the call starts. Returns 0 or -errno with err. */
static int read_whole_input(invoke *v, char *err, size_t errlen)
{
    while (!v->in.eof) {
        int left = session_ms_left(v->s);
        if (left == 0) {
            snprintf(err, errlen, "deadline exceeded (--max-time) while reading %s", v->in.name);
            return -ETIMEDOUT;
        }
        int rc = jsonin_fill(&v->in);
        if (rc == -EAGAIN) {
            struct pollfd p = {.fd = v->in.fd, .events = POLLIN};
            poll(&p, 1, left);
            continue;
        }
        if (rc < 0) {
            snprintf(err, errlen, "reading request data (%s): %s", v->in.name, strerror(-rc));
            return rc;
        }
    }
    return 0;
}

static void run_loop(invoke *v)
{
    while (!v->c.done) {
        if (!v->input_done)
            pump_input(v);
        if (h2c_flush(&v->s->h) < 0)
            break; /* calls were failed with the reason */
        if (v->c.done)
            break;
        int left = session_ms_left(v->s);
        if (left == 0) {
            call_cancel(&v->c, 4, "deadline exceeded (--max-time)");
            h2c_flush(&v->s->h);
            break;
        }
        int in_fd = !v->input_done && v->in.fd >= 0 && !v->in.eof &&
                            call_pending(&v->c) < INPUT_HIGH_WATER
                        ? v->in.fd : -1;
        short rev = 0;
        if (session_step(v->s, in_fd, &rev, left) < 0)
            break;
        if (in_fd >= 0 && rev) {
            int rc = jsonin_fill(&v->in);
            if (rc < 0 && rc != -EAGAIN) {
                char m[300];
                snprintf(m, sizeof(m), "reading request data (%s): %s", v->in.name,
                         strerror(-rc));
                fail_local(v, m);
            }
        }
    }
}

int invoke_run(const rpcall_opts *o, session *s, catalog *cat, const descpool_symbol *method)
{
    invoke v;
    memset(&v, 0, sizeof(v));
    v.o = o;
    v.s = s;
    v.cat = cat;
    const Google__Protobuf__MethodDescriptorProto *m = method->u.method;
    v.in_type = m->input_type[0] == '.' ? m->input_type + 1 : m->input_type;
    v.out_type = m->output_type[0] == '.' ? m->output_type + 1 : m->output_type;
    v.client_stream = m->client_streaming;
    v.server_stream = m->server_streaming;
    v.json_flags = (o->emit_defaults ? JSON_PB_EMIT_DEFAULTS : 0) |
                   (o->compact ? JSON_PB_COMPACT : 0);
    char err[600];
    int rc = invoke_open_input(o->data, &v.in, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "rpcall: %s\n", err);
        return EXIT_FAIL;
    }
    int exit_code = EXIT_FAIL;
    if (!v.client_stream) {
        rc = read_whole_input(&v, err, sizeof(err));
        if (rc == -ETIMEDOUT) {
            invoke_print_status(cat->pool, 4, err, NULL, 0);
            exit_code = EXIT_STATUS_BASE + 4;
            goto out;
        }
        if (rc < 0) {
            fprintf(stderr, "rpcall: %s\n", err);
            goto out;
        }
        const char *t1, *t2;
        size_t l1, l2;
        rc = jsonin_next(&v.in, &t1, &l1, err, sizeof(err));
        int rc2 = rc == 1 ? jsonin_next(&v.in, &t2, &l2, err, sizeof(err)) : 0;
        if (rc < 0 || rc2 < 0) {
            fprintf(stderr, "rpcall: %s\n", err);
            goto out;
        }
        if (rc == 0 || rc2 == 1) {
            fprintf(stderr, "rpcall: %s.%s takes exactly one request message; %s holds %s\n",
                    method->parent ? method->parent->full_name : "?", m->name, v.in.name,
                    rc == 0 ? "none" : "more than one");
            goto out;
        }
        /* Rewind: pump_input() encodes it like any streamed message. */
        v.in.pos = 0;
        v.in.depth = 0;
        v.in.count = 0;
    }
    char path[600];
    snprintf(path, sizeof(path), "/%s/%s", method->parent ? method->parent->full_name : "",
             m->name);
    int64_t timeout_ns = 0;
    if (o->max_time > 0) {
        int left = session_ms_left(s);
        timeout_ns = (int64_t)(left > 0 ? left : 1) * 1000000;
    }
    call_headers hd;
    call_encoding enc = {(grpc_codec_algo)o->compress, o->accept_encoding};
    s->h.codec.send = enc.send;
    rc = call_headers_build(&hd, s->scheme, s->authority, path, timeout_ns, o->headers,
                            o->n_headers, &enc, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "rpcall: %s\n", err);
        goto out;
    }
    call_cbs cbs = {.on_headers = on_headers, .on_message = on_message};
    call_start(&v.c, &s->h, &hd, o->max_msg_size, o->verbose, &cbs, &v);
    run_loop(&v);
    if (!v.c.done) /* the loop ended on a connection failure without closing */
        call_cancel(&v.c, 14, s->h.err[0] ? s->h.err : "connection lost");
    if (v.local_error) {
        fprintf(stderr, "rpcall: %s\n", v.local_err);
        exit_code = EXIT_FAIL;
    } else {
        if (o->verbose) {
            if (!v.headers_shown && v.c.got_headers) /* trailers-only response */
                print_md("Response headers received", NULL, 0);
            if (v.c.got_headers || v.c.n_trailers)
                print_md("Response trailers received", v.c.trailers, v.c.n_trailers);
            fprintf(stderr, "Sent %llu request%s and received %llu response%s\n",
                    (unsigned long long)v.c.msgs_out, v.c.msgs_out == 1 ? "" : "s",
                    (unsigned long long)v.c.msgs_in, v.c.msgs_in == 1 ? "" : "s");
            fprintf(stderr, "Request grpc-encoding: %s; response grpc-encoding: %s (%llu of "
                    "%llu messages compressed)\n",
                    grpc_codec_name((grpc_codec_algo)o->compress),
                    v.c.recv_enc_name[0] ? v.c.recv_enc_name : "identity",
                    (unsigned long long)v.c.msgs_in_compressed, (unsigned long long)v.c.msgs_in);
        }
        if (v.c.status == 0) {
            exit_code = EXIT_OK;
        } else {
            invoke_print_status(cat->pool, v.c.status, v.c.message, v.c.details,
                                v.c.details_len);
            exit_code = EXIT_STATUS_BASE + (v.c.status > 16 ? 2 : v.c.status);
        }
    }
    call_free(&v.c);
    call_headers_free(&hd);
out:
    int in_fd = v.in.fd;
    jsonin_free(&v.in); /* restores the fd's flags first */
    if (in_fd > 0)
        close(in_fd);
    return exit_code;
}
