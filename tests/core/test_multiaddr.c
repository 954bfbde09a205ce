/* multiaddr: multiformats vectors, round trips, bad input, helpers. */
#include "support/test.h"

#include "flare/multiaddr.h"
#include "flare/multihash.h"

#define QM  "QmcgpsyWgH8Y8ajJz1Cu72KnS5uo2Aa2LpzU7kinSupNKC"
#define QM2 "QmbHVEEepCi7rn7VL7Exxpd2Ci9NNB6ifvqwhsrbRMgQFP"
#define ED  "12D3KooWCryG7Mon9orvQxcS1rYZjotPgpwoJNHHKcLLfE4Hf5mV"
#define K36 "k2k4r8oqamigqdo6o7hsbfwd45y70oyynp98usk7zmyfrzpqxh1pohl7"

static void must_parse(flare_multiaddr *ma, const char *s)
{
    int rv = flare_multiaddr_parse(ma, s);
    if (rv != 0)
        fail_msg("parse %s: %s", s, flare_strerror(rv));
}

static void assert_str(const flare_multiaddr *ma, const char *want)
{
    char out[FLARE_MULTIADDR_STR_MAX];
    int n = flare_multiaddr_to_string(ma, out, sizeof(out));
    if (n < 0 || strcmp(out, want) != 0)
        fail_msg("got %s (%d), want %s", n < 0 ? flare_strerror(n) : out, n, want);
    assert_int_equal(n, (int)strlen(want));
}

/* go-multiaddr multiaddr_test.go TestConstructSucceeds (onion and garlic
 * omitted: not supported) plus libp2p transport addresses. */
static void test_valid_strings(void **state)
{
    static const char *ok[] = {
        "/ip4/1.2.3.4",
        "/ip4/0.0.0.0",
        "/ip4/192.0.2.0/ipcidr/24",
        "/ip6/::1",
        "/ip6/2601:9:4f81:9700:803e:ca65:66e8:c21",
        "/ip6/2601:9:4f81:9700:803e:ca65:66e8:c21/udp/1234/quic",
        "/ip6/2601:9:4f81:9700:803e:ca65:66e8:c21/udp/1234/quic-v1",
        "/ip6/2001:db8::/ipcidr/32",
        "/ip6zone/x/ip6/fe80::1",
        "/ip6zone/x%y/ip6/fe80::1",
        "/ip6zone/x%y/ip6/::",
        "/ip6zone/x/ip6/fe80::1/udp/1234/quic",
        "/ip6zone/x/ip6/fe80::1/udp/1234/quic-v1",
        "/udp/0",
        "/tcp/0",
        "/sctp/0",
        "/udp/1234",
        "/tcp/1234",
        "/sctp/1234",
        "/udp/65535",
        "/tcp/65535",
        "/ipfs/" QM,
        "/ipfs/" K36,
        "/p2p/" QM,
        "/p2p/" K36,
        "/p2p/bafzbeigvf25ytwc3akrijfecaotc74udrhcxzh2cx3we5qqnw5vgrei4bm",
        "/p2p/" ED,
        "/p2p/k51qzi5uqu5dhb6l8spkdx7yxafegfkee5by8h7lmjh2ehc2sgg34z7c15vzqs",
        "/p2p/bafzaajaiaejcalj543iwv2d7pkjt7ykvefrkfu7qjfi6sduakhso4lay6abn2d5u",
        "/udp/1234/sctp/1234",
        "/udp/1234/udt",
        "/udp/1234/utp",
        "/tcp/1234/http",
        "/tcp/1234/tls/http",
        "/tcp/1234/https",
        "/ipfs/" QM "/tcp/1234",
        "/p2p/" K36 "/tcp/1234",
        "/ip4/127.0.0.1/udp/1234",
        "/ip4/127.0.0.1/udp/0",
        "/ip4/127.0.0.1/tcp/1234",
        "/ip4/127.0.0.1/tcp/1234/",
        "/ip4/127.0.0.1/udp/1234/quic",
        "/ip4/127.0.0.1/udp/1234/quic-v1",
        "/ip4/127.0.0.1/udp/1234/quic-v1/webtransport",
        "/ip4/127.0.0.1/udp/1234/quic-v1/webtransport/certhash/b2uaraocy6yrdblb4sfptaddgimjmmpy",
        "/ip4/127.0.0.1/udp/1234/quic-v1/webtransport/certhash/b2uaraocy6yrdblb4sfptaddgimjmmpy/"
        "certhash/zQmbWTwYGcmdyK9CYfNBcfs9nhZs17a6FQ4Y8oea278xx41",
        "/ip4/127.0.0.1/ipfs/" QM "/tcp/1234",
        "/ip4/127.0.0.1/p2p/" K36 "/tcp/1234",
        "/unix/a/b/c/d/e",
        "/unix/stdio",
        "/ip4/1.2.3.4/tcp/80/unix/a/b/c/d/e/f",
        "/ip4/127.0.0.1/p2p/" QM "/tcp/1234/unix/stdio",
        "/ip4/127.0.0.1/tcp/9090/http/p2p-webrtc-direct",
        "/ip4/127.0.0.1/tcp/127/ws",
        "/ip4/127.0.0.1/tcp/127/tls",
        "/ip4/127.0.0.1/tcp/127/tls/ws",
        "/ip4/127.0.0.1/tcp/127/tls/sni/example.com/ws",
        "/ip4/127.0.0.1/tcp/127/noise",
        "/ip4/127.0.0.1/tcp/127/wss",
        /* libp2p transports and relays */
        "/dns/example.com/tcp/443/wss/p2p/" ED,
        "/dns4/example.com/udp/4001/quic-v1",
        "/dns6/example.com/tcp/4001",
        "/dnsaddr/bootstrap.libp2p.io",
        "/ip4/1.2.3.4/udp/4001/webrtc-direct/certhash/"
        "uEiDDq4_xNyDorZBH3TlGazyJdOWSwvo4PUo5YHFMrvDE8g",
        "/ip4/1.2.3.4/tcp/4001/p2p/" QM "/p2p-circuit/webrtc/p2p/" ED,
        "/ip4/1.2.3.4/tcp/4001/p2p/" QM "/p2p-circuit/p2p/" ED,
        "/p2p-circuit",
        "/p2p-webrtc-star",
        "/p2p-stardust",
        "/p2p-websocket-star",
        "/dccp/5",
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        flare_multiaddr ma, back;
        char s[FLARE_MULTIADDR_STR_MAX];
        must_parse(&ma, ok[i]);
        /* text -> bytes -> text -> bytes is stable */
        assert_true(flare_multiaddr_to_string(&ma, s, sizeof(s)) > 0);
        must_parse(&back, s);
        assert_true(flare_multiaddr_equal(&ma, &back));
        assert_int_equal(flare_multiaddr_from_bytes(&back, ma.bytes, ma.len), 0);
        assert_true(flare_multiaddr_equal(&ma, &back));
    }
}

/* go-multiaddr TestConstructFails (supported protocols) with the precise
 * error flare gives. */
static void test_invalid_strings(void **state)
{
    static const struct {
        const char *s;
        int err;
    } bad[] = {
        {"/ip4", FLARE_ERR_MALFORMED},
        {"/ip4/::1", FLARE_ERR_MALFORMED},
        {"/ip4/fdpsofodsajfdoisa", FLARE_ERR_MALFORMED},
        {"/ip4/::/ipcidr/256", FLARE_ERR_MALFORMED},
        {"/ip6/::/ipcidr/1026", FLARE_ERR_OUT_OF_RANGE},
        {"/ip6", FLARE_ERR_MALFORMED},
        {"/ip6zone", FLARE_ERR_MALFORMED},
        {"/ip6zone/", FLARE_ERR_MALFORMED},
        {"/ip6zone//ip6/fe80::1", FLARE_ERR_MALFORMED},
        {"/udp", FLARE_ERR_MALFORMED},
        {"/tcp", FLARE_ERR_MALFORMED},
        {"/sctp", FLARE_ERR_MALFORMED},
        {"/udp/65536", FLARE_ERR_OUT_OF_RANGE},
        {"/tcp/65536", FLARE_ERR_OUT_OF_RANGE},
        {"/tcp/99999999999999999999", FLARE_ERR_OUT_OF_RANGE},
        {"/quic/65536", FLARE_ERR_UNKNOWN_CODE},
        {"/quic-v1/65536", FLARE_ERR_UNKNOWN_CODE},
        {"/udp/1234/sctp", FLARE_ERR_MALFORMED},
        {"/udp/1234/udt/1234", FLARE_ERR_UNKNOWN_CODE},
        {"/udp/1234/utp/1234", FLARE_ERR_UNKNOWN_CODE},
        {"/ip4/127.0.0.1/udp/jfodsajfidosajfoidsa", FLARE_ERR_MALFORMED},
        {"/ip4/127.0.0.1/udp", FLARE_ERR_MALFORMED},
        {"/ip4/127.0.0.1/tcp/jfodsajfidosajfoidsa", FLARE_ERR_MALFORMED},
        {"/ip4/127.0.0.1/tcp/-1", FLARE_ERR_MALFORMED},
        {"/ip4/127.0.0.1/tcp/+1", FLARE_ERR_MALFORMED},
        {"/ip4/127.0.0.1/tcp", FLARE_ERR_MALFORMED},
        {"/ip4/127.0.0.1/quic/1234", FLARE_ERR_UNKNOWN_CODE},
        {"/ip4/127.0.0.1/quic-v1/1234", FLARE_ERR_UNKNOWN_CODE},
        {"/ip4/127.0.0.1/udp/1234/quic-v1/webtransport/certhash", FLARE_ERR_MALFORMED},
        /* one character missing from the certhash */
        {"/ip4/127.0.0.1/udp/1234/quic-v1/webtransport/certhash/b2uaraocy6yrdblb4sfptaddgimjmmp",
         FLARE_ERR_MALFORMED},
        {"/ip4/127.0.0.1/ipfs", FLARE_ERR_MALFORMED},
        {"/ip4/127.0.0.1/ipfs/tcp", FLARE_ERR_UNKNOWN_CODE},
        {"/ip4/127.0.0.1/p2p", FLARE_ERR_MALFORMED},
        {"/ip4/127.0.0.1/p2p/tcp", FLARE_ERR_UNKNOWN_CODE},
        {"/unix", FLARE_ERR_MALFORMED},
        {"/ip4/1.2.3.4/tcp/80/unix", FLARE_ERR_MALFORMED},
        {"/unix/a//b", FLARE_ERR_MALFORMED},
        {"/ip4/127.0.0.1/tcp/9090/http/p2p-webcrt-direct", FLARE_ERR_UNKNOWN_CODE},
        {"/", FLARE_ERR_MALFORMED},
        {"", FLARE_ERR_MALFORMED},
        {"ip4/1.2.3.4", FLARE_ERR_MALFORMED},
        {"/ip4//tcp/1", FLARE_ERR_MALFORMED},
        {"/ip4/1.2.3.4//tcp/1", FLARE_ERR_MALFORMED},
        {"/ip4/01.2.3.4", FLARE_ERR_MALFORMED},
        {"/ip4/1.2.3.4.5", FLARE_ERR_MALFORMED},
        {"/ip6/fe80::1%eth0", FLARE_ERR_MALFORMED},
        {"/dns", FLARE_ERR_MALFORMED},
        {"/onion/timaq4ygg2iegci7:1234", FLARE_ERR_UNKNOWN_CODE},
        /* go TestInvalidP2PAddrString */
        {"/p2p/"
         "k2k4r8oqamigqdo6o7hsbfwd45y70oyynp98usk7zmyfrzpqxh1pohl-",
         FLARE_ERR_MALFORMED},
        {"/p2p/?unknownmultibase", FLARE_ERR_UNKNOWN_CODE},
        {"/p2p/k2jmtxwoe2phm1hbqp0e7nufqf6umvuu2e9qd7ana7h411a0haqj6i2z", FLARE_ERR_UNKNOWN_CODE},
        /* base58 of a multihash with a bad (md5) code; and an invalid char */
        {"/p2p/Qm0cgpsyWgH8Y8ajJz1Cu72KnS5uo2Aa2LpzU7kinSupNK", FLARE_ERR_MALFORMED},
        {"/p2p/QmcgpsyWgH8Y8ajJz1Cu72KnS5uo2Aa2LpzU7kinSupN", FLARE_ERR_TRUNCATED},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        flare_multiaddr ma;
        int rv = flare_multiaddr_parse(&ma, bad[i].s);
        if (rv != bad[i].err)
            fail_msg("%s: got %d (%s), want %d", bad[i].s, rv, flare_strerror(rv), bad[i].err);
        assert_int_equal(ma.len, 0);
    }
}

/* go-multiaddr TestStringToBytes / TestBytesToString / TestZone, and the
 * /tcp/4001 example. */
static void test_binary_vectors(void **state)
{
    static const struct {
        const char *s, *hex;
    } vec[] = {
        {"/ip4/127.0.0.1/tcp/4001", "047f000001060fa1"},
        {"/ip4/127.0.0.1/udp/1234", "047f000001910204d2"},
        {"/ip4/127.0.0.1/tcp/4321", "047f0000010610e1"},
        {"/ip4/127.0.0.1/udp/1234/ip4/127.0.0.1/tcp/4321", "047f000001910204d2047f0000010610e1"},
        {"/ip6zone/eth0/ip6/::1", "2a04657468302900000000000000000000000000000001"},
        {"/dns4/a.io/tcp/443/wss", "3604612e696f0601bbde03"},
        {"/ip4/1.2.3.4/udp/4001/quic-v1", "040102030491020fa1cd03"},
        {"/unix/a/b", "900304"
                      "2f612f62"},
        {"/p2p-circuit", "a202"},
        {"/ip6/::1/tcp/1/ipcidr/8", "2900000000000000000000000000000001060001"
                                    "2b08"},
    };
    for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
        uint8_t want[FLARE_MULTIADDR_MAX];
        size_t n = flare_test_unhex(vec[i].hex, want, sizeof(want));
        flare_multiaddr ma;
        must_parse(&ma, vec[i].s);
        assert_int_equal(ma.len, n);
        assert_memory_equal(ma.bytes, want, n);
        assert_int_equal(flare_multiaddr_from_bytes(&ma, want, n), 0);
        assert_str(&ma, vec[i].s);
    }
}

/* go-multiaddr TestRoundTrip and TestIPFSvP2P: text -> bytes -> same text. */
static void test_round_trip_text(void **state)
{
    static const char *vec[] = {
        "/unix/a/b/c/d",
        "/ip6/::ffff:127.0.0.1/tcp/111",
        "/ip4/127.0.0.1/tcp/123",
        "/ip4/127.0.0.1/tcp/123/tls",
        "/ip4/127.0.0.1/udp/123",
        "/ip4/127.0.0.1/udp/123/ip6/::",
        "/ip4/127.0.0.1/udp/1234/quic-v1/webtransport/certhash/"
        "uEiDDq4_xNyDorZBH3TlGazyJdOWSwvo4PUo5YHFMrvDE8g",
        "/p2p/" QM2,
        "/p2p/" QM2 "/unix/a/b/c",
        "/p2p/" ED,
        "/ip6/2001:db8::1/tcp/1/p2p/" ED "/p2p-circuit/p2p/" QM2,
    };
    for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
        flare_multiaddr ma;
        must_parse(&ma, vec[i]);
        assert_str(&ma, vec[i]);
    }
    /* canonical forms */
    static const struct {
        const char *in, *out;
    } canon[] = {
        {"/ipfs/" QM2, "/p2p/" QM2},
        {"/ip4/127.0.0.1/tcp/0080//", "/ip4/127.0.0.1/tcp/80"},
        {"/ip6/0:0:0:0:0:0:0:1", "/ip6/::1"},
        /* CIDs print as base58btc multihashes */
        {"/p2p/bafzaajaiaejcalj543iwv2d7pkjt7ykvefrkfu7qjfi6sduakhso4lay6abn2d5u", "/p2p/" ED},
        /* certhash in base32 prints as base64url */
        {"/certhash/b2uaraocy6yrdblb4sfptaddgimjmmpy", "/certhash/u1QEQOFj2IjCsPJFfMAxmQxLGPw"},
    };
    for (size_t i = 0; i < sizeof(canon) / sizeof(canon[0]); i++) {
        flare_multiaddr ma;
        must_parse(&ma, canon[i].in);
        assert_str(&ma, canon[i].out);
    }
}

static void test_bad_bytes(void **state)
{
    static const struct {
        const char *hex;
        int err;
    } bad[] = {
        {"", FLARE_ERR_MALFORMED},
        {"047f0000", FLARE_ERR_TRUNCATED},                        /* ip4 of 3 bytes */
        {"047f000001060f", FLARE_ERR_TRUNCATED},                  /* half a port */
        {"29000000", FLARE_ERR_TRUNCATED},                        /* short ip6 */
        {"05", FLARE_ERR_UNKNOWN_CODE},                           /* unknown code */
        {"bc030010c0439831b48218480050", FLARE_ERR_UNKNOWN_CODE}, /* onion */
        {"80", FLARE_ERR_TRUNCATED},                              /* code varint cut */
        {"8000", FLARE_ERR_OVERLONG},                             /* non-minimal code */
        {"36", FLARE_ERR_TRUNCATED},                              /* dns4 without length */
        {"3680", FLARE_ERR_TRUNCATED},                            /* length varint cut */
        {"368000", FLARE_ERR_OVERLONG},                           /* non-minimal length */
        {"3605612e696f", FLARE_ERR_TRUNCATED},                    /* value shorter than length */
        {"3600", FLARE_ERR_MALFORMED},                            /* empty dns name */
        {"3603612f62", FLARE_ERR_MALFORMED},                      /* '/' in a dns name */
        {"3603610062", FLARE_ERR_MALFORMED},                      /* NUL in a dns name */
        {"900301"
         "61",
         FLARE_ERR_MALFORMED}, /* relative unix path */
        {"900303"
         "2f61",
         FLARE_ERR_TRUNCATED},
        {"900303"
         "2f612f",
         FLARE_ERR_MALFORMED}, /* trailing '/' */
        {"900304"
         "2f2f6161",
         FLARE_ERR_MALFORMED}, /* empty segment */
        /* go TestInvalidP2PAddrBytes: sha2-256 claiming 33 bytes, 32 present */
        {"a503221221c05877cbae039d70a5e600ea02c6f9f2942439285c9e344e26f8d280c850fad6",
         FLARE_ERR_TRUNCATED},
        {"a50304d5010199", FLARE_ERR_UNKNOWN_CODE}, /* md5 multihash */
        {"a503020001", FLARE_ERR_TRUNCATED},        /* identity digest cut */
        {"a503020000", FLARE_ERR_MALFORMED},        /* empty identity */
        {"a503031201aa", FLARE_ERR_MALFORMED},      /* sha2-256 of 1 byte */
        {"a5030400010100", FLARE_ERR_MALFORMED},    /* multihash shorter than value */
        {"d20300", FLARE_ERR_TRUNCATED},            /* empty certhash */
        {"9003022f61"
         "a202",
         FLARE_ERR_MALFORMED}, /* something after a unix path */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint8_t in[FLARE_MULTIADDR_MAX];
        size_t n = flare_test_unhex(bad[i].hex, in, sizeof(in));
        flare_multiaddr ma;
        int rv = flare_multiaddr_from_bytes(&ma, in, n);
        if (rv != bad[i].err)
            fail_msg("%s: got %d (%s), want %d", bad[i].hex, rv, flare_strerror(rv), bad[i].err);
        assert_int_equal(ma.len, 0);
    }
    /* identity peer id longer than FLARE_PEERID_MAX */
    uint8_t big[80] = {0xa5, 0x03, 70, 0x00, 68};
    flare_multiaddr ma;
    assert_int_equal(flare_multiaddr_from_bytes(&ma, big, 75), FLARE_ERR_TOO_LARGE);
    /* more than FLARE_MULTIADDR_MAX bytes */
    uint8_t many[FLARE_MULTIADDR_MAX + 2];
    for (size_t i = 0; i < sizeof(many); i += 2) {
        many[i] = 0xa2;
        many[i + 1] = 0x02;
    }
    assert_int_equal(flare_multiaddr_from_bytes(&ma, many, sizeof(many)), FLARE_ERR_TOO_LARGE);
    assert_int_equal(flare_multiaddr_from_bytes(&ma, many, FLARE_MULTIADDR_MAX), 0);
    char s[FLARE_MULTIADDR_STR_MAX];
    assert_int_equal(flare_multiaddr_to_string(&ma, s, sizeof(s)), 200 * 12);
}

static void test_text_too_large(void **state)
{
    /* 200 x "/p2p-circuit" is exactly FLARE_MULTIADDR_MAX bytes; one more
     * does not fit. */
    char s[201 * 12 + 1] = {0};
    for (int i = 0; i < 201; i++)
        strcat(s, "/p2p-circuit");
    flare_multiaddr ma;
    assert_int_equal(flare_multiaddr_parse(&ma, s), FLARE_ERR_TOO_LARGE);
    s[200 * 12] = 0;
    assert_int_equal(flare_multiaddr_parse(&ma, s), 0);
    assert_int_equal(ma.len, FLARE_MULTIADDR_MAX);
    /* too small output buffers */
    char out[8];
    must_parse(&ma, "/ip4/127.0.0.1/tcp/1");
    assert_int_equal(flare_multiaddr_to_string(&ma, out, sizeof(out)), FLARE_ERR_BUFFER_TOO_SMALL);
    char exact[21];
    assert_int_equal(flare_multiaddr_to_string(&ma, exact, 20), FLARE_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(flare_multiaddr_to_string(&ma, exact, 21), 20);
    flare_multiaddr empty = {0};
    assert_str(&empty, "/");
}

static void test_iterate(void **state)
{
    flare_multiaddr ma;
    must_parse(&ma, "/ip4/1.2.3.4/tcp/80/tls/sni/example.com/ws/p2p/" QM2);
    static const struct {
        uint64_t code;
        const char *name, *value;
    } want[] = {{FLARE_MA_IP4, "ip4", "1.2.3.4"}, {FLARE_MA_TCP, "tcp", "80"},
                {FLARE_MA_TLS, "tls", ""},        {FLARE_MA_SNI, "sni", "example.com"},
                {FLARE_MA_WS, "ws", ""},          {FLARE_MA_P2P, "p2p", QM2}};
    size_t off = 0, i = 0;
    flare_ma_component c;
    int rv;
    while ((rv = flare_multiaddr_next(&ma, &off, &c)) == 1) {
        char v[128];
        assert_true(i < 6);
        assert_true(c.code == want[i].code);
        assert_string_equal(c.name, want[i].name);
        assert_int_equal(flare_multiaddr_component_to_string(&c, v, sizeof(v)),
                         (int)strlen(want[i].value));
        assert_string_equal(v, want[i].value);
        i++;
    }
    assert_int_equal(rv, 0);
    assert_int_equal(i, 6);
    assert_int_equal(off, ma.len);
    /* a corrupted value does not crash the iterator */
    ma.len = 3;
    off = 0;
    assert_int_equal(flare_multiaddr_next(&ma, &off, &c), FLARE_ERR_TRUNCATED);
    /* protocol table */
    uint64_t code;
    assert_int_equal(flare_ma_protocol_code("ipfs", 4, &code), 0);
    assert_true(code == FLARE_MA_P2P);
    assert_int_equal(flare_ma_protocol_code("quic-v1", 7, &code), 0);
    assert_true(code == 0x01cd);
    assert_int_equal(flare_ma_protocol_code("quic-v2", 7, &code), FLARE_ERR_UNKNOWN_CODE);
    assert_string_equal(flare_ma_protocol_name(0x01d2), "certhash");
    assert_null(flare_ma_protocol_name(0x01bc));
}

/* Codes checked against multiformats/multiaddr protocols.csv. */
static void test_codes(void **state)
{
    static const struct {
        const char *name;
        uint64_t code;
    } vec[] = {{"ip4", 4},
               {"tcp", 6},
               {"udp", 273},
               {"dccp", 33},
               {"ip6", 41},
               {"ip6zone", 42},
               {"ipcidr", 43},
               {"dns", 53},
               {"dns4", 54},
               {"dns6", 55},
               {"dnsaddr", 56},
               {"sctp", 132},
               {"udt", 301},
               {"utp", 302},
               {"unix", 400},
               {"p2p", 421},
               {"https", 443},
               {"tls", 448},
               {"sni", 449},
               {"noise", 454},
               {"quic", 460},
               {"quic-v1", 461},
               {"webtransport", 465},
               {"certhash", 466},
               {"http", 480},
               {"ws", 477},
               {"wss", 478},
               {"webrtc-direct", 280},
               {"webrtc", 281},
               {"p2p-circuit", 290},
               {"p2p-webrtc-star", 275},
               {"p2p-webrtc-direct", 276},
               {"p2p-stardust", 277},
               {"p2p-websocket-star", 479}};
    for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
        uint64_t code = 0;
        assert_int_equal(flare_ma_protocol_code(vec[i].name, strlen(vec[i].name), &code), 0);
        if (code != vec[i].code)
            fail_msg("%s: %llu", vec[i].name, (unsigned long long)code);
        assert_string_equal(flare_ma_protocol_name(code), vec[i].name);
    }
}

static void test_encapsulate(void **state)
{
    flare_multiaddr m, m2;
    /* go-multiaddr TestEncapsulate */
    must_parse(&m, "/ip4/127.0.0.1/udp/1234");
    must_parse(&m2, "/udp/5678");
    assert_int_equal(flare_multiaddr_encapsulate(&m, &m2), 0);
    assert_str(&m, "/ip4/127.0.0.1/udp/1234/udp/5678");
    assert_int_equal(flare_multiaddr_decapsulate(&m, FLARE_MA_UDP), 0);
    assert_str(&m, "/ip4/127.0.0.1/udp/1234");
    assert_int_equal(flare_multiaddr_decapsulate(&m, FLARE_MA_TCP), FLARE_ERR_NOT_FOUND);
    assert_str(&m, "/ip4/127.0.0.1/udp/1234");
    assert_int_equal(flare_multiaddr_decapsulate(&m, FLARE_MA_IP4), 0);
    assert_int_equal(m.len, 0);
    /* equality and has */
    flare_multiaddr a, b, c;
    must_parse(&a, "/ip4/127.0.0.1/tcp/1234");
    must_parse(&b, "/ip4/127.0.0.1/tcp/1234/");
    must_parse(&c, "/ip4/127.0.0.1/udp/1234");
    assert_true(flare_multiaddr_equal(&a, &b));
    assert_false(flare_multiaddr_equal(&a, &c));
    assert_true(flare_multiaddr_has(&a, FLARE_MA_TCP));
    assert_false(flare_multiaddr_has(&a, FLARE_MA_UDP));
    /* encapsulating past the limit leaves ma unchanged */
    flare_multiaddr big;
    memset(&big, 0, sizeof(big));
    for (int i = 0; i < 199; i++)
        assert_int_equal(flare_multiaddr_push(&big, FLARE_MA_P2P_CIRCUIT, NULL, 0), 0);
    assert_int_equal(flare_multiaddr_encapsulate(&big, &a), FLARE_ERR_TOO_LARGE);
    assert_int_equal(big.len, 398);
    /* push validates */
    uint8_t ip[3] = {1, 2, 3};
    assert_int_equal(flare_multiaddr_push(&a, FLARE_MA_IP4, ip, 3), FLARE_ERR_MALFORMED);
    assert_int_equal(flare_multiaddr_push(&a, 0x01bc, ip, 3), FLARE_ERR_UNKNOWN_CODE);
    assert_true(flare_multiaddr_equal(&a, &b));
    /* nothing may follow a unix path */
    flare_multiaddr u;
    must_parse(&u, "/unix/tmp/sock");
    assert_int_equal(flare_multiaddr_encapsulate(&u, &a), FLARE_ERR_MALFORMED);
    assert_int_equal(flare_multiaddr_push(&u, FLARE_MA_P2P_CIRCUIT, NULL, 0), FLARE_ERR_MALFORMED);
    assert_str(&u, "/unix/tmp/sock");
    assert_int_equal(flare_multiaddr_encapsulate(&a, &u), 0);
    assert_str(&a, "/ip4/127.0.0.1/tcp/1234/unix/tmp/sock");
}

static void peerid_of(flare_peerid *id, const char *s)
{
    int n = flare_ma_peerid_decode(s, strlen(s), id->bytes, sizeof(id->bytes));
    assert_true(n > 0);
    id->len = (uint8_t)n;
}

static void test_peerid(void **state)
{
    flare_peerid id, qm, got;
    peerid_of(&id, ED);
    peerid_of(&qm, QM2);
    assert_int_equal(id.len, 38); /* identity multihash of an Ed25519 key */
    assert_int_equal(id.bytes[0], 0x00);
    assert_int_equal(qm.len, 34);
    assert_int_equal(qm.bytes[0], 0x12);
    char s[128];
    assert_int_equal(flare_ma_peerid_encode(id.bytes, id.len, s, sizeof(s)), (int)strlen(ED));
    assert_string_equal(s, ED);

    flare_multiaddr ma;
    must_parse(&ma, "/ip4/1.2.3.4/tcp/1");
    assert_int_equal(flare_multiaddr_get_peerid(&ma, &got), FLARE_ERR_NOT_FOUND);
    assert_int_equal(flare_multiaddr_with_peerid(&ma, &id), 0);
    assert_str(&ma, "/ip4/1.2.3.4/tcp/1/p2p/" ED);
    assert_int_equal(flare_multiaddr_with_peerid(&ma, &id), 0); /* no-op */
    assert_str(&ma, "/ip4/1.2.3.4/tcp/1/p2p/" ED);
    assert_int_equal(flare_multiaddr_with_peerid(&ma, &qm), FLARE_ERR_PEER_ID_MISMATCH);
    assert_int_equal(flare_multiaddr_get_peerid(&ma, &got), 0);
    assert_int_equal(got.len, id.len);
    assert_memory_equal(got.bytes, id.bytes, id.len);
    /* the LAST /p2p/ */
    must_parse(&ma, "/p2p/" QM2 "/p2p-circuit/p2p/" ED);
    assert_int_equal(flare_multiaddr_get_peerid(&ma, &got), 0);
    assert_memory_equal(got.bytes, id.bytes, id.len);
    /* invalid ids */
    flare_peerid badid = {.len = 3, .bytes = {0x12, 0x01, 0xaa}};
    assert_int_equal(flare_multiaddr_with_peerid(&ma, &badid), FLARE_ERR_INVALID_ARG);
    badid.len = 0;
    assert_int_equal(flare_multiaddr_with_peerid(&ma, &badid), FLARE_ERR_INVALID_ARG);
    /* the same key as a CID (base32, base36) and as base58 */
    flare_peerid cid;
    peerid_of(&cid, "bafzaajaiaejcalj543iwv2d7pkjt7ykvefrkfu7qjfi6sduakhso4lay6abn2d5u");
    assert_int_equal(cid.len, id.len);
    assert_memory_equal(cid.bytes, id.bytes, id.len);
    uint8_t out[64];
    assert_int_equal(flare_ma_peerid_decode("", 0, out, sizeof(out)), FLARE_ERR_MALFORMED);
    assert_int_equal(flare_ma_peerid_decode(ED, strlen(ED), out, 10), FLARE_ERR_BUFFER_TOO_SMALL);
}

static void test_relay(void **state)
{
    flare_peerid relay, target, r, t;
    flare_multiaddr ma, ra, base, out;
    peerid_of(&relay, QM2);
    peerid_of(&target, ED);
    must_parse(&ma, "/ip4/1.2.3.4/tcp/4001/p2p/" QM2 "/p2p-circuit/p2p/" ED);
    assert_true(flare_multiaddr_is_relayed(&ma));
    assert_int_equal(flare_multiaddr_relay_split(&ma, &ra, &r, &t), 0);
    assert_str(&ra, "/ip4/1.2.3.4/tcp/4001/p2p/" QM2);
    assert_int_equal(r.len, relay.len);
    assert_memory_equal(r.bytes, relay.bytes, relay.len);
    assert_int_equal(t.len, target.len);
    assert_memory_equal(t.bytes, target.bytes, target.len);
    /* without a target */
    must_parse(&ma, "/ip4/1.2.3.4/tcp/4001/p2p/" QM2 "/p2p-circuit");
    assert_int_equal(flare_multiaddr_relay_split(&ma, NULL, &r, &t), 0);
    assert_int_equal(t.len, 0);
    assert_int_equal(r.len, relay.len);
    /* errors */
    must_parse(&ma, "/ip4/1.2.3.4/tcp/4001/p2p/" QM2);
    assert_false(flare_multiaddr_is_relayed(&ma));
    assert_int_equal(flare_multiaddr_relay_split(&ma, &ra, &r, &t), FLARE_ERR_NOT_FOUND);
    must_parse(&ma, "/ip4/1.2.3.4/tcp/4001/p2p-circuit/p2p/" ED);
    assert_int_equal(flare_multiaddr_relay_split(&ma, &ra, &r, &t), FLARE_ERR_MALFORMED);

    /* make: relay_addr with and without /p2p/RELAY, with and without target */
    must_parse(&base, "/ip4/1.2.3.4/udp/4001/quic-v1");
    assert_int_equal(flare_multiaddr_make_relayed(&out, &base, &relay, &target), 0);
    assert_str(&out, "/ip4/1.2.3.4/udp/4001/quic-v1/p2p/" QM2 "/p2p-circuit/p2p/" ED);
    assert_int_equal(flare_multiaddr_make_relayed(&out, &base, &relay, NULL), 0);
    assert_str(&out, "/ip4/1.2.3.4/udp/4001/quic-v1/p2p/" QM2 "/p2p-circuit");
    assert_int_equal(flare_multiaddr_make_relayed(&out, &base, NULL, &target),
                     FLARE_ERR_INVALID_ARG);
    assert_int_equal(flare_multiaddr_with_peerid(&base, &relay), 0);
    assert_int_equal(flare_multiaddr_make_relayed(&base, &base, NULL, &target), 0); /* alias */
    assert_str(&base, "/ip4/1.2.3.4/udp/4001/quic-v1/p2p/" QM2 "/p2p-circuit/p2p/" ED);
    must_parse(&base, "/ip4/1.2.3.4/tcp/1/p2p/" QM2);
    assert_int_equal(flare_multiaddr_make_relayed(&out, &base, &relay, &target), 0);
    assert_str(&out, "/ip4/1.2.3.4/tcp/1/p2p/" QM2 "/p2p-circuit/p2p/" ED);
    assert_int_equal(flare_multiaddr_make_relayed(&out, &base, &target, NULL),
                     FLARE_ERR_PEER_ID_MISMATCH);
    /* split(make(x)) == x */
    assert_int_equal(flare_multiaddr_make_relayed(&out, &base, NULL, &target), 0);
    assert_int_equal(flare_multiaddr_relay_split(&out, &ra, &r, &t), 0);
    assert_true(flare_multiaddr_equal(&ra, &base));
}

static void test_classify(void **state)
{
    static const struct {
        const char *s;
        flare_ma_class c;
    } vec[] = {
        {"/ip4/8.8.8.8/tcp/1", FLARE_MA_PUBLIC},
        {"/ip4/1.1.1.1", FLARE_MA_PUBLIC},
        {"/ip4/10.1.2.3", FLARE_MA_PRIVATE},
        {"/ip4/172.16.0.1", FLARE_MA_PRIVATE},
        {"/ip4/172.31.255.255", FLARE_MA_PRIVATE},
        {"/ip4/172.32.0.1", FLARE_MA_PUBLIC},
        {"/ip4/172.15.255.255", FLARE_MA_PUBLIC},
        {"/ip4/192.168.1.1", FLARE_MA_PRIVATE},
        {"/ip4/127.0.0.1", FLARE_MA_LOOPBACK},
        {"/ip4/127.255.0.9", FLARE_MA_LOOPBACK},
        {"/ip4/169.254.3.4", FLARE_MA_LINK_LOCAL},
        {"/ip4/100.64.0.1", FLARE_MA_CGNAT},
        {"/ip4/100.127.255.255", FLARE_MA_CGNAT},
        {"/ip4/100.128.0.1", FLARE_MA_PUBLIC},
        {"/ip4/100.63.255.255", FLARE_MA_PUBLIC},
        {"/ip4/0.0.0.0/tcp/0", FLARE_MA_UNSPECIFIED},
        {"/ip4/192.0.2.7", FLARE_MA_DOC},
        {"/ip4/198.51.100.1", FLARE_MA_DOC},
        {"/ip4/203.0.113.200", FLARE_MA_DOC},
        {"/ip4/203.0.114.1", FLARE_MA_PUBLIC},
        {"/ip4/224.0.0.1", FLARE_MA_OTHER},
        {"/ip4/255.255.255.255", FLARE_MA_OTHER},
        {"/ip6/2606:4700::1111", FLARE_MA_PUBLIC},
        {"/ip6/::", FLARE_MA_UNSPECIFIED},
        {"/ip6/::1", FLARE_MA_LOOPBACK},
        {"/ip6/fe80::1", FLARE_MA_LINK_LOCAL},
        {"/ip6zone/eth0/ip6/fe80::1/udp/1", FLARE_MA_LINK_LOCAL},
        {"/ip6/febf::1", FLARE_MA_LINK_LOCAL},
        {"/ip6/fec0::1", FLARE_MA_OTHER},
        {"/ip6/fc00::1", FLARE_MA_PRIVATE},
        {"/ip6/fd12:3456::1", FLARE_MA_PRIVATE},
        {"/ip6/2001:db8::1", FLARE_MA_DOC},
        {"/ip6/2001:db9::1", FLARE_MA_PUBLIC},
        {"/ip6/3fff::1", FLARE_MA_DOC},
        {"/ip6/ff02::1", FLARE_MA_OTHER},
        {"/ip6/::ffff:10.0.0.1", FLARE_MA_PRIVATE},
        {"/ip6/::ffff:8.8.8.8", FLARE_MA_PUBLIC},
        {"/ip6/64:ff9b::100.64.0.1", FLARE_MA_CGNAT},
        {"/dns4/example.com/tcp/1", FLARE_MA_DNS},
        {"/dnsaddr/example.com", FLARE_MA_DNS},
        {"/dns/example.com", FLARE_MA_DNS},
        {"/p2p/" QM2, FLARE_MA_OTHER},
        {"/p2p-circuit/ip4/10.0.0.1", FLARE_MA_PRIVATE},
    };
    for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
        flare_multiaddr ma;
        must_parse(&ma, vec[i].s);
        flare_ma_class c = flare_multiaddr_classify(&ma);
        if (c != vec[i].c)
            fail_msg("%s: %s, want %s", vec[i].s, flare_ma_class_name(c),
                     flare_ma_class_name(vec[i].c));
    }
    flare_multiaddr empty = {0};
    assert_int_equal(flare_multiaddr_classify(&empty), FLARE_MA_OTHER);
    assert_true(flare_ma_class_is_public(FLARE_MA_PUBLIC, 0));
    assert_false(flare_ma_class_is_public(FLARE_MA_DOC, 0));
    assert_true(flare_ma_class_is_public(FLARE_MA_DOC, 1));
    assert_false(flare_ma_class_is_public(FLARE_MA_PRIVATE, 1));
    assert_false(flare_ma_class_is_public(FLARE_MA_CGNAT, 1));
    assert_false(flare_ma_class_is_public(FLARE_MA_DNS, 1));
    assert_string_equal(flare_ma_class_name(FLARE_MA_CGNAT), "cgnat");
    flare_ipaddr ip;
    flare_ipaddr_v4(&ip, 100, 100, 0, 1, 0);
    assert_int_equal(flare_ipaddr_classify(&ip), FLARE_MA_CGNAT);
}

static void test_ipaddr(void **state)
{
    flare_multiaddr ma;
    flare_ipaddr ip, back;
    int proto = 0;
    must_parse(&ma, "/ip4/1.2.3.4/tcp/4001/p2p/" QM2);
    assert_int_equal(flare_multiaddr_to_ipaddr(&ma, &ip, &proto), 0);
    assert_int_equal(ip.family, 4);
    assert_int_equal(ip.port, 4001);
    assert_int_equal(proto, FLARE_MA_TCP);
    assert_memory_equal(ip.ip, "\x01\x02\x03\x04", 4);
    assert_int_equal(flare_multiaddr_from_ipaddr(&ma, &ip, FLARE_MA_TCP), 0);
    assert_str(&ma, "/ip4/1.2.3.4/tcp/4001");
    assert_int_equal(flare_multiaddr_from_ipaddr(&ma, &ip, FLARE_MA_UDP), 0);
    assert_str(&ma, "/ip4/1.2.3.4/udp/4001/quic-v1");
    assert_int_equal(flare_multiaddr_to_ipaddr(&ma, &back, &proto), 0);
    assert_int_equal(proto, FLARE_MA_UDP);
    assert_true(flare_ipaddr_equal(&ip, &back));

    assert_int_equal(flare_ipaddr_parse(&ip, "[2001:db8::5]:65535"), 0);
    assert_int_equal(flare_multiaddr_from_ipaddr(&ma, &ip, FLARE_MA_UDP), 0);
    assert_str(&ma, "/ip6/2001:db8::5/udp/65535/quic-v1");
    assert_int_equal(flare_multiaddr_to_ipaddr(&ma, &back, NULL), 0);
    assert_true(flare_ipaddr_equal(&ip, &back));
    must_parse(&ma, "/ip6zone/eth0/ip6/fe80::1/tcp/5");
    assert_int_equal(flare_multiaddr_to_ipaddr(&ma, &back, &proto), 0);
    assert_int_equal(back.family, 6);
    assert_int_equal(back.port, 5);

    static const char *unsupported[] = {"/ip4/1.2.3.4", "/dns4/a.io/tcp/1", "/tcp/1/ip4/1.2.3.4",
                                        "/ip4/1.2.3.4/sctp/1", "/ip6zone/x"};
    for (size_t i = 0; i < sizeof(unsupported) / sizeof(unsupported[0]); i++) {
        must_parse(&ma, unsupported[i]);
        assert_int_equal(flare_multiaddr_to_ipaddr(&ma, &ip, &proto), FLARE_ERR_UNSUPPORTED);
    }
    flare_multiaddr empty = {0};
    assert_int_equal(flare_multiaddr_to_ipaddr(&empty, &ip, &proto), FLARE_ERR_UNSUPPORTED);
    flare_ipaddr_v4(&ip, 1, 2, 3, 4, 5);
    assert_int_equal(flare_multiaddr_from_ipaddr(&ma, &ip, FLARE_MA_SCTP), FLARE_ERR_INVALID_ARG);
    ip.family = 0;
    assert_int_equal(flare_multiaddr_from_ipaddr(&ma, &ip, FLARE_MA_TCP), FLARE_ERR_INVALID_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_strings),  cmocka_unit_test(test_invalid_strings),
        cmocka_unit_test(test_binary_vectors), cmocka_unit_test(test_round_trip_text),
        cmocka_unit_test(test_bad_bytes),      cmocka_unit_test(test_text_too_large),
        cmocka_unit_test(test_iterate),        cmocka_unit_test(test_codes),
        cmocka_unit_test(test_encapsulate),    cmocka_unit_test(test_peerid),
        cmocka_unit_test(test_relay),          cmocka_unit_test(test_classify),
        cmocka_unit_test(test_ipaddr),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
