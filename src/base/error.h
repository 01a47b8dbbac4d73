/* error.h - error filling and the did-you-mean helper (private). */
#ifndef FN_ERROR_H
#define FN_ERROR_H

#include <math.h>

#include "fusenet.h"

/* The library's one failure convention: a function that can fail returns a
 * fusenet_status, FUSENET_OK (0) or the failure's status, never an int that
 * means "ok" when non-zero. FN_CHECKED on such an internal function makes
 * ignoring its status a compile error (-Werror=unused-result). */
#define FN_CHECKED __attribute__((warn_unused_result))

/* Fills err (if not NULL) with status and a printf-formatted one-line message;
 * returns status so callers can write `return fusenet__error(err, ...)`. */
fusenet_status fusenet__error(fusenet_error *err, fusenet_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "NaN", "+Inf" or "-Inf": how messages name a non-finite value. */
static inline const char *fusenet__nonfinite_name(float x) { return isnan(x) ? "NaN" : x > 0 ? "+Inf" : "-Inf"; }

/* Index of the first non-finite value of p[0..n), or n: one vectorised pass
 * (an exponent of all ones, NaN or Inf, carries into bit 31) while all are finite. */
size_t fusenet__first_nonfinite(const float *p, size_t n);

/* Replaces control characters (newlines, ...) by spaces: messages are one line. */
void fusenet__one_line(char *message);

/* Clears err (if not NULL) and returns FUSENET_OK. */
fusenet_status fusenet__ok(fusenet_error *err);

/* Appends " (did you mean: a, b, c?)" to buf listing up to three names of
 * names[0..n) closest to `name` by edit distance. */
void fusenet__suggest(char *buf, size_t size, const char *name, const char *const *names, size_t n);

#endif
