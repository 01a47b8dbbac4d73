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
#include "fusenet.h"
#include "model.h"
#include "net.h"
#include "npy.h"

#include <sys/resource.h>
#include <time.h>

#define MAX_IMAGES 1000000
#define MAX_INPUT_BYTES ((size_t)8 << 30)

typedef struct opts {
    const char *model, *weights, *layer, *input, *output;
    const char *resnet_weights, *vgg_weights, *resnet_layer, *vgg_layer;
    const char *resize, *size, *input_size, *load_interp, *mode;
    const char **images;
    int n_images;
    int top, summary, stats, threads, batch, iters, profile, batch_given;
    long long seed;
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

static int usage(void) {
    fputs("usage:\n"
          "  fusenet layers --model resnet50|vgg16 [--top] [--input-size HxW] [--summary]\n"
          "  fusenet tap --model resnet50|vgg16 --weights FILE.h5 --layer NAME --input IN.npy --output OUT.npy\n"
          "              [--threads N] [--batch N]\n"
          "  fusenet fuse --resnet-weights FILE.h5 --vgg-weights FILE.h5 [--resnet-layer NAME] [--vgg-layer NAME]\n"
          "              [--resize bilinear|nearest] [--size min|max|HxW] [--mode exact|fast]\n"
          "              (--input IN.npy | --images IMG... [--input-size HxW] [--load-interp nearest|bilinear])\n"
          "              --output OUT.npy [--threads N] [--batch N] [--stats]\n"
          "  fusenet bench --resnet-weights F --vgg-weights F [--resnet-layer L] [--vgg-layer L] [--batch N]\n"
          "              [--size HxW] [--threads T] [--iters K] [--mode exact|fast] [--profile]\n"
          "  fusenet make-weights --model resnet50|vgg16 [--top] [--seed N] --output FILE.h5\n"
          "  fusenet version\n",
          stderr);
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

/* --name value pairs; --images takes every following non-option argument. */
static int parse(int argc, char **argv, opts *o) {
    memset(o, 0, sizeof *o);
    o->threads = 0;
    o->batch = 8;
    o->seed = 1;
    o->iters = 20;
    static const char *images[4096];
    o->images = images;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char **target = NULL;
        if (strcmp(a, "--top") == 0) { o->top = 1; continue; }
        if (strcmp(a, "--summary") == 0) { o->summary = 1; continue; }
        if (strcmp(a, "--stats") == 0) { o->stats = 1; continue; }
        if (strcmp(a, "--profile") == 0) { o->profile = 1; continue; }
        if (strcmp(a, "--images") == 0) {
            while (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) {
                if (o->n_images == 4096) return die("--images: at most 4096 files per call");
                images[o->n_images++] = argv[++i];
            }
            if (o->n_images == 0) return die("--images needs at least one file");
            continue;
        }
        if (i + 1 >= argc) return die("option %s needs a value", a);
        const char *v = argv[++i];
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
        else if (strcmp(a, "--threads") == 0) {
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
        if (fn_npy_read(o->input, MAX_INPUT_BYTES, x, &err)) return fail(&err);
        if (x->rank != 4 || x->dims[3] != 3) {
            char shape[128] = "";
            for (int d = 0; d < x->rank; d++)
                snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%lld", d ? "," : "",
                         (long long)x->dims[d]);
            fn_npy_free(x);
            return die("%s: expected an (N,H,W,3) array, got shape (%s)", o->input, shape);
        }
        if (x->dims[0] < 1) {
            fn_npy_free(x);
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
    x->data = fn_malloc(per * (size_t)o->n_images * sizeof(float)); /* freed by fn_npy_free */
    if (!x->data) return die("out of memory for %d images", o->n_images);
    for (int i = 0; i < o->n_images; i++)
        if (fusenet_image_load(o->images[i], &ip, x->data + per * (size_t)i, &err)) {
            fn_free(x->data);
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

static int write_output(const opts *o, const fusenet_tensor *t, const float *data) {
    int64_t dims[4] = {t->n, t->h, t->w, t->c};
    fusenet_error err;
    if (fn_npy_write(o->output, 4, dims, data, &err)) return fail(&err);
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

static int cmd_tap(const opts *o) {
    fusenet_model_params p = fusenet_model_default_params();
    if (parse_model(o->model, &p.arch)) return 1;
    if (!o->weights) return die("--weights FILE.h5 is required");
    if (!o->layer) return die("--layer NAME is required");
    if (!o->output) return die("--output OUT.npy is required");
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
    fusenet_model_free(probe);
    p.include_top = top;
    fn_npy x;
    if (load_input(o, &x)) return 1;
    const char *needed[1] = {o->layer};
    p.needed_layers = needed;
    p.n_needed = 1;
    if (fusenet_model_load(o->weights, &p, &tap_model, &err)) {
        fn_npy_free(&x);
        return fail(&err);
    }
    float *out;
    fusenet_tensor shape;
    int rc = run_chunks(o, build_tap, &x, 0, &out, &shape);
    if (!rc) rc = write_output(o, &shape, out);
    if (!rc && o->stats) print_stats(o->layer, &shape, out, shape.n);
    free(out);
    fn_npy_free(&x);
    fusenet_model_free(tap_model);
    return rc;
}

/* ---- fuse ---- */

static fusenet_status build_fuse(const opts *o, int batch, int h, int w, fusenet_net **net, fusenet_error *err) {
    fusenet_dual_params p = fusenet_dual_default_params();
    p.resnet_weights = o->resnet_weights;
    p.vgg_weights = o->vgg_weights;
    p.resnet_layer = o->resnet_layer;
    p.vgg_layer = o->vgg_layer;
    p.batch = batch;
    p.in_h = h;
    p.in_w = w;
    if (o->resize && strcmp(o->resize, "nearest") == 0) p.resize = FUSENET_INTERP_NEAREST;
    if (o->mode && strcmp(o->mode, "fast") == 0) p.mode = FUSENET_MODE_FAST;
    if (o->size && strcmp(o->size, "max") == 0) p.size = FUSENET_SIZE_MAX;
    else if (o->size && strcmp(o->size, "min") != 0) {
        p.size = FUSENET_SIZE_EXPLICIT;
        parse_hw(o->size, &p.out_h, &p.out_w);
    }
    return fusenet_build_dual(&p, net, err);
}

static int cmd_fuse(const opts *o) {
    if (!o->resnet_weights) return die("--resnet-weights FILE.h5 is required");
    if (!o->vgg_weights) return die("--vgg-weights FILE.h5 is required");
    if (!o->output) return die("--output OUT.npy is required");
    if (o->resize && strcmp(o->resize, "bilinear") != 0 && strcmp(o->resize, "nearest") != 0)
        return die("--resize: '%s' is not bilinear or nearest", o->resize);
    if (o->mode && strcmp(o->mode, "exact") != 0 && strcmp(o->mode, "fast") != 0)
        return die("--mode: '%s' is not exact or fast", o->mode);
    int sh, sw;
    if (o->size && strcmp(o->size, "min") != 0 && strcmp(o->size, "max") != 0 && !parse_hw(o->size, &sh, &sw))
        return die("--size: '%s' is not min, max or HxW", o->size);
    fn_npy x;
    if (load_input(o, &x)) return 1;
    float *out;
    fusenet_tensor shape;
    int rc = run_chunks(o, build_fuse, &x, -1, &out, &shape);
    if (!rc) rc = write_output(o, &shape, out);
    if (!rc && o->stats) print_stats("fused", &shape, out, shape.n);
    free(out);
    fn_npy_free(&x);
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

static int cmd_bench(const opts *o) {
    if (!o->resnet_weights) return die("--resnet-weights FILE.h5 is required");
    if (!o->vgg_weights) return die("--vgg-weights FILE.h5 is required");
    if (o->mode && strcmp(o->mode, "exact") != 0 && strcmp(o->mode, "fast") != 0)
        return die("--mode: '%s' is not exact or fast", o->mode);
    int h = 224, w = 224;
    if (o->size && !parse_hw(o->size, &h, &w)) return die("--size: '%s' is not HxW", o->size);
    int batch = o->batch_given ? o->batch : 1;
    fusenet_dual_params p = fusenet_dual_default_params();
    p.resnet_weights = o->resnet_weights;
    p.vgg_weights = o->vgg_weights;
    p.resnet_layer = o->resnet_layer;
    p.vgg_layer = o->vgg_layer;
    p.batch = batch;
    p.in_h = h;
    p.in_w = w;
    if (o->mode && strcmp(o->mode, "fast") == 0) p.mode = FUSENET_MODE_FAST;
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
            if (fn_net_run_profiled(net, &in, &err)) rc = fail(&err);
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

/* ---- make-weights ---- */

static int cmd_make_weights(const opts *o) {
    fusenet_arch arch;
    if (parse_model(o->model, &arch)) return 1;
    if (!o->output) return die("--output FILE.h5 is required");
    fusenet_error err;
    if (fn_write_random_weights(arch, o->top, (uint64_t)o->seed, o->output, &err)) return fail(&err);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) return usage();
    const char *cmd = argv[1];
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("fusenet %s\n", fusenet_version());
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage();
        return 0;
    }
    opts o;
    if (parse(argc, argv, &o)) return 1;
    if (strcmp(cmd, "layers") == 0) return cmd_layers(&o);
    if (strcmp(cmd, "tap") == 0) return cmd_tap(&o);
    if (strcmp(cmd, "fuse") == 0) return cmd_fuse(&o);
    if (strcmp(cmd, "make-weights") == 0) return cmd_make_weights(&o);
    if (strcmp(cmd, "bench") == 0) return cmd_bench(&o);
    return die("unknown command '%s' (layers, tap, fuse, bench, make-weights, version)", cmd);
}
