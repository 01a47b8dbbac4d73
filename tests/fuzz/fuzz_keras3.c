/* fuzz_keras3.c - structure-aware libFuzzer target for the Keras 3 resolver
 * of src/io/h5.c (keras/src/saving/saving_lib.py layouts): the input is a
 * little program that builds a .weights.h5 with the HDF5 API, so the file
 * is always valid HDF5 and the fuzzing goes into the layer table (class
 * counters, vars lists, name attributes, nested models, the choice of a
 * sub-model, fusenet__h5_bind), not into libhdf5's parser.
 *
 * What the bytes choose (a byte past the end reads as 0):
 *  - `layers` or `_layer_checkpoint_dependencies` at the root;
 *  - up to 8 entries per layers group: the key (a dictionary of class
 *    counters: conv2d, conv2d_1, batch_normalization, functional_1, ...; or
 *    raw bytes), a group or a dataset, with or without vars, its `name`
 *    attribute (none, a real layer or model name, raw bytes, an integer, a
 *    list of two strings), a nested layers group (two levels at most);
 *  - up to 5 variables: named 0..k-1 or otherwise ("01", "x", a gap), the
 *    real shape of the named role (conv1_conv, conv1_bn, block1_conv1) or
 *    small random dims, float32 or int32.
 * The file is then checked by h5f_check_file (fuzz_h5_check.h: the raw API
 * and loads of ResNet50 conv1_bn and VGG16 block1_conv1), and each sub-model
 * the file holds is loaded by name as both networks. Seeds:
 * tests/fuzz/corpus/keras3 (make_seeds.py). */
#include "fuzz_h5_check.h"

static const char *const k3_keys[] = {
    "input_layer", "zero_padding2d", "conv2d",   "batch_normalization", "activation", "zero_padding2d_1",
    "max_pooling2d", "conv2d_1",     "conv2d_2", "batch_normalization_1", "functional", "functional_1",
    "conv2d_01",   "conv2d_",        "dense",    "vars",                  "layers",     "add_3",
};
static const char *const k3_names[] = {
    "input_1",      "conv1_pad",  "conv1_conv", "conv1_bn", "conv1_relu", "pool1_pad", "pool1_pool",
    "block1_conv1", "block1_conv2", "resnet50", "vgg16",    "functional", "a/b",       "",
};
#define K3_N(a) (sizeof a / sizeof a[0])

/* Names: a dictionary entry, or (1 byte in 10) up to 11 raw bytes. */
static void k3_raw(h5f_reader *r, char *out, size_t size) { h5f_raw_name(r, 12, out, size); }

static void k3_pick(h5f_reader *r, const char *const *dict, size_t n, char *out, size_t size) {
    h5f_pick_name(r, dict, n, 232, 12, out, size);
}

static void k3_str_attr(hid_t obj, const char *name, const char *const *v, size_t n, int scalar) {
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, H5T_VARIABLE);
    hsize_t dim = n;
    hid_t space = scalar ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &dim, NULL);
    hid_t a = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    if (a >= 0) {
        H5Awrite(a, type, v);
        H5Aclose(a);
    }
    H5Sclose(space);
    H5Tclose(type);
}

static void k3_name_attr(h5f_reader *r, hid_t vars) {
    unsigned how = h5f_u8(r) % 6;
    char a[32], b[32];
    const char *v[2] = {a, b};
    if (how == 0) return;
    k3_pick(r, k3_names, K3_N(k3_names), a, sizeof a);
    if (how <= 3) {
        k3_str_attr(vars, "name", v, 1, 1);
    } else if (how == 4) {
        k3_pick(r, k3_names, K3_N(k3_names), b, sizeof b);
        k3_str_attr(vars, "name", v, 2, 0);
    } else {
        int x = 7;
        hid_t space = H5Screate(H5S_SCALAR);
        hid_t at = H5Acreate2(vars, "name", H5T_STD_I32LE, space, H5P_DEFAULT, H5P_DEFAULT);
        if (at >= 0) {
            H5Awrite(at, H5T_NATIVE_INT, &x);
            H5Aclose(at);
        }
        H5Sclose(space);
    }
}

/* Variable k: its name and a dataset of a real shape or small random dims. */
static void k3_var(h5f_reader *r, hid_t vars, size_t k) {
    unsigned how = h5f_u8(r);
    char name[32];
    if (how % 8 == 7) k3_raw(r, name, sizeof name);
    else if (how % 8 == 6) h5f_fmt(name, sizeof name, "%zu", k + 1); /* a gap */
    else if (how % 8 == 5) h5f_fmt(name, sizeof name, "0%zu", k);
    else h5f_fmt(name, sizeof name, "%zu", k);
    hsize_t dims[4] = {64, 1, 1, 1};
    int rank = 1;
    unsigned shape = h5f_u8(r) % 4;
    if (shape == 1) { /* conv1_conv's kernel */
        dims[0] = dims[1] = 7, dims[2] = 3, dims[3] = 64, rank = 4;
    } else if (shape == 2) { /* block1_conv1's kernel */
        dims[0] = dims[1] = 3, dims[2] = 3, dims[3] = 64, rank = 4;
    } else if (shape == 3) {
        rank = (int)(h5f_u8(r) % 4);
        for (int d = 0; d < rank; d++) dims[d] = h5f_u8(r) % 5;
    }
    hsize_t elems = 1;
    for (int d = 0; d < rank; d++) elems *= dims[d];
    hid_t type = (how & 32) ? H5T_STD_I32LE : H5T_IEEE_F32LE;
    hid_t space = rank ? H5Screate_simple(rank, dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t ds = H5Dcreate2(vars, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (ds >= 0) {
        float *v = calloc((size_t)elems + 1, sizeof *v);
        FUZZ_CHECK(v != NULL);
        for (hsize_t i = 0; i < elems; i++) v[i] = 0.5f + 0.01f * (float)((i * 7 + k) % 13);
        H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
        free(v);
        H5Dclose(ds);
    }
    H5Sclose(space);
}

static void k3_layers(h5f_reader *r, hid_t parent, int depth) {
    unsigned flags = h5f_u8(r);
    hid_t lg = H5Gcreate2(parent, (flags & 1) ? "_layer_checkpoint_dependencies" : "layers", H5P_DEFAULT,
                          H5P_DEFAULT, H5P_DEFAULT);
    if (lg < 0) return;
    size_t n = h5f_u8(r) % 9;
    for (size_t i = 0; i < n; i++) {
        char key[32];
        k3_pick(r, k3_keys, K3_N(k3_keys), key, sizeof key);
        unsigned lf = h5f_u8(r);
        if (lf % 16 == 15) { /* a dataset where a layer group belongs */
            hid_t space = H5Screate(H5S_SCALAR);
            hid_t ds = H5Dcreate2(lg, key, H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
            if (ds >= 0) H5Dclose(ds);
            H5Sclose(space);
            continue;
        }
        hid_t g = H5Gcreate2(lg, key, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (g < 0) continue;
        if (!(lf & 16)) {
            hid_t vars = H5Gcreate2(g, "vars", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
            if (vars >= 0) {
                k3_name_attr(r, vars);
                size_t nv = h5f_u8(r) % 6;
                for (size_t k = 0; k < nv; k++) k3_var(r, vars, k);
                H5Gclose(vars);
            }
        }
        if ((lf & 32) && depth < 2) k3_layers(r, g, depth + 1); /* a nested model */
        H5Gclose(g);
    }
    H5Gclose(lg);
}

/* Loads every sub-model the file holds by name, as ResNet50 and as VGG16. */
static void k3_submodels(void) {
    fn_h5 *f = NULL;
    fusenet_error err;
    fusenet_status st = fusenet__h5_open(h5f_path, &f, &err);
    fuzz_check_status(st, &err);
    if (st != FUSENET_OK) return;
    size_t n = fusenet__h5_submodel_count(f);
    char names[4][64];
    size_t k = 0;
    for (; k < n && k < 4; k++) {
        const char *s = fusenet__h5_submodel_name(f, k);
        FUZZ_CHECK(s != NULL);
        h5f_fmt(names[k], sizeof names[k], "%s", s);
    }
    FUZZ_CHECK(fusenet__h5_submodel_name(f, n) == NULL);
    fusenet__h5_close(f);
    static const struct {
        fusenet_arch arch;
        const char *layer;
    } nets[] = {{FUSENET_ARCH_RESNET50, "conv1_bn"}, {FUSENET_ARCH_VGG16, "block1_conv1"}};
    for (size_t i = 0; i < k; i++)
        for (size_t a = 0; a < 2; a++) {
            fusenet_model_params p = fusenet_model_default_params();
            p.arch = nets[a].arch;
            p.needed_layers = &nets[a].layer;
            p.n_needed = 1;
            p.submodel = names[i];
            fusenet_model *m = (fusenet_model *)(uintptr_t)1;
            st = fusenet_model_load(h5f_path, &p, &m, &err);
            fuzz_check_status(st, &err);
            FUZZ_CHECK((st == FUSENET_OK) == (m != NULL));
            fusenet_model_free(m);
        }
}

int FUZZ_ENTRY(const uint8_t *data, size_t size);

int FUZZ_ENTRY(const uint8_t *data, size_t size) {
    h5f_open_scratch_for_builder();
    h5f_reader r = {data, size, 0};
    hid_t file = H5Fcreate(h5f_path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    FUZZ_CHECK(file >= 0);
    k3_layers(&r, file, 0);
    H5Fclose(file);
    FUZZ_CHECK(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL) == 0);
    k3_submodels();
    h5f_check_file(size > 0 && (data[0] & 128)); /* closes the scratch file */
    return 0;
}
