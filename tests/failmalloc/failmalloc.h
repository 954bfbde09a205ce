/* Allocation-failure sweeps (the approach of nghttp2's failmalloc test): a
 * scenario runs once with a counting allocator to learn how many allocations
 * it makes, then once per index i with the i-th allocation failing. Every run
 * must end cleanly (the scenario returns; a NOMEM surfaces as an error, never
 * a crash) and free every block it allocated: the allocator counts live
 * blocks, and the ASan build adds use-after-free and leak detection.
 *
 * A second pass fails every allocation from the i-th on (the heap stays
 * exhausted), as nghttp2 does. Long scenarios are swept at every index up to FM_DENSE and at a
 * stride after it, so a run stays within FM_MAX_RUNS; FLARE_FAILMALLOC_FULL=1 in the environment
 * sweeps every index. FLARE_FAILMALLOC_ONLY=i makes only the run failing allocation i (it prints
 * where that allocation is made; with ASan, the leak report shows what leaked). */
#ifndef FLARE_TEST_FAILMALLOC_H
#define FLARE_TEST_FAILMALLOC_H

#include <execinfo.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "support/test.h"

#include "flare/common.h"

#define FM_DENSE    400
#define FM_MAX_RUNS 700

typedef struct fm {
    flare_mem mem;
    long count;         /* allocations attempted (malloc, calloc, realloc) */
    long fail_at;       /* index of the allocation to fail; -1: none */
    int from;           /* fail every allocation from fail_at on */
    int failed;         /* the failure was injected */
    long live;          /* blocks allocated and not yet freed */
    const char *broken; /* set by a scenario: an invariant failed (e.g. a lost callback) */
} fm;

/* Symbolized stacks in the sanitizer build. */
void __sanitizer_print_stack_trace(void) __attribute__((weak));

/* Each block carries its size in front, for realloc. */
#define FM_HDR sizeof(max_align_t)

static inline int fm_should_fail(fm *m)
{
    long i = m->count++;
    if (m->fail_at < 0 || i < m->fail_at || (i > m->fail_at && !m->from))
        return 0;
    if (i == m->fail_at && getenv("FLARE_FAILMALLOC_ONLY")) { /* debugging: where it fails */
        void *bt[32];
        fprintf(stderr, "failmalloc: allocation %ld fails here:\n", i);
        if (__sanitizer_print_stack_trace)
            __sanitizer_print_stack_trace();
        else
            backtrace_symbols_fd(bt, backtrace(bt, 32), 2);
    }
    m->failed = 1;
    return 1;
}

static inline void *fm_raw(fm *m, size_t n)
{
    size_t *p = malloc(n + FM_HDR);
    if (!p)
        return NULL;
    *p = n;
    m->live++;
    return (char *)p + FM_HDR;
}

static inline void *fm_malloc(size_t n, void *u)
{
    fm *m = u;
    return fm_should_fail(m) ? NULL : fm_raw(m, n);
}

static inline void fm_free(void *q, void *u)
{
    fm *m = u;
    if (!q)
        return;
    m->live--;
    free((char *)q - FM_HDR);
}

static inline void *fm_calloc(size_t k, size_t n, void *u)
{
    fm *m = u;
    if (n && k > (size_t)-1 / n)
        return NULL;
    if (fm_should_fail(m))
        return NULL;
    void *q = fm_raw(m, k * n);
    if (q)
        memset(q, 0, k * n);
    return q;
}

/* A failed realloc leaves the old block as it was. */
static inline void *fm_realloc(void *q, size_t n, void *u)
{
    fm *m = u;
    if (fm_should_fail(m))
        return NULL;
    void *r = fm_raw(m, n);
    if (!r || !q)
        return r;
    size_t old = *(size_t *)(void *)((char *)q - FM_HDR);
    memcpy(r, q, old < n ? old : n);
    fm_free(q, u);
    return r;
}

static inline void fm_init(fm *m, long fail_at, int from)
{
    memset(m, 0, sizeof(*m));
    m->mem = (flare_mem){m, fm_malloc, fm_free, fm_calloc, fm_realloc};
    m->fail_at = fail_at;
    m->from = from;
}

/* A scenario sets itself up with m->mem, runs, tears everything down and
 * returns 0 (it completed) or a negative error (it stopped cleanly on one).
 * ctx is the test's own. */
typedef int (*fm_scenario)(fm *m, void *ctx);

static inline int fm_full(void)
{
    const char *e = getenv("FLARE_FAILMALLOC_FULL");
    return e && *e && *e != '0';
}

typedef struct fm_result {
    long allocs; /* of the clean run */
    long runs;   /* failing runs made (both passes) */
    long errors; /* of which the scenario reported an error */
} fm_result;

/* Runs the sweep of sc; fails the test (with the index) on a leak or on an
 * error without an injected failure. */
static inline fm_result fm_sweep(const char *name, fm_scenario sc, void *ctx)
{
    fm_result r = {0, 0, 0};
    fm m;
    fm_init(&m, -1, 0);
    int rv = sc(&m, ctx);
    if (rv != 0)
        fail_msg("%s: the scenario fails without an injected failure (%d)", name, rv);
    if (m.live != 0 || m.broken)
        fail_msg("%s: %ld blocks leaked (%s) without an injected failure", name, m.live,
                 m.broken ? m.broken : "");
    r.allocs = m.count;
    long stride = 1;
    if (!fm_full() && r.allocs > FM_MAX_RUNS)
        stride = (r.allocs - FM_DENSE) / (FM_MAX_RUNS - FM_DENSE) + 1;
    const char *only = getenv("FLARE_FAILMALLOC_ONLY");
    for (int from = 0; from <= 1; from++) {
        for (long i = 0; i < r.allocs; i += i < FM_DENSE ? 1 : stride) {
            if (only && *only && atol(only) != i)
                continue;
            fm_init(&m, i, from);
            rv = sc(&m, ctx);
            r.runs++;
            if (rv != 0)
                r.errors++;
            if (m.live != 0 && !only)
                fail_msg("%s: %ld blocks leaked when allocation %ld%s of %ld failed (rv %d)", name,
                         m.live, i, from ? " and all after it" : "", r.allocs, rv);
            if (m.broken)
                fail_msg("%s: %s when allocation %ld%s failed", name, m.broken, i,
                         from ? " and all after it" : "");
            if (rv != 0 && !m.failed)
                fail_msg("%s: error %d at index %ld without an injected failure", name, rv, i);
        }
    }
    printf("failmalloc %-24s %6ld allocations, %5ld failing runs (%ld ended in an error)%s\n", name,
           r.allocs, r.runs, r.errors, stride > 1 ? ", strided" : "");
    return r;
}

#endif
