/* Printing google.rpc.Status details (see statusdetail.h). */
#include "statusdetail.h"

#include <stdlib.h>
#include <string.h>

#include "call.h"
#include "json_pb.h"
#include "pbwire.h"

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
    if (pool && *type && descpool_find_kind(pool, type, DESCPOOL_MESSAGE)) {
        char *json = NULL;
        json_pb_error err;
        if (json_pb_decode(pool, type, value, value_len, 0, &json, &err) == 0) {
            print_indented(out, json, 4);
            free(json);
            return;
        }
        free(json);
    }
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
