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
 *
 * Below the registry (which fills the image table and reports builds) and
 * the event and rpc layers (which mark threads and calls): what the
 * handler needs of a call comes through crash_set_call_describer (rpc).
 *
 * The second half: what outlives a serving process (sup_state.c). Both
 * processes run the same apply code: the serving process applies its own
 * change and reports it over the channel; the supervisor (host/supervisor.c)
 * applies what it is told and, from crash records, counts and
 * quarantines. The next serving process inherits the tables by fork:
 * builds (each kept as the private memfd copy it was loaded from), what
 * was done with each file of the plugin directory, crash counts per build,
 * quarantines and refusals.
 * Owner: crash.c (handlers), sup_state.c (the tables). */
#ifndef RPCHOST_HOST_CRASH_CRASH_H
#define RPCHOST_HOST_CRASH_CRASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "config/config.h"

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
void crash_thread_init(int kind); /* CRASH_THREAD_* */

/* The serving process's listening sockets (its copies of the supervisor's).
 * The handler closes them first, so that the dying process's other
 * workers stop accepting: connections made while it dies then wait in the
 * backlog for the next serving process instead of being accepted and
 * reset with it. At most CRASH_MAX_LISTENERS; set once before serving. */
#define CRASH_MAX_LISTENERS 64
void crash_set_listeners(const int *fds, size_t n);
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

/* What the handler needs of a call (rpc/call.c provides it): fills
 * r->method, r->peer, r->has_call with bounded copies and returns the
 * plugin instance whose method the call runs (or NULL). Runs in a signal
 * handler: plain field reads only. */
typedef const void *(*crash_call_describer)(const struct rh_call *call, crash_record *r);
void crash_set_call_describer(crash_call_describer fn);

/* Formats a record the way the supervisor logs it. */
size_t crash_format(const crash_record *r, char *out, size_t outlen);

/* ------------------------------------------------- surviving a restart */

#define SUP_PATH_MAX 512
#define SUP_MAX_BUILDS 512   /* builds remembered; the oldest idle ones go first */
#define SUP_MAX_FILES 4096   /* file records */
#define SUP_MAX_CRASH_WINDOW 64 /* largest crash_quarantine count */
#define SUP_MAX_TEXT 32768   /* services + methods of one build */

/* ------------------------------------------------------------- messages */

typedef struct sup_msg_hdr {
    uint32_t type; /* SUP_MSG_* */
    uint32_t len;  /* bytes after the header */
} sup_msg_hdr;

enum { SUP_MSG_READY = 1, SUP_MSG_CRASH, SUP_MSG_BUILD, SUP_MSG_FILE, SUP_MSG_LIFT };

/* A file's identity: a file that differs in any of these changed. */
typedef struct sup_ident {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
} sup_ident;

/* SUP_MSG_BUILD: a build now serves for file (sent with its memfd).
 * services_len + methods_len + interceptors_len bytes of text follow
 * ("\n"-separated full service names, method paths, then interceptor
 * full names). */
typedef struct sup_build_msg {
    char file[SUP_PATH_MAX];
    char key[17];
    char name[64];
    char version[32];
    char build_id[65];
    sup_ident ident;
    uint32_t services_len, methods_len, interceptors_len;
} sup_build_msg;

/* SUP_MSG_FILE: what the registry last did with a file (registry.c's
 * file_state; -1: forget the file and any current build of it). */
typedef struct sup_file_msg {
    char file[SUP_PATH_MAX];
    sup_ident ident;
    int32_t state;
} sup_file_msg;

/* SUP_MSG_LIFT: the admin reloaded, or a new build replaced, a quarantined
 * or refused build of file: forget its crashes. */
typedef struct sup_lift_msg {
    char file[SUP_PATH_MAX];
} sup_lift_msg;

/* --------------------------------------------------------------- tables */

typedef enum { BUILD_OK, BUILD_QUARANTINED, BUILD_REFUSED } sup_build_state;

typedef struct sup_build {
    char file[SUP_PATH_MAX];
    char key[17];
    char name[64];
    char version[32];
    char build_id[65];
    sup_ident ident;
    char *services; /* "\n"-separated; NULL if never reported (init crash) */
    char *methods;
    char *interceptors;
    int memfd;      /* the kept private copy (current builds), or -1 */
    bool current;   /* serving for its file */
    uint32_t crashes;                          /* since loaded or lifted */
    int64_t recent[SUP_MAX_CRASH_WINDOW];      /* CLOCK_MONOTONIC ms, ring */
    uint32_t n_recent;
    int64_t last_crash_unix_ms;
    char last_crash[768];                       /* the crash line */
    sup_build_state state;
    char reason[256];                           /* why quarantined / refused */
    uint64_t touched;                           /* for eviction */
} sup_build;

typedef struct sup_file {
    char path[SUP_PATH_MAX];
    sup_ident ident;
    int32_t state;
} sup_file;

/* The tables as this process knows them (the serving process: as they
 * were at its fork, plus its own changes). */
sup_build *sup_builds(size_t *n);
const sup_file *sup_files(size_t *n);
/* The build of file with content key, or NULL. */
sup_build *sup_build_find(const char *file, const char *key);
/* The quarantined or refused build of file (any key), or NULL. */
sup_build *sup_blocked_of(const char *file);
/* Whether the serving process reports to a supervisor. */
bool sup_attached(void);

/* --- serving process side: apply locally and report ------------------- */

/* memfd: the private copy (dup'ed for the message; the caller keeps its
 * own). */
void sup_report_build(const sup_build_msg *m, const char *services, const char *methods,
                      const char *interceptors, int memfd);
void sup_report_file(const char *path, const struct stat *st, int state);
void sup_report_lift(const char *file);
void sup_report_ready(void);
/* Closes the kept memfds this process inherited (after it loaded them). */
void sup_close_inherited(void);

/* --- supervisor side ----------------------------------------------------- */

/* Applies one message (type, payload, memfd or -1); a crash record counts
 * a crash and may quarantine. Logs what it decides. */
void sup_apply(uint32_t type, const void *payload, size_t len, int memfd,
               const rh_settings *s);
/* Frees the tables (the supervisor, at exit). */
void sup_state_free(void);
/* The serving process's end of the channel (-1: not supervised); set by
 * the supervisor in the child before it serves. */
extern int sup_chan;


#endif
