/*
 * security/tls/tls_cert.h - libp2p TLS certificates (libp2p/specs tls/tls.md),
 * shared by the TLS-over-TCP security module and the QUIC transport.
 *
 * A peer authenticates with a self-signed X.509 certificate whose key is a
 * throwaway ECDSA P-256 key (fresh per certificate) and which carries the
 * libp2p Public Key Extension (OID 1.3.6.1.4.1.53594.1.1, marked critical):
 *
 *   SignedKey ::= SEQUENCE { publicKey OCTET STRING, signature OCTET STRING }
 *
 * publicKey is the host key's PublicKey protobuf; signature is the host key's
 * signature over "libp2p-tls-handshake:" || the certificate's DER
 * SubjectPublicKeyInfo. The peer ID comes from publicKey.
 *
 * Time is the caller's wall clock in Unix seconds (flare_io.unix_time), since
 * certificates carry calendar dates. The serial number comes from the caller's
 * flare_rng; the P-256 key and the ECDSA signature nonces come from GnuTLS's own
 * generator (GnuTLS is a third-party engine with no hook for an external RNG),
 * so certificates are not reproducible even under the simulator. Nothing here
 * reads a clock or a socket.
 *
 * The peer certificate is peer input: its outer structure, SPKI and the
 * extension are walked with a bounded DER reader before anything is trusted.
 */
#ifndef FLARE_SECURITY_TLS_CERT_H
#define FLARE_SECURITY_TLS_CERT_H

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "flare/common.h"
#include "flare/keys.h"
#include "flare/peerid.h"

/* The extension's OID, dotted. */
#define FLARE__TLS_EXT_OID "1.3.6.1.4.1.53594.1.1"
/* Prefix of the host key's signed message. */
#define FLARE__TLS_SIG_PREFIX "libp2p-tls-handshake:"
/* Largest peer certificate accepted (an RSA-8192 host key plus its signature
 * fit comfortably); bigger chains are refused before parsing. */
#define FLARE__TLS_CERT_MAX 8192
/* Validity of our certificates: from now - 1 hour (clock skew) to now + 100
 * years (the certificate is never reused across restarts anyway). */
#define FLARE__TLS_CERT_BACKDATE_S 3600
#define FLARE__TLS_CERT_LIFETIME_S (100ULL * 365 * 24 * 3600)
/* Bytes flare__tls_cert_make draws from its flare_rng (the serial). */
#define FLARE__TLS_CERT_RNG_LEN 8

/* Our certificate: the GnuTLS objects (for gnutls_certificate_set_x509_key)
 * and the DER encoding. */
typedef struct flare__tls_cert {
    gnutls_x509_crt_t crt;
    gnutls_x509_privkey_t key;
    gnutls_datum_t der; /* gnutls-allocated */
} flare__tls_cert;

/* Makes a fresh certificate for identity valid at unix_now (seconds). Returns
 * 0, FLARE_ERR_INVALID_ARG, FLARE_ERR_NOMEM or FLARE_ERR_CRYPTO (GnuTLS
 * failed); on error c is zeroed. */
int flare__tls_cert_make(flare__tls_cert *c, const flare_privkey *identity, uint64_t unix_now,
                         flare_rng rng);
/* Frees c; safe on a zeroed object. */
void flare__tls_cert_free(flare__tls_cert *c);

/* Installs c as the certificate of cred (copies; c may be freed after).
 * Returns 0 or FLARE_ERR_CRYPTO. */
int flare__tls_cert_set_credentials(const flare__tls_cert *c,
                                    gnutls_certificate_credentials_t cred);

/* Parses the extension value (a DER SignedKey) into pointers inside ext.
 * Returns 0, FLARE_ERR_TRUNCATED, FLARE_ERR_MALFORMED (bad tags, non-minimal
 * lengths, trailing bytes) or FLARE_ERR_TOO_LARGE (a field over its bound). */
int flare__tls_signed_key_parse(const uint8_t *ext, size_t len, const uint8_t **pub,
                                size_t *pub_len, const uint8_t **sig, size_t *sig_len);

/* Verifies one DER certificate as a libp2p peer certificate at unix_now:
 * well-formed, self-signature valid, within validity, no unknown critical
 * extension, exactly one libp2p extension whose host-key signature verifies.
 * On success *key and *id (either may be NULL) receive the host key and peer
 * ID. If expected is set and differs, returns FLARE_ERR_PEER_ID_MISMATCH with
 * *id set to the certificate's peer ID (for the error message).
 * Returns 0 or:
 *   FLARE_ERR_TOO_LARGE     certificate over FLARE__TLS_CERT_MAX;
 *   FLARE_ERR_MALFORMED     not a parsable X.509 certificate, unique IDs present,
 *                           duplicate or malformed extension;
 *   FLARE_ERR_NOT_FOUND     no libp2p extension;
 *   FLARE_ERR_UNSUPPORTED   an unknown critical extension, or a signature
 *                           algorithm GnuTLS will not verify;
 *   FLARE_ERR_BAD_SIGNATURE the self-signature or the host-key signature fails;
 *   FLARE_ERR_OUT_OF_RANGE  not yet valid or expired at unix_now;
 *   FLARE_ERR_UNKNOWN_CODE / other key errors: the host key does not decode;
 *   FLARE_ERR_PEER_ID_MISMATCH; FLARE_ERR_NOMEM. */
int flare__tls_cert_verify(const uint8_t *der, size_t len, uint64_t unix_now,
                           const flare_peerid *expected, flare_pubkey *key, flare_peerid *id);

/* Verifies the chain a peer sent: exactly one certificate (FLARE_ERR_PROTO
 * for zero or several), then as flare__tls_cert_verify. */
int flare__tls_chain_verify(const gnutls_datum_t *certs, size_t n, uint64_t unix_now,
                            const flare_peerid *expected, flare_pubkey *key, flare_peerid *id);

/* As flare__tls_chain_verify on the peer certificates of a GnuTLS session
 * (gnutls_certificate_get_peers): for verify callbacks (TCP and QUIC). */
int flare__tls_session_verify(gnutls_session_t s, uint64_t unix_now, const flare_peerid *expected,
                              flare_pubkey *key, flare_peerid *id);

/* Writes "peer id mismatch: expected <A>, got <B>" to out (NUL-terminated,
 * truncated to cap). Returns the length written. */
int flare__tls_mismatch_str(const flare_peerid *expected, const flare_peerid *got, char *out,
                            size_t cap);

#endif
