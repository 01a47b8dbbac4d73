/* embed.c - image embeddings: the fused map pooled over H and W and L2-normalised. */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "net.h"

/* Channels pooled per pass: the accumulators live on the stack. */
#define FN_EMBED_BLOCK 256

size_t fusenet_embed_dim(const fusenet_net *net) {
    if (!net || !net->fused) return 0;
    return (size_t)net->out.c;
}

/* Pools one image's h x w x c map (NHWC) into dst[0..c) and normalises it. */
static void pool_one(const float *map, size_t pixels, size_t c, fusenet_pooling pool, float *dst) {
    double acc[FN_EMBED_BLOCK];
    double sq = 0.0;
    for (size_t c0 = 0; c0 < c; c0 += FN_EMBED_BLOCK) {
        size_t nc = c - c0 < FN_EMBED_BLOCK ? c - c0 : FN_EMBED_BLOCK;
        const float *p = map + c0;
        if (pool == FUSENET_POOLING_MAX) {
            for (size_t k = 0; k < nc; k++) acc[k] = p[k];
            for (size_t i = 1; i < pixels; i++) {
                const float *q = p + i * c;
                for (size_t k = 0; k < nc; k++)
                    if (q[k] > acc[k]) acc[k] = q[k];
            }
        } else {
            for (size_t k = 0; k < nc; k++) acc[k] = 0.0;
            for (size_t i = 0; i < pixels; i++) {
                const float *q = p + i * c;
                for (size_t k = 0; k < nc; k++) acc[k] += q[k];
            }
            for (size_t k = 0; k < nc; k++) acc[k] /= (double)pixels;
        }
        for (size_t k = 0; k < nc; k++) {
            sq += acc[k] * acc[k];
            dst[c0 + k] = (float)acc[k]; /* scaled below */
        }
    }
    double inv = sq > 0.0 ? 1.0 / sqrt(sq) : 0.0; /* all zeros stay zeros */
    for (size_t k = 0; k < c; k++) dst[k] = (float)((double)dst[k] * inv);
}

fusenet_status fusenet_embed(fusenet_net *net, const fusenet_tensor *input, fusenet_pooling pool, float *dst,
                             fusenet_error *err) {
    if (!net || !input || !dst)
        return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "fusenet_embed: %s is NULL",
                        !net ? "net" : !input ? "input" : "dst");
    if (pool != FUSENET_POOLING_AVG && pool != FUSENET_POOLING_MAX)
        return fusenet__error(err, FUSENET_ERR_INVALID_ARG,
                        "fusenet_embed: pool must be FUSENET_POOLING_AVG or FUSENET_POOLING_MAX (got %d)", (int)pool);
    if (!net->fused)
        return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "fusenet_embed: the net was built without fuse: no fused map");
    fusenet_status st = fusenet_net_run(net, input, err);
    if (st != FUSENET_OK) return st;
    fusenet_tensor out;
    st = fusenet_net_output(net, &out, err);
    if (st != FUSENET_OK) return st;
    size_t pixels = (size_t)out.h * (size_t)out.w, c = (size_t)out.c, per = pixels * c;
    for (int32_t i = 0; i < out.n; i++) { /* check first: dst is written only on success */
        const float *map = out.data + per * (size_t)i;
        for (size_t j = 0; j < per; j++)
            if (!isfinite(map[j]))
                return fusenet__error(err, FUSENET_ERR_VALUE,
                                "fusenet_embed: image %d of the batch has a non-finite value in its fused map "
                                "(pixel %zu, channel %zu)",
                                (int)i, j / c, j % c);
    }
    for (int32_t i = 0; i < out.n; i++) pool_one(out.data + per * (size_t)i, pixels, c, pool, dst + c * (size_t)i);
    return fusenet__ok(err);
}

fusenet_status fusenet_embed_image(fusenet_net *net, const char *path, const fusenet_image_params *params,
                                   fusenet_pooling pool, float *dst, fusenet_error *err) {
    if (!net || !path || !dst)
        return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "fusenet_embed_image: %s is NULL",
                        !net ? "net" : !path ? "path" : "dst");
    if (pool != FUSENET_POOLING_AVG && pool != FUSENET_POOLING_MAX)
        return fusenet__error(err, FUSENET_ERR_INVALID_ARG,
                        "fusenet_embed_image: pool must be FUSENET_POOLING_AVG or FUSENET_POOLING_MAX (got %d)",
                        (int)pool);
    if (!net->fused)
        return fusenet__error(err, FUSENET_ERR_INVALID_ARG,
                        "fusenet_embed_image: the net was built without fuse: no fused map");
    if (net->batch != 1)
        return fusenet__error(err, FUSENET_ERR_INVALID_ARG,
                        "fusenet_embed_image: the net was built for a batch of %d; build it with batch 1",
                        (int)net->batch);
    fusenet_image_params ip;
    if (params) {
        ip = *params;
        if (ip.height != net->in_h || ip.width != net->in_w)
            return fusenet__error(err, FUSENET_ERR_SHAPE,
                            "fusenet_embed_image: image params ask for %dx%d but the net takes %dx%d inputs",
                            (int)ip.height, (int)ip.width, (int)net->in_h, (int)net->in_w);
    } else {
        ip = fusenet_image_default_params();
        ip.height = net->in_h;
        ip.width = net->in_w;
    }
    size_t count;
    if (!fusenet__mul_size((size_t)net->in_h * 3, (size_t)net->in_w, &count) || !fusenet__mul_size(count, sizeof(float), &count))
        return fusenet__error(err, FUSENET_ERR_NOMEM, "fusenet_embed_image: input size overflows");
    float *image = fusenet__malloc(count);
    if (!image) return fusenet__error(err, FUSENET_ERR_NOMEM, "out of memory for the %dx%d input of %s", (int)net->in_h,
                                (int)net->in_w, path);
    fusenet_status st = fusenet_image_load(path, &ip, image, err);
    if (st == FUSENET_OK) {
        fusenet_tensor in = {image, 1, net->in_h, net->in_w, 3};
        st = fusenet_embed(net, &in, pool, dst, err);
    }
    fusenet__free(image);
    return st;
}
