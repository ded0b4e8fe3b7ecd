/* Plugin descriptor -> routes and interceptor entries (see reg_routes.h). */
#define _GNU_SOURCE
#include "registry/reg_routes.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "google/protobuf/descriptor.pb-c.h"
#include "metrics/metrics.h"

static const Google__Protobuf__ServiceDescriptorProto *
find_service_proto(const Google__Protobuf__FileDescriptorSet *set, const char *full)
{
    for (size_t i = 0; i < set->n_file; i++) {
        const Google__Protobuf__FileDescriptorProto *f = set->file[i];
        size_t plen = f->package ? strlen(f->package) : 0;
        for (size_t j = 0; j < f->n_service; j++) {
            const char *sname = f->service[j]->name;
            if (!sname) continue;
            if (plen ? (strncmp(full, f->package, plen) == 0 && full[plen] == '.' &&
                        strcmp(full + plen + 1, sname) == 0)
                     : strcmp(full, sname) == 0)
                return f->service[j];
        }
    }
    return NULL;
}

int reg_routes_build(const rh_plugin_descriptor *d, reg_instance *inst, const char *name,
                     reg_routes *out, char *why, size_t whylen)
{
    memset(out, 0, sizeof *out);
    if (d->n_services > REG_MAX_SERVICES || d->n_interceptors > REG_MAX_INTERCEPTORS) {
        snprintf(why, whylen, "declares %zu services and %zu interceptors (limits %d and %d)",
                 d->n_services, d->n_interceptors, REG_MAX_SERVICES, REG_MAX_INTERCEPTORS);
        return -EINVAL;
    }
    if ((d->n_services && !d->services) || (d->n_interceptors && !d->interceptors)) {
        snprintf(why, whylen, "descriptor has a count without its array");
        return -EINVAL;
    }
    size_t total = 0;
    for (size_t s = 0; s < d->n_services; s++) {
        const ProtobufCServiceDescriptor *sd = d->services[s].descriptor;
        if (!sd || sd->magic != PROTOBUF_C__SERVICE_DESCRIPTOR_MAGIC || !sd->name) {
            snprintf(why, whylen, "service %zu has no valid ProtobufCServiceDescriptor", s);
            return -EINVAL;
        }
        if (sd->n_methods && !d->services[s].methods) {
            snprintf(why, whylen, "service %s has no method table", sd->name);
            return -EINVAL;
        }
        total += sd->n_methods;
    }
    if (total > REG_MAX_METHODS) {
        snprintf(why, whylen, "declares %zu methods (limit %d)", total, REG_MAX_METHODS);
        return -EINVAL;
    }
    Google__Protobuf__FileDescriptorSet *set = NULL;
    if (d->n_services) {
        if (!d->descriptor_set || d->descriptor_set_len == 0) {
            snprintf(why, whylen, "has no embedded descriptor set: build it with "
                                  "rpchost_add_plugin (it embeds the set)");
            return -EINVAL;
        }
        set = google__protobuf__file_descriptor_set__unpack(NULL, d->descriptor_set_len,
                                                             d->descriptor_set);
        if (!set) {
            snprintf(why, whylen, "its embedded descriptor set does not decode");
            return -EINVAL;
        }
    }
    int rc = 0;
    out->routes = calloc(total ? total : 1, sizeof *out->routes);
    out->icpts = calloc(d->n_interceptors ? d->n_interceptors : 1, sizeof *out->icpts);
    if (!out->routes || !out->icpts) {
        snprintf(why, whylen, "out of memory");
        rc = -ENOMEM;
        goto out;
    }
    for (size_t s = 0; s < d->n_services && rc == 0; s++) {
        const ProtobufCServiceDescriptor *sd = d->services[s].descriptor;
        const Google__Protobuf__ServiceDescriptorProto *sp = find_service_proto(set, sd->name);
        if (!sp) {
            snprintf(why, whylen, "service %s is not in its embedded descriptor set", sd->name);
            rc = -EINVAL;
            break;
        }
        for (unsigned m = 0; m < sd->n_methods; m++) {
            const rh_method *hm = &d->services[s].methods[m];
            const ProtobufCMethodDescriptor *md = &sd->methods[m];
            if (!hm->name || strcmp(hm->name, md->name) != 0 || !hm->on_message) {
                snprintf(why, whylen,
                         "service %s: handler %u is '%s' but the descriptor's method %u is '%s' "
                         "(methods must be in descriptor order, each with on_message)",
                         sd->name, m, hm->name ? hm->name : "(null)", m, md->name);
                rc = -EINVAL;
                break;
            }
            const Google__Protobuf__MethodDescriptorProto *mp = NULL;
            for (size_t k = 0; k < sp->n_method; k++)
                if (sp->method[k]->name && strcmp(sp->method[k]->name, md->name) == 0)
                    mp = sp->method[k];
            if (!mp) {
                snprintf(why, whylen, "method %s/%s is not in its embedded descriptor set",
                         sd->name, md->name);
                rc = -EINVAL;
                break;
            }
            reg_route *r = &out->routes[out->n_routes];
            char *path;
            if (asprintf(&path, "/%s/%s", sd->name, md->name) < 0) {
                snprintf(why, whylen, "out of memory");
                rc = -ENOMEM;
                break;
            }
            for (size_t k = 0; k < out->n_routes; k++)
                if (strcmp(out->routes[k].path, path) == 0) {
                    snprintf(why, whylen, "declares method path %s twice", path);
                    rc = -EINVAL;
                }
            r->path = path;
            r->path_len = strlen(path);
            r->instance = inst;
            r->method = hm;
            r->input = md->input;
            r->output = md->output;
            r->client_streaming = mp->has_client_streaming && mp->client_streaming;
            r->server_streaming = mp->has_server_streaming && mp->server_streaming;
            r->mx = mx_grpc_method(path, r->client_streaming, r->server_streaming);
            out->n_routes++;
            if (rc) break;
        }
    }
    for (size_t i = 0; i < d->n_interceptors && rc == 0; i++) {
        const rh_interceptor *ic = &d->interceptors[i];
        if (!ic->name || !*ic->name || !ic->on_start) {
            snprintf(why, whylen, "interceptor %zu needs a name and on_start", i);
            rc = -EINVAL;
            break;
        }
        char *full;
        if (asprintf(&full, "%s.%s", name, ic->name) < 0) {
            snprintf(why, whylen, "out of memory");
            rc = -ENOMEM;
            break;
        }
        for (size_t k = 0; k < out->n_icpts; k++)
            if (strcmp(out->icpts[k].full_name, full) == 0) {
                snprintf(why, whylen, "declares interceptor %s twice", full);
                rc = -EINVAL;
            }
        out->icpts[out->n_icpts].instance = inst;
        out->icpts[out->n_icpts].interceptor = ic;
        out->icpts[out->n_icpts].full_name = full;
        out->n_icpts++;
    }
out:
    if (set) google__protobuf__file_descriptor_set__free_unpacked(set, NULL);
    return rc;
}

void reg_routes_free(reg_routes *r)
{
    for (size_t i = 0; i < r->n_routes; i++) free((char *)r->routes[i].path);
    free(r->routes);
    for (size_t i = 0; i < r->n_icpts; i++) free((char *)r->icpts[i].full_name);
    free(r->icpts);
    memset(r, 0, sizeof *r);
}
