/* The exposition: every family and series as the Prometheus text format
 * 0.0.4 or OpenMetrics 1.0 text, appended to a buffer. */
#ifndef RPCHOST_HOST_MX_EXPOSE_H
#define RPCHOST_HOST_MX_EXPOSE_H

#include <stdbool.h>

#include "core/core.h"

#define MX_CT_TEXT "text/plain; version=0.0.4; charset=utf-8"
#define MX_CT_OPENMETRICS "application/openmetrics-text; version=1.0.0; charset=utf-8"

/* Whether an Accept header asks for OpenMetrics (as Prometheus sends it:
 * "application/openmetrics-text;version=1.0.0,...;q=0.5,text/plain;..."). */
bool mx_accepts_openmetrics(const char *accept);
/* Runs the collectors, then writes everything; 0 or -ENOMEM. */
int mx_expose(buf *out, bool openmetrics);

#endif
