/* pool.c - 2x2 stride-2 max pool over float32 (pool.h).
 *
 * One work item is one output row of one plane: two source rows read once,
 * one destination row written, the lanes of a pixel innermost: AVX2 vectors
 * where the CPU has AVX2 and the lanes are whole vectors, else plain C.
 * Work items split evenly over the threads; every output is the same
 * comparisons whatever the thread count or the path.
 */
#include "pool.h"

#include <stddef.h>

#include <omp.h>

static inline float max2(float a, float b) { return a > b ? a : b; }

/* One output row: ow pixels of L lanes from source rows r0 and r1. */
static void pool_row(size_t L, int ow, const float *r0, const float *r1, float *o) {
    for (int x = 0; x < ow; x++, r0 += 2 * L, r1 += 2 * L, o += L)
        for (size_t l = 0; l < L; l++) o[l] = max2(max2(r0[l], r0[L + l]), max2(r1[l], r1[L + l]));
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

static int has_avx2(void) { return __builtin_cpu_supports("avx2"); }

/* pool_row for L a multiple of 8: one vector per 8 lanes (_mm256_max_ps(a, b) is a > b ? a : b). */
__attribute__((target("avx2"))) static void pool_row_avx2(size_t L, int ow, const float *r0, const float *r1,
                                                          float *o) {
    for (int x = 0; x < ow; x++, r0 += 2 * L, r1 += 2 * L, o += L)
        for (size_t l = 0; l < L; l += 8) {
            __m256 a = _mm256_max_ps(_mm256_loadu_ps(r0 + l), _mm256_loadu_ps(r0 + L + l));
            __m256 b = _mm256_max_ps(_mm256_loadu_ps(r1 + l), _mm256_loadu_ps(r1 + L + l));
            _mm256_storeu_ps(o + l, _mm256_max_ps(a, b));
        }
}
#else
static int has_avx2(void) { return 0; }
#define pool_row_avx2 pool_row
#endif

void fusenet__max_pool2(const fn_pool2 *p, const float *src, float *dst) {
    long items = (long)p->planes * p->oh;
    size_t L = (size_t)p->lanes;
    int threads = p->threads > 0 ? p->threads : 1, avx2 = p->lanes % 8 == 0 && has_avx2();
#pragma omp parallel num_threads(threads)
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        for (long i = items * t / nt; i < items * (t + 1) / nt; i++) { /* output row y of plane q */
            size_t q = (size_t)(i / p->oh), y = (size_t)(i % p->oh);
            const float *r0 = src + (q * (size_t)p->ih + 2 * y) * (size_t)p->iw * L, *r1 = r0 + (size_t)p->iw * L;
            float *o = dst + (q * (size_t)p->dst_h + (size_t)p->dst_row + y) * (size_t)p->ow * L;
            if (avx2)
                pool_row_avx2(L, p->ow, r0, r1, o);
            else
                pool_row(L, p->ow, r0, r1, o);
        }
    }
}
