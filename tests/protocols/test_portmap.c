/* Port mapping: NAT-PMP and PCP codecs, and the client core against a
 * scripted gateway (PCP, fallback to NAT-PMP, renewal, epoch resets,
 * deletion, and hostile answers that must change nothing). */
#include "support/test.h"

#include "flare/portmap.h"

#define S FLARE_NS_PER_S

static flare_prng prng;
static flare_ipaddr me, gw;

static void setup_addrs(void)
{
    flare_prng_seed(&prng, 7);
    flare_ipaddr_parse(&me, "192.168.1.20:4001");
    flare_ipaddr_parse(&gw, "192.168.1.1:5351");
}

static flare_portmap_client *new_client(const flare_portmap_settings *cfg)
{
    static flare_portmap_client c;
    setup_addrs();
    assert_int_equal(flare_portmap_client_init(&c, cfg, 1, &me, &gw, flare_prng_rng(&prng)), 0);
    return &c;
}

/* The request the client sends now (asserts there is one). */
static size_t sent(flare_portmap_client *c, uint8_t *buf)
{
    size_t n = flare_portmap_client_poll_send(c, buf, FLARE_PCP_MAX_MSG);
    assert_true(n > 0);
    return n;
}

/* A PCP gateway's answer to req. */
static size_t pcp_answer(const uint8_t *req, size_t len, uint8_t *out, uint8_t result,
                         uint32_t lifetime, uint32_t epoch, const char *ext)
{
    uint32_t lt;
    flare_ipaddr client;
    flare_pcp_map m;
    assert_int_equal(flare_pcp_parse_map_req(req, len, &lt, &client, &m), 0);
    assert_true(flare_ipaddr_same_ip(&client, &me));
    flare_ipaddr_parse(&m.external, ext);
    m.external_port = m.external.port;
    return flare_pcp_encode_map_resp(out, FLARE_PCP_MAX_MSG, result, lifetime, epoch, &m);
}

static int next_event(flare_portmap_client *c, flare_portmap_ev_kind kind)
{
    flare_portmap_ev ev;
    if (!flare_portmap_client_poll_event(c, &ev))
        return 0;
    return ev.kind == kind;
}

static void test_codec_roundtrip(void **state)
{
    (void)state;
    setup_addrs();
    uint8_t b[FLARE_PCP_MAX_MSG];
    flare_pcp_map m = {.protocol = 6, .internal_port = 4001, .external_port = 4001};
    memset(m.nonce, 0xab, 12);
    assert_int_equal(flare_pcp_encode_map(b, sizeof(b), 7200, &me, &m), FLARE_PCP_MAP_LEN);
    assert_int_equal(flare_pcp_encode_map(b, 59, 7200, &me, &m), 0);
    uint32_t lt;
    flare_ipaddr client;
    flare_pcp_map m2;
    assert_int_equal(flare_pcp_parse_map_req(b, FLARE_PCP_MAP_LEN, &lt, &client, &m2), 0);
    assert_int_equal(lt, 7200);
    assert_int_equal(client.family, 4);
    assert_memory_equal(m2.nonce, m.nonce, 12);
    assert_int_equal(m2.internal_port, 4001);
    assert_int_equal(m2.external.family, 4); /* ::ffff:0.0.0.0: any IPv4 */

    flare_ipaddr_parse(&m.external, "198.51.100.7");
    m.external_port = 5000;
    size_t n = flare_pcp_encode_map_resp(b, sizeof(b), 0, 3600, 99, &m);
    flare_pcp_resp r;
    assert_int_equal(flare_pcp_parse(&r, b, n), 0);
    assert_int_equal(r.version, 2);
    assert_int_equal(r.opcode, FLARE_PCP_OP_MAP);
    assert_int_equal(r.lifetime, 3600);
    assert_int_equal(r.epoch, 99);
    assert_int_equal(r.map.external_port, 5000);
    assert_true(flare_ipaddr_same_ip(&r.map.external, &m.external));

    assert_int_equal(flare_natpmp_encode_map(b, sizeof(b), 1, 4001, 4001, 7200), 12);
    flare_natpmp_req q;
    assert_int_equal(flare_natpmp_parse_req(&q, b, 12), 0);
    assert_int_equal(q.op, 2);
    assert_int_equal(q.lifetime, 7200);
    flare_natpmp_resp nr = {
        .op = 130, .epoch = 5, .internal_port = 4001, .external_port = 4002, .lifetime = 60};
    assert_int_equal(flare_natpmp_encode_resp(b, sizeof(b), &nr), 16);
    flare_natpmp_resp nr2;
    assert_int_equal(flare_natpmp_parse(&nr2, b, 16), 0);
    assert_int_equal(nr2.external_port, 4002);
    assert_int_equal(nr2.lifetime, 60);
    assert_string_equal(flare_portmap_proto_name(FLARE_PORTMAP_PCP), "pcp");
    assert_string_equal(flare_portmap_proto_name(FLARE_PORTMAP_NATPMP), "nat-pmp");
}

static void test_codec_bad_input(void **state)
{
    (void)state;
    uint8_t b[FLARE_PCP_MAX_MSG + 8];
    memset(b, 0, sizeof(b));
    flare_pcp_resp r;
    flare_natpmp_resp nr;
    assert_int_equal(flare_pcp_parse(&r, b, 0), FLARE_ERR_TRUNCATED);
    assert_int_equal(flare_pcp_parse(NULL, b, 4), FLARE_ERR_INVALID_ARG);
    b[0] = 2;
    b[1] = 0x81;
    assert_int_equal(flare_pcp_parse(&r, b, 20), FLARE_ERR_TRUNCATED);
    assert_int_equal(flare_pcp_parse(&r, b, 26), FLARE_ERR_MALFORMED); /* not a multiple of 4 */
    assert_int_equal(flare_pcp_parse(&r, b, 24), FLARE_ERR_TRUNCATED); /* successful MAP, short */
    assert_int_equal(flare_pcp_parse(&r, b, sizeof(b) - 4), FLARE_ERR_TOO_LARGE);
    b[1] = 0x01; /* a request, not a response */
    assert_int_equal(flare_pcp_parse(&r, b, 60), FLARE_ERR_MALFORMED);
    b[1] = 0x81;
    /* An option whose length runs past the end. */
    b[60] = 1;
    b[62] = 0x01;
    b[63] = 0x00;
    assert_int_equal(flare_pcp_parse(&r, b, 64), FLARE_ERR_MALFORMED);
    b[62] = 0;
    b[63] = 4;
    assert_int_equal(flare_pcp_parse(&r, b, 68), 0); /* a 4-byte option is fine */
    b[0] = 1;
    assert_int_equal(flare_pcp_parse(&r, b, 60), FLARE_ERR_UNSUPPORTED);
    b[0] = 0;
    assert_int_equal(flare_natpmp_parse(&nr, b, 7), FLARE_ERR_TRUNCATED);
    b[1] = 130;
    assert_int_equal(flare_natpmp_parse(&nr, b, 12), FLARE_ERR_TRUNCATED);
    b[1] = 2; /* a request */
    assert_int_equal(flare_natpmp_parse(&nr, b, 16), FLARE_ERR_MALFORMED);
    b[1] = 131;
    assert_int_equal(flare_natpmp_parse(&nr, b, 16), FLARE_ERR_MALFORMED);
    b[0] = 3;
    b[1] = 128;
    assert_int_equal(flare_natpmp_parse(&nr, b, 16), FLARE_ERR_MALFORMED);
}

static void test_pcp_map_renew_delete(void **state)
{
    (void)state;
    flare_portmap_client *c = new_client(NULL);
    uint8_t req[FLARE_PCP_MAX_MSG], resp[FLARE_PCP_MAX_MSG];
    flare_tstamp t = 10 * S;
    flare_portmap_client_start(c, t);
    size_t n = sent(c, req);
    assert_int_equal(n, FLARE_PCP_MAP_LEN);
    size_t rn = pcp_answer(req, n, resp, 0, 9999999, 1000, "198.51.100.7:4001");
    assert_int_equal(flare_portmap_client_input(c, &gw, resp, rn, t + S / 10), 0);
    assert_true(flare_portmap_client_mapped(c));
    flare_portmap_ev ev;
    assert_true(flare_portmap_client_poll_event(c, &ev));
    assert_int_equal(ev.kind, FLARE_PORTMAP_EV_MAPPED);
    assert_int_equal(ev.proto, FLARE_PORTMAP_PCP);
    assert_int_equal(ev.lifetime, 7200); /* clamped to what we asked for */
    assert_int_equal(ev.external.port, 4001);
    /* A duplicate answer is not expected any more. */
    assert_int_equal(flare_portmap_client_input(c, &gw, resp, rn, t + S / 5), FLARE_ERR_REFUSED);

    /* Renewal at half the lifetime, same nonce. */
    flare_tstamp renew = flare_portmap_client_deadline(c);
    assert_true(renew == t + S / 10 + 3600 * S);
    flare_portmap_client_timeout(c, renew);
    size_t n2 = sent(c, req + 100);
    assert_memory_equal(req + 24, req + 100 + 24, 12);
    rn = pcp_answer(req + 100, n2, resp, 0, 7200, 1000 + 3600, "198.51.100.7:4001");
    assert_int_equal(flare_portmap_client_input(c, &gw, resp, rn, renew + S), 0);
    assert_true(next_event(c, FLARE_PORTMAP_EV_RENEWED));

    /* Stop: a delete (lifetime 0) for the mapped port. */
    flare_portmap_client_stop(c, renew + 2 * S);
    n = sent(c, req);
    uint32_t lt = 1;
    flare_ipaddr client;
    flare_pcp_map m;
    assert_int_equal(flare_pcp_parse_map_req(req, n, &lt, &client, &m), 0);
    assert_int_equal(lt, 0);
    assert_int_equal(m.internal_port, 4001);
    assert_false(flare_portmap_client_mapped(c));
    assert_true(flare_portmap_client_deadline(c) == FLARE_TSTAMP_NEVER);
}

static void test_pcp_unsupported_falls_back_to_natpmp(void **state)
{
    (void)state;
    flare_portmap_client *c = new_client(NULL);
    uint8_t req[FLARE_PCP_MAX_MSG], resp[64];
    flare_portmap_client_start(c, 0);
    sent(c, req);
    /* A NAT-PMP gateway answers version 0, result 1 (unsupported version). */
    flare_natpmp_resp nr = {.op = 129, .result = 1, .epoch = 50};
    size_t rn = flare_natpmp_encode_resp(resp, sizeof(resp), &nr);
    assert_int_equal(rn, 8);
    assert_int_equal(flare_portmap_client_input(c, &gw, resp, rn, S / 10), 0);
    size_t n = sent(c, req);
    assert_int_equal(n, 2); /* external address request */
    nr = (flare_natpmp_resp){.op = 128, .epoch = 50, .external_ip = {198, 51, 100, 9}};
    rn = flare_natpmp_encode_resp(resp, sizeof(resp), &nr);
    assert_int_equal(flare_portmap_client_input(c, &gw, resp, rn, S / 5), 0);
    n = sent(c, req);
    flare_natpmp_req q;
    assert_int_equal(flare_natpmp_parse_req(&q, req, n), 0);
    assert_int_equal(q.op, 2);
    assert_int_equal(q.internal_port, 4001);
    /* A mapping for another internal port is someone else's. */
    nr = (flare_natpmp_resp){
        .op = 130, .epoch = 50, .internal_port = 4002, .external_port = 40000, .lifetime = 3600};
    rn = flare_natpmp_encode_resp(resp, sizeof(resp), &nr);
    assert_int_equal(flare_portmap_client_input(c, &gw, resp, rn, S / 4), FLARE_ERR_REFUSED);
    nr.internal_port = 4001;
    rn = flare_natpmp_encode_resp(resp, sizeof(resp), &nr);
    assert_int_equal(flare_portmap_client_input(c, &gw, resp, rn, S / 4), 0);
    flare_portmap_ev ev;
    assert_true(flare_portmap_client_poll_event(c, &ev));
    assert_int_equal(ev.kind, FLARE_PORTMAP_EV_MAPPED);
    assert_int_equal(ev.proto, FLARE_PORTMAP_NATPMP);
    char s[64];
    flare_ipaddr_to_string(&ev.external, s, sizeof(s));
    assert_string_equal(s, "198.51.100.9:40000");
    /* Delete: NAT-PMP map with lifetime 0 and external port 0. */
    flare_portmap_client_stop(c, S);
    n = sent(c, req);
    assert_int_equal(flare_natpmp_parse_req(&q, req, n), 0);
    assert_int_equal(q.lifetime, 0);
    assert_int_equal(q.external_port, 0);
}

static void test_silence_then_backoff(void **state)
{
    (void)state;
    flare_portmap_client *c = new_client(NULL);
    uint8_t req[FLARE_PCP_MAX_MSG];
    flare_tstamp t = 0;
    flare_portmap_client_start(c, t);
    unsigned pcp = 0, natpmp = 0;
    flare_portmap_ev ev;
    int failed = 0;
    for (int i = 0; i < 20 && !failed; i++) {
        size_t n;
        while ((n = flare_portmap_client_poll_send(c, req, sizeof(req))) > 0)
            *(n == FLARE_PCP_MAP_LEN ? &pcp : &natpmp) += 1;
        t = flare_portmap_client_deadline(c);
        flare_portmap_client_timeout(c, t);
        while (flare_portmap_client_poll_event(c, &ev))
            failed |= ev.kind == FLARE_PORTMAP_EV_FAILED;
    }
    assert_true(failed);
    assert_int_equal(ev.error, FLARE_ERR_TIMEOUT);
    assert_int_equal(pcp, 4);
    assert_int_equal(natpmp, 4);
    /* 250 + 500 + 1000 + 2000 ms per protocol. */
    assert_true(t == 2 * 3750 * FLARE_NS_PER_MS);
    assert_true(flare_portmap_client_deadline(c) == t + 300 * S);
    flare_portmap_client_timeout(c, t + 300 * S);
    assert_int_equal(sent(c, req), FLARE_PCP_MAP_LEN); /* starts over */
}

static void test_hostile_answers_change_nothing(void **state)
{
    (void)state;
    flare_portmap_client *c = new_client(NULL);
    uint8_t req[FLARE_PCP_MAX_MSG], resp[FLARE_PCP_MAX_MSG + 64];
    flare_portmap_client_start(c, 0);
    size_t n = sent(c, req);
    size_t rn = pcp_answer(req, n, resp, 0, 7200, 10, "198.51.100.7:4001");
    flare_ipaddr other = gw;
    other.port = 5350;
    assert_int_equal(flare_portmap_client_input(c, &other, resp, rn, 1), FLARE_ERR_REFUSED);
    flare_ipaddr_parse(&other, "192.168.1.99:5351");
    assert_int_equal(flare_portmap_client_input(c, &other, resp, rn, 1), FLARE_ERR_REFUSED);
    /* Wrong nonce, protocol, port; zero lifetime; unspecified address. */
    uint8_t bad[FLARE_PCP_MAX_MSG + 64];
    int offs[] = {24, 36, 40};
    for (size_t i = 0; i < 3; i++) {
        memcpy(bad, resp, rn);
        bad[offs[i]] ^= 1;
        assert_int_equal(flare_portmap_client_input(c, &gw, bad, rn, 1), FLARE_ERR_REFUSED);
    }
    memcpy(bad, resp, rn);
    memset(bad + 4, 0, 4);
    assert_int_equal(flare_portmap_client_input(c, &gw, bad, rn, 1), FLARE_ERR_MALFORMED);
    memcpy(bad, resp, rn);
    memset(bad + 56, 0, 4);
    assert_int_equal(flare_portmap_client_input(c, &gw, bad, rn, 1), FLARE_ERR_MALFORMED);
    /* Oversized, truncated, garbage. */
    memcpy(bad, resp, rn);
    memset(bad + rn, 0, sizeof(bad) - rn);
    assert_int_equal(flare_portmap_client_input(c, &gw, bad, FLARE_PCP_MAX_MSG + 4, 1),
                     FLARE_ERR_TOO_LARGE);
    assert_int_equal(flare_portmap_client_input(c, &gw, resp, 30, 1), FLARE_ERR_MALFORMED);
    assert_int_equal(flare_portmap_client_input(c, &gw, resp, 0, 1), FLARE_ERR_TRUNCATED);
    for (int i = 0; i < 200; i++) {
        size_t len = 1 + flare_prng_next(&prng) % 80;
        for (size_t k = 0; k < len; k++)
            bad[k] = (uint8_t)flare_prng_next(&prng);
        bad[0] = i & 1 ? 2 : 0;
        flare_portmap_client_input(c, &gw, bad, len, 1);
    }
    /* None of it counted: still waiting, and the real answer works. */
    assert_false(flare_portmap_client_mapped(c));
    flare_portmap_ev ev;
    assert_false(flare_portmap_client_poll_event(c, &ev));
    assert_int_equal(flare_portmap_client_input(c, &gw, resp, rn, 2), 0);
    assert_true(next_event(c, FLARE_PORTMAP_EV_MAPPED));
}

static void test_epoch_reset_and_expiry(void **state)
{
    (void)state;
    flare_portmap_client *c = new_client(NULL);
    uint8_t req[FLARE_PCP_MAX_MSG], resp[FLARE_PCP_MAX_MSG];
    flare_portmap_client_start(c, 0);
    size_t n = sent(c, req);
    size_t rn = pcp_answer(req, n, resp, 0, 7200, 5000, "198.51.100.7:4001");
    assert_int_equal(flare_portmap_client_input(c, &gw, resp, rn, 0), 0);
    assert_true(next_event(c, FLARE_PORTMAP_EV_MAPPED));
    /* At the renewal the epoch went back: the gateway restarted, so the
     * answer is a new mapping, not a renewal. */
    flare_tstamp t = flare_portmap_client_deadline(c);
    flare_portmap_client_timeout(c, t);
    n = sent(c, req);
    rn = pcp_answer(req, n, resp, 0, 7200, 30, "198.51.100.7:4001");
    assert_int_equal(flare_portmap_client_input(c, &gw, resp, rn, t), 0);
    assert_true(next_event(c, FLARE_PORTMAP_EV_MAPPED));

    /* A gateway that stops answering: retransmit until the mapping expires,
     * then it is lost and mapping starts over. */
    t = flare_portmap_client_deadline(c);
    flare_tstamp expires = c->expires;
    int lost = 0;
    int sends = 0;
    for (int i = 0; i < 200 && !lost; i++) {
        flare_portmap_client_timeout(c, t);
        lost = next_event(c, FLARE_PORTMAP_EV_LOST);
        if (!lost)
            sends += flare_portmap_client_poll_send(c, req, sizeof(req)) > 0;
        assert_true(lost || flare_portmap_client_deadline(c) <= expires);
        t = flare_portmap_client_deadline(c);
    }
    assert_true(lost);
    assert_true(sends < 80); /* polite: at most one a minute once backed off */
    assert_false(flare_portmap_client_mapped(c));
    assert_int_equal(sent(c, req), FLARE_PCP_MAP_LEN);
}

static void test_refused_and_bad_init(void **state)
{
    (void)state;
    flare_portmap_client *c = new_client(NULL);
    uint8_t req[FLARE_PCP_MAX_MSG], resp[FLARE_PCP_MAX_MSG];
    flare_portmap_client_start(c, 0);
    size_t n = sent(c, req);
    size_t rn = pcp_answer(req, n, resp, 2 /* NOT_AUTHORIZED */, 0, 1, "0.0.0.0:0");
    assert_int_equal(flare_portmap_client_input(c, &gw, resp, rn, 0), 0);
    assert_int_equal(sent(c, req), 2); /* on to NAT-PMP */

    flare_portmap_client d;
    flare_portmap_settings s;
    flare_portmap_settings_default(&s);
    s.lifetime = 60;
    assert_int_equal(flare_portmap_client_init(&d, &s, 1, &me, &gw, flare_prng_rng(&prng)),
                     FLARE_ERR_INVALID_ARG);
    flare_portmap_settings_default(&s);
    s.struct_size = 1;
    assert_int_equal(flare_portmap_client_init(&d, &s, 1, &me, &gw, flare_prng_rng(&prng)),
                     FLARE_ERR_INVALID_ARG);
    flare_portmap_settings_default(&s);
    s.enable_pcp = s.enable_natpmp = 0;
    assert_int_equal(flare_portmap_client_init(&d, &s, 1, &me, &gw, flare_prng_rng(&prng)),
                     FLARE_ERR_INVALID_ARG);
    flare_ipaddr noport = me;
    noport.port = 0;
    assert_int_equal(flare_portmap_client_init(&d, NULL, 1, &noport, &gw, flare_prng_rng(&prng)),
                     FLARE_ERR_INVALID_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codec_roundtrip),
        cmocka_unit_test(test_codec_bad_input),
        cmocka_unit_test(test_pcp_map_renew_delete),
        cmocka_unit_test(test_pcp_unsupported_falls_back_to_natpmp),
        cmocka_unit_test(test_silence_then_backoff),
        cmocka_unit_test(test_hostile_answers_change_nothing),
        cmocka_unit_test(test_epoch_reset_and_expiry),
        cmocka_unit_test(test_refused_and_bad_init),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
