/* graph.c - layer graph builder, lookup, shape inference and pruning. */
#include "graph.h"

#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"

static int fail(fn_graph *g, fusenet_status status, const char *fmt, const char *a) {
    if (g->status == FUSENET_OK) {
        g->status = status;
        snprintf(g->message, sizeof g->message, fmt, a);
    }
    return -1;
}

static fn_node *push(fn_graph *g, fn_op op, const char *name, int a, int b) {
    if (g->status != FUSENET_OK) return NULL;
    int n_in = (a >= 0) + (b >= 0);
    if (n_in != fusenet__ops[op].n_in || a >= g->n || b >= g->n) {
        fail(g, FUSENET_ERR_INVALID_ARG, "graph: layer %s has an invalid input", name);
        return NULL;
    }
    if (strlen(name) >= FN_NAME_MAX) {
        fail(g, FUSENET_ERR_INVALID_ARG, "graph: layer name %.64s... too long", name);
        return NULL;
    }
    if (fusenet__graph_find(g, name) >= 0) {
        fail(g, FUSENET_ERR_INVALID_ARG, "graph: duplicate layer name %s", name);
        return NULL;
    }
    fn_node *nodes = fusenet__grow(g->nodes, (size_t)g->n, &g->cap, sizeof *nodes, 64);
    if (!nodes) {
        fail(g, FUSENET_ERR_NOMEM, "graph: out of memory adding layer %s", name);
        return NULL;
    }
    g->nodes = nodes;
    fn_node *node = &g->nodes[g->n++];
    memset(node, 0, sizeof *node);
    node->op = op;
    snprintf(node->name, sizeof node->name, "%s", name);
    node->in[0] = a;
    node->in[1] = b;
    node->n_in = n_in;
    return node;
}

int fusenet__input(fn_graph *g, const char *name) { return push(g, FN_OP_INPUT, name, -1, -1) ? g->n - 1 : -1; }

int fusenet__zero_pad(fn_graph *g, int x, int pad, const char *name) {
    fn_node *n = push(g, FN_OP_ZERO_PAD, name, x, -1);
    if (!n) return -1;
    n->pad_t = n->pad_b = n->pad_l = n->pad_r = pad;
    return g->n - 1;
}

int fusenet__conv2d(fn_graph *g, int x, int filters, int k, int stride, fn_padding padding, fn_act act,
              const char *name) {
    fn_node *n = push(g, FN_OP_CONV2D, name, x, -1);
    if (!n) return -1;
    n->filters = filters;
    n->kh = n->kw = k;
    n->stride = stride;
    n->padding = padding;
    n->act = act;
    return g->n - 1;
}

int fusenet__batch_norm(fn_graph *g, int x, float epsilon, const char *name) {
    fn_node *n = push(g, FN_OP_BATCH_NORM, name, x, -1);
    if (!n) return -1;
    n->epsilon = epsilon;
    return g->n - 1;
}

int fusenet__relu(fn_graph *g, int x, const char *name) { return push(g, FN_OP_RELU, name, x, -1) ? g->n - 1 : -1; }

int fusenet__max_pool(fn_graph *g, int x, int k, int stride, const char *name) {
    fn_node *n = push(g, FN_OP_MAX_POOL, name, x, -1);
    if (!n) return -1;
    n->kh = n->kw = k;
    n->stride = stride;
    n->padding = FN_PAD_VALID;
    return g->n - 1;
}

int fusenet__global_pool(fn_graph *g, int x, int is_max, const char *name) {
    return push(g, is_max ? FN_OP_GLOBAL_MAX_POOL : FN_OP_GLOBAL_AVG_POOL, name, x, -1) ? g->n - 1 : -1;
}

int fusenet__add(fn_graph *g, int a, int b, const char *name) { return push(g, FN_OP_ADD, name, a, b) ? g->n - 1 : -1; }

int fusenet__flatten(fn_graph *g, int x, const char *name) { return push(g, FN_OP_FLATTEN, name, x, -1) ? g->n - 1 : -1; }

int fusenet__dense(fn_graph *g, int x, int units, fn_act act, const char *name) {
    fn_node *n = push(g, FN_OP_DENSE, name, x, -1);
    if (!n) return -1;
    n->filters = units;
    n->act = act;
    return g->n - 1;
}

fusenet_status fusenet__graph_finish(fn_graph *g, fusenet_error *err) {
    if (g->status != FUSENET_OK) return fusenet__error(err, g->status, "%s", g->message);
    return fusenet__ok(err);
}

void fusenet__graph_free(fn_graph *g) {
    if (!g) return;
    for (int i = 0; i < g->n; i++)
        for (int k = 0; k < FN_MAX_WEIGHTS; k++) fusenet__free(g->nodes[i].w[k]);
    fusenet__free(g->nodes);
    memset(g, 0, sizeof *g);
}

int fusenet__graph_find(const fn_graph *g, const char *name) {
    for (int i = 0; i < g->n; i++)
        if (strcmp(g->nodes[i].name, name) == 0) return i;
    return -1;
}

fusenet_status fusenet__graph_lookup(const fn_graph *g, const char *name, const char *model_name, int *index,
                               fusenet_error *err) {
    int i = fusenet__graph_find(g, name);
    if (i >= 0) {
        *index = i;
        return fusenet__ok(err);
    }
    char msg[FUSENET_ERROR_MESSAGE_SIZE];
    snprintf(msg, sizeof msg, "%s has no layer named '%.80s'", model_name, name);
    const char *names[512];
    size_t n = 0;
    for (int k = 0; k < g->n && n < 512; k++) names[n++] = g->nodes[k].name;
    fusenet__suggest(msg, sizeof msg, name, names, n);
    return fusenet__error(err, FUSENET_ERR_UNKNOWN_LAYER, "%s", msg);
}

const char *fusenet__op_keras_type(const fn_node *node) { return fusenet__ops[node->op].keras_class; }

int fusenet__node_weight_count(const fn_node *node) { return fusenet__ops[node->op].n_weights; }

static int64_t dim_value(const fn_node *n, const fn_shape *in, fn_dim d) {
    switch (d) {
    case FN_DIM_KH: return n->kh;
    case FN_DIM_KW: return n->kw;
    case FN_DIM_IN_C: return in->c;
    case FN_DIM_FAN_IN: return in->flat ? in->c : (int64_t)in->h * in->w * in->c;
    case FN_DIM_FILTERS: return n->filters;
    }
    return 0;
}

int fusenet__node_weight_dims(const fn_graph *g, const fn_shape *shapes, int i, int k,
                              int64_t dims[FN_MAX_WEIGHT_RANK]) {
    const fn_node *n = &g->nodes[i];
    const fn_weight_info *w = &fusenet__ops[n->op].weights[k];
    const fn_shape *in = n->n_in ? &shapes[n->in[0]] : NULL;
    for (int d = 0; d < w->rank; d++) dims[d] = dim_value(n, in, w->dims[d]);
    return w->rank;
}

int64_t fusenet__node_params(const fn_graph *g, const fn_node *node, const fn_shape *shapes) {
    int64_t total = 0;
    for (int k = 0; k < fusenet__node_weight_count(node); k++) {
        int64_t dims[FN_MAX_WEIGHT_RANK], size = 1;
        int rank = fusenet__node_weight_dims(g, shapes, (int)(node - g->nodes), k, dims);
        for (int d = 0; d < rank; d++) size *= dims[d];
        total += size;
    }
    return total;
}

int32_t fusenet__conv_out(int32_t in, int k, int stride, fn_padding padding) {
    if (padding == FN_PAD_SAME) return (in + stride - 1) / stride;
    if (in < k) return 0;
    return (in - k) / stride + 1;
}

int32_t fusenet__same_pad_before(int32_t in, int k, int stride) {
    int32_t out = (in + stride - 1) / stride;
    int32_t total = (out - 1) * stride + k - in;
    if (total < 0) total = 0;
    return total / 2;
}

fusenet_status fusenet__graph_shapes(const fn_graph *g, int32_t in_h, int32_t in_w, fn_shape *shapes,
                               fusenet_error *err) {
    for (int i = 0; i < g->n; i++) {
        const fn_node *n = &g->nodes[i];
        const fn_op_info *op = &fusenet__ops[n->op];
        const fn_shape *x = n->n_in ? &shapes[n->in[0]] : NULL;
        if (x && x->flat && !op->flat_in)
            return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "layer %s needs a spatial input", n->name);
        for (int j = 1; j < n->n_in; j++) {
            const fn_shape *y = &shapes[n->in[j]];
            if (x->h != y->h || x->w != y->w || x->c != y->c)
                return fusenet__error(err, FUSENET_ERR_SHAPE, "layer %s (%s) gets %dx%dx%d and %dx%dx%d", n->name,
                                      op->keras_class, x->h, x->w, x->c, y->h, y->w, y->c);
        }
        fn_shape s = {1, 1, 0, 0};
        switch (op->out_hw) {
        case FN_HW_INPUT: s.h = in_h, s.w = in_w; break;
        case FN_HW_SAME: s.h = x->h, s.w = x->w, s.flat = x->flat; break;
        case FN_HW_PAD: s.h = x->h + n->pad_t + n->pad_b, s.w = x->w + n->pad_l + n->pad_r; break;
        case FN_HW_WINDOW:
            s.h = fusenet__conv_out(x->h, n->kh, n->stride, n->padding);
            s.w = fusenet__conv_out(x->w, n->kw, n->stride, n->padding);
            break;
        case FN_HW_FLAT: s.flat = 1; break;
        }
        switch (op->out_c) {
        case FN_C_RGB: s.c = 3; break;
        case FN_C_IN: s.c = x->c; break;
        case FN_C_FILTERS: s.c = n->filters; break;
        case FN_C_FAN_IN: s.c = x->h * x->w * x->c; break;
        }
        if (s.h <= 0 || s.w <= 0)
            return fusenet__error(err, FUSENET_ERR_SHAPE,
                            "input %dx%d is too small: layer %s would have an empty output", in_h, in_w, n->name);
        shapes[i] = s;
    }
    return fusenet__ok(err);
}

void fusenet__graph_live(const fn_graph *g, const int *outputs, int n_outputs, unsigned char *live) {
    memset(live, 0, (size_t)g->n);
    for (int k = 0; k < n_outputs; k++) live[outputs[k]] = 1;
    for (int i = g->n - 1; i >= 0; i--)
        if (live[i])
            for (int j = 0; j < g->nodes[i].n_in; j++) live[g->nodes[i].in[j]] = 1;
}
