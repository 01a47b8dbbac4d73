/* test_embed.c - fusenet_embed / fusenet_embed_image against a naive pooling
 * and L2 normalisation of fusenet_net_output, computed here in double. Nets
 * are small (early taps, 64x64 inputs) on seeded random weights. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "alloc.h"
#include "fusenet.h"
#include "model.h"
#include "test_util.h"

#ifndef FN_TEST_DIR
#define FN_TEST_DIR "tests"
#endif
#ifndef FN_BUILD_DIR
#define FN_BUILD_DIR "."
#endif

#define RESNET_PATH FN_BUILD_DIR "/embed_random_resnet50.h5"
#define VGG_PATH FN_BUILD_DIR "/embed_random_vgg16.h5"
#define IMAGE_PATH FN_TEST_DIR "/data/rgb_211x157.png"
#define IMAGE2_PATH FN_TEST_DIR "/data/photo_61x47.jpg"

static fusenet_model *resnet, *vgg;

static int setup(void **state) {
    (void)state;
    if (fx_write_weights(FUSENET_ARCH_RESNET50, 11, RESNET_PATH) || fx_write_weights(FUSENET_ARCH_VGG16, 12, VGG_PATH))
        return -1;
    const char *rl[1] = {"conv2_block1_out"}, *vl[1] = {"block2_conv2"};
    resnet = fx_model_load(RESNET_PATH, FUSENET_ARCH_RESNET50, rl, 1);
    vgg = fx_model_load(VGG_PATH, FUSENET_ARCH_VGG16, vl, 1);
    return resnet && vgg ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    fusenet_model_free(resnet);
    fusenet_model_free(vgg);
    remove(RESNET_PATH);
    remove(VGG_PATH);
    return 0;
}

/* conv2_block1_out (16x16x256 at 64x64) + block2_conv2 (32x32x128) -> 16x16x384. */
static fusenet_net *tiny_net(int batch, int fuse) {
    fusenet_tap taps[2] = {{resnet, "conv2_block1_out"}, {vgg, "block2_conv2"}};
    fusenet_net_params p = fusenet_net_default_params();
    p.taps = taps;
    p.n_taps = 2;
    p.batch = batch;
    p.in_h = p.in_w = 64;
    p.fuse = fuse;
    fusenet_net *net;
    fusenet_error err;
    assert_int_equal(fusenet_net_build(&p, &net, &err), FUSENET_OK);
    return net;
}

static void random_input(float *x, size_t n, uint64_t seed) {
    for (size_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((seed >> 40) % 25600) / 100.0f - 120.0f;
    }
}

/* The reference: pool image i of the fused map over H, W in double, divide by the norm. */
static void naive(const fusenet_tensor *f, int i, fusenet_pooling pool, double *out) {
    size_t pixels = (size_t)f->h * f->w, c = (size_t)f->c;
    const float *m = f->data + (size_t)i * pixels * c;
    double sq = 0;
    for (size_t k = 0; k < c; k++) {
        double v = pool == FUSENET_POOLING_MAX ? -INFINITY : 0.0;
        for (size_t p = 0; p < pixels; p++) {
            double x = m[p * c + k];
            if (pool == FUSENET_POOLING_MAX) v = x > v ? x : v;
            else v += x;
        }
        if (pool == FUSENET_POOLING_AVG) v /= (double)pixels;
        out[k] = v;
        sq += v * v;
    }
    for (size_t k = 0; k < c; k++) out[k] = sq > 0 ? out[k] / sqrt(sq) : 0.0;
}

static void check_against_naive(fusenet_pooling pool) {
    const int batch = 3;
    fusenet_net *net = tiny_net(batch, 1);
    size_t dim = fusenet_embed_dim(net);
    assert_int_equal(dim, 384);
    size_t n_in = (size_t)batch * 64 * 64 * 3;
    float *x = malloc(n_in * sizeof *x), *emb = malloc(batch * dim * sizeof *emb);
    double *ref = malloc(dim * sizeof *ref);
    assert_true(x && emb && ref);
    random_input(x, n_in, 99 + (uint64_t)pool);
    fusenet_tensor in = {x, batch, 64, 64, 3}, f;
    fusenet_error err;
    assert_int_equal(fusenet_embed(net, &in, pool, emb, &err), FUSENET_OK);
    assert_int_equal(err.status, FUSENET_OK);
    /* the net's outputs now hold this batch's maps: the reference reads them */
    assert_int_equal(fusenet_net_output(net, &f, &err), FUSENET_OK);
    assert_int_equal(f.n, batch);
    assert_int_equal(f.c, (int)dim);
    for (int i = 0; i < batch; i++) {
        naive(&f, i, pool, ref);
        double norm = 0, maxdiff = 0;
        for (size_t k = 0; k < dim; k++) {
            double e = emb[(size_t)i * dim + k];
            norm += e * e;
            if (fabs(e - ref[k]) > maxdiff) maxdiff = fabs(e - ref[k]);
        }
        assert_true(maxdiff < 1e-6);
        assert_true(fabs(sqrt(norm) - 1.0) < 1e-5);
    }
    /* images do not influence each other: image 1 alone (zeros around it) embeds the same */
    float *x1 = calloc(n_in, sizeof *x1), *emb1 = malloc(batch * dim * sizeof *emb1);
    assert_true(x1 && emb1);
    memcpy(x1 + 64 * 64 * 3, x + 64 * 64 * 3, 64 * 64 * 3 * sizeof *x);
    assert_int_equal(fusenet_embed(net, &(fusenet_tensor){x1, batch, 64, 64, 3}, pool, emb1, &err), FUSENET_OK);
    for (size_t k = 0; k < dim; k++) assert_true(fabsf(emb1[dim + k] - emb[dim + k]) < 1e-6f);
    free(x1);
    free(emb1);
    free(x);
    free(emb);
    free(ref);
    fusenet_net_free(net);
}

static void test_embed_avg(void **state) {
    (void)state;
    check_against_naive(FUSENET_POOLING_AVG);
}

static void test_embed_max(void **state) {
    (void)state;
    check_against_naive(FUSENET_POOLING_MAX);
}

/* fusenet_embed_image == fusenet_image_load + fusenet_embed; similar images score below 1. */
static void test_embed_image(void **state) {
    (void)state;
    fusenet_net *net = tiny_net(1, 1);
    size_t dim = fusenet_embed_dim(net);
    float *a = malloc(dim * sizeof *a), *b = malloc(dim * sizeof *b), *c = malloc(dim * sizeof *c);
    float *x = malloc(64 * 64 * 3 * sizeof *x);
    assert_true(a && b && c && x);
    fusenet_error err;
    assert_int_equal(fusenet_embed_image(net, IMAGE_PATH, NULL, FUSENET_POOLING_AVG, a, &err), FUSENET_OK);
    fusenet_image_params ip = fusenet_image_default_params();
    ip.height = ip.width = 64;
    assert_int_equal(fusenet_image_load(IMAGE_PATH, &ip, x, &err), FUSENET_OK);
    assert_int_equal(fusenet_embed(net, &(fusenet_tensor){x, 1, 64, 64, 3}, FUSENET_POOLING_AVG, b, &err), FUSENET_OK);
    assert_memory_equal(a, b, dim * sizeof *a);
    /* explicit params of the right size, bilinear loading: a valid, different embedding */
    ip.interp = FUSENET_INTERP_BILINEAR;
    assert_int_equal(fusenet_embed_image(net, IMAGE_PATH, &ip, FUSENET_POOLING_AVG, c, &err), FUSENET_OK);
    double dot = 0;
    for (size_t k = 0; k < dim; k++) dot += (double)a[k] * c[k];
    assert_true(dot > 0.5 && dot < 1.0 + 1e-5);
    assert_int_equal(fusenet_embed_image(net, IMAGE2_PATH, NULL, FUSENET_POOLING_MAX, c, &err), FUSENET_OK);
    free(a);
    free(b);
    free(c);
    free(x);
    fusenet_net_free(net);
}

static void test_embed_errors(void **state) {
    (void)state;
    fusenet_net *net = tiny_net(1, 1), *unfused = tiny_net(1, 0), *batch2 = tiny_net(2, 1);
    size_t dim = fusenet_embed_dim(net);
    float *x = calloc(64 * 64 * 3 * 2, sizeof *x), *dst = malloc(2 * dim * sizeof *dst);
    assert_true(x && dst);
    fusenet_tensor in = {x, 1, 64, 64, 3};
    fusenet_error err;
    assert_int_equal(fusenet_embed_dim(NULL), 0);
    assert_int_equal(fusenet_embed_dim(unfused), 0);
    assert_int_equal(fusenet_embed(NULL, &in, FUSENET_POOLING_AVG, dst, &err), FUSENET_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "net is NULL"));
    assert_int_equal(fusenet_embed(net, NULL, FUSENET_POOLING_AVG, dst, &err), FUSENET_ERR_INVALID_ARG);
    assert_int_equal(fusenet_embed(net, &in, FUSENET_POOLING_AVG, NULL, &err), FUSENET_ERR_INVALID_ARG);
    assert_int_equal(fusenet_embed(net, &in, FUSENET_POOLING_NONE, dst, &err), FUSENET_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "pool"));
    assert_int_equal(fusenet_embed(net, &in, (fusenet_pooling)7, dst, NULL), FUSENET_ERR_INVALID_ARG);
    assert_int_equal(fusenet_embed(unfused, &in, FUSENET_POOLING_AVG, dst, &err), FUSENET_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "fuse"));
    fusenet_tensor wrong = {x, 2, 64, 64, 3};
    assert_int_equal(fusenet_embed(net, &wrong, FUSENET_POOLING_AVG, dst, &err), FUSENET_ERR_SHAPE);
    /* zero input gives a finite (possibly zero) vector */
    assert_int_equal(fusenet_embed(net, &in, FUSENET_POOLING_AVG, dst, &err), FUSENET_OK);
    for (size_t k = 0; k < dim; k++) assert_true(isfinite(dst[k]));

    assert_int_equal(fusenet_embed_image(NULL, IMAGE_PATH, NULL, FUSENET_POOLING_AVG, dst, &err),
                     FUSENET_ERR_INVALID_ARG);
    assert_int_equal(fusenet_embed_image(net, NULL, NULL, FUSENET_POOLING_AVG, dst, &err), FUSENET_ERR_INVALID_ARG);
    assert_int_equal(fusenet_embed_image(net, IMAGE_PATH, NULL, FUSENET_POOLING_AVG, NULL, &err),
                     FUSENET_ERR_INVALID_ARG);
    assert_int_equal(fusenet_embed_image(net, IMAGE_PATH, NULL, FUSENET_POOLING_NONE, dst, &err),
                     FUSENET_ERR_INVALID_ARG);
    assert_int_equal(fusenet_embed_image(unfused, IMAGE_PATH, NULL, FUSENET_POOLING_AVG, dst, &err),
                     FUSENET_ERR_INVALID_ARG);
    assert_int_equal(fusenet_embed_image(batch2, IMAGE_PATH, NULL, FUSENET_POOLING_AVG, dst, &err),
                     FUSENET_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "batch 1"));
    fusenet_image_params ip = fusenet_image_default_params(); /* 224x224: not the net's 64x64 */
    assert_int_equal(fusenet_embed_image(net, IMAGE_PATH, &ip, FUSENET_POOLING_AVG, dst, &err), FUSENET_ERR_SHAPE);
    assert_non_null(strstr(err.message, "64x64"));
    assert_int_equal(fusenet_embed_image(net, FN_TEST_DIR "/data/no_such.png", NULL, FUSENET_POOLING_AVG, dst, &err),
                     FUSENET_ERR_IO);
    assert_non_null(strstr(err.message, "no_such.png"));
    assert_int_equal(fusenet_embed_image(net, FN_TEST_DIR "/test_embed.c", NULL, FUSENET_POOLING_AVG, dst, &err),
                     FUSENET_ERR_FORMAT);
    /* out of memory at every allocation point: a status, never a crash */
    fusenet__alloc_fail_after(0);
    assert_int_equal(fusenet_embed_image(net, IMAGE_PATH, NULL, FUSENET_POOLING_AVG, dst, &err), FUSENET_ERR_NOMEM);
    fusenet__alloc_fail_after(1);
    assert_int_equal(fusenet_embed_image(net, IMAGE_PATH, NULL, FUSENET_POOLING_AVG, dst, &err), FUSENET_ERR_NOMEM);
    fusenet__alloc_fail_after(-1);
    assert_int_equal(fusenet_embed_image(net, IMAGE_PATH, NULL, FUSENET_POOLING_AVG, dst, &err), FUSENET_OK);
    free(x);
    free(dst);
    fusenet_net_free(net);
    fusenet_net_free(unfused);
    fusenet_net_free(batch2);
}

/* A fused map with an Inf is refused; dst is untouched. The weights are
 * finite (a net is never built from NaN/Inf weights) but overflow float in
 * the conv: every kernel value of block2_conv2's filter 5 is 1e38. */
static void test_embed_nonfinite(void **state) {
    (void)state;
    fusenet_model_params p = fusenet_model_default_params();
    const char *vl[1] = {"block2_conv2"};
    p.arch = FUSENET_ARCH_VGG16;
    p.needed_layers = vl;
    p.n_needed = 1;
    fusenet_model *bad;
    fusenet_error err;
    assert_int_equal(fusenet_model_load(VGG_PATH, &p, &bad, &err), FUSENET_OK);
    int node = fusenet__graph_find(&bad->g, "block2_conv2");
    assert_true(node >= 0);
    const fn_node *conv = &bad->g.nodes[node];
    size_t kelems = (size_t)conv->kh * (size_t)conv->kw * 128 * (size_t)conv->filters; /* HWIO, 128 inputs */
    for (size_t k = 5; k < kelems; k += (size_t)conv->filters) conv->w[0][k] = 1e38f;
    fusenet_tap taps[2] = {{resnet, "conv2_block1_out"}, {bad, "block2_conv2"}};
    fusenet_net_params np = fusenet_net_default_params();
    np.taps = taps;
    np.n_taps = 2;
    np.in_h = np.in_w = 64;
    fusenet_net *net;
    assert_int_equal(fusenet_net_build(&np, &net, &err), FUSENET_OK);
    fusenet_model_free(bad);
    size_t dim = fusenet_embed_dim(net);
    float *x = calloc(64 * 64 * 3, sizeof *x), *dst = malloc(dim * sizeof *dst);
    assert_true(x && dst);
    random_input(x, 64 * 64 * 3, 7);
    for (size_t k = 0; k < dim; k++) dst[k] = 42.0f;
    fusenet_tensor in = {x, 1, 64, 64, 3};
    assert_int_equal(fusenet_embed(net, &in, FUSENET_POOLING_AVG, dst, &err), FUSENET_ERR_VALUE);
    assert_int_equal(err.status, FUSENET_ERR_VALUE);
    assert_non_null(strstr(err.message, "image 0"));
    for (size_t k = 0; k < dim; k++) assert_true(dst[k] == 42.0f);
    free(x);
    free(dst);
    fusenet_net_free(net);
}

/* The product path: the default dual taps (1536 values) at a small input. */
static void test_embed_dual(void **state) {
    (void)state;
    fusenet_dual_params p = fx_dual_params(RESNET_PATH, VGG_PATH, 64, 64);
    fusenet_net *net;
    fusenet_error err;
    assert_int_equal(fusenet_build_dual(&p, &net, &err), FUSENET_OK);
    size_t dim = fusenet_embed_dim(net);
    assert_int_equal(dim, 1536);
    float *e = malloc(dim * sizeof *e);
    double *ref = malloc(dim * sizeof *ref);
    assert_true(e && ref);
    assert_int_equal(fusenet_embed_image(net, IMAGE2_PATH, NULL, FUSENET_POOLING_AVG, e, &err), FUSENET_OK);
    fusenet_tensor f;
    assert_int_equal(fusenet_net_output(net, &f, &err), FUSENET_OK);
    naive(&f, 0, FUSENET_POOLING_AVG, ref);
    for (size_t k = 0; k < dim; k++) assert_true(fabs(e[k] - ref[k]) < 1e-6);
    free(e);
    free(ref);
    fusenet_net_free(net);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_embed_avg),   cmocka_unit_test(test_embed_max),  cmocka_unit_test(test_embed_image),
        cmocka_unit_test(test_embed_errors), cmocka_unit_test(test_embed_nonfinite), cmocka_unit_test(test_embed_dual),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
