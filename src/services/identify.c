/*
 * identify (/ipfs/id/1.0.0) and identify push (/ipfs/id/push/1.0.0).
 *
 * Each side asks the other on every new connection: the asker opens the
 * stream, the answerer writes one message and closes. What we learn goes to
 * the peerstore; the address the remote saw us at is reported as
 * FLARE_HOST_EV_OBSERVED_ADDR (the address manager of a later issue turns
 * those into external addresses).
 */
#include <string.h>

#include "core/mem.h"
#include "flare/identify.h"
#include "flare/lpframe.h"
#include "flare/peer_record.h"
#include "services/services.h"

#define ADDR_TTL (2 * 3600 * FLARE_NS_PER_S) /* listen addresses learned from identify */

/* Reads a whole message until EOF. */
typedef struct id_reader {
    flare_host *host;
    flare_buf in;
    int push;
} id_reader;

/* ---- what we say -------------------------------------------------------------- */

/* Our signed peer record (RFC 0003) is built once per set of addresses: a
 * private node's relayed addresses then travel signed, so a DHT server can
 * hand them to a dialer as the peer's own word. */
#define REC_MAX_ADDRS 16   /* addresses in our record; the rest are dropped */
#define REC_MAX_BYTES 2048 /* their total size: the identify message stays small */

typedef struct id_state {
    flare_buf addrs;  /* the address set the record was signed for */
    flare_buf record; /* the envelope; empty when signing failed */
    uint64_t seq;
} id_state;

/* Our record for listen[0..n), re-signed only when the set changed. The
 * sequence number follows the wall clock in ns (as go does), so it grows
 * across restarts too, and is bumped when the clock stands still. */
static const flare_buf *own_record(flare_host *h, const flare_multiaddr *listen, size_t n)
{
    id_state *st = flare__svc_state(h, &flare__svc_identify);
    if (!st)
        return NULL;
    flare_bytes_view v[REC_MAX_ADDRS];
    size_t nv = 0, bytes = 0;
    flare_buf key;
    flare_buf_init(&key, h->mem);
    for (size_t i = 0; i < n && nv < REC_MAX_ADDRS; i++) {
        if (listen[i].len > FLARE_PEER_RECORD_ADDR_MAX || bytes + listen[i].len > REC_MAX_BYTES)
            continue;
        bytes += listen[i].len;
        v[nv++] = (flare_bytes_view){listen[i].bytes, listen[i].len};
        uint8_t l[2] = {(uint8_t)(listen[i].len >> 8), (uint8_t)listen[i].len};
        if (flare_buf_append(&key, l, 2) || flare_buf_append(&key, listen[i].bytes, listen[i].len))
            nv = 0, n = 0;
    }
    int same = st->seq && key.len == st->addrs.len &&
               (key.len == 0 || memcmp(key.base, st->addrs.base, key.len) == 0);
    if (same || nv == 0) {
        flare_buf_free(&key);
        return same && st->record.len ? &st->record : NULL;
    }
    uint64_t unix_s = h->io->ops->unix_time ? h->io->ops->unix_time(h->io) : 0;
    uint64_t seq = unix_s * 1000000000ull + (uint64_t)(flare_io_now(h->io) % FLARE_NS_PER_S);
    st->seq = seq > st->seq ? seq : st->seq + 1;
    flare_buf_free(&st->record);
    flare_peer_record_seal(&h->key, st->seq, v, nv, &st->record); /* on error: empty */
    flare_buf_free(&st->addrs);
    st->addrs = key;
    return st->record.len ? &st->record : NULL;
}

static int build_message(flare_host *h, flare_conn *c, flare_buf *out)
{
    flare_multiaddr listen[32];
    size_t k = flare__addrs_advertised(h, listen, 32);
    const char *protos[FLARE_IDENTIFY_MAX_PROTOCOLS];
    size_t np = flare_host_protocols(h, protos, FLARE_IDENTIFY_MAX_PROTOCOLS);
    flare_identify_out m = {0};
    flare_multiaddr ra;
    m.agent_version = h->agent;
    m.pubkey = &h->key.pub;
    m.listen = listen;
    m.nlisten = k;
    m.observed = c ? flare__conn_remote_ma(c, &ra) : NULL;
    m.protocols = protos;
    m.nprotocols = np;
    const flare_buf *rec = own_record(h, listen, k);
    if (rec) {
        m.signed_record = rec->base;
        m.signed_record_len = rec->len;
    }
    int rv = flare_identify_encode(&m, out);
    if (rv == FLARE_ERR_TOO_LARGE && rec) { /* the addresses still go, unsigned */
        m.signed_record = NULL;
        m.signed_record_len = 0;
        rv = flare_identify_encode(&m, out);
    }
    return rv;
}

static void answer_open(flare_stream *s, int status, void *user)
{
    flare_host *h = user;
    if (status)
        return;
    flare_buf out;
    flare_buf_init(&out, h->mem);
    int rv = build_message(h, flare_stream_conn(s), &out);
    if (rv == 0)
        rv = flare_stream_write(s, out.base, out.len);
    flare_buf_free(&out);
    if (rv)
        flare__stream_abort(s);
    else
        flare_stream_close_write(s);
}

static const flare_stream_cbs answer_cbs = {.on_open = answer_open};

/* ---- what we learn -------------------------------------------------------------- */

/* The peer's signed peer record (RFC 0003): 0 and its addresses added to
 * the peerstore when the envelope verifies with its own key, carries a
 * libp2p peer record (domain and payload type), and the record names the
 * connection's peer; otherwise the error, and nothing is added. The record
 * comes from the peer itself over its authenticated connection, so an old
 * sequence number is no threat here (it could send unsigned addresses). */
static int apply_record(flare_host *h, flare_conn *c, const flare_identify_msg *m, flare_tstamp exp)
{
    flare_peer_record *rec = flare__malloc(h->mem, sizeof(*rec));
    flare_multiaddr *mas = NULL;
    int rv = rec ? 0 : FLARE_ERR_NOMEM;
    if (rv == 0)
        rv = flare_peer_record_open_cached(m->signed_record, m->signed_record_len, h->cfg.sig_cache,
                                           rec, NULL);
    if (rv == 0 && !flare_peerid_equal(&rec->peer_id, &c->peer))
        rv = FLARE_ERR_PEER_ID_MISMATCH;
    /* As many as the record holds (the decoder caps it at 32; nearly
     * always a few: 13 KB per identify otherwise). */
    if (rv == 0 && rec->naddrs && !(mas = flare__malloc(h->mem, rec->naddrs * sizeof(*mas))))
        rv = FLARE_ERR_NOMEM;
    size_t n = 0;
    for (size_t i = 0; rv == 0 && i < rec->naddrs; i++)
        if (flare_multiaddr_from_bytes(&mas[n], rec->addrs[i].data, rec->addrs[i].len) == 0)
            n++;
    /* An older record than one already seen (reordered pushes) changes nothing. */
    if (rv == 0) {
        int st = flare__peerstore_add_record(h->peerstore, &c->peer, rec->seq, mas, n, exp);
        rv = st == FLARE_ERR_EXISTS ? 0 : st;
    }
    flare__free(h->mem, rec);
    flare__free(h->mem, mas);
    return rv;
}

static void apply(flare_host *h, flare_conn *c, const flare_identify_msg *m)
{
    const flare_peerid *peer = &c->peer;
    if (m->has_protocols)
        flare__peerstore_set_protocols(h->peerstore, peer, (const char *const *)m->protocols,
                                       m->nprotocols);
    if (m->has_agent_version || m->has_protocol_version)
        flare__peerstore_set_agent(h->peerstore, peer, m->agent_version, m->protocol_version);
    flare_tstamp exp = flare_io_now(h->io) + ADDR_TTL;
    /* Signed addresses win over the unsigned listenAddrs (as go and js do);
     * a record that does not verify is ignored, and reported. */
    int rec_err = m->signed_record ? apply_record(h, c, m, exp) : FLARE_ERR_NOT_FOUND;
    for (size_t i = 0; rec_err && i < m->nlisten; i++)
        flare__peerstore_add_addr(h->peerstore, peer, &m->listen[i], exp);
    flare_multiaddr ra;
    flare_host_event ev = {.type = FLARE_HOST_EV_OBSERVED_ADDR,
                           .u.observed = {.conn = c, .peer = peer}};
    if (m->has_observed) {
        /* js appends /p2p/<us> to what it observed: report the bare address. */
        flare_multiaddr obs = m->observed;
        flare_peerid tail;
        if (flare_multiaddr_get_peerid(&obs, &tail) == 0 && flare_peerid_equal(&tail, &h->id))
            flare_multiaddr_decapsulate(&obs, FLARE_MA_P2P);
        ev.u.observed.addr = &obs;
        flare__host_emit(h, &ev);
        flare__addrs_observed(h, c, &obs);
    }
    int bad = rec_err == FLARE_ERR_NOT_FOUND ? 0 : rec_err;
    ev = (flare_host_event){
        .type = FLARE_HOST_EV_IDENTIFIED,
        .u.identified = {.conn = c,
                         .peer = peer,
                         .addr = flare__conn_remote_ma(c, &ra),
                         .outbound = c->outbound,
                         .signed_record = rec_err == 0, /* addresses from a verified record */
                         .record_error = bad,
                         .reason = bad ? "signed peer record rejected" : NULL}};
    flare__host_emit(h, &ev);
    flare__svc_conn_identified(h, c);
}

static int process(flare_host *h, flare_conn *c, const id_reader *r)
{
    const uint8_t *msg;
    size_t len;
    int n = flare_lpframe_parse(r->in.base, r->in.len, FLARE_IDENTIFY_MAX_MSG, &msg, &len);
    if (n == FLARE_ERR_AGAIN)
        return FLARE_ERR_TRUNCATED;
    if (n < 0)
        return n;
    flare_identify_msg m;
    int rv = flare_identify_decode(&m, msg, len, h->mem);
    if (rv)
        return rv;
    /* The key must be the one the secure channel authenticated. */
    if (m.has_pubkey && !flare_peerid_matches_pubkey(&c->peer, &m.pubkey))
        rv = FLARE_ERR_PEER_ID_MISMATCH;
    else
        apply(h, c, &m);
    flare_identify_msg_free(&m);
    return rv;
}

static void reader_free(id_reader *r)
{
    flare_buf_free(&r->in);
    flare__free(r->host->mem, r);
}

/* An aborted stream gets no on_close: the reader is freed here. */
static void reader_abort(flare_stream *s, id_reader *r)
{
    flare__stream_abort(s);
    reader_free(r);
}

static void reader_data(flare_stream *s, const uint8_t *data, size_t len, void *user)
{
    id_reader *r = user;
    if (r->in.len + len > FLARE_IDENTIFY_MAX_MSG + 10 || flare_buf_append(&r->in, data, len))
        reader_abort(s, r);
}

static void reader_eof(flare_stream *s, void *user)
{
    id_reader *r = user;
    flare_conn *c = flare_stream_conn(s);
    process(r->host, c, r);
    flare_stream_close_write(s);
}

static void reader_close(flare_stream *s, int err, void *user)
{
    id_reader *r = user;
    (void)s;
    (void)err;
    reader_free(r);
}

static const flare_stream_cbs reader_cbs = {
    .on_data = reader_data, .on_eof = reader_eof, .on_close = reader_close};

static id_reader *reader_new(flare_host *h, int push)
{
    id_reader *r = flare__calloc(h->mem, 1, sizeof(*r));
    if (r) {
        r->host = h;
        r->push = push;
        flare_buf_init(&r->in, h->mem);
    }
    return r;
}

/* Push: the remote opened the stream; read like an answer. */
static void push_open(flare_stream *s, int status, void *user)
{
    flare_host *h = user;
    if (status)
        return;
    id_reader *r = reader_new(h, 1);
    if (!r) {
        flare__stream_abort(s);
        return;
    }
    flare_stream_set_user(s, &reader_cbs, r);
}

static const flare_stream_cbs push_cbs = {.on_open = push_open};

static int identify_init(flare_host *h, void **state)
{
    if (!h->cfg.enable_identify)
        return 0;
    id_state *st = flare__calloc(h->mem, 1, sizeof(*st));
    if (!st)
        return FLARE_ERR_NOMEM;
    flare_buf_init(&st->addrs, h->mem);
    flare_buf_init(&st->record, h->mem);
    *state = st;
    int rv =
        flare_host_set_handler(h, FLARE_IDENTIFY_ID, &answer_cbs, h, FLARE_HANDLER_ALLOW_LIMITED);
    if (rv == 0)
        rv = flare_host_set_handler(h, FLARE_IDENTIFY_PUSH_ID, &push_cbs, h,
                                    FLARE_HANDLER_ALLOW_LIMITED);
    return rv;
}

static void identify_free(flare_host *h, void *state)
{
    id_state *st = state;
    if (!st)
        return;
    flare_buf_free(&st->addrs);
    flare_buf_free(&st->record);
    flare__free(h->mem, st);
}

/* Asks every new connection's peer who it is. */
static void identify_on_conn(flare_host *h, void *state, flare_conn *c)
{
    unsigned mark = flare__svc_mark(h, &flare__svc_identify);
    (void)state;
    if (!h->cfg.enable_identify || (c->svc_marks & mark))
        return;
    c->svc_marks |= mark;
    id_reader *r = reader_new(h, 0);
    if (!r)
        return;
    if (flare_conn_new_stream(c, FLARE_IDENTIFY_ID, &reader_cbs, r, FLARE_STREAM_ALLOW_LIMITED,
                              NULL))
        reader_free(r);
}

/* Sends our current identify to every connected peer (after our addresses or
 * protocols change). */
static void push_open_out(flare_stream *s, int status, void *user)
{
    (void)s;
    (void)status;
    (void)user;
}

static const flare_stream_cbs push_out_cbs = {.on_open = push_open_out};

int flare_host_identify_push(flare_host *h)
{
    for (flare_conn *c = h->conns; c; c = c->next) {
        if (c->state != FLARE__CONN_READY || c->close_pending)
            continue;
        if (!flare__peerstore_supports(h->peerstore, &c->peer, FLARE_IDENTIFY_PUSH_ID))
            continue;
        flare_stream *s;
        flare__conn_hold(c); /* the stream, the message and the FIN in one write */
        if (flare_conn_new_stream(c, FLARE_IDENTIFY_PUSH_ID, &push_out_cbs, NULL,
                                  FLARE_STREAM_ALLOW_LIMITED, &s) == 0) {
            flare_buf out;
            flare_buf_init(&out, h->mem);
            if (build_message(h, c, &out) == 0 && flare_stream_write(s, out.base, out.len) == 0)
                flare_stream_close_write(s);
            else
                flare__stream_abort(s);
            flare_buf_free(&out);
        }
        flare__conn_release(c);
    }
    return 0;
}

/* Our addresses changed (listen or confirmed external): tell the connected peers. */
static void identify_addrs_changed(flare_host *h, void *state, flare__addrs_change why)
{
    (void)state;
    (void)why; /* a new listen address or external one: both are in our record */
    flare_host_identify_push(h);
}

/* Our answer is the largest message we build for anyone who asks. */
static const flare__svc_stream_limit limits[] = {
    {FLARE_IDENTIFY_ID, 8}, {FLARE_IDENTIFY_PUSH_ID, 8}, {NULL, 0}};

const flare__service flare__svc_identify = {
    .name = "identify",
    .stream_limits = limits,
    .init = identify_init,
    .free = identify_free,
    .on_conn_ready = identify_on_conn,
    .on_addrs_changed = identify_addrs_changed,
};
