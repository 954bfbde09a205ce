/* yamux: bad input from the peer, each asserting the precise error, the
 * GoAway(protocol error) sent, and that the session is dead afterwards. */
#include "muxer/yamux_pair.h"

static side *client(void)
{
    side *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    flare_yamux_settings st;
    settings_nokeepalive(&st, 1);
    assert_int_equal(flare_yamux_new(&s->y, &st, NULL, test_rng(), 0), 0);
    flare_buf_init(&s->out, NULL);
    return s;
}

static void side_del(side *s)
{
    flare_yamux_del(s->y);
    flare_buf_free(&s->out);
    free(s);
}

/* The session died with err, sent GoAway(code) and reported it. */
static void assert_dead(side *s, int err, int goaway_code)
{
    if (goaway_code >= 0)
        assert_true(has_frame(&s->out, FLARE_YAMUX_TYPE_GO_AWAY, 0, 0, (uint32_t)goaway_code));
    drain(s);
    long e = find_ev(s, FLARE_YAMUX_EV_SESSION_ERROR, 0);
    assert_true(e >= 0);
    assert_int_equal(s->ev[e].error, err);
    assert_int_equal(inject(s, FLARE_YAMUX_TYPE_PING, FLARE_YAMUX_FLAG_SYN, 0, 1), FLARE_ERR_STATE);
}

static void test_bad_version(void **state)
{
    side *s = client();
    uint8_t h[12];
    frame(h, 1, FLARE_YAMUX_TYPE_PING, FLARE_YAMUX_FLAG_SYN, 0, 1);
    assert_int_equal(flare_yamux_recv(s->y, h, 12, 0, &s->out), FLARE_ERR_UNSUPPORTED);
    assert_dead(s, FLARE_ERR_UNSUPPORTED, FLARE_YAMUX_GOAWAY_PROTO_ERROR);
    side_del(s);
}

static void test_unknown_type(void **state)
{
    side *s = client();
    assert_int_equal(inject(s, 4, 0, 0, 0), FLARE_ERR_UNKNOWN_CODE);
    assert_dead(s, FLARE_ERR_UNKNOWN_CODE, FLARE_YAMUX_GOAWAY_PROTO_ERROR);
    side_del(s);
    s = client();
    assert_int_equal(inject(s, 0xff, FLARE_YAMUX_FLAG_SYN, 2, 5), FLARE_ERR_UNKNOWN_CODE);
    side_del(s);
}

static void test_truncated_waits(void **state)
{
    /* A header cut anywhere is kept until the rest arrives. */
    side *s = client();
    uint8_t buf[12 + 12 + 3];
    frame(buf, 0, FLARE_YAMUX_TYPE_WINDOW_UPDATE, FLARE_YAMUX_FLAG_SYN, 2, 0);
    frame(buf + 12, 0, FLARE_YAMUX_TYPE_DATA, FLARE_YAMUX_FLAG_FIN, 2, 3);
    memcpy(buf + 24, "xyz", 3);
    for (size_t cut = 0; cut < sizeof(buf); cut++) {
        assert_int_equal(flare_yamux_recv(s->y, buf + cut, 1, 0, &s->out), 0);
        drain(s);
        if (cut < 11)
            assert_int_equal(s->nev, 0);
    }
    assert_int_equal(flare_yamux_readable(s->y, 2), 3);
    assert_true(find_ev(s, FLARE_YAMUX_EV_STREAM_OPENED, 2) >= 0);
    assert_true(find_ev(s, FLARE_YAMUX_EV_STREAM_REMOTE_CLOSED, 2) >= 0);
    /* Half a header then nothing: no error, no output. */
    assert_int_equal(flare_yamux_recv(s->y, buf, 5, 0, &s->out), 0);
    assert_int_equal(s->out.len, 0);
    side_del(s);
}

static void test_window_overflow(void **state)
{
    side *s = client();
    uint32_t id;
    assert_int_equal(flare_yamux_open_stream(s->y, &id, &s->out), 0);
    /* 256 KiB + (2^32 - 256 KiB) is the maximum... */
    assert_int_equal(inject(s, FLARE_YAMUX_TYPE_WINDOW_UPDATE, FLARE_YAMUX_FLAG_ACK, id,
                            UINT32_MAX - FLARE_YAMUX_DEFAULT_WINDOW),
                     0);
    assert_int_equal(flare_yamux_writable(s->y, id), UINT32_MAX);
    /* ...one more overflows. */
    assert_int_equal(inject(s, FLARE_YAMUX_TYPE_WINDOW_UPDATE, 0, id, 1), FLARE_ERR_FLOW_CONTROL);
    assert_dead(s, FLARE_ERR_FLOW_CONTROL, FLARE_YAMUX_GOAWAY_PROTO_ERROR);
    side_del(s);
}

static void test_data_beyond_window(void **state)
{
    side *s = client();
    assert_int_equal(inject(s, FLARE_YAMUX_TYPE_WINDOW_UPDATE, FLARE_YAMUX_FLAG_SYN, 2, 0), 0);
    /* The full window is fine (header only: the check is up front). */
    assert_int_equal(inject(s, FLARE_YAMUX_TYPE_DATA, 0, 2, FLARE_YAMUX_DEFAULT_WINDOW), 0);
    uint8_t *zero = calloc(1, FLARE_YAMUX_DEFAULT_WINDOW);
    assert_int_equal(flare_yamux_recv(s->y, zero, FLARE_YAMUX_DEFAULT_WINDOW, 0, &s->out), 0);
    free(zero);
    assert_int_equal(flare_yamux_readable(s->y, 2), FLARE_YAMUX_DEFAULT_WINDOW);
    assert_int_equal(inject(s, FLARE_YAMUX_TYPE_DATA, 0, 2, 1), FLARE_ERR_FLOW_CONTROL);
    assert_dead(s, FLARE_ERR_FLOW_CONTROL, FLARE_YAMUX_GOAWAY_PROTO_ERROR);
    side_del(s);
}

static void test_giant_length(void **state)
{
    side *s = client();
    assert_int_equal(inject(s, FLARE_YAMUX_TYPE_WINDOW_UPDATE, FLARE_YAMUX_FLAG_SYN, 2, 0), 0);
    assert_int_equal(inject(s, FLARE_YAMUX_TYPE_DATA, 0, 2, UINT32_MAX), FLARE_ERR_TOO_LARGE);
    assert_dead(s, FLARE_ERR_TOO_LARGE, FLARE_YAMUX_GOAWAY_PROTO_ERROR);
    side_del(s);
    /* Also for streams we do not know: nothing is skipped blindly. */
    s = client();
    assert_int_equal(inject(s, FLARE_YAMUX_TYPE_DATA, 0, 77, 0x80000000u), FLARE_ERR_TOO_LARGE);
    side_del(s);
    /* A giant window update or ping value is just a number. */
    s = client();
    assert_int_equal(inject(s, FLARE_YAMUX_TYPE_PING, FLARE_YAMUX_FLAG_SYN, 0, UINT32_MAX), 0);
    assert_true(has_frame(&s->out, FLARE_YAMUX_TYPE_PING, FLARE_YAMUX_FLAG_ACK, 0, UINT32_MAX));
    side_del(s);
}

static void test_data_after_fin(void **state)
{
    side *s = client();
    assert_int_equal(inject(s, FLARE_YAMUX_TYPE_WINDOW_UPDATE,
                            FLARE_YAMUX_FLAG_SYN | FLARE_YAMUX_FLAG_FIN, 2, 0),
                     0);
    /* An empty Data frame (e.g. a second FIN) is harmless... */
    assert_int_equal(inject(s, FLARE_YAMUX_TYPE_DATA, FLARE_YAMUX_FLAG_FIN, 2, 0), 0);
    /* ...bytes are not. */
    assert_int_equal(inject(s, FLARE_YAMUX_TYPE_DATA, 0, 2, 1), FLARE_ERR_PROTO);
    assert_dead(s, FLARE_ERR_PROTO, FLARE_YAMUX_GOAWAY_PROTO_ERROR);
    /* The stream was torn down through events; SESSION_ERROR came last. */
    long r = find_ev(s, FLARE_YAMUX_EV_STREAM_RESET, 2);
    assert_true(r >= 0);
    assert_int_equal(s->ev[r].error, FLARE_ERR_PROTO);
    assert_true(find_ev(s, FLARE_YAMUX_EV_STREAM_CLOSED, 2) > r);
    assert_int_equal(s->ev[s->nev - 1].type, FLARE_YAMUX_EV_SESSION_ERROR);
    assert_int_equal(flare_yamux_num_streams(s->y), 0);
    side_del(s);
}

static void test_syn_reuse_and_parity(void **state)
{
    side *s = client();
    assert_int_equal(inject(s, FLARE_YAMUX_TYPE_WINDOW_UPDATE, FLARE_YAMUX_FLAG_SYN, 2, 0), 0);
    assert_int_equal(inject(s, FLARE_YAMUX_TYPE_DATA, FLARE_YAMUX_FLAG_SYN, 2, 0), FLARE_ERR_PROTO);
    assert_dead(s, FLARE_ERR_PROTO, FLARE_YAMUX_GOAWAY_PROTO_ERROR);
    side_del(s);
    /* The server opens even ids only: an odd SYN to a client is wrong. */
    s = client();
    assert_int_equal(inject(s, FLARE_YAMUX_TYPE_WINDOW_UPDATE, FLARE_YAMUX_FLAG_SYN, 3, 0),
                     FLARE_ERR_PROTO);
    side_del(s);
    /* A SYN on stream 0. */
    s = client();
    assert_int_equal(inject(s, FLARE_YAMUX_TYPE_WINDOW_UPDATE, FLARE_YAMUX_FLAG_SYN, 0, 0),
                     FLARE_ERR_PROTO);
    side_del(s);
}

static void test_stream_zero(void **state)
{
    side *s = client();
    /* A window update on stream 0 is tolerated, Data is not. */
    assert_int_equal(inject(s, FLARE_YAMUX_TYPE_WINDOW_UPDATE, 0, 0, 5), 0);
    assert_int_equal(inject(s, FLARE_YAMUX_TYPE_DATA, 0, 0, 5), FLARE_ERR_PROTO);
    assert_dead(s, FLARE_ERR_PROTO, FLARE_YAMUX_GOAWAY_PROTO_ERROR);
    side_del(s);
    /* Ping and GoAway belong to stream 0. */
    s = client();
    assert_int_equal(inject(s, FLARE_YAMUX_TYPE_PING, FLARE_YAMUX_FLAG_SYN, 5, 1), FLARE_ERR_PROTO);
    side_del(s);
    s = client();
    assert_int_equal(inject(s, FLARE_YAMUX_TYPE_GO_AWAY, 0, 2, 0), FLARE_ERR_PROTO);
    side_del(s);
}

static void test_unknown_stream_ignored(void **state)
{
    side *s = client();
    /* Data for a stream we do not know is skipped, then parsing goes on. */
    uint8_t buf[12 + 4 + 12];
    frame(buf, 0, FLARE_YAMUX_TYPE_DATA, 0, 8, 4);
    memcpy(buf + 12, "\x00\x02\x00\x01", 4); /* looks like a header: must be skipped */
    frame(buf + 16, 0, FLARE_YAMUX_TYPE_PING, FLARE_YAMUX_FLAG_SYN, 0, 42);
    assert_int_equal(flare_yamux_recv(s->y, buf, sizeof(buf), 0, &s->out), 0);
    assert_int_equal(s->out.len, 12);
    assert_true(has_frame(&s->out, FLARE_YAMUX_TYPE_PING, FLARE_YAMUX_FLAG_ACK, 0, 42));
    assert_int_equal(inject(s, FLARE_YAMUX_TYPE_WINDOW_UPDATE, FLARE_YAMUX_FLAG_RST, 10, 9), 0);
    assert_int_equal(flare_yamux_num_streams(s->y), 0);
    drain(s);
    assert_int_equal(s->nev, 0);
    side_del(s);
}

static void test_too_many_unacked(void **state)
{
    side *s = client();
    uint32_t id = 2;
    for (unsigned i = 0; i < 256; i++, id += 2)
        assert_int_equal(inject(s, FLARE_YAMUX_TYPE_WINDOW_UPDATE, FLARE_YAMUX_FLAG_SYN, id, 0), 0);
    assert_int_equal(s->out.len, 0);
    /* The 257th unacknowledged SYN is refused, with its payload dropped. */
    uint8_t buf[12 + 3];
    frame(buf, 0, FLARE_YAMUX_TYPE_DATA, FLARE_YAMUX_FLAG_SYN, id, 3);
    memcpy(buf + 12, "abc", 3);
    assert_int_equal(flare_yamux_recv(s->y, buf, sizeof(buf), 0, &s->out), 0);
    assert_true(has_frame(&s->out, FLARE_YAMUX_TYPE_WINDOW_UPDATE, FLARE_YAMUX_FLAG_RST, id, 0));
    assert_int_equal(flare_yamux_num_streams(s->y), 256);
    assert_null(flare__ystream_find(s->y, id));
    drain(s);
    assert_int_equal(count_ev(s, FLARE_YAMUX_EV_STREAM_OPENED), 256);
    /* Accepting one makes room. */
    flare_buf_reset(&s->out);
    assert_int_equal(flare_yamux_accept_stream(s->y, 2, &s->out), 0);
    assert_true(has_frame(&s->out, FLARE_YAMUX_TYPE_WINDOW_UPDATE, FLARE_YAMUX_FLAG_ACK, 2, 0));
    id += 2;
    assert_int_equal(inject(s, FLARE_YAMUX_TYPE_WINDOW_UPDATE, FLARE_YAMUX_FLAG_SYN, id, 0), 0);
    assert_int_equal(flare_yamux_num_streams(s->y), 257);
    side_del(s);
}

static void test_max_streams(void **state)
{
    side *s = calloc(1, sizeof(*s));
    flare_yamux_settings st;
    settings_nokeepalive(&st, 0);
    st.max_streams = 4;
    assert_int_equal(flare_yamux_new(&s->y, &st, NULL, test_rng(), 0), 0);
    flare_buf_init(&s->out, NULL);
    uint32_t id;
    assert_int_equal(flare_yamux_open_stream(s->y, &id, &s->out), 0);
    assert_int_equal(id, 2);
    for (uint32_t i = 1; i <= 3; i++)
        assert_int_equal(
            inject(s, FLARE_YAMUX_TYPE_WINDOW_UPDATE, FLARE_YAMUX_FLAG_SYN, 2 * i - 1, 0), 0);
    flare_buf_reset(&s->out);
    assert_int_equal(inject(s, FLARE_YAMUX_TYPE_WINDOW_UPDATE, FLARE_YAMUX_FLAG_SYN, 7, 0), 0);
    assert_true(has_frame(&s->out, FLARE_YAMUX_TYPE_WINDOW_UPDATE, FLARE_YAMUX_FLAG_RST, 7, 0));
    assert_int_equal(flare_yamux_open_stream(s->y, &id, &s->out), FLARE_ERR_LIMIT);
    assert_int_equal(flare_yamux_num_streams(s->y), 4);
    side_del(s);
}

static void test_bad_settings(void **state)
{
    flare_yamux *y;
    flare_yamux_settings st;
    flare_yamux_settings_default(&st);
    st.initial_window = 1000;
    assert_int_equal(flare_yamux_new(&y, &st, NULL, test_rng(), 0), FLARE_ERR_INVALID_ARG);
    flare_yamux_settings_default(&st);
    st.max_window = FLARE_YAMUX_DEFAULT_WINDOW - 1;
    assert_int_equal(flare_yamux_new(&y, &st, NULL, test_rng(), 0), FLARE_ERR_INVALID_ARG);
    flare_yamux_settings_default(&st);
    st.max_streams = 0;
    assert_int_equal(flare_yamux_new(&y, &st, NULL, test_rng(), 0), FLARE_ERR_INVALID_ARG);
}

static void test_remote_goaway_error_code(void **state)
{
    side *s = client();
    assert_int_equal(inject(s, FLARE_YAMUX_TYPE_GO_AWAY, 0, 0, FLARE_YAMUX_GOAWAY_PROTO_ERROR), 0);
    assert_int_equal(inject(s, FLARE_YAMUX_TYPE_GO_AWAY, 0, 0, 0), 0); /* reported once */
    drain(s);
    assert_int_equal(count_ev(s, FLARE_YAMUX_EV_GOAWAY), 1);
    assert_int_equal(s->ev[0].code, FLARE_YAMUX_GOAWAY_PROTO_ERROR);
    uint32_t id;
    assert_int_equal(flare_yamux_open_stream(s->y, &id, &s->out), FLARE_ERR_CLOSED);
    side_del(s);
}

/* An allocator that fails after a budget: NOMEM paths must not leak/crash. */
static size_t budget;
static void *lim_malloc(size_t n, void *u)
{
    return budget ? (budget--, malloc(n)) : NULL;
}
static void lim_free(void *p, void *u)
{
    free(p);
}
static void *lim_calloc(size_t k, size_t n, void *u)
{
    return budget ? (budget--, calloc(k, n)) : NULL;
}
static void *lim_realloc(void *p, size_t n, void *u)
{
    return budget ? (budget--, realloc(p, n)) : NULL;
}

static void test_nomem(void **state)
{
    const flare_mem mem = {NULL, lim_malloc, lim_free, lim_calloc, lim_realloc};
    for (size_t b = 0; b < 12; b++) {
        budget = b;
        flare_yamux *y;
        flare_yamux_settings st;
        settings_nokeepalive(&st, 1);
        if (flare_yamux_new(&y, &st, &mem, test_rng(), 0) != 0)
            continue;
        flare_buf out;
        flare_buf_init(&out, NULL); /* output uses libc: only the core is starved */
        uint8_t buf[12 * 3 + 3];
        frame(buf, 0, FLARE_YAMUX_TYPE_WINDOW_UPDATE, FLARE_YAMUX_FLAG_SYN, 2, 0);
        frame(buf + 12, 0, FLARE_YAMUX_TYPE_DATA, 0, 2, 3);
        memcpy(buf + 24, "abc", 3);
        frame(buf + 27, 0, FLARE_YAMUX_TYPE_WINDOW_UPDATE, FLARE_YAMUX_FLAG_SYN, 4, 0);
        int rv = flare_yamux_recv(y, buf, sizeof(buf), 0, &out);
        assert_true(rv == 0 || rv == FLARE_ERR_NOMEM);
        if (rv == FLARE_ERR_NOMEM)
            assert_true(
                has_frame(&out, FLARE_YAMUX_TYPE_GO_AWAY, 0, 0, FLARE_YAMUX_GOAWAY_INTERNAL_ERROR));
        uint32_t id;
        rv = flare_yamux_open_stream(y, &id, &out);
        assert_true(rv == 0 || rv == FLARE_ERR_NOMEM || rv == FLARE_ERR_STATE);
        flare_yamux_event ev;
        while (flare_yamux_poll_event(y, &ev))
            ;
        flare_yamux_del(y);
        flare_buf_free(&out);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_version),
        cmocka_unit_test(test_unknown_type),
        cmocka_unit_test(test_truncated_waits),
        cmocka_unit_test(test_window_overflow),
        cmocka_unit_test(test_data_beyond_window),
        cmocka_unit_test(test_giant_length),
        cmocka_unit_test(test_data_after_fin),
        cmocka_unit_test(test_syn_reuse_and_parity),
        cmocka_unit_test(test_stream_zero),
        cmocka_unit_test(test_unknown_stream_ignored),
        cmocka_unit_test(test_too_many_unacked),
        cmocka_unit_test(test_max_streams),
        cmocka_unit_test(test_bad_settings),
        cmocka_unit_test(test_remote_goaway_error_code),
        cmocka_unit_test(test_nomem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
