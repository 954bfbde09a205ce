/* QUIC as a host transport on the simulated network: two hosts connect over
 * /udp/.../quic-v1 (TLS + QUIC streams, no Noise, no yamux), identify, ping,
 * a bulk echo stream; a host behind a cone NAT dials out; the host's
 * connection close reaches the peer. */
#include <stdlib.h>

#include "support/test.h"

#include "flare/host.h"
#include "flare/identify.h"
#include "flare/ping.h"
#include "flare/sim.h"
#include "flare/sim_world.h"
#include "support/helpers.h"

#define MS FLARE_NS_PER_MS

typedef flare_test_node qnode;

static void make(flare_sim *sim, flare_sim_lan *lan, qnode *n, const char *name, const char *ip,
                 uint8_t seed)
{
    assert_int_equal(flare_test_node_make(sim, lan, n, name, ip, seed, 10 * MS, NULL), 0);
}

static void quic_addr(flare_multiaddr *ma, const char *ip, int port, const flare_peerid *peer)
{
    char s[96];
    snprintf(s, sizeof(s), "/ip4/%s/udp/%d/quic-v1", ip, port);
    assert_int_equal(flare_multiaddr_parse(ma, s), 0);
    if (peer)
        assert_int_equal(flare_multiaddr_with_peerid(ma, peer), 0);
}

static void listen_quic(qnode *n, int port)
{
    flare_multiaddr ma;
    quic_addr(&ma, n->ip, port, NULL);
    assert_int_equal(flare_host_listen(n->h, &ma), 0);
}

static void test_quic_connect_identify_ping_echo(void **state)
{
    flare_sim *sim = flare_sim_new(1, NULL);
    qnode a, b;
    make(sim, flare_sim_internet(sim), &a, "a", "198.51.100.1", 1);
    make(sim, flare_sim_internet(sim), &b, "b", "198.51.100.2", 2);
    listen_quic(&a, 4001);
    listen_quic(&b, 4002);
    assert_int_equal(flare_host_set_handler(a.h, "/echo/1", &flare_test_echo_cbs, NULL, 0), 0);
    flare_multiaddr ma;
    quic_addr(&ma, a.ip, 4001, flare_host_peerid(a.h));
    flare_conn *conn = flare_test_dial_ok(sim, b.h, &ma, 2000);
    assert_int_equal(a.opened, 1);
    assert_int_equal(b.opened, 1);
    flare_test_assert_stack(conn, "quic-v1", "tls", "quic");
    assert_true(a.identified >= 1);
    assert_true(b.identified >= 1);
    /* B's observed address is its QUIC listen address (one socket for both). */
    assert_true(b.observed >= 1);
    char s[256];
    flare_multiaddr_to_string(&b.observed_addr, s, sizeof(s));
    assert_string_equal(s, "/ip4/198.51.100.2/udp/4002/quic-v1");
    /* Ping: 10 ms links, so an RTT of 40 ms. */
    flare_test_ping_ok(sim, &b, flare_host_peerid(a.h), 40 * MS, 45 * MS);
    /* 4 MiB echoed on one stream. */
    flare_test_echo_ok(sim, b.h, flare_host_peerid(a.h), "/echo/1", 4u << 20, 65536, 20000);
    /* Closing the connection reaches the peer at once (AutoNAT's dial-backs
     * opened and closed others meanwhile: count from here). */
    int a0 = a.closed, b0 = b.closed;
    assert_non_null(flare_host_conn_to(a.h, flare_host_peerid(b.h)));
    flare_conn_close(conn);
    flare_test_run_ms(sim, 200);
    assert_int_equal(a.closed, a0 + 1);
    assert_int_equal(b.closed, b0 + 1);
    assert_null(flare_host_conn_to(a.h, flare_host_peerid(b.h)));
    assert_null(flare_host_conn_to(b.h, flare_host_peerid(a.h)));
    flare_host_del(a.h);
    flare_host_del(b.h);
    flare_sim_del(sim);
}

/* B behind a cone NAT dials public A; A sees B's NAT mapping of B's listen
 * port (port preserved), and a wrong expected peer ID fails the dial. */
static void test_quic_behind_nat_and_wrong_peer(void **state)
{
    flare_sim *sim = flare_sim_new(2, NULL);
    flare_sim_lan *lan = flare_sim_lan_new(sim, "lan-b");
    assert_non_null(lan);
    flare_sim_nat_config cfg;
    flare_sim_nat_config_default(&cfg);
    assert_non_null(flare_sim_nat_new(sim, "nat-b", flare_sim_internet(sim), "203.0.113.9", lan,
                                      "10.0.0.1", &cfg));
    qnode a, b, c;
    make(sim, flare_sim_internet(sim), &a, "a", "198.51.100.1", 1);
    make(sim, lan, &b, "b", "10.0.0.2", 2);
    make(sim, flare_sim_internet(sim), &c, "c", "198.51.100.3", 3);
    listen_quic(&a, 4001);
    listen_quic(&b, 4002);
    flare_multiaddr ma;
    quic_addr(&ma, a.ip, 4001, flare_host_peerid(a.h));
    flare_test_dial r = {0};
    assert_int_equal(flare_host_dial(b.h, &ma, NULL, flare_test_dial_cb, &r), 0);
    flare_test_run_ms(sim, 2000);
    assert_int_equal(r.status, 0);
    assert_int_equal(a.opened, 1);
    char s[256];
    flare_multiaddr_to_string(&b.observed_addr, s, sizeof(s));
    assert_string_equal(s, "/ip4/203.0.113.9/udp/4002/quic-v1");
    /* C dials A's address expecting B there: the TLS handshake fails. */
    flare_test_dial r2 = {0};
    listen_quic(&c, 4003);
    flare_multiaddr mc;
    quic_addr(&mc, a.ip, 4001, flare_host_peerid(b.h));
    assert_int_equal(flare_host_dial(c.h, &mc, NULL, flare_test_dial_cb, &r2), 0);
    flare_test_run_ms(sim, 3000);
    assert_int_equal(r2.calls, 1);
    assert_int_equal(r2.status, FLARE_ERR_PEER_ID_MISMATCH);
    assert_int_equal(a.opened, 1);
    flare_host_del(a.h);
    flare_host_del(b.h);
    flare_host_del(c.h);
    flare_sim_del(sim);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quic_connect_identify_ping_echo),
        cmocka_unit_test(test_quic_behind_nat_and_wrong_peer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
