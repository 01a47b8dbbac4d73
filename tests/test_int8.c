/* test_int8.c - int8 mode (src/compiler/quant.*, compile.c's int8 path) and
 * calibrations (src/run/calib.c).
 *
 * 1. A small net with every int8 path: an fp32 input conv, an int8 conv with
 *    a u8 source and u8 destination, an int8 max pool, a 1x1 conv + BatchNorm
 *    with a signed (s8) output, a conv + BatchNorm whose residual add and ReLU
 *    are a sum post-op over the s8 shortcut, and a last conv read only by its
 *    tap (float32 destination). Its taps are compared with a naive C
 *    reference of the same quantization arithmetic (quant.h; oneDNN's int8
 *    guide): activations quantized with the calibration's min-max scales
 *    (max|x| / 255 for u8, / 127 for s8, rounded to nearest, saturated),
 *    s8 weights per output channel (max|w| / levels), int32 accumulation,
 *    requantization rounded and saturated, in double. The scales come from
 *    the calibration, whose min-max thresholds are checked first against the
 *    fp32 reference's own max|x| over the calibration inputs.
 *    Bound: max |got - ref| <= 0.5% of max|ref| per tap (a value on a
 *    rounding boundary may land one level away, and that level propagates;
 *    measured on AVX2: 1e-6 of max|ref|, no level apart), and the same output
 *    must be at least 20x closer to the int8 reference than to the fp32 one
 *    (measured 0.05-0.1 of max|ref| from fp32), so the bound cannot pass by
 *    accident of a small quantization error. Run with int8_layers ALL, then
 *    AUTO with conv_a's value flagged as too lossy (conv_a then writes
 *    float32, the pool runs fp32 and the convs after it quantize its value).
 * 2. Calibration files: save / load round trip (every field, and bit-identical
 *    int8 outputs from the loaded one), refusals of other weights, other taps
 *    and other models (one line naming what differs), bad params.
 * 3. The parser: malformed files, each refused with FORMAT naming the line.
 * 4. Fidelity on the small net: cosine of int8 against fp32 per image >= 0.995
 *    for every method (measured 0.99993-0.99994 on AVX2).
 * 5. Row strips of the float32 input conv: the same taps as without them.
 *
 * Nothing here depends on the ISA: the weight levels (63 without VNNI, 127
 * with) are read from the library, and both give the same arithmetic.
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
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "fusenet.h"
#include "graph.h"
#include "model.h"
#include "net.h"
#include "quant.h"
#include "ref_ops.h"
#include "test_util.h"

#define BN_EPS 1.001e-5f
#define H 32
#define W 32
#define BATCH 2

/* ---- the model ---- */

static uint64_t g_state;

static double uniform(double lo, double hi) { /* xorshift64*, [lo, hi) */
    g_state ^= g_state >> 12;
    g_state ^= g_state << 25;
    g_state ^= g_state >> 27;
    return lo + (hi - lo) * (double)((g_state * 0x2545F4914F6CDD1Dull) >> 11) / 9007199254740992.0;
}

static float *random_floats(size_t n, double lo, double hi) {
    float *w = fusenet__malloc(n * sizeof *w);
    assert_non_null(w);
    for (size_t k = 0; k < n; k++) w[k] = (float)uniform(lo, hi);
    return w;
}

static const char *const TAPS[] = {"conv_d", "block_out", "pool"};

/* input -> conv_in (3x3, 8, relu; fp32) -> conv_a (3x3, 16, relu) -> pool (2x2) ->
 * [conv_b (1x1, 24) -> bn_b] + [conv_c (3x3, 24) -> bn_c] -> block_out (relu) -> conv_d (3x3, 6) */
static fusenet_model *small_model(uint64_t seed) {
    fusenet_model *m = fusenet__calloc(1, sizeof *m);
    assert_non_null(m);
    m->arch = FUSENET_ARCH_RESNET50;
    fn_graph *g = &m->g;
    int x = fusenet__input(g, "input");
    x = fusenet__conv2d(g, x, 8, 3, 1, FN_PAD_SAME, FN_ACT_RELU, "conv_in");
    x = fusenet__conv2d(g, x, 16, 3, 1, FN_PAD_SAME, FN_ACT_RELU, "conv_a");
    x = fusenet__max_pool(g, x, 2, 2, "pool");
    int b = fusenet__conv2d(g, x, 24, 1, 1, FN_PAD_VALID, FN_ACT_NONE, "conv_b");
    b = fusenet__batch_norm(g, b, BN_EPS, "bn_b");
    int c = fusenet__conv2d(g, x, 24, 3, 1, FN_PAD_SAME, FN_ACT_NONE, "conv_c");
    c = fusenet__batch_norm(g, c, BN_EPS, "bn_c");
    x = fusenet__add(g, c, b, "add");
    x = fusenet__relu(g, x, "block_out");
    fusenet__conv2d(g, x, 6, 3, 1, FN_PAD_SAME, FN_ACT_NONE, "conv_d");
    fusenet_error e;
    assert_int_equal(fusenet__graph_finish(g, &e), FUSENET_OK);
    fn_shape *shapes = calloc((size_t)g->n, sizeof *shapes);
    assert_non_null(shapes);
    assert_int_equal(fusenet__graph_shapes(g, H, W, shapes, &e), FUSENET_OK);
    m->weights = fusenet__calloc((size_t)g->n, 1);
    assert_non_null(m->weights);
    g_state = seed * 0x9E3779B97F4A7C15ull + 7;
    for (int i = 0; i < g->n; i++) {
        fn_node *n = &g->nodes[i];
        int cin = n->n_in ? shapes[n->in[0]].c : 0;
        if (n->op == FN_OP_CONV2D) {
            size_t fan_in = (size_t)n->kh * n->kw * cin;
            double a = sqrt(6.0 / (double)fan_in); /* He-uniform: activations stay of order one */
            n->w[0] = random_floats(fan_in * n->filters, -a, a);
            n->w[1] = random_floats((size_t)n->filters, -0.1, 0.1);
        } else if (n->op == FN_OP_BATCH_NORM) {
            n->w[0] = random_floats((size_t)cin, 0.5, 1.5);
            n->w[1] = random_floats((size_t)cin, -0.2, 0.2);
            n->w[2] = random_floats((size_t)cin, -0.2, 0.2);
            n->w[3] = random_floats((size_t)cin, 0.5, 1.5);
        } else {
            continue;
        }
        m->weights[i] = FN_WEIGHTS_LOADED;
    }
    free(shapes);
    return m;
}

static float *random_input(int n, uint64_t seed) {
    g_state = seed * 0xD1B54A32D192ED03ull + 3;
    return random_floats((size_t)n * H * W * 3, -1.0, 1.0);
}

static fusenet_net_params small_params(const fusenet_tap *taps, size_t n_taps, fusenet_mode mode,
                                       const fusenet_calibration *cal) {
    fusenet_net_params p = fx_net_params(taps, n_taps, BATCH, H, W, 0);
    p.mode = mode;
    p.calibration = cal;
    p.int8_layers = FUSENET_INT8_ALL;
    return p;
}

/* A calibration of m's three taps over `batches` random batches (seeds 100..). */
static fusenet_calibration *calibrate(const fusenet_model *m, int batches, fusenet_calib_method method) {
    fusenet_tap taps[3] = {{m, TAPS[0]}, {m, TAPS[1]}, {m, TAPS[2]}};
    fusenet_net_params p = small_params(taps, 3, FUSENET_MODE_EXACT, NULL);
    fusenet_calibration *cal = NULL;
    fusenet_error e;
    expect_ok(fusenet_calibration_create(&p, &cal, &e), &e);
    for (int k = 0; k < batches; k++) {
        float *x = random_input(BATCH, 100 + (uint64_t)k);
        fusenet_tensor t = {x, BATCH, H, W, 3};
        expect_ok(fusenet_calibration_add(cal, &t, &e), &e);
        fusenet__free(x);
    }
    expect_ok(fusenet_calibration_set_method(cal, method, &e), &e);
    return cal;
}

/* Runs the int8 (or fp32) net of m's taps on x; out[t] gets a copy of tap t. */
static void run_taps_layers(const fusenet_model *m, fusenet_mode mode, const fusenet_calibration *cal,
                            fusenet_int8_layers layers, const float *x, float *out[3]) {
    fusenet_tap taps[3] = {{m, TAPS[0]}, {m, TAPS[1]}, {m, TAPS[2]}};
    fusenet_net_params p = small_params(taps, 3, mode, cal);
    p.int8_layers = layers;
    fusenet_net *net = NULL;
    fusenet_error e;
    expect_ok(fusenet_net_build(&p, &net, &e), &e);
    fusenet_tensor in = {(float *)x, BATCH, H, W, 3};
    expect_ok(fusenet_net_run(net, &in, &e), &e);
    for (int t = 0; t < 3; t++) {
        fusenet_tensor o;
        expect_ok(fusenet_net_tap_output(net, (size_t)t, &o, &e), &e);
        size_t count = (size_t)o.n * o.h * o.w * o.c;
        out[t] = malloc(count * sizeof *out[t]);
        assert_non_null(out[t]);
        memcpy(out[t], o.data, count * sizeof *out[t]);
    }
    fusenet_net_free(net);
}

static void run_taps(const fusenet_model *m, fusenet_mode mode, const fusenet_calibration *cal, const float *x,
                     float *out[3]) {
    run_taps_layers(m, mode, cal, FUSENET_INT8_ALL, x, out);
}

/* ---- the reference ---- */

static ref_t ref_of(const float *x, int n) {
    ref_t r = ref_alloc(n, H, W, 3);
    for (size_t k = 0; k < ref_count(&r); k++) r.d[k] = (double)x[k];
    return r;
}

static double ref_absmax(const ref_t *x) {
    double m = 0;
    for (size_t k = 0; k < ref_count(x); k++) m = fmax(m, fabs(x->d[k]));
    return m;
}

/* q = round(x / scale) saturated to u8 [0, 255] or s8 [-128, 127]; returned as q * scale. */
static double quantize(double x, double scale, int is_u8) {
    double q = nearbyint(x / scale), lo = is_u8 ? 0 : -128, hi = is_u8 ? 255 : 127;
    return (q < lo ? lo : q > hi ? hi : q) * scale;
}

static ref_t ref_quantize(const ref_t *x, double scale, int is_u8) {
    ref_t y = ref_alloc(x->n, x->h, x->w, x->c);
    for (size_t k = 0; k < ref_count(x); k++) y.d[k] = quantize(x->d[k], scale, is_u8);
    return y;
}

/* Keras kernel and bias of a conv, with the BatchNorm after it folded in (double). */
typedef struct folded {
    double *w, *b;
    int k, cin, filters;
} folded;

static folded fold(const fusenet_model *m, const char *conv, const char *bn) {
    const fn_node *n = &m->g.nodes[fusenet__graph_find(&m->g, conv)];
    const fn_node *bnn = bn ? &m->g.nodes[fusenet__graph_find(&m->g, bn)] : NULL;
    fn_shape shapes[16];
    fusenet_error e;
    assert_true(m->g.n <= 16);
    assert_int_equal(fusenet__graph_shapes(&m->g, H, W, shapes, &e), FUSENET_OK);
    folded f = {NULL, NULL, n->kh, shapes[n->in[0]].c, n->filters};
    size_t count = (size_t)f.k * f.k * f.cin * f.filters;
    f.w = malloc(count * sizeof *f.w);
    f.b = malloc((size_t)f.filters * sizeof *f.b);
    assert_true(f.w && f.b);
    for (int o = 0; o < f.filters; o++) {
        double a = 1, mean = 0, beta = 0;
        if (bnn) {
            a = (double)bnn->w[0][o] / sqrt((double)bnn->w[3][o] + (double)bnn->epsilon);
            mean = bnn->w[2][o];
            beta = bnn->w[1][o];
        }
        for (size_t k = (size_t)o; k < count; k += (size_t)f.filters) f.w[k] = (double)n->w[0][k] * a;
        f.b[o] = ((double)n->w[1][o] - mean) * a + beta;
    }
    return f;
}

/* out = conv(x) with f (same padding when k > 1), optionally + shortcut, optionally ReLU;
 * int8 (levels > 0): x is on its quantization grid already, the weights are quantized per
 * output channel to [-levels, levels] with max|w| / levels, the sum is exact (integers times
 * scales), the result is requantized with dst_scale (0: float32 destination). */
static ref_t ref_conv(const ref_t *x, const folded *f, int levels, const ref_t *shortcut, int relu, double dst_scale,
                      int dst_u8) {
    size_t count = (size_t)f->k * f->k * f->cin * f->filters;
    float *kq = malloc(count * sizeof *kq), *zero = calloc((size_t)f->filters, sizeof *zero);
    assert_true(kq && zero);
    for (int o = 0; o < f->filters; o++) {
        double amax = 0, s;
        for (size_t k = (size_t)o; k < count; k += (size_t)f->filters) amax = fmax(amax, fabs(f->w[k]));
        s = levels && amax > 0 ? amax / levels : 1;
        for (size_t k = (size_t)o; k < count; k += (size_t)f->filters)
            kq[k] = (float)(levels ? nearbyint(f->w[k] / s) * s : f->w[k]); /* q_w * s_w: exact in float */
    }
    /* ref_conv2d sums in double: with q_w * s_w and q_x * s_x the sum is the int32 one times the scales */
    ref_t y = ref_conv2d(x, kq, zero, f->filters, f->k, 1, f->k > 1, 0);
    for (size_t k = 0; k < ref_count(&y); k++) {
        double v = y.d[k] + f->b[k % (size_t)f->filters];
        if (shortcut) v += shortcut->d[k];
        if (relu && v < 0) v = 0;
        y.d[k] = dst_scale > 0 ? quantize(v, dst_scale, dst_u8) : v;
    }
    free(kq);
    free(zero);
    return y;
}

/* The small net in fp32 (levels 0) or in the int8 arithmetic with min-max scales
 * absmax[] of conv_in, conv_a, pool, bn_b, block_out (levels: the weights'). Taps into t[3].
 * a_fp32: conv_a's value stays float32 (int8_layers AUTO with it flagged): conv_a writes
 * float32, the pool reads it so, and the convs after it quantize the pool's value. */
static void ref_net_auto(const fusenet_model *m, const ref_t *x, int levels, const double absmax[5], int a_fp32,
                         ref_t t[3]) {
    folded f_in = fold(m, "conv_in", NULL), f_a = fold(m, "conv_a", NULL), f_b = fold(m, "conv_b", "bn_b"),
           f_c = fold(m, "conv_c", "bn_c"), f_d = fold(m, "conv_d", NULL);
    int q = levels > 0;
    ref_t in = ref_conv(x, &f_in, 0, NULL, 1, 0, 1); /* the input conv stays fp32 */
    ref_t in_q = q ? ref_quantize(&in, absmax[0] / 255, 1) : in;
    ref_t a = ref_conv(&in_q, &f_a, levels, NULL, 1, q && !a_fp32 ? absmax[1] / 255 : 0, 1);
    ref_t p = ref_max_pool(&a, 2, 2);
    ref_t p_q = q && a_fp32 ? ref_quantize(&p, absmax[2] / 255, 1) : p;
    ref_t b = ref_conv(&p_q, &f_b, levels, NULL, 0, q ? absmax[3] / 127 : 0, 0); /* signed: s8 */
    ref_t out = ref_conv(&p_q, &f_c, levels, &b, 1, q ? absmax[4] / 255 : 0, 1);
    if (q && a_fp32) ref_release(&p_q);
    t[0] = ref_conv(&out, &f_d, levels, NULL, 0, 0, 0); /* read only by its tap: float32 */
    t[1] = out;
    t[2] = p;
    if (q) ref_release(&in_q);
    ref_release(&in);
    ref_release(&a);
    ref_release(&b);
    folded all[5] = {f_in, f_a, f_b, f_c, f_d};
    for (int k = 0; k < 5; k++) {
        free(all[k].w);
        free(all[k].b);
    }
}

static void ref_net(const fusenet_model *m, const ref_t *x, int levels, const double absmax[5], ref_t t[3]) {
    ref_net_auto(m, x, levels, absmax, 0, t);
}

static double max_err(const float *got, const ref_t *want) {
    double e = 0;
    for (size_t k = 0; k < ref_count(want); k++) {
        double d = fabs((double)got[k] - want->d[k]);
        e = d > e || isnan(d) ? d : e;
    }
    return e;
}

static double cosine(const float *a, const ref_t *b) {
    double ab = 0, aa = 0, bb = 0;
    for (size_t k = 0; k < ref_count(b); k++) {
        ab += (double)a[k] * b->d[k];
        aa += (double)a[k] * a[k];
        bb += b->d[k] * b->d[k];
    }
    return ab / sqrt(aa * bb);
}

static const char *const QUANTIZED[5] = {"conv_in", "conv_a", "pool", "bn_b", "block_out"};

/* ---- 1. the int8 arithmetic against the reference ---- */

static void test_int8_against_reference(void **state) {
    (void)state;
    fusenet_model *m = small_model(1);
    fusenet_calibration *cal = calibrate(m, 2, FUSENET_CALIB_MINMAX);
    /* the calibration's min-max thresholds are the fp32 reference's max |x| over its inputs */
    double absmax[5] = {0};
    for (int k = 0; k < 2; k++) {
        float *x = random_input(BATCH, 100 + (uint64_t)k);
        ref_t xr = ref_of(x, BATCH), t[3];
        ref_net(m, &xr, 0, NULL, t);
        folded f_in = fold(m, "conv_in", NULL), f_a = fold(m, "conv_a", NULL), f_b = fold(m, "conv_b", "bn_b");
        ref_t in = ref_conv(&xr, &f_in, 0, NULL, 1, 0, 1), a = ref_conv(&in, &f_a, 0, NULL, 1, 0, 1);
        ref_t b = ref_conv(&t[2], &f_b, 0, NULL, 0, 0, 0);
        const ref_t *vals[5] = {&in, &a, &t[2], &b, &t[1]};
        for (int v = 0; v < 5; v++) absmax[v] = fmax(absmax[v], ref_absmax(vals[v]));
        ref_release(&in);
        ref_release(&a);
        ref_release(&b);
        for (int j = 0; j < 3; j++) ref_release(&t[j]);
        free(f_in.w), free(f_in.b), free(f_a.w), free(f_a.b), free(f_b.w), free(f_b.b);
        ref_release(&xr);
        fusenet__free(x);
    }
    const fusenet_calibration *ready = fusenet__calib_ready(cal);
    for (int v = 0; v < 5; v++) {
        const fn_calib_layer *l = fusenet__calib_find(ready, 0, QUANTIZED[v]);
        assert_non_null(l);
        if (fabs(l->thr[0] - absmax[v]) > 1e-4 * absmax[v]) {
            print_error("%s: calibration max %.9g, reference max|x| %.9g\n", QUANTIZED[v], l->thr[0], absmax[v]);
            fail();
        }
        assert_true(l->thr[1] <= l->thr[0] && l->thr[2] <= l->thr[0] && l->thr[2] > 0);
    }
    const fn_calib_layer *bn_b = fusenet__calib_find(ready, 0, "bn_b");
    assert_true(bn_b->min < 0); /* the signed value the test wants */

    float *x = random_input(BATCH, 7); /* held out: not a calibration input */
    ref_t xr = ref_of(x, BATCH);
    /* int8_layers ALL, then AUTO with conv_a's value measured as too lossy */
    for (int a_fp32 = 0; a_fp32 < 2; a_fp32++) {
        ref_t want[3], fp32[3];
        ref_net_auto(m, &xr, fusenet__int8_weight_levels(), absmax, a_fp32, want);
        ref_net(m, &xr, 0, NULL, fp32);
        float *got[3];
        ((fn_calib_layer *)fusenet__calib_find(ready, 0, "conv_a"))->keep_fp32 = a_fp32;
        run_taps_layers(m, FUSENET_MODE_INT8, cal, a_fp32 ? FUSENET_INT8_AUTO : FUSENET_INT8_ALL, x, got);
        for (int t = 0; t < 3; t++) {
            double scale = ref_absmax(&want[t]), e = max_err(got[t], &want[t]), e32 = max_err(got[t], &fp32[t]);
            if (!(e <= 0.005 * scale) || !(20 * e <= e32)) {
                print_error("tap %s: max error %.4g against the int8 reference (bound %.4g), %.4g against fp32\n", TAPS[t],
                            e, 0.005 * scale, e32);
                fail();
            }
            free(got[t]);
            ref_release(&want[t]);
            ref_release(&fp32[t]);
        }
    }
    ref_release(&xr);
    fusenet__free(x);
    fusenet_calibration_free(cal);
    fusenet_model_free(m);
}

/* ---- 2. calibration files ---- */

static char g_dir[] = "/tmp/fusenet_int8_XXXXXX";

static int setup_dir(void **state) {
    (void)state;
    return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown_dir(void **state) {
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_calibration_round_trip(void **state) {
    (void)state;
    fusenet_model *m = small_model(2);
    fusenet_calibration *cal = calibrate(m, 1, FUSENET_CALIB_PERCENTILE), *back = NULL;
    char path[256];
    snprintf(path, sizeof path, "%s/cal.txt", g_dir);
    fusenet_error e;
    expect_ok(fusenet_calibration_save(cal, path, &e), &e);
    expect_ok(fusenet_calibration_load(path, &back, &e), &e);
    /* fusenet_calibration_write: snprintf-style, the same bytes the file holds */
    size_t len = 0, got = 0;
    expect_ok(fusenet_calibration_write(cal, NULL, 0, &len, &e), &e);
    char *text = malloc(len + 1), *file = malloc(len + 2);
    assert_non_null(text);
    assert_non_null(file);
    expect_error(fusenet_calibration_write(cal, text, len, &got, &e), FUSENET_ERR_INVALID_ARG, &e, "needs");
    assert_int_equal(got, len);
    expect_ok(fusenet_calibration_write(cal, text, len + 1, &got, &e), &e);
    assert_int_equal(got, len);
    assert_int_equal(strlen(text), len);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fread(file, 1, len + 2, f), len);
    fclose(f);
    assert_memory_equal(text, file, len);
    free(text);
    free(file);
    /* save replaces regular files only: a FIFO and a symbolic link are left as they are */
    char fifo[300], lnk[300];
    snprintf(fifo, sizeof fifo, "%s/fifo", g_dir);
    snprintf(lnk, sizeof lnk, "%s/link", g_dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    assert_int_equal(symlink(path, lnk), 0);
    expect_error(fusenet_calibration_save(cal, fifo, &e), FUSENET_ERR_INVALID_ARG, &e, "not a regular file");
    expect_error(fusenet_calibration_save(cal, lnk, &e), FUSENET_ERR_INVALID_ARG, &e, "not a regular file");
    struct stat sb;
    assert_int_equal(lstat(fifo, &sb), 0);
    assert_true(S_ISFIFO(sb.st_mode));
    assert_int_equal(lstat(lnk, &sb), 0);
    assert_true(S_ISLNK(sb.st_mode));
    assert_int_equal(fusenet_calibration_images(back), BATCH);
    assert_int_equal(back->method, FUSENET_CALIB_PERCENTILE);
    assert_int_equal(back->n_models, 1);
    assert_string_equal(back->models[0].arch, "resnet50");
    assert_true(back->models[0].hash == cal->models[0].hash);
    assert_int_equal(back->models[0].n_taps, 3);
    for (int t = 0; t < 3; t++) assert_string_equal(back->models[0].taps[t], TAPS[t]);
    assert_int_equal(back->n_layers, cal->n_layers);
    for (int i = 0; i < cal->n_layers; i++) {
        const fn_calib_layer *a = &cal->layers[i], *b = &back->layers[i];
        assert_string_equal(a->name, b->name);
        assert_true(a->min == b->min && a->max == b->max);
        for (int k = 0; k < FN_CALIB_METHODS; k++) assert_true(a->thr[k] == b->thr[k]);
    }
    float *x = random_input(BATCH, 9), *o1[3], *o2[3];
    run_taps(m, FUSENET_MODE_INT8, cal, x, o1);
    run_taps(m, FUSENET_MODE_INT8, back, x, o2);
    for (int t = 0; t < 3; t++) {
        size_t bytes = BATCH * 16 * 16 * (t == 0 ? 6 : t == 1 ? 24 : 16);
        assert_memory_equal(o1[t], o2[t], bytes * sizeof(float));
        free(o1[t]);
        free(o2[t]);
    }
    fusenet__free(x);
    /* a loaded calibration has no net: nothing to add to */
    fusenet_tensor in = {NULL, BATCH, H, W, 3};
    expect_error(fusenet_calibration_add(back, &in, &e), FUSENET_ERR_INVALID_ARG, &e, "loaded");
    fusenet_calibration_free(back);
    fusenet_calibration_free(cal);
    fusenet_model_free(m);
}

static void expect_refused(const fusenet_model *m, const fusenet_calibration *cal, const char *tap, const char *naming) {
    fusenet_tap taps[1] = {{m, tap}};
    fusenet_net_params p = small_params(taps, 1, FUSENET_MODE_INT8, cal);
    fusenet_net *net = NULL;
    fusenet_error e;
    expect_error(fusenet_net_build(&p, &net, &e), FUSENET_ERR_INVALID_ARG, &e, naming);
    assert_null(net);
    assert_null(strchr(e.message, '\n'));
}

static void test_calibration_mismatch(void **state) {
    (void)state;
    fusenet_model *m = small_model(3), *other = small_model(4);
    fusenet_calibration *cal = calibrate(m, 1, FUSENET_CALIB_MSE);
    expect_refused(other, cal, "conv_d", "does not match"); /* other weights */
    expect_refused(m, cal, "conv_a", "does not match");     /* other taps: fewer layers, another hash */
    fusenet_tap taps[3] = {{m, TAPS[0]}, {m, TAPS[1]}, {m, TAPS[2]}};
    fusenet_net_params p = small_params(taps, 3, FUSENET_MODE_INT8, NULL);
    fusenet_net *net = NULL;
    fusenet_error e;
    expect_error(fusenet_net_build(&p, &net, &e), FUSENET_ERR_INVALID_ARG, &e, "needs a calibration");
    p.calibration = cal;
    p.int8_layers = (fusenet_int8_layers)7;
    expect_error(fusenet_net_build(&p, &net, &e), FUSENET_ERR_INVALID_ARG, &e, "int8_layers");
    /* the same net in another model's clothes: the architecture differs */
    cal->models[0].arch[0] = 'X';
    p.int8_layers = FUSENET_INT8_ALL;
    expect_error(fusenet_net_build(&p, &net, &e), FUSENET_ERR_INVALID_ARG, &e, "does not match");
    cal->models[0].arch[0] = 'r';
    /* int8_layers vgg: a ResNet runs fp32, so it needs nothing of the calibration */
    p.int8_layers = FUSENET_INT8_VGG;
    p.calibration = cal;
    expect_ok(fusenet_net_build(&p, &net, &e), &e);
    fusenet_net_free(net);
    expect_error(fusenet_calibration_save(cal, NULL, &e), FUSENET_ERR_INVALID_ARG, &e, "path");
    expect_error(fusenet_calibration_set_method(cal, (fusenet_calib_method)9, &e), FUSENET_ERR_INVALID_ARG, &e,
                 "method");
    char path[256];
    snprintf(path, sizeof path, "%s/missing/cal.txt", g_dir);
    expect_error(fusenet_calibration_save(cal, path, &e), FUSENET_ERR_IO, &e, "missing");
    fusenet_calibration *none = NULL;
    expect_error(fusenet_calibration_load(path, &none, &e), FUSENET_ERR_IO, &e, "missing");
    assert_null(none);
    fusenet_calibration_free(cal);
    fusenet_model_free(m);
    fusenet_model_free(other);
}

/* ---- 3. the parser ---- */

#define GOOD_HEAD "fusenet-calibration 1\nmethod mse\nimages 4\nmodel 0 resnet50 0123456789abcdef 1 conv_d\n"
#define GOOD_LAYER "layer 0 conv_a 0 2.5 2.5 2 1.5 0 0\n"

static void test_calibration_parser(void **state) {
    (void)state;
    static const struct {
        const char *text, *naming;
    } cases[] = {
        {"", "line 1: empty file"},
        {"fusenet-calibration 2\n", "line 1: not a calibration file"},
        {GOOD_HEAD GOOD_LAYER, "no 'end' line"},
        {GOOD_HEAD GOOD_LAYER "end", "line 6: no newline"},
        {GOOD_HEAD GOOD_LAYER "end\nlayer\n", "line 7: text after 'end'"},
        {GOOD_HEAD "layer 0 conv_a 0 2.5 2.5 2 1.5 0\nend\n", "line 5: layer needs"},
        {GOOD_HEAD "layer 1 conv_a 0 2.5 2.5 2 1.5 0 0\nend\n", "line 5: layer of an undeclared model"},
        {GOOD_HEAD "layer 0 conv_a 0 nan 2.5 2 1.5 0 0\nend\n", "line 5: a statistic is not a finite number"},
        {GOOD_HEAD "layer 0 conv_a 0 1e999 2.5 2 1.5 0 0\nend\n", "line 5: a statistic is not a finite number"},
        {GOOD_HEAD "layer 0 conv_a 3 2.5 2.5 2 1.5 0 0\nend\n", "line 5: MIN is larger than MAX"},
        {GOOD_HEAD "layer 0 conv_a 0 2.5 9 2 1.5 0 0\nend\n", "line 5: a threshold is negative or over"},
        {GOOD_HEAD "layer 0 conv_a 0 2.5 2.5 -1 1.5 0 0\nend\n", "line 5: a threshold is negative"},
        {GOOD_HEAD "layer 0 conv_a 0 2.5 2.5 2 1.5 2 0\nend\n", "line 5: KEEP_FP32"},
        {GOOD_HEAD GOOD_LAYER GOOD_LAYER "end\n", "line 6: layer listed twice"},
        {GOOD_HEAD "layer  0 conv_a 0 2.5 2.5 2 1.5 0 0\nend\n", "line 5: words must be separated"},
        {GOOD_HEAD "layer 0 conv_a 0 2.5 2.5 2 1.5 0 0 \nend\n", "line 5: trailing space"},
        {"fusenet-calibration 1\nmethod best\n", "line 2: method must be given once"},
        {"fusenet-calibration 1\nmethod mse\nmethod mse\n", "line 3: method must be given once"},
        {"fusenet-calibration 1\nimages 0\n", "line 2: images must be"},
        {"fusenet-calibration 1\nmodel 1 resnet50 0123456789abcdef 1 conv_d\n", "line 2: model index out of order"},
        {"fusenet-calibration 1\nmodel 0 resnet50 0123456789abcdeg 1 conv_d\n", "line 2: weights hash"},
        {"fusenet-calibration 1\nmodel 0 resnet50 0123456789abcdef 2 conv_d\n", "line 2: tap count"},
        {"fusenet-calibration 1\nmodel 0 resnet50 0123456789abcdef 0\n", "line 2: tap count"},
        {GOOD_HEAD GOOD_LAYER "model 1 vgg16 0123456789abcdef 1 x\nend\n", "line 6: models must come before"},
        {GOOD_HEAD "bogus 1\nend\n", "line 5: unknown line"},
        {GOOD_HEAD "\nend\n", "line 5: empty line"},
        {"fusenet-calibration 1\nmethod mse\nend\n", "method, images, a model and a layer are required"},
        {GOOD_HEAD "layer 0 conv\001a 0 2.5 2.5 2 1.5 0 0\nend\n", "line 5: bad layer name"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        fusenet_calibration *cal = (fusenet_calibration *)1;
        fusenet_error e;
        fusenet_status st = fusenet_calibration_parse(cases[k].text, strlen(cases[k].text), &cal, &e);
        if (st != FUSENET_ERR_FORMAT || !strstr(e.message, cases[k].naming) || cal) {
            print_error("case %zu: %s (\"%s\"), expected FORMAT naming '%s'\n", k, fusenet_status_name(st), e.message,
                        cases[k].naming);
            fail();
        }
    }
    const char nul[] = GOOD_HEAD "layer 0 conv_a\0 0 2.5 2.5 2 1.5 0 0\nend\n";
    fusenet_calibration *cal = NULL;
    fusenet_error e;
    expect_error(fusenet_calibration_parse(nul, sizeof nul - 1, &cal, &e), FUSENET_ERR_FORMAT, &e, "line 5: NUL");
    const char good[] = GOOD_HEAD "# a comment\n" GOOD_LAYER "end\n";
    expect_ok(fusenet_calibration_parse(good, sizeof good - 1, &cal, &e), &e);
    assert_int_equal(cal->n_layers, 1);
    assert_true(cal->layers[0].thr[2] == 1.5);
    fusenet_calibration_free(cal);
}

/* ---- 4. fidelity on the small net, every method ---- */

static void test_int8_fidelity(void **state) {
    (void)state;
    fusenet_model *m = small_model(5);
    float *x = random_input(BATCH, 11);
    ref_t xr = ref_of(x, BATCH), fp32[3];
    ref_net(m, &xr, 0, NULL, fp32);
    const size_t per = (size_t)fp32[0].h * fp32[0].w * fp32[0].c;
    for (int method = FUSENET_CALIB_MINMAX; method <= FUSENET_CALIB_MSE; method++) {
        fusenet_calibration *cal = calibrate(m, 2, (fusenet_calib_method)method);
        float *got[3];
        run_taps(m, FUSENET_MODE_INT8, cal, x, got);
        for (int i = 0; i < BATCH; i++) {
            ref_t one = {fp32[0].d + per * (size_t)i, 1, fp32[0].h, fp32[0].w, fp32[0].c};
            double c = cosine(got[0] + per * (size_t)i, &one);
            if (!(c >= 0.995)) {
                print_error("method %d image %d: cosine %.5f to fp32, bound 0.995\n", method, i, c);
                fail();
            }
        }
        for (int t = 0; t < 3; t++) free(got[t]);
        fusenet_calibration_free(cal);
    }
    for (int t = 0; t < 3; t++) ref_release(&fp32[t]);
    ref_release(&xr);
    fusenet__free(x);
    fusenet_model_free(m);
}

/* Compute steps of layer `name` in a net of m's taps (int8, all layers). */
static int steps_of(const fusenet_model *m, const fusenet_calibration *cal, const char *name) {
    fusenet_tap taps[3] = {{m, TAPS[0]}, {m, TAPS[1]}, {m, TAPS[2]}};
    fusenet_net_params p = small_params(taps, 3, FUSENET_MODE_INT8, cal);
    fusenet_net *net = NULL;
    fusenet_error e;
    expect_ok(fusenet_net_build(&p, &net, &e), &e);
    int count = (int)fx_compute_steps(net, name);
    fusenet_net_free(net);
    return count;
}

/* 5. Row strips (compile.c): conv_in, float32 and read only by the int8
 *    conv_a, runs as row strips quantized one at a time (one image per step:
 *    the batch is micro-batched). Every tap agrees with the net without
 *    strips, for 3, 4 and 5 strips of the 32 rows (11 + 11 + 10, 8 x 4,
 *    7 x 4 + 4: a short last strip, the padding only at the image's top and
 *    bottom), within the bound of test 1 (0.5% of max|tap|: oneDNN may round
 *    the float32 conv of a strip differently from the whole one's, and a value
 *    on a level boundary then lands one level away; measured on AVX2:
 *    byte-identical). A strip reading the wrong input rows is off by the
 *    size of the values themselves. */
static void test_row_strips(void **state) {
    (void)state;
    fusenet_model *m = small_model(9);
    fusenet_calibration *cal = calibrate(m, 1, FUSENET_CALIB_MINMAX);
    float *x = random_input(BATCH, 13), *whole[3], *strips[3];
    fn_shape shapes[16];
    fusenet_error e;
    assert_true(m->g.n <= 16);
    assert_int_equal(fusenet__graph_shapes(&m->g, H, W, shapes, &e), FUSENET_OK);
    int saved = fusenet__row_strips;
    fusenet__row_strips = 0;
    assert_int_equal(steps_of(m, cal, "conv_in"), BATCH);
    run_taps(m, FUSENET_MODE_INT8, cal, x, whole);
    for (int k = 3; k <= 5; k++) {
        fusenet__row_strips = k;
        assert_int_equal(steps_of(m, cal, "conv_in"), BATCH * k);
        run_taps(m, FUSENET_MODE_INT8, cal, x, strips);
        for (int t = 0; t < 3; t++) {
            const fn_shape *sh = &shapes[fusenet__graph_find(&m->g, TAPS[t])];
            size_t count = (size_t)BATCH * sh->h * sh->w * sh->c;
            double scale = 0, diff = 0;
            for (size_t i = 0; i < count; i++) {
                scale = fmax(scale, fabs((double)whole[t][i]));
                diff = fmax(diff, fabs((double)strips[t][i] - (double)whole[t][i]));
            }
            print_message("%d strips, tap %s: %s (max|diff| %.3g, max|whole| %.3g)\n", k, TAPS[t],
                          memcmp(whole[t], strips[t], count * sizeof(float)) ? "differs" : "byte-identical", diff,
                          scale);
            if (!(scale > 0 && diff <= 0.005 * scale)) {
                print_error("%d strips: tap %s is %.3g from the net without strips, bound 0.5%% of %.3g\n", k,
                            TAPS[t], diff, scale);
                fail();
            }
            free(strips[t]);
        }
    }
    fusenet__row_strips = saved;
    for (int t = 0; t < 3; t++) free(whole[t]);
    fusenet__free(x);
    fusenet_calibration_free(cal);
    fusenet_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_int8_against_reference),
        cmocka_unit_test(test_calibration_round_trip),
        cmocka_unit_test(test_calibration_mismatch),
        cmocka_unit_test(test_calibration_parser),
        cmocka_unit_test(test_int8_fidelity),
        cmocka_unit_test(test_row_strips),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
