/* What the DHT's table maintenance costs in the whole flow (tools/simnet),
 * and that the tables it leaves still serve lookups. A server refreshes
 * every bucket of its table 10 s after it first holds a peer, a client only
 * at the refresh interval (its own lookups fill the buckets they pass
 * through); bucket lookups end once the beta closest peers answered,
 * without the follow-up that asks the rest of the k closest. With the
 * follow-up a server opened ~13 more connections per bucket lookup, and a
 * client's early full refresh ~8 more connections per client here (~40 at
 * 10,000 nodes). Lookups must still work: every private node gets its relay
 * and is found by peer ID, lookups run over the servers' tables find the
 * true closest servers, and a client that turns server refreshes soon. */
#include <stdlib.h>

#include "support/test.h"

#include "flare/kad.h"
#include "services/kad_svc.h"
#include "simnet/simnet.h"
#include "support/kad_world.h"

#define NODES   300
#define PUB_MAX 140 /* ~123 each here; ~152 with the follow-ups */

static void test_refresh_cost(void **state)
{
    (void)state;
    simnet_config c;
    flare_test_world_config(&c, NODES, 3, 10);
    simnet *w = flare_test_world_joined(&c);
    /* Past every server's first full refresh (clients have theirs later). */
    simnet_run_s(w, 15);
    uint64_t priv = 0, conns = 0, lookups = 0, queried = 0, pub = 0, pub_conns = 0;
    for (int i = 0; i < w->nn; i++) {
        simnet_node *n = &w->n[i];
        if (!n->priv) {
            pub++;
            pub_conns += n->conns_opened;
            continue;
        }
        kad_t *k = kad_get(n->h);
        assert_non_null(k);
        assert_false(k->server);
        assert_true(n->rsv_ok >= 1);
        priv++;
        conns += n->conns_opened;
        lookups += k->lookups;
        queried += k->rpcs_sent;
    }
    print_message("%llu private nodes: %.1f connections, %.1f lookups, %.1f requests each\n",
                  (unsigned long long)priv, (double)conns / (double)priv,
                  (double)lookups / (double)priv, (double)queried / (double)priv);
    assert_true(priv > 0);
    /* ~22.5 each here; ~30 with a full refresh 10 s after joining. */
    assert_true(conns <= 26 * priv);
    print_message("%llu public nodes: %.1f connections each\n", (unsigned long long)pub,
                  (double)pub_conns / (double)pub);
    assert_true(pub > 0);
    assert_true(pub_conns <= PUB_MAX * pub);

    assert_int_equal(simnet_dial_pairs(w), 0);
    simnet_summary s;
    simnet_summarize(w, &s);
    print_message("%d of %d pairs found by peer ID, lookup hops p50 %.2f\n", s.found, s.pairs,
                  s.lookup_hops_p50);
    assert_true(s.pairs > 0);
    assert_int_equal(s.found, s.pairs);
    assert_int_equal(s.private_with_relay, s.private_nodes);

    /* The servers' buckets are not filled to k by follow-ups; they fill
     * from the servers that reach them, enough for every lookup. */
    flare_test_tables t;
    flare_test_tables_measure(w, 40, 1, &t);
    print_message("servers' tables %.0f %% full; lookups find %.0f %% of the 20 closest (%.0f %% "
                  "without the follow-up, after %.1f requests)\n",
                  100 * t.fill, 100 * t.found, 100 * t.found_beta, t.queries_beta);
    assert_true(t.fill >= 0.6);
    assert_true(t.found >= 0.99);
    assert_true(t.found_beta >= 0.95);

    /* A client that turns server gets its first full refresh soon. */
    int node = -1;
    for (int i = 0; i < w->nn && node < 0; i++)
        if (w->n[i].priv)
            node = i;
    kad_t *k = kad_get(w->n[node].h);
    assert_false(k->refreshed);
    uint64_t before = k->lookups;
    assert_int_equal(flare_kad_set_mode(w->n[node].h, FLARE_KAD_MODE_SERVER), 0);
    simnet_run_s(w, 12);
    print_message("node %d as a server: %llu lookups in 12 s\n", node,
                  (unsigned long long)(k->lookups - before));
    assert_true(k->refreshed);
    assert_true(k->lookups > before);
    flare_test_servers_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refresh_cost),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
