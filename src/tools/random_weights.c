/* random_weights.c - seeded random weights for a model, written in exactly the
 * official file layout (ResNet50: nested Keras-2 names such as
 * conv1_conv/kernel:0; VGG16: flat Keras-1 names such as block1_conv1_W_1:0;
 * which one is the architecture's row of the registry, models/archs.c). How
 * each weight is drawn is its op's row of the op table. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "h5.h"
#include "model.h"
#include "random_weights.h"
#include "models.h"

#define WNAME_MAX (2 * FN_NAME_MAX)

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static float uniform(uint64_t *s, float lo, float hi) {
    return lo + (hi - lo) * (float)((double)(splitmix(s) >> 11) / 9007199254740992.0);
}

static size_t spec_count(const fn_wspec *s) {
    size_t n = 1;
    for (int d = 0; d < s->rank; d++) n *= (size_t)s->dims[d];
    return n;
}

/* Draws weight k of node n as the op table says. The first weighted layer also
 * absorbs the ~60x scale of caffe-preprocessed pixels; the last BatchNorm of a
 * ResNet branch (NAME_3_bn) starts with a small gamma so residual sums stay of
 * order one. */
static void fill(const fn_node *n, int k, const fn_wspec *spec, int first, uint64_t *s) {
    const fn_weight_info *w = &fusenet__ops[n->op].weights[k];
    size_t elems = spec_count(spec);
    float lo = w->lo, hi = w->hi;
    if (w->init == FN_INIT_HE) {
        float fan_in = (float)(elems / (size_t)spec->dims[spec->rank - 1]);
        hi = sqrtf(6.0f / fan_in) / (first ? 60.0f : 1.0f);
        lo = -hi;
    }
    if (n->op == FN_OP_BATCH_NORM && k == 0 && strstr(n->name, "_3_bn")) lo = 0.2f, hi = 0.5f;
    for (size_t i = 0; i < elems; i++) spec->data[i] = uniform(s, lo, hi);
}

fusenet_status fusenet__write_random_weights(fusenet_arch arch, int include_top, uint64_t seed, const char *path,
                                             fusenet_error *err) {
    fusenet_model_params p = fusenet_model_default_params();
    p.arch = arch;
    p.include_top = include_top;
    fusenet_model *m = NULL;
    fusenet_status st = fusenet_model_create(&p, &m, err);
    if (st) return st;
    size_t n = (size_t)m->g.n;
    fn_shape *shapes = fusenet__calloc(n, sizeof *shapes);
    fn_h5_layer_out *layers = fusenet__calloc(n, sizeof *layers);
    fn_wspec *specs = fusenet__calloc(n * FN_MAX_WEIGHTS, sizeof *specs);
    char *names = fusenet__calloc(n * FN_MAX_WEIGHTS, WNAME_MAX);
    const char **name_ptrs = fusenet__calloc(n * FN_MAX_WEIGHTS, sizeof *name_ptrs);
    uint64_t state = seed;
    if (!shapes || !layers || !specs || !names || !name_ptrs) {
        st = fusenet__error(err, FUSENET_ERR_NOMEM, "out of memory writing %s", path);
        goto done;
    }
    st = fusenet__graph_shapes(&m->g, 224, 224, shapes, err);
    int first = 1, keras1 = fusenet__arch(arch)->keras1_names;
    for (size_t i = 0; st == FUSENET_OK && i < n; i++) {
        fn_node *node = &m->g.nodes[i];
        fn_wspec *sp = &specs[i * FN_MAX_WEIGHTS];
        const char **wnames = &name_ptrs[i * FN_MAX_WEIGHTS];
        int count = fusenet__node_wspecs(&m->g, shapes, (int)i, sp);
        for (int k = 0; k < count; k++) {
            char *name = names + (i * FN_MAX_WEIGHTS + (size_t)k) * WNAME_MAX;
            if (keras1) /* Keras-1 flat names, as in the official VGG16 file */
                snprintf(name, WNAME_MAX, "%s_%s_1:0", node->name, fusenet__ops[node->op].weights[k].keras1);
            else /* Keras-2 nested names, as in the official ResNet50 file */
                snprintf(name, WNAME_MAX, "%s/%s:0", node->name, sp[k].role);
            wnames[k] = name;
            node->w[k] = fusenet__malloc(spec_count(&sp[k]) * sizeof(float));
            if (!node->w[k]) {
                st = fusenet__error(err, FUSENET_ERR_NOMEM, "out of memory writing %s", path);
                break;
            }
            sp[k].data = node->w[k];
            fill(node, k, &sp[k], first, &state);
        }
        if (count) first = 0;
        layers[i] = (fn_h5_layer_out){node->name, (size_t)count, wnames, sp};
    }
    if (st == FUSENET_OK) st = fusenet__h5_write(path, layers, n, err);
done:
    fusenet__free(shapes);
    fusenet__free(layers);
    fusenet__free(specs);
    fusenet__free(names);
    fusenet__free(name_ptrs);
    fusenet_model_free(m);
    return st;
}
