/* file.c - writing an output so that it never destroys what it replaces.
 *
 * What the path names decides how it is written (see file.h):
 *   - nothing yet, or a regular file: a temporary file in the same directory,
 *     renamed onto the path once complete; a replaced file keeps its mode (and
 *     its owner, where that is permitted);
 *   - a symbolic link: its final target is the file replaced, the temporary
 *     beside the target, so the link stays a link;
 *   - a character device or a FIFO, or the process's own stdout or stderr:
 *     written in place (/dev/null, /dev/full, /dev/stdout, a pipe);
 *   - anything else (a directory, a socket, a block device): refused.
 * Temporaries are named DIR/.fusenet-PID-N.tmp (short, so a target name of
 * NAME_MAX bytes still has one), hold an flock while their writer lives and
 * are listed in a fixed registry that a signal handler can empty.
 * fusenet__read_file is the matching reader of a whole input: regular files
 * only, never blocking on a FIFO, with a size cap. */
#define _DEFAULT_SOURCE /* flock */
#include "file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "error.h"

#define TEMP_PREFIX ".fusenet-"
#define TEMP_SUFFIX ".tmp"
#define MAX_LINKS 40 /* Linux's limit on symbolic links in one lookup */

/* ---- what a path names -------------------------------------------------- */

enum { OUT_NEW, OUT_REPLACE, OUT_IN_PLACE, OUT_STDIO };

typedef struct plan {
    int kind;
    int stdio_fd;          /* OUT_STDIO: 1 or 2 */
    struct stat old;       /* OUT_REPLACE: the file replaced */
    char target[PATH_MAX]; /* the path written: symbolic links followed */
    char dir[PATH_MAX];    /* the target's directory */
} plan;

static void split_dir(const char *path, char *dir, size_t size) {
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(dir, size, ".");
    else if (slash == path) snprintf(dir, size, "/");
    else snprintf(dir, size, "%.*s", (int)(slash - path), path);
}

/* Follows symbolic links from path to the final target (which may not exist).
 * Returns 0, or an errno. */
static int follow_links(const char *path, char *target) {
    if (strlen(path) >= PATH_MAX) return ENAMETOOLONG;
    strcpy(target, path);
    for (int i = 0; i <= MAX_LINKS; i++) {
        struct stat sb;
        if (lstat(target, &sb) != 0) return errno == ENOENT ? 0 : errno;
        if (!S_ISLNK(sb.st_mode)) return 0;
        char link[PATH_MAX], dir[PATH_MAX];
        ssize_t n = readlink(target, link, sizeof link - 1);
        if (n < 0) return errno;
        link[n] = '\0';
        if (link[0] == '/') {
            strcpy(target, link);
            continue;
        }
        split_dir(target, dir, sizeof dir);
        size_t d = strlen(dir);
        if (d + 1 + (size_t)n >= PATH_MAX) return ENAMETOOLONG;
        memcpy(target, dir, d);
        target[d] = '/';
        memcpy(target + d + 1, link, (size_t)n + 1);
    }
    return ELOOP;
}

static int same_inode(const struct stat *a, const struct stat *b) {
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

static fusenet_status cannot(fusenet_error *err, const char *path, const char *what, const char *reason) {
    return fusenet__error(err, FUSENET_ERR_IO, "cannot write %s%s%s%s: %s", path, what ? " (" : "", what ? what : "",
                          what ? ")" : "", reason);
}

/* Decides how path is written; every check that can be made before writing. */
static fusenet_status make_plan(const char *path, const char *what, plan *p, fusenet_error *err) {
    memset(p, 0, sizeof *p);
    size_t len = strlen(path);
    if (len == 0) return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "an empty output path%s%s%s", what ? " (" : "",
                                        what ? what : "", what ? ")" : "");
    struct stat sb;
    int exists = stat(path, &sb) == 0;
    if (!exists && errno != ENOENT) return cannot(err, path, what, strerror(errno));
    if (path[len - 1] == '/' || (exists && S_ISDIR(sb.st_mode))) return cannot(err, path, what, strerror(EISDIR));
    for (int fd = 1; exists && fd <= 2; fd++) {
        struct stat io;
        if (fstat(fd, &io) == 0 && same_inode(&io, &sb)) {
            p->kind = OUT_STDIO;
            p->stdio_fd = fd;
            snprintf(p->target, sizeof p->target, "%s", path);
            return FUSENET_OK;
        }
    }
    if (exists && (S_ISCHR(sb.st_mode) || S_ISFIFO(sb.st_mode))) {
        if (faccessat(AT_FDCWD, path, W_OK, AT_EACCESS) != 0) return cannot(err, path, what, strerror(errno));
        p->kind = OUT_IN_PLACE;
        snprintf(p->target, sizeof p->target, "%s", path);
        return FUSENET_OK;
    }
    if (exists && !S_ISREG(sb.st_mode))
        return cannot(err, path, what, "not a regular file, character device or FIFO");
    int e = follow_links(path, p->target);
    if (e) return cannot(err, path, what, strerror(e));
    split_dir(p->target, p->dir, sizeof p->dir);
    struct stat db;
    if (stat(p->dir, &db) != 0) return cannot(err, path, what, strerror(errno));
    if (!S_ISDIR(db.st_mode)) return cannot(err, path, what, strerror(ENOTDIR));
    if (faccessat(AT_FDCWD, p->dir, W_OK | X_OK, AT_EACCESS) != 0) return cannot(err, path, what, strerror(errno));
    if (exists) {
        if (faccessat(AT_FDCWD, p->target, W_OK, AT_EACCESS) != 0) return cannot(err, path, what, strerror(errno));
        p->kind = OUT_REPLACE;
        p->old = sb;
    }
    return FUSENET_OK;
}

/* ---- the registry of live temporaries ----------------------------------- */

#define TEMP_SLOTS 16

static char temp_names[TEMP_SLOTS][PATH_MAX];
static volatile sig_atomic_t temp_used[TEMP_SLOTS]; /* 0 free, 1 being filled, 2 registered */

static int temp_register(const char *name) {
    for (int i = 0; i < TEMP_SLOTS; i++) {
        sig_atomic_t expected = 0;
        if (__atomic_compare_exchange_n(&temp_used[i], &expected, 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
            strcpy(temp_names[i], name);
            __atomic_store_n(&temp_used[i], 2, __ATOMIC_RELEASE);
            return i;
        }
    }
    return -1; /* full: the temporary is still removed on errors, only not on signals */
}

static void temp_unregister(int slot) {
    if (slot >= 0) __atomic_store_n(&temp_used[slot], 0, __ATOMIC_RELEASE);
}

void fusenet__temp_remove_all(void) {
    for (int i = 0; i < TEMP_SLOTS; i++)
        if (__atomic_load_n(&temp_used[i], __ATOMIC_ACQUIRE) == 2) unlink(temp_names[i]);
}

/* ---- temporaries left by writers killed outright ------------------------ */

/* The PID of a name DIR/.fusenet-PID-N.tmp, or 0 if the name is not exactly ours. */
static long temp_name_pid(const char *name) {
    long pid;
    unsigned long serial;
    char again[NAME_MAX + 1];
    if (strncmp(name, TEMP_PREFIX, strlen(TEMP_PREFIX)) != 0 ||
        sscanf(name + strlen(TEMP_PREFIX), "%ld-%lu", &pid, &serial) != 2 || pid <= 0)
        return 0;
    snprintf(again, sizeof again, TEMP_PREFIX "%ld-%lu" TEMP_SUFFIX, pid, serial);
    return strcmp(again, name) == 0 ? pid : 0;
}

/* Removes DIR/name if it is a stale temporary: our name pattern, a regular
 * file we own, its PID has no process here, and no process holds its lock. */
static void remove_if_stale(const char *dir, const char *name) {
    long pid = temp_name_pid(name);
    if (pid == 0 || pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH) return;
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path) return;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return;
    struct stat fb, lb;
    if (fstat(fd, &fb) == 0 && S_ISREG(fb.st_mode) && fb.st_uid == geteuid() && flock(fd, LOCK_EX | LOCK_NB) == 0 &&
        lstat(path, &lb) == 0 && same_inode(&fb, &lb))
        unlink(path);
    close(fd);
}

static void sweep(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] == '.' && temp_name_pid(e->d_name)) remove_if_stale(dir, e->d_name);
    closedir(d);
}

fusenet_status fusenet__output_check(const char *path, const char *what, fusenet_error *err) {
    if (!path) return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "no output path given");
    plan *p = fusenet__malloc(sizeof *p);
    if (!p) return fusenet__error(err, FUSENET_ERR_NOMEM, "out of memory checking %s", path);
    fusenet_status st = make_plan(path, what, p, err);
    if (st == FUSENET_OK && (p->kind == OUT_NEW || p->kind == OUT_REPLACE)) sweep(p->dir);
    fusenet__free(p);
    return st ? st : fusenet__ok(err);
}

int fusenet__same_file(const char *a, const char *b) {
    struct stat sa, sb;
    return a && b && stat(a, &sa) == 0 && stat(b, &sb) == 0 && S_ISREG(sa.st_mode) && same_inode(&sa, &sb);
}

/* ---- writing ------------------------------------------------------------ */

/* What fusenet__temp_open's *tmp points to: the temporary's name, first, so
 * that *tmp is that name; then the target renamed onto and the registry slot. */
typedef struct temp_file {
    char name[PATH_MAX];
    char target[PATH_MAX];
    int slot;
} temp_file;

static int open_in_place(const plan *p) {
    int fd;
    if (p->kind == OUT_STDIO) return fcntl(p->stdio_fd, F_DUPFD_CLOEXEC, 3);
    do fd = open(p->target, O_WRONLY | O_NOCTTY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    return fd;
}

/* Creates the temporary beside the target, registered before it exists (a
 * signal may run its handler in any thread, at any instant: it never sees the
 * file unregistered), with the replaced file's owner and mode. */
static int open_temp(const plan *p, temp_file *t) {
    static unsigned long counter;
    int fd = -1, e = EEXIST;
    for (int attempt = 0; attempt < 100 && fd < 0 && e == EEXIST; attempt++) {
        unsigned long serial = __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED);
        if (snprintf(t->name, sizeof t->name, "%s/" TEMP_PREFIX "%ld-%lu" TEMP_SUFFIX, p->dir, (long)getpid(),
                     serial) >= (int)sizeof t->name)
            return errno = ENAMETOOLONG, -1;
        t->slot = temp_register(t->name);
        fd = open(t->name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, p->kind == OUT_REPLACE ? 0600 : 0666);
        e = errno;
        if (fd < 0) temp_unregister(t->slot);
        if (fd < 0 && e == EINTR) e = EEXIST; /* try again */
    }
    if (fd < 0) return errno = e, -1;
    flock(fd, LOCK_EX | LOCK_NB); /* marks it live for fusenet__output_check's sweep */
    if (p->kind == OUT_REPLACE) {
        if (p->old.st_uid != geteuid() || p->old.st_gid != getegid())
            if (fchown(fd, p->old.st_uid, p->old.st_gid) != 0) { /* not permitted: the file becomes ours */
            }
        if (fchmod(fd, p->old.st_mode & 07777) != 0) {
            e = errno;
            close(fd);
            unlink(t->name);
            temp_unregister(t->slot);
            return errno = e, -1;
        }
    }
    return fd;
}

int fusenet__temp_open(const char *path, char **tmp, fusenet_error *err) {
    *tmp = NULL;
    temp_file *t = NULL;
    plan *p = fusenet__malloc(sizeof *p);
    if (!p) {
        fusenet__error(err, FUSENET_ERR_NOMEM, "out of memory writing %s", path);
        return -1;
    }
    int fd = -1;
    if (make_plan(path, NULL, p, err) == FUSENET_OK) {
        if (p->kind == OUT_IN_PLACE || p->kind == OUT_STDIO) {
            fd = open_in_place(p);
            if (fd < 0) cannot(err, path, NULL, strerror(errno));
        } else if (!(t = fusenet__malloc(sizeof *t))) {
            fusenet__error(err, FUSENET_ERR_NOMEM, "out of memory writing %s", path);
        } else {
            t->slot = -1;
            strcpy(t->target, p->target);
            fd = open_temp(p, t);
            if (fd < 0) {
                cannot(err, path, NULL, strerror(errno));
                fusenet__free(t);
            } else {
                *tmp = t->name;
            }
        }
    }
    fusenet__free(p);
    return fd;
}

int fusenet__write_full(int fd, const void *buf, size_t n) {
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(fd, (const char *)buf + done, n - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            if (w == 0) errno = EIO;
            return 0;
        }
        done += (size_t)w;
    }
    return 1;
}

ssize_t fusenet__read_full(int fd, void *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -1;
        if (r == 0) break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

fusenet_status fusenet__temp_close(int fd, char *tmp, const char *path, int ok, int err_no, fusenet_error *err) {
    temp_file *t = (temp_file *)(void *)tmp; /* tmp is t->name, its first member */
    int saved = ok ? 0 : err_no;
    struct stat sb;
    /* a regular file is synced; a device, FIFO or terminal has nothing to sync */
    if (ok && fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && fsync(fd) != 0) {
        ok = 0;
        saved = errno;
    }
    if (close(fd) != 0 && ok) {
        ok = 0;
        saved = errno;
    }
    if (t) {
        if (ok && rename(t->name, t->target) != 0) {
            ok = 0;
            saved = errno;
        }
        if (!ok) unlink(t->name);
        temp_unregister(t->slot);
        fusenet__free(t);
    }
    if (!ok) return cannot(err, path, NULL, saved ? strerror(saved) : "write error");
    return FUSENET_OK;
}

/* ---- reading a whole input ---------------------------------------------- */

fusenet_status fusenet__read_file(const char *path, size_t max_bytes, char **buf, size_t *len, fusenet_error *err) {
    *buf = NULL;
    *len = 0;
    int fd;
    do fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not block us */
    while (fd < 0 && errno == EINTR);
    if (fd < 0) return fusenet__error(err, FUSENET_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    struct stat sb;
    fusenet_status st = FUSENET_OK;
    if (fstat(fd, &sb) != 0) st = fusenet__error(err, FUSENET_ERR_IO, "cannot stat %s: %s", path, strerror(errno));
    else if (S_ISDIR(sb.st_mode)) st = fusenet__error(err, FUSENET_ERR_IO, "cannot read %s: %s", path, strerror(EISDIR));
    else if (!S_ISREG(sb.st_mode) || sb.st_size < 0)
        st = fusenet__error(err, FUSENET_ERR_IO, "cannot read %s: not a regular file", path);
    else if ((unsigned long long)sb.st_size > max_bytes)
        st = fusenet__error(err, FUSENET_ERR_NOMEM, "%s: %lld bytes is over the limit of %zu bytes", path,
                            (long long)sb.st_size, max_bytes);
    else if (!(*buf = malloc((size_t)sb.st_size + 1)))
        st = fusenet__error(err, FUSENET_ERR_NOMEM, "%s: out of memory reading %lld bytes", path,
                            (long long)sb.st_size);
    size_t size = st == FUSENET_OK ? (size_t)sb.st_size : 0, got = 0;
    while (st == FUSENET_OK && got < size) { /* a file that grows while read is cut at its size when opened */
        ssize_t r = read(fd, *buf + got, size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) st = fusenet__error(err, FUSENET_ERR_IO, "cannot read %s: %s", path, strerror(errno));
        else if (r == 0) st = fusenet__error(err, FUSENET_ERR_IO, "cannot read %s: the file shrank while read", path);
        else got += (size_t)r;
    }
    close(fd);
    if (st != FUSENET_OK) {
        free(*buf);
        *buf = NULL;
        return st;
    }
    (*buf)[size] = '\0';
    *len = size;
    return fusenet__ok(err);
}

fusenet_status fusenet__write_file(const char *path, const void *data, size_t n, fusenet_error *err) {
    char *tmp = NULL;
    int fd = fusenet__temp_open(path, &tmp, err);
    if (fd < 0) return err ? err->status : FUSENET_ERR_IO;
    int ok = fusenet__write_full(fd, data, n);
    return fusenet__temp_close(fd, tmp, path, ok, ok ? 0 : errno, err);
}
