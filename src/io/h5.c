/* h5.c - reading the legacy Keras HDF5 weights layout (see h5.h) through our
 * own HDF5 parser (h5format.c). Writing is in h5write.c.
 *
 * Nothing read from a file is trusted: counts and lengths are capped, sizes
 * are multiplied with overflow checks, and dims are checked before any read.
 */
#include "h5.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "h5format.h"

struct fn_h5 {
    fn_hdf *file;
    fn_hdf_obj root; /* "/" or "/model_weights" */
    char **names;
    size_t n;
};

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
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16, bytes;
        char **v = fusenet__mul_size(cap, sizeof *l->v, &bytes) ? fusenet__realloc(l->v, bytes) : NULL;
        if (!v) return nomem(err, path);
        l->v = v;
        l->cap = cap;
    }
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

/* ---- open / close -------------------------------------------------------- */

static FN_CHECKED fusenet_status has_layer_names(fn_hdf *file, fn_hdf_obj g, int *yes, fusenet_error *err) {
    *yes = 0;
    fn_hdf_attr *a = NULL;
    fusenet_status st = fusenet__hdf_attr_find(file, g, "layer_names", "root group", &a, err);
    if (st == FUSENET_OK && !a) st = fusenet__hdf_attr_find(file, g, "layer_names0", "root group", &a, err);
    *yes = a != NULL;
    fusenet__hdf_attr_free(a);
    return st;
}

static FN_CHECKED fusenet_status open_impl(const char *path, fn_h5 **out, fusenet_error *err) {
    fn_h5 *f = fusenet__calloc(1, sizeof *f);
    if (!f) return nomem(err, path);
    namelist names = {0};
    fusenet_status st = fusenet__hdf_open(path, &f->file, err);
    if (st != FUSENET_OK) goto fail;
    f->root = fusenet__hdf_root(f->file);
    int yes = 0;
    if ((st = has_layer_names(f->file, f->root, &yes, err)) != FUSENET_OK) goto fail;
    if (!yes) {
        /* A full-model file (model.save): the weights are under model_weights. */
        fn_hdf_obj sub;
        int found = 0;
        fn_hdf_kind kind = FN_HDF_OTHER;
        st = fusenet__hdf_lookup(f->file, f->root, "model_weights", "root group", &sub, &found, err);
        if (st == FUSENET_OK && found) st = fusenet__hdf_kind_of(f->file, sub, "group model_weights", &kind, err);
        if (st == FUSENET_OK && kind == FN_HDF_GROUP) {
            st = has_layer_names(f->file, sub, &yes, err);
            if (yes) f->root = sub;
        }
        if (st != FUSENET_OK) goto fail;
    }
    if (!yes) {
        st = fusenet__error(err, FUSENET_ERR_FORMAT, "%s: not a Keras weights file (no layer_names attribute)", path);
        goto fail;
    }
    actx c = {f->file, NULL};
    int found = 0;
    if ((st = read_names(f->root, "layer_names", &c, &names, &found, err)) != FUSENET_OK) goto fail;
    for (size_t i = 0; i < names.n; i++) {
        if (names.v[i][0] == '\0') {
            st = fusenet__error(err, FUSENET_ERR_FORMAT, "%s: layer_names entry %zu is empty", path, i);
            goto fail;
        }
    }
    f->names = names.v;
    f->n = names.n;
    *out = f;
    return FUSENET_OK;

fail:
    namelist_free(&names);
    fusenet__h5_close(f);
    return st;
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
    for (size_t i = 0; i < f->n; i++) fusenet__free(f->names[i]);
    fusenet__free(f->names);
    fusenet__free(f);
}

const char *fusenet__h5_path(const fn_h5 *f) { return f ? fusenet__hdf_path(f->file) : NULL; }

size_t fusenet__h5_layer_count(const fn_h5 *f) { return f ? f->n : 0; }

const char *fusenet__h5_layer_name(const fn_h5 *f, size_t i) { return f && i < f->n ? f->names[i] : NULL; }

/* ---- layers --------------------------------------------------------------- */

static FN_CHECKED fusenet_status open_layer(fn_h5 *f, const char *layer, fn_hdf_obj *g, fusenet_error *err) {
    const char *path = fusenet__h5_path(f);
    int found = 0;
    if (layer[0] && !strchr(layer, '/') && strcmp(layer, ".") != 0) {
        char what[FN_H5_MAX_NAME_LEN + 64];
        snprintf(what, sizeof what, "layer group '%s'", layer);
        fusenet_status st = fusenet__hdf_lookup(f->file, f->root, layer, "root group", g, &found, err);
        fn_hdf_kind kind = FN_HDF_OTHER;
        if (st == FUSENET_OK && found) st = fusenet__hdf_kind_of(f->file, *g, what, &kind, err);
        if (st != FUSENET_OK) return st;
        if (found && kind != FN_HDF_GROUP)
            return fusenet__error(err, FUSENET_ERR_FORMAT, "%s: '%s' is not a group", path, layer);
    }
    if (!found) {
        int listed = 0;
        for (size_t i = 0; i < f->n && !listed; i++) listed = strcmp(f->names[i], layer) == 0;
        if (listed) /* named by layer_names, absent from the file */
            return fusenet__error(err, FUSENET_ERR_FORMAT, "%s: layer_names lists '%s' but the file has no such group",
                            path, layer);
        fusenet_status st = fusenet__error(err, FUSENET_ERR_UNKNOWN_LAYER, "%s: no layer group '%s'", path, layer);
        if (err) fusenet__suggest(err->message, sizeof err->message, layer, (const char *const *)f->names, f->n);
        return st;
    }
    return FUSENET_OK;
}

static FN_CHECKED fusenet_status weight_names(fn_h5 *f, fn_hdf_obj g, const char *layer, namelist *wn,
                                              fusenet_error *err) {
    actx c = {f->file, layer};
    int found = 0;
    fusenet_status st = read_names(g, "weight_names", &c, wn, &found, err);
    if (st == FUSENET_OK && !found)
        st = fusenet__error(err, FUSENET_ERR_FORMAT, "%s: layer %s has no weight_names attribute", fusenet__h5_path(f), layer);
    return st;
}

fusenet_status fusenet__h5_layer_weight_count(fn_h5 *f, const char *layer, size_t *n, fusenet_error *err) {
    if (n) *n = 0;
    if (!f || !layer || !n)
        return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "fusenet__h5_layer_weight_count: NULL argument");
    fn_hdf_obj g;
    namelist wn = {0};
    fusenet_status st = open_layer(f, layer, &g, err);
    if (st == FUSENET_OK) st = weight_names(f, g, layer, &wn, err);
    if (st == FUSENET_OK) *n = wn.n;
    namelist_free(&wn);
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
#define WARG fusenet__h5_path(f), layer, wname, s->role ? s->role : "?"

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

static FN_CHECKED fusenet_status read_one(fn_h5 *f, fn_hdf_obj g, const char *layer, const char *wname,
                                          const fn_wspec *s, size_t count, int allow_nonfinite, fusenet_error *err) {
    if (fusenet__h5_bad_name(wname)) return fusenet__error(err, FUSENET_ERR_FORMAT, WFMT "invalid dataset name", WARG);
    char what[2 * FN_H5_MAX_NAME_LEN + 64];
    snprintf(what, sizeof what, "layer %s weight %s (%s)", layer, wname, s->role ? s->role : "?");
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

static FN_CHECKED fusenet_status read_layer_impl(fn_h5 *f, const char *layer, size_t n, const fn_wspec *specs,
                                                 int allow_nonfinite, fusenet_error *err) {
    fn_hdf_obj g;
    namelist wn = {0};
    const char *path = fusenet__h5_path(f);
    fusenet_status st = fusenet__h5_check_specs(path, layer, n, specs, NULL, err);
    if (st != FUSENET_OK) return st;
    if ((st = open_layer(f, layer, &g, err)) != FUSENET_OK) return st;
    if ((st = weight_names(f, g, layer, &wn, err)) != FUSENET_OK) goto done;
    if (wn.n != n) {
        char roles[256] = "";
        size_t len = 0;
        for (size_t i = 0; i < n && len < sizeof roles; i++)
            len += (size_t)snprintf(roles + len, sizeof roles - len, "%s%s", i ? ", " : "",
                                    specs[i].role ? specs[i].role : "?");
        st = fusenet__error(err, FUSENET_ERR_ARCH, "%s: layer %s has %zu weight%s, expected %zu%s%s%s", path, layer,
                      wn.n, wn.n == 1 ? "" : "s", n, n ? " (" : "", roles, n ? ")" : "");
        goto done;
    }
    for (size_t i = 0; i < n && st == FUSENET_OK; i++) {
        size_t count = 1;
        for (int d = 0; d < specs[i].rank; d++) count *= (size_t)specs[i].dims[d]; /* checked above */
        st = read_one(f, g, layer, wn.v[i], &specs[i], count, allow_nonfinite, err);
    }
done:
    namelist_free(&wn);
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
