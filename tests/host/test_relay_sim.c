/* Circuit Relay v2 end to end on the simulator: a public relay, a private
 * listener behind a NAT holding a reservation, a private dialer behind
 * another NAT reaching it through the relay. */
#include "support/test.h"

#include "flare/sim_world.h"

#define MS FLARE_NS_PER_MS
#define S  FLARE_NS_PER_S

/* R, A and B with 10 ms links, hole punching off: these scenarios test the
 * relay alone. */
static void world_init(flare_sim_world *w, uint64_t seed, const flare_relay_server_settings *rcfg)
{
    flare_sim_world_settings p;
    flare_sim_world_settings_default(&p); /* EIM, APDF NATs that drop unsolicited SYNs */
    p.seed = seed;
    p.delay_a = p.delay_b = 0;
    p.delay_r = p.delay_ab = 10 * MS;
    flare_host_settings cfg;
    flare_test_settings_default(&cfg);
    cfg.enable_holepunch = 0;
    p.host = &cfg;
    p.relay = rcfg;
    assert_int_equal(flare_sim_world_build(w, &p), 0);
}

static void run_ms(flare_sim_world *w, long ms)
{
    flare_test_run_ms(w->sim, ms);
}

static void reserve(flare_sim_world *w)
{
    flare_multiaddr ma;
    assert_int_equal(flare_sim_world_relay_addr(w, &ma), 0);
    assert_int_equal(flare_host_relay_reserve(w->b.h, &ma), 0);
    run_ms(w, 2000);
    assert_int_equal(w->b.rsv_ok, 1);
    assert_int_equal(w->r.relay_reserved, 1);
}

/* ---- echo, allowed on limited connections only when asked ------------------------------ */

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

static const flare_stream_cbs cli_cbs = {
    .on_open = c_open, .on_data = c_data, .on_eof = c_eof, .on_close = c_close};

static void test_reserve_and_connect(void **state)
{
    flare_sim_world w;
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
    assert_int_equal(flare_host_set_handler(w.b.h, "/echo-limited/1", &flare_test_echo_cbs, NULL,
                                            FLARE_HANDLER_ALLOW_LIMITED),
                     0);
    assert_int_equal(flare_host_set_handler(w.b.h, "/echo/1", &flare_test_echo_cbs, NULL, 0), 0);
    /* A dials B through the relay. */
    flare_test_dial d = {0};
    assert_int_equal(flare_host_dial(w.a.h, &w.b.relayed, NULL, flare_test_dial_cb, &d), 0);
    run_ms(&w, 3000);
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.status, 0);
    assert_true(flare_conn_is_limited(d.conn));
    assert_true(flare_conn_is_initiator(d.conn));
    assert_true(flare_peerid_equal(flare_conn_peer(d.conn), flare_host_peerid(w.b.h)));
    assert_int_equal(w.r.circ_opened, 1);
    /* B sees an inbound limited connection from A. */
    flare_conn *bc = flare_host_conn_to(w.b.h, flare_host_peerid(w.a.h));
    assert_non_null(bc);
    assert_true(flare_conn_is_limited(bc));
    assert_false(flare_conn_is_initiator(bc));
    assert_string_equal(flare_conn_transport(d.conn), "circuit");
    assert_string_equal(flare_conn_transport(bc), "circuit");
    /* identify and ping run over it; echo only where allowed. */
    assert_true(w.a.identified >= 2); /* the relay and B */
    assert_int_equal(flare_host_ping(w.a.h, flare_host_peerid(w.b.h), NULL, NULL), 0);
    run_ms(&w, 1000);
    assert_int_equal(w.a.pings, 1);
    cli c1 = {0}, c2 = {0};
    flare_stream *st;
    assert_int_equal(flare_conn_new_stream(d.conn, "/echo/1", &cli_cbs, &c1, 0, &st),
                     FLARE_ERR_LIMITED);
    /* Asked to, the application may try: B refuses the protocol there. */
    assert_int_equal(
        flare_conn_new_stream(d.conn, "/echo/1", &cli_cbs, &c1, FLARE_STREAM_ALLOW_LIMITED, &st),
        0);
    assert_int_equal(flare_conn_new_stream(d.conn, "/echo-limited/1", &cli_cbs, &c2,
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
    flare_sim_world_free(&w);
}

static void test_no_reservation(void **state)
{
    flare_sim_world w;
    world_init(&w, 22, NULL);
    /* B never reserved: the relay answers NO_RESERVATION. */
    flare_multiaddr relay, target;
    char s[256];
    assert_int_equal(flare_test_tcp_addr(&relay, FLARE_SIM_WORLD_RELAY_IP, 4001, NULL), 0);
    assert_int_equal(flare_multiaddr_make_relayed(&target, &relay, flare_host_peerid(w.r.h),
                                                  flare_host_peerid(w.b.h)),
                     0);
    flare_multiaddr_to_string(&target, s, sizeof(s));
    flare_test_dial d = {0};
    assert_int_equal(flare_host_dial(w.a.h, &target, NULL, flare_test_dial_cb, &d), 0);
    run_ms(&w, 3000);
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.status, FLARE_ERR_REFUSED);
    assert_int_equal(w.r.circ_opened, 0);
    flare_sim_world_free(&w);
}

/* The circuit's data limit ends the relayed connection; the relay keeps
 * serving. */
static void test_data_limit(void **state)
{
    flare_relay_server_settings rc;
    flare_relay_server_settings_default(&rc);
    rc.limit_data = 64 * 1024;
    flare_sim_world w;
    world_init(&w, 23, &rc);
    reserve(&w);
    assert_int_equal(flare_host_set_handler(w.b.h, "/echo-limited/1", &flare_test_echo_cbs, NULL,
                                            FLARE_HANDLER_ALLOW_LIMITED),
                     0);
    flare_test_dial d = {0};
    assert_int_equal(flare_host_dial(w.a.h, &w.b.relayed, NULL, flare_test_dial_cb, &d), 0);
    run_ms(&w, 3000);
    assert_int_equal(d.status, 0);
    cli c = {0};
    flare_stream *st;
    assert_int_equal(flare_conn_new_stream(d.conn, "/echo-limited/1", &cli_cbs, &c,
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
    flare_test_dial d2 = {0};
    assert_int_equal(flare_host_dial(w.a.h, &w.b.relayed, NULL, flare_test_dial_cb, &d2), 0);
    run_ms(&w, 3000);
    assert_int_equal(d2.status, 0);
    flare_sim_world_free(&w);
}

/* The relay connection drops: B notices and reserves again; and B refreshes
 * its reservation before the relay's TTL ends. */
static void test_drop_and_refresh(void **state)
{
    flare_sim_world w;
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
    flare_test_dial d = {0};
    assert_int_equal(flare_host_dial(w.a.h, &w.b.relayed, NULL, flare_test_dial_cb, &d), 0);
    run_ms(&w, 3000);
    assert_int_equal(d.status, 0);
    flare_sim_world_free(&w);
}

/* The duration limit: the relay resets the circuit, both ends say why; a
 * reset before the limit stays a reset. */
static void test_duration_limit(void **state)
{
    flare_relay_server_settings rc;
    flare_relay_server_settings_default(&rc);
    rc.limit_duration = 5;
    flare_sim_world w;
    world_init(&w, 26, &rc);
    reserve(&w);
    flare_test_dial d = {0};
    assert_int_equal(flare_host_dial(w.a.h, &w.b.relayed, NULL, flare_test_dial_cb, &d), 0);
    run_ms(&w, 3000);
    assert_int_equal(d.status, 0);
    assert_int_equal(w.a.closed, 0);
    run_ms(&w, 4000);
    assert_int_equal(w.r.circ_closed, 1);
    assert_int_equal(w.a.last_close_err, FLARE_ERR_LIMIT);
    assert_int_equal(w.b.last_close_err, FLARE_ERR_LIMIT);
    /* A circuit reset early (here: by A) is not blamed on the limit. */
    flare_test_dial d2 = {0};
    assert_int_equal(flare_host_dial(w.a.h, &w.b.relayed, NULL, flare_test_dial_cb, &d2), 0);
    run_ms(&w, 2000);
    assert_int_equal(d2.status, 0);
    flare_conn *rc_a = flare_host_conn_to(w.a.h, flare_host_peerid(w.r.h));
    assert_non_null(rc_a);
    flare_conn_close(rc_a); /* the relay connection carries the circuit */
    run_ms(&w, 2000);
    assert_int_not_equal(w.b.last_close_err, FLARE_ERR_LIMIT);
    assert_int_not_equal(w.b.last_close_err, 0);
    flare_sim_world_free(&w);
    (void)state;
}

/* A relay granting a TTL under the client's 30 s refresh floor (the NAT lab
 * runs 15 s): B must renew before the relay drops it, never leave a gap. */
static void test_short_ttl_refresh(void **state)
{
    flare_relay_server_settings rc;
    flare_relay_server_settings_default(&rc);
    rc.reservation_ttl = 15;
    flare_sim_world w;
    world_init(&w, 25, &rc);
    reserve(&w);
    for (int i = 0; i < 4000; i++) { /* 40 s in 10 ms steps */
        run_ms(&w, 10);
        if (flare_host_relay_num_reservations(w.r.h) != 1)
            fail_msg("reservation lapsed at %d ms", 2000 + i * 10);
    }
    assert_true(w.r.relay_reserved >= 4); /* renewed at ~11 s intervals */
    assert_int_equal(w.b.rsv_lost, 0);
    flare_sim_world_free(&w);
    (void)state;
}

/* ---- bulk data over an unlimited circuit ------------------------------------------------ */

typedef struct bulk {
    flare_stream *st;
    size_t sent, total, got;
    int closed, close_err, eof;
} bulk;

static uint8_t bulk_chunk[64 * 1024];

static void bulk_pump(flare_stream *s, bulk *b)
{
    while (b->sent < b->total) {
        size_t n =
            b->total - b->sent < sizeof(bulk_chunk) ? b->total - b->sent : sizeof(bulk_chunk);
        int rv = flare_stream_write(s, bulk_chunk, n);
        if (rv < 0)
            return;
        b->sent += n;
        if (rv == 1)
            return; /* wait for on_writable */
    }
    flare_stream_close_write(s);
}

static void bulk_open(flare_stream *s, int status, void *user)
{
    if (status == 0)
        bulk_pump(s, user);
}

static void bulk_writable(flare_stream *s, void *user)
{
    bulk_pump(s, user);
}

static void bulk_close(flare_stream *s, int err, void *user)
{
    bulk *b = user;
    (void)s;
    b->closed = 1;
    b->close_err = err;
}

static const flare_stream_cbs bulk_cbs = {
    .on_open = bulk_open, .on_writable = bulk_writable, .on_close = bulk_close};

static void sink_data(flare_stream *s, const uint8_t *d, size_t len, void *user)
{
    (void)s;
    (void)d;
    ((bulk *)user)->got += len;
}

static void sink_eof(flare_stream *s, void *user)
{
    ((bulk *)user)->eof = 1;
    flare_stream_close_write(s);
}

static const flare_stream_cbs sink_cbs = {.on_data = sink_data, .on_eof = sink_eof};

/* A relayed connection must respect the carrier's backpressure: with the
 * relay->B link slower than A's, a bulk transfer over an unlimited circuit
 * (the inner yamux window grows past the carrier's queue bound) completes
 * instead of the relayed connection failing with "limit". */
static void test_bulk_over_slow_circuit(void **state)
{
    flare_relay_server_settings rc;
    flare_relay_server_settings_default(&rc);
    rc.limit_data = 1ULL << 40;
    rc.limit_duration = 3600;
    flare_sim_world w;
    world_init(&w, 27, &rc);
    reserve(&w);
    flare_sim_link slow = {.delay = 50 * MS, .rate = 1 << 20, .queue = 1 << 20};
    flare_sim_nat_link_set(w.nat_b, &slow);
    bulk sink = {0}, src = {.total = 24u << 20};
    assert_int_equal(
        flare_host_set_handler(w.b.h, "/sink/1", &sink_cbs, &sink, FLARE_HANDLER_ALLOW_LIMITED), 0);
    flare_test_dial d = {0};
    assert_int_equal(flare_host_dial(w.a.h, &w.b.relayed, NULL, flare_test_dial_cb, &d), 0);
    run_ms(&w, 3000);
    assert_int_equal(d.status, 0);
    assert_int_equal(flare_conn_new_stream(d.conn, "/sink/1", &bulk_cbs, &src,
                                           FLARE_STREAM_ALLOW_LIMITED, &src.st),
                     0);
    for (int i = 0; i < 60 && !sink.eof; i++)
        run_ms(&w, 1000);
    assert_int_equal(src.sent, src.total);
    assert_int_equal(sink.got, src.total);
    assert_true(sink.eof);
    assert_false(src.closed && src.close_err);
    assert_int_equal(w.a.last_close_err, 0);
    assert_int_equal(w.b.last_close_err, 0);
    flare_sim_world_free(&w);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reserve_and_connect),
        cmocka_unit_test(test_no_reservation),
        cmocka_unit_test(test_data_limit),
        cmocka_unit_test(test_drop_and_refresh),
        cmocka_unit_test(test_short_ttl_refresh),
        cmocka_unit_test(test_duration_limit),
        cmocka_unit_test(test_bulk_over_slow_circuit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
