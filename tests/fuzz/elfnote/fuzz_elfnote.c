/* host/elfnote: the loader's ELF reader sees a plugin file before dlopen,
 * so any file in the plugin directory is untrusted input. Parses the
 * input as a whole file, and checks the ABI block when a note was found.
 * The seed corpus holds a minimal plugin (4.9 KB: .note.rpchost, .dynsym,
 * .dynamic with DF_1_NODELETE); see docs/fuzzing.md to rebuild it. */
#include <errno.h>
#include <string.h>

#include "registry/elfnote.h"
#include "fuzz.h"

static void check_err(const char *err, size_t cap)
{
    size_t n = strnlen(err, cap);
    FUZZ_CHECK(n > 0 && n < cap, "error text empty or unterminated");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) return 0;
    memcpy(copy, data, size);
    elf_info info;
    char err[256];
    err[0] = 0;
    int rv = elfnote_parse(copy, size, &info, err, sizeof err);
    FUZZ_CHECK(rv == 0 || rv == -ENOEXEC || rv == -ENOENT, "unexpected return %d", rv);
    if (rv == 0) {
        char aerr[512];
        aerr[0] = 0;
        int ar = elfnote_check_abi(&info.abi, aerr, sizeof aerr);
        FUZZ_CHECK(ar == 0 || ar == -EPROTO, "unexpected check return %d", ar);
        if (ar < 0) check_err(aerr, sizeof aerr);
    } else {
        check_err(err, sizeof err);
    }
    free(copy);
    return 0;
}

FUZZ_CASES(FUZZ_CASE(""), FUZZ_CASE("\x7f" "ELF"),
           FUZZ_CASE("\x7f" "ELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x03\0\x3e\0"));
