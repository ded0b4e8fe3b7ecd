/* Socket activation without libsystemd. See listenfds.h. */
#define _GNU_SOURCE
#include "daemon/listenfds.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int check_socket(int fd, bool *is_unix, char *err, size_t errlen)
{
    int type = 0, listening = 0;
    socklen_t len = sizeof type;
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof ss;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &sslen) < 0) {
        snprintf(err, errlen, "passed fd %d is not a socket: %s", fd, strerror(errno));
        return -1;
    }
    len = sizeof listening;
    if (type != SOCK_STREAM ||
        getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0 || !listening) {
        snprintf(err, errlen, "passed fd %d is not a listening stream socket", fd);
        return -1;
    }
    if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6 && ss.ss_family != AF_UNIX) {
        snprintf(err, errlen, "passed fd %d has address family %d (IPv4, IPv6 or Unix only)", fd,
                 ss.ss_family);
        return -1;
    }
    *is_unix = ss.ss_family == AF_UNIX;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
        snprintf(err, errlen, "passed fd %d: %s", fd, strerror(errno));
        return -1;
    }
    return 0;
}

int listenfds_take(int *fds, bool *is_unix, size_t max, char *err, size_t errlen)
{
    const char *pid = getenv("LISTEN_PID"), *n = getenv("LISTEN_FDS");
    int count = 0;
    if (pid && n && strtol(pid, NULL, 10) == (long)getpid()) {
        char *end;
        long v = strtol(n, &end, 10);
        if (*end || v < 0 || (size_t)v > max) {
            snprintf(err, errlen, "LISTEN_FDS='%s': expected 0-%zu sockets", n, max);
            return -1;
        }
        count = (int)v;
    }
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    for (int i = 0; i < count; i++) {
        fds[i] = LISTENFDS_START + i;
        if (check_socket(fds[i], &is_unix[i], err, errlen) < 0) return -1;
    }
    return count;
}

void listenfds_describe(const int *fds, size_t n, char *out, size_t outlen)
{
    size_t off = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && off < outlen; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        char host[INET6_ADDRSTRLEN] = "?";
        int k;
        if (getsockname(fds[i], (struct sockaddr *)&ss, &len) < 0) continue;
        const char *sep = off ? ", " : "";
        if (ss.ss_family == AF_UNIX) {
            const struct sockaddr_un *sun = (const struct sockaddr_un *)&ss;
            k = snprintf(out + off, outlen - off, "%sunix:%s", sep, sun->sun_path);
        } else if (ss.ss_family == AF_INET6) {
            const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
            k = snprintf(out + off, outlen - off, "%s[%s]:%u", sep, host, ntohs(a->sin6_port));
        } else {
            const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
            k = snprintf(out + off, outlen - off, "%s%s:%u", sep, host, ntohs(a->sin_port));
        }
        if (k < 0) break;
        off += (size_t)k;
    }
}
