/* DHT upkeep on the simulator: auto mode follows AutoNAT both ways (a node
 * found public becomes a server, announces the protocol and enters the
 * servers' tables; found private again it drops to client and stops
 * announcing), the periodic refresh evicts departed peers and fills the
 * table with newcomers, and provider records live on by republishing and
 * expire once their provider is gone. */
#include <stdlib.h>

#include "support/test.h"

#include "flare/host.h"
#include "flare/kad.h"
#include "flare/sim.h"
#include "support/helpers.h"
#include "support/kad_world.h"

#define MS   FLARE_NS_PER_MS
#define S    FLARE_NS_PER_S
#define NMAX 40

typedef struct node {
    flare_test_kad_node k;
    int mode_events, first_server, last_server;
} node;

typedef struct world {
    flare_sim *sim;
    node n[NMAX];
    flare_sim_nat *fw;
    flare_kad_settings *ks; /* what add_servers makes servers with */
    uint8_t gen;
} world;

static void on_event(flare_host *h, const flare_host_event *ev, void *user)
{
    node *n = user;
    (void)h;
    if (ev->type != FLARE_HOST_EV_DHT || strcmp(ev->u.dht.reason, "mode") != 0)
        return;
    if (!n->mode_events++)
        n->first_server = ev->u.dht.server;
    n->last_server = ev->u.dht.server;
}

static void run_s(world *w, double s)
{
    flare_test_kad_run_s(w->sim, s);
}

/* Node i at ip on lan with ks (bootstrapping from nodes 0 and 1). */
static void make_node(world *w, int i, flare_sim_lan *lan, const char *ip, flare_kad_settings *ks,
                      uint8_t gen)
{
    node *n = &w->n[i];
    memset(n, 0, sizeof(*n));
    flare_host_settings c;
    flare_test_kad_host_settings(&c);
    c.doc_addrs_public = 1;
    c.autonat_retry_interval = 4 * S;
    c.autonat_refresh_interval = 4 * S;
    c.enable_holepunch = 0;
    flare_test_host_spec sp = {.name = "n",
                               .lan = lan,
                               .ip = ip,
                               .seed = {(uint8_t)(i + 1), 0x4d, gen},
                               .cfg = &c,
                               .on_event = on_event,
                               .user = n};
    flare_test_kad_node_make(w->sim, &n->k, &sp);
    const flare_test_kad_node *boot[2] = {&w->n[0].k, &w->n[1].k};
    flare_test_kad_enable(n->k.h, ks, boot, i < 2 ? (size_t)i : 2);
}

static void server_settings(flare_kad_settings *ks)
{
    flare_kad_settings_default(ks);
    ks->mode = FLARE_KAD_MODE_SERVER;
    ks->request_timeout = 3 * S;
}

static void make_server(void *wv, int i, flare_sim_lan *lan, const char *ip)
{
    world *w = wv;
    make_node(w, i, lan, ip, w->ks, w->gen);
}

static void add_servers(world *w, int from, int to, int net, flare_kad_settings *ks, uint8_t gen)
{
    w->ks = ks;
    w->gen = gen;
    flare_test_kad_add_public(w->sim, net, from, to, make_server, w);
}

static void world_free(world *w)
{
    for (int i = 0; i < NMAX; i++)
        flare_host_del(w->n[i].k.h);
    flare_sim_del(w->sim);
}

static int in_table(flare_host *h, const flare_peerid *p)
{
    flare_peerid t[256];
    size_t n = flare_kad_routing_table(h, t, 256);
    for (size_t j = 0; j < n; j++)
        if (flare_peerid_equal(&t[j], p))
            return 1;
    return 0;
}

static int announces_kad(flare_host *h)
{
    const char *protos[64];
    size_t np = flare_host_protocols(h, protos, 64);
    for (size_t j = 0; j < np; j++)
        if (strcmp(protos[j], FLARE_KAD_PROTOCOL) == 0)
            return 1;
    return 0;
}

/* ---- auto mode -------------------------------------------------------------------------- */

#define NSRV 8

static void test_auto_mode_follows_reachability(void **state)
{
    (void)state;
    world *w = calloc(1, sizeof(*w));
    w->sim = flare_sim_new(11, NULL);
    flare_kad_settings ks;
    server_settings(&ks);
    add_servers(w, 0, NSRV, 0, &ks, 0);
    run_s(w, 10);

    /* A firewall that lets anyone in to a used port: the node behind it is
     * reachable, once AutoNAT has checked. */
    flare_sim_nat_config nc;
    flare_sim_nat_config_default(&nc);
    nc.firewall_only = 1;
    nc.filtering = FLARE_SIM_EI;
    flare_sim_lan *lan = flare_sim_lan_new(w->sim, "lan");
    w->fw = flare_sim_nat_new(w->sim, "fw", flare_sim_internet(w->sim), "203.0.113.1", lan,
                              "203.0.113.65", &nc);
    assert_non_null(w->fw);
    flare_kad_settings_default(&ks); /* auto mode, the default */
    assert_int_equal(ks.mode, FLARE_KAD_MODE_AUTO);
    ks.request_timeout = 3 * S;
    int a = NSRV;
    make_node(w, a, lan, "203.0.113.66", &ks, 0);
    node *x = &w->n[a];
    const flare_peerid *xid = flare_host_peerid(x->k.h);

    /* A client first: reachability is not known yet. */
    run_s(w, 1);
    assert_int_equal(x->mode_events, 1);
    assert_false(x->first_server);
    assert_false(flare_kad_is_server(x->k.h));
    assert_false(announces_kad(x->k.h));

    /* AutoNAT finds it public: a server, announced, in servers' tables. */
    for (int t = 0; t < 300 && !flare_kad_is_server(x->k.h); t++)
        run_s(w, 0.1);
    assert_int_equal(flare_host_reachability(x->k.h, 4), FLARE_REACH_PUBLIC);
    assert_true(flare_kad_is_server(x->k.h));
    assert_int_equal(x->mode_events, 2);
    assert_true(x->last_server);
    assert_true(announces_kad(x->k.h));
    run_s(w, 10);
    int holders = 0;
    for (int i = 0; i < NSRV; i++)
        holders += in_table(w->n[i].k.h, xid);
    assert_true(holders >= 2);

    /* The firewall closes (only replies get in): private again, a client,
     * no longer announcing. */
    nc.filtering = FLARE_SIM_APD;
    flare_sim_nat_set_config(w->fw, &nc);
    for (int t = 0; t < 600 && flare_kad_is_server(x->k.h); t++)
        run_s(w, 0.1);
    assert_int_equal(flare_host_reachability(x->k.h, 4), FLARE_REACH_PRIVATE);
    assert_false(flare_kad_is_server(x->k.h));
    assert_int_equal(x->mode_events, 3);
    assert_false(x->last_server);
    assert_false(announces_kad(x->k.h));

    /* An explicit mode is not overridden by reachability. */
    assert_int_equal(flare_kad_set_mode(x->k.h, FLARE_KAD_MODE_SERVER), 0);
    assert_true(flare_kad_is_server(x->k.h));
    run_s(w, 10);
    assert_true(flare_kad_is_server(x->k.h));
    assert_true(announces_kad(x->k.h));
    world_free(w);
    free(w);
}

/* ---- refresh and republish -------------------------------------------------------------- */

#define NOLD 16
#define NNEW 12

static size_t count_in(flare_host *h, const flare_peerid *ids, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += in_table(h, &ids[i]);
    return c;
}

typedef flare_test_kad_res res;
#define peers_cb flare_test_kad_peers_cb
#define done_cb  flare_test_kad_done_cb

static void wait_calls(world *w, res *r)
{
    flare_test_kad_wait(w->sim, r);
}

static res find_providers(world *w, int from, const uint8_t *key, size_t klen)
{
    res r = {0};
    assert_int_equal(flare_kad_find_providers(w->n[from].k.h, key, klen, 5, peers_cb, &r), 0);
    wait_calls(w, &r);
    return r;
}

static void test_refresh_and_republish(void **state)
{
    (void)state;
    world *w = calloc(1, sizeof(*w));
    w->sim = flare_sim_new(12, NULL);
    /* Every node refreshes every 20 s and holds provider records for 40 s;
     * its own are republished every 15 s. Node 2 alone keeps the default
     * refresh (10 min): the control. */
    flare_kad_settings ks;
    server_settings(&ks);
    ks.refresh_interval = 20 * S;
    ks.provider_ttl = 40 * S;
    ks.republish_interval = 15 * S;
    add_servers(w, 0, 2, 0, &ks, 0);
    flare_kad_settings slow = ks;
    slow.refresh_interval = 600 * S;
    add_servers(w, 2, 3, 0, &slow, 0);
    add_servers(w, 3, NOLD, 0, &ks, 0);
    run_s(w, 10);

    /* A provider (node 4) announces a key; the record outlives its TTL
     * because node 4 republishes it. */
    uint8_t mh[34] = {0x12, 0x20, 'r', 'e', 'p', 'u', 'b'};
    res pr = {0};
    assert_int_equal(flare_kad_provide(w->n[4].k.h, mh, sizeof(mh), done_cb, &pr), 0);
    wait_calls(w, &pr);
    assert_int_equal(pr.status, 0);
    assert_true(pr.n >= 5);
    run_s(w, 100); /* 2.5 provider TTLs */
    res f = find_providers(w, 9, mh, sizeof(mh));
    assert_int_equal(f.status, 0);
    assert_int_equal(f.n, 1);
    assert_true(flare_peerid_equal(&f.peers[0].id, flare_host_peerid(w->n[4].k.h)));

    /* Half the old nodes leave (the provider among them), as many new ones
     * join under another prefix; none of them talks to node 3 or 2 first. */
    flare_peerid gone[NOLD];
    size_t ngone = 0;
    for (int i = 4; i < NOLD; i += 2) {
        gone[ngone++] = *flare_host_peerid(w->n[i].k.h);
        flare_host_del(w->n[i].k.h);
        w->n[i].k.h = NULL;
    }
    size_t before3 = count_in(w->n[3].k.h, gone, ngone),
           before2 = count_in(w->n[2].k.h, gone, ngone);
    assert_true(before3 >= 3 && before2 >= 3);
    add_servers(w, NOLD, NOLD + NNEW, 1, &ks, 1);
    flare_peerid fresh[NNEW];
    for (int i = 0; i < NNEW; i++)
        fresh[i] = *flare_host_peerid(w->n[NOLD + i].k.h);
    size_t new3_at_join = count_in(w->n[3].k.h, fresh, NNEW);
    run_s(w, 45); /* two refreshes of node 3, none of node 2 */

    /* Node 3's refresh evicted the departed and took in newcomers; node 2,
     * which did not refresh, still holds departed peers. */
    assert_int_equal(count_in(w->n[3].k.h, gone, ngone), 0);
    assert_true(count_in(w->n[2].k.h, gone, ngone) > 0);
    size_t new3 = count_in(w->n[3].k.h, fresh, NNEW);
    assert_true(new3 >= 6);
    assert_true(new3 >= new3_at_join);
    assert_true(flare_kad_routing_table_size(w->n[3].k.h) >= NOLD / 2 - 2 + 6);

    /* The provider is gone: its record expired (TTL 40 s, 45 s ago at
     * most since its last republish). */
    f = find_providers(w, 9, mh, sizeof(mh));
    assert_int_equal(f.status, FLARE_ERR_NOT_FOUND);
    world_free(w);
    free(w);
}

/* ---- custom record validators ---------------------------------------------------------- */

/* Namespace "ver": a value is a version byte (0xff is invalid); the higher
 * version wins. */
typedef struct vstate {
    int validated, selected;
} vstate;

static int ver_validate(const uint8_t *key, size_t klen, const uint8_t *v, size_t vlen, void *user)
{
    ((vstate *)user)->validated++;
    assert_true(klen > 5 && memcmp(key, "/ver/", 5) == 0);
    return vlen == 1 && v[0] != 0xff ? 0 : FLARE_ERR_MALFORMED;
}

static int ver_select(const uint8_t *key, size_t klen, const uint8_t *a, size_t alen,
                      const uint8_t *b, size_t blen, void *user)
{
    (void)key, (void)klen, (void)alen, (void)blen;
    ((vstate *)user)->selected++;
    return b[0] > a[0];
}

typedef flare_test_kad_res vres;
#define vdone_cb  flare_test_kad_done_cb
#define vvalue_cb flare_test_kad_value_cb

static vres wait_v(world *w, vres *r)
{
    for (int i = 0; i < 300 && !r->calls; i++)
        run_s(w, 0.1);
    assert_int_equal(r->calls, 1);
    return *r;
}

static vres put_ver(world *w, int from, uint8_t version)
{
    vres r = {0};
    static const uint8_t key[] = "/ver/doc";
    assert_int_equal(
        flare_kad_put_value(w->n[from].k.h, key, sizeof(key) - 1, &version, 1, vdone_cb, &r), 0);
    return wait_v(w, &r);
}

static vres get_ver(world *w, int from)
{
    vres r = {0};
    static const uint8_t key[] = "/ver/doc";
    assert_int_equal(flare_kad_get_value(w->n[from].k.h, key, sizeof(key) - 1, vvalue_cb, &r), 0);
    return wait_v(w, &r);
}

static void test_custom_validator(void **state)
{
    (void)state;
    world *w = calloc(1, sizeof(*w));
    w->sim = flare_sim_new(13, NULL);
    flare_sim_host *sh;
    flare_host *plain;
    flare_test_host_spec sp = {.name = "p", .lan = flare_sim_internet(w->sim), .ip = "11.5.0.1"};
    assert_int_equal(flare_test_host_make(w->sim, &sp, &sh, &plain), 0);
    vstate vs[2] = {{0}};
    assert_int_equal(flare_kad_add_validator(plain, "ver", ver_validate, ver_select, &vs[0]),
                     FLARE_ERR_STATE);
    flare_host_del(plain);

    /* Nodes 0 and 1 know the namespace, node 2 does not. */
    flare_kad_settings ks;
    server_settings(&ks);
    add_servers(w, 0, 3, 0, &ks, 0);
    run_s(w, 5);
    static const uint8_t key[] = "/ver/doc";
    uint8_t one = 1, bad = 0xff;
    assert_int_equal(
        flare_kad_put_value(w->n[0].k.h, key, sizeof(key) - 1, &one, 1, vdone_cb, NULL),
        FLARE_ERR_UNSUPPORTED);
    flare_host *h2 = w->n[2].k.h; /* node 2 gets other namespaces only */
    assert_int_equal(flare_kad_add_validator(h2, NULL, ver_validate, ver_select, vs),
                     FLARE_ERR_INVALID_ARG);
    assert_int_equal(flare_kad_add_validator(h2, "", ver_validate, ver_select, vs),
                     FLARE_ERR_INVALID_ARG);
    assert_int_equal(flare_kad_add_validator(h2, "a/b", ver_validate, ver_select, vs),
                     FLARE_ERR_INVALID_ARG);
    assert_int_equal(flare_kad_add_validator(h2, "0123456789abcdef0123456789abcdef", ver_validate,
                                             ver_select, vs),
                     FLARE_ERR_INVALID_ARG);
    assert_int_equal(flare_kad_add_validator(h2, "ver", NULL, ver_select, vs),
                     FLARE_ERR_INVALID_ARG);
    assert_int_equal(flare_kad_add_validator(h2, "ver", ver_validate, NULL, vs),
                     FLARE_ERR_INVALID_ARG);
    char ns[8];
    for (int i = 0; i < 7; i++) { /* "pk" is the eighth */
        snprintf(ns, sizeof(ns), "n%d", i);
        assert_int_equal(flare_kad_add_validator(h2, ns, ver_validate, ver_select, vs), 0);
    }
    assert_int_equal(flare_kad_add_validator(h2, "ver", ver_validate, ver_select, vs),
                     FLARE_ERR_LIMIT);
    /* Replacing one in place is fine. */
    assert_int_equal(flare_kad_add_validator(h2, "n0", ver_validate, ver_select, vs), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(
            flare_kad_add_validator(w->n[i].k.h, "ver", ver_validate, ver_select, &vs[i]), 0);

    /* Locally: an invalid value is refused by the callback. */
    assert_int_equal(
        flare_kad_put_value(w->n[0].k.h, key, sizeof(key) - 1, &bad, 1, vdone_cb, NULL),
        FLARE_ERR_MALFORMED);
    assert_true(vs[0].validated >= 1);

    /* Version 1 from node 0: stored on node 1 only (node 2 refuses a
     * namespace it does not know), found by node 1. */
    vres p = put_ver(w, 0, 1);
    assert_int_equal(p.status, 0);
    assert_int_equal(p.n, 1);
    assert_true(vs[1].validated >= 1);
    vres g = get_ver(w, 1);
    assert_int_equal(g.status, 0);
    assert_int_equal(g.vlen, 1);
    assert_int_equal(g.value[0], 1);

    /* Version 3 from node 1 replaces it on node 0 (select: higher wins);
     * version 2 afterwards does not win on GET. */
    p = put_ver(w, 1, 3);
    assert_int_equal(p.status, 0);
    int sel0 = vs[0].selected;
    assert_true(sel0 >= 1);
    g = get_ver(w, 0);
    assert_int_equal(g.status, 0);
    assert_int_equal(g.value[0], 3);
    p = put_ver(w, 1, 2);
    g = get_ver(w, 0);
    assert_int_equal(g.status, 0);
    assert_int_equal(g.value[0], 3);
    assert_true(vs[0].selected > sel0);
    world_free(w);
    free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auto_mode_follows_reachability),
        cmocka_unit_test(test_refresh_and_republish),
        cmocka_unit_test(test_custom_validator),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
