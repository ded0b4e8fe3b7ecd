/* The access log sink (see al_sink.h). */
#include "al_sink.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int open_path(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "cannot open access log %s: %s", path, strerror(e));
        return -e;
    }
    return fd;
}

int al_sink_open(al_sink *s, const char *path, char *err, size_t errlen)
{
    s->fd = 2;
    s->owned = false;
    s->path = NULL;
    if (!path)
        return 0;
    char *copy = strdup(path);
    if (!copy)
        return -ENOMEM;
    int fd = open_path(path, err, errlen);
    if (fd < 0) {
        free(copy);
        return fd;
    }
    s->fd = fd;
    s->owned = true;
    s->path = copy;
    return 0;
}

int al_sink_reopen(al_sink *s, const char *path, char *err, size_t errlen)
{
    al_sink n;
    int rc = al_sink_open(&n, path, err, errlen);
    if (rc)
        return rc;
    al_sink_close(s);
    *s = n;
    return 0;
}

int al_sink_writev(al_sink *s, struct iovec *iov, int iovcnt)
{
    while (iovcnt > 0) {
        ssize_t w = writev(s->fd, iov, iovcnt);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (w == 0)
            return -EIO;
        size_t left = (size_t)w;
        while (iovcnt > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            iov++;
            iovcnt--;
        }
        if (iovcnt > 0) {
            iov->iov_base = (char *)iov->iov_base + left;
            iov->iov_len -= left;
        }
    }
    return 0;
}

void al_sink_close(al_sink *s)
{
    if (s->owned && s->fd >= 0)
        close(s->fd);
    free(s->path);
    s->fd = -1;
    s->owned = false;
    s->path = NULL;
}

const char *al_sink_name(const al_sink *s)
{
    return s->path ? s->path : "stderr";
}
