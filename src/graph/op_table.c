/* op_table.c - one row per op kind: its Keras class, inputs, output-shape rule
 * and weights (Keras names, shape rule, how random weights are drawn).
 *
 * graph.c reads it for shapes, parameter counts and weight shapes; model.c for
 * the loader (which datasets a layer has, in what shape) and the summary;
 * random_weights.c to write files in the official layout. Adding an op: a
 * fn_op value (graph.h), its row here, a builder (graph.c), its oneDNN
 * emission (compile.c) and a reference in tests/ref_ops.h (see ARCHITECTURE.md).
 */
#include "graph.h"

#define BIAS {"bias", "b", 1, {FN_DIM_FILTERS}, FN_INIT_UNIFORM, -0.05f, 0.05f}
#define PER_CHANNEL(role, keras1, lo, hi) {role, keras1, 1, {FN_DIM_IN_C}, FN_INIT_UNIFORM, lo, hi}

const fn_op_info fusenet__ops[FN_OP_COUNT] = {
    [FN_OP_INPUT] = {"InputLayer", 0, 0, FN_HW_INPUT, FN_C_RGB, 0, {{0}}},
    [FN_OP_ZERO_PAD] = {"ZeroPadding2D", 1, 0, FN_HW_PAD, FN_C_IN, 0, {{0}}},
    [FN_OP_CONV2D] = {"Conv2D", 1, 0, FN_HW_WINDOW, FN_C_FILTERS, 2,
                      {{"kernel", "W", 4, {FN_DIM_KH, FN_DIM_KW, FN_DIM_IN_C, FN_DIM_FILTERS}, FN_INIT_HE, 0, 0},
                       BIAS}},
    /* Keras' BatchNormalization weights; the Keras-1 names are those of Keras 1's BatchNormalization. */
    [FN_OP_BATCH_NORM] = {"BatchNormalization", 1, 0, FN_HW_SAME, FN_C_IN, 4,
                          {PER_CHANNEL("gamma", "gamma", 0.8f, 1.2f), PER_CHANNEL("beta", "beta", -0.1f, 0.1f),
                           PER_CHANNEL("moving_mean", "running_mean", -0.1f, 0.1f),
                           PER_CHANNEL("moving_variance", "running_std", 0.5f, 1.5f)}},
    [FN_OP_RELU] = {"Activation", 1, 0, FN_HW_SAME, FN_C_IN, 0, {{0}}},
    [FN_OP_MAX_POOL] = {"MaxPooling2D", 1, 0, FN_HW_WINDOW, FN_C_IN, 0, {{0}}},
    [FN_OP_GLOBAL_AVG_POOL] = {"GlobalAveragePooling2D", 1, 0, FN_HW_FLAT, FN_C_IN, 0, {{0}}},
    [FN_OP_GLOBAL_MAX_POOL] = {"GlobalMaxPooling2D", 1, 0, FN_HW_FLAT, FN_C_IN, 0, {{0}}},
    [FN_OP_ADD] = {"Add", 2, 0, FN_HW_SAME, FN_C_IN, 0, {{0}}},
    [FN_OP_FLATTEN] = {"Flatten", 1, 0, FN_HW_FLAT, FN_C_FAN_IN, 0, {{0}}},
    [FN_OP_DENSE] = {"Dense", 1, 1, FN_HW_FLAT, FN_C_FILTERS, 2,
                     {{"kernel", "W", 2, {FN_DIM_FAN_IN, FN_DIM_FILTERS}, FN_INIT_HE, 0, 0}, BIAS}},
};
