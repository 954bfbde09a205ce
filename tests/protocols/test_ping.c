/* ping: RTT from injected times, echo mismatch, partial blocks, timeouts. */
#include "support/test.h"

#include "flare/ping.h"

static void test_rtt_and_partial(void **state)
{
    flare_prng prng;
    flare_prng_seed(&prng, 42);
    flare_ping_client c;
    flare_ping_server s;
    flare_buf c2s, s2c;
    flare_buf_init(&c2s, NULL);
    flare_buf_init(&s2c, NULL);
    assert_int_equal(flare_ping_client_init(&c, 0, flare_prng_rng(&prng)), FLARE_ERR_INVALID_ARG);
    assert_int_equal(flare_ping_client_init(&c, FLARE_PING_DEFAULT_TIMEOUT, flare_prng_rng(&prng)),
                     0);
    flare_ping_server_init(&s);
    assert_true(flare_ping_client_expiry(&c) == FLARE_TSTAMP_NEVER);

    assert_int_equal(flare_ping_client_send(&c, 1000, &c2s), 0);
    assert_int_equal(c2s.len, FLARE_PING_SIZE);
    assert_true(flare_ping_client_expiry(&c) == 1000 + FLARE_PING_DEFAULT_TIMEOUT);
    assert_int_equal(flare_ping_client_send(&c, 1001, &c2s), FLARE_ERR_STATE);

    /* The server echoes only complete blocks. */
    assert_int_equal(flare_ping_server_recv(&s, c2s.base, 20, &s2c), 0);
    assert_int_equal(s2c.len, 0);
    assert_int_equal(flare_ping_server_recv(&s, c2s.base + 20, 12, &s2c), 0);
    assert_int_equal(s2c.len, FLARE_PING_SIZE);
    assert_memory_equal(s2c.base, c2s.base, FLARE_PING_SIZE);

    /* The client accepts the echo in pieces. */
    flare_tstamp rtt = 0;
    assert_int_equal(flare_ping_client_recv(&c, s2c.base, 5, 1100, &rtt), 0);
    assert_int_equal(flare_ping_client_recv(&c, s2c.base + 5, 27, 1250, &rtt), 1);
    assert_true(rtt == 250);
    assert_true(flare_ping_client_expiry(&c) == FLARE_TSTAMP_NEVER);

    /* A second ping carries a fresh payload. */
    uint8_t first[FLARE_PING_SIZE];
    memcpy(first, c2s.base, sizeof(first));
    flare_buf_reset(&c2s);
    flare_buf_reset(&s2c);
    assert_int_equal(flare_ping_client_send(&c, 5000, &c2s), 0);
    assert_memory_not_equal(first, c2s.base, FLARE_PING_SIZE);
    assert_int_equal(flare_ping_server_recv(&s, c2s.base, 32, &s2c), 0);
    assert_int_equal(flare_ping_client_recv(&c, s2c.base, 32, 5007, &rtt), 1);
    assert_true(rtt == 7);

    flare_buf_free(&c2s);
    flare_buf_free(&s2c);
}

static void test_server_multiple_blocks(void **state)
{
    flare_ping_server s;
    flare_ping_server_init(&s);
    flare_buf out;
    flare_buf_init(&out, NULL);
    uint8_t in[100];
    for (size_t i = 0; i < sizeof(in); i++)
        in[i] = (uint8_t)i;
    assert_int_equal(flare_ping_server_recv(&s, in, 70, &out), 0); /* 2 blocks + 6 */
    assert_int_equal(out.len, 64);
    assert_int_equal(flare_ping_server_recv(&s, in + 70, 30, &out), 0); /* 36: 1 + 4 */
    assert_int_equal(out.len, 96);
    assert_memory_equal(out.base, in, 96);
    assert_int_equal(s.have, 4);
    flare_buf_free(&out);
}

static void test_mismatch_and_unsolicited(void **state)
{
    flare_prng prng;
    flare_prng_seed(&prng, 7);
    flare_ping_client c;
    flare_buf out;
    flare_buf_init(&out, NULL);
    assert_int_equal(flare_ping_client_init(&c, FLARE_NS_PER_S, flare_prng_rng(&prng)), 0);
    flare_tstamp rtt = 99;
    uint8_t junk[FLARE_PING_SIZE + 1] = {0};
    assert_int_equal(flare_ping_client_recv(&c, junk, 1, 0, &rtt), FLARE_ERR_PROTO);

    assert_int_equal(flare_ping_client_send(&c, 10, &out), 0);
    uint8_t echo[FLARE_PING_SIZE + 1];
    memcpy(echo, out.base, FLARE_PING_SIZE);
    echo[FLARE_PING_SIZE] = 0;
    /* More than was sent. */
    assert_int_equal(flare_ping_client_recv(&c, echo, sizeof(echo), 20, &rtt), FLARE_ERR_PROTO);
    /* One flipped bit in the last byte, after a good prefix. */
    assert_int_equal(flare_ping_client_recv(&c, echo, 31, 20, &rtt), 0);
    echo[31] ^= 1;
    assert_int_equal(flare_ping_client_recv(&c, echo + 31, 1, 20, &rtt), FLARE_ERR_PROTO);
    assert_true(rtt == 99);
    flare_buf_free(&out);
}

static void test_timeout(void **state)
{
    flare_prng prng;
    flare_prng_seed(&prng, 1);
    flare_ping_client c;
    flare_buf out;
    flare_buf_init(&out, NULL);
    flare_rng none = {0};
    assert_int_equal(flare_ping_client_init(&c, 0, none), FLARE_ERR_INVALID_ARG);
    assert_int_equal(flare_ping_client_init(&c, 500, flare_prng_rng(&prng)), 0);
    assert_int_equal(flare_ping_client_handle_expiry(&c, 10000), 0);
    assert_int_equal(flare_ping_client_send(&c, 1000, &out), 0);
    assert_true(flare_ping_client_expiry(&c) == 1500);
    assert_int_equal(flare_ping_client_handle_expiry(&c, 1499), 0);
    assert_int_equal(flare_ping_client_handle_expiry(&c, 1500), FLARE_ERR_TIMEOUT);
    assert_true(flare_ping_client_expiry(&c) == FLARE_TSTAMP_NEVER);
    /* A late echo of the abandoned ping is a protocol error. */
    flare_tstamp rtt;
    assert_int_equal(flare_ping_client_recv(&c, out.base, 32, 1600, &rtt), FLARE_ERR_PROTO);
    /* A new ping may start. */
    assert_int_equal(flare_ping_client_send(&c, 2000, &out), 0);
    flare_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rtt_and_partial),
        cmocka_unit_test(test_server_multiple_blocks),
        cmocka_unit_test(test_mismatch_and_unsolicited),
        cmocka_unit_test(test_timeout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
