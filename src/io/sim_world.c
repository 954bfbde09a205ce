/* The hole-punching scenario of flare/sim_world.h: a relay, two private
 * hosts behind NATs. It uses only the public host and simulator API. */
#include <stdio.h>
#include <string.h>

#include "flare/sim_world.h"

void flare_sim_world_settings_default(flare_sim_world_settings *s)
{
    memset(s, 0, sizeof(*s));
    s->struct_size = sizeof(*s);
    flare_sim_nat_config_default(&s->nat_a);
    flare_sim_nat_config_default(&s->nat_b);
    s->delay_a = s->delay_b = s->delay_r = 25 * FLARE_NS_PER_MS;
    s->seed = 1;
}

static void log_step(flare_sim_world_node *n, flare_tstamp now, const flare_host_event *ev)
{
    char rtt[32] = "";
    if (ev->u.holepunch_step.rtt)
        snprintf(rtt, sizeof(rtt), " rtt %.1f ms", ev->u.holepunch_step.rtt / 1e6);
    const char *reason = ev->u.holepunch_step.reason;
    fprintf(n->log, "%9.3f s  %s  dcutr %-17s attempt %u%s%s%s\n", now / 1e9, n->name,
            ev->u.holepunch_step.step, ev->u.holepunch_step.attempt, rtt, reason ? " " : "",
            reason ? reason : "");
}

static void on_holepunch(flare_sim_world_node *n, flare_tstamp now, const flare_host_event *ev)
{
    n->punch_done++;
    n->punch_err = ev->u.holepunch.error;
    n->punch_reason = ev->u.holepunch.reason;
    n->attempt = ev->u.holepunch.attempt;
    n->relay_rtt = ev->u.holepunch.rtt;
    n->done_at = now;
    if (!ev->u.holepunch.error && ev->u.holepunch.addr)
        n->direct_addr = *ev->u.holepunch.addr;
    if (!n->log)
        return;
    char a[512] = "";
    if (ev->u.holepunch.addr)
        flare_multiaddr_to_string(ev->u.holepunch.addr, a, sizeof(a));
    if (ev->u.holepunch.error)
        fprintf(n->log, "%9.3f s  %s  hole punch FAILED: %s\n", now / 1e9, n->name,
                ev->u.holepunch.reason ? ev->u.holepunch.reason
                                       : flare_strerror(ev->u.holepunch.error));
    else
        fprintf(n->log, "%9.3f s  %s  hole punch succeeded: direct connection %s\n", now / 1e9,
                n->name, a);
}

static void on_reserved(flare_sim_world_node *n, flare_tstamp now, const flare_host_event *ev)
{
    n->rsv_ok++;
    if (!ev->u.reservation.addr)
        return;
    n->relayed = *ev->u.reservation.addr;
    if (!n->log)
        return;
    char a[512];
    flare_multiaddr_to_string(ev->u.reservation.addr, a, sizeof(a));
    fprintf(n->log, "%9.3f s  %s  reservation on the relay: %s\n", now / 1e9, n->name, a);
}

void flare_sim_world_on_event(flare_host *h, const flare_host_event *ev, void *node)
{
    flare_sim_world_node *n = node;
    flare_tstamp now = flare_io_now(flare_host_io(h));
    switch (ev->type) {
    case FLARE_HOST_EV_RESERVATION_OK:
        on_reserved(n, now, ev);
        break;
    case FLARE_HOST_EV_HOLEPUNCH_STEP:
        if (!n->first_step_at)
            n->first_step_at = now;
        if (n->log)
            log_step(n, now, ev);
        break;
    case FLARE_HOST_EV_HOLEPUNCH:
        on_holepunch(n, now, ev);
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

/* ma = /ip4/IP/tcp/4001, then /p2p/PEER unless peer is NULL. */
static int port_addr(flare_multiaddr *ma, const char *ip, const flare_peerid *peer)
{
    char s[64];
    snprintf(s, sizeof(s), "/ip4/%s/tcp/4001", ip);
    int rv = flare_multiaddr_parse(ma, s);
    return rv || !peer ? rv : flare_multiaddr_with_peerid(ma, peer);
}

/* Node n on lan at ip, listening on port 4001, its key made from seedb. */
static int node_make(flare_sim_world *w, flare_sim_world_node *n, const char *name,
                     flare_sim_lan *lan, const char *ip, uint8_t seedb, flare_tstamp delay,
                     const flare_sim_world_settings *s)
{
    n->name = name;
    n->log = s->log;
    if (!(n->sh = flare_sim_host_new(w->sim, name)))
        return FLARE_ERR_NOMEM;
    int rv = flare_sim_host_add_addr(n->sh, lan, ip);
    if (rv)
        return rv;
    flare_sim_link_set(n->sh, &(flare_sim_link){.delay = delay});
    flare_privkey k;
    uint8_t seed[32] = {seedb};
    flare_host_settings hs;
    if (s->host)
        hs = *s->host;
    else {
        flare_host_settings_default(&hs);
        hs.doc_addrs_public = 1;
    }
    flare_multiaddr ma;
    if ((rv = flare_privkey_from_seed(&k, seed)) ||
        (rv = flare_host_new(&n->h, flare_sim_host_io(n->sh), &k, &hs, w->mem)))
        return rv;
    flare_host_set_event_cb(n->h, flare_sim_world_on_event, n);
    if ((rv = port_addr(&ma, ip, NULL)))
        return rv;
    return flare_host_listen(n->h, &ma);
}

static int nats_make(flare_sim_world *w, const flare_sim_world_settings *s, flare_sim_lan *la,
                     flare_sim_lan *lb)
{
    flare_sim_lan *inet = flare_sim_internet(w->sim);
    w->nat_a = flare_sim_nat_new(w->sim, "nat-a", inet, "203.0.113.1", la, "10.0.1.1", &s->nat_a);
    w->nat_b = flare_sim_nat_new(w->sim, "nat-b", inet, "203.0.113.2", lb, "10.0.2.1", &s->nat_b);
    if (!w->nat_a || !w->nat_b)
        return FLARE_ERR_NOMEM;
    flare_sim_nat_link_set(w->nat_a, &(flare_sim_link){.delay = s->delay_a, .loss = s->loss});
    flare_sim_nat_link_set(w->nat_b, &(flare_sim_link){.delay = s->delay_b, .loss = s->loss});
    return 0;
}

int flare_sim_world_build(flare_sim_world *w, const flare_sim_world_settings *s)
{
    flare_sim_world_settings def;
    if (!s) {
        flare_sim_world_settings_default(&def);
        s = &def;
    }
    memset(w, 0, sizeof(*w));
    if (s->struct_size != sizeof(*s))
        return FLARE_ERR_INVALID_ARG;
    w->mem = s->mem;
    if (!(w->sim = flare_sim_new(s->seed, s->mem)))
        return FLARE_ERR_NOMEM;
    flare_sim_lan *la = flare_sim_lan_new(w->sim, "lan-a");
    flare_sim_lan *lb = flare_sim_lan_new(w->sim, "lan-b");
    if (!la || !lb)
        return FLARE_ERR_NOMEM;
    int rv;
    if ((rv = nats_make(w, s, la, lb)) ||
        (rv = node_make(w, &w->r, "R", flare_sim_internet(w->sim), FLARE_SIM_WORLD_RELAY_IP, 1,
                        s->delay_r, s)) ||
        (rv = node_make(w, &w->a, "A", la, "10.0.1.2", 2, s->delay_ab, s)) ||
        (rv = node_make(w, &w->b, "B", lb, "10.0.2.2", 3, s->delay_ab, s)))
        return rv;
    return flare_host_enable_relay_server(w->r.h, s->relay);
}

int flare_sim_world_relay_addr(const flare_sim_world *w, flare_multiaddr *ma)
{
    return port_addr(ma, FLARE_SIM_WORLD_RELAY_IP, flare_host_peerid(w->r.h));
}

static void on_dialed(flare_host *h, flare_conn *c, int status, void *user)
{
    flare_sim_world *w = user;
    (void)c;
    w->dial_calls++;
    w->dial_status = status;
    w->relayed_up = flare_io_now(flare_host_io(h));
}

int flare_sim_world_dial_relayed(flare_sim_world *w)
{
    w->dial_started = flare_sim_now(w->sim);
    int rv = flare_host_dial(w->a.h, &w->b.relayed, NULL, on_dialed, w);
    w->dial_accepted = rv == 0;
    return rv;
}

/* Runs in steps of 100 ms until *flag is set or 10 s have passed. */
static void run_until(flare_sim *sim, const int *flag)
{
    for (int i = 0; i < 100 && !*flag; i++)
        flare_sim_run_for(sim, 100 * FLARE_NS_PER_MS);
}

int flare_sim_world_setup(flare_sim_world *w, const flare_sim_world_settings *s)
{
    int rv = flare_sim_world_build(w, s);
    flare_multiaddr rma;
    if (rv || (rv = flare_sim_world_relay_addr(w, &rma)) ||
        (rv = flare_host_relay_reserve(w->b.h, &rma)))
        return rv;
    /* A knows R too (it learns its own candidate address from R). */
    flare_host_dial(w->a.h, &rma, NULL, NULL, NULL);
    run_until(w->sim, &w->b.rsv_ok);
    if (!w->b.rsv_ok)
        return FLARE_ERR_TIMEOUT;
    flare_sim_run_for(w->sim, 500 * FLARE_NS_PER_MS);
    if (w->a.log)
        fprintf(w->a.log, "%9.3f s  A  dials B through the relay\n", flare_sim_now(w->sim) / 1e9);
    if ((rv = flare_sim_world_dial_relayed(w)))
        return rv;
    run_until(w->sim, &w->dial_calls);
    return !w->dial_calls ? FLARE_ERR_TIMEOUT : w->dial_status;
}

void flare_sim_world_run_punch(flare_sim_world *w, flare_tstamp limit)
{
    flare_tstamp end = flare_sim_now(w->sim) + limit;
    while (!w->b.punch_done && flare_sim_now(w->sim) < end)
        flare_sim_run_for(w->sim, 100 * FLARE_NS_PER_MS);
    flare_sim_run_for(w->sim, 3 * FLARE_NS_PER_S);
}

int flare_sim_world_direct(const flare_sim_world *w)
{
    flare_conn *c = flare_host_conn_to(w->a.h, flare_host_peerid(w->b.h));
    return c && !flare_conn_is_limited(c);
}

void flare_sim_world_free(flare_sim_world *w)
{
    flare_host_del(w->a.h);
    flare_host_del(w->b.h);
    flare_host_del(w->r.h);
    flare_sim_del(w->sim);
    w->a.h = w->b.h = w->r.h = NULL;
    w->sim = NULL;
}
