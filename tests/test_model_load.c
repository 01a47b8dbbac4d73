/* test_model_load.c - binding weight files to the Keras graphs: which files are
 * accepted, which are refused, and what the message names. Fixture files are
 * small legacy-Keras-layout files holding only the first layers; models are
 * loaded with needed_layers so only those are read. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include <cmocka.h>

#include "fusenet.h"
#include "h5.h"
#include "keras_zip.h"
#include "model.h"
#include "test_util.h"

#define DIR FN_BUILD_DIR "/"

static float kernel1[3 * 3 * 3 * 64], bias1[64], kernel2[3 * 3 * 64 * 64], bias2[64], small[3 * 3 * 3 * 32];

static void fill(void) {
    uint32_t s = 1;
    float *arrays[] = {kernel1, bias1, kernel2, bias2, small};
    size_t sizes[] = {sizeof kernel1, sizeof bias1, sizeof kernel2, sizeof bias2, sizeof small};
    for (int a = 0; a < 5; a++)
        for (size_t i = 0; i < sizes[a] / sizeof(float); i++) {
            s = s * 1664525u + 1013904223u;
            arrays[a][i] = (float)(s >> 8) / 16777216.0f - 0.5f;
        }
}

/* Writes a VGG16-style file (flat Keras-1 names) with the given layers. */
typedef struct layer_def {
    const char *name;
    int n; /* 0 or 2 weights */
    int64_t kdims[4];
    float *kernel, *bias;
} layer_def;

static void write_file(const char *path, const layer_def *defs, int n) {
    fn_h5_layer_out layers[8];
    fn_wspec specs[8][2];
    char names[8][2][64];
    const char *name_ptrs[8][2];
    for (int i = 0; i < n; i++) {
        snprintf(names[i][0], 64, "%s_W_1:0", defs[i].name);
        snprintf(names[i][1], 64, "%s_b_1:0", defs[i].name);
        name_ptrs[i][0] = names[i][0];
        name_ptrs[i][1] = names[i][1];
        specs[i][0] = (fn_wspec){"kernel", 4, {defs[i].kdims[0], defs[i].kdims[1], defs[i].kdims[2], defs[i].kdims[3]},
                                 defs[i].kernel};
        specs[i][1] = (fn_wspec){"bias", 1, {defs[i].kdims[3]}, defs[i].bias};
        layers[i] = (fn_h5_layer_out){defs[i].name, (size_t)defs[i].n, name_ptrs[i], specs[i]};
    }
    fusenet_error err;
    expect_ok(fusenet__h5_write(path, layers, (size_t)n, &err), &err);
}

static fusenet_status load_vgg(const char *path, const char *needed, int allow_nonfinite, fusenet_model **m,
                               fusenet_error *err) {
    fusenet_model_params p = fusenet_model_default_params();
    p.arch = FUSENET_ARCH_VGG16;
    p.needed_layers = &needed;
    p.n_needed = 1;
    p.allow_nonfinite = allow_nonfinite;
    return fusenet_model_load(path, &p, m, err);
}

#define CONV1 {"block1_conv1", 2, {3, 3, 3, 64}, kernel1, bias1}
#define CONV2 {"block1_conv2", 2, {3, 3, 64, 64}, kernel2, bias2}

static void test_good_file_values(void **state) {
    (void)state;
    layer_def defs[] = {{"input_1", 0, {0, 0, 0, 0}, NULL, NULL}, CONV1, CONV2};
    write_file(DIR "ml_good.h5", defs, 3);
    fusenet_model *m;
    fusenet_error err;
    expect_ok(load_vgg(DIR "ml_good.h5", "block1_conv2", 0, &m, &err), &err);
    int i = fusenet__graph_find(&m->g, "block1_conv2");
    assert_int_equal(m->weights[i], FN_WEIGHTS_LOADED);
    assert_memory_equal(m->g.nodes[i].w[0], kernel2, sizeof kernel2);
    assert_memory_equal(m->g.nodes[i].w[1], bias2, sizeof bias2);
    assert_int_equal(m->weights[fusenet__graph_find(&m->g, "block2_conv1")], FN_WEIGHTS_ABSENT); /* not needed, not read */
    fusenet_model_free(m);
}

static void test_missing_layer(void **state) {
    (void)state;
    layer_def defs[] = {CONV1};
    write_file(DIR "ml_missing.h5", defs, 1);
    fusenet_model *m = (fusenet_model *)1;
    fusenet_error err;
    expect_error(load_vgg(DIR "ml_missing.h5", "block1_conv2", 0, &m, &err), FUSENET_ERR_ARCH, &err, NULL);
    assert_null(m);
    assert_non_null(strstr(err.message, "ml_missing.h5"));
    assert_non_null(strstr(err.message, "block1_conv2"));
    assert_non_null(strstr(err.message, "missing"));
}

static void test_wrong_kernel_shape(void **state) {
    (void)state;
    layer_def defs[] = {{"block1_conv1", 2, {3, 3, 3, 32}, small, bias1}, CONV2};
    write_file(DIR "ml_shape.h5", defs, 2);
    fusenet_model *m;
    fusenet_error err;
    expect_error(load_vgg(DIR "ml_shape.h5", "block1_conv2", 0, &m, &err), FUSENET_ERR_SHAPE, &err, "ml_shape.h5");
    assert_non_null(strstr(err.message, "block1_conv1"));
    assert_non_null(strstr(err.message, "(3,3,3,64)"));
    assert_non_null(strstr(err.message, "(3,3,3,32)"));
}

static void test_extra_layers(void **state) {
    (void)state;
    fusenet_model *m;
    fusenet_error err;
    /* an unknown layer with weights: refused, named */
    layer_def extra[] = {CONV1, CONV2, {"mystery_conv", 2, {3, 3, 3, 64}, kernel1, bias1}};
    write_file(DIR "ml_extra.h5", extra, 3);
    expect_error(load_vgg(DIR "ml_extra.h5", "block1_conv2", 0, &m, &err), FUSENET_ERR_ARCH, &err, "mystery_conv");
    /* an unknown layer without weights: ignored */
    layer_def empty[] = {CONV1, CONV2, {"dropout_3", 0, {0, 0, 0, 0}, NULL, NULL}};
    write_file(DIR "ml_empty_extra.h5", empty, 3);
    expect_ok(load_vgg(DIR "ml_empty_extra.h5", "block1_conv2", 0, &m, &err), &err);
    fusenet_model_free(m);
    /* the top layers of a full file, read into a model without its top: accepted */
    layer_def top[] = {CONV1, CONV2, {"fc2", 2, {3, 3, 3, 64}, kernel1, bias1}};
    write_file(DIR "ml_top.h5", top, 3);
    expect_ok(load_vgg(DIR "ml_top.h5", "block1_conv2", 0, &m, &err), &err);
    fusenet_model_free(m);
    /* ... also under the Keras 1 name of the classifier */
    layer_def probs[] = {CONV1, CONV2, {"probs", 2, {3, 3, 3, 64}, kernel1, bias1}};
    write_file(DIR "ml_probs.h5", probs, 3);
    expect_ok(load_vgg(DIR "ml_probs.h5", "block1_conv2", 0, &m, &err), &err);
    fusenet_model_free(m);
    /* a layer of ResNet50 is no VGG16 layer, top or not */
    layer_def other[] = {CONV1, CONV2, {"conv5_block3_3_conv", 2, {3, 3, 3, 64}, kernel1, bias1}};
    write_file(DIR "ml_resnet_layer.h5", other, 3);
    expect_error(load_vgg(DIR "ml_resnet_layer.h5", "block1_conv2", 0, &m, &err), FUSENET_ERR_ARCH, &err,
                 "conv5_block3_3_conv");
}

static void test_other_network_and_old_naming(void **state) {
    (void)state;
    fusenet_model *m;
    fusenet_error err;
    layer_def resnet[] = {{"conv1_conv", 2, {3, 3, 3, 64}, kernel1, bias1}};
    write_file(DIR "ml_resnet.h5", resnet, 1);
    expect_error(load_vgg(DIR "ml_resnet.h5", "block1_conv2", 0, &m, &err), FUSENET_ERR_ARCH, &err, "ResNet50");
    assert_non_null(strstr(err.message, "not VGG16"));

    layer_def vgg[] = {CONV1, CONV2};
    write_file(DIR "ml_vgg.h5", vgg, 2);
    fusenet_model_params p = fusenet_model_default_params();
    const char *needed = "conv1_conv";
    p.needed_layers = &needed;
    p.n_needed = 1;
    expect_error(fusenet_model_load(DIR "ml_vgg.h5", &p, &m, &err), FUSENET_ERR_ARCH, &err, "VGG16");

    layer_def old[] = {{"conv1", 2, {3, 3, 3, 64}, kernel1, bias1}, {"bn_conv1", 0, {0}, NULL, NULL},
                       {"res2a_branch2a", 2, {3, 3, 3, 64}, kernel1, bias1}};
    write_file(DIR "ml_old.h5", old, 3);
    /* old ResNet50 files load as ResNet50 only (tests/test_resnet_old_names.c) */
    p.arch = FUSENET_ARCH_VGG16;
    needed = "block1_conv1";
    expect_error(fusenet_model_load(DIR "ml_old.h5", &p, &m, &err), FUSENET_ERR_ARCH, &err, "old Keras ResNet50");
    assert_non_null(strstr(err.message, "not VGG16"));
    p.arch = FUSENET_ARCH_RESNET50;
    needed = "conv1_conv";

    /* the deeper variants hold the shallower one's layers too: the deepest signature wins */
    layer_def r101[] = {{"conv1_conv", 2, {3, 3, 3, 64}, kernel1, bias1},
                        {"conv4_block23_1_conv", 2, {3, 3, 3, 64}, kernel1, bias1}};
    write_file(DIR "ml_resnet101.h5", r101, 2);
    p.arch = FUSENET_ARCH_RESNET152;
    expect_error(fusenet_model_load(DIR "ml_resnet101.h5", &p, &m, &err), FUSENET_ERR_ARCH, &err, "ResNet101");
    assert_non_null(strstr(err.message, "not ResNet152"));
    p.arch = FUSENET_ARCH_VGG19;
    needed = "block1_conv1";
    expect_error(fusenet_model_load(DIR "ml_vgg.h5", &p, &m, &err), FUSENET_ERR_ARCH, &err, "VGG16");
    assert_non_null(strstr(err.message, "not VGG19"));
}

static void test_nonfinite(void **state) {
    (void)state;
    static float bad[3 * 3 * 64 * 64];
    memcpy(bad, kernel2, sizeof bad);
    bad[1234] = NAN;
    layer_def defs[] = {CONV1, {"block1_conv2", 2, {3, 3, 64, 64}, bad, bias2}};
    write_file(DIR "ml_nan.h5", defs, 2);
    fusenet_model *m;
    fusenet_error err;
    expect_error(load_vgg(DIR "ml_nan.h5", "block1_conv2", 0, &m, &err), FUSENET_ERR_VALUE, &err, "block1_conv2");
    assert_non_null(strstr(err.message, "1234"));
    expect_ok(load_vgg(DIR "ml_nan.h5", "block1_conv2", 1, &m, &err), &err);
    fusenet_model_free(m);
}

static void test_unknown_needed_layer(void **state) {
    (void)state;
    fusenet_model *m;
    fusenet_error err;
    expect_error(load_vgg(DIR "ml_good.h5", "block1_conv9", 0, &m, &err), FUSENET_ERR_UNKNOWN_LAYER, &err,
                 "did you mean: block1_conv");
}

/* The CRC-32 a .keras entry read in place is checked with, against zlib's
 * crc32 (the reference libzip checks with): every length 0..300 at every
 * alignment 0..15, then random lengths up to 64 KiB with random running
 * CRCs, and one 8 MiB buffer. Where the CPU has no PCLMULQDQ both sides are
 * zlib, and the test checks the fallback. */
static void test_crc32_against_zlib(void **state) {
    (void)state;
    size_t size = (size_t)8 << 20;
    uint8_t *buf = malloc(size);
    assert_non_null(buf);
    uint32_t x = 12345;
    for (size_t i = 0; i < size; i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (uint8_t)(x >> 23);
    }
    for (size_t len = 0; len <= 300; len++)
        for (size_t off = 0; off < 16; off++)
            assert_int_equal(fusenet__crc32(0, buf + off, len), (uint32_t)crc32(0, buf + off, (uInt)len));
    for (int t = 0; t < 2000; t++) {
        x = x * 1103515245u + 12345u;
        size_t len = (x >> 8) % 65536, off = x % 61;
        uint32_t running = x * 2654435761u;
        assert_int_equal(fusenet__crc32(running, buf + off, len), (uint32_t)crc32(running, buf + off, (uInt)len));
    }
    assert_int_equal(fusenet__crc32(0, buf, size), (uint32_t)crc32(0, buf, (uInt)size));
    free(buf);
}

int main(void) {
    fill();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_file_values),   cmocka_unit_test(test_missing_layer),
        cmocka_unit_test(test_wrong_kernel_shape), cmocka_unit_test(test_extra_layers),
        cmocka_unit_test(test_other_network_and_old_naming), cmocka_unit_test(test_nonfinite),
        cmocka_unit_test(test_unknown_needed_layer), cmocka_unit_test(test_crc32_against_zlib),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
