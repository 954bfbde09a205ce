/* WebSocket transports on the simulated network: two hosts over /ws and
 * over /tls/ws (a test CA), identify, ping and a 1 KiB echo over them, and
 * hostile clients (a bad upgrade, garbage on the TLS port, a client that
 * stalls) that fail alone while the listener keeps serving. */
#include <stdlib.h>

#include "support/test.h"
#include "support/tls_cert.h"

#include "flare/host.h"
#include "flare/io.h"
#include "flare/sim.h"
#include "flare/sim_world.h"

#define MS FLARE_NS_PER_MS

static flare_test_certs certs;

static int setup(void **state)
{
    (void)state;
    return flare_test_certs_make(&certs);
}

static int teardown(void **state)
{
    (void)state;
    flare_test_certs_remove(&certs);
    return 0;
}

typedef struct node {
    flare_sim_host *sh;
    flare_host *h;
    int opened, identified, incoming_failed, pings;
    flare_multiaddr last_remote;
} node;

static void on_event(flare_host *h, const flare_host_event *ev, void *user)
{
    node *n = user;
    (void)h;
    if (ev->type == FLARE_HOST_EV_CONN_OPENED) {
        n->opened++;
        n->last_remote = *ev->u.conn.addr;
    } else if (ev->type == FLARE_HOST_EV_IDENTIFIED)
        n->identified++;
    else if (ev->type == FLARE_HOST_EV_INCOMING_FAILED)
        n->incoming_failed++;
    else if (ev->type == FLARE_HOST_EV_PING)
        n->pings++;
}

static void make_node(flare_sim *sim, node *n, const char *name, const char *ip, uint8_t seed,
                      int server)
{
    memset(n, 0, sizeof(*n));
    flare_host_settings cfg;
    flare_test_settings_default(&cfg);
    cfg.handshake_timeout = 3 * FLARE_NS_PER_S;
    if (server) {
        cfg.tls_cert_file = certs.cert;
        cfg.tls_key_file = certs.key;
    }
    cfg.tls_ca_file = certs.ca;
    flare_test_host_spec sp = {.name = name,
                               .lan = flare_sim_internet(sim),
                               .ip = ip,
                               .link = {.delay = 10 * MS},
                               .seed = {seed},
                               .cfg = &cfg,
                               .on_event = on_event,
                               .user = n};
    assert_int_equal(flare_test_host_make(sim, &sp, &n->sh, &n->h), 0);
}

static void listen_str(node *n, const char *s)
{
    flare_multiaddr ma;
    assert_int_equal(flare_multiaddr_parse(&ma, s), 0);
    assert_int_equal(flare_host_listen(n->h, &ma), 0);
}

static void peer_addr(flare_multiaddr *ma, const char *s, node *peer)
{
    assert_int_equal(flare_multiaddr_parse(ma, s), 0);
    assert_int_equal(flare_multiaddr_with_peerid(ma, flare_host_peerid(peer->h)), 0);
}

/* ---- echo ------------------------------------------------------------------------- */

typedef struct echo_client {
    uint8_t got[2048];
    size_t n;
    int eof, closed;
} echo_client;

static void ec_data(flare_stream *s, const uint8_t *d, size_t len, void *user)
{
    echo_client *e = user;
    (void)s;
    if (e->n + len <= sizeof(e->got))
        memcpy(e->got + e->n, d, len);
    e->n += len;
}

static void ec_eof(flare_stream *s, void *user)
{
    ((echo_client *)user)->eof = 1;
    (void)s;
}

static void ec_close(flare_stream *s, int err, void *user)
{
    ((echo_client *)user)->closed = 1;
    (void)s;
    (void)err;
}

static const flare_stream_cbs ec_cbs = {.on_data = ec_data, .on_eof = ec_eof, .on_close = ec_close};

static void echo_1k(flare_sim *sim, node *from, node *to)
{
    uint8_t msg[1024];
    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (uint8_t)(i * 13 + 1);
    echo_client e = {0};
    flare_stream *s;
    assert_int_equal(
        flare_host_new_stream(from->h, flare_host_peerid(to->h), "/test/echo", &ec_cbs, &e, 0, &s),
        0);
    assert_int_equal(flare_stream_write(s, msg, sizeof(msg)), 0);
    flare_stream_close_write(s);
    flare_test_run_ms(sim, 1000);
    assert_true(e.eof);
    assert_int_equal(e.n, sizeof(msg));
    assert_memory_equal(e.got, msg, sizeof(msg));
}

/* ---- over ws and wss ---------------------------------------------------------------- */

static void run_pair(const char *listen, const char *dial, const char *transport,
                     const char *listen_as)
{
    flare_sim *sim = flare_sim_new(3, NULL);
    node a, b;
    make_node(sim, &a, "a", "198.51.100.1", 1, 1);
    make_node(sim, &b, "b", "198.51.100.2", 2, 0);
    flare_host_set_handler(a.h, "/test/echo", &flare_test_echo_cbs, NULL, 0);
    listen_str(&a, listen);
    flare_multiaddr la[4];
    assert_int_equal(flare_host_listen_addrs(a.h, la, 4), 1);
    char s[256];
    flare_multiaddr_to_string(&la[0], s, sizeof(s));
    assert_string_equal(s, listen_as);

    flare_multiaddr ma;
    peer_addr(&ma, dial, &a);
    flare_test_dial r = {0};
    assert_int_equal(flare_host_dial(b.h, &ma, NULL, flare_test_dial_cb, &r), 0);
    flare_test_run_ms(sim, 2000);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.status, 0);
    assert_string_equal(flare_conn_transport(r.conn), transport);
    assert_int_equal(a.opened, 1);
    assert_true(a.identified >= 1 && b.identified >= 1);
    /* The listener sees the dialer at its WebSocket address. */
    flare_multiaddr_to_string(&a.last_remote, s, sizeof(s));
    assert_true(strstr(s, "/ws") != NULL);
    /* Identify told B the WebSocket listen address. */
    flare_peer_info *info = malloc(sizeof(*info));
    assert_int_equal(flare_host_peer_info(b.h, flare_host_peerid(a.h), info), 0);
    int found = 0;
    for (size_t i = 0; i < info->naddrs; i++) {
        flare_multiaddr_to_string(&info->addrs[i], s, sizeof(s));
        found |= strcmp(s, listen_as) == 0;
    }
    free(info);
    assert_true(found);
    assert_int_equal(flare_host_ping(b.h, flare_host_peerid(a.h), NULL, NULL), 0);
    flare_test_run_ms(sim, 1000);
    assert_int_equal(b.pings, 1);
    echo_1k(sim, &b, &a);
    flare_host_del(a.h);
    flare_host_del(b.h);
    flare_sim_del(sim);
}

static void test_ws(void **state)
{
    (void)state;
    run_pair("/ip4/198.51.100.1/tcp/80/ws", "/ip4/198.51.100.1/tcp/80/ws", "ws",
             "/ip4/198.51.100.1/tcp/80/ws");
}

static void test_wss(void **state)
{
    (void)state;
    run_pair("/ip4/198.51.100.1/tcp/443/tls/ws", "/ip4/198.51.100.1/tcp/443/tls/sni/localhost/ws",
             "wss", "/ip4/198.51.100.1/tcp/443/tls/ws");
    /* /wss is the same. */
    run_pair("/ip4/198.51.100.1/tcp/443/wss", "/ip4/198.51.100.1/tcp/443/tls/sni/localhost/ws",
             "wss", "/ip4/198.51.100.1/tcp/443/tls/ws");
}

static void test_wss_untrusted(void **state)
{
    (void)state;
    flare_sim *sim = flare_sim_new(4, NULL);
    node a, b;
    make_node(sim, &a, "a", "198.51.100.1", 1, 1);
    make_node(sim, &b, "b", "198.51.100.2", 2, 0);
    listen_str(&a, "/ip4/198.51.100.1/tcp/443/tls/ws");
    /* The certificate does not name the address (no SNI given). */
    flare_multiaddr ma;
    peer_addr(&ma, "/ip4/198.51.100.1/tcp/443/tls/ws", &a);
    flare_test_dial r = {0};
    assert_int_equal(flare_host_dial(b.h, &ma, NULL, flare_test_dial_cb, &r), 0);
    flare_test_run_ms(sim, 2000);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.status, FLARE_ERR_CRYPTO);
    assert_int_equal(a.opened, 0);
    flare_host_del(a.h);
    flare_host_del(b.h);
    flare_sim_del(sim);
}

static void test_wss_needs_cert(void **state)
{
    (void)state;
    flare_sim *sim = flare_sim_new(5, NULL);
    node b;
    make_node(sim, &b, "b", "198.51.100.2", 2, 0);
    flare_multiaddr ma;
    assert_int_equal(flare_multiaddr_parse(&ma, "/ip4/198.51.100.2/tcp/443/tls/ws"), 0);
    assert_int_equal(flare_host_listen(b.h, &ma), FLARE_ERR_INVALID_ARG);
    /* The simulator resolves no names. */
    assert_int_equal(flare_multiaddr_parse(&ma, "/dns4/example.com/tcp/443/tls/ws"), 0);
    assert_int_equal(flare_host_dial(b.h, &ma, NULL, NULL, NULL), FLARE_ERR_UNSUPPORTED);
    flare_host_del(b.h);
    /* A certificate file that is not there fails the host. */
    flare_host_settings cfg;
    flare_test_settings_default(&cfg);
    cfg.tls_cert_file = "/nonexistent.pem";
    cfg.tls_key_file = certs.key;
    flare_privkey k;
    uint8_t seed[32] = {9};
    assert_int_equal(flare_privkey_from_seed(&k, seed), 0);
    flare_host *h = NULL;
    flare_sim_host *sh = flare_sim_host_new(sim, "c");
    assert_int_equal(flare_host_new(&h, flare_sim_host_io(sh), &k, &cfg, NULL),
                     FLARE_ERR_NOT_FOUND);
    flare_sim_del(sim);
}

/* ---- hostile clients ------------------------------------------------------------------ */

typedef struct raw {
    flare_io *io;
    flare_io_sock *s;
    int connected, closed, eof;
    char got[512];
    size_t n;
    const char *send;
} raw;

static void raw_connect(flare_io_sock *s, int status, void *user)
{
    raw *r = user;
    if (status) {
        r->closed = 1;
        return;
    }
    r->connected = 1;
    if (r->send)
        r->io->ops->sock_write(s, (const uint8_t *)r->send, strlen(r->send));
}

static void raw_read(flare_io_sock *s, const uint8_t *d, size_t len, void *user)
{
    raw *r = user;
    (void)s;
    if (len == 0) {
        r->eof = 1;
        return;
    }
    size_t k = len < sizeof(r->got) - 1 - r->n ? len : sizeof(r->got) - 1 - r->n;
    memcpy(r->got + r->n, d, k);
    r->n += k;
}

static void raw_close(flare_io_sock *s, int reason, void *user)
{
    (void)s;
    (void)reason;
    ((raw *)user)->closed = 1;
}

static const flare_io_sock_cbs raw_cbs = {raw_connect, raw_read, raw_close, NULL};

static void raw_dial(raw *r, flare_sim_host *from, const char *ip, int port, const char *send)
{
    memset(r, 0, sizeof(*r));
    r->io = flare_sim_host_io(from);
    r->send = send;
    flare_ipaddr to;
    char s[64];
    snprintf(s, sizeof(s), "%s:%d", ip, port);
    assert_int_equal(flare_ipaddr_parse(&to, s), 0);
    assert_int_equal(r->io->ops->dial(r->io, NULL, &to, 0, &raw_cbs, r, &r->s), 0);
}

static void test_hostile_clients(void **state)
{
    (void)state;
    flare_sim *sim = flare_sim_new(6, NULL);
    node a, b, c;
    make_node(sim, &a, "a", "198.51.100.1", 1, 1);
    make_node(sim, &b, "b", "198.51.100.2", 2, 0);
    make_node(sim, &c, "c", "198.51.100.3", 3, 0);
    flare_host_set_handler(a.h, "/test/echo", &flare_test_echo_cbs, NULL, 0);
    listen_str(&a, "/ip4/198.51.100.1/tcp/80/ws");
    listen_str(&a, "/ip4/198.51.100.1/tcp/443/tls/ws");
    /* A bad upgrade gets an HTTP refusal and the end of the connection. */
    raw bad, junk, stall;
    raw_dial(&bad, c.sh, "198.51.100.1", 80, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    /* Plain HTTP on the TLS port, and a TLS client that says nothing. */
    raw_dial(&junk, c.sh, "198.51.100.1", 443, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    raw_dial(&stall, c.sh, "198.51.100.1", 443, NULL);
    flare_test_run_ms(sim, 500);
    assert_true(strncmp(bad.got, "HTTP/1.1 426 ", 13) == 0);
    assert_true(bad.eof || bad.closed);
    assert_true(junk.eof || junk.closed);
    assert_true(stall.connected && !stall.eof && !stall.closed);
    /* Meanwhile a real client is served on both ports. */
    flare_multiaddr ma;
    peer_addr(&ma, "/ip4/198.51.100.1/tcp/443/tls/sni/localhost/ws", &a);
    flare_test_dial r = {0};
    assert_int_equal(flare_host_dial(b.h, &ma, NULL, flare_test_dial_cb, &r), 0);
    flare_test_run_ms(sim, 1000);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.calls, 1);
    echo_1k(sim, &b, &a);
    /* The staller is cut at the handshake deadline (3 s). */
    flare_test_run_ms(sim, 3000);
    assert_true(stall.eof || stall.closed);
    assert_true(a.incoming_failed >= 3);
    /* And the listener still serves. */
    peer_addr(&ma, "/ip4/198.51.100.1/tcp/80/ws", &a);
    flare_test_dial r2 = {0};
    assert_int_equal(flare_host_dial(c.h, &ma, NULL, flare_test_dial_cb, &r2), 0);
    flare_test_run_ms(sim, 1000);
    assert_int_equal(r2.status, 0);
    echo_1k(sim, &c, &a);
    if (bad.s && !bad.closed)
        bad.io->ops->sock_close(bad.s, 1);
    if (junk.s && !junk.closed)
        junk.io->ops->sock_close(junk.s, 1);
    if (stall.s && !stall.closed)
        stall.io->ops->sock_close(stall.s, 1);
    flare_host_del(a.h);
    flare_host_del(b.h);
    flare_host_del(c.h);
    flare_sim_del(sim);
}

/* ---- a relay between transports -------------------------------------------------------- */

static void rel_data(flare_stream *s, const uint8_t *d, size_t len, void *user)
{
    echo_client *e = user;
    (void)s;
    if (e->n + len <= sizeof(e->got))
        memcpy(e->got + e->n, d, len);
    e->n += len;
}

static const flare_stream_cbs rel_cbs = {.on_data = rel_data, .on_eof = ec_eof};

/* A, B private behind their NATs, R public (10 ms away), hole punching off;
 * cfg (with TLS settings or none) for every host. */
static void relay_world(flare_sim_world *w, uint64_t seed, flare_host_settings *cfg)
{
    flare_sim_world_settings p;
    flare_sim_world_settings_default(&p);
    p.seed = seed;
    p.delay_a = p.delay_b = 0;
    p.delay_r = p.delay_ab = 10 * MS;
    cfg->enable_holepunch = 0;
    p.host = cfg;
    assert_int_equal(flare_sim_world_build(w, &p), 0);
}

/* B reserves on the relay at ma, over transport, and serves /test/echo on
 * limited connections. */
static void reserve_echo(flare_sim_world *w, const flare_multiaddr *ma, const char *transport)
{
    assert_int_equal(flare_host_relay_reserve(w->b.h, ma), 0);
    flare_test_run_ms(w->sim, 2000);
    assert_int_equal(w->b.rsv_ok, 1);
    assert_string_equal(flare_conn_transport(flare_host_conn_to(w->b.h, flare_host_peerid(w->r.h))),
                        transport);
    assert_int_equal(flare_host_set_handler(w->b.h, "/test/echo", &flare_test_echo_cbs, NULL,
                                            FLARE_HANDLER_ALLOW_LIMITED),
                     0);
}

/* A dials rel (B behind the relay) and reaches the relay over transport. */
static flare_conn *dial_relayed(flare_sim_world *w, const flare_multiaddr *rel,
                                const char *transport)
{
    flare_conn *c = flare_test_dial_ok(w->sim, w->a.h, rel, 3000);
    assert_string_equal(flare_conn_transport(flare_host_conn_to(w->a.h, flare_host_peerid(w->r.h))),
                        transport);
    return c;
}

/* msg echoed intact over a limited stream on c. */
static void echo_relayed(flare_sim_world *w, flare_conn *c, const uint8_t *msg, size_t len)
{
    echo_client e = {0};
    flare_stream *st;
    assert_true(len <= sizeof(e.got));
    assert_int_equal(
        flare_conn_new_stream(c, "/test/echo", &rel_cbs, &e, FLARE_STREAM_ALLOW_LIMITED, &st), 0);
    assert_int_equal(flare_stream_write(st, msg, len), 0);
    flare_stream_close_write(st);
    flare_test_run_ms(w->sim, 2000);
    assert_true(e.eof);
    assert_int_equal(e.n, len);
    assert_memory_equal(e.got, msg, len);
}

/* The relay listens on wss and TCP; the private B holds its reservation
 * over TCP; the private A reaches B through the relay over wss. */
static void test_relay_wss_to_tcp(void **state)
{
    (void)state;
    flare_host_settings cfg;
    flare_test_settings_default(&cfg);
    cfg.tls_cert_file = certs.cert;
    cfg.tls_key_file = certs.key;
    cfg.tls_ca_file = certs.ca;
    flare_sim_world w;
    relay_world(&w, 7, &cfg);
    flare_multiaddr ma;
    assert_int_equal(flare_multiaddr_parse(&ma, "/ip4/" FLARE_SIM_WORLD_RELAY_IP "/tcp/443/tls/ws"),
                     0);
    assert_int_equal(flare_host_listen(w.r.h, &ma), 0);
    assert_int_equal(flare_sim_world_relay_addr(&w, &ma), 0);
    reserve_echo(&w, &ma, "tcp");
    /* A dials B's circuit address behind the relay's wss address. */
    char s[512];
    char rid[128];
    flare_multiaddr rel;
    flare_multiaddr_to_string(&w.b.relayed, s, sizeof(s));
    const char *circ = strstr(s, "/p2p/");
    assert_non_null(circ);
    snprintf(rid, sizeof(rid), "%s", circ);
    snprintf(s, sizeof(s), "/ip4/" FLARE_SIM_WORLD_RELAY_IP "/tcp/443/tls/sni/localhost/ws%s", rid);
    assert_int_equal(flare_multiaddr_parse(&rel, s), 0);
    flare_conn *c = dial_relayed(&w, &rel, "wss");
    assert_true(flare_conn_is_limited(c));
    assert_int_equal(w.r.circ_opened, 1);
    uint8_t msg[1024];
    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (uint8_t)(i ^ 0x5a);
    echo_relayed(&w, c, msg, sizeof(msg));
    flare_sim_world_free(&w);
}

/* The other way round: the private B holds its reservation over ws, the
 * private A comes in over TCP. */
static void test_relay_reserve_over_ws(void **state)
{
    (void)state;
    flare_host_settings cfg;
    flare_test_settings_default(&cfg);
    flare_sim_world w;
    relay_world(&w, 8, &cfg);
    flare_multiaddr ma;
    assert_int_equal(flare_multiaddr_parse(&ma, "/ip4/" FLARE_SIM_WORLD_RELAY_IP "/tcp/80/ws"), 0);
    assert_int_equal(flare_host_listen(w.r.h, &ma), 0);
    assert_int_equal(flare_multiaddr_with_peerid(&ma, flare_host_peerid(w.r.h)), 0);
    reserve_echo(&w, &ma, "ws");
    char s[512];
    flare_multiaddr_to_string(&w.b.relayed, s, sizeof(s));
    assert_non_null(strstr(s, "/p2p-circuit"));
    /* A dials B through the relay's TCP address. */
    const char *circ = strstr(s, "/p2p-circuit");
    char t[512];
    snprintf(t, sizeof(t), "/ip4/" FLARE_SIM_WORLD_RELAY_IP "/tcp/4001/p2p/");
    size_t n = strlen(t);
    char rid[128];
    assert_int_equal(flare_peerid_to_string(flare_host_peerid(w.r.h), rid, sizeof(rid)) > 0, 1);
    snprintf(t + n, sizeof(t) - n, "%s%s", rid, circ);
    flare_multiaddr rel;
    assert_int_equal(flare_multiaddr_parse(&rel, t), 0);
    flare_conn *c = dial_relayed(&w, &rel, "tcp");
    uint8_t msg[1024];
    memset(msg, 0x42, sizeof(msg));
    echo_relayed(&w, c, msg, sizeof(msg));
    flare_sim_world_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ws),
        cmocka_unit_test(test_wss),
        cmocka_unit_test(test_wss_untrusted),
        cmocka_unit_test(test_wss_needs_cert),
        cmocka_unit_test(test_hostile_clients),
        cmocka_unit_test(test_relay_wss_to_tcp),
        cmocka_unit_test(test_relay_reserve_over_ws),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
