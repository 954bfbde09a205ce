/* Internal structures of the host (src/host/). */
#ifndef FLARE_HOST_INT_H
#define FLARE_HOST_INT_H

#include "core/multiaddr_held.h"
#include "flare/addrmgr.h"
#include "flare/buf.h"
#include "flare/host.h"
#include "flare/mss.h"
#include "host/rcmgr.h"
#include "muxer/muxer.h"
#include "security/security.h"

/* Socket write queue marks (flare_host_settings.conn_write_*). */
#define FLARE__CONN_WRITE_HIGH (1u << 20)
#define FLARE__CONN_WRITE_LOW  (256u << 10)
#define FLARE__CONN_WRITE_MAX  (8u << 20)
/* Ciphertext a stream's write collects in c->wire before it is written:
 * the connection's buffers stay small enough to be kept (and to stay in
 * the CPU caches) between writes. */
#define FLARE__CONN_FLUSH_AT    (64u << 10)
#define FLARE__SECURITY_DEFAULT "/noise"
#define FLARE__SECURITY_MAX     4 /* protocols in flare_host_settings.security */

typedef struct flare__transport_ops flare__transport_ops;
typedef struct flare__transport flare__transport;

typedef struct flare__handler {
    struct flare__handler *next;
    size_t len; /* of protocol: every inbound proposal is looked up */
    flare_stream_cbs cbs;
    void *user;
    unsigned flags;
    /* At its length (< FLARE_PROTOCOL_MAX): a node registers a dozen. */
    char protocol[];
} flare__handler;

/* A listen address, served by one transport (src/transport/transport.h). */
typedef struct flare__listener {
    struct flare__listener *next;
    flare_host *host;
    const flare__transport *transport;
    void *handle;       /* the transport's */
    flare_ipaddr addr;  /* from ma (family 0 if it has no IP) */
    flare_multiaddr ma; /* the bound address */
} flare__listener;

/* A registered transport and its state. */
typedef struct flare__tr_slot {
    const flare__transport *tr;
    void *state;
} flare__tr_slot;

typedef struct flare__dial_waiter {
    struct flare__dial_waiter *next;
    flare_dial_cb cb;
    void *user;
} flare__dial_waiter;

/* Deferred work, run from a zero-delay timer so that callbacks never run
 * inside the API call that caused them. */
typedef enum {
    FLARE__DEFER_DIAL_CB,     /* report an existing connection to a dialer */
    FLARE__DEFER_DIAL_FAIL,   /* report a synchronous dial failure */
    FLARE__DEFER_STREAM_FAIL, /* outbound stream could not be opened */
} flare__defer_kind;

typedef struct flare__defer {
    struct flare__defer *next;
    flare__defer_kind kind;
    flare_conn *conn;
    flare_stream *stream;
    int status;
    flare_dial_cb dial_cb;
    void *user;
} flare__defer;

typedef enum {
    FLARE__CONN_DIALING,
    FLARE__CONN_MSS_SECURITY,
    FLARE__CONN_SECURING,
    FLARE__CONN_MSS_MUXER,
    FLARE__CONN_READY,
    FLARE__CONN_DEAD,
} flare__conn_state;

typedef enum {
    FLARE__STREAM_NEGOTIATING,
    FLARE__STREAM_OPEN,
    FLARE__STREAM_DEAD,
} flare__stream_state;

/* Multistream negotiation of one stream: allocated at open, freed as soon as
 * the protocol is confirmed, so idle streams do not carry ~1.1 KB of parser
 * state. The dialer's proposal list lives here (mss references it). */
typedef struct flare__stream_nego {
    flare_mss mss;
    const char *proto_list[1];
    /* Inbound: the handler of the proposal the listener accepted (nothing
     * runs between the accept and the hand-over that could remove it). */
    const struct flare__handler *handler;
} flare__stream_nego;

/* Kept small: a relay holds two of these per idle circuit. */
struct flare_stream {
    flare_stream *next, *prev;
    flare_conn *conn;
    uint32_t id;
    flare__stream_state state;
    flare__stream_nego *nego; /* NULL once negotiated */
    char *protocol;           /* heap, exact length; NULL until known */
    flare_stream_cbs cbs;
    void *user;
    unsigned flags;
    uint16_t protocol_len; /* strlen(protocol), < FLARE_PROTOCOL_MAX */
    flare_buf outq;        /* bytes accepted from the app, not yet in the muxer; freed when empty */
    unsigned inbound : 1;
    unsigned close_requested : 1; /* app asked for FIN; sent once outq drains */
    unsigned fin_sent : 1;
    unsigned remote_eof : 1;
    unsigned eof_delivered : 1;
    unsigned paused : 1;
    unsigned want_writable : 1;
    unsigned opened_cb_done : 1;
    unsigned carrier : 1;       /* carries another connection: bounded by its windows */
    unsigned mig_frozen : 1;    /* moving to another connection: no reads, no writes */
    unsigned mig_off : 1;       /* its resend buffer failed: it cannot move */
    unsigned rejected : 1;      /* inbound, negotiation failed after an answer: input dropped */
    struct flare__rc_pp *rc_pp; /* its protocol's count in the resource manager */
    /* Migration (src/services/migrate.c): bytes of the muxer stream read
     * and written (negotiation included), and on relayed connections the
     * last bytes written, which a move may have to send again. */
    uint64_t rx_total, tx_total;
    struct flare__mig_ring *ring;
    struct flare__mig_ref *mig; /* the move under way, if any */
    flare_buf *held;            /* read before a move, not yet delivered (paused) */
};

/* A move's hold on its stream: cleared when the stream is freed. */
typedef struct flare__mig_ref {
    flare_stream *s;
} flare__mig_ref;

/* Flags are bytes and the fields are ordered to leave no holes: a DHT node
 * holds thousands of these. */
struct flare_conn {
    flare_conn *next, *prev;
    flare_conn *peer_next; /* chain in the host's by-peer index (host.c) */
    flare_host *host;
    uint64_t id;
    /* Each read only in its state (conn.c arms the handshake timeout only
     * before FLARE__CONN_READY; conn_ready sets opened_at on entering it). */
    union {
        /* When it became ready (connmgr.c): beside the state and flags that
         * the connection manager's trim reads of every connection, one
         * cache line. */
        flare_tstamp opened_at;
        flare_tstamp handshake_deadline; /* before it is ready */
    };
    flare__conn_state state;
    /* One bit each (a node holds thousands of connections): */
    unsigned indexed : 1;
    unsigned outbound : 1;
    unsigned initiator : 1;
    unsigned limited : 1;
    unsigned expect_peer : 1; /* dialed with /p2p/: the remote must be this peer */
    /* The transport's queue is above its high-water mark; streams keep
     * their data queued (and report backpressure) until it drains. */
    unsigned congested : 1;
    unsigned read_paused : 1; /* the queue is far above it: not reading */
    unsigned mss_active : 1;
    unsigned mux_owned : 1;       /* negotiated (freed with c), not a transport's session */
    unsigned flush_due : 2;       /* output waits for the outermost frame's end */
    unsigned close_pending : 1;   /* close once not busy */
    unsigned opened_reported : 1; /* CONN_OPENED emitted */
    unsigned peer_pinned : 1;     /* counted as a connection in the peerstore */
    unsigned io_quiet : 4;        /* small I/O batches in a row (io_buf_done), <= IO_QUIET */
    flare_peerid peer;
    flare_ipaddr remote_ip, local_ip;
    int busy;           /* > 0 while processing: frees are deferred */
    unsigned svc_marks; /* one bit per service (flare__svc_mark) */
    /* Held at their length: set with flare__conn_set_*_ma, read with
     * flare__conn_*_ma into a flare_multiaddr of the caller's. */
    flare__ma_held remote_ma, local_ma;
    flare_multiaddr *api_ma; /* [2]: flare_conn_remote/local_addr's copies, on demand */
    /* The transport it runs over (registry entry; set at dial or accept). */
    const flare__transport *transport;
    /* Its per-connection operations and state (src/transport/transport.h);
     * NULL once it is gone. */
    const struct flare__transport_ops *tr_ops;
    void *tr;
    flare_io_timer *timer;
    flare_tstamp last_used; /* a stream last opened or closed on it (connmgr.c) */
    flare_mss *mss;         /* while negotiating (conn.c) */
    /* The security protocol (NULL until multistream chose one) and its
     * session; security names it (static) for flare_conn_security. */
    const flare__security *sec;
    void *sec_st;
    const char *security;
    /* The stream muxer (NULL until there is one): negotiated over a byte
     * stream, or the session of a transport with its own streams; muxer
     * names it (static) for flare_conn_muxer. */
    const flare__muxer_ops *mux;
    void *mux_st;
    const char *muxer;
    flare_buf plain_in; /* decrypted bytes not yet consumed */
    flare_buf tmp;      /* plaintext produced by mss/the muxer, to encrypt */
    flare_buf wire;     /* ciphertext/raw bytes to write */
    flare_stream *streams;
    flare_stream *dead_streams;  /* freed when busy drops to 0 */
    flare_stream *reset_streams; /* reset by the application: on_close due on the next tick */
    flare__dial_waiter *waiters;
    unsigned nstreams; /* below cfg.max_streams_per_conn */
    int close_err;
    flare__rc_conn rc; /* resource manager: counts and the allocator */
};

enum { FLARE__TAP_SENT_PLAIN, FLARE__TAP_SENT_WIRE, FLARE__TAP_RECV_PLAIN, FLARE__TAP_RECV_WIRE };

/* Bounds of the UDP sharing tables (transport/udp_mux.c). */
#define FLARE__UDP_MUX_MAX   4
#define FLARE__UDP_SOCKS_MAX 16

struct flare_host {
    const flare_mem *mem;
    flare_io *io;
    flare_host_settings cfg;
    char agent[128];
    char security[128]; /* cfg.security's copy */
    const flare__security *secs[FLARE__SECURITY_MAX];
    const char *sec_ids[FLARE__SECURITY_MAX]; /* their IDs, the multistream list */
    size_t nsecs;
    const flare__muxer *const *muxers; /* of byte-stream upgrades, preferred first */
    const char *mux_ids[8];            /* their IDs, the multistream list */
    size_t nmuxers;
    flare_privkey key;
    flare_peerid id;
    flare_rng rng;
    flare_host_event_cb event_cb;
    void *event_user;
    flare__handler *handlers; /* in registration order, newest first */
    /* The same handlers side by side with a hash of their protocol: every
     * inbound proposal is looked up, and walking the list was a cache
     * miss per handler. */
    flare__handler **handler_vec;
    uint64_t *handler_keys;
    size_t nhandlers, handlers_cap;
    flare__listener *listeners;
    flare_conn *conns;
    size_t nconns;
    /* Connections by peer ID hash (those whose peer is known), chained
     * through peer_next: a node of a large network holds thousands, and
     * flare_host_conn_to runs for every DHT reply, the dial checks for
     * every dial. Grows at load factor 1. */
    flare_conn **by_peer;
    size_t by_peer_size, by_peer_count;
    int by_peer_lossy; /* an add found no memory: the list is the truth */
    /* cfg.sig_cache is ours (made because the settings gave none). */
    int sig_cache_owned;
    uint64_t next_conn_id;
    flare__defer *defers, **defers_tail;
    flare_io_timer *defer_timer;
    struct flare__peerstore *peerstore;
    flare_addrmgr *addrmgr;
    uint64_t addrmgr_version;
    flare_io_timer *addrmgr_timer;
    flare__tr_slot *trs; /* the transports, in matching order */
    size_t ntrs;
    struct flare__svc_slot *svcs;    /* the services, in registration order */
    struct flare__connect *connects; /* flare_host_connect races (connect.c) */
    size_t nsvcs;
    struct flare__gater *gater;     /* gater.c; NULL: no lists */
    struct flare__connmgr *connmgr; /* connmgr.c; NULL until needed */
    struct flare__rcmgr *rcmgr;     /* rcmgr.c */
    int destroying;
    /* Datagram consumers and shared UDP sockets (transport/udp_mux.c). */
    struct {
        uint8_t lo, hi;
        int (*fn)(flare_host *h, void *user, flare_io_udp *u, const flare_ipaddr *local,
                  const flare_ipaddr *from, const uint8_t *data, size_t len);
        void *user;
    } udp_mux[FLARE__UDP_MUX_MAX];
    struct {
        flare_io_udp *u;
        flare_ipaddr local;
        int listening;
    } udp_socks[FLARE__UDP_SOCKS_MAX];
    /* Test and fuzz-seed recording only (NULL otherwise): sees every chunk a
     * connection sends or receives, as plaintext (once Noise is up) and on
     * the wire (FLARE__TAP_*). */
    void (*tap)(flare_conn *c, int what, const uint8_t *data, size_t len, void *user);
    void *tap_user;
};

/* host.c */
void flare__host_emit(flare_host *h, const flare_host_event *ev);
void flare__host_defer(flare_host *h, flare__defer *d);
flare__defer *flare__defer_new(flare_host *h, flare__defer_kind kind);
const flare__handler *flare__host_find_handler(const flare_host *h, const char *proto, size_t len);
/* The address of a listener of transport t (NULL: any) in family (4, 6). */
int flare__host_listen_addr_for(const flare_host *h, const flare__transport *t, int family,
                                flare_ipaddr *out);
/* transports.c: the registry. The transport that dials / listens on ma
 * (the first in list order that accepts it), or NULL. */
int flare__tr_init_all(flare_host *h, const flare__transport *const *trs, size_t n);
void flare__tr_free_all(flare_host *h);
const flare__tr_slot *flare__tr_for_dial(flare_host *h, const flare_multiaddr *ma);
const flare__tr_slot *flare__tr_for_listen(flare_host *h, const flare_multiaddr *ma);

/* conn.c */
flare_conn *flare__conn_new(flare_host *h, int outbound);
/* Sets c's remote / local address: 0 or FLARE_ERR_NOMEM (then it is empty). */
int flare__conn_set_remote_ma(flare_conn *c, const flare_multiaddr *ma);
int flare__conn_set_local_ma(flare_conn *c, const flare_multiaddr *ma);
/* c's remote / local address, expanded into *tmp; returns tmp. */
static inline const flare_multiaddr *flare__conn_remote_ma(const flare_conn *c,
                                                           flare_multiaddr *tmp)
{
    return flare__ma_held_get(&c->remote_ma, tmp);
}
static inline const flare_multiaddr *flare__conn_local_ma(const flare_conn *c, flare_multiaddr *tmp)
{
    return flare__ma_held_get(&c->local_ma, tmp);
}
void flare__conn_start_upgrade(flare_conn *c);
void flare__conn_fail(flare_conn *c, int err);
/* Writes what c->tmp and c->wire hold. Inside a processing frame (busy > 0:
 * an input, a timer, an API call) it only marks them due: the outermost
 * frame's end writes everything the turn produced at once. */
void flare__conn_flush(flare_conn *c);
/* Writes them now (before a shutdown, or to learn whether the transport is
 * full). */
void flare__conn_flush_now(flare_conn *c);
/* Writes them from the connection's timer, due now, unless a flush in the
 * caller's next call comes first (an application's new stream and its
 * first data: one write). */
void flare__conn_flush_soon(flare_conn *c);
/* Sends up to len bytes of stream id's data through the muxer; when the
 * muxer and the security protocol can (write_frame, encrypt_pair), the
 * data is encrypted from data straight into c->wire (written out every
 * FLARE__CONN_FLUSH_AT bytes) and it stops early when the transport is
 * congested. Returns the bytes taken or the muxer's write errors. */
long flare__conn_write_stream(flare_conn *c, uint32_t id, const uint8_t *data, size_t len);
void flare__conn_process_mux(flare_conn *c);
void flare__conn_arm_timer(flare_conn *c);
void flare__conn_destroy(flare_conn *c);
/* Bytes from the transport; len 0 is the end of the byte stream. */
void flare__conn_input(flare_conn *c, const uint8_t *data, size_t len);
void flare__conn_close_transport(flare_conn *c, int abort);
void flare__conn_unbusy(flare_conn *c);
size_t flare__conn_write_low(const flare_host *h);
void flare__conn_api_leave(flare_conn *c);
/* Holds c through a series of API calls (open a stream, write, close):
 * their output leaves in one write at the release. */
static inline void flare__conn_hold(flare_conn *c)
{
    c->busy++;
}
static inline void flare__conn_release(flare_conn *c)
{
    flare__conn_api_leave(c);
}

/* stream.c */
flare_stream *flare__stream_new(flare_conn *c, uint32_t id, int inbound);
void flare__stream_on_readable(flare_stream *s);
void flare__stream_on_writable(flare_stream *s);
void flare__stream_on_remote_closed(flare_stream *s);
void flare__stream_on_gone(flare_stream *s, int err);
void flare__stream_free(flare_stream *s);
/* Resets s without telling its owner (no on_close): for callers that free
 * their context right away. */
void flare__stream_abort(flare_stream *s);
/* Delivers on_close(FLARE_ERR_RESET) to the streams the application reset;
 * from the loop only (c is held busy by the caller). */
void flare__conn_finish_resets(flare_conn *c);
void flare__conn_kill_streams(flare_conn *c, int err);
/* The carrier drained: move the streams' queued data on, then flush. */
void flare__conn_uncongest(flare_conn *c);
void flare__conn_free_dead_streams(flare_conn *c);
/* 1 for a stream of the application (not of a libp2p or flare service,
 * whose owners keep their own connection state). */
int flare__stream_is_app(const flare_stream *s);
size_t flare__conn_app_streams(const flare_conn *c);
/* Delivers bytes read for s on another stream (a move): to the application
 * now, or once it resumes reading. */
void flare__stream_feed(flare_stream *s, const uint8_t *data, size_t len);

/* stream_ring.c: the resend buffer of streams on relayed connections. */
void flare__stream_record(flare_stream *s, const uint8_t *data, size_t len);
void flare__stream_ring_free(flare_stream *s);
/* The oldest offset s can still send again. */
uint64_t flare__stream_floor(const flare_stream *s);
/* Appends the kept bytes from offset from (floor <= from <= tx_total). */
int flare__stream_ring_copy(const flare_stream *s, uint64_t from, flare_buf *out);
/* Moves s onto d's muxer stream (another connection's): s takes d's id,
 * d goes away without callbacks, and s sends pre (a message of the move)
 * then its bytes from offset peer_rx, then what it had queued. s's old
 * muxer stream is left as it is (the caller resets it or not). Returns 0,
 * FLARE_ERR_NOMEM or FLARE_ERR_INVALID_ARG (peer_rx not in [floor, tx]). */
int flare__stream_move(flare_stream *s, flare_stream *d, const uint8_t *pre, size_t prelen,
                       uint64_t peer_rx);

/* dial.c */
void flare__dial_complete(flare_conn *c, int status);

/* connect.c: flare_host_connect's ranked, staggered dials. */
#define FLARE__DIAL_STAGGER (250 * FLARE_NS_PER_MS)
void flare__connect_free_all(flare_host *h);

/* host.c: the by-peer index of connections whose peer is known (dialed
 * by peer ID, or authenticated). add once c->peer is set (again: no-op). */
void flare__conn_index_add(flare_conn *c);
void flare__conn_index_remove(flare_conn *c);
/* The connections that may be to peer, to walk with flare__conn_peer_next:
 * its index chain, or every connection while the index is incomplete (an
 * add found no memory). Callers still compare c->peer. */
flare_conn *flare__conn_peer_first(flare_host *h, const flare_peerid *peer);
flare_conn *flare__conn_peer_next(const flare_host *h, const flare_conn *c);

/* peerstore.c: a growing hash table of peers. Peers with an open connection
 * are pinned; above max_peers entries (default FLARE__PEERSTORE_MAX_PEERS)
 * the least recently used unpinned peer is evicted to make room. Setters
 * create the entry; they return 0, FLARE_ERR_NOMEM, or FLARE_ERR_INVALID_ARG
 * for an empty peer ID. */
#define FLARE__PEERSTORE_MAX_PEERS 8192
struct flare__peerstore *flare__peerstore_new(const flare_mem *mem);
void flare__peerstore_del(struct flare__peerstore *ps);
/* A connection to peer opened (pins it, creating the entry) or closed
 * (unpinned after its last one: it becomes the most recently used). */
int flare__peerstore_conn_opened(struct flare__peerstore *ps, const flare_peerid *peer);
void flare__peerstore_conn_closed(struct flare__peerstore *ps, const flare_peerid *peer);
/* Evicts unpinned peers at once if over the new bound (0 counts as 1). */
void flare__peerstore_set_max_peers(struct flare__peerstore *ps, size_t max_peers);
size_t flare__peerstore_count(const struct flare__peerstore *ps);
int flare__peerstore_has(const struct flare__peerstore *ps, const flare_peerid *peer);
int flare__peerstore_add_addr(struct flare__peerstore *ps, const flare_peerid *peer,
                              const flare_multiaddr *ma, flare_tstamp expires);
int flare__peerstore_set_protocols(struct flare__peerstore *ps, const flare_peerid *peer,
                                   const char *const *protos, size_t n);
int flare__peerstore_set_key(struct flare__peerstore *ps, const flare_peerid *peer,
                             const flare_pubkey *k);
int flare__peerstore_set_agent(struct flare__peerstore *ps, const flare_peerid *peer,
                               const char *agent, const char *proto_version);
/* An outbound direct connection to peer came up at ma (an address already
 * stored): flare_host_connect dials it first next time. */
void flare__peerstore_addr_worked(struct flare__peerstore *ps, const flare_peerid *peer,
                                  const flare_multiaddr *ma);
int flare__peerstore_addr_has_worked(struct flare__peerstore *ps, const flare_peerid *peer,
                                     const flare_multiaddr *ma);
int flare__peerstore_get(struct flare__peerstore *ps, const flare_peerid *peer, flare_tstamp now,
                         flare_peer_info *info);
/* flare__peerstore_get's addresses only (and its use of the entry, for the
 * LRU), without filling the ~23 KB flare_peer_info: 0 with *n set, or
 * FLARE_ERR_NOT_FOUND. */
int flare__peerstore_get_addrs(struct flare__peerstore *ps, const flare_peerid *peer,
                               flare_tstamp now, flare_multiaddr *out, size_t cap, size_t *n);
int flare__peerstore_supports(struct flare__peerstore *ps, const flare_peerid *peer,
                              const char *proto);
/* Up to cap live addresses of peer, those of its signed record first, without copying the rest of
 * its entry. Returns the count. */
size_t flare__peerstore_addrs(struct flare__peerstore *ps, const flare_peerid *peer,
                              flare_tstamp now, flare_multiaddr *out, size_t cap);
/* The same, but only the certified ones when the peer has any live. */
size_t flare__peerstore_addrs_certified(struct flare__peerstore *ps, const flare_peerid *peer,
                                        flare_tstamp now, flare_multiaddr *out, size_t cap);
/* A hint that the addresses of these peers are about to be read (a DHT
 * answer lists 20): their entries are fetched into the cache together
 * rather than one cache miss after another. Changes nothing. */
void flare__peerstore_prefetch(struct flare__peerstore *ps, const flare_peerid *ids, size_t n);
/* The addresses of a verified signed peer record (RFC 0003) of peer,
 * stored as certified: they replace those of an older record; a record
 * older than the newest seen is refused (FLARE_ERR_EXISTS). Unsigned
 * addresses never displace certified ones when the entry is full. */
int flare__peerstore_add_record(struct flare__peerstore *ps, const flare_peerid *peer, uint64_t seq,
                                const flare_multiaddr *addrs, size_t n, flare_tstamp expires);

/* addrs.c */
int flare__addrs_init(flare_host *h);
void flare__addrs_free(flare_host *h);
void flare__addrs_observed(flare_host *h, flare_conn *c, const flare_multiaddr *observed);
void flare__addrs_conn_closed(flare_host *h, flare_conn *c);
void flare__addrs_listen_added(flare_host *h, const flare_multiaddr *ma);
/* Our addresses to advertise: listen addresses (not unspecified) and
 * confirmed external ones. Returns the count. */
size_t flare__addrs_advertised(flare_host *h, flare_multiaddr *out, size_t cap);

/* gater.c: 1 if the connection may go on, 0 if refused (the caller closes
 * it). accept: before anything is read (judges the remote IP); dial: before
 * the socket (the address's peer and IP); peer: after the handshake. */
int flare__gater_allow_accept(flare_host *h, const flare_ipaddr *remote,
                              const flare_multiaddr *remote_ma);
int flare__gater_allow_dial(flare_host *h, const flare_multiaddr *ma);
int flare__gater_allow_peer(flare_host *h, const flare_conn *c, const flare_peerid *peer);
void flare__gater_free(flare_host *h);

/* connmgr.c: c became ready (may schedule a trim); protections by tag
 * (idempotent; on = 0 removes the tag). */
void flare__connmgr_conn_opened(flare_conn *c);
int flare__connmgr_protect(flare_host *h, const flare_peerid *peer, const char *tag, int on);
void flare__connmgr_free(flare_host *h);
/* ---- services ------------------------------------------------------------------------
 * Everything built on top of the core (identify, ping, AutoNAT, relay client
 * and server, AutoRelay, DCUtR; src/services/) is a service: a table of hooks
 * registered with the host when it is created. The core calls the hooks in
 * registration order and knows no service by name; a service reaches its own
 * state through flare__svc_state. Every hook is optional and must accept a
 * NULL state (a service may stay idle, e.g. when disabled by the config). */
typedef enum {
    FLARE__ADDRS_LISTEN,   /* a listen address was added */
    FLARE__ADDRS_EXTERNAL, /* the confirmed external addresses or NAT type changed */
} flare__addrs_change;

/* A protocol's streams per peer (both directions): a peer asking for more
 * than the service needs at a time is abusing it. */
typedef struct flare__svc_stream_limit {
    const char *protocol; /* NULL ends a list */
    size_t per_peer;
} flare__svc_stream_limit;

typedef struct flare__service {
    const char *name;
    /* Set before init, whatever the config enables (we may still be the client). */
    const flare__svc_stream_limit *stream_limits;
    /* At host creation (the core is up, no connection yet); *state starts NULL. */
    int (*init)(flare_host *h, void **state);
    /* At host destruction, after every connection is gone. */
    void (*free)(flare_host *h, void *state);
    /* An accepted connection, before the upgrade starts (may set
     * c->initiator); not a relayed one (its remote IP is the relay's). */
    void (*on_inbound)(flare_host *h, void *state, flare_conn *c);
    /* c finished its upgrade (after FLARE_HOST_EV_CONN_OPENED and the dialers). */
    void (*on_conn_ready)(flare_host *h, void *state, flare_conn *c);
    /* The remote's identify arrived (flare__svc_conn_identified). */
    void (*on_conn_identified)(flare_host *h, void *state, flare_conn *c);
    /* c is closing (its streams are gone, c->close_err says why). */
    void (*on_conn_closed)(flare_host *h, void *state, flare_conn *c);
    void (*on_addrs_changed)(flare_host *h, void *state, flare__addrs_change why);
    /* Every host event, before the application sees it. */
    void (*on_event)(flare_host *h, void *state, const flare_host_event *ev);
    /* Addresses of ours to advertise besides the listen and external ones. */
    size_t (*addrs)(flare_host *h, void *state, flare_multiaddr *out, size_t cap);
    /* 1: the connection manager must not close c. */
    int (*protects)(flare_host *h, void *state, const flare_conn *c);
} flare__service;

typedef struct flare__svc_slot {
    const flare__service *svc;
    void *state;
} flare__svc_slot;

/* service.c: the registry and the hook calls. */
int flare__host_new(flare_host **out, flare_io *io, const flare_privkey *key,
                    const flare_host_settings *cfg, const flare_mem *mem,
                    const flare__service *const *svcs, size_t nsvcs,
                    const flare__transport *const *trs, size_t ntrs);
int flare__svc_init_all(flare_host *h, const flare__service *const *svcs, size_t n);
void flare__svc_free_all(flare_host *h);
/* The state slot of svc (NULL: not registered with h). */
void **flare__svc_state_slot(flare_host *h, const flare__service *svc);
void *flare__svc_state(flare_host *h, const flare__service *svc);
/* A per-connection bit of svc in c->svc_marks (0 if not registered). */
unsigned flare__svc_mark(flare_host *h, const flare__service *svc);
void flare__svc_inbound(flare_host *h, flare_conn *c);
void flare__svc_conn_ready(flare_host *h, flare_conn *c);
void flare__svc_conn_identified(flare_host *h, flare_conn *c);
void flare__svc_conn_closed(flare_host *h, flare_conn *c);
void flare__svc_addrs_changed(flare_host *h, flare__addrs_change why);
void flare__svc_event(flare_host *h, const flare_host_event *ev);
size_t flare__svc_addrs(flare_host *h, flare_multiaddr *out, size_t cap);
int flare__svc_protects(flare_host *h, const flare_conn *c);

#endif
