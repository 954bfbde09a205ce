/* The simulator's event queue (src/io/sim_queue.c: a heap for near events,
 * a timing wheel for far ones, an overflow list past its reach) against a
 * reference model: under random
 * pushes (same bucket, near, in the wheel, past its reach, equal times, a
 * seq too wide for a wheel entry), removals and pops, every pop is the
 * least (time, seq) still queued, exactly as a plain priority queue would
 * give it. Also: the clock jumping past a whole wheel turn, draining, and
 * allocation failures (an event is then refused or reported lost, never
 * misplaced). */
#include "support/test.h"

#include "io/sim_queue.h"

#define NE    4000
#define MS    1000000ULL
#define WIDTH ((flare_tstamp)1 << FLARE__SIM_WHEEL_SHIFT)
#define REACH (WIDTH * FLARE__SIM_WHEEL_SLOTS)

typedef struct ref_ev {
    sim_ev ev;
    int queued;
    flare_tstamp time;
    uint64_t seq;
    int lost;
} ref_ev;

static ref_ev g_ev[NE];
static flare_prng g_prng;
static int g_refused; /* pushes refused for lack of memory */

static uint64_t rnd(uint64_t n)
{
    return flare_prng_next(&g_prng) % n;
}

/* The least queued (time, seq) by a linear scan, or NULL. */
static ref_ev *ref_min(void)
{
    ref_ev *best = NULL;
    for (int i = 0; i < NE; i++) {
        ref_ev *e = &g_ev[i];
        if (e->queued &&
            (!best || e->time < best->time || (e->time == best->time && e->seq < best->seq)))
            best = e;
    }
    return best;
}

static size_t ref_len(void)
{
    size_t n = 0;
    for (int i = 0; i < NE; i++)
        n += g_ev[i].queued;
    return n;
}

/* A time after now: mostly near (packets), often in the wheel (timers),
 * sometimes past its reach or in the same bucket, with many ties. */
static flare_tstamp pick_time(flare_tstamp now)
{
    switch (rnd(8)) {
    case 0:
        return now;
    case 1:
        return now + rnd(WIDTH);
    case 2:
    case 3:
        return now + rnd(50) * MS;
    case 4:
    case 5:
        return now + (10 + rnd(30)) * 1000 * MS; /* keepalive-like, in the wheel */
    case 6:
        return now + REACH - WIDTH + rnd(4 * WIDTH); /* around the wheel's reach */
    default:
        return now + REACH + rnd(100) * 1000 * MS; /* past it: the overflow */
    }
}

static void lost_cb(sim_ev *ev, void *user)
{
    (void)user;
    ref_ev *e = (ref_ev *)(void *)ev;
    assert_true(e->queued);
    e->queued = 0;
    e->lost = 1;
}

static void check_pop(sim_queue *q, flare_tstamp *now)
{
    /* top first: it may move events out of the wheel or the overflow,
     * losing some when memory fails. */
    flare_tstamp top = flare__sim_q_top(q);
    ref_ev *want = ref_min();
    if (!want) {
        assert_true(top == FLARE_TSTAMP_NEVER);
        assert_int_equal(flare__sim_q_len(q), 0);
        assert_null(flare__sim_q_pop(q));
        return;
    }
    assert_true(top == want->time);
    assert_ptr_equal(q->heap[0].ev, &want->ev);
    assert_true(q->heap[0].seq == want->seq);
    assert_true(top >= *now);
    *now = top;
    assert_ptr_equal(flare__sim_q_pop(q), &want->ev);
    assert_true(want->ev.idx == FLARE__SIM_EV_IDLE);
    want->queued = 0;
}

/* One random run of ops operations; returns how many events were lost. */
static int run(uint64_t seed, int ops, const flare_mem *mem, int big_seq)
{
    sim_queue q;
    flare__sim_q_init(&q, mem);
    q.lost = lost_cb;
    flare_prng_seed(&g_prng, seed);
    memset(g_ev, 0, sizeof(g_ev));
    for (int i = 0; i < NE; i++)
        g_ev[i].ev.idx = FLARE__SIM_EV_IDLE;
    flare_tstamp now = 0;
    uint64_t seq = big_seq ? ((uint64_t)1 << FLARE__SIM_WHEEL_SEQ_BITS) - NE : 0;
    int lost = 0;
    for (int op = 0; op < ops; op++) {
        uint64_t r = rnd(100);
        ref_ev *e = &g_ev[rnd(NE)];
        if (r < 45) { /* (re)schedule, as flare__sim_ev_schedule does */
            flare__sim_q_remove(&q, &e->ev);
            e->queued = 0;
            e->time = pick_time(now);
            e->seq = seq++;
            if (flare__sim_q_push(&q, &e->ev, e->time, e->seq) == 0)
                e->queued = 1;
            else
                assert_true(e->ev.idx == FLARE__SIM_EV_IDLE && ++g_refused);
        } else if (r < 55) { /* cancel */
            flare__sim_q_remove(&q, &e->ev);
            e->queued = 0;
            assert_true(e->ev.idx == FLARE__SIM_EV_IDLE);
        } else if (r < 99) {
            check_pop(&q, &now);
        } else { /* the clock jumps ahead, past a wheel turn at times */
            if (!ref_len())
                now += rnd(2) ? 3 * REACH : WIDTH * rnd(100);
        }
        assert_int_equal(flare__sim_q_len(&q), ref_len());
    }
    while (ref_len())
        check_pop(&q, &now);
    check_pop(&q, &now);
    for (int i = 0; i < NE; i++)
        lost += g_ev[i].lost;
    flare__sim_q_free(&q);
    return lost;
}

static void test_random_against_reference(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 4; seed++)
        assert_int_equal(run(seed, 60000, NULL, 0), 0);
}

/* Seqs near the top of what a wheel entry holds: some go to the heap
 * instead, and the order still holds across the boundary. */
static void test_wide_seq(void **state)
{
    (void)state;
    assert_int_equal(run(9, 30000, NULL, 1), 0);
}

/* Far events wait in the wheel, not the heap; they come back in order
 * when the clock reaches them. */
static void test_far_events_wait_in_wheel(void **state)
{
    (void)state;
    sim_queue q;
    flare__sim_q_init(&q, NULL);
    memset(g_ev, 0, sizeof(g_ev));
    for (int i = 0; i < 100; i++) {
        /* Keepalive-like: 15 s ahead, in reverse order, with ties. */
        g_ev[i].ev.idx = FLARE__SIM_EV_IDLE;
        assert_int_equal(flare__sim_q_push(&q, &g_ev[i].ev,
                                           15000 * MS + (flare_tstamp)(99 - i) / 2 * MS,
                                           (uint64_t)i),
                         0);
    }
    assert_int_equal(q.len, 0);
    assert_int_equal(q.wheel_len, 100);
    flare_tstamp last = 0;
    uint64_t last_seq = 0;
    for (int i = 0; i < 100; i++) {
        flare_tstamp t = flare__sim_q_top(&q);
        sim_heap_ent top = q.heap[0];
        assert_true(t == top.time);
        assert_true(t > last || (t == last && top.seq > last_seq) || i == 0);
        assert_true(q.len < 100); /* only the buckets the clock reached */
        last = t;
        last_seq = top.seq;
        assert_ptr_equal(flare__sim_q_pop(&q), top.ev);
    }
    assert_true(flare__sim_q_top(&q) == FLARE_TSTAMP_NEVER);
    flare__sim_q_free(&q);
}

/* Events past the wheel's reach (timers minutes ahead) stay out of the
 * heap until the wheel comes within reach of them, then come out in order,
 * also when nothing else is queued and the clock must walk to them. */
static void test_overflow_past_reach(void **state)
{
    (void)state;
    sim_queue q;
    flare__sim_q_init(&q, NULL);
    memset(g_ev, 0, sizeof(g_ev));
    int n = 200;
    for (int i = 0; i < n; i++) {
        g_ev[i].ev.idx = FLARE__SIM_EV_IDLE;
        /* From just past the reach to over two reaches ahead, reversed, in pairs. */
        flare_tstamp t = REACH + WIDTH + (flare_tstamp)((n - 1 - i) / 2) * (REACH / 64);
        assert_int_equal(flare__sim_q_push(&q, &g_ev[i].ev, t, (uint64_t)i), 0);
    }
    assert_int_equal(q.len, 0);
    assert_int_equal(q.far_len, (uint32_t)n);
    assert_int_equal(flare__sim_q_len(&q), (size_t)n);
    /* One removed from the middle of the overflow. */
    flare__sim_q_remove(&q, &g_ev[7].ev);
    assert_true(g_ev[7].ev.idx == FLARE__SIM_EV_IDLE);
    assert_int_equal(q.far_len, (uint32_t)n - 1);
    flare_tstamp last = 0;
    uint64_t last_seq = 0;
    for (int i = 0; i < n - 1; i++) {
        flare_tstamp t = flare__sim_q_top(&q);
        sim_heap_ent top = q.heap[0];
        assert_true(t == top.time && t > REACH);
        assert_true(i == 0 || t > last || (t == last && top.seq > last_seq));
        assert_true(top.ev != &g_ev[7].ev);
        assert_true(q.len <= 2); /* only what is due: the rest waits outside the heap */
        last = t;
        last_seq = top.seq;
        assert_ptr_equal(flare__sim_q_pop(&q), top.ev);
    }
    assert_true(flare__sim_q_top(&q) == FLARE_TSTAMP_NEVER);
    assert_int_equal(q.far_len, 0);
    flare__sim_q_free(&q);
}

static void drain_cb(sim_ev *ev, void *user)
{
    int *n = user;
    assert_true(ev->idx == FLARE__SIM_EV_IDLE);
    (*n)++;
}

static void test_drain(void **state)
{
    (void)state;
    sim_queue q;
    flare__sim_q_init(&q, NULL);
    flare_prng_seed(&g_prng, 3);
    memset(g_ev, 0, sizeof(g_ev));
    for (int i = 0; i < 500; i++) {
        g_ev[i].ev.idx = FLARE__SIM_EV_IDLE;
        assert_int_equal(flare__sim_q_push(&q, &g_ev[i].ev, pick_time(0), (uint64_t)i), 0);
    }
    assert_true(q.len > 0 && q.wheel_len > 0);
    int n = 0;
    flare__sim_q_drain(&q, drain_cb, &n);
    assert_int_equal(n, 500);
    assert_int_equal(flare__sim_q_len(&q), 0);
    assert_true(flare__sim_q_top(&q) == FLARE_TSTAMP_NEVER);
    flare__sim_q_free(&q);
}

/* An allocator that fails one call in seven after a warm-up (g_flaky), or
 * every call (g_fail_all). */
static unsigned long g_calls;
static int g_flaky, g_fail_all;
static int fail_now(void)
{
    return g_fail_all || (g_flaky && ++g_calls > 20 && g_calls % 7 == 0);
}
static void *f_malloc(size_t n, void *u)
{
    (void)u;
    return fail_now() ? NULL : malloc(n);
}
static void f_free(void *p, void *u)
{
    (void)u;
    free(p);
}
static void *f_calloc(size_t k, size_t n, void *u)
{
    (void)u;
    return fail_now() ? NULL : calloc(k, n);
}
static void *f_realloc(void *p, size_t n, void *u)
{
    (void)u;
    return fail_now() ? NULL : realloc(p, n);
}
static const flare_mem g_fmem = {NULL, f_malloc, f_free, f_calloc, f_realloc};

/* Refused pushes leave the queue consistent: every pop is still the least
 * of what is queued. */
static void test_alloc_failures(void **state)
{
    (void)state;
    g_calls = 0;
    g_flaky = 1;
    for (uint64_t seed = 20; seed < 26; seed++)
        run(seed, 20000, &g_fmem, 0);
    g_flaky = 0;
    assert_true(g_refused > 0); /* the refusal path ran */
}

/* A bucket that cannot enter the heap (it cannot grow): its events are
 * reported lost and unqueued, the others still come out in order. */
static void test_lost_on_advance(void **state)
{
    (void)state;
    sim_queue q;
    flare__sim_q_init(&q, &g_fmem);
    q.lost = lost_cb;
    memset(g_ev, 0, sizeof(g_ev));
    int n = 300;
    for (int i = 0; i < n; i++) {
        ref_ev *e = &g_ev[i];
        e->ev.idx = FLARE__SIM_EV_IDLE;
        /* One near event (the heap gets its first array), the rest in one
         * far bucket, and a last one past the wheel's reach. */
        e->time = i == 0 ? MS : i == n - 1 ? 2 * REACH : 20000 * MS + (flare_tstamp)i;
        e->seq = (uint64_t)i;
        assert_int_equal(flare__sim_q_push(&q, &e->ev, e->time, e->seq), 0);
        e->queued = 1;
    }
    assert_int_equal(q.wheel_len, (size_t)n - 1); /* with the overflow's one */
    assert_int_equal(q.far_len, 1);
    flare_tstamp now = 0;
    check_pop(&q, &now); /* the near one */
    g_fail_all = 1;
    /* The heap (64 slots) cannot take the bucket's 298: the overflow is
     * lost, what fit still comes out in order. */
    while (ref_min())
        check_pop(&q, &now);
    g_fail_all = 0;
    int lost = 0;
    for (int i = 0; i < n; i++) {
        lost += g_ev[i].lost;
        assert_true(g_ev[i].ev.idx == FLARE__SIM_EV_IDLE);
    }
    assert_true(lost > 0 && lost < n - 2);
    assert_int_equal(flare__sim_q_len(&q), 0);
    flare__sim_q_free(&q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_against_reference), cmocka_unit_test(test_wide_seq),
        cmocka_unit_test(test_far_events_wait_in_wheel), cmocka_unit_test(test_drain),
        cmocka_unit_test(test_alloc_failures),           cmocka_unit_test(test_lost_on_advance),
        cmocka_unit_test(test_overflow_past_reach),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
