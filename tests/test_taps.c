/* test_taps.c - fused nets of 1..16 taps (the documented range) over both
 * models, repeated layers included, on seeded random weights.
 *
 * For every tap count n, a net fuses the first n taps of a mixed ResNet50 /
 * VGG16 list; each of its tap outputs is compared with the same layer computed
 * by a net tapping that layer alone (those are checked against PyTorch by the
 * conformance test), and its fused map with a naive resize + concat
 * (tests/ref_ops.h, TensorFlow's half-pixel rules) of those single-tap outputs.
 * Tolerance: 1e-4 of the reference's largest magnitude (a multi-tap net may
 * fold a BatchNorm that a single-tap net keeps, or the other way round).
 *
 * Also: outputs are unreadable until a run succeeds, and again after a
 * failed run, so a failed run never leaves a stale map behind; and requests
 * over the net-size limit are refused before anything big is allocated,
 * naming the parameter at fault.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <cmocka.h>

#include "fusenet.h"
#include "model.h"
#include "random_weights.h"
#include "net.h"
#include "ref_ops.h"
#include "test_util.h"

#ifndef FN_BUILD_DIR
#define FN_BUILD_DIR "."
#endif

#define RESNET_PATH FN_BUILD_DIR "/taps_random_resnet50.h5"
#define VGG_PATH FN_BUILD_DIR "/taps_random_vgg16.h5"
#define TOL 1e-4
#define MAX_TAPS 16
#define BATCH 2
#define IN_H 64
#define IN_W 48

static fusenet_model *resnet, *vgg;
static float *input;          /* one seeded batch for every net */
static ref_t single[MAX_TAPS]; /* each layer of `mixed` from a net tapping it alone */

typedef struct tap_name {
    int vgg;
    const char *layer;
} tap_name;

/* Both models interleaved, with repeats (conv1_relu, block1_conv2) and layers
 * of several sizes: 32x24, 16x12, 8x6 at 64x48 input. */
static const tap_name mixed[MAX_TAPS] = {
    {0, "conv1_relu"},         {1, "block1_conv2"},       {0, "conv2_block1_out"}, {1, "block2_conv1"},
    {0, "pool1_pool"},         {0, "conv1_relu"},         {1, "block1_pool"},      {0, "conv2_block1_1_conv"},
    {1, "block2_conv2"},       {0, "conv1_bn"},           {1, "block1_conv2"},     {0, "conv2_block2_out"},
    {1, "block3_conv1"},       {0, "conv1_conv"},         {0, "conv2_block1_0_bn"}, {1, "block2_pool"},
};

static const char *needed_resnet[] = {"conv2_block2_out"};
static const char *needed_vgg[] = {"block3_conv1"};

static int setup(void **state) {
    (void)state;
    fusenet_error err;
    if (fusenet__write_random_weights(FUSENET_ARCH_RESNET50, 0, 21, RESNET_PATH, &err) != FUSENET_OK ||
        fusenet__write_random_weights(FUSENET_ARCH_VGG16, 0, 22, VGG_PATH, &err) != FUSENET_OK) {
        fprintf(stderr, "setup: %s\n", err.message);
        return -1;
    }
    fusenet_model_params p = fusenet_model_default_params();
    p.needed_layers = needed_resnet;
    p.n_needed = 1;
    if (fusenet_model_load(RESNET_PATH, &p, &resnet, &err) != FUSENET_OK) {
        fprintf(stderr, "setup: %s\n", err.message);
        return -1;
    }
    p.arch = FUSENET_ARCH_VGG16;
    p.needed_layers = needed_vgg;
    if (fusenet_model_load(VGG_PATH, &p, &vgg, &err) != FUSENET_OK) {
        fprintf(stderr, "setup: %s\n", err.message);
        return -1;
    }
    return 0;
}

static int teardown(void **state) {
    (void)state;
    fusenet_model_free(resnet);
    fusenet_model_free(vgg);
    remove(RESNET_PATH);
    remove(VGG_PATH);
    return 0;
}

static fusenet_tap tap_of(const tap_name *t) { return (fusenet_tap){t->vgg ? vgg : resnet, t->layer}; }

static float *random_input(uint64_t seed) {
    return fx_lcg_input((size_t)BATCH * IN_H * IN_W * 3, seed, 20001, -100.0f); /* caffe-like range */
}

static fusenet_net *build(const fusenet_tap *taps, size_t n, int fuse, fusenet_interp interp,
                          fusenet_size_policy size, int32_t oh, int32_t ow) {
    fusenet_net_params p = fx_net_params(taps, n, BATCH, IN_H, IN_W, fuse);
    p.resize = interp;
    p.size = size;
    p.out_h = oh;
    p.out_w = ow;
    fusenet_net *net = NULL;
    fusenet_error e;
    fusenet_status st = fusenet_net_build(&p, &net, &e);
    if (st) print_error("fusenet_net_build (%zu taps): %s: %s\n", n, fusenet_status_name(st), e.message);
    assert_int_equal(st, FUSENET_OK);
    return net;
}

static void run_ok(fusenet_net *net, float *x) {
    fusenet_error e;
    fusenet_tensor in = {x, BATCH, IN_H, IN_W, 3};
    fusenet_status st = fusenet_net_run(net, &in, &e);
    if (st) print_error("fusenet_net_run: %s: %s\n", fusenet_status_name(st), e.message);
    assert_int_equal(st, FUSENET_OK);
}

/* got against want: shape equal, max |got - want| <= TOL * max |want|. */
static void check_close(const fusenet_tensor *got, const ref_t *want, const char *what) {
    if (got->n != want->n || got->h != want->h || got->w != want->w || got->c != want->c) {
        print_error("%s: shape %dx%dx%dx%d, expected %dx%dx%dx%d\n", what, got->n, got->h, got->w, got->c, want->n,
                    want->h, want->w, want->c);
        fail();
    }
    double max_ref = 0.0, max_err = 0.0;
    size_t worst = 0;
    for (size_t k = 0; k < ref_count(want); k++) max_ref = fmax(max_ref, fabs(want->d[k]));
    for (size_t k = 0; k < ref_count(want); k++) {
        double err = fabs((double)got->data[k] - want->d[k]);
        if (!(err <= max_err)) { /* also catches NaN */
            max_err = isnan(err) ? INFINITY : err;
            worst = k;
        }
    }
    if (!(max_ref > 0.0) || !(max_err <= TOL * max_ref)) {
        print_error("%s: max abs error %.3g at element %zu (got %.9g, want %.9g), reference magnitude %.3g\n", what,
                    max_err, worst, (double)got->data[worst], want->d[worst], max_ref);
        fail();
    }
}

/* Every layer of `mixed`, each from a net tapping it alone, as double tensors. */
static void single_tap_refs(float *x, ref_t *refs) {
    for (int t = 0; t < MAX_TAPS; t++) {
        fusenet_tap tap = tap_of(&mixed[t]);
        fusenet_net *net = build(&tap, 1, 0, FUSENET_INTERP_BILINEAR, FUSENET_SIZE_MIN, 0, 0);
        run_ok(net, x);
        fusenet_tensor o;
        assert_int_equal(fusenet_net_tap_output(net, 0, &o, NULL), FUSENET_OK);
        int32_t h = o.h ? o.h : 1, w = o.w ? o.w : 1;
        refs[t] = ref_alloc(o.n, h, w, o.c);
        assert_non_null(refs[t].d);
        for (size_t k = 0; k < ref_count(&refs[t]); k++) refs[t].d[k] = (double)o.data[k];
        fusenet_net_free(net);
    }
}

typedef struct fuse_case {
    fusenet_interp interp;
    fusenet_size_policy size;
    int32_t oh, ow;
} fuse_case;

static const fuse_case cases[] = {
    {FUSENET_INTERP_BILINEAR, FUSENET_SIZE_MIN, 0, 0},
    {FUSENET_INTERP_NEAREST, FUSENET_SIZE_MAX, 0, 0},
    {FUSENET_INTERP_BILINEAR, FUSENET_SIZE_EXPLICIT, 7, 9},
    {FUSENET_INTERP_NEAREST, FUSENET_SIZE_MIN, 0, 0},
    {FUSENET_INTERP_BILINEAR, FUSENET_SIZE_MAX, 0, 0},
};

/* Fuses taps[0..n) (refs: their single-tap outputs) and checks the net. */
static void check_fused(const fusenet_tap *taps, const ref_t *refs, size_t n, const fuse_case *fc, float *x,
                        const char *label) {
    fusenet_net *net = build(taps, n, 1, fc->interp, fc->size, fc->oh, fc->ow);
    run_ok(net, x);
    int32_t th = refs[0].h, tw = refs[0].w;
    for (size_t t = 0; t < n; t++) {
        fusenet_tensor o;
        assert_int_equal(fusenet_net_tap_output(net, t, &o, NULL), FUSENET_OK);
        char what[160];
        snprintf(what, sizeof what, "%s, %zu taps: tap %zu (%s)", label, n, t, taps[t].layer);
        check_close(&o, &refs[t], what);
        int max = fc->size == FUSENET_SIZE_MAX;
        if (max ? refs[t].h > th : refs[t].h < th) th = refs[t].h;
        if (max ? refs[t].w > tw : refs[t].w < tw) tw = refs[t].w;
    }
    if (fc->size == FUSENET_SIZE_EXPLICIT) {
        th = fc->oh;
        tw = fc->ow;
    }
    /* the head: one resize step per tap not already at the fused size, one concat */
    int resizes[MAX_TAPS] = {0}, concats = 0;
    for (int s = 0; s < net->n_steps; s++) {
        const fn_step *st = &net->steps[s];
        if (st->kind == FN_STEP_RESIZE) {
            assert_true(st->tap >= 0 && st->tap < (int)n && st->node == -1);
            resizes[st->tap]++;
        }
        concats += st->kind == FN_STEP_CONCAT;
    }
    assert_int_equal(concats, 1);
    for (size_t t = 0; t < n; t++) assert_int_equal(resizes[t], refs[t].h != th || refs[t].w != tw);
    ref_t resized[MAX_TAPS];
    for (size_t t = 0; t < n; t++) resized[t] = ref_resize(&refs[t], th, tw, fc->interp == FUSENET_INTERP_NEAREST);
    ref_t want = ref_concat(resized, (int)n);
    fusenet_tensor got;
    fusenet_error e;
    assert_int_equal(fusenet_net_output(net, &got, &e), FUSENET_OK);
    char what[160];
    snprintf(what, sizeof what, "%s, %zu taps: fused map (%s, policy %d, %dx%d)", label, n,
             fc->interp == FUSENET_INTERP_NEAREST ? "nearest" : "bilinear", (int)fc->size, th, tw);
    check_close(&got, &want, what);
    ref_release(&want);
    for (size_t t = 0; t < n; t++) ref_release(&resized[t]);
    fusenet_net_free(net);
}

/* 1..16 taps of the mixed list, size policies and interpolations cycling. */
static void test_taps_1_to_16(void **state) {
    (void)state;
    fusenet_tap taps[MAX_TAPS];
    for (int t = 0; t < MAX_TAPS; t++) taps[t] = tap_of(&mixed[t]);
    for (size_t n = 1; n <= MAX_TAPS; n++) check_fused(taps, single, n, &cases[n % 5], input, "mixed");
}

/* 16 taps of one model only (each model in turn), and one layer tapped 16 times. */
static void test_taps_one_model(void **state) {
    (void)state;
    const ref_t *refs = single;
    float *x = input;
    for (int which = 0; which <= 1; which++) {
        fusenet_tap taps[MAX_TAPS];
        ref_t picked[MAX_TAPS];
        size_t n = 0;
        for (int round = 0; n < MAX_TAPS; round++) /* the model's layers of `mixed`, over and over */
            for (int t = 0; t < MAX_TAPS && n < MAX_TAPS; t++)
                if (mixed[t].vgg == which) {
                    taps[n] = tap_of(&mixed[t]);
                    picked[n++] = refs[t];
                }
        check_fused(taps, picked, n, &cases[which], x, which ? "vgg16 only" : "resnet50 only");
    }
    fusenet_tap same[MAX_TAPS];
    ref_t same_refs[MAX_TAPS];
    for (int t = 0; t < MAX_TAPS; t++) {
        same[t] = tap_of(&mixed[2]);
        same_refs[t] = refs[2];
    }
    check_fused(same, same_refs, MAX_TAPS, &cases[2], x, "one layer 16 times");
}

/* Outputs are readable only after a successful run: not before the first
 * one, not after a failed one. 17 taps are refused. */
static void test_outputs_after_failed_run(void **state) {
    (void)state;
    fusenet_tap taps[MAX_TAPS + 1];
    for (int t = 0; t <= MAX_TAPS; t++) taps[t] = tap_of(&mixed[t % MAX_TAPS]);
    fusenet_net_params p = fusenet_net_default_params();
    p.taps = taps;
    p.n_taps = MAX_TAPS + 1;
    p.batch = BATCH;
    p.in_h = IN_H;
    p.in_w = IN_W;
    fusenet_net *net = NULL;
    fusenet_error e;
    assert_int_equal(fusenet_net_build(&p, &net, &e), FUSENET_ERR_INVALID_ARG);
    assert_null(net);
    assert_non_null(strstr(e.message, "17 taps"));

    net = build(taps, 9, 1, FUSENET_INTERP_BILINEAR, FUSENET_SIZE_MIN, 0, 0);
    fusenet_tensor o;
    assert_int_equal(fusenet_net_output(net, &o, &e), FUSENET_ERR_INVALID_ARG);
    assert_non_null(strstr(e.message, "run"));
    assert_int_equal(fusenet_net_tap_output(net, 0, &o, &e), FUSENET_ERR_INVALID_ARG);
    float *x = random_input(9);
    run_ok(net, x);
    assert_int_equal(fusenet_net_output(net, &o, &e), FUSENET_OK);
    assert_int_equal(fusenet_net_tap_output(net, 8, &o, &e), FUSENET_OK);
    fusenet_tensor bad = {x, BATCH, IN_W, IN_H, 3};
    assert_int_equal(fusenet_net_run(net, &bad, &e), FUSENET_ERR_SHAPE);
    assert_int_equal(fusenet_net_output(net, &o, &e), FUSENET_ERR_INVALID_ARG);
    assert_non_null(strstr(e.message, "run"));
    assert_int_equal(fusenet_net_tap_output(net, 8, &o, &e), FUSENET_ERR_INVALID_ARG);
    run_ok(net, x);
    assert_int_equal(fusenet_net_output(net, &o, &e), FUSENET_OK);
    assert_true(o.n == BATCH && o.c > 0);
    fusenet_net_free(net);
    free(x);
}

static int group_setup(void **state) {
    if (setup(state)) return -1;
    input = random_input(7);
    single_tap_refs(input, single);
    return 0;
}

static int group_teardown(void **state) {
    for (int t = 0; t < MAX_TAPS; t++) ref_release(&single[t]);
    free(input);
    return teardown(state);
}

static long max_rss_kib(void) {
    struct rusage ru;
    assert_int_equal(getrusage(RUSAGE_SELF, &ru), 0);
    return ru.ru_maxrss;
}

/* Builds that would need more than the 16 GiB limit: NOMEM naming the
 * parameter at fault and the memory needed, and the process's peak memory
 * does not grow (nothing was allocated, let alone zero-filled, first). */
static void test_sizes_refused_up_front(void **state) {
    (void)state;
    fusenet_tap relu[MAX_TAPS];
    for (int t = 0; t < MAX_TAPS; t++) relu[t] = tap_of(&mixed[0]); /* conv1_relu, 64 channels */
    fusenet_tap pool = tap_of(&mixed[4]);
    static const struct {
        int n_taps, batch, in_h, in_w, out_h, out_w;
        const char *fault;
    } big[] = {
        /* conv1 alone: 8192 x 8192 x 64 floats, twice */
        {1, 1, 16384, 16384, 0, 0, "in_h x in_w 16384x16384 is too large even for one image"},
        /* about 110 MB per image */
        {1, 512, 1024, 1024, 0, 0, "batch 512 is too large: at most "},
        /* 2048 x 3072 x 1024 floats of fused map (24 GiB) from a 64 x 48 input */
        {16, 1, IN_H, IN_W, 2048, 3072, "out_h x out_w 2048x3072 is too large"},
        /* 4 GiB of fused map per image: 3 fit */
        {16, 5, IN_H, IN_W, 1024, 1024, "batch 5 is too large: at most 3 fit"},
    };
    long before = max_rss_kib();
    for (size_t k = 0; k < sizeof big / sizeof *big; k++) {
        fusenet_net_params p = fusenet_net_default_params();
        p.taps = big[k].n_taps == 1 ? &pool : relu;
        p.n_taps = (size_t)big[k].n_taps;
        p.batch = big[k].batch;
        p.in_h = big[k].in_h;
        p.in_w = big[k].in_w;
        if (big[k].out_h) {
            p.size = FUSENET_SIZE_EXPLICIT;
            p.out_h = big[k].out_h;
            p.out_w = big[k].out_w;
        }
        fusenet_net *net = (fusenet_net *)&p;
        fusenet_error e;
        assert_int_equal(fusenet_net_build(&p, &net, &e), FUSENET_ERR_NOMEM);
        assert_null(net);
        if (!strstr(e.message, big[k].fault) || !strstr(e.message, "GiB"))
            print_error("case %zu: message '%s' lacks '%s'\n", k, e.message, big[k].fault);
        assert_non_null(strstr(e.message, big[k].fault));
        assert_non_null(strstr(e.message, "GiB"));
    }
    long grown = max_rss_kib() - before;
    if (grown > 64 * 1024) print_error("peak memory grew by %ld KiB while refusing\n", grown);
    assert_true(grown <= 64 * 1024);
    /* the same taps at a size that fits still build */
    fusenet_net_params p = fusenet_net_default_params();
    p.taps = relu;
    p.n_taps = MAX_TAPS;
    p.batch = 1;
    p.in_h = IN_H;
    p.in_w = IN_W;
    p.size = FUSENET_SIZE_EXPLICIT;
    p.out_h = p.out_w = 64;
    fusenet_net *net = NULL;
    assert_int_equal(fusenet_net_build(&p, &net, NULL), FUSENET_OK);
    fusenet_net_free(net);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_taps_1_to_16),
        cmocka_unit_test(test_taps_one_model),
        cmocka_unit_test(test_outputs_after_failed_run),
        cmocka_unit_test(test_sizes_refused_up_front),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
