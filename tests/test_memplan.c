/* test_memplan.c - the activation memory plan (src/compiler/memplan.c) on hand-made
 * values and steps, without oneDNN: live ranges from the steps naming each
 * value; placement that never overlaps two values alive at the same time,
 * keeps every value inside the arena, places only used arena values, and on a
 * small instance reaches the lower bound (the largest sum of sizes alive at
 * one step), computed by hand. And the up-front estimate of a request's
 * memory from a plan, against a hand count.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "graph.h"
#include "memplan.h"
#include "net.h"
#include "plan.h"

static fn_value value(fn_value_kind kind, size_t size) {
    fn_value v;
    memset(&v, 0, sizeof v);
    v.kind = kind;
    v.size = size;
    v.first = v.last = -1;
    v.offset = (size_t)-1; /* must be set by placement */
    return v;
}

/* No two placed values alive at one step share a byte; all lie in the arena. */
static void check_placement(const fn_value *v, int n, size_t arena) {
    for (int i = 0; i < n; i++) {
        if (v[i].kind != FN_VALUE_ARENA || v[i].first < 0) continue;
        assert_true(v[i].offset + v[i].size <= arena);
        for (int j = i + 1; j < n; j++) {
            if (v[j].kind != FN_VALUE_ARENA || v[j].first < 0) continue;
            if (v[i].last < v[j].first || v[j].last < v[i].first) continue;
            int disjoint = v[i].offset + v[i].size <= v[j].offset || v[j].offset + v[j].size <= v[i].offset;
            if (!disjoint)
                print_error("values %d [%zu, +%zu) and %d [%zu, +%zu) overlap while both alive\n", i, v[i].offset,
                            v[i].size, j, v[j].offset, v[j].size);
            assert_true(disjoint);
        }
    }
}

/* The largest total size of arena values alive at one step. */
static size_t lower_bound(const fn_value *v, int n, int n_steps) {
    size_t best = 0;
    for (int s = 0; s < n_steps; s++) {
        size_t sum = 0;
        for (int i = 0; i < n; i++)
            if (v[i].kind == FN_VALUE_ARENA && v[i].first >= 0 && v[i].first <= s && s <= v[i].last) sum += v[i].size;
        if (sum > best) best = sum;
    }
    return best;
}

static void test_liveness(void **state) {
    (void)state;
    /* values: 0 input, 1..3 arena, 4 owned (weights), 5 arena named by no step */
    fn_value v[6] = {value(FN_VALUE_INPUT, 0),    value(FN_VALUE_ARENA, 1024), value(FN_VALUE_ARENA, 512),
                     value(FN_VALUE_ARENA, 1024), value(FN_VALUE_OWNED, 4096), value(FN_VALUE_ARENA, 64)};
    fn_arg a0[3] = {{0, 0, {0}, 0}, {0, 4, {0}, 0}, {0, 1, {0}, 0}}; /* step 0: input, weights -> 1 */
    fn_arg a1[2] = {{0, 1, {0}, 0}, {0, 2, {0}, 0}};              /* step 1: 1 -> 2 */
    fn_arg a2[3] = {{0, 1, {0}, 0}, {0, 2, {0}, 0}, {0, 3, {0}, 0}}; /* step 2: 1 + 2 -> 3 */
    fn_arg a3[2] = {{0, 4, {0}, 0}, {0, 3, {0}, 0}};              /* step 3: weights, 3 in place */
    fn_step steps[4];
    memset(steps, 0, sizeof steps);
    fn_arg *args[4] = {a0, a1, a2, a3};
    const int nargs[4] = {3, 2, 3, 2};
    for (int s = 0; s < 4; s++) {
        steps[s].args = args[s];
        steps[s].nargs = steps[s].cap_args = nargs[s];
    }
    v[2].first = 7; /* stale values are reset */
    fusenet__memplan_liveness(v, 6, steps, 4);
    const int want[6][2] = {{0, 0}, {0, 2}, {1, 2}, {2, 3}, {0, 3}, {-1, -1}};
    for (int i = 0; i < 6; i++) {
        assert_int_equal(v[i].first, want[i][0]);
        assert_int_equal(v[i].last, want[i][1]);
    }
    size_t arena = 0;
    assert_int_equal(fusenet__memplan_place(v, 6, &arena, NULL), FUSENET_OK);
    check_placement(v, 6, arena);
    /* 1 and 2 alive together at step 1 and 2, 1 and 3 and 2 at step 2: 2560 bytes */
    assert_int_equal(arena, 2560);
    assert_int_equal(v[5].offset, (size_t)-1); /* unused: not placed */
    assert_int_equal(v[4].offset, (size_t)-1); /* owned: not placed */
}

/* A chain where memory can be shared: A(1024) 0..1, B(512) 1..2, C(1024) 2..3,
 * D(256) 3..3. Alive at once: A+B = 1536, B+C = 1536, C+D = 1280, so 1536
 * bytes suffice (C reuses A's bytes), and placement finds that. */
static void test_reuse(void **state) {
    (void)state;
    fn_value v[4] = {value(FN_VALUE_ARENA, 1024), value(FN_VALUE_ARENA, 512), value(FN_VALUE_ARENA, 1024),
                     value(FN_VALUE_ARENA, 256)};
    const int ranges[4][2] = {{0, 1}, {1, 2}, {2, 3}, {3, 3}};
    for (int i = 0; i < 4; i++) {
        v[i].first = ranges[i][0];
        v[i].last = ranges[i][1];
    }
    size_t arena = 0;
    assert_int_equal(fusenet__memplan_place(v, 4, &arena, NULL), FUSENET_OK);
    check_placement(v, 4, arena);
    assert_int_equal(arena, 1536);
    assert_int_equal(lower_bound(v, 4, 4), 1536);
    assert_true(v[0].offset == v[2].offset || v[0].offset + 1024 <= v[2].offset ||
                v[2].offset + 1024 <= v[0].offset);
}

/* Seeded random instances: never an overlap, never below the lower bound,
 * never above the sum of all sizes. */
static void test_random(void **state) {
    (void)state;
    uint64_t seed = 12345;
    for (int round = 0; round < 200; round++) {
        fn_value v[60];
        int n = 1 + round % 60, n_steps = 1 + round % 37;
        size_t sum = 0;
        for (int i = 0; i < n; i++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            uint64_t r = seed >> 20;
            v[i] = value(r % 7 == 0 ? FN_VALUE_OWNED : FN_VALUE_ARENA, 64 * (1 + (r >> 3) % 50));
            int a = (int)((r >> 12) % (uint64_t)n_steps), b = (int)((r >> 24) % (uint64_t)n_steps);
            v[i].first = a < b ? a : b;
            v[i].last = a < b ? b : a;
            if (v[i].kind == FN_VALUE_ARENA) sum += v[i].size;
        }
        size_t arena = 0;
        assert_int_equal(fusenet__memplan_place(v, n, &arena, NULL), FUSENET_OK);
        check_placement(v, n, arena);
        assert_true(arena >= lower_bound(v, n, n_steps));
        assert_true(arena <= sum);
    }
}

/* ResNet stem at 64 x 64, batch 2, tapping pool1_pool: two steps, conv1
 * (padding, BN, ReLU folded: 32 x 32 x 8 out) and pool1 (16 x 16 x 8), both
 * alive while pool1 runs: 2 * 4 * (8192 + 2048) bytes. Weights: conv 7*7*3*8
 * + 8, BN 4 * 8 floats. */
static void test_estimate(void **state) {
    (void)state;
    fn_graph g = {0};
    int x = fusenet__input(&g, "input");
    x = fusenet__zero_pad(&g, x, 3, "conv1_pad");
    x = fusenet__conv2d(&g, x, 8, 7, 2, FN_PAD_VALID, FN_ACT_NONE, "conv1_conv");
    x = fusenet__batch_norm(&g, x, 1e-3f, "conv1_bn");
    x = fusenet__relu(&g, x, "conv1_relu");
    x = fusenet__zero_pad(&g, x, 1, "pool1_pad");
    int pool = fusenet__max_pool(&g, x, 3, 2, "pool1_pool");
    fusenet__conv2d(&g, pool, 8, 1, 1, FN_PAD_VALID, FN_ACT_NONE, "unused");
    assert_int_equal(fusenet__graph_finish(&g, NULL), FUSENET_OK);
    fn_plan p;
    assert_int_equal(fusenet__plan(&g, 64, 64, &pool, 1, &p, NULL), FUSENET_OK);
    fn_mem_estimate e;
    fusenet__memplan_estimate(&g, &p, 2, &e);
    assert_true(e.activations == 2.0 * 4 * (32 * 32 * 8 + 16 * 16 * 8));
    assert_true(e.weights == 4.0 * (7 * 7 * 3 * 8 + 8 + 4 * 8));
    fusenet__plan_free(&p);
    fusenet__graph_free(&g);
}

/* Micro-batching's cut, by hand, at a 128 x 128 input, for a batch of 2m
 * with micro-batches of at most m = 4 images (the limit is a parameter; the
 * build's is FN_MICRO_MAX_IMAGES): conv A and conv B (8
 * channels, 128 x 128), a 2x2 max pool P (64 x 64 x 8 = 4096 pixels, at least
 * FN_MICRO_MIN_PIXELS), conv C (64 x 64 x 4), tapped (so never in the prefix).
 * Bytes per image: A = B = 524288, P = 131072, C = 65536. Without a cut the
 * peak is 2m (A + B) = 2m x 1048576 while B runs; cutting after P runs A, B, P
 * per micro-batch (P's output on the whole batch) and the peak is m (A + B) =
 * m x 1048576 (then m B + 2m P = m x 786432, then 2m (P + C) = m x 393216);
 * cutting after A or B peaks higher (B's 2m x 524288 alive with A's or P's).
 * A batch of m (one micro-batch), or a tap on A, leaves no cut. */
static void test_micro_cut(void **state) {
    (void)state;
    const int m = 4;
    assert_int_equal(fusenet__memplan_micro_images(2 * m, m), m);
    assert_int_equal(fusenet__memplan_micro_images(1, m), 1);
    for (int batch = 1; batch <= 64; batch++) { /* the largest divisor up to m */
        int got = fusenet__memplan_micro_images(batch, m), want = 1;
        for (int d = 1; d <= m && d <= batch; d++)
            if (batch % d == 0) want = d;
        assert_int_equal(got, want);
    }
    for (int tap_a = 0; tap_a <= 1; tap_a++) {
        fn_graph g = {0};
        int x = fusenet__input(&g, "input");
        int a = fusenet__conv2d(&g, x, 8, 3, 1, FN_PAD_SAME, FN_ACT_RELU, "a");
        int b = fusenet__conv2d(&g, a, 8, 3, 1, FN_PAD_SAME, FN_ACT_RELU, "b");
        int pool = fusenet__max_pool(&g, b, 2, 2, "p");
        int conv_c = fusenet__conv2d(&g, pool, 4, 3, 1, FN_PAD_SAME, FN_ACT_RELU, "c");
        assert_int_equal(fusenet__graph_finish(&g, NULL), FUSENET_OK);
        int taps[2] = {conv_c, a};
        fn_plan p;
        assert_int_equal(fusenet__plan(&g, 128, 128, taps, 1 + tap_a, &p, NULL), FUSENET_OK);
        double peak = 0;
        int cut = fusenet__memplan_micro_cut(&g, &p, 2 * m, m, &peak);
        if (tap_a) {
            assert_int_equal(cut, -1);
            assert_true(peak == 2.0 * m * 1048576.0);
        } else {
            assert_true(cut >= 0 && cut < p.n_chains);
            assert_int_equal(p.chains[cut].end, pool);
            assert_true(peak == (double)m * 1048576.0);
        }
        assert_int_equal(fusenet__memplan_micro_cut(&g, &p, m, m, NULL), -1);
        fusenet__plan_free(&p);
        fusenet__graph_free(&g);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_liveness),
        cmocka_unit_test(test_reuse),
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_estimate),
        cmocka_unit_test(test_micro_cut),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
