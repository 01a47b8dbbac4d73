/* error.c - status names, error filling, closest-name suggestions. */
#include "error.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

const char *fusenet_status_name(fusenet_status status) {
    static const char *const names[] = {
        [FUSENET_OK] = "FUSENET_OK",
        [FUSENET_ERR_INVALID_ARG] = "FUSENET_ERR_INVALID_ARG",
        [FUSENET_ERR_NOMEM] = "FUSENET_ERR_NOMEM",
        [FUSENET_ERR_IO] = "FUSENET_ERR_IO",
        [FUSENET_ERR_FORMAT] = "FUSENET_ERR_FORMAT",
        [FUSENET_ERR_ARCH] = "FUSENET_ERR_ARCH",
        [FUSENET_ERR_SHAPE] = "FUSENET_ERR_SHAPE",
        [FUSENET_ERR_UNKNOWN_LAYER] = "FUSENET_ERR_UNKNOWN_LAYER",
        [FUSENET_ERR_UNSUPPORTED] = "FUSENET_ERR_UNSUPPORTED",
        [FUSENET_ERR_BACKEND] = "FUSENET_ERR_BACKEND",
        [FUSENET_ERR_VALUE] = "FUSENET_ERR_VALUE",
    };
    if ((unsigned)status >= sizeof names / sizeof names[0]) return "FUSENET_ERR_?";
    return names[status];
}

void fusenet__one_line(char *message) {
    for (unsigned char *p = (unsigned char *)message; *p; p++)
        if (*p < 0x20 || *p == 0x7f) *p = ' ';
}

fusenet_status fusenet__error(fusenet_error *err, fusenet_status status, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
        fusenet__one_line(err->message);
        err->status = status;
    }
    return status;
}

fusenet_status fusenet__ok(fusenet_error *err) {
    if (err) {
        err->status = FUSENET_OK;
        err->message[0] = '\0';
    }
    return FUSENET_OK;
}

/* Levenshtein distance, capped to keep it cheap on long hostile names. */
static size_t edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64) la = 64;
    if (lb > 64) lb = 64;
    size_t row[65];
    for (size_t j = 0; j <= lb; j++) row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (row[j] + 1 < best) best = row[j] + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

void fusenet__suggest(char *buf, size_t size, const char *name, const char *const *names, size_t n) {
    size_t best[3] = {(size_t)-1, (size_t)-1, (size_t)-1};
    size_t dist[3] = {(size_t)-1, (size_t)-1, (size_t)-1};
    for (size_t i = 0; i < n; i++) {
        size_t d = edit_distance(name, names[i]);
        for (int k = 0; k < 3; k++) {
            if (d < dist[k]) {
                for (int m = 2; m > k; m--) {
                    dist[m] = dist[m - 1];
                    best[m] = best[m - 1];
                }
                dist[k] = d;
                best[k] = i;
                break;
            }
        }
    }
    size_t len = strlen(buf);
    if (best[0] == (size_t)-1 || len >= size) return;
    snprintf(buf + len, size - len, " (did you mean: %s%s%s%s%s?)", names[best[0]],
             best[1] != (size_t)-1 ? ", " : "", best[1] != (size_t)-1 ? names[best[1]] : "",
             best[2] != (size_t)-1 ? ", " : "", best[2] != (size_t)-1 ? names[best[2]] : "");
    fusenet__one_line(buf); /* names may come from a file */
}

size_t fusenet__first_nonfinite(const float *p, size_t n) {
    enum { BLOCK = 4096 };
    for (size_t start = 0; start < n; start += BLOCK) {
        size_t end = n - start < BLOCK ? n : start + BLOCK;
        uint32_t bad = 0;
        for (size_t i = start; i < end; i++) {
            uint32_t u;
            memcpy(&u, &p[i], sizeof u);
            bad |= (u & 0x7f800000u) + 0x00800000u;
        }
        if (!(bad & 0x80000000u)) continue;
        for (size_t i = start; i < end; i++)
            if (!isfinite(p[i])) return i;
    }
    return n;
}
