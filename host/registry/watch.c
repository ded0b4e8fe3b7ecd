/* Plugin directory events -> registry operations. */
#include "registry/watch.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "core/core.h"
#include "registry/registry.h"

static int watch_fd = -1;
static char watch_dir[PATH_MAX];

static bool is_plugin_name(const char *name)
{
    size_t n = strlen(name);
    return name[0] != '.' && n > 3 && strcmp(name + n - 3, ".so") == 0;
}

int watch_start(const char *dir)
{
    snprintf(watch_dir, sizeof watch_dir, "%s", dir);
    size_t n = strlen(watch_dir);
    while (n > 1 && watch_dir[n - 1] == '/') watch_dir[--n] = '\0';
    watch_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (watch_fd < 0) {
        int e = errno;
        log_error("cannot watch plugin directory %s: inotify_init1: %s", dir, strerror(e));
        return -e;
    }
    /* Not IN_CREATE / IN_MODIFY: a file being written is not ready. */
    uint32_t mask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM | IN_DELETE_SELF |
                    IN_MOVE_SELF | IN_ONLYDIR;
    if (inotify_add_watch(watch_fd, watch_dir, mask) < 0) {
        int e = errno;
        log_error("cannot watch plugin directory %s: %s (raise fs.inotify.max_user_watches?)",
                  dir, strerror(e));
        close(watch_fd);
        watch_fd = -1;
        return -e;
    }
    return watch_fd;
}

static void handle_event(const struct inotify_event *ev, bool *rescan)
{
    if (ev->mask & IN_Q_OVERFLOW) {
        log_warn("plugin directory events overflowed; rescanning %s", watch_dir);
        *rescan = true;
        return;
    }
    if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF)) {
        log_error("plugin directory %s was removed or moved: no longer watching it; the loaded "
                  "plugins keep serving (restart rpchost to watch a new directory)",
                  watch_dir);
        return;
    }
    if (ev->len == 0 || (ev->mask & IN_ISDIR) || !is_plugin_name(ev->name)) return;
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s", watch_dir, ev->name) >= (int)sizeof path) return;
    if (ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO)) {
        log_debug("plugin file %s %s", path, ev->mask & IN_MOVED_TO ? "renamed in" : "written");
        reg_file_changed(path);
    } else if (ev->mask & (IN_DELETE | IN_MOVED_FROM)) {
        log_debug("plugin file %s %s", path, ev->mask & IN_DELETE ? "deleted" : "renamed out");
        reg_file_removed(path);
    }
}

void watch_handle(void)
{
    if (watch_fd < 0) return;
    char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    bool rescan = false;
    for (;;) {
        ssize_t n = read(watch_fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            handle_event(ev, &rescan);
            p += sizeof *ev + ev->len;
        }
    }
    if (rescan) reg_rescan();
}

void watch_stop(void)
{
    if (watch_fd >= 0) close(watch_fd);
    watch_fd = -1;
}
