/* ops.h - every oneDNN descriptor call of the library, one function per op kind (private).
 *
 * Each function creates a primitive descriptor with a user-mode scratchpad, so
 * one buffer owned by the net serves every primitive. On failure the message
 * names the layer and oneDNN's status.
 */
#ifndef FN_OPS_H
#define FN_OPS_H

#include <oneapi/dnnl/dnnl.h>

#include "fusenet.h"

typedef struct fn_conv_desc {
    const dnnl_memory_desc_t *src; /* fixed, or format_tag_any */
    const dnnl_memory_desc_t *dst; /* fixed (sum post-op), or format_tag_any */
    dnnl_dims_t weights_dims;      /* (out, in, kh, kw) */
    const dnnl_memory_desc_t *weights; /* fixed (the layout an earlier primitive took), or NULL: format_tag_any */
    int out_c;
    dnnl_dims_t strides, pad_l, pad_r;
    int sum;  /* post-op: dst += previous dst (residual add) */
    int relu; /* post-op: ReLU */
    int winograd;
    /* int8 (src and dst data types from their descriptors): s8 weights, one
     * output scale per output channel (quant.h), sum post-op scale and the
     * data type the shortcut buffer holds. NULL oscales: an fp32 conv. */
    const float *oscales;
    float sum_scale;
    dnnl_data_type_t sum_dt;
} fn_conv_desc;

/* 4-D activation descriptor, logical (n, c, h, w), with the given tag. */
void fusenet__md4(dnnl_memory_desc_t *md, int64_t n, int64_t c, int64_t h, int64_t w, dnnl_format_tag_t tag);

fusenet_status fusenet__op_conv(dnnl_engine_t eng, const fn_conv_desc *d, const char *layer, dnnl_primitive_desc_t *pd,
                          fusenet_error *err);
fusenet_status fusenet__op_pool(dnnl_engine_t eng, int is_max, const dnnl_memory_desc_t *src, const dnnl_memory_desc_t *dst,
                          const dnnl_dims_t kernel, const dnnl_dims_t strides, const dnnl_dims_t pad_l,
                          const dnnl_dims_t pad_r, const char *layer, dnnl_primitive_desc_t *pd, fusenet_error *err);
fusenet_status fusenet__op_batch_norm(dnnl_engine_t eng, const dnnl_memory_desc_t *data, float epsilon, const char *layer,
                                dnnl_primitive_desc_t *pd, fusenet_error *err);
fusenet_status fusenet__op_relu(dnnl_engine_t eng, const dnnl_memory_desc_t *data, const char *layer,
                          dnnl_primitive_desc_t *pd, fusenet_error *err);
fusenet_status fusenet__op_add(dnnl_engine_t eng, const dnnl_memory_desc_t *a, const dnnl_memory_desc_t *b,
                         const char *layer, dnnl_primitive_desc_t *pd, fusenet_error *err);
fusenet_status fusenet__op_dense(dnnl_engine_t eng, const dnnl_memory_desc_t *src, const dnnl_memory_desc_t *weights,
                           const dnnl_memory_desc_t *bias, const dnnl_memory_desc_t *dst, int relu,
                           const char *layer, dnnl_primitive_desc_t *pd, fusenet_error *err);
fusenet_status fusenet__op_softmax(dnnl_engine_t eng, const dnnl_memory_desc_t *data, const char *layer,
                             dnnl_primitive_desc_t *pd, fusenet_error *err);
fusenet_status fusenet__op_resample(dnnl_engine_t eng, int nearest, const dnnl_memory_desc_t *src,
                              const dnnl_memory_desc_t *dst, const char *layer, dnnl_primitive_desc_t *pd,
                              fusenet_error *err);
fusenet_status fusenet__op_concat(dnnl_engine_t eng, const dnnl_memory_desc_t *dst, int n, const dnnl_memory_desc_t *srcs,
                            const char *layer, dnnl_primitive_desc_t *pd, fusenet_error *err);
fusenet_status fusenet__op_reorder(dnnl_engine_t eng, const dnnl_memory_desc_t *src, const dnnl_memory_desc_t *dst,
                             const char *layer, dnnl_primitive_desc_t *pd, fusenet_error *err);

/* A reorder multiplying by scale (quantize, dequantize, requantize between int8 scales). */
fusenet_status fusenet__op_reorder_scaled(dnnl_engine_t eng, const dnnl_memory_desc_t *src, const dnnl_memory_desc_t *dst,
                                          float scale, const char *layer, dnnl_primitive_desc_t *pd,
                                          fusenet_error *err);

/* A reorder run once at build time (weights), with its own scratchpad. */
fusenet_status fusenet__op_reorder_once(dnnl_engine_t eng, const dnnl_memory_desc_t *src, const dnnl_memory_desc_t *dst,
                                  const char *layer, dnnl_primitive_desc_t *pd, fusenet_error *err);

/* Descriptor queries. */
const dnnl_memory_desc_t *fusenet__pd_md(const_dnnl_primitive_desc_t pd, dnnl_query_t what, int index);
const char *fusenet__pd_impl(const_dnnl_primitive_desc_t pd);

/* Turns a oneDNN status into ours, naming the layer and what was being done. */
fusenet_status fusenet__dnnl_error(fusenet_error *err, dnnl_status_t s, const char *layer, const char *what);

/* TensorFlow's half-pixel index rules, used to check and to stand in for
 * oneDNN's resampling where it would pick other pixels. */
int32_t fusenet__tf_nearest_index(int32_t o, int32_t in, int32_t out);
/* Plain-C TensorFlow resize of a dense NHWC tensor into a dense NHWC destination. */
void fusenet__tf_resize_nhwc(int nearest, const float *src, int32_t n, int32_t ih, int32_t iw, int32_t c, float *dst,
                       int32_t oh, int32_t ow);

#endif
