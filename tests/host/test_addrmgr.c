/* The address manager: confirmation, filtering, translation, NAT type,
 * expiry and eviction, with injected time. */
#include "support/test.h"

#include <stdlib.h>

#include "flare/addrmgr.h"

#define S FLARE_NS_PER_S

static flare_ipaddr ip(const char *s)
{
    flare_ipaddr a;
    assert_int_equal(flare_ipaddr_parse(&a, s), 0);
    return a;
}

static flare_addrmgr *mgr(unsigned thresh, size_t max_obs, uint8_t v4_bits)
{
    flare_addrmgr_settings s;
    flare_addrmgr_settings_default(&s);
    if (thresh)
        s.activation_threshold = thresh;
    if (max_obs)
        s.max_observations = max_obs;
    if (v4_bits)
        s.v4_group_bits = v4_bits;
    flare_addrmgr *m;
    assert_int_equal(flare_addrmgr_new(&m, &s, NULL), 0);
    flare_multiaddr l = flare_test_ma("/ip4/0.0.0.0/tcp/4001");
    assert_int_equal(flare_addrmgr_add_listen_addr(m, &l), 0);
    return m;
}

/* Observer n at observer_ip sees us at obs_s over an inbound connection to
 * our listen socket 192.168.1.5:4001. */
static int inbound(flare_addrmgr *m, unsigned n, const char *observer_ip, const char *obs_s,
                   flare_tstamp now)
{
    flare_peerid p = flare_test_pid(n);
    flare_ipaddr oip = ip(observer_ip);
    flare_multiaddr local = flare_test_ma("/ip4/192.168.1.5/tcp/4001"), o = flare_test_ma(obs_s);
    return flare_addrmgr_observe(m, &p, &oip, &local, 0, &o, now);
}

static int outbound(flare_addrmgr *m, unsigned n, const char *observer_ip, const char *local_s,
                    const char *obs_s, flare_tstamp now)
{
    flare_peerid p = flare_test_pid(n);
    flare_ipaddr oip = ip(observer_ip);
    flare_multiaddr local = flare_test_ma(local_s), o = flare_test_ma(obs_s);
    return flare_addrmgr_observe(m, &p, &oip, &local, 1, &o, now);
}

/* Asserts the external list (candidates included or not) equals want. */
static void expect_external(flare_addrmgr *m, flare_tstamp now, int cands, const char **want,
                            size_t n)
{
    flare_multiaddr out[16];
    int got = flare_addrmgr_external(m, now, out, 16, cands);
    assert_int_equal(got, (int)n);
    for (size_t i = 0; i < n; i++) {
        flare_multiaddr w = flare_test_ma(want[i]);
        assert_true(flare_multiaddr_equal(&out[i], &w));
    }
}

static void test_single_observer(void **state)
{
    (void)state;
    flare_addrmgr *m = mgr(0, 0, 0);
    assert_int_equal(flare_addrmgr_version(m), 0);
    expect_external(m, 0, 1, NULL, 0);
    assert_int_equal(inbound(m, 1, "8.8.8.8", "/ip4/1.2.3.4/tcp/4001", S), 0);
    /* A lone observer confirms: the network has no one else to ask. */
    const char *want[] = {"/ip4/1.2.3.4/tcp/4001"};
    expect_external(m, S, 0, want, 1);
    assert_int_equal(flare_addrmgr_version(m), 1);
    flare_addrmgr_entry e[4];
    assert_int_equal(flare_addrmgr_entries(m, S, e, 4), 1);
    assert_int_equal(e[0].observers, 1);
    assert_int_equal(e[0].confirmed, 1);
    assert_true(e[0].last_seen == S);
    /* A repeated report from the same peer and socket replaces, not adds. */
    assert_int_equal(inbound(m, 1, "8.8.8.8", "/ip4/1.2.3.4/tcp/4001", 2 * S), 0);
    assert_int_equal(flare_addrmgr_num_observations(m), 1);
    assert_int_equal(flare_addrmgr_version(m), 1);
    /* cap limits the output */
    assert_int_equal(flare_addrmgr_external(m, 2 * S, NULL, 0, 1), 0);
    flare_addrmgr_del(m);
}

/* go-libp2p #2941: a fixed threshold larger than the network never fires. */
static void test_threshold_small_networks(void **state)
{
    (void)state;
    const char *x[] = {"/ip4/1.2.3.4/tcp/4001"};
    /* go's threshold of 4 with 3 peers that agree: confirmed once all agree. */
    flare_addrmgr *m = mgr(4, 0, 0);
    assert_int_equal(inbound(m, 1, "8.8.8.8", x[0], S), 0);
    expect_external(m, S, 0, x, 1);
    assert_int_equal(inbound(m, 2, "9.9.9.9", x[0], S), 0);
    expect_external(m, S, 0, x, 1);
    assert_int_equal(inbound(m, 3, "7.7.7.7", x[0], S), 0);
    expect_external(m, S, 0, x, 1);
    /* a 4th group that disagrees: threshold 4 now applies, 3 < 4 */
    assert_int_equal(inbound(m, 4, "6.6.6.6", "/ip4/1.2.3.4/tcp/5555", S), 0);
    expect_external(m, S, 0, NULL, 0);
    const char *both[] = {"/ip4/1.2.3.4/tcp/4001", "/ip4/1.2.3.4/tcp/5555"};
    expect_external(m, S, 1, both, 2); /* candidates, most observers first */
    flare_addrmgr_del(m);

    /* threshold 2: two observers that disagree confirm nothing ... */
    m = mgr(2, 0, 0);
    assert_int_equal(inbound(m, 1, "8.8.8.8", "/ip4/1.2.3.4/tcp/4001", S), 0);
    assert_int_equal(inbound(m, 2, "9.9.9.9", "/ip4/1.2.3.4/tcp/5555", 2 * S), 0);
    expect_external(m, 2 * S, 0, NULL, 0);
    const char *recent[] = {"/ip4/1.2.3.4/tcp/5555", "/ip4/1.2.3.4/tcp/4001"};
    expect_external(m, 2 * S, 1, recent, 2); /* tie: most recent first */
    uint64_t v = flare_addrmgr_version(m);
    /* ... a third that agrees with one of them decides it. */
    assert_int_equal(inbound(m, 3, "7.7.7.7", "/ip4/1.2.3.4/tcp/4001", 3 * S), 0);
    expect_external(m, 3 * S, 0, x, 1);
    expect_external(m, 3 * S, 1, both, 2);
    assert_true(flare_addrmgr_version(m) > v);
    /* 3 observers, threshold 4, two agree: not enough (3 must). */
    flare_addrmgr_del(m);
    m = mgr(4, 0, 0);
    assert_int_equal(inbound(m, 1, "8.8.8.8", "/ip4/1.2.3.4/tcp/4001", S), 0);
    assert_int_equal(inbound(m, 2, "9.9.9.9", "/ip4/1.2.3.4/tcp/4001", S), 0);
    assert_int_equal(inbound(m, 3, "7.7.7.7", "/ip4/1.2.3.4/tcp/5555", S), 0);
    expect_external(m, S, 0, NULL, 0);
    flare_addrmgr_del(m);

    /* Observers we reached from ephemeral ports cannot vouch for a listen
     * address, so they do not raise the threshold: one inbound observer
     * still confirms. */
    m = mgr(2, 0, 0);
    assert_int_equal(inbound(m, 1, "8.8.8.8", "/ip4/1.2.3.4/tcp/4001", S), 0);
    assert_int_equal(
        outbound(m, 2, "9.9.9.9", "/ip4/192.168.1.5/tcp/50001", "/ip4/1.2.3.4/tcp/60001", S), 0);
    assert_int_equal(
        outbound(m, 3, "7.7.7.7", "/ip4/192.168.1.5/tcp/50002", "/ip4/1.2.3.4/tcp/60002", S), 0);
    expect_external(m, S, 1, x, 1);
    expect_external(m, S, 0, x, 1);
    flare_addrmgr_del(m);
}

static void test_same_group_counts_once(void **state)
{
    (void)state;
    const char *x = "/ip4/1.2.3.4/tcp/4001", *y = "/ip4/1.2.3.4/tcp/5555";
    /* Two peers in 8.8/16 say x, one elsewhere says y: 2 groups, 1 each. */
    flare_addrmgr *m = mgr(2, 0, 0);
    assert_int_equal(inbound(m, 1, "8.8.1.1", x, S), 0);
    assert_int_equal(inbound(m, 2, "8.8.2.2", x, S), 0);
    assert_int_equal(inbound(m, 3, "9.9.9.9", y, S), 0);
    expect_external(m, S, 0, NULL, 0);
    flare_addrmgr_entry e[4];
    assert_int_equal(flare_addrmgr_entries(m, S, e, 4), 2);
    assert_int_equal(e[0].observers, 1);
    assert_int_equal(e[1].observers, 1);
    flare_addrmgr_del(m);
    /* Grouping by /32 instead: x has 2 observers and wins. */
    m = mgr(2, 0, 32);
    assert_int_equal(inbound(m, 1, "8.8.1.1", x, S), 0);
    assert_int_equal(inbound(m, 2, "8.8.2.2", x, S), 0);
    assert_int_equal(inbound(m, 3, "9.9.9.9", y, S), 0);
    const char *want[] = {x};
    expect_external(m, S, 0, want, 1);
    flare_addrmgr_del(m);
    /* IPv6 observers in one /56 count once too. */
    m = mgr(2, 0, 0);
    flare_multiaddr l6 = flare_test_ma("/ip6/::/tcp/4001");
    assert_int_equal(flare_addrmgr_add_listen_addr(m, &l6), 0);
    const char *o6 = "/ip6/2a00:1::5/tcp/4001", *p6 = "/ip6/2a00:1::5/tcp/6000";
    for (unsigned i = 0; i < 2; i++) {
        flare_peerid p = flare_test_pid(10 + i);
        flare_ipaddr oip = ip(i ? "[2a01:0:0:ab::1]:1" : "[2a01:0:0:cd::2]:1");
        flare_multiaddr local = flare_test_ma("/ip6/2a00:1::5/tcp/4001"), o = flare_test_ma(o6);
        assert_int_equal(flare_addrmgr_observe(m, &p, &oip, &local, 0, &o, S), 0);
    }
    flare_peerid p = flare_test_pid(12);
    flare_ipaddr oip = ip("[2a02::1]:1");
    flare_multiaddr local = flare_test_ma("/ip6/2a00:1::5/tcp/4001"), o = flare_test_ma(p6);
    assert_int_equal(flare_addrmgr_observe(m, &p, &oip, &local, 0, &o, S), 0);
    expect_external(m, S, 0, NULL, 0);
    flare_addrmgr_del(m);
}

static void test_dropped_observations(void **state)
{
    (void)state;
    flare_addrmgr *m = mgr(0, 0, 0);
    static const char *refused[] = {
        "/ip4/192.168.1.5/tcp/4001",     /* private */
        "/ip4/10.1.2.3/tcp/4001",        /* private */
        "/ip4/127.0.0.1/tcp/4001",       /* loopback */
        "/ip4/169.254.1.1/tcp/4001",     /* link-local */
        "/ip4/100.64.1.1/tcp/4001",      /* CGNAT */
        "/ip4/0.0.0.0/tcp/4001",         /* unspecified */
        "/ip4/198.51.100.7/tcp/4001",    /* TEST-NET-2 */
        "/ip4/1.2.3.4/udp/4001/quic-v1", /* wrong transport */
        "/ip6/2a00::1/tcp/4001",         /* wrong IP version */
        "/ip4/5.5.5.5/tcp/1/p2p/QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N/p2p-circuit",
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        assert_int_equal(inbound(m, 1, "8.8.8.8", refused[i], S), FLARE_ERR_REFUSED);
    assert_int_equal(inbound(m, 1, "8.8.8.8", "/dns4/example.com/tcp/4001", S),
                     FLARE_ERR_UNSUPPORTED);
    /* a relayed connection */
    assert_int_equal(
        outbound(m, 1, "8.8.8.8",
                 "/ip4/5.5.5.5/tcp/1/p2p/QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N/"
                 "p2p-circuit",
                 "/ip4/1.2.3.4/tcp/4001", S),
        FLARE_ERR_REFUSED);
    /* a transport we do not listen on (UDP), and inbound on a non-listen port */
    assert_int_equal(outbound(m, 1, "8.8.8.8", "/ip4/192.168.1.5/udp/5000/quic-v1",
                              "/ip4/1.2.3.4/udp/5000/quic-v1", S),
                     FLARE_ERR_REFUSED);
    flare_peerid p = flare_test_pid(1);
    flare_ipaddr oip = ip("8.8.8.8");
    flare_multiaddr local = flare_test_ma("/ip4/192.168.1.5/tcp/4002"),
                    o = flare_test_ma("/ip4/1.2.3.4/tcp/4002");
    assert_int_equal(flare_addrmgr_observe(m, &p, &oip, &local, 0, &o, S), FLARE_ERR_REFUSED);
    flare_ipaddr bad = {0};
    assert_int_equal(flare_addrmgr_observe(m, &p, &bad, &local, 0, &o, S), FLARE_ERR_INVALID_ARG);
    assert_int_equal(flare_addrmgr_observe(m, &p, &oip, &local, 0, NULL, S), FLARE_ERR_INVALID_ARG);
    assert_int_equal(flare_addrmgr_num_observations(m), 0);
    expect_external(m, S, 1, NULL, 0);
    assert_int_equal(flare_addrmgr_version(m), 0);
    flare_addrmgr_del(m);

    /* TEST-NET counts as public in the lab. */
    flare_addrmgr_settings s;
    flare_addrmgr_settings_default(&s);
    s.doc_is_public = 1;
    assert_int_equal(flare_addrmgr_new(&m, &s, NULL), 0);
    flare_multiaddr l = flare_test_ma("/ip4/0.0.0.0/tcp/4001");
    assert_int_equal(flare_addrmgr_add_listen_addr(m, &l), 0);
    assert_int_equal(inbound(m, 1, "203.0.113.9", "/ip4/198.51.100.7/tcp/4001", S), 0);
    const char *want[] = {"/ip4/198.51.100.7/tcp/4001"};
    expect_external(m, S, 0, want, 1);
    flare_addrmgr_del(m);
}

static void test_listen_addrs(void **state)
{
    (void)state;
    flare_addrmgr *m = mgr(0, 0, 0);
    flare_multiaddr l = flare_test_ma("/ip4/0.0.0.0/tcp/4001");
    assert_int_equal(flare_addrmgr_add_listen_addr(m, &l), FLARE_ERR_EXISTS);
    flare_multiaddr d = flare_test_ma("/dns4/example.com/tcp/1");
    assert_int_equal(flare_addrmgr_add_listen_addr(m, &d), FLARE_ERR_UNSUPPORTED);
    flare_multiaddr r = flare_test_ma(
        "/ip4/5.5.5.5/tcp/1/p2p/QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N/p2p-circuit");
    assert_int_equal(flare_addrmgr_add_listen_addr(m, &r), FLARE_ERR_UNSUPPORTED);
    for (unsigned i = 1; i < FLARE_ADDRMGR_MAX_LISTEN; i++) {
        flare_ipaddr a;
        flare_ipaddr_v4(&a, 0, 0, 0, 0, (uint16_t)(5000 + i));
        flare_multiaddr x;
        assert_int_equal(flare_multiaddr_from_ipaddr(&x, &a, FLARE_MA_TCP), 0);
        assert_int_equal(flare_addrmgr_add_listen_addr(m, &x), 0);
    }
    flare_multiaddr extra = flare_test_ma("/ip4/0.0.0.0/tcp/7000");
    assert_int_equal(flare_addrmgr_add_listen_addr(m, &extra), FLARE_ERR_LIMIT);
    /* observations follow listen addresses: removing it hides its addresses */
    assert_int_equal(inbound(m, 1, "8.8.8.8", "/ip4/1.2.3.4/tcp/4001", S), 0);
    assert_int_equal(flare_addrmgr_external(m, S, NULL, 0, 1), 0);
    flare_multiaddr out[2];
    assert_int_equal(flare_addrmgr_external(m, S, out, 2, 1), 1);
    uint64_t v = flare_addrmgr_version(m);
    assert_int_equal(flare_addrmgr_remove_listen_addr(m, &l), 0);
    assert_int_equal(flare_addrmgr_remove_listen_addr(m, &l), FLARE_ERR_NOT_FOUND);
    assert_int_equal(flare_addrmgr_external(m, S, out, 2, 1), 0);
    assert_true(flare_addrmgr_version(m) > v);
    flare_addrmgr_del(m);
}

/* Port reuse: the observed port maps our listen port. Ephemeral: it maps a
 * port nobody can dial, so it is no listen address (rust-libp2p #4496). */
static void test_port_reuse_vs_ephemeral(void **state)
{
    (void)state;
    flare_addrmgr *m = mgr(0, 0, 0);
    assert_int_equal(
        outbound(m, 1, "8.8.8.8", "/ip4/192.168.1.5/tcp/53000", "/ip4/1.2.3.4/tcp/61000", S), 0);
    assert_int_equal(flare_addrmgr_num_observations(m), 1);
    expect_external(m, S, 1, NULL, 0);
    assert_int_equal(flare_addrmgr_version(m), 0);
    /* the same observer, over a connection dialed from the listen port */
    assert_int_equal(
        outbound(m, 1, "8.8.8.8", "/ip4/192.168.1.5/tcp/4001", "/ip4/1.2.3.4/tcp/40404", S), 0);
    const char *want[] = {"/ip4/1.2.3.4/tcp/40404"};
    expect_external(m, S, 0, want, 1);
    /* a listen address bound to a specific IP matches only that IP */
    flare_addrmgr_del(m);
    flare_addrmgr_settings s;
    flare_addrmgr_settings_default(&s);
    assert_int_equal(flare_addrmgr_new(&m, &s, NULL), 0);
    flare_multiaddr l = flare_test_ma("/ip4/192.168.1.5/tcp/4001");
    assert_int_equal(flare_addrmgr_add_listen_addr(m, &l), 0);
    assert_int_equal(
        outbound(m, 1, "8.8.8.8", "/ip4/192.168.7.7/tcp/4001", "/ip4/1.2.3.4/tcp/4001", S), 0);
    expect_external(m, S, 1, NULL, 0);
    flare_addrmgr_del(m);
}

/* The listen address's suffix is kept (quic-v1 here). */
static void test_inbound_suffix(void **state)
{
    (void)state;
    flare_addrmgr *m = mgr(0, 0, 0);
    flare_multiaddr q = flare_test_ma("/ip4/0.0.0.0/udp/4001/quic-v1");
    assert_int_equal(flare_addrmgr_add_listen_addr(m, &q), 0);
    flare_peerid p = flare_test_pid(1);
    flare_ipaddr oip = ip("8.8.8.8");
    flare_multiaddr local = flare_test_ma("/ip4/192.168.1.5/udp/4001/quic-v1");
    flare_multiaddr o = flare_test_ma("/ip4/1.2.3.4/udp/4001/quic-v1");
    assert_int_equal(flare_addrmgr_observe(m, &p, &oip, &local, 0, &o, S), 0);
    /* a TCP observation too: both listen on port 4001 and must not mix */
    assert_int_equal(inbound(m, 2, "9.9.9.9", "/ip4/1.2.3.4/tcp/4001", 2 * S), 0);
    const char *want[] = {"/ip4/1.2.3.4/tcp/4001", "/ip4/1.2.3.4/udp/4001/quic-v1"};
    expect_external(m, 2 * S, 0, want, 2);
    flare_addrmgr_del(m);
}

static void test_nat_classification(void **state)
{
    (void)state;
    flare_addrmgr *m = mgr(0, 0, 0);
    assert_int_equal(flare_addrmgr_nat_type(m, S, 4, 0), FLARE_NAT_UNKNOWN);
    /* one observer through the listen port: not enough evidence */
    const char *lp = "/ip4/192.168.1.5/tcp/4001";
    assert_int_equal(outbound(m, 1, "8.8.8.8", lp, "/ip4/1.2.3.4/tcp/4001", S), 0);
    assert_int_equal(flare_addrmgr_nat_type(m, S, 4, 0), FLARE_NAT_UNKNOWN);
    /* a second, other group, same mapping: endpoint-independent */
    assert_int_equal(outbound(m, 2, "9.9.9.9", lp, "/ip4/1.2.3.4/tcp/4001", S), 0);
    assert_int_equal(flare_addrmgr_nat_type(m, S, 4, 0), FLARE_NAT_ENDPOINT_INDEPENDENT);
    assert_int_equal(flare_addrmgr_nat_type(m, S, 4, FLARE_MA_TCP), FLARE_NAT_ENDPOINT_INDEPENDENT);
    assert_int_equal(flare_addrmgr_nat_type(m, S, 4, FLARE_MA_UDP), FLARE_NAT_UNKNOWN);
    assert_int_equal(flare_addrmgr_nat_type(m, S, 6, 0), FLARE_NAT_UNKNOWN);
    flare_addrmgr_del(m);

    /* two peers of one /16 are one observer: no evidence either way */
    m = mgr(0, 0, 0);
    assert_int_equal(outbound(m, 1, "8.8.1.1", lp, "/ip4/1.2.3.4/tcp/30001", S), 0);
    assert_int_equal(outbound(m, 2, "8.8.2.2", lp, "/ip4/1.2.3.4/tcp/30002", S), 0);
    assert_int_equal(flare_addrmgr_nat_type(m, S, 4, 0), FLARE_NAT_UNKNOWN);
    flare_addrmgr_del(m);

    /* different mappings per destination: endpoint-dependent; and then the
     * configured threshold holds even though few observers exist */
    m = mgr(2, 0, 0);
    assert_int_equal(outbound(m, 1, "8.8.8.8", lp, "/ip4/1.2.3.4/tcp/30001", S), 0);
    assert_int_equal(outbound(m, 2, "9.9.9.9", lp, "/ip4/1.2.3.4/tcp/30002", S), 0);
    assert_int_equal(flare_addrmgr_nat_type(m, S, 4, 0), FLARE_NAT_ENDPOINT_DEPENDENT);
    expect_external(m, S, 0, NULL, 0);
    assert_string_equal(flare_nat_type_name(FLARE_NAT_ENDPOINT_DEPENDENT), "endpoint-dependent");
    flare_addrmgr_del(m);

    /* ephemeral sockets feed classification (a shared UDP socket here) but
     * never become listen addresses */
    m = mgr(0, 0, 0);
    flare_multiaddr q = flare_test_ma("/ip4/0.0.0.0/udp/4001/quic-v1");
    assert_int_equal(flare_addrmgr_add_listen_addr(m, &q), 0);
    const char *eph = "/ip4/192.168.1.5/udp/50000/quic-v1";
    assert_int_equal(outbound(m, 1, "8.8.8.8", eph, "/ip4/1.2.3.4/udp/61000/quic-v1", S), 0);
    assert_int_equal(outbound(m, 2, "9.9.9.9", eph, "/ip4/1.2.3.4/udp/61001/quic-v1", S), 0);
    assert_int_equal(flare_addrmgr_nat_type(m, S, 4, FLARE_MA_UDP), FLARE_NAT_ENDPOINT_DEPENDENT);
    expect_external(m, S, 1, NULL, 0);
    assert_int_equal(outbound(m, 2, "9.9.9.9", eph, "/ip4/1.2.3.4/udp/61000/quic-v1", S), 0);
    assert_int_equal(flare_addrmgr_nat_type(m, S, 4, FLARE_MA_UDP), FLARE_NAT_ENDPOINT_INDEPENDENT);
    expect_external(m, S, 1, NULL, 0);
    /* a majority of 3 groups tolerates one liar */
    assert_int_equal(outbound(m, 3, "7.7.7.7", eph, "/ip4/1.2.3.4/udp/9/quic-v1", S), 0);
    assert_int_equal(flare_addrmgr_nat_type(m, S, 4, FLARE_MA_UDP), FLARE_NAT_ENDPOINT_INDEPENDENT);
    flare_addrmgr_del(m);

    /* a public host: observed == local */
    m = mgr(0, 0, 0);
    uint64_t v = flare_addrmgr_version(m);
    assert_int_equal(outbound(m, 1, "8.8.8.8", "/ip4/1.2.3.4/tcp/4001", "/ip4/1.2.3.4/tcp/4001", S),
                     0);
    assert_int_equal(flare_addrmgr_nat_type(m, S, 4, 0), FLARE_NAT_NONE);
    assert_true(flare_addrmgr_version(m) > v);
    flare_addrmgr_del(m);
}

/* Port prediction: the highest observed port and the smallest gap between
 * observers' ports, when it looks like a sequence. */
static void test_port_prediction(void **state)
{
    (void)state;
    flare_addrmgr *m = mgr(0, 0, 0);
    flare_ipaddr last;
    unsigned step = 9, nobs = 9;
    assert_int_equal(flare_addrmgr_port_prediction(m, S, 4, FLARE_MA_TCP, 64, &last, &step, &nobs),
                     FLARE_ERR_NOT_FOUND);
    const char *lp = "/ip4/192.168.1.5/tcp/4001";
    assert_int_equal(outbound(m, 1, "8.8.8.8", lp, "/ip4/1.2.3.4/tcp/30001", S), 0);
    assert_int_equal(flare_addrmgr_port_prediction(m, S, 4, FLARE_MA_TCP, 64, &last, &step, &nobs),
                     0);
    assert_int_equal(last.port, 30001);
    assert_int_equal(step, 0); /* one observer: no gap yet */
    assert_int_equal(nobs, 1);
    assert_int_equal(outbound(m, 2, "9.9.9.9", lp, "/ip4/1.2.3.4/tcp/30003", S), 0);
    assert_int_equal(
        outbound(m, 3, "7.7.7.7", "/ip4/192.168.1.5/tcp/50000", "/ip4/1.2.3.4/tcp/30005", S), 0);
    /* the same observer again on another socket counts once */
    assert_int_equal(
        outbound(m, 3, "7.7.7.7", "/ip4/192.168.1.5/tcp/50001", "/ip4/1.2.3.4/tcp/30007", S), 0);
    assert_int_equal(flare_addrmgr_port_prediction(m, S, 4, FLARE_MA_TCP, 64, &last, &step, &nobs),
                     0);
    assert_true(flare_ipaddr_same_ip(&last, &(flare_ipaddr){0}) == 0);
    assert_int_equal(last.port, 30007);
    assert_int_equal(step, 2);
    assert_int_equal(nobs, 3);
    /* a gap above max_step is no sequence */
    assert_int_equal(flare_addrmgr_port_prediction(m, S, 4, FLARE_MA_TCP, 1, &last, &step, &nobs),
                     0);
    assert_int_equal(step, 0);
    assert_int_equal(flare_addrmgr_port_prediction(m, S, 4, FLARE_MA_UDP, 64, &last, &step, &nobs),
                     FLARE_ERR_NOT_FOUND);
    assert_int_equal(
        flare_addrmgr_port_prediction(NULL, S, 4, FLARE_MA_TCP, 64, &last, &step, &nobs),
        FLARE_ERR_INVALID_ARG);
    flare_addrmgr_del(m);
}

static void test_expiry(void **state)
{
    (void)state;
    flare_addrmgr_settings s;
    flare_addrmgr_settings_default(&s);
    s.ttl = 60 * S;
    flare_addrmgr *m;
    assert_int_equal(flare_addrmgr_new(&m, &s, NULL), 0);
    flare_multiaddr l = flare_test_ma("/ip4/0.0.0.0/tcp/4001");
    assert_int_equal(flare_addrmgr_add_listen_addr(m, &l), 0);
    const char *x[] = {"/ip4/1.2.3.4/tcp/4001"};
    assert_int_equal(inbound(m, 1, "8.8.8.8", x[0], S), 0);
    assert_int_equal(inbound(m, 2, "9.9.9.9", x[0], S), 0);
    assert_true(flare_addrmgr_expiry(m) == FLARE_TSTAMP_NEVER);
    /* open connections keep observations however old */
    expect_external(m, 1000 * S, 0, x, 1);
    flare_peerid p1 = flare_test_pid(1), p2 = flare_test_pid(2);
    flare_multiaddr local = flare_test_ma("/ip4/192.168.1.5/tcp/4001");
    assert_int_equal(flare_addrmgr_conn_closed(m, &p1, &local, 1000 * S), 1);
    assert_int_equal(flare_addrmgr_conn_closed(m, &p2, NULL, 1010 * S), 1);
    flare_peerid p9 = flare_test_pid(9);
    assert_int_equal(flare_addrmgr_conn_closed(m, &p9, NULL, 1010 * S), 0);
    assert_true(flare_addrmgr_expiry(m) == 1060 * S);
    uint64_t v = flare_addrmgr_version(m);
    flare_addrmgr_handle_expiry(m, 1059 * S);
    expect_external(m, 1059 * S, 0, x, 1);
    flare_addrmgr_handle_expiry(m, 1060 * S);
    assert_int_equal(flare_addrmgr_num_observations(m), 1);
    expect_external(m, 1060 * S, 0, x, 1); /* one observer left confirms */
    assert_true(flare_addrmgr_expiry(m) == 1070 * S);
    flare_addrmgr_handle_expiry(m, 1070 * S);
    expect_external(m, 1070 * S, 1, NULL, 0);
    assert_true(flare_addrmgr_version(m) > v);
    assert_true(flare_addrmgr_expiry(m) == FLARE_TSTAMP_NEVER);
    /* a report after the close revives it */
    assert_int_equal(inbound(m, 1, "8.8.8.8", x[0], 2000 * S), 0);
    expect_external(m, 5000 * S, 0, x, 1);
    flare_addrmgr_del(m);
}

/* Many observers (distinct groups) each claiming a different address. */
static void test_eviction_flood(void **state)
{
    (void)state;
    flare_addrmgr *m = mgr(2, 32, 0);
    const char *x[] = {"/ip4/1.2.3.4/tcp/4001"};
    assert_int_equal(inbound(m, 1, "8.8.8.8", x[0], S), 0);
    assert_int_equal(inbound(m, 2, "9.9.9.9", x[0], S), 0);
    assert_int_equal(inbound(m, 3, "7.7.7.7", x[0], S), 0);
    for (unsigned i = 0; i < 600; i++) {
        char oip[32], obs[64];
        snprintf(oip, sizeof(oip), "%u.%u.1.1", 11 + i / 200, i % 200);
        snprintf(obs, sizeof(obs), "/ip4/5.6.%u.%u/tcp/%u", i / 250, i % 250, 1000 + i);
        assert_int_equal(inbound(m, 100 + i, oip, obs, (flare_tstamp)(2 + i) * S), 0);
        assert_true(flare_addrmgr_num_observations(m) <= 32);
    }
    assert_int_equal(flare_addrmgr_num_observations(m), 32);
    flare_multiaddr out[40];
    assert_int_equal(flare_addrmgr_external(m, 700 * S, out, 40, 0), 1);
    flare_multiaddr want = flare_test_ma(x[0]);
    assert_true(flare_multiaddr_equal(&out[0], &want));
    /* candidates are capped too, and the confirmed one comes first */
    int n = flare_addrmgr_external(m, 700 * S, out, 40, 1);
    assert_int_equal(n, 32 - 3 + 1);
    assert_true(flare_multiaddr_equal(&out[0], &want));
    flare_addrmgr_del(m);
}

static int budget;
static void *f_malloc(size_t n, void *u)
{
    (void)u;
    return budget-- > 0 ? malloc(n) : NULL;
}
static void *f_calloc(size_t k, size_t n, void *u)
{
    (void)u;
    return budget-- > 0 ? calloc(k, n) : NULL;
}
static void *f_realloc(void *p, size_t n, void *u)
{
    (void)u;
    return budget-- > 0 ? realloc(p, n) : NULL;
}
static void f_free(void *p, void *u)
{
    (void)u;
    free(p);
}

/* Every allocation failure gives FLARE_ERR_NOMEM and leaks nothing (ASan). */
static void test_nomem(void **state)
{
    (void)state;
    flare_mem mem = {NULL, f_malloc, f_free, f_calloc, f_realloc};
    int ok = 0;
    for (int n = 0; n < 16 && !ok; n++) {
        budget = n;
        flare_addrmgr *m = NULL;
        int rv = flare_addrmgr_new(&m, NULL, &mem);
        if (rv == 0) {
            ok = 1;
            assert_int_equal(inbound(m, 1, "8.8.8.8", "/ip4/1.2.3.4/tcp/4001", S),
                             FLARE_ERR_REFUSED); /* no listen address yet */
            flare_addrmgr_del(m);
        } else {
            assert_int_equal(rv, FLARE_ERR_NOMEM);
            assert_null(m);
        }
    }
    assert_true(ok);
}

/* The arrays grow with the observers; without memory to grow, the manager
 * keeps working at the size it has, evicting as at its bound. */
static void test_growth(void **state)
{
    (void)state;
    flare_mem mem = {NULL, f_malloc, f_free, f_calloc, f_realloc};
    budget = 1000;
    flare_addrmgr *m = NULL;
    assert_int_equal(flare_addrmgr_new(&m, NULL, &mem), 0);
    flare_multiaddr l = flare_test_ma("/ip4/0.0.0.0/tcp/4001");
    assert_int_equal(flare_addrmgr_add_listen_addr(m, &l), 0);
    const char *x[] = {"/ip4/1.2.3.4/tcp/4001"};
    for (unsigned i = 0; i < 100; i++) {
        char oip[32];
        snprintf(oip, sizeof(oip), "%u.%u.1.1", 11 + i / 200, i % 200);
        assert_int_equal(inbound(m, 100 + i, oip, x[0], S), 0);
    }
    assert_int_equal(flare_addrmgr_num_observations(m), 100);
    budget = 0;
    for (unsigned i = 100; i < 140; i++) {
        char oip[32];
        snprintf(oip, sizeof(oip), "%u.%u.1.1", 11 + i / 200, i % 200);
        assert_int_equal(inbound(m, 100 + i, oip, x[0], S), 0);
    }
    assert_int_equal(flare_addrmgr_num_observations(m), 128);
    expect_external(m, S, 0, x, 1);
    flare_addrmgr_del(m);
}

static void test_bad_settings(void **state)
{
    (void)state;
    flare_addrmgr_settings s;
    flare_addrmgr_settings_default(&s);
    s.v4_group_bits = 33;
    flare_addrmgr *m = (flare_addrmgr *)&s;
    assert_int_equal(flare_addrmgr_new(&m, &s, NULL), FLARE_ERR_INVALID_ARG);
    assert_null(m);
    assert_int_equal(flare_addrmgr_new(NULL, NULL, NULL), FLARE_ERR_INVALID_ARG);
    assert_int_equal(flare_addrmgr_new(&m, NULL, NULL), 0);
    flare_addrmgr_del(m);
    flare_addrmgr_del(NULL);
    /* Observations are indexed by 16 bits. */
    flare_addrmgr_settings_default(&s);
    s.max_observations = 65535;
    assert_int_equal(flare_addrmgr_new(&m, &s, NULL), FLARE_ERR_INVALID_ARG);
    s.max_observations = 65534;
    assert_int_equal(flare_addrmgr_new(&m, &s, NULL), 0);
    flare_addrmgr_del(m);
}

/* A repeated observation (same observer, socket and address, connection
 * still open) updates the built state in place. It must leave exactly what
 * a rebuild gives: b sees the same reports, each after a close of the same
 * observer's connection, which forces the rebuild. Addresses tie in groups
 * and confirmation, so their order rests on which was seen last. */
static void test_repeat_same_as_rebuild(void **state)
{
    (void)state;
    static const char *const seen[] = {"/ip4/1.2.3.4/tcp/4001", "/ip4/5.6.7.8/tcp/4001",
                                       "/ip4/9.9.9.9/tcp/4001", "/ip4/1.2.3.4/tcp/5001"};
    static const char *const eph[] = {"/ip4/192.168.1.5/tcp/50000", "/ip4/192.168.1.5/tcp/50001"};
    for (unsigned run = 0; run < 4; run++) {
        flare_addrmgr *a = mgr(2, run & 1 ? 6 : 0, 0), *b = mgr(2, run & 1 ? 6 : 0, 0);
        unsigned rnd = 12345 + run;
        flare_tstamp now = S;
        for (unsigned step = 0; step < 400; step++) {
            rnd = rnd * 1103515245u + 12345u;
            unsigned r = rnd >> 8, who = r % 8, what = (r >> 3) % 4, kind = (r >> 5) % 8;
            now += (flare_tstamp)((r >> 8) % 3) * S; /* equal times happen too */
            char oip[32];
            snprintf(oip, sizeof(oip), "%u.%u.1.1", 20 + who, run < 2 ? who : who / 2);
            /* Each observer keeps to one address most of the time. */
            const char *o = seen[kind < 6 ? who % 4 : what];
            flare_peerid p = flare_test_pid(who);
            flare_multiaddr local =
                flare_test_ma(kind == 7 ? eph[who % 2] : "/ip4/192.168.1.5/tcp/4001");
            if (kind == 6) {
                flare_addrmgr_conn_closed(a, &p, &local, now);
                flare_addrmgr_conn_closed(b, &p, &local, now);
            } else {
                flare_ipaddr ipa = ip(oip);
                flare_multiaddr om = flare_test_ma(o);
                int ra = flare_addrmgr_observe(a, &p, &ipa, &local, kind == 7, &om, now);
                flare_addrmgr_conn_closed(b, &p, &local, now);
                int rb = flare_addrmgr_observe(b, &p, &ipa, &local, kind == 7, &om, now);
                assert_int_equal(ra, rb);
            }
            flare_addrmgr_entry ea[16], eb[16];
            int na = flare_addrmgr_entries(a, now, ea, 16),
                nb = flare_addrmgr_entries(b, now, eb, 16);
            assert_int_equal(na, nb);
            for (int i = 0; i < na; i++) {
                assert_true(flare_multiaddr_equal(&ea[i].addr, &eb[i].addr));
                assert_int_equal(ea[i].observers, eb[i].observers);
                assert_int_equal(ea[i].confirmed, eb[i].confirmed);
                assert_true(ea[i].last_seen == eb[i].last_seen);
            }
            assert_true(flare_addrmgr_version(a) == flare_addrmgr_version(b));
            assert_int_equal(flare_addrmgr_nat_type(a, now, 4, FLARE_MA_TCP),
                             flare_addrmgr_nat_type(b, now, 4, FLARE_MA_TCP));
        }
        flare_addrmgr_del(a);
        flare_addrmgr_del(b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_observer),
        cmocka_unit_test(test_threshold_small_networks),
        cmocka_unit_test(test_same_group_counts_once),
        cmocka_unit_test(test_dropped_observations),
        cmocka_unit_test(test_listen_addrs),
        cmocka_unit_test(test_port_reuse_vs_ephemeral),
        cmocka_unit_test(test_inbound_suffix),
        cmocka_unit_test(test_nat_classification),
        cmocka_unit_test(test_port_prediction),
        cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_eviction_flood),
        cmocka_unit_test(test_nomem),
        cmocka_unit_test(test_growth),
        cmocka_unit_test(test_bad_settings),
        cmocka_unit_test(test_repeat_same_as_rebuild),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
