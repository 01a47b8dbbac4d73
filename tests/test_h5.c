/* test_h5.c - the HDF5 weights reader (src/io/h5.c on src/io/h5format.c) and writer (src/h5write.c).
 *
 * Fixture files are built here with the raw HDF5 C API (not with fusenet__h5_write),
 * following the legacy Keras layout: nested ResNet naming, flat Keras-1 VGG
 * naming, fixed- and variable-length strings, chunked name lists, the
 * model_weights wrapper, float64/float16/big-endian datasets, and broken
 * files. Every failing call is checked for its status and for a message that
 * names the file. Open HDF5 files and objects are counted around each test, so
 * a leaked identifier fails the test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hdf5.h>

#include "alloc.h"
#include "h5.h"
#include "test_util.h"

#ifndef FN_BUILD_DIR
#define FN_BUILD_DIR "."
#endif

/* ---- temporary files ------------------------------------------------------ */

#define MAX_FILES 64
static char g_dir[1024];
static char g_files[MAX_FILES][1200];
static int g_nfiles;

/* The path of `name` inside the test's temporary directory (removed at exit). */
static const char *tp(const char *name) {
    char buf[1200];
    snprintf(buf, sizeof buf, "%s/%s", g_dir, name);
    for (int i = 0; i < g_nfiles; i++)
        if (!strcmp(g_files[i], buf)) return g_files[i];
    assert_true(g_nfiles < MAX_FILES);
    snprintf(g_files[g_nfiles], sizeof g_files[0], "%s", buf);
    return g_files[g_nfiles++];
}

static int group_setup(void **state) {
    (void)state;
    snprintf(g_dir, sizeof g_dir, "%s/h5test_XXXXXX", FN_BUILD_DIR);
    if (!mkdtemp(g_dir)) return -1;
    return 0;
}

static int group_teardown(void **state) {
    (void)state;
    for (int i = 0; i < g_nfiles; i++) {
        struct stat sb;
        if (stat(g_files[i], &sb) != 0) continue;
        if (S_ISDIR(sb.st_mode))
            rmdir(g_files[i]);
        else
            unlink(g_files[i]);
    }
    rmdir(g_dir);
    return 0;
}

/* ---- HDF5 id leak check --------------------------------------------------- */

/* Open files and objects in them (groups, datasets, attributes, named types). */
static long long open_ids(void) { return (long long)H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL); }

static long long g_ids_before;

static int setup(void **state) {
    (void)state;
    g_ids_before = open_ids();
    return 0;
}

static int teardown(void **state) {
    (void)state;
    fusenet__alloc_fail_after(-1);
    long long now = open_ids();
    if (now != g_ids_before) {
        fprintf(stderr, "HDF5 ids leaked: %lld before, %lld after\n", g_ids_before, now);
        return -1;
    }
    return 0;
}

/* ---- raw HDF5 fixture helpers --------------------------------------------- */

static hid_t fx_create(const char *path) {
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(f >= 0);
    return f;
}

static void fx_close(hid_t f) { assert_true(H5Fclose(f) >= 0); }

static hid_t fx_group(hid_t parent, const char *name) {
    hid_t g = H5Gcreate2(parent, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(g >= 0);
    return g;
}

static void fx_scalar_str(hid_t obj, const char *name, const char *value) {
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, strlen(value));
    H5Tset_strpad(type, H5T_STR_NULLPAD);
    hid_t a = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(a >= 0);
    assert_true(H5Awrite(a, type, value) >= 0);
    H5Aclose(a);
    H5Tclose(type);
    H5Sclose(space);
}

static void fx_floats(hid_t g, const char *name, int rank, const hsize_t *dims, const float *v) {
    fx_data(g, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, rank, dims, v);
}

/* Expected values, exact in float32: kernel (3,3,2,4) = 72 values, etc. */
static float kval(size_t i) { return ((float)i - 30.0f) * 0.25f; }
static float bval(size_t i) { return (float)i + 0.5f; }
static float bnval(size_t w, size_t i) { return (float)(w * 10 + i) * 0.5f; }

static const char *const bn_roles[4] = {"gamma", "beta", "moving_mean", "moving_variance"};

/* ResNet-style file (Keras 2, nested weight names, fixed-length strings):
 * input_1 (weightless), conv1_conv (kernel (3,3,2,4), bias (4)),
 * conv1_bn (gamma, beta, moving_mean, moving_variance (4)). */
static void make_resnet(const char *path, int variable, int wrapped) {
    hid_t f = fx_create(path), root = f;
    if (wrapped) {
        fx_scalar_str(f, "keras_version", "2.2.4");
        root = fx_group(f, "model_weights");
    }
    const char *layers[] = {"input_1", "conv1_conv", "conv1_bn"};
    fx_strings(root, "layer_names", layers, 3, variable);
    fx_scalar_str(root, "backend", "tensorflow");
    fx_scalar_str(root, "keras_version", "2.2.4");

    hid_t g = fx_group(root, "input_1");
    fx_empty(g, "weight_names");
    H5Gclose(g);

    g = fx_group(root, "conv1_conv");
    const char *cw[] = {"conv1_conv/kernel:0", "conv1_conv/bias:0"};
    fx_strings(g, "weight_names", cw, 2, variable);
    float k[72], b[4];
    for (size_t i = 0; i < 72; i++) k[i] = kval(i);
    for (size_t i = 0; i < 4; i++) b[i] = bval(i);
    hsize_t kd[4] = {3, 3, 2, 4}, bd[1] = {4};
    fx_floats(g, cw[0], 4, kd, k);
    fx_floats(g, cw[1], 1, bd, b);
    H5Gclose(g);

    g = fx_group(root, "conv1_bn");
    const char *bw[] = {"conv1_bn/gamma:0", "conv1_bn/beta:0", "conv1_bn/moving_mean:0",
                        "conv1_bn/moving_variance:0"};
    fx_strings(g, "weight_names", bw, 4, variable);
    for (size_t w = 0; w < 4; w++) {
        float v[4];
        for (size_t i = 0; i < 4; i++) v[i] = bnval(w, i);
        fx_floats(g, bw[w], 1, bd, v);
    }
    H5Gclose(g);
    if (wrapped) H5Gclose(root);
    fx_close(f);
}

static void conv_specs(fn_wspec s[2], float *k, float *b) {
    memset(s, 0, 2 * sizeof *s);
    s[0] = (fn_wspec){"kernel", 4, {3, 3, 2, 4}, k};
    s[1] = (fn_wspec){"bias", 1, {4}, b};
}

static void check_resnet(const char *path) {
    fusenet_error err;
    fn_h5 *f = NULL;
    assert_int_equal(fusenet__h5_open(path, &f, &err), FUSENET_OK);
    assert_int_equal(err.status, FUSENET_OK);
    assert_string_equal(fusenet__h5_path(f), path);
    assert_int_equal(fusenet__h5_layer_count(f), 3);
    assert_string_equal(fusenet__h5_layer_name(f, 0), "input_1");
    assert_string_equal(fusenet__h5_layer_name(f, 1), "conv1_conv");
    assert_string_equal(fusenet__h5_layer_name(f, 2), "conv1_bn");
    assert_null(fusenet__h5_layer_name(f, 3));

    size_t n = 99;
    assert_int_equal(fusenet__h5_layer_weight_count(f, "input_1", &n, &err), FUSENET_OK);
    assert_int_equal(n, 0);
    assert_int_equal(fusenet__h5_layer_weight_count(f, "conv1_conv", &n, &err), FUSENET_OK);
    assert_int_equal(n, 2);
    assert_int_equal(fusenet__h5_layer_weight_count(f, "conv1_bn", &n, &err), FUSENET_OK);
    assert_int_equal(n, 4);

    assert_int_equal(fusenet__h5_read_layer(f, "input_1", 0, NULL, 0, &err), FUSENET_OK);

    float k[72], b[4];
    fn_wspec s[4];
    conv_specs(s, k, b);
    assert_int_equal(fusenet__h5_read_layer(f, "conv1_conv", 2, s, 0, &err), FUSENET_OK);
    for (size_t i = 0; i < 72; i++) assert_true(k[i] == kval(i));
    for (size_t i = 0; i < 4; i++) assert_true(b[i] == bval(i));

    float bn[4][4];
    for (size_t w = 0; w < 4; w++) s[w] = (fn_wspec){bn_roles[w], 1, {4}, bn[w]};
    assert_int_equal(fusenet__h5_read_layer(f, "conv1_bn", 4, s, 0, &err), FUSENET_OK);
    for (size_t w = 0; w < 4; w++)
        for (size_t i = 0; i < 4; i++) assert_true(bn[w][i] == bnval(w, i));
    fusenet__h5_close(f);
}

static void expect_msg(const fusenet_error *err, fusenet_status st, const char *path) {
    assert_int_equal(err->status, st);
    if (!strstr(err->message, path)) fail_msg("message does not name the file: %s", err->message);
}

static void expect_has(const fusenet_error *err, const char *part) {
    if (!strstr(err->message, part)) fail_msg("message lacks \"%s\": %s", part, err->message);
}

/* Open must fail with `st`, naming the file and saying `part` (if not NULL). */
static void expect_open_error(const char *path, fusenet_status st, const char *part) {
    fusenet_error err;
    fn_h5 *f = (fn_h5 *)&err;
    assert_int_equal(fusenet__h5_open(path, &f, &err), st);
    assert_null(f);
    expect_msg(&err, st, path);
    if (part) expect_has(&err, part);
}

static void expect_open_fails(const char *path, fusenet_status st) { expect_open_error(path, st, NULL); }

/* ---- reading: layouts ------------------------------------------------------ */

static void test_resnet_fixed(void **state) {
    (void)state;
    make_resnet(tp("resnet_fixed.h5"), 0, 0);
    check_resnet(tp("resnet_fixed.h5"));
}

static void test_resnet_variable(void **state) {
    (void)state;
    make_resnet(tp("resnet_vlen.h5"), 1, 0);
    check_resnet(tp("resnet_vlen.h5"));
}

static void test_model_weights_wrapper(void **state) {
    (void)state;
    make_resnet(tp("full_model.h5"), 0, 1);
    check_resnet(tp("full_model.h5"));
}

/* Keras-1 VGG naming: flat block1_conv1_W_1:0 / block1_conv1_b_1:0, no
 * keras_version; weightless pooling layers with an H5S_NULL or string-typed
 * empty weight_names. */
static void test_vgg_flat(void **state) {
    (void)state;
    const char *path = tp("vgg.h5");
    hid_t f = fx_create(path);
    const char *layers[] = {"input_1", "block1_conv1", "block1_pool", "block2_pool"};
    fx_strings(f, "layer_names", layers, 4, 1);
    hid_t g = fx_group(f, "input_1");
    fx_empty(g, "weight_names");
    H5Gclose(g);
    g = fx_group(f, "block1_conv1");
    const char *wn[] = {"block1_conv1_W_1:0", "block1_conv1_b_1:0"};
    fx_strings(g, "weight_names", wn, 2, 0);
    float w[54], b[2] = {-1.0f, 2.0f};
    for (size_t i = 0; i < 54; i++) w[i] = (float)i / 8.0f;
    hsize_t wd[4] = {3, 3, 3, 2}, bd[1] = {2};
    fx_floats(g, wn[0], 4, wd, w);
    fx_floats(g, wn[1], 1, bd, b);
    H5Gclose(g);
    g = fx_group(f, "block1_pool"); /* H5S_NULL attribute */
    hid_t space = H5Screate(H5S_NULL);
    hid_t a = H5Acreate2(g, "weight_names", H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(a >= 0);
    H5Aclose(a);
    H5Sclose(space);
    H5Gclose(g);
    g = fx_group(f, "block2_pool"); /* zero-length string list */
    fx_strings(g, "weight_names", NULL, 0, 0);
    H5Gclose(g);
    fx_close(f);

    fusenet_error err;
    fn_h5 *h = NULL;
    assert_int_equal(fusenet__h5_open(path, &h, &err), FUSENET_OK);
    assert_int_equal(fusenet__h5_layer_count(h), 4);
    for (size_t i = 0; i < 4; i++) assert_string_equal(fusenet__h5_layer_name(h, i), layers[i]);
    size_t n = 99;
    assert_int_equal(fusenet__h5_layer_weight_count(h, "block1_pool", &n, &err), FUSENET_OK);
    assert_int_equal(n, 0);
    n = 99;
    assert_int_equal(fusenet__h5_layer_weight_count(h, "block2_pool", &n, &err), FUSENET_OK);
    assert_int_equal(n, 0);
    float rw[54], rb[2];
    fn_wspec s[2] = {{"kernel", 4, {3, 3, 3, 2}, rw}, {"bias", 1, {2}, rb}};
    assert_int_equal(fusenet__h5_read_layer(h, "block1_conv1", 2, s, 0, &err), FUSENET_OK);
    assert_memory_equal(rw, w, sizeof w);
    assert_memory_equal(rb, b, sizeof b);
    fusenet__h5_close(h);
}

/* layer_names0/1 and weight_names0/1 (no unsuffixed attribute). */
static void test_chunked_names(void **state) {
    (void)state;
    const char *path = tp("chunked.h5");
    hid_t f = fx_create(path);
    const char *c0[] = {"input_1", "dense_a", "x"};
    const char *c1[] = {"relu", "dense_b_with_a_longer_name"};
    fx_strings(f, "layer_names0", c0, 3, 0);
    fx_strings(f, "layer_names1", c1, 2, 1);
    const char *all[] = {"input_1", "dense_a", "x", "relu", "dense_b_with_a_longer_name"};
    for (size_t i = 0; i < 5; i++) {
        hid_t g = fx_group(f, all[i]);
        if (!strcmp(all[i], "dense_a")) {
            const char *w0[] = {"dense_a/kernel:0"}, *w1[] = {"dense_a/bias:0"};
            fx_strings(g, "weight_names0", w0, 1, 0);
            fx_strings(g, "weight_names1", w1, 1, 0);
            float k[6] = {1, 2, 3, 4, 5, 6}, b[3] = {7, 8, 9};
            hsize_t kd[2] = {2, 3}, bd[1] = {3};
            fx_floats(g, w0[0], 2, kd, k);
            fx_floats(g, w1[0], 1, bd, b);
        } else {
            fx_empty(g, "weight_names");
        }
        H5Gclose(g);
    }
    fx_close(f);

    fusenet_error err;
    fn_h5 *h = NULL;
    assert_int_equal(fusenet__h5_open(path, &h, &err), FUSENET_OK);
    assert_int_equal(fusenet__h5_layer_count(h), 5);
    for (size_t i = 0; i < 5; i++) assert_string_equal(fusenet__h5_layer_name(h, i), all[i]);
    size_t n = 0;
    assert_int_equal(fusenet__h5_layer_weight_count(h, "dense_a", &n, &err), FUSENET_OK);
    assert_int_equal(n, 2);
    float k[6], b[3];
    fn_wspec s[2] = {{"kernel", 2, {2, 3}, k}, {"bias", 1, {3}, b}};
    assert_int_equal(fusenet__h5_read_layer(h, "dense_a", 2, s, 0, &err), FUSENET_OK);
    assert_true(k[0] == 1 && k[5] == 6 && b[0] == 7 && b[2] == 9);
    fusenet__h5_close(h);
}

/* float64, float16 and big-endian float32 datasets are converted exactly. */
static void test_dtypes(void **state) {
    (void)state;
    const char *path = tp("dtypes.h5");
    hid_t f = fx_create(path);
    const char *layers[] = {"mixed"};
    fx_strings(f, "layer_names", layers, 1, 0);
    hid_t g = fx_group(f, "mixed");
    const char *wn[] = {"mixed/f64:0", "mixed/f16:0", "mixed/f32be:0"};
    fx_strings(g, "weight_names", wn, 3, 0);

    const double d64[6] = {1.5, -2.25, 1024.0, 0.125, -0.0, 196608.0};
    hsize_t d6[2] = {2, 3};
    fx_data(g, wn[0], H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, d6, d64);

    /* IEEE half: 1.0, -2.5, 0.5, 1024, 0.375, 65504 as raw bit patterns. */
    const uint16_t half[6] = {0x3C00, 0xC100, 0x3800, 0x6400, 0x3600, 0x7BFF};
    const float half_f[6] = {1.0f, -2.5f, 0.5f, 1024.0f, 0.375f, 65504.0f};
    hid_t f16 = H5Tcopy(H5T_IEEE_F32LE);
    assert_true(H5Tset_fields(f16, 15, 10, 5, 0, 10) >= 0);
    assert_true(H5Tset_size(f16, 2) >= 0);
    assert_true(H5Tset_ebias(f16, 15) >= 0);
    hsize_t d1[1] = {6};
    fx_data(g, wn[1], f16, f16, 1, d1, half);
    H5Tclose(f16);

    const float be[3] = {3.25f, -7.0f, 1e-3f};
    hsize_t d3[1] = {3};
    fx_data(g, wn[2], H5T_IEEE_F32BE, H5T_NATIVE_FLOAT, 1, d3, be);
    H5Gclose(g);
    fx_close(f);

    fusenet_error err;
    fn_h5 *h = NULL;
    assert_int_equal(fusenet__h5_open(path, &h, &err), FUSENET_OK);
    float a[6], b[6], c[3];
    fn_wspec s[3] = {{"a", 2, {2, 3}, a}, {"b", 1, {6}, b}, {"c", 1, {3}, c}};
    assert_int_equal(fusenet__h5_read_layer(h, "mixed", 3, s, 0, &err), FUSENET_OK);
    for (size_t i = 0; i < 6; i++) assert_true(a[i] == (float)d64[i]);
    assert_true(signbit(a[4]));
    for (size_t i = 0; i < 6; i++) assert_true(b[i] == half_f[i]);
    for (size_t i = 0; i < 3; i++) assert_true(c[i] == be[i]);
    fusenet__h5_close(h);
}

/* ---- reading: errors ------------------------------------------------------- */

static void test_wrong_shape(void **state) {
    (void)state;
    const char *path = tp("shape.h5");
    make_resnet(path, 0, 0);
    fusenet_error err;
    fn_h5 *f = NULL;
    assert_int_equal(fusenet__h5_open(path, &f, &err), FUSENET_OK);
    float k[3 * 3 * 2 * 5], b[4];
    fn_wspec s[2] = {{"kernel", 4, {3, 3, 2, 5}, k}, {"bias", 1, {4}, b}};
    assert_int_equal(fusenet__h5_read_layer(f, "conv1_conv", 2, s, 0, &err), FUSENET_ERR_SHAPE);
    expect_msg(&err, FUSENET_ERR_SHAPE, path);
    expect_has(&err, "layer conv1_conv weight conv1_conv/kernel:0 (kernel): expected (3,3,2,5), found (3,3,2,4)");

    /* rank mismatch on the second weight */
    fn_wspec r[2] = {{"kernel", 4, {3, 3, 2, 4}, k}, {"bias", 2, {4, 1}, b}};
    assert_int_equal(fusenet__h5_read_layer(f, "conv1_conv", 2, r, 0, &err), FUSENET_ERR_SHAPE);
    expect_msg(&err, FUSENET_ERR_SHAPE, path);
    expect_has(&err, "conv1_conv/bias:0 (bias): expected (4,1), found (4)");
    fusenet__h5_close(f);
}

static void test_wrong_count(void **state) {
    (void)state;
    const char *path = tp("count.h5");
    make_resnet(path, 0, 0);
    fusenet_error err;
    fn_h5 *f = NULL;
    assert_int_equal(fusenet__h5_open(path, &f, &err), FUSENET_OK);
    float k[72], b[4];
    fn_wspec s[2];
    conv_specs(s, k, b);
    assert_int_equal(fusenet__h5_read_layer(f, "conv1_bn", 2, s, 0, &err), FUSENET_ERR_ARCH);
    expect_msg(&err, FUSENET_ERR_ARCH, path);
    expect_has(&err, "layer conv1_bn has 4 weights, expected 2 (kernel, bias)");
    assert_int_equal(fusenet__h5_read_layer(f, "input_1", 2, s, 0, &err), FUSENET_ERR_ARCH);
    expect_has(&err, "layer input_1 has 0 weights, expected 2 (kernel, bias)");
    fusenet__h5_close(f);
}

static void test_unknown_layer(void **state) {
    (void)state;
    const char *path = tp("unknown.h5");
    make_resnet(path, 0, 0);
    fusenet_error err;
    fn_h5 *f = NULL;
    assert_int_equal(fusenet__h5_open(path, &f, &err), FUSENET_OK);
    size_t n = 7;
    assert_int_equal(fusenet__h5_layer_weight_count(f, "conv1_cnv", &n, &err), FUSENET_ERR_UNKNOWN_LAYER);
    expect_msg(&err, FUSENET_ERR_UNKNOWN_LAYER, path);
    expect_has(&err, "no layer group 'conv1_cnv'");
    expect_has(&err, "conv1_conv");
    assert_int_equal(fusenet__h5_read_layer(f, "a/b", 0, NULL, 0, &err), FUSENET_ERR_UNKNOWN_LAYER);
    expect_msg(&err, FUSENET_ERR_UNKNOWN_LAYER, path);
    assert_int_equal(fusenet__h5_read_layer(f, "", 0, NULL, 0, &err), FUSENET_ERR_UNKNOWN_LAYER);
    fusenet__h5_close(f);
}

/* One file with several broken layers. */
static void make_broken(const char *path) {
    hid_t f = fx_create(path);
    const char *layers[] = {"missing", "ints", "strs", "nan", "inf", "nogroup", "nonames", "badnames", "scalar"};
    fx_strings(f, "layer_names", layers, 9, 0);
    hsize_t d4[1] = {4};
    float ok[4] = {1, 2, 3, 4};

    hid_t g = fx_group(f, "missing");
    const char *w_missing[] = {"missing/kernel:0", "missing/bias:0"};
    fx_strings(g, "weight_names", w_missing, 2, 0);
    fx_floats(g, "missing/kernel:0", 1, d4, ok);
    H5Gclose(g);

    g = fx_group(f, "ints");
    const char *w_ints[] = {"ints/kernel:0"};
    fx_strings(g, "weight_names", w_ints, 1, 0);
    int iv[4] = {1, 2, 3, 4};
    fx_data(g, w_ints[0], H5T_STD_I32LE, H5T_NATIVE_INT, 1, d4, iv);
    H5Gclose(g);

    g = fx_group(f, "strs");
    const char *w_strs[] = {"strs/kernel:0"};
    fx_strings(g, "weight_names", w_strs, 1, 0);
    hid_t st = H5Tcopy(H5T_C_S1);
    H5Tset_size(st, 2);
    fx_data(g, w_strs[0], st, st, 1, d4, "abcdefgh");
    H5Tclose(st);
    H5Gclose(g);

    g = fx_group(f, "nan");
    const char *w_nan[] = {"nan/kernel:0"};
    fx_strings(g, "weight_names", w_nan, 1, 0);
    float nv[4] = {1, 2, NAN, 4};
    fx_floats(g, w_nan[0], 1, d4, nv);
    H5Gclose(g);

    g = fx_group(f, "inf");
    const char *w_inf[] = {"inf/bias:0"};
    fx_strings(g, "weight_names", w_inf, 1, 1);
    double dv[4] = {1, 2, 3, -INFINITY}; /* float64 -> float32 */
    fx_data(g, w_inf[0], H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, d4, dv);
    H5Gclose(g);

    /* "nogroup" is a dataset, not a group */
    fx_floats(f, "nogroup", 1, d4, ok);

    g = fx_group(f, "nonames"); /* no weight_names attribute at all */
    H5Gclose(g);

    g = fx_group(f, "badnames"); /* integer weight_names: not a list of names */
    hid_t space = H5Screate_simple(1, d4, NULL);
    hid_t a = H5Acreate2(g, "weight_names", H5T_STD_I32LE, space, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_INT, iv);
    H5Aclose(a);
    H5Sclose(space);
    H5Gclose(g);

    g = fx_group(f, "scalar"); /* scalar dataset where a vector is expected */
    const char *w_scalar[] = {"s:0"};
    fx_strings(g, "weight_names", w_scalar, 1, 0);
    fx_floats(g, "s:0", 0, NULL, ok);
    H5Gclose(g);
    fx_close(f);
}

static void test_broken_layers(void **state) {
    (void)state;
    const char *path = tp("broken.h5");
    make_broken(path);
    fusenet_error err;
    fn_h5 *f = NULL;
    assert_int_equal(fusenet__h5_open(path, &f, &err), FUSENET_OK);
    float v[4] = {0};
    fn_wspec s[2] = {{"kernel", 1, {4}, v}, {"bias", 1, {4}, v}};

    assert_int_equal(fusenet__h5_read_layer(f, "missing", 2, s, 0, &err), FUSENET_ERR_FORMAT);
    expect_msg(&err, FUSENET_ERR_FORMAT, path);
    expect_has(&err, "layer missing weight missing/bias:0 (bias): no such dataset");

    assert_int_equal(fusenet__h5_read_layer(f, "ints", 1, s, 0, &err), FUSENET_ERR_FORMAT);
    expect_msg(&err, FUSENET_ERR_FORMAT, path);
    expect_has(&err, "ints/kernel:0");
    expect_has(&err, "integer");

    assert_int_equal(fusenet__h5_read_layer(f, "strs", 1, s, 0, &err), FUSENET_ERR_FORMAT);
    expect_msg(&err, FUSENET_ERR_FORMAT, path);
    expect_has(&err, "string");

    assert_int_equal(fusenet__h5_read_layer(f, "nan", 1, s, 0, &err), FUSENET_ERR_VALUE);
    expect_msg(&err, FUSENET_ERR_VALUE, path);
    expect_has(&err, "layer nan weight nan/kernel:0");
    expect_has(&err, "index 2");
    assert_int_equal(fusenet__h5_read_layer(f, "nan", 1, s, 1, &err), FUSENET_OK);
    assert_true(v[0] == 1 && v[1] == 2 && isnan(v[2]) && v[3] == 4);

    assert_int_equal(fusenet__h5_read_layer(f, "inf", 1, &s[1], 0, &err), FUSENET_ERR_VALUE);
    expect_msg(&err, FUSENET_ERR_VALUE, path);
    expect_has(&err, "inf/bias:0 (bias)");
    expect_has(&err, "index 3");
    assert_int_equal(fusenet__h5_read_layer(f, "inf", 1, &s[1], 1, &err), FUSENET_OK);
    assert_true(isinf(v[3]) && v[3] < 0);

    size_t n = 9;
    assert_int_equal(fusenet__h5_layer_weight_count(f, "nogroup", &n, &err), FUSENET_ERR_FORMAT);
    expect_msg(&err, FUSENET_ERR_FORMAT, path);
    assert_int_equal(fusenet__h5_layer_weight_count(f, "nonames", &n, &err), FUSENET_ERR_FORMAT);
    expect_msg(&err, FUSENET_ERR_FORMAT, path);
    expect_has(&err, "weight_names");
    assert_int_equal(fusenet__h5_layer_weight_count(f, "badnames", &n, &err), FUSENET_ERR_FORMAT);
    expect_msg(&err, FUSENET_ERR_FORMAT, path);
    expect_has(&err, "layer badnames attribute weight_names: integer array, not a list of strings");
    assert_int_equal(fusenet__h5_read_layer(f, "badnames", 2, s, 0, &err), FUSENET_ERR_FORMAT);
    expect_has(&err, "layer badnames attribute weight_names: integer array, not a list of strings");

    assert_int_equal(fusenet__h5_read_layer(f, "scalar", 1, s, 0, &err), FUSENET_ERR_SHAPE);
    expect_msg(&err, FUSENET_ERR_SHAPE, path);
    expect_has(&err, "expected (4), found ()");

    /* bad specs are the caller's fault */
    fn_wspec bad = {"kernel", 5, {1, 1, 1, 1}, v};
    assert_int_equal(fusenet__h5_read_layer(f, "nan", 1, &bad, 0, &err), FUSENET_ERR_INVALID_ARG);
    fusenet__h5_close(f);
}

static void test_no_layer_names(void **state) {
    (void)state;
    const char *path = tp("nolayers.h5");
    hid_t f = fx_create(path);
    fx_scalar_str(f, "backend", "tensorflow");
    hid_t g = fx_group(f, "model_weights"); /* wrapper without layer_names either */
    H5Gclose(g);
    fx_close(f);
    expect_open_error(path, FUSENET_ERR_FORMAT, "not a Keras weights file (no layer_names attribute)");
}

static void test_absurd_names(void **state) {
    (void)state;
    /* a 5000-byte layer name */
    const char *path = tp("longname.h5");
    char *longname = malloc(5001);
    assert_non_null(longname);
    memset(longname, 'a', 5000);
    longname[5000] = '\0';
    hid_t f = fx_create(path);
    const char *v[] = {"ok", longname};
    fx_strings(f, "layer_names", v, 2, 0);
    fx_close(f);
    const char *too_long = "attribute layer_names: string of 5000 bytes, more than 4096";
    expect_open_error(path, FUSENET_ERR_FORMAT, too_long);
    /* the same as a variable-length string */
    f = fx_create(path);
    fx_strings(f, "layer_names", v, 2, 1);
    fx_close(f);
    expect_open_error(path, FUSENET_ERR_FORMAT, too_long);
    /* a weight name of 5000 bytes */
    f = fx_create(path);
    const char *one[] = {"ok"};
    fx_strings(f, "layer_names", one, 1, 0);
    hid_t g = fx_group(f, "ok");
    const char *w[] = {"ok/kernel:0", longname};
    fx_strings(g, "weight_names", w, 2, 1);
    H5Gclose(g);
    fx_close(f);
    fusenet_error err;
    fn_h5 *h = NULL;
    assert_int_equal(fusenet__h5_open(path, &h, &err), FUSENET_OK);
    size_t count = 0;
    assert_int_equal(fusenet__h5_layer_weight_count(h, "ok", &count, &err), FUSENET_ERR_FORMAT);
    expect_msg(&err, FUSENET_ERR_FORMAT, path);
    expect_has(&err, "layer ok attribute weight_names: string of 5000 bytes, more than 4096");
    fusenet__h5_close(h);
    free(longname);

    /* 100001 names (dense attribute storage lets the attribute exceed 64 KiB) */
    const char *many = tp("manynames.h5");
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
    f = H5Fcreate(many, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    assert_true(f >= 0);
    H5Pclose(fapl);
    size_t n = 100001;
    char *buf = malloc(n);
    assert_non_null(buf);
    memset(buf, 'x', n);
    hsize_t dim = n;
    hid_t space = H5Screate_simple(1, &dim, NULL), type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, 1);
    hid_t a = H5Acreate2(f, "layer_names", type, space, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(a >= 0);
    assert_true(H5Awrite(a, type, buf) >= 0);
    H5Aclose(a);
    H5Tclose(type);
    H5Sclose(space);
    fx_close(f);
    free(buf);
    expect_open_error(many, FUSENET_ERR_FORMAT, "more than 100000 names");
}

/* Soft links are documented UNSUPPORTED: a weight or a layer group that is a
 * soft link is refused as such, in old-style groups (symbol tables, where the
 * entry has no object address) and in new-style ones (link messages). */
static void test_soft_links(void **state) {
    (void)state;
    hsize_t d4[1] = {4};
    float v[4] = {1, 2, 3, 4};
    for (int latest = 0; latest < 2; latest++) {
        const char *path = tp(latest ? "soft_latest.h5" : "soft.h5");
        hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
        if (latest) assert_true(H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST) >= 0);
        hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
        assert_true(f >= 0);
        H5Pclose(fapl);
        const char *layers[] = {"conv", "alias"};
        fx_strings(f, "layer_names", layers, 2, 0);
        hid_t g = fx_group(f, "conv");
        const char *w[] = {"conv/kernel:0"};
        fx_strings(g, "weight_names", w, 1, 0);
        hid_t sub = fx_group(g, "conv");
        fx_floats(sub, "real:0", 1, d4, v);
        assert_true(H5Lcreate_soft("/conv/conv/real:0", sub, "kernel:0", H5P_DEFAULT, H5P_DEFAULT) >= 0);
        H5Gclose(sub);
        H5Gclose(g);
        assert_true(H5Lcreate_soft("/conv", f, "alias", H5P_DEFAULT, H5P_DEFAULT) >= 0);
        fx_close(f);

        fusenet_error err;
        fn_h5 *h = NULL;
        assert_int_equal(fusenet__h5_open(path, &h, &err), FUSENET_OK);
        float out[4];
        fn_wspec s = {"kernel", 1, {4}, out};
        assert_int_equal(fusenet__h5_read_layer(h, "conv", 1, &s, 0, &err), FUSENET_ERR_UNSUPPORTED);
        expect_msg(&err, FUSENET_ERR_UNSUPPORTED, path);
        expect_has(&err, "layer conv weight conv/kernel:0 (kernel): not supported: link 'kernel:0' is a soft link");
        size_t n = 9;
        assert_int_equal(fusenet__h5_layer_weight_count(h, "alias", &n, &err), FUSENET_ERR_UNSUPPORTED);
        expect_msg(&err, FUSENET_ERR_UNSUPPORTED, path);
        expect_has(&err, "not supported: link 'alias' is a soft link");
        fusenet__h5_close(h);
    }
}

/* ---- opening broken files ---------------------------------------------------- */

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    if (n) assert_int_equal(fwrite(data, 1, n, fp), n);
    assert_int_equal(fclose(fp), 0);
}

static void test_missing_file(void **state) {
    (void)state;
    const char *path = tp("does_not_exist.h5");
    expect_open_error(path, FUSENET_ERR_IO, strerror(ENOENT));
}

static void test_directory(void **state) {
    (void)state;
    const char *path = tp("a_directory.h5");
    assert_int_equal(mkdir(path, 0700), 0);
    expect_open_error(path, FUSENET_ERR_IO, "directory");
}

static void test_empty_file(void **state) {
    (void)state;
    const char *path = tp("empty.h5");
    write_bytes(path, "", 0);
    expect_open_fails(path, FUSENET_ERR_FORMAT);
}

static void test_not_hdf5(void **state) {
    (void)state;
    const char *path = tp("text.h5");
    char text[2000];
    for (size_t i = 0; i < sizeof text; i++) text[i] = (char)('a' + i % 26);
    write_bytes(path, text, sizeof text);
    expect_open_fails(path, FUSENET_ERR_FORMAT);
}

static void test_truncated(void **state) {
    (void)state;
    const char *good = tp("whole.h5"), *cut = tp("truncated.h5");
    make_resnet(good, 0, 0);
    FILE *fp = fopen(good, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    assert_true(size > 1000);
    unsigned char *data = malloc((size_t)size);
    assert_non_null(data);
    assert_int_equal(fread(data, 1, (size_t)size, fp), (size_t)size);
    fclose(fp);
    const long cuts[] = {1, 4, 8, 9, 16, 40, 96, 200, 512, 800, size / 2, size - 100, size - 8, size - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        write_bytes(cut, data, (size_t)cuts[i]);
        expect_open_fails(cut, FUSENET_ERR_FORMAT);
    }
    write_bytes(cut, data, (size_t)size); /* the whole file still opens */
    check_resnet(cut);
    free(data);
}

/* The reader never calls libhdf5 (the files are read by our own parser):
 * libhdf5 clears its default error stack on entering any API function, so a
 * record pushed before the reads is still there after them. The control call
 * shows the probe sees a libhdf5 call. */
static void push_probe(void) {
    assert_true(H5Eclear2(H5E_DEFAULT) >= 0);
    assert_true(H5Epush2(H5E_DEFAULT, __FILE__, "probe", __LINE__, H5E_ERR_CLS, H5E_ARGS, H5E_BADVALUE, "probe") >= 0);
    assert_int_equal(H5Eget_num(H5E_DEFAULT), 1);
}

static void test_reader_never_calls_libhdf5(void **state) {
    (void)state;
    const char *good = tp("nolib.h5"), *broken = tp("nolib_broken.h5"), *text = tp("nolib.txt");
    make_resnet(good, 0, 0);
    make_broken(broken);
    char junk[100] = {0};
    write_bytes(text, junk, sizeof junk);

    push_probe();
    assert_true(H5Fis_hdf5(good) > 0); /* control: any libhdf5 call clears the stack */
    assert_int_equal(H5Eget_num(H5E_DEFAULT), 0);

    push_probe();
    check_resnet(good);
    fusenet_error err;
    fn_h5 *f = NULL;
    assert_int_equal(fusenet__h5_open(text, &f, &err), FUSENET_ERR_FORMAT);
    assert_int_equal(fusenet__h5_open(broken, &f, &err), FUSENET_OK);
    float v[4];
    fn_wspec s[2] = {{"kernel", 1, {4}, v}, {"bias", 1, {4}, v}};
    assert_int_equal(fusenet__h5_read_layer(f, "missing", 2, s, 0, &err), FUSENET_ERR_FORMAT);
    assert_int_equal(fusenet__h5_read_layer(f, "ints", 1, s, 0, &err), FUSENET_ERR_FORMAT);
    size_t n;
    assert_int_equal(fusenet__h5_layer_weight_count(f, "nothere", &n, &err), FUSENET_ERR_UNKNOWN_LAYER);
    fusenet__h5_close(f);
    assert_int_equal(H5Eget_num(H5E_DEFAULT), 1);
    assert_true(H5Eclear2(H5E_DEFAULT) >= 0);
}

/* The writer does call libhdf5: an error inside it (a weight name given twice)
 * is reported as IO with libhdf5's reason, without libhdf5 printing it (the
 * caller's automatic handler is not called), and the caller's handler is
 * restored afterwards. */
static int g_handler_calls;
static herr_t counting_handler(hid_t stack, void *data) {
    (void)stack;
    (void)data;
    g_handler_calls++;
    return 0;
}

static void test_writer_error_handler(void **state) {
    (void)state;
    H5E_auto2_t old_func = NULL;
    void *old_data = NULL;
    H5Eget_auto2(H5E_DEFAULT, &old_func, &old_data);
    int token = 0;
    H5Eset_auto2(H5E_DEFAULT, counting_handler, &token);
    g_handler_calls = 0;

    const char *path = tp("twice.h5");
    float v[2] = {1, 2};
    const char *wn[] = {"w:0", "w:0"};
    fn_wspec s[2] = {{"kernel", 1, {2}, v}, {"bias", 1, {2}, v}};
    fn_h5_layer_out twice[] = {{"a", 2, wn, s}};
    fusenet_error err;
    assert_int_equal(fusenet__h5_write(path, twice, 1, &err), FUSENET_ERR_IO);
    expect_msg(&err, FUSENET_ERR_IO, path);
    expect_has(&err, "(HDF5: ");
    assert_int_equal(g_handler_calls, 0);
    H5E_auto2_t now_func = NULL;
    void *now_data = NULL;
    H5Eget_auto2(H5E_DEFAULT, &now_func, &now_data);
    assert_true(now_func == counting_handler);
    assert_ptr_equal(now_data, &token);
    assert_true(H5Fis_hdf5(tp("no_such_file.h5")) < 0); /* control: libhdf5 reports through the handler */
    assert_true(g_handler_calls > 0);
    H5Eset_auto2(H5E_DEFAULT, old_func, old_data);
}

/* ---- writing ------------------------------------------------------------------- */

static char *read_fixed_attr(hid_t obj, const char *name, size_t *count, size_t *size) {
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    assert_true(a >= 0);
    hid_t t = H5Aget_type(a), s = H5Aget_space(a);
    assert_int_equal(H5Tget_class(t), H5T_STRING);
    assert_int_equal(H5Tis_variable_str(t), 0);
    assert_int_equal(H5Tget_strpad(t), H5T_STR_NULLPAD);
    *size = H5Tget_size(t);
    *count = (size_t)H5Sget_simple_extent_npoints(s);
    char *buf = calloc(*count ? *count : 1, *size);
    assert_true(H5Aread(a, t, buf) >= 0);
    H5Tclose(t);
    H5Sclose(s);
    H5Aclose(a);
    return buf;
}

static void test_write_round_trip(void **state) {
    (void)state;
    const char *path = tp("written.h5");
    float k[72], b[4], bn[4][4], dk[8 * 3], db[3];
    for (size_t i = 0; i < 72; i++) k[i] = kval(i);
    for (size_t i = 0; i < 4; i++) b[i] = bval(i);
    for (size_t w = 0; w < 4; w++)
        for (size_t i = 0; i < 4; i++) bn[w][i] = bnval(w, i);
    for (size_t i = 0; i < 24; i++) dk[i] = -(float)i * 0.75f;
    db[0] = 1e-20f;
    db[1] = -3.0e30f;
    db[2] = 0.1f;

    const char *cw[] = {"conv1_conv/kernel:0", "conv1_conv/bias:0"};
    fn_wspec cs[2] = {{"kernel", 4, {3, 3, 2, 4}, k}, {"bias", 1, {4}, b}};
    const char *bw[] = {"conv1_bn/gamma:0", "conv1_bn/beta:0", "conv1_bn/moving_mean:0",
                        "conv1_bn/moving_variance:0"};
    fn_wspec bs[4];
    for (size_t w = 0; w < 4; w++) bs[w] = (fn_wspec){bn_roles[w], 1, {4}, bn[w]};
    const char *dw[] = {"fc1_W_1:0", "fc1_b_1:0"};
    fn_wspec ds[2] = {{"kernel", 2, {8, 3}, dk}, {"bias", 1, {3}, db}};
    /* deliberately not sorted: the file keeps this order */
    fn_h5_layer_out layers[] = {
        {"zz_input", 0, NULL, NULL},
        {"conv1_conv", 2, cw, cs},
        {"conv1_bn", 4, bw, bs},
        {"a_pool", 0, NULL, NULL},
        {"fc1", 2, dw, ds},
    };
    fusenet_error err;
    assert_int_equal(fusenet__h5_write(path, layers, 5, &err), FUSENET_OK);
    assert_int_equal(err.status, FUSENET_OK);

    fn_h5 *f = NULL;
    assert_int_equal(fusenet__h5_open(path, &f, &err), FUSENET_OK);
    assert_int_equal(fusenet__h5_layer_count(f), 5);
    for (size_t i = 0; i < 5; i++) assert_string_equal(fusenet__h5_layer_name(f, i), layers[i].name);
    for (size_t i = 0; i < 5; i++) {
        size_t n = 99;
        assert_int_equal(fusenet__h5_layer_weight_count(f, layers[i].name, &n, &err), FUSENET_OK);
        assert_int_equal(n, layers[i].n);
    }
    float rk[72], rb[4], rbn[4][4], rdk[24], rdb[3];
    fn_wspec rc[2] = {{"kernel", 4, {3, 3, 2, 4}, rk}, {"bias", 1, {4}, rb}};
    fn_wspec rbs[4];
    for (size_t w = 0; w < 4; w++) rbs[w] = (fn_wspec){bn_roles[w], 1, {4}, rbn[w]};
    fn_wspec rd[2] = {{"kernel", 2, {8, 3}, rdk}, {"bias", 1, {3}, rdb}};
    assert_int_equal(fusenet__h5_read_layer(f, "conv1_conv", 2, rc, 0, &err), FUSENET_OK);
    assert_int_equal(fusenet__h5_read_layer(f, "conv1_bn", 4, rbs, 0, &err), FUSENET_OK);
    assert_int_equal(fusenet__h5_read_layer(f, "fc1", 2, rd, 0, &err), FUSENET_OK);
    assert_int_equal(fusenet__h5_read_layer(f, "a_pool", 0, NULL, 0, &err), FUSENET_OK);
    assert_memory_equal(rk, k, sizeof k);
    assert_memory_equal(rb, b, sizeof b);
    assert_memory_equal(rbn, bn, sizeof bn);
    assert_memory_equal(rdk, dk, sizeof dk);
    assert_memory_equal(rdb, db, sizeof db);
    fusenet__h5_close(f);

    /* the raw layout */
    hid_t h = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(h >= 0);
    size_t count, size;
    char *names = read_fixed_attr(h, "layer_names", &count, &size);
    assert_int_equal(count, 5);
    assert_int_equal(size, strlen("conv1_conv")); /* the longest name */
    assert_memory_equal(names, "zz_input\0\0", 10);
    assert_memory_equal(names + 40, "fc1\0\0\0\0\0\0\0", 10);
    free(names);
    char *bk = read_fixed_attr(h, "backend", &count, &size);
    assert_int_equal(count, 1);
    assert_int_equal(size, 10);
    assert_memory_equal(bk, "tensorflow", 10);
    free(bk);
    char *kv = read_fixed_attr(h, "keras_version", &count, &size);
    assert_int_equal(size, 5);
    assert_memory_equal(kv, "2.2.4", 5);
    free(kv);
    hid_t g = H5Gopen2(h, "conv1_bn", H5P_DEFAULT);
    char *wn = read_fixed_attr(g, "weight_names", &count, &size);
    assert_int_equal(count, 4);
    assert_int_equal(size, strlen("conv1_bn/moving_variance:0"));
    assert_memory_equal(wn, "conv1_bn/gamma:0\0", 17);
    free(wn);
    hid_t d = H5Dopen2(g, "conv1_bn/moving_mean:0", H5P_DEFAULT);
    assert_true(d >= 0);
    hid_t dt = H5Dget_type(d);
    assert_true(H5Tequal(dt, H5T_IEEE_F32LE) > 0);
    H5Tclose(dt);
    H5Dclose(d);
    H5Gclose(g);
    g = H5Gopen2(h, "a_pool", H5P_DEFAULT);
    hid_t a = H5Aopen(g, "weight_names", H5P_DEFAULT);
    hid_t at = H5Aget_type(a), as = H5Aget_space(a);
    assert_true(H5Tequal(at, H5T_IEEE_F64LE) > 0);
    assert_int_equal(H5Sget_simple_extent_type(as), H5S_SIMPLE);
    assert_int_equal(H5Sget_simple_extent_ndims(as), 1);
    assert_int_equal(H5Sget_simple_extent_npoints(as), 0);
    H5Sclose(as);
    H5Tclose(at);
    H5Aclose(a);
    H5Gclose(g);
    assert_true(H5Lexists(h, "fc1", H5P_DEFAULT) > 0);
    d = H5Dopen2(h, "fc1/fc1_W_1:0", H5P_DEFAULT);
    assert_true(d >= 0);
    H5Dclose(d);
    H5Fclose(h);
}

/* More than 64512 bytes of names: layer_names0, layer_names1 (array_split). */
static void test_write_chunked(void **state) {
    (void)state;
    const char *path = tp("chunked_out.h5");
    enum { N = 1001, LEN = 100 };
    char (*names)[LEN + 1] = calloc(N, sizeof *names);
    fn_h5_layer_out *layers = calloc(N, sizeof *layers);
    assert_non_null(names);
    assert_non_null(layers);
    for (size_t i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "layer_%04zu_", i);
        memset(names[i] + 11, 'q', LEN - 11 - (i % 7)); /* longest: LEN */
        layers[i].name = names[i];
    }
    fusenet_error err;
    assert_int_equal(fusenet__h5_write(path, layers, N, &err), FUSENET_OK);

    hid_t h = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(h >= 0);
    assert_int_equal(H5Aexists(h, "layer_names"), 0);
    assert_int_equal(H5Aexists(h, "layer_names2"), 0);
    size_t count, size;
    char *c0 = read_fixed_attr(h, "layer_names0", &count, &size);
    assert_int_equal(count, 501);
    assert_int_equal(size, LEN);
    assert_memory_equal(c0, names[0], strlen(names[0]));
    free(c0);
    char *c1 = read_fixed_attr(h, "layer_names1", &count, &size);
    assert_int_equal(count, 500);
    assert_int_equal(size, LEN);
    assert_memory_equal(c1, names[501], strlen(names[501]));
    free(c1);
    H5Fclose(h);

    fn_h5 *f = NULL;
    assert_int_equal(fusenet__h5_open(path, &f, &err), FUSENET_OK);
    assert_int_equal(fusenet__h5_layer_count(f), N);
    for (size_t i = 0; i < N; i++) assert_string_equal(fusenet__h5_layer_name(f, i), names[i]);
    size_t n = 9;
    assert_int_equal(fusenet__h5_layer_weight_count(f, names[777], &n, &err), FUSENET_OK);
    assert_int_equal(n, 0);
    fusenet__h5_close(f);
    free(layers);
    free(names);
}

static void test_write_errors(void **state) {
    (void)state;
    fusenet_error err;
    float v[2] = {1, 2};
    const char *wn[] = {"w:0"};
    fn_wspec s = {"kernel", 1, {2}, v};
    const char *path = tp("werr.h5");

    fn_h5_layer_out dup[] = {{"a", 1, wn, &s}, {"a", 0, NULL, NULL}};
    assert_int_equal(fusenet__h5_write(path, dup, 2, &err), FUSENET_ERR_INVALID_ARG);
    expect_msg(&err, FUSENET_ERR_INVALID_ARG, path);
    fn_h5_layer_out slash[] = {{"a/b", 0, NULL, NULL}};
    assert_int_equal(fusenet__h5_write(path, slash, 1, &err), FUSENET_ERR_INVALID_ARG);
    expect_msg(&err, FUSENET_ERR_INVALID_ARG, path);
    fn_wspec bad = {"kernel", 1, {0}, v};
    fn_h5_layer_out zero[] = {{"a", 1, wn, &bad}};
    assert_int_equal(fusenet__h5_write(path, zero, 1, &err), FUSENET_ERR_INVALID_ARG);
    expect_msg(&err, FUSENET_ERR_INVALID_ARG, path);
    const char *badw[] = {"/abs:0"};
    fn_h5_layer_out abs[] = {{"a", 1, badw, &s}};
    assert_int_equal(fusenet__h5_write(path, abs, 1, &err), FUSENET_ERR_INVALID_ARG);

    const char *nodir = tp("no_such_dir/x.h5");
    fn_h5_layer_out ok[] = {{"a", 1, wn, &s}};
    assert_int_equal(fusenet__h5_write(nodir, ok, 1, &err), FUSENET_ERR_IO);
    expect_msg(&err, FUSENET_ERR_IO, nodir);
    assert_int_equal(fusenet__h5_write(path, ok, 1, &err), FUSENET_OK);
}

/* Every allocation failure gives NOMEM and leaks nothing (ASan and the id
 * count check the rest). */
static void test_out_of_memory(void **state) {
    (void)state;
    const char *path = tp("oom.h5");
    make_resnet(path, 1, 1);
    int64_t k;
    for (k = 0; k < 10000; k++) {
        fusenet_error err;
        fn_h5 *f = NULL;
        fusenet__alloc_fail_after(k);
        fusenet_status st = fusenet__h5_open(path, &f, &err);
        if (st == FUSENET_OK) {
            float kk[72], bb[4];
            fn_wspec s[2];
            conv_specs(s, kk, bb);
            st = fusenet__h5_read_layer(f, "conv1_conv", 2, s, 0, &err);
            fusenet__h5_close(f);
        }
        fusenet__alloc_fail_after(-1);
        if (st == FUSENET_OK) break;
        assert_int_equal(st, FUSENET_ERR_NOMEM);
        expect_msg(&err, FUSENET_ERR_NOMEM, path);
    }
    assert_true(k > 3 && k < 10000);

    const char *out = tp("oom_out.h5");
    const char *wn[] = {"d/kernel:0"};
    float v[2] = {1, 2};
    fn_wspec s = {"kernel", 1, {2}, v};
    fn_h5_layer_out layers[] = {{"d", 1, wn, &s}, {"e", 0, NULL, NULL}};
    for (k = 0; k < 10000; k++) {
        fusenet_error err;
        fusenet__alloc_fail_after(k);
        fusenet_status st = fusenet__h5_write(out, layers, 2, &err);
        fusenet__alloc_fail_after(-1);
        if (st == FUSENET_OK) break;
        assert_int_equal(st, FUSENET_ERR_NOMEM);
        expect_msg(&err, FUSENET_ERR_NOMEM, out);
        assert_int_not_equal(access(out, F_OK), 0); /* no half-written file left */
    }
    assert_true(k >= 1 && k < 10000);
}

static void test_null_args(void **state) {
    (void)state;
    fusenet_error err;
    fn_h5 *f = (fn_h5 *)&err;
    assert_int_equal(fusenet__h5_open(NULL, &f, &err), FUSENET_ERR_INVALID_ARG);
    assert_null(f);
    assert_int_equal(fusenet__h5_open("x", NULL, NULL), FUSENET_ERR_INVALID_ARG);
    size_t n;
    assert_int_equal(fusenet__h5_layer_weight_count(NULL, "x", &n, &err), FUSENET_ERR_INVALID_ARG);
    assert_int_equal(fusenet__h5_read_layer(NULL, "x", 0, NULL, 0, &err), FUSENET_ERR_INVALID_ARG);
    assert_int_equal(fusenet__h5_write(NULL, NULL, 0, &err), FUSENET_ERR_INVALID_ARG);
    fusenet__h5_close(NULL);
    assert_null(fusenet__h5_path(NULL));
    assert_int_equal(fusenet__h5_layer_count(NULL), 0);
}

int main(void) {
    H5open();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_resnet_fixed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resnet_variable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_model_weights_wrapper, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vgg_flat, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chunked_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dtypes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_shape, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_count, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_layer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broken_layers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_layer_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_absurd_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_soft_links, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_hdf5, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader_never_calls_libhdf5, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer_error_handler, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_chunked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out_of_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_null_args, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
