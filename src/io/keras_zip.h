/* keras_zip.h - the .keras archive (private): a zip holding metadata.json,
 * config.json and model.weights.h5 (keras/src/saving/saving_lib.py,
 * _save_model_to_fileobj; entries stored). The weights entry is read with
 * libzip into memory, never extracted to disk, and opened with h5format's
 * memory backend. No entry name is ever used as a path.
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

/* 1 if `path` is a regular file starting with a zip local header ("PK\3\4")
 * or an empty archive's end record ("PK\5\6"). */
int fusenet__zip_is_zip(const char *path);

/* Reads the entry `entry` of the zip archive `path` (or, with path NULL, of
 * the zip bytes data[0..size), named `name` in messages) into a new buffer
 * (*out, *n bytes, freed with fusenet__free) with the checks above. */
FN_CHECKED fusenet_status fusenet__zip_read(const char *path, const char *name, const uint8_t *data, size_t size,
                                            const char *entry, uint8_t **out, size_t *n, fusenet_error *err);

/* Opens the model.weights.h5 of the .keras archive `path` as an HDF5 file in
 * memory, named "ARCHIVE:model.weights.h5" in messages. */
FN_CHECKED fusenet_status fusenet__zip_open_h5(const char *path, fn_hdf **out, fusenet_error *err);

#endif
