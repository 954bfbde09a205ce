/* WebRTC private-to-private (/p2p-circuit/webrtc) on the simulator: two
 * private nodes behind cone NATs reach each other through a relay's
 * signalling, ICE over their NATs, DTLS, SCTP; both roles; bad input. */
#include "support/helpers.h"
#include "support/test.h"

#include "flare/sim_world.h"
#include "host/host_int.h"
#include "transport/webrtc/sdp.h"
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
    flare_tstamp t0 = flare_sim_now(x->w.sim);
    assert_int_equal(flare_host_dial(from, &ma, NULL, flare_test_dial_cb, d), 0);
    for (int i = 0; i < 2000 && !d->calls; i++)
        flare_sim_run_for(x->w.sim, 10 * MS);
    assert_int_equal(d->calls, 1);
    if (getenv("FLARE_TEST_LOG"))
        fprintf(stderr, "webrtc dial: %d after %.0f ms\n", d->status,
                (double)(flare_sim_now(x->w.sim) - t0) / 1e6);
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

/* A and B listen on QUIC too: WebRTC shares their UDP listen sockets
 * (udp_mux), so the connection runs from port 4001 and QUIC still works. */
static void test_shared_udp_port(void **state)
{
    world *x = calloc(1, sizeof(*x));
    world_up(x, NULL);
    flare_multiaddr q;
    assert_int_equal(flare_multiaddr_parse(&q, "/ip4/10.0.1.2/udp/4001/quic-v1"), 0);
    assert_int_equal(flare_host_listen(x->w.a.h, &q), 0);
    assert_int_equal(flare_multiaddr_parse(&q, "/ip4/10.0.2.2/udp/4001/quic-v1"), 0);
    assert_int_equal(flare_host_listen(x->w.b.h, &q), 0);
    flare_test_dial d = {0};
    flare_conn *c = dial_webrtc(x, x->w.a.h, x->w.b.h, &d);
    assert_int_equal(d.status, 0);
    char la[256];
    assert_true(flare_multiaddr_to_string(flare_conn_local_addr(c), la, sizeof(la)) > 0);
    assert_string_equal(la, "/ip4/10.0.1.2/udp/4001/webrtc");
    flare_conn *cb = webrtc_conn(x->w.b.h, flare_host_peerid(x->w.a.h));
    assert_non_null(cb);
    assert_true(flare_multiaddr_to_string(flare_conn_local_addr(cb), la, sizeof(la)) > 0);
    assert_string_equal(la, "/ip4/10.0.2.2/udp/4001/webrtc");
    echo_over(x->w.sim, c);
    /* QUIC on the same socket: A dials R over QUIC from it. */
    flare_test_dial dq = {0};
    flare_multiaddr rq;
    assert_int_equal(
        flare_multiaddr_parse(&rq, "/ip4/" FLARE_SIM_WORLD_RELAY_IP "/udp/4001/quic-v1"), 0);
    assert_int_equal(flare_multiaddr_with_peerid(&rq, flare_host_peerid(x->w.r.h)), 0);
    flare_dial_opts o = {.force_new = 1};
    assert_int_equal(flare_host_dial(x->w.a.h, &rq, &o, flare_test_dial_cb, &dq), 0);
    flare_sim_run_for(x->w.sim, 2 * S);
    assert_int_equal(dq.status, 0);
    assert_string_equal(flare_conn_transport(dq.conn), "quic-v1");
    flare_sim_world_free(&x->w);
    free(x);
}

/* ---- bad input ------------------------------------------------------------------------ */

/* A rogue signaller: A opens /webrtc-signaling/0.0.1 on its relayed
 * connection to B and writes what the test says. */
typedef struct rogue {
    flare_stream *s;
    int closed, err, got;
    flare_buf in;
} rogue;

static void rg_data(flare_stream *s, const uint8_t *d, size_t n, void *user)
{
    rogue *r = user;
    r->got += (int)n;
    flare_buf_append(&r->in, d, n);
}

static void rg_close(flare_stream *s, int err, void *user)
{
    rogue *r = user;
    r->closed = 1;
    r->err = err;
    r->s = NULL;
}

static void rogue_open(world *x, rogue *r)
{
    memset(r, 0, sizeof(*r));
    flare_buf_init(&r->in, NULL);
    flare_test_dial d = {0};
    assert_int_equal(flare_host_dial(x->w.a.h, &x->w.b.relayed, NULL, flare_test_dial_cb, &d), 0);
    flare_sim_run_for(x->w.sim, 2 * S);
    assert_int_equal(d.status, 0);
    assert_true(flare_conn_is_limited(d.conn));
    flare_stream_cbs cbs = {.on_data = rg_data, .on_close = rg_close};
    assert_int_equal(flare_conn_new_stream(d.conn, FLARE__SIGNAL_PROTOCOL_ID, &cbs, r,
                                           FLARE_STREAM_ALLOW_LIMITED, &r->s),
                     0);
}

static void rogue_send(rogue *r, int type, const char *data, size_t len)
{
    flare_buf b;
    flare_buf_init(&b, NULL);
    assert_int_equal(flare__signal_encode(&b, type, data, len), 0);
    assert_true(flare_stream_write(r->s, b.base, b.len) >= 0);
    flare_buf_free(&b);
}

/* A valid offer with made-up credentials and fingerprint. */
static void rogue_offer(rogue *r)
{
    flare__sdp d;
    memset(&d, 0, sizeof(d));
    strcpy(d.ufrag, "rogue1");
    strcpy(d.pwd, "roguepasswordroguepassword");
    memset(d.fp, 0xab, sizeof(d.fp));
    d.has_fp = 1;
    d.setup = FLARE__SDP_SETUP_ACTPASS;
    flare_buf b;
    flare_buf_init(&b, NULL);
    assert_int_equal(flare__sdp_write(&d, 7, &b), 0);
    rogue_send(r, FLARE__SIGNAL_SDP_OFFER, (const char *)b.base, b.len);
    flare_buf_free(&b);
}

/* After bad input B still serves: a real WebRTC dial and echo work. */
static void still_serves(world *x)
{
    flare_test_dial d = {0};
    flare_conn *c = dial_webrtc(x, x->w.a.h, x->w.b.h, &d);
    assert_int_equal(d.status, 0);
    assert_string_equal(flare_conn_transport(c), "webrtc");
    echo_over(x->w.sim, c);
}

static void test_bad_sdp(void **state)
{
    world *x = calloc(1, sizeof(*x));
    world_up(x, NULL);
    rogue r;
    rogue_open(x, &r);
    static const char junk[] = "v=0\r\no=- 1 0 IN IP4 0.0.0.0\r\nthis is not sdp\r\n";
    rogue_send(&r, FLARE__SIGNAL_SDP_OFFER, junk, sizeof(junk) - 1);
    flare_sim_run_for(x->w.sim, 1 * S);
    assert_true(r.closed);
    assert_int_equal(r.err, FLARE_ERR_RESET);
    assert_int_equal(r.got, 0); /* no answer to a broken offer */
    /* An answer where an offer belongs: refused the same way. */
    rogue_open(x, &r);
    rogue_offer(&r);
    rogue_send(&r, FLARE__SIGNAL_SDP_ANSWER, "x", 1);
    flare_sim_run_for(x->w.sim, 1 * S);
    assert_true(r.closed);
    assert_true(r.got > 0); /* the answer to the offer came first */
    flare_buf_free(&r.in);
    still_serves(x);
    flare_sim_world_free(&x->w);
    free(x);
}

static void test_message_too_large(void **state)
{
    world *x = calloc(1, sizeof(*x));
    world_up(x, NULL);
    rogue r;
    rogue_open(x, &r);
    /* A length prefix of 1 MiB: refused before the bytes arrive. */
    uint8_t big[4096] = {0x80, 0x80, 0x40};
    assert_true(flare_stream_write(r.s, big, sizeof(big)) >= 0);
    flare_sim_run_for(x->w.sim, 1 * S);
    assert_true(r.closed);
    assert_int_equal(r.err, FLARE_ERR_RESET);
    still_serves(x);
    flare_sim_world_free(&x->w);
    free(x);
}

/* Candidates B must not use (private and loopback ones from a peer
 * without allow_private, garbage, far too many): B answers, ignores them,
 * and the set-up ends at the handshake timeout; B keeps serving. */
/* UDP datagrams B sends to the absurd candidates' addresses, and to the
 * public (TEST-NET, public here) ones A named. */
typedef struct b_sent {
    int absurd, named_public;
} b_sent;

static void count_b_sent(const flare_sim_trace_rec *rec, void *user)
{
    b_sent *c = user;
    if (rec->verdict != FLARE_SIM_SENT || rec->proto != 17 || strcmp(rec->node, "B") != 0)
        return;
    static const char *const absurd[] = {"10.0.2.2:4001", "127.0.0.1:4001", "0.0.0.0:4001",
                                         "224.0.0.1:4001", "1.2.3.4:0"};
    for (size_t i = 0; i < sizeof(absurd) / sizeof(absurd[0]); i++) {
        flare_ipaddr a;
        assert_int_equal(flare_ipaddr_parse(&a, absurd[i]), 0);
        c->absurd += flare_ipaddr_equal(&a, &rec->dst);
    }
    c->named_public += rec->dst.family == 4 && rec->dst.ip[0] == 198 && rec->dst.ip[1] == 51 &&
                       rec->dst.ip[2] == 100 && rec->dst.port >= 1000 && rec->dst.port < 1200;
}

static void test_absurd_candidates(void **state)
{
    world *x = calloc(1, sizeof(*x));
    world_up(x, NULL);
    b_sent sent = {0};
    flare_sim_set_trace(x->w.sim, count_b_sent, &sent);
    rogue r;
    rogue_open(x, &r);
    rogue_offer(&r);
    static const char *const cands[] = {
        "{\"candidate\":\"candidate:1 1 udp 2122260223 10.0.2.2 4001 typ host\",\"sdpMid\":\"0\"}",
        "{\"candidate\":\"candidate:1 1 udp 2122260223 127.0.0.1 4001 typ host\"}",
        "{\"candidate\":\"candidate:1 1 udp 2122260223 0.0.0.0 4001 typ host\"}",
        "{\"candidate\":\"candidate:1 1 udp 2122260223 224.0.0.1 4001 typ host\"}",
        "{\"candidate\":\"candidate:1 1 udp 99999999999 1.2.3.4 0 typ host\"}",
        "{\"candidate\":\"candidate:1 1 udp 1 abcd.local 4001 typ host\"}",
        "{\"candidate\":\"\"}",
        "null",
        "\"\"",
        "{\"candidate\":\"candidate:\\u0000\"}",
        "not json at all",
    };
    for (size_t i = 0; i < sizeof(cands) / sizeof(cands[0]); i++)
        rogue_send(&r, FLARE__SIGNAL_ICE_CANDIDATE, cands[i], strlen(cands[i]));
    /* Far more candidates than B takes. */
    for (int i = 0; i < 200; i++) {
        char c[160];
        int n = snprintf(c, sizeof(c),
                         "{\"candidate\":\"candidate:1 1 udp 2122260223 198.51.100.%d %d typ "
                         "host\"}",
                         50 + i % 100, 1000 + i);
        rogue_send(&r, FLARE__SIGNAL_ICE_CANDIDATE, c, (size_t)n);
    }
    flare_sim_run_for(x->w.sim, 1 * S);
    assert_true(r.got > 0); /* answered */
    assert_false(r.closed);
    size_t conns = flare_host_num_conns(x->w.b.h); /* the inbound WebRTC one being set up */
    flare_sim_run_for(x->w.sim, 20 * S);
    assert_true(r.closed); /* and given up at the timeout */
    assert_int_equal(r.err, FLARE_ERR_RESET);
    assert_true(flare_host_num_conns(x->w.b.h) < conns); /* the inbound WebRTC one is gone */
    /* B ran connectivity checks to the public candidates it took, never to
     * its own, loopback, unspecified, multicast or port-0 ones. */
    assert_true(sent.named_public > 0);
    assert_int_equal(sent.absurd, 0);
    flare_sim_set_trace(x->w.sim, NULL, NULL);
    flare_buf_free(&r.in);
    still_serves(x);
    flare_sim_world_free(&x->w);
    free(x);
}

/* One peer may have 4 set-ups under way at B: a 5th and 6th signalling
 * stream are reset at once, the others wait for their offer. */
static void test_per_peer_cap(void **state)
{
    world *x = calloc(1, sizeof(*x));
    world_up(x, NULL);
    rogue r[6];
    for (int i = 0; i < 6; i++)
        rogue_open(x, &r[i]);
    flare_sim_run_for(x->w.sim, 1 * S);
    int closed = 0;
    for (int i = 0; i < 6; i++) {
        closed += r[i].closed;
        flare_buf_free(&r[i].in);
    }
    assert_int_equal(closed, 2);
    flare_sim_world_free(&x->w);
    free(x);
}

/* B takes the stream and never answers: A's dial fails at the handshake
 * timeout with FLARE_ERR_TIMEOUT. */
static void silent_open(flare_stream *s, int status, void *user) {}

static void test_no_answer(void **state)
{
    world *x = calloc(1, sizeof(*x));
    world_up(x, NULL);
    flare_stream_cbs quiet = {.on_open = silent_open};
    assert_int_equal(flare_host_set_handler(x->w.b.h, FLARE__SIGNAL_PROTOCOL_ID, &quiet, NULL,
                                            FLARE_HANDLER_ALLOW_LIMITED),
                     0);
    flare_tstamp t0 = flare_sim_now(x->w.sim);
    flare_test_dial d = {0};
    flare_multiaddr ma;
    webrtc_addr(x, x->w.b.h, &ma);
    assert_int_equal(flare_host_dial(x->w.a.h, &ma, NULL, flare_test_dial_cb, &d), 0);
    for (int i = 0; i < 400 && !d.calls; i++)
        flare_sim_run_for(x->w.sim, 100 * MS);
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.status, FLARE_ERR_TIMEOUT);
    flare_tstamp took = flare_sim_now(x->w.sim) - t0;
    assert_true(took >= 14 * S && took <= 26 * S);
    flare_sim_world_free(&x->w);
    free(x);
}

/* A opens more data channels than B allows: B closes the extra ones, the
 * connection and the streams within the limit go on. */
static void test_too_many_channels(void **state)
{
    world *x = calloc(1, sizeof(*x));
    world_up(x, NULL);
    x->w.b.h->cfg.max_streams_per_conn = 4;
    flare_test_dial d = {0};
    flare_conn *c = dial_webrtc(x, x->w.a.h, x->w.b.h, &d);
    assert_int_equal(d.status, 0);
    rogue rs[12];
    int failed = 0;
    for (int i = 0; i < 12; i++) {
        memset(&rs[i], 0, sizeof(rs[i]));
        flare_stream_cbs cbs = {.on_data = rg_data, .on_close = rg_close};
        flare_buf_init(&rs[i].in, NULL);
        assert_int_equal(flare_conn_new_stream(c, ECHO_PROTO, &cbs, &rs[i], 0, &rs[i].s), 0);
        flare_stream_write(rs[i].s, (const uint8_t *)"hi", 2);
    }
    flare_sim_run_for(x->w.sim, 3 * S);
    for (int i = 0; i < 12; i++) {
        failed += rs[i].closed && rs[i].err != 0;
        if (!rs[i].closed)
            flare_stream_close_write(rs[i].s);
    }
    assert_true(failed >= 8);
    assert_non_null(webrtc_conn(x->w.a.h, flare_host_peerid(x->w.b.h)));
    flare_sim_run_for(x->w.sim, 3 * S);
    for (int i = 0; i < 12; i++)
        flare_buf_free(&rs[i].in);
    echo_over(x->w.sim, c); /* the connection still serves */
    flare_sim_world_free(&x->w);
    free(x);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_dial_echo),         cmocka_unit_test(test_dial_other_way),
    cmocka_unit_test(test_bad_sdp),           cmocka_unit_test(test_message_too_large),
    cmocka_unit_test(test_absurd_candidates), cmocka_unit_test(test_no_answer),
    cmocka_unit_test(test_too_many_channels), cmocka_unit_test(test_per_peer_cap),
    cmocka_unit_test(test_shared_udp_port),
};

int main(void)
{
    return cmocka_run_group_tests(tests, NULL, NULL);
}
