/*
 * flare/noise.h - the libp2p Noise security handshake and transport
 * (libp2p/specs noise/README.md), sans-I/O.
 *
 * Protocol Noise_XX_25519_ChaChaPoly_SHA256, empty prologue (settable), protocol ID
 * "/noise". Every message on the wire is a 2-byte big-endian length followed
 * by a Noise message of at most 65535 bytes. Message 1 (-> e) has an empty
 * payload; messages 2 and 3 carry a NoiseHandshakePayload: our identity key,
 * its signature over "noise-libp2p-static-key:" || our X25519 static public
 * key, and our stream muxers as extensions. The static X25519 key is fresh per
 * session (drawn from the rng), as the spec allows.
 *
 * Usage: init with settings, start (the initiator writes message 1), then
 * feed every received byte to recv and send whatever it appends to out. Once
 * flare_noise_handshake_done() is 1, recv appends decrypted application data
 * to plain and flare_noise_encrypt() produces frames. The initiator is done as
 * soon as it has written message 3 and may encrypt at once; the responder may
 * receive message 3 and transport frames in the same recv call.
 *
 * Errors: every negative return of recv (and NONCE_EXHAUSTED or CRYPTO from
 * encrypt) leaves the session dead: later calls return FLARE_ERR_STATE and
 * only flare_noise_free is useful. The host should close the connection.
 */
#ifndef FLARE_NOISE_H
#define FLARE_NOISE_H

#include "flare/buf.h"
#include "flare/common.h"
#include "flare/keys.h"
#include "flare/peerid.h"
#include "flare/sig_cache.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FLARE_NOISE_PROTOCOL_ID "/noise"
/* Largest Noise message, and so the largest frame body. */
#define FLARE_NOISE_MAX_MSG 65535
/* Largest plaintext in one transport frame. */
#define FLARE_NOISE_MAX_PLAINTEXT (FLARE_NOISE_MAX_MSG - 16)
/* Default bound on decrypted-but-unread bytes. */
#define FLARE_NOISE_DEFAULT_MAX_PLAINTEXT_BUFFER (1024 * 1024)
/* Most stream muxers accepted from (or sent to) a peer. */
#define FLARE_NOISE_MAX_MUXERS 16

/* A session's settings. Start from flare_noise_settings_default(), which
 * sets struct_size and every field, then set identity and initiator. */
typedef struct flare_noise_settings {
    size_t struct_size;            /* set by flare_noise_settings_default */
    const flare_privkey *identity; /* our libp2p identity (Ed25519); copied */
    int initiator; /* 1: we send message 1; set by the caller, NOT by socket direction
                      (after a TCP simultaneous open the roles come from DCUtR) */
    const flare_peerid *expected_remote; /* NULL: accept any; copied */
    const char *const *muxers;           /* our stream muxers, in preference order; copied */
    size_t nmuxers;
    /* Bound on decrypted-but-unread bytes: decryption stops while this much
     * is unread (> 0); default FLARE_NOISE_DEFAULT_MAX_PLAINTEXT_BUFFER. */
    size_t max_plaintext_buffer;
    /* The Noise prologue both sides mix in (default none): WebRTC binds the
     * handshake to the DTLS certificates with it. Read during init only. */
    const uint8_t *prologue;
    size_t prologue_len;
    /* Consulted before verifying the remote's identity signature over its
     * static key (flare/sig_cache.h), and given that signature once it
     * verifies: a peer that keeps its static key (js-libp2p does) is
     * verified once. Default NULL: none. Not owned; must outlive the
     * session's handshake. */
    flare_sig_cache *sig_cache;
} flare_noise_settings;

/* Fills s with the defaults documented on each field (no identity, no
 * muxers, initiator 0) and sets s->struct_size. */
void flare_noise_settings_default(flare_noise_settings *s);

struct flare__noise_state;

/* An embedded session object; its state lives on the heap (flare_mem). */
typedef struct flare_noise {
    struct flare__noise_state *st;
} flare_noise;

/* Sets up a session. rng supplies the static and ephemeral X25519 keys.
 * Returns 0, FLARE_ERR_INVALID_ARG (s->struct_size is not
 * sizeof(flare_noise_settings), no identity, a muxer name that is empty or
 * longer than 255 bytes, more than FLARE_NOISE_MAX_MUXERS muxers, or
 * max_plaintext_buffer 0) or FLARE_ERR_NOMEM. */
int flare_noise_init(flare_noise *n, const flare_noise_settings *s, const flare_mem *mem,
                     flare_rng rng);

/* Initiator: appends message 1 to out. Responder: does nothing. Returns 0,
 * FLARE_ERR_STATE if called twice, FLARE_ERR_NOMEM. */
int flare_noise_start(flare_noise *n, flare_buf *out);

/* Feeds wire bytes (any split: partial frames are buffered internally).
 * Handshake replies are appended to out; decrypted transport data is appended
 * to plain. While plain->len >= max_plaintext_buffer, complete frames stay
 * buffered (as ciphertext) until a later call, which may pass len 0 to resume;
 * the caller should stop reading meanwhile. Returns 0 or a fatal error:
 *   FLARE_ERR_TRUNCATED   a handshake message or transport frame too short;
 *   FLARE_ERR_PROTO       a payload in message 1, or a missing payload field;
 *   FLARE_ERR_MALFORMED   the handshake payload is not a valid protobuf;
 *   FLARE_ERR_TOO_LARGE   more than FLARE_NOISE_MAX_MUXERS muxers;
 *   FLARE_ERR_UNKNOWN_CODE / other key errors: the identity key does not decode;
 *   FLARE_ERR_BAD_SIGNATURE  the static key signature does not verify;
 *   FLARE_ERR_PEER_ID_MISMATCH  the remote is not settings->expected_remote;
 *   FLARE_ERR_CRYPTO      a ciphertext fails authentication (or a bad DH key);
 *   FLARE_ERR_NONCE_EXHAUSTED  2^64-1 frames received;
 *   FLARE_ERR_LIMIT       the caller fed bytes beyond max_plaintext_buffer plus
 *                         one frame while not draining plain;
 *   FLARE_ERR_STATE       the session is dead, or the initiator has not started;
 *   FLARE_ERR_NOMEM. */
int flare_noise_recv(flare_noise *n, const uint8_t *in, size_t len, flare_buf *out,
                     flare_buf *plain);

/* 1 once the handshake is complete (and the remote authenticated), else 0. */
/* Returns 1 once the handshake is complete, else 0. */
int flare_noise_handshake_done(const flare_noise *n);

/* Encrypts application data into as many frames as needed (at most
 * FLARE_NOISE_MAX_PLAINTEXT bytes each); len 0 writes nothing. Returns 0,
 * FLARE_ERR_STATE (handshake not done, or dead), FLARE_ERR_NONCE_EXHAUSTED
 * (fatal) or FLARE_ERR_NOMEM (out unchanged). */
int flare_noise_encrypt(flare_noise *n, const uint8_t *data, size_t len, flare_buf *out);

/* Encrypts head followed by data into out exactly as flare_noise_encrypt()
 * of their concatenation would (same frames, same bytes), without copying
 * them together first: a muxer frame header and the application's bytes go
 * from where they are straight into ciphertext. Same returns. */
int flare_noise_encrypt_pair(flare_noise *n, const uint8_t *head, size_t hlen, const uint8_t *data,
                             size_t len, flare_buf *out);

/* The authenticated remote (valid once the handshake is done, else NULL). */
/* Returns the authenticated remote peer ID (owned by n), valid once the handshake is done. */
const flare_peerid *flare_noise_remote_peerid(const flare_noise *n);
/* Returns the remote public key (owned by n), valid once the handshake is done
 * (NULL before, or if memory for it runs out: n holds the key at its length
 * and expands it on the first call). */
const flare_pubkey *flare_noise_remote_key(const flare_noise *n);

/* The remote's stream muxers from its extensions (empty if none); *list is
 * valid until flare_noise_free. Returns the count (0 before the handshake). */
size_t flare_noise_remote_muxers(const flare_noise *n, const char *const **list);

/* The early-negotiated muxer: the first of the initiator's muxers that the
 * responder also lists (libp2p/specs connections/inlined-muxer-negotiation.md,
 * as go-libp2p picks it). NULL if either side sent none or there is no overlap:
 * then negotiate the muxer with multistream-select as usual. */
/* Returns the muxer agreed in the handshake (owned by n), or NULL. */
const char *flare_noise_selected_muxer(const flare_noise *n);

/* Bytes received but not yet processed (partial or held-back frames). */
/* Returns the bytes of input buffered (an incomplete frame). */
size_t flare_noise_buffered(const flare_noise *n);

/* Frees the session and zeroes all secrets. Safe on a zeroed object. */
void flare_noise_free(flare_noise *n);

#ifdef __cplusplus
}
#endif
#endif
