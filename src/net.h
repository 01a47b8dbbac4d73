/* net.h - the compiled net shared by the compiler and the runtime (private).
 *
 * A net is a list of steps run in order. Each step is one oneDNN primitive
 * (or a plain-C resize where oneDNN would pick other pixels than TensorFlow)
 * whose arguments name values: activation buffers placed in one arena by the
 * memory plan, buffers the net owns (weights, tap outputs, the fused map), or
 * the caller's input.
 */
#ifndef FN_NET_H
#define FN_NET_H

#include <oneapi/dnnl/dnnl.h>

#include "fusenet.h"
#include "graph.h"

#define FN_MAX_TAPS 16

typedef enum fn_value_kind {
    FN_VALUE_ARENA, /* placed by the memory plan; lives from first to last use */
    FN_VALUE_OWNED, /* own buffer for the net's lifetime: weights, taps, fused map */
    FN_VALUE_INPUT  /* the caller's input, bound at each run */
} fn_value_kind;

typedef struct fn_value {
    fn_value_kind kind;
    size_t size;
    int first, last; /* steps using it (arena values) */
    size_t offset;   /* in the arena */
    void *own;       /* owned buffer */
} fn_value;

typedef struct fn_arg {
    int kind;  /* DNNL_ARG_* */
    int value; /* index into net->values */
    dnnl_memory_desc_t md;
} fn_arg;

typedef struct fn_step {
    char layer[FN_NAME_MAX]; /* the Keras layer (or "resize"/"concat") it computes */
    char impl[48];           /* oneDNN implementation chosen */
    dnnl_primitive_t prim;   /* NULL: plain-C TensorFlow resize (below) */
    int nargs, cap_args;    /* args and exec hold cap_args entries, sized when the step is added */
    fn_arg *args;
    dnnl_exec_arg_t *exec; /* bound memory objects */
    int zero_value;                    /* >= 0: value cleared before the step (zero padding) */
    /* plain-C resize */
    int tf_resize, nearest, src_value, dst_value;
    int32_t n, ih, iw, c, oh, ow;
    double flops;
    double time_ms; /* accumulated when profiling */
} fn_step;

typedef struct fn_tap_out {
    int value;
    int32_t n, h, w, c;
} fn_tap_out;

struct fusenet_net {
    dnnl_engine_t eng;
    dnnl_stream_t stream;
    fn_value *values;
    int n_values, cap_values;
    fn_step *steps;
    int n_steps, cap_steps;
    dnnl_memory_t *mems; /* every memory object bound to a step */
    int n_mems;
    void *arena;
    size_t arena_size;
    int scratch_value;
    size_t scratch_size;
    size_t weights_bytes;
    int32_t batch, in_h, in_w;
    int n_taps;
    fn_tap_out taps[FN_MAX_TAPS];
    int fused;
    fn_tap_out out;
    int profile;
    int outputs_valid; /* 1 after a successful run; 0 after build and after a failed run */
};

/* fusenet_net_build; with consume, the taps' models belong to the caller, who
 * frees them right after: their raw weights are released as the net takes its
 * own copies, so the two never coexist in memory. */
fusenet_status fusenet__net_build(const fusenet_net_params *params, int consume, fusenet_net **out, fusenet_error *err);

/* Runtime entry used by the benchmark: runs with per-step timing into step->time_ms. */
fusenet_status fusenet__net_run_profiled(fusenet_net *net, const fusenet_tensor *input, fusenet_error *err);

#endif
