/* Fatal-signal attribution in the serving process. See crash.h.
 *
 * The handler runs on a thread whose state may be anything (a stack that
 * overflowed, a heap a plugin corrupted): it reads only the image table
 * (plain stores published with a release flag), the faulting thread's
 * call pointer and the call's path and peer (bounded copies), and makes
 * only async-signal-safe calls (send, raise, signal, gettid) plus
 * backtrace(), which is primed at start so it never loads libgcc in the
 * handler. */
#define _GNU_SOURCE
#include "crash/crash.h"

#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <link.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>


#define CRASH_ALTSTACK_SIZE (64 * 1024)
#define CRASH_STACK_FRAMES 32

typedef struct crash_image {
    atomic_bool used;
    uintptr_t start, end, base; /* mapped range and load bias */
    const void *inst;
    char file[512];
    char name[64];
    char version[32];
    char build_id[65];
    char build_key[17];
} crash_image;

static crash_image images[CRASH_MAX_IMAGES];
static int chan = -1;
static atomic_int crashing; /* the first faulting thread writes the record */
static const int fatal_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};

__thread struct rh_call *crash_current_call;
static __thread void *altstack;
static __thread int thread_kind; /* 0: a thread the host did not mark */
static crash_call_describer describe_call;

void crash_set_call_describer(crash_call_describer fn) { describe_call = fn; }

/* The dlopen/init in progress (control thread). */
static struct {
    atomic_bool active;
    crash_image img;
} init_mark;

/* ---------------------------------------------------- safe string work */

static void copy_bounded(char *dst, size_t cap, const char *src, size_t n)
{
    size_t i = 0;
    if (src)
        for (; i < n && i + 1 < cap && src[i]; i++) dst[i] = src[i];
    dst[i] = '\0';
}

static void copy_str(char *dst, size_t cap, const char *src)
{
    copy_bounded(dst, cap, src, cap);
}

/* ------------------------------------------------------------- images */

typedef struct range_query {
    uintptr_t base;
    const char *name;
    uintptr_t start, end;
    bool found;
} range_query;

static int find_range(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    range_query *q = arg;
    if (info->dlpi_addr != q->base || !info->dlpi_name || strcmp(info->dlpi_name, q->name) != 0)
        return 0;
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD) continue;
        uintptr_t a = info->dlpi_addr + ph->p_vaddr;
        if (a < lo) lo = a;
        if (a + ph->p_memsz > hi) hi = a + ph->p_memsz;
    }
    q->start = lo;
    q->end = hi;
    q->found = lo < hi;
    return 1;
}

int crash_image_add(void *handle, const void *inst, const char *file, const char *name,
                    const char *version, const char *build_id, const char *build_key)
{
    struct link_map *lm = NULL;
    if (!handle || dlinfo(handle, RTLD_DI_LINKMAP, &lm) != 0 || !lm) return -1;
    range_query q = {.base = lm->l_addr, .name = lm->l_name};
    dl_iterate_phdr(find_range, &q);
    if (!q.found) return -1;
    for (int i = 0; i < CRASH_MAX_IMAGES; i++) {
        crash_image *im = &images[i];
        if (atomic_load(&im->used)) continue;
        im->start = q.start;
        im->end = q.end;
        im->base = q.base;
        im->inst = inst;
        copy_str(im->file, sizeof im->file, file);
        copy_str(im->name, sizeof im->name, name);
        copy_str(im->version, sizeof im->version, version);
        copy_str(im->build_id, sizeof im->build_id, build_id);
        copy_str(im->build_key, sizeof im->build_key, build_key);
        atomic_store_explicit(&im->used, true, memory_order_release);
        return i;
    }
    return -1;
}

void crash_image_remove(int slot)
{
    if (slot >= 0 && slot < CRASH_MAX_IMAGES) atomic_store(&images[slot].used, false);
}

void crash_init_begin(const char *file, const char *name, const char *version,
                      const char *build_id, const char *build_key)
{
    crash_image *im = &init_mark.img;
    copy_str(im->file, sizeof im->file, file);
    copy_str(im->name, sizeof im->name, name);
    copy_str(im->version, sizeof im->version, version);
    copy_str(im->build_id, sizeof im->build_id, build_id);
    copy_str(im->build_key, sizeof im->build_key, build_key);
    atomic_store_explicit(&init_mark.active, true, memory_order_release);
}

void crash_init_end(void) { atomic_store(&init_mark.active, false); }

static const crash_image *image_by_addr(uintptr_t a)
{
    for (int i = 0; i < CRASH_MAX_IMAGES; i++) {
        const crash_image *im = &images[i];
        if (atomic_load_explicit(&im->used, memory_order_acquire) && a >= im->start &&
            a < im->end)
            return im;
    }
    return NULL;
}

static const crash_image *image_by_inst(const void *inst)
{
    for (int i = 0; inst && i < CRASH_MAX_IMAGES; i++) {
        const crash_image *im = &images[i];
        if (atomic_load_explicit(&im->used, memory_order_acquire) && im->inst == inst) return im;
    }
    return NULL;
}

/* ------------------------------------------------------------ handler */

static uintptr_t context_pc(const void *uctx)
{
    const ucontext_t *uc = uctx;
#if defined(__x86_64__)
    return (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
    return (uintptr_t)uc->uc_mcontext.pc;
#else
    (void)uc;
    return 0;
#endif
}

static void take_image(crash_record *r, const crash_image *im, uintptr_t addr, uint8_t by)
{
    r->found_by = by;
    copy_str(r->file, sizeof r->file, im->file);
    copy_str(r->name, sizeof r->name, im->name);
    copy_str(r->version, sizeof r->version, im->version);
    copy_str(r->build_id, sizeof r->build_id, im->build_id);
    copy_str(r->build_key, sizeof r->build_key, im->build_key);
    if (addr) r->offset = addr - im->base;
}

static void attribute(crash_record *r, uintptr_t pc, const struct rh_call *call)
{
    const crash_image *im = image_by_addr(pc);
    if (im) {
        take_image(r, im, pc, CRASH_BY_PC);
        return;
    }
    /* abort(), or a fault in libc called by the plugin: the first return
     * address in a plugin. The return address points after the call. */
    void *frames[CRASH_STACK_FRAMES];
    int n = backtrace(frames, CRASH_STACK_FRAMES);
    for (int i = 0; i < n; i++) {
        uintptr_t a = (uintptr_t)frames[i];
        if ((im = image_by_addr(a))) {
            take_image(r, im, a - 1, CRASH_BY_STACK);
            return;
        }
    }
    if (atomic_load_explicit(&init_mark.active, memory_order_acquire) &&
        r->thread_kind == CRASH_THREAD_CONTROL) {
        take_image(r, &init_mark.img, 0, CRASH_BY_INIT);
        r->in_init = 1;
        return;
    }
    const void *inst = call && describe_call ? describe_call(call, r) : NULL;
    if ((im = image_by_inst(inst))) take_image(r, im, 0, CRASH_BY_CALL);
}

static int listeners[CRASH_MAX_LISTENERS];
static size_t n_listeners;

void crash_set_listeners(const int *fds, size_t n)
{
    if (n > CRASH_MAX_LISTENERS) n = CRASH_MAX_LISTENERS;
    memcpy(listeners, fds, n * sizeof *fds);
    n_listeners = n;
}

static void on_fatal(int sig, siginfo_t *si, void *uctx)
{
    /* First: no more accepts by this process (close is async-signal-safe;
     * the supervisor's copies keep the sockets listening). */
    for (size_t i = 0; i < n_listeners; i++) close(listeners[i]);
    n_listeners = 0;
    int expected = 0;
    if (atomic_compare_exchange_strong(&crashing, &expected, 1) && chan >= 0) {
        struct {
            sup_msg_hdr h;
            crash_record r;
        } m;
        memset(&m, 0, sizeof m);
        m.h.type = SUP_MSG_CRASH;
        m.h.len = sizeof m.r;
        crash_record *r = &m.r;
        r->signo = sig;
        r->si_code = si ? si->si_code : 0;
        r->fault_addr = si ? (uint64_t)(uintptr_t)si->si_addr : 0;
        r->pc = context_pc(uctx);
        r->tid = (int32_t)syscall(SYS_gettid);
        r->thread_kind = thread_kind                 ? (uint8_t)thread_kind
                         : r->tid == (int32_t)getpid() ? CRASH_THREAD_CONTROL
                                                       : CRASH_THREAD_OTHER;
        const struct rh_call *call = crash_current_call;
        /* A fault in the host's own init path while a build initialises
         * is that build's too. */
        if (atomic_load_explicit(&init_mark.active, memory_order_acquire) &&
            r->thread_kind == CRASH_THREAD_CONTROL)
            r->in_init = 1;
        attribute(r, (uintptr_t)r->pc, call);
        if (call && describe_call && !r->has_call) describe_call(call, r);
        ssize_t w = send(chan, &m, sizeof m, MSG_DONTWAIT | MSG_NOSIGNAL);
        (void)w;
    }
    /* Die of the same signal: the supervisor reads it from the exit
     * status. Blocked while we run, it is delivered on return. */
    signal(sig, SIG_DFL);
    raise(sig);
}

/* ------------------------------------------------------------ set-up */

void crash_thread_init(int kind)
{
    thread_kind = kind;
    if (altstack) return;
    void *p = malloc(CRASH_ALTSTACK_SIZE);
    if (!p) return;
    stack_t ss = {.ss_sp = p, .ss_size = CRASH_ALTSTACK_SIZE, .ss_flags = 0};
    if (sigaltstack(&ss, NULL) < 0) {
        free(p);
        return;
    }
    altstack = p;
}

void crash_thread_fini(void)
{
    if (!altstack) return;
    stack_t ss = {.ss_flags = SS_DISABLE};
    sigaltstack(&ss, NULL);
    free(altstack);
    altstack = NULL;
}

int crash_init(int chan_fd)
{
    chan = chan_fd;
    /* backtrace() loads libgcc's unwinder on first use: not in a handler. */
    void *prime[2];
    backtrace(prime, 2);
    crash_thread_init(CRASH_THREAD_CONTROL);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fatal;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof fatal_signals / sizeof fatal_signals[0]; i++)
        if (sigaction(fatal_signals[i], &sa, NULL) < 0) return -errno;
    return 0;
}

/* ------------------------------------------------------------ format */

static const char *thread_text(uint8_t kind)
{
    switch (kind) {
    case CRASH_THREAD_WORKER: return "a worker thread";
    case CRASH_THREAD_CONTROL: return "the control thread";
    default: return "a thread the plugin started";
    }
}

size_t crash_format(const crash_record *r, char *out, size_t outlen)
{
    char sig[32];
    const char *abbrev = sigabbrev_np(r->signo);
    snprintf(sig, sizeof sig, "SIG%s", abbrev ? abbrev : "?");
    int n;
    if (r->found_by == CRASH_BY_NONE)
        n = snprintf(out, outlen, "%s (%s) at pc 0x%llx, fault address 0x%llx, in %s; not in "
                     "plugin code as far as the host can tell",
                     sig, strsignal(r->signo), (unsigned long long)r->pc,
                     (unsigned long long)r->fault_addr, thread_text(r->thread_kind));
    else
        n = snprintf(out, outlen,
                     "plugin %s %s (%s, build id %s) %s: %s (%s), fault address 0x%llx, in %s",
                     r->name, r->version, r->file, r->build_id[0] ? r->build_id : "none",
                     r->in_init ? "crashed in its init" : "crashed", sig, strsignal(r->signo),
                     (unsigned long long)r->fault_addr, thread_text(r->thread_kind));
    if (n < 0) return 0;
    size_t k = (size_t)n < outlen ? (size_t)n : outlen - 1;
    if (r->found_by == CRASH_BY_PC || r->found_by == CRASH_BY_STACK) {
        n = snprintf(out + k, outlen - k, "; %s at offset 0x%llx (addr2line -e %s 0x%llx)",
                     r->found_by == CRASH_BY_PC ? "faulting instruction" : "called from",
                     (unsigned long long)r->offset, r->file, (unsigned long long)r->offset);
        if (n > 0) k += (size_t)n < outlen - k ? (size_t)n : outlen - k - 1;
    } else if (r->found_by == CRASH_BY_CALL) {
        n = snprintf(out + k, outlen - k, "; outside its code (pc 0x%llx) while in its callback",
                     (unsigned long long)r->pc);
        if (n > 0) k += (size_t)n < outlen - k ? (size_t)n : outlen - k - 1;
    }
    if (r->has_call) {
        n = snprintf(out + k, outlen - k, "; serving %s for %s", r->method,
                     r->peer[0] ? r->peer : "?");
        if (n > 0) k += (size_t)n < outlen - k ? (size_t)n : outlen - k - 1;
    }
    return k;
}
