/* Internal structures of the host (src/host/). */
#ifndef FLARE_HOST_INT_H
#define FLARE_HOST_INT_H

#include "flare/addrmgr.h"
#include "flare/buf.h"
#include "flare/host.h"
#include "flare/mss.h"
#include "flare/noise.h"
#include "flare/relay.h"
#include "flare/yamux.h"
#include "host/rcmgr.h"

#define FLARE__YAMUX_ID "/yamux/1.0.0"

/* Socket write queue marks (flare_host_config.conn_write_*). */
#define FLARE__CONN_WRITE_HIGH (1u << 20)
#define FLARE__CONN_WRITE_LOW  (256u << 10)
#define FLARE__CONN_WRITE_MAX  (8u << 20)
#define FLARE__NOISE_ID        "/noise"

typedef struct flare__handler {
    struct flare__handler *next;
    char protocol[FLARE_PROTOCOL_MAX];
    const char *proto_list[1];
    flare_stream_cbs cbs;
    void *user;
    unsigned flags;
} flare__handler;

typedef struct flare__listener {
    struct flare__listener *next;
    flare_host *host;
    flare_io_listener *l;
    flare_ipaddr addr;
    flare_multiaddr ma;
} flare__listener;

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
    FLARE__DEFER_PING_FAIL,
} flare__defer_kind;

typedef struct flare__defer {
    struct flare__defer *next;
    flare__defer_kind kind;
    flare_conn *conn;
    flare_stream *stream;
    int status;
    flare_dial_cb dial_cb;
    flare_ping_cb ping_cb;
    flare_peerid peer;
    void *user;
} flare__defer;

typedef enum {
    FLARE__CONN_DIALING,
    FLARE__CONN_MSS_SECURITY,
    FLARE__CONN_NOISE,
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
    flare_buf outq; /* bytes accepted from the app, not yet in yamux; freed when empty */
    unsigned inbound : 1;
    unsigned close_requested : 1; /* app asked for FIN; sent once outq drains */
    unsigned fin_sent : 1;
    unsigned remote_eof : 1;
    unsigned eof_delivered : 1;
    unsigned paused : 1;
    unsigned want_writable : 1;
    unsigned opened_cb_done : 1;
    unsigned carrier : 1;       /* carries a relayed connection: bounded by its own windows */
    struct flare__rc_pp *rc_pp; /* its protocol's count in the resource manager */
};

struct flare_conn {
    flare_conn *next, *prev;
    flare_host *host;
    uint64_t id;
    flare__conn_state state;
    int outbound;
    int initiator;
    int limited;
    int expect_peer; /* dialed with /p2p/: the remote must be this peer */
    flare_peerid peer;
    flare_multiaddr remote_ma, local_ma;
    flare_ipaddr remote_ip, local_ip;
    flare_io_sock *sock;
    flare_stream *carrier; /* relayed: the hop/stop stream on the relay connection */
    /* The transport's queue (the carrier stream of a relayed connection, or
     * the socket) is above its high-water mark; streams keep their data
     * queued (and report backpressure) until it drains. */
    int congested;
    int read_paused;    /* socket queue above conn_write_high: not reading */
    flare_peerid relay; /* relayed: the relay's peer ID */
    /* Relayed: the circuit's limit and our carrier traffic against it, to
     * tell a relay's limit reset from any other (FLARE_ERR_LIMIT). */
    flare_relay_limit relay_limit;
    uint64_t relay_in, relay_out;
    flare_tstamp relay_opened;
    flare_io_timer *timer;
    flare_tstamp handshake_deadline;
    flare_tstamp idle_since;
    flare_mss mss;
    int mss_active;
    flare_noise noise;
    int noise_active;
    flare_yamux *yamux;
    flare_buf plain_in; /* decrypted bytes not yet consumed */
    flare_buf tmp;      /* plaintext produced by mss/yamux, to encrypt */
    flare_buf wire;     /* ciphertext/raw bytes to write */
    char muxer[32];
    flare_stream *streams;
    flare_stream *dead_streams; /* freed when busy drops to 0 */
    size_t nstreams;
    flare__dial_waiter *waiters;
    int busy;          /* > 0 while processing: frees are deferred */
    int close_pending; /* close once not busy */
    int close_err;
    int opened_reported;
    int identify_started;
    int dcutr_tried;
    int peer_pinned;        /* counted as a connection in the peerstore */
    flare_tstamp opened_at; /* when it became ready (connmgr.c) */
    flare__rc_conn rc;      /* resource manager: counts and the allocator */
};

enum { FLARE__TAP_SENT_PLAIN, FLARE__TAP_SENT_WIRE, FLARE__TAP_RECV_PLAIN, FLARE__TAP_RECV_WIRE };

struct flare_host {
    const flare_mem *mem;
    flare_io *io;
    flare_host_config cfg;
    char agent[128];
    flare_privkey key;
    flare_peerid id;
    flare_rng rng;
    flare_host_event_cb event_cb;
    void *event_user;
    flare__handler *handlers;
    flare__listener *listeners;
    flare_conn *conns;
    size_t nconns;
    uint64_t next_conn_id;
    flare__defer *defers, **defers_tail;
    flare_io_timer *defer_timer;
    struct flare__peerstore *peerstore;
    flare_addrmgr *addrmgr;
    uint64_t addrmgr_version;
    flare_io_timer *addrmgr_timer;
    void *relay_client;
    void *relay_server;
    void *dcutr;
    struct flare__autonat *autonat;     /* svc_autonat.c */
    struct flare__autorelay *autorelay; /* svc_autorelay.c */
    struct flare__gater *gater;         /* gater.c; NULL: no lists */
    struct flare__connmgr *connmgr;     /* connmgr.c; NULL until needed */
    struct flare__rcmgr *rcmgr;         /* rcmgr.c */
    int destroying;
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
int flare__host_listen_addr_for(const flare_host *h, int family, flare_ipaddr *out);

/* conn.c */
flare_conn *flare__conn_new(flare_host *h, int outbound);
void flare__conn_attach_sock(flare_conn *c, flare_io_sock *s);
void flare__conn_start_upgrade(flare_conn *c);
void flare__conn_fail(flare_conn *c, int err);
void flare__conn_flush(flare_conn *c);
void flare__conn_process_yamux(flare_conn *c);
void flare__conn_arm_timer(flare_conn *c);
void flare__conn_destroy(flare_conn *c);
void flare__conn_input(flare_conn *c, const uint8_t *data, size_t len);
void flare__conn_close_transport(flare_conn *c, int abort);
void flare__conn_unbusy(flare_conn *c);
size_t flare__conn_write_low(const flare_host *h);
void flare__conn_api_leave(flare_conn *c);
extern const flare_io_sock_cbs flare__conn_sock_cbs;

/* stream.c */
flare_stream *flare__stream_new(flare_conn *c, uint32_t id, int inbound);
void flare__stream_on_readable(flare_stream *s);
void flare__stream_on_writable(flare_stream *s);
void flare__stream_on_remote_closed(flare_stream *s);
void flare__stream_on_gone(flare_stream *s, int err);
void flare__stream_free(flare_stream *s);
void flare__conn_kill_streams(flare_conn *c, int err);
/* The carrier drained: move the streams' queued data on, then flush. */
void flare__conn_uncongest(flare_conn *c);
void flare__conn_free_dead_streams(flare_conn *c);

/* dial.c */
void flare__dial_complete(flare_conn *c, int status);

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
int flare__peerstore_get(struct flare__peerstore *ps, const flare_peerid *peer, flare_tstamp now,
                         flare_peer_info *info);
int flare__peerstore_supports(struct flare__peerstore *ps, const flare_peerid *peer,
                              const char *proto);

/* addrs.c */
int flare__addrs_init(flare_host *h);
void flare__addrs_free(flare_host *h);
void flare__addrs_observed(flare_host *h, flare_conn *c, const flare_multiaddr *observed);
void flare__addrs_conn_closed(flare_host *h, flare_conn *c);
void flare__addrs_listen_added(flare_host *h, const flare_multiaddr *ma);
/* Our addresses to advertise: listen addresses (not unspecified) and
 * confirmed external ones. Returns the count. */
size_t flare__addrs_advertised(flare_host *h, flare_multiaddr *out, size_t cap);

/* relay_transport.c: connections carried by a stream of a relay connection */
flare_conn *flare__relay_conn_new(flare_host *h, flare_stream *carrier, int outbound,
                                  const flare_peerid *relay, const flare_peerid *remote,
                                  const flare_multiaddr *remote_ma, const flare_relay_limit *limit);
int flare__relay_carrier_write(flare_conn *c, const uint8_t *data, size_t len);
void flare__relay_carrier_close(flare_conn *c, int abort);

/* svc_relay_client.c, svc_relay_server.c */
int flare__relay_client_init(flare_host *h);
void flare__relay_client_free(flare_host *h);
void flare__relay_client_conn_closed(flare_host *h, flare_conn *c);
int flare__relay_dial(flare_host *h, const flare_multiaddr *ma, const flare_dial_opts *o,
                      flare_dial_cb cb, void *user);
size_t flare__relay_addrs(flare_host *h, flare_multiaddr *out, size_t cap);
/* Reservations owned by AutoRelay: FLARE_ERR_EXISTS when the relay already
 * has one (of either kind; flare_host_relay_reserve takes an AutoRelay one
 * over instead); unreserve forgets an AutoRelay one (and pushes identify
 * when it was active); FLARE_ERR_NOT_FOUND otherwise. */
int flare__relay_reserve_auto(flare_host *h, const flare_multiaddr *relay_ma);
int flare__relay_unreserve_auto(flare_host *h, const flare_peerid *relay);
int flare__relay_has_manual(flare_host *h, const flare_peerid *relay);
int flare__relay_server_init(flare_host *h);
void flare__relay_server_free(flare_host *h);
void flare__relay_server_conn_closed(flare_host *h, flare_conn *c);
uint64_t flare__unix_now(flare_host *h);

/* svc_dcutr.c */
int flare__dcutr_init(flare_host *h);
void flare__dcutr_free(flare_host *h);
void flare__dcutr_on_identified(flare_host *h, flare_conn *c);
void flare__dcutr_on_conn(flare_host *h, flare_conn *c);
void flare__dcutr_conn_closed(flare_host *h, flare_conn *c);
int flare__dcutr_inbound_role(flare_host *h, const flare_ipaddr *remote);

/* gater.c: 1 if the connection may go on, 0 if refused (the caller closes
 * it). accept: before anything is read (judges the remote IP); dial: before
 * the socket (the address's peer and IP); peer: after the handshake. */
int flare__gater_allow_accept(flare_host *h, flare_io_sock *s);
int flare__gater_allow_dial(flare_host *h, const flare_multiaddr *ma);
int flare__gater_allow_peer(flare_host *h, const flare_conn *c, const flare_peerid *peer);
void flare__gater_free(flare_host *h);

/* connmgr.c: c became ready (may schedule a trim); protections by tag
 * (idempotent; on = 0 removes the tag). */
void flare__connmgr_conn_opened(flare_conn *c);
int flare__connmgr_protect(flare_host *h, const flare_peerid *peer, const char *tag, int on);
void flare__connmgr_free(flare_host *h);
#define FLARE__TAG_RELAY_RSVP "relay-reservation"
#define FLARE__TAG_HOLEPUNCH  "holepunch"
/* svc_relay_server.c: 1 if our relay server holds a reservation of peer. */
int flare__relay_server_serves(flare_host *h, const flare_peerid *peer);

/* svc_ping.c, svc_identify.c */
int flare__ping_register(flare_host *h);
int flare__identify_register(flare_host *h);
void flare__identify_on_conn(flare_conn *c);

/* svc_autonat.c: server handlers and client state; hooks for identify
 * (a peer's protocols are known) and address changes. */
int flare__autonat_init(flare_host *h);
void flare__autonat_free(flare_host *h);
void flare__autonat_peer_identified(flare_host *h, flare_conn *c);
void flare__autonat_addrs_changed(flare_host *h);
/* A TCP connection was accepted on local_port (v1 dial-back evidence). */
void flare__autonat_inbound(flare_host *h, uint16_t local_port);

/* svc_autorelay.c: sees every host event (to follow reachability, identify
 * and connection changes; work is done later from its own timer) and the
 * outcome of each of its reservations. */
typedef enum {
    FLARE__RSVP_GRANTED,
    FLARE__RSVP_REFUSED, /* the relay answered no, or with something unusable */
    FLARE__RSVP_FAILED,  /* dial, connection or stream failure: no answer */
    FLARE__RSVP_LOST,    /* a granted reservation's connection dropped */
    FLARE__RSVP_TAKEN,   /* the application reserved there itself: no longer ours */
} flare__rsvp_outcome;
int flare__autorelay_init(flare_host *h);
void flare__autorelay_free(flare_host *h);
void flare__autorelay_on_event(flare_host *h, const flare_host_event *ev);
void flare__autorelay_rsvp_result(flare_host *h, const flare_peerid *relay,
                                  flare__rsvp_outcome what, int err);

#endif
