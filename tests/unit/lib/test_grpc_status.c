/* grpc_status: names both ways and header parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "grpc_status.h"
#include "rpchost/plugin.h"

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(grpc_status_name(RH_OK), "OK");
    assert_string_equal(grpc_status_name(RH_INVALID_ARGUMENT), "INVALID_ARGUMENT");
    assert_string_equal(grpc_status_name(RH_RESOURCE_EXHAUSTED), "RESOURCE_EXHAUSTED");
    assert_string_equal(grpc_status_name(RH_UNAUTHENTICATED), "UNAUTHENTICATED");
    assert_string_equal(grpc_status_name(17), "UNKNOWN");
    assert_string_equal(grpc_status_name(-1), "UNKNOWN");
    for (int c = 0; c <= 16; c++) assert_int_equal(grpc_status_from_name(grpc_status_name(c)), c);
    assert_int_equal(grpc_status_from_name("not_found"), RH_NOT_FOUND);
    assert_int_equal(grpc_status_from_name("5"), RH_NOT_FOUND);
    assert_int_equal(grpc_status_from_name("17"), -1);
    assert_int_equal(grpc_status_from_name("NOPE"), -1);
    assert_int_equal(grpc_status_from_name(""), -1);
}

static void test_parse(void **state)
{
    (void)state;
    assert_int_equal(grpc_status_parse("0", 1), 0);
    assert_int_equal(grpc_status_parse("16", 2), 16);
    assert_int_equal(grpc_status_parse("99", 2), 99);
    assert_int_equal(grpc_status_parse("", 0), -1);
    assert_int_equal(grpc_status_parse("1a", 2), -1);
    assert_int_equal(grpc_status_parse("-1", 2), -1);
    assert_int_equal(grpc_status_parse("1000", 4), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
