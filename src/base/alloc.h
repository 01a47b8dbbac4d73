/* alloc.h - every heap allocation of the library goes through these (private).
 * A test hook makes the k-th allocation fail, for out-of-memory sweeps. */
#ifndef FN_ALLOC_H
#define FN_ALLOC_H

#include <stddef.h>
#include <stdint.h>

void *fusenet__malloc(size_t size);
void *fusenet__calloc(size_t count, size_t size);
void *fusenet__realloc(void *ptr, size_t size);
void *fusenet__aligned_alloc(size_t size); /* 64-byte aligned (all blocks are); free with fusenet__free */
void fusenet__free(void *ptr);
char *fusenet__strdup(const char *s);

/* Room for element n of a doubling array of `elem`-byte elements: returns v
 * itself while n < *cap, else v moved into a block of twice *cap elements
 * (`first` when *cap is 0) with *cap updated; NULL when out of memory or the
 * size overflows, v then untouched and still the caller's. */
void *fusenet__grow(void *v, size_t n, size_t *cap, size_t elem, size_t first);

/* Overflow-checked size arithmetic: returns 0 and leaves *out untouched on overflow. */
int fusenet__mul_size(size_t a, size_t b, size_t *out);

/* Test hook: after `count` more successful allocations, every allocation fails
 * (count < 0: never). Returns the number of allocations made since the last call. */
int64_t fusenet__alloc_fail_after(int64_t count);

/* Test hook: the most bytes of the library's blocks alive at once since the
 * last call (all threads); the next period starts from those alive now. */
size_t fusenet__alloc_peak_reset(void);

#endif
