/* test_build_files.c - fusenet_build_files: any taps read from weights files.
 *
 * Its nets against nets built independently from the same files: the
 * fusenet_net_build of fully loaded models (every output bit for bit: the
 * models it loads itself read the same floats, and the build is deterministic)
 * and fusenet_build_dual for the two default taps; then its argument checks,
 * and that the mode is refused before a file is read.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fusenet.h"
#include "random_weights.h"
#include "test_util.h"

#define DIR FN_BUILD_DIR "/"
#define RESNET DIR "bf_resnet50.h5"
#define VGG DIR "bf_vgg16.h5"
#define N 2
#define H 67
#define W 83

static float g_input[N * H * W * 3];

static int setup(void **state) {
    (void)state;
    uint32_t s = 7;
    for (size_t i = 0; i < sizeof g_input / sizeof g_input[0]; i++) {
        s = s * 1664525u + 1013904223u;
        g_input[i] = (float)(s >> 8) / 16777216.0f * 276.0f - 124.0f; /* caffe-like pixels */
    }
    return fx_write_weights(FUSENET_ARCH_RESNET50, 3, RESNET) || fx_write_weights(FUSENET_ARCH_VGG16, 4, VGG);
}

static int teardown(void **state) {
    (void)state;
    remove(RESNET);
    remove(VGG);
    return 0;
}

static fusenet_file_tap file_tap(const char *path, fusenet_arch arch, const char *layer) {
    fusenet_file_tap t = {path, fusenet_model_default_params(), layer};
    t.model.arch = arch;
    return t;
}

/* Runs net on the input; copies output `which` (-1: the fused map) into a new buffer. */
static float *run_copy(fusenet_net *net, int which, size_t *count) {
    fusenet_tensor in = {g_input, N, H, W, 3}, out;
    fusenet_error err;
    expect_ok(fusenet_net_run(net, &in, &err), &err);
    if (which < 0) expect_ok(fusenet_net_output(net, &out, &err), &err);
    else expect_ok(fusenet_net_tap_output(net, (size_t)which, &out, &err), &err);
    *count = (size_t)out.n * out.h * out.w * out.c;
    float *copy = malloc(*count * sizeof *copy);
    assert_non_null(copy);
    memcpy(copy, out.data, *count * sizeof *copy);
    return copy;
}

static void expect_same_output(fusenet_net *a, fusenet_net *b, int which) {
    size_t na, nb;
    float *x = run_copy(a, which, &na), *y = run_copy(b, which, &nb);
    assert_int_equal(na, nb);
    assert_memory_equal(x, y, na * sizeof *x);
    free(x);
    free(y);
}

/* Three taps, two of one file (one model shared), against fusenet_net_build of
 * fully loaded models: the fused map and every tap. */
static void test_same_as_loaded_models(void **state) {
    (void)state;
    const char *layers[3] = {"conv4_block6_out", "block5_conv3", "conv3_block4_out"};
    fusenet_file_tap ft[3] = {file_tap(RESNET, FUSENET_ARCH_RESNET50, layers[0]),
                              file_tap(VGG, FUSENET_ARCH_VGG16, layers[1]),
                              file_tap(RESNET, FUSENET_ARCH_RESNET50, layers[2])};
    fusenet_model *r = fx_model_load(RESNET, FUSENET_ARCH_RESNET50, NULL, 0);
    fusenet_model *v = fx_model_load(VGG, FUSENET_ARCH_VGG16, NULL, 0);
    assert_non_null(r);
    assert_non_null(v);
    fusenet_tap taps[3] = {{r, layers[0]}, {v, layers[1]}, {r, layers[2]}};
    fusenet_net_params p = fx_net_params(taps, 3, N, H, W, 1);
    p.threads = 2;
    fusenet_net *mine, *ref;
    fusenet_error err;
    expect_ok(fusenet_net_build(&p, &ref, &err), &err);
    p.taps = NULL;
    p.n_taps = 0;
    expect_ok(fusenet_build_files(ft, 3, &p, &mine, &err), &err);
    for (int which = -1; which < 3; which++) expect_same_output(mine, ref, which);
    fusenet_net_free(mine);
    fusenet_net_free(ref);
    fusenet_model_free(r);
    fusenet_model_free(v);
}

/* The two default taps give fusenet_build_dual's net. */
static void test_same_as_dual(void **state) {
    (void)state;
    fusenet_dual_params d = fx_dual_params(RESNET, VGG, H, W);
    d.net.batch = N;
    d.net.resize = FUSENET_INTERP_NEAREST;
    d.net.size = FUSENET_SIZE_MAX;
    fusenet_file_tap ft[2] = {file_tap(RESNET, FUSENET_ARCH_RESNET50, "conv4_block6_out"),
                              file_tap(VGG, FUSENET_ARCH_VGG16, "block5_conv3")};
    fusenet_net *dual, *mine;
    fusenet_error err;
    expect_ok(fusenet_build_dual(&d, &dual, &err), &err);
    expect_ok(fusenet_build_files(ft, 2, &d.net, &mine, &err), &err);
    expect_same_output(mine, dual, -1);
    fusenet_net_free(mine);
    fusenet_net_free(dual);
}

/* fusenet_calibration_create_files with the two default taps writes what
 * fusenet_calibration_create_dual writes (same models, taps, weights hash,
 * statistics), after the same batch. */
static void test_calibration_same_as_dual(void **state) {
    (void)state;
    fusenet_dual_params d = fx_dual_params(RESNET, VGG, H, W);
    fusenet_file_tap ft[2] = {file_tap(RESNET, FUSENET_ARCH_RESNET50, "conv4_block6_out"),
                              file_tap(VGG, FUSENET_ARCH_VGG16, "block5_conv3")};
    size_t n = (size_t)H * W * 3;
    float *x = test_malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = (float)((int)(i * 2654435761u % 251u) - 120);
    fusenet_tensor in = {x, 1, H, W, 3};
    fusenet_calibration *cal[2];
    fusenet_error err;
    expect_ok(fusenet_calibration_create_dual(&d, &cal[0], &err), &err);
    expect_ok(fusenet_calibration_create_files(ft, 2, &d.net, &cal[1], &err), &err);
    char *text[2];
    size_t len[2];
    for (int k = 0; k < 2; k++) {
        expect_ok(fusenet_calibration_add(cal[k], &in, &err), &err);
        expect_ok(fusenet_calibration_write(cal[k], NULL, 0, &len[k], &err), &err);
        text[k] = test_malloc(len[k] + 1);
        expect_ok(fusenet_calibration_write(cal[k], text[k], len[k] + 1, &len[k], &err), &err);
    }
    assert_true(len[0] > 0 && len[0] == len[1]);
    assert_memory_equal(text[0], text[1], len[0]);
    assert_int_equal(fusenet_calibration_create_files(ft, 2, NULL, NULL, &err), FUSENET_ERR_INVALID_ARG);
    for (int k = 0; k < 2; k++) {
        test_free(text[k]);
        fusenet_calibration_free(cal[k]);
    }
    test_free(x);
}

static void test_arguments(void **state) {
    (void)state;
    fusenet_file_tap ft[17];
    for (int i = 0; i < 17; i++) ft[i] = file_tap(VGG, FUSENET_ARCH_VGG16, "block1_conv1");
    fusenet_net *net = (fusenet_net *)&net;
    fusenet_error err;
    expect_error(fusenet_build_files(ft, 1, NULL, NULL, &err), FUSENET_ERR_INVALID_ARG, &err, "out is NULL");
    expect_error(fusenet_build_files(NULL, 1, NULL, &net, &err), FUSENET_ERR_INVALID_ARG, &err, "taps is NULL");
    assert_null(net);
    expect_error(fusenet_build_files(ft, 0, NULL, &net, &err), FUSENET_ERR_INVALID_ARG, &err, "0 taps (1..16)");
    expect_error(fusenet_build_files(ft, 17, NULL, &net, &err), FUSENET_ERR_INVALID_ARG, &err, "17 taps");
    fusenet_net_params p = fusenet_net_default_params();
    fusenet_tap t = {NULL, "x"};
    p.taps = &t;
    expect_error(fusenet_build_files(ft, 1, &p, &net, &err), FUSENET_ERR_INVALID_ARG, &err, "net.taps");
    p.taps = NULL;
    p.n_taps = 1;
    expect_error(fusenet_build_files(ft, 1, &p, &net, &err), FUSENET_ERR_INVALID_ARG, &err, "net.n_taps");
    ft[1].layer = NULL;
    expect_error(fusenet_build_files(ft, 2, NULL, &net, &err), FUSENET_ERR_INVALID_ARG, &err, "taps[1].layer");
    ft[1].layer = "block1_conv1";
    ft[2].weights = NULL;
    expect_error(fusenet_build_files(ft, 3, NULL, &net, &err), FUSENET_ERR_INVALID_ARG, &err, "taps[2].weights");
    ft[2].weights = VGG;
    const char *needed = "block1_conv1";
    ft[0].model.needed_layers = &needed;
    ft[0].model.n_needed = 1;
    expect_error(fusenet_build_files(ft, 1, NULL, &net, &err), FUSENET_ERR_INVALID_ARG, &err, "needed_layers");
    ft[0].model = fusenet_model_default_params();
    ft[0].model.arch = FUSENET_ARCH_VGG16;
    /* what the loader says, of the tap that has it */
    ft[1].layer = "block1_conv9";
    expect_error(fusenet_build_files(ft, 2, NULL, &net, &err), FUSENET_ERR_UNKNOWN_LAYER, &err, "block1_conv9");
    ft[1] = file_tap(DIR "bf_no_such.h5", FUSENET_ARCH_RESNET50, "conv1_conv");
    expect_error(fusenet_build_files(ft, 2, NULL, &net, &err), FUSENET_ERR_IO, &err, "bf_no_such.h5");
    ft[1] = file_tap(VGG, FUSENET_ARCH_RESNET50, "conv1_conv");
    expect_error(fusenet_build_files(ft, 2, NULL, &net, &err), FUSENET_ERR_ARCH, &err, "not ResNet50");
    assert_null(net);
    /* sixteen taps of one file: one model, 16 outputs */
    for (int i = 0; i < 16; i++) ft[i] = file_tap(VGG, FUSENET_ARCH_VGG16, i % 2 ? "block1_conv1" : "block2_pool");
    p = fusenet_net_default_params();
    p.in_h = p.in_w = 32;
    p.fuse = 0;
    expect_ok(fusenet_build_files(ft, 16, &p, &net, &err), &err);
    fusenet_tensor in = {g_input, 1, 32, 32, 3}, out;
    expect_ok(fusenet_net_run(net, &in, &err), &err);
    expect_ok(fusenet_net_tap_output(net, 15, &out, &err), &err);
    assert_int_equal(out.c, 64); /* block1_conv1 */
    expect_ok(fusenet_net_tap_output(net, 14, &out, &err), &err);
    assert_int_equal(out.c, 128); /* block2_pool */
    expect_error(fusenet_net_tap_output(net, 16, &out, &err), FUSENET_ERR_INVALID_ARG, &err, NULL);
    fusenet_net_free(net);
}

/* The mode is refused before any file is read, as by fusenet_build_dual. */
static void test_mode_before_files(void **state) {
    (void)state;
    fusenet_system_info info;
    fusenet_error err;
    expect_ok(fusenet_get_system_info(&info, &err), &err);
    fusenet_file_tap ft[1] = {file_tap(DIR "bf_no_such.h5", FUSENET_ARCH_VGG16, "block1_conv1")};
    fusenet_net_params p = fusenet_net_default_params();
    p.mode = FUSENET_MODE_FAST;
    fusenet_net *net;
    if (info.fast_mode) expect_error(fusenet_build_files(ft, 1, &p, &net, &err), FUSENET_ERR_IO, &err, "bf_no_such");
    else expect_error(fusenet_build_files(ft, 1, &p, &net, &err), FUSENET_ERR_UNSUPPORTED, &err, info.isa);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_as_loaded_models),
        cmocka_unit_test(test_same_as_dual),
        cmocka_unit_test(test_calibration_same_as_dual),
        cmocka_unit_test(test_arguments),
        cmocka_unit_test(test_mode_before_files),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
