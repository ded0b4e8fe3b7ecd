#include "rides_logic.h"

#include <sys/random.h>

#include <cerrno>
#include <cmath>
#include <cstdint>

#include "rides.pb.h"

namespace peer {

static std::string check_location(const Location &loc, const std::string &prefix) {
  if (!std::isfinite(loc.lat()) || loc.lat() < -90 || loc.lat() > 90)
    return prefix + "lat is out of range";
  if (!std::isfinite(loc.lng()) || loc.lng() < -180 || loc.lng() > 180)
    return prefix + "lng is out of range";
  return "";
}

static bool nanos_ok(const google::protobuf::Timestamp &t) {
  return t.nanos() >= 0 && t.nanos() <= 999999999;
}

std::string validate_start(const StartRequest &req) {
  if (req.driver_id().empty()) return "driver_id is empty";
  for (const auto &p : req.passenger_ids())
    if (p.empty()) return "passenger_ids is empty";
  if (!RideType_IsValid(req.type())) return "type is unknown";
  if (req.has_location()) {
    std::string e = check_location(req.location(), "location.");
    if (!e.empty()) return e;
  }
  if (req.has_time() && !nanos_ok(req.time())) return "time is out of range";
  return "";
}

std::string validate_track_point(const TrackRequest &req, unsigned long index) {
  std::string at = "message " + std::to_string(index) + ": ";
  if (req.has_location()) {
    std::string e = check_location(req.location(), "location.");
    if (!e.empty()) return at + e;
  }
  if (req.has_time() && !nanos_ok(req.time())) return at + "time is out of range";
  return "";
}

int new_ride_id(std::string *out) {
  uint8_t b[16];
  size_t got = 0;
  while (got < sizeof b) {
    ssize_t n = getrandom(b + got, sizeof b - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    got += (size_t)n;
  }
  b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);  // version 4
  b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);  // RFC 4122 variant
  static const char hex[] = "0123456789abcdef";
  out->resize(32);
  for (int i = 0; i < 16; i++) {
    (*out)[2 * i] = hex[b[i] >> 4];
    (*out)[2 * i + 1] = hex[b[i] & 15];
  }
  return 0;
}

}  // namespace peer
