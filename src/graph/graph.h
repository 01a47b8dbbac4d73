/* graph.h - the layer graph: one node per Keras layer, named as Keras names it (private).
 *
 * Node i produces value i. Nodes are stored in Keras' model.layers order, which
 * is a topological order. Builders have a sticky error: once a call fails,
 * later calls return -1 and fusenet__graph_finish reports the first failure, so the
 * model definitions in models/ read as straight-line Keras code.
 */
#ifndef FN_GRAPH_H
#define FN_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "fusenet.h"

#define FN_NAME_MAX 64
#define FN_MAX_WEIGHTS 4
#define FN_MIN_INPUT 32

/* Op kinds. Everything the graph, the loader, the random-weights writer and the
 * summary know about an op is its row of fusenet__ops (op_table.c). */
typedef enum fn_op {
    FN_OP_INPUT,
    FN_OP_ZERO_PAD,
    FN_OP_CONV2D,
    FN_OP_BATCH_NORM,
    FN_OP_RELU, /* Keras Activation('relu') */
    FN_OP_MAX_POOL,
    FN_OP_GLOBAL_AVG_POOL,
    FN_OP_GLOBAL_MAX_POOL,
    FN_OP_ADD,
    FN_OP_FLATTEN,
    FN_OP_DENSE
} fn_op;
#define FN_OP_COUNT (FN_OP_DENSE + 1) /* keep: last op + 1 */

typedef enum fn_act { FN_ACT_NONE, FN_ACT_RELU, FN_ACT_SOFTMAX } fn_act;

typedef enum fn_padding { FN_PAD_VALID, FN_PAD_SAME } fn_padding;

typedef struct fn_node {
    fn_op op;
    char name[FN_NAME_MAX];
    int in[2]; /* producer node indices */
    int n_in;
    /* Conv2D / MaxPooling2D */
    int kh, kw, stride;
    fn_padding padding;
    int filters; /* Conv2D filters, Dense units */
    fn_act act;  /* Keras' activation= argument of Conv2D / Dense */
    /* ZeroPadding2D */
    int pad_t, pad_b, pad_l, pad_r;
    /* BatchNormalization */
    float epsilon;
    /* raw Keras weights (NULL until loaded): conv kernel (kh,kw,in,out) + bias;
     * BN gamma, beta, moving_mean, moving_variance; Dense kernel (in,out) + bias */
    float *w[FN_MAX_WEIGHTS];
} fn_node;

typedef struct fn_graph {
    fn_node *nodes;
    int n;
    size_t cap;
    fusenet_status status; /* sticky builder error */
    char message[FUSENET_ERROR_MESSAGE_SIZE];
} fn_graph;

/* Output shape of one node for a given input; flat = 1 for (C,) outputs. */
typedef struct fn_shape {
    int32_t h, w, c;
    int flat;
} fn_shape;

/* ---- the op table (op_table.c) ---- */

#define FN_MAX_WEIGHT_RANK 4

/* A dimension of a weight's Keras shape, resolved against the node and its input. */
typedef enum fn_dim {
    FN_DIM_KH,      /* kernel rows */
    FN_DIM_KW,      /* kernel columns */
    FN_DIM_IN_C,    /* channels of the input */
    FN_DIM_FAN_IN,  /* every value of the input: h*w*c, or c for a (C,) input */
    FN_DIM_FILTERS  /* Conv2D filters, Dense units */
} fn_dim;

/* How the output's height and width follow from the input's. */
typedef enum fn_out_hw {
    FN_HW_INPUT,  /* the net's input size (InputLayer) */
    FN_HW_SAME,   /* the input's */
    FN_HW_PAD,    /* the input's plus pad_t + pad_b, pad_l + pad_r */
    FN_HW_WINDOW, /* Keras' conv/pool arithmetic over kh, kw, stride, padding */
    FN_HW_FLAT    /* none: the output is a (C,) vector */
} fn_out_hw;

/* How the output's channels follow from the input's. */
typedef enum fn_out_c {
    FN_C_RGB,     /* 3 (InputLayer) */
    FN_C_IN,      /* the input's */
    FN_C_FILTERS, /* filters / units */
    FN_C_FAN_IN   /* every value of the input (Flatten) */
} fn_out_c;

/* How the random-weights writer draws a weight. */
typedef enum fn_init {
    FN_INIT_HE,     /* He-uniform over the fan-in (all dims but the last) */
    FN_INIT_UNIFORM /* uniform in [lo, hi] */
} fn_init;

typedef struct fn_weight_info {
    const char *role;   /* Keras-2 weight name: LAYER/ROLE:0 ("kernel", "bias", "gamma", ...) */
    const char *keras1; /* Keras-1 flat name: LAYER_KERAS1_1:0 ("W", "b", ...) */
    int rank;
    fn_dim dims[FN_MAX_WEIGHT_RANK]; /* Keras layout, e.g. (kh, kw, in, out) */
    fn_init init;
    float lo, hi;
} fn_weight_info;

typedef struct fn_op_info {
    const char *keras_class; /* Keras layer class, as model.summary() prints it */
    int n_in;                /* inputs; several must have equal shapes */
    int flat_in;             /* 1 if a (C,) input is accepted */
    fn_out_hw out_hw;
    fn_out_c out_c;
    int n_weights; /* in Keras' weight order; the parameter count is their total size */
    fn_weight_info weights[FN_MAX_WEIGHTS];
} fn_op_info;

extern const fn_op_info fusenet__ops[FN_OP_COUNT];

/* ---- building (sticky error) ---- */
int fusenet__input(fn_graph *g, const char *name);
int fusenet__zero_pad(fn_graph *g, int x, int pad, const char *name);
int fusenet__conv2d(fn_graph *g, int x, int filters, int k, int stride, fn_padding padding, fn_act act,
              const char *name);
int fusenet__batch_norm(fn_graph *g, int x, float epsilon, const char *name);
int fusenet__relu(fn_graph *g, int x, const char *name);
int fusenet__max_pool(fn_graph *g, int x, int k, int stride, const char *name);
int fusenet__global_pool(fn_graph *g, int x, int is_max, const char *name);
int fusenet__add(fn_graph *g, int a, int b, const char *name);
int fusenet__flatten(fn_graph *g, int x, const char *name);
int fusenet__dense(fn_graph *g, int x, int units, fn_act act, const char *name);
/* Reports the first builder failure, or FUSENET_OK. */
fusenet_status fusenet__graph_finish(fn_graph *g, fusenet_error *err);
void fusenet__graph_free(fn_graph *g);

/* ---- queries ---- */
int fusenet__graph_find(const fn_graph *g, const char *name); /* -1 if absent */
/* UNKNOWN_LAYER with the three closest names when absent. */
fusenet_status fusenet__graph_lookup(const fn_graph *g, const char *name, const char *model_name, int *index,
                               fusenet_error *err);
const char *fusenet__op_keras_type(const fn_node *node);
int fusenet__node_weight_count(const fn_node *node);
/* Keras shape of weight k of node i, given the shapes of its inputs; returns the rank. */
int fusenet__node_weight_dims(const fn_graph *g, const fn_shape *shapes, int i, int k,
                              int64_t dims[FN_MAX_WEIGHT_RANK]);
int64_t fusenet__node_params(const fn_graph *g, const fn_node *node, const fn_shape *shapes);

/* Shape inference for batch-free input in_h x in_w x 3 into shapes[g->n].
 * SHAPE if a layer's output would be empty (input too small). */
fusenet_status fusenet__graph_shapes(const fn_graph *g, int32_t in_h, int32_t in_w, fn_shape *shapes,
                               fusenet_error *err);

/* Keras 'same'/'valid' output size and 'same' leading pad along one axis. */
int32_t fusenet__conv_out(int32_t in, int k, int stride, fn_padding padding);
int32_t fusenet__same_pad_before(int32_t in, int k, int stride);

/* Marks live[i] = 1 for every node the given outputs depend on (themselves included). */
void fusenet__graph_live(const fn_graph *g, const int *outputs, int n_outputs, unsigned char *live);

#endif
