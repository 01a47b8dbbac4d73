/* cmd_embed.c - embed (images and directories to L2-normalised rows) and
 * similar (the nearest rows to a query image). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dirent.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "file.h"

/* ---- shared by embed, similar, viz ---- */

/* How a run reports skipped files and its progress. */
typedef struct report {
    int strict;         /* a skipped file fails the run */
    int progress_shown; /* a progress line is on the terminal: clear it before other messages */
} report;

static void clear_progress(report *r) {
    if (r->progress_shown) fputs("\r\033[K", stderr);
    r->progress_shown = 0;
}

/* A skipped input: reported by name on stderr. Returns 1 with --strict (the run fails). */
static int skip(report *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int skip(report *r, const char *fmt, ...) {
    clear_progress(r);
    va_list ap;
    va_start(ap, fmt);
    fputs(r->strict ? "fusenet: " : "fusenet: skipped: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return r->strict;
}

/* ---- embed: collecting the files ---- */

typedef struct dir_id {
    dev_t dev;
    ino_t ino;
} dir_id;

typedef struct file_list {
    char **paths;
    size_t n, cap;
    dir_id *seen; /* directories already walked: symlink loops and repeats */
    size_t n_seen, cap_seen;
    size_t skipped, dirs_skipped; /* image names that could not be read; directories */
} file_list;

static int add_file(file_list *l, const char *path) {
    if (grow((void **)&l->paths, &l->cap, l->n + 1, sizeof *l->paths)) return 1;
    char *copy = malloc(strlen(path) + 1);
    if (!copy) return die("out of memory");
    strcpy(copy, path);
    l->paths[l->n++] = copy;
    return 0;
}

static void free_files(file_list *l) {
    for (size_t i = 0; i < l->n; i++) free(l->paths[i]);
    free(l->paths);
    free(l->seen);
}

static int is_image_name(const char *name) {
    const char *dot = strrchr(name, '.');
    return dot && (strcasecmp(dot, ".jpg") == 0 || strcasecmp(dot, ".jpeg") == 0 || strcasecmp(dot, ".png") == 0);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Walks dir recursively in byte-wise sorted order, depth first, collecting
 * .jpg/.jpeg/.png files (any case). Entries starting with '.' are skipped;
 * symbolic links are followed, but a directory is never walked twice. */
static int walk(report *r, file_list *l, const char *dir, const struct stat *sb) {
    for (size_t i = 0; i < l->n_seen; i++)
        if (l->seen[i].dev == sb->st_dev && l->seen[i].ino == sb->st_ino) return 0;
    if (grow((void **)&l->seen, &l->cap_seen, l->n_seen + 1, sizeof *l->seen)) return 1;
    l->seen[l->n_seen++] = (dir_id){sb->st_dev, sb->st_ino};
    DIR *d = opendir(dir);
    if (!d) {
        l->dirs_skipped++;
        return skip(r, "cannot read directory %s: %s", dir, strerror(errno));
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *e;
    for (errno = 0; (e = readdir(d)) != NULL; errno = 0) {
        if (e->d_name[0] == '.') continue;
        if (grow((void **)&names, &cap, n + 1, sizeof *names) || !(names[n] = malloc(strlen(e->d_name) + 1))) {
            rc = die("out of memory");
            break;
        }
        strcpy(names[n++], e->d_name);
    }
    if (!rc && errno) {
        l->dirs_skipped++;
        rc = skip(r, "cannot read directory %s: %s", dir, strerror(errno));
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, cmp_str);
    size_t dlen = strlen(dir);
    int slash = dlen > 0 && dir[dlen - 1] == '/';
    for (size_t i = 0; i < n && !rc; i++) {
        char *path = malloc(dlen + strlen(names[i]) + 2);
        if (!path) {
            rc = die("out of memory");
            break;
        }
        sprintf(path, "%s%s%s", dir, slash ? "" : "/", names[i]);
        struct stat st;
        if (stat(path, &st) != 0) { /* dangling or looping link, vanished entry */
            if (is_image_name(names[i])) {
                l->skipped++;
                rc = skip(r, "cannot read image %s: %s", path, strerror(errno));
            }
        } else if (S_ISDIR(st.st_mode)) {
            rc = walk(r, l, path, &st);
        } else if (S_ISREG(st.st_mode) && is_image_name(names[i])) {
            rc = add_file(l, path);
        }
        free(path);
    }
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    return rc;
}

/* Files given are taken whatever their name; directories are walked. */
static int collect(const opts *o, report *r, file_list *l) {
    memset(l, 0, sizeof *l);
    for (int i = 0; i < o->n_pos; i++) {
        struct stat st;
        if (stat(o->pos[i], &st) != 0) return die("%s: %s", o->pos[i], strerror(errno));
        int rc = S_ISDIR(st.st_mode) ? walk(r, l, o->pos[i], &st) : add_file(l, o->pos[i]);
        if (rc) return 1;
    }
    return 0;
}

/* ---- embed ---- */

static void show_progress(report *r, size_t done, size_t total, size_t embedded, double elapsed) {
    double rate = elapsed > 0 ? (double)embedded / elapsed : 0.0;
    double left = done > 0 ? elapsed / (double)done * (double)(total - done) : 0.0;
    long l = (long)(left + 0.5);
    fprintf(stderr, "\r\033[Kembedding: %zu/%zu images  %.1f images/s  ", done, total, rate);
    if (l >= 3600) fprintf(stderr, "%ldh%02ldm left", l / 3600, l / 60 % 60);
    else fprintf(stderr, "%ldm%02lds left", l / 60, l % 60);
    fflush(stderr);
    r->progress_shown = 1;
}

/* Writes the names (one path per line, row order) to a temp file beside `path`,
 * left open in *fd for fusenet__temp_close once the array is written. */
static int write_names_temp(const char *path, char *const *files, const size_t *src, size_t n, char **tmp,
                            int *fd) {
    fusenet_error err;
    *fd = fusenet__temp_open(path, tmp, &err);
    if (*fd < 0) return fail(&err);
    int ok = 1;
    for (size_t i = 0; i < n && ok; i++)
        ok = fusenet__write_full(*fd, files[src[i]], strlen(files[src[i]])) && fusenet__write_full(*fd, "\n", 1);
    if (ok) return 0;
    fusenet__temp_close(*fd, *tmp, path, 0, errno, &err);
    *fd = -1;
    *tmp = NULL;
    return fail(&err);
}

int cmd_embed(opts *o) {
    if (!o->n_pos) return die("give the images or directories to embed (see 'fusenet embed --help')");
    shard_job job, *shard = NULL; /* --shard: only its range, into its files */
    if (o->shard || o->output_dir) {
        int done;
        if (!o->shard) return die("--output-dir is where --shard K/N writes; without --shard give --output");
        if (shard_begin(o, &job, &done)) return 1;
        if (done) return 0;
        shard = &job;
    } else {
        if (!o->output) return die("--output EMB.npy is required (or --shard K/N --output-dir DIR)");
        if (check_not_input("--names", o->names, "--output", o->output) || check_output("--output", o->output) ||
            check_output("--names", o->names))
            return 1;
    }
    fusenet_image_params ip = image_params(o);
    if (fused_taps(o)) return 1;
    int b = o->batch;
    if (check_bytes((double)b * ip.height * ip.width * 3 * sizeof(float), (double)MAX_INPUT_BYTES,
                    "--batch %d at --input-size %dx%d: one batch of images", b, ip.height, ip.width))
        return 1;
    const char *outputs[2][2] = {{"--output", o->output}, {"--names", o->names}};
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < o->n_taps; i++)
            if (check_not_input(outputs[k][0], outputs[k][1], o->taps[i].option, o->taps[i].weights)) return 1;
    report rep = {o->strict, 0};
    file_list files;
    int bad = collect(o, &rep, &files);
    for (size_t i = 0; i < files.n && !bad; i++)
        for (int k = 0; k < 2 && !bad; k++) bad = check_not_input(outputs[k][0], outputs[k][1], "image", files.paths[i]);
    if (bad) {
        free_files(&files);
        return 1;
    }
    if (files.n == 0) {
        free_files(&files);
        return die("no .jpg, .jpeg or .png files found in %s%s", o->pos[0], o->n_pos > 1 ? " and the rest" : "");
    }
    /* the same batch for a shard as for the whole run: the same net, the same rows */
    if ((size_t)b > files.n) b = (int)files.n;
    fusenet_error err;
    fusenet_net *net = NULL;
    if (build_fuse(o, b, ip.height, ip.width, &net)) {
        free_files(&files);
        return 1;
    }
    size_t dim = fusenet_embed_dim(net), per = (size_t)ip.height * ip.width * 3;
    if (check_bytes((double)files.n * dim * sizeof(float), (double)MAX_OUTPUT_BYTES,
                    "the embeddings of %zu files (%zu values each)", files.n, dim)) {
        fusenet_net_free(net);
        free_files(&files);
        return 1;
    }
    float *x = malloc((size_t)b * per * sizeof *x), *batch_out = malloc((size_t)b * dim * sizeof *batch_out);
    float *rows = NULL;
    size_t *src = NULL, *slot_src = malloc((size_t)b * sizeof *slot_src), n_rows = 0, cap_rows = 0, cap_src = 0;
    int rc = 0, cnt = 0, tty = isatty(STDERR_FILENO);
    size_t skipped = 0;
    if (!x || !batch_out || !slot_src) rc = die("out of memory for a batch of %d images", b);
    size_t first = 0, end = files.n;
    if (!rc && shard && !(rc = shard_start(o, shard, files.n, dim))) {
        first = shard->first;
        end = shard->end;
    }
    double t0 = seconds_now(), last_shown = t0;
    for (size_t i = first; i < end && !rc; i++) {
        const char *path = files.paths[i];
        const char *why = NULL; /* err.message names the file */
        if (strchr(path, '\n')) why = "a file name with a newline cannot be listed in the names file";
        else if (fusenet_image_load(path, &ip, x + per * (size_t)cnt, &err)) why = err.message;
        if (why) {
            rc = why == err.message ? skip(&rep, "%s", why) : skip(&rep, "%s: %s", path, why);
            if (shard) shard_writer_skip(&shard->w, path, why);
            skipped++;
        } else {
            slot_src[cnt++] = i;
        }
        if (rc || (cnt < b && i + 1 < end) || cnt == 0) continue;
        if (cnt < b) memset(x + per * (size_t)cnt, 0, per * (size_t)(b - cnt) * sizeof *x); /* spare slots */
        fusenet_tensor in = {x, b, ip.height, ip.width, 3};
        fusenet_status st = fusenet_embed(net, &in, o->pool, batch_out, &err);
        int k; /* VALUE names the image by its index in the batch: name its file */
        if (st == FUSENET_ERR_VALUE && sscanf(err.message, "fusenet_embed: image %d", &k) == 1 && k >= 0 && k < cnt) {
            rc = die("%s: %s", files.paths[slot_src[k]], err.message);
            break;
        }
        if (st) {
            rc = fail(&err);
            break;
        }
        if (shard) {
            if (!shard_writer_add(&shard->w, batch_out, (size_t)cnt, files.paths, slot_src)) {
                rc = die("cannot write %s: %s", shard->w.emb, strerror(shard->w.err_no));
                break;
            }
        } else if (grow((void **)&rows, &cap_rows, (n_rows + (size_t)cnt) * dim, sizeof *rows) ||
                   grow((void **)&src, &cap_src, n_rows + (size_t)cnt, sizeof *src)) {
            rc = 1;
            break;
        } else {
            memcpy(rows + n_rows * dim, batch_out, (size_t)cnt * dim * sizeof *rows);
            memcpy(src + n_rows, slot_src, (size_t)cnt * sizeof *src);
        }
        n_rows += (size_t)cnt;
        cnt = 0;
        double now = seconds_now();
        if (tty && (now - last_shown > 0.25 || i + 1 == end)) {
            show_progress(&rep, i + 1 - first, end - first, n_rows, now - t0);
            last_shown = now;
        }
    }
    clear_progress(&rep);
    size_t total = files.n + files.skipped; /* image names found, readable or not */
    skipped += files.skipped;
    if (shard) {
        rc = shard_end(o, shard, files.paths, files.n, rc);
        goto out;
    }
    if (!rc && n_rows == 0) rc = die("none of the %zu files could be embedded", total);
    /* Names to a temp file, then the array (temp + rename), then the names renamed into place. */
    char *tmp = NULL;
    int nfd = -1;
    if (!rc && o->names) rc = write_names_temp(o->names, files.paths, src, n_rows, &tmp, &nfd);
    if (!rc) {
        int64_t dims[2] = {(int64_t)n_rows, (int64_t)dim};
        if (fusenet__npy_write(o->output, 2, dims, rows, &err)) rc = fail(&err);
    }
    if (nfd >= 0) { /* renamed into place only if the array was written */
        int names_failed = fusenet__temp_close(nfd, tmp, o->names, !rc, 0, &err) != FUSENET_OK;
        struct stat sb;
        if (names_failed && !rc) {
            if (lstat(o->output, &sb) == 0 && S_ISREG(sb.st_mode))
                unlink(o->output); /* never leave embeddings without their names (a device stays) */
            rc = fail(&err);
        }
    }
    if (!rc && (skipped || files.dirs_skipped))
        fprintf(stderr, "fusenet: embedded %zu of %zu files (%zu skipped%s)\n", n_rows, total, skipped,
                files.dirs_skipped ? "; some directories could not be read" : "");
    else if (!rc && tty)
        fprintf(stderr, "fusenet: embedded %zu images in %.1f s\n", n_rows, seconds_now() - t0);
out:
    free(x);
    free(batch_out);
    free(rows);
    free(src);
    free(slot_src);
    fusenet_net_free(net);
    free_files(&files);
    return rc;
}

/* ---- similar ---- */

/* Reads a text file into lines (the buffer is modified in place; '\n' ends a line). */
static int read_lines(const char *path, char **buf_out, char ***lines_out, size_t *n_out) {
    *buf_out = NULL;
    *lines_out = NULL;
    *n_out = 0;
    char *buf;
    size_t n;
    if (read_text(path, MAX_TEXT_BYTES, &buf, &n)) return 1; /* regular files only: no FIFO, no /dev/zero */
    size_t count = 0;
    for (size_t i = 0; i < n; i++) count += buf[i] == '\n';
    if (n > 0 && buf[n - 1] != '\n') count++;
    char **lines = malloc((count ? count : 1) * sizeof *lines);
    if (!lines) {
        free(buf);
        return die("out of memory");
    }
    size_t k = 0;
    for (char *p = buf; k < count; k++) {
        lines[k] = p;
        char *nl = strchr(p, '\n');
        if (!nl) break;
        *nl = '\0';
        p = nl + 1;
    }
    *buf_out = buf;
    *lines_out = lines;
    *n_out = count;
    return 0;
}

typedef struct ranked {
    float score;
    size_t row;
} ranked;

/* Best first; equal scores in row order. */
static int cmp_ranked(const void *a, const void *b) {
    const ranked *x = a, *y = b;
    if (x->score != y->score) return x->score < y->score ? 1 : -1;
    return (x->row > y->row) - (x->row < y->row);
}

int cmd_similar(opts *o) {
    fusenet_image_params ip = image_params(o);
    if (fused_taps(o)) return 1;
    fusenet_error err;
    fn_npy emb;
    if (fusenet__npy_read(o->embeddings, MAX_INPUT_BYTES, &emb, &err)) return fail(&err);
    char *buf = NULL, **names = NULL;
    size_t n_names = 0;
    int rc = 0;
    if (emb.rank != 2 || emb.dims[1] < 1)
        rc = die("%s: expected an (N, C) array of embeddings with C > 0 (from 'fusenet embed'), got rank %d%s",
                 o->embeddings, emb.rank, emb.rank == 2 ? " with C = 0" : "");
    else if (read_lines(o->names, &buf, &names, &n_names))
        rc = 1;
    else if ((int64_t)n_names != emb.dims[0])
        rc = die("%s has %lld rows but %s lists %zu names; use the two files of one 'fusenet embed' run",
                 o->embeddings, (long long)emb.dims[0], o->names, n_names);
    for (size_t i = 0, at; !rc && i < n_names; i++) /* a NaN row would rank as a match */
        if (find_non_finite(emb.data + i * (size_t)emb.dims[1], (size_t)emb.dims[1], &at))
            rc = die("%s: row %zu (%s) has a non-finite value (%s at column %zu); embeddings must be finite",
                     o->embeddings, i, names[i], value_name(emb.data[i * (size_t)emb.dims[1] + at]), at);
    fusenet_net *net = NULL;
    if (!rc && build_fuse(o, 1, ip.height, ip.width, &net)) rc = 1;
    size_t dim = rc ? 0 : fusenet_embed_dim(net), n = rc ? 0 : (size_t)emb.dims[0];
    if (!rc && (int64_t)dim != emb.dims[1])
        rc = die("%s has %lld values per row but these taps give %zu; use the taps (--tap or "
                 "--resnet-layer/--vgg-layer) of the 'fusenet embed' run",
                 o->embeddings, (long long)emb.dims[1], dim);
    float *q = NULL;
    ranked *order = NULL;
    if (!rc) {
        q = malloc(dim * sizeof *q);
        order = malloc((n ? n : 1) * sizeof *order);
        if (!q || !order) rc = die("out of memory");
    }
    fusenet_status st = rc ? FUSENET_OK : fusenet_embed_image(net, o->query, &ip, o->pool, q, &err);
    if (st == FUSENET_ERR_VALUE) rc = die("--query %s: %s", o->query, err.message);
    else if (st) rc = fail(&err);
    if (!rc) {
        double qn = 0;
        for (size_t k = 0; k < dim; k++) qn += (double)q[k] * q[k];
        for (size_t i = 0; i < n; i++) {
            const float *r = emb.data + i * dim;
            double dot = 0, rn = 0;
            for (size_t k = 0; k < dim; k++) {
                dot += (double)r[k] * q[k];
                rn += (double)r[k] * r[k];
            }
            order[i] = (ranked){rn > 0 && qn > 0 ? (float)(dot / sqrt(rn * qn)) : 0.0f, i};
        }
        qsort(order, n, sizeof *order, cmp_ranked);
        size_t k = (size_t)o->k < n ? (size_t)o->k : n;
        for (size_t i = 0; i < k; i++) printf("%zu\t%.6f\t%s\n", i + 1, order[i].score, names[order[i].row]);
        if (fflush(stdout) != 0) rc = die("cannot write the results: %s", strerror(errno));
    }
    free(q);
    free(order);
    free(buf);
    free(names);
    fusenet_net_free(net);
    fusenet__npy_free(&emb);
    return rc;
}

int list_images(const char *const *args, int n_args, char ***paths, size_t *n) {
    report r = {1, 0};
    file_list l;
    memset(&l, 0, sizeof l);
    int rc = 0;
    for (int i = 0; i < n_args && !rc; i++) {
        struct stat st;
        if (stat(args[i], &st) != 0) rc = die("%s: %s", args[i], strerror(errno));
        else rc = S_ISDIR(st.st_mode) ? walk(&r, &l, args[i], &st) : add_file(&l, args[i]);
    }
    free(l.seen);
    *paths = l.paths;
    *n = l.n;
    if (rc) {
        for (size_t i = 0; i < l.n; i++) free(l.paths[i]);
        free(l.paths);
        *paths = NULL;
        *n = 0;
    }
    return rc;
}
