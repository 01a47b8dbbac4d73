/* cmd_weights.c - make-weights: a Keras weight file of random values. */
#include <stdint.h>

#include "cli.h"
#include "random_weights.h"

/* ---- make-weights ---- */

int cmd_make_weights(opts *o) {
    if (check_output("--output", o->output)) return 1;
    fusenet_error err;
    if (fusenet__write_random_weights(o->arch, o->top, (uint64_t)o->seed, o->output, &err)) return fail(&err);
    return 0;
}
