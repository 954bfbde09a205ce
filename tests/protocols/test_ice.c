/* The ICE agent core: two agents in memory reach a selected pair (also
 * with loss, with an unreachable candidate, after a role conflict); an
 * ICE-lite server as /webrtc-direct needs (ufrag = password, learnt from
 * the first check); hostile candidates and checks; consent freshness. */
#include "support/test.h"

#include "flare/ice.h"
#include "flare/stun.h"

#define MS FLARE_NS_PER_MS

static flare_prng prng;

typedef struct side {
    flare_ice_agent *a;
    flare_ipaddr socks[2]; /* addresses that reach this side */
    size_t nsocks;
    size_t received_app;
} side;

static double loss;
static int blackhole;     /* drop everything (consent loss) */
static flare_ipaddr dead; /* a candidate address nothing reaches or leaves */
static int sent_count;

static int owns(const side *s, const flare_ipaddr *to)
{
    for (size_t i = 0; i < s->nsocks; i++)
        if (flare_ipaddr_equal(&s->socks[i], to))
            return 1;
    return 0;
}

static void pump_one(side *from, side *to, flare_tstamp now)
{
    uint8_t buf[512];
    flare_ipaddr src, dst;
    int n;
    while ((n = flare_ice_poll_send(from->a, now, buf, sizeof(buf), &src, &dst)) > 0) {
        sent_count++;
        assert_true(owns(from, &src));
        double r = (double)(flare_prng_next(&prng) >> 11) / 9007199254740992.0;
        if (blackhole || r < loss || !owns(to, &dst) || flare_ipaddr_equal(&src, &dead) ||
            flare_ipaddr_equal(&dst, &dead))
            continue;
        assert_int_equal(flare_ice_input(to->a, &dst, &src, buf, (size_t)n, now), 1);
    }
    assert_true(n == 0);
}

/* Runs both agents for ms milliseconds in 1 ms steps. */
static void run(side *x, side *y, flare_tstamp *now, long ms)
{
    for (long i = 0; i < ms; i++) {
        pump_one(x, y, *now);
        pump_one(y, x, *now);
        *now += MS;
    }
}

static void make(side *s, const flare_ice_settings *cfg, const char *ufrag, const char *pwd,
                 const char *addr)
{
    memset(s, 0, sizeof(*s));
    assert_int_equal(flare_ice_agent_new(&s->a, cfg, ufrag, pwd, flare_prng_rng(&prng), NULL), 0);
    if (addr) {
        flare_ipaddr_parse(&s->socks[0], addr);
        s->nsocks = 1;
        assert_int_equal(flare_ice_add_local(s->a, FLARE_ICE_HOST, &s->socks[0], &s->socks[0]), 0);
    }
}

/* Signalling: each side learns the other's credentials and candidates. */
static void exchange(side *x, const char *xu, const char *xp, side *y, const char *yu,
                     const char *yp)
{
    flare_ice_candidate c[8];
    size_t n = flare_ice_local_candidates(x->a, c, 8);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(flare_ice_add_remote(y->a, &c[i]), 0);
    n = flare_ice_local_candidates(y->a, c, 8);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(flare_ice_add_remote(x->a, &c[i]), 0);
    assert_int_equal(flare_ice_set_remote_credentials(x->a, yu, yp), 0);
    assert_int_equal(flare_ice_set_remote_credentials(y->a, xu, xp), 0);
}

static const char *pa = "aaaaaaaaaaaaaaaaaaaaaa", *pb = "bbbbbbbbbbbbbbbbbbbbbb";

static void check_selected(side *x, side *y)
{
    flare_ipaddr xl, xr, yl, yr;
    assert_int_equal(flare_ice_get_state(x->a), FLARE_ICE_CONNECTED);
    assert_int_equal(flare_ice_get_state(y->a), FLARE_ICE_CONNECTED);
    assert_int_equal(flare_ice_selected(x->a, &xl, &xr), 0);
    assert_int_equal(flare_ice_selected(y->a, &yl, &yr), 0);
    assert_true(flare_ipaddr_equal(&xl, &yr));
    assert_true(flare_ipaddr_equal(&xr, &yl));
    assert_int_not_equal(flare_ice_is_controlling(x->a), flare_ice_is_controlling(y->a));
}

static void pair_up(double l, int both_controlling, long ms)
{
    flare_prng_seed(&prng, 11);
    loss = l;
    blackhole = 0;
    flare_ice_settings ca, cb;
    flare_ice_settings_default(&ca);
    flare_ice_settings_default(&cb);
    ca.controlling = 1;
    cb.controlling = both_controlling;
    ca.doc_is_public = cb.doc_is_public = 1;
    side x, y;
    make(&x, &ca, "ufa1", pa, "198.51.100.1:4000");
    make(&y, &cb, "ufb1", pb, "203.0.113.7:5000");
    /* A second candidate of x that reaches nothing. */
    flare_ipaddr_parse(&x.socks[1], "198.51.100.99:4001");
    dead = x.socks[1];
    x.nsocks = 2;
    assert_int_equal(flare_ice_add_local(x.a, FLARE_ICE_HOST, &x.socks[1], &x.socks[1]), 0);
    exchange(&x, "ufa1", pa, &y, "ufb1", pb);
    flare_tstamp now = 1000 * MS;
    assert_int_equal(flare_ice_start(x.a, now), 0);
    assert_int_equal(flare_ice_start(y.a, now), 0);
    run(&x, &y, &now, ms);
    check_selected(&x, &y);
    flare_ipaddr xl;
    flare_ice_selected(x.a, &xl, NULL);
    assert_true(flare_ipaddr_equal(&xl, &x.socks[0])); /* not the dead one */
    /* Consent keeps it up while datagrams flow (loss-free here). */
    loss = 0;
    sent_count = 0;
    run(&x, &y, &now, 60000);
    check_selected(&x, &y);
    assert_true(sent_count >= 2 * 10 && sent_count < 2 * 40); /* a check every ~5 s each way */
    /* Then the path dies: both notice within 30 s (+ the interval). */
    blackhole = 1;
    run(&x, &y, &now, 36000);
    assert_int_equal(flare_ice_get_state(x.a), FLARE_ICE_FAILED);
    assert_int_equal(flare_ice_selected(x.a, NULL, NULL), FLARE_ERR_NOT_FOUND);
    assert_int_equal(flare_ice_get_state(y.a), FLARE_ICE_FAILED);
    flare_ice_agent_del(x.a);
    flare_ice_agent_del(y.a);
}

static void test_pair_up(void **st)
{
    (void)st;
    pair_up(0, 0, 3000);
}

static void test_pair_up_with_loss(void **st)
{
    (void)st;
    pair_up(0.3, 0, 20000);
}

static void test_role_conflict(void **st)
{
    (void)st;
    pair_up(0, 1, 5000);
}

/* /webrtc-direct: a browser (full, controlling) dials a lite server that
 * only knows the ufrag from the first check: ufrag = password = it. */
static void test_lite_webrtc_direct(void **st)
{
    (void)st;
    flare_prng_seed(&prng, 5);
    loss = 0;
    blackhole = 0;
    const char *uf = FLARE_ICE_DIRECT_PREFIX "Zk3v9QpLm2Xw8RtY6uNc4Hs";
    flare_ice_settings cb, cs;
    flare_ice_settings_default(&cb);
    cb.controlling = 1;
    cb.allow_private = 1; /* the test runs on loopback addresses */
    side browser, server;
    make(&browser, &cb, "brws", "browserbrowserbrowser1", "127.0.0.1:50000");
    assert_int_equal(flare_ice_set_remote_credentials(browser.a, uf, uf), 0);
    flare_ice_candidate srv = {.type = FLARE_ICE_HOST};
    flare_ipaddr_parse(&srv.addr, "127.0.0.1:4001");
    assert_int_equal(flare_ice_add_remote(browser.a, &srv), 0);
    flare_tstamp now = 0;
    assert_int_equal(flare_ice_start(browser.a, now), 0);
    /* The browser's first check: the server learns the ufrag from it. */
    uint8_t buf[512];
    flare_ipaddr from, to;
    int n = flare_ice_poll_send(browser.a, now, buf, sizeof(buf), &from, &to);
    assert_true(n > 0);
    char got[FLARE_ICE_MAX_CRED + 1];
    assert_int_equal(flare_ice_direct_ufrag(buf, (size_t)n, got, sizeof(got)), (int)strlen(uf));
    assert_string_equal(got, uf);
    assert_int_equal(flare_ice_direct_ufrag(buf, (size_t)n, got, 8), FLARE_ERR_BUFFER_TOO_SMALL);

    flare_ice_settings_default(&cs);
    cs.lite = 1;
    make(&server, &cs, got, got, "127.0.0.1:4001");
    assert_int_equal(flare_ice_start(server.a, now), 0);
    browser.nsocks = 1;
    assert_int_equal(flare_ice_input(server.a, &to, &from, buf, (size_t)n, now), 1);
    run(&browser, &server, &now, 3000);
    assert_int_equal(flare_ice_get_state(browser.a), FLARE_ICE_CONNECTED);
    assert_int_equal(flare_ice_get_state(server.a), FLARE_ICE_CONNECTED);
    assert_false(flare_ice_is_controlling(server.a));
    flare_ipaddr sl, sr;
    assert_int_equal(flare_ice_selected(server.a, &sl, &sr), 0);
    assert_true(flare_ipaddr_equal(&sr, &browser.socks[0]));
    /* Application data is not STUN: handed back to the caller. */
    assert_int_equal(flare_ice_input(server.a, &sl, &sr, (const uint8_t *)"\x16\xfe\xfd", 3, now),
                     0);
    /* The lite server's consent is the browser's checks. */
    run(&browser, &server, &now, 45000);
    assert_int_equal(flare_ice_get_state(server.a), FLARE_ICE_CONNECTED);
    flare_ice_agent_del(browser.a);
    flare_ice_agent_del(server.a);
}

static void test_hostile(void **st)
{
    (void)st;
    flare_prng_seed(&prng, 9);
    flare_ice_settings cfg;
    flare_ice_settings_default(&cfg);
    side s;
    make(&s, &cfg, "ufs1", pa, "198.51.100.1:4000");
    flare_ice_candidate c = {.type = FLARE_ICE_HOST};
    const char *refused[] = {"10.0.0.1:1",    "127.0.0.1:1", "192.168.1.1:1",
                             "169.254.1.1:1", "0.0.0.0:1",   "[::1]:1",
                             "[fe80::1]:1",   "224.0.0.1:1", "8.8.8.8:0"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        flare_ipaddr_parse(&c.addr, refused[i]);
        assert_int_equal(flare_ice_add_remote(s.a, &c), FLARE_ERR_REFUSED);
    }
    /* At most max_remote candidates. */
    for (int i = 0; i < 16; i++) {
        char a[32];
        snprintf(a, sizeof(a), "8.8.%d.8:%d", i, 1000 + i);
        flare_ipaddr_parse(&c.addr, a);
        assert_int_equal(flare_ice_add_remote(s.a, &c), 0);
    }
    assert_int_equal(flare_ice_add_remote(s.a, &c), FLARE_ERR_EXISTS);
    flare_ipaddr_parse(&c.addr, "9.9.9.9:9");
    assert_int_equal(flare_ice_add_remote(s.a, &c), FLARE_ERR_LIMIT);
    /* Checks with a wrong password or username: no answer; and a flood of
     * valid ones is answered at most MAX_RESP at a time. */
    assert_int_equal(flare_ice_set_remote_credentials(s.a, "ufx1", pb), 0);
    flare_ipaddr peer;
    flare_ipaddr_parse(&peer, "8.8.0.8:1000");
    uint8_t req[256], out[512];
    uint8_t txid[12] = {1};
    const char *users[] = {"ufs1:ufx1", "nope:ufx1", "ufs1:ufx1"};
    const char *keys[] = {"wrong-password-wrong-pw", pa, pa};
    for (int k = 0; k < 3; k++) {
        flare_stun_builder b;
        flare_stun_build_init(&b, req, sizeof(req), FLARE_STUN_BINDING, FLARE_STUN_REQUEST, txid);
        flare_stun_add_attr(&b, FLARE_STUN_ATTR_USERNAME, users[k], strlen(users[k]));
        flare_stun_add_u64(&b, FLARE_STUN_ATTR_ICE_CONTROLLING, 1);
        flare_stun_add_integrity(&b, (const uint8_t *)keys[k], strlen(keys[k]));
        flare_stun_add_fingerprint(&b);
        int n = flare_stun_build_finish(&b);
        assert_int_equal(flare_ice_input(s.a, &s.socks[0], &peer, req, (size_t)n, 0), 1);
        flare_ipaddr f, t;
        int got = flare_ice_poll_send(s.a, 0, out, sizeof(out), &f, &t);
        if (k < 2) {
            assert_int_equal(got, 0);
        } else {
            assert_true(got > 0);
            flare_stun_msg m;
            assert_int_equal(flare_stun_parse(&m, out, (size_t)got), 0);
            assert_int_equal(m.cls, FLARE_STUN_SUCCESS);
            assert_int_equal(flare_stun_check_integrity(&m, (const uint8_t *)pa, strlen(pa)), 0);
            flare_ipaddr mapped;
            assert_int_equal(flare_stun_get_addr(&m, FLARE_STUN_ATTR_XOR_MAPPED_ADDRESS, &mapped),
                             0);
            assert_true(flare_ipaddr_equal(&mapped, &peer));
        }
    }
    /* Not STUN (the caller's), and STUN that is not for ICE (consumed). */
    assert_int_equal(flare_ice_input(s.a, &s.socks[0], &peer, (const uint8_t *)"hello", 5, 0), 0);
    assert_int_equal(flare_ice_input(s.a, &s.socks[0], &peer, req, 20, 0), 0);
    flare_stun_builder ib;
    flare_stun_build_init(&ib, req, sizeof(req), FLARE_STUN_BINDING, FLARE_STUN_INDICATION, txid);
    int in = flare_stun_build_finish(&ib);
    assert_int_equal(flare_ice_input(s.a, &s.socks[0], &peer, req, (size_t)in, 0), 1);
    /* Bad arguments. */
    flare_ice_agent *bad;
    assert_int_equal(flare_ice_agent_new(&bad, &cfg, "u", pa, flare_prng_rng(&prng), NULL),
                     FLARE_ERR_INVALID_ARG);
    assert_int_equal(flare_ice_agent_new(&bad, &cfg, "ufrag", "short", flare_prng_rng(&prng), NULL),
                     FLARE_ERR_INVALID_ARG);
    assert_int_equal(flare_ice_agent_new(&bad, &cfg, "uf:x", pa, flare_prng_rng(&prng), NULL),
                     FLARE_ERR_INVALID_ARG);
    flare_ice_agent_del(s.a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pair_up),       cmocka_unit_test(test_pair_up_with_loss),
        cmocka_unit_test(test_role_conflict), cmocka_unit_test(test_lite_webrtc_direct),
        cmocka_unit_test(test_hostile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
