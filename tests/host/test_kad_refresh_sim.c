/* The routing table refresh and the lookups' end on the DHT servers of
 * tools/simnet (120 public servers join through three bootstrap nodes;
 * each refreshes its table 10 s after it first holds a peer).
 *
 * The refresh skips the buckets a lookup ran through lately, as go does,
 * and those past the farthest of the k peers our own lookup found (that
 * lookup met every peer there): of the ~8 buckets a server here has, only
 * the far ones get a lookup of their own. The far buckets must still fill
 * (test_kad_tables_sim), and lookups, which end once the 3 closest peers
 * answered and then ask the rest of the k closest once (go's resiliency
 * rule), must still find the true k closest peers. */
#include <stdlib.h>

#include "support/kad_world.h"
#include "support/test.h"

#include "services/kad_svc.h"
#include "simnet/simnet.h"

#define NODES 120

typedef struct ask {
    int calls, status;
    size_t n;
    flare_peerid ids[20];
} ask;

static void on_peers(flare_host *h, int status, const flare_kad_peer *p, size_t n, void *user)
{
    ask *a = user;
    (void)h;
    a->calls++;
    a->status = status;
    a->n = n < 20 ? n : 20;
    for (size_t i = 0; i < a->n; i++)
        a->ids[i] = p[i].id;
}

/* How many of the k servers truly closest to key are in a's answer. */
static size_t hits(simnet *w, int self, const uint8_t *key, size_t klen, const ask *a)
{
    flare__kad_rt all;
    flare__kad_rt_cfg cfg = {NODES, 0, 0, 0};
    flare__kad_rt_init(&all, flare_host_peerid(w->n[self].h), &cfg, NULL);
    for (int i = 0; i < w->nn; i++)
        if (i != self)
            flare__kad_rt_seen(&all, flare_host_peerid(w->n[i].h), 0, 1);
    flare__kad_key t;
    flare__kad_key_of(&t, key, klen);
    flare_peerid want[20];
    size_t nw = flare__kad_rt_closest(&all, &t, want, 20), h = 0;
    flare__kad_rt_free(&all);
    for (size_t i = 0; i < a->n; i++)
        for (size_t j = 0; j < nw; j++)
            h += flare_peerid_equal(&a->ids[i], &want[j]);
    return h;
}

static void test_refresh_and_lookups(void **state)
{
    (void)state;
    simnet *w = flare_test_servers_joined(NODES, 3);
    uint64_t lookups = 0, rpcs = 0;
    for (int i = 0; i < w->nn; i++) {
        kad_t *k = kad_get(w->n[i].h);
        assert_non_null(k);
        lookups += k->lookups;
        rpcs += k->rpcs_sent;
    }
    print_message("%d servers: %.2f lookups, %.1f requests each\n", w->nn, (double)lookups / w->nn,
                  (double)rpcs / w->nn);
    /* The full refresh (self lookup and one per bucket) made ~11 each. */
    assert_true(lookups <= 7 * (uint64_t)w->nn);

    /* Lookups from a few servers for random keys find the true closest. */
    for (int t = 0; t < 6; t++) {
        int from = (t * 37 + 5) % w->nn;
        uint8_t key[8] = {'r', 'f', (uint8_t)t};
        ask a = {0};
        assert_int_equal(flare_kad_closest_peers(w->n[from].h, key, sizeof(key), on_peers, &a), 0);
        for (int s = 0; s < 300 && !a.calls; s++)
            simnet_run_s(w, 0.1);
        assert_int_equal(a.calls, 1);
        assert_int_equal(a.status, 0);
        assert_int_equal(a.n, 20);
        size_t h = hits(w, from, key, sizeof(key), &a);
        print_message("lookup %d: %zu of the 20 closest\n", t, h);
        assert_true(h >= 19);
    }
    flare_test_servers_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refresh_and_lookups),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
