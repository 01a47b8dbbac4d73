/* memplan.c - liveness and placement of activation values in one arena. */
#include "memplan.h"

#include "alloc.h"
#include "error.h"

void fusenet__memplan_liveness(fn_value *values, int n_values, const fn_step *steps, int n_steps) {
    for (int v = 0; v < n_values; v++) values[v].first = values[v].last = -1;
    for (int s = 0; s < n_steps; s++)
        for (int a = 0; a < steps[s].nargs; a++) {
            fn_value *v = &values[steps[s].args[a].value];
            if (v->first < 0) v->first = s;
            v->last = s;
        }
}

static int alive_together(const fn_value *a, const fn_value *b) { return !(a->last < b->first || b->last < a->first); }

fusenet_status fusenet__memplan_place(fn_value *values, int n_values, size_t *arena_size, fusenet_error *err) {
    *arena_size = 0;
    int *order = fusenet__malloc((size_t)(n_values ? n_values : 1) * sizeof *order);
    if (!order) return fusenet__error(err, FUSENET_ERR_NOMEM, "out of memory planning the net's memory");
    int m = 0;
    for (int i = 0; i < n_values; i++)
        if (values[i].kind == FN_VALUE_ARENA && values[i].first >= 0) order[m++] = i;
    for (int i = 1; i < m; i++) { /* insertion sort, sizes descending, stable */
        int x = order[i], j = i - 1;
        while (j >= 0 && values[order[j]].size < values[x].size) {
            order[j + 1] = order[j];
            j--;
        }
        order[j + 1] = x;
    }
    size_t arena = 0;
    for (int i = 0; i < m; i++) { /* order[0..i) are placed */
        fn_value *v = &values[order[i]];
        size_t offset = 0;
        for (int again = 1; again;) {
            again = 0;
            for (int k = 0; k < i; k++) {
                const fn_value *u = &values[order[k]];
                if (!alive_together(u, v)) continue;
                if (offset < u->offset + u->size && u->offset < offset + v->size) {
                    offset = u->offset + u->size;
                    again = 1;
                }
            }
        }
        v->offset = offset;
        if (offset + v->size > arena) arena = offset + v->size;
    }
    fusenet__free(order);
    *arena_size = arena;
    return fusenet__ok(err);
}

/* Where node x is last read: the head of the last step reading it (a layer
 * folded into a step reads when the step runs), or x itself. */
static int last_read(const fn_graph *g, const fn_plan *p, int x) {
    int last = x;
    for (int j = x + 1; j < g->n; j++) {
        if (p->nodes[j].role == FN_ROLE_DEAD) continue;
        int at = p->nodes[j].chain >= 0 ? p->chains[p->nodes[j].chain].head : j;
        for (int k = 0; k < g->nodes[j].n_in; k++)
            if (g->nodes[j].in[k] == x && at > last) last = at;
    }
    return last;
}

/* Bytes of chain c's output for one image. */
static double chain_bytes(const fn_plan *p, int c) {
    const fn_shape *s = &p->shapes[p->chains[c].end];
    return 4.0 * (s->flat ? 1.0 : (double)s->h * (double)s->w) * (double)s->c;
}

int fusenet__memplan_micro_images(int batch, int max_images) {
    int m = batch < max_images ? batch : max_images > 0 ? max_images : 1;
    while (batch % m) m--;
    return m;
}

/* The most bytes alive at once when chains before `cut` run micro micro-batches
 * (cut -1: none) and the rest, the cut's output included, on the batch. */
static double peak_bytes(const fn_graph *g, const fn_plan *p, const int *last, int batch, int micro, int cut) {
    double peak = 0.0;
    for (int at = 0; at < g->n; at++) {
        double alive = 0.0;
        for (int c = 0; c < p->n_chains; c++)
            if (p->chains[c].head <= at && last[c] >= at) alive += chain_bytes(p, c) * (c < cut ? micro : batch);
        if (alive > peak) peak = alive;
    }
    return peak;
}

int fusenet__memplan_micro_cut(const fn_graph *g, const fn_plan *p, int batch, int max_images, double *peak) {
    int *last = fusenet__malloc((size_t)(p->n_chains ? p->n_chains : 1) * sizeof *last);
    if (!last) return -1; /* no micro-batching: the build goes on as without it */
    for (int c = 0; c < p->n_chains; c++) last[c] = last_read(g, p, p->chains[c].end);
    int micro = fusenet__memplan_micro_images(batch, max_images);
    double best = peak_bytes(g, p, last, batch, micro, -1);
    int cut = -1, input_read_last = -1;
    for (int i = 0; i < g->n; i++)
        if (p->nodes[i].role == FN_ROLE_INPUT) input_read_last = last_read(g, p, i);
    for (int k = 0; k < p->n_chains && micro < batch; k++) {
        const fn_chain *ch = &p->chains[k];
        const fn_shape *s = &p->shapes[ch->end];
        if (s->flat || (double)s->h * s->w < FN_MICRO_MIN_PIXELS) break;
        int blocked = 0; /* a tap or a view up to the cut, or a value other than its output read after it */
        for (int i = 0; i <= ch->end; i++) blocked |= p->nodes[i].tapped || p->nodes[i].role == FN_ROLE_VIEW;
        for (int c = 0; c < k; c++) blocked |= last[c] > ch->head;
        blocked |= input_read_last > ch->head;
        if (blocked) continue;
        double b = peak_bytes(g, p, last, batch, micro, k);
        if (b < best) {
            best = b;
            cut = k;
        }
    }
    fusenet__free(last);
    if (peak) *peak = best;
    return cut;
}

void fusenet__memplan_estimate(const fn_graph *g, const fn_plan *p, int batch, fn_mem_estimate *e) {
    e->activations = e->weights = 0.0;
    for (int i = 0; i < g->n; i++)
        if (p->nodes[i].role != FN_ROLE_DEAD) e->weights += 4.0 * (double)fusenet__node_params(g, &g->nodes[i], p->shapes);
    for (int at = 0; at < g->n; at++) { /* bytes alive while node `at` is computed */
        double alive = 0.0;
        for (int c = 0; c < p->n_chains; c++) {
            const fn_chain *ch = &p->chains[c];
            if (ch->head > at || last_read(g, p, ch->end) < at) continue;
            const fn_shape *s = &p->shapes[ch->end];
            alive += 4.0 * (double)batch * (s->flat ? 1.0 : (double)s->h * (double)s->w) * (double)s->c;
        }
        if (alive > e->activations) e->activations = alive;
    }
}
