/*
 * Stream migration (/flare/migrate/1.0.0, src/protocols/migrate/migrate.h):
 * when a direct connection to a peer comes up beside a relayed one, the
 * application's streams of the relayed connection move onto it; the
 * flare_stream handles stay the same and no byte is lost, repeated or
 * reordered.
 *
 * The direct connection's initiator moves each stream: it freezes it (no
 * reads, no writes: the relayed muxer keeps what arrives), opens a migrate
 * stream on the direct connection and sends MIGRATE with the bytes it has
 * read so far. The peer checks it can send again what we missed, moves its
 * side at once (its relayed muxer stream is abandoned: bytes still in
 * flight there come again) and answers ACCEPT with what it has read; we
 * move ours and reset the relayed muxer stream. The migrate stream then
 * carries the stream: each side first sends again what the other missed,
 * from its resend buffer (stream_ring.c). REFUSE, or a failed migrate
 * stream, unfreezes the stream where it was.
 *
 * Only when the peer announces the protocol (identify); otherwise the
 * relayed connection drains (services/dcutr.c keeps it until its streams
 * are done).
 */
#include <string.h>

#include "core/mem.h"
#include "protocols/migrate/migrate.h"
#include "services/services.h"

typedef struct mig_svc {
    unsigned long moved, refused, failed;
    uint64_t resent; /* bytes sent again after a move */
} mig_svc;

/* One move we started (the initiator), or one MIGRATE we serve. */
typedef struct mig_op {
    flare__mig_ref ref; /* the stream moving (initiator) */
    flare_host *h;
    uint8_t buf[FLARE__MIG_MSG_MAX];
    size_t blen;
    int answered; /* responder: done with this migrate stream */
} mig_op;

static mig_svc *svc_of(flare_host *h)
{
    return flare__svc_state(h, &flare__svc_migrate);
}

static void count(flare_host *h, int what)
{
    mig_svc *m = svc_of(h);
    if (!m)
        return;
    if (what == 0)
        m->moved++;
    else if (what == 1)
        m->refused++;
    else
        m->failed++;
}

static void op_free(mig_op *op)
{
    if (op->ref.s)
        op->ref.s->mig = NULL;
    flare__free(op->h->mem, op);
}

/* May s move now? Negotiated, not closed both ways, not moving, its resend
 * buffer intact. */
static int movable(const flare_stream *s)
{
    return s->state == FLARE__STREAM_OPEN && !s->nego && !s->mig && !s->mig_frozen && !s->mig_off &&
           !s->carrier && !(s->fin_sent && s->eof_delivered) && flare__stream_is_app(s);
}

/* Appends up to the bytes a message needs; returns the bytes of data used,
 * and *rv the parse result. */
static size_t collect(mig_op *op, const uint8_t *data, size_t len, flare__mig_msg *m, int *rv)
{
    size_t take = sizeof(op->buf) - op->blen;
    if (take > len)
        take = len;
    memcpy(op->buf + op->blen, data, take);
    size_t before = op->blen;
    op->blen += take;
    *rv = flare__mig_parse(op->buf, op->blen, m);
    if (*rv > 0)
        return (size_t)*rv - before;
    return take;
}

/* ---- initiator ------------------------------------------------------------------------- */

/* The move did not happen: the stream goes on where it was. */
static void unfreeze(mig_op *op)
{
    flare_stream *s = op->ref.s;
    op_free(op);
    if (!s)
        return;
    s->mig_frozen = 0;
    if (s->state == FLARE__STREAM_DEAD)
        return;
    flare_conn *c = s->conn;
    c->busy++;
    flare__stream_on_readable(s); /* what the muxer kept meanwhile */
    if (s->state != FLARE__STREAM_DEAD)
        flare__stream_on_writable(s);
    flare__conn_flush(c);
    flare__conn_unbusy(c);
}

static void ctl_close(flare_stream *ctl, int err, void *user)
{
    (void)ctl;
    (void)err;
    mig_op *op = user;
    count(op->h, 2);
    unfreeze(op);
}

static void ctl_drop(flare_stream *ctl)
{
    flare__stream_abort(ctl);
}

static void ctl_data(flare_stream *ctl, const uint8_t *data, size_t len, void *user)
{
    mig_op *op = user;
    flare__mig_msg m;
    int rv;
    size_t used = collect(op, data, len, &m, &rv);
    if (rv == 0)
        return;
    flare_host *h = op->h;
    flare_stream *s = op->ref.s;
    if (rv < 0 || m.type == FLARE__MIG_MIGRATE || m.type == FLARE__MIG_REFUSE || !s ||
        s->state == FLARE__STREAM_DEAD) {
        count(h, rv > 0 && m.type == FLARE__MIG_REFUSE ? 1 : 2);
        ctl_drop(ctl);
        unfreeze(op);
        return;
    }
    /* ACCEPT: the peer moved its side; ours follows. */
    flare_conn *relayed = s->conn;
    uint32_t old_id = s->id;
    uint64_t resend = s->tx_total - m.rx;
    relayed->busy++;
    rv = flare__stream_move(s, ctl, NULL, 0, m.rx);
    if (rv) {
        relayed->busy--; /* nothing changed on it */
        count(h, 2);
        ctl_drop(ctl);
        unfreeze(op);
        return;
    }
    op_free(op);
    count(h, 0);
    svc_of(h)->resent += resend;
    relayed->mux->reset_stream(relayed->mux_st, old_id, &relayed->tmp);
    flare__conn_flush(relayed);
    flare__conn_unbusy(relayed);
    flare__stream_on_writable(s);
    flare__stream_feed(s, data + used, len - used);
    flare__stream_on_readable(s); /* what the muxer holds beyond this chunk */
}

static const flare_stream_cbs ctl_cbs = {.on_data = ctl_data, .on_close = ctl_close};

static void start_move(flare_host *h, flare_conn *direct, flare_stream *s)
{
    mig_op *op = flare__calloc(h->mem, 1, sizeof(*op));
    if (!op)
        return;
    op->h = h;
    flare_stream *ctl;
    if (flare_conn_new_stream(direct, FLARE__MIGRATE_PROTOCOL, &ctl_cbs, op, 0, &ctl)) {
        flare__free(h->mem, op);
        return;
    }
    flare__mig_msg m = {.type = FLARE__MIG_MIGRATE,
                        .stream_id = s->id,
                        .opener =
                            s->inbound ? FLARE__MIG_OPENER_RECEIVER : FLARE__MIG_OPENER_SENDER,
                        .rx = s->rx_total,
                        .floor = flare__stream_floor(s)};
    uint8_t msg[FLARE__MIG_MSG_MAX];
    size_t n = flare__mig_encode(&m, msg);
    op->ref.s = s;
    s->mig = &op->ref;
    s->mig_frozen = 1;
    if (flare_stream_write(ctl, msg, n) < 0) {
        ctl_drop(ctl);
        unfreeze(op);
    }
}

/* direct is up (or was identified): move the streams of the peer's relayed
 * connections onto it, if we initiated it and the peer speaks the protocol. */
static void try_moves(flare_host *h, flare_conn *direct)
{
    if (!svc_of(h) || !h->cfg.enable_migration || direct->limited || !direct->initiator ||
        direct->close_pending || direct->state != FLARE__CONN_READY ||
        !flare__peerstore_supports(h->peerstore, &direct->peer, FLARE__MIGRATE_PROTOCOL))
        return;
    for (flare_conn *c = h->conns; c; c = c->next) {
        if (c == direct || !c->limited || c->state != FLARE__CONN_READY || c->close_pending ||
            !flare_peerid_equal(&c->peer, &direct->peer))
            continue;
        for (flare_stream *s = c->streams; s; s = s->next)
            if (movable(s))
                start_move(h, direct, s);
    }
}

static void on_conn_ready(flare_host *h, void *state, flare_conn *c)
{
    if (state)
        try_moves(h, c);
}

static void on_conn_identified(flare_host *h, void *state, flare_conn *c)
{
    if (state)
        try_moves(h, c);
}

/* ---- responder -------------------------------------------------------------------------- */

/* The relayed stream MIGRATE names: between the same peers, on a relayed
 * connection, opened by the side it says. NULL if none or not one only. */
static flare_stream *find_named(flare_conn *direct, const flare__mig_msg *m)
{
    flare_stream *found = NULL;
    int inbound = m->opener == FLARE__MIG_OPENER_SENDER;
    for (flare_conn *c = direct->host->conns; c; c = c->next) {
        if (c == direct || !c->limited || c->state != FLARE__CONN_READY || c->close_pending ||
            !flare_peerid_equal(&c->peer, &direct->peer))
            continue;
        for (flare_stream *s = c->streams; s; s = s->next)
            if (s->id == m->stream_id && s->inbound == inbound) {
                if (found)
                    return NULL;
                found = s;
            }
    }
    return found;
}

static void refuse(mig_op *op, flare_stream *d, flare__mig_reason why)
{
    flare__mig_msg r = {.type = FLARE__MIG_REFUSE, .reason = (uint8_t)why};
    uint8_t msg[FLARE__MIG_MSG_MAX];
    size_t n = flare__mig_encode(&r, msg);
    op->answered = 1;
    count(op->h, 1);
    if (flare_stream_write(d, msg, n) >= 0)
        flare_stream_close_write(d);
}

/* MIGRATE arrived: 0 when s moved onto d, else the reason to refuse. */
static int serve(mig_op *op, flare_stream *d, const flare__mig_msg *m)
{
    flare_stream *s = find_named(d->conn, m);
    if (!d->conn->host->cfg.enable_migration)
        return FLARE__MIG_R_DISABLED;
    if (!s)
        return FLARE__MIG_R_UNKNOWN;
    if (!movable(s))
        return FLARE__MIG_R_STATE;
    /* The peer cannot have read more than we sent, and must be able to
     * send again what we missed. */
    if (m->rx > s->tx_total || m->rx < flare__stream_floor(s) || m->floor > s->rx_total)
        return FLARE__MIG_R_OFFSET;
    flare__mig_msg a = {.type = FLARE__MIG_ACCEPT, .rx = s->rx_total};
    uint8_t msg[FLARE__MIG_MSG_MAX];
    size_t n = flare__mig_encode(&a, msg);
    flare_conn *relayed = s->conn;
    uint64_t resend = s->tx_total - m->rx;
    relayed->busy++;
    /* The relayed muxer stream is left as it is: the initiator resets it
     * (it still holds its frozen side there until our ACCEPT). */
    int rv = flare__stream_move(s, d, msg, n, m->rx);
    flare__conn_unbusy(relayed);
    if (rv)
        return FLARE__MIG_R_STATE;
    flare_host *op_host = op->h;
    op->answered = 1;
    op_free(op);
    count(op_host, 0);
    svc_of(op_host)->resent += resend;
    flare__stream_on_writable(s);
    return 0;
}

static void srv_open(flare_stream *d, int err, void *user)
{
    (void)user;
    if (err)
        return;
    flare_host *h = flare_stream_conn(d)->host;
    mig_op *op = flare__calloc(h->mem, 1, sizeof(*op));
    if (!op) {
        flare_stream_reset(d);
        return;
    }
    op->h = h;
    flare_stream_set_user(d, NULL, op);
}

static void srv_data(flare_stream *d, const uint8_t *data, size_t len, void *user)
{
    mig_op *op = user;
    if (!op || op->answered)
        return; /* after REFUSE: nothing more is read */
    flare__mig_msg m;
    int rv;
    size_t used = collect(op, data, len, &m, &rv);
    if (rv == 0)
        return;
    if (rv < 0 || m.type != FLARE__MIG_MIGRATE) {
        refuse(op, d, FLARE__MIG_R_MALFORMED);
        return;
    }
    flare_stream *s = find_named(d->conn, &m);
    rv = serve(op, d, &m);
    if (rv) {
        refuse(op, d, (flare__mig_reason)rv);
        return;
    }
    /* Bytes after MIGRATE are the stream's (a peer's own business). */
    flare__stream_feed(s, data + used, len - used);
    flare__stream_on_readable(s);
}

static void srv_close(flare_stream *d, int err, void *user)
{
    (void)err;
    mig_op *op = user;
    if (op && op != (void *)flare_stream_conn(d)->host)
        op_free(op);
}

static const flare_stream_cbs srv_cbs = {
    .on_open = srv_open, .on_data = srv_data, .on_close = srv_close};

/* ---- the service ----------------------------------------------------------------------- */

static int mig_init(flare_host *h, void **state)
{
    if (!h->cfg.enable_migration)
        return 0;
    mig_svc *m = flare__calloc(h->mem, 1, sizeof(*m));
    if (!m)
        return FLARE_ERR_NOMEM;
    int rv = flare_host_set_handler(h, FLARE__MIGRATE_PROTOCOL, &srv_cbs, h, 0);
    if (rv) {
        flare__free(h->mem, m);
        return rv;
    }
    *state = m;
    return 0;
}

static void mig_free(flare_host *h, void *state)
{
    flare__free(h->mem, state);
}

void flare__migrate_stats(flare_host *h, unsigned long *moved, unsigned long *refused,
                          unsigned long *failed, uint64_t *resent)
{
    mig_svc *m = svc_of(h);
    *resent = m ? m->resent : 0;
    *moved = m ? m->moved : 0;
    *refused = m ? m->refused : 0;
    *failed = m ? m->failed : 0;
}

static const flare__svc_stream_limit limits[] = {{FLARE__MIGRATE_PROTOCOL, 64}, {NULL, 0}};

const flare__service flare__svc_migrate = {
    .name = "migrate",
    .stream_limits = limits,
    .init = mig_init,
    .free = mig_free,
    .on_conn_ready = on_conn_ready,
    .on_conn_identified = on_conn_identified,
};
