/* The supervisor: the process the operator starts. It binds the listening
 * sockets, then forks the serving process (today's threads, unchanged) and
 * restarts it at once when it dies of a signal; the sockets stay bound and
 * listening, so connections wait in the backlog during a restart instead
 * of being refused. Signals it gets (TERM, INT, HUP) go to the serving
 * process; on TERM/INT it exits with the serving process's status.
 *
 * What outlives a serving process lives here (sup_state.c) and is handed
 * to the next one by fork: the plugin builds it loaded (each kept as the
 * private memfd copy it was loaded from), what it did with each file of
 * the plugin directory, crash counts per build, quarantines and refusals,
 * and the settings as reloaded by SIGHUP.
 *
 * The serving process reports over one SOCK_SEQPACKET socket (one message
 * per send, never split or merged): each build it loads (with the memfd),
 * each file record, lifted quarantines, "ready", and from its fatal-signal
 * handler one crash record (crash.h).
 * Owner: supervisor.c (processes, signals), sup_state.c (the tables). */
#ifndef RPCHOST_HOST_SUPERVISOR_H
#define RPCHOST_HOST_SUPERVISOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "config/settings.h"

struct listen_set;
struct crash_record;

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
/* A serving process died without a record (SIGKILL, or a fault on a
 * thread without an alternate stack): nothing to attribute. */
void sup_state_free(void);

/* The serving process's main: settings, the listen sets of its workers,
 * the channel fd (-1 when not supervised). Returns the exit status. */
typedef int (*sup_serve_fn)(rh_settings *s, const struct listen_set *sets, int chan);

/* Runs the supervisor until TERM/INT; returns the exit status. */
int supervisor_run(rh_settings *s, struct listen_set *sets, int n_sets, sup_serve_fn serve);

#endif
