/* pbwire: reading every wire type, writing length-delimited fields,
 * malformed bytes refused, raw printing. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "pbwire.h"

static void test_read_all_types(void **state)
{
    (void)state;
    /* 1: varint 300, 2: "hi", 3: fixed64 1, 4: fixed32 2 */
    static const uint8_t msg[] = {0x08, 0xac, 0x02, 0x12, 0x02, 'h', 'i',
                                  0x19, 1, 0, 0, 0, 0, 0, 0, 0, 0x25, 2, 0, 0, 0};
    pbw_reader r;
    pbw_field f;
    pbw_reader_init(&r, msg, sizeof(msg));
    assert_int_equal(pbw_next(&r, &f), 1);
    assert_int_equal(f.number, 1);
    assert_int_equal(f.u64, 300);
    assert_int_equal(pbw_next(&r, &f), 1);
    assert_int_equal(f.number, 2);
    assert_int_equal(f.len, 2);
    assert_memory_equal(f.data, "hi", 2);
    assert_int_equal(pbw_next(&r, &f), 1);
    assert_int_equal(f.wire_type, PBW_I64);
    assert_int_equal(f.u64, 1);
    assert_int_equal(pbw_next(&r, &f), 1);
    assert_int_equal(f.wire_type, PBW_I32);
    assert_int_equal(f.u64, 2);
    assert_int_equal(pbw_next(&r, &f), 0);
}

static void test_malformed(void **state)
{
    (void)state;
    static const uint8_t len_past_end[] = {0x12, 0x05, 'a'};
    static const uint8_t group[] = {0x0b};
    static const uint8_t field_zero[] = {0x00, 0x01};
    static const uint8_t varint_cut[] = {0x08, 0x80};
    const uint8_t *cases[] = {len_past_end, group, field_zero, varint_cut};
    size_t lens[] = {sizeof(len_past_end), sizeof(group), sizeof(field_zero),
                     sizeof(varint_cut)};
    for (int i = 0; i < 4; i++) {
        pbw_reader r;
        pbw_field f;
        pbw_reader_init(&r, cases[i], lens[i]);
        assert_int_equal(pbw_next(&r, &f), -EINVAL);
        assert_false(pbw_is_message(cases[i], lens[i]));
    }
}

static void test_write_and_print(void **state)
{
    (void)state;
    pbw_buf inner = {0}, outer = {0};
    assert_int_equal(pbw_put_bytes(&inner, 1, "field", 5), 0);
    assert_int_equal(pbw_put_bytes(&outer, 7, "", 0), 0);
    assert_int_equal(pbw_put_bytes(&outer, 3, inner.p, inner.len), 0);
    static const uint8_t want[] = {0x3a, 0x00, 0x1a, 0x07, 0x0a, 0x05, 'f', 'i', 'e', 'l', 'd'};
    assert_int_equal(outer.len, sizeof(want));
    assert_memory_equal(outer.p, want, sizeof(want));
    char *text = NULL;
    size_t tlen = 0;
    FILE *f = open_memstream(&text, &tlen);
    pbw_print_raw(f, outer.p, outer.len, 0);
    fclose(f);
    assert_string_equal(text, "7: \"\"\n3 {\n  1: \"field\"\n}\n");
    free(text);
    pbw_buf_free(&inner);
    pbw_buf_free(&outer);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_all_types),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_write_and_print),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
