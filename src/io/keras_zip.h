/* keras_zip.h - the .keras archive (private): a zip holding metadata.json,
 * config.json and model.weights.h5 (keras/src/saving/saving_lib.py,
 * _save_model_to_fileobj; entries stored). The archive and its weights entry
 * are checked with libzip; a stored entry is then read in place, as a window
 * of the archive file (h5format's window backend), so a build holds no copy
 * of the weights file; a deflated one is read with libzip into memory. It is
 * never extracted to disk, and no entry name is ever used as a path.
 *
 * In place needs our own reading of the zip headers (fusenet__zip_locate:
 * end record, zip64 end record, central and local header) to agree with
 * libzip's (the same size and CRC-32), and the window's bytes to have that
 * CRC-32, computed in one pass before the HDF5 reader starts
 * (fusenet__crc32). Where anything disagrees, the entry is read through
 * libzip instead, which reports the fault in its own words.
 *
 * Checks, before and while reading: the archive's consistency (libzip's
 * ZIP_CHECKCONS), at most FN_ZIP_MAX_ENTRIES entries, exactly one entry named
 * model.weights.h5, not encrypted, stored or deflated, its declared size at
 * most FN_ZIP_MAX_BYTES and (stored) equal to its compressed size and within
 * the archive, (deflated) at most FN_ZIP_MAX_RATIO times its compressed size
 * (a zip bomb otherwise), and exactly the declared size read back, with the
 * CRC libzip checks at its end. Any failure is FORMAT (UNSUPPORTED for an
 * encryption or compression method we do not read), naming the archive. */
#ifndef FN_KERAS_ZIP_H
#define FN_KERAS_ZIP_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "fusenet.h"
#include "h5format.h"

#define FN_ZIP_MAX_ENTRIES 100000
#define FN_ZIP_MAX_BYTES ((uint64_t)4 << 30) /* the weights entry */
#define FN_ZIP_MAX_RATIO 200 /* deflated weights: random floats ~1.1:1; zeros ~1030:1 */
#define FN_ZIP_WEIGHTS "model.weights.h5"

/* zlib's crc32(crc, p, n) for any n, faster where the CPU has PCLMULQDQ. */
uint32_t fusenet__crc32(uint32_t crc, const uint8_t *p, size_t n);

/* 1 if `path` is a regular file starting with a zip local header ("PK\3\4")
 * or an empty archive's end record ("PK\5\6"). */
int fusenet__zip_is_zip(const char *path);

/* Reads the entry `entry` of the zip archive `path` (or, with path NULL, of
 * the zip bytes data[0..size), named `name` in messages) into a new buffer
 * (*out, *n bytes, freed with fusenet__free) with the checks above. */
FN_CHECKED fusenet_status fusenet__zip_read(const char *path, const char *name, const uint8_t *data, size_t size,
                                            const char *entry, uint8_t **out, size_t *n, fusenet_error *err);

/* Where an entry's bytes lie in its archive, as its headers say. */
typedef struct fn_zip_span {
    uint64_t offset, length; /* of the stored data (for a deflated entry: its uncompressed length) */
    uint32_t crc;            /* CRC-32 of the uncompressed data, from the central header */
    uint32_t method;         /* 0 stored, 8 deflated, ... */
} fn_zip_span;

/* Finds the only central header named `entry` in the zip archive fd (or,
 * with fd -1, data[0..size)) and its local header: 0 and *span, or -1 when
 * the headers are unreadable, inconsistent, lie outside the archive, or name
 * the entry twice. Reads at most the end record's 64 KiB, the central
 * directory and one local header; allocates at most 64 KiB. */
int fusenet__zip_locate(int fd, const uint8_t *data, uint64_t size, const char *entry, fn_zip_span *span);

/* Opens the model.weights.h5 of the .keras archive `path` as an HDF5 file,
 * in place or in memory as above, named "ARCHIVE:model.weights.h5" in
 * messages. */
FN_CHECKED fusenet_status fusenet__zip_open_h5(const char *path, fn_hdf **out, fusenet_error *err);

#endif
