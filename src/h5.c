/* h5.c - reading and writing the legacy Keras HDF5 weights layout (see h5.h).
 *
 * The only file of the library that includes hdf5.h. Every public function
 * silences HDF5's automatic error printing for the default error stack while
 * it runs and restores the caller's handler before returning; HDF5's innermost
 * error description is folded into our messages instead.
 *
 * Nothing read from a file is trusted: counts and lengths are capped, sizes
 * are multiplied with overflow checks, and dims are checked before any read.
 */
#include "h5.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hdf5.h>

#include "alloc.h"
#include "error.h"
#include "file.h"

#define H5_MAX_NAMES 100000      /* entries of layer_names / weight_names */
#define H5_MAX_NAME_LEN 4096     /* bytes of one name */
#define H5_HEADER_LIMIT 64512    /* Keras' HDF5_OBJECT_HEADER_LIMIT */
#define H5_REASON_SIZE 200

struct fn_h5 {
    char *path;
    hid_t file;
    hid_t root; /* "/" or "/model_weights" */
    char **names;
    size_t n;
};

/* ---- HDF5 error printing and messages ------------------------------------ */

typedef struct quiet {
    H5E_auto2_t func;
    void *data;
    int saved;
} quiet;

static void quiet_begin(quiet *q) {
    q->func = NULL;
    q->data = NULL;
    q->saved = H5Eget_auto2(H5E_DEFAULT, &q->func, &q->data) >= 0;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

static void quiet_end(const quiet *q) {
    if (q->saved) H5Eset_auto2(H5E_DEFAULT, q->func, q->data);
}

typedef struct reason {
    char text[H5_REASON_SIZE];
} reason;

static herr_t walk_innermost(unsigned n, const H5E_error2_t *e, void *data) {
    reason *r = data;
    /* HDF5's descriptions can run long (timestamps, addresses): keep the start */
    if (n == 0 && e && e->desc && e->desc[0]) snprintf(r->text, sizeof r->text, " (HDF5: %.100s)", e->desc);
    return 0;
}

/* " (HDF5: innermost description)" of the current error stack, or "". Call it
 * right after the failing HDF5 call: the next API call clears the stack. */
static const char *h5_reason(reason *r) {
    r->text[0] = '\0';
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, walk_innermost, r);
    return r->text;
}

static void close_id(hid_t *id) {
    if (*id < 0) return;
    switch (H5Iget_type(*id)) {
    case H5I_FILE: H5Fclose(*id); break;
    case H5I_GROUP: H5Gclose(*id); break;
    case H5I_DATASET: H5Dclose(*id); break;
    case H5I_DATATYPE: H5Tclose(*id); break;
    case H5I_DATASPACE: H5Sclose(*id); break;
    case H5I_ATTR: H5Aclose(*id); break;
    case H5I_GENPROP_LST: H5Pclose(*id); break;
    default: H5Oclose(*id); break;
    }
    *id = -1;
}

static fusenet_status nomem(fusenet_error *err, const char *path) {
    return fn_error(err, FUSENET_ERR_NOMEM, "%s: out of memory", path);
}

/* ---- string lists -------------------------------------------------------- */

typedef struct namelist {
    char **v;
    size_t n, cap;
} namelist;

static void namelist_free(namelist *l) {
    for (size_t i = 0; i < l->n; i++) fn_free(l->v[i]);
    fn_free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

/* Appends s[0..len). Returns 0 when out of memory. */
static int namelist_push(namelist *l, const char *s, size_t len) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16, bytes;
        if (!fn_mul_size(cap, sizeof *l->v, &bytes)) return 0;
        char **v = fn_realloc(l->v, bytes);
        if (!v) return 0;
        l->v = v;
        l->cap = cap;
    }
    char *p = fn_malloc(len + 1);
    if (!p) return 0;
    memcpy(p, s, len);
    p[len] = '\0';
    l->v[l->n++] = p;
    return 1;
}

/* Context for messages: "FILE: <what>attribute NAME: ...", what being "" or
 * "layer L ". */
typedef struct actx {
    const char *path;
    const char *layer; /* NULL for the root */
    int nonstring_empty; /* a non-string attribute means an empty list */
} actx;

#define AFMT "%s: %s%s%sattribute %s: "
#define AARG(c, a) (c)->path, (c)->layer ? "layer " : "", (c)->layer ? (c)->layer : "", (c)->layer ? " " : "", (a)

static fusenet_status push_checked(namelist *out, const char *s, size_t len, const actx *c,
                                   const char *aname, fusenet_error *err) {
    if (len > H5_MAX_NAME_LEN)
        return fn_error(err, FUSENET_ERR_FORMAT, AFMT "name longer than %d bytes", AARG(c, aname),
                        H5_MAX_NAME_LEN);
    if (memchr(s, '\0', len))
        return fn_error(err, FUSENET_ERR_FORMAT, AFMT "name contains a NUL byte", AARG(c, aname));
    if (!namelist_push(out, s, len)) return nomem(err, c->path);
    return FUSENET_OK;
}

/* Reads one string attribute (fixed- or variable-length, scalar or 1-D) and
 * appends its entries to out. */
static fusenet_status read_string_attr(hid_t obj, const char *aname, const actx *c, namelist *out,
                                       fusenet_error *err) {
    fusenet_status st = FUSENET_OK;
    hid_t attr = -1, type = -1, space = -1, mem = -1;
    char *buf = NULL;
    char **vbuf = NULL;
    reason r;

    attr = H5Aopen(obj, aname, H5P_DEFAULT);
    if (attr < 0) {
        st = fn_error(err, FUSENET_ERR_FORMAT, AFMT "cannot open%s", AARG(c, aname), h5_reason(&r));
        goto done;
    }
    type = H5Aget_type(attr);
    space = H5Aget_space(attr);
    if (type < 0 || space < 0) {
        st = fn_error(err, FUSENET_ERR_FORMAT, AFMT "cannot read its type or shape%s", AARG(c, aname),
                      h5_reason(&r));
        goto done;
    }

    size_t count;
    H5S_class_t sclass = H5Sget_simple_extent_type(space);
    if (sclass == H5S_NULL) {
        count = 0;
    } else if (sclass == H5S_SCALAR) {
        count = 1;
    } else if (sclass == H5S_SIMPLE) {
        hssize_t np = H5Sget_simple_extent_npoints(space);
        int rank = H5Sget_simple_extent_ndims(space);
        if (np < 0 || rank < 0) {
            st = fn_error(err, FUSENET_ERR_FORMAT, AFMT "bad dataspace%s", AARG(c, aname), h5_reason(&r));
            goto done;
        }
        if (np > 0 && rank > 1) {
            st = fn_error(err, FUSENET_ERR_FORMAT, AFMT "%d-D, expected a 1-D list of names",
                          AARG(c, aname), rank);
            goto done;
        }
        count = (size_t)np;
        if ((hssize_t)count != np) count = (size_t)-1;
    } else {
        st = fn_error(err, FUSENET_ERR_FORMAT, AFMT "bad dataspace%s", AARG(c, aname), h5_reason(&r));
        goto done;
    }

    H5T_class_t tclass = H5Tget_class(type);
    if (tclass != H5T_STRING) {
        if (count == 0 || c->nonstring_empty) goto done; /* an empty list (numpy float64 []) */
        st = fn_error(err, FUSENET_ERR_FORMAT, AFMT "not a list of strings", AARG(c, aname));
        goto done;
    }
    if (count == 0) goto done;
    if (count > H5_MAX_NAMES || out->n + count > H5_MAX_NAMES) {
        st = fn_error(err, FUSENET_ERR_FORMAT, AFMT "more than %d names", AARG(c, aname), H5_MAX_NAMES);
        goto done;
    }

    htri_t is_var = H5Tis_variable_str(type);
    H5T_cset_t cset = H5Tget_cset(type);
    mem = H5Tcopy(H5T_C_S1);
    if (is_var < 0 || cset < 0 || mem < 0) {
        st = fn_error(err, FUSENET_ERR_FORMAT, AFMT "bad string type%s", AARG(c, aname), h5_reason(&r));
        goto done;
    }
    if (H5Tset_cset(mem, cset) < 0) {
        st = fn_error(err, FUSENET_ERR_FORMAT, AFMT "unsupported character set%s", AARG(c, aname),
                      h5_reason(&r));
        goto done;
    }

    if (is_var) {
        if (H5Tset_size(mem, H5T_VARIABLE) < 0) {
            st = fn_error(err, FUSENET_ERR_FORMAT, AFMT "bad string type%s", AARG(c, aname),
                          h5_reason(&r));
            goto done;
        }
        vbuf = fn_calloc(count, sizeof *vbuf);
        if (!vbuf) {
            st = nomem(err, c->path);
            goto done;
        }
        if (H5Aread(attr, mem, vbuf) < 0) {
            st = fn_error(err, FUSENET_ERR_FORMAT, AFMT "cannot read%s", AARG(c, aname), h5_reason(&r));
            fn_free(vbuf); /* HDF5 owns whatever a failed conversion made */
            vbuf = NULL;
            goto done;
        }
        for (size_t i = 0; i < count && st == FUSENET_OK; i++) {
            const char *s = vbuf[i] ? vbuf[i] : "";
            st = push_checked(out, s, strnlen(s, H5_MAX_NAME_LEN + 1), c, aname, err);
        }
        H5Dvlen_reclaim(mem, space, H5P_DEFAULT, vbuf);
        fn_free(vbuf);
        vbuf = NULL;
    } else {
        size_t size = H5Tget_size(type), bytes;
        if (size == 0 || size > H5_MAX_NAME_LEN) {
            st = fn_error(err, FUSENET_ERR_FORMAT, AFMT "string size %zu outside 1..%d", AARG(c, aname),
                          size, H5_MAX_NAME_LEN);
            goto done;
        }
        if (H5Tset_size(mem, size) < 0 || H5Tset_strpad(mem, H5T_STR_NULLPAD) < 0) {
            st = fn_error(err, FUSENET_ERR_FORMAT, AFMT "bad string type%s", AARG(c, aname),
                          h5_reason(&r));
            goto done;
        }
        if (!fn_mul_size(count, size, &bytes) || !(buf = fn_malloc(bytes))) {
            st = nomem(err, c->path);
            goto done;
        }
        if (H5Aread(attr, mem, buf) < 0) {
            st = fn_error(err, FUSENET_ERR_FORMAT, AFMT "cannot read%s", AARG(c, aname), h5_reason(&r));
            goto done;
        }
        for (size_t i = 0; i < count && st == FUSENET_OK; i++) {
            const char *s = buf + i * size;
            size_t len = size;
            while (len > 0 && s[len - 1] == '\0') len--; /* NUL padding */
            st = push_checked(out, s, len, c, aname, err);
        }
    }

done:
    fn_free(buf);
    close_id(&mem);
    close_id(&space);
    close_id(&type);
    close_id(&attr);
    return st;
}

/* Reads the list `base`, or when absent the chunks base0, base1, ... until one
 * is missing. *found tells whether any of them exists. */
static fusenet_status read_names(hid_t obj, const char *base, const actx *c, namelist *out, int *found,
                                 fusenet_error *err) {
    reason r;
    *found = 0;
    htri_t ex = H5Aexists(obj, base);
    if (ex < 0)
        return fn_error(err, FUSENET_ERR_FORMAT, AFMT "cannot look it up%s", AARG(c, base), h5_reason(&r));
    if (ex > 0) {
        *found = 1;
        return read_string_attr(obj, base, c, out, err);
    }
    for (size_t k = 0;; k++) {
        char name[64];
        snprintf(name, sizeof name, "%s%zu", base, k);
        ex = H5Aexists(obj, name);
        if (ex < 0)
            return fn_error(err, FUSENET_ERR_FORMAT, AFMT "cannot look it up%s", AARG(c, name),
                            h5_reason(&r));
        if (ex == 0) return FUSENET_OK;
        if (k >= H5_MAX_NAMES)
            return fn_error(err, FUSENET_ERR_FORMAT, AFMT "more than %d chunks", AARG(c, base), H5_MAX_NAMES);
        *found = 1;
        fusenet_status st = read_string_attr(obj, name, c, out, err);
        if (st != FUSENET_OK) return st;
    }
}

/* ---- open / close -------------------------------------------------------- */

static fusenet_status has_layer_names(hid_t g, const char *path, int *yes, fusenet_error *err) {
    reason r;
    htri_t a = H5Aexists(g, "layer_names");
    htri_t b = a > 0 ? 0 : H5Aexists(g, "layer_names0");
    if (a < 0 || b < 0)
        return fn_error(err, FUSENET_ERR_FORMAT, "%s: cannot read the attributes of the root group%s", path,
                        h5_reason(&r));
    *yes = a > 0 || b > 0;
    return FUSENET_OK;
}

static fusenet_status open_impl(const char *path, fn_h5 **out, fusenet_error *err) {
    struct stat sb;
    reason r;
    if (stat(path, &sb) != 0)
        return fn_error(err, FUSENET_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) return fn_error(err, FUSENET_ERR_IO, "%s: cannot open: is a directory", path);
    if (!S_ISREG(sb.st_mode))
        return fn_error(err, FUSENET_ERR_IO, "%s: cannot open: not a regular file", path);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return fn_error(err, FUSENET_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    close(fd);
    if (sb.st_size == 0) return fn_error(err, FUSENET_ERR_FORMAT, "%s: empty file, not an HDF5 file", path);

    htri_t is = H5Fis_hdf5(path);
    if (is < 0)
        return fn_error(err, FUSENET_ERR_FORMAT, "%s: cannot read as HDF5%s", path, h5_reason(&r));
    if (is == 0)
        return fn_error(err, FUSENET_ERR_FORMAT, "%s: not an HDF5 file (no HDF5 signature)", path);

    fusenet_status st = FUSENET_OK;
    fn_h5 *f = fn_calloc(1, sizeof *f);
    if (!f) return nomem(err, path);
    f->file = f->root = -1;
    namelist names = {0};
    hid_t sub = -1;

    if (!(f->path = fn_strdup(path))) {
        st = nomem(err, path);
        goto fail;
    }
    f->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f->file < 0) {
        h5_reason(&r);
        if (strstr(r.text, "unable to lock")) /* held by a writer */
            st = fn_error(err, FUSENET_ERR_IO, "%s: cannot open%s", path, r.text);
        else
            st = fn_error(err, FUSENET_ERR_FORMAT, "%s: truncated or corrupt HDF5 file%s", path, r.text);
        goto fail;
    }
    f->root = H5Gopen2(f->file, "/", H5P_DEFAULT);
    if (f->root < 0) {
        st = fn_error(err, FUSENET_ERR_FORMAT, "%s: cannot open the root group%s", path, h5_reason(&r));
        goto fail;
    }
    int yes = 0;
    if ((st = has_layer_names(f->root, path, &yes, err)) != FUSENET_OK) goto fail;
    if (!yes) {
        /* A full-model file (model.save): the weights are under model_weights. */
        htri_t ex = H5Lexists(f->root, "model_weights", H5P_DEFAULT);
        if (ex > 0) sub = H5Oopen(f->root, "model_weights", H5P_DEFAULT);
        if (sub >= 0 && H5Iget_type(sub) == H5I_GROUP) {
            if ((st = has_layer_names(sub, path, &yes, err)) != FUSENET_OK) goto fail;
            if (yes) {
                close_id(&f->root);
                f->root = sub;
                sub = -1;
            }
        }
    }
    if (!yes) {
        st = fn_error(err, FUSENET_ERR_FORMAT, "%s: not a Keras weights file (no layer_names attribute)",
                      path);
        goto fail;
    }
    actx c = {path, NULL, 0};
    int found = 0;
    if ((st = read_names(f->root, "layer_names", &c, &names, &found, err)) != FUSENET_OK) goto fail;
    for (size_t i = 0; i < names.n; i++) {
        if (names.v[i][0] == '\0') {
            st = fn_error(err, FUSENET_ERR_FORMAT, "%s: layer_names entry %zu is empty", path, i);
            goto fail;
        }
    }
    f->names = names.v;
    f->n = names.n;
    *out = f;
    return FUSENET_OK;

fail:
    namelist_free(&names);
    close_id(&sub);
    fn_h5_close(f);
    return st;
}

fusenet_status fn_h5_open(const char *path, fn_h5 **out, fusenet_error *err) {
    if (out) *out = NULL;
    if (!path || !out) return fn_error(err, FUSENET_ERR_INVALID_ARG, "fn_h5_open: NULL argument");
    quiet q;
    quiet_begin(&q);
    fusenet_status st = open_impl(path, out, err);
    quiet_end(&q);
    if (st == FUSENET_OK) fn_ok(err);
    return st;
}

void fn_h5_close(fn_h5 *f) {
    if (!f) return;
    quiet q;
    quiet_begin(&q);
    close_id(&f->root);
    close_id(&f->file);
    quiet_end(&q);
    for (size_t i = 0; i < f->n; i++) fn_free(f->names[i]);
    fn_free(f->names);
    fn_free(f->path);
    fn_free(f);
}

const char *fn_h5_path(const fn_h5 *f) { return f ? f->path : NULL; }

size_t fn_h5_layer_count(const fn_h5 *f) { return f ? f->n : 0; }

const char *fn_h5_layer_name(const fn_h5 *f, size_t i) { return f && i < f->n ? f->names[i] : NULL; }

/* ---- layers --------------------------------------------------------------- */

static fusenet_status open_layer(fn_h5 *f, const char *layer, hid_t *gid, fusenet_error *err) {
    reason r;
    *gid = -1;
    htri_t ex = 0;
    if (layer[0] && !strchr(layer, '/') && strcmp(layer, ".") != 0) {
        ex = H5Lexists(f->root, layer, H5P_DEFAULT);
        if (ex < 0)
            return fn_error(err, FUSENET_ERR_FORMAT, "%s: cannot look up layer group '%s'%s", f->path, layer,
                            h5_reason(&r));
    }
    if (ex == 0) {
        int listed = 0;
        for (size_t i = 0; i < f->n && !listed; i++) listed = strcmp(f->names[i], layer) == 0;
        if (listed) /* named by layer_names, absent from the file */
            return fn_error(err, FUSENET_ERR_FORMAT, "%s: layer_names lists '%s' but the file has no such group",
                            f->path, layer);
        fusenet_status st = fn_error(err, FUSENET_ERR_UNKNOWN_LAYER, "%s: no layer group '%s'", f->path, layer);
        if (err) fn_suggest(err->message, sizeof err->message, layer, (const char *const *)f->names, f->n);
        return st;
    }
    hid_t g = H5Oopen(f->root, layer, H5P_DEFAULT);
    if (g < 0)
        return fn_error(err, FUSENET_ERR_FORMAT, "%s: cannot open layer group '%s'%s", f->path, layer,
                        h5_reason(&r));
    if (H5Iget_type(g) != H5I_GROUP) {
        close_id(&g);
        return fn_error(err, FUSENET_ERR_FORMAT, "%s: '%s' is not a group", f->path, layer);
    }
    *gid = g;
    return FUSENET_OK;
}

static fusenet_status weight_names(fn_h5 *f, hid_t g, const char *layer, namelist *wn, fusenet_error *err) {
    actx c = {f->path, layer, 1};
    int found = 0;
    fusenet_status st = read_names(g, "weight_names", &c, wn, &found, err);
    if (st == FUSENET_OK && !found)
        st = fn_error(err, FUSENET_ERR_FORMAT, "%s: layer %s has no weight_names attribute", f->path, layer);
    return st;
}

static fusenet_status weight_count_impl(fn_h5 *f, const char *layer, size_t *n, fusenet_error *err) {
    hid_t g;
    namelist wn = {0};
    fusenet_status st = open_layer(f, layer, &g, err);
    if (st != FUSENET_OK) return st;
    st = weight_names(f, g, layer, &wn, err);
    if (st == FUSENET_OK) *n = wn.n;
    namelist_free(&wn);
    close_id(&g);
    return st;
}

fusenet_status fn_h5_layer_weight_count(fn_h5 *f, const char *layer, size_t *n, fusenet_error *err) {
    if (n) *n = 0;
    if (!f || !layer || !n)
        return fn_error(err, FUSENET_ERR_INVALID_ARG, "fn_h5_layer_weight_count: NULL argument");
    quiet q;
    quiet_begin(&q);
    fusenet_status st = weight_count_impl(f, layer, n, err);
    quiet_end(&q);
    if (st == FUSENET_OK) fn_ok(err);
    return st;
}

/* "(3,3,64,64)" */
static void fmt_dims(char *buf, size_t size, int rank, const int64_t *d64, const hsize_t *dh) {
    size_t len = 0;
    buf[0] = '\0';
    len += (size_t)snprintf(buf + len, size - len, "(");
    for (int i = 0; i < rank && len < size; i++)
        len += (size_t)snprintf(buf + len, size - len, "%s%lld", i ? "," : "",
                                d64 ? (long long)d64[i] : (long long)dh[i]);
    if (len < size) snprintf(buf + len, size - len, ")");
}

static const char *class_name(H5T_class_t c) {
    switch (c) {
    case H5T_INTEGER: return "integer";
    case H5T_FLOAT: return "float";
    case H5T_TIME: return "time";
    case H5T_STRING: return "string";
    case H5T_BITFIELD: return "bitfield";
    case H5T_OPAQUE: return "opaque";
    case H5T_COMPOUND: return "compound";
    case H5T_REFERENCE: return "reference";
    case H5T_ENUM: return "enum";
    case H5T_VLEN: return "variable-length";
    case H5T_ARRAY: return "array";
    default: return "unknown";
    }
}

/* 1 if every link along `name` (relative, '/'-separated) exists, 0 if one is
 * missing, -1 on an HDF5 error. */
static int link_path_exists(hid_t g, const char *name) {
    char buf[H5_MAX_NAME_LEN + 1];
    size_t len = strlen(name);
    if (len > H5_MAX_NAME_LEN) return 0;
    memcpy(buf, name, len + 1);
    for (char *p = buf;;) {
        char *slash = strchr(p, '/');
        if (slash) *slash = '\0';
        htri_t e = H5Lexists(g, buf, H5P_DEFAULT);
        if (e <= 0) return e < 0 ? -1 : 0;
        if (!slash) return 1;
        *slash = '/';
        p = slash + 1;
    }
}

static int bad_relative_name(const char *s) {
    size_t len = strlen(s);
    return len == 0 || len > H5_MAX_NAME_LEN || s[0] == '/' || s[len - 1] == '/' || strstr(s, "//") != NULL;
}

#define WFMT "%s: layer %s weight %s (%s): "
#define WARG f->path, layer, wname, s->role ? s->role : "?"

static fusenet_status read_one(fn_h5 *f, hid_t g, const char *layer, const char *wname, const fn_wspec *s,
                               size_t count, int allow_nonfinite, fusenet_error *err) {
    fusenet_status st = FUSENET_OK;
    hid_t obj = -1, type = -1, space = -1;
    reason r;

    if (bad_relative_name(wname)) {
        st = fn_error(err, FUSENET_ERR_FORMAT, WFMT "invalid dataset name", WARG);
        goto done;
    }
    int ex = link_path_exists(g, wname);
    if (ex <= 0) {
        st = fn_error(err, FUSENET_ERR_FORMAT, WFMT "no such dataset%s", WARG, ex < 0 ? h5_reason(&r) : "");
        goto done;
    }
    obj = H5Oopen(g, wname, H5P_DEFAULT);
    if (obj < 0) {
        st = fn_error(err, FUSENET_ERR_FORMAT, WFMT "cannot open dataset%s", WARG, h5_reason(&r));
        goto done;
    }
    if (H5Iget_type(obj) != H5I_DATASET) {
        st = fn_error(err, FUSENET_ERR_FORMAT, WFMT "not a dataset", WARG);
        goto done;
    }
    type = H5Dget_type(obj);
    space = H5Dget_space(obj);
    if (type < 0 || space < 0) {
        st = fn_error(err, FUSENET_ERR_FORMAT, WFMT "cannot read its type or shape%s", WARG, h5_reason(&r));
        goto done;
    }
    H5T_class_t tc = H5Tget_class(type);
    if (tc != H5T_FLOAT) {
        st = fn_error(err, FUSENET_ERR_FORMAT, WFMT "dtype is %s, expected floating point", WARG,
                      class_name(tc));
        goto done;
    }

    char want[96], found[96];
    H5S_class_t sc = H5Sget_simple_extent_type(space);
    int rank = sc == H5S_SIMPLE ? H5Sget_simple_extent_ndims(space) : 0;
    hsize_t dims[H5S_MAX_RANK];
    if (sc != H5S_SIMPLE && sc != H5S_SCALAR && sc != H5S_NULL) {
        st = fn_error(err, FUSENET_ERR_FORMAT, WFMT "bad dataspace%s", WARG, h5_reason(&r));
        goto done;
    }
    if (rank < 0 || rank > H5S_MAX_RANK || (rank > 0 && H5Sget_simple_extent_dims(space, dims, NULL) != rank)) {
        st = fn_error(err, FUSENET_ERR_FORMAT, WFMT "bad dataspace%s", WARG, h5_reason(&r));
        goto done;
    }
    int same = sc != H5S_NULL && rank == s->rank;
    for (int i = 0; same && i < rank; i++) same = dims[i] == (hsize_t)s->dims[i];
    if (!same) {
        fmt_dims(want, sizeof want, s->rank, s->dims, NULL);
        if (sc == H5S_NULL)
            snprintf(found, sizeof found, "an empty dataspace");
        else
            fmt_dims(found, sizeof found, rank, NULL, dims);
        st = fn_error(err, FUSENET_ERR_SHAPE, WFMT "expected %s, found %s", WARG, want, found);
        goto done;
    }
    if (H5Dread(obj, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, s->data) < 0) {
        st = fn_error(err, FUSENET_ERR_FORMAT, WFMT "cannot read%s", WARG, h5_reason(&r));
        goto done;
    }
    if (!allow_nonfinite) {
        for (size_t i = 0; i < count; i++) {
            if (!isfinite(s->data[i])) {
                st = fn_error(err, FUSENET_ERR_VALUE, WFMT "non-finite value %s at flat index %zu", WARG,
                              isnan(s->data[i]) ? "NaN" : (s->data[i] > 0 ? "+Inf" : "-Inf"), i);
                goto done;
            }
        }
    }

done:
    close_id(&space);
    close_id(&type);
    close_id(&obj);
    return st;
}

static fusenet_status check_specs(const char *path, const char *layer, size_t n, const fn_wspec *specs,
                                  size_t *counts, fusenet_error *err) {
    for (size_t i = 0; i < n; i++) {
        const fn_wspec *s = &specs[i];
        size_t count = 1, bytes;
        if (s->rank < 1 || s->rank > FN_MAX_RANK || !s->data)
            return fn_error(err, FUSENET_ERR_INVALID_ARG, "%s: layer %s weight %zu: bad rank or NULL data",
                            path, layer, i);
        for (int d = 0; d < s->rank; d++) {
            if (s->dims[d] <= 0 || (uint64_t)s->dims[d] > (uint64_t)SIZE_MAX ||
                !fn_mul_size(count, (size_t)s->dims[d], &count))
                return fn_error(err, FUSENET_ERR_INVALID_ARG, "%s: layer %s weight %zu: bad dims", path, layer,
                                i);
        }
        if (!fn_mul_size(count, sizeof(float), &bytes))
            return fn_error(err, FUSENET_ERR_INVALID_ARG, "%s: layer %s weight %zu: too large", path, layer, i);
        if (counts) counts[i] = count;
    }
    return FUSENET_OK;
}

static fusenet_status read_layer_impl(fn_h5 *f, const char *layer, size_t n, const fn_wspec *specs,
                                      int allow_nonfinite, fusenet_error *err) {
    hid_t g = -1;
    namelist wn = {0};
    fusenet_status st = check_specs(f->path, layer, n, specs, NULL, err);
    if (st != FUSENET_OK) return st;
    if ((st = open_layer(f, layer, &g, err)) != FUSENET_OK) return st;
    if ((st = weight_names(f, g, layer, &wn, err)) != FUSENET_OK) goto done;
    if (wn.n != n) {
        char roles[256] = "";
        size_t len = 0;
        for (size_t i = 0; i < n && len < sizeof roles; i++)
            len += (size_t)snprintf(roles + len, sizeof roles - len, "%s%s", i ? ", " : "",
                                    specs[i].role ? specs[i].role : "?");
        st = fn_error(err, FUSENET_ERR_ARCH, "%s: layer %s has %zu weight%s, expected %zu%s%s%s", f->path, layer,
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
    close_id(&g);
    return st;
}

fusenet_status fn_h5_read_layer(fn_h5 *f, const char *layer, size_t n, const fn_wspec *specs,
                                int allow_nonfinite, fusenet_error *err) {
    if (!f || !layer || (n > 0 && !specs))
        return fn_error(err, FUSENET_ERR_INVALID_ARG, "fn_h5_read_layer: NULL argument");
    quiet q;
    quiet_begin(&q);
    fusenet_status st = read_layer_impl(f, layer, n, specs, allow_nonfinite, err);
    quiet_end(&q);
    if (st == FUSENET_OK) fn_ok(err);
    return st;
}

/* ---- writer --------------------------------------------------------------- */

static fusenet_status write_attr(hid_t obj, const char *name, hid_t type, hid_t space, const void *buf,
                                 const char *path, fusenet_error *err) {
    reason r;
    hid_t a = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0)
        return fn_error(err, FUSENET_ERR_IO, "%s: cannot create attribute %s%s", path, name, h5_reason(&r));
    herr_t w = H5Awrite(a, type, buf);
    if (w < 0) h5_reason(&r);
    H5Aclose(a);
    if (w < 0) return fn_error(err, FUSENET_ERR_IO, "%s: cannot write attribute %s%s", path, name, r.text);
    return FUSENET_OK;
}

/* A zero-length 1-D float64 attribute, as h5py writes numpy's empty list. */
static fusenet_status write_empty_attr(hid_t obj, const char *name, const char *path, fusenet_error *err) {
    reason r;
    hsize_t zero = 0;
    double dummy = 0.0;
    hid_t space = H5Screate_simple(1, &zero, NULL);
    if (space < 0) return fn_error(err, FUSENET_ERR_IO, "%s: cannot create a dataspace%s", path, h5_reason(&r));
    hid_t a = H5Acreate2(obj, name, H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT);
    fusenet_status st = FUSENET_OK;
    if (a < 0 || H5Awrite(a, H5T_NATIVE_DOUBLE, &dummy) < 0)
        st = fn_error(err, FUSENET_ERR_IO, "%s: cannot write attribute %s%s", path, name, h5_reason(&r));
    close_id(&a);
    close_id(&space);
    return st;
}

static fusenet_status write_scalar_str(hid_t obj, const char *name, const char *value, const char *path,
                                       fusenet_error *err) {
    reason r;
    fusenet_status st;
    hid_t type = H5Tcopy(H5T_C_S1), space = H5Screate(H5S_SCALAR);
    if (type < 0 || space < 0 || H5Tset_size(type, strlen(value)) < 0 ||
        H5Tset_strpad(type, H5T_STR_NULLPAD) < 0)
        st = fn_error(err, FUSENET_ERR_IO, "%s: cannot make a string type%s", path, h5_reason(&r));
    else
        st = write_attr(obj, name, type, space, value, path, err);
    close_id(&space);
    close_id(&type);
    return st;
}

/* Fixed-length NUL-padded strings, size = longest name; chunked as Keras does
 * (numpy array_split into the fewest near-equal chunks of at most
 * H5_HEADER_LIMIT bytes each, named base0, base1, ...). */
static fusenet_status write_names_attr(hid_t obj, const char *base, const char *const *names, size_t n,
                                       const char *path, fusenet_error *err) {
    if (n == 0) return write_empty_attr(obj, base, path, err);
    reason r;
    fusenet_status st = FUSENET_OK;
    size_t maxlen = 1, bytes;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(names[i]);
        if (len > maxlen) maxlen = len;
    }
    size_t chunks = 1;
    while (((n + chunks - 1) / chunks) * maxlen > H5_HEADER_LIMIT) chunks++; /* maxlen <= 4096: ends */

    hid_t type = -1, space = -1;
    char *buf = NULL;
    if (!fn_mul_size(n, maxlen, &bytes) || !(buf = fn_calloc(n, maxlen))) return nomem(err, path);
    for (size_t i = 0; i < n; i++) memcpy(buf + i * maxlen, names[i], strlen(names[i]));
    type = H5Tcopy(H5T_C_S1);
    if (type < 0 || H5Tset_size(type, maxlen) < 0 || H5Tset_strpad(type, H5T_STR_NULLPAD) < 0) {
        st = fn_error(err, FUSENET_ERR_IO, "%s: cannot make a string type%s", path, h5_reason(&r));
        goto done;
    }
    size_t start = 0;
    for (size_t c = 0; c < chunks && st == FUSENET_OK; c++) {
        hsize_t cnt = n / chunks + (c < n % chunks);
        char name[64];
        if (chunks == 1)
            snprintf(name, sizeof name, "%s", base);
        else
            snprintf(name, sizeof name, "%s%zu", base, c);
        space = H5Screate_simple(1, &cnt, NULL);
        if (space < 0)
            st = fn_error(err, FUSENET_ERR_IO, "%s: cannot create a dataspace%s", path, h5_reason(&r));
        else
            st = write_attr(obj, name, type, space, buf + start * maxlen, path, err);
        close_id(&space);
        start += cnt;
    }
done:
    close_id(&type);
    fn_free(buf);
    return st;
}

static fusenet_status write_dataset(hid_t g, const char *wname, const fn_wspec *s, hid_t lcpl,
                                    const char *path, const char *layer, fusenet_error *err) {
    reason r;
    fusenet_status st = FUSENET_OK;
    hsize_t dims[FN_MAX_RANK];
    for (int d = 0; d < s->rank; d++) dims[d] = (hsize_t)s->dims[d];
    hid_t space = H5Screate_simple(s->rank, dims, NULL), ds = -1;
    if (space < 0) {
        st = fn_error(err, FUSENET_ERR_IO, "%s: layer %s weight %s: cannot create a dataspace%s", path, layer,
                      wname, h5_reason(&r));
        goto done;
    }
    ds = H5Dcreate2(g, wname, H5T_IEEE_F32LE, space, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    if (ds < 0) {
        st = fn_error(err, FUSENET_ERR_IO, "%s: layer %s weight %s: cannot create dataset%s", path, layer,
                      wname, h5_reason(&r));
        goto done;
    }
    if (H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, s->data) < 0)
        st = fn_error(err, FUSENET_ERR_IO, "%s: layer %s weight %s: cannot write dataset%s", path, layer,
                      wname, h5_reason(&r));
done:
    close_id(&ds);
    close_id(&space);
    return st;
}

static fusenet_status check_layers_out(const char *path, const fn_h5_layer_out *layers, size_t n_layers,
                                       fusenet_error *err) {
    if (n_layers > H5_MAX_NAMES)
        return fn_error(err, FUSENET_ERR_INVALID_ARG, "%s: more than %d layers", path, H5_MAX_NAMES);
    for (size_t i = 0; i < n_layers; i++) {
        const fn_h5_layer_out *l = &layers[i];
        if (!l->name || !l->name[0] || strchr(l->name, '/') || !strcmp(l->name, ".") ||
            strlen(l->name) > H5_MAX_NAME_LEN)
            return fn_error(err, FUSENET_ERR_INVALID_ARG, "%s: layer %zu: bad or missing name", path, i);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(layers[j].name, l->name))
                return fn_error(err, FUSENET_ERR_INVALID_ARG, "%s: layer %s given twice", path, l->name);
        if (l->n > H5_MAX_NAMES || (l->n > 0 && (!l->weight_names || !l->specs)))
            return fn_error(err, FUSENET_ERR_INVALID_ARG, "%s: layer %s: bad weight list", path, l->name);
        for (size_t k = 0; k < l->n; k++)
            if (!l->weight_names[k] || bad_relative_name(l->weight_names[k]))
                return fn_error(err, FUSENET_ERR_INVALID_ARG, "%s: layer %s weight %zu: bad name", path,
                                l->name, k);
        fusenet_status st = check_specs(path, l->name, l->n, l->specs, NULL, err);
        if (st != FUSENET_OK) return st;
    }
    return FUSENET_OK;
}

/* Writes the file image whole or not at all (temporary file, then rename). */
static fusenet_status write_image(const char *path, const void *buf, size_t size, fusenet_error *err) {
    char *tmp;
    int fd = fn_temp_open(path, &tmp, err);
    if (fd < 0) return err ? err->status : FUSENET_ERR_IO;
    int ok = fn_write_full(fd, buf, size);
    return fn_temp_close(fd, tmp, path, ok, errno, err);
}

static fusenet_status write_impl(const char *path, const fn_h5_layer_out *layers, size_t n_layers,
                                 fusenet_error *err) {
    reason r;
    fusenet_status st = FUSENET_OK;
    hid_t file = -1, lcpl = -1, g = -1, fapl = -1;
    const char **names = NULL;
    void *image = NULL;
    size_t image_size = 0;

    if (n_layers > 0 && !(names = fn_calloc(n_layers, sizeof *names))) return nomem(err, path);
    for (size_t i = 0; i < n_layers; i++) names[i] = layers[i].name;

    lcpl = H5Pcreate(H5P_LINK_CREATE);
    if (lcpl < 0 || H5Pset_create_intermediate_group(lcpl, 1) < 0) {
        st = fn_error(err, FUSENET_ERR_IO, "%s: cannot make a property list%s", path, h5_reason(&r));
        goto done;
    }
    /* The file is built in memory (HDF5's core driver, no backing store) and
     * written out by write_image: disk errors then never reach HDF5's own
     * write paths, and the target is replaced only by a complete file. */
    static unsigned long counter;
    char mem_name[64];
    snprintf(mem_name, sizeof mem_name, "fusenet-image-%ld-%lu", (long)getpid(), __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED));
    fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0 || H5Pset_fapl_core(fapl, (size_t)1 << 20, 0) < 0) {
        st = fn_error(err, FUSENET_ERR_IO, "%s: cannot make a property list%s", path, h5_reason(&r));
        goto done;
    }
    file = H5Fcreate(mem_name, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    if (file < 0) {
        st = fn_error(err, FUSENET_ERR_IO, "%s: cannot create file%s", path, h5_reason(&r));
        goto done;
    }
    if ((st = write_names_attr(file, "layer_names", names, n_layers, path, err)) != FUSENET_OK ||
        (st = write_scalar_str(file, "backend", "tensorflow", path, err)) != FUSENET_OK ||
        (st = write_scalar_str(file, "keras_version", "2.2.4", path, err)) != FUSENET_OK)
        goto done;
    for (size_t i = 0; i < n_layers && st == FUSENET_OK; i++) {
        const fn_h5_layer_out *l = &layers[i];
        g = H5Gcreate2(file, l->name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (g < 0) {
            st = fn_error(err, FUSENET_ERR_IO, "%s: cannot create layer group %s%s", path, l->name,
                          h5_reason(&r));
            goto done;
        }
        st = write_names_attr(g, "weight_names", l->weight_names, l->n, path, err);
        for (size_t k = 0; k < l->n && st == FUSENET_OK; k++)
            st = write_dataset(g, l->weight_names[k], &l->specs[k], lcpl, path, l->name, err);
        close_id(&g);
    }
    if (st == FUSENET_OK && H5Fflush(file, H5F_SCOPE_LOCAL) < 0)
        st = fn_error(err, FUSENET_ERR_IO, "%s: cannot finish the file%s", path, h5_reason(&r));
    if (st == FUSENET_OK) {
        ssize_t size = H5Fget_file_image(file, NULL, 0);
        if (size <= 0) {
            st = fn_error(err, FUSENET_ERR_IO, "%s: cannot get the file image%s", path, h5_reason(&r));
            goto done;
        }
        image = fn_malloc((size_t)size);
        if (!image) {
            st = nomem(err, path);
            goto done;
        }
        if (H5Fget_file_image(file, image, (size_t)size) != size) {
            st = fn_error(err, FUSENET_ERR_IO, "%s: cannot get the file image%s", path, h5_reason(&r));
            goto done;
        }
        image_size = (size_t)size;
    }

done:
    close_id(&g);
    close_id(&file);
    close_id(&lcpl);
    close_id(&fapl);
    fn_free(names);
    if (st == FUSENET_OK) st = write_image(path, image, image_size, err);
    fn_free(image);
    return st;
}

fusenet_status fn_h5_write(const char *path, const fn_h5_layer_out *layers, size_t n_layers,
                           fusenet_error *err) {
    if (!path || (n_layers > 0 && !layers))
        return fn_error(err, FUSENET_ERR_INVALID_ARG, "fn_h5_write: NULL argument");
    fusenet_status st = check_layers_out(path, layers, n_layers, err);
    if (st != FUSENET_OK) return st;
    quiet q;
    quiet_begin(&q);
    st = write_impl(path, layers, n_layers, err);
    quiet_end(&q);
    if (st != FUSENET_OK) return st;
    return fn_ok(err);
}
