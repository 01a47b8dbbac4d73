/* fuzz_h5_check.h - what the HDF5 fuzz targets do with a candidate weights
 * file (shared by fuzz_h5.c, raw bytes, and fuzz_h5_keras.c, files built by
 * HDF5 from the input; both included by tests/test_fuzz_regressions.c).
 *
 * The file lives at an mkstemp scratch path in $TMPDIR (default /tmp), created
 * for each input and removed after it: HDF5 opens files by name and resolves
 * their real path, so an anonymous memfd or an unlinked file cannot be used.
 *
 * h5f_check_file() then exercises:
 *  - the raw API: fusenet__h5_open, every layer (up to 32) through
 *    fusenet__h5_layer_weight_count and, for up to 8 weights, fusenet__h5_read_layer with
 *    the shapes the real networks use for the layers of the seeds
 *    (conv1_conv, conv1_bn, block1_conv1) and a 1-element guess otherwise,
 *    then once more with one weight too few; plus a layer name that is not
 *    in the file;
 *  - fusenet_model_load for ResNet50 with needed_layers {"conv1_bn"} and for
 *    VGG16 with {"block1_conv1"}, so only small weights are read.
 * Oracles besides the sanitizers: the status/message contract, weights that
 * were read are finite unless allow_nonfinite, and no HDF5 identifier is
 * left open afterwards (a leaked id would also keep the scratch file open
 * inside HDF5 and make the next input read stale data). */
#ifndef FN_FUZZ_H5_CHECK_H
#define FN_FUZZ_H5_CHECK_H

#include "fuzz_common.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include <hdf5.h>

#include "h5.h"

#define H5F_MAX_LAYERS 32
#define H5F_MAX_WEIGHTS 8

/* The fuzz input as a byte stream, for targets that build a file from it
 * (0 once it is used up). */
typedef struct h5f_reader {
    const uint8_t *p;
    size_t n, at;
} h5f_reader;

static inline unsigned h5f_u8(h5f_reader *r) { return r->at < r->n ? r->p[r->at++] : 0u; }

/* snprintf through a va_list: truncation of hostile names is intended. */
static inline void h5f_fmt(char *out, size_t size, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, size, fmt, ap);
    va_end(ap);
}

/* A name of up to max_len - 1 raw input bytes (a NUL byte becomes 'x'). Not
 * inlined: inlined into a caller's 64-byte buffer, gcc 12 warns of a 16-byte
 * vector store past it (-Wstringop-overflow) that the bounds rule out. */
__attribute__((noinline, unused)) static void h5f_raw_name(h5f_reader *r, size_t max_len, char *out, size_t size) {
    if (size == 0) return;
    size_t len = h5f_u8(r) % max_len;
    if (len >= size) len = size - 1;
    for (size_t i = 0; i < len; i++) {
        unsigned c = h5f_u8(r);
        out[i] = (char)(c ? c : 'x');
    }
    out[len] = '\0';
}

/* A dictionary entry when the next byte is below raw_from, else a raw name. */
static inline void h5f_pick_name(h5f_reader *r, const char *const *dict, size_t n, unsigned raw_from, size_t max_len,
                                 char *out, size_t size) {
    unsigned c = h5f_u8(r);
    if (c < raw_from)
        h5f_fmt(out, size, "%s", dict[c % n]);
    else
        h5f_raw_name(r, max_len, out, size);
}

static int h5f_fd = -1;
static char h5f_path[512];

/* A fresh scratch file for each input, removed by h5f_close_scratch, so a
 * crashing input (no atexit) leaves at most one file behind. */
static void h5f_open_scratch(void) {
    if (h5f_fd >= 0) return;
    const char *dir = getenv("TMPDIR");
    snprintf(h5f_path, sizeof h5f_path, "%s/fuzz_h5_XXXXXX", dir && *dir ? dir : "/tmp");
    h5f_fd = mkstemp(h5f_path);
    FUZZ_CHECK(h5f_fd >= 0);
}

/* For targets that build their file with libhdf5: its failures on the
 * fuzzed structure are expected, so its error printing is turned off once. */
static inline void h5f_open_scratch_for_builder(void) {
    static int quiet;
    if (!quiet) {
        H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
        quiet = 1;
    }
    h5f_open_scratch();
}

static void h5f_close_scratch(void) {
    if (h5f_fd < 0) return;
    close(h5f_fd);
    unlink(h5f_path);
    h5f_fd = -1;
}

static inline void h5f_write_scratch(const uint8_t *data, size_t size) {
    FUZZ_CHECK(ftruncate(h5f_fd, 0) == 0);
    size_t done = 0;
    while (done < size) {
        ssize_t w = pwrite(h5f_fd, data + done, size - done, (off_t)done);
        FUZZ_CHECK(w > 0);
        done += (size_t)w;
    }
}

/* The Keras shapes of the seeds' layers; anything else gets 1 element. */
static void h5f_specs(const char *layer, size_t n, fn_wspec *s) {
    for (size_t k = 0; k < n; k++) s[k] = (fn_wspec){"w", 1, {1, 0, 0, 0}, NULL};
    if (!strcmp(layer, "conv1_conv") && n == 2) {
        s[0] = (fn_wspec){"kernel", 4, {7, 7, 3, 64}, NULL};
        s[1] = (fn_wspec){"bias", 1, {64, 0, 0, 0}, NULL};
    } else if (!strcmp(layer, "block1_conv1") && n == 2) {
        s[0] = (fn_wspec){"kernel", 4, {3, 3, 3, 64}, NULL};
        s[1] = (fn_wspec){"bias", 1, {64, 0, 0, 0}, NULL};
    } else if (!strcmp(layer, "conv1_bn") && n == 4) {
        for (size_t k = 0; k < 4; k++) s[k] = (fn_wspec){"bn", 1, {64, 0, 0, 0}, NULL};
    }
}

static size_t h5f_elems(const fn_wspec *s) {
    size_t e = 1;
    for (int d = 0; d < s->rank; d++) e *= (size_t)s->dims[d];
    return e;
}

static void h5f_read_layer(fn_h5 *f, const char *layer, int allow_nonfinite) {
    size_t n = 0;
    fusenet_error err;
    fusenet_status st = fusenet__h5_layer_weight_count(f, layer, &n, &err);
    fuzz_check_status(st, &err);
    if (st != FUSENET_OK || n == 0 || n > H5F_MAX_WEIGHTS) return;
    fn_wspec specs[H5F_MAX_WEIGHTS];
    h5f_specs(layer, n, specs);
    for (size_t k = 0; k < n; k++) {
        specs[k].data = malloc(h5f_elems(&specs[k]) * sizeof(float));
        FUZZ_CHECK(specs[k].data != NULL);
    }
    st = fusenet__h5_read_layer(f, layer, n, specs, allow_nonfinite, &err);
    fuzz_check_status(st, &err);
    if (st == FUSENET_OK && !allow_nonfinite)
        for (size_t k = 0; k < n; k++)
            for (size_t i = 0; i < h5f_elems(&specs[k]); i++) FUZZ_CHECK(isfinite(specs[k].data[i]));
    /* a count that disagrees with the file's weight_names */
    st = fusenet__h5_read_layer(f, layer, n - 1, specs, allow_nonfinite, &err);
    fuzz_check_status(st, &err);
    FUZZ_CHECK(st != FUSENET_OK);
    for (size_t k = 0; k < n; k++) free(specs[k].data);
}

static void h5f_raw_api(int allow_nonfinite) {
    fn_h5 *f = (fn_h5 *)(uintptr_t)1;
    fusenet_error err;
    fusenet_status st = fusenet__h5_open(h5f_path, &f, &err);
    fuzz_check_status(st, &err);
    if (st != FUSENET_OK) {
        FUZZ_CHECK(f == NULL);
        return;
    }
    FUZZ_CHECK(f != NULL);
    size_t n = fusenet__h5_layer_count(f);
    for (size_t i = 0; i < n && i < H5F_MAX_LAYERS; i++) {
        const char *name = fusenet__h5_layer_name(f, i);
        FUZZ_CHECK(name != NULL && name[0] != '\0');
        h5f_read_layer(f, name, allow_nonfinite);
    }
    FUZZ_CHECK(fusenet__h5_layer_name(f, n) == NULL);
    size_t nw = 0;
    st = fusenet__h5_layer_weight_count(f, "no_such_layer_in_any_file", &nw, &err);
    fuzz_check_status(st, &err);
    fusenet__h5_close(f);
}

static void h5f_model_load(fusenet_arch arch, const char *needed, int allow_nonfinite) {
    fusenet_model_params p = fusenet_model_default_params();
    p.arch = arch;
    p.needed_layers = &needed;
    p.n_needed = 1;
    p.allow_nonfinite = allow_nonfinite;
    fusenet_model *m = (fusenet_model *)(uintptr_t)1;
    fusenet_error err;
    fusenet_status st = fusenet_model_load(h5f_path, &p, &m, &err);
    fuzz_check_status(st, &err);
    FUZZ_CHECK((st == FUSENET_OK) == (m != NULL));
    fusenet_model_free(m);
}

static void h5f_check_file(int allow_nonfinite) {
    h5f_raw_api(allow_nonfinite);
    h5f_model_load(FUSENET_ARCH_RESNET50, "conv1_bn", allow_nonfinite);
    h5f_model_load(FUSENET_ARCH_VGG16, "block1_conv1", allow_nonfinite);
    FUZZ_CHECK(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL) == 0);
    h5f_close_scratch();
}

#endif
