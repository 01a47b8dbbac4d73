/* json.c - a strict JSON reader (see json.h). */
#include "json.h"

#include <stdio.h>
#include <string.h>

typedef struct cursor {
    const char *p, *begin, *end;
    const char *why; /* first error */
} cursor;

static int bad(cursor *c, const char *why) {
    if (!c->why) c->why = why;
    return 0;
}

static void ws(cursor *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

static int is_digit(char ch) { return ch >= '0' && ch <= '9'; }

static int is_hex(char ch) { return is_digit(ch) || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F'); }

static int string(cursor *c) { /* at '"' */
    c->p++;
    while (c->p < c->end) {
        unsigned char ch = (unsigned char)*c->p++;
        if (ch == '"') return 1;
        if (ch < 0x20) return bad(c, "a control character in a string");
        if (ch != '\\') continue;
        if (c->p >= c->end) break;
        char e = *c->p++;
        if (e == 'u') {
            for (int i = 0; i < 4; i++, c->p++)
                if (c->p >= c->end || !is_hex(*c->p)) return bad(c, "a bad \\u escape in a string");
        } else if (!e || !strchr("\"\\/bfnrt", e)) {
            return bad(c, "a bad escape in a string");
        }
    }
    return bad(c, "an unterminated string");
}

static int digits(cursor *c) {
    const char *s = c->p;
    while (c->p < c->end && is_digit(*c->p)) c->p++;
    return c->p > s;
}

static int number(cursor *c) {
    if (*c->p == '-') c->p++;
    if (c->p < c->end && *c->p == '0') c->p++;
    else if (!digits(c)) return bad(c, "a malformed number");
    if (c->p < c->end && *c->p == '.') {
        c->p++;
        if (!digits(c)) return bad(c, "a malformed number");
    }
    if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
        c->p++;
        if (c->p < c->end && (*c->p == '+' || *c->p == '-')) c->p++;
        if (!digits(c)) return bad(c, "a malformed number");
    }
    return 1;
}

static int literal(cursor *c) {
    static const char *const words[] = {"true", "false", "null"};
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(words[i]);
        if ((size_t)(c->end - c->p) >= n && memcmp(c->p, words[i], n) == 0) {
            c->p += n;
            return 1;
        }
    }
    return bad(c, "an unexpected character");
}

static int value(cursor *c, int depth);

/* Arrays and objects: close is ']' or '}'. */
static int container(cursor *c, int depth, char close) {
    if (depth >= JSON_MAX_DEPTH) return bad(c, "arrays or objects nested too deeply");
    c->p++;
    ws(c);
    if (c->p < c->end && *c->p == close) {
        c->p++;
        return 1;
    }
    json_span keys[JSON_MAX_MEMBERS];
    for (int count = 0;; count++) {
        ws(c);
        if (close == '}') {
            if (count == JSON_MAX_MEMBERS) return bad(c, "an object with too many members");
            if (c->p >= c->end || *c->p != '"') return bad(c, "an object key that is not a string");
            const char *k = c->p;
            if (!string(c)) return 0;
            keys[count] = (json_span){k, (size_t)(c->p - k)};
            for (int i = 0; i < count; i++)
                if (json_equal(keys[i], keys[count])) return bad(c, "a key repeated in an object");
            ws(c);
            if (c->p >= c->end || *c->p != ':') return bad(c, "a missing ':' after an object key");
            c->p++;
        }
        if (!value(c, depth + 1)) return 0;
        ws(c);
        if (c->p < c->end && *c->p == ',') {
            c->p++;
            continue;
        }
        if (c->p < c->end && *c->p == close) {
            c->p++;
            return 1;
        }
        return bad(c, close == '}' ? "a missing ',' or '}' in an object" : "a missing ',' or ']' in an array");
    }
}

static int value(cursor *c, int depth) {
    ws(c);
    if (c->p >= c->end) return bad(c, "an unexpected end");
    char ch = *c->p;
    if (ch == '{') return container(c, depth, '}');
    if (ch == '[') return container(c, depth, ']');
    if (ch == '"') return string(c);
    if (ch == '-' || is_digit(ch)) return number(c);
    return literal(c);
}

int json_parse(const char *text, size_t n, json_span *root, char *why, size_t why_size) {
    cursor c = {text, text, text + n, NULL};
    ws(&c);
    const char *start = c.p;
    if (value(&c, 0)) {
        *root = (json_span){start, (size_t)(c.p - start)};
        ws(&c);
        if (c.p == c.end) return 1;
        bad(&c, "data after the value");
    }
    if (why_size) snprintf(why, why_size, "%s at byte %zu", c.why, (size_t)(c.p - c.begin));
    return 0;
}

int json_next(json_span obj, size_t *pos, json_span *key, json_span *val) {
    if (obj.n < 2 || (obj.p[0] != '{' && obj.p[0] != '[')) return 0;
    cursor c = {obj.p + (*pos ? *pos : 1), obj.p, obj.p + obj.n - 1, NULL};
    ws(&c);
    if (c.p >= c.end) return 0;
    if (obj.p[0] == '{') {
        const char *k = c.p;
        if (!string(&c)) return 0;
        if (key) *key = (json_span){k + 1, (size_t)(c.p - k) - 2};
        ws(&c);
        c.p++; /* ':' */
        ws(&c);
    } else if (key) {
        *key = (json_span){NULL, 0};
    }
    const char *v = c.p;
    if (!value(&c, 0)) return 0;
    *val = (json_span){v, (size_t)(c.p - v)};
    ws(&c);
    if (c.p < c.end && *c.p == ',') c.p++;
    *pos = (size_t)(c.p - obj.p);
    return 1;
}

int json_member(json_span obj, const char *name, json_span *val) {
    if (obj.n < 2 || obj.p[0] != '{') return 0;
    size_t pos = 0, len = strlen(name);
    json_span k, v;
    while (json_next(obj, &pos, &k, &v))
        if (k.n == len && memcmp(k.p, name, len) == 0) {
            *val = v;
            return 1;
        }
    return 0;
}

int json_uint(json_span v, uint64_t *out) {
    if (v.n == 0 || v.n > 16 || (v.p[0] == '0' && v.n > 1)) return 0;
    uint64_t x = 0;
    for (size_t i = 0; i < v.n; i++) {
        if (!is_digit(v.p[i])) return 0;
        x = x * 10 + (uint64_t)(v.p[i] - '0');
    }
    if (x > (uint64_t)1 << 53) return 0;
    *out = x;
    return 1;
}

int json_plain_string(json_span v, char *buf, size_t size) {
    if (v.n < 2 || v.p[0] != '"' || v.p[v.n - 1] != '"' || v.n - 2 >= size) return 0;
    if (memchr(v.p + 1, '\\', v.n - 2)) return 0;
    memcpy(buf, v.p + 1, v.n - 2);
    buf[v.n - 2] = '\0';
    return 1;
}

int json_equal(json_span a, json_span b) { return a.n == b.n && memcmp(a.p, b.p, a.n) == 0; }
