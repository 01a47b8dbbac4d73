/* test_winograd.c - our own Winograd F(2x2, 3x3) kernel (src/kernels/winograd.h)
 * against the naive convolution of ref_ops.h (double precision, Keras'
 * definition), called directly on nChw8c buffers: odd and tiny sizes (partial
 * tiles), 'same' and 'valid' padding, with and without ReLU, batches, thread
 * counts that do and do not divide the blocks, and blocks small enough that
 * the last one and its last group of 6 tiles are partial.
 *
 * Tolerance: max |got - ref| <= 1e-5 * max(1, max |ref|) (TOL), as in
 * test_ops.c: weights are scaled by 1/sqrt(fan_in) so activations stay of
 * order one, and F(2x2, 3x3)'s transforms are sums of at most four terms
 * with factors 1 and 1/2 (worst seen here: about 1e-6). Every output element
 * must be written (the destination starts as NaN) and nothing past it (a
 * guard of NaN after it must stay NaN, bit for bit).
 *
 * Where the CPU lacks AVX2 or FMA the kernel is not offered and the tests
 * are reported skipped, not passed.
 *
 * test_fast_net: the compiler's use of it in fast mode where it is the fast
 * kernel (AVX2): which convs run on it (by their Keras layers: every 3x3
 * stride-1 conv with 8k inputs, 16k outputs and no residual sum), VGG16's block1 in
 * row strips as in exact mode (bit-identical to the whole conv), and the taps within
 * NET_TOL of max|exact| of the same net in exact mode (oneDNN's direct convolutions) at
 * batch 1 and at batch 3 (micro-batched).
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
#include "net.h"
#include "ref_ops.h"
#include "test_util.h"
#include "winograd.h"

#define RESNET_PATH FN_BUILD_DIR "/winograd_resnet50.h5"
#define VGG_PATH FN_BUILD_DIR "/winograd_vgg16.h5"
#define NET_TOL 1e-4 /* fast mode against exact (oneDNN's direct convolutions), as against PyTorch */

#define TOL 1e-5
#define GUARD 64 /* floats after the destination */

static uint64_t g_rng;

static void rng_seed(uint64_t seed) { g_rng = seed * 0x9E3779B97F4A7C15ull + 1; }

static double rng_unit(void) { /* [0, 1), splitmix64 */
    uint64_t z = (g_rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return (double)((z ^ (z >> 31)) >> 11) / 9007199254740992.0;
}

static float rng_sym(double scale) { return (float)((2.0 * rng_unit() - 1.0) * scale); }

/* NHWC element (n, y, x, c) of a dense nChw8c buffer. */
static size_t blocked_at(int c_total, int h, int w, int n, int y, int x, int c) {
    return ((((size_t)n * (size_t)(c_total / 8) + (size_t)(c / 8)) * (size_t)h + (size_t)y) * (size_t)w + (size_t)x) *
               8 +
           (size_t)(c % 8);
}

typedef struct wcase {
    int n, h, w, c, k, same, relu, pool; /* pool: the 2x2 stride-2 max pool after it, in the kernel */
} wcase;

/* One case at `threads` threads and blocks of at most block_bytes, the source and destination
 * `shift` floats past 64-byte alignment: the largest error relative to max(1, max|ref|). */
static double run_case(const wcase *t, int threads, size_t block_bytes, int shift, uint64_t seed) {
    int ch = ref_window_out(t->h, 3, 1, t->same), cw = ref_window_out(t->w, 3, 1, t->same); /* the conv's */
    int oh = t->pool ? ch / 2 : ch, ow = t->pool ? cw / 2 : cw;                             /* what is written */
    int pad = ref_same_before(t->h, 3, 1, t->same);
    assert_int_equal(pad, ref_same_before(t->w, 3, 1, t->same));
    rng_seed(seed);
    ref_t x = ref_alloc(t->n, t->h, t->w, t->c);
    size_t n_in = ref_count(&x), n_w = (size_t)9 * (size_t)t->c * (size_t)t->k;
    size_t n_out = (size_t)t->n * (size_t)oh * (size_t)ow * (size_t)t->k;
    float *src0 = fusenet__aligned_alloc((n_in + 8) * sizeof *src0), *kernel = malloc(n_w * sizeof *kernel),
          *bias = malloc((size_t)t->k * sizeof *bias), *dst0 = fusenet__aligned_alloc((n_out + 8 + GUARD) * sizeof *dst0);
    assert_non_null(src0);
    assert_non_null(dst0);
    float *src = src0 + shift, *dst = dst0 + shift;
    assert_non_null(kernel);
    assert_non_null(bias);
    assert_non_null(dst);
    for (int n = 0; n < t->n; n++)
        for (int yy = 0; yy < t->h; yy++)
            for (int xx = 0; xx < t->w; xx++)
                for (int c = 0; c < t->c; c++) {
                    float v = rng_sym(1.0);
                    *ref_at(&x, n, yy, xx, c) = v;
                    src[blocked_at(t->c, t->h, t->w, n, yy, xx, c)] = v;
                }
    for (size_t i = 0; i < n_w; i++) kernel[i] = rng_sym(1.0 / sqrt(9.0 * t->c));
    for (int o = 0; o < t->k; o++) bias[o] = rng_sym(0.5);
    for (size_t i = 0; i < n_out + GUARD; i++) dst[i] = NAN;

    fn_wino w = {.n = t->n, .c = t->c, .k = t->k, .ih = t->h, .iw = t->w, .oh = ch, .ow = cw, .pad_t = pad,
                 .pad_l = pad, .relu = t->relu, .pool = t->pool, .threads = threads};
    size_t saved = fusenet__wino_block_bytes;
    fusenet__wino_block_bytes = block_bytes;
    fusenet__wino_plan(&w);
    fusenet__wino_block_bytes = saved;
    assert_true(w.tb >= 6 && w.tb % 6 == 0);
    float *u = fusenet__aligned_alloc(fusenet__wino_weights_floats(&w) * sizeof *u);
    void *scratch = fusenet__aligned_alloc(fusenet__wino_scratch_bytes(&w));
    assert_non_null(u);
    assert_non_null(scratch);
    fusenet__wino_weights(&w, kernel, u);
    fusenet__wino_run(&w, src, u, bias, dst, scratch);

    ref_t y = ref_conv2d(&x, kernel, bias, t->k, 3, 1, t->same, t->relu);
    if (t->pool) {
        ref_t pooled = ref_max_pool(&y, 2, 2);
        ref_release(&y);
        y = pooled;
    }
    assert_int_equal(y.h, oh);
    assert_int_equal(y.w, ow);
    double scale = 1.0, worst = 0.0;
    for (size_t i = 0; i < ref_count(&y); i++) scale = fmax(scale, fabs(y.d[i]));
    for (int n = 0; n < t->n; n++)
        for (int yy = 0; yy < oh; yy++)
            for (int xx = 0; xx < ow; xx++)
                for (int o = 0; o < t->k; o++) {
                    float got = dst[blocked_at(t->k, oh, ow, n, yy, xx, o)];
                    if (isnan(got))
                        fail_msg("%dx%dx%dx%d -> %d: output (%d, %d, %d, %d) not written", t->n, t->h, t->w, t->c,
                                 t->k, n, yy, xx, o);
                    worst = fmax(worst, fabs((double)got - *ref_at(&y, n, yy, xx, o)) / scale);
                }
    for (int g = 0; g < GUARD; g++)
        if (!isnan(dst[n_out + g])) fail_msg("written past the destination (guard float %d)", g);
    ref_release(&x);
    ref_release(&y);
    fusenet__free(src0);
    free(kernel);
    free(bias);
    fusenet__free(dst0);
    fusenet__free(u);
    fusenet__free(scratch);
    return worst;
}

static const wcase cases[] = {
    {1, 5, 7, 8, 16, 1, 1, 0},    /* odd rows and columns: partial tiles on both edges */
    {2, 9, 6, 16, 32, 1, 0, 0},   /* no ReLU: negative outputs pass */
    {1, 1, 1, 8, 16, 1, 1, 0},    /* one pixel, one tile, 5 padding lanes of its group */
    {3, 13, 11, 24, 48, 0, 1, 0}, /* 'valid': 11x9 outputs, no padding */
    {1, 3, 3, 8, 16, 0, 0, 0},    /* 'valid' to one pixel */
    {1, 14, 14, 64, 64, 1, 1, 0}, /* a conv layer's channels */
    {2, 28, 17, 128, 16, 1, 1, 0},
    {1, 12, 10, 16, 256, 1, 1, 0},
    {2, 9, 11, 16, 32, 1, 1, 1},  /* the pool: odd rows and columns, the last partial tiles dropped */
    {1, 14, 14, 64, 64, 1, 0, 1}, /* without ReLU */
    {3, 13, 12, 24, 48, 0, 1, 1}, /* 'valid' 11x10 outputs: 5x5 pooled */
    {1, 3, 3, 8, 16, 1, 1, 1},    /* one pooled pixel */
    {1, 7, 5, 264, 32, 1, 1, 0},  /* more input channels than a pass of the micro-kernel: 256 + 8 */
};

static void check_cases(int threads, size_t block_bytes, int shift) {
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double e = run_case(&cases[i], threads, block_bytes, shift, 100 + i);
        if (e > TOL)
            fail_msg("case %zu (%dx%dx%dx%d -> %d, %s%s%s), %d threads, blocks of %zu bytes, shift %d: error %.2e of "
                     "max(1, max|ref|) > %.0e",
                     i, cases[i].n, cases[i].h, cases[i].w, cases[i].c, cases[i].k, cases[i].same ? "same" : "valid",
                     cases[i].relu ? ", relu" : "", cases[i].pool ? ", pool" : "", threads, block_bytes, shift, e, TOL);
    }
}

#define NEEDS_KERNEL()                                                                                                 \
    do {                                                                                                               \
        if (!fusenet__wino_offered()) {                                                                                \
            print_message("the Winograd kernel needs AVX2 and FMA, which this CPU lacks\n");                           \
            skip();                                                                                                    \
        }                                                                                                              \
    } while (0)

/* Default blocks, 1, 2 and 3 threads (3: the blocks do not split evenly over the team). */
static void test_against_naive_conv(void **state) {
    (void)state;
    NEEDS_KERNEL();
    for (int threads = 1; threads <= 3; threads++) check_cases(threads, fusenet__wino_block_bytes, 0);
}

/* Without the cap on small weights' blocks (every case here has small weights): blocks of up
 * to the 144 tiles larger weights get. */
static void test_large_blocks(void **state) {
    (void)state;
    NEEDS_KERNEL();
    size_t saved = fusenet__wino_small_tiles;
    fusenet__wino_small_tiles = 0;
    for (int threads = 1; threads <= 3; threads += 2) check_cases(threads, fusenet__wino_block_bytes, 0);
    fusenet__wino_small_tiles = saved;
}

/* The smallest blocks (24 tiles): many blocks, the last one and its last group partial. */
static void test_small_blocks(void **state) {
    (void)state;
    NEEDS_KERNEL();
    check_cases(2, 1, 0);
}

/* The input channels in passes of 8 and of 16 (many passes adding to the first one's sums; 16
 * leaves a last pass of 8 where the channels are 24): every case still holds. */
static void test_channel_passes(void **state) {
    (void)state;
    NEEDS_KERNEL();
    size_t saved = fusenet__wino_kc;
    for (size_t kc = 8; kc <= 16; kc += 8) {
        fusenet__wino_kc = kc;
        check_cases(2, fusenet__wino_block_bytes, 0);
        check_cases(1, 1, 0);
    }
    fusenet__wino_kc = saved;
}

/* Source and destination off 32-byte alignment (a micro-batch's slice of a value may be). */
static void test_unaligned(void **state) {
    (void)state;
    NEEDS_KERNEL();
    check_cases(2, fusenet__wino_block_bytes, 1);
    check_cases(1, 1, 3);
}

/* The same outputs, bit for bit, whatever the thread count: each tile's sums do not depend on
 * which thread computes it. */
static void test_threads_bit_identical(void **state) {
    (void)state;
    NEEDS_KERNEL();
    wcase t = {3, 13, 11, 24, 48, 1, 1, 0};
    int oh = 13, ow = 11;
    size_t n_in = (size_t)3 * 13 * 11 * 24, n_out = (size_t)3 * oh * ow * 48, n_w = (size_t)9 * 24 * 48;
    float *src = fusenet__aligned_alloc(n_in * 4), *kernel = malloc(n_w * 4), *bias = malloc(48 * 4);
    float *out[2] = {fusenet__aligned_alloc(n_out * 4), fusenet__aligned_alloc(n_out * 4)};
    assert_true(src && kernel && bias && out[0] && out[1]);
    rng_seed(7);
    for (size_t i = 0; i < n_in; i++) src[i] = rng_sym(1.0);
    for (size_t i = 0; i < n_w; i++) kernel[i] = rng_sym(0.1);
    for (int o = 0; o < 48; o++) bias[o] = rng_sym(0.5);
    for (int r = 0; r < 2; r++) {
        fn_wino w = {.n = t.n, .c = t.c, .k = t.k, .ih = t.h, .iw = t.w, .oh = oh, .ow = ow, .pad_t = 1, .pad_l = 1,
                     .relu = 1, .threads = r ? 3 : 1};
        fusenet__wino_plan(&w);
        w.tb = 24; /* the same blocks for both */
        float *u = fusenet__aligned_alloc(fusenet__wino_weights_floats(&w) * 4);
        void *scratch = fusenet__aligned_alloc(fusenet__wino_scratch_bytes(&w));
        assert_true(u && scratch);
        fusenet__wino_weights(&w, kernel, u);
        fusenet__wino_run(&w, src, u, bias, out[r], scratch);
        fusenet__free(u);
        fusenet__free(scratch);
    }
    assert_memory_equal(out[0], out[1], n_out * 4);
    fusenet__free(src);
    free(kernel);
    free(bias);
    fusenet__free(out[0]);
    fusenet__free(out[1]);
}

/* What the compiler may hand it: channels in 8s, outputs in 16s, 3x3 stride 1 only. */
static void test_fits(void **state) {
    (void)state;
    assert_true(fusenet__wino_fits(64, 64, 3, 3, 1));
    assert_true(fusenet__wino_fits(8, 16, 3, 3, 1));
    assert_false(fusenet__wino_fits(3, 64, 3, 3, 1)); /* VGG16's block1_conv1: RGB input */
    assert_false(fusenet__wino_fits(64, 24, 3, 3, 1));
    assert_false(fusenet__wino_fits(64, 64, 1, 1, 1));
    assert_false(fusenet__wino_fits(64, 64, 7, 7, 1));
    assert_false(fusenet__wino_fits(64, 64, 3, 3, 2));
    assert_false(fusenet__wino_fits(0, 16, 3, 3, 1));
}

/* The plan: blocks of whole groups; with fewer than 48 tiles a thread (VGG16's 14 x 14 at batch
 * 1: 49) the outputs are split over the threads instead of the tiles. */
static void test_plan(void **state) {
    (void)state;
    fn_wino small = {.n = 1, .c = 512, .k = 512, .ih = 14, .iw = 14, .oh = 14, .ow = 14, .pad_t = 1, .pad_l = 1,
                     .threads = 2};
    fusenet__wino_plan(&small);
    assert_int_equal(small.kparts, 2);
    assert_true(small.tb >= 49 && small.tb % 6 == 0);
    fn_wino big = small;
    big.ih = big.iw = big.oh = big.ow = 56;
    big.c = big.k = 256;
    fusenet__wino_plan(&big);
    assert_int_equal(big.kparts, 1);
    assert_int_equal(big.tb % 6, 0);
    long tiles = 28 * 28, blocks = (tiles + big.tb - 1) / big.tb;
    assert_int_equal(blocks % 2, 0); /* an even split over the two threads */
    /* 256 -> 256 channels: 4 MiB of transformed weights, small: blocks of at most 36 tiles */
    assert_true(big.tb <= 36 && (size_t)big.tb <= fusenet__wino_small_tiles);
    size_t saved = fusenet__wino_small_tiles;
    fusenet__wino_small_tiles = 0; /* no cap: 4 MiB of V and M a thread, about 128 tiles */
    fusenet__wino_plan(&big);
    assert_true(big.tb > 100 && big.tb <= 144);
    fusenet__wino_small_tiles = saved;
    fn_wino large = big; /* 512 -> 512 at 28 x 28: 16 MiB of weights, not capped */
    large.ih = large.iw = large.oh = large.ow = 28;
    large.c = large.k = 512;
    fusenet__wino_plan(&large);
    assert_true(large.tb > 36 && large.tb % 6 == 0);
}

/* Does ResNet50's or VGG16's Keras layer run on our kernel in fast mode? */
static int wino_layer(const char *layer) {
    /* block1_pool: block1_conv2 with the pool in its output transform, a step named after the pool */
    static const char *const vgg[] = {"block1_pool", "block2_conv1", "block2_conv2",
                                      "block3_conv1", "block3_conv2", "block3_pool"};
    for (size_t i = 0; i < sizeof vgg / sizeof vgg[0]; i++)
        if (!strcmp(layer, vgg[i])) return 1;
    size_t n = strlen(layer); /* conv2_block1_2_relu: the 3x3 conv with its BatchNorm and ReLU folded */
    return n > 7 && !strcmp(layer + n - 7, "_2_relu");
}

/* A fast-mode net of the three taps at 40 x 52, built with *knob = value (restored after),
 * run on in. */
static fusenet_net *fast_net_with(int *knob, int value, const fusenet_tap *taps, int batch, const fusenet_tensor *in) {
    fusenet_error err;
    int saved = *knob;
    *knob = value;
    fusenet_net_params p = fx_net_params(taps, 3, batch, 40, 52, 0);
    p.mode = FUSENET_MODE_FAST;
    fusenet_net *net;
    expect_ok(fusenet_net_build(&p, &net, &err), &err);
    *knob = saved;
    expect_ok(fusenet_net_run(net, in, &err), &err);
    return net;
}

/* Taps [from, to) of nets a and b hold the same bytes. */
static void assert_taps_identical(const fusenet_net *a, const fusenet_net *b, size_t from, size_t to) {
    fusenet_error err;
    for (size_t t = from; t < to; t++) {
        fusenet_tensor x, y;
        expect_ok(fusenet_net_tap_output(a, t, &x, &err), &err);
        expect_ok(fusenet_net_tap_output(b, t, &y, &err), &err);
        assert_memory_equal(x.data, y.data, (size_t)x.n * x.h * x.w * x.c * sizeof *x.data);
    }
}

static void test_fast_net(void **state) {
    (void)state;
    if (!fusenet__fast_own_winograd()) {
        print_message("fast mode does not run our Winograd kernel here (oneDNN's on AVX-512, or none)\n");
        skip();
    }
    assert_int_equal(fx_write_weights(FUSENET_ARCH_RESNET50, 31, RESNET_PATH), 0);
    assert_int_equal(fx_write_weights(FUSENET_ARCH_VGG16, 32, VGG_PATH), 0);
    /* block2_conv2 tapped: block2_pool stays apart; block3_pool tapped after block3_conv3: in its
     * output transform (40 x 52 input: block3's 10 x 13 maps, an odd column of tiles dropped) */
    const char *rl[] = {"conv2_block2_out"}, *vl[] = {"block2_conv2", "block3_pool"};
    fusenet_model *r = fx_model_load(RESNET_PATH, FUSENET_ARCH_RESNET50, rl, 1),
                  *v = fx_model_load(VGG_PATH, FUSENET_ARCH_VGG16, vl, 2);
    assert_non_null(r);
    assert_non_null(v);
    fusenet_tap taps[3] = {{r, rl[0]}, {v, vl[0]}, {v, vl[1]}};
    for (int batch = 1; batch <= 3; batch += 2) {
        fusenet_net *net[2];
        fusenet_error err;
        float *x = fx_lcg_input((size_t)batch * 40 * 52 * 3, 5, 27600, -124.0f);
        fusenet_tensor in = {x, batch, 40, 52, 3};
        for (int m = 0; m < 2; m++) {
            fusenet_net_params p = fx_net_params(taps, 3, batch, 40, 52, 0);
            p.mode = m ? FUSENET_MODE_FAST : FUSENET_MODE_EXACT;
            expect_ok(fusenet_net_build(&p, &net[m], &err), &err);
            expect_ok(fusenet_net_run(net[m], &in, &err), &err);
        }
        size_t ours = 0;
        for (size_t i = 0; i < fusenet_net_step_count(net[1]); i++) {
            fusenet_step_info si;
            expect_ok(fusenet_net_step_info(net[1], i, &si, &err), &err);
            if (si.kind != FUSENET_STEP_COMPUTE) continue;
            int is_ours = strstr(si.impl, "fusenet_wino") != NULL;
            if (is_ours != wino_layer(si.layer))
                fail_msg("batch %d: %s ran on %s", batch, si.layer, si.impl);
            ours += (size_t)is_ours;
        }
        assert_true(ours >= (size_t)(6 + 2)); /* VGG16's six, ResNet50's conv2_block1 and 2 (more when micro-batched) */
        /* block1 as exact mode runs it: row strips at batch 1, once per image when micro-batched;
         * block1_conv2 and block1_pool one step each time (no step of block1_conv2's own) */
        assert_int_equal(fx_compute_steps(net[1], "block1_pool"), fx_compute_steps(net[0], "block1_conv2"));
        assert_int_equal(fx_compute_steps(net[1], "block1_conv2"), 0);
        { /* the pool in the output transform changes no output bit: the same floats' max */
            fusenet_net *apart = fast_net_with(&fusenet__wino_fuse_pool, 0, taps, batch, &in);
            assert_int_equal(fx_compute_steps(apart, "block1_conv2"), fx_compute_steps(net[1], "block1_pool"));
            assert_int_equal(fx_compute_steps(apart, "block3_conv3"), fx_compute_steps(net[1], "block3_pool"));
            assert_taps_identical(apart, net[1], 1, 3); /* through block1's pool, and block3's own */
            fusenet_net_free(apart);
        }
        if (batch == 1) { /* the strips change no output bit: each strip's tiles are the whole conv's */
            assert_true(fx_compute_steps(net[1], "block1_pool") > 1);
            fusenet_net *whole = fast_net_with(&fusenet__row_strips, 0, taps, batch, &in);
            assert_int_equal(fx_compute_steps(whole, "block1_pool"), 1);
            assert_taps_identical(whole, net[1], 1, 2);
            fusenet_net_free(whole);
        }
        assert_int_equal(fx_compute_steps(net[1], "block3_conv3"), 0);
        assert_int_equal(fx_compute_steps(net[1], "block3_pool"), fx_compute_steps(net[0], "block3_pool"));
        for (size_t t = 0; t < 3; t++) {
            fusenet_tensor a, b;
            expect_ok(fusenet_net_tap_output(net[0], t, &a, &err), &err);
            expect_ok(fusenet_net_tap_output(net[1], t, &b, &err), &err);
            size_t count = (size_t)a.n * (size_t)a.h * (size_t)a.w * (size_t)a.c;
            double scale = 0, worst = 0;
            for (size_t i = 0; i < count; i++) scale = fmax(scale, fabs(a.data[i]));
            for (size_t i = 0; i < count; i++) worst = fmax(worst, fabs((double)a.data[i] - b.data[i]));
            assert_true(scale > 0);
            if (worst > NET_TOL * scale)
                fail_msg("batch %d, tap %s: fast differs from exact by %.2e of max|exact| (bound %.0e)", batch, taps[t].layer,
                         worst / scale, NET_TOL);
        }
        fusenet_net_free(net[0]);
        fusenet_net_free(net[1]);
        free(x);
    }
    fusenet_model_free(r);
    fusenet_model_free(v);
    remove(RESNET_PATH);
    remove(VGG_PATH);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fits),
        cmocka_unit_test(test_plan),
        cmocka_unit_test(test_channel_passes),
        cmocka_unit_test(test_against_naive_conv),
        cmocka_unit_test(test_large_blocks),
        cmocka_unit_test(test_small_blocks),
        cmocka_unit_test(test_unaligned),
        cmocka_unit_test(test_threads_bit_identical),
        cmocka_unit_test(test_fast_net),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
