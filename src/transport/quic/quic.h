/*
 * transport/quic/quic.h - QUIC v1 (RFC 9000) for libp2p, a sans-I/O core over
 * ngtcp2 and GnuTLS (ngtcp2_crypto_gnutls).
 *
 * One endpoint (flare__quic_ep) per UDP socket: it takes every datagram the
 * socket receives (flare__quic_ep_input), dispatches it to a connection by
 * destination connection ID, starts a server connection for a new Initial,
 * answers unknown versions with Version Negotiation and unknown short-header
 * packets with a Stateless Reset. The endpoint never touches a socket or a
 * clock: datagrams leave through cbs.send, time comes in with every call and
 * flare__quic_ep_expiry() tells when to call flare__quic_ep_timeout(). The
 * same endpoint dials (flare__quic_connect), so a listening socket is also
 * the dialing socket (hole punching needs the listen port as source).
 *
 * TLS 1.3 runs with ALPN "libp2p" and mutual certificate authentication: the
 * caller supplies the certificate credentials and judges the peer's chain in
 * cbs.verify (the libp2p certificate check); a connection is reported
 * established only when the handshake is confirmed and verify accepted.
 *
 * Streams are bidirectional QUIC streams. Data written is held (in chunks that
 * never move, because ngtcp2 keeps pointers for retransmission) until the peer
 * acknowledges it; received data goes to cbs.stream_data at once and the
 * receive window only reopens when the caller reports it consumed, so the
 * caller holds at most a window of data per stream and per connection.
 *
 * Calls that change state (stream writes, closes) only record the change:
 * flare__quic_ep_flush() turns pending work into datagrams; input and timeout
 * flush by themselves. Callbacks may call any stream or connection function,
 * and flare__quic_conn_close(); the endpoint defers what must wait.
 *
 * Peers are hostile: connections, handshakes in progress, streams per
 * connection, windows and connection IDs are bounded (flare__quic_settings).
 */
#ifndef FLARE_TRANSPORT_QUIC_H
#define FLARE_TRANSPORT_QUIC_H

#include <gnutls/gnutls.h>

#include "flare/common.h"
#include "flare/ipaddr.h"
#include "flare/keys.h"

typedef struct flare__quic_ep flare__quic_ep;
typedef struct flare__quic_conn flare__quic_conn;
typedef struct flare__quic_stream flare__quic_stream;

/* The largest datagram the endpoint sends (PMTUD may probe up to it). */
#define FLARE__QUIC_MAX_DGRAM 1452
/* Connection ID length of ours. */
#define FLARE__QUIC_CID_LEN 16

typedef struct flare__quic_settings {
    flare_tstamp idle_timeout;      /* 30 s */
    flare_tstamp keepalive;         /* PING after this much silence: 10 s; 0 = none */
    flare_tstamp handshake_timeout; /* 10 s */
    uint64_t stream_window;         /* initial receive window per stream: 1 MiB */
    uint64_t max_stream_window;     /* auto-tuned up to: 6 MiB */
    uint64_t conn_window;           /* initial receive window per connection: 4 MiB */
    uint64_t max_conn_window;       /* auto-tuned up to: 16 MiB */
    uint64_t max_streams_in;        /* concurrent streams the peer may open: 256 */
    size_t stream_send_high;        /* stream_write reports "full" above: 1 MiB */
    size_t max_conns;               /* connections on the endpoint: 256 */
    size_t max_handshakes;          /* server handshakes in progress: 64 */
    uint32_t resets_per_s;          /* stateless resets sent per second: 100 */
} flare__quic_settings;

/* Fills s with the defaults above. */
void flare__quic_settings_default(flare__quic_settings *s);

/* Everything the endpoint reports. user is the endpoint's; conn and stream
 * user pointers are set with flare__quic_conn_set_user/_stream_set_user. */
typedef struct flare__quic_cbs {
    /* A datagram for to. */
    void (*send)(void *user, const flare_ipaddr *to, const uint8_t *data, size_t len);
    /* A peer started a connection (server side, first Initial). Return 0 to
     * go on, non-zero to drop it silently (gating). Optional. */
    int (*accept)(void *user, flare__quic_conn *qc, const flare_ipaddr *from);
    /* The peer's certificate arrived (both sides): 0 accepts, a FLARE_ERR_*
     * refuses (the handshake fails and closed() gets that error). */
    int (*verify)(void *user, flare__quic_conn *qc, gnutls_session_t tls);
    /* Handshake confirmed, peer verified: streams may be used. */
    void (*established)(void *user, flare__quic_conn *qc);
    /* The connection is gone; qc and its streams are freed after this returns
     * (no stream callbacks come first). err: FLARE_ERR_CLOSED (closed by either
     * side; app_code is the peer's code when it closed), FLARE_ERR_TIMEOUT
     * (idle or handshake), FLARE_ERR_RESET (stateless reset),
     * FLARE_ERR_UNSUPPORTED (no common version), the verify error, or
     * FLARE_ERR_PROTO / _CRYPTO / _NOMEM. */
    void (*closed)(void *user, flare__quic_conn *qc, int err, uint64_t app_code);
    /* The peer opened a stream. Return 0 to take it; non-zero resets it. */
    int (*stream_open)(void *user, flare__quic_conn *qc, flare__quic_stream *st);
    /* Data (len may be 0 with fin). Call flare__quic_stream_consumed() once the
     * bytes are processed, or the peer stops sending after a window. */
    void (*stream_data)(void *user, flare__quic_stream *st, const uint8_t *data, size_t len,
                        int fin);
    /* The peer reset its direction (RESET_STREAM) or asked us to stop
     * sending (STOP_SENDING; stop = 1). */
    void (*stream_reset)(void *user, flare__quic_stream *st, uint64_t app_code, int stop);
    /* The write queue fell from above the high mark to at or below half of it. */
    void (*stream_writable)(void *user, flare__quic_stream *st);
    /* Both directions are finished (FIN or reset, acknowledged): st is freed
     * after this returns. */
    void (*stream_closed)(void *user, flare__quic_stream *st);
} flare__quic_cbs;

typedef struct flare__quic_config {
    flare__quic_settings settings;
    flare__quic_cbs cbs;
    void *user;
    /* Our certificate and key (the caller keeps it alive while the endpoint
     * lives). */
    gnutls_certificate_credentials_t cred;
    flare_rng rng;
    const flare_mem *mem;
    /* The socket's local address (paths are local + remote). */
    flare_ipaddr local;
    /* Optional: 32 bytes the stateless reset tokens derive from. A secret
     * that survives a restart (derived from the host key) lets peers of the
     * lost connections learn at once that they are gone. NULL: random. */
    const uint8_t *reset_secret;
} flare__quic_config;

/* ---- libp2p identity (quic_tls.c) --------------------------------------------------- */

/* GnuTLS credentials holding a fresh libp2p certificate for id (valid at
 * unix_now). Returns 0 or a flare__tls_cert_make error. */
int flare__quic_tls_cred(const flare_privkey *id, uint64_t unix_now, flare_rng rng,
                         gnutls_certificate_credentials_t *out);
/* The stateless-reset secret of id (stable across restarts, reveals nothing
 * of the key). Returns 0 or an encoding error. */
int flare__quic_reset_secret(const flare_privkey *id, uint8_t out[32]);

/* ---- endpoint ---------------------------------------------------------------------- */

/* Returns 0, FLARE_ERR_INVALID_ARG or FLARE_ERR_NOMEM. */
int flare__quic_ep_new(const flare__quic_config *cfg, flare__quic_ep **out);
/* Frees every connection without callbacks or packets (use close first for a
 * graceful end). */
void flare__quic_ep_del(flare__quic_ep *ep);
/* A datagram from the socket. Never fails: bad input is dropped. */
void flare__quic_ep_input(flare__quic_ep *ep, const flare_ipaddr *from, const uint8_t *data,
                          size_t len, flare_tstamp now);
/* Runs timers due at now (retransmission, idle, keep-alive). */
void flare__quic_ep_timeout(flare__quic_ep *ep, flare_tstamp now);
/* Sends what the calls since the last flush made pending. */
void flare__quic_ep_flush(flare__quic_ep *ep, flare_tstamp now);
/* The earliest deadline of any connection (FLARE_TSTAMP_NEVER: none). */
flare_tstamp flare__quic_ep_expiry(flare__quic_ep *ep);
/* Nonzero when a flush would do something. */
int flare__quic_ep_dirty(const flare__quic_ep *ep);
/* Connections, and server handshakes in progress. */
size_t flare__quic_ep_conns(const flare__quic_ep *ep);
size_t flare__quic_ep_handshakes(const flare__quic_ep *ep);
/* Sets the local address (the socket's, once bound). */
void flare__quic_ep_set_local(flare__quic_ep *ep, const flare_ipaddr *local);

/* ---- connections ------------------------------------------------------------------- */

/* Starts a client connection to remote; packets go out at the next flush.
 * Returns 0, FLARE_ERR_LIMIT (max_conns), FLARE_ERR_NOMEM or FLARE_ERR_CRYPTO. */
int flare__quic_connect(flare__quic_ep *ep, const flare_ipaddr *remote, void *user,
                        flare_tstamp now, flare__quic_conn **out);
/* Closes with an application error code (CONNECTION_CLOSE at the next flush);
 * closed() runs from that flush with FLARE_ERR_CLOSED. Idempotent. */
void flare__quic_conn_close(flare__quic_conn *qc, uint64_t app_code);
void flare__quic_conn_set_user(flare__quic_conn *qc, void *user);
void *flare__quic_conn_user(const flare__quic_conn *qc);
int flare__quic_conn_is_server(const flare__quic_conn *qc);
int flare__quic_conn_established(const flare__quic_conn *qc);
/* The peer's current address (changes when the peer migrates). */
void flare__quic_conn_remote(const flare__quic_conn *qc, flare_ipaddr *out);
gnutls_session_t flare__quic_conn_tls(const flare__quic_conn *qc);
/* Smoothed RTT in ns. */
flare_tstamp flare__quic_conn_rtt(const flare__quic_conn *qc);

/* ---- streams ----------------------------------------------------------------------- */

/* Opens a bidirectional stream. Returns 0, FLARE_ERR_STATE (not established
 * or closing), FLARE_ERR_LIMIT (the peer's stream limit; wait) or
 * FLARE_ERR_NOMEM. */
int flare__quic_stream_open(flare__quic_conn *qc, void *user, flare__quic_stream **out);
void flare__quic_stream_set_user(flare__quic_stream *st, void *user);
void *flare__quic_stream_user(const flare__quic_stream *st);
flare__quic_conn *flare__quic_stream_conn(const flare__quic_stream *st);
int64_t flare__quic_stream_id(const flare__quic_stream *st);
/* Queues data. Returns 0, 1 when the queue is now above the high mark (wait
 * for stream_writable), FLARE_ERR_STATE (after fin/reset) or FLARE_ERR_NOMEM. */
int flare__quic_stream_write(flare__quic_stream *st, const uint8_t *data, size_t len);
/* Ends our direction after the queued data. */
void flare__quic_stream_fin(flare__quic_stream *st);
/* Aborts both directions (RESET_STREAM and STOP_SENDING) with app_code; no
 * more data callbacks, and stream_closed follows. */
void flare__quic_stream_reset(flare__quic_stream *st, uint64_t app_code);
/* Bytes delivered to stream_data that the caller has processed. */
void flare__quic_stream_consumed(flare__quic_stream *st, size_t n);
/* Bytes queued and not yet acknowledged. */
size_t flare__quic_stream_pending(const flare__quic_stream *st);

#endif
