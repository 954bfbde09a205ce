/*
 * Kademlia requests and queries. A request (rpc) dials the peer if needed,
 * takes the stream kept from the last request to that peer or opens a
 * /ipfs/kad/1.0.0 stream, writes one message and reads one answer
 * (ADD_PROVIDER has none); the stream is then kept for the next one
 * (kad_stream.c). A request that fails on a kept stream (the peer closed
 * or reset it meanwhile) is sent again once on a fresh one, as go does. A query drives a lookup
 * state machine (protocols/kad) with those requests and, for provide and put, stores on the closest
 * peers it found. A peer that answers enters the routing table; one that fails leaves it.
 */
#include <string.h>

#include "core/mem.h"
#include "flare/lpframe.h"
#include "services/kad_svc.h"

#define RETRY_DELAY (500 * FLARE_NS_PER_MS)

/* ---- requests ---------------------------------------------------------------------- */

static void query_on_reply(kad_query *q, const flare_peerid *from, const flare__kad_msg *m);
static void query_on_fail(kad_query *q, const flare_peerid *from);
static void query_kick(kad_query *q);

static void rpc_free(kad_rpc *r)
{
    kad_t *k = r->kad;
    *r->pprev = r->next;
    if (r->next)
        r->next->pprev = r->pprev;
    if (r->timer)
        k->h->io->ops->timer_del(r->timer);
    flare_buf_free(&r->req);
    flare_buf_free(&r->in);
    flare__free(k->h->mem, r);
}

static const flare_stream_cbs no_cbs = {0};

/* The outcome is in: m is the answer (NULL on failure). */
static void rpc_done(kad_rpc *r, int err, const flare__kad_msg *m)
{
    if (r->finished)
        return;
    kad_t *k = r->kad;
    r->finished = 1;
    k->h->io->ops->timer_stop(r->timer);
    if (r->s) {
        flare_stream *s = r->s;
        r->s = NULL;
        flare_stream_set_user(s, &no_cbs, NULL);
        /* A message without an answer (ADD_PROVIDER) may still be unread
         * at the peer, which a reset could make it drop: it ends with a FIN.
         * After an answer the peer has read the request; the stream is kept
         * or reset (kad_stream.c). */
        if (err)
            flare_stream_reset(s);
        else if (r->clean && r->expect_reply)
            kad_idle_put(k, &r->peer, s);
        else
            flare_stream_close_write(s);
    }
    if (!r->q) /* a probe */
        k->nprobes--;
    if (k->h->destroying)
        return;
    if (err) {
        k->rpcs_failed++;
        if (flare__kad_rt_remove(&k->rt, &r->peer))
            kad_table_changed(k);
        if (!r->q)
            kad_probe_failed(k);
    } else if (r->expect_reply) {
        int rv =
            flare__kad_rt_seen(&k->rt, &r->peer, kad_group_of(k, &r->peer), flare_io_now(k->h->io));
        if (rv == FLARE__KAD_RT_ADDED)
            kad_table_changed(k);
    }
    kad_query *q = r->q;
    r->q = NULL;
    if (q && q->storing && !r->store)
        return; /* a lookup answer that came after the lookup ended */
    if (q && err)
        query_on_fail(q, &r->peer);
    else if (q)
        query_on_reply(q, &r->peer, m);
}

static void rpc_finish_free(kad_rpc *r, int err, const flare__kad_msg *m)
{
    rpc_done(r, err, m);
    if (!r->dialing)
        rpc_free(r);
}

static void rpc_retry(kad_rpc *r);

/* The request failed on a kept stream before its answer: the peer may have
 * closed that stream just before our request reached it, so it goes out
 * once more on a fresh stream. Returns 1 if that is scheduled. */
static int rpc_reuse_failed(kad_rpc *r)
{
    if (!r->reused || r->finished || r->kad->h->destroying)
        return 0;
    r->reused = 0;
    r->kad->reuse_retries++;
    if (r->s) {
        flare_stream_set_user(r->s, &no_cbs, NULL);
        flare_stream_reset(r->s);
        r->s = NULL;
    }
    flare_buf_reset(&r->in);
    r->retry_pending = 1;
    r->kad->h->io->ops->timer_start(r->timer, flare_io_now(r->kad->h->io));
    return 1;
}

/* Failures of the connection rather than of the peer get one more try,
 * from an ephemeral port: both sides dialed at once from their listen ports
 * (the peer's connection is still in its handshake), the 4-tuple of our
 * listen port is still taken at the peer from an earlier connection (it
 * resets our SYN), or the connection our request went out on lost a dial
 * race and was closed. Returns 1 if a retry is scheduled. */
static int rpc_try_again(kad_rpc *r, int err)
{
    if (r->retried || r->finished || r->kad->h->destroying ||
        (err != FLARE_ERR_ADDR_IN_USE && err != FLARE_ERR_CLOSED && err != FLARE_ERR_TRUNCATED &&
         err != FLARE_ERR_REFUSED))
        return 0;
    r->retried = r->retry_pending = 1;
    flare_buf_reset(&r->in);
    r->kad->h->io->ops->timer_start(r->timer, flare_io_now(r->kad->h->io) + RETRY_DELAY);
    return 1;
}

static void rpc_timer(flare_io_timer *t, void *user)
{
    kad_rpc *r = user;
    (void)t;
    if (r->retry_pending) {
        rpc_retry(r);
        return;
    }
    if (r->sent_ok) {
        rpc_finish_free(r, 0, NULL);
        return;
    }
    rpc_finish_free(r, r->err ? r->err : FLARE_ERR_TIMEOUT, NULL);
}

static void rpc_data(flare_stream *s, const uint8_t *data, size_t len, void *user)
{
    kad_rpc *r = user;
    (void)s;
    if (r->in.len + len > FLARE__KAD_MAX_MSG + 10 || flare_buf_append(&r->in, data, len)) {
        rpc_finish_free(r, FLARE_ERR_TOO_LARGE, NULL);
        return;
    }
    const uint8_t *msg;
    size_t mlen;
    int n = flare_lpframe_parse(r->in.base, r->in.len, FLARE__KAD_MAX_MSG, &msg, &mlen);
    if (n == FLARE_ERR_AGAIN)
        return;
    if (n < 0) {
        rpc_finish_free(r, n, NULL);
        return;
    }
    r->clean = (size_t)n == r->in.len; /* nothing after the answer */
    const flare_mem *mem = r->kad->h->mem;
    flare__kad_msg *m = flare__malloc(mem, sizeof(*m));
    int rv = m ? flare__kad_msg_decode(m, msg, mlen) : FLARE_ERR_NOMEM;
    rpc_finish_free(r, rv, rv ? NULL : m); /* frees r */
    flare__free(mem, m);
}

static void rpc_eof(flare_stream *s, void *user)
{
    (void)s;
    if (!rpc_reuse_failed(user))
        rpc_finish_free(user, FLARE_ERR_CLOSED, NULL);
}

static void rpc_close(flare_stream *s, int err, void *user)
{
    kad_rpc *r = user;
    (void)s;
    r->s = NULL;
    if (rpc_reuse_failed(r))
        return;
    if (!rpc_try_again(r, err ? err : FLARE_ERR_CLOSED))
        rpc_finish_free(r, err ? err : FLARE_ERR_CLOSED, NULL);
}

static void rpc_open(flare_stream *s, int status, void *user)
{
    kad_rpc *r = user;
    (void)s;
    if (status)
        return; /* on_close follows */
    if (!r->expect_reply) {
        r->clean = 1;
        rpc_finish_free(r, 0, NULL);
        return;
    }
}

static const flare_stream_cbs rpc_cbs = {
    .on_open = rpc_open, .on_data = rpc_data, .on_eof = rpc_eof, .on_close = rpc_close};

static void rpc_fail_soon(kad_rpc *r, int err)
{
    r->err = err;
    r->kad->h->io->ops->timer_start(r->timer, flare_io_now(r->kad->h->io));
}

/* The request on the stream kept for r's peer, if there is one that takes
 * it. Returns 1 if sent. */
static int rpc_on_kept(kad_rpc *r)
{
    kad_t *k = r->kad;
    flare_stream *s = kad_idle_take(k, &r->peer);
    if (!s)
        return 0;
    flare_stream_set_user(s, &rpc_cbs, r);
    if (flare_stream_write(s, r->req.base, r->req.len) < 0) {
        flare_stream_set_user(s, &no_cbs, NULL);
        flare_stream_reset(s);
        return 0;
    }
    r->s = s;
    r->reused = 1;
    k->streams_reused++;
    if (!r->expect_reply) { /* out: the outcome from the loop */
        r->sent_ok = r->clean = 1;
        k->h->io->ops->timer_start(r->timer, flare_io_now(k->h->io));
    }
    return 1;
}

static void rpc_on_conn(kad_rpc *r, flare_conn *c, int fresh)
{
    if (!fresh && rpc_on_kept(r))
        return;
    /* The request rides with the protocol proposal (the stream is
     * optimistic), in one write: a round trip less than after the echo. */
    r->kad->streams_opened++;
    flare__conn_hold(c);
    int rv = flare_conn_new_stream(c, FLARE__KAD_ID, &rpc_cbs, r, 0, &r->s);
    if (rv == 0 && (rv = flare_stream_write(r->s, r->req.base, r->req.len)) > 0)
        rv = 0;
    if (rv) {
        if (r->s) {
            flare_stream_set_user(r->s, &no_cbs, NULL);
            flare_stream_reset(r->s);
        }
        r->s = NULL;
        rpc_fail_soon(r, rv);
    }
    flare__conn_release(c);
}

static void rpc_connected(flare_host *h, flare_conn *c, int status, void *user)
{
    kad_rpc *r = user;
    (void)h;
    r->dialing = 0;
    if (r->finished) {
        rpc_free(r);
        return;
    }
    (void)h;
    if (status && rpc_try_again(r, status))
        return;
    if (status || !c)
        rpc_finish_free(r, status ? status : FLARE_ERR_UNREACHABLE, NULL);
    else
        rpc_on_conn(r, c, 0);
}

/* A direct connection to peer: kad streams are not opened on relayed ones. */
static flare_conn *direct_conn(flare_host *h, const flare_peerid *peer)
{
    flare_conn *c = flare_host_conn_to(h, peer);
    return c && !flare_conn_is_limited(c) ? c : NULL;
}

static void rpc_retry(kad_rpc *r)
{
    flare_host *h = r->kad->h;
    r->retry_pending = 0;
    h->io->ops->timer_start(r->timer, r->deadline);
    flare_conn *c = direct_conn(h, &r->peer);
    if (c) {
        rpc_on_conn(r, c, 1);
        return;
    }
    flare_dial_opts o = {.no_reuse = r->retried};
    int rv = flare_host_connect(h, &r->peer, &o, rpc_connected, r);
    if (rv)
        rpc_fail_soon(r, rv);
    else
        r->dialing = 1;
}

/* Sends m to peer for q (NULL: a probe). framed holds m encoded, or is
 * empty and gets it: a message to several peers is encoded once. The
 * outcome reaches q from the loop, never inside this call. */
static int rpc_start(kad_t *k, kad_query *q, const flare_peerid *peer, const flare__kad_msg *m,
                     flare_buf *framed, int expect_reply)
{
    flare_host *h = k->h;
    kad_rpc *r = flare__calloc(h->mem, 1, sizeof(*r));
    if (!r)
        return FLARE_ERR_NOMEM;
    r->kad = k;
    r->q = q;
    r->store = q && q->storing;
    r->peer = *peer;
    r->expect_reply = expect_reply;
    flare_buf_init(&r->req, h->mem);
    flare_buf_init(&r->in, h->mem);
    int rv = framed->len ? 0 : flare__kad_msg_encode(framed, m);
    if (rv == 0)
        rv = flare_buf_append(&r->req, framed->base, framed->len);
    if (rv == 0)
        rv = h->io->ops->timer_new(h->io, rpc_timer, r, &r->timer);
    if (rv) {
        flare_buf_free(&r->req);
        flare__free(h->mem, r);
        return rv;
    }
    r->next = k->rpcs;
    r->pprev = &k->rpcs;
    if (k->rpcs)
        k->rpcs->pprev = &r->next;
    k->rpcs = r;
    k->rpcs_sent++;
    if (!q)
        k->nprobes++;
    r->deadline = flare_io_now(h->io) + k->cfg.request_timeout;
    h->io->ops->timer_start(r->timer, r->deadline);
    /* A kept stream means a live connection: no lookup of it needed. */
    if (rpc_on_kept(r))
        return 0;
    flare_conn *c = direct_conn(h, peer);
    if (c) {
        rpc_on_conn(r, c, 1);
        return 0;
    }
    flare_dial_opts o = {0};
    rv = flare_host_connect(h, peer, &o, rpc_connected, r);
    if (rv)
        rpc_fail_soon(r, rv);
    else
        r->dialing = 1;
    return 0;
}

void kad_rpcs_free_all(kad_t *k)
{
    while (k->rpcs) {
        kad_rpc *r = k->rpcs;
        if (r->s)
            flare_stream_set_user(r->s, &no_cbs, NULL);
        k->rpcs = r->next;
        if (k->rpcs)
            k->rpcs->pprev = &k->rpcs;
        if (r->timer)
            k->h->io->ops->timer_del(r->timer);
        flare_buf_free(&r->req);
        flare_buf_free(&r->in);
        flare__free(k->h->mem, r);
    }
}

void kad_probe(kad_t *k, const flare_peerid *peer, int boot)
{
    if (k->nprobes >= KAD_MAX_PROBES && !boot)
        return;
    for (kad_rpc *r = k->rpcs; r; r = r->next)
        if (!r->q && !r->finished && flare_peerid_equal(&r->peer, peer))
            return;
    flare__kad_msg *m = flare__malloc(k->h->mem, sizeof(*m));
    if (!m)
        return;
    flare__kad_msg_init(m, FLARE__KAD_FIND_NODE);
    m->key = (flare__kad_bytes){k->h->id.bytes, k->h->id.len};
    flare_buf req;
    flare_buf_init(&req, k->h->mem);
    rpc_start(k, NULL, peer, m, &req, 1);
    flare_buf_free(&req);
    flare__free(k->h->mem, m);
}

/* ---- queries ------------------------------------------------------------------------- */

static flare__kad_type request_type(kad_qkind kind)
{
    switch (kind) {
    case Q_PROVIDERS:
        return FLARE__KAD_GET_PROVIDERS;
    case Q_GET_VALUE:
        return FLARE__KAD_GET_VALUE;
    default:
        return FLARE__KAD_FIND_NODE;
    }
}

static void query_timer(flare_io_timer *t, void *user);

kad_query *kad_query_new(kad_t *k, kad_qkind kind, const uint8_t *key, size_t klen)
{
    flare_host *h = k->h;
    if (!klen || klen > FLARE__KAD_MAX_KEY)
        return NULL;
    kad_query *q = flare__calloc(h->mem, 1, sizeof(*q));
    if (!q)
        return NULL;
    q->kad = k;
    q->kind = kind;
    memcpy(q->key, key, klen);
    q->klen = klen;
    flare__kad_key target;
    flare__kad_key_of(&target, key, klen);
    if (flare__kad_lookup_init(&q->l, &target, &h->id, k->cfg.alpha, k->cfg.beta, k->cfg.k,
                               k->cfg.disjoint_paths, h->mem) ||
        h->io->ops->timer_new(h->io, query_timer, q, &q->timer)) {
        flare__kad_lookup_free(&q->l);
        flare__free(h->mem, q);
        return NULL;
    }
    q->next = k->queries;
    k->queries = q;
    return q;
}

static void query_free(kad_query *q)
{
    kad_t *k = q->kad;
    for (kad_query **p = &k->queries; *p; p = &(*p)->next)
        if (*p == q) {
            *p = q->next;
            break;
        }
    for (kad_rpc *r = k->rpcs; r; r = r->next)
        if (r->q == q)
            r->q = NULL;
    k->h->io->ops->timer_del(q->timer);
    flare__kad_lookup_free(&q->l);
    flare__free(k->h->mem, q->value);
    flare__free(k->h->mem, q->found);
    flare__free(k->h->mem, q->with_best);
    flare__free(k->h->mem, q);
}

void kad_query_free_all(kad_t *k)
{
    while (k->queries)
        query_free(k->queries);
}

static void query_kick(kad_query *q)
{
    q->kad->h->io->ops->timer_start(q->timer, flare_io_now(q->kad->h->io));
}

/* Adds id (with addrs) to q->found unless known; 1 if it was new. */
static int found_add(kad_query *q, const flare_peerid *id, const flare__kad_peer *p)
{
    for (size_t i = 0; i < q->nfound; i++)
        if (flare_peerid_equal(&q->found[i].id, id))
            return 0;
    if (q->nfound == q->maxfound)
        return 0;
    flare_kad_peer *f = &q->found[q->nfound++];
    memset(f, 0, sizeof(*f));
    f->id = *id;
    for (size_t i = 0; p && i < p->naddrs && f->naddrs < FLARE_KAD_MAX_ADDRS; i++)
        if (flare_multiaddr_from_bytes(&f->addrs[f->naddrs], p->addrs[i].p, p->addrs[i].len) == 0)
            f->naddrs++;
    if (!f->naddrs)
        f->naddrs = flare__peerstore_addrs(q->kad->h->peerstore, id, flare_io_now(q->kad->h->io),
                                           f->addrs, FLARE_KAD_MAX_ADDRS);
    return 1;
}

/* Remembers the addresses a peer gave for another one. The codec kept
 * only addresses that parse (flare__kad_msg_decode), so they are copied,
 * not parsed a second time. */
static void learn_addrs(kad_t *k, const flare_peerid *id, const flare__kad_peer *p)
{
    if (flare_peerid_equal(id, &k->h->id))
        return;
    flare_tstamp exp = flare_io_now(k->h->io) + KAD_ADDR_TTL;
    flare_multiaddr ma;
    for (size_t i = 0; i < p->naddrs; i++) {
        if (!p->addrs[i].len || p->addrs[i].len > sizeof(ma.bytes))
            continue;
        ma.len = (uint16_t)p->addrs[i].len;
        memcpy(ma.bytes, p->addrs[i].p, p->addrs[i].len);
        flare__peerstore_add_addr(k->h->peerstore, id, &ma, exp);
    }
}

/* Remembers that from holds the best value (NULL: we do). */
static void best_holder(kad_query *q, const flare_peerid *from)
{
    size_t cap = q->kad->cfg.k < 64 ? q->kad->cfg.k : 64;
    if (!from || q->nbest >= cap)
        return;
    if (!q->with_best && !(q->with_best = flare__calloc(q->kad->h->mem, cap, sizeof(flare_peerid))))
        return;
    q->with_best[q->nbest++] = *from;
}

/* A record for q's key (from a peer, or ours when from is NULL): kept when
 * valid and better than the best so far (by the namespace's select), as go
 * does; the lookup ends once quorum valid records came in. */
static void offer_value(kad_query *q, const flare_peerid *from, const uint8_t *val, size_t vlen)
{
    kad_t *k = q->kad;
    if (flare__kad_record_validate(&k->recs, q->key, q->klen, val, vlen))
        return;
    q->nvalid++;
    if (q->quorum && q->nvalid >= q->quorum)
        q->stop = 1;
    if (q->value && q->vlen == vlen && memcmp(q->value, val, vlen) == 0) {
        best_holder(q, from);
        return;
    }
    if (q->value &&
        !flare__kad_record_better(&k->recs, q->key, q->klen, q->value, q->vlen, val, vlen))
        return;
    uint8_t *v = flare__malloc(k->h->mem, vlen ? vlen : 1);
    if (!v)
        return;
    memcpy(v, val, vlen);
    flare__free(k->h->mem, q->value);
    q->value = v;
    q->vlen = vlen;
    q->nbest = 0;
    best_holder(q, from);
}

static void take_value(kad_query *q, const flare_peerid *from, const flare__kad_msg *m)
{
    if (m->has_record && m->rec_key.len == q->klen && memcmp(m->rec_key.p, q->key, q->klen) == 0)
        offer_value(q, from, m->rec_value.p, m->rec_value.len);
}

void kad_query_take_local(kad_query *q)
{
    kad_t *k = q->kad;
    const flare__kad_record *r =
        flare__kad_records_get(&k->recs, q->key, q->klen, flare_io_now(k->h->io));
    if (r) {
        q->had_local = 1;
        offer_value(q, NULL, r->val, r->vlen);
    }
}

/* After the answer: the closest peers that did not give the best record
 * get it (go's correction of outdated peers), and so does our own store. */
static int correct_peers(kad_query *q)
{
    kad_t *k = q->kad;
    q->corrected = 1;
    if (!q->value)
        return 0;
    if (q->had_local)
        flare__kad_records_put(&k->recs, q->key, q->klen, q->value, q->vlen,
                               flare_io_now(k->h->io));
    flare_peerid res[64];
    size_t n = flare__kad_lookup_result(&q->l, res, k->cfg.k < 64 ? k->cfg.k : 64);
    flare__kad_msg *m = flare__malloc(k->h->mem, sizeof(*m));
    if (!m)
        return 0;
    flare__kad_msg_init(m, FLARE__KAD_PUT_VALUE);
    m->key = (flare__kad_bytes){q->key, q->klen};
    m->has_record = 1;
    m->rec_key = m->key;
    m->rec_value = (flare__kad_bytes){q->value, q->vlen};
    q->storing = 1;
    q->stores_pending = q->stored = 0;
    flare_buf req;
    flare_buf_init(&req, k->h->mem);
    for (size_t i = 0; i < n; i++) {
        int has = 0;
        for (size_t j = 0; j < q->nbest && !has; j++)
            has = flare_peerid_equal(&res[i], &q->with_best[j]);
        if (!has && rpc_start(k, q, &res[i], m, &req, 1) == 0)
            q->stores_pending++;
    }
    flare_buf_free(&req);
    flare__free(k->h->mem, m);
    return q->stores_pending > 0;
}

/* The ID of a decoded answer's peer: the codec let only valid ones through
 * (flare__kad_msg_decode), so it is copied, not parsed a second time. */
static int answer_peer(flare_peerid *id, const flare__kad_peer *p)
{
    if (!p->id.len || p->id.len > sizeof(id->bytes))
        return FLARE_ERR_MALFORMED;
    id->len = (uint8_t)p->id.len;
    memcpy(id->bytes, p->id.p, p->id.len);
    return 0;
}

static void query_on_reply(kad_query *q, const flare_peerid *from, const flare__kad_msg *m)
{
    kad_t *k = q->kad;
    if (q->storing) {
        q->stored++;
        q->stores_pending--;
        query_kick(q);
        return;
    }
    flare_peerid closer[FLARE__KAD_MAX_PEERS];
    size_t n = 0;
    for (size_t i = 0; m && i < m->ncloser; i++) {
        flare_peerid id;
        if (answer_peer(&id, &m->closer[i]))
            continue;
        learn_addrs(k, &id, &m->closer[i]);
        if (q->kind == Q_FIND_PEER && flare_peerid_equal(&id, &q->target) &&
            found_add(q, &id, &m->closer[i]))
            q->stop = q->found[0].naddrs > 0;
        closer[n++] = id;
    }
    if (q->kind == Q_FIND_PEER && flare_peerid_equal(from, &q->target) && found_add(q, from, NULL))
        q->stop = 1;
    for (size_t i = 0; m && q->kind == Q_PROVIDERS && i < m->nproviders; i++) {
        flare_peerid id;
        if (answer_peer(&id, &m->providers[i]))
            continue;
        learn_addrs(k, &id, &m->providers[i]);
        found_add(q, &id, &m->providers[i]);
        if (q->nfound == q->maxfound)
            q->stop = 1;
    }
    if (m && q->kind == Q_GET_VALUE)
        take_value(q, from, m);
    flare__kad_lookup_ok(&q->l, from, closer, n);
    query_kick(q);
}

static void query_on_fail(kad_query *q, const flare_peerid *from)
{
    if (q->storing)
        q->stores_pending--;
    else
        flare__kad_lookup_fail(&q->l, from);
    query_kick(q);
}

static void deliver(kad_query *q)
{
    kad_t *k = q->kad;
    flare_host *h = k->h;
    int st = q->status;
    switch (q->kind) {
    case Q_CLOSEST:
    case Q_FIND_PEER:
    case Q_PROVIDERS:
        if (q->peers_cb)
            q->peers_cb(h, st ? st : (q->nfound ? 0 : FLARE_ERR_NOT_FOUND), q->found, q->nfound,
                        q->user);
        break;
    case Q_GET_VALUE:
        if (q->value_cb)
            q->value_cb(h, st ? st : (q->value ? 0 : FLARE_ERR_NOT_FOUND), q->value, q->vlen,
                        q->user);
        break;
    case Q_PROVIDE:
    case Q_PUT:
        if (q->done_cb)
            q->done_cb(h, st ? st : (q->stored ? 0 : FLARE_ERR_UNREACHABLE), q->stored, q->user);
        break;
    case Q_REFRESH:
    case Q_WALK:
        break;
    }
}

/* Relay discovery: the walk's peers that serve the relay hop protocol get a
 * connection, where AutoRelay (which picks among connected, identified,
 * public hop servers) finds them, and AutoRelay learns which they are: a
 * uniform sample of the network's relays, unlike the peers every node
 * meets (its bootstrap nodes). */
static void connect_relays(kad_query *q)
{
    flare_host *h = q->kad->h;
    flare_peerid res[64], relays[64];
    size_t k = q->kad->cfg.k < 64 ? q->kad->cfg.k : 64; /* the sample: k closest to a random key */
    size_t n = flare__kad_lookup_result(&q->l, res, k), nrelays = 0;
    for (size_t i = 0; i < n; i++) {
        if (!flare__peerstore_supports(h->peerstore, &res[i], FLARE_RELAY_HOP_PROTOCOL))
            continue;
        relays[nrelays++] = res[i];
        flare_conn *c = flare_host_conn_to(h, &res[i]);
        if (!c || c->limited)
            flare_host_connect(h, &res[i], NULL, NULL, NULL);
    }
    flare__autorelay_walk_relays(h, relays, nrelays);
}

/* A refresh lookup (for a random key in a bucket, or our own ID) ended:
 * the hop servers among the peers that answered and that the lookup found
 * (not the seeds from our table, such as the bootstrap nodes every node
 * holds) are the same kind of sample as a walk's, and connected already.
 * AutoRelay takes them; a walk runs only when they are too few. */
static void met_relays(kad_query *q)
{
    flare_host *h = q->kad->h;
    flare_peerid relays[64];
    size_t n = 0;
    for (size_t i = 0; i < q->l.n && n < 64; i++) {
        const flare__kad_cand *c = &q->l.c[i];
        if (c->state == FLARE__KAD_C_OK && c->hop &&
            flare__peerstore_supports(h->peerstore, &c->id, FLARE_RELAY_HOP_PROTOCOL))
            relays[n++] = c->id;
    }
    flare__autorelay_met_relays(h, relays, n);
    kad_refresh_ended(q->kad, q);
}

static void finish(kad_query *q, int status)
{
    q->status = status;
    q->finishing = 1;
    query_kick(q);
}

/* The lookup ended: the result, or the stores for provide and put. */
static void lookup_ended(kad_query *q)
{
    kad_t *k = q->kad;
    int hops = flare__kad_lookup_hops(&q->l);

    k->lookups++;
    k->lookup_hops += hops > 0 ? (uint64_t)hops : 0;
    kad_lookup_covered(k, &q->l);
    if (q->kind == Q_CLOSEST) {
        flare_peerid res[64];
        size_t n = flare__kad_lookup_result(&q->l, res, k->cfg.k < 64 ? k->cfg.k : 64);
        for (size_t i = 0; i < n; i++)
            found_add(q, &res[i], NULL);
    }
    if (q->kind == Q_WALK)
        connect_relays(q);
    if (q->kind == Q_REFRESH)
        met_relays(q);
    if (q->kind != Q_PROVIDE && q->kind != Q_PUT) {
        finish(q, 0);
        return;
    }
    flare_peerid res[64];
    size_t n = flare__kad_lookup_result(&q->l, res, k->cfg.k < 64 ? k->cfg.k : 64);
    flare__kad_msg *m = flare__calloc(k->h->mem, 1, sizeof(*m));
    flare_multiaddr *store = flare__calloc(k->h->mem, FLARE__KAD_MAX_ADDRS, sizeof(*store));
    if (!m || !store) {
        flare__free(k->h->mem, m);
        flare__free(k->h->mem, store);
        finish(q, FLARE_ERR_NOMEM);
        return;
    }
    if (q->kind == Q_PROVIDE) {
        flare__kad_msg_init(m, FLARE__KAD_ADD_PROVIDER);
        kad_peer_view(k, &k->h->id, &m->providers[0], store);
        m->nproviders = 1;
    } else {
        flare__kad_msg_init(m, FLARE__KAD_PUT_VALUE);
        m->has_record = 1;
        m->rec_key = (flare__kad_bytes){q->key, q->klen};
        m->rec_value = (flare__kad_bytes){q->value, q->vlen};
    }
    m->key = (flare__kad_bytes){q->key, q->klen};
    q->storing = 1;
    flare_buf req;
    flare_buf_init(&req, k->h->mem);
    for (size_t i = 0; i < n; i++)
        if (rpc_start(k, q, &res[i], m, &req, q->kind == Q_PUT) == 0)
            q->stores_pending++;
    flare_buf_free(&req);
    flare__free(k->h->mem, m);
    flare__free(k->h->mem, store);
    if (!q->stores_pending)
        finish(q, 0);
}

static void query_step(kad_query *q)
{
    kad_t *k = q->kad;
    if (q->storing) {
        if (!q->stores_pending)
            finish(q, 0);
        return;
    }
    if (q->stop) {
        finish(q, 0);
        return;
    }
    flare__kad_msg *m = NULL;
    flare_buf req;
    flare_buf_init(&req, k->h->mem);
    flare_peerid who;
    int st;
    while ((st = flare__kad_lookup_next(&q->l, &who)) == FLARE__KAD_L_QUERY) {
        if (!m) {
            m = flare__malloc(k->h->mem, sizeof(*m));
            if (!m) {
                flare__kad_lookup_fail(&q->l, &who);
                continue;
            }
            flare__kad_msg_init(m, request_type(q->kind));
            m->key = (flare__kad_bytes){q->key, q->klen};
        }
        if (rpc_start(k, q, &who, m, &req, 1))
            flare__kad_lookup_fail(&q->l, &who);
    }
    flare_buf_free(&req);
    flare__free(k->h->mem, m);
    if (st == FLARE__KAD_L_DONE)
        lookup_ended(q);
}

static void query_timer(flare_io_timer *t, void *user)
{
    kad_query *q = user;
    (void)t;
    if (q->kad->h->destroying)
        return;
    if (q->finishing) {
        deliver(q);
        if (q->kind == Q_GET_VALUE && !q->corrected && !q->status && correct_peers(q)) {
            q->value_cb = NULL; /* answered; the corrections end quietly */
            q->finishing = 0;
            return;
        }
        query_free(q);
        return;
    }
    query_step(q);
}

void kad_query_start(kad_query *q)
{
    kad_t *k = q->kad;
    flare_peerid seeds[64];
    size_t n = flare__kad_rt_closest(&k->rt, &q->l.target, seeds, k->cfg.k < 64 ? k->cfg.k : 64);
    for (size_t i = 0; i < n; i++)
        flare__kad_lookup_seed(&q->l, &seeds[i]);
    if (!n && !q->stop) { /* nobody to ask: what we have locally is the answer */
        finish(q, q->nfound || q->value ? 0 : FLARE_ERR_UNREACHABLE);
        return;
    }
    query_kick(q);
}
