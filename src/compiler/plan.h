/* plan.h - what the compiler will do with each layer, decided before any
 * oneDNN call (private).
 *
 * fusenet__plan reads one model's graph, the input size and the tapped nodes,
 * and decides for every node: not needed (dead), the net's input, a view
 * (Flatten), the op of a step of its own (a chain's head), or folded into the
 * step of another node:
 *  - a ZeroPadding2D becomes the padding of the Conv2D / MaxPooling2D reading
 *    it (max pooling only if its input is >= 0: oneDNN pools over real cells
 *    only, Keras over the zeros too);
 *  - a BatchNormalization is folded into the weights of the Conv2D before it
 *    (not across an activation);
 *  - a residual Add becomes a sum post-op of the conv computing one of its
 *    inputs, written into the other input's buffer, if that buffer is ready
 *    (computed by an earlier step) and read by nobody after;
 *  - an Activation('relu') becomes the conv's ReLU post-op.
 * Nothing folds across a tapped value, or into a value read by more than one
 * layer. The plan is plain data: tests inspect it without oneDNN, and the
 * emitter (compile.c) only reads it. Steps are emitted in chain order, which
 * is the order of the chains' head nodes in the graph.
 */
#ifndef FN_PLAN_H
#define FN_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "fusenet.h"
#include "graph.h"

typedef enum fn_role {
    FN_ROLE_DEAD,  /* no tap depends on it */
    FN_ROLE_INPUT, /* the net's input: the caller's buffer */
    FN_ROLE_VIEW,  /* Flatten: its input's value read in (h, w, c) order; no compute step */
    FN_ROLE_HEAD,  /* the op its chain's step runs */
    FN_ROLE_PAD,   /* ZeroPadding2D taken as the padding of the window op after it */
    FN_ROLE_BN,    /* BatchNormalization folded into the conv's weights */
    FN_ROLE_SUM,   /* residual Add: the conv's sum post-op */
    FN_ROLE_RELU   /* Activation('relu'): the conv's ReLU post-op */
} fn_role;

/* "dead", "input", "view", "head", "pad", "bn", "sum", "relu". */
const char *fusenet__role_name(fn_role role);

typedef struct fn_plan_node {
    fn_role role;
    int chain;     /* index in plan->chains of the step computing it; -1: none (dead, input, view) */
    int tapped;    /* 1 if a tap names it */
    int consumers; /* live layers reading it */
} fn_plan_node;

/* One compute step: a head op and what is folded into it. */
typedef struct fn_chain {
    int head;                   /* the node whose op the step runs */
    int end;                    /* the node whose value the step produces */
    int src;                    /* the node whose value the op reads (past an absorbed padding) */
    int pad, bn, sum, relu;     /* folded nodes (roles PAD, BN, SUM, RELU), -1 if none */
    int shortcut;               /* with sum: the Add's other input; the step writes into its buffer */
    int relu_post;              /* 1: ReLU post-op (the conv's own activation or a folded Activation) */
    int64_t pad_l[2], pad_r[2]; /* window ops: padding before / after along (h, w) */
} fn_chain;

typedef struct fn_plan {
    int n;               /* graph nodes */
    fn_shape *shapes;    /* per node, for the plan's input size */
    fn_plan_node *nodes; /* per node */
    fn_chain *chains;    /* in emission order: increasing head */
    int n_chains;
} fn_plan;

/* Plans graph g for an in_h x in_w input and taps[0..n_taps) (node indices).
 * Statuses: SHAPE (input too small for a layer), NOMEM. On failure the plan
 * is empty (fusenet__plan_free is still safe). */
fusenet_status fusenet__plan(const fn_graph *g, int32_t in_h, int32_t in_w, const int *taps, int n_taps,
                             fn_plan *plan, fusenet_error *err);
void fusenet__plan_free(fn_plan *plan);

/* BatchNormalization folded into a conv: w' = w * a, b' = (b - mean) * a + beta,
 * a = gamma / sqrt(var + eps), per output channel o; the kernel is in Keras'
 * layout (kh, kw, in, out), so channel o is every filters-th weight from o.
 * In double, rounded once to float. w, b are updated in place. */
void fusenet__fold_batch_norm(float *w, float *b, size_t kernel_elems, int filters, const float *gamma,
                              const float *beta, const float *mean, const float *var, float epsilon);

#endif
