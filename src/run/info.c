/* info.c - what this build and this CPU offer: versions, the ISA oneDNN
 * dispatches, thread counts and convolution modes. */
#include <omp.h>
#include <string.h>

#include "error.h"
#include "net.h"
#include "ops.h"

/* oneDNN's names for its ISA levels (dnnl_cpu_isa_t), as DNNL_MAX_CPU_ISA spells them. */
static const struct {
    dnnl_cpu_isa_t isa;
    const char *name;
} isa_names[] = {
    {dnnl_cpu_isa_all, "all"},
    {dnnl_cpu_isa_sse41, "sse41"},
    {dnnl_cpu_isa_avx, "avx"},
    {dnnl_cpu_isa_avx2, "avx2"},
    {dnnl_cpu_isa_avx2_vnni, "avx2_vnni"},
    {dnnl_cpu_isa_avx512_mic, "avx512_mic"},
    {dnnl_cpu_isa_avx512_mic_4ops, "avx512_mic_4ops"},
    {dnnl_cpu_isa_avx512_core, "avx512_core"},
    {dnnl_cpu_isa_avx512_core_vnni, "avx512_core_vnni"},
    {dnnl_cpu_isa_avx512_core_bf16, "avx512_core_bf16"},
    {dnnl_cpu_isa_avx512_core_amx, "avx512_core_amx"},
};

static const char *isa_name(void) {
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    for (size_t i = 0; i < sizeof isa_names / sizeof isa_names[0]; i++)
        if (isa_names[i].isa == isa) return isa_names[i].name;
    return "unknown";
}

/* Asks oneDNN for a Winograd convolution of a shape fast mode uses it for
 * (ResNet50's conv2 3x3: 64 -> 64 channels at 56 x 56, stride 1): 1 if it has
 * one for this CPU. */
static fusenet_status winograd_offered(int *offered, fusenet_error *err) {
    dnnl_engine_t eng;
    dnnl_status_t s = dnnl_engine_create(&eng, dnnl_cpu, 0);
    if (s != dnnl_success) return fusenet__dnnl_error(err, s, "-", "engine creation");
    dnnl_memory_desc_t src, w, b, dst;
    dnnl_dims_t w_dims = {64, 64, 3, 3}, b_dims = {64}, strides = {1, 1}, pad = {1, 1};
    fusenet__md4(&src, 1, 64, 56, 56, dnnl_format_tag_any);
    fusenet__md4(&dst, 1, 64, 56, 56, dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&w, 4, w_dims, dnnl_f32, dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&b, 1, b_dims, dnnl_f32, dnnl_x);
    dnnl_convolution_desc_t cd;
    dnnl_primitive_desc_t pd = NULL;
    *offered = dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_winograd, &src, &w, &b,
                                                  &dst, strides, pad, pad) == dnnl_success &&
               dnnl_primitive_desc_create(&pd, &cd, NULL, eng, NULL) == dnnl_success;
    if (pd) dnnl_primitive_desc_destroy(pd);
    dnnl_engine_destroy(eng);
    return FUSENET_OK;
}

fusenet_status fusenet_get_system_info(fusenet_system_info *out, fusenet_error *err) {
    if (!out) return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "fusenet_get_system_info: out is NULL");
    memset(out, 0, sizeof *out);
    const dnnl_version_t *v = dnnl_version();
    out->version = fusenet_version();
    out->dnnl_major = v->major;
    out->dnnl_minor = v->minor;
    out->dnnl_patch = v->patch;
    out->dnnl_hash = v->hash;
    out->isa = isa_name();
    out->cores = omp_get_num_procs();
    out->default_threads = fusenet__default_threads();
    out->exact_mode = 1;
    fusenet_status st = winograd_offered(&out->fast_mode, err);
    return st ? st : fusenet__ok(err);
}

fusenet_status fusenet__check_mode(fusenet_mode mode, fusenet_error *err) {
    if (mode != FUSENET_MODE_FAST) return FUSENET_OK;
    int offered;
    fusenet_status st = winograd_offered(&offered, err);
    if (st || offered) return st;
    return fusenet__error(err, FUSENET_ERR_UNSUPPORTED,
                          "mode fast needs oneDNN's Winograd convolutions, which it has only for AVX-512 "
                          "(avx512_core); this CPU's ISA is %s: use mode exact",
                          isa_name());
}
