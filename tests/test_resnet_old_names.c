/* test_resnet_old_names.c - old Keras ResNet50 files (deep-learning-models v0.2
 * naming: conv1, bn_conv1, res2a_branch2a, ..., fc1000; BatchNorm epsilon 1e-3):
 * the name mapping of models/resnet_old_names.c against names written out by
 * hand from keras_applications/resnet50.py, and loading such a file: the same
 * weights as the current-naming file holding the same values, the old
 * epsilon, and the refusals (mixed naming, another model, a missing layer). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "fusenet.h"
#include "h5.h"
#include "model.h"
#include "models.h"
#include "random_weights.h"
#include "test_util.h"

#define DIR FN_BUILD_DIR "/"
#define CURRENT DIR "old_names_current.h5"
#define OLD DIR "old_names_old.h5"
#define MIXED DIR "old_names_mixed.h5"
#define MISSING DIR "old_names_missing.h5"

/* Written from identity_block / conv_block of keras_applications/resnet50.py
 * (conv_name_base = 'res' + str(stage) + block + '_branch', bn_name_base = 'bn' + ...). */
static const char *const pairs[][2] = {
    {"conv1_conv", "conv1"},
    {"conv1_bn", "bn_conv1"},
    {"conv2_block1_1_conv", "res2a_branch2a"},
    {"conv2_block1_1_bn", "bn2a_branch2a"},
    {"conv2_block1_2_conv", "res2a_branch2b"},
    {"conv2_block1_3_bn", "bn2a_branch2c"},
    {"conv2_block1_0_conv", "res2a_branch1"},
    {"conv2_block1_0_bn", "bn2a_branch1"},
    {"conv3_block4_3_bn", "bn3d_branch2c"},
    {"conv4_block6_2_conv", "res4f_branch2b"},
    {"conv5_block3_1_bn", "bn5c_branch2a"},
    {"conv5_block1_0_conv", "res5a_branch1"},
    {"predictions", "fc1000"},
};

static void test_names_by_hand(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        char got[FN_NAME_MAX] = "";
        assert_int_equal(fusenet__resnet_old_name(pairs[i][0], got, sizeof got), 1);
        assert_string_equal(got, pairs[i][1]);
        assert_int_equal(fusenet__resnet_current_name(pairs[i][1], got, sizeof got), 1);
        assert_string_equal(got, pairs[i][0]);
    }
}

/* Weightless layers have no old name; names of neither naming map to nothing. */
static void test_no_name(void **state) {
    (void)state;
    const char *current[] = {"conv1_pad", "conv1_relu", "pool1_pad", "pool1_pool", "conv4_block6_out",
                             "conv2_block1_add", "conv2_block1_1_relu", "avg_pool", "input_1",
                             "conv6_block1_1_conv", "conv1_block1_1_conv", "conv2_block0_1_conv",
                             "conv2_block1_4_conv", "conv2_block1_1_conv_", "conv02_block1_1_conv",
                             "conv2_block01_1_conv", "conv2_block+1_1_conv", "block1_conv1", ""};
    const char *old[] = {"res2a_branch3", "res6a_branch2a", "res1a_branch2a", "res2a_branch2a_",
                         "res2A_branch2a", "bn_conv2", "res2a_branch", "res2_branch2a", "rs2a_branch2a",
                         "bn2a_branch2d", "conv1_conv", "activation_1", "fc1001", ""};
    char buf[FN_NAME_MAX];
    for (size_t i = 0; i < sizeof current / sizeof current[0]; i++)
        if (fusenet__resnet_old_name(current[i], buf, sizeof buf)) fail_msg("%s mapped to %s", current[i], buf);
    for (size_t i = 0; i < sizeof old / sizeof old[0]; i++)
        if (fusenet__resnet_current_name(old[i], buf, sizeof buf)) fail_msg("%s mapped to %s", old[i], buf);
}

/* Every layer with weights of ResNet50 (with its top) has a distinct old name,
 * which maps back: 53 convs, 53 BatchNorms and the classifier. */
static void test_every_weighted_layer(void **state) {
    (void)state;
    fusenet_model *m = fx_model_create(FUSENET_ARCH_RESNET50, 1, FUSENET_POOLING_NONE);
    static char names[200][FN_NAME_MAX];
    int n = 0;
    for (int i = 0; i < m->g.n; i++) {
        const fn_node *node = &m->g.nodes[i];
        char back[FN_NAME_MAX];
        int has = fusenet__resnet_old_name(node->name, names[n], FN_NAME_MAX);
        assert_int_equal(has, fusenet__ops[node->op].n_weights > 0);
        if (!has) continue;
        assert_int_equal(fusenet__resnet_current_name(names[n], back, sizeof back), 1);
        assert_string_equal(back, node->name);
        for (int j = 0; j < n; j++) assert_string_not_equal(names[j], names[n]);
        n++;
    }
    assert_int_equal(n, 107);
    fusenet_model_free(m);
}

/* Writes the weights of model m under old names (Keras-1 flat weight names, as
 * in the v0.2 file), except the layer named `keep_current` (may be NULL) and
 * without the layer named `drop` (may be NULL). */
static void write_old(const fusenet_model *m, const char *path, const char *keep_current, const char *drop) {
    static fn_h5_layer_out layers[400];
    static fn_wspec specs[400][FN_MAX_WEIGHTS];
    static char lnames[400][FN_NAME_MAX], wnames[400][FN_MAX_WEIGHTS][2 * FN_NAME_MAX];
    static const char *wptr[400][FN_MAX_WEIGHTS];
    fn_shape shapes[400];
    fusenet_error err;
    assert_true(m->g.n <= 400);
    expect_ok(fusenet__graph_shapes(&m->g, 224, 224, shapes, &err), &err);
    size_t n = 0;
    for (int i = 0; i < m->g.n; i++) {
        const fn_node *node = &m->g.nodes[i];
        if (drop && strcmp(node->name, drop) == 0) continue;
        int count = fusenet__node_wspecs(&m->g, shapes, i, specs[n]);
        int current = keep_current && strcmp(node->name, keep_current) == 0;
        if (current || !fusenet__resnet_old_name(node->name, lnames[n], FN_NAME_MAX))
            snprintf(lnames[n], FN_NAME_MAX, "%s", node->name);
        for (int k = 0; k < count; k++) {
            snprintf(wnames[n][k], sizeof wnames[n][k], "%s_%s:0", lnames[n],
                     fusenet__ops[node->op].weights[k].keras1);
            wptr[n][k] = wnames[n][k];
            specs[n][k].data = node->w[k];
        }
        layers[n] = (fn_h5_layer_out){lnames[n], (size_t)count, wptr[n], specs[n]};
        n++;
    }
    expect_ok(fusenet__h5_write(path, layers, n, &err), &err);
}

static size_t weight_floats(const fusenet_model *m, int i, int k) {
    fn_shape shapes[400];
    fn_wspec specs[FN_MAX_WEIGHTS];
    fusenet_error err;
    expect_ok(fusenet__graph_shapes(&m->g, 224, 224, shapes, &err), &err);
    fusenet__node_wspecs(&m->g, shapes, i, specs);
    size_t c = 1;
    for (int d = 0; d < specs[k].rank; d++) c *= (size_t)specs[k].dims[d];
    return c;
}

static int setup(void **state) {
    (void)state;
    fusenet_error err;
    if (fusenet__write_random_weights(FUSENET_ARCH_RESNET50, 1, 11, CURRENT, &err) != FUSENET_OK) {
        fprintf(stderr, "%s\n", err.message);
        return -1;
    }
    fusenet_model_params p = fusenet_model_default_params();
    p.include_top = 1;
    fusenet_model *m = NULL;
    if (fusenet_model_load(CURRENT, &p, &m, &err) != FUSENET_OK) {
        fprintf(stderr, "%s\n", err.message);
        return -1;
    }
    write_old(m, OLD, NULL, NULL);
    write_old(m, MIXED, "conv3_block2_2_conv", NULL);
    write_old(m, MISSING, NULL, "conv4_block3_1_bn");
    fusenet_model_free(m);
    return 0;
}

/* The old file gives the same weights as the current one, every BatchNorm gets
 * epsilon 1e-3 (the current file keeps 1.001e-5), and the layer names stay the
 * current ones. */
static void test_load_old_file(void **state) {
    (void)state;
    fusenet_model_params p = fusenet_model_default_params();
    p.include_top = 1;
    fusenet_model *cur = NULL, *old = NULL;
    fusenet_error err;
    expect_ok(fusenet_model_load(CURRENT, &p, &cur, &err), &err);
    expect_ok(fusenet_model_load(OLD, &p, &old, &err), &err);
    assert_int_equal(cur->g.n, old->g.n);
    int bns = 0;
    for (int i = 0; i < cur->g.n; i++) {
        const fn_node *a = &cur->g.nodes[i], *b = &old->g.nodes[i];
        assert_string_equal(a->name, b->name);
        for (int k = 0; k < fusenet__ops[a->op].n_weights; k++) {
            assert_non_null(b->w[k]);
            assert_memory_equal(a->w[k], b->w[k], weight_floats(cur, i, k) * sizeof(float));
        }
        if (a->op == FN_OP_BATCH_NORM) {
            assert_true(a->epsilon == 1.001e-5f);
            assert_true(b->epsilon == 1e-3f);
            bns++;
        }
    }
    assert_int_equal(bns, 53);
    size_t index;
    expect_ok(fusenet_model_find_layer(old, "conv4_block6_out", &index, &err), &err);
    expect_error(fusenet_model_find_layer(old, "res4f_branch2c", &index, &err), FUSENET_ERR_UNKNOWN_LAYER, &err,
                 "res4f_branch2c");
    fusenet_model_free(cur);
    fusenet_model_free(old);
    /* a notop model from the full old file: fc1000 is its top, not an extra layer */
    expect_ok(fusenet_model_load(OLD, NULL, &old, &err), &err);
    fusenet_model_free(old);
}

static void test_refusals(void **state) {
    (void)state;
    fusenet_model *m = NULL;
    fusenet_error err;
    expect_error(fusenet_model_load(MIXED, NULL, &m, &err), FUSENET_ERR_ARCH, &err,
                 "conv3_block2_2_conv");
    assert_non_null(strstr(err.message, "bn_conv1"));
    assert_non_null(strstr(err.message, "mixes"));
    assert_null(m);
    expect_error(fusenet_model_load(MISSING, NULL, &m, &err), FUSENET_ERR_ARCH, &err,
                 "bn4c_branch2a");
    assert_non_null(strstr(err.message, "conv4_block3_1_bn"));
    assert_non_null(strstr(err.message, "missing"));
    fusenet_model_params p = fusenet_model_default_params();
    fusenet_arch others[] = {FUSENET_ARCH_RESNET101, FUSENET_ARCH_RESNET152, FUSENET_ARCH_VGG16, FUSENET_ARCH_VGG19};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        p.arch = others[i];
        expect_error(fusenet_model_load(OLD, &p, &m, &err), FUSENET_ERR_ARCH, &err, "old Keras ResNet50");
        assert_non_null(strstr(err.message, fusenet__arch(others[i])->keras_name));
    }
    /* a current file is never read through the old names */
    expect_ok(fusenet_model_load(CURRENT, NULL, &m, &err), &err);
    assert_int_equal(m->old_resnet_names, 0);
    fusenet_model_free(m);
}

/* The four files are about 100 MB each: gone after the group, failed or not. */
static int teardown(void **state) {
    (void)state;
    remove(CURRENT);
    remove(OLD);
    remove(MIXED);
    remove(MISSING);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_by_hand),
        cmocka_unit_test(test_no_name),
        cmocka_unit_test(test_every_weighted_layer),
        cmocka_unit_test(test_load_old_file),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
