/* inotify on the plugin directory: a file closed after writing or renamed
 * in is loaded (or replaces the loaded one); a file deleted or renamed out
 * is drained and unloaded. Dot-files and names not ending in ".so" are
 * ignored, so "cp x.so .x.tmp && mv .x.tmp x.so" loads once, complete.
 * Runs on the control thread. Owner: watch.c. */
#ifndef RPCHOST_HOST_WATCH_H
#define RPCHOST_HOST_WATCH_H

/* Starts watching dir; returns the inotify fd (non-blocking) or -errno. */
int watch_start(const char *dir);
/* Reads and applies pending events (call when the fd is readable). */
void watch_handle(void);
void watch_stop(void);

#endif
