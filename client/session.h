/* One rpcall session: the connection to ADDRESS, its HTTP/2 session and
 * the event loop that drives them, shared by reflection, the call itself,
 * and each bench connection. */
#ifndef RPCALL_SESSION_H
#define RPCALL_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "call.h"
#include "conn.h"
#include "h2client.h"

typedef struct session {
    const conn_opts *opts;
    conn_target target;
    SSL_CTX *ctx;      /* borrowed when shared (bench), else owned */
    bool own_ctx;
    conn c;
    h2c h;
    bool open;
    const char *scheme;
    const char *authority; /* --authority or the ADDRESS */
    int64_t deadline_ms;   /* --max-time for everything (0: none) */
    char err[600];
} session;

/* Parses the address and builds the TLS context (once per run). */
int session_prepare(session *s, const conn_opts *o, const char *authority, char *err,
                    size_t errlen);
/* A session for another connection to the same target, sharing the
 * prepared one's TLS context (bench: one per connection). */
void session_init_shared(session *s, const session *proto);
/* Connects (TLS handshake, HTTP/2 preface) before connect_deadline_ms. */
int session_connect(session *s, int64_t connect_deadline_ms, char *err, size_t errlen);

/* One turn of the loop: waits up to timeout_ms (-1: forever) for the
 * socket or extra_fd (ignored when < 0; its revents go to *extra_revents),
 * then runs the session. Returns 0 or -errno when the connection is lost
 * (every open call is closed by then). */
int session_step(session *s, int extra_fd, short *extra_revents, int timeout_ms);

/* The same, reading only: the caller flushes (h2c_flush) after it has
 * submitted what the responses made possible. */
int session_step_read(session *s, int timeout_ms);

/* Runs the loop until the call is done. When s->deadline_ms passes first,
 * the call is cancelled with DEADLINE_EXCEEDED. */
void session_wait(session *s, call *c);

/* Sends GOAWAY, closes the connection and frees everything. */
void session_close(session *s);

/* Time left until s->deadline_ms, for poll() (-1: no deadline). */
int session_ms_left(const session *s);

#endif
