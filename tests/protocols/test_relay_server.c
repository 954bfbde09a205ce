/* Circuit Relay v2 relay core: every status the server sends, reservation
 * caps, refresh, expiry, disconnects, circuits (limits per peer, allow-list,
 * stop exchange) and the splice accounting at its exact limits. */
#include "support/test.h"

#include <stdlib.h>

#include "flare/lpframe.h"
#include "flare/relay.h"
#include "flare/relay_server.h"

#define T0   (1000 * FLARE_NS_PER_S)
#define UNIX 1700000000ULL

typedef struct fx {
    flare_privkey key;
    flare_peerid relay;
    flare_relay_server_settings cfg;
    flare_relay_server *s;
    flare_prng prng;
    flare_buf out;
} fx;

static void fake_id(flare_peerid *id, uint32_t n)
{
    uint8_t mh[34] = {0x12, 0x20};
    memcpy(mh + 2, &n, sizeof(n));
    assert_int_equal(flare_peerid_from_bytes(id, mh, sizeof(mh)), 0);
}

static void ip4(flare_ipaddr *ip, uint32_t n)
{
    flare_ipaddr_v4(ip, 10, (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n, 4001);
}

static void fx_start(fx *f)
{
    flare_prng_seed(&f->prng, 5);
    if (f->s)
        flare_relay_server_del(f->s);
    assert_int_equal(flare_relay_server_new(&f->s, &f->cfg, NULL, flare_prng_rng(&f->prng)), 0);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    flare_prng p;
    flare_prng_seed(&p, 99);
    assert_int_equal(flare_privkey_generate(&f->key, flare_prng_rng(&p)), 0);
    assert_int_equal(flare_peerid_from_pubkey(&f->relay, &f->key.pub), 0);
    flare_relay_server_settings_default(&f->cfg);
    f->cfg.key = &f->key;
    flare_buf_init(&f->out, NULL);
    fx_start(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    flare_relay_server_del(f->s);
    flare_buf_free(&f->out);
    free(f);
    return 0;
}

/* Sends one framed request body; returns the status replied (or -1 for
 * OPEN_STOP); the reply is decoded into *reply when given. */
static int hop(fx *f, const flare_buf *req, const flare_peerid *from, const flare_ipaddr *ip,
               int relayed, flare_tstamp now, flare_relay_hop_result *res, flare_relay_msg *reply)
{
    const uint8_t *msg;
    size_t len;
    flare_relay_hop_result r;
    assert_int_equal(flare_lpframe_parse(req->base, req->len, 4096, &msg, &len), (int)req->len);
    flare_buf_reset(&f->out);
    uint64_t unix_now = UNIX + (now - T0) / FLARE_NS_PER_S;
    assert_int_equal(flare_relay_server_handle_hop(f->s, msg, len, from, ip, relayed, now, unix_now,
                                                   &f->out, res ? res : &r),
                     0);
    if (!res)
        res = &r;
    if (res->action == FLARE_RELAY_HOP_OPEN_STOP) {
        assert_int_equal(f->out.len, 0);
        return -1;
    }
    flare_relay_msg m;
    assert_int_equal(flare_lpframe_parse(f->out.base, f->out.len, 4096, &msg, &len),
                     (int)f->out.len);
    assert_int_equal(flare_relay_hop_decode(msg, len, reply ? reply : &m), 0);
    assert_int_equal((reply ? reply : &m)->type, FLARE_RELAY_HOP_STATUS);
    assert_int_equal((reply ? reply : &m)->status, res->status);
    return (int)res->status;
}

static int reserve(fx *f, uint32_t peer, uint32_t ipn, int relayed, flare_tstamp now)
{
    flare_buf req;
    flare_buf_init(&req, NULL);
    assert_int_equal(flare_relay_client_reserve(&req), 0);
    flare_peerid id;
    flare_ipaddr ip;
    fake_id(&id, peer);
    ip4(&ip, ipn);
    int st = hop(f, &req, &id, &ip, relayed, now, NULL, NULL);
    flare_buf_free(&req);
    return st;
}

static int connect_to(fx *f, uint32_t src, uint32_t dst, int relayed, flare_tstamp now,
                      flare_relay_hop_result *res)
{
    flare_buf req;
    flare_buf_init(&req, NULL);
    flare_peerid s, d;
    flare_ipaddr ip;
    fake_id(&s, src);
    fake_id(&d, dst);
    ip4(&ip, src);
    assert_int_equal(flare_relay_client_connect(&d, &req), 0);
    int st = hop(f, &req, &s, &ip, relayed, now, res, NULL);
    flare_buf_free(&req);
    return st;
}

/* --- reservations --- */

static void test_reserve_ok(void **state)
{
    fx *f = *state;
    flare_multiaddr addrs[3];
    assert_int_equal(flare_multiaddr_parse(&addrs[0], "/ip4/1.2.3.4/tcp/4001"), 0);
    assert_int_equal(flare_multiaddr_parse(&addrs[1],
                                           "/ip4/1.2.3.4/tcp/4001/p2p/"
                                           "QmcgpsyWgH8Y8ajJz1Cu72KnS5uo2Aa2LpzU7kinSupeKs/"
                                           "p2p-circuit"),
                     0);
    assert_int_equal(flare_multiaddr_parse(&addrs[2], "/ip6/2001:db8::1/udp/4001/quic-v1"), 0);
    f->cfg.addrs = addrs;
    f->cfg.naddrs = 3;
    fx_start(f);

    flare_buf req;
    flare_buf_init(&req, NULL);
    assert_int_equal(flare_relay_client_reserve(&req), 0);
    flare_peerid me;
    flare_ipaddr ip;
    fake_id(&me, 1);
    ip4(&ip, 1);
    flare_relay_msg reply;
    assert_int_equal(hop(f, &req, &me, &ip, 0, T0, NULL, &reply), FLARE_RELAY_STATUS_OK);
    assert_true(reply.has_reservation && reply.has_limit);
    assert_int_equal(reply.expire, UNIX + 3600);
    assert_int_equal(reply.limit.duration, 120);
    assert_int_equal(reply.limit.data, 131072);
    assert_int_equal(reply.nrsvp_addrs, 2); /* the /p2p-circuit one is not advertised */
    flare_multiaddr ma;
    char s[FLARE_MULTIADDR_STR_MAX], want[256], rs[FLARE_PEERID_STR_MAX];
    flare_peerid_to_string(&f->relay, rs, sizeof(rs));
    assert_int_equal(
        flare_multiaddr_from_bytes(&ma, reply.rsvp_addrs[0].p, reply.rsvp_addrs[0].len), 0);
    flare_multiaddr_to_string(&ma, s, sizeof(s));
    snprintf(want, sizeof(want), "/ip4/1.2.3.4/tcp/4001/p2p/%s", rs);
    assert_string_equal(s, want);
    assert_int_equal(flare_relay_voucher_verify(reply.voucher.p, reply.voucher.len, &f->relay, &me,
                                                UNIX + 3600, UNIX),
                     0);
    /* The client side takes it end to end. */
    const uint8_t *msg;
    size_t len;
    flare_lpframe_parse(f->out.base, f->out.len, 4096, &msg, &len);
    flare_relay_reservation r;
    assert_int_equal(flare_relay_client_reserve_reply(msg, len, &f->relay, &me, UNIX, &r, NULL), 0);
    assert_int_equal(r.naddrs, 2);
    assert_true(r.has_voucher);

    assert_int_equal(flare_relay_server_num_reservations(f->s), 1);
    assert_true(flare_relay_server_has_reservation(f->s, &me, T0));
    assert_int_equal(flare_relay_server_expiry(f->s), T0 + 3600 * FLARE_NS_PER_S);
    flare_buf_free(&req);
}

static void test_reserve_refusals(void **state)
{
    fx *f = *state;
    /* Never over a relayed connection. */
    assert_int_equal(reserve(f, 1, 1, 1, T0), FLARE_RELAY_STATUS_PERMISSION_DENIED);
    assert_int_equal(flare_relay_server_num_reservations(f->s), 0);
    /* Per IP: 8 peers from one IP, the 9th is refused; other IPs fine. */
    for (uint32_t i = 0; i < 8; i++)
        assert_int_equal(reserve(f, 100 + i, 7, 0, T0), FLARE_RELAY_STATUS_OK);
    assert_int_equal(reserve(f, 200, 7, 0, T0), FLARE_RELAY_STATUS_RESERVATION_REFUSED);
    assert_int_equal(reserve(f, 200, 8, 0, T0), FLARE_RELAY_STATUS_OK);
    /* A refresh from the full IP replaces, so it is accepted. */
    assert_int_equal(reserve(f, 103, 7, 0, T0 + 10), FLARE_RELAY_STATUS_OK);
    /* Moving a reservation onto the full IP is refused; the old one stays. */
    assert_int_equal(reserve(f, 200, 7, 0, T0), FLARE_RELAY_STATUS_RESERVATION_REFUSED);
    flare_peerid p200;
    fake_id(&p200, 200);
    assert_true(flare_relay_server_has_reservation(f->s, &p200, T0));
    assert_int_equal(flare_relay_server_num_reservations(f->s), 9);
    /* Moving off it frees a slot there. */
    assert_int_equal(reserve(f, 100, 9, 0, T0), FLARE_RELAY_STATUS_OK);
    assert_int_equal(reserve(f, 200, 7, 0, T0), FLARE_RELAY_STATUS_OK);
    assert_int_equal(flare_relay_server_num_reservations(f->s), 9);

    /* A cap of 0 is 0 (not the default): nothing is reserved. */
    f->cfg.max_reservations = 0;
    fx_start(f);
    assert_int_equal(reserve(f, 1, 1, 0, T0), FLARE_RELAY_STATUS_RESOURCE_LIMIT_EXCEEDED);
    f->cfg.max_reservations = FLARE_RELAY_DEFAULT_MAX_RESERVATIONS;
    f->cfg.max_reservations_per_ip = 0;
    fx_start(f);
    assert_int_equal(reserve(f, 1, 1, 0, T0), FLARE_RELAY_STATUS_RESERVATION_REFUSED);

    /* Total cap. */
    f->cfg.max_reservations_per_ip = FLARE_RELAY_DEFAULT_MAX_PER_IP;
    f->cfg.max_reservations = 4;
    fx_start(f);
    for (uint32_t i = 0; i < 4; i++)
        assert_int_equal(reserve(f, i, i, 0, T0), FLARE_RELAY_STATUS_OK);
    assert_int_equal(reserve(f, 9, 9, 0, T0), FLARE_RELAY_STATUS_RESOURCE_LIMIT_EXCEEDED);
    assert_int_equal(reserve(f, 2, 2, 0, T0), FLARE_RELAY_STATUS_OK); /* refresh */
    /* A disconnect frees a slot. */
    flare_peerid p;
    fake_id(&p, 1);
    assert_int_equal(flare_relay_server_peer_disconnected(f->s, &p), 1);
    assert_int_equal(flare_relay_server_peer_disconnected(f->s, &p), 0);
    assert_int_equal(reserve(f, 9, 9, 0, T0), FLARE_RELAY_STATUS_OK);
    assert_int_equal(flare_relay_server_num_reservations(f->s), 4);
}

static int deny_odd(void *user, const flare_peerid *peer, const flare_ipaddr *ip)
{
    return !(ip->ip[3] & 1);
}

static void test_reserve_acl_allowlist(void **state)
{
    fx *f = *state;
    f->cfg.allow_reserve = deny_odd;
    fx_start(f);
    assert_int_equal(reserve(f, 1, 1, 0, T0), FLARE_RELAY_STATUS_PERMISSION_DENIED);
    assert_int_equal(reserve(f, 1, 2, 0, T0), FLARE_RELAY_STATUS_OK);
    /* Allow-listed peers bypass the per-IP cap. */
    flare_peerid trusted[2];
    fake_id(&trusted[0], 500);
    fake_id(&trusted[1], 501);
    f->cfg.allow_reserve = NULL;
    f->cfg.allow = trusted;
    f->cfg.nallow = 2;
    f->cfg.max_reservations_per_ip = 1;
    fx_start(f);
    assert_int_equal(reserve(f, 1, 4, 0, T0), FLARE_RELAY_STATUS_OK);
    assert_int_equal(reserve(f, 2, 4, 0, T0), FLARE_RELAY_STATUS_RESERVATION_REFUSED);
    assert_int_equal(reserve(f, 500, 4, 0, T0), FLARE_RELAY_STATUS_OK);
    assert_int_equal(reserve(f, 501, 4, 0, T0), FLARE_RELAY_STATUS_OK);
}

static void test_reserve_refresh_expiry(void **state)
{
    fx *f = *state;
    flare_peerid p;
    fake_id(&p, 1);
    assert_int_equal(reserve(f, 1, 1, 0, T0), FLARE_RELAY_STATUS_OK);
    assert_int_equal(reserve(f, 2, 2, 0, T0 + 5 * FLARE_NS_PER_S), FLARE_RELAY_STATUS_OK);
    /* Refresh 30 min later: replaces, with a new expiry. */
    flare_tstamp t1 = T0 + 1800 * FLARE_NS_PER_S;
    assert_int_equal(reserve(f, 1, 1, 0, t1), FLARE_RELAY_STATUS_OK);
    assert_int_equal(flare_relay_server_num_reservations(f->s), 2);
    /* Peer 2 expires first, exactly at its TTL. */
    flare_tstamp e2 = T0 + 3605 * FLARE_NS_PER_S;
    assert_true(flare_relay_server_expiry(f->s) <= e2);
    assert_int_equal(flare_relay_server_handle_expiry(f->s, e2 - 1), 0);
    assert_int_equal(flare_relay_server_handle_expiry(f->s, e2), 1);
    assert_int_equal(flare_relay_server_expiry(f->s), t1 + 3600 * FLARE_NS_PER_S);
    assert_true(flare_relay_server_has_reservation(f->s, &p, e2));
    /* CONNECT to the expired one: NO_RESERVATION. */
    assert_int_equal(connect_to(f, 3, 2, 0, e2, NULL), FLARE_RELAY_STATUS_NO_RESERVATION);
    /* An expired but not yet reaped reservation counts for nothing. */
    flare_tstamp e1 = t1 + 3600 * FLARE_NS_PER_S;
    assert_false(flare_relay_server_has_reservation(f->s, &p, e1));
    assert_int_equal(connect_to(f, 3, 1, 0, e1, NULL), FLARE_RELAY_STATUS_NO_RESERVATION);
    assert_int_equal(flare_relay_server_handle_expiry(f->s, e1), 1);
    assert_int_equal(flare_relay_server_expiry(f->s), FLARE_TSTAMP_NEVER);
}

static void test_reserve_flood(void **state)
{
    fx *f = *state;
    f->cfg.max_reservations = 64;
    fx_start(f);
    /* 1,000 peers from one IP: 8 get in, the relay serves everyone else. */
    int ok = 0;
    for (uint32_t i = 0; i < 1000; i++)
        ok += reserve(f, 10000 + i, 66, 0, T0) == FLARE_RELAY_STATUS_OK;
    assert_int_equal(ok, 8);
    for (uint32_t i = 0; i < 56; i++)
        assert_int_equal(reserve(f, i, i, 0, T0), FLARE_RELAY_STATUS_OK);
    assert_int_equal(reserve(f, 999, 999, 0, T0), FLARE_RELAY_STATUS_RESOURCE_LIMIT_EXCEEDED);
    /* Churn: drop and re-add many times; the index stays consistent. */
    for (uint32_t round = 0; round < 20; round++) {
        for (uint32_t i = 0; i < 56; i += 3) {
            flare_peerid p;
            fake_id(&p, i);
            assert_int_equal(flare_relay_server_peer_disconnected(f->s, &p), 1);
        }
        for (uint32_t i = 0; i < 56; i += 3)
            assert_int_equal(reserve(f, i, i, 0, T0), FLARE_RELAY_STATUS_OK);
    }
    for (uint32_t i = 0; i < 56; i++) {
        flare_peerid p;
        fake_id(&p, i);
        assert_true(flare_relay_server_has_reservation(f->s, &p, T0));
    }
    assert_int_equal(flare_relay_server_num_reservations(f->s), 64);
}

/* --- hop messages --- */

static void test_bad_messages(void **state)
{
    fx *f = *state;
    flare_peerid p;
    flare_ipaddr ip;
    fake_id(&p, 1);
    ip4(&ip, 1);
    flare_relay_hop_result res;
    static const uint8_t garbage[] = {0x08};
    static const uint8_t status[] = {0x08, 0x02, 0x28, 0x64};
    static const uint8_t connect_nopeer[] = {0x08, 0x01};
    static const uint8_t badtype[] = {0x08, 0x07};
    struct {
        const uint8_t *in;
        size_t len;
        uint32_t status;
    } cases[] = {
        {garbage, 1, FLARE_RELAY_STATUS_MALFORMED_MESSAGE},
        {NULL, 0, FLARE_RELAY_STATUS_MALFORMED_MESSAGE},
        {badtype, 2, FLARE_RELAY_STATUS_MALFORMED_MESSAGE},
        {status, 4, FLARE_RELAY_STATUS_UNEXPECTED_MESSAGE},
        {connect_nopeer, 2, FLARE_RELAY_STATUS_MALFORMED_MESSAGE},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        flare_buf_reset(&f->out);
        assert_int_equal(flare_relay_server_handle_hop(f->s, cases[i].in, cases[i].len, &p, &ip, 0,
                                                       T0, UNIX, &f->out, &res),
                         0);
        assert_int_equal(res.action, FLARE_RELAY_HOP_REPLIED);
        assert_int_equal(res.status, cases[i].status);
        flare_relay_msg m;
        const uint8_t *msg;
        size_t len;
        flare_lpframe_parse(f->out.base, f->out.len, 4096, &msg, &len);
        assert_int_equal(flare_relay_hop_decode(msg, len, &m), 0);
        assert_int_equal(m.status, cases[i].status);
    }
    flare_peerid none = {0};
    assert_int_equal(
        flare_relay_server_handle_hop(f->s, status, 4, &none, &ip, 0, T0, UNIX, &f->out, &res),
        FLARE_ERR_INVALID_ARG);
}

/* --- circuits --- */

/* Answers the stop stream of a pending circuit with status. */
static int stop_answer(fx *f, flare_relay_circuit *c, uint32_t status, flare_tstamp now,
                       flare_relay_msg *hop_reply)
{
    flare_buf sb;
    flare_buf_init(&sb, NULL);
    assert_int_equal(flare_relay_stop_reply(status, &sb), 0);
    flare_buf_reset(&f->out);
    int rv = flare_relay_server_stop_reply(f->s, c, sb.base + 1, sb.len - 1, now, &f->out);
    const uint8_t *msg;
    size_t len;
    assert_int_equal(flare_lpframe_parse(f->out.base, f->out.len, 4096, &msg, &len),
                     (int)f->out.len);
    assert_int_equal(flare_relay_hop_decode(msg, len, hop_reply), 0);
    flare_buf_free(&sb);
    return rv;
}

static void test_connect(void **state)
{
    fx *f = *state;
    /* No reservation. */
    assert_int_equal(connect_to(f, 1, 2, 0, T0, NULL), FLARE_RELAY_STATUS_NO_RESERVATION);
    assert_int_equal(reserve(f, 2, 2, 0, T0), FLARE_RELAY_STATUS_OK);
    /* Over a relayed connection. */
    assert_int_equal(connect_to(f, 1, 2, 1, T0, NULL), FLARE_RELAY_STATUS_PERMISSION_DENIED);
    /* OK: the glue opens a stop stream to the target. */
    flare_relay_hop_result res;
    assert_int_equal(connect_to(f, 1, 2, 0, T0, &res), -1);
    flare_peerid p1, p2;
    fake_id(&p1, 1);
    fake_id(&p2, 2);
    assert_true(flare_peerid_equal(&res.target, &p2));
    flare_relay_circuit *c = res.circuit;
    assert_non_null(c);
    assert_false(flare_relay_circuit_active(c));
    assert_int_equal(flare_relay_circuit_expiry(c), T0 + 30 * FLARE_NS_PER_S);
    assert_int_equal(flare_relay_circuit_check(c, T0 + 30 * FLARE_NS_PER_S - 1), 0);
    assert_int_equal(flare_relay_circuit_check(c, T0 + 30 * FLARE_NS_PER_S), FLARE_ERR_TIMEOUT);
    assert_int_equal(flare_relay_circuit_account(c, 0, 1, T0, NULL), FLARE_ERR_STATE);
    /* The StopMessage the target gets: CONNECT from the source with the limit,
     * as the stop side parses it. */
    flare_buf sb, tout;
    flare_buf_init(&sb, NULL);
    flare_buf_init(&tout, NULL);
    assert_int_equal(flare_relay_circuit_stop_request(c, &sb), 0);
    flare_relay_stop_request req;
    assert_int_equal(flare_relay_stop_handle(sb.base + 1, sb.len - 1, &req, &tout), 0);
    assert_true(flare_peerid_equal(&req.remote, &p1));
    assert_int_equal(req.limit.duration, 120);
    assert_int_equal(req.limit.data, 131072);
    /* The target accepts: the source gets OK with the limit. */
    flare_relay_msg m;
    assert_int_equal(stop_answer(f, c, FLARE_RELAY_STATUS_OK, T0 + 1, &m), 0);
    assert_int_equal(m.status, FLARE_RELAY_STATUS_OK);
    assert_int_equal(m.limit.duration, 120);
    assert_int_equal(m.limit.data, 131072);
    assert_true(flare_relay_circuit_active(c));
    assert_int_equal(flare_relay_circuit_expiry(c), T0 + 1 + 120 * FLARE_NS_PER_S);
    assert_int_equal(flare_relay_server_stop_reply(f->s, c, NULL, 0, T0, &f->out), FLARE_ERR_STATE);
    assert_int_equal(flare_relay_server_num_circuits(f->s), 1);

    /* Refused by the target: CONNECTION_FAILED and the circuit is gone. */
    assert_int_equal(connect_to(f, 3, 2, 0, T0, &res), -1);
    assert_int_equal(stop_answer(f, res.circuit, FLARE_RELAY_STATUS_PERMISSION_DENIED, T0, &m),
                     FLARE_ERR_REFUSED);
    assert_int_equal(m.status, FLARE_RELAY_STATUS_CONNECTION_FAILED);
    assert_int_equal(flare_relay_server_num_circuits(f->s), 1);
    /* Garbage from the target. */
    assert_int_equal(connect_to(f, 3, 2, 0, T0, &res), -1);
    flare_buf_reset(&f->out);
    static const uint8_t junk[] = {0x08, 0x00, 0x12};
    assert_int_equal(flare_relay_server_stop_reply(f->s, res.circuit, junk, 3, T0, &f->out),
                     FLARE_ERR_TRUNCATED);
    /* A CONNECT where a STATUS belongs. */
    assert_int_equal(connect_to(f, 3, 2, 0, T0, &res), -1);
    flare_buf_reset(&f->out);
    assert_int_equal(
        flare_relay_server_stop_reply(f->s, res.circuit, sb.base + 1, sb.len - 1, T0, &f->out),
        FLARE_ERR_PROTO);
    /* Stop stream failed or timed out. */
    assert_int_equal(connect_to(f, 3, 2, 0, T0, &res), -1);
    flare_buf_reset(&f->out);
    assert_int_equal(flare_relay_server_stop_failed(f->s, res.circuit, &f->out), 0);
    assert_int_equal(flare_relay_server_num_circuits(f->s), 1);
    flare_relay_server_circuit_close(f->s, c);
    assert_int_equal(flare_relay_server_num_circuits(f->s), 0);
    flare_buf_free(&sb);
    flare_buf_free(&tout);
}

static int deny_to_7(void *user, const flare_peerid *src, const flare_ipaddr *ip,
                     const flare_peerid *dst)
{
    flare_peerid p7;
    fake_id(&p7, 7);
    return !flare_peerid_equal(dst, &p7);
}

static void test_circuit_caps(void **state)
{
    fx *f = *state;
    flare_peerid trusted[2];
    fake_id(&trusted[0], 500);
    fake_id(&trusted[1], 501);
    f->cfg.allow = trusted;
    f->cfg.nallow = 2;
    f->cfg.allow_connect = deny_to_7;
    fx_start(f);
    assert_int_equal(reserve(f, 2, 2, 0, T0), FLARE_RELAY_STATUS_OK);
    assert_int_equal(reserve(f, 7, 7, 0, T0), FLARE_RELAY_STATUS_OK);
    assert_int_equal(connect_to(f, 1, 7, 0, T0, NULL), FLARE_RELAY_STATUS_PERMISSION_DENIED);
    /* 16 circuits to peer 2 (pending count too), the 17th is refused. */
    flare_relay_hop_result res[17];
    for (uint32_t i = 0; i < 16; i++)
        assert_int_equal(connect_to(f, 10 + i, 2, 0, T0, &res[i]), -1);
    assert_int_equal(connect_to(f, 99, 2, 0, T0, &res[16]),
                     FLARE_RELAY_STATUS_RESOURCE_LIMIT_EXCEEDED);
    flare_relay_server_circuit_close(f->s, res[3].circuit);
    assert_int_equal(connect_to(f, 99, 2, 0, T0, &res[3]), -1);
    /* Per source too: 16 from peer 1 to various targets. */
    for (uint32_t i = 0; i < 16; i++)
        flare_relay_server_circuit_close(f->s, res[i].circuit);
    for (uint32_t i = 0; i < 16; i++)
        assert_int_equal(reserve(f, 300 + i, 300 + i, 0, T0), FLARE_RELAY_STATUS_OK);
    for (uint32_t i = 0; i < 16; i++)
        assert_int_equal(connect_to(f, 1, 300 + i, 0, T0, &res[i]), -1);
    assert_int_equal(connect_to(f, 1, 2, 0, T0, NULL), FLARE_RELAY_STATUS_RESOURCE_LIMIT_EXCEEDED);
    assert_int_equal(connect_to(f, 3, 2, 0, T0, &res[16]), -1);

    /* Between trusted peers: unlimited and not counted. */
    assert_int_equal(reserve(f, 501, 501, 0, T0), FLARE_RELAY_STATUS_OK);
    flare_relay_hop_result tr;
    for (uint32_t i = 0; i < 20; i++) {
        assert_int_equal(connect_to(f, 500, 501, 0, T0, &tr), -1);
        flare_relay_limit l = flare_relay_circuit_limit(tr.circuit);
        assert_int_equal(l.duration, 0);
        assert_int_equal(l.data, 0);
    }
    /* Its StopMessage carries no Limit. */
    flare_buf sb;
    flare_buf_init(&sb, NULL);
    assert_int_equal(flare_relay_circuit_stop_request(tr.circuit, &sb), 0);
    flare_relay_msg m;
    assert_int_equal(flare_relay_stop_decode(sb.base + 1, sb.len - 1, &m), 0);
    assert_false(m.has_limit);
    assert_int_equal(stop_answer(f, tr.circuit, FLARE_RELAY_STATUS_OK, T0, &m), 0);
    assert_false(m.has_limit);
    assert_int_equal(flare_relay_circuit_expiry(tr.circuit), FLARE_TSTAMP_NEVER);
    size_t ok;
    assert_int_equal(
        flare_relay_circuit_account(tr.circuit, 0, 2048, T0 + 1000 * FLARE_NS_PER_S, &ok), 0);
    /* Trusted to untrusted is limited as usual. */
    assert_int_equal(connect_to(f, 500, 2, 0, T0, &tr), -1);
    assert_int_equal(flare_relay_circuit_limit(tr.circuit).duration, 120);
    /* Total cap. */
    f->cfg.max_circuits = 2;
    f->cfg.allow_connect = NULL;
    fx_start(f);
    assert_int_equal(reserve(f, 2, 2, 0, T0), FLARE_RELAY_STATUS_OK);
    assert_int_equal(connect_to(f, 10, 2, 0, T0, NULL), -1);
    assert_int_equal(connect_to(f, 11, 2, 0, T0, NULL), -1);
    assert_int_equal(connect_to(f, 12, 2, 0, T0, NULL), FLARE_RELAY_STATUS_RESOURCE_LIMIT_EXCEEDED);
    flare_buf_free(&sb);
}

static flare_relay_circuit *active_circuit(fx *f, flare_tstamp now)
{
    flare_relay_hop_result res;
    flare_relay_msg m;
    assert_int_equal(reserve(f, 2, 2, 0, now), FLARE_RELAY_STATUS_OK);
    assert_int_equal(connect_to(f, 1, 2, 0, now, &res), -1);
    assert_int_equal(stop_answer(f, res.circuit, FLARE_RELAY_STATUS_OK, now, &m), 0);
    return res.circuit;
}

static void test_circuit_data_limit(void **state)
{
    fx *f = *state;
    f->cfg.limit_data = 5000;
    fx_start(f);
    flare_relay_circuit *c = active_circuit(f, T0);
    size_t ok;
    /* 2048 of buffer: fill it, then reading must wait for writes. */
    assert_int_equal(flare_relay_circuit_window(c, FLARE_RELAY_SRC_TO_DST), 2048);
    assert_int_equal(flare_relay_circuit_account(c, FLARE_RELAY_SRC_TO_DST, 2048, T0, &ok), 0);
    assert_int_equal(ok, 2048);
    assert_int_equal(flare_relay_circuit_window(c, FLARE_RELAY_SRC_TO_DST), 0);
    assert_int_equal(flare_relay_circuit_account(c, FLARE_RELAY_SRC_TO_DST, 1, T0, &ok),
                     FLARE_ERR_FLOW_CONTROL);
    assert_int_equal(ok, 0);
    flare_relay_circuit_sent(c, FLARE_RELAY_SRC_TO_DST, 2048);
    assert_int_equal(flare_relay_circuit_window(c, FLARE_RELAY_SRC_TO_DST), 2048);
    assert_int_equal(flare_relay_circuit_account(c, FLARE_RELAY_SRC_TO_DST, 2048, T0, &ok), 0);
    flare_relay_circuit_sent(c, FLARE_RELAY_SRC_TO_DST, 2048);
    /* 4096 so far; 903 more is one short of the limit, the next byte
     * reaches it exactly, and any further byte is over. */
    assert_int_equal(flare_relay_circuit_account(c, FLARE_RELAY_SRC_TO_DST, 903, T0, &ok), 0);
    assert_int_equal(flare_relay_circuit_account(c, FLARE_RELAY_SRC_TO_DST, 1, T0, &ok), 1);
    assert_int_equal(ok, 1);
    assert_int_equal(flare_relay_circuit_bytes(c, FLARE_RELAY_SRC_TO_DST), 5000);
    assert_int_equal(flare_relay_circuit_account(c, FLARE_RELAY_SRC_TO_DST, 1, T0, &ok),
                     FLARE_ERR_LIMIT);
    assert_int_equal(ok, 0);
    /* The other direction has its own budget; a chunk crossing the limit is
     * cut at it. */
    assert_int_equal(flare_relay_circuit_account(c, FLARE_RELAY_DST_TO_SRC, 2000, T0, &ok), 0);
    flare_relay_circuit_sent(c, FLARE_RELAY_DST_TO_SRC, 5000); /* clamps */
    assert_int_equal(flare_relay_circuit_account(c, FLARE_RELAY_DST_TO_SRC, 2000, T0, &ok), 0);
    flare_relay_circuit_sent(c, FLARE_RELAY_DST_TO_SRC, 2000);
    assert_int_equal(flare_relay_circuit_account(c, FLARE_RELAY_DST_TO_SRC, 2000, T0, &ok),
                     FLARE_ERR_LIMIT);
    assert_int_equal(ok, 1000);
    assert_int_equal(flare_relay_circuit_bytes(c, FLARE_RELAY_DST_TO_SRC), 5000);
    assert_int_equal(flare_relay_circuit_account(c, 2, 1, T0, &ok), FLARE_ERR_INVALID_ARG);
}

static void test_circuit_duration(void **state)
{
    fx *f = *state;
    flare_relay_circuit *c = active_circuit(f, T0);
    flare_tstamp end = T0 + 120 * FLARE_NS_PER_S;
    assert_int_equal(flare_relay_circuit_expiry(c), end);
    size_t ok;
    assert_int_equal(flare_relay_circuit_account(c, 0, 10, end - 1, &ok), 0);
    assert_int_equal(flare_relay_circuit_check(c, end - 1), 0);
    assert_int_equal(flare_relay_circuit_check(c, end), FLARE_ERR_TIMEOUT);
    assert_int_equal(flare_relay_circuit_account(c, 0, 10, end, &ok), FLARE_ERR_TIMEOUT);
    assert_int_equal(ok, 0);
    /* The server frees circuits it still holds when deleted (ASan checks). */
}

static void test_no_leaks(void **state)
{
    fx *f = *state;
    flare_test_heap cnt = {0};
    flare_mem mem = flare_test_heap_mem(&cnt);
    flare_relay_server_del(f->s);
    flare_peerid trusted;
    fake_id(&trusted, 1);
    f->cfg.allow = &trusted;
    f->cfg.nallow = 1;
    assert_int_equal(flare_relay_server_new(&f->s, &f->cfg, &mem, flare_prng_rng(&f->prng)), 0);
    for (uint32_t i = 0; i < 40; i++)
        assert_int_equal(reserve(f, i, i, 0, T0), FLARE_RELAY_STATUS_OK);
    flare_relay_hop_result res;
    assert_int_equal(connect_to(f, 1, 2, 0, T0, &res), -1);
    assert_int_equal(connect_to(f, 3, 2, 0, T0, &res), -1);
    flare_relay_msg m;
    assert_int_equal(stop_answer(f, res.circuit, FLARE_RELAY_STATUS_OK, T0, &m), 0);
    flare_relay_server_del(f->s);
    f->s = NULL;
    assert_int_equal(cnt.blocks, 0);
    fx_start(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reserve_ok, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reserve_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reserve_acl_allowlist, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reserve_refresh_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reserve_flood, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_circuit_caps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_circuit_data_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_circuit_duration, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_leaks, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
