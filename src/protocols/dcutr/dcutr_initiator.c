/* DCUtR initiator (B, the peer that holds the relay reservation). */
#include <string.h>

#include "protocols/dcutr/dcutr_int.h"

enum {
    I_IDLE = 0,     /* before the first start */
    I_WAIT_CONNECT, /* CONNECT sent, RTT timer running */
    I_WAIT_PUNCH,   /* SYNC sent, dialing at sent + RTT/2 */
    I_DIALING,      /* EV_DIAL given, waiting for dial_result */
    I_BACKOFF,      /* attempt failed, EV_RETRY at deadline */
    I_RETRY,        /* EV_RETRY given, waiting for start */
    I_SUCCEEDED,
    I_FAILED,
};

static void push(flare_dcutr_initiator *b, flare_dcutr_event_type type, flare_dcutr_reason reason)
{
    flare_dcutr_event ev = {0};
    ev.type = type;
    ev.attempt = b->attempt;
    ev.reason = reason;
    ev.final = type == FLARE_DCUTR_EV_FAILED; /* B fails only by giving up */
    if (type == FLARE_DCUTR_EV_DIAL) {
        ev.rtt = b->rtt;
        ev.addrs = b->peer.addrs;
        ev.naddrs = b->peer.naddrs;
    }
    flare__dcutr_evq_push(b->evq, &b->evhead, &b->evlen, &ev);
}

static void trace(flare_dcutr_initiator *b, flare_dcutr_step step, flare_tstamp now, uint64_t v)
{
    flare__dcutr_trace(&b->s, 1, b->attempt, step, now, v);
}

static void give_up(flare_dcutr_initiator *b, flare_dcutr_reason reason, flare_tstamp now)
{
    b->state = I_FAILED;
    b->deadline = FLARE_TSTAMP_NEVER;
    trace(b, FLARE_DCUTR_STEP_GAVE_UP, now, reason);
    push(b, FLARE_DCUTR_EV_FAILED, reason);
}

/* Ends the current attempt; transient failures retry on a new stream. */
static void attempt_failed(flare_dcutr_initiator *b, flare_dcutr_reason reason, flare_tstamp now)
{
    b->rxlen = 0;
    b->last_reason = reason;
    trace(b, FLARE_DCUTR_STEP_ATTEMPT_FAILED, now, reason);
    int fatal = reason == FLARE_DCUTR_REASON_PROTOCOL || reason == FLARE_DCUTR_REASON_NO_ADDRS ||
                reason == FLARE_DCUTR_REASON_UNSUPPORTED;
    if (fatal || b->attempt >= b->s.max_attempts) {
        give_up(b, reason, now);
    } else if (b->s.retry_backoff) {
        b->state = I_BACKOFF;
        b->deadline = now + b->s.retry_backoff * b->attempt;
    } else {
        b->state = I_RETRY;
        b->deadline = FLARE_TSTAMP_NEVER;
        push(b, FLARE_DCUTR_EV_RETRY, reason);
    }
}

int flare_dcutr_initiator_init(flare_dcutr_initiator *b, const flare_dcutr_settings *s,
                               const flare_mem *mem)
{
    memset(b, 0, sizeof(*b));
    b->mem = mem;
    b->state = I_IDLE;
    b->deadline = FLARE_TSTAMP_NEVER;
    return flare__dcutr_settings(&b->s, s);
}

void flare_dcutr_initiator_free(flare_dcutr_initiator *b)
{
    (void)b; /* nothing allocated */
}

int flare_dcutr_initiator_start(flare_dcutr_initiator *b, flare_tstamp now,
                                const flare_multiaddr *our_addrs, size_t n, flare_buf *out)
{
    if (b->state != I_IDLE && b->state != I_RETRY)
        return FLARE_ERR_STATE;
    if (n == 0 || !our_addrs || !out)
        return FLARE_ERR_INVALID_ARG;
    if (n > FLARE_DCUTR_MAX_ADDRS)
        n = FLARE_DCUTR_MAX_ADDRS;
    int rv = flare_dcutr_msg_encode(out, FLARE_DCUTR_CONNECT, our_addrs, n);
    if (rv)
        return rv;
    b->attempt++;
    b->rxlen = 0;
    b->peer.naddrs = 0;
    b->sent_at = now;
    b->state = I_WAIT_CONNECT;
    b->deadline = now + b->s.stream_timeout;
    trace(b, FLARE_DCUTR_STEP_CONNECT_SENT, now, n);
    return 0;
}

/* A's CONNECT: measure RTT, answer SYNC, schedule our dial at RTT/2. */
static int on_connect(flare_dcutr_initiator *b, flare_tstamp now, flare_buf *out)
{
    trace(b, FLARE_DCUTR_STEP_CONNECT_RECEIVED, now, b->peer.naddrs);
    if (b->peer.naddrs == 0) {
        attempt_failed(b, FLARE_DCUTR_REASON_NO_ADDRS, now);
        return FLARE_ERR_PROTO;
    }
    int rv = flare_dcutr_msg_encode(out, FLARE_DCUTR_SYNC, NULL, 0);
    if (rv) {
        attempt_failed(b, FLARE_DCUTR_REASON_STREAM, now);
        return rv;
    }
    b->rtt = now - b->sent_at;
    trace(b, FLARE_DCUTR_STEP_RTT, now, b->rtt);
    trace(b, FLARE_DCUTR_STEP_SYNC_SENT, now, 0);
    b->state = I_WAIT_PUNCH;
    b->deadline = now + b->rtt / 2;
    return 0;
}

int flare_dcutr_initiator_recv(flare_dcutr_initiator *b, const uint8_t *in, size_t len,
                               flare_tstamp now, flare_buf *out)
{
    while (len > 0 || b->rxlen > 0) {
        if (b->state == I_WAIT_PUNCH || b->state == I_DIALING || b->state == I_SUCCEEDED)
            return FLARE_ERR_PROTO; /* the exchange is over; the punch goes on */
        if (b->state != I_WAIT_CONNECT)
            return FLARE_ERR_STATE;
        const uint8_t *msg;
        size_t mlen, flen;
        int rv = flare__dcutr_rx_frame(b->rx, &b->rxlen, &in, &len, &msg, &mlen, &flen);
        if (rv == 0)
            return 0;
        if (rv > 0) {
            rv = flare_dcutr_msg_decode(&b->peer, msg, mlen);
            if (rv == 0 && b->peer.type != FLARE_DCUTR_CONNECT)
                rv = FLARE_ERR_PROTO; /* A never sends SYNC */
        }
        if (rv < 0) {
            attempt_failed(b, FLARE_DCUTR_REASON_PROTOCOL, now);
            return rv;
        }
        flare__dcutr_rx_consume(b->rx, &b->rxlen, flen);
        rv = on_connect(b, now, out);
        if (rv)
            return rv;
    }
    return 0;
}

int flare_dcutr_initiator_stream_error(flare_dcutr_initiator *b, int err, flare_tstamp now)
{
    if (b->state != I_WAIT_CONNECT)
        return FLARE_ERR_STATE;
    attempt_failed(b,
                   err == FLARE_ERR_NEGOTIATION ? FLARE_DCUTR_REASON_UNSUPPORTED
                                                : FLARE_DCUTR_REASON_STREAM,
                   now);
    return 0;
}

int flare_dcutr_initiator_dial_result(flare_dcutr_initiator *b, int ok,
                                      const flare_multiaddr *conn_addr, flare_tstamp now)
{
    if (b->state != I_DIALING && !(ok && b->state == I_WAIT_PUNCH))
        return FLARE_ERR_STATE;
    if (ok) {
        flare__dcutr_trace_outcome(&b->s, 1, conn_addr, b->attempt);
        trace(b, FLARE_DCUTR_STEP_DIRECT_UP, now, 0);
        b->state = I_SUCCEEDED;
        b->deadline = FLARE_TSTAMP_NEVER;
        push(b, FLARE_DCUTR_EV_SUCCESS, FLARE_DCUTR_REASON_NONE);
        return 0;
    }
    flare__dcutr_trace_outcome(&b->s, 0, &b->peer.addrs[0], b->attempt);
    attempt_failed(b, FLARE_DCUTR_REASON_DIAL, now);
    return 0;
}

flare_tstamp flare_dcutr_initiator_expiry(const flare_dcutr_initiator *b)
{
    return b->deadline;
}

int flare_dcutr_initiator_handle_expiry(flare_dcutr_initiator *b, flare_tstamp now)
{
    if (b->deadline == FLARE_TSTAMP_NEVER || now < b->deadline)
        return 0;
    switch (b->state) {
    case I_WAIT_CONNECT:
        attempt_failed(b, FLARE_DCUTR_REASON_STREAM_TIMEOUT, now);
        return FLARE_ERR_TIMEOUT;
    case I_WAIT_PUNCH:
        trace(b, FLARE_DCUTR_STEP_DIAL_START, now, b->peer.naddrs);
        b->state = I_DIALING;
        b->deadline = now + b->s.dial_timeout;
        push(b, FLARE_DCUTR_EV_DIAL, FLARE_DCUTR_REASON_NONE);
        return 0;
    case I_DIALING:
        flare__dcutr_trace_outcome(&b->s, 0, &b->peer.addrs[0], b->attempt);
        attempt_failed(b, FLARE_DCUTR_REASON_DIAL_TIMEOUT, now);
        return 0;
    case I_BACKOFF:
        b->state = I_RETRY;
        b->deadline = FLARE_TSTAMP_NEVER;
        push(b, FLARE_DCUTR_EV_RETRY, b->last_reason);
        return 0;
    default:
        b->deadline = FLARE_TSTAMP_NEVER;
        return 0;
    }
}

int flare_dcutr_initiator_poll_event(flare_dcutr_initiator *b, flare_dcutr_event *ev)
{
    return flare__dcutr_evq_pop(b->evq, &b->evhead, &b->evlen, ev);
}

int flare_dcutr_initiator_done(const flare_dcutr_initiator *b)
{
    return b->state == I_SUCCEEDED || b->state == I_FAILED;
}
