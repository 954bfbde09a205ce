/* A simulated NAT holding many mappings at once (its indexes, sim_natmap.c):
 * one endpoint-independent mapping filtering hundreds of remotes, hundreds
 * of port-dependent mappings from one inside port, a mapping behaviour
 * changed under them, staggered expiry with a refresh, and a TCP mapping
 * whose timeout shrinks when the connection closes. */
#include "support/test.h"

#include "flare/sim.h"

#define MS FLARE_NS_PER_MS
#define S  FLARE_NS_PER_S
#define NR 200 /* remotes */

typedef struct rx {
    int count;
    flare_ipaddr from; /* the last sender */
} rx;

typedef struct world {
    flare_sim *sim;
    flare_sim_nat *nat;
    flare_sim_host *in, *remote[NR + 1];
    flare_io_udp *u_in, *u_r[NR + 1][2]; /* each remote: ports 5000 and 5001 */
    rx rx_in, rx_r[NR + 1];
} world;

static flare_ipaddr addr(const char *s)
{
    flare_ipaddr a;
    assert_int_equal(flare_ipaddr_parse(&a, s), 0);
    return a;
}

static void on_udp(flare_io_udp *u, const flare_ipaddr *from, const uint8_t *d, size_t n,
                   void *user)
{
    (void)u;
    (void)d;
    (void)n;
    rx *r = user;
    r->count++;
    r->from = *from;
}

static flare_io_udp *ubind(flare_sim_host *h, const char *a, rx *r)
{
    flare_io *io = flare_sim_host_io(h);
    flare_io_udp *u = NULL;
    flare_ipaddr la = addr(a);
    assert_int_equal(io->ops->udp_bind(io, &la, 0, on_udp, r, &u), 0);
    return u;
}

static void usend(flare_sim_host *h, flare_io_udp *u, const flare_ipaddr *to)
{
    assert_int_equal(flare_sim_host_io(h)->ops->udp_send(u, to, (const uint8_t *)"x", 1), 0);
}

static flare_ipaddr remote_ep(int i, uint16_t port)
{
    char s[64];
    snprintf(s, sizeof(s), "9.0.%d.%d:%u", i / 200, 1 + i % 200, port);
    return addr(s);
}

static void world_make(world *w, flare_sim_nat_behavior mapping, flare_sim_nat_behavior filtering)
{
    memset(w, 0, sizeof(*w));
    w->sim = flare_sim_new(3, NULL);
    flare_sim_lan *net = flare_sim_internet(w->sim);
    flare_sim_lan *lan = flare_sim_lan_new(w->sim, "lan");
    flare_sim_nat_config cfg;
    flare_sim_nat_config_default(&cfg);
    cfg.mapping = mapping;
    cfg.filtering = filtering;
    w->nat = flare_sim_nat_new(w->sim, "nat", net, "5.0.0.1", lan, "10.0.0.1", &cfg);
    assert_non_null(w->nat);
    w->in = flare_sim_host_new(w->sim, "in");
    assert_int_equal(flare_sim_host_add_addr(w->in, lan, "10.0.0.2"), 0);
    w->u_in = ubind(w->in, "10.0.0.2:4000", &w->rx_in);
    for (int i = 0; i <= NR; i++) {
        char name[32], ip[32];
        flare_ipaddr ep = remote_ep(i, 0);
        snprintf(name, sizeof(name), "r%d", i);
        flare_ipaddr_to_string(&ep, ip, sizeof(ip));
        ip[strlen(ip) - 2] = 0; /* drop ":0" */
        w->remote[i] = flare_sim_host_new(w->sim, name);
        assert_int_equal(flare_sim_host_add_addr(w->remote[i], net, ip), 0);
        for (int k = 0; k < 2; k++) {
            flare_ipaddr b = remote_ep(i, (uint16_t)(5000 + k));
            char bs[64];
            flare_ipaddr_to_string(&b, bs, sizeof(bs));
            w->u_r[i][k] = ubind(w->remote[i], bs, &w->rx_r[i]);
        }
    }
}

static uint64_t active(world *w)
{
    flare_sim_nat_stats st;
    flare_sim_nat_stats_get(w->nat, &st);
    return st.mappings_active;
}

static uint64_t filtered(world *w)
{
    flare_sim_nat_stats st;
    flare_sim_nat_stats_get(w->nat, &st);
    return st.dropped_filter;
}

/* Sends from the inside to remote i's port 5000; returns the outside
 * endpoint the remote saw. */
static flare_ipaddr out_to(world *w, int i)
{
    flare_ipaddr to = remote_ep(i, 5000);
    int before = w->rx_r[i].count;
    usend(w->in, w->u_in, &to);
    flare_sim_run_for(w->sim, 100 * MS);
    assert_int_equal(w->rx_r[i].count, before + 1);
    return w->rx_r[i].from;
}

/* Remote i answers to ext from port 5000 + k; returns 1 if it got in. */
static int back_from(world *w, int i, int k, const flare_ipaddr *ext)
{
    int before = w->rx_in.count;
    usend(w->remote[i], w->u_r[i][k], ext);
    flare_sim_run_for(w->sim, 100 * MS);
    return w->rx_in.count == before + 1;
}

static void check_filter(flare_sim_nat_behavior filtering)
{
    world w;
    world_make(&w, FLARE_SIM_EI, filtering);
    flare_ipaddr ext = out_to(&w, 0);
    for (int i = 1; i < NR; i++) {
        flare_ipaddr e = out_to(&w, i);
        assert_true(flare_ipaddr_equal(&e, &ext)); /* one mapping for all */
    }
    assert_int_equal(active(&w), 1);
    for (int i = 0; i < NR; i++) {
        assert_true(back_from(&w, i, 0, &ext));
        /* Another port of a remote we sent to: in only if the filter
         * looks at addresses alone. */
        assert_int_equal(back_from(&w, i, 1, &ext), filtering == FLARE_SIM_AD);
    }
    /* A remote we never sent to. */
    assert_false(back_from(&w, NR, 0, &ext));
    assert_int_equal(filtered(&w), filtering == FLARE_SIM_AD ? 1 : NR + 1);
    flare_sim_del(w.sim);
}

static void test_one_mapping_many_remotes_apd(void **state)
{
    (void)state;
    check_filter(FLARE_SIM_APD);
}

static void test_one_mapping_many_remotes_ad(void **state)
{
    (void)state;
    check_filter(FLARE_SIM_AD);
}

/* A symmetric NAT: a mapping per remote from the same inside port, each
 * admitting only its own remote. Switching the box to endpoint-independent
 * mapping then sends new flows out of the newest mapping. */
static void test_many_mappings_one_port_then_reconfig(void **state)
{
    (void)state;
    world w;
    world_make(&w, FLARE_SIM_APD, FLARE_SIM_APD);
    static flare_ipaddr ext[NR];
    for (int i = 0; i < NR; i++) {
        ext[i] = out_to(&w, i);
        for (int j = 0; j < i; j++)
            assert_int_not_equal(ext[i].port, ext[j].port);
    }
    assert_int_equal(active(&w), NR);
    for (int i = 0; i < NR; i += 7) {
        assert_true(back_from(&w, i, 0, &ext[i]));
        assert_false(back_from(&w, (i + 1) % NR, 0, &ext[i]));
        /* The same flow again reuses its mapping. */
        flare_ipaddr again = out_to(&w, i);
        assert_true(flare_ipaddr_equal(&again, &ext[i]));
    }
    assert_int_equal(active(&w), NR);
    flare_sim_nat_config cfg;
    flare_sim_nat_config_default(&cfg);
    cfg.mapping = FLARE_SIM_EI;
    cfg.filtering = FLARE_SIM_APD;
    flare_sim_nat_set_config(w.nat, &cfg);
    flare_ipaddr e = out_to(&w, NR);
    assert_true(flare_ipaddr_equal(&e, &ext[NR - 1]));
    assert_int_equal(active(&w), NR);
    flare_sim_del(w.sim);
}

/* Mappings made one second apart expire 120 s after their last use, one
 * by one; a refreshed one lives on. */
static void test_staggered_expiry(void **state)
{
    (void)state;
    world w;
    world_make(&w, FLARE_SIM_APD, FLARE_SIM_APD);
    for (int i = 0; i < 100; i++) {
        flare_sim_run_until(w.sim, (flare_tstamp)i * S);
        out_to(&w, i);
    }
    assert_int_equal(active(&w), 100);
    flare_sim_run_until(w.sim, 149 * S + 500 * MS);
    assert_int_equal(active(&w), 70); /* made at 0..29 s: gone */
    out_to(&w, 50);                   /* refreshed at 149.5 s */
    flare_sim_run_until(w.sim, 200 * S + 500 * MS);
    assert_int_equal(active(&w), 20); /* 81..99, and 50 */
    flare_sim_run_until(w.sim, 260 * S);
    assert_int_equal(active(&w), 1);
    flare_sim_run_until(w.sim, 280 * S);
    assert_int_equal(active(&w), 0);
    flare_sim_nat_stats st;
    flare_sim_nat_stats_get(w.nat, &st);
    assert_int_equal(st.mappings_expired, 100);
    flare_sim_del(w.sim);
}

/* --- TCP: an established mapping lives 7440 s, a closed one 240 s ------------- */

static int g_connected;

static void on_connect(flare_io_sock *s, int status, void *u)
{
    (void)s;
    (void)u;
    g_connected = status == 0 ? 1 : -1;
}

static void on_read(flare_io_sock *s, const uint8_t *d, size_t n, void *u)
{
    (void)s;
    (void)d;
    (void)n;
    (void)u;
}

static void on_close(flare_io_sock *s, int reason, void *u)
{
    (void)s;
    (void)reason;
    (void)u;
}

static const flare_io_sock_cbs cbs = {on_connect, on_read, on_close, NULL};

/* The servers keep what they accept. */
static void on_accept(flare_io_listener *l, flare_io_sock *s, void *u)
{
    (void)l;
    flare_io *io = u;
    io->ops->sock_set_cbs(s, &cbs, NULL);
}

static flare_io_sock *tcp_to(world *w, int i)
{
    flare_io *sio = flare_sim_host_io(w->remote[i]), *cio = flare_sim_host_io(w->in);
    flare_io_listener *l = NULL;
    flare_io_sock *s = NULL;
    flare_ipaddr la = remote_ep(i, 7000);
    assert_int_equal(sio->ops->listen(sio, &la, 0, on_accept, sio, &l), 0);
    g_connected = 0;
    assert_int_equal(cio->ops->dial(cio, NULL, &la, 0, &cbs, NULL, &s), 0);
    flare_sim_run_for(w->sim, 1 * S);
    assert_int_equal(g_connected, 1);
    return s;
}

/* Every TCP mapping starts transitory (the SYN), so the box's earliest
 * expiry is only far away once the flows are established and checked:
 * then a FIN must bring it close again. */
static void test_tcp_timeout_shrinks_on_close(void **state)
{
    (void)state;
    world w;
    world_make(&w, FLARE_SIM_EI, FLARE_SIM_APD);
    flare_io *cio = flare_sim_host_io(w.in);
    flare_io_sock *a = tcp_to(&w, 1);
    flare_sim_run_for(w.sim, 300 * S);
    assert_int_equal(active(&w), 1);
    flare_io_sock *b = tcp_to(&w, 0);
    flare_sim_run_for(w.sim, 290 * S);
    assert_int_equal(active(&w), 2);
    cio->ops->sock_close(b, 0); /* our FIN: b's mapping is transitory now */
    flare_sim_run_for(w.sim, 230 * S);
    assert_int_equal(active(&w), 2);
    flare_sim_run_for(w.sim, 20 * S);
    assert_int_equal(active(&w), 1); /* a, established, stays */
    cio->ops->sock_close(a, 1);
    flare_sim_del(w.sim);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_mapping_many_remotes_apd),
        cmocka_unit_test(test_one_mapping_many_remotes_ad),
        cmocka_unit_test(test_many_mappings_one_port_then_reconfig),
        cmocka_unit_test(test_staggered_expiry),
        cmocka_unit_test(test_tcp_timeout_shrinks_on_close),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
