/* main.c - the `fusenet` command-line tool: the commands and their dispatch.
 * Arrays are .npy files (float32, little-endian, C order, NHWC). Exit status 0
 * on success; on any error one line on stderr and status 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int usage(FILE *to) {
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
