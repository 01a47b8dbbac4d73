/* options.c - the option table and its parser: which command takes which
 * option, what value it takes, and that value parsed once into its field of
 * opts. An option given to a command that does not take it is an error. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

typedef enum opt_kind {
    OPT_FLAG,   /* int, set to 1 */
    OPT_STR,    /* const char *, not empty */
    OPT_INT,    /* int in lo..hi */
    OPT_HW,     /* cli_hw, both in lo..hi */
    OPT_CHOICE, /* an enum, one of choices */
    OPT_SIZE,   /* cli_size: min, max or HxW */
    OPT_UNIT,   /* double in 0..1 */
    OPT_IMAGES, /* the file names that follow, up to the next option */
    OPT_TAP,    /* MODEL:WEIGHTS:LAYER, repeatable: appended to opts.taps */
} opt_kind;

typedef struct choice {
    const char *name;
    int value;
} choice;

typedef struct option {
    const char *name, *alias;
    unsigned commands, required; /* CMD_* bits: who takes it, who needs it */
    opt_kind kind;
    size_t field; /* offsetof(opts, ...) */
    const char *value; /* what it takes, for --help */
    int lo, hi;        /* OPT_INT, OPT_HW */
    const choice *choices;
    const char *help;
} option;

static const choice models[] = {{"resnet50", FUSENET_ARCH_RESNET50}, {"vgg16", FUSENET_ARCH_VGG16},
                                {"resnet101", FUSENET_ARCH_RESNET101}, {"resnet152", FUSENET_ARCH_RESNET152},
                                {"vgg19", FUSENET_ARCH_VGG19},         {NULL, 0}};
static const choice interps[] = {{"bilinear", FUSENET_INTERP_BILINEAR}, {"nearest", FUSENET_INTERP_NEAREST}, {NULL, 0}};
static const choice load_interps[] = {{"nearest", FUSENET_INTERP_NEAREST}, {"bilinear", FUSENET_INTERP_BILINEAR},
                                      {NULL, 0}};
static const choice modes[] = {{"exact", FUSENET_MODE_EXACT}, {"fast", FUSENET_MODE_FAST},
                               {"int8", FUSENET_MODE_INT8},   {NULL, 0}};
static const choice int8_layers[] = {{"auto", FUSENET_INT8_AUTO}, {"all", FUSENET_INT8_ALL}, {"vgg", FUSENET_INT8_VGG},
                                     {NULL, 0}};
static const choice methods[] = {{"mse", FUSENET_CALIB_MSE}, {"percentile", FUSENET_CALIB_PERCENTILE},
                                 {"minmax", FUSENET_CALIB_MINMAX}, {NULL, 0}};
static const choice pools[] = {{"avg", FUSENET_POOLING_AVG}, {"max", FUSENET_POOLING_MAX}, {NULL, 0}};

_Static_assert(sizeof(fusenet_arch) == sizeof(int) && sizeof(fusenet_interp) == sizeof(int) &&
                   sizeof(fusenet_mode) == sizeof(int) && sizeof(fusenet_pooling) == sizeof(int) &&
                   sizeof(fusenet_int8_layers) == sizeof(int) && sizeof(fusenet_calib_method) == sizeof(int),
               "OPT_CHOICE stores an int");

#define F(field) offsetof(opts, field)
#define ONE_NET (CMD_TAP | CMD_VIZ)                              /* a model and its weights */
#define TWO_NETS (CMD_FUSE | CMD_BENCH | CMD_EMBED | CMD_SIMILAR) /* the dual net */
#define FUSED (CMD_FUSE | CMD_EMBED | CMD_SIMILAR)               /* a fused map of images */
#define PICTURES (CMD_EMBED | CMD_SIMILAR | CMD_VIZ)             /* images at a network input size */
#define RUNS (CMD_TAP | CMD_FUSE | CMD_BENCH | CMD_EMBED | CMD_SIMILAR | CMD_VIZ | CMD_CALIBRATE)
#define INT8 (CMD_TAP | TWO_NETS) /* --mode int8 */
#define MAX_HW (1 << 20)

/* One row per option and meaning; a name may have several rows for disjoint commands. */
static const option table[] = {
    {"--model", NULL, ONE_NET | CMD_LAYERS | CMD_WEIGHTS, ONE_NET | CMD_LAYERS | CMD_WEIGHTS, OPT_CHOICE, F(arch),
     "resnet50|vgg16|resnet101|resnet152|vgg19", 0, 0, models, "the network"},
    {"--weights", NULL, ONE_NET, 0, OPT_STR, F(weights), "FILE[#NAME]", 0, 0, NULL,
     "its Keras weights, any layout; #NAME: the sub-model NAME of FILE (default: found under the official file name)"},
    {"--top", NULL, CMD_LAYERS | CMD_TAP | CMD_WEIGHTS, 0, OPT_FLAG, F(top), NULL, 0, 0, NULL,
     "with the classifier top (Keras include_top=True)"},
    {"--layer", NULL, CMD_TAP, CMD_TAP, OPT_STR, F(layer), "NAME", 0, 0, NULL, "the Keras layer to tap"},
    {"--layer", NULL, CMD_VIZ, 0, OPT_STR, F(layer), "NAME", 0, 0, NULL,
     "the Keras layer to show (default conv4_block6_out, block5_conv3)"},
    {"--tap", NULL, TWO_NETS | CMD_CALIBRATE, 0, OPT_TAP, F(taps), "MODEL:WEIGHTS:LAYER", 0, 0, models,
     "a tap of the fused net (repeatable, up to 16, in order; WEIGHTS is FILE[#NAME]; one MODEL:WEIGHTS is "
     "loaded once); instead of the four options below"},
    {"--resnet-weights", NULL, TWO_NETS | CMD_CALIBRATE, 0, OPT_STR, F(resnet_weights), "FILE[#NAME]", 0, 0, NULL,
     "ResNet50 weights (default: found under the official file name)"},
    {"--vgg-weights", NULL, TWO_NETS | CMD_CALIBRATE, 0, OPT_STR, F(vgg_weights), "FILE[#NAME]", 0, 0, NULL,
     "VGG16 weights (default: found under the official file name)"},
    {"--resnet-layer", NULL, TWO_NETS | CMD_CALIBRATE, 0, OPT_STR, F(resnet_layer), "NAME", 0, 0, NULL,
     "the ResNet50 tap (default conv4_block6_out)"},
    {"--vgg-layer", NULL, TWO_NETS | CMD_CALIBRATE, 0, OPT_STR, F(vgg_layer), "NAME", 0, 0, NULL,
     "the VGG16 tap (default block5_conv3)"},
    {"--resize", NULL, FUSED, 0, OPT_CHOICE, F(resize), "bilinear|nearest", 0, 0, interps,
     "how the taps are resized to the fused size (default bilinear)"},
    {"--size", NULL, FUSED, 0, OPT_SIZE, F(size), "min|max|HxW", 0, 0, NULL,
     "the fused size: the smaller taps' (default), the larger ones', or HxW"},
    {"--size", NULL, CMD_BENCH, 0, OPT_HW, F(input_size), "HxW", 1, MAX_HW, NULL,
     "the network input size (default 224x224)"},
    {"--mode", NULL, INT8, 0, OPT_CHOICE, F(mode), "exact|fast|int8", 0, 0, modes,
     "fast: Winograd 3x3 convolutions where the CPU offers them; int8: quantized, needs --calibration "
     "(default exact)"},
    {"--calibration", NULL, INT8, 0, OPT_STR, F(calibration), "CAL", 0, 0, NULL,
     "with --mode int8: the statistics 'fusenet calibrate' wrote for these weights and taps"},
    {"--int8-layers", NULL, INT8, 0, OPT_CHOICE, F(int8_layers), "auto|all|vgg", 0, 0, int8_layers,
     "with --mode int8: which convolutions run int8 (default auto: all but those the calibration measured "
     "too lossy; vgg: the VGG16 branch only)"},
    {"--method", NULL, CMD_CALIBRATE, 0, OPT_CHOICE, F(method), "mse|percentile|minmax", 0, 0, methods,
     "how a layer's range is chosen from its statistics (default mse; all three are stored)"},
    {"--output", NULL, CMD_CALIBRATE, CMD_CALIBRATE, OPT_STR, F(output), "CAL", 0, 0, NULL,
     "where the calibration goes (text, README 'Calibration files')"},
    {"--input", NULL, CMD_TAP | CMD_FUSE | CMD_CALIBRATE, 0, OPT_STR, F(input), "IN.npy", 0, 0, NULL,
     "a preprocessed (N,H,W,3) float32 batch"},
    {"--images", NULL, CMD_TAP | CMD_FUSE, 0, OPT_IMAGES, F(images), "IMG...", 0, 0, NULL,
     "image files (JPEG, PNG), loaded and preprocessed as Keras does, instead of --input"},
    {"--images", NULL, CMD_CALIBRATE, 0, OPT_IMAGES, F(images), "IMG_OR_DIR...", 0, 0, NULL,
     "calibration images (JPEG, PNG; directories walked as embed does), instead of --input"},
    {"--input-size", NULL, CMD_LAYERS, 0, OPT_HW, F(input_size), "HxW", 1, MAX_HW, NULL,
     "the input size the shapes are given for (default 224x224)"},
    {"--input-size", NULL, CMD_TAP | CMD_FUSE | CMD_CALIBRATE, 0, OPT_HW, F(input_size), "HxW", 32, 8192, NULL,
     "the size --images are loaded at (default 224x224)"},
    {"--input-size", NULL, PICTURES, 0, OPT_HW, F(input_size), "HxW", 32, 8192, NULL,
     "the network input size images are loaded at (default 224x224)"},
    {"--load-interp", NULL, CMD_TAP | CMD_FUSE | CMD_CALIBRATE | PICTURES, 0, OPT_CHOICE, F(load_interp), "nearest|bilinear", 0, 0,
     load_interps, "how images are resized on loading (default nearest, as Keras' load_img)"},
    {"--output", NULL, CMD_TAP | CMD_FUSE, CMD_TAP | CMD_FUSE, OPT_STR, F(output), "OUT.npy", 0, 0, NULL,
     "where the (N,h,w,c) map goes ((N,c) for a flat layer)"},
    {"--output", NULL, CMD_EMBED, 0, OPT_STR, F(output), "EMB.npy", 0, 0, NULL,
     "where the (N,C) embeddings go (required without --shard)"},
    {"--shard", NULL, CMD_EMBED, 0, OPT_STR, F(shard), "K/N", 0, 0, NULL,
     "embed only shard K of N (0 <= K < N), a contiguous range of the sorted files, into --output-dir"},
    {"--output-dir", NULL, CMD_EMBED, 0, OPT_STR, F(output_dir), "DIR", 0, 0, NULL,
     "with --shard: where emb_KKKKK.npy, names_KKKKK.txt and last done_KKKKK.json go"},
    {"--output", NULL, CMD_MERGE, CMD_MERGE, OPT_STR, F(output), "EMB.npy", 0, 0, NULL,
     "where the rows of all shards go, in the order of one unsharded embed"},
    {"--names", NULL, CMD_MERGE, CMD_MERGE, OPT_STR, F(names), "NAMES.txt", 0, 0, NULL,
     "where their names go, one a line"},
    {"--output", NULL, CMD_VIZ, CMD_VIZ, OPT_STR, F(output), "OUT.png", 0, 0, NULL, "where the heatmap goes"},
    {"--output", NULL, CMD_WEIGHTS, CMD_WEIGHTS, OPT_STR, F(output), "FILE.h5", 0, 0, NULL,
     "where the weights go"},
    {"--names", NULL, CMD_EMBED, 0, OPT_STR, F(names), "NAMES.txt", 0, 0, NULL,
     "where the source file of each row goes, one a line"},
    {"--names", NULL, CMD_SIMILAR, CMD_SIMILAR, OPT_STR, F(names), "NAMES.txt", 0, 0, NULL,
     "the names file of the embeddings (from 'fusenet embed --names')"},
    {"--embeddings", NULL, CMD_SIMILAR, CMD_SIMILAR, OPT_STR, F(embeddings), "EMB.npy", 0, 0, NULL,
     "the embeddings to search (from 'fusenet embed')"},
    {"--query", NULL, CMD_SIMILAR, CMD_SIMILAR, OPT_STR, F(query), "IMAGE", 0, 0, NULL, "the image to look for"},
    {"-k", "--k", CMD_SIMILAR, 0, OPT_INT, F(k), "N", 1, 1000000, NULL, "how many rows to print (default 5)"},
    {"--pool", NULL, CMD_EMBED | CMD_SIMILAR, 0, OPT_CHOICE, F(pool), "avg|max", 0, 0, pools,
     "how the fused map is pooled over H, W (default avg)"},
    {"--strict", NULL, CMD_EMBED, 0, OPT_FLAG, F(strict), NULL, 0, 0, NULL,
     "an unreadable image fails the run (default: reported and skipped)"},
    {"--image", NULL, CMD_VIZ, CMD_VIZ, OPT_STR, F(image), "IMAGE", 0, 0, NULL, "the picture"},
    {"--output-size", NULL, CMD_VIZ, 0, OPT_HW, F(output_size), "HxW", 1, 16384, NULL,
     "the heatmap's size (default the picture's, at most 4096 on a side)"},
    {"--alpha", NULL, CMD_VIZ, 0, OPT_UNIT, F(alpha), "A", 0, 0, NULL, "the heatmap's opacity, 0..1 (default 0.5)"},
    {"--threads", NULL, RUNS, 0, OPT_INT, F(threads), "N", 1, 1024, NULL, "compute threads (default: all cores)"},
    {"--batch", NULL, CMD_TAP | CMD_FUSE | CMD_EMBED | CMD_CALIBRATE, 0, OPT_INT, F(batch), "N", 1, 4096, NULL,
     "images per run (default 8)"},
    {"--batch", NULL, CMD_BENCH, 0, OPT_INT, F(batch), "N", 1, 4096, NULL, "images per run (default 1)"},
    {"--stats", NULL, CMD_TAP | CMD_FUSE, 0, OPT_FLAG, F(stats), NULL, 0, 0, NULL,
     "print the output's shape, min, max, mean, std and share of zeros"},
    {"--iters", NULL, CMD_BENCH, 0, OPT_INT, F(iters), "K", 1, 100000, NULL, "timed runs (default 20)"},
    {"--profile", NULL, CMD_BENCH, 0, OPT_FLAG, F(profile), NULL, 0, 0, NULL,
     "print the ten slowest steps (FUSENET_PROFILE_ALL=1: all)"},
    {"--summary", NULL, CMD_LAYERS, 0, OPT_FLAG, F(summary), NULL, 0, 0, NULL,
     "a model.summary()-like table with parameter counts"},
    {"--seed", NULL, CMD_WEIGHTS, 0, OPT_INT, F(seed), "N", 0, 2147483647, NULL, "the random seed (default 1)"},
};
#define N_TABLE (sizeof table / sizeof *table)

const char *choice_name(const char *name, int value) {
    for (size_t i = 0; i < N_TABLE; i++)
        if (table[i].kind == OPT_CHOICE && strcmp(table[i].name, name) == 0)
            for (const choice *c = table[i].choices; c->name; c++)
                if (c->value == value) return c->name;
    return "?";
}

static int is_named(const option *t, const char *a) { return strcmp(a, t->name) == 0 || (t->alias && !strcmp(a, t->alias)); }

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
    return parse_int(buf, 1, MAX_HW, h) && parse_int(x + 1, 1, MAX_HW, w);
}

/* The value v of option t into its field. */
static int store(const option *t, const char *a, const char *v, opts *o) {
    void *field = (char *)o + t->field;
    switch (t->kind) {
    case OPT_STR:
        *(const char **)field = v;
        return 0;
    case OPT_INT:
        if (!parse_int(v, t->lo, t->hi, field)) return die("%s: '%s' is not a number in %d..%d", a, v, t->lo, t->hi);
        return 0;
    case OPT_HW: {
        cli_hw *hw = field;
        if (!parse_hw(v, &hw->h, &hw->w)) return die("%s: '%s' is not HxW", a, v);
        if (hw->h < t->lo || hw->w < t->lo || hw->h > t->hi || hw->w > t->hi)
            return die("%s: '%s' is outside %dx%d .. %dx%d", a, v, t->lo, t->lo, t->hi, t->hi);
        return 0;
    }
    case OPT_CHOICE:
        for (const choice *c = t->choices; c->name; c++)
            if (strcmp(v, c->name) == 0) {
                *(int *)field = c->value;
                return 0;
            }
        return die("%s: '%s' is not %s or %s", a, v, t->choices[0].name, t->choices[1].name);
    case OPT_SIZE: {
        cli_size *s = field;
        s->policy = strcmp(v, "min") == 0 ? FUSENET_SIZE_MIN : strcmp(v, "max") == 0 ? FUSENET_SIZE_MAX
                                                                                       : FUSENET_SIZE_EXPLICIT;
        if (s->policy == FUSENET_SIZE_EXPLICIT && !parse_hw(v, &s->h, &s->w))
            return die("%s: '%s' is not min, max or HxW", a, v);
        return 0;
    }
    case OPT_UNIT: {
        char *end;
        double d = strtod(v, &end);
        if (end == v || *end || !(d >= 0.0 && d <= 1.0)) return die("%s: '%s' is not a number in 0..1", a, v);
        *(double *)field = d;
        return 0;
    }
    default: /* OPT_FLAG, OPT_IMAGES: no single value */
        return 0;
    }
}

/* --tap MODEL:WEIGHTS:LAYER: MODEL up to the first ':', LAYER after the last, WEIGHTS (which may hold ':') between. */
static int add_tap(const option *t, const char *a, const char *v, opts *o) {
    if (o->n_taps == MAX_TAPS) return die("%s %s: at most %d taps in one net", a, v, MAX_TAPS);
    const char *first = strchr(v, ':'), *last = strrchr(v, ':');
    if (!first || first == last) return die("%s '%s': expected MODEL:WEIGHTS:LAYER", a, v);
    size_t len = strlen(v);
    char *buf = malloc(3 * len + sizeof "--tap   "); /* the fields, the spec, WEIGHTS without #NAME */
    if (!buf) return die("out of memory");
    o->tap_bufs[o->n_taps] = buf;
    memcpy(buf, v, len + 1);
    buf[first - v] = buf[last - v] = '\0';
    const char *fields[3] = {buf, buf + (first - v) + 1, buf + (last - v) + 1};
    static const char *const what[3] = {"MODEL", "WEIGHTS", "LAYER"};
    for (int k = 0; k < 3; k++)
        if (!fields[k][0]) return die("%s '%s': %s is empty (MODEL:WEIGHTS:LAYER)", a, v, what[k]);
    cli_tap *tap = &o->taps[o->n_taps++];
    const choice *c = t->choices;
    while (c->name && strcmp(c->name, fields[0])) c++;
    if (!c->name)
        return die("%s '%s': MODEL '%s' is not resnet50, vgg16, resnet101, resnet152 or vgg19", a, v, fields[0]);
    char *spec = buf + len + 1, *path = spec + len + sizeof "--tap "; /* "--tap VALUE" for messages */
    snprintf(spec, len + sizeof "--tap ", "%s %s", a, v);
    *tap = (cli_tap){(fusenet_arch)c->value, path, fields[2], a, NULL, spec};
    if (weights_ref(fields[1], spec, path, len + 1, &tap->submodel)) return 1; /* WEIGHTS or WEIGHTS#NAME */
    o->tap_option = 1;
    return 0;
}

void free_opts(opts *o) {
    free(o->images);
    free(o->pos);
    o->images = o->pos = NULL;
    for (int i = 0; i < MAX_TAPS; i++) free(o->tap_bufs[i]);
    memset(o->tap_bufs, 0, sizeof o->tap_bufs);
}

int parse(const cli_command *cmd, int argc, char **argv, opts *o) {
    memset(o, 0, sizeof *o);
    o->resize = FUSENET_INTERP_BILINEAR;
    o->load_interp = FUSENET_INTERP_NEAREST; /* keras.utils.load_img */
    o->size.policy = FUSENET_SIZE_MIN;
    o->mode = FUSENET_MODE_EXACT;
    o->int8_layers = FUSENET_INT8_AUTO;
    o->method = FUSENET_CALIB_DEFAULT;
    o->pool = FUSENET_POOLING_AVG;
    o->input_size = (cli_hw){224, 224};
    o->alpha = 0.5;
    o->batch = cmd->batch;
    o->iters = 20;
    o->k = 5;
    o->seed = 1;
    o->images = malloc((size_t)argc * sizeof *o->images);
    o->pos = malloc((size_t)argc * sizeof *o->pos);
    if (!o->images || !o->pos) return die("out of memory");
    unsigned char seen[N_TABLE] = {0};
    int dashdash = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (dashdash || a[0] != '-' || a[1] == '\0') {
            if (!a[0]) return die("an empty path argument");
            if (!cmd->positional) return die("unexpected argument '%s' (see 'fusenet %s --help')", a, cmd->name);
            o->pos[o->n_pos++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            dashdash = 1;
            continue;
        }
        const option *t = NULL;
        int other = 0; /* an option of another command */
        for (size_t k = 0; k < N_TABLE && !t; k++)
            if (is_named(&table[k], a)) {
                if (table[k].commands & cmd->bit) t = &table[k];
                else other = 1;
            }
        if (!t && other)
            return die("'%s' is not an option of 'fusenet %s' (see 'fusenet %s --help')", a, cmd->name, cmd->name);
        if (!t) return die("unknown option '%s' for 'fusenet %s' (see 'fusenet %s --help')", a, cmd->name, cmd->name);
        seen[t - table] = 1;
        if (t->kind == OPT_FLAG) {
            *(int *)((char *)o + t->field) = 1;
            continue;
        }
        if (t->kind == OPT_IMAGES) {
            int before = o->n_images;
            while (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) {
                if (o->n_images == MAX_IMAGE_ARGS) return die("%s: at most %d files per call", a, MAX_IMAGE_ARGS);
                if (!argv[i + 1][0]) return die("%s: an empty file name", a);
                o->images[o->n_images++] = argv[++i];
            }
            if (o->n_images == before) return die("%s needs at least one file", a);
            continue;
        }
        if (i + 1 >= argc) return die("option %s needs a value", a);
        const char *v = argv[++i];
        if (!v[0]) return die("option %s '': the value is empty", a);
        if (t->kind == OPT_TAP ? add_tap(t, a, v, o) : store(t, a, v, o)) return 1;
    }
    for (size_t k = 0; k < N_TABLE; k++)
        if ((table[k].required & cmd->bit) && !seen[k])
            return die("%s %s is required (see 'fusenet %s --help')", table[k].name, table[k].value, cmd->name);
    return 0;
}

void print_options(const cli_command *cmd, FILE *to) {
    for (size_t k = 0; k < N_TABLE; k++) {
        const option *t = &table[k];
        if (!(t->commands & cmd->bit)) continue;
        char left[64];
        snprintf(left, sizeof left, "%s%s%s%s%s", t->name, t->alias ? ", " : "", t->alias ? t->alias : "",
                 t->value ? " " : "", t->value ? t->value : "");
        fprintf(to, "  %-31s %s%s\n", left, t->help, (t->required & cmd->bit) ? " (required)" : "");
    }
}
