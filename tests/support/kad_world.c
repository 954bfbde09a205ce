#include "support/kad_world.h"

#include <stdlib.h>

#include "services/kad_svc.h"
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

void flare_test_world_config(simnet_config *c, int nodes, uint64_t seed, int pairs)
{
    simnet_config_default(c);
    c->nodes = nodes;
    c->seed = seed;
    c->plaintext = 1;
    c->pairs = pairs;
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

/* ---- table quality ------------------------------------------------------------------ */

typedef struct tq {
    simnet *w;
    int *srv, ns;         /* node indices of the servers */
    flare__kad_key *keys; /* theirs */
    flare__kad_key x;     /* the key looked up */
} tq;

static int tq_find(const tq *t, const flare_peerid *id)
{
    for (int i = 0; i < t->ns; i++)
        if (flare_peerid_equal(flare_host_peerid(t->w->n[t->srv[i]].h), id))
            return i;
    return -1;
}

static int tq_closer(const tq *t, int a, int b)
{
    return flare__kad_dist_cmp(&t->x, &t->keys[a], &t->keys[b]) < 0;
}

static double tq_fill(const tq *t)
{
    long want = 0, have = 0;
    for (int a = 0; a < t->ns && a < 200; a++) {
        int real[257] = {0};
        for (int b = 0; b < t->ns; b++)
            if (b != a)
                real[flare__kad_cpl(&t->keys[a], &t->keys[b])]++;
        const flare__kad_rt *rt = &kad_get(t->w->n[t->srv[a]].h)->rt;
        for (int c = 0; c < FLARE__KAD_BUCKETS; c++) {
            want += real[c] < (int)rt->cfg.k ? real[c] : (int)rt->cfg.k;
            have += rt->b[c] ? (long)rt->b[c]->n : 0;
        }
    }
    return want ? (double)have / (double)want : 0;
}

#define TQ_CAND 256

/* Candidates: server indices closest first, deduplicated, asked flags. */
static void tq_add(const tq *t, int *c, char *asked, int *nc, int x)
{
    int i = *nc;
    for (int j = 0; j < *nc; j++)
        if (c[j] == x)
            return;
    if (i == TQ_CAND) {
        if (!tq_closer(t, x, c[i - 1]))
            return;
        i--;
    } else {
        (*nc)++;
    }
    while (i > 0 && tq_closer(t, x, c[i - 1])) {
        c[i] = c[i - 1];
        asked[i] = asked[i - 1];
        i--;
    }
    c[i] = x;
    asked[i] = 0;
}

static void tq_answer(const tq *t, const flare__kad_rt *rt, int *c, char *asked, int *nc)
{
    flare_peerid out[20];
    size_t n = flare__kad_rt_closest(rt, &t->x, out, 20);
    for (size_t i = 0; i < n; i++) {
        int s = tq_find(t, &out[i]);
        if (s >= 0)
            tq_add(t, c, asked, nc, s);
    }
}

static int tq_hits(const int *c, int nc, const int *truth)
{
    int hit = 0;
    for (int i = 0; i < nc && i < 20; i++)
        for (int j = 0; j < 20; j++)
            hit += c[i] == truth[j];
    return hit;
}

/* One lookup of t->x from the client's table; adds its results to sums. */
static void tq_lookup(const tq *t, const flare__kad_rt *start, double sums[3])
{
    int truth[20], nt = 0;
    for (int i = 0; i < t->ns; i++) { /* the true 20 closest, by insertion */
        int j = nt < 20 ? nt++ : 20;
        if (j == 20 && !tq_closer(t, i, truth[19]))
            continue;
        if (j == 20)
            j = 19;
        while (j > 0 && tq_closer(t, i, truth[j - 1])) {
            truth[j] = truth[j - 1];
            j--;
        }
        truth[j] = i;
    }
    int c[TQ_CAND], nc = 0, queries = 0, beta_done = 0;
    char asked[TQ_CAND];
    tq_answer(t, start, c, asked, &nc);
    for (;;) {
        if (!beta_done && nc >= 3 && asked[0] && asked[1] && asked[2]) {
            beta_done = 1;
            sums[1] += tq_hits(c, nc, truth) / 20.0;
            sums[2] += queries;
        }
        int pick[3], np = 0;
        for (int i = 0; i < nc && i < 20 && np < 3; i++)
            if (!asked[i]) {
                asked[i] = 1;
                pick[np++] = c[i];
            }
        if (!np)
            break;
        for (int p = 0; p < np; p++, queries++)
            tq_answer(t, &kad_get(t->w->n[t->srv[pick[p]]].h)->rt, c, asked, &nc);
    }
    sums[0] += tq_hits(c, nc, truth) / 20.0;
}

void flare_test_tables_measure(simnet *w, int nkeys, uint64_t seed, flare_test_tables *out)
{
    tq t = {.w = w};
    t.srv = malloc(sizeof(int) * (size_t)w->nn);
    t.keys = malloc(sizeof(flare__kad_key) * (size_t)w->nn);
    assert_non_null(t.srv);
    assert_non_null(t.keys);
    const flare__kad_rt *client = NULL;
    for (int i = 0; i < w->nn; i++) {
        kad_t *k = w->n[i].h ? kad_get(w->n[i].h) : NULL;
        if (k && k->server) {
            t.keys[t.ns] = k->rt.self_key;
            t.srv[t.ns++] = i;
        } else if (k && !client && k->rt.size) {
            client = &k->rt;
        }
    }
    assert_true(t.ns >= 20);
    if (!client)
        client = &kad_get(w->n[t.srv[0]].h)->rt;
    double sums[3] = {0};
    uint64_t r = seed * 0x9E3779B97F4A7C15ull + 1;
    for (int n = 0; n < nkeys; n++) {
        for (int j = 0; j < 32; j++) {
            r = r * 6364136223846793005ull + 1442695040888963407ull;
            t.x.b[j] = (uint8_t)(r >> 56);
        }
        tq_lookup(&t, client, sums);
    }
    out->fill = tq_fill(&t);
    out->found = sums[0] / nkeys;
    out->found_beta = sums[1] / nkeys;
    out->queries_beta = sums[2] / nkeys;
    free(t.srv);
    free(t.keys);
}
