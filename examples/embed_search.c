/* embed_search.c - image search with libfusenet embeddings.
 *
 * Embeds every .jpg/.jpeg/.png file of a folder (one image at a time, the way
 * an application would) and prints the nearest neighbours of the first image
 * by cosine similarity. An embedding is the fused ResNet50 + VGG16 map
 * averaged over H and W and L2-normalised, so a dot product is a cosine.
 *
 * usage: embed_search RESNET.h5 VGG.h5 FOLDER [K]
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fusenet.h"

static int is_image(const char *name) {
    const char *dot = strrchr(name, '.');
    return dot && (strcasecmp(dot, ".jpg") == 0 || strcasecmp(dot, ".jpeg") == 0 || strcasecmp(dot, ".png") == 0);
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static const float *g_sim;

static int by_similarity(const void *a, const void *b) {
    float x = g_sim[*(const int *)a], y = g_sim[*(const int *)b];
    return (x < y) - (x > y);
}

int main(int argc, char **argv) {
    if (argc < 4 || argc > 5) {
        fprintf(stderr, "usage: %s RESNET.h5 VGG.h5 FOLDER [K]\n", argv[0]);
        return 2;
    }
    int k = argc == 5 ? atoi(argv[4]) : 3;

    /* The folder's image files, sorted by name. */
    DIR *d = opendir(argv[3]);
    if (!d) {
        perror(argv[3]);
        return 1;
    }
    char **paths = NULL;
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.' || !is_image(e->d_name)) continue;
        char **grown = realloc(paths, (size_t)(n + 1) * sizeof *paths);
        char *path = malloc(strlen(argv[3]) + strlen(e->d_name) + 2);
        if (!grown || !path) return 1;
        paths = grown;
        sprintf(path, "%s/%s", argv[3], e->d_name);
        paths[n++] = path;
    }
    closedir(d);
    if (n == 0) {
        fprintf(stderr, "%s: no images\n", argv[3]);
        return 1;
    }
    qsort(paths, (size_t)n, sizeof *paths, by_name);

    /* One net, batch 1, 224x224: conv4_block6_out (1024) + block5_conv3 (512). */
    fusenet_error err;
    fusenet_dual_params p = fusenet_dual_default_params();
    p.resnet_weights = argv[1];
    p.vgg_weights = argv[2];
    fusenet_net *net;
    if (fusenet_build_dual(&p, &net, &err) != FUSENET_OK) {
        fprintf(stderr, "build: %s\n", err.message);
        return 1;
    }
    size_t dim = fusenet_embed_dim(net);
    float *emb = malloc((size_t)n * dim * sizeof *emb), *sim = malloc((size_t)n * sizeof *sim);
    int *order = malloc((size_t)n * sizeof *order), *ok = calloc((size_t)n, sizeof *ok);
    if (!emb || !sim || !order || !ok) return 1;
    for (int i = 0; i < n; i++) {
        /* NULL image params: Keras' load_img + caffe preprocessing at the net's input size */
        if (fusenet_embed_image(net, paths[i], NULL, FUSENET_POOLING_AVG, emb + (size_t)i * dim, &err) != FUSENET_OK)
            fprintf(stderr, "skipping: %s\n", err.message); /* e.g. a corrupt file */
        else
            ok[i] = 1;
    }
    printf("embedded %d images, %zu values each\n", n, dim);

    int q = 0;
    while (q < n && !ok[q]) q++;
    if (q == n) return 1;
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (i == q || !ok[i]) continue;
        double dot = 0;
        for (size_t c = 0; c < dim; c++) dot += (double)emb[(size_t)q * dim + c] * emb[(size_t)i * dim + c];
        sim[i] = (float)dot;
        order[m++] = i;
    }
    g_sim = sim;
    qsort(order, (size_t)m, sizeof *order, by_similarity);
    printf("nearest to %s:\n", paths[q]);
    for (int r = 0; r < m && r < k; r++) printf("  %d. %.4f  %s\n", r + 1, sim[order[r]], paths[order[r]]);

    for (int i = 0; i < n; i++) free(paths[i]);
    free(paths);
    free(emb);
    free(sim);
    free(order);
    free(ok);
    fusenet_net_free(net);
    return 0;
}
