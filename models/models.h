/* models.h - the Keras network definitions, written against the graph builder,
 * and the registry of architectures (archs.c) the loader and writer go through. */
#ifndef FN_MODELS_H
#define FN_MODELS_H

#include "fusenet.h"
#include "graph.h"

/* keras.applications.ResNet50(include_top, pooling): 175 layers without the top. */
void fusenet__build_resnet50(fn_graph *g, int include_top, fusenet_pooling pooling);
/* ResNet101 (stacks 3-4-23-3): 345 layers; ResNet152 (3-8-36-3): 515 layers, without the top. */
void fusenet__build_resnet101(fn_graph *g, int include_top, fusenet_pooling pooling);
void fusenet__build_resnet152(fn_graph *g, int include_top, fusenet_pooling pooling);

/* keras.applications.VGG16(include_top, pooling): 19 layers without the top. */
void fusenet__build_vgg16(fn_graph *g, int include_top, fusenet_pooling pooling);
/* keras.applications.VGG19(include_top, pooling): 22 layers without the top. */
void fusenet__build_vgg19(fn_graph *g, int include_top, fusenet_pooling pooling);

/* One row per fusenet_arch. */
typedef struct fn_arch_info {
    fusenet_arch arch;
    const char *name;       /* "resnet50": messages */
    const char *keras_name; /* "ResNet50": keras.applications' name */
    void (*build)(fn_graph *g, int include_top, fusenet_pooling pooling);
    /* Weight names in the official file: 1 flat Keras-1 (LAYER_W_1:0), 0 nested Keras-2 (LAYER/kernel:0). */
    int keras1_names;
    /* A layer every file of this architecture has and no other's does: tells a wrong file. */
    const char *signature;
} fn_arch_info;

extern const fn_arch_info fusenet__archs[];
extern const int fusenet__n_archs;

/* The registry row of `arch`, or NULL for a value that is no architecture. */
const fn_arch_info *fusenet__arch(fusenet_arch arch);

/* Old Keras ResNet50 files (deep-learning-models v0.2: conv1, bn_conv1, res2a_branch2a, ...;
 * resnet_old_names.c): a current layer name's old name, and back. Return 1 and
 * write the name when it has one (the layers with weights), 0 otherwise. */
int fusenet__resnet_old_name(const char *current, char *old, size_t size);
int fusenet__resnet_current_name(const char *old, char *current, size_t size);
/* Their BatchNormalization epsilon (Keras' default), set on every BatchNorm of g. */
#define FN_RESNET_OLD_BN_EPSILON 1e-3f
void fusenet__resnet_old_epsilon(fn_graph *g);

#endif
