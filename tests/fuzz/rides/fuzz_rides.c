/* plugins/rides validation: byte 0 picks StartRequest (even) or
 * TrackRequest (odd, bytes 1..8 its stream index); the rest is the request
 * as it would arrive on the wire. A request validate_* accepts must really
 * satisfy the rules (checked here independently, UTF-8 included); a refused
 * one must come with a complete "<field> is <reason>" message. */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "fuzz.h"
#include "validate.h"

/* Well-formed UTF-8 per Unicode table 3-7, written independently. */
static int ref_utf8(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t k;
        unsigned lo = 0x80, hi = 0xbf;
        if (c <= 0x7f) { i++; continue; }
        else if (c >= 0xc2 && c <= 0xdf) k = 1;
        else if (c == 0xe0) { k = 2; lo = 0xa0; }
        else if (c >= 0xe1 && c <= 0xec) k = 2;
        else if (c == 0xed) { k = 2; hi = 0x9f; }
        else if (c >= 0xee && c <= 0xef) k = 2;
        else if (c == 0xf0) { k = 3; lo = 0x90; }
        else if (c >= 0xf1 && c <= 0xf3) k = 3;
        else if (c == 0xf4) { k = 3; hi = 0x8f; }
        else return 0;
        if (n - i - 1 < k) return 0;
        if (s[i + 1] < lo || s[i + 1] > hi) return 0;
        for (size_t j = 2; j <= k; j++)
            if (s[i + j] < 0x80 || s[i + j] > 0xbf) return 0;
        i += k + 1;
    }
    return 1;
}

static int text_ok(const char *s)
{
    return s && s[0] && ref_utf8((const unsigned char *)s, strlen(s));
}

static int loc_ok(const Location *l)
{
    return !l || (isfinite(l->lat) && isfinite(l->lng) && fabs(l->lat) <= 90 &&
                  fabs(l->lng) <= 180);
}

static int ts_ok(const Google__Protobuf__Timestamp *t)
{
    return !t || (t->nanos >= 0 && t->nanos <= 999999999 && t->seconds >= -62135596800LL &&
                  t->seconds <= 253402300799LL);
}

static void check_msg(int rv, const char *msg)
{
    FUZZ_CHECK(rv == 0 || rv == -EINVAL, "unexpected return %d", rv);
    if (rv == 0) return;
    size_t n = strnlen(msg, VALIDATE_MSG_MAX);
    FUZZ_CHECK(n > 0 && n < VALIDATE_MSG_MAX - 1, "message empty or cut: \"%s\"", msg);
    FUZZ_CHECK(strstr(msg, " is ") != NULL, "message not \"<field> is <reason>\": %s", msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    /* validate_utf8 itself, on the raw bytes (embedded NULs included). */
    FUZZ_CHECK(validate_utf8((const char *)data + 1, size - 1) == ref_utf8(data + 1, size - 1),
               "validate_utf8 disagrees with the reference");
    char msg[VALIDATE_MSG_MAX];
    memset(msg, 0, sizeof msg);
    if (data[0] % 2 == 0) {
        StartRequest *req = start_request__unpack(NULL, size - 1, data + 1);
        if (!req) return 0;
        int rv = validate_start(req, msg, sizeof msg);
        check_msg(rv, msg);
        if (rv == 0) {
            FUZZ_CHECK(text_ok(req->driver_id), "bad driver_id accepted");
            for (size_t i = 0; i < req->n_passenger_ids; i++)
                FUZZ_CHECK(text_ok(req->passenger_ids[i]), "bad passenger_ids[%zu] accepted", i);
            FUZZ_CHECK(req->type == RIDE_TYPE__REGULAR || req->type == RIDE_TYPE__POOL,
                       "type %d accepted", (int)req->type);
            FUZZ_CHECK(loc_ok(req->location), "bad location accepted");
            FUZZ_CHECK(ts_ok(req->time), "bad time accepted");
        }
        start_request__free_unpacked(req, NULL);
    } else {
        if (size < 9) return 0;
        uint64_t index;
        memcpy(&index, data + 1, 8);
        TrackRequest *req = track_request__unpack(NULL, size - 9, data + 9);
        if (!req) return 0;
        int rv = validate_track_point(req, index, msg, sizeof msg);
        check_msg(rv, msg);
        if (rv == 0) {
            FUZZ_CHECK(loc_ok(req->location), "bad location accepted");
            FUZZ_CHECK(ts_ok(req->time), "bad time accepted");
        } else {
            FUZZ_CHECK(strncmp(msg, "message[", 8) == 0, "no index in \"%s\"", msg);
        }
        track_request__free_unpacked(req, NULL);
    }
    return 0;
}

FUZZ_CASES(
    /* driver "d", passenger "p", POOL, location 91/0 */
    FUZZ_CASE("\x00\x12\x01" "d" "\x1a\x01" "p" "\x20\x01"
              "\x2a\x09\x09\x00\x00\x00\x00\x00\xc0\x56\x40"),
    /* driver with an overlong '/' and a surrogate */
    FUZZ_CASE("\x00\x12\x05" "\xc0\xaf\xed\xa0\x80"),
    /* a track point with a NaN latitude at the largest index */
    FUZZ_CASE("\x01\xff\xff\xff\xff\xff\xff\xff\xff"
              "\x1a\x09\x09\x00\x00\x00\x00\x00\x00\xf8\x7f"),
    /* time with negative nanos */
    FUZZ_CASE("\x00\x12\x01" "d" "\x32\x0d\x08\x01\x10\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"),
    /* 4-byte sequence past U+10FFFF */
    FUZZ_CASE("\x02\x12\x04" "\xf4\x90\x80\x80"),
);
