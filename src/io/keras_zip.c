/* keras_zip.c - the weights entry of a .keras archive: checked with libzip,
 * then read in place where it is stored, or into memory (see keras_zip.h). */
#include "keras_zip.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>
#include <zlib.h>

#include "alloc.h"

int fusenet__zip_is_zip(const char *path) {
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return 0;
    struct stat sb;
    unsigned char b[4] = {0};
    int yes = fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && pread(fd, b, 4, 0) == 4 && b[0] == 'P' &&
              b[1] == 'K' && ((b[2] == 3 && b[3] == 4) || (b[2] == 5 && b[3] == 6));
    close(fd);
    return yes;
}

static fusenet_status zfail(fusenet_error *err, fusenet_status st, const char *name, const char *what,
                            const char *detail) {
    return fusenet__error(err, st, "%s: %s%s%s", name, what, detail ? ": " : "", detail ? detail : "");
}

/* The index of the only entry called `entry`; FORMAT if none or several. */
static fusenet_status find_entry(zip_t *za, const char *name, const char *entry, zip_uint64_t *index,
                                 fusenet_error *err) {
    zip_int64_t n = zip_get_num_entries(za, 0);
    if (n < 0 || n > FN_ZIP_MAX_ENTRIES)
        return fusenet__error(err, FUSENET_ERR_FORMAT, "%s: zip archive of %lld entries (at most %d)", name,
                              (long long)n, FN_ZIP_MAX_ENTRIES);
    int found = 0;
    for (zip_int64_t i = 0; i < n; i++) {
        const char *e = zip_get_name(za, (zip_uint64_t)i, ZIP_FL_ENC_RAW);
        if (!e || strcmp(e, entry) != 0) continue;
        if (found++)
            return fusenet__error(err, FUSENET_ERR_FORMAT, "%s: two zip entries are named %s", name, entry);
        *index = (zip_uint64_t)i;
    }
    if (!found)
        return fusenet__error(err, FUSENET_ERR_FORMAT,
                              "%s: zip archive without a %s entry (a .keras archive holds metadata.json, "
                              "config.json and %s)",
                              name, entry, entry);
    return FUSENET_OK;
}

/* The entry's sizes and method, refused before anything is allocated. */
static fusenet_status check_entry(zip_t *za, zip_uint64_t index, const char *name, const char *entry,
                                  uint64_t archive, zip_stat_t *stat, fusenet_error *err) {
    zip_stat_t zs;
    zip_stat_init(&zs);
    if (zip_stat_index(za, index, 0, &zs) != 0)
        return zfail(err, FUSENET_ERR_FORMAT, name, entry, zip_strerror(za));
    const zip_uint64_t need =
        ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE | ZIP_STAT_COMP_METHOD | ZIP_STAT_ENCRYPTION_METHOD | ZIP_STAT_CRC;
    if ((zs.valid & need) != need) return zfail(err, FUSENET_ERR_FORMAT, name, entry, "sizes unknown");
    if (zs.encryption_method != ZIP_EM_NONE)
        return zfail(err, FUSENET_ERR_UNSUPPORTED, name, entry, "encrypted");
    char d[160];
    if (zs.size > FN_ZIP_MAX_BYTES || zs.size > SIZE_MAX) {
        snprintf(d, sizeof d, "declares %llu bytes, more than %llu", (unsigned long long)zs.size,
                 (unsigned long long)FN_ZIP_MAX_BYTES);
        return zfail(err, FUSENET_ERR_FORMAT, name, entry, d);
    }
    if (zs.comp_size > archive) {
        snprintf(d, sizeof d, "declares %llu compressed bytes in an archive of %llu", (unsigned long long)zs.comp_size,
                 (unsigned long long)archive);
        return zfail(err, FUSENET_ERR_FORMAT, name, entry, d);
    }
    if (zs.comp_method == ZIP_CM_STORE) {
        if (zs.comp_size != zs.size) {
            snprintf(d, sizeof d, "stored, but declares %llu bytes and %llu compressed",
                     (unsigned long long)zs.size, (unsigned long long)zs.comp_size);
            return zfail(err, FUSENET_ERR_FORMAT, name, entry, d);
        }
    } else if (zs.comp_method == ZIP_CM_DEFLATE) {
        if (zs.size / FN_ZIP_MAX_RATIO > zs.comp_size) {
            snprintf(d, sizeof d, "deflated %llu bytes to %llu: more than %d:1, a zip bomb",
                     (unsigned long long)zs.size, (unsigned long long)zs.comp_size, FN_ZIP_MAX_RATIO);
            return zfail(err, FUSENET_ERR_FORMAT, name, entry, d);
        }
    } else {
        snprintf(d, sizeof d, "compression method %u (only stored and deflated entries are read)",
                 (unsigned)zs.comp_method);
        return zfail(err, FUSENET_ERR_UNSUPPORTED, name, entry, d);
    }
    *stat = zs;
    return FUSENET_OK;
}

/* Reads exactly `size` bytes of the entry, and checks nothing follows. */
static fusenet_status read_entry(zip_t *za, zip_uint64_t index, const char *name, const char *entry, uint8_t *buf,
                                 zip_uint64_t size, fusenet_error *err) {
    zip_file_t *zf = zip_fopen_index(za, index, 0);
    if (!zf) return zfail(err, FUSENET_ERR_FORMAT, name, entry, zip_strerror(za));
    fusenet_status st = FUSENET_OK;
    zip_uint64_t got = 0;
    while (got < size && st == FUSENET_OK) {
        zip_uint64_t want = size - got > ((zip_uint64_t)1 << 24) ? (zip_uint64_t)1 << 24 : size - got;
        zip_int64_t r = zip_fread(zf, buf + got, want);
        if (r < 0) st = zfail(err, FUSENET_ERR_FORMAT, name, entry, zip_file_strerror(zf));
        else if (r == 0) {
            char d[128];
            snprintf(d, sizeof d, "%llu bytes, shorter than the %llu it declares", (unsigned long long)got,
                     (unsigned long long)size);
            st = zfail(err, FUSENET_ERR_FORMAT, name, entry, d);
        } else got += (zip_uint64_t)r;
    }
    uint8_t more;
    if (st == FUSENET_OK) {
        zip_int64_t r = zip_fread(zf, &more, 1);
        if (r < 0) st = zfail(err, FUSENET_ERR_FORMAT, name, entry, zip_file_strerror(zf));
        else if (r > 0) st = zfail(err, FUSENET_ERR_FORMAT, name, entry, "longer than the size it declares");
    }
    zip_fclose(zf);
    return st;
}

/* Opens the archive (the file `fd`, or the bytes data[0..size)) with
 * libzip's consistency checks and finds and checks its entry `entry`;
 * *archive: the archive's size in bytes. */
static fusenet_status open_checked(int fd, const char *name, const uint8_t *data, size_t size, const char *entry,
                                   zip_t **za, zip_uint64_t *index, zip_stat_t *stat, uint64_t *archive_size,
                                   fusenet_error *err) {
    *za = NULL;
    zip_error_t ze;
    zip_error_init(&ze);
    uint64_t archive = size;
    zip_source_t *src = NULL;
    if (fd >= 0) {
        struct stat sb;
        if (fstat(fd, &sb) != 0) return fusenet__error(err, FUSENET_ERR_IO, "%s: cannot open: %s", name, strerror(errno));
        archive = (uint64_t)sb.st_size;
        int dfd = dup(fd); /* libzip closes its FILE; we keep fd for the reads in place */
        FILE *fp = dfd >= 0 ? fdopen(dfd, "rb") : NULL;
        if (!fp && dfd >= 0) close(dfd);
        if (!fp) return fusenet__error(err, FUSENET_ERR_IO, "%s: cannot open: %s", name, strerror(errno));
        if (!(src = zip_source_filep_create(fp, 0, -1, &ze))) fclose(fp);
    } else {
        src = zip_source_buffer_create(data, size, 0, &ze);
    }
    if (!src) {
        fusenet_status st = zfail(err, FUSENET_ERR_IO, name, "cannot open the zip archive", zip_error_strerror(&ze));
        zip_error_fini(&ze);
        return st;
    }
    zip_t *z = zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &ze);
    if (!z) {
        zip_source_free(src);
        fusenet_status st = zfail(err, FUSENET_ERR_FORMAT, name, "not a readable zip archive", zip_error_strerror(&ze));
        zip_error_fini(&ze);
        return st;
    }
    zip_error_fini(&ze);
    fusenet_status st = find_entry(z, name, entry, index, err);
    if (st == FUSENET_OK) st = check_entry(z, *index, name, entry, archive, stat, err);
    if (st != FUSENET_OK) {
        zip_discard(z);
        return st;
    }
    *za = z;
    *archive_size = archive;
    return FUSENET_OK;
}

/* The checked entry read through libzip into a new buffer. */
static fusenet_status read_to_memory(zip_t *za, zip_uint64_t index, const zip_stat_t *zs, const char *name,
                                     const char *entry, uint8_t **out, size_t *n, fusenet_error *err) {
    uint8_t *buf = fusenet__malloc(zs->size ? (size_t)zs->size : 1);
    if (!buf)
        return fusenet__error(err, FUSENET_ERR_NOMEM, "%s: out of memory reading %s (%llu bytes)", name, entry,
                              (unsigned long long)zs->size);
    fusenet_status st = read_entry(za, index, name, entry, buf, zs->size, err);
    if (st != FUSENET_OK) {
        fusenet__free(buf);
        return st;
    }
    *out = buf;
    *n = (size_t)zs->size;
    return FUSENET_OK;
}

fusenet_status fusenet__zip_read(const char *path, const char *name, const uint8_t *data, size_t size,
                                 const char *entry, uint8_t **out, size_t *n, fusenet_error *err) {
    *out = NULL;
    *n = 0;
    if (!name) name = path;
    int fd = -1;
    if (path && (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return fusenet__error(err, FUSENET_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    zip_t *za;
    zip_uint64_t index;
    zip_stat_t zs;
    uint64_t archive;
    fusenet_status st = open_checked(fd, name, data, size, entry, &za, &index, &zs, &archive, err);
    if (st == FUSENET_OK) {
        st = read_to_memory(za, index, &zs, name, entry, out, n, err);
        zip_discard(za);
    }
    if (fd >= 0) close(fd);
    return st == FUSENET_OK ? fusenet__ok(err) : st;
}

/* ---- where a stored entry lies: our own reading of the zip headers ------- */

/* The archive's bytes: the file fd, or mem[0..size). */
typedef struct zbytes {
    int fd;
    const uint8_t *mem;
    uint64_t size;
} zbytes;

/* 0: n bytes at `off` read into buf; -1: past the end, or a failed read. */
static int zget(const zbytes *z, uint64_t off, void *buf, size_t n) {
    if (off > z->size || n > z->size - off) return -1;
    if (z->mem) {
        memcpy(buf, z->mem + off, n);
        return 0;
    }
    uint8_t *p = buf;
    while (n > 0) {
        ssize_t r = pread(z->fd, p, n, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

static uint32_t le16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t le32(const uint8_t *p) { return le16(p) | le16(p + 2) << 16; }
static uint64_t le64(const uint8_t *p) { return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32; }

/* The central directory's place and entry count, from the end record (and
 * its zip64 form when a field is saturated). APPNOTE.TXT 4.3.14-4.3.16. */
static int find_directory(const zbytes *z, uint64_t *cd, uint64_t *cd_size, uint64_t *entries) {
    uint64_t n = z->size < 22 + 65535 ? z->size : 22 + 65535; /* the end record and its longest comment */
    uint8_t *tail = n >= 22 ? fusenet__malloc((size_t)n) : NULL;
    if (!tail || zget(z, z->size - n, tail, (size_t)n) != 0) {
        fusenet__free(tail);
        return -1;
    }
    uint64_t at = UINT64_MAX; /* the end record: the last signature whose comment ends the file */
    for (uint64_t i = n - 22 + 1; i-- > 0;)
        if (le32(tail + i) == 0x06054b50u && i + 22 + le16(tail + i + 20) == n) {
            at = i;
            break;
        }
    if (at != UINT64_MAX) {
        *entries = le16(tail + at + 10);
        *cd_size = le32(tail + at + 12);
        *cd = le32(tail + at + 16);
    }
    fusenet__free(tail);
    if (at == UINT64_MAX) return -1;
    uint64_t end = z->size - n + at; /* the end record's offset in the archive */
    if (*entries == 0xFFFFu || *cd_size == 0xFFFFFFFFu || *cd == 0xFFFFFFFFu) {
        uint8_t loc[20], z64[56];
        if (end < 20 || zget(z, end - 20, loc, 20) != 0 || le32(loc) != 0x07064b50u) return -1;
        uint64_t rec = le64(loc + 8);
        if (rec > end || zget(z, rec, z64, 56) != 0 || le32(z64) != 0x06064b50u) return -1;
        *entries = le64(z64 + 32);
        *cd_size = le64(z64 + 40);
        *cd = le64(z64 + 48);
        end = rec;
    }
    return *cd <= end && *cd_size <= end - *cd ? 0 : -1;
}

/* The zip64 extra field's values (APPNOTE.TXT 4.5.3), each present only
 * where the central header's 32-bit field is saturated. */
static int zip64_extra(const uint8_t *x, uint32_t len, uint64_t *size, uint64_t *comp, uint64_t *local) {
    for (uint32_t i = 0; i + 4 <= len;) {
        uint32_t id = le16(x + i), n = le16(x + i + 2);
        if (n > len - i - 4) return -1;
        if (id == 1) {
            const uint8_t *p = x + i + 4;
            uint64_t *f[3] = {size, comp, local};
            for (int k = 0; k < 3; k++) {
                if (*f[k] != 0xFFFFFFFFu) continue;
                if (p + 8 > x + i + 4 + n) return -1;
                *f[k] = le64(p);
                p += 8;
            }
            return 0;
        }
        i += 4 + n;
    }
    return *size == 0xFFFFFFFFu || *comp == 0xFFFFFFFFu || *local == 0xFFFFFFFFu ? -1 : 0;
}

int fusenet__zip_locate(int fd, const uint8_t *data, uint64_t size, const char *entry, fn_zip_span *span) {
    zbytes z = {fd, fd >= 0 ? NULL : data, size};
    uint64_t cd, cd_size, entries;
    if ((fd < 0 && !data) || find_directory(&z, &cd, &cd_size, &entries) != 0) return -1;
    size_t want = strlen(entry);
    uint8_t h[46], name[256];
    int found = 0;
    uint64_t p = cd, end = cd + cd_size;
    for (uint64_t i = 0; i < entries; i++) { /* central headers, APPNOTE.TXT 4.3.12 */
        if (end - p < 46 || zget(&z, p, h, 46) != 0 || le32(h) != 0x02014b50u) return -1;
        uint32_t nlen = le16(h + 28), xlen = le16(h + 30), clen = le16(h + 32);
        uint64_t next = p + 46 + nlen + xlen + clen;
        if (next > end) return -1;
        if (nlen == want && want <= sizeof name && zget(&z, p + 46, name, nlen) == 0 && memcmp(name, entry, want) == 0) {
            if (found++) return -1;
            span->method = le16(h + 10);
            span->crc = le32(h + 16);
            uint64_t comp = le32(h + 20), local = le32(h + 42);
            span->length = le32(h + 24);
            uint8_t *extra = fusenet__malloc(xlen ? xlen : 1);
            int bad = !extra || zget(&z, p + 46 + nlen, extra, xlen) != 0 ||
                      zip64_extra(extra, xlen, &span->length, &comp, &local) != 0;
            fusenet__free(extra);
            if (bad) return -1;
            uint8_t l[30]; /* its local header, APPNOTE.TXT 4.3.7 */
            if (local > cd || zget(&z, local, l, 30) != 0 || le32(l) != 0x04034b50u || le16(l + 8) != span->method ||
                le16(l + 26) != want || zget(&z, local + 30, name, want) != 0 || memcmp(name, entry, want) != 0)
                return -1;
            span->offset = local + 30 + want + le16(l + 28);
            if (span->offset > cd || comp > cd - span->offset || (span->method == 0 && comp != span->length)) return -1;
        }
        p = next;
    }
    return found ? 0 : -1;
}

/* CRC-32 as zlib's crc32 computes it (the zip polynomial, reflected,
 * 0xEDB88320), 2-3x faster on x86 CPUs with PCLMULQDQ (one AVX2 core: 5.4
 * against 2.3 GB/s): 64 bytes a round folded into four 128-bit lanes by
 * carry-less products, the lanes folded into one, and that lane's
 * remainder, with the bytes left over, taken by zlib. The method and its
 * folding constants (for 512- and 128-bit distances) are those of Intel's
 * "Fast CRC Computation for Generic Polynomials Using PCLMULQDQ
 * Instruction" (Gopal et al., 2009), as the Linux kernel's
 * crc32-pclmul_asm.S uses them; test_model_load checks the result against
 * zlib. `crc` and the result as zlib's: the running CRC, inverted before
 * and after. */
#if defined(__x86_64__)
#include <immintrin.h>
#define FN_FOLD(x, k, d) \
    _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x00), _mm_clmulepi64_si128(x, k, 0x11)), d)
__attribute__((target("pclmul,sse2"))) static uint32_t crc_folded(uint32_t crc, const uint8_t *p, size_t n) {
    const __m128i k512 = _mm_set_epi64x(0x1c6e41596LL, 0x154442bd4LL), k128 = _mm_set_epi64x(0x0ccaa009eLL, 0x1751997d0LL);
    __m128i x0 = _mm_loadu_si128((const __m128i *)p), x1 = _mm_loadu_si128((const __m128i *)(p + 16)),
            x2 = _mm_loadu_si128((const __m128i *)(p + 32)), x3 = _mm_loadu_si128((const __m128i *)(p + 48));
    x0 = _mm_xor_si128(x0, _mm_cvtsi32_si128((int)~crc)); /* the running CRC enters with the first bytes */
    for (p += 64, n -= 64; n >= 64; p += 64, n -= 64) {
        x0 = FN_FOLD(x0, k512, _mm_loadu_si128((const __m128i *)p));
        x1 = FN_FOLD(x1, k512, _mm_loadu_si128((const __m128i *)(p + 16)));
        x2 = FN_FOLD(x2, k512, _mm_loadu_si128((const __m128i *)(p + 32)));
        x3 = FN_FOLD(x3, k512, _mm_loadu_si128((const __m128i *)(p + 48)));
    }
    x0 = FN_FOLD(x0, k128, x1);
    x0 = FN_FOLD(x0, k128, x2);
    x0 = FN_FOLD(x0, k128, x3);
    for (; n >= 16; p += 16, n -= 16) x0 = FN_FOLD(x0, k128, _mm_loadu_si128((const __m128i *)p));
    uint8_t lane[16];
    _mm_storeu_si128((__m128i *)lane, x0);
    uint32_t rem = ~(uint32_t)crc32(0xffffffffUL, lane, 16); /* the lane's remainder: no inversions */
    return (uint32_t)crc32(~rem, p, (uInt)n);
}
#endif

uint32_t fusenet__crc32(uint32_t crc, const uint8_t *p, size_t n) {
#if defined(__x86_64__)
    if (n >= 64 && __builtin_cpu_supports("pclmul")) return crc_folded(crc, p, n);
#endif
    for (; n > 0x40000000u; p += 0x40000000u, n -= 0x40000000u) crc = (uint32_t)crc32(crc, p, 0x40000000u);
    return (uint32_t)crc32(crc, p, (uInt)n);
}

/* The CRC-32 of bytes [offset, offset + length) of fd: pieces of 256 KiB read
 * and summed on the caller's OpenMP threads, joined with crc32_combine; -1
 * on a failed read or no memory. */
static int file_crc(int fd, uint64_t offset, uint64_t length, uint32_t *crc) {
    const uint64_t piece = (uint64_t)256 << 10;
    uint64_t pieces = (length + piece - 1) / piece;
    uLong *part = fusenet__malloc((size_t)(pieces ? pieces : 1) * sizeof *part);
    if (!part) return -1;
    zbytes z = {fd, NULL, offset + length};
    int failed = 0;
#pragma omp parallel reduction(| : failed)
    {
        uint8_t *buf = fusenet__malloc((size_t)piece);
        failed |= !buf;
#pragma omp for schedule(static)
        for (int64_t i = 0; i < (int64_t)pieces; i++) {
            uint64_t at = offset + (uint64_t)i * piece, n = offset + length - at < piece ? offset + length - at : piece;
            if (buf && zget(&z, at, buf, (size_t)n) == 0) part[i] = fusenet__crc32(0, buf, (size_t)n);
            else failed = 1;
        }
        fusenet__free(buf);
    }
    uLong c = crc32(0L, Z_NULL, 0);
    for (uint64_t i = 0; i < pieces && !failed; i++)
        c = crc32_combine(c, part[i], (z_off_t)(i + 1 < pieces ? piece : length - i * piece));
    fusenet__free(part);
    *crc = (uint32_t)c;
    return failed ? -1 : 0;
}

fusenet_status fusenet__zip_open_h5(const char *path, fn_hdf **out, fusenet_error *err) {
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fusenet__error(err, FUSENET_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char name[4200];
    snprintf(name, sizeof name, "%.4000s:%s", path, FN_ZIP_WEIGHTS);
    zip_t *za;
    zip_uint64_t index;
    zip_stat_t zs;
    uint64_t archive;
    fusenet_status st = open_checked(fd, path, NULL, 0, FN_ZIP_WEIGHTS, &za, &index, &zs, &archive, err);
    if (st != FUSENET_OK) {
        close(fd);
        return st;
    }
    /* A stored entry is read in place when our reading of the headers finds
     * the entry libzip found (same size and CRC) and its bytes have that CRC;
     * anything else is read through libzip, which reports what is wrong. */
    fn_zip_span sp;
    uint32_t crc;
    if (zs.comp_method == ZIP_CM_STORE && fusenet__zip_locate(fd, NULL, archive, FN_ZIP_WEIGHTS, &sp) == 0 &&
        sp.method == ZIP_CM_STORE &&
        sp.length == zs.size && sp.crc == zs.crc && file_crc(fd, sp.offset, sp.length, &crc) == 0 && crc == zs.crc) {
        zip_discard(za);
        return fusenet__hdf_open_window(name, fd, sp.offset, sp.length, out, err); /* owns fd from here */
    }
    uint8_t *buf;
    size_t n;
    st = read_to_memory(za, index, &zs, path, FN_ZIP_WEIGHTS, &buf, &n, err);
    zip_discard(za);
    close(fd);
    if (st != FUSENET_OK) return st;
    return fusenet__hdf_open_mem(name, buf, n, out, err); /* owns buf from here */
}
