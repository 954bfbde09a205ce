/*
 * Observing every address family: a dual-stack node learns its external
 * address of a family only from a peer that sees it over that family
 * (identify's observed address; AutoNAT and DCUtR then use it). A node that
 * happens to reach its peers over IPv4 only would never learn its IPv6
 * address behind a stateful firewall, nor an IPv6-first one its IPv4 NAT
 * mapping, and DCUtR's CONNECTs could then share no family at all (each
 * side dials the other's only family, neither opens a filter toward the
 * other). So when an identified direct connection is of one family and we
 * listen on another for which we have neither an external address nor a
 * connection, we dial the same peer once at one of its public addresses of
 * that family. At most one such dial per family per RETRY.
 */
#include "core/mem.h"
#include "services/services.h"

#define RETRY (60 * FLARE_NS_PER_S)

typedef struct families {
    flare_tstamp next_try[2]; /* [0]: IPv4, [1]: IPv6 */
} families;

static int family_of(const flare_multiaddr *ma)
{
    return flare_multiaddr_has(ma, FLARE_MA_IP6)   ? 6
           : flare_multiaddr_has(ma, FLARE_MA_IP4) ? 4
                                                   : 0;
}

static int listens_on(const flare_host *h, int family)
{
    flare_multiaddr l[16];
    size_t n = flare_host_listen_addrs(h, l, 16);
    for (size_t i = 0; i < n; i++)
        if (family_of(&l[i]) == family)
            return 1;
    return 0;
}

/* An external address (candidates too) or a direct connection of family. */
static int family_known(flare_host *h, int family)
{
    flare_multiaddr ext[16];
    size_t n = flare_host_external_addrs(h, ext, 16, 1);
    for (size_t i = 0; i < n; i++)
        if (family_of(&ext[i]) == family)
            return 1;
    for (flare_conn *c = h->conns; c; c = c->next)
        if (!c->limited && !c->close_pending && c->remote_ip.family == family)
            return 1;
    return 0;
}

/* Dials peer at its first dialable public address of family; 1 if started. */
static int dial_family(flare_host *h, const flare_peerid *peer, int family)
{
    flare_peer_info *info = flare__malloc(h->mem, sizeof(*info));
    int started = 0;
    if (!info)
        return 0;
    if (flare_host_peer_info(h, peer, info) == 0) {
        for (size_t i = 0; i < info->naddrs && !started; i++) {
            flare_multiaddr ma = info->addrs[i];
            if (family_of(&ma) != family || flare_multiaddr_is_relayed(&ma) ||
                !flare_ma_class_is_public(flare_multiaddr_classify(&ma), h->cfg.doc_addrs_public) ||
                flare_multiaddr_with_peerid(&ma, peer))
                continue;
            flare_dial_opts o = {.force_new = 1};
            started = flare_host_dial(h, &ma, &o, NULL, NULL) == 0;
        }
    }
    flare__free(h->mem, info);
    return started;
}

static void on_identified(flare_host *h, void *state, flare_conn *c)
{
    families *f = state;
    if (!f || c->limited || c->close_pending)
        return;
    flare_tstamp now = flare_io_now(h->io);
    for (int family = 4; family <= 6; family += 2) {
        flare_tstamp *next = &f->next_try[family == 6];
        if (c->remote_ip.family == family || now < *next || !listens_on(h, family) ||
            family_known(h, family))
            continue;
        if (dial_family(h, &c->peer, family))
            *next = now + RETRY;
    }
}

static int families_init(flare_host *h, void **state)
{
    *state = flare__calloc(h->mem, 1, sizeof(families));
    return *state ? 0 : FLARE_ERR_NOMEM;
}

static void families_free(flare_host *h, void *state)
{
    flare__free(h->mem, state);
}

const flare__service flare__svc_families = {
    .name = "families",
    .init = families_init,
    .free = families_free,
    .on_conn_identified = on_identified,
};
