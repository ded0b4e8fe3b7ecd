/* Request validation: see validate.h. */
#include "validate.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* google.protobuf.Timestamp: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z */
#define TS_MIN_SECONDS INT64_C(-62135596800)
#define TS_MAX_SECONDS INT64_C(253402300799)

static int fail(char *msg, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *msg, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, len, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

int validate_utf8(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t need;
        unsigned min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            need = 1, min = 0x80, c &= 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            need = 2, min = 0x800, c &= 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            need = 3, min = 0x10000, c &= 0x07;
        } else {
            return 0;
        }
        if (n - i - 1 < need)
            return 0;
        for (size_t k = 1; k <= need; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            c = (c << 6) | (s[i + k] & 0x3f);
        }
        if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
            return 0;
        i += need + 1;
    }
    return 1;
}

/* A required, non-empty UTF-8 string field. */
static int check_text(const char *s, const char *field, char *msg, size_t len)
{
    if (s == NULL || s[0] == '\0')
        return fail(msg, len, "%s is empty", field);
    if (!validate_utf8(s, strlen(s)))
        return fail(msg, len, "%s is not valid UTF-8", field);
    return 0;
}

static int check_coord(double v, double limit, const char *field, const char *axis,
                       char *msg, size_t len)
{
    if (!isfinite(v))
        return fail(msg, len, "%s.%s is not a finite number (%g)", field, axis, v);
    if (v < -limit || v > limit)
        return fail(msg, len, "%s.%s is %.7g, outside [%g, %g]", field, axis, v,
                    -limit, limit);
    return 0;
}

int validate_location(const Location *loc, const char *field, char *msg, size_t len)
{
    if (loc == NULL)
        return 0;
    int rc = check_coord(loc->lat, 90.0, field, "lat", msg, len);
    if (rc == 0)
        rc = check_coord(loc->lng, 180.0, field, "lng", msg, len);
    return rc;
}

int validate_timestamp(const Google__Protobuf__Timestamp *ts, const char *field,
                       char *msg, size_t len)
{
    if (ts == NULL)
        return 0;
    if (ts->nanos < 0 || ts->nanos > 999999999)
        return fail(msg, len, "%s.nanos is %" PRId32 ", outside [0, 999999999]", field,
                    ts->nanos);
    if (ts->seconds < TS_MIN_SECONDS || ts->seconds > TS_MAX_SECONDS)
        return fail(msg, len,
                    "%s.seconds is %" PRId64 ", outside years 0001 to 9999", field,
                    ts->seconds);
    return 0;
}

int validate_start(const StartRequest *req, char *msg, size_t len)
{
    /* driver_id first: the original checked it first, and clients match
     * on its exact message. */
    int rc = check_text(req->driver_id, "driver_id", msg, len);
    if (rc)
        return rc;
    for (size_t i = 0; i < req->n_passenger_ids; i++) {
        char field[48];
        snprintf(field, sizeof field, "passenger_ids[%zu]", i);
        rc = check_text(req->passenger_ids[i], field, msg, len);
        if (rc)
            return rc;
    }
    if (req->type != RIDE_TYPE__REGULAR && req->type != RIDE_TYPE__POOL)
        return fail(msg, len, "type is %d, not a RideType (REGULAR = 0, POOL = 1)",
                    (int)req->type);
    rc = validate_location(req->location, "location", msg, len);
    if (rc == 0)
        rc = validate_timestamp(req->time, "time", msg, len);
    return rc;
}

int validate_track_point(const TrackRequest *req, uint64_t index, char *msg, size_t len)
{
    char field[64];
    snprintf(field, sizeof field, "message[%" PRIu64 "].location", index);
    int rc = validate_location(req->location, field, msg, len);
    if (rc == 0) {
        snprintf(field, sizeof field, "message[%" PRIu64 "].time", index);
        rc = validate_timestamp(req->time, field, msg, len);
    }
    return rc;
}
