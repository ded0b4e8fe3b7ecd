/* json_pb: placeholder until the implementation lands (API in json_pb.h). */
#include "json_pb.h"

#include <errno.h>
#include <stdio.h>

static int nosys(json_pb_error *err)
{
    if (err)
        snprintf(err->text, sizeof err->text, "JSON transcoding not implemented yet");
    return -ENOSYS;
}

int json_pb_encode(const descpool *pool, const char *type, const char *json, size_t len,
                   uint8_t **out, size_t *out_len, json_pb_error *err)
{ (void)pool; (void)type; (void)json; (void)len; (void)out; (void)out_len; return nosys(err); }
int json_pb_encode_value(const descpool *pool, const char *type, const json_t *value,
                         uint8_t **out, size_t *out_len, json_pb_error *err)
{ (void)pool; (void)type; (void)value; (void)out; (void)out_len; return nosys(err); }
int json_pb_decode_value(const descpool *pool, const char *type, const uint8_t *data,
                         size_t len, unsigned flags, json_t **out, json_pb_error *err)
{ (void)pool; (void)type; (void)data; (void)len; (void)flags; (void)out; return nosys(err); }
int json_pb_decode(const descpool *pool, const char *type, const uint8_t *data, size_t len,
                   unsigned flags, char **out, json_pb_error *err)
{ (void)pool; (void)type; (void)data; (void)len; (void)flags; (void)out; return nosys(err); }
