/* npy.h - .npy arrays: float32, little-endian, C order (private; used by the CLI and tests). */
#ifndef FN_NPY_H
#define FN_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "fusenet.h"

#define FN_NPY_MAX_RANK 8

typedef struct fn_npy {
    int rank;
    int64_t dims[FN_NPY_MAX_RANK];
    float *data; /* owned; free with fusenet__npy_free */
} fn_npy;

/* Reads a version 1/2/3 .npy file holding '<f4' (or '|f4'-compatible) data in
 * C order. Refuses (FORMAT, naming the file and what is wrong): bad magic,
 * other dtypes (the message names the dtype), big-endian, fortran_order True,
 * a header that lies about its length, a data size that does not match the
 * shape (truncated or trailing bytes), ranks above FN_NPY_MAX_RANK, negative
 * or overflowing dims. `max_bytes` > 0 refuses (NOMEM) larger data before
 * allocating. IO for a file that cannot be opened. */
fusenet_status fusenet__npy_read(const char *path, size_t max_bytes, fn_npy *out, fusenet_error *err);

/* Same, from a buffer in memory (for fuzzing); `name` is used in messages. */
fusenet_status fusenet__npy_parse(const unsigned char *buf, size_t size, const char *name, size_t max_bytes,
                            fn_npy *out, fusenet_error *err);

/* Opens path for streaming: checks the header and that the file holds exactly
 * the data of its shape (the same refusals as fusenet__npy_read), fills *shape
 * (data NULL) and leaves *fd open at the first data byte; the caller closes it. */
fusenet_status fusenet__npy_open(const char *path, fn_npy *shape, int *fd, fusenet_error *err);

/* An array of the given shape with uninitialised data (NOMEM naming its size). */
fusenet_status fusenet__npy_alloc(int rank, const int64_t *dims, fn_npy *out, fusenet_error *err);

void fusenet__npy_free(fn_npy *a);

/* Writes a version 1.0 '<f4' C-order .npy. The file is written to a temporary
 * name beside `path` and renamed into place only on success, so an error
 * never leaves a partial file nor clobbers an existing good one. */
/* The version 1.0 '<f4' C-order header numpy writes for this shape (rank
 * 0..FN_NPY_MAX_RANK, dims >= 0) into buf (FN_NPY_HEADER_MAX bytes); returns
 * its length, a multiple of 64. */
#define FN_NPY_HEADER_MAX 640
size_t fusenet__npy_header(int rank, const int64_t *dims, unsigned char *buf);

fusenet_status fusenet__npy_write(const char *path, int rank, const int64_t *dims, const float *data,
                            fusenet_error *err);

#endif
