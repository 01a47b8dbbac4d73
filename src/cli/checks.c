/* checks.c - what every command checks before any work and after every run:
 * outputs writable and none of them an input, sizes within the limits (with
 * the memory they would need, naming the option), text inputs read with a cap,
 * no non-finite value in a result; and interrupted runs (SIGINT, SIGTERM,
 * SIGHUP) removing their temporaries. */
#define _DEFAULT_SOURCE /* realpath */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "file.h"

/* ---- outputs ---- */

int check_output(const char *option, const char *path) {
    fusenet_error err;
    if (path && fusenet__output_check(path, option, &err)) return fail(&err);
    return 0;
}

/* The path a new file would get: its directory resolved, then its name. */
static int resolved(const char *path, char *out) {
    const char *slash = strrchr(path, '/');
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 1, slash ? (slash == path ? "/" : path) : ".");
    char real[PATH_MAX];
    if (!realpath(dir, real)) return 0;
    return snprintf(out, PATH_MAX, "%s/%s", real, slash ? slash + 1 : path) < PATH_MAX;
}

int check_not_input(const char *out_option, const char *out, const char *in_option, const char *in) {
    if (!out || !in) return 0;
    char a[PATH_MAX], b[PATH_MAX];
    if (fusenet__same_file(out, in) || (resolved(out, a) && resolved(in, b) && strcmp(a, b) == 0))
        return die("%s %s and %s %s are the same file: an output never replaces an input or another output",
                   out_option, out, in_option, in);
    return 0;
}

/* ---- sizes ---- */

int check_bytes(double bytes, double limit, const char *fmt, ...) {
    if (bytes <= limit) return 0;
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return die("%s would need %.1f GiB (limit %.0f GiB)", what, bytes / (1 << 30), limit / (1 << 30));
}

/* ---- text inputs ---- */

int read_text(const char *path, size_t max_bytes, char **buf, size_t *len) {
    fusenet_error err;
    if (fusenet__read_file(path, max_bytes, buf, len, &err)) return fail(&err);
    return 0;
}

/* ---- results ---- */

int find_non_finite(const float *data, size_t n, size_t *at) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(data[i])) {
            *at = i;
            return 1;
        }
    return 0;
}

const char *value_name(float v) { return isnan(v) ? "NaN" : v > 0 ? "+Inf" : "-Inf"; }

/* ---- interrupted runs ---- */

static const struct {
    int sig;
    const char *message;
} interrupts[] = {
    {SIGINT, "fusenet: interrupted (SIGINT); temporary files removed\n"},
    {SIGTERM, "fusenet: interrupted (SIGTERM); temporary files removed\n"},
    {SIGHUP, "fusenet: interrupted (SIGHUP); temporary files removed\n"},
};

/* Async-signal-safe: unlink, write, _exit. */
static void on_interrupt(int sig) {
    fusenet__temp_remove_all();
    for (size_t i = 0; i < sizeof interrupts / sizeof *interrupts; i++)
        if (interrupts[i].sig == sig) {
            const char *m = interrupts[i].message;
            size_t n = 0;
            while (m[n]) n++;
            ssize_t w = write(STDERR_FILENO, m, n);
            (void)w;
        }
    _exit(128 + sig);
}

void catch_interrupts(void) {
    for (size_t i = 0; i < sizeof interrupts / sizeof *interrupts; i++) {
        struct sigaction old, sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_interrupt;
        sigfillset(&sa.sa_mask);
        if (sigaction(interrupts[i].sig, NULL, &old) == 0 && old.sa_handler == SIG_IGN) continue; /* nohup, & */
        sigaction(interrupts[i].sig, &sa, NULL);
    }
}
