/* A micro-benchmark of the JSON transcoder and the descriptor pool (not a
 * test; prints figures). Run: build/bin/bench_json_pb [iterations] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json_pb.h"
#include "jsontest_set.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char origin[] =
    "{\"car_id\": 7, \"driver_id\": \"Bond\", \"passenger_ids\": [\"M\", \"Q\"],"
    " \"type\": \"POOL\", \"location\": {\"lat\": 51.4871871, \"lng\": -0.1266743},"
    " \"time\": \"2022-02-20T15:08:07.915156117+00:00\"}";

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 200000;
    if (n <= 0 || n > 100000000) {
        fprintf(stderr, "usage: bench_json_pb [iterations 1..1e8]\n");
        return 2;
    }
    double t = now();
    long pools = n / 100 ? n / 100 : 1;
    for (long i = 0; i < pools; i++) {
        descpool *p = descpool_new();
        if (!p || descpool_add_set(p, rh_descriptor_set, sizeof rh_descriptor_set) < 0)
            return 1;
        descpool_free(p);
    }
    double pool_us = (now() - t) / (double)pools * 1e6;

    descpool *pool = descpool_new();
    descpool_add_set(pool, rh_descriptor_set, sizeof rh_descriptor_set);
    json_pb_error err;
    uint8_t *wire = NULL;
    size_t len = 0;
    t = now();
    for (long i = 0; i < n; i++) {
        free(wire);
        if (json_pb_encode(pool, "StartRequest", origin, sizeof origin - 1, &wire, &len, &err)) {
            fprintf(stderr, "encode: %s\n", err.text);
            return 1;
        }
    }
    double enc_us = (now() - t) / (double)n * 1e6;
    t = now();
    for (long i = 0; i < n; i++) {
        char *out;
        if (json_pb_decode(pool, "StartRequest", wire, len, JSON_PB_COMPACT, &out, &err)) {
            fprintf(stderr, "decode: %s\n", err.text);
            return 1;
        }
        free(out);
    }
    double dec_us = (now() - t) / (double)n * 1e6;
    printf("descriptor set of %zu bytes (10 files) into a pool: %.1f us\n",
           sizeof rh_descriptor_set, pool_us);
    printf("encode the original StartRequest JSON (%zu bytes -> %zu): %.2f us/op, %.0f ops/s\n",
           sizeof origin - 1, len, enc_us, 1e6 / enc_us);
    printf("decode it back to JSON: %.2f us/op, %.0f ops/s\n", dec_us, 1e6 / dec_us);
    free(wire);
    descpool_free(pool);
    return 0;
}
