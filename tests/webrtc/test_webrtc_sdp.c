/* The SDP subset: a browser's offer, js-libp2p's trickled candidates, our
 * writer read back, and malformed or hostile descriptions. */
#include "support/test.h"

#include "transport/webrtc/sdp.h"
#include "transport/webrtc/signal.h"

/* The shape of a headless Chromium data-channel offer. */
static const char chrome_offer[] =
    "v=0\r\n"
    "o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n"
    "s=-\r\n"
    "t=0 0\r\n"
    "a=group:BUNDLE 0\r\n"
    "a=extmap-allow-mixed\r\n"
    "a=msid-semantic: WMS\r\n"
    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"
    "c=IN IP4 0.0.0.0\r\n"
    "a=candidate:2999745851 1 udp 2122260223 192.168.56.1 54321 typ host generation 0 "
    "network-id 1\r\n"
    "a=candidate:1 1 tcp 1518280447 192.168.56.1 9 typ host tcptype active\r\n"
    "a=candidate:3 1 udp 2122194687 8f2b3c4d-1111-2222-3333-444455556666.local 50000 typ host\r\n"
    "a=ice-ufrag:AbCd\r\n"
    "a=ice-pwd:0123456789abcdefABCDEF+/\r\n"
    "a=ice-options:trickle\r\n"
    "a=fingerprint:sha-256 "
    "3E:79:AF:40:D6:05:96:17:A0:D8:3B:83:A5:2C:E7:3B:0C:1F:37:A7:2C:60:43:AD:29:69:E2:35:1B:DC:"
    "A8:70\r\n"
    "a=setup:actpass\r\n"
    "a=mid:0\r\n"
    "a=sctp-port:5000\r\n"
    "a=max-message-size:262144\r\n";

static void test_browser_offer(void **state)
{
    flare__sdp d;
    assert_int_equal(flare__sdp_parse(chrome_offer, strlen(chrome_offer), &d), 0);
    assert_string_equal(d.ufrag, "AbCd");
    assert_string_equal(d.pwd, "0123456789abcdefABCDEF+/");
    assert_true(d.has_fp);
    assert_int_equal(d.fp[0], 0x3e);
    assert_int_equal(d.fp[31], 0x70);
    assert_int_equal(d.setup, FLARE__SDP_SETUP_ACTPASS);
    assert_int_equal(d.sctp_port, 5000);
    assert_int_equal(d.max_message_size, 262144);
    assert_string_equal(d.mid, "0");
    assert_false(d.ice_lite);
    /* The UDP candidate only: TCP and mDNS names are skipped. */
    assert_int_equal(d.ncand, 1);
    char s[FLARE_IPADDR_STR_MAX];
    flare_ipaddr_to_string(&d.cand[0].addr, s, sizeof(s));
    assert_string_equal(s, "192.168.56.1:54321");
    assert_int_equal(d.cand[0].type, FLARE__CAND_HOST);
    assert_int_equal(d.cand[0].priority, 2122260223u);
}

static void test_trickled_candidates(void **state)
{
    flare__sdp_cand c;
    const char *j = "{\"candidate\":\"candidate:842163049 1 udp 1677729535 203.0.113.7 61000 typ "
                    "srflx raddr 10.0.0.2 rport 61000 generation 0 ufrag AbCd network-cost 999\","
                    "\"sdpMid\":\"0\",\"sdpMLineIndex\":0,\"usernameFragment\":\"AbCd\"}";
    assert_int_equal(flare__sdp_cand_json_parse(j, strlen(j), &c), 0);
    assert_int_equal(c.type, FLARE__CAND_SRFLX);
    assert_int_equal(c.addr.port, 61000);
    assert_int_equal(c.addr.ip[0], 203);
    const char *v6 = "{\"candidate\":\"candidate:1 1 UDP 100 2001:db8::5 4000 typ host\"}";
    assert_int_equal(flare__sdp_cand_json_parse(v6, strlen(v6), &c), 0);
    assert_int_equal(c.addr.family, 6);
    /* The end-of-candidates marker. */
    const char *end = "{\"candidate\":\"\",\"sdpMid\":\"0\",\"sdpMLineIndex\":0}";
    assert_int_equal(flare__sdp_cand_json_parse(end, strlen(end), &c), FLARE_ERR_NOT_FOUND);
    const char *none = "null";
    assert_int_equal(flare__sdp_cand_json_parse(none, 4, &c), FLARE_ERR_NOT_FOUND);
    /* Bad ones. */
    const char *bad[] = {
        "{\"candidate\":\"candidate:1 1 udp 1 1.2.3.4 0 typ host\"}",           /* port 0 */
        "{\"candidate\":\"candidate:1 1 udp 1 1.2.3.4 70000 typ host\"}",       /* port */
        "{\"candidate\":\"candidate:1 1 udp 99999999999 1.2.3.4 5 typ host\"}", /* priority */
        "{\"candidate\":\"candidate:1 1 udp 1 1.2.3.999 5 typ host\"}",         /* address */
        "{\"candidate\":\"candidate:1 1 udp 1 1.2.3.4 5 typ alien\"}",          /* type */
        "{\"candidate\":\"candidate:1 1 udp 1 1.2.3.4 5\"}",                    /* no typ */
        "{\"candidate\":\"candidate:1 1 udp 1 1.2.3.4 5 typ host",              /* unterminated */
        "{\"candidate\":\"cand\\u0000idate\"}",                                 /* escapes */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_true(flare__sdp_cand_json_parse(bad[i], strlen(bad[i]), &c) < 0);
    const char *tcp = "candidate:1 1 tcp 1 1.2.3.4 5 typ host";
    assert_int_equal(flare__sdp_cand_parse(tcp, strlen(tcp), &c), FLARE_ERR_UNSUPPORTED);
    const char *rtcp = "candidate:1 2 udp 1 1.2.3.4 5 typ host";
    assert_int_equal(flare__sdp_cand_parse(rtcp, strlen(rtcp), &c), FLARE_ERR_UNSUPPORTED);
}

static void test_write_and_read_back(void **state)
{
    flare__sdp d = {0}, back;
    strcpy(d.ufrag, "libp2p+webrtc+v1/0123456789abcdef0123456789abcdef");
    strcpy(d.pwd, "libp2p+webrtc+v1/0123456789abcdef0123456789abcdef");
    for (int i = 0; i < 32; i++)
        d.fp[i] = (uint8_t)(i * 8);
    d.has_fp = 1;
    d.setup = FLARE__SDP_SETUP_PASSIVE;
    d.ice_lite = 1;
    d.ncand = 2;
    flare_ipaddr_parse(&d.cand[0].addr, "10.1.2.3:4001");
    d.cand[0].priority = 2130706431u;
    flare_ipaddr_parse(&d.cand[1].addr, "[2001:db8::1]:4002");
    d.cand[1].type = FLARE__CAND_SRFLX;
    flare_buf b;
    flare_buf_init(&b, NULL);
    assert_int_equal(flare__sdp_write(&d, 42, &b), 0);
    assert_int_equal(flare__sdp_parse((const char *)b.base, b.len, &back), 0);
    assert_string_equal(back.ufrag, d.ufrag);
    assert_string_equal(back.pwd, d.pwd);
    assert_memory_equal(back.fp, d.fp, 32);
    assert_int_equal(back.setup, FLARE__SDP_SETUP_PASSIVE);
    assert_true(back.ice_lite);
    assert_int_equal(back.max_message_size, 16384);
    assert_int_equal(back.ncand, 2);
    assert_true(flare_ipaddr_equal(&back.cand[0].addr, &d.cand[0].addr));
    assert_true(flare_ipaddr_equal(&back.cand[1].addr, &d.cand[1].addr));
    assert_int_equal(back.cand[1].type, FLARE__CAND_SRFLX);
    flare_buf_reset(&b);
    assert_int_equal(flare__sdp_cand_json_write(&d.cand[1], &b), 0);
    flare__sdp_cand c;
    assert_int_equal(flare__sdp_cand_json_parse((const char *)b.base, b.len, &c), 0);
    assert_true(flare_ipaddr_equal(&c.addr, &d.cand[1].addr));
    flare_buf_free(&b);
}

/* Each line of the offer broken in turn: a clear error, never a crash;
 * what must be there is required. */
static void test_bad_descriptions(void **state)
{
    flare__sdp d;
    const char *no_app = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=ice-ufrag:AbCd\r\n";
    assert_int_equal(flare__sdp_parse(no_app, strlen(no_app), &d), FLARE_ERR_UNSUPPORTED);
    const char *no_fp = "v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"
                        "a=ice-ufrag:AbCd\r\na=ice-pwd:0123456789abcdefABCDEF\r\n";
    assert_int_equal(flare__sdp_parse(no_fp, strlen(no_fp), &d), FLARE_ERR_PROTO);
    const char *sha1 = "v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"
                       "a=fingerprint:sha-1 AB:CD\r\n";
    assert_int_equal(flare__sdp_parse(sha1, strlen(sha1), &d), FLARE_ERR_UNSUPPORTED);
    const char *short_pwd = "v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"
                            "a=ice-pwd:short\r\n";
    assert_int_equal(flare__sdp_parse(short_pwd, strlen(short_pwd), &d), FLARE_ERR_MALFORMED);
    const char *bad_char = "v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"
                           "a=ice-ufrag:ab cd\r\n";
    assert_int_equal(flare__sdp_parse(bad_char, strlen(bad_char), &d), FLARE_ERR_MALFORMED);
    const char *noeq = "v=0\r\nhello\r\n";
    assert_int_equal(flare__sdp_parse(noeq, strlen(noeq), &d), FLARE_ERR_MALFORMED);
    /* Too big, too many lines. */
    char *big = malloc(FLARE__SDP_MAX_LEN + 2);
    memset(big, 'a', FLARE__SDP_MAX_LEN + 1);
    assert_int_equal(flare__sdp_parse(big, FLARE__SDP_MAX_LEN + 1, &d), FLARE_ERR_TOO_LARGE);
    size_t n = 0;
    for (int i = 0; i < 300; i++) {
        memcpy(big + n, "a=x\n", 4);
        n += 4;
    }
    assert_int_equal(flare__sdp_parse(big, n, &d), FLARE_ERR_TOO_LARGE);
    free(big);
    /* Many candidates: only the first FLARE__SDP_MAX_CANDS are kept. */
    flare_buf b;
    flare_buf_init(&b, NULL);
    flare_buf_append(&b, chrome_offer, strlen(chrome_offer));
    for (int i = 0; i < 100; i++) {
        char line[100];
        int k = snprintf(line, sizeof(line), "a=candidate:%d 1 udp 1 10.0.0.%d 5 typ host\r\n", i,
                         i % 250);
        flare_buf_append(&b, line, (size_t)k);
    }
    assert_int_equal(flare__sdp_parse((const char *)b.base, b.len, &d), 0);
    assert_int_equal(d.ncand, FLARE__SDP_MAX_CANDS);
    /* Every prefix of a good offer either parses or fails cleanly. */
    size_t good = strlen(chrome_offer);
    for (size_t cut = 0; cut < good; cut += 7)
        (void)flare__sdp_parse(chrome_offer, cut, &d);
    flare_buf_free(&b);
}

/* /webrtc-signaling messages: an offer and a candidate back to back, cut
 * anywhere; bad ones refused. */
/* Reflexive candidates carry raddr/rport (Firefox refuses them without);
 * an answer names the offer's mid. Both read back. */
static void test_srflx_and_mid(void **state)
{
    flare__sdp_cand c, back;
    memset(&c, 0, sizeof(c));
    assert_int_equal(flare_ipaddr_parse(&c.addr, "203.0.113.7:5000"), 0);
    c.type = FLARE__CAND_SRFLX;
    c.priority = 1686052607;
    c.component = 1;
    flare_buf b;
    flare_buf_init(&b, NULL);
    assert_int_equal(flare__sdp_cand_json_write(&c, &b), 0);
    flare_buf_append_byte(&b, 0);
    assert_non_null(strstr((char *)b.base, "typ srflx raddr 0.0.0.0 rport 0\""));
    assert_int_equal(flare__sdp_cand_json_parse((char *)b.base, b.len - 1, &back), 0);
    assert_int_equal(back.type, FLARE__CAND_SRFLX);
    assert_true(flare_ipaddr_equal(&back.addr, &c.addr));
    flare_buf_reset(&b);
    flare__sdp d, d2;
    memset(&d, 0, sizeof(d));
    strcpy(d.ufrag, "abcd");
    strcpy(d.pwd, "0123456789012345678901");
    d.has_fp = 1;
    strcpy(d.mid, "data");
    assert_int_equal(flare__sdp_write(&d, 1, &b), 0);
    assert_int_equal(flare__sdp_parse((char *)b.base, b.len, &d2), 0);
    assert_string_equal(d2.mid, "data");
    strcpy(d.mid, "bad mid\r\na=x");
    flare_buf_reset(&b);
    assert_int_equal(flare__sdp_write(&d, 1, &b), 0);
    assert_int_equal(flare__sdp_parse((char *)b.base, b.len, &d2), 0);
    assert_string_equal(d2.mid, "0");
    flare_buf_free(&b);
}

static void test_signal_messages(void **state)
{
    flare_buf b;
    flare_buf_init(&b, NULL);
    assert_int_equal(
        flare__signal_encode(&b, FLARE__SIGNAL_SDP_OFFER, chrome_offer, strlen(chrome_offer)), 0);
    size_t first = b.len;
    const char *j = "{\"candidate\":\"candidate:1 1 udp 1 10.0.0.1 5 typ host\"}";
    assert_int_equal(flare__signal_encode(&b, FLARE__SIGNAL_ICE_CANDIDATE, j, strlen(j)), 0);
    flare__signal_msg m;
    for (size_t cut = 0; cut < first; cut += 101)
        assert_int_equal(flare__signal_parse(b.base, cut, &m), FLARE_ERR_AGAIN);
    assert_int_equal(flare__signal_parse(b.base, b.len, &m), (long)first);
    assert_int_equal(m.type, FLARE__SIGNAL_SDP_OFFER);
    flare__sdp d;
    assert_int_equal(flare__sdp_parse(m.data, m.len, &d), 0);
    assert_int_equal(flare__signal_parse(b.base + first, b.len - first, &m), (long)(b.len - first));
    assert_int_equal(m.type, FLARE__SIGNAL_ICE_CANDIDATE);
    flare__sdp_cand c;
    assert_int_equal(flare__sdp_cand_json_parse(m.data, m.len, &c), 0);
    /* proto3 leaves type 0 out. */
    const uint8_t bare[] = {0x03, 0x12, 0x01, 'x'};
    assert_int_equal(flare__signal_parse(bare, 4, &m), 4);
    assert_int_equal(m.type, FLARE__SIGNAL_SDP_OFFER);
    const uint8_t unknown[] = {0x02, 0x08, 0x07};
    assert_int_equal(flare__signal_parse(unknown, 3, &m), FLARE_ERR_UNKNOWN_CODE);
    const uint8_t big[] = {0xff, 0xff, 0x03};
    assert_int_equal(flare__signal_parse(big, 3, &m), FLARE_ERR_TOO_LARGE);
    const uint8_t wire[] = {0x02, 0x0a, 0x00};
    assert_int_equal(flare__signal_parse(wire, 3, &m), FLARE_ERR_MALFORMED);
    flare_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_browser_offer),       cmocka_unit_test(test_trickled_candidates),
        cmocka_unit_test(test_write_and_read_back), cmocka_unit_test(test_bad_descriptions),
        cmocka_unit_test(test_signal_messages),     cmocka_unit_test(test_srflx_and_mid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
