/* Printing google.rpc.Status details (see statusdetail.h). */
#include "statusdetail.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "call.h"
#include "json_pb.h"
#include "pbwire.h"
#include "rpc_error_details_set.h" /* rh_descriptor_set: google.rpc details */

static void print_indented(FILE *out, const char *text, int indent);

/* The pool of the standard google.rpc detail types, built on first use
 * (rpcall is single-threaded when it prints a status). */
static descpool *known_pool;
static bool known_tried;

static descpool *known_types(void)
{
    if (!known_tried) {
        known_tried = true;
        known_pool = descpool_new();
        if (known_pool &&
            descpool_add_set(known_pool, rh_descriptor_set, sizeof(rh_descriptor_set)) < 0) {
            descpool_free(known_pool);
            known_pool = NULL;
        }
    }
    return known_pool;
}

void statusdetail_cleanup(void)
{
    if (known_pool)
        descpool_free(known_pool);
    known_pool = NULL;
}

/* Prints a detail as JSON if pool knows its type; false otherwise. */
static bool print_json(FILE *out, const descpool *pool, const char *type, const uint8_t *value,
                       size_t value_len)
{
    if (!pool || !*type || !descpool_find_kind(pool, type, DESCPOOL_MESSAGE))
        return false;
    char *json = NULL;
    json_pb_error err;
    if (json_pb_decode(pool, type, value, value_len, 0, &json, &err) != 0) {
        free(json);
        return false;
    }
    print_indented(out, json, 4);
    free(json);
    return true;
}

static void print_indented(FILE *out, const char *text, int indent)
{
    for (const char *line = text; *line;) {
        const char *nl = strchr(line, '\n');
        size_t l = nl ? (size_t)(nl - line) : strlen(line);
        fprintf(out, "%*s%.*s\n", indent, "", (int)l, line);
        line += l + (nl ? 1 : 0);
    }
}

static void print_any(FILE *out, const descpool *pool, size_t index, const uint8_t *p,
                      size_t len)
{
    pbw_reader r;
    pbw_field f;
    const uint8_t *url = NULL, *value = NULL;
    size_t url_len = 0, value_len = 0;
    pbw_reader_init(&r, p, len);
    while (pbw_next(&r, &f) == 1) {
        if (f.number == 1 && f.wire_type == PBW_LEN) {
            url = f.data;
            url_len = f.len;
        } else if (f.number == 2 && f.wire_type == PBW_LEN) {
            value = f.data;
            value_len = f.len;
        }
    }
    char type_url[512] = "";
    snprintf(type_url, sizeof(type_url), "%.*s", (int)(url_len > 500 ? 500 : url_len),
             url ? (const char *)url : "");
    fprintf(out, "  details[%zu]: %s\n", index, type_url[0] ? type_url : "(no type)");
    const char *type = strrchr(type_url, '/');
    type = type ? type + 1 : type_url;
    if (print_json(out, pool, type, value, value_len) ||
        print_json(out, known_types(), type, value, value_len))
        return;
    if (value_len == 0)
        fprintf(out, "    (empty)\n");
    else
        pbw_print_raw(out, value, value_len, 4);
}

void statusdetail_print(FILE *out, const descpool *pool, const uint8_t *data, size_t len,
                        int code, const char *message)
{
    pbw_reader r;
    pbw_field f;
    int scode = 0;
    const uint8_t *smsg = NULL;
    size_t smsg_len = 0, index = 0;
    pbw_reader_init(&r, data, len);
    int rc;
    while ((rc = pbw_next(&r, &f)) == 1) {
        if (f.number == 1 && f.wire_type == PBW_VARINT)
            scode = (int)(int32_t)f.u64;
        else if (f.number == 2 && f.wire_type == PBW_LEN) {
            smsg = f.data;
            smsg_len = f.len;
        }
    }
    if (rc < 0) {
        fprintf(out, "  details: grpc-status-details-bin is not a google.rpc.Status "
                     "(%zu bytes)\n", len);
        return;
    }
    if (scode != code || (smsg_len != strlen(message) ||
                          (smsg_len && memcmp(smsg, message, smsg_len) != 0)))
        fprintf(out, "  status details: %s: %.*s\n", call_code_name(scode), (int)smsg_len,
                smsg ? (const char *)smsg : "");
    pbw_reader_init(&r, data, len);
    while (pbw_next(&r, &f) == 1)
        if (f.number == 3 && f.wire_type == PBW_LEN)
            print_any(out, pool, index++, f.data, f.len);
}
