/* DHT bootstrap on the simulator: a bootstrap round that fails is retried
 * after a short back-off (a bootstrap peer that was down a moment is
 * joined within seconds, not after a flat 30 s), and every configured
 * bootstrap peer is probed, however many probes are already out. */
#include <stdlib.h>

#include "support/test.h"

#include "flare/host.h"
#include "flare/kad.h"
#include "flare/sim.h"
#include "support/helpers.h"
#include "support/kad_world.h"

#define S     FLARE_NS_PER_S
#define NBOOT 12

typedef struct world {
    flare_sim *sim;
    flare_test_kad_node boot[NBOOT], joiner;
} world;

/* Node n at 11.0.(i+1).1 with key seed i, listening on 4001 if listen. */
static void make(world *w, flare_test_kad_node *n, int i, int listen)
{
    flare_host_settings c;
    flare_test_kad_host_settings(&c);
    c.enable_holepunch = 0;
    char ip[32];
    snprintf(ip, sizeof(ip), "11.0.%d.1", i + 1);
    flare_test_host_spec sp = {.name = "n",
                               .lan = flare_sim_internet(w->sim),
                               .ip = ip,
                               .seed = {(uint8_t)(i + 1), 0x6b},
                               .link = {.delay = 10 * FLARE_NS_PER_MS},
                               .cfg = &c,
                               .listen_port = listen ? 4001 : 0};
    assert_int_equal(flare_test_host_make(w->sim, &sp, &n->sh, &n->h), 0);
    snprintf(n->ip, sizeof(n->ip), "%s", ip);
    flare_kad_settings ks;
    flare_test_kad_settings(&ks, FLARE_KAD_MODE_SERVER);
    assert_int_equal(flare_kad_enable(n->h, &ks), 0);
}

static void boot_listen(world *w, int i)
{
    flare_multiaddr ma;
    assert_int_equal(flare_test_tcp_addr(&ma, w->boot[i].ip, 4001, NULL), 0);
    assert_int_equal(flare_host_listen(w->boot[i].h, &ma), 0);
}

/* The joiner at 11.0.100.1, bootstrapping from the first nboot boot nodes. */
static void make_joiner(world *w, int nboot)
{
    flare_host_settings c;
    flare_test_kad_host_settings(&c);
    c.enable_holepunch = 0;
    flare_test_host_spec sp = {.name = "j",
                               .lan = flare_sim_internet(w->sim),
                               .ip = "11.0.100.1",
                               .seed = {0x4a, 0x6b},
                               .cfg = &c};
    flare_test_kad_node_make(w->sim, &w->joiner, &sp);
    flare_multiaddr addrs[NBOOT];
    for (int b = 0; b < nboot; b++)
        flare_test_kad_addr(&addrs[b], &w->boot[b]);
    flare_kad_settings ks;
    flare_test_kad_settings(&ks, FLARE_KAD_MODE_SERVER);
    ks.bootstrap = addrs;
    ks.nbootstrap = (size_t)nboot;
    assert_int_equal(flare_kad_enable(w->joiner.h, &ks), 0);
}

/* Simulated seconds until the joiner's table holds a peer (limit: none). */
static double joined_after(world *w, double limit)
{
    flare_tstamp t0 = flare_sim_now(w->sim);
    while (!flare_kad_routing_table_size(w->joiner.h)) {
        if (flare_sim_now(w->sim) - t0 > (flare_tstamp)(limit * 1e9))
            return -1;
        flare_test_kad_run_s(w->sim, 0.1);
    }
    return (double)(flare_sim_now(w->sim) - t0) / 1e9;
}

static void world_free(world *w, int nboot)
{
    flare_host_del(w->joiner.h);
    for (int i = 0; i < nboot; i++)
        flare_host_del(w->boot[i].h);
    flare_sim_del(w->sim);
}

/* The only bootstrap peer refuses the first round (it is not listening
 * yet): the joiner comes back within a couple of seconds. */
static void test_refused_then_soon(void **state)
{
    (void)state;
    world w = {0};
    w.sim = flare_sim_new(11, NULL);
    make(&w, &w.boot[0], 0, 0);
    make_joiner(&w, 1);
    flare_test_kad_run_s(w.sim, 1);
    assert_int_equal(flare_kad_routing_table_size(w.joiner.h), 0); /* refused */
    boot_listen(&w, 0);
    double t = joined_after(&w, 20);
    print_message("joined %.1f s after the bootstrap peer came up\n", t);
    assert_true(t >= 0 && t <= 3);
    world_free(&w, 1);
}

/* Down for 40 s: the back-off grows (a handful of rounds, not one a
 * second) but stays at most 30 s, so the joiner is in within 30 s of it
 * coming up. */
static void test_backoff_capped(void **state)
{
    (void)state;
    world w = {0};
    w.sim = flare_sim_new(12, NULL);
    make(&w, &w.boot[0], 0, 0);
    make_joiner(&w, 1);
    flare_test_kad_run_s(w.sim, 40);
    assert_int_equal(flare_kad_routing_table_size(w.joiner.h), 0);
    boot_listen(&w, 0);
    double t = joined_after(&w, 40);
    print_message("joined %.1f s after the bootstrap peer came up\n", t);
    assert_true(t >= 0 && t <= 31);
    world_free(&w, 1);
}

/* Twelve bootstrap peers, more than the probes allowed at a time for
 * peers met through identify; only the last one is up: it is asked in the
 * first round. */
static void test_every_boot_peer_tried(void **state)
{
    (void)state;
    world w = {0};
    w.sim = flare_sim_new(13, NULL);
    for (int i = 0; i < NBOOT; i++)
        make(&w, &w.boot[i], i, i == NBOOT - 1);
    make_joiner(&w, NBOOT);
    double t = joined_after(&w, 20);
    print_message("joined after %.1f s\n", t);
    assert_true(t >= 0 && t <= 1);
    world_free(&w, NBOOT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refused_then_soon),
        cmocka_unit_test(test_backoff_capped),
        cmocka_unit_test(test_every_boot_peer_tried),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
