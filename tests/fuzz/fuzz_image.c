/* fuzz_image.c - libFuzzer target for the in-memory image decoder
 * (fusenet__image_decode: signature sniffing, the JPEG/PNG pre-checks, libjpeg-turbo
 * for JPEG (not instrumented; our glue around it is), stb_image for PNG,
 * the Pillow-exact resizers and caffe preprocessing).
 *
 * The pixel limit is small (4 M) so a forged header cannot make the fuzzer run
 * out of memory, and the target size is small and odd (17 x 23) so nearly
 * every input goes through a resize. The interpolation and caffe switch are
 * taken from the input's size, so the same input always takes the same path.
 * The output buffer is allocated at its exact size (ASan sees any overrun); a
 * successful decode must produce values in the range of 8-bit pixels, minus
 * the ImageNet means when caffe is on.
 *
 * PNG chunks carry CRCs, which the decoder checks first: a mutated PNG would
 * almost never get past them. So inputs whose size is a multiple of 4 are
 * decoded as given (the CRC check is fuzzed) and the others have their chunk
 * CRCs recomputed first (stb_image's PNG decoder is fuzzed). */
#include "fuzz_common.h"

#include <math.h>
#include <string.h>

#include <zlib.h>

#include "image.h"

#define IMG_FUZZ_H 17
#define IMG_FUZZ_W 23

int FUZZ_ENTRY(const uint8_t *data, size_t size);

/* Rewrites the CRC of every whole chunk of a PNG in place. */
static void fix_png_crcs(uint8_t *b, size_t n) {
    size_t pos = 8;
    while (pos + 12 <= n) {
        uint32_t len = (uint32_t)b[pos] << 24 | (uint32_t)b[pos + 1] << 16 | (uint32_t)b[pos + 2] << 8 | b[pos + 3];
        if (len > n - pos - 12) return;
        uLong crc = crc32(0L, b + pos + 4, (uInt)len + 4);
        uint8_t *c = b + pos + 8 + len;
        c[0] = (uint8_t)(crc >> 24), c[1] = (uint8_t)(crc >> 16), c[2] = (uint8_t)(crc >> 8), c[3] = (uint8_t)crc;
        pos += 12 + (size_t)len;
    }
}

int FUZZ_ENTRY(const uint8_t *data, size_t size) {
    fusenet_image_params p = fusenet_image_default_params();
    p.height = IMG_FUZZ_H;
    p.width = IMG_FUZZ_W;
    p.max_pixels = (int64_t)4 << 20;
    p.interp = (size & 1) ? FUSENET_INTERP_BILINEAR : FUSENET_INTERP_NEAREST;
    p.caffe = (size & 2) ? 0 : 1;
    size_t n = (size_t)IMG_FUZZ_H * IMG_FUZZ_W * 3;
    float *dst = malloc(n * sizeof *dst);
    FUZZ_CHECK(dst != NULL);
    fusenet_error err;
    uint8_t *copy = NULL;
    if (size % 4 != 0 && size >= 8 && memcmp(data, "\x89PNG\r\n\x1a\n", 8) == 0) {
        copy = malloc(size);
        FUZZ_CHECK(copy != NULL);
        memcpy(copy, data, size);
        fix_png_crcs(copy, size);
        data = copy;
    }
    fusenet_status st = fusenet__image_decode(data, size, "fuzz.img", &p, dst, &err);
    fuzz_check_status(st, &err);
    if (st == FUSENET_OK) {
        float lo = p.caffe ? -124.0f : 0.0f, hi = 255.0f;
        for (size_t i = 0; i < n; i++) FUZZ_CHECK(isfinite(dst[i]) && dst[i] >= lo && dst[i] <= hi);
    }
    free(dst);
    free(copy);
    return 0;
}
