/* The host's by-peer index of ready connections behind
 * flare_host_conn_to: a hub with enough peers to grow the index several
 * times finds each one's connection, none for a peer it never met, none
 * once a connection closed, nor after the peers went away. */
#include "support/test.h"

#include "flare/host.h"
#include "flare/sim.h"
#include "host/host_int.h"

#define NPEERS 40

static flare_host *make(flare_sim *sim, int i, int port)
{
    char ip[32];
    snprintf(ip, sizeof(ip), "198.51.100.%d", i + 1);
    flare_test_host_spec sp = {.name = ip,
                               .lan = flare_sim_internet(sim),
                               .ip = ip,
                               .link = {.delay = 2 * FLARE_NS_PER_MS},
                               .seed = {(uint8_t)(i + 1)},
                               .listen_port = port};
    flare_sim_host *sh;
    flare_host *h;
    assert_int_equal(flare_test_host_make(sim, &sp, &sh, &h), 0);
    return h;
}

static void test_index(void **state)
{
    (void)state;
    flare_sim *sim = flare_sim_new(9, NULL);
    assert_non_null(sim);
    flare_host *hub = make(sim, 0, 4001), *peer[NPEERS];
    flare_conn *conn[NPEERS];
    flare_multiaddr ma;
    assert_int_equal(flare_test_tcp_addr(&ma, "198.51.100.1", 4001, flare_host_peerid(hub)), 0);
    for (int i = 0; i < NPEERS; i++) {
        peer[i] = make(sim, i + 1, 0);
        conn[i] = flare_test_dial_ok(sim, peer[i], &ma, 500);
    }
    flare_test_run_ms(sim, 500);
    assert_int_equal(hub->by_peer_count, NPEERS);
    assert_true(hub->by_peer_size >= NPEERS && !hub->by_peer_lossy);
    for (int i = 0; i < NPEERS; i++) {
        flare_conn *c = flare_host_conn_to(hub, flare_host_peerid(peer[i]));
        assert_non_null(c);
        assert_true(flare_peerid_equal(flare_conn_peer(c), flare_host_peerid(peer[i])));
        assert_ptr_equal(flare_host_conn_to(peer[i], flare_host_peerid(hub)), conn[i]);
    }
    /* A peer the hub never met. */
    flare_host *stranger = make(sim, NPEERS + 2, 0);
    assert_null(flare_host_conn_to(hub, flare_host_peerid(stranger)));
    /* Closed ones leave the index. */
    for (int i = 0; i < NPEERS; i += 2)
        flare_conn_close(conn[i]);
    flare_test_run_ms(sim, 500);
    assert_int_equal(hub->by_peer_count, NPEERS / 2);
    for (int i = 0; i < NPEERS; i++)
        assert_true((flare_host_conn_to(hub, flare_host_peerid(peer[i])) == NULL) == (i % 2 == 0));
    for (int i = 0; i < NPEERS; i++)
        flare_host_del(peer[i]);
    flare_test_run_ms(sim, 200);
    assert_int_equal(hub->by_peer_count, 0);
    flare_host_del(stranger);
    flare_host_del(hub);
    flare_sim_del(sim);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_index)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
