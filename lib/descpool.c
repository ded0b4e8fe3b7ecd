/* descpool: placeholder until the implementation lands (API in descpool.h). */
#include "descpool.h"

#include <errno.h>
#include <stdlib.h>

struct descpool {
    int unused;
};

descpool *descpool_new(void) { return calloc(1, sizeof(descpool)); }
void descpool_free(descpool *pool) { free(pool); }
int descpool_add_set(descpool *pool, const uint8_t *data, size_t len)
{ (void)pool; (void)data; (void)len; return -ENOSYS; }
int descpool_add_file(descpool *pool, const uint8_t *data, size_t len)
{ (void)pool; (void)data; (void)len; return -ENOSYS; }
int descpool_add_set_file(descpool *pool, const char *path)
{ (void)pool; (void)path; return -ENOSYS; }
const char *descpool_error(const descpool *pool) { (void)pool; return "not implemented yet"; }
const descpool_symbol *descpool_find(const descpool *pool, const char *full_name)
{ (void)pool; (void)full_name; return NULL; }
const descpool_symbol *descpool_find_kind(const descpool *pool, const char *full_name,
                                          descpool_kind kind)
{ (void)pool; (void)full_name; (void)kind; return NULL; }
const descpool_symbol *descpool_find_method(const descpool *pool, const char *path)
{ (void)pool; (void)path; return NULL; }
const descpool_symbol *descpool_resolve(const descpool *pool, const char *scope,
                                        const char *type_name)
{ (void)pool; (void)scope; (void)type_name; return NULL; }
const descpool_symbol *descpool_symbol_of(const descpool *pool, const void *descriptor)
{ (void)pool; (void)descriptor; return NULL; }
const descpool_symbol *const *descpool_list(const descpool *pool, descpool_kind kind,
                                            size_t *n)
{ (void)pool; (void)kind; *n = 0; return NULL; }
const Google__Protobuf__FileDescriptorProto *descpool_file(const descpool *pool,
                                                           const char *name)
{ (void)pool; (void)name; return NULL; }
const Google__Protobuf__FileDescriptorProto *const *descpool_files(const descpool *pool,
                                                                   size_t *n)
{ (void)pool; *n = 0; return NULL; }
int descpool_file_closure(const descpool *pool,
                          const Google__Protobuf__FileDescriptorProto *file,
                          const Google__Protobuf__FileDescriptorProto ***out, size_t *n)
{ (void)pool; (void)file; *out = NULL; *n = 0; return -ENOSYS; }
const uint8_t *descpool_file_bytes(const descpool *pool,
                                   const Google__Protobuf__FileDescriptorProto *file,
                                   size_t *len)
{ (void)pool; (void)file; *len = 0; return NULL; }
const Google__Protobuf__FieldDescriptorProto *
descpool_field_by_number(const Google__Protobuf__DescriptorProto *msg, int32_t number)
{ (void)msg; (void)number; return NULL; }
const Google__Protobuf__FieldDescriptorProto *
descpool_field_by_name(const Google__Protobuf__DescriptorProto *msg, const char *name)
{ (void)msg; (void)name; return NULL; }
const Google__Protobuf__FieldDescriptorProto *
descpool_field_by_json_name(const Google__Protobuf__DescriptorProto *msg, const char *name)
{ (void)msg; (void)name; return NULL; }
char *descpool_json_name(const char *proto_name, char *buf, size_t size)
{ (void)proto_name; if (size) buf[0] = 0; return buf; }
int descpool_is_map_entry(const Google__Protobuf__DescriptorProto *msg)
{ (void)msg; return 0; }
