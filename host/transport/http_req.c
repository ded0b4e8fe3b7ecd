/* The web request's helpers and the handler hook (http_req.h). */
#include "transport/http_req.h"

#include <string.h>

static const web_handler *handler;

void web_set_handler(const web_handler *h) { handler = h; }

const web_handler *web_get_handler(void) { return handler; }

const char *web_field_get(const web_req *r, const char *name, size_t *len)
{
    size_t n = strlen(name);
    for (uint32_t i = 0; i < r->n_fields; i++) {
        const web_field *f = &r->fields[i];
        if (f->name_len == n && memcmp(r->raw.p + f->name_off, name, n) == 0) {
            *len = f->value_len;
            return (const char *)r->raw.p + f->value_off;
        }
    }
    return NULL;
}

const char *web_proto_name(web_proto p)
{
    switch (p) {
    case WEB_GATEWAY: return "http-json";
    case WEB_CONNECT:
    case WEB_CONNECT_STREAM: return "connect";
    case WEB_GRPC_WEB:
    case WEB_GRPC_WEB_TEXT: return "grpc-web";
    default: return "grpc";
    }
}
