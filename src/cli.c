/* cli.c - the `fusenet` command-line tool. Arrays are .npy files (float32,
 * little-endian, C order, NHWC). Exit status 0 on success; on any error one
 * line on stderr and status 1. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "file.h"
#include "fusenet.h"
#include "model.h"
#include "net.h"
#include "npy.h"
#include "ops.h"

#include <dirent.h>
#include <fcntl.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* PNG writing for `fusenet viz` (stb_image_write, compiled here only). */
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#if defined(__has_include) && __has_include(<stb_image_write.h>)
#include <stb_image_write.h>
#else
#include <stb/stb_image_write.h>
#endif

#define MAX_IMAGES 1000000
#define MAX_INPUT_BYTES ((size_t)8 << 30)

typedef struct opts {
    const char *model, *weights, *layer, *input, *output;
    const char *resnet_weights, *vgg_weights, *resnet_layer, *vgg_layer;
    const char *resize, *size, *input_size, *load_interp, *mode;
    const char *pool, *names, *embeddings, *query, *image, *alpha, *output_size;
    const char **images;
    int n_images;
    const char **pos; /* positional arguments (embed: images and directories) */
    int n_pos;
    int top, summary, stats, threads, batch, iters, profile, batch_given, strict, k;
    long long seed;
    char found[2][4096]; /* weights paths found by find_weights */
} opts;

static int die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("fusenet: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

static int fail(const fusenet_error *err) { return die("%s", err->message); }

static int usage(FILE *to) {
    fputs("usage:\n"
          "  fusenet layers --model resnet50|vgg16 [--top] [--input-size HxW] [--summary]\n"
          "  fusenet tap --model resnet50|vgg16 [--weights FILE.h5] --layer NAME --input IN.npy --output OUT.npy\n"
          "              [--threads N] [--batch N]\n"
          "  fusenet fuse [--resnet-weights F] [--vgg-weights F] [--resnet-layer NAME] [--vgg-layer NAME]\n"
          "              [--resize bilinear|nearest] [--size min|max|HxW] [--mode exact|fast]\n"
          "              (--input IN.npy | --images IMG... [--input-size HxW] [--load-interp nearest|bilinear])\n"
          "              --output OUT.npy [--threads N] [--batch N] [--stats]\n"
          "  fusenet bench [--resnet-weights F] [--vgg-weights F] [--resnet-layer L] [--vgg-layer L] [--batch N]\n"
          "              [--size HxW] [--threads T] [--iters K] [--mode exact|fast] [--profile]\n"
          "  fusenet embed [--resnet-weights F] [--vgg-weights F] [--resnet-layer L] [--vgg-layer L] [--pool avg|max]\n"
          "              [--batch N] [--threads N] [--input-size HxW] [--strict] --output EMB.npy [--names NAMES.txt]\n"
          "              IMAGE_OR_DIRECTORY...\n"
          "  fusenet similar --embeddings EMB.npy --names NAMES.txt --query IMAGE [-k 5]\n"
          "              [--resnet-weights F] [--vgg-weights F] [--resnet-layer L] [--vgg-layer L] [--pool avg|max]\n"
          "              [--input-size HxW]\n"
          "  fusenet viz --image IMAGE --model resnet50|vgg16 [--weights F] [--layer NAME] --output OUT.png\n"
          "              [--input-size HxW] [--output-size HxW] [--alpha 0.5]\n"
          "  fusenet make-weights --model resnet50|vgg16 [--top] [--seed N] --output FILE.h5\n"
          "  fusenet version\n"
          "\n"
          "embed: one row per image, the fused map pooled over H,W (--pool, default avg) and L2-normalised;\n"
          "  directories are walked recursively in sorted order for .jpg/.jpeg/.png files (names starting\n"
          "  with '.' skipped); an unreadable image is reported and skipped (with --strict: the run fails);\n"
          "  --names lists the source file of each row, one per line.\n"
          "similar: embeds the query like embed (give the same taps, --pool and --input-size) and prints\n"
          "  'rank<TAB>cosine similarity<TAB>path' for the k nearest rows, best first.\n"
          "viz: the layer's mean activation over channels, scaled to 0..1, upsampled (bilinear) to the\n"
          "  picture's own size (or --output-size) and drawn with a jet colour map over it; the network\n"
          "  sees the image at --input-size (default 224x224), loaded as Keras loads it.\n"
          "Weights not given are looked for under their official file names (..._notop.h5; with --top the\n"
          "  full files) in $FUSENET_MODELS, then in ./models; models/fetch_weights.sh downloads them.\n",
          to);
    return 2;
}

static int parse_int(const char *s, int lo, int hi, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return 0;
    *out = (int)v;
    return 1;
}

static int parse_hw(const char *s, int *h, int *w) {
    char buf[64];
    if (strlen(s) >= sizeof buf) return 0;
    strcpy(buf, s);
    char *x = strchr(buf, 'x');
    if (!x) return 0;
    *x = '\0';
    return parse_int(buf, 1, 1 << 20, h) && parse_int(x + 1, 1, 1 << 20, w);
}

/* --name value pairs; --images takes every following non-option argument;
 * other arguments not starting with '-' (and all after "--") are positional. */
static int parse(int argc, char **argv, opts *o) {
    memset(o, 0, sizeof *o);
    o->threads = 0;
    o->batch = 8;
    o->seed = 1;
    o->iters = 20;
    o->k = 5;
    static const char *images[4096];
    o->images = images;
    const char **pos = malloc((size_t)argc * sizeof *pos); /* freed by main */
    if (!pos) return die("out of memory");
    o->pos = pos;
    int dashdash = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char **target = NULL;
        if (dashdash || a[0] != '-' || a[1] == '\0') {
            if (!a[0]) return die("an empty path argument");
            pos[o->n_pos++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) { dashdash = 1; continue; }
        if (strcmp(a, "--top") == 0) { o->top = 1; continue; }
        if (strcmp(a, "--strict") == 0) { o->strict = 1; continue; }
        if (strcmp(a, "--summary") == 0) { o->summary = 1; continue; }
        if (strcmp(a, "--stats") == 0) { o->stats = 1; continue; }
        if (strcmp(a, "--profile") == 0) { o->profile = 1; continue; }
        if (strcmp(a, "--images") == 0) {
            while (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) {
                if (o->n_images == 4096) return die("--images: at most 4096 files per call");
                if (!argv[i + 1][0]) return die("--images: an empty file name");
                images[o->n_images++] = argv[++i];
            }
            if (o->n_images == 0) return die("--images needs at least one file");
            continue;
        }
        if (i + 1 >= argc) return die("option %s needs a value", a);
        const char *v = argv[++i];
        if (!v[0]) return die("option %s '': the value is empty", a);
        if (strcmp(a, "--model") == 0) target = &o->model;
        else if (strcmp(a, "--weights") == 0) target = &o->weights;
        else if (strcmp(a, "--layer") == 0) target = &o->layer;
        else if (strcmp(a, "--input") == 0) target = &o->input;
        else if (strcmp(a, "--output") == 0) target = &o->output;
        else if (strcmp(a, "--resnet-weights") == 0) target = &o->resnet_weights;
        else if (strcmp(a, "--vgg-weights") == 0) target = &o->vgg_weights;
        else if (strcmp(a, "--resnet-layer") == 0) target = &o->resnet_layer;
        else if (strcmp(a, "--vgg-layer") == 0) target = &o->vgg_layer;
        else if (strcmp(a, "--resize") == 0) target = &o->resize;
        else if (strcmp(a, "--size") == 0) target = &o->size;
        else if (strcmp(a, "--input-size") == 0) target = &o->input_size;
        else if (strcmp(a, "--load-interp") == 0) target = &o->load_interp;
        else if (strcmp(a, "--mode") == 0) target = &o->mode;
        else if (strcmp(a, "--pool") == 0) target = &o->pool;
        else if (strcmp(a, "--names") == 0) target = &o->names;
        else if (strcmp(a, "--embeddings") == 0) target = &o->embeddings;
        else if (strcmp(a, "--query") == 0) target = &o->query;
        else if (strcmp(a, "--image") == 0) target = &o->image;
        else if (strcmp(a, "--alpha") == 0) target = &o->alpha;
        else if (strcmp(a, "--output-size") == 0) target = &o->output_size;
        else if (strcmp(a, "-k") == 0 || strcmp(a, "--k") == 0) {
            if (!parse_int(v, 1, 1000000, &o->k)) return die("-k: '%s' is not a number in 1..1000000", v);
            continue;
        } else if (strcmp(a, "--threads") == 0) {
            if (!parse_int(v, 1, 1024, &o->threads)) return die("--threads: '%s' is not a number in 1..1024", v);
            continue;
        } else if (strcmp(a, "--batch") == 0) {
            if (!parse_int(v, 1, 4096, &o->batch)) return die("--batch: '%s' is not a number in 1..4096", v);
            o->batch_given = 1;
            continue;
        } else if (strcmp(a, "--iters") == 0) {
            if (!parse_int(v, 1, 100000, &o->iters)) return die("--iters: '%s' is not a number in 1..100000", v);
            continue;
        } else if (strcmp(a, "--seed") == 0) {
            int s;
            if (!parse_int(v, 0, 2147483647, &s)) return die("--seed: '%s' is not a number", v);
            o->seed = s;
            continue;
        } else
            return die("unknown option '%s' (see 'fusenet' for usage)", a);
        *target = v;
    }
    if (o->threads) fusenet_set_threads(o->threads);
    return 0;
}

static int parse_model(const char *name, fusenet_arch *arch) {
    if (!name) return die("--model is required (resnet50 or vgg16)");
    if (strcmp(name, "resnet50") == 0) *arch = FUSENET_ARCH_RESNET50;
    else if (strcmp(name, "vgg16") == 0) *arch = FUSENET_ARCH_VGG16;
    else return die("--model: '%s' is not resnet50 or vgg16", name);
    return 0;
}

/* Refuses an output path whose directory is missing (before any work is done). */
static int check_output(const char *option, const char *path) {
    if (!path) return 0;
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (!slash) strcpy(dir, ".");
    else if (slash == path) strcpy(dir, "/");
    else if ((size_t)(slash - path) < sizeof dir) {
        memcpy(dir, path, (size_t)(slash - path));
        dir[slash - path] = '\0';
    } else
        return die("%s %s: the path is too long", option, path);
    struct stat sb;
    if (stat(dir, &sb) != 0) return die("cannot write %s (%s): %s", path, option, strerror(errno));
    if (!S_ISDIR(sb.st_mode)) return die("cannot write %s (%s): %s", path, option, strerror(ENOTDIR));
    return 0;
}

/* ---- weights finder ---- */

static const char *official_weights(fusenet_arch arch, int top) {
    if (arch == FUSENET_ARCH_RESNET50)
        return top ? "resnet50_weights_tf_dim_ordering_tf_kernels.h5"
                   : "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5";
    return top ? "vgg16_weights_tf_dim_ordering_tf_kernels.h5" : "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5";
}

static int is_regular_file(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* Keeps *path if the option was given; otherwise looks for the official file
 * name in $FUSENET_MODELS, then in ./models, and stores what it finds in buf. */
static int find_weights(const char **path, const char *option, fusenet_arch arch, int top, char *buf, size_t size) {
    if (*path) return 0;
    const char *name = official_weights(arch, top);
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

static int find_dual_weights(opts *o) {
    if (find_weights(&o->resnet_weights, "--resnet-weights", FUSENET_ARCH_RESNET50, o->top, o->found[0],
                     sizeof o->found[0]))
        return 1;
    return find_weights(&o->vgg_weights, "--vgg-weights", FUSENET_ARCH_VGG16, o->top, o->found[1],
                        sizeof o->found[1]);
}

/* ---- layers ---- */

static void group_digits(long long v, char *buf, size_t size) {
    char raw[32];
    snprintf(raw, sizeof raw, "%lld", v);
    size_t len = strlen(raw), k = 0;
    for (size_t i = 0; i < len && k + 2 < size; i++) {
        buf[k++] = raw[i];
        if ((len - i - 1) % 3 == 0 && i + 1 < len) buf[k++] = ',';
    }
    buf[k] = '\0';
}

static int cmd_layers(const opts *o) {
    fusenet_model_params p = fusenet_model_default_params();
    if (parse_model(o->model, &p.arch)) return 1;
    p.include_top = o->top;
    int h = 224, w = 224;
    if (o->input_size && !parse_hw(o->input_size, &h, &w))
        return die("--input-size: '%s' is not HxW", o->input_size);
    fusenet_error err;
    fusenet_model *m;
    if (fusenet_model_create(&p, &m, &err)) return fail(&err);
    long long total = 0;
    if (o->summary) printf("%-28s %-24s %-18s %12s\n", "Layer", "Type", "Output shape", "Param #");
    for (size_t i = 0; i < fusenet_model_layer_count(m); i++) {
        fusenet_layer_info info;
        if (fusenet_model_layer_info(m, i, h, w, &info, &err)) {
            fusenet_model_free(m);
            return fail(&err);
        }
        char shape[64];
        if (info.h == 0) snprintf(shape, sizeof shape, "%d", info.c);
        else snprintf(shape, sizeof shape, "%dx%dx%d", info.h, info.w, info.c);
        total += info.params;
        if (o->summary) {
            char params[32];
            group_digits(info.params, params, sizeof params);
            printf("%-28s %-24s %-18s %12s\n", info.name, info.type, shape, params);
        } else {
            printf("%s\t%s\t%s\n", info.name, info.type, shape);
        }
    }
    if (o->summary) {
        char t[32];
        group_digits(total, t, sizeof t);
        printf("Total params: %s\n", t);
    }
    fusenet_model_free(m);
    return 0;
}

/* ---- inputs ---- */

static int load_input(const opts *o, fn_npy *x) {
    fusenet_error err;
    if (o->input && o->n_images) return die("give either --input or --images, not both");
    if (o->input) {
        if (fusenet__npy_read(o->input, MAX_INPUT_BYTES, x, &err)) return fail(&err);
        if (x->rank != 4 || x->dims[3] != 3) {
            char shape[128] = "";
            for (int d = 0; d < x->rank; d++)
                snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%lld", d ? "," : "",
                         (long long)x->dims[d]);
            fusenet__npy_free(x);
            return die("%s: expected an (N,H,W,3) array, got shape (%s)", o->input, shape);
        }
        if (x->dims[0] < 1) {
            fusenet__npy_free(x);
            return die("%s: the batch is empty (N = 0)", o->input);
        }
        return 0;
    }
    if (!o->n_images) return die("an input is required: --input IN.npy or --images IMG...");
    fusenet_image_params ip = fusenet_image_default_params();
    int h = 224, w = 224;
    if (o->input_size && !parse_hw(o->input_size, &h, &w))
        return die("--input-size: '%s' is not HxW", o->input_size);
    ip.height = h;
    ip.width = w;
    if (o->load_interp) {
        if (strcmp(o->load_interp, "bilinear") == 0) ip.interp = FUSENET_INTERP_BILINEAR;
        else if (strcmp(o->load_interp, "nearest") != 0)
            return die("--load-interp: '%s' is not nearest or bilinear", o->load_interp);
    }
    size_t per = (size_t)h * (size_t)w * 3;
    memset(x, 0, sizeof *x);
    x->rank = 4;
    x->dims[0] = o->n_images;
    x->dims[1] = h;
    x->dims[2] = w;
    x->dims[3] = 3;
    if ((double)per * o->n_images * sizeof(float) > (double)MAX_INPUT_BYTES) return die("too many images at once");
    x->data = fusenet__malloc(per * (size_t)o->n_images * sizeof(float)); /* freed by fusenet__npy_free */
    if (!x->data) return die("out of memory for %d images", o->n_images);
    for (int i = 0; i < o->n_images; i++)
        if (fusenet_image_load(o->images[i], &ip, x->data + per * (size_t)i, &err)) {
            fusenet__free(x->data);
            x->data = NULL;
            return fail(&err);
        }
    return 0;
}

static void print_stats(const char *what, const fusenet_tensor *t, const float *data, long long n) {
    double sum = 0, sq = 0;
    float lo = INFINITY, hi = -INFINITY;
    long long count = n * (long long)t->h * t->w * t->c, zeros = 0;
    for (long long i = 0; i < count; i++) {
        float v = data[i];
        sum += v;
        sq += (double)v * v;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
        zeros += v == 0.0f;
    }
    double mean = sum / (double)count;
    printf("%s: shape (%lld, %d, %d, %d)  min %.6g  max %.6g  mean %.6g  std %.6g  zeros %.1f%%\n", what, n, t->h,
           t->w, t->c, lo, hi, mean, sqrt(sq / (double)count - mean * mean), 100.0 * (double)zeros / (double)count);
}

/* Runs nets of batch b over the N inputs in chunks, copying one output per
 * chunk into out (allocated here). which < 0: fused map; else tap index. */
typedef fusenet_status (*build_fn)(const opts *o, int batch, int h, int w, fusenet_net **net, fusenet_error *err);

static int run_chunks(const opts *o, build_fn build, const fn_npy *x, int which, float **out, fusenet_tensor *shape) {
    int n = (int)x->dims[0], h = (int)x->dims[1], w = (int)x->dims[2];
    int b = o->batch < n ? o->batch : n;
    fusenet_error err;
    fusenet_net *net = NULL, *tail = NULL;
    *out = NULL;
    if (build(o, b, h, w, &net, &err)) return fail(&err);
    int rc = 0;
    size_t per_out = 0;
    for (int start = 0; start < n && rc == 0; start += b) {
        int cnt = n - start < b ? n - start : b;
        fusenet_net *use = net;
        if (cnt != b) {
            if (build(o, cnt, h, w, &tail, &err)) { rc = fail(&err); break; }
            use = tail;
        }
        fusenet_tensor in = {x->data + (size_t)start * h * w * 3, cnt, h, w, 3}, res;
        if (fusenet_net_run(use, &in, &err)) { rc = fail(&err); break; }
        fusenet_status st = which < 0 ? fusenet_net_output(use, &res, &err)
                                      : fusenet_net_tap_output(use, (size_t)which, &res, &err);
        if (st) { rc = fail(&err); break; }
        if (!*out) {
            per_out = (size_t)res.h * res.w * res.c;
            *out = malloc(per_out * (size_t)n * sizeof(float));
            if (!*out) { rc = die("out of memory for the output"); break; }
            *shape = res;
            shape->n = n;
        }
        memcpy(*out + per_out * (size_t)start, res.data, per_out * (size_t)cnt * sizeof(float));
    }
    fusenet_net_free(net);
    fusenet_net_free(tail);
    if (rc) {
        free(*out);
        *out = NULL;
    }
    return rc;
}

/* Writes (N, H, W, C), or (N, C) for a flat layer (Dense, global pooling, Flatten) as Keras shapes it. */
static int write_output(const opts *o, const fusenet_tensor *t, const float *data, int flat) {
    int64_t dims[4] = {t->n, t->h, t->w, t->c};
    int64_t flat_dims[2] = {t->n, t->c};
    fusenet_error err;
    if (fusenet__npy_write(o->output, flat ? 2 : 4, flat ? flat_dims : dims, data, &err)) return fail(&err);
    return 0;
}

/* ---- tap ---- */

static fusenet_model *tap_model;

static fusenet_status build_tap(const opts *o, int batch, int h, int w, fusenet_net **net, fusenet_error *err) {
    fusenet_tap tap = {tap_model, o->layer};
    fusenet_net_params p = fusenet_net_default_params();
    p.taps = &tap;
    p.n_taps = 1;
    p.batch = batch;
    p.in_h = h;
    p.in_w = w;
    p.fuse = 0;
    return fusenet_net_build(&p, net, err);
}

static int cmd_tap(opts *o) {
    fusenet_model_params p = fusenet_model_default_params();
    if (parse_model(o->model, &p.arch)) return 1;
    if (!o->layer) return die("--layer NAME is required");
    if (!o->output) return die("--output OUT.npy is required");
    if (check_output("--output", o->output)) return 1;
    fusenet_error err;
    /* Validate the tap name before reading anything. */
    fusenet_model *probe;
    size_t index;
    if (fusenet_model_create(&p, &probe, &err)) return fail(&err);
    fusenet_status st = fusenet_model_find_layer(probe, o->layer, &index, &err);
    int top = 0;
    if (st) { /* maybe a layer of the top */
        fusenet_model_free(probe);
        p.include_top = 1;
        fusenet_error err2;
        if (fusenet_model_create(&p, &probe, &err2)) return fail(&err2);
        if (fusenet_model_find_layer(probe, o->layer, &index, &err2)) {
            fusenet_model_free(probe);
            return fail(&err);
        }
        top = 1;
    }
    fusenet_layer_info info;
    int flat = fusenet_model_layer_info(probe, index, 224, 224, &info, NULL) == FUSENET_OK && info.h == 0;
    fusenet_model_free(probe);
    p.include_top = top;
    if (find_weights(&o->weights, "--weights", p.arch, top || o->top, o->found[0], sizeof o->found[0])) return 1;
    fn_npy x;
    if (load_input(o, &x)) return 1;
    const char *needed[1] = {o->layer};
    p.needed_layers = needed;
    p.n_needed = 1;
    if (fusenet_model_load(o->weights, &p, &tap_model, &err)) {
        fusenet__npy_free(&x);
        return fail(&err);
    }
    float *out;
    fusenet_tensor shape;
    int rc = run_chunks(o, build_tap, &x, 0, &out, &shape);
    if (!rc) rc = write_output(o, &shape, out, flat);
    if (!rc && o->stats) print_stats(o->layer, &shape, out, shape.n);
    free(out);
    fusenet__npy_free(&x);
    fusenet_model_free(tap_model);
    return rc;
}

/* ---- fuse ---- */

/* The dual-net parameters the options ask for (weights, taps, mode). */
static fusenet_dual_params dual_params(const opts *o, int batch, int h, int w) {
    fusenet_dual_params p = fusenet_dual_default_params();
    p.resnet_weights = o->resnet_weights;
    p.vgg_weights = o->vgg_weights;
    p.resnet_layer = o->resnet_layer;
    p.vgg_layer = o->vgg_layer;
    p.batch = batch;
    p.in_h = h;
    p.in_w = w;
    if (o->mode && strcmp(o->mode, "fast") == 0) p.mode = FUSENET_MODE_FAST;
    return p;
}

static fusenet_status build_fuse(const opts *o, int batch, int h, int w, fusenet_net **net, fusenet_error *err) {
    fusenet_dual_params p = dual_params(o, batch, h, w);
    if (o->resize && strcmp(o->resize, "nearest") == 0) p.resize = FUSENET_INTERP_NEAREST;
    if (o->size && strcmp(o->size, "max") == 0) p.size = FUSENET_SIZE_MAX;
    else if (o->size && strcmp(o->size, "min") != 0) {
        p.size = FUSENET_SIZE_EXPLICIT;
        parse_hw(o->size, &p.out_h, &p.out_w);
    }
    return fusenet_build_dual(&p, net, err);
}

/* Checks the options build_fuse reads. */
static int check_fuse_opts(const opts *o) {
    if (o->resize && strcmp(o->resize, "bilinear") != 0 && strcmp(o->resize, "nearest") != 0)
        return die("--resize: '%s' is not bilinear or nearest", o->resize);
    if (o->mode && strcmp(o->mode, "exact") != 0 && strcmp(o->mode, "fast") != 0)
        return die("--mode: '%s' is not exact or fast", o->mode);
    int sh, sw;
    if (o->size && strcmp(o->size, "min") != 0 && strcmp(o->size, "max") != 0 && !parse_hw(o->size, &sh, &sw))
        return die("--size: '%s' is not min, max or HxW", o->size);
    return 0;
}

static int cmd_fuse(opts *o) {
    if (!o->output) return die("--output OUT.npy is required");
    if (check_output("--output", o->output) || check_fuse_opts(o) || find_dual_weights(o)) return 1;
    fn_npy x;
    if (load_input(o, &x)) return 1;
    float *out;
    fusenet_tensor shape;
    int rc = run_chunks(o, build_fuse, &x, -1, &out, &shape);
    if (!rc) rc = write_output(o, &shape, out, 0);
    if (!rc && o->stats) print_stats("fused", &shape, out, shape.n);
    free(out);
    fusenet__npy_free(&x);
    return rc;
}


/* ---- bench ---- */

static double seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int cmp_step_time(const void *a, const void *b) {
    double x = (*(const fn_step *const *)a)->time_ms, y = (*(const fn_step *const *)b)->time_ms;
    return (x < y) - (x > y);
}

static int cmd_bench(opts *o) {
    if (find_dual_weights(o)) return 1;
    if (o->mode && strcmp(o->mode, "exact") != 0 && strcmp(o->mode, "fast") != 0)
        return die("--mode: '%s' is not exact or fast", o->mode);
    int h = 224, w = 224;
    if (o->size && !parse_hw(o->size, &h, &w)) return die("--size: '%s' is not HxW", o->size);
    int batch = o->batch_given ? o->batch : 1;
    fusenet_dual_params p = dual_params(o, batch, h, w);
    fusenet_error err;
    fusenet_net *net;
    double t0 = seconds();
    if (fusenet_build_dual(&p, &net, &err)) return fail(&err);
    double build_s = seconds() - t0;
    size_t n = (size_t)batch * h * w * 3;
    float *x = malloc(n * sizeof *x);
    double *times = malloc((size_t)o->iters * sizeof *times);
    if (!x || !times) {
        free(x);
        free(times);
        fusenet_net_free(net);
        return die("out of memory");
    }
    uint64_t s = 12345;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((s >> 40) % 25600) / 100.0f - 120.0f;
    }
    fusenet_tensor in = {x, batch, h, w, 3};
    int rc = 0;
    for (int i = 0; i < 3 && !rc; i++) /* warm-up */
        if (fusenet_net_run(net, &in, &err)) rc = fail(&err);
    for (int i = 0; i < o->iters && !rc; i++) {
        double a = seconds();
        if (fusenet_net_run(net, &in, &err)) rc = fail(&err);
        times[i] = (seconds() - a) * 1e3;
    }
    if (!rc && o->profile) {
        for (int i = 0; i < net->n_steps; i++) net->steps[i].time_ms = 0;
        for (int i = 0; i < o->iters && !rc; i++)
            if (fusenet__net_run_profiled(net, &in, &err)) rc = fail(&err);
        fn_step **order = malloc((size_t)net->n_steps * sizeof *order);
        if (order) {
            double total = 0;
            for (int i = 0; i < net->n_steps; i++) {
                order[i] = &net->steps[i];
                total += net->steps[i].time_ms;
            }
            qsort(order, (size_t)net->n_steps, sizeof *order, cmp_step_time);
            printf("%-22s %10s %7s %9s  %s\n", "layer", "ms/batch", "share", "GFLOP/s", "oneDNN implementation");
            for (int i = 0; i < net->n_steps && i < (getenv("FUSENET_PROFILE_ALL") ? net->n_steps : 10); i++) {
                double ms = order[i]->time_ms / o->iters;
                printf("%-22s %10.3f %6.1f%% %9.1f  %s\n", order[i]->layer, ms, 100.0 * order[i]->time_ms / total,
                       order[i]->flops > 0 ? order[i]->flops / ms / 1e6 : 0.0, order[i]->impl);
            }
            free(order);
        }
    }
    if (!rc) {
        double gflop = 0;
        for (int i = 0; i < net->n_steps; i++) gflop += net->steps[i].flops / 1e9;
        qsort(times, (size_t)o->iters, sizeof *times, cmp_double);
        double median = times[o->iters / 2], best = times[0];
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        printf("{\"images_per_s\": %.3f, \"ms_per_batch_median\": %.3f, \"ms_per_batch_min\": %.3f, "
               "\"gflops\": %.2f, \"peak_rss_mb\": %.1f, \"build_s\": %.3f}\n",
               batch * 1e3 / median, median, best, gflop / (median / 1e3), (double)ru.ru_maxrss / 1024.0, build_s);
    }
    free(x);
    free(times);
    fusenet_net_free(net);
    return rc;
}

/* ---- shared by embed, similar, viz ---- */

static int progress_shown; /* a progress line is on the terminal: clear it before other messages */

static void clear_progress(void) {
    if (progress_shown) fputs("\r\033[K", stderr);
    progress_shown = 0;
}

/* A skipped input: reported by name on stderr. Returns 1 with --strict (the run fails). */
static int skip(const opts *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int skip(const opts *o, const char *fmt, ...) {
    clear_progress();
    va_list ap;
    va_start(ap, fmt);
    fputs(o->strict ? "fusenet: " : "fusenet: skipped: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return o->strict;
}

static int parse_pool(const opts *o, fusenet_pooling *pool) {
    *pool = FUSENET_POOLING_AVG;
    if (!o->pool || strcmp(o->pool, "avg") == 0) return 0;
    if (strcmp(o->pool, "max") == 0) {
        *pool = FUSENET_POOLING_MAX;
        return 0;
    }
    return die("--pool: '%s' is not avg or max", o->pool);
}

/* --input-size and --load-interp into image params (caffe preprocessing on). */
static int image_params(const opts *o, fusenet_image_params *ip) {
    *ip = fusenet_image_default_params();
    int h = 224, w = 224;
    if (o->input_size && !parse_hw(o->input_size, &h, &w)) return die("--input-size: '%s' is not HxW", o->input_size);
    if (h < 32 || w < 32 || h > 8192 || w > 8192)
        return die("--input-size: %dx%d is outside 32x32 .. 8192x8192", h, w);
    ip->height = h;
    ip->width = w;
    if (o->load_interp) {
        if (strcmp(o->load_interp, "bilinear") == 0) ip->interp = FUSENET_INTERP_BILINEAR;
        else if (strcmp(o->load_interp, "nearest") != 0)
            return die("--load-interp: '%s' is not nearest or bilinear", o->load_interp);
    }
    return 0;
}

/* ---- embed: collecting the files ---- */

typedef struct dir_id {
    dev_t dev;
    ino_t ino;
} dir_id;

typedef struct file_list {
    char **paths;
    size_t n, cap;
    dir_id *seen; /* directories already walked: symlink loops and repeats */
    size_t n_seen, cap_seen;
} file_list;

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 0;
    size_t nc = *cap ? 2 * *cap : 64;
    while (nc < need) nc *= 2;
    void *np = realloc(*p, nc * elem);
    if (!np) return die("out of memory");
    *p = np;
    *cap = nc;
    return 0;
}

static int add_file(file_list *l, const char *path) {
    if (grow((void **)&l->paths, &l->cap, l->n + 1, sizeof *l->paths)) return 1;
    char *copy = malloc(strlen(path) + 1);
    if (!copy) return die("out of memory");
    strcpy(copy, path);
    l->paths[l->n++] = copy;
    return 0;
}

static void free_files(file_list *l) {
    for (size_t i = 0; i < l->n; i++) free(l->paths[i]);
    free(l->paths);
    free(l->seen);
}

static int is_image_name(const char *name) {
    const char *dot = strrchr(name, '.');
    return dot && (strcasecmp(dot, ".jpg") == 0 || strcasecmp(dot, ".jpeg") == 0 || strcasecmp(dot, ".png") == 0);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Walks dir recursively in byte-wise sorted order, depth first, collecting
 * .jpg/.jpeg/.png files (any case). Entries starting with '.' are skipped;
 * symbolic links are followed, but a directory is never walked twice. */
static int walk(const opts *o, file_list *l, const char *dir, const struct stat *sb) {
    for (size_t i = 0; i < l->n_seen; i++)
        if (l->seen[i].dev == sb->st_dev && l->seen[i].ino == sb->st_ino) return 0;
    if (grow((void **)&l->seen, &l->cap_seen, l->n_seen + 1, sizeof *l->seen)) return 1;
    l->seen[l->n_seen++] = (dir_id){sb->st_dev, sb->st_ino};
    DIR *d = opendir(dir);
    if (!d) return skip(o, "cannot read directory %s: %s", dir, strerror(errno));
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *e;
    for (errno = 0; (e = readdir(d)) != NULL; errno = 0) {
        if (e->d_name[0] == '.') continue;
        if (grow((void **)&names, &cap, n + 1, sizeof *names) || !(names[n] = malloc(strlen(e->d_name) + 1))) {
            rc = die("out of memory");
            break;
        }
        strcpy(names[n++], e->d_name);
    }
    if (!rc && errno) rc = skip(o, "cannot read directory %s: %s", dir, strerror(errno));
    closedir(d);
    if (n) qsort(names, n, sizeof *names, cmp_str);
    size_t dlen = strlen(dir);
    int slash = dlen > 0 && dir[dlen - 1] == '/';
    for (size_t i = 0; i < n && !rc; i++) {
        char *path = malloc(dlen + strlen(names[i]) + 2);
        if (!path) {
            rc = die("out of memory");
            break;
        }
        sprintf(path, "%s%s%s", dir, slash ? "" : "/", names[i]);
        struct stat st;
        if (stat(path, &st) != 0) { /* dangling or looping link, vanished entry */
            if (is_image_name(names[i])) rc = skip(o, "cannot read image %s: %s", path, strerror(errno));
        } else if (S_ISDIR(st.st_mode)) {
            rc = walk(o, l, path, &st);
        } else if (S_ISREG(st.st_mode) && is_image_name(names[i])) {
            rc = add_file(l, path);
        }
        free(path);
    }
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    return rc;
}

/* Files given are taken whatever their name; directories are walked. */
static int collect(const opts *o, file_list *l) {
    memset(l, 0, sizeof *l);
    for (int i = 0; i < o->n_pos; i++) {
        struct stat st;
        if (stat(o->pos[i], &st) != 0) return die("%s: %s", o->pos[i], strerror(errno));
        int rc = S_ISDIR(st.st_mode) ? walk(o, l, o->pos[i], &st) : add_file(l, o->pos[i]);
        if (rc) return 1;
    }
    return 0;
}

/* ---- embed ---- */

static double seconds_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void show_progress(size_t done, size_t total, size_t embedded, double elapsed) {
    double rate = elapsed > 0 ? (double)embedded / elapsed : 0.0;
    double left = done > 0 ? elapsed / (double)done * (double)(total - done) : 0.0;
    long l = (long)(left + 0.5);
    fprintf(stderr, "\r\033[Kembedding: %zu/%zu images  %.1f images/s  ", done, total, rate);
    if (l >= 3600) fprintf(stderr, "%ldh%02ldm left", l / 3600, l / 60 % 60);
    else fprintf(stderr, "%ldm%02lds left", l / 60, l % 60);
    fflush(stderr);
    progress_shown = 1;
}

/* Writes the names (one path per line, row order) to a temp file beside `path`,
 * left open in *fd for fusenet__temp_close once the array is written. */
static int write_names_temp(const char *path, char *const *files, const size_t *src, size_t n, char **tmp,
                            int *fd) {
    fusenet_error err;
    *fd = fusenet__temp_open(path, tmp, &err);
    if (*fd < 0) return fail(&err);
    int ok = 1;
    for (size_t i = 0; i < n && ok; i++)
        ok = fusenet__write_full(*fd, files[src[i]], strlen(files[src[i]])) && fusenet__write_full(*fd, "\n", 1);
    if (ok) return 0;
    fusenet__temp_close(*fd, *tmp, path, 0, errno, &err);
    *fd = -1;
    *tmp = NULL;
    return fail(&err);
}

static int cmd_embed(opts *o) {
    if (!o->output) return die("--output EMB.npy is required");
    if (!o->n_pos) return die("give the images or directories to embed (see 'fusenet' for usage)");
    if (o->names && strcmp(o->names, o->output) == 0) return die("--names and --output name the same file");
    if (check_output("--output", o->output) || check_output("--names", o->names)) return 1;
    fusenet_pooling pool;
    fusenet_image_params ip;
    if (parse_pool(o, &pool) || image_params(o, &ip) || check_fuse_opts(o) || find_dual_weights(o)) return 1;
    file_list files;
    if (collect(o, &files)) {
        free_files(&files);
        return 1;
    }
    if (files.n == 0) {
        free_files(&files);
        return die("no .jpg, .jpeg or .png files found in %s%s", o->pos[0], o->n_pos > 1 ? " and the rest" : "");
    }
    int b = (size_t)o->batch < files.n ? o->batch : (int)files.n;
    fusenet_error err;
    fusenet_net *net = NULL;
    if (build_fuse(o, b, ip.height, ip.width, &net, &err)) {
        free_files(&files);
        return fail(&err);
    }
    size_t dim = fusenet_embed_dim(net), per = (size_t)ip.height * ip.width * 3;
    float *x = malloc((size_t)b * per * sizeof *x), *batch_out = malloc((size_t)b * dim * sizeof *batch_out);
    float *rows = NULL;
    size_t *src = NULL, *slot_src = malloc((size_t)b * sizeof *slot_src), n_rows = 0, cap_rows = 0, cap_src = 0;
    int rc = 0, cnt = 0, tty = isatty(STDERR_FILENO);
    size_t skipped = 0;
    if (!x || !batch_out || !slot_src) rc = die("out of memory for a batch of %d images", b);
    double t0 = seconds_now(), last_shown = t0;
    for (size_t i = 0; i < files.n && !rc; i++) {
        const char *path = files.paths[i];
        if (strchr(path, '\n')) {
            rc = skip(o, "%s: a file name with a newline cannot be listed in the names file", path);
            skipped++;
        } else if (fusenet_image_load(path, &ip, x + per * (size_t)cnt, &err)) {
            rc = skip(o, "%s", err.message);
            skipped++;
        } else {
            slot_src[cnt++] = i;
        }
        if (rc || (cnt < b && i + 1 < files.n) || cnt == 0) continue;
        if (cnt < b) memset(x + per * (size_t)cnt, 0, per * (size_t)(b - cnt) * sizeof *x); /* spare slots */
        fusenet_tensor in = {x, b, ip.height, ip.width, 3};
        if (fusenet_embed(net, &in, pool, batch_out, &err)) {
            rc = fail(&err);
            break;
        }
        if (grow((void **)&rows, &cap_rows, (n_rows + (size_t)cnt) * dim, sizeof *rows) ||
            grow((void **)&src, &cap_src, n_rows + (size_t)cnt, sizeof *src)) {
            rc = 1;
            break;
        }
        memcpy(rows + n_rows * dim, batch_out, (size_t)cnt * dim * sizeof *rows);
        memcpy(src + n_rows, slot_src, (size_t)cnt * sizeof *src);
        n_rows += (size_t)cnt;
        cnt = 0;
        double now = seconds_now();
        if (tty && (now - last_shown > 0.25 || i + 1 == files.n)) {
            show_progress(i + 1, files.n, n_rows, now - t0);
            last_shown = now;
        }
    }
    clear_progress();
    if (!rc && n_rows == 0) rc = die("none of the %zu files could be embedded", files.n);
    /* Names to a temp file, then the array (temp + rename), then the names renamed into place. */
    char *tmp = NULL;
    int nfd = -1;
    if (!rc && o->names) rc = write_names_temp(o->names, files.paths, src, n_rows, &tmp, &nfd);
    if (!rc) {
        int64_t dims[2] = {(int64_t)n_rows, (int64_t)dim};
        if (fusenet__npy_write(o->output, 2, dims, rows, &err)) rc = fail(&err);
    }
    if (nfd >= 0) { /* renamed into place only if the array was written */
        int names_failed = fusenet__temp_close(nfd, tmp, o->names, !rc, 0, &err) != FUSENET_OK;
        if (names_failed && !rc) {
            unlink(o->output); /* never leave embeddings without their names */
            rc = fail(&err);
        }
    }
    if (!rc && skipped) fprintf(stderr, "fusenet: embedded %zu of %zu files (%zu skipped)\n", n_rows, files.n, skipped);
    else if (!rc && tty)
        fprintf(stderr, "fusenet: embedded %zu images in %.1f s\n", n_rows, seconds_now() - t0);
    free(x);
    free(batch_out);
    free(rows);
    free(src);
    free(slot_src);
    fusenet_net_free(net);
    free_files(&files);
    return rc;
}

/* ---- similar ---- */

/* Reads a text file into lines (the buffer is modified in place; '\n' ends a line). */
static int read_lines(const char *path, char **buf_out, char ***lines_out, size_t *n_out) {
    *buf_out = NULL;
    *lines_out = NULL;
    *n_out = 0;
    struct stat sb;
    if (stat(path, &sb) != 0) return die("cannot open %s: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) return die("cannot read %s: %s", path, strerror(EISDIR));
    FILE *f = fopen(path, "rb");
    if (!f) return die("cannot open %s: %s", path, strerror(errno));
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (grow((void **)&buf, &cap, n + 65536 + 1, 1)) {
            fclose(f);
            free(buf);
            return 1;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0) break;
    }
    int bad = ferror(f), e = errno;
    fclose(f);
    if (bad) {
        free(buf);
        return die("cannot read %s: %s", path, strerror(e));
    }
    buf[n] = '\0';
    size_t count = 0;
    for (size_t i = 0; i < n; i++) count += buf[i] == '\n';
    if (n > 0 && buf[n - 1] != '\n') count++;
    char **lines = malloc((count ? count : 1) * sizeof *lines);
    if (!lines) {
        free(buf);
        return die("out of memory");
    }
    size_t k = 0;
    for (char *p = buf; k < count; k++) {
        lines[k] = p;
        char *nl = strchr(p, '\n');
        if (!nl) break;
        *nl = '\0';
        p = nl + 1;
    }
    *buf_out = buf;
    *lines_out = lines;
    *n_out = count;
    return 0;
}

static const float *sim_scores;

static int cmp_by_score(const void *a, const void *b) {
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    float x = sim_scores[i], y = sim_scores[j];
    if (x != y) return x < y ? 1 : -1;
    return (i > j) - (i < j);
}

static int cmd_similar(opts *o) {
    if (!o->embeddings) return die("--embeddings EMB.npy is required");
    if (!o->names) return die("--names NAMES.txt is required (written by 'fusenet embed --names')");
    if (!o->query) return die("--query IMAGE is required");
    fusenet_pooling pool;
    fusenet_image_params ip;
    if (parse_pool(o, &pool) || image_params(o, &ip) || check_fuse_opts(o) || find_dual_weights(o)) return 1;
    fusenet_error err;
    fn_npy emb;
    if (fusenet__npy_read(o->embeddings, MAX_INPUT_BYTES, &emb, &err)) return fail(&err);
    char *buf = NULL, **names = NULL;
    size_t n_names = 0;
    int rc = 0;
    if (emb.rank != 2 || emb.dims[1] < 1)
        rc = die("%s: expected an (N, C) array of embeddings with C > 0 (from 'fusenet embed'), got rank %d%s",
                 o->embeddings, emb.rank, emb.rank == 2 ? " with C = 0" : "");
    else if (read_lines(o->names, &buf, &names, &n_names))
        rc = 1;
    else if ((int64_t)n_names != emb.dims[0])
        rc = die("%s has %lld rows but %s lists %zu names; use the two files of one 'fusenet embed' run",
                 o->embeddings, (long long)emb.dims[0], o->names, n_names);
    fusenet_net *net = NULL;
    if (!rc && build_fuse(o, 1, ip.height, ip.width, &net, &err)) rc = fail(&err);
    size_t dim = rc ? 0 : fusenet_embed_dim(net), n = rc ? 0 : (size_t)emb.dims[0];
    if (!rc && (int64_t)dim != emb.dims[1])
        rc = die("%s has %lld values per row but these taps give %zu; use the --resnet-layer/--vgg-layer of the "
                 "'fusenet embed' run",
                 o->embeddings, (long long)emb.dims[1], dim);
    float *q = NULL, *score = NULL;
    size_t *order = NULL;
    if (!rc) {
        q = malloc(dim * sizeof *q);
        score = malloc((n ? n : 1) * sizeof *score);
        order = malloc((n ? n : 1) * sizeof *order);
        if (!q || !score || !order) rc = die("out of memory");
    }
    if (!rc && fusenet_embed_image(net, o->query, &ip, pool, q, &err)) rc = fail(&err);
    if (!rc) {
        double qn = 0;
        for (size_t k = 0; k < dim; k++) qn += (double)q[k] * q[k];
        for (size_t i = 0; i < n; i++) {
            const float *r = emb.data + i * dim;
            double dot = 0, rn = 0;
            for (size_t k = 0; k < dim; k++) {
                dot += (double)r[k] * q[k];
                rn += (double)r[k] * r[k];
            }
            score[i] = rn > 0 && qn > 0 ? (float)(dot / sqrt(rn * qn)) : 0.0f;
            order[i] = i;
        }
        sim_scores = score;
        qsort(order, n, sizeof *order, cmp_by_score);
        size_t k = (size_t)o->k < n ? (size_t)o->k : n;
        for (size_t i = 0; i < k; i++) printf("%zu\t%.6f\t%s\n", i + 1, score[order[i]], names[order[i]]);
        if (fflush(stdout) != 0) rc = die("cannot write the results: %s", strerror(errno));
    }
    free(q);
    free(score);
    free(order);
    free(buf);
    free(names);
    fusenet_net_free(net);
    fusenet__npy_free(&emb);
    return rc;
}

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

static int cmd_viz(opts *o) {
    fusenet_model_params mp = fusenet_model_default_params();
    if (parse_model(o->model, &mp.arch)) return 1;
    if (!o->image) return die("--image IMAGE is required");
    if (!o->output) return die("--output OUT.png is required");
    if (check_output("--output", o->output)) return 1;
    const char *layer = o->layer ? o->layer : mp.arch == FUSENET_ARCH_RESNET50 ? "conv4_block6_out" : "block5_conv3";
    double alpha = 0.5;
    if (o->alpha) {
        char *end;
        alpha = strtod(o->alpha, &end);
        if (end == o->alpha || *end || !(alpha >= 0.0 && alpha <= 1.0))
            return die("--alpha: '%s' is not a number in 0..1", o->alpha);
    }
    fusenet_image_params ip;
    if (image_params(o, &ip)) return 1;
    int H = ip.height, W = ip.width, OH, OW;
    fusenet_error err;
    if (o->output_size) {
        if (!parse_hw(o->output_size, &OH, &OW) || OH > 16384 || OW > 16384)
            return die("--output-size: '%s' is not HxW (at most 16384x16384)", o->output_size);
    } else { /* the picture at its own size (at most 4096 on a side, aspect kept) */
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
    if (find_weights(&o->weights, "--weights", mp.arch, 0, o->found[0], sizeof o->found[0])) return 1;
    mp.needed_layers = &layer;
    mp.n_needed = 1;
    fusenet_model *model;
    if (fusenet_model_load(o->weights, &mp, &model, &err)) return fail(&err);
    fusenet_tap tap = {model, layer};
    fusenet_net_params np = fusenet_net_default_params();
    np.taps = &tap;
    np.n_taps = 1;
    np.in_h = H;
    np.in_w = W;
    np.fuse = 0;
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
        if (!isfinite(lo) || !isfinite(hi)) rc = die("layer %s has non-finite activations", layer);
    }
    if (!rc) {
        for (size_t p = 0; p < (size_t)t.h * t.w; p++) heat[p] = hi > lo ? (float)((heat[p] - lo) / (hi - lo)) : 0.0f;
        fusenet__tf_resize_nhwc(0, heat, 1, t.h, t.w, 1, up, OH, OW); /* bilinear, half-pixel centres */
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

/* ---- make-weights ---- */

static int cmd_make_weights(const opts *o) {
    fusenet_arch arch;
    if (parse_model(o->model, &arch)) return 1;
    if (!o->output) return die("--output FILE.h5 is required");
    if (check_output("--output", o->output)) return 1;
    fusenet_error err;
    if (fusenet__write_random_weights(arch, o->top, (uint64_t)o->seed, o->output, &err)) return fail(&err);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fputs("fusenet: usage: fusenet COMMAND [OPTIONS] (layers, tap, fuse, bench, embed, similar, viz, "
              "make-weights, version; 'fusenet help' lists the options)\n",
              stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("fusenet %s\n", fusenet_version());
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    static opts o; /* large (found paths): not on the stack */
    if (parse(argc, argv, &o)) {
        free(o.pos);
        return 1;
    }
    static const char *const commands[] = {"layers", "tap", "fuse", "bench", "embed", "similar", "viz", "make-weights"};
    int known = 0;
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++) known |= strcmp(cmd, commands[i]) == 0;
    int rc;
    if (!known) rc = die("unknown command '%s' (layers, tap, fuse, bench, embed, similar, viz, make-weights, version)", cmd);
    else if (o.n_pos && strcmp(cmd, "embed") != 0) rc = die("unexpected argument '%s' (see 'fusenet' for usage)", o.pos[0]);
    else if (strcmp(cmd, "layers") == 0) rc = cmd_layers(&o);
    else if (strcmp(cmd, "tap") == 0) rc = cmd_tap(&o);
    else if (strcmp(cmd, "fuse") == 0) rc = cmd_fuse(&o);
    else if (strcmp(cmd, "make-weights") == 0) rc = cmd_make_weights(&o);
    else if (strcmp(cmd, "bench") == 0) rc = cmd_bench(&o);
    else if (strcmp(cmd, "embed") == 0) rc = cmd_embed(&o);
    else if (strcmp(cmd, "similar") == 0) rc = cmd_similar(&o);
    else rc = cmd_viz(&o);
    free(o.pos);
    return rc;
}
