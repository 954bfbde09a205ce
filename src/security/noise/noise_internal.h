/* Internal access to the Noise session: the host's copy of the peer's key,
 * and test hooks (tests and fuzzers only). */
#ifndef FLARE_SECURITY_NOISE_INTERNAL_H
#define FLARE_SECURITY_NOISE_INTERNAL_H

#include "flare/noise.h"

/* Copies the peer's identity key (handshake done) to out: 0 or
 * FLARE_ERR_STATE. */
int flare__noise_remote_key_copy(const flare_noise *n, flare_pubkey *out);

/* Sets the transport nonce counters (after the handshake). */
void flare__noise_test_set_nonces(flare_noise *n, uint64_t send, uint64_t recv);
/* Our X25519 static public key (32 bytes). */
const uint8_t *flare__noise_test_static_pub(const flare_noise *n);
/* Sends these bytes as our handshake payload instead of the real one
 * (len 0 restores the real one). Returns 0 or FLARE_ERR_NOMEM. */
int flare__noise_test_set_payload(flare_noise *n, const uint8_t *p, size_t len);

#endif
