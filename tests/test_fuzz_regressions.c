/* test_fuzz_regressions.c - replays every fuzz input kept in the tree through
 * the same entry points as the libFuzzer targets of tests/fuzz, built with the
 * normal compiler and (in tests/run.sh's sanitizer build) ASan + UBSan.
 *
 * For each target T in {npy, image, h5, h5_keras}: every file of
 * tests/fuzz/regressions/T/ (inputs that once crashed or broke a contract,
 * minimised) and of tests/fuzz/corpus/T/ (the seeds). A contract violation
 * aborts, as under the fuzzer; the test names each file before running it, so
 * the culprit is the last one printed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef FN_TEST_DIR
#define FN_TEST_DIR "."
#endif

/* The targets, each with its entry point renamed. */
#define FUZZ_ENTRY fuzz_npy_entry
#include "fuzz/fuzz_npy.c"
#undef FUZZ_ENTRY
#define FUZZ_ENTRY fuzz_image_entry
#include "fuzz/fuzz_image.c"
#undef FUZZ_ENTRY
#define FUZZ_ENTRY fuzz_h5_entry
#include "fuzz/fuzz_h5.c"
#undef FUZZ_ENTRY
#define FUZZ_ENTRY fuzz_h5_keras_entry
#include "fuzz/fuzz_h5_keras.c"
#undef FUZZ_ENTRY
#define FUZZ_ENTRY fuzz_calib_entry
#include "fuzz/fuzz_calib.c"
#undef FUZZ_ENTRY
#define FUZZ_ENTRY fuzz_keras3_entry
#include "fuzz/fuzz_keras3.c"
#undef FUZZ_ENTRY
#define FUZZ_ENTRY fuzz_zip_entry
#include "fuzz/fuzz_zip.c"
#undef FUZZ_ENTRY

typedef int (*entry_fn)(const uint8_t *data, size_t size);

static int cmp_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static unsigned char *slurp(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    unsigned char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap) break;
        unsigned char *bigger = realloc(buf, cap * 2);
        if (!bigger) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = bigger;
        cap *= 2;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return NULL;
    }
    *size = n;
    return buf;
}

/* Runs every regular file of dir (sorted; a missing dir is empty). */
static int replay_dir(const char *dir, entry_fn entry) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    char *names[1024];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < 1024) {
        if (e->d_name[0] == '.') continue;
        names[n] = strdup(e->d_name);
        assert_non_null(names[n]);
        n++;
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], cmp_names);
    int ran = 0;
    for (int i = 0; i < n; i++) {
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        struct stat sb;
        if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
            size_t size = 0;
            unsigned char *buf = slurp(path, &size);
            if (!buf) fail_msg("cannot read %s", path);
            print_message("  %s\n", path);
            fflush(stdout);
            entry(buf, size);
            free(buf);
            ran++;
        }
        free(names[i]);
    }
    return ran;
}

static void replay(const char *target, entry_fn entry, int want_corpus) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/fuzz/regressions/%s", FN_TEST_DIR, target);
    int regressions = replay_dir(dir, entry);
    snprintf(dir, sizeof dir, "%s/fuzz/corpus/%s", FN_TEST_DIR, target);
    int seeds = replay_dir(dir, entry);
    if (want_corpus) assert_true(seeds > 0);
    print_message("%s: %d regression inputs, %d seeds\n", target, regressions, seeds);
}

static void test_npy(void **state) {
    (void)state;
    replay("npy", fuzz_npy_entry, 1);
}

static void test_image(void **state) {
    (void)state;
    replay("image", fuzz_image_entry, 1);
}

static void test_h5(void **state) {
    (void)state;
    replay("h5", fuzz_h5_entry, 1);
}

static void test_h5_keras(void **state) {
    (void)state;
    replay("h5_keras", fuzz_h5_keras_entry, 0);
    fuzz_h5_keras_entry((const uint8_t *)"", 0); /* the empty program: an empty file */
}

static void test_calib(void **state) {
    (void)state;
    replay("calib", fuzz_calib_entry, 1);
}

static void test_keras3(void **state) {
    (void)state;
    replay("keras3", fuzz_keras3_entry, 1);
    fuzz_keras3_entry((const uint8_t *)"", 0); /* the empty program: an empty layers group */
}

static void test_zip(void **state) {
    (void)state;
    replay("zip", fuzz_zip_entry, 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_calib),
        cmocka_unit_test(test_npy),
        cmocka_unit_test(test_image),
        cmocka_unit_test(test_h5),
        cmocka_unit_test(test_h5_keras),
        cmocka_unit_test(test_keras3),
        cmocka_unit_test(test_zip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
