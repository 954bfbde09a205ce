/*
 * Security protocols of the connection upgrade, as the host core
 * (src/host/conn.c) sees them: a table of operations per protocol, over a
 * session state the implementation allocates. Like the cores behind them
 * they are sans-I/O: bytes in, handshake bytes and plaintext out.
 *
 * The upgrader offers the host's configured list (flare_host_settings
 * .security, in order) through multistream-select: the dialer proposes in
 * that order, the listener accepts any of them. Implementations are listed
 * in src/security/builtin.c (one line each); this header includes only
 * public headers, so an implementation needs nothing of the host.
 */
#ifndef FLARE_SECURITY_H
#define FLARE_SECURITY_H

#include "flare/buf.h"
#include "flare/common.h"
#include "flare/keys.h"
#include "flare/peerid.h"
#include "flare/sig_cache.h"

typedef struct flare__security_cfg {
    const flare_privkey *identity;
    int initiator;                       /* our role in the handshake */
    const flare_peerid *expected_remote; /* NULL: any */
    /* Stream muxers to offer inside the handshake (early negotiation),
     * in preference order; an implementation without it ignores them. */
    const char *const *muxers;
    size_t nmuxers;
    const flare_mem *mem;
    flare_rng rng;
    /* Wall clock, Unix seconds (flare_io unix_time; 0 if the driver has
     * none): certificate-based protocols date and check certificates by it. */
    uint64_t unix_now;
    /* Signatures that verified before (flare/sig_cache.h); NULL: none. */
    flare_sig_cache *sig_cache;
} flare__security_cfg;

typedef struct flare__security {
    const char *id; /* multistream protocol ID, e.g. "/noise" */
    /* Allocates a session through cfg->mem: 0 or an error. */
    int (*init)(void **sess, const flare__security_cfg *cfg);
    /* Appends our first handshake bytes, if our role sends first. */
    int (*start)(void *sess, flare_buf *out);
    /* Wire bytes from the peer: handshake replies to out, decrypted
     * application data to plain. 0 or a fatal error (FLARE_ERR_CRYPTO for
     * bytes that fail authentication: the peer gets no goodbye). */
    int (*recv)(void *sess, const uint8_t *in, size_t len, flare_buf *out, flare_buf *plain);
    /* Application data to wire bytes (after the handshake). */
    int (*encrypt)(void *sess, const uint8_t *data, size_t len, flare_buf *out);
    /* Optional: as encrypt of head followed by data, without copying them
     * together (a muxer frame header and the application's bytes). */
    int (*encrypt_pair)(void *sess, const uint8_t *head, size_t hlen, const uint8_t *data,
                        size_t len, flare_buf *out);
    /* 1 once the peer is authenticated and data may flow. */
    int (*handshake_done)(const void *sess);
    /* Once the handshake is done: copies the peer's key to out (sessions
     * hold it at its length, not as a 1.1 KB flare_pubkey); 0 or an error. */
    int (*remote_key)(const void *sess, flare_pubkey *out);
    /* Valid once the handshake is done; owned by the session. */
    const flare_peerid *(*remote_peer)(const void *sess);
    /* Optional: the muxer agreed inside the handshake, or NULL (then
     * multistream-select negotiates it). */
    const char *(*early_muxer)(const void *sess);
    /* Optional: appends the protocol's goodbye (TLS close_notify) to out;
     * the host sends it after the last data of a graceful close. */
    int (*close)(void *sess, flare_buf *out);
    void (*free)(void *sess);
} flare__security;

/* The implementation of protocol id (NUL-terminated or len bytes), or NULL
 * (builtin.c). */
const flare__security *flare__security_find(const char *id, size_t len);

#endif
