/* Reads a plugin's identity from its ELF file before anything of it runs:
 * the rh_abi_block of the ".note.rpchost" note, whether it exports the
 * entry symbol, and what would keep it from ever being unloaded.
 * The parser works on a bounded in-memory copy and trusts nothing in it.
 * Owner: elfnote.c. */
#ifndef RPCHOST_HOST_ELFNOTE_H
#define RPCHOST_HOST_ELFNOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "rpchost/plugin.h"

typedef struct elf_info {
    rh_abi_block abi;    /* from the note (valid when the note was found) */
    bool has_entry;      /* defines the global rpchost_plugin in .dynsym */
    bool nodelete;       /* DT_FLAGS_1 has DF_1_NODELETE: dlclose keeps it */
    bool unique_symbols; /* STB_GNU_UNIQUE definitions: glibc never unloads */
    char build_id[65];   /* NT_GNU_BUILD_ID as hex, "" if the file has none */
} elf_info;

/* Parses a 64-bit little-endian ELF shared object of this machine. Returns
 * 0, or -ENOEXEC (not such an object / corrupt) or -ENOENT (no rpchost
 * note) with one sentence in err. */
int elfnote_parse(const uint8_t *data, size_t len, elf_info *out, char *err, size_t errlen);

/* Checks an identity block against this host's ABI, field by field: magic,
 * major (equal), minor (at most ours), descriptor size, name, version.
 * 0 or -EPROTO with what was expected, what was found and what to do. */
int elfnote_check_abi(const rh_abi_block *abi, char *err, size_t errlen);

/* Smallest descriptor a plugin of our major may have (ABI 1.0). */
#define ELFNOTE_DESCRIPTOR_MIN_SIZE (offsetof(rh_plugin_descriptor, reload) + sizeof(void *))

#endif
