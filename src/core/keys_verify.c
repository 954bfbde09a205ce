/* Verify-only public keys: RSA and ECDSA (GnuTLS), secp256k1 (libsecp256k1).
 * All three sign SHA-256 of the message (libp2p peer-ids spec). */
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <secp256k1.h>
#include <sodium.h>

#include "core/keys_int.h"

#define SECP256K1_COMPRESSED_LEN 33

/* ---- SubjectPublicKeyInfo keys (RSA, ECDSA) --------------------------- */

/* Imports a DER SPKI, requiring the algorithm want. */
static int spki_import(const uint8_t *der, size_t len, gnutls_pk_algorithm_t want,
                       gnutls_pubkey_t *out, unsigned *bits)
{
    gnutls_pubkey_t k;
    if (len == 0 || len > FLARE_PUBKEY_DATA_MAX)
        return FLARE_ERR_MALFORMED;
    if (gnutls_pubkey_init(&k) < 0)
        return FLARE_ERR_NOMEM;
    gnutls_datum_t d = {(unsigned char *)der, (unsigned)len};
    if (gnutls_pubkey_import(k, &d, GNUTLS_X509_FMT_DER) < 0) {
        gnutls_pubkey_deinit(k);
        return FLARE_ERR_MALFORMED;
    }
    unsigned b = 0;
    if (gnutls_pubkey_get_pk_algorithm(k, &b) != (int)want) {
        gnutls_pubkey_deinit(k);
        return FLARE_ERR_MALFORMED;
    }
    if (bits)
        *bits = b;
    *out = k;
    return 0;
}

static int rsa_import(const uint8_t *der, size_t len, gnutls_pubkey_t *out)
{
    unsigned bits;
    int rv = spki_import(der, len, GNUTLS_PK_RSA, out, &bits);
    if (rv)
        return rv;
    /* go-libp2p refuses keys under 2048 bits (and over 8192) as insecure or
     * as a denial-of-service vector; so do we. */
    if (bits < FLARE__RSA_MIN_BITS || bits > FLARE__RSA_MAX_BITS) {
        gnutls_pubkey_deinit(*out);
        return FLARE_ERR_OUT_OF_RANGE;
    }
    return 0;
}

/* go and js accept the NIST curves P-256, P-384 and P-521 (always hashing
 * with SHA-256); rust only P-256. We follow go. */
static int ecdsa_import(const uint8_t *der, size_t len, gnutls_pubkey_t *out)
{
    int rv = spki_import(der, len, GNUTLS_PK_ECDSA, out, NULL);
    if (rv)
        return rv;
    gnutls_ecc_curve_t curve = GNUTLS_ECC_CURVE_INVALID;
    gnutls_datum_t x = {NULL, 0}, y = {NULL, 0};
    rv = gnutls_pubkey_export_ecc_raw2(*out, &curve, &x, &y, 0);
    gnutls_free(x.data);
    gnutls_free(y.data);
    if (rv < 0) {
        gnutls_pubkey_deinit(*out);
        return FLARE_ERR_MALFORMED;
    }
    if (curve != GNUTLS_ECC_CURVE_SECP256R1 && curve != GNUTLS_ECC_CURVE_SECP384R1 &&
        curve != GNUTLS_ECC_CURVE_SECP521R1) {
        gnutls_pubkey_deinit(*out);
        return FLARE_ERR_UNSUPPORTED;
    }
    /* Rejects points that are not on the curve. */
    if (gnutls_pubkey_verify_params(*out) < 0) {
        gnutls_pubkey_deinit(*out);
        return FLARE_ERR_MALFORMED;
    }
    return 0;
}

static int spki_verify(gnutls_pubkey_t k, gnutls_sign_algorithm_t alg, const uint8_t *msg,
                       size_t len, const uint8_t *sig, size_t siglen)
{
    gnutls_datum_t m = {(unsigned char *)msg, (unsigned)len};
    gnutls_datum_t s = {(unsigned char *)sig, (unsigned)siglen};
    int rv = gnutls_pubkey_verify_data2(k, alg, 0, &m, &s);
    gnutls_pubkey_deinit(k);
    return rv >= 0 ? 0 : FLARE_ERR_BAD_SIGNATURE;
}

int flare__rsa_check(const uint8_t *der, size_t len)
{
    gnutls_pubkey_t k;
    int rv = rsa_import(der, len, &k);
    if (rv == 0)
        gnutls_pubkey_deinit(k);
    return rv;
}

int flare__ecdsa_check(const uint8_t *der, size_t len)
{
    gnutls_pubkey_t k;
    int rv = ecdsa_import(der, len, &k);
    if (rv == 0)
        gnutls_pubkey_deinit(k);
    return rv;
}

int flare__rsa_verify(const flare_pubkey *key, const uint8_t *msg, size_t len, const uint8_t *sig,
                      size_t siglen)
{
    gnutls_pubkey_t k;
    if (len > UINT32_MAX)
        return FLARE_ERR_TOO_LARGE;
    int rv = rsa_import(key->data, key->len, &k);
    if (rv)
        return rv;
    return spki_verify(k, GNUTLS_SIGN_RSA_SHA256, msg, len, sig, siglen);
}

int flare__ecdsa_verify(const flare_pubkey *key, const uint8_t *msg, size_t len, const uint8_t *sig,
                        size_t siglen)
{
    gnutls_pubkey_t k;
    if (len > UINT32_MAX)
        return FLARE_ERR_TOO_LARGE;
    int rv = ecdsa_import(key->data, key->len, &k);
    if (rv)
        return rv;
    return spki_verify(k, GNUTLS_SIGN_ECDSA_SHA256, msg, len, sig, siglen);
}

/* ---- secp256k1 --------------------------------------------------------- */

/* The spec's "Bitcoin EC encoding": the 33-byte compressed point, which is
 * what go, rust and js produce (rust accepts nothing else). */
static int secp_parse(const uint8_t *data, size_t len, secp256k1_pubkey *pk)
{
    if (len != SECP256K1_COMPRESSED_LEN || (data[0] != 0x02 && data[0] != 0x03))
        return FLARE_ERR_MALFORMED;
    if (!secp256k1_ec_pubkey_parse(secp256k1_context_static, pk, data, len))
        return FLARE_ERR_MALFORMED; /* x is not on the curve */
    return 0;
}

int flare__secp256k1_check(const uint8_t *data, size_t len)
{
    secp256k1_pubkey pk;
    return secp_parse(data, len, &pk);
}

int flare__secp256k1_verify(const flare_pubkey *key, const uint8_t *msg, size_t len,
                            const uint8_t *sig, size_t siglen)
{
    secp256k1_pubkey pk;
    int rv = secp_parse(key->data, key->len, &pk);
    if (rv)
        return rv;
    secp256k1_ecdsa_signature s;
    if (!secp256k1_ecdsa_signature_parse_der(secp256k1_context_static, &s, sig, siglen))
        return FLARE_ERR_BAD_SIGNATURE;
    /* libsecp256k1 only accepts low-S; go (decred) accepts both, so
     * normalize first to verify what go verifies. */
    secp256k1_ecdsa_signature_normalize(secp256k1_context_static, &s, &s);
    uint8_t h[crypto_hash_sha256_BYTES];
    if (sodium_init() < 0)
        return FLARE_ERR_INTERNAL;
    crypto_hash_sha256(h, msg, len);
    return secp256k1_ecdsa_verify(secp256k1_context_static, &s, h, &pk) ? 0
                                                                        : FLARE_ERR_BAD_SIGNATURE;
}
