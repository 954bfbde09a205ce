/* yamux session: frame parser, flow control, stream state, pings. */
#include <limits.h>
#include <string.h>

#include "core/mem.h"
#include "muxer/yamux/yamux_int.h"

#define NO_GOAWAY      -1
#define LONG_MAX_BYTES ((size_t)LONG_MAX)

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int send_frame(flare_buf *out, uint8_t type, uint16_t flags, uint32_t sid, uint32_t len)
{
    uint8_t h[FLARE_YAMUX_HEADER_LEN];
    h[0] = 0;
    h[1] = type;
    h[2] = (uint8_t)(flags >> 8);
    h[3] = (uint8_t)flags;
    put32(h + 4, sid);
    put32(h + 8, len);
    return flare_buf_append(out, h, sizeof(h));
}

static int stream_event(flare_yamux *y, flare__ystream *st, flare_yamux_event_type type, int err);
static int maybe_closed(flare_yamux *y, flare__ystream *st);

/* Kills the session: optional GoAway; RESET and CLOSED events for every live
 * stream (so the host frees them on its usual path), then SESSION_ERROR. */
static int fail(flare_yamux *y, int err, int goaway, flare_buf *out)
{
    if (goaway != NO_GOAWAY && out)
        (void)send_frame(out, FLARE_YAMUX_TYPE_GO_AWAY, 0, 0, (uint32_t)goaway);
    y->dead = err;
    for (size_t i = 0; i < y->nstreams; i++) {
        flare__ystream *st = flare__ystream_table(y)[i];
        if (!st->reset && !st->closing) {
            st->reset = 1;
            flare__ystream_buf_drop(y, st);
            (void)stream_event(y, st, FLARE_YAMUX_EV_STREAM_RESET, err);
        }
        (void)maybe_closed(y, st);
    }
    flare__yevent e = {.type = FLARE_YAMUX_EV_SESSION_ERROR, .val = err};
    (void)flare__yevent_push(y, &e);
    return err;
}

static int stream_event(flare_yamux *y, flare__ystream *st, flare_yamux_event_type type, int err)
{
    if (st->closing)
        return 0;
    if (type == FLARE_YAMUX_EV_STREAM_READABLE) {
        if (st->ev_readable)
            return 0;
        st->ev_readable = 1;
    } else if (type == FLARE_YAMUX_EV_STREAM_WRITABLE) {
        if (st->ev_writable)
            return 0;
        st->ev_writable = 1;
    }
    flare__yevent e = {.type = (uint8_t)type, .stream_id = st->id, .val = err};
    return flare__yevent_push(y, &e);
}

/* Queues CLOSED once the stream is reset or done both ways with nothing left
 * to read; the stream is freed when the application pops that event. */
static int maybe_closed(flare_yamux *y, flare__ystream *st)
{
    if (st->closing)
        return 0;
    if (!st->reset && !(st->local_fin && st->remote_fin && st->len == 0))
        return 0;
    if (!st->acked) {
        st->acked = 1;
        if (st->inbound)
            y->unacked_in--;
        else
            y->unacked_out--;
    }
    if (st->ack_owed) {
        st->ack_owed = 0;
        y->acks_owed--;
    }
    int rv = stream_event(y, st, FLARE_YAMUX_EV_STREAM_CLOSED, 0);
    st->closing = 1;
    return rv;
}

static int send_ping(flare_yamux *y, flare_buf *out)
{
    if (y->ping_out)
        return 0;
    /* Unpredictable, so that a peer that never reads cannot keep the
     * session alive (or fake an RTT) by sending ACKs blindly. */
    uint8_t r[4];
    y->rng.fn(r, sizeof(r), y->rng.user);
    uint32_t opaque = (uint32_t)r[0] << 24 | (uint32_t)r[1] << 16 | (uint32_t)r[2] << 8 | r[3];
    int rv = send_frame(out, FLARE_YAMUX_TYPE_PING, FLARE_YAMUX_FLAG_SYN, 0, opaque);
    if (rv)
        return rv;
    y->ping_opaque = opaque;
    y->ping_out = 1;
    y->data_since_ping = 0;
    y->ping_sent = y->now;
    return 0;
}

/* Sends a window update carrying flags and the window the application has
 * freed. Unless forced, waits until half the window is free (as go-yamux
 * does) and grows the window when the reader keeps up within 4 RTTs. */
static int send_update(flare_yamux *y, flare__ystream *st, uint16_t flags, int force,
                       flare_buf *out)
{
    uint32_t delta = 0;
    if (!st->remote_fin && !st->reset) {
        uint64_t used = (uint64_t)st->recv_avail + st->len;
        delta = used < st->recv_target ? (uint32_t)(st->recv_target - used) : 0;
        if (!force && delta < st->recv_target / 2)
            return 0;
        /* Auto-tuning needs an RTT: measured now that a stream streams,
         * rather than by a ping on every new session. */
        if (!force && !y->rtt && y->s.keepalive_interval && st->recv_target < y->s.recv_cap) {
            int rv = send_ping(y, out);
            if (rv)
                return rv;
        }
        if (!force && y->rtt && y->now - st->epoch < 4 * y->rtt &&
            st->recv_target < y->s.recv_cap) {
            uint64_t t = (uint64_t)st->recv_target * 2;
            st->recv_target = t > y->s.recv_cap ? y->s.recv_cap : (uint32_t)t;
            delta = (uint32_t)(st->recv_target - used);
        }
        st->epoch = y->now;
    }
    if (!force && delta == 0)
        return 0;
    int rv = send_frame(out, FLARE_YAMUX_TYPE_WINDOW_UPDATE, flags, st->id, delta);
    if (rv)
        return rv;
    st->recv_avail += delta;
    return 0;
}

/* The ACK flag if this inbound stream still awaits it (and counts it sent). */
static uint16_t take_ack(flare_yamux *y, flare__ystream *st)
{
    if (!st->inbound || st->acked)
        return 0;
    st->acked = 1;
    y->unacked_in--;
    if (st->ack_owed) {
        st->ack_owed = 0;
        y->acks_owed--;
    }
    return FLARE_YAMUX_FLAG_ACK;
}

static int ensure_acked(flare_yamux *y, flare__ystream *st, flare_buf *out)
{
    uint16_t ack = take_ack(y, st);
    return ack ? send_update(y, st, ack, 1, out) : 0;
}

int flare__yamux_flush_acks(flare_yamux *y, flare_buf *out)
{
    for (size_t i = 0; i < y->nstreams && y->acks_owed; i++) {
        flare__ystream *st = flare__ystream_table(y)[i];
        if (st->ack_owed) {
            int rv = ensure_acked(y, st, out);
            if (rv)
                return rv;
        }
    }
    return 0;
}

/* Received traffic defers the keepalive ping, as go-yamux does: a busy
 * session needs none. Traffic proves only that the peer writes, not that
 * it reads, and a peer that writes blindly could hold the data we queued
 * for it forever; so once we have sent data the peer has not shown it
 * read (by echoing a later ping's random value), the deferral stops
 * KEEPALIVE_PROOF_INTERVALS intervals after that first unproven write. */
#define KEEPALIVE_PROOF_INTERVALS 4

static void keepalive_extend(flare_yamux *y)
{
    flare_tstamp iv = y->s.keepalive_interval;
    if (!iv)
        return;
    flare_tstamp t = y->now + iv;
    /* With a ping out, its timeout is the deadline that matters. */
    if (!y->ping_out && y->unproven_since != FLARE_TSTAMP_NEVER) {
        flare_tstamp cap = y->unproven_since + KEEPALIVE_PROOF_INTERVALS * iv;
        if (cap < t)
            t = cap;
    }
    y->next_keepalive = t;
}

/* Stream data went out: start the proof bound if none is running. */
static void note_data_sent(flare_yamux *y)
{
    y->data_since_ping = 1;
    if (y->unproven_since == FLARE_TSTAMP_NEVER) {
        y->unproven_since = y->now;
        if (y->s.keepalive_interval && !y->ping_out) {
            flare_tstamp cap = y->now + KEEPALIVE_PROOF_INTERVALS * y->s.keepalive_interval;
            if (cap < y->next_keepalive)
                y->next_keepalive = cap;
        }
    }
}

void flare_yamux_settings_default(flare_yamux_settings *s)
{
    memset(s, 0, sizeof(*s));
    s->struct_size = sizeof(*s);
    s->is_client = 1;
    s->initial_window = FLARE_YAMUX_DEFAULT_WINDOW;
    s->max_window = 16u * 1024 * 1024;
    s->max_streams = 512;
    s->max_unacked_inbound = 256;
    s->max_recv_buffer = 16u * 1024 * 1024;
    s->keepalive_interval = 30 * FLARE_NS_PER_S;
    s->ping_timeout = 10 * FLARE_NS_PER_S;
}

int flare_yamux_new(flare_yamux **out, const flare_yamux_settings *s, const flare_mem *mem,
                    flare_rng rng, flare_tstamp now)
{
    *out = NULL;
    if (s->struct_size != sizeof(*s) || s->initial_window < FLARE_YAMUX_DEFAULT_WINDOW ||
        s->max_window < s->initial_window || s->max_recv_buffer < s->initial_window ||
        s->max_streams == 0 || !rng.fn)
        return FLARE_ERR_INVALID_ARG;
    flare_yamux *y = flare__calloc(mem, 1, sizeof(*y));
    if (!y)
        return FLARE_ERR_NOMEM;
    y->s.keepalive_interval = s->keepalive_interval;
    y->s.ping_timeout = s->ping_timeout;
    y->s.initial_window = s->initial_window;
    y->s.max_streams = s->max_streams;
    y->s.max_unacked_inbound = s->max_unacked_inbound;
    y->is_client = s->is_client ? 1 : 0;
    y->mem = flare__mem(mem);
    y->rng = rng;
    y->now = now;
    y->s.recv_cap =
        s->max_recv_buffer < s->max_window ? (uint32_t)s->max_recv_buffer : s->max_window;
    y->next_id = s->is_client ? 1 : 2;
    y->unproven_since = FLARE_TSTAMP_NEVER;
    y->next_keepalive = FLARE_TSTAMP_NEVER;
    keepalive_extend(y);
    *out = y;
    return 0;
}

void flare_yamux_del(flare_yamux *y)
{
    if (!y)
        return;
    flare__ystream_free_all(y);
    flare__yevent_free(y);
    flare__free(y->mem, y);
}

/* ---- receiving ----------------------------------------------------------- */

static int on_ping(flare_yamux *y, uint16_t flags, uint32_t sid, uint32_t opaque, flare_buf *out)
{
    if (sid != 0)
        return fail(y, FLARE_ERR_PROTO, FLARE_YAMUX_GOAWAY_PROTO_ERROR, out);
    if (flags & FLARE_YAMUX_FLAG_SYN) {
        int rv = send_frame(out, FLARE_YAMUX_TYPE_PING, FLARE_YAMUX_FLAG_ACK, 0, opaque);
        return rv ? fail(y, rv, NO_GOAWAY, out) : 0;
    }
    if ((flags & FLARE_YAMUX_FLAG_ACK) && y->ping_out && opaque == y->ping_opaque) {
        y->ping_out = 0;
        y->rtt = y->now - y->ping_sent;
        if (y->rtt == 0)
            y->rtt = 1; /* 0 means "unknown" */
        /* The echo proves the peer read all we sent before the ping. */
        y->unproven_since = y->data_since_ping ? y->ping_sent : FLARE_TSTAMP_NEVER;
        keepalive_extend(y);
        flare__yevent e = {.type = FLARE_YAMUX_EV_PING_RTT};
        int rv = flare__yevent_push(y, &e);
        return rv ? fail(y, rv, NO_GOAWAY, out) : 0;
    }
    return 0; /* stale or unsolicited ACK */
}

static int on_goaway(flare_yamux *y, uint32_t sid, uint32_t code, flare_buf *out)
{
    if (sid != 0)
        return fail(y, FLARE_ERR_PROTO, FLARE_YAMUX_GOAWAY_PROTO_ERROR, out);
    if (y->remote_goaway)
        return 0;
    y->remote_goaway = 1;
    flare__yevent e = {.type = FLARE_YAMUX_EV_GOAWAY, .val = (int32_t)code};
    int rv = flare__yevent_push(y, &e);
    return rv ? fail(y, rv, NO_GOAWAY, out) : 0;
}

/* A SYN for a new remote stream: accepted, or refused with RST (*st NULL). */
static int on_syn(flare_yamux *y, uint32_t sid, flare_buf *out, flare__ystream **st)
{
    *st = NULL;
    /* Our peer opens even ids if we are the client, odd ones otherwise. */
    if ((sid & 1) == (y->is_client ? 1u : 0u))
        return FLARE_ERR_PROTO;
    if (flare__ystream_find(y, sid))
        return FLARE_ERR_PROTO;
    if (y->local_goaway || y->nstreams >= y->s.max_streams ||
        y->unacked_in >= y->s.max_unacked_inbound)
        return send_frame(out, FLARE_YAMUX_TYPE_WINDOW_UPDATE, FLARE_YAMUX_FLAG_RST, sid, 0);
    int rv = flare__ystream_add(y, sid, 1, st);
    if (rv)
        return rv;
    y->unacked_in++;
    return stream_event(y, *st, FLARE_YAMUX_EV_STREAM_OPENED, 0);
}

static int on_fin_rst(flare_yamux *y, flare__ystream *st, uint16_t flags)
{
    int rv = 0;
    if (flags & FLARE_YAMUX_FLAG_RST) {
        if (st->reset)
            return 0;
        st->reset = 1;
        flare__ystream_buf_drop(y, st);
        rv = stream_event(y, st, FLARE_YAMUX_EV_STREAM_RESET, FLARE_ERR_RESET);
    } else if ((flags & FLARE_YAMUX_FLAG_FIN) && !st->remote_fin && !st->reset) {
        st->remote_fin = 1;
        rv = stream_event(y, st, FLARE_YAMUX_EV_STREAM_REMOTE_CLOSED, 0);
    }
    return rv ? rv : maybe_closed(y, st);
}

static int on_window_update(flare_yamux *y, flare__ystream *st, uint16_t flags, uint32_t delta)
{
    if (st->reset)
        return 0;
    if ((uint64_t)st->send_window + delta > UINT32_MAX)
        return FLARE_ERR_FLOW_CONTROL;
    st->send_window += delta;
    if (st->want_writable && st->send_window > 0 && !st->local_fin) {
        st->want_writable = 0;
        int rv = stream_event(y, st, FLARE_YAMUX_EV_STREAM_WRITABLE, 0);
        if (rv)
            return rv;
    }
    return on_fin_rst(y, st, flags);
}

/* Header of a Data frame for st (NULL: discard the payload). */
static int on_data_header(flare_yamux *y, flare__ystream *st, uint16_t flags, uint32_t len)
{
    y->payload_sid = 0;
    y->payload_flags = flags;
    y->payload_left = len;
    if (!st || st->reset)
        return 0;
    if (st->remote_fin && len > 0)
        return FLARE_ERR_PROTO;
    if (len > st->recv_avail)
        return FLARE_ERR_FLOW_CONTROL;
    st->recv_avail -= len;
    y->payload_sid = st->id;
    return 0;
}

static int on_data_chunk(flare_yamux *y, const uint8_t *p, size_t n)
{
    if (!y->payload_sid)
        return 0;
    flare__ystream *st = flare__ystream_find(y, y->payload_sid);
    if (!st || st->reset)
        return 0; /* reset or freed locally mid-frame */
    int rv = flare__ystream_buf_append(y, st, p, n, y->payload_left);
    if (rv)
        return rv;
    return stream_event(y, st, FLARE_YAMUX_EV_STREAM_READABLE, 0);
}

static int on_data_end(flare_yamux *y)
{
    if (!y->payload_sid)
        return 0;
    flare__ystream *st = flare__ystream_find(y, y->payload_sid);
    y->payload_sid = 0;
    return st ? on_fin_rst(y, st, y->payload_flags) : 0;
}

static int on_stream_frame(flare_yamux *y, uint8_t type, uint16_t flags, uint32_t sid, uint32_t len,
                           flare_buf *out)
{
    if (sid == 0) {
        /* Session-level window updates carry nothing in yamux; tolerate. */
        if (type == FLARE_YAMUX_TYPE_WINDOW_UPDATE && !(flags & FLARE_YAMUX_FLAG_SYN))
            return 0;
        return FLARE_ERR_PROTO;
    }
    if (type == FLARE_YAMUX_TYPE_DATA && len > y->s.recv_cap)
        return FLARE_ERR_TOO_LARGE; /* more than any window we ever grant */
    flare__ystream *st = flare__ystream_find(y, sid);
    int rv;
    if (flags & FLARE_YAMUX_FLAG_SYN) {
        if ((rv = on_syn(y, sid, out, &st)) != 0)
            return rv;
    }
    if (st && (flags & FLARE_YAMUX_FLAG_ACK) && !st->inbound && !st->acked) {
        st->acked = 1;
        y->unacked_out--;
    }
    if (type == FLARE_YAMUX_TYPE_WINDOW_UPDATE)
        return st ? on_window_update(y, st, flags, len) : 0;
    /* Data for an unknown stream (already freed or refused) is dropped. */
    if ((rv = on_data_header(y, st, flags, len)) != 0)
        return rv;
    return len == 0 ? on_data_end(y) : 0;
}

static int on_header(flare_yamux *y, flare_buf *out)
{
    const uint8_t *h = y->hdr;
    uint8_t type = h[1];
    uint16_t flags = (uint16_t)(h[2] << 8 | h[3]);
    uint32_t sid = get32(h + 4), len = get32(h + 8);
    int rv;
    if (h[0] != 0)
        return fail(y, FLARE_ERR_UNSUPPORTED, FLARE_YAMUX_GOAWAY_PROTO_ERROR, out);
    switch (type) {
    case FLARE_YAMUX_TYPE_DATA:
    case FLARE_YAMUX_TYPE_WINDOW_UPDATE:
        rv = on_stream_frame(y, type, flags, sid, len, out);
        break;
    case FLARE_YAMUX_TYPE_PING:
        return on_ping(y, flags, sid, len, out);
    case FLARE_YAMUX_TYPE_GO_AWAY:
        return on_goaway(y, sid, len, out);
    default:
        rv = FLARE_ERR_UNKNOWN_CODE;
        break;
    }
    if (rv == FLARE_ERR_NOMEM)
        return fail(y, rv, FLARE_YAMUX_GOAWAY_INTERNAL_ERROR, out);
    return rv ? fail(y, rv, FLARE_YAMUX_GOAWAY_PROTO_ERROR, out) : 0;
}

int flare_yamux_recv(flare_yamux *y, const uint8_t *in, size_t len, flare_tstamp now,
                     flare_buf *out)
{
    if (y->dead)
        return FLARE_ERR_STATE;
    if (now > y->now)
        y->now = now;
    if (len)
        keepalive_extend(y);
    while (len > 0) {
        if (y->payload_left) {
            size_t n = len < y->payload_left ? len : y->payload_left;
            int rv = on_data_chunk(y, in, n);
            in += n;
            len -= n;
            y->payload_left -= (uint32_t)n;
            if (!rv && y->payload_left == 0)
                rv = on_data_end(y);
            if (rv)
                return fail(y, rv, FLARE_YAMUX_GOAWAY_INTERNAL_ERROR, out);
            continue;
        }
        size_t n = FLARE_YAMUX_HEADER_LEN - y->hdr_len;
        if (n > len)
            n = len;
        memcpy(y->hdr + y->hdr_len, in, n);
        y->hdr_len += n;
        in += n;
        len -= n;
        if (y->hdr_len < FLARE_YAMUX_HEADER_LEN)
            break; /* wait for the rest of the header */
        y->hdr_len = 0;
        int rv = on_header(y, out);
        if (rv)
            return rv;
    }
    return 0;
}

/* ---- application side ---------------------------------------------------- */

int flare_yamux_open_stream(flare_yamux *y, uint32_t *id, flare_buf *out)
{
    if (y->dead)
        return FLARE_ERR_STATE;
    if (y->local_goaway || y->remote_goaway)
        return FLARE_ERR_CLOSED;
    if (y->nstreams >= y->s.max_streams || y->unacked_out >= FLARE_YAMUX_ACK_BACKLOG ||
        y->next_id > UINT32_MAX)
        return FLARE_ERR_LIMIT;
    flare__ystream *st;
    int rv = flare__ystream_add(y, (uint32_t)y->next_id, 0, &st);
    if (rv)
        return rv;
    rv = send_update(y, st, FLARE_YAMUX_FLAG_SYN, 1, out);
    if (rv) {
        flare__ystream_remove(y, st->id);
        return rv;
    }
    y->next_id += 2;
    y->unacked_out++;
    *id = st->id;
    return 0;
}

static flare__ystream *live_stream(const flare_yamux *y, uint32_t id, int *err)
{
    *err = y->dead ? FLARE_ERR_STATE : 0;
    if (*err)
        return NULL;
    flare__ystream *st = flare__ystream_find(y, id);
    if (!st)
        *err = FLARE_ERR_NOT_FOUND;
    return st;
}

int flare_yamux_accept_stream(flare_yamux *y, uint32_t id, flare_buf *out)
{
    int err;
    flare__ystream *st = live_stream(y, id, &err);
    return st ? ensure_acked(y, st, out) : err;
}

/* Stream id ready to send len bytes: open for writing and acked. Sets *stp
 * and returns how many of them its send window takes now (marking it
 * want_writable when not all), or an error. */
static long send_room(flare_yamux *y, uint32_t id, size_t len, flare_buf *out, flare__ystream **stp)
{
    int err;
    flare__ystream *st = live_stream(y, id, &err);
    if (!st)
        return err;
    if (st->reset)
        return FLARE_ERR_RESET;
    if (st->local_fin)
        return FLARE_ERR_CLOSED;
    size_t n = len < st->send_window ? len : st->send_window;
    if (n == 0 && (err = ensure_acked(y, st, out)) != 0)
        return err;
    if (n < len)
        st->want_writable = 1;
    *stp = st;
    return (long)(n < LONG_MAX_BYTES ? n : LONG_MAX_BYTES);
}

long flare_yamux_write(flare_yamux *y, uint32_t id, const uint8_t *data, size_t len, flare_buf *out)
{
    flare__ystream *st;
    long room = send_room(y, id, len, out, &st);
    if (room < 0)
        return room;
    size_t n = (size_t)room;
    size_t frames = (n + FLARE_YAMUX_MAX_FRAME - 1) / FLARE_YAMUX_MAX_FRAME;
    int err;
    if ((err = flare_buf_reserve(out, n + frames * FLARE_YAMUX_HEADER_LEN)) != 0)
        return err;
    /* An inbound stream's ACK rides on its first data frame. */
    uint16_t flags = n ? take_ack(y, st) : 0;
    for (size_t done = 0; done < n;) {
        size_t k = n - done < FLARE_YAMUX_MAX_FRAME ? n - done : FLARE_YAMUX_MAX_FRAME;
        (void)send_frame(out, FLARE_YAMUX_TYPE_DATA, flags, id, (uint32_t)k);
        flags = 0;
        (void)flare_buf_append(out, data + done, k);
        done += k;
    }
    st->send_window -= (uint32_t)n;
    if (n)
        note_data_sent(y);
    return (long)n;
}

long flare_yamux_write_frame(flare_yamux *y, uint32_t id, size_t len,
                             uint8_t hdr[FLARE_YAMUX_HEADER_LEN], flare_buf *out)
{
    flare__ystream *st;
    long room = send_room(y, id, len, out, &st);
    if (room < 0)
        return room;
    size_t n = (size_t)room;
    if (n > FLARE_YAMUX_MAX_FRAME)
        n = FLARE_YAMUX_MAX_FRAME;
    if (n == 0)
        return ensure_acked(y, st, out);
    uint16_t flags = take_ack(y, st); /* on the first data frame */
    hdr[0] = 0;
    hdr[1] = FLARE_YAMUX_TYPE_DATA;
    hdr[2] = (uint8_t)(flags >> 8);
    hdr[3] = (uint8_t)flags;
    put32(hdr + 4, id);
    put32(hdr + 8, (uint32_t)n);
    st->send_window -= (uint32_t)n;
    if (n)
        note_data_sent(y);
    return (long)n;
}

long flare_yamux_read(flare_yamux *y, uint32_t id, uint8_t *dst, size_t cap, flare_buf *out)
{
    int err;
    flare__ystream *st = live_stream(y, id, &err);
    if (!st)
        return err;
    if (cap == 0)
        return FLARE_ERR_INVALID_ARG;
    if (st->reset)
        return FLARE_ERR_RESET;
    if (!y->lazy_ack) {
        if ((err = ensure_acked(y, st, out)) != 0)
            return err;
    } else if (st->inbound && !st->acked && !st->ack_owed) {
        st->ack_owed = 1;
        y->acks_owed++;
    }
    if (st->len == 0)
        return st->remote_fin ? 0 : FLARE_ERR_AGAIN;
    size_t n = flare__ystream_buf_take(y, st, dst, cap);
    if ((err = send_update(y, st, 0, 0, out)) != 0)
        return err;
    if ((err = maybe_closed(y, st)) != 0)
        return err;
    return (long)n;
}

size_t flare_yamux_readable(const flare_yamux *y, uint32_t id)
{
    const flare__ystream *st = flare__ystream_find(y, id);
    return st ? st->len : 0;
}

size_t flare_yamux_writable(const flare_yamux *y, uint32_t id)
{
    const flare__ystream *st = flare__ystream_find(y, id);
    if (!st || st->reset || st->local_fin || y->dead)
        return 0;
    return st->send_window;
}

int flare_yamux_close_stream(flare_yamux *y, uint32_t id, flare_buf *out)
{
    int err;
    flare__ystream *st = live_stream(y, id, &err);
    if (!st)
        return err;
    if (st->reset)
        return FLARE_ERR_RESET;
    if (st->local_fin)
        return 0;
    uint16_t flags = FLARE_YAMUX_FLAG_FIN | take_ack(y, st);
    if ((err = send_update(y, st, flags, 1, out)) != 0)
        return err;
    st->local_fin = 1;
    st->want_writable = 0;
    return maybe_closed(y, st);
}

int flare_yamux_reset_stream(flare_yamux *y, uint32_t id, flare_buf *out)
{
    int err;
    flare__ystream *st = live_stream(y, id, &err);
    if (!st)
        return err;
    if (st->reset || st->closing)
        return 0;
    err = send_frame(out, FLARE_YAMUX_TYPE_WINDOW_UPDATE, FLARE_YAMUX_FLAG_RST, id, 0);
    if (err)
        return err;
    st->reset = 1;
    flare__ystream_buf_drop(y, st);
    return maybe_closed(y, st);
}

int flare_yamux_goaway(flare_yamux *y, uint32_t code, flare_buf *out)
{
    if (y->dead || y->local_goaway)
        return FLARE_ERR_STATE;
    int rv = send_frame(out, FLARE_YAMUX_TYPE_GO_AWAY, 0, 0, code);
    if (rv)
        return rv;
    y->local_goaway = 1;
    return 0;
}

int flare_yamux_ping(flare_yamux *y, flare_tstamp now, flare_buf *out)
{
    if (y->dead)
        return FLARE_ERR_STATE;
    if (now > y->now)
        y->now = now;
    return send_ping(y, out);
}

void flare_yamux_set_stream_user(flare_yamux *y, uint32_t id, void *user)
{
    flare__ystream *st = flare__ystream_find(y, id);
    if (st)
        st->user = user;
}

void *flare_yamux_get_stream_user(const flare_yamux *y, uint32_t id)
{
    const flare__ystream *st = flare__ystream_find(y, id);
    return st ? st->user : NULL;
}

flare_tstamp flare_yamux_expiry(const flare_yamux *y)
{
    if (y->dead)
        return FLARE_TSTAMP_NEVER;
    flare_tstamp t = y->next_keepalive;
    if (y->ping_out && y->s.ping_timeout) {
        flare_tstamp d = y->ping_sent + y->s.ping_timeout;
        if (d < t)
            t = d;
    }
    return t;
}

int flare_yamux_handle_expiry(flare_yamux *y, flare_tstamp now, flare_buf *out)
{
    if (y->dead)
        return FLARE_ERR_STATE;
    if (now > y->now)
        y->now = now;
    if (y->ping_out && y->s.ping_timeout && y->now >= y->ping_sent + y->s.ping_timeout)
        return fail(y, FLARE_ERR_TIMEOUT, NO_GOAWAY, out);
    if (y->s.keepalive_interval && y->now >= y->next_keepalive) {
        int rv = flare_yamux_ping(y, y->now, out);
        if (rv)
            return rv;
        y->next_keepalive = y->now + y->s.keepalive_interval;
    }
    return 0;
}

int flare_yamux_poll_event(flare_yamux *y, flare_yamux_event *ev)
{
    flare__yevent e;
    if (!flare__yevent_pop(y, &e))
        return 0;
    memset(ev, 0, sizeof(*ev));
    ev->type = (flare_yamux_event_type)e.type;
    ev->stream_id = e.stream_id;
    if (e.type == FLARE_YAMUX_EV_GOAWAY)
        ev->code = (uint32_t)e.val;
    else
        ev->error = e.val;
    if (e.type == FLARE_YAMUX_EV_PING_RTT)
        ev->rtt = y->rtt;
    if (e.stream_id) {
        flare__ystream *st = flare__ystream_find(y, e.stream_id);
        if (st) {
            ev->stream_user = st->user;
            if (e.type == FLARE_YAMUX_EV_STREAM_READABLE)
                st->ev_readable = 0;
            else if (e.type == FLARE_YAMUX_EV_STREAM_WRITABLE)
                st->ev_writable = 0;
            else if (e.type == FLARE_YAMUX_EV_STREAM_CLOSED)
                flare__ystream_remove(y, e.stream_id);
        }
    }
    return 1;
}

size_t flare_yamux_num_streams(const flare_yamux *y)
{
    return y->nstreams;
}

flare_tstamp flare_yamux_rtt(const flare_yamux *y)
{
    return y->rtt;
}
