#include "grpc_timeout.h"

#include <errno.h>
#include <stdio.h>

static int64_t unit_ns(char u)
{
    switch (u) {
    case 'H': return 3600LL * 1000000000LL;
    case 'M': return 60LL * 1000000000LL;
    case 'S': return 1000000000LL;
    case 'm': return 1000000LL;
    case 'u': return 1000LL;
    case 'n': return 1LL;
    default: return 0;
    }
}

int grpc_timeout_parse(const char *s, size_t len, int64_t *ns)
{
    if (len < 2 || len > 9) return -EINVAL;
    int64_t mult = unit_ns(s[len - 1]);
    if (mult == 0) return -EINVAL;
    int64_t v = 0;
    for (size_t i = 0; i + 1 < len; i++) {
        if (s[i] < '0' || s[i] > '9') return -EINVAL;
        v = v * 10 + (s[i] - '0');
    }
    *ns = v > INT64_MAX / mult ? INT64_MAX : v * mult;
    return 0;
}

size_t grpc_timeout_format(int64_t ns, char out[GRPC_TIMEOUT_MAX_LEN])
{
    static const char units[] = {'n', 'u', 'm', 'S', 'M', 'H'};
    static const int64_t div[] = {1, 1000, 1000, 1000, 60, 60};
    if (ns < 0) ns = 0;
    /* v in the current unit, rounded up */
    int64_t v = ns;
    size_t i = 0;
    while (v > 99999999 && i + 1 < sizeof units) {
        i++;
        v = v / div[i] + (v % div[i] != 0);
    }
    if (v > 99999999) v = 99999999;
    int n = snprintf(out, GRPC_TIMEOUT_MAX_LEN, "%lld%c", (long long)v, units[i]);
    return (size_t)n;
}
