/* Plugin files -> loaded private copies. See loader.h for why a copy. */
#define _GNU_SOURCE
#include "registry/loader.h"
#include "registry/trust.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Reads the whole file; *buf is malloc'ed. The size is taken from fstat
 * and a file that shrinks or grows while we read is refused (a writer is
 * still busy: we will see its close-after-write later). */
static int read_file(const char *path, uint8_t **buf, struct stat *st, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open: %s", strerror(errno));
        return -errno;
    }
    int rc = 0;
    uint8_t *data = NULL;
    if (fstat(fd, st) < 0) {
        rc = -errno;
        snprintf(err, errlen, "cannot stat: %s", strerror(errno));
        goto out;
    }
    if (!S_ISREG(st->st_mode)) {
        rc = -EINVAL;
        snprintf(err, errlen, "not a regular file");
        goto out;
    }
    if (st->st_size == 0) {
        rc = -ENOEXEC;
        snprintf(err, errlen, "empty file (not a shared object)");
        goto out;
    }
    if ((uint64_t)st->st_size > LOADER_MAX_FILE) {
        rc = -EFBIG;
        snprintf(err, errlen, "file of %lld bytes is larger than the %u MiB limit",
                 (long long)st->st_size, LOADER_MAX_FILE >> 20);
        goto out;
    }
    size_t size = (size_t)st->st_size, got = 0;
    data = malloc(size + 1);
    if (!data) {
        rc = -ENOMEM;
        snprintf(err, errlen, "out of memory reading %zu bytes", size);
        goto out;
    }
    /* Read one byte past the size: a file still growing is caught too. */
    while (got < size + 1) {
        ssize_t n = read(fd, data + got, size + 1 - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            rc = -errno;
            snprintf(err, errlen, "read failed: %s", strerror(errno));
            goto out;
        }
        if (n == 0) break;
        got += (size_t)n;
    }
    if (got != size) {
        rc = -EAGAIN;
        snprintf(err, errlen, "file changed size while being read (still being written?)");
        goto out;
    }
out:
    close(fd);
    if (rc < 0) {
        free(data);
        data = NULL;
    }
    *buf = data;
    return rc;
}

static int write_copy(const char *path, const uint8_t *data, size_t size, char *err,
                      size_t errlen)
{
    const char *base = strrchr(path, '/');
    char name[80];
    snprintf(name, sizeof name, "rpchost:%s", base ? base + 1 : path);
    int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) {
        snprintf(err, errlen, "memfd_create failed: %s", strerror(errno));
        return -errno;
    }
    size_t off = 0;
    while (off < size) {
        ssize_t n = write(fd, data + off, size - off);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int e = errno;
            snprintf(err, errlen, "writing the private copy failed: %s", strerror(e));
            close(fd);
            return -e;
        }
        off += (size_t)n;
    }
    /* The copy is what we checked: nobody may change it from now on. */
    (void)fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
    return fd;
}

const char *loader_unload_blocker(const loader_image *img)
{
    if (img->elf.nodelete) return "marked NODELETE (-z nodelete)";
    if (img->elf.unique_symbols) return "defines GNU unique symbols";
    return NULL;
}

static bool same_identity(const rh_abi_block *a, const rh_abi_block *b)
{
    return a->magic == b->magic && a->abi_major == b->abi_major &&
           a->abi_minor == b->abi_minor && a->descriptor_size == b->descriptor_size &&
           strncmp(a->name, b->name, sizeof a->name) == 0 &&
           strncmp(a->version, b->version, sizeof a->version) == 0;
}

/* FNV-1a over the whole file: the build's identity for crash counts and
 * quarantine (a file rewritten with the same bytes is the same build). */
static uint64_t content_hash(const uint8_t *data, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= data[i];
        h *= 1099511628211ull;
    }
    return h;
}

int loader_read(const char *path, const char *source, loader_image *img, char *err,
                size_t errlen)
{
    memset(img, 0, sizeof *img);
    img->memfd = -1;
    uint8_t *data = NULL;
    /* Nothing is read from a file others could have written (a kept copy
     * after a restart was checked when it was first read). */
    if (!source && trust_policy_check_file(path, err, errlen) < 0) return -EPERM;
    int rc = read_file(source ? source : path, &data, &img->st, err, errlen);
    if (rc < 0) return rc;
    snprintf(img->build_key, sizeof img->build_key, "%016llx",
             (unsigned long long)content_hash(data, (size_t)img->st.st_size));
    rc = elfnote_parse(data, (size_t)img->st.st_size, &img->elf, err, errlen);
    if (rc == 0) rc = elfnote_check_abi(&img->elf.abi, err, errlen);
    if (rc == 0 && !img->elf.has_entry) {
        snprintf(err, errlen,
                 "exports no '%s' function: define it with RPCHOST_PLUGIN_DEFINE",
                 RPCHOST_PLUGIN_SYMBOL);
        rc = -ENOENT;
    }
    if (rc == 0) {
        rc = write_copy(path, data, (size_t)img->st.st_size, err, errlen);
        if (rc >= 0) img->memfd = rc, rc = 0;
    }
    free(data);
    return rc;
}

int loader_open(const char *path, loader_image *img, char *err, size_t errlen)
{
    int rc = loader_read(path, NULL, img, err, errlen);
    return rc < 0 ? rc : loader_link(img, err, errlen);
}

int loader_link(loader_image *img, char *err, size_t errlen)
{
    int rc = 0;
    snprintf(img->copy_path, sizeof img->copy_path, "/proc/self/fd/%d", img->memfd);
    dlerror();
    img->handle = dlopen(img->copy_path, RTLD_NOW | RTLD_LOCAL);
    if (!img->handle) {
        const char *why = dlerror();
        snprintf(err, errlen, "dlopen failed: %s", why ? why : "unknown error");
        close(img->memfd);
        img->memfd = -1;
        return -ENOEXEC;
    }
    rh_plugin_entry_fn entry;
    *(void **)&entry = dlsym(img->handle, RPCHOST_PLUGIN_SYMBOL);
    const rh_plugin_descriptor *d = entry ? entry() : NULL;
    if (!entry) {
        snprintf(err, errlen, "exports no '%s' symbol: define it with RPCHOST_PLUGIN_DEFINE",
                 RPCHOST_PLUGIN_SYMBOL);
        rc = -ENOENT;
    } else if (!d) {
        snprintf(err, errlen, "%s() returned NULL", RPCHOST_PLUGIN_SYMBOL);
        rc = -EINVAL;
    } else if (d->abi.magic == 0 && img->elf.abi.abi_minor >= 2) {
        /* RPCHOST_PLUGIN: the identity is written once, in the note. */
    } else if (!same_identity(&d->abi, &img->elf.abi)) {
        snprintf(err, errlen,
                 "the descriptor's identity block (%.*s %.*s, ABI %u.%u, size %u) differs from "
                 "its ELF note (%s %s, ABI %u.%u, size %u): use RPCHOST_PLUGIN_NOTE with the "
                 "same name and version as RH_ABI_BLOCK_INIT",
                 RH_NAME_MAX - 1, d->abi.name, RH_VERSION_MAX - 1, d->abi.version,
                 d->abi.abi_major, d->abi.abi_minor, d->abi.descriptor_size, img->elf.abi.name,
                 img->elf.abi.version, img->elf.abi.abi_major, img->elf.abi.abi_minor,
                 img->elf.abi.descriptor_size);
        rc = -EPROTO;
    }
    if (rc < 0) {
        char why[8];
        loader_close(img, why, sizeof why);
        return rc;
    }
    img->plugin_desc = d;
    /* The note's size: it equals the descriptor's when both carry one. */
    size_t n = img->elf.abi.descriptor_size;
    if (n > sizeof img->desc) n = sizeof img->desc;
    memcpy(&img->desc, d, n);
    img->desc.abi = img->elf.abi;
    return 0;
}

bool loader_close(loader_image *img, char *why, size_t whylen)
{
    if (why && whylen) why[0] = '\0';
    if (!img->handle) {
        if (img->memfd >= 0) close(img->memfd);
        img->memfd = -1;
        return true;
    }
    dlclose(img->handle);
    img->handle = NULL;
    /* The truth about unloading is whether the object is still there. */
    void *still = dlopen(img->copy_path, RTLD_NOW | RTLD_NOLOAD | RTLD_LOCAL);
    if (still) {
        dlclose(still);
        const char *blocker = loader_unload_blocker(img);
        if (why)
            snprintf(why, whylen, "stays mapped after dlclose (%s); its copy %s is kept open",
                     blocker ? blocker
                             : "thread-local destructors, threads left running, or another "
                               "object depends on it",
                     img->copy_path);
        return false; /* keep memfd: the name must never be reused */
    }
    close(img->memfd);
    img->memfd = -1;
    return true;
}
