/* model.c - fusenet_model: create the Keras graph, bind weights from a Keras
 * weights file (any layout h5.c reads; the model or sub-model the params
 * name) by layer name (each layer's weights as its op's row of the op table
 * says), describe layers. */
#include "model.h"

#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "h5.h"
#include "models.h"

const char *fusenet__arch_name(fusenet_arch arch) {
    const fn_arch_info *a = fusenet__arch(arch);
    return a ? a->name : "?";
}

fusenet_model_params fusenet_model_default_params(void) {
    fusenet_model_params p;
    memset(&p, 0, sizeof p);
    p.arch = FUSENET_ARCH_RESNET50;
    p.pooling = FUSENET_POOLING_NONE;
    return p;
}

static fusenet_status check_params(const fusenet_model_params *p, fusenet_error *err) {
    if (!fusenet__arch(p->arch))
        return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "model params: arch %d is not resnet50 (1), vgg16 (2), "
                        "resnet101 (3), resnet152 (4) or vgg19 (5)",
                        (int)p->arch);
    if (p->pooling != FUSENET_POOLING_NONE && p->pooling != FUSENET_POOLING_AVG && p->pooling != FUSENET_POOLING_MAX)
        return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "model params: pooling %d is not none, avg or max",
                        (int)p->pooling);
    if (p->n_needed && !p->needed_layers)
        return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "model params: n_needed is %zu but needed_layers is NULL",
                        p->n_needed);
    for (size_t i = 0; i < p->n_needed; i++)
        if (!p->needed_layers[i])
            return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "model params: needed_layers[%zu] is NULL", i);
    return fusenet__ok(err);
}

static fusenet_status model_new(const fusenet_model_params *params, fusenet_model **out, fusenet_error *err) {
    fusenet_model_params defaults = fusenet_model_default_params();
    const fusenet_model_params *p = params ? params : &defaults;
    fusenet_status st = check_params(p, err);
    if (st) return st;
    fusenet_model *m = fusenet__calloc(1, sizeof *m);
    if (!m) return fusenet__error(err, FUSENET_ERR_NOMEM, "out of memory creating a %s model", fusenet__arch_name(p->arch));
    m->arch = p->arch;
    m->include_top = p->include_top != 0;
    m->pooling = p->include_top ? FUSENET_POOLING_NONE : p->pooling;
    fusenet__arch(m->arch)->build(&m->g, m->include_top, m->pooling);
    st = fusenet__graph_finish(&m->g, err);
    if (st == FUSENET_OK) {
        m->weights = fusenet__calloc((size_t)m->g.n, 1);
        if (!m->weights) st = fusenet__error(err, FUSENET_ERR_NOMEM, "out of memory creating a model");
    }
    if (st) {
        fusenet_model_free(m);
        return st;
    }
    *out = m;
    return fusenet__ok(err);
}

fusenet_status fusenet_model_create(const fusenet_model_params *params, fusenet_model **out, fusenet_error *err) {
    if (!out) return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "fusenet_model_create: out is NULL");
    *out = NULL;
    return model_new(params, out, err);
}

void fusenet_model_free(fusenet_model *m) {
    if (!m) return;
    fusenet__graph_free(&m->g);
    fusenet__free(m->weights);
    fusenet__h5_close(m->file);
    fusenet__free(m->shapes);
    fusenet__free(m);
}

fusenet_arch fusenet_model_arch(const fusenet_model *m) { return m ? m->arch : (fusenet_arch)0; }

size_t fusenet_model_layer_count(const fusenet_model *m) { return m ? (size_t)m->g.n : 0; }

_Static_assert(FN_MAX_WEIGHT_RANK <= FN_MAX_RANK, "a weight's rank must fit the HDF5 reader's");

int fusenet__node_wspecs(const fn_graph *g, const fn_shape *shapes, int i, fn_wspec *specs) {
    const fn_op_info *op = &fusenet__ops[g->nodes[i].op];
    memset(specs, 0, sizeof *specs * FN_MAX_WEIGHTS);
    for (int k = 0; k < op->n_weights; k++) {
        specs[k].role = op->weights[k].role;
        specs[k].rank = fusenet__node_weight_dims(g, shapes, i, k, specs[k].dims);
    }
    return op->n_weights;
}

static size_t spec_count(const fn_wspec *s) {
    size_t n = 1;
    for (int d = 0; d < s->rank; d++) n *= (size_t)s->dims[d];
    return n;
}

static int file_has(const fn_h5 *f, const char *name) {
    for (size_t i = 0; i < fusenet__h5_layer_count(f); i++)
        if (strcmp(fusenet__h5_layer_name(f, i), name) == 0) return 1;
    return 0;
}

/* Old Keras ResNet50 files (models/resnet_old_names.c) load into the current
 * graph under their own names and BatchNorm epsilon; a file mixing both
 * namings, or an old file asked as another model, is refused. */
static fusenet_status check_old_naming(fusenet_model *m, const fn_h5 *f, fusenet_error *err) {
    const char *path = fusenet__h5_path(f);
    const char *old = file_has(f, "bn_conv1") ? "bn_conv1" : file_has(f, "res2a_branch2a") ? "res2a_branch2a" : NULL;
    if (!old) return fusenet__ok(err);
    if (m->arch != FUSENET_ARCH_RESNET50)
        return fusenet__error(err, FUSENET_ERR_ARCH,
                              "%s holds old Keras ResNet50 weights (layer %s, deep-learning-models v0.2 naming), "
                              "not %s", path, old, fusenet__arch(m->arch)->keras_name);
    for (size_t i = 0; i < fusenet__h5_layer_count(f); i++) {
        const char *name = fusenet__h5_layer_name(f, i);
        char cur[FN_NAME_MAX];
        if (fusenet__graph_find(&m->g, name) >= 0 && fusenet__resnet_old_name(name, cur, sizeof cur))
            return fusenet__error(err, FUSENET_ERR_ARCH,
                                  "%s mixes two ResNet50 namings: layer %s is old Keras naming "
                                  "(deep-learning-models v0.2), layer %s the current one; "
                                  "a file holds one of them",
                                  path, old, name);
    }
    m->old_resnet_names = 1;
    fusenet__resnet_old_epsilon(&m->g);
    return fusenet__ok(err);
}

/* The file's name of node `name`: its old name in an old ResNet50 file. */
static const char *file_name(const fusenet_model *m, const char *name, char *buf, size_t size) {
    return m->old_resnet_names && fusenet__resnet_old_name(name, buf, size) ? buf : name;
}

/* Tells the user what a wrong file is: another architecture's file (its signature layer). */
static fusenet_status check_file_kind(const fusenet_model *m, const fn_h5 *f, fusenet_error *err) {
    const char *path = fusenet__h5_path(f);
    const fn_arch_info *want = fusenet__arch(m->arch);
    for (int a = fusenet__n_archs - 1; a >= 0; a--) { /* deepest variant first: a ResNet152 file has conv1_conv too */
        const fn_arch_info *other = &fusenet__archs[a];
        if (other != want && file_has(f, other->signature) && !file_has(f, want->signature))
            return fusenet__error(err, FUSENET_ERR_ARCH, "%s holds %s weights (layer %s), not %s", path,
                                  other->keras_name, other->signature, want->keras_name);
    }
    return fusenet__ok(err);
}

/* Keras 1 files name the classifier "probs"; Keras 2 "predictions". */
static const char *keras2_name(const char *name) { return strcmp(name, "probs") == 0 ? "predictions" : name; }

/* A file layer with weights that the model does not have: refused (Keras
 * would fail the load), except the top layers of a full file (those of the
 * same architecture built with its top) read into a model without its top. */
static fusenet_status check_extra_layers(const fusenet_model *m, fn_h5 *f, fusenet_error *err) {
    fn_graph top;
    memset(&top, 0, sizeof top);
    if (!m->include_top) fusenet__arch(m->arch)->build(&top, 1, FUSENET_POOLING_NONE);
    fusenet_status st = fusenet__graph_finish(&top, err);
    for (size_t i = 0; st == FUSENET_OK && i < fusenet__h5_layer_count(f); i++) {
        const char *name = fusenet__h5_layer_name(f, i);
        char cur[FN_NAME_MAX];
        if (m->old_resnet_names && fusenet__resnet_current_name(name, cur, sizeof cur)) name = cur;
        if (fusenet__graph_find(&m->g, keras2_name(name)) >= 0 || fusenet__graph_find(&top, keras2_name(name)) >= 0)
            continue;
        size_t nw = 0;
        st = fusenet__h5_layer_weight_count(f, fusenet__h5_layer_name(f, i), &nw, err);
        if (st == FUSENET_OK && nw > 0)
            st = fusenet__error(err, FUSENET_ERR_ARCH, "%s: layer '%s' has %zu weights but %s%s has no such layer",
                                fusenet__h5_path(f), fusenet__h5_layer_name(f, i), nw, fusenet__arch_name(m->arch),
                                m->include_top ? " (with top)" : "");
    }
    fusenet__graph_free(&top);
    return st;
}

/* The file's group of node i (NULL: none). */
static const char *file_group(const fusenet_model *m, const fn_h5 *f, int i, char *old, size_t size) {
    const char *group = file_name(m, m->g.nodes[i].name, old, size);
    if (!file_has(f, group) && strcmp(group, "predictions") == 0 && file_has(f, "probs")) group = "probs";
    return file_has(f, group) ? group : NULL;
}

/* Reads node i's weights (count of them given by the op table) from its group. */
static fusenet_status read_node(fusenet_model *m, fn_h5 *f, const fn_shape *shapes, int i, int allow_nonfinite,
                                fusenet_error *err) {
    fn_node *n = &m->g.nodes[i];
    fn_wspec specs[FN_MAX_WEIGHTS];
    int count = fusenet__node_wspecs(&m->g, shapes, i, specs);
    char old[FN_NAME_MAX];
    const char *group = file_group(m, f, i, old, sizeof old);
    fusenet_status st = group ? FUSENET_OK
                              : fusenet__error(err, FUSENET_ERR_ARCH, "%s: layer %s vanished", fusenet__h5_path(f),
                                               n->name);
    for (int k = 0; k < count && st == FUSENET_OK; k++) {
        size_t elems = spec_count(&specs[k]);
        n->w[k] = fusenet__malloc(elems * sizeof(float));
        if (!n->w[k])
            st = fusenet__error(err, FUSENET_ERR_NOMEM, "out of memory reading layer %s of %s", n->name,
                                fusenet__h5_path(f));
        specs[k].data = n->w[k];
    }
    if (st == FUSENET_OK) st = fusenet__h5_read_layer(f, group, (size_t)count, specs, allow_nonfinite, err);
    if (st == FUSENET_OK) m->weights[i] = FN_WEIGHTS_LOADED;
    return st;
}

/* Finds the groups of the needed layers; reads them, or with defer marks them pending. */
static fusenet_status load_weights(fusenet_model *m, fn_h5 *f, const unsigned char *needed, int allow_nonfinite,
                                   int defer, fusenet_error *err) {
    fn_shape *shapes = fusenet__calloc((size_t)m->g.n, sizeof *shapes);
    if (!shapes) return fusenet__error(err, FUSENET_ERR_NOMEM, "out of memory loading %s", fusenet__h5_path(f));
    fusenet_status st = fusenet__graph_shapes(&m->g, 224, 224, shapes, err);
    for (int i = 0; st == FUSENET_OK && i < m->g.n; i++) {
        fn_node *n = &m->g.nodes[i];
        fn_wspec specs[FN_MAX_WEIGHTS];
        int count = fusenet__node_wspecs(&m->g, shapes, i, specs);
        if (count == 0 || !needed[i]) continue;
        char old[FN_NAME_MAX];
        const char *group = file_name(m, n->name, old, sizeof old);
        if (!file_group(m, f, i, old, sizeof old)) {
            st = fusenet__error(err, FUSENET_ERR_ARCH, "%s: layer '%s'%s%s%s of %s%s is missing from the file%s",
                                fusenet__h5_path(f), group, group == old ? " (" : "", group == old ? n->name : "",
                                group == old ? ")" : "", fusenet__arch_name(m->arch),
                                m->include_top ? " with top (is this a _notop file?)" : "",
                                group == old ? " (old Keras ResNet50 naming)" : "");
            break;
        }
        if (defer)
            m->weights[i] = FN_WEIGHTS_PENDING;
        else
            st = read_node(m, f, shapes, i, allow_nonfinite, err);
    }
    if (defer && st == FUSENET_OK) {
        m->shapes = shapes;
        m->allow_nonfinite = allow_nonfinite;
    } else {
        fusenet__free(shapes);
    }
    return st;
}

fusenet_status fusenet__model_fetch(fusenet_model *m, int i, fusenet_error *err) {
    if (m->weights[i] != FN_WEIGHTS_PENDING) return FUSENET_OK;
    m->weights[i] = FN_WEIGHTS_ABSENT;
    return read_node(m, m->file, m->shapes, i, m->allow_nonfinite, err);
}

void fusenet__model_release(fusenet_model *m, int i, int refetch) {
    fn_node *n = &m->g.nodes[i];
    for (int k = 0; k < FN_MAX_WEIGHTS; k++) {
        fusenet__free(n->w[k]);
        n->w[k] = NULL;
    }
    m->weights[i] = refetch && m->file && m->weights[i] == FN_WEIGHTS_LOADED ? FN_WEIGHTS_PENDING : FN_WEIGHTS_ABSENT;
}

int fusenet__model_has_weights(const fusenet_model *m, int i) {
    return m->weights[i] != FN_WEIGHTS_ABSENT;
}

/* Keras 3 files name layers by class and counter: the graph's layers, in
 * model.layers order, with their classes. */
static fusenet_status bind_names(const fusenet_model *m, fn_h5 *f, fusenet_error *err) {
    size_t n = (size_t)m->g.n;
    const char **names = fusenet__malloc(2 * n * sizeof *names);
    if (!names) return fusenet__error(err, FUSENET_ERR_NOMEM, "out of memory loading %s", fusenet__h5_path(f));
    for (size_t i = 0; i < n; i++) {
        names[i] = m->g.nodes[i].name;
        names[n + i] = fusenet__op_keras_type(&m->g.nodes[i]);
    }
    fusenet_status st = fusenet__h5_bind(f, n, names, names + n, err);
    fusenet__free(names);
    return st;
}

static fusenet_status model_load(const char *path, const fusenet_model_params *params, int defer,
                                 fusenet_model **out, fusenet_error *err) {
    if (!out) return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "fusenet_model_load: out is NULL");
    *out = NULL;
    if (!path) return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "fusenet_model_load: path is NULL");
    fusenet_model_params defaults = fusenet_model_default_params();
    const fusenet_model_params *p = params ? params : &defaults;
    fusenet_model *m = NULL;
    fn_h5 *f = NULL;
    unsigned char *needed = NULL;
    fusenet_status st = model_new(p, &m, err);
    if (st) return st;
    needed = fusenet__malloc((size_t)m->g.n);
    if (!needed) {
        st = fusenet__error(err, FUSENET_ERR_NOMEM, "out of memory loading %s", path);
        goto done;
    }
    if (p->n_needed) {
        int idx[64];
        if (p->n_needed > 64) {
            st = fusenet__error(err, FUSENET_ERR_INVALID_ARG, "model params: at most 64 needed layers, got %zu",
                          p->n_needed);
            goto done;
        }
        for (size_t i = 0; i < p->n_needed; i++) {
            st = fusenet__graph_lookup(&m->g, p->needed_layers[i], fusenet__arch_name(m->arch), &idx[i], err);
            if (st) goto done;
        }
        fusenet__graph_live(&m->g, idx, (int)p->n_needed, needed);
    } else {
        memset(needed, 1, (size_t)m->g.n);
    }
    st = fusenet__h5_open(path, &f, err);
    if (st == FUSENET_OK) st = fusenet__h5_select(f, p->submodel, err);
    if (st == FUSENET_OK) st = bind_names(m, f, err);
    if (st == FUSENET_OK) st = check_old_naming(m, f, err);
    if (st == FUSENET_OK) st = check_file_kind(m, f, err);
    if (st == FUSENET_OK) st = check_extra_layers(m, f, err);
    if (st == FUSENET_OK) st = load_weights(m, f, needed, p->allow_nonfinite, defer, err);
    if (st == FUSENET_OK && defer) {
        m->file = f; /* the model's now */
        f = NULL;
    }
done:
    fusenet__h5_close(f);
    fusenet__free(needed);
    if (st) {
        fusenet_model_free(m);
        return st;
    }
    *out = m;
    return fusenet__ok(err);
}

fusenet_status fusenet_model_load(const char *path, const fusenet_model_params *params, fusenet_model **out,
                                  fusenet_error *err) {
    return model_load(path, params, 0, out, err);
}

fusenet_status fusenet__model_load_deferred(const char *path, const fusenet_model_params *params, fusenet_model **out,
                                            fusenet_error *err) {
    return model_load(path, params, 1, out, err);
}

fusenet_status fusenet_model_layer_info(const fusenet_model *m, size_t index, int32_t in_h, int32_t in_w,
                                        fusenet_layer_info *out, fusenet_error *err) {
    if (!m || !out) return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "fusenet_model_layer_info: %s is NULL",
                                    m ? "out" : "model");
    if (index >= (size_t)m->g.n)
        return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "layer index %zu out of range (the model has %d layers)",
                        index, m->g.n);
    if (in_h <= 0 || in_w <= 0)
        return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "input size %dx%d: sides must be positive", in_h, in_w);
    if (in_h < FN_MIN_INPUT || in_w < FN_MIN_INPUT || in_h > 16384 || in_w > 16384)
        return fusenet__error(err, FUSENET_ERR_SHAPE, "input size %dx%d outside %d..16384", in_h, in_w,
                        FN_MIN_INPUT);
    if (m->include_top && (in_h != 224 || in_w != 224))
        return fusenet__error(err, FUSENET_ERR_SHAPE, "%s with its top takes exactly 224x224 input, not %dx%d",
                        fusenet__arch_name(m->arch), in_h, in_w);
    fn_shape *shapes = fusenet__calloc((size_t)m->g.n, sizeof *shapes);
    if (!shapes) return fusenet__error(err, FUSENET_ERR_NOMEM, "out of memory");
    fusenet_status st = fusenet__graph_shapes(&m->g, in_h, in_w, shapes, err);
    if (st == FUSENET_OK) {
        const fn_node *n = &m->g.nodes[index];
        const fn_shape *s = &shapes[index];
        out->name = n->name;
        out->type = fusenet__op_keras_type(n);
        out->h = s->flat ? 0 : s->h;
        out->w = s->flat ? 0 : s->w;
        out->c = s->c;
        out->params = fusenet__node_params(&m->g, n, shapes);
    }
    fusenet__free(shapes);
    return st;
}

fusenet_status fusenet_model_find_layer(const fusenet_model *m, const char *name, size_t *index,
                                        fusenet_error *err) {
    if (!m || !name || !index)
        return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "fusenet_model_find_layer: %s is NULL",
                        !m ? "model" : !name ? "name" : "index");
    int i;
    fusenet_status st = fusenet__graph_lookup(&m->g, name, fusenet__arch_name(m->arch), &i, err);
    if (st == FUSENET_OK) *index = (size_t)i;
    return st;
}
