/* libp2p TLS certificates: the spec's test vectors, our own certificates in
 * a round trip, and hostile certificates. */
#include "support/test.h"

#include <gnutls/abstract.h>
#include <stdlib.h>

#include "flare/peerid.h"
#include "security/tls/tls_cert.h"
#include "security/tls/tls_der.h"

/* libp2p/specs tls/tls.md, "Test vectors". */
static const char vec_ed25519[] =
    "308201ae30820156a0030201020204499602d2300a06082a8648ce3d040302302031123010060355040a13096c69"
    "627032702e696f310a300806035504051301313020170d3735303130313133303030305a180f3430393630313031"
    "3133303030305a302031123010060355040a13096c69627032702e696f310a300806035504051301313059301306"
    "072a8648ce3d020106082a8648ce3d030107034200040c901d423c831ca85e27c73c263ba132721bb9d7a84c4f03"
    "80b2a6756fd601331c8870234dec878504c174144fa4b14b66a651691606d8173e55bd37e381569ea37c307a3078"
    "060a2b0601040183a25a0101046a3068042408011220a77f1d92fedb59dddaea5a1c4abd1ac2fbde7d7b879ed364"
    "501809923d7c11b90440d90d2769db992d5e6195dbb08e706b6651e024fda6cfb8846694a435519941cac215a820"
    "7792e42849cccc6cd8136c6e4bde92a58c5e08cfd4206eb5fe0bf909300a06082a8648ce3d040302034600304302"
    "1f50f6b6c52711a881778718238f650c9fb48943ae6ee6d28427dc6071ae55e702203625f116a7a454db9c56986c"
    "82a25682f7248ea1cb764d322ea983ed36a31b77";
static const char vec_ecdsa[] =
    "308201f63082019da0030201020204499602d2300a06082a8648ce3d040302302031123010060355040a13096c69"
    "627032702e696f310a300806035504051301313020170d3735303130313133303030305a180f3430393630313031"
    "3133303030305a302031123010060355040a13096c69627032702e696f310a300806035504051301313059301306"
    "072a8648ce3d020106082a8648ce3d030107034200040c901d423c831ca85e27c73c263ba132721bb9d7a84c4f03"
    "80b2a6756fd601331c8870234dec878504c174144fa4b14b66a651691606d8173e55bd37e381569ea381c23081bf"
    "3081bc060a2b0601040183a25a01010481ad3081aa045f0803125b3059301306072a8648ce3d020106082a8648ce"
    "3d03010703420004bf30511f909414ebdd3242178fd290f093a551cf75c973155de0bb5a96fedf6cb5d52da7563e"
    "794b512f66e60c7f55ba8a3acf3dd72a801980d205e8a1ad29f2044730450220064ea8124774caf8f50e57f436aa"
    "62350ce652418c019df5d98a3ac666c9386a022100aa59d704a931b5f72fb9222cb6cc51f954d04a4e2e5450f880"
    "5fe8918f71eaae300a06082a8648ce3d04030203470030440220799395b0b6c1e940a7e4484705f610ab51ed376f"
    "19ff9d7c16757cfbf61b8d4302206205c03fbb0f95205c779be86581d3e31c01871ad5d1f3435bcf375cb0e5088a";
static const char vec_secp256k1[] =
    "308201ba3082015fa0030201020204499602d2300a06082a8648ce3d040302302031123010060355040a13096c69"
    "627032702e696f310a300806035504051301313020170d3735303130313133303030305a180f3430393630313031"
    "3133303030305a302031123010060355040a13096c69627032702e696f310a300806035504051301313059301306"
    "072a8648ce3d020106082a8648ce3d030107034200040c901d423c831ca85e27c73c263ba132721bb9d7a84c4f03"
    "80b2a6756fd601331c8870234dec878504c174144fa4b14b66a651691606d8173e55bd37e381569ea38184308181"
    "307f060a2b0601040183a25a01010471306f0425080212210206dc6968726765b820f050263ececf7f71e4955892"
    "776c0970542efd689d2382044630440220145e15a991961f0d08cd15425bb95ec93f6ffa03c5a385eedc34ecf464"
    "c7a8ab022026b3109b8a3f40ef833169777eb2aa337cfb6282f188de0666d1bcec2a4690dd300a06082a8648ce3d"
    "0403020349003046022100e1a217eeef9ec9204b3f774a08b70849646b6a1e6b8b27f93dc00ed58545d9fe022100"
    "b00dafa549d0f03547878338c7b15e7502888f6d45db387e5ae6b5d46899cef0";
static const char vec_invalid[] =
    "308201f73082019da0030201020204499602d2300a06082a8648ce3d040302302031123010060355040a13096c69"
    "627032702e696f310a300806035504051301313020170d3735303130313133303030305a180f3430393630313031"
    "3133303030305a302031123010060355040a13096c69627032702e696f310a300806035504051301313059301306"
    "072a8648ce3d020106082a8648ce3d030107034200040c901d423c831ca85e27c73c263ba132721bb9d7a84c4f03"
    "80b2a6756fd601331c8870234dec878504c174144fa4b14b66a651691606d8173e55bd37e381569ea381c23081bf"
    "3081bc060a2b0601040183a25a01010481ad3081aa045f0803125b3059301306072a8648ce3d020106082a8648ce"
    "3d03010703420004bf30511f909414ebdd3242178fd290f093a551cf75c973155de0bb5a96fedf6cb5d52da7563e"
    "794b512f66e60c7f55ba8a3acf3dd72a801980d205e8a1ad29f204473045022100bb6e03577b7cc7a3cd1558df0d"
    "a2b117dfdcc0399bc2504ebe7de6f65cade72802206de96e2a5be9b6202adba24ee0362e490641ac45c240db71fe"
    "955f2c5cf8df6e300a06082a8648ce3d0403020348003045022100e847f267f43717358f850355bdcabbefb2cfbf"
    "8a3c043b203a14788a092fe8db022027c1d04a2d41fd6b57a7e8b3989e470325de4406e52e084e34a3fd56eef0d0"
    "df";

#define NOW 1800000000ULL /* 2027-01-15; the vectors are valid 1975..4096 */

static size_t unhex_alloc(const char *hex, uint8_t **out)
{
    size_t cap = strlen(hex) / 2;
    *out = malloc(cap);
    assert_non_null(*out);
    return flare_test_unhex(hex, *out, cap);
}

static void expect_vector(const char *hex, const char *peer)
{
    uint8_t *der;
    size_t len = unhex_alloc(hex, &der);
    flare_pubkey k;
    flare_peerid id, want;
    assert_int_equal(flare__tls_cert_verify(der, len, NOW, NULL, &k, &id), 0);
    assert_int_equal(flare_peerid_parse(&want, peer, strlen(peer)), 0);
    assert_true(flare_peerid_equal(&id, &want));
    assert_true(flare_peerid_matches_pubkey(&want, &k));
    /* The expected peer ID is accepted; another is a mismatch naming both. */
    assert_int_equal(flare__tls_cert_verify(der, len, NOW, &want, NULL, NULL), 0);
    free(der);
}

static void test_spec_vectors(void **state)
{
    (void)state;
    expect_vector(vec_ed25519, "12D3KooWM6CgA9iBFZmcYAHA6A2qvbAxqfkmrYiRQuz3XEsk4Ksv");
    expect_vector(vec_ecdsa, "QmfXbAwNjJLXfesgztEHe8HwgVDCMMpZ9Eax1HYq6hn9uE");
    expect_vector(vec_secp256k1, "16Uiu2HAkutTMoTzDw1tCvSRtu6YoixJwS46S1ZFxW8hSx9fWHiPs");
    uint8_t *der;
    size_t len = unhex_alloc(vec_invalid, &der);
    assert_int_equal(flare__tls_cert_verify(der, len, NOW, NULL, NULL, NULL),
                     FLARE_ERR_BAD_SIGNATURE);
    free(der);
}

static void identity(flare_privkey *k, uint8_t seed)
{
    uint8_t s[32];
    memset(s, seed, sizeof(s));
    assert_int_equal(flare_privkey_from_seed(k, s), 0);
}

static void test_round_trip(void **state)
{
    (void)state;
    flare_prng p;
    flare_prng_seed(&p, 1);
    flare_privkey host, other;
    identity(&host, 7);
    identity(&other, 8);
    flare_peerid host_id, other_id, got;
    assert_int_equal(flare_peerid_from_pubkey(&host_id, &host.pub), 0);
    assert_int_equal(flare_peerid_from_pubkey(&other_id, &other.pub), 0);

    flare__tls_cert c;
    assert_int_equal(flare__tls_cert_make(&c, &host, NOW, flare_prng_rng(&p)), 0);
    assert_non_null(c.crt);
    assert_true(c.der.size > 200 && c.der.size < 600);
    flare_pubkey k;
    assert_int_equal(flare__tls_cert_verify(c.der.data, c.der.size, NOW, &host_id, &k, &got), 0);
    assert_true(flare_peerid_equal(&got, &host_id));
    assert_true(flare_pubkey_equal(&k, &host.pub));
    /* Valid from an hour before now to ~100 years after. */
    assert_int_equal(flare__tls_cert_verify(c.der.data, c.der.size, NOW - 3600, NULL, NULL, NULL),
                     0);
    assert_int_equal(
        flare__tls_cert_verify(c.der.data, c.der.size, NOW + 99ULL * 365 * 86400, NULL, NULL, NULL),
        0);
    assert_int_equal(flare__tls_cert_verify(c.der.data, c.der.size, NOW - 3601, NULL, NULL, NULL),
                     FLARE_ERR_OUT_OF_RANGE);
    assert_int_equal(flare__tls_cert_verify(c.der.data, c.der.size, NOW + 101ULL * 365 * 86400,
                                            NULL, NULL, NULL),
                     FLARE_ERR_OUT_OF_RANGE);

    /* The wrong expected peer: a mismatch, with the certificate's ID reported. */
    memset(&got, 0, sizeof(got));
    assert_int_equal(flare__tls_cert_verify(c.der.data, c.der.size, NOW, &other_id, NULL, &got),
                     FLARE_ERR_PEER_ID_MISMATCH);
    assert_true(flare_peerid_equal(&got, &host_id));
    char msg[400], a[FLARE_PEERID_STR_MAX], b[FLARE_PEERID_STR_MAX];
    int n = flare__tls_mismatch_str(&other_id, &got, msg, sizeof(msg));
    assert_int_equal((size_t)n, strlen(msg));
    flare_peerid_to_string(&other_id, a, sizeof(a));
    flare_peerid_to_string(&host_id, b, sizeof(b));
    assert_non_null(strstr(msg, a));
    assert_non_null(strstr(msg, b));
    assert_true(strstr(msg, a) < strstr(msg, b));
    assert_int_equal(flare__tls_mismatch_str(&other_id, &got, msg, 10), 9);

    /* Chains: exactly one certificate. */
    gnutls_datum_t two[2] = {c.der, c.der};
    assert_int_equal(flare__tls_chain_verify(two, 1, NOW, NULL, NULL, NULL), 0);
    assert_int_equal(flare__tls_chain_verify(two, 2, NOW, NULL, NULL, NULL), FLARE_ERR_PROTO);
    assert_int_equal(flare__tls_chain_verify(two, 0, NOW, NULL, NULL, NULL), FLARE_ERR_PROTO);
    assert_int_equal(flare__tls_chain_verify(NULL, 1, NOW, NULL, NULL, NULL), FLARE_ERR_PROTO);

    /* Two certificates of one host differ (fresh key, fresh serial). */
    flare__tls_cert c2;
    assert_int_equal(flare__tls_cert_make(&c2, &host, NOW, flare_prng_rng(&p)), 0);
    assert_true(c2.der.size != c.der.size || memcmp(c2.der.data, c.der.data, c.der.size));
    flare__tls_cert_free(&c2);

    /* Installs as GnuTLS credentials. */
    gnutls_certificate_credentials_t cred;
    assert_int_equal(gnutls_certificate_allocate_credentials(&cred), 0);
    assert_int_equal(flare__tls_cert_set_credentials(&c, cred), 0);
    gnutls_certificate_free_credentials(cred);

    flare__tls_cert_free(&c);
    flare__tls_cert_free(&c); /* idempotent */
    assert_int_equal(flare__tls_cert_make(NULL, &host, NOW, flare_prng_rng(&p)),
                     FLARE_ERR_INVALID_ARG);
    assert_int_equal(flare__tls_cert_make(&c, NULL, NOW, flare_prng_rng(&p)),
                     FLARE_ERR_INVALID_ARG);
    assert_null(c.crt);
}

/* A self-signed P-256 certificate with arbitrary extensions, to build the
 * hostile cases. ext may be NULL (no libp2p extension). The host signature
 * inside ext is whatever the caller put there. */
static gnutls_datum_t custom_cert(gnutls_x509_privkey_t key, const uint8_t *ext, size_t ext_len,
                                  int crit, const char *extra_oid, int extra_crit)
{
    gnutls_x509_crt_t crt;
    assert_int_equal(gnutls_x509_crt_init(&crt), 0);
    uint8_t serial[1] = {5};
    assert_int_equal(gnutls_x509_crt_set_version(crt, 3), 0);
    assert_int_equal(gnutls_x509_crt_set_serial(crt, serial, 1), 0);
    assert_int_equal(gnutls_x509_crt_set_activation_time(crt, (time_t)NOW - 10), 0);
    assert_int_equal(gnutls_x509_crt_set_expiration_time(crt, (time_t)NOW + 1000), 0);
    assert_int_equal(gnutls_x509_crt_set_key(crt, key), 0);
    if (ext)
        assert_int_equal(
            gnutls_x509_crt_set_extension_by_oid(crt, FLARE__TLS_EXT_OID, ext, ext_len, crit), 0);
    if (extra_oid) {
        static const uint8_t null_der[] = {0x05, 0x00};
        assert_int_equal(
            gnutls_x509_crt_set_extension_by_oid(crt, extra_oid, null_der, 2, (unsigned)extra_crit),
            0);
    }
    assert_int_equal(gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0), 0);
    gnutls_datum_t der;
    assert_int_equal(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, &der), 0);
    gnutls_x509_crt_deinit(crt);
    return der;
}

/* A correct extension for host over key's SPKI (optionally a corrupted
 * signature or a replaced public key protobuf). */
static size_t good_ext(const flare_privkey *host, gnutls_x509_privkey_t key, uint8_t *out,
                       size_t cap, int corrupt_sig, const uint8_t *pub_override, size_t pub_len)
{
    gnutls_privkey_t pk;
    gnutls_pubkey_t pub;
    gnutls_datum_t spki;
    assert_int_equal(gnutls_privkey_init(&pk), 0);
    assert_int_equal(gnutls_pubkey_init(&pub), 0);
    assert_int_equal(gnutls_privkey_import_x509(pk, key, 0), 0);
    assert_int_equal(gnutls_pubkey_import_privkey(pub, pk, 0, 0), 0);
    assert_int_equal(gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, &spki), 0);
    uint8_t msg[600];
    memcpy(msg, FLARE__TLS_SIG_PREFIX, 21);
    memcpy(msg + 21, spki.data, spki.size);
    uint8_t sig[FLARE_SIG_MAX], pb[FLARE_PUBKEY_PROTO_MAX];
    size_t sig_len;
    assert_int_equal(flare_privkey_sign(host, msg, 21 + spki.size, sig, &sig_len), 0);
    if (corrupt_sig)
        sig[3] ^= 1;
    int n = flare_pubkey_encode(&host->pub, pb, sizeof(pb));
    assert_true(n > 0);
    if (pub_override) {
        memcpy(pb, pub_override, pub_len);
        n = (int)pub_len;
    }
    uint8_t inner[2048];
    size_t in_len = 0, out_len = 0;
    assert_int_equal(
        flare__der_put(inner, sizeof(inner), &in_len, FLARE__DER_OCTET_STRING, pb, (size_t)n), 0);
    assert_int_equal(
        flare__der_put(inner, sizeof(inner), &in_len, FLARE__DER_OCTET_STRING, sig, sig_len), 0);
    assert_int_equal(flare__der_put(out, cap, &out_len, FLARE__DER_SEQUENCE, inner, in_len), 0);
    gnutls_free(spki.data);
    gnutls_pubkey_deinit(pub);
    gnutls_privkey_deinit(pk);
    return out_len;
}

static int verify_datum(gnutls_datum_t d)
{
    int rv = flare__tls_cert_verify(d.data, d.size, NOW, NULL, NULL, NULL);
    gnutls_free(d.data);
    return rv;
}

static void test_bad_certificates(void **state)
{
    (void)state;
    flare_privkey host;
    identity(&host, 9);
    gnutls_x509_privkey_t key;
    assert_int_equal(gnutls_x509_privkey_init(&key), 0);
    assert_int_equal(gnutls_x509_privkey_generate(
                         key, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0),
                     0);
    uint8_t ext[1500];
    size_t n = good_ext(&host, key, ext, sizeof(ext), 0, NULL, 0);
    /* The helper itself makes good certificates, critical or not. */
    assert_int_equal(verify_datum(custom_cert(key, ext, n, 1, NULL, 0)), 0);
    assert_int_equal(verify_datum(custom_cert(key, ext, n, 0, NULL, 0)), 0);
    /* Unknown extensions: fine when not critical, refused when critical. */
    assert_int_equal(verify_datum(custom_cert(key, ext, n, 1, "1.2.3.4.5", 0)), 0);
    assert_int_equal(verify_datum(custom_cert(key, ext, n, 1, "1.2.3.4.5", 1)),
                     FLARE_ERR_UNSUPPORTED);
    /* No libp2p extension. */
    assert_int_equal(verify_datum(custom_cert(key, NULL, 0, 0, NULL, 0)), FLARE_ERR_NOT_FOUND);
    assert_int_equal(verify_datum(custom_cert(key, NULL, 0, 0, "1.2.3.4.5", 0)),
                     FLARE_ERR_NOT_FOUND);
    /* Host-key signature over the wrong bytes. */
    n = good_ext(&host, key, ext, sizeof(ext), 1, NULL, 0);
    assert_int_equal(verify_datum(custom_cert(key, ext, n, 1, NULL, 0)), FLARE_ERR_BAD_SIGNATURE);
    /* An unknown key type (7) in the PublicKey protobuf. */
    static const uint8_t bad_type[] = {0x08, 0x07, 0x12, 0x20, 1,  2,  3,  4,  5,  6,  7,  8,
                                       9,    10,   11,   12,   13, 14, 15, 16, 17, 18, 19, 20,
                                       21,   22,   23,   24,   25, 26, 27, 28, 29, 30, 31, 32};
    n = good_ext(&host, key, ext, sizeof(ext), 0, bad_type, sizeof(bad_type));
    assert_int_equal(verify_datum(custom_cert(key, ext, n, 1, NULL, 0)), FLARE_ERR_UNKNOWN_CODE);
    /* A valid key of another host than the one that signed. */
    flare_privkey other;
    identity(&other, 10);
    uint8_t pb[FLARE_PUBKEY_PROTO_MAX];
    int pbl = flare_pubkey_encode(&other.pub, pb, sizeof(pb));
    n = good_ext(&host, key, ext, sizeof(ext), 0, pb, (size_t)pbl);
    assert_int_equal(verify_datum(custom_cert(key, ext, n, 1, NULL, 0)), FLARE_ERR_BAD_SIGNATURE);
    /* Extension values that are not a SignedKey. */
    static const uint8_t junk[] = {0x30, 0x03, 0x04, 0x01, 0x00};
    assert_int_equal(verify_datum(custom_cert(key, junk, sizeof(junk), 1, NULL, 0)),
                     FLARE_ERR_TRUNCATED);
    static const uint8_t null_der[] = {0x05, 0x00};
    assert_int_equal(verify_datum(custom_cert(key, null_der, 2, 1, NULL, 0)), FLARE_ERR_MALFORMED);
    gnutls_x509_privkey_deinit(key);
}

static void test_corrupted_der(void **state)
{
    (void)state;
    flare_prng p;
    flare_prng_seed(&p, 2);
    flare_privkey host;
    identity(&host, 3);
    flare__tls_cert c;
    assert_int_equal(flare__tls_cert_make(&c, &host, NOW, flare_prng_rng(&p)), 0);
    size_t len = c.der.size;
    uint8_t *d = malloc(len + 1);
    assert_non_null(d);
    /* Every truncation fails. */
    for (size_t i = 0; i < len; i++)
        assert_true(flare__tls_cert_verify(c.der.data, i, NOW, NULL, NULL, NULL) < 0);
    /* A trailing byte fails. */
    memcpy(d, c.der.data, len);
    d[len] = 0;
    assert_int_equal(flare__tls_cert_verify(d, len + 1, NOW, NULL, NULL, NULL),
                     FLARE_ERR_MALFORMED);
    /* Every single-bit flip fails or (in a few don't-care bytes) still yields
     * the same identity; it never crashes and never yields another peer. */
    flare_peerid want, got;
    assert_int_equal(flare_peerid_from_pubkey(&want, &host.pub), 0);
    size_t ok = 0;
    for (size_t i = 0; i < len; i++) {
        memcpy(d, c.der.data, len);
        d[i] ^= 0x10;
        int rv = flare__tls_cert_verify(d, len, NOW, NULL, NULL, &got);
        if (rv == 0) {
            ok++;
            assert_true(flare_peerid_equal(&got, &want));
        }
    }
    assert_true(ok < 8);
    /* The outer signature flipped: a bad self-signature. */
    memcpy(d, c.der.data, len);
    d[len - 1] ^= 1;
    assert_int_equal(flare__tls_cert_verify(d, len, NOW, NULL, NULL, NULL),
                     FLARE_ERR_BAD_SIGNATURE);
    /* Garbage, and oversize input. */
    static const uint8_t garbage[] = {0xde, 0xad, 0xbe, 0xef};
    assert_int_equal(flare__tls_cert_verify(garbage, sizeof(garbage), NOW, NULL, NULL, NULL),
                     FLARE_ERR_MALFORMED);
    assert_int_equal(flare__tls_cert_verify(garbage, 0, NOW, NULL, NULL, NULL),
                     FLARE_ERR_MALFORMED);
    assert_int_equal(flare__tls_cert_verify(d, FLARE__TLS_CERT_MAX + 1, NOW, NULL, NULL, NULL),
                     FLARE_ERR_TOO_LARGE);
    assert_int_equal(flare__tls_cert_verify(NULL, 3, NOW, NULL, NULL, NULL), FLARE_ERR_INVALID_ARG);
    free(d);
    flare__tls_cert_free(&c);
}

static void test_signed_key_parse(void **state)
{
    (void)state;
    const uint8_t *pub, *sig;
    size_t pl, sl;
    static const uint8_t ok[] = {0x30, 0x06, 0x04, 0x01, 0xaa, 0x04, 0x01, 0xbb};
    assert_int_equal(flare__tls_signed_key_parse(ok, sizeof(ok), &pub, &pl, &sig, &sl), 0);
    assert_int_equal(pl, 1);
    assert_int_equal(pub[0], 0xaa);
    assert_int_equal(sl, 1);
    assert_int_equal(sig[0], 0xbb);
    static const uint8_t trailing[] = {0x30, 0x06, 0x04, 0x01, 0xaa, 0x04, 0x01, 0xbb, 0x00};
    static const uint8_t inner_trailing[] = {0x30, 0x07, 0x04, 0x01, 0xaa, 0x04, 0x01, 0xbb, 0x00};
    static const uint8_t nonminimal[] = {0x30, 0x81, 0x06, 0x04, 0x01, 0xaa, 0x04, 0x01, 0xbb};
    static const uint8_t indefinite[] = {0x30, 0x80, 0x04, 0x01, 0xaa, 0x04, 0x01, 0xbb, 0, 0};
    static const uint8_t leading_zero[] = {0x30, 0x82, 0x00, 0x06, 0x04,
                                           0x01, 0xaa, 0x04, 0x01, 0xbb};
    static const uint8_t empty_pub[] = {0x30, 0x05, 0x04, 0x00, 0x04, 0x01, 0xbb};
    static const uint8_t wrong_tag[] = {0x30, 0x06, 0x02, 0x01, 0xaa, 0x04, 0x01, 0xbb};
    static const uint8_t huge[] = {0x30, 0x83, 0xff, 0xff, 0xff, 0x04};
    static const uint8_t too_many_len[] = {0x30, 0x84, 0, 0, 0, 6};
    static const struct {
        const uint8_t *der;
        size_t len;
        int want;
    } bad[] = {
        {trailing, sizeof(trailing), FLARE_ERR_MALFORMED},
        {inner_trailing, sizeof(inner_trailing), FLARE_ERR_MALFORMED},
        {nonminimal, sizeof(nonminimal), FLARE_ERR_MALFORMED},
        {indefinite, sizeof(indefinite), FLARE_ERR_MALFORMED},
        {leading_zero, sizeof(leading_zero), FLARE_ERR_MALFORMED},
        {empty_pub, sizeof(empty_pub), FLARE_ERR_MALFORMED},
        {wrong_tag, sizeof(wrong_tag), FLARE_ERR_MALFORMED},
        {huge, sizeof(huge), FLARE_ERR_TRUNCATED},
        {too_many_len, sizeof(too_many_len), FLARE_ERR_MALFORMED},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(flare__tls_signed_key_parse(bad[i].der, bad[i].len, &pub, &pl, &sig, &sl),
                         bad[i].want);
    for (size_t i = 0; i < sizeof(ok); i++)
        assert_int_equal(flare__tls_signed_key_parse(ok, i, &pub, &pl, &sig, &sl),
                         FLARE_ERR_TRUNCATED);
    /* A signature over FLARE_SIG_MAX bytes is refused before verification. */
    static uint8_t big[FLARE_SIG_MAX + 16];
    size_t n = 0;
    uint8_t inner[FLARE_SIG_MAX + 16];
    static const uint8_t one[] = {1};
    static uint8_t sigbytes[FLARE_SIG_MAX + 1];
    assert_int_equal(flare__der_put(inner, sizeof(inner), &n, FLARE__DER_OCTET_STRING, one, 1), 0);
    assert_int_equal(flare__der_put(inner, sizeof(inner), &n, FLARE__DER_OCTET_STRING, sigbytes,
                                    sizeof(sigbytes)),
                     0);
    size_t m = 0;
    assert_int_equal(flare__der_put(big, sizeof(big), &m, FLARE__DER_SEQUENCE, inner, n), 0);
    assert_int_equal(flare__tls_signed_key_parse(big, m, &pub, &pl, &sig, &sl),
                     FLARE_ERR_TOO_LARGE);
    /* The writer refuses what does not fit. */
    size_t pos = 0;
    assert_int_equal(flare__der_put(inner, 3, &pos, FLARE__DER_OCTET_STRING, one, 1), 0);
    assert_int_equal(flare__der_put(inner, 3, &pos, FLARE__DER_OCTET_STRING, one, 1),
                     FLARE_ERR_BUFFER_TOO_SMALL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_vectors),     cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_bad_certificates), cmocka_unit_test(test_corrupted_der),
        cmocka_unit_test(test_signed_key_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
