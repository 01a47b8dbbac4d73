/* cmd_info.c - version and info: what this build and this CPU offer. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

int cmd_version(opts *o) {
    (void)o;
    printf("fusenet %s\n", fusenet_version());
    return 0;
}

/* One "key: value" line each (fusenet_get_system_info). */
int cmd_info(opts *o) {
    (void)o;
    fusenet_system_info si;
    fusenet_error err;
    if (fusenet_get_system_info(&si, &err)) return fail(&err);
    printf("version: %s\n", si.version);
    /* a distribution's build of oneDNN records no commit: its hash is "N/A" */
    int has_hash = si.dnnl_hash && *si.dnnl_hash && strcmp(si.dnnl_hash, "N/A") != 0;
    printf("onednn: %d.%d.%d%s%s%s\n", si.dnnl_major, si.dnnl_minor, si.dnnl_patch, has_hash ? " (commit " : "",
           has_hash ? si.dnnl_hash : "", has_hash ? ")" : "");
    printf("isa: %s\n", si.isa);
    printf("cores: %d\n", si.cores);
    printf("threads: %d\n", si.default_threads);
    printf("modes: %s%s%s%s\n", si.exact_mode ? "exact" : "", si.exact_mode && si.fast_mode ? " " : "",
           si.fast_mode ? "fast" : "", si.int8_mode ? " int8" : "");
    if (si.int8_mode)
        printf("int8: weights in [-%d, %d] (%s)\n", si.int8_vnni ? 127 : 63, si.int8_vnni ? 127 : 63,
               si.int8_vnni ? "VNNI: 32-bit sums" : "no VNNI: 7 bits, so that 16-bit intermediate sums cannot saturate");
    if (!si.fast_mode)
        printf("fast mode: not offered: it needs Winograd convolutions, oneDNN's (AVX-512) or the library's own "
               "(AVX2 with FMA); this CPU's ISA is %s\n",
               si.isa);
    /* The measured float32 FMA peak at 1 thread and at the default count (fusenet_measure_fma_peak). */
    printf("fma peak:");
    for (int32_t t = 1; t <= si.default_threads; t = t == si.default_threads ? t + 1 : si.default_threads) {
        fusenet_fma_peak peak;
        if (fusenet_measure_fma_peak(t, &peak, &err)) return fail(&err);
        printf("%s %s %d thread%s %.1f GFLOP/s", t > 1 ? "," : "", peak.isa, (int)peak.threads,
               peak.threads > 1 ? "s" : "", peak.gflops);
    }
    printf("\n");
    return 0;
}
