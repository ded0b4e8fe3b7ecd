/* Collectors: functions that refresh gauges right before the series are
 * read (process_ figures from /proc, the registry's plugin states). They
 * run outside the metrics lock, so they may take other locks (the
 * registry's) without an order to keep. */
#ifndef RPCHOST_HOST_MX_COLLECT_H
#define RPCHOST_HOST_MX_COLLECT_H

#define MX_MAX_COLLECTORS 16

typedef void (*mx_collect_fn)(void *arg);

/* 0, or -ENOSPC past MX_MAX_COLLECTORS. At start-up (not thread-safe
 * against mx_collect_run). */
int mx_collect_add(mx_collect_fn fn, void *arg);
/* Runs every collector; one reader at a time. */
void mx_collect_run(void);
void mx_collect_clear(void);

/* The process_ series (standard names, as client libraries export them). */
int mx_process_init(void);

#endif
