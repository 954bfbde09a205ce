/* Peer IDs: derivation, text forms, vectors from other implementations, bad input. */
#include "support/test.h"

#include "core/keys_vectors.h"
#include "flare/multibase.h"
#include "flare/multihash.h"
#include "flare/peerid.h"

#define FIX  "peer_id_fixtures.txt"
#define SPEC "peer_id_keys.txt"

static void test_go_rsa_sha256(void **state)
{
    uint8_t pub[FLARE_PUBKEY_PROTO_MAX];
    size_t pl = vec_hex(FIX, "go_rsa_pub", pub, sizeof(pub));
    char b58[64], s[FLARE_PEERID_STR_MAX];
    vec_str(FIX, "go_rsa_id_b58", b58, sizeof(b58));
    flare_pubkey k;
    assert_int_equal(flare_pubkey_decode(&k, pub, pl), 0);
    flare_peerid id, parsed;
    assert_int_equal(flare_peerid_from_pubkey(&id, &k), 0);
    assert_int_equal(id.len, 34);
    assert_int_equal(id.bytes[0], FLARE_MH_SHA2_256);
    assert_int_equal(flare_peerid_to_string(&id, s, sizeof(s)), (int)strlen(b58));
    assert_string_equal(s, b58);
    assert_int_equal(flare_peerid_parse(&parsed, b58, strlen(b58)), 0);
    assert_true(flare_peerid_equal(&parsed, &id));
    assert_true(flare_peerid_matches_pubkey(&parsed, &k));
    /* sha2-256 IDs carry no key. */
    flare_pubkey x;
    assert_int_equal(flare_peerid_extract_pubkey(&id, &x), FLARE_ERR_NOT_FOUND);
}

static void test_js_ed25519_ids(void **state)
{
    static const char *pairs[][2] = {{"js_ed_priv1", "js_ed_id1"}, {"js_ed_priv2", "js_ed_id2"}};
    for (size_t i = 0; i < 2; i++) {
        uint8_t priv[128];
        size_t n = vec_hex(FIX, pairs[i][0], priv, sizeof(priv));
        char want[64], s[FLARE_PEERID_STR_MAX];
        vec_str(FIX, pairs[i][1], want, sizeof(want));
        flare_privkey k;
        assert_int_equal(flare_privkey_decode(&k, priv, n), 0);
        flare_peerid id, parsed;
        assert_int_equal(flare_peerid_from_pubkey(&id, &k.pub), 0);
        assert_int_equal(id.len, 2 + 36); /* identity multihash of 36 bytes */
        assert_int_equal(flare_peerid_to_string(&id, s, sizeof(s)), (int)strlen(want));
        assert_string_equal(s, want);
        assert_int_equal(flare_peerid_parse(&parsed, want, strlen(want)), 0);
        assert_true(flare_peerid_equal(&parsed, &id));
        flare_pubkey x;
        assert_int_equal(flare_peerid_extract_pubkey(&parsed, &x), 0);
        assert_true(flare_pubkey_equal(&x, &k.pub));
    }
}

static void test_spec_text_forms(void **state)
{
    char cid[128], b58[64], ed[64], s[FLARE_PEERID_STR_MAX];
    vec_str(FIX, "spec_cid", cid, sizeof(cid));
    vec_str(FIX, "spec_b58", b58, sizeof(b58));
    vec_str(FIX, "spec_ed_b58", ed, sizeof(ed));
    flare_peerid a, b, c;
    assert_int_equal(flare_peerid_parse(&a, cid, strlen(cid)), 0);
    assert_int_equal(flare_peerid_parse(&b, b58, strlen(b58)), 0);
    assert_true(flare_peerid_equal(&a, &b));
    assert_int_equal(a.bytes[0], FLARE_MH_SHA2_256);
    assert_int_equal(flare_peerid_to_cid(&b, s, sizeof(s)), (int)strlen(cid));
    assert_string_equal(s, cid);
    assert_int_equal(flare_peerid_to_string(&a, s, sizeof(s)), (int)strlen(b58));
    assert_string_equal(s, b58);
    /* Ed25519 identity ID: CID round trip, and the key inside matches it. */
    assert_int_equal(flare_peerid_parse(&c, ed, strlen(ed)), 0);
    flare_pubkey k;
    assert_int_equal(flare_peerid_extract_pubkey(&c, &k), 0);
    assert_int_equal(k.type, FLARE_KEY_ED25519);
    assert_true(flare_peerid_matches_pubkey(&c, &k));
    assert_false(flare_peerid_matches_pubkey(&a, &k));
    int n = flare_peerid_to_cid(&c, s, sizeof(s));
    assert_true(n > 0);
    assert_memory_equal(s, "bafz", 4);
    flare_peerid d;
    assert_int_equal(flare_peerid_parse(&d, s, (size_t)n), 0);
    assert_true(flare_peerid_equal(&c, &d));
    assert_int_equal(flare_peerid_to_cid(&c, s, 10), FLARE_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(flare_peerid_to_string(&c, s, 10), FLARE_ERR_BUFFER_TOO_SMALL);
}

static void test_secp256k1_identity(void **state)
{
    uint8_t raw[64];
    size_t n = vec_hex(FIX, "secp_id_hex", raw, sizeof(raw));
    flare_peerid id, again;
    assert_int_equal(flare_peerid_from_bytes(&id, raw, n), 0);
    flare_pubkey k;
    assert_int_equal(flare_peerid_extract_pubkey(&id, &k), 0);
    assert_int_equal(k.type, FLARE_KEY_SECP256K1);
    assert_int_equal(flare_peerid_from_pubkey(&again, &k), 0);
    assert_true(flare_peerid_equal(&id, &again));
}

static void test_spec_keys_id_kind(void **state)
{
    /* <= 42-byte encodings are inlined; the rest are hashed. */
    static const struct {
        const char *name;
        uint8_t code;
    } v[] = {{"ed25519_public_key", FLARE_MH_IDENTITY},
             {"secp256k1_public_key", FLARE_MH_IDENTITY},
             {"ecdsa_public_key", FLARE_MH_SHA2_256},
             {"rsa_public_key", FLARE_MH_SHA2_256}};
    for (size_t i = 0; i < 4; i++) {
        uint8_t enc[FLARE_PUBKEY_PROTO_MAX];
        size_t n = vec_hex(SPEC, v[i].name, enc, sizeof(enc));
        flare_pubkey k;
        flare_peerid id, back;
        assert_int_equal(flare_pubkey_decode(&k, enc, n), 0);
        assert_int_equal(flare_peerid_from_pubkey(&id, &k), 0);
        assert_int_equal(id.bytes[0], v[i].code);
        assert_int_equal(flare_peerid_from_bytes(&back, id.bytes, id.len), 0);
        assert_true(flare_peerid_equal(&back, &id));
    }
}

static void test_from_bytes_bad(void **state)
{
    flare_peerid id;
    uint8_t b[80] = {0};
    assert_int_equal(flare_peerid_from_bytes(&id, b, 0), FLARE_ERR_TRUNCATED);
    assert_int_equal(flare_peerid_from_bytes(&id, b, 65), FLARE_ERR_TOO_LARGE);
    /* sha2-256 with a short digest; truncated length. */
    b[0] = 0x12;
    b[1] = 0x20;
    assert_int_equal(flare_peerid_from_bytes(&id, b, 20), FLARE_ERR_TRUNCATED);
    b[1] = 0x10;
    assert_int_equal(flare_peerid_from_bytes(&id, b, 18), FLARE_ERR_MALFORMED);
    /* Unknown multihash (sha2-512 = 0x13). */
    b[0] = 0x13;
    b[1] = 0x20;
    assert_int_equal(flare_peerid_from_bytes(&id, b, 34), FLARE_ERR_UNKNOWN_CODE);
    /* Identity longer than 42 bytes. */
    b[0] = 0x00;
    b[1] = 43;
    assert_int_equal(flare_peerid_from_bytes(&id, b, 45), FLARE_ERR_TOO_LARGE);
    /* Identity holding something that is not a key. */
    b[1] = 3;
    b[2] = 0x08;
    b[3] = 0x09;
    b[4] = 0x12; /* Data tag without its length */
    assert_int_equal(flare_peerid_from_bytes(&id, b, 5), FLARE_ERR_TRUNCATED);
    uint8_t unk[] = {0x00, 0x04, 0x08, 0x09, 0x12, 0x00};
    assert_int_equal(flare_peerid_from_bytes(&id, unk, sizeof(unk)), FLARE_ERR_UNKNOWN_CODE);
    /* Trailing bytes after the multihash. */
    uint8_t ed[64];
    size_t n = vec_hex(SPEC, "ed25519_public_key", ed + 2, sizeof(ed) - 3);
    ed[0] = 0x00;
    ed[1] = (uint8_t)n;
    assert_int_equal(flare_peerid_from_bytes(&id, ed, n + 2), 0);
    ed[n + 2] = 0;
    assert_true(flare_peerid_from_bytes(&id, ed, n + 3) < 0);
}

static void test_parse_bad(void **state)
{
    flare_peerid id;
    char ed[64];
    vec_str(FIX, "spec_ed_b58", ed, sizeof(ed));
    assert_int_equal(flare_peerid_parse(&id, "", 0), FLARE_ERR_TRUNCATED);
    char big[200];
    memset(big, '1', sizeof(big));
    assert_int_equal(flare_peerid_parse(&id, big, sizeof(big)), FLARE_ERR_TOO_LARGE);
    /* base58 with a character outside the alphabet ('0'). */
    char bad[64];
    strcpy(bad, ed);
    bad[10] = '0';
    assert_int_equal(flare_peerid_parse(&id, bad, strlen(bad)), FLARE_ERR_MALFORMED);
    /* A corrupted character changes the key bytes: not a valid ID any more
     * or a different one, never the same. */
    strcpy(bad, ed);
    bad[strlen(bad) - 1] = bad[strlen(bad) - 1] == 'A' ? 'B' : 'A';
    flare_peerid orig;
    assert_int_equal(flare_peerid_parse(&orig, ed, strlen(ed)), 0);
    if (flare_peerid_parse(&id, bad, strlen(bad)) == 0)
        assert_false(flare_peerid_equal(&id, &orig));
    /* Truncated base58. */
    assert_true(flare_peerid_parse(&id, ed, strlen(ed) - 5) < 0);
    /* Unknown multibase prefix. */
    assert_int_equal(flare_peerid_parse(&id, "xabc", 4), FLARE_ERR_UNKNOWN_CODE);
    /* A CID with another codec (dag-pb 0x70), and with version 0 / 2. */
    char s[FLARE_PEERID_STR_MAX];
    uint8_t cid[2 + FLARE_PEERID_MAX];
    cid[0] = 0x01;
    cid[1] = 0x70;
    memcpy(cid + 2, orig.bytes, orig.len);
    int n = flare_multibase_encode(FLARE_MULTIBASE_BASE32, cid, 2u + orig.len, s, sizeof(s));
    assert_true(n > 0);
    assert_int_equal(flare_peerid_parse(&id, s, (size_t)n), FLARE_ERR_UNKNOWN_CODE);
    cid[0] = 0x02;
    cid[1] = 0x72;
    n = flare_multibase_encode(FLARE_MULTIBASE_BASE32, cid, 2u + orig.len, s, sizeof(s));
    assert_int_equal(flare_peerid_parse(&id, s, (size_t)n), FLARE_ERR_UNKNOWN_CODE);
    /* The same CID in base36 and base58btc multibase parses. */
    cid[0] = 0x01;
    n = flare_multibase_encode(FLARE_MULTIBASE_BASE36, cid, 2u + orig.len, s, sizeof(s));
    assert_int_equal(flare_peerid_parse(&id, s, (size_t)n), 0);
    assert_true(flare_peerid_equal(&id, &orig));
    n = flare_multibase_encode(FLARE_MULTIBASE_BASE58BTC, cid, 2u + orig.len, s, sizeof(s));
    assert_int_equal(flare_peerid_parse(&id, s, (size_t)n), 0);
    assert_true(flare_peerid_equal(&id, &orig));
    /* A CID that ends inside its header. */
    n = flare_multibase_encode(FLARE_MULTIBASE_BASE32, cid, 1, s, sizeof(s));
    assert_int_equal(flare_peerid_parse(&id, s, (size_t)n), FLARE_ERR_TRUNCATED);
}

/* Equality at every length: a difference at any byte (head, middle, the
 * last word compared first, the bytes just before it) makes IDs unequal,
 * and so does a different length over the same bytes. */
static void test_equal(void **state)
{
    (void)state;
    for (size_t n = 0; n <= FLARE_PEERID_MAX; n++) {
        flare_peerid a, b;
        memset(&a, 0, sizeof(a));
        a.len = (uint8_t)n;
        for (size_t i = 0; i < n; i++)
            a.bytes[i] = (uint8_t)(i * 13 + 1);
        b = a;
        assert_true(flare_peerid_equal(&a, &b));
        for (size_t i = 0; i < n; i++) {
            b.bytes[i] ^= 0x40;
            assert_false(flare_peerid_equal(&a, &b));
            assert_false(flare_peerid_equal(&b, &a));
            b.bytes[i] ^= 0x40;
        }
        /* Bytes past the length do not count. */
        b.bytes[FLARE_PEERID_MAX - 1] ^= n < FLARE_PEERID_MAX ? 0x01 : 0;
        assert_true(flare_peerid_equal(&a, &b));
        if (n) {
            b = a;
            b.len = (uint8_t)(n - 1);
            assert_false(flare_peerid_equal(&a, &b));
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_go_rsa_sha256),     cmocka_unit_test(test_js_ed25519_ids),
        cmocka_unit_test(test_spec_text_forms),   cmocka_unit_test(test_secp256k1_identity),
        cmocka_unit_test(test_spec_keys_id_kind), cmocka_unit_test(test_from_bytes_bad),
        cmocka_unit_test(test_parse_bad),         cmocka_unit_test(test_equal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
