/* AutoNAT v1: codec (byte-exact, round trip, bad input) and the server and
 * client cores (policies, rate limits, the js reused-connection case). */
#include "support/test.h"

#include "flare/autonat.h"
#include "flare/lpframe.h"

/* Strips the frame of buf and decodes it. */
static int decode_frame(const flare_buf *b, flare_autonat1_msg *m)
{
    const uint8_t *msg;
    size_t mlen;
    int n = flare_lpframe_parse(b->base, b->len, 4096, &msg, &mlen);
    assert_int_equal((size_t)n, b->len);
    return flare_autonat1_decode(m, msg, mlen);
}

static void test_v1_encode_exact(void **state)
{
    flare_buf b;
    flare_buf_init(&b, NULL);
    flare_multiaddr a = flare_test_ma("/ip4/1.2.3.4/tcp/4001");
    assert_int_equal(flare_autonat1_encode_response(&b, FLARE_AUTONAT1_OK, NULL, &a), 0);
    uint8_t want[64];
    size_t wl = flare_test_unhex("10"
                                 "0801"
                                 "1a0c"
                                 "0800"
                                 "1a08"
                                 "0401020304060fa1",
                                 want, sizeof(want));
    assert_int_equal(b.len, wl);
    assert_memory_equal(b.base, want, wl);

    flare_buf_reset(&b);
    flare_peerid id = flare_test_pid(7);
    assert_int_equal(flare_autonat1_encode_dial(&b, &id, &a, 1), 0);
    /* 08 00 | 12 L1 [0a L2 [0a 22 id] [12 08 addr]] */
    assert_int_equal(b.base[0], b.len - 1);
    assert_int_equal(b.base[1], 0x08);
    assert_int_equal(b.base[2], 0x00);
    assert_int_equal(b.base[3], 0x12);
    assert_int_equal(b.base[5], 0x0a);
    assert_int_equal(b.base[7], 0x0a);
    assert_int_equal(b.base[8], 34);
    flare_autonat1_msg m;
    assert_int_equal(decode_frame(&b, &m), 0);
    assert_int_equal(m.type, FLARE_AUTONAT1_DIAL);
    assert_true(m.has_peer);
    assert_int_equal(m.peer_id_len, 34);
    assert_memory_equal(m.peer_id, id.bytes, 34);
    assert_int_equal(m.naddrs, 1);
    assert_true(flare_multiaddr_equal(&m.addrs[0], &a));
    flare_buf_free(&b);
}

static void test_v1_roundtrip_response(void **state)
{
    flare_buf b;
    flare_buf_init(&b, NULL);
    assert_int_equal(
        flare_autonat1_encode_response(&b, FLARE_AUTONAT1_E_DIAL_REFUSED, "too many", NULL), 0);
    flare_autonat1_msg m;
    assert_int_equal(decode_frame(&b, &m), 0);
    assert_int_equal(m.type, FLARE_AUTONAT1_DIAL_RESPONSE);
    assert_int_equal(m.status, FLARE_AUTONAT1_E_DIAL_REFUSED);
    assert_string_equal(m.status_text, "too many");
    assert_int_equal(m.addr.len, 0);
    assert_int_equal(flare_autonat1_encode_response(&b, (flare_autonat1_status)7, NULL, NULL),
                     FLARE_ERR_INVALID_ARG);
    flare_buf_free(&b);
}

static int dec(const char *hex)
{
    uint8_t in[512];
    size_t n = flare_test_unhex(hex, in, sizeof(in));
    flare_autonat1_msg m;
    return flare_autonat1_decode(&m, in, n);
}

static void test_v1_decode_bad(void **state)
{
    assert_int_equal(dec(""), FLARE_ERR_MALFORMED);                /* no type */
    assert_int_equal(dec("0800"), FLARE_ERR_MALFORMED);            /* DIAL without dial */
    assert_int_equal(dec("0801"), FLARE_ERR_MALFORMED);            /* response missing */
    assert_int_equal(dec("0802"), FLARE_ERR_UNKNOWN_CODE);         /* type 2 */
    assert_int_equal(dec("08011a020805"), FLARE_ERR_UNKNOWN_CODE); /* status 5 */
    assert_int_equal(dec("08011a00"), FLARE_ERR_MALFORMED);        /* no status */
    assert_int_equal(dec("08011a0508"), FLARE_ERR_TRUNCATED);
    assert_int_equal(dec("08"), FLARE_ERR_TRUNCATED);
    assert_int_equal(dec("0a00"), FLARE_ERR_MALFORMED);         /* type as bytes */
    assert_int_equal(dec("080012020a05"), FLARE_ERR_TRUNCATED); /* peer cut */
    assert_int_equal(dec("08ffffffffffffffffffff01"), FLARE_ERR_OVERLONG);
    /* A 65-byte peer id. */
    char hex[400] = "0800"
                    "1245"
                    "0a43"
                    "0a41";
    for (int i = 0; i < 65; i++)
        strcat(hex, "aa");
    assert_int_equal(dec(hex), FLARE_ERR_TOO_LARGE);
}

static void test_v1_too_many_addrs(void **state)
{
    flare_multiaddr addrs[33];
    for (int i = 0; i < 33; i++)
        addrs[i] = flare_test_ma("/ip4/1.2.3.4/tcp/1");
    flare_buf b;
    flare_buf_init(&b, NULL);
    flare_peerid id = flare_test_pid(1);
    assert_int_equal(flare_autonat1_encode_dial(&b, &id, addrs, 33), 0);
    flare_autonat1_msg m;
    assert_int_equal(decode_frame(&b, &m), FLARE_ERR_TOO_LARGE);
    flare_buf_reset(&b);
    assert_int_equal(flare_autonat1_encode_dial(&b, &id, addrs, 32), 0);
    assert_int_equal(decode_frame(&b, &m), 0);
    assert_int_equal(m.naddrs, 32);
    /* Invalid address bytes keep their slot as an empty entry. */
    uint8_t in[] = {0x08, 0x00, 0x12, 0x06, 0x0a, 0x04, 0x12, 0x02, 0x04, 0x00};
    assert_int_equal(flare_autonat1_decode(&m, in, sizeof(in)), 0);
    assert_int_equal(m.naddrs, 1);
    assert_int_equal(m.addrs[0].len, 0);
    flare_buf_free(&b);
}

typedef struct srv_env {
    flare_autonat1_server srv;
    flare_peerid peer;
    flare_multiaddr observed;
    flare_autonat1_dial dial;
    flare_buf req, out;
} srv_env;

static void env_init(srv_env *e, int doc)
{
    flare_autonat1_server_settings s;
    flare_autonat1_server_settings_default(&s);
    s.doc_is_public = doc;
    assert_int_equal(flare_autonat1_server_init(&e->srv, &s, NULL), 0);
    e->peer = flare_test_pid(3);
    e->observed = flare_test_ma("/ip4/8.8.4.4/tcp/51000");
    flare_buf_init(&e->req, NULL);
    flare_buf_init(&e->out, NULL);
}

static void env_free(srv_env *e)
{
    flare_autonat1_server_free(&e->srv);
    flare_buf_free(&e->req);
    flare_buf_free(&e->out);
}

/* Sends a DIAL for addrs; returns the handler's result and, for a refusal,
 * the status in *st. */
static int ask(srv_env *e, const flare_multiaddr *addrs, size_t n, int relayed, flare_tstamp now,
               flare_autonat1_status *st)
{
    flare_buf_reset(&e->req);
    flare_buf_reset(&e->out);
    assert_int_equal(flare_autonat1_client_request(&e->req, &e->peer, addrs, n), 0);
    size_t used = 0;
    int rv = flare_autonat1_server_handle(&e->srv, e->req.base, e->req.len, &used, &e->peer,
                                          &e->observed, relayed, now, &e->dial, &e->out);
    if (rv >= 0)
        assert_int_equal(used, e->req.len);
    if (rv == 0) {
        flare_autonat1_msg m;
        assert_int_equal(decode_frame(&e->out, &m), 0);
        *st = m.status;
    }
    return rv;
}

static void test_v1_server_filters(void **state)
{
    srv_env e;
    env_init(&e, 0);
    flare_autonat1_status st;
    flare_multiaddr addrs[] = {
        flare_test_ma("/ip4/192.168.1.5/tcp/4001"), /* private */
        flare_test_ma("/ip4/1.1.1.1/tcp/4001"),     /* third party */
        flare_test_ma("/ip4/8.8.4.4/tcp/4001/p2p/QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"),
        flare_test_ma("/ip4/8.8.4.4/tcp/4001"), /* duplicate after /p2p stripping */
        flare_test_ma("/ip4/8.8.4.4/udp/4001/quic-v1"),
        flare_test_ma(
            "/ip4/8.8.4.4/tcp/4001/p2p/QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N/p2p-circuit"),
    };
    assert_int_equal(ask(&e, addrs, 6, 0, 0, &st), 1);
    assert_int_equal(e.dial.naddrs, 2);
    assert_true(flare_multiaddr_equal(&e.dial.addrs[0], &addrs[3]));
    assert_true(flare_multiaddr_equal(&e.dial.addrs[1], &addrs[4]));
    assert_int_equal(e.out.len, 0);

    /* Dial result -> response. */
    assert_int_equal(flare_autonat1_server_dial_result(&e.dial.addrs[0], &e.out), 0);
    flare_autonat1_msg m;
    assert_int_equal(decode_frame(&e.out, &m), 0);
    assert_int_equal(m.status, FLARE_AUTONAT1_OK);
    assert_true(flare_multiaddr_equal(&m.addr, &addrs[3]));
    flare_buf_reset(&e.out);
    assert_int_equal(flare_autonat1_server_dial_result(NULL, &e.out), 0);
    assert_int_equal(decode_frame(&e.out, &m), 0);
    assert_int_equal(m.status, FLARE_AUTONAT1_E_DIAL_ERROR);

    /* Only third-party or private addresses: no dialable address. */
    assert_int_equal(ask(&e, addrs, 2, 0, 0, &st), 0);
    assert_int_equal(st, FLARE_AUTONAT1_E_DIAL_ERROR);
    /* Relayed connection. */
    assert_int_equal(ask(&e, addrs, 6, 1, 0, &st), 0);
    assert_int_equal(st, FLARE_AUTONAT1_E_DIAL_REFUSED);
    /* TEST-NET observed address is not public unless the lab option is on. */
    e.observed = flare_test_ma("/ip4/203.0.113.9/tcp/1000");
    flare_multiaddr doc = flare_test_ma("/ip4/203.0.113.9/tcp/4001");
    assert_int_equal(ask(&e, &doc, 1, 0, 0, &st), 0);
    assert_int_equal(st, FLARE_AUTONAT1_E_DIAL_REFUSED);
    env_free(&e);

    env_init(&e, 1);
    e.observed = flare_test_ma("/ip4/203.0.113.9/tcp/1000");
    assert_int_equal(ask(&e, &doc, 1, 0, 0, &st), 1);
    assert_int_equal(e.dial.naddrs, 1);
    env_free(&e);
}

static void test_v1_server_bad_requests(void **state)
{
    srv_env e;
    env_init(&e, 0);
    size_t used;
    flare_autonat1_msg m;
    /* Peer id mismatch. */
    flare_peerid other = flare_test_pid(9);
    flare_multiaddr a = flare_test_ma("/ip4/8.8.4.4/tcp/4001");
    assert_int_equal(flare_autonat1_encode_dial(&e.req, &other, &a, 1), 0);
    assert_int_equal(flare_autonat1_server_handle(&e.srv, e.req.base, e.req.len, &used, &e.peer,
                                                  &e.observed, 0, 0, &e.dial, &e.out),
                     0);
    assert_int_equal(decode_frame(&e.out, &m), 0);
    assert_int_equal(m.status, FLARE_AUTONAT1_E_BAD_REQUEST);
    /* DIAL without peer info. */
    uint8_t nopeer[] = {0x04, 0x08, 0x00, 0x12, 0x00};
    flare_buf_reset(&e.out);
    assert_int_equal(flare_autonat1_server_handle(&e.srv, nopeer, sizeof(nopeer), &used, &e.peer,
                                                  &e.observed, 0, 0, &e.dial, &e.out),
                     0);
    assert_int_equal(decode_frame(&e.out, &m), 0);
    assert_int_equal(m.status, FLARE_AUTONAT1_E_BAD_REQUEST);
    /* A response where a request belongs: protocol error, nothing sent. */
    flare_buf_reset(&e.out);
    flare_buf_reset(&e.req);
    assert_int_equal(flare_autonat1_encode_response(&e.req, FLARE_AUTONAT1_OK, NULL, NULL), 0);
    assert_int_equal(flare_autonat1_server_handle(&e.srv, e.req.base, e.req.len, &used, &e.peer,
                                                  &e.observed, 0, 0, &e.dial, &e.out),
                     FLARE_ERR_PROTO);
    assert_int_equal(e.out.len, 0);
    /* Incomplete and oversize frames. */
    assert_int_equal(flare_autonat1_server_handle(&e.srv, e.req.base, e.req.len - 1, &used, &e.peer,
                                                  &e.observed, 0, 0, &e.dial, &e.out),
                     FLARE_ERR_AGAIN);
    uint8_t big[] = {0x81, 0x20};
    assert_int_equal(flare_autonat1_server_handle(&e.srv, big, sizeof(big), &used, &e.peer,
                                                  &e.observed, 0, 0, &e.dial, &e.out),
                     FLARE_ERR_TOO_LARGE);
    env_free(&e);
}

/* Zero limits mean zero, not the defaults: every request is refused. */
static void test_v1_zero_limits(void **state)
{
    (void)state;
    flare_multiaddr a = flare_test_ma("/ip4/8.8.4.4/tcp/4001");
    flare_autonat1_status st;
    for (int which = 0; which < 2; which++) {
        srv_env e;
        env_init(&e, 0);
        flare_autonat1_server_free(&e.srv);
        flare_autonat1_server_settings s;
        flare_autonat1_server_settings_default(&s);
        if (which)
            s.per_peer_limit = 0;
        else
            s.global_limit = 0;
        assert_int_equal(flare_autonat1_server_init(&e.srv, &s, NULL), 0);
        assert_int_equal(ask(&e, &a, 1, 0, 1000, &st), 0);
        assert_int_equal(st, FLARE_AUTONAT1_E_DIAL_REFUSED);
        env_free(&e);
    }
}

static void test_v1_rate_limits(void **state)
{
    srv_env e;
    env_init(&e, 0);
    flare_autonat1_status st;
    flare_multiaddr a = flare_test_ma("/ip4/8.8.4.4/tcp/4001");
    const flare_tstamp MIN = 60 * FLARE_NS_PER_S;
    for (int i = 0; i < 3; i++)
        assert_int_equal(ask(&e, &a, 1, 0, 1000 + i, &st), 1);
    /* Fourth from the same peer within the minute. */
    assert_int_equal(ask(&e, &a, 1, 0, 2000, &st), 0);
    assert_int_equal(st, FLARE_AUTONAT1_E_DIAL_REFUSED);
    assert_int_equal(ask(&e, &a, 1, 0, 1000 + MIN - 1, &st), 0);
    /* Recovered a minute later. */
    assert_int_equal(ask(&e, &a, 1, 0, 1000 + MIN, &st), 1);

    /* Global: 30 per minute across peers. */
    env_free(&e);
    env_init(&e, 0);
    for (int i = 0; i < 30; i++) {
        e.peer = flare_test_pid((uint8_t)(i / 3 + 10));
        assert_int_equal(ask(&e, &a, 1, 0, 5, &st), 1);
    }
    e.peer = flare_test_pid(200);
    assert_int_equal(ask(&e, &a, 1, 0, 6, &st), 0);
    assert_int_equal(st, FLARE_AUTONAT1_E_DIAL_REFUSED);
    assert_int_equal(ask(&e, &a, 1, 0, 5 + MIN, &st), 1);
    env_free(&e);
}

static int client_judge(flare_autonat1_status st, const flare_multiaddr *ret,
                        const flare_multiaddr *asked, size_t nasked)
{
    flare_buf b;
    flare_buf_init(&b, NULL);
    assert_int_equal(flare_autonat1_encode_response(&b, st, NULL, ret), 0);
    uint16_t ports[] = {4001};
    flare_autonat_outcome o;
    size_t used;
    flare_multiaddr got;
    assert_int_equal(
        flare_autonat1_client_response(b.base, b.len, &used, asked, nasked, ports, 1, &o, &got), 0);
    assert_int_equal(used, b.len);
    flare_buf_free(&b);
    return (int)o;
}

static void test_v1_client_js_reuse(void **state)
{
    flare_multiaddr asked[] = {flare_test_ma("/ip4/8.8.4.4/tcp/4001"),
                               flare_test_ma("/ip4/10.0.0.2/tcp/4001")};
    /* A genuine dial-back to an address we listen on. */
    assert_int_equal(client_judge(FLARE_AUTONAT1_OK, &asked[0], asked, 2), FLARE_AUTONAT_REACHABLE);
    flare_multiaddr withp2p =
        flare_test_ma("/ip4/8.8.4.4/tcp/4001/p2p/QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N");
    assert_int_equal(client_judge(FLARE_AUTONAT1_OK, &withp2p, asked, 2), FLARE_AUTONAT_REACHABLE);
    /* js reused our outbound connection: it reports that connection's remote
     * address (our ephemeral port), which we never asked about. */
    flare_multiaddr eph = flare_test_ma("/ip4/8.8.4.4/tcp/53211");
    assert_int_equal(client_judge(FLARE_AUTONAT1_OK, &eph, asked, 2), FLARE_AUTONAT_NO_INFO);
    /* Asked about, but not a port we listen on. */
    flare_multiaddr asked2[] = {eph};
    assert_int_equal(client_judge(FLARE_AUTONAT1_OK, &eph, asked2, 1), FLARE_AUTONAT_NO_INFO);
    /* OK without an address. */
    assert_int_equal(client_judge(FLARE_AUTONAT1_OK, NULL, asked, 2), FLARE_AUTONAT_NO_INFO);
    assert_int_equal(client_judge(FLARE_AUTONAT1_E_DIAL_ERROR, NULL, asked, 2),
                     FLARE_AUTONAT_UNREACHABLE);
    assert_int_equal(client_judge(FLARE_AUTONAT1_E_DIAL_REFUSED, NULL, asked, 2),
                     FLARE_AUTONAT_NO_INFO);
    assert_int_equal(client_judge(FLARE_AUTONAT1_E_BAD_REQUEST, NULL, asked, 2),
                     FLARE_AUTONAT_NO_INFO);

    /* A DIAL where a response belongs. */
    flare_buf b;
    flare_buf_init(&b, NULL);
    flare_peerid id = flare_test_pid(1);
    assert_int_equal(flare_autonat1_encode_dial(&b, &id, asked, 1), 0);
    flare_autonat_outcome o;
    size_t used;
    assert_int_equal(
        flare_autonat1_client_response(b.base, b.len, &used, asked, 1, NULL, 0, &o, NULL),
        FLARE_ERR_PROTO);
    flare_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v1_encode_exact),    cmocka_unit_test(test_v1_roundtrip_response),
        cmocka_unit_test(test_v1_decode_bad),      cmocka_unit_test(test_v1_too_many_addrs),
        cmocka_unit_test(test_v1_server_filters),  cmocka_unit_test(test_v1_server_bad_requests),
        cmocka_unit_test(test_v1_rate_limits),     cmocka_unit_test(test_v1_zero_limits),
        cmocka_unit_test(test_v1_client_js_reuse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
