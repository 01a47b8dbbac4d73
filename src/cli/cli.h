/* cli.h - what the files of the `fusenet` command-line tool share: the
 * commands, the option table and the typed options it fills, error reporting,
 * the weights finder and the helpers several commands use. */
#ifndef FN_CLI_H
#define FN_CLI_H

#include <stddef.h>
#include <stdio.h>

#include "fusenet.h"
#include "npy.h"
#include "shard.h"

#define MAX_INPUT_BYTES ((size_t)8 << 30)
#define MAX_IMAGE_ARGS 4096 /* files after --images */

typedef struct cli_hw {
    int h, w;
} cli_hw;

typedef struct cli_size { /* --size min|max|HxW */
    fusenet_size_policy policy;
    int h, w;
} cli_size;

#define MAX_TAPS 16 /* taps of one net: fusenet_net_build's limit */

/* One tap of a fused net: --tap MODEL:WEIGHTS:LAYER, or one of the short form's two. */
typedef struct cli_tap {
    fusenet_arch arch;
    const char *weights, *layer;
    const char *option; /* "--tap", "--resnet-weights" or "--vgg-weights": where the weights path came from */
    const char *submodel; /* WEIGHTS#NAME: the Keras sub-model NAME (weights_ref), or NULL */
    const char *spec;   /* "--tap resnet50:W.h5:conv4_block6_out" for messages; NULL for the short form */
} cli_tap;

/* Every option value, parsed once (options.c) into its type. A command reads
 * only the fields of the options its row in the option table allows. */
typedef struct opts {
    fusenet_arch arch;                     /* --model */
    const char *weights, *layer, *input, *output, *names, *embeddings, *query, *image;
    const char *resnet_weights, *vgg_weights, *resnet_layer, *vgg_layer;
    const char *shard, *output_dir;        /* embed --shard K/N --output-dir DIR */
    fusenet_interp resize, load_interp;    /* --resize, --load-interp */
    cli_size size;                         /* --size (fuse, embed, similar) */
    fusenet_mode mode;                     /* --mode */
    const char *calibration;               /* --calibration (--mode int8) */
    fusenet_int8_layers int8_layers;       /* --int8-layers */
    fusenet_calib_method method;           /* calibrate --method */
    fusenet_calibration *cal;              /* --calibration, loaded by main before the command runs */
    fusenet_pooling pool;                  /* --pool */
    cli_hw input_size;                     /* --input-size, bench's --size; 224x224 */
    cli_hw output_size;                    /* viz --output-size; 0x0: the picture's size */
    double alpha;                          /* viz --alpha */
    const char **images;                   /* --images (n_images of them) */
    int n_images;
    const char **pos;                      /* positional arguments (embed: images and directories) */
    int n_pos;
    int top, summary, stats, profile, strict; /* flags */
    int threads, batch, iters, k, seed;
    char found[2][4096];                   /* weights paths found by find_weights */
    /* --weights, --resnet-weights, --vgg-weights FILE#NAME: the Keras sub-model NAME (or NULL) */
    const char *weights_sub, *resnet_sub, *vgg_sub;
    char wpath[3][4096];                   /* their FILE parts */
    cli_tap taps[MAX_TAPS];                /* the fused taps (fused_taps): --tap, or the short form's two */
    int n_taps, tap_option;                /* tap_option: the taps came from --tap */
    char *tap_bufs[MAX_TAPS];              /* the --tap values, split in place (freed by free_opts) */
} opts;

/* ---- the commands (main.c) ---- */
enum {
    CMD_LAYERS = 1 << 0,
    CMD_TAP = 1 << 1,
    CMD_FUSE = 1 << 2,
    CMD_BENCH = 1 << 3,
    CMD_EMBED = 1 << 4,
    CMD_SIMILAR = 1 << 5,
    CMD_VIZ = 1 << 6,
    CMD_WEIGHTS = 1 << 7,
    CMD_INFO = 1 << 8,
    CMD_VERSION = 1 << 9,
    CMD_MERGE = 1 << 10,
    CMD_CALIBRATE = 1 << 11,
};

typedef struct cli_command {
    const char *name;
    unsigned bit;           /* CMD_*: its column in the option table */
    int (*run)(opts *o);
    int batch;              /* --batch when not given */
    const char *positional; /* what it takes besides options, for --help; NULL: nothing */
    const char *summary;    /* one line for 'fusenet --help' */
    const char *notes;      /* after the options in 'fusenet CMD --help'; may be NULL */
} cli_command;

/* ---- options (options.c) ---- */
/* Fills o from argv[2..argc) for cmd: only cmd's options, each value checked
 * and converted; required options present; positional arguments only where
 * cmd takes them. Returns 0, or 1 after one line on stderr. o->images and
 * o->pos are allocated (free with free_opts) even on failure. */
int parse(const cli_command *cmd, int argc, char **argv, opts *o);
void free_opts(opts *o);
/* Prints cmd's options, one a line, for 'fusenet CMD --help'. */
void print_options(const cli_command *cmd, FILE *to);
/* The name of a value of a choice option ("--pool", FUSENET_POOLING_AVG: "avg"). */
const char *choice_name(const char *name, int value);

/* ---- errors (common.c): one line "fusenet: ..." on stderr; return 1 ---- */
int die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int fail(const fusenet_error *err);

/* ---- checks before any work and after every run (checks.c) ---- */
#define MAX_OUTPUT_BYTES ((size_t)8 << 30) /* an output array the tool holds */
#define MAX_TEXT_BYTES ((size_t)1 << 30)   /* a text input (--names) */
int check_output(const char *option, const char *path); /* writable; no directory */
/* Refuses an output that is the same file as an input (or as another output). */
int check_not_input(const char *out_option, const char *out, const char *in_option, const char *in);
/* Refuses, naming what the printf-style fmt says, bytes over limit, with the GiB needed. */
int check_bytes(double bytes, double limit, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A whole text file, regular files only, at most max_bytes; free *buf with free(). */
int read_text(const char *path, size_t max_bytes, char **buf, size_t *len);
/* 1 and *at = the index of the first NaN or Inf of data[0..n), or 0. */
int find_non_finite(const float *data, size_t n, size_t *at);
const char *value_name(float v); /* "NaN", "+Inf", "-Inf" */
/* SIGINT/SIGTERM/SIGHUP: remove the temporaries, say so, exit 128 + signal. */
void catch_interrupts(void);

/* ---- shared helpers (common.c) ---- */
/* "FILE#NAME": the weights file FILE and the Keras sub-model NAME to read
 * from it (fusenet_model_params.submodel), split at the last '#'; a value
 * naming an existing file is taken whole. path gets FILE (size bytes);
 * *submodel points into arg after the '#', or is NULL. 1 (after a message
 * naming `option`) for an empty FILE or NAME or a FILE too long. */
int weights_ref(const char *arg, const char *option, char *path, size_t size, const char **submodel);
/* weights_ref on --weights, --resnet-weights and --vgg-weights. */
int split_weights(opts *o);
int find_weights(const char **path, const char *option, fusenet_arch arch, int top, char *buf, size_t size);
int find_dual_weights(opts *o);
/* The taps of a fused net (fuse, embed, similar, bench, calibrate) into o->taps: the --tap
 * values, or the short form --resnet-weights/--vgg-weights/--resnet-layer/--vgg-layer
 * (ResNet50 then VGG16, weights found as find_weights does); both forms at once
 * is an error naming both. Every layer is checked before any file is read. */
int fused_taps(opts *o);
/* The fused net of o->taps (fusenet_build_files: each MODEL:WEIGHTS read once,
 * only the weights its taps need). Returns 0, or 1 after the error line. */
int build_fuse(const opts *o, int batch, int h, int w, fusenet_net **net);
void file_taps(const opts *o, fusenet_file_tap *taps);                  /* o->taps as the C API's */
fusenet_net_params fuse_params(const opts *o, int batch, int h, int w); /* the fused net's params */
int fail_taps(const opts *o, const fusenet_file_tap *taps, const fusenet_error *err); /* names the --tap at fault */
fusenet_image_params image_params(const opts *o); /* --input-size, --load-interp; caffe preprocessing */
int grow(void **p, size_t *cap, size_t need, size_t elem);
double seconds_now(void);

/* ---- the commands ---- */
int cmd_layers(opts *o); /* cmd_model.c */
int cmd_tap(opts *o);
int cmd_fuse(opts *o);
int cmd_bench(opts *o);
int cmd_embed(opts *o); /* cmd_embed.c */
int cmd_similar(opts *o);
int cmd_viz(opts *o);          /* cmd_viz.c */
int cmd_make_weights(opts *o); /* cmd_weights.c */
int cmd_info(opts *o);         /* cmd_info.c */
int cmd_version(opts *o);
int cmd_merge(opts *o);        /* cmd_shard.c */
int cmd_calibrate(opts *o);    /* cmd_calibrate.c */
/* The images of files and directories (walked as embed walks them) in embed's order: *paths
 * (free each and the array with free()), *n of them. Unreadable directories fail. */
int list_images(const char *const *args, int n_args, char ***paths, size_t *n);

/* ---- embed --shard (cmd_shard.c, around cmd_embed's loop) ---- */
typedef struct shard_job {
    int k, n, open;
    size_t first, end; /* the shard's range of the candidate files */
    double t0;
    shard_writer w;
} shard_job;
/* Checks the options and whether the shard is done already (then says so and sets *done_already). */
int shard_begin(const opts *o, shard_job *job, int *done_already);
/* The shard's range of the n_files candidates; opens its files for rows of dim floats. */
int shard_start(const opts *o, shard_job *job, size_t n_files, size_t dim);
/* rc 0: completes the shard (its done file last); otherwise removes its temporaries. Returns rc or 1. */
int shard_end(const opts *o, shard_job *job, char *const *paths, size_t n_files, int rc);

#endif
