/* cmd_shard.c - `embed --shard K/N --output-dir DIR` (the parts around embed's
 * loop: the done check, the shard's range and files, its done file) and `merge`. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "file.h"

int shard_begin(const opts *o, shard_job *job, int *done_already) {
    memset(job, 0, sizeof *job);
    *done_already = 0;
    if (!o->output_dir) return die("--shard K/N needs --output-dir DIR (where the shard's files go)");
    if (o->output || o->names)
        return die("--shard writes DIR/emb_KKKKK.npy and DIR/names_KKKKK.txt itself: give --output-dir, not %s",
                   o->output ? "--output" : "--names");
    if (!shard_parse(o->shard, &job->k, &job->n))
        return die("--shard: '%s' is not K/N with 0 <= K < N <= %d", o->shard, SHARD_MAX);
    struct stat sb;
    if (stat(o->output_dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return die("--output-dir %s: %s", o->output_dir, stat(o->output_dir, &sb) ? "no such directory" : "not a directory");
    char done[4096];
    if (!shard_path(done, sizeof done, o->output_dir, SHARD_DONE, job->k))
        return die("--output-dir %s: the path is too long", o->output_dir);
    if (stat(done, &sb) == 0) {
        fprintf(stderr, "fusenet: shard %d/%d is done already (%s); nothing to do\n", job->k, job->n, done);
        *done_already = 1;
        return 0;
    }
    fusenet_error err;
    if (fusenet__output_check(done, "--output-dir", &err)) return fail(&err); /* also sweeps dead writers' temporaries */
    job->t0 = seconds_now();
    return 0;
}

int shard_start(const opts *o, shard_job *job, size_t n_files, size_t dim) {
    shard_range(n_files, job->k, job->n, &job->first, &job->end);
    fprintf(stderr, "fusenet: shard %d/%d: files %zu..%zu of %zu into %s\n", job->k, job->n, job->first,
            job->end, n_files, o->output_dir);
    fusenet_error err;
    if (shard_writer_open(&job->w, o->output_dir, job->k, dim, &err)) return fail(&err);
    job->open = 1;
    return 0;
}

/* The settings that make rows comparable: two shards merge only if these are equal. */
static int describe_run(const opts *o, char *const *paths, size_t n, size_t dim, sbuf *b) {
    uint64_t bytes[MAX_TAPS];
    uint32_t crc[MAX_TAPS];
    fusenet_error err;
    for (int i = 0; i < o->n_taps; i++)
        if (shard_file_crc(o->taps[i].weights, &bytes[i], &crc[i], &err)) return fail(&err);
    sb_printf(b, "\"run\": {\"candidates\": %zu, \"inputs_crc32\": %lu, \"dim\": %zu, \"taps\": [", n,
              (unsigned long)shard_list_crc(paths, n), dim);
    for (int i = 0; i < o->n_taps; i++)
        sb_printf(b, "%s\"%s/%s\"", i ? ", " : "", choice_name("--model", (int)o->taps[i].arch), o->taps[i].layer);
    sb_printf(b, "],\n    \"pool\": \"%s\", \"mode\": \"%s\", \"resize\": \"%s\", ", choice_name("--pool", (int)o->pool),
              choice_name("--mode", (int)o->mode), choice_name("--resize", (int)o->resize));
    if (o->size.policy == FUSENET_SIZE_EXPLICIT) sb_printf(b, "\"size\": \"%dx%d\", ", o->size.h, o->size.w);
    else sb_printf(b, "\"size\": \"%s\", ", o->size.policy == FUSENET_SIZE_MAX ? "max" : "min");
    sb_printf(b, "\"input_size\": \"%dx%d\", \"load_interp\": \"%s\",\n    ", o->input_size.h, o->input_size.w,
              choice_name("--load-interp", (int)o->load_interp));
    if (o->mode == FUSENET_MODE_INT8) { /* the same weights quantize differently under another calibration */
        uint64_t cal_bytes;
        uint32_t cal_crc;
        if (shard_file_crc(o->calibration, &cal_bytes, &cal_crc, &err)) return fail(&err);
        sb_printf(b, "\"int8_layers\": \"%s\", \"calibration\": {\"bytes\": %llu, \"crc32\": %lu},\n    ",
                  choice_name("--int8-layers", (int)o->int8_layers), (unsigned long long)cal_bytes,
                  (unsigned long)cal_crc);
    }
    sb_printf(b, "\"weights\": [");
    for (int i = 0; i < o->n_taps; i++) { /* FILE#NAME: one file may hold several sub-models */
        sb_printf(b, "%s{\"bytes\": %llu, \"crc32\": %lu", i ? ", " : "", (unsigned long long)bytes[i],
                  (unsigned long)crc[i]);
        if (o->taps[i].submodel) {
            sb_printf(b, ", \"submodel\": ");
            sb_json_string(b, o->taps[i].submodel);
        }
        sb_printf(b, "}");
    }
    sb_printf(b, "]}");
    return 0;
}

int shard_end(const opts *o, shard_job *job, char *const *paths, size_t n_files, int rc) {
    if (!job->open) return rc;
    job->open = 0;
    sbuf head = {0}, tail = {0};
    if (!rc) {
        sb_printf(&head, "\"format\": \"%s\", \"shard\": %d, \"shards\": %d, \"first\": %zu, \"end\": %zu",
                  SHARD_DONE_FORMAT, job->k, job->n, job->first, job->end);
        rc = describe_run(o, paths, n_files, job->w.dim, &tail);
    }
    double s = seconds_now() - job->t0;
    size_t rows = job->w.rows, skipped = job->w.n_skipped;
    if (!rc) {
        char host[256] = "";
        gethostname(host, sizeof host - 1);
        sb_printf(&tail, ",\n  \"weights_files\": [");
        for (int i = 0; i < o->n_taps; i++) {
            if (i) sb_printf(&tail, ", ");
            sb_json_string(&tail, o->taps[i].weights);
        }
        sb_printf(&tail, "],\n  \"threads\": %d, \"seconds\": %.3f, \"images_per_s\": %.3f, \"host\": ", o->threads,
                  s, s > 0 ? (double)rows / s : 0.0);
        sb_json_string(&tail, host);
        fusenet_error err;
        if (head.failed || tail.failed) rc = die("out of memory for %s", job->w.done);
        else if (shard_writer_finish(&job->w, head.p, tail.p, &err)) rc = fail(&err);
    }
    if (rc) shard_writer_abort(&job->w);
    else
        fprintf(stderr, "fusenet: shard %d/%d done: %zu rows, %zu skipped, %.1f s (%.2f images/s)\n", job->k,
                job->n, rows, skipped, s, s > 0 ? (double)rows / s : 0.0);
    sb_free(&head);
    sb_free(&tail);
    return rc;
}

int cmd_merge(opts *o) {
    if (o->n_pos != 1) return die("give one shard directory: fusenet merge DIR --output EMB.npy --names NAMES.txt");
    if (fusenet__same_file(o->output, o->names) || strcmp(o->output, o->names) == 0)
        return die("--names and --output name the same file");
    fusenet_error err;
    if (fusenet__output_check(o->output, "--output", &err) || fusenet__output_check(o->names, "--names", &err))
        return fail(&err);
    merge_report rep;
    if (shard_merge(o->pos[0], o->output, o->names, &rep, &err)) return fail(&err);
    fprintf(stderr, "fusenet: merged %d shards: %zu rows of %zu values from %zu files (%zu skipped)\n", rep.shards,
            rep.rows, rep.dim, rep.candidates, rep.skipped);
    return 0;
}
