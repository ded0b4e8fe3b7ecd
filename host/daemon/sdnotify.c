/* sd_notify without libsystemd. See sdnotify.h. */
#define _GNU_SOURCE
#include "daemon/sdnotify.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static struct sockaddr_un addr;
static socklen_t addr_len; /* 0: no service manager listening */
static uint32_t watchdog_ms;

void sdnotify_init(void)
{
    const char *path = getenv("NOTIFY_SOCKET");
    size_t n = path ? strlen(path) : 0;
    if (n > 0 && n < sizeof addr.sun_path && (path[0] == '/' || path[0] == '@')) {
        addr.sun_family = AF_UNIX;
        memcpy(addr.sun_path, path, n);
        if (path[0] == '@') addr.sun_path[0] = '\0'; /* abstract namespace */
        addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    }
    const char *usec = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
    if (usec && (!pid || strtol(pid, NULL, 10) == (long)getpid())) {
        unsigned long long us = strtoull(usec, NULL, 10);
        if (us >= 2000) watchdog_ms = (uint32_t)(us / 2000 > UINT32_MAX ? UINT32_MAX : us / 2000);
    }
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
}

int sdnotify_send(const char *fmt, ...)
{
    if (!addr_len) return 0;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0) return -EINVAL;
    if ((size_t)n >= sizeof msg) n = sizeof msg - 1; /* a long STATUS is cut */
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    ssize_t sent = sendto(fd, msg, (size_t)n, MSG_NOSIGNAL, (struct sockaddr *)&addr, addr_len);
    int rc = sent == n ? 0 : -(sent < 0 ? errno : EMSGSIZE);
    close(fd);
    return rc;
}

int sdnotify_reloading(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    unsigned long long us = (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000;
    return sdnotify_send("RELOADING=1\nMONOTONIC_USEC=%llu", us);
}

uint32_t sdnotify_watchdog_interval_ms(void) { return watchdog_ms; }

bool sdnotify_active(void) { return addr_len != 0; }
