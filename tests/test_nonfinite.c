/* test_nonfinite.c - NaN and Inf are never laundered into plausible answers.
 *
 * The rule (include/fusenet.h): fusenet_net_run refuses NaN/Inf input values
 * (VALUE, naming the image); fusenet_net_build refuses NaN/Inf weights (which
 * only a model loaded with allow_nonfinite holds) and BatchNorm parameters
 * whose scale gamma / sqrt(moving_variance + epsilon), or whose folding into
 * the conv, is not finite; fusenet_embed refuses a fused map holding NaN/Inf
 * (test_embed.c). Without these checks every case below returned OK with
 * finite maps: the fused ReLU post-op maps NaN to 0.
 *
 * Nets are small (early taps, 64x64 inputs) on seeded random weights; the
 * positions named in the messages are the ones set here. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <hdf5.h>

#include "fusenet.h"
#include "model.h"
#include "random_weights.h"

#ifndef FN_BUILD_DIR
#define FN_BUILD_DIR "."
#endif

#define RESNET_PATH FN_BUILD_DIR "/nonfinite_resnet50.h5"
#define VGG_PATH FN_BUILD_DIR "/nonfinite_vgg16.h5"
#define VGG_NAN_PATH FN_BUILD_DIR "/nonfinite_vgg16_nan.h5"

static int setup(void **state) {
    (void)state;
    fusenet_error err;
    if (fusenet__write_random_weights(FUSENET_ARCH_RESNET50, 0, 21, RESNET_PATH, &err) != FUSENET_OK ||
        fusenet__write_random_weights(FUSENET_ARCH_VGG16, 0, 22, VGG_PATH, &err) != FUSENET_OK ||
        fusenet__write_random_weights(FUSENET_ARCH_VGG16, 0, 22, VGG_NAN_PATH, &err) != FUSENET_OK) {
        fprintf(stderr, "setup: %s\n", err.message);
        return -1;
    }
    /* one NaN in block2_conv2's kernel, written into the file */
    hid_t f = H5Fopen(VGG_NAN_PATH, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t ds = f < 0 ? -1 : H5Dopen2(f, "/block2_conv2/block2_conv2_W_1:0", H5P_DEFAULT);
    hid_t space = ds < 0 ? -1 : H5Dget_space(ds);
    hsize_t at[4] = {1, 2, 3, 4}, one[4] = {1, 1, 1, 1};
    float nan = NAN;
    hid_t mem = H5Screate_simple(4, one, NULL);
    int ok = space >= 0 && H5Sselect_hyperslab(space, H5S_SELECT_SET, at, NULL, one, NULL) >= 0 &&
             H5Dwrite(ds, H5T_NATIVE_FLOAT, mem, space, H5P_DEFAULT, &nan) >= 0;
    H5Sclose(mem);
    if (space >= 0) H5Sclose(space);
    if (ds >= 0) H5Dclose(ds);
    if (f >= 0) H5Fclose(f);
    return ok ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    remove(RESNET_PATH);
    remove(VGG_PATH);
    remove(VGG_NAN_PATH);
    return 0;
}

static fusenet_model *load(const char *path, fusenet_arch arch, const char *layer, int allow_nonfinite) {
    fusenet_model_params p = fusenet_model_default_params();
    p.arch = arch;
    p.needed_layers = &layer;
    p.n_needed = 1;
    p.allow_nonfinite = allow_nonfinite;
    fusenet_model *m;
    fusenet_error err;
    assert_int_equal(fusenet_model_load(path, &p, &m, &err), FUSENET_OK);
    return m;
}

static fusenet_status build(fusenet_tap *taps, int n_taps, int batch, int fuse, fusenet_net **net,
                            fusenet_error *err) {
    fusenet_net_params p = fusenet_net_default_params();
    p.taps = taps;
    p.n_taps = n_taps;
    p.batch = batch;
    p.in_h = p.in_w = 64;
    p.fuse = fuse;
    *net = NULL;
    return fusenet_net_build(&p, net, err);
}

static void expect_has(const fusenet_error *err, const char *part) {
    if (!strstr(err->message, part)) fail_msg("message lacks \"%s\": %s", part, err->message);
}

static void fill(float *x, size_t n) {
    uint64_t seed = 5;
    for (size_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((seed >> 40) % 25600) / 100.0f - 120.0f;
    }
}

/* A NaN or Inf input value is refused by fusenet_net_run and fusenet_embed,
 * naming the image and the position; a finite input still runs. */
static void test_input(void **state) {
    (void)state;
    fusenet_model *resnet = load(RESNET_PATH, FUSENET_ARCH_RESNET50, "conv2_block1_out", 0);
    fusenet_model *vgg = load(VGG_PATH, FUSENET_ARCH_VGG16, "block2_conv2", 0);
    fusenet_tap taps[2] = {{resnet, "conv2_block1_out"}, {vgg, "block2_conv2"}};
    fusenet_net *fused, *plain;
    fusenet_error err;
    assert_int_equal(build(taps, 2, 2, 1, &fused, &err), FUSENET_OK);
    assert_int_equal(build(taps, 1, 2, 0, &plain, &err), FUSENET_OK);
    size_t per = 64 * 64 * 3, dim = fusenet_embed_dim(fused);
    float *x = malloc(2 * per * sizeof *x), *dst = malloc(2 * dim * sizeof *dst);
    assert_true(x && dst);
    fill(x, 2 * per);
    fusenet_tensor in = {x, 2, 64, 64, 3}, out;
    assert_int_equal(fusenet_net_run(fused, &in, &err), FUSENET_OK);

    x[per + (5 * 64 + 7) * 3 + 2] = NAN; /* image 1, row 5, column 7, channel 2 */
    assert_int_equal(fusenet_net_run(fused, &in, &err), FUSENET_ERR_VALUE);
    assert_int_equal(err.status, FUSENET_ERR_VALUE);
    expect_has(&err, "image 1 of the batch has a non-finite input value (NaN at row 5, column 7, channel 2)");
    assert_int_equal(fusenet_net_output(fused, &out, &err), FUSENET_ERR_INVALID_ARG); /* no stale map */
    assert_int_equal(fusenet_net_run(plain, &in, &err), FUSENET_ERR_VALUE);
    expect_has(&err, "image 1");
    for (size_t k = 0; k < 2 * dim; k++) dst[k] = 42.0f;
    assert_int_equal(fusenet_embed(fused, &in, FUSENET_POOLING_AVG, dst, &err), FUSENET_ERR_VALUE);
    expect_has(&err, "image 1");
    for (size_t k = 0; k < 2 * dim; k++) assert_true(dst[k] == 42.0f);

    x[per + (5 * 64 + 7) * 3 + 2] = 0.0f;
    x[63 * 64 * 3 + 63 * 3] = -INFINITY; /* image 0, the last pixel, channel 0 */
    assert_int_equal(fusenet_net_run(fused, &in, &err), FUSENET_ERR_VALUE);
    expect_has(&err, "image 0 of the batch has a non-finite input value (-Inf at row 63, column 63, channel 0)");
    x[63 * 64 * 3 + 63 * 3] = INFINITY;
    assert_int_equal(fusenet_net_run(plain, &in, &err), FUSENET_ERR_VALUE);
    expect_has(&err, "+Inf at row 63, column 63, channel 0");

    x[63 * 64 * 3 + 63 * 3] = 1.0f;
    assert_int_equal(fusenet_net_run(fused, &in, &err), FUSENET_OK);
    assert_int_equal(fusenet_net_output(fused, &out, &err), FUSENET_OK);
    free(x);
    free(dst);
    fusenet_net_free(fused);
    fusenet_net_free(plain);
    fusenet_model_free(resnet);
    fusenet_model_free(vgg);
}

/* allow_nonfinite lets a model with a NaN weight load (by default the load
 * refuses it); a net is not built from it. */
static void test_nan_weight(void **state) {
    (void)state;
    fusenet_model_params p = fusenet_model_default_params();
    p.arch = FUSENET_ARCH_VGG16;
    fusenet_model *m;
    fusenet_error err;
    assert_int_equal(fusenet_model_load(VGG_NAN_PATH, &p, &m, &err), FUSENET_ERR_VALUE);
    m = load(VGG_NAN_PATH, FUSENET_ARCH_VGG16, "block2_conv2", 1);
    fusenet_tap tap = {m, "block2_conv2"};
    fusenet_net *net;
    assert_int_equal(build(&tap, 1, 1, 0, &net, &err), FUSENET_ERR_VALUE);
    assert_null(net);
    assert_int_equal(err.status, FUSENET_ERR_VALUE);
    expect_has(&err, "layer block2_conv2: a weight is NaN");
    fusenet_model_free(m);
}

static float *weight(fusenet_model *m, const char *layer, int k) {
    int node = fusenet__graph_find(&m->g, layer);
    assert_true(node >= 0);
    assert_non_null(m->g.nodes[node].w[k]);
    return m->g.nodes[node].w[k];
}

/* moving_variance = -epsilon: gamma / sqrt(0) is Inf, whether the BatchNorm
 * folds into its conv (conv2_block1_1_bn) or runs on its own (conv1_bn, whose
 * conv is tapped). */
static void test_bn_variance(void **state) {
    (void)state;
    fusenet_error err;
    fusenet_net *net;
    fusenet_model *m = load(RESNET_PATH, FUSENET_ARCH_RESNET50, "conv2_block1_out", 0);
    int bn = fusenet__graph_find(&m->g, "conv2_block1_1_bn");
    assert_true(bn >= 0);
    weight(m, "conv2_block1_1_bn", 3)[3] = -m->g.nodes[bn].epsilon;
    fusenet_tap tap = {m, "conv2_block1_out"};
    assert_int_equal(build(&tap, 1, 1, 0, &net, &err), FUSENET_ERR_VALUE);
    assert_null(net);
    expect_has(&err, "layer conv2_block1_1_bn: gamma / sqrt(moving_variance + epsilon) is not finite at channel 3");
    fusenet_model_free(m);

    m = load(RESNET_PATH, FUSENET_ARCH_RESNET50, "conv2_block1_out", 0);
    bn = fusenet__graph_find(&m->g, "conv1_bn");
    assert_true(bn >= 0);
    weight(m, "conv1_bn", 3)[2] = -m->g.nodes[bn].epsilon;
    fusenet_tap taps[2] = {{m, "conv1_conv"}, {m, "conv2_block1_out"}};
    assert_int_equal(build(taps, 2, 1, 0, &net, &err), FUSENET_ERR_VALUE);
    expect_has(&err, "layer conv1_bn: gamma / sqrt(moving_variance + epsilon) is not finite at channel 2");
    assert_int_equal(build(taps, 1, 1, 0, &net, &err), FUSENET_OK); /* conv1_conv alone does not need it */
    fusenet_net_free(net);
    fusenet_model_free(m);
}

/* A finite BatchNorm scale (gamma 1e30) times finite kernel values (1e10)
 * overflows float when folded: the folded conv is refused. */
static void test_bn_fold_overflow(void **state) {
    (void)state;
    fusenet_error err;
    fusenet_net *net;
    fusenet_model *m = load(RESNET_PATH, FUSENET_ARCH_RESNET50, "conv2_block1_out", 0);
    int conv = fusenet__graph_find(&m->g, "conv2_block1_1_conv");
    assert_true(conv >= 0);
    int filters = m->g.nodes[conv].filters;
    weight(m, "conv2_block1_1_bn", 0)[4] = 1e30f;
    float *k = weight(m, "conv2_block1_1_conv", 0);
    k[4] = 1e10f; /* HWIO: element 4 belongs to filter 4 */
    fusenet_tap tap = {m, "conv2_block1_out"};
    assert_int_equal(build(&tap, 1, 1, 0, &net, &err), FUSENET_ERR_VALUE);
    assert_null(net);
    expect_has(&err, "layer conv2_block1_1_conv: a weight is +Inf");
    k[4] = 1e-3f; /* folded: 1e27, finite */
    assert_true(filters > 4);
    assert_int_equal(build(&tap, 1, 1, 0, &net, &err), FUSENET_OK);
    fusenet_net_free(net);
    fusenet_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_input),
        cmocka_unit_test(test_nan_weight),
        cmocka_unit_test(test_bn_variance),
        cmocka_unit_test(test_bn_fold_overflow),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
