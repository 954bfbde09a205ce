/* ICE through the simulator's NAT boxes (endpoint-independent mapping,
 * address-and-port-dependent filtering on both sides): two private peers
 * gather server-reflexive candidates from a public flare node's STUN
 * server (on its QUIC port), exchange candidates (their private host
 * candidates are refused by the scope filter), and their agents punch
 * through both NATs to a selected pair that carries application data. */
#include "support/test.h"

#include "flare/host.h"
#include "flare/ice.h"
#include "flare/sim.h"
#include "flare/stun.h"
#include "support/helpers.h"

#define MS FLARE_NS_PER_MS

typedef struct peer {
    flare_io *io;
    flare_io_udp *u;
    flare_ipaddr local, mapped;
    flare_stun_txn txn;
    flare_ice_agent *ice;
    int app_got;
} peer;

static flare_prng prng;

static void on_recv(flare_io_udp *u, const flare_ipaddr *from, const uint8_t *data, size_t len,
                    void *user)
{
    peer *p = user;
    (void)u;
    flare_stun_msg m;
    if (!p->ice) { /* gathering */
        if (flare_stun_parse(&m, data, len) == 0 && flare_stun_txn_match(&p->txn, &m))
            assert_int_equal(
                flare_stun_get_addr(&m, FLARE_STUN_ATTR_XOR_MAPPED_ADDRESS, &p->mapped), 0);
        return;
    }
    if (flare_ice_input(p->ice, &p->local, from, data, len, flare_io_now(p->io)) == 0) {
        flare_ipaddr sl, sr;
        assert_int_equal(flare_ice_selected(p->ice, &sl, &sr), 0);
        assert_true(flare_ipaddr_equal(from, &sr));
        assert_int_equal(len, 5);
        assert_memory_equal(data, "hello", 5);
        p->app_got++;
    }
}

static void peer_make(flare_sim *sim, peer *p, const char *name, const char *lan_name,
                      const char *nat_ip, const char *gw_ip, const char *ip)
{
    memset(p, 0, sizeof(*p));
    flare_sim_lan *lan = flare_sim_lan_new(sim, lan_name);
    assert_non_null(
        flare_sim_nat_new(sim, name, flare_sim_internet(sim), nat_ip, lan, gw_ip, NULL));
    flare_sim_host *sh = flare_sim_host_new(sim, name);
    assert_int_equal(flare_sim_host_add_addr(sh, lan, ip), 0);
    p->io = flare_sim_host_io(sh);
    char a[64];
    snprintf(a, sizeof(a), "%s:5000", ip);
    flare_ipaddr_parse(&p->local, a);
    assert_int_equal(p->io->ops->udp_bind(p->io, &p->local, 0, on_recv, p, &p->u), 0);
}

static void gather(flare_sim *sim, peer *p, const flare_ipaddr *stun)
{
    uint8_t req[64], out[FLARE_STUN_TXN_MAX_REQ], txid[12];
    for (int i = 0; i < 12; i++)
        txid[i] = (uint8_t)flare_prng_next(&prng);
    flare_stun_builder b;
    flare_stun_build_init(&b, req, sizeof(req), FLARE_STUN_BINDING, FLARE_STUN_REQUEST, txid);
    int n = flare_stun_build_finish(&b);
    assert_int_equal(flare_stun_txn_start(&p->txn, NULL, req, (size_t)n, flare_io_now(p->io)), 0);
    for (int step = 0; step < 2000 && p->txn.state == FLARE_STUN_TXN_PENDING; step++) {
        int k = flare_stun_txn_poll_send(&p->txn, flare_io_now(p->io), out, sizeof(out));
        if (k > 0)
            p->io->ops->udp_send(p->u, stun, out, (size_t)k);
        flare_sim_run_for(sim, MS);
    }
    assert_int_equal(p->txn.state, FLARE_STUN_TXN_DONE);
}

static void pump(peer *p)
{
    uint8_t buf[512];
    flare_ipaddr from, to;
    int n;
    while ((n = flare_ice_poll_send(p->ice, flare_io_now(p->io), buf, sizeof(buf), &from, &to)) >
           0) {
        assert_true(flare_ipaddr_equal(&from, &p->local));
        p->io->ops->udp_send(p->u, &to, buf, (size_t)n);
    }
}

static void test_ice_through_cone_nats(void **st)
{
    (void)st;
    flare_prng_seed(&prng, 21);
    flare_sim *sim = flare_sim_new(21, NULL);
    flare_sim_host *ss;
    flare_host *s;
    flare_test_host_spec sp = {.name = "stun",
                               .lan = flare_sim_internet(sim),
                               .ip = "198.51.100.1",
                               .link = {.delay = 10 * MS},
                               .seed = {1}};
    assert_int_equal(flare_test_host_make(sim, &sp, &ss, &s), 0);
    flare_multiaddr ma;
    assert_int_equal(flare_multiaddr_parse(&ma, "/ip4/198.51.100.1/udp/4001/quic-v1"), 0);
    assert_int_equal(flare_host_listen(s, &ma), 0);
    flare_ipaddr stun;
    flare_ipaddr_parse(&stun, "198.51.100.1:4001");

    peer a, b;
    peer_make(sim, &a, "a", "lan-a", "203.0.113.1", "10.0.0.1", "10.0.0.2");
    peer_make(sim, &b, "b", "lan-b", "203.0.113.2", "10.1.0.1", "10.1.0.2");
    gather(sim, &a, &stun);
    gather(sim, &b, &stun);
    char m1[64];
    flare_ipaddr_to_string(&a.mapped, m1, sizeof(m1));
    assert_true(strncmp(m1, "203.0.113.1:", 12) == 0);

    flare_ice_settings ca, cb;
    flare_ice_settings_default(&ca);
    flare_ice_settings_default(&cb);
    ca.controlling = 1;
    ca.doc_is_public = cb.doc_is_public = 1; /* TEST-NET is the simulator's internet */
    const char *pa = "passwordofpeeraaaaaaaa", *pb = "passwordofpeerbbbbbbbb";
    assert_int_equal(flare_ice_agent_new(&a.ice, &ca, "ufra", pa, flare_prng_rng(&prng), NULL), 0);
    assert_int_equal(flare_ice_agent_new(&b.ice, &cb, "ufrb", pb, flare_prng_rng(&prng), NULL), 0);
    peer *ps[2] = {&a, &b};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(
            flare_ice_add_local(ps[i]->ice, FLARE_ICE_HOST, &ps[i]->local, &ps[i]->local), 0);
        assert_int_equal(
            flare_ice_add_local(ps[i]->ice, FLARE_ICE_SRFLX, &ps[i]->mapped, &ps[i]->local), 0);
    }
    /* Signalling (over a relayed connection in real life). */
    for (int i = 0; i < 2; i++) {
        flare_ice_candidate c[4];
        size_t n = flare_ice_local_candidates(ps[i]->ice, c, 4);
        assert_int_equal(n, 2);
        assert_int_equal(flare_ice_add_remote(ps[1 - i]->ice, &c[0]),
                         FLARE_ERR_REFUSED); /* private */
        assert_int_equal(flare_ice_add_remote(ps[1 - i]->ice, &c[1]), 0);
    }
    assert_int_equal(flare_ice_set_remote_credentials(a.ice, "ufrb", pb), 0);
    assert_int_equal(flare_ice_set_remote_credentials(b.ice, "ufra", pa), 0);
    assert_int_equal(flare_ice_start(a.ice, flare_io_now(a.io)), 0);
    assert_int_equal(flare_ice_start(b.ice, flare_io_now(b.io)), 0);
    for (int step = 0; step < 5000; step++) {
        pump(&a);
        pump(&b);
        flare_sim_run_for(sim, MS);
        if (flare_ice_get_state(a.ice) == FLARE_ICE_CONNECTED &&
            flare_ice_get_state(b.ice) == FLARE_ICE_CONNECTED)
            break;
    }
    assert_int_equal(flare_ice_get_state(a.ice), FLARE_ICE_CONNECTED);
    assert_int_equal(flare_ice_get_state(b.ice), FLARE_ICE_CONNECTED);
    flare_ipaddr al, ar;
    assert_int_equal(flare_ice_selected(a.ice, &al, &ar), 0);
    assert_true(flare_ipaddr_equal(&ar, &b.mapped));
    /* Application data over the selected pair, both ways. */
    a.io->ops->udp_send(a.u, &ar, (const uint8_t *)"hello", 5);
    flare_ipaddr bl, br;
    assert_int_equal(flare_ice_selected(b.ice, &bl, &br), 0);
    b.io->ops->udp_send(b.u, &br, (const uint8_t *)"hello", 5);
    for (int i = 0; i < 200; i++) {
        pump(&a);
        pump(&b);
        flare_sim_run_for(sim, MS);
    }
    assert_int_equal(a.app_got, 1);
    assert_int_equal(b.app_got, 1);
    flare_ice_agent_del(a.ice);
    flare_ice_agent_del(b.ice);
    a.io->ops->udp_close(a.u);
    b.io->ops->udp_close(b.u);
    flare_host_del(s);
    flare_sim_del(sim);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ice_through_cone_nats),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
