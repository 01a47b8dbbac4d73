/* fuzz_json.c - libFuzzer target for the CLI's strict JSON reader (src/cli/json.c),
 * which reads the done_KKKKK.json files of sharded runs before `fusenet merge`.
 *
 * Every input is parsed; a refusal must say why in one line. An accepted input
 * must be one value whose span lies inside the input, and walking it (members,
 * elements, integers, plain strings) must stay inside that span, find each key
 * it lists with json_member, and end. */
#include "fuzz_common.h"

#include "json.h"

static size_t walk(json_span v, const char *begin, const char *end, int depth) {
    FUZZ_CHECK(v.n > 0 && v.p >= begin && v.p + v.n <= end);
    FUZZ_CHECK(depth <= JSON_MAX_DEPTH);
    uint64_t u;
    char s[64];
    if (json_uint(v, &u)) FUZZ_CHECK(u <= (uint64_t)1 << 53);
    if (json_plain_string(v, s, sizeof s)) FUZZ_CHECK(strlen(s) == v.n - 2);
    if (v.p[0] != '{' && v.p[0] != '[') return 1;
    size_t pos = 0, count = 0, total = 1;
    json_span key, val, again;
    while (json_next(v, &pos, &key, &val)) {
        FUZZ_CHECK(pos <= v.n && ++count <= v.n);
        if (v.p[0] == '{') {
            FUZZ_CHECK(key.p > v.p && key.p + key.n < v.p + v.n);
            char name[64];
            if (key.n < sizeof name && !memchr(key.p, '\\', key.n)) {
                memcpy(name, key.p, key.n);
                name[key.n] = '\0';
                if (!memchr(name, '\0', key.n)) FUZZ_CHECK(json_member(v, name, &again) && json_equal(again, val));
            }
        }
        total += walk(val, v.p, v.p + v.n, depth + 1);
    }
    FUZZ_CHECK(v.p[0] != '{' || count <= JSON_MAX_MEMBERS);
    return total;
}

int FUZZ_ENTRY(const uint8_t *data, size_t size);

int FUZZ_ENTRY(const uint8_t *data, size_t size) {
    char why[128] = "";
    json_span root;
    const char *text = (const char *)data;
    if (json_parse(text, size, &root, why, sizeof why)) {
        walk(root, text, text + size, 0);
    } else {
        size_t len = strnlen(why, sizeof why);
        FUZZ_CHECK(len > 0 && len < sizeof why && !strchr(why, '\n'));
    }
    return 0;
}
