/* WAL write coalescing: see walbuf.h. A shim over SQLite's default VFS:
 * every file opened through it is wrapped, and only a WAL file with
 * buffering turned on behaves differently (its writes are gathered). */
#include "walbuf.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>


typedef struct walbuf_file {
    sqlite3_file base;   /* pMethods = &file_methods */
    sqlite3_file *real;  /* the default VFS's file, allocated right after */
    int is_wal;
    int buffering;
    unsigned char *buf;  /* WALBUF_MAX bytes once needed */
    size_t len;          /* bytes buffered, to go at file offset `off` */
    sqlite3_int64 off;
} walbuf_file;

/* The host loads each plugin instance from a private copy of the .so, so
 * two copies (old and new build during a hot replace) may each register
 * this VFS with the one shared libsqlite3: the name carries the copy's
 * address, and the last store of a copy unregisters it before the copy is
 * unloaded (SQLite's list of VFSes must never point into unmapped code). */
static pthread_mutex_t users_mu = PTHREAD_MUTEX_INITIALIZER;
static int users;         /* open stores of this copy using the VFS */
static char vfs_name[48];
static sqlite3_vfs *root; /* SQLite's default VFS */
static sqlite3_vfs shim;

/* Bytes per write(2) of a flush: the largest multiple of 4 KiB the unix
 * VFS accepts in one call. */
#define WALBUF_CHUNK (31u * 4096)

#define REAL(f) (((walbuf_file *)(f))->real)

/* Writes out what is buffered. On failure the buffer is dropped: SQLite
 * fails the commit (or the read) that caused the write-out, and frames it
 * could not sync are never published. */
static int flush(walbuf_file *f)
{
    int rc = SQLITE_OK;
    for (size_t done = 0; done < f->len && rc == SQLITE_OK;) {
        /* The unix VFS writes at most 128 KiB - 1 per call (it masks the
         * length with 0x1ffff): hand it chunks below that. */
        size_t n = f->len - done < WALBUF_CHUNK ? f->len - done : WALBUF_CHUNK;
        rc = f->real->pMethods->xWrite(f->real, f->buf + done, (int)n,
                                       f->off + (sqlite3_int64)done);
        done += n;
    }
    f->len = 0;
    return rc;
}

static int f_close(sqlite3_file *pf)
{
    walbuf_file *f = (walbuf_file *)pf;
    int rc = flush(f);
    int rc2 = f->real->pMethods ? f->real->pMethods->xClose(f->real) : SQLITE_OK;
    free(f->buf);
    f->buf = NULL;
    return rc != SQLITE_OK ? rc : rc2;
}

static int f_read(sqlite3_file *pf, void *out, int n, sqlite3_int64 ofs)
{
    int rc = flush((walbuf_file *)pf);
    return rc != SQLITE_OK ? rc : REAL(pf)->pMethods->xRead(REAL(pf), out, n, ofs);
}

static int f_write(sqlite3_file *pf, const void *data, int n, sqlite3_int64 ofs)
{
    walbuf_file *f = (walbuf_file *)pf;
    if (!f->buffering || n <= 0)
        return f->real->pMethods->xWrite(f->real, data, n, ofs);
    /* Appends to what is buffered (SQLite writes a commit's frames in
     * order); anything else writes the buffer out and starts anew. */
    if (f->len > 0 && ofs == f->off + (sqlite3_int64)f->len && f->len + (size_t)n <= WALBUF_MAX) {
        memcpy(f->buf + f->len, data, (size_t)n);
        f->len += (size_t)n;
        return SQLITE_OK;
    }
    int rc = flush(f);
    if (rc != SQLITE_OK)
        return rc;
    if (f->buf == NULL)
        f->buf = malloc(WALBUF_MAX);
    if (f->buf == NULL || (size_t)n > WALBUF_MAX) /* no memory: write through */
        return f->real->pMethods->xWrite(f->real, data, n, ofs);
    memcpy(f->buf, data, (size_t)n);
    f->len = (size_t)n;
    f->off = ofs;
    return SQLITE_OK;
}

static int f_truncate(sqlite3_file *pf, sqlite3_int64 size)
{
    int rc = flush((walbuf_file *)pf);
    return rc != SQLITE_OK ? rc : REAL(pf)->pMethods->xTruncate(REAL(pf), size);
}

static int f_sync(sqlite3_file *pf, int flags)
{
    int rc = flush((walbuf_file *)pf);
    return rc != SQLITE_OK ? rc : REAL(pf)->pMethods->xSync(REAL(pf), flags);
}

static int f_file_size(sqlite3_file *pf, sqlite3_int64 *size)
{
    int rc = flush((walbuf_file *)pf);
    return rc != SQLITE_OK ? rc : REAL(pf)->pMethods->xFileSize(REAL(pf), size);
}

/* The rest passes through (the WAL file takes no locks and maps no
 * memory; the main database file is never buffered). */
static int f_lock(sqlite3_file *pf, int l) { return REAL(pf)->pMethods->xLock(REAL(pf), l); }
static int f_unlock(sqlite3_file *pf, int l) { return REAL(pf)->pMethods->xUnlock(REAL(pf), l); }
static int f_check_reserved(sqlite3_file *pf, int *out)
{
    return REAL(pf)->pMethods->xCheckReservedLock(REAL(pf), out);
}
static int f_file_control(sqlite3_file *pf, int op, void *arg)
{
    return REAL(pf)->pMethods->xFileControl(REAL(pf), op, arg);
}
static int f_sector_size(sqlite3_file *pf) { return REAL(pf)->pMethods->xSectorSize(REAL(pf)); }
static int f_device(sqlite3_file *pf)
{
    return REAL(pf)->pMethods->xDeviceCharacteristics(REAL(pf));
}
static int f_shm_map(sqlite3_file *pf, int pg, int pgsz, int extend, void volatile **pp)
{
    return REAL(pf)->pMethods->xShmMap(REAL(pf), pg, pgsz, extend, pp);
}
static int f_shm_lock(sqlite3_file *pf, int ofs, int n, int flags)
{
    return REAL(pf)->pMethods->xShmLock(REAL(pf), ofs, n, flags);
}
static void f_shm_barrier(sqlite3_file *pf) { REAL(pf)->pMethods->xShmBarrier(REAL(pf)); }
static int f_shm_unmap(sqlite3_file *pf, int del)
{
    return REAL(pf)->pMethods->xShmUnmap(REAL(pf), del);
}
static int f_fetch(sqlite3_file *pf, sqlite3_int64 ofs, int n, void **pp)
{
    int rc = flush((walbuf_file *)pf);
    return rc != SQLITE_OK ? rc : REAL(pf)->pMethods->xFetch(REAL(pf), ofs, n, pp);
}
static int f_unfetch(sqlite3_file *pf, sqlite3_int64 ofs, void *p)
{
    return REAL(pf)->pMethods->xUnfetch(REAL(pf), ofs, p);
}

static const sqlite3_io_methods file_methods = {
    .iVersion = 3,
    .xClose = f_close,
    .xRead = f_read,
    .xWrite = f_write,
    .xTruncate = f_truncate,
    .xSync = f_sync,
    .xFileSize = f_file_size,
    .xLock = f_lock,
    .xUnlock = f_unlock,
    .xCheckReservedLock = f_check_reserved,
    .xFileControl = f_file_control,
    .xSectorSize = f_sector_size,
    .xDeviceCharacteristics = f_device,
    .xShmMap = f_shm_map,
    .xShmLock = f_shm_lock,
    .xShmBarrier = f_shm_barrier,
    .xShmUnmap = f_shm_unmap,
    .xFetch = f_fetch,
    .xUnfetch = f_unfetch,
};

static int v_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *pf, int flags,
                  int *out_flags)
{
    (void)vfs;
    walbuf_file *f = (walbuf_file *)pf;
    memset(f, 0, sizeof *f);
    f->real = (sqlite3_file *)(f + 1);
    int rc = root->xOpen(root, name, f->real, flags, out_flags);
    /* SQLite calls xClose only when pMethods is set: ours whenever the
     * real file has methods to close. */
    f->base.pMethods = f->real->pMethods ? &file_methods : NULL;
    f->is_wal = (flags & SQLITE_OPEN_WAL) != 0;
    return rc;
}

/* The VFS's other functions: SQLite's default, given its own VFS. */
static int v_delete(sqlite3_vfs *v, const char *n, int sync)
{
    (void)v;
    return root->xDelete(root, n, sync);
}
static int v_access(sqlite3_vfs *v, const char *n, int flags, int *out)
{
    (void)v;
    return root->xAccess(root, n, flags, out);
}
static int v_full_pathname(sqlite3_vfs *v, const char *n, int len, char *out)
{
    (void)v;
    return root->xFullPathname(root, n, len, out);
}
static void *v_dlopen(sqlite3_vfs *v, const char *n)
{
    (void)v;
    return root->xDlOpen(root, n);
}
static void v_dlerror(sqlite3_vfs *v, int len, char *out)
{
    (void)v;
    root->xDlError(root, len, out);
}
static void (*v_dlsym(sqlite3_vfs *v, void *h, const char *sym))(void)
{
    (void)v;
    return root->xDlSym(root, h, sym);
}
static void v_dlclose(sqlite3_vfs *v, void *h)
{
    (void)v;
    root->xDlClose(root, h);
}
static int v_randomness(sqlite3_vfs *v, int n, char *out)
{
    (void)v;
    return root->xRandomness(root, n, out);
}
static int v_sleep(sqlite3_vfs *v, int us)
{
    (void)v;
    return root->xSleep(root, us);
}
static int v_current_time(sqlite3_vfs *v, double *out)
{
    (void)v;
    return root->xCurrentTime(root, out);
}
static int v_last_error(sqlite3_vfs *v, int len, char *out)
{
    (void)v;
    return root->xGetLastError(root, len, out);
}
static int v_current_time64(sqlite3_vfs *v, sqlite3_int64 *out)
{
    (void)v;
    return root->xCurrentTimeInt64(root, out);
}

static int register_vfs(void)
{
    root = sqlite3_vfs_find(NULL);
    if (root == NULL || root->iVersion < 2 || root->xCurrentTimeInt64 == NULL)
        return -1;
    snprintf(vfs_name, sizeof vfs_name, "rides-walbuf-%p", (void *)&shim);
    shim = (sqlite3_vfs){
        .iVersion = 2,
        .szOsFile = (int)sizeof(walbuf_file) + root->szOsFile,
        .mxPathname = root->mxPathname,
        .zName = vfs_name,
        .xOpen = v_open,
        .xDelete = v_delete,
        .xAccess = v_access,
        .xFullPathname = v_full_pathname,
        .xDlOpen = v_dlopen,
        .xDlError = v_dlerror,
        .xDlSym = v_dlsym,
        .xDlClose = v_dlclose,
        .xRandomness = v_randomness,
        .xSleep = v_sleep,
        .xCurrentTime = v_current_time,
        .xGetLastError = v_last_error,
        .xCurrentTimeInt64 = v_current_time64,
    };
    return sqlite3_vfs_register(&shim, 0) == SQLITE_OK ? 0 : -1;
}

const char *walbuf_vfs_acquire(void)
{
    const char *name = NULL;
    pthread_mutex_lock(&users_mu);
    if (users > 0 || register_vfs() == 0) {
        users++;
        name = vfs_name;
    }
    pthread_mutex_unlock(&users_mu);
    return name;
}

void walbuf_vfs_release(void)
{
    pthread_mutex_lock(&users_mu);
    if (users > 0 && --users == 0)
        sqlite3_vfs_unregister(&shim);
    pthread_mutex_unlock(&users_mu);
}

int walbuf_set_buffering(sqlite3 *db, int on)
{
    sqlite3_file *pf = NULL;
    if (sqlite3_file_control(db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &pf) != SQLITE_OK ||
        pf == NULL || pf->pMethods != &file_methods)
        return -1;
    walbuf_file *f = (walbuf_file *)pf;
    if (!f->is_wal)
        return -1;
    /* Between transactions the buffer is empty (a commit that gathered
     * ended with its sync); write out whatever a caller mid-transaction
     * left, and stop gathering even if that write failed (SQLite then
     * fails the transaction when it reads or syncs). */
    int rc = on ? SQLITE_OK : flush(f);
    f->buffering = on != 0;
    return rc == SQLITE_OK ? 0 : -1;
}
