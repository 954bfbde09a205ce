/*
 * flare/envelope.h - libp2p signed envelopes (libp2p/specs RFC 0002).
 *
 * Envelope { bytes public_key = 1; bytes payload_type = 2; bytes payload = 3;
 * bytes signature = 5; }. The signature covers
 *   uvarint(len(domain)) || domain || uvarint(len(type)) || type ||
 *   uvarint(len(payload)) || payload
 * so an envelope signed for one domain never verifies in another. Domain and
 * payload type are arbitrary: peer records ("libp2p-peer-record", 0x0301) and
 * relay reservation vouchers ("libp2p-relay-rsvp", 0x0302) both use this.
 */
#ifndef FLARE_ENVELOPE_H
#define FLARE_ENVELOPE_H

#include "flare/buf.h"
#include "flare/common.h"
#include "flare/keys.h"
#include "flare/peerid.h"
#include "flare/sig_cache.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest encoded envelope sealed or opened. */
#define FLARE_ENVELOPE_MAX 8192
/* Longest signing domain. */
#define FLARE_ENVELOPE_DOMAIN_MAX 255

/* An opened envelope. payload_type, payload and signature point into the
 * input given to flare_envelope_open and live as long as it; pubkey and
 * signer are copies. */
typedef struct flare_envelope {
    flare_pubkey pubkey;
    flare_peerid signer; /* peer ID of pubkey */
    const uint8_t *payload_type;
    size_t payload_type_len;
    const uint8_t *payload;
    size_t payload_len;
    const uint8_t *signature;
    size_t signature_len;
} flare_envelope;

/* Signs payload with k for domain (NUL-terminated, 1..255 bytes) and appends
 * the Envelope protobuf to out. payload_type must not be empty.
 * Errors: FLARE_ERR_INVALID_ARG, FLARE_ERR_TOO_LARGE (the envelope would
 * exceed FLARE_ENVELOPE_MAX), FLARE_ERR_NOMEM; out is unchanged on error. */
int flare_envelope_seal(const flare_privkey *k, const char *domain, const uint8_t *payload_type,
                        size_t payload_type_len, const uint8_t *payload, size_t payload_len,
                        flare_buf *out);

/* Parses and verifies in[0..len) for expected_domain. If expected_type is not
 * NULL the payload type must equal it. Fills *env (see its lifetime note).
 * Errors: FLARE_ERR_TOO_LARGE (len > FLARE_ENVELOPE_MAX), protobuf errors
 * (FLARE_ERR_TRUNCATED, FLARE_ERR_OVERLONG, FLARE_ERR_MALFORMED, also for a
 * missing public key, payload type or signature), public key errors (see
 * flare_pubkey_decode), FLARE_ERR_UNKNOWN_CODE (payload type is not
 * expected_type), FLARE_ERR_BAD_SIGNATURE (the signature does not verify,
 * including an envelope sealed for another domain), FLARE_ERR_INVALID_ARG. */
int flare_envelope_open(const uint8_t *in, size_t len, const char *expected_domain,
                        const uint8_t *expected_type, size_t expected_type_len,
                        flare_envelope *env);

/* As flare_envelope_open, checking the signature through cache
 * (flare/sig_cache.h; NULL: none): an envelope whose exact key, signed
 * bytes and signature verified before is not verified again. Returns as
 * flare_envelope_open. */
int flare_envelope_open_cached(const uint8_t *in, size_t len, const char *expected_domain,
                               const uint8_t *expected_type, size_t expected_type_len,
                               flare_sig_cache *cache, flare_envelope *env);

#ifdef __cplusplus
}
#endif
#endif
