/* alloc.c - the library's allocation wrappers and the out-of-memory test hook.
 *
 * Every block carries a small header. Blocks of FN_MAP_MIN bytes or more are
 * mapped directly, so freeing weights and activations returns the memory to
 * the system at once (peak RSS is a product goal); smaller ones use malloc. */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#include "alloc.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define FN_MAP_MIN ((size_t)256 << 10)
#define FN_HEADER 64 /* keeps 64-byte alignment for every kind */

enum { KIND_HEAP = 1, KIND_MAP = 2 };

typedef struct header {
    size_t size; /* user bytes */
    size_t kind;
} header;

static _Thread_local int64_t fail_after = -1;
static _Thread_local int64_t count_since = 0;

int64_t fusenet__alloc_fail_after(int64_t count) {
    int64_t made = count_since;
    fail_after = count;
    count_since = 0;
    return made;
}

static _Atomic size_t live_bytes, peak_bytes;

static void count_alloc(size_t size) {
    size_t live = atomic_fetch_add_explicit(&live_bytes, size, memory_order_relaxed) + size;
    size_t peak = atomic_load_explicit(&peak_bytes, memory_order_relaxed);
    while (live > peak && !atomic_compare_exchange_weak_explicit(&peak_bytes, &peak, live, memory_order_relaxed,
                                                                 memory_order_relaxed)) {
    }
}

size_t fusenet__alloc_peak_reset(void) {
    return atomic_exchange_explicit(&peak_bytes, atomic_load_explicit(&live_bytes, memory_order_relaxed),
                                    memory_order_relaxed);
}

static int should_fail(void) {
    count_since++;
    if (fail_after < 0) return 0;
    if (fail_after == 0) return 1;
    fail_after--;
    return 0;
}

static void *block(size_t size, int zero) {
    if (should_fail() || size > ((size_t)1 << 46)) return NULL;
    size_t total = size + FN_HEADER;
    char *base;
    size_t kind;
    if (total >= FN_MAP_MIN) {
        void *p = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) return NULL;
        base = p; /* mapped pages are zero */
        kind = KIND_MAP;
    } else {
        void *p = NULL;
        if (posix_memalign(&p, FN_HEADER, total) != 0) return NULL;
        base = p;
        if (zero) memset(base, 0, total);
        kind = KIND_HEAP;
    }
    header *h = (header *)(base + FN_HEADER - sizeof(header));
    h->size = size;
    h->kind = kind;
    count_alloc(size);
    return base + FN_HEADER;
}

static header *header_of(void *ptr) { return (header *)((char *)ptr - sizeof(header)); }

void *fusenet__malloc(size_t size) { return block(size, 0); }

void *fusenet__calloc(size_t count, size_t size) {
    size_t total;
    if (!fusenet__mul_size(count, size, &total)) return NULL;
    return block(total, 1);
}

void *fusenet__aligned_alloc(size_t size) { return block(size, 0); }

void *fusenet__realloc(void *ptr, size_t size) {
    if (!ptr) return block(size, 0);
    size_t old = header_of(ptr)->size;
    void *p = block(size, 0);
    if (!p) return NULL;
    memcpy(p, ptr, old < size ? old : size);
    fusenet__free(ptr);
    return p;
}

void fusenet__free(void *ptr) {
    if (!ptr) return;
    header *h = header_of(ptr);
    char *base = (char *)ptr - FN_HEADER;
    atomic_fetch_sub_explicit(&live_bytes, h->size, memory_order_relaxed);
    if (h->kind == KIND_MAP)
        munmap(base, h->size + FN_HEADER);
    else
        free(base);
}

char *fusenet__strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = fusenet__malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

void *fusenet__grow(void *v, size_t n, size_t *cap, size_t elem, size_t first) {
    if (n < *cap) return v;
    size_t want = *cap ? 2 * *cap : first, bytes;
    if (want <= n || !fusenet__mul_size(want, elem, &bytes)) return NULL;
    void *p = fusenet__realloc(v, bytes);
    if (p) *cap = want;
    return p;
}

int fusenet__mul_size(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > (size_t)-1 / a) return 0;
    *out = a * b;
    return 1;
}
