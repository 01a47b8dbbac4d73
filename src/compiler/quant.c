/* quant.c - int8 arithmetic shared by the compiler and the calibration:
 * weight levels per ISA, weight quantization, thresholds from histograms. */
#include "quant.h"

#include <math.h>
#include <oneapi/dnnl/dnnl.h>
#include <string.h>

#include "ops.h"

/* oneDNN's int8 convolutions without VNNI (AVX2, AVX-512 core) multiply u8 x s8
 * pairs with vpmaddubsw, which adds two products into a saturating 16-bit sum:
 * 2 * 255 * 127 overflows it, 2 * 255 * 63 does not. oneDNN's int8 guide
 * ("Nuances of int8 computations", v2.6) therefore recommends 7-bit weights
 * there; VNNI (vpdpbusd) sums in 32 bits. */
int fusenet__int8_weight_levels(void) {
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    int vnni = isa == dnnl_cpu_isa_avx2_vnni || isa == dnnl_cpu_isa_avx512_core_vnni ||
               isa == dnnl_cpu_isa_avx512_core_bf16 || isa == dnnl_cpu_isa_avx512_core_amx;
    return vnni ? 127 : 63;
}

/* Asks oneDNN for a u8 x s8 convolution of a shape int8 mode uses (ResNet50's
 * conv2 3x3: 64 -> 64 channels at 56 x 56). */
static int int8_probe(void) {
    dnnl_engine_t eng;
    if (dnnl_engine_create(&eng, dnnl_cpu, 0) != dnnl_success) return 0;
    dnnl_memory_desc_t src, w, b, dst;
    dnnl_dims_t sd = {1, 64, 56, 56}, w_dims = {64, 64, 3, 3}, b_dims = {64}, strides = {1, 1}, pad = {1, 1};
    dnnl_memory_desc_init_by_tag(&src, 4, sd, dnnl_u8, dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&dst, 4, sd, dnnl_u8, dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&w, 4, w_dims, dnnl_s8, dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&b, 1, b_dims, dnnl_f32, dnnl_x);
    dnnl_convolution_desc_t cd;
    dnnl_primitive_desc_t pd = NULL;
    int offered = dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct, &src, &w,
                                                     &b, &dst, strides, pad, pad) == dnnl_success &&
                  dnnl_primitive_desc_create(&pd, &cd, NULL, eng, NULL) == dnnl_success;
    if (offered) {
        /* a reference implementation would be slower than fp32: not worth offering */
        const char *impl = fusenet__pd_impl(pd);
        offered = strncmp(impl, "ref", 3) != 0;
    }
    if (pd) dnnl_primitive_desc_destroy(pd);
    dnnl_engine_destroy(eng);
    return offered;
}

/* The CPU does not change while the process runs: asked once (every build asks). */
int fusenet__int8_offered(void) {
    static int cached = -1;
    int v = __atomic_load_n(&cached, __ATOMIC_ACQUIRE);
    if (v < 0) {
        v = int8_probe();
        __atomic_store_n(&cached, v, __ATOMIC_RELEASE);
    }
    return v;
}

/* Four independent lanes of 8 bytes (a multiply-xorshift mix each, about 0.3 ns
 * per word), folded together with the tail and the length at the end. */
static inline uint64_t mix(uint64_t h, uint64_t w) {
    h = (h ^ w) * 0xff51afd7ed558ccdull;
    return h ^ (h >> 29);
}

uint64_t fusenet__hash_bytes(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    uint64_t lane[4] = {h, h ^ 0x9e3779b97f4a7c15ull, h ^ 0xc4ceb9fe1a85ec53ull, h ^ 0x632be59bd9b4e019ull};
    size_t i = 0;
    for (; i + 32 <= n; i += 32)
        for (int k = 0; k < 4; k++) {
            uint64_t w;
            memcpy(&w, b + i + 8 * (size_t)k, 8);
            lane[k] = mix(lane[k], w);
        }
    for (; i < n; i++) lane[0] = mix(lane[0], b[i]);
    h = mix(mix(mix(lane[0], lane[1]), lane[2]), lane[3]);
    h = mix(h, (uint64_t)n);
    h *= 0x9e3779b97f4a7c15ull;
    return h ^ (h >> 32);
}

/* Round to nearest even for |v| < 2^22: adding and subtracting 1.5 * 2^23 leaves no
 * fraction bits (the default rounding mode rounds the sum); a plain expression the
 * compiler vectorises, where nearbyintf is a libm call per weight. */
static inline float round_even(float v) {
    const float magic = 12582912.0f; /* IEEE arithmetic: (v + m) - m is not v (no -ffast-math here) */
    return (v + magic) - magic;
}

void fusenet__quantize_weights(const float *w, size_t kernel_elems, int filters, int levels, int8_t *q, float *scale) {
    size_t f = (size_t)filters;
    for (size_t o = 0; o < f; o++) scale[o] = 0.0f;
    for (size_t base = 0; base < kernel_elems; base += f) /* Keras order: the output channel varies fastest */
        for (size_t o = 0; o < f; o++) {
            float a = fabsf(w[base + o]);
            scale[o] = a > scale[o] ? a : scale[o];
        }
    float inv[FN_QUANT_MAX_FILTERS];
    for (size_t o = 0; o < f; o++) {
        scale[o] = scale[o] > 0.0f ? scale[o] / (float)levels : 1.0f;
        inv[o] = 1.0f / scale[o];
    }
    float hi = (float)levels;
    for (size_t base = 0; base < kernel_elems; base += f)
        for (size_t o = 0; o < f; o++) {
            float v = round_even(w[base + o] * inv[o]);
            q[base + o] = (int8_t)(v > hi ? hi : v < -hi ? -hi : v);
        }
}

/* Expected squared error of quantizing |x| with threshold t (levels steps):
 * clipped values lose (v - t)^2; others round, losing v^2 if they round to
 * zero and step^2 / 12 (uniform rounding) otherwise. Bin centres stand for
 * their values. */
static double quant_mse(const uint64_t *hist, int bins, double width, double t, int levels) {
    double step = t / levels, e = 0.0;
    for (int i = 0; i < bins; i++) {
        if (!hist[i]) continue;
        double v = (i + 0.5) * width;
        double d = v > t ? (v - t) * (v - t) : v < step / 2 ? v * v : step * step / 12.0;
        e += (double)hist[i] * d;
    }
    return e;
}

double fusenet__calib_sensitivity(const uint64_t *hist, int bins, double range, double t, int is_unsigned) {
    double width = range / bins, power = 0.0;
    for (int i = 0; i < bins; i++) power += (double)hist[i] * ((i + 0.5) * width) * ((i + 0.5) * width);
    if (!(power > 0.0) || !(t > 0.0)) return 0.0;
    return quant_mse(hist, bins, width, t, is_unsigned ? 255 : 127) / power;
}

void fusenet__calib_thresholds(const uint64_t *hist, int bins, double range, double amax, int is_unsigned,
                               double thr[FN_CALIB_METHODS]) {
    double width = range / bins;
    uint64_t total = 0;
    for (int i = 0; i < bins; i++) total += hist[i];
    thr[0] = thr[1] = thr[2] = amax;
    if (total == 0 || amax <= 0.0) return;
    /* percentile: the upper edge of the bin where the count reaches it */
    double want = (double)total * (FN_CALIB_PERCENTILE / 100.0), cum = 0.0;
    for (int i = 0; i < bins; i++) {
        cum += (double)hist[i];
        if (cum >= want) {
            thr[1] = fmin((i + 1) * width, amax);
            break;
        }
    }
    /* MSE: every bin edge from 1/64 of the range up to amax */
    int levels = is_unsigned ? 255 : 127, top = (int)ceil(amax / width);
    if (top > bins) top = bins;
    double best = -1.0;
    for (int i = bins / 64; i <= top; i++) {
        double t = i == top ? amax : (double)i * width;
        if (t <= 0.0) continue;
        double e = quant_mse(hist, bins, width, t, levels);
        if (best < 0.0 || e < best) {
            best = e;
            thr[2] = t;
        }
    }
}

float fusenet__calib_scale(const fusenet_calibration *cal, const fn_calib_layer *l, int is_unsigned) {
    double t = l->thr[cal->method - 1];
    if (!(t > 0.0)) t = l->max > 0.0 ? l->max : -l->min > 0.0 ? -l->min : 1.0; /* an all-zero value */
    /* A file may hold thresholds so small (5e-80) that t / 255 underflows
     * float to 0: floor them at 1e-30, far above that, where every such value
     * quantizes to 0 anyway. */
    if (t < 1e-30) t = 1e-30;
    return (float)(t / (is_unsigned ? 255.0 : 127.0));
}

const fn_calib_layer *fusenet__calib_find(const fusenet_calibration *cal, int model, const char *name) {
    for (int i = 0; i < cal->n_layers; i++)
        if (cal->layers[i].model == model && strcmp(cal->layers[i].name, name) == 0) return &cal->layers[i];
    return NULL;
}
