/* memplan.h - the activation memory plan: liveness and placement (private).
 *
 * An arena value lives from the first to the last step naming it. Values
 * alive at the same time get disjoint byte ranges of one arena; the others
 * share memory. Placement is best fit by decreasing size: each value takes the
 * lowest offset overlapping no value already placed that is alive at the same
 * time. Only arena values are placed; owned values and the input keep their
 * own buffers.
 */
#ifndef FN_MEMPLAN_H
#define FN_MEMPLAN_H

#include <stddef.h>

#include "fusenet.h"
#include "net.h"
#include "plan.h"

/* first/last of every value: the first and last step naming it (-1 if none). */
void fusenet__memplan_liveness(fn_value *values, int n_values, const fn_step *steps, int n_steps);

/* Sets the offset of every arena value with a live range and *arena_size to
 * the arena's size. NOMEM if the planner's own bookkeeping cannot be allocated. */
fusenet_status fusenet__memplan_place(fn_value *values, int n_values, size_t *arena_size, fusenet_error *err);

/* What one trunk will need, from its plan alone, before anything is
 * allocated (bytes, in double: no overflow for any request). activations:
 * the most bytes of layer outputs alive at one point, a step's output living
 * from the step to the last step reading it, for a batch of `batch` (the
 * arena's lower bound; layouts oneDNN pads and reorders come on top).
 * weights: every live layer's parameters. */
typedef struct fn_mem_estimate {
    double activations, weights;
} fn_mem_estimate;

void fusenet__memplan_estimate(const fn_graph *g, const fn_plan *p, int batch, fn_mem_estimate *e);

/* Micro-batching: the trunk's first chains up to a cut run on micro-batches
 * of fusenet__memplan_micro_images(batch, max_images) images (their steps repeated once per
 * micro-batch, on slices of the input and of the cut's output), the rest on
 * the whole batch. A cut is a chain whose output is
 * the only value of chains 0..cut read after it; every chain up to it computes
 * at least FN_MICRO_MIN_PIXELS output pixels per image (where one image keeps
 * every thread busy, measured: README) and nothing up to it is tapped or a
 * view. Returns the cut minimising the most activation bytes alive at once,
 * or -1 when the micro-batch is the batch or no cut lowers it. *peak (if not
 * NULL): that estimate for the returned cut (or without one). */
#ifndef FN_MICRO_MIN_PIXELS
#define FN_MICRO_MIN_PIXELS (28 * 28)
#endif
/* Images per micro-batch at most: 1, measured no slower than 2 or 4 at batch
 * 8 on a quiet 2-core machine (README, micro-batching); a build may set another. */
#ifndef FN_MICRO_MAX_IMAGES
#define FN_MICRO_MAX_IMAGES 1
#endif
int fusenet__memplan_micro_cut(const fn_graph *g, const fn_plan *p, int batch, int max_images, double *peak);
/* Images per micro-batch: the largest divisor of batch up to max_images. */
int fusenet__memplan_micro_images(int batch, int max_images);

#endif
