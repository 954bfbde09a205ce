/* Circuit Relay v2: codecs (byte-exact, protobuf-c cross-checks, bad
 * input), vouchers, the hop client, refresh timing, relayed addresses and
 * the stop side. */
#include "support/test.h"

#include <stdlib.h>

#include "core/pb.h"
#include "flare/envelope.h"
#include "flare/lpframe.h"
#include "flare/relay.h"
#include "relay.pb-c.h"

static void key(flare_privkey *k, uint64_t seed)
{
    flare_prng p;
    flare_prng_seed(&p, seed);
    assert_int_equal(flare_privkey_generate(k, flare_prng_rng(&p)), 0);
}

static void idof(flare_peerid *id, const flare_privkey *k)
{
    assert_int_equal(flare_peerid_from_pubkey(id, &k->pub), 0);
}

/* A sha2-256 peer ID with a given fill byte. */
static void fake_id(flare_peerid *id, uint8_t fill)
{
    uint8_t mh[34] = {0x12, 0x20};
    memset(mh + 2, fill, 32);
    assert_int_equal(flare_peerid_from_bytes(id, mh, sizeof(mh)), 0);
}

/* The body of the single frame in b. */
static const uint8_t *body(const flare_buf *b, size_t *len)
{
    const uint8_t *msg;
    int n = flare_lpframe_parse(b->base, b->len, FLARE_RELAY_MSG_MAX, &msg, len);
    assert_int_equal(n, (int)b->len);
    return msg;
}

/* --- codecs --- */

static void test_encode_exact(void **state)
{
    flare_buf b;
    flare_buf_init(&b, NULL);
    assert_int_equal(flare_relay_client_reserve(&b), 0);
    flare_test_assert_hex(&b, "020800"); /* type RESERVE sent explicitly */
    flare_buf_reset(&b);

    flare_relay_msg m;
    flare_relay_msg_init(&m, FLARE_RELAY_HOP_STATUS);
    m.has_status = 1;
    m.status = FLARE_RELAY_STATUS_OK;
    m.has_limit = 1;
    m.limit.duration = 120;
    m.limit.data = 131072;
    assert_int_equal(flare_relay_hop_encode(&m, &b), 0);
    /* type=2, Limit{1:120, 2:131072}, status=100 */
    flare_test_assert_hex(&b, "0c0802220608781080800828"
                              "64");
    flare_buf_reset(&b);

    /* A zero Limit is omitted. */
    m.limit.duration = 0;
    m.limit.data = 0;
    assert_int_equal(flare_relay_hop_encode(&m, &b), 0);
    flare_test_assert_hex(&b, "0408022864");
    flare_buf_reset(&b);

    assert_int_equal(flare_relay_stop_reply(FLARE_RELAY_STATUS_OK, &b), 0);
    flare_test_assert_hex(&b, "0408012064"); /* StopMessage: type=1 (STATUS), status field 4 */
    flare_buf_reset(&b);

    flare_peerid t;
    fake_id(&t, 0xab);
    assert_int_equal(flare_relay_client_connect(&t, &b), 0);
    /* 08 01 | 12 24 { 0a 22 <34-byte multihash> } */
    assert_int_equal(b.len, 1 + 2 + 2 + 2 + 34);
    flare_test_assert_hex(
        &b, "28080112240a221220abababababababababababababababababababababababababababab"
            "abababab");
    flare_buf_free(&b);
}

static void test_roundtrip_protobuf_c(void **state)
{
    flare_privkey k;
    key(&k, 7);
    flare_peerid relay, peer;
    idof(&relay, &k);
    fake_id(&peer, 1);
    flare_multiaddr a1, a2;
    assert_int_equal(flare_multiaddr_parse(&a1, "/ip4/1.2.3.4/tcp/4001"), 0);
    assert_int_equal(flare_multiaddr_parse(&a2, "/ip6/::1/udp/4001/quic-v1"), 0);
    flare_buf v, b;
    flare_buf_init(&v, NULL);
    flare_buf_init(&b, NULL);
    assert_int_equal(flare_relay_voucher_seal(&k, &peer, 1700003600, &v), 0);

    flare_relay_msg m;
    flare_relay_msg_init(&m, FLARE_RELAY_HOP_STATUS);
    m.has_status = m.has_reservation = m.has_expire = m.has_limit = m.has_peer = 1;
    m.status = FLARE_RELAY_STATUS_OK;
    m.peer = peer;
    m.npeer_addrs = 1;
    m.peer_addrs[0] = (flare_relay_bytes){a1.bytes, a1.len};
    m.expire = 1700003600;
    m.nrsvp_addrs = 2;
    m.rsvp_addrs[0] = (flare_relay_bytes){a1.bytes, a1.len};
    m.rsvp_addrs[1] = (flare_relay_bytes){a2.bytes, a2.len};
    m.voucher = (flare_relay_bytes){v.base, v.len};
    m.limit = (flare_relay_limit){UINT32_MAX, UINT64_MAX};
    assert_int_equal(flare_relay_hop_encode(&m, &b), 0);

    size_t len;
    const uint8_t *p = body(&b, &len);
    FlareRelay__HopMessage *pm = flare_relay__hop_message__unpack(NULL, len, p);
    assert_non_null(pm);
    assert_int_equal(pm->type, FLARE_RELAY__HOP_MESSAGE__TYPE__STATUS);
    assert_int_equal(pm->status, FLARE_RELAY__STATUS__OK);
    assert_int_equal(pm->peer->id.len, peer.len);
    assert_memory_equal(pm->peer->id.data, peer.bytes, peer.len);
    assert_int_equal(pm->reservation->expire, 1700003600);
    assert_int_equal(pm->reservation->n_addrs, 2);
    assert_memory_equal(pm->reservation->addrs[1].data, a2.bytes, a2.len);
    assert_int_equal(pm->reservation->voucher.len, v.len);
    assert_int_equal(pm->limit->duration, UINT32_MAX);
    assert_true(pm->limit->data == UINT64_MAX);
    /* protobuf-c's encoding of the same message equals ours. */
    uint8_t again[FLARE_RELAY_MSG_MAX];
    size_t n = flare_relay__hop_message__pack(pm, again);
    assert_int_equal(n, len);
    assert_memory_equal(again, p, len);
    flare_relay__hop_message__free_unpacked(pm, NULL);

    flare_relay_msg d;
    assert_int_equal(flare_relay_hop_decode(p, len, &d), 0);
    assert_int_equal(d.type, FLARE_RELAY_HOP_STATUS);
    assert_true(flare_peerid_equal(&d.peer, &peer));
    assert_int_equal(d.npeer_addrs, 1);
    assert_int_equal(d.nrsvp_addrs, 2);
    assert_int_equal(d.rsvp_addrs[1].len, a2.len);
    assert_memory_equal(d.rsvp_addrs[1].p, a2.bytes, a2.len);
    assert_true(d.voucher.p >= p && d.voucher.p + d.voucher.len <= p + len);
    assert_int_equal(d.limit.duration, UINT32_MAX);
    assert_true(d.limit.data == UINT64_MAX);
    assert_int_equal(d.expire, 1700003600);

    /* Stop CONNECT through protobuf-c too. */
    flare_buf_reset(&b);
    flare_relay_msg_init(&m, FLARE_RELAY_STOP_CONNECT);
    m.has_peer = m.has_limit = 1;
    m.peer = peer;
    m.limit = (flare_relay_limit){120, 1 << 17};
    assert_int_equal(flare_relay_stop_encode(&m, &b), 0);
    p = body(&b, &len);
    FlareRelay__StopMessage *sm = flare_relay__stop_message__unpack(NULL, len, p);
    assert_non_null(sm);
    assert_int_equal(sm->type, FLARE_RELAY__STOP_MESSAGE__TYPE__CONNECT);
    assert_true(sm->has_type);
    assert_int_equal(sm->limit->duration, 120);
    assert_int_equal(sm->limit->data, 1 << 17);
    flare_relay__stop_message__free_unpacked(sm, NULL);
    flare_buf_free(&b);
    flare_buf_free(&v);
}

/* Hex with optional spaces. */
static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
    char tmp[512];
    size_t j = 0;
    for (size_t i = 0; hex[i] && j + 1 < sizeof(tmp); i++)
        if (hex[i] != ' ')
            tmp[j++] = hex[i];
    tmp[j] = 0;
    return flare_test_unhex(tmp, out, cap);
}

static int hop_hex(const char *hex, flare_relay_msg *m)
{
    uint8_t in[256];
    size_t n = unhex(hex, in, sizeof(in));
    return flare_relay_hop_decode(in, n, m);
}

static int stop_hex(const char *hex, flare_relay_msg *m)
{
    uint8_t in[256];
    size_t n = unhex(hex, in, sizeof(in));
    return flare_relay_stop_decode(in, n, m);
}

static void test_decode_bad(void **state)
{
    flare_relay_msg m;
    assert_int_equal(hop_hex("0800", &m), 0);
    assert_int_equal(m.type, FLARE_RELAY_HOP_RESERVE);
    assert_int_equal(hop_hex("", &m), FLARE_ERR_MALFORMED);        /* no type */
    assert_int_equal(hop_hex("2864", &m), FLARE_ERR_MALFORMED);    /* status, no type */
    assert_int_equal(hop_hex("0803", &m), FLARE_ERR_UNKNOWN_CODE); /* type 3 */
    assert_int_equal(hop_hex("08ffffffff0f", &m), FLARE_ERR_UNKNOWN_CODE);
    assert_int_equal(hop_hex("08022865", &m), FLARE_ERR_UNKNOWN_CODE); /* status 101 */
    assert_int_equal(hop_hex("08022800", &m), FLARE_ERR_UNKNOWN_CODE); /* UNUSED */
    assert_int_equal(hop_hex("08", &m), FLARE_ERR_TRUNCATED);
    assert_int_equal(hop_hex("0802120a", &m), FLARE_ERR_TRUNCATED);
    assert_int_equal(hop_hex("0a00", &m), FLARE_ERR_MALFORMED);                /* type as bytes */
    assert_int_equal(hop_hex("080110 00", &m), FLARE_ERR_MALFORMED);           /* peer as varint */
    assert_int_equal(hop_hex("08011200", &m), FLARE_ERR_MALFORMED);            /* Peer without id */
    assert_int_equal(hop_hex("080112021200", &m), FLARE_ERR_MALFORMED);        /* addr only */
    assert_int_equal(hop_hex("080112040a025500", &m), FLARE_ERR_UNKNOWN_CODE); /* bad id */
    assert_int_equal(hop_hex("08021a020a00", &m), FLARE_ERR_MALFORMED);        /* expire bytes */
    assert_int_equal(hop_hex("0802220608ffffffff10", &m), FLARE_ERR_OUT_OF_RANGE);
    assert_int_equal(hop_hex("08022202080f", &m), 0);
    assert_int_equal(m.limit.duration, 15);
    assert_int_equal(hop_hex("0802220212 00", &m), FLARE_ERR_MALFORMED); /* data as bytes */
    assert_int_equal(hop_hex("0802 ffffffffffffffffffff01", &m), FLARE_ERR_OVERLONG);
    /* Unknown fields (any wire type) are skipped. */
    assert_int_equal(hop_hex("0802 3a03616263 4801 2864", &m), 0);
    assert_int_equal(m.status, FLARE_RELAY_STATUS_OK);
    /* Stop: other field numbers, two types. */
    assert_int_equal(stop_hex("08012064", &m), 0);
    assert_int_equal(m.type, FLARE_RELAY_STOP_STATUS);
    assert_int_equal(m.status, FLARE_RELAY_STATUS_OK);
    assert_int_equal(stop_hex("0802", &m), FLARE_ERR_UNKNOWN_CODE);
    assert_int_equal(stop_hex("08012065", &m), FLARE_ERR_UNKNOWN_CODE);
    assert_int_equal(stop_hex("0800 1a0208ff", &m), FLARE_ERR_TRUNCATED);
    /* Oversize. */
    uint8_t big[FLARE_RELAY_MSG_MAX + 1];
    memset(big, 0, sizeof(big));
    big[0] = 0x08;
    assert_int_equal(flare_relay_hop_decode(big, sizeof(big), &m), FLARE_ERR_TOO_LARGE);
    assert_int_equal(flare_relay_stop_decode(big, sizeof(big), &m), FLARE_ERR_TOO_LARGE);
}

static void test_decode_addrs(void **state)
{
    /* Peer{id, addrs: valid, invalid, valid...}: invalid and excess ones
     * are dropped and counted. */
    flare_peerid id;
    fake_id(&id, 9);
    flare_multiaddr a;
    assert_int_equal(flare_multiaddr_parse(&a, "/ip4/10.0.0.1/tcp/1"), 0);
    flare_buf peer, b;
    flare_buf_init(&peer, NULL);
    flare_buf_init(&b, NULL);
    assert_int_equal(flare__pb_put_bytes_field(&peer, 1, id.bytes, id.len), 0);
    static const uint8_t junk[] = {0xff, 0xff};
    assert_int_equal(flare__pb_put_bytes_field(&peer, 2, junk, 2), 0);
    for (int i = 0; i < FLARE_RELAY_MAX_ADDRS + 3; i++)
        assert_int_equal(flare__pb_put_bytes_field(&peer, 2, a.bytes, a.len), 0);
    assert_int_equal(flare__pb_put_varint_field(&b, 1, FLARE_RELAY_HOP_CONNECT), 0);
    assert_int_equal(flare__pb_put_bytes_field(&b, 2, peer.base, peer.len), 0);
    flare_relay_msg m;
    assert_int_equal(flare_relay_hop_decode(b.base, b.len, &m), 0);
    assert_int_equal(m.npeer_addrs, FLARE_RELAY_MAX_ADDRS);
    assert_int_equal(m.peer_addrs_skipped, 4);
    assert_true(flare_peerid_equal(&m.peer, &id));
    /* A second Peer field merges: addrs accumulate, id optional. */
    flare_buf_reset(&peer);
    assert_int_equal(flare__pb_put_bytes_field(&peer, 2, a.bytes, a.len), 0);
    assert_int_equal(flare__pb_put_bytes_field(&b, 2, peer.base, peer.len), 0);
    assert_int_equal(flare_relay_hop_decode(b.base, b.len, &m), 0);
    assert_int_equal(m.peer_addrs_skipped, 5);
    /* Too many addresses to encode. */
    m.npeer_addrs = FLARE_RELAY_MAX_ADDRS + 1;
    assert_int_equal(flare_relay_hop_encode(&m, &b), FLARE_ERR_INVALID_ARG);
    m.npeer_addrs = 0;
    m.type = 3;
    assert_int_equal(flare_relay_hop_encode(&m, &b), FLARE_ERR_INVALID_ARG);
    flare_buf_free(&peer);
    flare_buf_free(&b);
}

/* --- vouchers --- */

static void test_voucher(void **state)
{
    flare_privkey kr, kx;
    key(&kr, 1);
    key(&kx, 2);
    flare_peerid relay, other, me, you;
    idof(&relay, &kr);
    idof(&other, &kx);
    fake_id(&me, 3);
    fake_id(&you, 4);
    flare_buf v;
    flare_buf_init(&v, NULL);
    assert_int_equal(flare_relay_voucher_seal(&kr, &me, 5000, &v), 0);

    flare_relay_voucher vo;
    assert_int_equal(flare_relay_voucher_open(v.base, v.len, &vo), 0);
    assert_true(flare_peerid_equal(&vo.relay, &relay));
    assert_true(flare_peerid_equal(&vo.peer, &me));
    assert_int_equal(vo.expiration, 5000);
    /* The envelope is a libp2p-relay-rsvp / 0x0302 one. */
    flare_envelope e;
    static const uint8_t t[] = {0x03, 0x02};
    assert_int_equal(flare_envelope_open(v.base, v.len, "libp2p-relay-rsvp", t, 2, &e), 0);

    assert_int_equal(flare_relay_voucher_verify(v.base, v.len, &relay, &me, 5000, 4999), 0);
    assert_int_equal(flare_relay_voucher_verify(v.base, v.len, &other, &me, 5000, 4999),
                     FLARE_ERR_PEER_ID_MISMATCH);
    assert_int_equal(flare_relay_voucher_verify(v.base, v.len, &relay, &you, 5000, 4999),
                     FLARE_ERR_PEER_ID_MISMATCH);
    assert_int_equal(flare_relay_voucher_verify(v.base, v.len, &relay, &me, 5001, 4999),
                     FLARE_ERR_OUT_OF_RANGE);
    assert_int_equal(flare_relay_voucher_verify(v.base, v.len, &relay, &me, 5000, 5000),
                     FLARE_ERR_TIMEOUT);
    /* Tampered: any byte of the payload or signature. */
    for (size_t i = v.len - 100; i < v.len; i++) {
        v.base[i] ^= 0x20;
        assert_int_not_equal(flare_relay_voucher_verify(v.base, v.len, &relay, &me, 5000, 1), 0);
        v.base[i] ^= 0x20;
    }
    /* Signed by another key (claims relay = other, signed by relay). */
    flare_buf_reset(&v);
    flare_buf pl;
    flare_buf_init(&pl, NULL);
    assert_int_equal(flare__pb_put_bytes_field(&pl, 1, other.bytes, other.len), 0);
    assert_int_equal(flare__pb_put_bytes_field(&pl, 2, me.bytes, me.len), 0);
    assert_int_equal(flare__pb_put_varint_field(&pl, 3, 5000), 0);
    assert_int_equal(flare_envelope_seal(&kr, "libp2p-relay-rsvp", t, 2, pl.base, pl.len, &v), 0);
    assert_int_equal(flare_relay_voucher_open(v.base, v.len, &vo), FLARE_ERR_PEER_ID_MISMATCH);
    /* Wrong domain. */
    flare_buf_reset(&v);
    assert_int_equal(flare_envelope_seal(&kr, "libp2p-peer-record", t, 2, pl.base, pl.len, &v), 0);
    assert_int_equal(flare_relay_voucher_open(v.base, v.len, &vo), FLARE_ERR_BAD_SIGNATURE);
    /* Missing expiration. */
    flare_buf_reset(&v);
    assert_int_equal(flare_envelope_seal(&kr, "libp2p-relay-rsvp", t, 2, pl.base, pl.len - 3, &v),
                     0);
    assert_int_equal(flare_relay_voucher_open(v.base, v.len, &vo), FLARE_ERR_MALFORMED);
    flare_buf_free(&pl);
    flare_buf_free(&v);
}

/* --- hop client --- */

/* A RESERVE reply as a relay with key k would send it. */
static void make_reserve_reply(flare_buf *b, const flare_privkey *k, const flare_peerid *peer,
                               uint64_t expire, const char **addrs, size_t naddrs)
{
    flare_buf v;
    flare_buf_init(&v, NULL);
    assert_int_equal(flare_relay_voucher_seal(k, peer, expire, &v), 0);
    flare_multiaddr ma[8];
    flare_relay_msg m;
    flare_relay_msg_init(&m, FLARE_RELAY_HOP_STATUS);
    m.has_status = m.has_reservation = m.has_expire = m.has_limit = 1;
    m.status = FLARE_RELAY_STATUS_OK;
    m.expire = expire;
    m.voucher = (flare_relay_bytes){v.base, v.len};
    m.limit = (flare_relay_limit){120, 131072};
    for (size_t i = 0; i < naddrs; i++) {
        assert_int_equal(flare_multiaddr_parse(&ma[i], addrs[i]), 0);
        m.rsvp_addrs[m.nrsvp_addrs++] = (flare_relay_bytes){ma[i].bytes, ma[i].len};
    }
    flare_buf_reset(b);
    assert_int_equal(flare_relay_hop_encode(&m, b), 0);
    flare_buf_free(&v);
}

static void test_client_reserve(void **state)
{
    flare_privkey kr;
    key(&kr, 11);
    flare_peerid relay, me, other;
    idof(&relay, &kr);
    fake_id(&me, 0x42);
    fake_id(&other, 0x43);
    char rs[FLARE_PEERID_STR_MAX], ms[FLARE_PEERID_STR_MAX], os[FLARE_PEERID_STR_MAX];
    flare_peerid_to_string(&relay, rs, sizeof(rs));
    flare_peerid_to_string(&me, ms, sizeof(ms));
    flare_peerid_to_string(&other, os, sizeof(os));
    char a0[256], a2[256], a3[256];
    snprintf(a0, sizeof(a0), "/ip4/1.2.3.4/tcp/4001/p2p/%s", rs);
    snprintf(a2, sizeof(a2), "/ip4/5.6.7.8/tcp/1/p2p/%s/p2p-circuit", rs);
    snprintf(a3, sizeof(a3), "/ip4/5.6.7.8/tcp/2/p2p/%s", os);
    const char *addrs[] = {a0, "/ip6/2001:db8::1/udp/4001/quic-v1", a2, a3};
    flare_buf b;
    flare_buf_init(&b, NULL);
    make_reserve_reply(&b, &kr, &me, 10000, addrs, 4);
    size_t len;
    const uint8_t *p = body(&b, &len);
    flare_relay_reservation r;
    uint32_t st;
    assert_int_equal(flare_relay_client_reserve_reply(p, len, &relay, &me, 6400, &r, &st), 0);
    assert_int_equal(st, FLARE_RELAY_STATUS_OK);
    assert_int_equal(r.expire, 10000);
    assert_int_equal(r.limit.duration, 120);
    assert_int_equal(r.limit.data, 131072);
    assert_true(r.has_voucher);
    assert_int_equal(r.naddrs, 2); /* relayed and other peer's dropped */

    flare_multiaddr out[4];
    char s[FLARE_MULTIADDR_STR_MAX], want[512];
    assert_int_equal(flare_relay_reservation_addrs(&r, &me, out, 4), 2);
    flare_multiaddr_to_string(&out[0], s, sizeof(s));
    snprintf(want, sizeof(want), "/ip4/1.2.3.4/tcp/4001/p2p/%s/p2p-circuit/p2p/%s", rs, ms);
    assert_string_equal(s, want);
    flare_multiaddr_to_string(&out[1], s, sizeof(s));
    snprintf(want, sizeof(want), "/ip6/2001:db8::1/udp/4001/quic-v1/p2p/%s/p2p-circuit", rs);
    assert_int_equal(flare_relay_reservation_addrs(&r, NULL, out, 1), 1);
    assert_int_equal(flare_relay_reservation_addrs(&r, NULL, out + 1, 3), 2);
    flare_multiaddr_to_string(&out[2], s, sizeof(s));
    assert_string_equal(s, want);

    /* Voucher for someone else, or from another relay. */
    assert_int_equal(flare_relay_client_reserve_reply(p, len, &relay, &other, 6400, &r, &st),
                     FLARE_ERR_PEER_ID_MISMATCH);
    assert_int_equal(flare_relay_client_reserve_reply(p, len, &other, &me, 6400, &r, &st),
                     FLARE_ERR_PEER_ID_MISMATCH);
    /* Already expired. */
    assert_int_equal(flare_relay_client_reserve_reply(p, len, &relay, &me, 10000, &r, &st),
                     FLARE_ERR_TIMEOUT);
    /* Refusal. */
    flare_relay_msg m;
    flare_relay_msg_init(&m, FLARE_RELAY_HOP_STATUS);
    m.has_status = 1;
    m.status = FLARE_RELAY_STATUS_RESERVATION_REFUSED;
    flare_buf_reset(&b);
    assert_int_equal(flare_relay_hop_encode(&m, &b), 0);
    p = body(&b, &len);
    assert_int_equal(flare_relay_client_reserve_reply(p, len, &relay, &me, 1, &r, &st),
                     FLARE_ERR_REFUSED);
    assert_int_equal(st, FLARE_RELAY_STATUS_RESERVATION_REFUSED);
    /* OK without a reservation; and not a STATUS. */
    m.status = FLARE_RELAY_STATUS_OK;
    flare_buf_reset(&b);
    assert_int_equal(flare_relay_hop_encode(&m, &b), 0);
    p = body(&b, &len);
    assert_int_equal(flare_relay_client_reserve_reply(p, len, &relay, &me, 1, &r, &st),
                     FLARE_ERR_PROTO);
    flare_buf_reset(&b);
    assert_int_equal(flare_relay_client_reserve(&b), 0);
    p = body(&b, &len);
    assert_int_equal(flare_relay_client_reserve_reply(p, len, &relay, &me, 1, &r, &st),
                     FLARE_ERR_PROTO);
    assert_int_equal(st, FLARE_RELAY_STATUS_UNUSED);
    flare_buf_free(&b);
}

static void test_client_refresh(void **state)
{
    flare_relay_reservation r;
    memset(&r, 0, sizeof(r));
    const flare_tstamp now = 1000 * FLARE_NS_PER_S;
    r.expire = 100000 + 3600;
    /* Plenty left: 2 minutes before expiry. */
    assert_int_equal(flare_relay_reservation_refresh_at(&r, 100000, now),
                     now + (3600 - 120) * FLARE_NS_PER_S);
    /* Exactly twice the margin left: still margin-based. */
    r.expire = 100000 + 240;
    assert_int_equal(flare_relay_reservation_refresh_at(&r, 100000, now),
                     now + 120 * FLARE_NS_PER_S);
    /* Less: half-way. */
    r.expire = 100000 + 200;
    assert_int_equal(flare_relay_reservation_refresh_at(&r, 100000, now),
                     now + 100 * FLARE_NS_PER_S);
    /* Tiny TTLs: the 30 s floor. */
    r.expire = 100000 + 40;
    assert_int_equal(flare_relay_reservation_refresh_at(&r, 100000, now),
                     now + 30 * FLARE_NS_PER_S);
    /* Shorter than the floor: 3/4 of the way, before the relay drops it. */
    r.expire = 100000 + 10;
    assert_int_equal(flare_relay_reservation_refresh_at(&r, 100000, now),
                     now + 7500 * FLARE_NS_PER_S / 1000);
    r.expire = 100000 + 30;
    assert_int_equal(flare_relay_reservation_refresh_at(&r, 100000, now),
                     now + 22500 * FLARE_NS_PER_S / 1000);
    /* Just over the floor: not within a second of expiry either. */
    r.expire = 100000 + 31;
    assert_int_equal(flare_relay_reservation_refresh_at(&r, 100000, now),
                     now + 23250 * FLARE_NS_PER_S / 1000);
    /* Expired: now. */
    r.expire = 100000;
    assert_int_equal(flare_relay_reservation_refresh_at(&r, 100000, now), now);
    /* No overflow near the end of time. */
    r.expire = UINT64_MAX;
    assert_true(flare_relay_reservation_refresh_at(&r, 0, now) == FLARE_TSTAMP_NEVER - 1);
}

static void test_client_connect(void **state)
{
    flare_buf b;
    flare_buf_init(&b, NULL);
    flare_relay_msg m;
    flare_relay_msg_init(&m, FLARE_RELAY_HOP_STATUS);
    m.has_status = m.has_limit = 1;
    m.status = FLARE_RELAY_STATUS_OK;
    m.limit = (flare_relay_limit){120, 4096};
    assert_int_equal(flare_relay_hop_encode(&m, &b), 0);
    size_t len;
    const uint8_t *p = body(&b, &len);
    flare_relay_limit l;
    uint32_t st;
    assert_int_equal(flare_relay_client_connect_reply(p, len, &l, &st), 0);
    assert_int_equal(l.duration, 120);
    assert_int_equal(l.data, 4096);
    m.status = FLARE_RELAY_STATUS_NO_RESERVATION;
    flare_buf_reset(&b);
    assert_int_equal(flare_relay_hop_encode(&m, &b), 0);
    p = body(&b, &len);
    assert_int_equal(flare_relay_client_connect_reply(p, len, &l, &st), FLARE_ERR_REFUSED);
    assert_int_equal(st, FLARE_RELAY_STATUS_NO_RESERVATION);
    assert_int_equal(flare_relay_client_connect_reply(p, len - 1, &l, &st), FLARE_ERR_TRUNCATED);
    flare_peerid none = {0};
    assert_int_equal(flare_relay_client_connect(&none, &b), FLARE_ERR_INVALID_ARG);
    flare_buf_free(&b);
}

/* --- stop side --- */

static void test_stop(void **state)
{
    flare_peerid src;
    fake_id(&src, 0x77);
    flare_buf b, out;
    flare_buf_init(&b, NULL);
    flare_buf_init(&out, NULL);
    flare_relay_msg m;
    flare_relay_msg_init(&m, FLARE_RELAY_STOP_CONNECT);
    m.has_peer = m.has_limit = 1;
    m.peer = src;
    m.limit = (flare_relay_limit){120, 131072};
    assert_int_equal(flare_relay_stop_encode(&m, &b), 0);
    size_t len;
    const uint8_t *p = body(&b, &len);
    flare_relay_stop_request req;
    assert_int_equal(flare_relay_stop_handle(p, len, &req, &out), 0);
    assert_int_equal(out.len, 0);
    assert_true(flare_peerid_equal(&req.remote, &src));
    assert_int_equal(req.limit.duration, 120);
    assert_int_equal(req.limit.data, 131072);
    assert_int_equal(flare_relay_stop_reply(FLARE_RELAY_STATUS_OK, &out), 0);
    flare_test_assert_hex(&out, "0408012064");
    assert_int_equal(flare_relay_stop_reply(0, &out), FLARE_ERR_INVALID_ARG);
    assert_int_equal(flare_relay_stop_reply(999, &out), FLARE_ERR_INVALID_ARG);

    /* Malformed: MALFORMED_MESSAGE (400 = 0x90 0x03) goes back. */
    flare_buf_reset(&out);
    assert_int_equal(flare_relay_stop_handle(p, len - 1, &req, &out), FLARE_ERR_TRUNCATED);
    flare_test_assert_hex(&out, "050801209003");
    /* CONNECT without peer. */
    flare_buf_reset(&out);
    static const uint8_t nopeer[] = {0x08, 0x00};
    assert_int_equal(flare_relay_stop_handle(nopeer, 2, &req, &out), FLARE_ERR_MALFORMED);
    flare_test_assert_hex(&out, "050801209003");
    /* A STATUS where a CONNECT belongs: UNEXPECTED_MESSAGE (401). */
    flare_buf_reset(&out);
    static const uint8_t status[] = {0x08, 0x01, 0x20, 0x64};
    assert_int_equal(flare_relay_stop_handle(status, 4, &req, &out), FLARE_ERR_PROTO);
    flare_test_assert_hex(&out, "050801209103");
    flare_buf_free(&b);
    flare_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_exact),   cmocka_unit_test(test_roundtrip_protobuf_c),
        cmocka_unit_test(test_decode_bad),     cmocka_unit_test(test_decode_addrs),
        cmocka_unit_test(test_voucher),        cmocka_unit_test(test_client_reserve),
        cmocka_unit_test(test_client_refresh), cmocka_unit_test(test_client_connect),
        cmocka_unit_test(test_stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
