/* Request validation for the Rides service. Pure functions over the
 * protobuf-c request structs: no host, no I/O, unit-tested on their own.
 *
 * Every failure writes one message of the form `<field> is <reason>` (the
 * form the original Python service used, e.g. "driver_id is empty") into
 * the caller's buffer and returns -EINVAL; success returns 0. */
#ifndef RIDES_VALIDATE_H
#define RIDES_VALIDATE_H

#include <stddef.h>
#include <stdint.h>

#include "rides.pb-c.h"

/* Large enough for every message validate_* writes. */
#define VALIDATE_MSG_MAX 160

/* Start: driver_id non-empty UTF-8, every passenger_id non-empty UTF-8, a
 * known RideType, a location inside [-90, 90] x [-180, 180], a time inside
 * google.protobuf.Timestamp's range. Absent location or time is allowed
 * (stored as NULL): the original service accepted it. */
int validate_start(const StartRequest *req, char *msg, size_t len);

/* Track: one streamed point, `index` its 0-based position in the stream.
 * Messages name the index as a path: "message[3].location.lat is ...". */
int validate_track_point(const TrackRequest *req, uint64_t index, char *msg, size_t len);

/* The pieces, exposed for the unit tests. `field` prefixes the message. */
int validate_location(const Location *loc, const char *field, char *msg, size_t len);
int validate_timestamp(const Google__Protobuf__Timestamp *ts, const char *field,
                       char *msg, size_t len);
/* 1 if s[0..n) is well-formed UTF-8 (no overlongs, no surrogates). */
int validate_utf8(const char *s, size_t n);

#endif
