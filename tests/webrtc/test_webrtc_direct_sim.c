/* /webrtc-direct as a host transport on the simulated network: a listener
 * announces /udp/P/webrtc-direct/certhash/H; a dialer's STUN check, DTLS,
 * SCTP and the Noise handshake on channel 0 make a connection that carries
 * identify, ping and an echo stream; a wrong certhash is refused; garbage
 * datagrams on the port are ignored and the node keeps serving. */
#include <stdlib.h>

#include "support/test.h"

#include "flare/host.h"
#include "flare/sim.h"
#include "flare/sim_world.h"
#include "flare/stun.h"
#include "support/helpers.h"

#define MS FLARE_NS_PER_MS

typedef flare_test_node wnode;

static void make(flare_sim *sim, wnode *n, const char *name, const char *ip, uint8_t seed)
{
    assert_int_equal(
        flare_test_node_make(sim, flare_sim_internet(sim), n, name, ip, seed, 10 * MS, NULL), 0);
}

/* A listens on /udp/4001/webrtc-direct: its address carries the certhash. */
static void listen_wd(wnode *a, flare_multiaddr *bound)
{
    flare_multiaddr ma;
    char s[96];
    snprintf(s, sizeof(s), "/ip4/%s/udp/4001/webrtc-direct", a->ip);
    assert_int_equal(flare_multiaddr_parse(&ma, s), 0);
    assert_int_equal(flare_host_listen(a->h, &ma), 0);
    assert_int_equal(flare_host_listen_addrs(a->h, bound, 1), 1);
    char t[256];
    assert_int_equal(flare_multiaddr_to_string(bound, t, sizeof(t)) > 0, 1);
    snprintf(s, sizeof(s), "/ip4/%s/udp/4001/webrtc-direct/certhash/u", a->ip);
    assert_memory_equal(t, s, strlen(s));
    assert_true(flare_multiaddr_has(bound, FLARE_MA_CERTHASH));
}

static void test_webrtc_direct_connect_identify_ping_echo(void **state)
{
    flare_sim *sim = flare_sim_new(1, NULL);
    wnode a, b;
    make(sim, &a, "a", "198.51.100.1", 1);
    make(sim, &b, "b", "198.51.100.2", 2);
    flare_multiaddr ma;
    listen_wd(&a, &ma);
    assert_int_equal(flare_host_set_handler(a.h, "/echo/1", &flare_test_echo_cbs, NULL, 0), 0);
    assert_int_equal(flare_multiaddr_with_peerid(&ma, flare_host_peerid(a.h)), 0);
    flare_conn *conn = flare_test_dial_ok(sim, b.h, &ma, 3000);
    assert_int_equal(a.opened, 1);
    assert_int_equal(b.opened, 1);
    flare_test_assert_stack(conn, "webrtc-direct", "noise", "webrtc");
    assert_true(a.identified >= 1);
    assert_true(b.identified >= 1);
    flare_test_ping_ok(sim, &b, flare_host_peerid(a.h), 40 * MS, 60 * MS);
    flare_test_echo_ok(sim, b.h, flare_host_peerid(a.h), "/echo/1", 200000, 16384, 10000);
    flare_host_del(b.h);
    flare_host_del(a.h);
    flare_sim_del(sim);
}

typedef struct answers {
    int n, ok;
} answers;

static void garbage_recv(flare_io_udp *u, const flare_ipaddr *from, const uint8_t *data, size_t len,
                         void *user)
{
    answers *a = user;
    flare_stun_msg m;
    a->n++;
    /* A success answer keyed with the ufrag, naming our address. */
    flare_ipaddr mapped;
    if (flare_stun_parse(&m, data, len) == 0 && m.cls == FLARE_STUN_SUCCESS &&
        flare_stun_check_integrity(&m, (const uint8_t *)"abc", 3) == 0 &&
        flare_stun_get_addr(&m, FLARE_STUN_ATTR_XOR_MAPPED_ADDRESS, &mapped) == 0 &&
        mapped.port != 0)
        a->ok++;
}

/* A Binding request from ufrag "abc" with integrity keyed by key. */
static size_t check_req(uint8_t *buf, size_t cap, const char *key)
{
    uint8_t txid[FLARE_STUN_TXID_LEN] = {1, 2, 3};
    flare_stun_builder b;
    flare_stun_build_init(&b, buf, cap, FLARE_STUN_BINDING, FLARE_STUN_REQUEST, txid);
    flare_stun_add_attr(&b, FLARE_STUN_ATTR_USERNAME, "abc:abc", 7);
    flare_stun_add_u64(&b, FLARE_STUN_ATTR_ICE_CONTROLLING, 42);
    flare_stun_add_integrity(&b, (const uint8_t *)key, strlen(key));
    flare_stun_add_fingerprint(&b);
    int n = flare_stun_build_finish(&b);
    assert_true(n > 0);
    return (size_t)n;
}

/* A wrong certhash fails the dial in DTLS; garbage (bad STUN, fake DTLS,
 * other bytes) is dropped without an answer; A still serves afterwards. */
static void test_webrtc_direct_wrong_hash_and_garbage(void **state)
{
    flare_sim *sim = flare_sim_new(2, NULL);
    wnode a, b, g;
    make(sim, &a, "a", "198.51.100.1", 1);
    make(sim, &b, "b", "198.51.100.2", 2);
    make(sim, &g, "g", "198.51.100.3", 3);
    flare_multiaddr ma;
    listen_wd(&a, &ma);
    char s[256], bad[256];
    flare_multiaddr_to_string(&ma, s, sizeof(s));
    /* Another certificate's hash (one character of the hash changed). */
    snprintf(bad, sizeof(bad), "%s", s);
    size_t n = strlen(bad);
    bad[n - 2] = bad[n - 2] == 'A' ? 'B' : 'A';
    flare_multiaddr wrong;
    assert_int_equal(flare_multiaddr_parse(&wrong, bad), 0);
    flare_test_dial r = {0};
    assert_int_equal(flare_host_dial(b.h, &wrong, NULL, flare_test_dial_cb, &r), 0);
    flare_test_run_ms(sim, 5000);
    assert_int_equal(r.calls, 1);
    assert_true(r.status < 0);
    assert_int_equal(a.opened, 0);
    /* Garbage from G's own socket. */
    flare_io *io = flare_sim_host_io(g.sh);
    flare_ipaddr any, to;
    memset(&any, 0, sizeof(any));
    any.family = 4;
    assert_int_equal(flare_ipaddr_parse(&to, "198.51.100.1:4001"), 0);
    any.family = to.family;
    answers ans = {0};
    flare_io_udp *u;
    assert_int_equal(io->ops->udp_bind(io, &any, 0, garbage_recv, &ans, &u), 0);
    uint8_t d[300];
    for (int i = 0; i < 200; i++) {
        for (size_t j = 0; j < sizeof(d); j++)
            d[j] = (uint8_t)(i * 31 + j * 7);
        d[0] = (uint8_t)(i % 64); /* STUN and DTLS first bytes */
        if (i % 4 == 0) {         /* a STUN header with the cookie, bad rest */
            d[0] = 0;
            d[1] = 1;
            d[2] = 0;
            d[3] = 8;
            d[4] = 0x21, d[5] = 0x12, d[6] = 0xA4, d[7] = 0x42;
        }
        io->ops->udp_send(u, &to, d, 20 + (size_t)(i % 200));
    }
    /* A check whose integrity is not keyed with its ufrag. */
    size_t rl = check_req(d, sizeof(d), "wrong");
    io->ops->udp_send(u, &to, d, rl);
    flare_test_run_ms(sim, 500);
    assert_int_equal(ans.n, 0);
    assert_int_equal(a.opened, 0);
    /* The spec's convention (password = ufrag) is answered, with integrity. */
    rl = check_req(d, sizeof(d), "abc");
    io->ops->udp_send(u, &to, d, rl);
    flare_test_run_ms(sim, 200);
    assert_int_equal(ans.n, 1);
    assert_int_equal(ans.ok, 1);
    /* The right hash still works. */
    flare_test_dial r2 = {0};
    assert_int_equal(flare_host_dial(b.h, &ma, NULL, flare_test_dial_cb, &r2), 0);
    flare_test_run_ms(sim, 3000);
    assert_int_equal(r2.status, 0);
    assert_int_equal(a.opened, 1);
    io->ops->udp_close(u);
    flare_host_del(b.h);
    flare_host_del(a.h);
    flare_host_del(g.h);
    flare_sim_del(sim);
}

/* A host given a previous host's certificate (webrtc_cert_pem) announces
 * the same certhash; a bad PEM fails host creation. */
static void test_webrtc_direct_cert_kept(void **state)
{
    flare_sim *sim = flare_sim_new(3, NULL);
    wnode a, a2;
    make(sim, &a, "a", "198.51.100.1", 1);
    flare_multiaddr ma, ma2;
    listen_wd(&a, &ma);
    flare_buf pem;
    flare_buf_init(&pem, NULL);
    assert_int_equal(flare_host_webrtc_cert_pem(a.h, &pem), 0);
    assert_int_equal(flare_buf_append(&pem, (const uint8_t *)"", 1), 0);
    flare_host_settings cfg;
    flare_test_settings_default(&cfg);
    cfg.webrtc_cert_pem = (const char *)pem.base;
    assert_int_equal(
        flare_test_node_make(sim, flare_sim_internet(sim), &a2, "a2", "198.51.100.9", 9, 0, &cfg),
        0);
    listen_wd(&a2, &ma2);
    flare_ma_component c1, c2;
    assert_int_equal(flare_multiaddr_find(&ma, FLARE_MA_CERTHASH, &c1), 0);
    assert_int_equal(flare_multiaddr_find(&ma2, FLARE_MA_CERTHASH, &c2), 0);
    assert_int_equal(c1.value_len, c2.value_len);
    assert_memory_equal(c1.value, c2.value, c1.value_len);
    flare_host_del(a2.h);
    cfg.webrtc_cert_pem = "-----BEGIN nonsense-----";
    flare_test_host_spec sp = {.name = "a3",
                               .lan = flare_sim_internet(sim),
                               .ip = "198.51.100.10",
                               .seed = {9},
                               .cfg = &cfg,
                               .on_event = flare_test_node_event,
                               .user = &a2};
    flare_sim_host *sh3;
    flare_host *h3 = NULL;
    assert_true(flare_test_host_make(sim, &sp, &sh3, &h3) != 0);
    flare_buf_free(&pem);
    flare_host_del(a.h);
    flare_sim_del(sim);
}

static void count_recv(flare_io_udp *u, const flare_ipaddr *from, const uint8_t *data, size_t len,
                       void *user)
{
    flare_stun_msg m;
    if (flare_stun_parse(&m, data, len) == 0 && m.cls == FLARE_STUN_SUCCESS)
        (*(int *)user)++;
}

/* A QUIC listener on udp/4001 and a webrtc-direct one on the same port:
 * one socket, demultiplexed by first byte. WebRTC-direct, QUIC and a plain
 * STUN Binding request (the STUN server's) all work on that port. */
static void test_webrtc_direct_shares_quic_port(void **state)
{
    flare_sim *sim = flare_sim_new(4, NULL);
    wnode a, b, c;
    make(sim, &a, "a", "198.51.100.1", 1);
    make(sim, &b, "b", "198.51.100.2", 2);
    make(sim, &c, "c", "198.51.100.3", 3);
    flare_multiaddr q, w;
    assert_int_equal(flare_multiaddr_parse(&q, "/ip4/198.51.100.1/udp/4001/quic-v1"), 0);
    assert_int_equal(flare_host_listen(a.h, &q), 0);
    assert_int_equal(flare_multiaddr_parse(&w, "/ip4/198.51.100.1/udp/4001/webrtc-direct"), 0);
    assert_int_equal(flare_host_listen(a.h, &w), 0);
    /* A second webrtc-direct listener on that port is refused. */
    assert_int_equal(flare_host_listen(a.h, &w), FLARE_ERR_ADDR_IN_USE);
    flare_multiaddr addrs[4];
    size_t n = flare_host_listen_addrs(a.h, addrs, 4);
    assert_int_equal(n, 2);
    flare_multiaddr wa = addrs[0];
    if (!flare_multiaddr_has(&wa, FLARE_MA_CERTHASH))
        wa = addrs[1];
    char s[256];
    flare_multiaddr_to_string(&wa, s, sizeof(s));
    assert_memory_equal(s, "/ip4/198.51.100.1/udp/4001/webrtc-direct/certhash/u", 51);
    flare_test_dial r1 = {0}, r2 = {0};
    assert_int_equal(flare_host_dial(b.h, &wa, NULL, flare_test_dial_cb, &r1), 0);
    assert_int_equal(flare_host_dial(c.h, &q, NULL, flare_test_dial_cb, &r2), 0);
    flare_test_run_ms(sim, 3000);
    assert_int_equal(r1.status, 0);
    assert_int_equal(r2.status, 0);
    assert_string_equal(flare_conn_transport(r1.conn), "webrtc-direct");
    assert_string_equal(flare_conn_transport(r2.conn), "quic-v1");
    assert_int_equal(flare_host_ping(b.h, flare_host_peerid(a.h), NULL, NULL), 0);
    flare_test_run_ms(sim, 1000);
    assert_int_equal(b.pings, 1);
    /* A plain Binding request to the shared port: the STUN server answers. */
    flare_io *io = flare_sim_host_io(c.sh);
    flare_ipaddr any = {.family = 4}, to;
    assert_int_equal(flare_ipaddr_parse(&to, "198.51.100.1:4001"), 0);
    int got = 0;
    flare_io_udp *u;
    assert_int_equal(io->ops->udp_bind(io, &any, 0, count_recv, &got, &u), 0);
    uint8_t req[64], txid[FLARE_STUN_TXID_LEN] = {7};
    flare_stun_builder sb;
    flare_stun_build_init(&sb, req, sizeof(req), FLARE_STUN_BINDING, FLARE_STUN_REQUEST, txid);
    int rl = flare_stun_build_finish(&sb);
    assert_true(rl > 0);
    io->ops->udp_send(u, &to, req, (size_t)rl);
    flare_test_run_ms(sim, 200);
    assert_int_equal(got, 1);
    io->ops->udp_close(u);
    flare_host_del(b.h);
    flare_host_del(c.h);
    flare_host_del(a.h);
    flare_sim_del(sim);
}

/* Closing a connection tells the peer at once (an SCTP SHUTDOWN, then
 * DTLS's close_notify): it sees FLARE_ERR_CLOSED within a round trip
 * rather than at a timeout; and the same from the listener's side. */
static void test_webrtc_direct_close_reaches_peer(void **state)
{
    flare_sim *sim = flare_sim_new(5, NULL);
    wnode a, b;
    make(sim, &a, "a", "198.51.100.1", 1);
    make(sim, &b, "b", "198.51.100.2", 2);
    flare_multiaddr ma;
    listen_wd(&a, &ma);
    for (int round = 0; round < 2; round++) {
        flare_test_dial r = {0};
        assert_int_equal(flare_host_dial(b.h, &ma, NULL, flare_test_dial_cb, &r), 0);
        flare_test_run_ms(sim, 2000);
        assert_int_equal(r.status, 0);
        assert_int_equal(a.opened, round + 1);
        flare_conn *c = r.conn;
        if (round == 1) { /* the listener closes */
            c = flare_host_conn_to(a.h, flare_host_peerid(b.h));
            assert_non_null(c);
        }
        wnode *closer = round == 0 ? &b : &a, *other = round == 0 ? &a : &b;
        int before = other->closed;
        flare_conn_close(c);
        assert_int_equal(closer->closed, round + 1);
        /* 10 ms each way on each link: the news is there in 20 ms. */
        flare_test_run_ms(sim, 60);
        assert_int_equal(other->closed, before + 1);
        assert_int_equal(other->closed_err, FLARE_ERR_CLOSED); /* "closed (gracefully)" */
    }
    flare_host_del(b.h);
    flare_host_del(a.h);
    flare_sim_del(sim);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_webrtc_direct_connect_identify_ping_echo),
        cmocka_unit_test(test_webrtc_direct_wrong_hash_and_garbage),
        cmocka_unit_test(test_webrtc_direct_cert_kept),
        cmocka_unit_test(test_webrtc_direct_shares_quic_port),
        cmocka_unit_test(test_webrtc_direct_close_reaches_peer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
