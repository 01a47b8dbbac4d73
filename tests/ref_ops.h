/* ref_ops.h - naive reference implementations of the Keras / TensorFlow layers
 * the compiler handles, for the op tests (header-only, test code only).
 *
 * Written straight from the Keras and TensorFlow definitions with plain loops,
 * in double precision, on dense NHWC tensors. Nothing here calls the library:
 * it is the independent side of every comparison.
 *
 *  - Conv2D: out[n,y,x,o] = bias[o] + sum_{ky,kx,i} in[n, y*s - pt + ky, x*s - pl + kx, i] * k[ky,kx,i,o]
 *    (kernel in Keras' (kh, kw, in, out) layout, zeros outside the input).
 *    'valid': out = floor((in - k) / s) + 1, no padding. 'same': out = ceil(in / s),
 *    total padding max((out - 1) * s + k - in, 0), the smaller half before
 *    (TensorFlow puts the odd cell at the bottom / right).
 *  - BatchNormalization (inference): gamma * (x - mean) / sqrt(var + eps) + beta.
 *  - MaxPooling2D (padding 'valid'): max over the k x k window, trailing rows
 *    and columns that do not fill a window are dropped.
 *  - ZeroPadding2D: zeros around.  Activation('relu'): max(x, 0).  Add: a + b.
 *  - GlobalAverage/MaxPooling2D: mean / max over H and W.
 *  - Flatten: (h, w, c) order, which is the NHWC memory order itself.
 *  - Dense: out[n,u] = bias[u] + sum_i in[n,i] * k[i,u] (kernel (in, out)); softmax.
 *  - tf.image.resize (half_pixel_centers, no antialias): coordinates computed
 *    in float32 as TensorFlow does (this decides ties), values in double.
 */
#ifndef FN_REF_OPS_H
#define FN_REF_OPS_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A dense NHWC double tensor; flat (N, C) tensors use h = w = 1. */
typedef struct ref_t {
    double *d;
    int n, h, w, c;
} ref_t;

static inline ref_t ref_alloc(int n, int h, int w, int c) {
    ref_t t = {NULL, n, h, w, c};
    size_t count = (size_t)n * (size_t)h * (size_t)w * (size_t)c;
    t.d = calloc(count ? count : 1, sizeof *t.d);
    return t;
}

static inline void ref_release(ref_t *t) {
    free(t->d);
    t->d = NULL;
}

static inline size_t ref_count(const ref_t *t) { return (size_t)t->n * (size_t)t->h * (size_t)t->w * (size_t)t->c; }

static inline double *ref_at(const ref_t *t, int n, int y, int x, int c) {
    return t->d + ((((size_t)n * (size_t)t->h + (size_t)y) * (size_t)t->w + (size_t)x) * (size_t)t->c + (size_t)c);
}

/* ---- Keras padding arithmetic ---- */

/* Output size of Conv2D / MaxPooling2D along one axis. */
static inline int ref_window_out(int in, int k, int stride, int same) {
    if (same) return (in + stride - 1) / stride;
    if (in < k) return 0;
    return (in - k) / stride + 1;
}

/* Leading padding of 'same' along one axis (0 for 'valid'). */
static inline int ref_same_before(int in, int k, int stride, int same) {
    if (!same) return 0;
    int out = (in + stride - 1) / stride;
    int total = (out - 1) * stride + k - in;
    if (total < 0) total = 0;
    return total / 2;
}

/* ---- layers ---- */

static inline ref_t ref_zero_pad(const ref_t *x, int pad) {
    ref_t y = ref_alloc(x->n, x->h + 2 * pad, x->w + 2 * pad, x->c);
    for (int n = 0; n < x->n; n++)
        for (int i = 0; i < x->h; i++)
            for (int j = 0; j < x->w; j++)
                for (int c = 0; c < x->c; c++) *ref_at(&y, n, i + pad, j + pad, c) = *ref_at(x, n, i, j, c);
    return y;
}

/* kernel: (k, k, x->c, filters) Keras layout; bias: filters values. */
static inline ref_t ref_conv2d(const ref_t *x, const float *kernel, const float *bias, int filters, int k, int stride,
                               int same, int relu) {
    int oh = ref_window_out(x->h, k, stride, same), ow = ref_window_out(x->w, k, stride, same);
    int pt = ref_same_before(x->h, k, stride, same), pl = ref_same_before(x->w, k, stride, same);
    ref_t y = ref_alloc(x->n, oh, ow, filters);
    for (int n = 0; n < x->n; n++)
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++)
                for (int o = 0; o < filters; o++) {
                    double s = (double)bias[o];
                    for (int ky = 0; ky < k; ky++) {
                        int iy = oy * stride - pt + ky;
                        if (iy < 0 || iy >= x->h) continue;
                        for (int kx = 0; kx < k; kx++) {
                            int ix = ox * stride - pl + kx;
                            if (ix < 0 || ix >= x->w) continue;
                            for (int i = 0; i < x->c; i++)
                                s += *ref_at(x, n, iy, ix, i) *
                                     (double)kernel[(((size_t)ky * k + kx) * x->c + i) * filters + o];
                        }
                    }
                    *ref_at(&y, n, oy, ox, o) = relu && s < 0.0 ? 0.0 : s;
                }
    return y;
}

static inline ref_t ref_batch_norm(const ref_t *x, const float *gamma, const float *beta, const float *mean,
                                   const float *var, double eps) {
    ref_t y = ref_alloc(x->n, x->h, x->w, x->c);
    size_t pixels = (size_t)x->n * x->h * x->w;
    for (size_t p = 0; p < pixels; p++)
        for (int c = 0; c < x->c; c++) {
            double v = x->d[p * x->c + c];
            y.d[p * x->c + c] =
                (double)gamma[c] * (v - (double)mean[c]) / sqrt((double)var[c] + eps) + (double)beta[c];
        }
    return y;
}

static inline ref_t ref_relu(const ref_t *x) {
    ref_t y = ref_alloc(x->n, x->h, x->w, x->c);
    for (size_t i = 0; i < ref_count(x); i++) y.d[i] = x->d[i] > 0.0 ? x->d[i] : 0.0;
    return y;
}

static inline ref_t ref_add(const ref_t *a, const ref_t *b) {
    ref_t y = ref_alloc(a->n, a->h, a->w, a->c);
    for (size_t i = 0; i < ref_count(a); i++) y.d[i] = a->d[i] + b->d[i];
    return y;
}

/* MaxPooling2D(pool_size=k, strides=stride, padding='valid'). */
static inline ref_t ref_max_pool(const ref_t *x, int k, int stride) {
    int oh = ref_window_out(x->h, k, stride, 0), ow = ref_window_out(x->w, k, stride, 0);
    ref_t y = ref_alloc(x->n, oh, ow, x->c);
    for (int n = 0; n < x->n; n++)
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++)
                for (int c = 0; c < x->c; c++) {
                    double m = -INFINITY;
                    for (int ky = 0; ky < k; ky++)
                        for (int kx = 0; kx < k; kx++) {
                            double v = *ref_at(x, n, oy * stride + ky, ox * stride + kx, c);
                            if (v > m) m = v;
                        }
                    *ref_at(&y, n, oy, ox, c) = m;
                }
    return y;
}

static inline ref_t ref_global_pool(const ref_t *x, int is_max) {
    ref_t y = ref_alloc(x->n, 1, 1, x->c);
    for (int n = 0; n < x->n; n++)
        for (int c = 0; c < x->c; c++) {
            double s = is_max ? -INFINITY : 0.0;
            for (int i = 0; i < x->h; i++)
                for (int j = 0; j < x->w; j++) {
                    double v = *ref_at(x, n, i, j, c);
                    if (is_max)
                        s = v > s ? v : s;
                    else
                        s += v;
                }
            *ref_at(&y, n, 0, 0, c) = is_max ? s : s / ((double)x->h * (double)x->w);
        }
    return y;
}

/* Flatten: element (h, w, c) goes to h * W * C + w * C + c. */
static inline ref_t ref_flatten(const ref_t *x) {
    ref_t y = ref_alloc(x->n, 1, 1, x->h * x->w * x->c);
    for (int n = 0; n < x->n; n++)
        for (int i = 0; i < x->h; i++)
            for (int j = 0; j < x->w; j++)
                for (int c = 0; c < x->c; c++)
                    *ref_at(&y, n, 0, 0, (i * x->w + j) * x->c + c) = *ref_at(x, n, i, j, c);
    return y;
}

/* act: 0 none, 1 relu, 2 softmax. kernel (fan_in, units). */
static inline ref_t ref_dense(const ref_t *x, const float *kernel, const float *bias, int units, int act) {
    int fan_in = x->h * x->w * x->c;
    ref_t y = ref_alloc(x->n, 1, 1, units);
    for (int n = 0; n < x->n; n++) {
        const double *in = x->d + (size_t)n * fan_in;
        double *out = y.d + (size_t)n * units;
        for (int u = 0; u < units; u++) {
            double s = (double)bias[u];
            for (int i = 0; i < fan_in; i++) s += in[i] * (double)kernel[(size_t)i * units + u];
            out[u] = act == 1 && s < 0.0 ? 0.0 : s;
        }
        if (act == 2) {
            double m = out[0], z = 0.0;
            for (int u = 1; u < units; u++) m = out[u] > m ? out[u] : m;
            for (int u = 0; u < units; u++) z += exp(out[u] - m);
            for (int u = 0; u < units; u++) out[u] = exp(out[u] - m) / z;
        }
    }
    return y;
}

/* ---- tf.image.resize, half_pixel_centers = True, antialias = False ---- */

typedef struct ref_coord {
    int lower, upper;
    double lerp;
    float x; /* the source coordinate, as TensorFlow computes it */
} ref_coord;

/* Bilinear: scale = (float)in / out, x = (o + 0.5) * scale - 0.5 (float32),
 * lower = max(floor(x), 0), upper = min(ceil(x), in - 1), lerp = x - floor(x). */
static inline ref_coord ref_bilinear_coord(int o, int in, int out) {
    float scale = (float)in / (float)out;
    float x = ((float)o + 0.5f) * scale - 0.5f;
    float fl = floorf(x);
    ref_coord r;
    r.x = x;
    r.lower = fl > 0.0f ? (int)fl : 0;
    r.upper = (int)ceilf(x) < in - 1 ? (int)ceilf(x) : in - 1;
    r.lerp = (double)(x - fl);
    return r;
}

/* Nearest: min(floor((o + 0.5) * scale), in - 1) in float32. */
static inline int ref_nearest_index(int o, int in, int out) {
    float scale = (float)in / (float)out;
    int idx = (int)floorf(((float)o + 0.5f) * scale);
    return idx < in - 1 ? idx : in - 1;
}

static inline ref_t ref_resize(const ref_t *x, int oh, int ow, int nearest) {
    ref_t y = ref_alloc(x->n, oh, ow, x->c);
    for (int n = 0; n < x->n; n++)
        for (int i = 0; i < oh; i++)
            for (int j = 0; j < ow; j++)
                for (int c = 0; c < x->c; c++) {
                    double v;
                    if (nearest) {
                        v = *ref_at(x, n, ref_nearest_index(i, x->h, oh), ref_nearest_index(j, x->w, ow), c);
                    } else {
                        ref_coord cy = ref_bilinear_coord(i, x->h, oh), cx = ref_bilinear_coord(j, x->w, ow);
                        double tl = *ref_at(x, n, cy.lower, cx.lower, c), tr = *ref_at(x, n, cy.lower, cx.upper, c);
                        double bl = *ref_at(x, n, cy.upper, cx.lower, c), br = *ref_at(x, n, cy.upper, cx.upper, c);
                        double top = tl + (tr - tl) * cx.lerp, bottom = bl + (br - bl) * cx.lerp;
                        v = top + (bottom - top) * cy.lerp;
                    }
                    *ref_at(&y, n, i, j, c) = v;
                }
    return y;
}

/* Concatenation on the channel axis, parts in order. */
static inline ref_t ref_concat(const ref_t *parts, int count) {
    int c = 0;
    for (int k = 0; k < count; k++) c += parts[k].c;
    ref_t y = ref_alloc(parts[0].n, parts[0].h, parts[0].w, c);
    for (int n = 0; n < y.n; n++)
        for (int i = 0; i < y.h; i++)
            for (int j = 0; j < y.w; j++) {
                int off = 0;
                for (int k = 0; k < count; k++) {
                    for (int ch = 0; ch < parts[k].c; ch++)
                        *ref_at(&y, n, i, j, off + ch) = *ref_at(&parts[k], n, i, j, ch);
                    off += parts[k].c;
                }
            }
    return y;
}

#endif
