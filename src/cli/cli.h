/* cli.h - what the files of the `fusenet` command-line tool share: the parsed
 * options, error reporting, the weights finder and the helpers several
 * commands use. */
#ifndef FN_CLI_H
#define FN_CLI_H

#include <stddef.h>
#include <stdio.h>

#include "fusenet.h"
#include "npy.h"

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

/* ---- errors (common.c): one line "fusenet: ..." on stderr; return 1 ---- */
int die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int fail(const fusenet_error *err);

/* ---- options (options.c; usage in main.c) ---- */
int usage(FILE *to);
int parse(int argc, char **argv, opts *o);
int parse_int(const char *s, int lo, int hi, int *out);
int parse_hw(const char *s, int *h, int *w);
int parse_model(const char *name, fusenet_arch *arch);

/* ---- shared helpers (common.c) ---- */
int check_output(const char *option, const char *path);
int find_weights(const char **path, const char *option, fusenet_arch arch, int top, char *buf, size_t size);
int find_dual_weights(opts *o);
fusenet_dual_params dual_params(const opts *o, int batch, int h, int w);
fusenet_status build_fuse(const opts *o, int batch, int h, int w, fusenet_net **net, fusenet_error *err);
int check_fuse_opts(const opts *o);
int parse_pool(const opts *o, fusenet_pooling *pool);
int image_params(const opts *o, fusenet_image_params *ip);
int grow(void **p, size_t *cap, size_t need, size_t elem);
double seconds_now(void);

/* ---- the commands ---- */
int cmd_layers(const opts *o);  /* cmd_model.c */
int cmd_tap(opts *o);
int cmd_fuse(opts *o);
int cmd_bench(opts *o);
int cmd_embed(opts *o);         /* cmd_embed.c */
int cmd_similar(opts *o);
int cmd_viz(opts *o);           /* cmd_viz.c */
int cmd_make_weights(const opts *o); /* cmd_weights.c */

#endif
