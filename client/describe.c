/* Rendering descriptors as .proto text (see describe.h). */
#include "describe.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

typedef Google__Protobuf__FieldDescriptorProto field_t;
typedef Google__Protobuf__DescriptorProto message_t;
typedef Google__Protobuf__EnumDescriptorProto enum_t;

static const char *scalar_name(int type)
{
    static const char *const names[] = {
        NULL, "double", "float", "int64", "uint64", "int32", "fixed64", "fixed32", "bool",
        "string", "group", NULL, "bytes", "uint32", NULL, "sfixed32", "sfixed64", "sint32",
        "sint64"};
    return type > 0 && type < (int)(sizeof(names) / sizeof(names[0])) ? names[type] : NULL;
}

static bool is_proto3(const Google__Protobuf__FileDescriptorProto *f)
{
    return f && f->syntax && strcmp(f->syntax, "proto3") == 0;
}

/* The type of a field as written in .proto ("int64", ".pkg.Msg"). */
static const char *type_text(const field_t *f)
{
    const char *s = scalar_name(f->type);
    if (s)
        return s;
    return f->type_name ? f->type_name : "?";
}

/* A map field's entry message (nested, map_entry), or NULL. */
static const message_t *map_entry_of(const descpool *pool, const message_t *m, const field_t *f)
{
    if (f->label != GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__LABEL__LABEL_REPEATED ||
        f->type != GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_MESSAGE || !f->type_name)
        return NULL;
    const descpool_symbol *s = descpool_find_kind(pool, f->type_name, DESCPOOL_MESSAGE);
    if (s && descpool_is_map_entry(s->u.message))
        return s->u.message;
    if (!m)
        return NULL;
    /* Not resolvable: look among the nested types by name. */
    const char *last = strrchr(f->type_name, '.');
    last = last ? last + 1 : f->type_name;
    for (size_t i = 0; i < m->n_nested_type; i++)
        if (strcmp(m->nested_type[i]->name, last) == 0 && descpool_is_map_entry(m->nested_type[i]))
            return m->nested_type[i];
    return NULL;
}

/* --- .proto comments (descriptor sets made with --include_source_info) ---
 * An element is named by its path in the FileDescriptorProto: field numbers
 * and indexes from the file down (service 2 = [6, 2]; its method 0 =
 * [6, 2, 2, 0]; message 1's field 3 = [4, 1, 2, 3]). */
#define PATH_MAX_DEPTH 64
enum {
    FILE_MESSAGE = 4, FILE_SERVICE = 6, /* FileDescriptorProto */
    MSG_FIELD = 2, MSG_NESTED = 3,      /* DescriptorProto */
    SVC_METHOD = 2                      /* ServiceDescriptorProto */
};

typedef struct src_path {
    const Google__Protobuf__FileDescriptorProto *file; /* NULL: no comments */
    int32_t v[PATH_MAX_DEPTH];
    size_t n;
} src_path;

static src_path path_root(const Google__Protobuf__FileDescriptorProto *f)
{
    src_path p = {.file = f && f->source_code_info ? f : NULL, .n = 0};
    return p;
}

static src_path path_child(const src_path *p, int32_t field, size_t index)
{
    src_path c = *p;
    if (!p->file || p->n + 2 > PATH_MAX_DEPTH) {
        c.file = NULL;
        return c;
    }
    c.v[c.n++] = field;
    c.v[c.n++] = (int32_t)index;
    return c;
}

/* Prints the leading comment of the element at p, each line as "// ...". */
static void print_comment(FILE *out, const src_path *p, int indent)
{
    if (!p->file || p->n == 0)
        return;
    const Google__Protobuf__SourceCodeInfo *si = p->file->source_code_info;
    for (size_t i = 0; i < si->n_location; i++) {
        const Google__Protobuf__SourceCodeInfo__Location *l = si->location[i];
        if (l->n_path != p->n || memcmp(l->path, p->v, p->n * sizeof(int32_t)) != 0)
            continue;
        const char *c = l->leading_comments;
        while (c && *c) {
            const char *nl = strchr(c, '\n');
            size_t len = nl ? (size_t)(nl - c) : strlen(c);
            fprintf(out, "%*s//%.*s\n", indent, "", (int)len, c);
            c += len + (nl ? 1 : 0);
        }
        return;
    }
}

/* Finds m among list (and their nested messages); *p becomes its path. */
static bool find_message(message_t *const *list, size_t count, const message_t *m,
                         int32_t field, src_path *p)
{
    for (size_t i = 0; i < count; i++) {
        src_path c = path_child(p, field, i);
        if (!c.file)
            return false;
        if (list[i] == m ||
            find_message(list[i]->nested_type, list[i]->n_nested_type, m, MSG_NESTED, &c)) {
            *p = c;
            return true;
        }
    }
    return false;
}

static src_path message_path(const Google__Protobuf__FileDescriptorProto *f, const message_t *m)
{
    src_path p = path_root(f);
    if (p.file && !find_message(f->message_type, f->n_message_type, m, FILE_MESSAGE, &p))
        p.file = NULL;
    return p;
}

static src_path service_path(const Google__Protobuf__FileDescriptorProto *f,
                             const Google__Protobuf__ServiceDescriptorProto *sv)
{
    src_path p = path_root(f);
    for (size_t i = 0; p.file && i < f->n_service; i++)
        if (f->service[i] == sv)
            return path_child(&p, FILE_SERVICE, i);
    p.file = NULL;
    return p;
}

static void print_field(FILE *out, const descpool *pool, const message_t *m, const field_t *f,
                        bool proto3, int indent, bool in_oneof)
{
    fprintf(out, "%*s", indent, "");
    const message_t *entry = map_entry_of(pool, m, f);
    if (entry && entry->n_field == 2) {
        fprintf(out, "map<%s, %s> %s = %d", type_text(entry->field[0]),
                type_text(entry->field[1]), f->name, f->number);
    } else {
        const char *label = "";
        if (f->label == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__LABEL__LABEL_REPEATED)
            label = "repeated ";
        else if (f->label == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__LABEL__LABEL_REQUIRED)
            label = "required ";
        else if (!in_oneof && (!proto3 || f->proto3_optional))
            label = "optional ";
        fprintf(out, "%s%s %s = %d", label, type_text(f), f->name, f->number);
    }
    bool opt = false;
    if (f->default_value) {
        fprintf(out, " [default = %s", f->default_value);
        opt = true;
    }
    if (f->json_name && !proto3) { /* proto3 json_name is always filled in by protoc */
        char camel[128];
        if (strcmp(descpool_json_name(f->name, camel, sizeof(camel)), f->json_name) != 0) {
            fprintf(out, "%sjson_name = \"%s\"", opt ? ", " : " [", f->json_name);
            opt = true;
        }
    }
    if (f->options && f->options->has_deprecated && f->options->deprecated) {
        fprintf(out, "%sdeprecated = true", opt ? ", " : " [");
        opt = true;
    }
    fprintf(out, "%s;\n", opt ? "]" : "");
}

static void print_enum(FILE *out, const enum_t *e, int indent)
{
    fprintf(out, "%*senum %s {\n", indent, "", e->name);
    for (size_t i = 0; i < e->n_value; i++)
        fprintf(out, "%*s%s = %d;\n", indent + 2, "", e->value[i]->name, e->value[i]->number);
    fprintf(out, "%*s}\n", indent, "");
}

static void print_message(FILE *out, const descpool *pool, const message_t *m, bool proto3,
                          int indent, const src_path *mp)
{
    print_comment(out, mp, indent);
    fprintf(out, "%*smessage %s {\n", indent, "", m->name);
    for (size_t i = 0; i < m->n_nested_type; i++)
        if (!descpool_is_map_entry(m->nested_type[i])) {
            src_path np = path_child(mp, MSG_NESTED, i);
            print_message(out, pool, m->nested_type[i], proto3, indent + 2, &np);
        }
    for (size_t i = 0; i < m->n_enum_type; i++)
        print_enum(out, m->enum_type[i], indent + 2);
    /* Fields in declaration order; the members of a real oneof together,
     * where its first member stands. */
    for (size_t i = 0; i < m->n_field; i++) {
        const field_t *f = m->field[i];
        bool real_oneof = f->has_oneof_index && !f->proto3_optional &&
                          f->oneof_index >= 0 && (size_t)f->oneof_index < m->n_oneof_decl;
        if (!real_oneof) {
            src_path fp = path_child(mp, MSG_FIELD, i);
            print_comment(out, &fp, indent + 2);
            print_field(out, pool, m, f, proto3, indent + 2, false);
            continue;
        }
        bool first = true;
        for (size_t k = 0; k < i; k++)
            if (m->field[k]->has_oneof_index && m->field[k]->oneof_index == f->oneof_index)
                first = false;
        if (!first)
            continue;
        fprintf(out, "%*soneof %s {\n", indent + 2, "", m->oneof_decl[f->oneof_index]->name);
        for (size_t k = i; k < m->n_field; k++)
            if (m->field[k]->has_oneof_index && m->field[k]->oneof_index == f->oneof_index &&
                !m->field[k]->proto3_optional) {
                src_path fp = path_child(mp, MSG_FIELD, k);
                print_comment(out, &fp, indent + 4);
                print_field(out, pool, m, m->field[k], proto3, indent + 4, true);
            }
        fprintf(out, "%*s}\n", indent + 2, "");
    }
    for (size_t i = 0; i < m->n_reserved_name; i++)
        fprintf(out, "%*sreserved \"%s\";\n", indent + 2, "", m->reserved_name[i]);
    for (size_t i = 0; i < m->n_reserved_range; i++) {
        const Google__Protobuf__DescriptorProto__ReservedRange *r = m->reserved_range[i];
        if (r->end - 1 == r->start)
            fprintf(out, "%*sreserved %d;\n", indent + 2, "", r->start);
        else
            fprintf(out, "%*sreserved %d to %d;\n", indent + 2, "", r->start, r->end - 1);
    }
    fprintf(out, "%*s}\n", indent, "");
}

static void print_method(FILE *out, const Google__Protobuf__MethodDescriptorProto *m, int indent)
{
    fprintf(out, "%*srpc %s ( %s%s ) returns ( %s%s );\n", indent, "", m->name,
            m->client_streaming ? "stream " : "", m->input_type,
            m->server_streaming ? "stream " : "", m->output_type);
}

int describe_symbol(FILE *out, const descpool *pool, const char *name)
{
    const descpool_symbol *s = descpool_find(pool, name);
    if (!s) {
        /* "Svc/Method" as used for calls */
        s = descpool_find_method(pool, name);
        if (!s)
            return -ENOENT;
    }
    bool p3 = is_proto3(s->file);
    const descpool_symbol *parent = s->parent;
    switch (s->kind) {
    case DESCPOOL_SERVICE: {
        const Google__Protobuf__ServiceDescriptorProto *sv = s->u.service;
        src_path sp = service_path(s->file, sv);
        fprintf(out, "%s is a service:\n", s->full_name);
        print_comment(out, &sp, 0);
        fprintf(out, "service %s {\n", sv->name);
        for (size_t i = 0; i < sv->n_method; i++) {
            src_path mp = path_child(&sp, SVC_METHOD, i);
            print_comment(out, &mp, 2);
            print_method(out, sv->method[i], 2);
        }
        fprintf(out, "}\n");
        return 0;
    }
    case DESCPOOL_METHOD: {
        fprintf(out, "%s is a method:\n", s->full_name);
        const Google__Protobuf__ServiceDescriptorProto *sv = parent ? parent->u.service : NULL;
        src_path sp = sv ? service_path(s->file, sv) : path_root(NULL);
        for (size_t i = 0; sv && i < sv->n_method; i++)
            if (sv->method[i] == s->u.method) {
                src_path mp = path_child(&sp, SVC_METHOD, i);
                print_comment(out, &mp, 0);
            }
        print_method(out, s->u.method, 0);
        return 0;
    }
    case DESCPOOL_MESSAGE: {
        fprintf(out, "%s is a message:\n", s->full_name);
        src_path mp = message_path(s->file, s->u.message);
        print_message(out, pool, s->u.message, p3, 0, &mp);
        return 0;
    }
    case DESCPOOL_ENUM:
        fprintf(out, "%s is an enum:\n", s->full_name);
        print_enum(out, s->u.enum_type, 0);
        return 0;
    case DESCPOOL_FIELD:
        fprintf(out, "%s is a field:\n", s->full_name);
        print_field(out, pool, parent ? parent->u.message : NULL, s->u.field, p3, 0,
                    s->u.field->has_oneof_index && !s->u.field->proto3_optional);
        return 0;
    case DESCPOOL_ONEOF: {
        fprintf(out, "%s is a oneof:\noneof %s {\n", s->full_name, s->name);
        const message_t *m = parent ? parent->u.message : NULL;
        for (size_t i = 0; m && i < m->n_oneof_decl; i++) {
            if (m->oneof_decl[i] != s->u.oneof)
                continue;
            for (size_t k = 0; k < m->n_field; k++)
                if (m->field[k]->has_oneof_index && m->field[k]->oneof_index == (int32_t)i)
                    print_field(out, pool, m, m->field[k], p3, 2, true);
        }
        fprintf(out, "}\n");
        return 0;
    }
    case DESCPOOL_ENUM_VALUE:
        fprintf(out, "%s is an enum value:\n%s = %d;\n", s->full_name, s->u.enum_value->name,
                s->u.enum_value->number);
        return 0;
    case DESCPOOL_PACKAGE:
        fprintf(out, "%s is a package (of %s)\n", s->full_name,
                s->file && s->file->name ? s->file->name : "?");
        return 0;
    default:
        return -ENOENT;
    }
}
