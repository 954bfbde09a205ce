/* One settings convention for every public settings struct: a zeroed
 * struct (no struct_size, as from `= {0}` or another build's headers) is
 * refused with FLARE_ERR_INVALID_ARG rather than taken as the defaults; a
 * struct from flare_X_settings_default() is accepted; a zero field means
 * zero, or is refused where zero makes no sense. */
#include "support/test.h"

#include "flare/addrmgr.h"
#include "flare/autonat.h"
#include "flare/dcutr.h"
#include "flare/noise.h"
#include "flare/reachability.h"
#include "flare/relay_server.h"
#include "flare/sim_world.h"
#include "flare/yamux.h"

#define S FLARE_NS_PER_S

static void test_addrmgr(void **state)
{
    (void)state;
    flare_addrmgr *m = NULL;
    flare_addrmgr_settings s = {0};
    assert_int_equal(flare_addrmgr_new(&m, &s, NULL), FLARE_ERR_INVALID_ARG);
    flare_addrmgr_settings_default(&s);
    assert_int_equal(s.struct_size, sizeof(s));
    s.activation_threshold = 0;
    assert_int_equal(flare_addrmgr_new(&m, &s, NULL), FLARE_ERR_INVALID_ARG);
    flare_addrmgr_settings_default(&s);
    s.ttl = 0;
    assert_int_equal(flare_addrmgr_new(&m, &s, NULL), FLARE_ERR_INVALID_ARG);
    flare_addrmgr_settings_default(&s);
    s.max_observations = 0;
    assert_int_equal(flare_addrmgr_new(&m, &s, NULL), FLARE_ERR_INVALID_ARG);
    assert_null(m);
    /* A 0-bit prefix is a real value: every observer is in one group, so
     * two observers from different networks count once. */
    flare_addrmgr_settings_default(&s);
    s.v4_group_bits = 0;
    assert_int_equal(flare_addrmgr_new(&m, &s, NULL), 0);
    flare_multiaddr listen = flare_test_ma("/ip4/0.0.0.0/tcp/4001");
    assert_int_equal(flare_addrmgr_add_listen_addr(m, &listen), 0);
    flare_multiaddr local = flare_test_ma("/ip4/192.168.1.5/tcp/4001");
    flare_multiaddr seen = flare_test_ma("/ip4/8.8.8.8/tcp/4001");
    flare_ipaddr o1, o2;
    assert_int_equal(flare_ipaddr_parse(&o1, "1.1.1.1"), 0);
    assert_int_equal(flare_ipaddr_parse(&o2, "9.9.9.9"), 0);
    flare_peerid p1 = flare_test_pid(1), p2 = flare_test_pid(2);
    assert_int_equal(flare_addrmgr_observe(m, &p1, &o1, &local, 0, &seen, S), 0);
    assert_int_equal(flare_addrmgr_observe(m, &p2, &o2, &local, 0, &seen, S), 0);
    flare_addrmgr_entry e[2];
    assert_int_equal(flare_addrmgr_entries(m, S, e, 2), 1);
    assert_int_equal(e[0].observers, 1); /* one group vouches once */
    flare_addrmgr_del(m);
    assert_int_equal(flare_addrmgr_new(&m, NULL, NULL), 0); /* NULL: the defaults */
    flare_addrmgr_del(m);
}

static void test_autonat_servers(void **state)
{
    (void)state;
    flare_autonat1_server s1;
    flare_autonat1_server_settings c1 = {0};
    assert_int_equal(flare_autonat1_server_init(&s1, &c1, NULL), FLARE_ERR_INVALID_ARG);
    flare_autonat1_server_settings_default(&c1);
    c1.period = 0;
    assert_int_equal(flare_autonat1_server_init(&s1, &c1, NULL), FLARE_ERR_INVALID_ARG);
    flare_autonat1_server_settings_default(&c1);
    c1.max_dial_addrs = 0;
    assert_int_equal(flare_autonat1_server_init(&s1, &c1, NULL), FLARE_ERR_INVALID_ARG);
    flare_autonat1_server_settings_default(&c1);
    c1.global_limit = 0; /* serves nobody: accepted */
    assert_int_equal(flare_autonat1_server_init(&s1, &c1, NULL), 0);
    flare_autonat1_server_free(&s1);

    flare_prng p;
    flare_prng_seed(&p, 1);
    flare_autonat2_server s2;
    flare_autonat2_server_settings c2 = {0};
    assert_int_equal(flare_autonat2_server_init(&s2, &c2, NULL, flare_prng_rng(&p)),
                     FLARE_ERR_INVALID_ARG);
    flare_autonat2_server_settings_default(&c2);
    c2.max_dial_data = 0;
    c2.min_dial_data = 0;
    assert_int_equal(flare_autonat2_server_init(&s2, &c2, NULL, flare_prng_rng(&p)),
                     FLARE_ERR_INVALID_ARG);
    flare_autonat2_server_settings_default(&c2);
    c2.period = 0;
    assert_int_equal(flare_autonat2_server_init(&s2, &c2, NULL, flare_prng_rng(&p)),
                     FLARE_ERR_INVALID_ARG);
    flare_autonat2_server_settings_default(&c2);
    c2.global_limit = c2.per_peer_limit = c2.dial_data_limit = 0;
    c2.min_dial_data = 0;
    assert_int_equal(flare_autonat2_server_init(&s2, &c2, NULL, flare_prng_rng(&p)), 0);
    flare_autonat2_server_free(&s2);
}

static void test_dcutr(void **state)
{
    (void)state;
    flare_dcutr_initiator b;
    flare_dcutr_responder a;
    flare_dcutr_settings s = {0};
    assert_int_equal(flare_dcutr_initiator_init(&b, &s, NULL), FLARE_ERR_INVALID_ARG);
    assert_int_equal(flare_dcutr_responder_init(&a, &s, NULL), FLARE_ERR_INVALID_ARG);
    flare_dcutr_settings_default(&s);
    s.dial_timeout = 0;
    assert_int_equal(flare_dcutr_initiator_init(&b, &s, NULL), FLARE_ERR_INVALID_ARG);
    flare_dcutr_settings_default(&s);
    s.max_attempts = 0;
    assert_int_equal(flare_dcutr_responder_init(&a, &s, NULL), FLARE_ERR_INVALID_ARG);
    flare_dcutr_settings_default(&s);
    assert_true(s.retry_backoff == 0); /* the default: retry at once */
    assert_int_equal(flare_dcutr_initiator_init(&b, &s, NULL), 0);
    flare_dcutr_initiator_free(&b);

    flare_multiaddr in[] = {flare_test_ma("/ip4/1.2.3.4/tcp/4001"),
                            flare_test_ma("/ip4/5.6.7.8/tcp/4001")};
    flare_multiaddr out[4];
    flare_dcutr_addr_settings o = {0};
    assert_int_equal(flare_dcutr_select_addrs(in, 2, NULL, 0, &o, out, 4), FLARE_ERR_INVALID_ARG);
    assert_int_equal(flare_dcutr_dial_addrs(in, 2, &o, out, 4), FLARE_ERR_INVALID_ARG);
    assert_int_equal(flare_dcutr_addr_usable(&in[0], &o), 0);
    flare_dcutr_addr_settings_default(&o);
    assert_int_equal(flare_dcutr_addr_usable(&in[0], &o), 1);
    assert_int_equal(flare_dcutr_select_addrs(in, 2, NULL, 0, &o, out, 4), 2);
    o.max = 0; /* offer nothing */
    assert_int_equal(flare_dcutr_select_addrs(in, 2, NULL, 0, &o, out, 4), 0);
    o.max_dials = 0; /* dial nothing */
    assert_int_equal(flare_dcutr_dial_addrs(in, 2, &o, out, 4), 0);
}

static void test_reachability(void **state)
{
    (void)state;
    flare_reachability r;
    flare_reachability_settings s = {0};
    assert_int_equal(flare_reachability_init(&r, &s, NULL, 0), FLARE_ERR_INVALID_ARG);
    flare_reachability_settings_default(&s);
    s.retry_interval = 0;
    assert_int_equal(flare_reachability_init(&r, &s, NULL, 0), FLARE_ERR_INVALID_ARG);
    flare_reachability_settings_default(&s);
    s.confidence = 0;
    assert_int_equal(flare_reachability_init(&r, &s, NULL, 0), FLARE_ERR_INVALID_ARG);
    /* A boot delay of 0 is "probe at once", not 15 s. */
    flare_reachability_settings_default(&s);
    s.boot_delay = 0;
    assert_int_equal(flare_reachability_init(&r, &s, NULL, 100 * S), 0);
    assert_true(flare_reachability_expiry(&r) == 100 * S);
    flare_reachability_free(&r);
    assert_int_equal(flare_reachability_init(&r, NULL, NULL, 100 * S), 0);
    assert_true(flare_reachability_expiry(&r) == 115 * S);
    flare_reachability_free(&r);
}

static void test_relay_server(void **state)
{
    (void)state;
    flare_privkey k;
    uint8_t seed[32] = {9};
    assert_int_equal(flare_privkey_from_seed(&k, seed), 0);
    flare_prng p;
    flare_prng_seed(&p, 1);
    flare_relay_server *srv = NULL;
    flare_relay_server_settings s = {0};
    s.key = &k;
    assert_int_equal(flare_relay_server_new(&srv, &s, NULL, flare_prng_rng(&p)),
                     FLARE_ERR_INVALID_ARG);
    flare_relay_server_settings_default(&s);
    s.key = &k;
    s.reservation_ttl = 0;
    assert_int_equal(flare_relay_server_new(&srv, &s, NULL, flare_prng_rng(&p)),
                     FLARE_ERR_INVALID_ARG);
    flare_relay_server_settings_default(&s);
    s.key = &k;
    s.buffer_size = 0;
    assert_int_equal(flare_relay_server_new(&srv, &s, NULL, flare_prng_rng(&p)),
                     FLARE_ERR_INVALID_ARG);
    assert_null(srv);
    /* Zero limits are real values and are kept as they are. */
    flare_relay_server_settings_default(&s);
    s.key = &k;
    s.max_circuits = 0;
    s.limit_data = 0;
    assert_int_equal(flare_relay_server_new(&srv, &s, NULL, flare_prng_rng(&p)), 0);
    const flare_relay_server_settings *in_use = flare_relay_server_get_settings(srv);
    assert_int_equal(in_use->max_circuits, 0);
    assert_true(in_use->limit_data == 0);
    assert_int_equal(in_use->max_reservations, FLARE_RELAY_DEFAULT_MAX_RESERVATIONS);
    flare_relay_server_del(srv);
}

static void test_noise_yamux(void **state)
{
    (void)state;
    flare_privkey k;
    uint8_t seed[32] = {9};
    assert_int_equal(flare_privkey_from_seed(&k, seed), 0);
    flare_prng p;
    flare_prng_seed(&p, 1);
    flare_noise n;
    flare_noise_settings ns = {0};
    ns.identity = &k;
    assert_int_equal(flare_noise_init(&n, &ns, NULL, flare_prng_rng(&p)), FLARE_ERR_INVALID_ARG);
    flare_noise_settings_default(&ns);
    ns.identity = &k;
    assert_int_equal(flare_noise_init(&n, &ns, NULL, flare_prng_rng(&p)), 0);
    flare_noise_free(&n);

    flare_yamux *y = NULL;
    flare_yamux_settings ys = {0};
    assert_int_equal(flare_yamux_new(&y, &ys, NULL, flare_prng_rng(&p), 0), FLARE_ERR_INVALID_ARG);
    flare_yamux_settings_default(&ys);
    ys.struct_size--; /* another build's headers */
    assert_int_equal(flare_yamux_new(&y, &ys, NULL, flare_prng_rng(&p), 0), FLARE_ERR_INVALID_ARG);
    flare_yamux_settings_default(&ys);
    assert_int_equal(flare_yamux_new(&y, &ys, NULL, flare_prng_rng(&p), 0), 0);
    flare_yamux_del(y);
}

static void test_sim_world(void **state)
{
    (void)state;
    flare_sim_world w;
    flare_sim_world_settings s = {0};
    assert_int_equal(flare_sim_world_build(&w, &s), FLARE_ERR_INVALID_ARG);
    flare_sim_world_free(&w);
    flare_sim_world_settings_default(&s);
    s.delay_a = s.delay_b = s.delay_r = 0; /* zero delay, not the 25 ms default */
    assert_int_equal(flare_sim_world_setup(&w, &s), 0);
    /* Reserving and dialing through R with no link delay took no time. */
    assert_true(w.relayed_up - w.dial_started < 50 * FLARE_NS_PER_MS);
    flare_sim_world_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addrmgr),      cmocka_unit_test(test_autonat_servers),
        cmocka_unit_test(test_dcutr),        cmocka_unit_test(test_reachability),
        cmocka_unit_test(test_relay_server), cmocka_unit_test(test_noise_yamux),
        cmocka_unit_test(test_sim_world),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
