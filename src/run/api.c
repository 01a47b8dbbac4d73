/* api.c - the one-call product entry points (fusenet_build_dual; fusenet_build_files, any taps read from
 * weights files) and the version string. */
#include <string.h>

#include "error.h"
#include "model.h"
#include "net.h"

#define FN_STR2(x) #x
#define FN_STR(x) FN_STR2(x)

const char *fusenet_version(void) {
    return FN_STR(FUSENET_VERSION_MAJOR) "." FN_STR(FUSENET_VERSION_MINOR) "." FN_STR(FUSENET_VERSION_PATCH);
}

fusenet_dual_params fusenet_dual_default_params(void) {
    fusenet_dual_params p;
    memset(&p, 0, sizeof p);
    p.net = fusenet_net_default_params();
    return p;
}

/* Taps read from one weights file the same way share one model. A field of
 * fusenet_model_params that changes what is read belongs here. */
static int same_source(const fusenet_file_tap *a, const fusenet_file_tap *b) {
    const char *sa = a->model.submodel, *sb = b->model.submodel;
    return strcmp(a->weights, b->weights) == 0 && (sa && sb ? strcmp(sa, sb) == 0 : sa == sb) &&
           a->model.arch == b->model.arch &&
           a->model.include_top == b->model.include_top && a->model.pooling == b->model.pooling &&
           a->model.allow_nonfinite == b->model.allow_nonfinite;
}

/* ident: build with fusenet__net_build_ident (the models' identity kept for calibration). */
static fusenet_status build_files(const fusenet_file_tap *taps, size_t n_taps, const fusenet_net_params *net,
                                  int ident, fusenet_net **out, fusenet_error *err) {
    if (!out) return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "fusenet_build_files: out is NULL");
    *out = NULL;
    fusenet_net_params defaults = fusenet_net_default_params();
    if (!net) net = &defaults;
    if (!taps || n_taps < 1 || n_taps > FN_MAX_TAPS)
        return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "fusenet_build_files: %s%zu taps (1..%d)",
                              taps ? "" : "taps is NULL, ", n_taps, FN_MAX_TAPS);
    if (net->taps || net->n_taps)
        return fusenet__error(err, FUSENET_ERR_INVALID_ARG,
                              "fusenet_build_files: net.taps must be NULL and net.n_taps 0 (the taps are the file taps)");
    for (size_t i = 0; i < n_taps; i++) {
        const char *bad = !taps[i].weights ? "weights is NULL" : !taps[i].layer ? "layer is NULL"
                        : taps[i].model.needed_layers || taps[i].model.n_needed
                            ? "model.needed_layers must be NULL (the taps' layers are read)"
                            : NULL;
        if (bad) return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "fusenet_build_files: taps[%zu].%s", i, bad);
    }
    fusenet_status st = fusenet__check_mode(net->mode, err); /* before reading the files */
    fusenet_model *models[FN_MAX_TAPS] = {NULL};
    fusenet_tap net_taps[FN_MAX_TAPS];
    size_t owner[FN_MAX_TAPS], n_models = 0;
    for (size_t i = 0; i < n_taps && !st; i++) {
        size_t first = 0;
        while (!same_source(&taps[first], &taps[i])) first++;
        if (first == i) { /* the first tap of its source loads it, with the layers of all its taps */
            const char *needed[FN_MAX_TAPS];
            size_t n = 0;
            for (size_t j = i; j < n_taps; j++)
                if (same_source(&taps[j], &taps[i])) needed[n++] = taps[j].layer;
            fusenet_model_params mp = taps[i].model;
            mp.needed_layers = needed; /* read only what the taps need */
            mp.n_needed = n;
            /* the build reads each layer's weights when it compiles it, so only one is held at a time */
            st = fusenet__model_load_deferred(taps[i].weights, &mp, &models[n_models], err);
            owner[i] = n_models++;
        } else {
            owner[i] = owner[first];
        }
        net_taps[i] = (fusenet_tap){models[owner[i]], taps[i].layer};
    }
    if (!st) {
        fusenet_net_params np = *net;
        np.taps = net_taps;
        np.n_taps = n_taps;
        /* hands the models over: the build frees them */
        return ident ? fusenet__net_build_ident(&np, models, n_models, out, err)
                     : fusenet__net_build_owned(&np, models, n_models, out, err);
    }
    for (size_t k = 0; k < n_models; k++) fusenet_model_free(models[k]);
    return st;
}

fusenet_status fusenet_build_files(const fusenet_file_tap *taps, size_t n_taps, const fusenet_net_params *net,
                                   fusenet_net **out, fusenet_error *err) {
    return build_files(taps, n_taps, net, 0, out, err);
}

fusenet_status fusenet__build_files_ident(const fusenet_file_tap *taps, size_t n_taps, const fusenet_net_params *net,
                                          fusenet_net **out, fusenet_error *err) {
    return build_files(taps, n_taps, net, 1, out, err);
}

static fusenet_status build_dual(const fusenet_dual_params *p, int ident, fusenet_net **out, fusenet_error *err) {
    if (!out) return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "fusenet_build_dual: out is NULL");
    *out = NULL;
    fusenet_dual_params defaults = fusenet_dual_default_params();
    if (!p) p = &defaults; /* which has no paths: refused below */
    if (!p->resnet_weights || !p->vgg_weights)
        return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "fusenet_build_dual: %s is NULL",
                        p->resnet_weights ? "vgg_weights" : "resnet_weights");
    const char *bad = p->net.taps ? "taps must be NULL" : p->net.n_taps ? "n_taps must be 0"
                    : p->net.fuse != 1 ? "fuse must be 1" : NULL;
    if (bad)
        return fusenet__error(err, FUSENET_ERR_INVALID_ARG,
                              "fusenet_build_dual: net.%s (the taps are resnet_layer and vgg_layer, fused)", bad);
    fusenet_file_tap taps[2];
    taps[0] = (fusenet_file_tap){p->resnet_weights, fusenet_model_default_params(),
                                 p->resnet_layer ? p->resnet_layer : "conv4_block6_out"};
    taps[1] = (fusenet_file_tap){p->vgg_weights, fusenet_model_default_params(),
                                 p->vgg_layer ? p->vgg_layer : "block5_conv3"};
    taps[0].model.arch = FUSENET_ARCH_RESNET50;
    taps[1].model.arch = FUSENET_ARCH_VGG16;
    taps[0].model.submodel = p->resnet_submodel;
    taps[1].model.submodel = p->vgg_submodel;
    return build_files(taps, 2, &p->net, ident, out, err);
}

fusenet_status fusenet_build_dual(const fusenet_dual_params *p, fusenet_net **out, fusenet_error *err) {
    return build_dual(p, 0, out, err);
}

fusenet_status fusenet__build_dual_ident(const fusenet_dual_params *p, fusenet_net **out, fusenet_error *err) {
    return build_dual(p, 1, out, err);
}
