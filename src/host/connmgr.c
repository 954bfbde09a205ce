/*
 * Connection manager (go-libp2p's BasicConnMgr in spirit): when more than
 * conn_high_water connections are open, the least useful ones are closed
 * until conn_low_water are left (connections carrying streams only until
 * conn_high_water is reached). Never closed: connections to protected
 * peers (the relays holding our reservations, peers we are hole punching
 * with, whatever the application protects), connections a service protects
 * (its protects hook: e.g. the relay server's reservation holders and
 * circuits), connections whose stream carries another connection,
 * connections younger than conn_grace_period, and connections still in
 * their handshake. Among the rest, first those with no
 * stream, then the ones with the fewest streams; among equals the least
 * recently used first (a stream opened or closed on it; a DHT lookup's
 * connection, used once, goes before one the application keeps using).
 *
 * Trimming runs from a timer (never inside the callback of a connection
 * event), at most once per FLARE__CONNMGR_SILENCE.
 *
 * Protections are per peer and tag; they outlive connections (a peer is
 * protected before we connect and after a reconnect), and live in a small
 * hash table. Services' own protections are not copied there: they are
 * asked directly.
 */
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "host/host_int.h"

#define FLARE__CONNMGR_SILENCE (1 * FLARE_NS_PER_S)
#define BUCKETS                64

typedef struct prot {
    struct prot *next;
    flare_peerid peer;
    size_t ntags;
    char tags[FLARE_CONNMGR_MAX_TAGS][FLARE_CONNMGR_TAG_MAX];
} prot;

struct flare__connmgr {
    prot *buckets[BUCKETS];
    size_t nprot;
    flare_io_timer *timer;
    flare_tstamp last_trim;
    int armed;
    uint64_t trimmed;
};

static size_t bucket_of(const flare_peerid *p)
{
    /* The tail of a multihash is digest bytes: well mixed. */
    return p->len ? p->bytes[p->len - 1] % BUCKETS : 0;
}

static struct flare__connmgr *cm_get(flare_host *h)
{
    if (!h->connmgr)
        h->connmgr = flare__calloc(h->mem, 1, sizeof(*h->connmgr));
    return h->connmgr;
}

void flare__connmgr_free(flare_host *h)
{
    struct flare__connmgr *cm = h->connmgr;
    if (!cm)
        return;
    for (size_t b = 0; b < BUCKETS; b++)
        while (cm->buckets[b]) {
            prot *p = cm->buckets[b];
            cm->buckets[b] = p->next;
            flare__free(h->mem, p);
        }
    if (cm->timer)
        h->io->ops->timer_del(cm->timer);
    flare__free(h->mem, cm);
    h->connmgr = NULL;
}

/* ---- protection --------------------------------------------------------------------- */

static prot *prot_find(const struct flare__connmgr *cm, const flare_peerid *peer)
{
    for (prot *p = cm ? cm->buckets[bucket_of(peer)] : NULL; p; p = p->next)
        if (flare_peerid_equal(&p->peer, peer))
            return p;
    return NULL;
}

int flare__connmgr_protect(flare_host *h, const flare_peerid *peer, const char *tag, int on)
{
    size_t tl = tag ? strlen(tag) : 0;
    if (!peer || peer->len == 0 || tl == 0 || tl >= FLARE_CONNMGR_TAG_MAX)
        return FLARE_ERR_INVALID_ARG;
    struct flare__connmgr *cm = on ? cm_get(h) : h->connmgr;
    if (!cm)
        return on ? FLARE_ERR_NOMEM : 0;
    prot *p = prot_find(cm, peer);
    size_t i = 0;
    while (p && i < p->ntags && strcmp(p->tags[i], tag) != 0)
        i++;
    if (!on) {
        if (!p || i == p->ntags)
            return 0;
        memcpy(p->tags[i], p->tags[--p->ntags], FLARE_CONNMGR_TAG_MAX);
        if (p->ntags == 0) {
            for (prot **pp = &cm->buckets[bucket_of(peer)]; *pp; pp = &(*pp)->next)
                if (*pp == p) {
                    *pp = p->next;
                    break;
                }
            flare__free(h->mem, p);
            cm->nprot--;
        }
        return 0;
    }
    if (p && i < p->ntags)
        return 0; /* already */
    if (p && p->ntags == FLARE_CONNMGR_MAX_TAGS)
        return FLARE_ERR_LIMIT;
    if (!p) {
        p = flare__calloc(h->mem, 1, sizeof(*p));
        if (!p)
            return FLARE_ERR_NOMEM;
        p->peer = *peer;
        size_t b = bucket_of(peer);
        p->next = cm->buckets[b];
        cm->buckets[b] = p;
        cm->nprot++;
    }
    memcpy(p->tags[p->ntags++], tag, tl + 1);
    return 0;
}

int flare_host_protect_peer(flare_host *h, const flare_peerid *peer, const char *tag, int on)
{
    if (!h)
        return FLARE_ERR_INVALID_ARG;
    return flare__connmgr_protect(h, peer, tag, on);
}

int flare_host_is_protected(flare_host *h, const flare_peerid *peer, const char *tag)
{
    prot *p = h && peer ? prot_find(h->connmgr, peer) : NULL;
    if (!p || !tag)
        return p != NULL;
    for (size_t i = 0; i < p->ntags; i++)
        if (strcmp(p->tags[i], tag) == 0)
            return 1;
    return 0;
}

/* ---- trimming ------------------------------------------------------------------------- */

typedef struct cand {
    uint64_t id;
    size_t nstreams;
    flare_tstamp used; /* last use, or when it opened */
} cand;

static int cand_cmp(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if ((x->nstreams == 0) != (y->nstreams == 0))
        return x->nstreams == 0 ? -1 : 1;
    if (x->nstreams != y->nstreams)
        return x->nstreams < y->nstreams ? -1 : 1;
    if (x->used != y->used)
        return x->used < y->used ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static void on_timer(flare_io_timer *t, void *user);

/* A stream of c carries another connection of ours: cutting c would cut it. */
static int carries_conn(const flare_conn *c)
{
    for (const flare_stream *s = c->streams; s; s = s->next)
        if (s->carrier)
            return 1;
    return 0;
}

/* 1 if c is not a candidate; *young gets the end of its grace period if
 * that is the reason. */
static int keep(flare_host *h, const flare_conn *c, flare_tstamp now, flare_tstamp *young)
{
    if (c->state != FLARE__CONN_READY || c->close_pending)
        return 1;
    if (now - c->opened_at < h->cfg.conn_grace_period) {
        *young = c->opened_at + h->cfg.conn_grace_period;
        return 1;
    }
    return prot_find(h->connmgr, &c->peer) != NULL || carries_conn(c) || flare__svc_protects(h, c);
}

static void arm(flare_host *h, flare_tstamp at)
{
    struct flare__connmgr *cm = h->connmgr;
    if (cm->armed)
        return;
    if (!cm->timer && h->io->ops->timer_new(h->io, on_timer, h, &cm->timer) != 0)
        return;
    flare_tstamp quiet = cm->last_trim ? cm->last_trim + FLARE__CONNMGR_SILENCE : 0;
    cm->armed = 1;
    h->io->ops->timer_start(cm->timer, at > quiet ? at : quiet);
}

static flare_conn *conn_by_id(flare_host *h, uint64_t id)
{
    for (flare_conn *c = h->conns; c; c = c->next)
        if (c->id == id)
            return c;
    return NULL;
}

static void trim(flare_host *h)
{
    struct flare__connmgr *cm = h->connmgr;
    flare_tstamp now = flare_io_now(h->io);
    cm->last_trim = now;
    if (h->nconns <= h->cfg.conn_high_water)
        return;
    cand *v = flare__malloc(h->mem, h->nconns * sizeof(*v));
    if (!v)
        return;
    size_t n = 0;
    flare_tstamp next = FLARE_TSTAMP_NEVER;
    for (flare_conn *c = h->conns; c && n < h->nconns; c = c->next) {
        flare_tstamp young = FLARE_TSTAMP_NEVER;
        if (keep(h, c, now, &young)) {
            next = young < next ? young : next;
            continue;
        }
        v[n].id = c->id;
        v[n].nstreams = c->nstreams;
        v[n].used = c->last_used > c->opened_at ? c->last_used : c->opened_at;
        n++;
    }
    qsort(v, n, sizeof(*v), cand_cmp);
    /* Closing runs events, whose handlers may close others: look each up. */
    for (size_t i = 0; i < n && h->nconns > h->cfg.conn_low_water; i++) {
        flare_conn *c = conn_by_id(h, v[i].id);
        if (!c || c->close_pending)
            continue;
        /* Connections carrying streams only go to get back under high
         * water: traffic is cut only when there is no other way. */
        if (c->nstreams && h->nconns <= h->cfg.conn_high_water)
            break;
        cm->trimmed++;
        flare_conn_close(c);
    }
    flare__free(h->mem, v);
    /* Still above: look again when the young ones come of age. */
    if (h->nconns > h->cfg.conn_high_water && next != FLARE_TSTAMP_NEVER)
        arm(h, next);
}

static void on_timer(flare_io_timer *t, void *user)
{
    flare_host *h = user;
    (void)t;
    h->connmgr->armed = 0;
    trim(h);
}

void flare__connmgr_conn_opened(flare_conn *c)
{
    flare_host *h = c->host;
    c->opened_at = flare_io_now(h->io);
    if (h->cfg.conn_high_water == 0 || h->nconns <= h->cfg.conn_high_water)
        return;
    if (cm_get(h))
        arm(h, c->opened_at);
}

uint64_t flare_host_connmgr_trimmed(const flare_host *h)
{
    return h->connmgr ? h->connmgr->trimmed : 0;
}
