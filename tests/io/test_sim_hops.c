/* The simulator's per-packet cost: a LAN hop whose next link only adds a
 * fixed delay costs no event of its own, yet arrival times, NAT
 * translation and filtering, and link queueing stay as before. */
#include <stdlib.h>

#include "support/test.h"

#include "flare/sim.h"

#define MS FLARE_NS_PER_MS
#define S  FLARE_NS_PER_S

typedef struct urec {
    flare_io *io;
    int count;
    flare_ipaddr from;
    flare_tstamp at[8];
} urec;

static void on_udp(flare_io_udp *u, const flare_ipaddr *from, const uint8_t *d, size_t n,
                   void *user)
{
    (void)u, (void)d, (void)n;
    urec *r = user;
    if (r->count < 8)
        r->at[r->count] = flare_io_now(r->io);
    r->from = *from;
    r->count++;
}

static flare_io_udp *ubind(flare_sim_host *h, const char *a, urec *r)
{
    flare_io *io = flare_sim_host_io(h);
    flare_io_udp *u = NULL;
    flare_ipaddr la = flare_test_ip(a);
    r->io = io;
    assert_int_equal(io->ops->udp_bind(io, &la, 0, on_udp, r, &u), 0);
    return u;
}

static void usend(flare_sim_host *h, flare_io_udp *u, const char *to, size_t len)
{
    static const uint8_t buf[1000];
    flare_ipaddr t = flare_test_ip(to);
    assert_int_equal(flare_sim_host_io(h)->ops->udp_send(u, &t, buf, len), 0);
}

/* Events the simulation runs until it is idle. */
static uint64_t run_count(flare_sim *sim)
{
    uint64_t before = flare_sim_events(sim);
    assert_int_equal(flare_sim_run_until_idle(sim, 100 * S), 0);
    return flare_sim_events(sim) - before;
}

/* Between two public hosts a datagram is one event (its arrival), at the
 * sum of both links' delays. */
static void test_public_hop_one_event(void **state)
{
    (void)state;
    flare_sim *sim = flare_sim_new(1, NULL);
    flare_sim_lan *net = flare_sim_internet(sim);
    flare_sim_host *a = flare_test_sim_host(sim, "a", net, "1.0.0.1", 10 * MS);
    flare_sim_host *b = flare_test_sim_host(sim, "b", net, "2.0.0.1", 15 * MS);
    urec ra = {0}, rb = {0};
    flare_io_udp *ua = ubind(a, "0.0.0.0:7", &ra);
    ubind(b, "0.0.0.0:7", &rb);
    flare_sim_run_for(sim, 3 * MS);
    usend(a, ua, "2.0.0.1:7", 100);
    assert_int_equal(run_count(sim), 1);
    assert_int_equal(rb.count, 1);
    assert_int_equal(rb.at[0], 28 * MS);
    flare_ipaddr src = flare_test_ip("1.0.0.1:7");
    assert_true(flare_ipaddr_equal(&rb.from, &src));
    flare_sim_del(sim);
}

/* Behind a NAT: the NAT still sees each packet at its own time (an event),
 * translates it, and filters an unsolicited one; the LAN hops cost none. */
static void test_nat_hops(void **state)
{
    (void)state;
    flare_sim *sim = flare_sim_new(2, NULL);
    flare_sim_lan *net = flare_sim_internet(sim);
    flare_sim_lan *lan = flare_sim_lan_new(sim, "lan");
    flare_sim_nat_config cfg;
    flare_sim_nat_config_default(&cfg); /* EI mapping, APD filtering */
    flare_sim_nat *nat = flare_sim_nat_new(sim, "nat", net, "5.0.0.1", lan, "10.0.0.1", &cfg);
    assert_non_null(nat);
    flare_sim_nat_link_set(nat, &(flare_sim_link){.delay = 5 * MS});
    flare_sim_host *in = flare_test_sim_host(sim, "in", lan, "10.0.0.2", 1 * MS);
    flare_sim_host *s1 = flare_test_sim_host(sim, "s1", net, "1.0.0.1", 10 * MS);
    urec ri = {0}, r1 = {0};
    flare_io_udp *ui = ubind(in, "0.0.0.0:5000", &ri);
    flare_io_udp *u1 = ubind(s1, "0.0.0.0:7", &r1);

    /* Unsolicited: the NAT drops it (its filter), the host never sees it. */
    usend(s1, u1, "5.0.0.1:5000", 10);
    assert_int_equal(run_count(sim), 1); /* the NAT's event only */
    assert_int_equal(ri.count, 0);
    flare_sim_nat_stats st;
    flare_sim_nat_stats_get(nat, &st);
    assert_int_equal(st.dropped_filter, 1);

    /* Out: inside LAN -> NAT (an event) -> internet -> s1 (an event). */
    flare_tstamp t0 = flare_sim_now(sim);
    usend(in, ui, "1.0.0.1:7", 10);
    assert_int_equal(run_count(sim), 2);
    assert_int_equal(r1.count, 1);
    assert_int_equal(r1.at[0] - t0, 16 * MS); /* 1 + 0 + 5 + 10 */
    flare_ipaddr ext = flare_test_ip("5.0.0.1:5000");
    assert_true(flare_ipaddr_equal(&r1.from, &ext)); /* port preserved */

    /* The answer now passes the filter, at the same delays back. */
    t0 = flare_sim_now(sim);
    usend(s1, u1, "5.0.0.1:5000", 10);
    assert_int_equal(run_count(sim), 2);
    assert_int_equal(ri.count, 1);
    assert_int_equal(ri.at[0] - t0, 16 * MS);
    /* Another port of s1 is still filtered (address and port dependent). */
    flare_io_udp *u1b = ubind(s1, "0.0.0.0:8", &(urec){0});
    usend(s1, u1b, "5.0.0.1:5000", 10);
    run_count(sim);
    assert_int_equal(ri.count, 1);
    flare_sim_nat_stats_get(nat, &st);
    assert_int_equal(st.dropped_filter, 2);
    flare_sim_del(sim);
}

/* A receiving link with a rate keeps the LAN's event: its queue starts
 * when packets reach it, so back-to-back datagrams leave it spaced by
 * their transmission time, and the queue limit still drops. */
static void test_rate_link_keeps_queue(void **state)
{
    (void)state;
    flare_sim *sim = flare_sim_new(3, NULL);
    flare_sim_lan *net = flare_sim_internet(sim);
    flare_sim_host *a = flare_test_sim_host(sim, "a", net, "1.0.0.1", 10 * MS);
    flare_sim_host *b = flare_test_sim_host(sim, "b", net, "2.0.0.1", 0);
    /* 100 kB/s: a 1000-byte datagram (+ header) takes ~10.3 ms. */
    flare_sim_link_set(b, &(flare_sim_link){.delay = 5 * MS, .rate = 100000, .queue = 1500});
    urec ra = {0}, rb = {0};
    flare_io_udp *ua = ubind(a, "0.0.0.0:7", &ra);
    ubind(b, "0.0.0.0:7", &rb);
    for (int i = 0; i < 3; i++)
        usend(a, ua, "2.0.0.1:7", 1000);
    assert_int_equal(run_count(sim), 6 - 1); /* 3 LAN events, 2 arrivals */
    assert_int_equal(rb.count, 2);           /* the third found 2 kB queued */
    flare_tstamp tx = (flare_tstamp)((1000 + FLARE_SIM_UDP_HDR) * 1e9 / 100000);
    assert_int_equal(rb.at[0], 10 * MS + tx + 5 * MS);
    assert_int_equal(rb.at[1], 10 * MS + 2 * tx + 5 * MS);
    flare_sim_del(sim);
}

/* A jittered receiving link keeps the LAN's event too, so the links' random
 * stream is drawn in the order packets reach the link. */
static void test_jitter_link_keeps_event(void **state)
{
    (void)state;
    flare_sim *sim = flare_sim_new(4, NULL);
    flare_sim_lan *net = flare_sim_internet(sim);
    flare_sim_host *a = flare_test_sim_host(sim, "a", net, "1.0.0.1", 10 * MS);
    flare_sim_host *b = flare_test_sim_host(sim, "b", net, "2.0.0.1", 0);
    flare_sim_link_set(b, &(flare_sim_link){.delay = 5 * MS, .jitter = 2 * MS});
    urec ra = {0}, rb = {0};
    flare_io_udp *ua = ubind(a, "0.0.0.0:7", &ra);
    ubind(b, "0.0.0.0:7", &rb);
    usend(a, ua, "2.0.0.1:7", 10);
    assert_int_equal(run_count(sim), 2);
    assert_int_equal(rb.count, 1);
    assert_true(rb.at[0] >= 15 * MS && rb.at[0] <= 17 * MS);
    flare_sim_del(sim);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_public_hop_one_event),
        cmocka_unit_test(test_nat_hops),
        cmocka_unit_test(test_rate_link_keeps_queue),
        cmocka_unit_test(test_jitter_link_keeps_event),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
