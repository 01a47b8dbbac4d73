/* net.h - the compiled net shared by the compiler and the runtime (private).
 *
 * A net is a list of steps run in order. Each step is one oneDNN primitive
 * (or a plain-C resize where oneDNN would pick other pixels than TensorFlow,
 * or our own Winograd convolution in fast mode where oneDNN has none, or our
 * own max pool where oneDNN's is slow)
 * whose arguments name values: activation buffers placed in one arena by the
 * memory plan, buffers the net owns (weights, tap outputs, the fused map), or
 * the caller's input.
 */
#ifndef FN_NET_H
#define FN_NET_H

#include <oneapi/dnnl/dnnl.h>

#include "fusenet.h"
#include "graph.h"
#include "pool.h"
#include "quant.h"
#include "winograd.h"

#define FN_MAX_TAPS 16
#define FN_MAX_THREADS 1024

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
    size_t offset; /* bytes into the value (an image's slice, micro-batching) */
} fn_arg;

/* What a step is, for tests and profiles. */
typedef enum fn_step_kind {
    FN_STEP_COMPUTE, /* a layer's primitive (with what folded into it) */
    FN_STEP_REORDER, /* a node's value copied into the layout its consumer wants */
    FN_STEP_TAP,     /* a tapped node's value copied into the tap's output buffer */
    FN_STEP_RESIZE,  /* fuse head: a tap resized to the fused size */
    FN_STEP_CONCAT   /* fuse head: the taps concatenated on channels */
} fn_step_kind;

/* "compute", "reorder", "tap", "resize", "concat". */
const char *fusenet__step_kind_name(fn_step_kind kind);

typedef struct fn_step {
    /* Identity, read by tests and the per-step profile (kind, layer, impl,
     * flops, time_ms are what fusenet_net_step_info reports). */
    fn_step_kind kind;
    int model;               /* the step's trunk: index of its model among the net's models in tap order; -1: fuse head */
    int node;                /* graph node whose value the step produces (a fused chain's end); -1: fuse head */
    int first;               /* a fused chain's first node (the conv); = node when nothing folded */
    int tap;                 /* tap index (FN_STEP_TAP, FN_STEP_RESIZE); -1 otherwise */
    char layer[FN_NAME_MAX]; /* the Keras layer of node, or "resize"/"concat" */
    char impl[48];           /* oneDNN implementation chosen, or "tensorflow-rule C" */
    double flops;            /* compute steps of Conv2D and Dense; 0 otherwise */
    double time_ms;          /* accumulated when profiling */
    /* Execution. */
    dnnl_primitive_t prim; /* NULL: plain-C TensorFlow resize (below) */
    int prim_shared;       /* 1: prim belongs to an earlier step (micro-batching repeats steps) */
    int nargs, cap_args;   /* args and exec hold cap_args entries, sized when the step is added */
    fn_arg *args;
    dnnl_exec_arg_t *exec; /* bound memory objects */
    int zero_value;        /* >= 0: value cleared before the step (zero padding) */
    /* plain-C resize */
    int tf_resize, nearest, src_value, dst_value;
    int32_t n, ih, iw, c, oh, ow;
    /* our own Winograd convolution (winograd.h): its arguments are SRC, WEIGHTS
     * (transformed), BIAS, DST and SCRATCHPAD */
    int own_wino;
    fn_wino wino;
    /* our own max pool (pool.h): its arguments are SRC and DST */
    int own_pool;
    fn_pool pool;
} fn_step;

typedef struct fn_tap_out {
    int value;
    int32_t n, h, w, c;
} fn_tap_out;

struct fusenet_net {
    dnnl_engine_t eng;
    dnnl_stream_t stream;
    fn_value *values;
    int n_values;
    size_t cap_values;
    fn_step *steps;
    int n_steps;
    size_t cap_steps;
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
    int profile; /* fusenet_net_set_profiling: runs time each step */
    int outputs_valid; /* 1 after a successful run; 0 after build and after a failed run */
    int threads; /* compute threads of every run (resolved: >= 1) */
    /* What the net was built from, per model in tap order (int8 nets and
     * calibration nets only: hashing the weights costs a pass over them). */
    int n_models;
    fn_calib_model models[FN_MAX_TAPS];
    fusenet_calibration *calib; /* a calibration's own net: every compute step's output is observed */
};

/* fusenet_net_build over models handed over to it: the build owns
 * models[0..n_models) (taps may name them and other models) and frees them
 * before it returns, on success and on failure. Their raw weights are
 * released layer by layer as the net takes its own copies, so the two never
 * coexist in memory; models the caller keeps are only read. */
fusenet_status fusenet__net_build_owned(const fusenet_net_params *params, fusenet_model **models, size_t n_models,
                                        fusenet_net **out, fusenet_error *err);

/* fusenet__net_build_owned (models may be NULL, n_models 0) that also records
 * the identity of its models (net->models: arch, weights hash, taps). */
fusenet_status fusenet__net_build_ident(const fusenet_net_params *params, fusenet_model **models, size_t n_models,
                                        fusenet_net **out, fusenet_error *err);
/* fusenet_build_dual building with fusenet__net_build_ident. */
fusenet_status fusenet__build_dual_ident(const fusenet_dual_params *params, fusenet_net **out, fusenet_error *err);
fusenet_status fusenet__build_files_ident(const fusenet_file_tap *taps, size_t n_taps, const fusenet_net_params *net,
                                          fusenet_net **out, fusenet_error *err);
/* The calibration with its thresholds computed (calib.c). */
const fusenet_calibration *fusenet__calib_ready(const fusenet_calibration *cal);

/* The calling thread's OpenMP thread count becomes `threads` (0: the default)
 * until fusenet__threads_leave(the returned value) restores the caller's. */
int fusenet__threads_enter(int threads);
void fusenet__threads_leave(int saved);
/* OMP_NUM_THREADS when set (1..FN_MAX_THREADS), else the cores the process may use. */
int fusenet__default_threads(void);
/* OK for exact; for fast, UNSUPPORTED (naming the CPU's ISA) where neither oneDNN nor our own
 * kernel (fusenet__fast_own_winograd) has Winograd convolutions; for int8, UNSUPPORTED where
 * oneDNN has no int8 convolutions. */
fusenet_status fusenet__check_mode(fusenet_mode mode, fusenet_error *err);
/* 1 when fast mode runs our own Winograd kernel (winograd.h) rather than oneDNN's: oneDNN
 * has none for this CPU, the CPU has AVX2 and FMA, and oneDNN dispatches at least AVX2 (a
 * DNNL_MAX_CPU_ISA below it is honoured). */
int fusenet__fast_own_winograd(void);

/* Row strips (compile.c) of an int8 trunk's float32 input conv and of a
 * float32 trunk's first conv -> conv -> pool block: how many, or 0 or 1 for
 * none. FN_ROW_STRIPS by default; read by every build, set only by tests
 * (which compare the two paths). */
extern int fusenet__row_strips;

/* 1 (the default): our Winograd kernel takes the 2x2 max pool after a conv into its output
 * transform (compile.c, wino_pool); 0: the pool stays a step of its own. Set only by tests
 * and measurements (which compare the two paths). */
extern int fusenet__wino_fuse_pool;

/* 1 (the default): float32 max pools over nChw8c, nChw16c or nhwc run on our
 * kernel (pool.h; compile.c, own_pool_shape); 0: on oneDNN's. Set only by tests and
 * measurements (which compare the two paths). */
extern int fusenet__own_pool;

#endif
