/* test_util.h - scaffolding shared by the unit tests (header-only, test code only).
 *
 *  - expect_ok / expect_error: check a call's status (and the message), and on
 *    failure print the call, the status name and the library's message;
 *  - fixtures: seeded random weight files in the official layout, models
 *    created or loaded with only the layers a test needs, net params;
 *  - with hdf5.h included first: the Keras name-list attribute writers of the
 *    HDF5 reader tests (fx_strings, fx_empty), written with the libhdf5 C API.
 *
 * Include after cmocka.h. Everything is static inline: a test uses what it needs.
 */
#ifndef FN_TEST_UTIL_H
#define FN_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fusenet.h"
#include "model.h"
#include "random_weights.h"

/* ---- checks ---------------------------------------------------------------- */

static inline void fx_expect_status(fusenet_status got, fusenet_status want, const fusenet_error *err,
                                    const char *naming, const char *call, const char *file, int line) {
    const char *msg = err ? err->message : "";
    if (got == want && (!err || err->status == got) && (!naming || strstr(msg, naming))) return;
    print_error("%s\n  returned %s (\"%s\"), expected %s%s%s%s\n", call, fusenet_status_name(got), msg,
                fusenet_status_name(want), naming ? " with a message naming '" : "", naming ? naming : "",
                naming ? "'" : "");
    _fail(file, line);
}

/* The call returns FUSENET_OK (and err, if not NULL, says so). */
#define expect_ok(call, err) fx_expect_status((call), FUSENET_OK, (err), NULL, #call, __FILE__, __LINE__)

/* The call returns `status`, err says so, and its message contains `naming` (unless NULL). */
#define expect_error(call, status, err, naming) \
    fx_expect_status((call), (status), (err), (naming), #call, __FILE__, __LINE__)

/* ---- models and nets ------------------------------------------------------- */

/* Seeded random weights for arch (no top) at path; for setup functions:
 * 0, or -1 with the message on stderr. */
static inline int fx_write_weights(fusenet_arch arch, uint64_t seed, const char *path) {
    fusenet_error err;
    if (fusenet__write_random_weights(arch, 0, seed, path, &err) == FUSENET_OK) return 0;
    fprintf(stderr, "cannot write random weights %s: %s\n", path, err.message);
    return -1;
}

/* The model of arch from path, reading only what needed[0..n) depend on (all
 * layers if n is 0); for setup functions: NULL with the message on stderr. */
static inline fusenet_model *fx_model_load(const char *path, fusenet_arch arch, const char *const *needed,
                                           size_t n) {
    fusenet_model_params p = fusenet_model_default_params();
    p.arch = arch;
    p.needed_layers = needed;
    p.n_needed = n;
    fusenet_model *m = NULL;
    fusenet_error err;
    if (fusenet_model_load(path, &p, &m, &err) == FUSENET_OK) return m;
    fprintf(stderr, "cannot load %s: %s\n", path, err.message);
    return NULL;
}

/* A model without weights (graph only); fails the test on error. */
static inline fusenet_model *fx_model_create(fusenet_arch arch, int top, fusenet_pooling pooling) {
    fusenet_model_params p = fusenet_model_default_params();
    p.arch = arch;
    p.include_top = top;
    p.pooling = pooling;
    fusenet_model *m = NULL;
    fusenet_error err;
    expect_ok(fusenet_model_create(&p, &m, &err), &err);
    return m;
}

/* Net params for taps[0..n) at batch x h x w, with or without the fuse head. */
static inline fusenet_net_params fx_net_params(const fusenet_tap *taps, size_t n, int32_t batch, int32_t h,
                                               int32_t w, int fuse) {
    fusenet_net_params p = fusenet_net_default_params();
    p.taps = taps;
    p.n_taps = n;
    p.batch = batch;
    p.in_h = h;
    p.in_w = w;
    p.fuse = fuse;
    return p;
}

/* How many compute steps of a net produce Keras layer `layer` (a layer run per
 * micro-batch or in row strips has several). */
static inline size_t fx_compute_steps(const fusenet_net *net, const char *layer) {
    size_t count = 0;
    for (size_t i = 0; i < fusenet_net_step_count(net); i++) {
        fusenet_step_info si;
        fusenet_error err;
        expect_ok(fusenet_net_step_info(net, i, &si, &err), &err);
        count += si.kind == FUSENET_STEP_COMPUTE && strcmp(si.layer, layer) == 0;
    }
    return count;
}

/* count seeded pseudo-random floats, uniform on the grid lo + k / 100 for k in
 * [0, levels): a caffe-preprocessed picture's range; fails the test on no memory. */
static inline float *fx_lcg_input(size_t count, uint64_t seed, uint32_t levels, float lo) {
    float *x = malloc(count * sizeof *x);
    assert_non_null(x);
    for (size_t k = 0; k < count; k++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        x[k] = (float)((seed >> 40) % levels) / 100.0f + lo;
    }
    return x;
}

/* fusenet_build_dual's params for two weight files at an h x w input. */
static inline fusenet_dual_params fx_dual_params(const char *resnet, const char *vgg, int32_t h, int32_t w) {
    fusenet_dual_params p = fusenet_dual_default_params();
    p.resnet_weights = resnet;
    p.vgg_weights = vgg;
    p.net.in_h = h;
    p.net.in_w = w;
    return p;
}

/* ---- HDF5 name lists (with hdf5.h) ----------------------------------------- */
#ifdef H5_VERS_MAJOR

/* A 1-D string attribute: fixed-length NUL-padded (size = longest name) or
 * variable-length. */
static inline void fx_strings(hid_t obj, const char *name, const char *const *v, size_t n, int variable) {
    hsize_t dim = n;
    hid_t space = H5Screate_simple(1, &dim, NULL);
    hid_t type = H5Tcopy(H5T_C_S1);
    assert_true(space >= 0 && type >= 0);
    if (variable) {
        assert_true(H5Tset_size(type, H5T_VARIABLE) >= 0);
        hid_t a = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
        assert_true(a >= 0);
        assert_true(H5Awrite(a, type, v) >= 0);
        H5Aclose(a);
    } else {
        size_t max = 1;
        for (size_t i = 0; i < n; i++)
            if (strlen(v[i]) > max) max = strlen(v[i]);
        char *buf = calloc(n ? n : 1, max);
        assert_non_null(buf);
        for (size_t i = 0; i < n; i++) memcpy(buf + i * max, v[i], strlen(v[i]));
        assert_true(H5Tset_size(type, max) >= 0);
        assert_true(H5Tset_strpad(type, H5T_STR_NULLPAD) >= 0);
        hid_t a = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
        assert_true(a >= 0);
        assert_true(H5Awrite(a, type, buf) >= 0);
        H5Aclose(a);
        free(buf);
    }
    H5Tclose(type);
    H5Sclose(space);
}

/* The empty weight_names of a weightless layer: zero-length 1-D float64. */
static inline void fx_empty(hid_t obj, const char *name) {
    hsize_t zero = 0;
    double dummy = 0;
    hid_t space = H5Screate_simple(1, &zero, NULL);
    hid_t a = H5Acreate2(obj, name, H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(a >= 0);
    assert_true(H5Awrite(a, H5T_NATIVE_DOUBLE, &dummy) >= 0);
    H5Aclose(a);
    H5Sclose(space);
}

/* A dataset at the relative path `name` (intermediate groups created), stored
 * as ftype, written from buf of memory type mtype. */
static inline void fx_data(hid_t g, const char *name, hid_t ftype, hid_t mtype, int rank, const hsize_t *dims,
                           const void *buf) {
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t space = rank ? H5Screate_simple(rank, dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t ds = H5Dcreate2(g, name, ftype, space, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(ds >= 0);
    assert_true(H5Dwrite(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0);
    H5Dclose(ds);
    H5Sclose(space);
    H5Pclose(lcpl);
}

#endif /* H5_VERS_MAJOR */

#endif
