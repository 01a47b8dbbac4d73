/* random_weights.h - Keras weight files of seeded random values (tools
 * library: `fusenet make-weights` and the tests; writes with libhdf5). */
#ifndef FN_RANDOM_WEIGHTS_H
#define FN_RANDOM_WEIGHTS_H

#include <stdint.h>

#include "fusenet.h"

/* Writes seeded random weights for the given architecture in exactly the
 * official file layout (ResNet50: nested Keras-2 names; VGG16: flat Keras-1
 * names). Values are scaled so activations stay of order one. */
fusenet_status fusenet__write_random_weights(fusenet_arch arch, int include_top, uint64_t seed, const char *path,
                                       fusenet_error *err);

#endif
