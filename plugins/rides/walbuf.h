/* A SQLite VFS that coalesces a commit's writes to the WAL file into one
 * write(2) at its sync.
 *
 * Why: SQLite writes each WAL frame as two pwrite(2) calls (the 24-byte
 * frame header, then the page), so a group commit of N rides costs about
 * 2N system calls, each through ext4's write path (inode lock, folio
 * lookups, mtime). Under load that was 15% of a durable Start's server
 * CPU. Buffered here, a commit is written in pieces of 124 KiB (the most
 * SQLite's unix VFS writes in one call), then fsynced as SQLite asked.
 *
 * Durability is unchanged: every byte SQLite wrote reaches the kernel
 * before the xSync it asked for starts, so an fsync covers exactly what
 * it covered before; and SQLite publishes new frames to readers (the
 * wal-index) only after that sync returned. What a SIGKILL loses is at
 * most the frames of a commit whose sync had not started: a commit that
 * was never acknowledged, which recovery discards as before.
 *
 * That publishing order holds only with synchronous = FULL (a sync per
 * commit). With NORMAL or OFF a commit has no sync, readers may look for
 * its frames in the file right after it, so the WAL is written through
 * (walbuf_set_buffering(db, 0): store.c follows its synchronous mode).
 * Any read, truncate or size query of the WAL writes the buffer out
 * first, so SQLite itself always sees what it wrote.
 *
 * Thread safety: registration is under a lock; each open file's buffer
 * belongs to its connection, which SQLite serialises. */
#ifndef RIDES_WALBUF_H
#define RIDES_WALBUF_H

#include <stddef.h>

typedef struct sqlite3 sqlite3;

/* The VFS's name for sqlite3_open_v2, registered (not as the default) by
 * the first acquire; NULL if it could not be (then use SQLite's default
 * VFS, and do not release). Each successful acquire is paired with a
 * release after the connection using it was closed; the last release
 * unregisters the VFS. */
const char *walbuf_vfs_acquire(void);
void walbuf_vfs_release(void);

/* Turns coalescing of db's WAL writes on or off (writing out what is
 * buffered when turning it off). Returns 0; -1 when db has no WAL open
 * through this VFS (nothing changed) or the write-out failed (buffering
 * is off all the same). */
int walbuf_set_buffering(sqlite3 *db, int on);

/* The most a WAL file buffers before writing out (a commit larger than
 * this is written in several calls). */
#define WALBUF_MAX (4u << 20)

#endif
