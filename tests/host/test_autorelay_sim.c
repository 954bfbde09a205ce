/* AutoRelay on the simulator: a private node B behind a NAT, connected to
 * public relays R1..R3, a relay RX that refuses every reservation and a
 * public peer P that is no relay, picks and keeps its relays by itself once
 * AutoNAT says it is private; a dialer A behind another NAT reaches B
 * through one of them. */
#include <stdlib.h>

#include "support/test.h"

#include "flare/host.h"
#include "flare/relay_server.h"
#include "flare/sim.h"

#define MS   FLARE_NS_PER_MS
#define S    FLARE_NS_PER_S
#define MAXE 256

enum { R1, R2, R3, RX, P, B, A, NNODES };

typedef struct ev_rec {
    flare_host_event_type type;
    char reason[24];
    flare_peerid peer;
    int error;
    flare_tstamp at;
} ev_rec;

typedef struct node {
    flare_sim_host *sh;
    flare_host *h;
    char ip[32];
    ev_rec ev[MAXE];
    int nev;
} node;

typedef struct world {
    flare_sim *sim;
    flare_sim_nat *nat_b;
    node n[NNODES];
} world;

static void on_event(flare_host *h, const flare_host_event *ev, void *user)
{
    node *n = user;
    if (n->nev >= MAXE)
        return;
    switch (ev->type) {
    case FLARE_HOST_EV_AUTORELAY:
    case FLARE_HOST_EV_RESERVATION_OK:
    case FLARE_HOST_EV_RESERVATION_FAILED:
    case FLARE_HOST_EV_RESERVATION_LOST:
        break;
    default:
        return;
    }
    ev_rec *r = &n->ev[n->nev++];
    memset(r, 0, sizeof(*r));
    r->type = ev->type;
    int ar = ev->type == FLARE_HOST_EV_AUTORELAY;
    const char *reason = ar ? ev->u.autorelay.reason : ev->u.reservation.status;
    const flare_peerid *peer = ar ? ev->u.autorelay.relay : ev->u.reservation.relay;
    if (reason)
        snprintf(r->reason, sizeof(r->reason), "%s", reason);
    if (peer)
        r->peer = *peer;
    r->error = ar ? ev->u.autorelay.error : ev->u.reservation.error;
    r->at = flare_io_now(flare_host_io(h));
    if (getenv("AUTORELAY_TRACE")) {
        char pid[FLARE_PEERID_STR_MAX] = "";
        if (peer)
            flare_peerid_to_string(peer, pid, sizeof(pid));
        fprintf(stderr, "%9.3f %s ev %d %s %s %s\n", r->at / 1e9, flare_sim_host_name(n->sh),
                ev->type, r->reason, pid + 40, r->error ? flare_strerror(r->error) : "");
    }
}

/* Events of type (and reason, if not NULL) about node `about` (-1: any). */
static int count(world *w, int who, flare_host_event_type type, const char *reason, int about)
{
    node *n = &w->n[who];
    int k = 0;
    for (int i = 0; i < n->nev; i++) {
        const ev_rec *r = &n->ev[i];
        if (r->type != type || (reason && strcmp(r->reason, reason) != 0))
            continue;
        if (about >= 0 && !flare_peerid_equal(&r->peer, flare_host_peerid(w->n[about].h)))
            continue;
        k++;
    }
    return k;
}

static int deny_all(void *user, const flare_peerid *peer, const flare_ipaddr *ip)
{
    (void)user;
    (void)peer;
    (void)ip;
    return 0;
}

static void make_host(world *w, int i, flare_sim_lan *lan, const char *ip,
                      const flare_host_settings *cfg)
{
    static const char *names[NNODES] = {"r1", "r2", "r3", "rx", "p", "b", "a"};
    node *n = &w->n[i];
    flare_host_settings c;
    flare_test_settings_default(&c);
    c.enable_holepunch = 0; /* AutoRelay alone */
    flare_test_host_spec sp = {.name = names[i],
                               .lan = lan,
                               .ip = ip,
                               .link = {.delay = 10 * MS},
                               .seed = {(uint8_t)(i + 1), 0x5a},
                               .cfg = cfg ? cfg : &c,
                               .on_event = on_event,
                               .user = n,
                               .listen_port = 4001};
    assert_int_equal(flare_test_host_make(w->sim, &sp, &n->sh, &n->h), 0);
    snprintf(n->ip, sizeof(n->ip), "%s", ip);
}

static void autorelay_cfg(flare_host_settings *c)
{
    flare_test_settings_default(c);
    c->enable_holepunch = 0;
    c->enable_autorelay = 1;
    c->autonat_boot_delay = 2 * S;
}

/* The public side: R1..R3 relay, RX refuses, P is no relay. b_kind: 0 = B
 * behind a NAT, 1 = B public, 2 = B behind a firewall (public address,
 * unsolicited connections dropped). */
static void world_init(world *w, uint64_t seed, const flare_host_settings *bcfg, int b_kind)
{
    memset(w, 0, sizeof(*w));
    w->sim = flare_sim_new(seed, NULL);
    flare_sim_lan *inet = flare_sim_internet(w->sim);
    static const char *ips[] = {"198.51.100.11", "198.51.100.12", "198.51.100.13", "198.51.100.14",
                                "198.51.100.15"};
    for (int i = R1; i <= P; i++)
        make_host(w, i, inet, ips[i], NULL);
    for (int i = R1; i <= R3; i++)
        assert_int_equal(flare_host_enable_relay_server(w->n[i].h, NULL), 0);
    flare_relay_server_settings rc;
    flare_relay_server_settings_default(&rc);
    rc.allow_reserve = deny_all;
    assert_int_equal(flare_host_enable_relay_server(w->n[RX].h, &rc), 0);
    flare_sim_nat_config nc;
    flare_sim_nat_config_default(&nc);
    flare_sim_lan *la = flare_sim_lan_new(w->sim, "lan-a");
    assert_non_null(flare_sim_nat_new(w->sim, "nat-a", inet, "203.0.113.1", la, "10.0.1.1", &nc));
    make_host(w, A, la, "10.0.1.2", NULL);
    if (b_kind == 1) {
        make_host(w, B, inet, "198.51.100.20", bcfg);
        return;
    }
    flare_sim_lan *lb = flare_sim_lan_new(w->sim, "lan-b");
    if (b_kind == 2) {
        nc.firewall_only = 1;
        w->nat_b = flare_sim_nat_new(w->sim, "fw-b", inet, "203.0.113.2", lb, "203.0.113.65", &nc);
        assert_non_null(w->nat_b);
        make_host(w, B, lb, "203.0.113.66", bcfg);
        return;
    }
    w->nat_b = flare_sim_nat_new(w->sim, "nat-b", inet, "203.0.113.2", lb, "10.0.2.1", &nc);
    assert_non_null(w->nat_b);
    make_host(w, B, lb, "10.0.2.2", bcfg);
}

static void world_free(world *w)
{
    for (int i = 0; i < NNODES; i++)
        flare_host_del(w->n[i].h);
    flare_sim_del(w->sim);
}

static void run_s(world *w, double s)
{
    flare_sim_run_for(w->sim, (flare_tstamp)(s * 1e9));
}

static void addr_of(world *w, int i, flare_multiaddr *ma)
{
    assert_int_equal(flare_test_tcp_addr(ma, w->n[i].ip, 4001, flare_host_peerid(w->n[i].h)), 0);
}

/* B dials the given nodes one second apart (so they are identified in
 * this order). */
static void connect_to(world *w, int who, const int *list, int n)
{
    for (int i = 0; i < n; i++) {
        flare_multiaddr ma;
        addr_of(w, list[i], &ma);
        assert_int_equal(flare_host_dial(w->n[who].h, &ma, NULL, NULL, NULL), 0);
        run_s(w, 1);
    }
}

static void wait_reach(world *w, int who, flare_reach_state want)
{
    for (int i = 0; i < 600 && flare_host_reachability(w->n[who].h, 4) != want; i++)
        run_s(w, 0.1);
    assert_int_equal(flare_host_reachability(w->n[who].h, 4), want);
}

/* 1 if B's AutoRelay holds exactly the relays in want. */
static int holds(world *w, const int *want, size_t n)
{
    flare_peerid got[8];
    size_t k = flare_host_autorelay_relays(w->n[B].h, got, 8);
    if (k != n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        int found = 0;
        for (size_t j = 0; j < k; j++)
            found |= flare_peerid_equal(&got[j], flare_host_peerid(w->n[want[i]].h));
        if (!found)
            return 0;
    }
    return 1;
}

static size_t reservations_at(world *w, int relay)
{
    return flare_host_relay_num_reservations(w->n[relay].h);
}

/* ---- scenarios ------------------------------------------------------------------------- */

/* Private: reserves on exactly two good relays (RX refuses and is held off,
 * P is no relay); R1 vanishes and R3 takes its place; RX is not asked
 * again within its backoff; A reaches B through an AutoRelay address.
 * Discovered relays are taken in random order, so B meets them in steps
 * that leave no choice: RX and R1 (both needed for two reservations), then
 * R2 (a slot is free), then R3 (none is). */
static void test_pick_replace_dial(void **state)
{
    (void)state;
    flare_host_settings c;
    autorelay_cfg(&c);
    world w;
    world_init(&w, 31, &c, 0);
    const int first[] = {RX, R1, P};
    connect_to(&w, B, first, 3);
    /* Nothing happens before AutoNAT's verdict. */
    assert_int_equal(count(&w, B, FLARE_HOST_EV_AUTORELAY, "candidate", -1), 0);
    wait_reach(&w, B, FLARE_REACH_PRIVATE);
    run_s(&w, 5);
    assert_int_equal(count(&w, B, FLARE_HOST_EV_AUTORELAY, "start", -1), 1);
    const int then[] = {R2};
    connect_to(&w, B, then, 1);
    run_s(&w, 5);
    const int spare[] = {R3};
    connect_to(&w, B, spare, 1);
    run_s(&w, 5);
    const int two[] = {R1, R2};
    assert_true(holds(&w, two, 2));
    assert_int_equal(reservations_at(&w, R1), 1);
    assert_int_equal(reservations_at(&w, R2), 1);
    assert_int_equal(reservations_at(&w, R3), 0);
    /* RX was tried, refused, and held off. */
    assert_int_equal(count(&w, B, FLARE_HOST_EV_AUTORELAY, "candidate", RX), 1);
    assert_int_equal(count(&w, B, FLARE_HOST_EV_RESERVATION_FAILED, NULL, RX), 1);
    assert_int_equal(count(&w, B, FLARE_HOST_EV_AUTORELAY, "backoff", RX), 1);
    assert_int_equal(count(&w, B, FLARE_HOST_EV_AUTORELAY, "candidate", P), 0);
    assert_int_equal(count(&w, B, FLARE_HOST_EV_AUTORELAY, "candidate", R3), 0);
    flare_multiaddr rel[8];
    assert_int_equal(flare_host_relay_addrs(w.n[B].h, rel, 8), 2);

    /* A dials B through one of its AutoRelay addresses. */
    flare_conn *got = NULL;
    assert_int_equal(flare_host_dial(w.n[A].h, &rel[0], NULL, NULL, NULL), 0);
    run_s(&w, 3);
    got = flare_host_conn_to(w.n[A].h, flare_host_peerid(w.n[B].h));
    assert_non_null(got);
    assert_true(flare_conn_is_limited(got));

    /* R1 vanishes: the reservation is lost, the retry fails, R3 replaces it. */
    flare_tstamp t_gone = flare_sim_now(w.sim);
    flare_host_del(w.n[R1].h);
    w.n[R1].h = NULL;
    run_s(&w, 30);
    flare_peerid r1_id;
    {
        uint8_t seed[32] = {R1 + 1, 0x5a};
        flare_privkey k;
        assert_int_equal(flare_privkey_from_seed(&k, seed), 0);
        assert_int_equal(flare_peerid_from_pubkey(&r1_id, &k.pub), 0);
    }
    int replaced = 0, lost = 0;
    for (int i = 0; i < w.n[B].nev; i++) {
        const ev_rec *r = &w.n[B].ev[i];
        if (!flare_peerid_equal(&r->peer, &r1_id))
            continue;
        replaced += r->type == FLARE_HOST_EV_AUTORELAY && strcmp(r->reason, "replaced") == 0;
        lost += r->type == FLARE_HOST_EV_RESERVATION_LOST;
        if (r->type == FLARE_HOST_EV_AUTORELAY && strcmp(r->reason, "replaced") == 0)
            assert_true(r->at - t_gone < 15 * S); /* one retry, not a long wait */
    }
    assert_int_equal(lost, 1);
    assert_int_equal(replaced, 1);
    const int after[] = {R2, R3};
    assert_true(holds(&w, after, 2));
    assert_int_equal(reservations_at(&w, R3), 1);
    assert_int_equal(flare_host_relay_addrs(w.n[B].h, rel, 8), 2);
    /* A few minutes on: stable, and RX (in backoff for 1 h) never asked again. */
    run_s(&w, 180);
    assert_true(holds(&w, after, 2));
    assert_int_equal(count(&w, B, FLARE_HOST_EV_RESERVATION_FAILED, NULL, RX), 1);
    assert_int_equal(count(&w, B, FLARE_HOST_EV_AUTORELAY, "candidate", RX), 1);
    world_free(&w);
}

/* A refusing relay is asked again once its backoff is over (a slot is free:
 * only RX and R2 are known and two reservations are wanted). */
static void test_backoff_expires(void **state)
{
    (void)state;
    flare_host_settings c;
    autorelay_cfg(&c);
    c.autorelay_backoff = 60 * S;
    world w;
    world_init(&w, 32, &c, 0);
    const int order[] = {RX, R2, P};
    connect_to(&w, B, order, 3);
    wait_reach(&w, B, FLARE_REACH_PRIVATE);
    run_s(&w, 5);
    const int one[] = {R2};
    assert_true(holds(&w, one, 1));
    assert_int_equal(count(&w, B, FLARE_HOST_EV_RESERVATION_FAILED, NULL, RX), 1);
    flare_tstamp first = 0;
    for (int i = 0; i < w.n[B].nev; i++)
        if (w.n[B].ev[i].type == FLARE_HOST_EV_AUTORELAY &&
            strcmp(w.n[B].ev[i].reason, "backoff") == 0 && !first)
            first = w.n[B].ev[i].at;
    assert_true(first > 0);
    /* Not before the backoff... */
    flare_sim_run_until(w.sim, first + 55 * S);
    assert_int_equal(count(&w, B, FLARE_HOST_EV_RESERVATION_FAILED, NULL, RX), 1);
    /* ...but right after it. */
    flare_sim_run_until(w.sim, first + 62 * S);
    assert_int_equal(count(&w, B, FLARE_HOST_EV_RESERVATION_FAILED, NULL, RX), 2);
    assert_int_equal(count(&w, B, FLARE_HOST_EV_AUTORELAY, "backoff", RX), 2);
    assert_true(holds(&w, one, 1));
    /* A newly identified relay fills the free slot at once. */
    const int r3[] = {R3};
    connect_to(&w, B, r3, 1);
    const int two[] = {R2, R3};
    assert_true(holds(&w, two, 2));
    flare_multiaddr rel[8];
    assert_int_equal(flare_host_relay_addrs(w.n[B].h, rel, 8), 2);
    /* The application takes R2 over: AutoRelay's slot is free again and
     * the next relay to show up gets it; R2's reservation lives on. */
    flare_multiaddr ma;
    addr_of(&w, R2, &ma);
    assert_int_equal(flare_host_relay_reserve(w.n[B].h, &ma), 0);
    assert_int_equal(flare_host_relay_reserve(w.n[B].h, &ma), FLARE_ERR_EXISTS);
    run_s(&w, 1);
    assert_true(holds(&w, r3, 1));
    const int r1[] = {R1};
    connect_to(&w, B, r1, 1);
    const int r13[] = {R1, R3};
    assert_true(holds(&w, r13, 2));
    assert_int_equal(flare_host_relay_addrs(w.n[B].h, rel, 8), 3);
    assert_int_equal(reservations_at(&w, R2), 1);
    world_free(&w);
}

/* Discovered relays are taken in random order, not in the order they were
 * identified: over eight seeds, B (one reservation wanted, always meeting
 * R1, R2, R3 in this order) picks each of them at least once. */
static void test_random_pick(void **state)
{
    (void)state;
    int picked[NNODES] = {0};
    for (uint64_t seed = 41; seed < 49; seed++) {
        flare_host_settings c;
        autorelay_cfg(&c);
        c.autorelay_num = 1;
        world w;
        world_init(&w, seed, &c, 0);
        const int order[] = {R1, R2, R3, P};
        connect_to(&w, B, order, 4);
        wait_reach(&w, B, FLARE_REACH_PRIVATE);
        run_s(&w, 5);
        assert_int_equal(count(&w, B, FLARE_HOST_EV_AUTORELAY, "candidate", -1), 1);
        for (int r = R1; r <= R3; r++)
            picked[r] += (int)reservations_at(&w, r);
        world_free(&w);
    }
    assert_int_equal(picked[R1] + picked[R2] + picked[R3], 8);
    for (int r = R1; r <= R3; r++)
        assert_true(picked[r] >= 1);
}

/* A static relay is preferred over discovered ones, and dialed by itself. */
static void test_static_first(void **state)
{
    (void)state;
    flare_host_settings c;
    autorelay_cfg(&c);
    c.autorelay_num = 1;
    world w;
    world_init(&w, 33, &c, 0);
    flare_multiaddr ma;
    addr_of(&w, R3, &ma);
    assert_int_equal(flare_host_autorelay_add_static(w.n[B].h, &ma), 0);
    assert_int_equal(flare_host_autorelay_add_static(w.n[B].h, &ma), FLARE_ERR_EXISTS);
    const int order[] = {R1, R2, P};
    connect_to(&w, B, order, 3);
    assert_null(flare_host_conn_to(w.n[B].h, flare_host_peerid(w.n[R3].h)));
    wait_reach(&w, B, FLARE_REACH_PRIVATE);
    run_s(&w, 5);
    const int st[] = {R3};
    assert_true(holds(&w, st, 1));
    assert_int_equal(reservations_at(&w, R3), 1);
    assert_int_equal(reservations_at(&w, R1), 0);
    assert_int_equal(count(&w, B, FLARE_HOST_EV_AUTORELAY, "candidate", -1), 1);
    world_free(&w);
}

/* A static relay nobody answers at: two failed attempts (no answer, so not
 * a refusal) put it in backoff and a discovered relay takes the slot. */
static void test_static_unreachable(void **state)
{
    (void)state;
    flare_host_settings c;
    autorelay_cfg(&c);
    c.autorelay_num = 1;
    world w;
    world_init(&w, 37, &c, 0);
    flare_multiaddr ma;
    assert_int_equal(flare_multiaddr_parse(&ma, "/ip4/198.51.100.99/tcp/4001"), 0);
    assert_int_equal(flare_multiaddr_with_peerid(&ma, flare_host_peerid(w.n[A].h)), 0);
    assert_int_equal(flare_host_autorelay_add_static(w.n[B].h, &ma), 0);
    const int order[] = {R1, P};
    connect_to(&w, B, order, 2);
    wait_reach(&w, B, FLARE_REACH_PRIVATE);
    run_s(&w, 1);
    assert_int_equal(count(&w, B, FLARE_HOST_EV_AUTORELAY, "candidate", A), 1);
    assert_int_equal(count(&w, B, FLARE_HOST_EV_AUTORELAY, "candidate", R1), 0);
    run_s(&w, 40);
    assert_int_equal(count(&w, B, FLARE_HOST_EV_RESERVATION_FAILED, NULL, A), 2);
    assert_int_equal(count(&w, B, FLARE_HOST_EV_AUTORELAY, "backoff", A), 1);
    const int one[] = {R1};
    assert_true(holds(&w, one, 1));
    world_free(&w);
}

/* A public node with AutoRelay on reserves nothing. */
static void test_public_none(void **state)
{
    (void)state;
    flare_host_settings c;
    autorelay_cfg(&c);
    world w;
    world_init(&w, 34, &c, 1);
    const int order[] = {R1, R2, R3, P};
    connect_to(&w, B, order, 4);
    wait_reach(&w, B, FLARE_REACH_PUBLIC);
    run_s(&w, 60);
    assert_int_equal(count(&w, B, FLARE_HOST_EV_AUTORELAY, NULL, -1), 0);
    assert_int_equal(count(&w, B, FLARE_HOST_EV_RESERVATION_OK, NULL, -1), 0);
    flare_multiaddr rel[4];
    assert_int_equal(flare_host_relay_addrs(w.n[B].h, rel, 4), 0);
    for (int i = R1; i <= R3; i++)
        assert_int_equal(reservations_at(&w, i), 0);
    world_free(&w);
}

/* Private, then public (the firewall opens): AutoRelay's reservations are
 * dropped, the application's own (flare_host_relay_reserve) is kept. */
static void test_dropped_when_public(void **state)
{
    (void)state;
    flare_host_settings c;
    autorelay_cfg(&c);
    c.autonat_retry_interval = 4 * S;
    c.autonat_refresh_interval = 4 * S;
    world w;
    world_init(&w, 35, &c, 2);
    flare_multiaddr ma;
    addr_of(&w, R3, &ma);
    assert_int_equal(flare_host_relay_reserve(w.n[B].h, &ma), 0);
    const int order[] = {R3, R1, R2, P};
    connect_to(&w, B, order, 4);
    wait_reach(&w, B, FLARE_REACH_PRIVATE);
    run_s(&w, 5);
    const int two[] = {R1, R2}; /* R3 is the application's */
    assert_true(holds(&w, two, 2));
    flare_multiaddr rel[8];
    assert_int_equal(flare_host_relay_addrs(w.n[B].h, rel, 8), 3);
    flare_sim_nat_config nc;
    flare_sim_nat_config_default(&nc);
    nc.firewall_only = 1;
    nc.filtering = FLARE_SIM_EI; /* anyone may come in now */
    flare_sim_nat_set_config(w.nat_b, &nc);
    wait_reach(&w, B, FLARE_REACH_PUBLIC);
    run_s(&w, 1);
    assert_int_equal(count(&w, B, FLARE_HOST_EV_AUTORELAY, "dropped-public", R1), 1);
    assert_int_equal(count(&w, B, FLARE_HOST_EV_AUTORELAY, "dropped-public", R2), 1);
    assert_int_equal(count(&w, B, FLARE_HOST_EV_AUTORELAY, "stop", -1), 1);
    flare_peerid ids[4];
    assert_int_equal(flare_host_autorelay_relays(w.n[B].h, ids, 4), 0);
    assert_int_equal(flare_host_relay_addrs(w.n[B].h, rel, 8), 1);
    /* Later refreshes keep it so; the application's reservation lives on. */
    run_s(&w, 60);
    assert_int_equal(flare_host_relay_addrs(w.n[B].h, rel, 8), 1);
    assert_int_equal(count(&w, B, FLARE_HOST_EV_AUTORELAY, "candidate", -1), 2);
    world_free(&w);
}

/* Argument checks. */
static void test_api(void **state)
{
    (void)state;
    world w;
    world_init(&w, 36, NULL, 0);
    flare_multiaddr ma;
    addr_of(&w, R1, &ma);
    /* Off by default. */
    assert_int_equal(flare_host_autorelay_add_static(w.n[B].h, &ma), FLARE_ERR_STATE);
    flare_host_settings c;
    autorelay_cfg(&c);
    flare_host *h;
    uint8_t seed[32] = {99};
    flare_privkey k;
    assert_int_equal(flare_privkey_from_seed(&k, seed), 0);
    assert_int_equal(flare_host_new(&h, flare_sim_host_io(w.n[B].sh), &k, &c, NULL), 0);
    flare_multiaddr bare;
    assert_int_equal(flare_multiaddr_parse(&bare, "/ip4/198.51.100.11/tcp/4001"), 0);
    assert_int_equal(flare_host_autorelay_add_static(h, &bare), FLARE_ERR_INVALID_ARG);
    flare_multiaddr self = bare;
    assert_int_equal(flare_multiaddr_with_peerid(&self, flare_host_peerid(h)), 0);
    assert_int_equal(flare_host_autorelay_add_static(h, &self), FLARE_ERR_INVALID_ARG);
    flare_multiaddr circ;
    assert_int_equal(flare_multiaddr_make_relayed(&circ, &bare, flare_host_peerid(w.n[R1].h),
                                                  flare_host_peerid(w.n[R2].h)),
                     0);
    assert_int_equal(flare_host_autorelay_add_static(h, &circ), FLARE_ERR_INVALID_ARG);
    assert_int_equal(flare_host_autorelay_add_static(h, &ma), 0);
    flare_peerid ids[4];
    assert_int_equal(flare_host_autorelay_relays(h, ids, 4), 0);
    flare_host_settings d;
    flare_host_settings_default(&d);
    assert_int_equal(d.enable_autorelay, 0);
    assert_int_equal(d.autorelay_num, 2);
    assert_true(d.autorelay_backoff == 3600 * S);
    flare_host_del(h);
    world_free(&w);
}

/* A hop server that answers RESERVE with a refusal but keeps its side of
 * the stream open (the FIN comes later, as over a real network in the NAT
 * lab): the stream still belongs to B's relay client after AutoRelay let the
 * relay go. Found by lab/scenarios/autorelay.sh under ASan. */
static void slow_refuse_data(flare_stream *s, const uint8_t *d, size_t len, void *user)
{
    flare_stream **held = user;
    (void)d;
    (void)len;
    flare_relay_msg m;
    flare_relay_msg_init(&m, FLARE_RELAY_HOP_STATUS);
    m.has_status = 1;
    m.status = FLARE_RELAY_STATUS_RESERVATION_REFUSED;
    flare_buf out;
    flare_buf_init(&out, NULL);
    assert_int_equal(flare_relay_hop_encode(&m, &out), 0);
    assert_true(flare_stream_write(s, out.base, out.len) >= 0);
    flare_buf_free(&out);
    *held = s;
}

static void slow_refuse_close(flare_stream *s, int err, void *user)
{
    flare_stream **held = user;
    (void)s;
    (void)err;
    *held = NULL;
}

static void test_refusal_stream_outlives_rsvp(void **state)
{
    (void)state;
    flare_host_settings c;
    autorelay_cfg(&c);
    world w;
    world_init(&w, 37, &c, 0);
    static const flare_stream_cbs slow = {.on_data = slow_refuse_data,
                                          .on_close = slow_refuse_close};
    flare_stream *held = NULL;
    assert_int_equal(flare_host_set_handler(w.n[P].h, FLARE_RELAY_HOP_PROTOCOL, &slow, &held, 0),
                     0);
    const int order[] = {P, R1};
    connect_to(&w, B, order, 2);
    wait_reach(&w, B, FLARE_REACH_PRIVATE);
    run_s(&w, 3);
    assert_int_equal(count(&w, B, FLARE_HOST_EV_AUTORELAY, "candidate", P), 1);
    assert_int_equal(count(&w, B, FLARE_HOST_EV_AUTORELAY, "backoff", P), 1);
    assert_non_null(held); /* P's side still open: B's stream is not gone */
    /* Now the stream ends (P closes its side): B must not touch the freed
     * reservation state (ASan) nor report anything about P. */
    int before = w.n[B].nev;
    assert_int_equal(flare_stream_close_write(held), 0);
    run_s(&w, 2);
    for (int i = before; i < w.n[B].nev; i++)
        assert_false(flare_peerid_equal(&w.n[B].ev[i].peer, flare_host_peerid(w.n[P].h)));
    assert_int_equal(count(&w, B, FLARE_HOST_EV_AUTORELAY, "candidate", P), 1);
    const int one[] = {R1};
    assert_true(holds(&w, one, 1));
    world_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pick_replace_dial),
        cmocka_unit_test(test_backoff_expires),
        cmocka_unit_test(test_random_pick),
        cmocka_unit_test(test_static_first),
        cmocka_unit_test(test_public_none),
        cmocka_unit_test(test_dropped_when_public),
        cmocka_unit_test(test_static_unreachable),
        cmocka_unit_test(test_api),
        cmocka_unit_test(test_refusal_stream_outlives_rsvp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
