/*
 * WebSocket transports: a TCP socket of the io driver carrying, for /wss
 * (/tls/ws), TLS (tls_pipe.c), then the WebSocket upgrade and framing
 * (ws_core.c); the connection's upgrade (multistream, Noise, yamux) runs in
 * the binary messages once the WebSocket is open, as go-libp2p and
 * js-libp2p do. Nothing is sent to the connection before that: the
 * transport starts its upgrade itself (FLARE__TR_LATE_UPGRADE), and the
 * connection's handshake deadline, armed at accept or dial, bounds a peer
 * that stalls in TLS or in the HTTP upgrade.
 *
 * A connection over which we refused (an HTTP error answer, a close frame
 * after a bad frame) closes gracefully even when the connection fails, so
 * the refusal reaches the peer.
 */
#include "transport/ws.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "core/mem.h"
#include "transport/tls_pipe.h"
#include "transport/ws_core.h"

/* Per host state of wss: the listener's certificate (from the settings,
 * read when the host starts) and the dialer's trust (read at first use). */
typedef struct wss_state {
    flare__tls_creds *server, *client;
} wss_state;

typedef struct ws_conn {
    flare_host *h;
    flare_conn *c;
    flare_io_sock *sock;
    int secure, client;
    int tls_on, ws_on;
    flare__tls_pipe tls;
    flare__ws ws;
    char host[FLARE__WS_HOST_MAX]; /* client: the Host field */
    char name[256];                /* client: the TLS server name */
    char sni[256];                 /* client: the name sent as SNI ("" if none) */
    flare_io_resolve *resolving;   /* client: the name being looked up */
    uint16_t port;                 /* client: the port to dial */
    int reuse;                     /* client: dial from our listen port */
    /* Read path (the socket's callbacks) and write path (the connection's
     * writes, which may run inside the read path) use their own buffers. */
    flare_buf plain, app, rws, rout;
    flare_buf wws, wout;
    int busy, dead, linger;
} ws_conn;

static void ws_on_connect(flare_io_sock *s, int status, void *user);
static void ws_on_read(flare_io_sock *s, const uint8_t *data, size_t len, void *user);
static void ws_on_close(flare_io_sock *s, int reason, void *user);
static void ws_on_drain(flare_io_sock *s, void *user);

static const flare_io_sock_cbs ws_cbs = {ws_on_connect, ws_on_read, ws_on_close, ws_on_drain};

/* ---- addresses ------------------------------------------------------------------- */

/* The leading /ip4|ip6/A/tcp/P or /dns|dns4|dns6/NAME/tcp/P; *off is past
 * it. */
static int parse_host(const flare_multiaddr *ma, flare__ws_addr *a, size_t *off)
{
    flare_ma_component mc;
    if (flare_multiaddr_next(ma, off, &mc) != 1)
        return FLARE_ERR_UNSUPPORTED;
    if (mc.code == FLARE_MA_DNS_ANY || mc.code == FLARE_MA_DNS4 || mc.code == FLARE_MA_DNS6) {
        if (mc.value_len == 0 || mc.value_len >= sizeof(a->dns))
            return FLARE_ERR_UNSUPPORTED;
        memcpy(a->dns, mc.value, mc.value_len);
        a->dns[mc.value_len] = 0;
        a->dns_family = mc.code == FLARE_MA_DNS4 ? 4 : mc.code == FLARE_MA_DNS6 ? 6 : 0;
        if (flare_multiaddr_next(ma, off, &mc) != 1 || mc.code != FLARE_MA_TCP || mc.value_len != 2)
            return FLARE_ERR_UNSUPPORTED;
        a->ip.port = (uint16_t)(mc.value[0] << 8 | mc.value[1]);
        return 0;
    }
    int proto;
    if (flare_multiaddr_to_ipaddr(ma, &a->ip, &proto) || proto != FLARE_MA_TCP)
        return FLARE_ERR_UNSUPPORTED;
    *off = 0;
    for (int n = 0; n < 2;) { /* ip (and its zone), tcp */
        if (flare_multiaddr_next(ma, off, &mc) != 1)
            return FLARE_ERR_UNSUPPORTED;
        if (mc.code != FLARE_MA_IP6ZONE)
            n++;
    }
    return 0;
}

int flare__ws_addr_parse(const flare_multiaddr *ma, flare__ws_addr *a)
{
    memset(a, 0, sizeof(*a));
    size_t off = 0;
    int rv = parse_host(ma, a, &off);
    if (rv)
        return rv;
    flare_ma_component mc;
    int tls = 0, sni = 0, ws = 0, p2p = 0;
    while (flare_multiaddr_next(ma, &off, &mc) == 1) {
        if (ws && mc.code == FLARE_MA_P2P && !p2p) {
            p2p = 1;
            continue;
        }
        if (ws || p2p)
            return FLARE_ERR_UNSUPPORTED;
        if (mc.code == FLARE_MA_TLS && !tls) {
            tls = 1;
        } else if (mc.code == FLARE_MA_SNI && tls && !sni) {
            if (mc.value_len == 0 || mc.value_len >= sizeof(a->sni))
                return FLARE_ERR_UNSUPPORTED;
            memcpy(a->sni, mc.value, mc.value_len);
            a->sni[mc.value_len] = 0;
            sni = 1;
        } else if (mc.code == FLARE_MA_WS) {
            ws = 1;
            a->secure = tls;
        } else if (mc.code == FLARE_MA_WSS && !tls) {
            ws = 1;
            a->secure = 1;
        } else
            return FLARE_ERR_UNSUPPORTED;
    }
    return ws ? 0 : FLARE_ERR_UNSUPPORTED;
}

/* ip/tcp plus /ws, /tls/ws or /tls/sni/NAME/ws. */
static int make_ma(flare_multiaddr *out, const flare_ipaddr *ip, int secure, const char *sni)
{
    int rv = flare_multiaddr_from_ipaddr(out, ip, FLARE_MA_TCP);
    if (rv == 0 && secure)
        rv = flare_multiaddr_push(out, FLARE_MA_TLS, NULL, 0);
    if (rv == 0 && secure && sni && *sni)
        rv = flare_multiaddr_push(out, FLARE_MA_SNI, (const uint8_t *)sni, strlen(sni));
    if (rv == 0)
        rv = flare_multiaddr_push(out, FLARE_MA_WS, NULL, 0);
    return rv;
}

static int match(const flare_multiaddr *ma, int secure)
{
    flare__ws_addr a;
    return flare__ws_addr_parse(ma, &a) == 0 && a.secure == secure;
}

static int ws_match(const flare_multiaddr *ma)
{
    return match(ma, 0);
}

static int wss_match(const flare_multiaddr *ma)
{
    return match(ma, 1);
}

/* ---- per connection ---------------------------------------------------------------- */

static ws_conn *conn_new(flare_host *h, int secure, int client)
{
    ws_conn *t = flare__calloc(h->mem, 1, sizeof(*t));
    if (!t)
        return NULL;
    t->h = h;
    t->secure = secure;
    t->client = client;
    flare_buf *bufs[] = {&t->plain, &t->app, &t->rws, &t->rout, &t->wws, &t->wout};
    for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++)
        flare_buf_init(bufs[i], h->mem);
    return t;
}

static void conn_free(ws_conn *t)
{
    if (t->tls_on)
        flare__tls_pipe_free(&t->tls);
    if (t->ws_on)
        flare__ws_free(&t->ws);
    flare_buf *bufs[] = {&t->plain, &t->app, &t->rws, &t->rout, &t->wws, &t->wout};
    for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++)
        flare_buf_free(bufs[i]);
    flare__free(t->h->mem, t);
}

static int start_ws(ws_conn *t)
{
    flare__ws_settings s = {
        .client = t->client, .rng = t->h->rng, .upgrade_time = t->h->cfg.handshake_timeout};
    int rv = flare__ws_init(&t->ws, &s, flare_io_now(t->h->io), t->h->mem);
    if (rv == 0)
        t->ws_on = 1;
    return rv;
}

/* After a batch: buffers go back to empty; big ones are freed. */
static void buf_done(flare_buf *b)
{
    flare_buf_reset(b);
    if (b->cap > 262144)
        flare_buf_free(b);
}

/* Sends WebSocket bytes (ws) to the socket, through TLS if secure (enc is
 * the scratch buffer for the records). */
static int send_out(ws_conn *t, flare_buf *ws, flare_buf *enc)
{
    int rv = 0;
    if (ws->len && t->sock) {
        flare_io *io = t->h->io;
        if (t->secure) {
            rv = flare__tls_pipe_write(&t->tls, ws->base, ws->len, enc);
            if (rv == 0 && enc->len)
                rv = io->ops->sock_write(t->sock, enc->base, enc->len);
        } else
            rv = io->ops->sock_write(t->sock, ws->base, ws->len);
    }
    buf_done(ws);
    buf_done(enc);
    return rv < 0 ? rv : 0;
}

/* Sends what TLS itself produced (handshake records, alerts). */
static int send_raw(ws_conn *t, flare_buf *b)
{
    int rv = 0;
    if (b->len && t->sock)
        rv = t->h->io->ops->sock_write(t->sock, b->base, b->len);
    buf_done(b);
    return rv < 0 ? rv : 0;
}

/* Client: the upgrade request, once TLS (if any) is open. */
static int send_request(ws_conn *t)
{
    int rv = flare__ws_start(&t->ws, &t->rws, t->host, "/");
    if (rv == 0)
        rv = send_out(t, &t->rws, &t->rout);
    return rv;
}

/* WebSocket bytes from the peer: the stream's bytes go to the connection.
 * Returns nonzero if the processing must stop (t is dead or c failed). */
static int ws_bytes(ws_conn *t, const uint8_t *data, size_t len)
{
    flare_conn *c = t->c;
    unsigned ev = 0;
    int rv = flare__ws_input(&t->ws, data, len, &t->app, &t->rws, &ev);
    int srv = send_out(t, &t->rws, &t->rout);
    if (rv || srv) {
        t->linger = rv != 0; /* our refusal or close frame is queued */
        buf_done(&t->app);
        flare__conn_fail(c, rv ? rv : srv);
        return 1;
    }
    if (ev & FLARE__WS_EV_OPEN) {
        flare__conn_start_upgrade(c);
        if (t->dead)
            return 1;
    }
    if (t->app.len) {
        flare__conn_input(c, t->app.base, t->app.len);
        buf_done(&t->app);
        if (t->dead)
            return 1;
    }
    if (ev & FLARE__WS_EV_EOF) {
        flare__conn_input(c, NULL, 0);
        return 1;
    }
    return 0;
}

static void process(ws_conn *t, const uint8_t *data, size_t len)
{
    flare_conn *c = t->c;
    if (len == 0) { /* the TCP stream ended */
        flare__conn_input(c, NULL, 0);
        return;
    }
    if (!t->secure) {
        ws_bytes(t, data, len);
        return;
    }
    unsigned ev = 0;
    int rv = flare__tls_pipe_input(&t->tls, data, len, &t->plain, &t->rout, &ev);
    int srv = send_raw(t, &t->rout);
    if (rv || srv) {
        buf_done(&t->plain);
        flare__conn_fail(c, rv ? rv : srv);
        return;
    }
    if ((ev & FLARE__TLS_EV_OPEN) && t->client) {
        rv = send_request(t);
        if (rv) {
            flare__conn_fail(c, rv);
            return;
        }
    }
    int stop = 0;
    if (t->plain.len) {
        stop = ws_bytes(t, t->plain.base, t->plain.len);
        if (!t->dead)
            buf_done(&t->plain);
    }
    if (!stop && (ev & FLARE__TLS_EV_EOF))
        flare__conn_input(c, NULL, 0);
}

/* ---- the connection's operations ----------------------------------------------------- */

static int ws_write(flare_conn *c, const uint8_t *data, size_t len)
{
    ws_conn *t = c->tr;
    int rv = flare__ws_write(&t->ws, data, len, &t->wws);
    if (rv) {
        buf_done(&t->wws);
        return rv;
    }
    return send_out(t, &t->wws, &t->wout);
}

static void ws_close(flare_conn *c, void *tr, int abort)
{
    ws_conn *t = tr;
    flare_io *io = t->h->io;
    (void)c;
    if (t->resolving) {
        io->ops->resolve_cancel(t->resolving);
        t->resolving = NULL;
    }
    if (t->sock) {
        if (!abort && t->ws_on && t->ws.state == FLARE__WS_OPEN &&
            flare__ws_close(&t->ws, 1000, &t->wws) == 0)
            send_out(t, &t->wws, &t->wout);
        if (!abort && t->tls_on && t->tls.open && flare__tls_pipe_close(&t->tls, &t->wout) == 0)
            send_raw(t, &t->wout);
        io->ops->sock_close(t->sock, abort && !t->linger);
        t->sock = NULL;
    }
    if (t->busy)
        t->dead = 1; /* freed when the read callback unwinds */
    else
        conn_free(t);
}

static size_t ws_pending(const flare_conn *c)
{
    const ws_conn *t = c->tr;
    flare_io *io = t->h->io;
    return t->sock && io->ops->sock_pending ? io->ops->sock_pending(t->sock) : 0;
}

static void ws_read_pause(flare_conn *c, int pause)
{
    ws_conn *t = c->tr;
    if (t->sock)
        t->h->io->ops->sock_read_pause(t->sock, pause);
}

static const flare__transport_ops ws_ops = {
    .name = "ws",
    .flags = FLARE__TR_LATE_UPGRADE,
    .write = ws_write,
    .close = ws_close,
    .pending = ws_pending,
    .read_pause = ws_read_pause,
};

static const flare__transport_ops wss_ops = {
    .name = "wss",
    .flags = FLARE__TR_LATE_UPGRADE,
    .write = ws_write,
    .close = ws_close,
    .pending = ws_pending,
    .read_pause = ws_read_pause,
};

/* ---- socket callbacks ------------------------------------------------------------------ */

/* The connection's addresses from the socket's. */
static void set_addrs(ws_conn *t, const char *sni)
{
    flare_conn *c = t->c;
    flare_io *io = t->h->io;
    io->ops->sock_set_lowat(t->sock, flare__conn_write_low(t->h));
    io->ops->sock_addrs(t->sock, &c->local_ip, &c->remote_ip);
    flare_multiaddr ma;
    if (make_ma(&ma, &c->remote_ip, t->secure, sni) == 0)
        (void)flare__conn_set_remote_ma(c, &ma); /* NOMEM: it stays empty */
    if (make_ma(&ma, &c->local_ip, t->secure, NULL) == 0)
        (void)flare__conn_set_local_ma(c, &ma);
}

static void ws_on_connect(flare_io_sock *s, int status, void *user)
{
    ws_conn *t = user;
    flare_conn *c = t->c;
    if (status) {
        t->sock = NULL; /* the driver freed s */
        conn_free(t);
        flare__conn_transport_lost(c, status);
        return;
    }
    (void)s;
    set_addrs(t, t->sni);
    int rv;
    if (t->secure) {
        rv = flare__tls_pipe_start(&t->tls, &t->rout);
        if (rv == 0)
            rv = send_raw(t, &t->rout);
    } else
        rv = send_request(t);
    if (rv)
        flare__conn_fail(c, rv);
}

static void ws_on_read(flare_io_sock *s, const uint8_t *data, size_t len, void *user)
{
    ws_conn *t = user;
    (void)s;
    t->busy++;
    process(t, data, len);
    t->busy--;
    if (t->dead)
        conn_free(t);
}

static void ws_on_close(flare_io_sock *s, int reason, void *user)
{
    ws_conn *t = user;
    flare_conn *c = t->c;
    (void)s;
    t->sock = NULL;
    conn_free(t);
    flare__conn_transport_lost(c, reason ? reason : FLARE_ERR_CLOSED);
}

static void ws_on_drain(flare_io_sock *s, void *user)
{
    ws_conn *t = user;
    (void)s;
    flare__conn_drained(t->c);
}

/* ---- listening ------------------------------------------------------------------------ */

static void ws_on_accept(flare_io_listener *il, flare_io_sock *s, void *user)
{
    flare__listener *l = user;
    flare_host *h = l->host;
    int secure = l->transport == &flare__tr_wss;
    wss_state *st = secure ? flare__tr_state(h, &flare__tr_wss) : NULL;
    flare_io *io = h->io;
    (void)il;
    flare_ipaddr local, remote;
    flare_multiaddr remote_ma;
    ws_conn *t = NULL;
    if (io->ops->sock_addrs(s, &local, &remote) == 0 &&
        make_ma(&remote_ma, &remote, secure, NULL) == 0)
        t = conn_new(h, secure, 0);
    int rv = t ? 0 : FLARE_ERR_NOMEM;
    if (rv == 0 && secure) {
        rv = st && st->server ? flare__tls_pipe_init(&t->tls, st->server, NULL, h->mem)
                              : FLARE_ERR_STATE;
        t->tls_on = rv == 0;
    }
    if (rv == 0)
        rv = start_ws(t);
    flare_conn *c = rv == 0 ? flare__conn_accept(h, l->transport, &remote, &remote_ma) : NULL;
    if (!c) {
        if (t)
            conn_free(t);
        io->ops->sock_close(s, 1);
        return;
    }
    t->c = c;
    t->sock = s;
    flare__conn_attach(c, secure ? &wss_ops : &ws_ops, t);
    io->ops->sock_set_cbs(s, &ws_cbs, t);
    set_addrs(t, NULL);
    flare__conn_accepted(c);
}

static int ws_listen_as(flare_host *h, const flare_multiaddr *ma, flare__listener *l, int secure)
{
    flare__ws_addr a;
    int rv = flare__ws_addr_parse(ma, &a);
    if (rv)
        return rv;
    if (a.dns[0])
        return FLARE_ERR_UNSUPPORTED; /* listen on addresses, not names */
    if (secure) {
        wss_state *st = flare__tr_state(h, &flare__tr_wss);
        if (!st || !st->server)
            return FLARE_ERR_INVALID_ARG; /* no certificate configured */
    }
    flare_io_listener *il = NULL;
    unsigned flags = FLARE_IO_REUSE | (h->cfg.share_listen ? FLARE_IO_SHARE : 0);
    rv = h->io->ops->listen(h->io, &a.ip, flags, ws_on_accept, l, &il);
    flare_ipaddr ip;
    if (rv == 0)
        rv = h->io->ops->listener_addr(il, &ip);
    if (rv == 0)
        rv = make_ma(&l->ma, &ip, secure, NULL);
    if (rv) {
        if (il)
            h->io->ops->listener_close(il);
        return rv;
    }
    l->handle = il;
    return 0;
}

static int ws_listen(flare_host *h, void *state, const flare_multiaddr *ma, flare__listener *l)
{
    (void)state;
    return ws_listen_as(h, ma, l, 0);
}

static int wss_listen(flare_host *h, void *state, const flare_multiaddr *ma, flare__listener *l)
{
    (void)state;
    return ws_listen_as(h, ma, l, 1);
}

static void ws_close_listener(flare_host *h, void *state, flare__listener *l)
{
    (void)state;
    h->io->ops->listener_close(l->handle);
}

/* ---- dialing --------------------------------------------------------------------------- */

/* Dials from our listen port of this kind (FLARE_IO_REUSE) when allowed,
 * as TCP does, so the NAT mapping of the connection is the one of the
 * listen address and observed addresses become candidates for it. */
static int sock_dial(ws_conn *t, const flare_ipaddr *remote)
{
    flare_host *h = t->h;
    flare_ipaddr local;
    const flare_ipaddr *lp = NULL;
    unsigned flags = 0;
    if (t->reuse && flare__host_listen_addr_for(h, t->secure ? &flare__tr_wss : &flare__tr_ws,
                                                remote->family, &local) == 0) {
        lp = &local;
        flags = FLARE_IO_REUSE;
    }
    return h->io->ops->dial(h->io, lp, remote, flags, &ws_cbs, t, &t->sock);
}

/* The resolved address of a dial to a name (or a failure): dial it. */
static void ws_on_resolved(flare_io_resolve *r, int status, const flare_ipaddr *ip, void *user)
{
    ws_conn *t = user;
    flare_conn *c = t->c;
    flare_host *h = t->h;
    (void)r;
    t->resolving = NULL;
    int rv = status ? FLARE_ERR_UNREACHABLE : 0;
    if (rv == 0) {
        c->remote_ip = *ip;
        c->remote_ip.port = t->port;
        /* The gater judged the name; now the address it stands for. */
        flare_multiaddr m;
        if (make_ma(&m, &c->remote_ip, t->secure, NULL) || !flare__gater_allow_dial(h, &m))
            rv = FLARE_ERR_REFUSED;
    }
    if (rv == 0)
        rv = sock_dial(t, &c->remote_ip);
    if (rv) {
        conn_free(t);
        flare__conn_transport_lost(c, rv);
    }
}

static int ws_dial_as(flare_host *h, wss_state *st, flare_conn *c, const flare_multiaddr *ma,
                      const flare_dial_opts *o, int secure)
{
    flare__ws_addr a;
    int rv = flare__ws_addr_parse(ma, &a);
    if (rv)
        return rv;
    if (a.dns[0] && !h->io->ops->resolve)
        return FLARE_ERR_UNSUPPORTED; /* a driver without names (the simulator) */
    if (secure && !st->client) {
        rv = flare__tls_creds_client(&st->client, h->cfg.tls_ca_file, h->mem);
        if (rv)
            return rv;
    }
    ws_conn *t = conn_new(h, secure, 1);
    if (!t)
        return FLARE_ERR_NOMEM;
    t->c = c;
    t->port = a.ip.port;
    t->reuse = h->cfg.reuse_port && !o->no_reuse;
    /* The TLS name: /sni's, else the DNS name, else the IP address (then
     * sent as no SNI, checked against the certificate's IP addresses). */
    char ipstr[INET6_ADDRSTRLEN] = "";
    if (!a.dns[0])
        inet_ntop(a.ip.family == 4 ? AF_INET : AF_INET6, a.ip.ip, ipstr, sizeof(ipstr));
    const char *hn = a.sni[0] ? a.sni : a.dns[0] ? a.dns : ipstr;
    snprintf(t->name, sizeof(t->name), "%s", hn);
    snprintf(t->sni, sizeof(t->sni), "%s", a.sni[0] ? a.sni : a.dns);
    /* The Host field: the name, bracketed if an IPv6 address, and the port
     * unless it is the scheme's default. */
    const char *lb = hn == ipstr && a.ip.family == 6 ? "[" : "";
    const char *rb = *lb ? "]" : "";
    if (a.ip.port == (secure ? 443 : 80))
        snprintf(t->host, sizeof(t->host), "%s%s%s", lb, hn, rb);
    else
        snprintf(t->host, sizeof(t->host), "%s%s%s:%u", lb, hn, rb, a.ip.port);
    if (secure) {
        rv = flare__tls_pipe_init(&t->tls, st->client, t->name, h->mem);
        t->tls_on = rv == 0;
    }
    if (rv == 0)
        rv = start_ws(t);
    if (rv == 0 && a.dns[0])
        rv = h->io->ops->resolve(h->io, a.dns, a.dns_family, ws_on_resolved, t, &t->resolving);
    else if (rv == 0) {
        rv = sock_dial(t, &a.ip);
        c->remote_ip = a.ip;
    }
    if (rv) {
        conn_free(t);
        return rv;
    }
    flare__conn_attach(c, secure ? &wss_ops : &ws_ops, t);
    return 0;
}

static int ws_dial(flare_host *h, void *state, flare_conn *c, const flare_multiaddr *ma,
                   const flare_dial_opts *o)
{
    (void)state;
    return ws_dial_as(h, NULL, c, ma, o, 0);
}

static int wss_dial(flare_host *h, void *state, flare_conn *c, const flare_multiaddr *ma,
                    const flare_dial_opts *o)
{
    return ws_dial_as(h, state, c, ma, o, 1);
}

/* ---- registry ---------------------------------------------------------------------------- */

static int wss_init(flare_host *h, void **state)
{
    wss_state *st = flare__calloc(h->mem, 1, sizeof(*st));
    if (!st)
        return FLARE_ERR_NOMEM;
    *state = st;
    const flare_host_settings *cfg = &h->cfg;
    if (!cfg->tls_cert_file && !cfg->tls_key_file)
        return 0;
    if (!cfg->tls_cert_file || !cfg->tls_key_file)
        return FLARE_ERR_INVALID_ARG;
    return flare__tls_creds_server(&st->server, cfg->tls_cert_file, cfg->tls_key_file, h->mem);
}

static void wss_free(flare_host *h, void *state)
{
    wss_state *st = state;
    if (!st)
        return;
    flare__tls_creds_del(st->server, h->mem);
    flare__tls_creds_del(st->client, h->mem);
    flare__free(h->mem, st);
}

const flare__transport flare__tr_ws = {
    .name = "ws",
    .kind = FLARE__TR_BYTES,
    .can_dial = ws_match,
    .can_listen = ws_match,
    .listen = ws_listen,
    .close_listener = ws_close_listener,
    .dial = ws_dial,
};

const flare__transport flare__tr_wss = {
    .name = "wss",
    .kind = FLARE__TR_BYTES,
    .init = wss_init,
    .free = wss_free,
    .can_dial = wss_match,
    .can_listen = wss_match,
    .listen = wss_listen,
    .close_listener = ws_close_listener,
    .dial = wss_dial,
};
