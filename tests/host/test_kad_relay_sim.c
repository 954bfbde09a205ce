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

#define MS    FLARE_NS_PER_MS
#define S     FLARE_NS_PER_S
#define NPUB  16
#define NPRIV 4
#define NALL  (NPUB + NPRIV)

typedef struct node {
    flare_sim_host *sh;
    flare_host *h;
    char ip[32];
    int rsv_ok, punch_ok, punch_failed;
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
    else if (ev->type == FLARE_HOST_EV_HOLEPUNCH && ev->u.holepunch.error == 0)
        n->punch_ok++;
    else if (ev->type == FLARE_HOST_EV_HOLEPUNCH)
        n->punch_failed++;
}

static void run_s(world *w, double s)
{
    flare_sim_run_for(w->sim, (flare_tstamp)(s * 1e9));
}

static void make_node(world *w, int i, flare_sim_lan *lan, const char *ip)
{
    node *n = &w->n[i];
    int priv = i >= NPUB;
    flare_host_settings c;
    flare_test_settings_default(&c);
    c.autonat_boot_delay = 2 * S;
    c.enable_autorelay = priv;
    flare_test_host_spec sp = {.name = priv ? "priv" : "pub",
                               .lan = lan,
                               .ip = ip,
                               .link = {.delay = 10 * MS},
                               .seed = {(uint8_t)(i + 1), 0x77},
                               .cfg = &c,
                               .on_event = on_event,
                               .user = n,
                               .listen_port = 4001};
    assert_int_equal(flare_test_host_make(w->sim, &sp, &n->sh, &n->h), 0);
    snprintf(n->ip, sizeof(n->ip), "%s", ip);
    if (!priv && i % 2 == 1)
        assert_int_equal(flare_host_enable_relay_server(n->h, NULL), 0);
    flare_kad_settings ks;
    flare_kad_settings_default(&ks);
    ks.mode = priv ? FLARE_KAD_MODE_AUTO : FLARE_KAD_MODE_SERVER;
    ks.request_timeout = 5 * S;
    flare_multiaddr boot[1];
    if (i) {
        assert_int_equal(
            flare_test_tcp_addr(&boot[0], w->n[0].ip, 4001, flare_host_peerid(w->n[0].h)), 0);
        ks.bootstrap = boot;
        ks.nbootstrap = 1;
    }
    assert_int_equal(flare_kad_enable(n->h, &ks), 0);
}

typedef struct res {
    int calls, status;
    flare_kad_peer peer;
} res;

static void peers_cb(flare_host *h, int status, const flare_kad_peer *p, size_t n, void *user)
{
    res *r = user;
    (void)h;
    r->calls++;
    r->status = status;
    if (n)
        r->peer = p[0];
}

static void test_relays_and_dial_by_id(void **state)
{
    (void)state;
    world *w = calloc(1, sizeof(*w));
    w->sim = flare_sim_new(11, NULL);
    flare_sim_lan *inet = flare_sim_internet(w->sim);
    for (int i = 0; i < NPUB; i++) {
        char ip[32];
        snprintf(ip, sizeof(ip), "11.1.%d.1", i + 1);
        make_node(w, i, inet, ip);
        run_s(w, 0.2);
    }
    for (int i = NPUB; i < NALL; i++) {
        char name[16], out[32];
        snprintf(name, sizeof(name), "lan%d", i);
        snprintf(out, sizeof(out), "12.1.%d.1", i);
        flare_sim_lan *lan = flare_sim_lan_new(w->sim, name);
        assert_non_null(flare_sim_nat_new(w->sim, name, inet, out, lan, "10.0.0.1", NULL));
        make_node(w, i, lan, "10.0.0.2");
    }
    run_s(w, 60);

    /* Every private node reserved on relays it learnt of through the DHT
     * (it was told only of node 0, which is no relay). */
    for (int i = NPUB; i < NALL; i++) {
        flare_peerid relays[4];
        assert_int_equal(flare_host_reachability(w->n[i].h, 4), FLARE_REACH_PRIVATE);
        assert_true(w->n[i].rsv_ok >= 1);
        assert_true(flare_host_autorelay_relays(w->n[i].h, relays, 4) >= 1);
    }

    /* Dial by peer ID: node A finds every other private node's relayed
     * address through the DHT, dials it, and DCUtR turns the relayed
     * connection into a direct one. */
    int a = NPUB;
    for (int b = NPUB + 1; b < NALL; b++) {
        const flare_peerid *bid = flare_host_peerid(w->n[b].h);
        assert_null(flare_host_conn_to(w->n[a].h, bid));
        res r = {0};
        assert_int_equal(flare_kad_find_peer(w->n[a].h, bid, peers_cb, &r), 0);
        for (int i = 0; i < 300 && !r.calls; i++)
            run_s(w, 0.1);
        assert_int_equal(r.status, 0);
        int relayed = 0;
        for (size_t i = 0; i < r.peer.naddrs; i++)
            relayed += flare_multiaddr_is_relayed(&r.peer.addrs[i]);
        assert_true(relayed >= 1);
        int punched = w->n[a].punch_ok + w->n[b].punch_ok;
        flare_test_dial d = {0};
        assert_int_equal(flare_host_connect(w->n[a].h, bid, NULL, flare_test_dial_cb, &d), 0);
        for (int i = 0; i < 300 && !d.calls; i++)
            run_s(w, 0.1);
        assert_int_equal(d.status, 0);
        for (int i = 0; i < 300 && w->n[a].punch_ok + w->n[b].punch_ok == punched; i++)
            run_s(w, 0.1);
        assert_true(w->n[a].punch_ok + w->n[b].punch_ok > punched);
        flare_conn *c = flare_host_conn_to(w->n[a].h, bid);
        assert_non_null(c);
        assert_false(flare_conn_is_limited(c));
    }

    for (int i = 0; i < NALL; i++)
        flare_host_del(w->n[i].h);
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
