/* pool.h - our own 2x2 stride-2 max pool over float32 (private).
 *
 * VGG16's blockN_pool (Keras MaxPooling2D((2, 2), strides=(2, 2)), 'valid')
 * in exact mode. oneDNN 2.6's jit:avx2 max pool of such a layer took 6-7x a
 * plain vector loop's time on an AMD EPYC (Zen 2): 15 of a batch of 8's
 * 1585 ms in block1_pool alone, where one pass over the input at memory
 * speed suffices.
 *
 * Layouts: a plane is rows x columns x `lanes` contiguous floats per pixel.
 * oneDNN's nChw8c and nChw16c are images x channel blocks planes of 8 or 16
 * lanes; nhwc is one plane per image with every channel a lane. The source
 * is dense; the destination plane may be taller than the output (dst_h rows,
 * written from row dst_row on), so that a row strip's pooled rows go straight
 * into their place in the whole image's output. Each output is the largest of
 * its four inputs, compared as `a > b ? a : b` (as x86's maxps compares:
 * every path gives the same bits); a last odd row or column is dropped, as
 * 'valid' pooling drops it.
 */
#ifndef FN_POOL_H
#define FN_POOL_H

typedef struct fn_pool2 {
    int planes;         /* images x channel blocks (nChw8c, nChw16c), or images (nhwc) */
    int ih, iw;         /* a source plane's rows and columns */
    int lanes;          /* floats per pixel: the channel block, or every channel */
    int oh, ow;         /* ih / 2, iw / 2 */
    int dst_h, dst_row; /* a destination plane's rows (>= dst_row + oh) and the first one written */
    int threads;        /* the OpenMP team that runs it */
} fn_pool2;

/* dst = the 2x2 stride-2 max pool of src, as above. */
void fusenet__max_pool2(const fn_pool2 *p, const float *src, float *dst);

#endif
