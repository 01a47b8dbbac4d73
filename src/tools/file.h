/* file.h - writing an output so that it never destroys what it replaces (private).
 *
 * A regular file (or a new one) is written to a temporary file beside it and
 * renamed onto it only when everything was written: an error never leaves a
 * partial file nor clobbers a good one, and the replaced file's mode is kept.
 * A symbolic link is followed and its target replaced the same way. A
 * character device or FIFO, or the process's own stdout/stderr, is written in
 * place. Anything else (directory, socket, block device) is refused. Used by
 * the .npy, HDF5, PNG and names-file writers. */
#ifndef FN_FILE_H
#define FN_FILE_H

#include <stddef.h>
#include <sys/types.h>

#include "fusenet.h"

/* Checks, before any work, that path can be written as above (its directory
 * exists and is writable, an existing file is writable, the path is no
 * directory and does not end in '/'); `what` (an option name, or NULL) goes
 * into the message. Also removes the temporaries that writers killed outright
 * (SIGKILL) left in that directory: our name pattern, owned by us, whose PID
 * has no process and whose lock nobody holds. */
fusenet_status fusenet__output_check(const char *path, const char *what, fusenet_error *err);

/* 1 if a and b name the same existing regular file (device and inode; links followed). */
int fusenet__same_file(const char *a, const char *b);

/* Opens path for writing as above. Returns a descriptor and sets *tmp to the
 * temporary's name (a handle freed by fusenet__temp_close; NULL when the
 * path is written in place), or returns -1 with err filled. */
int fusenet__temp_open(const char *path, char **tmp, fusenet_error *err);

/* Writes all n bytes; returns 0 with errno set on failure. */
int fusenet__write_full(int fd, const void *buf, size_t n);

/* read() until n bytes or the end of the file; returns the bytes read, or -1 (errno set). */
ssize_t fusenet__read_full(int fd, void *buf, size_t n);

/* Ends an output. If ok: syncs (a regular file), closes and renames the
 * temporary onto the target. Otherwise, or if any of that fails, closes and
 * removes the temporary; the message names path and the error (err_no, the
 * errno of a failed write, when ok is 0). Frees tmp. */
fusenet_status fusenet__temp_close(int fd, char *tmp, const char *path, int ok, int err_no, fusenet_error *err);

/* Writes the n bytes of data to path as above (temp_open, write_full,
 * temp_close). */
fusenet_status fusenet__write_file(const char *path, const void *data, size_t n, fusenet_error *err);

/* Removes every temporary currently open: only unlink(2), so a SIGINT or
 * SIGTERM handler may call it (then _exit). */
void fusenet__temp_remove_all(void);

/* Reads a whole input file into *buf (NUL-terminated; *len bytes before the
 * NUL; free with free(3)): regular files only, opened without blocking (a
 * FIFO or device is refused, never waited on or read forever), at most
 * max_bytes (NOMEM naming the size and the limit before reading). */
fusenet_status fusenet__read_file(const char *path, size_t max_bytes, char **buf, size_t *len, fusenet_error *err);

#endif
