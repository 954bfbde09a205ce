/* AutoNAT over WebSocket on the simulator: three public servers and a
 * client, all listening on /tcp/4001/ws only. The servers dial the
 * client's /ws address back over a new WebSocket connection: a public
 * client is judged public for its /ws address; one behind a NAT (its ws
 * dials leave from its listen port, so the mapped /ws address becomes a
 * candidate) private. */
#include "support/test.h"

#include "flare/autonat.h"
#include "flare/host.h"
#include "flare/sim.h"
#include "flare/sim_world.h"
#include "support/helpers.h"

#define MS FLARE_NS_PER_MS
#define S  FLARE_NS_PER_S

static flare_host *whost(flare_sim *sim, flare_sim_lan *lan, const char *ip, uint8_t seed)
{
    flare_sim_host *sh;
    flare_host *h;
    char name[16];
    snprintf(name, sizeof(name), "h%u", seed);
    flare_test_host_spec sp = {
        .name = name, .lan = lan, .ip = ip, .link = {.delay = 5 * MS}, .seed = {seed, 0x51}};
    assert_int_equal(flare_test_host_make(sim, &sp, &sh, &h), 0);
    char s[96];
    snprintf(s, sizeof(s), "/ip4/%s/tcp/4001/ws", ip);
    flare_multiaddr ma;
    assert_int_equal(flare_multiaddr_parse(&ma, s), 0);
    assert_int_equal(flare_host_listen(h, &ma), 0);
    return h;
}

static void verdict(int behind_nat, flare_reach_state want)
{
    flare_sim *sim = flare_sim_new(41 + (uint64_t)behind_nat, NULL);
    flare_host *srv[3];
    for (int i = 0; i < 3; i++) {
        char ip[32];
        snprintf(ip, sizeof(ip), "198.51.100.%d", i + 1);
        srv[i] = whost(sim, flare_sim_internet(sim), ip, (uint8_t)(i + 1));
    }
    flare_host *c;
    if (behind_nat) {
        flare_sim_lan *lan = flare_sim_lan_new(sim, "lan");
        assert_non_null(flare_sim_nat_new(sim, "nat", flare_sim_internet(sim), "203.0.113.1", lan,
                                          "10.0.0.1", NULL));
        c = whost(sim, lan, "10.0.0.2", 9);
    } else {
        c = whost(sim, flare_sim_internet(sim), "198.51.100.10", 9);
    }
    for (int i = 0; i < 3; i++) {
        char s[160];
        snprintf(s, sizeof(s), "/ip4/198.51.100.%d/tcp/4001/ws", i + 1);
        flare_multiaddr ma;
        assert_int_equal(flare_multiaddr_parse(&ma, s), 0);
        assert_int_equal(flare_multiaddr_with_peerid(&ma, flare_host_peerid(srv[i])), 0);
        assert_int_equal(flare_host_dial(c, &ma, NULL, NULL, NULL), 0);
    }
    flare_tstamp t0 = flare_sim_now(sim);
    while (flare_host_reachability(c, 4) == FLARE_REACH_UNKNOWN && flare_sim_now(sim) < t0 + 60 * S)
        flare_sim_run_for(sim, 100 * MS);
    assert_int_equal(flare_host_reachability(c, 4), want);
    /* The address judged is the /ws one. */
    flare_multiaddr addrs[8];
    flare_reach_state st[8];
    size_t n = flare_host_reachability_addrs(c, addrs, st, 8);
    int found = 0;
    for (size_t i = 0; i < n; i++)
        found |= st[i] == want && flare_multiaddr_has(&addrs[i], FLARE_MA_WS);
    assert_true(found);
    flare_host_del(c);
    for (int i = 0; i < 3; i++)
        flare_host_del(srv[i]);
    flare_sim_del(sim);
}

static void test_ws_public(void **state)
{
    verdict(0, FLARE_REACH_PUBLIC);
}

static void test_ws_behind_nat(void **state)
{
    verdict(1, FLARE_REACH_PRIVATE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ws_public),
        cmocka_unit_test(test_ws_behind_nat),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
