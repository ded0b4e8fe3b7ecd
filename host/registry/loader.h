/* Loading one plugin file: read it once into memory, check its ELF note
 * (nothing of it runs before that), copy it into a private memfd and
 * dlopen that copy through /proc/self/fd/N. A private copy per load means a
 * file replaced at the same path really brings new code (glibc would hand
 * back the already-loaded object for the same name or inode), and the fd
 * stays open while the copy is loaded so the name is never reused.
 * Owner: loader.c. */
#ifndef RPCHOST_HOST_LOADER_H
#define RPCHOST_HOST_LOADER_H

#include <stdbool.h>
#include <sys/stat.h>
#include "registry/elfnote.h"
#include "rpchost/plugin.h"

/* Largest plugin file accepted. */
#define LOADER_MAX_FILE (256u << 20)

typedef struct loader_image {
    void *handle;               /* dlopen handle of the private copy */
    int memfd;                  /* the copy; open while it is mapped */
    char copy_path[40];         /* "/proc/self/fd/N" */
    elf_info elf;               /* note, entry, unload blockers */
    const rh_plugin_descriptor *plugin_desc; /* as returned by the plugin */
    rh_plugin_descriptor desc;  /* host copy, zero-filled past descriptor_size */
    struct stat st;             /* the source file as it was read */
    char build_key[17];         /* hash of the file's bytes, hex: the build's identity */
} loader_image;

/* Loads path into img. 0, or a negative code with one sentence in err
 * (what failed and what to do; the caller adds the file name). */
int loader_open(const char *path, loader_image *img, char *err, size_t errlen);

/* loader_open in two steps, so a caller can look at the build (note,
 * build_key) before any of its code runs: loader_read reads source (or
 * path if NULL: a kept private copy is read through its /proc/self/fd
 * name) into img's private memfd copy named after path; loader_link then
 * dlopens it. On a loader_link failure the copy is closed; after a
 * loader_read success that is not linked, call loader_close. */
int loader_read(const char *path, const char *source, loader_image *img, char *err,
                size_t errlen);
int loader_link(loader_image *img, char *err, size_t errlen);

/* dlclose()s the copy and checks that it is really gone. Returns true if it
 * was unloaded; false if the object stayed mapped (NODELETE, unique
 * symbols, thread-local destructors, ...): then the memfd is deliberately
 * kept open so that its /proc/self/fd name is never reused, and why holds
 * the reason. */
bool loader_close(loader_image *img, char *why, size_t whylen);

/* Why an image will not be unloadable, from its ELF flags, or NULL. */
const char *loader_unload_blocker(const loader_image *img);

#endif
