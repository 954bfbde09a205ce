/* identify message codec: round trip, what js/go send, and bad input. */
#include "support/test.h"

#include "flare/identify.h"
#include "flare/lpframe.h"
#include "flare/peerid.h"

static void make_key(flare_privkey *k)
{
    uint8_t seed[32] = {7};
    assert_int_equal(flare_privkey_from_seed(k, seed), 0);
}

static void test_round_trip(void **state)
{
    flare_privkey k;
    make_key(&k);
    flare_multiaddr listen[2], obs;
    assert_int_equal(flare_multiaddr_parse(&listen[0], "/ip4/198.51.100.1/tcp/4001"), 0);
    assert_int_equal(flare_multiaddr_parse(&listen[1], "/ip6/2001:db8::1/tcp/4001"), 0);
    assert_int_equal(flare_multiaddr_parse(&obs, "/ip4/203.0.113.9/tcp/5555"), 0);
    const char *protos[] = {"/ipfs/id/1.0.0", "/ipfs/ping/1.0.0", "/libp2p/dcutr"};
    flare_identify_out o = {0};
    o.agent_version = "flare/test";
    o.pubkey = &k.pub;
    o.listen = listen;
    o.nlisten = 2;
    o.observed = &obs;
    o.protocols = protos;
    o.nprotocols = 3;
    flare_buf b;
    flare_buf_init(&b, NULL);
    assert_int_equal(flare_identify_encode(&o, &b), 0);
    const uint8_t *msg;
    size_t len;
    assert_int_equal(flare_lpframe_parse(b.base, b.len, FLARE_IDENTIFY_MAX_MSG, &msg, &len),
                     (int)b.len);
    flare_identify_msg m;
    assert_int_equal(flare_identify_decode(&m, msg, len, NULL), 0);
    assert_string_equal(m.agent_version, "flare/test");
    assert_string_equal(m.protocol_version, FLARE_IDENTIFY_PROTOCOL_VERSION);
    assert_true(m.has_pubkey);
    assert_true(flare_pubkey_equal(&m.pubkey, &k.pub));
    assert_int_equal(m.nlisten, 2);
    assert_true(flare_multiaddr_equal(&m.listen[1], &listen[1]));
    assert_true(m.has_observed);
    assert_true(flare_multiaddr_equal(&m.observed, &obs));
    assert_int_equal(m.nprotocols, 3);
    assert_string_equal(m.protocols[2], "/libp2p/dcutr");
    assert_false(m.has_agent_version == 0);
    flare_identify_msg_free(&m);
    flare_buf_free(&b);
}

/* A push carrying only protocols leaves the other fields absent. */
static void test_partial_push(void **state)
{
    /* field 3 (protocols) = "/a" */
    static const uint8_t pb[] = {0x1a, 0x02, '/', 'a'};
    flare_identify_msg m;
    assert_int_equal(flare_identify_decode(&m, pb, sizeof(pb), NULL), 0);
    assert_true(m.has_protocols);
    assert_false(m.has_listen_addrs);
    assert_false(m.has_pubkey);
    assert_false(m.has_agent_version);
    assert_false(m.has_observed);
    assert_int_equal(m.nprotocols, 1);
    flare_identify_msg_free(&m);
}

/* Invalid parts are dropped, the rest is kept. */
static void test_lenient_fields(void **state)
{
    static const uint8_t pb[] = {
        0x12, 0x03, 0x04, 0x7f, 0x00,                           /* listenAddrs: truncated ip4 */
        0x12, 0x08, 0x04, 198,  51,   100, 1, 0x06, 0x0f, 0xa1, /* ok */
        0x22, 0x02, 0xff, 0xff,                                 /* observedAddr: garbage */
        0x1a, 0x00,                                             /* empty protocol */
    };
    flare_identify_msg m;
    assert_int_equal(flare_identify_decode(&m, pb, sizeof(pb), NULL), 0);
    assert_int_equal(m.nlisten, 1);
    assert_false(m.has_observed);
    assert_int_equal(m.nprotocols, 0);
    flare_identify_msg_free(&m);
}

static void test_bad_input(void **state)
{
    flare_identify_msg m;
    /* not a protobuf: a length running past the end */
    static const uint8_t trunc[] = {0x12, 0x10, 0x04};
    assert_int_equal(flare_identify_decode(&m, trunc, sizeof(trunc), NULL), FLARE_ERR_MALFORMED);
    /* wrong wire type for field 1 */
    static const uint8_t wt[] = {0x08, 0x01};
    assert_int_equal(flare_identify_decode(&m, wt, sizeof(wt), NULL), FLARE_ERR_MALFORMED);
    /* a public key that is not a key */
    static const uint8_t badkey[] = {0x0a, 0x03, 0x08, 0x09, 0x12};
    assert_true(flare_identify_decode(&m, badkey, sizeof(badkey), NULL) < 0);
    /* oversize */
    static uint8_t big[FLARE_IDENTIFY_MAX_MSG + 1];
    assert_int_equal(flare_identify_decode(&m, big, sizeof(big), NULL), FLARE_ERR_TOO_LARGE);
    /* an oversize frame is refused by its length prefix alone */
    static const uint8_t frame[] = {0xff, 0xff, 0x03};
    const uint8_t *msg;
    size_t len;
    assert_int_equal(flare_lpframe_parse(frame, sizeof(frame), FLARE_IDENTIFY_MAX_MSG, &msg, &len),
                     FLARE_ERR_TOO_LARGE);
}

static void test_encode_limits(void **state)
{
    static char proto[900];
    memset(proto, 'x', sizeof(proto) - 1);
    proto[0] = '/';
    const char *protos[16];
    for (int i = 0; i < 16; i++)
        protos[i] = proto;
    flare_identify_out o = {0};
    o.protocols = protos;
    o.nprotocols = 16;
    flare_buf b;
    flare_buf_init(&b, NULL);
    assert_int_equal(flare_identify_encode(&o, &b), FLARE_ERR_TOO_LARGE);
    assert_int_equal(b.len, 0);
    flare_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),     cmocka_unit_test(test_partial_push),
        cmocka_unit_test(test_lenient_fields), cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_encode_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
