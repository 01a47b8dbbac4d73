/* main.c - the `fusenet` command-line tool: the commands and their dispatch.
 * Arrays are .npy files (float32, little-endian, C order, NHWC). Exit status 0
 * on success; on any error one line on stderr and status 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define WEIGHTS_NOTE                                                                                              \
    "Weights not given are looked for under their official file names (..._notop.h5; with --top the\n"          \
    "full files) in $FUSENET_MODELS, then in ./models; models/fetch_weights.sh downloads them.\n"

static const cli_command commands[] = {
    {"layers", CMD_LAYERS, cmd_layers, 8, NULL,
     "list a network's layers: name, type and output shape (--summary: with parameter counts)", NULL},
    {"tap", CMD_TAP, cmd_tap, 8, NULL, "run one network on a batch and write one layer's output", WEIGHTS_NOTE},
    {"fuse", CMD_FUSE, cmd_fuse, 8, NULL,
     "run the tapped networks (ResNet50 and VGG16, or the --tap list), resize their taps to one size and write "
     "them concatenated in tap order",
     WEIGHTS_NOTE},
    {"bench", CMD_BENCH, cmd_bench, 1, NULL,
     "time the fused net on random input; one JSON line (images/s, ms per batch, GFLOP/s, peak RSS)",
     WEIGHTS_NOTE},
    {"embed", CMD_EMBED, cmd_embed, 8, "IMAGE_OR_DIRECTORY...",
     "one L2-normalised row per image: the fused map pooled over H, W",
     "Directories are walked recursively in sorted order for .jpg/.jpeg/.png files (names starting with\n"
     "'.' skipped); an unreadable image is reported and skipped (with --strict: the run fails).\n" WEIGHTS_NOTE},
    {"similar", CMD_SIMILAR, cmd_similar, 8, NULL,
     "the embedded rows nearest to a query image: 'rank<TAB>cosine similarity<TAB>path', best first",
     "The query is embedded as embed does: give the same taps, --pool and --input-size.\n" WEIGHTS_NOTE},
    {"viz", CMD_VIZ, cmd_viz, 8, NULL, "a layer's mean activation as a heatmap over the picture (PNG)",
     "The mean over channels is scaled to 0..1, upsampled (bilinear) to the picture's own size (or\n"
     "--output-size) and drawn with a jet colour map over it; the network sees the image at --input-size,\n"
     "loaded as Keras loads it.\n" WEIGHTS_NOTE},
    {"make-weights", CMD_WEIGHTS, cmd_make_weights, 8, NULL,
     "write seeded random weights in the layout of the official Keras file", NULL},
    {"info", CMD_INFO, cmd_info, 8, NULL,
     "this build and this CPU: library and oneDNN versions, the ISA oneDNN dispatches, threads, modes offered",
     "One 'key: value' line each: version, onednn, isa, cores, threads (what --threads 0 means: OMP_NUM_THREADS\n"
     "or all cores), modes (exact, and fast where oneDNN has Winograd convolutions: AVX-512).\n"},
    {"merge", CMD_MERGE, cmd_merge, 8, "DIR",
     "the shards of 'embed --shard K/N --output-dir DIR' as one array and one names file",
     "Every shard 0..N-1 must be done and of the same run (inputs, taps, pool, mode, sizes, weights);\n"
     "the result is what one unsharded 'fusenet embed --output EMB.npy --names NAMES.txt' writes.\n"},
    {"calibrate", CMD_CALIBRATE, cmd_calibrate, 8, NULL,
     "run the fp32 fused net (the dual one, or --tap's) over calibration images and write the statistics "
     "--mode int8 needs",
     "The calibration records the models, taps and a hash of the weights: a net with other weights or taps\n"
     "refuses it. Use images like those the nets will see (16 to a few hundred), never the ones you judge on.\n"
     WEIGHTS_NOTE},
    {"version", CMD_VERSION, cmd_version, 8, NULL, "print the library's version", NULL},
};
#define N_COMMANDS (sizeof commands / sizeof *commands)

static const cli_command *find_command(const char *name) {
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(name, commands[i].name) == 0) return &commands[i];
    return NULL;
}

static void print_commands(FILE *to) {
    fputs("usage: fusenet COMMAND [OPTIONS]\n\ncommands:\n", to);
    for (size_t i = 0; i < N_COMMANDS; i++) fprintf(to, "  %-13s %s\n", commands[i].name, commands[i].summary);
    fputs("\n'fusenet COMMAND --help' lists the options of a command. Arrays are .npy files (float32,\n"
          "little-endian, C order, NHWC). Exit status 0 on success; on an error one line on stderr and 1.\n",
          to);
}

static void print_help(const cli_command *cmd, FILE *to) {
    fprintf(to, "usage: fusenet %s [OPTIONS]%s%s\n%s\n\noptions:\n", cmd->name, cmd->positional ? " " : "",
            cmd->positional ? cmd->positional : "", cmd->summary);
    print_options(cmd, to);
    if (cmd->notes) fprintf(to, "\n%s", cmd->notes);
}

/* --mode int8 and --calibration go together; the file is read once, before any work. */
static int load_calibration(opts *o) {
    if (o->mode == FUSENET_MODE_INT8 && !o->calibration)
        return die("--mode int8 needs --calibration CAL (written by 'fusenet calibrate')");
    if (!o->calibration) return 0;
    if (o->mode != FUSENET_MODE_INT8) return die("--calibration CAL is for --mode int8");
    fusenet_error err;
    if (fusenet_calibration_load(o->calibration, &o->cal, &err)) return fail(&err);
    return 0;
}

static int is_help(const char *a) { return strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0; }

int main(int argc, char **argv) {
    if (argc < 2) {
        fputs("fusenet: usage: fusenet COMMAND [OPTIONS]; 'fusenet --help' lists the commands\n", stderr);
        return 2;
    }
    const char *name = argv[1];
    if (strcmp(name, "--version") == 0) name = "version";
    if (strcmp(name, "help") == 0 || is_help(name)) { /* fusenet help [COMMAND] */
        const cli_command *cmd = argc > 2 ? find_command(argv[2]) : NULL;
        if (argc > 2 && !cmd) return die("unknown command '%s' (see 'fusenet --help')", argv[2]);
        if (cmd) print_help(cmd, stdout);
        else print_commands(stdout);
        return 0;
    }
    const cli_command *cmd = find_command(name);
    if (!cmd) {
        char list[256] = "";
        for (size_t i = 0; i < N_COMMANDS; i++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", commands[i].name);
        return die("unknown command '%s' (%s)", name, list);
    }
    for (int i = 2; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (is_help(argv[i])) {
            print_help(cmd, stdout);
            return 0;
        }
    opts o; /* no file-scope state: everything a command needs is here */
    int rc = parse(cmd, argc, argv, &o);
    if (!rc) rc = split_weights(&o); /* FILE#NAME: a sub-model of FILE */
    if (!rc) rc = load_calibration(&o);
    if (!rc) {
        catch_interrupts(); /* a signal removes the temporaries and exits 128 + signal */
        rc = cmd->run(&o);
    }
    fusenet_calibration_free(o.cal);
    free_opts(&o);
    return rc;
}
