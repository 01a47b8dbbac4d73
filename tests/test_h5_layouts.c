/* test_h5_layouts.c - the layer table of src/io/h5.c: each layout's resolver
 * (legacy nested sub-models matched by role, Keras 3 with and without name
 * attributes, nested Keras 3 models named by attribute or by shape), the
 * choice of a sub-model and the refusals of broken tables.
 *
 * Fixtures are small files written with the raw HDF5 C API in the layouts
 * Keras writes (keras/saving/legacy/hdf5_format.py save_weights_to_hdf5_group;
 * keras/src/saving/saving_lib.py _save_state, _save_container_state,
 * H5IOStore.make). Every weight holds values that tell it apart (base + i),
 * so a weight read from the wrong dataset fails the comparison. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hdf5.h>

#include "alloc.h"
#include "h5.h"
#include "h5format.h"
#include "test_util.h"

#ifndef FN_BUILD_DIR
#define FN_BUILD_DIR "."
#endif

static char g_dir[1024];

static const char *tp(const char *name) {
    static char buf[8][1200];
    static int next;
    char *b = buf[next++ % 8];
    snprintf(b, sizeof buf[0], "%s/%s", g_dir, name);
    return b;
}

static int group_setup(void **state) {
    (void)state;
    snprintf(g_dir, sizeof g_dir, "%s/h5layouts_XXXXXX", FN_BUILD_DIR);
    return mkdtemp(g_dir) ? 0 : -1;
}

static int group_teardown(void **state) {
    (void)state;
    char cmd[1300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static hid_t fx_create(const char *path) {
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(f >= 0);
    return f;
}

static hid_t fx_group(hid_t parent, const char *name) {
    hid_t g = H5Gcreate2(parent, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(g >= 0);
    return g;
}

/* A 1-D float dataset of n values base, base + 1, ... at relative path `name`. */
static void fx_vec(hid_t g, const char *name, int n, float base) {
    float v[16];
    for (int i = 0; i < n; i++) v[i] = base + (float)i;
    hsize_t dim = (hsize_t)n;
    fx_data(g, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1, &dim, v);
}

/* A scalar variable-length string attribute, as h5py writes attrs[k] = str. */
static void fx_vlen_attr(hid_t obj, const char *name, const char *value) {
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, H5T_VARIABLE);
    H5Tset_cset(type, H5T_CSET_UTF8);
    hid_t a = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(a >= 0);
    assert_true(H5Awrite(a, type, &value) >= 0);
    H5Aclose(a);
    H5Tclose(type);
    H5Sclose(space);
}

static void expect_in(const fusenet_error *err, const char *part) {
    if (!strstr(err->message, part)) fprintf(stderr, "message lacks \"%s\": %s\n", part, err->message);
    assert_non_null(strstr(err->message, part));
}

/* Reads n weights of 2 floats of `layer` by roles and checks their bases. */
static void expect_layer(fn_h5 *f, const char *layer, size_t n, const char *const *roles, const float *bases) {
    float v[8][2];
    fn_wspec s[8];
    memset(s, 0, sizeof s);
    for (size_t i = 0; i < n; i++) s[i] = (fn_wspec){roles[i], 1, {2}, v[i]};
    fusenet_error err;
    expect_ok(fusenet__h5_read_layer(f, layer, n, s, 0, &err), &err);
    for (size_t i = 0; i < n; i++) {
        assert_true(v[i][0] == bases[i]);
        assert_true(v[i][1] == bases[i] + 1.0f);
    }
}

static const char *const conv_roles[2] = {"kernel", "bias"};
static const char *const bn_roles[4] = {"gamma", "beta", "moving_mean", "moving_variance"};

/* ---- Keras' to_snake_case ------------------------------------------------- */

static void test_snake_case(void **state) {
    (void)state;
    /* by hand from naming.to_snake_case's three regular expressions */
    static const char *const cases[][2] = {
        {"ZeroPadding2D", "zero_padding2d"},
        {"Conv2D", "conv2d"},
        {"BatchNormalization", "batch_normalization"},
        {"GlobalAveragePooling2D", "global_average_pooling2d"},
        {"MaxPooling2D", "max_pooling2d"},
        {"InputLayer", "input_layer"},
        {"Activation", "activation"},
        {"Dense", "dense"},
        {"Add", "add"},
        {"Functional", "functional"},
        {"HTTPServer", "http_server"},
        {"aB", "a_b"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[64];
        fusenet__keras_snake_case(cases[i][0], out, sizeof out);
        if (strcmp(out, cases[i][1]) != 0) fprintf(stderr, "%s -> %s, want %s\n", cases[i][0], out, cases[i][1]);
        assert_string_equal(out, cases[i][1]);
    }
}

/* ---- legacy nested sub-models ---------------------------------------------- */

/* model_weights/ (full save) with layer_names input_1, backbone, other:
 * backbone holds layers c (Conv2D) and b (BatchNormalization) in the order of
 * a trainable save (trainable weights first) or a frozen one (layer order);
 * other holds one conv d. */
static void make_legacy_nested(const char *path, int frozen, int dup) {
    hid_t f = fx_create(path);
    hid_t root = fx_group(f, "model_weights");
    const char *layers[] = {"input_1", "backbone", dup ? "backbone" : "other"};
    fx_strings(root, "layer_names", layers, 3, 1);
    hid_t g = fx_group(root, "input_1");
    fx_empty(g, "weight_names");
    H5Gclose(g);
    g = fx_group(root, "backbone");
    const char *order[] = {"c/kernel:0", "c/bias:0", "b/gamma:0", "b/beta:0", "b/moving_mean:0",
                           "b/moving_variance:0"};
    const char *const *w = order;
    if (!frozen) { /* an order unlike the layers' (a trainable save of a deeper model has one) */
        static const char *t[] = {"c/kernel:0", "b/beta:0", "c/bias:0", "b/gamma:0", "b/moving_variance:0",
                                  "b/moving_mean:0"};
        w = t;
    }
    fx_strings(g, "weight_names", w, 6, 0);
    const float bases[6] = {10, 20, 30, 40, 50, 60}; /* by role: kernel, bias, gamma, beta, mean, var */
    for (int i = 0; i < 6; i++) fx_vec(g, order[i], 2, bases[i]);
    H5Gclose(g);
    if (!dup) {
        g = fx_group(root, "other");
        const char *wo[] = {"d/kernel:0", "d/bias:0"};
        fx_strings(g, "weight_names", wo, 2, 0);
        fx_vec(g, wo[0], 2, 70);
        fx_vec(g, wo[1], 2, 80);
        H5Gclose(g);
    }
    H5Gclose(root);
    H5Fclose(f);
}

static void test_legacy_nested(void **state) {
    (void)state;
    for (int frozen = 0; frozen < 2; frozen++) {
        const char *path = tp(frozen ? "nested_frozen.h5" : "nested.h5");
        make_legacy_nested(path, frozen, 0);
        fusenet_error err;
        fn_h5 *f = NULL;
        expect_ok(fusenet__h5_open(path, &f, &err), &err);
        assert_int_equal(fusenet__h5_submodel_count(f), 2);
        assert_string_equal(fusenet__h5_submodel_name(f, 0), "backbone");
        assert_string_equal(fusenet__h5_submodel_name(f, 1), "other");
        assert_null(fusenet__h5_submodel_name(f, 2));
        /* no sub-model named: the top level has no weights of its own, two sub-models */
        expect_error(fusenet__h5_select(f, NULL, &err), FUSENET_ERR_ARCH, &err, path);
        expect_in(&err, "holds 2 sub-models (backbone, other)");
        expect_error(fusenet__h5_select(f, "nope", &err), FUSENET_ERR_ARCH, &err, path);
        expect_in(&err, "no sub-model 'nope'; the file holds: backbone, other");
        expect_ok(fusenet__h5_select(f, "backbone", &err), &err);
        assert_string_equal(fusenet__h5_selected(f), "backbone");
        assert_int_equal(fusenet__h5_layer_count(f), 2);
        assert_string_equal(fusenet__h5_layer_name(f, 0), "c");
        const float cb[2] = {10, 20}, bb[4] = {30, 40, 50, 60};
        expect_layer(f, "c", 2, conv_roles, cb);
        expect_layer(f, "b", 4, bn_roles, bb);
        /* a role the layer does not have */
        float v[2][2];
        fn_wspec s[2] = {{"kernel", 1, {2}, v[0]}, {"depthwise_kernel", 1, {2}, v[1]}};
        expect_error(fusenet__h5_read_layer(f, "c", 2, s, 0, &err), FUSENET_ERR_ARCH, &err, path);
        expect_in(&err, "layer c has no weight depthwise_kernel");
        expect_error(fusenet__h5_read_layer(f, "c", 1, s, 0, &err), FUSENET_ERR_ARCH, &err, path);
        expect_in(&err, "layer c has 2 weights, expected 1");
        expect_ok(fusenet__h5_select(f, "other", &err), &err);
        const float db[2] = {70, 80};
        expect_layer(f, "d", 2, conv_roles, db);
        fusenet__h5_close(f);
    }
    /* layer_names listing one nested model twice */
    const char *path = tp("nested_dup.h5");
    make_legacy_nested(path, 0, 1);
    fusenet_error err;
    fn_h5 *f = NULL;
    expect_error(fusenet__h5_open(path, &f, &err), FUSENET_ERR_FORMAT, &err, path);
    expect_in(&err, "two sub-models are named 'backbone'");
    assert_null(f);
}

/* ---- Keras 3 ---------------------------------------------------------------- */

/* layers/<key>/vars with n datasets 0.. (base, base + 10, ...), the name
 * attribute if name; returns nothing. `bad` renames dataset 1 to that. */
static void k3_layer(hid_t layers, const char *key, const char *name, int n, float base, const char *bad) {
    hid_t g = fx_group(layers, key);
    hid_t v = fx_group(g, "vars");
    if (name) fx_vlen_attr(v, "name", name);
    for (int i = 0; i < n; i++) {
        char num[16];
        snprintf(num, sizeof num, "%d", i);
        fx_vec(v, i == 1 && bad ? bad : num, 2, base + 10.0f * (float)i);
    }
    H5Gclose(v);
    H5Gclose(g);
}

/* A small Keras 3 model: input_layer, conv2d (c1), batch_normalization (bn),
 * conv2d_1 (c2), in model.layers order; named if `named`. */
static void k3_small(hid_t parent, int named, const char *lie_c2) {
    hid_t layers = fx_group(parent, "layers");
    k3_layer(layers, "input_layer", named ? "in" : NULL, 0, 0, NULL);
    k3_layer(layers, "conv2d", named ? "c1" : NULL, 2, 100, NULL);
    k3_layer(layers, "batch_normalization", named ? "bn" : NULL, 4, 200, NULL);
    k3_layer(layers, "conv2d_1", lie_c2 ? lie_c2 : named ? "c2" : NULL, 2, 300, NULL);
    H5Gclose(layers);
}

static const char *const small_names[] = {"in", "c1", "bn", "c2"};
static const char *const small_classes[] = {"InputLayer", "Conv2D", "BatchNormalization", "Conv2D"};

static fn_h5 *open_bound(const char *path, const char *sub, fusenet_status want, const char *msg) {
    fusenet_error err;
    fn_h5 *f = NULL;
    expect_ok(fusenet__h5_open(path, &f, &err), &err);
    expect_ok(fusenet__h5_select(f, sub, &err), &err);
    fusenet_status st = fusenet__h5_bind(f, 4, small_names, small_classes, &err);
    if (st != want) fprintf(stderr, "%s: bind gave %s: %s\n", path, fusenet_status_name(st), err.message);
    assert_int_equal(st, want);
    if (msg) expect_in(&err, msg);
    if (st != FUSENET_OK) {
        fusenet__h5_close(f);
        return NULL;
    }
    return f;
}

static void check_small(fn_h5 *f) {
    const float c1[2] = {100, 110}, bn[4] = {200, 210, 220, 230}, c2[2] = {300, 310};
    expect_layer(f, "c1", 2, conv_roles, c1);
    expect_layer(f, "bn", 4, bn_roles, bn);
    expect_layer(f, "c2", 2, conv_roles, c2);
}

static void test_keras3_plain(void **state) {
    (void)state;
    for (int named = 0; named < 2; named++) {
        const char *path = tp(named ? "k3_named.weights.h5" : "k3_unnamed.weights.h5");
        hid_t f = fx_create(path);
        hid_t v = fx_group(f, "vars");
        if (named) fx_vlen_attr(v, "name", "tiny"); /* the model's own name */
        H5Gclose(v);
        k3_small(f, named, NULL);
        hid_t o = fx_group(f, "optimizer"); /* other saveables: not layers */
        k3_layer(o, "adam", NULL, 1, 0, NULL);
        H5Gclose(o);
        H5Fclose(f);
        fn_h5 *h = open_bound(path, named ? "tiny" : NULL, FUSENET_OK, NULL); /* named: also by its name */
        assert_int_equal(fusenet__h5_submodel_count(h), 0);
        check_small(h);
        size_t n = 9;
        fusenet_error err;
        expect_ok(fusenet__h5_layer_weight_count(h, "in", &n, &err), &err);
        assert_int_equal(n, 0);
        fusenet__h5_close(h);
    }
}

static void test_keras3_refusals(void **state) {
    (void)state;
    fusenet_error err;
    fn_h5 *h = NULL;
    /* names that lie: the Conv2D group says it is bn, the BatchNormalization group c1 */
    const char *path = tp("k3_lie.weights.h5");
    hid_t f = fx_create(path);
    hid_t lg = fx_group(f, "layers");
    k3_layer(lg, "input_layer", "in", 0, 0, NULL);
    k3_layer(lg, "conv2d", "bn", 2, 100, NULL);
    k3_layer(lg, "batch_normalization", "c1", 4, 200, NULL);
    k3_layer(lg, "conv2d_1", "c2", 2, 300, NULL);
    H5Gclose(lg);
    H5Fclose(f);
    assert_null(open_bound(path, NULL, FUSENET_ERR_FORMAT,
                           "layers/batch_normalization is named 'c1', but 'c1' is a Conv2D"));
    /* a name that lies within a class: two groups name c1 */
    path = tp("k3_twice.weights.h5");
    f = fx_create(path);
    k3_small(f, 1, "c1");
    H5Fclose(f);
    assert_null(open_bound(path, NULL, FUSENET_ERR_FORMAT, "both name layer 'c1'"));
    /* missing and extra variables */
    static const struct {
        const char *file;
        int n;
        const char *bad, *msg;
        fusenet_status open_st;
    } vars[] = {
        {"k3_gap.weights.h5", 3, "3", "holds '3': expected variables 0..2", FUSENET_ERR_FORMAT},
        {"k3_alien.weights.h5", 2, "kernel", "holds 'kernel': expected variables 0..1", FUSENET_ERR_FORMAT},
        {"k3_lead0.weights.h5", 2, "01", "holds '01'", FUSENET_ERR_FORMAT},
        {"k3_extra.weights.h5", 3, NULL, "layer c1 has 3 weights, expected 2 (kernel, bias)", FUSENET_OK},
        {"k3_short.weights.h5", 1, NULL, "layer c1 has 1 weight, expected 2 (kernel, bias)", FUSENET_OK},
    };
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        path = tp(vars[i].file);
        f = fx_create(path);
        hid_t layers = fx_group(f, "layers");
        k3_layer(layers, "conv2d", "c1", vars[i].n, 100, vars[i].bad);
        H5Gclose(layers);
        H5Fclose(f);
        fusenet_status st = fusenet__h5_open(path, &h, &err);
        assert_int_equal(st, vars[i].open_st);
        if (st != FUSENET_OK) {
            expect_in(&err, vars[i].msg);
            assert_null(h);
            continue;
        }
        float v[2][2];
        fn_wspec s[2] = {{"kernel", 1, {2}, v[0]}, {"bias", 1, {2}, v[1]}};
        expect_error(fusenet__h5_read_layer(h, "c1", 2, s, 0, &err), FUSENET_ERR_ARCH, &err, path);
        expect_in(&err, vars[i].msg);
        fusenet__h5_close(h);
    }
    /* a vars entry holding a group where a dataset belongs */
    path = tp("k3_group_var.weights.h5");
    f = fx_create(path);
    hid_t layers = fx_group(f, "layers");
    hid_t g = fx_group(layers, "conv2d");
    hid_t v = fx_group(g, "vars");
    fx_vec(v, "0", 2, 1);
    H5Gclose(fx_group(v, "1"));
    H5Gclose(v);
    H5Gclose(g);
    H5Gclose(layers);
    H5Fclose(f);
    expect_ok(fusenet__h5_open(path, &h, &err), &err);
    float w[2][2];
    fn_wspec s[2] = {{"kernel", 1, {2}, w[0]}, {"bias", 1, {2}, w[1]}};
    const char *names1[] = {"c"}, *classes1[] = {"Conv2D"};
    expect_ok(fusenet__h5_bind(h, 1, names1, classes1, &err), &err);
    expect_error(fusenet__h5_read_layer(h, "c", 2, s, 0, &err), FUSENET_ERR_FORMAT, &err, path);
    expect_in(&err, "layers/conv2d/vars/1 (bias): not a dataset");
    fusenet__h5_close(h);
}

/* The fused model: input_layer, functional (ResNet-shaped: BatchNormalization),
 * functional_1 (VGG-shaped), resizing, concatenate. */
static void make_k3_fused(const char *path, int named, int same_shape, const char *name2) {
    hid_t f = fx_create(path);
    hid_t layers = fx_group(f, "layers");
    k3_layer(layers, "input_layer", named ? "input_layer" : NULL, 0, 0, NULL);
    for (int k = 0; k < 2; k++) {
        hid_t g = fx_group(layers, k ? "functional_1" : "functional");
        hid_t v = fx_group(g, "vars");
        if (named) fx_vlen_attr(v, "name", k ? name2 : "resnet50");
        H5Gclose(v);
        if (k == 0 || same_shape) {
            k3_small(g, named, NULL);
        } else {
            hid_t inner = fx_group(g, "layers");
            k3_layer(inner, "input_layer", named ? "in" : NULL, 0, 0, NULL);
            k3_layer(inner, "conv2d", named ? "c1" : NULL, 2, 500, NULL);
            k3_layer(inner, "conv2d_1", named ? "c2" : NULL, 2, 600, NULL);
            k3_layer(inner, "max_pooling2d", named ? "p" : NULL, 0, 0, NULL);
            H5Gclose(inner);
        }
        H5Gclose(g);
    }
    k3_layer(layers, "resizing", named ? "resizing" : NULL, 0, 0, NULL);
    k3_layer(layers, "concatenate", named ? "concatenate" : NULL, 0, 0, NULL);
    H5Gclose(layers);
    H5Fclose(f);
}

static void test_keras3_nested(void **state) {
    (void)state;
    fusenet_error err;
    for (int named = 0; named < 2; named++) {
        const char *path = tp(named ? "k3_fused_named.weights.h5" : "k3_fused.weights.h5");
        make_k3_fused(path, named, 0, "vgg16");
        fn_h5 *h = NULL;
        expect_ok(fusenet__h5_open(path, &h, &err), &err);
        assert_int_equal(fusenet__h5_submodel_count(h), 2);
        /* unnamed: told apart by shape (BatchNormalization: a ResNet; convs only: a VGG) */
        assert_string_equal(fusenet__h5_submodel_name(h, 0), "resnet50");
        assert_string_equal(fusenet__h5_submodel_name(h, 1), "vgg16");
        expect_error(fusenet__h5_select(h, NULL, &err), FUSENET_ERR_ARCH, &err, path);
        expect_in(&err, "(resnet50, vgg16)");
        fusenet__h5_close(h);
        h = open_bound(path, "resnet50", FUSENET_OK, NULL);
        check_small(h);
        fusenet__h5_close(h);
        h = NULL;
        if (!named) { /* the VGG-shaped tree read as a network with BatchNormalization */
            expect_ok(fusenet__h5_open(path, &h, &err), &err);
            expect_ok(fusenet__h5_select(h, "vgg16", &err), &err);
            expect_error(fusenet__h5_bind(h, 4, small_names, small_classes, &err), FUSENET_ERR_ARCH, &err, path);
            expect_in(&err, "sub-model 'vgg16' (Keras 3, no layer names) has 2 Conv2D and 0 BatchNormalization "
                            "layers: a VGG, not the network read (1 BatchNormalization layers)");
            fusenet__h5_close(h);
            h = NULL;
        }
        expect_ok(fusenet__h5_open(path, &h, &err), &err);
        expect_ok(fusenet__h5_select(h, "vgg16", &err), &err);
        const char *names[] = {"in", "c1", "c2", "p"};
        const char *classes[] = {"InputLayer", "Conv2D", "Conv2D", "MaxPooling2D"};
        expect_ok(fusenet__h5_bind(h, 4, names, classes, &err), &err);
        const float c1[2] = {500, 510}, c2[2] = {600, 610};
        expect_layer(h, "c1", 2, conv_roles, c1);
        expect_layer(h, "c2", 2, conv_roles, c2);
        fusenet__h5_close(h);
    }
    /* two sub-models named alike by their attributes */
    const char *path = tp("k3_fused_dup.weights.h5");
    make_k3_fused(path, 1, 0, "resnet50");
    fn_h5 *h = NULL;
    expect_error(fusenet__h5_open(path, &h, &err), FUSENET_ERR_FORMAT, &err, path);
    expect_in(&err, "two sub-models are named 'resnet50'");
    /* two unnamed sub-models of one shape: their group names, not a guess for both */
    path = tp("k3_fused_twins.weights.h5");
    make_k3_fused(path, 0, 1, NULL);
    expect_ok(fusenet__h5_open(path, &h, &err), &err);
    assert_string_equal(fusenet__h5_submodel_name(h, 0), "functional");
    assert_string_equal(fusenet__h5_submodel_name(h, 1), "functional_1");
    fusenet__h5_close(h);
    h = open_bound(path, "functional_1", FUSENET_OK, NULL);
    check_small(h);
    fusenet__h5_close(h);
}

/* ---- the memory backend ------------------------------------------------------ */

static void test_open_mem(void **state) {
    (void)state;
    const char *path = tp("k3_mem.weights.h5");
    hid_t f = fx_create(path);
    k3_small(f, 1, NULL);
    H5Fclose(f);
    FILE *in = fopen(path, "rb");
    assert_non_null(in);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    uint8_t *buf = fusenet__malloc((size_t)sb.st_size);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)sb.st_size, in), (size_t)sb.st_size);
    fclose(in);
    fusenet_error err;
    fn_hdf *h = NULL;
    expect_ok(fusenet__hdf_open_mem("mem.h5", buf, (size_t)sb.st_size, &h, &err), &err);
    char **names = NULL;
    size_t n = 0;
    fn_hdf_obj layers;
    int found = 0;
    expect_ok(fusenet__hdf_lookup(h, fusenet__hdf_root(h), "layers", "root", &layers, &found, &err), &err);
    assert_true(found);
    expect_ok(fusenet__hdf_children(h, layers, "layers", &names, &n, &err), &err);
    assert_int_equal(n, 4); /* sorted */
    assert_string_equal(names[0], "batch_normalization");
    assert_string_equal(names[1], "conv2d");
    assert_string_equal(names[2], "conv2d_1");
    assert_string_equal(names[3], "input_layer");
    fusenet__hdf_names_free(names, n);
    fusenet__hdf_close(h);
    /* a truncated copy in memory: an error, never a read past the buffer */
    uint8_t *half = fusenet__malloc((size_t)sb.st_size / 2);
    assert_non_null(half);
    in = fopen(path, "rb");
    assert_int_equal(fread(half, 1, (size_t)sb.st_size / 2, in), (size_t)sb.st_size / 2);
    fclose(in);
    expect_error(fusenet__hdf_open_mem("half.h5", half, (size_t)sb.st_size / 2, &h, &err), FUSENET_ERR_FORMAT, &err,
                 "half.h5");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_snake_case),   cmocka_unit_test(test_legacy_nested),
        cmocka_unit_test(test_keras3_plain), cmocka_unit_test(test_keras3_refusals),
        cmocka_unit_test(test_keras3_nested), cmocka_unit_test(test_open_mem),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
