/* The authlog instance without a host: the background thread drains the
 * rings into the log file, reopens it for rotation, re-reads the tokens
 * file, keeps the old table when the new file is broken, and frees old
 * tables only after readers left them. The host table passed in has only
 * `log` (the one host function al_state uses), captured here. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "al_auth.h"
#include "al_state.h"

static pthread_mutex_t logs_mu = PTHREAD_MUTEX_INITIALIZER;
static char logs[1 << 16];

static void cap_log(rh_plugin_ctx *ctx, rh_log_level level, const char *fmt, ...)
{
    (void)ctx;
    (void)level;
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&logs_mu);
    size_t n = strlen(logs);
    if (n < sizeof logs - 2) {
        vsnprintf(logs + n, sizeof logs - n - 1, fmt, ap);
        strcat(logs, "\n");
    }
    pthread_mutex_unlock(&logs_mu);
    va_end(ap);
}

static bool logs_have(const char *s)
{
    pthread_mutex_lock(&logs_mu);
    bool r = strstr(logs, s) != NULL;
    pthread_mutex_unlock(&logs_mu);
    return r;
}

static rh_host_api api;
static char dir[64];

static int setup(void **st)
{
    (void)st;
    api.size = sizeof api;
    api.log = cap_log;
    strcpy(dir, "/tmp/authlog-state-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd);
}

static char *path(const char *name)
{
    static char p[8][128];
    static int k;
    k = (k + 1) % 8;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
    return p[k];
}

static al_config *config(const char *log_file, const char *tokens_file)
{
    al_config *c = calloc(1, sizeof *c);
    c->log_file = log_file ? strdup(log_file) : NULL;
    c->tokens_file = tokens_file ? strdup(tokens_file) : NULL;
    c->log_buffer = 1 << 16;
    c->mtls = true;
    return c;
}

static al_state *start(al_config *c)
{
    al_state *s = NULL;
    char err[512];
    int rc = al_state_start(&s, &api, NULL, c, err, sizeof err);
    free(c);
    if (rc)
        fail_msg("al_state_start: %s", err);
    return s;
}

static size_t count_lines(const char *p)
{
    FILE *f = fopen(p, "r");
    if (!f)
        return 0;
    size_t n = 0;
    int c;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* --- log lines from many threads ---------------------------------------- */

typedef struct writer {
    al_state *s;
    int lines;
    atomic_int *written;
} writer;

static void *write_lines(void *arg)
{
    writer *w = arg;
    al_thread *t = al_thread_get(w->s);
    assert_non_null(t);
    assert_ptr_equal(al_thread_get(w->s), t);
    char line[128];
    for (int i = 0; i < w->lines; i++) {
        int n = snprintf(line, sizeof line, "thread %p line %d\n", (void *)t, i);
        bool half;
        while (al_ring_push(&t->ring, line, (size_t)n, &half) != 0) {
            atomic_fetch_sub(&t->ring.dropped, 1); /* not a test of drops */
            sleep_ms(1);
        }
        if (half && !atomic_exchange(&t->ring.wake_pending, true))
            al_state_wake(w->s);
        if (w->written)
            atomic_fetch_add(w->written, 1);
        if (i % 1000 == 0)
            sleep_ms(1);
    }
    return NULL;
}

static void test_lines_from_threads(void **st)
{
    (void)st;
    al_state *s = start(config(path("access.log"), NULL));
    pthread_t th[4];
    writer w = {s, 20000, NULL};
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, write_lines, &w), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    al_state_stop(s); /* the last drain happens here */
    assert_int_equal(count_lines(path("access.log")), 4 * 20000);
}

static void test_rotation_loses_nothing(void **st)
{
    (void)st;
    al_state *s = start(config(path("rot.log"), NULL));
    atomic_int written = 0;
    writer w = {s, 60000, &written};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, write_lines, &w), 0);
    while (atomic_load(&written) < 30000)
        sleep_ms(5);
    assert_int_equal(rename(path("rot.log"), path("rot.log.1")), 0);
    al_state_reconfigure(s, config(path("rot.log"), NULL));
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    al_state_stop(s);
    size_t a = count_lines(path("rot.log.1")), b = count_lines(path("rot.log"));
    assert_true(a > 0);
    assert_true(b > 0);
    assert_int_equal(a + b, 2 * 60000);
}

static void test_drops_counted_and_logged(void **st)
{
    (void)st;
    al_config *c = config(path("drop.log"), NULL);
    c->log_buffer = 4096;
    al_state *s = start(c);
    al_thread *t = al_thread_get(s);
    char line[1000];
    memset(line, 'x', sizeof line - 1);
    line[sizeof line - 1] = '\n';
    int ok = 0;
    for (int i = 0; i < 100; i++) {
        bool half;
        ok += al_ring_push(&t->ring, line, sizeof line, &half) == 0;
    }
    assert_true(ok < 100);
    al_state_stop(s);
    assert_int_equal(count_lines(path("drop.log")), (size_t)ok);
    char want[64];
    snprintf(want, sizeof want, "%d access log lines dropped", 100 - ok);
    if (!logs_have(want))
        fail_msg("no '%s' in the log:\n%s", want, logs);
}

static void test_bad_log_path(void **st)
{
    (void)st;
    al_state *s = NULL;
    char err[512];
    al_config *c = config(path("no/such/dir/x.log"), NULL);
    assert_int_equal(al_state_start(&s, &api, NULL, c, err, sizeof err), -ENOENT);
    free(c);
    assert_non_null(strstr(err, "no/such/dir/x.log"));
}

/* --- the tokens file --------------------------------------------------- */

static void write_file(const char *p, const char *text)
{
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.tmp", p);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(rename(tmp, p), 0);
}

static char *token_line(const char *token, const char *principal, char *out)
{
    uint8_t d[32];
    al_sha256(token, strlen(token), d);
    for (int i = 0; i < 32; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
    sprintf(out + 64, " %s *\n", principal);
    return out;
}

/* The principal of a token as a worker would see it (inside a read
 * section; copied out before leaving it). */
static const char *who(al_state *s, const char *token)
{
    static char principal[AL_PRINCIPAL_MAX + 1];
    uint8_t d[32];
    al_sha256(token, strlen(token), d);
    al_thread *t = al_thread_get(s);
    al_read_begin(t);
    const al_entry *e = al_tokens_find_digest(atomic_load(&s->tokens), d);
    if (e)
        strcpy(principal, e->principal);
    al_read_end(t);
    return e ? principal : NULL;
}

/* The watcher polls every flush interval and waits for a change to be
 * stable for 500 ms: "within a second" on an idle machine. The deadline is
 * 20 s so that a loaded CI machine (load 30, ASan) cannot break it; a
 * reload that never happens still fails. */
#define RELOAD_DEADLINE_MS 20000

static bool wait_for(al_state *s, const char *token, const char *principal, int ms)
{
    for (int i = 0; i < ms / 10; i++) {
        const char *p = who(s, token);
        if ((!p && !principal) || (p && principal && strcmp(p, principal) == 0))
            return true;
        sleep_ms(10);
    }
    return false;
}

/* Waits until the log has s (the watcher's verdict on a file). */
static bool wait_log(const char *s, int ms)
{
    for (int i = 0; i < ms / 10; i++) {
        if (logs_have(s))
            return true;
        sleep_ms(10);
    }
    return logs_have(s);
}

static void test_tokens_reload(void **st)
{
    (void)st;
    char l1[200], l2[200], text[500];
    write_file(path("tokens"), token_line("tok-a", "alice", l1));
    al_state *s = start(config(NULL, path("tokens")));
    assert_string_equal(who(s, "tok-a"), "alice");
    assert_null(who(s, "tok-b"));

    /* a new token works within a second; a removed one goes */
    write_file(path("tokens"), token_line("tok-b", "bob", l2));
    assert_true(wait_for(s, "tok-b", "bob", RELOAD_DEADLINE_MS));
    assert_null(who(s, "tok-a"));

    /* a broken file keeps the old table and says why */
    write_file(path("tokens"), "this is not a hash line\n");
    assert_true(wait_log("line 1: the first field must be the SHA-256", RELOAD_DEADLINE_MS));
    assert_true(logs_have("stay in force"));
    assert_string_equal(who(s, "tok-b"), "bob");

    /* fixed again: both; then in place, same size, twice in a row */
    snprintf(text, sizeof text, "%s%s", token_line("tok-a", "alice", l1),
             token_line("tok-b", "bob", l2));
    write_file(path("tokens"), text);
    assert_true(wait_for(s, "tok-a", "alice", RELOAD_DEADLINE_MS));
    FILE *f = fopen(path("tokens"), "r+");
    fputs(token_line("tok-c", "carol", l1), f);
    fclose(f);
    f = fopen(path("tokens"), "r+");
    fputs(token_line("tok-d", "dave_", l1), f);
    fclose(f);
    assert_true(wait_for(s, "tok-d", "dave_", RELOAD_DEADLINE_MS));
    assert_null(who(s, "tok-c"));
    assert_null(who(s, "tok-a"));
    assert_string_equal(who(s, "tok-b"), "bob");

    /* the file removed: the old table stays */
    unlink(path("tokens"));
    assert_true(wait_log("No such file or directory; the previous tokens", RELOAD_DEADLINE_MS));
    assert_string_equal(who(s, "tok-d"), "dave_");
    al_state_stop(s);
}

/* A tokens file that is broken or missing at start: the instance starts
 * anyway and knows nobody (fail closed), says why, and takes the file up
 * as soon as it is fixed. */
static void test_broken_tokens_at_start(void **st)
{
    (void)st;
    char l1[200];
    write_file(path("bad-tokens"), "# ok\nnope alice *\n");
    al_state *s = start(config(NULL, path("bad-tokens")));
    assert_null(atomic_load(&s->tokens));
    assert_true(logs_have("bad-tokens line 2: the first field"));
    assert_true(logs_have("refuses every call but exempt ones"));
    write_file(path("bad-tokens"), token_line("tok-a", "alice", l1));
    assert_true(wait_for(s, "tok-a", "alice", RELOAD_DEADLINE_MS));
    al_state_stop(s);

    s = start(config(NULL, path("missing-tokens")));
    assert_null(atomic_load(&s->tokens));
    assert_true(logs_have("missing-tokens: No such file or directory; authlog.auth refuses"));
    write_file(path("missing-tokens"), token_line("tok-b", "bob", l1));
    assert_true(wait_for(s, "tok-b", "bob", RELOAD_DEADLINE_MS));
    al_state_stop(s);
}

/* Readers look tokens up without pause while the file changes under them;
 * under ASan a table freed too early is a use-after-free report. */
typedef struct reader {
    al_state *s;
    atomic_bool *stop;
    long lookups;
} reader;

static void *read_tokens(void *arg)
{
    reader *r = arg;
    al_thread *t = al_thread_get(r->s);
    uint8_t d[32];
    al_sha256("tok-a", 5, d);
    while (!atomic_load(r->stop)) {
        al_read_begin(t);
        const al_entry *e = al_tokens_find_digest(atomic_load(&r->s->tokens), d);
        if (e)
            assert_int_equal(strncmp(e->principal, "alice", 5), 0);
        al_read_end(t);
        r->lookups++;
    }
    return NULL;
}

static void test_rcu_under_readers(void **st)
{
    (void)st;
    char l1[200], text[4000];
    write_file(path("rcu-tokens"), token_line("tok-a", "alice", l1));
    al_state *s = start(config(NULL, path("rcu-tokens")));
    atomic_bool stop = false;
    reader r[3] = {{s, &stop, 0}, {s, &stop, 0}, {s, &stop, 0}};
    pthread_t th[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&th[i], NULL, read_tokens, &r[i]), 0);
    for (int k = 0; k < 8; k++) {
        size_t len = 0;
        for (int i = 0; i <= k; i++) {
            char tok[16], pr[16], l[200];
            snprintf(tok, sizeof tok, "tok-%d", i);
            snprintf(pr, sizeof pr, "alice%d", k);
            len += (size_t)snprintf(text + len, sizeof text - len, "%s",
                                    token_line(i ? tok : "tok-a", pr, l));
        }
        write_file(path("rcu-tokens"), text);
        char want[16];
        snprintf(want, sizeof want, "alice%d", k);
        assert_true(wait_for(s, "tok-a", want, 2000));
    }
    atomic_store(&stop, true);
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        assert_true(r[i].lookups > 0);
    }
    al_state_stop(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines_from_threads),
        cmocka_unit_test(test_rotation_loses_nothing),
        cmocka_unit_test(test_drops_counted_and_logged),
        cmocka_unit_test(test_bad_log_path),
        cmocka_unit_test(test_tokens_reload),
        cmocka_unit_test(test_broken_tokens_at_start),
        cmocka_unit_test(test_rcu_under_readers),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
