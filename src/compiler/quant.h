/* quant.h - int8 quantization shared by the compiler, the runtime and the
 * calibration (private).
 *
 * A quantized value x is stored as q = round(x / scale) clamped to [0, 255]
 * (u8, values >= 0) or [-127, 127] (s8), so x ~ q * scale; scale = t / levels
 * for a clipping threshold t on |x| that the calibration chose. Weights are s8
 * per output channel: scale_w[o] = max|w[.., o]| / weight_levels. An int8 conv
 * computes acc = sum q_src * q_w in int32, and oneDNN writes
 *     dst = output_scale[o] * (acc + bias'[o])  (+ sum_scale * shortcut)  (ReLU)
 * with bias'[o] = b[o] / (scale_src * scale_w[o]) and output_scale[o] =
 * scale_src * scale_w[o] / scale_dst (scale_dst = 1 for a float32 dst),
 * sum_scale = scale_shortcut / scale_dst: oneDNN's int8 inference guide
 * (doc/advanced/int8_computations.md, examples/cnn_inference_int8.cpp, v2.6).
 */
#ifndef FN_QUANT_H
#define FN_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "fusenet.h"
#include "graph.h"

#define FN_CALIB_BINS 2048
#define FN_CALIB_METHODS 3 /* minmax, percentile, mse: fusenet_calib_method - 1 */
#define FN_CALIB_MAX_LAYERS 4096
#define FN_CALIB_PERCENTILE 99.99
#define FN_CALIB_MAX_MODELS 16
/* int8_layers AUTO keeps a value float32 (its producer writes float32, the convs reading it
 * run fp32) when 8 bits lose more than this share of its power: SQNR under 30 dB */
#define FN_CALIB_AUTO_BOUND 1e-3

/* One model a calibration was made for. */
typedef struct fn_calib_model {
    char arch[32];                      /* "resnet50", ... (fusenet__arch_name) */
    uint64_t hash;                      /* fusenet__weights_hash of the net's live layers */
    int n_taps;
    char taps[FN_CALIB_MAX_MODELS][FN_NAME_MAX];
} fn_calib_model;

/* One layer value's statistics. */
typedef struct fn_calib_layer {
    int model;               /* index into the calibration's models */
    char name[FN_NAME_MAX];  /* the Keras layer whose value it is (a chain's end) */
    double min, max;         /* over every element seen */
    double thr[FN_CALIB_METHODS]; /* |x| thresholds: minmax, percentile, mse */
    int keep_fp32;           /* 1: int8_layers AUTO keeps it float32 (sensitivity over FN_CALIB_AUTO_BOUND) */
    double sensitivity;      /* E[(q(x) - x)^2] / E[x^2] with the calibration's method (fusenet__calib_sensitivity) */
    /* while collecting: histogram of |x| over [0, range) */
    uint64_t *hist;
    double range;
} fn_calib_layer;

struct fusenet_calibration {
    int method; /* fusenet_calib_method, never DEFAULT */
    int n_models;
    fn_calib_model models[FN_CALIB_MAX_MODELS];
    fn_calib_layer *layers;
    int n_layers;
    size_t cap_layers;
    int64_t images;
    int final; /* thresholds computed from the histograms (or loaded) */
    fusenet_net *net; /* the fp32 net while collecting; NULL once loaded */
    float *spare;     /* a batch of the net's size for adds of fewer images */
    int32_t valid;    /* images of the running batch that count (the rest are spare slots) */
};

/* Weight levels of s8 weights on this CPU: 127 with VNNI, 63 without. */
int fusenet__int8_weight_levels(void);
/* 1 if oneDNN has an int8 (u8 x s8) convolution on this CPU. */
int fusenet__int8_offered(void);

/* A 64-bit hash of n bytes, continuing from h (start with FN_HASH_SEED). */
#define FN_HASH_SEED 0x9e3779b97f4a7c15ull
uint64_t fusenet__hash_bytes(uint64_t h, const void *p, size_t n);

/* s8 weights per output channel: w in Keras order (.., out) with `filters`
 * (at most FN_QUANT_MAX_FILTERS) output channels, kernel_elems elements; q gets
 * round(w * (1 / scale[o])) (nearest, ties to even) in [-levels, levels],
 * scale[o] = max|w[.., o]| / levels (1 for an all-zero channel). */
#define FN_QUANT_MAX_FILTERS 8192
void fusenet__quantize_weights(const float *w, size_t kernel_elems, int filters, int levels, int8_t *q, float *scale);

/* The threshold-derived scale of a calibration layer under the calibration's method, for
 * a value that is unsigned (levels 255) or signed (127). */
float fusenet__calib_scale(const fusenet_calibration *cal, const fn_calib_layer *l, int is_unsigned);

/* The layer `name` of calibration model `model`, or NULL. */
const fn_calib_layer *fusenet__calib_find(const fusenet_calibration *cal, int model, const char *name);

/* The runtime's hook: a calibrating net calls it after each compute step with
 * the step's model index, node name and its float32 destination. */
fusenet_status fusenet__calib_observe(fusenet_calibration *cal, int model, const char *layer, const float *data,
                                      size_t n, fusenet_error *err);

/* The relative squared error of quantizing the histogram's |x| with threshold t:
 * E[(q(x) - x)^2] / E[x^2] over the nonzero values (exact zeros quantize exactly). */
double fusenet__calib_sensitivity(const uint64_t *hist, int bins, double range, double t, int is_unsigned);

/* Thresholds of every method from a histogram of |x| (bins over [0, range)), max |x| amax. */
void fusenet__calib_thresholds(const uint64_t *hist, int bins, double range, double amax, int is_unsigned,
                               double thr[FN_CALIB_METHODS]);

#endif
