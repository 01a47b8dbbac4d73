/* cmd_model.c - the commands on the networks themselves: layers, tap, fuse, bench. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cli.h"

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

int cmd_layers(opts *o) {
    fusenet_model_params p = fusenet_model_default_params();
    p.arch = o->arch;
    p.include_top = o->top;
    int h = o->input_size.h, w = o->input_size.w;
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

/* ---- sizes: the output the tool would hold, checked before any work ---- */

/* The output shape of layer `name` for an h x w input (no weights read); 0 if unknown. */
static int layer_shape(fusenet_arch arch, int top, const char *name, int h, int w, fusenet_layer_info *info) {
    fusenet_model_params p = fusenet_model_default_params();
    p.arch = arch;
    p.include_top = top;
    fusenet_model *m;
    size_t index;
    if (fusenet_model_create(&p, &m, NULL)) return 0;
    int ok = fusenet_model_find_layer(m, name, &index, NULL) == FUSENET_OK &&
             fusenet_model_layer_info(m, index, h, w, info, NULL) == FUSENET_OK;
    fusenet_model_free(m);
    return ok;
}

/* "--input IN.npy" or "--images at --input-size HxW": the option the input size came from. */
static const char *input_option(const opts *o, int h, int w, char *buf, size_t size) {
    if (o->n_images) snprintf(buf, size, "--images at --input-size %dx%d", h, w);
    else snprintf(buf, size, "--input %.200s (%dx%d)", o->input, h, w);
    return buf;
}

/* Refuses n outputs for h x w inputs that the tool could not hold; top: a tap of the top. */
typedef int (*size_check)(const opts *o, int top, int n, int h, int w);

static int check_tap_size(const opts *o, int top, int n, int h, int w) {
    fusenet_layer_info t;
    char in[300];
    if (!layer_shape(o->arch, top, o->layer, h, w, &t)) return 0; /* the build names what is wrong */
    double per = t.h ? (double)t.h * t.w * t.c : t.c;
    return check_bytes(per * n * sizeof(float), (double)MAX_OUTPUT_BYTES, "--layer %s: the output of %d images (%dx%dx%d) of %s",
                       o->layer, n, t.h, t.w, t.c, input_option(o, h, w, in, sizeof in));
}

static int check_fused_size(const opts *o, int top, int n, int h, int w) {
    (void)top;
    int max = o->size.policy == FUSENET_SIZE_MAX, oh = 0, ow = 0, c = 0;
    char in[300];
    for (int i = 0; i < o->n_taps; i++) {
        fusenet_layer_info t;
        if (!layer_shape(o->taps[i].arch, 0, o->taps[i].layer, h, w, &t)) return 0; /* the build names what is wrong */
        if (i == 0 || (max ? t.h > oh : t.h < oh)) oh = t.h;
        if (i == 0 || (max ? t.w > ow : t.w < ow)) ow = t.w;
        c += t.c;
    }
    if (o->size.policy == FUSENET_SIZE_EXPLICIT) {
        oh = o->size.h;
        ow = o->size.w;
    }
    double bytes = (double)n * oh * ow * c * sizeof(float);
    if (o->size.policy == FUSENET_SIZE_EXPLICIT)
        return check_bytes(bytes, (double)MAX_OUTPUT_BYTES, "--size %dx%d: the fused output of %d images (%dx%dx%d)",
                           oh, ow, n, oh, ow, c);
    return check_bytes(bytes, (double)MAX_OUTPUT_BYTES, "the fused output of %d images (%dx%dx%d) of %s", n, oh, ow,
                       c, input_option(o, h, w, in, sizeof in));
}

/* ---- inputs ---- */

/* Refuses an --output that is one of the inputs (--input, --images, weights). */
static int output_not_an_input(const opts *o, const char *opt1, const char *w1, const char *opt2, const char *w2) {
    if (check_not_input("--output", o->output, "--input", o->input) ||
        check_not_input("--output", o->output, opt1, w1) || check_not_input("--output", o->output, opt2, w2))
        return 1;
    for (int i = 0; i < o->n_images; i++)
        if (check_not_input("--output", o->output, "--images", o->images[i])) return 1;
    return 0;
}

/* The input batch (--input or --images); `check` refuses an output too large
 * to hold before any image is decoded. */
static int load_input(const opts *o, fn_npy *x, size_check check, int top) {
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
        if (check(o, top, (int)x->dims[0], (int)x->dims[1], (int)x->dims[2])) {
            fusenet__npy_free(x);
            return 1;
        }
        return 0;
    }
    if (!o->n_images) return die("an input is required: --input IN.npy or --images IMG...");
    fusenet_image_params ip = image_params(o);
    int h = ip.height, w = ip.width;
    size_t per = (size_t)h * (size_t)w * 3;
    if (check_bytes((double)per * o->n_images * sizeof(float), (double)MAX_INPUT_BYTES,
                    "--images: %d images at --input-size %dx%d", o->n_images, h, w) ||
        check(o, top, o->n_images, h, w))
        return 1;
    const int64_t dims[4] = {o->n_images, h, w, 3};
    if (fusenet__npy_alloc(4, dims, x, &err)) return die("out of memory for %d images", o->n_images);
    for (int i = 0; i < o->n_images; i++)
        if (fusenet_image_load(o->images[i], &ip, x->data + per * (size_t)i, &err)) {
            fusenet__npy_free(x);
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
 * chunk into out (allocated here). which < 0: fused map; else tap index.
 * models: what build builds from (the tap's model); build returns 0, or 1 after the error line. */
typedef int (*build_fn)(const opts *o, const void *models, int batch, int h, int w, fusenet_net **net);

static int run_chunks(const opts *o, build_fn build, const void *models, const fn_npy *x, int which, float **out,
                      fusenet_tensor *shape) {
    int n = (int)x->dims[0], h = (int)x->dims[1], w = (int)x->dims[2];
    int b = o->batch < n ? o->batch : n;
    fusenet_error err;
    fusenet_net *net = NULL, *tail = NULL;
    *out = NULL;
    if (build(o, models, b, h, w, &net)) return 1;
    int rc = 0;
    size_t per_out = 0;
    for (int start = 0; start < n && rc == 0; start += b) {
        int cnt = n - start < b ? n - start : b;
        fusenet_net *use = net;
        if (cnt != b) {
            if (build(o, models, cnt, h, w, &tail)) { rc = 1; break; }
            use = tail;
        }
        fusenet_tensor in = {x->data + (size_t)start * h * w * 3, cnt, h, w, 3}, res;
        if (fusenet_net_run(use, &in, &err)) { rc = fail(&err); break; }
        fusenet_status st = which < 0 ? fusenet_net_output(use, &res, &err)
                                      : fusenet_net_tap_output(use, (size_t)which, &res, &err);
        if (st) { rc = fail(&err); break; }
        for (int j = 0; j < cnt && !rc; j++) { /* NaN or Inf never passes as a result */
            size_t per = (size_t)res.h * res.w * res.c, at;
            const float *img = res.data + per * (size_t)j;
            char what[300];
            if (o->n_images) snprintf(what, sizeof what, "image %d (%.200s)", start + j, o->images[start + j]);
            else snprintf(what, sizeof what, "image %d of %.200s", start + j, o->input);
            if (find_non_finite(img, per, &at))
                rc = die("%s: the %s%s has a non-finite value (%s at flat index %zu)", what,
                         which < 0 ? "fused map" : "output of layer ", which < 0 ? "" : o->layer,
                         value_name(img[at]), at);
        }
        if (rc) break;
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

static int build_tap(const opts *o, const void *model, int batch, int h, int w, fusenet_net **net) {
    fusenet_tap tap = {model, o->layer};
    fusenet_net_params p = fusenet_net_default_params();
    p.taps = &tap;
    p.n_taps = 1;
    p.batch = batch;
    p.in_h = h;
    p.in_w = w;
    p.fuse = 0;
    p.threads = o->threads;
    p.mode = o->mode;
    p.calibration = o->cal;
    p.int8_layers = o->int8_layers;
    fusenet_error err;
    return fusenet_net_build(&p, net, &err) ? fail(&err) : 0;
}

int cmd_tap(opts *o) {
    fusenet_model_params p = fusenet_model_default_params();
    p.arch = o->arch;
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
    if (output_not_an_input(o, "--weights", o->weights, NULL, NULL)) return 1;
    fn_npy x;
    if (load_input(o, &x, check_tap_size, top)) return 1;
    const char *needed[1] = {o->layer};
    p.needed_layers = needed;
    p.n_needed = 1;
    p.submodel = o->weights_sub;
    fusenet_model *model;
    if (fusenet_model_load(o->weights, &p, &model, &err)) {
        fusenet__npy_free(&x);
        return fail(&err);
    }
    float *out;
    fusenet_tensor shape = {0};
    int rc = run_chunks(o, build_tap, model, &x, 0, &out, &shape);
    if (!rc) rc = write_output(o, &shape, out, flat);
    if (!rc && o->stats) print_stats(o->layer, &shape, out, shape.n);
    free(out);
    fusenet__npy_free(&x);
    fusenet_model_free(model);
    return rc;
}

static int build_fused(const opts *o, const void *models, int batch, int h, int w, fusenet_net **net) {
    (void)models;
    return build_fuse(o, batch, h, w, net);
}

int cmd_fuse(opts *o) {
    if (check_output("--output", o->output) || fused_taps(o)) return 1;
    for (int i = 0; i < o->n_taps; i++)
        if (check_not_input("--output", o->output, o->taps[i].option, o->taps[i].weights)) return 1;
    if (output_not_an_input(o, NULL, NULL, NULL, NULL)) return 1;
    fn_npy x;
    if (load_input(o, &x, check_fused_size, 0)) return 1;
    float *out;
    fusenet_tensor shape = {0};
    int rc = run_chunks(o, build_fused, NULL, &x, -1, &out, &shape);
    if (!rc) rc = write_output(o, &shape, out, 0);
    if (!rc && o->stats) print_stats("fused", &shape, out, shape.n);
    free(out);
    fusenet__npy_free(&x);
    return rc;
}

/* ---- bench ---- */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* A profile row: one step, or the steps of one layer repeated per micro-batch. */
typedef struct profile_row {
    fusenet_step_info s; /* time_ms and flops summed over its steps */
    int steps;
} profile_row;

static int cmp_row_time(const void *a, const void *b) {
    double x = ((const profile_row *)a)->s.time_ms, y = ((const profile_row *)b)->s.time_ms;
    return (x < y) - (x > y);
}

/* The steps of net, described (fusenet_net_step_info); free the array. */
static fusenet_step_info *step_infos(const fusenet_net *net, size_t *n) {
    *n = fusenet_net_step_count(net);
    fusenet_step_info *steps = malloc((*n ? *n : 1) * sizeof *steps);
    fusenet_error err;
    if (!steps) {
        die("out of memory");
        return NULL;
    }
    for (size_t i = 0; i < *n; i++)
        if (fusenet_net_step_info(net, i, &steps[i], &err)) {
            fail(&err);
            free(steps);
            return NULL;
        }
    return steps;
}

/* This process's peak RSS in MB: VmHWM of /proc/self/status, the high-water
 * mark of its own memory since exec. getrusage's ru_maxrss also keeps the mark
 * of the memory exec replaced, a vfork parent's: a bench started by a large
 * Python process would report that process's RSS. ru_maxrss without /proc. */
static double peak_rss_mb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    long kb = -1;
    if (f) {
        char line[256];
        while (kb < 0 && fgets(line, sizeof line, f))
            if (sscanf(line, "VmHWM: %ld kB", &kb) != 1) kb = -1;
        fclose(f);
    }
    if (kb >= 0) return (double)kb / 1024.0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

/* The slowest steps (all with FUSENET_PROFILE_ALL), slowest first: what each is
 * (kind, the Keras layer whose value it produces, how many steps: a layer run
 * per micro-batch is one row), its time per run and share, its rate and that
 * rate's share of the CPU's FMA peak, and oneDNN's implementation; then the
 * whole net's rate over the profiled runs. */
static int print_profile(const fusenet_step_info *steps, size_t n, int iters, const fusenet_fma_peak *peak,
                         const fusenet_fma_peak *int8_peak) {
    profile_row *rows = malloc((n ? n : 1) * sizeof *rows);
    if (!rows) return die("out of memory");
    double total = 0, flops = 0, int8_ms = 0, int8_flops = 0;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        total += steps[i].time_ms;
        flops += steps[i].flops;
        if (strstr(steps[i].impl, "int8")) {
            int8_ms += steps[i].time_ms;
            int8_flops += steps[i].flops;
        }
        size_t r = 0;
        while (r < m && !(rows[r].s.model == steps[i].model && rows[r].s.layer_index == steps[i].layer_index &&
                          rows[r].s.kind == steps[i].kind && rows[r].s.tap == steps[i].tap &&
                          strcmp(rows[r].s.layer, steps[i].layer) == 0 && strcmp(rows[r].s.impl, steps[i].impl) == 0))
            r++;
        if (r == m) {
            rows[m].s = steps[i];
            rows[m++].steps = 1;
        } else {
            rows[r].s.time_ms += steps[i].time_ms;
            rows[r].s.flops += steps[i].flops;
            rows[r].steps++;
        }
    }
    qsort(rows, m, sizeof *rows, cmp_row_time);
    size_t shown = getenv("FUSENET_PROFILE_ALL") ? m : 10;
    printf("%-22s %-8s %5s %10s %7s %9s %6s  %s\n", "layer", "step", "steps", "ms/batch", "share", "GFLOP/s", "%peak",
           "oneDNN implementation");
    for (size_t i = 0; i < m && i < shown; i++) {
        const fusenet_step_info *st = &rows[i].s;
        double ms = st->time_ms / iters, rate = st->flops > 0 && ms > 0 ? st->flops / ms / 1e6 : 0.0;
        const fusenet_fma_peak *own = strstr(st->impl, "int8") ? int8_peak : peak; /* int8 steps: the int8 peak */
        printf("%-22s %-8s %5d %10.3f %6.1f%% %9.1f %5.1f%%  %s\n", st->layer, st->kind_name, rows[i].steps, ms,
               total > 0 ? 100.0 * st->time_ms / total : 0.0, rate, 100.0 * rate / own->gflops, st->impl);
    }
    free(rows);
    double rate = total > 0 ? flops * iters / total / 1e6 : 0.0;
    printf("whole net: %.3f ms/batch, %.1f GFLOP/s, %.1f%% of the FMA peak (%s, %d threads: %.1f GFLOP/s, the best "
           "of its measurements before and after the runs)\n",
           total / iters, rate, 100.0 * rate / peak->gflops, peak->isa, (int)peak->threads, peak->gflops);
    if (int8_ms > 0) {
        double r8 = int8_flops * iters / int8_ms / 1e6;
        printf("int8 steps: %.3f ms/batch, %.1f GOP/s, %.1f%% of the int8 peak (%s, %d threads: %.1f GOP/s, %.2fx "
               "the FMA peak; a multiply-add counts 2 operations, as in float32; their rows' %%peak is of it)\n",
               int8_ms / iters, r8, 100.0 * r8 / int8_peak->gflops, int8_peak->isa, (int)int8_peak->threads,
               int8_peak->gflops, int8_peak->gflops / peak->gflops);
    }
    /* a line for each kind of step whose %peak needs reading with care, when the net has one */
    static const struct {
        const char *impl, *note;
    } notes[] = {
        {"wino", "Winograd steps: their FLOPs are the direct convolution's, which Winograd computes with fewer "
                 "multiplications (F(2x2,3x3): 2.25x fewer, F(4x4,3x3): 4x), so their %peak may pass 100%"},
    };
    for (size_t k = 0; k < sizeof notes / sizeof notes[0]; k++)
        for (size_t i = 0; i < n; i++)
            if (strstr(steps[i].impl, notes[k].impl)) {
                printf("%s\n", notes[k].note);
                break;
            }
    return 0;
}

/* The float32 FMA peak in peak[0] and, with kinds 2, the int8 one in peak[1]. 1 after a message on failure. */
static int measure_peaks(int32_t threads, int kinds, fusenet_fma_peak *peak) {
    fusenet_error err;
    if (fusenet_measure_fma_peak(threads, &peak[0], &err)) return fail(&err);
    if (kinds > 1 && fusenet_measure_int8_peak(threads, &peak[1], &err)) return fail(&err);
    return 0;
}

int cmd_bench(opts *o) {
    if (fused_taps(o)) return 1;
    int h = o->input_size.h, w = o->input_size.w, batch = o->batch;
    fusenet_error err;
    fusenet_net *net;
    double t0 = seconds_now(); /* the build: reading the weights and compiling */
    if (build_fuse(o, batch, h, w, &net)) return 1;
    double build_s = seconds_now() - t0;
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
        double a = seconds_now();
        if (fusenet_net_run(net, &in, &err)) rc = fail(&err);
        times[i] = (seconds_now() - a) * 1e3;
    }
    /* The peak is measured on both sides of the profiled runs and the higher
     * one kept: on a shared machine a busy moment lowers one measurement, and
     * a lowered peak would flatter every share of it. */
    fusenet_fma_peak peak[2] = {{0}}, after[2] = {{0}}; /* float32, int8 (int8 mode only) */
    int kinds = o->mode == FUSENET_MODE_INT8 ? 2 : 1;
    if (!rc && o->profile) {
        rc = measure_peaks(o->threads, kinds, peak);
        if (!rc && fusenet_net_set_profiling(net, 1, &err)) rc = fail(&err);
        for (int i = 0; i < o->iters && !rc; i++)
            if (fusenet_net_run(net, &in, &err)) rc = fail(&err);
        if (!rc && measure_peaks(o->threads, kinds, after)) rc = 1;
        for (int k = 0; k < kinds && !rc; k++)
            if (after[k].gflops > peak[k].gflops) peak[k] = after[k];
        if (kinds == 1) peak[1] = peak[0]; /* no int8 steps to use it */
    }
    size_t n_steps = 0;
    fusenet_step_info *steps = rc ? NULL : step_infos(net, &n_steps);
    if (!rc && !steps) rc = 1;
    if (!rc && o->profile) rc = print_profile(steps, n_steps, o->iters, &peak[0], &peak[1]);
    if (!rc) {
        double gflop = 0;
        for (size_t i = 0; i < n_steps; i++) gflop += steps[i].flops / 1e9;
        qsort(times, (size_t)o->iters, sizeof *times, cmp_double);
        double median = times[o->iters / 2], best = times[0];
        printf("{\"images_per_s\": %.3f, \"ms_per_batch_median\": %.3f, \"ms_per_batch_min\": %.3f, "
               "\"gflops\": %.2f, \"peak_rss_mb\": %.1f, \"build_s\": %.3f}\n",
               batch * 1e3 / median, median, best, gflop / (median / 1e3), peak_rss_mb(), build_s);
    }
    free(x);
    free(times);
    free(steps);
    fusenet_net_free(net);
    return rc;
}
