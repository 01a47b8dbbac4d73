/* fuzz_calib.c - libFuzzer target for the calibration parser (fusenet_calibration_parse).
 *
 * A successful parse must describe a usable calibration: a known method, at
 * least one model and one layer, every layer of a declared model with a
 * nonempty printable name, finite statistics, MIN <= MAX and thresholds in
 * [0, max|value|] (up to the parser's rounding slack); and it must save and
 * parse back to the same layers. */
#include "fuzz_common.h"

#include <math.h>
#include <unistd.h>

#include "quant.h"

static void calib_check(const fusenet_calibration *cal) {
    FUZZ_CHECK(cal->method >= FUSENET_CALIB_MINMAX && cal->method <= FUSENET_CALIB_MSE);
    FUZZ_CHECK(cal->n_models >= 1 && cal->n_models <= FN_CALIB_MAX_MODELS);
    FUZZ_CHECK(cal->n_layers >= 1 && cal->n_layers <= FN_CALIB_MAX_LAYERS);
    FUZZ_CHECK(cal->images >= 1 && cal->net == NULL);
    for (int i = 0; i < cal->n_layers; i++) {
        const fn_calib_layer *l = &cal->layers[i];
        FUZZ_CHECK(l->model >= 0 && l->model < cal->n_models);
        FUZZ_CHECK(l->name[0] && strnlen(l->name, sizeof l->name) < sizeof l->name);
        FUZZ_CHECK(isfinite(l->min) && isfinite(l->max) && l->min <= l->max);
        double amax = fmax(fabs(l->min), fabs(l->max));
        for (int k = 0; k < FN_CALIB_METHODS; k++) FUZZ_CHECK(l->thr[k] >= 0 && l->thr[k] <= amax * (1 + 1e-6));
        FUZZ_CHECK(fusenet__calib_scale(cal, l, l->min >= 0) > 0.0f);
    }
}

int FUZZ_ENTRY(const uint8_t *data, size_t size);

int FUZZ_ENTRY(const uint8_t *data, size_t size) {
    fusenet_calibration *cal = (fusenet_calibration *)&cal; /* must become NULL on failure */
    fusenet_error err;
    fusenet_status st = fusenet_calibration_parse((const char *)data, size, &cal, &err);
    fuzz_check_status(st, &err);
    if (st != FUSENET_OK) {
        FUZZ_CHECK(cal == NULL);
        return 0;
    }
    calib_check(cal);
    char path[64];
    snprintf(path, sizeof path, "/tmp/fuzz_calib_%ld.txt", (long)getpid());
    fusenet_calibration *back = NULL;
    st = fusenet_calibration_save(cal, path, &err);
    fuzz_check_status(st, &err);
    if (st == FUSENET_OK) {
        st = fusenet_calibration_load(path, &back, &err);
        fuzz_check_status(st, &err);
        FUZZ_CHECK(st == FUSENET_OK && back->n_layers == cal->n_layers && back->method == cal->method);
        for (int i = 0; i < cal->n_layers; i++)
            FUZZ_CHECK(strcmp(back->layers[i].name, cal->layers[i].name) == 0 &&
                       back->layers[i].max == cal->layers[i].max);
        remove(path);
    }
    fusenet_calibration_free(back);
    fusenet_calibration_free(cal);
    return 0;
}
