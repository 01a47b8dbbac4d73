/* test_perf.c - the yardsticks of `fusenet bench --profile`: the measured FMA
 * and int8 peaks (fusenet_measure_fma_peak, fusenet_measure_int8_peak) and the floating-point operations each step
 * reports, against the hand count of the spec (keras-models.md, section 9:
 * conv MACs = H_out x W_out x C_out x kh x kw x C_in, FLOPs = 2 x MACs).
 *
 * Nothing here depends on the ISA: the peak's kernel is checked against what
 * fusenet_get_system_info says oneDNN dispatches, and the FLOP totals do not
 * depend on which implementation runs a layer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <dnnl.h>
#include <zip.h>

#include "alloc.h"
#include "test_util.h"

#ifndef FN_BUILD_DIR
#define FN_BUILD_DIR "."
#endif
#define RESNET_PATH FN_BUILD_DIR "/perf_random_resnet50.h5"
#define VGG_PATH FN_BUILD_DIR "/perf_random_vgg16.h5"
#define VGG_KERAS_PATH FN_BUILD_DIR "/perf_random_vgg16.keras"         /* VGG_PATH as a stored .keras entry */
#define VGG_DEFLATED_PATH FN_BUILD_DIR "/perf_random_vgg16_deflated.keras" /* and as a deflated one */

typedef fusenet_status (*measure_fn)(int32_t threads, fusenet_fma_peak *out, fusenet_error *err);

/* What every peak call (`name`, measure) must give: one thread and the default team, the
 * same kernel for both, a real rate (above 0.1 and below max_rate a thread: miscounted
 * iterations or a loop the compiler removed land outside), and one-line errors for a NULL
 * out and thread counts out of range. Sets *info and *one (the one-thread measurement). */
static void check_peak_call(measure_fn measure, const char *name, double max_rate, fusenet_system_info *info,
                            fusenet_fma_peak *one) {
    fusenet_error err;
    expect_ok(fusenet_get_system_info(info, &err), &err);
    fusenet_fma_peak all;
    expect_ok(measure(1, one, &err), &err);
    expect_ok(measure(0, &all, &err), &err);
    assert_int_equal(one->threads, 1);
    assert_int_equal(all.threads, info->default_threads);
    assert_string_equal(all.isa, one->isa);
    assert_true(isfinite(one->gflops) && one->gflops > 0.1 && one->gflops < max_rate);
    assert_true(isfinite(all.gflops) && all.gflops > 0.1 && all.gflops < max_rate * all.threads);
    char out_msg[64];
    snprintf(out_msg, sizeof out_msg, "%s: out", name);
    expect_error(measure(1, NULL, &err), FUSENET_ERR_INVALID_ARG, &err, out_msg);
    expect_error(measure(-1, &all, &err), FUSENET_ERR_INVALID_ARG, &err, "threads -1");
    expect_error(measure(1025, &all, &err), FUSENET_ERR_INVALID_ARG, &err, "threads 1025");
}

static void test_fma_peak(void **state) {
    (void)state;
    fusenet_system_info info;
    fusenet_fma_peak one;
    check_peak_call(fusenet_measure_fma_peak, "fusenet_measure_fma_peak", 1e4, &info, &one);
    /* the widest kernel oneDNN's own level uses: AVX-512 only where oneDNN dispatches it */
    int avx512 = strncmp(info.isa, "avx512", 6) == 0, avx2 = strncmp(info.isa, "avx2", 4) == 0;
    if (strcmp(one.isa, "avx512") == 0)
        assert_true(avx512);
    else if (strcmp(one.isa, "avx2") == 0)
        assert_true(avx2 || avx512);
    else
        assert_string_equal(one.isa, "c");
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* The best rate of `rounds` one-thread 512^3 sgemms of oneDNN, in GFLOP/s. */
static double sgemm_gflops(int rounds) {
    const dnnl_dim_t n = 512;
    float *a = malloc(sizeof(float) * 3 * n * n), *b = a + n * n, *c = b + n * n; /* A, B and C in one block */
    assert_non_null(a);
    for (dnnl_dim_t i = 0; i < n * n; i++) {
        a[i] = (float)(i % 17) * 0.01f;
        b[i] = (float)(i % 13) * 0.01f;
    }
    double best = 0.0;
    for (int r = 0; r < rounds; r++) {
        double t0 = now_s();
        assert_int_equal(dnnl_sgemm('N', 'N', n, n, n, 1.0f, a, n, b, n, 0.0f, c, n), dnnl_success);
        double s = now_s() - t0, rate = 2.0 * (double)n * n * n / s / 1e9;
        if (rate > best) best = rate;
    }
    free(a);
    return best;
}

/* The peak against an independent yardstick: no kernel outruns the FMA
 * units, and oneDNN's sgemm runs at 80-95% of them, so the peak measured on
 * one thread is at least 0.6 of the best sgemm rate. (A kernel whose
 * accumulators a compiler left in memory measured 0.25-0.3 of it; the
 * bound holds whatever this test is built with: CI runs it at -O3 and,
 * under the sanitizers, at -O0.) Best of alternated rounds on both sides,
 * so a busy moment on a shared machine lowers neither alone. */

/* Alternated rounds on one thread: *peak the best of `measure`, *gemm the best of `gemm`. */
static void peak_and_gemm(measure_fn measure, double (*gemm_rate)(int rounds), double *peak, double *gemm) {
    fusenet_error err;
    int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    *peak = 0.0;
    *gemm = 0.0;
    for (int round = 0; round < 3; round++) {
        fusenet_fma_peak one;
        expect_ok(measure(1, &one, &err), &err);
        if (one.gflops > *peak) *peak = one.gflops;
        double g = gemm_rate(5);
        if (g > *gemm) *gemm = g;
    }
    omp_set_num_threads(threads);
}

static void test_fma_peak_against_sgemm(void **state) {
    (void)state;
    double peak, gemm;
    peak_and_gemm(fusenet_measure_fma_peak, sgemm_gflops, &peak, &gemm);
    print_message("fma peak %.1f GFLOP/s, oneDNN sgemm %.1f GFLOP/s (1 thread): %.2f of it\n", peak, gemm, gemm / peak);
    assert_true(peak >= 0.6 * gemm);
}

/* The int8 peak: the instructions of oneDNN's level (VNNI only where int8 mode
 * says VNNI, AVX-512 only where oneDNN dispatches it), a real rate, and against
 * an independent yardstick: oneDNN's u8 x s8 gemm, built on the same
 * instructions, cannot outrun them, so the peak on one thread is at least 0.6
 * of its best rate (as the float32 peak against sgemm). */
static double igemm_gops(int rounds) {
    const dnnl_dim_t n = 512;
    uint8_t *a = malloc((size_t)(n * n));
    int8_t *b = malloc((size_t)(n * n));
    int32_t *c = malloc(sizeof(int32_t) * (size_t)(n * n));
    assert_true(a && b && c);
    for (dnnl_dim_t i = 0; i < n * n; i++) {
        a[i] = (uint8_t)(i % 251);
        b[i] = (int8_t)(i % 61 - 30);
    }
    int32_t co = 0;
    double best = 0.0;
    for (int r = 0; r < rounds; r++) {
        double t0 = now_s();
        assert_int_equal(dnnl_gemm_u8s8s32('N', 'N', 'F', n, n, n, 1.0f, a, n, 0, b, n, 0, 0.0f, c, n, &co),
                         dnnl_success);
        double s = now_s() - t0, rate = 2.0 * (double)n * n * n / s / 1e9;
        if (rate > best) best = rate;
    }
    free(a);
    free(b);
    free(c);
    return best;
}

static void test_int8_peak(void **state) {
    (void)state;
    fusenet_system_info info;
    fusenet_fma_peak one;
    check_peak_call(fusenet_measure_int8_peak, "fusenet_measure_int8_peak", 4e4, &info, &one);
    int avx512 = strncmp(info.isa, "avx512", 6) == 0, avx2 = strncmp(info.isa, "avx2", 4) == 0;
    if (strcmp(one.isa, "avx512_vnni") == 0)
        assert_true(avx512 && info.int8_vnni);
    else if (strcmp(one.isa, "avx512") == 0)
        assert_true(avx512 && !info.int8_vnni);
    else if (strcmp(one.isa, "avx2") == 0)
        assert_true(avx2 || avx512);
    else if (strcmp(one.isa, "sse41") == 0)
        assert_true(strcmp(info.isa, "sse41") == 0 || strcmp(info.isa, "avx") == 0 || avx2 || avx512);
    else
        assert_string_equal(one.isa, "c");
    if (strcmp(one.isa, "c") != 0) {
        double peak, gemm;
        peak_and_gemm(fusenet_measure_int8_peak, igemm_gops, &peak, &gemm);
        print_message("int8 peak %.1f GOP/s (%s), oneDNN u8s8s32 gemm %.1f GOP/s (1 thread): %.2f of it\n", peak,
                      one.isa, gemm, gemm / peak);
        assert_true(peak >= 0.6 * gemm);
    }
}

/* Sum of the flops of model m's steps (m -1: the fuse head's). */
static double model_flops(const fusenet_net *net, int32_t m) {
    double sum = 0;
    for (size_t i = 0; i < fusenet_net_step_count(net); i++) {
        fusenet_step_info s;
        expect_ok(fusenet_net_step_info(net, i, &s, NULL), NULL);
        if (s.model == m) sum += s.flops;
    }
    return sum;
}

/* The default dual product at 224 x 224: ResNet50 to conv4_block6_out is
 * 3,123,757,056 MACs, VGG16 to block5_conv3 15,346,630,656 (the spec's hand
 * count, which matches torchvision's published totals); 2 and 8 times that at batch 2 and 8;
 * the fuse head computes none. At batch 8, micro-batching (memplan.h) runs
 * VGG16's first blocks (to block3_pool) and ResNet50's (to conv3_block4_out)
 * one image at a time, each image's activations reusing the bytes of the
 * one before: each image beyond the first then costs less than half a
 * block1_conv1 output (224 x 224 x 64 floats, 12.8 MB) of memory. What grows
 * with the batch is only what follows the cuts, 28 x 28 and smaller (at most
 * 28 x 28 x (256 + 512) floats, 2.4 MB, alive at once in block4), and the two
 * taps and the fused map (14 x 14 x (1024 + 512 + 1536) floats, 2.4 MB).
 * Without micro-batching an image costs two block1_conv1 outputs; when every
 * micro-batch kept its own activations, 0.57 of one. */
static void test_dual_flops_224(void **state) {
    (void)state;
    fusenet_dual_params p = fx_dual_params(RESNET_PATH, VGG_PATH, 224, 224);
    static const int32_t batches[3] = {1, 2, 8};
    size_t bytes[9] = {0};
    for (int k = 0; k < 3; k++) {
        int32_t batch = batches[k];
        p.net.batch = batch;
        fusenet_net *net;
        fusenet_error err;
        expect_ok(fusenet_build_dual(&p, &net, &err), &err);
        assert_true(model_flops(net, 0) == 2.0 * batch * 3123757056.0);
        assert_true(model_flops(net, 1) == 2.0 * batch * 15346630656.0);
        assert_true(model_flops(net, -1) == 0.0);
        bytes[batch] = fusenet_net_memory_bytes(net);
        fusenet_net_free(net);
    }
    print_message("net memory at batch 1 / 8: %.1f / %.1f MB\n", bytes[1] / 1e6, bytes[8] / 1e6);
    assert_true(bytes[8] > bytes[1] && (double)(bytes[8] - bytes[1]) < 7 * 0.5 * 224 * 224 * 64 * 4);
}

/* The one-call build reads each layer's weights from the file when it
 * compiles that layer (model.h, deferred models), so an int8 build_dual never
 * holds the float32 weights of a whole trunk: the most library memory alive
 * during it stays under VGG16's own convolution weights in float32
 * (14,714,688 parameters, Keras' count for VGG16 without its top; both
 * trunks' raw weights were alive at once before, ~93 MB). The calibration is
 * made first, on one random batch at 64 x 64, outside the measured span.
 *
 * The same holds with VGG16's weights in a .keras archive whose entry is
 * stored, as Keras writes it (keras_zip.h: read in place, no copy of the
 * 59 MB entry); a deflated entry has to be inflated into memory whole, and
 * the same measurement sees that copy (the check that it can see one). */
static size_t int8_build_peak(const char *vgg) {
    fusenet_dual_params p = fx_dual_params(RESNET_PATH, VGG_PATH, 64, 64);
    fusenet_calibration *cal;
    fusenet_error err;
    expect_ok(fusenet_calibration_create_dual(&p, &cal, &err), &err);
    size_t n = 64 * 64 * 3;
    float *x = test_malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = (float)((int)(i * 2654435761u % 255u) - 127);
    fusenet_tensor in = {x, 1, 64, 64, 3};
    expect_ok(fusenet_calibration_add(cal, &in, &err), &err);
    p.vgg_weights = vgg;
    p.net.mode = FUSENET_MODE_INT8;
    p.net.calibration = cal;
    fusenet__alloc_peak_reset();
    size_t before = fusenet__alloc_peak_reset(); /* what is alive now: the calibration and its net */
    fusenet_net *net;
    expect_ok(fusenet_build_dual(&p, &net, &err), &err);
    size_t peak = fusenet__alloc_peak_reset() - before;
    print_message("int8 build_dual at 64x64, VGG16 from %s: %.1f MB of library memory at most (VGG16 conv weights "
                  "in float32: %.1f MB)\n", strrchr(vgg, '/') + 1, peak / 1e6, 4.0 * 14714688 / 1e6);
    fusenet_net_free(net);
    fusenet_calibration_free(cal);
    test_free(x);
    return peak;
}

static void test_int8_build_peak(void **state) {
    (void)state;
    assert_true((double)int8_build_peak(VGG_PATH) < 4.0 * 14714688);
    assert_true((double)int8_build_peak(VGG_KERAS_PATH) < 4.0 * 14714688);
    assert_true((double)int8_build_peak(VGG_DEFLATED_PATH) > 4.0 * 14714688);
}

/* A .keras archive (metadata.json, config.json, model.weights.h5) around the
 * weights file h5, its entry stored or deflated; 0 on success. Our reader
 * takes a legacy weights file in the archive as well as Keras 3's. */
static int write_keras(const char *h5, const char *path, zip_int32_t method) {
    int e;
    zip_t *za = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &e);
    if (!za) return -1;
    static const char meta[] = "{\"keras_version\": \"3.6.0\"}";
    zip_source_t *m = zip_source_buffer(za, meta, sizeof meta - 1, 0), *c = zip_source_buffer(za, "{}", 2, 0),
                 *w = zip_source_file(za, h5, 0, -1);
    zip_int64_t i = -1;
    if (!m || zip_file_add(za, "metadata.json", m, 0) < 0 || !c || zip_file_add(za, "config.json", c, 0) < 0 || !w ||
        (i = zip_file_add(za, "model.weights.h5", w, 0)) < 0 || zip_set_file_compression(za, (zip_uint64_t)i, method, 1)) {
        zip_discard(za);
        return -1;
    }
    return zip_close(za);
}

static int group_setup(void **state) {
    (void)state;
    if (fx_write_weights(FUSENET_ARCH_RESNET50, 7, RESNET_PATH) || fx_write_weights(FUSENET_ARCH_VGG16, 8, VGG_PATH))
        return -1;
    if (write_keras(VGG_PATH, VGG_KERAS_PATH, ZIP_CM_STORE)) return -1;
    return write_keras(VGG_PATH, VGG_DEFLATED_PATH, ZIP_CM_DEFLATE);
}

static int group_teardown(void **state) {
    (void)state;
    remove(RESNET_PATH);
    remove(VGG_PATH);
    remove(VGG_KERAS_PATH);
    remove(VGG_DEFLATED_PATH);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fma_peak),
        cmocka_unit_test(test_fma_peak_against_sgemm),
        cmocka_unit_test(test_int8_peak),
        cmocka_unit_test(test_dual_flops_224),
        cmocka_unit_test(test_int8_build_peak),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
