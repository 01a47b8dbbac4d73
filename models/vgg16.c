/* vgg16.c - Keras' VGG16 and VGG19, as keras/applications/vgg16.py and vgg19.py
 * build them.
 *
 * Every Conv2D is 3x3 'same' with bias and activation='relu' fused into the
 * layer, so a conv layer's output is post-ReLU. Pools are 2x2 stride 2 'valid'.
 */
#include <stdio.h>

#include "models.h"

static int conv(fn_graph *g, int x, int filters, int block, int i) {
    char name[FN_NAME_MAX];
    snprintf(name, sizeof name, "block%d_conv%d", block, i);
    return fusenet__conv2d(g, x, filters, 3, 1, FN_PAD_SAME, FN_ACT_RELU, name);
}

static int pool(fn_graph *g, int x, int block) {
    char name[FN_NAME_MAX];
    snprintf(name, sizeof name, "block%d_pool", block);
    return fusenet__max_pool(g, x, 2, 2, name);
}

/* Keras VGG16 and VGG19 differ only in the convs of blocks 3-5 (3 or 4 each). */
static void build_vgg(fn_graph *g, int deep_convs, int include_top, fusenet_pooling pooling) {
    static const int filters[5] = {64, 128, 256, 512, 512};
    int x = fusenet__input(g, "input_1");
    for (int block = 1; block <= 5; block++) {
        int convs = block <= 2 ? 2 : deep_convs;
        for (int i = 1; i <= convs; i++) x = conv(g, x, filters[block - 1], block, i);
        x = pool(g, x, block);
    }

    if (include_top) {
        x = fusenet__flatten(g, x, "flatten");
        x = fusenet__dense(g, x, 4096, FN_ACT_RELU, "fc1");
        x = fusenet__dense(g, x, 4096, FN_ACT_RELU, "fc2");
        fusenet__dense(g, x, 1000, FN_ACT_SOFTMAX, "predictions");
    } else if (pooling == FUSENET_POOLING_AVG) {
        fusenet__global_pool(g, x, 0, "global_average_pooling2d");
    } else if (pooling == FUSENET_POOLING_MAX) {
        fusenet__global_pool(g, x, 1, "global_max_pooling2d");
    }
}

void fusenet__build_vgg16(fn_graph *g, int include_top, fusenet_pooling pooling) {
    build_vgg(g, 3, include_top, pooling);
}

void fusenet__build_vgg19(fn_graph *g, int include_top, fusenet_pooling pooling) {
    build_vgg(g, 4, include_top, pooling);
}
