/* alloc.c - the library's allocation wrappers and the out-of-memory test hook. */
#include "alloc.h"

#include <stdlib.h>
#include <string.h>

static _Thread_local int64_t fail_after = -1;
static _Thread_local int64_t count_since = 0;

int64_t fn_alloc_fail_after(int64_t count) {
    int64_t made = count_since;
    fail_after = count;
    count_since = 0;
    return made;
}

static int should_fail(void) {
    count_since++;
    if (fail_after < 0) return 0;
    if (fail_after == 0) return 1;
    fail_after--;
    return 0;
}

void *fn_malloc(size_t size) { return should_fail() ? NULL : malloc(size ? size : 1); }

void *fn_calloc(size_t count, size_t size) {
    if (should_fail()) return NULL;
    return calloc(count ? count : 1, size ? size : 1);
}

void *fn_realloc(void *ptr, size_t size) {
    return should_fail() ? NULL : realloc(ptr, size ? size : 1);
}

void *fn_aligned_alloc(size_t size) {
    if (should_fail()) return NULL;
    void *p = NULL;
    if (posix_memalign(&p, 64, size ? size : 64) != 0) return NULL;
    return p;
}

void fn_free(void *ptr) { free(ptr); }

char *fn_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = fn_malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

int fn_mul_size(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > (size_t)-1 / a) return 0;
    *out = a * b;
    return 1;
}
