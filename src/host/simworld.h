/* A simulated Flare world for tests, the demo and benchmarks (header-only:
 * it is scenario code, not part of the library API): a public relay R,
 * a private listener B behind NAT-B holding a reservation on R, and a
 * private dialer A behind NAT-A that reaches B through R; DCUtR then tries
 * to connect them directly. The dw_host_make / dw_tcp_addr / dw_dial /
 * dw_echo helpers serve other simulator scenarios too. */
#ifndef FLARE_HOST_SIMWORLD_H
#define FLARE_HOST_SIMWORLD_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flare/host.h"
#include "flare/relay_server.h"
#include "flare/sim.h"

/* The relay's address in dw_world. */
#define DW_RELAY_IP "198.51.100.10"

typedef struct dw_node {
    flare_sim_host *sh;
    flare_host *h;
    int rsv_ok, punch_done, punch_err, identified;
    int rsv_failed, rsv_lost, relay_reserved, circ_opened, circ_closed;
    int opened, closed, last_close_err, pings;
    const char *punch_reason;
    flare_multiaddr relayed;
    flare_multiaddr direct_addr;
    unsigned attempt;
    flare_tstamp relay_rtt, done_at, first_step_at;
    FILE *log; /* optional timeline */
    const char *name;
} dw_node;

typedef struct dw_world {
    flare_sim *sim;
    flare_sim_nat *nat_a, *nat_b;
    dw_node r, a, b;
    const flare_mem *mem; /* the simulator's and every host's (NULL: libc) */
    int dial_status, dial_calls, dial_accepted;
    flare_tstamp dial_started, relayed_up;
} dw_world;

typedef struct dw_params {
    flare_sim_nat_config nat_a, nat_b;
    flare_tstamp delay_a, delay_b, delay_r; /* one-way per link */
    double loss;
    uint64_t seed;
    FILE *log;
    flare_tstamp delay_ab;                  /* A's and B's own links (0) */
    const flare_host_settings *cfg;         /* every host's; NULL: dw_config_default */
    const flare_relay_server_config *relay; /* R's; NULL: the defaults */
    const flare_mem *mem;                   /* the simulator's and hosts' (NULL: libc) */
} dw_params;

static inline void dw_params_default(dw_params *p)
{
    memset(p, 0, sizeof(*p));
    flare_sim_nat_config_default(&p->nat_a);
    flare_sim_nat_config_default(&p->nat_b);
    p->delay_a = p->delay_b = p->delay_r = 25 * FLARE_NS_PER_MS;
    p->seed = 1;
}

/* The library's host defaults, with the simulator's TEST-NET addresses
 * counted as public. */
static inline void dw_config_default(flare_host_settings *cfg)
{
    flare_host_settings_default(cfg);
    cfg->doc_addrs_public = 1;
}

/* ma = /ip4/IP/tcp/PORT, then /p2p/PEER unless peer is NULL. Returns 0 or
 * the multiaddr error. */
static inline int dw_tcp_addr(flare_multiaddr *ma, const char *ip, int port,
                              const flare_peerid *peer)
{
    char s[96];
    snprintf(s, sizeof(s), "/ip4/%s/tcp/%d", ip, port);
    int rv = flare_multiaddr_parse(ma, s);
    return rv || !peer ? rv : flare_multiaddr_with_peerid(ma, peer);
}

/* What dw_host_make builds: a simulated host on lan at ip and a Flare host
 * on it. */
typedef struct dw_host_spec {
    const char *name;
    flare_sim_lan *lan;
    const char *ip;
    flare_sim_link link;
    uint8_t seed[32];               /* the host key's */
    const flare_host_settings *cfg; /* NULL: dw_config_default */
    flare_host_event_cb on_event;
    void *user;
    int listen_port;      /* 0: does not listen */
    const flare_mem *mem; /* the host's (NULL: libc) */
} dw_host_spec;

/* Makes the hosts of sp into *sh and *h. Returns 0 or the first error
 * (FLARE_ERR_NOMEM when the simulated host could not be made); what was made
 * is freed by flare_host_del(*h) and flare_sim_del. */
static inline int dw_host_make(flare_sim *sim, const dw_host_spec *sp, flare_sim_host **sh,
                               flare_host **h)
{
    *sh = flare_sim_host_new(sim, sp->name);
    if (!*sh)
        return FLARE_ERR_NOMEM;
    int rv = flare_sim_host_add_addr(*sh, sp->lan, sp->ip);
    if (rv)
        return rv;
    flare_sim_link_set(*sh, &sp->link);
    flare_privkey k;
    if ((rv = flare_privkey_from_seed(&k, sp->seed)) != 0)
        return rv;
    flare_host_settings cfg;
    if (sp->cfg)
        cfg = *sp->cfg;
    else
        dw_config_default(&cfg);
    if ((rv = flare_host_new(h, flare_sim_host_io(*sh), &k, &cfg, sp->mem)) != 0)
        return rv;
    flare_host_set_event_cb(*h, sp->on_event, sp->user);
    if (!sp->listen_port)
        return 0;
    flare_multiaddr ma;
    if ((rv = dw_tcp_addr(&ma, sp->ip, sp->listen_port, NULL)) != 0)
        return rv;
    return flare_host_listen(*h, &ma);
}

/* Runs the simulation for ms milliseconds. */
static inline void dw_run_ms(flare_sim *sim, long ms)
{
    flare_sim_run_for(sim, (flare_tstamp)ms * FLARE_NS_PER_MS);
}

/* A dial's outcome, filled by dw_dial_cb (user = the dw_dial). */
typedef struct dw_dial {
    int calls, status;
    flare_conn *conn;
} dw_dial;

static inline void dw_dial_cb(flare_host *h, flare_conn *c, int status, void *user)
{
    dw_dial *d = user;
    (void)h;
    d->calls++;
    d->status = status;
    d->conn = c;
}

/* An echo service: flare_host_set_handler(h, proto, &dw_echo_cbs, errs, ..)
 * with errs an int counting failed writes, or NULL. */
static inline void dw_echo_data(flare_stream *s, const uint8_t *d, size_t len, void *user)
{
    int rv = flare_stream_write(s, d, len);
    if (rv != 0 && rv != 1 && user)
        ++*(int *)user;
    if (rv == 1)
        flare_stream_pause(s, 1); /* backpressure: read again once drained */
}

static inline void dw_echo_writable(flare_stream *s, void *user)
{
    (void)user;
    flare_stream_pause(s, 0);
}

static inline void dw_echo_eof(flare_stream *s, void *user)
{
    (void)user;
    flare_stream_close_write(s);
}

static const flare_stream_cbs dw_echo_cbs = {
    .on_data = dw_echo_data, .on_eof = dw_echo_eof, .on_writable = dw_echo_writable};

static inline void dw_event(flare_host *h, const flare_host_event *ev, void *user)
{
    dw_node *n = user;
    char a[512] = "";
    flare_tstamp now = flare_io_now(flare_host_io(h));
    const flare_multiaddr *ma = ev->type == FLARE_HOST_EV_RESERVATION_OK ? ev->u.reservation.addr
                                : ev->type == FLARE_HOST_EV_HOLEPUNCH    ? ev->u.holepunch.addr
                                                                         : NULL;
    if (ma)
        flare_multiaddr_to_string(ma, a, sizeof(a));
    switch (ev->type) {
    case FLARE_HOST_EV_RESERVATION_OK:
        n->rsv_ok++;
        if (ev->u.reservation.addr)
            n->relayed = *ev->u.reservation.addr;
        if (n->log)
            fprintf(n->log, "%9.3f s  %s  reservation on the relay: %s\n", now / 1e9, n->name, a);
        break;
    case FLARE_HOST_EV_HOLEPUNCH_STEP:
        if (!n->first_step_at)
            n->first_step_at = now;
        if (n->log)
            fprintf(n->log, "%9.3f s  %s  dcutr %-17s attempt %u%s%s%s%s\n", now / 1e9, n->name,
                    ev->u.holepunch_step.step, ev->u.holepunch_step.attempt,
                    ev->u.holepunch_step.rtt ? " rtt " : "",
                    ev->u.holepunch_step.rtt
                        ? (snprintf(a, sizeof(a), "%.1f ms", ev->u.holepunch_step.rtt / 1e6), a)
                        : "",
                    ev->u.holepunch_step.reason ? " " : "",
                    ev->u.holepunch_step.reason ? ev->u.holepunch_step.reason : "");
        break;
    case FLARE_HOST_EV_HOLEPUNCH:
        n->punch_done++;
        n->punch_err = ev->u.holepunch.error;
        n->punch_reason = ev->u.holepunch.reason;
        n->attempt = ev->u.holepunch.attempt;
        n->relay_rtt = ev->u.holepunch.rtt;
        n->done_at = now;
        if (!ev->u.holepunch.error && ev->u.holepunch.addr)
            n->direct_addr = *ev->u.holepunch.addr;
        if (n->log)
            fprintf(n->log, "%9.3f s  %s  hole punch %s %s\n", now / 1e9, n->name,
                    ev->u.holepunch.error ? "FAILED:" : "succeeded: direct connection",
                    ev->u.holepunch.error
                        ? (ev->u.holepunch.reason ? ev->u.holepunch.reason
                                                  : flare_strerror(ev->u.holepunch.error))
                        : a);
        break;
    case FLARE_HOST_EV_IDENTIFIED:
        n->identified++;
        break;
    case FLARE_HOST_EV_RESERVATION_FAILED:
        n->rsv_failed++;
        break;
    case FLARE_HOST_EV_RESERVATION_LOST:
        n->rsv_lost++;
        break;
    case FLARE_HOST_EV_RELAY_RESERVED:
        n->relay_reserved++;
        break;
    case FLARE_HOST_EV_RELAY_CIRCUIT_OPENED:
        n->circ_opened++;
        break;
    case FLARE_HOST_EV_RELAY_CIRCUIT_CLOSED:
        n->circ_closed++;
        break;
    case FLARE_HOST_EV_CONN_OPENED:
        n->opened++;
        break;
    case FLARE_HOST_EV_CONN_CLOSED:
        n->closed++;
        n->last_close_err = ev->u.conn.error;
        break;
    case FLARE_HOST_EV_PING:
        n->pings++;
        break;
    default:
        break;
    }
}

/* Node n of the world: listens on ip:4001; cfg NULL: dw_config_default.
 * Returns 0 or the first error. */
static inline int dw_node_make(dw_world *w, dw_node *n, const char *name, flare_sim_lan *lan,
                               const char *ip, uint8_t seedb, flare_tstamp delay, double loss,
                               FILE *log, const flare_host_settings *cfg)
{
    n->name = name;
    n->log = log;
    dw_host_spec sp = {.name = name,
                       .lan = lan,
                       .ip = ip,
                       .link = {.delay = delay, .loss = loss},
                       .seed = {seedb},
                       .cfg = cfg,
                       .on_event = dw_event,
                       .user = n,
                       .listen_port = 4001,
                       .mem = w->mem};
    return dw_host_make(w->sim, &sp, &n->sh, &n->h);
}

static inline void dw_host(dw_world *w, dw_node *n, const char *name, flare_sim_lan *lan,
                           const char *ip, uint8_t seedb, flare_tstamp delay, double loss,
                           FILE *log)
{
    dw_node_make(w, n, name, lan, ip, seedb, delay, loss, log, NULL);
}

/* ma = the relay's address with its peer ID. Returns 0 or the error. */
static inline int dw_relay_addr(dw_world *w, flare_multiaddr *ma)
{
    return dw_tcp_addr(ma, DW_RELAY_IP, 4001, flare_host_peerid(w->r.h));
}

static inline void dw_dialed(flare_host *h, flare_conn *c, int status, void *user)
{
    dw_world *w = user;
    (void)c;
    w->dial_calls++;
    w->dial_status = status;
    w->relayed_up = flare_io_now(flare_host_io(h));
}

/* Builds the world: the NATs, R (a relay server), A and B, each listening
 * on port 4001. Returns 0 or the first error. */
static inline int dw_build(dw_world *w, const dw_params *p)
{
    memset(w, 0, sizeof(*w));
    w->mem = p->mem;
    w->sim = flare_sim_new(p->seed, p->mem);
    if (!w->sim)
        return FLARE_ERR_NOMEM;
    flare_sim_lan *inet = flare_sim_internet(w->sim);
    flare_sim_lan *la = flare_sim_lan_new(w->sim, "lan-a");
    flare_sim_lan *lb = flare_sim_lan_new(w->sim, "lan-b");
    if (!la || !lb)
        return FLARE_ERR_NOMEM;
    w->nat_a = flare_sim_nat_new(w->sim, "nat-a", inet, "203.0.113.1", la, "10.0.1.1", &p->nat_a);
    w->nat_b = flare_sim_nat_new(w->sim, "nat-b", inet, "203.0.113.2", lb, "10.0.2.1", &p->nat_b);
    if (!w->nat_a || !w->nat_b)
        return FLARE_ERR_NOMEM;
    flare_sim_link nl = {.delay = p->delay_a, .loss = p->loss};
    flare_sim_nat_link_set(w->nat_a, &nl);
    nl.delay = p->delay_b;
    flare_sim_nat_link_set(w->nat_b, &nl);
    int rv;
    if ((rv = dw_node_make(w, &w->r, "R", inet, DW_RELAY_IP, 1, p->delay_r, 0, p->log, p->cfg)) ||
        (rv = dw_node_make(w, &w->a, "A", la, "10.0.1.2", 2, p->delay_ab, 0, p->log, p->cfg)) ||
        (rv = dw_node_make(w, &w->b, "B", lb, "10.0.2.2", 3, p->delay_ab, 0, p->log, p->cfg)))
        return rv;
    return flare_host_enable_relay_server(w->r.h, p->relay);
}

/* Builds the world, B reserves, A dials B through R. Returns 0 when the
 * relayed connection is up (the punch then runs by itself). */
static inline int dw_setup(dw_world *w, const dw_params *p)
{
    if (dw_build(w, p))
        return -1;
    flare_multiaddr rma;
    dw_relay_addr(w, &rma);
    if (flare_host_relay_reserve(w->b.h, &rma))
        return -1;
    /* A knows R too (it learns its own candidate address from R). */
    flare_host_dial(w->a.h, &rma, NULL, NULL, NULL);
    for (int i = 0; i < 100 && !w->b.rsv_ok; i++)
        flare_sim_run_for(w->sim, 100 * FLARE_NS_PER_MS);
    if (!w->b.rsv_ok)
        return -1;
    flare_sim_run_for(w->sim, 500 * FLARE_NS_PER_MS);
    w->dial_started = flare_sim_now(w->sim);
    if (p->log)
        fprintf(p->log, "%9.3f s  A  dials B through the relay\n", w->dial_started / 1e9);
    if (flare_host_dial(w->a.h, &w->b.relayed, NULL, dw_dialed, w))
        return -1;
    w->dial_accepted = 1;
    for (int i = 0; i < 100 && !w->dial_calls; i++)
        flare_sim_run_for(w->sim, 100 * FLARE_NS_PER_MS);
    return w->dial_calls && w->dial_status == 0 ? 0 : -1;
}

/* Runs until B reports the punch's end (or limit). */
static inline void dw_run_punch(dw_world *w, flare_tstamp limit)
{
    flare_tstamp end = flare_sim_now(w->sim) + limit;
    while (!w->b.punch_done && flare_sim_now(w->sim) < end)
        flare_sim_run_for(w->sim, 100 * FLARE_NS_PER_MS);
    flare_sim_run_for(w->sim, 3 * FLARE_NS_PER_S); /* the relayed connection's grace */
}

/* 1 if A has a direct (not limited) connection to B. */
static inline int dw_direct(dw_world *w)
{
    flare_conn *c = flare_host_conn_to(w->a.h, flare_host_peerid(w->b.h));
    return c && !flare_conn_is_limited(c);
}

static inline void dw_free(dw_world *w)
{
    flare_host_del(w->a.h);
    flare_host_del(w->b.h);
    flare_host_del(w->r.h);
    flare_sim_del(w->sim);
}

#endif
