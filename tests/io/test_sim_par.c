/* Partitioned simulations (flare_sim_set_partitions, src/io/sim_par.c): the
 * lookahead, packets between partitions keep their link delays, a run
 * depends only on the seed and the partition count, and the whole flow
 * (tools/simnet) gives the same outcomes on 8 partitions as on one. */
#include <stdlib.h>
#include <string.h>

#include "support/test.h"

#include "flare/sim.h"
#include "simnet/simnet.h"

#define MS FLARE_NS_PER_MS
#define S  FLARE_NS_PER_S

static void test_set_partitions_rules(void **state)
{
    (void)state;
    flare_sim *sim = flare_sim_new(1, NULL);
    assert_int_equal(flare_sim_partitions(sim), 1);
    assert_int_equal(flare_sim_lookahead(sim), FLARE_TSTAMP_NEVER);
    assert_int_equal(flare_sim_set_partitions(sim, 0, 0), FLARE_ERR_INVALID_ARG);
    assert_int_equal(flare_sim_set_partitions(sim, 2, 3), FLARE_ERR_INVALID_ARG);
    assert_int_equal(flare_sim_set_partitions(sim, 65, 1), FLARE_ERR_INVALID_ARG);
    assert_int_equal(flare_sim_set_partitions(sim, 2, 0), 0);
    assert_int_equal(flare_sim_partitions(sim), 2);
    assert_int_equal(flare_sim_set_partitions(sim, 2, 2), FLARE_ERR_INVALID_ARG);
    flare_sim_del(sim);
    sim = flare_sim_new(1, NULL);
    assert_non_null(flare_sim_host_new(sim, "h"));
    assert_int_equal(flare_sim_set_partitions(sim, 2, 2), FLARE_ERR_INVALID_ARG);
    flare_sim_del(sim);
}

static flare_sim_host *pub_host(flare_sim *sim, const char *name, const char *ip, flare_tstamp d)
{
    flare_sim_host *h = flare_sim_host_new(sim, name);
    assert_non_null(h);
    assert_int_equal(flare_sim_host_add_addr(h, flare_sim_internet(sim), ip), 0);
    flare_sim_link_set(h, &(flare_sim_link){.delay = d});
    return h;
}

/* NATs go to the first partition, a host to the one with the fewest nodes. */
static void test_lookahead(void **state)
{
    (void)state;
    flare_sim *sim = flare_sim_new(1, NULL);
    assert_int_equal(flare_sim_set_partitions(sim, 2, 2), 0);
    pub_host(sim, "a", "1.0.0.1", 10 * MS); /* partition 0 */
    assert_int_equal(flare_sim_lookahead(sim), FLARE_TSTAMP_NEVER);
    flare_sim_host *b = pub_host(sim, "b", "1.0.0.2", 15 * MS); /* partition 1 */
    assert_int_equal(flare_sim_lookahead(sim), 25 * MS);
    /* A NAT (zero-delay links, partition 0) shares the internet with b: 0 + 15 ms. */
    flare_sim_lan *lan = flare_sim_lan_new(sim, "lan");
    assert_non_null(
        flare_sim_nat_new(sim, "nat", flare_sim_internet(sim), "2.0.0.1", lan, "10.0.0.1", NULL));
    assert_int_equal(flare_sim_lookahead(sim), 15 * MS);
    /* c goes to partition 1 (partition 0 holds a and the NAT), behind the NAT. */
    flare_sim_host *c = flare_sim_host_new(sim, "c");
    assert_int_equal(flare_sim_host_add_addr(c, lan, "10.0.0.2"), 0);
    assert_int_equal(flare_sim_lookahead(sim), 0); /* c's link: no delay yet */
    flare_sim_link_set(c, &(flare_sim_link){.delay = 5 * MS});
    assert_int_equal(flare_sim_lookahead(sim), 5 * MS);
    flare_sim_host *d = flare_sim_host_new(sim, "d"); /* partition 0, as the NAT */
    assert_int_equal(flare_sim_host_add_addr(d, lan, "10.0.0.3"), 0);
    assert_int_equal(flare_sim_lookahead(sim), 5 * MS);
    /* A rate-limited link between partitions: no lookahead. */
    flare_sim_link_set(b, &(flare_sim_link){.delay = 15 * MS, .rate = 1000000});
    assert_int_equal(flare_sim_lookahead(sim), 0);
    flare_sim_link_set(b, &(flare_sim_link){.delay = 15 * MS});
    assert_int_equal(flare_sim_lookahead(sim), 5 * MS);
    flare_sim_del(sim);
}

/* ---- packets between partitions ------------------------------------------------- */

typedef struct ping_world {
    flare_sim *sim;
    flare_io *a, *b;
    flare_io_udp *ua, *ub;
    flare_io_timer *t;
    flare_ipaddr to;
    int sent, got, early, late, windows;
    flare_tstamp min_delay, max_delay;
} ping_world;

static void on_recv(flare_io_udp *u, const flare_ipaddr *from, const uint8_t *d, size_t len,
                    void *user)
{
    (void)u;
    (void)from;
    ping_world *w = user;
    flare_tstamp sent;
    assert_int_equal(len, sizeof(sent));
    memcpy(&sent, d, sizeof(sent));
    flare_tstamp took = flare_io_now(w->b) - sent;
    w->got++;
    w->early += took < w->min_delay;
    w->late += took > w->max_delay;
}

/* a sends a datagram every 3 ms, from its own partition's thread. */
static void on_tick(flare_io_timer *t, void *user)
{
    ping_world *w = user;
    flare_tstamp now = flare_io_now(w->a);
    assert_int_equal(w->a->ops->udp_send(w->ua, &w->to, (const uint8_t *)&now, sizeof(now)), 0);
    if (++w->sent < 300)
        w->a->ops->timer_start(t, now + 3 * MS);
}

static void on_window(void *user)
{
    ((ping_world *)user)->windows++;
}

static uint64_t run_ping(ping_world *w, unsigned threads, flare_tstamp jitter, double loss)
{
    memset(w, 0, sizeof(*w));
    w->sim = flare_sim_new(7, NULL);
    assert_int_equal(flare_sim_set_partitions(w->sim, threads, threads), 0);
    flare_sim_set_window_cb(w->sim, on_window, w);
    flare_sim_host *a = pub_host(w->sim, "a", "1.0.0.1", 10 * MS);
    flare_sim_host *b = pub_host(w->sim, "b", "1.0.0.2", 15 * MS);
    flare_sim_link_set(b, &(flare_sim_link){.delay = 15 * MS, .jitter = jitter, .loss = loss});
    w->a = flare_sim_host_io(a);
    w->b = flare_sim_host_io(b);
    w->min_delay = 25 * MS;
    w->max_delay = 25 * MS + jitter;
    flare_ipaddr any, bind_b;
    assert_int_equal(flare_ipaddr_parse(&any, "0.0.0.0:0"), 0);
    assert_int_equal(flare_ipaddr_parse(&bind_b, "1.0.0.2:9000"), 0);
    w->to = bind_b;
    assert_int_equal(w->a->ops->udp_bind(w->a, &any, 0, on_recv, w, &w->ua), 0);
    assert_int_equal(w->b->ops->udp_bind(w->b, &bind_b, 0, on_recv, w, &w->ub), 0);
    assert_int_equal(w->a->ops->timer_new(w->a, on_tick, w, &w->t), 0);
    w->a->ops->timer_start(w->t, 1 * S);
    flare_sim_run_for(w->sim, 3 * S);
    uint64_t hash = flare_sim_trace_hash(w->sim);
    w->a->ops->timer_del(w->t);
    w->a->ops->udp_close(w->ua);
    w->b->ops->udp_close(w->ub);
    flare_sim_del(w->sim);
    return hash;
}

static void test_cross_partition_delay(void **state)
{
    (void)state;
    ping_world w;
    run_ping(&w, 2, 0, 0);
    assert_int_equal(w.sent, 300);
    assert_int_equal(w.got, 300);
    assert_int_equal(w.early, 0);
    assert_int_equal(w.late, 0);
    assert_true(w.windows >= 36); /* in windows of the 25 ms lookahead: 900 ms of sends */
    /* With jitter and loss on the receiving link (drawn by the sender's
     * partition): never early, never later than the jitter allows. */
    uint64_t h1 = run_ping(&w, 2, 4 * MS, 0.2);
    assert_int_equal(w.early, 0);
    assert_int_equal(w.late, 0);
    assert_true(w.got > 180 && w.got < 290);
    int got = w.got;
    uint64_t h2 = run_ping(&w, 2, 4 * MS, 0.2);
    assert_int_equal(w.got, got);
    assert_true(h1 == h2);
    /* One partition: the same delays. */
    run_ping(&w, 1, 0, 0);
    assert_int_equal(w.got, 300);
    assert_int_equal(w.early + w.late, 0);
}

/* Zero-delay links between partitions: no lookahead, the partitions run
 * one after the other, and still deliver. */
static void test_zero_delay_serial(void **state)
{
    (void)state;
    flare_sim *sim = flare_sim_new(1, NULL);
    assert_int_equal(flare_sim_set_partitions(sim, 3, 2), 0);
    flare_sim_host *hs[3];
    flare_io *io[3];
    flare_io_udp *u[3];
    char ip[32];
    ping_world w = {0};
    w.max_delay = 0;
    for (int i = 0; i < 3; i++) {
        snprintf(ip, sizeof(ip), "1.0.0.%d", i + 1);
        hs[i] = pub_host(sim, "h", ip, 0);
        io[i] = flare_sim_host_io(hs[i]);
        flare_ipaddr b;
        snprintf(ip, sizeof(ip), "1.0.0.%d:7000", i + 1);
        assert_int_equal(flare_ipaddr_parse(&b, ip), 0);
        w.b = io[i];
        assert_int_equal(io[i]->ops->udp_bind(io[i], &b, 0, on_recv, &w, &u[i]), 0);
    }
    assert_int_equal(flare_sim_lookahead(sim), 0);
    flare_ipaddr to;
    assert_int_equal(flare_ipaddr_parse(&to, "1.0.0.3:7000"), 0);
    flare_tstamp now = flare_sim_now(sim);
    assert_int_equal(io[0]->ops->udp_send(u[0], &to, (const uint8_t *)&now, sizeof(now)), 0);
    flare_sim_run_for(sim, 1 * S);
    assert_int_equal(w.got, 1);
    assert_int_equal(w.early + w.late, 0);
    for (int i = 0; i < 3; i++)
        io[i]->ops->udp_close(u[i]);
    flare_sim_del(sim);
}

/* ---- how the windows' work spreads ----------------------------------------------- */

typedef struct ticker {
    flare_io *io;
    flare_io_timer *t;
} ticker;

static void on_tick_again(flare_io_timer *t, void *user)
{
    ticker *k = user;
    k->io->ops->timer_start(t, flare_io_now(k->io) + 10 * MS);
}

/* Partitions 0-2 run one event a window, partition 3 three. Dealt in
 * shard order to 2 threads, one thread would run 1 + 3 events a window;
 * the largest first, 3 (and the other 1 + 1 + 1). */
static void run_ticks(unsigned threads, flare_sim_par_stats *st)
{
    flare_sim *sim = flare_sim_new(3, NULL);
    assert_int_equal(flare_sim_set_partitions(sim, 4, threads), 0);
    flare_sim_set_par_profile(sim, 1);
    ticker tk[6];
    int nt = 0;
    char ip[32];
    for (int i = 0; i < 4; i++) {
        snprintf(ip, sizeof(ip), "1.0.0.%d", i + 1);
        flare_io *io = flare_sim_host_io(pub_host(sim, "h", ip, 5 * MS)); /* partition i */
        for (int j = 0; j < (i == 3 ? 3 : 1); j++, nt++) {
            tk[nt].io = io;
            assert_int_equal(io->ops->timer_new(io, on_tick_again, &tk[nt], &tk[nt].t), 0);
            io->ops->timer_start(tk[nt].t, 1 * S);
        }
    }
    assert_int_equal(flare_sim_lookahead(sim), 10 * MS);
    flare_sim_run_for(sim, 2 * S);
    flare_sim_par_stats_get(sim, st);
    for (int i = 0; i < nt; i++)
        tk[i].io->ops->timer_del(tk[i].t);
    flare_sim_del(sim);
}

static void test_window_stats(void **state)
{
    (void)state;
    flare_sim_par_stats st, st3;
    flare_sim *one = flare_sim_new(1, NULL);
    memset(&st, 0xff, sizeof(st));
    flare_sim_par_stats_get(one, &st);
    assert_true(st.windows == 0 && st.events == 0 && st.cpu_ns == 0);
    flare_sim_del(one);

    run_ticks(2, &st);
    uint64_t w = st.windows;
    assert_true(w == 101); /* ticks at 1 s, 1.01 s, ... 2 s: one a window */
    assert_true(st.busy_windows == w);
    assert_true(st.events == 6 * w);
    assert_true(st.part_events[0] == w && st.part_events[2] == w && st.part_events[3] == 3 * w);
    assert_true(st.events_crit == 3 * w);
    assert_true(st.events_crit_threads == 3 * w); /* largest first */
    assert_true(st.cpu_ns > 0 && st.cpu_crit_ns <= st.cpu_ns && st.cpu_floor_ns <= st.cpu_ns);
    assert_true(st.cpu_floor_ns + w >= st.cpu_ns / 2); /* each window rounds down */
    /* The events depend on the partitions only. */
    run_ticks(3, &st3);
    assert_true(st3.windows == w && st3.events == st.events && st3.events_crit == st.events_crit);
    assert_memory_equal(st3.part_events, st.part_events, sizeof(st.part_events));
    assert_true(st3.events_crit_threads == 3 * w);
}

/* ---- the whole flow on partitions ------------------------------------------------ */

static void run_flow(unsigned threads, simnet_summary *s)
{
    simnet_config c;
    simnet_config_default(&c);
    c.nodes = 100;
    c.pairs = 8;
    c.plaintext = 1;
    c.join_s = 40;
    c.dial_s = 30;
    c.threads = (int)threads;
    assert_int_equal(simnet_run(&c, NULL, s), 0);
    s->wall_s = 0;
}

static void test_flow_partitions(void **state)
{
    (void)state;
    simnet_summary *one = calloc(3, sizeof(*one));
    assert_non_null(one);
    simnet_summary *two = one + 1, *three = one + 2;
    run_flow(1, one);
    run_flow(2, two);   /* 8 partitions on 2 threads */
    run_flow(3, three); /* the same 8 partitions on 3 threads */
    /* The run depends on the partitions only: the same summary, field by
     * field, whatever the threads and their timing. */
    assert_memory_equal(two, three, sizeof(*two));
    print_message("1 partition: %d of %d private with a relay, %d of %d found, %d direct; "
                  "8: %d, %d, %d\n",
                  one->private_with_relay, one->private_nodes, one->found, one->pairs, one->direct,
                  two->private_with_relay, two->found, two->direct);
    /* The same protocol outcomes (not the same event order). */
    assert_int_equal(two->nodes, one->nodes);
    assert_int_equal(two->private_with_relay, one->private_with_relay);
    assert_int_equal(two->private_with_relay, two->private_nodes);
    assert_int_equal(two->pairs, one->pairs);
    assert_int_equal(two->found, two->pairs);
    assert_int_equal(one->found, one->pairs);
    assert_true(abs(two->direct - one->direct) <= 1);
    assert_true(two->direct > 0);
    free(one);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_partitions_rules),  cmocka_unit_test(test_lookahead),
        cmocka_unit_test(test_cross_partition_delay), cmocka_unit_test(test_zero_delay_serial),
        cmocka_unit_test(test_window_stats),          cmocka_unit_test(test_flow_partitions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
