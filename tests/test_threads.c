/* test_threads.c - models shared read-only between threads, one net per thread.
 *
 * One ResNet50 and one VGG16 model (seeded random weights in the official file
 * layout, loaded once with only the weights the taps need) are shared by
 * NTHREADS threads. Each thread builds its own fused net from the SAME two
 * models (all threads build at the same time, released by a barrier), then
 * runs ITERS iterations over NINPUTS seeded inputs, each thread starting at a
 * different input. Every fused map and every tap output must be bit-identical
 * (memcmp) to the output of a single-threaded run of the same input computed
 * before the threads start. The models are then checked to be unchanged by
 * building and running one more net after the threads are done. A second test
 * has 4 threads load the same two files at once and checks their outputs.
 *
 * A third test gives two nets different thread counts (1 and 2) and runs them
 * from two threads at once, each thread's own OpenMP setting being 3 (neither
 * count). OpenMP keeps one pool of worker threads per calling thread, of the
 * size of the largest team that caller ran, and the pools stay alive while the
 * callers do: so with the two callers alive the process must have exactly one
 * worker thread more than before (none for the 1-thread net, one for the
 * 2-thread net). A count ignored at run (teams of 3), taken from one global
 * (both 1 or both 2) or ignored at build (kernels sized for the builder's
 * count) gives 0, 2 or 4. After each run the caller's setting must be 3 again.
 *
 * The compute thread count is left at its default: every primitive still runs
 * its own OpenMP team inside each of our threads, so the host is
 * oversubscribed on purpose. oneDNN's kernels split work over the output
 * (no cross-thread reductions in forward inference), so results must not
 * depend on which thread or team computes them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fusenet.h"
#include "model.h"
#include "test_util.h"

#ifndef FN_BUILD_DIR
#define FN_BUILD_DIR "."
#endif

#define RESNET_PATH FN_BUILD_DIR "/threads_random_resnet50.h5"
#define VGG_PATH FN_BUILD_DIR "/threads_random_vgg16.h5"

#define NTHREADS 4
#define ITERS 20
#define NINPUTS 5
#define BATCH 2
#define IN_H 64
#define IN_W 80
#define RESNET_TAP "conv3_block1_out" /* 8 x 10 x 512 at 64 x 80 */
#define VGG_TAP "block3_pool"         /* 8 x 10 x 256: no resize */
#define VGG_TAP2 "block2_conv2"       /* 32 x 40 x 128: resized to 8 x 10 */
#define NTAPS 3

typedef struct outputs {
    fusenet_tensor fused;
    fusenet_tensor taps[NTAPS];
    float *store; /* owns the copies */
} outputs;

static fusenet_model *g_resnet, *g_vgg;
static float *g_inputs[NINPUTS];
static outputs g_ref[NINPUTS];
static pthread_barrier_t g_barrier;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static size_t tensor_elems(const fusenet_tensor *t) { return (size_t)t->n * t->h * t->w * t->c; }

static void fill_input(float *x, size_t n, uint64_t seed) {
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((s >> 40) & 0xFFFF) / 65535.0f * 250.0f - 125.0f; /* caffe range */
    }
}

/* Builds the three-tap fused net over the given models; returns NULL (with a
 * message in err) on failure. */
static fusenet_net *build_net_threads(fusenet_model *resnet, fusenet_model *vgg, int threads, fusenet_error *err) {
    fusenet_tap taps[NTAPS] = {{resnet, RESNET_TAP}, {vgg, VGG_TAP}, {vgg, VGG_TAP2}};
    fusenet_net_params p = fusenet_net_default_params();
    p.taps = taps;
    p.n_taps = NTAPS;
    p.batch = BATCH;
    p.in_h = IN_H;
    p.in_w = IN_W;
    p.fuse = 1;
    p.threads = threads;
    fusenet_net *net = NULL;
    if (fusenet_net_build(&p, &net, err) != FUSENET_OK) return NULL;
    return net;
}

static fusenet_net *build_net_from(fusenet_model *resnet, fusenet_model *vgg, fusenet_error *err) {
    return build_net_threads(resnet, vgg, 0, err);
}

static fusenet_net *build_net(fusenet_error *err) { return build_net_from(g_resnet, g_vgg, err); }

static fusenet_status run_net(fusenet_net *net, const float *x, fusenet_error *err) {
    fusenet_tensor in = {(float *)x, BATCH, IN_H, IN_W, 3};
    return fusenet_net_run(net, &in, err);
}

/* Copies the fused map and the tap outputs of the last run. */
static void snapshot(const fusenet_net *net, outputs *o) {
    fusenet_error err;
    assert_int_equal(fusenet_net_output(net, &o->fused, &err), FUSENET_OK);
    size_t total = tensor_elems(&o->fused);
    for (size_t t = 0; t < NTAPS; t++) {
        assert_int_equal(fusenet_net_tap_output(net, t, &o->taps[t], &err), FUSENET_OK);
        total += tensor_elems(&o->taps[t]);
    }
    o->store = malloc(total * sizeof(float));
    assert_non_null(o->store);
    float *p = o->store;
    memcpy(p, o->fused.data, tensor_elems(&o->fused) * sizeof(float));
    o->fused.data = p;
    p += tensor_elems(&o->fused);
    for (size_t t = 0; t < NTAPS; t++) {
        memcpy(p, o->taps[t].data, tensor_elems(&o->taps[t]) * sizeof(float));
        o->taps[t].data = p;
        p += tensor_elems(&o->taps[t]);
    }
}

static int same_tensor(const fusenet_tensor *a, const fusenet_tensor *b) {
    return a->n == b->n && a->h == b->h && a->w == b->w && a->c == b->c &&
           memcmp(a->data, b->data, tensor_elems(a) * sizeof(float)) == 0;
}

/* Compares the net's current outputs with the reference; 0 if identical. */
static int differs(const fusenet_net *net, const outputs *ref, char *why, size_t why_size) {
    fusenet_tensor t;
    fusenet_error err;
    if (fusenet_net_output(net, &t, &err) != FUSENET_OK || !same_tensor(&t, &ref->fused)) {
        snprintf(why, why_size, "fused map");
        return 1;
    }
    for (size_t i = 0; i < NTAPS; i++) {
        if (fusenet_net_tap_output(net, i, &t, &err) != FUSENET_OK || !same_tensor(&t, &ref->taps[i])) {
            snprintf(why, why_size, "tap %zu", i);
            return 1;
        }
    }
    return 0;
}

/* ---- fixtures -------------------------------------------------------------- */

static int group_setup(void **state) {
    (void)state;
    if (fx_write_weights(FUSENET_ARCH_RESNET50, 31, RESNET_PATH) || fx_write_weights(FUSENET_ARCH_VGG16, 32, VGG_PATH))
        return -1;
    static const char *const rneed[] = {RESNET_TAP};
    static const char *const vneed[] = {VGG_TAP, VGG_TAP2};
    g_resnet = fx_model_load(RESNET_PATH, FUSENET_ARCH_RESNET50, rneed, 1);
    g_vgg = fx_model_load(VGG_PATH, FUSENET_ARCH_VGG16, vneed, 2);
    if (!g_resnet || !g_vgg) return -1;
    size_t n = (size_t)BATCH * IN_H * IN_W * 3;
    for (int i = 0; i < NINPUTS; i++) {
        g_inputs[i] = malloc(n * sizeof(float));
        if (!g_inputs[i]) return -1;
        fill_input(g_inputs[i], n, (uint64_t)i + 100);
    }
    return 0;
}

static int group_teardown(void **state) {
    (void)state;
    for (int i = 0; i < NINPUTS; i++) {
        free(g_inputs[i]);
        free(g_ref[i].store);
    }
    fusenet_model_free(g_resnet);
    fusenet_model_free(g_vgg);
    remove(RESNET_PATH);
    remove(VGG_PATH);
    return 0;
}

/* ---- the test ---------------------------------------------------------------- */

typedef struct worker {
    int id;
    int runs;
    char failure[FUSENET_ERROR_MESSAGE_SIZE + 64]; /* empty: all good */
} worker;

static void *work(void *arg) {
    worker *w = arg;
    fusenet_error err;
    pthread_barrier_wait(&g_barrier); /* every thread builds at the same time */
    fusenet_net *net = build_net(&err);
    if (!net) {
        snprintf(w->failure, sizeof w->failure, "thread %d: build: %s", w->id, err.message);
        return NULL;
    }
    for (int it = 0; it < ITERS; it++) {
        int k = (w->id + it) % NINPUTS;
        if (run_net(net, g_inputs[k], &err) != FUSENET_OK) {
            snprintf(w->failure, sizeof w->failure, "thread %d iteration %d: run: %s", w->id, it, err.message);
            break;
        }
        w->runs++;
        char why[64];
        if (differs(net, &g_ref[k], why, sizeof why)) {
            snprintf(w->failure, sizeof w->failure, "thread %d iteration %d input %d: %s differs from the "
                     "single-threaded run", w->id, it, k, why);
            break;
        }
    }
    fusenet_net_free(net);
    return NULL;
}

static void test_shared_models_many_threads(void **state) {
    (void)state;
    fusenet_error err;
    double t0 = now_s();

    /* references, single-threaded, before any thread exists */
    fusenet_net *net = build_net(&err);
    if (!net) fail_msg("build: %s", err.message);
    for (int i = 0; i < NINPUTS; i++) {
        if (run_net(net, g_inputs[i], &err) != FUSENET_OK) fail_msg("run: %s", err.message);
        snapshot(net, &g_ref[i]);
    }
    /* a second run of the same net reproduces the first (sanity for memcmp) */
    if (run_net(net, g_inputs[0], &err) != FUSENET_OK) fail_msg("run: %s", err.message);
    char why[64];
    if (differs(net, &g_ref[0], why, sizeof why)) fail_msg("rerun of input 0: %s differs", why);
    /* distinct inputs give distinct maps (else the comparison proves nothing) */
    assert_false(same_tensor(&g_ref[0].fused, &g_ref[1].fused));
    fusenet_net_free(net);
    double t1 = now_s();

    worker w[NTHREADS];
    pthread_t th[NTHREADS];
    assert_int_equal(pthread_barrier_init(&g_barrier, NULL, NTHREADS), 0);
    for (int i = 0; i < NTHREADS; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].id = i;
        assert_int_equal(pthread_create(&th[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < NTHREADS; i++) assert_int_equal(pthread_join(th[i], NULL), 0);
    pthread_barrier_destroy(&g_barrier);
    double t2 = now_s();

    int failed = 0;
    for (int i = 0; i < NTHREADS; i++) {
        if (w[i].failure[0]) {
            print_error("%s\n", w[i].failure);
            failed = 1;
        }
    }
    if (failed) fail_msg("%s", "outputs of the threads differ from the single-threaded run");
    for (int i = 0; i < NTHREADS; i++) assert_int_equal(w[i].runs, ITERS);

    /* the shared models are unchanged: a fresh net still reproduces every reference */
    net = build_net(&err);
    if (!net) fail_msg("build: %s", err.message);
    for (int i = 0; i < NINPUTS; i++) {
        if (run_net(net, g_inputs[i], &err) != FUSENET_OK) fail_msg("run: %s", err.message);
        if (differs(net, &g_ref[i], why, sizeof why)) fail_msg("after the threads, input %d: %s differs", i, why);
    }
    fusenet_net_free(net);
    print_message("  references %.2f s, %d threads x %d runs %.2f s, total %.2f s\n", t1 - t0, NTHREADS, ITERS,
                  t2 - t1, now_s() - t0);
}

/* Loads may run concurrently, also of the same file (the HDF5 reader keeps no
 * global state): NTHREADS threads load both files at once, each builds a net
 * over its own models, and every output must be bit-identical to a net over
 * the models loaded before any thread started. */
typedef struct loader {
    int id;
    const float *input;
    const outputs *ref;
    char failure[FUSENET_ERROR_MESSAGE_SIZE + 64];
} loader;

static void *load_and_run(void *arg) {
    loader *l = arg;
    static const char *const rneed[] = {RESNET_TAP};
    static const char *const vneed[] = {VGG_TAP, VGG_TAP2};
    pthread_barrier_wait(&g_barrier); /* every thread loads at the same time */
    fusenet_model *r = fx_model_load(RESNET_PATH, FUSENET_ARCH_RESNET50, rneed, 1);
    fusenet_model *v = fx_model_load(VGG_PATH, FUSENET_ARCH_VGG16, vneed, 2);
    fusenet_error err;
    fusenet_net *net = r && v ? build_net_from(r, v, &err) : NULL;
    char why[64];
    if (!r || !v) snprintf(l->failure, sizeof l->failure, "thread %d: load failed", l->id);
    else if (!net) snprintf(l->failure, sizeof l->failure, "thread %d: build: %s", l->id, err.message);
    else if (run_net(net, l->input, &err) != FUSENET_OK)
        snprintf(l->failure, sizeof l->failure, "thread %d: run: %s", l->id, err.message);
    else if (differs(net, l->ref, why, sizeof why))
        snprintf(l->failure, sizeof l->failure, "thread %d: %s differs from the models loaded first", l->id, why);
    fusenet_net_free(net);
    fusenet_model_free(r);
    fusenet_model_free(v);
    return NULL;
}

static void test_concurrent_loads(void **state) {
    (void)state;
    fusenet_error err;
    fusenet_net *net = build_net(&err);
    if (!net) fail_msg("build: %s", err.message);
    if (run_net(net, g_inputs[0], &err) != FUSENET_OK) fail_msg("run: %s", err.message);
    outputs ref;
    snapshot(net, &ref);
    fusenet_net_free(net);
    loader l[NTHREADS];
    pthread_t th[NTHREADS];
    assert_int_equal(pthread_barrier_init(&g_barrier, NULL, NTHREADS), 0);
    for (int i = 0; i < NTHREADS; i++) {
        memset(&l[i], 0, sizeof l[i]);
        l[i] = (loader){i, g_inputs[0], &ref, ""};
        assert_int_equal(pthread_create(&th[i], NULL, load_and_run, &l[i]), 0);
    }
    for (int i = 0; i < NTHREADS; i++) assert_int_equal(pthread_join(th[i], NULL), 0);
    pthread_barrier_destroy(&g_barrier);
    free(ref.store);
    for (int i = 0; i < NTHREADS; i++)
        if (l[i].failure[0]) fail_msg("%s", l[i].failure);
}

/* ---- threads per net ------------------------------------------------------------ */

#define CALLER_THREADS 3 /* each caller's own OpenMP setting: neither net's count */
#define PER_NET_RUNS 3

typedef struct caller {
    fusenet_net *net;
    int threads_after; /* the caller's omp_get_max_threads() after each run (must stay CALLER_THREADS) */
    char failure[FUSENET_ERROR_MESSAGE_SIZE + 64];
} caller;

static pthread_barrier_t g_start, g_counted, g_release;

/* Threads of this process (Linux: one entry per thread in /proc/self/task). */
static int count_threads(void) {
    DIR *d = opendir("/proc/self/task");
    if (!d) return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static void *run_own_count(void *arg) {
    caller *c = arg;
    omp_set_num_threads(CALLER_THREADS);
    pthread_barrier_wait(&g_start); /* both callers run at the same time */
    fusenet_error err;
    for (int it = 0; it < PER_NET_RUNS && !c->failure[0]; it++) {
        if (run_net(c->net, g_inputs[it % NINPUTS], &err) != FUSENET_OK)
            snprintf(c->failure, sizeof c->failure, "run: %s", err.message);
        c->threads_after = omp_get_max_threads();
        if (c->threads_after != CALLER_THREADS)
            snprintf(c->failure, sizeof c->failure, "the caller's OpenMP setting is %d after a run, not %d",
                     c->threads_after, CALLER_THREADS);
    }
    pthread_barrier_wait(&g_counted); /* the main thread counts while both callers (and pools) live */
    pthread_barrier_wait(&g_release);
    return NULL;
}

static float max_abs_diff(const fusenet_tensor *a, const fusenet_tensor *b, float *scale) {
    float d = 0, m = 0;
    for (size_t i = 0; i < tensor_elems(a); i++) {
        float x = a->data[i] - b->data[i];
        if (x < 0) x = -x;
        if (x > d) d = x;
        if (b->data[i] > m) m = b->data[i];
        if (-b->data[i] > m) m = -b->data[i];
    }
    *scale = m;
    return d;
}

static void test_threads_per_net(void **state) {
    (void)state;
    fusenet_error err;
    int main_threads = omp_get_max_threads();
    omp_set_num_threads(CALLER_THREADS); /* the builder's own setting: not the nets' either */
    caller c[2];
    memset(c, 0, sizeof c);
    c[0].net = build_net_threads(g_resnet, g_vgg, 1, &err);
    if (!c[0].net) fail_msg("build: %s", err.message);
    c[1].net = build_net_threads(g_resnet, g_vgg, 2, &err);
    if (!c[1].net) fail_msg("build: %s", err.message);
    assert_int_equal(omp_get_max_threads(), CALLER_THREADS); /* a build restores the builder's setting */
    omp_set_num_threads(main_threads);

    int before = count_threads();
    assert_true(before > 0);
    assert_int_equal(pthread_barrier_init(&g_start, NULL, 2), 0);
    assert_int_equal(pthread_barrier_init(&g_counted, NULL, 3), 0);
    assert_int_equal(pthread_barrier_init(&g_release, NULL, 3), 0);
    pthread_t th[2];
    for (int i = 0; i < 2; i++) assert_int_equal(pthread_create(&th[i], NULL, run_own_count, &c[i]), 0);
    pthread_barrier_wait(&g_counted);
    int during = count_threads();
    pthread_barrier_wait(&g_release);
    for (int i = 0; i < 2; i++) assert_int_equal(pthread_join(th[i], NULL), 0);
    pthread_barrier_destroy(&g_start);
    pthread_barrier_destroy(&g_counted);
    pthread_barrier_destroy(&g_release);
    for (int i = 0; i < 2; i++)
        if (c[i].failure[0]) fail_msg("net with %d thread(s): %s", i + 1, c[i].failure);
    int workers = during - before - 2; /* minus the two callers */
    print_message("  threads before %d, with both callers alive %d: %d OpenMP worker(s)\n", before, during, workers);
    if (workers != 1)
        fail_msg("the 1-thread and the 2-thread net ran with %d OpenMP worker threads between them, not 1 "
                 "(0 + 1): their thread counts were not each their own", workers);

    /* both nets still compute the same maps as a net at the default count (summation order may differ) */
    fusenet_net *ref = build_net(&err);
    if (!ref) fail_msg("build: %s", err.message);
    if (run_net(ref, g_inputs[0], &err) != FUSENET_OK) fail_msg("run: %s", err.message);
    fusenet_tensor want, got;
    assert_int_equal(fusenet_net_output(ref, &want, &err), FUSENET_OK);
    for (int i = 0; i < 2; i++) {
        if (run_net(c[i].net, g_inputs[0], &err) != FUSENET_OK) fail_msg("run: %s", err.message);
        assert_int_equal(fusenet_net_output(c[i].net, &got, &err), FUSENET_OK);
        float scale, d = max_abs_diff(&got, &want, &scale);
        if (!(d <= 1e-4f * scale)) fail_msg("net with %d thread(s): fused map differs by %g (scale %g)", i + 1, d, scale);
        fusenet_net_free(c[i].net);
    }
    fusenet_net_free(ref);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threads_per_net),
        cmocka_unit_test(test_shared_models_many_threads),
        cmocka_unit_test(test_concurrent_loads),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
