/*
 * Kademlia request streams kept for reuse, and the idle limit of the
 * server's streams.
 *
 * A request stream that carried exactly one answer is kept open and the
 * next request to that peer goes out on it, saving the stream open, the
 * protocol negotiation and the close (as go-libp2p-kad-dht's message
 * sender; the spec allows several requests per stream). What a peer can
 * make us hold stays bounded: one kept stream per peer, KAD_MAX_IDLE in
 * all, each closed after 3/4 to all of KAD_IDLE_CLIENT unused (the expiries
 * of a quarter of it are batched into one wake-up). A kept stream the peer
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

/* Ends a kept stream gracefully: our FIN, then theirs. */
static void close_kept(flare_stream *s)
{
    flare_stream_set_user(s, &no_cbs, NULL);
    flare_stream_close_write(s);
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
    close_kept(s);
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

flare_stream *kad_idle_take(kad_t *k, const flare_peerid *peer)
{
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
    uint64_t tag = tag_of(peer);
    int dup = 0;
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
    k->idle[k->nidle++] = (kad_idle){s, tag, flare_io_now(k->h->io)};
    flare_stream_set_user(s, &idle_cbs, k);
    kad_idle_arm(k);
}

/* The earliest moment something idles out (FLARE_TSTAMP_NEVER: nothing). */
static flare_tstamp next_expiry(const kad_t *k)
{
    flare_tstamp t = FLARE_TSTAMP_NEVER;
    if (k->nidle)
        t = k->idle[0].since + KAD_IDLE_CLIENT;
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
    /* Whatever idles out within a quarter of the limit goes now too: one
     * wake-up for many streams rather than one each. */
    while (k->nidle && now - k->idle[0].since >= KAD_IDLE_CLIENT - KAD_IDLE_CLIENT / 4) {
        flare_stream *s = k->idle[0].s;
        drop_at(k, 0);
        close_kept(s);
    }
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
