/* Client connections: address parsing, connect with a deadline, the TLS
 * handshake, and turning socket and OpenSSL failures into one line that
 * says what failed and what to do about it. */
#include "conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

int64_t conn_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t conn_now_ms(void) { return conn_now_ns() / 1000000; }

/* Milliseconds left before deadline for poll(): -1 = no deadline. */
static int ms_left(int64_t deadline_ms)
{
    if (deadline_ms <= 0)
        return -1;
    int64_t left = deadline_ms - conn_now_ms();
    if (left <= 0)
        return 0;
    return left > 600000 ? 600000 : (int)left;
}

int conn_parse_target(const char *address, conn_target *t, char *err, size_t errlen)
{
    memset(t, 0, sizeof(*t));
    if (!address || !*address) {
        snprintf(err, errlen, "no ADDRESS given; use HOST:PORT, [IPv6]:PORT or unix:PATH");
        return -EINVAL;
    }
    if (strncmp(address, "unix:", 5) == 0) {
        const char *path = address + 5;
        if (strncmp(path, "//", 2) == 0)
            path += 2; /* unix:///abs/path and unix://rel */
        if (!*path || strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
            snprintf(err, errlen, "bad Unix socket address '%s': use unix:/path/to/socket "
                     "(at most 107 bytes)", address);
            return -EINVAL;
        }
        t->is_unix = true;
        snprintf(t->host, sizeof(t->host), "%s", path);
        snprintf(t->authority, sizeof(t->authority), "localhost");
        return 0;
    }
    const char *host = address, *port;
    size_t hlen;
    if (address[0] == '[') {
        const char *end = strchr(address, ']');
        if (!end || end[1] != ':') {
            snprintf(err, errlen, "bad address '%s': an IPv6 address needs the form [ADDR]:PORT",
                     address);
            return -EINVAL;
        }
        host = address + 1;
        hlen = (size_t)(end - host);
        port = end + 2;
    } else {
        const char *colon = strrchr(address, ':');
        if (!colon) {
            snprintf(err, errlen, "address '%s' has no port; use HOST:PORT (e.g. localhost:8888)",
                     address);
            return -EINVAL;
        }
        if (memchr(address, ':', (size_t)(colon - address))) {
            snprintf(err, errlen, "bad address '%s': put an IPv6 address in brackets, "
                     "e.g. [::1]:8888", address);
            return -EINVAL;
        }
        hlen = (size_t)(colon - address);
        port = colon + 1;
    }
    size_t plen = strlen(port);
    if (hlen == 0 || hlen >= sizeof(t->host) || plen == 0 || plen >= sizeof(t->port) ||
        strspn(port, "0123456789") != plen || atoi(port) <= 0 || atoi(port) > 65535) {
        snprintf(err, errlen, "bad address '%s': use HOST:PORT with a port in 1..65535",
                 address);
        return -EINVAL;
    }
    memcpy(t->host, host, hlen);
    memcpy(t->port, port, plen);
    snprintf(t->authority, sizeof(t->authority), "%s", address);
    return 0;
}

/* ---- TLS context ------------------------------------------------------ */

static int verify_cb(int ok, X509_STORE_CTX *xs);

static void ssl_reason(char *buf, size_t len)
{
    unsigned long e = ERR_peek_last_error();
    if (!e) {
        snprintf(buf, len, "unknown error");
        return;
    }
    const char *r = ERR_reason_error_string(e);
    snprintf(buf, len, "%s", r ? r : "unknown error");
    ERR_clear_error();
}

int conn_tls_ctx_new(const conn_opts *o, SSL_CTX **out, char *err, size_t errlen)
{
    char why[256];
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        snprintf(err, errlen, "cannot create a TLS context (out of memory?)");
        return -ENOMEM;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* Pull whole socket buffers into OpenSSL: fewer recv() calls. */
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    static const unsigned char alpn[] = {2, 'h', '2'};
    SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn));
    if (o->insecure) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_cb);
        if (o->cacert) {
            if (SSL_CTX_load_verify_locations(ctx, o->cacert, NULL) != 1) {
                ssl_reason(why, sizeof(why));
                snprintf(err, errlen, "cannot load CA certificates from --cacert %s: %s; "
                         "it must be a readable PEM file", o->cacert, why);
                goto fail;
            }
        } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
            ssl_reason(why, sizeof(why));
            snprintf(err, errlen, "cannot load the system CA store: %s; pass --cacert FILE", why);
            goto fail;
        }
    }
    if (o->cert || o->key) {
        if (!o->cert || !o->key) {
            snprintf(err, errlen, "mTLS needs both --cert FILE and --key FILE");
            goto fail;
        }
        if (SSL_CTX_use_certificate_chain_file(ctx, o->cert) != 1) {
            ssl_reason(why, sizeof(why));
            snprintf(err, errlen, "cannot load client certificate --cert %s: %s", o->cert, why);
            goto fail;
        }
        if (SSL_CTX_use_PrivateKey_file(ctx, o->key, SSL_FILETYPE_PEM) != 1) {
            ssl_reason(why, sizeof(why));
            snprintf(err, errlen, "cannot load client key --key %s: %s", o->key, why);
            goto fail;
        }
        if (SSL_CTX_check_private_key(ctx) != 1) {
            ERR_clear_error();
            snprintf(err, errlen, "--key %s does not belong to --cert %s", o->key, o->cert);
            goto fail;
        }
    }
    *out = ctx;
    return 0;
fail:
    SSL_CTX_free(ctx);
    return -EINVAL;
}

/* ---- connect ---------------------------------------------------------- */

static int connect_one(const struct sockaddr *sa, socklen_t salen, int family,
                       int64_t deadline_ms, int *fd_out)
{
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, sa, salen) == 0)
        goto ok;
    if (errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        return -e;
    }
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int left = ms_left(deadline_ms);
        if (left == 0) {
            close(fd);
            return -ETIMEDOUT;
        }
        int n = poll(&p, 1, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            close(fd);
            return -e;
        }
        if (n == 0)
            continue; /* ms_left() reports the timeout */
        int soerr = 0;
        socklen_t l = sizeof(soerr);
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &l);
        if (soerr) {
            close(fd);
            return -soerr;
        }
        break;
    }
ok:
    if (family != AF_UNIX) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    *fd_out = fd;
    return 0;
}

static void connect_error(int rc, const conn_target *t, const char *what, int64_t start_ms,
                          char *err, size_t errlen)
{
    switch (-rc) {
    case ECONNREFUSED:
        snprintf(err, errlen, "cannot connect to %s%s: connection refused; is the server "
                 "running and listening there?", t->authority, what);
        break;
    case ENOENT:
        snprintf(err, errlen, "cannot connect to unix:%s: no such socket file; is the server "
                 "running and listening there?", t->host);
        break;
    case ETIMEDOUT:
        snprintf(err, errlen, "connecting to %s%s timed out after %.1fs; check the address "
                 "and firewall, or raise --connect-timeout", t->authority, what,
                 (double)(conn_now_ms() - start_ms) / 1000.0);
        break;
    case ENETUNREACH:
    case EHOSTUNREACH:
        snprintf(err, errlen, "cannot connect to %s%s: %s; check the address",
                 t->authority, what, strerror(-rc));
        break;
    default:
        snprintf(err, errlen, "cannot connect to %s%s: %s", t->authority, what, strerror(-rc));
    }
}

static int tcp_connect(const conn_target *t, int64_t deadline_ms, int *fd, char *peer,
                       size_t peerlen, char *err, size_t errlen)
{
    int64_t start = conn_now_ms();
    if (t->is_unix) {
        struct sockaddr_un sun = {.sun_family = AF_UNIX};
        size_t plen = strnlen(t->host, sizeof(sun.sun_path) - 1);
        memcpy(sun.sun_path, t->host, plen); /* length checked when parsed */
        snprintf(peer, peerlen, "unix:%s", t->host);
        int rc = connect_one((struct sockaddr *)&sun, sizeof(sun), AF_UNIX, deadline_ms, fd);
        if (rc < 0)
            connect_error(rc, t, "", start, err, errlen);
        return rc;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_ADDRCONFIG}, *res = NULL;
    int g = getaddrinfo(t->host, t->port, &hints, &res);
    if (g == EAI_NONAME || g == EAI_BADFLAGS) {
        /* AI_ADDRCONFIG hides ::1 and 127.0.0.1 on hosts with only loopback. */
        hints.ai_flags = 0;
        g = getaddrinfo(t->host, t->port, &hints, &res);
    }
    if (g != 0) {
        snprintf(err, errlen, "cannot resolve host '%s': %s; check the ADDRESS", t->host,
                 g == EAI_SYSTEM ? strerror(errno) : gai_strerror(g));
        return -EHOSTUNREACH;
    }
    int rc = -ECONNREFUSED;
    char what[80] = "";
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        char ip[INET6_ADDRSTRLEN] = "?";
        const void *a = ai->ai_family == AF_INET6
                            ? (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr
                            : (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr;
        inet_ntop(ai->ai_family, a, ip, sizeof(ip));
        rc = connect_one(ai->ai_addr, ai->ai_addrlen, ai->ai_family, deadline_ms, fd);
        if (strcmp(ip, t->host) != 0)
            snprintf(what, sizeof(what), " (%s)", ip);
        if (rc == 0) {
            snprintf(peer, peerlen, "%s%s", t->authority, what);
            break;
        }
        if (rc == -ETIMEDOUT)
            break; /* the deadline covers every address */
    }
    freeaddrinfo(res);
    if (rc < 0)
        connect_error(rc, t, what, start, err, errlen);
    return rc;
}

/* ---- TLS handshake ---------------------------------------------------- */

static bool is_ip_literal(const char *s)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* The names a certificate holds (SANs), for the name-mismatch message. */
static void cert_names(X509 *cert, char *out, size_t len)
{
    out[0] = 0;
    if (!cert)
        return;
    GENERAL_NAMES *sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    size_t used = 0;
    for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans) && used + 2 < len; i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
        char one[INET6_ADDRSTRLEN + 8] = "";
        if (gn->type == GEN_DNS) {
            const unsigned char *d = ASN1_STRING_get0_data(gn->d.dNSName);
            snprintf(one, sizeof(one), "%.*s", ASN1_STRING_length(gn->d.dNSName) > 40 ? 40
                     : ASN1_STRING_length(gn->d.dNSName), (const char *)d);
        } else if (gn->type == GEN_IPADD) {
            int l = ASN1_STRING_length(gn->d.iPAddress);
            const unsigned char *d = ASN1_STRING_get0_data(gn->d.iPAddress);
            if (l == 4 || l == 16)
                inet_ntop(l == 4 ? AF_INET : AF_INET6, d, one, sizeof(one));
        }
        if (one[0])
            used += (size_t)snprintf(out + used, len - used, "%s%s", used ? ", " : "", one);
    }
    GENERAL_NAMES_free(sans);
}

/* OpenSSL keeps no peer certificate when verification fails: note what
 * the message needs while the chain is at hand. */
static int verify_cb(int ok, X509_STORE_CTX *xs)
{
    if (ok)
        return ok;
    SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
    conn *c = ssl ? SSL_get_app_data(ssl) : NULL;
    X509 *leaf = X509_STORE_CTX_get0_cert(xs);
    if (c && leaf && !c->bad_issuer[0]) {
        X509_NAME_oneline(X509_get_issuer_name(leaf), c->bad_issuer, sizeof(c->bad_issuer));
        cert_names(leaf, c->bad_names, sizeof(c->bad_names));
    }
    return ok;
}

static void verify_error(SSL *ssl, const conn_target *t, const char *name, char *err,
                         size_t errlen)
{
    long v = SSL_get_verify_result(ssl);
    conn *c = SSL_get_app_data(ssl);
    switch (v) {
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
        snprintf(err, errlen, "TLS: the certificate of %s does not match the name '%s' "
                 "(it is for: %s); connect by one of those names or pass --servername NAME",
                 t->authority, name, c && c->bad_names[0] ? c->bad_names : "no subjectAltName");
        return;
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_CERT_UNTRUSTED:
        snprintf(err, errlen, "TLS: the certificate of %s is not trusted (%s; issuer %s); "
                 "pass --cacert FILE with the CA that signed it, or --insecure to skip "
                 "verification", t->authority, X509_verify_cert_error_string(v),
                 c && c->bad_issuer[0] ? c->bad_issuer : "unknown");
        return;
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CERT_NOT_YET_VALID:
        snprintf(err, errlen, "TLS: the certificate of %s is not valid now (%s); renew it on "
                 "the server or check this machine's clock", t->authority,
                 X509_verify_cert_error_string(v));
        return;
    default:
        snprintf(err, errlen, "TLS: the certificate of %s failed verification: %s; pass "
                 "--cacert FILE, or --insecure to skip verification", t->authority,
                 X509_verify_cert_error_string(v));
    }
}

/* Explains an OpenSSL failure (handshake or later read) in one line. */
static void tls_error(SSL *ssl, int sslerr, const conn_target *t, const conn_opts *o,
                      const char *when, char *err, size_t errlen)
{
    unsigned long e = ERR_peek_last_error();
    int reason = ERR_GET_REASON(e);
    const char *rs = e ? ERR_reason_error_string(e) : NULL;
    ERR_clear_error();
    if (sslerr == SSL_ERROR_SYSCALL || sslerr == SSL_ERROR_ZERO_RETURN ||
        reason == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        snprintf(err, errlen, "TLS: %s closed the connection %s; it may not speak TLS "
                 "(try --plaintext) or may require a client certificate (--cert/--key)",
                 t->authority, when);
        return;
    }
    switch (reason) {
    case SSL_R_CERTIFICATE_VERIFY_FAILED:
        verify_error(ssl, t, o->servername ? o->servername : t->host, err, errlen);
        return;
    case SSL_R_WRONG_VERSION_NUMBER:
    case SSL_R_PACKET_LENGTH_TOO_LONG:
    case SSL_R_HTTP_REQUEST:
        snprintf(err, errlen, "TLS: %s did not answer with TLS (%s); if it is a plaintext "
                 "h2c server, use --plaintext", t->authority, rs ? rs : "bad record");
        return;
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
        snprintf(err, errlen, "TLS: %s requires a client certificate; pass --cert FILE "
                 "--key FILE", t->authority);
        return;
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
        if (o->cert)
            snprintf(err, errlen, "TLS: %s rejected the client certificate %s (%s); use "
                     "one signed by a CA the server trusts", t->authority, o->cert, rs);
        else
            snprintf(err, errlen, "TLS: %s refused the connection (%s); it may require a "
                     "client certificate (--cert/--key)", t->authority, rs);
        return;
    case SSL_R_TLSV1_ALERT_NO_APPLICATION_PROTOCOL:
        snprintf(err, errlen, "TLS: %s does not offer HTTP/2 (ALPN h2 refused); it is not a "
                 "gRPC server on this port", t->authority);
        return;
    default:
        snprintf(err, errlen, "TLS %s with %s failed: %s", when[0] == 'd' ? "handshake" : "read",
                 t->authority, rs ? rs : "unknown error");
    }
}

static int tls_handshake(conn *c, const conn_opts *o, const conn_target *t, SSL_CTX *ctx,
                         int64_t deadline_ms, char *err, size_t errlen)
{
    int64_t start = conn_now_ms();
    c->ssl = SSL_new(ctx);
    if (!c->ssl) {
        snprintf(err, errlen, "cannot create a TLS session (out of memory?)");
        return -ENOMEM;
    }
    SSL_set_fd(c->ssl, c->fd);
    SSL_set_app_data(c->ssl, c);
    const char *name = o->servername ? o->servername : (t->is_unix ? "localhost" : t->host);
    if (!is_ip_literal(name))
        SSL_set_tlsext_host_name(c->ssl, name);
    if (!o->insecure) {
        X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);
        X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if (is_ip_literal(name))
            X509_VERIFY_PARAM_set1_ip_asc(vp, name);
        else
            X509_VERIFY_PARAM_set1_host(vp, name, 0);
    }
    for (;;) {
        ERR_clear_error();
        int r = SSL_connect(c->ssl);
        if (r == 1)
            break;
        int e = SSL_get_error(c->ssl, r);
        short ev;
        if (e == SSL_ERROR_WANT_READ)
            ev = POLLIN;
        else if (e == SSL_ERROR_WANT_WRITE)
            ev = POLLOUT;
        else {
            tls_error(c->ssl, e, t, o, "during the handshake", err, errlen);
            return -EPROTO;
        }
        int left = ms_left(deadline_ms);
        if (left == 0) {
            snprintf(err, errlen, "TLS handshake with %s timed out after %.1fs; is it a TLS "
                     "server (else --plaintext)? or raise --connect-timeout", t->authority,
                     (double)(conn_now_ms() - start) / 1000.0);
            return -ETIMEDOUT;
        }
        struct pollfd p = {.fd = c->fd, .events = ev};
        if (poll(&p, 1, left) < 0 && errno != EINTR) {
            snprintf(err, errlen, "poll: %s", strerror(errno));
            return -errno;
        }
    }
    const unsigned char *proto = NULL;
    unsigned int plen = 0;
    SSL_get0_alpn_selected(c->ssl, &proto, &plen);
    if (plen != 2 || memcmp(proto, "h2", 2) != 0) {
        snprintf(err, errlen, "TLS: %s did not agree to HTTP/2 (ALPN %s%.*s%s); gRPC needs h2: "
                 "it is not a gRPC server, or a proxy in between does not pass h2",
                 t->authority, plen ? "chose '" : "none", (int)plen, proto ? (const char *)proto : "",
                 plen ? "'" : "");
        return -EPROTO;
    }
    return 0;
}

int conn_open(conn *c, const conn_opts *o, const conn_target *t, SSL_CTX *ctx,
              int64_t deadline_ms, char *err, size_t errlen)
{
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    c->opts = o;
    int rc = tcp_connect(t, deadline_ms, &c->fd, c->peer, sizeof(c->peer), err, errlen);
    if (rc < 0)
        return rc;
    if (ctx) {
        rc = tls_handshake(c, o, t, ctx, deadline_ms, err, errlen);
        if (rc < 0) {
            conn_close(c);
            return rc;
        }
    }
    return 0;
}

/* The target as conn_open saw it, rebuilt for messages at read time. */
static conn_target peer_target(const conn *c)
{
    conn_target t;
    memset(&t, 0, sizeof(t));
    snprintf(t.authority, sizeof(t.authority), "%s", c->peer);
    snprintf(t.host, sizeof(t.host), "%.*s", (int)sizeof(t.host) - 1, c->peer);
    return t;
}

ssize_t conn_read(conn *c, void *buf, size_t len)
{
    if (!c->ssl) {
        ssize_t n = read(c->fd, buf, len);
        if (n >= 0)
            return n;
        if (errno == EAGAIN || errno == EINTR)
            return -EAGAIN;
        int e = errno;
        snprintf(c->err, sizeof(c->err), "reading from %s: %s", c->peer, strerror(e));
        return -e;
    }
    ERR_clear_error();
    c->read_want_write = false;
    int n = SSL_read(c->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
    if (n > 0)
        return n;
    int e = SSL_get_error(c->ssl, n);
    if (e == SSL_ERROR_WANT_READ)
        return -EAGAIN;
    if (e == SSL_ERROR_WANT_WRITE) {
        c->read_want_write = true;
        return -EAGAIN;
    }
    if (e == SSL_ERROR_ZERO_RETURN)
        return 0;
    if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
        if (n == 0)
            return 0; /* EOF without close_notify: treat as a close */
        int er = errno;
        snprintf(c->err, sizeof(c->err), "reading from %s: %s", c->peer, strerror(er));
        return -er;
    }
    conn_target t = peer_target(c);
    tls_error(c->ssl, e, &t, c->opts, "after the handshake", c->err, sizeof(c->err));
    return -EPROTO;
}

ssize_t conn_write(conn *c, const void *buf, size_t len)
{
    if (!c->ssl) {
        ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);
        if (n >= 0)
            return n;
        if (errno == EAGAIN || errno == EINTR)
            return -EAGAIN;
        int e = errno;
        snprintf(c->err, sizeof(c->err), "writing to %s: %s", c->peer,
                 e == EPIPE || e == ECONNRESET ? "the server closed the connection"
                                               : strerror(e));
        return -e;
    }
    ERR_clear_error();
    int n = SSL_write(c->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
    if (n > 0)
        return n;
    int e = SSL_get_error(c->ssl, n);
    if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ)
        return -EAGAIN;
    if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
        int er = errno ? errno : EPIPE;
        snprintf(c->err, sizeof(c->err), "writing to %s: %s", c->peer,
                 er == EPIPE || er == ECONNRESET ? "the server closed the connection"
                                                 : strerror(er));
        return -er;
    }
    conn_target t = peer_target(c);
    tls_error(c->ssl, e, &t, c->opts, "after the handshake", c->err, sizeof(c->err));
    return -EPROTO;
}

void conn_close(conn *c)
{
    if (c->ssl) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
}
