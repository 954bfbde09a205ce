/* A simulated Flare world for tests, the demo and benchmarks (header-only:
 * it is scenario code, not part of the library API): a public relay R,
 * a private listener B behind NAT-B holding a reservation on R, and a
 * private dialer A behind NAT-A that reaches B through R; DCUtR then tries
 * to connect them directly. */
#ifndef FLARE_HOST_SIMWORLD_H
#define FLARE_HOST_SIMWORLD_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flare/host.h"
#include "flare/sim.h"

typedef struct dw_node {
    flare_sim_host *sh;
    flare_host *h;
    int rsv_ok, punch_done, punch_err, identified;
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
    int dial_status, dial_calls;
    flare_tstamp dial_started, relayed_up;
} dw_world;

typedef struct dw_params {
    flare_sim_nat_config nat_a, nat_b;
    flare_tstamp delay_a, delay_b, delay_r; /* one-way per link */
    double loss;
    uint64_t seed;
    FILE *log;
} dw_params;

static inline void dw_params_default(dw_params *p)
{
    memset(p, 0, sizeof(*p));
    flare_sim_nat_config_default(&p->nat_a);
    flare_sim_nat_config_default(&p->nat_b);
    p->delay_a = p->delay_b = p->delay_r = 25 * FLARE_NS_PER_MS;
    p->seed = 1;
}

static inline void dw_event(flare_host *h, const flare_host_event *ev, void *user)
{
    dw_node *n = user;
    char a[512] = "", pid[FLARE_PEERID_STR_MAX] = "";
    flare_tstamp now = flare_io_now(flare_host_io(h));
    if (ev->addr)
        flare_multiaddr_to_string(ev->addr, a, sizeof(a));
    if (ev->peer && ev->peer->len)
        flare_peerid_to_string(ev->peer, pid, sizeof(pid));
    switch (ev->type) {
    case FLARE_HOST_EV_RESERVATION_OK:
        n->rsv_ok++;
        if (ev->addr)
            n->relayed = *ev->addr;
        if (n->log)
            fprintf(n->log, "%9.3f s  %s  reservation on the relay: %s\n", now / 1e9, n->name, a);
        break;
    case FLARE_HOST_EV_HOLEPUNCH_STEP:
        if (!n->first_step_at)
            n->first_step_at = now;
        if (n->log)
            fprintf(n->log, "%9.3f s  %s  dcutr %-17s attempt %u%s%s%s%s\n", now / 1e9, n->name,
                    ev->step, ev->attempt, ev->rtt ? " rtt " : "",
                    ev->rtt ? (snprintf(a, sizeof(a), "%.1f ms", ev->rtt / 1e6), a) : "",
                    ev->reason ? " " : "", ev->reason ? ev->reason : "");
        break;
    case FLARE_HOST_EV_HOLEPUNCH:
        n->punch_done++;
        n->punch_err = ev->error;
        n->punch_reason = ev->reason;
        n->attempt = ev->attempt;
        n->relay_rtt = ev->rtt;
        n->done_at = now;
        if (!ev->error && ev->addr)
            n->direct_addr = *ev->addr;
        if (n->log)
            fprintf(n->log, "%9.3f s  %s  hole punch %s %s\n", now / 1e9, n->name,
                    ev->error ? "FAILED:" : "succeeded: direct connection",
                    ev->error ? (ev->reason ? ev->reason : flare_strerror(ev->error)) : a);
        break;
    case FLARE_HOST_EV_IDENTIFIED:
        n->identified++;
        break;
    default:
        break;
    }
}

static inline void dw_host(dw_world *w, dw_node *n, const char *name, flare_sim_lan *lan,
                           const char *ip, uint8_t seedb, flare_tstamp delay, double loss,
                           FILE *log)
{
    n->name = name;
    n->log = log;
    n->sh = flare_sim_host_new(w->sim, name);
    flare_sim_host_add_addr(n->sh, lan, ip);
    flare_sim_link l = {.delay = delay, .loss = loss};
    flare_sim_link_set(n->sh, &l);
    uint8_t seed[32] = {seedb};
    flare_privkey k;
    flare_privkey_from_seed(&k, seed);
    flare_host_config cfg;
    flare_host_config_default(&cfg);
    cfg.doc_addrs_public = 1;
    flare_host_new(&n->h, flare_sim_host_io(n->sh), &k, &cfg, NULL);
    flare_host_set_event_cb(n->h, dw_event, n);
    char s[96];
    flare_multiaddr ma;
    snprintf(s, sizeof(s), "/ip4/%s/tcp/4001", ip);
    flare_multiaddr_parse(&ma, s);
    flare_host_listen(n->h, &ma);
}

static inline void dw_dialed(flare_host *h, flare_conn *c, int status, void *user)
{
    dw_world *w = user;
    (void)c;
    w->dial_calls++;
    w->dial_status = status;
    w->relayed_up = flare_io_now(flare_host_io(h));
}

/* Builds the world, B reserves, A dials B through R. Returns 0 when the
 * relayed connection is up (the punch then runs by itself). */
static inline int dw_setup(dw_world *w, const dw_params *p)
{
    memset(w, 0, sizeof(*w));
    w->sim = flare_sim_new(p->seed, NULL);
    flare_sim_lan *inet = flare_sim_internet(w->sim);
    flare_sim_lan *la = flare_sim_lan_new(w->sim, "lan-a");
    flare_sim_lan *lb = flare_sim_lan_new(w->sim, "lan-b");
    w->nat_a = flare_sim_nat_new(w->sim, "nat-a", inet, "203.0.113.1", la, "10.0.1.1", &p->nat_a);
    w->nat_b = flare_sim_nat_new(w->sim, "nat-b", inet, "203.0.113.2", lb, "10.0.2.1", &p->nat_b);
    flare_sim_link nl = {.delay = p->delay_a, .loss = p->loss};
    flare_sim_nat_link_set(w->nat_a, &nl);
    nl.delay = p->delay_b;
    flare_sim_nat_link_set(w->nat_b, &nl);
    dw_host(w, &w->r, "R", inet, "198.51.100.10", 1, p->delay_r, 0, p->log);
    dw_host(w, &w->a, "A", la, "10.0.1.2", 2, 0, 0, p->log);
    dw_host(w, &w->b, "B", lb, "10.0.2.2", 3, 0, 0, p->log);
    if (flare_host_enable_relay_server(w->r.h, NULL))
        return -1;
    flare_multiaddr rma;
    flare_multiaddr_parse(&rma, "/ip4/198.51.100.10/tcp/4001");
    flare_multiaddr_with_peerid(&rma, flare_host_peerid(w->r.h));
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
