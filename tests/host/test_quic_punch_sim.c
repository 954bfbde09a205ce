/* DCUtR over QUIC on the simulator: relay R, B and A listen on QUIC only
 * (no TCP anywhere), B and A behind cone NATs. B reserves on R over QUIC, A
 * reaches B through a circuit carried by QUIC, DCUtR runs over it and the
 * direct connection is QUIC: A dials as the QUIC client while B sprays UDP
 * packets from its listen socket. Symmetric NATs stay relayed. */
#include "support/test.h"

#include "flare/dcutr.h"
#include "flare/sim_world.h"
#include "support/helpers.h"

#define MS FLARE_NS_PER_MS
#define S  FLARE_NS_PER_S

/* flare_sim_world_setup with QUIC listeners only; B's host allocates
 * through mem_b (NULL: libc). */
static void setup_mem(flare_sim_world *w, const flare_sim_nat_config *na,
                      const flare_sim_nat_config *nb, const flare_mem *mem_b)
{
    flare_test_world_spec spec = {
        .transport = "udp/4001/quic-v1", .nat_a = na, .nat_b = nb, .mem_b = mem_b};
    assert_int_equal(flare_test_world_setup(w, &spec), 0);
    /* The relayed address is the relay's QUIC address plus the circuit. */
    char s[256];
    flare_multiaddr_to_string(&w->b.relayed, s, sizeof(s));
    assert_non_null(strstr(s, "/udp/4001/quic-v1/p2p/"));
    assert_non_null(strstr(s, "/p2p-circuit/p2p/"));
}

static void setup(flare_sim_world *w, const flare_sim_nat_config *na,
                  const flare_sim_nat_config *nb)
{
    setup_mem(w, na, nb, NULL);
}

static void test_quic_cone_cone_punch(void **state)
{
    flare_sim_nat_config nat;
    flare_sim_nat_config_default(&nat); /* endpoint-independent mapping, APD filtering */
    flare_sim_world w;
    setup(&w, &nat, &nat);
    flare_sim_world_run_punch(&w, 30 * S);
    assert_int_equal(w.b.punch_done, 1);
    assert_int_equal(w.b.punch_err, 0);
    assert_true(flare_sim_world_direct(&w));
    flare_conn *ca = flare_host_conn_to(w.a.h, flare_host_peerid(w.b.h));
    flare_conn *cb = flare_host_conn_to(w.b.h, flare_host_peerid(w.a.h));
    assert_non_null(cb);
    assert_string_equal(flare_conn_transport(ca), "quic-v1");
    assert_string_equal(flare_conn_transport(cb), "quic-v1");
    assert_string_equal(flare_conn_security(ca), "tls");
    /* A is the QUIC client, B the server; A dialed B's NAT mapping of its
     * listen port, and B saw A's. */
    assert_true(flare_conn_is_initiator(ca));
    assert_false(flare_conn_is_initiator(cb));
    char s[128];
    flare_multiaddr_to_string(flare_conn_remote_addr(ca), s, sizeof(s));
    assert_string_equal(s, "/ip4/203.0.113.2/udp/4001/quic-v1");
    flare_multiaddr_to_string(flare_conn_remote_addr(cb), s, sizeof(s));
    assert_string_equal(s, "/ip4/203.0.113.1/udp/4001/quic-v1");
    /* The relayed connection is gone after its grace period. */
    assert_int_equal(flare_host_num_conns(w.a.h), 2);
    assert_int_equal(flare_host_num_conns(w.b.h), 2);
    /* Traffic on the direct path: ping at ~100 ms (2 links of 25 ms each way). */
    assert_int_equal(flare_host_ping(w.a.h, flare_host_peerid(w.b.h), NULL, NULL), 0);
    flare_sim_run_for(w.sim, 1 * S);
    assert_true(w.a.pings >= 1);
    flare_sim_world_free(&w);
}

static void test_quic_symmetric_stays_relayed(void **state)
{
    flare_sim_nat_config nat;
    flare_sim_nat_config_default(&nat);
    nat.mapping = FLARE_SIM_APD;
    nat.port_preservation = 0;
    flare_sim_world w;
    setup(&w, &nat, &nat);
    flare_sim_world_run_punch(&w, 60 * S);
    assert_int_equal(w.b.punch_done, 1);
    assert_int_not_equal(w.b.punch_err, 0);
    assert_false(flare_sim_world_direct(&w));
    /* Still reachable through the relay (a circuit over QUIC). */
    flare_conn *c = flare_host_conn_to(w.a.h, flare_host_peerid(w.b.h));
    assert_non_null(c);
    assert_true(flare_conn_is_limited(c));
    flare_sim_world_free(&w);
}

typedef struct spy {
    flare_sim_world_node *node;
    int dial_start; /* B's dial phases begun: it sprays UDP packets */
} spy;

static void spy_event(flare_host *h, const flare_host_event *ev, void *user)
{
    spy *x = user;
    flare_sim_world_on_event(h, ev, x->node);
    if (ev->type == FLARE_HOST_EV_HOLEPUNCH_STEP &&
        strcmp(ev->u.holepunch_step.step, "dial-start") == 0)
        x->dial_start++;
}

/* B's host is destroyed while it sprays packets toward A (the spray's timer
 * pending): everything B allocated is freed, and the simulation runs on
 * without B's timers firing into freed memory. */
static void test_quic_host_gone_mid_punch(void **state)
{
    flare_sim_nat_config nat;
    flare_sim_nat_config_default(&nat);
    nat.mapping = FLARE_SIM_APD; /* symmetric: the spray lasts its whole dial phase */
    nat.port_preservation = 0;
    flare_test_heap heap = {0};
    flare_mem mem = flare_test_heap_mem(&heap);
    flare_sim_world w;
    setup_mem(&w, &nat, &nat, &mem);
    spy x = {.node = &w.b};
    flare_host_set_event_cb(w.b.h, spy_event, &x);
    for (int i = 0; i < 100 && !x.dial_start; i++)
        flare_sim_run_for(w.sim, 100 * MS);
    assert_int_equal(x.dial_start, 1);
    flare_sim_run_for(w.sim, 1 * S); /* mid-spray (5 s) */
    assert_int_equal(w.b.punch_done, 0);
    assert_true(heap.blocks > 0);
    flare_host_del(w.b.h);
    w.b.h = NULL;
    assert_int_equal(heap.blocks, 0);
    assert_int_equal(heap.bytes, 0);
    flare_sim_run_for(w.sim, 10 * S);
    flare_sim_world_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quic_cone_cone_punch),
        cmocka_unit_test(test_quic_symmetric_stays_relayed),
        cmocka_unit_test(test_quic_host_gone_mid_punch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
