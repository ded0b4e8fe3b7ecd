/* Crash attribution inside the serving process: fatal-signal handlers
 * (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT) on an alternate stack that
 * name the plugin build whose code faulted, the call being served and the
 * fault, write ONE record to the supervisor's channel and let the signal
 * kill the process (the supervisor restarts it; supervisor.h).
 *
 * What the handler may touch is prepared in advance: a fixed table of the
 * loaded plugin images (address range, file, name, version, build id),
 * filled by the registry when it loads or unloads a build, and a
 * thread-local pointer to the call whose plugin callback is running.
 * Nothing in the handler allocates, locks or calls stdio.
 * Owner: crash.c. */
#ifndef RPCHOST_HOST_CRASH_H
#define RPCHOST_HOST_CRASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rh_call;

/* Loaded images the handler can attribute a fault to. A host with more
 * plugin builds mapped at once (draining ones included) still works; the
 * extra ones are attributed by the call being served only. */
#define CRASH_MAX_IMAGES 256

/* What kind of thread faulted. */
enum { CRASH_THREAD_WORKER = 1, CRASH_THREAD_CONTROL = 2, CRASH_THREAD_OTHER = 3 };

/* How the faulting build was found. */
enum {
    CRASH_BY_NONE = 0, /* not in plugin code as far as we can tell */
    CRASH_BY_PC = 1,   /* the faulting instruction is in the plugin */
    CRASH_BY_STACK = 2, /* a return address on the stack is (abort, libc) */
    CRASH_BY_CALL = 3, /* the plugin whose callback was running */
    CRASH_BY_INIT = 4, /* its dlopen or init was running */
};

/* One crash, as written by the handler and read by the supervisor. Fixed
 * size, strings NUL-terminated (cut if longer). */
typedef struct crash_record {
    int32_t signo;
    int32_t si_code;
    int32_t tid;
    uint8_t thread_kind; /* CRASH_THREAD_* */
    uint8_t found_by;    /* CRASH_BY_* */
    uint8_t in_init;     /* the build's dlopen/init was running */
    uint8_t has_call;    /* method and peer are set */
    uint64_t fault_addr; /* si_addr */
    uint64_t pc;
    uint64_t offset;     /* pc (or stack frame) - image base: for addr2line */
    char file[512];
    char name[64];
    char version[32];
    char build_id[65];
    char build_key[17];
    char method[200];
    char peer[96];
} crash_record;

/* Installs the handlers and this (main) thread's alternate stack; records
 * go to chan_fd (a SOCK_SEQPACKET socket; -1: log-free, the handler only
 * re-raises). Call once, before any thread is started. 0 or -errno. */
int crash_init(int chan_fd);
/* An alternate stack for the calling thread (each worker calls it at
 * start, and frees it when its loop ends). Threads without one (those a
 * plugin starts) still get their record for every fault but a stack
 * overflow, which then kills the process without a record (the
 * supervisor still restarts it and logs the signal). */
void crash_thread_init(void);
void crash_thread_fini(void);

/* The plugin image table. crash_image_add finds the address range of the
 * object behind handle (a dlopen handle) and copies the strings; returns
 * the slot (>= 0) or -1 if the table is full. inst is what a call's route
 * names (reg_instance), to attribute a fault outside the plugin's code to
 * the plugin whose callback was running. */
int crash_image_add(void *handle, const void *inst, const char *file, const char *name,
                    const char *version, const char *build_id, const char *build_key);
void crash_image_remove(int slot);

/* The build whose dlopen/init runs on the control thread, if a fault
 * happens there (NULL strings end it). */
void crash_init_begin(const char *file, const char *name, const char *version,
                      const char *build_id, const char *build_key);
void crash_init_end(void);

/* The call whose plugin callback runs on this thread (method and peer of a
 * crash record). Set and restored around every callback by call.c; one
 * thread-local store each way. */
extern __thread struct rh_call *crash_current_call;
#define CRASH_ENTER(call)                                                                    \
    struct rh_call *crash_prev_call_ = crash_current_call;                                   \
    crash_current_call = (call)
#define CRASH_LEAVE() (crash_current_call = crash_prev_call_)

/* Test hook: formats a record the way the supervisor logs it. */
size_t crash_format(const crash_record *r, char *out, size_t outlen);

#endif
