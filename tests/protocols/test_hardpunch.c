/* The hard-NAT punch core: codec (round trip, bad input), the TCP plan and
 * the INFO/SYNC exchange. */
#include "support/test.h"

#include <string.h>

#include "flare/hardpunch.h"
#include "flare/lpframe.h"

#define MS FLARE_NS_PER_MS

static flare_hardpunch_settings cfg;

static int setup(void **state)
{
    (void)state;
    flare_hardpunch_settings_default(&cfg);
    return 0;
}

static flare_hardpunch_info info(flare_hardpunch_nat nat, const char *ip, uint16_t port,
                                 uint32_t step)
{
    flare_hardpunch_info i = {.nat = nat, .tcp_step = step};
    if (ip) {
        assert_int_equal(flare_ipaddr_parse(&i.tcp, ip), 0);
        i.tcp.port = port;
        i.has_tcp = 1;
    }
    return i;
}

/* The frame's payload (one frame in b). */
static void unframe(const flare_buf *b, const uint8_t **msg, size_t *len)
{
    assert_int_equal(flare_lpframe_parse(b->base, b->len, 1024, msg, len), (int)b->len);
}

static void test_roundtrip(void **state)
{
    (void)state;
    flare_hardpunch_msg m = {.type = FLARE_HARDPUNCH_INFO,
                             .info = info(FLARE_HARDPUNCH_NAT_HARD, "203.0.113.2", 40001, 1)};
    flare_buf b;
    flare_buf_init(&b, NULL);
    assert_int_equal(flare_hardpunch_msg_encode(&m, &b), 0);
    const uint8_t *p;
    size_t n;
    unframe(&b, &p, &n);
    flare_hardpunch_msg d;
    assert_int_equal(flare_hardpunch_msg_decode(&d, p, n), 0);
    assert_int_equal(d.type, FLARE_HARDPUNCH_INFO);
    assert_int_equal(d.info.nat, FLARE_HARDPUNCH_NAT_HARD);
    assert_int_equal(d.info.has_tcp, 1);
    assert_true(flare_ipaddr_equal(&d.info.tcp, &m.info.tcp));
    assert_int_equal(d.info.tcp_step, 1);
    flare_buf_free(&b);
}

static void test_bad_input(void **state)
{
    (void)state;
    flare_hardpunch_msg d;
    /* no type */
    assert_int_equal(flare_hardpunch_msg_decode(&d, (const uint8_t *)"\x10\x01", 2),
                     FLARE_ERR_MALFORMED);
    /* unknown type, unknown NAT */
    assert_int_equal(flare_hardpunch_msg_decode(&d, (const uint8_t *)"\x08\x07", 2),
                     FLARE_ERR_UNKNOWN_CODE);
    assert_int_equal(flare_hardpunch_msg_decode(&d, (const uint8_t *)"\x08\x01\x10\x09", 4),
                     FLARE_ERR_UNKNOWN_CODE);
    /* type with the wrong wire type */
    assert_int_equal(flare_hardpunch_msg_decode(&d, (const uint8_t *)"\x0a\x00", 2),
                     FLARE_ERR_MALFORMED);
    /* an address that is not a multiaddr, and a UDP one */
    assert_int_equal(flare_hardpunch_msg_decode(&d, (const uint8_t *)"\x08\x01\x1a\x02\xff\xff", 6),
                     FLARE_ERR_MALFORMED);
    flare_multiaddr udp;
    assert_int_equal(flare_multiaddr_parse(&udp, "/ip4/1.2.3.4/udp/5"), 0);
    uint8_t buf[64] = {0x08, 0x01, 0x1a, (uint8_t)udp.len};
    memcpy(buf + 4, udp.bytes, udp.len);
    assert_int_equal(flare_hardpunch_msg_decode(&d, buf, 4 + udp.len), FLARE_ERR_MALFORMED);
    /* truncated varint, oversized */
    assert_int_equal(flare_hardpunch_msg_decode(&d, (const uint8_t *)"\x08", 1),
                     FLARE_ERR_TRUNCATED);
    static uint8_t big[FLARE_HARDPUNCH_MAX_MSG + 1];
    assert_int_equal(flare_hardpunch_msg_decode(&d, big, sizeof(big)), FLARE_ERR_TOO_LARGE);
    /* a step too large to be a sequence reads as 0; unknown fields are skipped */
    assert_int_equal(
        flare_hardpunch_msg_decode(&d, (const uint8_t *)"\x08\x01\x20\xc8\x01\x48\x05", 7), 0);
    assert_int_equal(d.info.tcp_step, 0);
}

static void test_plan(void **state)
{
    (void)state;
    flare_hardpunch_info hard = info(FLARE_HARDPUNCH_NAT_HARD, "203.0.113.2", 40001, 2);
    flare_hardpunch_info easy = info(FLARE_HARDPUNCH_NAT_EASY, "203.0.113.1", 4001, 0);
    flare_hardpunch_plan p;
    flare_hardpunch_plan_tcp(&hard, &easy, &cfg, &p);
    assert_int_equal(p.role, FLARE_HARDPUNCH_ROLE_HARD);
    assert_int_equal(p.n, cfg.tcp_sockets);
    assert_int_equal(p.to.port, 4001);
    flare_hardpunch_plan_tcp(&easy, &hard, &cfg, &p);
    assert_int_equal(p.role, FLARE_HARDPUNCH_ROLE_EASY);
    assert_int_equal(p.n, cfg.tcp_window);
    for (unsigned k = 0; k < p.n; k++)
        assert_int_equal(p.ports[k], 40001 + 2 * (k + 1));
    /* wrap-around stays above 1023 */
    hard.tcp.port = 65535;
    flare_hardpunch_plan_tcp(&easy, &hard, &cfg, &p);
    assert_int_equal(p.ports[0], 1025);
    /* no step: nothing to predict, and the hard side does not knock */
    hard.tcp_step = 0;
    flare_hardpunch_plan_tcp(&easy, &hard, &cfg, &p);
    assert_int_equal(p.role, FLARE_HARDPUNCH_ROLE_NONE);
    flare_hardpunch_plan_tcp(&hard, &easy, &cfg, &p);
    assert_int_equal(p.role, FLARE_HARDPUNCH_ROLE_NONE);
    /* both hard, both easy, no address */
    hard.tcp_step = 1;
    flare_hardpunch_plan_tcp(&hard, &hard, &cfg, &p);
    assert_int_equal(p.role, FLARE_HARDPUNCH_ROLE_NONE);
    flare_hardpunch_plan_tcp(&easy, &easy, &cfg, &p);
    assert_int_equal(p.role, FLARE_HARDPUNCH_ROLE_NONE);
    easy.has_tcp = 0;
    flare_hardpunch_plan_tcp(&hard, &easy, &cfg, &p);
    assert_int_equal(p.role, FLARE_HARDPUNCH_ROLE_NONE);
}

static void test_exchange(void **state)
{
    (void)state;
    flare_hardpunch a, b;
    flare_hardpunch_info ia = info(FLARE_HARDPUNCH_NAT_EASY, "203.0.113.1", 4001, 0);
    flare_hardpunch_info ib = info(FLARE_HARDPUNCH_NAT_HARD, "203.0.113.2", 40001, 1);
    flare_buf ab, ba;
    flare_buf_init(&ab, NULL);
    flare_buf_init(&ba, NULL);
    assert_int_equal(flare_hardpunch_init(&b, 1, &ib, &cfg, 0, &ba), 0);
    assert_int_equal(flare_hardpunch_init(&a, 0, &ia, &cfg, 0, &ab), 0);
    assert_int_equal(ab.len, 0);
    assert_true(ba.len > 0);
    /* B's INFO reaches A in two pieces */
    assert_int_equal(flare_hardpunch_recv(&a, ba.base, 1, 50 * MS, &ab), 0);
    assert_int_equal(ab.len, 0);
    assert_int_equal(flare_hardpunch_recv(&a, ba.base + 1, ba.len - 1, 100 * MS, &ab), 0);
    assert_int_equal(a.state, FLARE_HARDPUNCH_S_WAIT_SYNC);
    assert_int_equal(a.peer.nat, FLARE_HARDPUNCH_NAT_HARD);
    ba.len = 0;
    assert_int_equal(flare_hardpunch_recv(&b, ab.base, ab.len, 200 * MS, &ba), 0);
    assert_int_equal(b.state, FLARE_HARDPUNCH_S_WAIT_GO);
    assert_int_equal(b.rtt, 200 * MS);
    assert_int_equal(flare_hardpunch_expiry(&b), 300 * MS);
    flare_hardpunch_handle_expiry(&b, 299 * MS);
    assert_int_equal(b.state, FLARE_HARDPUNCH_S_WAIT_GO);
    flare_hardpunch_handle_expiry(&b, 300 * MS);
    assert_int_equal(b.state, FLARE_HARDPUNCH_S_GO);
    ab.len = 0;
    assert_int_equal(flare_hardpunch_recv(&a, ba.base, ba.len, 300 * MS, &ab), 0);
    assert_int_equal(a.state, FLARE_HARDPUNCH_S_GO);
    assert_int_equal(flare_hardpunch_expiry(&a), FLARE_TSTAMP_NEVER);
    /* anything after is out of turn */
    assert_int_equal(flare_hardpunch_recv(&a, ba.base, ba.len, 300 * MS, &ab), FLARE_ERR_PROTO);
    assert_int_equal(a.state, FLARE_HARDPUNCH_S_FAILED);
    flare_buf_free(&ab);
    flare_buf_free(&ba);
}

static void test_exchange_failures(void **state)
{
    (void)state;
    flare_hardpunch a;
    flare_hardpunch_info ia = {0};
    flare_buf out;
    flare_buf_init(&out, NULL);
    /* SYNC before INFO */
    assert_int_equal(flare_hardpunch_init(&a, 0, &ia, &cfg, 0, &out), 0);
    assert_int_equal(flare_hardpunch_recv(&a, (const uint8_t *)"\x02\x08\x02", 3, 0, &out),
                     FLARE_ERR_PROTO);
    /* a frame longer than allowed */
    assert_int_equal(flare_hardpunch_init(&a, 0, &ia, &cfg, 0, &out), 0);
    assert_int_equal(flare_hardpunch_recv(&a, (const uint8_t *)"\xff\x7f", 2, 0, &out),
                     FLARE_ERR_TOO_LARGE);
    assert_int_equal(flare_hardpunch_recv(&a, (const uint8_t *)"\x00", 1, 0, &out),
                     FLARE_ERR_STATE);
    /* silence until the exchange deadline */
    assert_int_equal(flare_hardpunch_init(&a, 0, &ia, &cfg, 0, &out), 0);
    assert_int_equal(flare_hardpunch_expiry(&a), cfg.exchange);
    flare_hardpunch_handle_expiry(&a, cfg.exchange);
    assert_int_equal(a.state, FLARE_HARDPUNCH_S_FAILED);
    assert_int_equal(out.len, 0);
    flare_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_plan),
        cmocka_unit_test(test_exchange),
        cmocka_unit_test(test_exchange_failures),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
