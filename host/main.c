/* rpchost: start-up and the control loop.
 *
 * Start-up: settings -> log level -> bind the listening sockets (any error
 * is one line and exit 2) -> the supervisor (supervisor.c) forks the
 * serving process, which runs serve(): crash handlers -> server_init
 * (TLS, listen) -> registry, built-in services, plugin directory (watched
 * before it is scanned, so a file that arrives in between is not missed)
 * -> workers -> "serving on ...". --no-supervisor runs serve() in the
 * started process itself (debugging under gdb).
 *
 * The main thread then is the control thread: signals (signalfd), plugin
 * directory events (inotify), registry work (instances to finalise, admin
 * jobs) and drain deadlines. Workers never block on any of it. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "builtin/builtin.h"
#include "config/config.h"
#include "core/core.h"
#include "daemon/daemon.h"
#include "registry/registry.h"
#include "metrics/metrics.h"
#include "server.h"
#include "crash/crash.h"
#include "supervisor.h"

static void describe_listen(const rh_settings *s, char *out, size_t outlen)
{
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < s->n_listen && n < outlen; i++) {
        const settings_listen *l = &s->listen[i];
        int k;
        if (l->unix_socket)
            k = snprintf(out + n, outlen - n, "%sunix:%s", i ? ", " : "", l->host);
        else if (strchr(l->host, ':'))
            k = snprintf(out + n, outlen - n, "%s[%s]:%s", i ? ", " : "", l->host, l->port);
        else
            k = snprintf(out + n, outlen - n, "%s%s:%s", i ? ", " : "", l->host, l->port);
        if (k < 0) break;
        n += (size_t)k;
    }
}

/* Set before the serving process exists when systemd passed the listening
 * sockets: what they are, for the serving-on line. */
static char activated_where[1024];

static int add_fd(int ep, int fd)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* STATUS= for `systemctl status`: plugins and calls, every few seconds. */
#define STATUS_INTERVAL_MS 2000

static void send_status(const char *where)
{
    if (!sdnotify_active()) return;
    reg_plugin_info *rows = NULL;
    size_t n = reg_list(&rows), plugins = 0, draining = 0;
    int64_t calls = 0;
    for (size_t i = 0; i < n; i++) {
        if (rows[i].builtin) continue;
        if (rows[i].draining) draining++;
        else plugins++;
        calls += rows[i].in_flight;
    }
    free(rows);
    sdnotify_send("STATUS=serving on %s: %zu plugins (%zu draining), %lld calls in flight", where,
                  plugins, draining, (long long)calls);
}

static void on_sighup(rh_settings *s)
{
    sdnotify_reloading();
    log_info("SIGHUP: rescanning %s, reloading TLS certificates and plugin configuration",
             s->plugins_dir);
    if (settings_reload_sections(s) == 0) reg_reconfigure();
    reg_rescan();
    if (!s->plaintext && server_reload_tls() < 0)
        log_error("SIGHUP: TLS certificates not reloaded; new connections keep the old ones");
    sdnotify_send("READY=1");
}

/* Runs until SIGTERM or SIGINT. */
static int control_loop(rh_settings *s, int sfd, int wfd, const char *where)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) return -errno;
    int cfd = reg_control_fd();
    if (add_fd(ep, sfd) < 0 || add_fd(ep, cfd) < 0 || (wfd >= 0 && add_fd(ep, wfd) < 0)) {
        int e = errno;
        close(ep);
        return -e;
    }
    bool stop = false;
    uint32_t wd_ms = sdnotify_watchdog_interval_ms();
    int64_t wd_next = wd_ms ? now_ms() : INT64_MAX;
    int64_t status_next = sdnotify_active() ? now_ms() : INT64_MAX;
    while (!stop) {
        int64_t now = now_ms();
        if (now >= wd_next) {
            sdnotify_send("WATCHDOG=1");
            wd_next = now + wd_ms;
        }
        if (now >= status_next) {
            send_status(where);
            status_next = now + STATUS_INTERVAL_MS;
        }
        int timeout = reg_next_timeout_ms();
        int64_t next = wd_next < status_next ? wd_next : status_next;
        if (next != INT64_MAX) {
            int64_t left = next - now_ms();
            if (left < 0) left = 0;
            if (timeout < 0 || left < timeout) timeout = (int)left;
        }
        struct epoll_event evs[8];
        int n = epoll_wait(ep, evs, 8, timeout);
        if (n < 0 && errno != EINTR) {
            log_error("control loop: epoll_wait: %s", strerror(errno));
            break;
        }
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == sfd) {
                struct signalfd_siginfo si;
                while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
                    if (si.ssi_signo == SIGHUP) {
                        on_sighup(s);
                    } else {
                        sdnotify_send("STOPPING=1");
                        log_info("%s: stopping; running calls get up to %.1f s",
                                 strsignal((int)si.ssi_signo), s->drain_timeout_ms / 1000.0);
                        stop = true;
                    }
                }
            } else if (fd == wfd) {
                watch_handle();
            } else if (fd == cfd) {
                reg_control_run();
            }
        }
        reg_tick();
    }
    close(ep);
    return 0;
}

/* Who we serve as, and whether the plugin directory is fit to load code
 * from for that user (docs/deploy-debian.md). One line and exit 2 if not. */
static int check_identity(const rh_settings *s)
{
    char why[512];
    uid_t uid;
    if (privdrop_plan(s->user, s->allow_root, &uid, why, sizeof why) < 0) {
        fprintf(stderr, "rpchost: %s\n", why);
        return -1;
    }
    trust_set_policy(!s->unsafe_plugin_dir, uid);
    if (s->unsafe_plugin_dir) {
        log_warn("plugin trust checks are off (--unsafe-plugin-dir): any user who can write "
                 "to %s can run code in this server", s->plugins_dir);
        return 0;
    }
    if (trust_check_dir(s->plugins_dir, uid, why, sizeof why) < 0) {
        fprintf(stderr, "rpchost: plugin directory refused: %s (--unsafe-plugin-dir allows it "
                        "for development)\n", why);
        return -1;
    }
    return 0;
}

/* The series exist before any plugin loads: routes pick up their method's
 * series when they are built. */
static int metrics_init(const rh_settings *s)
{
    double bounds[MX_MAX_BUCKETS];
    size_t n_bounds = 0;
    char why[128];
    if (s->metrics_buckets &&
        mx_parse_buckets(s->metrics_buckets, bounds, &n_bounds, why, sizeof why) < 0) {
        fprintf(stderr, "rpchost: metrics_buckets: %s\n", why);
        return -1;
    }
    if (mx_init(s->workers) < 0 || mx_grpc_init(n_bounds ? bounds : NULL, n_bounds) < 0 ||
        mx_host_init(s->workers) < 0 || mx_process_init() < 0) {
        fprintf(stderr, "rpchost: cannot set up the metrics (out of memory)\n");
        return -1;
    }
    return 0;
}

static int metrics_listen(const rh_settings *s)
{
    mx_http_config c = {
        .host = s->metrics_listen.host,
        .port = s->metrics_listen.port,
        .token_file = s->metrics_token_file,
        .cert = !s->metrics_tls ? NULL : s->metrics_cert ? s->metrics_cert : s->cert_file,
        .key = !s->metrics_tls ? NULL : s->metrics_key ? s->metrics_key : s->key_file,
    };
    return mx_http_start(&c);
}

static void metrics_free(void)
{
    mx_http_stop();
    mx_collect_clear();
    mx_grpc_free();
    mx_host_free();
    mx_shutdown();
}

/* Built-in services go through reg_add_builtin like any plugin. */
static int add_builtins(void)
{
    if (reg_add_builtin(builtin_reflection()) < 0) return -1;
    if (reg_add_builtin(builtin_health()) < 0) return -1;
    return reg_add_builtin(builtin_admin());
}

/* The serving process: today's host, threads and all. chan is the
 * supervisor's channel (-1 when not supervised). */
static int serve(rh_settings *s, const listen_set *sets, int chan)
{
    /* Block the control signals before any thread exists, so every worker
     * inherits the mask and only the signalfd sees them. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    int sfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0) {
        fprintf(stderr, "rpchost: signalfd: %s\n", strerror(errno));
        return 2;
    }
    if (crash_init(chan) < 0) log_warn("crash handlers not installed: %s", strerror(errno));
    /* The scrape listener first: once the gRPC port accepts, so does it. */
    if (s->metrics_on && (metrics_init(s) < 0 || metrics_listen(s) < 0)) return 2;
    if (server_init(s, sets) < 0) return 2; /* it printed the one line */
    /* Keys are read: the serving process drops to --user (the supervisor,
     * which runs no plugin code, keeps its identity to start the next). */
    char why[512];
    if (privdrop_switch(s->user, why, sizeof why) < 0) {
        fprintf(stderr, "rpchost: %s\n", why);
        return 2;
    }
    if (s->user) log_info("running as %s (uid %u)", s->user, (unsigned)geteuid());
    reg_set_host(host_api(), server_cancel_instance);
    if (reg_init() < 0 || add_builtins() < 0) return 2;
    int wfd = watch_start(s->plugins_dir);
    if (wfd < 0)
        log_warn("plugin directory %s is not watched: changes need SIGHUP", s->plugins_dir);
    if (reg_load_dir(s->plugins_dir) < 0) return 2;
    if (server_start() < 0) {
        fprintf(stderr, "rpchost: cannot start the worker threads\n");
        return 2;
    }
    char where[1100];
    if (activated_where[0])
        snprintf(where, sizeof where, "%s (socket activation)", activated_where);
    else
        describe_listen(s, where, sizeof where);
    log_info("serving on %s (%s, %d workers)", where, s->plaintext ? "h2c" : "TLS",
             server_workers(s));
    if (s->metrics_on)
        log_info("metrics on %s://%s%s%s:%s/metrics%s", s->metrics_tls ? "https" : "http",
                 strchr(s->metrics_listen.host, ':') ? "[" : "", s->metrics_listen.host,
                 strchr(s->metrics_listen.host, ':') ? "]" : "", s->metrics_listen.port,
                 s->metrics_token_file ? " (bearer token)" : "");
    sdnotify_send("READY=1\nSTATUS=serving on %s", where);
    sup_report_ready();

    if (control_loop(s, sfd, wfd, where) < 0) log_error("control loop failed; stopping");

    watch_stop();
    health_begin_shutdown();
    server_shutdown(s->drain_timeout_ms);
    mx_http_stop(); /* scrapes see the drain; not the registry's teardown */
    reg_shutdown();
    server_free(); /* after fini: plugins may release calls until then */
    if (s->metrics_on) metrics_free();
    log_info("stopped");
    close(sfd);
    return 0;
}

/* Socket activation: every worker serves every passed socket (a dup of
 * it, so each worker closes its own; Unix sockets on worker 0 only, as for
 * bound ones). The listen settings are then not bound. */
static int passed_sets(const int *fds, const bool *is_unix, size_t n, listen_set *sets,
                       int n_workers)
{
    for (int w = 0; w < n_workers; w++) {
        listen_set *ls = &sets[w];
        ls->n = 0;
        for (size_t i = 0; i < n; i++) {
            if (is_unix[i] && w != 0) continue;
            int fd = w == 0 ? fds[i] : fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
            if (fd < 0) {
                fprintf(stderr, "rpchost: socket activation: dup: %s\n", strerror(errno));
                return -1;
            }
            ls->fd[ls->n] = fd;
            ls->is_unix[ls->n] = is_unix[i];
            ls->n++;
        }
    }
    return 0;
}

static int listen_sets(const rh_settings *s, listen_set *sets, int n_workers)
{
    int fds[WORKER_MAX_LISTENERS];
    bool is_unix[WORKER_MAX_LISTENERS];
    char why[256];
    int n = listenfds_take(fds, is_unix, WORKER_MAX_LISTENERS, why, sizeof why);
    if (n < 0) {
        fprintf(stderr, "rpchost: socket activation: %s\n", why);
        return -1;
    }
    if (n > 0) {
        listenfds_describe(fds, (size_t)n, activated_where, sizeof activated_where);
        return passed_sets(fds, is_unix, (size_t)n, sets, n_workers);
    }
    for (int i = 0; i < n_workers; i++)
        if (worker_bind(i, s, &sets[i]) < 0) {
            for (int k = 0; k < i; k++) listen_set_close(&sets[k]);
            return -1; /* it logged the one line */
        }
    return 0;
}

int main(int argc, char **argv)
{
    static rh_settings s;
    int rc = settings_load(&s, argc, argv);
    if (rc == 1) return 0;
    if (rc != 0) return 2;
    settings_set(&s);
    log_set_level((rh_log_level)s.log_level);
    signal(SIGPIPE, SIG_IGN);
    sdnotify_init(); /* the serving process inherits it */

    struct stat st;
    if (stat(s.plugins_dir, &st) < 0) {
        fprintf(stderr, "rpchost: plugin directory %s: %s\n", s.plugins_dir, strerror(errno));
        return 2;
    }
    if (!S_ISDIR(st.st_mode)) {
        fprintf(stderr, "rpchost: plugin directory %s is not a directory\n", s.plugins_dir);
        return 2;
    }
    if (check_identity(&s) < 0) return 2;
    /* The sockets belong to the supervisor: bound once (or passed by
     * systemd), they outlive every serving process. */
    int n_workers = server_workers(&s);
    listen_set *sets = calloc((size_t)n_workers, sizeof *sets);
    if (!sets) return 2;
    if (listen_sets(&s, sets, n_workers) < 0) {
        free(sets);
        return 2; /* it printed the one line */
    }
    rc = s.no_supervisor ? serve(&s, sets, -1) : supervisor_run(&s, sets, n_workers, serve);
    free(sets);
    settings_set(NULL);
    settings_free(&s);
    return rc;
}
