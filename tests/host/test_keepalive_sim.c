/* The host's yamux keepalive on the simulator (go-yamux's rule, default
 * 30 s): a connection that carries a ping-protocol exchange every 10 s
 * sends no yamux PING in 100 s on either side (none at start either), and
 * once idle one goes out within an interval plus a little. */
#include "support/test.h"

#include "flare/host.h"
#include "flare/sim.h"
#include "host/host_int.h"
#include "muxer/yamux/yamux_int.h"

static void ping_cb(flare_host *h, const flare_peerid *peer, int status, flare_tstamp rtt,
                    void *user)
{
    (void)h, (void)peer, (void)rtt;
    if (status == 0)
        ++*(int *)user;
}

/* A yamux RTT is only measured by a yamux PING answered. */
static flare_tstamp yamux_rtt(const flare_conn *c)
{
    return flare_yamux_rtt((const flare_yamux *)c->mux_st);
}

static void test_busy_connection_sends_no_keepalive(void **state)
{
    (void)state;
    flare_sim *sim = flare_sim_new(3, NULL);
    assert_non_null(sim);
    flare_test_pair p;
    assert_int_equal(flare_test_pair_make(sim, &p, NULL, NULL), 0);
    flare_conn *ca = flare_test_dial_ok(sim, p.a, &p.bma, 2000);
    assert_non_null(ca);
    flare_conn *cb = p.b->conns;
    assert_non_null(cb);
    int pings = 0;
    for (int i = 0; i < 10; i++) {
        assert_int_equal(flare_host_ping(p.a, flare_host_peerid(p.b), ping_cb, &pings), 0);
        flare_test_run_ms(sim, 10000);
    }
    assert_int_equal(pings, 10);
    /* The same connection on both sides, and no yamux PING answered. */
    assert_ptr_equal(p.a->conns, ca);
    assert_null(ca->next);
    assert_ptr_equal(p.b->conns, cb);
    assert_null(cb->next);
    assert_int_equal(yamux_rtt(ca), 0);
    assert_int_equal(yamux_rtt(cb), 0);
    /* Idle from here: a keepalive within 30 s of the last frame, answered. */
    flare_test_run_ms(sim, 35000);
    assert_ptr_equal(p.a->conns, ca);
    assert_ptr_equal(p.b->conns, cb);
    assert_true(yamux_rtt(ca) != 0 || yamux_rtt(cb) != 0);
    flare_host_del(p.a);
    flare_host_del(p.b);
    flare_sim_del(sim);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_busy_connection_sends_no_keepalive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
