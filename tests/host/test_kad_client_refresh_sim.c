/* What the DHT's table maintenance costs a private node (a DHT client) in
 * the whole flow (tools/simnet). Each node refreshes every bucket of its
 * table 10 s after it first holds a peer; a client's bucket lookups end
 * once the beta closest peers answered, without the follow-up that asks the
 * rest of the k closest (its table only seeds its own lookups). With that
 * follow-up a client opened ~13 more connections per bucket lookup; at
 * 1,000 nodes those were a third of all connections of the flow. Lookups
 * from clients must still work: every private node gets its relay and is
 * found by peer ID. A client that turns server refreshes the buckets its
 * client refresh left thin, with the follow-ups. */
#include <stdlib.h>

#include "support/test.h"

#include "flare/kad.h"
#include "services/kad_svc.h"
#include "simnet/simnet.h"
#include "support/kad_world.h"

#define NODES 300

static void test_client_refresh_cost(void **state)
{
    (void)state;
    simnet_config c;
    simnet_config_default(&c);
    c.nodes = NODES;
    c.seed = 3;
    c.plaintext = 1;
    c.pairs = 10;
    simnet *w = flare_test_world_joined(&c);
    /* Past every client's first full refresh. */
    simnet_run_s(w, 15);
    uint64_t priv = 0, conns = 0, lookups = 0, queried = 0;
    for (int i = 0; i < w->nn; i++) {
        simnet_node *n = &w->n[i];
        if (!n->priv)
            continue;
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
    /* ~43 each here; ~63 with the follow-ups. */
    assert_true(conns <= 52 * priv);

    assert_int_equal(simnet_dial_pairs(w), 0);
    simnet_summary s;
    simnet_summarize(w, &s);
    print_message("%d of %d pairs found by peer ID, lookup hops p50 %.2f\n", s.found, s.pairs,
                  s.lookup_hops_p50);
    assert_true(s.pairs > 0);
    assert_int_equal(s.found, s.pairs);
    assert_int_equal(s.private_with_relay, s.private_nodes);

    /* A client that turns server refreshes the buckets its client refresh
     * left thin, with the follow-ups: its far buckets fill. */
    int thin = 0;
    for (int i = 0; i < w->nn; i++) {
        kad_t *k = kad_get(w->n[i].h);
        if (!w->n[i].priv || !k->thin)
            continue;
        size_t before = 0, after = 0;
        for (int b = 0; b < 2; b++)
            before += k->rt.b[b] ? k->rt.b[b]->n : 0;
        assert_int_equal(flare_kad_set_mode(w->n[i].h, FLARE_KAD_MODE_SERVER), 0);
        simnet_run_s(w, 10);
        assert_int_equal(k->thin, 0);
        for (int b = 0; b < 2; b++)
            after += k->rt.b[b] ? k->rt.b[b]->n : 0;
        print_message("node %d as a server: buckets 0-1 hold %zu peers, %zu before\n", i, after,
                      before);
        assert_true(after >= 36 && after > before);
        if (++thin == 2)
            break;
    }
    assert_int_equal(thin, 2);
    flare_test_servers_free(w);
}

static size_t near_buckets(kad_t *k)
{
    size_t n = 0;
    for (int b = 0; b < 2; b++)
        n += k->rt.b[b] ? k->rt.b[b]->n : 0;
    return n;
}

/* A client turns server while its refresh lookups are out: those end thin
 * after the switch and are refreshed again, with the follow-ups. */
static void test_turns_server_mid_refresh(void **state)
{
    (void)state;
    simnet_config c;
    simnet_config_default(&c);
    c.nodes = 150;
    c.seed = 3;
    c.plaintext = 1;
    simnet *w = flare_test_world_joined(&c);
    int node = -1;
    for (int t = 0; t < 400 && node < 0; t++) {
        simnet_run_s(w, 0.05);
        for (int i = 0; i < w->nn && node < 0; i++) {
            kad_t *k = kad_get(w->n[i].h);
            for (kad_query *q = k->queries; w->n[i].priv && q && node < 0; q = q->next)
                if (q->kind == Q_REFRESH && q->l.no_followup)
                    node = i;
        }
    }
    assert_true(node >= 0);
    kad_t *k = kad_get(w->n[node].h);
    size_t before = near_buckets(k);
    assert_int_equal(flare_kad_set_mode(w->n[node].h, FLARE_KAD_MODE_SERVER), 0);
    simnet_run_s(w, 15);
    print_message("node %d turned server mid-refresh: buckets 0-1 hold %zu peers, %zu before\n",
                  node, near_buckets(k), before);
    assert_int_equal(k->thin, 0);
    assert_true(near_buckets(k) > before);
    flare_test_servers_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_refresh_cost),
        cmocka_unit_test(test_turns_server_mid_refresh),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
