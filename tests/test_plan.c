/* test_plan.c - the compiler's planning pass (src/compiler/plan.c) without oneDNN:
 * what folds into what, read from the plan's plain data, on hand-built graphs
 * and on the real ResNet50 and VGG16 graphs; and BatchNorm folding against a
 * conv + BatchNorm computed by hand in double.
 *
 * Every plan is also checked for the invariants the emitter relies on: each
 * live layer is the input, a view, or in exactly one chain; chains come in
 * graph order; folded layers carry their chain's index; nothing folds across
 * a tapped value (a tapped layer is always some chain's end, the input or a
 * view).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fusenet.h"
#include "graph.h"
#include "model.h"
#include "plan.h"

#define BN_EPS 1.001e-5f

static int node_of(const fn_graph *g, const char *name) {
    int i = fusenet__graph_find(g, name);
    if (i < 0) print_error("no layer %s\n", name);
    assert_true(i >= 0);
    return i;
}

static void check_invariants(const fn_graph *g, const fn_plan *p, const int *taps, int n_taps) {
    assert_int_equal(p->n, g->n);
    for (int k = 0; k < n_taps; k++) {
        const fn_plan_node *t = &p->nodes[taps[k]];
        assert_true(t->tapped);
        if (t->role == FN_ROLE_INPUT || t->role == FN_ROLE_VIEW) continue;
        assert_true(t->chain >= 0 && t->chain < p->n_chains);
        assert_int_equal(p->chains[t->chain].end, taps[k]); /* materialised */
    }
    int members = 0;
    for (int c = 0; c < p->n_chains; c++) {
        const fn_chain *ch = &p->chains[c];
        if (c > 0) assert_true(ch->head > p->chains[c - 1].head);
        assert_int_equal(p->nodes[ch->head].role, FN_ROLE_HEAD);
        assert_int_equal(p->nodes[ch->head].chain, c);
        const int folded[4] = {ch->pad, ch->bn, ch->sum, ch->relu};
        const fn_role roles[4] = {FN_ROLE_PAD, FN_ROLE_BN, FN_ROLE_SUM, FN_ROLE_RELU};
        int last = ch->head;
        members++;
        for (int k = 0; k < 4; k++) {
            if (folded[k] < 0) continue;
            members++;
            assert_int_equal(p->nodes[folded[k]].role, roles[k]);
            assert_int_equal(p->nodes[folded[k]].chain, c);
            if (k == 0) {
                assert_false(p->nodes[ch->pad].tapped);
                assert_int_equal(p->nodes[ch->pad].consumers, 1);
                continue;
            }
            assert_false(p->nodes[last].tapped); /* the value folded past */
            assert_int_equal(p->nodes[last].consumers, 1);
            last = folded[k];
        }
        assert_int_equal(ch->end, last);
        assert_int_equal(ch->sum >= 0, ch->shortcut >= 0);
    }
    int live = 0;
    for (int i = 0; i < g->n; i++) {
        fn_role r = p->nodes[i].role;
        if (r == FN_ROLE_DEAD) continue;
        live++;
        if (r == FN_ROLE_INPUT || r == FN_ROLE_VIEW) {
            assert_int_equal(p->nodes[i].chain, -1);
            members++;
        }
    }
    assert_int_equal(live, members);
}

/* Plans g for taps (names), checking invariants; the caller frees the plan. */
static fn_plan plan_of(const fn_graph *g, const char *const *names, int n, int32_t h, int32_t w) {
    int taps[16];
    for (int k = 0; k < n; k++) taps[k] = node_of(g, names[k]);
    fn_plan p;
    fusenet_error e;
    fusenet_status st = fusenet__plan(g, h, w, taps, n, &p, &e);
    if (st) print_error("plan: %s\n", e.message);
    assert_int_equal(st, FUSENET_OK);
    check_invariants(g, &p, taps, n);
    return p;
}

static fn_role role(const fn_graph *g, const fn_plan *p, const char *name) { return p->nodes[node_of(g, name)].role; }

/* The chain computing layer `name`. */
static const fn_chain *chain_of(const fn_graph *g, const fn_plan *p, const char *name) {
    int c = p->nodes[node_of(g, name)].chain;
    assert_true(c >= 0);
    return &p->chains[c];
}

static const char *name_of(const fn_graph *g, int i) { return i < 0 ? "-" : g->nodes[i].name; }

static void graph_done(fn_graph *g) { assert_int_equal(fusenet__graph_finish(g, NULL), FUSENET_OK); }

/* ResNet stem: ZeroPadding2D(3) -> Conv2D 7x7/2 valid -> BN -> ReLU -> ZeroPadding2D(1) -> MaxPooling2D 3x3/2. */
static void stem(fn_graph *g) {
    int x = fusenet__input(g, "input");
    x = fusenet__zero_pad(g, x, 3, "conv1_pad");
    x = fusenet__conv2d(g, x, 8, 7, 2, FN_PAD_VALID, FN_ACT_NONE, "conv1_conv");
    x = fusenet__batch_norm(g, x, BN_EPS, "conv1_bn");
    x = fusenet__relu(g, x, "conv1_relu");
    x = fusenet__zero_pad(g, x, 1, "pool1_pad");
    fusenet__max_pool(g, x, 3, 2, "pool1_pool");
    graph_done(g);
}

static void test_stem(void **state) {
    (void)state;
    fn_graph g = {0};
    stem(&g);
    const char *pool[] = {"pool1_pool"};
    fn_plan p = plan_of(&g, pool, 1, 224, 224);
    assert_int_equal(p.n_chains, 2);
    const fn_chain *c = &p.chains[0];
    assert_string_equal(name_of(&g, c->head), "conv1_conv");
    assert_string_equal(name_of(&g, c->pad), "conv1_pad");
    assert_string_equal(name_of(&g, c->src), "input");
    assert_string_equal(name_of(&g, c->bn), "conv1_bn");
    assert_string_equal(name_of(&g, c->relu), "conv1_relu");
    assert_string_equal(name_of(&g, c->end), "conv1_relu");
    assert_true(c->relu_post && c->sum < 0);
    /* 224 + 3 + 3 -> 7x7/2 valid -> 112: reads padded columns 0..228 of 230, so 3 before, 2 after */
    assert_true(c->pad_l[0] == 3 && c->pad_l[1] == 3 && c->pad_r[0] == 2 && c->pad_r[1] == 2);
    c = &p.chains[1];
    assert_string_equal(name_of(&g, c->head), "pool1_pool");
    assert_string_equal(name_of(&g, c->pad), "pool1_pad");
    assert_string_equal(name_of(&g, c->src), "conv1_relu");
    /* 112 + 1 + 1 -> 3x3/2 valid -> 56: rows 0..112 of 114: 1 before, 0 after */
    assert_true(c->pad_l[0] == 1 && c->pad_r[0] == 0 && c->end == c->head);
    assert_int_equal(role(&g, &p, "input"), FN_ROLE_INPUT);
    fusenet__plan_free(&p);

    /* BN tapped: it still folds into the conv (as its chain's end), the ReLU stays a layer */
    const char *bn[] = {"conv1_bn", "pool1_pool"};
    p = plan_of(&g, bn, 2, 64, 64);
    assert_int_equal(role(&g, &p, "conv1_bn"), FN_ROLE_BN);
    assert_string_equal(name_of(&g, chain_of(&g, &p, "conv1_bn")->end), "conv1_bn");
    assert_int_equal(role(&g, &p, "conv1_relu"), FN_ROLE_HEAD);
    assert_int_equal(role(&g, &p, "pool1_pad"), FN_ROLE_PAD); /* still after a ReLU */
    assert_int_equal(p.n_chains, 3);
    fusenet__plan_free(&p);

    /* conv1_conv tapped: nothing folds after it; conv1_pad tapped: it is a layer */
    const char *both[] = {"conv1_conv", "conv1_pad"};
    p = plan_of(&g, both, 2, 64, 64);
    assert_int_equal(role(&g, &p, "conv1_pad"), FN_ROLE_HEAD);
    assert_int_equal(chain_of(&g, &p, "conv1_conv")->pad, -1);
    assert_string_equal(name_of(&g, chain_of(&g, &p, "conv1_conv")->src), "conv1_pad");
    assert_int_equal(chain_of(&g, &p, "conv1_conv")->end, node_of(&g, "conv1_conv"));
    for (int i = node_of(&g, "conv1_bn"); i < g.n; i++) assert_int_equal(p.nodes[i].role, FN_ROLE_DEAD);
    assert_int_equal(p.nodes[node_of(&g, "conv1_pad")].consumers, 1);
    fusenet__plan_free(&p);
    fusenet__graph_free(&g);
}

/* ZeroPadding2D before MaxPooling2D folds only if the pooled values are >= 0,
 * and before other layers never. */
static void test_pad_rules(void **state) {
    (void)state;
    fn_graph g = {0};
    int in = fusenet__input(&g, "input");
    int x = fusenet__conv2d(&g, in, 4, 3, 1, FN_PAD_SAME, FN_ACT_RELU, "relu_conv");
    x = fusenet__zero_pad(&g, x, 1, "pad_after_relu_conv");
    fusenet__max_pool(&g, x, 3, 2, "pool_a");
    x = fusenet__conv2d(&g, in, 4, 3, 1, FN_PAD_SAME, FN_ACT_NONE, "signed_conv");
    x = fusenet__zero_pad(&g, x, 1, "pad_after_signed");
    fusenet__max_pool(&g, x, 3, 2, "pool_b");
    x = fusenet__relu(&g, in, "relu");
    x = fusenet__zero_pad(&g, x, 2, "pad_before_gap");
    fusenet__global_pool(&g, x, 0, "gap");
    x = fusenet__zero_pad(&g, in, 1, "pad_two_readers");
    fusenet__conv2d(&g, x, 4, 3, 2, FN_PAD_VALID, FN_ACT_NONE, "reader_a");
    fusenet__conv2d(&g, x, 4, 3, 1, FN_PAD_SAME, FN_ACT_NONE, "reader_b");
    graph_done(&g);
    const char *taps[] = {"pool_a", "pool_b", "gap", "reader_a", "reader_b"};
    fn_plan p = plan_of(&g, taps, 5, 33, 35);
    assert_int_equal(role(&g, &p, "pad_after_relu_conv"), FN_ROLE_PAD);
    assert_int_equal(role(&g, &p, "pad_after_signed"), FN_ROLE_HEAD);
    assert_int_equal(chain_of(&g, &p, "pool_b")->pad, -1);
    assert_int_equal(role(&g, &p, "pad_before_gap"), FN_ROLE_HEAD);
    assert_int_equal(role(&g, &p, "pad_two_readers"), FN_ROLE_HEAD);
    assert_int_equal(p.nodes[node_of(&g, "pad_two_readers")].consumers, 2);
    /* 'same' 3x3/1 on a padded 35x37 input: Keras pads 1 + 1 more */
    const fn_chain *b = chain_of(&g, &p, "reader_b");
    assert_int_equal(b->pad, -1);
    assert_true(b->pad_l[0] == 1 && b->pad_r[0] == 1);
    fusenet__plan_free(&p);
    fusenet__graph_free(&g);
}

/* Conv2D(activation='relu') then BatchNormalization: the BN applies after the
 * ReLU and cannot fold into the weights. */
static void test_no_fold_past_activation(void **state) {
    (void)state;
    fn_graph g = {0};
    int x = fusenet__input(&g, "input");
    x = fusenet__conv2d(&g, x, 6, 3, 1, FN_PAD_SAME, FN_ACT_RELU, "conv");
    x = fusenet__batch_norm(&g, x, BN_EPS, "bn");
    fusenet__relu(&g, x, "relu");
    graph_done(&g);
    const char *t[] = {"relu"};
    fn_plan p = plan_of(&g, t, 1, 32, 32);
    assert_int_equal(p.n_chains, 3);
    assert_int_equal(role(&g, &p, "bn"), FN_ROLE_HEAD);
    assert_int_equal(role(&g, &p, "relu"), FN_ROLE_HEAD);
    assert_true(chain_of(&g, &p, "conv")->relu_post);
    fusenet__plan_free(&p);
    fusenet__graph_free(&g);
}

/* Residual adds: a sum post-op only into a buffer computed earlier that no
 * later layer reads, and not the conv's own input. */
static void test_residual_rules(void **state) {
    (void)state;
    fn_graph g = {0};
    int in = fusenet__input(&g, "input");
    int sc = fusenet__conv2d(&g, in, 8, 3, 1, FN_PAD_SAME, FN_ACT_RELU, "block0_out");
    /* identity block: the add folds into b1_conv2's chain, writing into block0_out */
    int x = fusenet__conv2d(&g, sc, 8, 1, 1, FN_PAD_VALID, FN_ACT_RELU, "b1_conv1");
    x = fusenet__conv2d(&g, x, 8, 3, 1, FN_PAD_SAME, FN_ACT_NONE, "b1_conv2");
    x = fusenet__batch_norm(&g, x, BN_EPS, "b1_bn");
    x = fusenet__add(&g, sc, x, "b1_add");
    int b1 = fusenet__relu(&g, x, "block1_out");
    /* the shortcut is the conv's own input: the add stays a layer */
    x = fusenet__conv2d(&g, b1, 8, 3, 1, FN_PAD_SAME, FN_ACT_NONE, "b2_conv");
    x = fusenet__add(&g, b1, x, "b2_add");
    int b2 = fusenet__relu(&g, x, "block2_out");
    /* the shortcut is read again later: the add stays a layer */
    x = fusenet__conv2d(&g, b2, 8, 1, 1, FN_PAD_VALID, FN_ACT_RELU, "b3_conv1");
    x = fusenet__conv2d(&g, x, 8, 1, 1, FN_PAD_VALID, FN_ACT_NONE, "b3_conv2");
    x = fusenet__add(&g, b2, x, "b3_add");
    fusenet__add(&g, b2, x, "b3_again");
    /* projection shortcut computed after the main path: the add folds into the shortcut's conv */
    x = fusenet__conv2d(&g, in, 8, 3, 2, FN_PAD_SAME, FN_ACT_NONE, "p_main");
    x = fusenet__batch_norm(&g, x, BN_EPS, "p_main_bn");
    int ps = fusenet__conv2d(&g, in, 8, 1, 2, FN_PAD_VALID, FN_ACT_NONE, "p_short");
    ps = fusenet__batch_norm(&g, ps, BN_EPS, "p_short_bn");
    x = fusenet__add(&g, x, ps, "p_add");
    fusenet__relu(&g, x, "p_out");
    /* the shortcut is the net's input (the caller's buffer): the add stays a layer */
    x = fusenet__conv2d(&g, in, 3, 3, 1, FN_PAD_SAME, FN_ACT_NONE, "i_conv");
    fusenet__add(&g, in, x, "i_add");
    graph_done(&g);

    const char *t[] = {"block1_out", "b3_again", "p_out", "i_add"};
    fn_plan p = plan_of(&g, t, 4, 34, 36);
    const fn_chain *c = chain_of(&g, &p, "block1_out");
    assert_string_equal(name_of(&g, c->head), "b1_conv2");
    assert_string_equal(name_of(&g, c->bn), "b1_bn");
    assert_string_equal(name_of(&g, c->sum), "b1_add");
    assert_string_equal(name_of(&g, c->shortcut), "block0_out");
    assert_string_equal(name_of(&g, c->relu), "block1_out");
    assert_int_equal(role(&g, &p, "b2_add"), FN_ROLE_HEAD);
    assert_int_equal(role(&g, &p, "block2_out"), FN_ROLE_HEAD);
    assert_int_equal(role(&g, &p, "b3_add"), FN_ROLE_HEAD);
    assert_int_equal(chain_of(&g, &p, "b3_conv2")->end, node_of(&g, "b3_conv2"));
    c = chain_of(&g, &p, "p_out");
    assert_string_equal(name_of(&g, c->head), "p_short");
    assert_string_equal(name_of(&g, c->shortcut), "p_main_bn");
    assert_string_equal(name_of(&g, chain_of(&g, &p, "p_main_bn")->head), "p_main");
    assert_int_equal(role(&g, &p, "i_add"), FN_ROLE_HEAD);
    fusenet__plan_free(&p);

    /* the tapped add: folded as its chain's end, the ReLU after it a layer;
     * a tapped BN before the add: the add stays a layer */
    const char *t2[] = {"b1_add", "block1_out"}, *t3[] = {"b1_bn", "block1_out"};
    p = plan_of(&g, t2, 2, 34, 36);
    assert_int_equal(role(&g, &p, "b1_add"), FN_ROLE_SUM);
    assert_int_equal(role(&g, &p, "block1_out"), FN_ROLE_HEAD);
    fusenet__plan_free(&p);
    p = plan_of(&g, t3, 2, 34, 36);
    assert_int_equal(role(&g, &p, "b1_bn"), FN_ROLE_BN);
    assert_int_equal(role(&g, &p, "b1_add"), FN_ROLE_HEAD);
    assert_int_equal(role(&g, &p, "block1_out"), FN_ROLE_HEAD);
    /* layers no tap needs are dead */
    assert_int_equal(role(&g, &p, "b2_conv"), FN_ROLE_DEAD);
    assert_int_equal(role(&g, &p, "p_main"), FN_ROLE_DEAD);
    fusenet__plan_free(&p);
    fusenet__graph_free(&g);
}

/* Flatten is a view; Dense and the pools are steps of their own. */
static void test_views_and_heads(void **state) {
    (void)state;
    fn_graph g = {0};
    int x = fusenet__input(&g, "input");
    x = fusenet__conv2d(&g, x, 4, 3, 2, FN_PAD_VALID, FN_ACT_RELU, "conv");
    x = fusenet__max_pool(&g, x, 2, 2, "pool");
    x = fusenet__flatten(&g, x, "flatten");
    fusenet__dense(&g, x, 5, FN_ACT_SOFTMAX, "predictions");
    graph_done(&g);
    const char *t[] = {"flatten", "predictions"};
    fn_plan p = plan_of(&g, t, 2, 32, 37);
    assert_int_equal(role(&g, &p, "flatten"), FN_ROLE_VIEW);
    assert_int_equal(role(&g, &p, "predictions"), FN_ROLE_HEAD);
    assert_int_equal(p.n_chains, 3);
    assert_true(p.shapes[node_of(&g, "flatten")].flat);
    assert_int_equal(p.shapes[node_of(&g, "flatten")].c, 7 * 9 * 4);
    fusenet__plan_free(&p);
    /* an input too small for a layer: SHAPE, empty plan */
    fusenet_error e;
    int big[] = {node_of(&g, "predictions")};
    fn_plan q;
    fn_graph g2 = {0};
    x = fusenet__input(&g2, "input");
    fusenet__conv2d(&g2, x, 4, 40, 1, FN_PAD_VALID, FN_ACT_NONE, "wide");
    graph_done(&g2);
    big[0] = 1;
    assert_int_equal(fusenet__plan(&g2, 32, 32, big, 1, &q, &e), FUSENET_ERR_SHAPE);
    assert_null(q.nodes);
    fusenet__plan_free(&q);
    fusenet__graph_free(&g2);
    fusenet__graph_free(&g);
}

/* The real graphs: every BatchNorm, Add, ReLU and padding of ResNet50 folds
 * (53 convs + 1 pool = 54 steps); VGG16 is 13 convs + 5 pools. */
static void test_real_models(void **state) {
    (void)state;
    static const struct {
        fusenet_arch arch;
        const char *tap;
        int chains;
    } cases[] = {{FUSENET_ARCH_RESNET50, "conv5_block3_out", 54}, {FUSENET_ARCH_VGG16, "block5_pool", 18}};
    for (int k = 0; k < 2; k++) {
        fusenet_model_params mp = fusenet_model_default_params();
        mp.arch = cases[k].arch;
        fusenet_model *m = NULL;
        assert_int_equal(fusenet_model_create(&mp, &m, NULL), FUSENET_OK);
        const char *t[] = {cases[k].tap};
        fn_plan p = plan_of(&m->g, t, 1, 224, 224);
        assert_int_equal(p.n_chains, cases[k].chains);
        for (int c = 0; c < p.n_chains; c++) {
            fn_op op = m->g.nodes[p.chains[c].head].op;
            assert_true(op == FN_OP_CONV2D || op == FN_OP_MAX_POOL);
        }
        for (int i = 0; i < p.n; i++) {
            fn_op op = m->g.nodes[i].op;
            if (op == FN_OP_BATCH_NORM || op == FN_OP_ZERO_PAD || op == FN_OP_ADD || op == FN_OP_RELU)
                assert_true(p.nodes[i].role != FN_ROLE_HEAD && p.nodes[i].role != FN_ROLE_DEAD);
        }
        fusenet__plan_free(&p);
        /* tapping every layer: nothing folds except into chain ends that are taps anyway */
        int taps[16], n = 0;
        for (int i = 1; i < m->g.n && n < 16; i += m->g.n / 16 + 1) taps[n++] = i;
        assert_int_equal(fusenet__plan(&m->g, 224, 224, taps, n, &p, NULL), FUSENET_OK);
        check_invariants(&m->g, &p, taps, n);
        fusenet__plan_free(&p);
        fusenet_model_free(m);
    }
}

/* Folding BatchNorm into a 1x1 conv with 3 inputs and 2 filters, checked
 * against conv then BatchNorm computed by hand in double on two inputs. */
static void test_fold_batch_norm(void **state) {
    (void)state;
    /* Keras (kh, kw, in, out) = (1, 1, 3, 2): w[i * 2 + o] */
    float w[6] = {0.5f, -1.0f, 2.0f, 0.25f, -0.75f, 1.5f}, b[2] = {0.1f, -0.2f};
    const float gamma[2] = {1.5f, 0.5f}, beta[2] = {0.3f, -0.4f}, mean[2] = {0.2f, -1.0f}, var[2] = {4.0f, 0.25f};
    const float eps = 1e-3f;
    const double xs[2][3] = {{1.0, 2.0, -3.0}, {-0.5, 0.25, 4.0}};
    double want[2][2];
    for (int s = 0; s < 2; s++)
        for (int o = 0; o < 2; o++) {
            double conv = b[o];
            for (int i = 0; i < 3; i++) conv += xs[s][i] * (double)w[i * 2 + o];
            want[s][o] = (double)gamma[o] * (conv - (double)mean[o]) / sqrt((double)var[o] + (double)eps) + beta[o];
        }
    /* by hand, channel 0 of input 0: conv = 0.1 + 1 * 0.5 + 2 * 2 + -3 * -0.75 = 6.85 */
    assert_true(fabs(want[0][0] - (1.5 * (0.1 + 0.5 * 1 + 2.0 * 2 - 0.75 * -3 - 0.2) / sqrt(4.001) + 0.3)) < 1e-6);
    fusenet__fold_batch_norm(w, b, 6, 2, gamma, beta, mean, var, eps);
    for (int s = 0; s < 2; s++)
        for (int o = 0; o < 2; o++) {
            double got = b[o];
            for (int i = 0; i < 3; i++) got += xs[s][i] * (double)w[i * 2 + o];
            assert_true(fabs(got - want[s][o]) <= 1e-6 * fmax(1.0, fabs(want[s][o])));
        }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stem),
        cmocka_unit_test(test_pad_rules),
        cmocka_unit_test(test_no_fold_past_activation),
        cmocka_unit_test(test_residual_rules),
        cmocka_unit_test(test_views_and_heads),
        cmocka_unit_test(test_real_models),
        cmocka_unit_test(test_fold_batch_norm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
