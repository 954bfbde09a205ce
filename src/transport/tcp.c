/*
 * TCP: a connection over a socket of the io driver (src/io/uv*.c on real
 * networks, src/io/sim*.c in the simulator). The socket itself is the
 * transport's state (c->tr): it needs nothing more.
 */
#include "transport/tcp.h"

static void tcp_on_connect(flare_io_sock *s, int status, void *user);
static void tcp_on_read(flare_io_sock *s, const uint8_t *data, size_t len, void *user);
static void tcp_on_close(flare_io_sock *s, int reason, void *user);
static void tcp_on_drain(flare_io_sock *s, void *user);

static const flare_io_sock_cbs tcp_cbs = {tcp_on_connect, tcp_on_read, tcp_on_close, tcp_on_drain};

static flare_io *io_of(const flare_conn *c)
{
    return c->host->io;
}

static int tcp_write(flare_conn *c, const uint8_t *data, size_t len)
{
    return io_of(c)->ops->sock_write(c->tr, data, len);
}

static void tcp_shutdown(flare_conn *c)
{
    io_of(c)->ops->sock_shutdown(c->tr);
}

static void tcp_close(flare_conn *c, void *tr, int abort)
{
    io_of(c)->ops->sock_close(tr, abort);
}

static size_t tcp_pending(const flare_conn *c)
{
    flare_io *io = io_of(c);
    return io->ops->sock_pending ? io->ops->sock_pending(c->tr) : 0;
}

static void tcp_read_pause(flare_conn *c, int pause)
{
    io_of(c)->ops->sock_read_pause(c->tr, pause);
}

static const flare__transport_ops tcp_ops = {
    .name = "tcp",
    .write = tcp_write,
    .shutdown = tcp_shutdown,
    .close = tcp_close,
    .pending = tcp_pending,
    .read_pause = tcp_read_pause,
};

void flare__tcp_attach(flare_conn *c, flare_io_sock *s)
{
    flare_io *io = io_of(c);
    flare__conn_attach(c, &tcp_ops, s);
    io->ops->sock_set_cbs(s, &tcp_cbs, c);
    io->ops->sock_set_lowat(s, flare__conn_write_low(c->host));
    io->ops->sock_addrs(s, &c->local_ip, &c->remote_ip);
    /* IP and port fit the connection's inline storage: setting cannot fail. */
    flare_multiaddr ma;
    if (flare_multiaddr_from_ipaddr(&ma, &c->remote_ip, FLARE_MA_TCP) == 0)
        (void)flare__conn_set_remote_ma(c, &ma);
    if (flare_multiaddr_from_ipaddr(&ma, &c->local_ip, FLARE_MA_TCP) == 0)
        (void)flare__conn_set_local_ma(c, &ma);
}

/* /ip4|ip6/ADDR/tcp/PORT, then nothing or /p2p/ID. */
static int tcp_match(const flare_multiaddr *ma)
{
    flare_ipaddr ip;
    int proto;
    if (flare_multiaddr_to_ipaddr(ma, &ip, &proto) || proto != FLARE_MA_TCP)
        return 0;
    size_t off = 0;
    flare_ma_component mc;
    int n = 0;
    while (flare_multiaddr_next(ma, &off, &mc) == 1) {
        if (mc.code == FLARE_MA_IP6ZONE)
            continue;
        if (++n > 2 && !(n == 3 && mc.code == FLARE_MA_P2P))
            return 0;
    }
    return 1;
}

/* Dials from the listen port (FLARE_IO_REUSE) unless told not to, so that
 * the NAT mapping of the connection is the one of the listen address. */
static int tcp_dial(flare_host *h, void *state, flare_conn *c, const flare_multiaddr *ma,
                    const flare_dial_opts *o)
{
    (void)state;
    flare_ipaddr remote, local;
    int rv = flare_multiaddr_to_ipaddr(ma, &remote, NULL);
    if (rv)
        return rv;
    c->remote_ip = remote;
    const flare_ipaddr *lp = NULL;
    unsigned flags = 0;
    if (h->cfg.reuse_port && !o->no_reuse &&
        flare__host_listen_addr_for(h, &flare__tr_tcp, remote.family, &local) == 0) {
        lp = &local;
        flags = FLARE_IO_REUSE;
    }
    flare_io_sock *s = NULL;
    rv = h->io->ops->dial(h->io, lp, &remote, flags, &tcp_cbs, c, &s);
    if (rv == 0)
        flare__conn_attach(c, &tcp_ops, s);
    return rv;
}

static void tcp_on_accept(flare_io_listener *il, flare_io_sock *s, void *user)
{
    flare__listener *l = user;
    flare_host *h = l->host;
    (void)il;
    flare_ipaddr local, remote;
    flare_multiaddr remote_ma;
    flare_conn *c = NULL;
    if (h->io->ops->sock_addrs(s, &local, &remote) == 0 &&
        flare_multiaddr_from_ipaddr(&remote_ma, &remote, FLARE_MA_TCP) == 0)
        c = flare__conn_accept(h, &flare__tr_tcp, &remote, &remote_ma);
    if (!c) {
        h->io->ops->sock_close(s, 1);
        return;
    }
    flare__tcp_attach(c, s);
    flare__conn_accepted(c);
}

static int tcp_listen(flare_host *h, void *state, const flare_multiaddr *ma, flare__listener *l)
{
    (void)state;
    flare_ipaddr ip;
    flare_io_listener *il = NULL;
    int rv = flare_multiaddr_to_ipaddr(ma, &ip, NULL);
    unsigned flags = FLARE_IO_REUSE | (h->cfg.share_listen ? FLARE_IO_SHARE : 0);
    if (rv == 0)
        rv = h->io->ops->listen(h->io, &ip, flags, tcp_on_accept, l, &il);
    if (rv == 0)
        rv = h->io->ops->listener_addr(il, &ip);
    if (rv == 0)
        rv = flare_multiaddr_from_ipaddr(&l->ma, &ip, FLARE_MA_TCP);
    if (rv) {
        if (il)
            h->io->ops->listener_close(il);
        return rv;
    }
    l->handle = il;
    return 0;
}

static void tcp_close_listener(flare_host *h, void *state, flare__listener *l)
{
    (void)state;
    h->io->ops->listener_close(l->handle);
}

const flare__transport flare__tr_tcp = {
    .name = "tcp",
    .kind = FLARE__TR_BYTES,
    .can_dial = tcp_match,
    .can_listen = tcp_match,
    .listen = tcp_listen,
    .close_listener = tcp_close_listener,
    .dial = tcp_dial,
};

flare_io_sock *flare__tcp_sock(const flare_conn *c)
{
    return c->tr_ops == &tcp_ops ? c->tr : NULL;
}

static void tcp_on_connect(flare_io_sock *s, int status, void *user)
{
    flare_conn *c = user;
    if (status) {
        flare__conn_transport_lost(c, status); /* the driver freed s */
        return;
    }
    flare__tcp_attach(c, s);
    flare__conn_start_upgrade(c);
}

static void tcp_on_read(flare_io_sock *s, const uint8_t *data, size_t len, void *user)
{
    (void)s;
    flare__conn_input(user, data, len);
}

static void tcp_on_close(flare_io_sock *s, int reason, void *user)
{
    (void)s;
    flare__conn_transport_lost(user, reason ? reason : FLARE_ERR_CLOSED);
}

/* The socket queue fell to the low-water mark. */
static void tcp_on_drain(flare_io_sock *s, void *user)
{
    (void)s;
    flare__conn_drained(user);
}
