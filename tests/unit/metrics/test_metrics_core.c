/* The metrics core (host/metrics): updates from worker threads (own
 * shards) and other threads (the shared shard) sum exactly; families come
 * back by name with the same shape and are refused with another; the
 * exposition escapes, cumulates buckets and speaks both formats. */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "metrics/metrics.h"
#include "metrics/mx_expose.h"

#define THREADS 4
#define ROUNDS 200000

static mx_series *g_counter, *g_hist, *g_gauge;

typedef struct worker_arg {
    int shard; /* -1: not a worker (shared shard) */
} worker_arg;

static void *hammer(void *p)
{
    worker_arg *a = p;
    mx_thread_attach(a->shard);
    for (int i = 0; i < ROUNDS; i++) {
        mx_inc(g_counter);
        mx_observe_ns(g_hist, i % 3 == 0 ? 1000 : 2000000000LL); /* 1 us or 2 s */
        mx_gauge_add(g_gauge, 1);
    }
    mx_thread_attach(-1);
    return NULL;
}

static int setup(void **state)
{
    (void)state;
    return mx_init(2);
}

static int teardown(void **state)
{
    (void)state;
    mx_shutdown();
    return 0;
}

static char *expose(bool om)
{
    buf b = {0};
    assert_int_equal(mx_expose(&b, om), 0);
    assert_int_equal(buf_append(&b, "", 1), 0);
    return (char *)b.p;
}

static void sums_are_exact(void **state)
{
    (void)state;
    static const double bounds[] = {0.5, 1, 5};
    g_counter = mx_series_get(
        mx_family_new(MX_COUNTER, "t_events_total", "Events.", NULL, NULL, 0, NULL, NULL, 0), NULL);
    g_hist = mx_series_v(mx_family_seconds("t_seconds", "Durations.", "kind", bounds, 3), "a");
    g_gauge = mx_series_get(
        mx_family_new(MX_GAUGE, "t_gauge", "G.", NULL, NULL, 0, NULL, NULL, 0), NULL);
    assert_non_null(g_counter);
    assert_non_null(g_hist);
    assert_non_null(g_gauge);
    /* two workers on their shards, two threads on the shared one */
    pthread_t t[THREADS];
    worker_arg a[THREADS] = {{0}, {1}, {-1}, {-1}};
    for (int i = 0; i < THREADS; i++) assert_int_equal(pthread_create(&t[i], NULL, hammer, &a[i]), 0);
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    assert_int_equal(mx_cell_sum(g_counter->cell), (uint64_t)THREADS * ROUNDS);
    char *text = expose(false);
    char want[256];
    snprintf(want, sizeof want, "t_events_total %d\n", THREADS * ROUNDS);
    assert_non_null(strstr(text, want));
    int fast = THREADS * ((ROUNDS + 2) / 3);
    snprintf(want, sizeof want, "t_seconds_bucket{kind=\"a\",le=\"0.5\"} %d\n", fast);
    assert_non_null(strstr(text, want));
    snprintf(want, sizeof want, "t_seconds_bucket{kind=\"a\",le=\"1\"} %d\n", fast);
    assert_non_null(strstr(text, want));
    snprintf(want, sizeof want, "t_seconds_bucket{kind=\"a\",le=\"5\"} %d\n", THREADS * ROUNDS);
    assert_non_null(strstr(text, want));
    snprintf(want, sizeof want, "t_seconds_count{kind=\"a\"} %d\n", THREADS * ROUNDS);
    assert_non_null(strstr(text, want));
    snprintf(want, sizeof want, "t_gauge %d\n", THREADS * ROUNDS);
    assert_non_null(strstr(text, want));
    assert_non_null(strstr(text, "# TYPE t_seconds histogram\n"));
    free(text);
}

static void families_by_name(void **state)
{
    (void)state;
    char why[256];
    mx_family *a = mx_family_new(MX_COUNTER, "p_calls_total", "C.", "result", NULL, 0, "plug",
                                 why, sizeof why);
    assert_non_null(a);
    mx_series *s1 = mx_series_v(a, "ok");
    mx_inc(s1);
    /* the same plugin again (hot replace): the same family and series */
    mx_family *b = mx_family_new(MX_COUNTER, "p_calls_total", "C.", "result", NULL, 0, "plug",
                                 why, sizeof why);
    assert_ptr_equal(a, b);
    assert_ptr_equal(mx_series_v(b, "ok"), s1);
    /* another shape, another owner, the host's: refused with a reason */
    assert_null(mx_family_new(MX_GAUGE, "p_calls_total", "C.", "result", NULL, 0, "plug", why,
                              sizeof why));
    assert_non_null(strstr(why, "another type"));
    assert_null(mx_family_new(MX_COUNTER, "p_calls_total", "C.", "result", NULL, 0, "other", why,
                              sizeof why));
    assert_non_null(strstr(why, "owner: plug"));
    assert_null(mx_family_new(MX_COUNTER, "9bad", "C.", NULL, NULL, 0, "plug", why, sizeof why));
    assert_null(mx_family_new(MX_COUNTER, "p_x_total", "C.", "le", NULL, 0, "plug", why, sizeof why));
    assert_null(mx_family_new(MX_COUNTER, "p_y_total", "C.", "a,a", NULL, 0, "plug", why, sizeof why));
    static const double down[] = {2, 1};
    assert_null(mx_family_new(MX_HISTOGRAM, "p_h", "H.", NULL, down, 2, "plug", why, sizeof why));
    /* label values: any text, escaped in the exposition */
    mx_inc(mx_series_v(a, "a\"b\\c\nd"));
    /* ... that is UTF-8: Prometheus drops a whole scrape over one that
     * is not, so such a value gets no series (nor such help a family) */
    assert_non_null(mx_series_v(a, "gr\xc3\xbc\xc3\x9f" "e \xe2\x82\xac \xf0\x9f\x9a\x95"));
    static const char *const bad[] = {"\xff", "a\xc3", "\xc0\xaf", "\xed\xa0\x80",
                                      "\xf4\x90\x80\x80", "\xe2\x82"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) assert_null(mx_series_v(a, bad[i]));
    assert_null(mx_family_new(MX_COUNTER, "p_z_total", "bad \xff help", NULL, NULL, 0, "plug",
                              why, sizeof why));
    assert_non_null(strstr(why, "not UTF-8"));
    char *text = expose(false);
    assert_non_null(strstr(text, "p_calls_total{result=\"a\\\"b\\\\c\\nd\"} 1\n"));
    assert_non_null(strstr(text, "p_calls_total{result=\"ok\"} 1\n"));
    free(text);
    /* OpenMetrics: counter family without _total, float le, # EOF */
    text = expose(true);
    assert_non_null(strstr(text, "# TYPE p_calls counter\n"));
    assert_non_null(strstr(text, "p_calls_total{result=\"ok\"} 1\n"));
    assert_non_null(strstr(text, "t_seconds_bucket{kind=\"a\",le=\"1.0\"}"));
    size_t n = strlen(text);
    assert_true(n > 6 && strcmp(text + n - 6, "# EOF\n") == 0);
    free(text);
}

static void series_limit_and_buckets(void **state)
{
    (void)state;
    mx_family *f = mx_family_new(MX_COUNTER, "q_many_total", "M.", "n", NULL, 0, NULL, NULL, 0);
    char v[32];
    for (int i = 0; i < MX_MAX_SERIES_PER_FAMILY; i++) {
        snprintf(v, sizeof v, "%d", i);
        assert_non_null(mx_series_v(f, v));
    }
    assert_null(mx_series_v(f, "one too many"));
    snprintf(v, sizeof v, "%d", 42);
    assert_non_null(mx_series_v(f, v)); /* existing ones are still found */
    double b[MX_MAX_BUCKETS];
    size_t nb;
    char why[128];
    assert_int_equal(mx_parse_buckets("0.005, 0.01,1 ,10", b, &nb, why, sizeof why), 0);
    assert_int_equal(nb, 4);
    assert_true(b[3] == 10);
    assert_int_not_equal(mx_parse_buckets("1,1", b, &nb, why, sizeof why), 0);
    assert_int_not_equal(mx_parse_buckets("-1", b, &nb, why, sizeof why), 0);
    assert_int_not_equal(mx_parse_buckets("", b, &nb, why, sizeof why), 0);
    assert_int_not_equal(mx_parse_buckets("1,x", b, &nb, why, sizeof why), 0);
    assert_true(mx_accepts_openmetrics("application/openmetrics-text;version=1.0.0,text/plain;q=0.5"));
    assert_false(mx_accepts_openmetrics("text/plain;version=0.0.4"));
    assert_false(mx_accepts_openmetrics("application/openmetrics-text;q=0"));
    assert_false(mx_accepts_openmetrics(""));
}

/* Durations a plugin measured wrongly (negative, infinite, NaN) are
 * counted in the first or last bucket or ignored, never converted out of
 * range. */
static void durations_out_of_range(void **state)
{
    (void)state;
    static const double bounds[] = {1};
    mx_series *h = mx_series_v(mx_family_seconds("r_seconds", "R.", NULL, bounds, 1), NULL);
    assert_non_null(h);
    mx_observe(h, -INFINITY);
    mx_observe(h, INFINITY);
    mx_observe(h, NAN);
    mx_observe(h, 0.5);
    char *text = expose(false);
    assert_non_null(strstr(text, "r_seconds_bucket{le=\"1\"} 2\n"));
    assert_non_null(strstr(text, "r_seconds_bucket{le=\"+Inf\"} 3\n"));
    assert_non_null(strstr(text, "r_seconds_count 3\n"));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sums_are_exact),
        cmocka_unit_test(families_by_name),
        cmocka_unit_test(series_limit_and_buckets),
        cmocka_unit_test(durations_out_of_range),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
