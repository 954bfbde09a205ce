/* The simulator's event queue (a heap and a timing wheel,
 * src/io/sim_queue.c) through the timers of simulated hosts: thousands of
 * timers with many equal deadlines, restarted, stopped and deleted (also
 * from inside callbacks), fire in (deadline, start order) exactly once
 * each, as a reference model says: with deadlines milliseconds apart (the
 * heap) and seconds apart (the wheel, and past its reach). */
#include "support/test.h"

#include "flare/sim.h"

#define NT 3000

typedef struct tm {
    flare_io_timer *t;
    flare_tstamp deadline;
    uint64_t order; /* when it was last started */
    int armed;
    int fired;
} tm;

static tm g_tm[NT];
static flare_io *g_io;
static flare_sim *g_sim;
static flare_prng g_prng;
static uint64_t g_order;
static flare_tstamp g_last_time;
static int64_t g_last_order; /* -1: nothing fired yet */
static int g_fired;
static flare_tstamp g_unit; /* deadlines are multiples of it */

static void arm(int i, flare_tstamp deadline)
{
    flare_tstamp now = flare_sim_now(g_sim);
    g_tm[i].deadline = deadline < now ? now : deadline;
    g_tm[i].order = g_order++;
    g_tm[i].armed = 1;
    g_io->ops->timer_start(g_tm[i].t, deadline);
}

static void on_timer(flare_io_timer *t, void *user)
{
    tm *m = user;
    int i = (int)(m - g_tm);
    assert_ptr_equal(m->t, t);
    assert_true(m->armed);
    flare_tstamp now = flare_sim_now(g_sim);
    assert_true(now == m->deadline);
    /* (deadline, start order) never goes backwards. */
    assert_true(now > g_last_time || (now == g_last_time && (int64_t)m->order > g_last_order));
    g_last_time = now;
    g_last_order = (int64_t)m->order;
    m->armed = 0;
    m->fired++;
    g_fired++;
    uint64_t r = flare_prng_next(&g_prng) % 10;
    int j = (int)(flare_prng_next(&g_prng) % NT);
    if (r < 3) {
        arm(i, now + (flare_prng_next(&g_prng) % 8) * g_unit); /* re-arm itself */
    } else if (r < 5 && j != i && g_tm[j].t) {
        g_io->ops->timer_stop(g_tm[j].t); /* stop another one */
        g_tm[j].armed = 0;
    } else if (r < 6 && j != i && g_tm[j].t) {
        g_io->ops->timer_del(g_tm[j].t); /* delete another one */
        g_tm[j].t = NULL;
        g_tm[j].armed = 0;
    } else if (r < 8 && j != i && g_tm[j].t) {
        /* Restart another one, maybe in the past (it then fires now). */
        arm(j, now + (flare_prng_next(&g_prng) % 8) * g_unit - g_unit);
    }
}

static void timer_order(flare_tstamp unit)
{
    g_unit = unit;
    g_sim = flare_sim_new(11, NULL);
    flare_sim_host *h = flare_sim_host_new(g_sim, "h");
    g_io = flare_sim_host_io(h);
    flare_prng_seed(&g_prng, 5);
    memset(g_tm, 0, sizeof(g_tm));
    g_order = 0;
    g_last_time = 0;
    g_last_order = -1;
    g_fired = 0;
    for (int i = 0; i < NT; i++) {
        assert_int_equal(g_io->ops->timer_new(g_io, on_timer, &g_tm[i], &g_tm[i].t), 0);
        /* 50 distinct deadlines for 3000 timers: long runs of ties. */
        arm(i, (flare_prng_next(&g_prng) % 50) * g_unit);
    }
    /* Stop a third before anything runs. */
    for (int i = 0; i < NT; i += 3) {
        g_io->ops->timer_stop(g_tm[i].t);
        g_tm[i].armed = 0;
    }
    int steps = 0;
    while (flare_sim_step(g_sim))
        steps++;
    /* A timer pushed later while queued keeps its entry: when that comes
     * up early in the heap it re-queues itself, a step without a callback
     * (in the wheel it moves without a step). */
    assert_true(steps >= g_fired);
    assert_true(g_fired > NT / 2);
    for (int i = 0; i < NT; i++)
        assert_false(g_tm[i].armed); /* every armed timer fired */
    assert_int_equal(flare_sim_next_event(g_sim), FLARE_TSTAMP_NEVER);
    for (int i = 0; i < NT; i++)
        if (g_tm[i].t)
            g_io->ops->timer_del(g_tm[i].t);
    flare_sim_del(g_sim);
}

static void test_timer_order(void **state)
{
    (void)state;
    timer_order(FLARE_NS_PER_MS);
}

/* Deadlines up to 73.5 s ahead: most wait in the wheel, the last ones
 * beyond its reach in the overflow. */
static void test_timer_order_far(void **state)
{
    (void)state;
    timer_order(1500 * FLARE_NS_PER_MS);
}

typedef struct fired {
    flare_io *io;
    char order[8];
    int n;
    flare_tstamp at[8];
} fired;

static fired g_f;

static void on_named(flare_io_timer *t, void *user)
{
    (void)t;
    g_f.at[g_f.n] = flare_io_now(g_f.io);
    g_f.order[g_f.n++] = *(const char *)user;
}

/* A timer pushed later fires once, at its latest deadline; among timers
 * due at the same time the order is the order of their last start, as if
 * each push had rescheduled it (not the time its early entry came up). */
static void test_lazy_rearm(void **state)
{
    (void)state;
    const flare_tstamp ms = FLARE_NS_PER_MS;
    flare_sim *sim = flare_sim_new(1, NULL);
    flare_io *io = flare_sim_host_io(flare_sim_host_new(sim, "h"));
    memset(&g_f, 0, sizeof(g_f));
    g_f.io = io;
    flare_io_timer *a, *b, *c, *d;
    assert_int_equal(io->ops->timer_new(io, on_named, "a", &a), 0);
    assert_int_equal(io->ops->timer_new(io, on_named, "b", &b), 0);
    assert_int_equal(io->ops->timer_new(io, on_named, "c", &c), 0);
    assert_int_equal(io->ops->timer_new(io, on_named, "d", &d), 0);
    io->ops->timer_start(a, 20 * ms);
    io->ops->timer_start(d, 50 * ms);
    flare_sim_run_until(sim, 1 * ms);
    io->ops->timer_start(b, 30 * ms);
    flare_sim_run_until(sim, 2 * ms);
    io->ops->timer_start(a, 30 * ms); /* later: after b among the 30 ms ones */
    io->ops->timer_start(d, 40 * ms);
    flare_sim_run_until(sim, 5 * ms);
    io->ops->timer_start(c, 30 * ms); /* started after a's last push */
    io->ops->timer_start(d, 60 * ms);
    flare_sim_run_until(sim, 25 * ms);
    assert_int_equal(g_f.n, 0); /* a's old 20 ms entry fired nothing */
    io->ops->timer_start(d, 70 * ms);
    io->ops->timer_stop(d); /* a stop still cancels a pushed timer */
    assert_int_equal(flare_sim_run_until_idle(sim, 1000 * ms), 0);
    assert_int_equal(g_f.n, 3);
    assert_memory_equal(g_f.order, "bac", 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(g_f.at[i], 30 * ms);
    /* Pushed earlier than queued: fires at the earlier time. */
    io->ops->timer_start(d, 100 * ms);
    io->ops->timer_start(d, 90 * ms);
    assert_int_equal(flare_sim_run_until_idle(sim, 1000 * ms), 0);
    assert_int_equal(g_f.n, 4);
    assert_int_equal(g_f.at[3], 90 * ms);
    io->ops->timer_del(a);
    io->ops->timer_del(b);
    io->ops->timer_del(c);
    io->ops->timer_del(d);
    flare_sim_del(sim);
}

/* Ticks every second until 6 s: the heap never runs empty while a is
 * pushed on (an empty heap takes the next wheel bucket in at once, however
 * far ahead, and a's entry would then wait in the heap). */
static void on_tick(flare_io_timer *t, void *user)
{
    flare_io *io = user;
    if (flare_io_now(io) < 6 * FLARE_NS_PER_S)
        io->ops->timer_start(t, flare_io_now(io) + FLARE_NS_PER_S);
}

/* Timers seconds ahead wait in the wheel; one pushed later there moves to
 * its deadline as the wheel reaches its old entry, without an event of its
 * own, and still fires in the order of the last starts. */
static void test_lazy_rearm_in_wheel(void **state)
{
    (void)state;
    const flare_tstamp s = FLARE_NS_PER_S;
    flare_sim *sim = flare_sim_new(1, NULL);
    flare_io *io = flare_sim_host_io(flare_sim_host_new(sim, "h"));
    memset(&g_f, 0, sizeof(g_f));
    g_f.io = io;
    flare_io_timer *a, *b, *c, *tick;
    assert_int_equal(io->ops->timer_new(io, on_tick, io, &tick), 0);
    io->ops->timer_start(tick, 1 * s);
    assert_int_equal(io->ops->timer_new(io, on_named, "a", &a), 0);
    assert_int_equal(io->ops->timer_new(io, on_named, "b", &b), 0);
    assert_int_equal(io->ops->timer_new(io, on_named, "c", &c), 0);
    io->ops->timer_start(a, 10 * s);
    io->ops->timer_start(b, 30 * s);
    for (int i = 1; i <= 5; i++) { /* pushed on, as an idle timer is */
        flare_sim_run_until(sim, (flare_tstamp)i * s);
        io->ops->timer_start(a, (flare_tstamp)(10 + 4 * i) * s);
    }
    io->ops->timer_start(c, 30 * s); /* after a's last push */
    uint64_t ev0 = flare_sim_events(sim);
    assert_int_equal(flare_sim_run_until_idle(sim, 100 * s), 0);
    assert_int_equal(g_f.n, 3);
    assert_memory_equal(g_f.order, "bac", 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(g_f.at[i], 30 * s);
    /* The last tick and the three firings: a's 10 s entry made no event. */
    assert_int_equal(flare_sim_events(sim) - ev0, 4);
    io->ops->timer_del(a);
    io->ops->timer_del(b);
    io->ops->timer_del(c);
    io->ops->timer_del(tick);
    flare_sim_del(sim);
}

/* Deleting the simulator with timers still queued frees everything (the
 * sanitizer build checks for leaks). */
static void test_del_with_queued(void **state)
{
    (void)state;
    flare_sim *sim = flare_sim_new(1, NULL);
    flare_sim_host *h = flare_sim_host_new(sim, "h");
    flare_io *io = flare_sim_host_io(h);
    for (int i = 0; i < 100; i++) {
        flare_io_timer *t = NULL;
        assert_int_equal(io->ops->timer_new(io, on_timer, NULL, &t), 0);
        io->ops->timer_start(t, (flare_tstamp)(100 - i) * FLARE_NS_PER_S);
    }
    assert_int_equal(flare_sim_next_event(sim), 1 * FLARE_NS_PER_S);
    flare_sim_del(sim);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timer_order),     cmocka_unit_test(test_timer_order_far),
        cmocka_unit_test(test_lazy_rearm),      cmocka_unit_test(test_lazy_rearm_in_wheel),
        cmocka_unit_test(test_del_with_queued),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
