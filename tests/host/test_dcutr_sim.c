/* DCUtR hole punching on the simulator: the Flare flow end to end, roles on
 * the direct connection, fallback to the relay, and the NAT matrix. */
#include "support/test.h"

#include "host/simworld.h"

#define MS FLARE_NS_PER_MS
#define S  FLARE_NS_PER_S

static void test_cone_cone_direct(void **state)
{
    dw_params p;
    dw_params_default(&p);
    dw_world w;
    assert_int_equal(dw_setup(&w, &p), 0);
    dw_run_punch(&w, 30 * S);
    assert_int_equal(w.b.punch_done, 1);
    assert_int_equal(w.b.punch_err, 0);
    assert_int_equal(w.b.attempt, 1);
    assert_true(dw_direct(&w));
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
    dw_free(&w);
}

static void test_symmetric_symmetric_stays_relayed(void **state)
{
    dw_params p;
    dw_params_default(&p);
    p.nat_a.mapping = p.nat_b.mapping = FLARE_SIM_APD;
    p.nat_a.port_preservation = p.nat_b.port_preservation = 0;
    dw_world w;
    assert_int_equal(dw_setup(&w, &p), 0);
    dw_run_punch(&w, 60 * S);
    assert_int_equal(w.b.punch_done, 1);
    assert_true(w.b.punch_err != 0);
    assert_non_null(w.b.punch_reason);
    assert_false(dw_direct(&w));
    /* The limited relayed connection stays. */
    flare_conn *c = flare_host_conn_to(w.a.h, flare_host_peerid(w.b.h));
    assert_non_null(c);
    assert_true(flare_conn_is_limited(c));
    dw_free(&w);
}

/* Loss on the links: retransmissions and retries still get through. */
static void test_cone_with_loss(void **state)
{
    int ok = 0;
    for (uint64_t seed = 1; seed <= 5; seed++) {
        dw_params p;
        dw_params_default(&p);
        p.loss = 0.05;
        p.seed = seed;
        dw_world w;
        if (dw_setup(&w, &p) == 0) {
            dw_run_punch(&w, 60 * S);
            ok += dw_direct(&w);
        }
        dw_free(&w);
    }
    assert_true(ok >= 4);
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
                        dw_params p;
                        dw_params_default(&p);
                        p.seed = seed * 7 + (uint64_t)cells;
                        p.nat_a.mapping = p.nat_b.mapping = B[mi];
                        p.nat_a.filtering = p.nat_b.filtering = B[fi];
                        p.nat_a.port_preservation = p.nat_b.port_preservation = pp;
                        p.nat_a.syn_rst = p.nat_b.syn_rst = rst;
                        dw_world w;
                        if (dw_setup(&w, &p) == 0) {
                            dw_run_punch(&w, 40 * S);
                            direct += dw_direct(&w);
                        }
                        dw_free(&w);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cone_cone_direct),
        cmocka_unit_test(test_symmetric_symmetric_stays_relayed),
        cmocka_unit_test(test_cone_with_loss),
        cmocka_unit_test(test_matrix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
