/* A peer that never reads its socket and floods yamux PINGs (each answered
 * with an ACK) cannot grow the victim's memory: on the simulator, whose
 * receive window makes the victim's socket queue grow as on a real network,
 * the victim stops reading above conn_write_high, its queue and heap stay
 * bounded (counted with allocator hooks), and the keepalive it cannot get
 * answered drops the connection. With the marks out of the way the same
 * flood makes the queue grow with the flood (the control case). */
#include <stdlib.h>

#include "support/test.h"

#include "flare/host.h"
#include "flare/sim.h"
#include "flare/yamux.h"
#include "host/host_int.h"
#include "transport/tcp.h"

#define MS FLARE_NS_PER_MS
#define S  FLARE_NS_PER_S

typedef struct victim {
    int closed, close_err;
} victim;

static void on_event(flare_host *h, const flare_host_event *ev, void *user)
{
    victim *v = user;
    (void)h;
    if (ev->type == FLARE_HOST_EV_CONN_CLOSED) {
        v->closed++;
        v->close_err = ev->u.conn.error;
    }
}

static flare_host *make_host(flare_sim *sim, const char *name, const char *ip, uint8_t seedb,
                             const flare_mem *mem, const flare_host_settings *cfg)
{
    flare_test_host_spec sp = {.name = name,
                               .lan = flare_sim_internet(sim),
                               .ip = ip,
                               .link = {.delay = 5 * MS},
                               .seed = {seedb},
                               .cfg = cfg,
                               .mem = mem};
    flare_sim_host *sh;
    flare_host *h;
    assert_int_equal(flare_test_host_make(sim, &sp, &sh, &h), 0);
    return h;
}

/* A block of yamux PING SYN frames, each one asking for an ACK. */
static void ping_frames(uint8_t *b, size_t n)
{
    for (size_t i = 0; i + 12 <= n; i += 12) {
        memset(b + i, 0, 12);
        b[i + 1] = FLARE_YAMUX_TYPE_PING;
        b[i + 3] = FLARE_YAMUX_FLAG_SYN;
        b[i + 11] = (uint8_t)i;
    }
}

typedef struct result {
    size_t flooded;     /* ping bytes the attacker got onto its socket */
    size_t max_pending; /* victim's socket queue, sampled */
    long host_peak;     /* victim host heap peak above its baseline */
    long sim_peak;      /* whole simulator heap peak (both sockets, packets) */
    int paused_seen;    /* the victim paused reading */
    int closed, close_err;
    int resumed; /* resume mode: the victim reads again and answers a ping */
} result;

static void ping_cb(flare_host *h, const flare_peerid *peer, int status, flare_tstamp rtt,
                    void *user)
{
    (void)h;
    (void)peer;
    (void)rtt;
    *(int *)user = status == 0 ? 1 : -1;
}

static flare_conn *victim_conn(flare_host *h)
{
    return h->conns;
}

/* The attacker (an ordinary host whose connection we drive by hand) stops
 * reading its socket and writes encrypted ping frames whenever its own queue
 * is short, for up to `secs` of simulated time. */
static void run_flood(const flare_host_settings *vcfg, size_t total, int secs, int resume,
                      result *r)
{
    flare_test_heap simheap = {0}, vheap = {0};
    flare_mem smem = flare_test_heap_mem(&simheap);
    flare_mem vmem = flare_test_heap_mem(&vheap);
    flare_sim *sim = flare_sim_new(11, &smem);
    flare_host_settings acfg;
    flare_host_settings_default(&acfg);
    acfg.enable_autonat_client = acfg.enable_autonat_server = 0;
    acfg.keepalive_interval = 0; /* its own pings would go unanswered: it does not read */
    flare_host *v = make_host(sim, "victim", "198.51.100.1", 1, &vmem, vcfg);
    flare_host *a = make_host(sim, "attacker", "198.51.100.2", 2, NULL, &acfg);
    victim ve = {0};
    flare_host_set_event_cb(v, on_event, &ve);
    flare_multiaddr ma;
    assert_int_equal(flare_multiaddr_parse(&ma, "/ip4/198.51.100.1/tcp/4001"), 0);
    assert_int_equal(flare_host_listen(v, &ma), 0);
    flare_conn *c = flare_test_dial_ok(sim, a, &ma, 2000);
    assert_non_null(victim_conn(v));
    long base = vheap.bytes;
    flare_io *aio = flare_host_io(a), *vio = flare_host_io(v);
    aio->ops->sock_read_pause(flare__tcp_sock(c), 1);
    static uint8_t pings[60 * 1024];
    ping_frames(pings, sizeof(pings));
    flare_buf wire;
    flare_buf_init(&wire, NULL);
    memset(r, 0, sizeof(*r));
    for (int step = 0; step < secs * 100 && !ve.closed; step++) {
        if (a->conns != c || !flare__tcp_sock(c))
            break; /* the attacker's side went away */
        while (r->flooded < total && aio->ops->sock_pending(flare__tcp_sock(c)) < (256u << 10)) {
            flare_buf_reset(&wire);
            assert_int_equal(c->sec->encrypt(c->sec_st, pings, sizeof(pings), &wire), 0);
            assert_int_equal(aio->ops->sock_write(flare__tcp_sock(c), wire.base, wire.len), 0);
            r->flooded += sizeof(pings);
        }
        flare_sim_run_for(sim, 10 * MS);
        flare_conn *vc = victim_conn(v);
        if (vc && flare__tcp_sock(vc)) {
            size_t p = vio->ops->sock_pending(flare__tcp_sock(vc));
            if (p > r->max_pending)
                r->max_pending = p;
            r->paused_seen |= vc->read_paused;
        }
    }
    if (resume && !ve.closed && a->conns == c) {
        /* A slow reader, not a dead one: once it reads again the victim
         * drains, reads again and answers. */
        aio->ops->sock_read_pause(flare__tcp_sock(c), 0);
        flare_sim_run_for(sim, 2 * S);
        flare_conn *vc = victim_conn(v);
        int pinged = 0;
        assert_int_equal(flare_host_ping(v, flare_host_peerid(a), ping_cb, &pinged), 0);
        flare_sim_run_for(sim, 1 * S);
        r->resumed = vc && !vc->read_paused && !vc->congested && pinged == 1;
    }
    r->closed = ve.closed;
    r->close_err = ve.close_err;
    r->host_peak = vheap.peak - base;
    r->sim_peak = simheap.peak;
    flare_buf_free(&wire);
    flare_host_del(a);
    flare_host_del(v);
    flare_sim_del(sim);
    assert_int_equal(vheap.bytes, 0);
}

static void test_non_reading_flood_bounded(void **state)
{
    (void)state;
    flare_host_settings cfg;
    flare_host_settings_default(&cfg);
    cfg.enable_autonat_client = cfg.enable_autonat_server = 0;
    result r;
    run_flood(&cfg, 64u << 20, 50, 0, &r); /* paused at once, then 30 + 10 s */
    print_message("flooded %zu, victim queue max %zu, host heap peak +%ld, sim heap peak %ld\n",
                  r.flooded, r.max_pending, r.host_peak, r.sim_peak);
    assert_true(r.paused_seen);
    /* Reading stops at twice the mark; one read's worth of ACKs may land
     * after it. */
    assert_true(r.max_pending <= 2 * FLARE__CONN_WRITE_HIGH + 64 * 1024);
    assert_true(r.flooded < (8u << 20)); /* the flood stalled */
    assert_true(r.host_peak < (2 << 20));
    assert_true(r.sim_peak < (12 << 20));
    /* The keepalive it cannot get answered (we do not read) ends it. */
    assert_int_equal(r.closed, 1);
    assert_int_equal(r.close_err, FLARE_ERR_TIMEOUT);
}

/* A peer that stops reading for a while and then reads again: the victim
 * pauses, then resumes once its queue drained, and the connection works. */
static void test_slow_reader_resumes(void **state)
{
    (void)state;
    flare_host_settings cfg;
    flare_host_settings_default(&cfg);
    cfg.enable_autonat_client = cfg.enable_autonat_server = 0;
    result r;
    run_flood(&cfg, 4u << 20, 3, 1, &r);
    assert_true(r.paused_seen);
    assert_int_equal(r.closed, 0);
    assert_true(r.resumed);
}

/* The hard bound: a queue past conn_write_max closes the connection (here
 * set below the high-water mark, so the flood reaches it). */
static void test_hard_bound_closes(void **state)
{
    (void)state;
    flare_host_settings cfg;
    flare_host_settings_default(&cfg);
    cfg.enable_autonat_client = cfg.enable_autonat_server = 0;
    cfg.conn_write_max = 256u << 10;
    result r;
    run_flood(&cfg, 64u << 20, 10, 0, &r);
    assert_int_equal(r.closed, 1);
    assert_int_equal(r.close_err, FLARE_ERR_LIMIT);
    assert_true(r.max_pending <= (256u << 10));
    assert_true(r.flooded < (8u << 20));
}

/* Control: without the marks the victim keeps reading and answering, and
 * its queue grows with the flood. */
static void test_flood_unbounded_without_marks(void **state)
{
    (void)state;
    flare_host_settings cfg;
    flare_host_settings_default(&cfg);
    cfg.enable_autonat_client = cfg.enable_autonat_server = 0;
    cfg.conn_write_high = cfg.conn_write_max = SIZE_MAX / 2;
    result r;
    run_flood(&cfg, 24u << 20, 5, 0, &r);
    print_message("flooded %zu, victim queue max %zu, sim heap peak %ld\n", r.flooded,
                  r.max_pending, r.sim_peak);
    assert_false(r.paused_seen);
    assert_true(r.max_pending > (16u << 20));
    assert_true(r.sim_peak > (16 << 20));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_non_reading_flood_bounded),
        cmocka_unit_test(test_slow_reader_resumes),
        cmocka_unit_test(test_hard_bound_closes),
        cmocka_unit_test(test_flood_unbounded_without_marks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
