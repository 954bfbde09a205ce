/*
 * Transports: what a connection runs over. The host core picks one by the
 * multiaddr (the registry below, like the services' table) and never names
 * one; each transport keeps its own state behind c->tr and reports back
 * through the flare__conn_* calls below.
 *
 * Two kinds:
 *
 *  - FLARE__TR_BYTES: a byte stream (TCP, a relayed circuit, WebSocket).
 *    The core runs the upgrade over it (multistream -> a security protocol
 *    -> multistream -> yamux) through flare__transport_ops.
 *  - FLARE__TR_SESSION: brings its own security and streams (QUIC, WebRTC).
 *    No upgrade: the transport hands the connection an authenticated
 *    session (flare__conn_session_ready: the peer's public key, the
 *    security and muxer names) and a flare__muxer_ops of its own
 *    (host/muxer.h); everything above the connection (multistream per
 *    stream, identify, ping, relay, DCUtR, resource manager, connection
 *    manager, gater, events) works unchanged.
 *
 * A transport chooses the connection's addresses (c->local_ip/remote_ip,
 * local_ma/remote_ma) when it attaches, and sets c->limited if the
 * connection may only carry protocols allowed on limited connections.
 *
 * Inbound (a transport's listener accepted something):
 *   c = flare__conn_accept(h, t, &remote_ip, &remote_ma)   gater + rcmgr
 *   NULL: refused, close what was accepted. Otherwise attach (ops, state,
 *   addresses), then
 *   flare__conn_accepted(c)       counts c, services' on_inbound, and for a
 *                                 byte stream starts the upgrade
 *   session kind: flare__conn_session_ready(c, ...) once authenticated.
 * Outbound: flare_host_dial creates c (outbound, c->remote_ma, c->peer if
 *   the address names one, the dialer's callback, gater and rcmgr already
 *   checked) and calls the transport's dial, which attaches at once and
 *   later either starts the upgrade (flare__conn_start_upgrade, byte
 *   stream), completes the session (flare__conn_session_ready), or fails
 *   (flare__conn_transport_lost).
 */
#ifndef FLARE_TRANSPORT_H
#define FLARE_TRANSPORT_H

#include "host/host_int.h"

/* The remote IP is not the peer's own (it is a relay's): no per-IP limits. */
#define FLARE__TR_SHARED_IP 1u
/* An accepted connection has a handshake of its own first (WebSocket,
 * TLS): the transport calls flare__conn_start_upgrade when it is done; the
 * handshake deadline runs from the accept. */
#define FLARE__TR_LATE_UPGRADE 2u

typedef enum {
    FLARE__TR_BYTES,   /* a byte stream: the core runs the upgrade over it */
    FLARE__TR_SESSION, /* secured and multiplexed by itself (QUIC, WebRTC) */
} flare__transport_kind;

/* One transport in the host's registry (flare__host_new takes the list;
 * src/transport/builtin.c has the built-in one). Dialing takes the first
 * transport in list order whose can_dial accepts the address; listening
 * likewise with can_listen. */
struct flare__transport {
    const char *name; /* "tcp", "circuit", ... (flare_conn_transport) */
    flare__transport_kind kind;
    /* A dial replaces a limited connection: an existing limited (relayed)
     * connection to the peer is not what the dialer gets (WebRTC over a
     * relay's signalling). */
    int replaces_limited;
    /* Optional: at host creation (after the core, before the services);
     * *state starts NULL. Costly state a host may never use (QUIC's and
     * WebRTC-direct's certificates) waits for the first listen or dial,
     * whose error a failure then is. free: at host destruction, after
     * every connection and listener is gone. */
    int (*init)(flare_host *h, void **state);
    void (*free)(flare_host *h, void *state);
    /* 1 if this transport dials / listens on ma. */
    int (*can_dial)(const flare_multiaddr *ma);
    int (*can_listen)(const flare_multiaddr *ma); /* optional: never listens */
    /* Listens on ma: sets l->handle and l->ma (the bound address, e.g. with
     * the port chosen). l->host and l->transport are set; its accepts use
     * flare__conn_accept. 0 or an error. */
    int (*listen)(flare_host *h, void *state, const flare_multiaddr *ma, flare__listener *l);
    void (*close_listener)(flare_host *h, void *state, flare__listener *l);
    /* Starts an outbound connection c to ma (see the contract above); the
     * transport attaches to c before returning 0. An error return: nothing
     * attached, the core fails c and the caller gets the error. */
    int (*dial)(flare_host *h, void *state, flare_conn *c, const flare_multiaddr *ma,
                const flare_dial_opts *o);
};

/* Random bytes a transport draws at host creation for a certificate it
 * makes only at its first use: the host's random sequence then does not
 * depend on whether the transport is ever used (the simulator's runs stay
 * the same). */
typedef struct flare__tr_seed {
    uint8_t b[16];
    size_t len, off;
    flare_rng rest; /* beyond the saved bytes */
} flare__tr_seed;
/* Saves len (<= 16) bytes of rng. */
void flare__tr_seed_draw(flare__tr_seed *s, flare_rng rng, size_t len);
/* A flare_rng giving the saved bytes first, then rng's (s must outlive it). */
flare_rng flare__tr_seed_rng(flare__tr_seed *s);

/* The transport state of t in h (NULL: not registered or none). */
void *flare__tr_state(flare_host *h, const flare__transport *t);

/* The built-in transports, in matching order (src/transport/builtin.c). */
size_t flare__transports_builtin(const flare__transport *const **list);

/* Per-connection operations of a byte-stream transport. */
struct flare__transport_ops {
    const char *name;
    unsigned flags; /* FLARE__TR_* */
    /* Queues bytes toward the peer: 0, 1 if the transport's queue is now
     * above its high-water mark (the streams hold their data until
     * flare__conn_drained), or an error (the connection fails). */
    int (*write)(flare_conn *c, const uint8_t *data, size_t len);
    /* Optional: the end of our direction after the queued bytes (graceful). */
    void (*shutdown)(flare_conn *c);
    /* Releases the transport (tr was c->tr; c no longer refers to it):
     * graceful (queued bytes still go out) or abort. */
    void (*close)(flare_conn *c, void *tr, int abort);
    /* Optional: bytes queued toward the peer (the write-queue marks of
     * flare_host_settings apply to them; reading pauses above twice the high
     * mark). A transport without it reports fullness from write. */
    size_t (*pending)(const flare_conn *c);
    /* Optional with pending: stop (1) or resume (0) delivering input. */
    void (*read_pause)(flare_conn *c, int pause);
};

/* ---- transport -> connection (conn.c) ---------------------------------------------- */

/* An inbound connection over t from remote (NULL: the remote IP is not the
 * peer's, e.g. relayed: no IP checks) is about to be accepted: the gater
 * (the remote IP; remote_ma names it in the refusal event) and the resource
 * manager decide. NULL if refused or out of memory: the transport closes
 * what it accepted. */
flare_conn *flare__conn_accept(flare_host *h, const flare__transport *t, const flare_ipaddr *remote,
                               const flare_multiaddr *remote_ma);
/* The transport attached to an accepted c: counts c, shows it to the
 * services (on_inbound) and, for a byte stream, starts the upgrade. */
void flare__conn_accepted(flare_conn *c);
/* ---- transports with their own security and streams (FLARE__TR_SESSION) ----------------
 *
 * Such a transport still attaches flare__transport_ops to c (close is
 * required; write, shutdown, pending and read_pause are optional and unused
 * unless it wants the write-queue policy), then runs its own handshake.
 * Once the peer is authenticated it hands c the session below; from then on
 * the core opens, accepts, reads, writes, half-closes and resets streams
 * through mux (src/muxer/muxer.h), and the transport calls
 * flare__conn_session_input whenever the session has news (new streams,
 * data, window, resets, goaway: what mux->poll_event reports). The session
 * stays the transport's: the core never frees it and stops using it when
 * ops->close runs or after flare__conn_transport_lost. Everything above the
 * connection (multistream per stream, identify, ping, relay, DCUtR, the
 * resource manager, connection manager, gater, events) is unchanged. */
typedef struct flare__session {
    const flare_pubkey *remote_key; /* authenticated by the transport (copied) */
    const char *security;           /* static, e.g. "tls" (flare_conn_security) */
    const char *muxer;              /* static, e.g. "quic" (flare_conn_muxer) */
    const flare__muxer_ops *mux;
    void *mux_st;
} flare__session;

/* The transport authenticated the peer of c (inbound or outbound): the
 * gater, the dialed peer ID and the resource manager's per-peer limit
 * decide, then c is ready (FLARE_HOST_EV_CONN_OPENED, dialers' callbacks,
 * services). Returns 0, or an error with c failing: its close op runs
 * (at once, or when the caller's hold on c->busy ends) and the session is
 * not used again. From the loop only, never inside a host API call. */
int flare__conn_session_ready(flare_conn *c, const flare__session *s);
/* The session of a ready c has events to poll or output to flush. */
void flare__conn_session_input(flare_conn *c);

/* c runs over ops/tr from now on. */
void flare__conn_attach(flare_conn *c, const flare__transport_ops *ops, void *tr);
/* flare__conn_input (host_int.h): bytes from the peer; len 0 is its EOF. */
/* The queue fell to the low-water mark: resume reading, move held data on. */
void flare__conn_drained(flare_conn *c);
/* The transport ended by itself and released its state: c fails with err. */
void flare__conn_transport_lost(flare_conn *c, int err);

#endif
