/* The hard-NAT punch on the simulator: an endpoint-independent NAT against
 * one that maps per destination, over TCP with port prediction. Each case
 * runs seeded trials and asserts the direct rate (deterministic: the seeds
 * fix every outcome). */
#include "support/test.h"

#include <string.h>

#include "flare/hardpunch.h"
#include "flare/sim_world.h"
#include "support/helpers.h"

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
static uint64_t last_start = 99; /* the last hard-start's value */
static const char *last_end;
static flare_tstamp tcp_took; /* relayed -> direct, summed over tcp_timed trials */
static int tcp_timed;

static void count_event(flare_host *h, const flare_host_event *ev, void *user)
{
    if (ev->type == FLARE_HOST_EV_HOLEPUNCH_STEP && ev->u.holepunch_step.step &&
        strncmp(ev->u.holepunch_step.step, "hard-", 5) == 0) {
        const char *st = ev->u.holepunch_step.step;
        hard_steps++, hard_direct += !strcmp(st, "hard-direct");
        if (!strcmp(st, "hard-start"))
            last_start = ev->u.holepunch_step.value;
        else
            last_end = !strcmp(st, "hard-none") ? "hard-none" : "other";
    }
    if (getenv("HP_DEBUG") && ev->type == FLARE_HOST_EV_HOLEPUNCH_STEP)
        printf("%s %s %llu\n", ((flare_sim_world_node *)user)->name, ev->u.holepunch_step.step,
               (unsigned long long)ev->u.holepunch_step.value);
    flare_sim_world_on_event(h, ev, user);
}

static void easy_cfg(flare_sim_nat_config *c)
{
    flare_sim_nat_config_default(c);
    c->port_preservation = 0;
}

/* One TCP trial: A behind na, B behind nb. Returns 1 if A and B ended up
 * directly connected. */
static int trial2(uint64_t seed, const flare_sim_nat_config *na, const flare_sim_nat_config *nb,
                  int enable_a, int enable_b)
{
    flare_sim_world_settings p;
    flare_sim_world_settings_default(&p);
    p.seed = seed;
    p.nat_a = *na;
    p.nat_b = *nb;
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
    if (direct && !w.b.punch_err)
        tcp_took += w.b.done_at - w.relayed_up, tcp_timed++;
    flare_host_del(o.h);
    flare_sim_world_free(&w);
    return direct;
}

/* A behind an EI/APD NAT, B behind `hard` (or the other way round). */
static int trial(uint64_t seed, const flare_sim_nat_config *hard, int swap, int enable_a,
                 int enable_b)
{
    flare_sim_nat_config easy;
    easy_cfg(&easy);
    return trial2(seed, swap ? hard : &easy, swap ? &easy : hard, enable_a, enable_b);
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
    tcp_took = 0;
    tcp_timed = 0;
    for (int i = 0; i < TRIALS; i++) {
        direct += trial(100 + (uint64_t)i, &hard, i & 1, 1, 1);
        plain += trial(100 + (uint64_t)i, &hard, i & 1, 0, 0);
    }
    printf("# EI vs APD sequential (TCP): %d/%d direct with the hard punch (mean %.2f s after "
           "the relayed connection), %d/%d without\n",
           direct, TRIALS, tcp_timed ? tcp_took / 1e9 / tcp_timed : 0.0, plain, TRIALS);
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

/* ---- QUIC: birthday probing ---------------------------------------------------------------- */

static void quic_addr(flare_multiaddr *ma, const char *ip, const flare_peerid *peer)
{
    char s[96];
    snprintf(s, sizeof(s), "/ip4/%s/udp/4001/quic-v1", ip);
    assert_int_equal(flare_multiaddr_parse(ma, s), 0);
    if (peer)
        assert_int_equal(flare_multiaddr_with_peerid(ma, peer), 0);
}

/* The QUIC world's allocator (the simulation's and every host's; NULL:
 * libc), and whether qtrial2 ends it while the hard punch runs. */
static const flare_mem *qmem;
static int qstop_mid;

static void qnode(flare_sim *sim, flare_sim_world_node *n, const char *name, flare_sim_lan *lan,
                  const char *ip, uint8_t seed, flare_tstamp delay)
{
    n->name = name;
    flare_test_host_spec sp = {.name = name,
                               .lan = lan,
                               .ip = ip,
                               .link = {.delay = delay},
                               .seed = {seed},
                               .on_event = count_event,
                               .user = n,
                               .mem = qmem};
    assert_int_equal(flare_test_host_make(sim, &sp, &n->sh, &n->h), 0);
    flare_multiaddr ma;
    quic_addr(&ma, ip, NULL);
    assert_int_equal(flare_host_listen(n->h, &ma), 0);
}

/* A QUIC-only world: R (relay, observer), O (observer), A behind na, B
 * behind nb. Returns 1 if A and B end up directly connected; *took gets
 * the time from the relayed connection to it. */
static int qtrial2(uint64_t seed, const flare_sim_nat_config *na, const flare_sim_nat_config *nb,
                   int enable, flare_tstamp *took)
{
    flare_sim_world w;
    memset(&w, 0, sizeof(w));
    w.sim = flare_sim_new(seed, qmem);
    assert_non_null(w.sim);
    flare_sim_lan *inet = flare_sim_internet(w.sim);
    flare_sim_lan *la = flare_sim_lan_new(w.sim, "lan-a");
    flare_sim_lan *lb = flare_sim_lan_new(w.sim, "lan-b");
    w.nat_a = flare_sim_nat_new(w.sim, "nat-a", inet, "203.0.113.1", la, "10.0.1.1", na);
    w.nat_b = flare_sim_nat_new(w.sim, "nat-b", inet, "203.0.113.2", lb, "10.0.2.1", nb);
    assert_non_null(w.nat_a);
    assert_non_null(w.nat_b);
    flare_sim_link nl = {.delay = 25 * MS};
    flare_sim_nat_link_set(w.nat_a, &nl);
    flare_sim_nat_link_set(w.nat_b, &nl);
    flare_sim_world_node o;
    memset(&o, 0, sizeof(o));
    qnode(w.sim, &w.r, "R", inet, FLARE_SIM_WORLD_RELAY_IP, 1, 25 * MS);
    qnode(w.sim, &o, "O", inet, "198.51.100.20", 9, 25 * MS);
    qnode(w.sim, &w.a, "A", la, "10.0.1.2", 2, 0);
    qnode(w.sim, &w.b, "B", lb, "10.0.2.2", 3, 0);
    assert_int_equal(flare_host_enable_relay_server(w.r.h, NULL), 0);
    if (enable) {
        assert_int_equal(flare_host_enable_hardpunch(w.a.h, NULL), 0);
        assert_int_equal(flare_host_enable_hardpunch(w.b.h, NULL), 0);
    }
    flare_multiaddr rma, oma;
    quic_addr(&rma, FLARE_SIM_WORLD_RELAY_IP, flare_host_peerid(w.r.h));
    quic_addr(&oma, "198.51.100.20", flare_host_peerid(o.h));
    assert_int_equal(flare_host_relay_reserve(w.b.h, &rma), 0);
    flare_host_dial(w.a.h, &rma, NULL, NULL, NULL);
    flare_host_dial(w.a.h, &oma, NULL, NULL, NULL);
    flare_host_dial(w.b.h, &oma, NULL, NULL, NULL);
    flare_sim_run_for(w.sim, 2 * S);
    assert_true(w.b.rsv_ok);
    int steps = hard_steps;
    assert_int_equal(flare_sim_world_dial_relayed(&w), 0);
    /* Teardown mid punch watches from the dial on: the hard punch can
     * start within the first 2 s. */
    if (!qstop_mid) {
        flare_sim_run_for(w.sim, 2 * S);
        assert_int_equal(w.dial_status, 0);
    }
    flare_tstamp end = flare_sim_now(w.sim) + 40 * S;
    while (!flare_sim_world_direct(&w) && flare_sim_now(w.sim) < end &&
           !(qstop_mid && hard_steps > steps))
        flare_sim_run_for(w.sim, 100 * MS);
    if (qstop_mid) { /* the hard punch started: tear down in the middle of it */
        assert_true(hard_steps > steps);
        assert_false(flare_sim_world_direct(&w));
        flare_sim_run_for(w.sim, 300 * MS);
        flare_host_del(o.h);
        flare_sim_world_free(&w);
        return 0;
    }
    int direct = flare_sim_world_direct(&w);
    if (took)
        *took = flare_sim_now(w.sim) - w.relayed_up;
    /* DCUtR's UDP packets to A stop at their next timer (up to 200 ms). */
    flare_sim_run_for(w.sim, 1 * S);
    flare_host_del(o.h);
    flare_sim_world_free(&w);
    return direct;
}

static int qtrial(uint64_t seed, const flare_sim_nat_config *hard, int swap, int enable,
                  flare_tstamp *took)
{
    flare_sim_nat_config easy;
    easy_cfg(&easy);
    return qtrial2(seed, swap ? hard : &easy, swap ? &easy : hard, enable, took);
}

#define QTRIALS 6

static void test_quic_random(void **state)
{
    (void)state;
    flare_sim_nat_config hard;
    hard_cfg(&hard, FLARE_SIM_ALLOC_RANDOM);
    int direct = 0, plain = 0;
    flare_tstamp sum = 0;
    hard_direct = 0;
    for (int i = 0; i < QTRIALS; i++) {
        flare_tstamp t = 0;
        int d = qtrial(400 + (uint64_t)i, &hard, i & 1, 1, &t);
        direct += d;
        sum += d ? t : 0;
        plain += qtrial(400 + (uint64_t)i, &hard, i & 1, 0, NULL);
    }
    printf("# EI vs APD random (QUIC): %d/%d direct with birthday probing (mean %.1f s after "
           "the relayed connection), %d/%d without\n",
           direct, QTRIALS, direct ? sum / 1e9 / direct : 0.0, plain, QTRIALS);
    assert_int_equal(plain, 0);
    assert_true(hard_direct >= direct);
    assert_true(direct * 2 >= QTRIALS); /* the target: at least half */
}

/* Hosts destroyed while the QUIC hard punch probes (its UDP timer and probe
 * sockets live): everything allocated is freed. */
static void test_quic_teardown_mid_punch(void **state)
{
    (void)state;
    flare_sim_nat_config hard;
    hard_cfg(&hard, FLARE_SIM_ALLOC_RANDOM);
    flare_test_heap heap = {0};
    flare_mem mem = flare_test_heap_mem(&heap);
    qmem = &mem;
    qstop_mid = 1;
    qtrial(400, &hard, 0, 1, NULL);
    qmem = NULL;
    qstop_mid = 0;
    assert_true(heap.calls > 0);
    assert_int_equal(heap.blocks, 0);
    assert_int_equal(heap.bytes, 0);
}

/* ---- the matrix: mapping x filtering x allocation, mixed pairs, TCP and QUIC ---------------- */

typedef struct profile {
    const char *name;
    flare_sim_nat_behavior mapping, filtering;
    int preserve;
    flare_sim_port_alloc alloc;
} profile;

static const profile P[] = {
    {"EI map / EI filter (full cone)", FLARE_SIM_EI, FLARE_SIM_EI, 0, FLARE_SIM_ALLOC_RANDOM},
    {"EI map / APD filter (port-restricted cone)", FLARE_SIM_EI, FLARE_SIM_APD, 0,
     FLARE_SIM_ALLOC_RANDOM},
    {"APD map / APD filter, sequential", FLARE_SIM_APD, FLARE_SIM_APD, 0,
     FLARE_SIM_ALLOC_SEQUENTIAL},
    {"APD map / APD filter, random", FLARE_SIM_APD, FLARE_SIM_APD, 0, FLARE_SIM_ALLOC_RANDOM},
    {"APD map / APD filter, preserving", FLARE_SIM_APD, FLARE_SIM_APD, 1, FLARE_SIM_ALLOC_RANDOM},
    {"AD map / AD filter, sequential", FLARE_SIM_AD, FLARE_SIM_AD, 0, FLARE_SIM_ALLOC_SEQUENTIAL},
};
#define NP (sizeof(P) / sizeof(P[0]))

static void profile_cfg(flare_sim_nat_config *c, const profile *p)
{
    flare_sim_nat_config_default(c);
    c->mapping = p->mapping;
    c->filtering = p->filtering;
    c->port_preservation = p->preserve;
    c->port_alloc = p->alloc;
}

static void test_matrix(void **state)
{
    (void)state;
    FILE *out = stdout;
    const char *path = getenv("FLARE_HARDPUNCH_MATRIX");
    if (path)
        out = fopen(path, "w");
    assert_non_null(out);
    /* FLARE_HARDPUNCH_MATRIX_RUNS: seeds per cell (default 2, for CI) */
    const char *rs = getenv("FLARE_HARDPUNCH_MATRIX_RUNS");
    const int runs = rs && atoi(rs) > 0 ? atoi(rs) : 2;
    /* FLARE_HARDPUNCH_MATRIX_OFF=1: DCUtR alone, for comparison (no checks) */
    const int on = !getenv("FLARE_HARDPUNCH_MATRIX_OFF");
    fprintf(out, "| NAT of A | NAT of B | TCP direct | QUIC direct |\n|---|---|---|---|\n");
    int tcp_cells = 0, quic_cells = 0, cells = 0;
    for (size_t i = 0; i < NP; i++)
        for (size_t j = i; j < NP; j++) {
            flare_sim_nat_config na, nb;
            profile_cfg(&na, &P[i]);
            profile_cfg(&nb, &P[j]);
            int t = 0, q = 0;
            for (int r = 0; r < runs; r++) {
                uint64_t seed = 1000 + (uint64_t)(cells * 10 + r);
                t += trial2(seed, &na, &nb, on, on);
                q += qtrial2(seed, &na, &nb, on, NULL);
            }
            fprintf(out, "| %s | %s | %d/%d | %d/%d |\n", P[i].name, P[j].name, t, runs, q, runs);
            /* an endpoint-independent side against a sequential one: TCP by
             * prediction; against any per-destination one: QUIC by probing */
            if (on && P[i].mapping == FLARE_SIM_EI && P[j].alloc == FLARE_SIM_ALLOC_SEQUENTIAL &&
                !P[j].preserve)
                assert_int_equal(t, runs);
            if (on && P[i].mapping == FLARE_SIM_EI)
                assert_int_equal(q, runs);
            /* both per destination: still no path */
            if (P[i].mapping != FLARE_SIM_EI && P[j].mapping != FLARE_SIM_EI)
                assert_int_equal(t + q, 0);
            tcp_cells += t == runs;
            quic_cells += q == runs;
            cells++;
        }
    fprintf(out, "\n%d pairs: %d always direct over TCP, %d over QUIC\n", cells, tcp_cells,
            quic_cells);
    if (path)
        fclose(out);
}

/* ---- a hostile B: its INFO points A at A's own LAN ------------------------------------------ */

static const flare_stream_cbs quiet = {0};

/* B (without the service) opens the protocol on the relayed connection and
 * claims a sequential symmetric NAT at ip. Returns A's hard-start value. */
static uint64_t hostile_info(const char *ip)
{
    flare_sim_world_settings p;
    flare_sim_world_settings_default(&p);
    flare_host_settings hs; /* no DCUtR: the relayed connection stays the only one */
    flare_host_settings_default(&hs);
    hs.doc_addrs_public = 1;
    hs.enable_holepunch = 0;
    p.host = &hs;
    flare_sim_world w;
    assert_int_equal(flare_sim_world_build(&w, &p), 0);
    flare_host_set_event_cb(w.a.h, count_event, &w.a);
    assert_int_equal(flare_host_enable_hardpunch(w.a.h, NULL), 0);
    flare_multiaddr rma;
    assert_int_equal(flare_sim_world_relay_addr(&w, &rma), 0);
    assert_int_equal(flare_host_relay_reserve(w.b.h, &rma), 0);
    flare_sim_run_for(w.sim, 2 * S);
    assert_int_equal(flare_sim_world_dial_relayed(&w), 0);
    flare_sim_run_for(w.sim, 2 * S);
    flare_hardpunch_msg m = {.type = FLARE_HARDPUNCH_INFO,
                             .info = {.nat = FLARE_HARDPUNCH_NAT_HARD,
                                      .has_tcp = 1,
                                      .tcp_step = 1,
                                      .udp_nat = FLARE_HARDPUNCH_NAT_HARD,
                                      .has_udp = 1}};
    assert_int_equal(flare_ipaddr_parse(&m.info.tcp, ip), 0);
    m.info.tcp.port = 40000;
    m.info.udp = m.info.tcp;
    flare_hardpunch_msg sync = {.type = FLARE_HARDPUNCH_SYNC};
    flare_buf b;
    flare_buf_init(&b, NULL);
    assert_int_equal(flare_hardpunch_msg_encode(&m, &b), 0);
    assert_int_equal(flare_hardpunch_msg_encode(&sync, &b), 0);
    flare_stream *st;
    last_start = 99;
    last_end = NULL;
    assert_int_equal(flare_host_new_stream(w.b.h, flare_host_peerid(w.a.h),
                                           FLARE_HARDPUNCH_PROTOCOL_ID, &quiet, NULL,
                                           FLARE_STREAM_ALLOW_LIMITED, &st),
                     0);
    assert_int_equal(flare_stream_write(st, b.base, b.len), 0);
    flare_buf_free(&b);
    flare_sim_run_for(w.sim, 3 * S);
    uint64_t v = last_start;
    flare_sim_world_free(&w);
    return v;
}

static void test_hostile_addrs(void **state)
{
    (void)state;
    /* A's own LAN: nothing dialed, nothing probed */
    assert_int_equal(hostile_info("10.0.1.3"), 0);
    assert_string_equal(last_end, "hard-none");
    /* the same from a public address: A would be the easy side, both ways */
    assert_int_equal(hostile_info("203.0.113.99"),
                     FLARE_HARDPUNCH_ROLE_EASY | FLARE_HARDPUNCH_ROLE_EASY << 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcp_sequential),
        cmocka_unit_test(test_tcp_random_nothing_to_predict),
        cmocka_unit_test(test_not_offered),
        cmocka_unit_test(test_quic_random),
        cmocka_unit_test(test_matrix),
        cmocka_unit_test(test_hostile_addrs),
        cmocka_unit_test(test_quic_teardown_mid_punch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
