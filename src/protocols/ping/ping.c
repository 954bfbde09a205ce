/* libp2p ping: see include/flare/ping.h. */
#include "flare/ping.h"

#include <string.h>

int flare_ping_client_init(flare_ping_client *c, flare_tstamp timeout, flare_rng rng)
{
    memset(c, 0, sizeof(*c));
    if (!rng.fn || timeout == 0)
        return FLARE_ERR_INVALID_ARG;
    c->rng = rng;
    c->timeout = timeout;
    return 0;
}

int flare_ping_client_send(flare_ping_client *c, flare_tstamp now, flare_buf *out)
{
    if (c->outstanding)
        return FLARE_ERR_STATE;
    c->rng.fn(c->payload, sizeof(c->payload), c->rng.user);
    int rv = flare_buf_append(out, c->payload, sizeof(c->payload));
    if (rv)
        return rv;
    c->outstanding = 1;
    c->got = 0;
    c->sent_at = now;
    return 0;
}

int flare_ping_client_recv(flare_ping_client *c, const uint8_t *in, size_t len, flare_tstamp now,
                           flare_tstamp *rtt_ns)
{
    if (len == 0)
        return 0;
    if (!c->outstanding || len > FLARE_PING_SIZE - c->got)
        return FLARE_ERR_PROTO;
    if (memcmp(in, c->payload + c->got, len) != 0)
        return FLARE_ERR_PROTO;
    c->got += len;
    if (c->got < FLARE_PING_SIZE)
        return 0;
    c->outstanding = 0;
    *rtt_ns = now >= c->sent_at ? now - c->sent_at : 0;
    return 1;
}

flare_tstamp flare_ping_client_expiry(const flare_ping_client *c)
{
    if (!c->outstanding)
        return FLARE_TSTAMP_NEVER;
    if (c->sent_at > FLARE_TSTAMP_NEVER - c->timeout)
        return FLARE_TSTAMP_NEVER - 1;
    return c->sent_at + c->timeout;
}

int flare_ping_client_handle_expiry(flare_ping_client *c, flare_tstamp now)
{
    if (!c->outstanding || now < flare_ping_client_expiry(c))
        return 0;
    c->outstanding = 0;
    return FLARE_ERR_TIMEOUT;
}

void flare_ping_server_init(flare_ping_server *s)
{
    memset(s, 0, sizeof(*s));
}

int flare_ping_server_recv(flare_ping_server *s, const uint8_t *in, size_t len, flare_buf *out)
{
    while (len > 0) {
        size_t take = FLARE_PING_SIZE - s->have;
        if (take > len)
            take = len;
        memcpy(s->block + s->have, in, take);
        s->have += take;
        in += take;
        len -= take;
        if (s->have < FLARE_PING_SIZE)
            break;
        int rv = flare_buf_append(out, s->block, FLARE_PING_SIZE);
        if (rv)
            return rv;
        s->have = 0;
    }
    return 0;
}
