/* AutoNAT over QUIC on the simulator: three public servers and a client, all
 * listening on QUIC only. The servers dial the client's QUIC address back
 * (from a port other than their listen port): a public client is judged
 * public, one behind a cone NAT (APD filtering) private. */
#include "support/test.h"

#include "flare/autonat.h"
#include "flare/host.h"
#include "flare/sim.h"
#include "flare/sim_world.h"
#include "support/helpers.h"

#define MS FLARE_NS_PER_MS
#define S  FLARE_NS_PER_S

static flare_host *qhost(flare_sim *sim, flare_sim_lan *lan, const char *ip, uint8_t seed)
{
    flare_sim_host *sh;
    flare_host *h;
    char name[16];
    snprintf(name, sizeof(name), "h%u", seed);
    flare_test_host_spec sp = {
        .name = name, .lan = lan, .ip = ip, .link = {.delay = 5 * MS}, .seed = {seed, 0x51}};
    assert_int_equal(flare_test_host_make(sim, &sp, &sh, &h), 0);
    char s[96];
    snprintf(s, sizeof(s), "/ip4/%s/udp/4001/quic-v1", ip);
    flare_multiaddr ma;
    assert_int_equal(flare_multiaddr_parse(&ma, s), 0);
    assert_int_equal(flare_host_listen(h, &ma), 0);
    return h;
}

static void verdict(int behind_nat, flare_reach_state want)
{
    flare_sim *sim = flare_sim_new(31 + (uint64_t)behind_nat, NULL);
    flare_host *srv[3];
    for (int i = 0; i < 3; i++) {
        char ip[32];
        snprintf(ip, sizeof(ip), "198.51.100.%d", i + 1);
        srv[i] = qhost(sim, flare_sim_internet(sim), ip, (uint8_t)(i + 1));
    }
    flare_host *c;
    if (behind_nat) {
        flare_sim_lan *lan = flare_sim_lan_new(sim, "lan");
        assert_non_null(flare_sim_nat_new(sim, "nat", flare_sim_internet(sim), "203.0.113.1", lan,
                                          "10.0.0.1", NULL));
        c = qhost(sim, lan, "10.0.0.2", 9);
    } else {
        c = qhost(sim, flare_sim_internet(sim), "198.51.100.10", 9);
    }
    for (int i = 0; i < 3; i++) {
        char s[160];
        snprintf(s, sizeof(s), "/ip4/198.51.100.%d/udp/4001/quic-v1", i + 1);
        flare_multiaddr ma;
        assert_int_equal(flare_multiaddr_parse(&ma, s), 0);
        assert_int_equal(flare_multiaddr_with_peerid(&ma, flare_host_peerid(srv[i])), 0);
        assert_int_equal(flare_host_dial(c, &ma, NULL, NULL, NULL), 0);
    }
    flare_tstamp t0 = flare_sim_now(sim);
    while (flare_host_reachability(c, 4) == FLARE_REACH_UNKNOWN && flare_sim_now(sim) < t0 + 60 * S)
        flare_sim_run_for(sim, 100 * MS);
    assert_int_equal(flare_host_reachability(c, 4), want);
    /* The address judged is the QUIC one. */
    flare_multiaddr addrs[8];
    flare_reach_state st[8];
    size_t n = flare_host_reachability_addrs(c, addrs, st, 8);
    int found = 0;
    for (size_t i = 0; i < n; i++)
        found |= st[i] == want && flare_multiaddr_has(&addrs[i], FLARE_MA_QUIC_V1);
    assert_true(found);
    flare_host_del(c);
    for (int i = 0; i < 3; i++)
        flare_host_del(srv[i]);
    flare_sim_del(sim);
}

static void test_quic_public(void **state)
{
    verdict(0, FLARE_REACH_PUBLIC);
}

static void test_quic_behind_nat(void **state)
{
    verdict(1, FLARE_REACH_PRIVATE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quic_public),
        cmocka_unit_test(test_quic_behind_nat),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
