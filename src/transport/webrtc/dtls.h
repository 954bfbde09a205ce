/*
 * DTLS 1.2 for WebRTC, over GnuTLS, without I/O: datagrams from the peer go
 * in through flare__dtls_input, datagrams to send come out of
 * flare__dtls_pop_out, application datagrams (SCTP packets) are
 * flare__dtls_send / flare__dtls_read.
 *
 * GnuTLS only ever sees in-memory queues (its push/pull functions) and is
 * non-blocking. The handshake's retransmissions run on the caller's clock:
 * the endpoint keeps a copy of the last flight it sent and replays it when
 * flare__dtls_expiry passes without a reply (doubling, RFC 6347 4.2.4), so
 * the simulator's virtual time drives them. GnuTLS's own retransmission
 * timer, which reads the real clock, is set far beyond ours.
 *
 * Not sans-I/O in two respects that are GnuTLS's own: it draws its
 * randomness (handshake nonces, ECDHE and ECDSA keys) from its internal
 * generator, not from a flare_rng, and allocates with libc, not flare_mem.
 *
 * Both sides authenticate with self-signed ECDSA P-256 certificates; what
 * identifies a certificate is the SHA-256 of its DER encoding (SDP
 * a=fingerprint, the multiaddr's /certhash). With an expected fingerprint
 * the handshake fails unless the peer's certificate matches it; without
 * one any certificate is accepted and flare__dtls_peer_fingerprint tells
 * which (the caller checks it, e.g. against the SDP).
 */
#ifndef FLARE_WEBRTC_DTLS_H
#define FLARE_WEBRTC_DTLS_H

#include "flare/buf.h"
#include "flare/common.h"

#define FLARE__DTLS_FP_LEN    32   /* SHA-256 */
#define FLARE__DTLS_MTU       1200 /* datagram size we send (WebRTC's usual) */
#define FLARE__DTLS_MAX_QUEUE 256  /* datagrams held in either direction */
#define FLARE__DTLS_MAX_DGRAM 2048 /* a larger datagram from the peer is dropped */

/* A certificate and its private key. */
typedef struct flare__dtls_cert flare__dtls_cert;

/* A new self-signed ECDSA P-256 certificate valid from not_before to
 * not_after (Unix seconds); its serial number comes from rng
 * (FLARE__DTLS_CERT_RNG_LEN bytes). */
#define FLARE__DTLS_CERT_RNG_LEN 16
int flare__dtls_cert_generate(flare__dtls_cert **c, flare_rng rng, int64_t not_before,
                              int64_t not_after);
/* PEM of the private key followed by the certificate (to keep a stable
 * certificate next to the node's key) and back. */
int flare__dtls_cert_export(const flare__dtls_cert *c, flare_buf *pem);
int flare__dtls_cert_import(flare__dtls_cert **c, const uint8_t *pem, size_t len);
const uint8_t *flare__dtls_cert_fingerprint(const flare__dtls_cert *c);
void flare__dtls_cert_del(flare__dtls_cert *c);

typedef enum {
    FLARE__DTLS_HANDSHAKING,
    FLARE__DTLS_CONNECTED,
    FLARE__DTLS_CLOSED, /* the peer's close_notify, or ours */
    FLARE__DTLS_FAILED, /* see flare__dtls_error */
} flare__dtls_state;

typedef struct flare__dtls_cfg {
    int is_client;
    const flare__dtls_cert *cert;   /* must outlive the endpoint */
    const uint8_t *expected_fp;     /* FLARE__DTLS_FP_LEN bytes, or NULL */
    size_t mtu;                     /* 0: FLARE__DTLS_MTU */
    flare_tstamp handshake_timeout; /* 0: 20 s */
    const flare_mem *mem;
} flare__dtls_cfg;

typedef struct flare__dtls flare__dtls;

/* A new endpoint; a client queues its ClientHello at once. */
int flare__dtls_new(flare__dtls **d, const flare__dtls_cfg *cfg, flare_tstamp now);
void flare__dtls_del(flare__dtls *d);
/* One datagram from the peer. Invalid records are dropped (DTLS ignores
 * them); returns 0 or the fatal error that failed the endpoint. */
int flare__dtls_input(flare__dtls *d, const uint8_t *pkt, size_t len, flare_tstamp now);
/* One application datagram to the peer: 0, FLARE_ERR_STATE (not
 * connected), FLARE_ERR_TOO_LARGE (over flare__dtls_data_mtu),
 * FLARE_ERR_LIMIT (the output queue is full). */
int flare__dtls_send(flare__dtls *d, const uint8_t *data, size_t len);
/* The next application datagram from the peer into dst: its length,
 * FLARE_ERR_AGAIN (none), FLARE_ERR_BUFFER_TOO_SMALL. */
long flare__dtls_read(flare__dtls *d, uint8_t *dst, size_t cap);
/* The next datagram to send into dst: its length or FLARE_ERR_AGAIN. */
long flare__dtls_pop_out(flare__dtls *d, uint8_t *dst, size_t cap);
/* Largest application datagram (after the record overhead). */
size_t flare__dtls_data_mtu(const flare__dtls *d);
flare_tstamp flare__dtls_expiry(const flare__dtls *d);
int flare__dtls_handle_expiry(flare__dtls *d, flare_tstamp now);
/* Sends close_notify. */
void flare__dtls_close(flare__dtls *d);
flare__dtls_state flare__dtls_get_state(const flare__dtls *d);
int flare__dtls_error(const flare__dtls *d);
/* The peer certificate's fingerprint once connected, else NULL. */
const uint8_t *flare__dtls_peer_fingerprint(const flare__dtls *d);

#endif
