/* Simulated TCP: connection setup as packets (SYN, SYN-ACK, ACK, RST) so NATs
 * can map and filter them, simultaneous open, SYN retransmission and timeout,
 * then ordered reliable data chunks, FIN and RST.
 *
 * Object lifetime: a socket that must go away while one of its callbacks
 * runs (busy > 0) is unlinked at once and freed when the callback returns. */
#include <string.h>

#include "core/mem.h"
#include "io/sim_internal.h"

#define HOST(io) SIM_CONTAINER(io, flare_sim_host, io)

/* --- lookup ------------------------------------------------------------------ */

static uint64_t conn_hash(const flare_ipaddr *local, const flare_ipaddr *remote)
{
    return flare__sim_mix_ep(flare__sim_mix_ep(0, local), remote);
}

static uint64_t port_hash(const flare_ipaddr *local)
{
    return flare__sim_mix(local->family, local->port);
}

/* At most one live socket has a given 4-tuple: a dial onto a taken one
 * fails and is never indexed. */
static flare_io_sock *find_conn(flare_sim_host *h, const flare_ipaddr *local,
                                const flare_ipaddr *remote)
{
    for (sim_hnode *n = flare__sim_htab_first(&h->conns, conn_hash(local, remote)); n;
         n = flare__sim_htab_next(n)) {
        flare_io_sock *s = SIM_CONTAINER(n, flare_io_sock, hconn);
        if (flare_ipaddr_equal(&s->local, local) && flare_ipaddr_equal(&s->remote, remote))
            return s;
    }
    return NULL;
}

static int conn_index(flare_io_sock *s)
{
    return flare__sim_htab_insert(&s->h->conns, &s->hconn, conn_hash(&s->local, &s->remote));
}

static void set_failed(flare_io_sock *s)
{
    s->state = SIM_TCP_FAILED;
    flare__sim_htab_remove(&s->h->conns, &s->hconn);
}

static flare_io_listener *find_listener(flare_sim_host *h, const flare_ipaddr *local)
{
    for (flare_io_listener *l = h->listeners; l; l = l->next)
        if (flare__sim_bind_overlap(&l->local, local))
            return l;
    return NULL;
}

/* Counts a dialing socket on its local address (accepted ones hold none). */
static int port_ref(flare_io_sock *s)
{
    flare_sim_host *h = s->h;
    uint64_t k = port_hash(&s->local);
    sim_port_use *u = NULL;
    for (sim_hnode *n = flare__sim_htab_first(&h->ports, k); n && !u; n = flare__sim_htab_next(n)) {
        sim_port_use *c = SIM_CONTAINER(n, sim_port_use, hn);
        if (c->local.port == s->local.port && flare_ipaddr_same_ip(&c->local, &s->local))
            u = c;
    }
    if (!u) {
        u = flare__calloc(h->sim->mem, 1, sizeof(*u));
        if (!u)
            return FLARE_ERR_NOMEM;
        u->local = s->local;
        if (flare__sim_htab_insert(&h->ports, &u->hn, k) < 0) {
            flare__free(h->sim->mem, u);
            return FLARE_ERR_NOMEM;
        }
    }
    u->n++;
    u->n_excl += !s->reuse;
    s->pu = u;
    return 0;
}

static void port_unref(flare_io_sock *s)
{
    sim_port_use *u = s->pu;
    if (!u)
        return;
    s->pu = NULL;
    u->n--;
    u->n_excl -= !s->reuse;
    if (u->n == 0) {
        flare__sim_htab_remove(&s->h->ports, &u->hn);
        flare__free(s->h->sim->mem, u);
    }
}

int flare__sim_tcp_port_used(flare_sim_host *h, const flare_ipaddr *local, int reuse)
{
    for (flare_io_listener *l = h->listeners; l; l = l->next)
        if (flare__sim_bind_overlap(&l->local, local) && !(reuse && l->reuse))
            return 1;
    for (sim_hnode *n = flare__sim_htab_first(&h->ports, port_hash(local)); n;
         n = flare__sim_htab_next(n)) {
        const sim_port_use *u = SIM_CONTAINER(n, sim_port_use, hn);
        if (flare__sim_bind_overlap(&u->local, local) && (reuse ? u->n_excl : u->n))
            return 1;
    }
    return 0;
}

/* --- lifetime ---------------------------------------------------------------- */

static void sock_free_mem(flare_io_sock *s)
{
    const flare_mem *mem = s->h->sim->mem;
    while (s->ooo) {
        sim_pkt *p = s->ooo;
        s->ooo = p->next;
        flare__free(mem, p);
    }
    flare_buf_free(&s->tx);
    flare__free(mem, s);
}

/* Unlinks s; frees it now or when its running callback returns. */
static void sock_destroy(flare_io_sock *s)
{
    if (s->dead)
        return;
    flare_sim *sim = s->h->sim;
    s->dead = 1;
    s->closed = 1;
    flare__sim_ev_cancel(sim, &s->ev_timer);
    flare__sim_ev_cancel(sim, &s->ev_pump);
    flare__sim_ev_cancel(sim, &s->ev_notify);
    flare__sim_ev_cancel(sim, &s->ev_resume);
    flare__sim_ev_cancel(sim, &s->ev_drain);
    flare__sim_htab_remove(&s->h->conns, &s->hconn);
    port_unref(s);
    LIST_REMOVE(s->h->socks, s);
    if (!s->busy)
        sock_free_mem(s);
}

static void sock_hold(flare_io_sock *s)
{
    s->busy++;
}

/* Returns 1 if s is gone (or going) and must not be used any more. */
static int sock_release(flare_io_sock *s)
{
    if (--s->busy == 0 && s->dead) {
        sock_free_mem(s);
        return 1;
    }
    return s->dead || s->closed;
}

static flare_io_sock *sock_new(flare_sim_host *h, sim_iface *ifc, const flare_ipaddr *local,
                               const flare_ipaddr *remote)
{
    flare_io_sock *s = flare__calloc(h->sim->mem, 1, sizeof(*s));
    if (!s)
        return NULL;
    s->h = h;
    s->ifc = ifc;
    s->local = *local;
    s->remote = *remote;
    flare_buf_init(&s->tx, h->sim->mem);
    flare__sim_ev_init(&s->ev_timer, SIM_EV_SOCK_TIMER);
    flare__sim_ev_init(&s->ev_pump, SIM_EV_SOCK_PUMP);
    flare__sim_ev_init(&s->ev_notify, SIM_EV_SOCK_NOTIFY);
    flare__sim_ev_init(&s->ev_resume, SIM_EV_SOCK_RESUME);
    flare__sim_ev_init(&s->ev_drain, SIM_EV_SOCK_DRAIN);
    LIST_INSERT(h->socks, s);
    return s;
}

/* --- sending ----------------------------------------------------------------- */

static void send_pkt(flare_sim_host *h, sim_iface *ifc, uint8_t flags, const flare_ipaddr *src,
                     const flare_ipaddr *dst, uint64_t seq, const uint8_t *data, size_t len)
{
    sim_pkt *p = flare__sim_pkt_new(h->sim, SIM_TCP, flags, src, dst, data, len);
    if (!p)
        return; /* out of memory: the packet is lost, TCP-like */
    p->seq = seq;
    flare__sim_host_send(h, ifc, p);
}

static void send_ctl(flare_io_sock *s, uint8_t flags)
{
    send_pkt(s->h, s->ifc, flags, &s->local, &s->remote, s->snd_off, NULL, 0);
}

/* on_drain is reported from its own event, never inside sock_write. */
static void check_drain(flare_io_sock *s)
{
    if (s->above_lowat && s->tx.len - s->tx_head <= s->lowat && !s->closed) {
        s->above_lowat = 0;
        flare__sim_ev_schedule(s->h->sim, &s->ev_drain, s->h->sim->now);
    }
}

/* Puts queued data (then the FIN) on the link while the link is idle and
 * the peer's receive window has room; a rate-limited link reschedules the
 * pump when its transmitter frees up, a window update restarts it. */
static void pump(flare_io_sock *s)
{
    flare_sim *sim = s->h->sim;
    if (s->state != SIM_TCP_EST || s->dead)
        return;
    while (s->tx_head < s->tx.len || (s->shut && !s->fin_sent)) {
        if (s->ifc->dir[0].free_at > sim->now) {
            flare__sim_ev_schedule(sim, &s->ev_pump, s->ifc->dir[0].free_at);
            return;
        }
        size_t n = s->tx.len - s->tx_head;
        uint64_t inflight = s->snd_off - s->peer_acked;
        if (n && inflight >= FLARE_SIM_RCVBUF)
            break; /* the peer has not consumed: wait for its window update */
        if (n) {
            n = n > FLARE_SIM_MSS ? FLARE_SIM_MSS : n;
            if (n > FLARE_SIM_RCVBUF - inflight)
                n = (size_t)(FLARE_SIM_RCVBUF - inflight);
            send_pkt(s->h, s->ifc, FLARE_SIM_ACK, &s->local, &s->remote, s->snd_off,
                     s->tx.base + s->tx_head, n);
            s->snd_off += n;
            s->tx_head += n;
        } else {
            send_ctl(s, FLARE_SIM_FIN | FLARE_SIM_ACK);
            s->fin_sent = 1;
        }
    }
    flare_buf_consume(&s->tx, s->tx_head);
    s->tx_head = 0;
    if (s->tx.len == 0 && s->tx.cap)
        flare_buf_free(&s->tx); /* idle sockets hold no buffer */
    if (s->closed && s->fin_sent)
        sock_destroy(s); /* an orphan that has flushed everything */
    else
        check_drain(s);
}

/* A write to an idle socket on a link without a rate limit: what the
 * peer's window takes leaves at once, segmented as pump would, and only the
 * rest is queued. Returns 1 if it handled the write, 0 if pump must. */
static int write_direct(flare_io_sock *s, const uint8_t *data, size_t len, int *rv)
{
    const sim_iface *ifc = s->ifc;
    if (s->state != SIM_TCP_EST || s->dead || s->tx.len || s->ev_pump.idx != FLARE__SIM_EV_IDLE ||
        ifc->link.rate || ifc->dir[0].free_at > s->h->sim->now)
        return 0;
    uint64_t inflight = s->snd_off - s->peer_acked;
    size_t room = inflight >= FLARE_SIM_RCVBUF ? 0 : (size_t)(FLARE_SIM_RCVBUF - inflight);
    size_t now = len < room ? len : room;
    *rv = now < len ? flare_buf_append(&s->tx, data + now, len - now) : 0;
    if (*rv < 0)
        return 1;
    if (len > s->lowat)
        s->above_lowat = 1;
    for (size_t off = 0; off < now;) {
        size_t n = now - off > FLARE_SIM_MSS ? FLARE_SIM_MSS : now - off;
        send_pkt(s->h, s->ifc, FLARE_SIM_ACK, &s->local, &s->remote, s->snd_off, data + off, n);
        s->snd_off += n;
        off += n;
    }
    check_drain(s);
    return 1;
}

/* Tells the peer how far we consumed, once half a window has been: the
 * peer's sender stops at a full window (a receiver that never reads, e.g.
 * paused, stops it like a TCP zero window). */
static void window_update(flare_io_sock *s)
{
    if (s->dead || s->closed || s->rcv_next - s->rcv_acked < FLARE_SIM_RCVBUF / 2)
        return;
    sim_pkt *p =
        flare__sim_pkt_new(s->h->sim, SIM_TCP, FLARE_SIM_ACK, &s->local, &s->remote, NULL, 0);
    if (!p)
        return; /* like a lost ACK: the next one covers it */
    s->rcv_acked = s->rcv_next;
    p->seq = s->snd_off;
    p->ack = s->rcv_next;
    flare__sim_host_send(s->h, s->ifc, p);
}

/* --- callbacks ------------------------------------------------------------- */

/* Reports the end of a dial; on failure the socket is gone afterwards. */
static void connect_done(flare_io_sock *s, int status)
{
    flare__sim_ev_cancel(s->h->sim, &s->ev_timer);
    if (status < 0)
        set_failed(s);
    else
        s->state = SIM_TCP_EST;
    sock_hold(s);
    if (!s->closed && s->cbs.on_connect)
        s->cbs.on_connect(s, status, s->user);
    if (status < 0)
        sock_destroy(s);
    if (!sock_release(s))
        pump(s); /* data written before the connection was up */
}

static void conn_died(flare_io_sock *s, int reason)
{
    sock_hold(s);
    if (!s->closed && s->cbs.on_close)
        s->cbs.on_close(s, reason, s->user);
    sock_destroy(s);
    sock_release(s);
}

static void accept_conn(flare_io_sock *s)
{
    flare_io_listener *l = s->lst;
    s->lst = NULL;
    s->state = SIM_TCP_EST;
    sock_hold(s);
    l->cb(l, s, l->user);
    if (!sock_release(s))
        pump(s);
}

/* --- receiving --------------------------------------------------------------- */

static void ooo_insert(flare_io_sock *s, sim_pkt *p)
{
    sim_pkt **pp = &s->ooo;
    while (*pp && (*pp)->seq <= p->seq)
        pp = &(*pp)->next;
    p->next = *pp;
    *pp = p;
}

/* Delivers in-order data and the FIN. Returns 1 if s went away. */
static int deliver(flare_io_sock *s)
{
    const flare_mem *mem = s->h->sim->mem;
    while (s->ooo && s->ooo->seq <= s->rcv_next && !(s->rpaused && !s->closed)) {
        sim_pkt *p = s->ooo;
        s->ooo = p->next;
        uint64_t end = p->seq + p->len;
        if (s->closed && end > s->rcv_next) {
            /* Data for a socket the host closed: Linux answers RST. */
            flare__free(mem, p);
            send_ctl(s, FLARE_SIM_RST);
            sock_destroy(s);
            return 1;
        }
        int fin = (p->flags & FLARE_SIM_FIN) && p->seq == s->rcv_next && !s->eof;
        sock_hold(s);
        if (end > s->rcv_next) {
            size_t off = (size_t)(s->rcv_next - p->seq);
            s->rcv_next = end;
            if (s->cbs.on_read)
                s->cbs.on_read(s, p->data + off, p->len - off, s->user);
        }
        if (fin && !s->dead && !s->closed) {
            s->eof = 1;
            if (s->cbs.on_read)
                s->cbs.on_read(s, NULL, 0, s->user);
        }
        flare__free(mem, p);
        if (sock_release(s))
            return 1;
    }
    window_update(s);
    return 0;
}

static void rx_segment(flare_io_sock *s, sim_pkt *p)
{
    if (p->len == 0 && !(p->flags & FLARE_SIM_FIN)) {
        /* A pure ACK; a window update may let our pump go on. */
        int more = p->ack > s->peer_acked;
        if (more)
            s->peer_acked = p->ack;
        flare__free(s->h->sim->mem, p);
        if (more && s->ev_pump.idx == FLARE__SIM_EV_IDLE)
            pump(s);
        return;
    }
    ooo_insert(s, p);
    deliver(s);
}

static void syn_sent_input(flare_io_sock *s, sim_pkt *p)
{
    const flare_mem *mem = s->h->sim->mem;
    if (p->flags == FLARE_SIM_SYN) { /* simultaneous open: answer SYN-ACK */
        s->got_syn = 1;
        send_ctl(s, FLARE_SIM_SYN | FLARE_SIM_ACK);
        flare__free(mem, p);
        return;
    }
    if (p->flags == (FLARE_SIM_SYN | FLARE_SIM_ACK)) {
        send_ctl(s, FLARE_SIM_ACK);
        flare__free(mem, p);
        connect_done(s, 0);
        return;
    }
    if (!s->got_syn || (p->flags & FLARE_SIM_SYN)) {
        flare__free(mem, p);
        return;
    }
    /* Our SYN-ACK of a simultaneous open was acknowledged (maybe with data). */
    sock_hold(s);
    connect_done(s, 0);
    if (sock_release(s)) {
        flare__free(mem, p);
        return;
    }
    rx_segment(s, p);
}

static void conn_input(flare_io_sock *s, sim_pkt *p)
{
    const flare_mem *mem = s->h->sim->mem;
    if (p->flags & FLARE_SIM_RST) {
        flare__free(mem, p);
        if (s->state == SIM_TCP_SYN_SENT)
            connect_done(s, FLARE_ERR_REFUSED);
        else if (s->state == SIM_TCP_EST)
            conn_died(s, FLARE_ERR_RESET);
        else
            sock_destroy(s);
        return;
    }
    switch (s->state) {
    case SIM_TCP_SYN_SENT:
        syn_sent_input(s, p);
        return;
    case SIM_TCP_SYN_RCVD:
        if (p->flags & FLARE_SIM_SYN) { /* a retransmitted SYN */
            send_ctl(s, FLARE_SIM_SYN | FLARE_SIM_ACK);
            flare__free(mem, p);
            return;
        }
        sock_hold(s);
        accept_conn(s);
        if (sock_release(s)) {
            flare__free(mem, p);
            return;
        }
        rx_segment(s, p);
        return;
    default:
        if (p->flags & FLARE_SIM_SYN) {
            flare__free(mem, p); /* a late duplicate of the handshake */
            return;
        }
        rx_segment(s, p);
    }
}

static void no_conn_input(flare_sim_host *h, sim_pkt *p)
{
    flare_io_listener *l = NULL;
    sim_iface *ifc = flare__sim_host_iface(h, &p->dst);
    if (p->flags == FLARE_SIM_SYN)
        l = find_listener(h, &p->dst);
    if (l) {
        flare_io_sock *s = sock_new(h, ifc, &p->dst, &p->src);
        if (s && conn_index(s) < 0) {
            sock_destroy(s); /* out of memory: the SYN is lost */
            s = NULL;
        }
        if (s) {
            s->state = SIM_TCP_SYN_RCVD;
            s->lst = l;
            s->accepted = 1;
            send_ctl(s, FLARE_SIM_SYN | FLARE_SIM_ACK);
        }
    } else if (p->flags == FLARE_SIM_SYN || p->len) {
        /* No listener, or data for a connection that no longer exists. */
        send_pkt(h, ifc, FLARE_SIM_RST | FLARE_SIM_ACK, &p->dst, &p->src, 0, NULL, 0);
    }
    flare__free(h->sim->mem, p);
}

void flare__sim_tcp_input(flare_sim_host *h, sim_pkt *p)
{
    flare_io_sock *s = find_conn(h, &p->dst, &p->src);
    int listening = p->flags == FLARE_SIM_SYN && find_listener(h, &p->dst);
    flare__sim_trace(h->sim, &h->node.name,
                     s || listening ? FLARE_SIM_DELIVERED : FLARE_SIM_DROP_NOSOCKET, p);
    if (s)
        conn_input(s, p);
    else if (p->flags & FLARE_SIM_RST)
        flare__free(h->sim->mem, p);
    else
        no_conn_input(h, p);
}

/* --- events -------------------------------------------------------------------- */

static void syn_timer(flare_io_sock *s)
{
    flare_sim *sim = s->h->sim;
    flare_tstamp deadline = s->syn_start + sim->syn_timeout;
    if (sim->now >= deadline) {
        connect_done(s, FLARE_ERR_TIMEOUT);
        return;
    }
    /* Linux-like backoff: retransmits 1 s, 3 s, 7 s, ... after the first SYN. */
    s->syn_tries++;
    send_ctl(s, s->got_syn ? FLARE_SIM_SYN | FLARE_SIM_ACK : FLARE_SIM_SYN);
    flare_tstamp next = s->syn_start + ((2ULL << s->syn_tries) - 1) * FLARE_NS_PER_S;
    flare__sim_ev_schedule(sim, &s->ev_timer, next < deadline ? next : deadline);
}

void flare__sim_sock_event(flare_sim *sim, sim_ev *ev)
{
    switch (ev->kind) {
    case SIM_EV_SOCK_TIMER:
        syn_timer(SIM_CONTAINER(ev, flare_io_sock, ev_timer));
        break;
    case SIM_EV_SOCK_PUMP:
        pump(SIM_CONTAINER(ev, flare_io_sock, ev_pump));
        break;
    case SIM_EV_SOCK_RESUME:
        deliver(SIM_CONTAINER(ev, flare_io_sock, ev_resume));
        break;
    case SIM_EV_SOCK_DRAIN: {
        flare_io_sock *s = SIM_CONTAINER(ev, flare_io_sock, ev_drain);
        sock_hold(s);
        if (!s->closed && s->cbs.on_drain)
            s->cbs.on_drain(s, s->user);
        sock_release(s);
        break;
    }
    default: {
        flare_io_sock *s = SIM_CONTAINER(ev, flare_io_sock, ev_notify);
        connect_done(s, s->notify_status);
        break;
    }
    }
}

void flare__sim_tcp_free_all(flare_sim_host *h)
{
    while (h->socks)
        sock_destroy(h->socks);
    while (h->listeners) {
        flare_io_listener *l = h->listeners;
        LIST_REMOVE(h->listeners, l);
        flare__free(h->sim->mem, l);
    }
}

/* --- flare_io operations ------------------------------------------------------ */

int flare__sim_listen(flare_io *io, const flare_ipaddr *local, unsigned flags,
                      flare_io_accept_cb cb, void *user, flare_io_listener **out)
{
    flare_sim_host *h = HOST(io);
    flare_ipaddr a;
    int reuse = (flags & FLARE_IO_REUSE) != 0;
    if (!cb)
        return FLARE_ERR_INVALID_ARG;
    int rv = flare__sim_bind_addr(h, SIM_TCP, local, reuse, &a);
    if (rv < 0)
        return rv;
    /* REUSE lets dials share the port, not a second listener (see io.h). */
    if (!(flags & FLARE_IO_SHARE) && find_listener(h, &a))
        return FLARE_ERR_ADDR_IN_USE;
    flare_io_listener *l = flare__calloc(h->sim->mem, 1, sizeof(*l));
    if (!l)
        return FLARE_ERR_NOMEM;
    l->h = h;
    l->local = a;
    l->reuse = reuse;
    l->cb = cb;
    l->user = user;
    LIST_INSERT(h->listeners, l);
    *out = l;
    return 0;
}

int flare__sim_listener_addr(flare_io_listener *l, flare_ipaddr *local)
{
    *local = l->local;
    return 0;
}

void flare__sim_listener_close(flare_io_listener *l)
{
    if (!l)
        return;
    flare_sim_host *h = l->h;
    /* Like Linux: handshakes still pending on the listener are reset. */
    for (flare_io_sock *s = h->socks, *next; s; s = next) {
        next = s->next;
        if (s->lst == l) {
            send_ctl(s, FLARE_SIM_RST);
            sock_destroy(s);
        }
    }
    LIST_REMOVE(h->listeners, l);
    flare__free(h->sim->mem, l);
}

static int dial_source(flare_sim_host *h, const flare_ipaddr *local, const flare_ipaddr *remote,
                       sim_iface **ifc)
{
    if (local && (local->family || local->port)) {
        int rv = flare__sim_check_local(h, local);
        if (rv < 0 || local->family != remote->family)
            return FLARE_ERR_INVALID_ARG;
        if (!flare__sim_ip_is_any(local)) {
            *ifc = flare__sim_host_iface(h, local);
            return 0;
        }
    }
    *ifc = flare__sim_host_route(h, remote);
    return *ifc ? 0 : FLARE_ERR_UNREACHABLE;
}

int flare__sim_dial(flare_io *io, const flare_ipaddr *local, const flare_ipaddr *remote,
                    unsigned flags, const flare_io_sock_cbs *cbs, void *user, flare_io_sock **out)
{
    flare_sim_host *h = HOST(io);
    sim_iface *ifc;
    if (!remote || !cbs || (remote->family != 4 && remote->family != 6) || remote->port == 0 ||
        flare__sim_ip_is_any(remote))
        return FLARE_ERR_INVALID_ARG;
    int rv = dial_source(h, local, remote, &ifc);
    if (rv < 0)
        return rv;
    int reuse = (flags & FLARE_IO_REUSE) != 0;
    flare_ipaddr src = ifc->ip;
    src.port = local ? local->port : 0;
    if (src.port == 0)
        src.port = flare__sim_ephemeral_port(h, SIM_TCP, &src);
    if (src.port == 0 || (local && local->port && flare__sim_tcp_port_used(h, &src, reuse)))
        return FLARE_ERR_ADDR_IN_USE;
    int taken = find_conn(h, &src, remote) != NULL;
    flare_io_sock *s = sock_new(h, ifc, &src, remote);
    if (!s)
        return FLARE_ERR_NOMEM;
    s->reuse = (uint8_t)reuse;
    s->bound = local && local->port;
    s->cbs = *cbs;
    s->user = user;
    if (port_ref(s) < 0 || (!taken && conn_index(s) < 0)) {
        sock_destroy(s);
        return FLARE_ERR_NOMEM;
    }
    if (taken) {
        /* The 4-tuple is in use (e.g. a listener accepted the peer's SYN):
         * Linux fails connect() with EADDRNOTAVAIL. Reported from the loop. */
        set_failed(s);
        s->notify_status = FLARE_ERR_ADDR_IN_USE;
        flare__sim_ev_schedule(h->sim, &s->ev_notify, h->sim->now);
    } else {
        s->state = SIM_TCP_SYN_SENT;
        s->syn_start = h->sim->now;
        send_ctl(s, FLARE_SIM_SYN);
        flare_tstamp first = h->sim->now + FLARE_NS_PER_S;
        flare_tstamp deadline = h->sim->now + h->sim->syn_timeout;
        flare__sim_ev_schedule(h->sim, &s->ev_timer, first < deadline ? first : deadline);
    }
    *out = s;
    return 0;
}

void flare__sim_sock_set_cbs(flare_io_sock *s, const flare_io_sock_cbs *cbs, void *user)
{
    if (cbs)
        s->cbs = *cbs;
    else
        memset(&s->cbs, 0, sizeof(s->cbs));
    s->user = user;
}

int flare__sim_sock_write(flare_io_sock *s, const uint8_t *data, size_t len)
{
    if (s->closed || s->shut || s->state == SIM_TCP_FAILED)
        return FLARE_ERR_STATE;
    int rv;
    if (write_direct(s, data, len, &rv))
        return rv;
    rv = flare_buf_append(&s->tx, data, len);
    if (rv < 0)
        return rv;
    if (s->tx.len - s->tx_head > s->lowat)
        s->above_lowat = 1;
    if (s->ev_pump.idx == FLARE__SIM_EV_IDLE)
        pump(s);
    return 0;
}

size_t flare__sim_sock_pending(flare_io_sock *s)
{
    return s->tx.len - s->tx_head;
}

void flare__sim_sock_read_pause(flare_io_sock *s, int paused)
{
    if (s->closed || s->dead)
        return;
    s->rpaused = paused != 0;
    if (!paused && s->ooo)
        flare__sim_ev_schedule(s->h->sim, &s->ev_resume, s->h->sim->now);
}

void flare__sim_sock_set_lowat(flare_io_sock *s, size_t lowat)
{
    s->lowat = lowat;
}

int flare__sim_sock_addrs(flare_io_sock *s, flare_ipaddr *local, flare_ipaddr *remote)
{
    if (local)
        *local = s->local;
    if (remote)
        *remote = s->remote;
    return 0;
}

void flare__sim_sock_shutdown(flare_io_sock *s)
{
    if (s->closed || s->shut)
        return;
    s->shut = 1;
    if (s->ev_pump.idx == FLARE__SIM_EV_IDLE)
        pump(s);
}

void flare__sim_sock_close(flare_io_sock *s, int abort)
{
    if (!s || s->closed)
        return;
    s->closed = 1;
    memset(&s->cbs, 0, sizeof(s->cbs));
    int synced = s->state == SIM_TCP_EST || s->state == SIM_TCP_SYN_RCVD || s->got_syn;
    if (abort || s->state != SIM_TCP_EST) {
        if (synced && s->state != SIM_TCP_FAILED)
            send_ctl(s, FLARE_SIM_RST);
        sock_destroy(s);
        return;
    }
    /* Graceful: the socket lives on, silently, until its data and FIN left. */
    s->shut = 1;
    if (s->fin_sent)
        sock_destroy(s);
    else if (s->ev_pump.idx == FLARE__SIM_EV_IDLE)
        pump(s);
}
