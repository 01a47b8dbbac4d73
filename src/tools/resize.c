/* resize.c - the library's TensorFlow resize rule for the tools. */
#include "resize.h"

#include "ops.h"

void fusenet__resize_bilinear(const float *src, int h, int w, int c, float *dst, int oh, int ow) {
    fusenet__tf_resize_nhwc(0, src, 1, h, w, c, dst, oh, ow);
}
