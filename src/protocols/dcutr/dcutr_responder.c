/* DCUtR responder (A, the peer that dialed through the relay). */
#include <string.h>

#include "protocols/dcutr/dcutr_int.h"

enum {
    R_IDLE = 0,     /* no stream (or the last one ended) */
    R_WAIT_CONNECT, /* stream open, waiting for B's CONNECT */
    R_WAIT_SYNC,    /* our CONNECT sent */
    R_DIALING,      /* SYNC received, EV_DIAL given */
    R_SUCCEEDED,
    R_GAVE_UP, /* attempts used up, or B did not come back */
};

static void push(flare_dcutr_responder *a, flare_dcutr_event_type type, flare_dcutr_reason reason)
{
    flare_dcutr_event ev = {0};
    ev.type = type;
    ev.attempt = a->attempt;
    ev.reason = reason;
    ev.final = a->state == R_GAVE_UP;
    if (type == FLARE_DCUTR_EV_DIAL) {
        ev.rtt = a->rtt;
        ev.addrs = a->peer.addrs;
        ev.naddrs = a->peer.naddrs;
    }
    flare__dcutr_evq_push(a->evq, &a->evhead, &a->evlen, &ev);
}

static void trace(flare_dcutr_responder *a, flare_dcutr_step step, flare_tstamp now, uint64_t v)
{
    flare__dcutr_trace(&a->s, 0, a->attempt, step, now, v);
}

static void give_up(flare_dcutr_responder *a, flare_dcutr_reason reason, flare_tstamp now)
{
    a->state = R_GAVE_UP;
    a->stream_done = 1;
    a->deadline = FLARE_TSTAMP_NEVER;
    trace(a, FLARE_DCUTR_STEP_GAVE_UP, now, reason);
    push(a, FLARE_DCUTR_EV_FAILED, reason);
}

/* Ends this attempt; B decides whether to come back on a new stream. A
 * gives up after the last attempt B may make, or when B's next stream does
 * not come within what B waits before retrying plus a stream timeout (B
 * gave up on its own, e.g. on our addresses), so that A too ends with an
 * outcome. */
static void attempt_failed(flare_dcutr_responder *a, flare_dcutr_reason reason, flare_tstamp now)
{
    a->state = R_IDLE;
    a->stream_done = 1;
    a->rxlen = 0;
    a->last_reason = reason;
    a->deadline = now + a->s.stream_timeout + a->s.retry_backoff * a->attempt;
    trace(a, FLARE_DCUTR_STEP_ATTEMPT_FAILED, now, reason);
    if (a->attempt >= a->s.max_attempts) {
        give_up(a, reason, now);
        return;
    }
    push(a, FLARE_DCUTR_EV_FAILED, reason);
}

int flare_dcutr_responder_init(flare_dcutr_responder *a, const flare_dcutr_settings *s,
                               const flare_mem *mem)
{
    memset(a, 0, sizeof(*a));
    a->mem = mem;
    a->state = R_IDLE;
    a->stream_done = 1;
    a->deadline = FLARE_TSTAMP_NEVER;
    return flare__dcutr_settings(&a->s, s);
}

void flare_dcutr_responder_free(flare_dcutr_responder *a)
{
    (void)a; /* nothing allocated */
}

int flare_dcutr_responder_stream_open(flare_dcutr_responder *a, flare_tstamp now)
{
    if (a->attempt >= a->s.max_attempts)
        return FLARE_ERR_LIMIT;
    if (a->state == R_GAVE_UP)
        return FLARE_ERR_STATE;
    /* A new stream is a new attempt: B gave up on the previous one (a dial
     * still under way is written off as failed). */
    if (a->state == R_DIALING) {
        flare__dcutr_trace_outcome(&a->s, 0, &a->peer.addrs[0], a->attempt);
        attempt_failed(a, FLARE_DCUTR_REASON_DIAL, now);
    }
    a->attempt++;
    a->rxlen = 0;
    a->peer.naddrs = 0;
    a->stream_done = 0;
    a->state = R_WAIT_CONNECT;
    a->deadline = now + a->s.stream_timeout;
    return 0;
}

static int on_connect(flare_dcutr_responder *a, flare_tstamp now, const flare_multiaddr *ours,
                      size_t n, flare_buf *out)
{
    trace(a, FLARE_DCUTR_STEP_CONNECT_RECEIVED, now, a->peer.naddrs);
    if (a->peer.naddrs == 0) {
        attempt_failed(a, FLARE_DCUTR_REASON_NO_ADDRS, now);
        return FLARE_ERR_PROTO;
    }
    if (n == 0 || !ours) {
        attempt_failed(a, FLARE_DCUTR_REASON_NO_ADDRS, now);
        return FLARE_ERR_REFUSED; /* nothing to tell B where to dial */
    }
    if (n > FLARE_DCUTR_MAX_ADDRS)
        n = FLARE_DCUTR_MAX_ADDRS;
    int rv = flare_dcutr_msg_encode(out, FLARE_DCUTR_CONNECT, ours, n);
    if (rv) {
        attempt_failed(a, FLARE_DCUTR_REASON_STREAM, now);
        return rv;
    }
    trace(a, FLARE_DCUTR_STEP_CONNECT_SENT, now, n);
    a->replied_at = now;
    a->state = R_WAIT_SYNC;
    a->deadline = now + a->s.stream_timeout;
    return 0;
}

/* SYNC: B dials at RTT/2 from now, which is when its SYNC reaches us. */
static void on_sync(flare_dcutr_responder *a, flare_tstamp now)
{
    a->rtt = now - a->replied_at;
    a->stream_done = 1;
    trace(a, FLARE_DCUTR_STEP_SYNC_RECEIVED, now, 0);
    trace(a, FLARE_DCUTR_STEP_RTT, now, a->rtt);
    trace(a, FLARE_DCUTR_STEP_DIAL_START, now, a->peer.naddrs);
    a->state = R_DIALING;
    a->deadline = now + a->s.dial_timeout;
    push(a, FLARE_DCUTR_EV_DIAL, FLARE_DCUTR_REASON_NONE);
}

/* One complete message in the current state. */
static int on_msg(flare_dcutr_responder *a, const uint8_t *msg, size_t mlen, flare_tstamp now,
                  const flare_multiaddr *ours, size_t n, flare_buf *out)
{
    flare_dcutr_type type;
    int rv;
    if (a->state == R_WAIT_CONNECT) {
        rv = flare_dcutr_msg_decode(&a->peer, msg, mlen);
        type = a->peer.type;
    } else {
        rv = flare__dcutr_msg_type(msg, mlen, &type);
    }
    if (rv == 0 && a->state == R_WAIT_CONNECT && type != FLARE_DCUTR_CONNECT)
        rv = FLARE_ERR_PROTO; /* SYNC before CONNECT */
    if (rv == 0 && a->state == R_WAIT_SYNC && type != FLARE_DCUTR_SYNC)
        rv = FLARE_ERR_PROTO; /* a second CONNECT */
    if (rv < 0) {
        attempt_failed(a, FLARE_DCUTR_REASON_PROTOCOL, now);
        return rv;
    }
    if (type == FLARE_DCUTR_CONNECT)
        return on_connect(a, now, ours, n, out);
    on_sync(a, now);
    return 0;
}

int flare_dcutr_responder_recv(flare_dcutr_responder *a, const uint8_t *in, size_t len,
                               flare_tstamp now, const flare_multiaddr *our_addrs, size_t n,
                               flare_buf *out)
{
    while (len > 0 || a->rxlen > 0) {
        if (a->stream_done)
            return a->attempt ? FLARE_ERR_PROTO : FLARE_ERR_STATE;
        const uint8_t *msg;
        size_t mlen, flen;
        int rv = flare__dcutr_rx_frame(a->rx, &a->rxlen, &in, &len, &msg, &mlen, &flen);
        if (rv == 0)
            return 0;
        if (rv < 0) {
            attempt_failed(a, FLARE_DCUTR_REASON_PROTOCOL, now);
            return rv;
        }
        rv = on_msg(a, msg, mlen, now, our_addrs, n, out);
        if (rv)
            return rv;
        flare__dcutr_rx_consume(a->rx, &a->rxlen, flen);
    }
    return 0;
}

int flare_dcutr_responder_dial_result(flare_dcutr_responder *a, int ok,
                                      const flare_multiaddr *conn_addr, flare_tstamp now)
{
    if (a->state != R_DIALING)
        return FLARE_ERR_STATE;
    flare__dcutr_trace_outcome(&a->s, ok, ok ? conn_addr : &a->peer.addrs[0], a->attempt);
    if (!ok) {
        attempt_failed(a, FLARE_DCUTR_REASON_DIAL, now);
        return 0;
    }
    trace(a, FLARE_DCUTR_STEP_DIRECT_UP, now, 0);
    a->state = R_SUCCEEDED;
    a->deadline = FLARE_TSTAMP_NEVER;
    push(a, FLARE_DCUTR_EV_SUCCESS, FLARE_DCUTR_REASON_NONE);
    return 0;
}

flare_tstamp flare_dcutr_responder_expiry(const flare_dcutr_responder *a)
{
    return a->deadline;
}

int flare_dcutr_responder_handle_expiry(flare_dcutr_responder *a, flare_tstamp now)
{
    if (a->deadline == FLARE_TSTAMP_NEVER || now < a->deadline)
        return 0;
    switch (a->state) {
    case R_WAIT_CONNECT:
    case R_WAIT_SYNC:
        attempt_failed(a, FLARE_DCUTR_REASON_STREAM_TIMEOUT, now);
        return FLARE_ERR_TIMEOUT;
    case R_DIALING:
        flare__dcutr_trace_outcome(&a->s, 0, &a->peer.addrs[0], a->attempt);
        attempt_failed(a, FLARE_DCUTR_REASON_DIAL_TIMEOUT, now);
        return 0;
    case R_IDLE:
        if (a->attempt) { /* B did not come back */
            give_up(a, a->last_reason, now);
            return 0;
        }
        a->deadline = FLARE_TSTAMP_NEVER;
        return 0;
    default:
        a->deadline = FLARE_TSTAMP_NEVER;
        return 0;
    }
}

int flare_dcutr_responder_stream_error(flare_dcutr_responder *a, int err, flare_tstamp now)
{
    (void)err;
    if (a->state != R_WAIT_CONNECT && a->state != R_WAIT_SYNC)
        return FLARE_ERR_STATE;
    attempt_failed(a, FLARE_DCUTR_REASON_STREAM, now);
    return 0;
}

int flare_dcutr_responder_abort(flare_dcutr_responder *a, flare_tstamp now)
{
    if (a->state == R_SUCCEEDED || a->state == R_GAVE_UP)
        return FLARE_ERR_STATE;
    if (a->state == R_DIALING)
        flare__dcutr_trace_outcome(&a->s, 0, &a->peer.addrs[0], a->attempt);
    give_up(a, a->state == R_IDLE && a->attempt ? a->last_reason : FLARE_DCUTR_REASON_STREAM, now);
    return 0;
}

int flare_dcutr_responder_done(const flare_dcutr_responder *a)
{
    return a->state == R_SUCCEEDED || a->state == R_GAVE_UP;
}

int flare_dcutr_responder_poll_event(flare_dcutr_responder *a, flare_dcutr_event *ev)
{
    return flare__dcutr_evq_pop(a->evq, &a->evhead, &a->evlen, ev);
}
