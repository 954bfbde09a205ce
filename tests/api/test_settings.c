/* One settings convention for every public settings struct: a zeroed
 * struct (no struct_size, as from `= {0}` or another build's headers) is
 * refused with FLARE_ERR_INVALID_ARG rather than taken as the defaults; a
 * struct from flare_X_settings_default() is accepted; a zero field means
 * zero, or is refused where zero makes no sense. */
#include "support/test.h"

#include "flare/addrmgr.h"
#include "flare/autonat.h"
#include "flare/dcutr.h"
#include "flare/hardpunch.h"
#include "flare/host.h"
#include "flare/noise.h"
#include "flare/portmap.h"
#include "flare/reachability.h"
#include "flare/relay_server.h"
#include "flare/sim.h"
#include "flare/sim_world.h"
#include "flare/yamux.h"

#define S FLARE_NS_PER_S

/* Each constructor, run on settings c and undone on success. Returns its
 * result. */
static flare_prng prng;
static flare_privkey key;

static int an1(flare_autonat1_server_settings *c)
{
    flare_autonat1_server s;
    int rv = flare_autonat1_server_init(&s, c, NULL);
    if (rv == 0)
        flare_autonat1_server_free(&s);
    return rv;
}

static int an2(flare_autonat2_server_settings *c)
{
    flare_autonat2_server s;
    int rv = flare_autonat2_server_init(&s, c, NULL, flare_prng_rng(&prng));
    if (rv == 0)
        flare_autonat2_server_free(&s);
    return rv;
}

static int addrmgr(flare_addrmgr_settings *c)
{
    flare_addrmgr *m;
    int rv = flare_addrmgr_new(&m, c, NULL);
    if (rv == 0)
        flare_addrmgr_del(m);
    return rv;
}

static int hardpunch(flare_hardpunch_settings *c)
{
    flare_hardpunch hp;
    flare_hardpunch_info mine = {0};
    flare_buf out;
    flare_buf_init(&out, NULL);
    int rv = flare_hardpunch_init(&hp, 1, &mine, c, 0, &out);
    flare_buf_free(&out);
    return rv;
}

static int dcutr(flare_dcutr_settings *c)
{
    flare_dcutr_initiator b;
    flare_dcutr_responder a;
    int rv = flare_dcutr_initiator_init(&b, c, NULL);
    assert_int_equal(flare_dcutr_responder_init(&a, c, NULL), rv);
    if (rv == 0) {
        flare_dcutr_initiator_free(&b);
        flare_dcutr_responder_free(&a);
    }
    return rv;
}

static int relay(flare_relay_server_settings *c)
{
    flare_relay_server *s;
    c->key = &key;
    int rv = flare_relay_server_new(&s, c, NULL, flare_prng_rng(&prng));
    if (rv == 0)
        flare_relay_server_del(s);
    return rv;
}

static int portmap(flare_portmap_settings *c)
{
    flare_portmap_client cl;
    flare_ipaddr me, gw;
    flare_ipaddr_parse(&me, "192.168.1.2:4001");
    flare_ipaddr_parse(&gw, "192.168.1.1");
    return flare_portmap_client_init(&cl, c, 1, &me, &gw, flare_prng_rng(&prng));
}

/* A zeroed T is refused, T from T_default() accepted. */
#define ZEROED_REFUSED(T, make)                                                                    \
    do {                                                                                           \
        T c_ = {0};                                                                                \
        assert_int_equal(make(&c_), FLARE_ERR_INVALID_ARG);                                        \
        T##_default(&c_);                                                                          \
        assert_int_equal(c_.struct_size, sizeof(c_));                                              \
        assert_int_equal(make(&c_), 0);                                                            \
    } while (0)

/* T_default() with field set to 0: make gives want. */
#define ZERO_FIELD(T, make, field, want)                                                           \
    do {                                                                                           \
        T c_;                                                                                      \
        T##_default(&c_);                                                                          \
        c_.field = 0;                                                                              \
        assert_int_equal(make(&c_), want);                                                         \
    } while (0)

static int setup(void **state)
{
    (void)state;
    flare_prng_seed(&prng, 1);
    uint8_t seed[32] = {9};
    return flare_privkey_from_seed(&key, seed);
}

static void test_zeroed_refused(void **state)
{
    (void)state;
    ZEROED_REFUSED(flare_autonat1_server_settings, an1);
    ZEROED_REFUSED(flare_autonat2_server_settings, an2);
    ZEROED_REFUSED(flare_addrmgr_settings, addrmgr);
    ZEROED_REFUSED(flare_dcutr_settings, dcutr);
    ZEROED_REFUSED(flare_relay_server_settings, relay);
    ZEROED_REFUSED(flare_portmap_settings, portmap);
    ZEROED_REFUSED(flare_hardpunch_settings, hardpunch);
}

/* Where zero makes no sense it is refused, not replaced by a default. */
static void test_zero_refused(void **state)
{
    (void)state;
    const int bad = FLARE_ERR_INVALID_ARG;
    ZERO_FIELD(flare_autonat1_server_settings, an1, period, bad);
    ZERO_FIELD(flare_autonat1_server_settings, an1, max_dial_addrs, bad);
    ZERO_FIELD(flare_autonat2_server_settings, an2, period, bad);
    ZERO_FIELD(flare_autonat2_server_settings, an2, max_dial_data, bad);
    ZERO_FIELD(flare_addrmgr_settings, addrmgr, activation_threshold, bad);
    ZERO_FIELD(flare_addrmgr_settings, addrmgr, ttl, bad);
    ZERO_FIELD(flare_addrmgr_settings, addrmgr, max_observations, bad);
    ZERO_FIELD(flare_dcutr_settings, dcutr, dial_timeout, bad);
    ZERO_FIELD(flare_dcutr_settings, dcutr, stream_timeout, bad);
    ZERO_FIELD(flare_dcutr_settings, dcutr, max_attempts, bad);
    ZERO_FIELD(flare_relay_server_settings, relay, reservation_ttl, bad);
    ZERO_FIELD(flare_relay_server_settings, relay, buffer_size, bad);
    ZERO_FIELD(flare_relay_server_settings, relay, connect_timeout, bad);
    ZERO_FIELD(flare_portmap_settings, portmap, lifetime, bad);
    ZERO_FIELD(flare_portmap_settings, portmap, retry_initial, bad);
    ZERO_FIELD(flare_portmap_settings, portmap, attempts, bad);
    ZERO_FIELD(flare_portmap_settings, portmap, retry_interval, bad);
    ZERO_FIELD(flare_hardpunch_settings, hardpunch, tcp_sockets, bad);
    ZERO_FIELD(flare_hardpunch_settings, hardpunch, tcp_window, bad);
    ZERO_FIELD(flare_hardpunch_settings, hardpunch, timeout, bad);
    ZERO_FIELD(flare_hardpunch_settings, hardpunch, exchange, bad);
}

/* Where zero makes sense it is accepted as zero (the behaviour is checked
 * below and in each module's tests). */
static void test_zero_accepted(void **state)
{
    (void)state;
    ZERO_FIELD(flare_autonat1_server_settings, an1, global_limit, 0);
    ZERO_FIELD(flare_autonat1_server_settings, an1, per_peer_limit, 0);
    ZERO_FIELD(flare_autonat2_server_settings, an2, global_limit, 0);
    ZERO_FIELD(flare_autonat2_server_settings, an2, min_dial_data, 0);
    ZERO_FIELD(flare_addrmgr_settings, addrmgr, v4_group_bits, 0);
    ZERO_FIELD(flare_dcutr_settings, dcutr, retry_backoff, 0);
    ZERO_FIELD(flare_relay_server_settings, relay, max_reservations, 0);
    ZERO_FIELD(flare_relay_server_settings, relay, limit_data, 0);
    ZERO_FIELD(flare_portmap_settings, portmap, min_renew, 0);
    ZERO_FIELD(flare_portmap_settings, portmap, enable_pcp, 0);
    ZERO_FIELD(flare_portmap_settings, portmap, enable_upnp, 0);
}

/* A 0-bit observer prefix puts every observer in one group: two observers
 * from different networks count once. */
static void test_addrmgr_zero_bits(void **state)
{
    (void)state;
    flare_addrmgr *m = NULL;
    flare_addrmgr_settings s;
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

static void test_dcutr_addrs(void **state)
{
    (void)state;
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
    /* Zero limits are real values and are kept as they are. */
    flare_relay_server_settings s;
    flare_relay_server_settings_default(&s);
    s.key = &key;
    s.max_circuits = 0;
    s.limit_data = 0;
    flare_relay_server *srv = NULL;
    assert_int_equal(flare_relay_server_new(&srv, &s, NULL, flare_prng_rng(&prng)), 0);
    const flare_relay_server_settings *in_use = flare_relay_server_get_settings(srv);
    assert_int_equal(in_use->max_circuits, 0);
    assert_true(in_use->limit_data == 0);
    assert_int_equal(in_use->max_reservations, FLARE_RELAY_DEFAULT_MAX_RESERVATIONS);
    flare_relay_server_del(srv);
}

static void test_noise_yamux(void **state)
{
    (void)state;
    flare_noise n;
    flare_noise_settings ns = {0};
    ns.identity = &key;
    assert_int_equal(flare_noise_init(&n, &ns, NULL, flare_prng_rng(&prng)), FLARE_ERR_INVALID_ARG);
    flare_noise_settings_default(&ns);
    ns.identity = &key;
    assert_int_equal(flare_noise_init(&n, &ns, NULL, flare_prng_rng(&prng)), 0);
    flare_noise_free(&n);

    flare_yamux *y = NULL;
    flare_yamux_settings ys = {0};
    assert_int_equal(flare_yamux_new(&y, &ys, NULL, flare_prng_rng(&prng), 0),
                     FLARE_ERR_INVALID_ARG);
    flare_yamux_settings_default(&ys);
    ys.struct_size--; /* another build's headers */
    assert_int_equal(flare_yamux_new(&y, &ys, NULL, flare_prng_rng(&prng), 0),
                     FLARE_ERR_INVALID_ARG);
    flare_yamux_settings_default(&ys);
    assert_int_equal(flare_yamux_new(&y, &ys, NULL, flare_prng_rng(&prng), 0), 0);
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

/* sig_cache NULL (the default): the host makes one of its own; a given
 * one is used as it is (and stays the caller's). */
static void test_host_sig_cache(void **state)
{
    (void)state;
    flare_host_settings c;
    flare_host_settings_default(&c);
    assert_null(c.sig_cache);
    flare_sim *sim = flare_sim_new(1, NULL);
    assert_non_null(sim);
    flare_sim_host *sh = flare_sim_host_new(sim, "h");
    assert_non_null(sh);
    flare_host *h = NULL;
    assert_int_equal(flare_host_new(&h, flare_sim_host_io(sh), &key, &c, NULL), 0);
    flare_sig_cache_stats st;
    flare_sig_cache_stats_get(flare_host_sig_cache(h), &st);
    assert_int_equal(st.capacity, FLARE_SIG_CACHE_DEFAULT_ENTRIES);
    flare_host_del(h);
    assert_int_equal(flare_sig_cache_new(&c.sig_cache, 100, NULL), 0);
    assert_int_equal(flare_host_new(&h, flare_sim_host_io(sh), &key, &c, NULL), 0);
    assert_ptr_equal(flare_host_sig_cache(h), c.sig_cache);
    flare_host_del(h);
    flare_sig_cache_stats_get(c.sig_cache, &st); /* still alive: the caller's */
    assert_int_equal(st.capacity, 128);
    flare_sig_cache_del(c.sig_cache);
    flare_sim_del(sim);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zeroed_refused), cmocka_unit_test(test_zero_refused),
        cmocka_unit_test(test_zero_accepted),  cmocka_unit_test(test_addrmgr_zero_bits),
        cmocka_unit_test(test_dcutr_addrs),    cmocka_unit_test(test_reachability),
        cmocka_unit_test(test_relay_server),   cmocka_unit_test(test_noise_yamux),
        cmocka_unit_test(test_sim_world),      cmocka_unit_test(test_host_sig_cache),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
