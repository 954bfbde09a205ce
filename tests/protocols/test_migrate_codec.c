/* /flare/migrate/1.0.0 messages: round trips, partial input, and what no
 * honest peer sends. */
#include "support/test.h"

#include "protocols/migrate/migrate.h"

static void roundtrip(const flare__mig_msg *m, size_t want)
{
    uint8_t b[FLARE__MIG_MSG_MAX];
    size_t n = flare__mig_encode(m, b);
    assert_int_equal(n, want);
    flare__mig_msg o;
    /* Every prefix asks for more; the whole message parses. */
    for (size_t i = 0; i < n; i++)
        assert_int_equal(flare__mig_parse(b, i, &o), 0);
    assert_int_equal(flare__mig_parse(b, n, &o), (int)n);
    assert_int_equal(o.type, m->type);
    assert_int_equal(o.stream_id, m->stream_id);
    assert_int_equal(o.opener, m->opener);
    assert_int_equal(o.reason, m->reason);
    assert_true(o.rx == m->rx && o.floor == m->floor);
}

static void test_roundtrip(void **state)
{
    (void)state;
    roundtrip(&(flare__mig_msg){.type = FLARE__MIG_MIGRATE,
                                .stream_id = 0xfffffffeu,
                                .opener = FLARE__MIG_OPENER_RECEIVER,
                                .rx = UINT64_MAX,
                                .floor = 0x0102030405060708ull},
              22);
    roundtrip(&(flare__mig_msg){.type = FLARE__MIG_ACCEPT, .rx = 12345}, 9);
    roundtrip(&(flare__mig_msg){.type = FLARE__MIG_REFUSE, .reason = FLARE__MIG_R_OFFSET}, 2);
}

static void test_wire_format(void **state)
{
    (void)state;
    uint8_t b[FLARE__MIG_MSG_MAX];
    flare__mig_msg m = {
        .type = FLARE__MIG_MIGRATE, .stream_id = 3, .opener = 0, .rx = 0x100, .floor = 1};
    assert_int_equal(flare__mig_encode(&m, b), 22);
    uint8_t want[22] = {1, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    assert_memory_equal(b, want, 22);
}

static void test_refused_input(void **state)
{
    (void)state;
    flare__mig_msg o;
    uint8_t b[32] = {0};
    assert_int_equal(flare__mig_parse(b, 0, &o), 0);
    /* Unknown types. */
    b[0] = 0;
    assert_int_equal(flare__mig_parse(b, 1, &o), FLARE_ERR_PROTO);
    b[0] = 4;
    assert_int_equal(flare__mig_parse(b, 32, &o), FLARE_ERR_PROTO);
    b[0] = 0xff;
    assert_int_equal(flare__mig_parse(b, 1, &o), FLARE_ERR_PROTO);
    /* MIGRATE of stream 0 (the session) or with an opener beyond 1. */
    memset(b, 0, sizeof(b));
    b[0] = FLARE__MIG_MIGRATE;
    assert_int_equal(flare__mig_parse(b, 22, &o), FLARE_ERR_PROTO);
    b[4] = 1;
    b[5] = 2;
    assert_int_equal(flare__mig_parse(b, 22, &o), FLARE_ERR_PROTO);
    b[5] = 1;
    assert_int_equal(flare__mig_parse(b, 32, &o), 22); /* the rest is not its business */
    /* REFUSE reasons outside the list. */
    b[0] = FLARE__MIG_REFUSE;
    b[1] = 0;
    assert_int_equal(flare__mig_parse(b, 2, &o), FLARE_ERR_PROTO);
    b[1] = 6;
    assert_int_equal(flare__mig_parse(b, 2, &o), FLARE_ERR_PROTO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_wire_format),
        cmocka_unit_test(test_refused_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
