/* AutoNAT per transport on the simulator: three public servers and a
 * client, all listening on one transport only (QUIC, or WebSocket). The
 * servers dial the client's address back over a new connection of that
 * transport: a public client is judged public for that address; one behind
 * a NAT (its dials leave from its listen port, so the mapped address
 * becomes a candidate) private. */
#include "support/test.h"

#include "flare/autonat.h"
#include "flare/host.h"
#include "flare/sim.h"
#include "flare/sim_world.h"
#include "support/helpers.h"

#define MS FLARE_NS_PER_MS
#define S  FLARE_NS_PER_S

/* One AutoNAT world per transport: its listen suffix, the multiaddr
 * protocol that marks it and the simulator seed of the existing runs. */
typedef struct transport {
    const char *suffix;
    uint32_t code;
    uint64_t seed;
} transport;

static const transport quic = {"udp/4001/quic-v1", FLARE_MA_QUIC_V1, 31};
static const transport ws = {"tcp/4001/ws", FLARE_MA_WS, 41};

static flare_host *thost(const transport *t, flare_sim *sim, flare_sim_lan *lan, const char *ip,
                         uint8_t seed)
{
    flare_sim_host *sh;
    flare_host *h;
    char name[16];
    snprintf(name, sizeof(name), "h%u", seed);
    flare_test_host_spec sp = {
        .name = name, .lan = lan, .ip = ip, .link = {.delay = 5 * MS}, .seed = {seed, 0x51}};
    assert_int_equal(flare_test_host_make(sim, &sp, &sh, &h), 0);
    char s[96];
    snprintf(s, sizeof(s), "/ip4/%s/%s", ip, t->suffix);
    flare_multiaddr ma;
    assert_int_equal(flare_multiaddr_parse(&ma, s), 0);
    assert_int_equal(flare_host_listen(h, &ma), 0);
    return h;
}

static void verdict(const transport *t, int behind_nat, flare_reach_state want)
{
    flare_sim *sim = flare_sim_new(t->seed + (uint64_t)behind_nat, NULL);
    flare_host *srv[3];
    for (int i = 0; i < 3; i++) {
        char ip[32];
        snprintf(ip, sizeof(ip), "198.51.100.%d", i + 1);
        srv[i] = thost(t, sim, flare_sim_internet(sim), ip, (uint8_t)(i + 1));
    }
    flare_host *c;
    if (behind_nat) {
        flare_sim_lan *lan = flare_sim_lan_new(sim, "lan");
        assert_non_null(flare_sim_nat_new(sim, "nat", flare_sim_internet(sim), "203.0.113.1", lan,
                                          "10.0.0.1", NULL));
        c = thost(t, sim, lan, "10.0.0.2", 9);
    } else {
        c = thost(t, sim, flare_sim_internet(sim), "198.51.100.10", 9);
    }
    for (int i = 0; i < 3; i++) {
        char s[160];
        snprintf(s, sizeof(s), "/ip4/198.51.100.%d/%s", i + 1, t->suffix);
        flare_multiaddr ma;
        assert_int_equal(flare_multiaddr_parse(&ma, s), 0);
        assert_int_equal(flare_multiaddr_with_peerid(&ma, flare_host_peerid(srv[i])), 0);
        assert_int_equal(flare_host_dial(c, &ma, NULL, NULL, NULL), 0);
    }
    flare_tstamp t0 = flare_sim_now(sim);
    while (flare_host_reachability(c, 4) == FLARE_REACH_UNKNOWN && flare_sim_now(sim) < t0 + 60 * S)
        flare_sim_run_for(sim, 100 * MS);
    assert_int_equal(flare_host_reachability(c, 4), want);
    /* The address judged is the transport's own. */
    flare_multiaddr addrs[8];
    flare_reach_state st[8];
    size_t n = flare_host_reachability_addrs(c, addrs, st, 8);
    int found = 0;
    for (size_t i = 0; i < n; i++)
        found |= st[i] == want && flare_multiaddr_has(&addrs[i], t->code);
    assert_true(found);
    flare_host_del(c);
    for (int i = 0; i < 3; i++)
        flare_host_del(srv[i]);
    flare_sim_del(sim);
}

static void test_quic_public(void **state)
{
    verdict(&quic, 0, FLARE_REACH_PUBLIC);
}

static void test_quic_behind_nat(void **state)
{
    verdict(&quic, 1, FLARE_REACH_PRIVATE);
}

static void test_ws_public(void **state)
{
    verdict(&ws, 0, FLARE_REACH_PUBLIC);
}

static void test_ws_behind_nat(void **state)
{
    verdict(&ws, 1, FLARE_REACH_PRIVATE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quic_public),
        cmocka_unit_test(test_quic_behind_nat),
        cmocka_unit_test(test_ws_public),
        cmocka_unit_test(test_ws_behind_nat),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
