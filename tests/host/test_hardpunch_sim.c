/* The hard-NAT punch on the simulator: an endpoint-independent NAT against
 * one that maps per destination, over TCP with port prediction. Each case
 * runs seeded trials and asserts the direct rate (deterministic: the seeds
 * fix every outcome). */
#include "support/test.h"

#include <string.h>

#include "flare/hardpunch.h"
#include "flare/sim_world.h"

#define MS FLARE_NS_PER_MS
#define S  FLARE_NS_PER_S

typedef struct extra {
    flare_sim_host *sh;
    flare_host *h;
} extra;

/* O: a second public host both A and B connect to, so each sees its
 * address observed by two observers (the NAT type and the port step). */
static void observer_make(flare_sim_world *w, extra *o)
{
    o->sh = flare_sim_host_new(w->sim, "O");
    assert_non_null(o->sh);
    assert_int_equal(flare_sim_host_add_addr(o->sh, flare_sim_internet(w->sim), "198.51.100.20"),
                     0);
    flare_sim_link_set(o->sh, &(flare_sim_link){.delay = 25 * MS});
    flare_privkey k;
    uint8_t seed[32] = {9};
    flare_host_settings hs;
    flare_host_settings_default(&hs);
    hs.doc_addrs_public = 1;
    assert_int_equal(flare_privkey_from_seed(&k, seed), 0);
    assert_int_equal(flare_host_new(&o->h, flare_sim_host_io(o->sh), &k, &hs, NULL), 0);
    flare_multiaddr ma;
    assert_int_equal(flare_multiaddr_parse(&ma, "/ip4/198.51.100.20/tcp/4001"), 0);
    assert_int_equal(flare_host_listen(o->h, &ma), 0);
}

static int hard_steps, hard_direct;

static void count_event(flare_host *h, const flare_host_event *ev, void *user)
{
    if (ev->type == FLARE_HOST_EV_HOLEPUNCH_STEP && ev->u.holepunch_step.step &&
        strncmp(ev->u.holepunch_step.step, "hard-", 5) == 0)
        hard_steps++, hard_direct += !strcmp(ev->u.holepunch_step.step, "hard-direct");
    if (getenv("HP_DEBUG") && ev->type == FLARE_HOST_EV_HOLEPUNCH_STEP)
        printf("%s %s %llu\n", ((flare_sim_world_node *)user)->name, ev->u.holepunch_step.step,
               (unsigned long long)ev->u.holepunch_step.value);
    flare_sim_world_on_event(h, ev, user);
}

/* One trial: A behind an EI/APD NAT, B behind `hard` (or the other way
 * round when swap). Returns 1 if A and B ended up directly connected. */
static int trial(uint64_t seed, const flare_sim_nat_config *hard, int swap, int enable_a,
                 int enable_b)
{
    flare_sim_world_settings p;
    flare_sim_world_settings_default(&p);
    p.seed = seed;
    flare_sim_nat_config easy;
    flare_sim_nat_config_default(&easy);
    easy.port_preservation = 0;
    p.nat_a = swap ? *hard : easy;
    p.nat_b = swap ? easy : *hard;
    flare_sim_world w;
    assert_int_equal(flare_sim_world_build(&w, &p), 0);
    flare_host_set_event_cb(w.a.h, count_event, &w.a);
    flare_host_set_event_cb(w.b.h, count_event, &w.b);
    if (enable_a)
        assert_int_equal(flare_host_enable_hardpunch(w.a.h, NULL), 0);
    if (enable_b)
        assert_int_equal(flare_host_enable_hardpunch(w.b.h, NULL), 0);
    extra o;
    observer_make(&w, &o);
    flare_multiaddr rma, oma;
    assert_int_equal(flare_sim_world_relay_addr(&w, &rma), 0);
    assert_int_equal(flare_multiaddr_parse(&oma, "/ip4/198.51.100.20/tcp/4001"), 0);
    assert_int_equal(flare_multiaddr_with_peerid(&oma, flare_host_peerid(o.h)), 0);
    assert_int_equal(flare_host_relay_reserve(w.b.h, &rma), 0);
    flare_host_dial(w.a.h, &rma, NULL, NULL, NULL);
    flare_host_dial(w.a.h, &oma, NULL, NULL, NULL);
    flare_host_dial(w.b.h, &oma, NULL, NULL, NULL);
    flare_sim_run_for(w.sim, 2 * S);
    assert_int_equal(w.b.rsv_ok, 1);
    assert_int_equal(flare_sim_world_dial_relayed(&w), 0);
    flare_sim_run_for(w.sim, 3 * S);
    flare_sim_world_run_punch(&w, 30 * S);
    int direct = flare_sim_world_direct(&w);
    flare_host_del(o.h);
    flare_sim_world_free(&w);
    return direct;
}

static void hard_cfg(flare_sim_nat_config *c, flare_sim_port_alloc alloc)
{
    flare_sim_nat_config_default(c);
    c->mapping = FLARE_SIM_APD;
    c->filtering = FLARE_SIM_APD;
    c->port_preservation = 0;
    c->port_alloc = alloc;
}

#define TRIALS 6

static void test_tcp_sequential(void **state)
{
    (void)state;
    flare_sim_nat_config hard;
    hard_cfg(&hard, FLARE_SIM_ALLOC_SEQUENTIAL);
    int direct = 0, plain = 0;
    hard_direct = 0;
    for (int i = 0; i < TRIALS; i++) {
        direct += trial(100 + (uint64_t)i, &hard, i & 1, 1, 1);
        plain += trial(100 + (uint64_t)i, &hard, i & 1, 0, 0);
    }
    printf("# EI vs APD sequential (TCP): %d/%d direct with the hard punch, %d/%d without\n",
           direct, TRIALS, plain, TRIALS);
    assert_int_equal(plain, 0);            /* DCUtR alone cannot */
    assert_true(hard_direct >= direct);    /* and the direct ones are the hard punch's */
    assert_true(direct * 4 >= TRIALS * 3); /* at least 75 % */
}

static void test_tcp_random_nothing_to_predict(void **state)
{
    (void)state;
    flare_sim_nat_config hard;
    hard_cfg(&hard, FLARE_SIM_ALLOC_RANDOM);
    int direct = 0;
    for (int i = 0; i < 2; i++)
        direct += trial(200 + (uint64_t)i, &hard, i & 1, 1, 1);
    assert_int_equal(direct, 0);
}

/* A peer without the protocol is never asked, and never dialed by it. */
static void test_not_offered(void **state)
{
    (void)state;
    flare_sim_nat_config hard;
    hard_cfg(&hard, FLARE_SIM_ALLOC_SEQUENTIAL);
    hard_steps = 0;
    assert_int_equal(trial(300, &hard, 0, 1, 0), 0);
    assert_int_equal(trial(301, &hard, 1, 0, 1), 0);
    assert_int_equal(hard_steps, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcp_sequential),
        cmocka_unit_test(test_tcp_random_nothing_to_predict),
        cmocka_unit_test(test_not_offered),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
