/* h5.h - reading (h5.c, on our own parser h5format.c) the Keras weights
 * layouts, and writing (tools/h5write.c, with libhdf5) the legacy one (private).
 *
 * A file is recognised by its content. At open, the resolver of its layout
 * fills a layer table: for each model of the file (the top level, and each
 * nested sub-model), each Keras layer's group and weight dataset paths.
 *  - Legacy (tf.keras 2 save_weights / model.save): attribute `layer_names`
 *    (possibly chunked as layer_names0, layer_names1, ...; possibly under a
 *    `model_weights` group) lists every layer; each layer group has a
 *    `weight_names` attribute listing dataset paths relative to the group
 *    ("conv1_conv/kernel:0" nested, or "block1_conv1_W_1:0" flat). String
 *    attributes may be fixed-length (NUL-padded) or variable-length. A layer
 *    without weights has an empty weight_names (zero-length, any type; an
 *    H5S_NULL or non-string attribute also counts as empty). An entry whose
 *    weight names belong to other layers ("model_weights/resnet50" holding
 *    "conv1_conv/kernel:0", ...) is a nested model: a sub-model whose
 *    weights are matched by role (kernel, bias, gamma, ...), since their order
 *    differs between trainable and frozen saves.
 *  - Keras 3 (.weights.h5, saving_lib.py): layers/<snake_class>[_N]/vars/0..
 *    by order; a `name` attribute on vars (Keras >= 3.6) names the layer,
 *    else fusenet__h5_bind replays Keras' class counters; a layer with a
 *    layers/ group of its own is a nested model (named by its attribute, or
 *    by its shape: a ResNet50-shaped tree is resnet50).
 */
#ifndef FN_H5_H
#define FN_H5_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "fusenet.h"

#define FN_MAX_RANK 4
#define FN_H5_MAX_NAMES 100000   /* entries of layer_names / weight_names */
#define FN_H5_MAX_NAME_LEN 4096  /* bytes of one name */

/* One weight of a layer: what the graph expects, and where its floats go. */
typedef struct fn_wspec {
    const char *role;          /* "kernel", "bias", "gamma", ... for messages */
    int rank;                  /* 1..FN_MAX_RANK */
    int64_t dims[FN_MAX_RANK]; /* Keras layout, e.g. (kh, kw, in, out) */
    float *data;               /* read: destination; write: source */
} fn_wspec;

typedef struct fn_h5 fn_h5; /* an open weights file */

/* Opens `path` read-only and builds the layer table. Nothing in the file is
 * trusted (see h5format.h). IO: missing/unreadable file, a directory, a file
 * locked by a libhdf5 writer; FORMAT: not HDF5, truncated or corrupt, no
 * layer_names; UNSUPPORTED: HDF5 features Keras files do not use. */
FN_CHECKED fusenet_status fusenet__h5_open(const char *path, fn_h5 **out, fusenet_error *err);
void fusenet__h5_close(fn_h5 *f);

const char *fusenet__h5_path(const fn_h5 *f);

/* The nested models the file holds, by Keras name. */
size_t fusenet__h5_submodel_count(const fn_h5 *f);
const char *fusenet__h5_submodel_name(const fn_h5 *f, size_t i);

/* Chooses the model the calls below read: the sub-model `submodel`, or with
 * NULL the top level, unless the top level has no weights of its own and
 * holds sub-models: then its only sub-model (ARCH, listing them, if there are
 * several). A Keras 3 file's own model name (its root vars' name attribute)
 * also names the top level. ARCH for an unknown name, listing the file's sub-models. An open
 * file reads the top level until then. */
FN_CHECKED fusenet_status fusenet__h5_select(fn_h5 *f, const char *submodel, fusenet_error *err);
const char *fusenet__h5_selected(const fn_h5 *f); /* NULL: the top level */

/* Tells a Keras 3 table which layer is which: the model's n layers in
 * model.layers order, with their Keras class names ("Conv2D"). Unnamed
 * groups (Keras 3.0-3.5) get the name of the layer whose class counter they
 * carry (_save_container_state's order); a named group must be of its
 * layer's class (FORMAT otherwise: a lying name); two groups may not name one
 * layer. No-op for legacy files. */
FN_CHECKED fusenet_status fusenet__h5_bind(fn_h5 *f, size_t n, const char *const *names, const char *const *classes,
                                           fusenet_error *err);

/* Keras' naming.to_snake_case of a class name: "ZeroPadding2D" -> "zero_padding2d". */
void fusenet__keras_snake_case(const char *cls, char *out, size_t size);

size_t fusenet__h5_layer_count(const fn_h5 *f);
const char *fusenet__h5_layer_name(const fn_h5 *f, size_t i); /* file order */

/* Number of weights of the layer (legacy: entries of its weight_names; 0
 * for weightless layers). UNKNOWN_LAYER if the model has no such layer. */
FN_CHECKED fusenet_status fusenet__h5_layer_weight_count(fn_h5 *f, const char *layer, size_t *n, fusenet_error *err);

/* Reads the n weights of `layer` (in file order; in a sub-model matched by
 * role: specs[i].role against the weight path's last part without ":0")
 * into specs[i].data,
 * converting any floating-point dtype (float16/32/64, either endianness) to
 * float32. specs[i].data must hold the product of specs[i].dims floats.
 * Checks: the count equals n (ARCH: "FILE: layer L has 3 weights, expected 2
 * (kernel, bias)"), every dataset exists and is floating point (FORMAT
 * otherwise), its rank and dims equal specs[i] (SHAPE: "FILE: layer L weight
 * NAME (role): expected (3,3,64,64), found (3,3,64,32)"), and unless
 * allow_nonfinite every value is finite (VALUE, naming layer, weight, index). */
FN_CHECKED fusenet_status fusenet__h5_read_layer(fn_h5 *f, const char *layer, size_t n, const fn_wspec *specs,
                                                 int allow_nonfinite, fusenet_error *err);

/* One layer to write: its name and its weights (names relative to the group). */
typedef struct fn_h5_layer_out {
    const char *name;
    size_t n;
    const char *const *weight_names; /* n entries */
    const fn_wspec *specs;           /* n entries; data is the source */
} fn_h5_layer_out;

/* Writes a legacy Keras weights file exactly as the official files are laid
 * out: root attributes layer_names (fixed-length NUL-padded strings, chunked
 * into layer_names0, 1, ... beyond 64512 bytes as Keras does), backend
 * "tensorflow", keras_version "2.2.4"; one group per layer, weightless layers
 * included, each with weight_names; float32 datasets, intermediate groups
 * created for nested names; a weightless layer gets a zero-length float64
 * weight_names, as h5py writes an empty list. Replaces `path`; a failed write
 * removes the partial file. INVALID_ARG for bad names or specs, NOMEM, IO otherwise. */
FN_CHECKED fusenet_status fusenet__h5_write(const char *path, const fn_h5_layer_out *layers, size_t n_layers,
                                            fusenet_error *err);

/* Shared by reader and writer: INVALID_ARG unless every spec has rank
 * 1..FN_MAX_RANK, positive dims and data; counts[i] (if counts) gets the
 * element count of specs[i]. */
FN_CHECKED fusenet_status fusenet__h5_check_specs(const char *path, const char *layer, size_t n, const fn_wspec *specs,
                                                  size_t *counts, fusenet_error *err);

/* 1 for a dataset path we neither read nor write: empty, absolute, a trailing
 * or doubled '/', longer than FN_H5_MAX_NAME_LEN. */
int fusenet__h5_bad_name(const char *s);

#endif
