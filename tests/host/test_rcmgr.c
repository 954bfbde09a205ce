/* The resource manager: its counting allocator and query (unit), and its
 * limits on the simulated network: a one-IP flood, a second connection of
 * one peer, slow-loris handshakes, a memory limit, a protocol limit. */
#include <stdlib.h>

#include "support/test.h"

#include "flare/host.h"
#include "flare/ping.h"
#include "flare/sim.h"
#include "host/host_int.h"

#define MS FLARE_NS_PER_MS

typedef struct node {
    flare_sim_host *sh;
    flare_host *h;
    const char *ip;
    int opened, closed, incoming_failed, last_close_err, last_incoming_err;
} node;

static void on_event(flare_host *h, const flare_host_event *ev, void *user)
{
    node *n = user;
    (void)h;
    if (ev->type == FLARE_HOST_EV_CONN_OPENED)
        n->opened++;
    if (ev->type == FLARE_HOST_EV_CONN_CLOSED) {
        n->closed++;
        n->last_close_err = ev->u.conn.error;
    }
    if (ev->type == FLARE_HOST_EV_INCOMING_FAILED) {
        n->incoming_failed++;
        n->last_incoming_err = ev->u.failed.error;
    }
}

static void make(flare_sim *sim, node *n, const char *ip, uint8_t seed,
                 const flare_host_settings *cfg)
{
    flare_test_host_spec sp = {.name = ip,
                               .lan = flare_sim_internet(sim),
                               .ip = ip,
                               .link = {.delay = 2 * MS},
                               .seed = {seed},
                               .cfg = cfg,
                               .on_event = on_event,
                               .user = n,
                               .listen_port = 4001};
    n->ip = ip;
    assert_int_equal(flare_test_host_make(sim, &sp, &n->sh, &n->h), 0);
}

static void addr_of(node *n, flare_multiaddr *ma)
{
    assert_int_equal(flare_test_tcp_addr(ma, n->ip, 4001, flare_host_peerid(n->h)), 0);
}

static flare_rcmgr_usage stat_of(flare_host *h, flare_rcmgr_scope_kind kind)
{
    flare_rcmgr_scope sc = {.kind = kind};
    flare_rcmgr_usage u;
    assert_int_equal(flare_host_rcmgr_stat(h, &sc, &u), 0);
    return u;
}

/* ---- raw connections from an attacker ------------------------------------------------ */

/* n raw connections from io to ip:4001 sending payload (NULL: nothing). */
static void raw_open(flare_io *io, flare_test_raw *r, int n, const char *ip, const char *payload)
{
    flare_ipaddr target;
    assert_int_equal(flare_ipaddr_parse(&target, ip), 0);
    target.port = 4001;
    for (int i = 0; i < n; i++)
        assert_int_equal(
            flare_test_raw_dial(&r[i], io, &target, payload, payload ? strlen(payload) : 0), 0);
}

static int raw_alive(flare_test_raw *r, int n)
{
    int k = 0;
    for (int i = 0; i < n; i++)
        k += r[i].connected && !r[i].closed;
    return k;
}

static void raw_close_all(flare_test_raw *r, int n)
{
    for (int i = 0; i < n; i++)
        flare_test_raw_close(&r[i]);
}

/* n raw connections to target from a simulated host at ip (named name). */
static void raw_from(flare_sim *sim, const char *name, const char *ip, flare_test_raw *r, int n,
                     const char *target, const char *payload)
{
    flare_sim_host *m = flare_sim_host_new(sim, name);
    assert_int_equal(flare_sim_host_add_addr(m, flare_sim_internet(sim), ip), 0);
    raw_open(flare_sim_host_io(m), r, n, target, payload);
}

/* A (198.51.100.1, config cfg or the defaults) and B (198.51.100.2). */
static void make_pair(flare_sim *sim, node *a, node *b, const flare_host_settings *cfg)
{
    make(sim, a, "198.51.100.1", 1, cfg);
    make(sim, b, "198.51.100.2", 2, NULL);
}

static void del_pair(flare_sim *sim, node *a, node *b)
{
    flare_host_del(a->h);
    flare_host_del(b->h);
    flare_sim_del(sim);
}

/* ---- unit: defaults, the query, the counting allocator ------------------------------------ */

static void test_defaults(void **state)
{
    (void)state;
    flare_host_settings c;
    flare_host_settings_default(&c);
    /* Inbound can never take the outbound budget. */
    assert_int_equal(c.limits.conns_inbound + c.limits.conns_outbound, c.max_connections);
    assert_true(c.limits.conns_per_ip <= c.limits.conns_per_subnet);
    assert_true(c.limits.handshakes_per_ip <= c.limits.handshakes_per_subnet);
    assert_true(c.limits.handshakes_per_subnet <= c.limits.handshakes);
    assert_true(c.limits.mem_per_conn <= c.limits.mem_per_peer);
    assert_true(c.limits.mem_per_peer <= c.limits.mem);
}

static void test_stat_errors(void **state)
{
    (void)state;
    flare_sim *sim = flare_sim_new(1, NULL);
    node a = {0};
    make(sim, &a, "198.51.100.1", 1, NULL);
    flare_rcmgr_usage u;
    flare_rcmgr_scope sc = {.kind = FLARE_RCMGR_PEER};
    assert_int_equal(flare_host_rcmgr_stat(a.h, NULL, &u), FLARE_ERR_INVALID_ARG);
    assert_int_equal(flare_host_rcmgr_stat(a.h, &sc, &u), FLARE_ERR_INVALID_ARG);
    sc.peer = flare_host_peerid(a.h);
    assert_int_equal(flare_host_rcmgr_stat(a.h, &sc, &u), FLARE_ERR_NOT_FOUND);
    sc.kind = FLARE_RCMGR_IP;
    assert_int_equal(flare_host_rcmgr_stat(a.h, &sc, &u), FLARE_ERR_INVALID_ARG);
    flare_ipaddr ip;
    flare_ipaddr_v4(&ip, 203, 0, 113, 9, 0);
    sc.ip = &ip;
    assert_int_equal(flare_host_rcmgr_stat(a.h, &sc, &u), FLARE_ERR_NOT_FOUND);
    sc.kind = FLARE_RCMGR_PROTOCOL;
    assert_int_equal(flare_host_rcmgr_stat(a.h, &sc, &u), FLARE_ERR_INVALID_ARG);
    sc.protocol = "/nothing/1";
    assert_int_equal(flare_host_rcmgr_stat(a.h, &sc, &u), FLARE_ERR_NOT_FOUND);
    sc.kind = FLARE_RCMGR_CONN;
    assert_int_equal(flare_host_rcmgr_stat(a.h, &sc, &u), FLARE_ERR_INVALID_ARG);
    sc.kind = (flare_rcmgr_scope_kind)99;
    assert_int_equal(flare_host_rcmgr_stat(a.h, &sc, &u), FLARE_ERR_INVALID_ARG);
    u = stat_of(a.h, FLARE_RCMGR_SYSTEM);
    assert_int_equal(u.conns_inbound + u.conns_outbound + u.memory, 0);
    assert_int_equal(flare_host_set_protocol_limits(a.h, "", 1, 1), FLARE_ERR_INVALID_ARG);
    flare_host_del(a.h);
    flare_sim_del(sim);
}

static void test_counting_allocator(void **state)
{
    (void)state;
    flare_sim *sim = flare_sim_new(2, NULL);
    flare_host_settings cfg;
    flare_test_settings_default(&cfg);
    cfg.limits.mem_per_conn = 10000;
    node a = {0};
    make(sim, &a, "198.51.100.1", 1, &cfg);
    flare_conn *c = flare__conn_new(a.h, 1);
    assert_non_null(c);
    flare__rc_conn_add(c);
    const flare_mem *m = &c->rc.mem;
    size_t base = c->rc.used; /* the connection's own buffers: nothing yet */
    uint8_t *p = m->malloc(1000, m->user);
    assert_non_null(p);
    memset(p, 1, 1000);
    assert_int_equal(c->rc.used, base + 1000);
    flare_rcmgr_scope sc = {.kind = FLARE_RCMGR_CONN, .conn = c};
    flare_rcmgr_usage u;
    assert_int_equal(flare_host_rcmgr_stat(a.h, &sc, &u), 0);
    assert_int_equal(u.memory, base + 1000);
    assert_int_equal(u.conns_outbound, 1);
    assert_int_equal(stat_of(a.h, FLARE_RCMGR_SYSTEM).memory, base + 1000);
    p = m->realloc(p, 5000, m->user);
    assert_non_null(p);
    assert_int_equal(p[999], 1);
    assert_int_equal(c->rc.used, base + 5000);
    /* Over the connection's limit: refused, nothing charged, and the
     * connection's NOMEM becomes LIMIT. */
    assert_null(m->realloc(p, 20000, m->user));
    assert_null(m->malloc(6000, m->user));
    assert_null(m->calloc(SIZE_MAX / 2, 4, m->user));
    assert_int_equal(c->rc.used, base + 5000);
    assert_int_equal(flare__rc_conn_error(c, FLARE_ERR_NOMEM), FLARE_ERR_LIMIT);
    assert_int_equal(flare__rc_conn_error(c, FLARE_ERR_RESET), FLARE_ERR_RESET);
    assert_true(stat_of(a.h, FLARE_RCMGR_SYSTEM).refused_mem >= 2);
    uint8_t *q = m->calloc(10, 100, m->user);
    assert_non_null(q);
    assert_int_equal(q[999], 0);
    m->free(p, m->user);
    m->free(q, m->user);
    m->free(NULL, m->user);
    assert_int_equal(c->rc.used, base);
    flare__conn_fail(c, 0);
    assert_int_equal(stat_of(a.h, FLARE_RCMGR_SYSTEM).memory, 0);
    assert_int_equal(stat_of(a.h, FLARE_RCMGR_SYSTEM).conns_outbound, 0);
    flare_host_del(a.h);
    flare_sim_del(sim);
}

/* ---- simulator ---------------------------------------------------------------------------- */

/* 60 idle connections from one IP: the per-IP limit holds them to the
 * handshake limit, and a host on another IP connects, as does our own dial. */
static void test_one_ip_flood(void **state)
{
    (void)state;
    flare_sim *sim = flare_sim_new(3, NULL);
    node a = {0}, b = {0}, d = {0};
    make_pair(sim, &a, &b, NULL);
    make(sim, &d, "192.0.2.4", 4, NULL);
    flare_test_raw r[60] = {{0}};
    raw_from(sim, "mallory", "203.0.113.66", r, 60, "198.51.100.1", NULL);
    flare_test_run_ms(sim, 500);
    flare_host_settings cfg;
    flare_host_settings_default(&cfg);
    assert_int_equal(raw_alive(r, 60), (int)cfg.limits.handshakes_per_ip);
    flare_ipaddr mip;
    flare_ipaddr_parse(&mip, "203.0.113.66");
    flare_rcmgr_scope sc = {.kind = FLARE_RCMGR_IP, .ip = &mip};
    flare_rcmgr_usage u;
    assert_int_equal(flare_host_rcmgr_stat(a.h, &sc, &u), 0);
    assert_int_equal(u.handshakes, cfg.limits.handshakes_per_ip);
    assert_int_equal(u.conns_inbound, cfg.limits.handshakes_per_ip);
    sc.kind = FLARE_RCMGR_SUBNET;
    assert_int_equal(flare_host_rcmgr_stat(a.h, &sc, &u), 0);
    assert_int_equal(u.handshakes, cfg.limits.handshakes_per_ip);
    /* The same address seen by a dual-stack socket (::ffff:203.0.113.66)
     * counts as the IPv4 one. */
    flare_ipaddr mapped = {.family = 6};
    mapped.ip[10] = mapped.ip[11] = 0xff;
    memcpy(mapped.ip + 12, mip.ip, 4);
    sc.kind = FLARE_RCMGR_IP;
    sc.ip = &mapped;
    assert_int_equal(flare_host_rcmgr_stat(a.h, &sc, &u), 0);
    assert_int_equal(u.conns_inbound, cfg.limits.handshakes_per_ip);
    assert_true(stat_of(a.h, FLARE_RCMGR_SYSTEM).refused_conns >=
                60 - cfg.limits.handshakes_per_ip);
    flare_multiaddr ma;
    addr_of(&a, &ma);
    flare_test_dial ok = {0}, out = {0};
    assert_int_equal(flare_host_dial(b.h, &ma, NULL, flare_test_dial_cb, &ok), 0);
    addr_of(&d, &ma);
    assert_int_equal(flare_host_dial(a.h, &ma, NULL, flare_test_dial_cb, &out), 0);
    flare_test_run_ms(sim, 500);
    assert_int_equal(ok.status, 0);
    assert_int_equal(out.status, 0);
    u = stat_of(a.h, FLARE_RCMGR_SYSTEM);
    assert_int_equal(u.conns_inbound, cfg.limits.handshakes_per_ip + 1);
    assert_int_equal(u.conns_outbound, 1);
    assert_true(u.memory > 0);
    raw_close_all(r, 60);
    flare_host_del(a.h);
    flare_host_del(b.h);
    flare_host_del(d.h);
    flare_sim_del(sim);
}

/* Inbound connections from many addresses fill the inbound budget: more
 * are refused, but our own dials still have theirs. */
static void test_inbound_outbound_budgets(void **state)
{
    (void)state;
    flare_sim *sim = flare_sim_new(8, NULL);
    flare_host_settings cfg;
    flare_test_settings_default(&cfg);
    cfg.max_connections = 4;
    cfg.limits.conns_inbound = 2;
    cfg.limits.conns_outbound = 2;
    node a = {0}, in[3] = {{0}}, d = {0};
    static const char *ips[] = {"203.0.113.1", "192.0.2.1", "198.18.0.1"};
    make(sim, &a, "198.51.100.1", 1, &cfg);
    make(sim, &d, "198.51.100.4", 9, NULL);
    flare_multiaddr ma;
    addr_of(&a, &ma);
    flare_test_dial r[3] = {{0}};
    for (int i = 0; i < 3; i++) {
        make(sim, &in[i], ips[i], (uint8_t)(2 + i), NULL);
        assert_int_equal(flare_host_dial(in[i].h, &ma, NULL, flare_test_dial_cb, &r[i]), 0);
        flare_test_run_ms(sim, 300);
    }
    assert_int_equal(r[0].status, 0);
    assert_int_equal(r[1].status, 0);
    assert_int_not_equal(r[2].status, 0);
    assert_int_equal(stat_of(a.h, FLARE_RCMGR_SYSTEM).conns_inbound, 2);
    addr_of(&d, &ma);
    flare_test_dial_ok(sim, a.h, &ma, 300);
    assert_int_equal(stat_of(a.h, FLARE_RCMGR_SYSTEM).conns_outbound, 1);
    for (int i = 0; i < 3; i++)
        flare_host_del(in[i].h);
    flare_host_del(a.h);
    flare_host_del(d.h);
    flare_sim_del(sim);
}

/* IPv6: addresses of one /56 share the subnet limits; another /56 is
 * served. */
static void test_ipv6_subnet(void **state)
{
    (void)state;
    flare_sim *sim = flare_sim_new(9, NULL);
    flare_host_settings cfg;
    flare_test_settings_default(&cfg);
    cfg.limits.conns_per_subnet = 3;
    cfg.limits.handshakes_per_subnet = 3;
    node a = {0}, b = {0};
    flare_test_host_spec sp = {.name = "a",
                               .lan = flare_sim_internet(sim),
                               .ip = "2001:db8::a",
                               .link = {.delay = 2 * MS},
                               .seed = {1},
                               .cfg = &cfg,
                               .on_event = on_event,
                               .user = &a};
    assert_int_equal(flare_test_host_make(sim, &sp, &a.sh, &a.h), 0);
    flare_multiaddr ma;
    assert_int_equal(flare_multiaddr_parse(&ma, "/ip6/2001:db8::a/tcp/4001"), 0);
    assert_int_equal(flare_host_listen(a.h, &ma), 0);
    /* 2001:db8:0:1::/64 and 2001:db8:0:ff::/64 are in one /56. */
    static const char *ips[] = {"2001:db8:0:1::1", "2001:db8:0:1::2", "2001:db8:0:ff::1",
                                "2001:db8:0:ff::2", "2001:db8:0:2::1"};
    flare_test_raw r[5];
    memset(r, 0, sizeof(r));
    for (int i = 0; i < 5; i++) {
        raw_from(sim, ips[i], ips[i], &r[i], 1, "2001:db8::a", NULL);
        flare_test_run_ms(sim, 50);
    }
    flare_test_run_ms(sim, 200);
    assert_int_equal(raw_alive(r, 5), 3);
    flare_ipaddr sub;
    assert_int_equal(flare_ipaddr_parse(&sub, "2001:db8:0:ab::9"), 0);
    flare_rcmgr_scope sc = {.kind = FLARE_RCMGR_SUBNET, .ip = &sub};
    flare_rcmgr_usage u;
    assert_int_equal(flare_host_rcmgr_stat(a.h, &sc, &u), 0);
    assert_int_equal(u.conns_inbound, 3);
    flare_test_host_spec sb = sp;
    sb.name = "b";
    sb.ip = "2001:db8:0:100::1";
    sb.seed[0] = 2;
    sb.cfg = NULL;
    sb.user = &b;
    assert_int_equal(flare_test_host_make(sim, &sb, &b.sh, &b.h), 0);
    assert_int_equal(flare_multiaddr_parse(&ma, "/ip6/2001:db8::a/tcp/4001"), 0);
    assert_int_equal(flare_multiaddr_with_peerid(&ma, flare_host_peerid(a.h)), 0);
    flare_test_dial_ok(sim, b.h, &ma, 500);
    raw_close_all(r, 5);
    del_pair(sim, &a, &b);
}

/* A peer's connections beyond max_connections_per_peer are closed after
 * the handshake, inbound ones included. */
static void test_per_peer_inbound(void **state)
{
    (void)state;
    flare_sim *sim = flare_sim_new(4, NULL);
    flare_host_settings cfg;
    flare_test_settings_default(&cfg);
    cfg.max_connections_per_peer = 2;
    node a = {0}, b = {0};
    make_pair(sim, &a, &b, &cfg);
    flare_multiaddr ma;
    addr_of(&a, &ma);
    flare_dial_opts o = {.force_new = 1, .no_reuse = 1};
    flare_test_dial d[3] = {{0}};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(flare_host_dial(b.h, &ma, &o, flare_test_dial_cb, &d[i]), 0);
        flare_test_run_ms(sim, 300);
    }
    assert_int_equal(d[0].status, 0);
    assert_int_equal(d[1].status, 0);
    /* B's side may finish first (Noise's last message is B's): it sees its
     * third connection open, then closed by A. */
    assert_int_equal(flare_host_num_conns(b.h), 2);
    assert_int_equal(a.incoming_failed, 1);
    assert_int_equal(a.last_incoming_err, FLARE_ERR_LIMIT);
    flare_rcmgr_scope sc = {.kind = FLARE_RCMGR_PEER, .peer = flare_host_peerid(b.h)};
    flare_rcmgr_usage u;
    assert_int_equal(flare_host_rcmgr_stat(a.h, &sc, &u), 0);
    assert_int_equal(u.conns_inbound, 2);
    assert_true(u.memory > 0);
    del_pair(sim, &a, &b);
}

/* Stalled handshakes from three /24s, each within its IP and subnet limits:
 * at the system limit the oldest is closed, so an honest host connects. */
static void test_slowloris(void **state)
{
    (void)state;
    flare_sim *sim = flare_sim_new(5, NULL);
    flare_host_settings cfg;
    flare_test_settings_default(&cfg);
    cfg.limits.handshakes = 6;
    cfg.limits.handshakes_per_ip = 2;
    cfg.limits.handshakes_per_subnet = 4;
    node a = {0}, b = {0};
    make_pair(sim, &a, &b, &cfg);
    static const char *ips[] = {"203.0.113.5", "203.0.113.6", "203.0.113.7",
                                "192.0.2.5",   "192.0.2.6",   "198.18.0.5"};
    flare_test_raw r[6][4];
    memset(r, 0, sizeof(r));
    for (int i = 0; i < 6; i++) {
        raw_from(sim, ips[i], ips[i], r[i], 4, "198.51.100.1", "\x13/multistream/1.0.0\n");
        flare_test_run_ms(sim, 50);
    }
    flare_test_run_ms(sim, 200);
    /* 203.0.113.0/24 holds 4 (2 IPs x 2), the others 2 each: 10 > 6. */
    flare_rcmgr_usage u = stat_of(a.h, FLARE_RCMGR_SYSTEM);
    assert_int_equal(u.handshakes, 6);
    int alive = 0;
    for (int i = 0; i < 6; i++)
        alive += raw_alive(r[i], 4);
    assert_int_equal(alive, 6);
    flare_multiaddr ma;
    addr_of(&a, &ma);
    flare_test_dial_ok(sim, b.h, &ma, 500);
    assert_true(stat_of(a.h, FLARE_RCMGR_SYSTEM).handshakes <= 6);
    for (int i = 0; i < 6; i++)
        raw_close_all(r[i], 4);
    del_pair(sim, &a, &b);
}

/* ---- memory and protocol limits ------------------------------------------------------------- */

typedef struct sink {
    int opened, closed, close_err;
} sink;

static void sink_open(flare_stream *s, int status, void *user)
{
    sink *k = user;
    (void)s;
    if (status == 0)
        k->opened++;
}

static void sink_close(flare_stream *s, int err, void *user)
{
    sink *k = user;
    (void)s;
    k->closed++;
    k->close_err = err;
}

static const flare_stream_cbs sink_cbs = {.on_open = sink_open, .on_close = sink_close};

/* A reader that never reads: what the peer sends piles up in yamux. */
static void hold_open(flare_stream *s, int status, void *user)
{
    (void)user;
    if (status == 0)
        flare_stream_pause(s, 1);
}

static const flare_stream_cbs hold_cbs = {.on_open = hold_open};

/* The receiver's buffers pass mem_per_conn: the allocation fails, the
 * connection closes with FLARE_ERR_LIMIT, its memory is given back, and the
 * host goes on serving. */
static void test_memory_limit(void **state)
{
    (void)state;
    flare_sim *sim = flare_sim_new(6, NULL);
    flare_host_settings cfg;
    flare_test_settings_default(&cfg);
    cfg.limits.mem_per_conn = 200000;
    node a = {0}, b = {0};
    make_pair(sim, &a, &b, &cfg);
    assert_int_equal(flare_host_set_handler(a.h, "/hold/1", &hold_cbs, NULL, 0), 0);
    flare_multiaddr ma;
    addr_of(&a, &ma);
    flare_conn *c = flare_test_dial_ok(sim, b.h, &ma, 300);
    sink k[4] = {{0}};
    static uint8_t blob[200000];
    for (int i = 0; i < 4; i++) {
        flare_stream *s;
        assert_int_equal(flare_conn_new_stream(c, "/hold/1", &sink_cbs, &k[i], 0, &s), 0);
        flare_stream_write(s, blob, sizeof(blob));
    }
    flare_test_run_ms(sim, 2000);
    assert_int_equal(a.closed, 1);
    assert_int_equal(a.last_close_err, FLARE_ERR_LIMIT);
    flare_rcmgr_usage u = stat_of(a.h, FLARE_RCMGR_SYSTEM);
    assert_true(u.refused_mem > 0);
    assert_int_equal(u.memory, 0);
    assert_int_equal(u.conns_inbound, 0);
    flare_test_dial_ok(sim, b.h, &ma, 300);
    del_pair(sim, &a, &b);
}

/* A peer opening many ping streams: the service's per-peer limit (4). */
static void test_protocol_limit(void **state)
{
    (void)state;
    flare_sim *sim = flare_sim_new(7, NULL);
    node a = {0}, b = {0};
    make_pair(sim, &a, &b, NULL);
    flare_multiaddr ma;
    addr_of(&a, &ma);
    flare_conn *c = flare_test_dial_ok(sim, b.h, &ma, 300);
    sink k[10] = {{0}};
    for (int i = 0; i < 10; i++)
        assert_int_equal(
            flare_conn_new_stream(c, FLARE_PING_PROTOCOL_ID, &sink_cbs, &k[i], 0, NULL), 0);
    flare_test_run_ms(sim, 300);
    int reset = 0;
    for (int i = 0; i < 10; i++)
        reset += k[i].closed && k[i].close_err == FLARE_ERR_RESET;
    assert_int_equal(reset, 6);
    flare_rcmgr_scope sc = {.kind = FLARE_RCMGR_PROTOCOL, .protocol = FLARE_PING_PROTOCOL_ID};
    flare_rcmgr_usage u;
    assert_int_equal(flare_host_rcmgr_stat(a.h, &sc, &u), 0);
    assert_int_equal(u.streams_inbound, 4);
    /* A limit of the application's own replaces the service's. */
    assert_int_equal(flare_host_set_protocol_limits(a.h, FLARE_PING_PROTOCOL_ID, 5, 0), 0);
    sink more = {0};
    assert_int_equal(flare_conn_new_stream(c, FLARE_PING_PROTOCOL_ID, &sink_cbs, &more, 0, NULL),
                     0);
    flare_test_run_ms(sim, 300);
    assert_int_equal(more.closed, 0);
    assert_int_equal(flare_host_rcmgr_stat(a.h, &sc, &u), 0);
    assert_int_equal(u.streams_inbound, 5);
    del_pair(sim, &a, &b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_stat_errors),
        cmocka_unit_test(test_counting_allocator),
        cmocka_unit_test(test_one_ip_flood),
        cmocka_unit_test(test_per_peer_inbound),
        cmocka_unit_test(test_slowloris),
        cmocka_unit_test(test_memory_limit),
        cmocka_unit_test(test_protocol_limit),
        cmocka_unit_test(test_inbound_outbound_budgets),
        cmocka_unit_test(test_ipv6_subnet),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
