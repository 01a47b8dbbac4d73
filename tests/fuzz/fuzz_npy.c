/* fuzz_npy.c - libFuzzer target for the in-memory .npy parser (fusenet__npy_parse).
 *
 * Every input is parsed twice: without a size limit and with a 16-byte limit
 * (the NOMEM-before-allocating path). A successful parse must describe exactly
 * the data bytes of the input: rank within FN_NPY_MAX_RANK, dims >= 0, the
 * element count times 4 not more than the input, and the floats equal to the
 * input's last count*4 bytes (little-endian host assumed, as the CI machines). */
#include "fuzz_common.h"

#include "npy.h"

static void npy_fuzz_one(const uint8_t *data, size_t size, size_t max_bytes) {
    fn_npy a;
    fusenet_error err;
    memset(&a, 0x5a, sizeof a);
    fusenet_status st = fusenet__npy_parse(data, size, "fuzz.npy", max_bytes, &a, &err);
    fuzz_check_status(st, &err);
    if (st != FUSENET_OK) {
        FUZZ_CHECK(a.data == NULL);
        fusenet__npy_free(&a);
        return;
    }
    FUZZ_CHECK(a.rank >= 0 && a.rank <= FN_NPY_MAX_RANK);
    uint64_t count = 1;
    for (int i = 0; i < a.rank; i++) {
        FUZZ_CHECK(a.dims[i] >= 0);
        FUZZ_CHECK(a.dims[i] == 0 || count <= UINT64_MAX / (uint64_t)a.dims[i]);
        count *= (uint64_t)a.dims[i];
    }
    FUZZ_CHECK(count <= size / 4);
    if (max_bytes) FUZZ_CHECK(count * 4 <= max_bytes);
    FUZZ_CHECK(count == 0 || a.data != NULL);
    if (count) FUZZ_CHECK(memcmp(a.data, data + size - count * 4, count * 4) == 0);
    fusenet__npy_free(&a);
}

int FUZZ_ENTRY(const uint8_t *data, size_t size);

int FUZZ_ENTRY(const uint8_t *data, size_t size) {
    npy_fuzz_one(data, size, 0);
    npy_fuzz_one(data, size, 16);
    return 0;
}
