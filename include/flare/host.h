/*
 * flare/host.h - a libp2p host: identity, transports, connections, streams.
 *
 * A host runs on a flare_io driver (real sockets or the simulated network)
 * and owns the connection pipeline:
 *
 *   TCP -> multistream(/noise) -> Noise XX -> multistream(/yamux/1.0.0) -> yamux
 *
 * (the muxer is taken from the Noise extensions when both sides list one).
 * Every stream then negotiates its protocol with multistream-select and is
 * handed to the handler registered for it.
 *
 * Roles: the "initiator" of a connection (Noise initiator, multistream
 * dialer, yamux client) is normally the side whose socket dialed, but
 * flare_host_dial_opts.role lets the caller fix it: after a DCUtR TCP
 * simultaneous open, the peer that dialed through the relay is the client
 * whichever socket connected.
 *
 * Limited connections (relayed, later issues) only carry protocols
 * registered with FLARE_HANDLER_ALLOW_LIMITED, and flare_host_new_stream
 * refuses them with FLARE_ERR_LIMITED unless the caller passes
 * FLARE_STREAM_ALLOW_LIMITED.
 *
 * All callbacks run from the driver's loop. Objects passed to callbacks
 * (events, streams) are valid for the duration of the callback, and streams
 * until their on_close.
 */
#ifndef FLARE_HOST_H
#define FLARE_HOST_H

#include "flare/addrmgr.h"
#include "flare/buf.h"
#include "flare/common.h"
#include "flare/io.h"
#include "flare/keys.h"
#include "flare/multiaddr.h"
#include "flare/peerid.h"
#include "flare/portmap.h"
#include "flare/reachability.h"
#include "flare/sig_cache.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct flare_host flare_host;
typedef struct flare_conn flare_conn;
typedef struct flare_stream flare_stream;

#define FLARE_PROTOCOL_MAX 256 /* longest protocol id flare accepts */

/* ---- configuration -------------------------------------------------------- */

/* Resource manager limits (docs/resource-manager.md): what one host lets
 * the network make it hold. 0 means "no limit" for every field. Inbound
 * and outbound connection budgets are separate, so that an inbound flood
 * never takes the slots of our own dials; per-IP and per-subnet (/24 for
 * IPv4, /56 for IPv6) limits apply to inbound direct connections. */
typedef struct flare_rcmgr_limits {
    size_t conns_inbound;             /* default 768 (relayed ones included) */
    size_t conns_outbound;            /* default 256 */
    size_t conns_per_ip;              /* inbound, one remote IP address; default 16 */
    size_t conns_per_subnet;          /* inbound, one /24 or /56; default 64 */
    size_t handshakes;                /* inbound connections still upgrading (the oldest
                                         is closed to make room); default 128 */
    size_t handshakes_per_ip;         /* default 8 */
    size_t handshakes_per_subnet;     /* default 32 */
    size_t streams_inbound;           /* whole host; default 16384 */
    size_t streams_outbound;          /* whole host; default 16384 */
    size_t streams_per_peer_inbound;  /* all connections of one peer; default 1024 */
    size_t streams_per_peer_outbound; /* default 1024 */
    size_t streams_per_protocol_peer; /* inbound streams of one protocol from one peer; 256 */
    size_t streams_per_protocol;      /* inbound streams of one protocol, all peers; 8192 */
    size_t mem;                       /* bytes held by all connections; default 1 GiB */
    size_t mem_per_peer;              /* all connections of one peer; default 64 MiB */
    size_t mem_per_conn;              /* one connection; default 32 MiB */
} flare_rcmgr_limits;

/* Host settings. Always start from flare_host_settings_default(), which
 * fills every field with a real value and sets struct_size; then change the
 * fields you need. Zero is never "use the default": every field means what
 * it says (0 for a timeout documented "0 = never" or a feature flag is a
 * real choice). flare_host_new refuses a struct whose struct_size is not
 * sizeof(flare_host_settings) of the library (a caller built against other
 * headers, or one that skipped _default()). */
typedef struct flare_host_settings {
    size_t struct_size;              /* set by flare_host_settings_default */
    const char *agent_version;       /* identify agentVersion (copied); default "flare/<version>" */
    size_t max_connections;          /* total; default 1024 */
    size_t max_connections_per_peer; /* default 8 */
    size_t max_streams_per_conn;     /* default 512 */
    size_t max_stream_buffer;        /* bytes queued per stream for writing; default 1 MiB */
    flare_tstamp handshake_timeout;  /* whole upgrade; default 15 s */
    flare_tstamp dial_timeout;       /* TCP connect; default 10 s */
    flare_tstamp negotiate_timeout;  /* a stream's multistream negotiation; default 10 s */
    flare_tstamp idle_timeout;       /* close connections with no streams after; 0 = never */
    flare_tstamp keepalive_interval; /* yamux ping after this long with nothing received
                                      * (go-yamux's rule); default 30 s, 0 = off */
    int reuse_port;                  /* dial from the listen port (hole punching); default 1 */
    int enable_identify;             /* default 1 */
    int enable_ping;                 /* default 1 */
    int doc_addrs_public;            /* treat TEST-NET ranges as public (lab, simulator) */
    /* Dial private, loopback, link-local and CGNAT addresses that a peer
     * handed us (DCUtR CONNECT, identify for connection reversal); default
     * 0: a peer must not make us knock on ports of our own LAN. */
    int dial_private_peer_addrs;
    int enable_holepunch; /* DCUtR on relayed connections; default 1 */
    /* WebRTC private-to-private (/p2p-circuit/webrtc): dial such addresses,
     * answer /webrtc-signaling/0.0.1 on any connection, and announce
     * RELAYADDR/p2p-circuit/webrtc beside each relayed address; default 1. */
    int enable_webrtc;
    /* Streams of a relayed connection move onto the direct connection that
     * replaces it, without the application noticing, when the peer also
     * announces /flare/migrate/1.0.0; default 1. migrate_buffer: bytes of
     * each such stream kept to send again (a stream that wrote more than
     * the peer had read beyond it stays on the relay); default 256 KiB. */
    int enable_migration;
    size_t migrate_buffer;
    /* AutoNAT (v1 + v2): every node serves, so that reachability checks
     * need no special infrastructure (the decentralized design). */
    int enable_autonat_server;             /* dial others back on request; default 1 */
    int enable_autonat_client;             /* probe our own reachability; default 1 */
    size_t autonat_servers_max;            /* servers asked per probe round; default 3 */
    flare_tstamp autonat_boot_delay;       /* first probe round; default 15 s */
    flare_tstamp autonat_retry_interval;   /* while unsure; default 90 s */
    flare_tstamp autonat_refresh_interval; /* once settled; default 15 min */
    int autonat_allow_private; /* also ask about non-public addresses (loopback tests only) */
    /* AutoRelay (opt-in, like go-libp2p's EnableAutoRelay): while AutoNAT
     * says we are private, keep reservations on relays picked by
     * ourselves; see flare_host_autorelay_add_static. */
    int enable_autorelay;           /* default 0 */
    size_t autorelay_num;           /* reservations to keep (>= 1); default 2 */
    flare_tstamp autorelay_backoff; /* after a refusal or repeated failure; default 1 h */
    /* Connection manager (see flare_host_protect_peer): above high water,
     * the least useful connections are closed down to low water. */
    size_t conn_low_water;          /* default 160; above high water counts as high water */
    size_t conn_high_water;         /* default 192; 0 = never trim */
    flare_tstamp conn_grace_period; /* new connections are kept this long; default 20 s */
    /* Resource manager; max_connections, max_connections_per_peer and
     * max_streams_per_conn above are enforced by it too. */
    flare_rcmgr_limits limits;
    /* Backpressure on a connection's socket write queue (what the kernel has
     * not taken yet), so a peer that never reads cannot grow our memory:
     * above write_high its streams keep their data queued
     * (flare_stream_write reports backpressure); above twice write_high
     * (capped halfway to write_max) we also stop reading from it, so its
     * input (pings, stream opens, ...) can make us say nothing more; at
     * write_low both resume. A queue beyond write_max closes the connection
     * (FLARE_ERR_LIMIT). A connection paused this way still sends its yamux
     * keepalive, whose answer it cannot read while paused (nor anything else,
     * so nothing defers the ping): a peer that never reads is dropped within
     * keepalive_interval plus the 10 s ping timeout once paused. */
    size_t conn_write_high; /* bytes; default 1 MiB */
    size_t conn_write_low;  /* bytes; default 256 KiB; below write_high */
    size_t conn_write_max;  /* bytes; default 8 MiB; above write_high */
    /* Listen with FLARE_IO_SHARE: share the listen address with another node
     * (SO_REUSEPORT splits incoming connections between them). By default a
     * second node on the same address fails with FLARE_ERR_ADDR_IN_USE. */
    int share_listen; /* default 0 */
    /* Security protocols to offer in the connection upgrade, as their
     * multistream protocol IDs separated by commas, in preference order
     * (copied): the dialer proposes them in this order, the listener accepts
     * any of them. Each must be one flare implements, else flare_host_new
     * fails with FLARE_ERR_UNSUPPORTED. Default "/noise". "/plaintext/2.0.0"
     * (libp2p plaintext: keys exchanged, nothing encrypted or authenticated
     * against an active attacker) exists for simulations only. */
    const char *security;
    /* The /webrtc-direct DTLS certificate and key as PEM (what
     * flare_host_webrtc_cert_pem gave a previous run; read by
     * flare_host_new only), so the /certhash in our addresses stays the same
     * across restarts. Default NULL: a new one in memory. */
    const char *webrtc_cert_pem;
    /* Secure WebSockets (/tls/ws, /wss). The listener's certificate chain
     * and private key, PEM files read by flare_host_new (both or neither;
     * without them a /tls/ws listen fails with FLARE_ERR_INVALID_ARG), and
     * the CA certificates (PEM) a wss dial trusts instead of the system's
     * store (read at the first wss dial). Default NULL; the strings must
     * stay valid while the host lives. */
    const char *tls_cert_file;
    const char *tls_key_file;
    const char *tls_ca_file;
    /* Signatures that verified (flare/sig_cache.h), consulted before
     * verifying a peer's signed peer record or its security handshake's
     * identity signature again. Owned by the caller: it must outlive the
     * host, and hosts may share one, also across threads (the cache is
     * thread-safe). Default NULL: the host makes its own of
     * FLARE_SIG_CACHE_DEFAULT_ENTRIES. */
    flare_sig_cache *sig_cache;
} flare_host_settings;

/* Fills every field of c with the default documented on it, and
 * c->struct_size. */
void flare_host_settings_default(flare_host_settings *c);

/* ---- events ---------------------------------------------------------------- */

/* Events: ev->type says which member of ev->u is valid (the comment on each
 * type names it); the other members are garbage. Pointers in an event are
 * valid only during the callback. */
typedef enum flare_host_event_type {
    FLARE_HOST_EV_LISTENING,       /* u.listen: addr bound (error 0) */
    FLARE_HOST_EV_LISTEN_FAILED,   /* u.listen: addr, error */
    FLARE_HOST_EV_CONN_OPENED,     /* u.conn: conn, peer, addr (remote), outbound */
    FLARE_HOST_EV_CONN_CLOSED,     /* u.conn: conn, peer, addr, outbound, error (0: graceful) */
    FLARE_HOST_EV_DIAL_FAILED,     /* u.failed: peer (may be empty), addr, error */
    FLARE_HOST_EV_INCOMING_FAILED, /* u.failed: addr (remote), error; peer NULL */
    FLARE_HOST_EV_IDENTIFIED,      /* u.identified; see flare_host_peer_info */
    FLARE_HOST_EV_PING,            /* u.ping */
    FLARE_HOST_EV_OBSERVED_ADDR,   /* u.observed: what the peer sees us as */
    FLARE_HOST_EV_ADDRS_CHANGED,   /* (no member) our external addresses or NAT type changed */
    /* Circuit relay v2, client side. */
    FLARE_HOST_EV_RESERVATION_OK,     /* u.reservation: relay, addr (our first relayed address) */
    FLARE_HOST_EV_RESERVATION_FAILED, /* u.reservation: relay, error, status; retried with backoff
                                       */
    FLARE_HOST_EV_RESERVATION_LOST,   /* u.reservation: relay, error; re-reserving */
    /* Relay side (our relay server). */
    FLARE_HOST_EV_RELAY_RESERVED,       /* u.relay_reserved: peer reserved (or refreshed) a slot */
    FLARE_HOST_EV_RELAY_CIRCUIT_OPENED, /* u.circuit: src -> dst */
    FLARE_HOST_EV_RELAY_CIRCUIT_CLOSED, /* u.circuit: src -> dst, error (limit, reset, 0) */
    /* DCUtR hole punching. */
    FLARE_HOST_EV_HOLEPUNCH_STEP, /* u.holepunch_step */
    FLARE_HOST_EV_HOLEPUNCH,      /* u.holepunch: the punch is done */
    FLARE_HOST_EV_REACHABILITY,   /* u.reachability: AutoNAT's verdict for an IP version changed */
    FLARE_HOST_EV_AUTORELAY,      /* u.autorelay: AutoRelay's choices */
    FLARE_HOST_EV_PORTMAP,        /* u.portmap: a port mapping was made, renewed, lost */
    FLARE_HOST_EV_DHT,            /* u.dht: the Kademlia DHT's mode or table (flare/kad.h) */
} flare_host_event_type;

typedef struct flare_host_event {
    flare_host_event_type type;
    union {
        struct {
            const flare_multiaddr *addr;
            int error;
        } listen;
        struct {
            flare_conn *conn;
            const flare_peerid *peer;
            const flare_multiaddr *addr; /* the remote's */
            int outbound;                /* our socket dialed */
            int error;                   /* CONN_CLOSED: why (0: graceful) */
        } conn;
        struct {
            const flare_peerid *peer; /* DIAL_FAILED: the dialed peer (may be empty); else NULL */
            const flare_multiaddr *addr;
            int error;
        } failed;
        struct {
            flare_conn *conn;
            const flare_peerid *peer;
            const flare_multiaddr *addr; /* the connection's remote address */
            int outbound;
            /* 1: the peer's addresses come from its verified signed peer
             * record. record_error (with reason): the record it sent was
             * rejected (bad signature, another peer's, not a peer record) and
             * its unsigned listenAddrs were used. */
            int signed_record;
            int record_error;
            const char *reason;
        } identified;
        struct {
            flare_conn *conn;
            const flare_peerid *peer;
            flare_tstamp rtt;
        } ping;
        struct {
            flare_conn *conn;
            const flare_peerid *peer;
            const flare_multiaddr *addr;
        } observed;
        struct {
            const flare_peerid *relay;
            const flare_multiaddr
                *addr; /* OK: our relayed address (may be NULL); else the relay's */
            int error;
            const char *status; /* FAILED: the relay's status name if it refused, else NULL */
        } reservation;
        struct {
            const flare_peerid *peer;
        } relay_reserved;
        struct {
            const flare_peerid *src, *dst;
            int error;
        } circuit;
        struct {
            const flare_peerid *peer; /* NULL if the punch is already gone */
            int initiator;            /* we are B, the side that dials first */
            const char *step;         /* "connect_sent", "rtt", "sync_sent", ... */
            uint64_t value;           /* step-specific (address count, RTT ns, reason) */
            flare_tstamp rtt;         /* step "rtt": the measured RTT; else 0 */
            unsigned attempt;         /* 1..3 */
            const char *reason;       /* attempt-failed / gave-up: why */
        } holepunch_step;
        struct {
            const flare_peerid *peer;
            int initiator;
            int error;                   /* 0: direct connection conn at addr */
            flare_conn *conn;            /* NULL on failure */
            const flare_multiaddr *addr; /* NULL on failure */
            /* The winner's family ("ip4", "ip6") and transport ("tcp",
             * "quic"): every family and transport is punched at once and
             * the first direct connection is kept. NULL on failure. */
            const char *family, *transport;
            flare_tstamp rtt; /* relayed RTT measured by the punch (0 if none) */
            unsigned attempt;
            const char *reason; /* failure: why (a name), or NULL */
        } holepunch;
        struct {
            int family;              /* 4 or 6 */
            flare_reach_state reach; /* the new verdict */
        } reachability;
        struct {
            const char *reason;        /* "start", "stop", "reserve", "backoff", "replaced", ... */
            const flare_peerid *relay; /* NULL for "start"/"stop" */
            const flare_multiaddr *addr; /* the relay's address, or NULL */
            int error;                   /* why, for "backoff"/"replaced" */
        } autorelay;
        struct {
            const char *what;                /* "mapped", "renewed", "lost", "failed" */
            flare_portmap_proto protocol;    /* FLARE_PORTMAP_NONE: failed before any */
            const flare_multiaddr *internal; /* our listen address */
            const flare_multiaddr *external; /* the gateway's address for it, or NULL */
            uint32_t lifetime;               /* seconds granted (0: permanent UPnP lease) */
            int error;                       /* lost / failed: why */
        } portmap;
        struct {
            const char *reason; /* "mode": the mode changed (or was set at start);
                                   "ready": the routing table holds its first peers */
            int server;         /* 1: serving the DHT, 0: client only */
            size_t peers;       /* peers in the routing table */
        } dht;
    } u;
} flare_host_event;

typedef void (*flare_host_event_cb)(flare_host *h, const flare_host_event *ev, void *user);

/* ---- lifecycle ------------------------------------------------------------- */

/* Creates a host with identity key (copied) on driver io. cfg (copied) may
 * be NULL: the defaults.
 * Returns 0 with *out set (free it with flare_host_del), or a negative
 * FLARE_ERR_* code: FLARE_ERR_INVALID_ARG (cfg->struct_size is not
 * sizeof(flare_host_settings), agent_version or security is NULL, a
 * conn_write_* mark or autorelay_num is 0, or a bad key),
 * FLARE_ERR_UNSUPPORTED (security names a protocol flare does not
 * implement, or none), FLARE_ERR_NOMEM, FLARE_ERR_MALFORMED
 * (webrtc_cert_pem). The certificates of the QUIC and WebRTC-direct
 * transports are made at their first listen or dial (see those calls), not
 * here: most hosts never use them. */
int flare_host_new(flare_host **out, flare_io *io, const flare_privkey *key,
                   const flare_host_settings *cfg, const flare_mem *mem);
/* Closes every connection and listener (no callbacks after) and frees. */
void flare_host_del(flare_host *h);
void flare_host_set_event_cb(flare_host *h, flare_host_event_cb cb, void *user);
/* Returns our peer ID (owned by h). */
const flare_peerid *flare_host_peerid(const flare_host *h);
/* Returns the signature cache the host uses (settings' sig_cache or its own;
 * owned as that says), e.g. for flare_sig_cache_stats_get. */
flare_sig_cache *flare_host_sig_cache(flare_host *h);
/* Returns the driver h was created on (borrowed). */
flare_io *flare_host_io(flare_host *h);

/* Listens on a TCP multiaddr (/ip4|ip6/.../tcp/PORT). The bound address is
 * reported with FLARE_HOST_EV_LISTENING and flare_host_listen_addrs. */
/* Returns 0 once listening (FLARE_HOST_EV_LISTENING follows), or a negative FLARE_ERR_* code
 * (FLARE_ERR_ADDR_IN_USE, FLARE_ERR_UNSUPPORTED, FLARE_ERR_NOMEM, ...) also reported as
 * FLARE_HOST_EV_LISTEN_FAILED. The first QUIC or WebRTC-direct listen or dial makes that
 * transport's certificate: its failure (FLARE_ERR_CRYPTO, FLARE_ERR_NOMEM) is that call's
 * error, and the next call tries again. */
int flare_host_listen(flare_host *h, const flare_multiaddr *ma);
/* The bound listen addresses (without /p2p/). Returns the count (<= cap). */
size_t flare_host_listen_addrs(const flare_host *h, flare_multiaddr *out, size_t cap);

/* External addresses learnt from identify (confirmed first; candidates only
 * if include_candidates). Returns the count written. */
size_t flare_host_external_addrs(flare_host *h, flare_multiaddr *out, size_t cap,
                                 int include_candidates);
/* NAT mapping behaviour of our TCP traffic for family 4 or 6. */
/* Returns the NAT type our observed addresses show for family (4 or 6). */
flare_nat_type flare_host_nat_type(flare_host *h, int family);

/* ---- dialing --------------------------------------------------------------- */

typedef enum flare_conn_role {
    FLARE_ROLE_AUTO = 0,      /* initiator iff our socket dialed */
    FLARE_ROLE_INITIATOR = 1, /* we are the client of every protocol on it */
    FLARE_ROLE_RESPONDER = 2,
} flare_conn_role;

typedef struct flare_dial_opts {
    flare_conn_role role;
    int no_reuse;  /* don't dial from the listen port */
    int force_new; /* dial even if a connection to the peer exists */
} flare_dial_opts;

/* conn is the new (or existing) connection on success, NULL on failure. */
typedef void (*flare_dial_cb)(flare_host *h, flare_conn *conn, int status, void *user);

/* Dials ma (/ip4|ip6/../tcp/../p2p/ID; without /p2p/ any peer is accepted;
 * or .../p2p/RELAY/p2p-circuit/p2p/ID through a relay: a limited connection).
 * If a connection to that peer exists it is returned (from the loop); if a
 * dial to that peer is in flight the callback joins it. opts may be NULL.
 * cb may be NULL. Returns 0 (the result comes through cb) or an error, with no
 * callback: FLARE_ERR_UNSUPPORTED (no transport dials ma), FLARE_ERR_LIMIT,
 * FLARE_ERR_NOMEM, the transport's (FLARE_ERR_CRYPTO or FLARE_ERR_NOMEM if
 * the first QUIC or WebRTC-direct use cannot make its certificate, see
 * flare_host_listen), ... */
int flare_host_dial(flare_host *h, const flare_multiaddr *ma, const flare_dial_opts *opts,
                    flare_dial_cb cb, void *user);
/* Dials a peer at its addresses in the peerstore, best first: addresses a
 * direct connection of ours came up at before, public ones, the others,
 * relayed ones last. A new attempt starts every 250 ms while earlier ones
 * are in flight, at once when one fails; the first connection wins (a later
 * one no better than it is closed) and cb runs once. An error return (no
 * address could be dialed) means no callback. */
int flare_host_connect(flare_host *h, const flare_peerid *peer, const flare_dial_opts *opts,
                       flare_dial_cb cb, void *user);

/* ---- connections ----------------------------------------------------------- */

/* The best open connection to peer (direct over limited, then newest), or NULL. */
/* Returns the best connection to peer (owned by the host), or NULL. */
flare_conn *flare_host_conn_to(flare_host *h, const flare_peerid *peer);
/* Returns the remote peer ID (owned by c). */
const flare_peerid *flare_conn_peer(const flare_conn *c);
/* Returns the remote address (owned by c). */
const flare_multiaddr *flare_conn_remote_addr(const flare_conn *c);
/* Returns our address of c (owned by c). */
const flare_multiaddr *flare_conn_local_addr(const flare_conn *c);
/* Our socket dialed. Returns 1 if our socket dialed, else 0. */
int flare_conn_is_outbound(const flare_conn *c);
/* Our role in the protocols. Returns 1 if we have the initiator role in the protocols, else 0. */
int flare_conn_is_initiator(const flare_conn *c);
/* Returns 1 for a limited (relayed) connection, else 0. */
int flare_conn_is_limited(const flare_conn *c);
/* Returns the muxer's name (static): a protocol ID such as "/yamux/1.0.0",
 * or a transport's own (e.g. "quic"); "" before there is one. */
const char *flare_conn_muxer(const flare_conn *c);
/* The transport the connection runs over. Returns its name (static): "tcp",
 * "circuit" (relayed), or another registered transport's. */
const char *flare_conn_transport(const flare_conn *c);
/* The security protocol that authenticated the connection. Returns its ID
 * (e.g. "/noise"; a transport with its own security names it, e.g. "tls"),
 * or "" before one is chosen. */
const char *flare_conn_security(const flare_conn *c);
/* Closes the connection gracefully (GOAWAY) and frees it now: its streams'
 * on_close (also those of streams reset but not yet told) and
 * FLARE_HOST_EV_CONN_CLOSED run inside this call; c is invalid afterwards. */
void flare_conn_close(flare_conn *c);
/* Returns the number of connections. */
size_t flare_host_num_conns(const flare_host *h);

/* ---- connection manager ------------------------------------------------------ */

/* When more than cfg.conn_high_water connections are open, a timer closes
 * the least useful ones until cfg.conn_low_water are left: first those
 * without streams, then those with the fewest, the least recently used
 * first (a stream last opened or closed on it, or its opening). Never
 * closed: connections to protected peers, to peers whose reservation our
 * relay server holds, connections carrying a relayed circuit (a relay's hop
 * or stop stream, the carrier of our relayed connection), those younger
 * than cfg.conn_grace_period, and those still in their handshake.
 * Connections with streams are only closed while more than high water
 * remain. flare itself protects the relays holding our
 * reservations (tag "relay-reservation") and the peers it is hole punching
 * with, relayed connection included (tag "holepunch"). */

#define FLARE_CONNMGR_TAG_MAX  32 /* bytes of a tag, NUL included */
#define FLARE_CONNMGR_MAX_TAGS 8  /* tags per peer */

/* Protects (on = 1) or unprotects (on = 0) every connection to peer under
 * tag; a peer stays protected while it has a tag, connected or not.
 * Idempotent per tag. Errors: FLARE_ERR_INVALID_ARG (empty peer, tag empty
 * or >= FLARE_CONNMGR_TAG_MAX bytes), FLARE_ERR_LIMIT (the peer already
 * has FLARE_CONNMGR_MAX_TAGS tags), FLARE_ERR_NOMEM. */
int flare_host_protect_peer(flare_host *h, const flare_peerid *peer, const char *tag, int on);
/* 1 if peer is protected under tag (NULL: under any tag), else 0. */
/* Returns 1 if peer is protected (under tag; any tag if tag is NULL), else 0. */
int flare_host_is_protected(flare_host *h, const flare_peerid *peer, const char *tag);
/* Connections the manager has closed so far. */
/* Returns the number of connections closed by trimming so far. */
uint64_t flare_host_connmgr_trimmed(const flare_host *h);

/* ---- connection gater ---------------------------------------------------------- */

/* Allow and deny lists of peers and of IP subnets. Consulted on an inbound
 * connection before any byte is read (remote IP; refused ones are reset and
 * reported as FLARE_HOST_EV_INCOMING_FAILED with FLARE_ERR_REFUSED), on a
 * dial (the address's IP and /p2p/ peer; for a relayed address the target
 * peer, the relay being dialed and judged on its own: flare_host_dial
 * returns FLARE_ERR_REFUSED), and after the handshake (the authenticated
 * peer: the connection fails with FLARE_ERR_REFUSED).
 *
 * A deny entry always wins. A non-empty allow list of a kind lets only its
 * entries through: with an allowed subnet, every other IP is refused; with
 * an allowed peer, every other peer. A connection must pass both kinds. IP
 * rules judge the socket's remote address, so they do not apply to relayed
 * connections (the relay's own connection is judged by IP); peer rules
 * apply to all. IPv4-mapped IPv6 addresses are judged as IPv4. Changing a
 * list closes open connections it now refuses. No lists (the default):
 * everything passes. */
typedef enum flare_gater_list {
    FLARE_GATER_DENY = 0,
    FLARE_GATER_ALLOW = 1,
} flare_gater_list;

/* Adds (on = 1) or removes (on = 0) peer on list. Errors:
 * FLARE_ERR_INVALID_ARG, FLARE_ERR_NOT_FOUND (removing an absent entry),
 * FLARE_ERR_NOMEM. */
int flare_host_gater_peer(flare_host *h, flare_gater_list list, const flare_peerid *peer, int on);
/* Adds or removes the subnet net/prefix (prefix 0..32 for IPv4, 0..128
 * for IPv6; host bits are ignored; the port is ignored). Errors: as above,
 * FLARE_ERR_INVALID_ARG also for a bad family or prefix. */
int flare_host_gater_subnet(flare_host *h, flare_gater_list list, const flare_ipaddr *net,
                            unsigned prefix, int on);
/* Connections and dials refused so far. */
/* Returns the number of connections and dials refused so far. */
uint64_t flare_host_gater_refused(const flare_host *h);
/* Parses "1.2.3.0/24", "fd00::/8" or a bare address (a full-length
 * prefix). FLARE_ERR_INVALID_ARG for anything else (ports, brackets). */
int flare_cidr_parse(const char *s, flare_ipaddr *net, unsigned *prefix);

/* ---- streams --------------------------------------------------------------- */

/* Stream callbacks. Each has its own type; fill a flare_stream_cbs with
 * designated initializers (.on_data = f, ...): unnamed fields are NULL and
 * skipped, and the table survives fields being added. Every stream that was
 * handed to the application (on_open ran, or it was opened by
 * flare_*_new_stream) gets exactly one on_close, always from the loop. */

/* Outbound: negotiation finished (status 0) or failed (a FLARE_ERR_* code;
 * on_close follows). Inbound: the stream is handed to its handler (status 0). */
typedef void (*flare_stream_open_cb)(flare_stream *s, int status, void *user);
/* Bytes from the remote; data is valid only during the call. */
typedef void (*flare_stream_data_cb)(flare_stream *s, const uint8_t *data, size_t len, void *user);
/* The remote finished writing (at most once). */
typedef void (*flare_stream_eof_cb)(flare_stream *s, void *user);
/* Queued data dropped below the low-water mark after a write returned 1. */
typedef void (*flare_stream_writable_cb)(flare_stream *s, void *user);
/* The stream is gone: error 0 when both sides closed, FLARE_ERR_RESET after
 * a reset (by the remote or by flare_stream_reset), else the connection's
 * error. The last callback: the handle is invalid once it returns. */
typedef void (*flare_stream_close_cb)(flare_stream *s, int error, void *user);

typedef struct flare_stream_cbs {
    flare_stream_open_cb on_open;
    flare_stream_data_cb on_data;
    flare_stream_eof_cb on_eof;
    flare_stream_writable_cb on_writable;
    flare_stream_close_cb on_close;
} flare_stream_cbs;

#define FLARE_HANDLER_ALLOW_LIMITED 0x1 /* also served on limited connections */
#define FLARE_STREAM_ALLOW_LIMITED  0x1 /* may open on a limited connection */

/* Registers (or replaces) the handler for protocol. */
/* Returns 0 (cbs and protocol are copied), FLARE_ERR_INVALID_ARG for a bad protocol name, or
 * FLARE_ERR_NOMEM. */
int flare_host_set_handler(flare_host *h, const char *protocol, const flare_stream_cbs *cbs,
                           void *user, unsigned flags);
/* Returns 0, or FLARE_ERR_NOT_FOUND. */
int flare_host_remove_handler(flare_host *h, const char *protocol);
/* Protocols we serve, for identify. Returns the count; list valid until the
 * handler set changes. */
size_t flare_host_protocols(const flare_host *h, const char **list, size_t cap);

/* Opens a stream to the peer of conn and negotiates protocol. Data written
 * before on_open is sent with the proposal (multistream 0-RTT). */
/* Returns 0 with *out set (owned by the host; valid until its on_close),
 * or a negative FLARE_ERR_* code, and then no callback runs:
 * FLARE_ERR_INVALID_ARG, FLARE_ERR_STATE (connection not ready),
 * FLARE_ERR_LIMITED (limited connection without FLARE_STREAM_ALLOW_LIMITED),
 * FLARE_ERR_LIMIT, FLARE_ERR_NOMEM. */
int flare_conn_new_stream(flare_conn *c, const char *protocol, const flare_stream_cbs *cbs,
                          void *user, unsigned flags, flare_stream **out);
/* As above on the best connection to peer (FLARE_ERR_NOT_FOUND if none). */
int flare_host_new_stream(flare_host *h, const flare_peerid *peer, const char *protocol,
                          const flare_stream_cbs *cbs, void *user, unsigned flags,
                          flare_stream **out);

/* Queues data and sends what the stream's window allows. Returns 0 when
 * accepted; 1 when accepted but the queue is now above max_stream_buffer,
 * or holds data while the connection has used half its memory budget
 * (limits.mem_per_conn / mem_per_peer): stop writing until on_writable (an
 * echo-like handler pauses its reading);
 * FLARE_ERR_LIMIT (not accepted) when the queue would exceed twice
 * max_stream_buffer, FLARE_ERR_CLOSED after close_write or on a dead stream. */
int flare_stream_write(flare_stream *s, const uint8_t *data, size_t len);
size_t flare_stream_pending(const flare_stream *s);
/* Half-close (FIN after queued data). */
/* Returns 0, or FLARE_ERR_CLOSED on a dead stream. */
int flare_stream_close_write(flare_stream *s);
/* Resets the stream (both directions, unsent data dropped). No on_data,
 * on_eof or on_writable runs for it afterwards; on_close(FLARE_ERR_RESET)
 * follows from the loop, never inside this call, so the handle stays valid
 * until then (writes fail with FLARE_ERR_CLOSED). To free the stream's
 * context right away instead, first detach it: flare_stream_set_user(s,
 * &(flare_stream_cbs){0}, NULL). A second reset, or a reset of a stream that
 * already got on_close, does nothing. */
void flare_stream_reset(flare_stream *s);
/* Stops (1) or resumes (0) delivering on_data; unread data closes the
 * receive window, so the sender is slowed down. */
void flare_stream_pause(flare_stream *s, int paused);
/* Returns the negotiated protocol (owned by s), or NULL before negotiation. */
const char *flare_stream_protocol(const flare_stream *s);
/* Returns the connection s runs on (borrowed). */
flare_conn *flare_stream_conn(const flare_stream *s);
/* Returns 1 if the remote opened s, else 0. */
int flare_stream_is_inbound(const flare_stream *s);
void flare_stream_set_user(flare_stream *s, const flare_stream_cbs *cbs, void *user);

/* ---- peerstore --------------------------------------------------------------- */

#define FLARE_PEER_MAX_ADDRS     16
#define FLARE_PEER_MAX_PROTOCOLS 64

typedef struct flare_peer_info {
    flare_peerid id;
    size_t naddrs;
    flare_multiaddr addrs[FLARE_PEER_MAX_ADDRS];
    size_t nprotocols;
    char protocols[FLARE_PEER_MAX_PROTOCOLS][FLARE_PROTOCOL_MAX];
    char agent_version[128];
    char protocol_version[64];
    int has_pubkey;
    flare_pubkey pubkey;
} flare_peer_info;

/* Adds addresses for peer valid for ttl ns (FLARE_TSTAMP_NEVER: permanent). */
/* Returns 0, or a negative FLARE_ERR_* code (FLARE_ERR_INVALID_ARG, FLARE_ERR_NOMEM). */
int flare_host_add_addr(flare_host *h, const flare_peerid *peer, const flare_multiaddr *ma,
                        flare_tstamp ttl);
/* Copies what the peerstore knows (FLARE_ERR_NOT_FOUND if nothing). info
 * is large: allocate it, don't put it on a small stack. */
int flare_host_peer_info(flare_host *h, const flare_peerid *peer, flare_peer_info *info);
int flare_host_peer_supports(flare_host *h, const flare_peerid *peer, const char *protocol);

/* Sends identify push (/ipfs/id/push/1.0.0) to every connected peer that
 * supports it, after our addresses or protocols changed. */
/* Returns 0, or a negative FLARE_ERR_* code (FLARE_ERR_NOMEM). */
int flare_host_identify_push(flare_host *h);

/* ---- resource manager ------------------------------------------------------- */

typedef enum flare_rcmgr_scope_kind {
    FLARE_RCMGR_SYSTEM,   /* the whole host */
    FLARE_RCMGR_PEER,     /* peer: every connection with that peer ID */
    FLARE_RCMGR_IP,       /* ip: inbound connections from that address */
    FLARE_RCMGR_SUBNET,   /* ip: inbound connections from its /24 or /56 */
    FLARE_RCMGR_PROTOCOL, /* protocol: streams of it, every peer */
    FLARE_RCMGR_CONN,     /* conn: one connection */
} flare_rcmgr_scope_kind;

typedef struct flare_rcmgr_scope {
    flare_rcmgr_scope_kind kind;
    const flare_peerid *peer; /* PEER */
    const flare_ipaddr *ip;   /* IP, SUBNET (the port is ignored) */
    const char *protocol;     /* PROTOCOL */
    const flare_conn *conn;   /* CONN */
} flare_rcmgr_scope;

typedef struct flare_rcmgr_usage {
    size_t conns_inbound, conns_outbound;
    size_t handshakes; /* inbound connections not yet through Noise and the muxer */
    size_t streams_inbound, streams_outbound;
    /* Bytes allocated by connections (buffers, Noise, yamux, streams);
     * CONN also counts the socket's unsent write queue. */
    size_t memory;
    /* SYSTEM only: what the limits refused since the host started. */
    uint64_t refused_conns, refused_streams, refused_mem;
} flare_rcmgr_usage;

/* Current usage of one scope. Errors: FLARE_ERR_INVALID_ARG (unknown kind,
 * or the field the kind needs is NULL or not an IPv4/IPv6 address);
 * FLARE_ERR_NOT_FOUND when that peer, IP, subnet or protocol holds nothing
 * now (*out is then all zero). */
int flare_host_rcmgr_stat(flare_host *h, const flare_rcmgr_scope *scope, flare_rcmgr_usage *out);

/* Inbound stream limits of one protocol, replacing
 * limits.streams_per_protocol_peer and limits.streams_per_protocol for it
 * (0: no limit). The built-in services start with their own per-peer
 * limits (identify and push 8, ping, AutoNAT and DCUtR 4, relay hop 32).
 * A stream over a limit is reset once negotiated. Errors:
 * FLARE_ERR_INVALID_ARG (empty or too long protocol), FLARE_ERR_NOMEM. */
int flare_host_set_protocol_limits(flare_host *h, const char *protocol, size_t per_peer,
                                   size_t total);

/* ---- circuit relay v2 --------------------------------------------------------- */

struct flare_relay_server_settings;
/* Keeps a reservation on the relay at relay_ma (/.../p2p/RELAY): reserves,
 * refreshes before expiry, re-reserves after drops or refusals (with
 * backoff), and advertises our relayed addresses through identify.
 * Progress is reported with FLARE_HOST_EV_RESERVATION_*. A reservation
 * AutoRelay holds on that relay becomes this one (AutoRelay then looks for
 * another relay). Errors: FLARE_ERR_INVALID_ARG (no /p2p/, or relayed),
 * FLARE_ERR_EXISTS (already kept), FLARE_ERR_NOMEM. */
int flare_host_relay_reserve(flare_host *h, const flare_multiaddr *relay_ma);
/* Our relayed addresses (.../p2p/RELAY/p2p-circuit/p2p/US) from active
 * reservations. Returns the count written. */
size_t flare_host_relay_addrs(flare_host *h, flare_multiaddr *out, size_t cap);
/* Serves /libp2p/circuit/relay/0.2.0/hop with the given limits (NULL:
 * flare_relay_server_settings_default(), go-libp2p's). The host's key is
 * used whatever cfg->key says; addrs NULL: our current addresses; a
 * buffer_size below 64 KiB is raised to it.
 * Returns 0, FLARE_ERR_EXISTS if already enabled, FLARE_ERR_UNSUPPORTED,
 * FLARE_ERR_INVALID_ARG (cfg rejected by flare_relay_server_new: wrong
 * struct_size, a zero TTL, buffer or timeout), or FLARE_ERR_NOMEM. */
int flare_host_enable_relay_server(flare_host *h, const struct flare_relay_server_settings *cfg);
/* Returns the relay server's reservation count (0 when not a relay). */
size_t flare_host_relay_num_reservations(flare_host *h);
/* Returns the relay server's circuit count (0 when not a relay). */
size_t flare_host_relay_num_circuits(flare_host *h);

/* ---- AutoRelay ------------------------------------------------------------------- */

/* With cfg.enable_autorelay, the host keeps cfg.autorelay_num reservations
 * while AutoNAT's verdict for IPv4 or IPv6 is PRIVATE (an UNKNOWN verdict
 * changes nothing; PUBLIC for every known family drops them). Candidates, in
 * order: static relays (flare_host_autorelay_add_static, dialed if needed),
 * then connected peers whose identify lists the hop protocol, reached over a
 * direct connection, with a public non-relayed address, in random order,
 * those returned by the Kademlia DHT's random walks (flare/kad.h) first and
 * waited for while a walk runs (so that peers every node meets first, such
 * as bootstrap nodes, do not collect every reservation). A relay that
 * refuses (a non-OK status, no hop protocol, a bad reply or voucher), or
 * that fails twice in a row before ever granting a reservation, is left
 * alone for cfg.autorelay_backoff. A relay whose reservation is lost and
 * cannot be renewed at the first retry is replaced (it is a candidate again
 * once connected and identified again). Reservations made with
 * flare_host_relay_reserve are separate: they are kept whatever the
 * reachability, and their relays are not picked again. Every choice is
 * reported as FLARE_HOST_EV_AUTORELAY with reason "start" (we are private:
 * looking for relays), "candidate" (reserving on peer), "backoff" (peer
 * refused or kept failing), "replaced" (peer's reservation was lost),
 * "dropped-public" (we are public: reservation dropped) or "stop";
 * reservations themselves as FLARE_HOST_EV_RESERVATION_*. */

/* Adds a static relay candidate (/.../p2p/RELAY), tried before discovered
 * ones. Errors: FLARE_ERR_STATE (cfg.enable_autorelay is 0),
 * FLARE_ERR_INVALID_ARG (no /p2p/, a relayed address, or our own ID),
 * FLARE_ERR_EXISTS (already added), FLARE_ERR_NOMEM. */
int flare_host_autorelay_add_static(flare_host *h, const flare_multiaddr *relay_ma);
/* The relays on which AutoRelay currently holds an active reservation.
 * Returns the count written (<= cap). */
size_t flare_host_autorelay_relays(flare_host *h, flare_peerid *out, size_t cap);

/* ---- hole punching (DCUtR) ---------------------------------------------------- */

/* Prometheus text exposition of the hole-punch counters
 * (flare_holepunch_attempts_total, ..._outcomes_total{result,transport,ipv},
 * ..._success_attempt{n}). */
/* Returns 0 with the text appended to out, or FLARE_ERR_NOMEM. */
int flare_host_holepunch_metrics(flare_host *h, flare_buf *out);

/* ---- ping ------------------------------------------------------------------ */

typedef void (*flare_ping_cb)(flare_host *h, const flare_peerid *peer, int status, flare_tstamp rtt,
                              void *user);
/* One ping (/ipfs/ping/1.0.0) over the best connection to peer. */
/* Returns 0 (cb follows from the loop), or a negative FLARE_ERR_* code as
 * flare_host_new_stream (FLARE_ERR_NOT_FOUND without a connection to peer),
 * or FLARE_ERR_NOMEM. */
int flare_host_ping(flare_host *h, const flare_peerid *peer, flare_ping_cb cb, void *user);

/* ---- AutoNAT ----------------------------------------------------------------- */

/* The client side runs on its own: a probe round is due on the schedule of
 * flare/reachability.h (boot delay, retry, refresh; sooner when new servers
 * or addresses appear). A round asks up to autonat_servers_max connected
 * peers that announced AutoNAT in identify (v2 preferred, v1 otherwise)
 * about our public candidate addresses: listen addresses that are public
 * and the external addresses of the address manager, candidates included.
 * Changes of the per-IP-version verdict are reported as
 * FLARE_HOST_EV_REACHABILITY. Limited (relayed) connections are never used. */

/* The current verdict for IP version family (4 or 6): FLARE_REACH_UNKNOWN
 * also when the client is disabled or family is not 4 or 6. */
/* Returns AutoNAT's verdict for family (4 or 6). */
flare_reach_state flare_host_reachability(flare_host *h, int family);

/* The addresses under test and their verdicts (states may be NULL).
 * Returns the count written (<= cap). */
size_t flare_host_reachability_addrs(flare_host *h, flare_multiaddr *out, flare_reach_state *states,
                                     size_t cap);

/* status: 0 when at least one server answered with a verdict,
 * FLARE_ERR_NOT_FOUND when no connected peer serves AutoNAT,
 * FLARE_ERR_UNREACHABLE when every server refused or failed. */
typedef void (*flare_autonat_probe_cb)(flare_host *h, int status, void *user);

/* Runs a probe round now (in addition to the schedule); cb (may be NULL)
 * runs from the loop when every probe of the round ended. Errors:
 * FLARE_ERR_STATE (the client is disabled), FLARE_ERR_NOMEM. */
int flare_host_autonat_probe(flare_host *h, flare_autonat_probe_cb cb, void *user);

/* ---- port mapping -------------------------------------------------------------- */

/* Maps our private IPv4 listen addresses (present and future) on the default
 * gateway: PCP, then NAT-PMP, then UPnP IGD (drivers with it: the libuv one
 * when built with miniupnpc; the simulator's NAT boxes answer PCP and
 * NAT-PMP). Off by default, as go-libp2p's NATPortMap. A mapped address is
 * handed to AutoNAT as a candidate and advertised once AutoNAT found it
 * reachable (or at once with cfg.advertise_unconfirmed); mappings are
 * renewed, and deleted when the host is destroyed. Progress is reported as
 * FLARE_HOST_EV_PORTMAP. cfg NULL: flare_portmap_settings_default.
 * Returns 0, FLARE_ERR_EXISTS (already enabled), FLARE_ERR_INVALID_ARG (bad
 * struct_size, lifetime < 120, no protocol, a zero retry setting) or
 * FLARE_ERR_UNSUPPORTED (the host has no port mapping service). */
int flare_host_enable_portmap(flare_host *h, const flare_portmap_settings *cfg);

typedef struct flare_portmap_info {
    flare_portmap_proto proto;
    flare_multiaddr internal; /* our listen address */
    flare_multiaddr external; /* the gateway's, for it */
    uint32_t lifetime;        /* seconds granted (0: permanent) */
} flare_portmap_info;

/* The mappings held now. Returns the count written (<= cap). */
size_t flare_host_portmap_mappings(flare_host *h, flare_portmap_info *out, size_t cap);

/* ---- WebRTC-direct -------------------------------------------------------------------
 * /ip4|ip6/ADDR/udp/PORT/webrtc-direct listen addresses are announced with
 * /certhash/H, the hash of the host's DTLS certificate. */

/* Appends the host's WebRTC-direct certificate and key as PEM to out (to
 * hand to flare_host_settings.webrtc_cert_pem on the next run), making it
 * first if no listen or dial did yet. Returns 0, FLARE_ERR_UNSUPPORTED (no
 * WebRTC-direct transport) or an error. */
int flare_host_webrtc_cert_pem(flare_host *h, flare_buf *out);

/* ---- STUN server ----------------------------------------------------------------------
 * Every host answers STUN Binding requests (RFC 8489) that reach its UDP
 * listen sockets with the address it sees them come from
 * (XOR-MAPPED-ADDRESS): a public node is a STUN server for browsers and for
 * private peers gathering server-reflexive ICE candidates. QUIC, STUN and
 * DTLS share a port by the first byte of each datagram (RFC 7983). Answers
 * are rate limited (per source IP: 10 per second, bursts of 20, 256 sources
 * tracked; per host: 1000 per second), never longer than the request plus
 * 32 bytes (no amplification), and a malformed or authenticated request is
 * not answered at all. On by default. */
typedef struct flare_stun_server_stats {
    uint64_t answered;     /* Binding success responses sent */
    uint64_t rate_limited; /* valid requests dropped by the rate limits */
    uint64_t ignored;      /* malformed, not a Binding request, or unanswerable */
} flare_stun_server_stats;

/* Turns the STUN server on (on != 0, the default) or off. Returns 0 or
 * FLARE_ERR_UNSUPPORTED (the host has no STUN service). */
int flare_host_stun_server_enable(flare_host *h, int on);
/* Also serves STUN on a UDP socket of its own bound to local (port 0: any
 * free port), for a node without a QUIC listener (or on the standard port
 * 3478). bound (may be NULL) gets the bound address. Returns 0,
 * FLARE_ERR_EXISTS (one is already open), FLARE_ERR_INVALID_ARG,
 * FLARE_ERR_UNSUPPORTED or the driver's bind error (FLARE_ERR_ADDR_IN_USE,
 * FLARE_ERR_ADDR_NOT_AVAIL, FLARE_ERR_PERMISSION). */
int flare_host_stun_listen(flare_host *h, const flare_ipaddr *local, flare_ipaddr *bound);
/* Fills out with the server's counters. Returns 0 or FLARE_ERR_UNSUPPORTED. */
int flare_host_stun_server_stats(flare_host *h, flare_stun_server_stats *out);

#ifdef __cplusplus
}
#endif
#endif
