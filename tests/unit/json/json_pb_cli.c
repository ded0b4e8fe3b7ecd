/* json_pb on the command line, over the test protos (their descriptor set
 * is compiled in), for the reference comparison with Python's json_format
 * (tests/integration/json). Not shipped.
 *   json_pb_cli TYPE encode            JSON on stdin -> wire on stdout
 *   json_pb_cli TYPE decode [FLAGS]    wire on stdin -> JSON on stdout
 * FLAGS: --emit-defaults --proto-names. Errors: one line on stderr, exit 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_pb.h"
#include "jsontest_set.h"

static uint8_t *slurp(size_t *len)
{
    size_t cap = 4096, n = 0;
    uint8_t *b = malloc(cap);
    size_t r;
    while (b && (r = fread(b + n, 1, cap - n, stdin)) > 0) {
        n += r;
        if (n == cap) {
            uint8_t *nb = realloc(b, cap *= 2);
            if (!nb)
                free(b);
            b = nb;
        }
    }
    *len = n;
    return b;
}

int main(int argc, char **argv)
{
    if (argc < 3 || (strcmp(argv[2], "encode") && strcmp(argv[2], "decode"))) {
        fprintf(stderr, "usage: json_pb_cli TYPE encode|decode [--emit-defaults] [--proto-names]\n");
        return 2;
    }
    unsigned flags = JSON_PB_COMPACT;
    for (int i = 3; i < argc; i++)
        flags |= !strcmp(argv[i], "--emit-defaults") ? JSON_PB_EMIT_DEFAULTS
               : !strcmp(argv[i], "--proto-names")   ? JSON_PB_PROTO_NAMES
                                                      : 0;
    descpool *pool = descpool_new();
    if (!pool || descpool_add_set(pool, rh_descriptor_set, sizeof rh_descriptor_set) < 0)
        return 1;
    size_t len;
    uint8_t *in = slurp(&len);
    if (!in)
        return 1;
    json_pb_error err;
    int rc;
    if (!strcmp(argv[2], "encode")) {
        uint8_t *out;
        size_t n;
        rc = json_pb_encode(pool, argv[1], (const char *)in, len, &out, &n, &err);
        if (!rc) {
            fwrite(out, 1, n, stdout);
            free(out);
        }
    } else {
        char *out;
        rc = json_pb_decode(pool, argv[1], in, len, flags, &out, &err);
        if (!rc) {
            fputs(out, stdout);
            free(out);
        }
    }
    if (rc)
        fprintf(stderr, "%s\n", err.text);
    free(in);
    descpool_free(pool);
    return rc ? 1 : 0;
}
