/* DCUtR hole punching on the simulator: the Flare flow end to end, roles on
 * the direct connection, fallback to the relay, and the NAT matrix. */
#include "support/test.h"

#include "flare/dcutr.h"
#include "flare/lpframe.h"
#include "flare/sim_world.h"

#define MS FLARE_NS_PER_MS
#define S  FLARE_NS_PER_S

static void test_cone_cone_direct(void **state)
{
    flare_sim_world_settings p;
    flare_sim_world_settings_default(&p);
    flare_sim_world w;
    assert_int_equal(flare_sim_world_setup(&w, &p), 0);
    flare_sim_world_run_punch(&w, 30 * S);
    assert_int_equal(w.b.punch_done, 1);
    assert_int_equal(w.b.punch_err, 0);
    assert_int_equal(w.b.attempt, 1);
    assert_true(flare_sim_world_direct(&w));
    /* Roles on the direct connection: A is the initiator, B the responder. */
    flare_conn *ca = flare_host_conn_to(w.a.h, flare_host_peerid(w.b.h));
    flare_conn *cb = flare_host_conn_to(w.b.h, flare_host_peerid(w.a.h));
    assert_non_null(cb);
    assert_false(flare_conn_is_limited(cb));
    assert_true(flare_conn_is_initiator(ca));
    assert_false(flare_conn_is_initiator(cb));
    /* The relay RTT (A-R-B, 25 ms per link each way: 4 links) is ~200 ms. */
    assert_true(w.b.relay_rtt >= 200 * MS && w.b.relay_rtt < 260 * MS);
    /* The relayed connection was closed after the grace period: only the
     * direct one is left on both sides. */
    assert_int_equal(flare_host_num_conns(w.a.h), 2); /* R and B */
    assert_int_equal(flare_host_num_conns(w.b.h), 2);
    /* The direct connection carries traffic: a ping at the direct RTT
     * (A-NAT-A-NAT-B-B: 2 links each way, 100 ms). */
    assert_int_equal(flare_host_ping(w.a.h, flare_host_peerid(w.b.h), NULL, NULL), 0);
    flare_sim_run_for(w.sim, 1 * S);
    /* Time from the relayed connection to the direct one: CONNECT round trip
     * over the relay + RTT/2 + the direct handshakes. */
    flare_tstamp t = w.b.done_at - w.relayed_up;
    assert_true(t < 3 * S);
    flare_buf m;
    flare_buf_init(&m, NULL);
    assert_int_equal(flare_host_holepunch_metrics(w.b.h, &m), 0);
    flare_buf_append_byte(&m, 0);
    assert_non_null(strstr((char *)m.base, "flare_holepunch_attempts_total"));
    flare_buf_free(&m);
    flare_sim_world_free(&w);
}

static void test_symmetric_symmetric_stays_relayed(void **state)
{
    flare_sim_world_settings p;
    flare_sim_world_settings_default(&p);
    p.nat_a.mapping = p.nat_b.mapping = FLARE_SIM_APD;
    p.nat_a.port_preservation = p.nat_b.port_preservation = 0;
    flare_sim_world w;
    assert_int_equal(flare_sim_world_setup(&w, &p), 0);
    flare_sim_world_run_punch(&w, 60 * S);
    assert_int_equal(w.b.punch_done, 1);
    assert_true(w.b.punch_err != 0);
    assert_non_null(w.b.punch_reason);
    assert_false(flare_sim_world_direct(&w));
    /* The limited relayed connection stays. */
    flare_conn *c = flare_host_conn_to(w.a.h, flare_host_peerid(w.b.h));
    assert_non_null(c);
    assert_true(flare_conn_is_limited(c));
    flare_sim_world_free(&w);
}

/* Loss on the links: retransmissions and retries still get through. */
static void test_cone_with_loss(void **state)
{
    int ok = 0;
    for (uint64_t seed = 1; seed <= 5; seed++) {
        flare_sim_world_settings p;
        flare_sim_world_settings_default(&p);
        p.loss = 0.05;
        p.seed = seed;
        flare_sim_world w;
        if (flare_sim_world_setup(&w, &p) == 0) {
            flare_sim_world_run_punch(&w, 60 * S);
            ok += flare_sim_world_direct(&w);
        }
        flare_sim_world_free(&w);
    }
    assert_true(ok >= 4);
}

/* Relayed to direct in RTTs, with the relay adding no delay of its own so
 * that the relayed and the direct round trip are equal (100 ms): the floor
 * is 4 RTT (CONNECT exchange 1, SYNC 0.5, TCP handshake 1, Noise 1.5; B is
 * up half an RTT after A, whose relayed dial ends the clock's start). */
static void test_punch_within_rtt_bound(void **state)
{
    flare_sim_world_settings p;
    flare_sim_world_settings_default(&p);
    p.delay_r = 0;
    p.log = getenv("FLARE_TEST_LOG") ? stderr : NULL;
    flare_sim_world w;
    assert_int_equal(flare_sim_world_setup(&w, &p), 0);
    if (getenv("FLARE_TEST_TRACE"))
        flare_sim_set_trace(w.sim, flare_sim_trace_file, stderr);
    flare_sim_world_run_punch(&w, 30 * S);
    assert_int_equal(w.b.punch_err, 0);
    assert_int_equal(w.a.punch_err, 0);
    assert_true(w.b.relay_rtt == 100 * MS);
    flare_tstamp done = w.a.done_at > w.b.done_at ? w.a.done_at : w.b.done_at;
    flare_tstamp t = done - w.relayed_up;
    if (getenv("FLARE_TEST_LOG"))
        fprintf(stderr, "relayed -> direct: %.1f ms = %.2f RTT\n", t / 1e6, t / 100e6);
    assert_true(t <= 460 * MS);
    flare_sim_world_free(&w);
}

/* ---- both sides end with an outcome ------------------------------------------------------- */

/* A (the dialer) reports the end of the punch as B does: success with the
 * transport, or failure with the reason and the attempts. */
static void test_both_sides_report(void **state)
{
    flare_sim_world_settings p;
    flare_sim_world_settings_default(&p);
    flare_sim_world w;
    assert_int_equal(flare_sim_world_setup(&w, &p), 0);
    flare_sim_world_run_punch(&w, 30 * S);
    for (int i = 0; i < 2; i++) {
        flare_sim_world_node *n = i ? &w.b : &w.a;
        assert_int_equal(n->punch_done, 1);
        assert_int_equal(n->punch_err, 0);
        assert_null(n->punch_reason);
        assert_string_equal(n->punch_transport, "tcp");
        assert_string_equal(n->punch_family, "ip4");
        assert_int_equal(n->attempt, 1);
    }
    flare_sim_world_free(&w);

    /* Symmetric NATs on both sides: every attempt fails on both. */
    p.nat_a.mapping = p.nat_b.mapping = FLARE_SIM_APD;
    p.nat_a.port_preservation = p.nat_b.port_preservation = 0;
    assert_int_equal(flare_sim_world_setup(&w, &p), 0);
    flare_sim_world_run_punch(&w, 60 * S);
    for (int i = 0; i < 2; i++) {
        flare_sim_world_node *n = i ? &w.b : &w.a;
        assert_int_equal(n->punch_done, 1);
        assert_int_equal(n->punch_err, FLARE_ERR_UNREACHABLE);
        assert_string_equal(n->punch_reason, "dial-timeout");
        assert_null(n->punch_transport);
        assert_int_equal(n->attempt, FLARE_DCUTR_DEFAULT_MAX_ATTEMPTS);
    }
    /* A ended when its last dial phase did, not a timeout later. */
    assert_true(w.a.done_at <= w.b.done_at + 1 * S);
    assert_false(flare_sim_world_direct(&w));
    flare_sim_world_free(&w);
}

/* The relay ends the circuit in the middle of the punch: B cannot retry, A
 * cannot be asked again; both report the failure. */
static void test_both_report_when_circuit_ends(void **state)
{
    flare_relay_server_settings rs;
    flare_relay_server_settings_default(&rs);
    rs.limit_duration = 1; /* s: ends during the first dial phase */
    flare_sim_world_settings p;
    flare_sim_world_settings_default(&p);
    p.nat_a.mapping = p.nat_b.mapping = FLARE_SIM_APD;
    p.nat_a.port_preservation = p.nat_b.port_preservation = 0;
    p.relay = &rs;
    flare_sim_world w;
    assert_int_equal(flare_sim_world_setup(&w, &p), 0);
    flare_sim_world_run_punch(&w, 60 * S);
    flare_sim_run_for(w.sim, 10 * S);
    for (int i = 0; i < 2; i++) {
        flare_sim_world_node *n = i ? &w.b : &w.a;
        assert_int_equal(n->punch_done, 1);
        assert_true(n->punch_err != 0);
        assert_non_null(n->punch_reason);
        assert_int_equal(n->attempt, 1);
    }
    assert_false(flare_sim_world_direct(&w));
    flare_sim_world_free(&w);
}

/* ---- IPv6 and dual stack ------------------------------------------------------------------ */

static int punch_family(flare_sim_world_family fam, flare_sim_world *w)
{
    flare_sim_world_settings p;
    flare_sim_world_settings_default(&p);
    p.family = fam;
    p.log = getenv("FLARE_TEST_LOG") ? stderr : NULL;
    assert_int_equal(flare_sim_world_setup(w, &p), 0);
    flare_sim_world_run_punch(w, 30 * S);
    assert_int_equal(w->b.punch_done, 1);
    return w->b.punch_err;
}

/* IPv6 only: stateful firewalls filter but do not translate. */
static void test_v6_firewalls_direct(void **state)
{
    flare_sim_world w;
    assert_int_equal(punch_family(FLARE_SIM_WORLD_V6, &w), 0);
    assert_true(flare_sim_world_direct(&w));
    assert_true(flare_multiaddr_has(&w.b.direct_addr, FLARE_MA_IP6));
    assert_string_equal(w.b.punch_family, "ip6");
    assert_string_equal(w.a.punch_family, "ip6");
    assert_string_equal(w.b.punch_transport, "tcp");
    flare_sim_world_free(&w);
}

/* IPv4 behind NATs plus IPv6 behind firewalls: every family is punched at
 * once and the first direct connection is kept. */
static void test_dual_stack_direct(void **state)
{
    flare_sim_world w;
    assert_int_equal(punch_family(FLARE_SIM_WORLD_DUAL, &w), 0);
    assert_true(flare_sim_world_direct(&w));
    assert_int_equal(w.b.attempt, 1);
    /* Both families were punched; the event names the one that won. */
    assert_non_null(w.b.punch_family);
    assert_true(flare_multiaddr_has(&w.b.direct_addr, FLARE_MA_IP6) ==
                (strcmp(w.b.punch_family, "ip6") == 0));
    assert_string_equal(w.b.punch_transport, "tcp");
    flare_sim_world_free(&w);
}

/* B starts DCUtR before identify; a peer without DCUtR answers "na" and
 * the punch ends at once as unsupported, the relayed connection intact. */
static void test_peer_without_dcutr(void **state)
{
    flare_sim_world_settings p;
    flare_sim_world_settings_default(&p);
    flare_sim_world w;
    assert_int_equal(flare_sim_world_build(&w, &p), 0);
    assert_int_equal(flare_host_remove_handler(w.a.h, FLARE_DCUTR_PROTOCOL_ID), 0);
    flare_multiaddr rma;
    assert_int_equal(flare_sim_world_relay_addr(&w, &rma), 0);
    assert_int_equal(flare_host_relay_reserve(w.b.h, &rma), 0);
    flare_sim_run_for(w.sim, 2 * S);
    assert_int_equal(w.b.rsv_ok, 1);
    assert_int_equal(flare_sim_world_dial_relayed(&w), 0);
    flare_sim_run_for(w.sim, 5 * S);
    assert_int_equal(w.dial_status, 0);
    assert_int_equal(w.b.punch_done, 1);
    assert_int_equal(w.b.punch_err, FLARE_ERR_UNSUPPORTED);
    assert_string_equal(w.b.punch_reason, "unsupported");
    assert_int_equal(w.a.punch_done, 0);
    flare_conn *c = flare_host_conn_to(w.b.h, flare_host_peerid(w.a.h));
    assert_non_null(c);
    assert_true(flare_conn_is_limited(c));
    flare_sim_world_free(&w);
}

/* ---- the NAT matrix ---------------------------------------------------------------------- */

static const char *bname(flare_sim_nat_behavior b)
{
    return b == FLARE_SIM_EI ? "EI" : b == FLARE_SIM_AD ? "AD" : "APD";
}

static void test_matrix(void **state)
{
    static const flare_sim_nat_behavior B[] = {FLARE_SIM_EI, FLARE_SIM_AD, FLARE_SIM_APD};
    int cells = 0, direct_cells = 0, must_fail = 0;
    FILE *out = stdout;
    const char *path = getenv("FLARE_DCUTR_MATRIX");
    if (path)
        out = fopen(path, "w");
    fprintf(out, "# DCUtR success matrix (simulator; both NATs alike; 25 ms links; seeds 1-3)\n");
    fprintf(out, "| mapping | filtering | port pres. | unsolicited SYN | direct / runs |\n");
    fprintf(out, "|---|---|---|---|---|\n");
    for (int mi = 0; mi < 3; mi++)
        for (int fi = 0; fi < 3; fi++)
            for (int pp = 1; pp >= 0; pp--)
                for (int rst = 0; rst <= 1; rst++) {
                    int direct = 0, runs = 3;
                    for (uint64_t seed = 1; seed <= (uint64_t)runs; seed++) {
                        flare_sim_world_settings p;
                        flare_sim_world_settings_default(&p);
                        p.seed = seed * 7 + (uint64_t)cells;
                        p.nat_a.mapping = p.nat_b.mapping = B[mi];
                        p.nat_a.filtering = p.nat_b.filtering = B[fi];
                        p.nat_a.port_preservation = p.nat_b.port_preservation = pp;
                        p.nat_a.syn_rst = p.nat_b.syn_rst = rst;
                        flare_sim_world w;
                        if (flare_sim_world_setup(&w, &p) == 0) {
                            flare_sim_world_run_punch(&w, 40 * S);
                            direct += flare_sim_world_direct(&w);
                        }
                        flare_sim_world_free(&w);
                    }
                    fprintf(out, "| %s | %s | %s | %s | %d/%d |\n", bname(B[mi]), bname(B[fi]),
                            pp ? "on" : "off", rst ? "RST" : "drop", direct, runs);
                    /* Where theory is unambiguous: both mappings endpoint-
                     * independent and SYNs dropped: a direct path exists. */
                    if (B[mi] == FLARE_SIM_EI && !rst)
                        assert_int_equal(direct, runs);
                    /* Both symmetric with strict filtering: no path. */
                    if (B[mi] == FLARE_SIM_APD && B[fi] == FLARE_SIM_APD && !pp) {
                        assert_int_equal(direct, 0);
                        must_fail++;
                    }
                    cells++;
                    direct_cells += direct == runs;
                }
    fprintf(out, "\n%d cells, %d always direct\n", cells, direct_cells);
    if (path)
        fclose(out);
    assert_true(must_fail > 0);
}

/* ---- a hostile A: its CONNECT lists B's own LAN, loopback and many addresses ---------------- */

typedef struct hostile {
    flare_buf in;
    int connects;
} hostile;

static void hostile_data(flare_stream *s, const uint8_t *d, size_t len, void *user)
{
    hostile *x = user;
    flare_buf_append(&x->in, d, len);
    const uint8_t *msg;
    size_t mlen;
    int n;
    while ((n = flare_lpframe_parse(x->in.base, x->in.len, FLARE_DCUTR_MAX_MSG, &msg, &mlen)) > 0) {
        flare_dcutr_msg m;
        if (flare_dcutr_msg_decode(&m, msg, mlen) == 0 && m.type == FLARE_DCUTR_CONNECT) {
            flare_multiaddr a[24];
            size_t k = 0;
            flare_test_tcp_addr(&a[k++], "10.0.2.2", 4001, NULL); /* B itself, on its LAN */
            flare_test_tcp_addr(&a[k++], "127.0.0.1", 22, NULL);
            flare_test_tcp_addr(&a[k++], "10.0.2.1", 6379, NULL); /* B's gateway */
            flare_test_tcp_addr(&a[k++], "169.254.169.254", 80, NULL);
            for (int i = 0; k < 24; i++) /* public-looking, nobody there */
                flare_test_tcp_addr(&a[k++], i % 2 ? "192.0.2.77" : "198.51.100.77", 5000 + i / 2,
                                    NULL);
            flare_buf out;
            flare_buf_init(&out, NULL);
            flare_dcutr_msg_encode(&out, FLARE_DCUTR_CONNECT, a, k);
            flare_stream_write(s, out.base, out.len);
            flare_buf_free(&out);
            x->connects++;
        }
        memmove(x->in.base, x->in.base + n, x->in.len - (size_t)n);
        x->in.len -= (size_t)n;
    }
}

static const flare_stream_cbs hostile_cbs = {.on_data = hostile_data};

typedef struct dial_log {
    flare_sim_world_node *node;
    int dials_private, dials;
    flare_multiaddr seen[64];
    size_t nseen;
} dial_log;

static void log_event(flare_host *h, const flare_host_event *ev, void *user)
{
    dial_log *l = user;
    flare_sim_world_on_event(h, ev, l->node);
    if (ev->type != FLARE_HOST_EV_DIAL_FAILED || !ev->u.failed.addr)
        return;
    flare_multiaddr bare = *ev->u.failed.addr;
    flare_multiaddr_decapsulate(&bare, FLARE_MA_P2P);
    if (flare_multiaddr_classify(&bare) != FLARE_MA_DOC)
        l->dials_private++;
    for (size_t i = 0; i < l->nseen; i++)
        if (flare_multiaddr_equal(&l->seen[i], &bare))
            return;
    if (l->nseen < 64)
        l->seen[l->nseen++] = bare;
}

/* A relay user must not make B knock on ports of B's own LAN or loopback,
 * nor on dozens of ports: B dials at most FLARE_DCUTR_MAX_DIALS public
 * addresses per attempt (the same ones each attempt). */
static void test_hostile_connect_addrs(void **state)
{
    flare_sim_world_settings p;
    flare_sim_world_settings_default(&p);
    flare_sim_world w;
    assert_int_equal(flare_sim_world_build(&w, &p), 0);
    hostile x = {0};
    flare_buf_init(&x.in, NULL);
    assert_int_equal(flare_host_set_handler(w.a.h, FLARE_DCUTR_PROTOCOL_ID, &hostile_cbs, &x,
                                            FLARE_HANDLER_ALLOW_LIMITED),
                     0);
    dial_log l = {.node = &w.b};
    flare_host_set_event_cb(w.b.h, log_event, &l);
    flare_multiaddr rma;
    flare_sim_world_relay_addr(&w, &rma);
    assert_int_equal(flare_host_relay_reserve(w.b.h, &rma), 0);
    for (int i = 0; i < 100 && !w.b.rsv_ok; i++)
        flare_sim_run_for(w.sim, 100 * MS);
    assert_true(w.b.rsv_ok);
    assert_int_equal(flare_sim_world_dial_relayed(&w), 0);
    flare_sim_world_run_punch(&w, 120 * S);
    flare_sim_run_for(w.sim, 30 * S); /* the last dials time out */
    assert_true(x.connects >= 1);
    assert_int_equal(w.b.punch_done, 1);
    assert_true(w.b.punch_err != 0);
    assert_int_equal(l.dials_private, 0);
    assert_true(l.nseen > 0);
    assert_true(l.nseen <= FLARE_DCUTR_MAX_DIALS);
    flare_buf_free(&x.in);
    flare_sim_world_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cone_cone_direct),
        cmocka_unit_test(test_symmetric_symmetric_stays_relayed),
        cmocka_unit_test(test_cone_with_loss),
        cmocka_unit_test(test_punch_within_rtt_bound),
        cmocka_unit_test(test_both_sides_report),
        cmocka_unit_test(test_both_report_when_circuit_ends),
        cmocka_unit_test(test_v6_firewalls_direct),
        cmocka_unit_test(test_dual_stack_direct),
        cmocka_unit_test(test_peer_without_dcutr),
        cmocka_unit_test(test_matrix),
        cmocka_unit_test(test_hostile_connect_addrs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
