/* The Kademlia DHT on the simulator: a world of 48 public nodes (each in a
 * /24 of its own, so the diversity limits hold no one back) bootstrapping
 * from two of them, plus private nodes behind NATs in auto mode. Lookups
 * converge on the true closest peers, find-peer and provider records work,
 * pk records round-trip, auto mode follows AutoNAT, and 10% churn (leave,
 * then as many join) does not break lookups. */
#include <stdlib.h>

#include "support/test.h"

#include "flare/host.h"
#include "flare/kad.h"
#include "flare/sim.h"
#include "support/helpers.h"
#include "support/kad_world.h"
#include "protocols/kad/kad.h"

#define MS    FLARE_NS_PER_MS
#define S     FLARE_NS_PER_S
#define NPUB  48
#define NPRIV 2
#define NALL  (NPUB + NPRIV)

typedef struct node {
    flare_test_kad_node k;
    int dead, gen; /* gen: the identity, bumped when the slot rejoins */
    int mode_events, ready_events, last_server;
} node;

typedef struct world {
    flare_sim *sim;
    node n[NALL];
} world;

typedef flare_test_kad_res res;
#define peers_cb flare_test_kad_peers_cb
#define done_cb  flare_test_kad_done_cb
#define value_cb flare_test_kad_value_cb

static void on_event(flare_host *h, const flare_host_event *ev, void *user)
{
    node *n = user;
    (void)h;
    if (ev->type != FLARE_HOST_EV_DHT)
        return;
    if (strcmp(ev->u.dht.reason, "mode") == 0) {
        n->mode_events++;
        n->last_server = ev->u.dht.server;
    } else if (strcmp(ev->u.dht.reason, "ready") == 0) {
        n->ready_events++;
        assert_true(ev->u.dht.peers > 0);
    }
}

static void run_s(world *w, double s)
{
    flare_test_kad_run_s(w->sim, s);
}

static void wait_calls(world *w, res *r)
{
    flare_test_kad_wait(w->sim, r);
}

static void make_node(world *w, int i, flare_sim_lan *lan, const char *ip, flare_kad_mode mode)
{
    node *n = &w->n[i];
    flare_host_settings c;
    flare_test_kad_host_settings(&c);
    c.enable_holepunch = 0;
    flare_test_host_spec sp = {
        .name = "n",
        .lan = lan,
        .ip = ip,
        .seed = {(uint8_t)(i + 1), (uint8_t)((i + 1) >> 8), 0x4b, (uint8_t)n->gen},
        .cfg = &c,
        .on_event = on_event,
        .user = n};
    flare_test_kad_node_make(w->sim, &n->k, &sp);
    flare_kad_settings ks;
    flare_test_kad_settings(&ks, mode);
    /* Nodes 0 and 1 bootstrap the others (the first knows nobody). */
    const flare_test_kad_node *boot[2] = {&w->n[0].k, &w->n[1].k};
    flare_test_kad_enable(n->k.h, &ks, boot, i < 2 ? (size_t)i : 2);
    assert_int_equal(flare_kad_enable(n->k.h, &ks), FLARE_ERR_EXISTS);
}

/* Public nodes are servers, private ones in auto mode. */
static void make_any(void *w, int i, flare_sim_lan *lan, const char *ip)
{
    make_node(w, i, lan, ip, i < NPUB ? FLARE_KAD_MODE_SERVER : FLARE_KAD_MODE_AUTO);
}

static void world_init(world *w, uint64_t seed)
{
    memset(w, 0, sizeof(*w));
    w->sim = flare_sim_new(seed, NULL);
    flare_test_kad_add_public(w->sim, 0, 0, NPUB, make_any, w);
    flare_test_kad_add_private(w->sim, 0, NPUB, NALL, make_any, w);
    run_s(w, 60);
}

static void world_free(world *w)
{
    for (int i = 0; i < NALL; i++)
        flare_host_del(w->n[i].k.h);
    flare_sim_del(w->sim);
}

/* How many of the true k closest live public nodes to key are in r. */
static size_t overlap(world *w, const uint8_t *key, size_t klen, const res *r, int self)
{
    flare__kad_key target;
    flare__kad_key_of(&target, key, klen);
    flare_peerid want[20];
    flare__kad_rt all;
    flare__kad_rt_cfg cfg = {NALL, 0, 0, 0};
    flare_peerid nobody = {.len = 2, .bytes = {0, 0}};
    flare__kad_rt_init(&all, &nobody, &cfg, NULL);
    for (int i = 0; i < NPUB; i++)
        if (!w->n[i].dead && i != self)
            flare__kad_rt_seen(&all, flare_host_peerid(w->n[i].k.h), 0, 1);
    size_t nw = flare__kad_rt_closest(&all, &target, want, 20);
    flare__kad_rt_free(&all);
    size_t hits = 0;
    for (size_t i = 0; i < r->n; i++)
        for (size_t j = 0; j < nw; j++)
            hits += flare_peerid_equal(&r->peers[i].id, &want[j]);
    return hits;
}

static int in_any_table(world *w, const flare_peerid *p)
{
    for (int i = 0; i < NPUB; i++) {
        flare_peerid t[256];
        size_t n = flare_kad_routing_table(w->n[i].k.h, t, 256);
        for (size_t j = 0; j < n; j++)
            if (flare_peerid_equal(&t[j], p))
                return 1;
    }
    return 0;
}

/* ---- scenarios ---- */

/* Lookups for 5 keys from node `from` return at least min_n peers, of
 * which at least min_hits are among the true 20 closest live ones. */
static void check_lookups(world *w, int from, unsigned salt, size_t min_n, size_t min_hits)
{
    for (unsigned t = 0; t < 5; t++) {
        uint8_t key[8] = {'k', 'e', 'y', (uint8_t)t, (uint8_t)salt};
        res r = {0};
        assert_int_equal(flare_kad_closest_peers(w->n[from].k.h, key, sizeof(key), peers_cb, &r),
                         0);
        assert_int_equal(r.calls, 0); /* never inside the call */
        wait_calls(w, &r);
        assert_int_equal(r.status, 0);
        assert_true(r.n >= min_n && r.n <= 20);
        assert_true(overlap(w, key, sizeof(key), &r, from) >= min_hits);
    }
}

static void test_dht_world(void **state)
{
    (void)state;
    world *w = calloc(1, sizeof(*w));
    world_init(w, 7);

    /* Every node joined; tables hold a good share of a 48-node world. */
    for (int i = 0; i < NALL; i++) {
        assert_int_equal(w->n[i].ready_events, 1);
        assert_true(flare_kad_routing_table_size(w->n[i].k.h) >= 15);
    }
    /* Servers say so once; the private nodes stay clients (AutoNAT says
     * private) and are in nobody's table, and do not announce the protocol. */
    for (int i = 0; i < NPUB; i++) {
        assert_true(flare_kad_is_server(w->n[i].k.h));
        assert_int_equal(w->n[i].mode_events, 1);
    }
    for (int i = NPUB; i < NALL; i++) {
        assert_int_equal(flare_host_reachability(w->n[i].k.h, 4), FLARE_REACH_PRIVATE);
        assert_false(flare_kad_is_server(w->n[i].k.h));
        assert_false(w->n[i].last_server);
        assert_false(in_any_table(w, flare_host_peerid(w->n[i].k.h)));
        const char *protos[64];
        size_t np = flare_host_protocols(w->n[i].k.h, protos, 64);
        for (size_t j = 0; j < np; j++)
            assert_string_not_equal(protos[j], FLARE_KAD_PROTOCOL);
    }

    /* Lookups converge on the true closest peers, from a server and from a
     * private client. */
    check_lookups(w, 5, 0, 20, 18);
    check_lookups(w, NPUB, 1, 20, 18);

    /* Find peer: a public node, then a private one (through the servers
     * that know it from its own lookups); neither is connected to us. */
    int asker = 7;
    for (int t = 0; t < 2; t++) {
        int target = t ? NPUB + 1 : 33;
        flare_conn *c;
        while ((c = flare_host_conn_to(w->n[asker].k.h, flare_host_peerid(w->n[target].k.h))))
            flare_conn_close(c);
        res r = {0};
        assert_int_equal(
            flare_kad_find_peer(w->n[asker].k.h, flare_host_peerid(w->n[target].k.h), peers_cb, &r),
            0);
        wait_calls(w, &r);
        assert_int_equal(r.status, 0);
        assert_int_equal(r.n, 1);
        assert_true(flare_peerid_equal(&r.peers[0].id, flare_host_peerid(w->n[target].k.h)));
        assert_true(r.peers[0].naddrs >= 1);
    }

    /* Provider records: a private node provides, others find it. */
    uint8_t mh[34] = {0x12, 0x20, 'c', 'o', 'n', 't', 'e', 'n', 't'};
    res pr = {0};
    assert_int_equal(flare_kad_provide(w->n[NPUB].k.h, mh, sizeof(mh), done_cb, &pr), 0);
    wait_calls(w, &pr);
    assert_int_equal(pr.status, 0);
    assert_true(pr.n >= 15);
    for (int from = 10; from < 40; from += 10) {
        res r = {0};
        assert_int_equal(flare_kad_find_providers(w->n[from].k.h, mh, sizeof(mh), 5, peers_cb, &r),
                         0);
        wait_calls(w, &r);
        assert_int_equal(r.status, 0);
        assert_int_equal(r.n, 1);
        assert_true(flare_peerid_equal(&r.peers[0].id, flare_host_peerid(w->n[NPUB].k.h)));
        assert_true(r.peers[0].naddrs >= 1);
    }
    uint8_t other[34] = {0x12, 0x20, 'n', 'o', 'n', 'e'};
    res nr = {0};
    assert_int_equal(flare_kad_find_providers(w->n[3].k.h, other, sizeof(other), 5, peers_cb, &nr),
                     0);
    wait_calls(w, &nr);
    assert_int_equal(nr.status, FLARE_ERR_NOT_FOUND);

    /* pk records: put by one, got by another; a bad one is refused. */
    uint8_t key[80], val[128];
    size_t klen = sizeof(key), vlen = sizeof(val);
    assert_int_equal(flare_kad_pk_record(w->n[20].k.h, key, &klen, val, &vlen), 0);
    res put = {0};
    assert_int_equal(flare_kad_put_value(w->n[20].k.h, key, klen, val, vlen, done_cb, &put), 0);
    wait_calls(w, &put);
    assert_int_equal(put.status, 0);
    assert_true(put.n >= 15);
    res get = {0};
    assert_int_equal(flare_kad_get_value(w->n[41].k.h, key, klen, value_cb, &get), 0);
    wait_calls(w, &get);
    assert_int_equal(get.status, 0);
    assert_int_equal(get.vlen, vlen);
    assert_memory_equal(get.value, val, vlen);
    assert_int_equal(flare_kad_put_value(w->n[20].k.h, key, klen, val, vlen - 1, done_cb, &put),
                     FLARE_ERR_MALFORMED);

    /* Churn: 10% of the public nodes leave; lookups still converge (the
     * tables of the others still hold the dead, so a lookup may end with
     * fewer than k live peers until they are evicted). */
    flare_peerid gone[8];
    int ngone = 0;
    for (int i = 2; i < NPUB; i += 10) {
        gone[ngone++] = *flare_host_peerid(w->n[i].k.h);
        flare_host_del(w->n[i].k.h);
        w->n[i].k.h = NULL;
        w->n[i].dead = 1;
    }
    run_s(w, 5);
    check_lookups(w, 9, 2, 15, 15);
    res fp = {0};
    assert_int_equal(
        flare_kad_find_peer(w->n[9].k.h, flare_host_peerid(w->n[44].k.h), peers_cb, &fp), 0);
    wait_calls(w, &fp);
    assert_int_equal(fp.status, 0);
    /* The dead that node 9 asked are gone from its table. */
    flare_peerid t9[256];
    size_t n9 = flare_kad_routing_table(w->n[9].k.h, t9, 256), stale = 0;
    for (size_t j = 0; j < n9; j++)
        for (int g = 0; g < ngone; g++)
            stale += flare_peerid_equal(&t9[j], &gone[g]);
    assert_true(stale < (size_t)ngone);

    /* ... and as many join, with new identities and addresses: they get in,
     * are found by ID, and lookups converge on the new world. */
    for (int i = 2; i < NPUB; i += 10) {
        char ip[32];
        snprintf(ip, sizeof(ip), "11.2.%d.1", i);
        w->n[i].gen++;
        w->n[i].dead = 0;
        w->n[i].ready_events = 0;
        make_node(w, i, flare_sim_internet(w->sim), ip, FLARE_KAD_MODE_SERVER);
    }
    run_s(w, 20);
    for (int i = 2; i < NPUB; i += 10) {
        assert_int_equal(w->n[i].ready_events, 1);
        res r = {0};
        assert_int_equal(
            flare_kad_find_peer(w->n[40].k.h, flare_host_peerid(w->n[i].k.h), peers_cb, &r), 0);
        wait_calls(w, &r);
        assert_int_equal(r.status, 0);
        assert_true(r.peers[0].naddrs >= 1);
    }
    check_lookups(w, 30, 3, 15, 15);
    world_free(w);
    free(w);
}

static void test_api_errors(void **state)
{
    (void)state;
    flare_sim *sim = flare_sim_new(1, NULL);
    flare_sim_host *sh;
    flare_host *h;
    flare_test_host_spec sp = {.name = "x", .lan = flare_sim_internet(sim), .ip = "11.0.0.1"};
    assert_int_equal(flare_test_host_make(sim, &sp, &sh, &h), 0);
    uint8_t key[4] = {1, 2, 3, 4};
    res r = {0};
    assert_int_equal(flare_kad_closest_peers(h, key, 4, peers_cb, &r), FLARE_ERR_STATE);
    flare_kad_settings ks;
    flare_kad_settings_default(&ks);
    ks.struct_size--;
    assert_int_equal(flare_kad_enable(h, &ks), FLARE_ERR_INVALID_ARG);
    flare_kad_settings_default(&ks);
    flare_multiaddr bad;
    assert_int_equal(flare_multiaddr_parse(&bad, "/ip4/1.2.3.4/tcp/1"), 0);
    ks.bootstrap = &bad;
    ks.nbootstrap = 1;
    assert_int_equal(flare_kad_enable(h, &ks), FLARE_ERR_INVALID_ARG);
    assert_int_equal(flare_kad_enable(h, NULL), 0);
    assert_int_equal(flare_kad_closest_peers(h, key, 0, peers_cb, &r), FLARE_ERR_INVALID_ARG);
    /* An empty table: the query ends from the loop with UNREACHABLE. */
    assert_int_equal(flare_kad_closest_peers(h, key, 4, peers_cb, &r), 0);
    assert_int_equal(r.calls, 0);
    flare_sim_run_for(sim, S);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.status, FLARE_ERR_UNREACHABLE);
    /* A query in flight when the host goes: no callback, no leak. */
    res r2 = {0};
    assert_int_equal(flare_kad_get_value(h, key, 4, value_cb, &r2), 0);
    assert_int_equal(flare_kad_set_mode(h, FLARE_KAD_MODE_SERVER), 0);
    assert_true(flare_kad_is_server(h));
    assert_int_equal(flare_kad_set_mode(h, (flare_kad_mode)7), FLARE_ERR_INVALID_ARG);
    flare_host_del(h);
    assert_int_equal(r2.calls, 0);
    flare_sim_del(sim);
}

/* ---- hostile input on the server side ---- */

typedef struct raw {
    int closed, err, got;
} raw;

static void raw_data(flare_stream *s, const uint8_t *d, size_t len, void *user)
{
    (void)s, (void)d;
    ((raw *)user)->got += (int)len;
}

static void raw_close(flare_stream *s, int err, void *user)
{
    raw *r = user;
    (void)s;
    r->closed = 1;
    r->err = err;
}

static const flare_stream_cbs raw_cbs = {.on_data = raw_data, .on_close = raw_close};

/* Opens a kad stream from h to peer and writes bytes; returns the outcome
 * after a second. */
static raw send_raw(flare_sim *sim, flare_host *h, const flare_peerid *peer, const uint8_t *b,
                    size_t len)
{
    static raw r;
    memset(&r, 0, sizeof(r));
    flare_stream *s;
    assert_int_equal(flare_host_new_stream(h, peer, FLARE_KAD_PROTOCOL, &raw_cbs, &r, 0, &s), 0);
    assert_true(flare_stream_write(s, b, len) >= 0);
    flare_sim_run_for(sim, S);
    return r;
}

static void test_hostile_requests(void **state)
{
    (void)state;
    world *w = calloc(1, sizeof(*w));
    w->sim = flare_sim_new(3, NULL);
    flare_sim_lan *inet = flare_sim_internet(w->sim);
    make_node(w, 0, inet, "11.0.0.1", FLARE_KAD_MODE_SERVER);
    flare_sim_host *sh;
    flare_host *x; /* the attacker: a plain host, no DHT */
    flare_test_host_spec sp = {.name = "x", .lan = inet, .ip = "11.9.0.1", .seed = {0x99}};
    assert_int_equal(flare_test_host_make(w->sim, &sp, &sh, &x), 0);
    flare_multiaddr ma;
    flare_test_kad_addr(&ma, &w->n[0].k);
    assert_int_equal(flare_host_dial(x, &ma, NULL, NULL, NULL), 0);
    run_s(w, 2);
    const flare_peerid *srv = flare_host_peerid(w->n[0].k.h);

    /* Garbage, an oversized frame (a length over the request bound), a bad
     * message type: each resets the stream, nothing is answered. */
    static const uint8_t garbage[] = {0x05, 0xff, 0xff, 0xff, 0xff, 0xff};
    raw r = send_raw(w->sim, x, srv, garbage, sizeof(garbage));
    assert_true(r.closed && r.err == FLARE_ERR_RESET && r.got == 0);
    static const uint8_t big[] = {0xff, 0xff, 0x03}; /* 65535 bytes announced */
    r = send_raw(w->sim, x, srv, big, sizeof(big));
    assert_true(r.closed && r.err == FLARE_ERR_RESET);
    static const uint8_t badtype[] = {0x02, 0x08, 0x09};
    r = send_raw(w->sim, x, srv, badtype, sizeof(badtype));
    assert_true(r.closed && r.err == FLARE_ERR_RESET);
    /* A PUT_VALUE that fails validation is refused too. */
    static const uint8_t badput[] = {0x0c, 0x08, 0x00, 0x12, 0x03, '/', 'p',
                                     'k',  0x1a, 0x03, 0x0a, 0x01, 'x'};
    r = send_raw(w->sim, x, srv, badput, sizeof(badput));
    assert_true(r.closed && r.err == FLARE_ERR_RESET);

    /* ADD_PROVIDER naming someone else is ignored: the server holds no
     * provider for that key afterwards. */
    flare_peerid other;
    {
        uint8_t seed[32] = {0x77};
        flare_privkey k;
        assert_int_equal(flare_privkey_from_seed(&k, seed), 0);
        assert_int_equal(flare_peerid_from_pubkey(&other, &k.pub), 0);
    }
    uint8_t msg[128], key[4] = {0x12, 0x02, 'a', 'b'};
    size_t o = 0;
    msg[o++] = 0; /* the length, set below */
    msg[o++] = 0x08, msg[o++] = 0x02;
    msg[o++] = 0x12, msg[o++] = 4;
    memcpy(msg + o, key, 4), o += 4;
    msg[o++] = 0x4a, msg[o++] = (uint8_t)(2 + other.len);
    msg[o++] = 0x0a, msg[o++] = other.len;
    memcpy(msg + o, other.bytes, other.len), o += other.len;
    msg[0] = (uint8_t)(o - 1);
    send_raw(w->sim, x, srv, msg, o);
    res pr = {0};
    assert_int_equal(flare_kad_find_providers(w->n[0].k.h, key, 4, 5, peers_cb, &pr), 0);
    wait_calls(w, &pr);
    assert_int_not_equal(pr.status, 0);
    /* The server still answers a good request. */
    uint8_t fn[64];
    const flare_peerid *xid = flare_host_peerid(x);
    fn[0] = (uint8_t)(4 + xid->len), fn[1] = 0x08, fn[2] = 0x04, fn[3] = 0x12, fn[4] = xid->len;
    memcpy(fn + 5, xid->bytes, xid->len);
    r = send_raw(w->sim, x, srv, fn, 5 + xid->len);
    assert_true(r.got > 0);
    flare_host_del(x);
    flare_host_del(w->n[0].k.h);
    flare_sim_del(w->sim);
    free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_api_errors),
        cmocka_unit_test(test_hostile_requests),
        cmocka_unit_test(test_dht_world),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
