/* TLS for the data plane (OpenSSL 3): one server SSL_CTX with TLS 1.2
 * minimum, ALPN "h2" or "http/1.1" (a client offering neither fails the
 * handshake with no_application_protocol; one sending no ALPN is sniffed),
 * optional client-certificate
 * verification, and reload (SIGHUP) that swaps the context for new
 * connections only. */
#ifndef RPCHOST_HOST_TLS_H
#define RPCHOST_HOST_TLS_H

#include <openssl/ssl.h>
#include <stddef.h>

#include "config/config.h"

/* Builds the context from the settings' cert, key and client CA. On
 * failure logs one line (what, which file, OpenSSL's reason) and returns
 * a negative code. Nothing to do (returns 0) for plaintext. */
int tls_init(const rh_settings *s);
/* Re-reads the files named at tls_init; on failure keeps the old context
 * and logs why. */
int tls_reload(void);
void tls_free(void);
/* A new server-side SSL object from the current context, or NULL. */
SSL *tls_new_ssl(void);
/* The protocol ALPN agreed on. The server offers h2 and http/1.1 (h2
 * preferred); a client that sent no ALPN gets TLS_ALPN_NONE and its first
 * bytes decide. */
typedef enum tls_alpn { TLS_ALPN_NONE, TLS_ALPN_H2, TLS_ALPN_HTTP1 } tls_alpn;
tls_alpn tls_alpn_protocol(SSL *ssl);

/* Ciphertext the worker read from a socket, handed to OpenSSL through a
 * source BIO (tls_use_source): one read(2) per batch of records, and
 * no extra read that only returns EAGAIN. */
typedef struct tls_source {
    const uint8_t *p;
    size_t len;
} tls_source;

/* Switches ssl's read side to src (after the handshake; the write side
 * stays on the socket). 0 or -ENOMEM. */
int tls_use_source(SSL *ssl, tls_source *src);

/* The verified client certificate's subject ("/CN=.../O=...") and
 * subjectAltNames as text with a type prefix ("DNS:x", "IP:1.2.3.4",
 * "URI:spiffe://...", "email:a@b"). Both allocate with malloc; callers
 * free. Return NULL / 0 entries when there is no certificate. */
char *tls_peer_subject(SSL *ssl);
char **tls_peer_sans(SSL *ssl, size_t *count);

#endif
