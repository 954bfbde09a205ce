/*
 * Streams: a stream of the connection's muxer (yamux, or a transport's own,
 * src/muxer/muxer.h) plus its multistream-select negotiation.
 *
 * Outbound streams negotiate optimistically (one proposal, 0-RTT): the
 * proposal and any data the application writes early are sent at once, and
 * on_open fires when the listener's echo arrives. Inbound streams run a
 * multistream listener that accepts the protocols of registered handlers
 * (on limited connections only those marked FLARE_HANDLER_ALLOW_LIMITED).
 */
#include <string.h>

#include "core/mem.h"
#include "host/host_int.h"

#define READ_CHUNK 16384

static flare_host *stream_host(const flare_stream *s)
{
    return s->conn->host;
}

/* A stream's memory is its connection's (counted by the resource manager). */
static const flare_mem *stream_mem(const flare_stream *s)
{
    return &s->conn->rc.mem;
}

static int listener_supports(const char *proto, size_t len, void *user);

static void stream_link(flare_conn *c, flare_stream *s)
{
    s->next = c->streams;
    if (c->streams)
        c->streams->prev = s;
    c->streams = s;
    c->nstreams++;
    c->last_used = flare_io_now(c->host->io);
    flare__rc_stream_add(s);
}

static void stream_unlink(flare_stream *s)
{
    flare_conn *c = s->conn;
    if (s->prev)
        s->prev->next = s->next;
    else
        c->streams = s->next;
    if (s->next)
        s->next->prev = s->prev;
    c->nstreams--;
    c->last_used = flare_io_now(c->host->io);
    flare__rc_stream_remove(s);
}

static void nego_free(flare_stream *s)
{
    if (!s->nego)
        return;
    flare_mss_free(&s->nego->mss);
    flare__free(stream_mem(s), s->nego);
    s->nego = NULL;
}

/* Starts multistream on s (listener for inbound streams, optimistic dialer
 * proposing s->protocol otherwise); the dialer's first bytes go to the write
 * queue, the listener's header waits for the proposal and leaves with the
 * answer (one yamux frame). */
static int nego_start(flare_stream *s)
{
    /* Not zeroed: flare_mss_init sets all but the ~1 KiB message buffer,
     * of which a stream touches only the few bytes it receives. */
    s->nego = flare__malloc(stream_mem(s), sizeof(*s->nego));
    if (!s->nego)
        return FLARE_ERR_NOMEM;
    s->nego->proto_list[0] = NULL;
    s->nego->handler = NULL;
    flare_mss_settings ms = {0};
    if (s->inbound) {
        ms.role = FLARE_MSS_LISTENER;
        ms.supports = listener_supports;
        ms.user = s;
    } else {
        /* multistream keeps a pointer to the list: it lives in nego. */
        s->nego->proto_list[0] = s->protocol;
        ms.role = FLARE_MSS_DIALER;
        ms.protocols = s->nego->proto_list;
        ms.nprotocols = 1;
        ms.optimistic = 1;
    }
    int rv = flare_mss_init(&s->nego->mss, &ms, stream_mem(s));
    if (rv) {
        flare__free(stream_mem(s), s->nego);
        s->nego = NULL;
        return rv;
    }
    return s->inbound ? 0 : flare_mss_start(&s->nego->mss, &s->outq);
}

static int set_protocol(flare_stream *s, const char *proto, size_t len)
{
    char *p = flare__malloc(stream_mem(s), len + 1);
    if (!p)
        return FLARE_ERR_NOMEM;
    memcpy(p, proto, len + 1);
    flare__free(stream_mem(s), s->protocol);
    s->protocol = p;
    s->protocol_len = (uint16_t)len;
    return 0;
}

/* 1 while an optimistic outbound stream waits for the listener's echo. */
static int unconfirmed(const flare_stream *s)
{
    return s->nego && !flare_mss_confirmed(&s->nego->mss);
}

void flare__stream_free(flare_stream *s)
{
    const flare_mem *mem = stream_mem(s);
    if (s->mig)
        s->mig->s = NULL;
    flare__stream_ring_free(s);
    if (s->held) {
        flare_buf_free(s->held);
        flare__free(mem, s->held);
    }
    nego_free(s);
    flare_buf_free(&s->outq);
    flare__free(mem, s->protocol);
    flare__free(mem, s);
}

/* The stream is finished: tell the application once. The memory is freed
 * when the connection's outermost processing frame unwinds, since callers up
 * the stack may still hold the pointer. */
void flare__stream_on_gone(flare_stream *s, int err)
{
    if (s->state == FLARE__STREAM_DEAD)
        return;
    int was_negotiating = s->state == FLARE__STREAM_NEGOTIATING;
    s->state = FLARE__STREAM_DEAD;
    flare_conn *c = s->conn;
    stream_unlink(s);
    s->next = c->dead_streams;
    s->prev = NULL;
    c->dead_streams = s;
    c->busy++;
    if (was_negotiating && !s->inbound && s->cbs.on_open)
        s->cbs.on_open(s, err ? err : FLARE_ERR_CLOSED, s->user);
    if ((s->opened_cb_done || !s->inbound) && s->cbs.on_close)
        s->cbs.on_close(s, err, s->user);
    flare__conn_unbusy(c);
}

void flare__conn_free_dead_streams(flare_conn *c)
{
    while (c->dead_streams) {
        flare_stream *s = c->dead_streams;
        c->dead_streams = s->next;
        flare__stream_free(s);
    }
}

int flare__stream_is_app(const flare_stream *s)
{
    static const char *const sys[] = {"/ipfs/", "/libp2p/", "/flare/", "/multistream/"};
    if (!s->protocol)
        return 0;
    for (size_t i = 0; i < sizeof(sys) / sizeof(sys[0]); i++)
        if (strncmp(s->protocol, sys[i], strlen(sys[i])) == 0)
            return 0;
    return 1;
}

size_t flare__conn_app_streams(const flare_conn *c)
{
    size_t n = 0;
    for (const flare_stream *s = c->streams; s; s = s->next)
        n += (size_t)flare__stream_is_app(s);
    return n;
}

void flare__conn_kill_streams(flare_conn *c, int err)
{
    while (c->streams)
        flare__stream_on_gone(c->streams, err);
}

void flare__conn_uncongest(flare_conn *c)
{
    if (!c->congested)
        return;
    c->congested = 0;
    c->busy++;
    flare_stream *s = c->streams;
    while (s && !c->congested && !c->close_pending) {
        flare_stream *next = s->next;
        if (s->outq.len || s->want_writable) {
            flare__stream_on_writable(s);
            flare__conn_flush_now(c); /* may find the carrier full again */
        }
        /* A callback may have ended the next stream (kept, unlinked, until
         * busy drops): start over; pushing a stream twice is harmless. */
        if (next && next->state == FLARE__STREAM_DEAD)
            next = c->streams;
        s = next;
    }
    flare__conn_unbusy(c);
}

static int listener_supports(const char *proto, size_t len, void *user)
{
    flare_stream *s = user;
    const flare__handler *x = flare__host_find_handler(stream_host(s), proto, len);
    if (!x || (s->conn->limited && !(x->flags & FLARE_HANDLER_ALLOW_LIMITED)))
        return 0;
    s->nego->handler = x;
    return 1;
}

flare_stream *flare__stream_new(flare_conn *c, uint32_t id, int inbound)
{
    flare_stream *s = flare__calloc(&c->rc.mem, 1, sizeof(*s));
    if (!s)
        return NULL;
    s->conn = c;
    s->id = id;
    s->inbound = inbound ? 1 : 0;
    s->state = FLARE__STREAM_NEGOTIATING;
    flare_buf_init(&s->outq, &c->rc.mem);
    if (inbound && nego_start(s)) {
        flare__stream_free(s);
        return NULL;
    }
    stream_link(c, s);
    if (inbound)
        flare__stream_on_writable(s);
    return s;
}

/* Writes into the muxer, counting and (on relayed connections) keeping
 * what was taken for a move. */
static long stream_send(flare_stream *s, const uint8_t *data, size_t len)
{
    long n = flare__conn_write_stream(s->conn, s->id, data, len);
    if (n > 0) {
        s->tx_total += (uint64_t)n;
        if (s->conn->limited && !s->mig_off && stream_host(s)->cfg.enable_migration)
            flare__stream_record(s, data, (size_t)n);
    }
    return n;
}

/* Moves queued bytes into the muxer as the window allows; sends FIN when the
 * application closed and everything is out. */
static int stream_push(flare_stream *s)
{
    flare_conn *c = s->conn;
    if (s->mig_frozen)
        return 0;
    while (s->outq.len && !c->congested) {
        long n = stream_send(s, s->outq.base, s->outq.len);
        if (n < 0)
            return (int)n;
        if (n == 0)
            break;
        flare_buf_consume(&s->outq, (size_t)n);
    }
    /* An idle stream keeps no write buffer: it is allocated again on demand
     * (and flare_stream_write bypasses it while it is empty). */
    if (s->outq.len == 0 && s->outq.cap)
        flare_buf_free(&s->outq);
    /* Hold the FIN of an optimistic outbound stream until the listener
     * confirmed the protocol: js-libp2p loses a FIN that arrives while it is
     * still negotiating. */
    if (s->close_requested && !s->fin_sent && s->outq.len == 0 && !unconfirmed(s)) {
        int rv = c->mux->close_stream(c->mux_st, s->id, &c->tmp);
        if (rv)
            return rv;
        s->fin_sent = 1;
    }
    return 0;
}

void flare__stream_on_writable(flare_stream *s)
{
    int rv = stream_push(s);
    if (rv) {
        s->conn->mux->reset_stream(s->conn->mux_st, s->id, &s->conn->tmp);
        flare__stream_on_gone(s, rv);
        return;
    }
    size_t low = stream_host(s)->cfg.max_stream_buffer / 2;
    if (s->want_writable && s->outq.len <= low && s->state == FLARE__STREAM_OPEN) {
        s->want_writable = 0;
        if (s->cbs.on_writable)
            s->cbs.on_writable(s, s->user);
    }
}

/* Negotiation finished: hand an inbound stream to its handler. */
static void stream_negotiated(flare_stream *s)
{
    int rv = 0;
    const flare__handler *x = s->nego->handler; /* the listener accepted its protocol */
    if (s->inbound) {
        rv = x ? set_protocol(s, x->protocol, x->len) : FLARE_ERR_NEGOTIATION;
        if (rv == 0)
            rv = flare__rc_stream_protocol(s); /* per-protocol limits */
    }
    if (rv) {
        s->conn->mux->reset_stream(s->conn->mux_st, s->id, &s->conn->tmp);
        flare__stream_on_gone(s, rv);
        return;
    }
    s->state = FLARE__STREAM_OPEN;
    if (s->inbound) {
        s->cbs = x->cbs;
        s->user = x->user;
    }
    s->opened_cb_done = 1;
    if (s->cbs.on_open)
        s->cbs.on_open(s, 0, s->user);
}

/* Feeds bytes through negotiation; returns how many bytes were used. */
static size_t stream_negotiate(flare_stream *s, const uint8_t *data, size_t len, int *err)
{
    size_t used = 0;
    int rv = flare_mss_recv(&s->nego->mss, data, len, &used, &s->outq);
    *err = 0;
    if (rv < 0) {
        *err = rv;
        return used;
    }
    /* The answer waits in the queue for what the handler writes in on_open:
     * both leave in one frame. */
    if (rv == 1 && (s->inbound || flare_mss_confirmed(&s->nego->mss)))
        stream_negotiated(s);
    if (s->state != FLARE__STREAM_DEAD)
        stream_push(s);
    return used;
}

/* An inbound negotiation failed after we answered (typically "na" to an
 * optimistic proposal, whose data then made no sense as the next one): the
 * answer goes out with a FIN rather than a reset, which would make the
 * dialer's muxer drop the answer arriving with it. The dialer resets or
 * closes the stream on the answer; what it sends until then is dropped.
 * Returns 0, or an error if the stream must be reset instead. */
static int reject(flare_stream *s)
{
    if (!s->inbound || !s->nego || !s->nego->mss.replies || !s->outq.len)
        return FLARE_ERR_STATE;
    s->rejected = 1;
    s->close_requested = 1;
    nego_free(s);
    return stream_push(s);
}

static void deliver(flare_stream *s, const uint8_t *data, size_t len)
{
    if (s->rejected)
        return;
    while (len && s->state != FLARE__STREAM_DEAD) {
        if (s->state == FLARE__STREAM_NEGOTIATING || unconfirmed(s)) {
            int err;
            size_t used = stream_negotiate(s, data, len, &err);
            if (err && reject(s) == 0)
                return;
            if (err) {
                s->conn->mux->reset_stream(s->conn->mux_st, s->id, &s->conn->tmp);
                flare__stream_on_gone(s, err);
                return;
            }
            data += used;
            len -= used;
            if (s->state == FLARE__STREAM_NEGOTIATING)
                continue;
            if (s->nego && flare_mss_confirmed(&s->nego->mss)) {
                nego_free(s);
                stream_push(s); /* a FIN held back during negotiation */
            }
            continue;
        }
        if (s->cbs.on_data)
            s->cbs.on_data(s, data, len, s->user);
        return;
    }
}

void flare__stream_feed(flare_stream *s, const uint8_t *data, size_t len)
{
    if (!len || s->state == FLARE__STREAM_DEAD)
        return;
    s->rx_total += len;
    if (!s->paused && !s->held) {
        deliver(s, data, len);
        return;
    }
    if (!s->held) {
        s->held = flare__malloc(stream_mem(s), sizeof(*s->held));
        if (!s->held) {
            s->conn->mux->reset_stream(s->conn->mux_st, s->id, &s->conn->tmp);
            flare__stream_on_gone(s, FLARE_ERR_NOMEM);
            return;
        }
        flare_buf_init(s->held, stream_mem(s));
    }
    if (flare_buf_append(s->held, data, len)) {
        s->conn->mux->reset_stream(s->conn->mux_st, s->id, &s->conn->tmp);
        flare__stream_on_gone(s, FLARE_ERR_NOMEM);
    }
}

/* Bytes a move read ahead go first. */
static void deliver_held(flare_stream *s)
{
    flare_buf *b = s->held;
    s->held = NULL;
    if (s->state != FLARE__STREAM_DEAD)
        deliver(s, b->base, b->len);
    const flare_mem *mem = b->mem;
    flare_buf_free(b);
    flare__free(mem, b);
}

void flare__stream_on_readable(flare_stream *s)
{
    flare_conn *c = s->conn;
    uint8_t buf[READ_CHUNK];
    if (s->mig_frozen)
        return; /* the bytes stay in the muxer until the move is decided */
    if (s->held && !s->paused)
        deliver_held(s);
    while (s->state != FLARE__STREAM_DEAD && !s->paused && !c->close_pending) {
        long n = c->mux->read(c->mux_st, s->id, buf, sizeof(buf), &c->tmp);
        if (n <= 0)
            break;
        s->rx_total += (uint64_t)n;
        deliver(s, buf, (size_t)n);
    }
    if (s->state != FLARE__STREAM_DEAD && s->remote_eof && !s->eof_delivered)
        flare__stream_on_remote_closed(s);
}

void flare__stream_on_remote_closed(flare_stream *s)
{
    s->remote_eof = 1;
    if (s->paused || s->mig_frozen || s->held || s->conn->mux->readable(s->conn->mux_st, s->id) > 0)
        return; /* delivered once the data before the FIN is read */
    if (s->state == FLARE__STREAM_NEGOTIATING) {
        s->conn->mux->reset_stream(s->conn->mux_st, s->id, &s->conn->tmp);
        flare__stream_on_gone(s, FLARE_ERR_NEGOTIATION);
        return;
    }
    if (!s->eof_delivered && s->state == FLARE__STREAM_OPEN) {
        s->eof_delivered = 1;
        if (s->cbs.on_eof)
            s->cbs.on_eof(s, s->user);
    }
}

/* ---- public API -------------------------------------------------------------------- */

int flare_conn_new_stream(flare_conn *c, const char *protocol, const flare_stream_cbs *cbs,
                          void *user, unsigned flags, flare_stream **out)
{
    size_t plen = strlen(protocol);
    if (plen == 0 || plen >= FLARE_PROTOCOL_MAX)
        return FLARE_ERR_INVALID_ARG;
    if (c->state != FLARE__CONN_READY || c->close_pending)
        return FLARE_ERR_STATE;
    if (c->limited && !(flags & FLARE_STREAM_ALLOW_LIMITED))
        return FLARE_ERR_LIMITED;
    if (flare__rc_stream_check(c, 0))
        return FLARE_ERR_LIMIT;
    uint32_t id;
    int rv = c->mux->open_stream(c->mux_st, &id, &c->tmp);
    if (rv)
        return rv;
    c->busy++;
    flare_stream *s = flare__stream_new(c, id, 0);
    if (!s) {
        c->mux->reset_stream(c->mux_st, id, &c->tmp);
        flare__conn_flush(c);
        flare__conn_api_leave(c);
        return FLARE_ERR_NOMEM;
    }
    rv = set_protocol(s, protocol, plen);
    if (rv == 0)
        rv = flare__rc_stream_protocol(s);
    if (rv == 0)
        rv = nego_start(s);
    if (rv) {
        c->mux->reset_stream(c->mux_st, id, &c->tmp);
        stream_unlink(s);
        flare__stream_free(s);
        flare__conn_flush(c);
        flare__conn_api_leave(c);
        return rv;
    }
    s->cbs = *cbs;
    s->user = user;
    s->flags = flags;
    /* Optimistic: the application may write at once; on_open confirms. */
    stream_push(s);
    if (c->busy > 1)
        flare__conn_flush(c); /* inside a frame: its end writes */
    else
        flare__conn_flush_soon(c); /* with the data the caller writes next */
    if (out)
        *out = s;
    flare__conn_api_leave(c);
    return 0;
}

int flare_host_new_stream(flare_host *h, const flare_peerid *peer, const char *protocol,
                          const flare_stream_cbs *cbs, void *user, unsigned flags,
                          flare_stream **out)
{
    flare_conn *c = flare_host_conn_to(h, peer);
    if (!c)
        return FLARE_ERR_NOT_FOUND;
    return flare_conn_new_stream(c, protocol, cbs, user, flags, out);
}

int flare_stream_write(flare_stream *s, const uint8_t *data, size_t len)
{
    if (s->state == FLARE__STREAM_DEAD || s->close_requested)
        return FLARE_ERR_CLOSED;
    size_t max = stream_host(s)->cfg.max_stream_buffer;
    /* The queue may overshoot the high-water mark once (the caller was told
     * to stop); twice the mark is a caller ignoring backpressure. */
    if (s->outq.len > 0 && s->outq.len + len > 2 * max && !s->carrier)
        return FLARE_ERR_LIMIT;
    flare_conn *c = s->conn;
    int rv = 0;
    c->busy++;
    if (s->outq.len == 0 && !c->congested && !s->mig_frozen) {
        /* Nothing queued: straight into yamux, and only what the window
         * refuses is copied into the queue. */
        long n = stream_send(s, data, len);
        if (n < 0) {
            rv = (int)n;
        } else {
            data += n;
            len -= (size_t)n;
        }
    }
    if (rv == 0 && len) {
        rv = flare_buf_append(&s->outq, data, len);
        if (rv == 0)
            rv = stream_push(s);
    }
    flare__conn_flush(c);
    /* Stop at the stream's own mark, or earlier while this stream queues
     * and the connection's memory budget is half used (a stream with an
     * empty queue costs nothing and would have no drain to wake it). */
    if (rv == 0 && (s->outq.len > max || (s->outq.len && flare__rc_conn_tight(c)))) {
        s->want_writable = 1;
        rv = 1;
    }
    flare__conn_api_leave(c);
    return rv;
}

size_t flare_stream_pending(const flare_stream *s)
{
    return s->outq.len;
}

int flare_stream_close_write(flare_stream *s)
{
    if (s->state == FLARE__STREAM_DEAD)
        return FLARE_ERR_CLOSED;
    if (s->close_requested)
        return 0;
    s->close_requested = 1;
    flare_conn *c = s->conn;
    c->busy++;
    int rv = stream_push(s);
    flare__conn_flush(c);
    flare__conn_api_leave(c);
    return rv;
}

/* on_close follows from the loop (the connection's timer, or its teardown),
 * never inside this call. */
void flare_stream_reset(flare_stream *s)
{
    if (s->state == FLARE__STREAM_DEAD)
        return;
    flare_conn *c = s->conn;
    c->busy++;
    c->mux->reset_stream(c->mux_st, s->id, &c->tmp);
    flare__conn_flush(c);
    s->state = FLARE__STREAM_DEAD;
    stream_unlink(s);
    s->prev = NULL;
    s->next = c->reset_streams;
    c->reset_streams = s;
    flare__conn_arm_timer(c);
    flare__conn_api_leave(c);
}

void flare__stream_abort(flare_stream *s)
{
    s->cbs = (flare_stream_cbs){0};
    s->user = NULL;
    flare_stream_reset(s);
}

void flare__conn_finish_resets(flare_conn *c)
{
    while (c->reset_streams) {
        flare_stream *s = c->reset_streams;
        c->reset_streams = s->next;
        s->next = c->dead_streams;
        c->dead_streams = s;
        if ((s->opened_cb_done || !s->inbound) && s->cbs.on_close)
            s->cbs.on_close(s, FLARE_ERR_RESET, s->user);
    }
}

void flare_stream_pause(flare_stream *s, int paused)
{
    s->paused = paused ? 1 : 0;
    if (!paused && s->state != FLARE__STREAM_DEAD) {
        flare_conn *c = s->conn;
        c->busy++;
        flare__stream_on_readable(s);
        flare__conn_flush(c);
        flare__conn_api_leave(c);
    }
}

const char *flare_stream_protocol(const flare_stream *s)
{
    return s->protocol ? s->protocol : "";
}

flare_conn *flare_stream_conn(const flare_stream *s)
{
    return s->conn;
}

int flare_stream_is_inbound(const flare_stream *s)
{
    return s->inbound;
}

void flare_stream_set_user(flare_stream *s, const flare_stream_cbs *cbs, void *user)
{
    if (cbs)
        s->cbs = *cbs;
    s->user = user;
}

/* ---- moving a stream to another connection --------------------------------------- */

int flare__stream_move(flare_stream *s, flare_stream *d, const uint8_t *pre, size_t prelen,
                       uint64_t peer_rx)
{
    flare_conn *from = s->conn, *to = d->conn;
    if (peer_rx > s->tx_total || peer_rx < flare__stream_floor(s) || s->nego)
        return FLARE_ERR_INVALID_ARG;
    /* The new queue: what d had not sent yet (its negotiation), the move's
     * message, what the peer missed, the rest; bytes read ahead stay with
     * the stream. Both on the new connection's count. */
    flare_buf q, nh;
    flare_buf_init(&q, &to->rc.mem);
    flare_buf_init(&nh, &to->rc.mem);
    size_t dlen = d->outq.len;
    int rv = flare_buf_append(&q, d->outq.base, d->outq.len);
    if (rv == 0)
        rv = flare_buf_append(&q, pre, prelen);
    if (rv == 0)
        rv = flare__stream_ring_copy(s, peer_rx, &q);
    if (rv == 0)
        rv = flare_buf_append(&q, s->outq.base, s->outq.len);
    if (rv == 0 && s->held)
        rv = flare_buf_append(&nh, s->held->base, s->held->len);
    if (rv) {
        flare_buf_free(&q);
        flare_buf_free(&nh);
        return rv;
    }
    flare_buf_free(&s->outq);
    s->outq = q;
    flare__stream_ring_free(s);
    if (s->held) {
        flare_buf_free(s->held);
        *s->held = nh;
        flare__rc_mem_adopt(from, to, s->held);
    }
    stream_unlink(s);
    flare__rc_mem_adopt(from, to, s);
    flare__rc_mem_adopt(from, to, s->protocol);
    /* d's muxer stream is now s's; d itself goes without a word. */
    stream_unlink(d);
    d->state = FLARE__STREAM_DEAD;
    d->cbs = (flare_stream_cbs){0};
    d->user = NULL;
    d->prev = NULL;
    d->next = to->dead_streams;
    to->dead_streams = d;
    s->conn = to;
    s->id = d->id;
    s->prev = s->next = NULL;
    stream_link(to, s);
    if (flare__rc_stream_protocol(s))
        s->rc_pp = NULL; /* over a per-protocol count there: it stays anyway */
    /* Counted as if the peer's missing bytes had never been sent. */
    s->tx_total = peer_rx - prelen - dlen;
    s->mig_frozen = 0;
    s->fin_sent = 0; /* a FIN sent on the old stream is sent again here */
    /* An EOF already delivered is not delivered again; one the new muxer
     * stream already saw is the peer's end of the moved stream. */
    s->remote_eof = s->eof_delivered || d->remote_eof;
    return 0;
}
