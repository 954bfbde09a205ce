/* The simulator at scale and under random churn: thousands of hosts behind
 * NATs, random dials/writes/closes from callbacks, replayed twice. */
#include <stdlib.h>

#include "support/test.h"

#include "flare/sim.h"

#define MS FLARE_NS_PER_MS
#define S  FLARE_NS_PER_S

typedef struct node {
    flare_io *io;
    flare_prng prng;
    flare_io_sock *socks[4];
    flare_io_timer *t;
    flare_io_udp *u;
    int got;
} node;

static node *g_nodes;
static size_t g_n;
static flare_ipaddr g_server;

static void drop_sock(node *n, flare_io_sock *s)
{
    for (int i = 0; i < 4; i++)
        if (n->socks[i] == s)
            n->socks[i] = NULL;
}

static void on_connect(flare_io_sock *s, int status, void *u)
{
    node *n = u;
    if (status < 0)
        drop_sock(n, s);
}

static void on_read(flare_io_sock *s, const uint8_t *d, size_t len, void *u)
{
    node *n = u;
    n->got += (int)len;
    uint64_t r = flare_prng_next(&n->prng) % 8;
    if (r == 0 || len == 0) {
        n->io->ops->sock_close(s, (int)(r & 1));
        drop_sock(n, s);
    } else if (r < 4) {
        n->io->ops->sock_write(s, d, len);
    }
}

static void on_close(flare_io_sock *s, int reason, void *u)
{
    drop_sock(u, s);
}

static const flare_io_sock_cbs cbs = {on_connect, on_read, on_close, NULL};

static void on_accept(flare_io_listener *l, flare_io_sock *s, void *u)
{
    node *n = u;
    for (int i = 0; i < 4; i++) {
        if (!n->socks[i]) {
            n->socks[i] = s;
            n->io->ops->sock_set_cbs(s, &cbs, n);
            return;
        }
    }
    n->io->ops->sock_close(s, 1);
}

static void on_udp(flare_io_udp *u, const flare_ipaddr *from, const uint8_t *d, size_t len,
                   void *user)
{
    node *n = user;
    n->got++;
    if (n == &g_nodes[0])
        n->io->ops->udp_send(u, from, d, len);
}

/* Every node acts at random: dial, write, close, send a datagram. */
static void on_timer(flare_io_timer *t, void *u)
{
    node *n = u;
    uint64_t r = flare_prng_next(&n->prng);
    int slot = (int)(r % 4);
    flare_io_sock *s = n->socks[slot];
    switch ((r >> 8) % 4) {
    case 0:
        if (!s) {
            flare_io_sock *ns;
            if (n->io->ops->dial(n->io, NULL, &g_server, 0, &cbs, n, &ns) == 0)
                n->socks[slot] = ns;
        }
        break;
    case 1:
        if (s)
            n->io->ops->sock_write(s, (const uint8_t *)"data", 4);
        break;
    case 2:
        if (s) {
            n->io->ops->sock_close(s, (int)(r >> 20) & 1);
            n->socks[slot] = NULL;
        }
        break;
    default: {
        flare_ipaddr to = g_server;
        to.port = 9;
        n->io->ops->udp_send(n->u, &to, (const uint8_t *)"u", 1);
    }
    }
    n->io->ops->timer_start(t, n->io->ops->now(n->io) + (r >> 32) % (500 * MS) + MS);
}

static uint64_t run(uint64_t seed, size_t hosts, flare_tstamp dur, int *received)
{
    flare_sim *sim = flare_sim_new(seed, NULL);
    flare_sim_lan *net = flare_sim_internet(sim);
    g_n = hosts;
    g_nodes = calloc(hosts, sizeof(node));
    assert_int_equal(flare_ipaddr_parse(&g_server, "1.0.0.1:443"), 0);
    char name[32], ip[32];
    flare_sim_lan *lan = NULL;
    for (size_t i = 0; i < hosts; i++) {
        node *n = &g_nodes[i];
        snprintf(name, sizeof(name), "h%zu", i);
        flare_sim_host *h = flare_sim_host_new(sim, name);
        assert_non_null(h);
        if (i == 0) {
            assert_int_equal(flare_sim_host_add_addr(h, net, "1.0.0.1"), 0);
        } else {
            if (i % 50 == 1) { /* a new NAT every 50 hosts, with varied behaviour */
                flare_sim_nat_config cfg;
                flare_sim_nat_config_default(&cfg);
                cfg.mapping = (flare_sim_nat_behavior)(i / 50 % 3);
                cfg.filtering = (flare_sim_nat_behavior)(i / 150 % 3);
                cfg.syn_rst = (int)(i / 50 % 2);
                lan = flare_sim_lan_new(sim, "lan");
                snprintf(ip, sizeof(ip), "5.%zu.%zu.1", i / 50 / 250, i / 50 % 250);
                assert_non_null(flare_sim_nat_new(sim, "nat", net, ip, lan, "10.0.0.1", &cfg));
            }
            snprintf(ip, sizeof(ip), "10.0.%zu.%zu", (i % 50) / 250, (i % 50) % 250 + 2);
            assert_int_equal(flare_sim_host_add_addr(h, lan, ip), 0);
        }
        flare_sim_link l = {.delay = (i % 7 + 1) * MS, .jitter = i % 3 ? 0 : MS, .loss = 0.01};
        flare_sim_link_set(h, &l);
        n->io = flare_sim_host_io(h);
        n->io->ops->random(n->io, (uint8_t *)&n->prng, sizeof(n->prng));
        flare_ipaddr any;
        assert_int_equal(flare_ipaddr_parse(&any, "0.0.0.0:9"), 0);
        assert_int_equal(n->io->ops->udp_bind(n->io, &any, 0, on_udp, n, &n->u), 0);
        if (i == 0) {
            flare_io_listener *lst;
            any.port = 443;
            assert_int_equal(n->io->ops->listen(n->io, &any, 0, on_accept, n, &lst), 0);
        } else {
            assert_int_equal(n->io->ops->timer_new(n->io, on_timer, n, &n->t), 0);
            n->io->ops->timer_start(n->t, i * MS % (100 * MS));
        }
    }
    flare_sim_run_until(sim, dur);
    uint64_t hash = flare_sim_trace_hash(sim);
    *received = 0;
    for (size_t i = 0; i < hosts; i++)
        *received += g_nodes[i].got;
    flare_sim_del(sim);
    free(g_nodes);
    return hash;
}

static void test_churn_replay(void **state)
{
    int r1, r2;
    uint64_t h1 = run(7, 200, 20 * S, &r1);
    uint64_t h2 = run(7, 200, 20 * S, &r2);
    assert_true(h1 == h2);
    assert_int_equal(r1, r2);
    assert_true(r1 > 1000);
}

static void test_scale(void **state)
{
    int r;
    run(8, 5000, 3 * S, &r);
    assert_true(r > 5000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_churn_replay),
        cmocka_unit_test(test_scale),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
