/* winograd.h - our own Winograd F(2x2, 3x3) convolution (private).
 *
 * Fast mode's 3x3 stride-1 convolutions on CPUs where oneDNN 2.6 has no
 * Winograd (it has it for AVX-512 only): x86 with AVX2 and FMA. Lavin and
 * Gray, "Fast Algorithms for Convolutional Neural Networks" (2016): each 2x2
 * output tile is A^T [(G g G^T) . (B^T d B)] A over a 4x4 input tile d, so 16
 * products per input channel give 4 outputs where a direct 3x3 convolution
 * needs 36 (2.25x fewer multiplications); the 16 element-wise products summed
 * over channels are 16 matrix products (tiles x in) x (in x out).
 *
 * Layouts: the source and destination are dense nChw8c (oneDNN's aBcd8b: the
 * image, channel blocks of 8, rows, columns, 8 channels), as oneDNN's AVX2
 * convolutions lay them out (any alignment: a micro-batch's slice need not be
 * 32-byte aligned); the transformed weights are ours (fusenet__wino_weights)
 * and they and the scratch are 64-byte aligned. Float32 throughout, the bias
 * added, the ReLU applied and, when asked, the 2x2 max pool that follows the
 * convolution taken in the output transform.
 */
#ifndef FN_WINOGRAD_H
#define FN_WINOGRAD_H

#include <stddef.h>

typedef struct fn_wino {
    int n, c, k;        /* images, input channels (a multiple of 8), output channels (of 16) */
    int ih, iw, oh, ow; /* input and output rows and columns */
    int pad_t, pad_l;   /* zero rows above and zero columns left of the input */
    int relu;           /* ReLU after the bias */
    int pool;           /* then a 2x2 stride-2 'valid' max pool of the outputs: dst is n x k x oh/2 x ow/2
                           (each 2x2 tile is one pool window; a partial tile at an odd edge is dropped) */
    int threads;        /* the OpenMP team that runs it */
    int tb;             /* tiles per block (fusenet__wino_plan): a multiple of 6 */
    int kparts;         /* each block's outputs split in this many parts, one per work item */
} fn_wino;

/* V and M of one block, per thread, at most this many bytes (4 MiB; tests may change it). */
extern size_t fusenet__wino_block_bytes;

/* Input channels per pass of the micro-kernel over a weights panel (256; rounded down to a
 * multiple of 8; below 8: all of them; tests may change it). Each tile's sums are the same
 * whatever the blocks and threads, but they depend on this. */
extern size_t fusenet__wino_kc;

/* Tiles per block at most where the transformed weights are small (36; tests may change it, 0: no cap). */
extern size_t fusenet__wino_small_tiles;

/* 1 where the kernel can run: an x86 CPU with AVX2 and FMA. */
int fusenet__wino_offered(void);
/* 1 when a convolution of this shape can run on it (the padding is free). */
int fusenet__wino_fits(int c, int k, int kh, int kw, int stride);
/* Sets w->tb and w->kparts from the shape and the thread count. */
void fusenet__wino_plan(fn_wino *w);
/* Floats of the transformed weights; bytes of the scratch a run needs. */
size_t fusenet__wino_weights_floats(const fn_wino *w);
size_t fusenet__wino_scratch_bytes(const fn_wino *w);
/* Transforms Keras' (kh, kw, in, out) 3x3 kernel into u (fusenet__wino_weights_floats). */
void fusenet__wino_weights(const fn_wino *w, const float *hwio, float *u);
/* dst = relu?(conv(src, weights) + bias); scratch: 64-byte aligned, fusenet__wino_scratch_bytes. */
void fusenet__wino_run(const fn_wino *w, const float *src, const float *u, const float *bias, float *dst,
                       void *scratch);

#endif
