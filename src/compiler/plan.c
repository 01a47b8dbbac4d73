/* plan.c - the compiler's decisions over one model's graph: pure, no oneDNN. */
#include "plan.h"

#include <math.h>
#include <string.h>

#include "alloc.h"
#include "error.h"

const char *fusenet__role_name(fn_role role) {
    static const char *const names[] = {"dead", "input", "view", "head", "pad", "bn", "sum", "relu"};
    return (unsigned)role < sizeof names / sizeof *names ? names[role] : "?";
}

/* Planning state: the plan plus which nodes are live and already placed. */
typedef struct planner {
    const fn_graph *g;
    fn_plan *p;
    unsigned char *live;
    unsigned char *placed; /* input, view, or member of a chain planned so far */
} planner;

/* The single live consumer of node i, or -1. */
static int only_consumer(const planner *q, int i) {
    if (q->p->nodes[i].consumers != 1) return -1;
    for (int j = i + 1; j < q->g->n; j++) {
        if (!q->live[j]) continue;
        const fn_node *n = &q->g->nodes[j];
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] == i) return j;
    }
    return -1;
}

/* A ZeroPadding2D that the consumer can take as its own padding. */
static int absorbable_pad(const planner *q, int pad, int consumer) {
    const fn_node *p = &q->g->nodes[pad];
    if (p->op != FN_OP_ZERO_PAD || q->p->nodes[pad].tapped || only_consumer(q, pad) != consumer) return 0;
    if (q->g->nodes[consumer].op == FN_OP_CONV2D) return 1;
    if (q->g->nodes[consumer].op != FN_OP_MAX_POOL) return 0;
    /* oneDNN's max pooling ignores padded cells; Keras pools over zeros. Same
     * result only if the input is >= 0, i.e. comes out of a ReLU. */
    const fn_node *src = &q->g->nodes[p->in[0]];
    return src->op == FN_OP_RELU || (src->op == FN_OP_CONV2D && src->act == FN_ACT_RELU);
}

/* A window op's padding: its own 'same' padding plus an absorbed ZeroPadding2D.
 * Sets ch->src (the node whose value feeds the op) and ch->pad. */
static void window_input(const planner *q, fn_chain *ch) {
    const fn_node *n = &q->g->nodes[ch->head];
    int src = n->in[0];
    int64_t extra_t = 0, extra_l = 0;
    if (absorbable_pad(q, src, ch->head)) {
        ch->pad = src;
        extra_t = q->g->nodes[src].pad_t;
        extra_l = q->g->nodes[src].pad_l;
        src = q->g->nodes[src].in[0];
    }
    ch->src = src;
    const fn_shape *in = &q->p->shapes[src], *out = &q->p->shapes[ch->head];
    int64_t same_t = 0, same_l = 0;
    if (n->padding == FN_PAD_SAME) {
        /* 'same' on the (possibly padded) input the Keras layer sees */
        same_t = fusenet__same_pad_before((int32_t)(in->h + extra_t * 2), n->kh, n->stride);
        same_l = fusenet__same_pad_before((int32_t)(in->w + extra_l * 2), n->kw, n->stride);
    }
    ch->pad_l[0] = extra_t + same_t;
    ch->pad_l[1] = extra_l + same_l;
    ch->pad_r[0] = (int64_t)(out->h - 1) * n->stride + n->kh - in->h - ch->pad_l[0];
    ch->pad_r[1] = (int64_t)(out->w - 1) * n->stride + n->kw - in->w - ch->pad_l[1];
    /* A negative right pad means Keras never reads the last rows/columns; any
     * value up to stride-1 more gives the same output size, so use 0. */
    for (int k = 0; k < 2; k++)
        if (ch->pad_r[k] < 0 && ch->pad_r[k] + n->stride - 1 >= 0) ch->pad_r[k] = 0;
}

/* The node after `end` that a conv chain can take in, if it has op `op`:
 * end untapped, read by that node alone, no activation in between. */
static int next_fold(const planner *q, const fn_chain *ch, fn_op op) {
    if (ch->relu_post || q->p->nodes[ch->end].tapped) return -1;
    int next = only_consumer(q, ch->end);
    return next >= 0 && q->g->nodes[next].op == op ? next : -1;
}

/* Can the residual Add `add` (reading the chain's end and `other`) become the
 * chain's sum post-op, writing into other's buffer? Only if that buffer holds
 * a spatial value computed by a chain planned before this one (an earlier
 * head), the conv does not read it itself, and no later layer reads it. */
static int sum_fits(const planner *q, const fn_chain *ch, int add, int other) {
    const fn_plan *p = q->p;
    if (!q->placed[other] || p->nodes[other].chain < 0 || p->chains[p->nodes[other].chain].end != other) return 0;
    if (p->shapes[other].flat || ch->src == other) return 0;
    for (int j = other + 1; j < q->g->n; j++) {
        if (!q->live[j] || j == add || j < ch->head) continue;
        for (int k = 0; k < q->g->nodes[j].n_in; k++)
            if (q->g->nodes[j].in[k] == other) return 0;
    }
    return 1;
}

static void take(planner *q, int node, fn_role role, int chain) {
    q->p->nodes[node].role = role;
    q->p->nodes[node].chain = chain;
    q->placed[node] = 1;
}

/* Plans the chain headed by node i (a layer computed by a step of its own). */
static void plan_chain(planner *q, int i) {
    const fn_node *n = &q->g->nodes[i];
    int idx = q->p->n_chains++;
    fn_chain *ch = &q->p->chains[idx];
    memset(ch, 0, sizeof *ch);
    ch->head = ch->end = i;
    ch->src = n->n_in ? n->in[0] : -1;
    ch->pad = ch->bn = ch->sum = ch->relu = ch->shortcut = -1;
    take(q, i, FN_ROLE_HEAD, idx);
    if (n->op == FN_OP_CONV2D || n->op == FN_OP_MAX_POOL) window_input(q, ch);
    if (ch->pad >= 0) take(q, ch->pad, FN_ROLE_PAD, idx);
    if (n->op != FN_OP_CONV2D) return;
    ch->relu_post = n->act == FN_ACT_RELU;
    int next = next_fold(q, ch, FN_OP_BATCH_NORM);
    if (next >= 0) {
        ch->bn = ch->end = next;
        take(q, next, FN_ROLE_BN, idx);
    }
    next = next_fold(q, ch, FN_OP_ADD);
    if (next >= 0) {
        const fn_node *a = &q->g->nodes[next];
        int other = a->in[0] == ch->end ? a->in[1] : a->in[0];
        if (sum_fits(q, ch, next, other)) {
            ch->sum = ch->end = next;
            ch->shortcut = other;
            take(q, next, FN_ROLE_SUM, idx);
        }
    }
    next = next_fold(q, ch, FN_OP_RELU);
    if (next >= 0) {
        ch->relu = ch->end = next;
        ch->relu_post = 1;
        take(q, next, FN_ROLE_RELU, idx);
    }
}

void fusenet__plan_free(fn_plan *plan) {
    fusenet__free(plan->shapes);
    fusenet__free(plan->nodes);
    fusenet__free(plan->chains);
    memset(plan, 0, sizeof *plan);
}

fusenet_status fusenet__plan(const fn_graph *g, int32_t in_h, int32_t in_w, const int *taps, int n_taps,
                             fn_plan *plan, fusenet_error *err) {
    memset(plan, 0, sizeof *plan);
    int n = g->n;
    planner q = {g, plan, fusenet__calloc((size_t)n, 1), fusenet__calloc((size_t)n, 1)};
    plan->n = n;
    plan->shapes = fusenet__calloc((size_t)n, sizeof *plan->shapes);
    plan->nodes = fusenet__calloc((size_t)n, sizeof *plan->nodes);
    plan->chains = fusenet__calloc((size_t)n, sizeof *plan->chains);
    fusenet_status st = FUSENET_OK;
    if (!q.live || !q.placed || !plan->shapes || !plan->nodes || !plan->chains) {
        st = fusenet__error(err, FUSENET_ERR_NOMEM, "out of memory planning the net");
        goto done;
    }
    st = fusenet__graph_shapes(g, in_h, in_w, plan->shapes, err);
    if (st) goto done;
    fusenet__graph_live(g, taps, n_taps, q.live);
    for (int k = 0; k < n_taps; k++) plan->nodes[taps[k]].tapped = 1;
    for (int i = 0; i < n; i++) {
        plan->nodes[i].chain = -1;
        if (!q.live[i]) continue;
        for (int k = 0; k < g->nodes[i].n_in; k++) plan->nodes[g->nodes[i].in[k]].consumers++;
    }
    for (int i = 0; i < n; i++) {
        if (!q.live[i] || q.placed[i]) continue;
        const fn_node *node = &g->nodes[i];
        if (node->op == FN_OP_INPUT) {
            take(&q, i, FN_ROLE_INPUT, -1);
        } else if (node->op == FN_OP_FLATTEN) {
            take(&q, i, FN_ROLE_VIEW, -1);
        } else if (node->op == FN_OP_ZERO_PAD && only_consumer(&q, i) >= 0 &&
                   absorbable_pad(&q, i, only_consumer(&q, i))) {
            continue; /* placed by its consumer's chain */
        } else {
            plan_chain(&q, i);
        }
    }
done:
    fusenet__free(q.live);
    fusenet__free(q.placed);
    if (st) fusenet__plan_free(plan);
    return st;
}

void fusenet__fold_batch_norm(float *w, float *b, size_t kernel_elems, int filters, const float *gamma,
                              const float *beta, const float *mean, const float *var, float epsilon) {
    double a[filters > 0 ? filters : 1];
    for (int o = 0; o < filters; o++) {
        a[o] = (double)gamma[o] / sqrt((double)var[o] + (double)epsilon);
        b[o] = (float)(((double)b[o] - (double)mean[o]) * a[o] + (double)beta[o]);
    }
    for (size_t k = 0; k < kernel_elems; k += (size_t)filters) /* one pass, output channels innermost */
        for (int o = 0; o < filters; o++) w[k + (size_t)o] = (float)((double)w[k + (size_t)o] * a[o]);
}
