/* Framing, event queue and settings shared by both DCUtR cores. */
#include <string.h>

#include "flare/lpframe.h"
#include "protocols/dcutr/dcutr_int.h"

int flare__dcutr_rx_frame(uint8_t *rx, size_t *rxlen, const uint8_t **in, size_t *len,
                          const uint8_t **msg, size_t *mlen, size_t *flen)
{
    size_t take = FLARE__DCUTR_RXCAP - *rxlen;
    if (take > *len)
        take = *len;
    if (take) {
        memcpy(rx + *rxlen, *in, take);
        *rxlen += take;
        *in += take;
        *len -= take;
    }
    /* rx holds a whole maximal frame, so AGAIN never means "stuck". */
    int rv = flare_lpframe_parse(rx, *rxlen, FLARE_DCUTR_MAX_MSG, msg, mlen);
    if (rv == FLARE_ERR_AGAIN)
        return 0;
    if (rv < 0)
        return rv;
    *flen = (size_t)rv;
    return 1;
}

void flare__dcutr_rx_consume(uint8_t *rx, size_t *rxlen, size_t n)
{
    memmove(rx, rx + n, *rxlen - n);
    *rxlen -= n;
}

void flare__dcutr_evq_push(flare_dcutr_event *q, size_t *head, size_t *len,
                           const flare_dcutr_event *ev)
{
    if (*len == FLARE_DCUTR__EVQ) {
        *head = (*head + 1) % FLARE_DCUTR__EVQ;
        (*len)--;
    }
    q[(*head + *len) % FLARE_DCUTR__EVQ] = *ev;
    (*len)++;
}

int flare__dcutr_evq_pop(flare_dcutr_event *q, size_t *head, size_t *len, flare_dcutr_event *ev)
{
    if (*len == 0)
        return 0;
    *ev = q[*head];
    *head = (*head + 1) % FLARE_DCUTR__EVQ;
    (*len)--;
    return 1;
}

void flare_dcutr_settings_default(flare_dcutr_settings *s)
{
    memset(s, 0, sizeof(*s));
    s->struct_size = sizeof(*s);
    s->stream_timeout = FLARE_DCUTR_DEFAULT_STREAM_TIMEOUT;
    s->dial_timeout = FLARE_DCUTR_DEFAULT_DIAL_TIMEOUT;
    s->max_attempts = FLARE_DCUTR_DEFAULT_MAX_ATTEMPTS;
}

int flare__dcutr_settings(flare_dcutr_settings *out, const flare_dcutr_settings *s)
{
    if (!s) {
        flare_dcutr_settings_default(out);
        return 0;
    }
    /* attempt numbers are logged in a byte */
    if (s->struct_size != sizeof(*s) || !s->stream_timeout || !s->dial_timeout ||
        !s->max_attempts || s->max_attempts > 255)
        return FLARE_ERR_INVALID_ARG;
    *out = *s;
    return 0;
}

void flare__dcutr_trace(const flare_dcutr_settings *s, int initiator, unsigned attempt,
                        flare_dcutr_step step, flare_tstamp now, uint64_t value)
{
    if (s->tracer)
        flare_dcutr_tracer_step(s->tracer, s->trace_id, initiator, attempt, step, now, value);
}

void flare__dcutr_trace_outcome(const flare_dcutr_settings *s, int ok, const flare_multiaddr *addr,
                                unsigned attempt)
{
    if (s->tracer)
        flare_dcutr_tracer_outcome(s->tracer, ok, addr, attempt);
}
