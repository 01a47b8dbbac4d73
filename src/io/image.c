/* image.c - JPEG (libjpeg-turbo) and PNG (stb_image) decoding, PIL-exact resizing,
 * caffe preprocessing.
 *
 * The goal is to produce what
 *     img = keras.utils.load_img(path, target_size=(h, w), interpolation=...)
 *     x = keras.applications.<resnet50|vgg16>.preprocess_input(np.asarray(img, 'float32'))
 * produces, with Pillow doing the decoding and resizing:
 *  - img.convert('RGB'): grey is replicated, alpha is dropped (not composited),
 *    palettes are expanded (an index past the file's PLTE entries gives
 *    Pillow's (i, i, i), the grey ramp its palettes start from).
 *  - img.resize((w, h), resample) on the 8-bit RGB image. NEAREST follows
 *    Pillow's ImagingScaleAffine (source index from an accumulated double
 *    position, truncated), BILINEAR follows Pillow's ImagingResample: a
 *    triangle filter whose support grows with the downscale factor, separable,
 *    horizontal pass then vertical pass, coefficients in 22-bit fixed point,
 *    rounded to 8 bits after each pass. Same size: no resize.
 *  - caffe: RGB -> BGR, float32 ImageNet means subtracted, no scaling.
 *
 * JPEGs are decoded by libjpeg-turbo, the library Debian's Pillow decodes them
 * with, and with Pillow's settings (accurate integer IDCT, fancy upsampling,
 * RGB out; CMYK as Adobe-inverted, turned to RGB with Pillow's formula), so
 * they match Pillow sample for sample. PNG decoding is lossless and the resize
 * is bit-exact, so PNG inputs match Pillow exactly too.
 *
 * Where the result can differ from Pillow:
 *  - 16-bit PNGs are reduced to 8 bits by keeping the high byte. Pillow does the
 *    same for 16-bit RGB(A), but opens 16-bit grey as mode "I" and clips it to
 *    255 in convert('RGB'); we keep the high byte instead (the visible image).
 *  - EXIF orientation is ignored, as keras.utils.load_img ignores it.
 */
#include "image.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jerror.h>
#include <jpeglib.h>
#include <zlib.h>

#include "alloc.h"
#include "error.h"

/* stb_image does not always report a failed allocation as "outofmem", so the
 * allocation hooks remember it (per thread) for the error message. */
static _Thread_local int stb_alloc_failed;

static void *stb_malloc(size_t size) {
    void *p = fusenet__malloc(size);
    if (!p) stb_alloc_failed = 1;
    return p;
}

static void *stb_realloc(void *ptr, size_t size) {
    void *p = fusenet__realloc(ptr, size);
    if (!p) stb_alloc_failed = 1;
    return p;
}

#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_STATIC
#define STBI_ONLY_PNG
#define STBI_NO_STDIO
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#define STBI_MALLOC(sz) stb_malloc(sz)
#define STBI_REALLOC(p, newsz) stb_realloc(p, newsz)
#define STBI_FREE(p) fusenet__free(p)
/* stb_image only asserts internal invariants; never abort the host process. */
#define STBI_ASSERT(x) ((void)sizeof(!(x)))
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wunused-variable"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#pragma GCC diagnostic ignored "-Wtype-limits"
#pragma GCC diagnostic ignored "-Wmisleading-indentation"
#pragma GCC diagnostic ignored "-Wdouble-promotion"
#pragma GCC diagnostic ignored "-Wcast-qual"
#include <stb_image.h>
#pragma GCC diagnostic pop
/* Unused static stb_image functions are only diagnosed at the end of the file. */
#pragma GCC diagnostic ignored "-Wunused-function"

#define FN_IMAGE_MAX_SIDE 16384
#define FN_IMAGE_MAX_FILE ((size_t)1 << 30)

/* ImageNet channel means in BGR order, as keras' caffe preprocessing (float32). */
static const float caffe_mean_bgr[3] = {103.939f, 116.779f, 123.68f};

fusenet_image_params fusenet_image_default_params(void) {
    fusenet_image_params p;
    memset(&p, 0, sizeof p);
    p.height = 224;
    p.width = 224;
    p.interp = FUSENET_INTERP_NEAREST;
    p.caffe = 1;
    p.max_pixels = 100000000;
    return p;
}

static fusenet_status check_params(const fusenet_image_params *params, float *dst,
                                   fusenet_error *err) {
    if (!params) return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "image params is NULL");
    if (!dst) return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "image dst is NULL");
    if (params->height <= 0 || params->height > FN_IMAGE_MAX_SIDE)
        return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "image params height %d out of range 1..%d",
                        (int)params->height, FN_IMAGE_MAX_SIDE);
    if (params->width <= 0 || params->width > FN_IMAGE_MAX_SIDE)
        return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "image params width %d out of range 1..%d",
                        (int)params->width, FN_IMAGE_MAX_SIDE);
    if (params->interp != FUSENET_INTERP_NEAREST && params->interp != FUSENET_INTERP_BILINEAR)
        return fusenet__error(err, FUSENET_ERR_INVALID_ARG,
                        "image params interp %d is neither NEAREST nor BILINEAR", (int)params->interp);
    if (params->caffe != 0 && params->caffe != 1)
        return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "image params caffe %d is neither 0 nor 1",
                        params->caffe);
    if (params->max_pixels <= 0)
        return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "image params max_pixels %lld must be > 0",
                        (long long)params->max_pixels);
    return FUSENET_OK;
}

/* ---- format detection and header dimensions ------------------------------ */

typedef enum { IMG_UNKNOWN = 0, IMG_PNG, IMG_JPEG } img_kind;

static int starts_with(const unsigned char *buf, size_t size, const char *magic, size_t n) {
    return size >= n && memcmp(buf, magic, n) == 0;
}

/* Names formats we recognise but do not decode; NULL if none matches. */
static const char *other_format(const unsigned char *b, size_t n) {
    if (starts_with(b, n, "GIF87a", 6) || starts_with(b, n, "GIF89a", 6)) return "GIF";
    if (starts_with(b, n, "BM", 2)) return "BMP";
    if (starts_with(b, n, "II*\0", 4) || starts_with(b, n, "MM\0*", 4)) return "TIFF";
    if (n >= 12 && memcmp(b, "RIFF", 4) == 0 && memcmp(b + 8, "WEBP", 4) == 0) return "WebP";
    if (starts_with(b, n, "8BPS", 4)) return "PSD";
    if (starts_with(b, n, "#?RADIANCE", 10) || starts_with(b, n, "#?RGBE", 6)) return "HDR";
    if (starts_with(b, n, "qoif", 4)) return "QOI";
    if (starts_with(b, n, "\0\0\1\0", 4)) return "ICO";
    if (starts_with(b, n, "\x00\x00\x00\x0cjP  \r\n\x87\n", 12) ||
        starts_with(b, n, "\xff\x4f\xff\x51", 4))
        return "JPEG 2000";
    if (n >= 12 && memcmp(b + 4, "ftyp", 4) == 0) {
        if (memcmp(b + 8, "avif", 4) == 0 || memcmp(b + 8, "avis", 4) == 0) return "AVIF";
        if (memcmp(b + 8, "heic", 4) == 0 || memcmp(b + 8, "heix", 4) == 0 ||
            memcmp(b + 8, "mif1", 4) == 0)
            return "HEIF";
    }
    if (n >= 3 && b[0] == 'P' && b[1] >= '1' && b[1] <= '7' &&
        (b[2] == '\n' || b[2] == ' ' || b[2] == '\r' || b[2] == '\t'))
        return "PNM";
    return NULL;
}

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Dimensions from the PNG IHDR or the JPEG SOF marker, read without stb_image
 * so that huge declared sizes are refused before any decoder work. Returns 1
 * when found. */
static int header_dims(img_kind kind, const unsigned char *b, size_t n, uint32_t *w, uint32_t *h) {
    if (kind == IMG_PNG) {
        if (n < 24 || memcmp(b + 12, "IHDR", 4) != 0) return 0;
        *w = be32(b + 16);
        *h = be32(b + 20);
        return 1;
    }
    size_t i = 2;
    while (i + 4 <= n) {
        if (b[i] != 0xFF) return 0;
        while (i < n && b[i] == 0xFF) i++; /* fill bytes */
        if (i >= n) return 0;
        unsigned m = b[i++];
        if (m == 0x01 || (m >= 0xD0 && m <= 0xD7)) continue; /* no length */
        if (m == 0xD9 || m == 0xDA) return 0;               /* EOI or SOS before a frame */
        if (i + 2 > n) return 0;
        size_t len = (size_t)b[i] << 8 | b[i + 1];
        if (len < 2) return 0;
        int sof = m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
        if (sof) {
            if (len < 7 || i + 7 > n) return 0;
            *h = (uint32_t)b[i + 3] << 8 | b[i + 4];
            *w = (uint32_t)b[i + 5] << 8 | b[i + 6];
            return 1;
        }
        i += len;
    }
    return 0;
}

/* Walks the JPEG marker segments (skipping entropy-coded data) up to the
 * end-of-image marker. Returns NULL if the stream is complete and sane, else
 * what is wrong. A cut stream (no EOI) is refused as Pillow refuses it
 * ("image file is truncated"); libjpeg would only warn and decode the missing
 * data as grey. A DHT table of more than 256 symbols is refused here too. */
static const char *jpeg_check(const unsigned char *b, size_t n) {
    size_t i = 2;
    int scans = 0;
    for (;;) {
        if (i >= n) return "truncated (no end-of-image marker)";
        if (b[i] != 0xFF) return "garbage between markers";
        while (i < n && b[i] == 0xFF) i++;
        if (i >= n) return "truncated (no end-of-image marker)";
        unsigned m = b[i++];
        if (m == 0xD9) return scans ? NULL : "no scan data";
        if (m == 0x01 || (m >= 0xD0 && m <= 0xD7)) continue;
        if (m == 0x00) return "stray 0xFF00";
        if (i + 2 > n) return "truncated (no end-of-image marker)";
        size_t len = (size_t)b[i] << 8 | b[i + 1];
        if (len < 2) return "bad marker segment length";
        if (i + len > n) return "truncated (no end-of-image marker)";
        if (m == 0xC4) { /* DHT: 1 + 16 + count bytes per table */
            size_t j = i + 2, end = i + len;
            while (j < end) {
                if (j + 17 > end) return "bad DHT segment";
                unsigned cls = b[j] >> 4, id = b[j] & 15;
                if (cls > 1 || id > 3) return "bad DHT table id";
                size_t count = 0;
                for (int k = 1; k <= 16; k++) count += b[j + (size_t)k];
                if (count > 256) return "DHT table with more than 256 codes";
                j += 17 + count;
            }
            if (j != end) return "bad DHT segment length";
        }
        i += len;
        if (m == 0xDA) { /* entropy-coded data runs to the next non-RST marker */
            scans++;
            while (i + 1 < n && !(b[i] == 0xFF && b[i + 1] != 0x00 &&
                                  !(b[i + 1] >= 0xD0 && b[i + 1] <= 0xD7)))
                i++;
            if (i + 1 >= n) return "truncated (no end-of-image marker)";
        }
    }
}

/* Walks the PNG chunks up to IEND checking lengths and CRCs, which stb_image
 * does not check. Returns NULL if sane, else what is wrong. (Pillow checks
 * the CRCs of the chunks it parses and the zlib checksum of the pixel data;
 * stb_image checks neither, so corrupt data would decode as garbage.) */
static const char *png_check(const unsigned char *b, size_t n, char *why, size_t why_size) {
    uint32_t table[256];
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        table[i] = c;
    }
    size_t pos = 8;
    for (;;) {
        if (pos + 12 > n) return "truncated (no IEND chunk)";
        uint32_t len = be32(b + pos);
        if (len > 0x7FFFFFFFu) return "bad chunk length";
        if (len > n - pos - 12) return "truncated (chunk runs past the end of the file)";
        const unsigned char *type = b + pos + 4;
        uint32_t crc = 0xFFFFFFFFu;
        for (size_t i = 0; i < (size_t)len + 4; i++) crc = table[(crc ^ type[i]) & 0xFF] ^ (crc >> 8);
        crc ^= 0xFFFFFFFFu;
        if (crc != be32(type + 4 + len)) {
            int printable = 1;
            for (int i = 0; i < 4; i++)
                if (!((type[i] >= 'A' && type[i] <= 'Z') || (type[i] >= 'a' && type[i] <= 'z')))
                    printable = 0;
            snprintf(why, why_size, "CRC mismatch in %s%.4s%s chunk", printable ? "" : "a",
                     printable ? (const char *)type : "", printable ? "" : "n unnamed");
            return why;
        }
        if (memcmp(type, "IEND", 4) == 0) return NULL;
        pos += 12 + (size_t)len;
    }
}

/* A copy of the PNG in *out (to be freed) whose PLTE has all 256 entries, or
 * NULL (and OK) when the file needs none: not a palette image, a full
 * palette, or a PLTE stb_image refuses anyway. stb_image reads the colour of
 * an index past the file's entries from uninitialised memory (a different
 * picture every run); Pillow's palette starts as the grey ramp (i, i, i) and
 * the file's entries overwrite its start, so the padding is that ramp. Call
 * after png_check: the chunks are sane. */
static fusenet_status png_full_palette(const unsigned char *b, size_t n, const char *name, unsigned char **out,
                                       size_t *out_size, fusenet_error *err) {
    *out = NULL;
    if (n < 33 || b[25] != 3) return FUSENET_OK; /* IHDR's colour type: 3 is a palette */
    for (size_t pos = 8; pos + 12 <= n;) {
        uint32_t len = be32(b + pos);
        if (memcmp(b + pos + 4, "IDAT", 4) == 0 || memcmp(b + pos + 4, "IEND", 4) == 0) break;
        if (memcmp(b + pos + 4, "PLTE", 4) != 0) {
            pos += 12 + (size_t)len;
            continue;
        }
        if (len % 3 != 0 || len == 0 || len >= 768) return FUSENET_OK;
        size_t grow = 768 - (size_t)len, at = pos + 8 + len; /* the end of PLTE's data */
        unsigned char *c = fusenet__malloc(n + grow);
        if (!c) return fusenet__error(err, FUSENET_ERR_NOMEM, "%s: out of memory decoding PNG image", name);
        memcpy(c, b, at);
        for (size_t i = len / 3; i < 256; i++) memset(c + at + 3 * (i - len / 3), (int)i, 3);
        uint32_t crc = (uint32_t)crc32(0, c + pos + 4, (uInt)(4 + 768));
        unsigned char be[4] = {(unsigned char)(crc >> 24), (unsigned char)(crc >> 16), (unsigned char)(crc >> 8),
                               (unsigned char)crc};
        memcpy(c + at + grow, be, 4);
        memcpy(c + at + grow + 4, b + at + 4, n - at - 4);
        c[pos] = 0, c[pos + 1] = 0, c[pos + 2] = 3, c[pos + 3] = 0; /* length 768 */
        *out = c;
        *out_size = n + grow;
        return FUSENET_OK;
    }
    return FUSENET_OK;
}

static fusenet_status stb_failure(fusenet_error *err, const char *name, const char *kind,
                                  uint32_t w, uint32_t h) {
    const char *why = stbi_failure_reason();
    if (!why) why = "unknown error";
    if (stb_alloc_failed || strcmp(why, "outofmem") == 0)
        return fusenet__error(err, FUSENET_ERR_NOMEM, "%s: out of memory decoding %s image", name, kind);
    if (strcmp(why, "too large") == 0)
        return fusenet__error(err, FUSENET_ERR_NOMEM, "%s: %s image %u x %u is too large to decode", name,
                        kind, (unsigned)w, (unsigned)h);
    return fusenet__error(err, FUSENET_ERR_FORMAT, "%s: corrupt or truncated %s image (%s)", name, kind,
                    why);
}

/* FORMAT for a zero-sized image, NOMEM for one over the pixel limit (checked
 * on the header's size before any decoder work, and on the decoder's). */
static fusenet_status check_size(const char *name, const char *kind, int64_t w, int64_t h, int64_t max_pixels,
                                 fusenet_error *err) {
    if (w <= 0 || h <= 0)
        return fusenet__error(err, FUSENET_ERR_FORMAT, "%s: %s image is zero-sized (%lld x %lld)", name, kind,
                        (long long)w, (long long)h);
    if ((uint64_t)w * (uint64_t)h > (uint64_t)max_pixels)
        return fusenet__error(err, FUSENET_ERR_NOMEM, "%s: %s image %lld x %lld has more pixels than the limit of %lld",
                        name, kind, (long long)w, (long long)h, (long long)max_pixels);
    return FUSENET_OK;
}

/* ---- JPEG, with libjpeg-turbo ---------------------------------------------- */

#define JPEG_MAX_SCANS 500 /* progressive scans; real files have about 10 */

/* libjpeg reports a fatal error through error_exit, which must not return:
 * we jump back to decode_jpeg with the message. Warnings (corrupt data that
 * libjpeg decodes anyway, as Pillow does) are not printed. */
typedef struct jpeg_fail {
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
} jpeg_fail;

static void jpeg_error_exit(j_common_ptr c) {
    jpeg_fail *f = (jpeg_fail *)c->err;
    (*c->err->format_message)(c, f->message);
    longjmp(f->jump, 1);
}

static void jpeg_no_output(j_common_ptr c, int level) {
    (void)c;
    (void)level;
}

/* A progressive JPEG can carry thousands of tiny scans, each a pass over the
 * whole coefficient buffer: stop at JPEG_MAX_SCANS. */
static void jpeg_scan_limit(j_common_ptr c) {
    j_decompress_ptr d = (j_decompress_ptr)c;
    if (d->input_scan_number > JPEG_MAX_SCANS) {
        jpeg_fail *f = (jpeg_fail *)c->err;
        snprintf(f->message, sizeof f->message, "more than %d progressive scans", JPEG_MAX_SCANS);
        longjmp(f->jump, 1);
    }
}

/* Pillow's MULDIV255 and cmyk2rgb (Convert.c): CMYK -> RGB. */
static uint8_t cmyk_channel(int v, int nk) {
    int t = v * nk + 128;
    int r = nk - (((t >> 8) + t) >> 8);
    return (uint8_t)(r < 0 ? 0 : r > 255 ? 255 : r);
}

/* Decodes a JPEG into a new 8-bit RGB buffer (*out, freed with fusenet__free). */
static fusenet_status decode_jpeg(const unsigned char *buf, size_t size, const char *name, int64_t max_pixels,
                                  uint8_t **out, int *width, int *height, fusenet_error *err) {
    struct jpeg_decompress_struct cinfo;
    struct jpeg_progress_mgr progress;
    jpeg_fail jf;
    uint8_t *volatile rgb = NULL;
    JSAMPLE *volatile row = NULL;
    memset(&cinfo, 0, sizeof cinfo);
    memset(&progress, 0, sizeof progress);
    cinfo.err = jpeg_std_error(&jf.mgr);
    jf.mgr.error_exit = jpeg_error_exit;
    jf.mgr.emit_message = jpeg_no_output;
    jf.message[0] = '\0';
    *out = NULL;
    if (setjmp(jf.jump)) {
        int oom = jf.mgr.msg_code == JERR_OUT_OF_MEMORY;
        jpeg_destroy_decompress(&cinfo);
        fusenet__free(rgb);
        fusenet__free(row);
        if (oom)
            return fusenet__error(err, FUSENET_ERR_NOMEM, "%s: out of memory decoding JPEG image (%s)", name,
                            jf.message);
        return fusenet__error(err, FUSENET_ERR_FORMAT, "%s: corrupt JPEG image (%s)", name, jf.message);
    }
    jpeg_create_decompress(&cinfo);
    progress.progress_monitor = jpeg_scan_limit;
    cinfo.progress = &progress;
    jpeg_mem_src(&cinfo, buf, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);
    uint64_t w = cinfo.image_width, h = cinfo.image_height;
    fusenet_status st = check_size(name, "JPEG", (int64_t)w, (int64_t)h, max_pixels, err);
    if (st != FUSENET_OK) {
        jpeg_destroy_decompress(&cinfo);
        return st;
    }
    /* libjpeg's own buffers (a progressive file keeps every coefficient) */
    cinfo.mem->max_memory_to_use = (long)(((uint64_t)64 << 20) + 32 * w * h);
    int grey = cinfo.jpeg_color_space == JCS_GRAYSCALE;
    int cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
    cinfo.out_color_space = grey ? JCS_GRAYSCALE : cmyk ? JCS_CMYK : JCS_RGB;
    jpeg_start_decompress(&cinfo);
    int comps = cinfo.output_components;
    if (cinfo.output_width != w || cinfo.output_height != h || comps != (grey ? 1 : cmyk ? 4 : 3)) {
        snprintf(jf.message, sizeof jf.message, "decoder output %u x %u x %d", cinfo.output_width,
                 cinfo.output_height, comps);
        longjmp(jf.jump, 1);
    }
    rgb = fusenet__malloc((size_t)(w * h * 3));
    row = fusenet__malloc((size_t)w * (size_t)comps);
    if (!rgb || !row) {
        jf.mgr.msg_code = JERR_OUT_OF_MEMORY;
        snprintf(jf.message, sizeof jf.message, "%llu x %llu pixels", (unsigned long long)w,
                 (unsigned long long)h);
        longjmp(jf.jump, 1);
    }
    while (cinfo.output_scanline < h) {
        uint8_t *dst = rgb + (size_t)cinfo.output_scanline * (size_t)w * 3;
        JSAMPROW r = row;
        if (jpeg_read_scanlines(&cinfo, &r, 1) != 1) {
            snprintf(jf.message, sizeof jf.message, "no data for row %u", cinfo.output_scanline);
            longjmp(jf.jump, 1);
        }
        for (size_t x = 0; x < w; x++) {
            const JSAMPLE *p = row + x * (size_t)comps;
            if (comps == 1) {
                dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = p[0];
            } else if (comps == 3) {
                memcpy(dst + 3 * x, p, 3);
            } else { /* Pillow reads 4-channel JPEGs as Adobe's inverted CMYK ("CMYK;I") */
                int k = 255 - p[3], nk = 255 - k;
                for (int ch = 0; ch < 3; ch++) dst[3 * x + ch] = cmyk_channel(255 - p[ch], nk);
            }
        }
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    fusenet__free(row);
    *out = rgb;
    *width = (int)w;
    *height = (int)h;
    return FUSENET_OK;
}

/* ---- resizing, after Pillow ---------------------------------------------- */

#define PREC_BITS 22 /* Pillow's PRECISION_BITS for 8-bit images: 32 - 8 - 2 */

static uint8_t clip8(int64_t ss) {
    int64_t v = ss >> PREC_BITS;
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

static double triangle(double x) {
    if (x < 0.0) x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

/* Fixed-point coefficients for resampling in_size -> out_size, as Pillow's
 * precompute_coeffs + normalize_coeffs_8bpc with the bilinear filter and the
 * whole image as box. Stored compactly: output o uses source samples
 * first[o] .. first[o] + count[o] - 1 with weights k[off[o] ..]. */
typedef struct coeffs {
    int32_t *first, *count;
    size_t *off;
    int32_t *k;
} coeffs;

static void coeffs_free(coeffs *c) {
    fusenet__free(c->first);
    fusenet__free(c->count);
    fusenet__free(c->off);
    fusenet__free(c->k);
    memset(c, 0, sizeof *c);
}

static int coeffs_make(int in_size, int out_size, coeffs *c) {
    memset(c, 0, sizeof *c);
    double scale = (double)(float)in_size / out_size; /* Pillow: (double)(in1 - in0) / outSize */
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 1.0 * filterscale;
    double ss = 1.0 / filterscale;
    c->first = fusenet__malloc((size_t)out_size * sizeof *c->first);
    c->count = fusenet__malloc((size_t)out_size * sizeof *c->count);
    c->off = fusenet__malloc(((size_t)out_size + 1) * sizeof *c->off);
    if (!c->first || !c->count || !c->off) goto oom;
    size_t total = 0;
    int maxn = 1;
    for (int o = 0; o < out_size; o++) {
        double center = (o + 0.5) * scale;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        if (xmax < 0) xmax = 0;
        c->first[o] = xmin;
        c->count[o] = xmax;
        c->off[o] = total;
        total += (size_t)xmax;
        if (xmax > maxn) maxn = xmax;
    }
    c->off[out_size] = total;
    c->k = fusenet__malloc(total * sizeof *c->k);
    double *w = fusenet__malloc((size_t)maxn * sizeof *w);
    if (!c->k || !w) {
        fusenet__free(w);
        goto oom;
    }
    for (int o = 0; o < out_size; o++) {
        double center = (o + 0.5) * scale;
        int xmin = c->first[o], n = c->count[o];
        double ww = 0.0;
        for (int x = 0; x < n; x++) {
            w[x] = triangle((x + xmin - center + 0.5) * ss);
            ww += w[x];
        }
        int32_t *k = c->k + c->off[o];
        for (int x = 0; x < n; x++) {
            double v = ww != 0.0 ? w[x] / ww : w[x];
            k[x] = v < 0 ? (int32_t)(-0.5 + v * (1 << PREC_BITS))
                         : (int32_t)(0.5 + v * (1 << PREC_BITS));
        }
    }
    fusenet__free(w);
    return 1;
oom:
    coeffs_free(c);
    return 0;
}

/* Pillow-exact bilinear resize of packed RGB8. */
static fusenet_status resize_bilinear(const uint8_t *in, int iw, int ih, uint8_t *out, int ow,
                                      int oh, const char *name, fusenet_error *err) {
    int need_h = ow != iw, need_v = oh != ih;
    coeffs ch, cv;
    memset(&ch, 0, sizeof ch);
    if (!coeffs_make(ih, oh, &cv)) goto oom;
    uint8_t *tmp = NULL;
    const uint8_t *src = in;
    int row0 = 0; /* source row held by src's row 0 */
    if (need_h) {
        int first = cv.first[0];
        int last = cv.first[oh - 1] + cv.count[oh - 1];
        if (!coeffs_make(iw, ow, &ch)) goto oom;
        size_t rows = (size_t)(last - first);
        tmp = need_v ? fusenet__malloc(rows * (size_t)ow * 3) : out;
        if (!tmp) goto oom;
        for (size_t y = 0; y < rows; y++) {
            const uint8_t *irow = in + ((size_t)first + y) * (size_t)iw * 3;
            uint8_t *orow = tmp + y * (size_t)ow * 3;
            for (int o = 0; o < ow; o++) {
                const int32_t *k = ch.k + ch.off[o];
                const uint8_t *p = irow + (size_t)ch.first[o] * 3;
                int64_t s0 = 1 << (PREC_BITS - 1), s1 = s0, s2 = s0;
                for (int x = 0; x < ch.count[o]; x++) {
                    s0 += (int64_t)p[3 * x] * k[x];
                    s1 += (int64_t)p[3 * x + 1] * k[x];
                    s2 += (int64_t)p[3 * x + 2] * k[x];
                }
                orow[3 * o] = clip8(s0);
                orow[3 * o + 1] = clip8(s1);
                orow[3 * o + 2] = clip8(s2);
            }
        }
        src = tmp;
        row0 = first;
    }
    if (need_v) {
        size_t stride = (size_t)ow * 3; /* src width is ow here: iw == ow when !need_h */
        for (int o = 0; o < oh; o++) {
            const int32_t *k = cv.k + cv.off[o];
            const uint8_t *base = src + (size_t)(cv.first[o] - row0) * stride;
            uint8_t *orow = out + (size_t)o * stride;
            for (size_t xc = 0; xc < stride; xc++) {
                int64_t s = 1 << (PREC_BITS - 1);
                for (int y = 0; y < cv.count[o]; y++) s += (int64_t)base[(size_t)y * stride + xc] * k[y];
                orow[xc] = clip8(s);
            }
        }
        if (tmp) fusenet__free(tmp);
    }
    coeffs_free(&ch);
    coeffs_free(&cv);
    return FUSENET_OK;
oom:
    coeffs_free(&ch);
    coeffs_free(&cv);
    return fusenet__error(err, FUSENET_ERR_NOMEM, "%s: out of memory resizing %d x %d to %d x %d", name,
                    iw, ih, ow, oh);
}

/* Pillow-exact nearest resize (ImagingScaleAffine with a = in/out). */
static fusenet_status resize_nearest(const uint8_t *in, int iw, int ih, uint8_t *out, int ow, int oh,
                                     const char *name, fusenet_error *err) {
    int *xin = fusenet__malloc((size_t)ow * sizeof *xin);
    if (!xin)
        return fusenet__error(err, FUSENET_ERR_NOMEM, "%s: out of memory resizing %d x %d to %d x %d",
                        name, iw, ih, ow, oh);
    double ax = (double)(float)iw / ow, ay = (double)(float)ih / oh;
    double xo = ax * 0.5;
    for (int x = 0; x < ow; x++) {
        int xi = xo < 0.0 ? -1 : (int)xo;
        xin[x] = xi < iw ? xi : -1;
        xo += ax;
    }
    double yo = ay * 0.5;
    for (int y = 0; y < oh; y++) {
        int yi = yo < 0.0 ? -1 : (int)yo;
        uint8_t *orow = out + (size_t)y * (size_t)ow * 3;
        if (yi < 0 || yi >= ih) {
            memset(orow, 0, (size_t)ow * 3); /* Pillow's fill; cannot happen for a = in/out */
        } else {
            const uint8_t *irow = in + (size_t)yi * (size_t)iw * 3;
            for (int x = 0; x < ow; x++) {
                if (xin[x] < 0) {
                    memset(orow + 3 * x, 0, 3);
                } else {
                    memcpy(orow + 3 * x, irow + 3 * (size_t)xin[x], 3);
                }
            }
        }
        yo += ay;
    }
    fusenet__free(xin);
    return FUSENET_OK;
}

/* ---- decode -------------------------------------------------------------- */

/* Decodes a PNG with stb_image into *rgb (fusenet__malloc'd, w x h x 3). */
static fusenet_status decode_png(const unsigned char *buf, size_t size, const char *name, const char *kname,
                                 uint32_t hw, uint32_t hh, int64_t max_pixels, uint8_t **rgb, int *w, int *h,
                                 fusenet_error *err) {
    int comp = 0;
    stb_alloc_failed = 0;
    if (!stbi_info_from_memory(buf, (int)size, w, h, &comp)) return stb_failure(err, name, kname, hw, hh);
    fusenet_status st = check_size(name, kname, *w, *h, max_pixels, err);
    if (st != FUSENET_OK) return st;
    int dw = 0, dh = 0, dc = 0;
    stb_alloc_failed = 0;
    *rgb = stbi_load_from_memory(buf, (int)size, &dw, &dh, &dc, 3); /* fusenet__malloc'd (STBI_MALLOC) */
    if (!*rgb) return stb_failure(err, name, kname, (uint32_t)*w, (uint32_t)*h);
    if (dw != *w || dh != *h) {
        fusenet__free(*rgb);
        *rgb = NULL;
        return fusenet__error(err, FUSENET_ERR_FORMAT, "%s: %s image decoded as %d x %d, header says %d x %d", name,
                              kname, dw, dh, *w, *h);
    }
    return FUSENET_OK;
}

fusenet_status fusenet__image_decode(const unsigned char *buf, size_t size, const char *name,
                               const fusenet_image_params *params, float *dst, fusenet_error *err) {
    fusenet_status st = check_params(params, dst, err);
    if (st != FUSENET_OK) return st;
    if (!name) name = "<memory>";
    if (!buf && size > 0) return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "image buf is NULL");
    if (size == 0) return fusenet__error(err, FUSENET_ERR_FORMAT, "%s: empty file, not an image", name);
    if (size > FN_IMAGE_MAX_FILE || size > INT_MAX)
        return fusenet__error(err, FUSENET_ERR_NOMEM, "%s: %zu bytes is over the 1 GiB image file limit",
                        name, size);

    img_kind kind = IMG_UNKNOWN;
    if (starts_with(buf, size, "\x89PNG\r\n\x1a\n", 8)) kind = IMG_PNG;
    else if (size >= 3 && buf[0] == 0xFF && buf[1] == 0xD8 && buf[2] == 0xFF) kind = IMG_JPEG;
    if (kind == IMG_UNKNOWN) {
        const char *other = other_format(buf, size);
        if (other)
            return fusenet__error(err, FUSENET_ERR_UNSUPPORTED,
                            "%s: %s images are not supported (JPEG and PNG only)", name, other);
        return fusenet__error(err, FUSENET_ERR_FORMAT, "%s: not a JPEG or PNG image (unknown signature)",
                        name);
    }
    const char *kname = kind == IMG_PNG ? "PNG" : "JPEG";

    uint32_t hw = 0, hh = 0;
    if (header_dims(kind, buf, size, &hw, &hh) &&
        (st = check_size(name, kname, hw, hh, params->max_pixels, err)) != FUSENET_OK)
        return st;

    char whybuf[64];
    const char *why = kind == IMG_JPEG ? jpeg_check(buf, size)
                                       : png_check(buf, size, whybuf, sizeof whybuf);
    if (why) return fusenet__error(err, FUSENET_ERR_FORMAT, "%s: corrupt %s image: %s", name, kname, why);

    int w = 0, h = 0;
    uint8_t *rgb = NULL;
    if (kind == IMG_JPEG) {
        st = decode_jpeg(buf, size, name, params->max_pixels, &rgb, &w, &h, err);
        if (st != FUSENET_OK) return st;
    } else {
        unsigned char *padded = NULL;
        size_t padded_size = 0;
        if ((st = png_full_palette(buf, size, name, &padded, &padded_size, err)) != FUSENET_OK) return st;
        st = decode_png(padded ? padded : buf, padded ? padded_size : size, name, kname, hw, hh,
                        params->max_pixels, &rgb, &w, &h, err);
        fusenet__free(padded);
        if (st != FUSENET_OK) return st;
    }

    int ow = params->width, oh = params->height;
    const uint8_t *px = rgb;
    uint8_t *resized = NULL;
    if (ow != w || oh != h) {
        resized = fusenet__malloc((size_t)ow * (size_t)oh * 3);
        if (!resized) {
            fusenet__free(rgb);
            return fusenet__error(err, FUSENET_ERR_NOMEM, "%s: out of memory resizing %d x %d to %d x %d",
                            name, w, h, ow, oh);
        }
        st = params->interp == FUSENET_INTERP_NEAREST
                 ? resize_nearest(rgb, w, h, resized, ow, oh, name, err)
                 : resize_bilinear(rgb, w, h, resized, ow, oh, name, err);
        fusenet__free(rgb);
        rgb = NULL;
        if (st != FUSENET_OK) {
            fusenet__free(resized);
            return st;
        }
        px = resized;
    }

    size_t n = (size_t)ow * (size_t)oh;
    if (params->caffe) {
        for (size_t i = 0; i < n; i++) {
            dst[3 * i + 0] = (float)px[3 * i + 2] - caffe_mean_bgr[0];
            dst[3 * i + 1] = (float)px[3 * i + 1] - caffe_mean_bgr[1];
            dst[3 * i + 2] = (float)px[3 * i + 0] - caffe_mean_bgr[2];
        }
    } else {
        for (size_t i = 0; i < 3 * n; i++) dst[i] = (float)px[i];
    }
    fusenet__free(rgb);
    fusenet__free(resized);
    return fusenet__ok(err);
}

/* ---- file ---------------------------------------------------------------- */

/* Reads a whole image file (regular files only, at most 1 GiB) into *buf. */
static fusenet_status read_image_file(const char *path, unsigned char **buf, size_t *len, fusenet_error *err) {
    int fd;
    do fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not block us */
    while (fd < 0 && errno == EINTR);
    if (fd < 0) return fusenet__error(err, FUSENET_ERR_IO, "cannot open image %s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return fusenet__error(err, FUSENET_ERR_IO, "cannot stat image %s: %s", path, strerror(e));
    }
    if (S_ISDIR(sb.st_mode)) {
        close(fd);
        return fusenet__error(err, FUSENET_ERR_IO, "cannot read image %s: %s", path, strerror(EISDIR));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return fusenet__error(err, FUSENET_ERR_IO, "cannot read image %s: not a regular file", path);
    }
    if (sb.st_size < 0 || (uint64_t)sb.st_size > FN_IMAGE_MAX_FILE) {
        close(fd);
        return fusenet__error(err, FUSENET_ERR_NOMEM, "image %s: %lld bytes is over the 1 GiB file limit",
                        path, (long long)sb.st_size);
    }
    size_t size = (size_t)sb.st_size;
    unsigned char *data = fusenet__malloc(size);
    if (!data) {
        close(fd);
        return fusenet__error(err, FUSENET_ERR_NOMEM, "image %s: out of memory reading %zu bytes", path,
                        size);
    }
    size_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, data + got, size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            fusenet__free(data);
            return fusenet__error(err, FUSENET_ERR_IO, "cannot read image %s: %s", path, strerror(e));
        }
        if (r == 0) break; /* the file shrank: decode what is there */
        got += (size_t)r;
    }
    close(fd);
    *buf = data;
    *len = got;
    return FUSENET_OK;
}

fusenet_status fusenet_image_load(const char *path, const fusenet_image_params *params, float *dst,
                                  fusenet_error *err) {
    if (!path) return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "image path is NULL");
    fusenet_image_params defaults = fusenet_image_default_params();
    if (!params) params = &defaults;
    fusenet_status st = check_params(params, dst, err);
    if (st != FUSENET_OK) return st;
    unsigned char *buf;
    size_t got;
    st = read_image_file(path, &buf, &got, err);
    if (st != FUSENET_OK) return st;
    st = fusenet__image_decode(buf, got, path, params, dst, err);
    fusenet__free(buf);
    return st;
}

fusenet_status fusenet_image_size(const char *path, int32_t *width, int32_t *height, fusenet_error *err) {
    if (!path || !width || !height)
        return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "fusenet_image_size: %s is NULL",
                        !path ? "path" : !width ? "width" : "height");
    unsigned char *buf;
    size_t got;
    fusenet_status st = read_image_file(path, &buf, &got, err);
    if (st != FUSENET_OK) return st;
    img_kind kind = IMG_UNKNOWN;
    if (starts_with(buf, got, "\x89PNG\r\n\x1a\n", 8)) kind = IMG_PNG;
    else if (got >= 3 && buf[0] == 0xFF && buf[1] == 0xD8 && buf[2] == 0xFF) kind = IMG_JPEG;
    uint32_t hw = 0, hh = 0;
    int w = 0, h = 0, comp = 0;
    const char *other = kind == IMG_UNKNOWN ? other_format(buf, got) : NULL;
    if (other)
        st = fusenet__error(err, FUSENET_ERR_UNSUPPORTED, "%s: %s images are not supported (JPEG and PNG only)", path,
                      other);
    else if (kind == IMG_UNKNOWN)
        st = fusenet__error(err, FUSENET_ERR_FORMAT, "%s: not a JPEG or PNG image (unknown signature)", path);
    else if (header_dims(kind, buf, got, &hw, &hh) && hw > 0 && hh > 0 && hw <= INT32_MAX && hh <= INT32_MAX) {
        w = (int)hw;
        h = (int)hh;
    } else {
        stb_alloc_failed = 0;
        if (got > INT_MAX || !stbi_info_from_memory(buf, (int)got, &w, &h, &comp) || w <= 0 || h <= 0)
            st = fusenet__error(err, FUSENET_ERR_FORMAT, "%s: corrupt %s image: cannot read its size", path,
                          kind == IMG_PNG ? "PNG" : "JPEG");
    }
    fusenet__free(buf);
    if (st != FUSENET_OK) return st;
    *width = w;
    *height = h;
    return fusenet__ok(err);
}
