/* common.c - what several commands share: error lines, output checks, the
 * weights finder, the dual-net and image parameters the options ask for. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"

int die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("fusenet: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

int fail(const fusenet_error *err) {
    if (err->status == FUSENET_ERR_UNSUPPORTED) /* say it is this build or CPU, not the input */
        return die("%s (%s)", err->message, fusenet_status_name(err->status));
    return die("%s", err->message);
}

/* ---- weights finder ---- */

static const char *official_weights(fusenet_arch arch, int top, char name[64]) {
    static const struct {
        fusenet_arch arch;
        const char *stem; /* STEM_weights_tf_dim_ordering_tf_kernels[_notop].h5 */
    } files[] = {{FUSENET_ARCH_RESNET50, "resnet50"},   {FUSENET_ARCH_VGG16, "vgg16"},
                 {FUSENET_ARCH_RESNET101, "resnet101"}, {FUSENET_ARCH_RESNET152, "resnet152"},
                 {FUSENET_ARCH_VGG19, "vgg19"}};
    name[0] = '\0';
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        if (files[i].arch == arch)
            snprintf(name, 64, "%s_weights_tf_dim_ordering_tf_kernels%s.h5", files[i].stem, top ? "" : "_notop");
    return name;
}

static int is_regular_file(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

int weights_ref(const char *arg, const char *option, char *path, size_t size, const char **submodel) {
    const char *hash = strrchr(arg, '#');
    size_t len = hash && !is_regular_file(arg) ? (size_t)(hash - arg) : strlen(arg);
    *submodel = len < strlen(arg) ? arg + len + 1 : NULL;
    if (len == 0 || (*submodel && !**submodel))
        return die("%s %s: expected FILE or FILE#NAME (NAME: the Keras name of a sub-model, e.g. resnet50)", option,
                   arg);
    if (len >= size) return die("%s: file name of %zu bytes is too long", option, len);
    memcpy(path, arg, len);
    path[len] = '\0';
    return 0;
}

int split_weights(opts *o) {
    const char **paths[3] = {&o->weights, &o->resnet_weights, &o->vgg_weights};
    const char **subs[3] = {&o->weights_sub, &o->resnet_sub, &o->vgg_sub};
    const char *names[3] = {"--weights", "--resnet-weights", "--vgg-weights"};
    for (int i = 0; i < 3; i++) {
        if (!*paths[i]) continue;
        if (weights_ref(*paths[i], names[i], o->wpath[i], sizeof o->wpath[i], subs[i])) return 1;
        *paths[i] = o->wpath[i];
    }
    return 0;
}

/* Keeps *path if the option was given; otherwise looks for the official file
 * name in $FUSENET_MODELS, then in ./models, and stores what it finds in buf. */
int find_weights(const char **path, const char *option, fusenet_arch arch, int top, char *buf, size_t size) {
    if (*path) return 0;
    char official[64];
    const char *name = official_weights(arch, top, official);
    const char *env = getenv("FUSENET_MODELS");
    if (env && *env) {
        int n = snprintf(buf, size, "%s/%s", env, name);
        if (n > 0 && (size_t)n < size && is_regular_file(buf)) {
            *path = buf;
            return 0;
        }
    }
    snprintf(buf, size, "models/%s", name);
    if (is_regular_file(buf)) {
        *path = buf;
        return 0;
    }
    char where[1200];
    if (env && *env) snprintf(where, sizeof where, "in $FUSENET_MODELS (%.1000s) nor in ./models", env);
    else snprintf(where, sizeof where, "in ./models ($FUSENET_MODELS is not set)");
    return die("no %s given and %s is not %s; download the official weights with models/fetch_weights.sh%s "
               "or pass %s FILE.h5",
               option, name, where, top ? " top" : "", option);
}

int find_dual_weights(opts *o) {
    if (find_weights(&o->resnet_weights, "--resnet-weights", FUSENET_ARCH_RESNET50, o->top, o->found[0],
                     sizeof o->found[0]))
        return 1;
    return find_weights(&o->vgg_weights, "--vgg-weights", FUSENET_ARCH_VGG16, o->top, o->found[1],
                        sizeof o->found[1]);
}

/* ---- the dual net and images, as the options ask ---- */

/* ---- the fused taps: --tap MODEL:WEIGHTS:LAYER, or the short form ---- */

/* A layer the tap's model does not have, refused before any file is read. */
static int check_tap_layer(const cli_tap *t) {
    fusenet_model_params p = fusenet_model_default_params();
    p.arch = t->arch;
    fusenet_model *m;
    fusenet_error err;
    size_t index;
    if (fusenet_model_create(&p, &m, &err)) return fail(&err);
    fusenet_status st = fusenet_model_find_layer(m, t->layer, &index, &err);
    fusenet_model_free(m);
    if (st && t->spec) return die("%s: %s", t->spec, err.message);
    return st ? fail(&err) : 0;
}

int fused_taps(opts *o) {
    if (o->tap_option) {
        const char *short_form = o->resnet_weights ? "--resnet-weights" : o->vgg_weights ? "--vgg-weights"
                               : o->resnet_layer   ? "--resnet-layer"
                               : o->vgg_layer      ? "--vgg-layer"
                                                   : NULL;
        if (short_form)
            return die("--tap and %s given: give the taps either as --tap MODEL:WEIGHTS:LAYER or as "
                       "--resnet-weights/--vgg-weights/--resnet-layer/--vgg-layer, not both",
                       short_form);
    } else {
        if (find_dual_weights(o)) return 1;
        o->taps[0] = (cli_tap){FUSENET_ARCH_RESNET50, o->resnet_weights,
                               o->resnet_layer ? o->resnet_layer : "conv4_block6_out", "--resnet-weights",
                               o->resnet_sub, NULL};
        o->taps[1] = (cli_tap){FUSENET_ARCH_VGG16, o->vgg_weights, o->vgg_layer ? o->vgg_layer : "block5_conv3",
                               "--vgg-weights", o->vgg_sub, NULL};
        o->n_taps = 2;
    }
    for (int i = 0; i < o->n_taps; i++)
        if (check_tap_layer(&o->taps[i])) return 1;
    return 0;
}

void file_taps(const opts *o, fusenet_file_tap *taps) {
    for (int i = 0; i < o->n_taps; i++) {
        taps[i].model = fusenet_model_default_params();
        taps[i].model.arch = o->taps[i].arch;
        taps[i].model.submodel = o->taps[i].submodel;
        taps[i].weights = o->taps[i].weights;
        taps[i].layer = o->taps[i].layer;
    }
}

fusenet_net_params fuse_params(const opts *o, int batch, int h, int w) {
    fusenet_net_params p = fusenet_net_default_params();
    p.batch = batch;
    p.in_h = h;
    p.in_w = w;
    p.fuse = 1;
    p.resize = o->resize;
    p.size = o->size.policy;
    p.out_h = o->size.h;
    p.out_w = o->size.w;
    p.mode = o->mode;
    p.calibration = o->cal;
    p.int8_layers = o->int8_layers;
    p.threads = o->threads;
    return p;
}

int fail_taps(const opts *o, const fusenet_file_tap *taps, const fusenet_error *err) {
    for (int i = 0; i < o->n_taps; i++) /* a file's error names the file first: name its --tap too */
        if (o->taps[i].spec && !strncmp(err->message, taps[i].weights, strlen(taps[i].weights)))
            return die("%s: %s", o->taps[i].spec, err->message);
    return fail(err);
}

int build_fuse(const opts *o, int batch, int h, int w, fusenet_net **net) {
    fusenet_file_tap taps[MAX_TAPS];
    file_taps(o, taps);
    fusenet_net_params p = fuse_params(o, batch, h, w);
    fusenet_error err;
    if (fusenet_build_files(taps, (size_t)o->n_taps, &p, net, &err) == FUSENET_OK) return 0;
    return fail_taps(o, taps, &err);
}

fusenet_image_params image_params(const opts *o) {
    fusenet_image_params ip = fusenet_image_default_params();
    ip.height = o->input_size.h;
    ip.width = o->input_size.w;
    ip.interp = o->load_interp;
    return ip;
}

int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 0;
    size_t nc = *cap ? 2 * *cap : 64;
    while (nc < need) nc *= 2;
    void *np = realloc(*p, nc * elem);
    if (!np) return die("out of memory");
    *p = np;
    *cap = nc;
    return 0;
}

double seconds_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
