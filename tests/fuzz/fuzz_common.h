/* fuzz_common.h - shared by the fuzz targets (tests/fuzz/fuzz_*.c) and by
 * tests/test_fuzz_regressions.c, which includes the targets to replay inputs.
 *
 * Each target defines FUZZ_ENTRY (LLVMFuzzerTestOneInput unless the includer
 * renamed it) and declares it first. Contract violations abort(), which libFuzzer reports as a crash:
 * a failing call must fill err with the same status and a non-empty one-line
 * message, and a constructor that fails must leave its output empty. */
#ifndef FUZZ_ENTRY
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

#ifndef FN_FUZZ_COMMON_H
#define FN_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fusenet.h"

#define FUZZ_CHECK(cond)                                                                        \
    do {                                                                                        \
        if (!(cond)) {                                                                          \
            fprintf(stderr, "%s:%d: fuzz contract violated: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                            \
        }                                                                                       \
    } while (0)

/* The status/message contract of every fallible call. With the environment
 * variable FUSENET_FUZZ_VERBOSE set, every status and message is printed. */
static inline void fuzz_check_status(fusenet_status st, const fusenet_error *err) {
    static int verbose = -1;
    if (verbose < 0) verbose = getenv("FUSENET_FUZZ_VERBOSE") != NULL;
    if (verbose) fprintf(stderr, "  %s: %.*s\n", fusenet_status_name(st), (int)sizeof err->message, err->message);
    FUZZ_CHECK(err->status == st);
    size_t len = strnlen(err->message, sizeof err->message);
    FUZZ_CHECK(len < sizeof err->message);
    if (st == FUSENET_OK) return;
    FUZZ_CHECK(st > FUSENET_OK && st <= FUSENET_ERR_VALUE);
    FUZZ_CHECK(len > 0);
    FUZZ_CHECK(strchr(err->message, '\n') == NULL);
}

#endif
