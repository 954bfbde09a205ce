/* The iterative Kademlia lookup as a state machine: the caller asks whom to
 * query next, reports answers and failures (a timeout is a failure).
 *
 * Termination (go-libp2p-kad-dht's resiliency rule): the lookup proper ends
 * once the beta closest live peers seen (those that have not failed) have
 * all answered. A follow-up then asks, all at once, every peer of the k
 * closest live ones not asked yet, without taking in the peers they name
 * (one that fails brings in the next), so the result is still the k
 * closest that answered. Chasing the peers
 * each answer of the k closest names, until no answer names a closer one
 * (beta = k), costs many more requests for the same few peers at the end.
 *
 * Disjoint paths (S/Kademlia): the seeds are dealt to d paths, a peer belongs
 * to the path that first learned of it, and queries go round-robin over the
 * paths, each to its closest unqueried peer. A path of bad peers then only
 * poisons its own candidates. All paths share one candidate list, so this
 * costs no more than a plain lookup. */
#include <string.h>

#include "core/mem.h"
#include "protocols/kad/kad.h"

int flare__kad_lookup_init(flare__kad_lookup *l, const flare__kad_key *target,
                           const flare_peerid *self, size_t alpha, size_t beta, size_t k,
                           size_t paths, const flare_mem *mem)
{
    memset(l, 0, sizeof(*l));
    l->mem = mem;
    l->target = *target;
    l->self = *self;
    l->alpha = alpha ? alpha : FLARE__KAD_ALPHA;
    l->k = k ? k : FLARE__KAD_K;
    l->beta = beta ? beta : FLARE__KAD_BETA;
    if (l->beta > l->k)
        l->beta = l->k;
    l->paths = paths ? (paths > 255 ? 255 : paths) : 1;
    l->cap = 8 * l->k;
    /* Most lookups end with a few rounds of answers, far from cap
     * candidates: the list grows to its use. */
    l->alloc = 2 * l->k;
    l->c = flare__malloc(mem, l->alloc * sizeof(*l->c));
    return l->c ? 0 : FLARE_ERR_NOMEM;
}

void flare__kad_lookup_free(flare__kad_lookup *l)
{
    flare__free(l->mem, l->c);
    l->c = NULL;
    l->n = l->alloc = 0;
}

static long find(const flare__kad_lookup *l, const flare_peerid *id)
{
    for (size_t i = 0; i < l->n; i++)
        if (flare_peerid_equal(&l->c[i].id, id))
            return (long)i;
    return -1;
}

/* Makes room at the far end: the farthest candidate not being queried. */
static int make_room(flare__kad_lookup *l, size_t pos)
{
    if (l->n < l->cap)
        return 1;
    for (size_t i = l->n; i-- > pos;) {
        if (l->c[i].state == FLARE__KAD_C_WAITING)
            continue;
        memmove(&l->c[i], &l->c[i + 1], (l->n - i - 1) * sizeof(*l->c));
        l->n--;
        return 1;
    }
    return 0;
}

static void add(flare__kad_lookup *l, const flare_peerid *id, size_t path, int hop)
{
    if (!id->len || flare_peerid_equal(id, &l->self) || find(l, id) >= 0)
        return;
    flare__kad_cand c = {.id = *id, .state = FLARE__KAD_C_NEW};
    c.path = (uint8_t)path;
    c.hop = (uint8_t)(hop > 255 ? 255 : hop);
    flare__kad_key_of_peer(&c.key, id);
    size_t pos = l->n;
    while (pos > 0 && flare__kad_dist_cmp(&l->target, &c.key, &l->c[pos - 1].key) < 0)
        pos--;
    if (pos >= l->cap || !make_room(l, pos))
        return;
    if (pos > l->n)
        pos = l->n;
    if (l->n == l->alloc) {
        size_t a = 2 * l->alloc < l->cap ? 2 * l->alloc : l->cap;
        flare__kad_cand *nc = flare__realloc(l->mem, l->c, a * sizeof(*l->c));
        if (!nc)
            return;
        l->c = nc;
        l->alloc = a;
    }
    memmove(&l->c[pos + 1], &l->c[pos], (l->n - pos) * sizeof(*l->c));
    l->c[pos] = c;
    l->n++;
}

void flare__kad_lookup_seed(flare__kad_lookup *l, const flare_peerid *id)
{
    size_t seeds = 0;
    for (size_t i = 0; i < l->n; i++)
        seeds += l->c[i].hop == 0;
    add(l, id, seeds % l->paths, 0);
}

/* 1 once the beta closest live candidates have all answered (or no
 * candidate is live). */
static int converged(const flare__kad_lookup *l)
{
    size_t live = 0;
    for (size_t i = 0; i < l->n && live < l->beta; i++) {
        if (l->c[i].state == FLARE__KAD_C_FAILED)
            continue;
        live++;
        if (l->c[i].state != FLARE__KAD_C_OK)
            return 0;
    }
    return 1;
}

/* Where the k closest live candidates end (an index into c). */
static size_t k_end(const flare__kad_lookup *l)
{
    size_t live = 0, i = 0;
    for (; i < l->n && live < l->k; i++)
        live += l->c[i].state != FLARE__KAD_C_FAILED;
    return i;
}

/* 1 while a candidate before end is unasked or unanswered; *first_new is
 * the first unasked one (l->n if none). */
static int open_work(const flare__kad_lookup *l, size_t end, size_t *first_new)
{
    int work = 0;
    *first_new = l->n;
    for (size_t i = 0; i < end; i++) {
        if (l->c[i].state == FLARE__KAD_C_WAITING)
            work = 1;
        else if (l->c[i].state == FLARE__KAD_C_NEW) {
            work = 1;
            if (*first_new == l->n)
                *first_new = i;
        }
    }
    return work;
}

int flare__kad_lookup_done(const flare__kad_lookup *l)
{
    size_t first_new;
    if (l->no_followup && converged(l))
        return 1;
    return (l->follow || converged(l)) && !open_work(l, k_end(l), &first_new);
}

/* The closest new candidate within the k closest live ones on path p. */
static long pick(const flare__kad_lookup *l, size_t p)
{
    size_t live = 0;
    for (size_t i = 0; i < l->n && live < l->k; i++) {
        if (l->c[i].state == FLARE__KAD_C_FAILED)
            continue;
        live++;
        if (l->c[i].state == FLARE__KAD_C_NEW && l->c[i].path == p)
            return (long)i;
    }
    return -1;
}

static int query(flare__kad_lookup *l, size_t i, flare_peerid *out)
{
    l->c[i].state = FLARE__KAD_C_WAITING;
    l->inflight++;
    l->queried++;
    *out = l->c[i].id;
    return FLARE__KAD_L_QUERY;
}

int flare__kad_lookup_next(flare__kad_lookup *l, flare_peerid *out)
{
    size_t first_new;
    if (!l->follow && converged(l)) {
        if (k_end(l) == 0 || l->no_followup)
            return FLARE__KAD_L_DONE; /* nobody is left (or was seeded yet) */
        l->follow = 1;                /* answers no longer add peers */
    }
    if (l->follow) {
        /* A failure brings the next live peer into the k closest. */
        if (!open_work(l, k_end(l), &first_new))
            return FLARE__KAD_L_DONE;
        if (first_new == l->n)
            return FLARE__KAD_L_WAIT;
        l->followups++;
        return query(l, first_new, out);
    }
    /* Not converged: one of the beta closest is unasked or in flight, so
     * there is work within the k closest. */
    open_work(l, k_end(l), &first_new);
    if (l->inflight >= l->alpha || first_new == l->n)
        return FLARE__KAD_L_WAIT;
    long i = -1;
    for (size_t t = 0; t < l->paths && i < 0; t++) {
        i = pick(l, l->next_path);
        l->next_path = (l->next_path + 1) % l->paths;
    }
    if (i < 0)
        i = (long)first_new;
    return query(l, (size_t)i, out);
}

static long settle(flare__kad_lookup *l, const flare_peerid *id, int state)
{
    long i = find(l, id);
    if (i < 0 || l->c[i].state != FLARE__KAD_C_WAITING)
        return -1;
    l->c[i].state = (uint8_t)state;
    l->inflight--;
    return i;
}

void flare__kad_lookup_ok(flare__kad_lookup *l, const flare_peerid *id, const flare_peerid *closer,
                          size_t n)
{
    long i = settle(l, id, FLARE__KAD_C_OK);
    if (i < 0)
        return;
    l->answered++;
    if (l->follow)
        return;
    size_t path = l->c[i].path;
    int hop = l->c[i].hop + 1;
    for (size_t j = 0; j < n; j++)
        add(l, &closer[j], path, hop);
}

void flare__kad_lookup_fail(flare__kad_lookup *l, const flare_peerid *id)
{
    settle(l, id, FLARE__KAD_C_FAILED);
}

size_t flare__kad_lookup_result(const flare__kad_lookup *l, flare_peerid *out, size_t n)
{
    size_t m = 0;
    for (size_t i = 0; i < l->n && m < n; i++)
        if (l->c[i].state == FLARE__KAD_C_OK)
            out[m++] = l->c[i].id;
    return m;
}

int flare__kad_lookup_hops(const flare__kad_lookup *l)
{
    int hops = -1;
    size_t m = 0;
    for (size_t i = 0; i < l->n && m < l->k; i++) {
        if (l->c[i].state != FLARE__KAD_C_OK)
            continue;
        m++;
        if (l->c[i].hop > hops)
            hops = l->c[i].hop;
    }
    return hops;
}
