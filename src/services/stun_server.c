/*
 * The STUN server service: answers Binding requests on the host's shared UDP
 * sockets (transport/udp_mux.h: QUIC's listen sockets, STUN by first byte)
 * and on an optional socket of its own. The answer comes from the sans-I/O
 * core (flare_stun_server_answer); this file adds the rate limits.
 */
#include <string.h>

#include "core/mem.h"
#include "flare/stun.h"
#include "services/services.h"
#include "transport/udp_mux.h"

#define PER_SOURCE_RATE  10
#define PER_SOURCE_BURST 20
#define HOST_RATE        1000
#define HOST_BURST       1000

typedef struct stun_srv {
    flare_host *h;
    int on;
    /* 8 KB, made at the first request: most hosts never answer one. */
    flare_stun_limiter *per_source;
    /* Host-wide bucket: many sources together cannot make us send more. */
    uint64_t host_tokens_milli;
    flare_tstamp host_last;
    flare_io_udp *own; /* flare_host_stun_listen's socket */
    flare_ipaddr own_local;
    flare_stun_server_stats stats;
} stun_srv;

static int host_allow(stun_srv *s, flare_tstamp now)
{
    if (now > s->host_last) {
        flare_tstamp dt = now - s->host_last;
        if (dt > 3600 * FLARE_NS_PER_S)
            dt = 3600 * FLARE_NS_PER_S;
        uint64_t add = dt * HOST_RATE / FLARE_NS_PER_MS;
        if (add) {
            s->host_tokens_milli += add;
            if (s->host_tokens_milli > HOST_BURST * 1000ull)
                s->host_tokens_milli = HOST_BURST * 1000ull;
            s->host_last = now;
        }
    }
    if (s->host_tokens_milli < 1000)
        return 0;
    s->host_tokens_milli -= 1000;
    return 1;
}

/* A datagram that starts like STUN: answer it or drop it; always ours. */
static int on_datagram(flare_host *h, void *user, flare_io_udp *u, const flare_ipaddr *local,
                       const flare_ipaddr *from, const uint8_t *data, size_t len)
{
    stun_srv *s = user;
    (void)local;
    if (!s->on || !flare_stun_is_stun(data, len))
        return 0; /* maybe a greased QUIC packet */
    uint8_t out[FLARE_STUN_SERVER_MAX_RESP];
    int n = flare_stun_server_answer(data, len, from, out, sizeof(out));
    if (n <= 0) {
        s->stats.ignored++;
        return 0; /* maybe a response or a check for another consumer (ICE) */
    }
    flare_tstamp now = flare_io_now(h->io);
    if (!s->per_source && (s->per_source = flare__malloc(h->mem, sizeof(*s->per_source))))
        flare_stun_limiter_init(s->per_source, PER_SOURCE_RATE, PER_SOURCE_BURST);
    if (!s->per_source || !flare_stun_limiter_allow(s->per_source, from, now) ||
        !host_allow(s, now)) {
        s->stats.rate_limited++;
        return 1;
    }
    if (h->io->ops->udp_send(u, from, out, (size_t)n) == 0)
        s->stats.answered++;
    return 1;
}

static void own_recv(flare_io_udp *u, const flare_ipaddr *from, const uint8_t *data, size_t len,
                     void *user)
{
    stun_srv *s = user;
    on_datagram(s->h, s, u, &s->own_local, from, data, len);
}

static int ss_init(flare_host *h, void **state)
{
    stun_srv *s = flare__calloc(h->mem, 1, sizeof(*s));
    if (!s)
        return FLARE_ERR_NOMEM;
    s->h = h;
    s->on = 1;
    s->host_tokens_milli = HOST_BURST * 1000ull;
    s->host_last = flare_io_now(h->io);
    int rv =
        flare__udp_mux_add(h, FLARE__UDP_FIRST_STUN_LO, FLARE__UDP_FIRST_STUN_HI, on_datagram, s);
    if (rv) {
        flare__free(h->mem, s);
        return rv;
    }
    *state = s;
    return 0;
}

static void ss_free(flare_host *h, void *state)
{
    stun_srv *s = state;
    if (!s)
        return;
    flare__udp_mux_remove(h, on_datagram, s);
    if (s->own)
        h->io->ops->udp_close(s->own);
    flare__free(h->mem, s->per_source);
    flare__free(h->mem, s);
}

const flare__service flare__svc_stun_server = {
    .name = "stun-server",
    .init = ss_init,
    .free = ss_free,
};

static stun_srv *state_of(flare_host *h)
{
    return h ? flare__svc_state(h, &flare__svc_stun_server) : NULL;
}

int flare_host_stun_server_enable(flare_host *h, int on)
{
    stun_srv *s = state_of(h);
    if (!s)
        return FLARE_ERR_UNSUPPORTED;
    s->on = on != 0;
    return 0;
}

int flare_host_stun_listen(flare_host *h, const flare_ipaddr *local, flare_ipaddr *bound)
{
    stun_srv *s = state_of(h);
    if (!s)
        return FLARE_ERR_UNSUPPORTED;
    if (!local || (local->family != 4 && local->family != 6))
        return FLARE_ERR_INVALID_ARG;
    if (s->own)
        return FLARE_ERR_EXISTS;
    int rv = h->io->ops->udp_bind(h->io, local, 0, own_recv, s, &s->own);
    if (rv == 0)
        rv = h->io->ops->udp_addr(s->own, &s->own_local);
    if (rv) {
        if (s->own)
            h->io->ops->udp_close(s->own);
        s->own = NULL;
        return rv;
    }
    if (bound)
        *bound = s->own_local;
    return 0;
}

int flare_host_stun_server_stats(flare_host *h, flare_stun_server_stats *out)
{
    stun_srv *s = state_of(h);
    if (!s || !out)
        return s ? FLARE_ERR_INVALID_ARG : FLARE_ERR_UNSUPPORTED;
    *out = s->stats;
    return 0;
}
