/* shard.c - sharded embedding runs: ranges, shard files, done markers, merge (see shard.h). */
#include "shard.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "error.h"
#include "file.h"
#include "json.h"
#include "npy.h"

#define DONE_MAX_BYTES ((size_t)64 << 20)
#define CHUNK (1 << 20)

/* ---- names and ranges ---- */

static const char *const shard_formats[] = {"emb_%05d.npy", "names_%05d.txt", "done_%05d.json"};

int shard_parse(const char *text, int *k, int *n) {
    char *end;
    errno = 0;
    long a = strtol(text, &end, 10);
    if (errno || end == text || *end != '/' || text[0] < '0' || text[0] > '9') return 0;
    const char *second = end + 1;
    long b = strtol(second, &end, 10);
    if (errno || end == second || *end || second[0] < '0' || second[0] > '9') return 0;
    if (b < 1 || b > SHARD_MAX || a < 0 || a >= b) return 0;
    *k = (int)a;
    *n = (int)b;
    return 1;
}

/* floor(m * k / n) without overflow: m = q n + r. */
static size_t scaled(size_t m, int k, int n) { return m / (size_t)n * (size_t)k + m % (size_t)n * (size_t)k / (size_t)n; }

void shard_range(size_t m, int k, int n, size_t *first, size_t *end) {
    *first = scaled(m, k, n);
    *end = scaled(m, k + 1, n);
}

int shard_path(char *buf, size_t size, const char *dir, shard_file which, int k) {
    char name[32];
    snprintf(name, sizeof name, shard_formats[which], k);
    size_t len = strlen(dir);
    int slash = len > 0 && dir[len - 1] == '/';
    int r = snprintf(buf, size, "%s%s%s", dir, slash ? "" : "/", name);
    return r > 0 && (size_t)r < size;
}

/* Which shard file a directory entry name is: its kind and K, or -1. */
static int shard_entry(const char *name, shard_file *which) {
    for (int f = 0; f < 3; f++) {
        size_t prefix = strcspn(shard_formats[f], "%");
        const char *ext = shard_formats[f] + prefix + 4; /* after "%05d" */
        if (strncmp(name, shard_formats[f], prefix) != 0) continue;
        const char *d = name + prefix;
        int k = 0, i = 0;
        for (; i < 5 && d[i] >= '0' && d[i] <= '9'; i++) k = k * 10 + (d[i] - '0');
        if (i == 5 && strcmp(d + 5, ext) == 0) {
            *which = (shard_file)f;
            return k;
        }
    }
    return -1;
}

/* ---- text ---- */

void sb_printf(sbuf *b, const char *fmt, ...) {
    if (b->failed) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->n;
        int r = vsnprintf(b->p ? b->p + b->n : NULL, room, fmt, ap);
        va_end(ap);
        if (r < 0) {
            b->failed = 1;
            return;
        }
        if ((size_t)r < room) {
            b->n += (size_t)r;
            return;
        }
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->n <= (size_t)r) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
}

/* Length of the valid UTF-8 sequence at s (1..4), 0 if none. */
static int utf8_len(const unsigned char *s) {
    unsigned char c = s[0];
    int n = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    for (int i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] >= 0xA0) || (c == 0xF0 && s[1] < 0x90) ||
        (c == 0xF4 && s[1] >= 0x90))
        return 0; /* overlong, surrogate, above U+10FFFF */
    return n;
}

void sb_json_string(sbuf *b, const char *s) {
    sb_printf(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        int n = *p >= 0x80 ? utf8_len(p) : 1;
        if (*p == '"' || *p == '\\') sb_printf(b, "\\%c", *p);
        else if (*p < 0x20 || n == 0) sb_printf(b, "\\u%04x", *p); /* a byte that is not UTF-8: as U+00XX */
        else sb_printf(b, "%.*s", n, (const char *)p);
        p += n ? n : 1;
    }
    sb_printf(b, "\"");
}

void sb_free(sbuf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* ---- files ---- */

static fusenet_status open_regular(const char *path, int *fd, size_t *size, fusenet_error *err) {
    do *fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    while (*fd < 0 && errno == EINTR);
    if (*fd < 0) return fusenet__error(err, FUSENET_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(*fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        int e = errno;
        close(*fd);
        *fd = -1;
        return fusenet__error(err, FUSENET_ERR_IO, "cannot read %s: %s", path,
                              S_ISDIR(sb.st_mode) ? strerror(EISDIR) : e ? strerror(e) : "not a regular file");
    }
    *size = (size_t)sb.st_size;
    return FUSENET_OK;
}

fusenet_status shard_file_crc(const char *path, uint64_t *bytes, uint32_t *crc, fusenet_error *err) {
    int fd;
    size_t size;
    fusenet_status st = open_regular(path, &fd, &size, err);
    if (st) return st;
    unsigned char *buf = malloc(CHUNK);
    if (!buf) {
        close(fd);
        return fusenet__error(err, FUSENET_ERR_NOMEM, "out of memory reading %s", path);
    }
    uLong c = crc32(0, Z_NULL, 0);
    uint64_t total = 0;
    ssize_t r;
    while ((r = fusenet__read_full(fd, buf, CHUNK)) > 0) {
        c = crc32_z(c, buf, (size_t)r);
        total += (uint64_t)r;
    }
    int e = errno;
    free(buf);
    close(fd);
    if (r < 0) return fusenet__error(err, FUSENET_ERR_IO, "cannot read %s: %s", path, strerror(e));
    *bytes = total;
    *crc = (uint32_t)c;
    return FUSENET_OK;
}

uint32_t shard_list_crc(char *const *paths, size_t n) {
    uLong c = crc32(0, Z_NULL, 0);
    for (size_t i = 0; i < n; i++) {
        c = crc32_z(c, (const unsigned char *)paths[i], strlen(paths[i]));
        c = crc32_z(c, (const unsigned char *)"\n", 1);
    }
    return (uint32_t)c;
}

/* Writes text to path whole or not at all. */
static fusenet_status write_text(const char *path, const char *text, size_t n, fusenet_error *err) {
    char *tmp;
    int fd = fusenet__temp_open(path, &tmp, err);
    if (fd < 0) return FUSENET_ERR_IO;
    int ok = fusenet__write_full(fd, text, n);
    return fusenet__temp_close(fd, tmp, path, ok, errno, err);
}

/* ---- writing a shard ---- */

static void header_of(size_t rows, size_t dim, unsigned char *buf, size_t *len) {
    int64_t dims[2] = {(int64_t)rows, (int64_t)dim};
    *len = fusenet__npy_header(2, dims, buf);
}

fusenet_status shard_writer_open(shard_writer *w, const char *dir, int k, size_t dim, fusenet_error *err) {
    memset(w, 0, sizeof *w);
    w->emb_fd = w->names_fd = -1;
    w->dim = dim;
    w->emb_crc = w->names_crc = (uint32_t)crc32(0, Z_NULL, 0);
    if (!shard_path(w->emb, sizeof w->emb, dir, SHARD_EMB, k) ||
        !shard_path(w->names, sizeof w->names, dir, SHARD_NAMES, k) ||
        !shard_path(w->done, sizeof w->done, dir, SHARD_DONE, k))
        return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "--output-dir %s: the path is too long", dir);
    /* The header is written again at the end with the real row count: 128 bytes for any count. */
    unsigned char header[FN_NPY_HEADER_MAX];
    header_of(0, dim, header, &w->header_len);
    w->emb_fd = fusenet__temp_open(w->emb, &w->emb_tmp, err);
    if (w->emb_fd < 0) return FUSENET_ERR_IO;
    if (!fusenet__write_full(w->emb_fd, header, w->header_len)) {
        int e = errno;
        shard_writer_abort(w);
        return fusenet__error(err, FUSENET_ERR_IO, "cannot write %s: %s", w->emb, strerror(e));
    }
    w->names_fd = fusenet__temp_open(w->names, &w->names_tmp, err);
    if (w->names_fd < 0) {
        shard_writer_abort(w);
        return FUSENET_ERR_IO;
    }
    return FUSENET_OK;
}

static int put(shard_writer *w, int fd, uint32_t *crc, const void *data, size_t n) {
    if (w->err_no) return 0;
    if (!fusenet__write_full(fd, data, n)) {
        w->err_no = errno ? errno : EIO;
        return 0;
    }
    *crc = (uint32_t)crc32_z(*crc, data, n);
    return 1;
}

int shard_writer_add(shard_writer *w, const float *rows, size_t cnt, char *const *paths, const size_t *src) {
    /* little-endian hosts only, as the .npy writer's fast path (the CI machines) */
    put(w, w->emb_fd, &w->emb_crc, rows, cnt * w->dim * sizeof *rows);
    for (size_t i = 0; i < cnt; i++) {
        put(w, w->names_fd, &w->names_crc, paths[src[i]], strlen(paths[src[i]]));
        put(w, w->names_fd, &w->names_crc, "\n", 1);
    }
    w->rows += cnt;
    return !w->err_no;
}

void shard_writer_skip(shard_writer *w, const char *path, const char *error) {
    sb_printf(&w->skipped, "%s\n    {\"path\": ", w->n_skipped ? "," : "");
    sb_json_string(&w->skipped, path);
    sb_printf(&w->skipped, ", \"error\": ");
    sb_json_string(&w->skipped, error);
    sb_printf(&w->skipped, "}");
    w->n_skipped++;
}

void shard_writer_abort(shard_writer *w) {
    fusenet_error ignored;
    if (w->emb_fd >= 0) fusenet__temp_close(w->emb_fd, w->emb_tmp, w->emb, 0, 0, &ignored);
    if (w->names_fd >= 0) fusenet__temp_close(w->names_fd, w->names_tmp, w->names, 0, 0, &ignored);
    w->emb_fd = w->names_fd = -1;
    w->emb_tmp = w->names_tmp = NULL;
    sb_free(&w->skipped);
}

fusenet_status shard_writer_finish(shard_writer *w, const char *head, const char *tail, fusenet_error *err) {
    unsigned char header[FN_NPY_HEADER_MAX];
    size_t len;
    header_of(w->rows, w->dim, header, &len);
    if (!w->err_no && (len != w->header_len || pwrite(w->emb_fd, header, len, 0) != (ssize_t)len))
        w->err_no = errno ? errno : EIO;
    if (w->skipped.failed) {
        shard_writer_abort(w);
        return fusenet__error(err, FUSENET_ERR_NOMEM, "out of memory for the list of skipped files of %s", w->done);
    }
    int e = w->err_no;
    fusenet_status st = fusenet__temp_close(w->emb_fd, w->emb_tmp, w->emb, !e, e, err);
    w->emb_fd = -1;
    w->emb_tmp = NULL;
    if (st) {
        shard_writer_abort(w);
        return st;
    }
    st = fusenet__temp_close(w->names_fd, w->names_tmp, w->names, !e, e, err);
    w->names_fd = -1;
    w->names_tmp = NULL;
    if (st) {
        unlink(w->emb);
        sb_free(&w->skipped);
        return st;
    }
    sbuf done = {0};
    sb_printf(&done, "{\n  %s,\n  \"rows\": %zu,\n  \"skipped\": [%s%s],\n", head, w->rows,
              w->skipped.p ? w->skipped.p : "", w->n_skipped ? "\n  " : "");
    sb_printf(&done, "  \"embeddings_crc32\": %lu,\n  \"names_crc32\": %lu,\n  %s\n}\n", (unsigned long)w->emb_crc,
              (unsigned long)w->names_crc, tail);
    sb_free(&w->skipped);
    st = done.failed ? fusenet__error(err, FUSENET_ERR_NOMEM, "out of memory writing %s", w->done)
                     : write_text(w->done, done.p, done.n, err);
    sb_free(&done);
    if (st) { /* no output without its done file */
        unlink(w->emb);
        unlink(w->names);
    }
    return st;
}

/* ---- merge ---- */

typedef struct shard_in {
    uint64_t rows, emb_crc, names_crc;
} shard_in;

/* The whole of a small file, NUL-terminated. */
static fusenet_status read_text(const char *path, size_t max, char **text, size_t *n, fusenet_error *err) {
    int fd;
    size_t size;
    *text = NULL;
    fusenet_status st = open_regular(path, &fd, &size, err);
    if (st) return st;
    if (size > max) {
        close(fd);
        return fusenet__error(err, FUSENET_ERR_FORMAT, "%s: %zu bytes is over the limit of %zu for this file", path,
                              size, max);
    }
    char *buf = malloc(size + 1);
    ssize_t r = buf ? fusenet__read_full(fd, buf, size) : 0;
    int e = errno;
    close(fd);
    if (!buf) return fusenet__error(err, FUSENET_ERR_NOMEM, "out of memory reading %s", path);
    if (r < 0 || (size_t)r != size) {
        free(buf);
        return fusenet__error(err, FUSENET_ERR_IO, "cannot read %s: %s", path,
                              r < 0 ? strerror(e) : "file shrank while reading");
    }
    buf[size] = '\0';
    *text = buf;
    *n = size;
    return FUSENET_OK;
}

static fusenet_status get_uint(const char *path, json_span root, const char *key, uint64_t max, uint64_t *out,
                               fusenet_error *err) {
    json_span v;
    if (!json_member(root, key, &v) || !json_uint(v, out) || *out > max)
        return fusenet__error(err, FUSENET_ERR_FORMAT, "%s: \"%s\" is missing or not an integer in 0..%llu", path,
                              key, (unsigned long long)max);
    return FUSENET_OK;
}

/* The first member of run whose value differs from ref's (or that one lacks), or NULL. */
static const char *run_difference(json_span run, json_span ref, char *key, size_t size) {
    for (int pass = 0; pass < 2; pass++) {
        json_span a = pass ? ref : run, b = pass ? run : ref, k, va, vb;
        size_t pos = 0;
        while (json_next(a, &pos, &k, &va)) {
            snprintf(key, size, "%.*s", (int)k.n, k.p);
            if (!json_member(b, key, &vb) || !json_equal(va, vb)) return key;
        }
    }
    return NULL;
}

typedef struct merge_state {
    const char *dir;
    char path[4096];
    int n;
    char *ref_text; /* shard 0's done file */
    json_span ref_run;
    uint64_t candidates, dim;
    shard_in *in;
} merge_state;

/* Reads and checks done_K; on success fills ms->in[k] (and the reference from shard 0). */
static fusenet_status check_done(merge_state *ms, int k, merge_report *rep, fusenet_error *err) {
    const char *p = ms->path;
    shard_path(ms->path, sizeof ms->path, ms->dir, SHARD_DONE, k);
    struct stat sb;
    if (stat(p, &sb) != 0 && errno == ENOENT)
        return fusenet__error(err, FUSENET_ERR_IO,
                              "shard %d/%d is not done: %s does not exist (run or rerun that shard)", k, ms->n, p);
    char *text;
    size_t n;
    fusenet_status st = read_text(p, DONE_MAX_BYTES, &text, &n, err);
    if (st) return st;
    char why[128], s[64];
    json_span root, run, v;
    uint64_t shard, shards, first, end, rows, skipped = 0;
    if (!json_parse(text, n, &root, why, sizeof why)) {
        st = fusenet__error(err, FUSENET_ERR_FORMAT, "%s: not a done file of fusenet embed --shard: %s", p, why);
        goto out;
    }
    if (!json_member(root, "format", &v) || !json_plain_string(v, s, sizeof s) || strcmp(s, SHARD_DONE_FORMAT)) {
        st = fusenet__error(err, FUSENET_ERR_FORMAT, "%s: \"format\" is not \"%s\"", p, SHARD_DONE_FORMAT);
        goto out;
    }
    if ((st = get_uint(p, root, "shard", SHARD_MAX, &shard, err)) ||
        (st = get_uint(p, root, "shards", SHARD_MAX, &shards, err)) ||
        (st = get_uint(p, root, "first", UINT64_MAX, &first, err)) ||
        (st = get_uint(p, root, "end", UINT64_MAX, &end, err)) ||
        (st = get_uint(p, root, "rows", UINT64_MAX, &rows, err)) ||
        (st = get_uint(p, root, "embeddings_crc32", 0xffffffffu, &ms->in[k].emb_crc, err)) ||
        (st = get_uint(p, root, "names_crc32", 0xffffffffu, &ms->in[k].names_crc, err)))
        goto out;
    if (!json_member(root, "skipped", &v) || v.p[0] != '[') {
        st = fusenet__error(err, FUSENET_ERR_FORMAT, "%s: \"skipped\" is missing or not a list", p);
        goto out;
    }
    for (size_t pos = 0; json_next(v, &pos, NULL, &(json_span){0}); skipped++) {}
    if (!json_member(root, "run", &run) || run.p[0] != '{') {
        st = fusenet__error(err, FUSENET_ERR_FORMAT, "%s: \"run\" is missing or not an object", p);
        goto out;
    }
    if (shard != (uint64_t)k || shards != (uint64_t)ms->n) {
        st = fusenet__error(err, FUSENET_ERR_FORMAT, "%s describes shard %llu/%llu, not shard %d/%d of this run", p,
                            (unsigned long long)shard, (unsigned long long)shards, k, ms->n);
        goto out;
    }
    if (k == 0) {
        if ((st = get_uint(p, run, "candidates", UINT64_MAX, &ms->candidates, err)) ||
            (st = get_uint(p, run, "dim", 1u << 24, &ms->dim, err)))
            goto out;
        if (ms->dim == 0) {
            st = fusenet__error(err, FUSENET_ERR_FORMAT, "%s: \"dim\" is 0", p);
            goto out;
        }
        ms->ref_text = text;
        ms->ref_run = run;
        text = NULL;
    } else {
        char key[64];
        const char *diff = run_difference(run, ms->ref_run, key, sizeof key);
        if (diff) {
            char ref[4096];
            shard_path(ref, sizeof ref, ms->dir, SHARD_DONE, 0);
            st = fusenet__error(err, FUSENET_ERR_FORMAT, "%s is from another run than %s: run.%s differs", p,
                                ref, diff);
            goto out;
        }
    }
    size_t want_first, want_end;
    shard_range((size_t)ms->candidates, k, ms->n, &want_first, &want_end);
    if (first != want_first || end != want_end) {
        st = fusenet__error(err, FUSENET_ERR_FORMAT,
                            "%s covers files [%llu, %llu) but shard %d/%d of %llu files is [%zu, %zu): the shards "
                            "overlap or leave a gap",
                            p, (unsigned long long)first, (unsigned long long)end, k, ms->n,
                            (unsigned long long)ms->candidates, want_first, want_end);
        goto out;
    }
    if (rows > end - first || rows + skipped != end - first) {
        st = fusenet__error(err, FUSENET_ERR_FORMAT, "%s: %llu rows and %llu skipped files do not make its %llu files",
                            p, (unsigned long long)rows, (unsigned long long)skipped,
                            (unsigned long long)(end - first));
        goto out;
    }
    ms->in[k].rows = rows;
    rep->skipped += skipped;
    /* the array: numpy's (rows, dim) float32, exactly its data */
    shard_path(ms->path, sizeof ms->path, ms->dir, SHARD_EMB, k);
    fn_npy shape;
    int fd;
    if ((st = fusenet__npy_open(p, &shape, &fd, err))) goto out;
    close(fd);
    if (shape.rank != 2 || shape.dims[0] != (int64_t)rows || shape.dims[1] != (int64_t)ms->dim) {
        st = fusenet__error(err, FUSENET_ERR_FORMAT, "%s is not a (%llu, %llu) array as its done file says", p,
                            (unsigned long long)rows, (unsigned long long)ms->dim);
        goto out;
    }
out:
    free(text);
    return st;
}

/* Copies the data of an open file to out, with its CRC; counts '\n' if lines. */
static fusenet_status copy_checked(int fd, const char *path, int out, const char *out_path, unsigned char *buf,
                                   uint32_t want_crc, uint64_t want_lines, int lines, fusenet_error *err) {
    uLong crc = crc32(0, Z_NULL, 0);
    uint64_t count = 0;
    ssize_t r;
    int last = '\n';
    while ((r = fusenet__read_full(fd, buf, CHUNK)) > 0) {
        crc = crc32_z(crc, buf, (size_t)r);
        if (lines) {
            for (ssize_t i = 0; i < r; i++) count += buf[i] == '\n';
            last = buf[r - 1];
        }
        if (!fusenet__write_full(out, buf, (size_t)r))
            return fusenet__error(err, FUSENET_ERR_IO, "cannot write %s: %s", out_path, strerror(errno));
    }
    if (r < 0) return fusenet__error(err, FUSENET_ERR_IO, "cannot read %s: %s", path, strerror(errno));
    if (lines && (count != want_lines || last != '\n'))
        return fusenet__error(err, FUSENET_ERR_FORMAT, "%s has %llu lines%s but its done file says %llu rows", path,
                              (unsigned long long)count, last != '\n' ? " and an unfinished one" : "",
                              (unsigned long long)want_lines);
    if ((uint32_t)crc != want_crc)
        return fusenet__error(err, FUSENET_ERR_FORMAT,
                              "%s is not the file its shard wrote: CRC-32 %08lx, its done file says %08lx", path,
                              (unsigned long)crc, (unsigned long)want_crc);
    return FUSENET_OK;
}

/* Refuses an output that would replace a file of the shard directory. */
static fusenet_status check_target(const char *dir, const char *path, const char *option, fusenet_error *err) {
    const char *slash = strrchr(path, '/'), *base = slash ? slash + 1 : path;
    char parent[4096];
    snprintf(parent, sizeof parent, "%.*s", slash ? (int)(slash - path) + 1 : 1, slash ? path : ".");
    struct stat a, b;
    shard_file which;
    if (shard_entry(base, &which) >= 0 && stat(parent, &a) == 0 && stat(dir, &b) == 0 && a.st_dev == b.st_dev &&
        a.st_ino == b.st_ino)
        return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "%s %s would replace a file of the shards in %s", option,
                              path, dir);
    return FUSENET_OK;
}

/* Finds the run's shard count from the lowest-numbered done file and refuses files of other shard counts. */
static fusenet_status find_shards(merge_state *ms, fusenet_error *err) {
    DIR *d = opendir(ms->dir);
    if (!d) return fusenet__error(err, FUSENET_ERR_IO, "cannot read directory %s: %s", ms->dir, strerror(errno));
    int lowest_done = -1, highest = -1;
    char highest_name[300] = "";
    struct dirent *e;
    for (errno = 0; (e = readdir(d)) != NULL; errno = 0) {
        shard_file which;
        int k = shard_entry(e->d_name, &which);
        if (k < 0) continue;
        if (which == SHARD_DONE && (lowest_done < 0 || k < lowest_done)) lowest_done = k;
        if (k > highest) {
            highest = k;
            snprintf(highest_name, sizeof highest_name, "%s", e->d_name);
        }
    }
    int read_err = errno;
    closedir(d);
    if (read_err) return fusenet__error(err, FUSENET_ERR_IO, "cannot read directory %s: %s", ms->dir, strerror(read_err));
    if (lowest_done < 0)
        return fusenet__error(err, FUSENET_ERR_IO,
                              "%s holds no done_KKKKK.json: no shard has finished (fusenet embed --shard K/N "
                              "--output-dir %s)",
                              ms->dir, ms->dir);
    shard_path(ms->path, sizeof ms->path, ms->dir, SHARD_DONE, lowest_done);
    char *text;
    size_t n;
    fusenet_status st = read_text(ms->path, DONE_MAX_BYTES, &text, &n, err);
    if (st) return st;
    json_span root;
    uint64_t shards = 0;
    char why[128];
    if (!json_parse(text, n, &root, why, sizeof why))
        st = fusenet__error(err, FUSENET_ERR_FORMAT, "%s: not a done file of fusenet embed --shard: %s", ms->path, why);
    else if (!(st = get_uint(ms->path, root, "shards", SHARD_MAX, &shards, err)) && shards == 0)
        st = fusenet__error(err, FUSENET_ERR_FORMAT, "%s: \"shards\" is 0", ms->path);
    free(text);
    if (st) return st;
    ms->n = (int)shards;
    if (highest >= ms->n)
        return fusenet__error(err, FUSENET_ERR_FORMAT, "%s/%s is not of a run of %d shards (as %s says): remove "
                              "the files of other runs",
                              ms->dir, highest_name, ms->n, ms->path);
    return FUSENET_OK;
}

fusenet_status shard_merge(const char *dir, const char *output, const char *names, merge_report *rep,
                           fusenet_error *err) {
    memset(rep, 0, sizeof *rep);
    merge_state ms = {.dir = dir};
    fusenet_status st;
    if ((st = check_target(dir, output, "--output", err)) || (st = check_target(dir, names, "--names", err)) ||
        (st = find_shards(&ms, err)))
        return st;
    ms.in = calloc((size_t)ms.n, sizeof *ms.in);
    if (!ms.in) return fusenet__error(err, FUSENET_ERR_NOMEM, "out of memory for %d shards", ms.n);
    uint64_t total = 0;
    for (int k = 0; k < ms.n && !st; k++) {
        st = check_done(&ms, k, rep, err);
        if (!st) total += ms.in[k].rows;
    }
    free(ms.ref_text);
    if (!st && total == 0)
        st = fusenet__error(err, FUSENET_ERR_VALUE, "none of the %llu files of the run in %s could be embedded",
                            (unsigned long long)ms.candidates, dir);
    unsigned char *buf = st ? NULL : malloc(CHUNK);
    if (!st && !buf) st = fusenet__error(err, FUSENET_ERR_NOMEM, "out of memory for the merge");
    char *emb_tmp = NULL, *names_tmp = NULL;
    int out = -1, nout = -1;
    if (!st && (out = fusenet__temp_open(output, &emb_tmp, err)) < 0) st = FUSENET_ERR_IO;
    if (!st && (nout = fusenet__temp_open(names, &names_tmp, err)) < 0) st = FUSENET_ERR_IO;
    if (!st) {
        unsigned char header[FN_NPY_HEADER_MAX];
        size_t len;
        header_of((size_t)total, (size_t)ms.dim, header, &len);
        if (!fusenet__write_full(out, header, len))
            st = fusenet__error(err, FUSENET_ERR_IO, "cannot write %s: %s", output, strerror(errno));
    }
    for (int k = 0; k < ms.n && !st; k++) {
        int fd;
        fn_npy shape;
        size_t size;
        shard_path(ms.path, sizeof ms.path, dir, SHARD_EMB, k);
        if ((st = fusenet__npy_open(ms.path, &shape, &fd, err))) break;
        /* read again: a file replaced since the check must still match its done file */
        if (shape.rank != 2 || shape.dims[0] != (int64_t)ms.in[k].rows || shape.dims[1] != (int64_t)ms.dim)
            st = fusenet__error(err, FUSENET_ERR_FORMAT, "%s changed during the merge", ms.path);
        else
            st = copy_checked(fd, ms.path, out, output, buf, (uint32_t)ms.in[k].emb_crc, 0, 0, err);
        close(fd);
        if (st) break;
        shard_path(ms.path, sizeof ms.path, dir, SHARD_NAMES, k);
        if ((st = open_regular(ms.path, &fd, &size, err))) break;
        st = copy_checked(fd, ms.path, nout, names, buf, (uint32_t)ms.in[k].names_crc, ms.in[k].rows, 1, err);
        close(fd);
    }
    free(buf);
    free(ms.in);
    /* the array renamed into place first, then the names; never the array without its names */
    if (out >= 0) {
        fusenet_status cst = fusenet__temp_close(out, emb_tmp, output, !st, 0, st ? NULL : err);
        if (!st) st = cst;
    }
    if (nout >= 0) {
        fusenet_status cst = fusenet__temp_close(nout, names_tmp, names, !st, 0, st ? NULL : err);
        if (!st && cst) {
            unlink(output);
            st = cst;
        }
    }
    if (!st) {
        rep->shards = ms.n;
        rep->rows = (size_t)total;
        rep->dim = (size_t)ms.dim;
        rep->candidates = (size_t)ms.candidates;
    }
    return st;
}
