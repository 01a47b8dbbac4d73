/* resnet50.c - Keras' ResNet50, ResNet101 and ResNet152 (ResNet v1), as
 * keras/applications/resnet.py builds them (one builder, three stack_fn).
 *
 * Differences from torchvision's resnet50 worth keeping in mind: the stride-2
 * of a stage sits on the first 1x1 conv (not on the 3x3), every Conv2D has a
 * bias, BatchNormalization uses epsilon 1.001e-5, and the stem pads explicitly
 * (ZeroPadding2D 3, then 1 before the max pool).
 */
#include <stdio.h>

#include "models.h"

#define BN_EPSILON 1.001e-5f

static const char *nm(char *buf, const char *prefix, const char *suffix) {
    snprintf(buf, FN_NAME_MAX, "%s%s", prefix, suffix);
    return buf;
}

/* Keras residual_block_v1 (block1). Nodes are added in Keras' model.layers
 * order, which puts the projection shortcut after _2_relu. */
static int block1(fn_graph *g, int x, int filters, int stride, int conv_shortcut, const char *name) {
    char b[FN_NAME_MAX];
    int y = fusenet__conv2d(g, x, filters, 1, stride, FN_PAD_VALID, FN_ACT_NONE, nm(b, name, "_1_conv"));
    y = fusenet__batch_norm(g, y, BN_EPSILON, nm(b, name, "_1_bn"));
    y = fusenet__relu(g, y, nm(b, name, "_1_relu"));
    y = fusenet__conv2d(g, y, filters, 3, 1, FN_PAD_SAME, FN_ACT_NONE, nm(b, name, "_2_conv"));
    y = fusenet__batch_norm(g, y, BN_EPSILON, nm(b, name, "_2_bn"));
    y = fusenet__relu(g, y, nm(b, name, "_2_relu"));
    int shortcut = x;
    if (conv_shortcut) {
        shortcut = fusenet__conv2d(g, x, 4 * filters, 1, stride, FN_PAD_VALID, FN_ACT_NONE, nm(b, name, "_0_conv"));
        y = fusenet__conv2d(g, y, 4 * filters, 1, 1, FN_PAD_VALID, FN_ACT_NONE, nm(b, name, "_3_conv"));
        shortcut = fusenet__batch_norm(g, shortcut, BN_EPSILON, nm(b, name, "_0_bn"));
    } else {
        y = fusenet__conv2d(g, y, 4 * filters, 1, 1, FN_PAD_VALID, FN_ACT_NONE, nm(b, name, "_3_conv"));
    }
    y = fusenet__batch_norm(g, y, BN_EPSILON, nm(b, name, "_3_bn"));
    y = fusenet__add(g, shortcut, y, nm(b, name, "_add"));
    return fusenet__relu(g, y, nm(b, name, "_out"));
}

/* Keras stack_residual_blocks_v1 (stack1). */
static int stack1(fn_graph *g, int x, int filters, int blocks, int stride1, const char *name) {
    char b[FN_NAME_MAX];
    x = block1(g, x, filters, stride1, 1, nm(b, name, "_block1"));
    for (int i = 2; i <= blocks; i++) {
        char suffix[24];
        snprintf(suffix, sizeof suffix, "_block%d", i);
        x = block1(g, x, filters, 1, 0, nm(b, name, suffix));
    }
    return x;
}

/* Keras ResNet(stack_fn): the stem, four stacks of `blocks` residual blocks
 * (64, 128, 256, 512 filters; stride 1 for the first, 2 for the others), the top. */
static void build_resnet(fn_graph *g, const int blocks[4], int include_top, fusenet_pooling pooling) {
    int x = fusenet__input(g, "input_1");
    x = fusenet__zero_pad(g, x, 3, "conv1_pad");
    x = fusenet__conv2d(g, x, 64, 7, 2, FN_PAD_VALID, FN_ACT_NONE, "conv1_conv");
    x = fusenet__batch_norm(g, x, BN_EPSILON, "conv1_bn");
    x = fusenet__relu(g, x, "conv1_relu");
    x = fusenet__zero_pad(g, x, 1, "pool1_pad");
    x = fusenet__max_pool(g, x, 3, 2, "pool1_pool");

    x = stack1(g, x, 64, blocks[0], 1, "conv2");
    x = stack1(g, x, 128, blocks[1], 2, "conv3");
    x = stack1(g, x, 256, blocks[2], 2, "conv4");
    x = stack1(g, x, 512, blocks[3], 2, "conv5");

    if (include_top) {
        x = fusenet__global_pool(g, x, 0, "avg_pool");
        fusenet__dense(g, x, 1000, FN_ACT_SOFTMAX, "predictions");
    } else if (pooling == FUSENET_POOLING_AVG) {
        fusenet__global_pool(g, x, 0, "avg_pool");
    } else if (pooling == FUSENET_POOLING_MAX) {
        fusenet__global_pool(g, x, 1, "max_pool");
    }
}

/* The stack_fn of keras.applications ResNet50, ResNet101, ResNet152. */
static const int resnet50_blocks[4] = {3, 4, 6, 3};
static const int resnet101_blocks[4] = {3, 4, 23, 3};
static const int resnet152_blocks[4] = {3, 8, 36, 3};

void fusenet__build_resnet50(fn_graph *g, int include_top, fusenet_pooling pooling) {
    build_resnet(g, resnet50_blocks, include_top, pooling);
}

void fusenet__build_resnet101(fn_graph *g, int include_top, fusenet_pooling pooling) {
    build_resnet(g, resnet101_blocks, include_top, pooling);
}

void fusenet__build_resnet152(fn_graph *g, int include_top, fusenet_pooling pooling) {
    build_resnet(g, resnet152_blocks, include_top, pooling);
}
