/* elfnote.c: the note is read from real plugin files, and every field of a
 * bad note is refused with what was expected and found. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry/elfnote.h"

static uint8_t *slurp(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", TEST_PLUGIN_DIR, name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(*len);
    assert_int_equal(fread(buf, 1, *len, f), *len);
    fclose(f);
    return buf;
}

/* Offset of our note's rh_abi_block inside the file. */
static size_t note_desc_offset(const uint8_t *buf, size_t len)
{
    for (size_t i = 0; i + 12 + 8 + sizeof(rh_abi_block) <= len; i += 4) {
        uint32_t namesz, descsz, type;
        memcpy(&namesz, buf + i, 4);
        memcpy(&descsz, buf + i + 4, 4);
        memcpy(&type, buf + i + 8, 4);
        if (namesz == 8 && descsz == sizeof(rh_abi_block) && type == RH_NOTE_TYPE &&
            memcmp(buf + i + 12, "rpchost", 8) == 0)
            return i + 20;
    }
    fail_msg("no note found");
    return 0;
}

static void test_good_plugin(void **st)
{
    (void)st;
    size_t len;
    uint8_t *buf = slurp("swap_v2.so", &len);
    elf_info info;
    char err[512];
    assert_int_equal(elfnote_parse(buf, len, &info, err, sizeof err), 0);
    assert_int_equal(elfnote_check_abi(&info.abi, err, sizeof err), 0);
    assert_string_equal(info.abi.name, "swap");
    assert_string_equal(info.abi.version, "2");
    assert_true(info.has_entry);
    assert_false(info.nodelete);
    assert_false(info.unique_symbols);
    free(buf);
}

static void test_flags(void **st)
{
    (void)st;
    size_t len;
    elf_info info;
    char err[512];
    uint8_t *buf = slurp("nodelete.so", &len);
    assert_int_equal(elfnote_parse(buf, len, &info, err, sizeof err), 0);
    assert_true(info.nodelete);
    free(buf);
    buf = slurp("nosym.so", &len);
    assert_int_equal(elfnote_parse(buf, len, &info, err, sizeof err), 0);
    assert_false(info.has_entry);
    free(buf);
}

static void test_other_major(void **st)
{
    (void)st;
    size_t len;
    uint8_t *buf = slurp("swap_abi2.so", &len);
    elf_info info;
    char err[512];
    assert_int_equal(elfnote_parse(buf, len, &info, err, sizeof err), 0);
    assert_int_equal(elfnote_check_abi(&info.abi, err, sizeof err), -EPROTO);
    assert_non_null(strstr(err, "built for rpchost ABI 2.0"));
    assert_non_null(strstr(err, "rebuild the plugin against rpchost ABI 1.x"));
    free(buf);
}

static void test_field_by_field(void **st)
{
    (void)st;
    size_t len;
    uint8_t *buf = slurp("swap_v1.so", &len);
    size_t off = note_desc_offset(buf, len);
    elf_info info;
    char err[512];
    rh_abi_block good;
    memcpy(&good, buf + off, sizeof good);

    rh_abi_block b = good;
    b.magic = 0xdeadbeef;
    assert_int_equal(elfnote_check_abi(&b, err, sizeof err), -EPROTO);
    assert_non_null(strstr(err, "wrong magic 0xdeadbeef"));
    assert_non_null(strstr(err, "expected 0x48435052"));

    b = good;
    b.abi_minor = RPCHOST_ABI_MINOR + 1;
    assert_int_equal(elfnote_check_abi(&b, err, sizeof err), -EPROTO);
    assert_non_null(strstr(err, "newer than this host"));

    b = good;
    b.descriptor_size = 8;
    assert_int_equal(elfnote_check_abi(&b, err, sizeof err), -EPROTO);
    assert_non_null(strstr(err, "descriptor_size 8"));

    b = good;
    memset(b.name, 0, sizeof b.name);
    assert_int_equal(elfnote_check_abi(&b, err, sizeof err), -EPROTO);
    assert_non_null(strstr(err, "plugin name"));

    b = good;
    memset(b.name, 'a', sizeof b.name); /* not NUL-terminated */
    assert_int_equal(elfnote_check_abi(&b, err, sizeof err), -EPROTO);

    /* A mutated note inside the file is what parse reports. */
    buf[off + 4] = 7; /* abi_major */
    assert_int_equal(elfnote_parse(buf, len, &info, err, sizeof err), 0);
    assert_int_equal(info.abi.abi_major, 7);
    assert_int_equal(elfnote_check_abi(&info.abi, err, sizeof err), -EPROTO);
    free(buf);
}

static void test_not_elf_and_truncated(void **st)
{
    (void)st;
    elf_info info;
    char err[512];
    const char text[] = "#!/bin/sh\necho not a plugin\n";
    assert_int_equal(elfnote_parse((const uint8_t *)text, sizeof text, &info, err, sizeof err),
                     -ENOEXEC);
    assert_non_null(strstr(err, "not a shared object"));
    assert_int_equal(elfnote_parse((const uint8_t *)text, 3, &info, err, sizeof err), -ENOEXEC);

    size_t len;
    uint8_t *buf = slurp("swap_v1.so", &len);
    /* Every truncation point is refused cleanly (and ASan watches). */
    for (size_t cut = 0; cut < len; cut += (cut < 256 ? 1 : 997)) {
        uint8_t *part = malloc(cut ? cut : 1);
        memcpy(part, buf, cut);
        int rc = elfnote_parse(part, cut, &info, err, sizeof err);
        assert_true(rc == -ENOEXEC || rc == -ENOENT);
        free(part);
    }
    /* An executable is not a shared object. */
    Elf64_Ehdr eh;
    memcpy(&eh, buf, sizeof eh);
    eh.e_type = ET_EXEC;
    memcpy(buf, &eh, sizeof eh);
    assert_int_equal(elfnote_parse(buf, len, &info, err, sizeof err), -ENOEXEC);
    assert_non_null(strstr(err, "not a shared object"));
    /* Garbage section header fields. */
    eh.e_type = ET_DYN;
    eh.e_shoff = (uint64_t)-64;
    memcpy(buf, &eh, sizeof eh);
    assert_int_equal(elfnote_parse(buf, len, &info, err, sizeof err), -ENOEXEC);
    eh.e_shoff = 64;
    eh.e_shnum = 0xffff;
    memcpy(buf, &eh, sizeof eh);
    assert_int_equal(elfnote_parse(buf, len, &info, err, sizeof err), -ENOEXEC);
    free(buf);
}

static void test_random_corruption(void **st)
{
    (void)st;
    size_t len;
    uint8_t *orig = slurp("swap_v1.so", &len);
    uint8_t *buf = malloc(len);
    elf_info info;
    char err[512];
    srand(1234);
    for (int round = 0; round < 2000; round++) {
        memcpy(buf, orig, len);
        for (int k = 0; k < 8; k++) buf[(size_t)rand() % 4096 % len] = (uint8_t)rand();
        (void)elfnote_parse(buf, len, &info, err, sizeof err); /* must not crash */
    }
    free(buf);
    free(orig);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_plugin),
        cmocka_unit_test(test_flags),
        cmocka_unit_test(test_other_major),
        cmocka_unit_test(test_field_by_field),
        cmocka_unit_test(test_not_elf_and_truncated),
        cmocka_unit_test(test_random_corruption),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
