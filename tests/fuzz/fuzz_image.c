/* fuzz_image.c - libFuzzer target for the in-memory image decoder
 * (fn_image_decode: signature sniffing, the JPEG/PNG pre-checks, libjpeg-turbo
 * for JPEG (not instrumented; our glue around it is), stb_image for PNG,
 * the Pillow-exact resizers and caffe preprocessing).
 *
 * The pixel limit is small (4 M) so a forged header cannot make the fuzzer run
 * out of memory, and the target size is small and odd (17 x 23) so nearly
 * every input goes through a resize. The interpolation and caffe switch are
 * taken from the input's size, so the same input always takes the same path.
 * The output buffer is allocated at its exact size (ASan sees any overrun); a
 * successful decode must produce values in the range of 8-bit pixels, minus
 * the ImageNet means when caffe is on. */
#include "fuzz_common.h"

#include <math.h>

#include "image.h"

#define IMG_FUZZ_H 17
#define IMG_FUZZ_W 23

int FUZZ_ENTRY(const uint8_t *data, size_t size);

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
    fusenet_status st = fn_image_decode(data, size, "fuzz.img", &p, dst, &err);
    fuzz_check_status(st, &err);
    if (st == FUSENET_OK) {
        float lo = p.caffe ? -124.0f : 0.0f, hi = 255.0f;
        for (size_t i = 0; i < n; i++) FUZZ_CHECK(isfinite(dst[i]) && dst[i] >= lo && dst[i] <= hi);
    }
    free(dst);
    return 0;
}
