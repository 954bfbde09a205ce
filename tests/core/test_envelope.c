/* Signed envelopes and peer records: round trips, cross-check with
 * protobuf-c, wrong domain/type/signer, bad and oversize input. */
#include "support/test.h"

#include <stdlib.h>

#include "core/pb.h"
#include "envelope.pb-c.h"
#include "flare/envelope.h"
#include "flare/peer_record.h"
#include "flare/varint.h"
#include "peer_record.pb-c.h"

static const uint8_t rsvp_type[] = {0x03, 0x02};

static void key(flare_privkey *k, uint64_t seed)
{
    flare_prng p;
    flare_prng_seed(&p, seed);
    assert_int_equal(flare_privkey_generate(k, flare_prng_rng(&p)), 0);
}

static void test_envelope_roundtrip(void **state)
{
    flare_privkey k;
    key(&k, 1);
    flare_buf b;
    flare_buf_init(&b, NULL);
    const uint8_t payload[] = "voucher";
    assert_int_equal(flare_envelope_seal(&k, "libp2p-relay-rsvp", rsvp_type, 2, payload, 7, &b), 0);
    flare_envelope e;
    assert_int_equal(flare_envelope_open(b.base, b.len, "libp2p-relay-rsvp", rsvp_type, 2, &e), 0);
    assert_int_equal(e.payload_len, 7);
    assert_memory_equal(e.payload, payload, 7);
    assert_true(e.payload >= b.base && e.payload < b.base + b.len); /* a view */
    assert_true(flare_pubkey_equal(&e.pubkey, &k.pub));
    assert_true(flare_peerid_matches_pubkey(&e.signer, &k.pub));
    /* Any type accepted when none is expected. */
    assert_int_equal(flare_envelope_open(b.base, b.len, "libp2p-relay-rsvp", NULL, 0, &e), 0);
    /* Wrong domain: the signature cannot verify. */
    assert_int_equal(flare_envelope_open(b.base, b.len, "libp2p-peer-record", rsvp_type, 2, &e),
                     FLARE_ERR_BAD_SIGNATURE);
    /* Wrong payload type. */
    assert_int_equal(
        flare_envelope_open(b.base, b.len, "libp2p-relay-rsvp", FLARE_PEER_RECORD_TYPE, 2, &e),
        FLARE_ERR_UNKNOWN_CODE);
    /* Any flipped byte of the payload or signature breaks it. */
    for (size_t i = b.len - 70; i < b.len; i++) {
        b.base[i] ^= 0x01;
        assert_int_not_equal(flare_envelope_open(b.base, b.len, "libp2p-relay-rsvp", NULL, 0, &e),
                             0);
        b.base[i] ^= 0x01;
    }
    /* Truncations never open. */
    for (size_t i = 0; i < b.len; i++)
        assert_int_not_equal(flare_envelope_open(b.base, i, "libp2p-relay-rsvp", NULL, 0, &e), 0);
    flare_buf_free(&b);
}

static void test_envelope_signature_layout(void **state)
{
    /* Recompute the signed bytes as the RFC states and verify the envelope's
     * signature over them directly; also decode with protobuf-c. */
    flare_privkey k;
    key(&k, 2);
    flare_buf b;
    flare_buf_init(&b, NULL);
    const char *domain = "test-domain";
    const uint8_t type[] = {0xaa, 0xbb, 0xcc};
    const uint8_t payload[] = {1, 2, 3, 4, 5};
    assert_int_equal(flare_envelope_seal(&k, domain, type, 3, payload, 5, &b), 0);
    ProtobufCAllocator a = flare__pb_allocator(NULL);
    FlareEnvelope__Envelope *pe = flare_envelope__envelope__unpack(&a, b.len, b.base);
    assert_non_null(pe);
    assert_true(pe->has_public_key && pe->has_payload_type && pe->has_payload && pe->has_signature);
    uint8_t pk[FLARE_PUBKEY_PROTO_MAX];
    int pklen = flare_pubkey_encode(&k.pub, pk, sizeof(pk));
    assert_int_equal(pe->public_key.len, pklen);
    assert_memory_equal(pe->public_key.data, pk, (size_t)pklen);
    uint8_t msg[64] = {11,  't', 'e',  's',  't',  '-', 'd', 'o', 'm', 'a', 'i',
                       'n', 3,   0xaa, 0xbb, 0xcc, 5,   1,   2,   3,   4,   5};
    assert_int_equal(flare_pubkey_verify(&k.pub, msg, 22, pe->signature.data, pe->signature.len),
                     0);
    /* protobuf-c re-encodes to the same bytes (field order, no extras). */
    uint8_t again[512];
    assert_int_equal(flare_envelope__envelope__pack(pe, again), b.len);
    assert_memory_equal(again, b.base, b.len);
    flare_envelope__envelope__free_unpacked(pe, &a);
    flare_buf_free(&b);
}

static void test_envelope_bad(void **state)
{
    flare_envelope e;
    flare_privkey k;
    key(&k, 3);
    flare_buf b;
    flare_buf_init(&b, NULL);
    /* Bad arguments. */
    assert_int_equal(flare_envelope_seal(&k, "", rsvp_type, 2, NULL, 0, &b), FLARE_ERR_INVALID_ARG);
    assert_int_equal(flare_envelope_seal(&k, "d", rsvp_type, 0, NULL, 0, &b),
                     FLARE_ERR_INVALID_ARG);
    assert_int_equal(flare_envelope_open(NULL, 0, NULL, NULL, 0, &e), FLARE_ERR_INVALID_ARG);
    /* Oversize payloads are refused on both sides. */
    uint8_t *big = calloc(1, FLARE_ENVELOPE_MAX + 16);
    assert_int_equal(flare_envelope_seal(&k, "d", rsvp_type, 2, big, FLARE_ENVELOPE_MAX, &b),
                     FLARE_ERR_TOO_LARGE);
    assert_int_equal(b.len, 0);
    assert_int_equal(flare_envelope_open(big, FLARE_ENVELOPE_MAX + 1, "d", NULL, 0, &e),
                     FLARE_ERR_TOO_LARGE);
    free(big);
    /* Missing fields. */
    assert_int_equal(flare_envelope_open((const uint8_t *)"", 0, "d", NULL, 0, &e),
                     FLARE_ERR_MALFORMED);
    assert_int_equal(flare_envelope_seal(&k, "d", rsvp_type, 2, NULL, 0, &b), 0);
    assert_int_equal(flare_envelope_open(b.base, b.len, "d", NULL, 0, &e), 0);
    assert_int_equal(e.payload_len, 0); /* empty payload is omitted on the wire */
    /* Drop the signature field (the last 66 bytes). */
    assert_int_equal(flare_envelope_open(b.base, b.len - 66, "d", NULL, 0, &e),
                     FLARE_ERR_MALFORMED);
    /* A varint where bytes belong. */
    uint8_t ww[] = {0x08, 0x01};
    assert_int_equal(flare_envelope_open(ww, 2, "d", NULL, 0, &e), FLARE_ERR_MALFORMED);
    /* A public key that does not decode. */
    flare_buf c;
    flare_buf_init(&c, NULL);
    uint8_t badpk[] = {0x08, 0x07, 0x12, 0x00};
    flare__pb_put_bytes_field(&c, 1, badpk, 4);
    flare__pb_put_bytes_field(&c, 2, rsvp_type, 2);
    flare__pb_put_bytes_field(&c, 5, rsvp_type, 2);
    assert_int_equal(flare_envelope_open(c.base, c.len, "d", NULL, 0, &e), FLARE_ERR_UNKNOWN_CODE);
    flare_buf_free(&c);
    flare_buf_free(&b);
}

static void test_peer_record_roundtrip(void **state)
{
    flare_privkey k;
    key(&k, 4);
    /* /ip4/1.2.3.4/tcp/4001 and /ip6/::1/udp/9/quic-v1 as opaque bytes */
    const uint8_t a1[] = {0x04, 1, 2, 3, 4, 0x06, 0x0f, 0xa1};
    const uint8_t a2[] = {0x29, 0, 0, 0, 0, 0,    0,    0, 0, 0,    0,   0,
                          0,    0, 0, 0, 1, 0x91, 0x02, 0, 9, 0xcc, 0x03};
    flare_bytes_view addrs[] = {{a1, sizeof(a1)}, {a2, sizeof(a2)}};
    flare_buf b;
    flare_buf_init(&b, NULL);
    uint64_t seq = 1700000000123456789ULL;
    assert_int_equal(flare_peer_record_seal(&k, seq, addrs, 2, &b), 0);
    flare_peer_record rec;
    flare_envelope e;
    assert_int_equal(flare_peer_record_open(b.base, b.len, &rec, &e), 0);
    assert_true(rec.seq == seq);
    assert_int_equal(rec.naddrs, 2);
    assert_int_equal(rec.addrs[0].len, sizeof(a1));
    assert_memory_equal(rec.addrs[0].data, a1, sizeof(a1));
    assert_memory_equal(rec.addrs[1].data, a2, sizeof(a2));
    assert_true(flare_peerid_matches_pubkey(&rec.peer_id, &k.pub));
    assert_int_equal(flare_peer_record_open(b.base, b.len, &rec, NULL), 0);
    /* The payload decodes with protobuf-c as well. */
    ProtobufCAllocator a = flare__pb_allocator(NULL);
    FlarePeerRecord__PeerRecord *pr =
        flare_peer_record__peer_record__unpack(&a, e.payload_len, e.payload);
    assert_non_null(pr);
    assert_true(pr->seq == seq);
    assert_int_equal(pr->n_addresses, 2);
    assert_int_equal(pr->addresses[1]->multiaddr.len, sizeof(a2));
    assert_int_equal(pr->peer_id.len, rec.peer_id.len);
    flare_peer_record__peer_record__free_unpacked(pr, &a);
    /* An envelope with the right type but another domain is refused. */
    flare_buf c;
    flare_buf_init(&c, NULL);
    assert_int_equal(
        flare_envelope_seal(&k, "other", FLARE_PEER_RECORD_TYPE, 2, e.payload, e.payload_len, &c),
        0);
    assert_int_equal(flare_peer_record_open(c.base, c.len, &rec, NULL), FLARE_ERR_BAD_SIGNATURE);
    flare_buf_free(&c);
    flare_buf_free(&b);
}

static void test_peer_record_wrong_signer(void **state)
{
    flare_privkey k, m;
    key(&k, 5);
    key(&m, 6);
    flare_peerid kid;
    assert_int_equal(flare_peerid_from_pubkey(&kid, &k.pub), 0);
    const uint8_t a1[] = {0x04, 1, 2, 3, 4};
    flare_bytes_view addrs[] = {{a1, sizeof(a1)}};
    flare_buf rec, env;
    flare_buf_init(&rec, NULL);
    flare_buf_init(&env, NULL);
    assert_int_equal(flare_peer_record_encode(&kid, 0, addrs, 1, &rec), 0);
    /* m signs a record claiming to be k. */
    assert_int_equal(flare_envelope_seal(&m, FLARE_PEER_RECORD_DOMAIN, FLARE_PEER_RECORD_TYPE,
                                         FLARE_PEER_RECORD_TYPE_LEN, rec.base, rec.len, &env),
                     0);
    flare_peer_record r;
    assert_int_equal(flare_peer_record_open(env.base, env.len, &r, NULL),
                     FLARE_ERR_PEER_ID_MISMATCH);
    flare_buf_free(&rec);
    flare_buf_free(&env);
}

static void test_peer_record_decode_bad(void **state)
{
    flare_peer_record r;
    flare_privkey k;
    key(&k, 7);
    flare_peerid id;
    assert_int_equal(flare_peerid_from_pubkey(&id, &k.pub), 0);
    flare_buf b;
    flare_buf_init(&b, NULL);
    /* Missing peer ID. */
    assert_int_equal(flare_peer_record_decode((const uint8_t *)"", 0, &r), FLARE_ERR_MALFORMED);
    /* Bad peer ID bytes. */
    uint8_t badid[] = {0x0a, 0x02, 0x13, 0x00};
    assert_int_equal(flare_peer_record_decode(badid, 4, &r), FLARE_ERR_UNKNOWN_CODE);
    /* seq with the wrong wire type. */
    flare__pb_put_bytes_field(&b, 1, id.bytes, id.len);
    size_t base = b.len;
    flare__pb_put_bytes_field(&b, 2, id.bytes, 1);
    assert_int_equal(flare_peer_record_decode(b.base, b.len, &r), FLARE_ERR_MALFORMED);
    /* Empty address. */
    b.len = base;
    uint8_t empty_ai[] = {0x1a, 0x00};
    flare_buf_append(&b, empty_ai, 2);
    assert_int_equal(flare_peer_record_decode(b.base, b.len, &r), FLARE_ERR_MALFORMED);
    /* Too many addresses. */
    b.len = base;
    uint8_t ai[] = {0x1a, 0x03, 0x0a, 0x01, 0x04};
    for (int i = 0; i < FLARE_PEER_RECORD_MAX_ADDRS; i++)
        flare_buf_append(&b, ai, sizeof(ai));
    assert_int_equal(flare_peer_record_decode(b.base, b.len, &r), 0);
    assert_int_equal(r.naddrs, FLARE_PEER_RECORD_MAX_ADDRS);
    flare_buf_append(&b, ai, sizeof(ai));
    assert_int_equal(flare_peer_record_decode(b.base, b.len, &r), FLARE_ERR_TOO_LARGE);
    /* An address over the size bound. */
    b.len = base;
    uint8_t longaddr[FLARE_PEER_RECORD_ADDR_MAX + 1];
    memset(longaddr, 0x04, sizeof(longaddr));
    flare_buf inner;
    flare_buf_init(&inner, NULL);
    flare__pb_put_bytes_field(&inner, 1, longaddr, sizeof(longaddr));
    flare__pb_put_bytes_field(&b, 3, inner.base, inner.len);
    assert_int_equal(flare_peer_record_decode(b.base, b.len, &r), FLARE_ERR_TOO_LARGE);
    /* Truncated inside an AddressInfo. */
    assert_int_equal(flare_peer_record_decode(b.base, b.len - 1, &r), FLARE_ERR_TRUNCATED);
    flare_buf_free(&inner);
    /* Encoder bounds. */
    flare_bytes_view many[FLARE_PEER_RECORD_MAX_ADDRS + 1];
    for (size_t i = 0; i <= FLARE_PEER_RECORD_MAX_ADDRS; i++)
        many[i] = (flare_bytes_view){ai, 1};
    b.len = 0;
    assert_int_equal(flare_peer_record_encode(&id, 1, many, FLARE_PEER_RECORD_MAX_ADDRS + 1, &b),
                     FLARE_ERR_TOO_LARGE);
    many[0].len = 0;
    assert_int_equal(flare_peer_record_encode(&id, 1, many, 1, &b), FLARE_ERR_INVALID_ARG);
    assert_int_equal(b.len, 0);
    flare_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_envelope_roundtrip),
        cmocka_unit_test(test_envelope_signature_layout),
        cmocka_unit_test(test_envelope_bad),
        cmocka_unit_test(test_peer_record_roundtrip),
        cmocka_unit_test(test_peer_record_wrong_signer),
        cmocka_unit_test(test_peer_record_decode_bad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
