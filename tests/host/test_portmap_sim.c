/* Port mapping on the simulated network: a node behind a symmetric NAT whose
 * box answers PCP or NAT-PMP gets a mapping, AutoNAT confirms it, the node
 * is public and needs no relay; mappings are renewed and deleted at
 * shutdown; a box without port mapping, or a hostile one (garbage,
 * oversized answers, lies, epochs going backwards) changes nothing bad. */
#include <stdlib.h>

#include "support/test.h"

#include "flare/host.h"
#include "flare/portmap.h"
#include "flare/relay_server.h"
#include "flare/sim.h"
#include "host/host_int.h"

#define MS FLARE_NS_PER_MS
#define S  FLARE_NS_PER_S

typedef struct pnode {
    flare_sim_host *sh;
    flare_host *h;
    int mapped, renewed, lost, failed;
    flare_portmap_proto proto;
    flare_multiaddr ext;
    int reach_events;
} pnode;

typedef struct world {
    flare_sim *sim;
    flare_sim_nat *nat;
    pnode srv[3];
    pnode c;
} world;

static void on_event(flare_host *h, const flare_host_event *ev, void *user)
{
    pnode *n = user;
    (void)h;
    if (ev->type == FLARE_HOST_EV_REACHABILITY && ev->u.reachability.family == 4)
        n->reach_events++;
    if (ev->type != FLARE_HOST_EV_PORTMAP)
        return;
    const char *w = ev->u.portmap.what;
    if (!strcmp(w, "mapped") || !strcmp(w, "renewed")) {
        n->mapped += w[0] == 'm';
        n->renewed += w[0] == 'r';
        n->proto = ev->u.portmap.protocol;
        assert_non_null(ev->u.portmap.external);
        n->ext = *ev->u.portmap.external;
        assert_true(ev->u.portmap.lifetime <= 7200);
    } else if (!strcmp(w, "lost")) {
        n->lost++;
    } else if (!strcmp(w, "failed")) {
        n->failed++;
    }
}

static void make(world *w, pnode *n, flare_sim_lan *lan, const char *ip, uint8_t seed,
                 const flare_host_settings *cfg)
{
    char name[8];
    snprintf(name, sizeof(name), "n%u", seed);
    flare_test_host_spec sp = {.name = name,
                               .lan = lan,
                               .ip = ip,
                               .link = {.delay = 5 * MS},
                               .seed = {seed, 0x70},
                               .cfg = cfg,
                               .on_event = on_event,
                               .user = n,
                               .listen_port = 4001};
    assert_int_equal(flare_test_host_make(w->sim, &sp, &n->sh, &n->h), 0);
}

/* Three public servers (AutoNAT, relay) and a client behind a symmetric
 * NAT whose box speaks pm, with port mapping on (cfg NULL: defaults). */
static void world_init(world *w, uint64_t seed, flare_sim_portmap pm,
                       const flare_portmap_settings *pcfg)
{
    memset(w, 0, sizeof(*w));
    w->sim = flare_sim_new(seed, NULL);
    assert_non_null(w->sim);
    flare_host_settings cfg;
    flare_test_settings_default(&cfg);
    cfg.enable_autorelay = 1;
    for (int i = 0; i < 3; i++) {
        char ip[32];
        snprintf(ip, sizeof(ip), "198.51.100.%d", i + 1);
        make(w, &w->srv[i], flare_sim_internet(w->sim), ip, (uint8_t)(i + 1), NULL);
        assert_int_equal(flare_host_enable_relay_server(w->srv[i].h, NULL), 0);
    }
    flare_sim_lan *lan = flare_sim_lan_new(w->sim, "lan");
    flare_sim_nat_config nc;
    flare_sim_nat_config_default(&nc);
    nc.mapping = FLARE_SIM_APD; /* symmetric: hole punching cannot work */
    nc.port_preservation = 0;
    nc.portmap = pm;
    w->nat = flare_sim_nat_new(w->sim, "nat", flare_sim_internet(w->sim), "203.0.113.1", lan,
                               "10.0.0.1", &nc);
    assert_non_null(w->nat);
    make(w, &w->c, lan, "10.0.0.2", 9, &cfg);
    assert_int_equal(flare_host_enable_portmap(w->c.h, pcfg), 0);
    assert_int_equal(flare_host_enable_portmap(w->c.h, pcfg), FLARE_ERR_EXISTS);
    for (int i = 0; i < 3; i++) {
        flare_multiaddr ma;
        char ip[32];
        snprintf(ip, sizeof(ip), "198.51.100.%d", i + 1);
        assert_int_equal(flare_test_tcp_addr(&ma, ip, 4001, flare_host_peerid(w->srv[i].h)), 0);
        assert_int_equal(flare_host_dial(w->c.h, &ma, NULL, NULL, NULL), 0);
    }
}

static void world_free(world *w)
{
    flare_host_del(w->c.h);
    for (int i = 0; i < 3; i++)
        flare_host_del(w->srv[i].h);
    flare_sim_del(w->sim);
}

static void run_until_verdict(world *w, flare_tstamp limit)
{
    flare_tstamp end = flare_sim_now(w->sim) + limit;
    while (flare_host_reachability(w->c.h, 4) == FLARE_REACH_UNKNOWN && flare_sim_now(w->sim) < end)
        flare_sim_run_for(w->sim, 100 * MS);
}

/* 1 if server i's peerstore lists addr for the client (identify told it). */
static int advertised_to(world *w, int i, const flare_multiaddr *addr)
{
    flare_peer_info *info = malloc(sizeof(*info));
    assert_non_null(info);
    int found = 0;
    if (flare_host_peer_info(w->srv[i].h, flare_host_peerid(w->c.h), info) == 0)
        for (size_t k = 0; k < info->naddrs; k++)
            found |= flare_multiaddr_equal(&info->addrs[k], addr);
    free(info);
    return found;
}

/* 1 if the client advertises addr (identify's listenAddrs). */
static int advertises(world *w, const flare_multiaddr *addr)
{
    flare_multiaddr out[32];
    size_t n = flare__addrs_advertised(w->c.h, out, 32);
    for (size_t i = 0; i < n; i++)
        if (flare_multiaddr_equal(&out[i], addr))
            return 1;
    return 0;
}

/* A new public node dials the mapped address: it reaches the client. */
static void dial_mapped(world *w, const flare_multiaddr *ext, int want_ok)
{
    pnode d = {0};
    make(w, &d, flare_sim_internet(w->sim), "198.51.100.50", 20, NULL);
    flare_multiaddr ma = *ext;
    assert_int_equal(flare_multiaddr_with_peerid(&ma, flare_host_peerid(w->c.h)), 0);
    flare_test_dial r = {0};
    assert_int_equal(flare_host_dial(d.h, &ma, NULL, flare_test_dial_cb, &r), 0);
    flare_sim_run_for(w->sim, 8 * S);
    assert_int_equal(r.calls, 1);
    if (want_ok)
        assert_int_equal(r.status, 0);
    else
        assert_int_not_equal(r.status, 0);
    flare_host_del(d.h);
}

static void public_through(flare_sim_portmap pm, flare_portmap_proto want, uint64_t seed)
{
    world w;
    world_init(&w, seed, pm, NULL);
    flare_sim_run_for(w.sim, 2 * S);
    assert_int_equal(w.c.mapped, 1);
    assert_int_equal(w.c.proto, want);
    char s[128];
    flare_multiaddr_to_string(&w.c.ext, s, sizeof(s));
    assert_true(strncmp(s, "/ip4/203.0.113.1/tcp/", 21) == 0);
    flare_portmap_info info[2];
    assert_int_equal(flare_host_portmap_mappings(w.c.h, info, 2), 1);
    assert_int_equal(info[0].proto, want);
    /* Not advertised before AutoNAT vouches for it. */
    assert_false(advertises(&w, &w.c.ext));

    run_until_verdict(&w, 40 * S);
    assert_int_equal(flare_host_reachability(w.c.h, 4), FLARE_REACH_PUBLIC);
    flare_sim_run_for(w.sim, 2 * S);
    assert_true(advertises(&w, &w.c.ext));
    assert_true(advertised_to(&w, 0, &w.c.ext)); /* identify push after the verdict */
    /* Public: AutoRelay never needed a relay. */
    flare_peerid relays[4];
    assert_int_equal(flare_host_autorelay_relays(w.c.h, relays, 4), 0);
    dial_mapped(&w, &w.c.ext, 1);

    /* Deleted at shutdown. */
    flare_sim_nat_stats st;
    flare_sim_nat_stats_get(w.nat, &st);
    assert_int_equal(st.portmap_active, 1);
    flare_host_del(w.c.h);
    w.c.h = NULL;
    flare_sim_run_for(w.sim, 1 * S);
    flare_sim_nat_stats_get(w.nat, &st);
    assert_int_equal(st.portmap_active, 0);
    assert_int_equal(st.portmap_deleted, 1);
    world_free(&w);
}

static void test_pcp_symmetric_nat_becomes_public(void **state)
{
    public_through(FLARE_SIM_PORTMAP_PCP, FLARE_PORTMAP_PCP, 61);
}

static void test_natpmp_symmetric_nat_becomes_public(void **state)
{
    public_through(FLARE_SIM_PORTMAP_NATPMP, FLARE_PORTMAP_NATPMP, 62);
}

/* Without port mapping the same node is private (the control case). */
static void test_no_portmap_stays_private(void **state)
{
    world w;
    world_init(&w, 63, FLARE_SIM_PORTMAP_NONE, NULL);
    run_until_verdict(&w, 40 * S);
    assert_int_equal(flare_host_reachability(w.c.h, 4), FLARE_REACH_PRIVATE);
    assert_int_equal(w.c.mapped, 0);
    assert_true(w.c.failed >= 1); /* PCP and NAT-PMP timed out; no UPnP in the simulator */
    flare_sim_nat_stats st;
    flare_sim_nat_stats_get(w.nat, &st);
    assert_int_equal(st.portmap_requests, 8); /* 4 per protocol, then a 5 min pause */
    /* ...and AutoRelay needs a relay (with a mapping it never does). */
    flare_sim_run_for(w.sim, 10 * S);
    flare_peerid relays[4];
    assert_true(flare_host_autorelay_relays(w.c.h, relays, 4) >= 1);
    world_free(&w);
}

/* Short lifetimes: renewed at half of it, never lost; a reboot of the box
 * is noticed at the next renewal (epoch) and the mapping comes back. */
static void test_renewal_and_reboot(void **state)
{
    flare_portmap_settings pc;
    flare_portmap_settings_default(&pc);
    pc.lifetime = 120;
    world w;
    world_init(&w, 64, FLARE_SIM_PORTMAP_PCP, &pc);
    flare_sim_run_for(w.sim, 2 * S);
    assert_int_equal(w.c.mapped, 1);
    flare_sim_run_for(w.sim, 250 * S);
    assert_int_equal(w.c.renewed, 4); /* at 60, 120, 180, 240 s */
    assert_int_equal(w.c.lost, 0);
    assert_int_equal(w.c.mapped, 1);
    flare_sim_nat_stats st;
    flare_sim_nat_stats_get(w.nat, &st);
    assert_int_equal(st.portmap_active, 1);
    assert_int_equal(flare_host_reachability(w.c.h, 4), FLARE_REACH_PUBLIC);

    flare_sim_nat_reboot(w.nat);
    flare_sim_run_for(w.sim, 61 * S);
    assert_int_equal(w.c.mapped, 2); /* a new mapping, not a renewal */
    flare_sim_nat_stats_get(w.nat, &st);
    assert_int_equal(st.portmap_active, 1);
    dial_mapped(&w, &w.c.ext, 1);
    world_free(&w);
}

/* ---- hostile gateways --------------------------------------------------------------- */

typedef struct hostile {
    int kind;
    unsigned calls;
    flare_prng prng;
    uint32_t epoch;
} hostile;

enum { H_GARBAGE, H_OVERSIZED, H_LIAR, H_EPOCH_BACK, H_WRONG_NONCE };

static size_t hostile_answer(flare_sim_nat *n, const uint8_t *req, size_t len, uint8_t *resp,
                             size_t cap, void *user)
{
    hostile *x = user;
    (void)n;
    x->calls++;
    uint32_t lt;
    flare_ipaddr client;
    flare_pcp_map m;
    switch (x->kind) {
    case H_GARBAGE: {
        size_t k = 1 + flare_prng_next(&x->prng) % 100;
        for (size_t i = 0; i < k; i++)
            resp[i] = (uint8_t)flare_prng_next(&x->prng);
        resp[0] = x->calls & 1 ? 2 : 0;
        return k;
    }
    case H_OVERSIZED:
        if (flare_pcp_parse_map_req(req, len, &lt, &client, &m))
            return 0;
        flare_ipaddr_parse(&m.external, "203.0.113.1");
        m.external_port = 4001;
        flare_pcp_encode_map_resp(resp, cap, 0, 7200, 5, &m);
        memset(resp + 60, 0, cap - 60);
        return cap; /* 2048 bytes: over PCP's 1100 */
    case H_WRONG_NONCE:
        if (flare_pcp_parse_map_req(req, len, &lt, &client, &m))
            return 0;
        m.nonce[0] ^= 1;
        flare_ipaddr_parse(&m.external, "203.0.113.1");
        m.external_port = 4001;
        return flare_pcp_encode_map_resp(resp, cap, 0, 7200, 5, &m);
    default: /* H_LIAR, H_EPOCH_BACK: a mapping that does not exist */
        if (flare_pcp_parse_map_req(req, len, &lt, &client, &m))
            return 0;
        flare_ipaddr_parse(&m.external, "203.0.113.1");
        m.external_port = 40404;
        x->epoch = x->kind == H_EPOCH_BACK ? x->epoch / 2 : x->epoch + 60;
        return flare_pcp_encode_map_resp(resp, cap, 0, lt ? 120 : 0, x->epoch, &m);
    }
}

static void hostile_case(int kind, uint64_t seed)
{
    world w;
    hostile x = {.kind = kind, .epoch = 1u << 30};
    flare_prng_seed(&x.prng, seed);
    world_init(&w, seed, FLARE_SIM_PORTMAP_NONE, NULL);
    flare_sim_nat_set_portmap_hook(w.nat, hostile_answer, &x);
    run_until_verdict(&w, 40 * S);
    flare_sim_run_for(w.sim, 200 * S);
    /* The node is still private (the truth), nothing was advertised that
     * does not work, and the gateway heard from us at a polite rate. */
    assert_int_equal(flare_host_reachability(w.c.h, 4), FLARE_REACH_PRIVATE);
    flare_multiaddr adv;
    assert_int_equal(flare_multiaddr_parse(&adv, "/ip4/203.0.113.1/tcp/40404"), 0);
    assert_false(advertised_to(&w, 0, &adv));
    assert_false(advertises(&w, &adv));
    assert_true(x.calls <= 20);
    if (kind == H_LIAR || kind == H_EPOCH_BACK) {
        assert_true(w.c.mapped >= 1); /* believed, then checked by AutoNAT */
        flare_multiaddr tested[16];
        flare_reach_state st[16];
        size_t n = flare_host_reachability_addrs(w.c.h, tested, st, 16);
        int seen = 0;
        for (size_t i = 0; i < n; i++)
            if (flare_multiaddr_equal(&tested[i], &adv))
                seen = 1, assert_int_equal(st[i], FLARE_REACH_PRIVATE);
        assert_true(seen);
    } else {
        assert_int_equal(w.c.mapped, 0);
    }
    world_free(&w);
}

static void test_hostile_garbage(void **state)
{
    hostile_case(H_GARBAGE, 71);
}

static void test_hostile_oversized(void **state)
{
    hostile_case(H_OVERSIZED, 72);
}

static void test_hostile_wrong_nonce(void **state)
{
    hostile_case(H_WRONG_NONCE, 73);
}

static void test_hostile_liar(void **state)
{
    hostile_case(H_LIAR, 74);
}

static void test_hostile_epoch_backwards(void **state)
{
    hostile_case(H_EPOCH_BACK, 75);
}

/* ---- UPnP: the service's side, against a scripted IGD in the driver -------------------- */

typedef struct fake_igd {
    flare_io *io;
    flare_io_timer *timer;
    flare_io_upnp_cb cb;
    void *user;
    int pending, cancelled;
    unsigned maps, unmaps, fail_next;
    uint16_t last_port;
    uint32_t lease; /* what the IGD grants (0: permanent) */
} fake_igd;

static fake_igd igd;
static flare_io_ops igd_ops;

static void igd_answer(flare_io_timer *t, void *user)
{
    fake_igd *f = user;
    (void)t;
    f->pending = 0;
    flare_io_upnp_result r = {0};
    if (f->fail_next) {
        f->fail_next--;
        r.status = FLARE_ERR_NOT_FOUND;
    } else {
        flare_ipaddr_parse(&r.external, "203.0.113.1");
        r.external.port = f->last_port;
        r.lifetime = f->lease;
    }
    f->cb((flare_io_upnp *)f, &r, f->user);
}

static int igd_upnp(flare_io *io, const flare_io_upnp_req *req, flare_io_upnp_cb cb, void *user,
                    flare_io_upnp **out)
{
    (void)io;
    assert_int_equal(req->internal.family, 4);
    assert_int_equal(req->internal.port, 4001);
    if (req->unmap) {
        igd.unmaps++;
        assert_null(cb); /* at exit: fire and forget */
        return 0;
    }
    assert_false(igd.pending);
    igd.maps++;
    igd.last_port = req->external_port;
    igd.cb = cb;
    igd.user = user;
    igd.pending = 1;
    *out = (flare_io_upnp *)&igd;
    igd_ops.timer_start(igd.timer, flare_io_now(igd.io) + 50 * MS);
    return 0;
}

static void igd_cancel(flare_io_upnp *op)
{
    (void)op;
    igd.cancelled++;
    igd.pending = 0;
    igd_ops.timer_stop(igd.timer);
}

static void test_upnp_service(void **state)
{
    world w;
    memset(&w, 0, sizeof(w));
    w.sim = flare_sim_new(81, NULL);
    flare_sim_lan *lan = flare_sim_lan_new(w.sim, "lan");
    w.nat = flare_sim_nat_new(w.sim, "nat", flare_sim_internet(w.sim), "203.0.113.1", lan,
                              "10.0.0.1", NULL);
    make(&w, &w.c, lan, "10.0.0.2", 9, NULL);
    /* The simulator has no IGD: give this host's driver a scripted one. */
    flare_io *io = flare_host_io(w.c.h);
    memset(&igd, 0, sizeof(igd));
    igd_ops = *io->ops;
    igd_ops.upnp = igd_upnp;
    igd_ops.upnp_cancel = igd_cancel;
    io->ops = &igd_ops;
    igd.io = io;
    igd.lease = 600;
    igd.fail_next = 1;
    assert_int_equal(igd_ops.timer_new(io, igd_answer, &igd, &igd.timer), 0);
    flare_portmap_settings pc;
    flare_portmap_settings_default(&pc);
    pc.enable_pcp = pc.enable_natpmp = 0;
    assert_int_equal(flare_host_enable_portmap(w.c.h, &pc), 0);
    flare_sim_run_for(w.sim, 1 * S);
    assert_int_equal(w.c.failed, 1); /* no IGD at first: retried after 5 min */
    assert_int_equal(w.c.mapped, 0);
    flare_sim_run_for(w.sim, 300 * S);
    assert_int_equal(igd.maps, 2);
    assert_int_equal(w.c.mapped, 1);
    assert_int_equal(w.c.proto, FLARE_PORTMAP_UPNP);
    char s[128];
    flare_multiaddr_to_string(&w.c.ext, s, sizeof(s));
    assert_string_equal(s, "/ip4/203.0.113.1/tcp/4001");
    /* Renewed at half the lease, for the same external port. */
    flare_sim_run_for(w.sim, 301 * S);
    assert_int_equal(igd.maps, 3);
    assert_int_equal(w.c.renewed, 1);
    assert_int_equal(igd.last_port, 4001);
    /* A renewal that fails loses the mapping; the next attempt maps again. */
    igd.fail_next = 1;
    flare_sim_run_for(w.sim, 301 * S);
    assert_int_equal(w.c.lost, 1);
    assert_int_equal(flare_host_portmap_mappings(w.c.h, NULL, 0), 0);
    flare_sim_run_for(w.sim, 301 * S);
    assert_int_equal(w.c.mapped, 2);
    /* A request in flight at exit is cancelled; the mapping is deleted. */
    for (int i = 0; i < 40000 && !igd.pending; i++) /* until the next renewal is on its way */
        flare_sim_run_for(w.sim, 10 * MS);
    assert_true(igd.pending);
    assert_int_equal(igd.maps, 6); /* failed, mapped, renewed, failed renewal, mapped, this */
    flare_host_del(w.c.h);
    assert_int_equal(igd.cancelled, 1);
    assert_int_equal(igd.unmaps, 1);
    igd_ops.timer_del(igd.timer);
    flare_sim_del(w.sim);
}

static void test_bad_settings(void **state)
{
    world w;
    memset(&w, 0, sizeof(w));
    w.sim = flare_sim_new(1, NULL);
    make(&w, &w.c, flare_sim_internet(w.sim), "198.51.100.9", 1, NULL);
    flare_portmap_settings s;
    flare_portmap_settings_default(&s);
    s.struct_size--;
    assert_int_equal(flare_host_enable_portmap(w.c.h, &s), FLARE_ERR_INVALID_ARG);
    flare_portmap_settings_default(&s);
    s.enable_pcp = s.enable_natpmp = s.enable_upnp = 0;
    assert_int_equal(flare_host_enable_portmap(w.c.h, &s), FLARE_ERR_INVALID_ARG);
    flare_portmap_settings_default(&s);
    s.lifetime = 119;
    assert_int_equal(flare_host_enable_portmap(w.c.h, &s), FLARE_ERR_INVALID_ARG);
    /* A public node has nothing to map. */
    assert_int_equal(flare_host_enable_portmap(w.c.h, NULL), 0);
    flare_sim_run_for(w.sim, 5 * S);
    assert_int_equal(w.c.failed + w.c.mapped, 0);
    flare_host_del(w.c.h);

    /* A private node on a LAN without a gateway: "failed" (not found), from
     * the loop, never inside the call; retried later. */
    flare_sim_lan *lan = flare_sim_lan_new(w.sim, "isolated");
    pnode iso = {0};
    make(&w, &iso, lan, "10.9.0.2", 2, NULL);
    assert_int_equal(flare_host_enable_portmap(iso.h, NULL), 0);
    assert_int_equal(iso.failed, 0);
    flare_sim_run_for(w.sim, 1 * S);
    assert_int_equal(iso.failed, 1);
    flare_sim_run_for(w.sim, 301 * S);
    assert_int_equal(iso.failed, 2);
    assert_int_equal(iso.mapped, 0);
    flare_host_del(iso.h);
    flare_sim_del(w.sim);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pcp_symmetric_nat_becomes_public),
        cmocka_unit_test(test_natpmp_symmetric_nat_becomes_public),
        cmocka_unit_test(test_no_portmap_stays_private),
        cmocka_unit_test(test_renewal_and_reboot),
        cmocka_unit_test(test_hostile_garbage),
        cmocka_unit_test(test_hostile_oversized),
        cmocka_unit_test(test_hostile_wrong_nonce),
        cmocka_unit_test(test_hostile_liar),
        cmocka_unit_test(test_hostile_epoch_backwards),
        cmocka_unit_test(test_upnp_service),
        cmocka_unit_test(test_bad_settings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
