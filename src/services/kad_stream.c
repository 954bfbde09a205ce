/*
 * Kademlia request streams kept for reuse, and the idle limit of the
 * server's streams.
 *
 * A request stream that carried exactly one answer is kept open and the
 * next request to that peer goes out on it, saving the stream open, the
 * protocol negotiation and the close (as go-libp2p-kad-dht's message
 * sender; the spec allows several requests per stream). What a peer can
 * make us hold stays bounded: one kept stream per peer, KAD_MAX_IDLE in
 * all, each closed once unused for KAD_IDLE_CLIENT (by the next request,
 * or by a timer KAD_IDLE_LATE later when the node went quiet). A stream is
 * kept only while its connection is in its grace period: the connection
 * manager trims connections without streams first, and kept streams must
 * not change which ones it trims (nor the peer's manager, which sees the
 * other end). A kept stream the peer
 * closes, resets or sends anything on is dropped. The server side resets
 * streams that brought no request for KAD_IDLE_SERVER, so a peer cannot
 * hold ours open either (besides the per-connection stream limit).
 */
#include <string.h>

#include "core/mem.h"
#include "services/kad_svc.h"

static const flare_stream_cbs no_cbs = {0};

static uint64_t tag_of(const flare_peerid *id)
{
    uint64_t t = id->len;
    if (id->len >= 8)
        memcpy(&t, id->bytes + id->len - 8, 8); /* the digest's (or key's) tail */
    return t;
}

static long find_stream(const kad_t *k, const flare_stream *s)
{
    for (size_t i = 0; i < k->nidle; i++)
        if (k->idle[i].s == s)
            return (long)i;
    return -1;
}

static void drop_at(kad_t *k, size_t i)
{
    memmove(&k->idle[i], &k->idle[i + 1], (k->nidle - i - 1) * sizeof(*k->idle));
    k->nidle--;
}

/* Ends a kept stream with a reset, as go's message sender does: one packet,
 * where our FIN and the peer's answering one are two, each alone on the
 * wire by then (nothing of the stream is pending on either side). */
static void close_kept(flare_stream *s)
{
    flare_stream_set_user(s, &no_cbs, NULL);
    flare_stream_reset(s);
}

/* Bytes on a kept stream: nothing was asked, the peer misbehaves. */
static void idle_data(flare_stream *s, const uint8_t *data, size_t len, void *user)
{
    kad_t *k = user;
    (void)data, (void)len;
    long i = find_stream(k, s);
    if (i >= 0)
        drop_at(k, (size_t)i);
    flare_stream_set_user(s, &no_cbs, NULL);
    flare_stream_reset(s);
}

static void idle_eof(flare_stream *s, void *user)
{
    kad_t *k = user;
    long i = find_stream(k, s);
    if (i >= 0)
        drop_at(k, (size_t)i);
    flare_stream_set_user(s, &no_cbs, NULL);
    flare_stream_close_write(s); /* the peer closed: our FIN ends it cleanly */
}

static void idle_close(flare_stream *s, int err, void *user)
{
    kad_t *k = user;
    (void)err;
    long i = find_stream(k, s);
    if (i >= 0)
        drop_at(k, (size_t)i);
}

static const flare_stream_cbs idle_cbs = {
    .on_data = idle_data, .on_eof = idle_eof, .on_close = idle_close};

/* Closes the kept streams whose time is up. */
static void expire_kept(kad_t *k)
{
    flare_tstamp now = flare_io_now(k->h->io);
    size_t j = 0;
    for (size_t i = 0; i < k->nidle; i++) {
        if (k->idle[i].until <= now)
            close_kept(k->idle[i].s);
        else
            k->idle[j++] = k->idle[i];
    }
    k->nidle = j;
}

flare_stream *kad_idle_take(kad_t *k, const flare_peerid *peer)
{
    expire_kept(k);
    uint64_t tag = tag_of(peer);
    for (size_t i = 0; i < k->nidle; i++) {
        flare_stream *s = k->idle[i].s;
        if (k->idle[i].tag == tag &&
            flare_peerid_equal(flare_conn_peer(flare_stream_conn(s)), peer)) {
            drop_at(k, i);
            return s;
        }
    }
    return NULL;
}

void kad_idle_put(kad_t *k, const flare_peerid *peer, flare_stream *s)
{
    expire_kept(k);
    flare_tstamp now = flare_io_now(k->h->io);
    flare_tstamp until = now + KAD_IDLE_CLIENT;
    const flare_conn *c = flare_stream_conn(s);
    if (c->opened_at + k->h->cfg.conn_grace_period < until)
        until = c->opened_at + k->h->cfg.conn_grace_period;
    uint64_t tag = tag_of(peer);
    int dup = until <= now;
    for (size_t i = 0; i < k->nidle && !dup; i++)
        dup = k->idle[i].tag == tag &&
              flare_peerid_equal(flare_conn_peer(flare_stream_conn(k->idle[i].s)), peer);
    if (dup || k->h->destroying ||
        (!k->idle && !(k->idle = flare__calloc(k->h->mem, KAD_MAX_IDLE, sizeof(*k->idle))))) {
        close_kept(s);
        return;
    }
    if (k->nidle == KAD_MAX_IDLE) {
        close_kept(k->idle[0].s);
        drop_at(k, 0);
    }
    k->idle[k->nidle++] = (kad_idle){s, tag, until};
    flare_stream_set_user(s, &idle_cbs, k);
    kad_idle_arm(k);
}

/* When the timer must look (FLARE_TSTAMP_NEVER: nothing to look for).
 * While requests go out, each one closes the kept streams whose time is
 * up; the timer is the backstop for a node gone quiet, KAD_IDLE_LATE after
 * the first one's: a wake-up per node every KAD_IDLE_LATE at most, rather
 * than one per stream. */
static flare_tstamp next_expiry(const kad_t *k)
{
    flare_tstamp t = FLARE_TSTAMP_NEVER;
    for (size_t i = 0; i < k->nidle; i++)
        if (k->idle[i].until + KAD_IDLE_LATE < t)
            t = k->idle[i].until + KAD_IDLE_LATE;
    if (k->srv_head && k->srv_head->last + KAD_IDLE_SERVER < t)
        t = k->srv_head->last + KAD_IDLE_SERVER;
    return t;
}

static void idle_timer(flare_io_timer *t, void *user)
{
    kad_t *k = user;
    (void)t;
    k->idle_armed = 0;
    if (k->h->destroying)
        return;
    flare_tstamp now = flare_io_now(k->h->io);
    expire_kept(k);
    while (k->srv_head && now - k->srv_head->last >= KAD_IDLE_SERVER) {
        k->srv_idle_closed++;
        kad_srv_expire(k->srv_head); /* unlinks it */
    }
    kad_idle_arm(k);
}

void kad_idle_arm(kad_t *k)
{
    if (k->idle_armed)
        return;
    flare_tstamp at = next_expiry(k);
    if (at == FLARE_TSTAMP_NEVER)
        return;
    if (!k->idle_timer && k->h->io->ops->timer_new(k->h->io, idle_timer, k, &k->idle_timer))
        return;
    k->idle_armed = 1;
    k->h->io->ops->timer_start(k->idle_timer, at);
}

void kad_idle_free_all(kad_t *k)
{
    for (size_t i = 0; i < k->nidle; i++)
        flare_stream_set_user(k->idle[i].s, &no_cbs, NULL);
    k->nidle = 0;
    flare__free(k->h->mem, k->idle);
    k->idle = NULL;
    while (k->srv_head)
        kad_srv_unlink(k, k->srv_head);
    if (k->idle_timer)
        k->h->io->ops->timer_del(k->idle_timer);
    k->idle_timer = NULL;
}
