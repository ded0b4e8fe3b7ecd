#include "transport/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

static pthread_mutex_t ctx_lock = PTHREAD_MUTEX_INITIALIZER;
static BIO_METHOD *source_method;
static SSL_CTX *cur_ctx;
static char *cert_file, *key_file, *client_ca;
/* With client_ca: verify a certificate the client presents, but admit clients
 * that present none (they authenticate otherwise, e.g. with a bearer token). */
static bool client_cert_optional;

/* HTTP/2 (RFC 9113 9.2.2) forbids TLS 1.2 cipher suites without
 * ephemeral key exchange and AEAD; TLS 1.3 suites are all fine. */
static const char tls12_ciphers[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

static const char *ssl_reason(void)
{
    static __thread char buf[256];
    unsigned long e = ERR_peek_last_error();
    if (!e) return "unknown error";
    ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    /* "error:0A000086:SSL routines::certificate verify failed": keep the
     * human part after the last ':' when there is one. */
    const char *p = strrchr(buf, ':');
    return p && p[1] ? p + 1 : buf;
}

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    /* Server preference: h2, then http/1.1 (browsers, curl, JSON clients).
     * A client offering neither is refused in the handshake. */
    static const unsigned char ours[] = "\x02h2\x08http/1.1";
    unsigned char *sel;
    unsigned char sel_len;
    if (SSL_select_next_proto(&sel, &sel_len, ours, sizeof ours - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    *out = sel;
    *outlen = sel_len;
    return SSL_TLSEXT_ERR_OK;
}

static SSL_CTX *build_ctx(void)
{
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        log_error("tls: cannot create a TLS context: %s", ssl_reason());
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    /* RELEASE_BUFFERS: an idle connection keeps no 16 KiB record buffers. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    /* Fewer read(2) calls: OpenSSL may read several records at once. */
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_cipher_list(ctx, tls12_ciphers);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    static const unsigned char sid_ctx[] = "rpchost";
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof sid_ctx - 1);

    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
        log_error("tls: cannot load certificate %s: %s; check the path and that it is PEM",
                  cert_file, ssl_reason());
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
        log_error("tls: cannot load private key %s: %s; check the path, its permissions "
                  "and that it is an unencrypted PEM key",
                  key_file, ssl_reason());
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        log_error("tls: private key %s does not match certificate %s", key_file, cert_file);
        ERR_clear_error();
        goto fail;
    }
    if (client_ca) {
        if (SSL_CTX_load_verify_locations(ctx, client_ca, NULL) != 1) {
            log_error("tls: cannot load client CA %s: %s", client_ca, ssl_reason());
            goto fail;
        }
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(client_ca);
        if (names) SSL_CTX_set_client_CA_list(ctx, names);
        SSL_CTX_set_verify(ctx, client_cert_optional ? SSL_VERIFY_PEER
                                    : SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                           NULL);
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

/* --- the source BIO ----------------------------------------------------- */

static int source_read(BIO *b, char *out, int len)
{
    tls_source *src = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (src->len == 0) {
        BIO_set_retry_read(b); /* -> SSL_ERROR_WANT_READ */
        return -1;
    }
    size_t n = src->len < (size_t)len ? src->len : (size_t)len;
    memcpy(out, src->p, n);
    src->p += n;
    src->len -= n;
    return (int)n;
}

static long source_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)num;
    (void)ptr;
    tls_source *src = BIO_get_data(b);
    switch (cmd) {
    case BIO_CTRL_PENDING: return (long)src->len;
    case BIO_CTRL_FLUSH: return 1;
    default: return 0;
    }
}

static int source_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

int tls_use_source(SSL *ssl, tls_source *src)
{
    BIO *b = BIO_new(source_method);
    if (!b) return -ENOMEM;
    BIO_set_data(b, src);
    SSL_set0_rbio(ssl, b); /* the socket BIO stays as wbio */
    return 0;
}

int tls_init(const rh_settings *s)
{
    if (s->plaintext) return 0;
    source_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "rpchost source");
    if (!source_method || !BIO_meth_set_read(source_method, source_read) ||
        !BIO_meth_set_ctrl(source_method, source_ctrl) ||
        !BIO_meth_set_create(source_method, source_create))
        return -ENOMEM;
    if (!s->cert_file || !s->key_file) {
        log_error("tls: no certificate: give --cert FILE --key FILE (or --plaintext for h2c)");
        return -EINVAL;
    }
    cert_file = strdup(s->cert_file);
    key_file = strdup(s->key_file);
    client_ca = s->client_ca ? strdup(s->client_ca) : NULL;
    client_cert_optional = s->client_cert_optional;
    if (!cert_file || !key_file || (s->client_ca && !client_ca)) return -ENOMEM;
    SSL_CTX *ctx = build_ctx();
    if (!ctx) return -EINVAL;
    cur_ctx = ctx;
    return 0;
}

int tls_reload(void)
{
    if (!cur_ctx) return 0;
    SSL_CTX *ctx = build_ctx();
    if (!ctx) {
        log_error("tls: reload failed; new connections keep the previous certificate");
        return -EINVAL;
    }
    pthread_mutex_lock(&ctx_lock);
    SSL_CTX *old = cur_ctx;
    cur_ctx = ctx;
    pthread_mutex_unlock(&ctx_lock);
    SSL_CTX_free(old); /* live connections hold their own reference */
    log_info("tls: reloaded certificate %s", cert_file);
    return 0;
}

void tls_free(void)
{
    BIO_meth_free(source_method);
    source_method = NULL;
    SSL_CTX_free(cur_ctx);
    cur_ctx = NULL;
    free(cert_file);
    free(key_file);
    free(client_ca);
    cert_file = key_file = client_ca = NULL;
}

SSL *tls_new_ssl(void)
{
    /* One uncontended lock per accepted connection, never per call. */
    pthread_mutex_lock(&ctx_lock);
    SSL *ssl = cur_ctx ? SSL_new(cur_ctx) : NULL;
    pthread_mutex_unlock(&ctx_lock);
    return ssl;
}

tls_alpn tls_alpn_protocol(SSL *ssl)
{
    const unsigned char *p;
    unsigned int len;
    SSL_get0_alpn_selected(ssl, &p, &len);
    if (len == 2 && memcmp(p, "h2", 2) == 0) return TLS_ALPN_H2;
    if (len == 8 && memcmp(p, "http/1.1", 8) == 0) return TLS_ALPN_HTTP1;
    return TLS_ALPN_NONE;
}

char *tls_peer_subject(SSL *ssl)
{
    X509 *cert = SSL_get0_peer_certificate(ssl);
    if (!cert) return NULL;
    char *line = X509_NAME_oneline(X509_get_subject_name(cert), NULL, 0);
    if (!line) return NULL;
    char *copy = strdup(line);
    OPENSSL_free(line);
    return copy;
}

static char *san_text(const GENERAL_NAME *gn)
{
    char buf[512];
    const char *prefix;
    const ASN1_STRING *s;
    switch (gn->type) {
    case GEN_DNS: prefix = "DNS:"; s = gn->d.dNSName; break;
    case GEN_URI: prefix = "URI:"; s = gn->d.uniformResourceIdentifier; break;
    case GEN_EMAIL: prefix = "email:"; s = gn->d.rfc822Name; break;
    case GEN_IPADD: {
        const ASN1_OCTET_STRING *ip = gn->d.iPAddress;
        char addr[INET6_ADDRSTRLEN];
        int af = ip->length == 4 ? AF_INET : ip->length == 16 ? AF_INET6 : -1;
        if (af < 0 || !inet_ntop(af, ip->data, addr, sizeof addr)) return NULL;
        snprintf(buf, sizeof buf, "IP:%s", addr);
        return strdup(buf);
    }
    default: return NULL;
    }
    int len = ASN1_STRING_length(s);
    if (len < 0 || (size_t)len + strlen(prefix) + 1 > sizeof buf) return NULL;
    snprintf(buf, sizeof buf, "%s%.*s", prefix, len, (const char *)ASN1_STRING_get0_data(s));
    if (strlen(buf) != strlen(prefix) + (size_t)len) return NULL; /* embedded NUL */
    return strdup(buf);
}

char **tls_peer_sans(SSL *ssl, size_t *count)
{
    *count = 0;
    X509 *cert = SSL_get0_peer_certificate(ssl);
    if (!cert) return NULL;
    GENERAL_NAMES *gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    if (!gens) return NULL;
    int n = sk_GENERAL_NAME_num(gens);
    char **v = calloc((size_t)n + 1, sizeof *v);
    size_t k = 0;
    for (int i = 0; v && i < n; i++) {
        char *t = san_text(sk_GENERAL_NAME_value(gens, i));
        if (t) v[k++] = t;
    }
    GENERAL_NAMES_free(gens);
    *count = k;
    return v;
}
