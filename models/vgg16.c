/* vgg16.c - Keras' VGG16, as keras/applications/vgg16.py builds it.
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

void fusenet__build_vgg16(fn_graph *g, int include_top, fusenet_pooling pooling) {
    int x = fusenet__input(g, "input_1");
    /* Block 1 */
    x = conv(g, x, 64, 1, 1);
    x = conv(g, x, 64, 1, 2);
    x = pool(g, x, 1);
    /* Block 2 */
    x = conv(g, x, 128, 2, 1);
    x = conv(g, x, 128, 2, 2);
    x = pool(g, x, 2);
    /* Block 3 */
    x = conv(g, x, 256, 3, 1);
    x = conv(g, x, 256, 3, 2);
    x = conv(g, x, 256, 3, 3);
    x = pool(g, x, 3);
    /* Block 4 */
    x = conv(g, x, 512, 4, 1);
    x = conv(g, x, 512, 4, 2);
    x = conv(g, x, 512, 4, 3);
    x = pool(g, x, 4);
    /* Block 5 */
    x = conv(g, x, 512, 5, 1);
    x = conv(g, x, 512, 5, 2);
    x = conv(g, x, 512, 5, 3);
    x = pool(g, x, 5);

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
