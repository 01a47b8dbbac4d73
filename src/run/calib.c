/* calib.c - calibrations for int8 mode: collecting activation statistics on
 * an fp32 net (the runtime calls fusenet__calib_observe after every compute
 * step), thresholds per method, and the text file (README.md, "Calibration
 * files"): save, load, parse. The parser trusts nothing in the file. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "error.h"
#include "model.h"
#include "net.h"
#include "quant.h"

#define FN_CALIB_MAX_FILE ((size_t)4 << 20)
#define FN_CALIB_MAGIC "fusenet-calibration 1"

static const char *const method_names[FN_CALIB_METHODS] = {"minmax", "percentile", "mse"};

/* ---- collecting ---- */

static fn_calib_layer *find_layer(fusenet_calibration *cal, int model, const char *name) {
    for (int i = 0; i < cal->n_layers; i++)
        if (cal->layers[i].model == model && strcmp(cal->layers[i].name, name) == 0) return &cal->layers[i];
    return NULL;
}

static fn_calib_layer *new_layer(fusenet_calibration *cal, int model, const char *name) {
    if (cal->n_layers >= FN_CALIB_MAX_LAYERS) return NULL;
    fn_calib_layer *grown = fusenet__grow(cal->layers, (size_t)cal->n_layers, &cal->cap_layers, sizeof *grown, 64);
    if (!grown) return NULL;
    cal->layers = grown;
    fn_calib_layer *l = &cal->layers[cal->n_layers];
    memset(l, 0, sizeof *l);
    l->model = model;
    snprintf(l->name, sizeof l->name, "%s", name);
    l->min = INFINITY;
    l->max = -INFINITY;
    cal->n_layers++;
    return l;
}

/* The histogram covers [0, range) with range a power of two; a larger |x|
 * doubles the range as often as needed, merging bins pairwise. */
static void widen(fn_calib_layer *l, double amax) {
    if (l->range == 0.0) {
        l->range = ldexp(1.0, ilogb(amax) + 1);
        return;
    }
    int f = 1;
    while (l->range * f <= amax) f *= 2;
    if (f == 1) return;
    for (int i = 0; i < FN_CALIB_BINS; i++) {
        uint64_t s = l->hist[i];
        l->hist[i] = 0;
        l->hist[i / f] += s;
    }
    l->range *= f;
}

fusenet_status fusenet__calib_observe(fusenet_calibration *cal, int model, const char *layer, const float *data,
                                      size_t n, fusenet_error *err) {
    n = n / (size_t)cal->net->batch * (size_t)cal->valid; /* N is the outermost dimension of every layout */
    fn_calib_layer *l = find_layer(cal, model, layer);
    if (!l) l = new_layer(cal, model, layer);
    if (l && !l->hist) l->hist = fusenet__calloc(FN_CALIB_BINS, sizeof *l->hist);
    if (!l || !l->hist) return fusenet__error(err, FUSENET_ERR_NOMEM, "out of memory collecting statistics of layer %s", layer);
    float lo = INFINITY, hi = -INFINITY;
    for (size_t k = 0; k < n; k++) {
        lo = data[k] < lo ? data[k] : lo;
        hi = data[k] > hi ? data[k] : hi;
    }
    if (lo < l->min) l->min = lo;
    if (hi > l->max) l->max = hi;
    double amax = fmax(fabs((double)lo), fabs((double)hi));
    if (amax > 0.0) widen(l, amax);
    if (l->range == 0.0) return FUSENET_OK;
    double inv = FN_CALIB_BINS / l->range;
    for (size_t k = 0; k < n; k++) {
        if (data[k] == 0.0f) continue; /* exact zeros (ReLU) quantize exactly */
        int b = (int)(fabsf(data[k]) * inv);
        l->hist[b < FN_CALIB_BINS ? b : FN_CALIB_BINS - 1]++;
    }
    return FUSENET_OK;
}

/* Thresholds of every layer from its histogram (once, before the first save or build). */
static void finalize(fusenet_calibration *cal) {
    for (int i = 0; i < cal->n_layers; i++) {
        fn_calib_layer *l = &cal->layers[i];
        if (!l->hist) continue;
        double amax = fmax(fabs(l->min), fabs(l->max));
        fusenet__calib_thresholds(l->hist, FN_CALIB_BINS, l->range, amax, l->min >= 0.0, l->thr);
        l->sensitivity = fusenet__calib_sensitivity(l->hist, FN_CALIB_BINS, l->range, l->thr[cal->method - 1],
                                                    l->min >= 0.0);
        l->keep_fp32 = l->sensitivity > FN_CALIB_AUTO_BOUND;
    }
    cal->final = 1;
}

static fusenet_calibration *new_calibration(void) {
    fusenet_calibration *cal = fusenet__calloc(1, sizeof *cal);
    if (cal) cal->method = FUSENET_CALIB_MSE;
    return cal;
}

/* A calibration around the float32 net a create call built (status st). */
static fusenet_status start(fusenet_status st, fusenet_net *net, fusenet_calibration **out, fusenet_error *err) {
    if (st) return st;
    fusenet_calibration *cal = new_calibration();
    if (!cal) {
        fusenet_net_free(net);
        return fusenet__error(err, FUSENET_ERR_NOMEM, "out of memory creating a calibration");
    }
    cal->net = net;
    net->calib = cal;
    if (net->batch > 1) {
        cal->spare = fusenet__malloc((size_t)net->batch * net->in_h * net->in_w * 3 * sizeof(float));
        if (!cal->spare) {
            fusenet_calibration_free(cal);
            return fusenet__error(err, FUSENET_ERR_NOMEM, "out of memory creating a calibration");
        }
    }
    cal->n_models = net->n_models;
    memcpy(cal->models, net->models, sizeof cal->models);
    *out = cal;
    return fusenet__ok(err);
}

/* The calibration net is float32 whatever the params say. */
static fusenet_net_params float32_params(const fusenet_net_params *p) {
    fusenet_net_params q = p ? *p : fusenet_net_default_params();
    q.mode = FUSENET_MODE_EXACT;
    q.calibration = NULL;
    return q;
}

fusenet_status fusenet_calibration_create(const fusenet_net_params *params, fusenet_calibration **out,
                                          fusenet_error *err) {
    if (!out) return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "fusenet_calibration_create: out is NULL");
    *out = NULL;
    fusenet_net_params p = float32_params(params);
    fusenet_net *net = NULL;
    fusenet_status st = fusenet__net_build_ident(&p, NULL, 0, &net, err);
    return start(st, net, out, err);
}

fusenet_status fusenet_calibration_create_dual(const fusenet_dual_params *params, fusenet_calibration **out,
                                               fusenet_error *err) {
    if (!out) return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "fusenet_calibration_create_dual: out is NULL");
    *out = NULL;
    fusenet_dual_params p = params ? *params : fusenet_dual_default_params();
    p.net = float32_params(&p.net);
    fusenet_net *net = NULL;
    fusenet_status st = fusenet__build_dual_ident(&p, &net, err);
    return start(st, net, out, err);
}

fusenet_status fusenet_calibration_create_files(const fusenet_file_tap *taps, size_t n_taps,
                                                const fusenet_net_params *net, fusenet_calibration **out,
                                                fusenet_error *err) {
    if (!out) return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "fusenet_calibration_create_files: out is NULL");
    *out = NULL;
    fusenet_net_params p = float32_params(net);
    fusenet_net *built = NULL;
    fusenet_status st = fusenet__build_files_ident(taps, n_taps, &p, &built, err);
    return start(st, built, out, err);
}

fusenet_status fusenet_calibration_add(fusenet_calibration *cal, const fusenet_tensor *input, fusenet_error *err) {
    if (!cal) return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "fusenet_calibration_add: cal is NULL");
    if (!cal->net)
        return fusenet__error(err, FUSENET_ERR_INVALID_ARG,
                              "fusenet_calibration_add: the calibration was loaded from a file (it has no net)");
    const fusenet_net *net = cal->net;
    fusenet_tensor x = input ? *input : (fusenet_tensor){0};
    if (input && input->data && input->n >= 1 && input->n < net->batch && input->h == net->in_h &&
        input->w == net->in_w && input->c == 3) { /* fewer images: the rest of the batch is spare */
        size_t per = (size_t)net->in_h * net->in_w * 3;
        memcpy(cal->spare, input->data, per * (size_t)input->n * sizeof(float));
        memset(cal->spare + per * (size_t)input->n, 0, per * (size_t)(net->batch - input->n) * sizeof(float));
        x.data = cal->spare;
        x.n = net->batch;
    }
    cal->valid = input ? input->n : 0;
    fusenet_status st = fusenet_net_run(cal->net, input ? &x : NULL, err);
    if (st) return st;
    cal->images += input->n;
    cal->final = 0;
    return fusenet__ok(err);
}

int64_t fusenet_calibration_images(const fusenet_calibration *cal) { return cal ? cal->images : 0; }

fusenet_status fusenet_calibration_set_method(fusenet_calibration *cal, fusenet_calib_method method,
                                              fusenet_error *err) {
    if (!cal) return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "fusenet_calibration_set_method: cal is NULL");
    if (method < FUSENET_CALIB_DEFAULT || method > FUSENET_CALIB_MSE)
        return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "fusenet_calibration_set_method: method %d unknown",
                              (int)method);
    if (method != FUSENET_CALIB_DEFAULT) cal->method = (int)method;
    return fusenet__ok(err);
}

/* Thresholds are computed once the images are in: before a save or a build. */
const fusenet_calibration *fusenet__calib_ready(const fusenet_calibration *cal) {
    if (!cal->final) finalize((fusenet_calibration *)cal);
    return cal;
}

void fusenet_calibration_free(fusenet_calibration *cal) {
    if (!cal) return;
    for (int i = 0; i < cal->n_layers; i++) fusenet__free(cal->layers[i].hist);
    fusenet__free(cal->layers);
    fusenet__free(cal->spare);
    fusenet_net_free(cal->net);
    fusenet__free(cal);
}

/* ---- the file ---- */

/* snprintf that appends at t->len; t->len counts every byte asked for, so a
 * first pass with size 0 measures the text. */
typedef struct text_out {
    char *buf;
    size_t size, len;
} text_out;

static void put(text_out *t, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    size_t room = t->len < t->size ? t->size - t->len : 0;
    int n = vsnprintf(room ? t->buf + t->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n > 0) t->len += (size_t)n;
}

fusenet_status fusenet_calibration_write(const fusenet_calibration *cal, char *buf, size_t size, size_t *len,
                                         fusenet_error *err) {
    if (!cal || !len || (size && !buf))
        return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "fusenet_calibration_write: %s is NULL",
                              !cal ? "cal" : !len ? "len" : "buf");
    if (cal->images <= 0 || cal->n_layers == 0)
        return fusenet__error(err, FUSENET_ERR_INVALID_ARG,
                              "fusenet_calibration_write: no images added yet (fusenet_calibration_add)");
    fusenet__calib_ready(cal);
    text_out t = {buf, size, 0};
    put(&t, "%s\n", FN_CALIB_MAGIC);
    put(&t, "# made by libfusenet %s; format: README.md, \"Calibration files\"\n", fusenet_version());
    put(&t, "method %s\nimages %lld\nweight_levels %d\n", method_names[cal->method - 1], (long long)cal->images,
        fusenet__int8_weight_levels());
    for (int m = 0; m < cal->n_models; m++) {
        const fn_calib_model *cm = &cal->models[m];
        put(&t, "model %d %s %016llx %d", m, cm->arch, (unsigned long long)cm->hash, cm->n_taps);
        for (int k = 0; k < cm->n_taps; k++) put(&t, " %s", cm->taps[k]);
        put(&t, "\n");
    }
    put(&t, "# layer MODEL NAME MIN MAX MINMAX PERCENTILE MSE KEEP_FP32 SENSITIVITY\n");
    for (int i = 0; i < cal->n_layers; i++) {
        const fn_calib_layer *l = &cal->layers[i];
        put(&t, "layer %d %s %.17g %.17g %.17g %.17g %.17g %d %.6g\n", l->model, l->name, l->min, l->max, l->thr[0],
            l->thr[1], l->thr[2], l->keep_fp32, l->sensitivity);
    }
    put(&t, "end\n");
    *len = t.len;
    if (size && t.len >= size)
        return fusenet__error(err, FUSENET_ERR_INVALID_ARG,
                              "fusenet_calibration_write: the text needs %zu bytes, buf holds %zu", t.len + 1, size);
    return fusenet__ok(err);
}

/* Writes the text to a temporary beside the file and renames it over the
 * file. Only regular files (or new paths) are replaced: a device, FIFO,
 * directory or symbolic link is refused, so a save never turns /dev/null or
 * a link into a calibration file. */
fusenet_status fusenet_calibration_save(const fusenet_calibration *cal, const char *path, fusenet_error *err) {
    if (!cal || !path)
        return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "fusenet_calibration_save: %s is NULL", cal ? "path" : "cal");
    size_t len = 0;
    fusenet_status st = fusenet_calibration_write(cal, NULL, 0, &len, err);
    if (st) return st;
    struct stat sb;
    if (lstat(path, &sb) == 0 && !S_ISREG(sb.st_mode))
        return fusenet__error(err, FUSENET_ERR_INVALID_ARG,
                              "%s is not a regular file: fusenet_calibration_save replaces only regular files "
                              "(write others with fusenet_calibration_write)",
                              path);
    char tmp[4200];
    if (snprintf(tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "calibration path too long: %.200s", path);
    char *text = fusenet__malloc(len + 1);
    if (!text) return fusenet__error(err, FUSENET_ERR_NOMEM, "out of memory writing %s", path);
    st = fusenet_calibration_write(cal, text, len + 1, &len, err);
    if (st) {
        fusenet__free(text);
        return st;
    }
    FILE *f = fopen(tmp, "wx");
    if (!f) {
        int e = errno;
        fusenet__free(text);
        return fusenet__error(err, FUSENET_ERR_IO, "cannot write %s: %s", tmp, strerror(e));
    }
    int bad = fwrite(text, 1, len, f) != len;
    fusenet__free(text);
    if (fclose(f) != 0) bad = 1;
    if (bad || rename(tmp, path) != 0) {
        int e = errno;
        remove(tmp);
        return fusenet__error(err, FUSENET_ERR_IO, "cannot write %s: %s", path, strerror(e));
    }
    return fusenet__ok(err);
}

/* A line's words, split on single spaces (the writer's format). */
#define MAX_WORDS (4 + FN_MAX_TAPS)
typedef struct line {
    const char *where; /* file name for messages */
    int no;
    char *w[MAX_WORDS];
    int n;
} line;

static fusenet_status bad(fusenet_error *err, const line *l, const char *what) {
    return fusenet__error(err, FUSENET_ERR_FORMAT, "calibration %s line %d: %s", l->where, l->no, what);
}

static int is_name(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n >= FN_NAME_MAX) return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] <= ' ' || s[i] > '~') return 0;
    return 1;
}

static int parse_double(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno || !isfinite(v)) return 0;
    *out = v;
    return 1;
}

static int parse_int(const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno || v < lo || v > hi || s[0] == '+' || s[0] == ' ') return 0;
    *out = v;
    return 1;
}

static fusenet_status parse_model(fusenet_calibration *cal, const line *l, fusenet_error *err) {
    long idx, n_taps;
    if (l->n < 5) return bad(err, l, "model needs INDEX ARCH HASH N_TAPS TAPS...");
    if (!parse_int(l->w[1], 0, FN_CALIB_MAX_MODELS - 1, &idx) || idx != cal->n_models)
        return bad(err, l, "model index out of order");
    if (!is_name(l->w[2]) || strlen(l->w[2]) >= sizeof cal->models[0].arch) return bad(err, l, "bad architecture name");
    char *end;
    errno = 0;
    unsigned long long h = strtoull(l->w[3], &end, 16);
    if (strlen(l->w[3]) != 16 || *end || errno) return bad(err, l, "weights hash is not 16 hex digits");
    if (!parse_int(l->w[4], 1, FN_MAX_TAPS, &n_taps) || l->n != 5 + n_taps)
        return bad(err, l, "tap count does not match the taps listed");
    fn_calib_model *m = &cal->models[cal->n_models];
    snprintf(m->arch, sizeof m->arch, "%s", l->w[2]);
    m->hash = h;
    m->n_taps = (int)n_taps;
    for (int t = 0; t < n_taps; t++) {
        if (!is_name(l->w[5 + t])) return bad(err, l, "bad tap name");
        snprintf(m->taps[t], sizeof m->taps[t], "%s", l->w[5 + t]);
    }
    cal->n_models++;
    return FUSENET_OK;
}

static fusenet_status parse_layer(fusenet_calibration *cal, const line *l, fusenet_error *err) {
    long model, keep;
    double v[6];
    if (l->n != 10) return bad(err, l, "layer needs MODEL NAME MIN MAX MINMAX PERCENTILE MSE KEEP_FP32 SENSITIVITY");
    if (!parse_int(l->w[1], 0, cal->n_models - 1, &model)) return bad(err, l, "layer of an undeclared model");
    if (!is_name(l->w[2])) return bad(err, l, "bad layer name");
    for (int k = 0; k < 5; k++)
        if (!parse_double(l->w[3 + k], &v[k])) return bad(err, l, "a statistic is not a finite number");
    if (!parse_int(l->w[8], 0, 1, &keep)) return bad(err, l, "KEEP_FP32 is not 0 or 1");
    if (!parse_double(l->w[9], &v[5]) || v[5] < 0) return bad(err, l, "SENSITIVITY is not a finite number >= 0");
    if (v[0] > v[1]) return bad(err, l, "MIN is larger than MAX");
    double amax = fmax(fabs(v[0]), fabs(v[1]));
    for (int k = 2; k < 5; k++)
        if (v[k] < 0 || v[k] > amax * (1 + 1e-6)) return bad(err, l, "a threshold is negative or over max |value|");
    if (fusenet__calib_find(cal, (int)model, l->w[2])) return bad(err, l, "layer listed twice");
    fn_calib_layer *c = new_layer(cal, (int)model, l->w[2]);
    if (!c) {
        if (cal->n_layers >= FN_CALIB_MAX_LAYERS) return bad(err, l, "too many layers");
        return fusenet__error(err, FUSENET_ERR_NOMEM, "out of memory reading calibration %s", l->where);
    }
    c->min = v[0];
    c->max = v[1];
    for (int k = 0; k < 3; k++) c->thr[k] = v[2 + k];
    c->keep_fp32 = (int)keep;
    c->sensitivity = v[5];
    return FUSENET_OK;
}

static fusenet_status parse_text(const char *where, char *text, size_t len, fusenet_calibration *cal,
                                 fusenet_error *err) {
    line l = {where, 0, {0}, 0};
    int have_method = 0, have_images = 0, ended = 0;
    size_t pos = 0;
    while (pos < len) {
        l.no++;
        char *s = text + pos, *nl = memchr(s, '\n', len - pos);
        if (!nl) return bad(err, &l, "no newline at the end (truncated file?)");
        *nl = '\0';
        pos = (size_t)(nl - text) + 1;
        if (memchr(s, '\0', (size_t)(nl - s))) return bad(err, &l, "NUL byte");
        if (ended) return bad(err, &l, "text after 'end'");
        if (l.no == 1) {
            if (strcmp(s, FN_CALIB_MAGIC) != 0)
                return bad(err, &l, "not a calibration file (first line must be '" FN_CALIB_MAGIC "')");
            continue;
        }
        if (s[0] == '#') continue;
        l.n = 0;
        for (char *p = s; *p;) {
            if (l.n == MAX_WORDS) return bad(err, &l, "too many words");
            if (*p == ' ') return bad(err, &l, "words must be separated by one space");
            l.w[l.n++] = p;
            char *sp = strchr(p, ' ');
            if (!sp) break;
            *sp = '\0';
            p = sp + 1;
            if (!*p) return bad(err, &l, "trailing space");
        }
        if (l.n == 0) return bad(err, &l, "empty line");
        fusenet_status st = FUSENET_OK;
        const char *key = l.w[0];
        if (strcmp(key, "method") == 0) {
            int m = -1;
            for (int k = 0; k < FN_CALIB_METHODS && l.n == 2; k++)
                if (strcmp(l.w[1], method_names[k]) == 0) m = k;
            if (m < 0 || have_method) return bad(err, &l, "method must be given once: minmax, percentile or mse");
            cal->method = m + 1;
            have_method = 1;
        } else if (strcmp(key, "images") == 0) {
            long n;
            if (l.n != 2 || have_images || !parse_int(l.w[1], 1, 1L << 40, &n))
                return bad(err, &l, "images must be given once, a count >= 1");
            cal->images = n;
            have_images = 1;
        } else if (strcmp(key, "weight_levels") == 0) {
            long n;
            if (l.n != 2 || !parse_int(l.w[1], 1, 127, &n)) return bad(err, &l, "weight_levels must be 1..127");
        } else if (strcmp(key, "model") == 0) {
            if (cal->n_layers) return bad(err, &l, "models must come before the layers");
            st = parse_model(cal, &l, err);
        } else if (strcmp(key, "layer") == 0) {
            st = parse_layer(cal, &l, err);
        } else if (strcmp(key, "end") == 0 && l.n == 1) {
            ended = 1;
        } else {
            return bad(err, &l, "unknown line (expected method, images, weight_levels, model, layer or end)");
        }
        if (st) return st;
    }
    l.no++;
    if (l.no == 1) return bad(err, &l, "empty file");
    if (!ended) return bad(err, &l, "no 'end' line (truncated file?)");
    if (!have_method || !have_images || cal->n_models == 0 || cal->n_layers == 0)
        return bad(err, &l, "method, images, a model and a layer are required");
    return FUSENET_OK;
}

static fusenet_status parse_named(const char *where, const char *text, size_t len, fusenet_calibration **out,
                                  fusenet_error *err) {
    if (!out) return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "fusenet_calibration_parse: out is NULL");
    *out = NULL;
    if (!text && len) return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "fusenet_calibration_parse: text is NULL");
    if (len > FN_CALIB_MAX_FILE)
        return fusenet__error(err, FUSENET_ERR_FORMAT, "calibration %s: %zu bytes, more than a calibration has (%zu)",
                              where, len, FN_CALIB_MAX_FILE);
    char *copy = fusenet__malloc(len + 1);
    fusenet_calibration *cal = new_calibration();
    if (!copy || !cal) {
        fusenet__free(copy);
        fusenet__free(cal);
        return fusenet__error(err, FUSENET_ERR_NOMEM, "out of memory reading calibration %s", where);
    }
    if (len) memcpy(copy, text, len);
    copy[len] = '\0';
    fusenet_status st = parse_text(where, copy, len, cal, err);
    fusenet__free(copy);
    if (st) {
        fusenet_calibration_free(cal);
        return st;
    }
    cal->final = 1;
    *out = cal;
    return fusenet__ok(err);
}

fusenet_status fusenet_calibration_parse(const char *text, size_t len, fusenet_calibration **out, fusenet_error *err) {
    return parse_named("(memory)", text, len, out, err);
}

fusenet_status fusenet_calibration_load(const char *path, fusenet_calibration **out, fusenet_error *err) {
    if (out) *out = NULL;
    if (!path || !out)
        return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "fusenet_calibration_load: %s is NULL", path ? "out" : "path");
    FILE *f = fopen(path, "rb");
    if (!f) return fusenet__error(err, FUSENET_ERR_IO, "cannot open calibration %s: %s", path, strerror(errno));
    char *buf = fusenet__malloc(FN_CALIB_MAX_FILE + 1);
    if (!buf) {
        fclose(f);
        return fusenet__error(err, FUSENET_ERR_NOMEM, "out of memory reading calibration %s", path);
    }
    size_t len = fread(buf, 1, FN_CALIB_MAX_FILE + 1, f);
    int rerr = ferror(f);
    fclose(f);
    fusenet_status st = rerr ? fusenet__error(err, FUSENET_ERR_IO, "cannot read calibration %s", path)
                             : parse_named(path, buf, len, out, err);
    fusenet__free(buf);
    return st;
}
