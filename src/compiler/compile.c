/* compile.c - emission: from each model's plan (plan.h) to the net's steps.
 *
 * Creates every oneDNN primitive once, folds BatchNorm into conv weights and
 * reorders weights once, builds the fuse head, then places activations with
 * the memory plan (memplan.h) and binds every step's memory. Every decision
 * about what folds into what is the plan's; this file only reads it.
 *
 * Errors: the compile context carries a sticky status. The first failure is
 * recorded with its message and every helper below does nothing once one is
 * pending, so emitters read as straight-line code and report at the end.
 */
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "memplan.h"
#include "model.h"
#include "net.h"
#include "ops.h"
#include "plan.h"
#include "quant.h"

#define FN_MAX_INPUT_SIDE 16384
#define FN_MAX_BATCH 65536
#define FN_MAX_NET_BYTES ((size_t)16 << 30)

/* Where a node's output lives once emitted. */
typedef struct node_state {
    int value; /* -1: not materialised (folded into another step, not yet emitted, or summed into) */
    dnnl_memory_desc_t md;
    float scale; /* u8 / s8 values: x = q * scale (quant.h); float32 values: 1 */
    /* the last reorder of it value_as_q made (-1: none), reused by the next consumer wanting the same */
    int alt_value;
    dnnl_memory_desc_t alt_md;
    float alt_scale;
} node_state;

typedef struct ctx {
    fusenet_net *net;
    fusenet_status status; /* sticky: the first failure; once set, the helpers below are no-ops */
    fusenet_error *err;
    int batch;
    fusenet_mode mode;
    int input_value;
    /* the trunk being emitted */
    const fusenet_model *model;
    const fn_graph *g;
    int model_index;      /* of model among the net's models, in tap order */
    fusenet_model *owned; /* model, when it was handed over to the build: its raw weights are released once uploaded */
    const fn_plan *plan;
    node_state *ns;
    int tap_slot[FN_MAX_TAPS];
    int tap_node[FN_MAX_TAPS];
    int n_model_taps;
    /* int8 (quant.h) */
    int ident;                      /* record net->models: int8 and calibration nets */
    const fusenet_calibration *cal; /* int8 mode: thresholds ready */
    fusenet_int8_layers int8_layers;
    int int8;      /* the trunk being emitted runs its convs in int8 */
    int cal_model; /* its model among the calibration's */
    int wlevels;   /* s8 weight levels on this CPU: 63 or 127 */
    int own_wino;  /* fast mode runs our own Winograd kernel (no oneDNN Winograd on this CPU) */
    /* the trunk's emission */
    int micro_cut;  /* the chain ending its micro-batched part, -1: none */
    int skip_until; /* heads up to this node were emitted with an earlier one (block_strips) */
} ctx;

/* ---- the sticky status ---- */

static int ok(const ctx *c) { return c->status == FUSENET_OK; }

/* Records a failure and its message unless one is already pending. Calls
 * that return a status themselves are written `if (ok(c)) c->status = call;`. */
static void fail(ctx *c, fusenet_status status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(ctx *c, fusenet_status status, const char *fmt, ...) {
    if (!ok(c)) return;
    c->status = status;
    if (!c->err) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err->message, sizeof c->err->message, fmt, ap);
    va_end(ap);
    fusenet__one_line(c->err->message);
    c->err->status = status;
}

static void check_dnnl(ctx *c, dnnl_status_t s, const char *layer, const char *what) {
    if (s != dnnl_success && ok(c)) c->status = fusenet__dnnl_error(c->err, s, layer, what);
}

/* ---- values and steps ---- */

/* A new value; its buffer (owned values) is allocated by bind, after the size check. */
static int add_value(ctx *c, fn_value_kind kind, size_t size) {
    fusenet_net *net = c->net;
    if (!ok(c)) return -1;
    fn_value *grown = fusenet__grow(net->values, (size_t)net->n_values, &net->cap_values, sizeof *grown, 64);
    if (!grown) {
        fail(c, FUSENET_ERR_NOMEM, "out of memory building the net");
        return -1;
    }
    net->values = grown;
    fn_value *v = &net->values[net->n_values];
    memset(v, 0, sizeof *v);
    v->kind = kind;
    v->size = (size + 63) & ~(size_t)63;
    v->first = v->last = -1;
    return net->n_values++;
}

/* Value v holds at least size bytes (before the memory plan). */
static void grow_value(ctx *c, int v, size_t size) {
    if (!ok(c) || v < 0) return;
    size = (size + 63) & ~(size_t)63;
    if (c->net->values[v].size < size) c->net->values[v].size = size;
}

static int arena_value(ctx *c, const dnnl_memory_desc_t *md) {
    return add_value(c, FN_VALUE_ARENA, dnnl_memory_desc_get_size(md));
}

const char *fusenet__step_kind_name(fn_step_kind kind) {
    static const char *const names[] = {"compute", "reorder", "tap", "resize", "concat"};
    return (unsigned)kind < sizeof names / sizeof *names ? names[kind] : "?";
}

/* A new step of `kind` producing node's value (node -1: the fuse head), with
 * room for n_args arguments plus a scratchpad. NULL once a failure is pending. */
static fn_step *add_step(ctx *c, fn_step_kind kind, int node, int n_args) {
    fusenet_net *net = c->net;
    if (!ok(c)) return NULL;
    fn_step *grown = fusenet__grow(net->steps, (size_t)net->n_steps, &net->cap_steps, sizeof *grown, 64);
    if (!grown) {
        fail(c, FUSENET_ERR_NOMEM, "out of memory building the net");
        return NULL;
    }
    net->steps = grown;
    fn_step *s = &net->steps[net->n_steps];
    memset(s, 0, sizeof *s);
    s->cap_args = n_args + 1;
    s->args = fusenet__calloc((size_t)s->cap_args, sizeof *s->args);
    s->exec = fusenet__calloc((size_t)s->cap_args, sizeof *s->exec);
    net->n_steps++; /* freed with the net from here on */
    if (!s->args || !s->exec) {
        fail(c, FUSENET_ERR_NOMEM, "out of memory building the net");
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

/* Appends an argument (none to a NULL step); one past the room reserved by
 * add_step is counted but not written, and check_args refuses the step. */
static void step_arg_at(fn_step *s, int kind, int value, const dnnl_memory_desc_t *md, size_t offset) {
    if (!s) return;
    if (s->nargs < s->cap_args) {
        s->args[s->nargs].kind = kind;
        s->args[s->nargs].value = value;
        s->args[s->nargs].md = *md;
        s->args[s->nargs].offset = offset;
    }
    s->nargs++;
}

static void step_arg(fn_step *s, int kind, int value, const dnnl_memory_desc_t *md) { step_arg_at(s, kind, value, md, 0); }

static void check_args(ctx *c, const fn_step *s) {
    if (s && s->nargs > s->cap_args)
        fail(c, FUSENET_ERR_BACKEND, "layer %s: step has %d arguments, room for %d", s->layer, s->nargs, s->cap_args);
}

/* Turns the primitive descriptor into the step's primitive and accounts its
 * scratchpad; releases pd in every case. */
static void finish_step(ctx *c, fn_step *s, dnnl_primitive_desc_t pd) {
    if (ok(c) && s && pd) {
        const dnnl_memory_desc_t *sp = fusenet__pd_md(pd, dnnl_query_scratchpad_md, 0);
        size_t sp_size = sp ? dnnl_memory_desc_get_size(sp) : 0;
        if (sp_size > c->net->scratch_size) c->net->scratch_size = sp_size;
        if (sp_size) step_arg(s, DNNL_ARG_SCRATCHPAD, c->net->scratch_value, sp);
        snprintf(s->impl, sizeof s->impl, "%s", fusenet__pd_impl(pd));
        check_args(c, s);
        if (ok(c)) check_dnnl(c, dnnl_primitive_create(&s->prim, pd), s->layer, "primitive creation");
    }
    if (pd) dnnl_primitive_desc_destroy(pd);
}

/* The md a primitive descriptor gives for `what` (zeroes once a failure is pending). */
static dnnl_memory_desc_t pd_md(const ctx *c, const_dnnl_primitive_desc_t pd, dnnl_query_t what, int index) {
    dnnl_memory_desc_t md;
    memset(&md, 0, sizeof md);
    if (ok(c) && pd) md = *fusenet__pd_md(pd, what, index);
    return md;
}

static int is_int8(const dnnl_memory_desc_t *md) { return md->data_type == dnnl_u8 || md->data_type == dnnl_s8; }

/* md with another data type of the same layout. */
static dnnl_memory_desc_t with_type(const dnnl_memory_desc_t *md, dnnl_data_type_t dt) {
    dnnl_memory_desc_t r = *md;
    r.data_type = dt;
    return r;
}

/* The value of node i in layout and data type want (int8: with scale
 * want_scale): the node's own value, or a reorder of it that rescales. */
static int value_as_q(ctx *c, int i, const dnnl_memory_desc_t *want, float want_scale) {
    if (!ok(c)) return -1;
    const node_state *n = &c->ns[i];
    float from = is_int8(&n->md) ? n->scale : 1.0f, to = is_int8(want) ? want_scale : 1.0f;
    if (dnnl_memory_desc_equal(&n->md, want) && from == to) return n->value;
    if (n->alt_value >= 0 && dnnl_memory_desc_equal(&n->alt_md, want) && n->alt_scale == to) return n->alt_value;
    dnnl_primitive_desc_t pd = NULL;
    if (from == to)
        c->status = fusenet__op_reorder(c->net->eng, &n->md, want, c->g->nodes[i].name, &pd, c->err);
    else
        c->status = fusenet__op_reorder_scaled(c->net->eng, &n->md, want, from / to, c->g->nodes[i].name, &pd, c->err);
    int v = arena_value(c, want);
    fn_step *s = add_step(c, FN_STEP_REORDER, i, 2);
    step_arg(s, DNNL_ARG_FROM, n->value, &n->md);
    step_arg(s, DNNL_ARG_TO, v, want);
    finish_step(c, s, pd);
    if (ok(c)) {
        c->ns[i].alt_value = v;
        c->ns[i].alt_md = *want;
        c->ns[i].alt_scale = to;
    }
    return v;
}

static int value_as(ctx *c, int i, const dnnl_memory_desc_t *want) { return value_as_q(c, i, want, 1.0f); }

/* Node i's value becomes float32 in its layout (a dequantizing reorder if it is int8). */
static void to_f32(ctx *c, int i) {
    if (!ok(c) || !is_int8(&c->ns[i].md)) return;
    dnnl_memory_desc_t f = with_type(&c->ns[i].md, dnnl_f32);
    int v = value_as(c, i, &f);
    if (!ok(c)) return;
    c->ns[i].value = v;
    c->ns[i].md = f;
    c->ns[i].scale = 1.0f;
}

/* Copies host floats laid out as `user` into a new net-owned buffer laid out as `want`.
 * A net never computes with NaN or Inf weights (from a model loaded with
 * allow_nonfinite, or BatchNorm folding that overflowed): VALUE. */
static void check_finite(ctx *c, const float *host, size_t count, const char *layer) {
    size_t bad = ok(c) ? fusenet__first_nonfinite(host, count) : count;
    if (bad < count)
        fail(c, FUSENET_ERR_VALUE, "layer %s: a weight is %s (flat index %zu): a net is built only from finite weights",
             layer, fusenet__nonfinite_name(host[bad]), bad);
}

/* Copies host data of any type laid out as `user` into a new net-owned buffer laid out as `want`. */
static int upload_raw(ctx *c, const void *host, const dnnl_memory_desc_t *user, const dnnl_memory_desc_t *want,
                      const char *layer) {
    int v = add_value(c, FN_VALUE_OWNED, dnnl_memory_desc_get_size(want));
    if (v < 0) return -1;
    fn_value *val = &c->net->values[v];
    val->own = fusenet__aligned_alloc(val->size);
    if (!val->own) {
        fail(c, FUSENET_ERR_NOMEM, "out of memory allocating %zu bytes of weights for layer %s", val->size, layer);
        return -1;
    }
    c->net->weights_bytes += val->size;
    if (dnnl_memory_desc_equal(user, want)) {
        memcpy(val->own, host, dnnl_memory_desc_get_size(user));
        return v;
    }
    if (dnnl_memory_desc_get_size(want) != dnnl_memory_desc_get_size(user))
        memset(val->own, 0, val->size); /* a blocked layout's padding stays zero (else the reorder writes every byte) */
    /* On one thread (oneDNN fixes a reorder's team when it is created): a weights reorder
     * is a short copy, and a team spinning at its barriers costs more than it saves
     * (README, start-up). */
    int saved = fusenet__threads_enter(1);
    dnnl_primitive_desc_t pd = NULL;
    c->status = fusenet__op_reorder_once(c->net->eng, user, want, layer, &pd, c->err);
    if (!ok(c)) {
        fusenet__threads_leave(saved);
        return -1;
    }
    dnnl_memory_t src = NULL, dst = NULL;
    dnnl_primitive_t prim = NULL;
    dnnl_status_t s = dnnl_memory_create(&src, user, c->net->eng, (void *)host);
    if (s == dnnl_success) s = dnnl_memory_create(&dst, want, c->net->eng, val->own);
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
    fusenet__threads_leave(saved);
    check_dnnl(c, s, layer, "weights reorder");
    return v;
}

static int upload(ctx *c, const float *host, const dnnl_memory_desc_t *user, const dnnl_memory_desc_t *want,
                  const char *layer) {
    if (ok(c)) check_finite(c, host, dnnl_memory_desc_get_size(user) / sizeof *host, layer);
    return upload_raw(c, host, user, want, layer);
}

/* BatchNorm divides by sqrt(moving_variance + epsilon): its scale
 * gamma / sqrt(var + eps) must be finite (a variance of -epsilon or less
 * gives Inf or NaN, which a fused ReLU would turn into plausible numbers). */
static void check_bn_scale(ctx *c, const fn_node *bn, int channels) {
    for (int o = 0; o < channels && ok(c); o++) {
        double var = (double)bn->w[3][o], a = (double)bn->w[0][o] / sqrt(var + (double)bn->epsilon);
        if (!isfinite((float)a))
            fail(c, FUSENET_ERR_VALUE,
                 "layer %s: gamma / sqrt(moving_variance + epsilon) is not finite at channel %d "
                 "(moving_variance %g, epsilon %g)",
                 bn->name, o, var, (double)bn->epsilon);
    }
}

static int upload_vector(ctx *c, const float *host, int64_t count, const char *layer) {
    dnnl_memory_desc_t md;
    dnnl_dims_t dims = {count};
    dnnl_memory_desc_init_by_tag(&md, 1, dims, dnnl_f32, dnnl_x);
    return upload(c, host, &md, &md, layer);
}

/* Of a model handed over to the build, the raw Keras weights of node i are
 * released once the net holds its own (reordered) copy, so a one-shot build
 * never holds both. */
static void release_weights(ctx *c, int i) {
    if (!c->owned || !ok(c) || i < 0) return;
    fusenet__model_release(c->owned, i, 0);
}

/* The weights of node i, read now if the model handed over defers them (model.h). */
static void fetch_weights(ctx *c, int i) {
    if (c->owned && ok(c) && i >= 0) c->status = fusenet__model_fetch(c->owned, i, c->err);
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

/* The output a tap of node i has: (n, h, w, c), h = w = 1 for flat values. */
static fn_tap_out tap_out(const fn_plan *plan, int i, int batch) {
    const fn_shape *s = &plan->shapes[i];
    return (fn_tap_out){-1, batch, s->flat ? 1 : s->h, s->flat ? 1 : s->w, s->c};
}

/* The fused map's size: the taps' smallest (or largest) H and W, or the explicit size; channels add up. */
static fn_tap_out fused_out(const fusenet_net_params *p, const fn_tap_out *taps, int n) {
    fn_tap_out o = {-1, taps[0].n, taps[0].h, taps[0].w, 0};
    for (int t = 0; t < n; t++) {
        int max = p->size == FUSENET_SIZE_MAX;
        if (max ? taps[t].h > o.h : taps[t].h < o.h) o.h = taps[t].h;
        if (max ? taps[t].w > o.w : taps[t].w < o.w) o.w = taps[t].w;
        o.c += taps[t].c;
    }
    if (p->size == FUSENET_SIZE_EXPLICIT) {
        o.h = p->out_h;
        o.w = p->out_w;
    }
    return o;
}

/* After node i is materialised: copy it to each tap buffer that asked for it. */
static void emit_taps(ctx *c, int i) {
    if (!c->plan->nodes[i].tapped) return;
    const node_state *x = &c->ns[i];
    for (int k = 0; k < c->n_model_taps; k++) {
        if (c->tap_node[k] != i || !ok(c)) continue;
        fn_tap_out *t = &c->net->taps[c->tap_slot[k]];
        *t = tap_out(c->plan, i, c->batch);
        dnnl_memory_desc_t want;
        tap_md(t, c->plan->shapes[i].flat && x->md.ndims == 2, &want);
        t->value = add_value(c, FN_VALUE_OWNED, dnnl_memory_desc_get_size(&want));
        dnnl_primitive_desc_t pd = NULL;
        if (ok(c) && is_int8(&x->md)) /* dequantized */
            c->status = fusenet__op_reorder_scaled(c->net->eng, &x->md, &want, x->scale, c->g->nodes[i].name, &pd, c->err);
        else if (ok(c))
            c->status = fusenet__op_reorder(c->net->eng, &x->md, &want, c->g->nodes[i].name, &pd, c->err);
        fn_step *step = add_step(c, FN_STEP_TAP, i, 2);
        if (step) step->tap = c->tap_slot[k];
        step_arg(step, DNNL_ARG_FROM, x->value, &x->md);
        step_arg(step, DNNL_ARG_TO, t->value, &want);
        finish_step(c, step, pd);
    }
}

static void set_node_q(ctx *c, int i, int value, const dnnl_memory_desc_t *md, float scale) {
    if (!ok(c)) return;
    c->ns[i].value = value;
    c->ns[i].alt_value = -1;
    c->ns[i].md = *md;
    c->ns[i].scale = is_int8(md) ? scale : 1.0f;
    emit_taps(c, i);
}

static void set_node(ctx *c, int i, int value, const dnnl_memory_desc_t *md) { set_node_q(c, i, value, md, 1.0f); }

/* ---- int8: what the calibration says of a node's value ---- */

static const fn_calib_layer *calib_layer(ctx *c, int i) {
    if (!ok(c)) return NULL;
    const fn_calib_layer *l = fusenet__calib_find(c->cal, c->cal_model, c->g->nodes[i].name);
    if (!l)
        fail(c, FUSENET_ERR_INVALID_ARG,
             "calibration: no statistics of %s layer %s, which the int8 net quantizes (the calibration was made "
             "for other taps or another version: run fusenet calibrate for this net)",
             fusenet__arch_name(c->model->arch), c->g->nodes[i].name);
    return l;
}

/* u8 for values never negative over the calibration images (or after a ReLU), s8 otherwise. */
static int calib_unsigned(ctx *c, int i) {
    const fn_calib_layer *l = calib_layer(c, i);
    return l && l->min >= 0.0;
}

static float calib_scale(ctx *c, int i, int is_unsigned) {
    const fn_calib_layer *l = calib_layer(c, i);
    return l ? fusenet__calib_scale(c->cal, l, is_unsigned) : 1.0f;
}

/* AUTO keeps node i's value float32: the calibration measured 8 bits as too lossy for it. */
static int auto_fp32(ctx *c, int i) {
    if (c->int8_layers != FUSENET_INT8_AUTO) return 0;
    const fn_calib_layer *l = calib_layer(c, i);
    return l && l->keep_fp32;
}

/* Does this conv run in int8? Not in an fp32 trunk, not the input conv (it
 * reads the caffe-preprocessed input, whose rounding alone costs the ResNet
 * branch 0.02-0.04 of cosine), not where AUTO keeps its source float32. */
static int conv_int8(ctx *c, const fn_chain *ch) {
    if (!c->int8 || c->plan->nodes[ch->src].role == FN_ROLE_INPUT) return 0;
    if (c->g->nodes[ch->head].filters > FN_QUANT_MAX_FILTERS) return 0;
    return !auto_fp32(c, ch->src);
}

/* An int8 conv's source: the node's value if it is int8, else quantized with its calibrated scale. */
static void quantized_src(ctx *c, int i, dnnl_data_type_t *dt, float *scale) {
    const node_state *x = &c->ns[i];
    if (is_int8(&x->md)) {
        *dt = x->md.data_type;
        *scale = x->scale;
        return;
    }
    int u = calib_unsigned(c, i);
    *dt = u ? dnnl_u8 : dnnl_s8;
    *scale = calib_scale(c, i, u);
}

/* ---- op emitters: one per head op ---- */

/* A value in the layout a step reads or writes it in. */
typedef struct fn_arg_ref {
    int value;
    dnnl_memory_desc_t md;
} fn_arg_ref;

/* The compute step of conv chain ch from primitive pd: src, weights and bias
 * into dst, `flops` of work (releases pd). */
static void conv_step(ctx *c, const fn_chain *ch, double flops, dnnl_primitive_desc_t pd, fn_arg_ref src,
                      fn_arg_ref w, fn_arg_ref b, fn_arg_ref dst) {
    fn_step *s = add_step(c, FN_STEP_COMPUTE, ch->end, 4);
    if (s) {
        s->first = ch->head;
        s->flops = flops;
    }
    step_arg(s, DNNL_ARG_SRC, src.value, &src.md);
    step_arg(s, DNNL_ARG_WEIGHTS, w.value, &w.md);
    step_arg(s, DNNL_ARG_BIAS, b.value, &b.md);
    step_arg(s, DNNL_ARG_DST, dst.value, &dst.md);
    finish_step(c, s, pd);
}

/* Rows [lo, hi) of the input a stride-1 window (top padding pt, height kh) reads for output rows [a, e),
 * clipped to the input's n rows, and the padding left above and below them. */
static void window_rows(int a, int e, int pt, int kh, int n, int *lo, int *hi, dnnl_dim_t *pad_t, dnnl_dim_t *pad_b) {
    *lo = a - pt > 0 ? a - pt : 0;
    *hi = e - 1 - pt + kh < n ? e - 1 - pt + kh : n;
    *pad_t = *lo - (a - pt);
    *pad_b = (e - 1 - pt + kh) - *hi;
}

/* Uploads a strip conv's weights and bias the first time (later strips take the same layout). */
static void strip_weights(ctx *c, const fn_node *n, int cin, dnnl_primitive_desc_t pd, const float *w, const float *b,
                          int *w_value, dnnl_memory_desc_t *w_md, int *b_value, dnnl_memory_desc_t *b_md) {
    if (*w_value >= 0 || !ok(c)) return;
    dnnl_memory_desc_t w_user;
    fusenet__md4(&w_user, n->filters, cin, n->kh, n->kw, dnnl_hwio); /* Keras (kh, kw, in, out) */
    *w_md = pd_md(c, pd, dnnl_query_weights_md, 0);
    *b_md = pd_md(c, pd, dnnl_query_weights_md, 1);
    *w_value = upload(c, w, &w_user, w_md, n->name);
    *b_value = upload(c, b, b_md, b_md, n->name);
}

/* Has a value laid out as md whole rows to view in place? (a blocked layout
 * whose H, dimension 2, is not one of the blocked dimensions) */
static int has_rows(const dnnl_memory_desc_t *md) {
    if (md->format_kind != dnnl_blocked || md->offset0 != 0) return 0;
    for (int k = 0; k < md->format_desc.blocking.inner_nblks; k++)
        if (md->format_desc.blocking.inner_idxs[k] == 2) return 0;
    return 1;
}

/* Rows [lo, hi) of a value laid out as md (has_rows) as a view: *view, and its byte offset in the value. */
static size_t rows_view(const dnnl_memory_desc_t *md, int lo, int hi, dnnl_memory_desc_t *view) {
    *view = *md;
    view->dims[2] = view->padded_dims[2] = hi - lo;
    return (size_t)lo * (size_t)md->format_desc.blocking.strides[2] * dnnl_data_type_size(md->data_type);
}

/* The step copying rows [lo, hi) of node i's value (has_rows) into `band`,
 * in the layout md a strip's conv reads. */
static void band_step(ctx *c, int i, int lo, int hi, int band, const dnnl_memory_desc_t *md, const char *layer) {
    dnnl_memory_desc_t rows;
    size_t at = rows_view(&c->ns[i].md, lo, hi, &rows);
    dnnl_primitive_desc_t pd = NULL;
    if (ok(c)) c->status = fusenet__op_reorder(c->net->eng, &rows, md, layer, &pd, c->err);
    fn_step *s = add_step(c, FN_STEP_REORDER, i, 2);
    step_arg_at(s, DNNL_ARG_FROM, c->ns[i].value, &rows, at);
    step_arg(s, DNNL_ARG_TO, band, md);
    finish_step(c, s, pd);
}

/* Row strips (int8 nets): the float32 input conv of an int8 trunk (VGG16's
 * block1_conv1: 224 x 224 x 64 floats, 12.8 MB an image) writes its output
 * fusenet__row_strips row strips at a time into one strip-sized buffer, each
 * strip quantized at once into its rows of the int8 value its consumers read,
 * so the whole float32 output never exists. Each strip is the same conv on a
 * band of the input and its halo rows, the padding only at the image's top
 * and bottom (byte-identical to the whole conv on AVX2, measured; oneDNN does
 * not promise the same rounding for another shape, so a value on a level
 * boundary may land one level away). Taken when: one image per step, stride 1, no residual sum,
 * the output not tapped and read only by int8 convs, the source float32 NHWC
 * (the caller's input). Returns the number of strips, 0 when not taken. */
#ifndef FN_ROW_STRIPS
#define FN_ROW_STRIPS 4
#endif
int fusenet__row_strips = FN_ROW_STRIPS;

static int int8_strips(ctx *c, const fn_chain *ch) {
    int strips = fusenet__row_strips;
    const fn_graph *g = c->g;
    const fn_plan *p = c->plan;
    const fn_node *n = &g->nodes[ch->head];
    const fn_shape *out = &p->shapes[ch->head];
    if (strips < 2 || !ok(c) || !c->int8 || c->batch != 1 || n->stride != 1 || ch->shortcut >= 0 ||
        p->nodes[ch->end].tapped || p->nodes[ch->end].consumers == 0 || out->h < 2 * strips)
        return 0;
    for (int j = ch->end + 1; j < g->n; j++) {
        if (p->nodes[j].role == FN_ROLE_DEAD) continue;
        for (int k = 0; k < g->nodes[j].n_in; k++) {
            if (g->nodes[j].in[k] != ch->end) continue;
            const fn_chain *cj = p->nodes[j].chain >= 0 ? &p->chains[p->nodes[j].chain] : NULL;
            if (!cj || cj->head != j || g->nodes[j].op != FN_OP_CONV2D || cj->src != ch->end || !conv_int8(c, cj))
                return 0;
        }
    }
    const fn_shape *in = &p->shapes[ch->src];
    dnnl_memory_desc_t nhwc;
    fusenet__md4(&nhwc, 1, in->c, in->h, in->w, dnnl_nhwc);
    return dnnl_memory_desc_equal(&c->ns[ch->src].md, &nhwc) ? strips : 0;
}

/* The conv of chain ch (float32, desc d built for the whole output; w and b
 * folded) as `strips` row strips, each quantized into the int8 value of ch's
 * end (int8_strips). */
static void compile_conv_strips(ctx *c, const fn_chain *ch, const fn_conv_desc *d, const float *w, const float *b,
                                int strips) {
    const fn_node *n = &c->g->nodes[ch->head];
    const fn_shape *in = &c->plan->shapes[ch->src], *out = &c->plan->shapes[ch->head];
    dnnl_data_type_t qdt;
    float qscale;
    quantized_src(c, ch->end, &qdt, &qscale);
    dnnl_memory_desc_t q_md;
    fusenet__md4(&q_md, 1, n->filters, out->h, out->w, dnnl_nhwc);
    q_md.data_type = qdt;
    int q_value = arena_value(c, &q_md), w_value = -1, b_value = -1;
    int band_value = add_value(c, FN_VALUE_ARENA, 0), strip_value = add_value(c, FN_VALUE_ARENA, 0); /* sized below: */
    dnnl_memory_desc_t w_md, b_md;                                                                 /* the tallest strip's */
    int rows = (out->h + strips - 1) / strips;
    for (int a = 0; a < out->h && ok(c); a += rows) {
        int e = a + rows < out->h ? a + rows : out->h; /* output rows [a, e) */
        int lo, hi;                                     /* their input rows [lo, hi) */
        fn_conv_desc sd = *d;
        window_rows(a, e, (int)d->pad_l[0], n->kh, in->h, &lo, &hi, &sd.pad_l[0], &sd.pad_r[0]);
        dnnl_memory_desc_t src_any, dst_any, q_rows;
        fusenet__md4(&src_any, 1, in->c, hi - lo, in->w, dnnl_format_tag_any);
        fusenet__md4(&dst_any, 1, n->filters, e - a, out->w, dnnl_format_tag_any);
        size_t q_at = rows_view(&q_md, a, e, &q_rows); /* rows [a, e) of the int8 value, in place */
        sd.src = &src_any;
        sd.dst = &dst_any;
        sd.weights = w_value >= 0 ? &w_md : NULL;
        dnnl_primitive_desc_t pd = NULL;
        c->status = fusenet__op_conv(c->net->eng, &sd, n->name, &pd, c->err);
        dnnl_memory_desc_t src_md = pd_md(c, pd, dnnl_query_src_md, 0), dst_md = pd_md(c, pd, dnnl_query_dst_md, 0);
        strip_weights(c, n, in->c, pd, w, b, &w_value, &w_md, &b_value, &b_md);
        grow_value(c, band_value, dnnl_memory_desc_get_size(&src_md));
        grow_value(c, strip_value, dnnl_memory_desc_get_size(&dst_md));
        band_step(c, ch->src, lo, hi, band_value, &src_md, n->name); /* the band of input rows, in the conv's layout */
        conv_step(c, ch, 2.0 * (double)(e - a) * out->w * (double)n->filters * n->kh * n->kw * in->c, pd,
                  (fn_arg_ref){band_value, src_md}, (fn_arg_ref){w_value, w_md}, (fn_arg_ref){b_value, b_md},
                  (fn_arg_ref){strip_value, dst_md});
        pd = NULL;
        if (ok(c))
            c->status = fusenet__op_reorder_scaled(c->net->eng, &dst_md, &q_rows, 1.0f / qscale, n->name, &pd, c->err);
        fn_step *s = add_step(c, FN_STEP_REORDER, ch->end, 2);
        step_arg(s, DNNL_ARG_FROM, strip_value, &dst_md);
        step_arg_at(s, DNNL_ARG_TO, q_value, &q_rows, q_at);
        finish_step(c, s, pd);
    }
    set_node_q(c, ch->end, q_value, &q_md, qscale);
}

/* The conv of chain ch's weights with its BatchNorm folded in, fetched from
 * the file first when the model defers them: a model handed over to the
 * build is folded in place (*own 1; its raw weights are released by
 * done_conv_weights), others are copied. */
static void conv_weights(ctx *c, const fn_chain *ch, float **w, float **b, int *own) {
    const fn_node *n = &c->g->nodes[ch->head];
    const fn_shape *in = &c->plan->shapes[ch->src];
    size_t kelems = (size_t)n->kh * n->kw * (size_t)in->c * (size_t)n->filters;
    fetch_weights(c, ch->head);
    fetch_weights(c, ch->bn);
    fn_node *mine = c->owned ? &c->owned->g.nodes[ch->head] : NULL;
    *own = mine != NULL;
    *w = mine ? mine->w[0] : ok(c) ? fusenet__malloc(kelems * sizeof **w) : NULL;
    *b = mine ? mine->w[1] : ok(c) ? fusenet__malloc((size_t)n->filters * sizeof **b) : NULL;
    if (ok(c) && (!*w || !*b)) fail(c, FUSENET_ERR_NOMEM, "out of memory folding layer %s", n->name);
    if (!ok(c)) return;
    if (!mine) {
        memcpy(*w, n->w[0], kelems * sizeof **w);
        memcpy(*b, n->w[1], (size_t)n->filters * sizeof **b);
    }
    if (ch->bn >= 0) {
        const fn_node *bn = &c->g->nodes[ch->bn];
        check_bn_scale(c, bn, n->filters);
        fusenet__fold_batch_norm(*w, *b, kelems, n->filters, bn->w[0], bn->w[1], bn->w[2], bn->w[3], bn->epsilon);
    }
}

/* Frees conv_weights' copies and releases the raw weights of a handed-over model. */
static void done_conv_weights(ctx *c, const fn_chain *ch, float *w, float *b, int own) {
    if (!own) {
        fusenet__free(w);
        fusenet__free(b);
    }
    release_weights(c, ch->head);
    release_weights(c, ch->bn);
}

/* The conv's shape, window and post-ops (float32; src and dst left to the caller). */
static void conv_geometry(const ctx *c, const fn_chain *ch, fn_conv_desc *d) {
    const fn_node *n = &c->g->nodes[ch->head];
    memset(d, 0, sizeof *d);
    d->weights_dims[0] = n->filters;
    d->weights_dims[1] = c->plan->shapes[ch->src].c;
    d->weights_dims[2] = n->kh;
    d->weights_dims[3] = n->kw;
    d->out_c = n->filters;
    d->strides[0] = d->strides[1] = n->stride;
    for (int k = 0; k < 2; k++) {
        d->pad_l[k] = ch->pad_l[k];
        d->pad_r[k] = ch->pad_r[k];
    }
    d->relu = ch->relu_post;
    d->winograd = c->mode == FUSENET_MODE_FAST && n->kh == 3 && n->kw == 3 && n->stride == 1;
    d->sum_scale = 1.0f;
}

/* The chain whose head is the only reader of node i's value, as its source;
 * NULL when i is tapped or read by anything else. */
static const fn_chain *only_reader(const ctx *c, int i) {
    const fn_plan *p = c->plan;
    if (p->nodes[i].tapped || p->nodes[i].consumers != 1) return NULL;
    for (int j = i + 1; j < c->g->n; j++) {
        if (p->nodes[j].role == FN_ROLE_DEAD) continue;
        for (int k = 0; k < c->g->nodes[j].n_in; k++)
            if (c->g->nodes[j].in[k] == i) {
                const fn_chain *cj = p->nodes[j].chain >= 0 ? &p->chains[p->nodes[j].chain] : NULL;
                return cj && cj->head == j && cj->src == i ? cj : NULL;
            }
    }
    return NULL;
}

/* Does fast mode run chain ch on our own Winograd kernel? (float32, 3x3
 * stride 1, channels it takes, no residual sum) */
static int own_wino(const ctx *c, const fn_chain *ch) {
    const fn_node *n = &c->g->nodes[ch->head];
    return c->own_wino && !c->int8 && ch->shortcut < 0 &&
           fusenet__wino_fits(c->plan->shapes[ch->src].c, n->filters, n->kh, n->kw, n->stride);
}

/* The kernel's shape for conv node n on an input of n_img x in_c x ih x iw giving oh x ow,
 * padded pad_t above and pad_l left, planned for the build's threads (which every run uses). */
static fn_wino wino_shape(const fn_node *n, int n_img, int in_c, int ih, int iw, int oh, int ow, int pad_t, int pad_l,
                          int relu) {
    fn_wino k = {.n = n_img, .c = in_c, .k = n->filters, .ih = ih, .iw = iw, .oh = oh, .ow = ow, .pad_t = pad_t,
                 .pad_l = pad_l, .relu = relu, .threads = omp_get_max_threads()};
    fusenet__wino_plan(&k);
    return k;
}

/* The net's copies of the folded weights w (Keras' kh, kw, in, out), transformed for the
 * kernel, into *u, and of the bias b into *bias. */
static void wino_weights(ctx *c, const fn_wino *k, const float *w, const float *b, const char *layer, fn_arg_ref *u,
                         fn_arg_ref *bias) {
    dnnl_dims_t u_dims = {(dnnl_dim_t)fusenet__wino_weights_floats(k)}, b_dims = {k->k};
    dnnl_memory_desc_init_by_tag(&u->md, 1, u_dims, dnnl_f32, dnnl_x);
    dnnl_memory_desc_init_by_tag(&bias->md, 1, b_dims, dnnl_f32, dnnl_x);
    if (ok(c)) check_finite(c, w, (size_t)9 * (size_t)k->c * (size_t)k->k, layer);
    u->value = add_value(c, FN_VALUE_OWNED, dnnl_memory_desc_get_size(&u->md));
    if (u->value >= 0) {
        fn_value *v = &c->net->values[u->value];
        v->own = fusenet__aligned_alloc(v->size);
        if (!v->own) {
            fail(c, FUSENET_ERR_NOMEM, "out of memory allocating %zu bytes of weights for layer %s", v->size, layer);
        } else {
            fusenet__wino_weights(k, w, v->own);
            c->net->weights_bytes += v->size;
        }
    }
    bias->value = upload(c, b, &bias->md, &bias->md, layer);
}

/* The step running conv chain ch on the kernel: src (nChw8c) into dst (nChw8c), `flops` of
 * work, with its share of the scratchpad; it produces node end's value (ch->end, or the
 * pool's end when the kernel takes the pool after it). */
static void wino_step(ctx *c, const fn_chain *ch, int end, const fn_wino *k, double flops, fn_arg_ref src,
                      fn_arg_ref u, fn_arg_ref b, fn_arg_ref dst) {
    dnnl_memory_desc_t sp_md;
    dnnl_dims_t sp_dims = {(dnnl_dim_t)fusenet__wino_scratch_bytes(k)};
    dnnl_memory_desc_init_by_tag(&sp_md, 1, sp_dims, dnnl_u8, dnnl_x);
    if (ok(c) && fusenet__wino_scratch_bytes(k) > c->net->scratch_size)
        c->net->scratch_size = fusenet__wino_scratch_bytes(k);
    fn_step *s = add_step(c, FN_STEP_COMPUTE, end, 4); /* and the scratchpad */
    if (s) {
        s->first = ch->head;
        s->flops = flops;
        s->own_wino = 1;
        s->wino = *k;
        snprintf(s->impl, sizeof s->impl, "fusenet_wino_2x2_3x3:avx2");
    }
    step_arg(s, DNNL_ARG_SRC, src.value, &src.md);
    step_arg(s, DNNL_ARG_WEIGHTS, u.value, &u.md);
    step_arg(s, DNNL_ARG_BIAS, b.value, &b.md);
    step_arg(s, DNNL_ARG_DST, dst.value, &dst.md);
    step_arg(s, DNNL_ARG_SCRATCHPAD, c->net->scratch_value, &sp_md);
    check_args(c, s);
}

/* Is chain cp a 2x2 stride-2 unpadded MaxPooling2D alone (VGG16's blockN_pool)? */
static int pool_2x2(const ctx *c, const fn_chain *cp) {
    const fn_node *np = &c->g->nodes[cp->head];
    return np->op == FN_OP_MAX_POOL && cp->end == cp->head && np->kh == 2 && np->kw == 2 && np->stride == 2 &&
           !cp->pad_l[0] && !cp->pad_l[1] && !cp->pad_r[0] && !cp->pad_r[1];
}

int fusenet__own_pool = 1;

/* Our max pool (pool.h) of a kh x kw window at `stride`, pad_t rows above and pad_l columns
 * left, giving oh x ow, over md, an image batch's float32 values: where md is a dense nChw8c,
 * nChw16c or nhwc, its layout tag, and *k the pool (the output written into rows [0, oh) of
 * planes as tall); 0 otherwise (oneDNN's pool runs it). */
static dnnl_format_tag_t own_pool_shape(const dnnl_memory_desc_t *md, int kh, int kw, int stride, int pad_t,
                                        int pad_l, int oh, int ow, fn_pool *k) {
    static const struct {
        dnnl_format_tag_t tag;
        int block; /* lanes a plane, 0: every channel */
    } layouts[] = {{dnnl_nChw8c, 8}, {dnnl_nChw16c, 16}, {dnnl_nhwc, 0}};
    if (!fusenet__own_pool || md->ndims != 4 || md->data_type != dnnl_f32) return dnnl_format_tag_undef;
    for (size_t i = 0; i < sizeof layouts / sizeof *layouts; i++) {
        dnnl_memory_desc_t t;
        fusenet__md4(&t, md->dims[0], md->dims[1], md->dims[2], md->dims[3], layouts[i].tag);
        if (!dnnl_memory_desc_equal(md, &t)) continue;
        int lanes = layouts[i].block ? layouts[i].block : (int)md->dims[1];
        *k = (fn_pool){.planes = (int)(md->dims[0] * (md->padded_dims[1] / lanes)), .ih = (int)md->dims[2],
                       .iw = (int)md->dims[3], .lanes = lanes, .kh = kh, .kw = kw, .stride = stride,
                       .pad_t = pad_t, .pad_l = pad_l, .oh = oh, .ow = ow, .dst_h = oh,
                       .threads = omp_get_max_threads()};
        return layouts[i].tag;
    }
    return dnnl_format_tag_undef;
}

/* own_pool_shape for a 2x2 stride-2 unpadded pool over md. */
static dnnl_format_tag_t own_pool_2x2(const dnnl_memory_desc_t *md, fn_pool *k) {
    return own_pool_shape(md, 2, 2, 2, 0, 0, (int)md->dims[2] / 2, (int)md->dims[3] / 2, k);
}

/* The step running our max pool k from src into dst (their mds); it produces node's value. */
static void own_pool_step(ctx *c, int node, const fn_pool *k, int src, const dnnl_memory_desc_t *src_md, int dst,
                          const dnnl_memory_desc_t *dst_md) {
    fn_step *s = add_step(c, FN_STEP_COMPUTE, node, 2);
    if (s) {
        s->own_pool = 1;
        s->pool = *k;
        snprintf(s->impl, sizeof s->impl, "fusenet_max_pool");
    }
    step_arg(s, DNNL_ARG_SRC, src, src_md);
    step_arg(s, DNNL_ARG_DST, dst, dst_md);
    check_args(c, s);
}

int fusenet__wino_fuse_pool = 1;

/* The max pool our kernel can take into the output transform of conv chain ch: a 2x2
 * stride-2 unpadded MaxPooling2D (VGG16's blockN_pool after blockN_convM) that alone reads
 * ch's untapped output, with nothing emitted between them. Its chain, else NULL. A
 * micro-batched part ending at ch then ends after the pool (whose output is a quarter of
 * the conv's), unless the pool is tapped: then NULL. */
static const fn_chain *wino_pool(ctx *c, const fn_chain *ch) {
    const fn_chain *cp = fusenet__wino_fuse_pool ? only_reader(c, ch->end) : NULL;
    const fn_plan *pl = c->plan;
    if (!cp || !pool_2x2(c, cp)) return NULL;
    const fn_shape *out = &pl->shapes[ch->head], *po = &pl->shapes[cp->head];
    if (po->h != out->h / 2 || po->w != out->w / 2 || po->h < 1 || po->w < 1) return NULL;
    for (int j = ch->head + 1; j < cp->head; j++)
        if (pl->nodes[j].role == FN_ROLE_HEAD) return NULL;
    if (c->micro_cut >= 0 && c->micro_cut == pl->nodes[ch->head].chain) {
        if (pl->nodes[cp->end].tapped) return NULL;
        c->micro_cut = pl->nodes[cp->head].chain;
    }
    return cp;
}

/* Conv chain ch on our own Winograd kernel (winograd.h): source and
 * destination in nChw8c, the folded weights w (Keras' kh, kw, in, out) transformed
 * once, the bias b and the ReLU applied by its output transform, and the max pool
 * after it where wino_pool finds one (the conv's own output then never exists). */
static void compile_wino(ctx *c, const fn_chain *ch, const float *w, const float *b) {
    const fn_node *n = &c->g->nodes[ch->head];
    const fn_shape *in = &c->plan->shapes[ch->src], *out = &c->plan->shapes[ch->head];
    const fn_chain *cp = wino_pool(c, ch);
    fn_wino k = wino_shape(n, c->batch, in->c, in->h, in->w, out->h, out->w, (int)ch->pad_l[0], (int)ch->pad_l[1],
                           ch->relu_post);
    k.pool = cp != NULL;
    fn_arg_ref src = {-1, {0}}, dst = {-1, {0}}, u, bias;
    fusenet__md4(&src.md, c->batch, in->c, in->h, in->w, dnnl_nChw8c);
    fusenet__md4(&dst.md, c->batch, n->filters, cp ? out->h / 2 : out->h, cp ? out->w / 2 : out->w, dnnl_nChw8c);
    src.value = value_as(c, ch->src, &src.md);
    wino_weights(c, &k, w, b, n->name, &u, &bias);
    dst.value = arena_value(c, &dst.md);
    wino_step(c, ch, cp ? cp->end : ch->end, &k,
              2.0 * (double)c->batch * out->h * out->w * (double)n->filters * n->kh * n->kw * in->c, src, u, bias, dst);
    set_node(c, cp ? cp->end : ch->end, dst.value, &dst.md);
    if (cp) c->skip_until = cp->head;
}

/* Row strips (float32 nets): a trunk's first block, when it is conv -> conv
 * -> 2x2 max pool on the caller's input (VGG16's and VGG19's block1: two
 * 224 x 224 x 64 float32 maps, 25.7 MB an image, the largest values of the
 * dual net), runs as strips of ceil(rows / fusenet__row_strips) of the
 * pool's output rows (the last one shorter; fewer strips when that leaves
 * the last one empty): each strip's band of input rows and halo rows goes through both convs and
 * the pool into strip-sized buffers, and its pooled rows are copied into the
 * pool's output, so neither conv's whole output ever exists. A strip's first
 * conv recomputes the two rows it shares with the next strip (its second
 * conv's halo); the FLOPs reported count each output row once. Each strip's
 * convs are the same convs on fewer rows, padded only at the image's top and
 * bottom (oneDNN sums each output over the same taps in the same order
 * whatever the rows: measured byte-identical to the whole convs on AVX2).
 * Taken when: float32, one image per step, stride-1 convs without residual
 * sums, neither conv's output tapped or read by anything but the next op,
 * no other op between them, the pool 2x2 stride 2 unpadded, and the first
 * conv reading the caller's input. (band_step reads any source whose rows
 * can be viewed: VGG16's block2 in strips through it saved 5.5 MB of arena
 * at 8 strips but measured 3-4% slower over the dual net at batch 1, AVX2:
 * the band copy and the recomputed rows of a 64-channel conv; so block1
 * only.) A micro-batched part ending at
 * either conv then ends after the pool (whose output is a quarter of the
 * conv's), unless the pool is tapped: then no strips. Returns the number of
 * strips, 0 when not taken; *b and *p: the second conv's chain and the
 * pool's. */
static int block_strips(ctx *c, const fn_chain *a, const fn_chain **b, const fn_chain **p) {
    const fn_graph *g = c->g;
    const fn_plan *pl = c->plan;
    int strips = fusenet__row_strips;
    *b = *p = NULL;
    if (strips < 2 || !ok(c) || c->int8 || c->batch != 1) return 0;
    const fn_chain *cb = only_reader(c, a->end), *cp = cb ? only_reader(c, cb->end) : NULL;
    if (!cp || g->nodes[a->head].op != FN_OP_CONV2D || g->nodes[cb->head].op != FN_OP_CONV2D || !pool_2x2(c, cp))
        return 0;
    const fn_node *na = &g->nodes[a->head], *nb = &g->nodes[cb->head];
    if (na->stride != 1 || nb->stride != 1 || a->shortcut >= 0 || cb->shortcut >= 0 ||
        pl->shapes[cp->head].h < 2 * strips)
        return 0;
    for (int j = a->head + 1; j < cp->head; j++) /* nothing else emitted in between */
        if (pl->nodes[j].role == FN_ROLE_HEAD && j != cb->head) return 0;
    int cut_inside = c->micro_cut >= 0 &&
                     (c->micro_cut == pl->nodes[a->head].chain || c->micro_cut == pl->nodes[cb->head].chain);
    if (cut_inside && pl->nodes[cp->end].tapped) return 0;
    const dnnl_memory_desc_t *src = &c->ns[a->src].md;
    if (c->ns[a->src].value != c->input_value || !has_rows(src)) return 0;
    *b = cb;
    *p = cp;
    if (cut_inside) c->micro_cut = pl->nodes[cp->head].chain; /* the micro-batched part ends after the pool instead */
    return strips;
}

/* Chains ca (conv), cb (conv) and cp (2x2 max pool) as `strips` row strips
 * (block_strips); da: ca's desc for the whole image, wa and ba its folded
 * weights. Where fast mode runs on our Winograd kernel, cb's strips do, the
 * pool taken into their output transform (each strip starts on an even output
 * row, so its 2x2 tiles are the whole conv's and the pool's windows, and its
 * outputs the same bytes: test_winograd). */
static void compile_block_strips(ctx *c, const fn_chain *ca, const fn_conv_desc *da, const float *wa, const float *ba,
                                 const fn_chain *cb, const fn_chain *cp, int strips) {
    const fn_node *na = &c->g->nodes[ca->head], *nb = &c->g->nodes[cb->head], *np = &c->g->nodes[cp->head];
    const fn_shape *in = &c->plan->shapes[ca->src], *sa = &c->plan->shapes[ca->head], *sb = &c->plan->shapes[cb->head],
                   *sp = &c->plan->shapes[cp->head];
    float *wb, *bb;
    int own_b;
    conv_weights(c, cb, &wb, &bb, &own_b);
    fn_conv_desc db;
    conv_geometry(c, cb, &db);
    dnnl_dims_t kernel = {np->kh, np->kw}, strides = {np->stride, np->stride}, no_pad = {0, 0};
    /* the pool's output laid out as the whole-image ops would lay it out, for the ops after it */
    dnnl_memory_desc_t b_any, b_out_any, p_any, b_full, p_full;
    fusenet__md4(&b_any, 1, sa->c, sa->h, sa->w, dnnl_format_tag_any);
    fusenet__md4(&b_out_any, 1, nb->filters, sb->h, sb->w, dnnl_format_tag_any);
    fusenet__md4(&p_any, 1, sp->c, sp->h, sp->w, dnnl_format_tag_any);
    db.src = &b_any;
    db.dst = &b_out_any;
    dnnl_primitive_desc_t pd = NULL;
    if (ok(c)) c->status = fusenet__op_conv(c->net->eng, &db, nb->name, &pd, c->err);
    b_full = pd_md(c, pd, dnnl_query_dst_md, 0);
    if (pd) dnnl_primitive_desc_destroy(pd);
    pd = NULL;
    int wino_b = own_wino(c, cb); /* fast mode on our kernel: cb's strips run on it, with the pool */
    int wino_pool_b = wino_b && fusenet__wino_fuse_pool;
    /* else the pool on our kernel (own_pool_shape), each strip's pooled rows straight into p_full */
    fn_pool kp;
    dnnl_format_tag_t own_p = !wino_pool_b && ok(c) ? own_pool_2x2(&b_full, &kp) : dnnl_format_tag_undef;
    if (own_p != dnnl_format_tag_undef) {
        fusenet__md4(&p_full, 1, sp->c, sp->h, sp->w, own_p);
    } else {
        if (ok(c))
            c->status = fusenet__op_pool(c->net->eng, 1, &b_full, &p_any, kernel, strides, no_pad, no_pad, np->name,
                                         &pd, c->err);
        p_full = pd_md(c, pd, dnnl_query_dst_md, 0);
        if (pd) dnnl_primitive_desc_destroy(pd);
    }
    if (ok(c) && !has_rows(&p_full)) /* a strip's rows of p_full are a view of it */
        fail(c, FUSENET_ERR_BACKEND, "layer %s: its layout has no rows to write strips into", np->name);
    int p_value = arena_value(c, &p_full);
    fn_arg_ref ub = {-1, {0}}, bias_b = {-1, {0}};
    int band = add_value(c, FN_VALUE_ARENA, 0), buf_a = add_value(c, FN_VALUE_ARENA, 0), /* sized below: */
        buf_b = add_value(c, FN_VALUE_ARENA, 0), buf_p = add_value(c, FN_VALUE_ARENA, 0); /* the tallest strip's */
    int wa_value = -1, ba_value = -1, wb_value = -1, bb_value = -1;
    dnnl_memory_desc_t wa_md, ba_md, wb_md, bb_md;
    int per = (sp->h + strips - 1) / strips, done_a = 0; /* pooled rows per strip; rows of ca computed so far */
    for (int pa = 0; pa < sp->h && ok(c); pa += per) {
        int pe = pa + per < sp->h ? pa + per : sp->h; /* pooled rows [pa, pe) */
        int lo_b, hi_b, lo_a, hi_a;                   /* cb reads ca's rows [lo_b, hi_b), ca the input's [lo_a, hi_a) */
        dnnl_dim_t bt, bbot, at, abot;
        window_rows(2 * pa, 2 * pe, (int)db.pad_l[0], nb->kh, sa->h, &lo_b, &hi_b, &bt, &bbot);
        window_rows(lo_b, hi_b, (int)da->pad_l[0], na->kh, in->h, &lo_a, &hi_a, &at, &abot);
        dnnl_memory_desc_t a_src_any, b_src_any, b_dst_any, p_dst_any, p_rows;
        fusenet__md4(&a_src_any, 1, in->c, hi_a - lo_a, in->w, dnnl_format_tag_any);
        fusenet__md4(&b_src_any, 1, sa->c, hi_b - lo_b, sa->w, dnnl_format_tag_any);
        fusenet__md4(&b_dst_any, 1, nb->filters, 2 * (pe - pa), sb->w, dnnl_format_tag_any);
        fusenet__md4(&p_dst_any, 1, sp->c, pe - pa, sp->w, dnnl_format_tag_any);
        /* cb first: ca writes its rows in the layout cb reads */
        fn_conv_desc sdb = db, sda = *da;
        sdb.src = &b_src_any;
        sdb.dst = &b_dst_any;
        sdb.weights = wb_value >= 0 ? &wb_md : NULL;
        sdb.pad_l[0] = bt;
        sdb.pad_r[0] = bbot;
        dnnl_primitive_desc_t pdb = NULL, pda = NULL, pdp = NULL, r_out = NULL;
        dnnl_memory_desc_t b_src, b_dst;
        fn_wino kb;
        if (wino_b) { /* with the pool in its output transform: b_dst is the pooled rows */
            kb = wino_shape(nb, 1, sa->c, hi_b - lo_b, sa->w, 2 * (pe - pa), sb->w, (int)bt, (int)db.pad_l[1],
                            cb->relu_post);
            kb.pool = wino_pool_b;
            fusenet__md4(&b_src, 1, sa->c, hi_b - lo_b, sa->w, dnnl_nChw8c);
            fusenet__md4(&b_dst, 1, nb->filters, wino_pool_b ? pe - pa : 2 * (pe - pa), wino_pool_b ? sp->w : sb->w,
                         dnnl_nChw8c);
            if (ub.value < 0 && ok(c)) /* the first strip: weights and bias, shared by the others */
                wino_weights(c, &kb, wb, bb, nb->name, &ub, &bias_b);
        } else {
            if (ok(c)) c->status = fusenet__op_conv(c->net->eng, &sdb, nb->name, &pdb, c->err);
            b_src = pd_md(c, pdb, dnnl_query_src_md, 0);
            b_dst = pd_md(c, pdb, dnnl_query_dst_md, 0);
        }
        sda.src = &a_src_any;
        sda.dst = &b_src;
        sda.weights = wa_value >= 0 ? &wa_md : NULL;
        sda.pad_l[0] = at;
        sda.pad_r[0] = abot;
        if (ok(c)) c->status = fusenet__op_conv(c->net->eng, &sda, na->name, &pda, c->err);
        dnnl_memory_desc_t a_src = pd_md(c, pda, dnnl_query_src_md, 0);
        fn_pool ks; /* our pool: this strip's rows of ca into their rows of p_full */
        int own_s = !wino_pool_b && own_p != dnnl_format_tag_undef && own_pool_2x2(&b_dst, &ks) == own_p;
        ks.dst_h = sp->h;
        ks.dst_row = pa;
        if (ok(c) && !wino_pool_b && !own_s)
            c->status = fusenet__op_pool(c->net->eng, 1, &b_dst, &p_dst_any, kernel, strides, no_pad, no_pad, np->name,
                                         &pdp, c->err);
        dnnl_memory_desc_t p_dst = wino_pool_b || own_s ? b_dst : pd_md(c, pdp, dnnl_query_dst_md, 0);
        strip_weights(c, na, in->c, pda, wa, ba, &wa_value, &wa_md, &ba_value, &ba_md);
        if (!wino_b) strip_weights(c, nb, sa->c, pdb, wb, bb, &wb_value, &wb_md, &bb_value, &bb_md);
        grow_value(c, band, dnnl_memory_desc_get_size(&a_src));
        grow_value(c, buf_a, dnnl_memory_desc_get_size(&b_src));
        if (!wino_pool_b) grow_value(c, buf_b, dnnl_memory_desc_get_size(&b_dst));
        size_t p_at = rows_view(&p_full, pa, pe, &p_rows); /* rows [pa, pe) of the pool's output, in place */
        if (!own_s) grow_value(c, buf_p, dnnl_memory_desc_get_size(&p_dst));
        if (ok(c) && !own_s) c->status = fusenet__op_reorder(c->net->eng, &p_dst, &p_rows, np->name, &r_out, c->err);
        /* the steps: the input band, ca, cb, the pool, the pooled rows into place */
        band_step(c, ca->src, lo_a, hi_a, band, &a_src, na->name);
        double new_a = hi_b - (done_a > lo_b ? done_a : lo_b); /* ca's rows no earlier strip computed */
        done_a = hi_b;
        conv_step(c, ca, 2.0 * new_a * sa->w * (double)na->filters * na->kh * na->kw * in->c, pda,
                  (fn_arg_ref){band, a_src}, (fn_arg_ref){wa_value, wa_md}, (fn_arg_ref){ba_value, ba_md},
                  (fn_arg_ref){buf_a, b_src});
        double flops_b = 2.0 * 2.0 * (double)(pe - pa) * sb->w * (double)nb->filters * nb->kh * nb->kw * sa->c;
        if (wino_pool_b) { /* the conv and the pool in one step: the pool's rows straight into buf_p */
            wino_step(c, cb, cp->head, &kb, flops_b, (fn_arg_ref){buf_a, b_src}, ub, bias_b,
                      (fn_arg_ref){buf_p, p_dst});
        } else {
            if (wino_b)
                wino_step(c, cb, cb->end, &kb, flops_b, (fn_arg_ref){buf_a, b_src}, ub, bias_b,
                          (fn_arg_ref){buf_b, b_dst});
            else
                conv_step(c, cb, flops_b, pdb, (fn_arg_ref){buf_a, b_src}, (fn_arg_ref){wb_value, wb_md},
                          (fn_arg_ref){bb_value, bb_md}, (fn_arg_ref){buf_b, b_dst});
            if (own_s) { /* the pooled rows go straight into place: no reorder */
                own_pool_step(c, cp->head, &ks, buf_b, &b_dst, p_value, &p_full);
                continue;
            }
            fn_step *s = add_step(c, FN_STEP_COMPUTE, cp->head, 2);
            step_arg(s, DNNL_ARG_SRC, buf_b, &b_dst);
            step_arg(s, DNNL_ARG_DST, buf_p, &p_dst);
            finish_step(c, s, pdp);
        }
        fn_step *s = add_step(c, FN_STEP_REORDER, cp->end, 2);
        step_arg(s, DNNL_ARG_FROM, buf_p, &p_dst);
        step_arg_at(s, DNNL_ARG_TO, p_value, &p_rows, p_at);
        finish_step(c, s, r_out);
    }
    done_conv_weights(c, cb, wb, bb, own_b);
    c->skip_until = cp->head;
    set_node(c, cp->end, p_value, &p_full);
}

/* Conv2D with what the plan folded in: padding, BatchNorm, sum, ReLU; in
 * int8 (quant.h) when conv_int8 says so. */
static void compile_conv(ctx *c, const fn_chain *ch) {
    const fn_node *n = &c->g->nodes[ch->head];
    const fn_shape *in = &c->plan->shapes[ch->src], *out = &c->plan->shapes[ch->head];
    if (ch->shortcut >= 0 && c->ns[ch->shortcut].value < 0) /* the plan promised an emitted buffer */
        fail(c, FUSENET_ERR_BACKEND, "layer %s: shortcut %s not computed", c->g->nodes[ch->sum].name,
             c->g->nodes[ch->shortcut].name);
    size_t kelems = (size_t)n->kh * n->kw * (size_t)in->c * (size_t)n->filters;
    float *w, *b;
    int own;
    conv_weights(c, ch, &w, &b, &own);
    /* data types and scales: float32 throughout, or int8 src, s8 weights and an int8 dst (float32
     * when only taps read it, no rounding of the result, or when AUTO keeps it float32) */
    int q = ok(c) && conv_int8(c, ch);
    if (!q && own_wino(c, ch)) {
        compile_wino(c, ch, w, b);
        done_conv_weights(c, ch, w, b, own);
        return;
    }
    dnnl_data_type_t src_dt = dnnl_f32, dst_dt = dnnl_f32, sum_dt = dnnl_data_type_undef;
    float s_src = 1.0f, s_dst = 1.0f, s_sum = 1.0f;
    if (q) {
        quantized_src(c, ch->src, &src_dt, &s_src);
        if (c->plan->nodes[ch->end].consumers > 0 && !auto_fp32(c, ch->end)) {
            int u = ch->relu_post || calib_unsigned(c, ch->end);
            dst_dt = u ? dnnl_u8 : dnnl_s8;
            s_dst = calib_scale(c, ch->end, u);
        }
    }
    /* the sum lands in the shortcut's buffer, in its layout: int8 into an int8 dst (oneDNN's
     * sum_v2 reads it as its own type), float32 into a float32 one */
    int sum_value = -1;
    dnnl_memory_desc_t dst_want;
    if (ch->shortcut >= 0 && ok(c)) {
        const node_state *sc = &c->ns[ch->shortcut];
        if (dst_dt == dnnl_f32) {
            dnnl_memory_desc_t f = with_type(&sc->md, dnnl_f32);
            sum_value = value_as(c, ch->shortcut, &f);
            dst_want = f;
        } else {
            dnnl_data_type_t dt;
            quantized_src(c, ch->shortcut, &dt, &s_sum);
            dnnl_memory_desc_t qmd = with_type(&sc->md, dt);
            sum_value = value_as_q(c, ch->shortcut, &qmd, s_sum);
            sum_dt = dt;
            dst_want = with_type(&qmd, dst_dt);
        }
    } else {
        fusenet__md4(&dst_want, c->batch, n->filters, out->h, out->w, dnnl_format_tag_any);
        dst_want.data_type = dst_dt;
    }
    dnnl_memory_desc_t src_any;
    fusenet__md4(&src_any, c->batch, in->c, in->h, in->w, dnnl_format_tag_any);
    src_any.data_type = src_dt;
    /* int8: s8 weights per output channel, the bias and output scales in the int32 accumulator's units */
    float *w_scale = NULL, *oscales = NULL;
    int8_t *wq = NULL;
    if (q) {
        check_finite(c, w, kelems, n->name);
        w_scale = fusenet__malloc((size_t)n->filters * sizeof *w_scale);
        oscales = fusenet__malloc((size_t)n->filters * sizeof *oscales);
        wq = fusenet__malloc(kelems);
        if (ok(c) && (!w_scale || !oscales || !wq)) fail(c, FUSENET_ERR_NOMEM, "out of memory quantizing layer %s", n->name);
    }
    if (q && ok(c)) {
        /* oneDNN halves s8 x s8 weights itself without VNNI (scale_adjust): full levels there */
        int levels = src_dt == dnnl_s8 ? 127 : c->wlevels;
        fusenet__quantize_weights(w, kelems, n->filters, levels, wq, w_scale);
        for (int o = 0; o < n->filters; o++) {
            b[o] = (float)((double)b[o] / ((double)s_src * w_scale[o]));
            oscales[o] = (float)((double)s_src * w_scale[o] / s_dst);
        }
    }
    fn_conv_desc d;
    conv_geometry(c, ch, &d);
    d.src = &src_any;
    d.dst = &dst_want;
    d.sum = sum_value >= 0;
    d.oscales = q ? oscales : NULL;
    d.sum_scale = s_sum / s_dst;
    d.sum_dt = sum_dt;
    const fn_chain *next = NULL, *pool = NULL;
    int strips = q ? 0 : int8_strips(c, ch), block = q || strips ? 0 : block_strips(c, ch, &next, &pool);
    if (strips || block) {
        if (strips) compile_conv_strips(c, ch, &d, w, b, strips);
        else compile_block_strips(c, ch, &d, w, b, next, pool, block);
        done_conv_weights(c, ch, w, b, own);
        return;
    }
    dnnl_primitive_desc_t pd = NULL;
    if (ok(c)) c->status = fusenet__op_conv(c->net->eng, &d, n->name, &pd, c->err);
    dnnl_memory_desc_t src_md = pd_md(c, pd, dnnl_query_src_md, 0), w_md = pd_md(c, pd, dnnl_query_weights_md, 0),
                       b_md = pd_md(c, pd, dnnl_query_weights_md, 1), dst_md = pd_md(c, pd, dnnl_query_dst_md, 0);
    dnnl_memory_desc_t w_user;
    fusenet__md4(&w_user, n->filters, in->c, n->kh, n->kw, dnnl_hwio); /* Keras (kh, kw, in, out) */
    int src_value = value_as_q(c, ch->src, &src_md, s_src);
    int w_value;
    if (q) {
        w_user.data_type = dnnl_s8;
        w_value = upload_raw(c, wq, &w_user, &w_md, n->name);
    } else {
        w_value = upload(c, w, &w_user, &w_md, n->name);
    }
    int b_value = upload(c, b, &b_md, &b_md, n->name);
    int dst_value = sum_value >= 0 ? sum_value : arena_value(c, &dst_md);
    fn_step *s = add_step(c, FN_STEP_COMPUTE, ch->end, 4);
    if (s) {
        s->first = ch->head;
        s->flops = 2.0 * (double)c->batch * out->h * out->w * (double)n->filters * n->kh * n->kw * in->c;
    }
    step_arg(s, DNNL_ARG_SRC, src_value, &src_md);
    step_arg(s, DNNL_ARG_WEIGHTS, w_value, &w_md);
    step_arg(s, DNNL_ARG_BIAS, b_value, &b_md);
    step_arg(s, DNNL_ARG_DST, dst_value, &dst_md);
    finish_step(c, s, pd);
    done_conv_weights(c, ch, w, b, own);
    fusenet__free(wq);
    fusenet__free(w_scale);
    fusenet__free(oscales);
    if (ch->shortcut >= 0 && ok(c)) /* its buffer (or its converted copy) now holds the sum */
        c->ns[ch->shortcut].value = c->ns[ch->shortcut].alt_value = -1;
    set_node_q(c, ch->end, dst_value, &dst_md, s_dst);
}

/* A standalone BatchNormalization or Activation('relu'), in its input's layout. */
static void compile_simple(ctx *c, int i) {
    const fn_node *n = &c->g->nodes[i];
    to_f32(c, n->in[0]);
    const node_state *x = &c->ns[n->in[0]];
    int is_bn = n->op == FN_OP_BATCH_NORM;
    dnnl_primitive_desc_t pd = NULL;
    if (ok(c))
        c->status = is_bn ? fusenet__op_batch_norm(c->net->eng, &x->md, n->epsilon, n->name, &pd, c->err)
                          : fusenet__op_relu(c->net->eng, &x->md, n->name, &pd, c->err);
    int32_t ch = c->plan->shapes[n->in[0]].c;
    if (is_bn) fetch_weights(c, i);
    /* oneDNN order: mean, variance, scale (gamma), shift (beta) */
    static const int keras_weight[4] = {2, 3, 0, 1};
    static const int arg[4] = {DNNL_ARG_MEAN, DNNL_ARG_VARIANCE, DNNL_ARG_SCALE, DNNL_ARG_SHIFT};
    int extra[4];
    if (is_bn) check_bn_scale(c, n, ch);
    for (int k = 0; k < 4 && is_bn; k++) extra[k] = upload_vector(c, n->w[keras_weight[k]], ch, n->name);
    int dst = arena_value(c, &x->md);
    fn_step *s = add_step(c, FN_STEP_COMPUTE, i, is_bn ? 6 : 2);
    step_arg(s, DNNL_ARG_SRC, x->value, &x->md);
    step_arg(s, DNNL_ARG_DST, dst, &x->md);
    dnnl_memory_desc_t vmd;
    dnnl_dims_t dims = {ch};
    dnnl_memory_desc_init_by_tag(&vmd, 1, dims, dnnl_f32, dnnl_x);
    for (int k = 0; k < 4 && is_bn; k++) step_arg(s, arg[k], extra[k], &vmd);
    finish_step(c, s, pd);
    release_weights(c, i);
    set_node(c, i, dst, &x->md);
}

/* A standalone Add, in the first input's layout. */
static void compile_add(ctx *c, int i) {
    const fn_node *n = &c->g->nodes[i];
    to_f32(c, n->in[0]);
    const node_state *a = &c->ns[n->in[0]];
    int b_value = value_as(c, n->in[1], &a->md);
    dnnl_primitive_desc_t pd = NULL;
    if (ok(c)) c->status = fusenet__op_add(c->net->eng, &a->md, &a->md, n->name, &pd, c->err);
    int dst = arena_value(c, &a->md);
    fn_step *s = add_step(c, FN_STEP_COMPUTE, i, 3);
    step_arg(s, DNNL_ARG_SRC_0, a->value, &a->md);
    step_arg(s, DNNL_ARG_SRC_1, b_value, &a->md);
    step_arg(s, DNNL_ARG_DST, dst, &a->md);
    finish_step(c, s, pd);
    set_node(c, i, dst, &a->md);
}

/* MaxPooling2D (with an absorbed padding) and the global pools. */
static void compile_pool(ctx *c, const fn_chain *ch) {
    const fn_node *n = &c->g->nodes[ch->head];
    int global = n->op == FN_OP_GLOBAL_AVG_POOL || n->op == FN_OP_GLOBAL_MAX_POOL;
    int is_max = n->op != FN_OP_GLOBAL_AVG_POOL;
    const fn_shape *in = &c->plan->shapes[ch->src], *out = &c->plan->shapes[ch->head];
    /* max pooling runs in its input's data type: int8 between int8 convs (the max of
     * quantized values is the quantized max); the global pools read float32 */
    if (global || !is_max) to_f32(c, ch->src);
    const node_state *x = &c->ns[ch->src];
    /* a max pool whose every window holds a cell of its input: on our pool where the layout allows */
    fn_pool k;
    int fits = !global && is_max && ch->end == ch->head && ch->pad_l[0] < n->kh && ch->pad_r[0] < n->kh &&
               ch->pad_l[1] < n->kw && ch->pad_r[1] < n->kw && ok(c);
    dnnl_format_tag_t own = fits ? own_pool_shape(&x->md, n->kh, n->kw, n->stride, (int)ch->pad_l[0],
                                                  (int)ch->pad_l[1], out->h, out->w, &k)
                                 : dnnl_format_tag_undef;
    if (own != dnnl_format_tag_undef) {
        dnnl_memory_desc_t own_md;
        fusenet__md4(&own_md, x->md.dims[0], in->c, out->h, out->w, own);
        int own_dst = arena_value(c, &own_md);
        own_pool_step(c, ch->head, &k, x->value, &x->md, own_dst, &own_md);
        set_node_q(c, ch->head, own_dst, &own_md, x->scale);
        return;
    }
    dnnl_dims_t kernel = {global ? in->h : n->kh, global ? in->w : n->kw};
    dnnl_dims_t strides = {global ? 1 : n->stride, global ? 1 : n->stride};
    dnnl_dims_t pad_l = {ch->pad_l[0], ch->pad_l[1]}, pad_r = {ch->pad_r[0], ch->pad_r[1]};
    dnnl_memory_desc_t dst_want;
    if (global)
        fusenet__md4(&dst_want, c->batch, in->c, 1, 1, dnnl_nhwc); /* = (n, c) dense, ready for Dense */
    else
        fusenet__md4(&dst_want, c->batch, in->c, out->h, out->w, dnnl_format_tag_any);
    dst_want.data_type = x->md.data_type;
    dnnl_primitive_desc_t pd = NULL;
    if (ok(c))
        c->status = fusenet__op_pool(c->net->eng, is_max, &x->md, &dst_want, kernel, strides, pad_l, pad_r, n->name,
                                     &pd, c->err);
    dnnl_memory_desc_t dst_md = pd_md(c, pd, dnnl_query_dst_md, 0);
    int dst = arena_value(c, &dst_md);
    fn_step *s = add_step(c, FN_STEP_COMPUTE, ch->head, 2);
    step_arg(s, DNNL_ARG_SRC, x->value, &x->md);
    step_arg(s, DNNL_ARG_DST, dst, &dst_md);
    finish_step(c, s, pd);
    set_node_q(c, ch->head, dst, &dst_md, x->scale);
}

/* A ZeroPadding2D that stays a layer (tapped, or feeding something that cannot
 * take padding): clear the destination, then copy the input into its middle. */
static void compile_zero_pad(ctx *c, int i) {
    const fn_node *n = &c->g->nodes[i];
    to_f32(c, n->in[0]);
    const node_state *x = &c->ns[n->in[0]];
    const fn_shape *in = &c->plan->shapes[n->in[0]], *out = &c->plan->shapes[i];
    dnnl_memory_desc_t dst_md, inner;
    fusenet__md4(&dst_md, c->batch, out->c, out->h, out->w, dnnl_nhwc);
    dnnl_dims_t dims = {c->batch, in->c, in->h, in->w}, offs = {0, 0, n->pad_t, n->pad_l};
    if (ok(c)) check_dnnl(c, dnnl_memory_desc_init_submemory(&inner, &dst_md, dims, offs), n->name, "padding view");
    dnnl_primitive_desc_t pd = NULL;
    if (ok(c)) c->status = fusenet__op_reorder(c->net->eng, &x->md, &inner, n->name, &pd, c->err);
    int dst = arena_value(c, &dst_md);
    fn_step *s = add_step(c, FN_STEP_COMPUTE, i, 2);
    if (s) s->zero_value = dst;
    step_arg(s, DNNL_ARG_FROM, x->value, &x->md);
    step_arg(s, DNNL_ARG_TO, dst, &inner);
    finish_step(c, s, pd);
    set_node(c, i, dst, &dst_md);
}

/* Flatten: its input in NHWC (a reorder if needed) seen as (n, h*w*c). */
static void compile_flatten(ctx *c, int i) {
    const fn_node *n = &c->g->nodes[i];
    const fn_shape *in = &c->plan->shapes[n->in[0]];
    dnnl_memory_desc_t nhwc, flat;
    fusenet__md4(&nhwc, c->batch, in->c, in->h, in->w, dnnl_nhwc); /* Keras flattens in (h, w, c) order */
    int v = value_as(c, n->in[0], &nhwc);
    dnnl_dims_t dims = {c->batch, (int64_t)in->h * in->w * in->c};
    dnnl_memory_desc_init_by_tag(&flat, 2, dims, dnnl_f32, dnnl_nc);
    set_node(c, i, v, &flat);
}

/* Dense (ReLU as a post-op), then a softmax step if asked. */
static void compile_dense(ctx *c, int i) {
    const fn_node *n = &c->g->nodes[i];
    const fn_shape *in = &c->plan->shapes[n->in[0]];
    const node_state *x = &c->ns[n->in[0]];
    int64_t fan_in = in->flat ? in->c : (int64_t)in->h * in->w * in->c;
    dnnl_memory_desc_t src_md, w_user, w_any, b_md, dst_md;
    dnnl_dims_t sdims = {c->batch, fan_in}, wdims = {n->filters, fan_in}, bdims = {n->filters},
                ddims = {c->batch, n->filters};
    if (x->md.ndims == 2)
        src_md = x->md;
    else /* a global pool's (n, c, 1, 1) nhwc buffer is (n, c) */
        dnnl_memory_desc_init_by_tag(&src_md, 2, sdims, dnnl_f32, dnnl_nc);
    dnnl_memory_desc_init_by_tag(&w_user, 2, wdims, dnnl_f32, dnnl_io); /* Keras (in, out) */
    dnnl_memory_desc_init_by_tag(&w_any, 2, wdims, dnnl_f32, dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&b_md, 1, bdims, dnnl_f32, dnnl_x);
    dnnl_memory_desc_init_by_tag(&dst_md, 2, ddims, dnnl_f32, dnnl_nc);
    dnnl_primitive_desc_t pd = NULL;
    if (ok(c))
        c->status = fusenet__op_dense(c->net->eng, &src_md, &w_any, &b_md, &dst_md, n->act == FN_ACT_RELU, n->name, &pd,
                                      c->err);
    dnnl_memory_desc_t w_md = pd_md(c, pd, dnnl_query_weights_md, 0);
    fetch_weights(c, i);
    int w_value = upload(c, n->w[0], &w_user, &w_md, n->name);
    int b_value = upload(c, n->w[1], &b_md, &b_md, n->name);
    int dst = arena_value(c, &dst_md);
    fn_step *s = add_step(c, FN_STEP_COMPUTE, i, 4);
    if (s) s->flops = 2.0 * (double)c->batch * (double)fan_in * n->filters;
    step_arg(s, DNNL_ARG_SRC, x->value, &src_md);
    step_arg(s, DNNL_ARG_WEIGHTS, w_value, &w_md);
    step_arg(s, DNNL_ARG_BIAS, b_value, &b_md);
    step_arg(s, DNNL_ARG_DST, dst, &dst_md);
    finish_step(c, s, pd);
    release_weights(c, i);
    if (n->act == FN_ACT_SOFTMAX) { /* in place */
        pd = NULL;
        if (ok(c)) c->status = fusenet__op_softmax(c->net->eng, &dst_md, n->name, &pd, c->err);
        s = add_step(c, FN_STEP_COMPUTE, i, 2);
        step_arg(s, DNNL_ARG_SRC, dst, &dst_md);
        step_arg(s, DNNL_ARG_DST, dst, &dst_md);
        finish_step(c, s, pd);
    }
    set_node(c, i, dst, &dst_md);
}

/* ---- one model's trunk, in plan order ---- */

/* Micro-batching (memplan.h): the steps from first_step on were emitted for
 * a micro-batch (c->batch images) and produce node end. They are repeated for
 * micro-batches 1..batch/c->batch-1 (sharing their primitives), reading
 * micro-batch k's slice of the input and writing its slice of end's value,
 * which becomes a batch-sized value in the same layout (oneDNN's layouts keep
 * the image index outermost). Each repetition has its own copy of the arena
 * values made from first_value on (the micro-batch's activations): a value
 * then lives within one micro-batch, and the memory plan lets the next
 * micro-batch's activations reuse its bytes. */
static int micro_copy(ctx *c, int v, int first_value, int n_own, int v_full, int *copy) {
    if (v < first_value || v >= first_value + n_own || v == v_full || c->net->values[v].kind != FN_VALUE_ARENA)
        return v;
    int *cp = &copy[v - first_value];
    if (*cp < 0) *cp = add_value(c, FN_VALUE_ARENA, c->net->values[v].size);
    return *cp < 0 ? v : *cp; /* add_value failed: the build fails */
}

static void repeat_micro_batches(ctx *c, int first_step, int first_value, int end, int batch) {
    node_state *e = &c->ns[end];
    if (!ok(c)) return;
    dnnl_memory_desc_t full = e->md;
    size_t part = dnnl_memory_desc_get_size(&e->md);
    full.dims[0] = full.padded_dims[0] = batch;
    dnnl_dim_t image = full.format_desc.blocking.strides[0] * (dnnl_dim_t)dnnl_data_type_size(full.data_type);
    if (full.format_kind != dnnl_blocked || image * c->batch != (dnnl_dim_t)part ||
        dnnl_memory_desc_get_size(&full) != part / (size_t)c->batch * (size_t)batch) {
        fail(c, FUSENET_ERR_BACKEND, "layer %s: its layout does not keep images outermost: cannot micro-batch",
             c->g->nodes[end].name);
        return;
    }
    int reps = batch / c->batch;
    int v_full = add_value(c, FN_VALUE_ARENA, part * (size_t)reps), v_part = e->value;
    size_t in_part = 4 * (size_t)c->batch * (size_t)c->net->in_h * (size_t)c->net->in_w * 3;
    int last_step = c->net->n_steps;
    for (int s = first_step; s < last_step && ok(c); s++)
        for (int a = 0; a < c->net->steps[s].nargs; a++)
            if (c->net->steps[s].args[a].value == v_part) c->net->steps[s].args[a].value = v_full;
    int n_own = c->net->n_values - first_value;
    int *copy = fusenet__malloc((size_t)(n_own > 0 ? n_own : 1) * sizeof *copy); /* value -> its copy in micro-batch k */
    if (!copy) fail(c, FUSENET_ERR_NOMEM, "out of memory building the net");
    for (int k = 1; k < reps && ok(c); k++) {
        for (int v = 0; v < n_own; v++) copy[v] = -1;
        for (int s = first_step; s < last_step && ok(c); s++) {
            const fn_step *src = &c->net->steps[s];
            fn_step *d = add_step(c, src->kind, src->node, src->nargs - 1); /* add_step adds room for the scratchpad */
            if (!d) break;
            src = &c->net->steps[s]; /* add_step may have moved the steps */
            fn_arg *args = d->args;
            dnnl_exec_arg_t *exec = d->exec;
            int cap = d->cap_args;
            *d = *src;
            d->args = args;
            d->exec = exec;
            d->cap_args = cap;
            d->prim_shared = 1;
            for (int a = 0; a < src->nargs; a++) {
                fn_arg *x = &d->args[a];
                *x = src->args[a];
                if (x->value == v_full) x->offset += (size_t)k * part;
                if (x->value == c->input_value) x->offset += (size_t)k * in_part;
                x->value = micro_copy(c, x->value, first_value, n_own, v_full, copy);
            }
            d->zero_value = micro_copy(c, d->zero_value, first_value, n_own, v_full, copy);
            d->src_value = micro_copy(c, d->src_value, first_value, n_own, v_full, copy);
            d->dst_value = micro_copy(c, d->dst_value, first_value, n_own, v_full, copy);
        }
    }
    fusenet__free(copy);
    e->value = v_full;
    e->md = full;
}

/* One head op's step(s): the one emitter per op. */
static void compile_head(ctx *c, int i, const fn_chain *ch) {
    switch (c->g->nodes[i].op) {
    case FN_OP_ZERO_PAD: compile_zero_pad(c, i); break;
    case FN_OP_CONV2D: compile_conv(c, ch); break;
    case FN_OP_BATCH_NORM:
    case FN_OP_RELU: compile_simple(c, i); break;
    case FN_OP_ADD: compile_add(c, i); break;
    case FN_OP_MAX_POOL:
    case FN_OP_GLOBAL_AVG_POOL:
    case FN_OP_GLOBAL_MAX_POOL: compile_pool(c, ch); break;
    case FN_OP_DENSE: compile_dense(c, i); break;
    case FN_OP_INPUT:
    case FN_OP_FLATTEN: fail(c, FUSENET_ERR_BACKEND, "layer %s: planned as a step", c->g->nodes[i].name); break;
    }
}

static void compile_model(ctx *c) {
    const fn_graph *g = c->g;
    int batch = c->batch, cut = fusenet__memplan_micro_cut(g, c->plan, batch, FN_MICRO_MAX_IMAGES, NULL);
    int first_step = c->net->n_steps, first_value = c->net->n_values;
    if (cut >= 0) c->batch = fusenet__memplan_micro_images(batch, FN_MICRO_MAX_IMAGES);
    c->micro_cut = cut; /* block_strips may move it past its pool */
    c->skip_until = -1;
    for (int i = 0; i < g->n && ok(c); i++) {
        const fn_plan_node *pn = &c->plan->nodes[i];
        const fn_chain *ch = pn->chain >= 0 ? &c->plan->chains[pn->chain] : NULL;
        if (pn->role == FN_ROLE_INPUT) {
            dnnl_memory_desc_t md;
            fusenet__md4(&md, c->batch, 3, c->plan->shapes[i].h, c->plan->shapes[i].w, dnnl_nhwc);
            set_node(c, i, c->input_value, &md);
        } else if (pn->role == FN_ROLE_VIEW) {
            compile_flatten(c, i);
        } else if (pn->role == FN_ROLE_HEAD) {
            if (i > c->skip_until) compile_head(c, i, ch); /* else emitted with an earlier head (block_strips) */
            if (c->micro_cut >= 0 && pn->chain == c->micro_cut) {
                repeat_micro_batches(c, first_step, first_value, ch->end, batch);
                c->batch = batch;
            }
        }
    }
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

static void compile_fuse(ctx *c, const fusenet_net_params *p) {
    fusenet_net *net = c->net;
    if (!ok(c)) return;
    net->fused = 1;
    net->out = fused_out(p, net->taps, net->n_taps);
    int32_t th = net->out.h, tw = net->out.w, total_c = net->out.c;
    dnnl_memory_desc_t out_md;
    fusenet__md4(&out_md, c->batch, total_c, th, tw, dnnl_nhwc);
    net->out.value = add_value(c, FN_VALUE_OWNED, dnnl_memory_desc_get_size(&out_md));

    dnnl_memory_desc_t srcs[FN_MAX_TAPS];
    int src_values[FN_MAX_TAPS];
    int nearest = p->resize == FUSENET_INTERP_NEAREST;
    for (int t = 0; t < net->n_taps && ok(c); t++) {
        const fn_tap_out *tap = &net->taps[t];
        dnnl_memory_desc_t tap_nhwc;
        fusenet__md4(&tap_nhwc, tap->n, tap->c, tap->h, tap->w, dnnl_nhwc);
        fusenet__md4(&srcs[t], c->batch, tap->c, th, tw, dnnl_nhwc);
        src_values[t] = tap->value;
        if (tap->h == th && tap->w == tw) continue;
        src_values[t] = arena_value(c, &srcs[t]);
        dnnl_primitive_desc_t pd = NULL;
        int with_onednn = onednn_matches_tf(net, nearest, tap->h, th) && onednn_matches_tf(net, nearest, tap->w, tw);
        if (with_onednn && ok(c))
            c->status = fusenet__op_resample(net->eng, nearest, &tap_nhwc, &srcs[t], "resize", &pd, c->err);
        fn_step *s = add_step(c, FN_STEP_RESIZE, -1, 2);
        step_arg(s, DNNL_ARG_SRC, tap->value, &tap_nhwc);
        step_arg(s, DNNL_ARG_DST, src_values[t], &srcs[t]);
        if (s) s->tap = t;
        if (with_onednn) {
            finish_step(c, s, pd);
        } else if (s) { /* oneDNN would pick other pixels than TensorFlow here */
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
            check_args(c, s);
        }
    }
    dnnl_primitive_desc_t pd = NULL;
    if (ok(c)) c->status = fusenet__op_concat(net->eng, &out_md, net->n_taps, srcs, "concat", &pd, c->err);
    fn_step *s = add_step(c, FN_STEP_CONCAT, -1, net->n_taps + 1);
    for (int t = 0; t < net->n_taps; t++) step_arg(s, DNNL_ARG_MULTIPLE_SRC + t, src_values[t], &srcs[t]);
    step_arg(s, DNNL_ARG_DST, net->out.value, &out_md);
    finish_step(c, s, pd);
}

/* ---- memory plan and binding ---- */

/* Places the arena, checks the net's total size against the limit, then
 * allocates the arena, the scratchpad and every owned buffer not yet
 * allocated (taps, fused map), and creates each step's memory objects. */
static void bind(ctx *c) {
    fusenet_net *net = c->net;
    if (!ok(c)) return;
    fusenet__memplan_liveness(net->values, net->n_values, net->steps, net->n_steps);
    size_t arena = 0;
    c->status = fusenet__memplan_place(net->values, net->n_values, &arena, c->err);
    if (!ok(c)) return;
    net->values[net->scratch_value].size = net->scratch_size;
    size_t total = arena;
    for (int v = 0; v < net->n_values; v++)
        if (net->values[v].kind == FN_VALUE_OWNED) total += net->values[v].size;
    if (total > FN_MAX_NET_BYTES) {
        fail(c, FUSENET_ERR_NOMEM, "the net would need %.1f GiB (limit %.0f GiB); use a smaller batch or input",
             (double)total / (1 << 30), (double)FN_MAX_NET_BYTES / (1 << 30));
        return;
    }
    net->arena_size = arena;
    net->arena = fusenet__aligned_alloc(arena ? arena : 64);
    if (!net->arena) fail(c, FUSENET_ERR_NOMEM, "out of memory allocating %zu bytes of activations", arena);
    for (int v = 0; v < net->n_values && ok(c); v++) {
        fn_value *val = &net->values[v];
        if (val->kind != FN_VALUE_OWNED || val->own) continue;
        val->own = fusenet__aligned_alloc(val->size ? val->size : 64); /* written by every run before it is read */
        if (!val->own) fail(c, FUSENET_ERR_NOMEM, "out of memory allocating %zu bytes for the net", val->size);
    }
    if (!ok(c)) return;

    int total_args = 0;
    for (int s = 0; s < net->n_steps; s++) total_args += net->steps[s].nargs;
    net->mems = fusenet__calloc((size_t)(total_args ? total_args : 1), sizeof *net->mems);
    if (!net->mems) fail(c, FUSENET_ERR_NOMEM, "out of memory binding the net");
    for (int s = 0; s < net->n_steps && ok(c); s++) {
        fn_step *step = &net->steps[s];
        for (int a = 0; a < step->nargs && ok(c); a++) {
            const fn_value *v = &net->values[step->args[a].value];
            void *handle = v->kind == FN_VALUE_ARENA   ? (char *)net->arena + v->offset + step->args[a].offset
                           : v->kind == FN_VALUE_OWNED ? (char *)v->own + step->args[a].offset
                                                       : DNNL_MEMORY_NONE;
            dnnl_memory_t mem = NULL;
            check_dnnl(c, dnnl_memory_create(&mem, &step->args[a].md, net->eng, handle), step->layer,
                       "memory creation");
            if (!ok(c)) break;
            net->mems[net->n_mems++] = mem;
            step->exec[a].arg = step->args[a].kind;
            step->exec[a].memory = mem;
        }
    }
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
    if (p->mode != FUSENET_MODE_EXACT && p->mode != FUSENET_MODE_FAST && p->mode != FUSENET_MODE_INT8)
        return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "net params: mode %d is not exact, fast or int8",
                              (int)p->mode);
    if (p->mode == FUSENET_MODE_INT8 && !p->calibration)
        return fusenet__error(err, FUSENET_ERR_INVALID_ARG,
                              "net params: mode int8 needs a calibration (fusenet_calibration_load, fusenet calibrate)");
    if (p->mode == FUSENET_MODE_INT8 && (p->int8_layers < FUSENET_INT8_AUTO || p->int8_layers > FUSENET_INT8_VGG))
        return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "net params: int8_layers %d is not auto, all or vgg",
                              (int)p->int8_layers);
    fusenet_status mode_st = fusenet__check_mode(p->mode, err);
    if (mode_st) return mode_st;
    if (p->threads < 0 || p->threads > FN_MAX_THREADS)
        return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "net params: threads %d outside 0..%d", (int)p->threads,
                              FN_MAX_THREADS);
    return fusenet__ok(err);
}

/* One distinct model of the request and its plan. */
typedef struct trunk {
    const fusenet_model *model;
    fusenet_model *owned; /* model, if it was handed over to the build */
    fn_plan plan;
} trunk;

/* The taps of trunk t's model: their slots in the request and their nodes. */
static int trunk_taps(const fusenet_net_params *p, const trunk *t, const int *tap_nodes, int *slots, int *nodes) {
    int n = 0;
    for (size_t k = 0; k < p->n_taps; k++) {
        if (p->taps[k].model != t->model) continue;
        slots[n] = (int)k;
        nodes[n++] = tap_nodes[k];
    }
    return n;
}

/* Plans one trunk per distinct model, in the order the taps name them. Pure:
 * nothing big is allocated yet. */
static fusenet_status plan_trunks(const fusenet_net_params *p, fusenet_model *const *owned, size_t n_owned,
                                  const int *tap_nodes, trunk *trunks, int *n_trunks, fusenet_error *err) {
    *n_trunks = 0;
    for (size_t t = 0; t < p->n_taps; t++) {
        const fusenet_model *m = p->taps[t].model;
        int seen = 0;
        for (int k = 0; k < *n_trunks; k++) seen |= trunks[k].model == m;
        if (seen) continue;
        trunk *tr = &trunks[(*n_trunks)++];
        memset(tr, 0, sizeof *tr);
        tr->model = m;
        for (size_t k = 0; k < n_owned; k++)
            if (owned[k] == m) tr->owned = owned[k];
        if (m->include_top && (p->in_h != 224 || p->in_w != 224))
            return fusenet__error(err, FUSENET_ERR_SHAPE, "%s with its top takes exactly 224x224 input, not %dx%d",
                                  fusenet__arch_name(m->arch), p->in_h, p->in_w);
        int slots[FN_MAX_TAPS], nodes[FN_MAX_TAPS];
        int n = trunk_taps(p, tr, tap_nodes, slots, nodes);
        fusenet_status st = fusenet__plan(&m->g, p->in_h, p->in_w, nodes, n, &tr->plan, err);
        if (st) return st;
    }
    return FUSENET_OK;
}

static double gib(double bytes) { return bytes / (double)(1 << 30); }

/* Refuses, before anything is allocated, a request whose activations, taps,
 * fused map and weights (estimated from the plans) exceed the net-size
 * limit, naming the parameter at fault: the batch when one image fits, else
 * the input size (or the explicit output size, when the fused map is most
 * of it). */
static fusenet_status check_memory(const fusenet_net_params *p, const trunk *trunks, int n_trunks,
                                   const int *tap_nodes, fusenet_error *err) {
    double activations = 0, weights = 0, taps = 0, fused = 0;
    fn_tap_out outs[FN_MAX_TAPS];
    for (int k = 0; k < n_trunks; k++) {
        fn_mem_estimate e;
        fusenet__memplan_estimate(&trunks[k].model->g, &trunks[k].plan, p->batch, &e);
        activations += e.activations; /* trunks run one after the other, but their taps stay */
        weights += e.weights;
        for (size_t t = 0; t < p->n_taps; t++)
            if (p->taps[t].model == trunks[k].model) outs[t] = tap_out(&trunks[k].plan, tap_nodes[t], p->batch);
    }
    for (size_t t = 0; t < p->n_taps; t++) taps += 4.0 * p->batch * (double)outs[t].h * outs[t].w * outs[t].c;
    if (p->fuse) {
        fn_tap_out f = fused_out(p, outs, (int)p->n_taps);
        fused = 4.0 * p->batch * (double)f.h * f.w * f.c;
    }
    double total = activations + taps + fused + weights, limit = (double)FN_MAX_NET_BYTES;
    if (total <= limit) return FUSENET_OK;
    double per_image = (activations + taps + fused) / p->batch;
    char fault[128];
    if (weights + per_image <= limit)
        snprintf(fault, sizeof fault, "batch %d is too large: at most %.0f fit", (int)p->batch,
                 floor((limit - weights) / per_image));
    else if (p->fuse && p->size == FUSENET_SIZE_EXPLICIT && fused > activations + taps)
        snprintf(fault, sizeof fault, "out_h x out_w %dx%d is too large", (int)p->out_h, (int)p->out_w);
    else
        snprintf(fault, sizeof fault, "in_h x in_w %dx%d is too large even for one image", (int)p->in_h, (int)p->in_w);
    return fusenet__error(err, FUSENET_ERR_NOMEM,
                          "batch %d of %dx%d inputs would need %.1f GiB (activations %.1f, taps %.1f, fused map %.1f, "
                          "weights %.1f), over the %.0f GiB limit: %s",
                          (int)p->batch, (int)p->in_h, (int)p->in_w, gib(total), gib(activations), gib(taps),
                          gib(fused), gib(weights), gib(limit), fault);
}

/* What the trunk is made of: its architecture, its taps and a hash of the
 * weights of every live layer (graph order, Keras order within a layer). A
 * deferred model's weights are read for it one layer at a time, and read
 * again when compiled (the calibration must match before any is quantized). */
static void identify(ctx *c, const fusenet_net_params *p, const trunk *t, int model_index) {
    const fusenet_model *m = t->model;
    fn_calib_model *id = &c->net->models[model_index];
    memset(id, 0, sizeof *id);
    snprintf(id->arch, sizeof id->arch, "%s", fusenet__arch_name(m->arch));
    for (size_t k = 0; k < p->n_taps; k++)
        if (p->taps[k].model == m) snprintf(id->taps[id->n_taps++], sizeof id->taps[0], "%s", p->taps[k].layer);
    uint64_t h = FN_HASH_SEED;
    for (int i = 0; i < m->g.n && ok(c); i++) {
        if (t->plan.nodes[i].role == FN_ROLE_DEAD || !fusenet__model_has_weights(m, i)) continue;
        int deferred = m->weights[i] == FN_WEIGHTS_PENDING;
        if (deferred) fetch_weights(c, i);
        for (int k = 0; k < fusenet__node_weight_count(&m->g.nodes[i]) && ok(c); k++) {
            int64_t dims[FN_MAX_WEIGHT_RANK];
            int rank = fusenet__node_weight_dims(&m->g, t->plan.shapes, i, k, dims);
            size_t count = 1;
            for (int r = 0; r < rank; r++) count *= (size_t)dims[r];
            h = fusenet__hash_bytes(h, m->g.nodes[i].w[k], count * sizeof(float));
        }
        if (deferred && ok(c)) fusenet__model_release(c->owned, i, 1);
    }
    id->hash = h;
    if (model_index + 1 > c->net->n_models) c->net->n_models = model_index + 1;
}

/* An int8 trunk's model in the calibration: same architecture and weights. */
static void match_calibration(ctx *c, const fn_calib_model *id) {
    const fusenet_calibration *cal = c->cal;
    c->cal_model = -1;
    for (int k = 0; k < cal->n_models && c->cal_model < 0; k++)
        if (strcmp(cal->models[k].arch, id->arch) == 0 && cal->models[k].hash == id->hash) c->cal_model = k;
    if (c->cal_model >= 0) return;
    char made[600] = "";
    for (int k = 0; k < cal->n_models; k++) {
        size_t len = strlen(made);
        snprintf(made + len, sizeof made - len, "%s%s (weights %016llx, taps %s%s)", k ? ", " : "", cal->models[k].arch,
                 (unsigned long long)cal->models[k].hash, cal->models[k].taps[0], cal->models[k].n_taps > 1 ? ", ..." : "");
    }
    fail(c, FUSENET_ERR_INVALID_ARG,
         "calibration does not match the net: it was made for %s; this net's %s has weights %016llx and taps %s%s "
         "(run fusenet calibrate with these weights and taps)",
         made, id->arch, (unsigned long long)id->hash, id->taps[0], id->n_taps > 1 ? ", ..." : "");
}

/* Emits the trunk of one model for the taps that name it. */
static void build_trunk(ctx *c, const fusenet_net_params *p, const trunk *t, int model_index, const int *tap_nodes) {
    if (!ok(c)) return;
    const fusenet_model *m = t->model;
    c->model = m;
    c->owned = t->owned;
    c->g = &m->g;
    c->plan = &t->plan;
    c->model_index = model_index;
    c->n_model_taps = trunk_taps(p, t, tap_nodes, c->tap_slot, c->tap_node);
    c->ns = fusenet__calloc((size_t)m->g.n, sizeof *c->ns);
    if (!c->ns) fail(c, FUSENET_ERR_NOMEM, "out of memory building the net");
    for (int i = 0; i < m->g.n && ok(c); i++) {
        c->ns[i].value = c->ns[i].alt_value = -1;
        if (t->plan.nodes[i].role != FN_ROLE_DEAD && fusenet__node_weight_count(&m->g.nodes[i]) &&
            !fusenet__model_has_weights(m, i))
            fail(c, FUSENET_ERR_INVALID_ARG, "%s layer %s has no weights loaded (needed for tap %s)",
                 fusenet__arch_name(m->arch), m->g.nodes[i].name, m->g.nodes[c->tap_node[0]].name);
    }
    int vgg = m->arch == FUSENET_ARCH_VGG16 || m->arch == FUSENET_ARCH_VGG19;
    c->int8 = p->mode == FUSENET_MODE_INT8 && (p->int8_layers != FUSENET_INT8_VGG || vgg);
    if (ok(c) && c->ident) identify(c, p, t, model_index);
    if (ok(c) && c->int8) match_calibration(c, &c->net->models[model_index]);
    compile_model(c);
    fusenet__free(c->ns);
    c->ns = NULL;
}

static fusenet_status net_build(const fusenet_net_params *params, fusenet_model *const *owned, size_t n_owned,
                                int ident, fusenet_net **out, fusenet_error *err);

/* Primitives are created with the net's thread count: most oneDNN kernels fix their team size then. */
static fusenet_status build_threads(const fusenet_net_params *params, fusenet_model *const *owned, size_t n_owned,
                                    int ident, fusenet_net **out, fusenet_error *err) {
    int threads = params && params->threads > 0 ? params->threads : fusenet__default_threads();
    int saved = fusenet__threads_enter(threads);
    fusenet_status st = net_build(params, owned, n_owned, ident, out, err);
    fusenet__threads_leave(saved);
    if (!st) (*out)->threads = threads;
    return st;
}

fusenet_status fusenet_net_build(const fusenet_net_params *params, fusenet_net **out, fusenet_error *err) {
    return build_threads(params, NULL, 0, 0, out, err);
}

fusenet_status fusenet__net_build_owned(const fusenet_net_params *params, fusenet_model **models, size_t n_models,
                                        fusenet_net **out, fusenet_error *err) {
    fusenet_status st = build_threads(params, models, n_models, 0, out, err);
    for (size_t k = 0; k < n_models; k++) fusenet_model_free(models[k]);
    return st;
}

fusenet_status fusenet__net_build_ident(const fusenet_net_params *params, fusenet_model **models, size_t n_models,
                                        fusenet_net **out, fusenet_error *err) {
    fusenet_status st = build_threads(params, models, n_models, 1, out, err);
    for (size_t k = 0; k < n_models; k++) fusenet_model_free(models[k]);
    return st;
}

/* Keras refuses to concatenate a flat (rank 2) tap with a spatial (rank 4)
 * one: so does the fuse head, before any work. */
static fusenet_status check_fuse_ranks(const fusenet_net_params *p, const int *tap_nodes, fusenet_error *err) {
    int spatial = -1, flat = -1;
    for (size_t t = 0; t < p->n_taps; t++) {
        fusenet_layer_info li;
        fusenet_status st = fusenet_model_layer_info(p->taps[t].model, (size_t)tap_nodes[t], p->in_h, p->in_w, &li, err);
        if (st) return st;
        if (li.h == 0 && flat < 0) flat = (int)t;
        if (li.h != 0 && spatial < 0) spatial = (int)t;
    }
    if (flat >= 0 && spatial >= 0)
        return fusenet__error(err, FUSENET_ERR_SHAPE,
                              "fuse: tap %d (%s) is flat, (N, C), and tap %d (%s) spatial, (N, H, W, C): they cannot be "
                              "concatenated (Keras refuses rank 2 with rank 4); build without fuse",
                              flat, p->taps[flat].layer, spatial, p->taps[spatial].layer);
    return FUSENET_OK;
}

static fusenet_status net_build(const fusenet_net_params *params, fusenet_model *const *owned, size_t n_owned,
                                int ident, fusenet_net **out, fusenet_error *err) {
    if (!out) return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "fusenet_net_build: out is NULL");
    *out = NULL;
    fusenet_net_params defaults = fusenet_net_default_params();
    if (!params) params = &defaults; /* which has no taps: refused below */
    fusenet_status st = check_net_params(params, err);
    if (st) return st;
    int tap_nodes[FN_MAX_TAPS];
    for (size_t t = 0; t < params->n_taps; t++) {
        const fusenet_model *m = params->taps[t].model;
        st = fusenet__graph_lookup(&m->g, params->taps[t].layer, fusenet__arch_name(m->arch), &tap_nodes[t], err);
        if (st) return st;
    }
    if (params->fuse && (st = check_fuse_ranks(params, tap_nodes, err))) return st;
    trunk trunks[FN_MAX_TAPS];
    int n_trunks = 0;
    st = plan_trunks(params, owned, n_owned, tap_nodes, trunks, &n_trunks, err);
    if (!st) st = check_memory(params, trunks, n_trunks, tap_nodes, err);
    fusenet_net *net = st ? NULL : fusenet__calloc(1, sizeof *net);
    if (!st && !net) st = fusenet__error(err, FUSENET_ERR_NOMEM, "out of memory building the net");
    if (st) {
        for (int k = 0; k < n_trunks; k++) fusenet__plan_free(&trunks[k].plan);
        return st;
    }
    net->batch = params->batch;
    net->in_h = params->in_h;
    net->in_w = params->in_w;
    net->n_taps = (int)params->n_taps;
    ctx c;
    memset(&c, 0, sizeof c);
    c.net = net;
    c.err = err;
    c.batch = params->batch;
    c.mode = params->mode;
    c.ident = ident || params->mode == FUSENET_MODE_INT8;
    c.int8_layers = params->int8_layers;
    c.wlevels = fusenet__int8_weight_levels();
    c.own_wino = params->mode == FUSENET_MODE_FAST && fusenet__fast_own_winograd();
    if (params->mode == FUSENET_MODE_INT8) c.cal = fusenet__calib_ready(params->calibration);
    check_dnnl(&c, dnnl_engine_create(&net->eng, dnnl_cpu, 0), "-", "engine creation");
    if (ok(&c)) check_dnnl(&c, dnnl_stream_create(&net->stream, net->eng, dnnl_stream_default_flags), "-", "stream creation");
    c.input_value = add_value(&c, FN_VALUE_INPUT, 0);
    net->scratch_value = add_value(&c, FN_VALUE_OWNED, 0); /* sized by the largest scratchpad */
    for (int k = 0; k < n_trunks; k++) build_trunk(&c, params, &trunks[k], k, tap_nodes);
    if (params->fuse) compile_fuse(&c, params);
    bind(&c);
    for (int k = 0; k < n_trunks; k++) fusenet__plan_free(&trunks[k].plan);
    if (!ok(&c)) {
        fusenet_net_free(net);
        return c.status;
    }
    *out = net;
    return fusenet__ok(err);
}

void fusenet_net_free(fusenet_net *net) {
    if (!net) return;
    for (int s = 0; s < net->n_steps; s++) {
        if (!net->steps[s].prim_shared) dnnl_primitive_destroy(net->steps[s].prim);
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
