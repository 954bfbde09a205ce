/*
 * The service registry: the host's list of services (src/services/) and the
 * calls of their hooks. The core reports what happens here; it never names
 * a service.
 */
#include "core/mem.h"
#include "host/host_int.h"

int flare__svc_init_all(flare_host *h, const flare__service *const *svcs, size_t n)
{
    if (n > sizeof(((flare_conn *)0)->svc_marks) * 8)
        return FLARE_ERR_INVALID_ARG;
    h->svcs = flare__calloc(h->mem, n ? n : 1, sizeof(*h->svcs));
    if (!h->svcs)
        return FLARE_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        h->svcs[i].svc = svcs[i];
        h->nsvcs = i + 1;
        int rv = 0;
        for (const flare__svc_stream_limit *l = svcs[i]->stream_limits; l && l->protocol && !rv;
             l++)
            rv = flare_host_set_protocol_limits(h, l->protocol, l->per_peer,
                                                h->cfg.limits.streams_per_protocol);
        if (rv == 0 && svcs[i]->init)
            rv = svcs[i]->init(h, &h->svcs[i].state);
        if (rv)
            return rv;
    }
    return 0;
}

/* Last registered first: a service may use the ones registered before it. */
void flare__svc_free_all(flare_host *h)
{
    for (size_t i = h->nsvcs; i-- > 0;) {
        flare__svc_slot *s = &h->svcs[i];
        if (s->svc->free)
            s->svc->free(h, s->state);
        s->state = NULL;
    }
    flare__free(h->mem, h->svcs);
    h->svcs = NULL;
    h->nsvcs = 0;
}

void **flare__svc_state_slot(flare_host *h, const flare__service *svc)
{
    for (size_t i = 0; i < h->nsvcs; i++)
        if (h->svcs[i].svc == svc)
            return &h->svcs[i].state;
    return NULL;
}

void *flare__svc_state(flare_host *h, const flare__service *svc)
{
    void **slot = flare__svc_state_slot(h, svc);
    return slot ? *slot : NULL;
}

unsigned flare__svc_mark(flare_host *h, const flare__service *svc)
{
    for (size_t i = 0; i < h->nsvcs; i++)
        if (h->svcs[i].svc == svc)
            return 1u << i;
    return 0;
}

#define EACH_HOOK(h, hook, s)                                                                      \
    for (flare__svc_slot *s = (h)->svcs; s && s < (h)->svcs + (h)->nsvcs; s++)                     \
        if (s->svc->hook)

void flare__svc_inbound(flare_host *h, flare_conn *c)
{
    EACH_HOOK(h, on_inbound, s)
    {
        s->svc->on_inbound(h, s->state, c);
    }
}

void flare__svc_conn_ready(flare_host *h, flare_conn *c)
{
    EACH_HOOK(h, on_conn_ready, s)
    {
        if (c->close_pending)
            return;
        s->svc->on_conn_ready(h, s->state, c);
    }
}

void flare__svc_conn_identified(flare_host *h, flare_conn *c)
{
    EACH_HOOK(h, on_conn_identified, s)
    {
        s->svc->on_conn_identified(h, s->state, c);
    }
}

void flare__svc_conn_closed(flare_host *h, flare_conn *c)
{
    EACH_HOOK(h, on_conn_closed, s)
    {
        s->svc->on_conn_closed(h, s->state, c);
    }
}

void flare__svc_addrs_changed(flare_host *h, flare__addrs_change why)
{
    EACH_HOOK(h, on_addrs_changed, s)
    {
        s->svc->on_addrs_changed(h, s->state, why);
    }
}

void flare__svc_event(flare_host *h, const flare_host_event *ev)
{
    EACH_HOOK(h, on_event, s)
    {
        s->svc->on_event(h, s->state, ev);
    }
}

size_t flare__svc_addrs(flare_host *h, flare_multiaddr *out, size_t cap)
{
    size_t n = 0;
    EACH_HOOK(h, addrs, s)
    {
        if (n < cap)
            n += s->svc->addrs(h, s->state, out + n, cap - n);
    }
    return n;
}

int flare__svc_protects(flare_host *h, const flare_conn *c)
{
    EACH_HOOK(h, protects, s)
    {
        if (s->svc->protects(h, s->state, c))
            return 1;
    }
    return 0;
}
