/* AutoRelay's relays without the DHT's random walks (tools/simnet, the whole
 * flow). A private node's table refresh looks up random keys all over the
 * key space, and its self lookup the keys near its own: the hop servers
 * that answered those lookups (not the seeds from its table, such as its
 * bootstrap nodes) are the same kind of uniform sample of the network's
 * relays as a walk's, and connected already. With enough of them the node
 * runs no walk (each walk cost ~19 dials at 1,000 nodes); it still gets its
 * reservations, spread over the relays, and is found by peer ID. */
#include <stdlib.h>

#include "support/test.h"

#include "flare/host.h"
#include "flare/kad.h"
#include "flare/relay_server.h"
#include "host/host_int.h"
#include "services/kad_svc.h"
#include "simnet/simnet.h"
#include "support/kad_world.h"

#define NODES 300

static void test_refresh_feeds_autorelay(void **state)
{
    (void)state;
    simnet_config c;
    flare_test_world_config(&c, NODES, 3, 10);
    simnet *w = flare_test_world_joined(&c);
    simnet_run_s(w, 20);
    uint64_t priv = 0, conns = 0, lookups = 0, rpcs = 0, walks = 0, skipped = 0;
    for (int i = 0; i < w->nn; i++) {
        simnet_node *n = &w->n[i];
        if (!n->priv)
            continue;
        kad_t *k = kad_get(n->h);
        flare_peerid relays[4];
        assert_true(flare_host_autorelay_relays(n->h, relays, 4) >= 1);
        priv++;
        conns += n->conns_opened;
        lookups += k->lookups;
        rpcs += k->rpcs_sent;
        walks += k->walks;
        skipped += k->walks_skipped;
    }
    print_message("%llu private nodes: %.1f connections, %.2f lookups, %.1f requests each; "
                  "%llu walks, %llu skipped\n",
                  (unsigned long long)priv, (double)conns / (double)priv,
                  (double)lookups / (double)priv, (double)rpcs / (double)priv,
                  (unsigned long long)walks, (unsigned long long)skipped);
    assert_true(priv > 0);
    /* ~30 each here, ~42 with a walk each; every node met 4+ relays. */
    assert_true(conns <= 36 * priv);
    assert_int_equal(walks, 0);
    assert_int_equal(skipped, priv);

    simnet_summary s;
    assert_int_equal(simnet_dial_pairs(w), 0);
    simnet_summarize(w, &s);
    print_message("%d of %d found; reservations max %zu mean %.2f on %zu relays\n", s.found,
                  s.pairs, (size_t)s.relay_reservations_max, s.relay_reservations_mean, s.relays);
    assert_int_equal(s.found, s.pairs);
    assert_int_equal(s.private_with_relay, s.private_nodes);
    /* Spread over the relays, as with the walks (~2x the mean at most). */
    assert_true((double)s.relay_reservations_max <= 2.5 * s.relay_reservations_mean);
    flare_test_servers_free(w);
}

/* Few relays in the whole network (6 of 120 nodes): some nodes' refresh
 * meets too few, so they still walk (the fallback); every private node
 * decided (walked or not) and reserves. */
static void test_few_relays_walk(void **state)
{
    (void)state;
    simnet_config c;
    flare_test_world_config(&c, 120, 5, 4);
    c.public_pct = 10;
    simnet *w = flare_test_world_joined(&c);
    simnet_run_s(w, 20);
    uint64_t priv = 0, walks = 0, skipped = 0;
    for (int i = 0; i < w->nn; i++) {
        simnet_node *n = &w->n[i];
        if (!n->priv)
            continue;
        kad_t *k = kad_get(n->h);
        flare_peerid relays[4];
        assert_true(flare_host_autorelay_relays(n->h, relays, 4) >= 1);
        assert_true(k->walks + k->walks_skipped >= 1);
        priv++;
        walks += k->walks;
        skipped += k->walks_skipped;
    }
    print_message("%llu private nodes: %llu walks, %llu skipped\n", (unsigned long long)priv,
                  (unsigned long long)walks, (unsigned long long)skipped);
    assert_true(priv > 0);
    assert_true(walks >= 1 && skipped >= 1);
    simnet_summary s;
    simnet_summarize(w, &s);
    assert_int_equal(s.private_with_relay, s.private_nodes);
    flare_test_servers_free(w);
}

static int refreshing(kad_t *k)
{
    for (kad_query *q = k->queries; q; q = q->next)
        if (q->kind == Q_REFRESH)
            return 1;
    return 0;
}

/* AutoRelay asks (a relay backed off) while refresh lookups are still out
 * and it has too few sampled relays: the walk waits for the relays those
 * lookups meet and is decided once they ended. A private node that joins
 * now: its self lookup is out (clients have no full refresh early). */
static void test_asked_mid_refresh(void **state)
{
    (void)state;
    simnet_config c;
    flare_test_world_config(&c, 150, 3, 20);
    simnet *w = flare_test_world_joined(&c);
    assert_true(simnet_add_node(w, 1) >= 0);
    int node = -1;
    for (int t = 0; t < 400 && node < 0; t++) {
        simnet_run_s(w, 0.05);
        for (int i = 0; i < w->nn && node < 0; i++) {
            kad_t *k = kad_get(w->n[i].h);
            if (w->n[i].priv && k->rt.size && refreshing(k) && !k->walks &&
                flare__autorelay_sampled(w->n[i].h) < 4)
                node = i;
        }
    }
    assert_true(node >= 0);
    flare_host *h = w->n[node].h;
    kad_t *k = kad_get(h);
    uint64_t decided = k->walks + k->walks_skipped;
    flare_host_event ev = {.type = FLARE_HOST_EV_AUTORELAY, .u.autorelay = {.reason = "backoff"}};
    flare__host_emit(h, &ev);
    assert_int_equal(k->walk_deferred, 1);
    assert_int_equal(k->walks, 0);
    for (int t = 0; t < 400 && refreshing(k); t++)
        simnet_run_s(w, 0.05);
    assert_false(refreshing(k));
    print_message("node %d asked mid-refresh: %llu walks, %llu skipped, %zu relays sampled\n", node,
                  (unsigned long long)k->walks, (unsigned long long)k->walks_skipped,
                  flare__autorelay_sampled(h));
    assert_int_equal(k->walk_deferred, 0);
    assert_int_equal(k->walks + k->walks_skipped, decided + 1);
    simnet_run_s(w, 20);
    flare_peerid relays[4];
    assert_true(flare_host_autorelay_relays(h, relays, 4) >= 1);
    flare_test_servers_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refresh_feeds_autorelay),
        cmocka_unit_test(test_few_relays_walk),
        cmocka_unit_test(test_asked_mid_refresh),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
