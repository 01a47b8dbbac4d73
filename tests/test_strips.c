/* test_strips.c - row strips of a float32 trunk's first conv -> conv -> pool
 * block (compile.c, block_strips): VGG16's block1 run as 2 to 5 strips gives
 * the taps the same net gives without strips, at 224 x 224 and at odd,
 * non-square sizes, batch 1 and 3 (micro-batched: one image per step), and
 * neither conv's whole output is in the arena any more.
 *
 * This is a differential test: the expected values come from the same
 * library with the strips off (fusenet__row_strips = 0). The independent
 * check of the strip path is conformance_pytorch, which runs the default
 * (strips on) against PyTorch at 224x224 and 97x131. The bound is 1e-5 of
 * max|tap|: a strip's outputs are summed over the same taps in the same
 * order as the whole conv's (measured byte-identical on AVX2), but oneDNN
 * could pick another kernel for a strip's shape on another ISA; a strip that
 * reads the wrong rows is off by the size of the values themselves.
 *
 * Nothing here depends on the ISA: the arena bounds are sums of whole maps
 * whose channel counts (64, 128) are multiples of 16. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "net.h"
#include "test_util.h"

#ifndef FN_BUILD_DIR
#define FN_BUILD_DIR "."
#endif
#define VGG_PATH FN_BUILD_DIR "/strips_vgg16.h5"

static fusenet_model *vgg;
static const char *const TAPS[] = {"block1_pool", "block2_conv1", "block5_conv3"};
enum { N_TAPS = 3 };
static int first_tap; /* the nets tap TAPS[first_tap..N_TAPS) */

static fusenet_net *build(int strips, int32_t batch, int32_t h, int32_t w) {
    fusenet_tap taps[N_TAPS];
    for (int t = first_tap; t < N_TAPS; t++) taps[t - first_tap] = (fusenet_tap){vgg, TAPS[t]};
    fusenet_net_params p = fx_net_params(taps, (size_t)(N_TAPS - first_tap), batch, h, w, 0);
    p.threads = 2;
    int saved = fusenet__row_strips;
    fusenet__row_strips = strips;
    fusenet_net *net = NULL;
    fusenet_error err;
    expect_ok(fusenet_net_build(&p, &net, &err), &err);
    fusenet__row_strips = saved;
    return net;
}

/* The taps of a run on x, copied out. */
static void run_taps(fusenet_net *net, float *x, int32_t batch, int32_t h, int32_t w, float **out, size_t *count) {
    fusenet_tensor in = {x, batch, h, w, 3}, t;
    fusenet_error err;
    expect_ok(fusenet_net_run(net, &in, &err), &err);
    for (int k = 0; k < N_TAPS - first_tap; k++) {
        expect_ok(fusenet_net_tap_output(net, (size_t)k, &t, &err), &err);
        count[k] = (size_t)t.n * t.h * t.w * t.c;
        out[k] = malloc(count[k] * sizeof(float));
        assert_non_null(out[k]);
        memcpy(out[k], t.data, count[k] * sizeof(float));
    }
}

/* Batch 3 runs block1 one image at a time (micro-batched) and so in strips,
 * with the micro-batched part ending after the pool; not when the pool is
 * tapped (a micro-batched part cannot hold a tap): then block1 is not
 * micro-batched at all, and runs whole. */
static void test_strips_match(void **state) {
    (void)state;
    static const struct {
        int32_t batch, h, w;
        int first_tap, strips; /* 1: taken */
    } cases[] = {{1, 224, 224, 0, 1}, {1, 97, 131, 0, 1}, {3, 97, 131, 1, 1}, {3, 97, 131, 0, 0}, {1, 33, 47, 0, 1}};
    for (size_t s = 0; s < sizeof cases / sizeof *cases; s++) {
        int32_t batch = cases[s].batch, h = cases[s].h, w = cases[s].w;
        first_tap = cases[s].first_tap;
        size_t n = (size_t)batch * h * w * 3, count[N_TAPS];
        float *x = fx_lcg_input(n, 40 + s, 27601, -124.0f); /* caffe-preprocessed range */
        float *whole[N_TAPS], *strips[N_TAPS];
        static const char *const block1[] = {"block1_conv1", "block1_conv2", "block1_pool"};
        fusenet_net *net = build(0, batch, h, w);
        size_t steps0[3]; /* without strips: one step per image where micro-batched */
        for (int l = 0; l < 3; l++) steps0[l] = fx_compute_steps(net, block1[l]);
        if (cases[s].strips) assert_int_equal(steps0[0], (size_t)batch);
        run_taps(net, x, batch, h, w, whole, count);
        fusenet_net_free(net);
        for (int k = 2; k <= 5; k++) {
            net = build(k, batch, h, w);
            /* taken: one step per strip and image for both convs and the pool; else the same steps.
             * The strips are of ceil(pooled rows / k) pooled rows, the last one shorter: k of them, or
             * fewer when that leaves the last one empty (16 rows in 5 strips: 4 strips of 4). */
            int pooled = h / 2, per = (pooled + k - 1) / k;
            size_t want = (size_t)((pooled + per - 1) / per) * (size_t)batch;
            for (int l = 0; l < 3; l++)
                assert_int_equal(fx_compute_steps(net, block1[l]), cases[s].strips ? want : steps0[l]);
            run_taps(net, x, batch, h, w, strips, count);
            for (int t = 0; t < N_TAPS - first_tap; t++) {
                const char *name = TAPS[first_tap + t];
                double scale = 0, diff = 0;
                for (size_t i = 0; i < count[t]; i++) {
                    scale = fmax(scale, fabs((double)whole[t][i]));
                    diff = fmax(diff, fabs((double)strips[t][i] - (double)whole[t][i]));
                }
                print_message("%dx%dx%d, %d strips (%zu steps), tap %s: %s (max|diff| %.3g, max|whole| %.3g)\n",
                              batch, h, w, k, cases[s].strips ? want : steps0[0], name,
                              memcmp(whole[t], strips[t], count[t] * sizeof(float)) ? "differs" : "byte-identical",
                              diff, scale);
                if (!(scale > 0 && diff <= 1e-5 * scale)) {
                    print_error("%dx%dx%d, %d strips: tap %s is %.3g from the net without strips, bound 1e-5 of "
                                "%.3g\n", batch, h, w, k, name, diff, scale);
                    fail();
                }
                free(strips[t]);
            }
            fusenet_net_free(net);
        }
        for (int t = 0; t < N_TAPS - first_tap; t++) free(whole[t]);
        free(x);
    }
    first_tap = 0;
}

/* At 224 x 224, batch 1, tapping block5_conv3: without strips the arena
 * holds block1_conv1's and block1_conv2's outputs at once (2 x 224 x 224 x 64
 * floats); with them, the largest moment is block2_conv2 reading
 * block2_conv1's output (2 x 112 x 112 x 128 floats, half that), and block1's
 * strips (a quarter of each conv's output, the pooled map) stay below it. */
static void test_strips_memory(void **state) {
    (void)state;
    fusenet_tap tap = {vgg, "block5_conv3"};
    fusenet_net_params p = fx_net_params(&tap, 1, 1, 224, 224, 0);
    p.threads = 2;
    size_t arena[2];
    int saved = fusenet__row_strips;
    for (int k = 0; k < 2; k++) {
        fusenet__row_strips = k ? 4 : 0;
        fusenet_net *net = NULL;
        fusenet_error err;
        expect_ok(fusenet_net_build(&p, &net, &err), &err);
        arena[k] = net->arena_size;
        fusenet_net_free(net);
    }
    fusenet__row_strips = saved;
    double block1 = 2.0 * 224 * 224 * 64 * 4, block2 = 2.0 * 112 * 112 * 128 * 4;
    print_message("arena without / with strips: %.2f / %.2f MB (block1's two maps %.2f MB, block2's %.2f MB)\n",
                  arena[0] / 1e6, arena[1] / 1e6, block1 / 1e6, block2 / 1e6);
    assert_true((double)arena[0] >= block1);
    assert_true((double)arena[1] <= 1.02 * block2);
}

static int group_setup(void **state) {
    (void)state;
    if (fx_write_weights(FUSENET_ARCH_VGG16, 31, VGG_PATH)) return -1;
    vgg = fx_model_load(VGG_PATH, FUSENET_ARCH_VGG16, NULL, 0);
    return vgg ? 0 : -1;
}

static int group_teardown(void **state) {
    (void)state;
    fusenet_model_free(vgg);
    remove(VGG_PATH);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strips_match),
        cmocka_unit_test(test_strips_memory),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
