/* AutoNAT v2 (codec, server and client pumped against each other, bad input)
 * and the reachability state machine (confidence, schedule, server choice). */
#include "support/test.h"

#include "flare/autonat.h"
#include "flare/lpframe.h"
#include "flare/reachability.h"

static void test_v2_encode_exact(void **state)
{
    flare_buf b;
    flare_buf_init(&b, NULL);
    flare_multiaddr a = flare_test_ma("/ip4/1.2.3.4/tcp/4001");
    assert_int_equal(flare_autonat2_encode_dial_request(&b, &a, 1, 0x0102030405060708ULL), 0);
    flare_test_assert_hex(&b, "15"
                              "0a13"
                              "0a080401020304060fa1"
                              "110807060504030201");
    flare_buf_reset(&b);
    assert_int_equal(
        flare_autonat2_encode_dial_response(&b, FLARE_AUTONAT2_OK, 0, FLARE_AUTONAT2_DIAL_OK), 0);
    flare_test_assert_hex(&b, "08"
                              "1206"
                              "08c801"
                              "18c801");
    flare_buf_reset(&b);
    /* E_INTERNAL_ERROR with everything zero: an empty dialResponse. */
    assert_int_equal(flare_autonat2_encode_dial_response(&b, FLARE_AUTONAT2_E_INTERNAL_ERROR, 0,
                                                         FLARE_AUTONAT2_DIAL_UNUSED),
                     0);
    flare_test_assert_hex(&b, "02"
                              "1200");
    flare_buf_reset(&b);
    assert_int_equal(flare_autonat2_encode_dial_data_request(&b, 1, 30000), 0);
    flare_test_assert_hex(&b, "08"
                              "1a06"
                              "0801"
                              "10b0ea01");
    flare_buf_reset(&b);
    assert_int_equal(flare_autonat2_encode_dial_back(&b, 0x0102030405060708ULL), 0);
    flare_test_assert_hex(&b, "09"
                              "090807060504030201");
    size_t used;
    uint64_t nonce;
    assert_int_equal(flare_autonat2_parse_dial_back(b.base, b.len, &used, &nonce), 0);
    assert_int_equal(used, b.len);
    assert_true(nonce == 0x0102030405060708ULL);
    assert_int_equal(flare_autonat2_parse_dial_back(b.base, b.len - 1, &used, &nonce),
                     FLARE_ERR_AGAIN);
    flare_buf_reset(&b);
    assert_int_equal(flare_autonat2_encode_dial_back_response(&b), 0);
    flare_test_assert_hex(&b, "00");
    assert_int_equal(flare_autonat2_parse_dial_back_response(b.base, b.len, &used), 0);
    uint8_t bad_status[] = {0x02, 0x08, 0x01};
    assert_int_equal(flare_autonat2_parse_dial_back_response(bad_status, 3, &used),
                     FLARE_ERR_UNKNOWN_CODE);
    uint8_t bad_wire[] = {0x02, 0x0a, 0x00};
    assert_int_equal(flare_autonat2_parse_dial_back(bad_wire, 3, &used, &nonce),
                     FLARE_ERR_MALFORMED);
    flare_buf_free(&b);
}

static int dec(const char *hex)
{
    uint8_t in[256];
    size_t n = flare_test_unhex(hex, in, sizeof(in));
    flare_autonat2_msg m;
    return flare_autonat2_decode(&m, in, n);
}

static void test_v2_decode_bad(void **state)
{
    assert_int_equal(dec(""), FLARE_ERR_MALFORMED);                    /* no member */
    assert_int_equal(dec("0800"), FLARE_ERR_MALFORMED);                /* varint member */
    assert_int_equal(dec("0a001200"), FLARE_ERR_MALFORMED);            /* two members */
    assert_int_equal(dec("12020805"), FLARE_ERR_UNKNOWN_CODE);         /* status 5 */
    assert_int_equal(dec("12021801"), FLARE_ERR_UNKNOWN_CODE);         /* dialStatus 1 */
    assert_int_equal(dec("1206108080808010"), FLARE_ERR_OUT_OF_RANGE); /* addrIdx 2^32 */
    assert_int_equal(dec("0a03110102"), FLARE_ERR_TRUNCATED);          /* nonce cut */
    assert_int_equal(dec("0a020801"), FLARE_ERR_MALFORMED);            /* nonce as varint */
    assert_int_equal(dec("0a05"), FLARE_ERR_TRUNCATED);
    assert_int_equal(dec("1a020a00"), FLARE_ERR_MALFORMED); /* addrIdx as bytes */
    /* Defaults: an empty dialResponse is E_INTERNAL_ERROR, idx 0, UNUSED. */
    uint8_t in[] = {0x12, 0x00};
    flare_autonat2_msg m;
    assert_int_equal(flare_autonat2_decode(&m, in, 2), 0);
    assert_int_equal(m.type, FLARE_AUTONAT2_DIAL_RESPONSE);
    assert_int_equal(m.status, FLARE_AUTONAT2_E_INTERNAL_ERROR);
    /* A data chunk over 4096 bytes. */
    uint8_t big[4200] = {0x22, 0x84, 0x20, 0x0a, 0x81, 0x20};
    assert_int_equal(flare_autonat2_decode(&m, big, 6 + 4097), FLARE_ERR_TOO_LARGE);
    big[4] = 0x80; /* exactly 4096 */
    big[1] = 0x83;
    assert_int_equal(flare_autonat2_decode(&m, big, 6 + 4096), 0);
    assert_int_equal(m.data_len, 4096);
    /* Too many addresses. */
    flare_multiaddr addrs[33];
    for (int i = 0; i < 33; i++)
        addrs[i] = flare_test_ma("/ip4/1.2.3.4/tcp/1");
    flare_buf b;
    flare_buf_init(&b, NULL);
    assert_int_equal(flare_autonat2_encode_dial_request(&b, addrs, 33, 5), 0);
    const uint8_t *msg;
    size_t mlen;
    assert_true(flare_lpframe_parse(b.base, b.len, 8192, &msg, &mlen) > 0);
    assert_int_equal(flare_autonat2_decode(&m, msg, mlen), FLARE_ERR_TOO_LARGE);
    flare_buf_free(&b);
}

/* A client and a server request pumped in memory. */
typedef struct pair {
    flare_prng prng;
    flare_autonat2_server srv;
    flare_autonat2_server_req sreq;
    flare_autonat2_client_req creq;
    flare_buf c2s, s2c;
} pair;

static void pair_init(pair *p, const flare_autonat2_server_settings *s, const char *observed)
{
    flare_prng_seed(&p->prng, 7);
    assert_int_equal(flare_autonat2_server_init(&p->srv, s, NULL, flare_prng_rng(&p->prng)), 0);
    flare_peerid peer = flare_test_pid(5);
    flare_multiaddr obs = flare_test_ma(observed);
    flare_autonat2_server_req_init(&p->sreq, &p->srv, &peer, &obs, 0);
    flare_buf_init(&p->c2s, NULL);
    flare_buf_init(&p->s2c, NULL);
}

static void pair_free(pair *p)
{
    flare_autonat2_server_free(&p->srv);
    flare_buf_free(&p->c2s);
    flare_buf_free(&p->s2c);
}

static void pair_restart(pair *p, const char *observed)
{
    flare_peerid peer = flare_test_pid(5);
    flare_multiaddr obs = flare_test_ma(observed);
    flare_autonat2_server_req_init(&p->sreq, &p->srv, &peer, &obs, 0);
    flare_buf_reset(&p->c2s);
    flare_buf_reset(&p->s2c);
}

/* Runs the exchange until the server wants a dial-back or is done. Returns
 * the server's last result. */
static int pump_to_server(pair *p, flare_tstamp now)
{
    size_t used;
    int rv = flare_autonat2_server_req_recv(&p->sreq, p->c2s.base, p->c2s.len, &used, now, &p->s2c);
    if (rv >= 0)
        flare_buf_consume(&p->c2s, used);
    return rv;
}

/* Client answers what the server sent. */
static int pump_to_client(pair *p)
{
    size_t used;
    int rv = flare_autonat2_client_req_recv(&p->creq, p->s2c.base, p->s2c.len, &used, &p->c2s);
    if (rv >= 0)
        flare_buf_consume(&p->s2c, used);
    return rv;
}

/* The client asks for addrs (n of them) with the default dial-data
 * limit; its request goes to c2s. */
static void client_ask(pair *p, const flare_multiaddr *addrs, size_t n)
{
    assert_int_equal(flare_autonat2_client_req_init(&p->creq, addrs, n,
                                                    FLARE_AUTONAT2_DEFAULT_MAX_DIAL_DATA,
                                                    flare_prng_rng(&p->prng), &p->c2s),
                     0);
}

/* The server reports status; the client takes it as outcome want. */
static void result_to_client(pair *p, flare_autonat2_dial_status status, flare_autonat_outcome want)
{
    assert_int_equal(flare_autonat2_server_req_dial_result(&p->sreq, status, &p->s2c), 0);
    assert_int_equal(pump_to_client(p), 1);
    assert_int_equal(p->creq.outcome, want);
}

/* The glue's dial-back: server -> DialBack -> client -> DialBackResponse. */
static void dial_back(pair *p, uint64_t nonce, int expect)
{
    flare_buf db, resp;
    flare_buf_init(&db, NULL);
    flare_buf_init(&resp, NULL);
    assert_int_equal(flare_autonat2_encode_dial_back(&db, nonce), 0);
    size_t used;
    uint64_t got;
    assert_int_equal(flare_autonat2_parse_dial_back(db.base, db.len, &used, &got), 0);
    assert_int_equal(flare_autonat2_client_req_dial_back(&p->creq, got, NULL, 0, &resp), expect);
    if (expect == 0)
        assert_int_equal(flare_autonat2_parse_dial_back_response(resp.base, resp.len, &used), 0);
    else
        assert_int_equal(resp.len, 0);
    flare_buf_free(&db);
    flare_buf_free(&resp);
}

static void test_v2_same_ip_reachable(void **state)
{
    pair p;
    pair_init(&p, NULL, "/ip4/8.8.4.4/tcp/50000");
    flare_multiaddr addrs[] = {flare_test_ma("/ip4/10.0.0.1/tcp/4001"),
                               flare_test_ma("/ip4/8.8.4.4/tcp/4001"),
                               flare_test_ma("/ip4/8.8.4.4/tcp/4002")};
    client_ask(&p, addrs, 3);
    assert_int_equal(pump_to_server(&p, 0), 1);
    assert_int_equal(p.sreq.addr_idx, 1); /* private one skipped */
    assert_true(flare_multiaddr_equal(&p.sreq.target, &addrs[1]));
    assert_true(p.sreq.nonce == p.creq.nonce);
    assert_int_equal(p.s2c.len, 0); /* no dial data: same IP */
    /* Bytes after the request while dialing: abuse. */
    dial_back(&p, p.sreq.nonce, 0);
    result_to_client(&p, FLARE_AUTONAT2_DIAL_OK, FLARE_AUTONAT_REACHABLE);
    assert_int_equal(p.creq.addr_idx, 1);
    assert_int_equal(flare_autonat2_server_req_dial_result(&p.sreq, FLARE_AUTONAT2_DIAL_OK, &p.s2c),
                     FLARE_ERR_STATE);
    pair_free(&p);
}

static void test_v2_nonce_and_outcomes(void **state)
{
    pair p;
    pair_init(&p, NULL, "/ip4/8.8.4.4/tcp/50000");
    flare_multiaddr a = flare_test_ma("/ip4/8.8.4.4/tcp/4001");
    /* Wrong nonce: refused; OK without the nonce is no information. */
    client_ask(&p, &a, 1);
    assert_int_equal(pump_to_server(&p, 0), 1);
    dial_back(&p, p.creq.nonce ^ 1, FLARE_ERR_NOT_FOUND);
    result_to_client(&p, FLARE_AUTONAT2_DIAL_OK, FLARE_AUTONAT_NO_INFO);

    /* The dial-back on the request's own connection proves nothing. */
    pair_restart(&p, "/ip4/8.8.4.4/tcp/50000");
    client_ask(&p, &a, 1);
    flare_buf tmp;
    flare_buf_init(&tmp, NULL);
    assert_int_equal(flare_autonat2_client_req_dial_back(&p.creq, p.creq.nonce, NULL, 1, &tmp),
                     FLARE_ERR_NOT_FOUND);
    /* A dial-back on a connection whose local port is not the address's. */
    flare_multiaddr local = flare_test_ma("/ip4/10.0.0.1/tcp/5555");
    assert_int_equal(flare_autonat2_client_req_dial_back(&p.creq, p.creq.nonce, &local, 0, &tmp),
                     0);
    assert_int_equal(pump_to_server(&p, 0), 1);
    result_to_client(&p, FLARE_AUTONAT2_DIAL_OK, FLARE_AUTONAT_NO_INFO);
    flare_buf_free(&tmp);

    /* Dial error -> unreachable; dial-back error -> no information. */
    static const flare_autonat2_dial_status ds[] = {FLARE_AUTONAT2_DIAL_E_DIAL_ERROR,
                                                    FLARE_AUTONAT2_DIAL_E_DIAL_BACK_ERROR};
    static const flare_autonat_outcome want[] = {FLARE_AUTONAT_UNREACHABLE, FLARE_AUTONAT_NO_INFO};
    for (int i = 0; i < 2; i++) {
        pair_restart(&p, "/ip4/8.8.4.4/tcp/50000");
        client_ask(&p, &a, 1);
        assert_int_equal(pump_to_server(&p, 0), 1);
        result_to_client(&p, ds[i], want[i]);
    }
    assert_int_equal(flare_autonat2_server_req_dial_result(&p.sreq, FLARE_AUTONAT2_DIAL_OK, &p.s2c),
                     FLARE_ERR_STATE);
    pair_free(&p);
}

static void test_v2_dial_data(void **state)
{
    pair p;
    pair_init(&p, NULL, "/ip4/8.8.4.4/tcp/50000");
    /* First acceptable address is on another IP: the client must pay. */
    flare_multiaddr addrs[] = {flare_test_ma("/ip6/::1/tcp/1"),
                               flare_test_ma("/ip4/9.9.9.9/tcp/4001"),
                               flare_test_ma("/ip4/8.8.4.4/tcp/4001")};
    client_ask(&p, addrs, 3);
    assert_int_equal(pump_to_server(&p, 0), 0);
    assert_int_equal(p.sreq.state, FLARE_AUTONAT2_SREQ_WAIT_DATA);
    assert_int_equal(p.sreq.addr_idx, 1);
    assert_true(p.sreq.want_bytes >= 30000 && p.sreq.want_bytes <= 100000);
    assert_int_equal(pump_to_client(&p), 0);
    assert_true(p.c2s.len > p.sreq.want_bytes);
    /* Feed the data in two pieces. */
    size_t used, half = p.c2s.len / 2;
    assert_int_equal(flare_autonat2_server_req_recv(&p.sreq, p.c2s.base, half, &used, 0, &p.s2c),
                     0);
    flare_buf_consume(&p.c2s, used);
    assert_int_equal(pump_to_server(&p, 0), 1);
    assert_int_equal(p.c2s.len, 0);
    assert_true(p.sreq.got_bytes == p.sreq.want_bytes);
    /* More data after the amount was reached: protocol error. */
    uint8_t chunk[10] = {0};
    assert_int_equal(flare_autonat2_encode_dial_data_response(&p.c2s, chunk, 10), 0);
    assert_int_equal(pump_to_server(&p, 0), FLARE_ERR_PROTO);
    pair_free(&p);
}

static void test_v2_client_refuses_costly(void **state)
{
    flare_prng prng;
    flare_prng_seed(&prng, 1);
    flare_autonat2_client_req c;
    flare_buf out, in;
    flare_buf_init(&out, NULL);
    flare_buf_init(&in, NULL);
    flare_multiaddr a = flare_test_ma("/ip4/8.8.4.4/tcp/4001");
    size_t used;
    assert_int_equal(flare_autonat2_client_req_init(&c, &a, 1, FLARE_AUTONAT2_DEFAULT_MAX_DIAL_DATA,
                                                    flare_prng_rng(&prng), &out),
                     0);
    assert_true(c.nonce != 0);
    assert_int_equal(flare_autonat2_encode_dial_data_request(&in, 0, 100001), 0);
    assert_int_equal(flare_autonat2_client_req_recv(&c, in.base, in.len, &used, &out),
                     FLARE_ERR_REFUSED);
    flare_buf_reset(&in);
    assert_int_equal(flare_autonat2_encode_dial_data_request(&in, 1, 30000), 0); /* not asked */
    assert_int_equal(flare_autonat2_client_req_recv(&c, in.base, in.len, &used, &out),
                     FLARE_ERR_REFUSED);
    /* Paying twice in one request is refused as a protocol error. */
    flare_buf_reset(&in);
    flare_buf_reset(&out);
    assert_int_equal(flare_autonat2_encode_dial_data_request(&in, 0, 5000), 0);
    assert_int_equal(flare_autonat2_encode_dial_data_request(&in, 0, 5000), 0);
    assert_int_equal(flare_autonat2_client_req_recv(&c, in.base, in.len, &used, &out),
                     FLARE_ERR_PROTO);
    /* Response index out of range. */
    flare_buf_reset(&in);
    assert_int_equal(flare_autonat2_client_req_init(&c, &a, 1, FLARE_AUTONAT2_DEFAULT_MAX_DIAL_DATA,
                                                    flare_prng_rng(&prng), &out),
                     0);
    assert_int_equal(
        flare_autonat2_encode_dial_response(&in, FLARE_AUTONAT2_OK, 3, FLARE_AUTONAT2_DIAL_OK), 0);
    assert_int_equal(flare_autonat2_client_req_recv(&c, in.base, in.len, &used, &out),
                     FLARE_ERR_PROTO);
    /* A DialRequest sent to the client. */
    flare_buf_reset(&in);
    assert_int_equal(flare_autonat2_encode_dial_request(&in, &a, 1, 1), 0);
    assert_int_equal(flare_autonat2_client_req_recv(&c, in.base, in.len, &used, &out),
                     FLARE_ERR_PROTO);
    /* Refused request: no information. */
    flare_buf_reset(&in);
    assert_int_equal(flare_autonat2_client_req_init(&c, &a, 1, FLARE_AUTONAT2_DEFAULT_MAX_DIAL_DATA,
                                                    flare_prng_rng(&prng), &out),
                     0);
    assert_int_equal(flare_autonat2_encode_dial_response(&in, FLARE_AUTONAT2_E_DIAL_REFUSED, 0,
                                                         FLARE_AUTONAT2_DIAL_UNUSED),
                     0);
    assert_int_equal(flare_autonat2_client_req_recv(&c, in.base, in.len, &used, &out), 1);
    assert_int_equal(c.outcome, FLARE_AUTONAT_NO_INFO);
    assert_int_equal(c.addr_idx, -1);
    assert_int_equal(flare_autonat2_client_req_recv(&c, in.base, in.len, &used, &out),
                     FLARE_ERR_STATE);
    assert_int_equal(flare_autonat2_client_req_init(&c, &a, 0, FLARE_AUTONAT2_DEFAULT_MAX_DIAL_DATA,
                                                    flare_prng_rng(&prng), &out),
                     FLARE_ERR_INVALID_ARG);
    flare_buf_free(&out);
    flare_buf_free(&in);
}

static flare_autonat2_status server_status(pair *p)
{
    const uint8_t *msg;
    size_t mlen;
    assert_true(flare_lpframe_parse(p->s2c.base, p->s2c.len, 8192, &msg, &mlen) > 0);
    flare_autonat2_msg m;
    assert_int_equal(flare_autonat2_decode(&m, msg, mlen), 0);
    assert_int_equal(m.type, FLARE_AUTONAT2_DIAL_RESPONSE);
    return m.status;
}

static void test_v2_server_policies(void **state)
{
    pair p;
    flare_autonat2_server_settings s;
    flare_autonat2_server_settings_default(&s);
    s.no_ipv6 = 1;
    pair_init(&p, &s, "/ip4/8.8.4.4/tcp/50000");
    /* Nothing acceptable: private, v6 (we cannot), quic (off), dns, ws (off). */
    flare_multiaddr addrs[] = {
        flare_test_ma("/ip4/192.168.0.1/tcp/1"), flare_test_ma("/ip6/2606:4700::1/tcp/1"),
        flare_test_ma("/ip4/8.8.4.4/udp/1/quic-v1"), flare_test_ma("/dns4/example.com/tcp/1"),
        flare_test_ma("/ip4/8.8.4.4/tcp/1/ws")};
    client_ask(&p, addrs, 5);
    assert_int_equal(pump_to_server(&p, 0), 2);
    assert_int_equal(server_status(&p), FLARE_AUTONAT2_E_DIAL_REFUSED);
    assert_int_equal(pump_to_client(&p), 1);
    assert_int_equal(p.creq.outcome, FLARE_AUTONAT_NO_INFO);
    assert_int_equal(pump_to_server(&p, 0), FLARE_ERR_STATE);

    /* Relayed connection: rejected. */
    flare_peerid peer = flare_test_pid(5);
    flare_multiaddr obs = flare_test_ma("/ip4/8.8.4.4/tcp/50000");
    flare_multiaddr ok = flare_test_ma("/ip4/8.8.4.4/tcp/4001");
    flare_autonat2_server_req_init(&p.sreq, &p.srv, &peer, &obs, 1);
    flare_buf_reset(&p.c2s);
    flare_buf_reset(&p.s2c);
    client_ask(&p, &ok, 1);
    assert_int_equal(pump_to_server(&p, 0), 2);
    assert_int_equal(server_status(&p), FLARE_AUTONAT2_E_REQUEST_REJECTED);

    /* Per-peer limit (12 per minute), recovered after a minute. */
    pair_free(&p);
    pair_init(&p, NULL, "/ip4/8.8.4.4/tcp/50000");
    for (int i = 0; i < 12; i++) {
        pair_restart(&p, "/ip4/8.8.4.4/tcp/50000");
        client_ask(&p, &ok, 1);
        assert_int_equal(pump_to_server(&p, 100), 1);
    }
    pair_restart(&p, "/ip4/8.8.4.4/tcp/50000");
    client_ask(&p, &ok, 1);
    assert_int_equal(pump_to_server(&p, 200), 2);
    assert_int_equal(server_status(&p), FLARE_AUTONAT2_E_REQUEST_REJECTED);
    pair_restart(&p, "/ip4/8.8.4.4/tcp/50000");
    client_ask(&p, &ok, 1);
    assert_int_equal(pump_to_server(&p, 100 + 60 * FLARE_NS_PER_S), 1);
    pair_free(&p);
}

/* With allow_ws the WebSocket forms are dialable, still only IP+port ones:
 * the first acceptable address is the one picked. */
static void ws_pick(const char *const *addrs, size_t n, int want)
{
    pair p;
    flare_autonat2_server_settings s;
    flare_autonat2_server_settings_default(&s);
    s.allow_ws = 1;
    pair_init(&p, &s, "/ip4/8.8.4.4/tcp/50000");
    flare_multiaddr a[4];
    for (size_t i = 0; i < n; i++)
        a[i] = flare_test_ma(addrs[i]);
    client_ask(&p, a, n);
    if (want < 0) {
        assert_int_equal(pump_to_server(&p, 0), 2);
        assert_int_equal(server_status(&p), FLARE_AUTONAT2_E_DIAL_REFUSED);
    } else {
        assert_int_equal(pump_to_server(&p, 0), 1);
        assert_true(flare_multiaddr_equal(&p.sreq.target, &a[want]));
    }
    pair_free(&p);
}

static void test_v2_server_ws(void **state)
{
    const char *ws[] = {"/ip4/8.8.4.4/tcp/4001/ws"};
    const char *tlsws[] = {"/ip4/8.8.4.4/tcp/0/ws", "/ip4/8.8.4.4/tcp/4002/tls/ws"};
    const char *wss[] = {"/ip4/10.0.0.1/tcp/4001/ws", "/ip4/8.8.4.4/tcp/4003/wss"};
    const char *bad[] = {"/ip4/8.8.4.4/tcp/1/tls/sni/x.example/ws", "/ip4/8.8.4.4/tcp/1/tls",
                         "/ip4/8.8.4.4/tcp/1/ws/ws", "/dns4/example.com/tcp/1/ws"};
    ws_pick(ws, 1, 0);
    ws_pick(tlsws, 2, 1);
    ws_pick(wss, 2, 1);
    ws_pick(bad, 4, -1);
}

static void test_v2_server_bad_input(void **state)
{
    pair p;
    pair_init(&p, NULL, "/ip4/8.8.4.4/tcp/50000");
    /* Garbage DialRequest: E_REQUEST_REJECTED then an error. */
    uint8_t garbage[] = {0x02, 0x0a, 0x05};
    size_t used;
    assert_int_equal(flare_autonat2_server_req_recv(&p.sreq, garbage, 3, &used, 0, &p.s2c),
                     FLARE_ERR_TRUNCATED);
    assert_int_equal(server_status(&p), FLARE_AUTONAT2_E_REQUEST_REJECTED);
    /* Oversize frame. */
    pair_restart(&p, "/ip4/8.8.4.4/tcp/50000");
    uint8_t big[] = {0x81, 0x40};
    assert_int_equal(flare_autonat2_server_req_recv(&p.sreq, big, 2, &used, 0, &p.s2c),
                     FLARE_ERR_TOO_LARGE);
    /* Wrong first message. */
    pair_restart(&p, "/ip4/8.8.4.4/tcp/50000");
    assert_int_equal(flare_autonat2_encode_dial_data_request(&p.c2s, 0, 1), 0);
    assert_int_equal(pump_to_server(&p, 0), FLARE_ERR_PROTO);
    /* Wrong message and empty chunks while waiting for data. */
    for (int k = 0; k < 2; k++) {
        pair_restart(&p, "/ip4/8.8.4.4/tcp/50000");
        flare_multiaddr other = flare_test_ma("/ip4/9.9.9.9/tcp/4001");
        assert_int_equal(flare_autonat2_encode_dial_request(&p.c2s, &other, 1, 77), 0);
        assert_int_equal(pump_to_server(&p, 0), 0);
        if (k == 0)
            assert_int_equal(flare_autonat2_encode_dial_request(&p.c2s, &other, 1, 77), 0);
        else
            assert_int_equal(flare_autonat2_encode_dial_data_response(&p.c2s, NULL, 0), 0);
        assert_int_equal(pump_to_server(&p, 0), FLARE_ERR_PROTO);
    }
    pair_free(&p);
}

/* ---- reachability ---- */

static void observe_n(flare_reachability *r, const flare_multiaddr *a, flare_autonat_outcome o,
                      int n)
{
    for (int i = 0; i < n; i++)
        assert_int_equal(flare_reachability_observe_v2(r, a, o, 0), 0);
}

static void test_reach_confidence(void **state)
{
    flare_reachability r;
    flare_reachability_init(&r, NULL, NULL, 0);
    flare_multiaddr a = flare_test_ma("/ip4/8.8.4.4/tcp/4001");
    assert_int_equal(flare_reachability_set_addrs(&r, &a, 1, 0), 0);
    assert_int_equal(flare_reachability_addr_state(&r, &a), FLARE_REACH_UNKNOWN);
    /* First evidence decides. */
    observe_n(&r, &a, FLARE_AUTONAT_UNREACHABLE, 1);
    assert_int_equal(flare_reachability_addr_state(&r, &a), FLARE_REACH_PRIVATE);
    assert_int_equal(flare_reachability_family_state(&r, 4), FLARE_REACH_PRIVATE);
    flare_reach_event ev;
    assert_int_equal(flare_reachability_poll_event(&r, &ev), 1);
    assert_int_equal(ev.kind, FLARE_REACH_EV_ADDR);
    assert_int_equal(ev.new_state, FLARE_REACH_PRIVATE);
    assert_int_equal(flare_reachability_poll_event(&r, &ev), 1);
    assert_int_equal(ev.kind, FLARE_REACH_EV_FAMILY);
    assert_int_equal(ev.family, 4);
    assert_int_equal(flare_reachability_poll_event(&r, &ev), 0);
    /* Build confidence 3, then a single OK does not flip. */
    observe_n(&r, &a, FLARE_AUTONAT_UNREACHABLE, 3);
    observe_n(&r, &a, FLARE_AUTONAT_REACHABLE, 1);
    assert_int_equal(flare_reachability_addr_state(&r, &a), FLARE_REACH_PRIVATE);
    observe_n(&r, &a, FLARE_AUTONAT_NO_INFO, 5); /* ignored for addresses */
    observe_n(&r, &a, FLARE_AUTONAT_REACHABLE, 2);
    assert_int_equal(flare_reachability_addr_state(&r, &a), FLARE_REACH_PRIVATE);
    assert_int_equal(flare_reachability_poll_event(&r, &ev), 0);
    observe_n(&r, &a, FLARE_AUTONAT_REACHABLE, 1); /* the fourth */
    assert_int_equal(flare_reachability_addr_state(&r, &a), FLARE_REACH_PUBLIC);
    assert_int_equal(flare_reachability_family_state(&r, 4), FLARE_REACH_PUBLIC);
    /* Flipping network: public, then consistent failures. */
    observe_n(&r, &a, FLARE_AUTONAT_REACHABLE, 3);
    observe_n(&r, &a, FLARE_AUTONAT_UNREACHABLE, 3);
    assert_int_equal(flare_reachability_addr_state(&r, &a), FLARE_REACH_PUBLIC);
    observe_n(&r, &a, FLARE_AUTONAT_UNREACHABLE, 1);
    assert_int_equal(flare_reachability_addr_state(&r, &a), FLARE_REACH_PRIVATE);
    /* A mixed stream never flips a settled state. */
    observe_n(&r, &a, FLARE_AUTONAT_UNREACHABLE, 3);
    for (int i = 0; i < 10; i++) {
        observe_n(&r, &a, FLARE_AUTONAT_REACHABLE, 1);
        observe_n(&r, &a, FLARE_AUTONAT_UNREACHABLE, 1);
    }
    assert_int_equal(flare_reachability_addr_state(&r, &a), FLARE_REACH_PRIVATE);
    flare_multiaddr b = flare_test_ma("/ip4/8.8.4.4/tcp/9");
    assert_int_equal(flare_reachability_observe_v2(&r, &b, FLARE_AUTONAT_REACHABLE, 0),
                     FLARE_ERR_NOT_FOUND);
    flare_reachability_free(&r);
}

static void test_reach_v1_and_families(void **state)
{
    flare_reachability r;
    flare_reachability_init(&r, NULL, NULL, 0);
    /* v1 only: per family, decays to unknown on NO_INFO. */
    assert_int_equal(flare_reachability_observe_v1(&r, 6, FLARE_AUTONAT_REACHABLE, 0), 0);
    assert_int_equal(flare_reachability_family_state(&r, 6), FLARE_REACH_PUBLIC);
    assert_int_equal(flare_reachability_family_state(&r, 4), FLARE_REACH_UNKNOWN);
    assert_int_equal(flare_reachability_observe_v1(&r, 6, FLARE_AUTONAT_REACHABLE, 0), 0);
    assert_int_equal(flare_reachability_observe_v1(&r, 6, FLARE_AUTONAT_NO_INFO, 0), 0);
    assert_int_equal(flare_reachability_family_state(&r, 6), FLARE_REACH_PUBLIC);
    assert_int_equal(flare_reachability_observe_v1(&r, 6, FLARE_AUTONAT_NO_INFO, 0), 0);
    assert_int_equal(flare_reachability_family_state(&r, 6), FLARE_REACH_UNKNOWN);
    assert_int_equal(flare_reachability_observe_v1(&r, 5, FLARE_AUTONAT_NO_INFO, 0),
                     FLARE_ERR_INVALID_ARG);
    /* v1 says public for v4, v2 says private: v2 wins. */
    assert_int_equal(flare_reachability_observe_v1(&r, 4, FLARE_AUTONAT_REACHABLE, 0), 0);
    assert_int_equal(flare_reachability_family_state(&r, 4), FLARE_REACH_PUBLIC);
    flare_multiaddr addrs[] = {flare_test_ma("/ip4/8.8.4.4/tcp/4001"),
                               flare_test_ma("/ip6/2606:4700::1/tcp/4001")};
    assert_int_equal(flare_reachability_set_addrs(&r, addrs, 2, 0), 0);
    observe_n(&r, &addrs[0], FLARE_AUTONAT_UNREACHABLE, 1);
    assert_int_equal(flare_reachability_family_state(&r, 4), FLARE_REACH_PRIVATE);
    assert_int_equal(flare_reachability_family_state(&r, 6), FLARE_REACH_UNKNOWN);
    observe_n(&r, &addrs[1], FLARE_AUTONAT_REACHABLE, 1);
    assert_int_equal(flare_reachability_family_state(&r, 6), FLARE_REACH_PUBLIC);
    /* Dropping the v4 address falls back to v1 evidence. */
    assert_int_equal(flare_reachability_set_addrs(&r, &addrs[1], 1, 0), 0);
    assert_int_equal(flare_reachability_family_state(&r, 4), FLARE_REACH_PUBLIC);
    assert_int_equal(flare_reachability_addr_state(&r, &addrs[0]), FLARE_REACH_UNKNOWN);
    assert_int_equal(flare_reachability_addr_state(&r, &addrs[1]), FLARE_REACH_PUBLIC);
    flare_reachability_free(&r);
}

static void test_reach_schedule_and_servers(void **state)
{
    const flare_tstamp S = FLARE_NS_PER_S;
    flare_reachability r;
    flare_reachability_init(&r, NULL, NULL, 1000 * S);
    assert_true(flare_reachability_expiry(&r) == 1015 * S);
    assert_int_equal(flare_reachability_handle_expiry(&r, 1014 * S), 0);
    /* New addresses while unknown: probe within 2 s. */
    flare_multiaddr a = flare_test_ma("/ip4/8.8.4.4/tcp/4001");
    assert_int_equal(flare_reachability_set_addrs(&r, &a, 1, 1001 * S), 0);
    assert_true(flare_reachability_expiry(&r) == 1003 * S);
    assert_int_equal(flare_reachability_handle_expiry(&r, 1003 * S), 1);
    assert_true(flare_reachability_expiry(&r) == 1093 * S); /* retry 90 s */
    /* Settled with full confidence: refresh after 15 min. */
    for (int i = 0; i < 4; i++)
        assert_int_equal(flare_reachability_observe_v2(&r, &a, FLARE_AUTONAT_REACHABLE, 1004 * S),
                         0);
    assert_true(flare_reachability_expiry(&r) == 1003 * S + 900 * S);
    flare_reachability_poke(&r, 1010 * S); /* nothing unknown: no change */
    assert_true(flare_reachability_expiry(&r) == 1003 * S + 900 * S);

    /* Server choice: distinct, least recently asked first. */
    flare_peerid c[] = {flare_test_pid(1), flare_test_pid(2), flare_test_pid(1), flare_test_pid(3)};
    size_t idx[4];
    assert_int_equal(flare_reachability_pick_servers(&r, 2000 * S, c, 4, 2, idx), 2);
    assert_int_equal(idx[0], 0);
    assert_int_equal(idx[1], 1);
    assert_int_equal(flare_reachability_pick_servers(&r, 2001 * S, c, 4, 2, idx), 2);
    assert_int_equal(idx[0], 3); /* never asked */
    assert_int_equal(idx[1], 0); /* asked longest ago (tie with 1: order) */
    assert_int_equal(flare_reachability_pick_servers(&r, 2002 * S, c, 4, 9, idx), 3);

    /* Probe order: unknown addresses first. */
    flare_multiaddr two[] = {a, flare_test_ma("/ip4/8.8.4.4/tcp/4002")};
    assert_int_equal(flare_reachability_set_addrs(&r, two, 2, 2003 * S), 0);
    flare_multiaddr order[4];
    assert_int_equal(flare_reachability_addrs_to_probe(&r, order, 4), 2);
    assert_true(flare_multiaddr_equal(&order[0], &two[1]));
    assert_true(flare_multiaddr_equal(&order[1], &a));
    flare_multiaddr many[33];
    for (int i = 0; i < 33; i++)
        many[i] = a;
    assert_int_equal(flare_reachability_set_addrs(&r, many, 33, 0), FLARE_ERR_TOO_LARGE);
    flare_reachability_free(&r);
}

/* The tables live on the heap at their use: nothing before the first
 * address, the addresses' size after, no event ring once the events are
 * read; the ring still keeps the newest FLARE_REACH_MAX_EVENTS, and a failed
 * allocation changes nothing. */
static void test_reach_memory(void **state)
{
    (void)state;
    flare_test_heap heap = {0};
    flare_mem mem = flare_test_heap_mem(&heap);
    flare_reachability r;
    assert_int_equal(flare_reachability_init(&r, NULL, &mem, 0), 0);
    assert_int_equal(heap.bytes, 0);
    assert_true(sizeof(r) < 1024); /* 32 KB with fixed-size tables */
    flare_multiaddr a[2] = {flare_test_ma("/ip4/8.8.4.4/tcp/4001"),
                            flare_test_ma("/ip4/8.8.4.4/tcp/4002")};
    assert_int_equal(flare_reachability_set_addrs(&r, a, 2, 0), 0);
    long with_addrs = heap.bytes;
    assert_true(with_addrs > 0);
    assert_true(with_addrs < 2 * 1024);
    /* Each flip of a makes an event: more than the ring keeps. */
    flare_reach_event ev;
    for (int i = 0; i < FLARE_REACH_MAX_EVENTS + 8; i++)
        observe_n(&r, &a[0], i % 2 ? FLARE_AUTONAT_REACHABLE : FLARE_AUTONAT_UNREACHABLE, 1);
    int n = 0, last = -1;
    while (flare_reachability_poll_event(&r, &ev) == 1) {
        n++;
        if (ev.kind == FLARE_REACH_EV_ADDR)
            last = (int)ev.new_state;
    }
    assert_int_equal(n, FLARE_REACH_MAX_EVENTS);
    assert_int_equal(last, FLARE_REACH_PUBLIC); /* the newest one is kept */
    assert_int_equal(heap.bytes, with_addrs);
    /* No memory for the new set: the old one stays. */
    heap.fail_at = heap.calls + 1;
    assert_int_equal(flare_reachability_set_addrs(&r, a + 1, 1, 0), FLARE_ERR_NOMEM);
    heap.fail_at = 0;
    assert_int_equal(flare_reachability_addr_state(&r, &a[0]), FLARE_REACH_PUBLIC);
    assert_int_equal(flare_reachability_addr_state(&r, &a[1]), FLARE_REACH_UNKNOWN);
    flare_peerid cands[3] = {flare_test_pid(1), flare_test_pid(2), flare_test_pid(3)};
    size_t idx[3];
    assert_int_equal(flare_reachability_pick_servers(&r, 5, cands, 3, 3, idx), 3);
    assert_true(heap.bytes > with_addrs);
    flare_reachability_free(&r);
    assert_int_equal(heap.bytes, 0);
    assert_int_equal(heap.blocks, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v2_encode_exact),
        cmocka_unit_test(test_v2_decode_bad),
        cmocka_unit_test(test_v2_same_ip_reachable),
        cmocka_unit_test(test_v2_nonce_and_outcomes),
        cmocka_unit_test(test_v2_dial_data),
        cmocka_unit_test(test_v2_client_refuses_costly),
        cmocka_unit_test(test_v2_server_policies),
        cmocka_unit_test(test_v2_server_ws),
        cmocka_unit_test(test_v2_server_bad_input),
        cmocka_unit_test(test_reach_confidence),
        cmocka_unit_test(test_reach_memory),
        cmocka_unit_test(test_reach_v1_and_families),
        cmocka_unit_test(test_reach_schedule_and_servers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
