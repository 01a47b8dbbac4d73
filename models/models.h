/* models.h - the two Keras network definitions, written against the graph builder. */
#ifndef FN_MODELS_H
#define FN_MODELS_H

#include "fusenet.h"
#include "graph.h"

/* keras.applications.ResNet50(include_top, pooling): 175 layers without the top. */
void fusenet__build_resnet50(fn_graph *g, int include_top, fusenet_pooling pooling);

/* keras.applications.VGG16(include_top, pooling): 19 layers without the top. */
void fusenet__build_vgg16(fn_graph *g, int include_top, fusenet_pooling pooling);

#endif
