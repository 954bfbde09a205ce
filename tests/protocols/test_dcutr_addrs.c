/* DCUtR address selection, punch decision and the tracer's metrics. */
#include "support/test.h"

#include "flare/dcutr.h"

static int usable(const char *s, int doc, int quic)
{
    flare_multiaddr m = flare_test_ma(s);
    flare_dcutr_addr_settings o;
    flare_dcutr_addr_settings_default(&o);
    o.doc_is_public = doc;
    o.allow_quic = quic;
    return flare_dcutr_addr_usable(&m, &o);
}

/* A peer's CONNECT: only public addresses are dialed unless private ones
 * are allowed, never unspecified or multicast, one per endpoint, at most
 * FLARE_DCUTR_MAX_DIALS. */
static void test_dial_addrs_scope(void **state)
{
    (void)state;
    static const char *const hostile[] = {
        "/ip4/127.0.0.1/tcp/22",       "/ip4/10.0.0.5/tcp/6379", "/ip4/192.168.1.1/tcp/80",
        "/ip4/169.254.169.254/tcp/80", "/ip4/100.64.0.1/tcp/1",  "/ip4/0.0.0.0/tcp/1",
        "/ip4/224.0.0.1/tcp/1",        "/ip6/::1/tcp/22",        "/ip6/fe80::1/tcp/22",
        "/ip6/fd00::1/tcp/22",         "/ip6/::/tcp/1",          "/ip6/ff02::1/tcp/1",
        "/ip4/1.2.3.4/tcp/4001",
    };
    size_t n = sizeof(hostile) / sizeof(hostile[0]);
    flare_multiaddr in[16], out[16];
    for (size_t i = 0; i < n; i++)
        in[i] = flare_test_ma(hostile[i]);
    flare_dcutr_addr_settings o;
    flare_dcutr_addr_settings_default(&o);
    assert_int_equal(flare_dcutr_dial_addrs(in, n, &o, out, 16), 1);
    assert_true(flare_multiaddr_equal(&out[0], &in[n - 1]));
    /* Allowed: private, loopback, link-local, CGNAT; still not unspecified
     * or multicast. */
    o.allow_private = 1;
    int k = flare_dcutr_dial_addrs(in, n, &o, out, 16);
    assert_int_equal(k, 8); /* the bound */
    for (int i = 0; i < k; i++) {
        flare_ma_class c = flare_multiaddr_classify(&out[i]);
        assert_true(c != FLARE_MA_UNSPECIFIED && c != FLARE_MA_OTHER);
    }
    o.max_dials = 16;
    assert_int_equal(flare_dcutr_dial_addrs(in, n, &o, out, 16), 9);
    /* NULL opts: the defaults (public only). */
    assert_int_equal(flare_dcutr_dial_addrs(in, n, NULL, out, 16), 1);
    assert_int_equal(flare_dcutr_dial_addrs(NULL, 1, NULL, out, 16), FLARE_ERR_INVALID_ARG);
}

/* The same endpoint twice (with and without /p2p/) is dialed once; many
 * public addresses are cut at FLARE_DCUTR_MAX_DIALS. */
static void test_dial_addrs_bound(void **state)
{
    (void)state;
    flare_multiaddr in[32], out[32];
    size_t n = 0;
    in[n++] = flare_test_ma("/ip4/1.2.3.4/tcp/4001");
    in[n++] = flare_test_ma(
        "/ip4/1.2.3.4/tcp/4001/p2p/12D3KooWGC6TvWhfapngX6wvJHMYvKpDMXPb3ZnCZ6dMoaMtimQ5");
    in[n++] = flare_test_ma("/ip4/1.2.3.4/tcp/4002");
    assert_int_equal(flare_dcutr_dial_addrs(in, n, NULL, out, 32), 2);
    n = 0;
    for (int i = 0; i < 30; i++) {
        char s[64];
        snprintf(s, sizeof(s), "/ip4/1.2.3.%d/tcp/4001", i + 1);
        in[n++] = flare_test_ma(s);
    }
    assert_int_equal(flare_dcutr_dial_addrs(in, n, NULL, out, 32), FLARE_DCUTR_MAX_DIALS);
    assert_int_equal(flare_dcutr_dial_addrs(in, n, NULL, out, 3), 3);
}

static void test_addr_usable(void **state)
{
    (void)state;
    assert_true(usable("/ip4/1.2.3.4/tcp/4001", 0, 0));
    assert_true(usable("/ip6/2600::1/tcp/4001", 0, 0));
    assert_true(usable(
        "/ip4/1.2.3.4/tcp/4001/p2p/12D3KooWGC6TvWhfapngX6wvJHMYvKpDMXPb3ZnCZ6dMoaMtimQ5", 0, 0));
    assert_false(usable("/ip4/192.168.1.2/tcp/4001", 1, 1)); /* private */
    assert_false(usable("/ip4/127.0.0.1/tcp/4001", 1, 1));
    assert_false(usable("/ip4/100.64.0.1/tcp/4001", 1, 1)); /* CGNAT */
    assert_false(usable("/ip6/fe80::1/tcp/4001", 1, 1));
    assert_false(usable("/dns4/example.com/tcp/4001", 1, 1)); /* resolve first */
    /* TEST-NET only in lab mode */
    assert_false(usable("/ip4/198.51.100.7/tcp/4001", 0, 0));
    assert_true(usable("/ip4/198.51.100.7/tcp/4001", 1, 0));
    assert_true(usable("/ip6/2001:db8::7/tcp/4001", 1, 0));
    /* QUIC only when allowed; other transports never */
    assert_false(usable("/ip4/1.2.3.4/udp/4001/quic-v1", 0, 0));
    assert_true(usable("/ip4/1.2.3.4/udp/4001/quic-v1", 0, 1));
    assert_false(usable("/ip4/1.2.3.4/udp/4001/quic", 0, 1));
    assert_false(usable("/ip4/1.2.3.4/udp/4001", 0, 1));
    assert_false(usable("/ip4/1.2.3.4/tcp/4001/ws", 0, 1));
    assert_false(usable("/ip4/1.2.3.4/udp/4001/quic-v1/webtransport", 0, 1));
    assert_false(usable("/ip4/1.2.3.4", 0, 1));
    assert_false(
        usable("/ip4/1.2.3.4/tcp/1/p2p/12D3KooWGC6TvWhfapngX6wvJHMYvKpDMXPb3ZnCZ6dMoaMtimQ5/"
               "p2p/12D3KooWGC6TvWhfapngX6wvJHMYvKpDMXPb3ZnCZ6dMoaMtimQ5",
               0, 0));
    assert_false(
        usable("/ip4/1.2.3.4/tcp/1/p2p/12D3KooWGC6TvWhfapngX6wvJHMYvKpDMXPb3ZnCZ6dMoaMtimQ5/"
               "p2p-circuit",
               0, 0));
    flare_multiaddr empty = {0};
    assert_false(flare_dcutr_addr_usable(&empty, NULL));
    flare_multiaddr m = flare_test_ma("/ip4/1.2.3.4/tcp/1");
    assert_true(flare_dcutr_addr_usable(&m, NULL));
}

static void test_select_addrs(void **state)
{
    (void)state;
    flare_multiaddr confirmed[] = {flare_test_ma("/ip4/10.0.0.1/tcp/1"),
                                   flare_test_ma("/ip4/1.1.1.1/tcp/1"),
                                   flare_test_ma("/ip4/2.2.2.2/tcp/2")};
    flare_multiaddr cand[] = {
        flare_test_ma("/ip4/2.2.2.2/tcp/2"), flare_test_ma("/ip4/3.3.3.3/udp/3/quic-v1"),
        flare_test_ma("/ip4/4.4.4.4/tcp/4"), flare_test_ma("/ip4/5.5.5.5/tcp/5")};
    flare_multiaddr out[8];
    flare_dcutr_addr_settings o;
    flare_dcutr_addr_settings_default(&o);
    int n = flare_dcutr_select_addrs(confirmed, 3, cand, 4, &o, out, 8);
    assert_int_equal(n, 4);
    assert_true(flare_multiaddr_equal(&out[0], &confirmed[1])); /* confirmed first */
    assert_true(flare_multiaddr_equal(&out[1], &confirmed[2]));
    assert_true(flare_multiaddr_equal(&out[2], &cand[2])); /* duplicate and quic skipped */
    assert_true(flare_multiaddr_equal(&out[3], &cand[3]));
    o.allow_quic = 1;
    o.max = 3;
    n = flare_dcutr_select_addrs(confirmed, 3, cand, 4, &o, out, 8);
    assert_int_equal(n, 3);
    assert_true(flare_multiaddr_equal(&out[2], &cand[1]));
    assert_int_equal(flare_dcutr_select_addrs(confirmed, 3, cand, 4, NULL, out, 2), 2);
    assert_int_equal(flare_dcutr_select_addrs(confirmed, 1, NULL, 0, NULL, out, 8), 0);
    assert_int_equal(flare_dcutr_select_addrs(NULL, 1, NULL, 0, NULL, out, 8),
                     FLARE_ERR_INVALID_ARG);
}

static void test_punch_decisions(void **state)
{
    (void)state;
    flare_multiaddr a[] = {
        flare_test_ma("/ip4/10.0.0.1/tcp/1"),
        flare_test_ma("/ip4/1.2.3.4/tcp/1/p2p/12D3KooWGC6TvWhfapngX6wvJHMYvKpDMXPb3ZnCZ6dMo"
                      "aMtimQ5/p2p-circuit")};
    assert_false(flare_dcutr_should_dial_direct(a, 2, 1));
    flare_multiaddr b[] = {flare_test_ma("/ip4/10.0.0.1/tcp/1"),
                           flare_test_ma("/ip4/198.51.100.1/udp/1/quic-v1")};
    assert_false(flare_dcutr_should_dial_direct(b, 2, 0));
    assert_true(flare_dcutr_should_dial_direct(b, 2, 1));
    assert_false(flare_dcutr_should_dial_direct(NULL, 0, 1));

    flare_dcutr_punch_hint h = {0};
    h.our_addrs = 2;
    assert_int_equal(flare_dcutr_should_punch(&h), FLARE_DCUTR_PUNCH); /* peer unknown yet */
    h.their_addrs_known = 1;
    assert_int_equal(flare_dcutr_should_punch(&h), FLARE_DCUTR_SKIP_NO_ADDRS);
    h.their_addrs = 1;
    h.our_nat = FLARE_DCUTR_NAT_EDM;
    assert_int_equal(flare_dcutr_should_punch(&h), FLARE_DCUTR_PUNCH);
    h.their_nat = FLARE_DCUTR_NAT_UNKNOWN;
    assert_int_equal(flare_dcutr_should_punch(&h), FLARE_DCUTR_PUNCH);
    h.their_nat = FLARE_DCUTR_NAT_EDM;
    assert_int_equal(flare_dcutr_should_punch(&h), FLARE_DCUTR_SKIP_BOTH_SYMMETRIC);
    h.our_addrs = 0;
    assert_int_equal(flare_dcutr_should_punch(&h), FLARE_DCUTR_SKIP_NO_ADDRS);
    h.have_direct_conn = 1;
    assert_int_equal(flare_dcutr_should_punch(&h), FLARE_DCUTR_SKIP_DIRECT_EXISTS);
    assert_string_equal(flare_dcutr_verdict_name(FLARE_DCUTR_SKIP_BOTH_SYMMETRIC),
                        "skip-both-symmetric");
}

static int has_line(const flare_buf *b, const char *line)
{
    size_t l = strlen(line);
    const char *p = (const char *)b->base;
    const char *end = p + b->len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            return 0;
        if ((size_t)(nl - p) == l && memcmp(p, line, l) == 0)
            return 1;
        p = nl + 1;
    }
    return 0;
}

static void test_tracer_metrics(void **state)
{
    (void)state;
    flare_dcutr_tracer t;
    flare_dcutr_tracer_init(&t);
    flare_multiaddr v4 = flare_test_ma("/ip4/1.2.3.4/tcp/1");
    flare_multiaddr q6 = flare_test_ma("/ip6/2600::1/udp/1/quic-v1");
    flare_dcutr_tracer_step(&t, 1, 1, 1, FLARE_DCUTR_STEP_CONNECT_SENT, 10, 2);
    flare_dcutr_tracer_step(&t, 1, 0, 1, FLARE_DCUTR_STEP_CONNECT_RECEIVED, 11, 2);
    flare_dcutr_tracer_step(&t, 1, 0, 1, FLARE_DCUTR_STEP_CONNECT_SENT, 11, 2); /* not counted */
    flare_dcutr_tracer_step(&t, 1, 1, 1, FLARE_DCUTR_STEP_RTT, 12, 1500 * FLARE_NS_PER_MS);
    flare_dcutr_tracer_step(&t, 1, 1, 1, FLARE_DCUTR_STEP_ATTEMPT_FAILED, 13,
                            FLARE_DCUTR_REASON_DIAL);
    flare_dcutr_tracer_step(&t, 1, 1, 3, FLARE_DCUTR_STEP_GAVE_UP, 14, FLARE_DCUTR_REASON_DIAL);
    flare_dcutr_tracer_outcome(&t, 1, &v4, 1);
    flare_dcutr_tracer_outcome(&t, 1, &q6, 2);
    flare_dcutr_tracer_outcome(&t, 0, &v4, 1);
    flare_dcutr_tracer_outcome(&t, 0, NULL, 1);
    flare_dcutr_tracer_outcome(&t, 1, &v4, 9);
    flare_dcutr_tracer_direct_dial(&t, 0);
    assert_int_equal(t.attempts, 2);

    flare_buf b;
    flare_buf_init(&b, NULL);
    assert_int_equal(flare_dcutr_metrics_format(&t, &b), 0);
    static const char *const want[] = {
        "# HELP flare_holepunch_attempts_total Hole punch exchanges started (CONNECT sent or "
        "received).",
        "# TYPE flare_holepunch_attempts_total counter",
        "flare_holepunch_attempts_total 2",
        "# TYPE flare_holepunch_outcomes_total counter",
        "flare_holepunch_outcomes_total{result=\"success\",transport=\"tcp\",ipv=\"4\"} 2",
        "flare_holepunch_outcomes_total{result=\"success\",transport=\"quic\",ipv=\"6\"} 1",
        "flare_holepunch_outcomes_total{result=\"success\",transport=\"tcp\",ipv=\"6\"} 0",
        "flare_holepunch_outcomes_total{result=\"failure\",transport=\"tcp\",ipv=\"4\"} 1",
        "flare_holepunch_outcomes_total{result=\"failure\",transport=\"other\",ipv=\"other\"} 1",
        "flare_holepunch_success_attempt{n=\"1\"} 1",
        "flare_holepunch_success_attempt{n=\"2\"} 1",
        "flare_holepunch_success_attempt{n=\"3\"} 0",
        "flare_holepunch_success_attempt{n=\"more\"} 1",
        "flare_holepunch_attempt_failures_total{reason=\"dial\"} 1",
        "flare_holepunch_gave_up_total{reason=\"dial\"} 1",
        "flare_holepunch_gave_up_total{reason=\"stream-timeout\"} 0",
        "flare_holepunch_direct_dials_total{result=\"failure\"} 1",
        "flare_holepunch_direct_dials_total{result=\"success\"} 0",
        "# TYPE flare_holepunch_last_rtt_seconds gauge",
        "flare_holepunch_last_rtt_seconds 1.500000000",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        if (!has_line(&b, want[i]))
            fail_msg("missing line: %s\n--- got:\n%.*s", want[i], (int)b.len, (char *)b.base);
    }
    /* zero "other" series are left out */
    assert_false(has_line(&b, "flare_holepunch_outcomes_total{result=\"success\",transport="
                              "\"other\",ipv=\"other\"} 0"));
    /* every sample line belongs to a declared metric and ends with a number */
    assert_int_equal(b.base[b.len - 1], '\n');
    flare_buf_free(&b);

    /* the log is a ring: the newest FLARE_DCUTR_TRACE_LOG entries remain */
    assert_int_equal(flare_dcutr_tracer_entry(&t, 0)->step, FLARE_DCUTR_STEP_GAVE_UP);
    assert_int_equal(flare_dcutr_tracer_entry(&t, 5)->step, FLARE_DCUTR_STEP_CONNECT_SENT);
    assert_null(flare_dcutr_tracer_entry(&t, 6));
    for (uint64_t i = 0; i < 300; i++)
        flare_dcutr_tracer_step(&t, i, 1, 1, FLARE_DCUTR_STEP_DIAL_START, 100 + i, i);
    assert_int_equal(flare_dcutr_tracer_entry(&t, 0)->value, 299);
    assert_int_equal(flare_dcutr_tracer_entry(&t, FLARE_DCUTR_TRACE_LOG - 1)->value,
                     300 - FLARE_DCUTR_TRACE_LOG);
    assert_null(flare_dcutr_tracer_entry(&t, FLARE_DCUTR_TRACE_LOG));
    assert_string_equal(flare_dcutr_step_name(FLARE_DCUTR_STEP_SYNC_RECEIVED), "sync-received");
    assert_string_equal(flare_dcutr_reason_name(FLARE_DCUTR_REASON_NO_ADDRS), "no-addrs");
    assert_string_equal(flare_dcutr_step_name(FLARE_DCUTR_STEP_COUNT), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addr_usable),      cmocka_unit_test(test_dial_addrs_scope),
        cmocka_unit_test(test_dial_addrs_bound), cmocka_unit_test(test_select_addrs),
        cmocka_unit_test(test_punch_decisions),  cmocka_unit_test(test_tracer_metrics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
