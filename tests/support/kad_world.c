#include "support/kad_world.h"

#include <stdlib.h>

#include "simnet/simnet.h"

#include "support/test.h"

void flare_test_kad_host_settings(flare_host_settings *c)
{
    flare_test_settings_default(c);
    c->autonat_boot_delay = 2 * FLARE_NS_PER_S;
}

void flare_test_kad_node_make(flare_sim *sim, flare_test_kad_node *n, flare_test_host_spec *sp)
{
    sp->link = (flare_sim_link){.delay = 10 * FLARE_NS_PER_MS};
    sp->listen_port = 4001;
    assert_int_equal(flare_test_host_make(sim, sp, &n->sh, &n->h), 0);
    snprintf(n->ip, sizeof(n->ip), "%s", sp->ip);
}

void flare_test_kad_addr(flare_multiaddr *ma, const flare_test_kad_node *n)
{
    assert_int_equal(flare_test_tcp_addr(ma, n->ip, 4001, flare_host_peerid(n->h)), 0);
}

void flare_test_kad_settings(flare_kad_settings *ks, flare_kad_mode mode)
{
    flare_kad_settings_default(ks);
    ks->mode = mode;
    ks->request_timeout = 5 * FLARE_NS_PER_S;
}

void flare_test_kad_enable(flare_host *h, flare_kad_settings *ks,
                           const flare_test_kad_node *const *boot, size_t nboot)
{
    flare_multiaddr addrs[8];
    assert_true(nboot <= 8);
    for (size_t b = 0; b < nboot; b++)
        flare_test_kad_addr(&addrs[b], boot[b]);
    ks->bootstrap = addrs;
    ks->nbootstrap = nboot;
    assert_int_equal(flare_kad_enable(h, ks), 0);
    /* The DHT keeps a copy; ks must not point at this frame. */
    ks->bootstrap = NULL;
    ks->nbootstrap = 0;
}

void flare_test_kad_add_public(flare_sim *sim, int net, int from, int to,
                               flare_test_kad_make_fn make, void *w)
{
    for (int i = from; i < to; i++) {
        char ip[32];
        snprintf(ip, sizeof(ip), "11.%d.%d.1", net, i + 1);
        make(w, i, flare_sim_internet(sim), ip);
        flare_test_kad_run_s(sim, 0.2);
    }
}

void flare_test_kad_add_private(flare_sim *sim, int net, int from, int to,
                                flare_test_kad_make_fn make, void *w)
{
    for (int i = from; i < to; i++) {
        char name[16], out[32];
        snprintf(name, sizeof(name), "lan%d", i);
        snprintf(out, sizeof(out), "12.%d.%d.1", net, i);
        flare_sim_lan *lan = flare_sim_lan_new(sim, name);
        assert_non_null(
            flare_sim_nat_new(sim, name, flare_sim_internet(sim), out, lan, "10.0.0.1", NULL));
        make(w, i, lan, "10.0.0.2");
    }
}

void flare_test_kad_run_s(flare_sim *sim, double s)
{
    flare_sim_run_for(sim, (flare_tstamp)(s * 1e9));
}

void flare_test_kad_peers_cb(flare_host *h, int status, const flare_kad_peer *p, size_t n,
                             void *user)
{
    flare_test_kad_res *r = user;
    (void)h;
    r->calls++;
    r->status = status;
    r->n = n < FLARE_TEST_KAD_PEERS ? n : FLARE_TEST_KAD_PEERS;
    memcpy(r->peers, p, r->n * sizeof(*p));
    for (size_t i = 0; r->n && i < p[0].naddrs; i++)
        r->relayed += flare_multiaddr_is_relayed(&p[0].addrs[i]);
}

void flare_test_kad_done_cb(flare_host *h, int status, size_t n, void *user)
{
    flare_test_kad_res *r = user;
    (void)h;
    r->calls++;
    r->status = status;
    r->n = n;
}

void flare_test_kad_value_cb(flare_host *h, int status, const uint8_t *v, size_t len, void *user)
{
    flare_test_kad_res *r = user;
    (void)h;
    r->calls++;
    r->status = status;
    r->vlen = len < sizeof(r->value) ? len : sizeof(r->value);
    if (v)
        memcpy(r->value, v, r->vlen);
}

void flare_test_kad_wait(flare_sim *sim, const flare_test_kad_res *r)
{
    for (int i = 0; i < 600 && !r->calls; i++)
        flare_test_kad_run_s(sim, 0.1);
    assert_int_equal(r->calls, 1);
}

void flare_test_kad_connect_ok(flare_sim *sim, flare_host *h, const flare_peerid *id)
{
    flare_test_dial d = {0};
    assert_int_equal(flare_host_connect(h, id, NULL, flare_test_dial_cb, &d), 0);
    for (int i = 0; i < 300 && !d.calls; i++)
        flare_test_kad_run_s(sim, 0.1);
    assert_int_equal(d.status, 0);
}

simnet *flare_test_world_joined(const simnet_config *c)
{
    simnet *w = calloc(1, sizeof(*w));
    assert_non_null(w);
    assert_int_equal(simnet_init(w, c, NULL), 0);
    assert_int_equal(simnet_join(w), 0);
    return w;
}

simnet *flare_test_servers_joined(int nodes, uint64_t seed)
{
    simnet_config c;
    simnet_config_default(&c);
    c.nodes = nodes;
    c.public_pct = 100;
    c.seed = seed;
    c.join_s = 20; /* joins over 10 s, then 10 s more */
    simnet *w = flare_test_world_joined(&c);
    simnet_run_s(w, 10); /* every server had its first refresh */
    return w;
}

void flare_test_servers_free(simnet *w)
{
    simnet_free(w);
    free(w);
}
