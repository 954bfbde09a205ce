/* The simulated network, driven only through flare_io (as the host does) and
 * the sim setup API: TCP timing, rate, REUSE, refusals and timeouts, NAT
 * mapping/filtering/timeouts/hairpinning, simultaneous open, hole punching,
 * replay determinism and closing handles inside callbacks. */
#include <stdlib.h>

#include "support/test.h"

#include "flare/sim.h"

#define MS FLARE_NS_PER_MS
#define S  FLARE_NS_PER_S

/* --- recording helpers ------------------------------------------------------ */

typedef struct rec {
    flare_io *io;
    flare_io_sock *s;
    int status, connected, done;
    flare_tstamp t_connect, t_first_rx, t_last_rx;
    uint8_t *rx;
    size_t rx_len;
    int eof, closed, close_reason;
    int echo, close_on_read, abort_on_read;
    const char *hello; /* written on connect */
} rec;

static rec *rec_new(flare_io *io)
{
    rec *r = calloc(1, sizeof(*r));
    r->io = io;
    r->rx = calloc(1, 1 << 20);
    r->status = 1;
    return r;
}

static void rec_del(rec *r)
{
    free(r->rx);
    free(r);
}

static void on_connect(flare_io_sock *s, int status, void *u)
{
    rec *r = u;
    r->status = status;
    r->done = 1;
    r->t_connect = flare_io_now(r->io);
    if (status == 0) {
        r->connected = 1;
        if (r->hello)
            assert_int_equal(r->io->ops->sock_write(s, (const uint8_t *)r->hello, strlen(r->hello)),
                             0);
    } else {
        r->s = NULL;
    }
}

static void on_read(flare_io_sock *s, const uint8_t *d, size_t n, void *u)
{
    rec *r = u;
    if (n == 0) {
        r->eof = 1;
        return;
    }
    if (r->rx_len == 0)
        r->t_first_rx = flare_io_now(r->io);
    r->t_last_rx = flare_io_now(r->io);
    assert_true(r->rx_len + n <= (1 << 20));
    memcpy(r->rx + r->rx_len, d, n);
    r->rx_len += n;
    if (r->echo)
        r->io->ops->sock_write(s, d, n);
    if (r->close_on_read || r->abort_on_read) {
        r->io->ops->sock_close(s, r->abort_on_read);
        r->s = NULL;
    }
}

static void on_close(flare_io_sock *s, int reason, void *u)
{
    rec *r = u;
    r->closed = 1;
    r->close_reason = reason;
    r->s = NULL;
}

static const flare_io_sock_cbs rec_cbs = {on_connect, on_read, on_close, NULL};

typedef struct acc {
    int count;
    rec *r; /* records the accepted connection */
    int close_listener;
    flare_io_listener **lp;
} acc;

static void on_accept(flare_io_listener *l, flare_io_sock *s, void *u)
{
    acc *a = u;
    a->count++;
    a->r->s = s;
    a->r->connected = 1;
    a->r->t_connect = flare_io_now(a->r->io);
    a->r->io->ops->sock_set_cbs(s, &rec_cbs, a->r);
    if (a->close_listener) {
        a->r->io->ops->listener_close(l);
        *a->lp = NULL;
    }
}

static flare_io_listener *listen_on(flare_sim_host *h, const char *a, unsigned flags, acc *ac)
{
    flare_io *io = flare_sim_host_io(h);
    flare_io_listener *l = NULL;
    flare_ipaddr la = flare_test_ip(a);
    assert_int_equal(io->ops->listen(io, &la, flags, on_accept, ac, &l), 0);
    return l;
}

static flare_io_sock *dial(flare_sim_host *h, const char *local, const char *remote, unsigned flags,
                           rec *r)
{
    flare_io *io = flare_sim_host_io(h);
    flare_ipaddr la, ra = flare_test_ip(remote);
    if (local)
        la = flare_test_ip(local);
    assert_int_equal(io->ops->dial(io, local ? &la : NULL, &ra, flags, &rec_cbs, r, &r->s), 0);
    return r->s;
}

/* --- TCP between public hosts ----------------------------------------------- */

static void test_tcp_echo_timing(void **state)
{
    flare_sim *sim = flare_sim_new(1, NULL);
    flare_sim_lan *net = flare_sim_internet(sim);
    flare_sim_host *a = flare_test_sim_host(sim, "a", net, "1.0.0.1", 10 * MS);
    flare_sim_host *b = flare_test_sim_host(sim, "b", net, "2.0.0.1", 15 * MS);
    rec *ra = rec_new(flare_sim_host_io(a)), *rb = rec_new(flare_sim_host_io(b));
    acc ab = {.r = rb};
    rb->echo = 1;
    ra->hello = "hello";
    flare_io_listener *l = listen_on(b, "0.0.0.0:4000", 0, &ab);
    dial(a, NULL, "2.0.0.1:4000", 0, ra);
    assert_int_equal(ra->done, 0); /* never from inside dial */
    assert_int_equal(flare_sim_run_until_idle(sim, 10 * S), 0);
    /* one way = 10 + 15 ms: connect after one RTT, echo after two */
    assert_int_equal(ra->status, 0);
    assert_true(ra->t_connect == 50 * MS);
    assert_int_equal(ab.count, 1);
    assert_true(rb->t_connect == 75 * MS);
    assert_int_equal(ra->rx_len, 5);
    assert_memory_equal(ra->rx, "hello", 5);
    assert_true(ra->t_first_rx == 100 * MS);

    flare_ipaddr lo, re;
    flare_io *io = flare_sim_host_io(a);
    io->ops->sock_addrs(ra->s, &lo, &re);
    assert_true(flare_ipaddr_equal(&re, &(flare_ipaddr){4, {2, 0, 0, 1}, 4000}));
    assert_int_equal(lo.ip[0], 1);
    assert_true(lo.port >= 49152);
    /* shutdown: the peer reads EOF; closes then free everything */
    io->ops->sock_shutdown(ra->s);
    flare_sim_run_for(sim, 1 * S);
    assert_int_equal(rb->eof, 1);
    assert_int_equal(ra->eof, 0);
    io->ops->sock_close(ra->s, 0);
    flare_io *iob = flare_sim_host_io(b);
    iob->ops->sock_close(rb->s, 0);
    iob->ops->listener_close(l);
    assert_int_equal(flare_sim_run_until_idle(sim, 100 * S), 0);
    rec_del(ra);
    rec_del(rb);
    flare_sim_del(sim);
}

static void test_tcp_rate_limit(void **state)
{
    flare_sim *sim = flare_sim_new(2, NULL);
    flare_sim_lan *net = flare_sim_internet(sim);
    flare_sim_host *a = flare_test_sim_host(sim, "a", net, "1.0.0.1", 0);
    flare_sim_host *b = flare_test_sim_host(sim, "b", net, "2.0.0.1", 5 * MS);
    flare_sim_link lim = {.rate = 100000};
    flare_sim_link_set(a, &lim);
    rec *ra = rec_new(flare_sim_host_io(a)), *rb = rec_new(flare_sim_host_io(b));
    acc ab = {.r = rb};
    listen_on(b, "2.0.0.1:80", 0, &ab);
    dial(a, NULL, "2.0.0.1:80", 0, ra);
    flare_sim_run_until_idle(sim, S);
    assert_int_equal(ra->status, 0);
    static uint8_t blob[100000];
    for (size_t i = 0; i < sizeof(blob); i++)
        blob[i] = (uint8_t)(i * 7);
    flare_io *io = flare_sim_host_io(a);
    flare_tstamp t0 = flare_sim_now(sim);
    assert_int_equal(io->ops->sock_write(ra->s, blob, sizeof(blob)), 0);
    assert_true(io->ops->sock_pending(ra->s) > 90000);
    flare_sim_run_for(sim, 500 * MS);
    size_t half = io->ops->sock_pending(ra->s);
    assert_true(half > 40000 && half < 60000);
    flare_sim_run_until_idle(sim, 10 * S);
    assert_int_equal(io->ops->sock_pending(ra->s), 0);
    assert_int_equal(rb->rx_len, sizeof(blob));
    assert_memory_equal(rb->rx, blob, sizeof(blob));
    /* 100000 bytes + 13 headers at 100 kB/s, then 5 ms to b */
    flare_tstamp want = t0 + (100000 + 13 * FLARE_SIM_TCP_HDR) * 10000ULL + 5 * MS;
    assert_true(rb->t_last_rx >= want - MS && rb->t_last_rx <= want + MS);
    rec_del(ra);
    rec_del(rb);
    flare_sim_del(sim);
}

static void test_tcp_reuse_and_refused(void **state)
{
    flare_sim *sim = flare_sim_new(3, NULL);
    flare_sim_lan *net = flare_sim_internet(sim);
    flare_sim_host *a = flare_test_sim_host(sim, "a", net, "1.0.0.1", 10 * MS);
    flare_sim_host *b = flare_test_sim_host(sim, "b", net, "2.0.0.1", 10 * MS);
    flare_io *ioa = flare_sim_host_io(a);
    rec *ra = rec_new(ioa), *rb = rec_new(flare_sim_host_io(b)), *rx = rec_new(ioa);
    acc aa = {.r = rec_new(ioa)}, ab = {.r = rb};
    listen_on(a, "0.0.0.0:4001", FLARE_IO_REUSE, &aa);
    listen_on(b, "0.0.0.0:4002", 0, &ab);
    /* A dial from the listening port works with REUSE ... */
    dial(a, "0.0.0.0:4001", "2.0.0.1:4002", FLARE_IO_REUSE, ra);
    /* ... and not without it; nor a second listener without REUSE. */
    flare_ipaddr la = flare_test_ip("0.0.0.0:4001"), rem = flare_test_ip("2.0.0.1:4002");
    flare_io_sock *s2;
    flare_io_listener *l2;
    assert_int_equal(ioa->ops->dial(ioa, &la, &rem, 0, &rec_cbs, rx, &s2), FLARE_ERR_ADDR_IN_USE);
    assert_int_equal(ioa->ops->listen(ioa, &la, 0, on_accept, &aa, &l2), FLARE_ERR_ADDR_IN_USE);
    flare_ipaddr v6 = flare_test_ip("[2001:db8::1]:5");
    assert_int_equal(ioa->ops->dial(ioa, NULL, &v6, 0, &rec_cbs, rx, &s2), FLARE_ERR_UNREACHABLE);
    flare_ipaddr notmine = flare_test_ip("9.9.9.9:1");
    assert_int_equal(ioa->ops->listen(ioa, &notmine, 0, on_accept, &aa, &l2),
                     FLARE_ERR_INVALID_ARG);
    flare_sim_run_until_idle(sim, 10 * S);
    assert_int_equal(ra->status, 0);
    assert_int_equal(ab.count, 1);
    flare_ipaddr lo, re;
    flare_sim_host_io(b)->ops->sock_addrs(rb->s, &lo, &re);
    assert_int_equal(re.port, 4001);
    assert_int_equal(aa.count, 0);
    /* Refused: RST after one RTT. */
    rec *rr = rec_new(ioa);
    flare_tstamp t0 = flare_sim_now(sim);
    dial(a, NULL, "2.0.0.1:9999", 0, rr);
    flare_sim_run_until_idle(sim, 100 * S);
    assert_int_equal(rr->status, FLARE_ERR_REFUSED);
    assert_true(rr->t_connect - t0 == 40 * MS);
    rec_del(aa.r);
    rec_del(ra);
    rec_del(rb);
    rec_del(rx);
    rec_del(rr);
    flare_sim_del(sim);
}

/* --- read pause, receive window, on_drain ------------------------------------ */

#define PW_TOTAL (4u << 20)

typedef struct pw {
    flare_io *io; /* the receiver's */
    flare_io_sock *s;
    size_t got;
    size_t pause_at; /* pause inside on_read once got passes this (0: never) */
    int drains, reads_paused, paused;
} pw;

static void pw_read(flare_io_sock *s, const uint8_t *d, size_t n, void *u)
{
    pw *p = u;
    if (p->paused)
        p->reads_paused++;
    for (size_t i = 0; i < n; i++)
        if (d[i] != (uint8_t)((p->got + i) % 251))
            fail_msg("byte %zu differs", p->got + i);
    p->got += n;
    if (p->pause_at && p->got >= p->pause_at) {
        p->pause_at = 0;
        p->paused = 1;
        p->io->ops->sock_read_pause(s, 1);
    }
}

static void pw_accept(flare_io_listener *l, flare_io_sock *s, void *u)
{
    pw *p = u;
    p->s = s;
    static const flare_io_sock_cbs cbs = {NULL, pw_read, NULL, NULL};
    p->io->ops->sock_set_cbs(s, &cbs, p);
    p->paused = 1;
    p->io->ops->sock_read_pause(s, 1); /* before any byte arrived */
}

static void pw_drain(flare_io_sock *s, void *u)
{
    pw *p = u;
    p->drains++;
}

static void test_tcp_read_pause_window(void **state)
{
    flare_sim *sim = flare_sim_new(5, NULL);
    flare_sim_lan *net = flare_sim_internet(sim);
    flare_sim_host *a = flare_test_sim_host(sim, "a", net, "1.0.0.1", 10 * MS);
    flare_sim_host *b = flare_test_sim_host(sim, "b", net, "2.0.0.1", 10 * MS);
    flare_io *ioa = flare_sim_host_io(a), *iob = flare_sim_host_io(b);
    pw rcv = {.io = iob, .pause_at = 2u << 20}, snd = {0};
    flare_io_listener *l;
    flare_ipaddr la = flare_test_ip("2.0.0.1:80");
    assert_int_equal(iob->ops->listen(iob, &la, 0, pw_accept, &rcv, &l), 0);
    static const flare_io_sock_cbs scbs = {NULL, NULL, NULL, pw_drain};
    flare_io_sock *s;
    assert_int_equal(ioa->ops->dial(ioa, NULL, &la, 0, &scbs, &snd, &s), 0);
    ioa->ops->sock_set_lowat(s, 65536);
    uint8_t *blob = malloc(PW_TOTAL);
    for (size_t i = 0; i < PW_TOTAL; i++)
        blob[i] = (uint8_t)(i % 251);
    assert_int_equal(ioa->ops->sock_write(s, blob, PW_TOTAL), 0);
    flare_sim_run_for(sim, 2 * S);
    /* The paused receiver consumed nothing: one window is in flight, the
     * rest waits in the sender's queue. */
    assert_non_null(rcv.s);
    assert_int_equal(rcv.got, 0);
    assert_int_equal(ioa->ops->sock_pending(s), PW_TOTAL - FLARE_SIM_RCVBUF);
    assert_int_equal(snd.drains, 0);
    /* Resume: reading starts from the loop, not inside the call. */
    rcv.paused = 0;
    iob->ops->sock_read_pause(rcv.s, 0);
    assert_int_equal(rcv.got, 0);
    flare_sim_run_for(sim, 2 * S);
    /* Paused again inside on_read at 2 MiB: nothing more is delivered. */
    assert_true(rcv.got >= 2u << 20 && rcv.got < PW_TOTAL);
    size_t at = rcv.got;
    assert_true(ioa->ops->sock_pending(s) > 0);
    assert_int_equal(snd.drains, 0);
    flare_sim_run_for(sim, 2 * S);
    assert_int_equal(rcv.got, at);
    rcv.paused = 0;
    iob->ops->sock_read_pause(rcv.s, 0);
    flare_sim_run_until_idle(sim, 10 * S);
    assert_int_equal(rcv.got, PW_TOTAL);
    assert_int_equal(rcv.reads_paused, 0);
    assert_int_equal(ioa->ops->sock_pending(s), 0);
    assert_int_equal(snd.drains, 1); /* fell to the low-water mark once */
    /* A REUSE listener owns its address unless the newcomer shares it. */
    flare_io_listener *r1, *r2;
    flare_ipaddr ra = flare_test_ip("2.0.0.1:4001");
    assert_int_equal(iob->ops->listen(iob, &ra, FLARE_IO_REUSE, pw_accept, &rcv, &r1), 0);
    assert_int_equal(iob->ops->listen(iob, &ra, FLARE_IO_REUSE, pw_accept, &rcv, &r2),
                     FLARE_ERR_ADDR_IN_USE);
    assert_int_equal(
        iob->ops->listen(iob, &ra, FLARE_IO_REUSE | FLARE_IO_SHARE, pw_accept, &rcv, &r2), 0);
    free(blob);
    flare_sim_del(sim);
}

/* --- NAT scenarios ------------------------------------------------------------ */

typedef struct urec {
    flare_io *io;
    int count;
    flare_ipaddr from[32];
    int reply; /* echo back */
    int close_in_cb;
    flare_io_udp **self;
} urec;

static void on_udp(flare_io_udp *u, const flare_ipaddr *from, const uint8_t *d, size_t n,
                   void *user)
{
    urec *r = user;
    if (r->count < 32)
        r->from[r->count] = *from;
    r->count++;
    if (r->reply)
        r->io->ops->udp_send(u, from, d, n);
    if (r->close_in_cb) {
        r->io->ops->udp_close(u);
        *r->self = NULL;
    }
}

static flare_io_udp *ubind(flare_sim_host *h, const char *a, urec *r)
{
    flare_io *io = flare_sim_host_io(h);
    flare_io_udp *u = NULL;
    flare_ipaddr la = flare_test_ip(a);
    r->io = io;
    assert_int_equal(io->ops->udp_bind(io, &la, 0, on_udp, r, &u), 0);
    return u;
}

static void usend(flare_sim_host *h, flare_io_udp *u, const char *to)
{
    flare_ipaddr t = flare_test_ip(to);
    assert_int_equal(flare_sim_host_io(h)->ops->udp_send(u, &t, (const uint8_t *)"x", 1), 0);
}

/* Jitter reorders packets and loss delays segments: TCP still delivers every
 * byte in order; UDP on a rate-limited link tail-drops beyond the queue. */
static void test_tcp_jitter_loss_udp_queue(void **state)
{
    flare_sim *sim = flare_sim_new(5, NULL);
    flare_sim_set_syn_timeout(sim, 30 * S);
    flare_sim_lan *net = flare_sim_internet(sim);
    flare_sim_host *a = flare_test_sim_host(sim, "a", net, "2001:db8::1", 0);
    flare_sim_host *b = flare_test_sim_host(sim, "b", net, "2001:db8::2", 0);
    flare_sim_link bad = {.delay = 10 * MS, .jitter = 30 * MS, .loss = 0.2};
    flare_sim_link_set(a, &bad);
    rec *ra = rec_new(flare_sim_host_io(a)), *rb = rec_new(flare_sim_host_io(b));
    acc ab = {.r = rb};
    listen_on(b, "[::]:443", 0, &ab);
    dial(a, NULL, "[2001:db8::2]:443", 0, ra);
    flare_sim_run_until_idle(sim, 60 * S);
    assert_int_equal(ra->status, 0);
    flare_io *io = flare_sim_host_io(a);
    uint8_t chunk[1000];
    for (int i = 0; i < 50; i++) {
        for (size_t j = 0; j < sizeof(chunk); j++)
            chunk[j] = (uint8_t)(i * 31 + j);
        assert_int_equal(io->ops->sock_write(ra->s, chunk, sizeof(chunk)), 0);
        flare_sim_run_for(sim, MS);
    }
    io->ops->sock_shutdown(ra->s);
    flare_sim_run_until_idle(sim, 120 * S);
    assert_int_equal(rb->rx_len, 50000);
    for (int i = 0; i < 50; i++)
        for (size_t j = 0; j < sizeof(chunk); j++)
            assert_int_equal(rb->rx[i * 1000 + j], (uint8_t)(i * 31 + j));
    assert_int_equal(rb->eof, 1);

    flare_sim_link slow = {.rate = 10000, .queue = 1000};
    flare_sim_link_set(b, &slow);
    urec ru = {0}, rv = {0};
    ubind(a, "[::]:9", &ru);
    flare_io_udp *u = ubind(b, "[2001:db8::2]:9", &rv);
    uint8_t dgram[100] = {0};
    flare_ipaddr to = flare_test_ip("[2001:db8::1]:9");
    for (int i = 0; i < 20; i++)
        assert_int_equal(flare_sim_host_io(b)->ops->udp_send(u, &to, dgram, sizeof(dgram)), 0);
    flare_ipaddr v4 = flare_test_ip("1.2.3.4:9");
    assert_int_equal(flare_sim_host_io(b)->ops->udp_send(u, &v4, dgram, 1), FLARE_ERR_INVALID_ARG);
    flare_sim_run_until_idle(sim, 200 * S);
    /* 128 wire bytes each: the 9th finds 1024 > 1000 bytes queued */
    assert_true(ru.count >= 6 && ru.count <= 8); /* a's link still loses 20 % */
    /* A queue of 0 is none (not a default size): only a datagram that
     * finds the link idle goes out. */
    slow.queue = 0;
    flare_sim_link_set(b, &slow);
    ru.count = 0;
    for (int i = 0; i < 20; i++)
        assert_int_equal(flare_sim_host_io(b)->ops->udp_send(u, &to, dgram, sizeof(dgram)), 0);
    flare_sim_run_until_idle(sim, 400 * S);
    assert_true(ru.count <= 1);
    rec_del(ra);
    rec_del(rb);
    flare_sim_del(sim);
}

typedef struct natnet {
    flare_sim *sim;
    flare_sim_nat *nat;
    flare_sim_host *in, *in2, *s1, *s2;
} natnet;

/* in (10.0.0.2) and in2 (10.0.0.3) behind nat (5.0.0.1); servers s1, s2. */
static void natnet_make(natnet *n, uint64_t seed, const flare_sim_nat_config *cfg)
{
    n->sim = flare_sim_new(seed, NULL);
    flare_sim_lan *net = flare_sim_internet(n->sim);
    flare_sim_lan *lan = flare_sim_lan_new(n->sim, "lan");
    n->nat = flare_sim_nat_new(n->sim, "nat", net, "5.0.0.1", lan, "10.0.0.1", cfg);
    assert_non_null(n->nat);
    flare_sim_link l = {.delay = 5 * MS};
    flare_sim_nat_link_set(n->nat, &l);
    n->in = flare_test_sim_host(n->sim, "in", lan, "10.0.0.2", 1 * MS);
    n->in2 = flare_test_sim_host(n->sim, "in2", lan, "10.0.0.3", 1 * MS);
    n->s1 = flare_test_sim_host(n->sim, "s1", net, "1.0.0.1", 10 * MS);
    n->s2 = flare_test_sim_host(n->sim, "s2", net, "2.0.0.1", 10 * MS);
}

static void test_nat_mapping_types(void **state)
{
    for (int mt = FLARE_SIM_EI; mt <= FLARE_SIM_APD; mt++) {
        flare_sim_nat_config cfg;
        flare_sim_nat_config_default(&cfg);
        cfg.mapping = (flare_sim_nat_behavior)mt;
        natnet n;
        natnet_make(&n, 10, &cfg);
        urec r1 = {0}, r1b = {0}, r2 = {0}, ri = {0};
        ubind(n.s1, "0.0.0.0:7", &r1);
        ubind(n.s1, "0.0.0.0:8", &r1b);
        ubind(n.s2, "0.0.0.0:7", &r2);
        flare_io_udp *u = ubind(n.in, "0.0.0.0:5000", &ri);
        usend(n.in, u, "1.0.0.1:7");
        usend(n.in, u, "1.0.0.1:8");
        usend(n.in, u, "2.0.0.1:7");
        flare_sim_run_until_idle(n.sim, 10 * S);
        assert_int_equal(r1.count + r1b.count + r2.count, 3);
        flare_ipaddr ext = flare_test_ip("5.0.0.1");
        assert_true(flare_ipaddr_same_ip(&r1.from[0], &ext));
        uint16_t p1 = r1.from[0].port, p1b = r1b.from[0].port, p2 = r2.from[0].port;
        assert_int_equal(p1, 5000); /* port preservation for the first mapping */
        if (mt == FLARE_SIM_EI) {
            assert_true(p1b == p1 && p2 == p1);
        } else if (mt == FLARE_SIM_AD) {
            assert_true(p1b == p1 && p2 != p1);
        } else {
            assert_true(p1b != p1 && p2 != p1 && p2 != p1b);
        }
        flare_sim_nat_stats st;
        flare_sim_nat_stats_get(n.nat, &st);
        assert_int_equal(st.mappings_active, mt == FLARE_SIM_EI ? 1 : mt == FLARE_SIM_AD ? 2 : 3);
        flare_sim_del(n.sim);
    }
}

static void test_nat_port_preservation(void **state)
{
    flare_sim_nat_config cfg;
    flare_sim_nat_config_default(&cfg);
    natnet n;
    natnet_make(&n, 11, &cfg);
    urec r1 = {0}, ri = {0}, ri2 = {0};
    ubind(n.s1, "0.0.0.0:7", &r1);
    flare_io_udp *u = ubind(n.in, "0.0.0.0:5000", &ri);
    flare_io_udp *u2 = ubind(n.in2, "0.0.0.0:5000", &ri2);
    usend(n.in, u, "1.0.0.1:7");
    flare_sim_run_for(n.sim, 100 * MS);
    usend(n.in2, u2, "1.0.0.1:7");
    flare_sim_run_until_idle(n.sim, 10 * S);
    assert_int_equal(r1.count, 2);
    assert_int_equal(r1.from[0].port, 5000);
    assert_true(r1.from[1].port != 5000 && r1.from[1].port >= 1024); /* taken: random */
    flare_sim_del(n.sim);
}

static void test_nat_filtering_types(void **state)
{
    for (int ft = FLARE_SIM_EI; ft <= FLARE_SIM_APD; ft++) {
        flare_sim_nat_config cfg;
        flare_sim_nat_config_default(&cfg);
        cfg.filtering = (flare_sim_nat_behavior)ft;
        natnet n;
        natnet_make(&n, 12, &cfg);
        urec r1 = {0}, r1b = {0}, r2 = {0}, ri = {0};
        flare_io_udp *u1 = ubind(n.s1, "0.0.0.0:7", &r1);
        flare_io_udp *u1b = ubind(n.s1, "0.0.0.0:8", &r1b);
        flare_io_udp *u2 = ubind(n.s2, "0.0.0.0:7", &r2);
        flare_io_udp *u = ubind(n.in, "0.0.0.0:5000", &ri);
        /* Unsolicited before any outbound packet: always dropped. */
        usend(n.s1, u1, "5.0.0.1:5000");
        flare_sim_run_for(n.sim, S);
        assert_int_equal(ri.count, 0);
        usend(n.in, u, "1.0.0.1:7");
        flare_sim_run_for(n.sim, S);
        usend(n.s1, u1, "5.0.0.1:5000");
        flare_sim_run_for(n.sim, S);
        assert_int_equal(ri.count, 1);
        usend(n.s1, u1b, "5.0.0.1:5000");
        flare_sim_run_for(n.sim, S);
        assert_int_equal(ri.count, ft == FLARE_SIM_APD ? 1 : 2);
        usend(n.s2, u2, "5.0.0.1:5000");
        flare_sim_run_for(n.sim, S);
        assert_int_equal(ri.count, ft == FLARE_SIM_EI ? 3 : ft == FLARE_SIM_AD ? 2 : 1);
        flare_sim_nat_stats st;
        flare_sim_nat_stats_get(n.nat, &st);
        assert_int_equal(st.dropped_filter, 1 + (ft == FLARE_SIM_EI   ? 0
                                                 : ft == FLARE_SIM_AD ? 1
                                                                      : 2));
        flare_sim_del(n.sim);
    }
}

static void test_nat_mapping_timeout(void **state)
{
    flare_sim_nat_config cfg;
    flare_sim_nat_config_default(&cfg);
    cfg.udp_timeout = 30 * S;
    cfg.port_preservation = 0;
    natnet n;
    natnet_make(&n, 13, &cfg);
    urec r1 = {0}, ri = {0};
    flare_io_udp *u1 = ubind(n.s1, "0.0.0.0:7", &r1);
    flare_io_udp *u = ubind(n.in, "0.0.0.0:5000", &ri);
    usend(n.in, u, "1.0.0.1:7");
    flare_sim_run_for(n.sim, S);
    assert_int_equal(r1.count, 1);
    char ext[64];
    flare_ipaddr_to_string(&r1.from[0], ext, sizeof(ext));
    assert_true(r1.from[0].port != 5000); /* no port preservation */
    flare_sim_run_for(n.sim, 10 * S);     /* inbound does not refresh a UDP mapping */
    usend(n.s1, u1, ext);
    flare_sim_run_for(n.sim, 25 * S);
    assert_int_equal(ri.count, 1);
    usend(n.s1, u1, ext); /* 36 s after the last outbound packet */
    flare_sim_run_for(n.sim, S);
    assert_int_equal(ri.count, 1);
    flare_sim_nat_stats st;
    flare_sim_nat_stats_get(n.nat, &st);
    assert_int_equal(st.mappings_expired, 1);
    assert_int_equal(st.mappings_active, 0);
    usend(n.in, u, "1.0.0.1:7");
    flare_sim_run_for(n.sim, S);
    assert_int_equal(r1.count, 2);
    assert_true(r1.from[1].port != r1.from[0].port); /* a new mapping */
    flare_sim_del(n.sim);
}

static void test_nat_hairpinning(void **state)
{
    for (int hp = 0; hp <= 1; hp++) {
        flare_sim_nat_config cfg;
        flare_sim_nat_config_default(&cfg);
        cfg.hairpinning = hp;
        cfg.filtering = FLARE_SIM_EI;
        natnet n;
        natnet_make(&n, 14, &cfg);
        urec r1 = {0}, ri = {0}, ri2 = {0};
        ubind(n.s1, "0.0.0.0:7", &r1);
        flare_io_udp *u = ubind(n.in, "0.0.0.0:5000", &ri);
        flare_io_udp *u2 = ubind(n.in2, "0.0.0.0:6000", &ri2);
        usend(n.in2, u2, "1.0.0.1:7"); /* opens 5.0.0.1:6000 */
        flare_sim_run_for(n.sim, S);
        usend(n.in, u, "5.0.0.1:6000");
        flare_sim_run_for(n.sim, S);
        assert_int_equal(ri2.count, hp);
        if (hp) {
            /* the source is in's outside address, not its private one */
            assert_true(flare_ipaddr_equal(&ri2.from[0], &(flare_ipaddr){4, {5, 0, 0, 1}, 5000}));
            flare_sim_nat_stats st;
            flare_sim_nat_stats_get(n.nat, &st);
            assert_int_equal(st.hairpinned, 1);
        }
        flare_sim_del(n.sim);
    }
}

static void test_nat_tcp_syn_drop_and_rst(void **state)
{
    for (int rst = 0; rst <= 1; rst++) {
        flare_sim_nat_config cfg;
        flare_sim_nat_config_default(&cfg);
        cfg.syn_rst = rst;
        natnet n;
        natnet_make(&n, 15, &cfg);
        acc ai = {.r = rec_new(flare_sim_host_io(n.in))};
        listen_on(n.in, "0.0.0.0:4000", 0, &ai);
        rec *r = rec_new(flare_sim_host_io(n.s1));
        dial(n.s1, NULL, "5.0.0.1:4000", 0, r);
        flare_sim_run_until_idle(n.sim, 100 * S);
        assert_int_equal(r->status, rst ? FLARE_ERR_REFUSED : FLARE_ERR_TIMEOUT);
        assert_true(r->t_connect == (rst ? 30 * MS : 5 * S));
        assert_int_equal(ai.count, 0);
        flare_sim_nat_stats st;
        flare_sim_nat_stats_get(n.nat, &st);
        assert_int_equal(st.rst_sent, rst ? 1 : 0);
        assert_int_equal(st.dropped_filter, rst ? 1 : 3); /* SYN at 0, 1 s, 3 s */
        rec_del(r);
        rec_del(ai.r);
        flare_sim_del(n.sim);
    }
}

/* A private host reaches a public server through two NATs in a row. */
static void test_double_nat_and_firewall(void **state)
{
    flare_sim *sim = flare_sim_new(16, NULL);
    flare_sim_lan *net = flare_sim_internet(sim);
    flare_sim_lan *isp = flare_sim_lan_new(sim, "isp"), *home = flare_sim_lan_new(sim, "home");
    flare_sim_lan *corp = flare_sim_lan_new(sim, "corp");
    assert_non_null(flare_sim_nat_new(sim, "cgnat", net, "6.0.0.1", isp, "100.64.0.1", NULL));
    assert_non_null(flare_sim_nat_new(sim, "home", isp, "100.64.0.2", home, "192.168.1.1", NULL));
    assert_null(flare_sim_nat_new(sim, "dup", isp, "100.64.0.3", home, "192.168.1.9", NULL));
    flare_sim_nat_config fw;
    flare_sim_nat_config_default(&fw);
    fw.firewall_only = 1;
    assert_non_null(flare_sim_nat_new(sim, "fw", net, "7.0.0.1", corp, "7.0.1.1", &fw));
    flare_sim_host *h = flare_test_sim_host(sim, "h", home, "192.168.1.2", MS);
    flare_sim_host *c = flare_test_sim_host(sim, "c", corp, "7.0.1.2", MS);
    flare_sim_host *s = flare_test_sim_host(sim, "s", net, "1.0.0.1", MS);
    urec rs = {0}, rh = {0}, rc = {0};
    rs.reply = 1;
    flare_io_udp *us = ubind(s, "0.0.0.0:7", &rs);
    flare_io_udp *uh = ubind(h, "0.0.0.0:5000", &rh);
    flare_io_udp *uc = ubind(c, "0.0.0.0:5001", &rc);
    usend(h, uh, "1.0.0.1:7");
    usend(c, uc, "1.0.0.1:7");
    flare_sim_run_until_idle(sim, 10 * S);
    assert_int_equal(rs.count, 2);
    int hf = rs.from[0].ip[0] == 6 ? 0 : 1; /* both arrive at the same time */
    assert_true(flare_ipaddr_equal(&rs.from[hf], &(flare_ipaddr){4, {6, 0, 0, 1}, 5000}));
    assert_true(flare_ipaddr_equal(&rs.from[1 - hf], &(flare_ipaddr){4, {7, 0, 1, 2}, 5001}));
    assert_int_equal(rh.count, 1);
    assert_int_equal(rc.count, 1);
    /* The firewall does not translate but still filters (APD). */
    usend(s, us, "7.0.1.2:5002");
    flare_sim_run_until_idle(sim, 10 * S);
    assert_int_equal(rc.count, 1);
    flare_sim_del(sim);
}

/* --- hole punching ------------------------------------------------------------ */

typedef struct punch {
    flare_sim *sim;
    flare_sim_nat *na, *nb;
    flare_sim_host *a, *b, *s;
} punch;

static void punch_make(punch *p, uint64_t seed, const flare_sim_nat_config *cfg)
{
    p->sim = flare_sim_new(seed, NULL);
    flare_sim_lan *net = flare_sim_internet(p->sim);
    flare_sim_lan *la = flare_sim_lan_new(p->sim, "lan-a"),
                  *lb = flare_sim_lan_new(p->sim, "lan-b");
    p->na = flare_sim_nat_new(p->sim, "nat-a", net, "5.0.0.1", la, "10.0.0.1", cfg);
    p->nb = flare_sim_nat_new(p->sim, "nat-b", net, "6.0.0.1", lb, "10.0.0.1", cfg);
    flare_sim_link l = {.delay = 10 * MS};
    flare_sim_nat_link_set(p->na, &l);
    l.delay = 20 * MS;
    flare_sim_nat_link_set(p->nb, &l);
    p->a = flare_test_sim_host(p->sim, "a", la, "10.0.0.2", MS);
    p->b = flare_test_sim_host(p->sim, "b", lb, "10.0.0.2", MS);
    p->s = flare_test_sim_host(p->sim, "s", net, "1.0.0.1", 10 * MS);
}

static void test_tcp_simultaneous_open(void **state)
{
    for (int filt = FLARE_SIM_EI; filt <= FLARE_SIM_APD; filt += 2) {
        flare_sim_nat_config cfg;
        flare_sim_nat_config_default(&cfg);
        cfg.filtering = (flare_sim_nat_behavior)filt;
        punch p;
        punch_make(&p, 20, &cfg);
        flare_io *ioa = flare_sim_host_io(p.a), *iob = flare_sim_host_io(p.b);
        acc aa = {.r = rec_new(ioa)}, ab = {.r = rec_new(iob)};
        listen_on(p.a, "0.0.0.0:4001", FLARE_IO_REUSE, &aa);
        listen_on(p.b, "0.0.0.0:4002", FLARE_IO_REUSE, &ab);
        rec *ra = rec_new(ioa), *rb = rec_new(iob);
        ra->hello = "from a";
        rb->hello = "from b";
        dial(p.a, "0.0.0.0:4001", "6.0.0.1:4002", FLARE_IO_REUSE, ra);
        dial(p.b, "0.0.0.0:4002", "5.0.0.1:4001", FLARE_IO_REUSE, rb);
        flare_sim_run_until_idle(p.sim, 20 * S);
        assert_int_equal(ra->status, 0);
        assert_int_equal(rb->status, 0);
        assert_int_equal(aa.count + ab.count, 0); /* one connection, no accepts */
        assert_int_equal(ra->rx_len, 6);
        assert_memory_equal(ra->rx, "from b", 6);
        assert_memory_equal(rb->rx, "from a", 6);
        /* Both SYNs crossed within the first RTT (no retransmission). */
        assert_true(ra->t_connect < 200 * MS && rb->t_connect < 200 * MS);
        rec_del(ra);
        rec_del(rb);
        rec_del(aa.r);
        rec_del(ab.r);
        flare_sim_del(p.sim);
    }
}

/* The SYN of a arrives at b's REUSE listener before b dials: accepted; b's own
 * dial on that 4-tuple then fails with ADDR_IN_USE. */
static void test_tcp_listener_accepts_variant(void **state)
{
    flare_sim *sim = flare_sim_new(21, NULL);
    flare_sim_lan *net = flare_sim_internet(sim);
    flare_sim_host *a = flare_test_sim_host(sim, "a", net, "1.0.0.1", 10 * MS);
    flare_sim_host *b = flare_test_sim_host(sim, "b", net, "2.0.0.1", 10 * MS);
    acc aa = {.r = rec_new(flare_sim_host_io(a))}, ab = {.r = rec_new(flare_sim_host_io(b))};
    listen_on(a, "0.0.0.0:4001", FLARE_IO_REUSE, &aa);
    listen_on(b, "0.0.0.0:4002", FLARE_IO_REUSE, &ab);
    rec *ra = rec_new(flare_sim_host_io(a)), *rb = rec_new(flare_sim_host_io(b));
    dial(a, "0.0.0.0:4001", "2.0.0.1:4002", FLARE_IO_REUSE, ra);
    flare_sim_run_for(sim, 100 * MS);
    dial(b, "0.0.0.0:4002", "1.0.0.1:4001", FLARE_IO_REUSE, rb);
    assert_int_equal(rb->done, 0);
    flare_sim_run_until_idle(sim, 20 * S);
    assert_int_equal(ra->status, 0);
    assert_int_equal(ab.count, 1);
    assert_int_equal(rb->status, FLARE_ERR_ADDR_IN_USE);
    assert_int_equal(aa.count, 0);
    rec_del(ra);
    rec_del(rb);
    rec_del(aa.r);
    rec_del(ab.r);
    flare_sim_del(sim);
}

/* A SYN dropped by the peer's NAT is retransmitted after 1 s and punches
 * through once the peer's own SYN opened its NAT. */
static void test_tcp_syn_retransmit_punches(void **state)
{
    punch p;
    punch_make(&p, 22, NULL);
    rec *ra = rec_new(flare_sim_host_io(p.a)), *rb = rec_new(flare_sim_host_io(p.b));
    dial(p.a, "0.0.0.0:4001", "6.0.0.1:4002", FLARE_IO_REUSE, ra);
    flare_sim_run_for(p.sim, 500 * MS); /* a's first SYN is filtered by nat-b */
    dial(p.b, "0.0.0.0:4002", "5.0.0.1:4001", FLARE_IO_REUSE, rb);
    flare_sim_run_until_idle(p.sim, 20 * S);
    assert_int_equal(ra->status, 0);
    assert_int_equal(rb->status, 0);
    flare_sim_nat_stats st;
    flare_sim_nat_stats_get(p.nb, &st);
    assert_int_equal(st.dropped_filter, 1);
    rec_del(ra);
    rec_del(rb);
    flare_sim_del(p.sim);
}

typedef struct trace_count {
    int n;
} trace_count;

static void count_trace(const flare_sim_trace_rec *r, void *u)
{
    char line[256];
    assert_true(flare_sim_trace_format(r, line, sizeof(line)) > 0);
    ((trace_count *)u)->n++;
}

/* Both hosts learn their outside address from s, then punch. */
static int udp_punch(uint64_t seed, flare_sim_nat_behavior mapping, uint64_t *hash, double loss,
                     flare_tstamp jitter)
{
    flare_sim_nat_config cfg;
    flare_sim_nat_config_default(&cfg);
    cfg.mapping = mapping;
    cfg.port_preservation = 0;
    punch p;
    punch_make(&p, seed, &cfg);
    trace_count tc = {0};
    flare_sim_set_trace(p.sim, count_trace, &tc);
    flare_sim_link l = {.delay = 10 * MS, .loss = loss, .jitter = jitter};
    flare_sim_link_set(p.a, &l);
    urec rs = {0}, ra = {0}, rb = {0};
    ubind(p.s, "0.0.0.0:3478", &rs);
    flare_io_udp *ua = ubind(p.a, "0.0.0.0:5000", &ra);
    flare_io_udp *ub = ubind(p.b, "0.0.0.0:5000", &rb);
    usend(p.a, ua, "1.0.0.1:3478");
    usend(p.b, ub, "1.0.0.1:3478");
    flare_sim_run_for(p.sim, S);
    int learned = rs.count >= 2;
    if (learned) {
        char ea[64], eb[64];
        int ia = flare_ipaddr_same_ip(&rs.from[0], &(flare_ipaddr){4, {5, 0, 0, 1}, 0}) ? 0 : 1;
        flare_ipaddr_to_string(&rs.from[ia], ea, sizeof(ea));
        flare_ipaddr_to_string(&rs.from[1 - ia], eb, sizeof(eb));
        for (int i = 0; i < 5; i++) {
            usend(p.a, ua, eb);
            usend(p.b, ub, ea);
            flare_sim_run_for(p.sim, 100 * MS);
        }
    }
    flare_sim_run_until_idle(p.sim, 100 * S);
    assert_true(tc.n >= 4); /* the trace callback saw the packets */
    if (hash)
        *hash = flare_sim_trace_hash(p.sim);
    flare_sim_del(p.sim);
    return ra.count > 0 && rb.count > 0;
}

static void test_udp_hole_punch(void **state)
{
    assert_true(udp_punch(30, FLARE_SIM_EI, NULL, 0, 0));   /* cone NATs */
    assert_false(udp_punch(30, FLARE_SIM_APD, NULL, 0, 0)); /* symmetric NATs */
}

static void test_replay_determinism(void **state)
{
    uint64_t h1, h2, h3;
    udp_punch(40, FLARE_SIM_EI, &h1, 0.3, 5 * MS);
    udp_punch(40, FLARE_SIM_EI, &h2, 0.3, 5 * MS);
    udp_punch(41, FLARE_SIM_EI, &h3, 0.3, 5 * MS);
    assert_true(h1 == h2);
    assert_true(h1 != h3);
}

/* --- lifetimes ------------------------------------------------------------------ */

typedef struct tstate {
    flare_io *io;
    int fired;
    flare_io_timer *t;
} tstate;

static void on_timer_del(flare_io_timer *t, void *u)
{
    tstate *ts = u;
    ts->fired++;
    ts->io->ops->timer_del(t);
    ts->t = NULL;
}

static void on_timer_rearm(flare_io_timer *t, void *u)
{
    tstate *ts = u;
    if (++ts->fired < 3)
        ts->io->ops->timer_start(t, flare_io_now(ts->io) + S);
}

static void test_close_in_callbacks(void **state)
{
    flare_sim *sim = flare_sim_new(50, NULL);
    flare_sim_lan *net = flare_sim_internet(sim);
    flare_sim_host *a = flare_test_sim_host(sim, "a", net, "1.0.0.1", 10 * MS);
    flare_sim_host *b = flare_test_sim_host(sim, "b", net, "2.0.0.1", 10 * MS);
    flare_io *ioa = flare_sim_host_io(a), *iob = flare_sim_host_io(b);
    /* timers: delete inside the callback; re-arm inside the callback */
    tstate t1 = {ioa, 0, NULL}, t2 = {ioa, 0, NULL};
    flare_io_timer *rt;
    assert_int_equal(ioa->ops->timer_new(ioa, on_timer_del, &t1, &t1.t), 0);
    assert_int_equal(ioa->ops->timer_new(ioa, on_timer_rearm, &t2, &rt), 0);
    ioa->ops->timer_start(t1.t, 2 * S);
    ioa->ops->timer_start(rt, S);
    /* listener closed inside accept; b closes the socket inside on_read */
    flare_io_listener *l = NULL;
    acc ab = {.r = rec_new(iob), .close_listener = 1, .lp = &l};
    ab.r->close_on_read = 1;
    l = listen_on(b, "0.0.0.0:80", 0, &ab);
    rec *ra = rec_new(ioa);
    ra->hello = "ping";
    dial(a, NULL, "2.0.0.1:80", 0, ra);
    flare_sim_run_for(sim, S / 2);
    assert_null(l);
    assert_int_equal(ab.r->rx_len, 4);
    /* b closed with nothing in flight: a reads EOF; more data from a -> RST */
    assert_int_equal(ra->eof, 1);
    ioa->ops->sock_write(ra->s, (const uint8_t *)"more", 4);
    flare_sim_run_for(sim, S / 2);
    assert_int_equal(ra->closed, 1);
    assert_int_equal(ra->close_reason, FLARE_ERR_RESET);
    /* abort inside on_read: the peer sees a reset */
    rec *rc = rec_new(ioa), *rd = rec_new(iob);
    acc ad = {.r = rd};
    rd->abort_on_read = 1;
    rc->hello = "x";
    listen_on(b, "0.0.0.0:81", 0, &ad);
    dial(a, NULL, "2.0.0.1:81", 0, rc);
    /* udp: close inside the receive callback */
    urec ur = {0};
    flare_io_udp *uu = ubind(b, "0.0.0.0:53", &ur);
    ur.close_in_cb = 1;
    ur.self = &uu;
    urec ua = {0};
    flare_io_udp *uau = ubind(a, "0.0.0.0:53", &ua);
    usend(a, uau, "2.0.0.1:53");
    usend(a, uau, "2.0.0.1:53");
    /* a socket closed before its dial finished: no callback ever */
    rec *re = rec_new(ioa);
    dial(a, NULL, "2.0.0.1:81", 0, re);
    ioa->ops->sock_close(re->s, 0);
    flare_sim_run_until_idle(sim, 100 * S);
    assert_int_equal(rc->closed, 1);
    assert_int_equal(rc->close_reason, FLARE_ERR_RESET);
    assert_int_equal(ur.count, 1);
    assert_null(uu);
    assert_int_equal(re->done, 0);
    assert_int_equal(t1.fired, 1);
    assert_int_equal(t2.fired, 3);
    ioa->ops->timer_del(rt);
    rec_del(ra);
    rec_del(ab.r);
    rec_del(rc);
    rec_del(rd);
    rec_del(re);
    flare_sim_del(sim); /* frees open sockets and listeners (ASan checks) */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcp_echo_timing),
        cmocka_unit_test(test_tcp_rate_limit),
        cmocka_unit_test(test_tcp_reuse_and_refused),
        cmocka_unit_test(test_tcp_read_pause_window),
        cmocka_unit_test(test_tcp_jitter_loss_udp_queue),
        cmocka_unit_test(test_nat_mapping_types),
        cmocka_unit_test(test_nat_port_preservation),
        cmocka_unit_test(test_nat_filtering_types),
        cmocka_unit_test(test_nat_mapping_timeout),
        cmocka_unit_test(test_nat_hairpinning),
        cmocka_unit_test(test_nat_tcp_syn_drop_and_rst),
        cmocka_unit_test(test_double_nat_and_firewall),
        cmocka_unit_test(test_tcp_simultaneous_open),
        cmocka_unit_test(test_tcp_listener_accepts_variant),
        cmocka_unit_test(test_tcp_syn_retransmit_punches),
        cmocka_unit_test(test_udp_hole_punch),
        cmocka_unit_test(test_replay_determinism),
        cmocka_unit_test(test_close_in_callbacks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
