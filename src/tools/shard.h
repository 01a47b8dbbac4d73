/* shard.h - sharded embedding runs and their merge (the CLI's `embed --shard K/N
 * --output-dir DIR` and `merge DIR`).
 *
 * A run over M candidate files (the sorted list an unsharded embed would take)
 * in N shards gives shard K the contiguous range [floor(K*M/N), floor((K+1)*M/N)).
 * Shard K writes in DIR, each through a temporary name and a rename:
 *   emb_KKKKK.npy    float32 (rows, dim), numpy's own header, rows streamed
 *   names_KKKKK.txt  the source path of each row, one a line
 *   done_KKKKK.json  last: the shard's range, rows, skipped files with their
 *                    errors, CRC-32s of the two files above, the run's settings
 *                    ("run": candidates, inputs, dim, taps, pool, mode, sizes,
 *                    weights identity) and timing.
 * Only a shard whose done file exists counts; a run interrupted at any point
 * leaves at most temporary files (NAME.tmp-PID-SERIAL), which nothing reads. */
#ifndef FN_CLI_SHARD_H
#define FN_CLI_SHARD_H

#include <stddef.h>
#include <stdint.h>

#include "fusenet.h"

#define SHARD_MAX 100000 /* K has 5 digits */
#define SHARD_DONE_FORMAT "fusenet shard 1"

/* "K/N" with 0 <= K < N <= SHARD_MAX. */
int shard_parse(const char *text, int *k, int *n);

/* The range [*first, *end) of shard k of n over m candidates. */
void shard_range(size_t m, int k, int n, size_t *first, size_t *end);

typedef enum shard_file { SHARD_EMB, SHARD_NAMES, SHARD_DONE } shard_file;

/* DIR/emb_KKKKK.npy etc.; 0 if it does not fit in size. */
int shard_path(char *buf, size_t size, const char *dir, shard_file which, int k);

/* A growing text buffer; on out of memory it keeps failed set and ignores writes. */
typedef struct sbuf {
    char *p;
    size_t n, cap;
    int failed;
} sbuf;
void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* s as a JSON string: valid UTF-8 kept, other bytes and controls escaped. */
void sb_json_string(sbuf *b, const char *s);
void sb_free(sbuf *b);

/* The size and CRC-32 of a file's bytes (the weights' identity). */
fusenet_status shard_file_crc(const char *path, uint64_t *bytes, uint32_t *crc, fusenet_error *err);

/* CRC-32 (zlib's) of the candidate list, each path followed by '\n'. */
uint32_t shard_list_crc(char *const *paths, size_t n);

/* One shard being written. */
typedef struct shard_writer {
    char emb[4096], names[4096], done[4096];
    char *emb_tmp, *names_tmp;
    int emb_fd, names_fd;
    size_t dim, rows, header_len;
    uint32_t emb_crc, names_crc;
    int err_no; /* first write error, 0 if none */
    sbuf skipped; /* JSON array members */
    size_t n_skipped;
} shard_writer;

/* Opens the temporary files of shard k in dir for rows of dim floats. */
fusenet_status shard_writer_open(shard_writer *w, const char *dir, int k, size_t dim, fusenet_error *err);

/* Appends cnt rows and their source paths, paths[src[0..cnt)] (no '\n' in them). 0 on a write error. */
int shard_writer_add(shard_writer *w, const float *rows, size_t cnt, char *const *paths, const size_t *src);

/* Records a skipped file and why. */
void shard_writer_skip(shard_writer *w, const char *path, const char *error);

/* Completes the shard: the array's header, then the two files renamed into
 * place, then done_KKKKK.json written from head (the members before "rows",
 * without braces) and tail (the members after "skipped"). Closes everything,
 * also on failure, when no file of the shard is left renamed without its done file. */
fusenet_status shard_writer_finish(shard_writer *w, const char *head, const char *tail, fusenet_error *err);

/* Removes the temporary files (an error path). */
void shard_writer_abort(shard_writer *w);

/* What a merge found. */
typedef struct merge_report {
    int shards;
    size_t rows, dim, candidates, skipped;
} merge_report;

/* Checks every shard of the run in dir and writes their rows in global order
 * to output (a .npy) and their names to names, streaming. */
fusenet_status shard_merge(const char *dir, const char *output, const char *names, merge_report *rep,
                           fusenet_error *err);

#endif
