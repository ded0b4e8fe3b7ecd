/* HTTP rules of the JSON gateway (google.api.http semantics) and the
 * per-worker table they live in.
 *
 * A rule maps an HTTP method and a path template to a gRPC method:
 *   template  = "/" segments [ ":" verb ]
 *   segment   = "*" | "**" | LITERAL | "{" field.path [ "=" segments ] "}"
 * "*" matches one path segment, "**" the rest of the path (last only); a
 * variable without "=" is "{x=*}". body is absent, "*" (the whole request
 * message) or one field; response_body absent or one field.
 *
 * Rules come from the google.api.http option of methods in a plugin's
 * descriptor set, and from its config section for protos without
 * annotations:
 *   [plugin.rides]
 *   http_rule.start = POST /start Rides.Start body=*
 *   http_rule.track = POST /track Rides.Track body=*
 * (METHOD TEMPLATE SERVICE.METHOD [body=F] [response_body=F]; every key
 * starting with http_rule holds one rule or several, comma-separated).
 *
 * The table also holds the descriptor pool of every loaded plugin (for
 * JSON <-> protobuf). It is built per worker thread from the registry
 * snapshot and rebuilt when the snapshot's generation moves. */
#ifndef RPCHOST_HOST_WEB_WEB_RULES_H
#define RPCHOST_HOST_WEB_WEB_RULES_H

#include <stdbool.h>
#include <stddef.h>

#include "descpool.h"
#include "registry/registry.h"

#define WEB_RULE_MAX_SEGS 32
#define WEB_RULE_MAX_VARS 8
#define WEB_RULES_MAX 1024

typedef enum web_seg_kind { SEG_LITERAL, SEG_STAR, SEG_DSTAR } web_seg_kind;

typedef struct web_seg {
    web_seg_kind kind;
    const char *literal; /* SEG_LITERAL, in the rule's text */
    size_t literal_len;
} web_seg;

typedef struct web_var {
    char *field;        /* "name", "book.id" */
    uint32_t first, end; /* the segments it covers */
} web_var;

typedef struct web_rule {
    char *http_method;  /* "GET", "POST", ... or a custom verb */
    char *pattern;      /* the template as written (segments point into it) */
    web_seg segs[WEB_RULE_MAX_SEGS];
    uint32_t n_segs;
    web_var vars[WEB_RULE_MAX_VARS];
    uint32_t n_vars;
    const char *verb;   /* ":verb" suffix without the colon, or NULL */
    char *body;         /* NULL, "*" or a field path */
    char *response_body; /* NULL or a field path */
    char *grpc_path;    /* "/Rides/Start" */
    char *input_type, *output_type; /* full names in the pool */
    bool client_streaming, server_streaming;
} web_rule;

typedef struct web_table {
    uint64_t generation;
    descpool *pool;
    web_rule *rules;
    size_t n_rules, cap_rules;
} web_table;

/* Parses a template into r (pattern is copied). 0, or -EINVAL with the
 * reason in why. */
int web_rule_parse_template(web_rule *r, const char *pattern, char *why, size_t whylen);
/* Matches a path (no query) against a rule's template; on success the
 * variables' values (percent-decoded, malloc'd) are in vals[0..n_vars). */
bool web_rule_match(const web_rule *r, const char *path, size_t len, char **vals);
void web_rule_free(web_rule *r);

/* The table of the calling worker for snap (built or rebuilt as needed);
 * NULL only out of memory. Problems with single rules are logged once per
 * build and the rule is left out. */
const web_table *web_table_get(const reg_snapshot *snap);
/* Frees the calling thread's table (worker exit). */
void web_table_release(void);

#endif
