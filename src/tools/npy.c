/* npy.c - reading and writing float32 .npy files (format versions 1.0, 2.0, 3.0).
 *
 * The header is a Python dict literal; it is parsed strictly and without
 * trusting any length in the file: exactly the keys 'descr', 'fortran_order'
 * and 'shape', each once, values of the expected kind, nothing but spaces and a
 * newline after the closing brace. Sizes are overflow-checked and compared
 * with the file size before anything is allocated.
 */
#include "npy.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "file.h"
#include "error.h"

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6
/* numpy itself refuses headers over 10000 bytes by default; allow more, but bounded. */
#define NPY_MAX_HEADER 65536

typedef struct npy_header {
    size_t data_offset; /* bytes before the data */
    int rank;
    int64_t dims[FN_NPY_MAX_RANK];
    size_t count; /* elements */
    size_t bytes; /* data bytes */
} npy_header;

static int host_is_little_endian(void) {
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

static void swap4(unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++, p += 4) {
        unsigned char t = p[0];
        p[0] = p[3];
        p[3] = t;
        t = p[1];
        p[1] = p[2];
        p[2] = t;
    }
}

/* ---- header parsing ------------------------------------------------------ */

typedef struct cursor {
    const char *p, *end;
} cursor;

static void skip_ws(cursor *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static int eat(cursor *c, char ch) {
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

/* A quoted Python string without escapes, into out (NUL-terminated). */
static int parse_string(cursor *c, char *out, size_t size) {
    skip_ws(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"')) return 0;
    char q = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != q) {
        if (*c->p == '\\' || *c->p == '\n' || n + 1 >= size) return 0;
        out[n++] = *c->p++;
    }
    if (c->p >= c->end) return 0;
    c->p++;
    out[n] = '\0';
    return 1;
}

static int parse_word(cursor *c, const char *word) {
    skip_ws(c);
    size_t n = strlen(word);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0) return 0;
    const char *after = c->p + n;
    if (after < c->end && ((*after >= 'a' && *after <= 'z') || (*after >= 'A' && *after <= 'Z') ||
                           (*after >= '0' && *after <= '9') || *after == '_'))
        return 0;
    c->p = after;
    return 1;
}

/* A non-negative decimal integer (optional Python 2 'L' suffix); -1 malformed, -2 too big. */
static int parse_dim(cursor *c, int64_t *out) {
    skip_ws(c);
    if (c->p >= c->end || *c->p < '0' || *c->p > '9') return -1;
    int64_t v = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        int d = *c->p++ - '0';
        if (v > (INT64_MAX - d) / 10) return -2;
        v = v * 10 + d;
    }
    if (c->p < c->end && *c->p == 'L') c->p++;
    *out = v;
    return 0;
}

/* Makes a printable copy of at most 40 characters of s for messages. */
static void printable(char *out, size_t size, const char *s) {
    size_t n = 0;
    for (; *s && n + 1 < size && n < 40; s++) out[n++] = (*s >= 32 && *s < 127) ? *s : '?';
    out[n] = '\0';
}

static fusenet_status parse_dict(const char *h, size_t len, const char *name, npy_header *hd,
                                 fusenet_error *err) {
    cursor c = {h, h + len};
    int have_descr = 0, have_fortran = 0, have_shape = 0;
    char descr[64] = "";
    int fortran = 0;
    if (!eat(&c, '{')) return fusenet__error(err, FUSENET_ERR_FORMAT, "%s: .npy header is not a dict", name);
    for (;;) {
        if (eat(&c, '}')) break;
        char key[32];
        if (!parse_string(&c, key, sizeof key))
            return fusenet__error(err, FUSENET_ERR_FORMAT, "%s: .npy header has a malformed key", name);
        if (!eat(&c, ':'))
            return fusenet__error(err, FUSENET_ERR_FORMAT, "%s: .npy header lacks ':' after '%s'", name, key);
        if (strcmp(key, "descr") == 0) {
            if (have_descr++)
                return fusenet__error(err, FUSENET_ERR_FORMAT, "%s: .npy header repeats 'descr'", name);
            skip_ws(&c);
            if (c.p < c.end && *c.p == '[')
                return fusenet__error(err, FUSENET_ERR_FORMAT,
                                "%s: .npy structured dtype is not supported (only '<f4' float32)",
                                name);
            if (!parse_string(&c, descr, sizeof descr))
                return fusenet__error(err, FUSENET_ERR_FORMAT, "%s: .npy header has a malformed 'descr'",
                                name);
        } else if (strcmp(key, "fortran_order") == 0) {
            if (have_fortran++)
                return fusenet__error(err, FUSENET_ERR_FORMAT, "%s: .npy header repeats 'fortran_order'",
                                name);
            if (parse_word(&c, "False")) fortran = 0;
            else if (parse_word(&c, "True")) fortran = 1;
            else
                return fusenet__error(err, FUSENET_ERR_FORMAT,
                                "%s: .npy 'fortran_order' is neither True nor False", name);
        } else if (strcmp(key, "shape") == 0) {
            if (have_shape++)
                return fusenet__error(err, FUSENET_ERR_FORMAT, "%s: .npy header repeats 'shape'", name);
            if (!eat(&c, '('))
                return fusenet__error(err, FUSENET_ERR_FORMAT, "%s: .npy 'shape' is not a tuple", name);
            int rank = 0, comma_after_last = 0;
            for (;;) {
                if (eat(&c, ')')) break;
                if (rank > 0 && !comma_after_last)
                    return fusenet__error(err, FUSENET_ERR_FORMAT, "%s: .npy 'shape' is malformed", name);
                int64_t d;
                skip_ws(&c);
                if (c.p < c.end && *c.p == '-')
                    return fusenet__error(err, FUSENET_ERR_FORMAT, "%s: .npy 'shape' has a negative dim",
                                    name);
                int r = parse_dim(&c, &d);
                if (r == -2)
                    return fusenet__error(err, FUSENET_ERR_FORMAT, "%s: .npy 'shape' dim overflows", name);
                if (r < 0)
                    return fusenet__error(err, FUSENET_ERR_FORMAT, "%s: .npy 'shape' is malformed", name);
                if (rank == FN_NPY_MAX_RANK)
                    return fusenet__error(err, FUSENET_ERR_FORMAT, "%s: .npy rank above the maximum of %d",
                                    name, FN_NPY_MAX_RANK);
                hd->dims[rank++] = d;
                comma_after_last = eat(&c, ',');
            }
            /* (5) is not a tuple in Python: a 1-element shape needs its comma */
            if (rank == 1 && !comma_after_last)
                return fusenet__error(err, FUSENET_ERR_FORMAT, "%s: .npy 'shape' is not a tuple", name);
            hd->rank = rank;
        } else {
            char shown[48];
            printable(shown, sizeof shown, key);
            return fusenet__error(err, FUSENET_ERR_FORMAT, "%s: .npy header has an unexpected key '%s'",
                            name, shown);
        }
        if (eat(&c, ',')) continue;
        if (eat(&c, '}')) break;
        return fusenet__error(err, FUSENET_ERR_FORMAT, "%s: .npy header dict is malformed", name);
    }
    skip_ws(&c);
    if (c.p != c.end)
        return fusenet__error(err, FUSENET_ERR_FORMAT, "%s: .npy header has data after the dict", name);
    if (!have_descr || !have_fortran || !have_shape)
        return fusenet__error(err, FUSENET_ERR_FORMAT, "%s: .npy header lacks '%s'", name,
                        !have_descr ? "descr" : !have_fortran ? "fortran_order" : "shape");
    if (strcmp(descr, "<f4") != 0 && strcmp(descr, "|f4") != 0) {
        char shown[48];
        printable(shown, sizeof shown, descr);
        if (strcmp(descr, ">f4") == 0)
            return fusenet__error(err, FUSENET_ERR_FORMAT,
                            "%s: .npy dtype '>f4' is big-endian (only '<f4' float32 is supported)",
                            name);
        return fusenet__error(err, FUSENET_ERR_FORMAT,
                        "%s: .npy dtype '%s' is not supported (only '<f4' float32)", name, shown);
    }
    if (fortran)
        return fusenet__error(err, FUSENET_ERR_FORMAT,
                        "%s: .npy fortran_order True is not supported (C order only)", name);
    size_t count = 1;
    for (int i = 0; i < hd->rank; i++) {
        if ((uint64_t)hd->dims[i] > SIZE_MAX || !fusenet__mul_size(count, (size_t)hd->dims[i], &count))
            return fusenet__error(err, FUSENET_ERR_FORMAT, "%s: .npy shape overflows the address space",
                            name);
    }
    if (!fusenet__mul_size(count, 4, &hd->bytes))
        return fusenet__error(err, FUSENET_ERR_FORMAT, "%s: .npy shape overflows the address space", name);
    hd->count = count;
    return FUSENET_OK;
}

/* Parses the prefix (magic, version, header length) from the first `avail`
 * bytes; sets *header_len and *header_start. */
static fusenet_status parse_prefix(const unsigned char *b, size_t avail, size_t file_size,
                                   const char *name, size_t *header_start, size_t *header_len,
                                   fusenet_error *err) {
    if (avail < 10 || memcmp(b, NPY_MAGIC, NPY_MAGIC_LEN) != 0)
        return fusenet__error(err, FUSENET_ERR_FORMAT, "%s: not a .npy file (bad magic)", name);
    unsigned major = b[6], minor = b[7];
    size_t start, len;
    if (major == 1) {
        start = 10;
        len = (size_t)b[8] | (size_t)b[9] << 8;
    } else if (major == 2 || major == 3) {
        if (avail < 12)
            return fusenet__error(err, FUSENET_ERR_FORMAT, "%s: .npy file truncated in its header", name);
        start = 12;
        len = (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24;
    } else {
        return fusenet__error(err, FUSENET_ERR_FORMAT, "%s: .npy format version %u.%u is not supported",
                        name, major, minor);
    }
    if (minor != 0)
        return fusenet__error(err, FUSENET_ERR_FORMAT, "%s: .npy format version %u.%u is not supported",
                        name, major, minor);
    if (len > NPY_MAX_HEADER)
        return fusenet__error(err, FUSENET_ERR_FORMAT, "%s: .npy header length %zu is over the limit of %d",
                        name, len, NPY_MAX_HEADER);
    if (len > file_size - start)
        return fusenet__error(err, FUSENET_ERR_FORMAT,
                        "%s: .npy header length %zu runs past the end of the file (%zu bytes)", name,
                        len, file_size);
    *header_start = start;
    *header_len = len;
    return FUSENET_OK;
}

static fusenet_status parse_header(const unsigned char *h, size_t len, const char *name,
                                   npy_header *hd, fusenet_error *err) {
    for (size_t i = 0; i < len; i++)
        if (h[i] == 0 || h[i] >= 0x80)
            return fusenet__error(err, FUSENET_ERR_FORMAT, "%s: .npy header has a non-ASCII byte", name);
    return parse_dict((const char *)h, len, name, hd, err);
}

static fusenet_status check_data_size(const npy_header *hd, size_t avail, size_t max_bytes,
                                      const char *name, fusenet_error *err) {
    if (max_bytes > 0 && hd->bytes > max_bytes)
        return fusenet__error(err, FUSENET_ERR_NOMEM, "%s: .npy data of %zu bytes is over the limit of %zu",
                        name, hd->bytes, max_bytes);
    if (avail < hd->bytes)
        return fusenet__error(err, FUSENET_ERR_FORMAT,
                        "%s: .npy data truncated: shape needs %zu bytes, file has %zu", name,
                        hd->bytes, avail);
    if (avail > hd->bytes)
        return fusenet__error(err, FUSENET_ERR_FORMAT,
                        "%s: .npy file has %zu trailing bytes after the data of its shape", name,
                        avail - hd->bytes);
    return FUSENET_OK;
}

static void fill_out(fn_npy *out, const npy_header *hd, float *data) {
    memset(out, 0, sizeof *out);
    out->rank = hd->rank;
    for (int i = 0; i < hd->rank; i++) out->dims[i] = hd->dims[i];
    out->data = data;
}

fusenet_status fusenet__npy_parse(const unsigned char *buf, size_t size, const char *name, size_t max_bytes,
                            fn_npy *out, fusenet_error *err) {
    if (!out) return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "npy out is NULL");
    memset(out, 0, sizeof *out);
    if (!buf && size > 0) return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "npy buf is NULL");
    if (!name) name = "<memory>";
    size_t start = 0, len = 0;
    fusenet_status st = parse_prefix(buf, size, size, name, &start, &len, err);
    if (st != FUSENET_OK) return st;
    npy_header hd;
    memset(&hd, 0, sizeof hd);
    st = parse_header(buf + start, len, name, &hd, err);
    if (st != FUSENET_OK) return st;
    hd.data_offset = start + len;
    st = check_data_size(&hd, size - hd.data_offset, max_bytes, name, err);
    if (st != FUSENET_OK) return st;
    float *data = fusenet__aligned_alloc(hd.bytes);
    if (!data)
        return fusenet__error(err, FUSENET_ERR_NOMEM, "%s: out of memory for %zu bytes of .npy data", name,
                        hd.bytes);
    if (hd.bytes) memcpy(data, buf + hd.data_offset, hd.bytes);
    if (!host_is_little_endian()) swap4((unsigned char *)data, hd.count);
    fill_out(out, &hd, data);
    return fusenet__ok(err);
}

/* Opens path and reads its header (up to the data). On success *fd is open at
 * the first data byte and the data size matches the shape exactly. */
static fusenet_status open_header(const char *path, size_t max_bytes, int *fd_out, npy_header *hd,
                                  fusenet_error *err) {
    *fd_out = -1;
    int fd;
    do fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not block us */
    while (fd < 0 && errno == EINTR);
    if (fd < 0) return fusenet__error(err, FUSENET_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    fusenet_status st;
    unsigned char *header = NULL;
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        st = fusenet__error(err, FUSENET_ERR_IO, "cannot stat %s: %s", path, strerror(errno));
        goto done;
    }
    if (S_ISDIR(sb.st_mode)) {
        st = fusenet__error(err, FUSENET_ERR_IO, "cannot read %s: %s", path, strerror(EISDIR));
        goto done;
    }
    if (!S_ISREG(sb.st_mode) || sb.st_size < 0) {
        st = fusenet__error(err, FUSENET_ERR_IO, "cannot read %s: not a regular file", path);
        goto done;
    }
    if ((uint64_t)sb.st_size > SIZE_MAX) {
        st = fusenet__error(err, FUSENET_ERR_NOMEM, "%s: file too large for this address space", path);
        goto done;
    }
    size_t size = (size_t)sb.st_size;
    unsigned char prefix[12];
    ssize_t r = fusenet__read_full(fd, prefix, size < sizeof prefix ? size : sizeof prefix);
    if (r < 0) {
        st = fusenet__error(err, FUSENET_ERR_IO, "cannot read %s: %s", path, strerror(errno));
        goto done;
    }
    size_t start = 0, len = 0;
    st = parse_prefix(prefix, (size_t)r, size, path, &start, &len, err);
    if (st != FUSENET_OK) goto done;
    header = fusenet__malloc(len);
    if (!header) {
        st = fusenet__error(err, FUSENET_ERR_NOMEM, "%s: out of memory for the .npy header", path);
        goto done;
    }
    /* the prefix read may have taken up to 2 bytes of a version 1.0 header */
    size_t have = (size_t)r - start < len ? (size_t)r - start : len;
    if ((size_t)r > start) memcpy(header, prefix + start, have);
    else have = 0;
    r = fusenet__read_full(fd, header + have, len - have);
    if (r < 0 || (size_t)r != len - have) {
        st = fusenet__error(err, FUSENET_ERR_IO, "cannot read %s: %s", path,
                      r < 0 ? strerror(errno) : "file shrank while reading");
        goto done;
    }
    memset(hd, 0, sizeof *hd);
    st = parse_header(header, len, path, hd, err);
    if (st != FUSENET_OK) goto done;
    hd->data_offset = start + len;
    /* A header shorter than 2 bytes cannot parse, so the 12-byte prefix read
     * never reached into the data. */
    st = check_data_size(hd, size - hd->data_offset, max_bytes, path, err);
done:
    fusenet__free(header);
    if (st == FUSENET_OK) *fd_out = fd;
    else close(fd);
    return st;
}

fusenet_status fusenet__npy_read(const char *path, size_t max_bytes, fn_npy *out, fusenet_error *err) {
    if (!out) return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "npy out is NULL");
    memset(out, 0, sizeof *out);
    if (!path) return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "npy path is NULL");
    int fd;
    npy_header hd;
    fusenet_status st = open_header(path, max_bytes, &fd, &hd, err);
    if (st != FUSENET_OK) return st;
    float *data = fusenet__aligned_alloc(hd.bytes);
    if (!data) {
        st = fusenet__error(err, FUSENET_ERR_NOMEM, "%s: out of memory for %zu bytes of .npy data", path,
                      hd.bytes);
        goto done;
    }
    ssize_t r = fusenet__read_full(fd, data, hd.bytes);
    if (r < 0 || (size_t)r != hd.bytes) {
        st = fusenet__error(err, FUSENET_ERR_IO, "cannot read %s: %s", path,
                      r < 0 ? strerror(errno) : "file shrank while reading");
        goto done;
    }
    if (!host_is_little_endian()) swap4((unsigned char *)data, hd.count);
    fill_out(out, &hd, data);
    data = NULL;
    st = fusenet__ok(err);
done:
    close(fd);
    fusenet__free(data);
    return st;
}

fusenet_status fusenet__npy_open(const char *path, fn_npy *shape, int *fd, fusenet_error *err) {
    if (!shape || !fd || !path) return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "npy path, shape or fd is NULL");
    memset(shape, 0, sizeof *shape);
    npy_header hd;
    fusenet_status st = open_header(path, 0, fd, &hd, err);
    if (st != FUSENET_OK) return st;
    fill_out(shape, &hd, NULL);
    return fusenet__ok(err);
}

fusenet_status fusenet__npy_alloc(int rank, const int64_t *dims, fn_npy *out, fusenet_error *err) {
    memset(out, 0, sizeof *out);
    if (rank < 0 || rank > FN_NPY_MAX_RANK)
        return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "fusenet__npy_alloc: rank %d", rank);
    size_t n = 1, bytes;
    for (int d = 0; d < rank; d++)
        if (dims[d] < 0 || !fusenet__mul_size(n, (size_t)dims[d], &n))
            return fusenet__error(err, FUSENET_ERR_NOMEM, "an array of rank %d is too large", rank);
    if (!fusenet__mul_size(n, sizeof(float), &bytes))
        return fusenet__error(err, FUSENET_ERR_NOMEM, "an array of rank %d is too large", rank);
    out->data = fusenet__malloc(bytes ? bytes : 1);
    if (!out->data) return fusenet__error(err, FUSENET_ERR_NOMEM, "out of memory for %zu bytes", bytes);
    out->rank = rank;
    memcpy(out->dims, dims, (size_t)rank * sizeof *dims);
    return fusenet__ok(err);
}

void fusenet__npy_free(fn_npy *a) {
    if (!a) return;
    fusenet__free(a->data);
    a->data = NULL;
    a->rank = 0;
}

/* ---- writing ------------------------------------------------------------- */


size_t fusenet__npy_header(int rank, const int64_t *dims, unsigned char *header) {
    /* magic, version 1.0, uint16 length, dict padded with spaces and ended by
     * '\n' so that the data starts at a multiple of 64 */
    char dict[512];
    int n = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    for (int i = 0; i < rank; i++)
        n += snprintf(dict + n, sizeof dict - (size_t)n, "%s%lld", i ? ", " : "", (long long)dims[i]);
    n += snprintf(dict + n, sizeof dict - (size_t)n, "%s), }", rank == 1 ? "," : "");
    size_t total = 10 + (size_t)n + 1;
    size_t padded = (total + 63) / 64 * 64;
    memcpy(header, NPY_MAGIC, NPY_MAGIC_LEN);
    header[6] = 1;
    header[7] = 0;
    size_t hlen = padded - 10;
    header[8] = (unsigned char)(hlen & 0xFF);
    header[9] = (unsigned char)(hlen >> 8);
    memcpy(header + 10, dict, (size_t)n);
    memset(header + 10 + n, ' ', padded - 10 - (size_t)n - 1);
    header[padded - 1] = '\n';
    return padded;
}

fusenet_status fusenet__npy_write(const char *path, int rank, const int64_t *dims, const float *data,
                            fusenet_error *err) {
    if (!path || !*path) return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "npy path is NULL or empty");
    if (rank < 0 || rank > FN_NPY_MAX_RANK)
        return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "npy rank %d out of range 0..%d", rank,
                        FN_NPY_MAX_RANK);
    if (rank > 0 && !dims) return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "npy dims is NULL");
    size_t count = 1;
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 0)
            return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "npy dims[%d] = %lld is negative", i,
                            (long long)dims[i]);
        if ((uint64_t)dims[i] > SIZE_MAX || !fusenet__mul_size(count, (size_t)dims[i], &count))
            return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "npy shape overflows the address space");
    }
    size_t bytes;
    if (!fusenet__mul_size(count, 4, &bytes))
        return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "npy shape overflows the address space");
    if (!data && count > 0) return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "npy data is NULL");

    unsigned char header[FN_NPY_HEADER_MAX];
    size_t padded = fusenet__npy_header(rank, dims, header);

    char *tmp;
    int fd = fusenet__temp_open(path, &tmp, err);
    if (fd < 0) return err ? err->status : FUSENET_ERR_IO;
    int ok = fusenet__write_full(fd, header, padded);
    if (ok && bytes) {
        if (host_is_little_endian()) {
            ok = fusenet__write_full(fd, data, bytes);
        } else {
            unsigned char chunk[4096];
            for (size_t i = 0; ok && i < count; i += sizeof chunk / 4) {
                size_t k = count - i < sizeof chunk / 4 ? count - i : sizeof chunk / 4;
                memcpy(chunk, data + i, k * 4);
                swap4(chunk, k);
                ok = fusenet__write_full(fd, chunk, k * 4);
            }
        }
    }
    fusenet_status st = fusenet__temp_close(fd, tmp, path, ok, errno, err);
    return st ? st : fusenet__ok(err);
}
