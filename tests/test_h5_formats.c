/* test_h5_formats.c - the weights reader (src/io/h5.h) against every on-disk
 * storage variant a real-world Keras weights file may use.
 *
 * What it proves: for each variant in the table below (superblock and object
 * header versions, compact/dense links and attributes, object header
 * continuation blocks, contiguous/compact/chunked layouts with every chunk
 * index and the deflate, shuffle and fletcher32 filters, a user block,
 * float16/32/64 in either byte order, fixed- and variable-length and split
 * name lists) fusenet__h5_open / fusenet__h5_layer_weight_count / fusenet__h5_read_layer return
 * exactly the floats that were written (bit for bit; float64 and float16
 * sources against a plain C cast to float). Variants a reader may legitimately
 * refuse (dense storage, the chunk indexes of libver-latest files, exotic
 * filters, external storage, never-written data) must then fail cleanly: a
 * status other than OK and a non-empty one-line message naming the file.
 * Sweeps over truncated and byte-flipped copies of the baseline file check
 * that the reader never crashes and never returns OK with wrong values for a
 * truncated file.
 *
 * Fixtures are written with the raw HDF5 C API; before a fixture is read, a
 * self-check asks libhdf5 whether the file really has the claimed layout
 * (superblock version, header version, link/attribute storage, header
 * chunks, dataset layout), so a variant cannot silently degrade to the
 * baseline. Each variant prints which outcome it had.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hdf5.h>

#include "h5.h"
#include "test_util.h"

#ifndef FN_BUILD_DIR
#define FN_BUILD_DIR "."
#endif

#define SELF_CHECK_HDF5_1_10 (H5_VERS_MAJOR == 1 && H5_VERS_MINOR == 10)

/* Under AddressSanitizer: a flipped size field can make the reader (libhdf5
 * 1.10.8 does) ask malloc for ~280 TB. The real malloc returns NULL and the
 * reader must turn that into an error; ASan's default is to abort instead,
 * which would hide exactly the contract checked here. Environment
 * ASAN_OPTIONS still apply on top of this. */
const char *__asan_default_options(void);
__attribute__((used)) const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }

/* Under LeakSanitizer: libhdf5 1.10.8 itself leaks on some corrupt files (a
 * plain H5Fopen of the baseline with byte 130 flipped leaks 56 bytes, and the
 * process ends with "HDF5: infinite loop closing library"). Those leaks are
 * not the reader's; allocations made without libhdf5 on the stack (all of a
 * reader that parses the format itself) are still checked. */
const char *__lsan_default_suppressions(void);
__attribute__((used)) const char *__lsan_default_suppressions(void) { return "leak:libhdf5\n"; }

/* ---- temporary directory ---------------------------------------------------- */

static char g_dir[1024];

static const char *tpath(const char *name) {
    static char buf[4][1400];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", g_dir, name);
    return p;
}

static int group_setup(void **state) {
    (void)state;
    snprintf(g_dir, sizeof g_dir, "%s/h5formats_XXXXXX", FN_BUILD_DIR);
    if (!mkdtemp(g_dir)) return -1;
    H5open();
    return 0;
}

static int group_teardown(void **state) {
    (void)state;
    DIR *d = opendir(g_dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            unlink(tpath(e->d_name));
        }
        closedir(d);
    }
    rmdir(g_dir);
    return 0;
}

/* ---- deterministic values ------------------------------------------------------ */

typedef enum dtype { DT_F32LE, DT_F32BE, DT_F64LE, DT_F16LE } dtype;

static uint32_t lcg(uint64_t *s) {
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(*s >> 32);
}

static uint64_t seed_of(const char *text, size_t k) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (const char *p = text; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return h ^ (k * 0x9E3779B97F4A7C15ULL);
}

/* n values for a dataset of type dt. f32 (float32 types) or f64 (float64 and
 * float16) receives what is handed to H5Dwrite; want the float32 the reader
 * must return, computed here with plain C casts:
 *   float32: random sign and mantissa, exponent 2^-27..2^26 (all bits used);
 *   float64: 53 significant bits in +-4096, so the cast to float rounds;
 *   float16: k/64 for |k| <= 512, exact in float16 and float32. */
static void gen_values(uint64_t seed, dtype dt, size_t n, float *f32, double *f64, float *want) {
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++) {
        uint32_t r1 = lcg(&s), r2 = lcg(&s);
        if (dt == DT_F32LE || dt == DT_F32BE) {
            uint32_t bits = (r1 & 0x807FFFFFu) | ((100u + r2 % 54u) << 23);
            memcpy(&f32[i], &bits, sizeof bits);
            want[i] = f32[i];
        } else if (dt == DT_F64LE) {
            int64_t m = (int64_t)((((uint64_t)r1 << 21) ^ r2) & ((1ULL << 53) - 1)) - (1LL << 52);
            f64[i] = (double)m / 1099511627776.0; /* 2^40 */
            want[i] = (float)f64[i];
        } else {
            int k = (int)(r1 % 1025u) - 512;
            f64[i] = (double)k / 64.0;
            want[i] = (float)f64[i];
        }
    }
}

/* A new file type id for dt (close it with H5Tclose). */
static hid_t file_type(dtype dt) {
    switch (dt) {
    case DT_F32LE: return H5Tcopy(H5T_IEEE_F32LE);
    case DT_F32BE: return H5Tcopy(H5T_IEEE_F32BE);
    case DT_F64LE: return H5Tcopy(H5T_IEEE_F64LE);
    case DT_F16LE: break;
    }
    hid_t t = H5Tcopy(H5T_IEEE_F32LE);
    assert_true(t >= 0);
    assert_true(H5Tset_fields(t, 15, 10, 5, 0, 10) >= 0);
    assert_true(H5Tset_size(t, 2) >= 0);
    assert_true(H5Tset_ebias(t, 15) >= 0);
    return t;
}

/* ---- the model of every fixture --------------------------------------------------- */

/* conv (nested names), relu (weightless), [pad layers], fc (flat Keras-1 names). */
typedef struct wdesc {
    const char *layer, *wname, *role;
    int rank;
    hsize_t dims[4];
} wdesc;

static const wdesc WEIGHTS[4] = {
    {"conv", "conv/kernel:0", "kernel", 4, {3, 3, 2, 4}},
    {"conv", "conv/bias:0", "bias", 1, {4}},
    {"fc", "fc_W_1:0", "kernel", 2, {8, 3}},
    {"fc", "fc_b_1:0", "bias", 1, {3}},
};
#define MAXV 72 /* values of the largest weight */

static size_t nvalues(const wdesc *w) {
    size_t n = 1;
    for (int i = 0; i < w->rank; i++) n *= (size_t)w->dims[i];
    return n;
}

#define MAX_LAYERS 64
static char g_pad_names[MAX_LAYERS][16];

/* The layer list of a file with `extra` weightless pad layers. */
static size_t layer_list(int extra, const char **out) {
    size_t n = 0;
    out[n++] = "conv";
    out[n++] = "relu";
    for (int i = 0; i < extra; i++) {
        snprintf(g_pad_names[i], sizeof g_pad_names[i], "pad_%02d", i);
        out[n++] = g_pad_names[i];
    }
    out[n++] = "fc";
    return n;
}

/* ---- the variants --------------------------------------------------------------------- */

typedef enum layout_kind { LAY_CONTIG, LAY_CHUNK, LAY_COMPACT } layout_kind;
enum { F_DEFLATE = 1, F_SHUFFLE = 2, F_FLETCHER = 4 };

/* MUST: the values must be read correctly. MAY_REFUSE: correct values, or a
 * clean error whose message contains "not supported". */
typedef enum policy { MUST, MAY_REFUSE } policy;

typedef struct variant {
    const char *name;
    policy pol;
    int latest;                /* H5Pset_libver_bounds(LATEST, LATEST) */
    hsize_t userblock;         /* 0 or the user block size */
    layout_kind klay, blay;    /* layout of kernels / biases */
    unsigned filters;          /* F_* on chunked datasets */
    int chunk_whole;           /* chunk = whole dataset (single-chunk index) */
    int unlimited;             /* unlimited leading dims of chunked datasets */
    int alloc_early;           /* H5D_ALLOC_TIME_EARLY */
    dtype kdt, bdt;            /* file types of kernels / biases */
    int vlen_layers, vlen_weights; /* variable-length name lists */
    int split_names;           /* layer_names0/1 and weight_names0/1 */
    int extra_layers;          /* weightless pad layers (root links) */
    int dense_attrs;           /* small attributes added first to root and conv */
    int pad_attrs;             /* 100-byte attributes added around the name lists */
    int compact_attr_limit;    /* H5Pset_attr_phase_change max_compact, 0: default */
} variant;

#define CONTIG LAY_CONTIG, LAY_CONTIG
#define CHUNKED LAY_CHUNK, LAY_CHUNK
#define F32 DT_F32LE, DT_F32LE

static const variant VARIANTS[] = {
    /* name                     pol   latest ub  layouts              filters  whole unl early types                 vl vw split extra dense pad limit */
    {"baseline",               MUST, 0, 0, CONTIG, 0, 0, 0, 0, F32, 0, 0, 0, 0, 0, 0, 0},
    {"latest_compact_links",   MUST, 1, 0, CONTIG, 0, 0, 0, 0, F32, 0, 0, 0, 0, 0, 0, 0},
    {"latest_dense_links",     MAY_REFUSE, 1, 0, CONTIG, 0, 0, 0, 0, F32, 0, 0, 0, 37, 0, 0, 0},
    {"latest_dense_attrs",     MAY_REFUSE, 1, 0, CONTIG, 0, 0, 0, 0, F32, 0, 0, 0, 0, 12, 0, 0},
    {"earliest_40_layers",     MUST, 0, 0, CONTIG, 0, 0, 0, 0, F32, 1, 0, 0, 37, 12, 0, 0},
    {"chunked_btree1",         MUST, 0, 0, CHUNKED, 0, 0, 0, 0, F32, 0, 0, 0, 0, 0, 0, 0},
    {"chunked_deflate",        MUST, 0, 0, CHUNKED, F_DEFLATE, 0, 0, 0, F32, 0, 0, 0, 0, 0, 0, 0},
    {"chunked_shuffle_deflate", MUST, 0, 0, CHUNKED, F_SHUFFLE | F_DEFLATE, 0, 0, 0, F32, 0, 0, 0, 0, 0, 0, 0},
    {"chunked_fletcher_deflate", MUST, 0, 0, CHUNKED, F_DEFLATE | F_FLETCHER, 0, 0, 0, F32, 0, 0, 0, 0, 0, 0, 0},
    {"chunked_unlimited_btree1", MUST, 0, 0, CHUNKED, F_DEFLATE, 0, 2, 0, F32, 0, 0, 0, 0, 0, 0, 0},
    {"latest_chunk_fixed_array", MAY_REFUSE, 1, 0, CHUNKED, F_SHUFFLE | F_DEFLATE, 0, 0, 0, F32, 0, 0, 0, 0, 0, 0, 0},
    {"latest_chunk_single",    MAY_REFUSE, 1, 0, CHUNKED, 0, 1, 0, 0, F32, 0, 0, 0, 0, 0, 0, 0},
    {"latest_chunk_single_filtered", MAY_REFUSE, 1, 0, CHUNKED, F_DEFLATE | F_FLETCHER, 1, 0, 0, F32, 0, 0, 0, 0, 0, 0, 0},
    {"latest_chunk_implicit",  MAY_REFUSE, 1, 0, CHUNKED, 0, 0, 0, 1, F32, 0, 0, 0, 0, 0, 0, 0},
    {"latest_chunk_ext_array", MAY_REFUSE, 1, 0, CHUNKED, F_DEFLATE, 0, 1, 0, F32, 0, 0, 0, 0, 0, 0, 0},
    {"latest_chunk_btree2",    MAY_REFUSE, 1, 0, CHUNKED, F_DEFLATE, 0, 2, 0, F32, 0, 0, 0, 0, 0, 0, 0},
    {"compact_bias",           MUST, 0, 0, LAY_CONTIG, LAY_COMPACT, 0, 0, 0, 0, F32, 0, 0, 0, 0, 0, 0, 0},
    {"latest_compact_layouts", MUST, 1, 0, LAY_COMPACT, LAY_COMPACT, 0, 0, 0, 0, F32, 0, 0, 0, 0, 0, 0, 0},
    {"userblock_512",          MUST, 0, 512, CONTIG, 0, 0, 0, 0, F32, 0, 0, 0, 0, 0, 0, 0},
    {"userblock_chunked_f64",  MUST, 0, 1024, CHUNKED, F_DEFLATE, 0, 0, 0, DT_F64LE, DT_F64LE, 1, 1, 0, 0, 0, 0, 0},
    {"continuation_v1",        MUST, 0, 0, CONTIG, 0, 0, 0, 0, F32, 0, 0, 0, 0, 0, 30, 0},
    {"continuation_v1_vlen",   MUST, 0, 0, CHUNKED, F_DEFLATE, 0, 0, 0, F32, 1, 1, 0, 0, 0, 30, 0},
    {"continuation_v2",        MUST, 1, 0, CONTIG, 0, 0, 0, 0, F32, 0, 0, 0, 0, 0, 30, 100},
    {"f32be",                  MUST, 0, 0, CONTIG, 0, 0, 0, 0, DT_F32BE, DT_F32BE, 0, 0, 0, 0, 0, 0, 0},
    {"f64le",                  MUST, 0, 0, CONTIG, 0, 0, 0, 0, DT_F64LE, DT_F64LE, 0, 0, 0, 0, 0, 0, 0},
    {"f16le",                  MUST, 0, 0, CONTIG, 0, 0, 0, 0, DT_F16LE, DT_F16LE, 0, 0, 0, 0, 0, 0, 0},
    {"f32be_chunked_shuffle",  MUST, 0, 0, CHUNKED, F_SHUFFLE | F_DEFLATE, 0, 0, 0, DT_F32BE, DT_F16LE, 0, 0, 0, 0, 0, 0, 0},
    {"names_vlen",             MUST, 0, 0, CONTIG, 0, 0, 0, 0, F32, 1, 1, 0, 0, 0, 0, 0},
    {"names_vlen_layers_fixed_weights", MUST, 0, 0, CONTIG, 0, 0, 0, 0, F32, 1, 0, 0, 0, 0, 0, 0},
    {"names_fixed_layers_vlen_weights", MUST, 0, 0, CONTIG, 0, 0, 0, 0, F32, 0, 1, 0, 0, 0, 0, 0},
    {"names_split",            MUST, 0, 0, CONTIG, 0, 0, 0, 0, F32, 0, 1, 1, 0, 0, 0, 0},
    {"latest_names_vlen_split", MUST, 1, 0, CONTIG, 0, 0, 0, 0, F32, 1, 0, 1, 0, 0, 0, 0},
};
#define NVARIANTS (sizeof VARIANTS / sizeof VARIANTS[0])

/* ---- fixture writing -------------------------------------------------------------------- */

/* A name list as `base` or, split, as base0 (first half) and base1 (the rest,
 * in the other string flavour). */
static void put_names(hid_t obj, const char *base, const char *const *v, size_t n, int vlen, int split) {
    if (!split) {
        fx_strings(obj, base, v, n, vlen);
        return;
    }
    char name[64];
    size_t half = (n + 1) / 2;
    snprintf(name, sizeof name, "%s0", base);
    fx_strings(obj, name, v, half, vlen);
    snprintf(name, sizeof name, "%s1", base);
    fx_strings(obj, name, v + half, n - half, !vlen);
}


/* `count` scalar fixed-length string attributes prefix_NN of `bytes` bytes. */
static void put_filler(hid_t obj, const char *prefix, int first, int count, size_t bytes) {
    char *text = malloc(bytes);
    assert_non_null(text);
    hid_t space = H5Screate(H5S_SCALAR), type = H5Tcopy(H5T_C_S1);
    assert_true(H5Tset_size(type, bytes) >= 0);
    for (int i = first; i < first + count; i++) {
        char name[32];
        snprintf(name, sizeof name, "%s_%02d", prefix, i);
        memset(text, 'a' + i % 26, bytes);
        hid_t a = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
        assert_true(a >= 0);
        assert_true(H5Awrite(a, type, text) >= 0);
        H5Aclose(a);
    }
    H5Tclose(type);
    H5Sclose(space);
    free(text);
}

static hid_t make_dcpl(const variant *v, const wdesc *w) {
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    assert_true(dcpl >= 0);
    layout_kind lay = w->rank > 1 ? v->klay : v->blay;
    if (lay == LAY_COMPACT) {
        assert_true(H5Pset_layout(dcpl, H5D_COMPACT) >= 0);
    } else if (lay == LAY_CHUNK) {
        /* chunks smaller than the dataset and not dividing it */
        static const hsize_t conv_chunk[4] = {2, 2, 2, 3};
        hsize_t c[4];
        for (int i = 0; i < w->rank; i++) {
            if (v->chunk_whole)
                c[i] = w->dims[i];
            else if (w->rank == 4)
                c[i] = conv_chunk[i];
            else
                c[i] = w->dims[i] > 1 ? w->dims[i] - 1 : 1;
        }
        assert_true(H5Pset_chunk(dcpl, w->rank, c) >= 0);
        if (v->filters & F_SHUFFLE) assert_true(H5Pset_shuffle(dcpl) >= 0);
        if (v->filters & F_DEFLATE) assert_true(H5Pset_deflate(dcpl, 4) >= 0);
        if (v->filters & F_FLETCHER) assert_true(H5Pset_fletcher32(dcpl) >= 0);
    }
    if (v->alloc_early) assert_true(H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY) >= 0);
    return dcpl;
}

/* Writes weight k of variant v under group g; its expected floats into want. */
static void put_weight(hid_t g, const variant *v, size_t k, float *want) {
    const wdesc *w = &WEIGHTS[k];
    dtype dt = w->rank > 1 ? v->kdt : v->bdt;
    float f32[MAXV];
    double f64[MAXV];
    gen_values(seed_of(v->name, k), dt, nvalues(w), f32, f64, want);

    hsize_t maxdims[4];
    for (int i = 0; i < w->rank; i++) maxdims[i] = i < v->unlimited ? H5S_UNLIMITED : w->dims[i];
    hid_t space = H5Screate_simple(w->rank, w->dims, maxdims);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    assert_true(H5Pset_create_intermediate_group(lcpl, 1) >= 0);
    hid_t dcpl = make_dcpl(v, w), ftype = file_type(dt);
    hid_t ds = H5Dcreate2(g, w->wname, ftype, space, lcpl, dcpl, H5P_DEFAULT);
    assert_true(ds >= 0);
    int is_f32 = dt == DT_F32LE || dt == DT_F32BE;
    assert_true(H5Dwrite(ds, is_f32 ? H5T_NATIVE_FLOAT : H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                         is_f32 ? (const void *)f32 : (const void *)f64) >= 0);
    H5Dclose(ds);
    H5Tclose(ftype);
    H5Pclose(dcpl);
    H5Pclose(lcpl);
    H5Sclose(space);
}

typedef struct expected {
    float v[4][MAXV]; /* per WEIGHTS entry */
} expected;

/* A group that follows the variant's attribute settings. */
static hid_t make_group(hid_t parent, const char *name, const variant *v) {
    hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE);
    if (v->compact_attr_limit)
        assert_true(H5Pset_attr_phase_change(gcpl, (unsigned)v->compact_attr_limit,
                                             (unsigned)v->compact_attr_limit - 2) >= 0);
    hid_t g = H5Gcreate2(parent, name, H5P_DEFAULT, gcpl, H5P_DEFAULT);
    assert_true(g >= 0);
    H5Pclose(gcpl);
    return g;
}

/* Writes the weights file of variant v; fills the expected floats. */
static void make_variant(const char *path, const variant *v, expected *ex) {
    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE), fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (v->userblock) assert_true(H5Pset_userblock(fcpl, v->userblock) >= 0);
    if (v->compact_attr_limit)
        assert_true(H5Pset_attr_phase_change(fcpl, (unsigned)v->compact_attr_limit,
                                             (unsigned)v->compact_attr_limit - 2) >= 0);
    if (v->latest) assert_true(H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST) >= 0);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, fcpl, fapl);
    assert_true(f >= 0);
    H5Pclose(fcpl);
    H5Pclose(fapl);

    const char *layers[MAX_LAYERS];
    size_t nl = layer_list(v->extra_layers, layers);
    if (v->dense_attrs) put_filler(f, "meta", 0, v->dense_attrs, 16);
    if (!v->pad_attrs) put_names(f, "layer_names", layers, nl, v->vlen_layers, v->split_names);

    hid_t conv = make_group(f, "conv", v);
    if (v->dense_attrs) put_filler(conv, "meta", 0, v->dense_attrs, 16);
    const char *cw[] = {WEIGHTS[0].wname, WEIGHTS[1].wname};
    if (!v->pad_attrs) put_names(conv, "weight_names", cw, 2, v->vlen_weights, v->split_names);
    put_weight(conv, v, 0, ex->v[0]);
    put_weight(conv, v, 1, ex->v[1]);

    for (size_t i = 1; i + 1 < nl; i++) { /* relu and the pad layers */
        hid_t g = make_group(f, layers[i], v);
        fx_empty(g, "weight_names");
        H5Gclose(g);
    }
    hid_t fc = make_group(f, "fc", v);
    const char *fw[] = {WEIGHTS[2].wname, WEIGHTS[3].wname};
    put_names(fc, "weight_names", fw, 2, v->vlen_weights, v->split_names);
    put_weight(fc, v, 2, ex->v[2]);
    put_weight(fc, v, 3, ex->v[3]);
    H5Gclose(fc);

    if (v->pad_attrs) {
        /* after every dataset and group exists: the headers of / and conv grow
         * into continuation blocks, and the name lists land in one of them */
        int half = v->pad_attrs / 2;
        put_filler(f, "pad", 0, half, 100);
        put_filler(conv, "pad", 0, half, 100);
        put_names(f, "layer_names", layers, nl, v->vlen_layers, v->split_names);
        put_names(conv, "weight_names", cw, 2, v->vlen_weights, v->split_names);
        put_filler(f, "pad", half, v->pad_attrs - half, 100);
        put_filler(conv, "pad", half, v->pad_attrs - half, 100);
    }
    H5Gclose(conv);
    assert_true(H5Fclose(f) >= 0);
}

/* ---- fixture self-check: the file has the layout the variant claims ------------------------ */

#if SELF_CHECK_HDF5_1_10
static void object_info(hid_t obj, H5O_info_t *oi) {
    memset(oi, 0, sizeof *oi);
    assert_true(H5Oget_info2(obj, oi, H5O_INFO_ALL) >= 0);
}

static void check_dataset_layout(hid_t f, const variant *v, const wdesc *w) {
    char path[64];
    snprintf(path, sizeof path, "%s/%s", w->layer, w->wname);
    hid_t ds = H5Dopen2(f, path, H5P_DEFAULT);
    assert_true(ds >= 0);
    hid_t dcpl = H5Dget_create_plist(ds);
    layout_kind lay = w->rank > 1 ? v->klay : v->blay;
    H5D_layout_t want = lay == LAY_CHUNK ? H5D_CHUNKED : lay == LAY_COMPACT ? H5D_COMPACT : H5D_CONTIGUOUS;
    assert_int_equal(H5Pget_layout(dcpl), want);
    int nf = (v->filters & F_DEFLATE ? 1 : 0) + (v->filters & F_SHUFFLE ? 1 : 0) + (v->filters & F_FLETCHER ? 1 : 0);
    assert_int_equal(H5Pget_nfilters(dcpl), lay == LAY_CHUNK ? nf : 0);
    H5Pclose(dcpl);
    H5Dclose(ds);
}
#endif

static void self_check(const char *path, const variant *v) {
#if SELF_CHECK_HDF5_1_10
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(f >= 0);
    H5F_info2_t fi;
    assert_true(H5Fget_info2(f, &fi) >= 0);
    assert_int_equal(fi.super.version, v->latest ? 3 : 0);
    hid_t fcpl = H5Fget_create_plist(f);
    hsize_t ub = 99;
    H5Pget_userblock(fcpl, &ub);
    assert_int_equal(ub, v->userblock);
    H5Pclose(fcpl);

    hid_t conv = H5Gopen2(f, "conv", H5P_DEFAULT);
    assert_true(conv >= 0);
    H5G_info_t gi;
    assert_true(H5Gget_info(f, &gi) >= 0);
    H5G_storage_type_t links =
        !v->latest ? H5G_STORAGE_TYPE_SYMBOL_TABLE
                   : (v->extra_layers + 3 > 8 ? H5G_STORAGE_TYPE_DENSE : H5G_STORAGE_TYPE_COMPACT);
    assert_int_equal(gi.storage_type, links);
    H5O_info_t oi;
    hid_t objs[2] = {f, conv};
    for (int i = 0; i < 2; i++) {
        object_info(objs[i], &oi);
        assert_int_equal(oi.hdr.version, v->latest ? 2 : 1);
        int dense = v->latest && oi.num_attrs > (hsize_t)(v->compact_attr_limit ? v->compact_attr_limit : 8);
        if (dense)
            assert_true(oi.meta_size.attr.heap_size > 0);
        else
            assert_int_equal(oi.meta_size.attr.heap_size, 0);
        if (v->pad_attrs) assert_true(oi.hdr.nchunks > 1); /* continuation blocks */
    }
    for (size_t k = 0; k < 4; k++) check_dataset_layout(f, v, &WEIGHTS[k]);
    H5Gclose(conv);
    if (v->latest && v->dense_attrs) {
        object_info(f, &oi);
        assert_true(oi.meta_size.attr.heap_size > 0);
    }
    assert_true(H5Fclose(f) >= 0);
#else
    (void)path;
    (void)v;
#endif
}

/* ---- reading through the library ------------------------------------------------------------ */

static void fill_specs(fn_wspec s[2], size_t first, float *a, float *b) {
    memset(s, 0, 2 * sizeof *s);
    float *bufs[2] = {a, b};
    for (size_t i = 0; i < 2; i++) {
        const wdesc *w = &WEIGHTS[first + i];
        s[i].role = w->role;
        s[i].rank = w->rank;
        for (int d = 0; d < w->rank; d++) s[i].dims[d] = (int64_t)w->dims[d];
        s[i].data = bufs[i];
    }
}

/* A failed call: a status, the same status in err, a non-empty one-line
 * message naming the file. */
static void expect_clean_error(fusenet_status st, const fusenet_error *err, const char *path) {
    assert_int_not_equal(st, FUSENET_OK);
    assert_int_equal(err->status, st);
    if (err->message[0] == '\0') fail_msg("status %d with an empty message", (int)st);
    if (strchr(err->message, '\n')) fail_msg("message is not one line: %s", err->message);
    if (!strstr(err->message, path)) fail_msg("message does not name the file: %s", err->message);
}

/* Reads the whole file of a variant. Returns FUSENET_OK with every value
 * compared bit for bit, or the first failing status with err filled. */
static fusenet_status read_variant(const char *path, const variant *v, const expected *ex, fusenet_error *err) {
    fn_h5 *f = NULL;
    fusenet_status st = fusenet__h5_open(path, &f, err);
    if (st != FUSENET_OK) {
        assert_null(f);
        return st;
    }
    assert_int_equal(err->status, FUSENET_OK);
    const char *layers[MAX_LAYERS];
    size_t nl = layer_list(v->extra_layers, layers);
    assert_int_equal(fusenet__h5_layer_count(f), nl);
    for (size_t i = 0; i < nl; i++) assert_string_equal(fusenet__h5_layer_name(f, i), layers[i]);
    assert_null(fusenet__h5_layer_name(f, nl));

    for (size_t i = 0; i < nl && st == FUSENET_OK; i++) {
        size_t n = 99;
        int has = !strcmp(layers[i], "conv") || !strcmp(layers[i], "fc");
        st = fusenet__h5_layer_weight_count(f, layers[i], &n, err);
        if (st != FUSENET_OK) break;
        assert_int_equal(n, has ? 2 : 0);
        if (!has) {
            st = fusenet__h5_read_layer(f, layers[i], 0, NULL, 0, err);
            continue;
        }
        size_t first = strcmp(layers[i], "conv") ? 2 : 0;
        float a[MAXV], b[MAXV];
        memset(a, 0xA5, sizeof a);
        memset(b, 0xA5, sizeof b);
        fn_wspec s[2];
        fill_specs(s, first, a, b);
        st = fusenet__h5_read_layer(f, layers[i], 2, s, 0, err);
        if (st != FUSENET_OK) break;
        assert_int_equal(err->status, FUSENET_OK);
        for (size_t j = 0; j < nvalues(&WEIGHTS[first]); j++)
            if (memcmp(&a[j], &ex->v[first][j], sizeof(float)))
                fail_msg("%s: %s [%zu] = %a, wrote %a", path, WEIGHTS[first].wname, j, (double)a[j],
                         (double)ex->v[first][j]);
        for (size_t j = 0; j < nvalues(&WEIGHTS[first + 1]); j++)
            if (memcmp(&b[j], &ex->v[first + 1][j], sizeof(float)))
                fail_msg("%s: %s [%zu] = %a, wrote %a", path, WEIGHTS[first + 1].wname, j, (double)b[j],
                         (double)ex->v[first + 1][j]);
    }
    fusenet__h5_close(f);
    return st;
}

/* Every variant is tried; a MUST variant that is refused is reported and the
 * test fails at the end (wrong values fail at once). */
static void test_variants(void **state) {
    (void)state;
    int refused_must = 0;
    for (size_t i = 0; i < NVARIANTS; i++) {
        const variant *v = &VARIANTS[i];
        char name[128];
        snprintf(name, sizeof name, "%s.h5", v->name);
        const char *path = tpath(name);
        expected ex;
        make_variant(path, v, &ex);
        self_check(path, v);
        fusenet_error err;
        fusenet_status st = read_variant(path, v, &ex, &err);
        if (st == FUSENET_OK) {
            printf("[ variant  ] %-32s values correct\n", v->name);
            continue;
        }
        expect_clean_error(st, &err, path);
        if (v->pol == MUST) {
            printf("[ variant  ] %-32s FAILED, must be read: status %d: %s\n", v->name, (int)st, err.message);
            refused_must++;
            continue;
        }
        if (!strstr(err.message, "not supported"))
            fail_msg("variant %s refused without \"not supported\": %s", v->name, err.message);
        printf("[ variant  ] %-32s refused: %s\n", v->name, err.message);
    }
    if (refused_must) fail_msg("%d variant(s) that must be read were refused", refused_must);
}

/* ---- variants a reader may refuse ------------------------------------------------------------ */

/* A file with the layers "relu" (weightless) and `layer`, whose only weight
 * "<layer>/w:0" of shape (3, 5) is created with ftype and dcpl and written
 * from buf (memory type mtype) unless buf is NULL. */
static void make_single(const char *path, const char *layer, hid_t ftype, hid_t dcpl, hid_t mtype,
                        const void *buf) {
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(f >= 0);
    const char *layers[] = {"relu", layer};
    put_names(f, "layer_names", layers, 2, 0, 0);
    hid_t g = H5Gcreate2(f, "relu", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    fx_empty(g, "weight_names");
    H5Gclose(g);
    g = H5Gcreate2(f, layer, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(g >= 0);
    char wname[64];
    snprintf(wname, sizeof wname, "%s/w:0", layer);
    const char *wn[] = {wname};
    put_names(g, "weight_names", wn, 1, 1, 0);
    hsize_t dims[2] = {3, 5};
    hid_t space = H5Screate_simple(2, dims, NULL);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t ds = H5Dcreate2(g, wname, ftype, space, lcpl, dcpl, H5P_DEFAULT);
    assert_true(ds >= 0);
    if (buf) assert_true(H5Dwrite(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0);
    H5Dclose(ds);
    H5Pclose(lcpl);
    H5Sclose(space);
    H5Gclose(g);
    assert_true(H5Fclose(f) >= 0);
}

/* Reads the (3, 5) weight of `layer` into out[15]. */
static fusenet_status read_single(const char *path, const char *layer, float *out, fusenet_error *err) {
    fn_h5 *f = NULL;
    fusenet_status st = fusenet__h5_open(path, &f, err);
    if (st != FUSENET_OK) return st;
    fn_wspec s = {"kernel", 2, {3, 5}, out};
    for (size_t i = 0; i < 15; i++) out[i] = -12345.0f;
    st = fusenet__h5_read_layer(f, layer, 1, &s, 0, err);
    if (st == FUSENET_OK) assert_int_equal(fusenet__h5_read_layer(f, "relu", 0, NULL, 0, err), FUSENET_OK);
    fusenet__h5_close(f);
    return st;
}

static void test_integer_dataset(void **state) {
    (void)state;
    const char *path = tpath("ints.h5");
    int32_t iv[15];
    for (int i = 0; i < 15; i++) iv[i] = i - 7;
    make_single(path, "ints", H5T_STD_I32LE, H5P_DEFAULT, H5T_NATIVE_INT32, iv);
    float out[15];
    fusenet_error err;
    fusenet_status st = read_single(path, "ints", out, &err);
    assert_int_equal(st, FUSENET_ERR_FORMAT);
    expect_clean_error(st, &err, path);
    if (!strstr(err.message, "ints/w:0")) fail_msg("message does not name the weight: %s", err.message);
    printf("[ refused  ] integer dataset: %s\n", err.message);
}

/* Values that survive nbit (full precision) and scale-offset with D = 2
 * exactly: k/4. */
static void quarter_values(float *v) {
    for (int i = 0; i < 15; i++) v[i] = (float)(i * 3 - 20) / 4.0f;
}

static void expect_values_or_filter_error(const char *what, const char *path, const char *layer,
                                          const float *want) {
    float out[15];
    fusenet_error err;
    fusenet_status st = read_single(path, layer, out, &err);
    if (st == FUSENET_OK) {
        assert_memory_equal(out, want, sizeof out);
        printf("[ filter   ] %-32s values correct\n", what);
        return;
    }
    expect_clean_error(st, &err, path);
    if (!strstr(err.message, "filter")) fail_msg("%s refused without \"filter\": %s", what, err.message);
    printf("[ filter   ] %-32s refused: %s\n", what, err.message);
}

static void test_nbit_filter(void **state) {
    (void)state;
    const char *path = tpath("nbit.h5");
    float v[15];
    quarter_values(v);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hsize_t chunk[2] = {2, 4};
    H5Pset_chunk(dcpl, 2, chunk);
    assert_true(H5Pset_nbit(dcpl) >= 0);
    make_single(path, "nbit", H5T_IEEE_F32LE, dcpl, H5T_NATIVE_FLOAT, v);
    H5Pclose(dcpl);
    expect_values_or_filter_error("nbit", path, "nbit", v);
}

static void test_scaleoffset_filter(void **state) {
    (void)state;
    const char *path = tpath("scaleoffset.h5");
    float v[15];
    quarter_values(v);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hsize_t chunk[2] = {2, 4};
    H5Pset_chunk(dcpl, 2, chunk);
    assert_true(H5Pset_scaleoffset(dcpl, H5Z_SO_FLOAT_DSCALE, 2) >= 0);
    make_single(path, "so", H5T_IEEE_F32LE, dcpl, H5T_NATIVE_FLOAT, v);
    H5Pclose(dcpl);
    /* the filter is lossy in general; these values are exact (libhdf5 agrees) */
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t ds = H5Dopen2(f, "so/so/w:0", H5P_DEFAULT);
    float back[15];
    assert_true(H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, back) >= 0);
    H5Dclose(ds);
    H5Fclose(f);
    assert_memory_equal(back, v, sizeof v);
    expect_values_or_filter_error("scaleoffset", path, "so", v);
}

static void test_external_storage(void **state) {
    (void)state;
    const char *path = tpath("external.h5");
    char raw[1400];
    snprintf(raw, sizeof raw, "%s", tpath("external.raw"));
    float v[15];
    gen_values(seed_of("external", 0), DT_F32LE, 15, v, NULL, v);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    assert_true(H5Pset_external(dcpl, raw, 0, 15 * sizeof(float)) >= 0);
    make_single(path, "ext", H5T_IEEE_F32LE, dcpl, H5T_NATIVE_FLOAT, v);
    H5Pclose(dcpl);
    struct stat sb;
    assert_int_equal(stat(raw, &sb), 0);
    assert_int_equal(sb.st_size, 15 * sizeof(float));

    float out[15];
    fusenet_error err;
    fusenet_status st = read_single(path, "ext", out, &err);
    if (st == FUSENET_OK) {
        assert_memory_equal(out, v, sizeof v);
        printf("[ external ] values correct (read from %s)\n", raw);
    } else {
        expect_clean_error(st, &err, path);
        printf("[ external ] refused: %s\n", err.message);
    }
}

/* Datasets created but never written: the reader returns the fill value (0 by
 * default, 1.5 when set) or refuses; a default fill must never come back as
 * anything else, and a set fill value never as zeros. */
static void test_never_written(void **state) {
    (void)state;
    static const struct {
        const char *name;
        int chunked;
        int fill;
    } cases[] = {{"unwritten_contiguous", 0, 0}, {"unwritten_chunked", 1, 0}, {"unwritten_fill_1_5", 0, 1}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char file[64];
        snprintf(file, sizeof file, "%s.h5", cases[c].name);
        const char *path = tpath(file);
        hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
        if (cases[c].chunked) {
            hsize_t chunk[2] = {2, 2};
            H5Pset_chunk(dcpl, 2, chunk);
        }
        float fill = 1.5f;
        if (cases[c].fill) assert_true(H5Pset_fill_value(dcpl, H5T_NATIVE_FLOAT, &fill) >= 0);
        make_single(path, "u", H5T_IEEE_F32LE, dcpl, H5T_NATIVE_FLOAT, NULL);
        H5Pclose(dcpl);

        float out[15];
        fusenet_error err;
        fusenet_status st = read_single(path, "u", out, &err);
        if (st == FUSENET_OK) {
            float want = cases[c].fill ? fill : 0.0f;
            for (int i = 0; i < 15; i++)
                if (memcmp(&out[i], &want, sizeof want))
                    fail_msg("%s: value %d = %a, expected the fill value %a", cases[c].name, i, (double)out[i],
                             (double)want);
            printf("[ unwritten] %-32s values = fill value %g\n", cases[c].name, (double)want);
        } else {
            expect_clean_error(st, &err, path);
            printf("[ unwritten] %-32s refused: %s\n", cases[c].name, err.message);
        }
    }
}

/* ---- truncated and corrupted copies of the baseline ------------------------------------------- */

typedef struct sweep_stats {
    int open_failed, read_failed, ok_equal, ok_differ_raw, ok_differ_meta;
} sweep_stats;

typedef struct range {
    haddr_t off;
    hsize_t len;
} range;

static void write_file(const char *path, const unsigned char *data, size_t n) {
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    if (n) assert_int_equal(fwrite(data, 1, n, fp), n);
    assert_int_equal(fclose(fp), 0);
}

static unsigned char *slurp(const char *path, size_t *size) {
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, 0, SEEK_END), 0);
    long n = ftell(fp);
    assert_true(n > 0);
    rewind(fp);
    unsigned char *data = malloc((size_t)n);
    assert_non_null(data);
    assert_int_equal(fread(data, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    *size = (size_t)n;
    return data;
}

/* Writes data[0..n) to a fresh file "<kind>_<at>.h5". A fresh name (and so a
 * fresh inode) each time: libhdf5 may keep the state of a corrupt file it
 * failed to close and would reuse it for a file with the same inode. */
static const char *damaged_copy(const char *kind, size_t at, const unsigned char *data, size_t n) {
    char name[64];
    snprintf(name, sizeof name, "%s_%zu.h5", kind, at);
    const char *path = tpath(name);
    write_file(path, data, n);
    return path;
}

static void remove_damaged_copies(void) {
    DIR *d = opendir(g_dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (!strncmp(e->d_name, "cut_", 4) || !strncmp(e->d_name, "flip_", 5)) unlink(tpath(e->d_name));
    closedir(d);
}

/* Opens and reads every layer of a damaged baseline copy. Every failing call
 * must honour the error contract. Returns 1 if everything read OK, and sets
 * *differs when some value is not the one written. */
static int probe(const char *path, const expected *ex, sweep_stats *stats, int *differs) {
    fusenet_error err;
    fn_h5 *f = (fn_h5 *)&err;
    *differs = 0;
    fusenet_status st = fusenet__h5_open(path, &f, &err);
    if (st != FUSENET_OK) {
        assert_null(f);
        expect_clean_error(st, &err, path);
        stats->open_failed++;
        return 0;
    }
    /* the names the file now lists, whatever they are */
    for (size_t i = 0; i < fusenet__h5_layer_count(f); i++) {
        size_t n;
        const char *name = fusenet__h5_layer_name(f, i);
        assert_non_null(name);
        st = fusenet__h5_layer_weight_count(f, name, &n, &err);
        if (st != FUSENET_OK) expect_clean_error(st, &err, path);
    }
    int all_ok = 1;
    static const char *const layers[] = {"conv", "relu", "fc"};
    for (size_t i = 0; i < 3; i++) {
        float a[MAXV], b[MAXV];
        fn_wspec s[2];
        size_t first = i == 0 ? 0 : 2;
        fill_specs(s, first, a, b);
        st = fusenet__h5_read_layer(f, layers[i], i == 1 ? 0 : 2, s, 0, &err);
        if (st != FUSENET_OK) {
            expect_clean_error(st, &err, path);
            all_ok = 0;
            continue;
        }
        if (i == 1) continue;
        if (memcmp(a, ex->v[first], nvalues(&WEIGHTS[first]) * sizeof(float)) ||
            memcmp(b, ex->v[first + 1], nvalues(&WEIGHTS[first + 1]) * sizeof(float)))
            *differs = 1;
    }
    fusenet__h5_close(f);
    if (!all_ok) stats->read_failed++;
    return all_ok;
}

static void test_truncated_and_flipped(void **state) {
    (void)state;
    const char *good = tpath("sweep_baseline.h5");
    expected ex;
    make_variant(good, &VARIANTS[0], &ex);
    size_t size;
    unsigned char *data = slurp(good, &size);

    /* where the raw data of the four datasets lies */
    range raw[4];
    hid_t f = H5Fopen(good, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(f >= 0);
    for (size_t k = 0; k < 4; k++) {
        char p[64];
        snprintf(p, sizeof p, "%s/%s", WEIGHTS[k].layer, WEIGHTS[k].wname);
        hid_t ds = H5Dopen2(f, p, H5P_DEFAULT);
        assert_true(ds >= 0);
        raw[k].off = H5Dget_offset(ds);
        raw[k].len = H5Dget_storage_size(ds);
        assert_true(raw[k].off != HADDR_UNDEF && raw[k].off + raw[k].len <= size);
        H5Dclose(ds);
    }
    H5Fclose(f);

    sweep_stats cut = {0};
    int differs;
    assert_int_equal(probe(good, &ex, &cut, &differs), 1); /* the undamaged file */
    assert_int_equal(differs, 0);
    for (size_t n = 0; n < size; n = n < 64 ? n + 1 : n + 97) {
        const char *bad = damaged_copy("cut", n, data, n);
        if (probe(bad, &ex, &cut, &differs)) {
            if (differs) fail_msg("truncated at %zu of %zu bytes: read OK with wrong values", n, size);
            cut.ok_equal++;
        }
    }
    printf("[ truncate ] %zu-byte baseline: open failed %d, a read failed %d, read OK (values intact) %d\n", size,
           cut.open_failed, cut.read_failed, cut.ok_equal);

    sweep_stats flip = {0};
    char meta_offsets[256] = "";
    size_t mlen = 0;
    for (size_t off = 0; off < size; off += 13) {
        data[off] ^= 0xFF;
        const char *bad = damaged_copy("flip", off, data, size);
        data[off] ^= 0xFF;
        if (!probe(bad, &ex, &flip, &differs)) continue;
        if (!differs) {
            flip.ok_equal++;
            continue;
        }
        int in_raw = 0;
        for (size_t k = 0; k < 4; k++) in_raw |= off >= raw[k].off && off < raw[k].off + raw[k].len;
        if (in_raw) {
            flip.ok_differ_raw++;
        } else {
            flip.ok_differ_meta++;
            if (mlen + 12 < sizeof meta_offsets)
                mlen += (size_t)snprintf(meta_offsets + mlen, sizeof meta_offsets - mlen, " %zu", off);
        }
    }
    printf("[ flip     ] every 13th byte: open failed %d, a read failed %d, read OK: same values %d, "
           "changed raw data %d, changed by metadata %d%s%s\n",
           flip.open_failed, flip.read_failed, flip.ok_equal, flip.ok_differ_raw, flip.ok_differ_meta,
           mlen ? " at offsets" : "", meta_offsets);
    remove_damaged_copies();
    free(data);
}

/* ---- many layers ------------------------------------------------------------ */

/* 3000 layer groups in the root, a (3,) weight in every 7th: under libver
 * earliest a symbol table (375+ symbol nodes under a v1 B-tree of two
 * levels); under latest dense link storage (75 KB of link messages: a fractal
 * heap with an indirect block; 3000 records of 11 bytes in 512-byte nodes: a
 * v2 B-tree with internal nodes). The storage kind is checked with libhdf5.
 * Every layer must be found and every value read, and reading all of them
 * must not run out of the reader's metadata budget (each group's links are
 * listed once, not per lookup). */
#define MANY 3000
static void test_many_layers(void **state) {
    (void)state;
    for (int latest = 0; latest <= 1; latest++) {
        const char *path = tpath(latest ? "many_latest.h5" : "many_earliest.h5");
        hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
        if (latest) H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
        hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
        assert_true(f >= 0);
        H5Pclose(fapl);
        static char names[MANY][16];
        const char *list[MANY];
        for (int i = 0; i < MANY; i++) {
            snprintf(names[i], sizeof names[i], "layer_%04d", i);
            list[i] = names[i];
        }
        put_names(f, "layer_names", list, MANY, 0, 0);
        for (int i = 0; i < MANY; i++) {
            hid_t g = H5Gcreate2(f, names[i], H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
            assert_true(g >= 0);
            if (i % 7 == 0) {
                const char *wn[] = {"w:0"};
                put_names(g, "weight_names", wn, 1, 0, 0);
                float v[3] = {(float)i, (float)i + 0.5f, -(float)i};
                hsize_t dim = 3;
                hid_t space = H5Screate_simple(1, &dim, NULL);
                hid_t ds = H5Dcreate2(g, "w:0", H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
                assert_true(ds >= 0);
                assert_true(H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0);
                H5Dclose(ds);
                H5Sclose(space);
            } else {
                fx_empty(g, "weight_names");
            }
            H5Gclose(g);
        }
        H5G_info_t gi;
        assert_true(H5Gget_info(f, &gi) >= 0);
        assert_int_equal(gi.storage_type, latest ? H5G_STORAGE_TYPE_DENSE : H5G_STORAGE_TYPE_SYMBOL_TABLE);
        assert_true(H5Fclose(f) >= 0);

        fusenet_error err;
        fn_h5 *h = NULL;
        assert_int_equal(fusenet__h5_open(path, &h, &err), FUSENET_OK);
        assert_int_equal(fusenet__h5_layer_count(h), MANY);
        for (int i = 0; i < MANY; i++) {
            size_t n = 99;
            if (fusenet__h5_layer_weight_count(h, names[i], &n, &err) != FUSENET_OK) fail_msg("%s", err.message);
            assert_int_equal(n, i % 7 == 0 ? 1 : 0);
            if (n == 1) {
                float v[3];
                fn_wspec s = {"w", 1, {3}, v};
                if (fusenet__h5_read_layer(h, names[i], 1, &s, 0, &err) != FUSENET_OK) fail_msg("%s", err.message);
                assert_true(v[0] == (float)i && v[1] == (float)i + 0.5f && v[2] == -(float)i);
            }
        }
        assert_int_equal(fusenet__h5_layer_weight_count(h, "layer_3000", &(size_t){0}, &err), FUSENET_ERR_UNKNOWN_LAYER);
        fusenet__h5_close(h);
        printf("[ many     ] %d layers, libver %s: all read\n", MANY, latest ? "latest" : "earliest");
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_variants),
        cmocka_unit_test(test_integer_dataset),
        cmocka_unit_test(test_nbit_filter),
        cmocka_unit_test(test_scaleoffset_filter),
        cmocka_unit_test(test_external_storage),
        cmocka_unit_test(test_never_written),
        cmocka_unit_test(test_truncated_and_flipped),
        cmocka_unit_test(test_many_layers),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
