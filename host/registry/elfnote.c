/* ELF64 reading for the loader: everything is bounds-checked against the
 * buffer (a plugin file is untrusted input until it passed these checks and
 * dlopen). Only the native class, byte order and machine are accepted,
 * since anything else could not be loaded anyway. */
#include "registry/elfnote.h"

#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#if defined(__x86_64__)
#define NATIVE_MACHINE EM_X86_64
#elif defined(__aarch64__)
#define NATIVE_MACHINE EM_AARCH64
#elif defined(__riscv) && __riscv_xlen == 64
#define NATIVE_MACHINE EM_RISCV
#else
#error "rpchost: add this machine's ELF e_machine here"
#endif

#ifndef STB_GNU_UNIQUE
#define STB_GNU_UNIQUE 10
#endif

/* [off, off+size) lies inside a buffer of len bytes (no overflow). */
static bool in_bounds(size_t len, uint64_t off, uint64_t size)
{
    return off <= len && size <= len - off;
}

static size_t align4(size_t n) { return (n + 3) & ~(size_t)3; }

typedef struct elf_view {
    const uint8_t *data;
    size_t len;
    Elf64_Ehdr eh;
    uint64_t shnum;
    uint64_t shstrndx;
} elf_view;

static bool section_at(const elf_view *v, uint64_t i, Elf64_Shdr *out)
{
    if (i >= v->shnum) return false;
    memcpy(out, v->data + v->eh.e_shoff + i * sizeof(Elf64_Shdr), sizeof *out);
    return true;
}

/* The GNU build id (NT_GNU_BUILD_ID), as lower-case hex: crash reports
 * name it so a build can be matched with its debug symbols. */
static void take_build_id(const uint8_t *desc, size_t descsz, elf_info *out)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = descsz < (sizeof out->build_id - 1) / 2 ? descsz : (sizeof out->build_id - 1) / 2;
    for (size_t i = 0; i < n; i++) {
        out->build_id[2 * i] = hex[desc[i] >> 4];
        out->build_id[2 * i + 1] = hex[desc[i] & 15];
    }
    out->build_id[2 * n] = '\0';
}

/* Looks for our note (and the GNU build id) in one SHT_NOTE section.
 * 1 our note found, 0 not, <0 corrupt. */
static int scan_notes(const elf_view *v, const Elf64_Shdr *sh, elf_info *out, char *err,
                      size_t errlen)
{
    if (!in_bounds(v->len, sh->sh_offset, sh->sh_size)) {
        snprintf(err, errlen, "corrupt ELF file: a note section lies outside the file");
        return -ENOEXEC;
    }
    const uint8_t *p = v->data + sh->sh_offset;
    size_t size = sh->sh_size, off = 0;
    int found = 0;
    while (size - off >= 12) {
        uint32_t namesz, descsz, type;
        memcpy(&namesz, p + off, 4);
        memcpy(&descsz, p + off + 4, 4);
        memcpy(&type, p + off + 8, 4);
        size_t name_off = off + 12;
        if (namesz > size - name_off) break;
        size_t desc_off = name_off + align4(namesz);
        if (desc_off > size || descsz > size - desc_off) break;
        if (namesz == sizeof(RH_NOTE_NAME) &&
            memcmp(p + name_off, RH_NOTE_NAME, sizeof(RH_NOTE_NAME)) == 0 &&
            type == RH_NOTE_TYPE) {
            if (descsz < sizeof(rh_abi_block)) {
                snprintf(err, errlen,
                         "the rpchost ELF note is %u bytes, expected %zu: rebuild the plugin "
                         "against rpchost ABI %d.x",
                         descsz, sizeof(rh_abi_block), RPCHOST_ABI_MAJOR);
                return -ENOEXEC;
            }
            memcpy(&out->abi, p + desc_off, sizeof out->abi);
            found = 1;
        } else if (namesz == 4 && memcmp(p + name_off, "GNU", 4) == 0 &&
                   type == NT_GNU_BUILD_ID && descsz > 0) {
            take_build_id(p + desc_off, descsz, out);
        }
        /* The padding of the last note may lie past the section's end:
         * stop there, or size - off wraps and the loop reads past it. */
        if (align4(descsz) > size - desc_off)
            break;
        off = desc_off + align4(descsz);
    }
    return found;
}

/* Dynamic section: DF_1_NODELETE. */
static void scan_dynamic(const elf_view *v, const Elf64_Shdr *sh, elf_info *out)
{
    if (!in_bounds(v->len, sh->sh_offset, sh->sh_size)) return;
    size_t n = sh->sh_size / sizeof(Elf64_Dyn);
    for (size_t i = 0; i < n; i++) {
        Elf64_Dyn d;
        memcpy(&d, v->data + sh->sh_offset + i * sizeof d, sizeof d);
        if (d.d_tag == DT_NULL) break;
        if (d.d_tag == DT_FLAGS_1 && (d.d_un.d_val & DF_1_NODELETE)) out->nodelete = true;
    }
}

/* Dynamic symbols: the entry point and GNU unique definitions. */
static void scan_dynsym(const elf_view *v, const Elf64_Shdr *sh, elf_info *out)
{
    Elf64_Shdr strs;
    if (!in_bounds(v->len, sh->sh_offset, sh->sh_size) || !section_at(v, sh->sh_link, &strs) ||
        !in_bounds(v->len, strs.sh_offset, strs.sh_size))
        return;
    const char *str = (const char *)v->data + strs.sh_offset;
    size_t n = sh->sh_size / sizeof(Elf64_Sym);
    static const char entry[] = RPCHOST_PLUGIN_SYMBOL;
    for (size_t i = 1; i < n; i++) {
        Elf64_Sym s;
        memcpy(&s, v->data + sh->sh_offset + i * sizeof s, sizeof s);
        if (s.st_shndx == SHN_UNDEF) continue;
        unsigned bind = ELF64_ST_BIND(s.st_info);
        if (bind == STB_GNU_UNIQUE) out->unique_symbols = true;
        if ((bind == STB_GLOBAL || bind == STB_WEAK) && ELF64_ST_TYPE(s.st_info) == STT_FUNC &&
            s.st_name < strs.sh_size && strs.sh_size - s.st_name >= sizeof entry &&
            memcmp(str + s.st_name, entry, sizeof entry) == 0 &&
            ELF64_ST_VISIBILITY(s.st_other) == STV_DEFAULT)
            out->has_entry = true;
    }
}

static int read_header(elf_view *v, char *err, size_t errlen)
{
    if (v->len < sizeof(Elf64_Ehdr) || memcmp(v->data, ELFMAG, SELFMAG) != 0) {
        snprintf(err, errlen, "not a shared object (no ELF header)");
        return -ENOEXEC;
    }
    memcpy(&v->eh, v->data, sizeof v->eh);
    const Elf64_Ehdr *eh = &v->eh;
    if (eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_ident[EI_DATA] != ELFDATA2LSB ||
        eh->e_machine != NATIVE_MACHINE) {
        snprintf(err, errlen, "an ELF object for another machine (class %u, data %u, machine %u)",
                 eh->e_ident[EI_CLASS], eh->e_ident[EI_DATA], eh->e_machine);
        return -ENOEXEC;
    }
    if (eh->e_type != ET_DYN) {
        snprintf(err, errlen, "not a shared object (ELF type %u; build it with -shared)",
                 eh->e_type);
        return -ENOEXEC;
    }
    if (eh->e_shoff == 0 || eh->e_shentsize != sizeof(Elf64_Shdr)) {
        snprintf(err, errlen, "ELF file without section headers: cannot find the rpchost note");
        return -ENOEXEC;
    }
    v->shnum = eh->e_shnum;
    v->shstrndx = eh->e_shstrndx;
    if (!in_bounds(v->len, eh->e_shoff, sizeof(Elf64_Shdr))) goto truncated;
    if (v->shnum == 0 || v->shstrndx == SHN_XINDEX) {
        /* Extended numbering: the real values live in section 0. */
        Elf64_Shdr s0;
        memcpy(&s0, v->data + eh->e_shoff, sizeof s0);
        if (v->shnum == 0) v->shnum = s0.sh_size;
        if (v->shstrndx == SHN_XINDEX) v->shstrndx = s0.sh_link;
    }
    if (v->shnum > (v->len / sizeof(Elf64_Shdr)) ||
        !in_bounds(v->len, eh->e_shoff, v->shnum * sizeof(Elf64_Shdr)))
        goto truncated;
    return 0;
truncated:
    snprintf(err, errlen, "truncated or corrupt ELF file (section headers past the end of the "
                          "file; was it copied completely?)");
    return -ENOEXEC;
}

int elfnote_parse(const uint8_t *data, size_t len, elf_info *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    elf_view v = {.data = data, .len = len};
    int rc = read_header(&v, err, errlen);
    if (rc < 0) return rc;
    int found = 0;
    for (uint64_t i = 0; i < v.shnum; i++) {
        Elf64_Shdr sh;
        section_at(&v, i, &sh);
        if (sh.sh_type == SHT_NOBITS) continue;
        if (sh.sh_type == SHT_NOTE) {
            int r = scan_notes(&v, &sh, out, err, errlen);
            if (r < 0) return r;
            if (r > 0) found = 1;
        } else if (sh.sh_type == SHT_DYNAMIC) {
            scan_dynamic(&v, &sh, out);
        } else if (sh.sh_type == SHT_DYNSYM) {
            scan_dynsym(&v, &sh, out);
        }
    }
    if (!found) {
        snprintf(err, errlen,
                 "no rpchost ELF note (.note.rpchost): not an rpchost plugin, or built without "
                 "RPCHOST_PLUGIN_NOTE; rebuild it with rpchost_add_plugin");
        return -ENOENT;
    }
    return 0;
}

static bool valid_text(const char *s, size_t max, bool name)
{
    size_t n = strnlen(s, max);
    if (n == 0 || n == max) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-' || (!name && (c == '.' || c == '+' || c == '~'));
        if (!ok) return false;
    }
    return true;
}

int elfnote_check_abi(const rh_abi_block *abi, char *err, size_t errlen)
{
    if (abi->magic != RH_PLUGIN_MAGIC) {
        snprintf(err, errlen,
                 "wrong magic 0x%08x in the rpchost note (expected 0x%08x): not an rpchost "
                 "plugin or a corrupt file; rebuild it against rpchost ABI %d.x",
                 abi->magic, RH_PLUGIN_MAGIC, RPCHOST_ABI_MAJOR);
        return -EPROTO;
    }
    if (abi->abi_major != RPCHOST_ABI_MAJOR) {
        snprintf(err, errlen,
                 "built for rpchost ABI %u.%u, this host speaks ABI %d.%d (major must match): "
                 "rebuild the plugin against rpchost ABI %d.x",
                 abi->abi_major, abi->abi_minor, RPCHOST_ABI_MAJOR, RPCHOST_ABI_MINOR,
                 RPCHOST_ABI_MAJOR);
        return -EPROTO;
    }
    if (abi->abi_minor > RPCHOST_ABI_MINOR) {
        snprintf(err, errlen,
                 "built for rpchost ABI %u.%u, newer than this host's %d.%d: upgrade rpchost or "
                 "rebuild the plugin against rpchost ABI %d.%d",
                 abi->abi_major, abi->abi_minor, RPCHOST_ABI_MAJOR, RPCHOST_ABI_MINOR,
                 RPCHOST_ABI_MAJOR, RPCHOST_ABI_MINOR);
        return -EPROTO;
    }
    size_t want_max = sizeof(rh_plugin_descriptor), want_min = ELFNOTE_DESCRIPTOR_MIN_SIZE;
    if (abi->abi_minor == RPCHOST_ABI_MINOR) want_min = want_max;
    if (abi->descriptor_size < want_min || abi->descriptor_size > want_max) {
        snprintf(err, errlen,
                 "descriptor_size %u does not fit ABI %u.%u (expected %zu): a corrupt or "
                 "hand-made note; rebuild the plugin against rpchost ABI %d.x",
                 abi->descriptor_size, abi->abi_major, abi->abi_minor, want_max,
                 RPCHOST_ABI_MAJOR);
        return -EPROTO;
    }
    if (!valid_text(abi->name, sizeof abi->name, true)) {
        snprintf(err, errlen,
                 "bad plugin name in the rpchost note (want 1-%d characters of A-Z a-z 0-9 _ -)",
                 RH_NAME_MAX - 1);
        return -EPROTO;
    }
    if (!valid_text(abi->version, sizeof abi->version, false)) {
        snprintf(err, errlen,
                 "bad plugin version in the rpchost note (want 1-%d characters of A-Z a-z 0-9 "
                 "_ - . + ~)",
                 RH_VERSION_MAX - 1);
        return -EPROTO;
    }
    return 0;
}
