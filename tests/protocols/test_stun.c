/* STUN: the RFC 5769 sample messages (integrity, fingerprint, IPv4 and
 * IPv6 XOR-MAPPED-ADDRESS), building round trips, hostile input (bad
 * integrity, bad fingerprint, truncated, absurd lengths, too many
 * attributes), the client transaction's retransmissions, the server's
 * answer (no amplification) and the rate limiter. */
#include "support/test.h"

#include "flare/stun.h"

#define MS FLARE_NS_PER_MS

static const char *pwd = "VOkJxbRl1RmTxUk/WvJxBt";

/* RFC 5769 section 2.1 to 2.3 (padding bytes 0x20 on purpose). */
static const char *req_hex =
    "000100582112a442b7e7a701bc34d686fa87dfae802200105354554e207465737420636c69656e74"
    "002400046e0001ff80290008932ff9b151263b36000600096576746a3a68367659202020"
    "000800149aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a280280004e57a3bcf";
static const char *resp4_hex =
    "0101003c2112a442b7e7a701bc34d686fa87dfae8022000b7465737420766563746f7220"
    "002000080001a147e112a643000800142b91f599fd9e90c38c7489f92af9ba53f06be7d7"
    "80280004c07d4c96";
static const char *resp6_hex =
    "010100482112a442b7e7a701bc34d686fa87dfae8022000b7465737420766563746f7220"
    "002000140002a1470113a9faa5d3f179bc25f4b5bed2b9d900080014a382954e4be67bf11784c97c"
    "8292c275bfe3ed4180280004c8fb0b4c";

static size_t unhex(const char *h, uint8_t *out)
{
    return flare_test_unhex(h, out, FLARE_STUN_MAX_MSG);
}

static void test_rfc5769_request(void **st)
{
    (void)st;
    uint8_t b[FLARE_STUN_MAX_MSG];
    size_t n = unhex(req_hex, b);
    flare_stun_msg m;
    assert_true(flare_stun_is_stun(b, n));
    assert_int_equal(flare_stun_parse(&m, b, n), 0);
    assert_int_equal(m.method, FLARE_STUN_BINDING);
    assert_int_equal(m.cls, FLARE_STUN_REQUEST);
    assert_int_equal(m.unknown_required, 0);
    assert_int_equal(flare_stun_check_integrity(&m, (const uint8_t *)pwd, strlen(pwd)), 0);
    assert_int_equal(flare_stun_check_integrity(&m, (const uint8_t *)"x", 1),
                     FLARE_ERR_BAD_SIGNATURE);
    const flare_stun_attr *u = flare_stun_find(&m, FLARE_STUN_ATTR_USERNAME);
    assert_non_null(u);
    assert_int_equal(u->len, 9);
    assert_memory_equal(b + u->off, "evtj:h6vY", 9);
    uint32_t prio;
    uint64_t tie;
    assert_int_equal(flare_stun_get_u32(&m, FLARE_STUN_ATTR_PRIORITY, &prio), 0);
    assert_int_equal(prio, 0x6e0001ff);
    assert_int_equal(flare_stun_get_u64(&m, FLARE_STUN_ATTR_ICE_CONTROLLED, &tie), 0);
    assert_true(tie == 0x932ff9b151263b36ull);
    assert_int_equal(flare_stun_get_u64(&m, FLARE_STUN_ATTR_ICE_CONTROLLING, &tie),
                     FLARE_ERR_NOT_FOUND);

    /* Rebuilt from its parts, the request is the RFC's byte for byte
     * (except the padding, which we write as zeros). */
    uint8_t o[256];
    flare_stun_builder bl;
    flare_stun_build_init(&bl, o, sizeof(o), FLARE_STUN_BINDING, FLARE_STUN_REQUEST, m.txid);
    flare_stun_add_attr(&bl, FLARE_STUN_ATTR_SOFTWARE, "STUN test client", 16);
    flare_stun_add_u32(&bl, FLARE_STUN_ATTR_PRIORITY, prio);
    flare_stun_add_u64(&bl, FLARE_STUN_ATTR_ICE_CONTROLLED, tie);
    flare_stun_add_attr(&bl, FLARE_STUN_ATTR_USERNAME, "evtj:h6vY", 9);
    b[73] = b[74] = b[75] = 0;
    flare_stun_add_integrity(&bl, (const uint8_t *)pwd, strlen(pwd));
    flare_stun_add_fingerprint(&bl);
    assert_int_equal(flare_stun_build_finish(&bl), (int)n);
    flare_stun_msg m2;
    assert_int_equal(flare_stun_parse(&m2, o, n), 0);
    assert_int_equal(flare_stun_check_integrity(&m2, (const uint8_t *)pwd, strlen(pwd)), 0);
    /* Up to the integrity attribute the bytes agree (zero padding in both). */
    assert_memory_equal(o, b, m.integrity_off);
}

static void check_response(const char *hex, const char *want)
{
    uint8_t b[FLARE_STUN_MAX_MSG];
    size_t n = unhex(hex, b);
    flare_stun_msg m;
    assert_int_equal(flare_stun_parse(&m, b, n), 0);
    assert_int_equal(m.cls, FLARE_STUN_SUCCESS);
    assert_int_equal(flare_stun_check_integrity(&m, (const uint8_t *)pwd, strlen(pwd)), 0);
    flare_ipaddr a, w;
    assert_int_equal(flare_stun_get_addr(&m, FLARE_STUN_ATTR_XOR_MAPPED_ADDRESS, &a), 0);
    assert_int_equal(flare_ipaddr_parse(&w, want), 0);
    assert_true(flare_ipaddr_equal(&a, &w));

    /* Our encoding of the same address is the RFC's. */
    uint8_t o[128];
    flare_stun_builder bl;
    flare_stun_build_init(&bl, o, sizeof(o), FLARE_STUN_BINDING, FLARE_STUN_SUCCESS, m.txid);
    flare_stun_add_addr(&bl, FLARE_STUN_ATTR_XOR_MAPPED_ADDRESS, &a);
    assert_true(flare_stun_build_finish(&bl) > 0);
    const flare_stun_attr *x = flare_stun_find(&m, FLARE_STUN_ATTR_XOR_MAPPED_ADDRESS);
    assert_memory_equal(o + 24, b + x->off, x->len);

    /* One flipped bit: the fingerprint refuses the message; with the
     * fingerprint recomputed, the integrity check still catches it. */
    b[30] ^= 1;
    assert_int_equal(flare_stun_parse(&m, b, n), FLARE_ERR_BAD_SIGNATURE);
    uint32_t crc = flare_stun_crc32(b, n - 8) ^ FLARE_STUN_FINGERPRINT_XOR;
    b[n - 4] = (uint8_t)(crc >> 24);
    b[n - 3] = (uint8_t)(crc >> 16);
    b[n - 2] = (uint8_t)(crc >> 8);
    b[n - 1] = (uint8_t)crc;
    assert_int_equal(flare_stun_parse(&m, b, n), 0);
    assert_int_equal(flare_stun_check_integrity(&m, (const uint8_t *)pwd, strlen(pwd)),
                     FLARE_ERR_BAD_SIGNATURE);
}

static void test_rfc5769_responses(void **st)
{
    (void)st;
    check_response(resp4_hex, "192.0.2.1:32853");
    check_response(resp6_hex, "[2001:db8:1234:5678:11:2233:4455:6677]:32853");
}

static void test_build_roundtrip(void **st)
{
    (void)st;
    uint8_t txid[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, o[256];
    flare_stun_builder bl;
    flare_stun_build_init(&bl, o, sizeof(o), FLARE_STUN_BINDING, FLARE_STUN_ERROR, txid);
    flare_stun_add_error(&bl, 487, "Role Conflict");
    flare_stun_add_attr(&bl, FLARE_STUN_ATTR_USE_CANDIDATE, NULL, 0);
    flare_stun_add_integrity(&bl, (const uint8_t *)"k", 1);
    flare_stun_add_integrity_sha256(&bl, (const uint8_t *)"k", 1);
    flare_stun_add_fingerprint(&bl);
    int n = flare_stun_build_finish(&bl);
    assert_true(n > 0);
    flare_stun_msg m;
    assert_int_equal(flare_stun_parse(&m, o, (size_t)n), 0);
    assert_int_equal(m.cls, FLARE_STUN_ERROR);
    int code;
    const char *r;
    size_t rl;
    assert_int_equal(flare_stun_get_error(&m, &code, &r, &rl), 0);
    assert_int_equal(code, 487);
    assert_int_equal(rl, 13);
    assert_non_null(flare_stun_find(&m, FLARE_STUN_ATTR_USE_CANDIDATE));
    assert_int_equal(flare_stun_check_integrity(&m, (const uint8_t *)"k", 1), 0);
    assert_int_equal(flare_stun_check_integrity_sha256(&m, (const uint8_t *)"k", 1), 0);
    assert_int_equal(flare_stun_check_integrity_sha256(&m, (const uint8_t *)"j", 1),
                     FLARE_ERR_BAD_SIGNATURE);

    /* Methods above 0x7F survive the bit shuffle. */
    flare_stun_build_init(&bl, o, sizeof(o), 0xABC, FLARE_STUN_INDICATION, txid);
    n = flare_stun_build_finish(&bl);
    assert_int_equal(flare_stun_parse(&m, o, (size_t)n), 0);
    assert_int_equal(m.method, 0xABC);
    assert_int_equal(m.cls, FLARE_STUN_INDICATION);

    /* Too small a buffer is an error, not an overflow. */
    flare_stun_build_init(&bl, o, 30, FLARE_STUN_BINDING, FLARE_STUN_REQUEST, txid);
    flare_stun_add_u64(&bl, FLARE_STUN_ATTR_ICE_CONTROLLING, 1);
    assert_int_equal(flare_stun_build_finish(&bl), FLARE_ERR_BUFFER_TOO_SMALL);
}

static void test_bad_input(void **st)
{
    (void)st;
    uint8_t b[FLARE_STUN_MAX_MSG + 8];
    size_t n = unhex(req_hex, b);
    flare_stun_msg m;
    for (size_t k = 0; k < n; k++) /* every truncation */
        assert_true(flare_stun_parse(&m, b, k) < 0);
    assert_int_equal(flare_stun_parse(&m, b, 19), FLARE_ERR_TRUNCATED);
    b[2] = 0xFF; /* absurd length */
    b[3] = 0xFC;
    assert_int_equal(flare_stun_parse(&m, b, n), FLARE_ERR_TRUNCATED);
    assert_false(flare_stun_is_stun(b, n));
    n = unhex(req_hex, b);
    b[22] = 0xFF; /* SOFTWARE length past the end */
    assert_int_equal(flare_stun_parse(&m, b, n), FLARE_ERR_MALFORMED);
    n = unhex(req_hex, b);
    b[4] = 0; /* no magic cookie (RFC 3489) */
    assert_int_equal(flare_stun_parse(&m, b, n), FLARE_ERR_MALFORMED);
    n = unhex(req_hex, b);
    b[0] = 0x40; /* top bits */
    assert_int_equal(flare_stun_parse(&m, b, n), FLARE_ERR_MALFORMED);
    n = unhex(req_hex, b);
    b[n - 1] ^= 0xFF; /* fingerprint */
    assert_int_equal(flare_stun_parse(&m, b, n), FLARE_ERR_BAD_SIGNATURE);
    n = unhex(req_hex, b);
    b[80] ^= 1; /* integrity value (fingerprint now wrong too) */
    assert_int_equal(flare_stun_parse(&m, b, n), FLARE_ERR_BAD_SIGNATURE);
    assert_int_equal(flare_stun_parse(&m, b, FLARE_STUN_MAX_MSG + 4), FLARE_ERR_TOO_LARGE);

    /* More attributes than we keep. */
    uint8_t txid[12] = {0}, o[FLARE_STUN_MAX_MSG];
    flare_stun_builder bl;
    flare_stun_build_init(&bl, o, sizeof(o), FLARE_STUN_BINDING, FLARE_STUN_REQUEST, txid);
    for (int i = 0; i < FLARE_STUN_MAX_ATTRS + 1; i++)
        flare_stun_add_attr(&bl, FLARE_STUN_ATTR_SOFTWARE, "x", 1);
    int len = flare_stun_build_finish(&bl);
    assert_int_equal(flare_stun_parse(&m, o, (size_t)len), FLARE_ERR_LIMIT);

    /* An attribute after FINGERPRINT; a wrong-sized integrity attribute. */
    flare_stun_build_init(&bl, o, sizeof(o), FLARE_STUN_BINDING, FLARE_STUN_REQUEST, txid);
    flare_stun_add_fingerprint(&bl);
    flare_stun_add_attr(&bl, FLARE_STUN_ATTR_SOFTWARE, "x", 1);
    len = flare_stun_build_finish(&bl);
    assert_int_equal(flare_stun_parse(&m, o, (size_t)len), FLARE_ERR_MALFORMED);
    flare_stun_build_init(&bl, o, sizeof(o), FLARE_STUN_BINDING, FLARE_STUN_REQUEST, txid);
    flare_stun_add_attr(&bl, FLARE_STUN_ATTR_MESSAGE_INTEGRITY, "short", 5);
    len = flare_stun_build_finish(&bl);
    assert_int_equal(flare_stun_parse(&m, o, (size_t)len), FLARE_ERR_MALFORMED);

    /* Bad address families and lengths decode to errors. */
    flare_stun_build_init(&bl, o, sizeof(o), FLARE_STUN_BINDING, FLARE_STUN_SUCCESS, txid);
    flare_stun_add_attr(&bl, FLARE_STUN_ATTR_XOR_MAPPED_ADDRESS, "\0\3\0\0\1\2\3\4", 8);
    flare_stun_add_attr(&bl, FLARE_STUN_ATTR_ERROR_CODE, "\0\0\11\0", 4);
    flare_stun_add_attr(&bl, FLARE_STUN_ATTR_PRIORITY, "\0\0", 2);
    len = flare_stun_build_finish(&bl);
    assert_int_equal(flare_stun_parse(&m, o, (size_t)len), 0);
    flare_ipaddr a;
    int code;
    uint32_t p;
    assert_int_equal(flare_stun_get_addr(&m, FLARE_STUN_ATTR_XOR_MAPPED_ADDRESS, &a),
                     FLARE_ERR_MALFORMED);
    assert_int_equal(flare_stun_get_error(&m, &code, NULL, NULL), FLARE_ERR_MALFORMED);
    assert_int_equal(flare_stun_get_u32(&m, FLARE_STUN_ATTR_PRIORITY, &p), FLARE_ERR_MALFORMED);
    assert_int_equal(flare_stun_check_integrity(&m, (const uint8_t *)"k", 1), FLARE_ERR_NOT_FOUND);
}

static int make_req(uint8_t *o, size_t cap, uint8_t id, int fp)
{
    uint8_t txid[12] = {id};
    flare_stun_builder bl;
    flare_stun_build_init(&bl, o, cap, FLARE_STUN_BINDING, FLARE_STUN_REQUEST, txid);
    if (fp)
        flare_stun_add_fingerprint(&bl);
    return flare_stun_build_finish(&bl);
}

static void test_transaction(void **st)
{
    (void)st;
    uint8_t req[64], out[FLARE_STUN_TXN_MAX_REQ];
    int n = make_req(req, sizeof(req), 7, 0);
    flare_stun_txn t;
    flare_stun_txn_settings cfg;
    flare_stun_txn_settings_default(&cfg);
    assert_int_equal(flare_stun_txn_start(&t, &cfg, req, (size_t)n, 1000 * MS), 0);
    /* Sends at 0, 500, 1500, 3500, 7500, 15500, 31500 ms; fails 8000 ms
     * after the last (RFC 8489 section 6.2.1: 39.5 s in all). */
    flare_tstamp now = 1000 * MS;
    flare_tstamp at[7];
    int sends = 0, rv;
    while ((rv = flare_stun_txn_poll_send(&t, now, out, sizeof(out))) != FLARE_ERR_TIMEOUT) {
        if (rv > 0) {
            assert_int_equal(rv, n);
            assert_true(sends < 7);
            at[sends++] = now;
        }
        now = flare_stun_txn_expiry(&t);
    }
    assert_int_equal(sends, 7);
    assert_true(at[1] - at[0] == 500 * MS && at[6] - at[0] == 31500 * MS);
    assert_true(now - 1000 * MS == 39500 * MS);
    assert_true(flare_stun_txn_expiry(&t) == FLARE_TSTAMP_NEVER);

    /* A response matches only its own transaction. */
    assert_int_equal(flare_stun_txn_start(&t, &cfg, req, (size_t)n, 0), 0);
    assert_true(flare_stun_txn_poll_send(&t, 0, out, sizeof(out)) > 0);
    flare_ipaddr from;
    flare_ipaddr_parse(&from, "203.0.113.9:4444");
    uint8_t resp[FLARE_STUN_SERVER_MAX_RESP];
    int rn = flare_stun_server_answer(req, (size_t)n, &from, resp, sizeof(resp));
    assert_true(rn > 0);
    flare_stun_msg m;
    assert_int_equal(flare_stun_parse(&m, resp, (size_t)rn), 0);
    m.txid[0] ^= 1;
    assert_int_equal(flare_stun_txn_match(&t, &m), 0);
    m.txid[0] ^= 1;
    assert_int_equal(flare_stun_txn_match(&t, &m), 1);
    assert_int_equal(t.state, FLARE_STUN_TXN_DONE);
    assert_int_equal(flare_stun_txn_match(&t, &m), 0);
    flare_ipaddr got;
    assert_int_equal(flare_stun_get_addr(&m, FLARE_STUN_ATTR_XOR_MAPPED_ADDRESS, &got), 0);
    assert_true(flare_ipaddr_equal(&got, &from));

    /* Not a request; settings out of bounds. */
    assert_int_equal(flare_stun_txn_start(&t, &cfg, resp, (size_t)rn, 0), FLARE_ERR_INVALID_ARG);
    cfg.max_sends = 100;
    assert_int_equal(flare_stun_txn_start(&t, &cfg, req, (size_t)n, 0), FLARE_ERR_INVALID_ARG);
}

static void test_server_answer(void **st)
{
    (void)st;
    uint8_t req[FLARE_STUN_MAX_MSG], out[FLARE_STUN_MAX_MSG];
    flare_ipaddr v6;
    flare_ipaddr_parse(&v6, "[2001:db8::1]:9");
    /* With a fingerprint, IPv6: the largest answer, still bounded. */
    int n = make_req(req, sizeof(req), 1, 1);
    int rn = flare_stun_server_answer(req, (size_t)n, &v6, out, sizeof(out));
    assert_int_equal(rn, FLARE_STUN_SERVER_MAX_RESP);
    assert_true(rn <= n + FLARE_STUN_SERVER_GROWTH);
    flare_stun_msg m;
    assert_int_equal(flare_stun_parse(&m, out, (size_t)rn), 0);
    assert_true(m.fingerprint_off > 0);
    /* The minimal request. */
    n = make_req(req, sizeof(req), 1, 0);
    rn = flare_stun_server_answer(req, (size_t)n, &v6, out, sizeof(out));
    assert_true(rn > 0 && rn <= n + FLARE_STUN_SERVER_GROWTH);
    /* Silence: a response, an indication, garbage, integrity we cannot
     * check. */
    uint8_t b[FLARE_STUN_MAX_MSG];
    size_t bn = unhex(resp4_hex, b);
    assert_int_equal(flare_stun_server_answer(b, bn, &v6, out, sizeof(out)), 0);
    bn = unhex(req_hex, b);
    assert_int_equal(flare_stun_server_answer(b, bn, &v6, out, sizeof(out)), 0);
    assert_int_equal(flare_stun_server_answer(b, 10, &v6, out, sizeof(out)), 0);
    uint8_t txid[12] = {0};
    flare_stun_builder bl;
    flare_stun_build_init(&bl, req, sizeof(req), FLARE_STUN_BINDING, FLARE_STUN_REQUEST, txid);
    flare_stun_add_attr(&bl, 0x7777, "abcd", 4);
    n = flare_stun_build_finish(&bl);
    /* An unknown comprehension-required attribute: 420 naming it, small. */
    rn = flare_stun_server_answer(req, (size_t)n, &v6, out, sizeof(out));
    assert_true(rn > 0 && rn <= n + FLARE_STUN_SERVER_GROWTH);
    assert_int_equal(flare_stun_parse(&m, out, (size_t)rn), 0);
    assert_int_equal(m.cls, FLARE_STUN_ERROR);
    int code;
    assert_int_equal(flare_stun_get_error(&m, &code, NULL, NULL), 0);
    assert_int_equal(code, 420);
    const flare_stun_attr *ua = flare_stun_find(&m, FLARE_STUN_ATTR_UNKNOWN_ATTRIBUTES);
    assert_non_null(ua);
    assert_int_equal(ua->len, 2);
    assert_memory_equal(out + ua->off, "\x77\x77", 2);
    /* Five unknown ones and a fingerprint: still within the bound. */
    flare_stun_build_init(&bl, req, sizeof(req), FLARE_STUN_BINDING, FLARE_STUN_REQUEST, txid);
    for (uint16_t t = 0x7770; t < 0x7775; t++)
        flare_stun_add_attr(&bl, t, NULL, 0);
    flare_stun_add_fingerprint(&bl);
    n = flare_stun_build_finish(&bl);
    rn = flare_stun_server_answer(req, (size_t)n, &v6, out, sizeof(out));
    assert_true(rn > 0 && rn <= n + FLARE_STUN_SERVER_GROWTH && rn <= FLARE_STUN_SERVER_MAX_RESP);
    flare_stun_build_init(&bl, req, sizeof(req), FLARE_STUN_BINDING, FLARE_STUN_INDICATION, txid);
    n = flare_stun_build_finish(&bl);
    assert_int_equal(flare_stun_server_answer(req, (size_t)n, &v6, out, sizeof(out)), 0);
    /* Unknown comprehension-optional attributes are fine. */
    flare_stun_build_init(&bl, req, sizeof(req), FLARE_STUN_BINDING, FLARE_STUN_REQUEST, txid);
    flare_stun_add_attr(&bl, 0xC001, "abcd", 4);
    n = flare_stun_build_finish(&bl);
    assert_true(flare_stun_server_answer(req, (size_t)n, &v6, out, sizeof(out)) > 0);
}

static void test_limiter(void **st)
{
    (void)st;
    static flare_stun_limiter l;
    flare_stun_limiter_init(&l, 10, 5);
    flare_ipaddr a, b;
    flare_ipaddr_parse(&a, "198.51.100.1:1");
    flare_ipaddr_parse(&b, "198.51.100.2:1");
    flare_tstamp now = 5 * FLARE_NS_PER_S;
    int ok = 0;
    for (int i = 0; i < 100; i++)
        ok += flare_stun_limiter_allow(&l, &a, now);
    assert_int_equal(ok, 5);                            /* the burst */
    assert_true(flare_stun_limiter_allow(&l, &b, now)); /* b has its own bucket */
    /* 10 per second afterwards, also when asked every 10 us. */
    ok = 0;
    for (int i = 0; i < 100000; i++)
        ok += flare_stun_limiter_allow(&l, &a, now + (flare_tstamp)i * 10000);
    assert_true(ok >= 9 && ok <= 11);
    /* A flood of distinct sources never grows the table and leaves room. */
    for (uint32_t i = 0; i < 10000; i++) {
        flare_ipaddr s = a;
        s.ip[2] = (uint8_t)(i >> 8);
        s.ip[3] = (uint8_t)i;
        flare_stun_limiter_allow(&l, &s, now + 2 * FLARE_NS_PER_S);
    }
    assert_true(flare_stun_limiter_allow(&l, &b, now + 3 * FLARE_NS_PER_S));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc5769_request), cmocka_unit_test(test_rfc5769_responses),
        cmocka_unit_test(test_build_roundtrip), cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_transaction),     cmocka_unit_test(test_server_answer),
        cmocka_unit_test(test_limiter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
