/* test_oom.c - out-of-memory sweeps over the constructors of the public API.
 *
 * For k = 0, 1, 2, ...: fusenet__alloc_fail_after(k) lets k more allocations
 * succeed and fails every later one; the constructor under test must then
 * either succeed or return FUSENET_ERR_NOMEM with a message, set *out to
 * NULL, and leak nothing. The sweep stops at the first success, which must
 * come no later than k = the number of allocations one successful call makes
 * (measured first). Swept:
 *  (a) fusenet_model_load of VGG16 (needed_layers {"block1_pool"}) and of
 *      ResNet50 ({"pool1_pool"}), every k;
 *  (b) fusenet_net_build with a tap of each model at sizes that need a resize,
 *      batch 2, 32 x 40 input: pool1_pool + block1_pool with fuse on and off,
 *      and the deeper conv3_block1_out + block2_pool (residual blocks) fused,
 *      in exact mode and in int8 (its row strips and micro-batch copies);
 *  (c) fusenet_build_dual on the two files with the first pair of taps.
 *
 * Only the library's own allocations (alloc.h) can be failed: memory that
 * oneDNN, HDF5, OpenMP or libc allocate internally is not ours to fail, so
 * those failure paths are not exercised here. The hook is thread-local, so
 * allocations made on OpenMP worker threads are not failed either.
 *
 * Leaks: the sanitizer build (tests/run.sh) runs this test under LeakSanitizer,
 * which sees malloc'd blocks. Blocks of 256 KiB and more are mapped directly
 * by the allocator and invisible to LeakSanitizer, so in the normal build every
 * sweep also checks that the process's mapped size did not grow by more than a
 * small allowance over the whole sweep (a leak of a large block at each step
 * would).
 *
 * The random weight files are written once into the build directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "fusenet.h"
#include "model.h"
#include "test_util.h"

#ifndef FN_BUILD_DIR
#define FN_BUILD_DIR "."
#endif

#define RESNET_PATH FN_BUILD_DIR "/oom_random_resnet50.h5"
#define VGG_PATH FN_BUILD_DIR "/oom_random_vgg16.h5"

#define IN_H 32
#define IN_W 40
#define BATCH 2

/* Allowed growth of the mapped size over one sweep: allocator arenas and
 * oneDNN's primitive cache may grow a little; a leaked big block per step
 * over hundreds of steps would not fit. */
#define VM_SLACK_BYTES ((long long)32 << 20)

/* Under AddressSanitizer the mapped size follows its allocator and quarantine,
 * not ours: the check is left to the normal build there. */
#if defined(__SANITIZE_ADDRESS__)
#define CHECK_VM 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CHECK_VM 0
#endif
#endif
#ifndef CHECK_VM
#define CHECK_VM 1
#endif

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static long long vm_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return -1;
    long long pages = -1;
    if (fscanf(f, "%lld", &pages) != 1) pages = -1;
    fclose(f);
    return pages < 0 ? -1 : pages * 4096;
}

/* ---- the sweep ----------------------------------------------------------- */

typedef struct attempt {
    const char *what;
    /* Calls the constructor once; on success stores the object in *obj. */
    fusenet_status (*run)(void *ctx, void **obj, fusenet_error *err);
    /* Checks a successful object (may be NULL) and frees it. */
    void (*finish)(void *obj);
    void *ctx;
} attempt;

/* A non-NULL pointer the constructors must overwrite. */
static char g_poison;
#define POISON ((void *)&g_poison)

/* Sweeps k over 0..n (n: allocations of one successful call) until the
 * first success. Returns the number of attempts. */
static int sweep(const attempt *a) {
    fusenet_error err;
    void *obj = NULL;

    /* One successful call first: counts the allocations, warms caches. */
    fusenet__alloc_fail_after(-1);
    fusenet_status st = a->run(a->ctx, &obj, &err);
    int64_t n = fusenet__alloc_fail_after(-1);
    if (st != FUSENET_OK) fail_msg("%s: %s", a->what, err.message);
    a->finish(obj);
    assert_true(n > 0);

    long long vm0 = vm_bytes();
    double t0 = now_s();
    int attempts = 0;
    for (int64_t k = 0;; k++) {
        obj = NULL;
        memset(&err, 0x7f, sizeof err);
        fusenet__alloc_fail_after(k);
        st = a->run(a->ctx, &obj, &err);
        fusenet__alloc_fail_after(-1);
        attempts++;
        if (st == FUSENET_OK) {
            assert_int_equal(err.status, FUSENET_OK);
            a->finish(obj);
            break;
        }
        if (st != FUSENET_ERR_NOMEM || err.status != st)
            fail_msg("%s: allocation %lld of %lld failed: status %s (err.status %d), not NOMEM: %.200s",
                     a->what, (long long)k, (long long)n, fusenet_status_name(st), (int)err.status,
                     err.message);
        if (obj != NULL)
            fail_msg("%s: allocation %lld failed: *out not set to NULL", a->what, (long long)k);
        size_t len = strnlen(err.message, sizeof err.message);
        if (len == 0 || len == sizeof err.message || strchr(err.message, '\n'))
            fail_msg("%s: allocation %lld failed: empty or malformed message", a->what, (long long)k);
        if (k >= n) fail_msg("%s: still failing with all %lld allocations allowed", a->what, (long long)n);
    }
    long long vm1 = vm_bytes();
    long long grew = vm0 > 0 && vm1 > 0 ? vm1 - vm0 : 0;
    if (CHECK_VM && grew > VM_SLACK_BYTES)
        fail_msg("%s: mapped size grew by %lld MiB over the sweep (leak of a large block?)", a->what,
                 grew >> 20);
    print_message("  %-42s %5lld allocations, %5d attempts, %6.2f s, mapped %+lld KiB\n", a->what, (long long)n,
                  attempts, now_s() - t0, grew >> 10);
    return attempts;
}

/* ---- fixtures -------------------------------------------------------------- */

static fusenet_model *g_resnet, *g_vgg, *g_resnet3, *g_vgg2;

static int group_setup(void **state) {
    (void)state;
    if (fx_write_weights(FUSENET_ARCH_RESNET50, 21, RESNET_PATH) || fx_write_weights(FUSENET_ARCH_VGG16, 22, VGG_PATH))
        return -1;
    return 0;
}

static int group_teardown(void **state) {
    (void)state;
    fusenet__alloc_fail_after(-1);
    fusenet_model_free(g_resnet);
    fusenet_model_free(g_vgg);
    fusenet_model_free(g_resnet3);
    fusenet_model_free(g_vgg2);
    g_resnet = g_vgg = g_resnet3 = g_vgg2 = NULL;
    remove(RESNET_PATH);
    remove(VGG_PATH);
    return 0;
}

/* ---- (a) model load ---------------------------------------------------------- */

typedef struct load_ctx {
    const char *path;
    fusenet_arch arch;
    const char *needed;
} load_ctx;

static fusenet_status run_load(void *ctx, void **obj, fusenet_error *err) {
    const load_ctx *c = ctx;
    fusenet_model_params p = fusenet_model_default_params();
    p.arch = c->arch;
    p.needed_layers = &c->needed;
    p.n_needed = 1;
    fusenet_model *m = POISON; /* must be overwritten */
    fusenet_status st = fusenet_model_load(c->path, &p, &m, err);
    *obj = m;
    return st;
}

static void finish_load(void *obj) {
    fusenet_model *m = obj;
    assert_non_null(m);
    assert_true(fusenet_model_layer_count(m) > 0);
    fusenet_model_free(m);
}

static void test_oom_model_load(void **state) {
    (void)state;
    load_ctx vgg = {VGG_PATH, FUSENET_ARCH_VGG16, "block1_pool"};
    load_ctx res = {RESNET_PATH, FUSENET_ARCH_RESNET50, "pool1_pool"};
    attempt a1 = {"model_load vgg16 block1_pool", run_load, finish_load, &vgg};
    attempt a2 = {"model_load resnet50 pool1_pool", run_load, finish_load, &res};
    sweep(&a1);
    sweep(&a2);
}

/* ---- (b) net build ------------------------------------------------------------ */

static fusenet_model *load_or_die(const char *path, fusenet_arch arch, const char *needed) {
    load_ctx c = {path, arch, needed};
    void *m = NULL;
    fusenet_error err;
    if (run_load(&c, &m, &err) != FUSENET_OK) fail_msg("%s", err.message);
    return m;
}

typedef struct build_ctx {
    fusenet_tap taps[2];
    int fuse;
    int32_t out_h, out_w, out_c; /* expected fused map */
    const fusenet_calibration *cal; /* not NULL: an int8 net */
    int fast;                       /* 1: a fast-mode net */
} build_ctx;

static fusenet_status run_build(void *ctx, void **obj, fusenet_error *err) {
    const build_ctx *c = ctx;
    fusenet_net_params p = fusenet_net_default_params();
    p.taps = c->taps;
    p.n_taps = 2;
    p.batch = BATCH;
    p.in_h = IN_H;
    p.in_w = IN_W;
    p.fuse = c->fuse;
    if (c->cal) {
        p.mode = FUSENET_MODE_INT8;
        p.calibration = c->cal;
        p.int8_layers = FUSENET_INT8_ALL;
    }
    if (c->fast) p.mode = FUSENET_MODE_FAST;
    fusenet_net *net = POISON;
    fusenet_status st = fusenet_net_build(&p, &net, err);
    *obj = net;
    return st;
}

static const build_ctx *g_expect; /* the shape finish_net checks */

/* Runs the net once on a constant input and checks the output shape. */
static void finish_net(void *obj) {
    fusenet_net *net = obj;
    assert_non_null(net);
    size_t n = (size_t)BATCH * IN_H * IN_W * 3;
    float *x = malloc(n * sizeof *x);
    assert_non_null(x);
    for (size_t i = 0; i < n; i++) x[i] = (float)(i % 251) - 120.0f;
    fusenet_tensor in = {x, BATCH, IN_H, IN_W, 3}, out;
    fusenet_error err;
    if (fusenet_net_run(net, &in, &err) != FUSENET_OK) fail_msg("run: %s", err.message);
    assert_int_equal(fusenet_net_tap_output(net, 0, &out, &err), FUSENET_OK);
    assert_int_equal(out.n, BATCH);
    if (g_expect->fuse) {
        assert_int_equal(fusenet_net_output(net, &out, &err), FUSENET_OK);
        assert_int_equal(out.n, BATCH);
        assert_int_equal(out.h, g_expect->out_h);
        assert_int_equal(out.w, g_expect->out_w);
        assert_int_equal(out.c, g_expect->out_c);
    } else {
        assert_int_equal(fusenet_net_output(net, &out, &err), FUSENET_ERR_INVALID_ARG);
    }
    free(x);
    fusenet_net_free(net);
}

static void load_models(void) {
    if (!g_resnet) g_resnet = load_or_die(RESNET_PATH, FUSENET_ARCH_RESNET50, "pool1_pool");
    if (!g_vgg) g_vgg = load_or_die(VGG_PATH, FUSENET_ARCH_VGG16, "block1_pool");
    if (!g_resnet3) g_resnet3 = load_or_die(RESNET_PATH, FUSENET_ARCH_RESNET50, "conv3_block1_out");
    if (!g_vgg2) g_vgg2 = load_or_die(VGG_PATH, FUSENET_ARCH_VGG16, "block2_pool");
}

static void test_oom_net_build_fused(void **state) {
    (void)state;
    load_models();
    /* ResNet pool1_pool 8x10x64 and VGG block1_pool 16x20x64: SIZE_MIN is 8x10 */
    build_ctx c = {{{g_resnet, "pool1_pool"}, {g_vgg, "block1_pool"}}, 1, 8, 10, 128, NULL, 0};
    g_expect = &c;
    attempt a = {"net_build pool1_pool+block1_pool fuse=1", run_build, finish_net, &c};
    sweep(&a);
}

static void test_oom_net_build_unfused(void **state) {
    (void)state;
    load_models();
    build_ctx c = {{{g_vgg, "block1_pool"}, {g_resnet, "pool1_pool"}}, 0, 0, 0, 0, NULL, 0};
    g_expect = &c;
    attempt a = {"net_build block1_pool+pool1_pool fuse=0", run_build, finish_net, &c};
    sweep(&a);
}

static void test_oom_net_build_deeper(void **state) {
    (void)state;
    load_models();
    /* conv3_block1_out 4x5x512 and block2_pool 8x10x128: SIZE_MIN is 4x5 */
    build_ctx c = {{{g_resnet3, "conv3_block1_out"}, {g_vgg2, "block2_pool"}}, 1, 4, 5, 640, NULL, 0};
    g_expect = &c;
    attempt a = {"net_build conv3_block1_out+block2_pool", run_build, finish_net, &c};
    sweep(&a);
}

/* The same taps in fast mode, where this CPU offers it (on AVX2 its 3x3 convs run on our own
 * Winograd kernel: transformed weights, its share of the scratchpad). */
static void test_oom_net_build_fast(void **state) {
    (void)state;
    fusenet_system_info info;
    fusenet_error err;
    expect_ok(fusenet_get_system_info(&info, &err), &err);
    if (!info.fast_mode) {
        print_message("fast mode is not offered on this CPU (%s)\n", info.isa);
        skip();
    }
    load_models();
    build_ctx c = {{{g_resnet3, "conv3_block1_out"}, {g_vgg2, "block2_pool"}}, 1, 4, 5, 640, NULL, 1};
    g_expect = &c;
    attempt a = {"net_build conv3_block1_out+block2_pool fast", run_build, finish_net, &c};
    sweep(&a);
}

/* The same taps in int8 (every conv but the input ones; VGG16's block1_conv1,
 * read only by the int8 block1_conv2, as row strips, one image per step), with
 * a calibration made on one constant batch before the sweep. */
static void test_oom_net_build_int8(void **state) {
    (void)state;
    load_models();
    build_ctx c = {{{g_resnet3, "conv3_block1_out"}, {g_vgg2, "block2_pool"}}, 1, 4, 5, 640, NULL, 0};
    fusenet_net_params p = fusenet_net_default_params();
    p.taps = c.taps;
    p.n_taps = 2;
    p.batch = BATCH;
    p.in_h = IN_H;
    p.in_w = IN_W;
    fusenet_calibration *cal = NULL;
    fusenet_error err;
    if (fusenet_calibration_create(&p, &cal, &err) != FUSENET_OK) fail_msg("%s", err.message);
    size_t n = (size_t)BATCH * IN_H * IN_W * 3;
    float *x = malloc(n * sizeof *x);
    assert_non_null(x);
    for (size_t i = 0; i < n; i++) x[i] = (float)(i % 241) - 110.0f;
    fusenet_tensor in = {x, BATCH, IN_H, IN_W, 3};
    if (fusenet_calibration_add(cal, &in, &err) != FUSENET_OK) fail_msg("%s", err.message);
    free(x);
    c.cal = cal;
    /* the strips are there: more block1_conv1 steps than images */
    void *net = NULL;
    assert_int_equal(run_build(&c, &net, &err), FUSENET_OK);
    size_t strips = fx_compute_steps(net, "block1_conv1");
    fusenet_net_free(net);
    assert_true(strips > BATCH);
    g_expect = &c;
    attempt a = {"net_build int8 conv3_block1_out+block2_pool", run_build, finish_net, &c};
    sweep(&a);
    fusenet_calibration_free(cal);
}

/* ---- (c) build_dual -------------------------------------------------------------- */

static fusenet_status run_dual(void *ctx, void **obj, fusenet_error *err) {
    (void)ctx;
    fusenet_dual_params p = fusenet_dual_default_params();
    p.resnet_weights = RESNET_PATH;
    p.vgg_weights = VGG_PATH;
    p.resnet_layer = "pool1_pool";
    p.vgg_layer = "block1_pool";
    p.net.batch = BATCH;
    p.net.in_h = IN_H;
    p.net.in_w = IN_W;
    fusenet_net *net = POISON;
    fusenet_status st = fusenet_build_dual(&p, &net, err);
    *obj = net;
    return st;
}

static void test_oom_build_dual(void **state) {
    (void)state;
    static const build_ctx expect = {{{NULL, NULL}, {NULL, NULL}}, 1, 8, 10, 128, NULL, 0};
    g_expect = &expect;
    attempt a = {"build_dual pool1_pool + block1_pool", run_dual, finish_net, NULL};
    sweep(&a);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_oom_model_load),
        cmocka_unit_test(test_oom_net_build_fused),
        cmocka_unit_test(test_oom_net_build_unfused),
        cmocka_unit_test(test_oom_net_build_deeper),
        cmocka_unit_test(test_oom_net_build_fast),
        cmocka_unit_test(test_oom_net_build_int8),
        cmocka_unit_test(test_oom_build_dual),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
