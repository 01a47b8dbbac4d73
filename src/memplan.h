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

/* first/last of every value: the first and last step naming it (-1 if none). */
void fusenet__memplan_liveness(fn_value *values, int n_values, const fn_step *steps, int n_steps);

/* Sets the offset of every arena value with a live range and *arena_size to
 * the arena's size. NOMEM if the planner's own bookkeeping cannot be allocated. */
fusenet_status fusenet__memplan_place(fn_value *values, int n_values, size_t *arena_size, fusenet_error *err);

#endif
