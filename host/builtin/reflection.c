/* grpc.reflection.v1 and v1alpha ServerReflection, a built-in service
 * written against the plugin API.
 *
 * Answers come from the embedded descriptor sets of the instances in the
 * current registry snapshot, so a plugin added or removed while the host
 * runs shows up at the next request. The descriptor pool of a snapshot is
 * built once, on the first request that sees that snapshot generation, and
 * shared (reference counted) by every request until a newer one replaces
 * it.
 *
 * v1 and v1alpha have the same messages under two package names. Requests
 * and responses are handled as v1; a v1alpha message is converted by
 * re-parsing its wire bytes (the field numbers are identical), which costs
 * nothing worth counting on this low-volume service and cannot drift. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builtin_descriptor_set.h"
#include "builtin/builtin.h"
#include "descpool.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "grpc/reflection/v1alpha/reflection.pb-c.h"
#include "registry/registry.h"

typedef Grpc__Reflection__V1__ServerReflectionRequest refl_request;
typedef Grpc__Reflection__V1__ServerReflectionResponse refl_response;
typedef Google__Protobuf__FileDescriptorProto file_proto;

#define REFL_MAX_SERVICES 4096
#define REFL_MAX_EXTENSIONS 4096

static const rh_host_api *api;
static rh_plugin_ctx *refl_ctx;

/* ---- the descriptor pool of a snapshot ---------------------------------- */

typedef struct refl_pool {
    atomic_long refs;
    uint64_t generation;
    descpool *pool;
    char **services; /* full names of the services served, in load order */
    size_t n_services;
} refl_pool;

static struct {
    pthread_mutex_t lock;
    refl_pool *current; /* holds one reference */
} cache = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void pool_unref(refl_pool *p)
{
    if (!p || atomic_fetch_sub(&p->refs, 1) != 1)
        return;
    descpool_free(p->pool);
    for (size_t i = 0; i < p->n_services; i++)
        free(p->services[i]);
    free(p->services);
    free(p);
}

static refl_pool *pool_build(const reg_snapshot *snap)
{
    refl_pool *p = calloc(1, sizeof *p);
    size_t max = 0;
    for (size_t i = 0; i < snap->n_instances; i++)
        max += reg_instance_descriptor(snap->instances[i])->n_services;
    if (max > REFL_MAX_SERVICES)
        max = REFL_MAX_SERVICES;
    if (!p || !(p->pool = descpool_new()) || !(p->services = calloc(max + 1, sizeof(char *)))) {
        if (p)
            descpool_free(p->pool);
        free(p);
        return NULL;
    }
    atomic_init(&p->refs, 1);
    p->generation = snap->generation;
    for (size_t i = 0; i < snap->n_instances; i++) {
        const rh_plugin_descriptor *d = reg_instance_descriptor(snap->instances[i]);
        if (d->descriptor_set && d->descriptor_set_len &&
            descpool_add_set(p->pool, d->descriptor_set, d->descriptor_set_len) < 0 && api)
            api->log(refl_ctx, RH_LOG_WARN,
                     "reflection: the descriptor set of plugin %s is not usable: %s",
                     reg_instance_name(snap->instances[i]), descpool_error(p->pool));
        for (size_t s = 0; s < d->n_services && p->n_services < max; s++) {
            const char *name = d->services[s].descriptor ? d->services[s].descriptor->name : NULL;
            if (!name)
                continue;
            bool dup = false;
            for (size_t k = 0; k < p->n_services && !dup; k++)
                dup = strcmp(p->services[k], name) == 0;
            if (!dup && (p->services[p->n_services] = strdup(name)))
                p->n_services++;
        }
    }
    return p;
}

/* +1 reference on the pool of the current snapshot, NULL if out of memory. */
static refl_pool *pool_get(void)
{
    reg_snapshot *snap = reg_acquire();
    if (!snap)
        return NULL;
    pthread_mutex_lock(&cache.lock);
    refl_pool *p = cache.current;
    if (p && p->generation == snap->generation) {
        atomic_fetch_add(&p->refs, 1);
        pthread_mutex_unlock(&cache.lock);
        reg_snapshot_release(snap);
        return p;
    }
    pthread_mutex_unlock(&cache.lock);
    /* Build outside the lock; two racing builders both succeed and the
     * newer generation stays cached. */
    p = pool_build(snap);
    reg_snapshot_release(snap);
    if (!p)
        return NULL;
    pthread_mutex_lock(&cache.lock);
    refl_pool *old = NULL;
    if (!cache.current || cache.current->generation < p->generation) {
        old = cache.current;
        cache.current = p;
        atomic_fetch_add(&p->refs, 1);
    }
    pthread_mutex_unlock(&cache.lock);
    pool_unref(old);
    return p;
}

/* ---- answers ------------------------------------------------------------- */

/* Storage a response points into; freed after it was sent. */
typedef struct refl_answer {
    refl_response resp;
    Grpc__Reflection__V1__FileDescriptorResponse files;
    Grpc__Reflection__V1__ListServiceResponse list;
    Grpc__Reflection__V1__ExtensionNumberResponse ext;
    Grpc__Reflection__V1__ErrorResponse error;
    char error_text[512];
    ProtobufCBinaryData *blobs;
    Grpc__Reflection__V1__ServiceResponse *svc;
    Grpc__Reflection__V1__ServiceResponse **svc_ptrs;
    int32_t *numbers;
} refl_answer;

static void answer_error(refl_answer *a, rh_status code, const char *fmt, const char *what)
{
    grpc__reflection__v1__error_response__init(&a->error);
    snprintf(a->error_text, sizeof a->error_text, fmt, what);
    a->error.error_code = (int32_t)code;
    a->error.error_message = a->error_text;
    a->resp.message_response_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
    a->resp.error_response = &a->error;
}

/* The file first, then every file it depends on (as grpc's C++ and Go
 * servers order them), each serialized as the pool holds it. */
static void answer_file(refl_answer *a, const refl_pool *p, const file_proto *f)
{
    const file_proto **closure;
    size_t n;
    int rc = descpool_file_closure(p->pool, f, &closure, &n);
    if (rc == -ENOMEM || !(a->blobs = calloc(n ? n : 1, sizeof *a->blobs))) {
        free(closure);
        answer_error(a, RH_RESOURCE_EXHAUSTED, "out of memory answering for %s", f->name);
        return;
    }
    /* rc == -ENOENT: a dependency is missing from the plugin's set; send
     * what there is (protoc --include_imports never leaves one out). */
    size_t k = 0;
    for (size_t i = n; i-- > 0;) {
        size_t len;
        const uint8_t *b = descpool_file_bytes(p->pool, closure[i], &len);
        if (b)
            a->blobs[k++] = (ProtobufCBinaryData){len, (uint8_t *)b};
    }
    free(closure);
    /* The closure comes dependencies first, the file last: walked
     * backwards, the file leads and its dependencies follow. */
    grpc__reflection__v1__file_descriptor_response__init(&a->files);
    a->files.n_file_descriptor_proto = k;
    a->files.file_descriptor_proto = a->blobs;
    a->resp.message_response_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE;
    a->resp.file_descriptor_response = &a->files;
}

static void answer_list(refl_answer *a, const refl_pool *p)
{
    a->svc = calloc(p->n_services + 1, sizeof *a->svc);
    a->svc_ptrs = calloc(p->n_services + 1, sizeof *a->svc_ptrs);
    if (!a->svc || !a->svc_ptrs) {
        answer_error(a, RH_RESOURCE_EXHAUSTED, "out of memory listing %s", "services");
        return;
    }
    for (size_t i = 0; i < p->n_services; i++) {
        grpc__reflection__v1__service_response__init(&a->svc[i]);
        a->svc[i].name = p->services[i];
        a->svc_ptrs[i] = &a->svc[i];
    }
    grpc__reflection__v1__list_service_response__init(&a->list);
    a->list.n_service = p->n_services;
    a->list.service = a->svc_ptrs;
    a->resp.message_response_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE;
    a->resp.list_services_response = &a->list;
}

/* Extensions of `type` declared anywhere in the pool: at file level and
 * nested in messages. cb returns true to stop. */
typedef bool (*ext_cb)(const file_proto *f, const Google__Protobuf__FieldDescriptorProto *x,
                       void *arg);

static bool ext_scan_fields(const file_proto *f, Google__Protobuf__FieldDescriptorProto **xs,
                            size_t n, const char *type, ext_cb cb, void *arg)
{
    for (size_t i = 0; i < n; i++) {
        const char *e = xs[i]->extendee ? xs[i]->extendee : "";
        if (*e == '.')
            e++;
        if (!strcmp(e, type) && cb(f, xs[i], arg))
            return true;
    }
    return false;
}

static bool ext_scan_msg(const file_proto *f, const Google__Protobuf__DescriptorProto *m,
                         const char *type, ext_cb cb, void *arg, int depth)
{
    if (depth > 100) /* deeper nesting: not a real schema, stop descending */
        return false;
    if (ext_scan_fields(f, m->extension, m->n_extension, type, cb, arg))
        return true;
    for (size_t i = 0; i < m->n_nested_type; i++)
        if (ext_scan_msg(f, m->nested_type[i], type, cb, arg, depth + 1))
            return true;
    return false;
}

static void ext_scan(const refl_pool *p, const char *type, ext_cb cb, void *arg)
{
    size_t n;
    const file_proto *const *files = descpool_files(p->pool, &n);
    for (size_t i = 0; i < n; i++) {
        const file_proto *f = files[i];
        if (ext_scan_fields(f, f->extension, f->n_extension, type, cb, arg))
            return;
        for (size_t j = 0; j < f->n_message_type; j++)
            if (ext_scan_msg(f, f->message_type[j], type, cb, arg, 0))
                return;
    }
}

typedef struct ext_find {
    int32_t number;
    const file_proto *file;
} ext_find;

static bool ext_find_cb(const file_proto *f, const Google__Protobuf__FieldDescriptorProto *x,
                        void *arg)
{
    ext_find *e = arg;
    if (x->number != e->number)
        return false;
    e->file = f;
    return true;
}

typedef struct ext_list {
    int32_t *numbers;
    size_t n;
} ext_list;

static bool ext_list_cb(const file_proto *f, const Google__Protobuf__FieldDescriptorProto *x,
                        void *arg)
{
    (void)f;
    ext_list *l = arg;
    if (l->n < REFL_MAX_EXTENSIONS)
        l->numbers[l->n++] = x->number;
    return l->n >= REFL_MAX_EXTENSIONS;
}

static void answer_extension_numbers(refl_answer *a, const refl_pool *p, const char *type)
{
    const descpool_symbol *s = descpool_find_kind(p->pool, type, DESCPOOL_MESSAGE);
    if (!s) {
        answer_error(a, RH_NOT_FOUND, "type not found: %s", type);
        return;
    }
    ext_list l = {calloc(REFL_MAX_EXTENSIONS, sizeof(int32_t)), 0};
    if (!l.numbers) {
        answer_error(a, RH_RESOURCE_EXHAUSTED, "out of memory answering for %s", type);
        return;
    }
    ext_scan(p, s->full_name, ext_list_cb, &l);
    a->numbers = l.numbers;
    grpc__reflection__v1__extension_number_response__init(&a->ext);
    a->ext.base_type_name = (char *)s->full_name;
    a->ext.n_extension_number = l.n;
    a->ext.extension_number = l.numbers;
    a->resp.message_response_case = GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ALL_EXTENSION_NUMBERS_RESPONSE;
    a->resp.all_extension_numbers_response = &a->ext;
}

static const char *or_empty(const char *s)
{
    return s ? s : "";
}

/* Fills a->resp for one request (never fails: errors are answers). */
static void answer(refl_answer *a, const refl_pool *p, const refl_request *req)
{
    const descpool_symbol *s;
    const file_proto *f;
    switch (req->message_request_case) {
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES:
        answer_list(a, p);
        break;
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME:
        f = descpool_file(p->pool, or_empty(req->file_by_filename));
        if (f)
            answer_file(a, p, f);
        else
            answer_error(a, RH_NOT_FOUND, "file not found: %s", or_empty(req->file_by_filename));
        break;
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL:
        s = descpool_find(p->pool, or_empty(req->file_containing_symbol));
        if (s && s->kind != DESCPOOL_PACKAGE)
            answer_file(a, p, s->file);
        else
            answer_error(a, RH_NOT_FOUND, "symbol not found: %s",
                         or_empty(req->file_containing_symbol));
        break;
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION: {
        const Grpc__Reflection__V1__ExtensionRequest *x = req->file_containing_extension;
        const char *type = x ? or_empty(x->containing_type) : "";
        ext_find e = {x ? x->extension_number : 0, NULL};
        s = descpool_find_kind(p->pool, type, DESCPOOL_MESSAGE);
        if (s)
            ext_scan(p, s->full_name, ext_find_cb, &e);
        if (e.file) {
            answer_file(a, p, e.file);
        } else {
            char what[300];
            snprintf(what, sizeof what, "%.250s, number %d", type, (int)e.number);
            answer_error(a, RH_NOT_FOUND, "extension not found: %s", what);
        }
        break;
    }
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE:
        answer_extension_numbers(a, p, or_empty(req->all_extension_numbers_of_type));
        break;
    default:
        answer_error(a, RH_INVALID_ARGUMENT, "%s",
                     "the request sets none of list_services, file_by_filename, "
                     "file_containing_symbol, file_containing_extension, "
                     "all_extension_numbers_of_type");
    }
}

static void answer_free(refl_answer *a)
{
    free(a->blobs);
    free(a->svc);
    free(a->svc_ptrs);
    free(a->numbers);
}

/* ---- handlers -------------------------------------------------------------- */

/* Sends a v1 response as is, or re-parsed as v1alpha. */
static int send_as(rh_call *call, const refl_response *resp, bool alpha)
{
    if (!alpha)
        return api->send(call, &resp->base);
    size_t n = grpc__reflection__v1__server_reflection_response__get_packed_size(resp);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return RH_E_NOMEM;
    grpc__reflection__v1__server_reflection_response__pack(resp, buf);
    Grpc__Reflection__V1alpha__ServerReflectionResponse *r =
        grpc__reflection__v1alpha__server_reflection_response__unpack(NULL, n, buf);
    free(buf);
    if (!r)
        return RH_E_NOMEM;
    int rc = api->send(call, &r->base);
    grpc__reflection__v1alpha__server_reflection_response__free_unpacked(r, NULL);
    return rc;
}

static void handle(rh_call *call, const refl_request *req, bool alpha)
{
    refl_pool *p = pool_get();
    if (!p) {
        api->finish(call, RH_RESOURCE_EXHAUSTED, "out of memory building the descriptor pool");
        return;
    }
    refl_answer a;
    memset(&a, 0, sizeof a);
    grpc__reflection__v1__server_reflection_response__init(&a.resp);
    a.resp.valid_host = req->host ? req->host : "";
    a.resp.original_request = (refl_request *)req;
    answer(&a, p, req);
    int rc = send_as(call, &a.resp, alpha);
    answer_free(&a);
    pool_unref(p);
    if (rc == RH_E_NOMEM)
        api->finish(call, RH_RESOURCE_EXHAUSTED, "out of memory sending a reflection answer");
}

static void on_message_v1(rh_call *call, const ProtobufCMessage *msg)
{
    handle(call, (const refl_request *)msg, false);
}

static void on_message_v1alpha(rh_call *call, const ProtobufCMessage *msg)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(n ? n : 1);
    refl_request *req = NULL;
    if (buf) {
        protobuf_c_message_pack(msg, buf);
        req = grpc__reflection__v1__server_reflection_request__unpack(NULL, n, buf);
        free(buf);
    }
    if (!req) {
        api->finish(call, RH_RESOURCE_EXHAUSTED, "out of memory reading a reflection request");
        return;
    }
    handle(call, req, true);
    grpc__reflection__v1__server_reflection_request__free_unpacked(req, NULL);
}

static void on_half_close(rh_call *call)
{
    api->finish(call, RH_OK, NULL);
}

static const rh_method methods_v1[] = {
    {.name = "ServerReflectionInfo", .on_message = on_message_v1, .on_half_close = on_half_close},
};
static const rh_method methods_v1alpha[] = {
    {.name = "ServerReflectionInfo", .on_message = on_message_v1alpha,
     .on_half_close = on_half_close},
};
static const rh_service services[] = {
    {&grpc__reflection__v1__server_reflection__descriptor, methods_v1},
    {&grpc__reflection__v1alpha__server_reflection__descriptor, methods_v1alpha},
};

static int refl_init(const rh_host_api *host, rh_plugin_ctx *ctx)
{
    api = host;
    refl_ctx = ctx;
    return 0;
}

static void refl_fini(rh_plugin_ctx *ctx)
{
    (void)ctx;
    pthread_mutex_lock(&cache.lock);
    refl_pool *p = cache.current;
    cache.current = NULL;
    pthread_mutex_unlock(&cache.lock);
    pool_unref(p);
}

static const rh_plugin_descriptor reflection_descriptor = {
    .abi = RH_ABI_BLOCK_INIT("reflection", RPCHOST_VERSION),
    .services = services,
    .n_services = sizeof services / sizeof *services,
    .descriptor_set = rh_descriptor_set,
    .descriptor_set_len = sizeof rh_descriptor_set,
    .init = refl_init,
    .fini = refl_fini,
};

const rh_plugin_descriptor *builtin_reflection(void)
{
    return &reflection_descriptor;
}
