/* Churn in the whole flow (tools/simnet: bootstrap nodes, public DHT servers
 * and relays, private nodes behind NATs with AutoRelay): once the network
 * has formed, 10% of the nodes leave (public and private ones, relays
 * among them) and as many new ones join. Every live private node still
 * holds a reservation, every live node is found by peer ID (a private one
 * with a relayed address), private nodes that lost a relay are dialed by
 * peer ID through their new one, and the provider records of live providers are
 * still found, also by the newcomers and from them. */
#include <stdlib.h>

#include "support/test.h"

#include "flare/kad.h"
#include "simnet/simnet.h"
#include "support/kad_world.h"

#define NODES 80

typedef flare_test_kad_res res;
#define peers_cb flare_test_kad_peers_cb
#define done_cb  flare_test_kad_done_cb

static void wait_calls(simnet *w, res *r)
{
    flare_test_kad_wait(w->sim, r);
}

static void key_of(uint8_t key[34], int i)
{
    memset(key, 0, 34);
    key[0] = 0x12;
    key[1] = 0x20;
    memcpy(key + 2, "churn", 5);
    key[10] = (uint8_t)i;
}

/* A live node other than not, picked by step. */
static int live_other(simnet *w, int not, int step)
{
    for (int k = 0; k < w->nn; k++) {
        int j = (not +step + k) % w->nn;
        if (j != not &&w->n[j].h)
            return j;
    }
    return -1;
}

static void test_churn(void **state)
{
    (void)state;
    simnet_config c;
    simnet_config_default(&c);
    c.nodes = NODES;
    c.seed = 5;
    c.join_s = 40;
    simnet *w = flare_test_world_joined(&c);
    for (int i = w->npub; i < w->nn; i++)
        assert_true(w->n[i].rsv_ok >= 1);

    /* Four providers: two public, two private (neither will leave). */
    const int prov[4] = {4, 10, w->npub + 2, w->npub + 8};
    for (int p = 0; p < 4; p++) {
        uint8_t key[34];
        key_of(key, p);
        res r = {0};
        assert_int_equal(flare_kad_provide(w->n[prov[p]].h, key, sizeof(key), done_cb, &r), 0);
        wait_calls(w, &r);
        assert_int_equal(r.status, 0);
    }

    /* 10% leave: 5, 15, ..., 75 (two public relays and six private nodes);
     * then as many join: two public (one a relay), six private. Noted first:
     * the private nodes that lose a relay of theirs. */
    int moved[NODES] = {0}, nmoved = 0;
    for (int i = w->npub; i < NODES; i++) {
        flare_peerid relays[4];
        size_t nr = flare_host_autorelay_relays(w->n[i].h, relays, 4);
        for (size_t k = 0; k < nr && i % 10 != 5; k++)
            for (int g = 5; g < w->npub; g += 10)
                moved[i] |= flare_peerid_equal(&relays[k], flare_host_peerid(w->n[g].h));
        nmoved += moved[i];
    }
    assert_true(nmoved >= 2);
    int gone = 0, public_gone = 0;
    for (int i = 5; i < NODES; i += 10) {
        public_gone += !w->n[i].priv;
        simnet_leave(w, i);
        gone++;
    }
    assert_int_equal(gone, NODES / 10);
    assert_int_equal(public_gone, 2);
    simnet_run_s(w, 5);
    int first_new = w->nn;
    for (int k = 0; k < gone; k++)
        assert_true(simnet_add_node(w, k >= public_gone) >= 0);
    assert_int_equal(w->nn, NODES + gone);
    simnet_run_s(w, 60);

    /* Every live private node (newcomers included) holds a reservation. */
    for (int i = 0; i < w->nn; i++) {
        flare_peerid relays[4];
        if (w->n[i].h && w->n[i].priv)
            assert_true(flare_host_autorelay_relays(w->n[i].h, relays, 4) >= 1);
    }

    /* Every live node is found by peer ID from another one (old and new
     * askers alike); private ones with a relayed address. */
    int asked = 0;
    for (int i = 0; i < w->nn; i++) {
        if (!w->n[i].h)
            continue;
        int from = live_other(w, i, i < first_new ? 37 : 3);
        const flare_peerid *id = flare_host_peerid(w->n[i].h);
        flare_conn *cn;
        while ((cn = flare_host_conn_to(w->n[from].h, id)))
            flare_conn_close(cn);
        res r = {0};
        assert_int_equal(flare_kad_find_peer(w->n[from].h, id, peers_cb, &r), 0);
        wait_calls(w, &r);
        assert_int_equal(r.status, 0);
        assert_int_equal(r.n, 1);
        assert_true(flare_peerid_equal(&r.peers[0].id, id));
        if (w->n[i].priv)
            assert_true(r.relayed >= 1);
        asked++;
    }
    assert_int_equal(asked, NODES);

    /* A private node whose relay left is reached through its new one. */
    int dialed = 0;
    for (int i = w->npub; i < NODES && dialed < 4; i++) {
        if (!moved[i])
            continue;
        int from = live_other(w, i, 11);
        const flare_peerid *id = flare_host_peerid(w->n[i].h);
        flare_conn *cn;
        while ((cn = flare_host_conn_to(w->n[from].h, id)))
            flare_conn_close(cn);
        simnet_run_s(w, 1);
        res r = {0};
        assert_int_equal(flare_kad_find_peer(w->n[from].h, id, peers_cb, &r), 0);
        wait_calls(w, &r);
        assert_int_equal(r.status, 0);
        flare_test_dial d = {0};
        assert_int_equal(flare_host_connect(w->n[from].h, id, NULL, flare_test_dial_cb, &d), 0);
        for (int t = 0; t < 300 && !d.calls; t++)
            simnet_run_s(w, 0.1);
        assert_int_equal(d.status, 0);
        dialed++;
    }
    assert_true(dialed >= 2);

    /* The records of the live providers are found, from old nodes and from
     * the newcomers. */
    for (int p = 0; p < 4; p++) {
        const int askers[3] = {live_other(w, prov[p], 21), first_new + p, first_new + 4 + p};
        uint8_t key[34];
        key_of(key, p);
        for (int a = 0; a < 3; a++) {
            res r = {0};
            assert_non_null(w->n[askers[a]].h);
            assert_int_equal(
                flare_kad_find_providers(w->n[askers[a]].h, key, sizeof(key), 5, peers_cb, &r), 0);
            wait_calls(w, &r);
            assert_int_equal(r.status, 0);
            assert_int_equal(r.n, 1);
            assert_true(flare_peerid_equal(&r.peers[0].id, flare_host_peerid(w->n[prov[p]].h)));
        }
    }
    flare_test_servers_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_churn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
