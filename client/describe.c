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
                          int indent)
{
    fprintf(out, "%*smessage %s {\n", indent, "", m->name);
    for (size_t i = 0; i < m->n_nested_type; i++)
        if (!descpool_is_map_entry(m->nested_type[i]))
            print_message(out, pool, m->nested_type[i], proto3, indent + 2);
    for (size_t i = 0; i < m->n_enum_type; i++)
        print_enum(out, m->enum_type[i], indent + 2);
    /* Fields in declaration order; the members of a real oneof together,
     * where its first member stands. */
    for (size_t i = 0; i < m->n_field; i++) {
        const field_t *f = m->field[i];
        bool real_oneof = f->has_oneof_index && !f->proto3_optional &&
                          f->oneof_index >= 0 && (size_t)f->oneof_index < m->n_oneof_decl;
        if (!real_oneof) {
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
                !m->field[k]->proto3_optional)
                print_field(out, pool, m, m->field[k], proto3, indent + 4, true);
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
        fprintf(out, "%s is a service:\nservice %s {\n", s->full_name, sv->name);
        for (size_t i = 0; i < sv->n_method; i++)
            print_method(out, sv->method[i], 2);
        fprintf(out, "}\n");
        return 0;
    }
    case DESCPOOL_METHOD:
        fprintf(out, "%s is a method:\n", s->full_name);
        print_method(out, s->u.method, 0);
        return 0;
    case DESCPOOL_MESSAGE:
        fprintf(out, "%s is a message:\n", s->full_name);
        print_message(out, pool, s->u.message, p3, 0);
        return 0;
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
