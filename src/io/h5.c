/* h5.c - the Keras weights layouts (see h5.h) read through our own HDF5
 * parser (h5format.c): at open, each layout's resolver fills one layer table
 * (per model of the file: each layer's group and weight paths), and every
 * read goes through that table. Writing is in h5write.c.
 *
 * Nothing read from a file is trusted: counts and lengths are capped, sizes
 * are multiplied with overflow checks, and dims are checked before any read.
 */
#include "h5.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "h5format.h"
#include "keras_zip.h"

static FN_CHECKED fusenet_status nomem(fusenet_error *err, const char *path) {
    return fusenet__error(err, FUSENET_ERR_NOMEM, "%s: out of memory", path);
}

/* ---- string lists -------------------------------------------------------- */

typedef struct namelist {
    char **v;
    size_t n, cap;
} namelist;

static void namelist_free(namelist *l) {
    for (size_t i = 0; i < l->n; i++) fusenet__free(l->v[i]);
    fusenet__free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

/* Appends s[0..len) to the list of the file at `path`. */
static FN_CHECKED fusenet_status namelist_push(namelist *l, const char *s, size_t len, const char *path,
                                               fusenet_error *err) {
    char **v = fusenet__grow(l->v, l->n, &l->cap, sizeof *v, 16);
    if (!v) return nomem(err, path);
    l->v = v;
    char *p = fusenet__malloc(len + 1);
    if (!p) return nomem(err, path);
    memcpy(p, s, len);
    p[len] = '\0';
    l->v[l->n++] = p;
    return FUSENET_OK;
}

/* Context for messages: "FILE: <what>attribute NAME: ...", what being "" or
 * "layer L ". */
typedef struct actx {
    fn_hdf *file;
    const char *layer; /* NULL for the root */
} actx;

#define AFMT "%s: %s%s%sattribute %s: "
#define AARG(c, a)                                                                                                \
    fusenet__hdf_path((c)->file), (c)->layer ? "layer " : "", (c)->layer ? (c)->layer : "", (c)->layer ? " " : "", (a)

/* "layer L attribute A" or "attribute A", the context of parser messages. */
static void attr_what(char *buf, size_t size, const actx *c, const char *aname) {
    snprintf(buf, size, "%s%s%sattribute %s", c->layer ? "layer " : "", c->layer ? c->layer : "",
             c->layer ? " " : "", aname);
}

/* Reads one string attribute (fixed- or variable-length, scalar or 1-D) and
 * appends its entries to out. */
static FN_CHECKED fusenet_status read_string_attr(const fn_hdf_attr *a, const char *aname, const actx *c, namelist *out,
                                                  fusenet_error *err) {
    const fn_hdf_shape *s = fusenet__hdf_attr_shape(a);
    if (s->count > 0 && s->rank > 1)
        return fusenet__error(err, FUSENET_ERR_FORMAT, AFMT "%d-D, expected a 1-D list of names", AARG(c, aname),
                        s->rank);
    if (s->cls != FN_HDF_STRING && s->cls != FN_HDF_VLEN_STRING) {
        if (s->count == 0) return FUSENET_OK; /* an empty list (h5py writes [] as float64) */
        return fusenet__error(err, FUSENET_ERR_FORMAT, AFMT "%s array, not a list of strings", AARG(c, aname),
                              fusenet__hdf_class_name(s->raw_class));
    }
    if (s->count > FN_H5_MAX_NAMES || out->n + s->count > FN_H5_MAX_NAMES)
        return fusenet__error(err, FUSENET_ERR_FORMAT, AFMT "more than %d names", AARG(c, aname), FN_H5_MAX_NAMES);
    char what[FN_H5_MAX_NAME_LEN + 64], buf[FN_H5_MAX_NAME_LEN + 1];
    attr_what(what, sizeof what, c, aname);
    for (size_t i = 0; i < s->count; i++) {
        size_t len;
        fusenet_status st = fusenet__hdf_attr_string(c->file, a, i, what, buf, sizeof buf, &len, err);
        if (st != FUSENET_OK) return st;
        if (memchr(buf, '\0', len))
            return fusenet__error(err, FUSENET_ERR_FORMAT, AFMT "name contains a NUL byte", AARG(c, aname));
        if ((st = namelist_push(out, buf, len, fusenet__hdf_path(c->file), err)) != FUSENET_OK) return st;
    }
    return FUSENET_OK;
}

/* Reads the list `base`, or when absent the chunks base0, base1, ... until one
 * is missing. *found tells whether any of them exists. */
static FN_CHECKED fusenet_status read_names(fn_hdf_obj obj, const char *base, const actx *c, namelist *out, int *found,
                                            fusenet_error *err) {
    *found = 0;
    for (size_t k = 0;; k++) {
        char name[64], what[FN_H5_MAX_NAME_LEN + 64];
        if (k == 0) snprintf(name, sizeof name, "%s", base);
        else snprintf(name, sizeof name, "%s%zu", base, k - 1);
        attr_what(what, sizeof what, c, name);
        fn_hdf_attr *a;
        fusenet_status st = fusenet__hdf_attr_find(c->file, obj, name, what, &a, err);
        if (st != FUSENET_OK) return st;
        if (!a) {
            if (k == 0) continue; /* no `base`: try the chunks */
            return FUSENET_OK;
        }
        if (k > FN_H5_MAX_NAMES) {
            fusenet__hdf_attr_free(a);
            return fusenet__error(err, FUSENET_ERR_FORMAT, AFMT "more than %d chunks", AARG(c, base), FN_H5_MAX_NAMES);
        }
        *found = 1;
        st = read_string_attr(a, name, c, out, err);
        fusenet__hdf_attr_free(a);
        if (st != FUSENET_OK || k == 0) return st;
    }
}

/* ---- the layer table -------------------------------------------------------- */

#define WHERE_LEN 2048 /* a Keras 3 group path, for messages */

/* One Keras layer of a model in the file: where its weights are. */
typedef struct h5layer {
    char *name;       /* Keras layer name (Keras 3 without names: the group name, until bound) */
    char *key;        /* Keras 3: the group under layers/, snake-cased class and counter; NULL otherwise */
    char *where;      /* Keras 3: the group's path, for messages; NULL otherwise */
    fn_hdf_obj group; /* the group the weight paths are relative to */
    int defect;       /* legacy, reported when the layer is read: 1 no group, 2 no weight_names, 3 broken */
    fusenet_error *broken; /* defect 3: what reading its group or weight_names failed with */
    int named;        /* Keras 3: its vars carry a name attribute */
    size_t sub;       /* a nested model: index of its table in fn_h5.m (0: a plain layer) */
    namelist w;       /* dataset paths relative to group */
} h5layer;

/* One model of the file: the top level (m[0]) or a nested sub-model. */
typedef struct h5model {
    char *name;    /* the sub-model's Keras name; NULL for the top level */
    int by_role;   /* weights matched by role name (kernel, bias, ...) instead of by order */
    int unnamed;   /* Keras 3.0-3.5: some layers have no name attribute; fusenet__h5_bind replays the order */
    char *group;   /* Keras 3: the nested model's group name (functional_1), used when guessed names clash */
    int guessed;   /* its name comes from its shape */
    h5layer *v;
    size_t n, cap;
} h5model;

struct fn_h5 {
    fn_hdf *file;
    const char *format; /* for messages */
    h5model *m;         /* m[0]: the top level, then sub-models */
    size_t nm, mcap;
    size_t sel;         /* the model read: fusenet__h5_select */
    char top_name[FN_H5_MAX_NAME_LEN + 1]; /* Keras 3: the model's own name (root vars), or "" */
};

static void model_free(h5model *m) {
    for (size_t i = 0; i < m->n; i++) {
        fusenet__free(m->v[i].name);
        fusenet__free(m->v[i].key);
        fusenet__free(m->v[i].where);
        fusenet__free(m->v[i].broken);
        namelist_free(&m->v[i].w);
    }
    fusenet__free(m->v);
    fusenet__free(m->name);
    fusenet__free(m->group);
}

/* Appends a model named `name` (NULL: the top level); *index gets its place. */
static FN_CHECKED fusenet_status add_model(fn_h5 *f, const char *name, size_t *index, fusenet_error *err) {
    const char *path = fusenet__h5_path(f);
    if (f->nm >= 64) return fusenet__error(err, FUSENET_ERR_FORMAT, "%s: more than 64 nested models", path);
    h5model *v = fusenet__grow(f->m, f->nm, &f->mcap, sizeof *v, 4);
    if (!v) return nomem(err, path);
    f->m = v;
    h5model *m = &f->m[f->nm];
    memset(m, 0, sizeof *m);
    if (name && !(m->name = fusenet__strdup(name))) return nomem(err, path);
    *index = f->nm++;
    return FUSENET_OK;
}

/* Appends a layer to model mi; *out points to it (valid until the next add). */
static FN_CHECKED fusenet_status add_layer(fn_h5 *f, size_t mi, const char *name, fn_hdf_obj group, h5layer **out,
                                           fusenet_error *err) {
    h5model *m = &f->m[mi];
    const char *path = fusenet__h5_path(f);
    if (m->n >= FN_H5_MAX_NAMES) return fusenet__error(err, FUSENET_ERR_FORMAT, "%s: more than %d layers", path,
                                                       FN_H5_MAX_NAMES);
    h5layer *v = fusenet__grow(m->v, m->n, &m->cap, sizeof *v, 64);
    if (!v) return nomem(err, path);
    m->v = v;
    h5layer *l = &m->v[m->n];
    memset(l, 0, sizeof *l);
    if (!(l->name = fusenet__strdup(name))) return nomem(err, path);
    l->group = group;
    m->n++;
    *out = l;
    return FUSENET_OK;
}

static h5layer *find_layer(h5model *m, const char *name) {
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->v[i].name, name) == 0) return &m->v[i];
    return NULL;
}

/* The sub-models' names, "resnet50, vgg16", for messages. */
static void list_submodels(const fn_h5 *f, char *buf, size_t size) {
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 1; i < f->nm && len < size; i++)
        len += (size_t)snprintf(buf + len, size - len, "%s%s", i > 1 ? ", " : "", f->m[i].name);
}

/* The group `name` of g; *found 0 if there is none or it is not a group. */
static FN_CHECKED fusenet_status subgroup(fn_h5 *f, fn_hdf_obj g, const char *name, const char *what, fn_hdf_obj *out,
                                          int *found, fusenet_error *err) {
    fusenet_status st = fusenet__hdf_lookup(f->file, g, name, what, out, found, err);
    fn_hdf_kind kind = FN_HDF_OTHER;
    if (st == FUSENET_OK && *found) st = fusenet__hdf_kind_of(f->file, *out, what, &kind, err);
    if (st == FUSENET_OK && kind != FN_HDF_GROUP) *found = 0;
    return st;
}

/* The last part of a weight path without its ":N" suffix: "conv1_conv/kernel:0" -> "kernel". */
static void weight_role(const char *wname, char *buf, size_t size) {
    const char *slash = strrchr(wname, '/');
    const char *p = slash ? slash + 1 : wname;
    size_t len = strlen(p);
    const char *colon = strrchr(p, ':');
    if (colon && colon[1] && strspn(colon + 1, "0123456789") == strlen(colon + 1)) len = (size_t)(colon - p);
    snprintf(buf, size, "%.*s", (int)len, p);
}

/* The part before the last of a weight path: the layer of a nested model's
 * weight ("conv1_conv/kernel:0" -> "conv1_conv"); 0 if it has no such part. */
static int weight_layer(const char *wname, char *buf, size_t size) {
    const char *last = strrchr(wname, '/');
    if (!last) return 0;
    const char *start = last;
    while (start > wname && start[-1] != '/') start--;
    snprintf(buf, size, "%.*s", (int)(last - start), start);
    return last > start;
}

/* ---- legacy Keras HDF5 (keras/saving/legacy/hdf5_format.py) ------------------- */

static FN_CHECKED fusenet_status has_layer_names(fn_hdf *file, fn_hdf_obj g, int *yes, fusenet_error *err) {
    *yes = 0;
    fn_hdf_attr *a = NULL;
    fusenet_status st = fusenet__hdf_attr_find(file, g, "layer_names", "root group", &a, err);
    if (st == FUSENET_OK && !a) st = fusenet__hdf_attr_find(file, g, "layer_names0", "root group", &a, err);
    *yes = a != NULL;
    fusenet__hdf_attr_free(a);
    return st;
}

/* A legacy entry whose weights belong to layers of other names
 * ("model_weights/resnet50" with "conv1_conv/kernel:0", as tf.keras 2's
 * save_weights_to_hdf5_group writes a nested model: the model's
 * trainable_weights then non_trainable_weights, an order that changes when
 * the sub-model is frozen) becomes a sub-model of its own, matched by role. */
static FN_CHECKED fusenet_status legacy_nested(fn_h5 *f, size_t entry, fusenet_error *err) {
    h5layer *e = &f->m[0].v[entry];
    char lname[FN_H5_MAX_NAME_LEN + 1];
    int nested = 0;
    for (size_t i = 0; i < e->w.n && !nested; i++)
        nested = weight_layer(e->w.v[i], lname, sizeof lname) && strcmp(lname, e->name) != 0;
    if (!nested) return FUSENET_OK;
    for (size_t i = 1; i < f->nm; i++)
        if (strcmp(f->m[i].name, e->name) == 0)
            return fusenet__error(err, FUSENET_ERR_FORMAT, "%s: two sub-models are named '%s'", fusenet__h5_path(f),
                                  e->name);
    size_t mi;
    fusenet_status st = add_model(f, e->name, &mi, err);
    if (st != FUSENET_OK) return st;
    e = &f->m[0].v[entry];
    e->sub = mi;
    f->m[mi].by_role = 1;
    for (size_t i = 0; i < e->w.n && st == FUSENET_OK; i++) {
        const char *wn = e->w.v[i];
        if (!weight_layer(wn, lname, sizeof lname))
            return fusenet__error(err, FUSENET_ERR_FORMAT, "%s: sub-model %s: weight '%s' names no layer",
                                  fusenet__h5_path(f), e->name, wn);
        h5layer *l = find_layer(&f->m[mi], lname);
        if (!l) st = add_layer(f, mi, lname, e->group, &l, err);
        if (st == FUSENET_OK) st = namelist_push(&l->w, wn, strlen(wn), fusenet__h5_path(f), err);
        e = &f->m[0].v[entry];
    }
    return st;
}

/* Layer l of the top level: its group under root and its weight_names. */
static FN_CHECKED fusenet_status legacy_layer(fn_h5 *f, fn_hdf_obj root, h5layer *l, fusenet_error *err) {
    const char *name = l->name;
    int has = 0;
    if (!strchr(name, '/') && strcmp(name, ".") != 0) {
        char what[FN_H5_MAX_NAME_LEN + 64];
        snprintf(what, sizeof what, "layer group '%s'", name);
        fusenet_status st = fusenet__hdf_lookup(f->file, root, name, "root group", &l->group, &has, err);
        fn_hdf_kind kind = FN_HDF_OTHER;
        if (st == FUSENET_OK && has) st = fusenet__hdf_kind_of(f->file, l->group, what, &kind, err);
        if (st != FUSENET_OK) return st;
        if (has && kind != FN_HDF_GROUP)
            return fusenet__error(err, FUSENET_ERR_FORMAT, "%s: '%s' is not a group", fusenet__h5_path(f), name);
    }
    if (!has) {
        l->defect = 1;
        return FUSENET_OK;
    }
    actx lc = {f->file, l->name};
    int wfound = 0;
    fusenet_status st = read_names(l->group, "weight_names", &lc, &l->w, &wfound, err);
    if (st == FUSENET_OK && !wfound) l->defect = 2;
    return st;
}

/* Every layer of layer_names with its weight_names. A layer whose group or
 * weight_names cannot be read is reported when that layer is read (a load
 * that needs only other layers goes on). */
static FN_CHECKED fusenet_status legacy_table(fn_h5 *f, fn_hdf_obj root, fusenet_error *err) {
    const char *path = fusenet__h5_path(f);
    actx c = {f->file, NULL};
    namelist names = {0};
    int found = 0;
    size_t top;
    fusenet_status st = add_model(f, NULL, &top, err);
    if (st == FUSENET_OK) st = read_names(root, "layer_names", &c, &names, &found, err);
    for (size_t i = 0; st == FUSENET_OK && i < names.n; i++) {
        if (names.v[i][0] == '\0') {
            st = fusenet__error(err, FUSENET_ERR_FORMAT, "%s: layer_names entry %zu is empty", path, i);
            break;
        }
        h5layer *l = NULL;
        if ((st = add_layer(f, top, names.v[i], 0, &l, err)) != FUSENET_OK) break;
        fusenet_error e;
        if (legacy_layer(f, root, l, &e) != FUSENET_OK) {
            if (e.status == FUSENET_ERR_NOMEM) st = fusenet__error(err, e.status, "%s", e.message);
            else if (!(l->broken = fusenet__malloc(sizeof e))) st = nomem(err, path);
            else {
                *l->broken = e;
                l->defect = 3;
                namelist_free(&l->w);
            }
            continue;
        }
        st = legacy_nested(f, f->m[top].n - 1, err);
    }
    namelist_free(&names);
    return st;
}

/* ---- Keras 3 (keras/src/saving/saving_lib.py) ------------------------------------ *
 * save_weights_only / _save_state write each saveable's variables through
 * H5IOStore.make(inner_path) into the group `<inner_path>/vars` as datasets
 * "0", "1", ... (Layer.save_own_variables: _trainable_variables then
 * _non_trainable_variables: Conv2D kernel, bias; BatchNormalization gamma,
 * beta, moving_mean, moving_variance); since Keras 3.6 _save_state passes
 * metadata {"name": saveable.name}, an attribute `name` of that vars group.
 * _walk_saveable yields a Functional's "layers" first, and
 * _save_container_state names each layer of that list by
 * naming.to_snake_case(class name) plus "_N" from its second of a class on:
 * layers/conv2d, layers/conv2d_1, ... in model.layers order. A nested model
 * is a layer with layers of its own: layers/functional/layers/... Keras 2.13
 * to 2.15 wrote `_layer_checkpoint_dependencies` for `layers`
 * (H5IOStore.get's fallback). */

/* naming.to_snake_case: drop non-word characters, "_" before a capital that
 * starts a lower-case run ((.)([A-Z][a-z]+)), then between a lower-case
 * letter and a capital (([a-z])([A-Z])), lower-case. "ZeroPadding2D" ->
 * "zero_padding2d". */
void fusenet__keras_snake_case(const char *cls, char *out, size_t size) {
    char a[256], b[512];
    size_t n = 0, m = 0;
    for (const char *p = cls; *p && n + 1 < sizeof a; p++)
        if (isalnum((unsigned char)*p) || *p == '_') a[n++] = *p;
    a[n] = '\0';
    for (size_t i = 0; i < n && m + 3 < sizeof b;) {
        if (i + 2 < n + 1 && i + 1 < n && isupper((unsigned char)a[i + 1]) && i + 2 < n &&
            islower((unsigned char)a[i + 2])) {
            b[m++] = a[i];
            b[m++] = '_';
            b[m++] = a[i + 1];
            for (i += 2; i < n && islower((unsigned char)a[i]) && m + 1 < sizeof b; i++) b[m++] = a[i];
        } else {
            b[m++] = a[i++];
        }
    }
    b[m] = '\0';
    size_t k = 0;
    for (size_t i = 0; i < m && k + 2 < size; i++) {
        out[k++] = (char)tolower((unsigned char)b[i]);
        if (islower((unsigned char)b[i]) && i + 1 < m && isupper((unsigned char)b[i + 1]) && k + 2 < size)
            out[k++] = '_';
    }
    if (size) out[k < size ? k : size - 1] = '\0';
}

/* "conv2d_12" -> class part "conv2d" (length returned), counter 12; "conv2d" -> 0. */
static size_t key_class(const char *key, long *counter) {
    size_t len = strlen(key);
    const char *us = strrchr(key, '_');
    *counter = 0;
    if (us && us[1] && strspn(us + 1, "0123456789") == strlen(us + 1) && (us[1] != '0' || !us[2]) &&
        strlen(us + 1) < 9) {
        *counter = strtol(us + 1, NULL, 10);
        return (size_t)(us - key);
    }
    return len;
}

/* A dataset name "0", "1", ... of a vars group: its index, or -1. */
static long var_index(const char *name) {
    size_t len = strlen(name);
    if (len == 0 || len > 6 || strspn(name, "0123456789") != len || (name[0] == '0' && len > 1)) return -1;
    return strtol(name, NULL, 10);
}

/* The `name` attribute of a vars group, if any, into buf. */
static FN_CHECKED fusenet_status vars_name(fn_h5 *f, fn_hdf_obj vars, const char *where, char *buf, size_t size,
                                           int *has, fusenet_error *err) {
    char what[WHERE_LEN + 32];
    snprintf(what, sizeof what, "%.*s/vars attribute name", WHERE_LEN, where);
    fn_hdf_attr *a = NULL;
    *has = 0;
    fusenet_status st = fusenet__hdf_attr_find(f->file, vars, "name", what, &a, err);
    if (st != FUSENET_OK || !a) return st;
    const fn_hdf_shape *s = fusenet__hdf_attr_shape(a);
    size_t len = 0;
    if ((s->cls != FN_HDF_STRING && s->cls != FN_HDF_VLEN_STRING) || s->count != 1)
        st = fusenet__error(err, FUSENET_ERR_FORMAT, "%s: %s: not one string", fusenet__h5_path(f), what);
    if (st == FUSENET_OK) st = fusenet__hdf_attr_string(f->file, a, 0, what, buf, size, &len, err);
    if (st == FUSENET_OK && (len == 0 || memchr(buf, '\0', len) || strchr(buf, '/')))
        st = fusenet__error(err, FUSENET_ERR_FORMAT, "%s: %s: '%s' is not a layer name", fusenet__h5_path(f), what,
                            buf);
    fusenet__hdf_attr_free(a);
    *has = st == FUSENET_OK;
    return st;
}

/* The datasets of a vars group, which must be exactly "0" .. "k-1". */
static FN_CHECKED fusenet_status vars_list(fn_h5 *f, fn_hdf_obj vars, const char *where, namelist *w,
                                           fusenet_error *err) {
    char **names = NULL, what[WHERE_LEN + 32];
    size_t n = 0;
    snprintf(what, sizeof what, "%.*s/vars", WHERE_LEN, where);
    fusenet_status st = fusenet__hdf_children(f->file, vars, what, &names, &n, err);
    if (st != FUSENET_OK) return st;
    if (n > 64) st = fusenet__error(err, FUSENET_ERR_FORMAT, "%s: %s holds %zu variables", fusenet__h5_path(f), what, n);
    unsigned char seen[64] = {0};
    for (size_t i = 0; st == FUSENET_OK && i < n; i++) {
        long k = var_index(names[i]);
        if (k < 0 || (size_t)k >= n || seen[k])
            st = fusenet__error(err, FUSENET_ERR_FORMAT, "%s: %s holds '%s': expected variables 0..%zu",
                                fusenet__h5_path(f), what, names[i], n - 1);
        else seen[k] = 1;
    }
    for (size_t k = 0; st == FUSENET_OK && k < n; k++) {
        char num[24];
        snprintf(num, sizeof num, "%zu", k);
        st = namelist_push(w, num, strlen(num), fusenet__h5_path(f), err);
    }
    fusenet__hdf_names_free(names, n);
    return st;
}

/* What a nested model without name attributes is, from its shape: a tree
 * with BatchNormalization is a ResNet, one without a VGG, and its count of
 * Conv2D layers with weights (at most: a backbone cut at its tap has fewer)
 * picks the applications' default name. */
static const char *guess_model(const h5model *m) {
    static const struct {
        int bn, convs;
        const char *name;
    } shapes[] = {{1, 53, "resnet50"}, {1, 104, "resnet101"}, {1, 155, "resnet152"}, {0, 13, "vgg16"}, {0, 16, "vgg19"}};
    int convs = 0, bn = 0;
    for (size_t i = 0; i < m->n; i++) {
        const char *key = m->v[i].key;
        long k;
        size_t len = key ? key_class(key, &k) : 0;
        if (len == 6 && strncmp(key, "conv2d", 6) == 0 && m->v[i].w.n > 0) convs++;
        if (len == 19 && strncmp(key, "batch_normalization", 19) == 0) bn = 1;
    }
    for (size_t i = 0; convs > 0 && i < sizeof shapes / sizeof shapes[0]; i++)
        if (shapes[i].bn == bn && convs <= shapes[i].convs) return shapes[i].name;
    return NULL;
}

static FN_CHECKED fusenet_status keras3_model(fn_h5 *f, fn_hdf_obj g, const char *where, const char *name, int depth,
                                              size_t *index, fusenet_error *err);

/* Layer `key` of the layers group `lg` (path where/key) into model mi. */
static FN_CHECKED fusenet_status keras3_layer(fn_h5 *f, size_t mi, fn_hdf_obj lg, const char *where, const char *key,
                                              int depth, fusenet_error *err) {
    const char *path = fusenet__h5_path(f);
    char at[WHERE_LEN + 2], lname[FN_H5_MAX_NAME_LEN + 1];
    if (strlen(where) + 1 + strlen(key) > WHERE_LEN)
        return fusenet__error(err, FUSENET_ERR_FORMAT, "%s: %.200s/%.200s...: path too long", path, where, key);
    snprintf(at, sizeof at, "%.*s/%.*s", WHERE_LEN / 2, where, WHERE_LEN / 2, key);
    fn_hdf_obj cg, vars = 0, inner;
    int found, has_vars = 0, has_name = 0, has_layers = 0;
    fusenet_status st = subgroup(f, lg, key, at, &cg, &found, err);
    if (st == FUSENET_OK && !found) return fusenet__error(err, FUSENET_ERR_FORMAT, "%s: %s is not a group", path, at);
    if (st == FUSENET_OK) st = subgroup(f, cg, "vars", at, &vars, &has_vars, err);
    if (st == FUSENET_OK && has_vars) st = vars_name(f, vars, at, lname, sizeof lname, &has_name, err);
    if (st == FUSENET_OK) st = subgroup(f, cg, "layers", at, &inner, &has_layers, err);
    if (st == FUSENET_OK && !has_layers) st = subgroup(f, cg, "_layer_checkpoint_dependencies", at, &inner, &has_layers, err);
    if (st != FUSENET_OK) return st;
    if (!has_name) snprintf(lname, sizeof lname, "%s", key);
    size_t sub = 0;
    if (has_layers) {
        if ((st = keras3_model(f, cg, at, has_name ? lname : NULL, depth + 1, &sub, err)) != FUSENET_OK) return st;
        if (!has_name && f->m[sub].name) snprintf(lname, sizeof lname, "%s", f->m[sub].name);
    }
    h5layer *l;
    if ((st = add_layer(f, mi, lname, vars, &l, err)) != FUSENET_OK) return st;
    l->sub = sub;
    l->named = has_name;
    if (!(l->key = fusenet__strdup(key)) || !(l->where = fusenet__strdup(at))) return nomem(err, path);
    if (!has_name) f->m[mi].unnamed = 1;
    if (has_vars && !has_layers) st = vars_list(f, vars, at, &l->w, err);
    return st;
}

/* The model saved at group g (the root, or a nested model's group): one
 * table of its layers/ (Keras 2.13-2.15: _layer_checkpoint_dependencies). */
static FN_CHECKED fusenet_status keras3_model(fn_h5 *f, fn_hdf_obj g, const char *where, const char *name, int depth,
                                              size_t *index, fusenet_error *err) {
    const char *path = fusenet__h5_path(f);
    if (depth > 8) return fusenet__error(err, FUSENET_ERR_FORMAT, "%s: %s: models nested more than 8 deep", path, where);
    char at[WHERE_LEN + 40];
    fn_hdf_obj lg;
    int found;
    const char *lname = "layers";
    fusenet_status st = subgroup(f, g, lname, where, &lg, &found, err);
    if (st == FUSENET_OK && !found) st = subgroup(f, g, lname = "_layer_checkpoint_dependencies", where, &lg, &found, err);
    if (st != FUSENET_OK) return st;
    snprintf(at, sizeof at, "%.*s%s%s", WHERE_LEN, where, where[0] ? "/" : "", lname);
    size_t mi;
    if ((st = add_model(f, name, &mi, err)) != FUSENET_OK) return st;
    *index = mi;
    char **keys = NULL;
    size_t n = 0;
    if ((st = fusenet__hdf_children(f->file, lg, at, &keys, &n, err)) != FUSENET_OK) return st;
    for (size_t i = 0; i < n && st == FUSENET_OK; i++) st = keras3_layer(f, mi, lg, at, keys[i], depth, err);
    fusenet__hdf_names_free(keys, n);
    const char *slash = strrchr(where, '/');
    if (st == FUSENET_OK && depth > 0 && !(f->m[mi].group = fusenet__strdup(slash ? slash + 1 : where)))
        return nomem(err, path);
    if (st == FUSENET_OK && !name && depth > 0) { /* a nested model without name: by its shape */
        const char *guess = guess_model(&f->m[mi]);
        f->m[mi].guessed = guess != NULL;
        if (!(f->m[mi].name = fusenet__strdup(guess ? guess : f->m[mi].group))) return nomem(err, path);
    }
    return st;
}

/* ---- open / close -------------------------------------------------------- */

/* Which layout the file has, by its content: legacy layer_names at the root
 * or under model_weights (a full-model save), else a Keras 3 layers/ group. */
static FN_CHECKED fusenet_status build_tables(fn_h5 *f, fusenet_error *err) {
    const char *path = fusenet__h5_path(f);
    fn_hdf_obj root = fusenet__hdf_root(f->file), sub;
    int yes = 0, found = 0;
    fusenet_status st = has_layer_names(f->file, root, &yes, err);
    if (st == FUSENET_OK && !yes) { /* a full-model file (model.save): the weights are under model_weights */
        st = subgroup(f, root, "model_weights", "root group", &sub, &found, err);
        if (st == FUSENET_OK && found) st = has_layer_names(f->file, sub, &yes, err);
        if (yes) root = sub;
    }
    if (st != FUSENET_OK) return st;
    if (yes) {
        f->format = "legacy Keras HDF5";
        return legacy_table(f, root, err);
    }
    int k3 = 0;
    if ((st = subgroup(f, root, "layers", "root group", &sub, &k3, err)) != FUSENET_OK) return st;
    if (!k3 && (st = subgroup(f, root, "_layer_checkpoint_dependencies", "root group", &sub, &k3, err)) != FUSENET_OK)
        return st;
    if (!k3)
        return fusenet__error(err, FUSENET_ERR_FORMAT,
                              "%s: not a Keras weights file (no layer_names attribute), nor a Keras 3 one (no layers group)", path);
    f->format = "Keras 3";
    fn_hdf_obj vars;
    int has_vars = 0, has_name = 0;
    st = subgroup(f, root, "vars", "root group", &vars, &has_vars, err);
    if (st == FUSENET_OK && has_vars) st = vars_name(f, vars, "", f->top_name, sizeof f->top_name, &has_name, err);
    if (st != FUSENET_OK) return st;
    if (!has_name) f->top_name[0] = '\0';
    size_t top;
    st = keras3_model(f, root, "", NULL, 0, &top, err);
    for (size_t i = 1; st == FUSENET_OK && i < f->nm; i++) /* two shapes alike: their group names instead */
        for (size_t j = 1; j < f->nm; j++)
            if (j != i && f->m[i].guessed && strcmp(f->m[i].name, f->m[j].name) == 0) f->m[i].guessed = 2;
    for (size_t i = 1; st == FUSENET_OK && i < f->nm; i++) {
        if (f->m[i].guessed != 2) continue;
        char *g = fusenet__strdup(f->m[i].group);
        if (!g) return nomem(err, path);
        fusenet__free(f->m[i].name);
        f->m[i].name = g;
    }
    for (size_t i = 1; st == FUSENET_OK && i < f->nm; i++)
        for (size_t j = i + 1; j < f->nm; j++)
            if (strcmp(f->m[i].name, f->m[j].name) == 0)
                return fusenet__error(err, FUSENET_ERR_FORMAT, "%s: two sub-models are named '%s'", path, f->m[i].name);
    return st;
}

static FN_CHECKED fusenet_status open_impl(const char *path, fn_h5 **out, fusenet_error *err) {
    fn_h5 *f = fusenet__calloc(1, sizeof *f);
    if (!f) return nomem(err, path);
    fusenet_status st = fusenet__zip_is_zip(path) ? fusenet__zip_open_h5(path, &f->file, err) /* .keras */
                                                  : fusenet__hdf_open(path, &f->file, err);
    if (st == FUSENET_OK) st = build_tables(f, err);
    if (st != FUSENET_OK) {
        fusenet__h5_close(f);
        return st;
    }
    *out = f;
    return FUSENET_OK;
}

fusenet_status fusenet__h5_open(const char *path, fn_h5 **out, fusenet_error *err) {
    if (out) *out = NULL;
    if (!path || !out) return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "fusenet__h5_open: NULL argument");
    fusenet_status st = open_impl(path, out, err);
    if (st == FUSENET_OK) fusenet__ok(err);
    return st;
}

void fusenet__h5_close(fn_h5 *f) {
    if (!f) return;
    fusenet__hdf_close(f->file);
    for (size_t i = 0; i < f->nm; i++) model_free(&f->m[i]);
    fusenet__free(f->m);
    fusenet__free(f);
}

const char *fusenet__h5_path(const fn_h5 *f) { return f ? fusenet__hdf_path(f->file) : NULL; }

size_t fusenet__h5_submodel_count(const fn_h5 *f) { return f && f->nm ? f->nm - 1 : 0; }

const char *fusenet__h5_submodel_name(const fn_h5 *f, size_t i) {
    return f && i + 1 < f->nm ? f->m[i + 1].name : NULL;
}

/* 1 if the top level has a layer with weights of its own. */
static int top_has_weights(const fn_h5 *f) {
    for (size_t i = 0; i < f->m[0].n; i++)
        if (!f->m[0].v[i].sub && (f->m[0].v[i].w.n > 0 || f->m[0].v[i].defect)) return 1;
    return 0;
}

fusenet_status fusenet__h5_select(fn_h5 *f, const char *submodel, fusenet_error *err) {
    if (!f) return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "fusenet__h5_select: NULL argument");
    const char *path = fusenet__h5_path(f);
    char subs[512];
    list_submodels(f, subs, sizeof subs);
    if (submodel && f->top_name[0] && strcmp(submodel, f->top_name) == 0) { /* the model itself, by name */
        f->sel = 0;
        return fusenet__ok(err);
    }
    if (submodel) {
        for (size_t i = 1; i < f->nm; i++)
            if (strcmp(f->m[i].name, submodel) == 0) {
                f->sel = i;
                return fusenet__ok(err);
            }
        if (f->nm < 2)
            return fusenet__error(err, FUSENET_ERR_ARCH, "%s: no sub-model '%s': the file holds one model, no sub-models",
                                  path, submodel);
        return fusenet__error(err, FUSENET_ERR_ARCH, "%s: no sub-model '%s'; the file holds: %s", path, submodel, subs);
    }
    f->sel = 0;
    if (f->nm == 2 && !top_has_weights(f)) f->sel = 1; /* a model wrapping one backbone */
    else if (f->nm > 2 && !top_has_weights(f))
        return fusenet__error(err, FUSENET_ERR_ARCH,
                              "%s holds %zu sub-models (%s): pick one (the model params' submodel, or FILE#NAME "
                              "in the CLI)",
                              path, f->nm - 1, subs);
    return fusenet__ok(err);
}

const char *fusenet__h5_selected(const fn_h5 *f) { return f ? f->m[f->sel].name : NULL; }

size_t fusenet__h5_layer_count(const fn_h5 *f) { return f && f->nm ? f->m[f->sel].n : 0; }

const char *fusenet__h5_layer_name(const fn_h5 *f, size_t i) {
    return f && f->nm && i < f->m[f->sel].n ? f->m[f->sel].v[i].name : NULL;
}

fusenet_status fusenet__h5_bind(fn_h5 *f, size_t n, const char *const *names, const char *const *classes,
                                fusenet_error *err) {
    if (!f || (n && (!names || !classes)))
        return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "fusenet__h5_bind: NULL argument");
    h5model *m = &f->m[f->sel];
    const char *path = fusenet__h5_path(f);
    if (!m->n || !m->v[0].key) return fusenet__ok(err); /* legacy: named by the file */
    if (m->unnamed) { /* replaying counters over another family's tree would bind nonsense: say what it is */
        size_t graph_bn = 0, file_bn = 0, file_convs = 0;
        for (size_t i = 0; i < n; i++) graph_bn += strcmp(classes[i], "BatchNormalization") == 0;
        for (size_t j = 0; j < m->n; j++) {
            long c;
            size_t len = key_class(m->v[j].key, &c);
            file_bn += len == 19 && strncmp(m->v[j].key, "batch_normalization", 19) == 0;
            file_convs += len == 6 && strncmp(m->v[j].key, "conv2d", 6) == 0;
        }
        if (file_convs && (graph_bn > 0) != (file_bn > 0))
            return fusenet__error(err, FUSENET_ERR_ARCH,
                                  "%s: the %s%s%s (Keras 3, no layer names) has %zu Conv2D and %zu BatchNormalization "
                                  "layers: %s, not the network read (%zu BatchNormalization layers)",
                                  path, m->name ? "sub-model '" : "model", m->name ? m->name : "", m->name ? "'" : "",
                                  file_convs, file_bn, file_bn ? "a ResNet" : "a VGG", graph_bn);
    }
    /* Replay _save_container_state's counters over the model's layers. */
    struct {
        char cls[64];
        long count;
    } used[32];
    size_t nused = 0;
    for (size_t i = 0; i < n; i++) {
        char cls[64], key[96];
        fusenet__keras_snake_case(classes[i], cls, sizeof cls);
        size_t u = 0;
        while (u < nused && strcmp(used[u].cls, cls) != 0) u++;
        if (u == nused) {
            if (nused == 32) return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "fusenet__h5_bind: too many classes");
            snprintf(used[nused].cls, sizeof used[nused].cls, "%s", cls);
            used[nused++].count = -1;
        }
        long k = ++used[u].count;
        if (k == 0) snprintf(key, sizeof key, "%s", cls);
        else snprintf(key, sizeof key, "%s_%ld", cls, k);
        h5layer *byname = find_layer(m, names[i]), *bykey = NULL;
        for (size_t j = 0; j < m->n && !bykey; j++)
            if (strcmp(m->v[j].key, key) == 0) bykey = &m->v[j];
        if (byname && byname->named) { /* named: the class must be right */
            long c;
            size_t len = key_class(byname->key, &c);
            if (len != strlen(cls) || strncmp(byname->key, cls, len) != 0)
                return fusenet__error(err, FUSENET_ERR_FORMAT, "%s: %s is named '%s', but '%s' is a %s", path,
                                      byname->where, names[i], names[i], classes[i]);
            continue;
        }
        if (bykey && !bykey->named) { /* unnamed: the group Keras' order gives this layer */
            char *copy = fusenet__strdup(names[i]);
            if (!copy) return nomem(err, path);
            fusenet__free(bykey->name);
            bykey->name = copy;
            bykey->named = 1;
        }
    }
    for (size_t i = 0; i < m->n; i++)
        for (size_t j = i + 1; j < m->n; j++)
            if (strcmp(m->v[i].name, m->v[j].name) == 0)
                return fusenet__error(err, FUSENET_ERR_FORMAT, "%s: %s and %s both name layer '%s'", path,
                                      m->v[i].where, m->v[j].where, m->v[i].name);
    return fusenet__ok(err);
}

/* ---- layers --------------------------------------------------------------- */

static FN_CHECKED fusenet_status open_layer(fn_h5 *f, const char *layer, h5layer **out, fusenet_error *err) {
    const char *path = fusenet__h5_path(f);
    h5model *m = &f->m[f->sel];
    h5layer *l = find_layer(m, layer);
    *out = l;
    if (!l) {
        fusenet_status st =
            fusenet__error(err, FUSENET_ERR_UNKNOWN_LAYER, "%s: no layer group '%s'%s%s", path, layer,
                           m->name ? " in sub-model " : "", m->name ? m->name : "");
        const char **names = fusenet__malloc((m->n ? m->n : 1) * sizeof *names);
        for (size_t i = 0; names && i < m->n; i++) names[i] = m->v[i].name;
        if (err && names) fusenet__suggest(err->message, sizeof err->message, layer, names, m->n);
        fusenet__free(names);
        return st;
    }
    if (l->sub) {
        char subs[512];
        list_submodels(f, subs, sizeof subs);
        return fusenet__error(err, FUSENET_ERR_ARCH, "%s: '%s' is a nested model, not a layer: pick it as the "
                              "sub-model (the file holds: %s)", path, layer, subs);
    }
    if (l->defect == 1) /* named by layer_names, absent from the file */
        return fusenet__error(err, FUSENET_ERR_FORMAT, "%s: layer_names lists '%s' but the file has no such group",
                              path, layer);
    if (l->defect == 2)
        return fusenet__error(err, FUSENET_ERR_FORMAT, "%s: layer %s has no weight_names attribute", path, layer);
    if (l->defect == 3) return fusenet__error(err, l->broken->status, "%s", l->broken->message);
    return FUSENET_OK;
}

fusenet_status fusenet__h5_layer_weight_count(fn_h5 *f, const char *layer, size_t *n, fusenet_error *err) {
    if (n) *n = 0;
    if (!f || !layer || !n)
        return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "fusenet__h5_layer_weight_count: NULL argument");
    h5layer *l;
    fusenet_status st = open_layer(f, layer, &l, err);
    if (st == FUSENET_OK) *n = l->w.n;
    if (st == FUSENET_OK) fusenet__ok(err);
    return st;
}

/* "(3,3,64,64)" */
static void fmt_dims(char *buf, size_t size, int rank, const int64_t *d64, const uint64_t *du) {
    size_t len = 0;
    buf[0] = '\0';
    len += (size_t)snprintf(buf + len, size - len, "(");
    for (int i = 0; i < rank && len < size; i++)
        len += (size_t)snprintf(buf + len, size - len, "%s%lld", i ? "," : "",
                                d64 ? (long long)d64[i] : (long long)du[i]);
    if (len < size) snprintf(buf + len, size - len, ")");
}

int fusenet__h5_bad_name(const char *s) {
    size_t len = strlen(s);
    return len == 0 || len > FN_H5_MAX_NAME_LEN || s[0] == '/' || s[len - 1] == '/' || strstr(s, "//") != NULL;
}

#define WFMT "%s: layer %s weight %s (%s): "
#define WARG fusenet__h5_path(f), layer, shown, s->role ? s->role : "?"

/* Follows the '/'-separated dataset path `wname` from the layer group g.
 * *obj is set and *found 1 when every part exists and all but the last are
 * groups. */
static FN_CHECKED fusenet_status resolve(fn_h5 *f, fn_hdf_obj g, const char *wname, const char *what, fn_hdf_obj *obj,
                                         int *found, fusenet_error *err) {
    char part[FN_H5_MAX_NAME_LEN + 1];
    const char *p = wname;
    *found = 0;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        memcpy(part, p, len);
        part[len] = '\0';
        fusenet_status st = fusenet__hdf_lookup(f->file, g, part, what, obj, found, err);
        if (st != FUSENET_OK || !*found || !slash) return st;
        fn_hdf_kind kind;
        if ((st = fusenet__hdf_kind_of(f->file, *obj, what, &kind, err)) != FUSENET_OK) return st;
        if (kind != FN_HDF_GROUP) {
            *found = 0;
            return FUSENET_OK;
        }
        g = *obj;
        p = slash + 1;
    }
}

/* Reads the dataset at path `wname` from g; `shown` is how messages name it. */
static FN_CHECKED fusenet_status read_one(fn_h5 *f, fn_hdf_obj g, const char *layer, const char *wname,
                                          const char *shown, const fn_wspec *s, size_t count, int allow_nonfinite,
                                          fusenet_error *err) {
    if (fusenet__h5_bad_name(wname)) return fusenet__error(err, FUSENET_ERR_FORMAT, WFMT "invalid dataset name", WARG);
    char what[3 * FN_H5_MAX_NAME_LEN + 64];
    snprintf(what, sizeof what, "layer %s weight %s (%s)", layer, shown, s->role ? s->role : "?");
    fn_hdf_obj obj;
    int found;
    fusenet_status st = resolve(f, g, wname, what, &obj, &found, err);
    if (st != FUSENET_OK) return st;
    if (!found) return fusenet__error(err, FUSENET_ERR_FORMAT, WFMT "no such dataset", WARG);
    fn_hdf_dataset *ds;
    if ((st = fusenet__hdf_dataset_open(f->file, obj, what, &ds, err)) != FUSENET_OK) return st;
    if (!ds) return fusenet__error(err, FUSENET_ERR_FORMAT, WFMT "not a dataset", WARG);
    const fn_hdf_shape *sh = fusenet__hdf_dataset_shape(ds);
    if (sh->cls != FN_HDF_FLOAT)
        st = fusenet__error(err, FUSENET_ERR_FORMAT, WFMT "dtype is %s, expected floating point", WARG,
                      fusenet__hdf_class_name(sh->raw_class));
    int same = !sh->is_null && sh->rank == s->rank;
    for (int i = 0; same && i < sh->rank; i++) same = sh->dims[i] == (uint64_t)s->dims[i];
    if (st == FUSENET_OK && !same) {
        char want[96], got[96];
        fmt_dims(want, sizeof want, s->rank, s->dims, NULL);
        if (sh->is_null) snprintf(got, sizeof got, "an empty dataspace");
        else fmt_dims(got, sizeof got, sh->rank, NULL, sh->dims);
        st = fusenet__error(err, FUSENET_ERR_SHAPE, WFMT "expected %s, found %s", WARG, want, got);
    }
    if (st == FUSENET_OK) st = fusenet__hdf_dataset_read(f->file, ds, what, s->data, count, err);
    fusenet__hdf_dataset_free(ds);
    if (st != FUSENET_OK) return st;
    size_t bad = allow_nonfinite ? count : fusenet__first_nonfinite(s->data, count);
    if (bad < count)
        return fusenet__error(err, FUSENET_ERR_VALUE, WFMT "non-finite value %s at flat index %zu", WARG,
                              fusenet__nonfinite_name(s->data[bad]), bad);
    return FUSENET_OK;
}

fusenet_status fusenet__h5_check_specs(const char *path, const char *layer, size_t n, const fn_wspec *specs,
                                 size_t *counts, fusenet_error *err) {
    for (size_t i = 0; i < n; i++) {
        const fn_wspec *s = &specs[i];
        size_t count = 1, bytes;
        if (s->rank < 1 || s->rank > FN_MAX_RANK || !s->data)
            return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "%s: layer %s weight %zu: bad rank or NULL data",
                            path, layer, i);
        for (int d = 0; d < s->rank; d++) {
            if (s->dims[d] <= 0 || (uint64_t)s->dims[d] > (uint64_t)SIZE_MAX ||
                !fusenet__mul_size(count, (size_t)s->dims[d], &count))
                return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "%s: layer %s weight %zu: bad dims", path, layer,
                                i);
        }
        if (!fusenet__mul_size(count, sizeof(float), &bytes))
            return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "%s: layer %s weight %zu: too large", path, layer, i);
        if (counts) counts[i] = count;
    }
    return FUSENET_OK;
}

/* The weight of l that plays `role`, for a sub-model matched by name; NULL if none. */
static const char *by_role(const h5layer *l, const char *role) {
    char r[FN_H5_MAX_NAME_LEN + 1];
    for (size_t i = 0; role && i < l->w.n; i++) {
        weight_role(l->w.v[i], r, sizeof r);
        if (strcmp(r, role) == 0) return l->w.v[i];
    }
    return NULL;
}

static FN_CHECKED fusenet_status read_layer_impl(fn_h5 *f, const char *layer, size_t n, const fn_wspec *specs,
                                                 int allow_nonfinite, fusenet_error *err) {
    h5layer *l;
    const char *path = fusenet__h5_path(f);
    fusenet_status st = fusenet__h5_check_specs(path, layer, n, specs, NULL, err);
    if (st != FUSENET_OK) return st;
    if ((st = open_layer(f, layer, &l, err)) != FUSENET_OK) return st;
    char roles[256] = "";
    size_t len = 0;
    for (size_t i = 0; i < n && len < sizeof roles; i++)
        len += (size_t)snprintf(roles + len, sizeof roles - len, "%s%s", i ? ", " : "",
                                specs[i].role ? specs[i].role : "?");
    if (l->w.n != n)
        return fusenet__error(err, FUSENET_ERR_ARCH, "%s: layer %s has %zu weight%s, expected %zu%s%s%s", path,
                              layer, l->w.n, l->w.n == 1 ? "" : "s", n, n ? " (" : "", roles, n ? ")" : "");
    int role = f->m[f->sel].by_role;
    for (size_t i = 0; i < n && st == FUSENET_OK; i++) {
        size_t count = 1;
        for (int d = 0; d < specs[i].rank; d++) count *= (size_t)specs[i].dims[d]; /* checked above */
        const char *wname = role ? by_role(l, specs[i].role) : l->w.v[i];
        if (!wname)
            return fusenet__error(err, FUSENET_ERR_ARCH, "%s: layer %s has no weight %s (expected %s)", path, layer,
                                  specs[i].role, roles);
        char shown[2 * FN_H5_MAX_NAME_LEN + 16];
        snprintf(shown, sizeof shown, "%s%s%s", l->where ? l->where : "", l->where ? "/vars/" : "", wname);
        st = read_one(f, l->group, layer, wname, shown, &specs[i], count, allow_nonfinite, err);
    }
    return st;
}

fusenet_status fusenet__h5_read_layer(fn_h5 *f, const char *layer, size_t n, const fn_wspec *specs,
                                int allow_nonfinite, fusenet_error *err) {
    if (!f || !layer || (n > 0 && !specs))
        return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "fusenet__h5_read_layer: NULL argument");
    fusenet_status st = read_layer_impl(f, layer, n, specs, allow_nonfinite, err);
    if (st == FUSENET_OK) fusenet__ok(err);
    return st;
}
