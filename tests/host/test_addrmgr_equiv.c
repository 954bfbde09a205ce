/* The address manager keeps its counts incrementally; it must behave
 * exactly as the previous implementation (addrmgr_ref.inc), which derived
 * everything from the observations again on every change. Random
 * operations (reports, changed reports, closes, expiry, evictions when
 * full, clocks going backwards, listen changes) on both, comparing every
 * output after each step. */
#include "support/test.h"

#include "flare/addrmgr.h"

/* The reference, under other names. */
typedef struct ref_addrmgr ref_addrmgr;
#define flare_addrmgr                    ref_addrmgr
#define flare_addrmgr_settings_default   ref_settings_default
#define flare_addrmgr_new                ref_new
#define flare_addrmgr_del                ref_del
#define flare_addrmgr_add_listen_addr    ref_add_listen_addr
#define flare_addrmgr_remove_listen_addr ref_remove_listen_addr
#define flare_addrmgr_observe            ref_observe
#define flare_addrmgr_conn_closed        ref_conn_closed
#define flare_addrmgr_external           ref_external
#define flare_addrmgr_entries            ref_entries
#define flare_addrmgr_nat_type           ref_nat_type
#define flare_nat_type_name              ref_nat_type_name
#define flare_addrmgr_version            ref_version
#define flare_addrmgr_expiry             ref_expiry
#define flare_addrmgr_handle_expiry      ref_handle_expiry
#define flare_addrmgr_num_observations   ref_num_observations
#define flare_addrmgr_port_prediction    ref_port_prediction
void ref_del(ref_addrmgr *m);
flare_tstamp ref_expiry(const ref_addrmgr *m);
#include "addrmgr_ref.inc"
#undef flare_addrmgr
#undef flare_addrmgr_settings_default
#undef flare_addrmgr_new
#undef flare_addrmgr_del
#undef flare_addrmgr_add_listen_addr
#undef flare_addrmgr_remove_listen_addr
#undef flare_addrmgr_observe
#undef flare_addrmgr_conn_closed
#undef flare_addrmgr_external
#undef flare_addrmgr_entries
#undef flare_addrmgr_nat_type
#undef flare_nat_type_name
#undef flare_addrmgr_version
#undef flare_addrmgr_expiry
#undef flare_addrmgr_handle_expiry
#undef flare_addrmgr_num_observations
#undef flare_addrmgr_port_prediction

#define SEC FLARE_NS_PER_S

typedef struct pair {
    flare_addrmgr *a;
    ref_addrmgr *b;
} pair;

static uint32_t rnd_next(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(*s >> 33);
}

static void compare_entries(pair *p, flare_tstamp now)
{
    flare_addrmgr_entry ea[64], eb[64];
    int na = flare_addrmgr_entries(p->a, now, ea, 64), nb = ref_entries(p->b, now, eb, 64);
    assert_int_equal(na, nb);
    for (int i = 0; i < na; i++) {
        assert_true(flare_multiaddr_equal(&ea[i].addr, &eb[i].addr));
        assert_int_equal(ea[i].observers, eb[i].observers);
        assert_int_equal(ea[i].confirmed, eb[i].confirmed);
        assert_true(ea[i].last_seen == eb[i].last_seen);
    }
    for (int cands = 0; cands < 2; cands++) {
        flare_multiaddr xa[64], xb[64];
        int ka = flare_addrmgr_external(p->a, now, xa, 64, cands);
        int kb = ref_external(p->b, now, xb, 64, cands);
        assert_int_equal(ka, kb);
        for (int i = 0; i < ka; i++)
            assert_true(flare_multiaddr_equal(&xa[i], &xb[i]));
    }
}

static void compare_all(pair *p, flare_tstamp now)
{
    compare_entries(p, now);
    static const int fams[] = {4, 6}, protos[] = {0, FLARE_MA_TCP, FLARE_MA_UDP};
    for (int f = 0; f < 2; f++)
        for (int q = 0; q < 3; q++)
            assert_int_equal(flare_addrmgr_nat_type(p->a, now, fams[f], protos[q]),
                             ref_nat_type(p->b, now, fams[f], protos[q]));
    assert_true(flare_addrmgr_version(p->a) == ref_version(p->b));
    assert_true(flare_addrmgr_expiry(p->a) == ref_expiry(p->b));
    assert_int_equal(flare_addrmgr_num_observations(p->a), ref_num_observations(p->b));
    for (int q = 1; q < 3; q++) {
        flare_ipaddr la, lb;
        unsigned sa = 0, sb = 0, oa = 0, ob = 0;
        int proto = protos[q];
        int ra = flare_addrmgr_port_prediction(p->a, now, 4, proto, 8, &la, &sa, &oa);
        int rb = ref_port_prediction(p->b, now, 4, proto, 8, &lb, &sb, &ob);
        assert_int_equal(ra, rb);
        if (ra == 0) {
            assert_true(flare_ipaddr_equal(&la, &lb));
            assert_int_equal(sa, sb);
            assert_int_equal(oa, ob);
        }
    }
}

/* Local sockets: listen sockets (TCP and UDP, on a private and a public
 * IP: reports of the public one can mean "no NAT"), ephemeral ports, IPv6. */
static const char *const locals[] = {
    "/ip4/192.168.1.5/tcp/4001",
    "/ip4/7.7.7.7/tcp/4001",
    "/ip4/192.168.1.5/udp/4001/quic-v1",
    "/ip4/192.168.1.5/tcp/50000",
    "/ip4/192.168.1.5/tcp/50001",
    "/ip4/192.168.1.5/udp/50002/quic-v1",
    "/ip4/7.7.7.7/tcp/50003",
    "/ip6/2001:db8::5/tcp/4001",
    "/ip4/192.168.1.6/tcp/4001",
};

/* What observers report, per transport of the local socket (TCP, UDP,
 * IPv6): a few mappings and the public local addresses themselves. A
 * report of another transport, or a private one, is refused. */
static const char *const seen[3][8] = {
    {"/ip4/1.2.3.4/tcp/4001", "/ip4/1.2.3.4/tcp/4002", "/ip4/5.6.7.8/tcp/4001",
     "/ip4/7.7.7.7/tcp/4001", "/ip4/7.7.7.7/tcp/50003", "/ip4/1.2.3.4/tcp/50000",
     "/ip4/1.2.3.4/tcp/50001", "/ip4/1.2.3.4/tcp/4003"},
    {"/ip4/1.2.3.4/udp/4001/quic-v1", "/ip4/1.2.3.4/udp/6001/quic-v1",
     "/ip4/5.6.7.8/udp/4001/quic-v1", "/ip4/1.2.3.4/udp/50002/quic-v1",
     "/ip4/1.2.3.4/udp/50003/quic-v1", "/ip4/10.0.0.1/udp/4001/quic-v1", "/ip4/1.2.3.4/tcp/4001",
     "/ip4/5.6.7.8/udp/4002/quic-v1"},
    {"/ip6/2001:db8::99/tcp/4001", "/ip6/2001:db8::5/tcp/4001", "/ip6/2001:db8::99/tcp/4002",
     "/ip6/2001:db8::98/tcp/4001", "/ip4/1.2.3.4/tcp/4001", "/ip6/2001:db8::99/tcp/4001",
     "/ip6/2001:db8::5/tcp/4001", "/ip6/2001:db8::99/tcp/4003"},
};

static int transport_of(size_t local)
{
    return local == 2 || local == 5 ? 1 : local == 7 ? 2 : 0;
}

static const char *const listens[] = {"/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1",
                                      "/ip6/::/tcp/4001", "/ip4/192.168.1.6/tcp/4001"};

static void run(uint64_t seed, size_t max_obs, unsigned thresh, uint8_t v4_bits, unsigned observers,
                unsigned steps)
{
    flare_addrmgr_settings s;
    flare_addrmgr_settings_default(&s);
    s.max_observations = max_obs;
    s.activation_threshold = thresh;
    s.v4_group_bits = v4_bits;
    s.ttl = 30 * SEC; /* short, so that closed observations expire */
    s.doc_is_public = 1;
    pair p;
    assert_int_equal(flare_addrmgr_new(&p.a, &s, NULL), 0);
    assert_int_equal(ref_new(&p.b, &s, NULL), 0);
    for (size_t i = 0; i < 3; i++) {
        flare_multiaddr l = flare_test_ma(listens[i]);
        assert_int_equal(flare_addrmgr_add_listen_addr(p.a, &l), ref_add_listen_addr(p.b, &l));
    }
    flare_tstamp now = 100 * SEC;
    for (unsigned step = 0; step < steps; step++) {
        uint32_t r = rnd_next(&seed);
        unsigned op = r % 100, who = (r >> 8) % observers;
        uint32_t r2 = rnd_next(&seed);
        /* Time: mostly small steps, sometimes past the ttl, rarely back. */
        unsigned dt = r2 % 16;
        if (dt < 10)
            now += dt * SEC / 4;
        else if (dt < 15)
            now += (flare_tstamp)(r2 >> 8) % (40 * SEC);
        else if (now > 10 * SEC)
            now -= (flare_tstamp)(r2 >> 8) % (5 * SEC);
        flare_peerid pid = flare_test_pid(who);
        /* Observers are grouped by IP: many share a /16 (and some an IP). */
        char oip[40];
        if (who % 7 == 6)
            snprintf(oip, sizeof(oip), "2001:db8:%u::1", who % 3);
        else
            snprintf(oip, sizeof(oip), "%u.%u.%u.1", 20 + who % 5, who % 3, who % 4);
        uint32_t r3 = rnd_next(&seed);
        /* Each observer mostly keeps to one socket and one address. */
        size_t li = (r3 % 4 == 0) ? (r3 >> 4) % 9 : who % 9;
        size_t si = (r3 % 8 == 1) ? (r3 >> 8) % 8 : (who + li) % 8;
        flare_multiaddr local = flare_test_ma(locals[li]);
        if (op < 70) {
            flare_ipaddr ip;
            assert_int_equal(flare_ipaddr_parse(&ip, oip), 0);
            flare_multiaddr o = flare_test_ma(seen[transport_of(li)][si]);
            int outbound = li >= 3 && li <= 6 ? 1 : (int)((r3 >> 12) & 1);
            int ra = flare_addrmgr_observe(p.a, &pid, &ip, &local, outbound, &o, now);
            int rb = ref_observe(p.b, &pid, &ip, &local, outbound, &o, now);
            assert_int_equal(ra, rb);
        } else if (op < 90) {
            const flare_multiaddr *l = (r3 >> 12) % 4 == 0 ? NULL : &local;
            assert_int_equal(flare_addrmgr_conn_closed(p.a, &pid, l, now),
                             ref_conn_closed(p.b, &pid, l, now));
        } else if (op < 95) {
            flare_addrmgr_handle_expiry(p.a, now);
            ref_handle_expiry(p.b, now);
        } else {
            flare_multiaddr l = flare_test_ma(listens[(r3 >> 12) % 4]);
            if ((r3 >> 16) & 1)
                assert_int_equal(flare_addrmgr_add_listen_addr(p.a, &l),
                                 ref_add_listen_addr(p.b, &l));
            else
                assert_int_equal(flare_addrmgr_remove_listen_addr(p.a, &l),
                                 ref_remove_listen_addr(p.b, &l));
        }
        compare_all(&p, now);
    }
    flare_addrmgr_del(p.a);
    ref_del(p.b);
}

static void test_small_full(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 12; seed++)
        run(seed, 4 + seed % 9, 1 + (unsigned)(seed % 3), seed % 2 ? 16 : 32, 24, 1500);
}

static void test_many_observers(void **state)
{
    (void)state;
    for (uint64_t seed = 100; seed < 104; seed++)
        run(seed, 256, 2 + (unsigned)(seed % 3), seed % 2 ? 8 : 32, 300, 3000);
}

static void test_default_bound(void **state)
{
    (void)state;
    run(7, 256, 2, 16, 60, 2000);
    run(8, 64, 4, 0, 120, 2000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_full),
        cmocka_unit_test(test_many_observers),
        cmocka_unit_test(test_default_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
