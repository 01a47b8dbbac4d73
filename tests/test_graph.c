/* test_graph.c - model graphs (names, order, shapes, parameter counts), pruning,
 * loading only the needed weights, and argument checking of the public API.
 * Expected values are Keras' published figures and hand computations from the
 * architecture (ceil(H/16) for ResNet's conv4 stage, floor(H/16) for VGG's block5). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "fusenet.h"
#include "model.h"
#include "net.h"
#include "test_util.h"

static long long total_params(const fusenet_model *m) {
    long long total = 0;
    for (size_t i = 0; i < fusenet_model_layer_count(m); i++) {
        fusenet_layer_info info;
        expect_ok(fusenet_model_layer_info(m, i, 224, 224, &info, NULL), NULL);
        total += info.params;
    }
    return total;
}

static void layer_shape(const fusenet_model *m, const char *name, int h, int w, int32_t *oh, int32_t *ow,
                        int32_t *oc) {
    size_t i;
    expect_ok(fusenet_model_find_layer(m, name, &i, NULL), NULL);
    fusenet_layer_info info;
    expect_ok(fusenet_model_layer_info(m, i, h, w, &info, NULL), NULL);
    *oh = info.h;
    *ow = info.w;
    *oc = info.c;
}

static void test_counts_and_params(void **state) {
    (void)state;
    struct {
        fusenet_arch arch;
        int top;
        fusenet_pooling pooling;
        size_t layers;
        long long params;
    } cases[] = {
        {FUSENET_ARCH_RESNET50, 0, FUSENET_POOLING_NONE, 175, 23587712},
        {FUSENET_ARCH_RESNET50, 1, FUSENET_POOLING_NONE, 177, 25636712},
        {FUSENET_ARCH_RESNET50, 0, FUSENET_POOLING_AVG, 176, 23587712},
        {FUSENET_ARCH_VGG16, 0, FUSENET_POOLING_NONE, 19, 14714688},
        {FUSENET_ARCH_VGG16, 1, FUSENET_POOLING_NONE, 23, 138357544},
        {FUSENET_ARCH_VGG16, 0, FUSENET_POOLING_MAX, 20, 14714688},
        /* Keras' published totals (notop and full); layers: stem 7 + 10 per block + 2 per projection */
        {FUSENET_ARCH_RESNET101, 0, FUSENET_POOLING_NONE, 345, 42658176},
        {FUSENET_ARCH_RESNET101, 1, FUSENET_POOLING_NONE, 347, 44707176},
        {FUSENET_ARCH_RESNET152, 0, FUSENET_POOLING_NONE, 515, 58370944},
        {FUSENET_ARCH_RESNET152, 1, FUSENET_POOLING_NONE, 517, 60419944},
        {FUSENET_ARCH_VGG19, 0, FUSENET_POOLING_NONE, 22, 20024384},
        {FUSENET_ARCH_VGG19, 1, FUSENET_POOLING_NONE, 26, 143667240},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        fusenet_model *m = fx_model_create(cases[k].arch, cases[k].top, cases[k].pooling);
        assert_int_equal(fusenet_model_layer_count(m), cases[k].layers);
        assert_int_equal(total_params(m), cases[k].params);
        fusenet_model_free(m);
    }
}

static void test_names_and_order(void **state) {
    (void)state;
    fusenet_model *m = fx_model_create(FUSENET_ARCH_RESNET50, 0, FUSENET_POOLING_NONE);
    fusenet_layer_info info;
    /* Keras' model.layers order puts the projection shortcut after _2_relu. */
    const char *expect[] = {"input_1", "conv1_pad", "conv1_conv", "conv1_bn", "conv1_relu", "pool1_pad", "pool1_pool",
                            "conv2_block1_1_conv", "conv2_block1_1_bn", "conv2_block1_1_relu",
                            "conv2_block1_2_conv", "conv2_block1_2_bn", "conv2_block1_2_relu",
                            "conv2_block1_0_conv", "conv2_block1_3_conv", "conv2_block1_0_bn", "conv2_block1_3_bn",
                            "conv2_block1_add", "conv2_block1_out"};
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++) {
        expect_ok(fusenet_model_layer_info(m, i, 224, 224, &info, NULL), NULL);
        assert_string_equal(info.name, expect[i]);
    }
    expect_ok(fusenet_model_layer_info(m, 174, 224, 224, &info, NULL), NULL);
    assert_string_equal(info.name, "conv5_block3_out");
    assert_string_equal(info.type, "Activation");
    fusenet_model_free(m);

    m = fx_model_create(FUSENET_ARCH_VGG16, 1, FUSENET_POOLING_NONE);
    expect_ok(fusenet_model_layer_info(m, 17, 224, 224, &info, NULL), NULL);
    assert_string_equal(info.name, "block5_conv3");
    expect_ok(fusenet_model_layer_info(m, 19, 224, 224, &info, NULL), NULL);
    assert_string_equal(info.name, "flatten");
    assert_int_equal(info.c, 25088);
    assert_int_equal(info.h, 0);
    fusenet_model_free(m);
}

static void test_shapes(void **state) {
    (void)state;
    fusenet_model *r = fx_model_create(FUSENET_ARCH_RESNET50, 0, FUSENET_POOLING_NONE);
    fusenet_model *v = fx_model_create(FUSENET_ARCH_VGG16, 0, FUSENET_POOLING_NONE);
    int32_t h, w, c;
    layer_shape(r, "conv4_block6_out", 224, 224, &h, &w, &c);
    assert_true(h == 14 && w == 14 && c == 1024);
    layer_shape(v, "block5_conv3", 224, 224, &h, &w, &c);
    assert_true(h == 14 && w == 14 && c == 512);
    /* 97 x 131: ceil(97/16) = 7, ceil(131/16) = 9; floor: 6, 8 */
    layer_shape(r, "conv4_block6_out", 97, 131, &h, &w, &c);
    assert_true(h == 7 && w == 9);
    layer_shape(v, "block5_conv3", 97, 131, &h, &w, &c);
    assert_true(h == 6 && w == 8);
    /* stem at 97 x 131: conv1 ceil(H/2), pool1 ceil(H/4); padded 103 x 137 */
    layer_shape(r, "conv1_pad", 97, 131, &h, &w, &c);
    assert_true(h == 103 && w == 137 && c == 3);
    layer_shape(r, "conv1_conv", 97, 131, &h, &w, &c);
    assert_true(h == 49 && w == 66);
    layer_shape(r, "pool1_pool", 97, 131, &h, &w, &c);
    assert_true(h == 25 && w == 33);
    /* spec examples for conv4_block6_out: 200 -> 13, 225 -> 15, 32 -> 2, 33 -> 3 */
    layer_shape(r, "conv4_block6_out", 200, 225, &h, &w, &c);
    assert_true(h == 13 && w == 15);
    layer_shape(r, "conv4_block6_out", 32, 33, &h, &w, &c);
    assert_true(h == 2 && w == 3);
    layer_shape(v, "block5_pool", 200, 225, &h, &w, &c);
    assert_true(h == 6 && w == 7);
    fusenet_layer_info info;
    fusenet_error err;
    expect_error(fusenet_model_layer_info(r, 0, 31, 224, &info, &err), FUSENET_ERR_SHAPE, &err, "31x224");
    fusenet_model_free(r);
    fusenet_model_free(v);
}

/* Every op has a row in the op table; the weight shapes it gives are Keras'
 * (conv1_conv (7,7,3,64) + (64,), conv1_bn 4 x (64,), fc1 (25088,4096) + (4096,)). */
static void test_op_table(void **state) {
    (void)state;
    for (int op = 0; op < FN_OP_COUNT; op++) {
        assert_non_null(fusenet__ops[op].keras_class);
        assert_true(fusenet__ops[op].n_weights <= FN_MAX_WEIGHTS);
        for (int k = 0; k < fusenet__ops[op].n_weights; k++) assert_non_null(fusenet__ops[op].weights[k].role);
    }
    struct {
        fusenet_arch arch;
        int top;
        const char *layer;
        int k, rank;
        int64_t dims[4];
    } cases[] = {
        {FUSENET_ARCH_RESNET50, 0, "conv1_conv", 0, 4, {7, 7, 3, 64}},
        {FUSENET_ARCH_RESNET50, 0, "conv1_conv", 1, 1, {64}},
        {FUSENET_ARCH_RESNET50, 0, "conv1_bn", 3, 1, {64}},
        {FUSENET_ARCH_RESNET50, 0, "conv2_block1_0_conv", 0, 4, {1, 1, 64, 256}},
        {FUSENET_ARCH_RESNET50, 1, "predictions", 0, 2, {2048, 1000}},
        {FUSENET_ARCH_VGG16, 1, "fc1", 0, 2, {25088, 4096}},
        {FUSENET_ARCH_VGG16, 1, "fc1", 1, 1, {4096}},
    };
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        fusenet_model *m = fx_model_create(cases[t].arch, cases[t].top, FUSENET_POOLING_NONE);
        fn_shape shapes[256];
        assert_true(m->g.n <= 256);
        expect_ok(fusenet__graph_shapes(&m->g, 224, 224, shapes, NULL), NULL);
        int64_t dims[FN_MAX_WEIGHT_RANK];
        int i = fusenet__graph_find(&m->g, cases[t].layer);
        assert_true(i >= 0);
        assert_int_equal(fusenet__node_weight_dims(&m->g, shapes, i, cases[t].k, dims), cases[t].rank);
        for (int d = 0; d < cases[t].rank; d++) assert_int_equal(dims[d], cases[t].dims[d]);
        fusenet_model_free(m);
    }
}

/* The builder checks each layer's inputs against its op's row (Add takes two,
 * the others one, existing nodes only) and names; the first failure sticks. */
static void test_builder_errors(void **state) {
    (void)state;
    struct {
        int which;
        const char *naming;
    } cases[] = {{0, "add_1 has an invalid input"},
                 {1, "relu_1 has an invalid input"},
                 {2, "duplicate layer name conv"},
                 {3, "too long"}};
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        fn_graph g;
        memset(&g, 0, sizeof g);
        int x = fusenet__input(&g, "input_1");
        int y = fusenet__conv2d(&g, x, 4, 3, 1, FN_PAD_SAME, FN_ACT_NONE, "conv");
        assert_true(x == 0 && y == 1);
        char longname[FN_NAME_MAX + 8];
        memset(longname, 'a', sizeof longname - 1);
        longname[sizeof longname - 1] = '\0';
        if (cases[t].which == 0) assert_int_equal(fusenet__add(&g, y, -1, "add_1"), -1);
        if (cases[t].which == 1) assert_int_equal(fusenet__relu(&g, 5, "relu_1"), -1);
        if (cases[t].which == 2) assert_int_equal(fusenet__relu(&g, y, "conv"), -1);
        if (cases[t].which == 3) assert_int_equal(fusenet__relu(&g, y, longname), -1);
        assert_int_equal(fusenet__relu(&g, y, "later"), -1); /* sticky */
        fusenet_error err;
        expect_error(fusenet__graph_finish(&g, &err), FUSENET_ERR_INVALID_ARG, &err, cases[t].naming);
        fusenet__graph_free(&g);
    }
}

static void test_pruning(void **state) {
    (void)state;
    fusenet_model *m = fx_model_create(FUSENET_ARCH_RESNET50, 0, FUSENET_POOLING_NONE);
    unsigned char live[256];
    int tap = fusenet__graph_find(&m->g, "conv2_block1_out");
    assert_true(tap > 0);
    fusenet__graph_live(&m->g, &tap, 1, live);
    int n_live = 0;
    for (int i = 0; i < m->g.n; i++) {
        if (!live[i]) continue;
        n_live++;
        assert_null(strstr(m->g.nodes[i].name, "conv3_"));
        assert_null(strstr(m->g.nodes[i].name, "block2"));
    }
    assert_int_equal(n_live, 19); /* input .. conv2_block1_out */
    int taps[2] = {tap, fusenet__graph_find(&m->g, "conv3_block1_1_relu")};
    fusenet__graph_live(&m->g, taps, 2, live);
    assert_true(live[fusenet__graph_find(&m->g, "conv2_block3_out")]);
    assert_false(live[fusenet__graph_find(&m->g, "conv3_block1_2_conv")]);
    assert_false(live[fusenet__graph_find(&m->g, "conv3_block1_0_conv")]);
    fusenet_model_free(m);
}

/* Loads only the weights a tap needs, and a net runs only the layers it needs. */
static void test_needed_weights_and_steps(void **state) {
    (void)state;
    const char *path = FN_BUILD_DIR "/graph_random_resnet50.h5";
    fusenet_error err;
    expect_ok(fusenet__write_random_weights(FUSENET_ARCH_RESNET50, 0, 7, path, &err), &err);
    fusenet_model_params p = fusenet_model_default_params();
    const char *needed[1] = {"conv2_block1_out"};
    p.needed_layers = needed;
    p.n_needed = 1;
    fusenet_model *m;
    expect_ok(fusenet_model_load(path, &p, &m, &err), &err);
    remove(path); /* the model holds what it read */
    for (int i = 0; i < m->g.n; i++) {
        int in_stage1 = i <= fusenet__graph_find(&m->g, "conv2_block1_out");
        int weighted = fusenet__node_weight_count(&m->g.nodes[i]) > 0;
        assert_int_equal(m->weights[i], in_stage1 && weighted ? FN_WEIGHTS_LOADED : FN_WEIGHTS_ABSENT);
    }
    fusenet_tap tap = {m, "conv2_block1_out"};
    fusenet_net_params np = fx_net_params(&tap, 1, 1, 64, 48, 0);
    fusenet_net *net;
    expect_ok(fusenet_net_build(&np, &net, &err), &err);
    for (int s = 0; s < net->n_steps; s++) {
        assert_null(strstr(net->steps[s].layer, "conv3_"));
        assert_null(strstr(net->steps[s].layer, "block2"));
    }
    fusenet_net_free(net);
    /* a tap beyond what was loaded is refused, naming the layer */
    tap.layer = "conv3_block1_out";
    expect_error(fusenet_net_build(&np, &net, &err), FUSENET_ERR_INVALID_ARG, &err, NULL);
    assert_null(net);
    assert_non_null(strstr(err.message, "no weights loaded"));
    fusenet_model_free(m);
}

static void test_unknown_layer(void **state) {
    (void)state;
    fusenet_model *m = fx_model_create(FUSENET_ARCH_VGG16, 0, FUSENET_POOLING_NONE);
    size_t i;
    fusenet_error err;
    expect_error(fusenet_model_find_layer(m, "block5_conv4", &i, &err), FUSENET_ERR_UNKNOWN_LAYER, &err, NULL);
    assert_int_equal(err.status, FUSENET_ERR_UNKNOWN_LAYER);
    assert_non_null(strstr(err.message, "block5_conv4"));
    assert_non_null(strstr(err.message, "did you mean: block5_conv"));
    fusenet_model_free(m);
}

static void test_null_and_bad_arguments(void **state) {
    (void)state;
    fusenet_error err;
    fusenet_model *m = (fusenet_model *)1;
    expect_error(fusenet_model_create(NULL, NULL, &err), FUSENET_ERR_INVALID_ARG, &err, NULL);
    fusenet_model_params p = fusenet_model_default_params();
    p.arch = (fusenet_arch)7;
    expect_error(fusenet_model_create(&p, &m, &err), FUSENET_ERR_INVALID_ARG, &err, NULL);
    assert_null(m);
    assert_non_null(strstr(err.message, "arch"));
    expect_error(fusenet_model_load(NULL, NULL, &m, &err), FUSENET_ERR_INVALID_ARG, &err, NULL);
    expect_error(fusenet_model_load("/nonexistent/x.h5", NULL, &m, &err), FUSENET_ERR_IO, &err, "/nonexistent/x.h5");
    fusenet_net *net = (fusenet_net *)1;
    expect_error(fusenet_net_build(NULL, &net, &err), FUSENET_ERR_INVALID_ARG, &err, NULL);
    assert_null(net);
    fusenet_net_params np = fusenet_net_default_params();
    expect_error(fusenet_net_build(&np, &net, &err), FUSENET_ERR_INVALID_ARG, &err, NULL); /* no taps */
    fusenet_model *r = fx_model_create(FUSENET_ARCH_RESNET50, 0, FUSENET_POOLING_NONE);
    fusenet_tap tap = {r, "conv1_conv"};
    np.taps = &tap;
    np.n_taps = 1;
    np.batch = 0;
    expect_error(fusenet_net_build(&np, &net, &err), FUSENET_ERR_INVALID_ARG, &err, "batch 0");
    np.batch = 1;
    np.in_h = 31;
    expect_error(fusenet_net_build(&np, &net, &err), FUSENET_ERR_SHAPE, &err, "31x224");
    np.in_h = 16384;
    np.in_w = 16384;
    np.batch = 64;
    expect_error(fusenet_net_build(&np, &net, &err), FUSENET_ERR_NOMEM, &err, "GiB");
    fusenet_model_free(r);
    expect_error(fusenet_build_dual(NULL, &net, &err), FUSENET_ERR_INVALID_ARG, &err, NULL);
    fusenet_dual_params dp = fusenet_dual_default_params();
    expect_error(fusenet_build_dual(&dp, &net, &err), FUSENET_ERR_INVALID_ARG, &err, "resnet_weights");
    expect_error(fusenet_net_run(NULL, NULL, &err), FUSENET_ERR_INVALID_ARG, &err, NULL);
    expect_error(fusenet_net_output(NULL, NULL, &err), FUSENET_ERR_INVALID_ARG, &err, NULL);
    fusenet_net_free(NULL);
    fusenet_model_free(NULL);
    assert_string_equal(fusenet_status_name(FUSENET_ERR_SHAPE), "FUSENET_ERR_SHAPE");
    assert_string_equal(fusenet_status_name((fusenet_status)99), "FUSENET_ERR_?");
    assert_non_null(strchr(fusenet_version(), '.'));
    /* success clears the error */
    expect_ok(fusenet_model_create(NULL, &m, &err), &err);
    assert_int_equal(err.status, FUSENET_OK);
    assert_string_equal(err.message, "");
    fusenet_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts_and_params),
        cmocka_unit_test(test_names_and_order),
        cmocka_unit_test(test_shapes),
        cmocka_unit_test(test_op_table),
        cmocka_unit_test(test_builder_errors),
        cmocka_unit_test(test_pruning),
        cmocka_unit_test(test_needed_weights_and_steps),
        cmocka_unit_test(test_unknown_layer),
        cmocka_unit_test(test_null_and_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
