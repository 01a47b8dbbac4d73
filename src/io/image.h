/* image.h - image decoding and resizing helpers behind fusenet_image_load (private). */
#ifndef FN_IMAGE_H
#define FN_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "fusenet.h"

/* Same as fusenet_image_load, from a buffer in memory (for fuzzing). */
fusenet_status fusenet__image_decode(const unsigned char *buf, size_t size, const char *name,
                               const fusenet_image_params *params, float *dst, fusenet_error *err);

#endif
