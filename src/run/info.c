/* info.c - what this build and this CPU offer: versions, the ISA oneDNN
 * dispatches, thread counts, convolution modes and the measured FMA peak. */
#include <omp.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "net.h"
#include "ops.h"

/* oneDNN's names for its ISA levels (dnnl_cpu_isa_t), as DNNL_MAX_CPU_ISA spells them. */
/* fma_lanes: the float32 FMA width of the level's vector instructions (0: no FMA);
 * int8: the int8 peak kernel with the instructions oneDNN's int8 convolutions use at
 * that level (int8_kernels below; NULL: the plain C loop). */
static const struct {
    dnnl_cpu_isa_t isa;
    const char *name;
    int fma_lanes;
    const char *int8;
} isa_names[] = {
    {dnnl_cpu_isa_all, "all", 0, NULL},
    {dnnl_cpu_isa_sse41, "sse41", 0, "sse41"},
    {dnnl_cpu_isa_avx, "avx", 0, "sse41"},
    {dnnl_cpu_isa_avx2, "avx2", 8, "avx2"},
    {dnnl_cpu_isa_avx2_vnni, "avx2_vnni", 8, "avx2"}, /* VEX vpdpbusd: not timed, the AVX2 sequence is */
    {dnnl_cpu_isa_avx512_mic, "avx512_mic", 16, NULL},
    {dnnl_cpu_isa_avx512_mic_4ops, "avx512_mic_4ops", 16, NULL},
    {dnnl_cpu_isa_avx512_core, "avx512_core", 16, "avx512"},
    {dnnl_cpu_isa_avx512_core_vnni, "avx512_core_vnni", 16, "avx512_vnni"},
    {dnnl_cpu_isa_avx512_core_bf16, "avx512_core_bf16", 16, "avx512_vnni"},
    {dnnl_cpu_isa_avx512_core_amx, "avx512_core_amx", 16, "avx512_vnni"},
};

static int isa_row(void) {
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    for (size_t i = 0; i < sizeof isa_names / sizeof isa_names[0]; i++)
        if (isa_names[i].isa == isa) return (int)i;
    return -1;
}

static const char *isa_name(void) {
    int row = isa_row();
    return row < 0 ? "unknown" : isa_names[row].name;
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

/* Whose Winograd convolutions fast mode runs on this CPU: oneDNN's where it has them, else
 * ours where the CPU has AVX2 and FMA and oneDNN dispatches at least AVX2, else none. */
typedef enum fn_fast_kernel { FN_FAST_NONE, FN_FAST_ONEDNN, FN_FAST_OURS } fn_fast_kernel;

static fusenet_status fast_kernel(fn_fast_kernel *out, fusenet_error *err) {
    int onednn = 0;
    fusenet_status st = winograd_offered(&onednn, err);
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    *out = st                                                                               ? FN_FAST_NONE
           : onednn                                                                         ? FN_FAST_ONEDNN
           : fusenet__wino_offered() && (isa & dnnl_cpu_isa_avx2) == dnnl_cpu_isa_avx2 ? FN_FAST_OURS
                                                                                            : FN_FAST_NONE;
    return st;
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
    out->int8_mode = fusenet__int8_offered();
    out->int8_vnni = fusenet__int8_weight_levels() == 127;
    fn_fast_kernel fast;
    fusenet_status st = fast_kernel(&fast, err);
    out->fast_mode = fast != FN_FAST_NONE;
    return st ? st : fusenet__ok(err);
}

int fusenet__fast_own_winograd(void) {
    fn_fast_kernel fast;
    return fast_kernel(&fast, NULL) == FUSENET_OK && fast == FN_FAST_OURS;
}

fusenet_status fusenet__check_mode(fusenet_mode mode, fusenet_error *err) {
    if (mode == FUSENET_MODE_INT8 && !fusenet__int8_offered())
        return fusenet__error(err, FUSENET_ERR_UNSUPPORTED,
                              "mode int8 needs oneDNN's int8 convolutions, which it does not have for this CPU "
                              "(ISA %s): use mode exact",
                              isa_name());
    if (mode != FUSENET_MODE_FAST) return FUSENET_OK;
    fn_fast_kernel fast;
    fusenet_status st = fast_kernel(&fast, err);
    if (st || fast != FN_FAST_NONE) return st;
    return fusenet__error(err, FUSENET_ERR_UNSUPPORTED,
                          "mode fast needs Winograd convolutions: oneDNN's (AVX-512, avx512_core) or ours (AVX2 with "
                          "FMA); this CPU's ISA is %s: use mode exact",
                          isa_name());
}

/* ---- the FMA peak ----
 * Each kernel runs `iters` rounds of a = a * b + c on independent vector
 * accumulators, enough of them to cover the FMA latency of every unit (two
 * units of 4-5 cycles on current x86 cores), and returns a value that depends
 * on all of them. b < 1 keeps the values bounded and normal. The x86 kernels
 * are written in assembly, the accumulators pinned to registers: written in
 * C, how many a compiler keeps in registers depends on its flags (GCC's -O2,
 * CMake's default RelWithDebInfo, kept a 12-vector array in memory and
 * measured a quarter of the -O3 rate, which made every layer of `fusenet
 * bench --profile` run at "200% of the peak"). */
#define FN_PEAK_ACC 12

#if defined(__x86_64__)
#define FN_X86 1
#define FN_FMA_Y(k) "vfmadd213ps %%ymm13, %%ymm12, %%ymm" #k "\n\t"
#define FN_ADD_Y(k) "vaddps %%ymm" #k ", %%ymm0, %%ymm0\n\t"
#define FN_SET_Y(k) "vmovaps %%ymm13, %%ymm" #k "\n\t"
static float fma_avx2(long iters) {
    static const float b = 0.999f, c = 0.001f;
    float out[8];
    __asm__ volatile("vbroadcastss %[b], %%ymm12\n\t"
                     "vbroadcastss %[c], %%ymm13\n\t"
                     FN_SET_Y(0) FN_SET_Y(1) FN_SET_Y(2) FN_SET_Y(3) FN_SET_Y(4) FN_SET_Y(5)
                     FN_SET_Y(6) FN_SET_Y(7) FN_SET_Y(8) FN_SET_Y(9) FN_SET_Y(10) FN_SET_Y(11)
                     "1:\n\t" /* FN_PEAK_ACC (12) independent FMAs a round */
                     FN_FMA_Y(0) FN_FMA_Y(1) FN_FMA_Y(2) FN_FMA_Y(3) FN_FMA_Y(4) FN_FMA_Y(5)
                     FN_FMA_Y(6) FN_FMA_Y(7) FN_FMA_Y(8) FN_FMA_Y(9) FN_FMA_Y(10) FN_FMA_Y(11)
                     "dec %[n]\n\t"
                     "jnz 1b\n\t"
                     FN_ADD_Y(1) FN_ADD_Y(2) FN_ADD_Y(3) FN_ADD_Y(4) FN_ADD_Y(5) FN_ADD_Y(6)
                     FN_ADD_Y(7) FN_ADD_Y(8) FN_ADD_Y(9) FN_ADD_Y(10) FN_ADD_Y(11)
                     "vmovups %%ymm0, %[out]\n\t"
                     "vzeroupper\n\t"
                     : [n] "+r"(iters), [out] "=m"(out)
                     : [b] "m"(b), [c] "m"(c)
                     : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
                       "xmm11", "xmm12", "xmm13", "cc");
    return out[0] + out[7];
}

/* AVX-512: twice the accumulators (zmm0-23), b and c in zmm24 and zmm25. */
#define FN_FMA_Z(k) "vfmadd213ps %%zmm25, %%zmm24, %%zmm" #k "\n\t"
#define FN_ADD_Z(k) "vaddps %%zmm" #k ", %%zmm0, %%zmm0\n\t"
#define FN_SET_Z(k) "vmovaps %%zmm25, %%zmm" #k "\n\t"
__attribute__((target("avx512f"))) static float fma_avx512(long iters) {
    static const float b = 0.999f, c = 0.001f;
    float out[16];
    __asm__ volatile("vbroadcastss %[b], %%zmm24\n\t"
                     "vbroadcastss %[c], %%zmm25\n\t"
                     FN_SET_Z(0) FN_SET_Z(1) FN_SET_Z(2) FN_SET_Z(3) FN_SET_Z(4) FN_SET_Z(5) FN_SET_Z(6) FN_SET_Z(7)
                     FN_SET_Z(8) FN_SET_Z(9) FN_SET_Z(10) FN_SET_Z(11) FN_SET_Z(12) FN_SET_Z(13) FN_SET_Z(14)
                     FN_SET_Z(15) FN_SET_Z(16) FN_SET_Z(17) FN_SET_Z(18) FN_SET_Z(19) FN_SET_Z(20) FN_SET_Z(21)
                     FN_SET_Z(22) FN_SET_Z(23)
                     "1:\n\t" /* 2 x FN_PEAK_ACC (24) independent FMAs a round */
                     FN_FMA_Z(0) FN_FMA_Z(1) FN_FMA_Z(2) FN_FMA_Z(3) FN_FMA_Z(4) FN_FMA_Z(5) FN_FMA_Z(6) FN_FMA_Z(7)
                     FN_FMA_Z(8) FN_FMA_Z(9) FN_FMA_Z(10) FN_FMA_Z(11) FN_FMA_Z(12) FN_FMA_Z(13) FN_FMA_Z(14)
                     FN_FMA_Z(15) FN_FMA_Z(16) FN_FMA_Z(17) FN_FMA_Z(18) FN_FMA_Z(19) FN_FMA_Z(20) FN_FMA_Z(21)
                     FN_FMA_Z(22) FN_FMA_Z(23)
                     "dec %[n]\n\t"
                     "jnz 1b\n\t"
                     FN_ADD_Z(1) FN_ADD_Z(2) FN_ADD_Z(3) FN_ADD_Z(4) FN_ADD_Z(5) FN_ADD_Z(6) FN_ADD_Z(7) FN_ADD_Z(8)
                     FN_ADD_Z(9) FN_ADD_Z(10) FN_ADD_Z(11) FN_ADD_Z(12) FN_ADD_Z(13) FN_ADD_Z(14) FN_ADD_Z(15)
                     FN_ADD_Z(16) FN_ADD_Z(17) FN_ADD_Z(18) FN_ADD_Z(19) FN_ADD_Z(20) FN_ADD_Z(21) FN_ADD_Z(22)
                     FN_ADD_Z(23)
                     "vmovups %%zmm0, %[out]\n\t"
                     "vzeroupper\n\t"
                     : [n] "+r"(iters), [out] "=m"(out)
                     : [b] "m"(b), [c] "m"(c)
                     : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
                       "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19", "xmm20",
                       "xmm21", "xmm22", "xmm23", "xmm24", "xmm25", "cc");
    float sum = 0.0f;
    for (int k = 0; k < 16; k++) sum += out[k];
    return sum;
}
#endif

static float fma_c(long iters) {
    float a[4 * FN_PEAK_ACC], out = 0.0f;
    for (int k = 0; k < 4 * FN_PEAK_ACC; k++) a[k] = (float)k;
    for (long i = 0; i < iters; i++)
        for (int k = 0; k < 4 * FN_PEAK_ACC; k++) a[k] = a[k] * 0.999f + 0.001f;
    for (int k = 0; k < 4 * FN_PEAK_ACC; k++) out += a[k];
    return out;
}

/* ---- the int8 peak ----
 * The instructions oneDNN's int8 convolutions (jit_uni_x8s8s32x, jit_avx512_core_x8s8s32x)
 * multiply-add with, timed the same way: without VNNI, vpmaddubsw (u8 x s8 products summed in
 * pairs into saturating s16), vpmaddwd by 16-bit ones (pairs of s16 summed into s32) and vpaddd
 * into the accumulator, i.e. 16 (SSE4.1), 32 (AVX2) or 64 (AVX-512) multiply-adds in 3
 * instructions; with
 * VNNI, one vpdpbusd (4 products summed into each s32 lane: 64 multiply-adds). On a CPU with
 * one vector integer multiplier this runs at the float32 FMA rate, not twice it (measured on
 * an AMD EPYC of family 23, model 49: 0.97x), which bounds what int8 gains there. A
 * multiply-add counts 2 operations, as in float32. */
static const int32_t fn_one16 = 0x00010001, fn_one8 = 0x01010101;
#ifdef FN_X86
#define FN_I8_Y(t, a)                                                                                                 \
    "vpmaddubsw %%ymm15, %%ymm14, %%ymm" #t "\n\t"                                                                    \
    "vpmaddwd %%ymm13, %%ymm" #t ", %%ymm" #t "\n\t"                                                                  \
    "vpaddd %%ymm" #t ", %%ymm" #a ", %%ymm" #a "\n\t"
#define FN_SUM_Y(k) "vpaddd %%ymm" #k ", %%ymm0, %%ymm0\n\t"
#define FN_INT8_AVX2_CHAINS 6
static float int8_avx2(long iters) {
    int32_t out[8];
    __asm__ volatile("vpbroadcastd %[w16], %%ymm13\n\t"
                     "vpbroadcastd %[w8], %%ymm14\n\t"
                     "vpbroadcastd %[w8], %%ymm15\n\t"
                     "vpxor %%ymm0, %%ymm0, %%ymm0\n\t"
                     "vpxor %%ymm7, %%ymm7, %%ymm7\n\t"
                     "vpxor %%ymm8, %%ymm8, %%ymm8\n\t"
                     "vpxor %%ymm9, %%ymm9, %%ymm9\n\t"
                     "vpxor %%ymm10, %%ymm10, %%ymm10\n\t"
                     "vpxor %%ymm11, %%ymm11, %%ymm11\n\t"
                     "vpxor %%ymm12, %%ymm12, %%ymm12\n\t"
                     "1:\n\t" /* FN_INT8_AVX2_CHAINS (6) independent chains a round */
                     FN_I8_Y(1, 7) FN_I8_Y(2, 8) FN_I8_Y(3, 9) FN_I8_Y(4, 10) FN_I8_Y(5, 11) FN_I8_Y(6, 12)
                     "dec %[n]\n\t"
                     "jnz 1b\n\t"
                     FN_SUM_Y(7) FN_SUM_Y(8) FN_SUM_Y(9) FN_SUM_Y(10) FN_SUM_Y(11) FN_SUM_Y(12)
                     "vmovdqu %%ymm0, %[out]\n\t"
                     "vzeroupper\n\t"
                     : [n] "+r"(iters), [out] "=m"(out)
                     : [w16] "m"(fn_one16), [w8] "m"(fn_one8)
                     : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
                       "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "cc");
    return (float)out[0] + (float)out[7];
}

/* SSE4.1: the same sequence on xmm in legacy (destructive) encodings, a copy first. */
#define FN_I8_X(t, a)                                                                                                 \
    "movdqa %%xmm14, %%xmm" #t "\n\t"                                                                                \
    "pmaddubsw %%xmm15, %%xmm" #t "\n\t"                                                                             \
    "pmaddwd %%xmm13, %%xmm" #t "\n\t"                                                                               \
    "paddd %%xmm" #t ", %%xmm" #a "\n\t"
#define FN_SUM_X(k) "paddd %%xmm" #k ", %%xmm0\n\t"
static float int8_sse41(long iters) {
    int32_t out[4];
    __asm__ volatile("movd %[w16], %%xmm13\n\t"
                     "pshufd $0, %%xmm13, %%xmm13\n\t"
                     "movd %[w8], %%xmm14\n\t"
                     "pshufd $0, %%xmm14, %%xmm14\n\t"
                     "movdqa %%xmm14, %%xmm15\n\t"
                     "pxor %%xmm0, %%xmm0\n\t"
                     "pxor %%xmm7, %%xmm7\n\t"
                     "pxor %%xmm8, %%xmm8\n\t"
                     "pxor %%xmm9, %%xmm9\n\t"
                     "pxor %%xmm10, %%xmm10\n\t"
                     "pxor %%xmm11, %%xmm11\n\t"
                     "pxor %%xmm12, %%xmm12\n\t"
                     "1:\n\t" /* FN_INT8_AVX2_CHAINS (6) chains, as on AVX2 */
                     FN_I8_X(1, 7) FN_I8_X(2, 8) FN_I8_X(3, 9) FN_I8_X(4, 10) FN_I8_X(5, 11) FN_I8_X(6, 12)
                     "dec %[n]\n\t"
                     "jnz 1b\n\t"
                     FN_SUM_X(7) FN_SUM_X(8) FN_SUM_X(9) FN_SUM_X(10) FN_SUM_X(11) FN_SUM_X(12)
                     "movdqu %%xmm0, %[out]\n\t"
                     : [n] "+r"(iters), [out] "=m"(out)
                     : [w16] "m"(fn_one16), [w8] "m"(fn_one8)
                     : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
                       "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "cc");
    return (float)out[0] + (float)out[3];
}

/* AVX-512 without VNNI: the same sequence on zmm, 12 chains (zmm1-12 products, zmm13-24 sums). */
#define FN_I8_Z(t, a)                                                                                                 \
    "vpmaddubsw %%zmm31, %%zmm30, %%zmm" #t "\n\t"                                                                    \
    "vpmaddwd %%zmm29, %%zmm" #t ", %%zmm" #t "\n\t"                                                                  \
    "vpaddd %%zmm" #t ", %%zmm" #a ", %%zmm" #a "\n\t"
#define FN_ZERO_Z(k) "vpxord %%zmm" #k ", %%zmm" #k ", %%zmm" #k "\n\t"
#define FN_SUM_Z(k) "vpaddd %%zmm" #k ", %%zmm0, %%zmm0\n\t"
#define FN_INT8_AVX512_CHAINS 12
__attribute__((target("avx512f,avx512bw"))) static float int8_avx512(long iters) {
    int32_t out[16];
    __asm__ volatile("vpbroadcastd %[w16], %%zmm29\n\t"
                     "vpbroadcastd %[w8], %%zmm30\n\t"
                     "vpbroadcastd %[w8], %%zmm31\n\t"
                     FN_ZERO_Z(0) FN_ZERO_Z(13) FN_ZERO_Z(14) FN_ZERO_Z(15) FN_ZERO_Z(16) FN_ZERO_Z(17)
                     FN_ZERO_Z(18) FN_ZERO_Z(19) FN_ZERO_Z(20) FN_ZERO_Z(21) FN_ZERO_Z(22) FN_ZERO_Z(23)
                     FN_ZERO_Z(24)
                     "1:\n\t"
                     FN_I8_Z(1, 13) FN_I8_Z(2, 14) FN_I8_Z(3, 15) FN_I8_Z(4, 16) FN_I8_Z(5, 17) FN_I8_Z(6, 18)
                     FN_I8_Z(7, 19) FN_I8_Z(8, 20) FN_I8_Z(9, 21) FN_I8_Z(10, 22) FN_I8_Z(11, 23) FN_I8_Z(12, 24)
                     "dec %[n]\n\t"
                     "jnz 1b\n\t"
                     FN_SUM_Z(13) FN_SUM_Z(14) FN_SUM_Z(15) FN_SUM_Z(16) FN_SUM_Z(17) FN_SUM_Z(18)
                     FN_SUM_Z(19) FN_SUM_Z(20) FN_SUM_Z(21) FN_SUM_Z(22) FN_SUM_Z(23) FN_SUM_Z(24)
                     "vmovdqu32 %%zmm0, %[out]\n\t"
                     "vzeroupper\n\t"
                     : [n] "+r"(iters), [out] "=m"(out)
                     : [w16] "m"(fn_one16), [w8] "m"(fn_one8)
                     : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
                       "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19", "xmm20",
                       "xmm21", "xmm22", "xmm23", "xmm24", "xmm29", "xmm30", "xmm31", "cc");
    return (float)out[0] + (float)out[15];
}

/* AVX-512 VNNI: one vpdpbusd a chain, 24 chains (zmm0-23), as the float32 kernel's FMAs. */
#define FN_DP_Z(k) "vpdpbusd %%zmm31, %%zmm30, %%zmm" #k "\n\t"
#define FN_INT8_VNNI_CHAINS 24
__attribute__((target("avx512f,avx512vnni"))) static float int8_avx512_vnni(long iters) {
    int32_t out[16];
    __asm__ volatile("vpbroadcastd %[w8], %%zmm30\n\t"
                     "vpbroadcastd %[w8], %%zmm31\n\t"
                     FN_ZERO_Z(0) FN_ZERO_Z(1) FN_ZERO_Z(2) FN_ZERO_Z(3) FN_ZERO_Z(4) FN_ZERO_Z(5) FN_ZERO_Z(6)
                     FN_ZERO_Z(7) FN_ZERO_Z(8) FN_ZERO_Z(9) FN_ZERO_Z(10) FN_ZERO_Z(11) FN_ZERO_Z(12)
                     FN_ZERO_Z(13) FN_ZERO_Z(14) FN_ZERO_Z(15) FN_ZERO_Z(16) FN_ZERO_Z(17) FN_ZERO_Z(18)
                     FN_ZERO_Z(19) FN_ZERO_Z(20) FN_ZERO_Z(21) FN_ZERO_Z(22) FN_ZERO_Z(23)
                     "1:\n\t"
                     FN_DP_Z(0) FN_DP_Z(1) FN_DP_Z(2) FN_DP_Z(3) FN_DP_Z(4) FN_DP_Z(5) FN_DP_Z(6) FN_DP_Z(7)
                     FN_DP_Z(8) FN_DP_Z(9) FN_DP_Z(10) FN_DP_Z(11) FN_DP_Z(12) FN_DP_Z(13) FN_DP_Z(14)
                     FN_DP_Z(15) FN_DP_Z(16) FN_DP_Z(17) FN_DP_Z(18) FN_DP_Z(19) FN_DP_Z(20) FN_DP_Z(21)
                     FN_DP_Z(22) FN_DP_Z(23)
                     "dec %[n]\n\t"
                     "jnz 1b\n\t"
                     FN_SUM_Z(1) FN_SUM_Z(2) FN_SUM_Z(3) FN_SUM_Z(4) FN_SUM_Z(5) FN_SUM_Z(6) FN_SUM_Z(7)
                     FN_SUM_Z(8) FN_SUM_Z(9) FN_SUM_Z(10) FN_SUM_Z(11) FN_SUM_Z(12) FN_SUM_Z(13) FN_SUM_Z(14)
                     FN_SUM_Z(15) FN_SUM_Z(16) FN_SUM_Z(17) FN_SUM_Z(18) FN_SUM_Z(19) FN_SUM_Z(20)
                     FN_SUM_Z(21) FN_SUM_Z(22) FN_SUM_Z(23)
                     "vmovdqu32 %%zmm0, %[out]\n\t"
                     "vzeroupper\n\t"
                     : [n] "+r"(iters), [out] "=m"(out)
                     : [w8] "m"(fn_one8)
                     : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
                       "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19", "xmm20",
                       "xmm21", "xmm22", "xmm23", "xmm30", "xmm31", "cc");
    return (float)out[0] + (float)out[15];
}
#endif

/* u8 x s8 products summed into s32, as the compiler builds the loop. */
#define FN_INT8_C_LANES 64
static float int8_c(long iters) {
    uint8_t a[FN_INT8_C_LANES];
    int8_t b[FN_INT8_C_LANES];
    int32_t acc[FN_INT8_C_LANES] = {0};
    for (int k = 0; k < FN_INT8_C_LANES; k++) {
        a[k] = (uint8_t)(k + 1);
        b[k] = (int8_t)(k - 32);
    }
    for (long i = 0; i < iters; i++) {
        for (int k = 0; k < FN_INT8_C_LANES; k++) acc[k] += (int32_t)a[k] * (int32_t)b[k];
        a[i & (FN_INT8_C_LANES - 1)]++; /* the products change: the loop cannot be folded */
    }
    int32_t out = 0;
    for (int k = 0; k < FN_INT8_C_LANES; k++) out += acc[k];
    return (float)out;
}

/* One row per kernel: its name, the operations of one iteration (a multiply-add
 * counts 2), the CPU features it needs and, for the float32 ones, the lanes of
 * the oneDNN level that uses it (int8 ones are named by isa_names' int8). */
typedef float (*peak_kernel)(long iters);
typedef struct peak_row {
    const char *name;
    peak_kernel run;
    double ops_per_iter;
    int lanes;
    const char *needs[3]; /* __builtin_cpu_supports names, all needed */
} peak_row;
static const peak_row fma_kernels[] = {
#ifdef FN_X86
    {"avx512", fma_avx512, 2.0 * 16 * 2 * FN_PEAK_ACC, 16, {"avx512f"}},
    {"avx2", fma_avx2, 2.0 * 8 * FN_PEAK_ACC, 8, {"avx2", "fma"}},
#endif
    {"c", fma_c, 2.0 * 4 * FN_PEAK_ACC, 0, {NULL}},
};
static const peak_row int8_kernels[] = {
#ifdef FN_X86
    {"avx512_vnni", int8_avx512_vnni, 2.0 * 64 * FN_INT8_VNNI_CHAINS, 16, {"avx512f", "avx512vnni"}},
    {"avx512", int8_avx512, 2.0 * 64 * FN_INT8_AVX512_CHAINS, 16, {"avx512f", "avx512bw"}},
    {"avx2", int8_avx2, 2.0 * 32 * FN_INT8_AVX2_CHAINS, 8, {"avx2"}},
    {"sse41", int8_sse41, 2.0 * 16 * FN_INT8_AVX2_CHAINS, 4, {"sse4.1"}},
#endif
    {"c", int8_c, 2.0 * FN_INT8_C_LANES, 0, {NULL}},
};

static int cpu_has(const peak_row *k) {
    for (int i = 0; i < 3 && k->needs[i]; i++) {
#ifdef FN_X86
        /* __builtin_cpu_supports takes only string literals: one branch per name used above */
        const char *f = k->needs[i];
        int has = strcmp(f, "avx512f") == 0      ? __builtin_cpu_supports("avx512f")
                  : strcmp(f, "avx512bw") == 0   ? __builtin_cpu_supports("avx512bw")
                  : strcmp(f, "avx512vnni") == 0 ? __builtin_cpu_supports("avx512vnni")
                  : strcmp(f, "avx2") == 0       ? __builtin_cpu_supports("avx2")
                  : strcmp(f, "fma") == 0        ? __builtin_cpu_supports("fma")
                  : strcmp(f, "sse4.1") == 0     ? __builtin_cpu_supports("sse4.1")
                                                 : 0;
        if (!has) return 0;
#else
        return 0;
#endif
    }
    return 1;
}

static double thread_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* `threads` threads each run iters iterations at once; returns the most CPU
 * time one of them took (time on a core, not time waiting for one: what the
 * cores do, whatever else the machine runs; on an idle machine the wall time).
 * *team: the threads OpenMP gave. */
static double fma_round(peak_kernel run, long iters, int threads, int *team) {
    volatile float sink = 0.0f;
    double slowest = 0.0;
#pragma omp parallel num_threads(threads)
    {
        double t0 = thread_seconds();
        float r = run(iters);
        double t = thread_seconds() - t0;
#pragma omp critical
        {
            sink += r;
            if (t > slowest) slowest = t;
        }
#pragma omp single
        *team = omp_get_num_threads();
    }
    (void)sink;
    return slowest;
}

/* Times kernel k on `threads` threads: a warm-up round, then 5 rounds of about
 * 20 ms; fills *out with the best. */
static fusenet_status measure_peak(const char *fn, const peak_row *k, int32_t threads, fusenet_fma_peak *out,
                                   fusenet_error *err) {
    if (!out) return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "%s: out is NULL", fn);
    if (threads < 0 || threads > FN_MAX_THREADS)
        return fusenet__error(err, FUSENET_ERR_INVALID_ARG, "%s: threads %d outside 0..%d", fn, (int)threads,
                              FN_MAX_THREADS);
    if (threads == 0) threads = fusenet__default_threads();
    int team = threads;
    long iters = 100000;
    double s = fma_round(k->run, iters, threads, &team), best = 0.0;
    for (int round = 0; round < 5; round++) {
        iters = (long)((double)iters * 0.02 / (s > 1e-6 ? s : 1e-6));
        if (iters < 1000) iters = 1000;
        s = fma_round(k->run, iters, threads, &team);
        double gflops = k->ops_per_iter * (double)iters * team / s / 1e9;
        if (gflops > best) best = gflops;
    }
    out->isa = k->name;
    out->threads = team;
    out->gflops = best;
    return fusenet__ok(err);
}

fusenet_status fusenet_measure_fma_peak(int32_t threads, fusenet_fma_peak *out, fusenet_error *err) {
    int row = isa_row(), lanes = row < 0 ? 0 : isa_names[row].fma_lanes;
    size_t k = 0; /* the widest kernel both oneDNN's level and the CPU have */
    while (fma_kernels[k].lanes > lanes || !cpu_has(&fma_kernels[k])) k++;
    return measure_peak("fusenet_measure_fma_peak", &fma_kernels[k], threads, out, err);
}

fusenet_status fusenet_measure_int8_peak(int32_t threads, fusenet_fma_peak *out, fusenet_error *err) {
    int row = isa_row();
    const char *name = row < 0 || !isa_names[row].int8 ? "c" : isa_names[row].int8;
    size_t k = 0; /* oneDNN's level's instructions, where the CPU has them; else the C loop */
    while (strcmp(int8_kernels[k].name, "c") != 0 && (strcmp(int8_kernels[k].name, name) != 0 || !cpu_has(&int8_kernels[k])))
        k++;
    return measure_peak("fusenet_measure_int8_peak", &int8_kernels[k], threads, out, err);
}
