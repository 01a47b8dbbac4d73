/* compile.c - emission: from a model's plan (plan.h) to the net's steps.
 * Creates every oneDNN primitive once, folds BatchNorm weights and reorders
 * weights once, then hands the values to the memory plan (memplan.h). Every
 * decision about what folds into what is the plan's; this file only reads it. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "model.h"
#include "net.h"
#include "ops.h"
#include "plan.h"

#define FN_MAX_INPUT_SIDE 16384
#define FN_MAX_BATCH 65536
#define FN_MAX_NET_BYTES ((size_t)16 << 30)

/* Where a node's output lives once computed. */
typedef struct node_state {
    int value; /* -1: not materialised (folded into another step, or not yet emitted) */
    dnnl_memory_desc_t md;
} node_state;

typedef struct ctx {
    fusenet_net *net;
    const fusenet_model *model;
    const fn_graph *g;
    fn_plan plan;
    const fn_shape *shapes; /* = plan.shapes */
    node_state *ns;
    int tap_slot[FN_MAX_TAPS];
    int tap_node[FN_MAX_TAPS];
    int n_model_taps;
    int input_value;
    int model_index; /* of c->model among the net's models, in tap order */
    int batch;
    fusenet_mode mode;
    fusenet_model *owned; /* c->model when it was handed over to the build: its raw weights are released once uploaded */
    fusenet_error *err;
} ctx;

/* ---- values and steps ---- */

static int add_value(fusenet_net *net, fn_value_kind kind, size_t size, fusenet_error *err) {
    if (net->n_values == net->cap_values) {
        int cap = net->cap_values ? 2 * net->cap_values : 64;
        fn_value *v = fusenet__realloc(net->values, (size_t)cap * sizeof *v);
        if (!v) {
            fusenet__error(err, FUSENET_ERR_NOMEM, "out of memory building the net");
            return -1;
        }
        net->values = v;
        net->cap_values = cap;
    }
    fn_value *v = &net->values[net->n_values];
    memset(v, 0, sizeof *v);
    v->kind = kind;
    v->size = (size + 63) & ~(size_t)63;
    v->first = v->last = -1;
    if (kind == FN_VALUE_OWNED) {
        v->own = fusenet__aligned_alloc(v->size);
        if (!v->own) {
            fusenet__error(err, FUSENET_ERR_NOMEM, "out of memory allocating %zu bytes for the net", v->size);
            return -1;
        }
        memset(v->own, 0, v->size);
    }
    return net->n_values++;
}

const char *fusenet__step_kind_name(fn_step_kind kind) {
    static const char *const names[] = {"compute", "reorder", "tap", "resize", "concat"};
    return (unsigned)kind < sizeof names / sizeof *names ? names[kind] : "?";
}

/* A new step of `kind` producing node's value (node -1: the fuse head), with
 * room for n_args arguments plus a scratchpad. */
static fn_step *add_step(ctx *c, fn_step_kind kind, int node, int n_args) {
    fusenet_net *net = c->net;
    if (net->n_steps == net->cap_steps) {
        int cap = net->cap_steps ? 2 * net->cap_steps : 64;
        fn_step *s = fusenet__realloc(net->steps, (size_t)cap * sizeof *s);
        if (!s) {
            fusenet__error(c->err, FUSENET_ERR_NOMEM, "out of memory building the net");
            return NULL;
        }
        net->steps = s;
        net->cap_steps = cap;
    }
    fn_step *s = &net->steps[net->n_steps];
    memset(s, 0, sizeof *s);
    s->cap_args = n_args + 1;
    s->args = fusenet__calloc((size_t)s->cap_args, sizeof *s->args);
    s->exec = fusenet__calloc((size_t)s->cap_args, sizeof *s->exec);
    net->n_steps++; /* freed with the net from here on */
    if (!s->args || !s->exec) {
        fusenet__error(c->err, FUSENET_ERR_NOMEM, "out of memory building the net");
        return NULL;
    }
    s->kind = kind;
    s->model = node < 0 ? -1 : c->model_index;
    s->node = s->first = node;
    s->tap = -1;
    snprintf(s->layer, sizeof s->layer, "%s", node < 0 ? fusenet__step_kind_name(kind) : c->g->nodes[node].name);
    s->zero_value = -1;
    return s;
}

/* Appends an argument; one past the room reserved by add_step is counted but
 * not written, and check_args refuses the step. */
static void step_arg(fn_step *s, int kind, int value, const dnnl_memory_desc_t *md) {
    if (s->nargs < s->cap_args) {
        s->args[s->nargs].kind = kind;
        s->args[s->nargs].value = value;
        s->args[s->nargs].md = *md;
    }
    s->nargs++;
}

static fusenet_status check_args(ctx *c, const fn_step *s) {
    if (s->nargs <= s->cap_args) return FUSENET_OK;
    return fusenet__error(c->err, FUSENET_ERR_BACKEND, "layer %s: step has %d arguments, room for %d", s->layer,
                          s->nargs, s->cap_args);
}

/* Error path once a primitive descriptor exists: releases it and returns the
 * status already set (a failed value or step allocation). */
static fusenet_status drop_pd(ctx *c, dnnl_primitive_desc_t pd) {
    dnnl_primitive_desc_destroy(pd);
    return c->err ? c->err->status : FUSENET_ERR_NOMEM;
}

/* Turns a primitive descriptor into the step's primitive; accounts its scratchpad. */
static fusenet_status finish_step(ctx *c, fn_step *s, dnnl_primitive_desc_t pd) {
    const dnnl_memory_desc_t *sp = fusenet__pd_md(pd, dnnl_query_scratchpad_md, 0);
    size_t sp_size = sp ? dnnl_memory_desc_get_size(sp) : 0;
    if (sp_size > c->net->scratch_size) c->net->scratch_size = sp_size;
    if (sp_size) {
        dnnl_memory_desc_t md = *sp;
        step_arg(s, DNNL_ARG_SCRATCHPAD, c->net->scratch_value, &md);
    }
    snprintf(s->impl, sizeof s->impl, "%s", fusenet__pd_impl(pd));
    fusenet_status bad = check_args(c, s);
    if (bad) {
        dnnl_primitive_desc_destroy(pd);
        return bad;
    }
    dnnl_status_t st = dnnl_primitive_create(&s->prim, pd);
    dnnl_primitive_desc_destroy(pd);
    if (st != dnnl_success) return fusenet__dnnl_error(c->err, st, s->layer, "primitive creation");
    return FUSENET_OK;
}

/* A new arena value for md. */
static int arena_value(ctx *c, const dnnl_memory_desc_t *md) {
    return add_value(c->net, FN_VALUE_ARENA, dnnl_memory_desc_get_size(md), c->err);
}

/* The value of node i in layout want: the node's own value, or a reorder of it. */
static fusenet_status value_as(ctx *c, int i, const dnnl_memory_desc_t *want, int *value) {
    const char *layer = c->g->nodes[i].name;
    node_state *n = &c->ns[i];
    if (dnnl_memory_desc_equal(&n->md, want)) {
        *value = n->value;
        return FUSENET_OK;
    }
    dnnl_primitive_desc_t pd;
    fusenet_status st = fusenet__op_reorder(c->net->eng, &n->md, want, layer, &pd, c->err);
    if (st) return st;
    int v = arena_value(c, want);
    fn_step *s = v < 0 ? NULL : add_step(c, FN_STEP_REORDER, i, 2);
    if (!s) return drop_pd(c, pd);
    step_arg(s, DNNL_ARG_FROM, n->value, &n->md);
    step_arg(s, DNNL_ARG_TO, v, want);
    *value = v;
    return finish_step(c, s, pd);
}

/* Copies host floats into a net-owned buffer laid out as `user`, reordered to `want`.
 * A net never computes with NaN or Inf weights (from a model loaded with
 * allow_nonfinite, or BatchNorm folding that overflowed): VALUE. */
static fusenet_status upload(ctx *c, const float *host, const dnnl_memory_desc_t *user, const dnnl_memory_desc_t *want,
                             const char *layer, int *value) {
    size_t count = dnnl_memory_desc_get_size(user) / sizeof *host;
    for (size_t k = 0; k < count; k++)
        if (!isfinite(host[k]))
            return fusenet__error(c->err, FUSENET_ERR_VALUE,
                                  "layer %s: a weight is %s (flat index %zu): a net is built only from finite weights",
                                  layer, fusenet__nonfinite_name(host[k]), k);
    int v = add_value(c->net, FN_VALUE_OWNED, dnnl_memory_desc_get_size(want), c->err);
    if (v < 0) return c->err ? c->err->status : FUSENET_ERR_NOMEM;
    *value = v;
    c->net->weights_bytes += c->net->values[v].size;
    if (dnnl_memory_desc_equal(user, want)) {
        memcpy(c->net->values[v].own, host, dnnl_memory_desc_get_size(user));
        return FUSENET_OK;
    }
    dnnl_primitive_desc_t pd;
    fusenet_status st = fusenet__op_reorder_once(c->net->eng, user, want, layer, &pd, c->err);
    if (st) return st;
    dnnl_memory_t src = NULL, dst = NULL;
    dnnl_primitive_t prim = NULL;
    dnnl_status_t s = dnnl_memory_create(&src, user, c->net->eng, (void *)host);
    if (s == dnnl_success) s = dnnl_memory_create(&dst, want, c->net->eng, c->net->values[v].own);
    if (s == dnnl_success) s = dnnl_primitive_create(&prim, pd);
    if (s == dnnl_success) {
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, dst}};
        s = dnnl_primitive_execute(prim, c->net->stream, 2, args);
        if (s == dnnl_success) s = dnnl_stream_wait(c->net->stream);
    }
    dnnl_primitive_destroy(prim);
    dnnl_memory_destroy(src);
    dnnl_memory_destroy(dst);
    dnnl_primitive_desc_destroy(pd);
    if (s != dnnl_success) return fusenet__dnnl_error(c->err, s, layer, "weights reorder");
    return FUSENET_OK;
}

/* BatchNorm divides by sqrt(moving_variance + epsilon): its scale
 * gamma / sqrt(var + eps) must be finite (a variance of -epsilon or less
 * gives Inf or NaN, which a fused ReLU would turn into plausible numbers). */
static fusenet_status check_bn_scale(ctx *c, const fn_node *bn, int channels) {
    for (int o = 0; o < channels; o++) {
        double var = (double)bn->w[3][o], a = (double)bn->w[0][o] / sqrt(var + (double)bn->epsilon);
        if (!isfinite((float)a))
            return fusenet__error(c->err, FUSENET_ERR_VALUE,
                                  "layer %s: gamma / sqrt(moving_variance + epsilon) is not finite at channel %d "
                                  "(moving_variance %g, epsilon %g)",
                                  bn->name, o, var, (double)bn->epsilon);
    }
    return FUSENET_OK;
}

static fusenet_status upload_vector(ctx *c, const float *host, int64_t count, const char *layer, int *value) {
    dnnl_memory_desc_t md;
    dnnl_dims_t dims = {count};
    dnnl_memory_desc_init_by_tag(&md, 1, dims, dnnl_f32, dnnl_x);
    return upload(c, host, &md, &md, layer, value);
}

/* Of a model handed over to the build, the raw Keras weights of node i are
 * released once the net holds its own (reordered) copy, so a one-shot build
 * never holds both. */
static void release_weights(ctx *c, int i) {
    if (!c->owned) return;
    fn_node *n = &c->owned->g.nodes[i];
    for (int k = 0; k < FN_MAX_WEIGHTS; k++) {
        fusenet__free(n->w[k]);
        n->w[k] = NULL;
    }
    c->owned->loaded[i] = 0;
}

/* ---- taps ---- */

static void tap_md(const fn_tap_out *t, int flat, dnnl_memory_desc_t *md) {
    if (flat) {
        dnnl_dims_t dims = {t->n, t->c};
        dnnl_memory_desc_init_by_tag(md, 2, dims, dnnl_f32, dnnl_nc);
    } else {
        fusenet__md4(md, t->n, t->c, t->h, t->w, dnnl_nhwc);
    }
}

/* After node i is materialised: copy it to each tap buffer that asked for it. */
static fusenet_status emit_taps(ctx *c, int i) {
    if (!c->plan.nodes[i].tapped) return FUSENET_OK;
    for (int k = 0; k < c->n_model_taps; k++) {
        if (c->tap_node[k] != i) continue;
        fn_tap_out *t = &c->net->taps[c->tap_slot[k]];
        const fn_shape *s = &c->shapes[i];
        *t = (fn_tap_out){-1, c->batch, s->flat ? 1 : s->h, s->flat ? 1 : s->w, s->c};
        dnnl_memory_desc_t want;
        int flat2d = s->flat && c->ns[i].md.ndims == 2;
        tap_md(t, flat2d, &want);
        t->value = add_value(c->net, FN_VALUE_OWNED, dnnl_memory_desc_get_size(&want), c->err);
        if (t->value < 0) return c->err ? c->err->status : FUSENET_ERR_NOMEM;
        dnnl_primitive_desc_t pd;
        fusenet_status st = fusenet__op_reorder(c->net->eng, &c->ns[i].md, &want, c->g->nodes[i].name, &pd, c->err);
        if (st) return st;
        fn_step *step = add_step(c, FN_STEP_TAP, i, 2);
        if (!step) return drop_pd(c, pd);
        step->tap = c->tap_slot[k];
        step_arg(step, DNNL_ARG_FROM, c->ns[i].value, &c->ns[i].md);
        step_arg(step, DNNL_ARG_TO, t->value, &want);
        st = finish_step(c, step, pd);
        if (st) return st;
    }
    return FUSENET_OK;
}

static fusenet_status set_node(ctx *c, int i, int value, const dnnl_memory_desc_t *md) {
    c->ns[i].value = value;
    c->ns[i].md = *md;
    return emit_taps(c, i);
}

/* ---- op compilers ---- */

static fusenet_status compile_conv(ctx *c, const fn_chain *ch) {
    const fn_graph *g = c->g;
    int i = ch->head, src = ch->src, bn = ch->bn, end = ch->end, shortcut = ch->shortcut;
    const fn_node *n = &g->nodes[i];
    int sum_value = shortcut >= 0 ? c->ns[shortcut].value : -1;
    if (shortcut >= 0 && sum_value < 0) /* the plan promised an emitted buffer */
        return fusenet__error(c->err, FUSENET_ERR_BACKEND, "layer %s: shortcut %s not computed", g->nodes[ch->sum].name,
                              g->nodes[shortcut].name);
    const fn_shape *in = &c->shapes[src], *out = &c->shapes[i];

    size_t kelems = (size_t)n->kh * n->kw * (size_t)in->c * (size_t)n->filters;
    float *w = fusenet__malloc(kelems * sizeof *w);
    float *b = fusenet__malloc((size_t)n->filters * sizeof *b);
    fusenet_status st = FUSENET_OK;
    if (!w || !b) {
        st = fusenet__error(c->err, FUSENET_ERR_NOMEM, "out of memory folding layer %s", n->name);
        goto done;
    }
    memcpy(w, n->w[0], kelems * sizeof *w);
    memcpy(b, n->w[1], (size_t)n->filters * sizeof *b);
    if (bn >= 0) {
        const fn_node *bnn = &g->nodes[bn];
        if ((st = check_bn_scale(c, bnn, n->filters)) != FUSENET_OK) goto done;
        fusenet__fold_batch_norm(w, b, kelems, n->filters, bnn->w[0], bnn->w[1], bnn->w[2], bnn->w[3], bnn->epsilon);
    }

    dnnl_memory_desc_t src_any, dst_md;
    fusenet__md4(&src_any, c->batch, in->c, in->h, in->w, dnnl_format_tag_any);
    fn_conv_desc d;
    memset(&d, 0, sizeof d);
    d.src = &src_any;
    if (sum_value >= 0) {
        dst_md = c->ns[shortcut].md; /* the sum lands in the shortcut's buffer, in its layout */
    } else {
        fusenet__md4(&dst_md, c->batch, n->filters, out->h, out->w, dnnl_format_tag_any);
    }
    d.dst = &dst_md;
    d.weights_dims[0] = n->filters;
    d.weights_dims[1] = in->c;
    d.weights_dims[2] = n->kh;
    d.weights_dims[3] = n->kw;
    d.out_c = n->filters;
    d.strides[0] = d.strides[1] = n->stride;
    d.pad_l[0] = ch->pad_l[0];
    d.pad_l[1] = ch->pad_l[1];
    d.pad_r[0] = ch->pad_r[0];
    d.pad_r[1] = ch->pad_r[1];
    d.sum = sum_value >= 0;
    d.relu = ch->relu_post;
    d.winograd = c->mode == FUSENET_MODE_FAST && n->kh == 3 && n->kw == 3 && n->stride == 1;
    dnnl_primitive_desc_t pd;
    st = fusenet__op_conv(c->net->eng, &d, n->name, &pd, c->err);
    if (st) goto done;
    const dnnl_memory_desc_t *src_md = fusenet__pd_md(pd, dnnl_query_src_md, 0);
    const dnnl_memory_desc_t *w_md = fusenet__pd_md(pd, dnnl_query_weights_md, 0);
    const dnnl_memory_desc_t *b_md = fusenet__pd_md(pd, dnnl_query_weights_md, 1);
    dnnl_memory_desc_t real_dst = *fusenet__pd_md(pd, dnnl_query_dst_md, 0);
    dnnl_memory_desc_t w_user;
    fusenet__md4(&w_user, n->filters, in->c, n->kh, n->kw, dnnl_hwio); /* Keras (kh, kw, in, out) */
    int src_value, w_value, b_value, dst_value;
    st = value_as(c, src, src_md, &src_value);
    if (!st) st = upload(c, w, &w_user, w_md, n->name, &w_value);
    if (!st) st = upload(c, b, b_md, b_md, n->name, &b_value);
    dst_value = sum_value >= 0 ? sum_value : (st ? -1 : arena_value(c, &real_dst));
    if (!st && dst_value < 0) st = c->err ? c->err->status : FUSENET_ERR_NOMEM;
    fn_step *s = st ? NULL : add_step(c, FN_STEP_COMPUTE, end, 4);
    if (!s) {
        dnnl_primitive_desc_destroy(pd);
        if (!st) st = c->err ? c->err->status : FUSENET_ERR_NOMEM;
        goto done;
    }
    s->first = i;
    s->flops = 2.0 * (double)c->batch * out->h * out->w * (double)n->filters * n->kh * n->kw * in->c;
    step_arg(s, DNNL_ARG_SRC, src_value, src_md);
    step_arg(s, DNNL_ARG_WEIGHTS, w_value, w_md);
    step_arg(s, DNNL_ARG_BIAS, b_value, b_md);
    step_arg(s, DNNL_ARG_DST, dst_value, &real_dst);
    st = finish_step(c, s, pd);
    if (st) goto done;
    release_weights(c, i);
    if (bn >= 0) release_weights(c, bn);
    /* Nodes folded into this step are not materialised; the chain end is. */
    if (shortcut >= 0) c->ns[shortcut].value = -1; /* its buffer now holds the sum */
    st = set_node(c, end, dst_value, &real_dst);
done:
    fusenet__free(w);
    fusenet__free(b);
    return st;
}

static fusenet_status compile_simple(ctx *c, int i) {
    const fn_node *n = &c->g->nodes[i];
    const node_state *x = &c->ns[n->in[0]];
    dnnl_primitive_desc_t pd;
    fusenet_status st;
    int extra[4] = {-1, -1, -1, -1};
    const fn_shape *in = &c->shapes[n->in[0]];
    if (n->op == FN_OP_RELU)
        st = fusenet__op_relu(c->net->eng, &x->md, n->name, &pd, c->err);
    else
        st = fusenet__op_batch_norm(c->net->eng, &x->md, n->epsilon, n->name, &pd, c->err);
    if (st) return st;
    if (n->op == FN_OP_BATCH_NORM) {
        /* oneDNN order: mean, variance, scale (gamma), shift (beta) */
        st = check_bn_scale(c, n, in->c);
        if (!st) st = upload_vector(c, n->w[2], in->c, n->name, &extra[0]);
        if (!st) st = upload_vector(c, n->w[3], in->c, n->name, &extra[1]);
        if (!st) st = upload_vector(c, n->w[0], in->c, n->name, &extra[2]);
        if (!st) st = upload_vector(c, n->w[1], in->c, n->name, &extra[3]);
    }
    int dst = st ? -1 : arena_value(c, &x->md);
    fn_step *s = dst < 0 ? NULL : add_step(c, FN_STEP_COMPUTE, i, n->op == FN_OP_BATCH_NORM ? 6 : 2);
    if (!s) {
        dnnl_primitive_desc_destroy(pd);
        return st ? st : c->err ? c->err->status : FUSENET_ERR_NOMEM;
    }
    step_arg(s, DNNL_ARG_SRC, x->value, &x->md);
    step_arg(s, DNNL_ARG_DST, dst, &x->md);
    if (n->op == FN_OP_BATCH_NORM) {
        dnnl_memory_desc_t vmd;
        dnnl_dims_t dims = {in->c};
        dnnl_memory_desc_init_by_tag(&vmd, 1, dims, dnnl_f32, dnnl_x);
        step_arg(s, DNNL_ARG_MEAN, extra[0], &vmd);
        step_arg(s, DNNL_ARG_VARIANCE, extra[1], &vmd);
        step_arg(s, DNNL_ARG_SCALE, extra[2], &vmd);
        step_arg(s, DNNL_ARG_SHIFT, extra[3], &vmd);
    }
    st = finish_step(c, s, pd);
    if (st) return st;
    release_weights(c, i);
    dnnl_memory_desc_t md = x->md;
    return set_node(c, i, dst, &md);
}

static fusenet_status compile_add(ctx *c, int i) {
    const fn_node *n = &c->g->nodes[i];
    const node_state *a = &c->ns[n->in[0]];
    int b_value;
    fusenet_status st = value_as(c, n->in[1], &a->md, &b_value);
    if (st) return st;
    dnnl_primitive_desc_t pd;
    st = fusenet__op_add(c->net->eng, &a->md, &a->md, n->name, &pd, c->err);
    if (st) return st;
    int dst = arena_value(c, &a->md);
    fn_step *s = dst < 0 ? NULL : add_step(c, FN_STEP_COMPUTE, i, 3);
    if (!s) return drop_pd(c, pd);
    step_arg(s, DNNL_ARG_SRC_0, a->value, &a->md);
    step_arg(s, DNNL_ARG_SRC_1, b_value, &a->md);
    step_arg(s, DNNL_ARG_DST, dst, &a->md);
    st = finish_step(c, s, pd);
    if (st) return st;
    dnnl_memory_desc_t md = a->md;
    return set_node(c, i, dst, &md);
}

static fusenet_status compile_pool(ctx *c, const fn_chain *ch) {
    int i = ch->head, src = ch->src;
    const fn_node *n = &c->g->nodes[i];
    int global = n->op == FN_OP_GLOBAL_AVG_POOL || n->op == FN_OP_GLOBAL_MAX_POOL;
    int is_max = n->op != FN_OP_GLOBAL_AVG_POOL;
    dnnl_dims_t pad_l = {ch->pad_l[0], ch->pad_l[1]}, pad_r = {ch->pad_r[0], ch->pad_r[1]};
    const fn_shape *in = &c->shapes[src], *out = &c->shapes[i];
    const node_state *x = &c->ns[src];
    dnnl_dims_t kernel = {global ? in->h : n->kh, global ? in->w : n->kw};
    dnnl_dims_t strides = {global ? 1 : n->stride, global ? 1 : n->stride};
    dnnl_memory_desc_t dst_md;
    if (global)
        fusenet__md4(&dst_md, c->batch, in->c, 1, 1, dnnl_nhwc); /* = (n, c) dense, ready for Dense */
    else
        fusenet__md4(&dst_md, c->batch, in->c, out->h, out->w, dnnl_format_tag_any);
    dnnl_primitive_desc_t pd;
    fusenet_status st = fusenet__op_pool(c->net->eng, is_max, &x->md, &dst_md, kernel, strides, pad_l, pad_r, n->name,
                                   &pd, c->err);
    if (st) return st;
    dnnl_memory_desc_t real_dst = *fusenet__pd_md(pd, dnnl_query_dst_md, 0);
    int dst = arena_value(c, &real_dst);
    fn_step *s = dst < 0 ? NULL : add_step(c, FN_STEP_COMPUTE, i, 2);
    if (!s) return drop_pd(c, pd);
    step_arg(s, DNNL_ARG_SRC, x->value, &x->md);
    step_arg(s, DNNL_ARG_DST, dst, &real_dst);
    st = finish_step(c, s, pd);
    if (st) return st;
    return set_node(c, i, dst, &real_dst);
}

/* A ZeroPadding2D that stays a layer (tapped, or feeding something that cannot
 * take padding): clear the destination, then copy the input into its middle. */
static fusenet_status compile_zero_pad(ctx *c, int i) {
    const fn_node *n = &c->g->nodes[i];
    const node_state *x = &c->ns[n->in[0]];
    const fn_shape *in = &c->shapes[n->in[0]], *out = &c->shapes[i];
    dnnl_memory_desc_t dst_md, inner;
    fusenet__md4(&dst_md, c->batch, out->c, out->h, out->w, dnnl_nhwc);
    dnnl_dims_t dims = {c->batch, in->c, in->h, in->w}, offs = {0, 0, n->pad_t, n->pad_l};
    dnnl_status_t s0 = dnnl_memory_desc_init_submemory(&inner, &dst_md, dims, offs);
    if (s0 != dnnl_success) return fusenet__dnnl_error(c->err, s0, n->name, "padding view");
    dnnl_primitive_desc_t pd;
    fusenet_status st = fusenet__op_reorder(c->net->eng, &x->md, &inner, n->name, &pd, c->err);
    if (st) return st;
    int dst = arena_value(c, &dst_md);
    fn_step *s = dst < 0 ? NULL : add_step(c, FN_STEP_COMPUTE, i, 2);
    if (!s) return drop_pd(c, pd);
    s->zero_value = dst;
    step_arg(s, DNNL_ARG_FROM, x->value, &x->md);
    step_arg(s, DNNL_ARG_TO, dst, &inner);
    st = finish_step(c, s, pd);
    if (st) return st;
    return set_node(c, i, dst, &dst_md);
}

static fusenet_status compile_flatten(ctx *c, int i) {
    const fn_node *n = &c->g->nodes[i];
    const fn_shape *in = &c->shapes[n->in[0]];
    dnnl_memory_desc_t nhwc;
    fusenet__md4(&nhwc, c->batch, in->c, in->h, in->w, dnnl_nhwc); /* Keras flattens in (h, w, c) order */
    int v;
    fusenet_status st = value_as(c, n->in[0], &nhwc, &v);
    if (st) return st;
    dnnl_memory_desc_t flat;
    dnnl_dims_t dims = {c->batch, (int64_t)in->h * in->w * in->c};
    dnnl_memory_desc_init_by_tag(&flat, 2, dims, dnnl_f32, dnnl_nc);
    return set_node(c, i, v, &flat);
}

static fusenet_status compile_dense(ctx *c, int i) {
    const fn_node *n = &c->g->nodes[i];
    const fn_shape *in = &c->shapes[n->in[0]];
    const node_state *x = &c->ns[n->in[0]];
    int64_t fan_in = in->flat ? in->c : (int64_t)in->h * in->w * in->c;
    dnnl_memory_desc_t src_md, w_user, b_md, dst_md;
    dnnl_dims_t sdims = {c->batch, fan_in}, wdims = {n->filters, fan_in}, bdims = {n->filters},
                ddims = {c->batch, n->filters};
    int src_value = x->value;
    if (x->md.ndims == 2) {
        src_md = x->md;
    } else { /* a global pool's (n, c, 1, 1) nhwc buffer is (n, c) */
        dnnl_memory_desc_init_by_tag(&src_md, 2, sdims, dnnl_f32, dnnl_nc);
    }
    dnnl_memory_desc_init_by_tag(&w_user, 2, wdims, dnnl_f32, dnnl_io); /* Keras (in, out) */
    dnnl_memory_desc_init_by_tag(&b_md, 1, bdims, dnnl_f32, dnnl_x);
    dnnl_memory_desc_init_by_tag(&dst_md, 2, ddims, dnnl_f32, dnnl_nc);
    dnnl_memory_desc_t w_any;
    dnnl_memory_desc_init_by_tag(&w_any, 2, wdims, dnnl_f32, dnnl_format_tag_any);
    dnnl_primitive_desc_t pd;
    fusenet_status st = fusenet__op_dense(c->net->eng, &src_md, &w_any, &b_md, &dst_md, n->act == FN_ACT_RELU, n->name,
                                    &pd, c->err);
    if (st) return st;
    const dnnl_memory_desc_t *w_md = fusenet__pd_md(pd, dnnl_query_weights_md, 0);
    int w_value, b_value, dst = -1;
    st = upload(c, n->w[0], &w_user, w_md, n->name, &w_value);
    if (!st) st = upload(c, n->w[1], &b_md, &b_md, n->name, &b_value);
    if (!st) dst = arena_value(c, &dst_md);
    fn_step *s = (st || dst < 0) ? NULL : add_step(c, FN_STEP_COMPUTE, i, 4);
    if (!s) {
        dnnl_primitive_desc_destroy(pd);
        return st ? st : c->err ? c->err->status : FUSENET_ERR_NOMEM;
    }
    s->flops = 2.0 * (double)c->batch * (double)fan_in * n->filters;
    step_arg(s, DNNL_ARG_SRC, src_value, &src_md);
    step_arg(s, DNNL_ARG_WEIGHTS, w_value, w_md);
    step_arg(s, DNNL_ARG_BIAS, b_value, &b_md);
    step_arg(s, DNNL_ARG_DST, dst, &dst_md);
    st = finish_step(c, s, pd);
    if (st) return st;
    release_weights(c, i);
    if (n->act == FN_ACT_SOFTMAX) {
        st = fusenet__op_softmax(c->net->eng, &dst_md, n->name, &pd, c->err);
        if (st) return st;
        s = add_step(c, FN_STEP_COMPUTE, i, 2);
        if (!s) return drop_pd(c, pd);
        step_arg(s, DNNL_ARG_SRC, dst, &dst_md);
        step_arg(s, DNNL_ARG_DST, dst, &dst_md);
        st = finish_step(c, s, pd);
        if (st) return st;
    }
    return set_node(c, i, dst, &dst_md);
}

/* ---- one model's trunk ---- */

static fusenet_status compile_model(ctx *c) {
    const fn_graph *g = c->g;
    for (int i = 0; i < g->n; i++) {
        const fn_plan_node *pn = &c->plan.nodes[i];
        const fn_chain *ch = pn->chain >= 0 ? &c->plan.chains[pn->chain] : NULL;
        fusenet_status st = FUSENET_OK;
        if (pn->role == FN_ROLE_INPUT) {
            dnnl_memory_desc_t md;
            fusenet__md4(&md, c->batch, 3, c->shapes[i].h, c->shapes[i].w, dnnl_nhwc);
            st = set_node(c, i, c->input_value, &md);
        } else if (pn->role == FN_ROLE_VIEW) {
            st = compile_flatten(c, i);
        } else if (pn->role == FN_ROLE_HEAD) {
            switch (g->nodes[i].op) {
            case FN_OP_ZERO_PAD: st = compile_zero_pad(c, i); break;
            case FN_OP_CONV2D: st = compile_conv(c, ch); break;
            case FN_OP_BATCH_NORM:
            case FN_OP_RELU: st = compile_simple(c, i); break;
            case FN_OP_ADD: st = compile_add(c, i); break;
            case FN_OP_MAX_POOL:
            case FN_OP_GLOBAL_AVG_POOL:
            case FN_OP_GLOBAL_MAX_POOL: st = compile_pool(c, ch); break;
            case FN_OP_DENSE: st = compile_dense(c, i); break;
            case FN_OP_INPUT:
            case FN_OP_FLATTEN:
                st = fusenet__error(c->err, FUSENET_ERR_BACKEND, "layer %s: planned as a step", g->nodes[i].name);
                break;
            }
        }
        if (st) return st;
    }
    return FUSENET_OK;
}

/* ---- fuse head: resize each tap to the target size, concat on channels ---- */

/* Does oneDNN's resampling pick the same source pixels (nearest) or the same
 * coordinates (linear) as TensorFlow for in -> out along one axis? Checked by
 * running it on a ramp. */
static int onednn_matches_tf(fusenet_net *net, int nearest, int32_t in, int32_t out) {
    if (in == out) return 1;
    dnnl_memory_desc_t smd, dmd;
    fusenet__md4(&smd, 1, 1, in, 1, dnnl_nchw);
    fusenet__md4(&dmd, 1, 1, out, 1, dnnl_nchw);
    float *buf = fusenet__malloc(((size_t)in + (size_t)out) * sizeof(float));
    if (!buf) return 0;
    for (int32_t k = 0; k < in; k++) buf[k] = (float)k;
    int ok = 0;
    dnnl_primitive_desc_t pd;
    fusenet_error ignored;
    if (fusenet__op_resample(net->eng, nearest, &smd, &dmd, "resize", &pd, &ignored) == FUSENET_OK) {
        const dnnl_memory_desc_t *sp = fusenet__pd_md(pd, dnnl_query_scratchpad_md, 0);
        size_t sp_size = sp ? dnnl_memory_desc_get_size(sp) : 0;
        void *scratch = sp_size ? fusenet__aligned_alloc(sp_size) : NULL;
        dnnl_primitive_t prim = NULL;
        dnnl_memory_t ms = NULL, md = NULL, mp = NULL;
        if ((sp_size == 0 || scratch) && dnnl_primitive_create(&prim, pd) == dnnl_success &&
            dnnl_memory_create(&ms, &smd, net->eng, buf) == dnnl_success &&
            dnnl_memory_create(&md, &dmd, net->eng, buf + in) == dnnl_success &&
            (sp_size == 0 || dnnl_memory_create(&mp, sp, net->eng, scratch) == dnnl_success)) {
            dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, ms}, {DNNL_ARG_DST, md}, {DNNL_ARG_SCRATCHPAD, mp}};
            if (dnnl_primitive_execute(prim, net->stream, sp_size ? 3 : 2, args) == dnnl_success &&
                dnnl_stream_wait(net->stream) == dnnl_success) {
                ok = 1;
                for (int32_t o = 0; o < out && ok; o++) {
                    float got = buf[in + o], want;
                    if (nearest) {
                        want = (float)fusenet__tf_nearest_index(o, in, out);
                        ok = got == want;
                    } else {
                        float scale = (float)in / (float)out;
                        float x = ((float)o + 0.5f) * scale - 0.5f;
                        want = x < 0.0f ? 0.0f : x > (float)(in - 1) ? (float)(in - 1) : x;
                        ok = fabsf(got - want) <= 1e-4f;
                    }
                }
            }
        }
        dnnl_memory_destroy(ms);
        dnnl_memory_destroy(md);
        dnnl_memory_destroy(mp);
        dnnl_primitive_destroy(prim);
        dnnl_primitive_desc_destroy(pd);
        fusenet__free(scratch);
    }
    fusenet__free(buf);
    return ok;
}

static fusenet_status compile_fuse(ctx *c, const fusenet_net_params *p) {
    fusenet_net *net = c->net;
    int32_t th = net->taps[0].h, tw = net->taps[0].w, total_c = 0;
    for (int t = 0; t < net->n_taps; t++) {
        const fn_tap_out *tap = &net->taps[t];
        if (p->size == FUSENET_SIZE_MAX) {
            if (tap->h > th) th = tap->h;
            if (tap->w > tw) tw = tap->w;
        } else {
            if (tap->h < th) th = tap->h;
            if (tap->w < tw) tw = tap->w;
        }
        total_c += tap->c;
    }
    if (p->size == FUSENET_SIZE_EXPLICIT) {
        th = p->out_h;
        tw = p->out_w;
    }
    net->fused = 1;
    net->out = (fn_tap_out){-1, c->batch, th, tw, total_c};
    dnnl_memory_desc_t out_md;
    fusenet__md4(&out_md, c->batch, total_c, th, tw, dnnl_nhwc);
    net->out.value = add_value(net, FN_VALUE_OWNED, dnnl_memory_desc_get_size(&out_md), c->err);
    if (net->out.value < 0) return c->err ? c->err->status : FUSENET_ERR_NOMEM;

    dnnl_memory_desc_t srcs[FN_MAX_TAPS];
    int src_values[FN_MAX_TAPS];
    int nearest = p->resize == FUSENET_INTERP_NEAREST;
    for (int t = 0; t < net->n_taps; t++) {
        const fn_tap_out *tap = &net->taps[t];
        dnnl_memory_desc_t tap_nhwc;
        fusenet__md4(&tap_nhwc, tap->n, tap->c, tap->h, tap->w, dnnl_nhwc);
        fusenet__md4(&srcs[t], c->batch, tap->c, th, tw, dnnl_nhwc);
        if (tap->h == th && tap->w == tw) {
            src_values[t] = tap->value;
            continue;
        }
        src_values[t] = arena_value(c, &srcs[t]);
        if (src_values[t] < 0) return c->err ? c->err->status : FUSENET_ERR_NOMEM;
        fn_step *s;
        if (onednn_matches_tf(net, nearest, tap->h, th) && onednn_matches_tf(net, nearest, tap->w, tw)) {
            dnnl_primitive_desc_t pd;
            fusenet_status st = fusenet__op_resample(net->eng, nearest, &tap_nhwc, &srcs[t], "resize", &pd, c->err);
            if (st) return st;
            s = add_step(c, FN_STEP_RESIZE, -1, 2);
            if (!s) return drop_pd(c, pd);
            s->tap = t;
            step_arg(s, DNNL_ARG_SRC, tap->value, &tap_nhwc);
            step_arg(s, DNNL_ARG_DST, src_values[t], &srcs[t]);
            st = finish_step(c, s, pd);
            if (st) return st;
        } else { /* oneDNN would pick other pixels than TensorFlow here */
            s = add_step(c, FN_STEP_RESIZE, -1, 2);
            if (!s) return c->err ? c->err->status : FUSENET_ERR_NOMEM;
            s->tap = t;
            snprintf(s->impl, sizeof s->impl, "tensorflow-rule C");
            s->tf_resize = 1;
            s->nearest = nearest;
            s->src_value = tap->value;
            s->dst_value = src_values[t];
            s->n = c->batch;
            s->ih = tap->h;
            s->iw = tap->w;
            s->c = tap->c;
            s->oh = th;
            s->ow = tw;
            step_arg(s, DNNL_ARG_SRC, tap->value, &tap_nhwc);
            step_arg(s, DNNL_ARG_DST, src_values[t], &srcs[t]);
            fusenet_status st = check_args(c, s);
            if (st) return st;
        }
    }
    dnnl_primitive_desc_t pd;
    fusenet_status st = fusenet__op_concat(net->eng, &out_md, net->n_taps, srcs, "concat", &pd, c->err);
    if (st) return st;
    fn_step *s = add_step(c, FN_STEP_CONCAT, -1, net->n_taps + 1);
    if (!s) return drop_pd(c, pd);
    for (int t = 0; t < net->n_taps; t++) step_arg(s, DNNL_ARG_MULTIPLE_SRC + t, src_values[t], &srcs[t]);
    step_arg(s, DNNL_ARG_DST, net->out.value, &out_md);
    return finish_step(c, s, pd);
}

/* ---- memory plan and binding ---- */

static fusenet_status plan_and_bind(fusenet_net *net, fusenet_error *err) {
    /* Live range of every arena value: first to last step naming it. */
    for (int s = 0; s < net->n_steps; s++)
        for (int a = 0; a < net->steps[s].nargs; a++) {
            fn_value *v = &net->values[net->steps[s].args[a].value];
            if (v->first < 0) v->first = s;
            v->last = s;
        }
    /* Best fit by decreasing size: each value takes the lowest offset that
     * overlaps no placed value alive at the same time. */
    int n = net->n_values;
    int *order = fusenet__malloc((size_t)n * sizeof *order);
    int *placed = fusenet__malloc((size_t)n * sizeof *placed);
    if (!order || !placed) {
        fusenet__free(order);
        fusenet__free(placed);
        return fusenet__error(err, FUSENET_ERR_NOMEM, "out of memory planning the net");
    }
    int m = 0;
    for (int i = 0; i < n; i++)
        if (net->values[i].kind == FN_VALUE_ARENA && net->values[i].first >= 0) order[m++] = i;
    for (int i = 1; i < m; i++) { /* insertion sort, sizes descending */
        int x = order[i], j = i - 1;
        while (j >= 0 && net->values[order[j]].size < net->values[x].size) {
            order[j + 1] = order[j];
            j--;
        }
        order[j + 1] = x;
    }
    size_t arena = 0;
    int n_placed = 0;
    for (int i = 0; i < m; i++) {
        fn_value *v = &net->values[order[i]];
        size_t offset = 0;
        for (int again = 1; again;) {
            again = 0;
            for (int k = 0; k < n_placed; k++) {
                const fn_value *u = &net->values[placed[k]];
                if (u->last < v->first || v->last < u->first) continue;
                if (offset < u->offset + u->size && u->offset < offset + v->size) {
                    offset = u->offset + u->size;
                    again = 1;
                }
            }
        }
        v->offset = offset;
        if (offset + v->size > arena) arena = offset + v->size;
        placed[n_placed++] = order[i];
    }
    fusenet__free(order);
    fusenet__free(placed);
    size_t total = arena + net->scratch_size + net->weights_bytes;
    if (total > FN_MAX_NET_BYTES)
        return fusenet__error(err, FUSENET_ERR_NOMEM, "the net would need %.1f GiB (limit %.0f GiB); use a smaller batch or input",
                        (double)total / (1 << 30), (double)FN_MAX_NET_BYTES / (1 << 30));
    net->arena_size = arena;
    net->arena = fusenet__aligned_alloc(arena ? arena : 64);
    fn_value *scratch = &net->values[net->scratch_value];
    scratch->size = net->scratch_size;
    scratch->own = fusenet__aligned_alloc(net->scratch_size ? net->scratch_size : 64);
    if (!net->arena || !scratch->own)
        return fusenet__error(err, FUSENET_ERR_NOMEM, "out of memory allocating %zu bytes of activations", arena);

    int total_args = 0;
    for (int s = 0; s < net->n_steps; s++) total_args += net->steps[s].nargs;
    net->mems = fusenet__calloc((size_t)total_args, sizeof *net->mems);
    if (!net->mems) return fusenet__error(err, FUSENET_ERR_NOMEM, "out of memory binding the net");
    for (int s = 0; s < net->n_steps; s++) {
        fn_step *step = &net->steps[s];
        for (int a = 0; a < step->nargs; a++) {
            const fn_value *v = &net->values[step->args[a].value];
            void *handle = v->kind == FN_VALUE_ARENA   ? (char *)net->arena + v->offset
                           : v->kind == FN_VALUE_OWNED ? v->own
                                                       : DNNL_MEMORY_NONE;
            dnnl_memory_t mem;
            dnnl_status_t st = dnnl_memory_create(&mem, &step->args[a].md, net->eng, handle);
            if (st != dnnl_success) return fusenet__dnnl_error(err, st, step->layer, "memory creation");
            net->mems[net->n_mems++] = mem;
            step->exec[a].arg = step->args[a].kind;
            step->exec[a].memory = mem;
        }
    }
    return FUSENET_OK;
}

/* ---- public entry points ---- */

fusenet_net_params fusenet_net_default_params(void) {
    fusenet_net_params p;
    memset(&p, 0, sizeof p);
    p.batch = 1;
    p.in_h = p.in_w = 224;
    p.fuse = 1;
    p.resize = FUSENET_INTERP_BILINEAR;
    p.size = FUSENET_SIZE_MIN;
    p.mode = FUSENET_MODE_EXACT;
    return p;
}

static fusenet_status check_net_params(const fusenet_net_params *p, fusenet_error *err) {
    if (!p->taps || p->n_taps == 0)
        return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "net params: no taps given");
    if (p->n_taps > FN_MAX_TAPS)
        return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "net params: %zu taps, at most %d", p->n_taps, FN_MAX_TAPS);
    for (size_t t = 0; t < p->n_taps; t++)
        if (!p->taps[t].model || !p->taps[t].layer)
            return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "net params: tap %zu has a NULL %s", t,
                            p->taps[t].model ? "layer" : "model");
    if (p->batch <= 0 || p->batch > FN_MAX_BATCH)
        return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "net params: batch %d outside 1..%d", p->batch, FN_MAX_BATCH);
    if (p->in_h < FN_MIN_INPUT || p->in_w < FN_MIN_INPUT)
        return fusenet__error(err, FUSENET_ERR_SHAPE, "input %dx%d is smaller than the networks' minimum %dx%d", p->in_h,
                        p->in_w, FN_MIN_INPUT, FN_MIN_INPUT);
    if (p->in_h > FN_MAX_INPUT_SIDE || p->in_w > FN_MAX_INPUT_SIDE)
        return fusenet__error(err, FUSENET_ERR_SHAPE, "input %dx%d is larger than %dx%d", p->in_h, p->in_w,
                        FN_MAX_INPUT_SIDE, FN_MAX_INPUT_SIDE);
    if (p->resize != FUSENET_INTERP_BILINEAR && p->resize != FUSENET_INTERP_NEAREST)
        return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "net params: resize %d is not bilinear or nearest",
                        (int)p->resize);
    if (p->size != FUSENET_SIZE_MIN && p->size != FUSENET_SIZE_MAX && p->size != FUSENET_SIZE_EXPLICIT)
        return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "net params: size policy %d unknown", (int)p->size);
    if (p->fuse && p->size == FUSENET_SIZE_EXPLICIT &&
        (p->out_h < 1 || p->out_w < 1 || p->out_h > FN_MAX_INPUT_SIDE || p->out_w > FN_MAX_INPUT_SIDE))
        return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "net params: explicit size %dx%d outside 1..%d", p->out_h,
                        p->out_w, FN_MAX_INPUT_SIDE);
    if (p->mode != FUSENET_MODE_EXACT && p->mode != FUSENET_MODE_FAST)
        return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "net params: mode %d is not exact or fast", (int)p->mode);
    fusenet_status mode_st = fusenet__check_mode(p->mode, err);
    if (mode_st) return mode_st;
    if (p->threads < 0 || p->threads > FN_MAX_THREADS)
        return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "net params: threads %d outside 0..%d", (int)p->threads,
                              FN_MAX_THREADS);
    /* Refuse absurd sizes before allocating: the first layers alone hold
     * batch x H x W x 64 floats twice. */
    double first_layers = 2.0 * 4.0 * 64.0 * (double)p->batch * (double)p->in_h * (double)p->in_w;
    if (first_layers > (double)FN_MAX_NET_BYTES)
        return fusenet__error(err, FUSENET_ERR_NOMEM,
                        "batch %d of %dx%d images would need more than %.1f GiB of activations (limit %.0f GiB)",
                        p->batch, p->in_h, p->in_w, first_layers / (1 << 30), (double)FN_MAX_NET_BYTES / (1 << 30));
    return fusenet__ok(err);
}

static void free_ctx(ctx *c) {
    fusenet__plan_free(&c->plan);
    fusenet__free(c->ns);
    memset(c, 0, sizeof *c);
}

/* Compiles the trunk of one model for the taps that name it. */
static fusenet_status build_model_part(fusenet_net *net, const fusenet_net_params *p, const fusenet_model *m,
                                       fusenet_model *owned, int model_index, int input_value,
                                       const int *tap_nodes, fusenet_error *err) {
    ctx c;
    memset(&c, 0, sizeof c);
    c.net = net;
    c.model = m;
    c.g = &m->g;
    c.input_value = input_value;
    c.model_index = model_index;
    c.batch = p->batch;
    c.mode = p->mode;
    c.owned = owned;
    c.err = err;
    int n = m->g.n;
    c.ns = fusenet__calloc((size_t)n, sizeof *c.ns);
    fusenet_status st = FUSENET_OK;
    if (!c.ns) {
        st = fusenet__error(err, FUSENET_ERR_NOMEM, "out of memory building the net");
        goto done;
    }
    int outs[FN_MAX_TAPS];
    for (size_t t = 0; t < p->n_taps; t++) {
        if (p->taps[t].model != m) continue;
        c.tap_slot[c.n_model_taps] = (int)t;
        c.tap_node[c.n_model_taps] = tap_nodes[t];
        outs[c.n_model_taps++] = tap_nodes[t];
    }
    if (m->include_top && (p->in_h != 224 || p->in_w != 224)) {
        st = fusenet__error(err, FUSENET_ERR_SHAPE, "%s with its top takes exactly 224x224 input, not %dx%d",
                      fusenet__arch_name(m->arch), p->in_h, p->in_w);
        goto done;
    }
    st = fusenet__plan(&m->g, p->in_h, p->in_w, outs, c.n_model_taps, &c.plan, err);
    if (st) goto done;
    c.shapes = c.plan.shapes;
    for (int i = 0; i < n; i++) {
        c.ns[i].value = -1;
        if (c.plan.nodes[i].role == FN_ROLE_DEAD) continue;
        if (fusenet__node_weight_count(&m->g.nodes[i]) && !m->loaded[i]) {
            st = fusenet__error(err, FUSENET_ERR_INVALID_ARG, "%s layer %s has no weights loaded (needed for tap %s)",
                          fusenet__arch_name(m->arch), m->g.nodes[i].name, m->g.nodes[outs[0]].name);
            goto done;
        }
    }
    st = compile_model(&c);
done:
    free_ctx(&c);
    return st;
}

static fusenet_status net_build(const fusenet_net_params *params, fusenet_model *const *owned, size_t n_owned,
                                fusenet_net **out, fusenet_error *err);

/* Primitives are created with the net's thread count: most oneDNN kernels fix their team size then. */
static fusenet_status build_threads(const fusenet_net_params *params, fusenet_model *const *owned, size_t n_owned,
                                    fusenet_net **out, fusenet_error *err) {
    int threads = params && params->threads > 0 ? params->threads : fusenet__default_threads();
    int saved = fusenet__threads_enter(threads);
    fusenet_status st = net_build(params, owned, n_owned, out, err);
    fusenet__threads_leave(saved);
    if (!st) (*out)->threads = threads;
    return st;
}

fusenet_status fusenet_net_build(const fusenet_net_params *params, fusenet_net **out, fusenet_error *err) {
    return build_threads(params, NULL, 0, out, err);
}

fusenet_status fusenet__net_build_owned(const fusenet_net_params *params, fusenet_model **models, size_t n_models,
                                        fusenet_net **out, fusenet_error *err) {
    fusenet_status st = build_threads(params, models, n_models, out, err);
    for (size_t k = 0; k < n_models; k++) fusenet_model_free(models[k]);
    return st;
}


static fusenet_status net_build(const fusenet_net_params *params, fusenet_model *const *owned, size_t n_owned,
                                fusenet_net **out, fusenet_error *err) {
    if (!out) return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "fusenet_net_build: out is NULL");
    *out = NULL;
    if (!params) return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "fusenet_net_build: params is NULL");
    fusenet_status st = check_net_params(params, err);
    if (st) return st;
    int tap_nodes[FN_MAX_TAPS];
    for (size_t t = 0; t < params->n_taps; t++) {
        const fusenet_model *m = params->taps[t].model;
        st = fusenet__graph_lookup(&m->g, params->taps[t].layer, fusenet__arch_name(m->arch), &tap_nodes[t], err);
        if (st) return st;
    }
    fusenet_net *net = fusenet__calloc(1, sizeof *net);
    if (!net) return fusenet__error(err, FUSENET_ERR_NOMEM, "out of memory building the net");
    net->batch = params->batch;
    net->in_h = params->in_h;
    net->in_w = params->in_w;
    net->n_taps = (int)params->n_taps;
    net->scratch_value = -1;
    dnnl_status_t ds = dnnl_engine_create(&net->eng, dnnl_cpu, 0);
    if (ds == dnnl_success) ds = dnnl_stream_create(&net->stream, net->eng, dnnl_stream_default_flags);
    if (ds != dnnl_success) {
        st = fusenet__dnnl_error(err, ds, "-", "engine creation");
        goto fail;
    }
    int input_value = add_value(net, FN_VALUE_INPUT, 0, err);
    net->scratch_value = input_value < 0 ? -1 : add_value(net, FN_VALUE_OWNED, 64, err);
    if (net->scratch_value < 0) {
        st = err ? err->status : FUSENET_ERR_NOMEM;
        goto fail;
    }
    fusenet__free(net->values[net->scratch_value].own); /* sized and allocated by the plan */
    net->values[net->scratch_value].own = NULL;
    /* One trunk per distinct model, in the order the taps name them. */
    for (size_t t = 0, n_models = 0; t < params->n_taps && !st; t++) {
        const fusenet_model *m = params->taps[t].model;
        int seen = 0;
        for (size_t k = 0; k < t; k++) seen |= params->taps[k].model == m;
        fusenet_model *mine = NULL; /* m, if it was handed over */
        for (size_t k = 0; k < n_owned; k++)
            if (owned[k] == m) mine = owned[k];
        if (!seen) st = build_model_part(net, params, m, mine, (int)n_models++, input_value, tap_nodes, err);
    }
    if (!st && params->fuse) {
        ctx c;
        memset(&c, 0, sizeof c);
        c.net = net;
        c.batch = params->batch;
        c.err = err;
        st = compile_fuse(&c, params);
    }
    if (!st) st = plan_and_bind(net, err);
    if (st) goto fail;
    *out = net;
    return fusenet__ok(err);
fail:
    fusenet_net_free(net);
    return st;
}

void fusenet_net_free(fusenet_net *net) {
    if (!net) return;
    for (int s = 0; s < net->n_steps; s++) {
        dnnl_primitive_destroy(net->steps[s].prim);
        fusenet__free(net->steps[s].args);
        fusenet__free(net->steps[s].exec);
    }
    for (int k = 0; k < net->n_mems; k++) dnnl_memory_destroy(net->mems[k]);
    for (int v = 0; v < net->n_values; v++) fusenet__free(net->values[v].own);
    fusenet__free(net->mems);
    fusenet__free(net->steps);
    fusenet__free(net->values);
    fusenet__free(net->arena);
    if (net->stream) dnnl_stream_destroy(net->stream);
    if (net->eng) dnnl_engine_destroy(net->eng);
    fusenet__free(net);
}
