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
    /* Winograd is AVX-512 only in oneDNN: a CPU offering it dispatches an avx512 ISA */
    if (info.fast_mode) assert_non_null(strstr(info.isa, "avx512"));
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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_system_info),
        cmocka_unit_test(test_default_threads),
        cmocka_unit_test(test_fast_mode_as_offered),
        cmocka_unit_test(test_net_params_threads),
        cmocka_unit_test(test_dual_params_taps),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
