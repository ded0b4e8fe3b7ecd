// Rides request validation and ride ids for the benchmark peer: the same
// rules and messages as plugins/rides, so both servers do the same work.
#pragma once
#include <string>

class StartRequest;
class TrackRequest;
class Location;

namespace peer {

// Returns "" when valid, else "<field> is <reason>".
std::string validate_start(const StartRequest &req);
// Returns "" when valid, else a message naming the message index.
std::string validate_track_point(const TrackRequest &req, unsigned long index);
// A uuid4 as 32 lowercase hex characters from the kernel's random source
// (getrandom per id, as the rides plugin does).
int new_ride_id(std::string *out);

}  // namespace peer
