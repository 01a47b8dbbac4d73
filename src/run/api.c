/* api.c - the one-call product entry point and the version string. */
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
    fusenet_status st = fusenet__check_mode(p->net.mode, err); /* before reading the files */
    if (st) return st;
    const char *layers[2] = {p->resnet_layer ? p->resnet_layer : "conv4_block6_out",
                             p->vgg_layer ? p->vgg_layer : "block5_conv3"};
    const char *paths[2] = {p->resnet_weights, p->vgg_weights};
    const char *subs[2] = {p->resnet_submodel, p->vgg_submodel};
    const fusenet_arch archs[2] = {FUSENET_ARCH_RESNET50, FUSENET_ARCH_VGG16};
    fusenet_model *models[2] = {NULL, NULL};
    for (int k = 0; k < 2 && !st; k++) {
        fusenet_model_params mp = fusenet_model_default_params();
        mp.arch = archs[k];
        mp.needed_layers = &layers[k]; /* read only what the tap needs */
        mp.n_needed = 1;
        mp.submodel = subs[k];
        st = fusenet_model_load(paths[k], &mp, &models[k], err);
    }
    if (!st) {
        fusenet_tap taps[2] = {{models[0], layers[0]}, {models[1], layers[1]}};
        fusenet_net_params np = p->net;
        np.taps = taps;
        np.n_taps = 2;
        /* hands the models over: the build frees them */
        return ident ? fusenet__net_build_ident(&np, models, 2, out, err)
                     : fusenet__net_build_owned(&np, models, 2, out, err);
    }
    fusenet_model_free(models[0]);
    fusenet_model_free(models[1]);
    return st;
}

fusenet_status fusenet_build_dual(const fusenet_dual_params *p, fusenet_net **out, fusenet_error *err) {
    return build_dual(p, 0, out, err);
}

fusenet_status fusenet__build_dual_ident(const fusenet_dual_params *p, fusenet_net **out, fusenet_error *err) {
    return build_dual(p, 1, out, err);
}
