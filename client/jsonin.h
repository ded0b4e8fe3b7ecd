/* Request input: a sequence of JSON objects ("{...} {...}", any whitespace
 * or none between them) from -d text, a file, or a pipe, split into one
 * object at a time as soon as its closing brace arrives, so a pipe drives
 * a live stream. Only the splitting happens here (strings, escapes and
 * nesting are tracked); each object's text is then encoded by json_pb. */
#ifndef RPCALL_JSONIN_H
#define RPCALL_JSONIN_H

#include <stdbool.h>
#include <stddef.h>

typedef struct jsonin {
    int fd;            /* -1 for in-memory text */
    bool eof;          /* no more bytes will come */
    char *buf;
    size_t len, cap;
    size_t pos;        /* next byte to scan */
    size_t start;      /* start of the object being scanned */
    int depth;         /* 0: between objects */
    bool in_str, esc;
    size_t count;      /* objects returned so far */
    size_t consumed;   /* bytes before buf[0], for positions in messages */
    const char *name;  /* "-d", "stdin", the file name */
    int saved_flags;   /* the fd's file status flags to restore, or -1 */
} jsonin;

/* Input from memory (the text is copied). */
int jsonin_init_text(jsonin *j, const char *text, size_t len, const char *name);
/* Input from a file descriptor (made non-blocking if it is a pipe or a
 * terminal; jsonin_free restores its flags, since a shared stdin left
 * non-blocking would break the shell that started us). */
int jsonin_init_fd(jsonin *j, int fd, const char *name);
void jsonin_free(jsonin *j);

/* Reads what is available: > 0 bytes read, 0 at end of input (j->eof),
 * -EAGAIN when a pipe has nothing yet, another -errno on failure. */
int jsonin_fill(jsonin *j);

/* The next complete object: 1 with *text and *len pointing into the buffer
 * (valid until the next jsonin call), 0 when more input is needed (or, at
 * eof, when the input is done), -EINVAL on bad input with err set. */
int jsonin_next(jsonin *j, const char **text, size_t *len, char *err, size_t errlen);

#endif
