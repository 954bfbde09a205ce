/* Our own signed peer record and peer routing by it, on the simulator: 6
 * public DHT servers (node 1 also a relay), a private node P behind a NAT
 * that reserves on node 1, and a public DHT client D. P's identify carries
 * a signed record that the relay (and every server P talks to) verifies,
 * also after the reservation added its /p2p-circuit address; a server's
 * FIND_NODE answer about P gives the certified addresses, so an unsigned,
 * forged relayed address planted at every server never reaches D, and D
 * dials P by its peer ID through the relay. */
#include <stdlib.h>

#include "support/test.h"

#include "flare/host.h"
#include "flare/kad.h"
#include "flare/relay_server.h"
#include "flare/sim.h"
#include "host/host_int.h"
#include "support/helpers.h"
#include "support/kad_world.h"

#define MS    FLARE_NS_PER_MS
#define S     FLARE_NS_PER_S
#define NPUB  6
#define P_IDX NPUB
#define D_IDX (NPUB + 1)
#define NALL  (NPUB + 2)

typedef struct node {
    flare_test_kad_node k;
    int rsv_ok;
    int signed_ids;   /* identifies of P that carried a verified record */
    int unsigned_ids; /* identifies of P without one (or a bad one) */
    const flare_peerid *watch;
} node;

typedef struct world {
    flare_sim *sim;
    node n[NALL];
} world;

static void on_event(flare_host *h, const flare_host_event *ev, void *user)
{
    node *n = user;
    (void)h;
    if (ev->type == FLARE_HOST_EV_RESERVATION_OK)
        n->rsv_ok++;
    if (ev->type == FLARE_HOST_EV_IDENTIFIED && n->watch &&
        flare_peerid_equal(ev->u.identified.peer, n->watch)) {
        if (ev->u.identified.signed_record)
            n->signed_ids++;
        else
            n->unsigned_ids++;
    }
}

static void make_node(void *wv, int i, flare_sim_lan *lan, const char *ip)
{
    world *w = wv;
    node *n = &w->n[i];
    flare_host_settings c;
    flare_test_kad_host_settings(&c);
    c.enable_holepunch = 0;
    c.enable_autorelay = i == P_IDX;
    flare_test_host_spec sp = {.name = i == P_IDX ? "P" : (i == D_IDX ? "D" : "pub"),
                               .lan = lan,
                               .ip = ip,
                               .seed = {(uint8_t)(i + 1), 0x5e},
                               .cfg = &c,
                               .on_event = on_event,
                               .user = n};
    flare_test_kad_node_make(w->sim, &n->k, &sp);
    if (i == 1)
        assert_int_equal(flare_host_enable_relay_server(n->k.h, NULL), 0);
    flare_kad_settings ks;
    flare_test_kad_settings(&ks, i < NPUB ? FLARE_KAD_MODE_SERVER : FLARE_KAD_MODE_CLIENT);
    const flare_test_kad_node *boot = &w->n[0].k;
    flare_test_kad_enable(n->k.h, &ks, &boot, i ? 1 : 0);
}

typedef flare_test_kad_res res;

static int has_addr(const flare_multiaddr *list, size_t n, const flare_multiaddr *ma)
{
    for (size_t i = 0; i < n; i++)
        if (flare_multiaddr_equal(&list[i], ma))
            return 1;
    return 0;
}

static void test_signed_record_routing(void **state)
{
    (void)state;
    world *w = calloc(1, sizeof(*w));
    w->sim = flare_sim_new(5, NULL);
    flare_sim_lan *inet = flare_sim_internet(w->sim);
    flare_test_kad_add_public(w->sim, 2, 0, NPUB, make_node, w);
    flare_sim_lan *lan = flare_sim_lan_new(w->sim, "lanP");
    assert_non_null(flare_sim_nat_new(w->sim, "lanP", inet, "12.2.0.1", lan, "10.0.0.1", NULL));
    make_node(w, P_IDX, lan, "10.0.0.2");
    make_node(w, D_IDX, inet, "11.2.99.1");
    const flare_peerid *pid = flare_host_peerid(w->n[P_IDX].k.h);
    for (int i = 0; i < NALL; i++)
        w->n[i].watch = pid;
    flare_multiaddr relay_ma;
    assert_int_equal(
        flare_test_tcp_addr(&relay_ma, w->n[1].k.ip, 4001, flare_host_peerid(w->n[1].k.h)), 0);
    assert_int_equal(flare_host_autorelay_add_static(w->n[P_IDX].k.h, &relay_ma), 0);
    for (int i = 0; i < 600 && !w->n[P_IDX].rsv_ok; i++)
        flare_test_kad_run_s(w->sim, 0.1);
    assert_true(w->n[P_IDX].rsv_ok >= 1);
    flare_test_kad_run_s(w->sim, 10); /* identify pushes, P's self lookup */

    /* Every identify of P that a public node got carried a verified record,
     * and the relay holds P's relayed address as certified. */
    int signed_total = 0;
    for (int i = 0; i < NPUB; i++) {
        assert_int_equal(w->n[i].unsigned_ids, 0);
        signed_total += w->n[i].signed_ids;
    }
    assert_true(w->n[1].signed_ids >= 2); /* the first identify, then the push */
    assert_true(signed_total >= 2);
    flare_multiaddr got[FLARE_PEER_MAX_ADDRS], relayed;
    flare_tstamp now = flare_io_now(w->n[1].k.h->io);
    size_t ng = flare__peerstore_addrs_certified(w->n[1].k.h->peerstore, pid, now, got, 16);
    int found_relayed = 0;
    for (size_t i = 0; i < ng; i++)
        if (flare_multiaddr_is_relayed(&got[i]) && !found_relayed++)
            relayed = got[i];
    assert_true(found_relayed >= 1);

    /* Plant an unsigned relayed address of P, through a relay that does not
     * exist, at every public node. */
    char forged_s[256];
    flare_peerid fake_relay = flare_test_pid(77);
    char fr[128];
    assert_true(flare_peerid_to_string(&fake_relay, fr, sizeof(fr)) > 0);
    snprintf(forged_s, sizeof(forged_s), "/ip4/11.2.77.1/tcp/4001/p2p/%s/p2p-circuit", fr);
    flare_multiaddr forged = flare_test_ma(forged_s);
    int servers_with_p = 0;
    for (int i = 0; i < NPUB; i++) {
        flare_host *h = w->n[i].k.h;
        flare__peerstore_add_addr(h->peerstore, pid, &forged, flare_io_now(h->io) + 3600 * S);
        servers_with_p +=
            flare__peerstore_addrs_certified(h->peerstore, pid, flare_io_now(h->io), got, 16) > 1;
    }
    assert_true(servers_with_p >= 1);

    /* D finds P by its ID: the relayed address is P's own, the forged one
     * is not passed on. */
    res r = {0};
    assert_int_equal(flare_kad_find_peer(w->n[D_IDX].k.h, pid, flare_test_kad_peers_cb, &r), 0);
    for (int i = 0; i < 300 && !r.calls; i++)
        flare_test_kad_run_s(w->sim, 0.1);
    assert_int_equal(r.status, 0);
    assert_true(r.peers[0].naddrs >= 1);
    assert_true(has_addr(r.peers[0].addrs, r.peers[0].naddrs, &relayed));
    assert_false(has_addr(r.peers[0].addrs, r.peers[0].naddrs, &forged));
    flare_multiaddr dk[FLARE_PEER_MAX_ADDRS];
    size_t nd = flare__peerstore_addrs(w->n[D_IDX].k.h->peerstore, pid,
                                       flare_io_now(w->n[D_IDX].k.h->io), dk, FLARE_PEER_MAX_ADDRS);
    assert_false(has_addr(dk, nd, &forged));

    /* And dials it by ID, through the relay. */
    flare_test_kad_connect_ok(w->sim, w->n[D_IDX].k.h, pid);
    assert_non_null(flare_host_conn_to(w->n[D_IDX].k.h, pid));

    for (int i = 0; i < NALL; i++)
        flare_host_del(w->n[i].k.h);
    flare_sim_del(w->sim);
    free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signed_record_routing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
