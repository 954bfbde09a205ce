/* flare_host_connect on the simulator: the peerstore's addresses are dialed
 * best first (public before private, relayed last), a new attempt every
 * 250 ms while earlier ones hang, at once after a failure; one callback. */
#include "support/test.h"

#include "flare/host.h"
#include "flare/sim_world.h"

#define MS FLARE_NS_PER_MS
#define S  FLARE_NS_PER_S

typedef struct cnode {
    flare_sim_host *sh;
    flare_host *h;
} cnode;

typedef struct cworld {
    flare_sim *sim;
    cnode a, b; /* A (198.51.100.30) dials B (listens on 198.51.100.20:4001) */
    flare_test_dial d;
    flare_tstamp t0, t_done;
} cworld;

static void make(cworld *w, cnode *n, const char *name, const char *ip, uint8_t seed, int port,
                 long delay_ms)
{
    flare_test_host_spec sp = {.name = name,
                               .lan = flare_sim_internet(w->sim),
                               .ip = ip,
                               .link = {.delay = delay_ms * MS},
                               .seed = {seed},
                               .listen_port = port};
    assert_int_equal(flare_test_host_make(w->sim, &sp, &n->sh, &n->h), 0);
}

/* B's link delays each packet by b_delay_ms, A's by 5 ms. */
static void setup_delay(cworld *w, long b_delay_ms)
{
    memset(w, 0, sizeof(*w));
    w->sim = flare_sim_new(1, NULL);
    assert_non_null(w->sim);
    make(w, &w->b, "B", "198.51.100.20", 2, 4001, b_delay_ms);
    make(w, &w->a, "A", "198.51.100.30", 1, 0, 5);
}

static void setup(cworld *w)
{
    setup_delay(w, 5);
}

static void teardown(cworld *w)
{
    flare_host_del(w->a.h);
    flare_host_del(w->b.h);
    flare_sim_del(w->sim);
}

/* B's addresses in A's peerstore, in this order. */
static void add_addr(cworld *w, const char *ip, int port)
{
    flare_multiaddr ma;
    assert_int_equal(flare_test_tcp_addr(&ma, ip, port, NULL), 0);
    assert_int_equal(flare_host_add_addr(w->a.h, flare_host_peerid(w->b.h), &ma, 60 * S), 0);
}

static void connect_cb(flare_host *h, flare_conn *c, int status, void *user)
{
    cworld *w = user;
    flare_test_dial_cb(h, c, status, &w->d);
    w->t_done = flare_sim_now(w->sim);
}

static void connect_run(cworld *w, long ms)
{
    w->t0 = flare_sim_now(w->sim);
    assert_int_equal(flare_host_connect(w->a.h, flare_host_peerid(w->b.h), NULL, connect_cb, w), 0);
    assert_int_equal(w->d.calls, 0); /* never from inside the call */
    flare_test_run_ms(w->sim, ms);
}

static int remote_is(const flare_conn *c, const char *ip, int port)
{
    flare_multiaddr want;
    flare_test_tcp_addr(&want, ip, port, NULL);
    flare_multiaddr got = *flare_conn_remote_addr(c);
    flare_multiaddr_decapsulate(&got, FLARE_MA_P2P);
    return flare_multiaddr_equal(&got, &want);
}

/* A fresh world where A connects to B's two addresses, in this order. */
static void connect_two(cworld *w, const char *ip1, int port1, const char *ip2, int port2, long ms)
{
    setup(w);
    add_addr(w, ip1, port1);
    add_addr(w, ip2, port2);
    connect_run(w, ms);
}

/* One callback, a success, over ip:port. */
static void assert_connected_to(const cworld *w, const char *ip, int port)
{
    assert_int_equal(w->d.calls, 1);
    assert_int_equal(w->d.status, 0);
    assert_true(remote_is(w->d.conn, ip, port));
}

/* The first address leads nowhere (its SYNs are lost): the second one is
 * tried 250 ms later instead of after the 10 s dial timeout. */
static void test_stagger_past_a_silent_address(void **state)
{
    (void)state;
    cworld w;
    connect_two(&w, "198.51.100.99", 4001, "198.51.100.20", 4001, 2000);
    assert_connected_to(&w, "198.51.100.20", 4001);
    flare_tstamp took = w.t_done - w.t0;
    assert_true(took >= 250 * MS);
    assert_true(took < 400 * MS);
    flare_test_run_ms(w.sim, 12000); /* the silent attempt times out: no second callback */
    assert_int_equal(w.d.calls, 1);
    assert_non_null(flare_host_conn_to(w.a.h, flare_host_peerid(w.b.h)));
    teardown(&w);
}

/* A private address listed first is tried after the public one. */
static void test_public_before_private(void **state)
{
    (void)state;
    cworld w;
    connect_two(&w, "10.9.9.9", 4001, "198.51.100.20", 4001, 1000);
    assert_connected_to(&w, "198.51.100.20", 4001);
    assert_true(w.t_done - w.t0 < 250 * MS); /* no stagger: it went first */
    teardown(&w);
}

/* Refused at once (no listener): the next attempt starts without waiting;
 * when all fail the caller hears one error. */
static void test_failures_move_on_then_one_error(void **state)
{
    (void)state;
    cworld w;
    connect_two(&w, "198.51.100.20", 4002, "198.51.100.20", 4003, 1000);
    assert_int_equal(w.d.calls, 1);
    assert_true(w.d.status < 0);
    assert_null(w.d.conn);
    assert_true(w.t_done - w.t0 < 250 * MS);
    teardown(&w);

    connect_two(&w, "198.51.100.20", 4002, "198.51.100.20", 4001, 1000);
    assert_connected_to(&w, "198.51.100.20", 4001);
    assert_true(w.t_done - w.t0 < 250 * MS);
    teardown(&w);
}

/* The address that worked last time goes first next time, even behind a
 * public one that leads nowhere. */
static void test_worked_before_goes_first(void **state)
{
    (void)state;
    cworld w;
    connect_two(&w, "198.51.100.99", 4001, "198.51.100.20", 4001, 1000);
    assert_int_equal(w.d.status, 0);
    assert_true(w.t_done - w.t0 >= 250 * MS); /* the silent one went first */
    flare_conn_close(w.d.conn);
    flare_test_run_ms(w.sim, 12000);
    assert_null(flare_host_conn_to(w.a.h, flare_host_peerid(w.b.h)));
    memset(&w.d, 0, sizeof(w.d));
    connect_run(&w, 1000);
    assert_connected_to(&w, "198.51.100.20", 4001);
    assert_true(w.t_done - w.t0 < 250 * MS);
    teardown(&w);
}

/* A slow path (100 ms each way): the second attempt starts before the
 * first one is up, both come up, the later one is closed. */
static void test_race_loser_closed(void **state)
{
    (void)state;
    cworld w;
    setup_delay(&w, 100);
    flare_multiaddr second;
    assert_int_equal(flare_test_tcp_addr(&second, "198.51.100.20", 4002, NULL), 0);
    assert_int_equal(flare_host_listen(w.b.h, &second), 0);
    add_addr(&w, "198.51.100.20", 4001);
    add_addr(&w, "198.51.100.20", 4002);
    connect_run(&w, 3000);
    assert_connected_to(&w, "198.51.100.20", 4001);
    assert_true(w.t_done - w.t0 > 250 * MS); /* the second attempt was under way */
    assert_int_equal(flare_host_num_conns(w.a.h), 1);
    assert_int_equal(flare_host_num_conns(w.b.h), 1);
    assert_ptr_equal(flare_host_conn_to(w.a.h, flare_host_peerid(w.b.h)), w.d.conn);
    teardown(&w);
}

/* No usable address: an error from the call, no callback. */
static void test_nothing_to_dial(void **state)
{
    (void)state;
    cworld w;
    setup(&w);
    assert_int_equal(flare_host_connect(w.a.h, flare_host_peerid(w.b.h), NULL, connect_cb, &w),
                     FLARE_ERR_NOT_FOUND);
    flare_multiaddr ma;
    assert_int_equal(flare_multiaddr_parse(&ma, "/dns4/example.com/tcp/4001"), 0);
    assert_int_equal(flare_host_add_addr(w.a.h, flare_host_peerid(w.b.h), &ma, 60 * S), 0);
    assert_true(flare_host_connect(w.a.h, flare_host_peerid(w.b.h), NULL, connect_cb, &w) < 0);
    flare_test_run_ms(w.sim, 500);
    assert_int_equal(w.d.calls, 0);
    teardown(&w);
}

/* B behind a NAT with a reservation on R: its private address (listed
 * first) leads nowhere from A, the relayed one is the last resort. */
static void test_relayed_last_resort(void **state)
{
    (void)state;
    flare_sim_world w;
    flare_sim_world_settings p;
    flare_sim_world_settings_default(&p);
    flare_host_settings cfg;
    flare_test_settings_default(&cfg);
    cfg.enable_holepunch = 0;
    p.host = &cfg;
    assert_int_equal(flare_sim_world_build(&w, &p), 0);
    flare_multiaddr rma;
    assert_int_equal(flare_sim_world_relay_addr(&w, &rma), 0);
    assert_int_equal(flare_host_relay_reserve(w.b.h, &rma), 0);
    flare_test_run_ms(w.sim, 2000);
    assert_int_equal(w.b.rsv_ok, 1);
    const flare_peerid *b = flare_host_peerid(w.b.h);
    flare_multiaddr ma;
    assert_int_equal(flare_test_tcp_addr(&ma, "10.0.2.2", 4001, NULL), 0);
    assert_int_equal(flare_host_add_addr(w.a.h, b, &ma, 60 * S), 0);
    flare_multiaddr relayed = w.b.relayed;
    flare_multiaddr_decapsulate(&relayed, FLARE_MA_P2P); /* .../p2p-circuit */
    assert_int_equal(flare_host_add_addr(w.a.h, b, &relayed, 60 * S), 0);
    flare_test_dial d = {0};
    assert_int_equal(flare_host_connect(w.a.h, b, NULL, flare_test_dial_cb, &d), 0);
    flare_test_run_ms(w.sim, 3000);
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.status, 0);
    assert_true(flare_conn_is_limited(d.conn));
    flare_sim_world_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stagger_past_a_silent_address),
        cmocka_unit_test(test_public_before_private),
        cmocka_unit_test(test_failures_move_on_then_one_error),
        cmocka_unit_test(test_worked_before_goes_first),
        cmocka_unit_test(test_race_loser_closed),
        cmocka_unit_test(test_nothing_to_dial),
        cmocka_unit_test(test_relayed_last_resort),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
