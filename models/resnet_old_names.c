/* resnet_old_names.c - the layer names of old Keras ResNet50 files, mapped
 * onto the current graph (models/resnet50.c), as plain data.
 *
 * Old files: fchollet/deep-learning-models release v0.2 (2016), which Keras'
 * keras/applications/resnet50.py (Keras 2.0 - 2.2.2) and
 * keras-applications' keras_applications/resnet50.py (up to 1.0.8, still
 * downloading the v0.2 files) load; official notop MD5
 * a268eb855778b3df3c7506639542a6af, top a7b3fe01876f51b976af0dea6bc144eb.
 * Their builder names a conv of stage S, block B (a, b, c, ...)
 * 'res' + S + B + '_branch' + {2a, 2b, 2c, 1} and its BatchNorm 'bn' + the
 * same (identity_block / conv_block), the stem conv1 / bn_conv1, the
 * classifier fc1000; the current keras/applications/resnet.py (block1 of
 * stack1) names them convS_blockK_{1,2,3,0}_conv / _bn, conv1_conv / conv1_bn,
 * predictions. BatchNormalization there has Keras' default epsilon 1e-3
 * (current: 1.001e-5).
 *
 * The architecture is the current one from the first conv on (stride 2 on the
 * first 1x1 conv of a stage's first block and on its shortcut, as in
 * resnet.py), except pool1_pad: keras_applications/resnet50.py had no
 * ZeroPadding2D before the max pool until commit 36436f6 (2018-08-31,
 * keras-team/keras-applications issue #30: 55x55 after the pool at 224 instead
 * of the paper's 56x56), and has pool1_pad from then on. We build the current
 * graph, with pool1_pad: what Keras computes with these files since that
 * commit (models/README.md).
 */
#include <stdio.h>
#include <string.h>

#include "models.h"

/* Layers named outside the block rule. */
static const struct {
    const char *current, *old;
} fixed_names[] = {
    {"conv1_conv", "conv1"},
    {"conv1_bn", "bn_conv1"},
    {"predictions", "fc1000"},
};

/* convS_blockK<suffix>  <->  <prefix>S<letter K>_branch<branch> */
static const struct {
    const char *suffix, *prefix, *branch;
} block_names[] = {
    {"_1_conv", "res", "2a"}, {"_1_bn", "bn", "2a"}, {"_2_conv", "res", "2b"}, {"_2_bn", "bn", "2b"},
    {"_3_conv", "res", "2c"}, {"_3_bn", "bn", "2c"}, {"_0_conv", "res", "1"},  {"_0_bn", "bn", "1"},
};

#define N_FIXED (sizeof fixed_names / sizeof fixed_names[0])
#define N_BLOCK (sizeof block_names / sizeof block_names[0])
#define MAX_BLOCK 26 /* block letters a..z */

/* Stage and block of "convS_blockK" + rest, S in 2..5, K in 1..26; NULL if the name is not one. */
static const char *parse_block(const char *name, int *stage, int *block) {
    int n = 0;
    if (sscanf(name, "conv%1d_block%2d%n", stage, block, &n) != 2 || n == 0) return NULL;
    if (*stage < 2 || *stage > 5 || *block < 1 || *block > MAX_BLOCK) return NULL;
    char again[FN_NAME_MAX];
    snprintf(again, sizeof again, "conv%d_block%d", *stage, *block);
    return strncmp(again, name, (size_t)n) == 0 && strlen(again) == (size_t)n ? name + n : NULL;
}

int fusenet__resnet_old_name(const char *current, char *old, size_t size) {
    for (size_t i = 0; i < N_FIXED; i++)
        if (strcmp(current, fixed_names[i].current) == 0) return snprintf(old, size, "%s", fixed_names[i].old) > 0;
    int stage, block;
    const char *rest = parse_block(current, &stage, &block);
    for (size_t i = 0; rest && i < N_BLOCK; i++)
        if (strcmp(rest, block_names[i].suffix) == 0)
            return snprintf(old, size, "%s%d%c_branch%s", block_names[i].prefix, stage, 'a' + block - 1,
                            block_names[i].branch) > 0;
    return 0;
}

int fusenet__resnet_current_name(const char *old, char *current, size_t size) {
    for (size_t i = 0; i < N_FIXED; i++)
        if (strcmp(old, fixed_names[i].old) == 0) return snprintf(current, size, "%s", fixed_names[i].current) > 0;
    for (size_t i = 0; i < N_BLOCK; i++) {
        size_t plen = strlen(block_names[i].prefix);
        if (strncmp(old, block_names[i].prefix, plen) != 0) continue;
        const char *p = old + plen;
        if (p[0] < '2' || p[0] > '5' || p[1] < 'a' || p[1] > 'z') continue;
        if (strncmp(p + 2, "_branch", 7) != 0 || strcmp(p + 9, block_names[i].branch) != 0) continue;
        return snprintf(current, size, "conv%c_block%d%s", p[0], p[1] - 'a' + 1, block_names[i].suffix) > 0;
    }
    return 0;
}

void fusenet__resnet_old_epsilon(fn_graph *g) {
    for (int i = 0; i < g->n; i++)
        if (g->nodes[i].op == FN_OP_BATCH_NORM) g->nodes[i].epsilon = FN_RESNET_OLD_BN_EPSILON;
}
