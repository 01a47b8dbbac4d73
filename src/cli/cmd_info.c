/* cmd_info.c - version and info: what this build and this CPU offer. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

int cmd_version(opts *o) {
    (void)o;
    printf("fusenet %s\n", fusenet_version());
    return 0;
}

/* "cpu: MODEL NAME (family F, model M)" from Linux's /proc/cpuinfo (first CPU),
 * nothing elsewhere: speeds are only comparable on the same CPU model, and a
 * virtual machine's model name may hide it ("AMD EPYC") where the family and
 * model numbers do not. */
static void print_cpu(void) {
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512], name[256] = "", family[32] = "", model[32] = "";
    while (fgets(line, sizeof line, f) && strcmp(line, "\n") != 0) {
        char *colon = strchr(line, ':');
        if (!colon) continue;
        char *value = colon + 1 + (colon[1] == ' ');
        value[strcspn(value, "\n")] = 0;
        size_t key = (size_t)(colon - line);
        while (key > 0 && (line[key - 1] == ' ' || line[key - 1] == '\t')) key--;
        line[key] = 0;
        if (strcmp(line, "model name") == 0) snprintf(name, sizeof name, "%s", value);
        if (strcmp(line, "cpu family") == 0) snprintf(family, sizeof family, "%s", value);
        if (strcmp(line, "model") == 0) snprintf(model, sizeof model, "%s", value);
    }
    fclose(f);
    if (*name && *family && *model)
        printf("cpu: %s (family %s, model %s)\n", name, family, model);
    else if (*name)
        printf("cpu: %s\n", name);
}

typedef fusenet_status (*measure_fn)(int32_t threads, fusenet_fma_peak *out, fusenet_error *err);

/* "KEY: ISA 1 thread R UNIT, ISA T threads R UNIT": the peak at 1 thread and
 * at `threads`; *last and *isa (when isa is not NULL): the rate at `threads` and the
 * instructions. */
static int print_peak(const char *key, const char *unit, measure_fn measure, int32_t threads, double *last,
                      const char **isa) {
    fusenet_error err;
    printf("%s:", key);
    for (int32_t t = 1; t <= threads; t = t == threads ? t + 1 : threads) {
        fusenet_fma_peak peak;
        if (measure(t, &peak, &err)) return fail(&err);
        printf("%s %s %d thread%s %.1f %s", t > 1 ? "," : "", peak.isa, (int)peak.threads, peak.threads > 1 ? "s" : "",
               peak.gflops, unit);
        *last = peak.gflops;
        if (isa) *isa = peak.isa;
    }
    printf("\n");
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
    print_cpu();
    /* The measured float32 FMA peak at 1 thread and at the default count, then the int8 one. */
    double fma = 0, int8 = 0;
    if (print_peak("fma peak", "GFLOP/s", fusenet_measure_fma_peak, si.default_threads, &fma, NULL)) return 1;
    if (si.int8_mode) {
        const char *isa = NULL;
        if (print_peak("int8 peak", "GOP/s", fusenet_measure_int8_peak, si.default_threads, &int8, &isa)) return 1;
        if (strcmp(isa, "c") != 0) /* oneDNN's instructions, not a C loop's */
            printf("int8 / fma peak: %.2f (what int8 mode can gain on compute at most: the instructions above)\n",
                   fma > 0 ? int8 / fma : 0.0);
    }
    return 0;
}
