/* yamux: streams, half-close, reset, flow control, many streams, pings,
 * keepalive and GoAway, with two sessions pumped in memory. */
#include "muxer/yamux_pair.h"

static uint32_t open_and_accept(pair *p)
{
    uint32_t id;
    assert_int_equal(flare_yamux_open_stream(p->a.y, &id, &p->a.out), 0);
    assert_int_equal(pump(p), 0);
    p->b.nev = 0;
    drain(&p->b);
    long i = find_ev(&p->b, FLARE_YAMUX_EV_STREAM_OPENED, id);
    assert_true(i >= 0);
    assert_int_equal(flare_yamux_accept_stream(p->b.y, id, &p->b.out), 0);
    assert_int_equal(pump(p), 0);
    return id;
}

static void test_wire_bytes(void **state)
{
    pair *p = pair_new();
    uint32_t id;
    uint8_t want[12];
    /* The SYN goes out as a window update (delta 0 with the default window). */
    assert_int_equal(flare_yamux_open_stream(p->a.y, &id, &p->a.out), 0);
    assert_int_equal(id, 1);
    assert_int_equal(p->a.out.len, 12);
    frame(want, 0, FLARE_YAMUX_TYPE_WINDOW_UPDATE, FLARE_YAMUX_FLAG_SYN, 1, 0);
    assert_memory_equal(p->a.out.base, want, 12);
    flare_buf_reset(&p->a.out);
    assert_int_equal(flare_yamux_write(p->a.y, 1, (const uint8_t *)"hi", 2, &p->a.out), 2);
    uint8_t data[14];
    frame(data, 0, FLARE_YAMUX_TYPE_DATA, 0, 1, 2);
    memcpy(data + 12, "hi", 2);
    assert_int_equal(p->a.out.len, 14);
    assert_memory_equal(p->a.out.base, data, 14);
    flare_buf_reset(&p->a.out);
    /* The server opens even ids; a ping carries its opaque value in length. */
    assert_int_equal(flare_yamux_open_stream(p->b.y, &id, &p->b.out), 0);
    assert_int_equal(id, 2);
    assert_int_equal(flare_yamux_open_stream(p->b.y, &id, &p->b.out), 0);
    assert_int_equal(id, 4);
    flare_buf_reset(&p->b.out);
    assert_int_equal(flare_yamux_ping(p->a.y, 0, &p->a.out), 0);
    frame(want, 0, FLARE_YAMUX_TYPE_PING, FLARE_YAMUX_FLAG_SYN, 0, p->a.y->ping_opaque);
    assert_memory_equal(p->a.out.base, want, 12);
    flare_buf_reset(&p->a.out);
    assert_int_equal(flare_yamux_goaway(p->a.y, 0, &p->a.out), 0);
    frame(want, 0, FLARE_YAMUX_TYPE_GO_AWAY, 0, 0, 0);
    assert_memory_equal(p->a.out.base, want, 12);
    pair_del(p);
}

/* lazy_ack (the host's setting): a read leaves the ACK to the stream's
 * first data frame, or to flare__yamux_flush_acks at the end of the turn. */
static void test_lazy_ack(void **state)
{
    pair *p = pair_new();
    p->b.y->lazy_ack = 1;
    uint8_t buf[16], want[14];
    for (int round = 0; round < 2; round++) {
        uint32_t id;
        assert_int_equal(flare_yamux_open_stream(p->a.y, &id, &p->a.out), 0);
        assert_int_equal(flare_yamux_write(p->a.y, id, (const uint8_t *)"hi", 2, &p->a.out), 2);
        assert_int_equal(pump(p), 0);
        drain(&p->b);
        assert_int_equal(flare_yamux_read(p->b.y, id, buf, sizeof(buf), &p->b.out), 2);
        assert_int_equal(p->b.out.len, 0); /* no window update of its own */
        assert_int_equal(p->b.y->unacked_in, 1);
        assert_int_equal(p->b.y->acks_owed, 1);
        if (round == 0) {
            assert_int_equal(flare_yamux_write(p->b.y, id, (const uint8_t *)"yo", 2, &p->b.out), 2);
            frame(want, 0, FLARE_YAMUX_TYPE_DATA, FLARE_YAMUX_FLAG_ACK, id, 2);
            memcpy(want + 12, "yo", 2);
            assert_int_equal(p->b.out.len, 14);
            assert_memory_equal(p->b.out.base, want, 14);
        } else {
            assert_int_equal(flare__yamux_flush_acks(p->b.y, &p->b.out), 0);
            /* It also gives back the window the read freed. */
            frame(want, 0, FLARE_YAMUX_TYPE_WINDOW_UPDATE, FLARE_YAMUX_FLAG_ACK, id, 2);
            assert_int_equal(p->b.out.len, 12);
            assert_memory_equal(p->b.out.base, want, 12);
        }
        assert_int_equal(p->b.y->unacked_in, 0);
        assert_int_equal(p->b.y->acks_owed, 0);
        assert_int_equal(pump(p), 0);
        assert_int_equal(p->a.y->unacked_out, 0);
        assert_int_equal(flare__yamux_flush_acks(p->b.y, &p->b.out), 0);
        assert_int_equal(p->b.out.len, 0);
    }
    pair_del(p);
}

static void test_open_and_data(void **state)
{
    pair *p = pair_new();
    uint32_t id;
    assert_int_equal(flare_yamux_open_stream(p->a.y, &id, &p->a.out), 0);
    flare_yamux_set_stream_user(p->a.y, id, p);
    assert_ptr_equal(flare_yamux_get_stream_user(p->a.y, id), p);
    assert_int_equal(flare_yamux_write(p->a.y, id, (const uint8_t *)"hello", 5, &p->a.out), 5);
    assert_int_equal(pump(p), 0);
    drain(&p->b);
    assert_int_equal(p->b.nev, 2);
    assert_int_equal(p->b.ev[0].type, FLARE_YAMUX_EV_STREAM_OPENED);
    assert_int_equal(p->b.ev[0].stream_id, id);
    assert_int_equal(p->b.ev[1].type, FLARE_YAMUX_EV_STREAM_READABLE);
    assert_int_equal(flare_yamux_readable(p->b.y, id), 5);
    assert_int_equal(p->a.y->unacked_out, 1);
    assert_int_equal(p->b.y->unacked_in, 1);
    uint8_t buf[16];
    assert_int_equal(flare_yamux_read(p->b.y, id, buf, sizeof(buf), &p->b.out), 5);
    assert_memory_equal(buf, "hello", 5);
    assert_int_equal(flare_yamux_read(p->b.y, id, buf, sizeof(buf), &p->b.out), FLARE_ERR_AGAIN);
    /* Reading accepted the stream: the ACK reaches a. */
    assert_int_equal(p->b.y->unacked_in, 0);
    assert_int_equal(flare_yamux_write(p->b.y, id, (const uint8_t *)"world", 5, &p->b.out), 5);
    assert_int_equal(pump(p), 0);
    assert_int_equal(p->a.y->unacked_out, 0);
    drain(&p->a);
    long i = find_ev(&p->a, FLARE_YAMUX_EV_STREAM_READABLE, id);
    assert_true(i >= 0);
    assert_ptr_equal(p->a.ev[i].stream_user, p);
    assert_int_equal(flare_yamux_read(p->a.y, id, buf, 3, &p->a.out), 3);
    assert_int_equal(flare_yamux_read(p->a.y, id, buf + 3, 3, &p->a.out), 2);
    assert_memory_equal(buf, "world", 5);
    assert_int_equal(flare_yamux_num_streams(p->a.y), 1);
    assert_int_equal(flare_yamux_num_streams(p->b.y), 1);
    assert_int_equal(flare_yamux_read(p->a.y, 99, buf, 3, &p->a.out), FLARE_ERR_NOT_FOUND);
    assert_int_equal(flare_yamux_write(p->a.y, 99, buf, 3, &p->a.out), FLARE_ERR_NOT_FOUND);
    pair_del(p);
}

static void test_half_close(void **state)
{
    pair *p = pair_new();
    uint32_t id = open_and_accept(p);
    uint8_t buf[16];
    assert_int_equal(flare_yamux_write(p->a.y, id, (const uint8_t *)"req", 3, &p->a.out), 3);
    assert_int_equal(flare_yamux_close_stream(p->a.y, id, &p->a.out), 0);
    assert_int_equal(flare_yamux_close_stream(p->a.y, id, &p->a.out), 0); /* idempotent */
    assert_int_equal(flare_yamux_write(p->a.y, id, buf, 1, &p->a.out), FLARE_ERR_CLOSED);
    assert_int_equal(pump(p), 0);
    p->b.nev = 0;
    drain(&p->b);
    long r = find_ev(&p->b, FLARE_YAMUX_EV_STREAM_READABLE, id);
    long c = find_ev(&p->b, FLARE_YAMUX_EV_STREAM_REMOTE_CLOSED, id);
    assert_true(r >= 0 && c > r);
    assert_int_equal(flare_yamux_read(p->b.y, id, buf, sizeof(buf), &p->b.out), 3);
    assert_int_equal(flare_yamux_read(p->b.y, id, buf, sizeof(buf), &p->b.out), 0); /* EOF */
    /* b's side is still open. */
    assert_int_equal(flare_yamux_write(p->b.y, id, (const uint8_t *)"resp", 4, &p->b.out), 4);
    assert_int_equal(flare_yamux_close_stream(p->b.y, id, &p->b.out), 0);
    /* b is done both ways with nothing unread: CLOSED. */
    p->b.nev = 0;
    drain(&p->b);
    assert_int_equal(count_ev(&p->b, FLARE_YAMUX_EV_STREAM_CLOSED), 1);
    assert_int_equal(flare_yamux_num_streams(p->b.y), 0);
    assert_int_equal(pump(p), 0);
    p->a.nev = 0;
    drain(&p->a);
    /* a has unread data: no CLOSED until it is read. */
    assert_int_equal(count_ev(&p->a, FLARE_YAMUX_EV_STREAM_CLOSED), 0);
    assert_true(find_ev(&p->a, FLARE_YAMUX_EV_STREAM_REMOTE_CLOSED, id) >= 0);
    assert_int_equal(flare_yamux_read(p->a.y, id, buf, sizeof(buf), &p->a.out), 4);
    assert_memory_equal(buf, "resp", 4);
    p->a.nev = 0;
    drain(&p->a);
    assert_int_equal(count_ev(&p->a, FLARE_YAMUX_EV_STREAM_CLOSED), 1);
    assert_int_equal(flare_yamux_num_streams(p->a.y), 0);
    /* Nothing the pump carries may revive it. */
    assert_int_equal(pump(p), 0);
    assert_int_equal(flare_yamux_num_streams(p->a.y) + flare_yamux_num_streams(p->b.y), 0);
    pair_del(p);
}

static void test_reset(void **state)
{
    pair *p = pair_new();
    uint32_t id = open_and_accept(p);
    uint8_t buf[8];
    assert_int_equal(flare_yamux_write(p->b.y, id, (const uint8_t *)"data", 4, &p->b.out), 4);
    assert_int_equal(pump(p), 0);
    assert_int_equal(flare_yamux_reset_stream(p->a.y, id, &p->a.out), 0);
    assert_int_equal(flare_yamux_reset_stream(p->a.y, id, &p->a.out), 0);
    assert_int_equal(flare_yamux_read(p->a.y, id, buf, sizeof(buf), &p->a.out), FLARE_ERR_RESET);
    assert_int_equal(flare_yamux_write(p->a.y, id, buf, 1, &p->a.out), FLARE_ERR_RESET);
    assert_int_equal(flare_yamux_readable(p->a.y, id), 0);
    /* b's data in flight is dropped quietly. */
    assert_int_equal(flare_yamux_write(p->b.y, id, (const uint8_t *)"late", 4, &p->b.out), 4);
    assert_int_equal(pump(p), 0);
    p->a.nev = p->b.nev = 0;
    drain(&p->a);
    drain(&p->b);
    assert_int_equal(count_ev(&p->a, FLARE_YAMUX_EV_STREAM_CLOSED), 1);
    assert_int_equal(count_ev(&p->a, FLARE_YAMUX_EV_STREAM_RESET), 0); /* local reset */
    long r = find_ev(&p->b, FLARE_YAMUX_EV_STREAM_RESET, id);
    assert_true(r >= 0);
    assert_int_equal(p->b.ev[r].error, FLARE_ERR_RESET);
    assert_true(find_ev(&p->b, FLARE_YAMUX_EV_STREAM_CLOSED, id) > r);
    assert_int_equal(flare_yamux_num_streams(p->a.y), 0);
    assert_int_equal(flare_yamux_num_streams(p->b.y), 0);
    assert_int_equal(flare_yamux_write(p->b.y, id, buf, 1, &p->b.out), FLARE_ERR_NOT_FOUND);
    pair_del(p);
}

static void test_window_exhaustion(void **state)
{
    pair *p = pair_new();
    uint32_t id = open_and_accept(p);
    size_t big = 300 * 1024;
    uint8_t *src = malloc(big), *dst = malloc(big);
    for (size_t i = 0; i < big; i++)
        src[i] = (uint8_t)(i * 7);
    assert_int_equal(flare_yamux_writable(p->a.y, id), FLARE_YAMUX_DEFAULT_WINDOW);
    long n = flare_yamux_write(p->a.y, id, src, big, &p->a.out);
    assert_int_equal(n, FLARE_YAMUX_DEFAULT_WINDOW);
    assert_int_equal(flare_yamux_write(p->a.y, id, src + n, big - (size_t)n, &p->a.out), 0);
    assert_int_equal(pump(p), 0);
    assert_int_equal(flare_yamux_readable(p->b.y, id), FLARE_YAMUX_DEFAULT_WINDOW);
    /* Reading less than half the window sends no update. */
    assert_int_equal(flare_yamux_read(p->b.y, id, dst, 1000, &p->b.out), 1000);
    assert_int_equal(p->b.out.len, 0);
    p->a.nev = 0;
    assert_int_equal(pump(p), 0);
    drain(&p->a);
    assert_int_equal(count_ev(&p->a, FLARE_YAMUX_EV_STREAM_WRITABLE), 0);
    /* One byte short of half the window: still nothing. */
    size_t half = FLARE_YAMUX_DEFAULT_WINDOW / 2;
    assert_int_equal(flare_yamux_read(p->b.y, id, dst + 1000, half - 1001, &p->b.out), half - 1001);
    assert_int_equal(p->b.out.len, 0);
    /* Half: an update of exactly that opens a's window and a gets WRITABLE. */
    assert_int_equal(flare_yamux_read(p->b.y, id, dst + half - 1, 1, &p->b.out), 1);
    assert_int_equal(p->b.out.len, 12);
    assert_true(has_frame(&p->b.out, FLARE_YAMUX_TYPE_WINDOW_UPDATE, 0, id, (uint32_t)half));
    assert_int_equal(pump(p), 0);
    drain(&p->a);
    assert_int_equal(count_ev(&p->a, FLARE_YAMUX_EV_STREAM_WRITABLE), 1);
    assert_int_equal(flare_yamux_writable(p->a.y, id), half);
    long m = flare_yamux_write(p->a.y, id, src + n, big - (size_t)n, &p->a.out);
    assert_int_equal(m, big - (size_t)n);
    assert_int_equal(pump(p), 0);
    size_t got = half;
    while (got < big) {
        long k = flare_yamux_read(p->b.y, id, dst + got, big - got, &p->b.out);
        assert_true(k > 0);
        got += (size_t)k;
    }
    assert_memory_equal(src, dst, big);
    free(src);
    free(dst);
    pair_del(p);
}

/* Several MiB with a slow reader: never more buffered than the window, and
 * with a known RTT the window grows towards max_window. */
static void transfer(pair *p, size_t total, size_t read_chunk, uint32_t *max_buffered)
{
    uint32_t id = open_and_accept(p);
    uint8_t *dst = malloc(read_chunk);
    uint8_t src[8192];
    size_t sent = 0, got = 0;
    *max_buffered = 0;
    for (int round = 0; got < total; round++) {
        assert_true(round < 1000000);
        while (sent < total) {
            size_t want = total - sent < sizeof(src) ? total - sent : sizeof(src);
            for (size_t i = 0; i < want; i++)
                src[i] = (uint8_t)((sent + i) % 251);
            long n = flare_yamux_write(p->a.y, id, src, want, &p->a.out);
            assert_true(n >= 0);
            sent += (size_t)n;
            if ((size_t)n < want)
                break;
        }
        assert_int_equal(pump(p), 0);
        size_t buffered = flare_yamux_readable(p->b.y, id);
        if (buffered > *max_buffered)
            *max_buffered = (uint32_t)buffered;
        long k = flare_yamux_read(p->b.y, id, dst, read_chunk, &p->b.out);
        if (k == FLARE_ERR_AGAIN)
            continue;
        assert_true(k > 0);
        for (long i = 0; i < k; i++)
            assert_int_equal(dst[i], (uint8_t)((got + (size_t)i) % 251));
        got += (size_t)k;
        assert_int_equal(pump(p), 0);
    }
    free(dst);
}

static void test_large_transfer_slow_reader(void **state)
{
    pair *p = pair_new();
    uint32_t maxb;
    transfer(p, 4u << 20, 10000, &maxb);
    /* No RTT known: the window stays at 256 KiB. */
    assert_true(maxb <= FLARE_YAMUX_DEFAULT_WINDOW);
    assert_true(maxb > FLARE_YAMUX_DEFAULT_WINDOW / 2);
    pair_del(p);
}

static void test_large_transfer_autotune(void **state)
{
    flare_yamux_settings sa, sb;
    settings_nokeepalive(&sa, 1);
    settings_nokeepalive(&sb, 0);
    sb.max_window = 2u << 20;
    pair *p = pair_new_with(&sa, &sb);
    /* b measures an RTT of 10 ms; then time stands still, so every window is
     * drained "within 4 RTTs" and the window doubles up to max_window. */
    assert_int_equal(flare_yamux_ping(p->b.y, 0, &p->b.out), 0);
    p->now = 10 * FLARE_NS_PER_MS;
    assert_int_equal(pump(p), 0);
    assert_int_equal(flare_yamux_rtt(p->b.y), 10 * FLARE_NS_PER_MS);
    uint32_t maxb;
    transfer(p, 8u << 20, 1u << 20, &maxb);
    assert_true(maxb > FLARE_YAMUX_DEFAULT_WINDOW);
    assert_true(maxb <= sb.max_window);
    const flare__ystream *st = flare__ystream_find(p->b.y, 1);
    assert_non_null(st);
    assert_int_equal(st->recv_target, sb.max_window);
    pair_del(p);
}

static void test_many_streams(void **state)
{
    flare_yamux_settings sa, sb;
    settings_nokeepalive(&sa, 1);
    settings_nokeepalive(&sb, 0);
    sa.max_streams = sb.max_streams = 2000;
    pair *p = pair_new_with(&sa, &sb);
    enum { N = 1000 };
    uint32_t ids[N];
    for (int i = 0; i < N; i++) {
        int rv = flare_yamux_open_stream(p->a.y, &ids[i], &p->a.out);
        if (rv == FLARE_ERR_LIMIT) {
            /* ACK backlog full: let b accept everything so far. */
            assert_int_equal(p->a.y->unacked_out, FLARE_YAMUX_ACK_BACKLOG);
            assert_int_equal(pump(p), 0);
            p->b.nev = 0;
            drain(&p->b);
            for (size_t e = 0; e < p->b.nev; e++)
                if (p->b.ev[e].type == FLARE_YAMUX_EV_STREAM_OPENED)
                    flare_yamux_accept_stream(p->b.y, p->b.ev[e].stream_id, &p->b.out);
            assert_int_equal(pump(p), 0);
            rv = flare_yamux_open_stream(p->a.y, &ids[i], &p->a.out);
        }
        assert_int_equal(rv, 0);
        uint8_t msg[4] = {(uint8_t)(i >> 8), (uint8_t)i, 0xab, 0xcd};
        assert_int_equal(flare_yamux_write(p->a.y, ids[i], msg, 4, &p->a.out), 4);
        assert_int_equal(flare_yamux_close_stream(p->a.y, ids[i], &p->a.out), 0);
    }
    assert_int_equal(pump(p), 0);
    assert_int_equal(flare_yamux_num_streams(p->b.y), N);
    /* b echoes every stream and closes. */
    for (int i = 0; i < N; i++) {
        uint8_t msg[8];
        assert_int_equal(flare_yamux_read(p->b.y, ids[i], msg, sizeof(msg), &p->b.out), 4);
        assert_int_equal(msg[0] << 8 | msg[1], i);
        assert_int_equal(flare_yamux_write(p->b.y, ids[i], msg, 4, &p->b.out), 4);
        assert_int_equal(flare_yamux_close_stream(p->b.y, ids[i], &p->b.out), 0);
    }
    assert_int_equal(pump(p), 0);
    for (int i = 0; i < N; i++) {
        uint8_t msg[8];
        assert_int_equal(flare_yamux_read(p->a.y, ids[i], msg, sizeof(msg), &p->a.out), 4);
        assert_int_equal(msg[0] << 8 | msg[1], i);
    }
    p->a.nev = p->b.nev = 0;
    drain(&p->a);
    drain(&p->b);
    assert_int_equal(count_ev(&p->a, FLARE_YAMUX_EV_STREAM_CLOSED), N);
    assert_int_equal(flare_yamux_num_streams(p->a.y), 0);
    assert_int_equal(flare_yamux_num_streams(p->b.y), 0);
    pair_del(p);
}

static void test_ping_rtt(void **state)
{
    pair *p = pair_new();
    p->now = 1000;
    assert_int_equal(flare_yamux_ping(p->a.y, 1000, &p->a.out), 0);
    /* A second ping while one is outstanding sends nothing. */
    size_t len = p->a.out.len;
    assert_int_equal(flare_yamux_ping(p->a.y, 1000, &p->a.out), 0);
    assert_int_equal(p->a.out.len, len);
    assert_int_equal(deliver(p, &p->a, &p->b), 0);
    uint32_t opaque = p->a.y->ping_opaque;
    assert_true(has_frame(&p->b.out, FLARE_YAMUX_TYPE_PING, FLARE_YAMUX_FLAG_ACK, 0, opaque));
    p->now = 1000 + 7 * FLARE_NS_PER_MS;
    assert_int_equal(deliver(p, &p->b, &p->a), 0);
    drain(&p->a);
    assert_int_equal(p->a.nev, 1);
    assert_int_equal(p->a.ev[0].type, FLARE_YAMUX_EV_PING_RTT);
    assert_int_equal(p->a.ev[0].rtt, 7 * FLARE_NS_PER_MS);
    /* A stale ACK is ignored. */
    assert_int_equal(inject(&p->a, FLARE_YAMUX_TYPE_PING, FLARE_YAMUX_FLAG_ACK, 0, opaque), 0);
    p->a.nev = 0;
    drain(&p->a);
    assert_int_equal(p->a.nev, 0);
    pair_del(p);
}

/* A pair whose side a pings every second and gives up on an answer after
 * 500 ms; b never pings. */
static pair *pair_keepalive(void)
{
    flare_yamux_settings sa, sb;
    settings_nokeepalive(&sa, 1);
    settings_nokeepalive(&sb, 0);
    sa.keepalive_interval = 1 * FLARE_NS_PER_S;
    sa.ping_timeout = 500 * FLARE_NS_PER_MS;
    return pair_new_with(&sa, &sb);
}

/* Ping values are random: a peer that never reads its socket cannot keep
 * the session alive by guessing them (a counter would be 1, 2, 3, ...). */
static void test_ping_random_blind_ack(void **state)
{
    pair *p = pair_keepalive();
    uint32_t seen[8];
    flare_tstamp t = 1 * FLARE_NS_PER_S; /* the first keepalive */
    for (int i = 0; i < 8; i++) {
        assert_int_equal(flare_yamux_handle_expiry(p->a.y, t, &p->a.out), 0);
        seen[i] = p->a.y->ping_opaque;
        for (int j = 0; j < i; j++)
            assert_int_not_equal(seen[i], seen[j]);
        flare_buf_reset(&p->a.out);
        /* Answer it properly so the next keepalive sends a new one. */
        assert_int_equal(inject(&p->a, FLARE_YAMUX_TYPE_PING, FLARE_YAMUX_FLAG_ACK, 0, seen[i]), 0);
        t += 1 * FLARE_NS_PER_S;
    }
    /* A new ping, answered only blindly with guesses: no RTT, and the
     * session dies at the ping timeout. */
    assert_int_equal(flare_yamux_handle_expiry(p->a.y, t, &p->a.out), 0);
    uint32_t cur = p->a.y->ping_opaque;
    drain(&p->a);
    assert_int_equal(count_ev(&p->a, FLARE_YAMUX_EV_PING_RTT), 8);
    p->a.nev = 0;
    for (uint32_t g = 0; g < 64; g++)
        if (g != cur)
            assert_int_equal(inject(&p->a, FLARE_YAMUX_TYPE_PING, FLARE_YAMUX_FLAG_ACK, 0, g), 0);
    drain(&p->a);
    assert_int_equal(p->a.nev, 0);
    assert_int_equal(flare_yamux_handle_expiry(p->a.y, t + 500 * FLARE_NS_PER_MS, &p->a.out),
                     FLARE_ERR_TIMEOUT);
    pair_del(p);
}

static void test_keepalive(void **state)
{
    pair *p = pair_keepalive();
    assert_int_equal(flare_yamux_expiry(p->b.y), FLARE_TSTAMP_NEVER);
    /* No ping at start: the first one is due an interval later. */
    assert_int_equal(flare_yamux_expiry(p->a.y), 1 * FLARE_NS_PER_S);
    assert_int_equal(flare_yamux_handle_expiry(p->a.y, 0, &p->a.out), 0);
    assert_int_equal(p->a.out.len, 0);
    /* Early calls do nothing. */
    assert_int_equal(flare_yamux_handle_expiry(p->a.y, 999 * FLARE_NS_PER_MS, &p->a.out), 0);
    assert_int_equal(p->a.out.len, 0);
    /* Due: a ping, answered 2 ms later; the answer is input, so the next
     * ping is due an interval after it. */
    assert_int_equal(flare_yamux_handle_expiry(p->a.y, 1 * FLARE_NS_PER_S, &p->a.out), 0);
    assert_int_equal(flare_yamux_expiry(p->a.y), 1500 * FLARE_NS_PER_MS);
    p->now = 1002 * FLARE_NS_PER_MS;
    assert_int_equal(pump(p), 0);
    assert_int_equal(flare_yamux_rtt(p->a.y), 2 * FLARE_NS_PER_MS);
    assert_int_equal(flare_yamux_expiry(p->a.y), 2002 * FLARE_NS_PER_MS);
    assert_int_equal(flare_yamux_handle_expiry(p->a.y, 2001 * FLARE_NS_PER_MS, &p->a.out), 0);
    assert_int_equal(p->a.out.len, 0);
    /* The next ping is lost: the session times out. */
    assert_int_equal(flare_yamux_handle_expiry(p->a.y, 2002 * FLARE_NS_PER_MS, &p->a.out), 0);
    assert_true(
        has_frame(&p->a.out, FLARE_YAMUX_TYPE_PING, FLARE_YAMUX_FLAG_SYN, 0, p->a.y->ping_opaque));
    flare_buf_reset(&p->a.out);
    flare_tstamp t = flare_yamux_expiry(p->a.y);
    assert_int_equal(t, 2502 * FLARE_NS_PER_MS);
    assert_int_equal(flare_yamux_handle_expiry(p->a.y, t - 1, &p->a.out), 0);
    assert_int_equal(flare_yamux_handle_expiry(p->a.y, t, &p->a.out), FLARE_ERR_TIMEOUT);
    drain(&p->a);
    long e = find_ev(&p->a, FLARE_YAMUX_EV_SESSION_ERROR, 0);
    assert_true(e >= 0);
    assert_int_equal(p->a.ev[e].error, FLARE_ERR_TIMEOUT);
    assert_int_equal(flare_yamux_expiry(p->a.y), FLARE_TSTAMP_NEVER);
    assert_int_equal(flare_yamux_recv(p->a.y, (const uint8_t *)"x", 1, t, &p->a.out),
                     FLARE_ERR_STATE);
    uint32_t id;
    assert_int_equal(flare_yamux_open_stream(p->a.y, &id, &p->a.out), FLARE_ERR_STATE);
    pair_del(p);
}

static void test_goaway(void **state)
{
    pair *p = pair_new();
    uint32_t id = open_and_accept(p);
    assert_int_equal(flare_yamux_goaway(p->a.y, FLARE_YAMUX_GOAWAY_NORMAL, &p->a.out), 0);
    assert_int_equal(flare_yamux_goaway(p->a.y, 0, &p->a.out), FLARE_ERR_STATE);
    assert_int_equal(pump(p), 0);
    drain(&p->b);
    long e = find_ev(&p->b, FLARE_YAMUX_EV_GOAWAY, 0);
    assert_true(e >= 0);
    assert_int_equal(p->b.ev[e].code, 0);
    uint32_t nid;
    assert_int_equal(flare_yamux_open_stream(p->b.y, &nid, &p->b.out), FLARE_ERR_CLOSED);
    assert_int_equal(flare_yamux_open_stream(p->a.y, &nid, &p->a.out), FLARE_ERR_CLOSED);
    /* A SYN arriving after our GoAway is refused with RST. */
    assert_int_equal(inject(&p->a, FLARE_YAMUX_TYPE_WINDOW_UPDATE, FLARE_YAMUX_FLAG_SYN, 2, 0), 0);
    assert_true(has_frame(&p->a.out, FLARE_YAMUX_TYPE_WINDOW_UPDATE, FLARE_YAMUX_FLAG_RST, 2, 0));
    assert_null(flare__ystream_find(p->a.y, 2));
    flare_buf_reset(&p->a.out);
    /* Existing streams carry on. */
    uint8_t buf[4];
    assert_int_equal(flare_yamux_write(p->b.y, id, (const uint8_t *)"ok", 2, &p->b.out), 2);
    assert_int_equal(pump(p), 0);
    assert_int_equal(flare_yamux_read(p->a.y, id, buf, sizeof(buf), &p->a.out), 2);
    pair_del(p);
}

static void test_ack_backlog_outbound(void **state)
{
    pair *p = pair_new();
    uint32_t id;
    for (unsigned i = 0; i < FLARE_YAMUX_ACK_BACKLOG; i++)
        assert_int_equal(flare_yamux_open_stream(p->a.y, &id, &p->a.out), 0);
    assert_int_equal(flare_yamux_open_stream(p->a.y, &id, &p->a.out), FLARE_ERR_LIMIT);
    assert_int_equal(pump(p), 0);
    assert_int_equal(flare_yamux_accept_stream(p->b.y, 1, &p->b.out), 0);
    assert_int_equal(pump(p), 0);
    assert_int_equal(flare_yamux_open_stream(p->a.y, &id, &p->a.out), 0);
    assert_int_equal(id, 2 * FLARE_YAMUX_ACK_BACKLOG + 1);
    /* A peer reset of an unacked stream frees its backlog slot too. */
    assert_int_equal(pump(p), 0);
    assert_int_equal(flare_yamux_reset_stream(p->b.y, 3, &p->b.out), 0);
    assert_int_equal(pump(p), 0);
    assert_int_equal(p->a.y->unacked_out, FLARE_YAMUX_ACK_BACKLOG - 1);
    pair_del(p);
}

static void test_split_delivery(void **state)
{
    /* Every split point, down to single bytes, gives the same result. */
    for (size_t split = 1; split <= 13; split++) {
        pair *p = pair_new();
        p->split = split;
        uint32_t id = open_and_accept(p);
        assert_int_equal(
            flare_yamux_write(p->a.y, id, (const uint8_t *)"abcdefghij", 10, &p->a.out), 10);
        assert_int_equal(flare_yamux_ping(p->a.y, 0, &p->a.out), 0);
        assert_int_equal(flare_yamux_close_stream(p->a.y, id, &p->a.out), 0);
        assert_int_equal(pump(p), 0);
        uint8_t buf[16];
        assert_int_equal(flare_yamux_read(p->b.y, id, buf, sizeof(buf), &p->b.out), 10);
        assert_memory_equal(buf, "abcdefghij", 10);
        assert_int_equal(flare_yamux_read(p->b.y, id, buf, sizeof(buf), &p->b.out), 0);
        drain(&p->a);
        assert_true(find_ev(&p->a, FLARE_YAMUX_EV_PING_RTT, 0) >= 0);
        pair_del(p);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wire_bytes),
        cmocka_unit_test(test_open_and_data),
        cmocka_unit_test(test_half_close),
        cmocka_unit_test(test_reset),
        cmocka_unit_test(test_window_exhaustion),
        cmocka_unit_test(test_large_transfer_slow_reader),
        cmocka_unit_test(test_large_transfer_autotune),
        cmocka_unit_test(test_many_streams),
        cmocka_unit_test(test_ping_rtt),
        cmocka_unit_test(test_ping_random_blind_ack),
        cmocka_unit_test(test_keepalive),
        cmocka_unit_test(test_goaway),
        cmocka_unit_test(test_ack_backlog_outbound),
        cmocka_unit_test(test_split_delivery),
        cmocka_unit_test(test_lazy_ack),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
