/* The connection manager on the simulator: above high water it trims to
 * low water from a timer, never before the grace period, never protected
 * peers, idle connections before busy ones; flare protects the relays with
 * our reservations and the peers it hole punches with. */
#include "support/test.h"

#include "flare/host.h"
#include "flare/sim_world.h"

#define MS FLARE_NS_PER_MS
#define S  FLARE_NS_PER_S
#define NC 10

typedef struct cworld {
    flare_sim *sim;
    flare_sim_host *ssh, *csh[NC];
    flare_host *s, *c[NC];
} cworld;

static const flare_stream_cbs hold_cbs = {0};

static void setup(cworld *w, size_t low, size_t high, flare_tstamp grace)
{
    memset(w, 0, sizeof(*w));
    w->sim = flare_sim_new(1, NULL);
    assert_non_null(w->sim);
    flare_host_settings cfg;
    flare_test_settings_default(&cfg);
    cfg.conn_low_water = low;
    cfg.conn_high_water = high;
    cfg.conn_grace_period = grace;
    cfg.enable_autonat_server = cfg.enable_autonat_client = 0; /* no dial-backs */
    flare_test_host_spec sp = {.name = "S",
                               .lan = flare_sim_internet(w->sim),
                               .ip = "198.51.100.1",
                               .link = {.delay = 5 * MS},
                               .seed = {1},
                               .cfg = &cfg,
                               .listen_port = 4001};
    assert_int_equal(flare_test_host_make(w->sim, &sp, &w->ssh, &w->s), 0);
    assert_int_equal(flare_host_set_handler(w->s, "/hold/1", &hold_cbs, NULL, 0), 0);
    for (int i = 0; i < NC; i++) {
        char ip[32];
        snprintf(ip, sizeof(ip), "198.51.100.%d", i + 10);
        flare_test_host_spec c = {.name = "C",
                                  .lan = flare_sim_internet(w->sim),
                                  .ip = ip,
                                  .link = {.delay = 5 * MS},
                                  .seed = {(uint8_t)(20 + i)}};
        assert_int_equal(flare_test_host_make(w->sim, &c, &w->csh[i], &w->c[i]), 0);
    }
}

static void teardown(cworld *w)
{
    flare_host_del(w->s);
    for (int i = 0; i < NC; i++)
        flare_host_del(w->c[i]);
    flare_sim_del(w->sim);
}

static void connect_all(cworld *w)
{
    flare_multiaddr ma;
    assert_int_equal(flare_test_tcp_addr(&ma, "198.51.100.1", 4001, flare_host_peerid(w->s)), 0);
    for (int i = 0; i < NC; i++)
        assert_int_equal(flare_host_dial(w->c[i], &ma, NULL, NULL, NULL), 0);
    flare_test_run_ms(w->sim, 500);
    assert_int_equal(flare_host_num_conns(w->s), NC);
}

static int connected(cworld *w, int i)
{
    return flare_host_conn_to(w->s, flare_host_peerid(w->c[i])) != NULL;
}

static void test_trim_after_grace(void **state)
{
    (void)state;
    cworld w;
    setup(&w, 4, 6, 2 * S);
    connect_all(&w);
    /* Above high water, but all are young. */
    flare_test_run_ms(w.sim, 1000);
    assert_int_equal(flare_host_num_conns(w.s), NC);
    assert_int_equal(flare_host_connmgr_trimmed(w.s), 0);
    /* Once of age: down to low water. */
    flare_test_run_ms(w.sim, 2000);
    assert_int_equal(flare_host_num_conns(w.s), 4);
    assert_int_equal(flare_host_connmgr_trimmed(w.s), NC - 4);
    /* The clients saw graceful closes. */
    int gone = 0;
    for (int i = 0; i < NC; i++)
        gone += flare_host_num_conns(w.c[i]) == 0;
    assert_int_equal(gone, NC - 4);
    teardown(&w);
}

static void test_protected_and_busy_kept(void **state)
{
    (void)state;
    cworld w;
    setup(&w, 3, 5, 1 * S);
    /* c[0] protected (by S, before it even connects); c[1] and c[2] keep a
     * stream open. */
    assert_int_equal(flare_host_protect_peer(w.s, flare_host_peerid(w.c[0]), "app", 1), 0);
    assert_true(flare_host_is_protected(w.s, flare_host_peerid(w.c[0]), NULL));
    assert_true(flare_host_is_protected(w.s, flare_host_peerid(w.c[0]), "app"));
    assert_false(flare_host_is_protected(w.s, flare_host_peerid(w.c[0]), "other"));
    connect_all(&w);
    flare_stream *st;
    for (int i = 1; i <= 2; i++)
        assert_int_equal(flare_host_new_stream(w.c[i], flare_host_peerid(w.s), "/hold/1", &hold_cbs,
                                               NULL, 0, &st),
                         0);
    flare_test_run_ms(w.sim, 3000);
    assert_int_equal(flare_host_num_conns(w.s), 3);
    assert_true(connected(&w, 0));
    assert_true(connected(&w, 1));
    assert_true(connected(&w, 2));
    /* Unprotected, c[0] is idle and goes at the next trim; the busy ones
     * only go to get under high water, the young ones not at all. */
    assert_int_equal(flare_host_protect_peer(w.s, flare_host_peerid(w.c[0]), "app", 0), 0);
    assert_false(flare_host_is_protected(w.s, flare_host_peerid(w.c[0]), NULL));
    flare_multiaddr ma;
    assert_int_equal(flare_test_tcp_addr(&ma, "198.51.100.1", 4001, flare_host_peerid(w.s)), 0);
    for (int i = 3; i < 6; i++) /* back above high water */
        flare_host_dial(w.c[i], &ma, NULL, NULL, NULL);
    flare_test_run_ms(w.sim, 3000);
    assert_int_equal(flare_host_num_conns(w.s), 5);
    assert_false(connected(&w, 0));
    assert_true(connected(&w, 1));
    assert_true(connected(&w, 2));
    teardown(&w);
}

static void test_off_and_bad_args(void **state)
{
    (void)state;
    cworld w;
    setup(&w, 1, 0, 0); /* high water 0: never trim */
    connect_all(&w);
    flare_test_run_ms(w.sim, 3000);
    assert_int_equal(flare_host_num_conns(w.s), NC);
    const flare_peerid *p = flare_host_peerid(w.c[0]);
    flare_peerid empty = {0};
    assert_int_equal(flare_host_protect_peer(w.s, &empty, "x", 1), FLARE_ERR_INVALID_ARG);
    assert_int_equal(flare_host_protect_peer(w.s, p, "", 1), FLARE_ERR_INVALID_ARG);
    char longtag[FLARE_CONNMGR_TAG_MAX + 1];
    memset(longtag, 'a', sizeof(longtag) - 1);
    longtag[sizeof(longtag) - 1] = 0;
    assert_int_equal(flare_host_protect_peer(w.s, p, longtag, 1), FLARE_ERR_INVALID_ARG);
    for (int i = 0; i < FLARE_CONNMGR_MAX_TAGS; i++) {
        char t[8];
        snprintf(t, sizeof(t), "t%d", i);
        assert_int_equal(flare_host_protect_peer(w.s, p, t, 1), 0);
        assert_int_equal(flare_host_protect_peer(w.s, p, t, 1), 0); /* idempotent */
    }
    assert_int_equal(flare_host_protect_peer(w.s, p, "one-more", 1), FLARE_ERR_LIMIT);
    assert_int_equal(flare_host_protect_peer(w.s, p, "absent", 0), 0);
    teardown(&w);
}

/* Idle connections go least recently used first: those a lookup used once,
 * long ago, before the ones streams ran on lately; a protected one and one
 * carrying a stream stay. Clients connect 100 ms apart, so by age the first
 * ones would go first. */
static void test_least_recently_used_first(void **state)
{
    (void)state;
    cworld w;
    setup(&w, 8, 8, 500 * MS);
    assert_int_equal(flare_host_protect_peer(w.s, flare_host_peerid(w.c[4]), "relay", 1), 0);
    flare_multiaddr ma;
    assert_int_equal(flare_test_tcp_addr(&ma, "198.51.100.1", 4001, flare_host_peerid(w.s)), 0);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(flare_host_dial(w.c[i], &ma, NULL, NULL, NULL), 0);
        flare_test_run_ms(w.sim, 100);
    }
    flare_test_run_ms(w.sim, 500);
    assert_int_equal(flare_host_num_conns(w.s), 8);
    /* The oldest four run a short exchange; c[5] keeps a stream open. */
    flare_stream *st[4], *held;
    for (int i = 0; i < 4; i++)
        assert_int_equal(flare_host_new_stream(w.c[i], flare_host_peerid(w.s), "/hold/1", &hold_cbs,
                                               NULL, 0, &st[i]),
                         0);
    assert_int_equal(
        flare_host_new_stream(w.c[5], flare_host_peerid(w.s), "/hold/1", &hold_cbs, NULL, 0, &held),
        0);
    flare_test_run_ms(w.sim, 300);
    for (int i = 0; i < 4; i++)
        flare_stream_reset(st[i]);
    flare_test_run_ms(w.sim, 300);
    /* Two more, one at a time above high water: each costs the least
     * recently used idle connection, c[6] then c[7] (idle since they
     * opened), not the oldest ones. */
    for (int i = 8; i < NC; i++) {
        assert_int_equal(flare_host_dial(w.c[i], &ma, NULL, NULL, NULL), 0);
        flare_test_run_ms(w.sim, 1500);
    }
    assert_int_equal(flare_host_num_conns(w.s), 8);
    assert_int_equal(flare_host_connmgr_trimmed(w.s), 2);
    for (int i = 0; i < NC; i++)
        assert_int_equal(connected(&w, i), i != 6 && i != 7);
    teardown(&w);
}

/* A world with a relay and a hole punch under a tight connection manager
 * (high water 2: A and B reach 3 connections while punching): B protects
 * its relay, both protect the peer and the relay carrying the relayed
 * connection while punching, so the punch succeeds and the reservation
 * stays; afterwards the peer is no longer protected. */
static void test_relay_and_punch_protected(void **state)
{
    (void)state;
    flare_sim_world_settings p;
    flare_sim_world_settings_default(&p);
    flare_host_settings cfg;
    flare_test_settings_default(&cfg);
    cfg.conn_low_water = 1;
    cfg.conn_high_water = 2;
    cfg.conn_grace_period = 0;
    p.host = &cfg;
    flare_sim_world w;
    assert_int_equal(flare_sim_world_setup(&w, &p), 0);
    const flare_peerid *r = flare_host_peerid(w.r.h), *a = flare_host_peerid(w.a.h);
    const flare_peerid *b = flare_host_peerid(w.b.h);
    assert_true(flare_host_is_protected(w.b.h, r, "relay-reservation"));
    int b_prot = 0, a_prot = 0, a_prot_r = 0;
    for (int i = 0; i < 300 && !w.b.punch_done; i++) {
        flare_test_run_ms(w.sim, 10);
        b_prot |= flare_host_is_protected(w.b.h, a, "holepunch");
        a_prot |= flare_host_is_protected(w.a.h, b, "holepunch");
        a_prot_r |= flare_host_is_protected(w.a.h, r, "holepunch");
    }
    assert_true(b_prot && a_prot && a_prot_r);
    flare_sim_world_run_punch(&w, 30 * S);
    assert_int_equal(w.b.punch_done, 1);
    assert_int_equal(w.b.punch_err, 0);
    assert_true(flare_sim_world_direct(&w));
    flare_test_run_ms(w.sim, 5000);
    assert_false(flare_host_is_protected(w.b.h, a, NULL));
    assert_false(flare_host_is_protected(w.a.h, r, NULL));
    assert_true(flare_host_is_protected(w.b.h, r, NULL));
    assert_non_null(flare_host_conn_to(w.b.h, r));
    assert_int_equal(w.b.rsv_lost, 0);
    flare_sim_world_free(&w);
}

/* Under a tight connection manager (high water 1) a relay keeps the
 * client holding a reservation and the one whose connection carries a
 * circuit, and the clients keep the relay connections carrying their
 * relayed one. */
static void test_relay_circuit_kept(void **state)
{
    (void)state;
    flare_sim_world_settings p;
    flare_sim_world_settings_default(&p);
    flare_host_settings cfg;
    flare_test_settings_default(&cfg);
    cfg.conn_low_water = 0;
    cfg.conn_high_water = 1;
    cfg.conn_grace_period = 1 * S; /* time to open the stream */
    cfg.enable_holepunch = 0;      /* the relayed connection stays relayed */
    p.host = &cfg;
    flare_sim_world w;
    assert_int_equal(flare_sim_world_build(&w, &p), 0);
    assert_int_equal(
        flare_host_set_handler(w.b.h, "/hold/1", &hold_cbs, NULL, FLARE_HANDLER_ALLOW_LIMITED), 0);
    flare_multiaddr rma;
    flare_sim_world_relay_addr(&w, &rma);
    assert_int_equal(flare_host_relay_reserve(w.b.h, &rma), 0);
    for (int i = 0; i < 100 && !w.b.rsv_ok; i++)
        flare_test_run_ms(w.sim, 100);
    assert_true(w.b.rsv_ok);
    /* The relayed connection itself is the application's to protect. */
    flare_host_protect_peer(w.a.h, flare_host_peerid(w.b.h), "app", 1);
    flare_host_protect_peer(w.b.h, flare_host_peerid(w.a.h), "app", 1);
    flare_test_dial d = {0};
    assert_int_equal(flare_host_dial(w.a.h, &w.b.relayed, NULL, flare_test_dial_cb, &d), 0);
    for (int i = 0; i < 100 && !d.calls; i++)
        flare_test_run_ms(w.sim, 100);
    assert_int_equal(d.status, 0);
    flare_stream *st;
    assert_int_equal(
        flare_conn_new_stream(d.conn, "/hold/1", &hold_cbs, NULL, FLARE_STREAM_ALLOW_LIMITED, &st),
        0);
    flare_test_run_ms(w.sim, 5000);
    flare_conn *c = flare_host_conn_to(w.a.h, flare_host_peerid(w.b.h));
    assert_non_null(c);
    assert_true(flare_conn_is_limited(c));
    assert_int_equal(flare_host_num_conns(w.r.h), 2);
    assert_int_equal(w.b.rsv_lost, 0);
    flare_sim_world_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trim_after_grace),   cmocka_unit_test(test_protected_and_busy_kept),
        cmocka_unit_test(test_off_and_bad_args),   cmocka_unit_test(test_relay_and_punch_protected),
        cmocka_unit_test(test_relay_circuit_kept), cmocka_unit_test(test_least_recently_used_first),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
