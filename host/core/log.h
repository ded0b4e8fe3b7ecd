/* Logging to stderr with levels: one line per event, prefixed with an
 * RFC 3339 timestamp and the level. Thread-safe (one write(2) per line). */
#ifndef RPCHOST_HOST_LOG_H
#define RPCHOST_HOST_LOG_H

#include <stdarg.h>
#include "rpchost/plugin.h"

/* Parses "error" | "warn" | "info" | "debug"; returns -1 if unknown. */
int log_level_parse(const char *name);
void log_set_level(rh_log_level level);
rh_log_level log_get_level(void);

void log_msg(rh_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void log_vmsg(rh_log_level level, const char *prefix, const char *fmt, va_list ap);

#define log_error(...) log_msg(RH_LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(RH_LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(RH_LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                                        \
    do {                                                                      \
        if (log_get_level() >= RH_LOG_DEBUG) log_msg(RH_LOG_DEBUG, __VA_ARGS__); \
    } while (0)

#endif
