/* h5format.h - our own reader of the part of the HDF5 file format that Keras
 * weight files use (private). h5.c builds the Keras layout on top of it.
 *
 * Why not libhdf5: a crafted file makes libhdf5 1.10 read out of bounds,
 * allocate without limit or loop forever, which would take the host process
 * down. This reader trusts nothing in the file: every address and length is
 * checked against the file size before it is used, every count is capped, and
 * every walk of a linked structure has a bound, so any input ends in a value
 * or a one-line FORMAT error.
 *
 * Supported (everything h5py and libhdf5 write with either libver setting,
 * for datasets of a fixed size):
 *  - superblock versions 0-3, a user block before the superblock;
 *  - object headers version 1 and 2 with continuation blocks;
 *  - groups: symbol tables (v1 B-tree, local heap, symbol nodes), compact link
 *    messages and dense link storage (fractal heap + v2 B-tree); hard links;
 *  - attributes in the object header (message versions 1-3) or in dense
 *    storage, huge heap objects included;
 *  - dataspaces scalar, simple and null; datatypes IEEE float (2, 4 or 8
 *    bytes, either byte order), fixed- and variable-length strings (global
 *    heap), integers (recognised only, to name them in messages);
 *  - datasets compact, contiguous and chunked (v1 B-tree index, or the
 *    single-chunk, implicit and unpaged fixed-array indexes of layout
 *    version 4), with the deflate, shuffle and fletcher32 filters.
 * Refused with status UNSUPPORTED and a message saying what: the chunk
 * indexes of resizable datasets (extensible array, v2 B-tree), paged fixed
 * arrays, shared messages, soft and external links, external data files,
 * other filters, compressed fractal heaps. Checksums of version 2 metadata
 * (lookup3) and fletcher32 chunks are verified.
 *
 * Error messages read "FILE: WHAT: detail", WHAT being the caller's context
 * ("layer conv1_conv attribute weight_names"). Every call returns FUSENET_OK
 * or the failure's status (FN_CHECKED: the caller must look at it). */
#ifndef FN_H5FORMAT_H
#define FN_H5FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "fusenet.h"

#define FN_HDF_MAX_RANK 32

typedef struct fn_hdf fn_hdf;           /* an open file */
typedef uint64_t fn_hdf_obj;            /* an object: its header's address */
typedef struct fn_hdf_attr fn_hdf_attr; /* a decoded attribute */

typedef enum fn_hdf_kind { FN_HDF_OTHER, FN_HDF_GROUP, FN_HDF_DATASET } fn_hdf_kind;

typedef enum fn_hdf_class {
    FN_HDF_INTEGER = 0,
    FN_HDF_FLOAT = 1,
    FN_HDF_STRING = 3, /* fixed-length */
    FN_HDF_VLEN_STRING = 9,
    FN_HDF_UNSUPPORTED = 99 /* any other class; see fusenet__hdf_class_name */
} fn_hdf_class;

/* The shape and element type of an attribute or dataset. */
typedef struct fn_hdf_shape {
    int is_null;                    /* null dataspace: no elements */
    int rank;                       /* 0 for scalar */
    uint64_t dims[FN_HDF_MAX_RANK];
    uint64_t count;                 /* product of dims, 0 for null */
    fn_hdf_class cls;
    int raw_class;                  /* the HDF5 class number, for messages */
    uint32_t size;                  /* bytes per element */
} fn_hdf_shape;

const char *fusenet__hdf_class_name(int raw_class); /* "integer", "compound", ... */

/* Opens `path` read-only and reads its superblock. IO: cannot open, a
 * directory; FORMAT: empty, not HDF5 (no signature), truncated superblock. */
FN_CHECKED fusenet_status fusenet__hdf_open(const char *path, fn_hdf **out, fusenet_error *err);
/* The same on a file held in memory: `data` (size bytes, allocated with
 * fusenet__malloc) is owned by the reader from now on, freed by
 * fusenet__hdf_close or on failure; `name` is the file's name in messages. */
FN_CHECKED fusenet_status fusenet__hdf_open_mem(const char *name, uint8_t *data, size_t size, fn_hdf **out,
                                                fusenet_error *err);
/* The same on bytes [offset, offset + size) of the open file `fd` (a .keras
 * archive's stored weights entry, read in place); fd is owned from now on,
 * closed by fusenet__hdf_close or on failure. The caller has checked that
 * the bytes lie in the file. */
FN_CHECKED fusenet_status fusenet__hdf_open_window(const char *name, int fd, uint64_t offset, uint64_t size,
                                                   fn_hdf **out, fusenet_error *err);
void fusenet__hdf_close(fn_hdf *h);
const char *fusenet__hdf_path(const fn_hdf *h);
fn_hdf_obj fusenet__hdf_root(const fn_hdf *h);

/* The object reached by the link `name` (one path part, no '/') of `group`.
 * *found is 0 when the group has no such link. */
FN_CHECKED fusenet_status fusenet__hdf_lookup(fn_hdf *h, fn_hdf_obj group, const char *name, const char *what,
                                              fn_hdf_obj *child, int *found, fusenet_error *err);
/* The names of every link of `group`, sorted (byte order): *names gets n
 * copies, freed with fusenet__hdf_names_free. */
FN_CHECKED fusenet_status fusenet__hdf_children(fn_hdf *h, fn_hdf_obj group, const char *what, char ***names,
                                                size_t *n, fusenet_error *err);
void fusenet__hdf_names_free(char **names, size_t n);
FN_CHECKED fusenet_status fusenet__hdf_kind_of(fn_hdf *h, fn_hdf_obj obj, const char *what, fn_hdf_kind *kind,
                                               fusenet_error *err);

/* The attribute `name` of `obj`; *out is NULL (and OK returned) when absent. */
FN_CHECKED fusenet_status fusenet__hdf_attr_find(fn_hdf *h, fn_hdf_obj obj, const char *name, const char *what,
                                                 fn_hdf_attr **out, fusenet_error *err);
const fn_hdf_shape *fusenet__hdf_attr_shape(const fn_hdf_attr *a);
/* Element i of a string attribute, into buf[0..cap) NUL-terminated; *len is
 * its length without the fixed-length NUL padding. FORMAT if it is longer
 * than cap - 1 bytes. */
FN_CHECKED fusenet_status fusenet__hdf_attr_string(fn_hdf *h, const fn_hdf_attr *a, size_t i, const char *what,
                                                   char *buf, size_t cap, size_t *len, fusenet_error *err);
void fusenet__hdf_attr_free(fn_hdf_attr *a);

/* A dataset, parsed once: its shape, then its elements converted to float32.
 * *out is NULL (and OK returned) when obj is not a dataset. dst holds
 * shape->count floats; the dataset must be floating point. */
typedef struct fn_hdf_dataset fn_hdf_dataset;
FN_CHECKED fusenet_status fusenet__hdf_dataset_open(fn_hdf *h, fn_hdf_obj obj, const char *what, fn_hdf_dataset **out,
                                                    fusenet_error *err);
const fn_hdf_shape *fusenet__hdf_dataset_shape(const fn_hdf_dataset *d);
FN_CHECKED fusenet_status fusenet__hdf_dataset_read(fn_hdf *h, const fn_hdf_dataset *d, const char *what, float *dst,
                                                    size_t count, fusenet_error *err);
void fusenet__hdf_dataset_free(fn_hdf_dataset *d);

#endif
