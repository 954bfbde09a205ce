/*
 * The connection upgrade pipeline and its steady state:
 *
 *   raw  --mss(security)-->  Noise XX (or another security protocol,
 *        src/security/security.h)  --mss(/yamux/1.0.0) or early muxer-->  yamux
 *        (src/muxer/muxer.h)
 *
 * It runs over any byte-stream transport (src/transport/transport.h): bytes
 * from it go through process_wire(); plaintext produced by mss or yamux is
 * collected in c->tmp, encrypted into c->wire and written by
 * flare__conn_flush() at the end of the turn (the outermost processing
 * frame), so that what one input, timer or API call makes us say (several
 * multistream lines, handshake messages, yamux frames) leaves in one write:
 * one system call and one segment instead of one per frame. The
 * connection's role (initiator: Noise initiator,
 * multistream dialer, yamux client) is fixed when the upgrade starts and
 * need not match the transport's direction.
 */
#include <string.h>

#include "core/mem.h"
#include "host/host_int.h"
#include "transport/transport.h"

/* c->flush_due: FLUSH_AT_END (the outermost frame's end writes) or
 * FLUSH_SOON (the timer writes, unless a flush comes first). */
enum { FLUSH_AT_END = 1, FLUSH_SOON = 2 };

/* io_buf_done: a batch this big means streaming; this many small ones in a
 * row mean it stopped. */
#define IO_BIG   16384
#define IO_QUIET 8

static void conn_on_timer(flare_io_timer *t, void *user);
static void transport_gone(flare_conn *c);

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
    c->outbound = outbound != 0;
    c->initiator = outbound != 0;
    c->io_quiet = IO_QUIET; /* not streaming until a big batch */
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

flare_conn *flare__conn_accept(flare_host *h, const flare__transport *t, const flare_ipaddr *remote,
                               const flare_multiaddr *remote_ma)
{
    if (remote && !flare__gater_allow_accept(h, remote, remote_ma))
        return NULL;
    /* The resource manager decides before anything is allocated. */
    if (flare__rc_can_accept(h, remote))
        return NULL;
    flare_conn *c = flare__conn_new(h, 0);
    if (c)
        c->transport = t;
    return c;
}

void flare__conn_accepted(flare_conn *c)
{
    flare__rc_conn_add(c);
    /* Services see it first: a hole punch may land here (TCP simultaneous
     * open accepted by our listener) and make us the initiator. They judge
     * the remote IP, so not when it is a relay's. */
    if (!c->tr_ops || !(c->tr_ops->flags & FLARE__TR_SHARED_IP))
        flare__svc_inbound(c->host, c);
    if (c->transport->kind == FLARE__TR_BYTES && !(c->tr_ops->flags & FLARE__TR_LATE_UPGRADE)) {
        flare__conn_start_upgrade(c);
        return;
    }
    /* The transport's own handshake runs first (WebSocket, TLS: it calls
     * flare__conn_start_upgrade; a session transport calls
     * flare__conn_session_ready). */
    c->handshake_deadline = flare_io_now(c->host->io) + c->host->cfg.handshake_timeout;
    flare__conn_arm_timer(c);
}

/* ---- multistream -------------------------------------------------------------- */

/* The negotiation state lives only while a negotiation runs: ~1 KB that an
 * established connection (a DHT node holds thousands) does not need. */
static int conn_mss_init(flare_conn *c, const flare_mss_settings *ms)
{
    c->mss = flare__calloc(&c->rc.mem, 1, sizeof(*c->mss));
    if (!c->mss)
        return FLARE_ERR_NOMEM;
    int rv = flare_mss_init(c->mss, ms, &c->rc.mem);
    if (rv) {
        flare__free(&c->rc.mem, c->mss);
        c->mss = NULL;
        return rv;
    }
    c->mss_active = 1;
    return 0;
}

static void conn_mss_free(flare_conn *c)
{
    if (c->mss) {
        flare_mss_free(c->mss);
        flare__free(&c->rc.mem, c->mss);
        c->mss = NULL;
    }
    c->mss_active = 0;
}

/* ---- teardown ------------------------------------------------------------------ */

static void conn_unlink(flare_conn *c)
{
    flare_host *h = c->host;
    flare__conn_index_remove(c);
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
            flare_multiaddr ra;
            flare_host_event ev = {.type = FLARE_HOST_EV_CONN_CLOSED,
                                   .u.conn = {.conn = c,
                                              .peer = &c->peer,
                                              .addr = flare__conn_remote_ma(c, &ra),
                                              .error = err,
                                              .outbound = c->outbound}};
            flare__host_emit(h, &ev);
        } else if (!c->outbound && err) {
            flare_multiaddr ra;
            flare_host_event ev = {
                .type = FLARE_HOST_EV_INCOMING_FAILED,
                .u.failed = {.addr = flare__conn_remote_ma(c, &ra), .error = err}};
            flare__host_emit(h, &ev);
        }
        c->busy--;
    }
    flare__conn_close_transport(c, err != 0 && err != FLARE_ERR_CLOSED);
    flare__conn_free_dead_streams(c);
    conn_unlink(c);
    h->io->ops->timer_del(c->timer);
    conn_mss_free(c);
    if (c->sec_st)
        c->sec->free(c->sec_st);
    if (c->mux_st && c->mux_owned)
        c->mux->free(c->mux_st);
    flare_buf_free(&c->plain_in);
    flare_buf_free(&c->tmp);
    flare_buf_free(&c->wire);
    flare__rc_conn_remove(c);
    flare__ma_held_free(&c->remote_ma, h->mem);
    flare__ma_held_free(&c->local_ma, h->mem);
    flare__free(h->mem, c->api_ma);
    flare__free(h->mem, c);
}

/* Closes the connection with err (0: graceful). Safe inside callbacks: the
 * free happens when the outermost processing frame unwinds. */
void flare__conn_fail(flare_conn *c, int err)
{
    if (c->close_pending)
        return;
    if (c->flush_due) { /* what was said before the failure still goes out */
        c->busy++;
        flare__conn_flush_now(c);
        c->busy--;
        if (c->close_pending) { /* the write failed */
            if (c->busy == 0)
                flare__conn_destroy(c);
            return;
        }
    }
    c->close_pending = 1;
    c->close_err = flare__rc_conn_error(c, err);
    if (c->busy == 0)
        flare__conn_destroy(c);
}

/* The outermost frame ends: the turn's output leaves in one write. */
static void turn_end(flare_conn *c)
{
    if (c->close_pending || c->flush_due == FLUSH_SOON ||
        (!c->flush_due && !c->tmp.len && !c->wire.len))
        return;
    c->busy++; /* a failed write closes c: freed by the caller */
    flare__conn_flush_now(c);
    c->busy--;
}

void flare__conn_unbusy(flare_conn *c)
{
    if (c->busy == 1)
        turn_end(c);
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
    if (c->busy == 1)
        turn_end(c);
    if (--c->busy > 0)
        return;
    flare__conn_free_dead_streams(c);
    if (c->close_pending)
        c->host->io->ops->timer_start(c->timer, flare_io_now(c->host->io));
}

void flare_conn_close(flare_conn *c)
{
    c->busy++; /* the flush may fail and close c first */
    if (c->mux_st && c->state == FLARE__CONN_READY && c->tr_ops) {
        /* What the turn said so far goes first; all of it before the
         * shutdown. */
        c->mux->goaway(c->mux_st, 0, &c->tmp);
        flare__conn_flush_now(c);
        if (c->tr_ops && !c->close_pending && c->sec_st && c->sec->close &&
            c->sec->close(c->sec_st, &c->wire) == 0)
            flare__conn_flush_now(c);
        if (c->tr_ops && c->tr_ops->shutdown)
            c->tr_ops->shutdown(c);
    }
    flare__conn_fail(c, 0);
    flare__conn_unbusy(c);
}

/* ---- output -------------------------------------------------------------------- */

/* Empties a per-connection I/O buffer after a batch of used bytes. The
 * memory goes back at once unless the connection streams: handshakes,
 * requests, answers and control messages come in small batches, and a DHT
 * node holds a hundred or more connections that exchange a few of them
 * (1-4 KB each) and then sit idle. A streaming
 * connection, whose big batches come with a few small ones (window
 * updates, the tail of a window), keeps up to 256 KiB rather than give it
 * back and fault it in again, until IO_QUIET small batches in a row. */
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
    if (c->sec_st && c->sec->handshake_done(c->sec_st)) {
        if (h->tap)
            h->tap(c, FLARE__TAP_SENT_PLAIN, c->tmp.base, c->tmp.len, h->tap_user);
        rv = c->sec->encrypt(c->sec_st, c->tmp.base, c->tmp.len, &c->wire);
    } else
        rv = flare_buf_append(&c->wire, c->tmp.base, c->tmp.len);
    io_buf_done(c, &c->tmp, c->tmp.len);
    return rv;
}

/* Encrypts c->tmp (if the secure channel is up) and writes it with c->wire. */
void flare__conn_flush_now(flare_conn *c)
{
    c->flush_due = 0;
    if (c->close_pending || !c->tr_ops)
        return;
    flare_host *h = c->host;
    if (c->mux_st && c->mux_owned && c->mux->end_turn) {
        int rv = c->mux->end_turn(c->mux_st, &c->tmp);
        if (rv < 0) {
            flare__conn_fail(c, rv);
            return;
        }
    }
    if (c->tmp.len) {
        int rv = seal_tmp(c);
        if (rv) {
            flare__conn_fail(c, rv);
            return;
        }
    }
    if (c->wire.len && c->tr_ops->write) {
        if (h->tap)
            h->tap(c, FLARE__TAP_SENT_WIRE, c->wire.base, c->wire.len, h->tap_user);
        int rv = c->tr_ops->write(c, c->wire.base, c->wire.len);
        io_buf_done(c, &c->wire, c->wire.len);
        if (rv < 0)
            flare__conn_fail(c, rv);
        else
            backpressure(c, rv == 1);
    }
    /* A transport's own session sends what the batch produced. */
    if (c->mux_st && !c->mux_owned && c->mux->flush && !c->close_pending)
        c->mux->flush(c->mux_st);
}

long flare__conn_write_stream(flare_conn *c, uint32_t id, const uint8_t *data, size_t len)
{
    /* The copying path where the plaintext must be seen whole (the tap),
     * nothing is encrypted yet, or the muxer or security protocol cannot
     * split a frame (a transport's own session has no security here). */
    if (!c->sec_st || !c->sec->handshake_done(c->sec_st) || !c->sec->encrypt_pair ||
        !c->mux->write_frame || c->host->tap || c->close_pending)
        return c->mux->write(c->mux_st, id, data, len, &c->tmp);
    size_t done = 0;
    while (done < len && !c->congested && !c->close_pending) {
        uint8_t hdr[FLARE__MUX_HDR_MAX];
        size_t hlen = 0;
        long n = c->mux->write_frame(c->mux_st, id, len - done, hdr, &hlen, &c->tmp);
        if (n < 0 && done == 0)
            return n;
        if (n <= 0)
            break; /* the error comes back on the next write */
        /* Control frames yamux produced go first (an ACK, for one). */
        int rv = c->tmp.len ? seal_tmp(c) : 0;
        if (rv == 0)
            rv = c->sec->encrypt_pair(c->sec_st, hdr, hlen, data + done, (size_t)n, &c->wire);
        if (rv) {
            flare__conn_fail(c, rv);
            return rv;
        }
        done += (size_t)n;
        if (c->wire.len >= FLARE__CONN_FLUSH_AT)
            flare__conn_flush_now(c);
    }
    return (long)done;
}

void flare__conn_flush(flare_conn *c)
{
    /* Bulk data does not wait: the buffers stay bounded and a full
     * transport is noticed (congested) while the writer still loops. */
    if (c->busy > 0 && c->tmp.len + c->wire.len < FLARE__CONN_FLUSH_AT) {
        c->flush_due = FLUSH_AT_END;
        return;
    }
    flare__conn_flush_now(c);
}

void flare__conn_flush_soon(flare_conn *c)
{
    if (c->tmp.len + c->wire.len >= FLARE__CONN_FLUSH_AT) {
        flare__conn_flush(c);
        return;
    }
    c->flush_due = FLUSH_SOON;
    flare__conn_arm_timer(c);
}

/* ---- timers -------------------------------------------------------------------- */

void flare__conn_arm_timer(flare_conn *c)
{
    if (c->close_pending)
        return;
    flare_tstamp d = FLARE_TSTAMP_NEVER;
    /* on_close of reset streams is due, or output waits for this tick */
    if (c->reset_streams || c->flush_due == FLUSH_SOON)
        d = flare_io_now(c->host->io);
    else if (c->state != FLARE__CONN_READY)
        d = c->handshake_deadline;
    else if (c->mux_st)
        d = c->mux->expiry(c->mux_st);
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
    c->busy++; /* c->tmp may hold output waiting for this tick (flush_soon) */
    int rv = c->mux->handle_expiry(c->mux_st, now, &c->tmp);
    if (rv < 0)
        flare__conn_fail(c, rv);
    else {
        flare__conn_flush(c);
        flare__conn_process_mux(c);
    }
    flare__conn_arm_timer(c);
    flare__conn_unbusy(c);
}

/* ---- upgrade ------------------------------------------------------------------- */

static int start_security(flare_conn *c, const flare__security *sec);

void flare__conn_start_upgrade(flare_conn *c)
{
    flare_host *h = c->host;
    c->state = FLARE__CONN_MSS_SECURITY;
    c->handshake_deadline = flare_io_now(h->io) + h->cfg.handshake_timeout;
    flare_mss_settings ms = {0};
    ms.role = c->initiator ? FLARE_MSS_DIALER : FLARE_MSS_LISTENER;
    ms.protocols = h->sec_ids;
    ms.nprotocols = h->nsecs;
    /* With one security protocol to offer, the initiator sends its first
     * handshake message right behind the proposal (multistream's optimistic
     * selection) instead of waiting a round trip for the echo; the echo is
     * consumed when it arrives (process_wire). */
    ms.optimistic = c->initiator && h->nsecs == 1;
    int rv = conn_mss_init(c, &ms);
    /* The listener's header waits for the dialer's first bytes and leaves
     * with its answer, one write instead of two (js-libp2p's listener also
     * answers first; every dialer sends its header without waiting). */
    if (rv == 0 && c->initiator)
        rv = flare_mss_start(c->mss, &c->wire);
    if (rv == 0 && ms.optimistic)
        rv = start_security(c, h->secs[0]); /* the mss stays active for the echo */
    if (rv) {
        flare__conn_fail(c, rv);
        return;
    }
    c->busy++; /* a failed flush closes c: free it only after the timer is armed */
    flare__conn_flush(c);
    flare__conn_arm_timer(c);
    flare__conn_unbusy(c);
}

static const flare__muxer *find_muxer(const flare_host *h, const char *id)
{
    for (size_t i = 0; i < h->nmuxers; i++)
        if (strcmp(h->muxers[i]->id, id) == 0)
            return h->muxers[i];
    return NULL;
}

/* Multistream chose sec: its handshake starts (offering our muxers inside
 * it, where the protocol can). */
static int start_security(flare_conn *c, const flare__security *sec)
{
    flare_host *h = c->host;
    flare__security_cfg sc = {0};
    sc.identity = &h->key;
    sc.initiator = c->initiator;
    sc.expected_remote = c->expect_peer ? &c->peer : NULL;
    sc.muxers = h->mux_ids;
    sc.nmuxers = h->nmuxers;
    sc.mem = &c->rc.mem;
    sc.rng = h->rng;
    sc.sig_cache = h->cfg.sig_cache;
    sc.unix_now = h->io->ops->unix_time ? h->io->ops->unix_time(h->io) : 0;
    int rv = sec->init(&c->sec_st, &sc);
    if (rv)
        return rv;
    c->sec = sec;
    c->security = sec->id;
    c->state = FLARE__CONN_SECURING;
    return sec->start(c->sec_st, &c->wire);
}

/* Both sides listed muxers in the handshake (Noise extensions): it picked
 * the initiator's first choice that the responder also has; skip
 * multistream. */
static const flare__muxer *muxer_from_handshake(flare_conn *c)
{
    const char *m = c->sec->early_muxer ? c->sec->early_muxer(c->sec_st) : NULL;
    return m ? find_muxer(c->host, m) : NULL;
}

static int start_muxer(flare_conn *c, const flare__muxer *mx)
{
    flare_host *h = c->host;
    flare__muxer_cfg mc = {0};
    mc.is_client = c->initiator;
    mc.max_streams = (uint32_t)h->cfg.max_streams_per_conn;
    mc.keepalive_interval = h->cfg.keepalive_interval;
    mc.mem = &c->rc.mem;
    mc.rng = h->rng;
    mc.now = flare_io_now(h->io);
    int rv = mx->new_session(&c->mux_st, &mc);
    if (rv)
        return rv;
    c->mux = mx->ops;
    c->mux_owned = 1;
    c->muxer = mx->id;
    return 0;
}

static void conn_ready(flare_conn *c, const flare_pubkey *key)
{
    flare_host *h = c->host;
    c->state = FLARE__CONN_READY;
    flare__conn_index_add(c);
    c->opened_reported = 1;
    flare__connmgr_conn_opened(c);
    flare__rc_conn_ready(c); /* frees its handshake slot */
    /* Pinned in the peerstore (never evicted) while connected. */
    c->peer_pinned = flare__peerstore_conn_opened(h->peerstore, &c->peer) == 0;
    flare__peerstore_set_key(h->peerstore, &c->peer, key);
    flare_multiaddr ra;
    flare__conn_remote_ma(c, &ra);
    if (c->outbound && !c->limited)
        flare__peerstore_addr_worked(h->peerstore, &c->peer, &ra);
    flare_host_event ev = {
        .type = FLARE_HOST_EV_CONN_OPENED,
        .u.conn = {.conn = c, .peer = &c->peer, .addr = &ra, .outbound = c->outbound}};
    flare__host_emit(h, &ev);
    if (c->close_pending)
        return;
    flare__dial_complete(c, 0);
    flare__svc_conn_ready(h, c);
}

/* The handshake authenticated rp: the gater, the peer we dialed, and the
 * resource manager's per-peer limit (both directions) decide. */
static int admit_peer(flare_conn *c, const flare_peerid *rp)
{
    if (!flare__gater_allow_peer(c->host, c, rp))
        return FLARE_ERR_REFUSED;
    if (c->expect_peer && !flare_peerid_equal(rp, &c->peer))
        return FLARE_ERR_PEER_ID_MISMATCH;
    c->peer = *rp;
    flare__conn_index_add(c);
    if (flare_peerid_equal(rp, &c->host->id))
        return FLARE_ERR_PEER_ID_MISMATCH; /* dialed ourselves */
    return flare__rc_conn_identified(c);
}

static int after_handshake(flare_conn *c)
{
    int rv = admit_peer(c, c->sec->remote_peer(c->sec_st));
    if (rv)
        return rv;
    const flare__muxer *early = muxer_from_handshake(c);
    if (early)
        return start_muxer(c, early);
    flare_mss_settings ms = {0};
    ms.role = c->initiator ? FLARE_MSS_DIALER : FLARE_MSS_LISTENER;
    ms.protocols = c->host->mux_ids;
    ms.nprotocols = c->host->nmuxers;
    rv = conn_mss_init(c, &ms);
    if (rv)
        return rv;
    c->state = FLARE__CONN_MSS_MUXER;
    return flare_mss_start(c->mss, &c->tmp);
}

/* Runs the multistream muxer negotiation and the muxer over c->plain_in. */
static int process_plain(flare_conn *c)
{
    flare_tstamp now = flare_io_now(c->host->io);
    if (c->state == FLARE__CONN_MSS_MUXER) {
        size_t used = 0;
        int rv = flare_mss_recv(c->mss, c->plain_in.base, c->plain_in.len, &used, &c->tmp);
        flare_buf_consume(&c->plain_in, used);
        if (rv < 0)
            return rv;
        if (rv == 0)
            return 0;
        const flare__muxer *mx = find_muxer(c->host, flare_mss_selected(c->mss));
        if (!mx)
            return FLARE_ERR_NEGOTIATION;
        conn_mss_free(c);
        rv = start_muxer(c, mx);
        if (rv)
            return rv;
    }
    if (c->mux_st && c->state != FLARE__CONN_READY) {
        flare__conn_flush(c);
        flare_pubkey key;
        int rv = c->sec->remote_key(c->sec_st, &key);
        if (rv < 0)
            return rv;
        conn_ready(c, &key);
        if (c->close_pending)
            return 0;
    }
    if (c->mux_st && c->plain_in.len) {
        int rv = c->mux->recv(c->mux_st, c->plain_in.base, c->plain_in.len, now, &c->tmp);
        io_buf_done(c, &c->plain_in, c->plain_in.len);
        if (rv < 0)
            return rv;
    }
    return 0;
}

/* Raw bytes during multistream security negotiation; returns the bytes used. */
static int process_mss_security(flare_conn *c, const uint8_t *data, size_t len, size_t *used)
{
    int rv = flare_mss_recv(c->mss, data, len, used, &c->wire);
    if (rv <= 0)
        return rv;
    /* The listener accepts only what we offer. */
    const char *id = flare_mss_selected(c->mss);
    const flare__security *sec = flare__security_find(id, strlen(id));
    flare_host *h = c->host;
    size_t i = 0;
    while (i < h->nsecs && h->secs[i] != sec)
        i++;
    if (i == h->nsecs)
        return FLARE_ERR_NEGOTIATION;
    conn_mss_free(c);
    return start_security(c, sec);
}

/* An optimistic security proposal: the listener's header and echo come
 * before its first handshake message. Returns the bytes used, or an error
 * ("na": the listener does not speak our only security protocol). */
static int confirm_security(flare_conn *c, const uint8_t *data, size_t len, size_t *used)
{
    int rv = flare_mss_recv(c->mss, data, len, used, &c->wire);
    if (rv == 1) {
        conn_mss_free(c);
    }
    return rv < 0 ? rv : 0;
}

static int process_wire(flare_conn *c, const uint8_t *data, size_t len)
{
    if (c->state != FLARE__CONN_MSS_SECURITY && c->mss_active && c->sec_st &&
        !c->sec->handshake_done(c->sec_st)) {
        size_t used = 0;
        int rv = confirm_security(c, data, len, &used);
        if (rv < 0)
            return rv;
        data += used;
        len -= used;
        if (c->mss_active)
            return 0;
    }
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
    if (!c->sec_st)
        return FLARE_ERR_STATE;
    int done_before = c->sec->handshake_done(c->sec_st);
    size_t plain_before = c->plain_in.len;
    int rv = c->sec->recv(c->sec_st, data, len, &c->wire, &c->plain_in);
    if (rv < 0)
        return rv;
    flare_host *h = c->host;
    if (h->tap && c->plain_in.len > plain_before)
        h->tap(c, FLARE__TAP_RECV_PLAIN, c->plain_in.base + plain_before,
               c->plain_in.len - plain_before, h->tap_user);
    if (!done_before && c->sec->handshake_done(c->sec_st)) {
        rv = after_handshake(c);
        if (rv)
            return rv;
    }
    if (!c->sec->handshake_done(c->sec_st))
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
        if (c->mux_st && rv != FLARE_ERR_CRYPTO) {
            flare_buf_reset(&c->tmp);
            c->mux->goaway(c->mux_st, 1, &c->tmp);
        }
        flare__conn_flush(c);
        flare__conn_fail(c, rv);
    } else {
        flare__conn_flush(c);
        if (c->mux_st)
            flare__conn_process_mux(c);
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
    transport_gone(c);
    ops->close(c, tr, abort);
}

/* A transport's own session once the transport let go of it: every stream
 * operation fails, no event, no timer. */
static int dead_open(void *m, uint32_t *id, flare_buf *out)
{
    (void)m;
    (void)id;
    (void)out;
    return FLARE_ERR_CLOSED;
}

static long dead_write(void *m, uint32_t id, const uint8_t *data, size_t len, flare_buf *out)
{
    (void)m;
    (void)id;
    (void)data;
    (void)len;
    (void)out;
    return FLARE_ERR_CLOSED;
}

static long dead_read(void *m, uint32_t id, uint8_t *dst, size_t cap, flare_buf *out)
{
    (void)dst;
    (void)cap;
    return dead_write(m, id, NULL, 0, out);
}

static size_t dead_count(const void *m, uint32_t id)
{
    (void)m;
    (void)id;
    return 0;
}

static int dead_stream(void *m, uint32_t id, flare_buf *out)
{
    return (int)dead_write(m, id, NULL, 0, out);
}

static int dead_goaway(void *m, int error, flare_buf *out)
{
    return (int)dead_write(m, (uint32_t)error, NULL, 0, out);
}

static int dead_poll(void *m, flare__mux_event *ev)
{
    (void)m;
    (void)ev;
    return 0;
}

static flare_tstamp dead_expiry(const void *m)
{
    (void)m;
    return FLARE_TSTAMP_NEVER;
}

static int dead_handle_expiry(void *m, flare_tstamp now, flare_buf *out)
{
    (void)now;
    return dead_stream(m, 0, out);
}

static size_t dead_num(const void *m)
{
    return dead_count(m, 0);
}

static const flare__muxer_ops dead_mux = {
    .open_stream = dead_open,
    .write = dead_write,
    .read = dead_read,
    .readable = dead_count,
    .close_stream = dead_stream,
    .reset_stream = dead_stream,
    .goaway = dead_goaway,
    .poll_event = dead_poll,
    .expiry = dead_expiry,
    .handle_expiry = dead_handle_expiry,
    .num_streams = dead_num,
};

/* The transport released its state: a session it gave c goes with it. */
static void transport_gone(flare_conn *c)
{
    c->tr_ops = NULL;
    c->tr = NULL;
    if (c->mux_st && !c->mux_owned)
        c->mux = &dead_mux;
}

void flare__conn_transport_lost(flare_conn *c, int err)
{
    transport_gone(c);
    flare__conn_fail(c, err);
}

/* ---- transports with their own security and streams ----------------------------------- */

int flare__conn_session_ready(flare_conn *c, const flare__session *s)
{
    if (c->close_pending || c->state == FLARE__CONN_READY)
        return FLARE_ERR_STATE;
    flare_peerid rp;
    int rv = flare_peerid_from_pubkey(&rp, s->remote_key);
    c->busy++;
    if (rv == 0)
        rv = admit_peer(c, &rp);
    if (rv) {
        flare__conn_fail(c, rv);
        flare__conn_unbusy(c);
        return rv;
    }
    c->mux = s->mux;
    c->mux_st = s->mux_st;
    c->mux_owned = 0;
    c->security = s->security;
    c->muxer = s->muxer;
    conn_ready(c, s->remote_key);
    if (!c->close_pending) {
        flare__conn_process_mux(c);
        flare__conn_flush(c);
        flare__conn_arm_timer(c);
    }
    flare__conn_unbusy(c);
    return 0;
}

void flare__conn_session_input(flare_conn *c)
{
    if (c->close_pending || !c->mux_st || c->mux_owned)
        return;
    c->busy++;
    flare__conn_process_mux(c);
    flare__conn_flush(c);
    flare__conn_arm_timer(c);
    flare__conn_unbusy(c);
}

/* ---- muxer events ---------------------------------------------------------------- */

static flare_stream *find_stream(flare_conn *c, uint32_t id)
{
    for (flare_stream *s = c->streams; s; s = s->next)
        if (s->id == id)
            return s;
    return NULL;
}

static void handle_mux_event(flare_conn *c, const flare__mux_event *ev)
{
    /* Stream id 0 is a stream like any (a WebRTC data channel may be 0). */
    flare_stream *s = find_stream(c, ev->stream_id);
    switch (ev->type) {
    case FLARE__MUX_EV_STREAM_OPENED:
        if (flare__rc_stream_check(c, 1) || !flare__stream_new(c, ev->stream_id, 1))
            c->mux->reset_stream(c->mux_st, ev->stream_id, &c->tmp);
        break;
    case FLARE__MUX_EV_STREAM_READABLE:
        if (s)
            flare__stream_on_readable(s);
        break;
    case FLARE__MUX_EV_STREAM_WRITABLE:
        if (s)
            flare__stream_on_writable(s);
        break;
    case FLARE__MUX_EV_STREAM_REMOTE_CLOSED:
        if (s)
            flare__stream_on_remote_closed(s);
        break;
    case FLARE__MUX_EV_STREAM_RESET:
        if (s)
            flare__stream_on_gone(s, FLARE_ERR_RESET);
        break;
    case FLARE__MUX_EV_STREAM_CLOSED:
        if (s)
            flare__stream_on_gone(s, 0);
        break;
    case FLARE__MUX_EV_GOAWAY:
        flare__conn_fail(c, 0);
        break;
    case FLARE__MUX_EV_SESSION_ERROR:
        flare__conn_fail(c, ev->error ? ev->error : FLARE_ERR_PROTO);
        break;
    default:
        break;
    }
}

void flare__conn_process_mux(flare_conn *c)
{
    flare__mux_event ev;
    c->busy++;
    while (!c->close_pending && c->mux->poll_event(c->mux_st, &ev) == 1) {
        handle_mux_event(c, &ev);
        flare__conn_flush(c);
    }
    flare__conn_unbusy(c);
}

/* ---- accessors ------------------------------------------------------------------- */

const flare_peerid *flare_conn_peer(const flare_conn *c)
{
    return &c->peer;
}

int flare__conn_set_remote_ma(flare_conn *c, const flare_multiaddr *ma)
{
    return flare__ma_hold(&c->remote_ma, ma, c->host->mem);
}

int flare__conn_set_local_ma(flare_conn *c, const flare_multiaddr *ma)
{
    return flare__ma_hold(&c->local_ma, ma, c->host->mem);
}

/* The public accessors hand out pointers that live as long as c: the two
 * full-size copies are made for the first caller (the host itself reads
 * the held form) and refreshed on each call. */
static const flare_multiaddr *api_addr(const flare_conn *c, int local)
{
    static const flare_multiaddr empty;
    flare_conn *m = (flare_conn *)c; /* a cache: c's value does not change */
    if (!m->api_ma && !(m->api_ma = flare__malloc(c->host->mem, 2 * sizeof(*m->api_ma))))
        return &empty;
    return flare__ma_held_get(local ? &c->local_ma : &c->remote_ma, &m->api_ma[local]);
}

const flare_multiaddr *flare_conn_remote_addr(const flare_conn *c)
{
    return api_addr(c, 0);
}

const flare_multiaddr *flare_conn_local_addr(const flare_conn *c)
{
    return api_addr(c, 1);
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
    return c->muxer ? c->muxer : "";
}

const char *flare_conn_transport(const flare_conn *c)
{
    return c->transport ? c->transport->name : "";
}

const char *flare_conn_security(const flare_conn *c)
{
    return c->security ? c->security : "";
}
