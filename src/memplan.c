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
