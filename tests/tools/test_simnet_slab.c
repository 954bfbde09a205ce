/* The simulation's slab allocator (tools/simnet/slab.c) against a reference
 * model: every live block keeps the pattern written into it, no two live
 * blocks overlap, sizes and alignment are as asked, realloc keeps content,
 * calloc zeroes reused memory, blocks freed on another thread are reused
 * safely, and simnet's hooks count exactly the bytes asked for. Each test
 * runs on the slabs and on the malloc fallback. */
#include "support/test.h"

#include <pthread.h>

#include "simnet/simnet.h"
#include "simnet/slab.h"

typedef struct blk {
    unsigned char *p;
    size_t n;
    unsigned char tag;
} blk;

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Mostly small sizes across all classes, now and then malloc'd and mapped. */
static size_t rnd_size(uint64_t *s)
{
    uint64_t r = rnd(s);
    switch (r % 16) {
    case 0:
        return SIMNET_SLAB_MAX + (size_t)(r >> 8) % (40u << 10); /* malloc's range */
    case 1:
        return (r >> 8) % 64 == 0 ? ((size_t)1 << 20) + (size_t)(r >> 16) % (3u << 20) : 0;
    case 2:
    case 3:
        return (size_t)(r >> 8) % (SIMNET_SLAB_MAX + 64);
    default:
        return (size_t)(r >> 8) % 300;
    }
}

/* The pattern a block carries: its tag, varied by position. */
static void fill(blk *b)
{
    for (size_t i = 0; i < b->n; i++)
        b->p[i] = (unsigned char)(b->tag + i * 7);
}

static void check(const blk *b)
{
    for (size_t i = 0; i < b->n; i++)
        if (b->p[i] != (unsigned char)(b->tag + i * 7))
            fail_msg("block %p (%zu bytes, tag %u) changed at byte %zu", (void *)b->p, b->n, b->tag,
                     i);
}

static int by_addr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const blk *)a)->p, y = (uintptr_t)((const blk *)b)->p;
    return x < y ? -1 : x > y;
}

/* No two of the live blocks overlap (a zero-sized block still owns a byte). */
static void check_disjoint(const blk *v, size_t nv)
{
    blk *s = malloc(nv * sizeof(*s) + 1);
    size_t k = 0;
    for (size_t i = 0; i < nv; i++)
        if (v[i].p)
            s[k++] = v[i];
    qsort(s, k, sizeof(*s), by_addr);
    for (size_t i = 1; i < k; i++) {
        size_t len = s[i - 1].n ? s[i - 1].n : 1;
        if ((uintptr_t)s[i - 1].p + len > (uintptr_t)s[i].p)
            fail_msg("blocks %p+%zu and %p overlap", (void *)s[i - 1].p, len, (void *)s[i].p);
    }
    free(s);
}

static void new_blk(simnet_slab *s, blk *b, size_t n, unsigned char tag)
{
    b->p = simnet_slab_alloc(s, n);
    assert_non_null(b->p);
    assert_int_equal((uintptr_t)b->p % 16, 0);
    assert_int_equal(simnet_slab_size(s, b->p), n);
    b->n = n;
    b->tag = tag;
    fill(b);
}

static const simnet_slab_mode modes[] = {SIMNET_SLAB_SLABS, SIMNET_SLAB_SYSTEM};

/* Every size from 0 across all classes and beyond, all live at once. */
static void test_sizes(void **state)
{
    (void)state;
    for (int m = 0; m < 2; m++) {
        simnet_slab *s = simnet_slab_new(modes[m]);
        assert_non_null(s);
        assert_int_equal(simnet_slab_uses_slabs(s), m == 0);
        enum { NB = 1200 };
        static blk v[NB];
        size_t nv = 0;
        for (size_t n = 0; n <= SIMNET_SLAB_MAX + 40; n += n < 600 ? 1 : 61)
            new_blk(s, &v[nv], n, (unsigned char)nv), nv++;
        size_t large[] = {(size_t)1 << 20, (3u << 20) + 5, 70000};
        for (int i = 0; i < 3; i++)
            new_blk(s, &v[nv], large[i], (unsigned char)nv), nv++;
        assert_true(nv <= NB);
        if (m == 0)
            assert_true(simnet_slab_mapped(s) >= (size_t)8 << 20);
        check_disjoint(v, nv);
        for (size_t i = 0; i < nv; i++)
            check(&v[i]);
        for (size_t i = 0; i < nv; i += 2)
            simnet_slab_free(s, v[i].p), v[i].p = NULL;
        /* The freed blocks come back for the same sizes, not over live ones. */
        for (size_t i = 0; i < nv; i += 2)
            new_blk(s, &v[i], v[i].n, (unsigned char)(v[i].tag + 101));
        check_disjoint(v, nv);
        for (size_t i = 0; i < nv; i++) {
            check(&v[i]);
            simnet_slab_free(s, v[i].p);
        }
        simnet_slab_free(s, NULL);
        simnet_slab_del(s);
    }
}

/* realloc through every kind of block, growing and shrinking. */
static void test_grow_shrink(void **state)
{
    (void)state;
    size_t steps[] = {0,    1,     15,     16,     17,      200,     257,  1000, 5000,
                      9000, 16300, 16368,  16369,  40000,   1 << 20, 5000, 20,   3 << 20,
                      1,    70000, 100000, 600000, 2 << 20, 8,       0,    30};
    for (int m = 0; m < 2; m++) {
        simnet_slab *s = simnet_slab_new(modes[m]);
        assert_non_null(s);
        blk b = {NULL, 0, 0}, other;
        new_blk(s, &other, 100, 3); /* a neighbour an overrun would hit */
        for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
            size_t n = steps[i];
            unsigned char *p = simnet_slab_realloc(s, b.p, n);
            assert_non_null(p);
            assert_int_equal((uintptr_t)p % 16, 0);
            assert_int_equal(simnet_slab_size(s, p), n);
            size_t keep = b.n < n ? b.n : n;
            for (size_t j = 0; j < keep; j++)
                assert_int_equal(p[j], (unsigned char)(b.tag + j * 7));
            b.p = p;
            b.n = n;
            b.tag = (unsigned char)(b.tag + 1);
            fill(&b);
            check(&other);
        }
        simnet_slab_free(s, b.p);
        simnet_slab_free(s, other.p);
        simnet_slab_del(s);
    }
}

/* calloc zeroes a block that was used before, and refuses overflows. */
static void test_zeroing(void **state)
{
    (void)state;
    for (int m = 0; m < 2; m++) {
        simnet_slab *s = simnet_slab_new(modes[m]);
        assert_non_null(s);
        size_t sizes[] = {24, 1000, 12000, 50000, (size_t)1 << 20};
        for (int i = 0; i < 5; i++) {
            unsigned char *p = simnet_slab_alloc(s, sizes[i]);
            assert_non_null(p);
            memset(p, 0xa5, sizes[i]);
            simnet_slab_free(s, p);
            p = simnet_slab_calloc(s, sizes[i] / 8, 8);
            assert_non_null(p);
            for (size_t j = 0; j < sizes[i]; j++)
                assert_int_equal(p[j], 0);
            simnet_slab_free(s, p);
        }
        assert_null(simnet_slab_calloc(s, SIZE_MAX / 2, 3));
        simnet_slab_del(s);
    }
}

/* Random allocations, frees and reallocs against the model: contents kept,
 * never two live blocks in the same place. */
static void test_stress(void **state)
{
    (void)state;
    for (int m = 0; m < 2; m++) {
        simnet_slab *s = simnet_slab_new(modes[m]);
        assert_non_null(s);
        enum { NV = 3000 };
        static blk v[NV];
        memset(v, 0, sizeof(v));
        for (int op = 0; op < 60000; op++) {
            blk *b = &v[rnd(&g_rng) % NV];
            if (b->p)
                check(b);
            uint64_t r = rnd(&g_rng) % 4;
            if (b->p && r == 0) {
                simnet_slab_free(s, b->p);
                b->p = NULL;
            } else if (b->p && r == 1) {
                size_t n = rnd_size(&g_rng);
                unsigned char *p = simnet_slab_realloc(s, b->p, n);
                assert_non_null(p);
                b->n = b->n < n ? b->n : n;
                b->p = p;
                check(b); /* the kept prefix */
                b->n = n;
                fill(b);
            } else if (!b->p) {
                new_blk(s, b, rnd_size(&g_rng), (unsigned char)op);
            }
            if (op % 10000 == 9999)
                check_disjoint(v, NV);
        }
        check_disjoint(v, NV);
        for (int i = 0; i < NV; i++)
            if (v[i].p) {
                check(&v[i]);
                simnet_slab_free(s, v[i].p);
            }
        simnet_slab_del(s);
    }
}

/* Small blocks carry no header and 16-byte classes reach 1 KiB: a block
 * takes its size rounded to 16 bytes (the size asked for lives in its
 * slack or, for an exact fit, in a bit outside the chunks), so a million
 * small blocks fill the chunks they were carved from. */
static void test_compact(void **state)
{
    (void)state;
    const size_t sizes[] = {24, 48, 152, 608, 1000, 2064};
    const size_t chunk = (size_t)2 << 20;
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        simnet_slab *s = simnet_slab_new(SIMNET_SLAB_SLABS);
        assert_non_null(s);
        size_t n = sizes[i], nb = ((size_t)24 << 20) / n;
        for (size_t j = 0; j < nb; j++) {
            void *p = simnet_slab_alloc(s, n);
            assert_non_null(p);
            if (j % 1000 == 0)
                assert_int_equal(simnet_slab_size(s, p), n);
        }
        size_t cls = n <= 1024 ? (n + 15) / 16 * 16 : 2176; /* 2048 + 2 * 64 */
        assert_int_equal(simnet_slab_carved(s), nb * cls);
        /* The pages' ends take at most 1 % more, and the last chunk is
         * partly used. */
        size_t bound = nb * cls + nb * cls / 100 + chunk;
        if (simnet_slab_mapped(s) > bound)
            fail_msg("%zu blocks of %zu bytes: %zu bytes mapped, over %zu", nb, n,
                     simnet_slab_mapped(s), bound);
        simnet_slab_del(s); /* frees every block */
    }
}

/* Allocates total bytes in blocks of n into v (NULL: frees them again). */
static size_t fill_with(simnet_slab *s, void **v, size_t total, size_t n)
{
    size_t nb = total / n;
    for (size_t j = 0; j < nb; j++) {
        v[j] = simnet_slab_alloc(s, n);
        assert_non_null(v[j]);
        memset(v[j], 0x5a, n);
    }
    return nb;
}

/* Pages whose blocks are all free serve any class: what one class gave
 * back is not mapped again for the next. */
static void test_reuse_across_classes(void **state)
{
    (void)state;
    const size_t total = (size_t)16 << 20, chunk = (size_t)2 << 20;
    void **v = calloc(total / 16, sizeof(*v));
    assert_non_null(v);
    simnet_slab *s = simnet_slab_new(SIMNET_SLAB_SLABS);
    assert_non_null(s);
    const size_t sizes[] = {100, 300, 1500, 40, 700};
    size_t first = 0;
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t nb = fill_with(s, v, total, sizes[i]);
        if (i == 0)
            first = simnet_slab_mapped(s);
        else if (simnet_slab_mapped(s) > first + chunk)
            fail_msg("%zu-byte blocks after others were freed: %zu bytes mapped, %zu at first",
                     sizes[i], simnet_slab_mapped(s), first);
        for (size_t j = 0; j < nb; j++)
            simnet_slab_free(s, v[j]);
    }
    /* Longer pages (blocks over 2 KiB) come back for their own length. */
    fill_with(s, v, total, 5000);
    size_t mapped = simnet_slab_mapped(s);
    for (size_t j = 0; j < total / 5000; j++)
        simnet_slab_free(s, v[j]);
    fill_with(s, v, total, 6000);
    assert_true(simnet_slab_mapped(s) <= mapped + chunk);
    simnet_slab_del(s);
    free(v);
}

typedef struct freer {
    simnet_slab *s;
    void **v;
    size_t nb;
} freer;

static void *free_all(void *arg)
{
    freer *f = arg;
    for (size_t j = 0; j < f->nb; j++)
        simnet_slab_free(f->s, f->v[j]);
    return NULL;
}

/* Blocks freed on another thread go back to the page's owner, whose pages
 * then serve other classes too. */
static void test_reuse_after_remote_frees(void **state)
{
    (void)state;
    const size_t total = (size_t)16 << 20, chunk = (size_t)2 << 20;
    void **v = calloc(total / 64, sizeof(*v));
    assert_non_null(v);
    simnet_slab *s = simnet_slab_new(SIMNET_SLAB_SLABS);
    assert_non_null(s);
    freer f = {s, v, fill_with(s, v, total, 64)};
    size_t first = simnet_slab_mapped(s);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, free_all, &f), 0);
    pthread_join(th, NULL);
    fill_with(s, v, total, 200);
    if (simnet_slab_mapped(s) > first + chunk)
        fail_msg("after remote frees: %zu bytes mapped, %zu at first", simnet_slab_mapped(s),
                 first);
    simnet_slab_del(s);
    free(v);
}

/* A page with blocks on its own free list and more freed by another thread:
 * both come back, and no block is handed out twice or lost. */
static void test_remote_and_local_frees_mix(void **state)
{
    (void)state;
    /* Fewer than 1,400 blocks of 48 bytes fit in a page: the first N share
     * one, which is full and behind the class's head page when they are freed. */
    enum { N = 1000, M = 4000 };
    void **a = calloc(M, sizeof(*a)), **b = calloc(M, sizeof(*b)), *odd[N / 2];
    assert_true(a && b);
    simnet_slab *s = simnet_slab_new(SIMNET_SLAB_SLABS);
    assert_non_null(s);
    for (size_t i = 0; i < M; i++)
        assert_non_null(a[i] = simnet_slab_alloc(s, 40 + i % 8));
    size_t mapped = simnet_slab_mapped(s);
    for (size_t i = 0; i < N / 2; i++) {
        assert_int_equal(simnet_slab_free(s, a[2 * i]), 40 + (2 * i) % 8);
        odd[i] = a[2 * i + 1];
    }
    freer f = {s, odd, N / 2};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, free_all, &f), 0);
    pthread_join(th, NULL);
    size_t got = 0, nb = 0;
    while (got < N && nb < M) {
        assert_non_null(b[nb] = simnet_slab_alloc(s, 44));
        memset(b[nb], (int)nb, 44);
        for (size_t j = 0; j < N; j++)
            if (a[j] == b[nb]) {
                a[j] = NULL; /* each freed block comes back once */
                got++;
                break;
            }
        nb++;
    }
    assert_int_equal(got, N);
    assert_int_equal(simnet_slab_mapped(s), mapped);
    for (size_t i = 0; i < nb; i++)
        assert_int_equal(simnet_slab_free(s, b[i]), 44);
    simnet_slab_del(s);
    free(a);
    free(b);
}

/* The size asked for comes back exactly at every distance from the class
 * size (exact fits, one byte short, two, the class's smallest), for
 * neighbours of every kind, and across in-place reallocs. */
static void test_exact_sizes(void **state)
{
    (void)state;
    const size_t cls[] = {16, 32, 48, 144, 1024, 1088, 2176, 13312, 16384};
    simnet_slab *s = simnet_slab_new(SIMNET_SLAB_SLABS);
    assert_non_null(s);
    enum { K = 64 };
    for (size_t i = 0; i < sizeof(cls) / sizeof(cls[0]); i++) {
        size_t cs = cls[i], step = 16;
        while (cs > 1024 && step * 32 < cs) /* sixteen classes per power of two */
            step *= 2;
        size_t lo = cs - step + 1;
        const size_t want[] = {cs, cs - 1, cs - 2, lo, cs == 16 ? 0 : lo + 1};
        blk v[K];
        for (size_t j = 0; j < K; j++) {
            v[j].n = want[(j * 7 + j / 5) % 5];
            v[j].tag = (unsigned char)j;
            assert_non_null(v[j].p = simnet_slab_alloc(s, v[j].n));
            fill(&v[j]);
        }
        for (size_t j = 0; j < K; j++) {
            check(&v[j]);
            assert_int_equal(simnet_slab_size(s, v[j].p), v[j].n);
        }
        for (size_t j = 0; j < K; j += 3) { /* to another distance */
            size_t n = want[(j + 2) % 5], keep = n < v[j].n ? n : v[j].n;
            unsigned char *p = simnet_slab_realloc(s, v[j].p, n);
            assert_non_null(p);
            if ((n == cs) == (v[j].n == cs))
                assert_ptr_equal(p, v[j].p); /* in place: exact fits and others apart */
            v[j].p = p;
            v[j].n = keep;
            check(&v[j]);
            v[j].n = n;
            fill(&v[j]);
        }
        for (size_t j = 0; j < K; j++) {
            check(&v[j]);
            assert_int_equal(simnet_slab_free(s, v[j].p), v[j].n);
        }
    }
    simnet_slab_del(s);
}

typedef struct resizer {
    simnet_slab *s;
    blk *v;
    size_t nv;
} resizer;

/* Reallocs each block to an exact fit of its class (its bit changes). */
static void *resize_all(void *arg)
{
    resizer *r = arg;
    for (size_t i = 0; i < r->nv; i++) {
        blk *b = &r->v[i];
        size_t n = (b->n + 15) / 16 * 16;
        unsigned char *p = simnet_slab_realloc(r->s, b->p, n);
        if (!p)
            return "out of memory";
        b->p = p;
        for (size_t j = b->n; j < n; j++)
            p[j] = (unsigned char)(b->tag + j * 7);
        b->n = n;
    }
    return NULL;
}

/* A block reallocated on a thread that does not own its page, while the
 * owner keeps allocating next to it: both threads' sizes stay exact. */
static void test_realloc_on_other_thread(void **state)
{
    (void)state;
    enum { N = 3000 };
    simnet_slab *s = simnet_slab_new(SIMNET_SLAB_SLABS);
    assert_non_null(s);
    blk *v = calloc(N, sizeof(*v)), *w = calloc(N, sizeof(*w));
    assert_true(v && w);
    for (size_t i = 0; i < N; i++) {
        v[i] = (blk){simnet_slab_alloc(s, 17 + i % 100), 17 + i % 100, (unsigned char)i};
        assert_non_null(v[i].p);
        fill(&v[i]);
    }
    resizer r = {s, v, N};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, resize_all, &r), 0);
    for (size_t i = 0; i < N; i++) {
        w[i] = (blk){simnet_slab_alloc(s, 16 + i % 100), 16 + i % 100, (unsigned char)(i + 1)};
        assert_non_null(w[i].p);
        fill(&w[i]);
    }
    void *rv;
    pthread_join(th, &rv);
    assert_null(rv);
    for (size_t i = 0; i < N; i++) {
        check(&v[i]);
        check(&w[i]);
        assert_int_equal(simnet_slab_free(s, v[i].p), v[i].n);
        assert_int_equal(simnet_slab_free(s, w[i].p), w[i].n);
    }
    simnet_slab_del(s);
    free(v);
    free(w);
}

/* ---- threads ----------------------------------------------------------------------- */

enum { NT = 4, PER = 1500, ROUNDS = 12 };

typedef struct world {
    simnet_slab *s;
    pthread_barrier_t bar;
    blk v[2][NT][PER]; /* [round parity][thread][block] */
} world;

typedef struct worker {
    world *w;
    int id;
    uint64_t rng;
} worker;

/* Each round a thread frees the blocks its neighbour allocated the round
 * before while it allocates its own, so blocks move between the threads'
 * caches all the time. */
static void *thread_main(void *arg)
{
    worker *k = arg;
    world *w = k->w;
    for (int r = 0; r < ROUNDS; r++) {
        blk *mine = w->v[r % 2][k->id];
        blk *theirs = w->v[(r + 1) % 2][(k->id + 1) % NT];
        for (int i = 0; i < PER; i++) {
            if (theirs[i].p) {
                check(&theirs[i]);
                simnet_slab_free(w->s, theirs[i].p);
                theirs[i].p = NULL;
            }
            size_t n = rnd(&k->rng) % 8 ? rnd(&k->rng) % 400 : rnd(&k->rng) % 20000;
            mine[i].p = simnet_slab_alloc(w->s, n);
            if (!mine[i].p)
                return "out of memory";
            mine[i].n = n;
            mine[i].tag = (unsigned char)(k->id * 16 + r);
            fill(&mine[i]);
        }
        pthread_barrier_wait(&w->bar);
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    for (int m = 0; m < 2; m++) {
        world *w = calloc(1, sizeof(*w));
        assert_non_null(w);
        w->s = simnet_slab_new(modes[m]);
        assert_non_null(w->s);
        assert_int_equal(pthread_barrier_init(&w->bar, NULL, NT), 0);
        pthread_t th[NT];
        worker k[NT];
        for (int i = 0; i < NT; i++) {
            k[i] = (worker){w, i, 0x1234567ull * (uint64_t)(i + 1)};
            assert_int_equal(pthread_create(&th[i], NULL, thread_main, &k[i]), 0);
        }
        for (int i = 0; i < NT; i++) {
            void *rv;
            pthread_join(th[i], &rv);
            assert_null(rv);
        }
        blk *all = &w->v[0][0][0];
        size_t nall = 2 * NT * PER;
        check_disjoint(all, nall);
        for (size_t i = 0; i < nall; i++)
            if (all[i].p) {
                check(&all[i]);
                simnet_slab_free(w->s, all[i].p); /* on yet another thread */
            }
        pthread_barrier_destroy(&w->bar);
        simnet_slab_del(w->s);
        free(w);
    }
}

/* ---- simnet's counting hooks -------------------------------------------------------- */

/* w->mem counts the bytes asked for, whatever the block's class. */
static void test_counting(void **state)
{
    (void)state;
    simnet_config c;
    simnet_config_default(&c);
    simnet *w = calloc(1, sizeof(*w));
    assert_non_null(w);
    assert_int_equal(simnet_init(w, &c, NULL), 0);
    const flare_mem *mem = &w->mem;
    size_t base = w->count.live;
    void *a = mem->malloc(13, mem->user);
    void *b = mem->calloc(7, 9, mem->user);
    void *d = mem->malloc(100000, mem->user);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(d);
    assert_int_equal(w->count.live, base + 13 + 63 + 100000);
    a = mem->realloc(a, 5000, mem->user);
    assert_non_null(a);
    assert_int_equal(w->count.live, base + 5000 + 63 + 100000);
    mem->free(d, mem->user);
    mem->free(b, mem->user);
    assert_int_equal(w->count.live, base + 5000);
    assert_true(w->count.peak >= base + 5000 + 63 + 100000);
    mem->free(a, mem->user);
    mem->free(NULL, mem->user);
    assert_int_equal(w->count.live, base);
    simnet_free(w);
    free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_grow_shrink),
        cmocka_unit_test(test_zeroing),
        cmocka_unit_test(test_stress),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_counting),
        cmocka_unit_test(test_compact),
        cmocka_unit_test(test_reuse_across_classes),
        cmocka_unit_test(test_reuse_after_remote_frees),
        cmocka_unit_test(test_remote_and_local_frees_mix),
        cmocka_unit_test(test_exact_sizes),
        cmocka_unit_test(test_realloc_on_other_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
