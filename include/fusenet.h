/*
 * fusenet.h - the whole public API of libfusenet.
 *
 * libfusenet builds Keras' ResNet50 and VGG16 from their legacy HDF5 weight
 * files, taps the output of any named Keras layer, resizes tapped feature maps
 * to a common height/width and concatenates them on the channel axis, on
 * oneDNN CPU kernels. Tensors are float32, NHWC, dense, C order, as in Keras.
 *
 * The flow:  weights file -> fusenet_model (layer graph + raw weights)
 *            -> fusenet_net_build (prune to taps, fold BN, fuse post-ops,
 *               compile oneDNN primitives, plan memory) -> fusenet_net_run ...
 *
 * Conventions (they hold for every call below unless its comment says otherwise):
 *  - Every fallible call returns a fusenet_status. The last argument `err` is
 *    optional (may be NULL); when given it is cleared on success and filled on
 *    failure with the same status and a one-line message naming the file,
 *    layer, weight, shape or argument at fault. There is no hidden global
 *    "last error" and the library never prints, exits or aborts.
 *  - A NULL params pointer means the documented defaults, what the matching
 *    fusenet_*_default_params() returns, in every call that takes one. Where
 *    the defaults lack something required (a net's taps, the dual's paths)
 *    the call then fails with INVALID_ARG naming it.
 *  - Constructors are all-or-nothing: on failure *out is set to NULL and
 *    nothing is leaked. Whoever creates an object frees it; free functions
 *    accept NULL.
 *  - Thread-safety: a fusenet_model is read-only after it is created or
 *    loaded and may be shared by any number of threads (building nets from it
 *    concurrently is safe). A fusenet_net is used by one thread at a time;
 *    distinct nets may run concurrently.
 *  - Compute threads are a property of the net (fusenet_net_params.threads):
 *    every build and run uses the net's count, whichever thread calls it. The
 *    calling thread's OpenMP setting (omp_set_num_threads) is set for the
 *    duration of the call and restored before it returns.
 */
#ifndef FUSENET_H
#define FUSENET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(FUSENET_SHARED_BUILD)
#define FUSENET_API __attribute__((visibility("default")))
#else
#define FUSENET_API
#endif

/* ---- version ------------------------------------------------------------ */

#define FUSENET_VERSION_MAJOR 0
#define FUSENET_VERSION_MINOR 1
#define FUSENET_VERSION_PATCH 0

/** The library version, "MAJOR.MINOR.PATCH". Static string; thread-safe. */
FUSENET_API const char *fusenet_version(void);

/* ---- errors ------------------------------------------------------------- */

typedef enum fusenet_status {
    FUSENET_OK = 0,
    FUSENET_ERR_INVALID_ARG = 1,   /* NULL or out-of-range argument, bad params */
    FUSENET_ERR_NOMEM = 2,         /* allocation failed, or a size over the limits */
    FUSENET_ERR_IO = 3,            /* cannot open, read or write a file */
    FUSENET_ERR_FORMAT = 4,        /* malformed file: HDF5, .npy or image */
    FUSENET_ERR_ARCH = 5,          /* weights file does not fit the architecture */
    FUSENET_ERR_SHAPE = 6,         /* weight or input shape mismatch */
    FUSENET_ERR_UNKNOWN_LAYER = 7, /* no layer of that name (message suggests names) */
    FUSENET_ERR_UNSUPPORTED = 8,   /* valid request this build cannot serve */
    FUSENET_ERR_BACKEND = 9,       /* oneDNN failed (message: layer and oneDNN status) */
    FUSENET_ERR_VALUE = 10         /* NaN or Inf where a finite number is required */
} fusenet_status;

#define FUSENET_ERROR_MESSAGE_SIZE 512

/** Caller-owned error record. */
typedef struct fusenet_error {
    fusenet_status status;
    char message[FUSENET_ERROR_MESSAGE_SIZE]; /* NUL-terminated, one line */
} fusenet_error;

/** "FUSENET_ERR_IO" etc. Static string; "FUSENET_ERR_?" for unknown values. */
FUSENET_API const char *fusenet_status_name(fusenet_status status);

/* ---- small value types -------------------------------------------------- */

typedef enum fusenet_arch {
    FUSENET_ARCH_RESNET50 = 1,
    FUSENET_ARCH_VGG16 = 2,
    FUSENET_ARCH_RESNET101 = 3,
    FUSENET_ARCH_RESNET152 = 4,
    FUSENET_ARCH_VGG19 = 5
} fusenet_arch;

typedef enum fusenet_pooling {
    FUSENET_POOLING_NONE = 0, /* Keras pooling=None */
    FUSENET_POOLING_AVG = 1,  /* pooling='avg' (include_top = 0 only) */
    FUSENET_POOLING_MAX = 2   /* pooling='max' (include_top = 0 only) */
} fusenet_pooling;

typedef enum fusenet_interp {
    FUSENET_INTERP_BILINEAR = 0, /* half-pixel centres, no antialias (Keras default) */
    FUSENET_INTERP_NEAREST = 1   /* half-pixel centres, floor rule (TensorFlow) */
} fusenet_interp;

typedef enum fusenet_size_policy {
    FUSENET_SIZE_MIN = 0,     /* smallest H and smallest W among the taps (Keras users' choice) */
    FUSENET_SIZE_MAX = 1,     /* largest H and W */
    FUSENET_SIZE_EXPLICIT = 2 /* out_h x out_w given in the params */
} fusenet_size_policy;

typedef enum fusenet_mode {
    FUSENET_MODE_EXACT = 0, /* direct convolutions, ~1e-6 relative to the reference */
    FUSENET_MODE_FAST = 1,  /* Winograd for 3x3 stride-1 convolutions. On AVX-512 CPUs oneDNN's
                               F(4x4, 3x3): about 2x faster, errors up to ~1e-3 of the output's
                               magnitude. On AVX2 CPUs (with FMA) the library's own F(2x2, 3x3)
                               on the float32 convolutions with 8k inputs and 16k outputs: about
                               1.5x faster over ResNet50 + VGG16, errors ~3e-6 of the output's
                               magnitude; Winograd weights take 16/9 the memory. Elsewhere
                               (fusenet_system_info.fast_mode 0) a build asking for it fails
                               with UNSUPPORTED naming the CPU's ISA. */
    FUSENET_MODE_INT8 = 2   /* post-training static int8 quantization on oneDNN's int8 kernels:
                               needs fusenet_net_params.calibration (see "calibration" below).
                               s8 weights with per-output-channel scales, u8 activations after
                               ReLU (s8 where values are signed), residual adds as sum post-ops,
                               max pooling in int8; the input convolution stays fp32 and taps and
                               the fused map are float32 as in the other modes. Errors are those of
                               8-bit arithmetic (README: measured cosines to fp32). Offered where
                               oneDNN has int8 convolutions (fusenet_system_info.int8_mode). */
} fusenet_mode;

/** Which convolutions a FUSENET_MODE_INT8 net runs in int8 (the input
 *  convolutions, ResNet's conv1_conv and VGG's block1_conv1, always stay fp32). */
typedef enum fusenet_int8_layers {
    FUSENET_INT8_AUTO = 0, /* default: as ALL, except that a layer value the calibration measured
                              as too lossy in 8 bits (relative squared error over 1e-3, i.e. an
                              SQNR under 30 dB, on the calibration images; the file flags it)
                              stays float32: its producer writes float32 and the convolutions
                              reading it run fp32 */
    FUSENET_INT8_ALL = 1,  /* every convolution but the input ones */
    FUSENET_INT8_VGG = 2   /* VGG models' convolutions only; ResNet models run fp32 */
} fusenet_int8_layers;

/** How a calibration turns a layer's activation statistics into its int8 range. */
typedef enum fusenet_calib_method {
    FUSENET_CALIB_DEFAULT = 0,    /* the method the calibration was saved with (MSE when built here) */
    FUSENET_CALIB_MINMAX = 1,     /* the largest |value| seen */
    FUSENET_CALIB_PERCENTILE = 2, /* the 99.99th percentile of |value| */
    FUSENET_CALIB_MSE = 3         /* the clipping range minimising the expected squared quantization error
                                     over the histogram of |value| */
} fusenet_calib_method;

/** A dense NHWC float32 view. Never owns its data. */
typedef struct fusenet_tensor {
    float *data;
    int32_t n, h, w, c;
} fusenet_tensor;

/* ---- system ------------------------------------------------------------- */

/** What this build and this CPU offer. Plain data: the strings are static. */
typedef struct fusenet_system_info {
    const char *version;                      /* fusenet_version() */
    int32_t dnnl_major, dnnl_minor, dnnl_patch; /* oneDNN's version (dnnl_version()) */
    const char *dnnl_hash;                    /* oneDNN's git commit */
    const char *isa;         /* the ISA oneDNN dispatches (dnnl_get_effective_cpu_isa), in
                                oneDNN's names: "sse41", "avx2", "avx512_core", "avx512_core_vnni", ... */
    int32_t cores;           /* processors this process may use */
    int32_t default_threads; /* what fusenet_net_params.threads = 0 means: OMP_NUM_THREADS when
                                set, else cores */
    int exact_mode;          /* 1: FUSENET_MODE_EXACT is offered (always) */
    int fast_mode;           /* 1: FUSENET_MODE_FAST is offered (Winograd convolutions: oneDNN's for
                                AVX-512, the library's own for AVX2 with FMA); 0: builds asking for it
                                fail with UNSUPPORTED */
    int int8_mode;           /* 1: FUSENET_MODE_INT8 is offered (oneDNN has u8 x s8 convolutions here) */
    int int8_vnni;           /* 1: the CPU has VNNI (int8 dot products with 32-bit sums): int8 weights use
                                [-127, 127]; 0: [-63, 63], so that oneDNN's 16-bit intermediate sums
                                (vpmaddubsw, AVX2 and AVX-512 without VNNI) cannot saturate */
} fusenet_system_info;

/** Fills *out. Thread-safe; asks oneDNN (creates and frees a CPU engine and a
 *  probe primitive descriptor each call). Statuses: INVALID_ARG (out NULL),
 *  BACKEND, NOMEM (oneDNN's engine). */
FUSENET_API fusenet_status fusenet_get_system_info(fusenet_system_info *out, fusenet_error *err);

/** This CPU's multiply-add peak, measured (the yardstick of `fusenet bench --profile`):
 *  float32 (fusenet_measure_fma_peak) or int8 (fusenet_measure_int8_peak). */
typedef struct fusenet_fma_peak {
    const char *isa; /* the instructions timed, static. float32: the widest both the CPU and
                        oneDNN's dispatch (fusenet_system_info.isa) use, "avx512" (16 lanes),
                        "avx2" (8 lanes, FMA3), or "c" (a plain C loop, as the compiler builds
                        it). int8: those of oneDNN's int8 convolutions at its dispatched level,
                        "avx512_vnni" (vpdpbusd), "avx512", "avx2" or "sse41" (without VNNI:
                        vpmaddubsw, vpmaddwd and vpaddd), or "c" */
    int32_t threads; /* threads that ran the loop at once (resolved: >= 1) */
    double gflops;   /* best of a few rounds, all threads together, in 1e9 operations per
                        second; a multiply-add counts 2 (float32 or u8 x s8 alike) */
} fusenet_fma_peak;

/** Times a loop of independent fused multiply-adds on `threads` threads at once (0: the
 *  default, fusenet_system_info.default_threads), a few rounds of about 20 ms each, and
 *  fills *out with the best round. Each thread is timed by its own CPU time (time on a
 *  core, not waiting for one), so other processes' load lowers it little; on an idle
 *  machine it is the wall-clock rate. Statuses: INVALID_ARG (out NULL, threads outside
 *  0..1024). */
FUSENET_API fusenet_status fusenet_measure_fma_peak(int32_t threads, fusenet_fma_peak *out, fusenet_error *err);

/** The same for int8 multiply-adds (u8 x s8 summed into s32), timed with the instructions
 *  oneDNN's int8 convolutions use at its dispatched ISA (fusenet_fma_peak.isa). Its ratio
 *  to fusenet_measure_fma_peak's bounds what FUSENET_MODE_INT8 can gain on compute: about
 *  4x with AVX-512 VNNI, and without VNNI 1x on a CPU with one vector integer multiplier
 *  (measured 0.97x on an AMD EPYC of family 23, model 49), 2x with two. Threads and
 *  statuses as fusenet_measure_fma_peak's. */
FUSENET_API fusenet_status fusenet_measure_int8_peak(int32_t threads, fusenet_fma_peak *out, fusenet_error *err);

/* ---- model: layer graph + raw weights; immutable, shareable -------------- *
 * Thread-safety: create/load/free one model from one thread; every other call
 * on a model (queries, fusenet_net_build from it) may run from many threads at
 * once. Loads may run concurrently, also of the same file (the weights reader
 * keeps no global state). */

typedef struct fusenet_model fusenet_model;

typedef struct fusenet_model_params {
    fusenet_arch arch;       /* required: FUSENET_ARCH_RESNET50, _VGG16, _RESNET101, _RESNET152, _VGG19 */
    int include_top;         /* 1: Keras include_top=True (global pool/flatten + dense) */
    fusenet_pooling pooling; /* with include_top = 0: Keras pooling= */
    /* If n_needed > 0, a load reads only the weights that these layers depend
     * on (the rest of the graph is kept, without weights, and cannot be
     * tapped). NULL/0: read all weights. The strings are not retained. */
    const char *const *needed_layers;
    size_t n_needed;
    int allow_nonfinite; /* 0 (default): NaN/Inf weights are refused (VALUE); 1: loaded for inspection,
                            but no net is built from them (fusenet_net_build: VALUE) */
    /* The Keras name of the nested model to read, for a file holding a model
     * that contains this network as one layer (the fused model saved with
     * model.save: "resnet50", "vgg16"). NULL: the file's only model, or its
     * top level; a file whose top level has no weights of its own and holds
     * several sub-models then fails with ARCH, listing them. Not retained. */
    const char *submodel;
} fusenet_model_params;

/** Defaults: ResNet50, include_top = 0, pooling NONE, all weights. */
FUSENET_API fusenet_model_params fusenet_model_default_params(void);

/** Creates the graph of a model without weights (enough for listings and
 *  shapes). params NULL: the defaults (ResNet50 without top). *out must be
 *  freed with fusenet_model_free. Statuses: INVALID_ARG, NOMEM. */
FUSENET_API fusenet_status fusenet_model_create(const fusenet_model_params *params,
                                                fusenet_model **out, fusenet_error *err);

/** Loads a model from a Keras weights file, recognised by its content
 *  whatever its name: legacy HDF5 (the official *_notop.h5 and full files,
 *  tf.keras 2 save_weights and model.save, nested sub-models), Keras 3
 *  .weights.h5 (with or without the name attributes of Keras >= 3.6) and
 *  .keras archives (their model.weights.h5: read in place where it is stored,
 *  as Keras writes it, once its CRC-32 matches; inflated into memory where it
 *  is deflated). A file holding
 *  this network as a nested model is read with params->submodel.
 *  Weights are matched by layer name; every shape is checked against the graph.
 *  Older Keras ResNet50 files (deep-learning-models v0.2: bn_conv1,
 *  res2a_branch2a, ... naming) load as ResNet50 under the current layer
 *  names, with their BatchNorm epsilon 1e-3 (models/README.md); mixing both
 *  namings, or such a file as another arch, is ARCH. params NULL: the defaults (ResNet50 without top, all
 *  weights), so a VGG16 file is then refused with ARCH. Statuses: IO, FORMAT,
 *  ARCH, SHAPE, VALUE, NOMEM, INVALID_ARG, UNKNOWN_LAYER (needed_layers). */
FUSENET_API fusenet_status fusenet_model_load(const char *path, const fusenet_model_params *params,
                                              fusenet_model **out, fusenet_error *err);

FUSENET_API void fusenet_model_free(fusenet_model *model);

FUSENET_API fusenet_arch fusenet_model_arch(const fusenet_model *model);

/** Number of layers, the Keras input layer included (175 for ResNet50 notop). */
FUSENET_API size_t fusenet_model_layer_count(const fusenet_model *model);

typedef struct fusenet_layer_info {
    const char *name; /* Keras layer name; valid while the model lives */
    const char *type; /* Keras class name: "Conv2D", "BatchNormalization", ... */
    int32_t h, w, c;  /* output shape for the input size asked; h = w = 0 for flat outputs */
    int64_t params;   /* parameter count as model.summary() gives it */
} fusenet_layer_info;

/** Describes layer `index` (model order) for an in_h x in_w input.
 *  Statuses: INVALID_ARG (NULL, index out of range, a side <= 0), SHAPE (a side
 *  under 32 or over 16384, the networks' limits; with the top: not 224 x 224). */
FUSENET_API fusenet_status fusenet_model_layer_info(const fusenet_model *model, size_t index,
                                                    int32_t in_h, int32_t in_w,
                                                    fusenet_layer_info *out, fusenet_error *err);

/** Index of the layer called `name`. UNKNOWN_LAYER lists the closest names. */
FUSENET_API fusenet_status fusenet_model_find_layer(const fusenet_model *model, const char *name,
                                                    size_t *index, fusenet_error *err);

/* ---- net: pruned, compiled, planned; runs many times -------------------- *
 * Thread-safety: fusenet_net_build, fusenet_build_dual and fusenet_build_files are safe to call from
 * many threads at once. One net is used by one thread at a time (run, outputs,
 * free); different nets run concurrently and give bit-identical results. */

typedef struct fusenet_net fusenet_net;

/** Per-layer activation statistics for FUSENET_MODE_INT8 (see "calibration" below). */
typedef struct fusenet_calibration fusenet_calibration;

/** One requested output: a layer of a model. */
typedef struct fusenet_tap {
    const fusenet_model *model;
    const char *layer;
} fusenet_tap;

typedef struct fusenet_net_params {
    const fusenet_tap *taps; /* 1..16 taps; all models must have weights for them */
    size_t n_taps;
    int32_t batch, in_h, in_w; /* input: batch x in_h x in_w x 3, preprocessed */
    int fuse;                  /* 1: resize taps to one H x W and concatenate on C */
    fusenet_interp resize;
    fusenet_size_policy size;
    int32_t out_h, out_w; /* FUSENET_SIZE_EXPLICIT only */
    fusenet_mode mode;
    /* Compute threads of this net's build and of every run, 0..1024. 0: the
     * default, OMP_NUM_THREADS when the environment sets it, else every core
     * the process may use. */
    int32_t threads;
    /* FUSENET_MODE_INT8 only (ignored otherwise): the statistics of these
     * models and taps (required; read during the build only, so it may be
     * freed after it), and which convolutions run in int8. */
    const fusenet_calibration *calibration;
    fusenet_int8_layers int8_layers;
} fusenet_net_params;

/** Defaults: no taps, batch 1, 224 x 224, fuse = 1, bilinear, SIZE_MIN, exact,
 *  threads 0 (default count), no calibration, int8_layers AUTO. */
FUSENET_API fusenet_net_params fusenet_net_default_params(void);

/** Compiles a net computing the taps (and, with fuse, the fused map). The net
 *  copies what it needs: the models may be freed right after this call.
 *  params NULL: the defaults, which have no taps (INVALID_ARG).
 *  Statuses: INVALID_ARG, UNKNOWN_LAYER, NOMEM, BACKEND, SHAPE (input size;
 *  with fuse, a flat tap such as avg_pool or predictions mixed with a spatial
 *  one: Keras cannot concatenate rank 2 with rank 4; the message names the
 *  flat tap), UNSUPPORTED
 *  (mode fast on a CPU with neither AVX-512 nor AVX2), VALUE (a NaN or Inf weight,
 *  a BatchNorm whose gamma / sqrt(moving_variance + epsilon) is not finite,
 *  or a conv weight that overflows when BatchNorm is folded into it; the
 *  message names the layer).
 *
 *  NaN and Inf are never laundered into plausible answers (a fused ReLU would
 *  turn NaN into 0, where Keras propagates it): nets are built only from
 *  finite weights, fusenet_net_run refuses non-finite inputs, and
 *  fusenet_embed refuses a fused map that overflowed to NaN or Inf. */
FUSENET_API fusenet_status fusenet_net_build(const fusenet_net_params *params, fusenet_net **out,
                                             fusenet_error *err);

typedef struct fusenet_dual_params {
    const char *resnet_weights; /* path of a ResNet50 .h5 (notop or full) */
    const char *vgg_weights;    /* path of a VGG16 .h5 (notop or full) */
    const char *resnet_submodel; /* NULL, or the sub-model of resnet_weights to read (fusenet_model_params.submodel) */
    const char *vgg_submodel;    /* the same for vgg_weights */
    const char *resnet_layer;   /* NULL: "conv4_block6_out" */
    const char *vgg_layer;      /* NULL: "block5_conv3" */
    /* Batch, input size, resize, size policy, out_h x out_w, mode, threads of
     * the fused net, as for fusenet_net_build. The taps are the two layers
     * above: net.taps must stay NULL, net.n_taps 0 and net.fuse 1 (INVALID_ARG). */
    fusenet_net_params net;
} fusenet_dual_params;

/** Defaults: NULL paths (required), default layers, net =
 *  fusenet_net_default_params(). fusenet_build_dual(NULL, ...) therefore fails
 *  with INVALID_ARG naming resnet_weights. */
FUSENET_API fusenet_dual_params fusenet_dual_default_params(void);

/** The one-call product: loads both files (only the weights the taps need)
 *  into models of its own, hands them over to the build, which releases each
 *  layer's raw weights as the net takes its copy and frees the models, and
 *  returns the fused net (ResNet channels first, then VGG). Models passed to
 *  fusenet_net_build are never changed: only these private ones are consumed.
 *  Same statuses as fusenet_model_load and fusenet_net_build. */
FUSENET_API fusenet_status fusenet_build_dual(const fusenet_dual_params *params, fusenet_net **out,
                                              fusenet_error *err);

/** One tap read from a weights file, for fusenet_build_files. */
typedef struct fusenet_file_tap {
    const char *weights;        /* path of the weights file */
    fusenet_model_params model; /* how it is read (arch, include_top, pooling, allow_nonfinite);
                                   needed_layers must stay NULL and n_needed 0: the taps' layers are read */
    const char *layer;          /* the Keras layer tapped */
} fusenet_file_tap;

/** fusenet_build_dual for any taps (1..16, from any architectures): loads
 *  each file once per way of reading it (taps with the same weights path and
 *  the same model params share one model, which reads only the weights of
 *  their layers), hands the models over to the build as fusenet_build_dual
 *  does, and returns the net of `net` (batch, size, fuse, resize, mode,
 *  threads; net NULL: the defaults) with these taps in order. net->taps must
 *  be NULL and net->n_taps 0 (INVALID_ARG). The mode is checked before any
 *  file is read. Same statuses as fusenet_model_load and fusenet_net_build;
 *  fusenet_build_dual gives the same net as the two taps
 *  {resnet_weights, ResNet50, resnet_layer}, {vgg_weights, VGG16, vgg_layer}. */
FUSENET_API fusenet_status fusenet_build_files(const fusenet_file_tap *taps, size_t n_taps,
                                               const fusenet_net_params *net, fusenet_net **out,
                                               fusenet_error *err);

/** Runs the net on `input` (batch x in_h x in_w x 3, NHWC float32, already
 *  preprocessed; read during the call only). Outputs are then readable with
 *  fusenet_net_output / fusenet_net_tap_output. No allocation happens here.
 *  Statuses: INVALID_ARG, SHAPE (input shape differs from the built one), BACKEND,
 *  VALUE (a NaN or Inf input value; the message names the image index and
 *  the position; one pass over the input, under 0.1% of a run). */
FUSENET_API fusenet_status fusenet_net_run(fusenet_net *net, const fusenet_tensor *input,
                                           fusenet_error *err);

/** The fused map (fuse = 1 only). The view stays valid until the next
 *  fusenet_net_run or fusenet_net_free. INVALID_ARG if the net has no fused map,
 *  or has not run successfully since it was built or since its last failed run
 *  (a failed run may leave the outputs half written). */
FUSENET_API fusenet_status fusenet_net_output(const fusenet_net *net, fusenet_tensor *out,
                                              fusenet_error *err);

/** Tap i's own output (before any resize), same lifetime and run rule as above. */
FUSENET_API fusenet_status fusenet_net_tap_output(const fusenet_net *net, size_t i,
                                                  fusenet_tensor *out, fusenet_error *err);

/* ---- per-step profile ----------------------------------------------------- *
 * A net is a list of steps run in order. Same thread rule as fusenet_net_run:
 * the calls below use the net, one thread at a time. */

typedef enum fusenet_step_kind {
    FUSENET_STEP_COMPUTE = 0, /* a layer's oneDNN primitive (BatchNorm, ZeroPadding, ReLU and residual
                                 adds folded into it are not steps of their own) */
    FUSENET_STEP_REORDER = 1, /* a layer's value copied into the memory layout its consumer wants */
    FUSENET_STEP_TAP = 2,     /* a tapped layer's value copied into the tap's output */
    FUSENET_STEP_RESIZE = 3,  /* fuse head: a tap resized to the fused H x W */
    FUSENET_STEP_CONCAT = 4   /* fuse head: the taps concatenated on channels */
} fusenet_step_kind;

typedef struct fusenet_step_info {
    fusenet_step_kind kind;
    const char *kind_name; /* "compute", "reorder", "tap", "resize", "concat"; static */
    /* The Keras layer whose value the step produces (of a folded chain such as
     * conv + BatchNorm + ReLU, the chain's last layer), or "resize" / "concat"
     * for the fuse head. Valid while the net lives. */
    const char *layer;
    int32_t layer_index; /* that layer's index in its model (fusenet_model_layer_info); -1: fuse head */
    int32_t first_index; /* a folded chain's first layer (the conv); = layer_index when nothing folded */
    int32_t model;       /* the layer's model: index among the net's distinct models in tap order; -1: fuse head */
    int32_t tap;         /* the tap (TAP and RESIZE steps); -1 otherwise */
    const char *impl;    /* oneDNN's implementation name ("brg:avx512_core", "jit:avx2", ...) or
                            "tensorflow-rule C" for a resize done in C; valid while the net lives */
    double flops;        /* floating-point operations per run (whole batch); Conv2D and Dense only, else 0 */
    double time_ms;      /* wall time accumulated over the runs since profiling was turned on */
} fusenet_step_info;

/** Number of steps of the net; 0 if net is NULL. */
FUSENET_API size_t fusenet_net_step_count(const fusenet_net *net);

/** Describes step i (run order). Statuses: INVALID_ARG (NULL, i out of range). */
FUSENET_API fusenet_status fusenet_net_step_info(const fusenet_net *net, size_t i, fusenet_step_info *out,
                                                 fusenet_error *err);

/** on = 1: every later run (fusenet_net_run, fusenet_embed, ...) times each
 *  step, waiting for it to finish, which makes runs slightly slower; turning it
 *  on sets every step's time_ms to 0. on = 0 (the default after a build):
 *  runs are not timed and the times stay as they are. Statuses: INVALID_ARG
 *  (NULL net, on not 0 or 1). */
FUSENET_API fusenet_status fusenet_net_set_profiling(fusenet_net *net, int on, fusenet_error *err);

/** Bytes of activation arena, scratchpad and weights held by the net. */
FUSENET_API size_t fusenet_net_memory_bytes(const fusenet_net *net);

FUSENET_API void fusenet_net_free(fusenet_net *net);

/* ---- calibration (FUSENET_MODE_INT8) --------------------------------------- *
 * A calibration holds, for every layer value an int8 net quantizes, statistics
 * of that value over calibration images run in fp32: its minimum, maximum and
 * the |value| thresholds of each fusenet_calib_method. It records what it was
 * made for: per model the architecture, the taps and a 64-bit hash of the
 * weight tensors the net uses; a FUSENET_MODE_INT8 build refuses (INVALID_ARG,
 * one line naming the model) a calibration whose models, taps or weights
 * differ. The input size may differ. The file format is plain text, described
 * in README.md ("Calibration files").
 *
 * Typical use:
 *     fusenet_calibration *cal;
 *     fusenet_calibration_create(&params, &cal, &err);    // params: the taps, mode exact
 *     for each batch: fusenet_calibration_add(cal, &batch, &err);
 *     fusenet_calibration_save(cal, "cal.txt", &err);
 *     fusenet_calibration_free(cal);
 *     ...
 *     fusenet_calibration_load("cal.txt", &cal, &err);
 *     params.mode = FUSENET_MODE_INT8; params.calibration = cal;
 *     fusenet_net_build(&params, &net, &err);            // cal may be freed now
 *
 * Thread-safety: a calibration being built (create / add) is used by one
 * thread at a time; a finished or loaded one is read-only and may be shared
 * by concurrent builds. */

/** Starts a calibration for the net params describe (taps, batch, input
 *  size, threads; mode and calibration are ignored: it runs fp32). Builds an
 *  fp32 net of its own, so the models may be freed after this call.
 *  *out: free with fusenet_calibration_free. Statuses: those of
 *  fusenet_net_build. */
FUSENET_API fusenet_status fusenet_calibration_create(const fusenet_net_params *params, fusenet_calibration **out,
                                                      fusenet_error *err);

/** The same for the dual net fusenet_build_dual builds (its files, layers, batch, input size, threads). */
FUSENET_API fusenet_status fusenet_calibration_create_dual(const fusenet_dual_params *params,
                                                           fusenet_calibration **out, fusenet_error *err);

/** The same for the net fusenet_build_files builds from these taps (net:
 *  its batch, input size, threads; NULL: the defaults; its mode and
 *  calibration are ignored: the calibration net is float32). */
FUSENET_API fusenet_status fusenet_calibration_create_files(const fusenet_file_tap *taps, size_t n_taps,
                                                            const fusenet_net_params *net, fusenet_calibration **out,
                                                            fusenet_error *err);

/** Runs the calibration's fp32 net on one batch (as fusenet_net_run: the
 *  input size of its params; input->n from 1 up to its batch: a smaller
 *  batch is run in spare slots that do not count) and adds every layer
 *  value's statistics. Statuses: those of fusenet_net_run; INVALID_ARG for
 *  a loaded calibration (it has no net). */
FUSENET_API fusenet_status fusenet_calibration_add(fusenet_calibration *cal, const fusenet_tensor *input,
                                                   fusenet_error *err);

/** Images added so far (for a loaded calibration: those it was made from). 0 if cal is NULL. */
FUSENET_API int64_t fusenet_calibration_images(const fusenet_calibration *cal);

/** The method builds use (FUSENET_CALIB_DEFAULT: keep the calibration's own).
 *  Statuses: INVALID_ARG (NULL, unknown method). */
FUSENET_API fusenet_status fusenet_calibration_set_method(fusenet_calibration *cal, fusenet_calib_method method,
                                                          fusenet_error *err);

/** Formats the calibration as the text of a calibration file into buf
 *  (size bytes, NUL-terminated), snprintf-style: *len gets the text's length
 *  without the NUL; call with buf NULL and size 0 to learn it. Needs at
 *  least one image added. Statuses: INVALID_ARG (NULL, no images, buf too
 *  small: *len still says how much is needed). */
FUSENET_API fusenet_status fusenet_calibration_write(const fusenet_calibration *cal, char *buf, size_t size,
                                                     size_t *len, fusenet_error *err);

/** Writes the calibration to path: a new file or a regular file, replaced
 *  whole (a temporary beside it, renamed), never half written. Anything
 *  else at path (a device, FIFO, directory, symbolic link) is refused with
 *  INVALID_ARG and left alone: write such outputs with
 *  fusenet_calibration_write. Needs at least one image added. Statuses:
 *  INVALID_ARG, NOMEM, IO. */
FUSENET_API fusenet_status fusenet_calibration_save(const fusenet_calibration *cal, const char *path,
                                                    fusenet_error *err);

/** Reads a calibration file. *out: free with fusenet_calibration_free.
 *  Statuses: IO, FORMAT (the message names the line and what is wrong),
 *  NOMEM, INVALID_ARG. */
FUSENET_API fusenet_status fusenet_calibration_load(const char *path, fusenet_calibration **out, fusenet_error *err);

/** Parses a calibration held in memory (the bytes of a file). As fusenet_calibration_load. */
FUSENET_API fusenet_status fusenet_calibration_parse(const char *text, size_t len, fusenet_calibration **out,
                                                     fusenet_error *err);

FUSENET_API void fusenet_calibration_free(fusenet_calibration *cal);

/* ---- images ------------------------------------------------------------- *
 * Thread-safety: fusenet_image_load is safe to call from many threads at once. */

typedef struct fusenet_image_params {
    int32_t height, width;     /* network input size; default 224 x 224 */
    fusenet_interp interp;     /* default NEAREST, as keras.utils.load_img */
    int caffe;                 /* 1 (default): RGB->BGR, ImageNet mean subtracted */
    int64_t max_pixels;        /* refuse larger images before decoding; default 100 M; must be > 0 */
} fusenet_image_params;

FUSENET_API fusenet_image_params fusenet_image_default_params(void);

/** Decodes a JPEG or PNG file, converts it to RGB, resizes it to
 *  height x width like keras.utils.load_img(path, target_size=...) and writes
 *  height*width*3 floats (HWC) to dst, "caffe"-preprocessed if asked.
 *  params NULL: fusenet_image_default_params().
 *  Statuses: INVALID_ARG, IO, FORMAT, UNSUPPORTED, NOMEM (over max_pixels). */
FUSENET_API fusenet_status fusenet_image_load(const char *path, const fusenet_image_params *params,
                                              float *dst, fusenet_error *err);

/** The width and height of a JPEG or PNG file, read from its header without
 *  decoding the pixels. Statuses: INVALID_ARG, IO, FORMAT, NOMEM. */
FUSENET_API fusenet_status fusenet_image_size(const char *path, int32_t *width, int32_t *height,
                                              fusenet_error *err);

/* ---- embeddings --------------------------------------------------------- */

/** Length of one embedding: the channel count of the net's fused map (1536
 *  for the default dual taps). 0 if net is NULL or was built without fuse.
 *  Thread-safe (reads the net's fixed shape only). */
FUSENET_API size_t fusenet_embed_dim(const fusenet_net *net);

/** Runs a net built with fuse = 1 on `input` and writes one embedding per
 *  image: the fused map pooled over H and W (pool: FUSENET_POOLING_AVG for the
 *  mean, FUSENET_POOLING_MAX for the maximum), then divided by its L2 norm, so
 *  that the dot product of two embeddings is their cosine similarity. Sums
 *  are accumulated in double. A pooled vector that is all zeros stays zeros.
 *
 *  input: as for fusenet_net_run (input->n must be the net's batch). Images do
 *  not influence each other: to embed fewer images than the batch, fill the
 *  spare slots with anything (zeros) and ignore their rows.
 *  dst: caller-owned, input->n * fusenet_embed_dim(net) floats; row i is image
 *  i. Written only on success.
 *  Like fusenet_net_run: no allocation, one thread at a time per net; the
 *  net's outputs (fusenet_net_output, fusenet_net_tap_output) afterwards hold
 *  this batch's maps.
 *  Statuses: INVALID_ARG (NULL argument, pool NONE, net without fused map),
 *  SHAPE, BACKEND (from fusenet_net_run), VALUE (NaN or Inf in the fused map;
 *  the message names the image index). */
FUSENET_API fusenet_status fusenet_embed(fusenet_net *net, const fusenet_tensor *input, fusenet_pooling pool,
                                         float *dst, fusenet_error *err);

/** Embeds one image file: fusenet_image_load, then fusenet_embed on a batch
 *  of one. The net must have been built with batch 1 and fuse = 1.
 *  params: NULL for fusenet_image_default_params() at the net's input size;
 *  otherwise params->height x params->width must equal the net's input size
 *  (SHAPE). Keep params->caffe = 1 for Keras weights.
 *  dst: caller-owned, fusenet_embed_dim(net) floats; written only on success.
 *  Allocates the decoded image for the duration of the call. Same thread rule
 *  as fusenet_embed. Statuses: those of fusenet_image_load and fusenet_embed;
 *  INVALID_ARG also for a net whose batch is not 1. */
FUSENET_API fusenet_status fusenet_embed_image(fusenet_net *net, const char *path,
                                               const fusenet_image_params *params, fusenet_pooling pool,
                                               float *dst, fusenet_error *err);

#ifdef __cplusplus
}
#endif

#endif /* FUSENET_H */
