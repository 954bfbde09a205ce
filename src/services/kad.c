/*
 * The Kademlia DHT service (/ipfs/kad/1.0.0): its state, client/server mode,
 * the server side (answers to FIND_NODE, GET/PUT_VALUE, ADD/GET_PROVIDERS),
 * table maintenance (bootstrap, self lookup, refresh, republish) and the
 * public API of flare/kad.h. Requests and queries are in kad_query.c, the
 * protocol core in protocols/kad/.
 *
 * A private node must stay findable by peer ID: servers answering a
 * FIND_NODE for a peer they know addresses of (from identify, signed peer
 * record first) include that peer, and a node looks itself up after it
 * joins and after it gets a relay reservation, so that the servers closest
 * to its ID connect with it and learn its relayed addresses.
 */
#include <string.h>

#include "core/mem.h"
#include "flare/lpframe.h"
#include "services/kad_svc.h"

#define MIN_TICK (5 * FLARE_NS_PER_S)
/* A bootstrap round that failed is retried after a jittered back-off:
 * 1-2 s, doubling up to 15-30 s. Many nodes refused at once by a busy
 * bootstrap peer then come back spread out, and soon. */
#define BOOT_BACKOFF  (2 * FLARE_NS_PER_S)
#define BOOT_RETRY    (30 * FLARE_NS_PER_S)
#define WALK_INTERVAL (60 * FLARE_NS_PER_S)
#define FIRST_REFRESH (10 * FLARE_NS_PER_S) /* after the table first has a peer */

kad_t *kad_get(flare_host *h)
{
    return flare__svc_state(h, &flare__svc_kad);
}

uint64_t kad_group_of(kad_t *k, const flare_peerid *peer)
{
    flare_conn *c = flare_host_conn_to(k->h, peer);
    if (!c || c->limited)
        return 0;
    return flare__kad_ip_group(&c->remote_ip, k->h->cfg.doc_addrs_public);
}

static void emit(kad_t *k, const char *reason)
{
    flare_host_event ev = {.type = FLARE_HOST_EV_DHT};
    ev.u.dht.reason = reason;
    ev.u.dht.server = k->server;
    ev.u.dht.peers = k->rt.size;
    flare__host_emit(k->h, &ev);
}

static void schedule(kad_t *k, flare_tstamp at)
{
    k->tick_at = at;
    k->h->io->ops->timer_start(k->tick, at);
}

/* A server's far buckets only fill from lookups through them, and
 * everyone's lookups go through them: it refreshes them all once the self
 * lookup has shown how deep its table goes, not a whole refresh interval
 * later (until then its answers for keys far from it would stay a few hops
 * short of the peers near them). A client's table only seeds its own
 * lookups, and each of those fills the buckets it runs through (and counts
 * as their refresh): its first full refresh, ~40 connections at 10,000
 * nodes, waits for the refresh interval. */
static void first_refresh_soon(kad_t *k)
{
    flare_tstamp soon = flare_io_now(k->h->io) + FIRST_REFRESH;
    if (k->next_refresh > soon)
        k->next_refresh = soon;
    if (k->next_refresh < k->tick_at)
        schedule(k, k->next_refresh);
}

void kad_table_changed(kad_t *k)
{
    if (k->rt.size)
        k->boot_backoff = 0; /* a table that empties again starts over quickly */
    if (k->rt.size && !k->ready_reported) {
        k->ready_reported = 1;
        k->self_lookup_due = 1; /* the self lookup fills the buckets near us */
        if (k->server)
            first_refresh_soon(k);
        emit(k, "ready");
        schedule(k, flare_io_now(k->h->io));
    }
}

void kad_peer_view(kad_t *k, const flare_peerid *id, flare__kad_peer *p,
                   flare_multiaddr store[FLARE__KAD_MAX_ADDRS])
{
    memset(p, 0, sizeof(*p));
    p->id = (flare__kad_bytes){id->bytes, id->len};
    if (flare_peerid_equal(id, &k->h->id)) {
        p->naddrs = flare__addrs_advertised(k->h, store, FLARE__KAD_MAX_ADDRS);
    } else {
        /* The connection type is left NOT_CONNECTED (the field is advisory;
         * finding the connection costs a scan of all of them per peer). A
         * peer's signed record, when we hold one, is its own complete list:
         * unsigned addresses (gossip, possibly forged) are not passed on. */
        p->naddrs = flare__peerstore_addrs_certified(k->h->peerstore, id, flare_io_now(k->h->io),
                                                     store, FLARE__KAD_MAX_ADDRS);
    }
    for (size_t i = 0; i < p->naddrs; i++)
        p->addrs[i] = (flare__kad_bytes){store[i].bytes, store[i].len};
}

/* ---- the server side ------------------------------------------------------------------ */

/* An answer under construction: the message and what its views point at.
 * The peers' addresses are packed into one buffer as they come (an answer
 * holds a few short ones, not 2 * FLARE__KAD_MAX_PEERS * FLARE__KAD_MAX_ADDRS
 * slots of FLARE_MULTIADDR_MAX); the views point into it once it stops
 * moving (answer_seal). */
typedef struct answer {
    flare__kad_msg m;
    flare_peerid ids[2 * FLARE__KAD_MAX_PEERS];
    flare__kad_peer *views[2 * FLARE__KAD_MAX_PEERS];
    uint32_t off[2 * FLARE__KAD_MAX_PEERS][FLARE__KAD_MAX_ADDRS]; /* into packed */
    flare_buf packed;
    size_t nids;
    int err;
} answer;

static void add_peer(kad_t *k, answer *a, int provider, const flare_peerid *id)
{
    flare__kad_peer *list = provider ? a->m.providers : a->m.closer;
    size_t *n = provider ? &a->m.nproviders : &a->m.ncloser;
    if (*n == FLARE__KAD_MAX_PEERS || a->nids == 2 * FLARE__KAD_MAX_PEERS || a->err)
        return;
    flare_multiaddr store[FLARE__KAD_MAX_ADDRS];
    flare__kad_peer *p = &list[*n];
    a->ids[a->nids] = *id;
    kad_peer_view(k, &a->ids[a->nids], p, store);
    for (size_t i = 0; i < p->naddrs; i++) {
        a->off[a->nids][i] = (uint32_t)a->packed.len;
        if ((a->err = flare_buf_append(&a->packed, store[i].bytes, store[i].len)) != 0)
            return;
        p->addrs[i].p = NULL; /* until answer_seal */
    }
    a->views[a->nids++] = p;
    (*n)++;
}

/* Points the views at their addresses, which no longer move. */
static void answer_seal(answer *a)
{
    for (size_t j = 0; j < a->nids; j++)
        for (size_t i = 0; i < a->views[j]->naddrs; i++)
            a->views[j]->addrs[i].p = a->packed.base + a->off[j][i];
}

/* The k closest peers of our table to key, never the asker itself; the
 * peer the key names first, when we know where it is (peer routing for
 * peers outside every table: clients, private nodes). */
static void add_closer(kad_t *k, answer *a, const flare_peerid *asker, const flare__kad_msg *m)
{
    flare_peerid named;
    flare_multiaddr tmp[1];
    if (m->type == FLARE__KAD_FIND_NODE &&
        flare_peerid_from_bytes(&named, m->key.p, m->key.len) == 0 &&
        !flare_peerid_equal(&named, asker) &&
        (flare_peerid_equal(&named, &k->h->id) ||
         flare__peerstore_addrs(k->h->peerstore, &named, flare_io_now(k->h->io), tmp, 1)))
        add_peer(k, a, 0, &named);
    flare__kad_key target;
    flare__kad_key_of(&target, m->key.p, m->key.len);
    flare_peerid ids[FLARE__KAD_MAX_PEERS + 1];
    size_t want = k->cfg.k < FLARE__KAD_MAX_PEERS ? k->cfg.k : FLARE__KAD_MAX_PEERS;
    size_t n = flare__kad_rt_closest(&k->rt, &target, ids, want + 1);
    flare__peerstore_prefetch(k->h->peerstore, ids, n);
    for (size_t i = 0; i < n && a->m.ncloser < want; i++)
        if (!flare_peerid_equal(&ids[i], asker) &&
            !(a->m.ncloser && flare_peerid_equal(&ids[i], &a->ids[0])))
            add_peer(k, a, 0, &ids[i]);
}

/* ADD_PROVIDER: only the sender may announce itself. */
static void add_provider(kad_t *k, const flare_peerid *from, const flare__kad_msg *m)
{
    flare_tstamp now = flare_io_now(k->h->io);
    for (size_t i = 0; i < m->nproviders; i++) {
        const flare__kad_peer *p = &m->providers[i];
        if (p->id.len != from->len || memcmp(p->id.p, from->bytes, from->len) != 0)
            continue;
        if (flare__kad_providers_add(&k->provs, m->key.p, m->key.len, from, now) != 0)
            return;
        for (size_t j = 0; j < p->naddrs; j++) {
            flare_multiaddr ma;
            if (flare_multiaddr_from_bytes(&ma, p->addrs[j].p, p->addrs[j].len) == 0)
                flare__peerstore_add_addr(k->h->peerstore, from, &ma, now + k->cfg.provider_ttl);
        }
        return;
    }
}

/* Builds the answer to m into out (nothing for ADD_PROVIDER). Returns 0 or
 * an error (the stream is then reset). */
static int handle(kad_t *k, const flare_peerid *from, const flare__kad_msg *m, flare_buf *out)
{
    flare_tstamp now = flare_io_now(k->h->io);
    if (m->type == FLARE__KAD_ADD_PROVIDER) {
        add_provider(k, from, m);
        return 0;
    }
    if (m->type == FLARE__KAD_PUT_VALUE) {
        if (!m->has_record || m->rec_key.len != m->key.len ||
            memcmp(m->rec_key.p, m->key.p, m->key.len) != 0)
            return FLARE_ERR_PROTO;
        int rv = flare__kad_records_put(&k->recs, m->key.p, m->key.len, m->rec_value.p,
                                        m->rec_value.len, now);
        if (rv && rv != FLARE_ERR_EXISTS)
            return rv;
        return flare__kad_msg_encode(out, m); /* the answer echoes the request */
    }
    if (m->type == FLARE__KAD_PING)
        return flare__kad_msg_encode(out, m);
    /* Not zeroed: the views and offsets are written before they are read. */
    answer *a = flare__malloc(k->h->mem, sizeof(*a));
    if (!a)
        return FLARE_ERR_NOMEM;
    a->nids = 0;
    a->err = 0;
    flare_buf_init(&a->packed, k->h->mem);
    flare__kad_msg_init(&a->m, (flare__kad_type)m->type);
    a->m.key = m->key;
    if (m->type == FLARE__KAD_GET_PROVIDERS) {
        flare_peerid prov[FLARE__KAD_MAX_PEERS];
        size_t n = flare__kad_providers_get(&k->provs, m->key.p, m->key.len, now, prov,
                                            FLARE__KAD_MAX_PEERS);
        for (size_t i = 0; i < n; i++)
            add_peer(k, a, 1, &prov[i]);
    } else if (m->type == FLARE__KAD_GET_VALUE) {
        const flare__kad_record *r = flare__kad_records_get(&k->recs, m->key.p, m->key.len, now);
        if (r) {
            a->m.has_record = 1;
            a->m.rec_key = (flare__kad_bytes){r->key, r->klen};
            a->m.rec_value = (flare__kad_bytes){r->val, r->vlen};
        }
    }
    add_closer(k, a, from, m);
    int rv = a->err;
    if (rv == 0) {
        answer_seal(a);
        rv = flare__kad_msg_encode(out, &a->m);
    }
    flare_buf_free(&a->packed);
    flare__free(k->h->mem, a);
    return rv;
}

/* Requests are small (the largest is a PUT_VALUE of a largest value), and
 * what all streams hold of unfinished ones is bounded too, so peers cannot
 * make us buffer more than KAD_SRV_MEM between them. */
#define KAD_MAX_REQUEST (FLARE__KAD_MAX_VALUE + 2 * FLARE__KAD_MAX_KEY + 1024)
#define KAD_SRV_MEM     (2u << 20)

void kad_srv_unlink(kad_t *k, kad_srv *x)
{
    if (!x->listed)
        return;
    *(x->prev ? &x->prev->next : &k->srv_head) = x->next;
    *(x->next ? &x->next->prev : &k->srv_tail) = x->prev;
    x->prev = x->next = NULL;
    x->listed = 0;
}

void kad_srv_touch(kad_t *k, kad_srv *x)
{
    kad_srv_unlink(k, x);
    x->last = flare_io_now(k->h->io);
    x->prev = k->srv_tail;
    *(k->srv_tail ? &k->srv_tail->next : &k->srv_head) = x;
    k->srv_tail = x;
    x->listed = 1;
    kad_idle_arm(k);
}

static void srv_free(kad_srv *x)
{
    kad_t *k = kad_get(x->h);
    if (k) {
        k->srv_bytes -= x->in.len;
        kad_srv_unlink(k, x);
    }
    flare_buf_free(&x->in);
    flare__free(x->h->mem, x);
}

static void srv_abort(flare_stream *s, kad_srv *x)
{
    flare_stream_set_user(s, &(flare_stream_cbs){0}, NULL);
    flare_stream_reset(s);
    srv_free(x);
}

void kad_srv_expire(kad_srv *x)
{
    srv_abort(x->s, x);
}

/* Answers every complete request, in order. Requests are read where they
 * lie (the views of the decoded message point into them until the answer
 * is encoded); only a partial one is copied to wait for the rest. */
static void srv_data(flare_stream *s, const uint8_t *data, size_t len, void *user)
{
    kad_srv *x = user;
    kad_t *k = kad_get(x->h);
    if (!k || !k->server || x->in.len + len > KAD_MAX_REQUEST + 10 ||
        k->srv_bytes + len > KAD_SRV_MEM || (x->in.len && flare_buf_append(&x->in, data, len))) {
        srv_abort(s, x);
        return;
    }
    int held = x->in.len > 0; /* the input is x->in (its own bytes included), not data */
    const uint8_t *in = held ? x->in.base : data;
    size_t inlen = held ? x->in.len : len, used = 0;
    if (held)
        k->srv_bytes += len;
    kad_srv_touch(k, x);
    const flare_peerid *from = flare_conn_peer(flare_stream_conn(s));
    flare__kad_msg *m = flare__malloc(x->h->mem, sizeof(*m));
    flare_buf out;
    flare_buf_init(&out, x->h->mem);
    int rv = m ? 0 : FLARE_ERR_NOMEM;
    while (rv == 0) {
        const uint8_t *msg;
        size_t mlen;
        int n = flare_lpframe_parse(in + used, inlen - used, KAD_MAX_REQUEST, &msg, &mlen);
        if (n == FLARE_ERR_AGAIN)
            break;
        rv = n < 0 ? n : flare__kad_msg_decode(m, msg, mlen);
        if (rv == 0)
            rv = handle(k, from, m, &out);
        if (rv == 0)
            used += (size_t)n;
    }
    if (held) {
        flare_buf_consume(&x->in, used);
        k->srv_bytes -= used;
    } else if (rv == 0 && used < len) {
        if (flare_buf_append(&x->in, data + used, len - used))
            rv = FLARE_ERR_NOMEM;
        else
            k->srv_bytes += len - used;
    }
    if (rv == 0 && out.len && flare_stream_write(s, out.base, out.len) < 0)
        rv = FLARE_ERR_CLOSED;
    if (rv == 0 && !x->in.len)
        flare_buf_free(&x->in); /* a stream kept for more requests holds no buffer */
    flare_buf_free(&out);
    flare__free(x->h->mem, m);
    if (rv)
        srv_abort(s, x);
}

static void srv_eof(flare_stream *s, void *user)
{
    (void)user;
    flare_stream_close_write(s);
}

static void srv_close(flare_stream *s, int err, void *user)
{
    (void)s;
    (void)err;
    srv_free(user);
}

static const flare_stream_cbs srv_cbs = {
    .on_data = srv_data, .on_eof = srv_eof, .on_close = srv_close};

static void srv_open(flare_stream *s, int status, void *user)
{
    flare_host *h = user;
    if (status)
        return;
    kad_t *k = kad_get(h);
    kad_srv *x = k ? flare__calloc(h->mem, 1, sizeof(*x)) : NULL;
    if (!x) {
        flare_stream_reset(s);
        return;
    }
    x->h = h;
    x->s = s;
    flare_buf_init(&x->in, h->mem);
    flare_stream_set_user(s, &srv_cbs, x);
    kad_srv_touch(k, x);
}

static const flare_stream_cbs srv_open_cbs = {.on_open = srv_open};

/* ---- mode ------------------------------------------------------------------------------- */

static void set_server(kad_t *k, int on)
{
    if (k->server == on && !k->announce_mode)
        return;
    k->announce_mode = 0;
    if (on && !k->server && k->ready_reported && !k->refreshed)
        first_refresh_soon(k);
    k->server = on;
    if (on)
        flare_host_set_handler(k->h, FLARE__KAD_ID, &srv_open_cbs, k->h, 0);
    else
        flare_host_remove_handler(k->h, FLARE__KAD_ID);
    emit(k, "mode");
    flare_host_identify_push(k->h); /* peers learn whether to ask us */
}

static void update_mode(kad_t *k)
{
    if (k->mode != FLARE_KAD_MODE_AUTO) {
        set_server(k, k->mode == FLARE_KAD_MODE_SERVER);
        return;
    }
    flare_reach_state r4 = flare_host_reachability(k->h, 4), r6 = flare_host_reachability(k->h, 6);
    set_server(k, r4 == FLARE_REACH_PUBLIC || r6 == FLARE_REACH_PUBLIC);
}

/* ---- maintenance ------------------------------------------------------------------------ */

/* follow_up 0: the lookup ends once the beta closest answered, without
 * asking the rest of the k closest (flare__kad_lookup). */
static void lookup_for_table(kad_t *k, const uint8_t *key, size_t klen, int follow_up)
{
    kad_query *q = kad_query_new(k, Q_REFRESH, key, klen);
    if (!q)
        return;
    q->l.no_followup = !follow_up;
    kad_query_start(q);
}

/* The self lookup, and one for a random key in each bucket up to the
 * deepest peer's (at most KAD_MAX_REFRESH_CPL), as go. A bucket that some
 * lookup (a walk, a find, an earlier refresh, the self lookup for the
 * buckets it completes) ran through to its end in the last half interval
 * is skipped: that lookup did the same; so is the self lookup. (go skips
 * those of the last whole interval, so each refresh's own lookups make the
 * next one skip them all; half keeps every bucket refreshed at least every
 * one and a half intervals.) A random key in bucket cpl: its preimage is
 * unknown, so the lookup is for the key itself (a FIND_NODE key is hashed
 * by the receiver too). We search for keys whose hash lands in the bucket
 * instead.
 *
 * Bucket lookups end once the beta closest answered, without go's
 * follow-up to the rest of the k closest. That follow-up serves queries
 * with state (values, providers) and the stores after a lookup; a refresh
 * stores nothing. A client's table only seeds its own lookups; a server's
 * far buckets also seed everyone's, and the follow-up would fill them to
 * k from the start, but at ~13 new connections per bucket it was a third of
 * all connections in the whole flow, and the tables fill anyway from the
 * servers that reach us: lookups over tables left ~70-85 % full found every
 * target (docs/benchmarks.md). The self lookup keeps it: the servers
 * closest to us must connect. */
static int fresh(const kad_t *k, flare_tstamp last, flare_tstamp now)
{
    return last && now - last < k->cfg.refresh_interval / 2;
}

void kad_lookup_covered(kad_t *k, const flare__kad_lookup *l)
{
    if (!l->answered)
        return;
    flare_tstamp now = flare_io_now(k->h->io);
    int cpl = flare__kad_cpl(&k->rt.self_key, &l->target);
    if (cpl <= KAD_MAX_REFRESH_CPL)
        k->cpl_refreshed[cpl] = now;
    if (cpl != 256)
        return;
    /* Our own ID: the k closest peers that answered hold every peer
     * sharing more leading bits with us than the farthest of them does, so
     * the buckets past that one are complete: a lookup of a key in one of
     * them would end among the same peers. */
    flare_peerid res[64];
    size_t n = flare__kad_lookup_result(l, res, k->cfg.k < 64 ? k->cfg.k : 64);
    k->self_refreshed = now;
    if (n < (k->cfg.k < 64 ? k->cfg.k : 64))
        return;
    flare__kad_key far;
    flare__kad_key_of_peer(&far, &res[n - 1]);
    for (int c = flare__kad_cpl(&k->rt.self_key, &far) + 1; c <= KAD_MAX_REFRESH_CPL; c++)
        k->cpl_refreshed[c] = now;
}

static void refresh(kad_t *k)
{
    uint8_t self[FLARE_PEERID_MAX];
    flare_tstamp now = flare_io_now(k->h->io);
    memcpy(self, k->h->id.bytes, k->h->id.len);
    k->refreshed = 1;
    if (!fresh(k, k->self_refreshed, now))
        lookup_for_table(k, self, k->h->id.len, 1);
    int max = flare__kad_rt_max_cpl(&k->rt);
    if (max > KAD_MAX_REFRESH_CPL)
        max = KAD_MAX_REFRESH_CPL;
    for (int cpl = 0; cpl <= max; cpl++) {
        if (fresh(k, k->cpl_refreshed[cpl], now)) {
            k->refresh_skipped++;
            continue;
        }
        /* Random 8-byte keys until one hashes into the bucket: 2^(cpl+1)
         * tries on average, bounded. */
        uint8_t key[8];
        flare__kad_key kk;
        for (int t = 0; t < 4096; t++) {
            k->h->rng.fn(key, sizeof(key), k->h->rng.user);
            flare__kad_key_of(&kk, key, sizeof(key));
            if (flare__kad_cpl(&k->rt.self_key, &kk) == cpl) {
                lookup_for_table(k, key, sizeof(key), 0);
                break;
            }
        }
    }
}

/* Probes every bootstrap peer at once (as go connects to all of them):
 * the first to answer fills the table. */
static void bootstrap(kad_t *k)
{
    flare_tstamp exp = flare_io_now(k->h->io) + KAD_ADDR_TTL;
    for (size_t i = 0; i < k->nboot; i++) {
        flare_peerid id;
        flare_multiaddr bare = k->boot[i];
        if (flare_multiaddr_get_peerid(&bare, &id) || flare_peerid_equal(&id, &k->h->id))
            continue;
        flare_multiaddr_decapsulate(&bare, FLARE_MA_P2P);
        flare__peerstore_add_addr(k->h->peerstore, &id, &bare, exp);
        kad_probe(k, &id, 1);
    }
}

void kad_probe_failed(kad_t *k)
{
    flare_host *h = k->h;
    if (k->rt.size || !k->nboot || k->nprobes || h->destroying)
        return; /* joined, nothing to retry, or the round is still out */
    flare_tstamp d = k->boot_backoff ? k->boot_backoff : BOOT_BACKOFF;
    uint64_t r;
    h->rng.fn((uint8_t *)&r, sizeof(r), h->rng.user);
    flare_tstamp at = flare_io_now(h->io) + d / 2 + r % (d / 2 + 1);
    k->boot_backoff = d * 2 < BOOT_RETRY ? d * 2 : BOOT_RETRY;
    if (at < k->next_boot) {
        k->next_boot = at;
        if (at < k->tick_at)
            schedule(k, at);
    }
}

static void republish(kad_t *k)
{
    for (size_t i = 0; i < k->nprovided; i++) {
        kad_query *q = kad_query_new(k, Q_PROVIDE, k->provided[i].key, k->provided[i].klen);
        if (q)
            kad_query_start(q);
    }
}

static void tick(flare_io_timer *t, void *user)
{
    kad_t *k = user;
    (void)t;
    flare_host *h = k->h;
    flare_tstamp now = flare_io_now(h->io);
    if (h->destroying)
        return;
    if (k->announce_mode)
        update_mode(k);
    if (!k->rt.size && now >= k->next_boot) {
        bootstrap(k);
        k->next_boot = now + BOOT_RETRY;
    }
    if (k->rt.size && (k->self_lookup_due || now >= k->next_refresh)) {
        if (now >= k->next_refresh) {
            refresh(k);
            k->next_refresh = now + k->cfg.refresh_interval;
        } else {
            lookup_for_table(k, h->id.bytes, h->id.len, 1);
        }
        k->self_lookup_due = 0;
    }
    if (k->rt.size && now >= k->next_republish) {
        republish(k);
        k->next_republish = now + k->cfg.republish_interval;
    }
    flare__kad_providers_expire(&k->provs, now);
    flare_tstamp next = k->next_refresh < k->next_republish ? k->next_refresh : k->next_republish;
    next = next > now + MIN_TICK ? next : now + MIN_TICK;
    if (!k->rt.size && k->next_boot < next)
        next = k->next_boot > now ? k->next_boot : now + MIN_TICK;
    schedule(k, next);
}

/* ---- hooks ---------------------------------------------------------------------------------- */

static void kad_identified(flare_host *h, void *state, flare_conn *c)
{
    kad_t *k = state;
    if (!k || c->limited || h->destroying || flare__kad_rt_has(&k->rt, &c->peer) ||
        !flare__peerstore_supports(h->peerstore, &c->peer, FLARE__KAD_ID))
        return;
    kad_probe(k, &c->peer, 0);
}

/* Relay discovery without a walk when the refresh lookups (random keys all
 * over the key space, like a walk's) met enough relays: twice the
 * reservations AutoRelay keeps, so its random pick still spreads them. */
static int enough_relays(kad_t *k)
{
    return flare__autorelay_sampled(k->h) >= 2 * k->h->cfg.autorelay_num;
}

static int refresh_running(kad_t *k, const kad_query *except)
{
    for (const kad_query *q = k->queries; q; q = q->next)
        if (q != except && q->kind == Q_REFRESH && !q->finishing)
            return 1;
    return 0;
}

/* A walk to a random key: its hop servers get a connection and AutoRelay
 * prefers them (kad_query.c). */
static void start_walk(kad_t *k)
{
    flare_host *h = k->h;
    uint8_t key[32];
    h->rng.fn(key, sizeof(key), h->rng.user);
    kad_query *q = kad_query_new(k, Q_WALK, key, sizeof(key));
    if (q) {
        k->walks++;
        flare__autorelay_walk_started(h);
        kad_query_start(q);
    }
    k->next_walk = flare_io_now(h->io) + WALK_INTERVAL;
}

void kad_refresh_ended(kad_t *k, const kad_query *q)
{
    if (!k->walk_deferred || k->h->destroying)
        return;
    if (enough_relays(k)) {
        k->walk_deferred = 0;
        k->walks_skipped++;
    } else if (!refresh_running(k, q)) {
        k->walk_deferred = 0;
        start_walk(k);
    }
}

static void kad_event(flare_host *h, void *state, const flare_host_event *ev)
{
    kad_t *k = state;
    if (!k || h->destroying)
        return;
    if (ev->type == FLARE_HOST_EV_REACHABILITY) {
        update_mode(k);
    } else if (ev->type == FLARE_HOST_EV_AUTORELAY && k->rt.size &&
               flare_io_now(h->io) >= k->next_walk &&
               (strcmp(ev->u.autorelay.reason, "start") == 0 ||
                strcmp(ev->u.autorelay.reason, "backoff") == 0 ||
                strcmp(ev->u.autorelay.reason, "replaced") == 0)) {
        /* AutoRelay wants relays: those our refresh lookups met, if enough;
         * else those of the lookups still out, else a walk's. */
        if (enough_relays(k)) {
            k->walks_skipped++;
        } else if (refresh_running(k, NULL)) {
            if (!k->walk_deferred)
                flare__autorelay_walk_started(h);
            k->walk_deferred = 1;
        } else {
            start_walk(k);
        }
    } else if (ev->type == FLARE_HOST_EV_RESERVATION_OK && k->rt.size) {
        /* New relayed addresses: the servers near our ID should learn them. */
        k->self_lookup_due = 1;
        schedule(k, flare_io_now(h->io));
    }
}

static void kad_free(flare_host *h, void *state)
{
    kad_t *k = state;
    if (!k)
        return;
    kad_query_free_all(k);
    kad_rpcs_free_all(k);
    kad_idle_free_all(k);
    if (k->tick)
        h->io->ops->timer_del(k->tick);
    flare__kad_rt_free(&k->rt);
    flare__kad_records_free(&k->recs);
    flare__kad_providers_free(&k->provs);
    flare__free(h->mem, k->boot);
    flare__free(h->mem, k->provided);
    flare__free(h->mem, k);
}

static const flare__svc_stream_limit limits[] = {{FLARE__KAD_ID, 16}, {NULL, 0}};

const flare__service flare__svc_kad = {
    .name = "kad",
    .stream_limits = limits,
    .free = kad_free,
    .on_conn_identified = kad_identified,
    .on_event = kad_event,
};

/* ---- public API ------------------------------------------------------------------------------ */

void flare_kad_settings_default(flare_kad_settings *s)
{
    memset(s, 0, sizeof(*s));
    s->struct_size = sizeof(*s);
    s->mode = FLARE_KAD_MODE_AUTO;
    s->k = FLARE__KAD_K;
    s->alpha = FLARE__KAD_ALPHA;
    s->beta = FLARE__KAD_BETA;
    s->disjoint_paths = 1;
    s->request_timeout = 10 * FLARE_NS_PER_S;
    s->refresh_interval = 10 * 60 * FLARE_NS_PER_S;
    s->provider_ttl = 48ull * 3600 * FLARE_NS_PER_S;
    s->republish_interval = 22ull * 3600 * FLARE_NS_PER_S;
    s->record_ttl = 36ull * 3600 * FLARE_NS_PER_S;
    s->max_records = 1024;
    s->max_provider_keys = 4096;
    s->get_quorum = 0;
}

static int check_settings(const flare_kad_settings *s)
{
    if (s->struct_size != sizeof(*s) || !s->k || !s->alpha || !s->beta || !s->request_timeout ||
        !s->refresh_interval || !s->republish_interval || s->mode > FLARE_KAD_MODE_SERVER ||
        (s->nbootstrap && !s->bootstrap))
        return FLARE_ERR_INVALID_ARG;
    for (size_t i = 0; i < s->nbootstrap; i++) {
        flare_peerid id;
        if (flare_multiaddr_get_peerid(&s->bootstrap[i], &id))
            return FLARE_ERR_INVALID_ARG;
    }
    return 0;
}

static kad_t *kad_new(flare_host *h, const flare_kad_settings *s)
{
    kad_t *k = flare__calloc(h->mem, 1, sizeof(*k));
    if (!k)
        return NULL;
    k->h = h;
    k->cfg = *s;
    k->cfg.bootstrap = NULL;
    k->nboot = s->nbootstrap < KAD_MAX_BOOT ? s->nbootstrap : KAD_MAX_BOOT;
    if (k->nboot && !(k->boot = flare__calloc(h->mem, k->nboot, sizeof(*k->boot)))) {
        flare__free(h->mem, k);
        return NULL;
    }
    for (size_t i = 0; i < k->nboot; i++)
        k->boot[i] = s->bootstrap[i];
    k->cfg.nbootstrap = k->nboot;
    k->mode = s->mode;
    flare__kad_rt_cfg rc = {s->k, s->k / 2, 2, 10};
    flare__kad_rt_init(&k->rt, &h->id, &rc, h->mem);
    flare__kad_records_init(&k->recs, s->max_records, s->record_ttl, h->mem);
    flare__kad_records_add_validator(&k->recs, &flare__kad_pk_validator);
    flare__kad_providers_init(&k->provs, s->max_provider_keys, 0, s->provider_ttl, h->mem);
    flare_tstamp now = flare_io_now(h->io);
    k->next_refresh = now + s->refresh_interval;
    k->next_republish = now + s->republish_interval;
    if (h->io->ops->timer_new(h->io, tick, k, &k->tick)) {
        kad_free(h, k);
        return NULL;
    }
    return k;
}

int flare_kad_enable(flare_host *h, const flare_kad_settings *s)
{
    flare_kad_settings def;
    if (!s) {
        flare_kad_settings_default(&def);
        s = &def;
    }
    void **slot = flare__svc_state_slot(h, &flare__svc_kad);
    if (!slot)
        return FLARE_ERR_STATE;
    if (*slot)
        return FLARE_ERR_EXISTS;
    int rv = check_settings(s);
    if (rv)
        return rv;
    kad_t *k = kad_new(h, s);
    if (!k)
        return FLARE_ERR_NOMEM;
    *slot = k;
    k->announce_mode = 1; /* the first "mode" event, from the loop */
    schedule(k, flare_io_now(h->io));
    return 0;
}

int flare_kad_is_server(flare_host *h)
{
    kad_t *k = kad_get(h);
    return k ? k->server : 0;
}

size_t flare_kad_routing_table_size(flare_host *h)
{
    kad_t *k = kad_get(h);
    return k ? k->rt.size : 0;
}

size_t flare_kad_routing_table(flare_host *h, flare_peerid *out, size_t cap)
{
    kad_t *k = kad_get(h);
    size_t n = 0;
    for (const flare__kad_rt_entry *e; k && n < cap && (e = flare__kad_rt_at(&k->rt, n));)
        out[n++] = e->id;
    return n;
}

int flare_kad_set_mode(flare_host *h, flare_kad_mode mode)
{
    kad_t *k = kad_get(h);
    if (!k)
        return FLARE_ERR_STATE;
    if (mode > FLARE_KAD_MODE_SERVER)
        return FLARE_ERR_INVALID_ARG;
    k->mode = mode;
    update_mode(k);
    return 0;
}

int flare_kad_add_validator(flare_host *h, const char *ns, flare_kad_validate_cb validate,
                            flare_kad_select_cb select, void *user)
{
    kad_t *k = kad_get(h);
    if (!k)
        return FLARE_ERR_STATE;
    if (!ns || !validate || !select || strlen(ns) > FLARE__KAD_MAX_NS)
        return FLARE_ERR_INVALID_ARG;
    flare__kad_validator v = {.validate = validate, .select = select, .user = user};
    memcpy(v.ns, ns, strlen(ns) + 1);
    return flare__kad_records_add_validator(&k->recs, &v);
}

static kad_query *peers_query(flare_host *h, kad_qkind kind, const uint8_t *key, size_t klen,
                              size_t max, flare_kad_peers_cb cb, void *user, int *err)
{
    kad_t *k = kad_get(h);
    *err = !k                                             ? FLARE_ERR_STATE
           : (!key || !klen || klen > FLARE__KAD_MAX_KEY) ? FLARE_ERR_INVALID_ARG
                                                          : 0;
    if (*err)
        return NULL;
    kad_query *q = kad_query_new(k, kind, key, klen);
    if (q) {
        q->maxfound = max;
        q->found = flare__calloc(h->mem, max ? max : 1, sizeof(*q->found));
    }
    if (!q || !q->found) {
        if (q)
            q->stop = 1, kad_query_start(q); /* freed from the loop, quietly */
        *err = FLARE_ERR_NOMEM;
        return NULL;
    }
    q->peers_cb = cb;
    q->user = user;
    return q;
}

int flare_kad_closest_peers(flare_host *h, const uint8_t *key, size_t klen, flare_kad_peers_cb cb,
                            void *user)
{
    int err;
    kad_t *k = kad_get(h);
    kad_query *q = peers_query(h, Q_CLOSEST, key, klen, k ? k->cfg.k : 0, cb, user, &err);
    if (q)
        kad_query_start(q);
    return err;
}

int flare_kad_find_peer(flare_host *h, const flare_peerid *peer, flare_kad_peers_cb cb, void *user)
{
    if (!peer || !peer->len)
        return FLARE_ERR_INVALID_ARG;
    int err;
    kad_query *q = peers_query(h, Q_FIND_PEER, peer->bytes, peer->len, 1, cb, user, &err);
    if (!q)
        return err;
    q->target = *peer;
    flare_conn *c = flare_host_conn_to(h, peer);
    if (c && !c->limited) {
        q->nfound = 1;
        q->found[0].id = *peer;
        q->found[0].naddrs = flare__peerstore_addrs(h->peerstore, peer, flare_io_now(h->io),
                                                    q->found[0].addrs, FLARE_KAD_MAX_ADDRS);
        q->stop = 1;
    }
    kad_query_start(q);
    return 0;
}

int flare_kad_find_providers(flare_host *h, const uint8_t *key, size_t klen, size_t max,
                             flare_kad_peers_cb cb, void *user)
{
    int err;
    if (!max)
        max = FLARE__KAD_K;
    kad_query *q = peers_query(h, Q_PROVIDERS, key, klen, max, cb, user, &err);
    if (!q)
        return err;
    kad_t *k = kad_get(h);
    flare_peerid local[FLARE__KAD_MAX_PEERS];
    size_t n = flare__kad_providers_get(&k->provs, key, klen, flare_io_now(h->io), local,
                                        FLARE__KAD_MAX_PEERS);
    for (size_t i = 0; i < n && q->nfound < max; i++) {
        flare_kad_peer *f = &q->found[q->nfound++];
        f->id = local[i];
        if (flare_peerid_equal(&local[i], &h->id))
            f->naddrs = flare__addrs_advertised(h, f->addrs, FLARE_KAD_MAX_ADDRS);
        else
            f->naddrs = flare__peerstore_addrs(h->peerstore, &local[i], flare_io_now(h->io),
                                               f->addrs, FLARE_KAD_MAX_ADDRS);
    }
    if (q->nfound == max)
        q->stop = 1;
    kad_query_start(q);
    return 0;
}

int flare_kad_provide(flare_host *h, const uint8_t *key, size_t klen, flare_kad_done_cb cb,
                      void *user)
{
    kad_t *k = kad_get(h);
    if (!k)
        return FLARE_ERR_STATE;
    if (!key || !klen || klen > 64)
        return FLARE_ERR_INVALID_ARG;
    size_t i = 0;
    while (i < k->nprovided &&
           !(k->provided[i].klen == klen && memcmp(k->provided[i].key, key, klen) == 0))
        i++;
    if (i == k->nprovided) {
        if (k->nprovided == KAD_MAX_PROVIDED)
            return FLARE_ERR_LIMIT;
        if (!k->provided &&
            !(k->provided = flare__calloc(h->mem, KAD_MAX_PROVIDED, sizeof(*k->provided))))
            return FLARE_ERR_NOMEM;
        memcpy(k->provided[i].key, key, klen);
        k->provided[i].klen = (uint8_t)klen;
        k->nprovided++;
    }
    if (k->server)
        flare__kad_providers_add(&k->provs, key, klen, &h->id, flare_io_now(h->io));
    kad_query *q = kad_query_new(k, Q_PROVIDE, key, klen);
    if (!q)
        return FLARE_ERR_NOMEM;
    q->done_cb = cb;
    q->user = user;
    kad_query_start(q);
    return 0;
}

int flare_kad_stop_providing(flare_host *h, const uint8_t *key, size_t klen)
{
    kad_t *k = kad_get(h);
    for (size_t i = 0; k && i < k->nprovided; i++)
        if (k->provided[i].klen == klen && memcmp(k->provided[i].key, key, klen) == 0) {
            k->provided[i] = k->provided[--k->nprovided];
            return 0;
        }
    return FLARE_ERR_NOT_FOUND;
}

int flare_kad_put_value(flare_host *h, const uint8_t *key, size_t klen, const uint8_t *value,
                        size_t vlen, flare_kad_done_cb cb, void *user)
{
    kad_t *k = kad_get(h);
    if (!k)
        return FLARE_ERR_STATE;
    if (!key || !klen || klen > FLARE__KAD_MAX_KEY || (vlen && !value))
        return FLARE_ERR_INVALID_ARG;
    int rv = flare__kad_record_validate(&k->recs, key, klen, value, vlen);
    if (rv)
        return rv;
    if (k->server)
        flare__kad_records_put(&k->recs, key, klen, value, vlen, flare_io_now(h->io));
    kad_query *q = kad_query_new(k, Q_PUT, key, klen);
    if (!q)
        return FLARE_ERR_NOMEM;
    q->value = flare__malloc(h->mem, vlen ? vlen : 1);
    if (!q->value) {
        q->stop = 1;
        kad_query_start(q);
        return FLARE_ERR_NOMEM;
    }
    memcpy(q->value, value, vlen);
    q->vlen = vlen;
    q->done_cb = cb;
    q->user = user;
    kad_query_start(q);
    return 0;
}

int flare_kad_get_value_quorum(flare_host *h, const uint8_t *key, size_t klen, size_t quorum,
                               flare_kad_value_cb cb, void *user)
{
    kad_t *k = kad_get(h);
    if (!k)
        return FLARE_ERR_STATE;
    if (!key || !klen || klen > FLARE__KAD_MAX_KEY)
        return FLARE_ERR_INVALID_ARG;
    kad_query *q = kad_query_new(k, Q_GET_VALUE, key, klen);
    if (!q)
        return FLARE_ERR_NOMEM;
    q->value_cb = cb;
    q->user = user;
    q->quorum = quorum;
    kad_query_take_local(q);
    kad_query_start(q);
    return 0;
}

int flare_kad_get_value(flare_host *h, const uint8_t *key, size_t klen, flare_kad_value_cb cb,
                        void *user)
{
    kad_t *k = kad_get(h);
    return flare_kad_get_value_quorum(h, key, klen, k ? k->cfg.get_quorum : 0, cb, user);
}

int flare_kad_pk_record(flare_host *h, uint8_t *key, size_t *klen, uint8_t *value, size_t *vlen)
{
    const flare_peerid *id = &h->id;
    if (*klen < 4 + (size_t)id->len)
        return FLARE_ERR_BUFFER_TOO_SMALL;
    int n = flare_pubkey_encode(&h->key.pub, value, *vlen);
    if (n < 0)
        return FLARE_ERR_BUFFER_TOO_SMALL;
    memcpy(key, "/pk/", 4);
    memcpy(key + 4, id->bytes, id->len);
    *klen = 4 + id->len;
    *vlen = (size_t)n;
    return 0;
}
