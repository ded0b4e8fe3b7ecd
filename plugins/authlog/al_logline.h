/* Access log lines: one per finished call, as text or as a JSON object,
 * always ending in '\n' and never longer than AL_LINE_MAX (long fields are
 * cut with "..."). Pure formatting; no I/O. Owner: al_logline.c.
 *
 * text: 2024-05-01T12:34:56.123456Z /Rides/Start took 0.000412sec status=OK
 *       peer=ipv4:127.0.0.1:40000 principal=alice in=57 out=39
 *       [in_uncompressed=N out_uncompressed=N] [message="..."]  (one line)
 * json: {"time":"2024-05-01T12:34:56.123456Z","method":"/Rides/Start",
 *        "status":"OK","code":0,"duration":0.000412,"duration_ns":412345,
 *        "peer":"ipv4:127.0.0.1:40000","principal":"alice","bytes_in":57,
 *        "bytes_out":39,"bytes_in_uncompressed":57,"bytes_out_uncompressed":39,
 *        "messages_in":1,"messages_out":1,"message":""}
 *
 * bytes_in / bytes_out are as on the wire (compressed messages
 * compressed); the _uncompressed counts are the messages' own sizes. The
 * text line shows those only when something was compressed.
 */
#ifndef AUTHLOG_AL_LOGLINE_H
#define AUTHLOG_AL_LOGLINE_H

#include <stddef.h>
#include <stdint.h>

#define AL_LINE_MAX 4096
#define AL_FIELD_MAX 900 /* output bytes per variable field (4 fit a line) */

typedef enum al_log_format { AL_FMT_TEXT = 0, AL_FMT_JSON = 1 } al_log_format;

typedef struct al_logrec {
    int64_t time_sec; /* wall clock (UTC) of the end of the call */
    uint32_t time_usec;
    const char *method;
    const char *peer;      /* NULL: "-" / null */
    const char *principal; /* NULL: "-" / null */
    const char *message;   /* grpc-message; NULL or "" if none */
    const char *protocol;  /* "grpc-web", "connect", "http-json"; NULL or "grpc" for gRPC */
    int status;
    uint64_t duration_ns;
    uint64_t bytes_in, bytes_out, messages_in, messages_out;
    uint64_t bytes_in_uncompressed, bytes_out_uncompressed;
} al_logrec;

/* Per-thread cache of the formatted date and time of one second. */
typedef struct al_timecache {
    int64_t sec;
    char text[24]; /* "YYYY-MM-DDTHH:MM:SS" */
} al_timecache;

/* Parses "text" | "json"; -1 if neither. */
int al_log_format_parse(const char *s);

/* "OK", "CANCELLED", ... "UNAUTHENTICATED"; "UNKNOWN_CODE" outside 0-16. */
const char *al_status_name(int code);

/* Formats r into buf (cap >= AL_LINE_MAX); returns the length, '\n'
 * included. tc may be NULL. */
size_t al_logline_format(char *buf, size_t cap, al_log_format fmt,
                         const al_logrec *r, al_timecache *tc);

#endif
