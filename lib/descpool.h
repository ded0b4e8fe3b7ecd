/* descpool: a descriptor pool built from serialized
 * google.protobuf.FileDescriptorSet (or single FileDescriptorProto) blobs,
 * as embedded in plugins, returned by server reflection or read from a
 * --protoset file.
 *
 * The pool indexes every file by name and every symbol by its full name
 * (packages, services, methods, messages, enums, enum values, fields and
 * nested types), resolves type names, gives a file with its dependency
 * closure, and hands back each file serialized (reflection answers with
 * serialized FileDescriptorProtos).
 *
 * Ownership: the pool owns everything it returns; pointers stay valid until
 * descpool_free(). Adding never moves an existing symbol or file.
 * Threading: building is single-threaded; a pool that is no longer modified
 * may be read from any number of threads.
 *
 * Full names are written without a leading dot ("pkg.Msg.Inner"); every
 * lookup also accepts the leading-dot form used in type_name fields
 * (".pkg.Msg.Inner"). Messages, enums and services of a file without a
 * package have no prefix at all ("Rides", "StartRequest").
 */
#ifndef RPCHOST_LIB_DESCPOOL_H
#define RPCHOST_LIB_DESCPOOL_H

#include <stddef.h>
#include <stdint.h>
#include "google/protobuf/descriptor.pb-c.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct descpool descpool;

typedef enum descpool_kind {
    DESCPOOL_NONE = 0,
    DESCPOOL_PACKAGE,    /* "grpc.health.v1": no descriptor, only file */
    DESCPOOL_MESSAGE,
    DESCPOOL_FIELD,      /* "pkg.Msg.field" */
    DESCPOOL_ONEOF,      /* "pkg.Msg.oneof_name" */
    DESCPOOL_ENUM,
    DESCPOOL_ENUM_VALUE, /* C++ scoping: "pkg.VALUE" for a top-level enum */
    DESCPOOL_SERVICE,
    DESCPOOL_METHOD,     /* "pkg.Service.Method" */
    DESCPOOL_KIND_COUNT
} descpool_kind;

typedef struct descpool_symbol descpool_symbol;
struct descpool_symbol {
    descpool_kind kind;
    const char *full_name; /* no leading dot */
    const char *name;      /* last component */
    /* The file that defines it. */
    const Google__Protobuf__FileDescriptorProto *file;
    /* The enclosing message (nested messages/enums, fields, oneofs), enum
     * (enum values) or service (methods); NULL at file level. */
    const descpool_symbol *parent;
    union {
        const Google__Protobuf__DescriptorProto *message;
        const Google__Protobuf__FieldDescriptorProto *field;
        const Google__Protobuf__OneofDescriptorProto *oneof;
        const Google__Protobuf__EnumDescriptorProto *enum_type;
        const Google__Protobuf__EnumValueDescriptorProto *enum_value;
        const Google__Protobuf__ServiceDescriptorProto *service;
        const Google__Protobuf__MethodDescriptorProto *method;
        const void *any;
    } u;
};

/* --- building ---------------------------------------------------------- */

descpool *descpool_new(void);
void descpool_free(descpool *pool);

/* Adds every file of a serialized FileDescriptorSet (data is copied).
 * A file whose name is already in the pool is skipped (the same
 * google/protobuf/timestamp.proto comes with every plugin); a symbol that
 * is already defined by another file is kept as first defined.
 * Returns 0, -EINVAL if data is not a FileDescriptorSet (the reason is in
 * descpool_error(); files before the bad spot stay added), -ENOMEM. */
int descpool_add_set(descpool *pool, const uint8_t *data, size_t len);
/* Adds one serialized FileDescriptorProto (as in a reflection response).
 * Same rules and return codes as descpool_add_set. */
int descpool_add_file(descpool *pool, const uint8_t *data, size_t len);
/* Reads a file holding a serialized FileDescriptorSet (protoc
 * --descriptor_set_out) and adds it. -errno from open/read, or as above. */
int descpool_add_set_file(descpool *pool, const char *path);

/* The reason of the last failure, one line ("" if none). Valid until the
 * next call on the pool. */
const char *descpool_error(const descpool *pool);

/* --- lookups ----------------------------------------------------------- */

/* Any symbol by full name (leading dot optional); NULL if absent. */
const descpool_symbol *descpool_find(const descpool *pool, const char *full_name);
/* The same, only if it is of the given kind. */
const descpool_symbol *descpool_find_kind(const descpool *pool, const char *full_name,
                                          descpool_kind kind);
/* A method by "pkg.Service/Method", "pkg.Service.Method" or
 * "/pkg.Service/Method". NULL if absent. */
const descpool_symbol *descpool_find_method(const descpool *pool, const char *path);

/* Resolves a type name as written in a FieldDescriptorProto.type_name or a
 * method's input/output type, relative to `scope` (the full name of the
 * message or file package the reference appears in; NULL = root), with
 * protobuf's scoping rules (innermost scope first). A name starting with a
 * dot is fully qualified. Returns the message or enum symbol, or NULL. */
const descpool_symbol *descpool_resolve(const descpool *pool, const char *scope,
                                        const char *type_name);

/* The symbol of a message/enum/service descriptor held by the pool
 * (reverse lookup), NULL if it is not one of the pool's. */
const descpool_symbol *descpool_symbol_of(const descpool *pool, const void *descriptor);

/* Every symbol of a kind, in the order added. *n gets the count; the array
 * is owned by the pool and valid until the next add. */
const descpool_symbol *const *descpool_list(const descpool *pool, descpool_kind kind,
                                            size_t *n);

/* --- files ------------------------------------------------------------- */

/* A file by its name ("google/protobuf/timestamp.proto"); NULL if absent. */
const Google__Protobuf__FileDescriptorProto *descpool_file(const descpool *pool,
                                                           const char *name);
/* Every file, in the order added. */
const Google__Protobuf__FileDescriptorProto *const *descpool_files(const descpool *pool,
                                                                   size_t *n);
/* The file and the transitive closure of its dependencies, dependencies
 * first, the file itself last, each once. *out is a malloc'd array of
 * *n pointers (the caller frees the array, not the files). A dependency
 * missing from the pool is left out and reported with -ENOENT after
 * filling what it could (*out is still set). 0, -ENOENT, -ENOMEM. */
int descpool_file_closure(const descpool *pool,
                          const Google__Protobuf__FileDescriptorProto *file,
                          const Google__Protobuf__FileDescriptorProto ***out, size_t *n);
/* The file serialized as a FileDescriptorProto (owned by the pool, exactly
 * the bytes it was added with for files that came from a set). NULL if
 * the file is not the pool's. */
const uint8_t *descpool_file_bytes(const descpool *pool,
                                   const Google__Protobuf__FileDescriptorProto *file,
                                   size_t *len);

/* --- message helpers (used by JSON transcoding and rpcall describe) ---- */

/* The field of a message with a number / proto name / json name
 * (json_name from the descriptor or lowerCamelCase of the name). */
const Google__Protobuf__FieldDescriptorProto *
descpool_field_by_number(const Google__Protobuf__DescriptorProto *msg, int32_t number);
const Google__Protobuf__FieldDescriptorProto *
descpool_field_by_name(const Google__Protobuf__DescriptorProto *msg, const char *name);
/* Accepts the JSON name or the proto name, as the proto3 JSON mapping says. */
const Google__Protobuf__FieldDescriptorProto *
descpool_field_by_json_name(const Google__Protobuf__DescriptorProto *msg, const char *name);
/* Writes the lowerCamelCase JSON name of a proto field name ("car_id" ->
 * "carId") into buf (truncated, always NUL-terminated); returns buf. */
char *descpool_json_name(const char *proto_name, char *buf, size_t size);
/* True if the message is a synthesized map entry (options.map_entry). */
int descpool_is_map_entry(const Google__Protobuf__DescriptorProto *msg);

#ifdef __cplusplus
}
#endif
#endif /* RPCHOST_LIB_DESCPOOL_H */
