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
    int n, cap;
    fusenet_status status; /* sticky builder error */
    char message[FUSENET_ERROR_MESSAGE_SIZE];
} fn_graph;

/* Output shape of one node for a given input; flat = 1 for (C,) outputs. */
typedef struct fn_shape {
    int32_t h, w, c;
    int flat;
} fn_shape;

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
