/* model.h - the loaded model: graph + raw Keras weights (private). */
#ifndef FN_MODEL_H
#define FN_MODEL_H

#include <stdint.h>

#include "fusenet.h"
#include "graph.h"
#include "h5.h"

struct fusenet_model {
    fusenet_arch arch;
    int include_top;
    fusenet_pooling pooling;
    fn_graph g;
    unsigned char *loaded; /* per node: 1 if the node's weights are present */
    int old_resnet_names;  /* read from an old Keras ResNet50 file (models/resnet_old_names.c) */
};

const char *fusenet__arch_name(fusenet_arch arch); /* "resnet50", "vgg16" */

/* Keras weight roles and shapes of node i, given shapes at 224x224 (only a
 * Dense after Flatten depends on the input size, and Keras fixes it there).
 * Fills specs[0..count) (data left NULL) and returns the count. */
int fusenet__node_wspecs(const fn_graph *g, const fn_shape *shapes, int i, fn_wspec *specs);


#endif
