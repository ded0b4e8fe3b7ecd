/* What outlives a serving process: builds (kept memfd copies, crash
 * counts, quarantines), file records. Both processes run the same apply
 * code: the serving process applies its own change and reports it; the
 * supervisor applies what it is told and, from crash records, counts and
 * quarantines. The next serving process inherits the tables by fork.
 * See supervisor.h. */
#define _GNU_SOURCE
#include "crash/crash.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/core.h"

static struct {
    sup_build builds[SUP_MAX_BUILDS];
    size_t n_builds;
    sup_file files[SUP_MAX_FILES];
    size_t n_files;
    uint64_t clock; /* touches, for eviction */
} T;

int sup_chan = -1; /* the serving process's end (supervisor.c sets it) */

static int64_t now_ms(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Copies src, cut to fit (crash lines may be longer than we keep). */
static void set_str(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strnlen(src, cap - 1) : 0;
    if (n) memcpy(dst, src, n);
    dst[n] = '\0';
}

bool sup_attached(void) { return sup_chan >= 0; }

sup_build *sup_builds(size_t *n)
{
    *n = T.n_builds;
    return T.builds;
}

const sup_file *sup_files(size_t *n)
{
    *n = T.n_files;
    return T.files;
}

sup_build *sup_build_find(const char *file, const char *key)
{
    for (size_t i = 0; i < T.n_builds; i++)
        if (strcmp(T.builds[i].file, file) == 0 && strcmp(T.builds[i].key, key) == 0)
            return &T.builds[i];
    return NULL;
}

sup_build *sup_blocked_of(const char *file)
{
    for (size_t i = 0; i < T.n_builds; i++)
        if (T.builds[i].state != BUILD_OK && strcmp(T.builds[i].file, file) == 0)
            return &T.builds[i];
    return NULL;
}

/* ------------------------------------------------------------- builds */

static void build_clear(sup_build *b)
{
    free(b->services);
    free(b->methods);
    free(b->interceptors);
    if (b->memfd >= 0) close(b->memfd);
    memset(b, 0, sizeof *b);
    b->memfd = -1;
}

/* A slot for a new build: a free one, else the least recently touched
 * build that neither serves nor is blocked (its crash count is lost). */
static sup_build *build_slot(void)
{
    if (T.n_builds < SUP_MAX_BUILDS) {
        sup_build *b = &T.builds[T.n_builds++];
        memset(b, 0, sizeof *b);
        b->memfd = -1;
        return b;
    }
    sup_build *victim = NULL;
    for (size_t i = 0; i < T.n_builds; i++) {
        sup_build *b = &T.builds[i];
        if (b->current || b->state != BUILD_OK) continue;
        if (!victim || b->touched < victim->touched) victim = b;
    }
    if (victim) build_clear(victim);
    return victim;
}

static sup_build *build_get(const char *file, const char *key)
{
    sup_build *b = sup_build_find(file, key);
    if (!b && (b = build_slot())) {
        set_str(b->file, sizeof b->file, file);
        set_str(b->key, sizeof b->key, key);
    }
    if (b) b->touched = ++T.clock;
    return b;
}

static char *text_dup(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    if (!s) return NULL;
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

/* Drops a build that neither serves nor is blocked nor has crashed. */
static void build_maybe_forget(sup_build *b)
{
    if (b->current || b->state != BUILD_OK || b->crashes) return;
    build_clear(b);
    *b = T.builds[--T.n_builds];
    if (b != &T.builds[T.n_builds]) {
        /* the moved slot's memfd now belongs to b */
        T.builds[T.n_builds].memfd = -1;
        T.builds[T.n_builds].services = T.builds[T.n_builds].methods = NULL;
        T.builds[T.n_builds].interceptors = NULL;
    }
}

static void apply_build(const sup_build_msg *m, const char *text, size_t text_len, int memfd)
{
    for (size_t i = 0; i < T.n_builds; i++) {
        sup_build *o = &T.builds[i];
        if (!o->current || strcmp(o->file, m->file) != 0 || strcmp(o->key, m->key) == 0) continue;
        o->current = false; /* replaced */
        if (o->memfd >= 0) close(o->memfd);
        o->memfd = -1;
    }
    sup_build *b = build_get(m->file, m->key);
    if (!b) {
        log_error("supervisor: more than %d plugin builds to remember; %s is not kept for "
                  "restarts",
                  SUP_MAX_BUILDS, m->file);
        if (memfd >= 0) close(memfd);
        return;
    }
    set_str(b->name, sizeof b->name, m->name);
    set_str(b->version, sizeof b->version, m->version);
    set_str(b->build_id, sizeof b->build_id, m->build_id);
    b->ident = m->ident;
    size_t sl = m->services_len <= text_len ? m->services_len : text_len;
    size_t ml = m->methods_len <= text_len - sl ? m->methods_len : text_len - sl;
    size_t il = m->interceptors_len <= text_len - sl - ml ? m->interceptors_len
                                                          : text_len - sl - ml;
    free(b->services);
    free(b->methods);
    free(b->interceptors);
    b->services = text_dup(text, sl);
    b->methods = text_dup(text + sl, ml);
    b->interceptors = text_dup(text + sl + ml, il);
    b->current = true;
    if (memfd >= 0) {
        if (b->memfd >= 0) close(b->memfd);
        b->memfd = memfd;
    }
    /* A build that serves again after an admin reload is not blocked. */
    b->state = BUILD_OK;
    b->reason[0] = '\0';
}

/* ---------------------------------------------------------- file records */

static void apply_file(const sup_file_msg *m)
{
    size_t i = 0;
    while (i < T.n_files && strcmp(T.files[i].path, m->file) != 0) i++;
    if (m->state < 0) {
        if (i < T.n_files) T.files[i] = T.files[--T.n_files];
        /* the file is gone: no build of it serves any more */
        for (size_t k = 0; k < T.n_builds; k++) {
            sup_build *b = &T.builds[k];
            if (!b->current || strcmp(b->file, m->file) != 0) continue;
            b->current = false;
            if (b->memfd >= 0) close(b->memfd);
            b->memfd = -1;
            build_maybe_forget(b);
            break;
        }
        return;
    }
    if (i == T.n_files) {
        if (T.n_files == SUP_MAX_FILES) return;
        T.n_files++;
        set_str(T.files[i].path, sizeof T.files[i].path, m->file);
    }
    T.files[i].ident = m->ident;
    T.files[i].state = m->state;
}

/* Unloaded by the admin (state FR_UNLOADED == 2 in registry.c): the build
 * does not serve any more. */
static void apply_unloaded(const char *file)
{
    for (size_t k = 0; k < T.n_builds; k++) {
        sup_build *b = &T.builds[k];
        if (!b->current || strcmp(b->file, file) != 0) continue;
        b->current = false;
        if (b->memfd >= 0) close(b->memfd);
        b->memfd = -1;
        build_maybe_forget(b);
        return;
    }
}

static void apply_lift(const char *file)
{
    for (size_t i = 0; i < T.n_builds; i++) {
        sup_build *b = &T.builds[i];
        if (strcmp(b->file, file) != 0) continue;
        b->state = BUILD_OK;
        b->reason[0] = '\0';
        b->crashes = 0;
        b->n_recent = 0;
    }
}

/* ----------------------------------------------------------- crashes */

static void apply_crash(const crash_record *r, const rh_settings *s)
{
    char line[1400];
    crash_format(r, line, sizeof line);
    log_error("serving process crashed: %s", line);
    if (r->found_by == CRASH_BY_NONE || !r->file[0] || !r->build_key[0]) return;
    sup_build *b = build_get(r->file, r->build_key);
    if (!b) return;
    if (!b->name[0]) {
        set_str(b->name, sizeof b->name, r->name);
        set_str(b->version, sizeof b->version, r->version);
        set_str(b->build_id, sizeof b->build_id, r->build_id);
    }
    int64_t now = now_ms(CLOCK_MONOTONIC);
    b->crashes++;
    b->last_crash_unix_ms = now_ms(CLOCK_REALTIME);
    set_str(b->last_crash, sizeof b->last_crash, line);
    b->recent[b->n_recent % SUP_MAX_CRASH_WINDOW] = now;
    b->n_recent++;
    if (r->in_init) {
        /* It would crash the same way on every start: refuse it now; the
         * build it was to replace (kept) serves again. */
        b->state = BUILD_REFUSED;
        b->current = false;
        if (b->memfd >= 0) close(b->memfd);
        b->memfd = -1;
        snprintf(b->reason, sizeof b->reason, "crashed in its init (%s)",
                 sigabbrev_np(r->signo) ? sigabbrev_np(r->signo) : "signal");
        log_error("plugin %s %s (%s) refused: it crashed in its init; the loaded version (if "
                  "any) keeps serving; replace the file or reload it with the admin service to "
                  "try again",
                  b->name, b->version, b->file);
        return;
    }
    uint32_t limit = s->crash_quarantine_count;
    if (!limit || b->state != BUILD_OK) return;
    /* the limit-th most recent crash within the window? */
    uint32_t have = b->n_recent < SUP_MAX_CRASH_WINDOW ? b->n_recent : SUP_MAX_CRASH_WINDOW;
    if (have < limit) return;
    int64_t oldest = b->recent[(b->n_recent - limit) % SUP_MAX_CRASH_WINDOW];
    if (now - oldest > (int64_t)s->crash_quarantine_window_ms) return;
    b->state = BUILD_QUARANTINED;
    b->current = false;
    if (b->memfd >= 0) close(b->memfd);
    b->memfd = -1;
    snprintf(b->reason, sizeof b->reason, "crashed the serving process %u times within %u s",
             limit, s->crash_quarantine_window_ms / 1000);
    log_error("plugin %s %s (%s) quarantined: %s; its methods answer UNAVAILABLE until its "
              "file changes or the admin service reloads it",
              b->name, b->version, b->file, b->reason);
}

void sup_apply(uint32_t type, const void *payload, size_t len, int memfd, const rh_settings *s)
{
    switch (type) {
    case SUP_MSG_CRASH:
        if (len >= sizeof(crash_record)) apply_crash(payload, s);
        break;
    case SUP_MSG_BUILD:
        if (len >= sizeof(sup_build_msg)) {
            const sup_build_msg *m = payload;
            apply_build(m, (const char *)payload + sizeof *m, len - sizeof *m, memfd);
            memfd = -1;
        }
        break;
    case SUP_MSG_FILE:
        if (len >= sizeof(sup_file_msg)) {
            const sup_file_msg *m = payload;
            apply_file(m);
            if (m->state == 2) apply_unloaded(m->file);
        }
        break;
    case SUP_MSG_LIFT:
        if (len >= sizeof(sup_lift_msg)) apply_lift(((const sup_lift_msg *)payload)->file);
        break;
    default:
        break;
    }
    if (memfd >= 0) close(memfd);
}

void sup_state_free(void)
{
    for (size_t i = 0; i < T.n_builds; i++) build_clear(&T.builds[i]);
    T.n_builds = 0;
    T.n_files = 0;
}

/* ------------------------------------------------ serving process side */

static void send_msg(uint32_t type, const void *a, size_t alen, const void *b, size_t blen,
                     int fd)
{
    if (sup_chan < 0) return;
    sup_msg_hdr h = {.type = type, .len = (uint32_t)(alen + blen)};
    struct iovec iov[3] = {{&h, sizeof h}, {(void *)a, alen}, {(void *)b, blen}};
    union {
        struct cmsghdr c;
        char buf[CMSG_SPACE(sizeof(int))];
    } ctl;
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = blen ? 3 : 2};
    if (fd >= 0) {
        memset(&ctl, 0, sizeof ctl);
        mh.msg_control = ctl.buf;
        mh.msg_controllen = sizeof ctl.buf;
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof fd);
    }
    /* Blocking: the supervisor reads at once; losing a build would lose
     * it for restarts. */
    while (sendmsg(sup_chan, &mh, MSG_NOSIGNAL) < 0) {
        if (errno == EINTR) continue;
        log_warn("cannot report to the supervisor: %s", strerror(errno));
        break;
    }
}

void sup_report_build(const sup_build_msg *m, const char *services, const char *methods,
                      const char *interceptors, int memfd)
{
    /* Cut at the limit (a plugin with thousands of methods): a quarantine
     * placeholder then lacks the rest, which answer UNIMPLEMENTED. */
    size_t sl = strlen(services), ml = strlen(methods), il = strlen(interceptors);
    if (il > SUP_MAX_TEXT / 4) il = 0;
    if (sl > SUP_MAX_TEXT - il) sl = SUP_MAX_TEXT - il;
    if (ml > SUP_MAX_TEXT - il - sl) ml = SUP_MAX_TEXT - il - sl;
    char *text = malloc(sl + ml + il + 1);
    if (!text) return;
    memcpy(text, services, sl);
    memcpy(text + sl, methods, ml);
    memcpy(text + sl + ml, interceptors, il);
    sup_build_msg copy = *m;
    copy.services_len = (uint32_t)sl;
    copy.methods_len = (uint32_t)ml;
    copy.interceptors_len = (uint32_t)il;
    /* Locally without the memfd: the serving process keeps its own. */
    apply_build(&copy, text, sl + ml + il, -1);
    send_msg(SUP_MSG_BUILD, &copy, sizeof copy, text, sl + ml + il, memfd);
    free(text);
}

void sup_report_file(const char *path, const struct stat *st, int state)
{
    sup_file_msg m;
    memset(&m, 0, sizeof m);
    set_str(m.file, sizeof m.file, path);
    if (st) {
        m.ident.dev = st->st_dev;
        m.ident.ino = st->st_ino;
        m.ident.size = st->st_size;
        m.ident.mtime = st->st_mtim;
    }
    m.state = state;
    apply_file(&m);
    if (state == 2) apply_unloaded(path);
    send_msg(SUP_MSG_FILE, &m, sizeof m, NULL, 0, -1);
}

void sup_report_lift(const char *file)
{
    sup_lift_msg m;
    memset(&m, 0, sizeof m);
    set_str(m.file, sizeof m.file, file);
    apply_lift(file);
    send_msg(SUP_MSG_LIFT, &m, sizeof m, NULL, 0, -1);
}

void sup_report_ready(void) { send_msg(SUP_MSG_READY, NULL, 0, NULL, 0, -1); }

void sup_close_inherited(void)
{
    for (size_t i = 0; i < T.n_builds; i++)
        if (T.builds[i].memfd >= 0) {
            close(T.builds[i].memfd);
            T.builds[i].memfd = -1;
        }
}
