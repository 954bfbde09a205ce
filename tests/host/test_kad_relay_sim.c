/* Relays found through the DHT, peers dialed by ID: 16 public DHT servers
 * (every other one a relay) and 4 private nodes behind NATs with AutoRelay
 * and no relay configured. Every private node finds relays through the DHT
 * and reserves; a private node finds another one's (relayed) addresses by
 * its peer ID alone, dials it through a relay and hole punches to a direct
 * connection. */
#include <stdlib.h>

#include "support/test.h"

#include "flare/host.h"
#include "flare/kad.h"
#include "flare/relay_server.h"
#include "flare/sim.h"
#include "support/helpers.h"
#include "support/kad_world.h"

#define MS    FLARE_NS_PER_MS
#define S     FLARE_NS_PER_S
#define NPUB  16
#define NPRIV 4
#define NALL  (NPUB + NPRIV)

typedef struct node {
    flare_test_kad_node k;
    int rsv_ok, punch_ok, punch_failed;
} node;

typedef struct world {
    flare_sim *sim;
    node n[NALL];
} world;

typedef flare_test_kad_res res;

static void on_event(flare_host *h, const flare_host_event *ev, void *user)
{
    node *n = user;
    (void)h;
    if (ev->type == FLARE_HOST_EV_RESERVATION_OK)
        n->rsv_ok++;
    else if (ev->type == FLARE_HOST_EV_HOLEPUNCH && ev->u.holepunch.error == 0)
        n->punch_ok++;
    else if (ev->type == FLARE_HOST_EV_HOLEPUNCH)
        n->punch_failed++;
}

static void make_node(void *wv, int i, flare_sim_lan *lan, const char *ip)
{
    world *w = wv;
    node *n = &w->n[i];
    int priv = i >= NPUB;
    flare_host_settings c;
    flare_test_kad_host_settings(&c);
    c.enable_autorelay = priv;
    flare_test_host_spec sp = {.name = priv ? "priv" : "pub",
                               .lan = lan,
                               .ip = ip,
                               .seed = {(uint8_t)(i + 1), 0x77},
                               .cfg = &c,
                               .on_event = on_event,
                               .user = n};
    flare_test_kad_node_make(w->sim, &n->k, &sp);
    if (!priv && i % 2 == 1)
        assert_int_equal(flare_host_enable_relay_server(n->k.h, NULL), 0);
    flare_kad_settings ks;
    flare_test_kad_settings(&ks, priv ? FLARE_KAD_MODE_AUTO : FLARE_KAD_MODE_SERVER);
    const flare_test_kad_node *boot = &w->n[0].k;
    flare_test_kad_enable(n->k.h, &ks, &boot, i ? 1 : 0);
}

static void test_relays_and_dial_by_id(void **state)
{
    (void)state;
    world *w = calloc(1, sizeof(*w));
    w->sim = flare_sim_new(11, NULL);
    flare_test_kad_add_public(w->sim, 1, 0, NPUB, make_node, w);
    flare_test_kad_add_private(w->sim, 1, NPUB, NALL, make_node, w);
    flare_test_kad_run_s(w->sim, 60);

    /* Every private node reserved on relays it learnt of through the DHT
     * (it was told only of node 0, which is no relay). */
    for (int i = NPUB; i < NALL; i++) {
        flare_peerid relays[4];
        assert_int_equal(flare_host_reachability(w->n[i].k.h, 4), FLARE_REACH_PRIVATE);
        assert_true(w->n[i].rsv_ok >= 1);
        assert_true(flare_host_autorelay_relays(w->n[i].k.h, relays, 4) >= 1);
    }

    /* Dial by peer ID: node A finds every other private node's relayed
     * address through the DHT, dials it, and DCUtR turns the relayed
     * connection into a direct one. */
    int a = NPUB;
    for (int b = NPUB + 1; b < NALL; b++) {
        const flare_peerid *bid = flare_host_peerid(w->n[b].k.h);
        assert_null(flare_host_conn_to(w->n[a].k.h, bid));
        res r = {0};
        assert_int_equal(flare_kad_find_peer(w->n[a].k.h, bid, flare_test_kad_peers_cb, &r), 0);
        for (int i = 0; i < 300 && !r.calls; i++)
            flare_test_kad_run_s(w->sim, 0.1);
        assert_int_equal(r.status, 0);
        assert_true(r.relayed >= 1);
        int punched = w->n[a].punch_ok + w->n[b].punch_ok;
        flare_test_kad_connect_ok(w->sim, w->n[a].k.h, bid);
        for (int i = 0; i < 300 && w->n[a].punch_ok + w->n[b].punch_ok == punched; i++)
            flare_test_kad_run_s(w->sim, 0.1);
        assert_true(w->n[a].punch_ok + w->n[b].punch_ok > punched);
        flare_conn *c = flare_host_conn_to(w->n[a].k.h, bid);
        assert_non_null(c);
        assert_false(flare_conn_is_limited(c));
    }

    for (int i = 0; i < NALL; i++)
        flare_host_del(w->n[i].k.h);
    flare_sim_del(w->sim);
    free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_relays_and_dial_by_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
