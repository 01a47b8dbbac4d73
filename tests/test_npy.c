/* test_npy.c - .npy reading and writing against files written by numpy.
 *
 * the .npy files in tests/data/npy come from numpy (tests/data/npy/make_npy.py); element i
 * (C order) of each float array there is i * 0.5 - 1. Written files are
 * compared byte for byte with numpy's own output for the same array.
 */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "alloc.h"
#include "npy.h"

#ifndef FN_TEST_DIR
#define FN_TEST_DIR "tests"
#endif

static char tmpdir[256];

static int setup(void **state) {
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "test_npy_tmp_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    DIR *d = opendir(tmpdir);
    if (d) {
        struct dirent *e;
        char p[600];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
            rmdir(p);
            remove(p);
        }
        closedir(d);
    }
    rmdir(tmpdir);
    return 0;
}

static unsigned char *slurp(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *size = (size_t)n;
    return buf;
}

static void spit(const char *path, const void *buf, size_t size) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (size) assert_int_equal(fwrite(buf, 1, size, f), size);
    assert_int_equal(fclose(f), 0);
}

static void fixture(char *out, size_t size, const char *name) {
    snprintf(out, size, "%s/data/npy/%s", FN_TEST_DIR, name);
}

static void expect(fusenet_status got, fusenet_status want, const fusenet_error *err,
                   const char *needle) {
    if (got != want)
        fail_msg("status %s, expected %s: %s", fusenet_status_name(got), fusenet_status_name(want),
                 err->message);
    assert_int_equal(err->status, want);
    if (needle && !strstr(err->message, needle))
        fail_msg("message \"%s\" lacks \"%s\"", err->message, needle);
}

static size_t count_of(const fn_npy *a) {
    size_t n = 1;
    for (int i = 0; i < a->rank; i++) n *= (size_t)a->dims[i];
    return n;
}

/* ---- numpy's files ------------------------------------------------------- */

static void test_read_numpy_files(void **state) {
    (void)state;
    static const struct {
        const char *name;
        int rank;
        int64_t dims[4];
    } files[] = {
        {"f4_2x3.npy", 2, {2, 3}},     {"rank0.npy", 0, {0}},         {"rank1.npy", 1, {5}},
        {"rank4.npy", 4, {2, 1, 3, 2}}, {"empty_0x3.npy", 2, {0, 3}}, {"v2_3x2.npy", 2, {3, 2}},
        {"v3_4.npy", 1, {4}},
    };
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        char path[512];
        fixture(path, sizeof path, files[f].name);
        fn_npy a;
        fusenet_error err;
        fusenet_status st = fusenet__npy_read(path, 0, &a, &err);
        if (st != FUSENET_OK) fail_msg("%s: %s", files[f].name, err.message);
        assert_int_equal(a.rank, files[f].rank);
        for (int i = 0; i < a.rank; i++) assert_true(a.dims[i] == files[f].dims[i]);
        for (size_t i = 0; i < count_of(&a); i++) assert_true(a.data[i] == (float)i * 0.5f - 1.0f);
        fusenet__npy_free(&a);
        assert_null(a.data);

        /* same through the in-memory parser */
        size_t size;
        unsigned char *buf = slurp(path, &size);
        assert_non_null(buf);
        assert_int_equal(fusenet__npy_parse(buf, size, files[f].name, 0, &a, &err), FUSENET_OK);
        assert_int_equal(a.rank, files[f].rank);
        for (size_t i = 0; i < count_of(&a); i++) assert_true(a.data[i] == (float)i * 0.5f - 1.0f);
        fusenet__npy_free(&a);
        free(buf);
    }
    fusenet__npy_free(NULL);
}

static void test_refused_numpy_files(void **state) {
    (void)state;
    static const struct {
        const char *name, *needle;
    } files[] = {
        {"f8.npy", "'<f8'"},
        {"i4.npy", "'<i4'"},
        {"be_f4.npy", "big-endian"},
        {"fortran.npy", "fortran_order"},
    };
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        char path[512];
        fixture(path, sizeof path, files[f].name);
        fn_npy a;
        fusenet_error err;
        expect(fusenet__npy_read(path, 0, &a, &err), FUSENET_ERR_FORMAT, &err, files[f].needle);
        assert_non_null(strstr(err.message, files[f].name));
        assert_null(a.data);
    }
}

/* ---- writing ------------------------------------------------------------- */

static void test_write_matches_numpy(void **state) {
    (void)state;
    static const struct {
        const char *name;
        int rank;
        int64_t dims[4];
    } files[] = {
        {"f4_2x3.npy", 2, {2, 3}},
        {"rank0.npy", 0, {0}},
        {"rank1.npy", 1, {5}},
        {"rank4.npy", 4, {2, 1, 3, 2}},
        {"empty_0x3.npy", 2, {0, 3}},
    };
    float vals[16];
    for (int i = 0; i < 16; i++) vals[i] = (float)i * 0.5f - 1.0f;
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        char out[512], ref[512];
        snprintf(out, sizeof out, "%s/%s", tmpdir, files[f].name);
        fixture(ref, sizeof ref, files[f].name);
        fusenet_error err;
        assert_int_equal(fusenet__npy_write(out, files[f].rank, files[f].dims, vals, &err), FUSENET_OK);
        size_t n1, n2;
        unsigned char *a = slurp(out, &n1), *b = slurp(ref, &n2);
        assert_non_null(a);
        assert_non_null(b);
        if (n1 != n2 || memcmp(a, b, n1) != 0) fail_msg("%s differs from numpy's file", files[f].name);
        /* data at a multiple of 64, header ends with a newline */
        size_t hl = (size_t)a[8] | (size_t)a[9] << 8;
        assert_int_equal((10 + hl) % 64, 0);
        assert_int_equal(a[10 + hl - 1], '\n');
        free(a);
        free(b);
    }
}

static void test_round_trip(void **state) {
    (void)state;
    int64_t dims[8] = {3, 1, 2, 1, 1, 2, 1, 2};
    float vals[24];
    for (int i = 0; i < 24; i++) vals[i] = (float)i * -1.25f + 1e-30f * (float)i;
    vals[3] = 3.4028235e38f;
    char out[512];
    snprintf(out, sizeof out, "%s/rt.npy", tmpdir);
    for (int rank = 0; rank <= 8; rank++) {
        fusenet_error err;
        assert_int_equal(fusenet__npy_write(out, rank, dims, vals, &err), FUSENET_OK);
        assert_int_equal(err.status, FUSENET_OK);
        fn_npy a;
        assert_int_equal(fusenet__npy_read(out, 0, &a, &err), FUSENET_OK);
        assert_int_equal(a.rank, rank);
        for (int i = 0; i < rank; i++) assert_true(a.dims[i] == dims[i]);
        assert_memory_equal(a.data, vals, count_of(&a) * sizeof(float));
        fusenet__npy_free(&a);
    }
    /* overwriting an existing file works */
    assert_int_equal(fusenet__npy_write(out, 1, dims, vals, NULL), FUSENET_OK);
    remove(out);
}

static void expect_file(const char *path, const unsigned char *want, size_t size) {
    size_t n;
    unsigned char *got = slurp(path, &n);
    assert_non_null(got);
    assert_int_equal(n, size);
    assert_memory_equal(got, want, size);
    free(got);
}

static int temp_files_left(void) {
    DIR *d = opendir(tmpdir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strstr(e->d_name, ".tmp")) n++;
    closedir(d);
    return n;
}

static void test_write_failures(void **state) {
    (void)state;
    int64_t dims[2] = {2, 3};
    float vals[6] = {1, 2, 3, 4, 5, 6};
    fusenet_error err;
    char path[512];

    /* no such directory: IO, nothing created */
    snprintf(path, sizeof path, "%s/no_such_dir/x.npy", tmpdir);
    expect(fusenet__npy_write(path, 2, dims, vals, &err), FUSENET_ERR_IO, &err, "no_such_dir");
    assert_int_equal(access(path, F_OK), -1);

    /* a good file is not clobbered by a failed write */
    snprintf(path, sizeof path, "%s/good.npy", tmpdir);
    assert_int_equal(fusenet__npy_write(path, 2, dims, vals, &err), FUSENET_OK);
    size_t gsize;
    unsigned char *good = slurp(path, &gsize);
    assert_non_null(good);
    expect(fusenet__npy_write(path, 2, dims, NULL, &err), FUSENET_ERR_INVALID_ARG, &err, "data");
    expect_file(path, good, gsize);
    int64_t neg[2] = {2, -3};
    expect(fusenet__npy_write(path, 2, neg, vals, &err), FUSENET_ERR_INVALID_ARG, &err, "dims[1]");
    expect(fusenet__npy_write(path, 9, dims, vals, &err), FUSENET_ERR_INVALID_ARG, &err, "rank");
    expect(fusenet__npy_write(path, -1, dims, vals, &err), FUSENET_ERR_INVALID_ARG, &err, "rank");
    expect(fusenet__npy_write(path, 2, NULL, vals, &err), FUSENET_ERR_INVALID_ARG, &err, "dims");
    int64_t huge[3] = {INT64_MAX, INT64_MAX, 2};
    expect(fusenet__npy_write(path, 3, huge, vals, &err), FUSENET_ERR_INVALID_ARG, &err, "overflow");
    expect(fusenet__npy_write(NULL, 2, dims, vals, &err), FUSENET_ERR_INVALID_ARG, &err, "path");
    expect_file(path, good, gsize);

    /* out of memory at every allocation: NOMEM, file intact */
    for (int64_t k = 0; k < 100; k++) {
        float other[6] = {9, 9, 9, 9, 9, 9};
        fusenet__alloc_fail_after(k);
        fusenet_status st = fusenet__npy_write(path, 2, dims, other, &err);
        fusenet__alloc_fail_after(-1);
        if (st == FUSENET_OK) break;
        expect(st, FUSENET_ERR_NOMEM, &err, NULL);
        expect_file(path, good, gsize);
    }

    /* the target is a directory: rename fails, the temporary file is removed */
    snprintf(path, sizeof path, "%s/adir", tmpdir);
    assert_int_equal(mkdir(path, 0755), 0);
    expect(fusenet__npy_write(path, 2, dims, vals, &err), FUSENET_ERR_IO, &err, "adir");
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_true(S_ISDIR(sb.st_mode));
    assert_int_equal(temp_files_left(), 0);
    rmdir(path);
    free(good);
}

/* ---- hostile input ------------------------------------------------------- */

/* A .npy image: magic, version, header length as given (or the true one if
 * len_field < 0), the header text, then `data_bytes` bytes of data. */
static unsigned char *make_npy(int major, const char *header, long long len_field, size_t data_bytes,
                               size_t *size) {
    size_t hl = strlen(header), pre = major == 1 ? 10 : 12;
    *size = pre + hl + data_bytes;
    unsigned char *b = calloc(1, *size + 1);
    assert_non_null(b);
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (unsigned char)major;
    b[7] = 0;
    unsigned long long l = len_field < 0 ? hl : (unsigned long long)len_field;
    b[8] = (unsigned char)l;
    b[9] = (unsigned char)(l >> 8);
    if (major != 1) {
        b[10] = (unsigned char)(l >> 16);
        b[11] = (unsigned char)(l >> 24);
    }
    memcpy(b + pre, header, hl);
    for (size_t i = 0; i < data_bytes; i++) b[pre + hl + i] = (unsigned char)i;
    return b;
}

/* Runs buf through fusenet__npy_parse and (as a file) fusenet__npy_read; both must give
 * `want`, with no allocation at all when want is not OK. */
static void both(const unsigned char *buf, size_t size, size_t max_bytes, fusenet_status want,
                 const char *needle) {
    fn_npy a;
    fusenet_error err;
    if (want != FUSENET_OK) fusenet__alloc_fail_after(0);
    fusenet_status st = fusenet__npy_parse(buf, size, "mem.npy", max_bytes, &a, &err);
    fusenet__alloc_fail_after(-1);
    expect(st, want, &err, needle);
    if (st == FUSENET_OK) fusenet__npy_free(&a);
    else assert_null(a.data);

    char path[512];
    snprintf(path, sizeof path, "%s/hostile.npy", tmpdir);
    spit(path, buf, size);
    if (want != FUSENET_OK) fusenet__alloc_fail_after(1); /* the header buffer only */
    st = fusenet__npy_read(path, max_bytes, &a, &err);
    fusenet__alloc_fail_after(-1);
    expect(st, want, &err, needle);
    if (st == FUSENET_OK) fusenet__npy_free(&a);
    else assert_null(a.data);
    remove(path);
}

#define HDR(shape) "{'descr': '<f4', 'fortran_order': False, 'shape': " shape ", }"

static void test_hostile_headers(void **state) {
    (void)state;
    size_t size;
    unsigned char *b;

    b = make_npy(1, HDR("(2, 3)") "   \n", -1, 24, &size);
    both(b, size, 0, FUSENET_OK, NULL);
    both(b, size, 24, FUSENET_OK, NULL);
    both(b, size, 23, FUSENET_ERR_NOMEM, "limit");
    both(b, size - 1, 0, FUSENET_ERR_FORMAT, "truncated");
    /* every cut is refused */
    for (size_t n = 0; n < size; n++) {
        fn_npy a;
        fusenet_error err;
        fusenet_status st = fusenet__npy_parse(b, n, "cut", 0, &a, &err);
        if (st != FUSENET_ERR_FORMAT) fail_msg("cut at %zu: %s", n, err.message);
    }
    free(b);
    b = make_npy(1, HDR("(2, 3)"), -1, 25, &size);
    both(b, size, 0, FUSENET_ERR_FORMAT, "trailing");
    free(b);

    /* header length lies */
    b = make_npy(1, HDR("(2, 3)"), 5000, 24, &size);
    both(b, size, 0, FUSENET_ERR_FORMAT, "past the end");
    free(b);
    b = make_npy(1, HDR("(2, 3)"), 30, 24, &size);
    both(b, size, 0, FUSENET_ERR_FORMAT, NULL);
    free(b);
    b = make_npy(2, HDR("(2, 3)"), 0xFFFFFFF0LL, 24, &size);
    both(b, size, 0, FUSENET_ERR_FORMAT, "over the limit");
    free(b);

    /* version 2.0 and 3.0 headers, unknown versions, bad magic */
    b = make_npy(2, HDR("(3,)"), -1, 12, &size);
    both(b, size, 0, FUSENET_OK, NULL);
    free(b);
    b = make_npy(3, HDR("(3,)"), -1, 12, &size);
    both(b, size, 0, FUSENET_OK, NULL);
    free(b);
    b = make_npy(4, HDR("(3,)"), -1, 12, &size);
    both(b, size, 0, FUSENET_ERR_FORMAT, "version 4.0");
    free(b);
    b = make_npy(1, HDR("(3,)"), -1, 12, &size);
    b[7] = 1;
    both(b, size, 0, FUSENET_ERR_FORMAT, "version 1.1");
    b[7] = 0;
    b[1] = 'n';
    both(b, size, 0, FUSENET_ERR_FORMAT, "magic");
    both(b, 3, 0, FUSENET_ERR_FORMAT, "magic");
    both(b, 0, 0, FUSENET_ERR_FORMAT, "magic");
    free(b);

    /* garbage headers */
    static const struct {
        const char *header, *needle;
    } bad[] = {
        {"", "not a dict"},
        {"garbage", "not a dict"},
        {"{", "key"},
        {"{'descr': '<f4', 'fortran_order': False}", "shape"},
        {"{'descr': '<f4', 'shape': (3,)}", "fortran_order"},
        {"{'fortran_order': False, 'shape': (3,)}", "descr"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (3,), 'extra': 1}", "extra"},
        {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (3,)}", "repeats"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (3,), 'shape': (3,)}", "repeats"},
        {"{'descr': '<f4', 'fortran_order': 0, 'shape': (3,)}", "fortran_order"},
        {"{'descr': '<f4', 'fortran_order': Falsey, 'shape': (3,)}", "fortran_order"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': [3]}", "tuple"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (3)}", "tuple"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (3 3,)}", "malformed"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (-3,)}", "negative"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (3.0,)}", NULL},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (,)}", "malformed"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (3,", "malformed"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}", "overflow"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1)}", "rank"},
        {"{'descr': '<f4, 'fortran_order': False, 'shape': (3,)}", NULL},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (3,)} x", "after the dict"},
        {"{'descr': '<f4' 'fortran_order': False, 'shape': (3,)}", "malformed"},
        {"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (3,)}", "structured"},
        {"{'descr': '<f2', 'fortran_order': False, 'shape': (3,)}", "'<f2'"},
        {"{'descr': 'O', 'fortran_order': False, 'shape': (3,)}", "'O'"},
        {"{'d\xc3\xa9scr': '<f4', 'fortran_order': False, 'shape': (3,)}", "non-ASCII"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        b = make_npy(1, bad[i].header, -1, 12, &size);
        both(b, size, 0, FUSENET_ERR_FORMAT, bad[i].needle);
        free(b);
    }
    /* a NUL inside the header */
    b = make_npy(1, HDR("(3,)") "    \n", -1, 12, &size);
    b[10 + strlen(HDR("(3,)")) + 1] = 0;
    both(b, size, 0, FUSENET_ERR_FORMAT, "non-ASCII");
    free(b);
    /* double quotes and no trailing comma are valid Python too */
    b = make_npy(1, "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (3,)}", -1, 12,
                 &size);
    both(b, size, 0, FUSENET_OK, NULL);
    free(b);
}

static void test_giant_shapes(void **state) {
    (void)state;
    size_t size;
    unsigned char *b;
    /* overflowing element count */
    b = make_npy(1, HDR("(1099511627776, 1099511627776, 1099511627776)"), -1, 0, &size);
    both(b, size, 0, FUSENET_ERR_FORMAT, "overflow");
    free(b);
    b = make_npy(1, HDR("(9223372036854775807,)"), -1, 0, &size);
    both(b, size, 0, FUSENET_ERR_FORMAT, "overflow");
    free(b);
    /* representable but absent: refused from the file size, nothing allocated */
    b = make_npy(1, HDR("(1000000000000,)"), -1, 16, &size);
    both(b, size, 0, FUSENET_ERR_FORMAT, "truncated");
    both(b, size, 1 << 20, FUSENET_ERR_NOMEM, "limit");
    free(b);
}

static void test_read_errors(void **state) {
    (void)state;
    fn_npy a;
    fusenet_error err;
    expect(fusenet__npy_read("no/such/file.npy", 0, &a, &err), FUSENET_ERR_IO, &err, "no/such/file.npy");
    assert_non_null(strstr(err.message, strerror(ENOENT)));
    assert_null(a.data);
    expect(fusenet__npy_read(tmpdir, 0, &a, &err), FUSENET_ERR_IO, &err, strerror(EISDIR));
    expect(fusenet__npy_read(NULL, 0, &a, &err), FUSENET_ERR_INVALID_ARG, &err, "path");
    char path[512];
    fixture(path, sizeof path, "f4_2x3.npy");
    expect(fusenet__npy_read(path, 0, NULL, &err), FUSENET_ERR_INVALID_ARG, &err, "out");
    expect(fusenet__npy_parse(NULL, 5, "x", 0, &a, &err), FUSENET_ERR_INVALID_ARG, &err, "buf");

    /* empty file */
    char empty[512];
    snprintf(empty, sizeof empty, "%s/empty.npy", tmpdir);
    spit(empty, "", 0);
    expect(fusenet__npy_read(empty, 0, &a, &err), FUSENET_ERR_FORMAT, &err, "empty.npy");
    remove(empty);

    /* out of memory anywhere: NOMEM, nothing leaked */
    for (int64_t k = 0; k < 100; k++) {
        fusenet__alloc_fail_after(k);
        fusenet_status st = fusenet__npy_read(path, 0, &a, &err);
        fusenet__alloc_fail_after(-1);
        if (st == FUSENET_OK) {
            assert_true(k > 0);
            fusenet__npy_free(&a);
            break;
        }
        expect(st, FUSENET_ERR_NOMEM, &err, NULL);
        assert_null(a.data);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_numpy_files), cmocka_unit_test(test_refused_numpy_files),
        cmocka_unit_test(test_write_matches_numpy), cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_write_failures),      cmocka_unit_test(test_hostile_headers),
        cmocka_unit_test(test_giant_shapes),        cmocka_unit_test(test_read_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
