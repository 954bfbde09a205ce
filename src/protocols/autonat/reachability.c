/* Reachability state machine: see include/flare/reachability.h. */
#include "flare/reachability.h"

#include <string.h>

#include "core/mem.h"
#include "protocols/autonat/autonat_int.h"

void flare_reachability_settings_default(flare_reachability_settings *s)
{
    memset(s, 0, sizeof(*s));
    s->struct_size = sizeof(*s);
    s->confidence = 3;
    s->boot_delay = 15 * FLARE_NS_PER_S;
    s->retry_interval = 90 * FLARE_NS_PER_S;
    s->refresh_interval = 15 * 60 * FLARE_NS_PER_S;
    s->force_delay = 2 * FLARE_NS_PER_S;
}

int flare_reachability_init(flare_reachability *r, const flare_reachability_settings *s,
                            const flare_mem *mem, flare_tstamp now)
{
    memset(r, 0, sizeof(*r));
    if (s && (s->struct_size != sizeof(*s) || !s->confidence || !s->retry_interval ||
              !s->refresh_interval))
        return FLARE_ERR_INVALID_ARG;
    if (s)
        r->s = *s;
    else
        flare_reachability_settings_default(&r->s);
    r->mem = mem;
    r->last_probe = now;
    r->next_probe = now + r->s.boot_delay;
    return 0;
}

void flare_reachability_free(flare_reachability *r)
{
    flare__free(r->mem, r->addrs);
    flare__free(r->mem, r->servers);
    flare__free(r->mem, r->ev);
    r->addrs = NULL;
    r->servers = NULL;
    r->ev = NULL;
    r->naddrs = r->nservers = r->servers_cap = 0;
    r->ev_head = r->ev_count = r->ev_cap = 0;
}

const char *flare_reach_state_name(flare_reach_state s)
{
    switch (s) {
    case FLARE_REACH_PUBLIC:
        return "public";
    case FLARE_REACH_PRIVATE:
        return "private";
    default:
        return "unknown";
    }
}

/* Doubles the ring up to FLARE_REACH_MAX_EVENTS; 0 if it stays as is. */
static int ev_grow(flare_reachability *r)
{
    size_t cap = r->ev_cap ? r->ev_cap * 2 : 2;
    if (cap > FLARE_REACH_MAX_EVENTS)
        return 0;
    flare_reach_event *p = flare__malloc(r->mem, cap * sizeof(*p));
    if (!p)
        return 0;
    for (size_t i = 0; i < r->ev_count; i++)
        p[i] = r->ev[(r->ev_head + i) % r->ev_cap];
    flare__free(r->mem, r->ev);
    r->ev = p;
    r->ev_cap = cap;
    r->ev_head = 0;
    return 1;
}

static void push_event(flare_reachability *r, const flare_reach_event *ev)
{
    if (r->ev_count == r->ev_cap && !ev_grow(r)) {
        if (!r->ev_cap)
            return;
        r->ev_head = (r->ev_head + 1) % r->ev_cap; /* drop the oldest */
        r->ev_count--;
    }
    r->ev[(r->ev_head + r->ev_count) % r->ev_cap] = *ev;
    r->ev_count++;
}

int flare_reachability_poll_event(flare_reachability *r, flare_reach_event *ev)
{
    if (!r->ev_count)
        return 0;
    *ev = r->ev[r->ev_head];
    r->ev_head = (r->ev_head + 1) % r->ev_cap;
    if (--r->ev_count == 0) { /* events are rare: hold no ring between them */
        flare__free(r->mem, r->ev);
        r->ev = NULL;
        r->ev_head = r->ev_cap = 0;
    }
    return 1;
}

static int family_of(const flare_multiaddr *a)
{
    flare_ma_component c;
    size_t off = 0;
    if (flare_multiaddr_next(a, &off, &c) != 1)
        return 0;
    return c.code == FLARE_MA_IP4 ? 4 : c.code == FLARE_MA_IP6 ? 6 : 0;
}

static flare_reach_state aggregate(const flare_reachability *r, int family)
{
    int any_private = 0;
    for (size_t i = 0; i < r->naddrs; i++) {
        if (family_of(&r->addrs[i].addr) != family)
            continue;
        if (r->addrs[i].t.state == FLARE_REACH_PUBLIC)
            return FLARE_REACH_PUBLIC;
        any_private |= r->addrs[i].t.state == FLARE_REACH_PRIVATE;
    }
    return any_private ? FLARE_REACH_PRIVATE : r->v1[family == 6].state;
}

static void refresh_families(flare_reachability *r)
{
    for (int i = 0; i < 2; i++) {
        int fam = i ? 6 : 4;
        flare_reach_state now_state = aggregate(r, fam);
        if (now_state == r->family[i])
            continue;
        flare_reach_event ev = {0};
        ev.kind = FLARE_REACH_EV_FAMILY;
        ev.family = fam;
        ev.old_state = r->family[i];
        ev.new_state = now_state;
        r->family[i] = now_state;
        push_event(r, &ev);
    }
}

static int unsettled(const flare__reach_track *t, unsigned max)
{
    return t->state == FLARE_REACH_UNKNOWN || t->confidence < max;
}

static flare_tstamp interval(const flare_reachability *r)
{
    int need = r->naddrs == 0 && unsettled(&r->v1[0], r->s.confidence) &&
               unsettled(&r->v1[1], r->s.confidence);
    for (size_t i = 0; i < r->naddrs && !need; i++)
        need = unsettled(&r->addrs[i].t, r->s.confidence);
    return need ? r->s.retry_interval : r->s.refresh_interval;
}

static void reschedule(flare_reachability *r, flare_tstamp now)
{
    flare_tstamp next = r->last_probe + interval(r);
    r->next_probe = next < now ? now : next;
}

/* Applies one observation; returns 1 if the state changed. */
static int track_update(flare__reach_track *t, flare_autonat_outcome o, unsigned max,
                        int decay_on_no_info)
{
    flare_reach_state obs = o == FLARE_AUTONAT_REACHABLE     ? FLARE_REACH_PUBLIC
                            : o == FLARE_AUTONAT_UNREACHABLE ? FLARE_REACH_PRIVATE
                                                             : FLARE_REACH_UNKNOWN;
    if (obs == FLARE_REACH_UNKNOWN) {
        if (!decay_on_no_info || t->state == FLARE_REACH_UNKNOWN)
            return 0;
        if (t->confidence > 0) {
            t->confidence--;
            return 0;
        }
        t->state = FLARE_REACH_UNKNOWN;
        return 1;
    }
    if (obs == t->state) {
        if (t->confidence < max)
            t->confidence++;
        return 0;
    }
    if (t->state != FLARE_REACH_UNKNOWN && t->confidence > 0) {
        t->confidence--;
        return 0;
    }
    t->state = obs;
    t->confidence = 0;
    return 1;
}

static flare__reach_addr *find_addr(flare_reachability *r, const flare_multiaddr *addr)
{
    flare_multiaddr a;
    flare__autonat_strip_p2p(&a, addr);
    for (size_t i = 0; i < r->naddrs; i++)
        if (flare_multiaddr_equal(&r->addrs[i].addr, &a))
            return &r->addrs[i];
    return NULL;
}

int flare_reachability_set_addrs(flare_reachability *r, const flare_multiaddr *addrs, size_t n,
                                 flare_tstamp now)
{
    if (n && !addrs)
        return FLARE_ERR_INVALID_ARG;
    if (n > FLARE_REACH_MAX_ADDRS)
        return FLARE_ERR_TOO_LARGE;
    flare__reach_addr next[FLARE_REACH_MAX_ADDRS];
    flare__reach_addr *keep = NULL;
    size_t nn = 0;
    int fresh = 0;
    for (size_t i = 0; i < n; i++) {
        flare__reach_addr *old = find_addr(r, &addrs[i]);
        flare_multiaddr a;
        flare__autonat_strip_p2p(&a, &addrs[i]);
        int dup = 0;
        for (size_t j = 0; j < nn && !dup; j++)
            dup = flare_multiaddr_equal(&next[j].addr, &a);
        if (dup)
            continue;
        next[nn].addr = a;
        next[nn].t = old ? old->t : (flare__reach_track){FLARE_REACH_UNKNOWN, 0};
        fresh |= !old;
        nn++;
    }
    if (nn && !(keep = flare__malloc(r->mem, nn * sizeof(next[0]))))
        return FLARE_ERR_NOMEM;
    if (nn)
        memcpy(keep, next, nn * sizeof(next[0]));
    flare__free(r->mem, r->addrs);
    r->addrs = keep;
    r->naddrs = nn;
    refresh_families(r);
    if (fresh)
        flare_reachability_poke(r, now);
    return 0;
}

int flare_reachability_observe_v2(flare_reachability *r, const flare_multiaddr *addr,
                                  flare_autonat_outcome o, flare_tstamp now)
{
    flare__reach_addr *a = find_addr(r, addr);
    if (!a)
        return FLARE_ERR_NOT_FOUND;
    flare_reach_state old = a->t.state;
    if (track_update(&a->t, o, r->s.confidence, 0)) {
        flare_reach_event ev = {0};
        ev.kind = FLARE_REACH_EV_ADDR;
        ev.family = family_of(&a->addr);
        ev.addr = a->addr;
        ev.old_state = old;
        ev.new_state = a->t.state;
        push_event(r, &ev);
    }
    refresh_families(r);
    reschedule(r, now);
    return 0;
}

int flare_reachability_observe_v1(flare_reachability *r, int family, flare_autonat_outcome o,
                                  flare_tstamp now)
{
    if (family != 4 && family != 6)
        return FLARE_ERR_INVALID_ARG;
    track_update(&r->v1[family == 6], o, r->s.confidence, 1);
    refresh_families(r);
    reschedule(r, now);
    return 0;
}

flare_reach_state flare_reachability_addr_state(const flare_reachability *r,
                                                const flare_multiaddr *addr)
{
    const flare__reach_addr *a = find_addr((flare_reachability *)r, addr);
    return a ? a->t.state : FLARE_REACH_UNKNOWN;
}

flare_reach_state flare_reachability_family_state(const flare_reachability *r, int family)
{
    if (family != 4 && family != 6)
        return FLARE_REACH_UNKNOWN;
    return r->family[family == 6];
}

flare_tstamp flare_reachability_expiry(const flare_reachability *r)
{
    return r->next_probe;
}

int flare_reachability_handle_expiry(flare_reachability *r, flare_tstamp now)
{
    if (now < r->next_probe)
        return 0;
    r->last_probe = now;
    r->next_probe = now + interval(r);
    return 1;
}

static int anything_unknown(const flare_reachability *r)
{
    if (r->naddrs == 0)
        return r->family[0] == FLARE_REACH_UNKNOWN || r->family[1] == FLARE_REACH_UNKNOWN;
    for (size_t i = 0; i < r->naddrs; i++)
        if (r->addrs[i].t.state == FLARE_REACH_UNKNOWN)
            return 1;
    return 0;
}

void flare_reachability_poke(flare_reachability *r, flare_tstamp now)
{
    if (anything_unknown(r) && r->next_probe > now + r->s.force_delay)
        r->next_probe = now + r->s.force_delay;
}

static flare__reach_server *server_slot(flare_reachability *r, const flare_peerid *p, int create)
{
    size_t oldest = 0;
    for (size_t i = 0; i < r->nservers; i++) {
        if (flare_peerid_equal(&r->servers[i].peer, p))
            return &r->servers[i];
        if (r->servers[i].last_asked < r->servers[oldest].last_asked)
            oldest = i;
    }
    if (!create)
        return NULL;
    if (r->nservers == r->servers_cap && r->servers_cap < FLARE_REACH_MAX_SERVERS) {
        size_t cap = r->servers_cap ? r->servers_cap * 2 : 4;
        cap = cap < FLARE_REACH_MAX_SERVERS ? cap : FLARE_REACH_MAX_SERVERS;
        flare__reach_server *grown = flare__realloc(r->mem, r->servers, cap * sizeof(*grown));
        if (grown) {
            r->servers = grown;
            r->servers_cap = cap;
        } else if (!r->nservers) {
            return NULL;
        }
    }
    size_t at = r->nservers < r->servers_cap ? r->nservers++ : oldest;
    r->servers[at].peer = *p;
    return &r->servers[at];
}

/* Last time cands[i] was asked; 0 (never) if unknown. */
static flare_tstamp last_asked(flare_reachability *r, const flare_peerid *p)
{
    flare__reach_server *s = server_slot(r, p, 0);
    return s ? s->last_asked : 0;
}

size_t flare_reachability_pick_servers(flare_reachability *r, flare_tstamp now,
                                       const flare_peerid *cands, size_t n, size_t want,
                                       size_t *idx)
{
    size_t got = 0;
    while (got < want) {
        size_t best = n;
        flare_tstamp best_t = 0;
        for (size_t i = 0; i < n; i++) {
            int taken = 0;
            for (size_t j = 0; j < got && !taken; j++)
                taken = flare_peerid_equal(&cands[idx[j]], &cands[i]);
            if (taken)
                continue;
            flare_tstamp t = last_asked(r, &cands[i]);
            if (best == n || t < best_t) {
                best = i;
                best_t = t;
            }
        }
        if (best == n)
            break;
        idx[got++] = best;
    }
    for (size_t j = 0; j < got; j++) {
        flare__reach_server *s = server_slot(r, &cands[idx[j]], 1);
        if (s)
            s->last_asked = now ? now : 1;
    }
    return got;
}

size_t flare_reachability_addrs_to_probe(const flare_reachability *r, flare_multiaddr *out,
                                         size_t cap)
{
    size_t k = 0;
    /* Rank: UNKNOWN (0) first, then confidence 0..max (1..max+1). */
    for (unsigned rank = 0; rank <= r->s.confidence + 1 && k < cap; rank++)
        for (size_t i = 0; i < r->naddrs && k < cap; i++) {
            const flare__reach_track *t = &r->addrs[i].t;
            unsigned my = t->state == FLARE_REACH_UNKNOWN ? 0 : t->confidence + 1;
            if (my == rank)
                out[k++] = r->addrs[i].addr;
        }
    return k;
}
