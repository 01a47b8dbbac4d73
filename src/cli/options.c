/* options.c - the command line into opts. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int parse_int(const char *s, int lo, int hi, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return 0;
    *out = (int)v;
    return 1;
}

int parse_hw(const char *s, int *h, int *w) {
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
int parse(int argc, char **argv, opts *o) {
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
    return 0;
}

int parse_model(const char *name, fusenet_arch *arch) {
    if (!name) return die("--model is required (resnet50 or vgg16)");
    if (strcmp(name, "resnet50") == 0) *arch = FUSENET_ARCH_RESNET50;
    else if (strcmp(name, "vgg16") == 0) *arch = FUSENET_ARCH_VGG16;
    else return die("--model: '%s' is not resnet50 or vgg16", name);
    return 0;
}

/* Refuses an output path whose directory is missing (before any work is done). */
