/* test_pool.c - our own 2x2 stride-2 max pool (src/kernels/pool.h) and the
 * compiler's use of it in exact mode.
 *
 * test_kernel: the kernel called directly, against the naive max pool of
 * ref_ops.h (Keras' MaxPooling2D((2, 2), strides=(2, 2)), 'valid'): planes of
 * 8, 16 and 64 lanes (nChw8c, nChw16c, nhwc; the AVX2 path where the CPU has
 * it) and of 3 and 12 (the plain C path on every CPU), odd and even sizes
 * (a last odd row or column dropped), one output pixel, thread counts that do
 * and do not divide the rows, and destinations taller than the output (a
 * strip's rows written in place). A maximum is one of its inputs, so the
 * outputs must equal the reference exactly. Every output is written (the
 * destination starts as NaN) and nothing else is: the rows above and below
 * the written ones and a guard after the destination stay NaN, bit for bit.
 *
 * test_windows: the same for other windows: ResNet50's pool1 (3x3 stride 2,
 * padded cells ignored), odd sizes, one-sided padding, stride 1, a 2x3 window,
 * against a naive loop over each window's cells inside the plane.
 *
 * test_net_pools: exact-mode nets at 45 x 61 (block3's maps 11 x 15: odd),
 * batch 1 and 3 (micro-batched), tapping each VGG16 pool and the conv before
 * it: every pool tap must equal the naive max pool of its conv tap, exactly.
 * test_net_pool1: the same for ResNet50's pool1_pool against conv1_relu padded
 * with zeros as Keras pads it (pool1_pad).
 *
 * test_net_paths: VGG16's block3_pool alone tapped (block1 then runs in row
 * strips at batch 1, its pooled rows written in place): the same bytes with
 * our pool as with oneDNN's (fusenet__own_pool = 0), and as the net above
 * that runs block1 whole. Which pools run on ours depends on the layouts
 * oneDNN picks on this CPU: where none does, the test is reported skipped.
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

#include "net.h"
#include "pool.h"
#include "ref_ops.h"
#include "test_util.h"

#define VGG_PATH FN_BUILD_DIR "/pool_vgg16.h5"
#define RESNET_PATH FN_BUILD_DIR "/pool_resnet50.h5"
#define GUARD 64 /* floats after the destination */
#define H 45
#define W 61

static uint64_t g_rng;

static float rng_float(void) { /* splitmix64 -> [-8, 8) on a grid of 1/64: ties and repeats happen */
    uint64_t z = (g_rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return (float)((int)((z ^ (z >> 31)) % 1024) - 512) / 64.0f;
}

static int is_nan_bits(float v) {
    float n = NAN;
    return memcmp(&v, &n, sizeof v) == 0;
}

/* The naive max pool that ignores padded cells (pool.h's definition): out[q][y][x][l]. */
static double naive_pool(const float *src, int ih, int iw, int lanes, int kh, int kw, int stride, int pad_t,
                         int pad_l, int q, int y, int x, int l) {
    double m = -INFINITY;
    for (int i = 0; i < kh; i++)
        for (int j = 0; j < kw; j++) {
            int r = y * stride - pad_t + i, c = x * stride - pad_l + j;
            if (r < 0 || r >= ih || c < 0 || c >= iw) continue;
            double v = src[(((size_t)q * ih + r) * iw + c) * lanes + l];
            if (v > m) m = v;
        }
    return m;
}

/* A kh x kw pool at `stride`, padded pad_t/pad_b rows and pad_l/pad_r columns, of `planes`
 * ih x iw x lanes planes into planes extra_rows taller, from row dst_row on. */
static void check_pool(int planes, int ih, int iw, int lanes, int kh, int kw, int stride, int pad_t, int pad_b,
                       int pad_l, int pad_r, int threads, int extra_rows, int dst_row) {
    int oh = (ih + pad_t + pad_b - kh) / stride + 1, ow = (iw + pad_l + pad_r - kw) / stride + 1;
    fn_pool p = {.planes = planes, .ih = ih, .iw = iw, .lanes = lanes, .kh = kh, .kw = kw, .stride = stride,
                 .pad_t = pad_t, .pad_l = pad_l, .oh = oh, .ow = ow, .dst_h = oh + extra_rows, .dst_row = dst_row,
                 .threads = threads};
    size_t ns = (size_t)planes * ih * iw * lanes, plane_out = (size_t)p.dst_h * p.ow * lanes;
    size_t nd = (size_t)planes * plane_out;
    float *src = malloc(ns * sizeof *src), *dst = malloc((nd + GUARD) * sizeof *dst);
    assert_non_null(src);
    assert_non_null(dst);
    for (size_t i = 0; i < ns; i++) src[i] = rng_float();
    for (size_t i = 0; i < nd + GUARD; i++) dst[i] = NAN;
    fusenet__max_pool_run(&p, src, dst);
    /* unpadded: also against ref_ops.h's Keras pool, each plane an NHWC image of `lanes` channels */
    int unpadded = !pad_t && !pad_b && !pad_l && !pad_r && kh == kw;
    ref_t x = ref_alloc(planes, ih, iw, lanes), y = {NULL, 0, 0, 0, 0};
    assert_non_null(x.d);
    if (unpadded) {
        for (size_t i = 0; i < ns; i++) x.d[i] = src[i];
        y = ref_max_pool(&x, kh, stride);
        assert_int_equal(y.h, oh);
        assert_int_equal(y.w, ow);
    }
    for (int q = 0; q < planes; q++)
        for (int r = 0; r < p.dst_h; r++)
            for (int c = 0; c < p.ow; c++)
                for (int l = 0; l < lanes; l++) {
                    float got = dst[(size_t)q * plane_out + ((size_t)r * p.ow + c) * lanes + l];
                    int written = r >= dst_row && r < dst_row + oh;
                    if (!written && !is_nan_bits(got))
                        fail_msg("%d planes %dx%dx%d: row %d of plane %d is not the output's but was written", planes,
                                 ih, iw, lanes, r, q);
                    if (!written) continue;
                    double want = naive_pool(src, ih, iw, lanes, kh, kw, stride, pad_t, pad_l, q, r - dst_row, c, l);
                    if (unpadded && *ref_at(&y, q, r - dst_row, c, l) != want) fail_msg("the two references differ");
                    if (got != (float)want)
                        fail_msg("%d planes %dx%dx%d, %dx%d/%d pad %d %d, %d threads: plane %d (%d, %d) lane %d is %g, "
                                 "expected %g",
                                 planes, ih, iw, lanes, kh, kw, stride, pad_t, pad_l, threads, q, r - dst_row, c, l,
                                 got, want);
                }
    for (size_t i = nd; i < nd + GUARD; i++)
        if (!is_nan_bits(dst[i])) fail_msg("%d planes %dx%dx%d: written past the destination", planes, ih, iw, lanes);
    ref_release(&x);
    if (unpadded) ref_release(&y);
    free(src);
    free(dst);
}

static void check_kernel(int planes, int ih, int iw, int lanes, int threads, int extra_rows, int dst_row) {
    check_pool(planes, ih, iw, lanes, 2, 2, 2, 0, 0, 0, 0, threads, extra_rows, dst_row);
}

static void test_kernel(void **state) {
    (void)state;
    g_rng = 11;
    static const int shapes[][3] = {{224, 224, 0}, {11, 15, 0}, {2, 2, 0}, {3, 3, 0}, {2, 7, 0}, {9, 2, 0}};
    static const int lanes[] = {8, 16, 64, 3, 12};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
        for (size_t l = 0; l < sizeof lanes / sizeof *lanes; l++) {
            int big = shapes[s][0] > 100;
            if (big && lanes[l] > 16) continue; /* 224 x 224 x 64 once is enough: below */
            check_kernel(big ? 2 : 5, shapes[s][0], shapes[s][1], lanes[l], 1, 0, 0);
            check_kernel(big ? 2 : 5, shapes[s][0], shapes[s][1], lanes[l], 3, 0, 0);
        }
    check_kernel(1, 224, 224, 64, 2, 0, 0);
    /* a strip's rows into the middle of taller planes (block1's row strips) */
    check_kernel(8, 14, 224, 8, 2, 20, 7);
    check_kernel(3, 5, 9, 16, 2, 4, 4);
    check_kernel(3, 5, 9, 3, 2, 1, 0);
}

/* Other windows: ResNet50's pool1 (3x3 stride 2, a padded row and column on each side), odd
 * sizes, padding on one side only, stride 1, 'valid' 3x3, a window wider than high. */
static void test_windows(void **state) {
    (void)state;
    g_rng = 12;
    static const int lanes[] = {8, 16, 64, 3};
    for (size_t l = 0; l < sizeof lanes / sizeof *lanes; l++)
        for (int threads = 1; threads <= 3; threads += 2) {
            check_pool(lanes[l] > 16 ? 1 : 4, 112, 112, lanes[l], 3, 3, 2, 1, 1, 1, 1, threads, 0, 0);
            check_pool(3, 11, 15, lanes[l], 3, 3, 2, 1, 1, 1, 1, threads, 0, 0);
            check_pool(3, 10, 9, lanes[l], 3, 3, 2, 1, 0, 0, 1, threads, 0, 0);
            check_pool(2, 7, 6, lanes[l], 3, 3, 1, 1, 1, 1, 1, threads, 0, 0);
            check_pool(2, 7, 8, lanes[l], 3, 3, 2, 0, 0, 0, 0, threads, 0, 0);
            check_pool(2, 3, 3, lanes[l], 3, 3, 2, 1, 1, 1, 1, threads, 0, 0);
            check_pool(2, 9, 10, lanes[l], 2, 3, 3, 1, 0, 2, 1, threads, 2, 1);
        }
}

static fusenet_net *exact_net(const fusenet_tap *taps, size_t n, int batch, const fusenet_tensor *in) {
    fusenet_error err;
    fusenet_net_params p = fx_net_params(taps, n, batch, H, W, 0);
    fusenet_net *net;
    expect_ok(fusenet_net_build(&p, &net, &err), &err);
    expect_ok(fusenet_net_run(net, in, &err), &err);
    return net;
}

/* Compute steps of net that ran on our pool. */
static size_t own_pool_steps(const fusenet_net *net) {
    size_t count = 0;
    for (size_t i = 0; i < fusenet_net_step_count(net); i++) {
        fusenet_step_info si;
        fusenet_error err;
        expect_ok(fusenet_net_step_info(net, i, &si, &err), &err);
        count += si.kind == FUSENET_STEP_COMPUTE && strstr(si.impl, "fusenet_max_pool") != NULL;
    }
    return count;
}

static void assert_same_tap(const fusenet_net *a, size_t ta, const fusenet_net *b, size_t tb) {
    fusenet_error err;
    fusenet_tensor x, y;
    expect_ok(fusenet_net_tap_output(a, ta, &x, &err), &err);
    expect_ok(fusenet_net_tap_output(b, tb, &y, &err), &err);
    assert_true(x.n == y.n && x.h == y.h && x.w == y.w && x.c == y.c);
    assert_memory_equal(x.data, y.data, (size_t)x.n * x.h * x.w * x.c * sizeof *x.data);
}

static const char *const pairs[] = {"block1_conv2", "block1_pool", "block2_conv2", "block2_pool",
                                    "block3_conv3", "block3_pool", "block4_conv3", "block4_pool"};
#define N_PAIRS (sizeof pairs / sizeof *pairs)

static void test_net_pools(void **state) {
    (void)state;
    assert_int_equal(fx_write_weights(FUSENET_ARCH_VGG16, 41, VGG_PATH), 0);
    fusenet_model *v = fx_model_load(VGG_PATH, FUSENET_ARCH_VGG16, (const char *const *)pairs, N_PAIRS);
    assert_non_null(v);
    fusenet_tap taps[N_PAIRS];
    for (size_t t = 0; t < N_PAIRS; t++) taps[t] = (fusenet_tap){v, pairs[t]};
    for (int batch = 1; batch <= 3; batch += 2) {
        float *x = fx_lcg_input((size_t)batch * H * W * 3, 7, 27600, -124.0f);
        fusenet_tensor in = {x, batch, H, W, 3};
        fusenet_net *net = exact_net(taps, N_PAIRS, batch, &in);
        fusenet_error err;
        for (size_t t = 0; t < N_PAIRS; t += 2) {
            fusenet_tensor conv, pool;
            expect_ok(fusenet_net_tap_output(net, t, &conv, &err), &err);
            expect_ok(fusenet_net_tap_output(net, t + 1, &pool, &err), &err);
            ref_t r = ref_alloc(conv.n, conv.h, conv.w, conv.c);
            assert_non_null(r.d);
            for (size_t i = 0; i < ref_count(&r); i++) r.d[i] = conv.data[i];
            ref_t want = ref_max_pool(&r, 2, 2);
            assert_true(pool.n == want.n && pool.h == want.h && pool.w == want.w && pool.c == want.c);
            double scale = 0;
            for (size_t i = 0; i < ref_count(&want); i++) {
                if (pool.data[i] != (float)want.d[i])
                    fail_msg("batch %d, %s: element %zu is %g, the max pool of %s gives %g", batch, pairs[t + 1], i,
                             pool.data[i], pairs[t], want.d[i]);
                scale = fmax(scale, fabs(want.d[i]));
            }
            assert_true(scale > 0); /* the pools see non-zero activations */
            ref_release(&r);
            ref_release(&want);
        }
        fusenet_net_free(net);
        free(x);
    }
    fusenet_model_free(v);
}

/* ResNet50's pool1_pool (3x3 stride 2 after pool1_pad's zero row and column on each side) as
 * Keras defines it: conv1_relu's tap padded with zeros, then the naive max pool, exactly. */
static void test_net_pool1(void **state) {
    (void)state;
    assert_int_equal(fx_write_weights(FUSENET_ARCH_RESNET50, 43, RESNET_PATH), 0);
    const char *const layers[] = {"conv1_relu", "pool1_pool"};
    fusenet_model *r = fx_model_load(RESNET_PATH, FUSENET_ARCH_RESNET50, layers, 2);
    assert_non_null(r);
    fusenet_tap taps[2] = {{r, layers[0]}, {r, layers[1]}};
    for (int batch = 1; batch <= 3; batch += 2) {
        float *x = fx_lcg_input((size_t)batch * H * W * 3, 8, 27600, -124.0f);
        fusenet_tensor in = {x, batch, H, W, 3};
        fusenet_net *net = exact_net(taps, 2, batch, &in);
        fusenet_error err;
        fusenet_tensor conv, pool;
        expect_ok(fusenet_net_tap_output(net, 0, &conv, &err), &err);
        expect_ok(fusenet_net_tap_output(net, 1, &pool, &err), &err);
        ref_t c = ref_alloc(conv.n, conv.h, conv.w, conv.c);
        assert_non_null(c.d);
        for (size_t i = 0; i < ref_count(&c); i++) c.d[i] = conv.data[i];
        ref_t padded = ref_zero_pad(&c, 1), want = ref_max_pool(&padded, 3, 2);
        assert_true(pool.n == want.n && pool.h == want.h && pool.w == want.w && pool.c == want.c);
        for (size_t i = 0; i < ref_count(&want); i++)
            if (pool.data[i] != (float)want.d[i])
                fail_msg("batch %d, pool1_pool: element %zu is %g, Keras' pool of conv1_relu gives %g", batch, i,
                         pool.data[i], want.d[i]);
        ref_release(&c);
        ref_release(&padded);
        ref_release(&want);
        fusenet_net_free(net);
        free(x);
    }
    fusenet_model_free(r);
    remove(RESNET_PATH);
}

static void test_net_paths(void **state) {
    (void)state;
    fusenet_model *v = fx_model_load(VGG_PATH, FUSENET_ARCH_VGG16, (const char *const *)pairs, N_PAIRS);
    assert_non_null(v);
    fusenet_tap all[N_PAIRS], last = {v, "block3_pool"};
    for (size_t t = 0; t < N_PAIRS; t++) all[t] = (fusenet_tap){v, pairs[t]};
    size_t ours = 0;
    for (int batch = 1; batch <= 3; batch += 2) {
        float *x = fx_lcg_input((size_t)batch * H * W * 3, 9, 27600, -124.0f);
        fusenet_tensor in = {x, batch, H, W, 3};
        fusenet_net *whole = exact_net(all, N_PAIRS, batch, &in), *net = exact_net(&last, 1, batch, &in);
        int saved = fusenet__own_pool;
        fusenet__own_pool = 0;
        fusenet_net *theirs = exact_net(&last, 1, batch, &in);
        fusenet__own_pool = saved;
        assert_int_equal(own_pool_steps(theirs), 0);
        if (batch == 1) assert_true(fx_compute_steps(net, "block1_pool") > 1); /* row strips */
        ours += own_pool_steps(net);
        assert_same_tap(net, 0, theirs, 0);
        assert_same_tap(net, 0, whole, 5);
        fusenet_net_free(whole);
        fusenet_net_free(net);
        fusenet_net_free(theirs);
        free(x);
    }
    fusenet_model_free(v);
    remove(VGG_PATH);
    if (!ours) {
        print_message("no pool ran on our kernel here: oneDNN laid the pools' inputs out otherwise\n");
        skip();
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kernel),
        cmocka_unit_test(test_windows),
        cmocka_unit_test(test_net_pools),
        cmocka_unit_test(test_net_pool1),
        cmocka_unit_test(test_net_paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
