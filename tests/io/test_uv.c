/* libuv driver over loopback: listen/dial/echo, backpressure, IPv6, errors,
 * REUSE dials from a listen port, TCP simultaneous open, closing inside
 * callbacks, RST, timers, UDP and leak-free teardown. Every test has a
 * watchdog and stops by itself. */
#include "support/test.h"

#include <signal.h>
#include <stdlib.h>

#include "flare/uvio.h"
#include "support/uv_env.h"

typedef flare_test_uv env; /* support/uv_env.h */

static void env_init(env *e)
{
    assert_int_equal(flare_test_uv_init(e), 0);
}

/* Runs until a test calls uv_stop or nothing is left; fails on the watchdog. */
static void env_run(env *e)
{
    uv_run(&e->loop, UV_RUN_DEFAULT);
    assert_false(e->timed_out);
}

/* Tears down: every handle of the driver must close and the loop must end
 * empty (uv_loop_close fails with EBUSY otherwise). */
static void env_free(env *e)
{
    assert_int_equal(flare_test_uv_free(e), 0);
}

static flare_ipaddr lo4(uint16_t port)
{
    flare_ipaddr a;
    flare_ipaddr_v4(&a, 127, 0, 0, 1, port);
    return a;
}

static flare_ipaddr lo6(uint16_t port)
{
    flare_ipaddr a;
    memset(&a, 0, sizeof(a));
    a.family = 6;
    a.ip[15] = 1;
    a.port = port;
    return a;
}

static flare_io_listener *listen_on(env *e, flare_ipaddr a, unsigned flags, flare_io_accept_cb cb,
                                    void *user, flare_ipaddr *bound)
{
    flare_io_listener *l = NULL;
    assert_int_equal(e->io->ops->listen(e->io, &a, flags, cb, user, &l), 0);
    assert_int_equal(e->io->ops->listener_addr(l, bound), 0);
    return l;
}

/* --- echo ----------------------------------------------------------------- */

typedef struct echo {
    env *e;
    flare_io_listener *l;
    flare_io_sock *srv, *cli;
    flare_ipaddr laddr;
    int in_dial, connected, srv_eof, cli_eof, srv_closed;
    uint8_t got[64];
    size_t ngot;
} echo;

static void srv_read(flare_io_sock *s, const uint8_t *d, size_t n, void *user)
{
    echo *x = user;
    flare_io *io = x->e->io;
    if (n == 0) {
        x->srv_eof = 1;
        io->ops->sock_close(s, 0); /* graceful: the client sees EOF */
        x->srv_closed = 1;
        return;
    }
    assert_int_equal(io->ops->sock_write(s, d, n), 0);
}

static void srv_close(flare_io_sock *s, int reason, void *user)
{
    fail_msg("server on_close %d", reason);
}

static const flare_io_sock_cbs srv_cbs = {NULL, srv_read, srv_close, NULL};

static void echo_accept(flare_io_listener *l, flare_io_sock *s, void *user)
{
    echo *x = user;
    assert_null(x->srv);
    x->srv = s;
    x->e->io->ops->sock_set_cbs(s, &srv_cbs, x);
}

static void cli_connect(flare_io_sock *s, int status, void *user)
{
    echo *x = user;
    flare_io *io = x->e->io;
    assert_false(x->in_dial);
    assert_int_equal(status, 0);
    x->connected = 1;
    flare_ipaddr loc, rem;
    assert_int_equal(io->ops->sock_addrs(s, &loc, &rem), 0);
    assert_true(flare_ipaddr_equal(&rem, &x->laddr));
    assert_true(flare_ipaddr_same_ip(&loc, &x->laddr));
    assert_int_not_equal(loc.port, 0);
    assert_int_equal(io->ops->sock_write(s, (const uint8_t *)"hello ", 6), 0);
    assert_int_equal(io->ops->sock_write(s, (const uint8_t *)"world", 5), 0);
}

static void cli_read(flare_io_sock *s, const uint8_t *d, size_t n, void *user)
{
    echo *x = user;
    flare_io *io = x->e->io;
    if (n == 0) {
        x->cli_eof = 1;
        io->ops->sock_close(s, 0);
        uv_stop(&x->e->loop);
        return;
    }
    assert_true(x->ngot + n <= sizeof(x->got));
    memcpy(x->got + x->ngot, d, n);
    x->ngot += n;
    if (x->ngot == 11) {
        assert_memory_equal(x->got, "hello world", 11);
        io->ops->sock_shutdown(s);
        /* writing after shutdown is a state error */
        assert_int_equal(io->ops->sock_write(s, d, 1), FLARE_ERR_STATE);
    }
}

static void cli_close(flare_io_sock *s, int reason, void *user)
{
    fail_msg("client on_close %d", reason);
}

static const flare_io_sock_cbs cli_cbs = {cli_connect, cli_read, cli_close, NULL};

static void run_echo(flare_ipaddr where)
{
    env e;
    echo x;
    env_init(&e);
    memset(&x, 0, sizeof(x));
    x.e = &e;
    x.l = listen_on(&e, where, 0, echo_accept, &x, &x.laddr);
    assert_int_not_equal(x.laddr.port, 0);
    assert_true(flare_ipaddr_same_ip(&x.laddr, &where));
    x.in_dial = 1;
    assert_int_equal(e.io->ops->dial(e.io, NULL, &x.laddr, 0, &cli_cbs, &x, &x.cli), 0);
    x.in_dial = 0;
    assert_false(x.connected); /* never inside the call */
    env_run(&e);
    assert_true(x.connected && x.srv_eof && x.cli_eof && x.srv_closed);
    e.io->ops->listener_close(x.l);
    env_free(&e);
}

static void test_echo_v4(void **state)
{
    run_echo(lo4(0));
}

static int have_ipv6(void)
{
    env e;
    env_init(&e);
    flare_ipaddr a = lo6(0);
    flare_io_listener *l = NULL;
    int r = e.io->ops->listen(e.io, &a, 0, echo_accept, NULL, &l);
    if (r == 0)
        e.io->ops->listener_close(l);
    env_free(&e);
    return r == 0;
}

static void test_echo_v6(void **state)
{
    if (!have_ipv6())
        skip();
    run_echo(lo6(0));
}

/* --- listen --------------------------------------------------------------- */

static void nop_accept(flare_io_listener *l, flare_io_sock *s, void *user)
{
    flare_io *io = user;
    io->ops->sock_close(s, 1);
}

static void test_listen(void **state)
{
    env e;
    env_init(&e);
    flare_io *io = e.io;
    flare_ipaddr a = lo4(0), b, c;
    flare_io_listener *l = listen_on(&e, a, 0, nop_accept, io, &b);
    assert_int_equal(b.family, 4);
    assert_memory_equal(b.ip, a.ip, 4);
    assert_int_not_equal(b.port, 0);
    /* the port is taken: a second bind without REUSE fails synchronously */
    flare_io_listener *l2 = NULL;
    assert_int_equal(io->ops->listen(io, &b, 0, nop_accept, io, &l2), FLARE_ERR_ADDR_IN_USE);
    assert_null(l2);
    /* REUSE (for dials from the port) does not let a second listener in
     * silently: that takes FLARE_IO_SHARE. */
    flare_io_listener *r1 = listen_on(&e, lo4(0), FLARE_IO_REUSE, nop_accept, io, &c);
    assert_int_equal(io->ops->listen(io, &c, FLARE_IO_REUSE, nop_accept, io, &l2),
                     FLARE_ERR_ADDR_IN_USE);
    assert_null(l2);
    flare_ipaddr any = c;
    memset(any.ip, 0, sizeof(any.ip)); /* 0.0.0.0 overlaps 127.0.0.1 */
    assert_int_equal(io->ops->listen(io, &any, FLARE_IO_REUSE, nop_accept, io, &l2),
                     FLARE_ERR_ADDR_IN_USE);
    assert_int_equal(io->ops->listen(io, &c, FLARE_IO_REUSE | FLARE_IO_SHARE, nop_accept, io, &l2),
                     0);
    /* bad arguments */
    flare_ipaddr bad = {0};
    assert_int_equal(io->ops->listen(io, &bad, 0, nop_accept, io, &l2), FLARE_ERR_INVALID_ARG);
    assert_int_equal(io->ops->listen(io, &a, 0, NULL, io, &l2), FLARE_ERR_INVALID_ARG);
    flare_io_sock *s;
    assert_int_equal(io->ops->dial(io, NULL, &bad, 0, &cli_cbs, NULL, &s), FLARE_ERR_INVALID_ARG);
    flare_ipaddr six = lo6(1);
    assert_int_equal(io->ops->dial(io, &six, &b, 0, &cli_cbs, NULL, &s), FLARE_ERR_INVALID_ARG);
    io->ops->listener_close(l);
    io->ops->listener_close(r1);
    /* l2 is left open: teardown closes it */
    env_free(&e);
}

/* --- dial errors ---------------------------------------------------------- */

typedef struct dialres {
    env *e;
    int in_dial, status, calls;
} dialres;

static void res_connect(flare_io_sock *s, int status, void *user)
{
    dialres *r = user;
    assert_false(r->in_dial);
    r->status = status;
    r->calls++;
    uv_stop(&r->e->loop);
}

static const flare_io_sock_cbs res_cbs = {res_connect, NULL, NULL, NULL};

static void test_refused(void **state)
{
    env e;
    env_init(&e);
    flare_ipaddr b;
    flare_io_listener *l = listen_on(&e, lo4(0), 0, nop_accept, e.io, &b);
    e.io->ops->listener_close(l); /* the port is now closed */
    dialres r = {&e, 1, 1, 0};
    flare_io_sock *s;
    assert_int_equal(e.io->ops->dial(e.io, NULL, &b, 0, &res_cbs, &r, &s), 0);
    r.in_dial = 0;
    env_run(&e);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.status, FLARE_ERR_REFUSED);
    env_free(&e);
}

/* bind() fails inside dial: reported through on_connect, later. */
static void test_dial_bind_error_deferred(void **state)
{
    env e;
    env_init(&e);
    flare_io *io = e.io;
    flare_ipaddr b, c;
    flare_io_listener *l = listen_on(&e, lo4(0), 0, nop_accept, io, &b);
    flare_io_listener *l2 = listen_on(&e, lo4(0), 0, nop_accept, io, &c);
    dialres r = {&e, 1, 1, 0};
    flare_io_sock *s, *s2;
    assert_int_equal(io->ops->dial(io, &b, &c, 0, &res_cbs, &r, &s), 0);
    /* a second failing dial closed before its report: no callback at all */
    dialres r2 = {&e, 0, 1, 0};
    assert_int_equal(io->ops->dial(io, &b, &c, 0, &res_cbs, &r2, &s2), 0);
    io->ops->sock_close(s2, 0);
    assert_int_equal(r.calls, 0);
    r.in_dial = 0;
    env_run(&e);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.status, FLARE_ERR_ADDR_IN_USE);
    assert_int_equal(r2.calls, 0);
    io->ops->listener_close(l);
    io->ops->listener_close(l2);
    env_free(&e);
}

/* --- REUSE: dial from the listen port ------------------------------------- */

typedef struct reuse {
    env *e;
    flare_ipaddr a, b;
    int connected, accepted;
    uint16_t accepted_from;
} reuse;

static void reuse_accept(flare_io_listener *l, flare_io_sock *s, void *user)
{
    reuse *x = user;
    flare_ipaddr rem;
    assert_int_equal(x->e->io->ops->sock_addrs(s, NULL, &rem), 0);
    x->accepted_from = rem.port;
    x->accepted++;
    x->e->io->ops->sock_close(s, 0);
}

static void reuse_connect(flare_io_sock *s, int status, void *user)
{
    reuse *x = user;
    assert_int_equal(status, 0);
    flare_ipaddr loc;
    assert_int_equal(x->e->io->ops->sock_addrs(s, &loc, NULL), 0);
    assert_true(flare_ipaddr_equal(&loc, &x->a));
    x->connected = 1;
}

static void reuse_read(flare_io_sock *s, const uint8_t *d, size_t n, void *user)
{
    reuse *x = user;
    assert_int_equal(n, 0); /* the acceptor closes at once */
    x->e->io->ops->sock_close(s, 0);
    uv_stop(&x->e->loop);
}

static const flare_io_sock_cbs reuse_cbs = {reuse_connect, reuse_read, cli_close, NULL};

static void test_dial_from_listen_port(void **state)
{
    env e;
    reuse x;
    env_init(&e);
    memset(&x, 0, sizeof(x));
    x.e = &e;
    flare_io_listener *la = listen_on(&e, lo4(0), FLARE_IO_REUSE, nop_accept, e.io, &x.a);
    flare_io_listener *lb = listen_on(&e, lo4(0), 0, reuse_accept, &x, &x.b);
    flare_io_sock *s;
    assert_int_equal(e.io->ops->dial(e.io, &x.a, &x.b, FLARE_IO_REUSE, &reuse_cbs, &x, &s), 0);
    env_run(&e);
    assert_true(x.connected);
    assert_int_equal(x.accepted, 1);
    assert_int_equal(x.accepted_from, x.a.port);
    e.io->ops->listener_close(la);
    e.io->ops->listener_close(lb);
    env_free(&e);
}

/* --- TCP simultaneous open ------------------------------------------------ */

typedef struct side {
    struct simo *m;
    int idx;
    flare_ipaddr addr;
    flare_io_listener *l;
    flare_io_sock *dial, *conn;
    int dial_status, dial_done, nconn, sent;
    char got[16];
    size_t ngot;
} side;

typedef struct simo {
    env *e;
    side s[2];
    int finished;
} simo;

static void simo_maybe_send(simo *m)
{
    flare_io *io = m->e->io;
    if (!m->s[0].dial_done || !m->s[1].dial_done || !m->s[0].conn || !m->s[1].conn)
        return;
    for (int i = 0; i < 2; i++) {
        if (m->s[i].sent)
            continue;
        m->s[i].sent = 1;
        const char *msg = i == 0 ? "from-A" : "from-B";
        assert_int_equal(io->ops->sock_write(m->s[i].conn, (const uint8_t *)msg, 6), 0);
    }
}

static void simo_read(flare_io_sock *s, const uint8_t *d, size_t n, void *user)
{
    side *sd = user;
    assert_int_not_equal(n, 0);
    assert_true(sd->ngot + n <= 6);
    memcpy(sd->got + sd->ngot, d, n);
    sd->ngot += n;
    if (sd->ngot == 6) {
        assert_memory_equal(sd->got, sd->idx == 0 ? "from-B" : "from-A", 6);
        if (++sd->m->finished == 2)
            uv_stop(&sd->m->e->loop);
    }
}

static void simo_connect(flare_io_sock *s, int status, void *user)
{
    side *sd = user;
    sd->dial_done = 1;
    sd->dial_status = status;
    if (status == 0) {
        sd->conn = s;
        sd->nconn++;
    } else {
        sd->dial = NULL; /* gone */
    }
    simo_maybe_send(sd->m);
}

static void simo_close(flare_io_sock *s, int reason, void *user)
{
    fail_msg("simultaneous open: on_close %d", reason);
}

static const flare_io_sock_cbs simo_cbs = {simo_connect, simo_read, simo_close, NULL};

static void simo_accept(flare_io_listener *l, flare_io_sock *s, void *user)
{
    side *sd = user;
    sd->m->e->io->ops->sock_set_cbs(s, &simo_cbs, sd);
    sd->conn = s;
    sd->nconn++;
    simo_maybe_send(sd->m);
}

static void test_simultaneous_open(void **state)
{
    env e;
    simo m;
    env_init(&e);
    flare_io *io = e.io;
    memset(&m, 0, sizeof(m));
    m.e = &e;
    for (int i = 0; i < 2; i++) {
        m.s[i].m = &m;
        m.s[i].idx = i;
        m.s[i].l = listen_on(&e, lo4(0), FLARE_IO_REUSE, simo_accept, &m.s[i], &m.s[i].addr);
    }
    for (int i = 0; i < 2; i++)
        assert_int_equal(io->ops->dial(io, &m.s[i].addr, &m.s[1 - i].addr, FLARE_IO_REUSE,
                                       &simo_cbs, &m.s[i], &m.s[i].dial),
                         0);
    env_run(&e);
    int fails = 0;
    for (int i = 0; i < 2; i++) {
        side *sd = &m.s[i];
        assert_int_equal(sd->nconn, 1); /* exactly one connection per side */
        if (sd->dial_status != 0) {
            /* the other side's SYN reached our listener first */
            assert_int_equal(sd->dial_status, FLARE_ERR_ADDR_IN_USE);
            fails++;
        }
        flare_ipaddr loc, rem;
        assert_int_equal(io->ops->sock_addrs(sd->conn, &loc, &rem), 0);
        assert_true(flare_ipaddr_equal(&loc, &sd->addr));
        assert_true(flare_ipaddr_equal(&rem, &m.s[1 - i].addr));
    }
    assert_true(fails <= 1);
    print_message("simultaneous open: %s\n", fails ? "one listener accepted" : "both connects");
    for (int i = 0; i < 2; i++) {
        io->ops->sock_close(m.s[i].conn, 0);
        io->ops->listener_close(m.s[i].l);
    }
    env_free(&e);
}

/* --- large transfer with backpressure ------------------------------------- */

#define BIG_TOTAL (8u << 20)
#define BIG_CHUNK (64u << 10)
#define BIG_HIGH  (256u << 10)

typedef struct big {
    env *e;
    flare_io_sock *cli;
    flare_io_timer *t;
    size_t sent, recvd, max_pending;
    int saw_pending, eof;
} big;

static uint8_t pat(size_t i)
{
    return (uint8_t)((i * 7) % 251);
}

static void big_fill(big *b)
{
    flare_io *io = b->e->io;
    static uint8_t chunk[BIG_CHUNK];
    while (b->sent < BIG_TOTAL && io->ops->sock_pending(b->cli) < BIG_HIGH) {
        size_t n = BIG_TOTAL - b->sent < BIG_CHUNK ? BIG_TOTAL - b->sent : BIG_CHUNK;
        for (size_t i = 0; i < n; i++)
            chunk[i] = pat(b->sent + i);
        assert_int_equal(io->ops->sock_write(b->cli, chunk, n), 0);
        b->sent += n;
    }
    size_t p = io->ops->sock_pending(b->cli);
    if (p > b->max_pending)
        b->max_pending = p;
    if (p > 0)
        b->saw_pending = 1;
}

static void big_tick(flare_io_timer *t, void *user)
{
    big *b = user;
    flare_io *io = b->e->io;
    big_fill(b);
    if (b->sent < BIG_TOTAL)
        io->ops->timer_start(t, io->ops->now(io) + FLARE_NS_PER_MS);
    else
        io->ops->sock_shutdown(b->cli);
}

static void big_srv_read(flare_io_sock *s, const uint8_t *d, size_t n, void *user)
{
    big *b = user;
    if (n == 0) {
        b->eof = 1;
        b->e->io->ops->sock_close(s, 0);
        return;
    }
    for (size_t i = 0; i < n; i++)
        if (d[i] != pat(b->recvd + i))
            fail_msg("byte %zu differs", b->recvd + i);
    b->recvd += n;
}

static const flare_io_sock_cbs big_srv_cbs = {NULL, big_srv_read, srv_close, NULL};

static void big_accept(flare_io_listener *l, flare_io_sock *s, void *user)
{
    big *b = user;
    b->e->io->ops->sock_set_cbs(s, &big_srv_cbs, b);
}

static void big_connect(flare_io_sock *s, int status, void *user)
{
    big *b = user;
    assert_int_equal(status, 0);
    big_fill(b);
    b->e->io->ops->timer_start(b->t, 0);
}

static void big_cli_read(flare_io_sock *s, const uint8_t *d, size_t n, void *user)
{
    big *b = user;
    assert_int_equal(n, 0);
    b->e->io->ops->sock_close(s, 0);
    uv_stop(&b->e->loop);
}

static const flare_io_sock_cbs big_cli_cbs = {big_connect, big_cli_read, cli_close, NULL};

static void test_large_transfer(void **state)
{
    env e;
    big b;
    env_init(&e);
    flare_io *io = e.io;
    memset(&b, 0, sizeof(b));
    b.e = &e;
    flare_ipaddr a;
    flare_io_listener *l = listen_on(&e, lo4(0), 0, big_accept, &b, &a);
    assert_int_equal(io->ops->timer_new(io, big_tick, &b, &b.t), 0);
    assert_int_equal(io->ops->dial(io, NULL, &a, 0, &big_cli_cbs, &b, &b.cli), 0);
    env_run(&e);
    assert_int_equal(b.sent, BIG_TOTAL);
    assert_int_equal(b.recvd, BIG_TOTAL);
    assert_true(b.eof);
    assert_true(b.saw_pending);
    assert_true(b.max_pending < BIG_HIGH + BIG_CHUNK);
    io->ops->timer_del(b.t);
    io->ops->listener_close(l);
    env_free(&e);
}

/* --- read pause and on_drain ---------------------------------------------- */

#define PD_TOTAL (24u << 20)
#define PD_LOWAT 65536

typedef struct pd {
    env *e;
    flare_io_sock *srv, *cli;
    flare_io_timer *t;
    size_t recvd, pending_paused, pause_at;
    int paused, reads_paused, drains, phase, eof;
} pd;

static void pd_srv_read(flare_io_sock *s, const uint8_t *d, size_t n, void *user)
{
    pd *p = user;
    flare_io *io = p->e->io;
    if (p->paused)
        p->reads_paused++;
    if (n == 0) {
        p->eof = 1;
        io->ops->sock_close(s, 0);
        uv_stop(&p->e->loop);
        return;
    }
    for (size_t i = 0; i < n; i++)
        if (d[i] != pat(p->recvd + i))
            fail_msg("byte %zu differs", p->recvd + i);
    p->recvd += n;
    if (p->pause_at && p->recvd >= p->pause_at) {
        /* Pausing inside on_read: no further read until resumed. */
        p->pause_at = 0;
        p->paused = 1;
        io->ops->sock_read_pause(s, 1);
        io->ops->timer_start(p->t, io->ops->now(io) + 300 * FLARE_NS_PER_MS);
    }
}

static void pd_accept(flare_io_listener *l, flare_io_sock *s, void *user)
{
    pd *p = user;
    static const flare_io_sock_cbs cbs = {NULL, pd_srv_read, srv_close, NULL};
    p->srv = s;
    p->e->io->ops->sock_set_cbs(s, &cbs, p);
    p->paused = 1;
    p->e->io->ops->sock_read_pause(s, 1); /* before the first read */
}

static void pd_tick(flare_io_timer *t, void *user)
{
    pd *p = user;
    flare_io *io = p->e->io;
    if (p->phase == 0) {
        /* Paused since accept: nothing read, the writer's queue is stuck. */
        assert_non_null(p->srv);
        assert_int_equal(p->recvd, 0);
        p->pending_paused = io->ops->sock_pending(p->cli);
        assert_int_equal(p->drains, 0);
    }
    p->phase++;
    p->paused = 0;
    io->ops->sock_read_pause(p->srv, 0);
    io->ops->sock_read_pause(p->srv, 0); /* twice is harmless */
}

static void pd_drain(flare_io_sock *s, void *user)
{
    pd *p = user;
    p->drains++;
    assert_true(p->e->io->ops->sock_pending(s) <= PD_LOWAT);
    p->e->io->ops->sock_shutdown(s);
}

static void pd_connect(flare_io_sock *s, int status, void *user)
{
    pd *p = user;
    flare_io *io = p->e->io;
    assert_int_equal(status, 0);
    uint8_t *buf = malloc(PD_TOTAL);
    for (size_t i = 0; i < PD_TOTAL; i++)
        buf[i] = pat(i);
    assert_int_equal(io->ops->sock_write(s, buf, PD_TOTAL), 0);
    free(buf);
    io->ops->timer_start(p->t, io->ops->now(io) + 500 * FLARE_NS_PER_MS);
}

static void test_read_pause_drain(void **state)
{
    env e;
    pd p;
    env_init(&e);
    flare_io *io = e.io;
    memset(&p, 0, sizeof(p));
    p.e = &e;
    p.pause_at = PD_TOTAL / 2;
    flare_ipaddr a;
    flare_io_listener *l = listen_on(&e, lo4(0), 0, pd_accept, &p, &a);
    assert_int_equal(io->ops->timer_new(io, pd_tick, &p, &p.t), 0);
    static const flare_io_sock_cbs ccbs = {pd_connect, NULL, cli_close, pd_drain};
    assert_int_equal(io->ops->dial(io, NULL, &a, 0, &ccbs, &p, &p.cli), 0);
    io->ops->sock_set_lowat(p.cli, PD_LOWAT);
    env_run(&e);
    /* The kernel buffers take a few MB; the rest waited in our queue. */
    assert_true(p.pending_paused > 4u << 20);
    assert_int_equal(p.recvd, PD_TOTAL);
    assert_true(p.eof);
    assert_int_equal(p.phase, 2);
    assert_int_equal(p.reads_paused, 0);
    assert_int_equal(p.drains, 1);
    assert_int_equal(io->ops->sock_pending(p.cli), 0);
    io->ops->sock_close(p.cli, 0);
    io->ops->timer_del(p.t);
    io->ops->listener_close(l);
    env_free(&e);
}

/* A graceful close of a paused socket still reads (and discards) until the
 * peer's EOF, so the unread data does not turn the close into a RST. */
typedef struct pc {
    env *e;
    flare_io_sock *srv;
    flare_io_timer *t;
    int cli_eof, cli_reset, closed_srv;
    uint64_t t_eof, t_gone;
} pc;

static void pc_accept(flare_io_listener *l, flare_io_sock *s, void *user)
{
    pc *p = user;
    static const flare_io_sock_cbs cbs = {NULL, NULL, srv_close, NULL};
    p->srv = s;
    p->e->io->ops->sock_set_cbs(s, &cbs, p);
    p->e->io->ops->sock_read_pause(s, 1);
    p->e->io->ops->timer_start(p->t, p->e->io->ops->now(p->e->io) + 200 * FLARE_NS_PER_MS);
}

static void pc_tick(flare_io_timer *t, void *user)
{
    pc *p = user;
    flare_io *io = p->e->io;
    if (!p->closed_srv) {
        p->closed_srv = 1;
        io->ops->sock_close(p->srv, 0);
        return;
    }
    /* Both sockets released: only the listener and the driver's own two
     * handles remain. */
    if (flare_uvio_handle_count(p->e->u) == 3) {
        p->t_gone = uv_hrtime();
        uv_stop(&p->e->loop);
        return;
    }
    io->ops->timer_start(t, io->ops->now(io) + 10 * FLARE_NS_PER_MS);
}

static void pc_connect(flare_io_sock *s, int status, void *user)
{
    pc *p = user;
    static uint8_t junk[256 * 1024];
    assert_int_equal(status, 0);
    assert_int_equal(p->e->io->ops->sock_write(s, junk, sizeof(junk)), 0);
}

static void pc_read(flare_io_sock *s, const uint8_t *d, size_t n, void *user)
{
    pc *p = user;
    if (n == 0) {
        p->cli_eof = 1;
        p->t_eof = uv_hrtime();
        p->e->io->ops->sock_close(s, 0);
        p->e->io->ops->timer_start(p->t, p->e->io->ops->now(p->e->io));
    }
}

static void pc_close(flare_io_sock *s, int reason, void *user)
{
    pc *p = user;
    p->cli_reset = 1;
    uv_stop(&p->e->loop);
}

static void test_close_paused_graceful(void **state)
{
    env e;
    pc p;
    env_init(&e);
    flare_io *io = e.io;
    memset(&p, 0, sizeof(p));
    p.e = &e;
    flare_ipaddr a;
    flare_io_listener *l = listen_on(&e, lo4(0), 0, pc_accept, &p, &a);
    assert_int_equal(io->ops->timer_new(io, pc_tick, &p, &p.t), 0);
    static const flare_io_sock_cbs ccbs = {pc_connect, pc_read, pc_close, NULL};
    flare_io_sock *c;
    assert_int_equal(io->ops->dial(io, NULL, &a, 0, &ccbs, &p, &c), 0);
    env_run(&e);
    assert_true(p.cli_eof);
    assert_false(p.cli_reset);
    /* The paused server read on to the client's EOF at once, instead of
     * waiting out the 5 s linger and resetting. */
    assert_true(p.t_gone > 0 && p.t_gone - p.t_eof < 2 * FLARE_NS_PER_S);
    io->ops->timer_del(p.t);
    io->ops->listener_close(l);
    env_free(&e);
}

/* SIGPIPE would end the process when a reset peer is written to: the driver
 * ignores it unless the application chose a disposition itself. */
static void app_handler(int sig)
{
    (void)sig;
}

static void test_sigpipe_disposition(void **state)
{
    struct sigaction sa, old;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    assert_int_equal(sigaction(SIGPIPE, &sa, &old), 0);
    env e;
    env_init(&e);
    assert_int_equal(sigaction(SIGPIPE, NULL, &sa), 0);
    assert_true(sa.sa_handler == SIG_IGN);
    env_free(&e);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = app_handler;
    assert_int_equal(sigaction(SIGPIPE, &sa, NULL), 0);
    env_init(&e);
    assert_int_equal(sigaction(SIGPIPE, NULL, &sa), 0);
    assert_true(sa.sa_handler == app_handler);
    env_free(&e);
    sigaction(SIGPIPE, &old, NULL);
}

/* --- closing inside callbacks and RST ------------------------------------- */

typedef struct cic {
    env *e;
    flare_io_listener *l;
    flare_io_sock *srv;
    int reads_after_close, cli_reads, srv_eof, cli_reason, cli_closes;
    flare_io_timer *t;
} cic;

static void cic_srv_read(flare_io_sock *s, const uint8_t *d, size_t n, void *user)
{
    cic *x = user;
    if (n == 0) {
        x->srv_eof = 1;
        x->e->io->ops->sock_close(s, 0);
        uv_stop(&x->e->loop);
    }
}

static const flare_io_sock_cbs cic_srv_cbs = {NULL, cic_srv_read, srv_close, NULL};

/* The flooded server may see the client's close as EOF or as a reset. */
static void cic_srv_close(flare_io_sock *s, int reason, void *user)
{
    cic *x = user;
    assert_int_equal(reason, FLARE_ERR_RESET);
    x->srv_eof = 1;
    uv_stop(&x->e->loop);
}

static const flare_io_sock_cbs cic_flood_cbs = {NULL, cic_srv_read, cic_srv_close, NULL};

/* Closes the listener inside its own callback, then floods the client. */
static void cic_accept(flare_io_listener *l, flare_io_sock *s, void *user)
{
    cic *x = user;
    flare_io *io = x->e->io;
    io->ops->listener_close(l);
    x->l = NULL;
    io->ops->sock_set_cbs(s, &cic_flood_cbs, x);
    x->srv = s;
    static uint8_t junk[32768];
    for (int i = 0; i < 8; i++)
        assert_int_equal(io->ops->sock_write(s, junk, sizeof(junk)), 0);
}

static void cic_cli_read(flare_io_sock *s, const uint8_t *d, size_t n, void *user)
{
    cic *x = user;
    x->cli_reads++;
    assert_int_equal(x->cli_reads, 1); /* nothing after sock_close */
    x->e->io->ops->sock_close(s, 0);
}

static void cic_cli_connect(flare_io_sock *s, int status, void *user)
{
    assert_int_equal(status, 0);
}

static const flare_io_sock_cbs cic_cli_cbs = {cic_cli_connect, cic_cli_read, cli_close, NULL};

/* A loopback listener with accept, a client dialing it with cbs, and the
 * loop run until it stops. */
static void cic_run(env *e, cic *x, flare_io_accept_cb accept, const flare_io_sock_cbs *cbs)
{
    env_init(e);
    memset(x, 0, sizeof(*x));
    x->e = e;
    flare_ipaddr a;
    x->l = listen_on(e, lo4(0), 0, accept, x, &a);
    flare_io_sock *c;
    assert_int_equal(e->io->ops->dial(e->io, NULL, &a, 0, cbs, x, &c), 0);
    env_run(e);
}

static void test_close_inside_callbacks(void **state)
{
    env e;
    cic x;
    cic_run(&e, &x, cic_accept, &cic_cli_cbs);
    /* The client closed with unread data: Linux answers with RST, which the
     * server may see as EOF-then-nothing or as an error: both end here. */
    assert_int_equal(x.cli_reads, 1);
    assert_true(x.srv_eof);
    env_free(&e);
}

static void rst_srv_read(flare_io_sock *s, const uint8_t *d, size_t n, void *user)
{
    cic *x = user;
    assert_int_not_equal(n, 0);
    x->e->io->ops->sock_close(s, 1); /* abort */
}

static const flare_io_sock_cbs rst_srv_cbs = {NULL, rst_srv_read, srv_close, NULL};

static void rst_accept(flare_io_listener *l, flare_io_sock *s, void *user)
{
    cic *x = user;
    x->e->io->ops->sock_set_cbs(s, &rst_srv_cbs, x);
}

static void rst_cli_connect(flare_io_sock *s, int status, void *user)
{
    assert_int_equal(status, 0);
    cic *x = user;
    assert_int_equal(x->e->io->ops->sock_write(s, (const uint8_t *)"x", 1), 0);
}

static void rst_cli_read(flare_io_sock *s, const uint8_t *d, size_t n, void *user)
{
    fail_msg("client read %zu bytes; wanted a reset", n);
}

static void rst_cli_close(flare_io_sock *s, int reason, void *user)
{
    cic *x = user;
    x->cli_closes++;
    x->cli_reason = reason;
    uv_stop(&x->e->loop);
}

static const flare_io_sock_cbs rst_cli_cbs = {rst_cli_connect, rst_cli_read, rst_cli_close, NULL};

static void test_abort_close_resets_peer(void **state)
{
    env e;
    cic x;
    cic_run(&e, &x, rst_accept, &rst_cli_cbs);
    assert_int_equal(x.cli_closes, 1);
    assert_int_equal(x.cli_reason, FLARE_ERR_RESET);
    e.io->ops->listener_close(x.l);
    env_free(&e);
}

/* on_connect closes its socket; the acceptor sees EOF. */
static void coc_connect(flare_io_sock *s, int status, void *user)
{
    cic *x = user;
    assert_int_equal(status, 0);
    x->e->io->ops->sock_close(s, 0);
}

static void coc_read(flare_io_sock *s, const uint8_t *d, size_t n, void *user)
{
    fail_msg("read after close");
}

static const flare_io_sock_cbs coc_cbs = {coc_connect, coc_read, cli_close, NULL};

static void coc_accept(flare_io_listener *l, flare_io_sock *s, void *user)
{
    cic *x = user;
    x->e->io->ops->sock_set_cbs(s, &cic_srv_cbs, x);
}

static void test_close_in_connect(void **state)
{
    env e;
    cic x;
    cic_run(&e, &x, coc_accept, &coc_cbs);
    assert_true(x.srv_eof);
    e.io->ops->listener_close(x.l);
    env_free(&e);
}

/* --- timers --------------------------------------------------------------- */

typedef struct tim {
    env *e;
    flare_io_timer *t[6];
    flare_tstamp deadline[6];
    int order[16], n, rearms;
} tim;

static void tim_cb(flare_io_timer *t, void *user)
{
    tim *x = user;
    flare_io *io = x->e->io;
    int i = 0;
    while (x->t[i] != t)
        i++;
    assert_true(io->ops->now(io) >= x->deadline[i]); /* never early */
    x->order[x->n++] = i;
    if (i == 4 && x->rearms < 3) {
        /* re-arm in the past from inside the callback: next iteration */
        x->rearms++;
        io->ops->timer_start(t, 0);
    }
    if (i == 0) {
        io->ops->timer_del(t); /* delete inside its own callback */
        x->t[0] = NULL;
        uv_stop(&x->e->loop);
    }
}

static void test_timers(void **state)
{
    env e;
    tim x;
    env_init(&e);
    flare_io *io = e.io;
    memset(&x, 0, sizeof(x));
    x.e = &e;
    for (int i = 0; i < 6; i++)
        assert_int_equal(io->ops->timer_new(io, tim_cb, &x, &x.t[i]), 0);
    flare_tstamp now = io->ops->now(io);
    /* index: deadline; 0 fires last and stops the loop */
    flare_tstamp ms = FLARE_NS_PER_MS;
    x.deadline[0] = now + 40 * ms;
    x.deadline[1] = now + 10 * ms + 700000; /* same ms bucket as 2, later */
    x.deadline[2] = now + 10 * ms + 100000;
    x.deadline[3] = now + 25 * ms;
    x.deadline[4] = 0; /* already past */
    x.deadline[5] = now + 5 * ms;
    io->ops->timer_start(x.t[1], x.deadline[1]); /* started before 2 */
    io->ops->timer_start(x.t[3], now + 1 * ms);  /* re-armed below */
    for (int i = 0; i < 6; i++)
        if (i != 1)
            io->ops->timer_start(x.t[i], x.deadline[i]);
    io->ops->timer_stop(x.t[5]); /* never fires */
    io->ops->timer_stop(x.t[5]); /* stopping twice is fine */
    env_run(&e);
    int want[] = {4, 4, 4, 4, 2, 1, 3, 0};
    assert_int_equal(x.n, 8);
    assert_memory_equal(x.order, want, sizeof(want));
    for (int i = 1; i < 6; i++)
        io->ops->timer_del(x.t[i]);
    env_free(&e);
}

/* --- UDP ------------------------------------------------------------------ */

typedef struct udpx {
    env *e;
    flare_io_udp *a, *b;
    flare_ipaddr aa, ba;
    int b_got, a_got;
} udpx;

static void udp_b(flare_io_udp *u, const flare_ipaddr *from, const uint8_t *d, size_t n, void *user)
{
    udpx *x = user;
    assert_true(flare_ipaddr_equal(from, &x->aa));
    assert_int_equal(n, 4);
    assert_memory_equal(d, "ping", 4);
    x->b_got++;
    assert_int_equal(x->e->io->ops->udp_send(u, from, (const uint8_t *)"pong!", 5), 0);
}

static void udp_a(flare_io_udp *u, const flare_ipaddr *from, const uint8_t *d, size_t n, void *user)
{
    udpx *x = user;
    assert_true(flare_ipaddr_equal(from, &x->ba));
    assert_int_equal(n, 5);
    assert_memory_equal(d, "pong!", 5);
    x->a_got++;
    x->e->io->ops->udp_close(u); /* close inside its callback */
    uv_stop(&x->e->loop);
}

static void test_udp(void **state)
{
    env e;
    udpx x;
    env_init(&e);
    flare_io *io = e.io;
    memset(&x, 0, sizeof(x));
    x.e = &e;
    flare_ipaddr any = lo4(0);
    assert_int_equal(io->ops->udp_bind(io, &any, FLARE_IO_REUSE, udp_a, &x, &x.a), 0);
    assert_int_equal(io->ops->udp_bind(io, &any, 0, udp_b, &x, &x.b), 0);
    assert_int_equal(io->ops->udp_addr(x.a, &x.aa), 0);
    assert_int_equal(io->ops->udp_addr(x.b, &x.ba), 0);
    assert_int_not_equal(x.aa.port, 0);
    /* B's port is taken without REUSE */
    flare_io_udp *c;
    assert_int_equal(io->ops->udp_bind(io, &x.ba, 0, udp_b, &x, &c), FLARE_ERR_ADDR_IN_USE);
    assert_int_equal(io->ops->udp_send(x.a, &x.ba, (const uint8_t *)"ping", 4), 0);
    env_run(&e);
    assert_int_equal(x.b_got, 1);
    assert_int_equal(x.a_got, 1);
    io->ops->udp_close(x.b);
    env_free(&e);
}

/* --- teardown ------------------------------------------------------------- */

static void td_accept(flare_io_listener *l, flare_io_sock *s, void *user)
{
    env *e = user;
    e->io->ops->sock_set_cbs(s, &srv_cbs, NULL);
    static uint8_t junk[1 << 20];
    /* far more than the socket buffers: stays pending at teardown */
    for (int i = 0; i < 8; i++)
        assert_int_equal(e->io->ops->sock_write(s, junk, sizeof(junk)), 0);
    uv_stop(&e->loop);
}

static void td_connect(flare_io_sock *s, int status, void *user) {}

static void td_read(flare_io_sock *s, const uint8_t *d, size_t n, void *user) {}

static const flare_io_sock_cbs td_cbs = {td_connect, td_read, cli_close, NULL};

static void test_teardown(void **state)
{
    env e;
    env_init(&e);
    flare_io *io = e.io;
    flare_ipaddr a, ua = lo4(0);
    listen_on(&e, lo4(0), 0, td_accept, &e, &a);
    flare_io_sock *c, *bad, *pend;
    assert_int_equal(io->ops->dial(io, NULL, &a, 0, &td_cbs, &e, &c), 0);
    env_run(&e);
    /* a deferred failure, a fresh dial, a graceful close in progress, armed
     * and idle timers and a UDP socket are all open at teardown */
    assert_int_equal(io->ops->dial(io, &a, &a, 0, &td_cbs, &e, &bad), 0);
    assert_int_equal(io->ops->dial(io, NULL, &a, 0, &td_cbs, &e, &pend), 0);
    flare_io_timer *t1, *t2;
    assert_int_equal(io->ops->timer_new(io, tim_cb, NULL, &t1), 0);
    assert_int_equal(io->ops->timer_new(io, tim_cb, NULL, &t2), 0);
    io->ops->timer_start(t1, io->ops->now(io) + FLARE_NS_PER_S);
    flare_io_udp *u;
    assert_int_equal(io->ops->udp_bind(io, &ua, 0, udp_a, NULL, &u), 0);
    assert_true(flare_uvio_handle_count(e.u) >= 7);
    env_free(&e);
}

/* The server answers the first bytes with "final" and closes gracefully
 * while the client is still sending: the client must get "final" and EOF,
 * not a reset (the driver drains instead of closing over unread data). */
typedef struct drain {
    env *e;
    int srv_done, got_final, cli_eof;
    size_t ngot;
} drain;

static void drain_srv_read(flare_io_sock *s, const uint8_t *d, size_t n, void *user)
{
    drain *x = user;
    flare_io *io = x->e->io;
    assert_false(x->srv_done);
    x->srv_done = 1;
    assert_int_equal(io->ops->sock_write(s, (const uint8_t *)"final", 5), 0);
    io->ops->sock_close(s, 0);
}

static const flare_io_sock_cbs drain_srv_cbs = {NULL, drain_srv_read, srv_close, NULL};

static void drain_accept(flare_io_listener *l, flare_io_sock *s, void *user)
{
    drain *x = user;
    x->e->io->ops->sock_set_cbs(s, &drain_srv_cbs, x);
}

static void drain_connect(flare_io_sock *s, int status, void *user)
{
    drain *x = user;
    static uint8_t junk[1 << 16];
    assert_int_equal(status, 0);
    for (int i = 0; i < 16; i++)
        assert_int_equal(x->e->io->ops->sock_write(s, junk, sizeof(junk)), 0);
}

static void drain_cli_read(flare_io_sock *s, const uint8_t *d, size_t n, void *user)
{
    drain *x = user;
    if (n == 0) {
        assert_int_equal(x->ngot, 5);
        /* the server socket still drains: 2 driver handles, listener,
         * client and server */
        assert_int_equal(flare_uvio_handle_count(x->e->u), 5);
        x->cli_eof = 1;
        x->e->io->ops->sock_close(s, 0);
        uv_stop(&x->e->loop);
        return;
    }
    assert_true(x->ngot + n <= 5);
    assert_memory_equal(d, "final" + x->ngot, n);
    x->ngot += n;
}

static void drain_cli_close(flare_io_sock *s, int reason, void *user)
{
    fail_msg("client on_close %d after a graceful close", reason);
}

static const flare_io_sock_cbs drain_cli_cbs = {drain_connect, drain_cli_read, drain_cli_close,
                                                NULL};

static void test_graceful_close_drains(void **state)
{
    env e;
    drain x;
    env_init(&e);
    memset(&x, 0, sizeof(x));
    x.e = &e;
    flare_ipaddr a;
    flare_io_listener *l = listen_on(&e, lo4(0), 0, drain_accept, &x, &a);
    flare_io_sock *c;
    assert_int_equal(e.io->ops->dial(e.io, NULL, &a, 0, &drain_cli_cbs, &x, &c), 0);
    env_run(&e);
    assert_true(x.cli_eof);
    e.io->ops->listener_close(l);
    /* the server socket is released once it saw the client's EOF */
    for (int i = 0; i < 100 && flare_uvio_handle_count(e.u) > 2; i++)
        uv_run(&e.loop, UV_RUN_ONCE);
    assert_int_equal(flare_uvio_handle_count(e.u), 2);
    env_free(&e);
}

/* A dial closed before it finished: no callback ever; the listener may
 * still see (and here resets) the connection. */
static void stop_cb(flare_io_timer *t, void *user)
{
    env *e = user;
    uv_stop(&e->loop);
}

static void test_cancel_dial(void **state)
{
    env e;
    env_init(&e);
    flare_io *io = e.io;
    flare_ipaddr a;
    flare_io_listener *l = listen_on(&e, lo4(0), 0, nop_accept, io, &a);
    dialres r = {&e, 0, 1, 0};
    flare_io_sock *s;
    assert_int_equal(io->ops->dial(io, NULL, &a, 0, &res_cbs, &r, &s), 0);
    assert_int_equal(io->ops->sock_write(s, (const uint8_t *)"queued", 6), 0);
    io->ops->sock_close(s, 0);
    flare_io_timer *t;
    assert_int_equal(io->ops->timer_new(io, stop_cb, &e, &t), 0);
    io->ops->timer_start(t, io->ops->now(io) + 20 * FLARE_NS_PER_MS);
    env_run(&e);
    assert_int_equal(r.calls, 0);
    io->ops->timer_del(t);
    io->ops->listener_close(l);
    env_free(&e);
}

/* flare_uvio_del from inside a callback, with a connection open. */
static void del_read(flare_io_sock *s, const uint8_t *d, size_t n, void *user)
{
    env *e = user;
    flare_uvio_del(e->u);
    e->u = NULL;
}

static const flare_io_sock_cbs del_cbs = {NULL, del_read, cli_close, NULL};

static void del_accept(flare_io_listener *l, flare_io_sock *s, void *user)
{
    env *e = user;
    e->io->ops->sock_set_cbs(s, &del_cbs, e);
}

static void del_connect(flare_io_sock *s, int status, void *user)
{
    env *e = user;
    assert_int_equal(status, 0);
    assert_int_equal(e->io->ops->sock_write(s, (const uint8_t *)"bye", 3), 0);
}

static const flare_io_sock_cbs del_cli_cbs = {del_connect, td_read, cli_close, NULL};

static void test_del_inside_callback(void **state)
{
    env e;
    env_init(&e);
    flare_io *io = e.io;
    flare_ipaddr a;
    listen_on(&e, lo4(0), 0, del_accept, &e, &a);
    flare_io_sock *s;
    assert_int_equal(io->ops->dial(io, NULL, &a, 0, &del_cli_cbs, &e, &s), 0);
    flare_io_timer *t;
    assert_int_equal(io->ops->timer_new(io, stop_cb, &e, &t), 0);
    io->ops->timer_start(t, io->ops->now(io) + 5 * FLARE_NS_PER_S);
    env_run(&e); /* ends when del closed everything */
    assert_null(e.u);
    uv_close((uv_handle_t *)&e.guard, NULL);
    uv_run(&e.loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&e.loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_listen),
        cmocka_unit_test(test_echo_v4),
        cmocka_unit_test(test_echo_v6),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_dial_bind_error_deferred),
        cmocka_unit_test(test_dial_from_listen_port),
        cmocka_unit_test(test_simultaneous_open),
        cmocka_unit_test(test_large_transfer),
        cmocka_unit_test(test_read_pause_drain),
        cmocka_unit_test(test_close_paused_graceful),
        cmocka_unit_test(test_sigpipe_disposition),
        cmocka_unit_test(test_close_inside_callbacks),
        cmocka_unit_test(test_abort_close_resets_peer),
        cmocka_unit_test(test_close_in_connect),
        cmocka_unit_test(test_timers),
        cmocka_unit_test(test_udp),
        cmocka_unit_test(test_teardown),
        cmocka_unit_test(test_cancel_dial),
        cmocka_unit_test(test_graceful_close_drains),
        cmocka_unit_test(test_del_inside_callback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
