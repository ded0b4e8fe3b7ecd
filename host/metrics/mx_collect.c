/* Collectors (mx_collect.h) and the process_ series. */
#include "metrics/mx_collect.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "metrics/mx_core.h"

static struct {
    mx_collect_fn fn;
    void *arg;
} collectors[MX_MAX_COLLECTORS];
static int n_collectors;
static pthread_mutex_t run_lock = PTHREAD_MUTEX_INITIALIZER;

int mx_collect_add(mx_collect_fn fn, void *arg)
{
    if (n_collectors == MX_MAX_COLLECTORS) return -ENOSPC;
    collectors[n_collectors].fn = fn;
    collectors[n_collectors].arg = arg;
    n_collectors++;
    return 0;
}

void mx_collect_run(void)
{
    pthread_mutex_lock(&run_lock);
    for (int i = 0; i < n_collectors; i++) collectors[i].fn(collectors[i].arg);
    pthread_mutex_unlock(&run_lock);
}

void mx_collect_clear(void)
{
    pthread_mutex_lock(&run_lock);
    n_collectors = 0;
    pthread_mutex_unlock(&run_lock);
}

/* ---------------------------------------------------------------- process_ */

static struct {
    const mx_series *cpu, *rss, *vsize, *open_fds, *max_fds, *start_time;
} P;

static double boot_time(void)
{
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return 0;
    char line[256];
    double bt = 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "btime ", 6) == 0) {
            bt = strtod(line + 6, NULL);
            break;
        }
    fclose(f);
    return bt;
}

static size_t count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d) return 0;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n ? n - 1 : 0; /* not the directory's own descriptor */
}

/* /proc/self/stat: utime(14) stime(15) starttime(22) vsize(23) rss(24),
 * counted after the ")" that ends the command name. */
static void collect_process(void *arg)
{
    (void)arg;
    FILE *f = fopen("/proc/self/stat", "r");
    if (!f) return;
    char line[1024];
    char *ok = fgets(line, sizeof line, f);
    fclose(f);
    char *p = ok ? strrchr(line, ')') : NULL;
    if (!p) return;
    unsigned long long v[32] = {0};
    int field = 2; /* ")" ends field 2 */
    char *save = NULL;
    for (char *tok = strtok_r(p + 1, " ", &save); tok && field < 31;
         tok = strtok_r(NULL, " ", &save)) {
        field++;
        v[field] = strtoull(tok, NULL, 10);
    }
    double tick = (double)sysconf(_SC_CLK_TCK);
    long page = sysconf(_SC_PAGESIZE);
    mx_gauge_set(P.cpu, (double)(v[14] + v[15]) / tick);
    mx_gauge_set(P.start_time, boot_time() + (double)v[22] / tick);
    mx_gauge_set(P.vsize, (double)v[23]);
    mx_gauge_set(P.rss, (double)v[24] * (double)page);
    mx_gauge_set(P.open_fds, (double)count_fds());
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        mx_gauge_set(P.max_fds, rl.rlim_cur == RLIM_INFINITY ? -1 : (double)rl.rlim_cur);
}

int mx_process_init(void)
{
    mx_family *cpu = mx_family_new(MX_GAUGE, "process_cpu_seconds_total",
                                   "Total user and system CPU time spent in seconds.", NULL, NULL,
                                   0, NULL, NULL, 0);
    mx_family *rss = mx_family_new(MX_GAUGE, "process_resident_memory_bytes",
                                   "Resident memory size in bytes.", NULL, NULL, 0, NULL, NULL, 0);
    mx_family *vs = mx_family_new(MX_GAUGE, "process_virtual_memory_bytes",
                                  "Virtual memory size in bytes.", NULL, NULL, 0, NULL, NULL, 0);
    mx_family *of = mx_family_new(MX_GAUGE, "process_open_fds", "Number of open file descriptors.",
                                  NULL, NULL, 0, NULL, NULL, 0);
    mx_family *mf = mx_family_new(MX_GAUGE, "process_max_fds",
                                  "Maximum number of open file descriptors.", NULL, NULL, 0, NULL,
                                  NULL, 0);
    mx_family *st = mx_family_new(MX_GAUGE, "process_start_time_seconds",
                                  "Start time of the process since unix epoch in seconds.", NULL,
                                  NULL, 0, NULL, NULL, 0);
    P.cpu = mx_series_get(cpu, NULL);
    P.rss = mx_series_get(rss, NULL);
    P.vsize = mx_series_get(vs, NULL);
    P.open_fds = mx_series_get(of, NULL);
    P.max_fds = mx_series_get(mf, NULL);
    P.start_time = mx_series_get(st, NULL);
    if (!P.cpu || !P.rss || !P.vsize || !P.open_fds || !P.max_fds || !P.start_time) return -1;
    /* Kept as a gauge cell (the kernel counts; we copy) and exposed as the
     * counter client libraries export: reading a counter sums the shards,
     * and only the shared one holds a value. */
    cpu->type = MX_COUNTER;
    return mx_collect_add(collect_process, NULL);
}
