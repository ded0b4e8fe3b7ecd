#include "core/log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static _Atomic int current_level = RH_LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int log_level_parse(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcasecmp(name, level_names[i]) == 0) return i;
    if (strcasecmp(name, "warning") == 0) return RH_LOG_WARN;
    return -1;
}

void log_set_level(rh_log_level level) { atomic_store(&current_level, (int)level); }

rh_log_level log_get_level(void) { return (rh_log_level)atomic_load(&current_level); }

void log_vmsg(rh_log_level level, const char *prefix, const char *fmt, va_list ap)
{
    if ((int)level > atomic_load(&current_level)) return;
    char line[2048];
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
    int k = snprintf(line + n, sizeof line - n, ".%06ldZ %-5s %s%s", (long)tv.tv_usec,
                     level_names[level], prefix ? prefix : "", prefix ? ": " : "");
    if (k > 0) n += (size_t)k;
    if (n < sizeof line) {
        k = vsnprintf(line + n, sizeof line - n, fmt, ap);
        if (k > 0) n += (size_t)k;
    }
    if (n > sizeof line - 2) n = sizeof line - 2;
    line[n++] = '\n';
    /* One write per line so lines of different threads never interleave. */
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
}

void log_msg(rh_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(level, NULL, fmt, ap);
    va_end(ap);
}
