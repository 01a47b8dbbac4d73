/* model.h - the loaded model: graph + raw Keras weights (private). */
#ifndef FN_MODEL_H
#define FN_MODEL_H

#include <stdint.h>

#include "fusenet.h"
#include "graph.h"
#include "h5.h"

enum { FN_WEIGHTS_ABSENT = 0, FN_WEIGHTS_LOADED = 1, FN_WEIGHTS_PENDING = 2 };

struct fusenet_model {
    fusenet_arch arch;
    int include_top;
    fusenet_pooling pooling;
    fn_graph g;
    unsigned char *weights; /* per node: FN_WEIGHTS_ABSENT, _LOADED (in its w[]) or _PENDING (in the file) */
    int old_resnet_names;  /* read from an old Keras ResNet50 file (models/resnet_old_names.c) */
    /* A deferred model (fusenet__model_load_deferred) keeps its file open and
     * reads a node's weights only when the build asks (fusenet__model_fetch). */
    fn_h5 *file;
    fn_shape *shapes;       /* at 224 x 224: the weight shapes the file is checked against */
    int allow_nonfinite;
};

const char *fusenet__arch_name(fusenet_arch arch); /* "resnet50", "vgg16" */

/* fusenet_model_load, but every weight is left in the file, which stays open:
 * the layers the params need are found in it now, and read (their count,
 * shapes, types and finiteness checked, with fusenet_model_load's messages)
 * by fusenet__model_fetch. For a build that takes
 * the model over, so at most one layer's raw weights are held at a time. */
FN_CHECKED fusenet_status fusenet__model_load_deferred(const char *path, const fusenet_model_params *params,
                                                       fusenet_model **out, fusenet_error *err);

/* Reads node i's weights if they are pending (no-op otherwise). */
FN_CHECKED fusenet_status fusenet__model_fetch(fusenet_model *m, int i, fusenet_error *err);

/* Frees node i's weights; with refetch they become pending again (a deferred model only). */
void fusenet__model_release(fusenet_model *m, int i, int refetch);

/* 1 if node i's weights are loaded or pending. */
int fusenet__model_has_weights(const fusenet_model *m, int i);

/* Keras weight roles and shapes of node i, given shapes at 224x224 (only a
 * Dense after Flatten depends on the input size, and Keras fixes it there).
 * Fills specs[0..count) (data left NULL) and returns the count. */
int fusenet__node_wspecs(const fn_graph *g, const fn_shape *shapes, int i, fn_wspec *specs);


#endif
