/* json.h - a strict JSON reader for the tool's own small files (done_KKKKK.json).
 *
 * The whole text is validated once (RFC 8259 grammar, UTF-8 not checked, at
 * most JSON_MAX_DEPTH nested arrays/objects, at most JSON_MAX_MEMBERS members
 * per object, no repeated key in an object, nothing but whitespace after the
 * value); values are then read as spans of that text. Nothing is allocated. */
#ifndef FN_CLI_JSON_H
#define FN_CLI_JSON_H

#include <stddef.h>
#include <stdint.h>

#define JSON_MAX_DEPTH 32
#define JSON_MAX_MEMBERS 256

typedef struct json_span {
    const char *p;
    size_t n;
} json_span;

/* Validates text[0..n) as one JSON value; *root is its span. On failure
 * returns 0 and writes what is wrong and at which byte into why. */
int json_parse(const char *text, size_t n, json_span *root, char *why, size_t why_size);

/* In a validated object: the value of the member named key (a key written with
 * escapes never matches). Returns 0 if obj is not an object or has no such key. */
int json_member(json_span obj, const char *key, json_span *value);

/* Iterates a validated object's members or an array's elements: *pos starts
 * at 0; returns 0 after the last. key is NULL for arrays; for objects it gets
 * the key's span without the quotes. */
int json_next(json_span container, size_t *pos, json_span *key, json_span *value);

/* A non-negative integer without fraction or exponent, at most 2^53. */
int json_uint(json_span v, uint64_t *out);

/* A string without escapes (what the tool writes for names and hashes), copied
 * NUL-terminated into buf; 0 if v is another kind of value, has escapes or
 * does not fit. */
int json_plain_string(json_span v, char *buf, size_t size);

/* Is the span exactly the same text? */
int json_equal(json_span a, json_span b);

#endif
