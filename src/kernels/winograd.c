/* winograd.c - Winograd F(2x2, 3x3) convolution on AVX2 + FMA (winograd.h).
 *
 * The matrices (Lavin and Gray 2016, F(2x2, 3x3)):
 *
 *   B^T = | 1  0 -1  0 |    G = | 1    0    0   |    A^T = | 1  1  1  0 |
 *         | 0  1  1  0 |        | 1/2  1/2  1/2 |          | 0  1 -1 -1 |
 *         | 0 -1  1  0 |        | 1/2 -1/2  1/2 |
 *         | 0  1  0 -1 |        | 0    0    1   |
 *
 * A run splits the image's 2x2 output tiles (all images of the batch, in
 * order), in groups of 6, into blocks of at most w->tb tiles with as even a
 * count of groups as that allows, and each block's outputs into w->kparts
 * parts (1, or the thread count when there are too few tiles to give every
 * thread whole blocks of equal size: VGG16's 14 x 14 maps have 49 tiles an
 * image): each thread takes whole work items (a block's part) with its own
 * part of the scratch. For a work item:
 *   1. input transform: each tile's 4x4 x 8-channel input, B^T d B, into
 *      V[x][group][channel block][tile of the group][8] (x: the 16 elements;
 *      a group: 6 tiles, the micro-kernel's rows);
 *   2. for each x, M[x] = V[x] U[x]: the micro-kernel computes 6 tiles x 16
 *      output channels in 12 AVX2 accumulators over the input channels (in
 *      passes of fusenet__wino_kc, each after the first adding to M),
 *      broadcasting V and loading U (weights laid out [x][16 outputs][in][16]
 *      at build), into M[output block of 8][tile][x][8];
 *   3. output transform: A^T m A for each tile and 8 outputs, plus the bias,
 *      the ReLU (max(0, y), which keeps a NaN as TensorFlow's ReLU does), into
 *      the destination.
 * The blocks are sized so that V and M of one block stay within a few MiB and
 * the blocks split evenly over the threads; the weights are streamed once
 * per block, the next 16-output panel prefetched while the current one runs.
 * Every output is the same sums in the same order whatever the thread count.
 */
#include "winograd.h"


#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define FN_WINO_X86 1
#include <immintrin.h>
#include <omp.h>
#endif

size_t fusenet__wino_block_bytes = (size_t)4 << 20;

#define FN_WINO_MAX_TB 144 /* tiles per block, a multiple of 6 */

/* Small transformed weights (at most 4 MiB: 16 C K floats up to 256 -> 256 channels) stay in
 * the caches that every block re-reads them from: there smaller blocks, whose V and M stay
 * in a core's caches too, measured faster; larger weights come from memory once a block and
 * keep the larger blocks. */
#define FN_WINO_SMALL_WEIGHTS ((size_t)4 << 20)
/* 256 input channels: a chunk of a 16-output panel (16 KiB) and of a group's V (6 KiB) fit a
 * 32 KiB L1 together. On an AMD EPYC (Zen 2), against whole panels: 0.975 of the time at
 * 512 -> 512 channels on 28 x 28, 0.951 on 14 x 14; 1.000 at 256 channels; 128 was no better. */
#define FN_WINO_KC 256
size_t fusenet__wino_kc = FN_WINO_KC;
size_t fusenet__wino_small_tiles = 36;

int fusenet__wino_fits(int c, int k, int kh, int kw, int stride) {
    return c > 0 && k > 0 && c % 8 == 0 && k % 16 == 0 && kh == 3 && kw == 3 && stride == 1;
}

static int tiles_y(const fn_wino *w) { return (w->oh + 1) / 2; }
static int tiles_x(const fn_wino *w) { return (w->ow + 1) / 2; }

void fusenet__wino_plan(fn_wino *w) {
    int threads = w->threads > 0 ? w->threads : 1;
    long tiles = (long)w->n * tiles_y(w) * tiles_x(w);
    long cap = (long)(fusenet__wino_block_bytes / (64 * (size_t)(w->c + w->k))) / 6 * 6;
    cap = cap < 24 ? 24 : cap > FN_WINO_MAX_TB ? FN_WINO_MAX_TB : cap; /* per <= cap below, so tb <= FN_WINO_MAX_TB */
    if (fusenet__wino_small_tiles >= 24 && fusenet__wino_weights_floats(w) * sizeof(float) <= FN_WINO_SMALL_WEIGHTS &&
        cap > (long)fusenet__wino_small_tiles)
        cap = (long)fusenet__wino_small_tiles / 6 * 6;
    /* fewer than 48 tiles a thread: every thread transforms every block's input and computes its
     * part of the outputs (the input transform is repeated, a small cost next to the products) */
    w->kparts = threads > 1 && tiles < 48L * threads && w->k / 16 >= threads ? threads : 1;
    long blocks = w->kparts > 1 ? (tiles + cap - 1) / cap : threads * ((tiles + threads * cap - 1) / (threads * cap));
    long per = (tiles + blocks - 1) / blocks;
    w->tb = (int)((per + 5) / 6 * 6);
}

size_t fusenet__wino_weights_floats(const fn_wino *w) { return (size_t)16 * (size_t)w->c * (size_t)w->k; }

size_t fusenet__wino_scratch_bytes(const fn_wino *w) {
    return (size_t)(w->threads > 0 ? w->threads : 1) * 16 * (size_t)w->tb * (size_t)(w->c + w->k) * sizeof(float);
}

/* u[x][k / 16][c][k % 16] = (G g G^T)[x] for the kernel g of output k, input c. */
void fusenet__wino_weights(const fn_wino *w, const float *hwio, float *u) {
    int C = w->c, K = w->k;
    for (int c = 0; c < C; c++) /* k innermost: Keras' kernel is read in order, u written 16 floats at a time */
        for (int k = 0; k < K; k++) {
            float g[3][3], t[4][3], v[4][4];
            for (int r = 0; r < 3; r++)
                for (int s = 0; s < 3; s++) g[r][s] = hwio[((size_t)(r * 3 + s) * C + c) * K + k];
            for (int s = 0; s < 3; s++) { /* G g */
                t[0][s] = g[0][s];
                t[1][s] = 0.5f * (g[0][s] + g[1][s] + g[2][s]);
                t[2][s] = 0.5f * (g[0][s] - g[1][s] + g[2][s]);
                t[3][s] = g[2][s];
            }
            for (int r = 0; r < 4; r++) { /* (G g) G^T */
                v[r][0] = t[r][0];
                v[r][1] = 0.5f * (t[r][0] + t[r][1] + t[r][2]);
                v[r][2] = 0.5f * (t[r][0] - t[r][1] + t[r][2]);
                v[r][3] = t[r][2];
            }
            for (int x = 0; x < 16; x++) u[(((size_t)x * (K / 16) + k / 16) * C + c) * 16 + k % 16] = v[x / 4][x % 4];
        }
}

#ifdef FN_WINO_X86

int fusenet__wino_offered(void) { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }

#define FN_AVX2 __attribute__((target("avx2,fma")))

/* One input channel of the micro-kernel: 6 tiles x 16 outputs. */
#define FN_WINO_STEP(ch)                                                                                              \
    b0 = _mm256_load_ps(B + (ch) * 16);                                                                                \
    b1 = _mm256_load_ps(B + (ch) * 16 + 8);                                                                            \
    a = _mm256_broadcast_ss(A + 0 * 8 + (ch));                                                                         \
    c00 = _mm256_fmadd_ps(a, b0, c00);                                                                                 \
    c01 = _mm256_fmadd_ps(a, b1, c01);                                                                                 \
    a = _mm256_broadcast_ss(A + 1 * 8 + (ch));                                                                         \
    c10 = _mm256_fmadd_ps(a, b0, c10);                                                                                 \
    c11 = _mm256_fmadd_ps(a, b1, c11);                                                                                 \
    a = _mm256_broadcast_ss(A + 2 * 8 + (ch));                                                                         \
    c20 = _mm256_fmadd_ps(a, b0, c20);                                                                                 \
    c21 = _mm256_fmadd_ps(a, b1, c21);                                                                                 \
    a = _mm256_broadcast_ss(A + 3 * 8 + (ch));                                                                         \
    c30 = _mm256_fmadd_ps(a, b0, c30);                                                                                 \
    c31 = _mm256_fmadd_ps(a, b1, c31);                                                                                 \
    a = _mm256_broadcast_ss(A + 4 * 8 + (ch));                                                                         \
    c40 = _mm256_fmadd_ps(a, b0, c40);                                                                                 \
    c41 = _mm256_fmadd_ps(a, b1, c41);                                                                                 \
    a = _mm256_broadcast_ss(A + 5 * 8 + (ch));                                                                         \
    c50 = _mm256_fmadd_ps(a, b0, c50);                                                                                 \
    c51 = _mm256_fmadd_ps(a, b1, c51);

/* o[tile i][x] (8 outputs) = (acc ? o[tile i][x] : 0) + sum over the C inputs of A[c][i] B[c][0..16):
 * A is [C / 8][6][8], B [C][16]; ts: floats from one tile to the next in o, ks: from one block of 8
 * outputs to the next. Prefetches npf lines from pf meanwhile. */
FN_AVX2 static void micro_kernel(int C, const float *A, const float *B, float *o, size_t ts, size_t ks,
                                 const char *pf, int npf, int acc) {
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00,
           c40 = c00, c41 = c00, c50 = c00, c51 = c00, b0, b1, a;
    for (int cb = 0; cb < C / 8; cb++) {
        if (npf > 0) {
            int q = npf < 8 ? npf : 8;
            for (int l = 0; l < q; l++) _mm_prefetch(pf + l * 64, _MM_HINT_T0);
            pf += q * 64;
            npf -= q;
        }
        FN_WINO_STEP(0) FN_WINO_STEP(1) FN_WINO_STEP(2) FN_WINO_STEP(3)
        FN_WINO_STEP(4) FN_WINO_STEP(5) FN_WINO_STEP(6) FN_WINO_STEP(7)
        A += 48;
        B += 128;
    }
#define FN_WINO_STORE(i)                                                                                               \
    _mm256_store_ps(o + (i) * ts, c##i##0);                                                                            \
    _mm256_store_ps(o + (i) * ts + ks, c##i##1);
#define FN_WINO_ADD(i)                                                                                                 \
    c##i##0 = _mm256_add_ps(c##i##0, _mm256_load_ps(o + (i) * ts));                                                    \
    c##i##1 = _mm256_add_ps(c##i##1, _mm256_load_ps(o + (i) * ts + ks));
    if (acc) {
        FN_WINO_ADD(0) FN_WINO_ADD(1) FN_WINO_ADD(2) FN_WINO_ADD(3) FN_WINO_ADD(4) FN_WINO_ADD(5)
    }
    FN_WINO_STORE(0) FN_WINO_STORE(1) FN_WINO_STORE(2) FN_WINO_STORE(3) FN_WINO_STORE(4) FN_WINO_STORE(5)
}

/* Where a tile is: its image and the top row and left column of its 2x2 outputs. */
typedef struct tile_pos {
    int n, y, x;
} tile_pos;

static tile_pos tile_at(const fn_wino *w, long t) {
    long per = (long)tiles_y(w) * tiles_x(w);
    int r0 = (int)(t % per);
    return (tile_pos){(int)(t / per), 2 * (r0 / tiles_x(w)), 2 * (r0 % tiles_x(w))};
}

/* One row of B^T d B from the row e of B^T d: (e B)[0..3], stored xs floats apart. */
FN_AVX2 static inline void input_row(__m256 e0, __m256 e1, __m256 e2, __m256 e3, float *v, size_t xs) {
    _mm256_store_ps(v, _mm256_sub_ps(e0, e2));
    _mm256_store_ps(v + xs, _mm256_add_ps(e1, e2));
    _mm256_store_ps(v + 2 * xs, _mm256_sub_ps(e2, e1));
    _mm256_store_ps(v + 3 * xs, _mm256_sub_ps(e1, e3));
}

#define FN_LD(p, s) _mm256_loadu_ps((p) + (s) * 8)
#define FN_ROW(op, a, b) op(FN_LD(a, 0), FN_LD(b, 0)), op(FN_LD(a, 1), FN_LD(b, 1)), op(FN_LD(a, 2), FN_LD(b, 2)), \
                         op(FN_LD(a, 3), FN_LD(b, 3))

/* The tile's input (channel block cb), B^T d B, its 16 elements stored xs floats apart from v.
 * Row by row, re-reading d (from L1), so that no more than a row lives in registers. */
FN_AVX2 static void input_tile(const fn_wino *w, const float *src, tile_pos at, int cb, float *v, size_t xs) {
    int y0 = at.y - w->pad_t, x0 = at.x - w->pad_l;
    const float *base = src + ((size_t)at.n * (size_t)(w->c / 8) + (size_t)cb) * (size_t)w->ih * (size_t)w->iw * 8;
    float patch[4][4][8] __attribute__((aligned(32)));
    const float *d[4];
    if (y0 >= 0 && x0 >= 0 && y0 + 4 <= w->ih && x0 + 4 <= w->iw) {
        for (int r = 0; r < 4; r++) d[r] = base + ((size_t)(y0 + r) * (size_t)w->iw + (size_t)x0) * 8;
    } else { /* an edge tile: its 4x4 input with the padding's zeros */
        for (int r = 0; r < 4; r++) {
            for (int s = 0; s < 4; s++) {
                int y = y0 + r, x = x0 + s;
                _mm256_store_ps(patch[r][s], y >= 0 && y < w->ih && x >= 0 && x < w->iw
                                                 ? _mm256_loadu_ps(base + ((size_t)y * (size_t)w->iw + (size_t)x) * 8)
                                                 : _mm256_setzero_ps());
            }
            d[r] = patch[r][0];
        }
    }
    /* B^T d, row by row: d0 - d2, d1 + d2, d2 - d1, d1 - d3 */
    input_row(FN_ROW(_mm256_sub_ps, d[0], d[2]), v, xs);
    input_row(FN_ROW(_mm256_add_ps, d[1], d[2]), v + 4 * xs, xs);
    input_row(FN_ROW(_mm256_sub_ps, d[2], d[1]), v + 8 * xs, xs);
    input_row(FN_ROW(_mm256_sub_ps, d[1], d[3]), v + 12 * xs, xs);
}

/* The tile's 2x2 outputs (output block kb) from m[16][8]: A^T m A + bias, ReLU, into dst (or
 * their max, with w->pool). */
FN_AVX2 static void output_tile(const fn_wino *w, const float *m, __m256 bias, tile_pos at, int kb, float *dst) {
    int oy = at.y, ox = at.x;
    __m256 r[2][4], y[2][2], zero = _mm256_setzero_ps();
    for (int s = 0; s < 4; s++) { /* A^T m */
        __m256 m0 = _mm256_load_ps(m + (0 * 4 + s) * 8), m1 = _mm256_load_ps(m + (1 * 4 + s) * 8),
               m2 = _mm256_load_ps(m + (2 * 4 + s) * 8), m3 = _mm256_load_ps(m + (3 * 4 + s) * 8);
        r[0][s] = _mm256_add_ps(_mm256_add_ps(m0, m1), m2);
        r[1][s] = _mm256_sub_ps(_mm256_sub_ps(m1, m2), m3);
    }
    for (int i = 0; i < 2; i++) { /* (A^T m) A */
        y[i][0] = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(r[i][0], r[i][1]), r[i][2]), bias);
        y[i][1] = _mm256_add_ps(_mm256_sub_ps(_mm256_sub_ps(r[i][1], r[i][2]), r[i][3]), bias);
    }
    if (w->pool) { /* the tile is the pool's window: its max, where the window is whole */
        int ph = w->oh / 2, pw = w->ow / 2;
        if (oy + 1 >= w->oh || ox + 1 >= w->ow) return;
        __m256 v = _mm256_max_ps(_mm256_max_ps(y[0][0], y[0][1]), _mm256_max_ps(y[1][0], y[1][1]));
        float *pbase = dst + ((size_t)at.n * (size_t)(w->k / 8) + (size_t)kb) * (size_t)ph * (size_t)pw * 8;
        _mm256_storeu_ps(pbase + ((size_t)(oy / 2) * (size_t)pw + (size_t)(ox / 2)) * 8,
                         w->relu ? _mm256_max_ps(zero, v) : v);
        return;
    }
    float *base = dst + ((size_t)at.n * (size_t)(w->k / 8) + (size_t)kb) * (size_t)w->oh * (size_t)w->ow * 8;
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++)
            if (oy + i < w->oh && ox + j < w->ow)
                _mm256_storeu_ps(base + ((size_t)(oy + i) * (size_t)w->ow + (size_t)(ox + j)) * 8,
                                w->relu ? _mm256_max_ps(zero, y[i][j]) : y[i][j]);
}

/* Block [t0, t0 + nt) of the tiles, outputs [16 k0, 16 k1), with this thread's V and M. */
FN_AVX2 static void run_block(const fn_wino *w, const float *src, const float *u, const float *bias, float *dst,
                              long t0, int nt, int k0, int k1, float *V, float *M) {
    int C = w->c, TB = w->tb, G = TB / 6, KB16 = w->k / 16;
    int GN = (nt + 5) / 6; /* the groups of this block (G: of the largest, V's layout) */
    tile_pos at[FN_WINO_MAX_TB];
    for (int t = 0; t < nt; t++) at[t] = tile_at(w, t0 + t);
    for (int g = 0; g < GN; g++)
        for (int i = 0; i < 6; i++) {
            int t = g * 6 + i;
            size_t xs = (size_t)G * C * 6; /* from one Winograd element's V to the next */
            for (int cb = 0; cb < C / 8; cb++) {
                float *v = V + ((size_t)g * C + (size_t)cb * 8) * 6 + i * 8;
                if (t < nt) input_tile(w, src, at[t], cb, v, xs);
                else
                    for (int x = 0; x < 16; x++) _mm256_store_ps(v + x * xs, _mm256_setzero_ps());
            }
        }
    /* each panel's input channels in chunks of at most KC, so that a chunk of the panel and of a
     * group's V stay in L1 together; the chunks after the first add to M */
    int KC = fusenet__wino_kc >= 8 && fusenet__wino_kc < (size_t)C ? (int)(fusenet__wino_kc / 8 * 8) : C;
    for (int x = 0; x < 16; x++)
        for (int kb = k0; kb < k1; kb++)
            for (int c0 = 0; c0 < C; c0 += KC) {
                int cc = C - c0 < KC ? C - c0 : KC, lines = (cc + GN - 1) / GN; /* of the next chunk, a call */
                const float *B = u + ((size_t)x * KB16 + kb) * C * 16 + (size_t)c0 * 16;
                /* the next chunk (after the last, the next panel's first; it may be another part's:
                 * prefetched all the same) */
                int last = x == 15 && kb == KB16 - 1 && c0 + cc == C, next = C - c0 - cc < KC ? C - c0 - cc : KC;
                if (next == 0) next = KC;
                for (int g = 0; g < GN; g++) {
                    int first = g * lines;
                    int npf = last || first >= next ? 0 : next - first < lines ? next - first : lines;
                    const char *pf = npf ? (const char *)(B + (size_t)cc * 16 + (size_t)first * 16) : NULL;
                    micro_kernel(cc, V + ((size_t)x * G + g) * C * 6 + (size_t)c0 * 6, B,
                                 M + (((size_t)(2 * kb) * TB + g * 6) * 16 + x) * 8, 16 * 8, (size_t)TB * 16 * 8, pf,
                                 npf, c0 > 0);
                }
            }
    for (int kb = 2 * k0; kb < 2 * k1; kb++) {
        __m256 b = _mm256_loadu_ps(bias + kb * 8);
        for (int t = 0; t < nt; t++) output_tile(w, M + ((size_t)kb * TB + t) * 16 * 8, b, at[t], kb, dst);
    }
}

FN_AVX2 void fusenet__wino_run(const fn_wino *w, const float *src, const float *u, const float *bias, float *dst,
                               void *scratch) {
    /* the groups of 6 tiles split as evenly as blocks of at most w->tb tiles allow (the last
     * group partial: its missing tiles are zeros) */
    long tiles = (long)w->n * tiles_y(w) * tiles_x(w), groups = (tiles + 5) / 6, per_block = w->tb / 6,
         blocks = (groups + per_block - 1) / per_block;
    size_t per_thread = (size_t)16 * (size_t)w->tb * (size_t)(w->c + w->k);
    int threads = w->threads > 0 ? w->threads : 1, parts = w->kparts > 0 ? w->kparts : 1, KB16 = w->k / 16;
#pragma omp parallel num_threads(threads)
    {
        float *V = (float *)scratch + (size_t)omp_get_thread_num() * per_thread;
        float *M = V + (size_t)16 * (size_t)w->tb * (size_t)w->c;
#pragma omp for schedule(static)
        for (long item = 0; item < blocks * parts; item++) {
            long b = item / parts, t0 = 6 * (b * groups / blocks), t1 = 6 * ((b + 1) * groups / blocks);
            int part = (int)(item % parts), nt = (int)((t1 < tiles ? t1 : tiles) - t0);
            run_block(w, src, u, bias, dst, t0, nt, part * KB16 / parts, (part + 1) * KB16 / parts, V, M);
        }
    }
}

#else

int fusenet__wino_offered(void) { return 0; }

void fusenet__wino_run(const fn_wino *w, const float *src, const float *u, const float *bias, float *dst,
                       void *scratch) {
    (void)w, (void)src, (void)u, (void)bias, (void)dst, (void)scratch; /* never called: not offered */
}

#endif
