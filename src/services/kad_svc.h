/* Internal declarations of the Kademlia DHT service: kad.c (state, mode,
 * the server side, maintenance, public API) and kad_query.c (requests to
 * peers and the queries built from them). */
#ifndef FLARE_SERVICES_KAD_SVC_H
#define FLARE_SERVICES_KAD_SVC_H

#include "flare/kad.h"
#include "protocols/kad/kad.h"
#include "services/services.h"

#define KAD_MAX_BOOT        64
#define KAD_MAX_PROVIDED    64
#define KAD_MAX_PROBES      8                          /* admission exchanges at a time */
#define KAD_ADDR_TTL        (30 * 60 * FLARE_NS_PER_S) /* addresses learnt from answers */
#define KAD_MAX_REFRESH_CPL 15 /* as go: deeper buckets fill from the self lookup */
/* Request streams kept open for the next request to the same peer: at most
 * one per peer and KAD_MAX_IDLE in all, each closed after KAD_IDLE_CLIENT
 * unused or when its connection leaves its grace period (a node that sends
 * no more requests: KAD_IDLE_LATE later), before the servers give up on it (js-libp2p's after 10 s
 * without a request, go-libp2p-kad-dht's after 1 min). The server side resets a stream that brought
 * no request for KAD_IDLE_SERVER (go's). */
#define KAD_MAX_IDLE    16
#define KAD_IDLE_CLIENT (8 * FLARE_NS_PER_S)
#define KAD_IDLE_LATE   (22 * FLARE_NS_PER_S)
#define KAD_IDLE_SERVER (60 * FLARE_NS_PER_S)

typedef struct kad_t kad_t;
typedef struct kad_query kad_query;

typedef enum {
    Q_CLOSEST,
    Q_FIND_PEER,
    Q_PROVIDERS,
    Q_GET_VALUE,
    Q_PROVIDE,
    Q_PUT,
    Q_REFRESH, /* maintenance: a lookup whose only use is filling the table */
    Q_WALK,    /* a random walk for relay candidates: connects to hop servers */
} kad_qkind;

typedef struct kad_rpc {
    struct kad_rpc *next, **pprev; /* in kad_t.rpcs: unlinked without a walk */
    kad_t *kad;
    kad_query *q; /* NULL: an admission probe, or the query is gone */
    flare_peerid peer;
    uint8_t expect_reply;
    uint8_t dialing;  /* flare_host_connect's callback is due */
    uint8_t finished; /* the outcome is in; freed once the dial callback came */
    uint8_t retried, retry_pending;
    uint8_t reused;  /* sent on a kept stream: a failure there retries on a fresh one */
    uint8_t sent_ok; /* no answer expected and the request is out: done from the timer */
    uint8_t clean;   /* the stream carried exactly the answer: it may be kept */
    uint8_t store;   /* sent in the query's storing phase (not a lookup request) */
    int err;         /* a failure waiting for the timer to report it */
    flare_buf req;   /* the framed request */
    flare_buf in;
    flare_stream *s;
    flare_io_timer *timer;
    flare_tstamp deadline;
} kad_rpc;

struct kad_query {
    kad_query *next;
    kad_t *kad;
    kad_qkind kind;
    flare__kad_lookup l;
    uint8_t key[FLARE__KAD_MAX_KEY];
    size_t klen;
    flare_peerid target; /* Q_FIND_PEER */
    uint8_t *value;      /* Q_PUT: to store; Q_GET_VALUE: the best found */
    size_t vlen;
    /* Q_GET_VALUE: valid records seen (ours included), how many end the
     * lookup (0: none, it runs to the end), and the peers that gave the
     * best one (the others of the closest get it after the answer). */
    size_t nvalid, quorum;
    flare_peerid *with_best;
    size_t nbest;
    int had_local, corrected;
    flare_kad_peer *found;
    size_t nfound, maxfound;
    flare_kad_peers_cb peers_cb;
    flare_kad_value_cb value_cb;
    flare_kad_done_cb done_cb;
    void *user;
    int storing; /* the lookup ended: ADD_PROVIDER / PUT_VALUE to the closest */
    size_t stores_pending, stored;
    int stop;   /* the answer is in: end the lookup early */
    int status; /* set before the deferred finish */
    int finishing;
    flare_io_timer *timer; /* runs steps and the finish from the loop */
};

/* A request stream kept for reuse. */
typedef struct kad_idle {
    flare_stream *s;
    uint64_t tag;       /* of the peer ID, to skip most comparisons */
    flare_tstamp until; /* closed from then on */
} kad_idle;

/* A stream the server side answers on; listed by last request, oldest
 * first, so the idle ones are found from the head. */
typedef struct kad_srv {
    struct kad_srv *prev, *next;
    flare_host *h;
    flare_stream *s;
    flare_buf in;
    flare_tstamp last;
    int listed;
} kad_srv;

typedef struct kad_provided {
    uint8_t key[64];
    uint8_t klen;
} kad_provided;

struct kad_t {
    flare_host *h;
    flare_kad_settings cfg;
    flare_multiaddr *boot; /* nboot (at most KAD_MAX_BOOT), on the heap: most
                            * nodes list a few and a multiaddr is 400 bytes */
    size_t nboot;
    flare_kad_mode mode;
    int server;
    int ready_reported;
    int refreshed;     /* a full refresh ran (a server's first comes soon after it joins) */
    int announce_mode; /* report the mode even if unchanged */
    flare__kad_rt rt;
    flare__kad_records recs;
    flare__kad_providers provs;
    kad_rpc *rpcs;
    kad_query *queries;
    size_t nprobes;
    size_t srv_bytes; /* unfinished requests held by the server side */
    kad_srv *srv_head, *srv_tail;
    kad_idle *idle; /* nidle of KAD_MAX_IDLE, oldest first; allocated on first use */
    size_t nidle;
    flare_io_timer *idle_timer;
    int idle_armed;
    flare_io_timer *tick;
    flare_tstamp tick_at;      /* when the tick is due */
    flare_tstamp boot_backoff; /* the next failed bootstrap round's (0: the first) */
    flare_tstamp next_refresh, next_republish, next_boot, self_lookup_due;
    flare_tstamp next_walk; /* relay discovery: not before */
    /* AutoRelay asked for relays while refresh lookups ran: the walk waits
     * for the relays they meet, and runs only if those are too few. */
    int walk_deferred;
    /* When a lookup last ran to its end for a key in bucket cpl (0:
     * never): the refresh skips buckets refreshed that way recently. */
    flare_tstamp cpl_refreshed[KAD_MAX_REFRESH_CPL + 1];
    flare_tstamp self_refreshed; /* a lookup of our own ID ended (0: never) */
    kad_provided *provided;      /* KAD_MAX_PROVIDED, allocated by the first provide */
    size_t nprovided;
    /* Counters for tests and the simulation summary. */
    uint64_t lookups, lookup_hops, rpcs_sent, rpcs_failed, refresh_skipped;
    uint64_t streams_opened, streams_reused, reuse_retries, srv_idle_closed;
    uint64_t walks, walks_skipped; /* relay discovery: walks run / not needed */
};

/* kad.c */
kad_t *kad_get(flare_host *h);
uint64_t kad_group_of(kad_t *k, const flare_peerid *peer);
void kad_table_changed(kad_t *k);
/* Fills p with peer's addresses from the peerstore (at most
 * FLARE__KAD_MAX_ADDRS, into store). */
void kad_peer_view(kad_t *k, const flare_peerid *id, flare__kad_peer *p,
                   flare_multiaddr store[FLARE__KAD_MAX_ADDRS]);

/* Lookup l ran to its end: the buckets it refreshed are noted (the
 * refresh skips them for a while). */
void kad_lookup_covered(kad_t *k, const flare__kad_lookup *l);
/* Refresh lookup q ended (AutoRelay has its relays): a deferred walk
 * runs now if they were too few and no other refresh lookup is out. */
void kad_refresh_ended(kad_t *k, const kad_query *q);

/* The server side dropped x (idle too long). */
void kad_srv_expire(kad_srv *x);
/* x got a request (or opened): to the tail of the list. */
void kad_srv_touch(kad_t *k, kad_srv *x);
void kad_srv_unlink(kad_t *k, kad_srv *x);

/* kad_stream.c */
/* The kept stream to peer, removed from the pool (its callbacks are the
 * caller's to set); NULL if none. */
flare_stream *kad_idle_take(kad_t *k, const flare_peerid *peer);
/* Keeps s (detached, after an answer) for the next request to peer, or
 * closes it: one is kept per peer, the oldest makes room. */
void kad_idle_put(kad_t *k, const flare_peerid *peer, flare_stream *s);
/* Arms the timer that closes idle streams (both sides) if it is not. */
void kad_idle_arm(kad_t *k);
/* Detaches the kept streams and the server's list (the service ends). */
void kad_idle_free_all(kad_t *k);

/* kad_query.c */
kad_query *kad_query_new(kad_t *k, kad_qkind kind, const uint8_t *key, size_t klen);
/* Seeds the lookup from the table and runs it (results from the loop). */
void kad_query_start(kad_query *q);
void kad_query_free_all(kad_t *k);
void kad_rpcs_free_all(kad_t *k);
/* Q_GET_VALUE: q starts with our own record of its key, if any. */
void kad_query_take_local(kad_query *q);
/* Asks peer for its closest peers to our own key; it enters the table when
 * it answers. Probes of peers that identify announces are KAD_MAX_PROBES at
 * a time; boot ones (our own configured list, at most KAD_MAX_BOOT) are
 * never held back. */
void kad_probe(kad_t *k, const flare_peerid *peer, int boot);
/* kad.c: a probe failed; with the table still empty and no probe out, the
 * next bootstrap round comes after a jittered, doubling back-off. */
void kad_probe_failed(kad_t *k);

#endif
