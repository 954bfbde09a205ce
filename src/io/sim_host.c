/* The flare_io driver of a simulated host: time, randomness, timers, UDP
 * sockets and local port bookkeeping. TCP is in sim_tcp.c. */
#include <string.h>

#include "core/mem.h"
#include "io/sim_internal.h"

#define HOST(io) SIM_CONTAINER(io, flare_sim_host, io)

int flare__sim_ip_is_any(const flare_ipaddr *a)
{
    static const uint8_t zero[16];
    return a->family == 0 || memcmp(a->ip, zero, a->family == 4 ? 4 : 16) == 0;
}

int flare__sim_bind_overlap(const flare_ipaddr *a, const flare_ipaddr *b)
{
    if (a->port != b->port || a->family != b->family)
        return 0;
    return flare__sim_ip_is_any(a) || flare__sim_ip_is_any(b) || flare_ipaddr_same_ip(a, b);
}

int flare__sim_check_local(flare_sim_host *h, const flare_ipaddr *local)
{
    if (!local || (local->family != 4 && local->family != 6))
        return FLARE_ERR_INVALID_ARG;
    if (!flare__sim_ip_is_any(local) && !flare__sim_host_iface(h, local))
        return FLARE_ERR_INVALID_ARG; /* EADDRNOTAVAIL: not our address */
    return 0;
}

static int udp_port_used(flare_sim_host *h, const flare_ipaddr *local, int reuse)
{
    for (flare_io_udp *u = h->udps; u; u = u->next)
        if (flare__sim_bind_overlap(&u->local, local) && !(reuse && u->reuse))
            return 1;
    return 0;
}

static int port_used(flare_sim_host *h, uint8_t proto, const flare_ipaddr *local, int reuse)
{
    return proto == SIM_TCP ? flare__sim_tcp_port_used(h, local, reuse)
                            : udp_port_used(h, local, reuse);
}

uint16_t flare__sim_ephemeral_port(flare_sim_host *h, uint8_t proto, const flare_ipaddr *ip)
{
    flare_ipaddr a = *ip;
    memset(a.ip, 0, sizeof(a.ip)); /* any address: the port is free on all */
    for (unsigned i = 0; i < 65536 - 49152; i++) {
        a.port = h->next_port;
        h->next_port = h->next_port == 65535 ? 49152 : (uint16_t)(h->next_port + 1);
        if (!port_used(h, proto, &a, 0))
            return a.port;
    }
    return 0;
}

int flare__sim_bind_addr(flare_sim_host *h, uint8_t proto, const flare_ipaddr *local, int reuse,
                         flare_ipaddr *bound)
{
    int rv = flare__sim_check_local(h, local);
    if (rv < 0)
        return rv;
    *bound = *local;
    if (bound->port == 0)
        bound->port = flare__sim_ephemeral_port(h, proto, bound);
    if (bound->port == 0 || port_used(h, proto, bound, reuse))
        return FLARE_ERR_ADDR_IN_USE;
    return 0;
}

/* --- time and randomness --------------------------------------------------- */

static flare_tstamp sim_now(flare_io *io)
{
    return HOST(io)->sim->now;
}

static void sim_random(flare_io *io, uint8_t *dst, size_t len)
{
    flare_rng r = flare_prng_rng(&HOST(io)->prng);
    r.fn(dst, len, r.user);
}

/* --- timers ----------------------------------------------------------------- */

static int sim_timer_new(flare_io *io, flare_io_timer_cb cb, void *user, flare_io_timer **out)
{
    flare_sim_host *h = HOST(io);
    flare_io_timer *t = flare__calloc(h->sim->mem, 1, sizeof(*t));
    if (!t)
        return FLARE_ERR_NOMEM;
    flare__sim_ev_init(&t->ev, SIM_EV_TIMER);
    t->h = h;
    t->cb = cb;
    t->user = user;
    LIST_INSERT(h->timers, t);
    *out = t;
    return 0;
}

/* Idle and keepalive timers are pushed later on nearly every packet. Such a
 * push keeps the queued entry and only records the new deadline and its
 * start order; when the wheel moves the entry toward the heap (rekey, no
 * event) or, in the heap, it comes up early, the timer re-queues itself
 * with that order, so it fires exactly when and in the order an eager
 * reschedule would have. A push earlier (or to the queued time,
 * where the order changes) reschedules at once. */
static void sim_timer_start(flare_io_timer *t, flare_tstamp deadline)
{
    flare_sim *sim = t->h->sim;
    if (deadline < sim->now)
        deadline = sim->now;
    t->deadline = deadline;
    if (t->ev.idx != FLARE__SIM_EV_IDLE && t->queued < deadline) {
        t->seq = sim->seq++;
        return;
    }
    flare__sim_ev_schedule(sim, &t->ev, deadline);
    t->queued = deadline;
    t->seq = sim->seq - 1;
}

static void sim_timer_stop(flare_io_timer *t)
{
    flare__sim_ev_cancel(t->h->sim, &t->ev);
}

static void sim_timer_del(flare_io_timer *t)
{
    if (!t)
        return;
    flare__sim_ev_cancel(t->h->sim, &t->ev);
    LIST_REMOVE(t->h->timers, t);
    flare__free(t->h->sim->mem, t);
}

int flare__sim_timer_rekey(sim_ev *ev, flare_tstamp t, flare_tstamp *nt, uint64_t *nseq)
{
    if (ev->kind != SIM_EV_TIMER)
        return 0;
    flare_io_timer *tm = SIM_CONTAINER(ev, flare_io_timer, ev);
    if (tm->deadline <= t)
        return 0;
    /* The key flare__sim_timer_event would requeue it with. */
    *nt = tm->deadline;
    *nseq = tm->seq;
    tm->queued = tm->deadline;
    return 1;
}

void flare__sim_timer_event(flare_sim *sim, sim_ev *ev)
{
    /* The callback may re-arm or delete t: nothing touches t afterwards. */
    flare_io_timer *t = SIM_CONTAINER(ev, flare_io_timer, ev);
    if (sim->now < t->deadline) { /* pushed later since it was queued */
        flare__sim_ev_schedule_seq(sim, &t->ev, t->deadline, t->seq);
        t->queued = t->deadline;
        return;
    }
    t->cb(t, t->user);
}

/* --- UDP ---------------------------------------------------------------------- */

static void udp_free(flare_io_udp *u)
{
    flare__free(u->h->sim->mem, u);
}

static int sim_udp_bind(flare_io *io, const flare_ipaddr *local, unsigned flags,
                        flare_io_udp_recv_cb cb, void *user, flare_io_udp **out)
{
    flare_sim_host *h = HOST(io);
    flare_ipaddr a;
    int reuse = (flags & FLARE_IO_REUSE) != 0;
    if (!cb)
        return FLARE_ERR_INVALID_ARG;
    int rv = flare__sim_bind_addr(h, SIM_UDP, local, reuse, &a);
    if (rv < 0)
        return rv;
    flare_io_udp *u = flare__calloc(h->sim->mem, 1, sizeof(*u));
    if (!u)
        return FLARE_ERR_NOMEM;
    u->h = h;
    u->local = a;
    u->reuse = reuse;
    u->cb = cb;
    u->user = user;
    LIST_INSERT(h->udps, u);
    *out = u;
    return 0;
}

static int sim_udp_addr(flare_io_udp *u, flare_ipaddr *local)
{
    *local = u->local;
    return 0;
}

static int sim_udp_send(flare_io_udp *u, const flare_ipaddr *to, const uint8_t *data, size_t len)
{
    flare_sim_host *h = u->h;
    if (!to || to->family != u->local.family || to->port == 0 || flare__sim_ip_is_any(to))
        return FLARE_ERR_INVALID_ARG;
    if (len > 65507)
        return FLARE_ERR_TOO_LARGE;
    sim_iface *ifc = flare__sim_ip_is_any(&u->local) ? flare__sim_host_route(h, to)
                                                     : flare__sim_host_iface(h, &u->local);
    if (!ifc)
        return FLARE_ERR_UNREACHABLE;
    flare_ipaddr src = ifc->ip;
    src.port = u->local.port;
    sim_pkt *p = flare__sim_pkt_new(h->sim, SIM_UDP, 0, &src, to, data, len);
    if (!p)
        return FLARE_ERR_NOMEM;
    flare__sim_host_send(h, ifc, p);
    return 0;
}

static void sim_udp_close(flare_io_udp *u)
{
    if (!u || u->closed)
        return;
    u->closed = 1;
    LIST_REMOVE(u->h->udps, u);
    if (!u->busy)
        udp_free(u);
}

void flare__sim_udp_input(flare_sim_host *h, sim_pkt *p)
{
    flare_io_udp *u = h->udps;
    while (u && !(u->local.port == p->dst.port && u->local.family == p->dst.family &&
                  (flare__sim_ip_is_any(&u->local) || flare_ipaddr_same_ip(&u->local, &p->dst))))
        u = u->next;
    flare__sim_trace(h->sim, &h->node.name, u ? FLARE_SIM_DELIVERED : FLARE_SIM_DROP_NOSOCKET, p);
    if (u) {
        u->busy++;
        u->cb(u, &p->src, p->data, p->len, u->user);
        if (--u->busy == 0 && u->closed)
            udp_free(u);
    }
    flare__free(h->sim->mem, p);
}

void flare__sim_udp_timers_free_all(flare_sim_host *h)
{
    while (h->udps) {
        flare_io_udp *u = h->udps;
        LIST_REMOVE(h->udps, u);
        udp_free(u);
    }
    while (h->timers)
        sim_timer_del(h->timers);
}

static uint64_t sim_unix_time(flare_io *io)
{
    return FLARE_SIM_EPOCH + sim_now(io) / FLARE_NS_PER_S;
}

/* The gateway of the first LAN of h (of that IP version) that has one: the
 * inside address of its NAT box. */
static int sim_gateway(flare_io *io, int family, flare_ipaddr *gw, flare_ipaddr *local)
{
    flare_sim_host *h = HOST(io);
    for (size_t i = 0; i < h->node.n_ifaces; i++) {
        sim_iface *ifc = h->node.ifaces[i];
        if (ifc->ip.family != family || !ifc->lan->gateway)
            continue;
        *gw = ifc->lan->gateway->ip;
        *local = ifc->ip;
        return 0;
    }
    return FLARE_ERR_NOT_FOUND;
}

const flare_io_ops flare__sim_io_ops = {
    .now = sim_now,
    .unix_time = sim_unix_time,
    .random = sim_random,
    .listen = flare__sim_listen,
    .listener_addr = flare__sim_listener_addr,
    .listener_close = flare__sim_listener_close,
    .dial = flare__sim_dial,
    .sock_set_cbs = flare__sim_sock_set_cbs,
    .sock_write = flare__sim_sock_write,
    .sock_pending = flare__sim_sock_pending,
    .sock_read_pause = flare__sim_sock_read_pause,
    .sock_set_lowat = flare__sim_sock_set_lowat,
    .sock_addrs = flare__sim_sock_addrs,
    .sock_shutdown = flare__sim_sock_shutdown,
    .sock_close = flare__sim_sock_close,
    .timer_new = sim_timer_new,
    .timer_start = sim_timer_start,
    .timer_stop = sim_timer_stop,
    .timer_del = sim_timer_del,
    .udp_bind = sim_udp_bind,
    .udp_addr = sim_udp_addr,
    .udp_send = sim_udp_send,
    .udp_close = sim_udp_close,
    .gateway = sim_gateway,
};
