/* cmd_viz.c - viz: a layer's mean activation as a heatmap over the picture. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "file.h"
#include "resize.h"

/* PNG writing (stb_image_write, compiled here only). */
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#if defined(__has_include) && __has_include(<stb_image_write.h>)
#include <stb_image_write.h>
#else
#include <stb/stb_image_write.h>
#endif

/* ---- viz ---- */

/* Bilinear resize of an h x w x c float image, half-pixel centres, edges clamped. */

/* The "jet" colour map: 0 dark blue, 0.5 green-yellow, 1 dark red; rgb in 0..1. */
static void jet(double v, double rgb[3]) {
    for (int k = 0; k < 3; k++) {
        double t = 1.5 - fabs(4.0 * v - (3.0 - k));
        rgb[k] = t < 0 ? 0 : t > 1 ? 1 : t;
    }
}

typedef struct png_sink {
    int fd;
    int ok, err_no;
} png_sink;

static void png_write(void *ctx, void *data, int size) {
    png_sink *s = ctx;
    if (s->ok && size > 0 && !fusenet__write_full(s->fd, data, (size_t)size)) {
        s->ok = 0;
        s->err_no = errno;
    }
}

/* Writes an RGB8 PNG whole or not at all. */
static int write_png(const char *path, int w, int h, const unsigned char *rgb) {
    fusenet_error err;
    char *tmp;
    png_sink s = {fusenet__temp_open(path, &tmp, &err), 1, 0};
    if (s.fd < 0) return fail(&err);
    int ok = stbi_write_png_to_func(png_write, &s, w, h, 3, rgb, w * 3) && s.ok;
    if (fusenet__temp_close(s.fd, tmp, path, ok, s.err_no, &err)) return fail(&err);
    return 0;
}

int cmd_viz(opts *o) {
    fusenet_model_params mp = fusenet_model_default_params();
    mp.arch = o->arch;
    if (check_output("--output", o->output)) return 1;
    int vgg = mp.arch == FUSENET_ARCH_VGG16 || mp.arch == FUSENET_ARCH_VGG19;
    const char *layer = o->layer ? o->layer : vgg ? "block5_conv3" : "conv4_block6_out";
    double alpha = o->alpha;
    fusenet_image_params ip = image_params(o);
    int H = ip.height, W = ip.width, OH = o->output_size.h, OW = o->output_size.w;
    fusenet_error err;
    if (!OH) { /* the picture at its own size (at most 4096 on a side, aspect kept) */
        int32_t iw, ih;
        if (fusenet_image_size(o->image, &iw, &ih, &err)) return fail(&err);
        double scale = iw > 4096 || ih > 4096 ? 4096.0 / (iw > ih ? iw : ih) : 1.0;
        OW = (int)(iw * scale) > 0 ? (int)(iw * scale) : 1;
        OH = (int)(ih * scale) > 0 ? (int)(ih * scale) : 1;
    }
    fusenet_model *probe; /* check the layer name before reading weights */
    size_t index;
    if (fusenet_model_create(&mp, &probe, &err)) return fail(&err);
    fusenet_status st = fusenet_model_find_layer(probe, layer, &index, &err);
    fusenet_model_free(probe);
    if (st) return fail(&err);
    if (find_weights(&o->weights, "--weights", mp.arch, 0, o->found[0], sizeof o->found[0]) ||
        check_not_input("--output", o->output, "--image", o->image) ||
        check_not_input("--output", o->output, "--weights", o->weights))
        return 1;
    mp.needed_layers = &layer;
    mp.n_needed = 1;
    mp.submodel = o->weights_sub;
    fusenet_model *model;
    if (fusenet_model_load(o->weights, &mp, &model, &err)) return fail(&err);
    fusenet_tap tap = {model, layer};
    fusenet_net_params np = fusenet_net_default_params();
    np.taps = &tap;
    np.n_taps = 1;
    np.in_h = H;
    np.in_w = W;
    np.fuse = 0;
    np.threads = o->threads;
    fusenet_net *net;
    st = fusenet_net_build(&np, &net, &err);
    fusenet_model_free(model);
    if (st) return fail(&err);
    size_t pixels = (size_t)H * W, opixels = (size_t)OH * OW;
    float *x = malloc(pixels * 3 * sizeof *x), *rgb = malloc(opixels * 3 * sizeof *rgb);
    float *up = malloc(opixels * sizeof *up);
    unsigned char *png = malloc(opixels * 3);
    float *heat = NULL;
    int rc = 0;
    fusenet_tensor t;
    if (!x || !rgb || !up || !png) rc = die("out of memory");
    if (!rc && fusenet_image_load(o->image, &ip, x, &err)) rc = fail(&err);
    fusenet_image_params raw = ip;
    raw.caffe = 0; /* RGB 0..255 at the picture's size: the original pixels unless --output-size */
    raw.height = OH;
    raw.width = OW;
    raw.interp = FUSENET_INTERP_BILINEAR;
    if (!rc && fusenet_image_load(o->image, &raw, rgb, &err)) rc = fail(&err);
    if (!rc && fusenet_net_run(net, &(fusenet_tensor){x, 1, H, W, 3}, &err)) rc = fail(&err);
    if (!rc && fusenet_net_tap_output(net, 0, &t, &err)) rc = fail(&err);
    if (!rc && (t.h < 1 || t.w < 1)) rc = die("layer %s has no spatial map to show", layer);
    size_t at;
    if (!rc && find_non_finite(t.data, (size_t)t.h * t.w * t.c, &at)) /* NaN or Inf never drawn as a heatmap */
        rc = die("%s: the output of layer %s has a non-finite value (%s at flat index %zu)", o->image, layer,
                 value_name(t.data[at]), at);
    if (!rc && !(heat = malloc((size_t)t.h * t.w * sizeof *heat))) rc = die("out of memory");
    double lo = INFINITY, hi = -INFINITY;
    if (!rc) { /* mean over channels, then min-max to 0..1 */
        for (size_t p = 0; p < (size_t)t.h * t.w; p++) {
            double s = 0;
            for (int k = 0; k < t.c; k++) s += t.data[p * (size_t)t.c + k];
            heat[p] = (float)(s / t.c);
            if (heat[p] < lo) lo = heat[p];
            if (heat[p] > hi) hi = heat[p];
        }
        if (!isfinite(lo) || !isfinite(hi)) rc = die("%s: layer %s: the mean over channels overflows", o->image, layer);
    }
    if (!rc) {
        for (size_t p = 0; p < (size_t)t.h * t.w; p++) heat[p] = hi > lo ? (float)((heat[p] - lo) / (hi - lo)) : 0.0f;
        fusenet__resize_bilinear(heat, t.h, t.w, 1, up, OH, OW);
        for (size_t p = 0; p < opixels; p++) {
            double c[3];
            jet(up[p], c);
            for (int k = 0; k < 3; k++) {
                double v = (1.0 - alpha) * rgb[p * 3 + k] + alpha * 255.0 * c[k] + 0.5;
                png[p * 3 + k] = (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
        rc = write_png(o->output, OW, OH, png);
    }
    if (!rc)
        printf("%s: %dx%dx%d, mean over channels %.6g .. %.6g; wrote %s (%dx%d)\n", layer, t.h, t.w, t.c, lo, hi,
               o->output, OH, OW);
    free(x);
    free(rgb);
    free(up);
    free(png);
    free(heat);
    fusenet_net_free(net);
    return rc;
}
