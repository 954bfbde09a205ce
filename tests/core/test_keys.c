/* Keys: spec and cross-implementation vectors, sign/verify, bad input, files. */
#include "support/test.h"

#include <secp256k1.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/keys_vectors.h"
#include "core/pb.h"
#include "flare/keys.h"
#include "keys.pb-c.h"

#define SPEC  "peer_id_keys.txt"
#define GO    "go_crypto_fixtures.txt"
#define LOCAL "local_keys.txt"

static const char go_msg[] = "Libp2p is the _best_!";

static void test_ed25519_spec_vector(void **state)
{
    uint8_t priv[128], pub[64], enc[128];
    size_t privlen = vec_hex(SPEC, "ed25519_private_key", priv, sizeof(priv));
    size_t publen = vec_hex(SPEC, "ed25519_public_key", pub, sizeof(pub));
    flare_privkey k;
    assert_int_equal(flare_privkey_decode(&k, priv, privlen), 0);
    /* The spec asks: the public key must derive from the private key. */
    assert_int_equal(flare_pubkey_encode(&k.pub, enc, sizeof(enc)), (int)publen);
    assert_memory_equal(enc, pub, publen);
    assert_int_equal(flare_privkey_encode(&k, enc, sizeof(enc)), (int)privlen);
    assert_memory_equal(enc, priv, privlen);
    flare_pubkey p;
    assert_int_equal(flare_pubkey_decode(&p, pub, publen), 0);
    assert_true(flare_pubkey_equal(&p, &k.pub));
}

/* The canonical Ed25519 form and the forms around it decode as the general
 * field walk decodes them (the canonical one takes a shortcut). */
static void test_ed25519_canonical_decode(void **state)
{
    (void)state;
    uint8_t in[40];
    in[0] = 0x08;
    in[1] = 0x01;
    in[2] = 0x12;
    in[3] = 0x20;
    for (int i = 0; i < 32; i++)
        in[4 + i] = (uint8_t)(i * 7 + 3);
    flare_pubkey k, o;
    assert_int_equal(flare_pubkey_decode(&k, in, 36), 0);
    assert_int_equal(k.type, FLARE_KEY_ED25519);
    assert_int_equal(k.len, 32);
    assert_memory_equal(k.data, in + 4, 32);
    /* Fields in the other order: the same key, by the field walk. */
    uint8_t sw[36];
    memcpy(sw, in + 2, 34);
    sw[34] = 0x08;
    sw[35] = 0x01;
    assert_int_equal(flare_pubkey_decode(&o, sw, 36), 0);
    assert_true(flare_pubkey_equal(&k, &o));
    /* A secp256k1 type with 32 bytes (it needs 33), a short body, a
     * truncated input, an unknown type: refused as before. */
    in[1] = FLARE_KEY_SECP256K1;
    assert_true(flare_pubkey_decode(&o, in, 36) < 0);
    in[1] = 0x09;
    assert_true(flare_pubkey_decode(&o, in, 36) < 0);
    in[1] = 0x01;
    assert_true(flare_pubkey_decode(&o, in, 35) < 0);
    in[3] = 0x1f;
    assert_true(flare_pubkey_decode(&o, in, 35) < 0);
    in[3] = 0x20;
    /* A trailing unknown field: still the key, by the field walk. */
    in[36] = 0x18;
    in[37] = 0x05;
    assert_int_equal(flare_pubkey_decode(&o, in, 38), 0);
    assert_true(flare_pubkey_equal(&k, &o));
}

static void test_ed25519_rfc8032(void **state)
{
    /* RFC 8032 section 7.1, TEST 1 (empty message). */
    uint8_t seed[32], pk[32], sig[FLARE_SIG_MAX], want[64];
    flare_test_unhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", seed, 32);
    flare_test_unhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", pk, 32);
    flare_test_unhex(
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33b"
        "acc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        want, 64);
    flare_privkey k;
    assert_int_equal(flare_privkey_from_seed(&k, seed), 0);
    assert_int_equal(k.pub.len, 32);
    assert_memory_equal(k.pub.data, pk, 32);
    size_t siglen = 0;
    assert_int_equal(flare_privkey_sign(&k, NULL, 0, sig, &siglen), 0);
    assert_int_equal(siglen, 64);
    assert_memory_equal(sig, want, 64);
    assert_int_equal(flare_pubkey_verify(&k.pub, NULL, 0, sig, siglen), 0);
    flare_privkey_clear(&k);
    uint8_t zero[sizeof(k)] = {0};
    assert_memory_equal(&k, zero, sizeof(k));
}

static void test_ed25519_sign_verify(void **state)
{
    flare_prng p;
    flare_prng_seed(&p, 7);
    flare_privkey a, b;
    assert_int_equal(flare_privkey_generate(&a, flare_prng_rng(&p)), 0);
    assert_int_equal(flare_privkey_generate(&b, flare_prng_rng(&p)), 0);
    assert_false(flare_pubkey_equal(&a.pub, &b.pub));
    const uint8_t msg[] = "hole punching";
    uint8_t sig[FLARE_SIG_MAX];
    size_t siglen;
    assert_int_equal(flare_privkey_sign(&a, msg, sizeof(msg), sig, &siglen), 0);
    assert_int_equal(flare_pubkey_verify(&a.pub, msg, sizeof(msg), sig, siglen), 0);
    assert_int_equal(flare_pubkey_verify(&b.pub, msg, sizeof(msg), sig, siglen),
                     FLARE_ERR_BAD_SIGNATURE);
    assert_int_equal(flare_pubkey_verify(&a.pub, msg, sizeof(msg) - 1, sig, siglen),
                     FLARE_ERR_BAD_SIGNATURE);
    assert_int_equal(flare_pubkey_verify(&a.pub, msg, sizeof(msg), sig, siglen - 1),
                     FLARE_ERR_BAD_SIGNATURE);
    sig[10] ^= 1;
    assert_int_equal(flare_pubkey_verify(&a.pub, msg, sizeof(msg), sig, siglen),
                     FLARE_ERR_BAD_SIGNATURE);
    /* Same seed, same key. */
    flare_privkey c;
    flare_prng_seed(&p, 7);
    assert_int_equal(flare_privkey_generate(&c, flare_prng_rng(&p)), 0);
    assert_memory_equal(c.sk, a.sk, 64);
}

static void test_spec_pubkeys_roundtrip(void **state)
{
    static const struct {
        const char *name;
        flare_key_type type;
    } v[] = {{"ed25519_public_key", FLARE_KEY_ED25519},
             {"secp256k1_public_key", FLARE_KEY_SECP256K1},
             {"ecdsa_public_key", FLARE_KEY_ECDSA},
             {"rsa_public_key", FLARE_KEY_RSA}};
    for (size_t i = 0; i < 4; i++) {
        uint8_t in[FLARE_PUBKEY_PROTO_MAX], out[FLARE_PUBKEY_PROTO_MAX];
        size_t n = vec_hex(SPEC, v[i].name, in, sizeof(in));
        flare_pubkey k;
        assert_int_equal(flare_pubkey_decode(&k, in, n), 0);
        assert_int_equal(k.type, v[i].type);
        assert_int_equal(flare_pubkey_encode(&k, out, sizeof(out)), (int)n);
        assert_memory_equal(out, in, n);
        assert_int_equal(flare_pubkey_encode(&k, out, n - 1), FLARE_ERR_BUFFER_TOO_SMALL);
    }
}

static void test_secp256k1_spec_private_derives_public(void **state)
{
    uint8_t priv[64], pub[64], ser[33];
    size_t privlen = vec_hex(SPEC, "secp256k1_private_key", priv, sizeof(priv));
    size_t publen = vec_hex(SPEC, "secp256k1_public_key", pub, sizeof(pub));
    assert_int_equal(privlen, 4 + 32);
    assert_int_equal(publen, 4 + 33);
    secp256k1_context *ctx = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
    secp256k1_pubkey pk;
    assert_true(secp256k1_ec_pubkey_create(ctx, &pk, priv + 4));
    size_t serlen = sizeof(ser);
    assert_true(secp256k1_ec_pubkey_serialize(ctx, ser, &serlen, &pk, SECP256K1_EC_COMPRESSED));
    secp256k1_context_destroy(ctx);
    assert_memory_equal(ser, pub + 4, 33);
}

static void go_fixture(int type, const char *what, uint8_t *out, size_t cap, size_t *len)
{
    char key[32];
    snprintf(key, sizeof(key), "%d %s", type, what);
    *len = vec_hex(GO, key, out, cap);
}

static void test_go_fixtures_verify(void **state)
{
    static const int types[] = {FLARE_KEY_RSA, FLARE_KEY_SECP256K1, FLARE_KEY_ECDSA};
    for (size_t i = 0; i < 3; i++) {
        uint8_t pubenc[FLARE_PUBKEY_PROTO_MAX], sig[FLARE_SIG_MAX];
        size_t publen, siglen;
        go_fixture(types[i], "pub", pubenc, sizeof(pubenc), &publen);
        go_fixture(types[i], "sig", sig, sizeof(sig), &siglen);
        flare_pubkey k;
        assert_int_equal(flare_pubkey_decode(&k, pubenc, publen), 0);
        assert_int_equal(k.type, types[i]);
        const uint8_t *m = (const uint8_t *)go_msg;
        size_t ml = strlen(go_msg);
        assert_int_equal(flare_pubkey_verify(&k, m, ml, sig, siglen), 0);
        assert_int_equal(flare_pubkey_verify(&k, m, ml - 1, sig, siglen), FLARE_ERR_BAD_SIGNATURE);
        assert_int_equal(flare_pubkey_verify(&k, m, ml, sig, siglen - 1), FLARE_ERR_BAD_SIGNATURE);
        sig[siglen - 3] ^= 0x40;
        assert_int_equal(flare_pubkey_verify(&k, m, ml, sig, siglen), FLARE_ERR_BAD_SIGNATURE);
        assert_int_equal(flare_pubkey_verify(&k, m, ml, sig, 0), FLARE_ERR_BAD_SIGNATURE);
    }
}

static void test_secp256k1_high_s_accepted(void **state)
{
    uint8_t pubenc[64], sig[80];
    size_t publen, siglen;
    go_fixture(FLARE_KEY_SECP256K1, "pub", pubenc, sizeof(pubenc), &publen);
    go_fixture(FLARE_KEY_SECP256K1, "sig_high_s", sig, sizeof(sig), &siglen);
    flare_pubkey k;
    assert_int_equal(flare_pubkey_decode(&k, pubenc, publen), 0);
    assert_int_equal(flare_pubkey_verify(&k, (const uint8_t *)go_msg, strlen(go_msg), sig, siglen),
                     0);
}

static size_t wrap_key(flare_key_type t, const uint8_t *data, size_t len, uint8_t *out)
{
    flare_pubkey k = {.type = t, .len = len};
    memcpy(k.data, data, len);
    int n = flare_pubkey_encode(&k, out, FLARE_PUBKEY_PROTO_MAX);
    assert_true(n > 0);
    return (size_t)n;
}

static void test_ecdsa_p384(void **state)
{
    uint8_t der[200], sig[200], enc[FLARE_PUBKEY_PROTO_MAX];
    size_t dl = vec_hex(LOCAL, "p384_spki", der, sizeof(der));
    size_t sl = vec_hex(LOCAL, "p384_sig", sig, sizeof(sig));
    size_t n = wrap_key(FLARE_KEY_ECDSA, der, dl, enc);
    flare_pubkey k;
    assert_int_equal(flare_pubkey_decode(&k, enc, n), 0);
    const uint8_t *m = (const uint8_t *)"flare p384";
    assert_int_equal(flare_pubkey_verify(&k, m, 10, sig, sl), 0);
    assert_int_equal(flare_pubkey_verify(&k, m, 9, sig, sl), FLARE_ERR_BAD_SIGNATURE);
    /* The same DER under the RSA type is not an RSA key. */
    n = wrap_key(FLARE_KEY_RSA, der, dl, enc);
    assert_int_equal(flare_pubkey_decode(&k, enc, n), FLARE_ERR_MALFORMED);
}

static void test_pubkey_decode_bad(void **state)
{
    flare_pubkey k;
    uint8_t buf[FLARE_PUBKEY_PROTO_MAX + 64] = {0};
    /* Missing fields. */
    assert_int_equal(flare_pubkey_decode(&k, buf, 0), FLARE_ERR_MALFORMED);
    uint8_t only_type[] = {0x08, 0x01};
    assert_int_equal(flare_pubkey_decode(&k, only_type, 2), FLARE_ERR_MALFORMED);
    uint8_t only_data[] = {0x12, 0x01, 0xaa};
    assert_int_equal(flare_pubkey_decode(&k, only_data, 3), FLARE_ERR_MALFORMED);
    /* Truncated: in a tag, in a varint, in the data. */
    uint8_t t1[] = {0x08};
    assert_int_equal(flare_pubkey_decode(&k, t1, 1), FLARE_ERR_TRUNCATED);
    uint8_t t2[] = {0x08, 0x81};
    assert_int_equal(flare_pubkey_decode(&k, t2, 2), FLARE_ERR_TRUNCATED);
    uint8_t ed[64];
    size_t n = vec_hex(SPEC, "ed25519_public_key", ed, sizeof(ed));
    for (size_t i = 1; i < n; i++)
        assert_int_not_equal(flare_pubkey_decode(&k, ed, i), 0);
    assert_int_equal(flare_pubkey_decode(&k, ed, n - 1), FLARE_ERR_TRUNCATED);
    /* Unknown type. */
    uint8_t unk[64];
    memcpy(unk, ed, n);
    unk[1] = 4;
    assert_int_equal(flare_pubkey_decode(&k, unk, n), FLARE_ERR_UNKNOWN_CODE);
    /* Over-long varint (11 bytes). */
    uint8_t ovl[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    assert_int_equal(flare_pubkey_decode(&k, ovl, sizeof(ovl)), FLARE_ERR_OVERLONG);
    /* Wrong wire types; group wire type; field number 0. */
    uint8_t ww[] = {0x0a, 0x00, 0x12, 0x00};
    assert_int_equal(flare_pubkey_decode(&k, ww, 4), FLARE_ERR_MALFORMED);
    uint8_t grp[] = {0x0b};
    assert_int_equal(flare_pubkey_decode(&k, grp, 1), FLARE_ERR_MALFORMED);
    uint8_t f0[] = {0x00, 0x00};
    assert_int_equal(flare_pubkey_decode(&k, f0, 2), FLARE_ERR_MALFORMED);
    /* Wrong Ed25519 length. */
    uint8_t short_ed[] = {0x08, 0x01, 0x12, 0x01, 0x00};
    assert_int_equal(flare_pubkey_decode(&k, short_ed, sizeof(short_ed)), FLARE_ERR_MALFORMED);
    /* Unknown fields are skipped (protobuf rules, as go). */
    memcpy(buf, ed, n);
    buf[n] = 0x18;
    buf[n + 1] = 0x05;
    assert_int_equal(flare_pubkey_decode(&k, buf, n + 2), 0);
    /* Oversize Data. */
    uint8_t *big = buf;
    big[0] = 0x08;
    big[1] = 0x00;
    big[2] = 0x12;
    size_t dl = FLARE_PUBKEY_DATA_MAX + 1;
    big[3] = (uint8_t)(0x80 | (dl & 0x7f));
    big[4] = (uint8_t)(dl >> 7);
    memset(big + 5, 0x30, dl);
    assert_int_equal(flare_pubkey_decode(&k, big, 5 + dl), FLARE_ERR_TOO_LARGE);
}

static void test_pubkey_decode_bad_material(void **state)
{
    flare_pubkey k;
    uint8_t enc[FLARE_PUBKEY_PROTO_MAX], d[600];
    /* secp256k1: an x coordinate >= p is never a valid point. */
    memset(d, 0xff, 33);
    d[0] = 0x02;
    size_t n = wrap_key(FLARE_KEY_SECP256K1, d, 33, enc);
    assert_int_equal(flare_pubkey_decode(&k, enc, n), FLARE_ERR_MALFORMED);
    /* secp256k1: uncompressed and wrong lengths are refused. */
    uint8_t sp[64];
    size_t sl = vec_hex(SPEC, "secp256k1_public_key", sp, sizeof(sp));
    memcpy(d, sp + 4, sl - 4);
    n = wrap_key(FLARE_KEY_SECP256K1, d, 32, enc);
    assert_int_equal(flare_pubkey_decode(&k, enc, n), FLARE_ERR_MALFORMED);
    d[0] = 0x04;
    n = wrap_key(FLARE_KEY_SECP256K1, d, 33, enc);
    assert_int_equal(flare_pubkey_decode(&k, enc, n), FLARE_ERR_MALFORMED);
    /* RSA: garbage DER, truncated DER, small key. */
    memset(d, 0x30, 40);
    n = wrap_key(FLARE_KEY_RSA, d, 40, enc);
    assert_int_equal(flare_pubkey_decode(&k, enc, n), FLARE_ERR_MALFORMED);
    uint8_t rsa[FLARE_PUBKEY_PROTO_MAX];
    size_t rl = vec_hex(SPEC, "rsa_public_key", rsa, sizeof(rsa));
    n = wrap_key(FLARE_KEY_RSA, rsa + 5, rl - 5 - 10, enc);
    assert_int_equal(flare_pubkey_decode(&k, enc, n), FLARE_ERR_MALFORMED);
    size_t l = vec_hex(LOCAL, "rsa1024_spki", d, sizeof(d));
    n = wrap_key(FLARE_KEY_RSA, d, l, enc);
    assert_int_equal(flare_pubkey_decode(&k, enc, n), FLARE_ERR_OUT_OF_RANGE);
    /* ECDSA: an RSA key under the ECDSA type; a point off the curve. */
    n = wrap_key(FLARE_KEY_ECDSA, rsa + 5, rl - 5, enc);
    assert_int_equal(flare_pubkey_decode(&k, enc, n), FLARE_ERR_MALFORMED);
    uint8_t ec[128];
    size_t el = vec_hex(SPEC, "ecdsa_public_key", ec, sizeof(ec));
    ec[el - 1] ^= 1; /* y no longer matches x */
    n = wrap_key(FLARE_KEY_ECDSA, ec + 4, el - 4, enc);
    assert_int_equal(flare_pubkey_decode(&k, enc, n), FLARE_ERR_MALFORMED);
}

static void test_privkey_decode(void **state)
{
    uint8_t priv[128], legacy[128];
    size_t n = vec_hex(SPEC, "ed25519_private_key", priv, sizeof(priv));
    flare_privkey k;
    /* Legacy 96-byte form: seed || pub || pub. */
    legacy[0] = 0x08;
    legacy[1] = 0x01;
    legacy[2] = 0x12;
    legacy[3] = 96;
    memcpy(legacy + 4, priv + 4, 64);
    memcpy(legacy + 68, priv + 36, 32);
    assert_int_equal(flare_privkey_decode(&k, legacy, 100), 0);
    uint8_t out[128];
    assert_int_equal(flare_privkey_encode(&k, out, sizeof(out)), (int)n);
    assert_memory_equal(out, priv, n);
    legacy[99] ^= 1;
    assert_int_equal(flare_privkey_decode(&k, legacy, 100), FLARE_ERR_MALFORMED);
    /* Public half that the seed does not derive. */
    priv[n - 1] ^= 1;
    assert_int_equal(flare_privkey_decode(&k, priv, n), FLARE_ERR_MALFORMED);
    priv[n - 1] ^= 1;
    assert_int_equal(flare_privkey_decode(&k, priv, n - 1), FLARE_ERR_TRUNCATED);
    priv[3] = 63;
    assert_int_equal(flare_privkey_decode(&k, priv, n - 1), FLARE_ERR_MALFORMED);
    /* Other key types: known but unsupported, or unknown. */
    uint8_t sp[64];
    size_t sl = vec_hex(SPEC, "secp256k1_private_key", sp, sizeof(sp));
    assert_int_equal(flare_privkey_decode(&k, sp, sl), FLARE_ERR_UNSUPPORTED);
    sp[1] = 7;
    assert_int_equal(flare_privkey_decode(&k, sp, sl), FLARE_ERR_UNKNOWN_CODE);
}

static void test_key_files(void **state)
{
    char dir[] = "/tmp/flare-keys-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof(path), "%s/id.key", dir);
    flare_privkey k, l;
    assert_int_equal(flare_privkey_load(&l, path), FLARE_ERR_NOT_FOUND);
    flare_prng p;
    flare_prng_seed(&p, 99);
    assert_int_equal(flare_privkey_generate(&k, flare_prng_rng(&p)), 0);
    assert_int_equal(flare_privkey_save(&k, path), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(flare_privkey_load(&l, path), 0);
    assert_memory_equal(l.sk, k.sk, 64);
    assert_true(flare_pubkey_equal(&l.pub, &k.pub));
    /* Overwrite with another key. */
    assert_int_equal(flare_privkey_generate(&k, flare_prng_rng(&p)), 0);
    assert_int_equal(flare_privkey_save(&k, path), 0);
    assert_int_equal(flare_privkey_load(&l, path), 0);
    assert_memory_equal(l.sk, k.sk, 64);
    /* A corrupt file is an error, not a key. */
    FILE *f = fopen(path, "wb");
    fputs("garbage", f);
    fclose(f);
    assert_true(flare_privkey_load(&l, path) < 0);
    char tmp[160];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    assert_int_not_equal(access(tmp, F_OK), 0);
    unlink(path);
    rmdir(dir);
}

static void test_pb_allocator_crosscheck(void **state)
{
    /* protobuf-c decodes what flare encodes, through flare_mem hooks. */
    flare_test_heap heap = {0}; /* counts: protobuf-c must use the hooks */
    const flare_mem mem = flare_test_heap_mem(&heap);
    ProtobufCAllocator a = flare__pb_allocator(&mem);
    uint8_t enc[FLARE_PUBKEY_PROTO_MAX];
    size_t n = vec_hex(SPEC, "rsa_public_key", enc, sizeof(enc));
    heap.calls = 0;
    FlareKeys__PublicKey *pk = flare_keys__public_key__unpack(&a, n, enc);
    assert_non_null(pk);
    assert_true(heap.calls > 0);
    assert_true(heap.blocks > 0);
    assert_int_equal(pk->type, FLARE_KEYS__KEY_TYPE__RSA);
    assert_int_equal(pk->data.len, n - 5);
    uint8_t again[FLARE_PUBKEY_PROTO_MAX];
    assert_int_equal(flare_keys__public_key__pack(pk, again), n);
    assert_memory_equal(again, enc, n);
    flare_keys__public_key__free_unpacked(pk, &a);
    assert_int_equal(heap.blocks, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ed25519_spec_vector),
        cmocka_unit_test(test_ed25519_rfc8032),
        cmocka_unit_test(test_ed25519_canonical_decode),
        cmocka_unit_test(test_ed25519_sign_verify),
        cmocka_unit_test(test_spec_pubkeys_roundtrip),
        cmocka_unit_test(test_secp256k1_spec_private_derives_public),
        cmocka_unit_test(test_go_fixtures_verify),
        cmocka_unit_test(test_secp256k1_high_s_accepted),
        cmocka_unit_test(test_ecdsa_p384),
        cmocka_unit_test(test_pubkey_decode_bad),
        cmocka_unit_test(test_pubkey_decode_bad_material),
        cmocka_unit_test(test_privkey_decode),
        cmocka_unit_test(test_key_files),
        cmocka_unit_test(test_pb_allocator_crosscheck),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
