/* file.h - writing a file so that it appears whole or not at all (private).
 *
 * The data goes to a temporary file beside the target, which is renamed onto
 * it only when everything was written: an error never leaves a partial file
 * nor clobbers a good one. Used by the .npy, HDF5 and PNG writers. */
#ifndef FN_FILE_H
#define FN_FILE_H

#include <stddef.h>

#include "fusenet.h"

/* Creates a new temporary file beside path. Returns its descriptor and sets
 * *tmp to its name (freed by fusenet__temp_close), or returns -1 with err filled. */
int fusenet__temp_open(const char *path, char **tmp, fusenet_error *err);

/* Writes all n bytes; returns 0 with errno set on failure. */
int fusenet__write_full(int fd, const void *buf, size_t n);

/* Ends a temporary file. If ok: syncs, closes and renames it onto path.
 * Otherwise, or if any of that fails, closes and removes it; the message names
 * path and the error (err_no, the errno of a failed write, when ok is 0).
 * Frees tmp. */
fusenet_status fusenet__temp_close(int fd, char *tmp, const char *path, int ok, int err_no, fusenet_error *err);

#endif
