/* Circuit Relay v2 end to end on the simulator: a public relay, a private
 * listener behind a NAT holding a reservation, a private dialer behind
 * another NAT reaching it through the relay. */
#include <stdlib.h>

#include "support/test.h"

#include "flare/host.h"
#include "flare/relay_server.h"
#include "flare/sim.h"

#define MS FLARE_NS_PER_MS
#define S  FLARE_NS_PER_S

typedef struct node {
    flare_sim_host *sh;
    flare_host *h;
    int rsv_ok, rsv_failed, rsv_lost, relay_reserved, circ_opened, circ_closed, opened, closed;
    int identified, pings;
    flare_multiaddr relayed;
    int last_close_err;
} node;

typedef struct world {
    flare_sim *sim;
    node r, a, b;
    flare_sim_lan *lan_a, *lan_b;
} world;

static void on_event(flare_host *h, const flare_host_event *ev, void *user)
{
    node *n = user;
    (void)h;
    switch (ev->type) {
    case FLARE_HOST_EV_RESERVATION_OK:
        n->rsv_ok++;
        if (ev->addr)
            n->relayed = *ev->addr;
        break;
    case FLARE_HOST_EV_RESERVATION_FAILED:
        n->rsv_failed++;
        break;
    case FLARE_HOST_EV_RESERVATION_LOST:
        n->rsv_lost++;
        break;
    case FLARE_HOST_EV_RELAY_RESERVED:
        n->relay_reserved++;
        break;
    case FLARE_HOST_EV_RELAY_CIRCUIT_OPENED:
        n->circ_opened++;
        break;
    case FLARE_HOST_EV_RELAY_CIRCUIT_CLOSED:
        n->circ_closed++;
        break;
    case FLARE_HOST_EV_CONN_OPENED:
        n->opened++;
        break;
    case FLARE_HOST_EV_CONN_CLOSED:
        n->closed++;
        n->last_close_err = ev->error;
        break;
    case FLARE_HOST_EV_IDENTIFIED:
        n->identified++;
        break;
    case FLARE_HOST_EV_PING:
        n->pings++;
        break;
    default:
        break;
    }
}

static void make_host(world *w, node *n, const char *name, flare_sim_lan *lan, const char *ip,
                      uint8_t seedb)
{
    n->sh = flare_sim_host_new(w->sim, name);
    assert_int_equal(flare_sim_host_add_addr(n->sh, lan, ip), 0);
    flare_sim_link l = {.delay = 10 * MS};
    flare_sim_link_set(n->sh, &l);
    uint8_t seed[32] = {seedb};
    flare_privkey k;
    assert_int_equal(flare_privkey_from_seed(&k, seed), 0);
    flare_host_config cfg;
    flare_host_config_default(&cfg);
    cfg.doc_addrs_public = 1;
    cfg.enable_holepunch = 0; /* these scenarios test the relay alone */
    assert_int_equal(flare_host_new(&n->h, flare_sim_host_io(n->sh), &k, &cfg, NULL), 0);
    flare_host_set_event_cb(n->h, on_event, n);
    char s[96];
    flare_multiaddr ma;
    snprintf(s, sizeof(s), "/ip4/%s/tcp/4001", ip);
    assert_int_equal(flare_multiaddr_parse(&ma, s), 0);
    assert_int_equal(flare_host_listen(n->h, &ma), 0);
}

static void world_init(world *w, uint64_t seed, const flare_relay_server_config *rcfg)
{
    memset(w, 0, sizeof(*w));
    w->sim = flare_sim_new(seed, NULL);
    flare_sim_lan *inet = flare_sim_internet(w->sim);
    w->lan_a = flare_sim_lan_new(w->sim, "lan-a");
    w->lan_b = flare_sim_lan_new(w->sim, "lan-b");
    flare_sim_nat_config nc;
    flare_sim_nat_config_default(&nc); /* EIM, APDF, drops unsolicited SYNs */
    assert_non_null(
        flare_sim_nat_new(w->sim, "nat-a", inet, "203.0.113.1", w->lan_a, "10.0.1.1", &nc));
    assert_non_null(
        flare_sim_nat_new(w->sim, "nat-b", inet, "203.0.113.2", w->lan_b, "10.0.2.1", &nc));
    make_host(w, &w->r, "relay", inet, "198.51.100.10", 1);
    make_host(w, &w->a, "a", w->lan_a, "10.0.1.2", 2);
    make_host(w, &w->b, "b", w->lan_b, "10.0.2.2", 3);
    assert_int_equal(flare_host_enable_relay_server(w->r.h, rcfg), 0);
}

static void world_free(world *w)
{
    flare_host_del(w->a.h);
    flare_host_del(w->b.h);
    flare_host_del(w->r.h);
    flare_sim_del(w->sim);
}

static void run_ms(world *w, long ms)
{
    flare_sim_run_for(w->sim, (flare_tstamp)ms * MS);
}

static void reserve(world *w)
{
    flare_multiaddr ma;
    char s[256];
    snprintf(s, sizeof(s), "/ip4/198.51.100.10/tcp/4001");
    assert_int_equal(flare_multiaddr_parse(&ma, s), 0);
    assert_int_equal(flare_multiaddr_with_peerid(&ma, flare_host_peerid(w->r.h)), 0);
    assert_int_equal(flare_host_relay_reserve(w->b.h, &ma), 0);
    run_ms(w, 2000);
    assert_int_equal(w->b.rsv_ok, 1);
    assert_int_equal(w->r.relay_reserved, 1);
}

typedef struct dres {
    int calls, status;
    flare_conn *c;
} dres;

static void dial_cb(flare_host *h, flare_conn *c, int status, void *user)
{
    dres *r = user;
    (void)h;
    r->calls++;
    r->status = status;
    r->c = c;
}

/* ---- echo, allowed on limited connections only when asked ------------------------------ */

static void echo_data(flare_stream *s, const uint8_t *d, size_t len, void *user)
{
    (void)user;
    if (flare_stream_write(s, d, len) == 1)
        flare_stream_pause(s, 1);
}

static void echo_writable(flare_stream *s, void *user)
{
    (void)user;
    flare_stream_pause(s, 0);
}

static void echo_eof(flare_stream *s, void *user)
{
    (void)user;
    flare_stream_close_write(s);
}

static const flare_stream_cbs echo_cbs = {NULL, echo_data, echo_eof, echo_writable, NULL};

typedef struct cli {
    size_t got;
    int eof, closed, close_err, open_status;
    char buf[64];
} cli;

static void c_open(flare_stream *s, int status, void *user)
{
    (void)s;
    ((cli *)user)->open_status = status;
}

static void c_data(flare_stream *s, const uint8_t *d, size_t len, void *user)
{
    cli *c = user;
    (void)s;
    if (c->got + len < sizeof(c->buf))
        memcpy(c->buf + c->got, d, len);
    c->got += len;
}

static void c_eof(flare_stream *s, void *user)
{
    (void)s;
    ((cli *)user)->eof = 1;
}

static void c_close(flare_stream *s, int err, void *user)
{
    cli *c = user;
    (void)s;
    c->closed = 1;
    c->close_err = err;
}

static const flare_stream_cbs cli_cbs = {c_open, c_data, c_eof, NULL, c_close};

static void test_reserve_and_connect(void **state)
{
    world w;
    world_init(&w, 21, NULL);
    reserve(&w);
    /* B advertises its relayed address. */
    char s[512];
    flare_multiaddr_to_string(&w.b.relayed, s, sizeof(s));
    assert_non_null(strstr(s, "/p2p-circuit/p2p/"));
    flare_multiaddr rel[4];
    assert_int_equal(flare_host_relay_addrs(w.b.h, rel, 4), 1);
    assert_true(flare_multiaddr_equal(&rel[0], &w.b.relayed));
    /* The relay's view of B (from identify) includes the relayed address: it
     * was pushed after the reservation. */
    assert_int_equal(flare_host_set_handler(w.b.h, "/echo-limited/1", &echo_cbs, NULL,
                                            FLARE_HANDLER_ALLOW_LIMITED),
                     0);
    assert_int_equal(flare_host_set_handler(w.b.h, "/echo/1", &echo_cbs, NULL, 0), 0);
    /* A dials B through the relay. */
    dres d = {0};
    assert_int_equal(flare_host_dial(w.a.h, &w.b.relayed, NULL, dial_cb, &d), 0);
    run_ms(&w, 3000);
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.status, 0);
    assert_true(flare_conn_is_limited(d.c));
    assert_true(flare_conn_is_initiator(d.c));
    assert_true(flare_peerid_equal(flare_conn_peer(d.c), flare_host_peerid(w.b.h)));
    assert_int_equal(w.r.circ_opened, 1);
    /* B sees an inbound limited connection from A. */
    flare_conn *bc = flare_host_conn_to(w.b.h, flare_host_peerid(w.a.h));
    assert_non_null(bc);
    assert_true(flare_conn_is_limited(bc));
    assert_false(flare_conn_is_initiator(bc));
    /* identify and ping run over it; echo only where allowed. */
    assert_true(w.a.identified >= 2); /* the relay and B */
    assert_int_equal(flare_host_ping(w.a.h, flare_host_peerid(w.b.h), NULL, NULL), 0);
    run_ms(&w, 1000);
    assert_int_equal(w.a.pings, 1);
    cli c1 = {0}, c2 = {0};
    flare_stream *st;
    assert_int_equal(flare_conn_new_stream(d.c, "/echo/1", &cli_cbs, &c1, 0, &st),
                     FLARE_ERR_LIMITED);
    /* Asked to, the application may try: B refuses the protocol there. */
    assert_int_equal(
        flare_conn_new_stream(d.c, "/echo/1", &cli_cbs, &c1, FLARE_STREAM_ALLOW_LIMITED, &st), 0);
    assert_int_equal(flare_conn_new_stream(d.c, "/echo-limited/1", &cli_cbs, &c2,
                                           FLARE_STREAM_ALLOW_LIMITED, &st),
                     0);
    flare_stream_write(st, (const uint8_t *)"through", 7);
    flare_stream_close_write(st);
    run_ms(&w, 2000);
    assert_int_equal(c1.open_status, FLARE_ERR_NEGOTIATION);
    assert_int_equal(c2.open_status, 0);
    assert_int_equal(c2.got, 7);
    assert_memory_equal(c2.buf, "through", 7);
    assert_true(c2.eof);
    world_free(&w);
}

static void test_no_reservation(void **state)
{
    world w;
    world_init(&w, 22, NULL);
    /* B never reserved: the relay answers NO_RESERVATION. */
    flare_multiaddr relay, target;
    char s[256];
    assert_int_equal(flare_multiaddr_parse(&relay, "/ip4/198.51.100.10/tcp/4001"), 0);
    assert_int_equal(flare_multiaddr_make_relayed(&target, &relay, flare_host_peerid(w.r.h),
                                                  flare_host_peerid(w.b.h)),
                     0);
    flare_multiaddr_to_string(&target, s, sizeof(s));
    dres d = {0};
    assert_int_equal(flare_host_dial(w.a.h, &target, NULL, dial_cb, &d), 0);
    run_ms(&w, 3000);
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.status, FLARE_ERR_REFUSED);
    assert_int_equal(w.r.circ_opened, 0);
    world_free(&w);
}

/* The circuit's data limit ends the relayed connection; the relay keeps
 * serving. */
static void test_data_limit(void **state)
{
    flare_relay_server_config rc;
    flare_relay_server_config_default(&rc);
    rc.limit_data = 64 * 1024;
    world w;
    world_init(&w, 23, &rc);
    reserve(&w);
    assert_int_equal(flare_host_set_handler(w.b.h, "/echo-limited/1", &echo_cbs, NULL,
                                            FLARE_HANDLER_ALLOW_LIMITED),
                     0);
    dres d = {0};
    assert_int_equal(flare_host_dial(w.a.h, &w.b.relayed, NULL, dial_cb, &d), 0);
    run_ms(&w, 3000);
    assert_int_equal(d.status, 0);
    cli c = {0};
    flare_stream *st;
    assert_int_equal(flare_conn_new_stream(d.c, "/echo-limited/1", &cli_cbs, &c,
                                           FLARE_STREAM_ALLOW_LIMITED, &st),
                     0);
    static uint8_t blob[200 * 1024];
    flare_stream_write(st, blob, sizeof(blob));
    run_ms(&w, 10000);
    assert_true(c.closed);
    assert_true(c.got < sizeof(blob));
    assert_int_equal(w.r.circ_closed, 1);
    assert_null(flare_host_conn_to(w.a.h, flare_host_peerid(w.b.h)));
    assert_int_equal(flare_host_relay_num_circuits(w.r.h), 0);
    /* Both ends tell the relay's limit from a plain reset. */
    assert_int_equal(w.a.last_close_err, FLARE_ERR_LIMIT);
    assert_int_equal(w.b.last_close_err, FLARE_ERR_LIMIT);
    /* A new circuit still works. */
    dres d2 = {0};
    assert_int_equal(flare_host_dial(w.a.h, &w.b.relayed, NULL, dial_cb, &d2), 0);
    run_ms(&w, 3000);
    assert_int_equal(d2.status, 0);
    world_free(&w);
}

/* The relay connection drops: B notices and reserves again; and B refreshes
 * its reservation before the relay's TTL ends. */
static void test_drop_and_refresh(void **state)
{
    world w;
    world_init(&w, 24, NULL);
    reserve(&w);
    flare_conn *c = flare_host_conn_to(w.r.h, flare_host_peerid(w.b.h));
    assert_non_null(c);
    flare_conn_close(c);
    run_ms(&w, 10000);
    assert_int_equal(w.b.rsv_lost, 1);
    assert_int_equal(w.b.rsv_ok, 2);
    assert_int_equal(flare_host_relay_num_reservations(w.r.h), 1);
    /* Two hours: the 1 h reservation must be refreshed, never lapse. */
    for (int i = 0; i < 24; i++) {
        run_ms(&w, 300000);
        assert_int_equal(flare_host_relay_num_reservations(w.r.h), 1);
    }
    assert_true(w.b.rsv_ok >= 4);
    /* Still reachable through the relay. */
    dres d = {0};
    assert_int_equal(flare_host_dial(w.a.h, &w.b.relayed, NULL, dial_cb, &d), 0);
    run_ms(&w, 3000);
    assert_int_equal(d.status, 0);
    world_free(&w);
}

/* The duration limit: the relay resets the circuit, both ends say why; a
 * reset before the limit stays a reset. */
static void test_duration_limit(void **state)
{
    flare_relay_server_config rc;
    flare_relay_server_config_default(&rc);
    rc.limit_duration = 5;
    world w;
    world_init(&w, 26, &rc);
    reserve(&w);
    dres d = {0};
    assert_int_equal(flare_host_dial(w.a.h, &w.b.relayed, NULL, dial_cb, &d), 0);
    run_ms(&w, 3000);
    assert_int_equal(d.status, 0);
    assert_int_equal(w.a.closed, 0);
    run_ms(&w, 4000);
    assert_int_equal(w.r.circ_closed, 1);
    assert_int_equal(w.a.last_close_err, FLARE_ERR_LIMIT);
    assert_int_equal(w.b.last_close_err, FLARE_ERR_LIMIT);
    /* A circuit reset early (here: by A) is not blamed on the limit. */
    dres d2 = {0};
    assert_int_equal(flare_host_dial(w.a.h, &w.b.relayed, NULL, dial_cb, &d2), 0);
    run_ms(&w, 2000);
    assert_int_equal(d2.status, 0);
    flare_conn *rc_a = flare_host_conn_to(w.a.h, flare_host_peerid(w.r.h));
    assert_non_null(rc_a);
    flare_conn_close(rc_a); /* the relay connection carries the circuit */
    run_ms(&w, 2000);
    assert_int_not_equal(w.b.last_close_err, FLARE_ERR_LIMIT);
    assert_int_not_equal(w.b.last_close_err, 0);
    world_free(&w);
    (void)state;
}

/* A relay granting a TTL under the client's 30 s refresh floor (the NAT lab
 * runs 15 s): B must renew before the relay drops it, never leave a gap. */
static void test_short_ttl_refresh(void **state)
{
    flare_relay_server_config rc;
    flare_relay_server_config_default(&rc);
    rc.reservation_ttl = 15;
    world w;
    world_init(&w, 25, &rc);
    reserve(&w);
    for (int i = 0; i < 4000; i++) { /* 40 s in 10 ms steps */
        run_ms(&w, 10);
        if (flare_host_relay_num_reservations(w.r.h) != 1)
            fail_msg("reservation lapsed at %d ms", 2000 + i * 10);
    }
    assert_true(w.r.relay_reserved >= 4); /* renewed at ~11 s intervals */
    assert_int_equal(w.b.rsv_lost, 0);
    world_free(&w);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reserve_and_connect), cmocka_unit_test(test_no_reservation),
        cmocka_unit_test(test_data_limit),          cmocka_unit_test(test_drop_and_refresh),
        cmocka_unit_test(test_short_ttl_refresh),   cmocka_unit_test(test_duration_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
