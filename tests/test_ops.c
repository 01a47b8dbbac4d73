/* test_ops.c - every op kind of the compiler (src/compiler/compile.c) against naive loops.
 *
 * Tiny Keras-like graphs are built by hand with the graph builder, given seeded
 * random weights, compiled with fusenet_net_build (taps on the layers under
 * test), run, and every tap (and the fused map) is compared with the reference
 * in ref_ops.h: plain double-precision loops written from the Keras /
 * TensorFlow definitions, never the library's own functions.
 *
 * Tolerance: max |got - ref| <= 1e-5 * max(1, max |ref|) over the whole
 * tensor (TOL below). Activations are kept of order one (weights scaled by
 * 1/sqrt(fan_in)), so this is a few float32 ulps of accumulated rounding
 * (worst seen: 3.2e-6, the float32 bilinear upsampling of the fuse head).
 *
 * Where a test wants a particular compiler path (BatchNorm folded or not, a
 * ZeroPadding2D folded into the window op or standalone, a residual add as a
 * sum post-op or a separate primitive), it also checks the net's compute
 * steps: each records the node whose value it produces (a fused chain's end)
 * and the chain's first node, so a layer folded away has no compute step of
 * its own. Reorder steps (which oneDNN inserts or not depending on the CPU's
 * ISA) are never counted.
 *
 * The net's input must be at least 32x32 (FN_MIN_INPUT); the odd small sizes
 * (9x12, 10x7) are reached through a strided first convolution.
 *
 * Tests of known compiler bugs are skipped; set FUSENET_TEST_KNOWN_BUGS=1 to
 * run them (one of them crashes the process until its bug is fixed).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "fusenet.h"
#include "graph.h"
#include "model.h"
#include "net.h"
#include "ops.h"
#include "ref_ops.h"

#define TOL 1e-5
#define BN_EPS 1.001e-5f

/* ---- seeded random numbers (splitmix64) ---- */

static uint64_t g_rng;

static void rng_seed(uint64_t seed) { g_rng = seed * 0x9E3779B97F4A7C15ull + 1; }

static double rng_unit(void) { /* [0, 1) */
    uint64_t z = (g_rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 11) / 9007199254740992.0;
}

static float rng_range(double lo, double hi) { return (float)(lo + (hi - lo) * rng_unit()); }

/* ---- hand-built models ---- */

static fusenet_model *tm_new(void) {
    fusenet_model *m = fusenet__calloc(1, sizeof *m);
    assert_non_null(m);
    m->arch = FUSENET_ARCH_RESNET50; /* only used in messages */
    return m;
}

static float *fill(size_t count, double lo, double hi) {
    float *w = fusenet__malloc(count * sizeof *w);
    assert_non_null(w);
    for (size_t k = 0; k < count; k++) w[k] = rng_range(lo, hi);
    return w;
}

/* Finishes the graph and gives every weighted layer seeded random weights in
 * the raw Keras layouts (shapes taken for an in_h x in_w input: only a Dense
 * after Flatten depends on it). All weighted layers are marked loaded. */
static void tm_weights(fusenet_model *m, int32_t in_h, int32_t in_w, uint64_t seed) {
    fusenet_error e;
    fn_graph *g = &m->g;
    assert_int_equal(fusenet__graph_finish(g, &e), FUSENET_OK);
    fn_shape *shapes = calloc((size_t)g->n, sizeof *shapes);
    assert_non_null(shapes);
    assert_int_equal(fusenet__graph_shapes(g, in_h, in_w, shapes, &e), FUSENET_OK);
    m->weights = fusenet__calloc((size_t)g->n, 1);
    assert_non_null(m->weights);
    rng_seed(seed);
    for (int i = 0; i < g->n; i++) {
        fn_node *n = &g->nodes[i];
        const fn_shape *in = n->n_in ? &shapes[n->in[0]] : NULL;
        switch (n->op) {
        case FN_OP_CONV2D: {
            size_t fan_in = (size_t)n->kh * n->kw * in->c;
            double a = sqrt(3.0 / (double)fan_in);
            n->w[0] = fill(fan_in * n->filters, -a, a);
            n->w[1] = fill((size_t)n->filters, -0.5, 0.5);
            break;
        }
        case FN_OP_BATCH_NORM:
            n->w[0] = fill((size_t)in->c, 0.5, 1.5);  /* gamma */
            n->w[1] = fill((size_t)in->c, -0.5, 0.5); /* beta */
            n->w[2] = fill((size_t)in->c, -0.5, 0.5); /* moving_mean */
            n->w[3] = fill((size_t)in->c, 0.25, 2.0); /* moving_variance > 0 */
            break;
        case FN_OP_DENSE: {
            size_t fan_in = in->flat ? (size_t)in->c : (size_t)in->h * in->w * in->c;
            double a = sqrt(3.0 / (double)fan_in);
            n->w[0] = fill(fan_in * n->filters, -a, a);
            n->w[1] = fill((size_t)n->filters, -0.3, 0.3);
            break;
        }
        default: continue;
        }
        m->weights[i] = FN_WEIGHTS_LOADED;
    }
    free(shapes);
}

/* ---- the reference interpreter: one ref_ops.h call per Keras layer ---- */

static ref_t *ref_model(const fusenet_model *m, const ref_t *input) {
    const fn_graph *g = &m->g;
    ref_t *v = calloc((size_t)g->n, sizeof *v);
    assert_non_null(v);
    for (int i = 0; i < g->n; i++) {
        const fn_node *n = &g->nodes[i];
        const ref_t *x = n->n_in ? &v[n->in[0]] : NULL;
        if (x && !x->d) continue; /* depends on an unloaded layer */
        if (fusenet__node_weight_count(n) && m->weights[i] != FN_WEIGHTS_LOADED) continue;
        switch (n->op) {
        case FN_OP_INPUT:
            v[i] = ref_alloc(input->n, input->h, input->w, input->c);
            memcpy(v[i].d, input->d, ref_count(input) * sizeof *input->d);
            break;
        case FN_OP_ZERO_PAD:
            assert_true(n->pad_t == n->pad_b && n->pad_t == n->pad_l && n->pad_t == n->pad_r);
            v[i] = ref_zero_pad(x, n->pad_t);
            break;
        case FN_OP_CONV2D:
            assert_int_equal(n->kh, n->kw);
            v[i] = ref_conv2d(x, n->w[0], n->w[1], n->filters, n->kh, n->stride, n->padding == FN_PAD_SAME,
                              n->act == FN_ACT_RELU);
            break;
        case FN_OP_BATCH_NORM:
            v[i] = ref_batch_norm(x, n->w[0], n->w[1], n->w[2], n->w[3], (double)n->epsilon);
            break;
        case FN_OP_RELU: v[i] = ref_relu(x); break;
        case FN_OP_MAX_POOL:
            assert_int_equal(n->padding, FN_PAD_VALID);
            v[i] = ref_max_pool(x, n->kh, n->stride);
            break;
        case FN_OP_GLOBAL_AVG_POOL: v[i] = ref_global_pool(x, 0); break;
        case FN_OP_GLOBAL_MAX_POOL: v[i] = ref_global_pool(x, 1); break;
        case FN_OP_ADD:
            if (!v[n->in[1]].d) continue;
            v[i] = ref_add(x, &v[n->in[1]]);
            break;
        case FN_OP_FLATTEN: v[i] = ref_flatten(x); break;
        case FN_OP_DENSE:
            v[i] = ref_dense(x, n->w[0], n->w[1], n->filters,
                             n->act == FN_ACT_RELU ? 1 : n->act == FN_ACT_SOFTMAX ? 2 : 0);
            break;
        }
    }
    return v;
}

static void ref_model_free(const fusenet_model *m, ref_t *v) {
    for (int i = 0; i < m->g.n; i++) ref_release(&v[i]);
    free(v);
}

static const ref_t *ref_layer(const fusenet_model *m, ref_t *v, const char *name) {
    int i = fusenet__graph_find(&m->g, name);
    assert_true(i >= 0);
    assert_non_null(v[i].d);
    return &v[i];
}

/* ---- inputs, nets, comparisons ---- */

typedef struct tinput {
    float *data;
    ref_t ref;
    fusenet_tensor t;
} tinput;

static tinput input_new(int32_t batch, int32_t h, int32_t w, uint64_t seed) {
    tinput in;
    in.ref = ref_alloc(batch, h, w, 3);
    in.data = malloc(ref_count(&in.ref) * sizeof *in.data);
    assert_non_null(in.data);
    rng_seed(seed ^ 0x5eedull);
    for (size_t k = 0; k < ref_count(&in.ref); k++) {
        in.data[k] = rng_range(-1.0, 1.0);
        in.ref.d[k] = (double)in.data[k];
    }
    in.t = (fusenet_tensor){in.data, batch, h, w, 3};
    return in;
}

static void input_free(tinput *in) {
    free(in->data);
    ref_release(&in->ref);
}

static fusenet_net_params trunk_params(const fusenet_tap *taps, size_t n, int32_t batch, int32_t h, int32_t w) {
    fusenet_net_params p = fusenet_net_default_params();
    p.taps = taps;
    p.n_taps = n;
    p.batch = batch;
    p.in_h = h;
    p.in_w = w;
    p.fuse = 0;
    return p;
}

static fusenet_net *build_ok(const fusenet_net_params *p) {
    fusenet_error e;
    fusenet_net *net = NULL;
    fusenet_status st = fusenet_net_build(p, &net, &e);
    if (st != FUSENET_OK) print_error("fusenet_net_build: %s: %s\n", fusenet_status_name(st), e.message);
    assert_int_equal(st, FUSENET_OK);
    assert_non_null(net);
    return net;
}

static void run_ok(fusenet_net *net, const tinput *in) {
    fusenet_error e;
    fusenet_status st = fusenet_net_run(net, &in->t, &e);
    if (st != FUSENET_OK) print_error("fusenet_net_run: %s: %s\n", fusenet_status_name(st), e.message);
    assert_int_equal(st, FUSENET_OK);
}

/* Extra words for failure messages of table-driven tests. */
static char g_context[128];

/* Max abs error of got against want, relative to max(1, max |want|); fails above TOL. */
static double check_close(const fusenet_tensor *got, const ref_t *want, const char *what) {
    if (got->n != want->n || got->h != want->h || got->w != want->w || got->c != want->c) {
        print_error("%s%s%s: shape %dx%dx%dx%d, expected %dx%dx%dx%d\n", g_context, *g_context ? ": " : "", what,
                    got->n, got->h, got->w, got->c, want->n, want->h, want->w, want->c);
        fail();
    }
    double max_ref = 1.0, max_err = 0.0;
    size_t worst = 0;
    for (size_t k = 0; k < ref_count(want); k++) max_ref = fmax(max_ref, fabs(want->d[k]));
    for (size_t k = 0; k < ref_count(want); k++) {
        double err = fabs((double)got->data[k] - want->d[k]);
        if (!(err <= max_err)) { /* also catches NaN */
            max_err = isnan(err) ? INFINITY : err;
            worst = k;
        }
    }
    if (!(max_err <= TOL * max_ref)) {
        print_error("%s%s%s: max abs error %.3g at element %zu (got %.9g, want %.9g), limit %.3g\n", g_context,
                    *g_context ? ": " : "", what, max_err, worst, (double)got->data[worst], want->d[worst],
                    TOL * max_ref);
        fail();
    }
    return max_err / max_ref;
}

static void check_tap(const fusenet_net *net, size_t i, const ref_t *want, const char *what) {
    fusenet_tensor t;
    fusenet_error e;
    assert_int_equal(fusenet_net_tap_output(net, i, &t, &e), FUSENET_OK);
    assert_non_null(t.data);
    check_close(&t, want, what);
}

static int node_of(const fusenet_model *m, const char *layer) {
    int i = fusenet__graph_find(&m->g, layer);
    if (i < 0) print_error("no layer %s\n", layer);
    assert_true(i >= 0);
    return i;
}

/* Compute steps producing layer's value (0: folded into another step). The
 * nets here have one model: its steps are trunk 0. */
static int compute_steps(const fusenet_net *net, const fusenet_model *m, const char *layer) {
    int node = node_of(m, layer), k = 0;
    for (int s = 0; s < net->n_steps; s++) {
        const fn_step *st = &net->steps[s];
        if (st->kind == FN_STEP_COMPUTE && st->model == 0 && st->node == node) k++;
    }
    return k;
}

static int all_compute_steps(const fusenet_net *net) {
    int k = 0;
    for (int s = 0; s < net->n_steps; s++) k += net->steps[s].kind == FN_STEP_COMPUTE;
    return k;
}

/* The one compute step producing layer's value: the layer its chain starts at. */
static const char *chain_first(const fusenet_net *net, const fusenet_model *m, const char *layer) {
    int node = node_of(m, layer);
    const fn_step *found = NULL;
    for (int s = 0; s < net->n_steps; s++) {
        const fn_step *st = &net->steps[s];
        if (st->kind != FN_STEP_COMPUTE || st->node != node) continue;
        assert_null(found);
        found = st;
    }
    if (!found) print_error("no compute step for %s\n", layer);
    assert_non_null(found);
    assert_true(found->first >= 0 && found->first <= node);
    return m->g.nodes[found->first].name;
}

/* Each tap has exactly one tap copy step, of its own node. */
static void check_tap_steps(const fusenet_net *net, const fusenet_model *m, const char *const *layers, size_t n) {
    for (size_t k = 0; k < n; k++) {
        int copies = 0;
        for (int s = 0; s < net->n_steps; s++) {
            const fn_step *st = &net->steps[s];
            if (st->kind != FN_STEP_TAP || st->tap != (int)k) continue;
            assert_int_equal(st->node, node_of(m, layers[k]));
            assert_string_equal(st->layer, layers[k]);
            copies++;
        }
        assert_int_equal(copies, 1);
    }
}

/* Builds a trunk net (fuse = 0) tapping `layers` of m, runs it on a seeded
 * input and checks every tap against the reference. Returns the net (the
 * caller may inspect its steps) or frees it if keep is 0. */
static fusenet_net *check_trunk(const fusenet_model *m, const char *const *layers, size_t n_layers, int32_t batch,
                                int32_t h, int32_t w, uint64_t seed, int keep) {
    fusenet_tap taps[FN_MAX_TAPS];
    assert_true(n_layers <= FN_MAX_TAPS);
    for (size_t k = 0; k < n_layers; k++) taps[k] = (fusenet_tap){m, layers[k]};
    fusenet_net_params p = trunk_params(taps, n_layers, batch, h, w);
    fusenet_net *net = build_ok(&p);
    tinput in = input_new(batch, h, w, seed);
    ref_t *ref = ref_model(m, &in.ref);
    run_ok(net, &in);
    check_tap_steps(net, m, layers, n_layers);
    for (size_t k = 0; k < n_layers; k++) {
        char what[160];
        snprintf(what, sizeof what, "tap %s (batch %d, input %dx%d, %zu taps)", layers[k], batch, h, w, n_layers);
        check_tap(net, k, ref_layer(m, ref, layers[k]), what);
    }
    ref_model_free(m, ref);
    input_free(&in);
    if (!keep) {
        fusenet_net_free(net);
        return NULL;
    }
    return net;
}

/* ---- the reference itself ---- */

static void test_reference_self_check(void **state) {
    (void)state;
    /* Spec example: 13 -> 12 bilinear coordinates. */
    ref_coord c0 = ref_bilinear_coord(0, 13, 12), c1 = ref_bilinear_coord(1, 13, 12),
              c11 = ref_bilinear_coord(11, 13, 12);
    assert_true(fabs(c0.x - 0.0416667) < 1e-5 && c0.lower == 0 && c0.upper == 1);
    assert_true(fabs(c1.x - 1.125) < 1e-5 && c1.lower == 1 && c1.upper == 2);
    assert_true(fabs(c11.x - 11.958333) < 1e-5 && c11.lower == 11 && c11.upper == 12);
    assert_true(fabs(c1.lerp - 0.125) < 1e-6);
    /* Downscale edges clamp; upsampling clamps at both ends. */
    ref_coord up0 = ref_bilinear_coord(0, 2, 41), up40 = ref_bilinear_coord(40, 2, 41);
    assert_true(up0.x < 0.0f && up0.lower == 0 && up0.upper == 0);
    assert_true(up40.lower == 1 && up40.upper == 1);
    /* Nearest ties, float32 as TensorFlow: 14.5 * (30/29) and 20.5 * (2/41) fall just below an integer. */
    assert_int_equal(ref_nearest_index(14, 30, 29), 14);
    assert_int_equal(ref_nearest_index(20, 2, 41), 0);
    assert_int_equal(ref_nearest_index(28, 30, 29), 29);
    assert_int_equal(ref_nearest_index(0, 7, 3), 1);
    /* The library's index rule agrees on these ties. */
    assert_int_equal(fusenet__tf_nearest_index(14, 30, 29), 14);
    assert_int_equal(fusenet__tf_nearest_index(20, 2, 41), 0);
    for (int in = 1; in <= 40; in++)
        for (int out = 1; out <= 45; out++)
            for (int o = 0; o < out; o++)
                assert_int_equal(fusenet__tf_nearest_index(o, in, out), ref_nearest_index(o, in, out));

    /* 'same' padding as TensorFlow: ResNet's 7x7/2 on 224 pads 2 before, 3 after. */
    assert_int_equal(ref_window_out(224, 7, 2, 1), 112);
    assert_int_equal(ref_same_before(224, 7, 2, 1), 2);
    assert_int_equal(ref_same_before(4, 3, 2, 1), 0); /* total 1: the odd cell goes after */
    assert_int_equal(ref_window_out(33, 2, 2, 0), 16);

    /* Hand-computed conv: 3x3 input 1..9, all-ones 3x3 kernel, bias 0.5. */
    ref_t x = ref_alloc(1, 3, 3, 1);
    for (int k = 0; k < 9; k++) x.d[k] = k + 1;
    float ones[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1}, bias = 0.5f;
    ref_t y = ref_conv2d(&x, ones, &bias, 1, 3, 1, 1, 0);
    assert_int_equal(y.h, 3);
    assert_true(y.d[0] == 12.5 && y.d[4] == 45.5 && y.d[8] == 28.5);
    ref_release(&y);
    y = ref_conv2d(&x, ones, &bias, 1, 3, 2, 1, 0); /* same, stride 2: out 2x2, pad before 1 */
    assert_true(y.h == 2 && y.d[0] == 12.5 && y.d[3] == 28.5);
    ref_release(&y);
    y = ref_max_pool(&x, 2, 2);
    assert_true(y.h == 1 && y.w == 1 && y.d[0] == 5.0);
    ref_release(&y);
    ref_release(&x);
    /* Flatten is (h, w, c) order. */
    x = ref_alloc(1, 2, 2, 2);
    for (int k = 0; k < 8; k++) x.d[k] = k;
    y = ref_flatten(&x);
    for (int k = 0; k < 8; k++) assert_true(y.d[k] == k);
    ref_release(&y);
    ref_release(&x);
}

/* ---- Conv2D ---- */

static void test_conv2d_variants(void **state) {
    (void)state;
    /* in_h, in_w, pre-stride (0: the conv reads the input directly) -> conv input size */
    static const struct {
        int32_t h, w;
        int pre_stride;
        int ch, cw;
    } sizes[] = {{33, 36, 0, 33, 36}, {37, 49, 4, 9, 12}, {48, 33, 5, 10, 7}};
    static const int kernels[] = {1, 3, 7};
    int count = 0;
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++)
        for (int ki = 0; ki < 3; ki++)
            for (int stride = 1; stride <= 2; stride++)
                for (int same = 0; same <= 1; same++)
                    for (int relu = 0; relu <= 1; relu++, count++) {
                        int k = kernels[ki];
                        fusenet_model *m = tm_new();
                        int x = fusenet__input(&m->g, "input");
                        if (sizes[si].pre_stride)
                            x = fusenet__conv2d(&m->g, x, 5, 3, sizes[si].pre_stride, FN_PAD_VALID, FN_ACT_NONE, "pre");
                        fusenet__conv2d(&m->g, x, 6, k, stride, same ? FN_PAD_SAME : FN_PAD_VALID,
                                  relu ? FN_ACT_RELU : FN_ACT_NONE, "conv");
                        tm_weights(m, sizes[si].h, sizes[si].w, 100 + (uint64_t)count);
                        fn_shape shapes[3];
                        assert_int_equal(fusenet__graph_shapes(&m->g, sizes[si].h, sizes[si].w, shapes, NULL), FUSENET_OK);
                        int pre = sizes[si].pre_stride ? 1 : 0;
                        assert_int_equal(shapes[pre].h, sizes[si].ch);
                        assert_int_equal(shapes[pre].w, sizes[si].cw);
                        const char *taps[] = {"conv"};
                        int32_t batch = count % 3 == 0 ? 3 : 1;
                        snprintf(g_context, sizeof g_context, "conv on %dx%d, k%d s%d %s%s", sizes[si].ch,
                                 sizes[si].cw, k, stride, same ? "same" : "valid", relu ? " relu" : "");
                        check_trunk(m, taps, 1, batch, sizes[si].h, sizes[si].w, 1000 + (uint64_t)count, 0);
                        fusenet_model_free(m);
                        g_context[0] = 0;
                    }
    assert_int_equal(count, 72);
}

/* ResNet stem: ZeroPadding2D(3) -> Conv2D 7x7/2 valid -> BN -> ReLU ->
 * ZeroPadding2D(1) -> MaxPooling2D 3x3/2. */
static fusenet_model *stem_model(uint64_t seed, int32_t h, int32_t w) {
    fusenet_model *m = tm_new();
    fn_graph *g = &m->g;
    int x = fusenet__input(g, "input");
    x = fusenet__zero_pad(g, x, 3, "conv1_pad");
    x = fusenet__conv2d(g, x, 8, 7, 2, FN_PAD_VALID, FN_ACT_NONE, "conv1_conv");
    x = fusenet__batch_norm(g, x, BN_EPS, "conv1_bn");
    x = fusenet__relu(g, x, "conv1_relu");
    x = fusenet__zero_pad(g, x, 1, "pool1_pad");
    fusenet__max_pool(g, x, 3, 2, "pool1_pool");
    tm_weights(m, h, w, seed);
    return m;
}

static void test_resnet_stem(void **state) {
    (void)state;
    const int32_t sizes[][2] = {{35, 38}, {40, 33}};
    for (int s = 0; s < 2; s++) {
        int32_t h = sizes[s][0], w = sizes[s][1];
        fusenet_model *m = stem_model(7 + (uint64_t)s, h, w);
        /* Only the pool: both paddings fold, BN folds, ReLU fuses. */
        const char *pool[] = {"pool1_pool"};
        fusenet_net *net = check_trunk(m, pool, 1, s ? 3 : 1, h, w, 11, 1);
        assert_int_equal(compute_steps(net, m, "conv1_pad"), 0);
        assert_int_equal(compute_steps(net, m, "conv1_conv"), 0);
        assert_int_equal(compute_steps(net, m, "conv1_bn"), 0);
        assert_int_equal(compute_steps(net, m, "pool1_pad"), 0);
        assert_string_equal(chain_first(net, m, "conv1_relu"), "conv1_conv");
        assert_string_equal(chain_first(net, m, "pool1_pool"), "pool1_pool");
        assert_int_equal(all_compute_steps(net), 2);
        fusenet_net_free(net);
        /* Everything tapped: standalone pads, unfolded BN, standalone ReLU. */
        const char *all[] = {"conv1_pad", "conv1_conv", "conv1_bn", "conv1_relu", "pool1_pad", "pool1_pool", "input"};
        net = check_trunk(m, all, 7, s ? 1 : 3, h, w, 12, 1);
        for (int k = 0; k < 6; k++) assert_string_equal(chain_first(net, m, all[k]), all[k]);
        assert_int_equal(all_compute_steps(net), 6);
        fusenet_net_free(net);
        /* Only the tapped first padding standalone; the rest folds. */
        const char *pads[] = {"conv1_pad", "conv1_relu"};
        net = check_trunk(m, pads, 2, 1, h, w, 13, 1);
        assert_string_equal(chain_first(net, m, "conv1_pad"), "conv1_pad");
        assert_string_equal(chain_first(net, m, "conv1_relu"), "conv1_conv");
        assert_int_equal(all_compute_steps(net), 2);
        fusenet_net_free(net);
        fusenet_model_free(m);
    }
}

/* ZeroPadding2D folded into a 'same' conv (both paddings add up), strided or
 * not, on an odd size; and a padding with two consumers, which stays a layer. */
static void test_zero_pad_into_conv(void **state) {
    (void)state;
    for (int stride = 1; stride <= 2; stride++) {
        fusenet_model *m = tm_new();
        int x = fusenet__input(&m->g, "input");
        x = fusenet__zero_pad(&m->g, x, 2, "pad");
        fusenet__conv2d(&m->g, x, 4, 3, stride, FN_PAD_SAME, FN_ACT_RELU, "conv");
        tm_weights(m, 33, 34, 20 + (uint64_t)stride);
        const char *one[] = {"conv"};
        fusenet_net *net = check_trunk(m, one, 1, 1, 33, 34, 21, 1);
        assert_int_equal(compute_steps(net, m, "pad"), 0);
        assert_string_equal(chain_first(net, m, "conv"), "conv");
        fusenet_net_free(net);
        const char *two[] = {"pad", "conv"};
        net = check_trunk(m, two, 2, 3, 33, 34, 22, 1);
        assert_int_equal(compute_steps(net, m, "pad"), 1);
        assert_int_equal(compute_steps(net, m, "conv"), 1);
        fusenet_net_free(net);
        fusenet_model_free(m);
    }
    /* A padding read by two convs folds into neither: one standalone pad. */
    fusenet_model *m = tm_new();
    int x = fusenet__input(&m->g, "input");
    x = fusenet__zero_pad(&m->g, x, 1, "pad");
    fusenet__conv2d(&m->g, x, 4, 3, 2, FN_PAD_VALID, FN_ACT_NONE, "conv_a");
    fusenet__conv2d(&m->g, x, 3, 1, 1, FN_PAD_VALID, FN_ACT_RELU, "conv_b");
    tm_weights(m, 35, 32, 23);
    const char *ab[] = {"conv_a", "conv_b"};
    fusenet_net *net = check_trunk(m, ab, 2, 3, 35, 32, 24, 1);
    assert_int_equal(compute_steps(net, m, "pad"), 1);
    assert_int_equal(compute_steps(net, m, "conv_a"), 1);
    assert_int_equal(compute_steps(net, m, "conv_b"), 1);
    fusenet_net_free(net);
    fusenet_model_free(m);
}

/* ---- BatchNormalization and ReLU ---- */

static void test_batch_norm_fold(void **state) {
    (void)state;
    fusenet_model *m = tm_new();
    int in = fusenet__input(&m->g, "input");
    int x = fusenet__conv2d(&m->g, in, 12, 3, 1, FN_PAD_SAME, FN_ACT_NONE, "conv");
    x = fusenet__batch_norm(&m->g, x, BN_EPS, "bn");
    fusenet__batch_norm(&m->g, in, BN_EPS, "bn_on_input"); /* standalone BN on the raw input */
    tm_weights(m, 34, 33, 30);
    const char *folded[] = {"bn"};
    fusenet_net *net = check_trunk(m, folded, 1, 1, 34, 33, 31, 1);
    assert_int_equal(compute_steps(net, m, "conv"), 0);
    assert_string_equal(chain_first(net, m, "bn"), "conv");
    assert_int_equal(all_compute_steps(net), 1);
    fusenet_net_free(net);
    check_trunk(m, folded, 1, 3, 34, 33, 32, 0);
    const char *both[] = {"conv", "bn"}; /* conv tapped: the BN stays a layer */
    net = check_trunk(m, both, 2, 1, 34, 33, 33, 1);
    assert_string_equal(chain_first(net, m, "conv"), "conv");
    assert_string_equal(chain_first(net, m, "bn"), "bn");
    fusenet_net_free(net);
    check_trunk(m, both, 2, 3, 34, 33, 34, 0);
    const char *raw[] = {"bn_on_input", "bn"};
    net = check_trunk(m, raw, 2, 3, 34, 33, 35, 1);
    assert_string_equal(chain_first(net, m, "bn_on_input"), "bn_on_input");
    assert_string_equal(chain_first(net, m, "bn"), "conv");
    fusenet_net_free(net);
    fusenet_model_free(m);
}

static void test_relu(void **state) {
    (void)state;
    fusenet_model *m = tm_new();
    fn_graph *g = &m->g;
    int in = fusenet__input(g, "input");
    int x = fusenet__conv2d(g, in, 6, 3, 2, FN_PAD_SAME, FN_ACT_NONE, "conv");
    fusenet__relu(g, x, "relu");
    fusenet__relu(g, in, "relu_on_input");
    x = fusenet__conv2d(g, in, 5, 1, 1, FN_PAD_VALID, FN_ACT_NONE, "conv_b");
    x = fusenet__batch_norm(g, x, BN_EPS, "bn_b");
    fusenet__relu(g, x, "relu_b");
    tm_weights(m, 32, 37, 40);
    const char *fused[] = {"relu"};
    fusenet_net *net = check_trunk(m, fused, 1, 1, 32, 37, 41, 1);
    assert_int_equal(compute_steps(net, m, "conv"), 0);
    assert_string_equal(chain_first(net, m, "relu"), "conv");
    fusenet_net_free(net);
    const char *standalone[] = {"conv", "relu", "relu_on_input"};
    net = check_trunk(m, standalone, 3, 3, 32, 37, 42, 1);
    for (int k = 0; k < 3; k++) assert_string_equal(chain_first(net, m, standalone[k]), standalone[k]);
    assert_int_equal(all_compute_steps(net), 3);
    fusenet_net_free(net);
    const char *bn_relu[] = {"relu_b"}; /* conv + folded BN + fused ReLU */
    net = check_trunk(m, bn_relu, 1, 3, 32, 37, 43, 1);
    assert_int_equal(compute_steps(net, m, "bn_b"), 0);
    assert_int_equal(compute_steps(net, m, "conv_b"), 0);
    assert_string_equal(chain_first(net, m, "relu_b"), "conv_b");
    assert_int_equal(all_compute_steps(net), 1);
    fusenet_net_free(net);
    const char *bn_tapped[] = {"bn_b", "relu_b"}; /* BN folded, ReLU standalone */
    net = check_trunk(m, bn_tapped, 2, 1, 32, 37, 44, 1);
    assert_string_equal(chain_first(net, m, "bn_b"), "conv_b");
    assert_string_equal(chain_first(net, m, "relu_b"), "relu_b");
    fusenet_net_free(net);
    fusenet_model_free(m);
}

/* Conv2D(activation='relu') followed by BatchNormalization: the BN applies to
 * the ReLU's output, so it cannot be folded into the conv's weights. */
static void test_conv_relu_then_batch_norm(void **state) {
    (void)state;
    /* Regression (was a bug in src/compiler/compile.c, compile_conv): the BatchNormalization after a
     * Conv2D(activation='relu') is folded into the conv's weights and the
     * ReLU applied after it, i.e. relu(bn(conv(x))) instead of
     * bn(relu(conv(x))). Folding must be refused when n->act == FN_ACT_RELU. */
    fusenet_model *m = tm_new();
    int x = fusenet__input(&m->g, "input");
    x = fusenet__conv2d(&m->g, x, 6, 3, 1, FN_PAD_SAME, FN_ACT_RELU, "conv");
    fusenet__batch_norm(&m->g, x, BN_EPS, "bn");
    tm_weights(m, 32, 32, 45);
    const char *both[] = {"conv", "bn"}; /* conv tapped: nothing folds */
    check_trunk(m, both, 2, 1, 32, 32, 46, 0);
    const char *bn[] = {"bn"};
    check_trunk(m, bn, 1, 1, 32, 32, 47, 0);
    fusenet_model_free(m);
}

/* ---- residual Add ---- */

/* stem conv -> bn -> relu ("block0_out"), then an identity block:
 * 1x1 conv -> bn -> relu -> 3x3 conv -> bn -> Add([block0_out, bn]) -> relu,
 * then a second identity block on block1_out. */
static fusenet_model *residual_model(uint64_t seed) {
    fusenet_model *m = tm_new();
    fn_graph *g = &m->g;
    int x = fusenet__input(g, "input");
    x = fusenet__conv2d(g, x, 8, 3, 2, FN_PAD_SAME, FN_ACT_NONE, "b0_conv");
    x = fusenet__batch_norm(g, x, BN_EPS, "b0_bn");
    int sc = fusenet__relu(g, x, "block0_out");
    for (int b = 1; b <= 2; b++) {
        char nm[6][32];
        const char *suffix[6] = {"1_conv", "1_bn", "1_relu", "2_conv", "2_bn", "add"};
        for (int k = 0; k < 6; k++) snprintf(nm[k], sizeof nm[k], "b%d_%s", b, suffix[k]);
        x = fusenet__conv2d(g, sc, 6, 1, 1, FN_PAD_VALID, FN_ACT_NONE, nm[0]);
        x = fusenet__batch_norm(g, x, BN_EPS, nm[1]);
        x = fusenet__relu(g, x, nm[2]);
        x = fusenet__conv2d(g, x, 8, 3, 1, FN_PAD_SAME, FN_ACT_NONE, nm[3]);
        x = fusenet__batch_norm(g, x, BN_EPS, nm[4]);
        x = fusenet__add(g, sc, x, nm[5]);
        char out[32];
        snprintf(out, sizeof out, "block%d_out", b);
        sc = fusenet__relu(g, x, out);
    }
    tm_weights(m, 36, 34, seed);
    return m;
}

static void test_residual_add(void **state) {
    (void)state;
    fusenet_model *m = residual_model(50);
    /* Sum post-op: the add and its ReLU fold into b1_2_conv. */
    const char *out[] = {"block1_out"};
    fusenet_net *net = check_trunk(m, out, 1, 1, 36, 34, 51, 1);
    assert_int_equal(compute_steps(net, m, "b1_2_bn"), 0);
    assert_int_equal(compute_steps(net, m, "b1_add"), 0);
    assert_string_equal(chain_first(net, m, "block1_out"), "b1_2_conv");
    fusenet_net_free(net);
    check_trunk(m, out, 1, 3, 36, 34, 52, 0);
    /* The add tapped (pre-ReLU): sum post-op still, ReLU standalone. */
    const char *add[] = {"b1_add", "block1_out"};
    net = check_trunk(m, add, 2, 3, 36, 34, 53, 1);
    assert_int_equal(compute_steps(net, m, "b1_2_bn"), 0);
    assert_string_equal(chain_first(net, m, "b1_add"), "b1_2_conv");
    assert_string_equal(chain_first(net, m, "block1_out"), "block1_out");
    fusenet_net_free(net);
    /* The BN before the add tapped: standalone Add primitive. */
    const char *bn[] = {"b1_2_bn", "block1_out"};
    net = check_trunk(m, bn, 2, 1, 36, 34, 54, 1);
    assert_string_equal(chain_first(net, m, "b1_2_bn"), "b1_2_conv");
    assert_string_equal(chain_first(net, m, "b1_add"), "b1_add");
    fusenet_net_free(net);
    /* Two blocks: block1_out is tapped and is also the buffer block 2's sum
     * post-op writes into; the tap must keep block 1's value. */
    const char *chain[] = {"block2_out", "block1_out", "block0_out"};
    check_trunk(m, chain, 3, 3, 36, 34, 55, 0);
    const char *mid[] = {"b2_add", "b1_1_relu", "b2_2_conv"};
    check_trunk(m, mid, 3, 1, 36, 34, 56, 0);
    fusenet_model_free(m);
}

/* Projection shortcut (1x1 conv + BN), built before or after the main path. */
static void test_residual_projection(void **state) {
    (void)state;
    for (int shortcut_first = 0; shortcut_first <= 1; shortcut_first++) {
        fusenet_model *m = tm_new();
        fn_graph *g = &m->g;
        int in = fusenet__input(g, "input");
        int x0 = fusenet__conv2d(g, in, 4, 3, 1, FN_PAD_SAME, FN_ACT_RELU, "c0");
        int sc = -1, x;
        if (shortcut_first) {
            sc = fusenet__conv2d(g, x0, 8, 1, 2, FN_PAD_VALID, FN_ACT_NONE, "sc_conv");
            sc = fusenet__batch_norm(g, sc, BN_EPS, "sc_bn");
        }
        x = fusenet__conv2d(g, x0, 5, 3, 2, FN_PAD_SAME, FN_ACT_NONE, "m_conv1");
        x = fusenet__relu(g, x, "m_relu");
        x = fusenet__conv2d(g, x, 8, 3, 1, FN_PAD_SAME, FN_ACT_NONE, "m_conv2");
        x = fusenet__batch_norm(g, x, BN_EPS, "m_bn");
        if (!shortcut_first) {
            sc = fusenet__conv2d(g, x0, 8, 1, 2, FN_PAD_VALID, FN_ACT_NONE, "sc_conv");
            sc = fusenet__batch_norm(g, sc, BN_EPS, "sc_bn");
        }
        x = fusenet__add(g, sc, x, "add");
        fusenet__relu(g, x, "out");
        tm_weights(m, 33, 35, 60 + (uint64_t)shortcut_first);
        const char *out[] = {"out"};
        fusenet_net *net = check_trunk(m, out, 1, 3, 33, 35, 61, 1);
        assert_int_equal(compute_steps(net, m, "add"), 0);
        /* the add folds into the conv of the branch computed last */
        assert_string_equal(chain_first(net, m, "out"), shortcut_first ? "m_conv2" : "sc_conv");
        fusenet_net_free(net);
        const char *taps[] = {"add", "sc_bn", "m_conv2"};
        check_trunk(m, taps, 3, 1, 33, 35, 62, 0);
        fusenet_model_free(m);
    }
}

/* Add whose shortcut is the network input (not an arena buffer: no sum post-op). */
static void test_residual_input_shortcut(void **state) {
    (void)state;
    fusenet_model *m = tm_new();
    int in = fusenet__input(&m->g, "input");
    int x = fusenet__conv2d(&m->g, in, 3, 3, 1, FN_PAD_SAME, FN_ACT_NONE, "conv");
    x = fusenet__batch_norm(&m->g, x, BN_EPS, "bn");
    x = fusenet__add(&m->g, in, x, "add");
    fusenet__relu(&m->g, x, "out");
    tm_weights(m, 32, 35, 65);
    const char *out[] = {"out"};
    fusenet_net *net = check_trunk(m, out, 1, 3, 32, 35, 66, 1);
    assert_string_equal(chain_first(net, m, "bn"), "conv");
    assert_string_equal(chain_first(net, m, "add"), "add");
    fusenet_net_free(net);
    fusenet_model_free(m);
}

/* Add whose shortcut is the very input of the conv it is summed with
 * (a one-conv "basic block"): x -> conv 3x3 -> BN -> Add([x, bn]) -> ReLU. */
static void test_residual_shortcut_is_conv_input(void **state) {
    (void)state;
    /* Regression (was a bug in src/compiler/compile.c, compile_conv, residual sum post-op): the
     * shortcut c0 is also the conv's own source. The "nobody reads it later"
     * check skips consumers j <= i, so conv i itself passes, and the conv
     * writes its sum into the buffer it is still reading (src value == dst
     * value when the layouts agree): wrong results. The check must also
     * refuse other == the conv's source (src from window_input). */
    fusenet_model *m = tm_new();
    int x = fusenet__input(&m->g, "input");
    int sc = fusenet__conv2d(&m->g, x, 8, 3, 1, FN_PAD_SAME, FN_ACT_RELU, "c0");
    x = fusenet__conv2d(&m->g, sc, 8, 3, 1, FN_PAD_SAME, FN_ACT_NONE, "conv");
    x = fusenet__batch_norm(&m->g, x, BN_EPS, "bn");
    x = fusenet__add(&m->g, sc, x, "add");
    fusenet__relu(&m->g, x, "out");
    tm_weights(m, 34, 36, 67);
    const char *ref_path[] = {"bn", "out"}; /* BN tapped: standalone add */
    check_trunk(m, ref_path, 2, 1, 34, 36, 68, 0);
    const char *out[] = {"out"};
    fusenet_net *net = check_trunk(m, out, 1, 1, 34, 36, 68, 1);
    assert_string_equal(chain_first(net, m, "bn"), "conv");
    assert_string_equal(chain_first(net, m, "add"), "add");
    fusenet_net_free(net);
    check_trunk(m, out, 1, 3, 34, 36, 69, 0);
    fusenet_model_free(m);
}

/* ---- pooling ---- */

static void test_max_pool(void **state) {
    (void)state;
    fusenet_model *m = tm_new();
    fn_graph *g = &m->g;
    int in = fusenet__input(g, "input");
    /* VGG-style conv relu -> ZeroPadding2D(1) -> 3x3/2 (pad folds: input >= 0) */
    int x = fusenet__conv2d(g, in, 6, 3, 1, FN_PAD_SAME, FN_ACT_RELU, "vconv");
    x = fusenet__zero_pad(g, x, 1, "vpad");
    fusenet__max_pool(g, x, 3, 2, "vpool");
    /* Activation relu -> ZeroPadding2D(1) -> 3x3/2 */
    x = fusenet__conv2d(g, in, 5, 3, 2, FN_PAD_VALID, FN_ACT_NONE, "aconv");
    x = fusenet__relu(g, x, "arelu");
    x = fusenet__zero_pad(g, x, 1, "apad");
    fusenet__max_pool(g, x, 3, 2, "apool");
    /* 2x2/2 valid on odd sizes: the last row / column is dropped */
    fusenet__max_pool(g, in, 2, 2, "pool_input");
    x = fusenet__conv2d(g, in, 4, 3, 1, FN_PAD_SAME, FN_ACT_RELU, "oconv");
    fusenet__max_pool(g, x, 2, 2, "opool");
    /* ZeroPadding2D(1) on signed values: the zeros take part in the max, so
     * the padding must stay a layer */
    x = fusenet__conv2d(g, in, 4, 1, 1, FN_PAD_VALID, FN_ACT_NONE, "sconv");
    x = fusenet__zero_pad(g, x, 1, "spad");
    fusenet__max_pool(g, x, 3, 2, "spool");
    tm_weights(m, 33, 35, 70);

    const char *folded[] = {"vpool", "apool"};
    fusenet_net *net = check_trunk(m, folded, 2, 1, 33, 35, 71, 1);
    assert_int_equal(compute_steps(net, m, "vpad"), 0);
    assert_int_equal(compute_steps(net, m, "apad"), 0);
    assert_string_equal(chain_first(net, m, "vpool"), "vpool");
    assert_string_equal(chain_first(net, m, "apool"), "apool");
    fusenet_net_free(net);
    check_trunk(m, folded, 2, 3, 33, 35, 72, 0);
    const char *odd[] = {"pool_input", "opool", "spool"};
    check_trunk(m, odd, 3, 3, 33, 35, 73, 0);
    check_trunk(m, odd, 3, 1, 35, 33, 74, 0);
    const char *tapped_pad[] = {"vpad", "vpool", "spad"};
    check_trunk(m, tapped_pad, 3, 1, 33, 35, 75, 0);
    fusenet_model_free(m);
}

/* ReLU -> ZeroPadding2D -> a layer that is not a window op: the padding has
 * nowhere to fold and must be computed as a layer. */
static void test_relu_pad_then_global_pool(void **state) {
    (void)state;
    /* Regression (was a bug in src/compiler/compile.c, absorbable_pad): for any consumer that is not
     * a Conv2D it only checks that the padding's input is a ReLU, not that the
     * consumer is a MaxPooling2D. So ReLU -> ZeroPadding2D -> GlobalPooling (or
     * BN, Activation, Add, ...) drops the padding layer, and the consumer reads
     * a value never computed (ns[pad].value = -1, zeroed memory descriptor):
     * here oneDNN's pooling descriptor gets ndims 0 and memcpy's a negative
     * size onto the stack ("stack smashing detected"; ASan: negative-size-param
     * in fusenet__op_pool called from compile_pool). */
    fusenet_model *m = tm_new();
    int x = fusenet__input(&m->g, "input");
    x = fusenet__relu(&m->g, x, "relu");
    x = fusenet__zero_pad(&m->g, x, 2, "pad");
    fusenet__global_pool(&m->g, x, 0, "gap");
    tm_weights(m, 32, 32, 76);
    const char *gap[] = {"gap"};
    check_trunk(m, gap, 1, 1, 32, 32, 77, 0);
    fusenet_model_free(m);
}

static void test_global_pools(void **state) {
    (void)state;
    fusenet_model *m = tm_new();
    fn_graph *g = &m->g;
    int in = fusenet__input(g, "input");
    int x = fusenet__conv2d(g, in, 16, 3, 2, FN_PAD_SAME, FN_ACT_NONE, "conv");
    fusenet__global_pool(g, x, 0, "avg_pool");
    fusenet__global_pool(g, x, 1, "max_pool");
    fusenet__global_pool(g, in, 0, "avg_input");
    int a = fusenet__global_pool(g, fusenet__relu(g, x, "relu"), 0, "avg_relu");
    a = fusenet__dense(g, a, 10, FN_ACT_RELU, "fc1");
    fusenet__dense(g, a, 7, FN_ACT_SOFTMAX, "predictions");
    tm_weights(m, 33, 38, 80);
    const char *taps[] = {"avg_pool", "max_pool", "avg_input"};
    check_trunk(m, taps, 3, 1, 33, 38, 81, 0);
    check_trunk(m, taps, 3, 3, 33, 38, 82, 0);
    const char *head[] = {"avg_relu", "fc1", "predictions"};
    check_trunk(m, head, 3, 3, 33, 38, 83, 0);
    const char *pred[] = {"predictions"};
    check_trunk(m, pred, 1, 1, 33, 38, 84, 0);
    fusenet_model_free(m);
}

/* Flatten (NHWC order) + Dense relu + Dense softmax, the VGG16 top. */
static void test_flatten_dense(void **state) {
    (void)state;
    fusenet_model *m = tm_new();
    fn_graph *g = &m->g;
    int x = fusenet__input(g, "input");
    x = fusenet__conv2d(g, x, 16, 3, 2, FN_PAD_VALID, FN_ACT_RELU, "conv");
    x = fusenet__max_pool(g, x, 2, 2, "pool");
    x = fusenet__flatten(g, x, "flatten");
    x = fusenet__dense(g, x, 24, FN_ACT_RELU, "fc1");
    x = fusenet__dense(g, x, 9, FN_ACT_NONE, "fc2");
    fusenet__dense(g, x, 5, FN_ACT_SOFTMAX, "predictions");
    tm_weights(m, 32, 37, 90);
    const char *taps[] = {"flatten", "fc1", "fc2", "predictions"};
    check_trunk(m, taps, 4, 1, 32, 37, 91, 0);
    check_trunk(m, taps, 4, 3, 32, 37, 92, 0);
    const char *pred[] = {"predictions"};
    fusenet_net *net = check_trunk(m, pred, 1, 3, 32, 37, 93, 1);
    /* softmax rows sum to one */
    fusenet_tensor t;
    assert_int_equal(fusenet_net_tap_output(net, 0, &t, NULL), FUSENET_OK);
    for (int n = 0; n < 3; n++) {
        double s = 0.0;
        for (int u = 0; u < 5; u++) s += t.data[n * 5 + u];
        assert_true(fabs(s - 1.0) < 1e-5);
    }
    fusenet_net_free(net);
    fusenet_model_free(m);
}

/* ---- fuse head ---- */

typedef struct fuse_case {
    fusenet_interp interp;
    fusenet_size_policy size;
    int32_t oh, ow;
} fuse_case;

/* Builds a fused net over taps (which may name several models), runs it and
 * checks each tap and the fused map against the reference resize + concat. */
static fusenet_net *check_fused(const fusenet_tap *taps, size_t n_taps, const fuse_case *fc, int32_t batch, int32_t h,
                                int32_t w, uint64_t seed, int keep) {
    fusenet_net_params p = trunk_params(taps, n_taps, batch, h, w);
    p.fuse = 1;
    p.resize = fc->interp;
    p.size = fc->size;
    p.out_h = fc->oh;
    p.out_w = fc->ow;
    fusenet_net *net = build_ok(&p);
    tinput in = input_new(batch, h, w, seed);
    run_ok(net, &in);
    ref_t tap_ref[FN_MAX_TAPS];
    int th = 0, tw = 0;
    for (size_t t = 0; t < n_taps; t++) {
        ref_t *all = ref_model(taps[t].model, &in.ref);
        const ref_t *r = ref_layer(taps[t].model, all, taps[t].layer);
        tap_ref[t] = ref_alloc(r->n, r->h, r->w, r->c);
        memcpy(tap_ref[t].d, r->d, ref_count(r) * sizeof *r->d);
        ref_model_free(taps[t].model, all);
        char what[128];
        snprintf(what, sizeof what, "tap %zu (%s)", t, taps[t].layer);
        check_tap(net, t, &tap_ref[t], what);
        const ref_t *tr = &tap_ref[t];
        if (t == 0) {
            th = tr->h;
            tw = tr->w;
        } else if (fc->size == FUSENET_SIZE_MAX) {
            th = tr->h > th ? tr->h : th;
            tw = tr->w > tw ? tr->w : tw;
        } else {
            th = tr->h < th ? tr->h : th;
            tw = tr->w < tw ? tr->w : tw;
        }
    }
    if (fc->size == FUSENET_SIZE_EXPLICIT) {
        th = fc->oh;
        tw = fc->ow;
    }
    ref_t resized[FN_MAX_TAPS];
    for (size_t t = 0; t < n_taps; t++)
        resized[t] = ref_resize(&tap_ref[t], th, tw, fc->interp == FUSENET_INTERP_NEAREST);
    ref_t want = ref_concat(resized, (int)n_taps);
    fusenet_tensor got;
    assert_int_equal(fusenet_net_output(net, &got, NULL), FUSENET_OK);
    char what[160];
    snprintf(what, sizeof what, "fused map (%s, policy %d, %dx%d, batch %d)",
             fc->interp == FUSENET_INTERP_NEAREST ? "nearest" : "bilinear", (int)fc->size, th, tw, batch);
    check_close(&got, &want, what);
    ref_release(&want);
    for (size_t t = 0; t < n_taps; t++) {
        ref_release(&resized[t]);
        ref_release(&tap_ref[t]);
    }
    input_free(&in);
    if (!keep) {
        fusenet_net_free(net);
        return NULL;
    }
    return net;
}

/* input 40x36 -> a (3x3 same, 40x36) -> b (3x3/2 valid, 19x17) -> c (3x3/2 same, 10x9) */
static fusenet_model *fuse_model(uint64_t seed) {
    fusenet_model *m = tm_new();
    int x = fusenet__input(&m->g, "input");
    x = fusenet__conv2d(&m->g, x, 4, 3, 1, FN_PAD_SAME, FN_ACT_RELU, "a");
    x = fusenet__conv2d(&m->g, x, 5, 3, 2, FN_PAD_VALID, FN_ACT_NONE, "b");
    fusenet__conv2d(&m->g, x, 3, 3, 2, FN_PAD_SAME, FN_ACT_RELU, "c");
    tm_weights(m, 40, 36, seed);
    return m;
}

static void test_fuse_policies(void **state) {
    (void)state;
    fusenet_model *m = fuse_model(100);
    const fusenet_tap bc[] = {{m, "b"}, {m, "c"}};
    const fusenet_tap cab[] = {{m, "c"}, {m, "a"}, {m, "b"}};
    const fusenet_tap same_twice[] = {{m, "b"}, {m, "b"}};
    const fuse_case cases[] = {
        {FUSENET_INTERP_BILINEAR, FUSENET_SIZE_MIN, 0, 0},
        {FUSENET_INTERP_NEAREST, FUSENET_SIZE_MIN, 0, 0},
        {FUSENET_INTERP_BILINEAR, FUSENET_SIZE_MAX, 0, 0},
        {FUSENET_INTERP_NEAREST, FUSENET_SIZE_MAX, 0, 0},
        {FUSENET_INTERP_BILINEAR, FUSENET_SIZE_EXPLICIT, 13, 12},
        {FUSENET_INTERP_NEAREST, FUSENET_SIZE_EXPLICIT, 13, 12},
        {FUSENET_INTERP_BILINEAR, FUSENET_SIZE_EXPLICIT, 29, 41},
        {FUSENET_INTERP_NEAREST, FUSENET_SIZE_EXPLICIT, 29, 41},
        {FUSENET_INTERP_BILINEAR, FUSENET_SIZE_EXPLICIT, 1, 1},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        check_fused(bc, 2, &cases[k], k % 2 ? 3 : 1, 40, 36, 101 + k, 0);
        check_fused(cab, 3, &cases[k], k % 2 ? 1 : 3, 40, 36, 111 + k, 0);
    }
    /* MIN of 19x17 and 10x9 is 10x9; MAX of 40x36, 19x17, 10x9 is 40x36. */
    fusenet_net *net = check_fused(bc, 2, &cases[0], 1, 40, 36, 120, 1);
    fusenet_tensor t;
    assert_int_equal(fusenet_net_output(net, &t, NULL), FUSENET_OK);
    assert_true(t.h == 10 && t.w == 9 && t.c == 8 && t.n == 1);
    fusenet_net_free(net);
    net = check_fused(cab, 3, &cases[2], 1, 40, 36, 121, 1);
    assert_int_equal(fusenet_net_output(net, &t, NULL), FUSENET_OK);
    assert_true(t.h == 40 && t.w == 36 && t.c == 12);
    fusenet_net_free(net);
    check_fused(same_twice, 2, &cases[4], 3, 40, 36, 122, 0);
    fusenet_model_free(m);
}

/* Nearest ties decided by float32 rounding: 30 -> 29 rows (o = 14 reads
 * row 14) and 2 -> 41 columns (o = 20 reads column 0). */
static void test_fuse_nearest_ties(void **state) {
    (void)state;
    fusenet_model *m = tm_new();
    int in = fusenet__input(&m->g, "input");
    fusenet__conv2d(&m->g, in, 3, 1, 2, FN_PAD_VALID, FN_ACT_NONE, "t30");  /* 60x36 -> 30x18 */
    fusenet__conv2d(&m->g, in, 2, 1, 18, FN_PAD_VALID, FN_ACT_NONE, "t2"); /* 60x36 -> 4x2 */
    tm_weights(m, 60, 36, 130);
    const fusenet_tap taps[] = {{m, "t30"}, {m, "t2"}};
    const fuse_case fc = {FUSENET_INTERP_NEAREST, FUSENET_SIZE_EXPLICIT, 29, 41};
    for (int32_t batch = 1; batch <= 3; batch += 2) {
        fusenet_net *net = check_fused(taps, 2, &fc, batch, 60, 36, 131 + (uint64_t)batch, 1);
        fusenet_tensor out, a, b;
        assert_int_equal(fusenet_net_output(net, &out, NULL), FUSENET_OK);
        assert_int_equal(fusenet_net_tap_output(net, 0, &a, NULL), FUSENET_OK);
        assert_int_equal(fusenet_net_tap_output(net, 1, &b, NULL), FUSENET_OK);
        assert_true(a.h == 30 && a.w == 18 && b.h == 4 && b.w == 2 && out.c == 5);
        for (int n = 0; n < batch; n++) {
            for (int j = 0; j < 41; j++) {
                int src_x = ref_nearest_index(j, 18, 41);
                const float *o = out.data + (((size_t)n * 29 + 14) * 41 + j) * 5;
                const float *r14 = a.data + (((size_t)n * 30 + 14) * 18 + src_x) * 3;
                const float *r15 = a.data + (((size_t)n * 30 + 15) * 18 + src_x) * 3;
                for (int c = 0; c < 3; c++) {
                    assert_true(o[c] == r14[c]); /* row 14, not 15 */
                    assert_true(r14[c] != r15[c]);
                }
            }
            for (int i = 0; i < 29; i++) {
                int src_y = ref_nearest_index(i, 4, 29);
                const float *o = out.data + (((size_t)n * 29 + i) * 41 + 20) * 5 + 3;
                const float *c0 = b.data + (((size_t)n * 4 + src_y) * 2 + 0) * 2;
                const float *c1 = b.data + (((size_t)n * 4 + src_y) * 2 + 1) * 2;
                for (int c = 0; c < 2; c++) {
                    assert_true(o[c] == c0[c]); /* column 0, not 1 */
                    assert_true(c0[c] != c1[c]);
                }
            }
        }
        fusenet_net_free(net);
    }
    fusenet_model_free(m);
}

/* The spec's 13 -> 12 bilinear example, on the fused map itself. */
static void test_fuse_bilinear_13_to_12(void **state) {
    (void)state;
    fusenet_model *m = tm_new();
    int in = fusenet__input(&m->g, "input");
    fusenet__conv2d(&m->g, in, 3, 1, 4, FN_PAD_VALID, FN_ACT_NONE, "t13"); /* 52x48 -> 13x12 */
    fusenet__conv2d(&m->g, in, 2, 1, 3, FN_PAD_VALID, FN_ACT_NONE, "t18"); /* 52x48 -> 18x16 */
    tm_weights(m, 52, 48, 140);
    const fusenet_tap taps[] = {{m, "t13"}, {m, "t18"}};
    const fuse_case fc = {FUSENET_INTERP_BILINEAR, FUSENET_SIZE_EXPLICIT, 12, 12};
    fusenet_net *net = check_fused(taps, 2, &fc, 1, 52, 48, 141, 1);
    fusenet_tensor out, a;
    assert_int_equal(fusenet_net_output(net, &out, NULL), FUSENET_OK);
    assert_int_equal(fusenet_net_tap_output(net, 0, &a, NULL), FUSENET_OK);
    assert_true(a.h == 13 && a.w == 12 && out.h == 12 && out.w == 12 && out.c == 5);
    /* o -> (lower, upper, lerp) by hand: x = (o + 0.5) * 13 / 12 - 0.5 */
    const struct {
        int o, lo, hi;
        double lerp;
    } rows[] = {{0, 0, 1, 0.5 * 13.0 / 12.0 - 0.5}, {1, 1, 2, 0.125}, {11, 11, 12, 11.5 * 13.0 / 12.0 - 0.5 - 11.0}};
    for (int r = 0; r < 3; r++)
        for (int j = 0; j < 12; j++)
            for (int c = 0; c < 3; c++) {
                double lo = a.data[((size_t)rows[r].lo * 12 + j) * 3 + c];
                double hi = a.data[((size_t)rows[r].hi * 12 + j) * 3 + c];
                double want = lo + (hi - lo) * rows[r].lerp;
                double got = out.data[((size_t)rows[r].o * 12 + j) * 5 + c];
                assert_true(fabs(got - want) <= TOL * fmax(1.0, fabs(want)));
            }
    fusenet_net_free(net);
    fusenet_model_free(m);
}

/* Taps of two models: one trunk each, concatenated in tap order. */
static void test_fuse_two_models(void **state) {
    (void)state;
    fusenet_model *a = fuse_model(150);
    fusenet_model *b = tm_new();
    int x = fusenet__input(&b->g, "input");
    x = fusenet__conv2d(&b->g, x, 6, 3, 2, FN_PAD_SAME, FN_ACT_NONE, "bconv");
    x = fusenet__batch_norm(&b->g, x, BN_EPS, "bbn");
    fusenet__relu(&b->g, x, "bout");
    tm_weights(b, 40, 36, 151);
    const fusenet_tap taps[] = {{b, "bout"}, {a, "b"}, {b, "bconv"}};
    const fuse_case bil = {FUSENET_INTERP_BILINEAR, FUSENET_SIZE_MIN, 0, 0};
    const fuse_case nn = {FUSENET_INTERP_NEAREST, FUSENET_SIZE_MAX, 0, 0};
    check_fused(taps, 3, &bil, 3, 40, 36, 152, 0);
    check_fused(taps, 3, &nn, 1, 40, 36, 153, 0);
    fusenet_model_free(a);
    fusenet_model_free(b);
}

/* ---- runs are independent of each other ---- */

static void test_repeated_runs(void **state) {
    (void)state;
    fusenet_model *m = stem_model(160, 34, 35);
    const char *taps[] = {"conv1_pad", "pool1_pad", "pool1_pool"};
    fusenet_tap t[3];
    for (int k = 0; k < 3; k++) t[k] = (fusenet_tap){m, taps[k]};
    fusenet_net_params p = trunk_params(t, 3, 3, 34, 35);
    fusenet_net *net = build_ok(&p);
    for (uint64_t seed = 161; seed < 164; seed++) {
        tinput in = input_new(3, 34, 35, seed);
        ref_t *ref = ref_model(m, &in.ref);
        run_ok(net, &in);
        for (size_t k = 0; k < 3; k++) check_tap(net, k, ref_layer(m, ref, taps[k]), taps[k]);
        ref_model_free(m, ref);
        input_free(&in);
    }
    assert_true(fusenet_net_memory_bytes(net) > 0);
    fusenet_net_free(net);
    fusenet_model_free(m);
}

/* ---- errors ---- */

static void test_error_unknown_layer(void **state) {
    (void)state;
    fusenet_model *m = stem_model(170, 32, 32);
    fusenet_tap tap = {m, "conv1_cnv"};
    fusenet_net_params p = trunk_params(&tap, 1, 1, 32, 32);
    fusenet_net *net = (fusenet_net *)&p; /* must be reset to NULL */
    fusenet_error e;
    assert_int_equal(fusenet_net_build(&p, &net, &e), FUSENET_ERR_UNKNOWN_LAYER);
    assert_null(net);
    assert_int_equal(e.status, FUSENET_ERR_UNKNOWN_LAYER);
    assert_non_null(strstr(e.message, "conv1_cnv"));
    assert_non_null(strstr(e.message, "did you mean"));
    assert_non_null(strstr(e.message, "conv1_conv"));
    /* a second, valid tap does not hide the unknown one; err may be NULL */
    fusenet_tap two[] = {{m, "pool1_pool"}, {m, "pool2_pool"}};
    p = trunk_params(two, 2, 1, 32, 32);
    assert_int_equal(fusenet_net_build(&p, &net, NULL), FUSENET_ERR_UNKNOWN_LAYER);
    assert_null(net);
    fusenet_model_free(m);
}

static void test_error_input_shape(void **state) {
    (void)state;
    fusenet_model *m = stem_model(171, 32, 32);
    fusenet_tap tap = {m, "pool1_pool"};
    fusenet_net_params p = trunk_params(&tap, 1, 2, 33, 32);
    fusenet_net *net = build_ok(&p);
    tinput in = input_new(2, 33, 32, 172);
    fusenet_error e;
    const fusenet_tensor bad[] = {
        {in.data, 2, 32, 33, 3}, {in.data, 1, 33, 32, 3}, {in.data, 3, 33, 32, 3},
        {in.data, 2, 33, 32, 1}, {in.data, 2, 33, 31, 3}, {in.data, 2, 34, 32, 3},
    };
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        assert_int_equal(fusenet_net_run(net, &bad[k], &e), FUSENET_ERR_SHAPE);
        assert_int_equal(e.status, FUSENET_ERR_SHAPE);
        assert_non_null(strstr(e.message, "33x32"));
    }
    fusenet_tensor null_data = {NULL, 2, 33, 32, 3};
    assert_int_equal(fusenet_net_run(net, &null_data, &e), FUSENET_ERR_INVALID_ARG);
    assert_int_equal(fusenet_net_run(net, NULL, &e), FUSENET_ERR_INVALID_ARG);
    assert_int_equal(fusenet_net_run(NULL, &in.t, &e), FUSENET_ERR_INVALID_ARG);
    /* still usable after refused runs */
    run_ok(net, &in);
    assert_int_equal(fusenet_net_run(net, &in.t, NULL), FUSENET_OK);
    input_free(&in);
    fusenet_net_free(net);
    fusenet_model_free(m);
}

static void test_error_arguments(void **state) {
    (void)state;
    fusenet_model *m = stem_model(173, 32, 32);
    fusenet_tap tap = {m, "pool1_pool"};
    fusenet_net_params p = trunk_params(&tap, 1, 1, 32, 32);
    fusenet_net *net = NULL;
    fusenet_error e;
    assert_int_equal(fusenet_net_build(NULL, &net, &e), FUSENET_ERR_INVALID_ARG);
    assert_null(net);
    assert_int_equal(fusenet_net_build(&p, NULL, &e), FUSENET_ERR_INVALID_ARG);
    assert_int_equal(e.status, FUSENET_ERR_INVALID_ARG);

    fusenet_net_params q = p;
    q.batch = 0;
    assert_int_equal(fusenet_net_build(&q, &net, &e), FUSENET_ERR_INVALID_ARG);
    assert_null(net);
    assert_non_null(strstr(e.message, "batch"));
    q.batch = -3;
    assert_int_equal(fusenet_net_build(&q, &net, &e), FUSENET_ERR_INVALID_ARG);
    /* FN_MIN_INPUT = 32 on the net's input size */
    q = p;
    q.in_h = 31;
    assert_int_equal(fusenet_net_build(&q, &net, &e), FUSENET_ERR_SHAPE);
    assert_null(net);
    q = p;
    q.in_w = 16;
    assert_int_equal(fusenet_net_build(&q, &net, &e), FUSENET_ERR_SHAPE);
    q = p;
    q.n_taps = 0;
    assert_int_equal(fusenet_net_build(&q, &net, &e), FUSENET_ERR_INVALID_ARG);
    q.n_taps = 1;
    q.taps = NULL;
    assert_int_equal(fusenet_net_build(&q, &net, &e), FUSENET_ERR_INVALID_ARG);
    fusenet_tap null_layer = {m, NULL}, null_model = {NULL, "pool1_pool"};
    q = p;
    q.taps = &null_layer;
    assert_int_equal(fusenet_net_build(&q, &net, &e), FUSENET_ERR_INVALID_ARG);
    q.taps = &null_model;
    assert_int_equal(fusenet_net_build(&q, &net, &e), FUSENET_ERR_INVALID_ARG);
    q = p;
    q.fuse = 1;
    q.size = FUSENET_SIZE_EXPLICIT;
    q.out_h = 0;
    q.out_w = 5;
    assert_int_equal(fusenet_net_build(&q, &net, &e), FUSENET_ERR_INVALID_ARG);
    q.size = (fusenet_size_policy)7;
    assert_int_equal(fusenet_net_build(&q, &net, &e), FUSENET_ERR_INVALID_ARG);
    q = p;
    q.resize = (fusenet_interp)5;
    assert_int_equal(fusenet_net_build(&q, &net, &e), FUSENET_ERR_INVALID_ARG);
    assert_null(net);

    /* outputs of a trunk-only net */
    net = build_ok(&p);
    fusenet_tensor t;
    assert_int_equal(fusenet_net_output(net, &t, &e), FUSENET_ERR_INVALID_ARG); /* no fused map */
    assert_int_equal(fusenet_net_output(net, NULL, &e), FUSENET_ERR_INVALID_ARG);
    assert_int_equal(fusenet_net_output(NULL, &t, &e), FUSENET_ERR_INVALID_ARG);
    assert_int_equal(fusenet_net_tap_output(net, 1, &t, &e), FUSENET_ERR_INVALID_ARG);
    assert_int_equal(fusenet_net_tap_output(net, 0, NULL, &e), FUSENET_ERR_INVALID_ARG);
    assert_int_equal(fusenet_net_tap_output(NULL, 0, &t, &e), FUSENET_ERR_INVALID_ARG);
    assert_int_equal(fusenet_net_tap_output(net, 0, &t, &e), FUSENET_ERR_INVALID_ARG); /* not run yet */
    tinput in = input_new(1, 32, 32, 174);
    run_ok(net, &in);
    assert_int_equal(fusenet_net_tap_output(net, 0, &t, &e), FUSENET_OK);
    assert_int_equal(e.status, FUSENET_OK);
    input_free(&in);
    fusenet_net_free(net);
    fusenet_net_free(NULL);
    fusenet_model_free(m);
}

static void test_error_weights_not_loaded(void **state) {
    (void)state;
    fusenet_model *m = tm_new();
    int x = fusenet__input(&m->g, "input");
    x = fusenet__conv2d(&m->g, x, 4, 3, 1, FN_PAD_SAME, FN_ACT_NONE, "c1");
    x = fusenet__conv2d(&m->g, x, 4, 3, 1, FN_PAD_SAME, FN_ACT_NONE, "c2");
    fusenet__batch_norm(&m->g, x, BN_EPS, "bn");
    tm_weights(m, 32, 32, 180);
    m->weights[2] = FN_WEIGHTS_ABSENT; /* c2 */
    fusenet_tap tap = {m, "bn"};
    fusenet_net_params p = trunk_params(&tap, 1, 1, 32, 32);
    fusenet_net *net = NULL;
    fusenet_error e;
    assert_int_equal(fusenet_net_build(&p, &net, &e), FUSENET_ERR_INVALID_ARG);
    assert_null(net);
    assert_non_null(strstr(e.message, "c2"));
    tap.layer = "c2";
    assert_int_equal(fusenet_net_build(&p, &net, &e), FUSENET_ERR_INVALID_ARG);
    /* a tap that does not depend on c2 is fine */
    const char *c1[] = {"c1"};
    check_trunk(m, c1, 1, 1, 32, 32, 181, 0);
    fusenet_model_free(m);

    /* a real ResNet50 graph without weights */
    fusenet_model *r = NULL;
    fusenet_model_params mp = fusenet_model_default_params();
    assert_int_equal(fusenet_model_create(&mp, &r, &e), FUSENET_OK);
    fusenet_tap rt = {r, "conv1_conv"};
    fusenet_net_params rp = trunk_params(&rt, 1, 1, 64, 64);
    assert_int_equal(fusenet_net_build(&rp, &net, &e), FUSENET_ERR_INVALID_ARG);
    assert_null(net);
    assert_non_null(strstr(e.message, "conv1_conv"));
    rt.layer = "conv1_cnv";
    assert_int_equal(fusenet_net_build(&rp, &net, &e), FUSENET_ERR_UNKNOWN_LAYER);
    assert_non_null(strstr(e.message, "conv1_conv"));
    fusenet_model_free(r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_self_check),
        cmocka_unit_test(test_conv2d_variants),
        cmocka_unit_test(test_resnet_stem),
        cmocka_unit_test(test_zero_pad_into_conv),
        cmocka_unit_test(test_batch_norm_fold),
        cmocka_unit_test(test_relu),
        cmocka_unit_test(test_conv_relu_then_batch_norm),
        cmocka_unit_test(test_residual_add),
        cmocka_unit_test(test_residual_projection),
        cmocka_unit_test(test_residual_input_shortcut),
        cmocka_unit_test(test_residual_shortcut_is_conv_input),
        cmocka_unit_test(test_max_pool),
        cmocka_unit_test(test_relu_pad_then_global_pool),
        cmocka_unit_test(test_global_pools),
        cmocka_unit_test(test_flatten_dense),
        cmocka_unit_test(test_fuse_policies),
        cmocka_unit_test(test_fuse_nearest_ties),
        cmocka_unit_test(test_fuse_bilinear_13_to_12),
        cmocka_unit_test(test_fuse_two_models),
        cmocka_unit_test(test_repeated_runs),
        cmocka_unit_test(test_error_unknown_layer),
        cmocka_unit_test(test_error_input_shape),
        cmocka_unit_test(test_error_arguments),
        cmocka_unit_test(test_error_weights_not_loaded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
