/* Where access log lines go: a file opened for appending, or stderr.
 * Used only by the flusher thread (and init/fini). Owner: al_sink.c. */
#ifndef AUTHLOG_AL_SINK_H
#define AUTHLOG_AL_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/uio.h>

typedef struct al_sink {
    int fd;
    bool owned;  /* false for stderr */
    char *path;  /* NULL for stderr */
} al_sink;

/* Opens path for appending (created 0640), or stderr if path is NULL.
 * 0 or -errno with err filled. */
int al_sink_open(al_sink *s, const char *path, char *err, size_t errlen);
/* Opens path anew and swaps it in (log rotation: the old name may have
 * been renamed away); on failure the old file stays in use. */
int al_sink_reopen(al_sink *s, const char *path, char *err, size_t errlen);
/* Writes all iov bytes (retrying partial writes). 0 or -errno. */
int al_sink_writev(al_sink *s, struct iovec *iov, int iovcnt);
void al_sink_close(al_sink *s);
/* "stderr" or the path. */
const char *al_sink_name(const al_sink *s);

#endif
