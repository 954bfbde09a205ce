/* libp2p TLS certificates: making ours, verifying the peer's. */
#include "security/tls/tls_cert.h"

#include <gnutls/abstract.h>
#include <stdio.h>
#include <string.h>

#include "security/tls/tls_der.h"

#define PREFIX_LEN (sizeof(FLARE__TLS_SIG_PREFIX) - 1)
/* The certificate's own key, when RSA, at most this big (a verification cost
 * bound; our keys and every libp2p implementation's are ECDSA). */
#define CERT_RSA_MAX_BITS 8192

/* ---- making a certificate -------------------------------------------- */

/* DER SignedKey { pub OCTET STRING, sig OCTET STRING } into out. */
static int signed_key_encode(const uint8_t *pub, size_t pub_len, const uint8_t *sig, size_t sig_len,
                             uint8_t *out, size_t cap, size_t *out_len)
{
    uint8_t inner[FLARE_PUBKEY_PROTO_MAX + FLARE_SIG_MAX + 16];
    size_t n = 0;
    int rv = flare__der_put(inner, sizeof(inner), &n, FLARE__DER_OCTET_STRING, pub, pub_len);
    if (!rv)
        rv = flare__der_put(inner, sizeof(inner), &n, FLARE__DER_OCTET_STRING, sig, sig_len);
    size_t m = 0;
    if (!rv)
        rv = flare__der_put(out, cap, &m, FLARE__DER_SEQUENCE, inner, n);
    *out_len = m;
    return rv;
}

/* The DER SubjectPublicKeyInfo of key (gnutls-allocated). */
static int spki_of(gnutls_x509_privkey_t key, gnutls_datum_t *spki)
{
    gnutls_privkey_t pk = NULL;
    gnutls_pubkey_t pub = NULL;
    int ok = gnutls_privkey_init(&pk) >= 0 && gnutls_pubkey_init(&pub) >= 0 &&
             gnutls_privkey_import_x509(pk, key, 0) >= 0 &&
             gnutls_pubkey_import_privkey(pub, pk, 0, 0) >= 0 &&
             gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, spki) >= 0;
    if (pub)
        gnutls_pubkey_deinit(pub);
    if (pk)
        gnutls_privkey_deinit(pk);
    return ok ? 0 : FLARE_ERR_CRYPTO;
}

/* The libp2p extension value for identity over the certificate key. */
static int make_extension(const flare_privkey *identity, gnutls_x509_privkey_t key, uint8_t *ext,
                          size_t cap, size_t *ext_len)
{
    gnutls_datum_t spki = {NULL, 0};
    int rv = spki_of(key, &spki);
    if (rv)
        return rv;
    uint8_t msg[PREFIX_LEN + 512];
    if (spki.size > sizeof(msg) - PREFIX_LEN) {
        gnutls_free(spki.data);
        return FLARE_ERR_CRYPTO;
    }
    memcpy(msg, FLARE__TLS_SIG_PREFIX, PREFIX_LEN);
    memcpy(msg + PREFIX_LEN, spki.data, spki.size);
    size_t msg_len = PREFIX_LEN + spki.size;
    gnutls_free(spki.data);

    uint8_t sig[FLARE_SIG_MAX], pub[FLARE_PUBKEY_PROTO_MAX];
    size_t sig_len = 0;
    rv = flare_privkey_sign(identity, msg, msg_len, sig, &sig_len);
    if (rv)
        return rv;
    int pub_len = flare_pubkey_encode(&identity->pub, pub, sizeof(pub));
    if (pub_len < 0)
        return pub_len;
    return signed_key_encode(pub, (size_t)pub_len, sig, sig_len, ext, cap, ext_len);
}

static int fill_cert(flare__tls_cert *c, const flare_privkey *identity, uint64_t unix_now,
                     flare_rng rng)
{
    if (gnutls_x509_privkey_init(&c->key) < 0 || gnutls_x509_crt_init(&c->crt) < 0)
        return FLARE_ERR_NOMEM;
    if (gnutls_x509_privkey_generate(c->key, GNUTLS_PK_ECDSA,
                                     GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0) < 0)
        return FLARE_ERR_CRYPTO;
    uint8_t ext[FLARE_PUBKEY_PROTO_MAX + FLARE_SIG_MAX + 32];
    size_t ext_len = 0;
    int rv = make_extension(identity, c->key, ext, sizeof(ext), &ext_len);
    if (rv)
        return rv;
    /* A positive, minimally encoded 64-bit serial. */
    uint8_t serial[FLARE__TLS_CERT_RNG_LEN];
    rng.fn(serial, sizeof(serial), rng.user);
    serial[0] = (uint8_t)((serial[0] & 0x7f) | 0x01);
    time_t now = (time_t)unix_now;
    if (gnutls_x509_crt_set_version(c->crt, 3) < 0 ||
        gnutls_x509_crt_set_serial(c->crt, serial, sizeof(serial)) < 0 ||
        gnutls_x509_crt_set_activation_time(c->crt, now - FLARE__TLS_CERT_BACKDATE_S) < 0 ||
        gnutls_x509_crt_set_expiration_time(c->crt, now + (time_t)FLARE__TLS_CERT_LIFETIME_S) < 0 ||
        gnutls_x509_crt_set_key(c->crt, c->key) < 0 ||
        gnutls_x509_crt_set_extension_by_oid(c->crt, FLARE__TLS_EXT_OID, ext, ext_len, 1) < 0 ||
        gnutls_x509_crt_sign2(c->crt, c->crt, c->key, GNUTLS_DIG_SHA256, 0) < 0 ||
        gnutls_x509_crt_export2(c->crt, GNUTLS_X509_FMT_DER, &c->der) < 0)
        return FLARE_ERR_CRYPTO;
    return 0;
}

int flare__tls_cert_make(flare__tls_cert *c, const flare_privkey *identity, uint64_t unix_now,
                         flare_rng rng)
{
    if (!c)
        return FLARE_ERR_INVALID_ARG;
    memset(c, 0, sizeof(*c));
    if (!identity || !rng.fn || unix_now < FLARE__TLS_CERT_BACKDATE_S)
        return FLARE_ERR_INVALID_ARG;
    int rv = fill_cert(c, identity, unix_now, rng);
    if (rv)
        flare__tls_cert_free(c);
    return rv;
}

void flare__tls_cert_free(flare__tls_cert *c)
{
    if (!c)
        return;
    if (c->crt)
        gnutls_x509_crt_deinit(c->crt);
    if (c->key)
        gnutls_x509_privkey_deinit(c->key);
    gnutls_free(c->der.data);
    memset(c, 0, sizeof(*c));
}

int flare__tls_cert_set_credentials(const flare__tls_cert *c, gnutls_certificate_credentials_t cred)
{
    gnutls_x509_crt_t crt = c->crt;
    if (gnutls_certificate_set_x509_key(cred, &crt, 1, c->key) < 0)
        return FLARE_ERR_CRYPTO;
    return 0;
}

/* ---- parsing ------------------------------------------------------------ */

int flare__tls_signed_key_parse(const uint8_t *ext, size_t len, const uint8_t **pub,
                                size_t *pub_len, const uint8_t **sig, size_t *sig_len)
{
    flare__der top = {ext, len}, seq, p, s;
    int rv = flare__der_get(&top, FLARE__DER_SEQUENCE, &seq, NULL);
    if (rv)
        return rv;
    if (top.len)
        return FLARE_ERR_MALFORMED;
    if ((rv = flare__der_get(&seq, FLARE__DER_OCTET_STRING, &p, NULL)) ||
        (rv = flare__der_get(&seq, FLARE__DER_OCTET_STRING, &s, NULL)))
        return rv;
    if (seq.len)
        return FLARE_ERR_MALFORMED;
    if (p.len == 0 || s.len == 0)
        return FLARE_ERR_MALFORMED;
    if (p.len > FLARE_PUBKEY_PROTO_MAX || s.len > FLARE_SIG_MAX)
        return FLARE_ERR_TOO_LARGE;
    *pub = p.p;
    *pub_len = p.len;
    *sig = s.p;
    *sig_len = s.len;
    return 0;
}

/* The raw pieces of a certificate that GnuTLS does not hand out as bytes. */
typedef struct cert_parts {
    flare__der tbs;     /* whole TLV: what the self-signature covers */
    flare__der spki;    /* whole TLV: what the host key signs */
    flare__der sig;     /* the signature BIT STRING's bytes */
    flare__der alg_in;  /* signature AlgorithmIdentifier inside tbs (whole TLV) */
    flare__der alg_out; /* and outside it; RFC 5280 requires them equal */
} cert_parts;

/* Certificate ::= SEQUENCE { tbs, signatureAlgorithm, signatureValue BIT
 * STRING }, tbs walked up to the SPKI; rejects the deprecated unique IDs. */
static int cert_split(const uint8_t *der, size_t len, cert_parts *cp)
{
    flare__der top = {der, len}, cert, tbs, v, bits;
    int rv;
    if ((rv = flare__der_get(&top, FLARE__DER_SEQUENCE, &cert, NULL)))
        return rv;
    if (top.len)
        return FLARE_ERR_MALFORMED;
    if ((rv = flare__der_get(&cert, FLARE__DER_SEQUENCE, &tbs, &cp->tbs)) ||
        (rv = flare__der_get(&cert, FLARE__DER_SEQUENCE, &v, &cp->alg_out)) ||
        (rv = flare__der_get(&cert, FLARE__DER_BIT_STRING, &bits, NULL)))
        return rv;
    if (cert.len || bits.len < 2 || bits.p[0] != 0)
        return FLARE_ERR_MALFORMED;
    cp->sig.p = bits.p + 1;
    cp->sig.len = bits.len - 1;
    if (tbs.len && tbs.p[0] == 0xa0 && (rv = flare__der_get(&tbs, 0xa0, &v, NULL)))
        return rv;
    if ((rv = flare__der_get(&tbs, FLARE__DER_INTEGER, &v, NULL)) ||
        (rv = flare__der_get(&tbs, FLARE__DER_SEQUENCE, &v, &cp->alg_in)) ||
        (rv = flare__der_get(&tbs, FLARE__DER_SEQUENCE, &v, NULL)) || /* issuer */
        (rv = flare__der_get(&tbs, FLARE__DER_SEQUENCE, &v, NULL)) || /* validity */
        (rv = flare__der_get(&tbs, FLARE__DER_SEQUENCE, &v, NULL)) || /* subject */
        (rv = flare__der_get(&tbs, FLARE__DER_SEQUENCE, &v, &cp->spki)))
        return rv;
    if (tbs.len && (tbs.p[0] == 0x81 || tbs.p[0] == 0xa1 || tbs.p[0] == 0x82 || tbs.p[0] == 0xa2))
        return FLARE_ERR_MALFORMED; /* issuerUniqueID / subjectUniqueID */
    if (cp->alg_in.len != cp->alg_out.len || memcmp(cp->alg_in.p, cp->alg_out.p, cp->alg_in.len))
        return FLARE_ERR_MALFORMED;
    return 0;
}

/* ---- verifying ---------------------------------------------------------- */

static int self_signature_check(gnutls_x509_crt_t crt, const cert_parts *cp)
{
    gnutls_pubkey_t pub;
    if (gnutls_pubkey_init(&pub) < 0)
        return FLARE_ERR_NOMEM;
    int rv = FLARE_ERR_UNSUPPORTED;
    unsigned bits = 0;
    int alg = gnutls_x509_crt_get_signature_algorithm(crt);
    if (gnutls_pubkey_import_x509(pub, crt, 0) < 0)
        goto out;
    int pk = gnutls_pubkey_get_pk_algorithm(pub, &bits);
    if (pk == GNUTLS_PK_RSA && bits > CERT_RSA_MAX_BITS)
        goto out;
    if (alg < 0 || alg == GNUTLS_SIGN_UNKNOWN)
        goto out;
    gnutls_datum_t tbs = {(unsigned char *)cp->tbs.p, (unsigned)cp->tbs.len};
    gnutls_datum_t sig = {(unsigned char *)cp->sig.p, (unsigned)cp->sig.len};
    int g = gnutls_pubkey_verify_data2(pub, (gnutls_sign_algorithm_t)alg, 0, &tbs, &sig);
    if (g >= 0)
        rv = 0;
    else if (g == GNUTLS_E_PK_SIG_VERIFY_FAILED)
        rv = FLARE_ERR_BAD_SIGNATURE;
    else if (g == GNUTLS_E_MEMORY_ERROR)
        rv = FLARE_ERR_NOMEM;
    else if (g == GNUTLS_E_UNSUPPORTED_SIGNATURE_ALGORITHM || g == GNUTLS_E_INSUFFICIENT_SECURITY)
        rv = FLARE_ERR_UNSUPPORTED;
    else
        rv = FLARE_ERR_BAD_SIGNATURE;
out:
    gnutls_pubkey_deinit(pub);
    return rv;
}

static int validity_check(gnutls_x509_crt_t crt, uint64_t unix_now)
{
    time_t nb = gnutls_x509_crt_get_activation_time(crt);
    time_t na = gnutls_x509_crt_get_expiration_time(crt);
    if (nb == (time_t)-1 || na == (time_t)-1)
        return FLARE_ERR_MALFORMED;
    if ((int64_t)unix_now < (int64_t)nb || (int64_t)unix_now > (int64_t)na)
        return FLARE_ERR_OUT_OF_RANGE;
    return 0;
}

/* Critical extensions we (or GnuTLS, for the self-signature) understand. */
static int crit_known(const char *oid)
{
    static const char *const known[] = {
        FLARE__TLS_EXT_OID, "2.5.29.15" /* keyUsage */, "2.5.29.19" /* basicConstraints */,
        "2.5.29.37" /* extKeyUsage */, "2.5.29.17" /* subjectAltName */};
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (!strcmp(oid, known[i]))
            return 1;
    return 0;
}

/* Finds the one libp2p extension; *ext is gnutls-allocated. */
static int extension_find(gnutls_x509_crt_t crt, gnutls_datum_t *ext)
{
    int found = -1;
    for (unsigned i = 0;; i++) {
        char oid[128];
        size_t oid_len = sizeof(oid);
        unsigned crit = 0;
        int g = gnutls_x509_crt_get_extension_info(crt, i, oid, &oid_len, &crit);
        if (g == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
            break;
        if (g < 0)
            return FLARE_ERR_MALFORMED;
        if (crit && !crit_known(oid))
            return FLARE_ERR_UNSUPPORTED;
        if (!strcmp(oid, FLARE__TLS_EXT_OID)) {
            if (found >= 0)
                return FLARE_ERR_MALFORMED;
            found = (int)i;
        }
    }
    if (found < 0)
        return FLARE_ERR_NOT_FOUND;
    if (gnutls_x509_crt_get_extension_data2(crt, (unsigned)found, ext) < 0)
        return FLARE_ERR_MALFORMED;
    return 0;
}

/* The host-key signature over the prefix and the certificate's SPKI. */
static int host_key_check(const gnutls_datum_t *ext, const cert_parts *cp, flare_pubkey *key)
{
    const uint8_t *pub, *sig;
    size_t pub_len, sig_len;
    int rv = flare__tls_signed_key_parse(ext->data, ext->size, &pub, &pub_len, &sig, &sig_len);
    if (rv)
        return rv;
    if ((rv = flare_pubkey_decode(key, pub, pub_len)))
        return rv;
    uint8_t msg[PREFIX_LEN + FLARE__TLS_CERT_MAX];
    if (cp->spki.len > FLARE__TLS_CERT_MAX)
        return FLARE_ERR_TOO_LARGE;
    memcpy(msg, FLARE__TLS_SIG_PREFIX, PREFIX_LEN);
    memcpy(msg + PREFIX_LEN, cp->spki.p, cp->spki.len);
    return flare_pubkey_verify(key, msg, PREFIX_LEN + cp->spki.len, sig, sig_len);
}

static int verify_crt(gnutls_x509_crt_t crt, const cert_parts *cp, uint64_t unix_now,
                      flare_pubkey *key)
{
    int rv = self_signature_check(crt, cp);
    if (!rv)
        rv = validity_check(crt, unix_now);
    if (rv)
        return rv;
    gnutls_datum_t ext = {NULL, 0};
    rv = extension_find(crt, &ext);
    if (!rv)
        rv = host_key_check(&ext, cp, key);
    gnutls_free(ext.data);
    return rv;
}

int flare__tls_cert_verify(const uint8_t *der, size_t len, uint64_t unix_now,
                           const flare_peerid *expected, flare_pubkey *key, flare_peerid *id)
{
    if (!der)
        return FLARE_ERR_INVALID_ARG;
    if (len > FLARE__TLS_CERT_MAX)
        return FLARE_ERR_TOO_LARGE;
    cert_parts cp;
    int rv = cert_split(der, len, &cp);
    if (rv)
        return rv == FLARE_ERR_TOO_LARGE ? rv : FLARE_ERR_MALFORMED;
    gnutls_x509_crt_t crt;
    if (gnutls_x509_crt_init(&crt) < 0)
        return FLARE_ERR_NOMEM;
    gnutls_datum_t d = {(unsigned char *)der, (unsigned)len};
    flare_pubkey k;
    flare_peerid pid;
    if (gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_DER) < 0)
        rv = FLARE_ERR_MALFORMED;
    else
        rv = verify_crt(crt, &cp, unix_now, &k);
    gnutls_x509_crt_deinit(crt);
    if (!rv)
        rv = flare_peerid_from_pubkey(&pid, &k);
    if (rv)
        return rv;
    if (key)
        *key = k;
    if (id)
        *id = pid;
    if (expected && expected->len && !flare_peerid_equal(expected, &pid))
        return FLARE_ERR_PEER_ID_MISMATCH;
    return 0;
}

int flare__tls_chain_verify(const gnutls_datum_t *certs, size_t n, uint64_t unix_now,
                            const flare_peerid *expected, flare_pubkey *key, flare_peerid *id)
{
    if (!certs || n != 1)
        return FLARE_ERR_PROTO;
    return flare__tls_cert_verify(certs[0].data, certs[0].size, unix_now, expected, key, id);
}

int flare__tls_session_verify(gnutls_session_t s, uint64_t unix_now, const flare_peerid *expected,
                              flare_pubkey *key, flare_peerid *id)
{
    unsigned n = 0;
    const gnutls_datum_t *certs = gnutls_certificate_get_peers(s, &n);
    if (gnutls_certificate_type_get(s) != GNUTLS_CRT_X509)
        return FLARE_ERR_PROTO;
    return flare__tls_chain_verify(certs, certs ? n : 0, unix_now, expected, key, id);
}

int flare__tls_mismatch_str(const flare_peerid *expected, const flare_peerid *got, char *out,
                            size_t cap)
{
    char a[FLARE_PEERID_STR_MAX] = "?", b[FLARE_PEERID_STR_MAX] = "?";
    if (expected)
        flare_peerid_to_string(expected, a, sizeof(a));
    if (got)
        flare_peerid_to_string(got, b, sizeof(b));
    if (!out || cap == 0)
        return 0;
    int n = snprintf(out, cap, "peer id mismatch: expected %s, got %s", a, b);
    if (n < 0)
        return 0;
    return (size_t)n >= cap ? (int)cap - 1 : n;
}
