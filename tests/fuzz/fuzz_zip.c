/* fuzz_zip.c - libFuzzer target for the .keras archive reader
 * (src/io/keras_zip.c, on libzip): raw zip bytes in memory, the entry
 * model.weights.h5 read with every size check, then opened with h5format's
 * memory backend and given to the layer table (fusenet__h5 on the same
 * bytes through a scratch file is fuzz_h5's job). The same bytes go to our
 * own reading of the zip headers (fusenet__zip_locate, which a build uses to
 * read a stored entry in place).
 *
 * Oracles besides the sanitizers: the status/message contract; a read that
 * succeeds returns at most FN_ZIP_MAX_BYTES bytes, never more than the
 * archive's size times FN_ZIP_MAX_RATIO, and the output pointer is NULL on
 * failure; a located entry lies inside the archive, and when it is stored,
 * libzip read it and its bytes have the CRC-32 its header names (what a build
 * checks before reading in place), they are the bytes libzip read. Seeds: tests/fuzz/corpus/zip (make_seeds.py: stored and deflated
 * archives with a small Keras 3 weights file, an empty archive). */
#include "fuzz_common.h"

#include <string.h>
#include <zlib.h>

#include "alloc.h"
#include "h5format.h"
#include "keras_zip.h"

int FUZZ_ENTRY(const uint8_t *data, size_t size);

int FUZZ_ENTRY(const uint8_t *data, size_t size) {
    uint8_t *out = (uint8_t *)(uintptr_t)1;
    size_t n = 7;
    fusenet_error err;
    fusenet_status st = fusenet__zip_read(NULL, "fuzz.keras", data, size, FN_ZIP_WEIGHTS, &out, &n, &err);
    fuzz_check_status(st, &err);
    fn_zip_span sp;
    if (fusenet__zip_locate(-1, data, size, FN_ZIP_WEIGHTS, &sp) == 0) {
        FUZZ_CHECK(sp.offset <= size && (sp.method != 0 || sp.length <= size - sp.offset));
        if (st == FUSENET_OK && sp.method == 0 &&
            (uint32_t)crc32(crc32(0L, Z_NULL, 0), data + sp.offset, (uInt)sp.length) == sp.crc)
            FUZZ_CHECK(sp.length == n && memcmp(data + sp.offset, out, n) == 0);
    }
    if (st != FUSENET_OK) {
        FUZZ_CHECK(out == NULL && n == 0);
        return 0;
    }
    FUZZ_CHECK(out != NULL);
    FUZZ_CHECK(n <= FN_ZIP_MAX_BYTES && n <= (uint64_t)size * FN_ZIP_MAX_RATIO);
    fn_hdf *h = (fn_hdf *)(uintptr_t)1;
    st = fusenet__hdf_open_mem("fuzz.keras:model.weights.h5", out, n, &h, &err); /* owns out */
    fuzz_check_status(st, &err);
    FUZZ_CHECK((st == FUSENET_OK) == (h != NULL));
    if (h) {
        char **names = NULL;
        size_t count = 0;
        st = fusenet__hdf_children(h, fusenet__hdf_root(h), "root group", &names, &count, &err);
        fuzz_check_status(st, &err);
        fusenet__hdf_names_free(names, count);
        fusenet__hdf_close(h);
    }
    return 0;
}
