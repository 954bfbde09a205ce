/*
 * The host's own addresses: listen addresses, and external addresses learnt
 * from identify's observed addresses through the address manager
 * (include/flare/addrmgr.h). When the confirmed set or the NAT type changes
 * the host reports FLARE_HOST_EV_ADDRS_CHANGED and tells the services (identify
 * pushes, AutoNAT probes).
 */
#include "core/mem.h"
#include "host/host_int.h"

static void addrs_check_version(flare_host *h)
{
    uint64_t v = flare_addrmgr_version(h->addrmgr);
    if (v == h->addrmgr_version)
        return;
    h->addrmgr_version = v;
    flare_host_event ev = {.type = FLARE_HOST_EV_ADDRS_CHANGED};
    flare__host_emit(h, &ev);
    flare__svc_addrs_changed(h, FLARE__ADDRS_EXTERNAL);
}

static void arm(flare_host *h)
{
    flare_tstamp d = flare_addrmgr_expiry(h->addrmgr);
    if (d == FLARE_TSTAMP_NEVER)
        h->io->ops->timer_stop(h->addrmgr_timer);
    else
        h->io->ops->timer_start(h->addrmgr_timer, d);
}

static void on_timer(flare_io_timer *t, void *user)
{
    flare_host *h = user;
    (void)t;
    flare_addrmgr_handle_expiry(h->addrmgr, flare_io_now(h->io));
    addrs_check_version(h);
    arm(h);
}

int flare__addrs_init(flare_host *h)
{
    flare_addrmgr_settings s;
    flare_addrmgr_settings_default(&s);
    s.doc_is_public = h->cfg.doc_addrs_public;
    if (h->cfg.doc_addrs_public)
        s.v4_group_bits = 32; /* lab and simulator peers share a TEST-NET /24 */
    int rv = flare_addrmgr_new(&h->addrmgr, &s, h->mem);
    if (rv == 0)
        rv = h->io->ops->timer_new(h->io, on_timer, h, &h->addrmgr_timer);
    return rv;
}

void flare__addrs_free(flare_host *h)
{
    if (h->addrmgr_timer)
        h->io->ops->timer_del(h->addrmgr_timer);
    flare_addrmgr_del(h->addrmgr);
}

void flare__addrs_listen_added(flare_host *h, const flare_multiaddr *ma)
{
    flare_addrmgr_add_listen_addr(h->addrmgr, ma);
    flare__svc_addrs_changed(h, FLARE__ADDRS_LISTEN);
}

void flare__addrs_observed(flare_host *h, flare_conn *c, const flare_multiaddr *observed)
{
    if (c->limited)
        return;
    flare_tstamp now = flare_io_now(h->io);
    flare_multiaddr la;
    flare_addrmgr_observe(h->addrmgr, &c->peer, &c->remote_ip, flare__conn_local_ma(c, &la),
                          c->outbound, observed, now);
    addrs_check_version(h);
    arm(h);
}

void flare__addrs_conn_closed(flare_host *h, flare_conn *c)
{
    if (!h->addrmgr || c->limited || !c->opened_reported)
        return;
    flare_multiaddr la;
    flare_addrmgr_conn_closed(h->addrmgr, &c->peer, flare__conn_local_ma(c, &la),
                              flare_io_now(h->io));
    arm(h);
}

size_t flare__addrs_advertised(flare_host *h, flare_multiaddr *out, size_t cap)
{
    size_t n = 0;
    flare_multiaddr listen[16];
    size_t nl = flare_host_listen_addrs(h, listen, 16);
    for (size_t i = 0; i < nl && n < cap; i++)
        if (flare_multiaddr_classify(&listen[i]) != FLARE_MA_UNSPECIFIED)
            out[n++] = listen[i];
    if (n < cap)
        n += flare__svc_addrs(h, out + n, cap - n);
    flare_multiaddr ext[16];
    int k = flare_addrmgr_external(h->addrmgr, flare_io_now(h->io), ext, 16, 0);
    for (int i = 0; i < k && n < cap; i++) {
        int dup = 0;
        for (size_t j = 0; j < n && !dup; j++)
            dup = flare_multiaddr_equal(&out[j], &ext[i]);
        if (!dup)
            out[n++] = ext[i];
    }
    return n;
}

size_t flare_host_external_addrs(flare_host *h, flare_multiaddr *out, size_t cap,
                                 int include_candidates)
{
    int k = flare_addrmgr_external(h->addrmgr, flare_io_now(h->io), out, cap, include_candidates);
    return k > 0 ? (size_t)k : 0;
}

flare_nat_type flare_host_nat_type(flare_host *h, int family)
{
    return flare_addrmgr_nat_type(h->addrmgr, flare_io_now(h->io), family, FLARE_MA_TCP);
}
