/*
 * flare/tls.h - the libp2p TLS 1.3 security handshake and transport
 * (libp2p/specs tls/tls.md), sans-I/O, over GnuTLS.
 *
 * Protocol ID "/tls/1.0.0". TLS 1.3 only; both sides present a self-signed
 * certificate carrying the libp2p public key extension (the server requires
 * the client's), and each checks the other's with the libp2p rules, not a
 * PKI. ALPN carries our stream muxers in preference order followed by
 * "libp2p" (inlined muxer negotiation); the server picks the first of the
 * client's that it also supports, and aborts when there is none.
 *
 * Usage mirrors flare/noise.h: init, start (the client writes its
 * ClientHello), feed every received byte to recv and send what it appends to
 * out. Once flare_tls_handshake_done() is 1, recv appends decrypted data to
 * plain and flare_tls_encrypt() produces records. As TLS 1.3 lets it, the
 * client is done (and may send) once it has written its Finished; the server
 * verifies the client's certificate only then, and a rejection reaches the
 * client as a fatal alert on a later recv.
 *
 * Sans-I/O within the limits of GnuTLS: time (wall-clock seconds, for the
 * certificate dates) and the certificate serial come from the caller; GnuTLS
 * draws its own key-exchange and signature randomness, and allocates with
 * libc rather than flare_mem (only the session's own buffers use it).
 *
 * Errors: every negative return of recv and encrypt leaves the session dead
 * (later calls return FLARE_ERR_STATE), except FLARE_ERR_CLOSED from recv,
 * which is the peer's close_notify: the data before it is valid and
 * flare_tls_encrypt still works (a half-close).
 */
#ifndef FLARE_TLS_H
#define FLARE_TLS_H

#include "flare/buf.h"
#include "flare/common.h"
#include "flare/keys.h"
#include "flare/peerid.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FLARE_TLS_PROTOCOL_ID "/tls/1.0.0"
/* The ALPN protocol that means "negotiate the muxer with multistream". */
#define FLARE_TLS_ALPN "libp2p"
/* Largest plaintext in one TLS record. */
#define FLARE_TLS_MAX_PLAINTEXT 16384
/* Default bound on decrypted-but-unread bytes. */
#define FLARE_TLS_DEFAULT_MAX_PLAINTEXT_BUFFER (1024 * 1024)
/* Most stream muxers we offer in ALPN. */
#define FLARE_TLS_MAX_MUXERS 16

/* A session's settings. Start from flare_tls_settings_default(), which sets
 * struct_size and every field, then set identity, initiator and unix_now. */
typedef struct flare_tls_settings {
    size_t struct_size;            /* set by flare_tls_settings_default */
    const flare_privkey *identity; /* our libp2p identity; copied */
    int initiator;                 /* 1: TLS client; set by the caller, NOT by socket direction */
    const flare_peerid *expected_remote; /* NULL: accept any; copied */
    const char *const *muxers;           /* our stream muxers, in preference order; copied */
    size_t nmuxers;
    /* Bound on decrypted-but-unread bytes: decryption stops while this much
     * is unread (> 0); default FLARE_TLS_DEFAULT_MAX_PLAINTEXT_BUFFER. */
    size_t max_plaintext_buffer;
    /* Wall clock, Unix seconds (flare_io.unix_time): our certificate is valid
     * from an hour before it, the peer's must be valid at it. Required. */
    uint64_t unix_now;
} flare_tls_settings;

/* Fills s with the defaults documented on each field (no identity, no
 * muxers, initiator 0, unix_now 0) and sets s->struct_size. */
void flare_tls_settings_default(flare_tls_settings *s);

struct flare__tls_state;

/* An embedded session object; its state lives on the heap (flare_mem). */
typedef struct flare_tls {
    struct flare__tls_state *st;
} flare_tls;

/* Sets up a session and makes its certificate (rng: the serial number).
 * Returns 0, FLARE_ERR_INVALID_ARG (s->struct_size is not
 * sizeof(flare_tls_settings), no identity, unix_now 0, max_plaintext_buffer
 * 0, a muxer name empty or over 255 bytes, more than FLARE_TLS_MAX_MUXERS),
 * FLARE_ERR_CRYPTO (GnuTLS refused to set up) or FLARE_ERR_NOMEM. */
int flare_tls_init(flare_tls *t, const flare_tls_settings *s, const flare_mem *mem, flare_rng rng);

/* Client: appends the ClientHello to out. Server: does nothing. Returns 0,
 * FLARE_ERR_STATE if called twice or on a dead session, FLARE_ERR_CRYPTO,
 * FLARE_ERR_NOMEM. */
int flare_tls_start(flare_tls *t, flare_buf *out);

/* Feeds wire bytes (any split). Handshake messages (and alerts, key updates)
 * are appended to out; decrypted data to plain. While plain->len >=
 * max_plaintext_buffer, records stay buffered (as ciphertext) until a later
 * call, which may pass len 0 to resume; the caller should stop reading
 * meanwhile. Returns 0 or:
 *   FLARE_ERR_CLOSED      the peer sent close_notify (not fatal, see above);
 *   FLARE_ERR_PEER_ID_MISMATCH  the remote is not settings->expected_remote
 *                         (flare_tls_error_detail names both);
 *   FLARE_ERR_BAD_SIGNATURE, FLARE_ERR_NOT_FOUND, FLARE_ERR_MALFORMED,
 *   FLARE_ERR_OUT_OF_RANGE, FLARE_ERR_UNSUPPORTED, ...  the peer's certificate
 *                         is not a valid libp2p certificate (tls_cert.h);
 *   FLARE_ERR_NEGOTIATION no common ALPN protocol;
 *   FLARE_ERR_REFUSED     the peer sent a fatal alert (e.g. it rejected us);
 *   FLARE_ERR_PROTO       any other TLS failure (garbage, wrong version...);
 *   FLARE_ERR_CRYPTO      a record fails authentication;
 *   FLARE_ERR_TOO_LARGE   the peer sent 64 KiB of handshake without finishing
 *                         it, or (later) 64 KiB without application data
 *                         (GnuTLS would buffer a claimed message whole);
 *   FLARE_ERR_LIMIT       the caller fed more than max_plaintext_buffer plus
 *                         two records while not draining plain;
 *   FLARE_ERR_STATE       the session is dead, or the client has not started;
 *   FLARE_ERR_NOMEM. */
int flare_tls_recv(flare_tls *t, const uint8_t *in, size_t len, flare_buf *out, flare_buf *plain);

/* Returns 1 once the handshake is complete (and the remote authenticated), else 0. */
int flare_tls_handshake_done(const flare_tls *t);

/* Encrypts application data into records (at most FLARE_TLS_MAX_PLAINTEXT
 * bytes each); len 0 writes nothing. Returns 0, FLARE_ERR_STATE (handshake
 * not done, closed by us, or dead), FLARE_ERR_CRYPTO (fatal) or
 * FLARE_ERR_NOMEM. */
int flare_tls_encrypt(flare_tls *t, const uint8_t *data, size_t len, flare_buf *out);

/* Appends a close_notify alert to out; later encrypts fail with
 * FLARE_ERR_STATE, recv still delivers the peer's data. Returns 0,
 * FLARE_ERR_STATE (handshake not done, or dead) or FLARE_ERR_NOMEM. */
int flare_tls_close(flare_tls *t, flare_buf *out);

/* Returns the authenticated remote peer ID (owned by t), valid once the
 * handshake is done, else NULL. */
const flare_peerid *flare_tls_remote_peerid(const flare_tls *t);
/* Returns the remote public key (owned by t), valid once the handshake is done, else NULL. */
const flare_pubkey *flare_tls_remote_key(const flare_tls *t);

/* Returns the muxer chosen by ALPN (owned by t), or NULL when ALPN settled on
 * "libp2p" (then negotiate the muxer with multistream-select as usual). */
const char *flare_tls_selected_muxer(const flare_tls *t);

/* Returns a human-readable reason for the last failure (owned by t; "" if
 * none), e.g. "peer id mismatch: expected 12D3..., got 12D3...". */
const char *flare_tls_error_detail(const flare_tls *t);

/* Returns the bytes of input received but not yet processed. */
size_t flare_tls_buffered(const flare_tls *t);

/* Frees the session. Safe on a zeroed object. */
void flare_tls_free(flare_tls *t);

#ifdef __cplusplus
}
#endif
#endif
