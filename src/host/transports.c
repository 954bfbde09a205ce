/*
 * The transport registry: the host's list of transports (src/transport/)
 * and the choice of one by multiaddr. The core never names a transport.
 */
#include <string.h>

#include "core/mem.h"
#include "transport/transport.h"

int flare__tr_init_all(flare_host *h, const flare__transport *const *trs, size_t n)
{
    h->trs = flare__calloc(h->mem, n ? n : 1, sizeof(*h->trs));
    if (!h->trs)
        return FLARE_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        h->trs[i].tr = trs[i];
        h->ntrs = i + 1;
        if (trs[i]->init) {
            int rv = trs[i]->init(h, &h->trs[i].state);
            if (rv)
                return rv;
        }
    }
    return 0;
}

/* After every connection and listener is gone; last registered first. */
void flare__tr_free_all(flare_host *h)
{
    for (size_t i = h->ntrs; i-- > 0;) {
        flare__tr_slot *s = &h->trs[i];
        if (s->tr->free)
            s->tr->free(h, s->state);
        s->state = NULL;
    }
    flare__free(h->mem, h->trs);
    h->trs = NULL;
    h->ntrs = 0;
}

void *flare__tr_state(flare_host *h, const flare__transport *t)
{
    for (size_t i = 0; i < h->ntrs; i++)
        if (h->trs[i].tr == t)
            return h->trs[i].state;
    return NULL;
}

const flare__tr_slot *flare__tr_for_dial(flare_host *h, const flare_multiaddr *ma)
{
    for (size_t i = 0; i < h->ntrs; i++)
        if (h->trs[i].tr->can_dial(ma))
            return &h->trs[i];
    return NULL;
}

const flare__tr_slot *flare__tr_for_listen(flare_host *h, const flare_multiaddr *ma)
{
    for (size_t i = 0; i < h->ntrs; i++) {
        const flare__transport *t = h->trs[i].tr;
        if (t->can_listen && t->listen && t->can_listen(ma))
            return &h->trs[i];
    }
    return NULL;
}

void flare__tr_seed_draw(flare__tr_seed *s, flare_rng rng, size_t len)
{
    if (len > sizeof(s->b))
        len = sizeof(s->b);
    rng.fn(s->b, len, rng.user);
    s->len = len;
    s->off = 0;
    s->rest = rng;
}

static void seed_fill(uint8_t *dst, size_t len, void *user)
{
    flare__tr_seed *s = user;
    size_t n = s->len - s->off < len ? s->len - s->off : len;
    memcpy(dst, s->b + s->off, n);
    s->off += n;
    if (len > n)
        s->rest.fn(dst + n, len - n, s->rest.user);
}

flare_rng flare__tr_seed_rng(flare__tr_seed *s)
{
    return (flare_rng){.fn = seed_fill, .user = s};
}
