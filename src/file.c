/* file.c - whole-or-nothing file writing: temporary file, then rename. */
#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "error.h"

int fusenet__temp_open(const char *path, char **tmp, fusenet_error *err) {
    static _Thread_local unsigned serial;
    size_t size = strlen(path) + 64;
    *tmp = fusenet__malloc(size);
    if (!*tmp) {
        fusenet__error(err, FUSENET_ERR_NOMEM, "out of memory writing %s", path);
        return -1;
    }
    int fd = -1;
    for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
        snprintf(*tmp, size, "%s.tmp-%ld-%u", path, (long)getpid(), serial++);
        do fd = open(*tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        while (fd < 0 && errno == EINTR);
        if (fd < 0 && errno != EEXIST) break;
    }
    if (fd < 0) {
        fusenet__error(err, FUSENET_ERR_IO, "cannot write %s: %s", path, strerror(errno));
        fusenet__free(*tmp);
        *tmp = NULL;
    }
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

fusenet_status fusenet__temp_close(int fd, char *tmp, const char *path, int ok, int err_no, fusenet_error *err) {
    int saved = ok ? 0 : err_no;
    if (ok && fsync(fd) != 0) {
        ok = 0;
        saved = errno;
    }
    if (close(fd) != 0 && ok) {
        ok = 0;
        saved = errno;
    }
    if (ok && rename(tmp, path) != 0) {
        ok = 0;
        saved = errno;
    }
    if (!ok) unlink(tmp);
    fusenet__free(tmp);
    if (!ok) return fusenet__error(err, FUSENET_ERR_IO, "cannot write %s: %s", path, saved ? strerror(saved) : "write error");
    return FUSENET_OK;
}
