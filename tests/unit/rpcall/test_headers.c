/* call_headers_build: the request header block, grpc-timeout, -H parsing
 * (lowercasing, -bin base64 normalised, reserved and bad names refused). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "call.h"

static const char *value_of(const call_headers *hd, const char *name)
{
    static char buf[256];
    for (size_t i = 0; i < hd->n; i++)
        if (hd->nv[i].namelen == strlen(name) && memcmp(hd->nv[i].name, name, hd->nv[i].namelen) == 0) {
            memcpy(buf, hd->nv[i].value, hd->nv[i].valuelen);
            buf[hd->nv[i].valuelen] = 0;
            return buf;
        }
    return NULL;
}

static void test_block(void **state)
{
    (void)state;
    call_headers hd;
    char err[256];
    const char *md[] = {"X-Trace: abc ", "token-bin: AAEC", "empty:"};
    assert_int_equal(call_headers_build(&hd, "https", "localhost:8888", "/Rides/Start",
                                        1500000000LL, md, 3, NULL, err, sizeof(err)), 0);
    assert_string_equal(hd.nv[0].name, ":method");
    assert_string_equal(value_of(&hd, ":method"), "POST");
    assert_string_equal(value_of(&hd, ":scheme"), "https");
    assert_string_equal(value_of(&hd, ":path"), "/Rides/Start");
    assert_string_equal(value_of(&hd, ":authority"), "localhost:8888");
    assert_string_equal(value_of(&hd, "content-type"), "application/grpc");
    assert_string_equal(value_of(&hd, "te"), "trailers");
    assert_string_equal(value_of(&hd, "grpc-timeout"), "1500000u");
    assert_string_equal(value_of(&hd, "x-trace"), "abc");
    assert_string_equal(value_of(&hd, "token-bin"), "AAEC");
    assert_string_equal(value_of(&hd, "empty"), "");
    call_headers_free(&hd);
    /* padded base64 is accepted and sent unpadded */
    const char *md2[] = {"k-bin: AQ=="};
    assert_int_equal(call_headers_build(&hd, "http", "a", "/s/m", 0, md2, 1, NULL, err,
                                        sizeof(err)), 0);
    assert_string_equal(value_of(&hd, "k-bin"), "AQ");
    assert_null(value_of(&hd, "grpc-timeout"));
    assert_null(value_of(&hd, "grpc-encoding"));
    assert_null(value_of(&hd, "grpc-accept-encoding"));
    call_headers_free(&hd);
    /* --compress and --accept-encoding */
    call_encoding enc = {GRPC_CODEC_GZIP, "gzip,deflate"};
    assert_int_equal(call_headers_build(&hd, "http", "a", "/s/m", 0, NULL, 0, &enc, err,
                                        sizeof(err)), 0);
    assert_string_equal(value_of(&hd, "grpc-encoding"), "gzip");
    assert_string_equal(value_of(&hd, "grpc-accept-encoding"), "gzip,deflate");
    call_headers_free(&hd);
    enc = (call_encoding){GRPC_CODEC_IDENTITY, "identity"};
    assert_int_equal(call_headers_build(&hd, "http", "a", "/s/m", 0, NULL, 0, &enc, err,
                                        sizeof(err)), 0);
    assert_null(value_of(&hd, "grpc-encoding"));
    assert_string_equal(value_of(&hd, "grpc-accept-encoding"), "identity");
    call_headers_free(&hd);
}

static void refused(const char *md, const char *why)
{
    call_headers hd;
    char err[256] = "";
    const char *one[] = {md};
    assert_int_equal(call_headers_build(&hd, "http", "a", "/s/m", 0, one, 1, NULL, err,
                                        sizeof(err)), -EINVAL);
    if (!strstr(err, why))
        fail_msg("-H '%s': '%s' does not say '%s'", md, err, why);
    assert_null(hd.nv);
}

static void test_refused(void **state)
{
    (void)state;
    refused("no colon", "name: value");
    refused(": v", "empty");
    refused("bad name: v", "a-z 0-9");
    refused("grpc-timeout: 1S", "reserved");
    refused("content-type: text/plain", "reserved");
    refused("te: x", "reserved");
    refused("grpc-encoding: gzip", "reserved");
    refused("k-bin: not base64!", "base64");
    refused("k: caf\xc3\xa9", "printable ASCII");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_block),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
