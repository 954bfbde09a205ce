/* WebRTC private-to-private (/p2p-circuit/webrtc) on the simulator: two
 * private nodes behind cone NATs reach each other through a relay's
 * signalling, ICE over their NATs, DTLS, SCTP; both roles; bad input. */
#include "support/helpers.h"
#include "support/test.h"

#include "flare/sim_world.h"
#include "transport/webrtc/signal.h"

#define MS FLARE_NS_PER_MS
#define S  FLARE_NS_PER_S

#define ECHO_PROTO "/test/echo/1.0.0"
#define ECHO_LEN   (256 * 1024)

typedef struct world {
    flare_sim_world w;
    flare_multiaddr relay;
} world;

/* R listens on QUIC too (its STUN server answers there); A and B are
 * behind the default (cone) NATs; no DCUtR, so a direct connection can
 * only be WebRTC's. */
static void world_up(world *x, const flare_host_settings *hs_in)
{
    flare_sim_world_settings p;
    flare_sim_world_settings_default(&p);
    p.log = getenv("FLARE_TEST_LOG") ? stderr : NULL;
    flare_host_settings hs;
    if (hs_in)
        hs = *hs_in;
    else {
        flare_host_settings_default(&hs);
        hs.doc_addrs_public = 1;
    }
    hs.enable_holepunch = 0;
    p.host = &hs;
    assert_int_equal(flare_sim_world_build(&x->w, &p), 0);
    flare_multiaddr q;
    assert_int_equal(
        flare_multiaddr_parse(&q, "/ip4/" FLARE_SIM_WORLD_RELAY_IP "/udp/4001/quic-v1"), 0);
    assert_int_equal(flare_host_listen(x->w.r.h, &q), 0);
    assert_int_equal(flare_sim_world_relay_addr(&x->w, &x->relay), 0);
    assert_int_equal(flare_host_relay_reserve(x->w.b.h, &x->relay), 0);
    flare_test_dial d = {0};
    assert_int_equal(flare_host_dial(x->w.a.h, &x->relay, NULL, flare_test_dial_cb, &d), 0);
    flare_sim_run_for(x->w.sim, 2 * S);
    assert_int_equal(x->w.b.rsv_ok, 1);
    assert_int_equal(d.status, 0);
    assert_int_equal(flare_host_set_handler(x->w.b.h, ECHO_PROTO, &flare_test_echo_cbs, NULL, 0),
                     0);
    assert_int_equal(flare_host_set_handler(x->w.a.h, ECHO_PROTO, &flare_test_echo_cbs, NULL, 0),
                     0);
}

/* to's relayed address with /webrtc: R/p2p-circuit/webrtc/p2p/TO. */
static void webrtc_addr(world *x, flare_host *to, flare_multiaddr *out)
{
    *out = x->relay;
    assert_int_equal(flare_multiaddr_push(out, FLARE_MA_P2P_CIRCUIT, NULL, 0), 0);
    assert_int_equal(flare_multiaddr_push(out, FLARE_MA_WEBRTC, NULL, 0), 0);
    assert_int_equal(flare_multiaddr_with_peerid(out, flare_host_peerid(to)), 0);
}

typedef struct echo_run {
    size_t sent, got;
    int eof, closed, err;
    uint8_t data[ECHO_LEN];
} echo_run;

static void er_open(flare_stream *s, int status, void *user)
{
    echo_run *e = user;
    if (status)
        e->err = status;
}

static void er_data(flare_stream *s, const uint8_t *d, size_t n, void *user)
{
    echo_run *e = user;
    if (e->got + n <= ECHO_LEN && memcmp(e->data + e->got, d, n) != 0)
        e->err = FLARE_ERR_PROTO;
    e->got += n;
}

static void er_pump(flare_stream *s, echo_run *e)
{
    while (e->sent < ECHO_LEN) {
        size_t n = ECHO_LEN - e->sent > 8192 ? 8192 : ECHO_LEN - e->sent;
        int rv = flare_stream_write(s, e->data + e->sent, n);
        if (rv < 0)
            return;
        e->sent += n;
        if (rv == 1)
            return;
    }
    flare_stream_close_write(s);
}

static void er_writable(flare_stream *s, void *user)
{
    er_pump(s, user);
}

static void er_eof(flare_stream *s, void *user)
{
    ((echo_run *)user)->eof = 1;
}

static void er_close(flare_stream *s, int err, void *user)
{
    echo_run *e = user;
    e->closed = 1;
    if (err)
        e->err = err;
}

/* 256 KiB over c and back: more than the relay's 128 KiB circuit limit. */
static void echo_over(flare_sim *sim, flare_conn *c)
{
    echo_run *e = calloc(1, sizeof(*e));
    for (size_t i = 0; i < ECHO_LEN; i++)
        e->data[i] = (uint8_t)(i * 7 + (i >> 9));
    flare_stream_cbs cbs = {.on_open = er_open,
                            .on_data = er_data,
                            .on_eof = er_eof,
                            .on_writable = er_writable,
                            .on_close = er_close};
    flare_stream *s;
    assert_int_equal(flare_conn_new_stream(c, ECHO_PROTO, &cbs, e, 0, &s), 0);
    er_pump(s, e);
    for (int i = 0; i < 300 && !e->closed; i++)
        flare_sim_run_for(sim, 100 * MS);
    assert_int_equal(e->err, 0);
    assert_int_equal(e->got, ECHO_LEN);
    assert_true(e->eof);
    free(e);
}

static flare_conn *dial_webrtc(world *x, flare_host *from, flare_host *to, flare_test_dial *d)
{
    flare_multiaddr ma;
    webrtc_addr(x, to, &ma);
    assert_int_equal(flare_host_dial(from, &ma, NULL, flare_test_dial_cb, d), 0);
    for (int i = 0; i < 200 && !d->calls; i++)
        flare_sim_run_for(x->w.sim, 100 * MS);
    assert_int_equal(d->calls, 1);
    return d->status == 0 ? d->conn : NULL;
}

static flare_conn *webrtc_conn(flare_host *h, const flare_peerid *peer)
{
    flare_conn *c = flare_host_conn_to(h, peer);
    return c && strcmp(flare_conn_transport(c), "webrtc") == 0 ? c : NULL;
}

/* A dials B over /p2p-circuit/webrtc: a direct, unlimited connection that
 * carries more than the relay would, in both directions of use. */
static void test_dial_echo(void **state)
{
    world *x = calloc(1, sizeof(*x));
    world_up(x, NULL);
    flare_test_dial d = {0};
    flare_conn *c = dial_webrtc(x, x->w.a.h, x->w.b.h, &d);
    assert_int_equal(d.status, 0);
    assert_non_null(c);
    assert_string_equal(flare_conn_transport(c), "webrtc");
    assert_false(flare_conn_is_limited(c));
    assert_true(flare_conn_is_outbound(c));
    flare_conn *cb = webrtc_conn(x->w.b.h, flare_host_peerid(x->w.a.h));
    assert_non_null(cb);
    assert_false(flare_conn_is_limited(cb));
    assert_false(flare_conn_is_outbound(cb));
    /* The direct pair goes through the NATs' public addresses. */
    char ra[256];
    assert_true(flare_multiaddr_to_string(flare_conn_remote_addr(cb), ra, sizeof(ra)) > 0);
    assert_non_null(strstr(ra, "/ip4/203.0.113.1/udp/"));
    echo_over(x->w.sim, c);  /* A's stream */
    echo_over(x->w.sim, cb); /* B's stream on the inbound side */
    flare_sim_world_free(&x->w);
    free(x);
}

/* B dials A: the roles swapped (A answers, A is the DTLS client). */
static void test_dial_other_way(void **state)
{
    world *x = calloc(1, sizeof(*x));
    world_up(x, NULL);
    /* A needs a reservation to be reachable through R. */
    assert_int_equal(flare_host_relay_reserve(x->w.a.h, &x->relay), 0);
    flare_sim_run_for(x->w.sim, 2 * S);
    assert_int_equal(x->w.a.rsv_ok, 1);
    flare_test_dial d = {0};
    flare_conn *c = dial_webrtc(x, x->w.b.h, x->w.a.h, &d);
    assert_int_equal(d.status, 0);
    assert_non_null(c);
    assert_string_equal(flare_conn_transport(c), "webrtc");
    assert_false(flare_conn_is_limited(c));
    echo_over(x->w.sim, c);
    flare_sim_world_free(&x->w);
    free(x);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_dial_echo),
    cmocka_unit_test(test_dial_other_way),
};

int main(void)
{
    return cmocka_run_group_tests(tests, NULL, NULL);
}
