#include "grpc_status.h"

#include <strings.h>

static const char *const names[] = {
    "OK",                 "CANCELLED",         "UNKNOWN",
    "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED", "NOT_FOUND",
    "ALREADY_EXISTS",     "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION", "ABORTED",          "OUT_OF_RANGE",
    "UNIMPLEMENTED",      "INTERNAL",          "UNAVAILABLE",
    "DATA_LOSS",          "UNAUTHENTICATED",
};
#define N_NAMES (int)(sizeof names / sizeof names[0])

const char *grpc_status_name(int code)
{
    return code >= 0 && code < N_NAMES ? names[code] : "UNKNOWN";
}

int grpc_status_parse(const char *s, size_t len)
{
    if (len == 0 || len > 3) return -1;
    int v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

int grpc_status_from_name(const char *name)
{
    for (int i = 0; i < N_NAMES; i++)
        if (strcasecmp(name, names[i]) == 0) return i;
    size_t n = 0;
    while (name[n]) n++;
    int v = grpc_status_parse(name, n);
    return v >= 0 && v < N_NAMES ? v : -1;
}
