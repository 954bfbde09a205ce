/* The host over libp2p TLS on the simulated network: the upgrade with
 * /tls/1.0.0 (ALPN muxer, identify, ping, bulk echo), security negotiation
 * between hosts configured differently, a wrong peer ID, and a hole punch
 * (relayed then direct) with TLS only. */
#include <stdlib.h>

#include "support/test.h"

#include "flare/host.h"
#include "flare/sim.h"
#include "flare/sim_world.h"
#include "flare/tls.h"
#include "host/host_int.h"

#define MS FLARE_NS_PER_MS

typedef struct tnode {
    flare_sim_host *sh;
    flare_host *h;
    int opened, closed, close_err, identified, pings;
    flare_tstamp last_rtt;
} tnode;

static void on_event(flare_host *h, const flare_host_event *ev, void *user)
{
    tnode *t = user;
    (void)h;
    if (ev->type == FLARE_HOST_EV_CONN_OPENED)
        t->opened++;
    else if (ev->type == FLARE_HOST_EV_CONN_CLOSED) {
        t->closed++;
        t->close_err = ev->u.conn.error;
    } else if (ev->type == FLARE_HOST_EV_IDENTIFIED)
        t->identified++;
    else if (ev->type == FLARE_HOST_EV_PING) {
        t->pings++;
        t->last_rtt = ev->u.ping.rtt;
    }
}

typedef struct world {
    flare_sim *sim;
    tnode a, b, c; /* a listens on 4001; b dials; c only lends its peer ID */
} world;

static void make(world *w, tnode *t, const char *name, const char *ip, uint8_t seed,
                 const char *security, int port)
{
    flare_host_settings cfg;
    flare_test_settings_default(&cfg);
    cfg.security = security;
    flare_test_host_spec sp = {.name = name,
                               .lan = flare_sim_internet(w->sim),
                               .ip = ip,
                               .link = {.delay = 5 * MS},
                               .seed = {seed},
                               .cfg = &cfg,
                               .on_event = on_event,
                               .user = t,
                               .listen_port = port};
    assert_int_equal(flare_test_host_make(w->sim, &sp, &t->sh, &t->h), 0);
}

static void world_init(world *w, uint64_t seed, const char *sec_a, const char *sec_b)
{
    memset(w, 0, sizeof(*w));
    w->sim = flare_sim_new(seed, NULL);
    assert_non_null(w->sim);
    make(w, &w->a, "a", "198.51.100.1", 1, sec_a, 4001);
    make(w, &w->b, "b", "198.51.100.2", 2, sec_b, 0);
    make(w, &w->c, "c", "198.51.100.3", 3, "/noise", 0);
}

static void world_free(world *w)
{
    flare_host_del(w->a.h);
    flare_host_del(w->b.h);
    flare_host_del(w->c.h);
    flare_sim_del(w->sim);
}

/* b dials a (under peer's ID: a's when NULL); returns the dial result. */
static int dial(world *w, const flare_peerid *peer, flare_test_dial *r)
{
    flare_multiaddr ma;
    assert_int_equal(
        flare_test_tcp_addr(&ma, "198.51.100.1", 4001, peer ? peer : flare_host_peerid(w->a.h)), 0);
    memset(r, 0, sizeof(*r));
    assert_int_equal(flare_host_dial(w->b.h, &ma, NULL, flare_test_dial_cb, r), 0);
    flare_test_run_ms(w->sim, 2000);
    assert_int_equal(r->calls, 1);
    return r->status;
}

/* Bulk data through an echo stream. */
typedef struct xfer {
    uint8_t *sent;
    size_t len, off, got;
    int match, eof;
    flare_stream *s;
} xfer;

static void x_push(xfer *x)
{
    while (x->off < x->len) {
        size_t n = x->len - x->off < 32768 ? x->len - x->off : 32768;
        int rv = flare_stream_write(x->s, x->sent + x->off, n);
        assert_true(rv == 0 || rv == 1);
        x->off += n;
        if (rv == 1)
            return;
    }
    flare_stream_close_write(x->s);
}

static void x_data(flare_stream *s, const uint8_t *d, size_t len, void *user)
{
    xfer *x = user;
    (void)s;
    if (x->got + len > x->len || memcmp(d, x->sent + x->got, len) != 0)
        x->match = 0;
    x->got += len;
}

static void x_eof(flare_stream *s, void *user)
{
    (void)s;
    ((xfer *)user)->eof = 1;
}

static void x_writable(flare_stream *s, void *user)
{
    (void)s;
    x_push(user);
}

static const flare_stream_cbs x_cbs = {
    .on_data = x_data, .on_eof = x_eof, .on_writable = x_writable};

static void test_tls_upgrade(void **state)
{
    (void)state;
    world w;
    world_init(&w, 1, FLARE_TLS_PROTOCOL_ID, FLARE_TLS_PROTOCOL_ID);
    flare_test_dial r;
    assert_int_equal(dial(&w, NULL, &r), 0);
    assert_string_equal(flare_conn_security(r.conn), FLARE_TLS_PROTOCOL_ID);
    assert_string_equal(flare_conn_muxer(r.conn), "/yamux/1.0.0");
    assert_true(flare_peerid_equal(flare_conn_peer(r.conn), flare_host_peerid(w.a.h)));
    assert_int_equal(w.a.opened, 1);
    assert_true(w.a.identified >= 1 && w.b.identified >= 1);
    /* Ping: 5 ms links, 20 ms round trip. */
    assert_int_equal(flare_host_ping(w.b.h, flare_host_peerid(w.a.h), NULL, NULL), 0);
    flare_test_run_ms(w.sim, 1000);
    assert_int_equal(w.b.pings, 1);
    assert_true(w.b.last_rtt >= 20 * MS && w.b.last_rtt < 25 * MS);
    /* 1 MiB echoed intact: many TLS records both ways. */
    int echo_errors = 0;
    assert_int_equal(
        flare_host_set_handler(w.a.h, "/echo/1.0.0", &flare_test_echo_cbs, &echo_errors, 0), 0);
    xfer x = {.len = 1 << 20, .match = 1};
    x.sent = malloc(x.len);
    assert_non_null(x.sent);
    for (size_t i = 0; i < x.len; i++)
        x.sent[i] = (uint8_t)(i * 31 + 7);
    assert_int_equal(flare_conn_new_stream(r.conn, "/echo/1.0.0", &x_cbs, &x, 0, &x.s), 0);
    x_push(&x);
    flare_test_run_ms(w.sim, 20000);
    assert_int_equal(x.got, x.len);
    assert_true(x.match);
    assert_true(x.eof);
    assert_int_equal(echo_errors, 0);
    free(x.sent);
    world_free(&w);
}

/* The dialer's security when b (dialer) offers sec_b to a (listener). */
static const char *negotiated(const char *sec_a, const char *sec_b, int *status)
{
    static char got[32];
    world w;
    world_init(&w, 2, sec_a, sec_b);
    flare_test_dial r;
    *status = dial(&w, NULL, &r);
    snprintf(got, sizeof(got), "%s", *status ? "" : flare_conn_security(r.conn));
    world_free(&w);
    return got;
}

static void test_negotiation(void **state)
{
    (void)state;
    int st;
    /* The dialer proposes in its order; the listener takes any it lists. */
    assert_string_equal(negotiated("/tls/1.0.0", "/noise,/tls/1.0.0", &st), "/tls/1.0.0");
    assert_string_equal(negotiated("/noise,/tls/1.0.0", "/tls/1.0.0,/noise", &st), "/tls/1.0.0");
    assert_string_equal(negotiated("/tls/1.0.0,/noise", "/noise,/tls/1.0.0", &st), "/noise");
    assert_string_equal(negotiated("/noise", "/tls/1.0.0,/noise", &st), "/noise");
    /* Nothing in common. */
    negotiated("/noise", "/tls/1.0.0", &st);
    assert_int_equal(st, FLARE_ERR_NEGOTIATION);
}

static void test_wrong_peer_id(void **state)
{
    (void)state;
    world w;
    world_init(&w, 3, FLARE_TLS_PROTOCOL_ID, FLARE_TLS_PROTOCOL_ID);
    flare_test_dial r;
    /* a's address with c's peer ID: the certificate names a, not c. */
    assert_int_equal(dial(&w, flare_host_peerid(w.c.h), &r), FLARE_ERR_PEER_ID_MISMATCH);
    assert_int_equal(w.b.opened, 0);
    /* a keeps serving the right dial. */
    assert_int_equal(dial(&w, NULL, &r), 0);
    assert_string_equal(flare_conn_security(r.conn), FLARE_TLS_PROTOCOL_ID);
    world_free(&w);
}

/* The last bytes a host wrote to the wire. */
static uint8_t last_wire[64];
static size_t last_wire_len;

static void tap(flare_conn *c, int what, const uint8_t *data, size_t len, void *user)
{
    (void)c;
    (void)user;
    if (what != FLARE__TAP_SENT_WIRE)
        return;
    last_wire_len = len < sizeof(last_wire) ? len : sizeof(last_wire);
    memcpy(last_wire, data + len - last_wire_len, last_wire_len);
}

/* A graceful close ends the TLS stream with close_notify (an encrypted
 * alert record: 2 bytes, the content type and a 16-byte tag) after the
 * muxer's GoAway; the other side closes cleanly. */
static void test_close_notify(void **state)
{
    (void)state;
    world w;
    world_init(&w, 4, FLARE_TLS_PROTOCOL_ID, FLARE_TLS_PROTOCOL_ID);
    flare_test_dial r;
    assert_int_equal(dial(&w, NULL, &r), 0);
    w.b.h->tap = tap;
    last_wire_len = 0;
    flare_conn_close(r.conn);
    w.b.h->tap = NULL;
    static const uint8_t alert[] = {23, 3, 3, 0, 19};
    assert_int_equal(last_wire_len, 5 + 19);
    assert_memory_equal(last_wire, alert, sizeof(alert));
    flare_test_run_ms(w.sim, 1000);
    assert_int_equal(w.a.closed, 1);
    assert_int_equal(w.a.close_err, 0);
    world_free(&w);
}

/* Hole punching with TLS everywhere: B's reservation on R, A's relayed
 * connection to B (TLS inside the circuit), then DCUtR and the direct TCP
 * connection whose TLS roles come from DCUtR, not from the sockets. */
static void test_holepunch_over_tls(void **state)
{
    (void)state;
    flare_host_settings hs;
    flare_test_settings_default(&hs);
    hs.security = FLARE_TLS_PROTOCOL_ID;
    flare_sim_world_settings ws;
    flare_sim_world_settings_default(&ws);
    ws.host = &hs;
    flare_sim_world w;
    assert_int_equal(flare_sim_world_setup(&w, &ws), 0);
    flare_conn *relayed = flare_host_conn_to(w.a.h, flare_host_peerid(w.b.h));
    assert_non_null(relayed);
    assert_true(flare_conn_is_limited(relayed));
    assert_string_equal(flare_conn_security(relayed), FLARE_TLS_PROTOCOL_ID);
    flare_sim_world_run_punch(&w, 30 * FLARE_NS_PER_S);
    assert_int_equal(w.b.punch_err, 0);
    assert_true(flare_sim_world_direct(&w));
    flare_conn *direct = flare_host_conn_to(w.a.h, flare_host_peerid(w.b.h));
    assert_string_equal(flare_conn_security(direct), FLARE_TLS_PROTOCOL_ID);
    assert_string_equal(flare_conn_transport(direct), "tcp");
    flare_sim_world_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tls_upgrade),   cmocka_unit_test(test_negotiation),
        cmocka_unit_test(test_wrong_peer_id), cmocka_unit_test(test_holepunch_over_tls),
        cmocka_unit_test(test_close_notify),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
