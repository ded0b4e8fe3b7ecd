/* The supervising process: fork the serving process, read its reports,
 * restart it when it dies, forward signals. See supervisor.h.
 *
 * Single-threaded: one epoll over a signalfd (TERM, INT, HUP, CHLD) and
 * the channel. It never loads a plugin, never touches TLS and runs no
 * plugin code, so nothing a plugin does can take it down. */
#define _GNU_SOURCE
#include "supervisor.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/core.h"
#include "crash/crash.h"

#define SUP_RX_MAX (sizeof(sup_msg_hdr) + sizeof(sup_build_msg) + SUP_MAX_TEXT + 64)
/* A serving process that dies before it is ready, without a record that
 * names a plugin, would be restarted in a tight loop (a broken host, not a
 * plugin): wait longer each time, up to this. */
#define SUP_BACKOFF_MAX_MS 2000


static struct {
    pid_t child;
    bool ready;      /* the current child reported ready */
    bool stopping;   /* TERM/INT received */
    int stop_signal;
    int restarts;
    int backoff_ms;
    int64_t respawn_at_ms; /* CLOCK_MONOTONIC; 0 = none pending */
    int64_t died_at_ns;
    bool crash_record_seen; /* since the last death */
    uint8_t *rx;
    int own_fds[3]; /* epoll, signalfd, our channel end: not the child's */
} S = {.own_fds = {-1, -1, -1}};

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Reads every pending report (non-blocking). */
static void read_channel(int fd, const rh_settings *s)
{
    for (;;) {
        struct iovec iov = {S.rx, SUP_RX_MAX};
        union {
            struct cmsghdr c;
            char buf[CMSG_SPACE(sizeof(int) * 4)];
        } ctl;
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
                            .msg_controllen = sizeof ctl.buf};
        ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        int memfd = -1;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
            if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
            size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < k; i++) {
                int fd2;
                memcpy(&fd2, CMSG_DATA(c) + i * sizeof(int), sizeof fd2);
                if (memfd < 0) memfd = fd2;
                else close(fd2); /* one per message; never keep extras */
            }
        }
        sup_msg_hdr h;
        if ((size_t)n < sizeof h || (mh.msg_flags & MSG_TRUNC)) {
            if (memfd >= 0) close(memfd);
            continue;
        }
        memcpy(&h, S.rx, sizeof h);
        size_t len = (size_t)n - sizeof h;
        if (h.type == SUP_MSG_READY) {
            S.ready = true;
            S.backoff_ms = 0;
            if (S.restarts)
                log_info("serving process %d ready %.1f ms after the previous one died",
                         (int)S.child, (mono_ns() - S.died_at_ns) / 1e6);
        } else if (h.type == SUP_MSG_CRASH) {
            S.crash_record_seen = true;
        }
        /* The payload is aligned for the structs: S.rx is malloc'ed and
         * the header is 8 bytes. */
        sup_apply(h.type, S.rx + sizeof h, len, memfd, s);
    }
}

static pid_t spawn(rh_settings *s, const listen_set *sets, int child_end, sup_serve_fn serve)
{
    pid_t pid = fork();
    if (pid < 0) {
        log_error("supervisor: fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        /* The serving process: dies with the supervisor, gets the signals
         * the old single process got (main blocks and reads them). */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() == 1) _exit(0);
        sigset_t all;
        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        for (int i = 0; i < 3; i++)
            if (S.own_fds[i] >= 0) close(S.own_fds[i]);
        sup_chan = child_end;
        _exit(serve(s, sets, child_end));
    }
    S.child = pid;
    S.ready = false;
    S.crash_record_seen = false;
    return pid;
}

static void describe_death(int status, char *out, size_t outlen)
{
    if (WIFSIGNALED(status)) {
        const char *ab = sigabbrev_np(WTERMSIG(status));
        snprintf(out, outlen, "killed by SIG%s (%s)", ab ? ab : "?", strsignal(WTERMSIG(status)));
    } else {
        snprintf(out, outlen, "exited with status %d", WEXITSTATUS(status));
    }
}

/* The child is gone: restart it, or end with its status. Returns -1 to
 * keep running, else the exit status of the supervisor. */
static int on_child_exit(int status, int chan_fd, const rh_settings *s)
{
    read_channel(chan_fd, s); /* its last reports, the crash record among them */
    pid_t pid = S.child;
    S.child = 0;
    char how[128];
    describe_death(status, how, sizeof how);
    if (S.stopping) {
        if (!WIFEXITED(status)) log_error("serving process %d %s while stopping", (int)pid, how);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
    }
    if (!S.ready && !S.restarts && WIFEXITED(status)) {
        /* Start-up failed (bad certificate, ...): it printed why. */
        return WEXITSTATUS(status);
    }
    S.died_at_ns = mono_ns();
    if (!S.crash_record_seen)
        log_error("serving process %d %s (no crash record: killed from outside, out of memory, "
                  "exit() in a plugin, or a fault on a plugin thread's overflowed stack)",
                  (int)pid, how);
    else
        log_warn("serving process %d %s; restarting it", (int)pid, how);
    int delay = 0;
    if (!S.ready && !S.crash_record_seen) {
        S.backoff_ms = S.backoff_ms ? S.backoff_ms * 2 : 50;
        if (S.backoff_ms > SUP_BACKOFF_MAX_MS) S.backoff_ms = SUP_BACKOFF_MAX_MS;
        delay = S.backoff_ms;
        log_warn("serving process died before it was ready; next start in %d ms", delay);
    }
    S.respawn_at_ms = S.died_at_ns / 1000000 + delay;
    (void)s;
    return -1;
}

static void forward(int sig)
{
    if (S.child > 0) kill(S.child, sig);
}

static int add_fd(int ep, int fd)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

int supervisor_run(rh_settings *s, listen_set *sets, int n_sets, sup_serve_fn serve)
{
    int sv[2];
    S.rx = malloc(SUP_RX_MAX);
    if (!S.rx || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        fprintf(stderr, "rpchost: cannot create the supervisor's channel: %s\n", strerror(errno));
        return 2;
    }
    /* Room for a burst of build reports while we are busy forking. */
    int rcv = 4 << 20;
    setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    sigaddset(&sigs, SIGCHLD);
    sigprocmask(SIG_BLOCK, &sigs, NULL);
    int sfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (sfd < 0 || ep < 0 || add_fd(ep, sfd) < 0 || add_fd(ep, sv[0]) < 0) {
        fprintf(stderr, "rpchost: supervisor set-up: %s\n", strerror(errno));
        return 2;
    }
    S.own_fds[0] = ep;
    S.own_fds[1] = sfd;
    S.own_fds[2] = sv[0];
    if (spawn(s, sets, sv[1], serve) < 0) return 2;
    int result = -1;
    while (result < 0) {
        int timeout = -1;
        if (S.respawn_at_ms) {
            int64_t left = S.respawn_at_ms - mono_ns() / 1000000;
            timeout = left > 0 ? (int)left : 0;
        }
        struct epoll_event evs[4];
        int n = epoll_wait(ep, evs, 4, timeout);
        if (n < 0 && errno != EINTR) {
            log_error("supervisor: epoll_wait: %s", strerror(errno));
            forward(SIGTERM);
        }
        for (int i = 0; i < n && result < 0; i++) {
            if (evs[i].data.fd == sv[0]) {
                read_channel(sv[0], s);
                continue;
            }
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
                int sig = (int)si.ssi_signo;
                if (sig == SIGCHLD) continue; /* reaped below */
                if (sig == SIGHUP) {
                    /* The next serving process starts with the reloaded
                     * settings too; this one reloads them itself. */
                    settings_reload_sections(s);
                    log_set_level((rh_log_level)s->log_level);
                    forward(SIGHUP);
                } else {
                    S.stopping = true;
                    S.stop_signal = sig;
                    /* New connections are refused from now on, as before:
                     * the serving process closes its copies at once. */
                    for (int k = 0; k < n_sets; k++) listen_set_close(&sets[k]);
                    forward(sig);
                    if (!S.child) result = 0;
                }
            }
            int status;
            pid_t pid;
            while (result < 0 && (pid = waitpid(-1, &status, WNOHANG)) > 0)
                if (pid == S.child) result = on_child_exit(status, sv[0], s);
        }
        if (result < 0 && S.respawn_at_ms && !S.stopping &&
            mono_ns() / 1000000 >= S.respawn_at_ms) {
            S.respawn_at_ms = 0;
            S.restarts++;
            if (spawn(s, sets, sv[1], serve) < 0) {
                S.respawn_at_ms = mono_ns() / 1000000 + 100;
            }
        }
        if (result < 0 && S.stopping && !S.child) result = 0;
    }
    for (int k = 0; k < n_sets; k++) listen_set_close(&sets[k]);
    close(ep);
    close(sfd);
    close(sv[0]);
    close(sv[1]);
    sup_state_free();
    free(S.rx);
    return result;
}
