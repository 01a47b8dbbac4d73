/* pool.h - our own max pool over float32 (private).
 *
 * Exact mode's float32 MaxPooling2D layers: VGG16's blockN_pool (2x2, stride
 * 2, 'valid') and ResNet50's pool1_pool (3x3, stride 2, after pool1_pad's
 * zeros, which the plan takes as padding: its input comes out of a ReLU).
 * oneDNN 2.6's jit:avx2 max pool of such a layer took 6-7x a plain vector
 * loop's time on an AMD EPYC (Zen 2): 15 of a batch of 8's 1585 ms in
 * block1_pool alone, where one pass over the input at memory speed suffices.
 *
 * Layouts: a plane is rows x columns x `lanes` contiguous floats per pixel.
 * oneDNN's nChw8c and nChw16c are images x channel blocks planes of 8 or 16
 * lanes; nhwc is one plane per image with every channel a lane. The source
 * is dense; the destination plane may be taller than the output (dst_h rows,
 * written from row dst_row on), so that a row strip's pooled rows go straight
 * into their place in the whole image's output. Output (y, x) is the largest
 * of the source cells (y * stride - pad_t + i, x * stride - pad_l + j) for i <
 * kh, j < kw that lie inside the plane (padded cells are ignored, as oneDNN
 * and TensorFlow ignore them), compared as `a > b ? a : b` (as x86's maxps
 * compares: every path gives the same bits). Every window must hold a cell of
 * the plane (each padding smaller than the window).
 */
#ifndef FN_POOL_H
#define FN_POOL_H

typedef struct fn_pool {
    int planes;         /* images x channel blocks (nChw8c, nChw16c), or images (nhwc) */
    int ih, iw;         /* a source plane's rows and columns */
    int lanes;          /* floats per pixel: the channel block, or every channel */
    int kh, kw, stride; /* the window and its step */
    int pad_t, pad_l;   /* padded rows above and columns left of the plane */
    int oh, ow;         /* output rows and columns */
    int dst_h, dst_row; /* a destination plane's rows (>= dst_row + oh) and the first one written */
    int threads;        /* the OpenMP team that runs it */
} fn_pool;

/* dst = the max pool of src, as above. */
void fusenet__max_pool_run(const fn_pool *p, const float *src, float *dst);

#endif
