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
    flare_multiaddr_from_ipaddr(&c->remote_ma, &c->remote_ip, FLARE_MA_TCP);
    flare_multiaddr_from_ipaddr(&c->local_ma, &c->local_ip, FLARE_MA_TCP);
}

int flare__tcp_dial(flare_conn *c, const flare_ipaddr *local, const flare_ipaddr *remote,
                    unsigned flags)
{
    flare_io *io = io_of(c);
    flare_io_sock *s = NULL;
    int rv = io->ops->dial(io, local, remote, flags, &tcp_cbs, c, &s);
    if (rv == 0)
        flare__conn_attach(c, &tcp_ops, s);
    return rv;
}

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
