/* fuzz_h5_keras.c - structure-aware libFuzzer target for the Keras layout:
 * the input is a little program that builds a weights file with the HDF5
 * API, so the file is always valid HDF5 and the fuzzing goes into our reading
 * of the layout (src/io/h5.c, src/graph/model.c), not into libhdf5's parser. The file
 * is then checked by h5f_check_file (see fuzz_h5_check.h).
 *
 * What the bytes choose (a byte past the end reads as 0):
 *  - root or a model_weights wrapper group; layer_names fixed-length or
 *    variable-length, whole or chunked as layer_names0, layer_names1, ...;
 *  - up to 6 layers: the name (from a dictionary of real and tricky names,
 *    or raw bytes), whether it is listed, whether its group exists, its
 *    weight_names (absent, empty float64, H5S_NULL, integers, a 2-D list,
 *    fixed- or variable-length strings);
 *  - up to 5 weights per layer: the name (nested "L/kernel:0", flat
 *    "L_W_1:0", or raw), whether the dataset exists or is a soft link,
 *    its type (float16/32/64, either byte order, int32, string) and shape
 *    (the real one of the role, or up to rank 5 of small dims), and its
 *    values (from the input, so NaN and Inf occur).
 * Inputs are not seeded from files: libFuzzer starts from the empty input. */
#include "fuzz_h5_check.h"

static const char *const hk_layer_names[] = {
    "input_1",      "conv1_pad",    "conv1_conv",  "conv1_bn",  "conv1_relu", "block1_conv1",
    "block1_conv2", "block1_pool",  "fc1",         "predictions", "probs",    "res2a_branch2a",
    "bn_conv1",     "model_weights", "layer_names", "a/b",      ".",          "conv2_block1_1_conv",
};
#define HK_NLAYER_NAMES (sizeof hk_layer_names / sizeof hk_layer_names[0])

static const char *const hk_roles[] = {"kernel", "bias", "gamma", "beta", "moving_mean", "moving_variance"};

/* A name: dictionary entry or up to 15 raw bytes (no NUL). */
static void hk_raw_name(h5f_reader *r, char *out, size_t size) { h5f_raw_name(r, 16, out, size); }

static void hk_layer_name(h5f_reader *r, char *out, size_t size) {
    h5f_pick_name(r, hk_layer_names, HK_NLAYER_NAMES, 224, 16, out, size);
}

static void hk_weight_name(h5f_reader *r, const char *layer, size_t k, char *out, size_t size) {
    unsigned c = h5f_u8(r);
    const char *role = hk_roles[(k + (c >> 3)) % 6];
    switch (c % 6) {
    case 0:
    case 1: h5f_fmt(out, size, "%s/%s:0", layer, role); break;               /* Keras 2, nested */
    case 2: h5f_fmt(out, size, "%s_%s_1:0", layer, k == 0 ? "W" : "b"); break; /* Keras 1, flat */
    case 3: h5f_fmt(out, size, "%s:0", role); break;
    case 4: h5f_fmt(out, size, "../%s/%s:0", layer, role); break;
    default: hk_raw_name(r, out, size); break;
    }
}

/* Writes a 1-D string attribute (fixed or variable length). */
static void hk_string_attr(hid_t obj, const char *name, char names[][64], size_t n, int vlen, int two_d) {
    hid_t type = H5Tcopy(H5T_C_S1);
    hsize_t dims[2] = {n, 1};
    if (two_d && n >= 2) {
        dims[0] = n / 2;
        dims[1] = 2;
        n = n / 2 * 2;
    }
    hid_t space = n ? H5Screate_simple(two_d && n >= 2 ? 2 : 1, dims, NULL) : H5Screate_simple(1, dims, NULL);
    if (vlen) {
        const char *ptrs[16];
        for (size_t i = 0; i < n && i < 16; i++) ptrs[i] = names[i];
        H5Tset_size(type, H5T_VARIABLE);
        hid_t a = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
        if (a >= 0) {
            H5Awrite(a, type, ptrs);
            H5Aclose(a);
        }
    } else {
        size_t width = 1;
        for (size_t i = 0; i < n; i++)
            if (strlen(names[i]) > width) width = strlen(names[i]);
        char buf[16 * 64];
        memset(buf, 0, sizeof buf);
        for (size_t i = 0; i < n; i++) memcpy(buf + i * width, names[i], strlen(names[i]));
        H5Tset_size(type, width);
        H5Tset_strpad(type, H5T_STR_NULLPAD);
        hid_t a = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
        if (a >= 0) {
            H5Awrite(a, type, buf);
            H5Aclose(a);
        }
    }
    H5Sclose(space);
    H5Tclose(type);
}

static void hk_weight_names(h5f_reader *r, hid_t g, char names[][64], size_t n) {
    unsigned kind = h5f_u8(r) % 8;
    if (kind == 0) return; /* no attribute */
    if (kind == 1 || kind == 2 || kind == 3) {
        hsize_t zero = 0, three = 3;
        hid_t space = kind == 1 ? H5Screate_simple(1, &zero, NULL)
                    : kind == 2 ? H5Screate(H5S_NULL)
                                : H5Screate_simple(1, &three, NULL);
        hid_t type = kind == 3 ? H5T_NATIVE_INT : H5T_IEEE_F64LE;
        hid_t a = H5Acreate2(g, "weight_names", type, space, H5P_DEFAULT, H5P_DEFAULT);
        if (a >= 0) {
            int ints[3] = {1, 2, 3};
            double none = 0;
            if (kind == 3) H5Awrite(a, H5T_NATIVE_INT, ints);
            else if (kind == 1) H5Awrite(a, H5T_NATIVE_DOUBLE, &none);
            H5Aclose(a);
        }
        H5Sclose(space);
        return;
    }
    hk_string_attr(g, "weight_names", names, n, kind >= 6, kind == 5);
}

/* The real Keras shape of weight k of a layer (as in fusenet__node_wspecs). */
static int hk_real_shape(const char *layer, size_t k, hsize_t *dims) {
    if (!strcmp(layer, "conv1_conv") || !strcmp(layer, "block1_conv1")) {
        int big = !strcmp(layer, "conv1_conv");
        if (k == 0) {
            dims[0] = dims[1] = big ? 7 : 3;
            dims[2] = 3;
            dims[3] = 64;
            return 4;
        }
        dims[0] = 64;
        return 1;
    }
    dims[0] = 64;
    return 1;
}

static void hk_dataset(h5f_reader *r, hid_t g, const char *layer, size_t k, const char *wname) {
    unsigned how = h5f_u8(r);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    if (how % 8 == 7) { /* missing */
        H5Pclose(lcpl);
        return;
    }
    if (how % 8 == 6) { /* a soft link, dangling or to the layer group itself */
        H5Lcreate_soft((how & 8) ? "/nowhere" : ".", g, wname, lcpl, H5P_DEFAULT);
        H5Pclose(lcpl);
        return;
    }
    hsize_t dims[5] = {1, 1, 1, 1, 1};
    int rank;
    unsigned shape = h5f_u8(r);
    if (shape < 160) {
        rank = hk_real_shape(layer, k, dims);
    } else {
        rank = (int)(shape % 6);
        for (int d = 0; d < rank; d++) dims[d] = h5f_u8(r) % 9;
    }
    hsize_t elems = 1;
    for (int d = 0; d < rank; d++) elems *= dims[d];
    unsigned t = h5f_u8(r) % 8;
    hid_t ftype;
    switch (t) {
    case 0: ftype = H5Tcopy(H5T_IEEE_F32LE); break;
    case 1: ftype = H5Tcopy(H5T_IEEE_F32BE); break;
    case 2: ftype = H5Tcopy(H5T_IEEE_F64LE); break;
    case 3: ftype = H5Tcopy(H5T_IEEE_F64BE); break;
    case 4: ftype = H5Tcopy(H5T_STD_I32LE); break;
    case 5: ftype = H5Tcopy(H5T_NATIVE_FLOAT); break;
    case 6: /* float16, as h5py writes it */
        ftype = H5Tcopy(H5T_IEEE_F32LE);
        H5Tset_fields(ftype, 15, 10, 5, 0, 10);
        H5Tset_size(ftype, 2);
        H5Tset_ebias(ftype, 15);
        break;
    default:
        ftype = H5Tcopy(H5T_C_S1);
        H5Tset_size(ftype, 4);
        break;
    }
    hid_t space = rank ? H5Screate_simple(rank, dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t ds = H5Dcreate2(g, wname, ftype, space, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    if (ds >= 0) {
        /* values: the real ones are small; the input may supply raw floats */
        float *v = malloc((size_t)elems * sizeof *v + sizeof *v);
        FUZZ_CHECK(v != NULL);
        unsigned mode = h5f_u8(r);
        for (hsize_t i = 0; i < elems; i++) v[i] = 0.01f * (float)((i * 7 + k) % 13) - 0.05f;
        if (mode & 1) {
            for (hsize_t i = 0; i < elems && i < 4; i++) {
                uint32_t bits = (uint32_t)h5f_u8(r) << 24 | (uint32_t)h5f_u8(r) << 16 | (uint32_t)h5f_u8(r) << 8 |
                                (uint32_t)h5f_u8(r);
                memcpy(&v[(i * 97) % elems], &bits, 4);
            }
        }
        if (t == 7) {
            char *s = calloc((size_t)elems * 4 + 1, 1);
            FUZZ_CHECK(s != NULL);
            H5Dwrite(ds, ftype, H5S_ALL, H5S_ALL, H5P_DEFAULT, s);
            free(s);
        } else if (t == 4) {
            H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v); /* converted to int */
        } else {
            H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
        }
        free(v);
        H5Dclose(ds);
    }
    H5Sclose(space);
    H5Tclose(ftype);
    H5Pclose(lcpl);
}

static void hk_build(h5f_reader *r) {
    unsigned flags = h5f_u8(r);
    hid_t file = H5Fcreate(h5f_path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    FUZZ_CHECK(file >= 0);
    hid_t root = (flags & 1) ? H5Gcreate2(file, "model_weights", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)
                             : H5Gopen2(file, "/", H5P_DEFAULT);
    FUZZ_CHECK(root >= 0);
    size_t nlayers = h5f_u8(r) % 7;
    char listed[16][64];
    size_t nlisted = 0;
    for (size_t l = 0; l < nlayers; l++) {
        char name[64];
        hk_layer_name(r, name, sizeof name);
        unsigned lf = h5f_u8(r);
        if (!(lf & 1) && nlisted < 16) h5f_fmt(listed[nlisted++], 64, "%s", name);
        if (lf & 2) continue; /* listed but no group */
        hid_t g = H5Gcreate2(root, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (g < 0) g = H5Gopen2(root, name, H5P_DEFAULT); /* a duplicate, or a path */
        if (g < 0) continue;
        size_t nw = h5f_u8(r) % 6;
        char wnames[16][64];
        for (size_t k = 0; k < nw; k++) {
            hk_weight_name(r, name, k, wnames[k], sizeof wnames[k]);
            hk_dataset(r, g, name, k, wnames[k]);
        }
        hk_weight_names(r, g, wnames, nw);
        H5Gclose(g);
    }
    if (flags & 2) { /* chunked: layer_names0, layer_names1, ... */
        for (size_t i = 0; i < nlisted; i += 2) {
            char an[32];
            h5f_fmt(an, sizeof an, "layer_names%zu", i / 2);
            hk_string_attr(root, an, &listed[i], nlisted - i < 2 ? nlisted - i : 2, (flags & 4) != 0, 0);
        }
    } else if (!(flags & 8)) {
        hk_string_attr(root, "layer_names", listed, nlisted, (flags & 4) != 0, (flags & 16) != 0);
    }
    H5Gclose(root);
    H5Fclose(file);
}

int FUZZ_ENTRY(const uint8_t *data, size_t size);

int FUZZ_ENTRY(const uint8_t *data, size_t size) {
    h5f_open_scratch_for_builder();
    h5f_reader r = {data, size, 0};
    hk_build(&r);
    FUZZ_CHECK(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL) == 0);
    h5f_check_file(size > 0 && (data[0] & 128));
    return 0;
}
