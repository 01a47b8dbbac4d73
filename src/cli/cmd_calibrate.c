/* cmd_calibrate.c - calibrate: the fp32 fused net (the dual short form or --tap) over calibration images (or
 * an .npy batch), the statistics --mode int8 needs written to a text file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "file.h"

static void show_progress(size_t done, size_t total, double elapsed) {
    fprintf(stderr, "\r\033[Kcalibrating: %zu/%zu images  %.1f images/s", done, total,
            elapsed > 0 ? (double)done / elapsed : 0.0);
    fflush(stderr);
}

static void free_paths(char **paths, size_t n) {
    for (size_t i = 0; i < n && paths; i++) free(paths[i]);
    free(paths);
}

/* Through the CLI's output writer, like every other output: a device or
 * FIFO is written in place, a link's target replaced, a file's mode kept. */
static int write_calibration(const fusenet_calibration *cal, const char *path) {
    fusenet_error err;
    size_t len = 0;
    if (fusenet_calibration_write(cal, NULL, 0, &len, &err)) return fail(&err);
    char *text = malloc(len + 1);
    if (!text) return die("out of memory writing %s", path);
    int rc = 0;
    if (fusenet_calibration_write(cal, text, len + 1, &len, &err) || fusenet__write_file(path, text, len, &err))
        rc = fail(&err);
    free(text);
    return rc;
}

int cmd_calibrate(opts *o) {
    if (o->input && o->n_images) return die("give either --input or --images, not both");
    if (!o->input && !o->n_images) return die("calibration images are required: --images IMG_OR_DIR... or --input IN.npy");
    if (check_output("--output", o->output) || fused_taps(o)) return 1;
    for (int i = 0; i < o->n_taps; i++)
        if (check_not_input("--output", o->output, o->taps[i].option, o->taps[i].weights))
            return 1;
    if (check_not_input("--output", o->output, "--input", o->input)) return 1;
    fusenet_error err;
    fn_npy x = {0};
    char **paths = NULL;
    size_t n = 0;
    int h = o->input_size.h, w = o->input_size.w;
    if (o->input) {
        if (fusenet__npy_read(o->input, MAX_INPUT_BYTES, &x, &err)) return fail(&err);
        if (x.rank != 4 || x.dims[3] != 3 || x.dims[0] < 1 || x.dims[1] < 32 || x.dims[2] < 32) {
            fusenet__npy_free(&x);
            return die("%s: expected an (N,H,W,3) array with N >= 1 and H, W >= 32", o->input);
        }
        n = (size_t)x.dims[0];
        h = (int)x.dims[1];
        w = (int)x.dims[2];
    } else {
        if (list_images(o->images, o->n_images, &paths, &n)) return 1;
        for (size_t i = 0; i < n; i++)
            if (check_not_input("--output", o->output, "--images", paths[i])) {
                free_paths(paths, n);
                return 1;
            }
        if (n == 0) {
            free_paths(paths, n);
            return die("--images: no .jpg, .jpeg or .png files found");
        }
    }
    int b = (size_t)o->batch < n ? o->batch : (int)n;
    size_t per = (size_t)h * w * 3;
    float *buf = o->input ? NULL : malloc(per * (size_t)b * sizeof *buf);
    fusenet_file_tap taps[MAX_TAPS];
    file_taps(o, taps);
    fusenet_net_params p = fuse_params(o, b, h, w);
    fusenet_calibration *cal = NULL;
    int rc = 0;
    if (!o->input && !buf) rc = die("out of memory for a batch of %d images", b);
    if (!rc && fusenet_calibration_create_files(taps, (size_t)o->n_taps, &p, &cal, &err)) rc = fail_taps(o, taps, &err);
    if (!rc && o->method != FUSENET_CALIB_DEFAULT && fusenet_calibration_set_method(cal, o->method, &err)) rc = fail(&err);
    fusenet_image_params ip = image_params(o);
    int tty = isatty(STDERR_FILENO);
    double t0 = seconds_now(), shown = t0;
    for (size_t start = 0; start < n && !rc; start += (size_t)b) {
        int cnt = n - start < (size_t)b ? (int)(n - start) : b;
        fusenet_tensor in = {o->input ? x.data + per * start : buf, cnt, h, w, 3};
        for (int k = 0; k < cnt && !o->input && !rc; k++)
            if (fusenet_image_load(paths[start + (size_t)k], &ip, buf + per * (size_t)k, &err)) rc = fail(&err);
        if (!rc && fusenet_calibration_add(cal, &in, &err)) {
            if (tty) fputs("\r\033[K", stderr);
            rc = fail(&err);
        }
        double now = seconds_now();
        if (!rc && tty && (now - shown > 0.25 || start + (size_t)cnt == n)) {
            show_progress(start + (size_t)cnt, n, now - t0);
            shown = now;
        }
    }
    if (tty) fputs("\r\033[K", stderr);
    if (!rc) rc = write_calibration(cal, o->output);
    if (!rc)
        fprintf(stderr, "calibrated on %zu images in %.1f s: %s\n", n, seconds_now() - t0, o->output);
    fusenet_calibration_free(cal);
    free(buf);
    free_paths(paths, n);
    fusenet__npy_free(&x);
    return rc;
}
