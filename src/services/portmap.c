/*
 * Port mapping: while enabled (flare_host_enable_portmap), every TCP or UDP
 * listen address on a private (or unspecified) IPv4 address gets a mapping
 * on the default gateway: PCP first, then NAT-PMP (the sans-I/O client of
 * flare/portmap.h over a UDP socket of the driver), then UPnP IGD through
 * the driver (which runs miniupnpc off the loop) when the driver has it.
 *
 * A mapped address is a candidate for AutoNAT (flare__portmap_candidates),
 * not an advertised address: it is advertised once AutoNAT found it
 * reachable (a gateway may lie, or sit behind another NAT), unless
 * cfg.advertise_unconfirmed. Mappings are renewed by the client core (PCP,
 * NAT-PMP) or here (UPnP, at half the lease), and deleted when the host is
 * destroyed.
 */
#include <stdio.h>
#include <string.h>

#include "core/mem.h"
#include "services/services.h"

#define PM_MAX 4 /* listen addresses mapped at once */

typedef enum { M_CLIENT, M_UPNP, M_UPNP_MAPPED, M_WAIT, M_OFF } pm_mode;

typedef struct pm_map {
    struct flare__portmap *pm;
    int tcp;
    flare_multiaddr listen;
    flare_ipaddr internal;
    pm_mode mode;
    flare_portmap_client c;
    flare_io_udp *udp;
    flare_io_timer *timer;
    flare_io_upnp *op;
    flare_tstamp upnp_renew;
    flare_portmap_proto proto; /* of the current mapping */
    flare_multiaddr ext;       /* len 0: none */
    uint32_t lifetime;
} pm_map;

typedef struct flare__portmap {
    flare_host *h;
    int enabled;
    flare_portmap_settings cfg;
    pm_map *maps[PM_MAX];
    size_t n;
    size_t advertised; /* mapped addresses in our advertised set, last we looked */
} pm_t;

static int client_enabled(const pm_t *pm)
{
    return pm->cfg.enable_pcp || pm->cfg.enable_natpmp;
}

static int upnp_enabled(const pm_t *pm)
{
    return pm->cfg.enable_upnp && pm->h->io->ops->upnp;
}

static void emit(pm_map *m, const char *what, flare_portmap_proto proto, int error)
{
    flare_host_event ev = {.type = FLARE_HOST_EV_PORTMAP,
                           .u.portmap = {.what = what,
                                         .protocol = proto,
                                         .internal = &m->listen,
                                         .external = m->ext.len ? &m->ext : NULL,
                                         .lifetime = m->lifetime,
                                         .error = error}};
    flare__host_emit(m->pm->h, &ev);
}

/* Our candidate set changed: AutoNAT re-reads it (and identify pushes). */
static void candidates_changed(pm_t *pm)
{
    if (!pm->h->destroying)
        flare__svc_addrs_changed(pm->h, FLARE__ADDRS_EXTERNAL);
}

static void set_mapping(pm_map *m, flare_portmap_proto proto, const flare_ipaddr *ext,
                        uint32_t lifetime, const char *what)
{
    flare_multiaddr old = m->ext;
    if (flare_multiaddr_from_ipaddr(&m->ext, ext, m->tcp ? FLARE_MA_TCP : FLARE_MA_UDP) != 0)
        m->ext.len = 0;
    m->proto = proto;
    m->lifetime = lifetime;
    emit(m, what, proto, 0);
    if (!old.len || !flare_multiaddr_equal(&old, &m->ext))
        candidates_changed(m->pm);
}

static void clear_mapping(pm_map *m, int error)
{
    if (!m->ext.len)
        return;
    emit(m, "lost", m->proto, error);
    m->ext.len = 0;
    m->lifetime = 0;
    m->proto = FLARE_PORTMAP_NONE;
    candidates_changed(m->pm);
}

static void arm(pm_map *m, flare_tstamp at)
{
    flare_io *io = m->pm->h->io;
    if (at == FLARE_TSTAMP_NEVER)
        io->ops->timer_stop(m->timer);
    else
        io->ops->timer_start(m->timer, at);
}

/* ---- UPnP (through the driver) -------------------------------------------------------- */

static void upnp_start(pm_map *m);

static void upnp_done(flare_io_upnp *op, const flare_io_upnp_result *r, void *user)
{
    pm_map *m = user;
    flare_io *io = m->pm->h->io;
    flare_tstamp now = flare_io_now(io);
    (void)op;
    m->op = NULL;
    if (r->status == 0 && r->external.family == 4 && r->external.port) {
        int renewed = m->mode == M_UPNP_MAPPED && m->ext.len;
        m->mode = M_UPNP_MAPPED;
        uint32_t lt = r->lifetime ? r->lifetime : m->pm->cfg.lifetime; /* 0: permanent */
        flare_tstamp renew = (flare_tstamp)lt * FLARE_NS_PER_S / 2;
        if (renew < m->pm->cfg.min_renew)
            renew = m->pm->cfg.min_renew;
        m->upnp_renew = now + renew;
        set_mapping(m, FLARE_PORTMAP_UPNP, &r->external, r->lifetime,
                    renewed ? "renewed" : "mapped");
        arm(m, m->upnp_renew);
        return;
    }
    clear_mapping(m, r->status ? r->status : FLARE_ERR_PROTO);
    emit(m, "failed", FLARE_PORTMAP_UPNP, r->status ? r->status : FLARE_ERR_PROTO);
    m->mode = M_WAIT;
    arm(m, now + m->pm->cfg.retry_interval);
}

static void upnp_start(pm_map *m)
{
    flare_io *io = m->pm->h->io;
    flare_io_upnp_req req = {.tcp = m->tcp,
                             .internal = m->internal,
                             .external_port = m->ext.len ? 0 : m->internal.port,
                             .lifetime = m->pm->cfg.lifetime};
    if (m->ext.len) {
        flare_ipaddr e;
        int proto;
        if (flare_multiaddr_to_ipaddr(&m->ext, &e, &proto) == 0)
            req.external_port = e.port;
    }
    snprintf(req.description, sizeof(req.description), "flare %s/%u", m->tcp ? "tcp" : "udp",
             (unsigned)m->internal.port);
    if (m->mode != M_UPNP_MAPPED)
        m->mode = M_UPNP;
    int rv = io->ops->upnp(io, &req, upnp_done, m, &m->op);
    if (rv) {
        flare_io_upnp_result r = {.status = rv};
        upnp_done(NULL, &r, m);
    }
}

/* ---- PCP / NAT-PMP (the client core over a UDP socket) -------------------------------- */

static void client_pump(pm_map *m)
{
    flare_portmap_client *c = &m->c;
    uint8_t buf[FLARE_PCP_MAP_LEN];
    size_t n = flare_portmap_client_poll_send(c, buf, sizeof(buf));
    if (n && m->udp)
        (void)m->pm->h->io->ops->udp_send(m->udp, &c->gateway, buf, n);
    flare_portmap_ev ev;
    int to_upnp = 0;
    while (m->mode == M_CLIENT && flare_portmap_client_poll_event(c, &ev)) {
        switch (ev.kind) {
        case FLARE_PORTMAP_EV_MAPPED:
        case FLARE_PORTMAP_EV_RENEWED:
            set_mapping(m, ev.proto, &ev.external, ev.lifetime,
                        ev.kind == FLARE_PORTMAP_EV_MAPPED ? "mapped" : "renewed");
            break;
        case FLARE_PORTMAP_EV_LOST:
            clear_mapping(m, ev.error);
            break;
        case FLARE_PORTMAP_EV_FAILED:
            emit(m, "failed", ev.proto, ev.error);
            to_upnp = upnp_enabled(m->pm);
            break;
        }
    }
    if (to_upnp) {
        /* The client waits in its backoff; UPnP gets its turn meanwhile. */
        upnp_start(m);
        return;
    }
    if (m->mode == M_CLIENT)
        arm(m, flare_portmap_client_deadline(c));
}

static void on_udp(flare_io_udp *u, const flare_ipaddr *from, const uint8_t *data, size_t len,
                   void *user)
{
    pm_map *m = user;
    (void)u;
    if (m->mode != M_CLIENT)
        return;
    if (flare_portmap_client_input(&m->c, from, data, len, flare_io_now(m->pm->h->io)) == 0)
        client_pump(m);
}

/* Finds the gateway (it may have changed since the last attempt) and sets
 * the client and its socket up for it. Returns 0 or the error. */
static int setup(pm_map *m)
{
    pm_t *pm = m->pm;
    flare_io *io = pm->h->io;
    flare_ipaddr gw, local, ip;
    int proto;
    if (!client_enabled(pm) && !upnp_enabled(pm))
        return FLARE_ERR_UNSUPPORTED;
    int rv = io->ops->gateway ? io->ops->gateway(io, 4, &gw, &local) : FLARE_ERR_UNSUPPORTED;
    if (rv == 0)
        rv = flare_multiaddr_to_ipaddr(&m->listen, &ip, &proto);
    if (rv)
        return rv;
    m->internal = flare_ipaddr_classify(&ip) == FLARE_MA_UNSPECIFIED ? local : ip;
    m->internal.port = ip.port;
    if (!client_enabled(pm))
        return 0;
    if (m->udp)
        io->ops->udp_close(m->udp);
    m->udp = NULL;
    local = m->internal;
    local.port = 0;
    rv = flare_portmap_client_init(&m->c, &pm->cfg, m->tcp, &m->internal, &gw, pm->h->rng);
    return rv ? rv : io->ops->udp_bind(io, &local, 0, on_udp, m, &m->udp);
}

/* From the timer only (events never run inside an API call). */
static void start(pm_map *m)
{
    flare_tstamp now = flare_io_now(m->pm->h->io);
    int rv = setup(m);
    if (rv) {
        emit(m, "failed", FLARE_PORTMAP_NONE, rv);
        m->mode = rv == FLARE_ERR_UNSUPPORTED ? M_OFF : M_WAIT; /* a gateway may come */
        if (m->mode == M_WAIT)
            arm(m, now + m->pm->cfg.retry_interval);
        return;
    }
    if (client_enabled(m->pm)) {
        m->mode = M_CLIENT;
        flare_portmap_client_start(&m->c, now);
        client_pump(m);
    } else {
        upnp_start(m);
    }
}

static void on_timer(flare_io_timer *t, void *user)
{
    pm_map *m = user;
    flare_tstamp now = flare_io_now(m->pm->h->io);
    (void)t;
    switch (m->mode) {
    case M_CLIENT:
        flare_portmap_client_timeout(&m->c, now);
        client_pump(m);
        break;
    case M_UPNP_MAPPED:
        if (!m->op)
            upnp_start(m);
        break;
    case M_WAIT:
        start(m);
        break;
    default:
        break;
    }
}

/* ---- the listen addresses we map -------------------------------------------------------- */

static void map_free(pm_t *pm, pm_map *m)
{
    flare_io *io = pm->h->io;
    flare_tstamp now = flare_io_now(io);
    if (m->mode == M_CLIENT || flare_portmap_client_mapped(&m->c)) { /* else never set up */
        flare_portmap_client_stop(&m->c, now);                       /* queues the delete */
        uint8_t buf[FLARE_PCP_MAP_LEN];
        size_t n = flare_portmap_client_poll_send(&m->c, buf, sizeof(buf));
        if (n && m->udp)
            (void)io->ops->udp_send(m->udp, &m->c.gateway, buf, n);
    }
    if (m->op)
        io->ops->upnp_cancel(m->op);
    if (m->mode == M_UPNP_MAPPED && m->ext.len && io->ops->upnp) {
        flare_io_upnp_req req = {.unmap = 1, .tcp = m->tcp, .internal = m->internal};
        flare_ipaddr e;
        int proto;
        if (flare_multiaddr_to_ipaddr(&m->ext, &e, &proto) == 0) {
            req.external_port = e.port;
            (void)io->ops->upnp(io, &req, NULL, NULL, NULL); /* finishes on its own */
        }
    }
    if (m->udp)
        io->ops->udp_close(m->udp);
    if (m->timer)
        io->ops->timer_del(m->timer);
    flare__free(pm->h->mem, m);
}

/* Whether ma (a listen address) needs a mapping: IPv4, TCP or UDP, on a
 * private or unspecified address. */
static int wants_mapping(const pm_t *pm, const flare_multiaddr *ma, flare_ipaddr *ip, int *tcp)
{
    int proto;
    if (flare_multiaddr_to_ipaddr(ma, ip, &proto) != 0 || ip->family != 4 || !ip->port)
        return 0;
    flare_ma_class c = flare_multiaddr_classify(ma);
    if (c != FLARE_MA_PRIVATE && c != FLARE_MA_UNSPECIFIED && c != FLARE_MA_CGNAT)
        return 0;
    (void)pm;
    *tcp = proto == FLARE_MA_TCP;
    return 1;
}

static void add_listen(pm_t *pm, const flare_multiaddr *ma)
{
    flare_ipaddr ip;
    int tcp;
    if (pm->n == PM_MAX || !wants_mapping(pm, ma, &ip, &tcp))
        return;
    for (size_t i = 0; i < pm->n; i++)
        if (flare_multiaddr_equal(&pm->maps[i]->listen, ma))
            return;
    flare_io *io = pm->h->io;
    pm_map *m = flare__calloc(pm->h->mem, 1, sizeof(*m));
    if (!m)
        return;
    m->pm = pm;
    m->tcp = tcp;
    m->listen = *ma;
    m->mode = M_WAIT;
    if (io->ops->timer_new(io, on_timer, m, &m->timer) != 0) {
        flare__free(pm->h->mem, m);
        return;
    }
    pm->maps[pm->n++] = m;
    arm(m, flare_io_now(io)); /* starts from the loop */
}

static void scan_listen(pm_t *pm)
{
    flare_multiaddr l[16];
    size_t k = flare_host_listen_addrs(pm->h, l, 16);
    for (size_t i = 0; i < k; i++)
        add_listen(pm, &l[i]);
}

/* ---- hooks ---------------------------------------------------------------------------- */

static pm_t *state_of(flare_host *h);

size_t flare__portmap_candidates(flare_host *h, flare_multiaddr *out, size_t cap)
{
    pm_t *pm = state_of(h);
    size_t n = 0;
    for (size_t i = 0; pm && i < pm->n && n < cap; i++)
        if (pm->maps[i]->ext.len)
            out[n++] = pm->maps[i]->ext;
    return n;
}

int flare__portmap_maps_to(flare_host *h, const flare_multiaddr *ext, const flare_multiaddr *local)
{
    pm_t *pm = state_of(h);
    flare_ipaddr lip, mip;
    int lproto, mproto;
    if (!pm || flare_multiaddr_to_ipaddr(local, &lip, &lproto) != 0)
        return 0;
    for (size_t i = 0; i < pm->n; i++) {
        const pm_map *m = pm->maps[i];
        if (m->ext.len && flare_multiaddr_equal(&m->ext, ext) &&
            flare_multiaddr_to_ipaddr(&m->listen, &mip, &mproto) == 0 && mproto == lproto &&
            mip.port == lip.port)
            return 1;
    }
    return 0;
}

/* Advertised: mapped addresses AutoNAT found reachable. */
static size_t pm_addrs(flare_host *h, void *state, flare_multiaddr *out, size_t cap)
{
    pm_t *pm = state;
    if (!pm || !pm->enabled)
        return 0;
    flare_multiaddr tested[FLARE_REACH_MAX_ADDRS];
    flare_reach_state st[FLARE_REACH_MAX_ADDRS];
    size_t nt = pm->cfg.advertise_unconfirmed
                    ? 0
                    : flare_host_reachability_addrs(h, tested, st, FLARE_REACH_MAX_ADDRS);
    size_t n = 0;
    for (size_t i = 0; i < pm->n && n < cap; i++) {
        const flare_multiaddr *e = &pm->maps[i]->ext;
        int ok = e->len && pm->cfg.advertise_unconfirmed;
        for (size_t j = 0; j < nt && e->len && !ok; j++)
            ok = st[j] == FLARE_REACH_PUBLIC && flare_multiaddr_equal(&tested[j], e);
        if (ok)
            out[n++] = *e;
    }
    return n;
}

static void pm_addrs_changed(flare_host *h, void *state, flare__addrs_change why)
{
    pm_t *pm = state;
    if (pm && pm->enabled && why == FLARE__ADDRS_LISTEN && !h->destroying)
        scan_listen(pm);
}

/* AutoNAT's verdict changed: a mapped address may now be advertised. */
static void pm_on_event(flare_host *h, void *state, const flare_host_event *ev)
{
    pm_t *pm = state;
    if (!pm || !pm->enabled || ev->type != FLARE_HOST_EV_REACHABILITY)
        return;
    flare_multiaddr tmp[PM_MAX];
    size_t n = pm_addrs(h, pm, tmp, PM_MAX);
    if (n != pm->advertised) {
        pm->advertised = n;
        flare_host_identify_push(h);
    }
}

static int pm_init(flare_host *h, void **state)
{
    pm_t *pm = flare__calloc(h->mem, 1, sizeof(*pm));
    if (!pm)
        return FLARE_ERR_NOMEM;
    pm->h = h;
    *state = pm;
    return 0;
}

static void pm_free(flare_host *h, void *state)
{
    pm_t *pm = state;
    if (!pm)
        return;
    for (size_t i = 0; i < pm->n; i++)
        map_free(pm, pm->maps[i]);
    flare__free(h->mem, pm);
}

const flare__service flare__svc_portmap = {
    .name = "portmap",
    .init = pm_init,
    .free = pm_free,
    .on_addrs_changed = pm_addrs_changed,
    .on_event = pm_on_event,
    .addrs = pm_addrs,
};

static pm_t *state_of(flare_host *h)
{
    return flare__svc_state(h, &flare__svc_portmap);
}

/* ---- API -------------------------------------------------------------------------------- */

int flare_host_enable_portmap(flare_host *h, const flare_portmap_settings *cfg)
{
    pm_t *pm = h ? state_of(h) : NULL;
    if (!pm)
        return FLARE_ERR_UNSUPPORTED;
    if (pm->enabled)
        return FLARE_ERR_EXISTS;
    flare_portmap_settings s;
    if (cfg)
        s = *cfg;
    else
        flare_portmap_settings_default(&s);
    if (s.struct_size != sizeof(s) || s.lifetime < 120 || !s.attempts || !s.retry_initial ||
        !s.retry_interval || (!s.enable_pcp && !s.enable_natpmp && !s.enable_upnp))
        return FLARE_ERR_INVALID_ARG;
    pm->cfg = s;
    pm->enabled = 1;
    scan_listen(pm);
    return 0;
}

size_t flare_host_portmap_mappings(flare_host *h, flare_portmap_info *out, size_t cap)
{
    pm_t *pm = h ? state_of(h) : NULL;
    size_t n = 0;
    for (size_t i = 0; pm && i < pm->n && n < cap; i++) {
        const pm_map *m = pm->maps[i];
        if (!m->ext.len)
            continue;
        out[n].proto = m->proto;
        out[n].internal = m->listen;
        out[n].external = m->ext;
        out[n].lifetime = m->lifetime;
        n++;
    }
    return n;
}
