/* test_image.c - fusenet_image_load against Pillow (keras.utils.load_img).
 *
 * The expected outputs in tests/data/ref are raw uint8 RGB images written by
 * tests/ref/pil_load_img.py with Pillow (regenerate: python3 tests/ref/pil_load_img.py).
 * Every input must match exactly, caffe preprocessing included: PNGs decode
 * losslessly, and JPEGs are decoded by the same libjpeg-turbo, with the same
 * settings, as Debian's Pillow (baseline 4:2:0, progressive 4:4:4, grey and
 * Adobe CMYK files).
 */
#include <errno.h>
#include <math.h>
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
#include "fusenet.h"
#include "image.h"

#ifndef FN_TEST_DIR
#define FN_TEST_DIR "tests"
#endif


static unsigned char *slurp(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? 2 * cap : 65536;
            unsigned char *nb = realloc(buf, cap);
            assert_non_null(nb);
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
    }
    fclose(f);
    *size = n;
    return buf;
}

static void data_path(char *out, size_t size, const char *name) {
    if (strcmp(name, "example.jpg") == 0)
        snprintf(out, size, "%s/../examples/data/%s", FN_TEST_DIR, name);
    else
        snprintf(out, size, "%s/data/%s", FN_TEST_DIR, name);
}

typedef struct ref_case {
    const char *image;
    fusenet_interp interp;
    int h, w;
} ref_case;

#define NEAR FUSENET_INTERP_NEAREST
#define BILI FUSENET_INTERP_BILINEAR

/* Must list the cases of tests/ref/pil_load_img.py (CASES). */
static const ref_case cases[] = {
    {"rgb_37x23.png", NEAR, 16, 12},     {"rgb_37x23.png", NEAR, 50, 71},
    {"rgb_37x23.png", NEAR, 7, 100},     {"rgb_37x23.png", NEAR, 23, 37},
    {"rgb_37x23.png", NEAR, 1, 1},       {"rgb_37x23.png", BILI, 16, 12},
    {"rgb_37x23.png", BILI, 50, 71},     {"rgb_37x23.png", BILI, 7, 100},
    {"rgb_37x23.png", BILI, 45, 13},     {"rgb_37x23.png", BILI, 23, 37},
    {"rgb_37x23.png", BILI, 1, 1},       {"rgb_211x157.png", BILI, 64, 48},
    {"rgb_211x157.png", BILI, 157, 60},  {"rgb_211x157.png", BILI, 31, 211},
    {"rgb_211x157.png", NEAR, 64, 48},   {"rgb_211x157.png", NEAR, 45, 67},
    {"rgba_50x31.png", NEAR, 31, 50},    {"rgba_50x31.png", BILI, 20, 24},
    {"rgba_50x31.png", NEAR, 9, 40},     {"gray_29x41.png", BILI, 30, 30},
    {"gray_29x41.png", NEAR, 41, 29},    {"graya_17x13.png", BILI, 26, 9},
    {"pal_33x21.png", BILI, 21, 33},     {"pal_33x21.png", NEAR, 10, 50},
    /* pixels indexing past PLTE (8-bit with tRNS, 4-bit): Pillow's grey ramp */
    {"palpast_16x16.png", NEAR, 16, 16}, {"palpast_16x16.png", BILI, 11, 23},
    {"palpast4_13x5.png", NEAR, 5, 13},
    {"rgb16_19x11.png", BILI, 11, 19},   {"rgb16_19x11.png", BILI, 8, 30},
    /* not Pillow: 16-bit grey keeps the high byte (Pillow clips to 255) */
    {"gray16_14x9.png", NEAR, 9, 14},
    {"photo_61x47.jpg", NEAR, 47, 61},   {"photo_61x47.jpg", BILI, 30, 20},
    {"photo_61x47.jpg", NEAR, 100, 80},  {"gray_45x35.jpg", BILI, 35, 45},
    {"prog444_40x30.jpg", NEAR, 30, 40}, {"prog444_40x30.jpg", BILI, 17, 23},
    {"cmyk_29x19.jpg", NEAR, 19, 29},    {"cmyk_29x19.jpg", BILI, 10, 15},
    {"example.jpg", BILI, 64, 64},       {"example.jpg", NEAR, 64, 64},
};

static void check_case(const ref_case *c) {
    char path[1024], refpath[1024];
    data_path(path, sizeof path, c->image);
    snprintf(refpath, sizeof refpath, "%s/data/ref/%s.%s.%dx%d.rgb", FN_TEST_DIR, c->image,
             c->interp == NEAR ? "nearest" : "bilinear", c->h, c->w);
    size_t refsize = 0;
    unsigned char *ref = slurp(refpath, &refsize);
    if (!ref) fail_msg("missing reference %s", refpath);
    size_t n = (size_t)c->h * (size_t)c->w;
    assert_int_equal(refsize, n * 3);

    float *dst = malloc(n * 3 * sizeof *dst);
    assert_non_null(dst);
    for (int caffe = 0; caffe <= 1; caffe++) {
        fusenet_image_params p = fusenet_image_default_params();
        p.height = c->h;
        p.width = c->w;
        p.interp = c->interp;
        p.caffe = caffe;
        fusenet_error err;
        fusenet_status st = fusenet_image_load(path, &p, dst, &err);
        if (st != FUSENET_OK) fail_msg("%s: %s", c->image, err.message);
        assert_int_equal(err.status, FUSENET_OK);
        double worst = 0;
        size_t nbad = 0;
        for (size_t i = 0; i < n; i++) {
            for (int ch = 0; ch < 3; ch++) {
                float want, got = dst[3 * i + (size_t)ch];
                if (caffe) {
                    /* keras caffe: x[..., ::-1] then x[..., k] -= mean[k], float32 */
                    static const float mean[3] = {103.939f, 116.779f, 123.68f};
                    want = (float)ref[3 * i + (size_t)(2 - ch)] - mean[ch];
                } else {
                    want = (float)ref[3 * i + (size_t)ch];
                }
                double d = fabs((double)got - (double)want);
                if (d > worst) worst = d;
                if (d != 0) nbad++;
            }
        }
        if (nbad) {
            fail_msg("%s %s %dx%d caffe=%d: %zu values differ from Pillow (max diff %g)", c->image,
                     c->interp == NEAR ? "nearest" : "bilinear", c->h, c->w, caffe, nbad, worst);
        }
    }
    free(dst);
    free(ref);
}

static void test_against_pillow(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_case(&cases[i]);
}

static void test_default_params(void **state) {
    (void)state;
    fusenet_image_params p = fusenet_image_default_params();
    assert_int_equal(p.height, 224);
    assert_int_equal(p.width, 224);
    assert_int_equal(p.interp, FUSENET_INTERP_NEAREST);
    assert_int_equal(p.caffe, 1);
    assert_true(p.max_pixels == 100000000);
}

/* The default 224 x 224 path on the bundled example: sane caffe ranges. */
static void test_default_load(void **state) {
    (void)state;
    char path[1024];
    data_path(path, sizeof path, "example.jpg");
    fusenet_image_params p = fusenet_image_default_params();
    float *dst = malloc(224 * 224 * 3 * sizeof *dst);
    assert_non_null(dst);
    fusenet_error err;
    assert_int_equal(fusenet_image_load(path, &p, dst, &err), FUSENET_OK);
    for (size_t i = 0; i < 224 * 224 * 3; i++) {
        assert_true(dst[i] >= -123.68f - 1e-3f && dst[i] <= 255.0f - 103.939f + 1e-3f);
    }
    /* no err record is fine too */
    assert_int_equal(fusenet_image_load(path, &p, dst, NULL), FUSENET_OK);
    free(dst);
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

static fusenet_status decode(const unsigned char *buf, size_t size, fusenet_error *err) {
    fusenet_image_params p = fusenet_image_default_params();
    p.height = 8;
    p.width = 8;
    float dst[8 * 8 * 3];
    return fusenet__image_decode(buf, size, "mem.img", &p, dst, err);
}

static void test_file_errors(void **state) {
    (void)state;
    fusenet_image_params p = fusenet_image_default_params();
    float dst[224 * 224 * 3];
    fusenet_error err;
    expect(fusenet_image_load("no/such/file.png", &p, dst, &err), FUSENET_ERR_IO, &err,
           "no/such/file.png");
    assert_non_null(strstr(err.message, strerror(ENOENT)));
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/data", FN_TEST_DIR);
    expect(fusenet_image_load(dir, &p, dst, &err), FUSENET_ERR_IO, &err, dir);
    assert_non_null(strstr(err.message, strerror(EISDIR)));

    const char *empty = "test_image_empty.tmp";
    FILE *f = fopen(empty, "wb");
    assert_non_null(f);
    fclose(f);
    expect(fusenet_image_load(empty, &p, dst, &err), FUSENET_ERR_FORMAT, &err, "empty");
    assert_non_null(strstr(err.message, empty));
    remove(empty);

    /* over 1 GiB: refused from its size, before reading (a sparse file) */
    const char *big = "test_image_big.tmp";
    f = fopen(big, "wb");
    assert_non_null(f);
    fclose(f);
    if (truncate(big, ((off_t)1 << 30) + 1) == 0) {
        expect(fusenet_image_load(big, &p, dst, &err), FUSENET_ERR_NOMEM, &err, "1 GiB");
    }
    remove(big);
}

static void test_bad_args(void **state) {
    (void)state;
    char path[1024];
    data_path(path, sizeof path, "rgb_37x23.png");
    fusenet_image_params p = fusenet_image_default_params();
    float dst[224 * 224 * 3];
    fusenet_error err;
    expect(fusenet_image_load(NULL, &p, dst, &err), FUSENET_ERR_INVALID_ARG, &err, "path");
    expect(fusenet_image_load(path, NULL, dst, &err), FUSENET_OK, &err, NULL); /* NULL params: the defaults */
    expect(fusenet_image_load(path, &p, NULL, &err), FUSENET_ERR_INVALID_ARG, &err, "dst");
    assert_int_equal(fusenet_image_load(path, NULL, NULL, NULL), FUSENET_ERR_INVALID_ARG);
    expect(fusenet__image_decode(NULL, 10, "x", &p, dst, &err), FUSENET_ERR_INVALID_ARG, &err, "buf");

    fusenet_image_params q = p;
    q.height = 0;
    expect(fusenet_image_load(path, &q, dst, &err), FUSENET_ERR_INVALID_ARG, &err, "height");
    q = p;
    q.width = -3;
    expect(fusenet_image_load(path, &q, dst, &err), FUSENET_ERR_INVALID_ARG, &err, "width");
    q = p;
    q.width = 16385;
    expect(fusenet_image_load(path, &q, dst, &err), FUSENET_ERR_INVALID_ARG, &err, "width");
    q = p;
    q.interp = (fusenet_interp)7;
    expect(fusenet_image_load(path, &q, dst, &err), FUSENET_ERR_INVALID_ARG, &err, "interp");
    q = p;
    q.caffe = 2;
    expect(fusenet_image_load(path, &q, dst, &err), FUSENET_ERR_INVALID_ARG, &err, "caffe");
    /* max_pixels = 0 is refused rather than read as "no limit" */
    q = p;
    q.max_pixels = 0;
    expect(fusenet_image_load(path, &q, dst, &err), FUSENET_ERR_INVALID_ARG, &err, "max_pixels");
    q.max_pixels = -1;
    expect(fusenet_image_load(path, &q, dst, &err), FUSENET_ERR_INVALID_ARG, &err, "max_pixels");
}

static void test_pixel_limit(void **state) {
    (void)state;
    char path[1024];
    data_path(path, sizeof path, "rgb_37x23.png");
    fusenet_image_params p = fusenet_image_default_params();
    float dst[224 * 224 * 3];
    fusenet_error err;
    p.max_pixels = 37 * 23;
    expect(fusenet_image_load(path, &p, dst, &err), FUSENET_OK, &err, NULL);
    p.max_pixels = 37 * 23 - 1;
    expect(fusenet_image_load(path, &p, dst, &err), FUSENET_ERR_NOMEM, &err, "37 x 23");
    assert_non_null(strstr(err.message, "850"));

    /* A PNG header declaring 100000 x 100000 and nothing else: refused before
     * decoding, with the size and the limit in the message; no allocation. */
    static const unsigned char png_huge[] = {
        0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R',
        0,    1,   0x86, 0xA0, 0, 1, 0x86, 0xA0, 8, 2, 0, 0, 0, 0, 0, 0, 0};
    fusenet__alloc_fail_after(0);
    fusenet_status st = decode(png_huge, sizeof png_huge, &err);
    fusenet__alloc_fail_after(-1);
    expect(st, FUSENET_ERR_NOMEM, &err, "100000 x 100000");
    assert_non_null(strstr(err.message, "100000000"));

    /* Same for a JPEG SOF0 declaring 65535 x 60000. */
    static const unsigned char jpg_huge[] = {0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0x00, 0x00,
                                             0xFF, 0xC0, 0x00, 0x11, 0x08, 0xEA, 0x60, 0xFF,
                                             0xFF, 0x03, 0x01, 0x22, 0x00, 0x02, 0x11, 0x01,
                                             0x03, 0x11, 0x01, 0xFF, 0xD9};
    fusenet__alloc_fail_after(0);
    st = decode(jpg_huge, sizeof jpg_huge, &err);
    fusenet__alloc_fail_after(-1);
    expect(st, FUSENET_ERR_NOMEM, &err, "65535 x 60000");

    /* zero-sized */
    unsigned char png_zero[sizeof png_huge];
    memcpy(png_zero, png_huge, sizeof png_huge);
    memset(png_zero + 16, 0, 4);
    expect(decode(png_zero, sizeof png_zero, &err), FUSENET_ERR_FORMAT, &err, "zero");
}

static void test_bad_data(void **state) {
    (void)state;
    fusenet_error err;
    unsigned char junk[256];
    uint32_t s = 12345;
    for (size_t i = 0; i < sizeof junk; i++) {
        s = s * 1103515245u + 12345u;
        junk[i] = (unsigned char)(s >> 16);
    }
    junk[0] = 0x42; /* not 'B' 'M' */
    junk[1] = 0x00;
    expect(decode(junk, sizeof junk, &err), FUSENET_ERR_FORMAT, &err, "mem.img");
    expect(decode(junk, 0, &err), FUSENET_ERR_FORMAT, &err, "empty");

    static const unsigned char gif[] = "GIF89a\x01\x00\x01\x00\x80\x00\x00";
    expect(decode(gif, sizeof gif - 1, &err), FUSENET_ERR_UNSUPPORTED, &err, "GIF");
    static const unsigned char bmp[] = "BM\x3a\x00\x00\x00\x00\x00\x00\x00\x36\x00\x00\x00";
    expect(decode(bmp, sizeof bmp - 1, &err), FUSENET_ERR_UNSUPPORTED, &err, "BMP");
    static const unsigned char webp[] = "RIFF\x10\x00\x00\x00WEBPVP8 ";
    expect(decode(webp, sizeof webp - 1, &err), FUSENET_ERR_UNSUPPORTED, &err, "WebP");

    /* A DHT table declaring 16 x 255 codes: stb_image 2.27 would write past its
     * tables; it must be refused before stb_image sees it. */
    unsigned char dht[2 + 4 + 17 + 2] = {0xFF, 0xD8, 0xFF, 0xC4, 0x00, 0x13, 0x00};
    memset(dht + 7, 0xFF, 16);
    dht[23] = 0xFF;
    dht[24] = 0xD9;
    expect(decode(dht, sizeof dht, &err), FUSENET_ERR_FORMAT, &err, "256");

    /* one flipped bit in the pixel data of a PNG: the chunk CRC catches it */
    {
        char path[1024];
        data_path(path, sizeof path, "rgb_37x23.png");
        size_t size = 0;
        unsigned char *png = slurp(path, &size);
        assert_non_null(png);
        png[33 + 8 + 100] ^= 0x10; /* inside the first IDAT (IHDR ends at byte 33) */
        expect(decode(png, size, &err), FUSENET_ERR_FORMAT, &err, "CRC mismatch in IDAT");
        free(png);
    }

    /* PNG signature then garbage; JPEG SOI then garbage */
    unsigned char png_junk[64];
    memcpy(png_junk, "\x89PNG\r\n\x1a\n", 8);
    memcpy(png_junk + 8, junk, sizeof png_junk - 8);
    expect(decode(png_junk, sizeof png_junk, &err), FUSENET_ERR_FORMAT, &err, "PNG");
    unsigned char jpg_junk[64] = {0xFF, 0xD8, 0xFF};
    memcpy(jpg_junk + 3, junk, sizeof jpg_junk - 3);
    expect(decode(jpg_junk, sizeof jpg_junk, &err), FUSENET_ERR_FORMAT, &err, "JPEG");
}

/* Every truncation of a PNG or a JPEG is refused. */
/* A progressive JPEG with its last scan repeated: libjpeg decodes a repeated
 * refinement scan (with a warning, silenced), so 100 repeats still decode;
 * 600 go over the 500-scan limit, which stops files that would cost a pass
 * over every coefficient per scan. */
static unsigned char *repeat_last_scan(const unsigned char *buf, size_t size, int times, size_t *out_size) {
    size_t sos = 0;
    for (size_t i = 2; i + 1 < size; i++)
        if (buf[i] == 0xFF && buf[i + 1] == 0xDA) sos = i; /* the last start-of-scan */
    assert_true(sos > 0 && size >= 2 && buf[size - 2] == 0xFF && buf[size - 1] == 0xD9);
    size_t scan = size - 2 - sos, n = size + (size_t)times * scan;
    unsigned char *out = malloc(n);
    assert_non_null(out);
    memcpy(out, buf, size - 2);
    for (int t = 0; t < times; t++) memcpy(out + size - 2 + (size_t)t * scan, buf + sos, scan);
    out[n - 2] = 0xFF;
    out[n - 1] = 0xD9;
    *out_size = n;
    return out;
}

static void test_progressive_scan_limit(void **state) {
    (void)state;
    char path[1024];
    data_path(path, sizeof path, "prog444_40x30.jpg");
    size_t size = 0, n = 0;
    unsigned char *buf = slurp(path, &size);
    assert_non_null(buf);
    fusenet_error err;
    unsigned char *ok = repeat_last_scan(buf, size, 100, &n);
    if (decode(ok, n, &err) != FUSENET_OK) fail_msg("100 repeated scans: %s", err.message);
    free(ok);
    unsigned char *many = repeat_last_scan(buf, size, 600, &n);
    expect(decode(many, n, &err), FUSENET_ERR_FORMAT, &err, "more than 500 progressive scans");
    free(many);
    free(buf);
}

static void test_truncated(void **state) {
    (void)state;
    static const char *const names[] = {"rgb_37x23.png", "photo_61x47.jpg", "gray_45x35.jpg"};
    for (size_t k = 0; k < 3; k++) {
        char path[1024];
        data_path(path, sizeof path, names[k]);
        size_t size = 0;
        unsigned char *buf = slurp(path, &size);
        assert_non_null(buf);
        fusenet_error err;
        assert_int_equal(decode(buf, size, &err), FUSENET_OK);
        for (size_t n = 1; n < size; n++) {
            unsigned char *cut = malloc(n); /* exact size: ASan sees over-reads */
            assert_non_null(cut);
            memcpy(cut, buf, n);
            fusenet_status st = decode(cut, n, &err);
            if (st != FUSENET_ERR_FORMAT)
                fail_msg("%s cut to %zu of %zu bytes: %s (%s)", names[k], n, size,
                         fusenet_status_name(st), err.message);
            free(cut);
        }
        free(buf);
    }
}

/* Flipped bytes must never crash; any status is acceptable. */
static void test_corrupt_bytes(void **state) {
    (void)state;
    static const char *const names[] = {"rgb_37x23.png", "photo_61x47.jpg", "pal_33x21.png"};
    uint32_t s = 987654321u;
    for (size_t k = 0; k < 3; k++) {
        char path[1024];
        data_path(path, sizeof path, names[k]);
        size_t size = 0;
        unsigned char *buf = slurp(path, &size);
        assert_non_null(buf);
        unsigned char *bad = malloc(size);
        assert_non_null(bad);
        for (int trial = 0; trial < 200; trial++) {
            memcpy(bad, buf, size);
            for (int j = 0; j < 1 + trial % 4; j++) {
                s = s * 1103515245u + 12345u;
                size_t at = (size_t)(s >> 8) % size;
                s = s * 1103515245u + 12345u;
                bad[at] ^= (unsigned char)(1u + (s >> 24) % 255u);
            }
            fusenet_error err;
            fusenet_status st = decode(bad, size, &err);
            assert_true(st == FUSENET_OK || st == FUSENET_ERR_FORMAT || st == FUSENET_ERR_NOMEM ||
                        st == FUSENET_ERR_UNSUPPORTED);
            assert_int_equal(err.status, st);
        }
        free(bad);
        free(buf);
    }
}

/* Every allocation failure is reported as NOMEM and leaks nothing. */
static void test_out_of_memory(void **state) {
    (void)state;
    static const struct {
        const char *name;
        fusenet_interp interp;
        int h, w;
    } runs[] = {{"rgb_37x23.png", BILI, 16, 50},
                {"rgb_37x23.png", NEAR, 16, 50},
                {"photo_61x47.jpg", BILI, 20, 20},
                {"pal_33x21.png", BILI, 33, 21}};
    for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++) {
        char path[1024];
        data_path(path, sizeof path, runs[r].name);
        fusenet_image_params p = fusenet_image_default_params();
        p.height = runs[r].h;
        p.width = runs[r].w;
        p.interp = runs[r].interp;
        float *dst = malloc((size_t)p.height * (size_t)p.width * 3 * sizeof *dst);
        assert_non_null(dst);
        int ok = 0;
        for (int64_t k = 0; k < 1000 && !ok; k++) {
            fusenet_error err;
            fusenet__alloc_fail_after(k);
            fusenet_status st = fusenet_image_load(path, &p, dst, &err);
            fusenet__alloc_fail_after(-1);
            if (st == FUSENET_OK) {
                ok = 1;
                assert_true(k > 0);
            } else if (st != FUSENET_ERR_NOMEM) {
                fail_msg("%s with %lld allocations: %s", runs[r].name, (long long)k, err.message);
            }
        }
        assert_true(ok);
        free(dst);
    }
}

/* fusenet_image_size: the dimensions come from the file names of the fixtures. */
static void test_image_size(void **state) {
    (void)state;
    struct {
        const char *file;
        int32_t w, h;
    } sizes[] = {{"rgb_211x157.png", 211, 157}, {"photo_61x47.jpg", 61, 47}, {"gray_29x41.png", 29, 41},
                 {"prog444_40x30.jpg", 40, 30}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/data/%s", FN_TEST_DIR, sizes[i].file);
        int32_t w = 0, h = 0;
        fusenet_error err;
        assert_int_equal(fusenet_image_size(path, &w, &h, &err), FUSENET_OK);
        assert_int_equal(w, sizes[i].w);
        assert_int_equal(h, sizes[i].h);
    }
    int32_t w, h;
    fusenet_error err;
    assert_int_equal(fusenet_image_size("/nonexistent.png", &w, &h, &err), FUSENET_ERR_IO);
    assert_non_null(strstr(err.message, "/nonexistent.png"));
    assert_int_equal(fusenet_image_size(NULL, &w, &h, &err), FUSENET_ERR_INVALID_ARG);
    char dir[512];
    snprintf(dir, sizeof dir, "%s/data", FN_TEST_DIR);
    assert_int_equal(fusenet_image_size(dir, &w, &h, &err), FUSENET_ERR_IO);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_image_size),
        cmocka_unit_test(test_default_params), cmocka_unit_test(test_against_pillow),
        cmocka_unit_test(test_default_load),   cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_bad_args),       cmocka_unit_test(test_pixel_limit),
        cmocka_unit_test(test_bad_data),       cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_corrupt_bytes),  cmocka_unit_test(test_out_of_memory),
        cmocka_unit_test(test_progressive_scan_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
