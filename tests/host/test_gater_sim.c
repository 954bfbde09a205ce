/* The connection gater on the simulator: peer and subnet deny/allow lists
 * at accept (before any byte), at dial and after the handshake; deny beats
 * allow; an allow list lets only its entries in; list changes close what
 * they now refuse. */
#include "support/test.h"

#include "flare/host.h"

#define MS FLARE_NS_PER_MS
#define NC 3

typedef struct gnode {
    flare_sim_host *sh;
    flare_host *h;
    int refused_in, opened, closed;
} gnode;

typedef struct gworld {
    flare_sim *sim;
    gnode s, c[NC]; /* s listens on .1; c[i] on .(i+2) */
} gworld;

static void on_event(flare_host *h, const flare_host_event *ev, void *user)
{
    gnode *n = user;
    (void)h;
    if (ev->type == FLARE_HOST_EV_INCOMING_FAILED && ev->u.failed.error == FLARE_ERR_REFUSED)
        n->refused_in++;
    else if (ev->type == FLARE_HOST_EV_CONN_OPENED)
        n->opened++;
    else if (ev->type == FLARE_HOST_EV_CONN_CLOSED)
        n->closed++;
}

static void make(gworld *w, gnode *n, const char *name, const char *ip, uint8_t seed, int port)
{
    flare_test_host_spec sp = {.name = name,
                               .lan = flare_sim_internet(w->sim),
                               .ip = ip,
                               .link = {.delay = 5 * MS},
                               .seed = {seed},
                               .on_event = on_event,
                               .user = n,
                               .listen_port = port};
    assert_int_equal(flare_test_host_make(w->sim, &sp, &n->sh, &n->h), 0);
}

static void setup(gworld *w)
{
    memset(w, 0, sizeof(*w));
    w->sim = flare_sim_new(1, NULL);
    assert_non_null(w->sim);
    make(w, &w->s, "S", "198.51.100.1", 1, 4001);
    for (int i = 0; i < NC; i++) {
        char ip[32], name[8];
        snprintf(ip, sizeof(ip), "198.51.100.%d", i + 2);
        snprintf(name, sizeof(name), "C%d", i);
        make(w, &w->c[i], name, ip, (uint8_t)(10 + i), 4001);
    }
}

static void teardown(gworld *w)
{
    flare_host_del(w->s.h);
    for (int i = 0; i < NC; i++)
        flare_host_del(w->c[i].h);
    flare_sim_del(w->sim);
}

/* c[i] dials S; returns the dial's status, or FLARE_ERR_CLOSED when the
 * dial succeeded but the connection is gone a moment later (a peer refused
 * after the handshake: Noise XX lets the dialer finish first). */
static int dial_s(gworld *w, int i)
{
    flare_multiaddr ma;
    assert_int_equal(flare_test_tcp_addr(&ma, "198.51.100.1", 4001, flare_host_peerid(w->s.h)), 0);
    flare_test_dial d = {0};
    int rv = flare_host_dial(w->c[i].h, &ma, NULL, flare_test_dial_cb, &d);
    if (rv)
        return rv;
    for (int k = 0; k < 50 && !d.calls; k++)
        flare_test_run_ms(w->sim, 100);
    assert_int_equal(d.calls, 1);
    if (d.status)
        return d.status;
    flare_test_run_ms(w->sim, 500);
    return flare_host_conn_to(w->c[i].h, flare_host_peerid(w->s.h)) ? 0 : FLARE_ERR_CLOSED;
}

static flare_ipaddr ip(const char *s, unsigned *prefix)
{
    flare_ipaddr a;
    assert_int_equal(flare_cidr_parse(s, &a, prefix), 0);
    return a;
}

static void test_cidr_parse(void **state)
{
    (void)state;
    flare_ipaddr a;
    unsigned p;
    assert_int_equal(flare_cidr_parse("10.1.2.3/8", &a, &p), 0);
    assert_int_equal(a.family, 4);
    assert_int_equal(p, 8);
    assert_int_equal(flare_cidr_parse("10.1.2.3", &a, &p), 0);
    assert_int_equal(p, 32);
    assert_int_equal(flare_cidr_parse("fd00::/8", &a, &p), 0);
    assert_int_equal(a.family, 6);
    assert_int_equal(p, 8);
    assert_int_equal(flare_cidr_parse("::1", &a, &p), 0);
    assert_int_equal(p, 128);
    static const char *const bad[] = {
        "",          "/8",    "10.0.0.0/33", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/+8",
        "1.2.3.4:5", "[::1]", "::/129",      "10.0.0/8",  "x/8",         "10.0.0.0/8x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(flare_cidr_parse(bad[i], &a, &p), FLARE_ERR_INVALID_ARG);
}

static void test_deny_peer(void **state)
{
    (void)state;
    gworld w;
    setup(&w);
    assert_int_equal(flare_host_gater_peer(w.s.h, FLARE_GATER_DENY, flare_host_peerid(w.c[0].h), 1),
                     0);
    assert_int_not_equal(dial_s(&w, 0), 0); /* refused after the handshake */
    assert_int_equal(flare_host_num_conns(w.s.h), 0);
    assert_int_equal(dial_s(&w, 1), 0);
    assert_true(flare_host_gater_refused(w.s.h) >= 1);
    /* Our own dials to a denied peer are refused at once. */
    flare_multiaddr ma;
    flare_test_tcp_addr(&ma, "198.51.100.2", 4001, flare_host_peerid(w.c[0].h));
    assert_int_equal(flare_host_dial(w.s.h, &ma, NULL, NULL, NULL), FLARE_ERR_REFUSED);
    /* ... also through a relay. */
    char s[512], rp[FLARE_PEERID_STR_MAX], tp[FLARE_PEERID_STR_MAX];
    flare_peerid_to_string(flare_host_peerid(w.c[1].h), rp, sizeof(rp));
    flare_peerid_to_string(flare_host_peerid(w.c[0].h), tp, sizeof(tp));
    snprintf(s, sizeof(s), "/ip4/198.51.100.3/tcp/4001/p2p/%s/p2p-circuit/p2p/%s", rp, tp);
    assert_int_equal(flare_multiaddr_parse(&ma, s), 0);
    assert_int_equal(flare_host_dial(w.s.h, &ma, NULL, NULL, NULL), FLARE_ERR_REFUSED);
    /* Removing the rule lets it in again; removing it twice is an error. */
    assert_int_equal(flare_host_gater_peer(w.s.h, FLARE_GATER_DENY, flare_host_peerid(w.c[0].h), 0),
                     0);
    assert_int_equal(flare_host_gater_peer(w.s.h, FLARE_GATER_DENY, flare_host_peerid(w.c[0].h), 0),
                     FLARE_ERR_NOT_FOUND);
    assert_int_equal(dial_s(&w, 0), 0);
    teardown(&w);
}

static void test_deny_ip_before_handshake(void **state)
{
    (void)state;
    gworld w;
    setup(&w);
    unsigned p;
    flare_ipaddr a = ip("198.51.100.2/32", &p);
    assert_int_equal(flare_host_gater_subnet(w.s.h, FLARE_GATER_DENY, &a, p, 1), 0);
    assert_int_not_equal(dial_s(&w, 0), 0);
    /* Refused at accept: reported, never upgraded. */
    assert_int_equal(w.s.refused_in, 1);
    assert_int_equal(w.s.opened, 0);
    assert_int_equal(dial_s(&w, 1), 0);
    /* Outbound dials to the subnet are refused too. */
    flare_multiaddr ma;
    flare_test_tcp_addr(&ma, "198.51.100.2", 4001, NULL);
    assert_int_equal(flare_host_dial(w.s.h, &ma, NULL, NULL, NULL), FLARE_ERR_REFUSED);
    teardown(&w);
}

static void test_allow_list_and_deny_wins(void **state)
{
    (void)state;
    gworld w;
    setup(&w);
    unsigned p;
    flare_ipaddr a = ip("198.51.100.0/24", &p);
    assert_int_equal(flare_host_gater_subnet(w.s.h, FLARE_GATER_ALLOW, &a, p, 1), 0);
    a = ip("198.51.100.3", &p); /* c[1] */
    assert_int_equal(flare_host_gater_subnet(w.s.h, FLARE_GATER_DENY, &a, p, 1), 0);
    assert_int_equal(dial_s(&w, 0), 0);
    assert_int_not_equal(dial_s(&w, 1), 0); /* deny beats allow */
    /* An allow list of peers: only c[2] gets in. */
    assert_int_equal(
        flare_host_gater_peer(w.s.h, FLARE_GATER_ALLOW, flare_host_peerid(w.c[2].h), 1), 0);
    /* ... and c[0], connected, is now refused: closed. */
    flare_test_run_ms(w.sim, 500);
    assert_null(flare_host_conn_to(w.s.h, flare_host_peerid(w.c[0].h)));
    assert_int_not_equal(dial_s(&w, 0), 0);
    assert_int_equal(dial_s(&w, 2), 0);
    /* A narrower allow subnet leaves c[2] outside. */
    a = ip("198.51.100.0/24", &p);
    assert_int_equal(flare_host_gater_subnet(w.s.h, FLARE_GATER_ALLOW, &a, p, 0), 0);
    a = ip("198.51.100.2/32", &p);
    assert_int_equal(flare_host_gater_subnet(w.s.h, FLARE_GATER_ALLOW, &a, p, 1), 0);
    flare_test_run_ms(w.sim, 500);
    assert_null(flare_host_conn_to(w.s.h, flare_host_peerid(w.c[2].h)));
    teardown(&w);
}

static void test_bad_args(void **state)
{
    (void)state;
    gworld w;
    setup(&w);
    flare_peerid empty = {0};
    flare_ipaddr a;
    unsigned p;
    assert_int_equal(flare_host_gater_peer(w.s.h, FLARE_GATER_DENY, &empty, 1),
                     FLARE_ERR_INVALID_ARG);
    assert_int_equal(
        flare_host_gater_peer(w.s.h, (flare_gater_list)7, flare_host_peerid(w.c[0].h), 1),
        FLARE_ERR_INVALID_ARG);
    a = ip("10.0.0.0", &p);
    assert_int_equal(flare_host_gater_subnet(w.s.h, FLARE_GATER_DENY, &a, 33, 1),
                     FLARE_ERR_INVALID_ARG);
    assert_int_equal(flare_host_gater_subnet(w.s.h, FLARE_GATER_DENY, &a, 8, 0),
                     FLARE_ERR_NOT_FOUND);
    /* IPv4-mapped IPv6 rules are IPv4 rules. */
    a = ip("::ffff:198.51.100.2", &p);
    assert_int_equal(flare_host_gater_subnet(w.s.h, FLARE_GATER_DENY, &a, p, 1), 0);
    assert_int_not_equal(dial_s(&w, 0), 0);
    assert_int_equal(w.s.refused_in, 1);
    teardown(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cidr_parse),
        cmocka_unit_test(test_deny_peer),
        cmocka_unit_test(test_deny_ip_before_handshake),
        cmocka_unit_test(test_allow_list_and_deny_wins),
        cmocka_unit_test(test_bad_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
