/* resize.h - TensorFlow's resize rule on a plain float image, for the tools
 * (the heatmap of `fusenet viz`); the library's own implementation. */
#ifndef FN_TOOLS_RESIZE_H
#define FN_TOOLS_RESIZE_H

/* Bilinear, half-pixel centres, no antialias (tf.image.resize): the h x w x c
 * image src into the oh x ow x c image dst. */
void fusenet__resize_bilinear(const float *src, int h, int w, int c, float *dst, int oh, int ow);

#endif
