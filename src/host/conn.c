/*
 * The connection upgrade pipeline and its steady state:
 *
 *   raw  --mss(/noise)-->  Noise XX  --mss(/yamux/1.0.0) or Noise ext-->  yamux
 *
 * It runs over any byte-stream transport (src/transport/transport.h): bytes
 * from it go through process_wire(); plaintext produced by mss or yamux is
 * collected in c->tmp, encrypted into c->wire and written by
 * flare__conn_flush(). The connection's role (initiator: Noise initiator,
 * multistream dialer, yamux client) is fixed when the upgrade starts and
 * need not match the transport's direction.
 */
#include <stdio.h>
#include <string.h>

#include "core/mem.h"
#include "host/host_int.h"
#include "transport/transport.h"

static const char *const noise_protos[] = {FLARE__NOISE_ID};
static const char *const yamux_protos[] = {FLARE__YAMUX_ID};

static void conn_on_timer(flare_io_timer *t, void *user);

flare_conn *flare__conn_new(flare_host *h, int outbound)
{
    flare_conn *c = flare__calloc(h->mem, 1, sizeof(*c));
    if (!c)
        return NULL;
    if (h->io->ops->timer_new(h->io, conn_on_timer, c, &c->timer)) {
        flare__free(h->mem, c);
        return NULL;
    }
    c->host = h;
    flare__rc_conn_init(c); /* everything of c below is allocated through c->rc.mem */
    c->id = ++h->next_conn_id;
    c->outbound = outbound;
    c->initiator = outbound;
    c->state = FLARE__CONN_DIALING;
    flare_buf_init(&c->plain_in, &c->rc.mem);
    flare_buf_init(&c->tmp, &c->rc.mem);
    flare_buf_init(&c->wire, &c->rc.mem);
    c->next = h->conns;
    if (h->conns)
        h->conns->prev = c;
    h->conns = c;
    h->nconns++;
    return c;
}

void flare__conn_attach(flare_conn *c, const flare__transport_ops *ops, void *tr)
{
    c->tr_ops = ops;
    c->tr = tr;
}

/* ---- teardown ------------------------------------------------------------------ */

static void conn_unlink(flare_conn *c)
{
    flare_host *h = c->host;
    if (c->prev)
        c->prev->next = c->next;
    else
        h->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    h->nconns--;
}

/* Frees everything; no callbacks except the stream/dial/conn notifications. */
void flare__conn_destroy(flare_conn *c)
{
    flare_host *h = c->host;
    int err = c->close_err;
    if (c->state != FLARE__CONN_DEAD) {
        int was_ready = c->state == FLARE__CONN_READY;
        c->state = FLARE__CONN_DEAD;
        c->busy++;
        flare__conn_finish_resets(c);
        flare__conn_kill_streams(c, err ? err : FLARE_ERR_CLOSED);
        if (!was_ready || c->waiters)
            flare__dial_complete(c, err ? err : FLARE_ERR_CLOSED);
        flare__svc_conn_closed(h, c);
        if (c->opened_reported) {
            if (c->peer_pinned)
                flare__peerstore_conn_closed(h->peerstore, &c->peer);
            flare__addrs_conn_closed(h, c);
            flare_host_event ev = {.type = FLARE_HOST_EV_CONN_CLOSED,
                                   .u.conn = {.conn = c,
                                              .peer = &c->peer,
                                              .addr = &c->remote_ma,
                                              .error = err,
                                              .outbound = c->outbound}};
            flare__host_emit(h, &ev);
        } else if (!c->outbound && err) {
            flare_host_event ev = {.type = FLARE_HOST_EV_INCOMING_FAILED,
                                   .u.failed = {.addr = &c->remote_ma, .error = err}};
            flare__host_emit(h, &ev);
        }
        c->busy--;
    }
    flare__conn_close_transport(c, err != 0 && err != FLARE_ERR_CLOSED);
    flare__conn_free_dead_streams(c);
    conn_unlink(c);
    h->io->ops->timer_del(c->timer);
    if (c->mss_active)
        flare_mss_free(&c->mss);
    if (c->noise_active)
        flare_noise_free(&c->noise);
    if (c->yamux)
        flare_yamux_del(c->yamux);
    flare_buf_free(&c->plain_in);
    flare_buf_free(&c->tmp);
    flare_buf_free(&c->wire);
    flare__rc_conn_remove(c);
    flare__free(h->mem, c);
}

/* Closes the connection with err (0: graceful). Safe inside callbacks: the
 * free happens when the outermost processing frame unwinds. */
void flare__conn_fail(flare_conn *c, int err)
{
    if (c->close_pending)
        return;
    c->close_pending = 1;
    c->close_err = flare__rc_conn_error(c, err);
    if (c->busy == 0)
        flare__conn_destroy(c);
}

void flare__conn_unbusy(flare_conn *c)
{
    if (--c->busy > 0)
        return;
    flare__conn_free_dead_streams(c);
    if (c->close_pending)
        flare__conn_destroy(c);
}

/* Ends an application call's hold on c (busy++ at its start). A failure
 * inside it (a write that could not be buffered or sent) closes c on the next
 * timer tick, so no callback runs inside the call and the caller's handles
 * stay valid until it returns. */
void flare__conn_api_leave(flare_conn *c)
{
    if (--c->busy > 0)
        return;
    flare__conn_free_dead_streams(c);
    if (c->close_pending)
        c->host->io->ops->timer_start(c->timer, flare_io_now(c->host->io));
}

void flare_conn_close(flare_conn *c)
{
    c->busy++; /* the flush may fail and close c first */
    if (c->yamux && c->state == FLARE__CONN_READY && c->tr_ops) {
        flare_buf_reset(&c->tmp);
        flare_yamux_goaway(c->yamux, 0, &c->tmp);
        flare__conn_flush(c);
        if (c->tr_ops && c->tr_ops->shutdown)
            c->tr_ops->shutdown(c);
    }
    flare__conn_fail(c, 0);
    flare__conn_unbusy(c);
}

/* ---- output -------------------------------------------------------------------- */

/* Empties a per-connection I/O buffer after a batch of used bytes. The
 * memory goes back once IO_QUIET batches in a row were small (handshakes,
 * control messages, keepalives), so idle connections hold no I/O buffers;
 * a streaming connection, whose big batches come with a few small ones
 * (window updates, the tail of a window), keeps up to 256 KiB rather than
 * give it back and fault it in again. */
#define IO_BIG   16384
#define IO_QUIET 8

static void io_buf_done(flare_conn *c, flare_buf *b, size_t used)
{
    flare_buf_reset(b);
    if (used >= IO_BIG)
        c->io_quiet = 0;
    else if (c->io_quiet < IO_QUIET)
        c->io_quiet++;
    if (c->io_quiet >= IO_QUIET || b->cap > 262144)
        flare_buf_free(b);
}

/* The write queue marks, 0 meaning the default. */
size_t flare__conn_write_low(const flare_host *h)
{
    size_t low = h->cfg.conn_write_low ? h->cfg.conn_write_low : FLARE__CONN_WRITE_LOW;
    size_t high = h->cfg.conn_write_high ? h->cfg.conn_write_high : FLARE__CONN_WRITE_HIGH;
    return low < high ? low : high / 2;
}

/* After a write to the transport (full: it said its queue is above its own
 * high-water mark). Above the high-water mark the peer does not keep up
 * (or does not read at all): hold the streams' data (congested) until the
 * transport drains. The queue can then only grow by what the peer's input
 * makes us say (ping ACKs, window updates, resets, negotiation answers): at
 * twice the mark stop reading from it, so a peer that never reads cannot
 * make us say more. Reading goes on between the two marks, so that two
 * peers that both write a lot keep draining each other instead of waiting
 * for each other. Past the hard bound, give up. */
static void backpressure(flare_conn *c, int full)
{
    if (full)
        c->congested = 1;
    if (!c->tr_ops->pending)
        return;
    const flare_host_settings *cfg = &c->host->cfg;
    size_t high = cfg->conn_write_high ? cfg->conn_write_high : FLARE__CONN_WRITE_HIGH;
    size_t max = cfg->conn_write_max ? cfg->conn_write_max : FLARE__CONN_WRITE_MAX;
    size_t pause = high <= SIZE_MAX / 2 && 2 * high < max ? 2 * high : high + (max - high) / 2;
    size_t q = c->tr_ops->pending(c);
    if (q > max) {
        flare__conn_fail(c, FLARE_ERR_LIMIT);
        return;
    }
    if (q > high)
        c->congested = 1;
    if (q > pause && !c->read_paused && c->tr_ops->read_pause) {
        c->read_paused = 1;
        c->tr_ops->read_pause(c, 1);
    }
}

void flare__conn_drained(flare_conn *c)
{
    if (c->close_pending)
        return;
    if (c->read_paused) {
        c->read_paused = 0;
        c->tr_ops->read_pause(c, 0);
    }
    flare__conn_uncongest(c);
}

/* Moves c->tmp into c->wire, encrypted if the secure channel is up. */
static int seal_tmp(flare_conn *c)
{
    flare_host *h = c->host;
    int rv;
    if (c->noise_active && flare_noise_handshake_done(&c->noise)) {
        if (h->tap)
            h->tap(c, FLARE__TAP_SENT_PLAIN, c->tmp.base, c->tmp.len, h->tap_user);
        rv = flare_noise_encrypt(&c->noise, c->tmp.base, c->tmp.len, &c->wire);
    } else
        rv = flare_buf_append(&c->wire, c->tmp.base, c->tmp.len);
    io_buf_done(c, &c->tmp, c->tmp.len);
    return rv;
}

/* Encrypts c->tmp (if the secure channel is up) and writes it with c->wire. */
void flare__conn_flush(flare_conn *c)
{
    if (c->close_pending || !c->tr_ops)
        return;
    flare_host *h = c->host;
    if (c->tmp.len) {
        int rv = seal_tmp(c);
        if (rv) {
            flare__conn_fail(c, rv);
            return;
        }
    }
    if (c->wire.len) {
        if (h->tap)
            h->tap(c, FLARE__TAP_SENT_WIRE, c->wire.base, c->wire.len, h->tap_user);
        int rv = c->tr_ops->write(c, c->wire.base, c->wire.len);
        io_buf_done(c, &c->wire, c->wire.len);
        if (rv < 0)
            flare__conn_fail(c, rv);
        else
            backpressure(c, rv == 1);
    }
}

long flare__conn_write_stream(flare_conn *c, uint32_t id, const uint8_t *data, size_t len)
{
    /* The copying path where the plaintext must be seen whole (the tap) or
     * nothing is encrypted yet. */
    if (!c->noise_active || !flare_noise_handshake_done(&c->noise) || c->host->tap ||
        c->close_pending)
        return flare_yamux_write(c->yamux, id, data, len, &c->tmp);
    size_t done = 0;
    while (done < len && !c->congested && !c->close_pending) {
        uint8_t hdr[FLARE_YAMUX_HEADER_LEN];
        long n = flare_yamux_write_frame(c->yamux, id, len - done, hdr, &c->tmp);
        if (n < 0 && done == 0)
            return n;
        if (n <= 0)
            break; /* the error comes back on the next write */
        /* Control frames yamux produced go first (an ACK, for one). */
        int rv = c->tmp.len ? seal_tmp(c) : 0;
        if (rv == 0)
            rv = flare_noise_encrypt_pair(&c->noise, hdr, sizeof(hdr), data + done, (size_t)n,
                                          &c->wire);
        if (rv) {
            flare__conn_fail(c, rv);
            return rv;
        }
        done += (size_t)n;
        if (c->wire.len >= FLARE__CONN_FLUSH_AT)
            flare__conn_flush(c);
    }
    return (long)done;
}

/* ---- timers -------------------------------------------------------------------- */

void flare__conn_arm_timer(flare_conn *c)
{
    if (c->close_pending)
        return;
    flare_tstamp d = FLARE_TSTAMP_NEVER;
    if (c->reset_streams) /* on_close of reset streams is due */
        d = flare_io_now(c->host->io);
    else if (c->state != FLARE__CONN_READY)
        d = c->handshake_deadline;
    else if (c->yamux)
        d = flare_yamux_expiry(c->yamux);
    flare_io *io = c->host->io;
    if (d == FLARE_TSTAMP_NEVER)
        io->ops->timer_stop(c->timer);
    else
        io->ops->timer_start(c->timer, d);
}

static void conn_on_timer(flare_io_timer *t, void *user)
{
    flare_conn *c = user;
    flare_tstamp now = flare_io_now(c->host->io);
    (void)t;
    if (c->close_pending) { /* closed inside an application call */
        if (c->busy == 0)
            flare__conn_destroy(c);
        return;
    }
    if (c->reset_streams) {
        c->busy++;
        flare__conn_finish_resets(c);
        int closing = c->close_pending;
        flare__conn_unbusy(c);
        if (closing)
            return; /* c is gone */
    }
    if (c->state != FLARE__CONN_READY) {
        if (now >= c->handshake_deadline)
            flare__conn_fail(c, FLARE_ERR_TIMEOUT);
        else
            flare__conn_arm_timer(c);
        return;
    }
    c->busy++;
    flare_buf_reset(&c->tmp);
    int rv = flare_yamux_handle_expiry(c->yamux, now, &c->tmp);
    if (rv < 0)
        flare__conn_fail(c, rv);
    else {
        flare__conn_flush(c);
        flare__conn_process_yamux(c);
    }
    flare__conn_arm_timer(c);
    flare__conn_unbusy(c);
}

/* ---- upgrade ------------------------------------------------------------------- */

void flare__conn_start_upgrade(flare_conn *c)
{
    flare_host *h = c->host;
    c->state = FLARE__CONN_MSS_SECURITY;
    c->handshake_deadline = flare_io_now(h->io) + h->cfg.handshake_timeout;
    flare_mss_settings ms = {0};
    ms.role = c->initiator ? FLARE_MSS_DIALER : FLARE_MSS_LISTENER;
    ms.protocols = noise_protos;
    ms.nprotocols = 1;
    int rv = flare_mss_init(&c->mss, &ms, &c->rc.mem);
    if (rv == 0) {
        c->mss_active = 1;
        rv = flare_mss_start(&c->mss, &c->wire);
    }
    if (rv) {
        flare__conn_fail(c, rv);
        return;
    }
    c->busy++; /* a failed flush closes c: free it only after the timer is armed */
    flare__conn_flush(c);
    flare__conn_arm_timer(c);
    flare__conn_unbusy(c);
}

static int start_noise(flare_conn *c)
{
    flare_host *h = c->host;
    flare_noise_settings ns;
    flare_noise_settings_default(&ns);
    ns.identity = &h->key;
    ns.initiator = c->initiator;
    ns.expected_remote = c->expect_peer ? &c->peer : NULL;
    ns.muxers = yamux_protos;
    ns.nmuxers = 1;
    int rv = flare_noise_init(&c->noise, &ns, &c->rc.mem, h->rng);
    if (rv)
        return rv;
    c->noise_active = 1;
    c->state = FLARE__CONN_NOISE;
    return flare_noise_start(&c->noise, &c->wire);
}

/* Both sides listed muxers in their Noise extensions: Noise picked the
 * initiator's first choice that the responder also has; skip multistream. */
static int muxer_from_noise(flare_conn *c)
{
    const char *m = flare_noise_selected_muxer(&c->noise);
    return m && strcmp(m, FLARE__YAMUX_ID) == 0;
}

static int start_yamux(flare_conn *c)
{
    flare_host *h = c->host;
    flare_yamux_settings ys;
    flare_yamux_settings_default(&ys);
    ys.is_client = c->initiator;
    ys.max_streams = (uint32_t)h->cfg.max_streams_per_conn;
    ys.keepalive_interval = h->cfg.keepalive_interval;
    int rv = flare_yamux_new(&c->yamux, &ys, &c->rc.mem, h->rng, flare_io_now(h->io));
    if (rv)
        return rv;
    snprintf(c->muxer, sizeof(c->muxer), "%s", FLARE__YAMUX_ID);
    return 0;
}

static void conn_ready(flare_conn *c)
{
    flare_host *h = c->host;
    c->state = FLARE__CONN_READY;
    c->opened_reported = 1;
    flare__connmgr_conn_opened(c);
    flare__rc_conn_ready(c); /* frees its handshake slot */
    /* Pinned in the peerstore (never evicted) while connected. */
    c->peer_pinned = flare__peerstore_conn_opened(h->peerstore, &c->peer) == 0;
    flare__peerstore_set_key(h->peerstore, &c->peer, flare_noise_remote_key(&c->noise));
    if (c->outbound && !c->limited)
        flare__peerstore_addr_worked(h->peerstore, &c->peer, &c->remote_ma);
    flare_host_event ev = {
        .type = FLARE_HOST_EV_CONN_OPENED,
        .u.conn = {.conn = c, .peer = &c->peer, .addr = &c->remote_ma, .outbound = c->outbound}};
    flare__host_emit(h, &ev);
    if (c->close_pending)
        return;
    flare__dial_complete(c, 0);
    flare__svc_conn_ready(h, c);
}

static int after_handshake(flare_conn *c)
{
    const flare_peerid *rp = flare_noise_remote_peerid(&c->noise);
    if (!flare__gater_allow_peer(c->host, c, rp))
        return FLARE_ERR_REFUSED;
    if (c->expect_peer && !flare_peerid_equal(rp, &c->peer))
        return FLARE_ERR_PEER_ID_MISMATCH;
    c->peer = *rp;
    if (flare_peerid_equal(rp, &c->host->id))
        return FLARE_ERR_PEER_ID_MISMATCH; /* dialed ourselves */
    int rv = flare__rc_conn_identified(c); /* the per-peer limit, both directions */
    if (rv)
        return rv;
    if (muxer_from_noise(c))
        return start_yamux(c);
    flare_mss_settings ms = {0};
    ms.role = c->initiator ? FLARE_MSS_DIALER : FLARE_MSS_LISTENER;
    ms.protocols = yamux_protos;
    ms.nprotocols = 1;
    rv = flare_mss_init(&c->mss, &ms, &c->rc.mem);
    if (rv)
        return rv;
    c->mss_active = 1;
    c->state = FLARE__CONN_MSS_MUXER;
    return flare_mss_start(&c->mss, &c->tmp);
}

/* Runs the multistream muxer negotiation and yamux over c->plain_in. */
static int process_plain(flare_conn *c)
{
    flare_tstamp now = flare_io_now(c->host->io);
    if (c->state == FLARE__CONN_MSS_MUXER) {
        size_t used = 0;
        int rv = flare_mss_recv(&c->mss, c->plain_in.base, c->plain_in.len, &used, &c->tmp);
        flare_buf_consume(&c->plain_in, used);
        if (rv < 0)
            return rv;
        if (rv == 0)
            return 0;
        if (strcmp(flare_mss_selected(&c->mss), FLARE__YAMUX_ID) != 0)
            return FLARE_ERR_NEGOTIATION;
        flare_mss_free(&c->mss);
        c->mss_active = 0;
        rv = start_yamux(c);
        if (rv)
            return rv;
    }
    if (c->yamux && c->state != FLARE__CONN_READY) {
        flare__conn_flush(c);
        conn_ready(c);
        if (c->close_pending)
            return 0;
    }
    if (c->yamux && c->plain_in.len) {
        int rv = flare_yamux_recv(c->yamux, c->plain_in.base, c->plain_in.len, now, &c->tmp);
        io_buf_done(c, &c->plain_in, c->plain_in.len);
        if (rv < 0)
            return rv;
    }
    return 0;
}

/* Raw bytes during multistream security negotiation; returns the bytes used. */
static int process_mss_security(flare_conn *c, const uint8_t *data, size_t len, size_t *used)
{
    int rv = flare_mss_recv(&c->mss, data, len, used, &c->wire);
    if (rv <= 0)
        return rv;
    if (strcmp(flare_mss_selected(&c->mss), FLARE__NOISE_ID) != 0)
        return FLARE_ERR_NEGOTIATION;
    flare_mss_free(&c->mss);
    c->mss_active = 0;
    return start_noise(c);
}

static int process_wire(flare_conn *c, const uint8_t *data, size_t len)
{
    if (c->state == FLARE__CONN_MSS_SECURITY) {
        size_t used = 0;
        int rv = process_mss_security(c, data, len, &used);
        if (rv < 0)
            return rv;
        data += used;
        len -= used;
        if (c->state == FLARE__CONN_MSS_SECURITY)
            return 0;
    }
    if (!c->noise_active)
        return FLARE_ERR_STATE;
    int done_before = flare_noise_handshake_done(&c->noise);
    size_t plain_before = c->plain_in.len;
    int rv = flare_noise_recv(&c->noise, data, len, &c->wire, &c->plain_in);
    if (rv < 0)
        return rv;
    flare_host *h = c->host;
    if (h->tap && c->plain_in.len > plain_before)
        h->tap(c, FLARE__TAP_RECV_PLAIN, c->plain_in.base + plain_before,
               c->plain_in.len - plain_before, h->tap_user);
    if (!done_before && flare_noise_handshake_done(&c->noise)) {
        rv = after_handshake(c);
        if (rv)
            return rv;
    }
    if (!flare_noise_handshake_done(&c->noise))
        return 0;
    return process_plain(c);
}

/* ---- transport input ------------------------------------------------------------ */

void flare__conn_input(flare_conn *c, const uint8_t *data, size_t len)
{
    if (c->close_pending)
        return;
    if (len == 0) {
        flare__conn_fail(c, c->state == FLARE__CONN_READY ? 0 : FLARE_ERR_CLOSED);
        return;
    }
    c->busy++;
    if (c->host->tap)
        c->host->tap(c, FLARE__TAP_RECV_WIRE, data, len, c->host->tap_user);
    int rv = process_wire(c, data, len);
    if (rv < 0) {
        if (c->yamux && rv != FLARE_ERR_CRYPTO) {
            flare_buf_reset(&c->tmp);
            flare_yamux_goaway(c->yamux, 1, &c->tmp);
        }
        flare__conn_flush(c);
        flare__conn_fail(c, rv);
    } else {
        flare__conn_flush(c);
        if (c->yamux)
            flare__conn_process_yamux(c);
        flare__conn_arm_timer(c);
    }
    flare__conn_unbusy(c);
}

void flare__conn_close_transport(flare_conn *c, int abort)
{
    const flare__transport_ops *ops = c->tr_ops;
    void *tr = c->tr;
    if (!ops)
        return;
    c->tr_ops = NULL;
    c->tr = NULL;
    ops->close(c, tr, abort);
}

void flare__conn_transport_lost(flare_conn *c, int err)
{
    c->tr_ops = NULL;
    c->tr = NULL;
    flare__conn_fail(c, err);
}

/* ---- yamux events ---------------------------------------------------------------- */

static flare_stream *find_stream(flare_conn *c, uint32_t id)
{
    for (flare_stream *s = c->streams; s; s = s->next)
        if (s->id == id)
            return s;
    return NULL;
}

static void handle_yamux_event(flare_conn *c, const flare_yamux_event *ev)
{
    flare_stream *s = ev->stream_id ? find_stream(c, ev->stream_id) : NULL;
    switch (ev->type) {
    case FLARE_YAMUX_EV_STREAM_OPENED:
        if (flare__rc_stream_check(c, 1) || !flare__stream_new(c, ev->stream_id, 1))
            flare_yamux_reset_stream(c->yamux, ev->stream_id, &c->tmp);
        break;
    case FLARE_YAMUX_EV_STREAM_READABLE:
        if (s)
            flare__stream_on_readable(s);
        break;
    case FLARE_YAMUX_EV_STREAM_WRITABLE:
        if (s)
            flare__stream_on_writable(s);
        break;
    case FLARE_YAMUX_EV_STREAM_REMOTE_CLOSED:
        if (s)
            flare__stream_on_remote_closed(s);
        break;
    case FLARE_YAMUX_EV_STREAM_RESET:
        if (s)
            flare__stream_on_gone(s, FLARE_ERR_RESET);
        break;
    case FLARE_YAMUX_EV_STREAM_CLOSED:
        if (s)
            flare__stream_on_gone(s, 0);
        break;
    case FLARE_YAMUX_EV_GOAWAY:
        flare__conn_fail(c, 0);
        break;
    case FLARE_YAMUX_EV_SESSION_ERROR:
        flare__conn_fail(c, ev->error ? ev->error : FLARE_ERR_PROTO);
        break;
    default:
        break;
    }
}

void flare__conn_process_yamux(flare_conn *c)
{
    flare_yamux_event ev;
    c->busy++;
    while (!c->close_pending && flare_yamux_poll_event(c->yamux, &ev) == 1) {
        handle_yamux_event(c, &ev);
        flare__conn_flush(c);
    }
    flare__conn_unbusy(c);
}

/* ---- accessors ------------------------------------------------------------------- */

const flare_peerid *flare_conn_peer(const flare_conn *c)
{
    return &c->peer;
}

const flare_multiaddr *flare_conn_remote_addr(const flare_conn *c)
{
    return &c->remote_ma;
}

const flare_multiaddr *flare_conn_local_addr(const flare_conn *c)
{
    return &c->local_ma;
}

int flare_conn_is_outbound(const flare_conn *c)
{
    return c->outbound;
}

int flare_conn_is_initiator(const flare_conn *c)
{
    return c->initiator;
}

int flare_conn_is_limited(const flare_conn *c)
{
    return c->limited;
}

const char *flare_conn_muxer(const flare_conn *c)
{
    return c->muxer;
}
