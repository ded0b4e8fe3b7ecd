/* A client connection to a gRPC server: TCP (IPv4/IPv6) or a Unix socket,
 * TLS with ALPN h2 (OpenSSL 3) or plaintext h2c with prior knowledge.
 *
 * conn_open() connects and handshakes blocking-with-deadline, then leaves
 * the socket non-blocking for the HTTP/2 layer. Every failure leaves one
 * line in the caller's buffer that says what failed and how to fix it. */
#ifndef RPCALL_CONN_H
#define RPCALL_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <openssl/ssl.h>

typedef struct conn_opts {
    const char *address;    /* host:port, [v6]:port, unix:/path */
    bool plaintext;         /* h2c prior knowledge, no TLS */
    bool insecure;          /* TLS without certificate verification */
    const char *cacert;     /* PEM CA bundle; default: system store */
    const char *cert, *key; /* client certificate (mTLS) */
    const char *servername; /* SNI and the name verified; default: host */
} conn_opts;

/* A parsed ADDRESS. */
typedef struct conn_target {
    bool is_unix;
    char host[256]; /* host name or IP literal without brackets; unix path */
    char port[16];
    char authority[300]; /* :authority to send */
} conn_target;

typedef struct conn {
    int fd;
    SSL *ssl;             /* NULL for plaintext */
    bool want_write;      /* an SSL_read is waiting for the socket to be writable */
    bool read_want_write; /* the last SSL_read asked for POLLOUT */
    char peer[300];       /* what we connected to, for messages */
    char err[512];        /* last I/O error (conn_read/conn_write) */
    char bad_issuer[160]; /* the certificate that failed verification: */
    char bad_names[256];  /*   its issuer and subjectAltNames */
    const conn_opts *opts;
} conn;

/* Parses ADDRESS; returns 0 or -EINVAL with a message in err. */
int conn_parse_target(const char *address, conn_target *t, char *err, size_t errlen);

/* Builds the TLS context shared by every connection of a run (CA, client
 * certificate, ALPN). Returns 0 or -errno with a message in err. */
int conn_tls_ctx_new(const conn_opts *o, SSL_CTX **out, char *err, size_t errlen);

/* Connects and (unless plaintext) completes the TLS handshake before
 * deadline_ms (monotonic ms; <= 0: none). ctx is NULL for plaintext.
 * Returns 0 or -errno with one line in err. */
int conn_open(conn *c, const conn_opts *o, const conn_target *t, SSL_CTX *ctx,
              int64_t deadline_ms, char *err, size_t errlen);

/* Non-blocking I/O. Return bytes (> 0), 0 on orderly close (read only),
 * -EAGAIN when the socket is not ready, or another -errno with c->err set. */
ssize_t conn_read(conn *c, void *buf, size_t len);
ssize_t conn_write(conn *c, const void *buf, size_t len);

void conn_close(conn *c);

/* Monotonic clock in ms and ns. */
int64_t conn_now_ms(void);
int64_t conn_now_ns(void);

#endif
