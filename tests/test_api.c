/* test_api.c - the public API's own rules: system info, which modes a build
 * accepts on this CPU, parameter checks of the net and dual params.
 *
 * Nothing here depends on the CPU's ISA: the test asks fusenet_get_system_info
 * what this CPU offers and checks that builds agree with it (fast mode builds
 * iff it is offered; else UNSUPPORTED naming the ISA). Expected versions come
 * from oneDNN itself (dnnl_version) and the header's macros; thread counts
 * from OpenMP (omp_get_num_procs) and the environment the test sets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <oneapi/dnnl/dnnl.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

#ifndef FN_BUILD_DIR
#define FN_BUILD_DIR "."
#endif
#ifndef FN_TEST_DIR
#define FN_TEST_DIR "tests"
#endif
#define RESNET_PATH FN_BUILD_DIR "/api_random_resnet50.h5"
#define RESNET_TAP "conv2_block1_out" /* behind 3x3 stride-1 convolutions (Winograd's case) */

static fusenet_model *g_resnet;

static int group_setup(void **state) {
    (void)state;
    static const char *const need[] = {RESNET_TAP};
    if (fx_write_weights(FUSENET_ARCH_RESNET50, 41, RESNET_PATH)) return -1;
    g_resnet = fx_model_load(RESNET_PATH, FUSENET_ARCH_RESNET50, need, 1);
    return g_resnet ? 0 : -1;
}

static int group_teardown(void **state) {
    (void)state;
    fusenet_model_free(g_resnet);
    remove(RESNET_PATH);
    return 0;
}

static void test_system_info(void **state) {
    (void)state;
    fusenet_system_info info;
    fusenet_error err;
    expect_ok(fusenet_get_system_info(&info, &err), &err);
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", FUSENET_VERSION_MAJOR, FUSENET_VERSION_MINOR, FUSENET_VERSION_PATCH);
    assert_string_equal(info.version, want);
    const dnnl_version_t *v = dnnl_version();
    assert_int_equal(info.dnnl_major, v->major);
    assert_int_equal(info.dnnl_minor, v->minor);
    assert_int_equal(info.dnnl_patch, v->patch);
    assert_string_equal(info.dnnl_hash, v->hash);
    /* oneDNN's own name for the ISA it dispatches: it is what ONEDNN_MAX_CPU_ISA accepts, and
     * the oneDNN verbose lines start with it (e.g. "avx2", "avx512_core_vnni") */
    assert_non_null(info.isa);
    assert_string_not_equal(info.isa, "unknown");
    assert_true(strncmp(info.isa, "avx", 3) == 0 || strcmp(info.isa, "sse41") == 0);
    assert_int_equal(info.cores, omp_get_num_procs());
    assert_int_equal(info.exact_mode, 1);
    assert_true(info.fast_mode == 0 || info.fast_mode == 1);
    /* Winograd: oneDNN's on AVX-512, the library's own on AVX2 (with FMA, which every AVX2
     * CPU has): offered exactly where oneDNN dispatches one of those */
    assert_int_equal(info.fast_mode, strstr(info.isa, "avx512") || strstr(info.isa, "avx2") ? 1 : 0);
    expect_error(fusenet_get_system_info(NULL, &err), FUSENET_ERR_INVALID_ARG, &err, "out");
}

static void test_default_threads(void **state) {
    (void)state;
    const char *saved = getenv("OMP_NUM_THREADS");
    char *keep = saved ? strdup(saved) : NULL;
    fusenet_system_info info;
    struct {
        const char *env; /* NULL: unset */
        int want;        /* 0: the cores */
    } cases[] = {{NULL, 0}, {"3", 3}, {"5,2", 5}, {"0", 0}, {"abc", 0}, {"", 0}, {"99999", 0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (cases[i].env) setenv("OMP_NUM_THREADS", cases[i].env, 1);
        else unsetenv("OMP_NUM_THREADS");
        expect_ok(fusenet_get_system_info(&info, NULL), NULL);
        int want = cases[i].want ? cases[i].want : omp_get_num_procs();
        if (info.default_threads != want)
            fail_msg("OMP_NUM_THREADS=%s: default_threads %d, expected %d", cases[i].env ? cases[i].env : "(unset)",
                     info.default_threads, want);
    }
    if (keep) setenv("OMP_NUM_THREADS", keep, 1);
    else unsetenv("OMP_NUM_THREADS");
    free(keep);
}

/* Fast mode builds iff this CPU offers it; otherwise UNSUPPORTED naming the ISA, and the
 * one-call product refuses it before reading any file. */
static void test_fast_mode_as_offered(void **state) {
    (void)state;
    fusenet_system_info info;
    fusenet_error err;
    expect_ok(fusenet_get_system_info(&info, &err), &err);
    fusenet_tap tap = {g_resnet, RESNET_TAP};
    fusenet_net_params p = fx_net_params(&tap, 1, 1, 64, 64, 0);
    p.mode = FUSENET_MODE_FAST;
    fusenet_net *net = (fusenet_net *)&tap;
    if (info.fast_mode) {
        expect_ok(fusenet_net_build(&p, &net, &err), &err);
        assert_non_null(net);
    } else {
        expect_error(fusenet_net_build(&p, &net, &err), FUSENET_ERR_UNSUPPORTED, &err, info.isa);
        assert_null(net);
        assert_non_null(strstr(err.message, "fast"));
    }
    fusenet_net_free(net);
    p.mode = FUSENET_MODE_EXACT;
    expect_ok(fusenet_net_build(&p, &net, &err), &err);
    fusenet_net_free(net);

    fusenet_dual_params d = fusenet_dual_default_params();
    d.resnet_weights = FN_BUILD_DIR "/api_no_such_resnet.h5";
    d.vgg_weights = FN_BUILD_DIR "/api_no_such_vgg.h5";
    d.net.mode = FUSENET_MODE_FAST;
    if (info.fast_mode) expect_error(fusenet_build_dual(&d, &net, &err), FUSENET_ERR_IO, &err, "api_no_such_resnet");
    else expect_error(fusenet_build_dual(&d, &net, &err), FUSENET_ERR_UNSUPPORTED, &err, info.isa);
    assert_null(net);
}

static void test_net_params_threads(void **state) {
    (void)state;
    fusenet_tap tap = {g_resnet, RESNET_TAP};
    fusenet_net_params p = fx_net_params(&tap, 1, 1, 64, 64, 0);
    fusenet_net *net;
    fusenet_error err;
    p.threads = -1;
    expect_error(fusenet_net_build(&p, &net, &err), FUSENET_ERR_INVALID_ARG, &err, "threads -1");
    p.threads = 1025;
    expect_error(fusenet_net_build(&p, &net, &err), FUSENET_ERR_INVALID_ARG, &err, "threads 1025");
    p.threads = 1;
    expect_ok(fusenet_net_build(&p, &net, &err), &err);
    fusenet_net_free(net);
}

/* The dual's net params carry everything but the taps, which are its own. */
static void test_dual_params_taps(void **state) {
    (void)state;
    fusenet_tap tap = {g_resnet, RESNET_TAP};
    fusenet_net *net;
    fusenet_error err;
    fusenet_dual_params d = fusenet_dual_default_params();
    d.resnet_weights = RESNET_PATH;
    d.vgg_weights = RESNET_PATH;
    d.net.taps = &tap;
    expect_error(fusenet_build_dual(&d, &net, &err), FUSENET_ERR_INVALID_ARG, &err, "net.taps");
    d.net.taps = NULL;
    d.net.n_taps = 1;
    expect_error(fusenet_build_dual(&d, &net, &err), FUSENET_ERR_INVALID_ARG, &err, "net.n_taps");
    d.net.n_taps = 0;
    d.net.fuse = 0;
    expect_error(fusenet_build_dual(&d, &net, &err), FUSENET_ERR_INVALID_ARG, &err, "net.fuse");
    d.net.fuse = 1;
    d.net.threads = -2; /* checked as for fusenet_net_build */
    d.resnet_layer = RESNET_TAP;
    d.vgg_weights = FN_BUILD_DIR "/api_vgg16.h5";
    assert_int_equal(fx_write_weights(FUSENET_ARCH_VGG16, 42, d.vgg_weights), 0);
    d.vgg_layer = "block1_pool";
    expect_error(fusenet_build_dual(&d, &net, &err), FUSENET_ERR_INVALID_ARG, &err, "threads -2");
    d.net.threads = 1;
    d.net.in_h = d.net.in_w = 64;
    expect_ok(fusenet_build_dual(&d, &net, &err), &err);
    fusenet_net_free(net);
    remove(d.vgg_weights);
}

/* ---- per-step profile ---------------------------------------------------------- */

static int count_kind(const fusenet_net *net, fusenet_step_kind kind, int32_t tap) {
    int n = 0;
    for (size_t i = 0; i < fusenet_net_step_count(net); i++) {
        fusenet_step_info s;
        expect_ok(fusenet_net_step_info(net, i, &s, NULL), NULL);
        n += s.kind == kind && (tap < 0 || s.tap == tap);
    }
    return n;
}

/* Taps conv1_relu (32 x 32 at a 64 x 64 input) and conv2_block1_out (16 x 16), fused at
 * the smaller size: one resize (tap 0), one concat, one tap copy each, and every Conv2D
 * of the live graph the first layer of exactly one compute step, whose flops are
 * 2 x batch x out_h x out_w x filters x kh x kw x in_c (hand-computed for conv1_conv). */
static void test_step_info(void **state) {
    (void)state;
    fusenet_tap taps[2] = {{g_resnet, "conv1_relu"}, {g_resnet, RESNET_TAP}};
    fusenet_net_params p = fx_net_params(taps, 2, 2, 64, 64, 1);
    fusenet_net *net;
    fusenet_error err;
    expect_ok(fusenet_net_build(&p, &net, &err), &err);
    size_t n = fusenet_net_step_count(net);
    assert_true(n > 0);
    assert_int_equal(fusenet_net_step_count(NULL), 0);
    assert_int_equal(count_kind(net, FUSENET_STEP_TAP, 0), 1);
    assert_int_equal(count_kind(net, FUSENET_STEP_TAP, 1), 1);
    assert_int_equal(count_kind(net, FUSENET_STEP_TAP, -1), 2);
    assert_int_equal(count_kind(net, FUSENET_STEP_RESIZE, 0), 1);
    assert_int_equal(count_kind(net, FUSENET_STEP_RESIZE, -1), 1);
    assert_int_equal(count_kind(net, FUSENET_STEP_CONCAT, -1), 1);
    static const char *const kind_names[] = {"compute", "reorder", "tap", "resize", "concat"};
    size_t tap_index;
    expect_ok(fusenet_model_find_layer(g_resnet, RESNET_TAP, &tap_index, &err), &err);
    int conv_steps[64] = {0};
    for (size_t i = 0; i < n; i++) {
        fusenet_step_info s;
        expect_ok(fusenet_net_step_info(net, i, &s, &err), &err);
        assert_true((unsigned)s.kind <= FUSENET_STEP_CONCAT);
        assert_string_equal(s.kind_name, kind_names[s.kind]);
        assert_non_null(s.impl);
        assert_true(s.time_ms == 0.0); /* not profiled */
        if (s.kind == FUSENET_STEP_RESIZE || s.kind == FUSENET_STEP_CONCAT) {
            assert_int_equal(s.layer_index, -1);
            assert_int_equal(s.model, -1);
            assert_string_equal(s.layer, s.kind_name);
            continue;
        }
        /* a layer of the (only) model, named as the model names it */
        assert_int_equal(s.model, 0);
        assert_true(s.layer_index >= 0 && (size_t)s.layer_index <= tap_index);
        assert_true(s.first_index >= 0 && s.first_index <= s.layer_index);
        fusenet_layer_info li, first;
        expect_ok(fusenet_model_layer_info(g_resnet, (size_t)s.layer_index, 64, 64, &li, &err), &err);
        assert_string_equal(s.layer, li.name);
        expect_ok(fusenet_model_layer_info(g_resnet, (size_t)s.first_index, 64, 64, &first, &err), &err);
        if (s.kind == FUSENET_STEP_COMPUTE && strcmp(first.type, "Conv2D") == 0) {
            assert_true(s.first_index < 64);
            conv_steps[s.first_index]++;
            assert_true(s.flops > 0);
            if (strcmp(first.name, "conv1_conv") == 0) assert_true(s.flops == 2.0 * 2 * 32 * 32 * 64 * 7 * 7 * 3);
        } else {
            assert_true(s.flops == 0.0);
        }
    }
    for (size_t i = 0; i <= tap_index; i++) {
        fusenet_layer_info li;
        expect_ok(fusenet_model_layer_info(g_resnet, i, 64, 64, &li, &err), &err);
        if (strcmp(li.type, "Conv2D") == 0 && conv_steps[i] != 1)
            fail_msg("%s: %d compute steps start with it, expected 1", li.name, conv_steps[i]);
    }
    fusenet_step_info s;
    expect_error(fusenet_net_step_info(net, n, &s, &err), FUSENET_ERR_INVALID_ARG, &err, "out of range");
    expect_error(fusenet_net_step_info(NULL, 0, &s, &err), FUSENET_ERR_INVALID_ARG, &err, "net");
    expect_error(fusenet_net_step_info(net, 0, NULL, &err), FUSENET_ERR_INVALID_ARG, &err, "out");
    fusenet_net_free(net);
}

static double step_time(const fusenet_net *net, size_t i) {
    fusenet_step_info s;
    expect_ok(fusenet_net_step_info(net, i, &s, NULL), NULL);
    return s.time_ms;
}

/* Times accumulate only while profiling is on; turning it on clears them. */
static void test_profiling(void **state) {
    (void)state;
    fusenet_tap tap = {g_resnet, RESNET_TAP};
    fusenet_net_params p = fx_net_params(&tap, 1, 1, 64, 64, 0);
    fusenet_net *net;
    fusenet_error err;
    expect_ok(fusenet_net_build(&p, &net, &err), &err);
    size_t n = fusenet_net_step_count(net);
    float *x = calloc(64 * 64 * 3, sizeof *x);
    assert_non_null(x);
    fusenet_tensor in = {x, 1, 64, 64, 3};
    expect_ok(fusenet_net_run(net, &in, &err), &err);
    for (size_t i = 0; i < n; i++) assert_true(step_time(net, i) == 0.0);
    expect_ok(fusenet_net_set_profiling(net, 1, &err), &err);
    expect_ok(fusenet_net_run(net, &in, &err), &err);
    double *once = calloc(n, sizeof *once);
    assert_non_null(once);
    for (size_t i = 0; i < n; i++) {
        once[i] = step_time(net, i);
        assert_true(once[i] > 0.0);
    }
    expect_ok(fusenet_net_run(net, &in, &err), &err);
    for (size_t i = 0; i < n; i++) assert_true(step_time(net, i) > once[i]); /* accumulated */
    expect_ok(fusenet_net_set_profiling(net, 0, &err), &err);
    for (size_t i = 0; i < n; i++) once[i] = step_time(net, i);
    expect_ok(fusenet_net_run(net, &in, &err), &err);
    for (size_t i = 0; i < n; i++) assert_true(step_time(net, i) == once[i]); /* off: unchanged */
    expect_ok(fusenet_net_set_profiling(net, 1, &err), &err);
    for (size_t i = 0; i < n; i++) assert_true(step_time(net, i) == 0.0); /* on again: cleared */
    expect_error(fusenet_net_set_profiling(net, 2, &err), FUSENET_ERR_INVALID_ARG, &err, "on is 2");
    expect_error(fusenet_net_set_profiling(NULL, 1, &err), FUSENET_ERR_INVALID_ARG, &err, "net");
    free(once);
    free(x);
    fusenet_net_free(net);
}

/* ---- one rule for NULL params: the documented defaults ----------------------- */

static void test_null_params_are_defaults(void **state) {
    (void)state;
    fusenet_error err;
    fusenet_model *a = NULL, *b = NULL;
    expect_ok(fusenet_model_create(NULL, &a, &err), &err);
    fusenet_model_params dp = fusenet_model_default_params();
    expect_ok(fusenet_model_create(&dp, &b, &err), &err);
    assert_int_equal(fusenet_model_arch(a), FUSENET_ARCH_RESNET50);
    assert_int_equal(fusenet_model_layer_count(a), fusenet_model_layer_count(b));
    assert_int_equal(fusenet_model_layer_count(a), 175); /* ResNet50 without top, as Keras lists it */
    fusenet_model_free(a);
    fusenet_model_free(b);
    /* load: the defaults are ResNet50, so a ResNet50 file loads and a VGG16 one is the wrong arch */
    expect_ok(fusenet_model_load(RESNET_PATH, NULL, &a, &err), &err);
    assert_int_equal(fusenet_model_arch(a), FUSENET_ARCH_RESNET50);
    fusenet_model_free(a);
    const char *vgg = FN_BUILD_DIR "/api_null_vgg16.h5";
    assert_int_equal(fx_write_weights(FUSENET_ARCH_VGG16, 43, vgg), 0);
    expect_error(fusenet_model_load(vgg, NULL, &a, &err), FUSENET_ERR_ARCH, &err, NULL);
    assert_null(a);
    remove(vgg);
    /* nets: the defaults have no taps / no paths, and the message says what is missing */
    fusenet_net *net = (fusenet_net *)&err;
    expect_error(fusenet_net_build(NULL, &net, &err), FUSENET_ERR_INVALID_ARG, &err, "no taps");
    assert_null(net);
    net = (fusenet_net *)&err;
    expect_error(fusenet_build_dual(NULL, &net, &err), FUSENET_ERR_INVALID_ARG, &err, "resnet_weights");
    assert_null(net);
    /* images: the defaults decode exactly as the explicit defaults do */
    const char *image = FN_TEST_DIR "/data/photo_61x47.jpg";
    size_t n = 224 * 224 * 3;
    float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    assert_non_null(x);
    assert_non_null(y);
    fusenet_image_params ip = fusenet_image_default_params();
    expect_ok(fusenet_image_load(image, &ip, x, &err), &err);
    expect_ok(fusenet_image_load(image, NULL, y, &err), &err);
    assert_memory_equal(x, y, n * sizeof *x);
    free(x);
    free(y);
}

/* The header's statuses: INVALID_ARG for a side <= 0 or a bad index, SHAPE for an input
 * the networks cannot take (under 32 or over 16384, as fusenet_net_build says). */
static void test_layer_info_statuses(void **state) {
    (void)state;
    fusenet_layer_info li;
    fusenet_error err;
    expect_error(fusenet_model_layer_info(g_resnet, 0, 31, 64, &li, &err), FUSENET_ERR_SHAPE, &err, "31x64");
    expect_error(fusenet_model_layer_info(g_resnet, 0, 64, 1, &li, &err), FUSENET_ERR_SHAPE, &err, "64x1");
    expect_error(fusenet_model_layer_info(g_resnet, 0, 16385, 64, &li, &err), FUSENET_ERR_SHAPE, &err, "16385x64");
    expect_error(fusenet_model_layer_info(g_resnet, 0, 0, 64, &li, &err), FUSENET_ERR_INVALID_ARG, &err, "0x64");
    expect_error(fusenet_model_layer_info(g_resnet, 0, 64, -5, &li, &err), FUSENET_ERR_INVALID_ARG, &err, "64x-5");
    expect_error(fusenet_model_layer_info(g_resnet, 175, 64, 64, &li, &err), FUSENET_ERR_INVALID_ARG, &err, "175");
    expect_ok(fusenet_model_layer_info(g_resnet, 0, 32, 32, &li, &err), &err);
    /* the same input the net build refuses with the same status */
    fusenet_tap tap = {g_resnet, RESNET_TAP};
    fusenet_net_params p = fx_net_params(&tap, 1, 1, 31, 64, 0);
    fusenet_net *net;
    expect_error(fusenet_net_build(&p, &net, &err), FUSENET_ERR_SHAPE, &err, "31x64");
}

/* Keras refuses to concatenate a rank-2 tap with a rank-4 one: so does fuse, naming the
 * flat tap whichever comes first; flat with flat, and either without fuse, still build. */
static void test_fuse_flat_with_spatial(void **state) {
    (void)state;
    fusenet_model_params mp = fusenet_model_default_params();
    mp.pooling = FUSENET_POOLING_AVG; /* adds avg_pool (GlobalAveragePooling2D): (N, 2048) */
    fusenet_model *m;
    fusenet_error err;
    expect_ok(fusenet_model_load(RESNET_PATH, &mp, &m, &err), &err);
    fusenet_net *net = NULL;
    float *x = calloc(64 * 64 * 3, sizeof *x);
    assert_non_null(x);
    fusenet_tensor in = {x, 1, 64, 64, 3}, t;
    fusenet_tap mixed[2] = {{m, "avg_pool"}, {m, "conv2_block1_out"}};
    fusenet_net_params p = fx_net_params(mixed, 2, 1, 64, 64, 1);
    expect_error(fusenet_net_build(&p, &net, &err), FUSENET_ERR_SHAPE, &err, "tap 0 (avg_pool) is flat");
    assert_null(net);
    fusenet_tap mixed2[3] = {{m, "conv1_relu"}, {m, "conv2_block1_out"}, {m, "avg_pool"}};
    p = fx_net_params(mixed2, 3, 1, 64, 64, 1);
    expect_error(fusenet_net_build(&p, &net, &err), FUSENET_ERR_SHAPE, &err, "tap 2 (avg_pool) is flat");
    assert_non_null(strstr(err.message, "rank 2"));
    p.fuse = 0; /* taps of any rank without the fuse head */
    expect_ok(fusenet_net_build(&p, &net, &err), &err);
    expect_ok(fusenet_net_run(net, &in, &err), &err);
    expect_ok(fusenet_net_tap_output(net, 2, &t, &err), &err);
    assert_int_equal(t.c, 2048);
    fusenet_net_free(net);
    fusenet_tap flat[2] = {{m, "avg_pool"}, {m, "avg_pool"}};
    p = fx_net_params(flat, 2, 1, 64, 64, 1);
    expect_ok(fusenet_net_build(&p, &net, &err), &err);
    expect_ok(fusenet_net_run(net, &in, &err), &err);
    expect_ok(fusenet_net_output(net, &t, &err), &err);
    assert_int_equal(t.c, 4096);
    fusenet_net_free(net);
    fusenet_model_free(m);
    free(x);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_system_info),
        cmocka_unit_test(test_default_threads),
        cmocka_unit_test(test_fast_mode_as_offered),
        cmocka_unit_test(test_net_params_threads),
        cmocka_unit_test(test_dual_params_taps),
        cmocka_unit_test(test_step_info),
        cmocka_unit_test(test_profiling),
        cmocka_unit_test(test_null_params_are_defaults),
        cmocka_unit_test(test_layer_info_statuses),
        cmocka_unit_test(test_fuse_flat_with_spatial),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
