/* keras_zip.c - the weights entry of a .keras archive, read with libzip into
 * memory (see keras_zip.h). */
#include "keras_zip.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

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
                                  uint64_t archive, zip_uint64_t *size, fusenet_error *err) {
    zip_stat_t zs;
    zip_stat_init(&zs);
    if (zip_stat_index(za, index, 0, &zs) != 0)
        return zfail(err, FUSENET_ERR_FORMAT, name, entry, zip_strerror(za));
    const zip_uint64_t need = ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE | ZIP_STAT_COMP_METHOD | ZIP_STAT_ENCRYPTION_METHOD;
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
    *size = zs.size;
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

fusenet_status fusenet__zip_read(const char *path, const char *name, const uint8_t *data, size_t size,
                                 const char *entry, uint8_t **out, size_t *n, fusenet_error *err) {
    *out = NULL;
    *n = 0;
    if (!name) name = path;
    zip_error_t ze;
    zip_error_init(&ze);
    uint64_t archive = size;
    zip_source_t *src;
    if (path) {
        struct stat sb;
        if (stat(path, &sb) != 0) return fusenet__error(err, FUSENET_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        archive = (uint64_t)sb.st_size;
        src = zip_source_file_create(path, 0, -1, &ze);
    } else {
        src = zip_source_buffer_create(data, size, 0, &ze);
    }
    if (!src) {
        fusenet_status st = zfail(err, FUSENET_ERR_IO, name, "cannot open the zip archive", zip_error_strerror(&ze));
        zip_error_fini(&ze);
        return st;
    }
    zip_t *za = zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &ze);
    if (!za) {
        zip_source_free(src);
        fusenet_status st = zfail(err, FUSENET_ERR_FORMAT, name, "not a readable zip archive", zip_error_strerror(&ze));
        zip_error_fini(&ze);
        return st;
    }
    zip_error_fini(&ze);
    zip_uint64_t index = 0, bytes = 0;
    fusenet_status st = find_entry(za, name, entry, &index, err);
    if (st == FUSENET_OK) st = check_entry(za, index, name, entry, archive, &bytes, err);
    uint8_t *buf = NULL;
    if (st == FUSENET_OK && !(buf = fusenet__malloc(bytes ? (size_t)bytes : 1)))
        st = fusenet__error(err, FUSENET_ERR_NOMEM, "%s: out of memory reading %s (%llu bytes)", name, entry,
                            (unsigned long long)bytes);
    if (st == FUSENET_OK) st = read_entry(za, index, name, entry, buf, bytes, err);
    zip_discard(za);
    if (st != FUSENET_OK) {
        fusenet__free(buf);
        return st;
    }
    *out = buf;
    *n = (size_t)bytes;
    return fusenet__ok(err);
}

fusenet_status fusenet__zip_open_h5(const char *path, fn_hdf **out, fusenet_error *err) {
    uint8_t *buf;
    size_t n;
    fusenet_status st = fusenet__zip_read(path, NULL, NULL, 0, FN_ZIP_WEIGHTS, &buf, &n, err);
    if (st != FUSENET_OK) return st;
    char name[4200];
    snprintf(name, sizeof name, "%.4000s:%s", path, FN_ZIP_WEIGHTS);
    return fusenet__hdf_open_mem(name, buf, n, out, err); /* owns buf from here */
}
