/*
 * A WebRTC peer connection below ICE, without I/O: DTLS (dtls.h) over the
 * datagrams of the ICE-selected pair, SCTP and data channels over DTLS
 * (sctp.h), libp2p streams over the data channels (mux.h), and libp2p's
 * authentication: a Noise XX handshake on the negotiated data channel 0,
 * its prologue binding both DTLS certificates (libp2p/specs
 * webrtc/webrtc-direct.md, also used after the signalling of webrtc.md).
 *
 * After webrtc.md's signalling no Noise runs: the SDP came over an
 * authenticated relayed connection and DTLS checks its fingerprint
 * (cfg.authenticated).
 *
 * Roles: the DTLS server initiates Noise (it can send first); its
 * certificate is the one a /certhash names. The prologue is
 * "libp2p-webrtc-noise:" || multihash(fp of the Noise responder) ||
 * multihash(fp of the Noise initiator).
 *
 * The caller moves datagrams (flare__webrtc_pc_input / pop_out; STUN is
 * demultiplexed before, RFC 7983), runs the timers, and once the state is
 * READY hands the muxer (flare__webrtc_mux_ops over flare__webrtc_pc_mux)
 * to the host as the connection's session.
 */
#ifndef FLARE_WEBRTC_PC_H
#define FLARE_WEBRTC_PC_H

#include "flare/keys.h"
#include "flare/peerid.h"
#include "transport/webrtc/dtls.h"
#include "transport/webrtc/mux.h"

#define FLARE__WEBRTC_PROLOGUE_PREFIX "libp2p-webrtc-noise:"
#define FLARE__WEBRTC_PROLOGUE_LEN    (20 + 2 * (2 + FLARE__DTLS_FP_LEN))
/* "u" + base64url of a 34-byte multihash. */
#define FLARE__WEBRTC_CERTHASH_MAX 64

typedef enum {
    FLARE__WEBRTC_PC_CONNECTING,
    FLARE__WEBRTC_PC_READY,
    FLARE__WEBRTC_PC_FAILED,
} flare__webrtc_pc_state;

typedef struct flare__webrtc_pc_cfg {
    int is_dtls_client;
    const flare__dtls_cert *cert;        /* ours; outlives the connection */
    const uint8_t *remote_fp;            /* expected DTLS fingerprint, or NULL */
    const flare_privkey *identity;       /* our libp2p key */
    const flare_peerid *expected_remote; /* NULL: any peer */
    /* Private-to-private (webrtc.md): the peer is already authenticated
     * (the relayed connection the SDP came over, whose fingerprints DTLS
     * checks): no Noise, channel 0 is a stream like any. NULL: Noise. */
    const flare_pubkey *authenticated;
    uint32_t max_streams; /* 0: the association's limit */
    flare_tstamp timeout; /* until READY; 0: 30 s */
    flare_rng rng;
    const flare_mem *mem;
    /* The muxer's flush: the caller moves datagrams out (optional). */
    void (*flush)(void *user);
    void *user;
} flare__webrtc_pc_cfg;

typedef struct flare__webrtc_pc flare__webrtc_pc;

int flare__webrtc_pc_new(flare__webrtc_pc **pc, const flare__webrtc_pc_cfg *cfg, flare_tstamp now);
void flare__webrtc_pc_del(flare__webrtc_pc *pc);
/* One datagram from the peer (DTLS). 0 or the error that failed pc. */
int flare__webrtc_pc_input(flare__webrtc_pc *pc, const uint8_t *dgram, size_t len,
                           flare_tstamp now);
/* The next datagram to send: its length or FLARE_ERR_AGAIN. Call until
 * AGAIN after every input, timer and muxer batch. */
long flare__webrtc_pc_pop_out(flare__webrtc_pc *pc, uint8_t *dst, size_t cap);
/* Ends the connection so the peer learns it at once rather than by a
 * timeout: an SCTP ABORT (abort) or SHUTDOWN, then DTLS's close_notify.
 * Pop the datagrams before deleting pc; the state is FAILED (FLARE_ERR_RESET
 * or FLARE_ERR_CLOSED) afterwards. A peer's close_notify fails pc with
 * FLARE_ERR_CLOSED, its ABORT or SHUTDOWN ends the muxer's session. */
void flare__webrtc_pc_close(flare__webrtc_pc *pc, int abort);
flare_tstamp flare__webrtc_pc_expiry(const flare__webrtc_pc *pc);
int flare__webrtc_pc_handle_expiry(flare__webrtc_pc *pc, flare_tstamp now);
flare__webrtc_pc_state flare__webrtc_pc_get_state(const flare__webrtc_pc *pc);
int flare__webrtc_pc_error(const flare__webrtc_pc *pc);
/* Once READY: the authenticated peer and the streams. */
const flare_pubkey *flare__webrtc_pc_remote_key(const flare__webrtc_pc *pc);
flare__webrtc_mux *flare__webrtc_pc_mux(flare__webrtc_pc *pc);

/* The Noise prologue from the two fingerprints (SHA-256). */
void flare__webrtc_noise_prologue(const uint8_t responder_fp[FLARE__DTLS_FP_LEN],
                                  const uint8_t initiator_fp[FLARE__DTLS_FP_LEN],
                                  uint8_t out[FLARE__WEBRTC_PROLOGUE_LEN]);
/* A fingerprint as a /certhash value (multibase base64url of the SHA-256
 * multihash) and back: 0 or an error (another hash or base is
 * FLARE_ERR_UNSUPPORTED). */
int flare__webrtc_certhash_encode(const uint8_t fp[FLARE__DTLS_FP_LEN], char *out, size_t cap);
int flare__webrtc_certhash_decode(const char *s, size_t len, uint8_t fp[FLARE__DTLS_FP_LEN]);

#endif
