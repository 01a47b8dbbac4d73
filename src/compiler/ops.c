/* ops.c - the oneDNN calls: one function per op kind, plus TensorFlow's resize rule. */
#include "ops.h"

#include <math.h>
#include <oneapi/dnnl/dnnl_debug.h>
#include <string.h>

#include "error.h"

fusenet_status fusenet__dnnl_error(fusenet_error *err, dnnl_status_t s, const char *layer, const char *what) {
    fusenet_status st = s == dnnl_out_of_memory ? FUSENET_ERR_NOMEM : FUSENET_ERR_BACKEND;
    return fusenet__error(err, st, "layer %s: oneDNN %s failed: %s", layer, what, dnnl_status2str(s));
}

void fusenet__md4(dnnl_memory_desc_t *md, int64_t n, int64_t c, int64_t h, int64_t w, dnnl_format_tag_t tag) {
    dnnl_dims_t dims = {n, c, h, w};
    dnnl_memory_desc_init_by_tag(md, 4, dims, dnnl_f32, tag);
}

/* Attributes every primitive gets: a user-mode scratchpad, plus optional post-ops. */
static dnnl_status_t make_attr(dnnl_primitive_attr_t *attr, int sum, int relu) {
    dnnl_status_t s = dnnl_primitive_attr_create(attr);
    if (s != dnnl_success) return s;
    s = dnnl_primitive_attr_set_scratchpad_mode(*attr, dnnl_scratchpad_mode_user);
    if (s == dnnl_success && (sum || relu)) {
        dnnl_post_ops_t po;
        s = dnnl_post_ops_create(&po);
        if (s != dnnl_success) goto done;
        if (sum) s = dnnl_post_ops_append_sum(po, 1.0f);
        if (s == dnnl_success && relu) s = dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f);
        if (s == dnnl_success) s = dnnl_primitive_attr_set_post_ops(*attr, po);
        dnnl_post_ops_destroy(po);
    }
done:
    if (s != dnnl_success) dnnl_primitive_attr_destroy(*attr);
    return s;
}

/* Creates a pd from an op descriptor; one place for attribute handling and errors. */
static fusenet_status create_pd(dnnl_engine_t eng, const void *op_desc, int sum, int relu, const char *layer,
                                const char *what, dnnl_primitive_desc_t *pd, fusenet_error *err) {
    dnnl_primitive_attr_t attr;
    dnnl_status_t s = make_attr(&attr, sum, relu);
    if (s != dnnl_success) return fusenet__dnnl_error(err, s, layer, what);
    s = dnnl_primitive_desc_create(pd, op_desc, attr, eng, NULL);
    dnnl_primitive_attr_destroy(attr);
    if (s != dnnl_success) return fusenet__dnnl_error(err, s, layer, what);
    return fusenet__ok(err);
}

/* An int8 conv's attributes: per-output-channel output scales (mask 1 << 1:
 * dimension 1 of the (n, c, h, w) dst), then sum (the shortcut reinterpreted
 * as sum_dt) and ReLU post-ops, in oneDNN's order of application. */
static fusenet_status create_int8_conv_pd(dnnl_engine_t eng, const dnnl_convolution_desc_t *cd, const fn_conv_desc *d,
                                          const char *layer, dnnl_primitive_desc_t *pd, fusenet_error *err) {
    dnnl_primitive_attr_t attr;
    dnnl_status_t s = make_attr(&attr, 0, 0);
    if (s != dnnl_success) return fusenet__dnnl_error(err, s, layer, "int8 convolution attributes");
    s = dnnl_primitive_attr_set_output_scales(attr, d->out_c, 1 << 1, d->oscales);
    dnnl_post_ops_t po = NULL;
    if (s == dnnl_success && (d->sum || d->relu)) s = dnnl_post_ops_create(&po);
    if (s == dnnl_success && d->sum) s = dnnl_post_ops_append_sum_v2(po, d->sum_scale, d->sum_dt);
    if (s == dnnl_success && d->relu) s = dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f);
    if (s == dnnl_success && po) s = dnnl_primitive_attr_set_post_ops(attr, po);
    if (po) dnnl_post_ops_destroy(po);
    if (s == dnnl_success) s = dnnl_primitive_desc_create(pd, cd, attr, eng, NULL);
    dnnl_primitive_attr_destroy(attr);
    if (s != dnnl_success) return fusenet__dnnl_error(err, s, layer, "int8 convolution");
    return fusenet__ok(err);
}

#define TRY_DESC(call, what)                                                                                      \
    do {                                                                                                          \
        dnnl_status_t s_ = (call);                                                                                \
        if (s_ != dnnl_success) return fusenet__dnnl_error(err, s_, layer, what);                                       \
    } while (0)

fusenet_status fusenet__op_conv(dnnl_engine_t eng, const fn_conv_desc *d, const char *layer, dnnl_primitive_desc_t *pd,
                          fusenet_error *err) {
    dnnl_memory_desc_t w_md, b_md;
    dnnl_dims_t b_dims = {d->out_c};
    if (d->weights)
        w_md = *d->weights;
    else
        TRY_DESC(dnnl_memory_desc_init_by_tag(&w_md, 4, d->weights_dims, d->oscales ? dnnl_s8 : dnnl_f32,
                                              dnnl_format_tag_any),
                 "weights");
    TRY_DESC(dnnl_memory_desc_init_by_tag(&b_md, 1, b_dims, dnnl_f32, dnnl_x), "bias");
    dnnl_convolution_desc_t cd;
    if (d->winograd) {
        /* Winograd where oneDNN offers it for this shape; direct otherwise. */
        if (dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_winograd, d->src, &w_md,
                                               &b_md, d->dst, d->strides, d->pad_l, d->pad_r) == dnnl_success) {
            fusenet_error ignored;
            if (create_pd(eng, &cd, d->sum, d->relu, layer, "winograd convolution", pd, &ignored) == FUSENET_OK)
                return fusenet__ok(err);
        }
    }
    TRY_DESC(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct, d->src, &w_md,
                                                &b_md, d->dst, d->strides, d->pad_l, d->pad_r),
             "convolution descriptor");
    if (d->oscales) return create_int8_conv_pd(eng, &cd, d, layer, pd, err);
    return create_pd(eng, &cd, d->sum, d->relu, layer, "convolution", pd, err);
}

fusenet_status fusenet__op_pool(dnnl_engine_t eng, int is_max, const dnnl_memory_desc_t *src, const dnnl_memory_desc_t *dst,
                          const dnnl_dims_t kernel, const dnnl_dims_t strides, const dnnl_dims_t pad_l,
                          const dnnl_dims_t pad_r, const char *layer, dnnl_primitive_desc_t *pd, fusenet_error *err) {
    dnnl_pooling_v2_desc_t pdsc;
    dnnl_dims_t dilation = {0, 0};
    TRY_DESC(dnnl_pooling_v2_forward_desc_init(&pdsc, dnnl_forward_inference,
                                               is_max ? dnnl_pooling_max : dnnl_pooling_avg_exclude_padding, src, dst,
                                               strides, kernel, dilation, pad_l, pad_r),
             "pooling descriptor");
    return create_pd(eng, &pdsc, 0, 0, layer, "pooling", pd, err);
}

fusenet_status fusenet__op_batch_norm(dnnl_engine_t eng, const dnnl_memory_desc_t *data, float epsilon, const char *layer,
                                dnnl_primitive_desc_t *pd, fusenet_error *err) {
    dnnl_batch_normalization_desc_t bd;
    TRY_DESC(dnnl_batch_normalization_forward_desc_init(&bd, dnnl_forward_inference, data, epsilon,
                                                        dnnl_use_global_stats | dnnl_use_scale | dnnl_use_shift),
             "batch normalization descriptor");
    return create_pd(eng, &bd, 0, 0, layer, "batch normalization", pd, err);
}

fusenet_status fusenet__op_relu(dnnl_engine_t eng, const dnnl_memory_desc_t *data, const char *layer,
                          dnnl_primitive_desc_t *pd, fusenet_error *err) {
    dnnl_eltwise_desc_t ed;
    TRY_DESC(dnnl_eltwise_forward_desc_init(&ed, dnnl_forward_inference, dnnl_eltwise_relu, data, 0.0f, 0.0f),
             "relu descriptor");
    return create_pd(eng, &ed, 0, 0, layer, "relu", pd, err);
}

fusenet_status fusenet__op_add(dnnl_engine_t eng, const dnnl_memory_desc_t *a, const dnnl_memory_desc_t *b,
                         const char *layer, dnnl_primitive_desc_t *pd, fusenet_error *err) {
    dnnl_binary_desc_t bd;
    TRY_DESC(dnnl_binary_desc_init(&bd, dnnl_binary_add, a, b, a), "add descriptor");
    return create_pd(eng, &bd, 0, 0, layer, "add", pd, err);
}

fusenet_status fusenet__op_dense(dnnl_engine_t eng, const dnnl_memory_desc_t *src, const dnnl_memory_desc_t *weights,
                           const dnnl_memory_desc_t *bias, const dnnl_memory_desc_t *dst, int relu,
                           const char *layer, dnnl_primitive_desc_t *pd, fusenet_error *err) {
    dnnl_inner_product_desc_t id;
    TRY_DESC(dnnl_inner_product_forward_desc_init(&id, dnnl_forward_inference, src, weights, bias, dst),
             "inner product descriptor");
    return create_pd(eng, &id, 0, relu, layer, "inner product", pd, err);
}

fusenet_status fusenet__op_softmax(dnnl_engine_t eng, const dnnl_memory_desc_t *data, const char *layer,
                             dnnl_primitive_desc_t *pd, fusenet_error *err) {
    dnnl_softmax_desc_t sd;
    TRY_DESC(dnnl_softmax_forward_desc_init(&sd, dnnl_forward_inference, data, 1), "softmax descriptor");
    return create_pd(eng, &sd, 0, 0, layer, "softmax", pd, err);
}

fusenet_status fusenet__op_resample(dnnl_engine_t eng, int nearest, const dnnl_memory_desc_t *src,
                              const dnnl_memory_desc_t *dst, const char *layer, dnnl_primitive_desc_t *pd,
                              fusenet_error *err) {
    dnnl_resampling_desc_t rd;
    /* Factors from the src and dst descriptors (NULL): oneDNN then maps
     * o -> (o + 0.5) * in / out - 0.5, TensorFlow's half-pixel rule. */
    TRY_DESC(dnnl_resampling_forward_desc_init(&rd, dnnl_forward_inference,
                                               nearest ? dnnl_resampling_nearest : dnnl_resampling_linear, NULL, src,
                                               dst),
             "resampling descriptor");
    return create_pd(eng, &rd, 0, 0, layer, "resampling", pd, err);
}

fusenet_status fusenet__op_concat(dnnl_engine_t eng, const dnnl_memory_desc_t *dst, int n, const dnnl_memory_desc_t *srcs,
                            const char *layer, dnnl_primitive_desc_t *pd, fusenet_error *err) {
    dnnl_primitive_attr_t attr;
    dnnl_status_t s = make_attr(&attr, 0, 0);
    if (s == dnnl_success) {
        s = dnnl_concat_primitive_desc_create(pd, dst, n, 1, srcs, attr, eng);
        dnnl_primitive_attr_destroy(attr);
    }
    if (s != dnnl_success) return fusenet__dnnl_error(err, s, layer, "concat");
    return fusenet__ok(err);
}

fusenet_status fusenet__op_reorder(dnnl_engine_t eng, const dnnl_memory_desc_t *src, const dnnl_memory_desc_t *dst,
                             const char *layer, dnnl_primitive_desc_t *pd, fusenet_error *err) {
    dnnl_primitive_attr_t attr;
    dnnl_status_t s = make_attr(&attr, 0, 0);
    if (s == dnnl_success) {
        s = dnnl_reorder_primitive_desc_create(pd, src, eng, dst, eng, attr);
        dnnl_primitive_attr_destroy(attr);
    }
    if (s != dnnl_success) return fusenet__dnnl_error(err, s, layer, "reorder");
    return fusenet__ok(err);
}

fusenet_status fusenet__op_reorder_scaled(dnnl_engine_t eng, const dnnl_memory_desc_t *src, const dnnl_memory_desc_t *dst,
                                          float scale, const char *layer, dnnl_primitive_desc_t *pd,
                                          fusenet_error *err) {
    dnnl_primitive_attr_t attr;
    dnnl_status_t s = make_attr(&attr, 0, 0);
    if (s == dnnl_success) {
        s = dnnl_primitive_attr_set_output_scales(attr, 1, 0, &scale);
        if (s == dnnl_success) s = dnnl_reorder_primitive_desc_create(pd, src, eng, dst, eng, attr);
        dnnl_primitive_attr_destroy(attr);
    }
    if (s != dnnl_success) return fusenet__dnnl_error(err, s, layer, "scaled reorder");
    return fusenet__ok(err);
}

fusenet_status fusenet__op_reorder_once(dnnl_engine_t eng, const dnnl_memory_desc_t *src, const dnnl_memory_desc_t *dst,
                                  const char *layer, dnnl_primitive_desc_t *pd, fusenet_error *err) {
    /* Library-managed scratchpad: run once at build, not part of the plan. */
    dnnl_status_t s = dnnl_reorder_primitive_desc_create(pd, src, eng, dst, eng, NULL);
    if (s != dnnl_success) return fusenet__dnnl_error(err, s, layer, "weights reorder");
    return fusenet__ok(err);
}

const dnnl_memory_desc_t *fusenet__pd_md(const_dnnl_primitive_desc_t pd, dnnl_query_t what, int index) {
    return dnnl_primitive_desc_query_md(pd, what, index);
}

const char *fusenet__pd_impl(const_dnnl_primitive_desc_t pd) {
    const char *impl = NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, (void *)&impl) != dnnl_success || !impl)
        return "?";
    return impl;
}

/* ---- TensorFlow's resize (tf.image.resize, half_pixel_centers, no antialias) ---- */

int32_t fusenet__tf_nearest_index(int32_t o, int32_t in, int32_t out) {
    float scale = (float)in / (float)out;
    int32_t idx = (int32_t)floorf(((float)o + 0.5f) * scale);
    if (idx > in - 1) idx = in - 1;
    if (idx < 0) idx = 0;
    return idx;
}

typedef struct tf_interp {
    int32_t lower, upper;
    float lerp;
} tf_interp;

static tf_interp tf_bilinear_coord(int32_t o, int32_t in, int32_t out) {
    float scale = (float)in / (float)out;
    float x = ((float)o + 0.5f) * scale - 0.5f;
    float fl = floorf(x);
    tf_interp t;
    t.lower = fl < 0.0f ? 0 : (int32_t)fl;
    t.upper = (int32_t)ceilf(x) > in - 1 ? in - 1 : (int32_t)ceilf(x);
    if (t.upper < 0) t.upper = 0;
    if (t.lower > in - 1) t.lower = in - 1;
    t.lerp = x - fl;
    return t;
}

void fusenet__tf_resize_nhwc(int nearest, const float *src, int32_t n, int32_t ih, int32_t iw, int32_t c, float *dst,
                       int32_t oh, int32_t ow) {
    for (int32_t b = 0; b < n; b++) {
        const float *s = src + (size_t)b * ih * iw * c;
        float *d = dst + (size_t)b * oh * ow * c;
        for (int32_t y = 0; y < oh; y++) {
            for (int32_t x = 0; x < ow; x++) {
                float *out = d + ((size_t)y * ow + x) * c;
                if (nearest) {
                    const float *in = s + ((size_t)fusenet__tf_nearest_index(y, ih, oh) * iw +
                                           (size_t)fusenet__tf_nearest_index(x, iw, ow)) * c;
                    memcpy(out, in, (size_t)c * sizeof *out);
                    continue;
                }
                tf_interp ty = tf_bilinear_coord(y, ih, oh), tx = tf_bilinear_coord(x, iw, ow);
                const float *tl = s + ((size_t)ty.lower * iw + tx.lower) * c;
                const float *tr = s + ((size_t)ty.lower * iw + tx.upper) * c;
                const float *bl = s + ((size_t)ty.upper * iw + tx.lower) * c;
                const float *br = s + ((size_t)ty.upper * iw + tx.upper) * c;
                for (int32_t k = 0; k < c; k++) {
                    float top = tl[k] + (tr[k] - tl[k]) * tx.lerp;
                    float bottom = bl[k] + (br[k] - bl[k]) * tx.lerp;
                    out[k] = top + (bottom - top) * ty.lerp;
                }
            }
        }
    }
}
