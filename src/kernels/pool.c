/* pool.c - max pool over float32 (pool.h).
 *
 * One work item is one output row of one plane, the lanes of a pixel
 * innermost. A 2x2 stride-2 unpadded pool (VGG16's) reads its two source rows
 * once, in AVX2 vectors where the CPU has AVX2 and the lanes are whole
 * vectors, else in plain C; any other window runs a plain loop over the
 * window's cells inside the plane. Work items split evenly over the threads;
 * every output is the same comparisons whatever the thread count or the path.
 */
#include "pool.h"

#include <stddef.h>

#include <omp.h>

static inline float max2(float a, float b) { return a > b ? a : b; }

/* 2x2 stride 2: ow pixels of L lanes from source rows r0 and r1. */
static void row_2x2(size_t L, int ow, const float *r0, const float *r1, float *o) {
    for (int x = 0; x < ow; x++, r0 += 2 * L, r1 += 2 * L, o += L)
        for (size_t l = 0; l < L; l++) o[l] = max2(max2(r0[l], r0[L + l]), max2(r1[l], r1[L + l]));
}

/* Any window: output row y of the plane at `plane`, the cells in row-major window order.
 * Each pixel's window clipped to the plane: rows [i0, i1), columns [j0, j1) of it. */
#define FN_POOL_WINDOW                                                                                                 \
    int y0 = y * p->stride - p->pad_t, i0 = y0 < 0 ? -y0 : 0, i1 = p->ih - y0 < p->kh ? p->ih - y0 : p->kh;          \
    int x0 = x * p->stride - p->pad_l, j0 = x0 < 0 ? -x0 : 0, j1 = p->iw - x0 < p->kw ? p->iw - x0 : p->kw;          \
    const float *cell0 = plane + ((size_t)(y0 + i0) * (size_t)p->iw + (size_t)(x0 + j0)) * L;

static void row_any(const fn_pool *p, const float *plane, int y, float *o) {
    size_t L = (size_t)p->lanes;
    for (int x = 0; x < p->ow; x++, o += L) {
        FN_POOL_WINDOW
        for (size_t l = 0; l < L; l++) o[l] = cell0[l];
        for (int i = i0; i < i1; i++)
            for (int j = i == i0 ? j0 + 1 : j0; j < j1; j++) {
                const float *r = plane + ((size_t)(y0 + i) * (size_t)p->iw + (size_t)(x0 + j)) * L;
                for (size_t l = 0; l < L; l++) o[l] = max2(o[l], r[l]);
            }
    }
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

static int has_avx2(void) { return __builtin_cpu_supports("avx2"); }

/* row_2x2 for L a multiple of 8: one vector per 8 lanes (_mm256_max_ps(a, b) is a > b ? a : b). */
__attribute__((target("avx2"))) static void row_2x2_avx2(size_t L, int ow, const float *r0, const float *r1,
                                                         float *o) {
    for (int x = 0; x < ow; x++, r0 += 2 * L, r1 += 2 * L, o += L)
        for (size_t l = 0; l < L; l += 8) {
            __m256 a = _mm256_max_ps(_mm256_loadu_ps(r0 + l), _mm256_loadu_ps(r0 + L + l));
            __m256 b = _mm256_max_ps(_mm256_loadu_ps(r1 + l), _mm256_loadu_ps(r1 + L + l));
            _mm256_storeu_ps(o + l, _mm256_max_ps(a, b));
        }
}

/* row_any for L a multiple of 8, the window's cells in the same order. */
__attribute__((target("avx2"))) static void row_any_avx2(const fn_pool *p, const float *plane, int y, float *o) {
    size_t L = (size_t)p->lanes;
    for (int x = 0; x < p->ow; x++, o += L) {
        FN_POOL_WINDOW
        for (size_t l = 0; l < L; l += 8) {
            __m256 m = _mm256_loadu_ps(cell0 + l);
            for (int i = i0; i < i1; i++)
                for (int j = i == i0 ? j0 + 1 : j0; j < j1; j++) {
                    const float *r = plane + ((size_t)(y0 + i) * (size_t)p->iw + (size_t)(x0 + j)) * L;
                    m = _mm256_max_ps(m, _mm256_loadu_ps(r + l));
                }
            _mm256_storeu_ps(o + l, m);
        }
    }
}
#else
static int has_avx2(void) { return 0; }
#define row_2x2_avx2 row_2x2
#define row_any_avx2 row_any
#endif

void fusenet__max_pool_run(const fn_pool *p, const float *src, float *dst) {
    long items = (long)p->planes * p->oh;
    size_t L = (size_t)p->lanes, plane = (size_t)p->ih * (size_t)p->iw * L;
    int threads = p->threads > 0 ? p->threads : 1, avx2 = p->lanes % 8 == 0 && has_avx2();
    int is_2x2 = p->kh == 2 && p->kw == 2 && p->stride == 2 && p->pad_t == 0 && p->pad_l == 0;
#pragma omp parallel num_threads(threads)
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        for (long i = items * t / nt; i < items * (t + 1) / nt; i++) { /* output row y of plane q */
            size_t q = (size_t)(i / p->oh), y = (size_t)(i % p->oh);
            float *o = dst + (q * (size_t)p->dst_h + (size_t)p->dst_row + y) * (size_t)p->ow * L;
            if (!is_2x2) {
                if (avx2)
                    row_any_avx2(p, src + q * plane, (int)y, o);
                else
                    row_any(p, src + q * plane, (int)y, o);
                continue;
            }
            const float *r0 = src + q * plane + 2 * y * (size_t)p->iw * L, *r1 = r0 + (size_t)p->iw * L;
            if (avx2)
                row_2x2_avx2(L, p->ow, r0, r1, o);
            else
                row_2x2(L, p->ow, r0, r1, o);
        }
    }
}
