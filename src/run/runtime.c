/* runtime.c - running a compiled net and reading its outputs. No allocation here. */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "net.h"
#include "ops.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void *value_ptr(fusenet_net *net, int v) {
    fn_value *val = &net->values[v];
    return val->kind == FN_VALUE_ARENA ? (char *)net->arena + val->offset : val->own;
}

/* NaN and Inf inputs are refused: the fused ReLU post-op would turn NaN into
 * 0, giving a finite answer where Keras gives NaN. */
static fusenet_status check_input(const fusenet_tensor *in, fusenet_error *err) {
    size_t per = (size_t)in->h * (size_t)in->w * 3;
    for (int32_t i = 0; i < in->n; i++) {
        const float *p = in->data + per * (size_t)i;
        size_t j = fusenet__first_nonfinite(p, per);
        if (j == per) continue;
        return fusenet__error(err, FUSENET_ERR_VALUE,
                              "fusenet_net_run: image %d of the batch has a non-finite input value (%s at row %zu, "
                              "column %zu, channel %zu)",
                              (int)i, fusenet__nonfinite_name(p[j]), j / 3 / (size_t)in->w,
                              j / 3 % (size_t)in->w, j % 3);
    }
    return FUSENET_OK;
}

/* Hands a compute step's float32 result (its destination, whole buffer) to the calibration. */
static fusenet_status observe(fusenet_net *net, const fn_step *step, fusenet_error *err) {
    dnnl_status_t st = dnnl_stream_wait(net->stream);
    if (st != dnnl_success) return fusenet__dnnl_error(err, st, step->layer, "execution");
    for (int a = 0; a < step->nargs; a++) {
        const fn_arg *arg = &step->args[a];
        if ((arg->kind != DNNL_ARG_DST && arg->kind != DNNL_ARG_TO) || arg->md.data_type != dnnl_f32) continue;
        return fusenet__calib_observe(net->calib, step->model, step->layer,
                                      (const float *)((char *)value_ptr(net, arg->value) + arg->offset),
                                      dnnl_memory_desc_get_size(&arg->md) / sizeof(float), err);
    }
    return FUSENET_OK;
}

/* The bytes step argument `kind` points at in this run. */
static void *arg_ptr(fusenet_net *net, const fn_step *step, int kind, const fusenet_tensor *input) {
    for (int a = 0; a < step->nargs; a++) {
        const fn_arg *arg = &step->args[a];
        if (arg->kind != kind) continue;
        char *base = net->values[arg->value].kind == FN_VALUE_INPUT ? (char *)input->data : value_ptr(net, arg->value);
        return base + arg->offset;
    }
    return NULL;
}

static fusenet_status run_steps(fusenet_net *net, const fusenet_tensor *input, int profile, fusenet_error *err) {
    net->outputs_valid = 0; /* until this run succeeds */
    if (!input) return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "fusenet_net_run: input is NULL");
    if (!input->data) return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "fusenet_net_run: input data is NULL");
    if (input->n != net->batch || input->h != net->in_h || input->w != net->in_w || input->c != 3)
        return fusenet__error(err, FUSENET_ERR_SHAPE, "input is %dx%dx%dx%d (NHWC) but the net was built for %dx%dx%dx3",
                        input->n, input->h, input->w, input->c, net->batch, net->in_h, net->in_w);
    fusenet_status vst = check_input(input, err);
    if (vst != FUSENET_OK) return vst;
    /* Bind the caller's input (read only: no step writes to it). */
    int k = 0;
    for (int s = 0; s < net->n_steps; s++)
        for (int a = 0; a < net->steps[s].nargs; a++, k++)
            if (net->values[net->steps[s].args[a].value].kind == FN_VALUE_INPUT)
                dnnl_memory_set_data_handle(net->mems[k], (char *)input->data + net->steps[s].args[a].offset);
    for (int s = 0; s < net->n_steps; s++) {
        fn_step *step = &net->steps[s];
        double t0 = profile ? now_ms() : 0.0;
        if (step->zero_value >= 0) memset(value_ptr(net, step->zero_value), 0, net->values[step->zero_value].size);
        if (step->tf_resize) {
            fusenet__tf_resize_nhwc(step->nearest, value_ptr(net, step->src_value), step->n, step->ih, step->iw, step->c,
                              value_ptr(net, step->dst_value), step->oh, step->ow);
        } else if (step->own_wino) {
            fusenet__wino_run(&step->wino, arg_ptr(net, step, DNNL_ARG_SRC, input),
                              arg_ptr(net, step, DNNL_ARG_WEIGHTS, input), arg_ptr(net, step, DNNL_ARG_BIAS, input),
                              arg_ptr(net, step, DNNL_ARG_DST, input), arg_ptr(net, step, DNNL_ARG_SCRATCHPAD, input));
        } else if (step->own_pool) {
            fusenet__max_pool_run(&step->pool, arg_ptr(net, step, DNNL_ARG_SRC, input),
                               arg_ptr(net, step, DNNL_ARG_DST, input));
        } else {
            dnnl_status_t st = dnnl_primitive_execute(step->prim, net->stream, step->nargs, step->exec);
            if (st != dnnl_success) return fusenet__dnnl_error(err, st, step->layer, "execution");
        }
        if (profile) {
            dnnl_stream_wait(net->stream);
            step->time_ms += now_ms() - t0;
        }
        if (net->calib && step->kind == FN_STEP_COMPUTE && step->node >= 0) { /* a calibration's own net */
            fusenet_status cst = observe(net, step, err);
            if (cst) return cst;
        }
    }
    dnnl_status_t st = dnnl_stream_wait(net->stream);
    if (st != dnnl_success) return fusenet__dnnl_error(err, st, "-", "stream wait");
    net->outputs_valid = 1;
    return fusenet__ok(err);
}

/* Runs with the net's thread count, whichever thread calls. */
static fusenet_status run(fusenet_net *net, const fusenet_tensor *input, int profile, fusenet_error *err) {
    if (!net) return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "fusenet_net_run: net is NULL");
    int saved = fusenet__threads_enter(net->threads);
    fusenet_status st = run_steps(net, input, profile, err);
    fusenet__threads_leave(saved);
    return st;
}

fusenet_status fusenet_net_run(fusenet_net *net, const fusenet_tensor *input, fusenet_error *err) {
    return run(net, input, net && net->profile, err);
}

/* Outputs are readable only after a successful run: a failed one may have
 * left them half written. */
static fusenet_status check_ran(const fusenet_net *net, const char *what, fusenet_error *err) {
    if (net->outputs_valid) return FUSENET_OK;
    return fusenet__error(err, FUSENET_ERR_INVALID_ARG,
                          "%s: no outputs: the net has not run successfully since it was built or since its last "
                          "failed run",
                          what);
}

static void view(fusenet_net *net, const fn_tap_out *t, fusenet_tensor *out) {
    out->data = value_ptr(net, t->value);
    out->n = t->n;
    out->h = t->h;
    out->w = t->w;
    out->c = t->c;
}

fusenet_status fusenet_net_output(const fusenet_net *net, fusenet_tensor *out, fusenet_error *err) {
    if (!net || !out) return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "fusenet_net_output: %s is NULL", net ? "out" : "net");
    if (!net->fused) return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "the net was built without fuse: no fused map");
    if (check_ran(net, "fusenet_net_output", err)) return FUSENET_ERR_INVALID_ARG;
    view((fusenet_net *)net, &net->out, out);
    return fusenet__ok(err);
}

fusenet_status fusenet_net_tap_output(const fusenet_net *net, size_t i, fusenet_tensor *out, fusenet_error *err) {
    if (!net || !out)
        return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "fusenet_net_tap_output: %s is NULL", net ? "out" : "net");
    if (i >= (size_t)net->n_taps)
        return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "tap index %zu out of range (the net has %d taps)", i,
                        net->n_taps);
    if (check_ran(net, "fusenet_net_tap_output", err)) return FUSENET_ERR_INVALID_ARG;
    view((fusenet_net *)net, &net->taps[i], out);
    return fusenet__ok(err);
}

/* ---- per-step profile ---- */

size_t fusenet_net_step_count(const fusenet_net *net) { return net ? (size_t)net->n_steps : 0; }

fusenet_status fusenet_net_step_info(const fusenet_net *net, size_t i, fusenet_step_info *out, fusenet_error *err) {
    static const fusenet_step_kind kinds[] = {
        [FN_STEP_COMPUTE] = FUSENET_STEP_COMPUTE, [FN_STEP_REORDER] = FUSENET_STEP_REORDER,
        [FN_STEP_TAP] = FUSENET_STEP_TAP,         [FN_STEP_RESIZE] = FUSENET_STEP_RESIZE,
        [FN_STEP_CONCAT] = FUSENET_STEP_CONCAT,
    };
    if (!net || !out)
        return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "fusenet_net_step_info: %s is NULL", net ? "out" : "net");
    if (i >= (size_t)net->n_steps)
        return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "step index %zu out of range (the net has %d steps)", i,
                              net->n_steps);
    const fn_step *s = &net->steps[i];
    out->kind = kinds[s->kind];
    out->kind_name = fusenet__step_kind_name(s->kind);
    out->layer = s->layer;
    out->layer_index = s->node;
    out->first_index = s->node < 0 ? -1 : s->first;
    out->model = s->model;
    out->tap = s->tap;
    out->impl = s->impl;
    out->flops = s->flops;
    out->time_ms = s->time_ms;
    return fusenet__ok(err);
}

fusenet_status fusenet_net_set_profiling(fusenet_net *net, int on, fusenet_error *err) {
    if (!net) return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "fusenet_net_set_profiling: net is NULL");
    if (on != 0 && on != 1)
        return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "fusenet_net_set_profiling: on is %d, not 0 or 1", on);
    if (on)
        for (int s = 0; s < net->n_steps; s++) net->steps[s].time_ms = 0;
    net->profile = on;
    return fusenet__ok(err);
}

size_t fusenet_net_memory_bytes(const fusenet_net *net) {
    if (!net) return 0;
    size_t total = net->arena_size;
    for (int v = 0; v < net->n_values; v++)
        if (net->values[v].kind == FN_VALUE_OWNED) total += net->values[v].size;
    return total;
}

/* ---- threads ---- */

int fusenet__default_threads(void) {
    const char *env = getenv("OMP_NUM_THREADS"); /* "N" or "N,M,..." (nested levels) */
    if (env) {
        char *end;
        long n = strtol(env, &end, 10);
        if (end != env && (*end == '\0' || *end == ',') && n >= 1 && n <= FN_MAX_THREADS) return (int)n;
    }
    int procs = omp_get_num_procs();
    return procs < 1 ? 1 : procs > FN_MAX_THREADS ? FN_MAX_THREADS : procs;
}

/* OpenMP keeps the thread count per calling thread (an ICV): oneDNN reads the
 * caller's when it creates a primitive (which fixes most kernels' team size)
 * and when it runs one. */
int fusenet__threads_enter(int threads) {
    int saved = omp_get_max_threads();
    omp_set_num_threads(threads > 0 ? threads : fusenet__default_threads());
    return saved;
}

void fusenet__threads_leave(int saved) { omp_set_num_threads(saved); }
