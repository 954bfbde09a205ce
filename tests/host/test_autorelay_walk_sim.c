/* AutoRelay's relay choice at scale on the simulator: 40 public DHT servers
 * (a quarter of them relays, the bootstrap node among them) and 20 private
 * nodes behind NATs, told only of the bootstrap node, so every one of them
 * is connected to that relay. They reserve on relays the DHT's random walks
 * returned, a uniform sample of the relays, so the bootstrap relay holds
 * about its share of the reservations, not those of every node that met it. */
#include <stdlib.h>

#include "support/test.h"

#include "flare/host.h"
#include "flare/kad.h"
#include "flare/relay_server.h"
#include "flare/sim.h"
#include "support/helpers.h"

#define MS    FLARE_NS_PER_MS
#define S     FLARE_NS_PER_S
#define NPUB  40
#define NPRIV 20
#define NALL  (NPUB + NPRIV)

typedef struct world {
    flare_sim *sim;
    flare_host *h[NALL];
    char ip[NALL][32];
} world;

static int is_relay(int i)
{
    return i < NPUB && i % 3 == 0;
}

static void make_node(world *w, int i, flare_sim_lan *lan, const char *ip)
{
    int priv = i >= NPUB;
    flare_host_settings c;
    flare_test_settings_default(&c);
    c.autonat_boot_delay = 2 * S;
    c.enable_autorelay = priv;
    flare_sim_host *sh;
    flare_test_host_spec sp = {.name = priv ? "priv" : "pub",
                               .lan = lan,
                               .ip = ip,
                               .link = {.delay = 10 * MS},
                               .seed = {(uint8_t)(i + 1), 0x5a},
                               .cfg = &c,
                               .listen_port = 4001};
    assert_int_equal(flare_test_host_make(w->sim, &sp, &sh, &w->h[i]), 0);
    snprintf(w->ip[i], sizeof(w->ip[i]), "%s", ip);
    if (is_relay(i))
        assert_int_equal(flare_host_enable_relay_server(w->h[i], NULL), 0);
    flare_kad_settings ks;
    flare_kad_settings_default(&ks);
    ks.mode = priv ? FLARE_KAD_MODE_AUTO : FLARE_KAD_MODE_SERVER;
    ks.k = 8; /* lookups meet a few peers each, as in a large network */
    ks.request_timeout = 5 * S;
    flare_multiaddr boot[1];
    if (i) {
        assert_int_equal(flare_test_tcp_addr(&boot[0], w->ip[0], 4001, flare_host_peerid(w->h[0])),
                         0);
        ks.bootstrap = boot;
        ks.nbootstrap = 1;
    }
    assert_int_equal(flare_kad_enable(w->h[i], &ks), 0);
}

static void test_bootstrap_relay_not_favoured(void **state)
{
    (void)state;
    world *w = calloc(1, sizeof(*w));
    w->sim = flare_sim_new(23, NULL);
    flare_sim_lan *inet = flare_sim_internet(w->sim);
    for (int i = 0; i < NPUB; i++) {
        char ip[32];
        snprintf(ip, sizeof(ip), "11.2.%d.1", i + 1);
        make_node(w, i, inet, ip);
        flare_sim_run_for(w->sim, 200 * MS);
    }
    for (int i = NPUB; i < NALL; i++) {
        char name[16], out[32];
        snprintf(name, sizeof(name), "lan%d", i);
        snprintf(out, sizeof(out), "12.2.%d.1", i);
        flare_sim_lan *lan = flare_sim_lan_new(w->sim, name);
        assert_non_null(flare_sim_nat_new(w->sim, name, inet, out, lan, "10.0.0.1", NULL));
        make_node(w, i, lan, "10.0.0.2");
    }
    flare_sim_run_for(w->sim, 90 * S);

    size_t total = 0, nrelays = 0;
    for (int i = 0; i < NPUB; i++) {
        if (!is_relay(i))
            continue;
        total += flare_host_relay_num_reservations(w->h[i]);
        nrelays++;
    }
    size_t boot = flare_host_relay_num_reservations(w->h[0]);
    if (getenv("AUTORELAY_TRACE"))
        fprintf(stderr, "bootstrap relay %zu of %zu reservations on %zu relays\n", boot, total,
                nrelays);
    for (int i = NPUB; i < NALL; i++) {
        flare_peerid relays[4];
        assert_int_equal(flare_host_reachability(w->h[i], 4), FLARE_REACH_PRIVATE);
        assert_true(flare_host_autorelay_relays(w->h[i], relays, 4) >= 1);
        assert_non_null(flare_host_conn_to(w->h[i], flare_host_peerid(w->h[0])));
    }
    assert_true(total >= NPRIV);
    /* A uniform choice gives it its share, total / nrelays (under 3); every
     * node that met it choosing among the few relays it met gave it 12. */
    assert_true(boot * nrelays <= 2 * total);

    for (int i = 0; i < NALL; i++)
        flare_host_del(w->h[i]);
    flare_sim_del(w->sim);
    free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bootstrap_relay_not_favoured),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
