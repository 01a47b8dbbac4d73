/* h5write.c - writing the legacy Keras HDF5 weights layout (see h5.h), with
 * libhdf5: the only file that includes hdf5.h, and in the tools library, so
 * libfusenet itself links no libhdf5. Reading goes
 * through our own parser (h5format.c), which trusts nothing in a file; here we
 * only write files we build ourselves.
 *
 * Every public function silences HDF5's automatic error printing for the
 * default error stack while it runs and restores the caller's handler before
 * returning; HDF5's innermost error description is folded into our messages.
 */
#include "h5.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <hdf5.h>

#include "alloc.h"
#include "error.h"
#include "file.h"

#define H5_HEADER_LIMIT 64512    /* Keras' HDF5_OBJECT_HEADER_LIMIT */
#define H5_REASON_SIZE 200

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
    return fusenet__error(err, FUSENET_ERR_NOMEM, "%s: out of memory", path);
}

/* ---- writer --------------------------------------------------------------- */

static fusenet_status write_attr(hid_t obj, const char *name, hid_t type, hid_t space, const void *buf,
                                 const char *path, fusenet_error *err) {
    reason r;
    hid_t a = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0)
        return fusenet__error(err, FUSENET_ERR_IO, "%s: cannot create attribute %s%s", path, name, h5_reason(&r));
    herr_t w = H5Awrite(a, type, buf);
    if (w < 0) h5_reason(&r);
    H5Aclose(a);
    if (w < 0) return fusenet__error(err, FUSENET_ERR_IO, "%s: cannot write attribute %s%s", path, name, r.text);
    return FUSENET_OK;
}

/* A zero-length 1-D float64 attribute, as h5py writes numpy's empty list. */
static fusenet_status write_empty_attr(hid_t obj, const char *name, const char *path, fusenet_error *err) {
    reason r;
    hsize_t zero = 0;
    double dummy = 0.0;
    hid_t space = H5Screate_simple(1, &zero, NULL);
    if (space < 0) return fusenet__error(err, FUSENET_ERR_IO, "%s: cannot create a dataspace%s", path, h5_reason(&r));
    hid_t a = H5Acreate2(obj, name, H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT);
    fusenet_status st = FUSENET_OK;
    if (a < 0 || H5Awrite(a, H5T_NATIVE_DOUBLE, &dummy) < 0)
        st = fusenet__error(err, FUSENET_ERR_IO, "%s: cannot write attribute %s%s", path, name, h5_reason(&r));
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
        st = fusenet__error(err, FUSENET_ERR_IO, "%s: cannot make a string type%s", path, h5_reason(&r));
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
    if (!fusenet__mul_size(n, maxlen, &bytes) || !(buf = fusenet__calloc(n, maxlen))) return nomem(err, path);
    for (size_t i = 0; i < n; i++) memcpy(buf + i * maxlen, names[i], strlen(names[i]));
    type = H5Tcopy(H5T_C_S1);
    if (type < 0 || H5Tset_size(type, maxlen) < 0 || H5Tset_strpad(type, H5T_STR_NULLPAD) < 0) {
        st = fusenet__error(err, FUSENET_ERR_IO, "%s: cannot make a string type%s", path, h5_reason(&r));
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
            st = fusenet__error(err, FUSENET_ERR_IO, "%s: cannot create a dataspace%s", path, h5_reason(&r));
        else
            st = write_attr(obj, name, type, space, buf + start * maxlen, path, err);
        close_id(&space);
        start += cnt;
    }
done:
    close_id(&type);
    fusenet__free(buf);
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
        st = fusenet__error(err, FUSENET_ERR_IO, "%s: layer %s weight %s: cannot create a dataspace%s", path, layer,
                      wname, h5_reason(&r));
        goto done;
    }
    ds = H5Dcreate2(g, wname, H5T_IEEE_F32LE, space, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    if (ds < 0) {
        st = fusenet__error(err, FUSENET_ERR_IO, "%s: layer %s weight %s: cannot create dataset%s", path, layer,
                      wname, h5_reason(&r));
        goto done;
    }
    if (H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, s->data) < 0)
        st = fusenet__error(err, FUSENET_ERR_IO, "%s: layer %s weight %s: cannot write dataset%s", path, layer,
                      wname, h5_reason(&r));
done:
    close_id(&ds);
    close_id(&space);
    return st;
}

static fusenet_status check_layers_out(const char *path, const fn_h5_layer_out *layers, size_t n_layers,
                                       fusenet_error *err) {
    if (n_layers > FN_H5_MAX_NAMES)
        return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "%s: more than %d layers", path, FN_H5_MAX_NAMES);
    for (size_t i = 0; i < n_layers; i++) {
        const fn_h5_layer_out *l = &layers[i];
        if (!l->name || !l->name[0] || strchr(l->name, '/') || !strcmp(l->name, ".") ||
            strlen(l->name) > FN_H5_MAX_NAME_LEN)
            return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "%s: layer %zu: bad or missing name", path, i);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(layers[j].name, l->name))
                return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "%s: layer %s given twice", path, l->name);
        if (l->n > FN_H5_MAX_NAMES || (l->n > 0 && (!l->weight_names || !l->specs)))
            return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "%s: layer %s: bad weight list", path, l->name);
        for (size_t k = 0; k < l->n; k++)
            if (!l->weight_names[k] || fusenet__h5_bad_name(l->weight_names[k]))
                return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "%s: layer %s weight %zu: bad name", path,
                                l->name, k);
        fusenet_status st = fusenet__h5_check_specs(path, l->name, l->n, l->specs, NULL, err);
        if (st != FUSENET_OK) return st;
    }
    return FUSENET_OK;
}

/* Writes the file image whole or not at all (temporary file, then rename). */
static fusenet_status write_image(const char *path, const void *buf, size_t size, fusenet_error *err) {
    char *tmp;
    int fd = fusenet__temp_open(path, &tmp, err);
    if (fd < 0) return err ? err->status : FUSENET_ERR_IO;
    int ok = fusenet__write_full(fd, buf, size);
    return fusenet__temp_close(fd, tmp, path, ok, errno, err);
}

static fusenet_status write_impl(const char *path, const fn_h5_layer_out *layers, size_t n_layers,
                                 fusenet_error *err) {
    reason r;
    fusenet_status st = FUSENET_OK;
    hid_t file = -1, lcpl = -1, g = -1, fapl = -1;
    const char **names = NULL;
    void *image = NULL;
    size_t image_size = 0;

    if (n_layers > 0 && !(names = fusenet__calloc(n_layers, sizeof *names))) return nomem(err, path);
    for (size_t i = 0; i < n_layers; i++) names[i] = layers[i].name;

    lcpl = H5Pcreate(H5P_LINK_CREATE);
    if (lcpl < 0 || H5Pset_create_intermediate_group(lcpl, 1) < 0) {
        st = fusenet__error(err, FUSENET_ERR_IO, "%s: cannot make a property list%s", path, h5_reason(&r));
        goto done;
    }
    /* The file is built in memory (HDF5's core driver, no backing store) and
     * written out by write_image: disk errors then never reach HDF5's own
     * write paths, and the target is replaced only by a complete file. */
    static unsigned long counter;
    char mem_name[64];
    snprintf(mem_name, sizeof mem_name, "fusenet-image-%ld-%lu", (long)getpid(),
             __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED));
    fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0 || H5Pset_fapl_core(fapl, (size_t)1 << 20, 0) < 0) {
        st = fusenet__error(err, FUSENET_ERR_IO, "%s: cannot make a property list%s", path, h5_reason(&r));
        goto done;
    }
    file = H5Fcreate(mem_name, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    if (file < 0) {
        st = fusenet__error(err, FUSENET_ERR_IO, "%s: cannot create file%s", path, h5_reason(&r));
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
            st = fusenet__error(err, FUSENET_ERR_IO, "%s: cannot create layer group %s%s", path, l->name,
                          h5_reason(&r));
            goto done;
        }
        st = write_names_attr(g, "weight_names", l->weight_names, l->n, path, err);
        for (size_t k = 0; k < l->n && st == FUSENET_OK; k++)
            st = write_dataset(g, l->weight_names[k], &l->specs[k], lcpl, path, l->name, err);
        close_id(&g);
    }
    if (st == FUSENET_OK && H5Fflush(file, H5F_SCOPE_LOCAL) < 0)
        st = fusenet__error(err, FUSENET_ERR_IO, "%s: cannot finish the file%s", path, h5_reason(&r));
    if (st == FUSENET_OK) {
        ssize_t size = H5Fget_file_image(file, NULL, 0);
        if (size <= 0) {
            st = fusenet__error(err, FUSENET_ERR_IO, "%s: cannot get the file image%s", path, h5_reason(&r));
            goto done;
        }
        image = fusenet__malloc((size_t)size);
        if (!image) {
            st = nomem(err, path);
            goto done;
        }
        if (H5Fget_file_image(file, image, (size_t)size) != size) {
            st = fusenet__error(err, FUSENET_ERR_IO, "%s: cannot get the file image%s", path, h5_reason(&r));
            goto done;
        }
        image_size = (size_t)size;
    }

done:
    close_id(&g);
    close_id(&file);
    close_id(&lcpl);
    close_id(&fapl);
    fusenet__free(names);
    if (st == FUSENET_OK) st = write_image(path, image, image_size, err);
    fusenet__free(image);
    return st;
}

fusenet_status fusenet__h5_write(const char *path, const fn_h5_layer_out *layers, size_t n_layers,
                           fusenet_error *err) {
    if (!path || (n_layers > 0 && !layers))
        return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "fusenet__h5_write: NULL argument");
    fusenet_status st = check_layers_out(path, layers, n_layers, err);
    if (st != FUSENET_OK) return st;
    quiet q;
    quiet_begin(&q);
    st = write_impl(path, layers, n_layers, err);
    quiet_end(&q);
    if (st != FUSENET_OK) return st;
    return fusenet__ok(err);
}
