/* Allocation-failure sweeps of the host on the simulator: every allocation of
 * the simulator and of the hosts (they share one failing allocator) fails in
 * turn while two hosts connect, identify, echo on a stream and ping, and
 * while a relay reservation, a relayed connection and a DCUtR hole punch run
 * among three, and while a client probes its reachability with AutoNAT
 * (v1 and v2) against three servers. Each run must end without a crash and free everything. */
#include "failmalloc/failmalloc.h"

#include "flare/host.h"
#include "flare/sim.h"
#include "flare/sim_world.h"

#define MS    FLARE_NS_PER_MS
#define ECHO  "/flare/test/echo/1.0.0"
#define HELLO "hello through a failing heap"

/* ---- two hosts: connect, identify, echo, ping ----------------------------------- */

typedef struct client {
    char got[64];
    size_t got_len;
    int eof, closed, pinged, ping_status, events;
    flare_test_dial dial; /* flare_host_del reports a dial still pending */
    int dialing;          /* flare_host_dial accepted the dial */
} client;

static void cl_open(flare_stream *s, int status, void *user)
{
    (void)user;
    if (status == 0 && flare_stream_write(s, (const uint8_t *)HELLO, strlen(HELLO)) >= 0)
        flare_stream_close_write(s);
}

static void cl_data(flare_stream *s, const uint8_t *d, size_t len, void *user)
{
    client *c = user;
    (void)s;
    if (len > sizeof(c->got) - c->got_len)
        len = sizeof(c->got) - c->got_len;
    memcpy(c->got + c->got_len, d, len);
    c->got_len += len;
}

static void cl_eof(flare_stream *s, void *user)
{
    (void)s;
    ((client *)user)->eof = 1;
}

static void cl_close(flare_stream *s, int error, void *user)
{
    (void)s;
    (void)error;
    ((client *)user)->closed = 1;
}

static const flare_stream_cbs client_cbs = {
    .on_open = cl_open, .on_data = cl_data, .on_eof = cl_eof, .on_close = cl_close};

static void on_ping(flare_host *h, const flare_peerid *peer, int status, flare_tstamp rtt,
                    void *user)
{
    client *c = user;
    (void)h;
    (void)peer;
    (void)rtt;
    c->pinged = 1;
    c->ping_status = status;
}

static void count_event(flare_host *h, const flare_host_event *ev, void *user)
{
    (void)h;
    (void)ev;
    ((client *)user)->events++;
}

/* Runs the simulator until *flag is set or ms pass. */
static void run_until(flare_sim *sim, const int *flag, long ms)
{
    for (long t = 0; t < ms && !*flag; t += 50)
        flare_test_run_ms(sim, 50);
}

static int pair_run(flare_sim *sim, flare_host *a, flare_host *b, client *c)
{
    flare_multiaddr ma;
    int rv = flare_test_tcp_addr(&ma, "198.51.100.1", 4001, flare_host_peerid(a));
    flare_test_dial *d = &c->dial;
    if (rv || (rv = flare_host_dial(b, &ma, NULL, flare_test_dial_cb, d)) != 0)
        return rv;
    c->dialing = 1;
    run_until(sim, &d->calls, 3000);
    if (!d->calls || d->status)
        return d->status ? d->status : FLARE_ERR_TIMEOUT;
    flare_stream *s;
    rv = flare_host_new_stream(b, flare_host_peerid(a), ECHO, &client_cbs, c, 0, &s);
    if (rv)
        return rv;
    run_until(sim, &c->closed, 3000);
    if ((rv = flare_host_ping(b, flare_host_peerid(a), on_ping, c)) != 0)
        return rv;
    run_until(sim, &c->pinged, 3000);
    flare_test_run_ms(sim, 500); /* identify, on both sides */
    if (c->got_len != strlen(HELLO) || memcmp(c->got, HELLO, c->got_len) || !c->eof)
        return FLARE_ERR_CLOSED;
    return c->pinged ? c->ping_status : FLARE_ERR_TIMEOUT;
}

static int sc_pair(fm *m, void *ctx)
{
    (void)ctx;
    client c;
    memset(&c, 0, sizeof(c));
    flare_host *a = NULL, *b = NULL;
    flare_sim_host *sa, *sb;
    int rv = FLARE_ERR_NOMEM;
    flare_sim *sim = flare_sim_new(7, &m->mem);
    if (!sim)
        return rv;
    flare_test_host_spec sp = {.name = "a",
                               .lan = flare_sim_internet(sim),
                               .ip = "198.51.100.1",
                               .link = {.delay = 10 * MS},
                               .seed = {1},
                               .on_event = count_event,
                               .user = &c,
                               .listen_port = 4001,
                               .mem = &m->mem};
    if ((rv = flare_test_host_make(sim, &sp, &sa, &a)) == 0) {
        sp.name = "b";
        sp.ip = "198.51.100.2";
        sp.seed[0] = 2;
        sp.listen_port = 0;
        rv = flare_test_host_make(sim, &sp, &sb, &b);
    }
    if (rv == 0)
        rv = flare_host_set_handler(a, ECHO, &flare_test_echo_cbs, NULL, 0);
    if (rv == 0)
        rv = pair_run(sim, a, b, &c);
    flare_host_del(b);
    flare_host_del(a);
    flare_sim_del(sim);
    /* An accepted dial reports exactly once, whatever failed. */
    if (c.dialing && c.dial.calls != 1)
        m->broken = c.dial.calls ? "the dial callback ran twice" : "the dial callback was lost";
    return rv;
}

static void test_pair(void **state)
{
    (void)state;
    fm_result r = fm_sweep("host pair", sc_pair, NULL);
    assert_true(r.allocs > 50);
}

/* ---- three hosts: reservation, relayed connection, hole punch ------------------- */

static int sc_relay_punch(fm *m, void *ctx)
{
    (void)ctx;
    flare_sim_world_settings p;
    flare_sim_world_settings_default(&p);
    p.mem = &m->mem;
    p.delay_a = p.delay_b = p.delay_r = 10 * MS;
    flare_sim_world w;
    int rv = flare_sim_world_setup(&w, &p);
    if (rv == 0) {
        flare_sim_world_run_punch(&w, 10 * FLARE_NS_PER_S);
        rv = w.b.punch_done && !w.b.punch_err && flare_sim_world_direct(&w) ? 0 : FLARE_ERR_TIMEOUT;
    }
    flare_sim_world_free(&w);
    /* The relayed dial reports exactly once, whatever failed. */
    if (w.dial_accepted && w.dial_calls != 1)
        m->broken = w.dial_calls ? "the relayed dial's callback ran twice"
                                 : "the relayed dial's callback was lost";
    return rv;
}

static void test_relay_punch(void **state)
{
    (void)state;
    fm_result r = fm_sweep("host relay+dcutr", sc_relay_punch, NULL);
    assert_true(r.allocs > 100);
}

/* ---- four hosts: AutoNAT probe against three servers ------------------------------ */

typedef struct probe {
    int calls, status;
} probe;

static void on_probe(flare_host *h, int status, void *user)
{
    probe *p = user;
    (void)h;
    p->calls++;
    p->status = status;
}

static int autonat_run(flare_sim *sim, flare_host **hs, probe *pr)
{
    int rv;
    for (int i = 0; i < 3; i++) {
        flare_multiaddr ma;
        char ip[32];
        snprintf(ip, sizeof(ip), "198.51.100.%d", i + 1);
        if ((rv = flare_test_tcp_addr(&ma, ip, 4001, flare_host_peerid(hs[i]))) != 0 ||
            (rv = flare_host_dial(hs[3], &ma, NULL, NULL, NULL)) != 0)
            return rv;
    }
    flare_test_run_ms(sim, 1000);
    if ((rv = flare_host_autonat_probe(hs[3], on_probe, pr)) != 0)
        return rv;
    run_until(sim, &pr->calls, 5000);
    if (!pr->calls)
        return FLARE_ERR_TIMEOUT;
    if (pr->status)
        return pr->status;
    return flare_host_reachability(hs[3], 4) == FLARE_REACH_PUBLIC ? 0 : FLARE_ERR_PROTO;
}

static int sc_autonat(fm *m, void *ctx)
{
    (void)ctx;
    flare_host *hs[4] = {NULL, NULL, NULL, NULL};
    probe pr = {0, 0};
    int rv = FLARE_ERR_NOMEM;
    flare_sim *sim = flare_sim_new(11, &m->mem);
    if (!sim)
        return rv;
    static const char *const ips[4] = {"198.51.100.1", "198.51.100.2", "198.51.100.3",
                                       "198.51.100.10"};
    rv = 0;
    for (int i = 0; i < 4 && rv == 0; i++) {
        flare_sim_host *sh;
        flare_test_host_spec sp = {.name = ips[i],
                                   .lan = flare_sim_internet(sim),
                                   .ip = ips[i],
                                   .link = {.delay = 5 * MS},
                                   .seed = {(uint8_t)(i + 1), 0xa7},
                                   .listen_port = 4001,
                                   .mem = &m->mem};
        rv = flare_test_host_make(sim, &sp, &sh, &hs[i]);
    }
    if (rv == 0)
        rv = autonat_run(sim, hs, &pr);
    for (int i = 0; i < 4; i++)
        flare_host_del(hs[i]);
    flare_sim_del(sim);
    return rv;
}

static void test_autonat(void **state)
{
    (void)state;
    fm_result r = fm_sweep("host autonat", sc_autonat, NULL);
    assert_true(r.allocs > 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pair),
        cmocka_unit_test(test_relay_punch),
        cmocka_unit_test(test_autonat),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
