/* yamux receive buffers: freed once drained after a small batch (idle
 * streams hold none), kept up to 256 KiB for a stream that is streaming,
 * and sized for a whole Data frame at once. An idle session (its streams
 * closed, its events read) holds no stream table and at most the first
 * (smallest) event queue. */
#include "muxer/yamux_pair.h"

static uint32_t open_pair(pair *p)
{
    uint32_t id;
    assert_int_equal(flare_yamux_open_stream(p->a.y, &id, &p->a.out), 0);
    assert_int_equal(pump(p), 0);
    assert_int_equal(flare_yamux_accept_stream(p->b.y, id, &p->b.out), 0);
    assert_int_equal(pump(p), 0);
    return id;
}

static void send_bytes(pair *p, uint32_t id, size_t n)
{
    static uint8_t data[256 * 1024];
    assert_true(n <= sizeof(data));
    memset(data, 0x42, n);
    assert_int_equal(flare_yamux_write(p->a.y, id, data, n, &p->a.out), (long)n);
    assert_int_equal(deliver(p, &p->a, &p->b), 0);
}

/* Reads everything in 16 KiB chunks, as the host does. */
static size_t read_all(pair *p, uint32_t id)
{
    static uint8_t buf[16384];
    size_t got = 0;
    long k;
    while ((k = flare_yamux_read(p->b.y, id, buf, sizeof(buf), &p->b.out)) > 0)
        got += (size_t)k;
    assert_int_equal(k, FLARE_ERR_AGAIN);
    return got;
}

static const flare__ystream *rx(pair *p, uint32_t id)
{
    const flare__ystream *st = flare__ystream_find(p->b.y, id);
    assert_non_null(st);
    return st;
}

static void test_small_batches_free(void **state)
{
    (void)state;
    pair *p = pair_new();
    uint32_t id = open_pair(p);
    assert_null(rx(p, id)->buf); /* nothing before data */
    send_bytes(p, id, 100);
    assert_non_null(rx(p, id)->buf);
    assert_int_equal(read_all(p, id), 100);
    assert_null(rx(p, id)->buf);
    assert_int_equal(rx(p, id)->cap, 0);
    /* A partial read keeps the rest. */
    send_bytes(p, id, 300);
    uint8_t b[100];
    assert_int_equal(flare_yamux_read(p->b.y, id, b, sizeof(b), &p->b.out), 100);
    assert_non_null(rx(p, id)->buf);
    assert_int_equal(read_all(p, id), 200);
    assert_null(rx(p, id)->buf);
    pair_del(p);
}

static void test_streaming_keeps_buffer(void **state)
{
    (void)state;
    pair *p = pair_new();
    uint32_t id = open_pair(p);
    /* A 100 KB batch: the frame gets one buffer big enough for all of it. */
    send_bytes(p, id, 100000);
    assert_int_equal(rx(p, id)->cap, 131072);
    assert_int_equal(read_all(p, id), 100000);
    assert_non_null(rx(p, id)->buf); /* streaming: kept for the next batch */
    assert_int_equal(rx(p, id)->cap, 131072);
    assert_int_equal(pump(p), 0); /* window updates */
    send_bytes(p, id, 20000);
    assert_int_equal(rx(p, id)->cap, 131072); /* reused */
    assert_int_equal(read_all(p, id), 20000);
    /* The stream quiets down: the next small batch releases it. */
    assert_int_equal(pump(p), 0);
    send_bytes(p, id, 10);
    assert_int_equal(read_all(p, id), 10);
    assert_null(rx(p, id)->buf);
    pair_del(p);
}

static void test_large_buffer_not_kept(void **state)
{
    (void)state;
    flare_yamux_settings sa, sb;
    settings_nokeepalive(&sa, 1);
    settings_nokeepalive(&sb, 0);
    sb.initial_window = 1024 * 1024; /* lets one batch exceed 256 KiB */
    pair *p = pair_new_with(&sa, &sb);
    uint32_t id = open_pair(p);
    /* The sender learns the larger window from the ACK's window update. */
    assert_true(flare_yamux_writable(p->a.y, id) >= 512 * 1024);
    send_bytes(p, id, 200000);
    send_bytes(p, id, 200000);
    assert_true(rx(p, id)->cap > 256 * 1024);
    assert_int_equal(read_all(p, id), 400000);
    assert_null(rx(p, id)->buf);
    pair_del(p);
}

static void test_idle_session_holds_nothing(void **state)
{
    (void)state;
    pair *p = pair_new();
    uint32_t id = open_pair(p);
    send_bytes(p, id, 100);
    assert_int_equal(read_all(p, id), 100);
    assert_null(p->a.y->streams); /* one stream: held in the session */
    assert_int_equal(p->a.y->nstreams, 1);
    assert_int_equal(flare_yamux_close_stream(p->a.y, id, &p->a.out), 0);
    assert_int_equal(pump(p), 0);
    assert_int_equal(flare_yamux_close_stream(p->b.y, id, &p->b.out), 0);
    assert_int_equal(pump(p), 0);
    drain(&p->a);
    drain(&p->b);
    assert_int_equal(count_ev(&p->a, FLARE_YAMUX_EV_STREAM_CLOSED), 1);
    assert_int_equal(count_ev(&p->b, FLARE_YAMUX_EV_STREAM_CLOSED), 1);
    const side *sides[2] = {&p->a, &p->b};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(sides[i]->y->nstreams, 0);
        assert_null(sides[i]->y->streams);
        assert_int_equal(sides[i]->y->ev_len, 0);
        assert_true(sides[i]->y->ev_cap <= 4);
    }
    /* A burst larger than the first queue: drained, the queue shrinks back. */
    uint32_t ids[6];
    for (int i = 0; i < 6; i++)
        assert_int_equal(flare_yamux_open_stream(p->a.y, &ids[i], &p->a.out), 0);
    assert_int_equal(pump(p), 0);
    assert_true(p->b.y->ev_cap > 4);
    drain(&p->b);
    assert_true(p->b.y->ev_cap <= 4);
    assert_non_null(p->b.y->streams);
    pair_del(p);
}

/* The session holds its first streams itself, moves them to a table when
 * more are open, finds every one of them by id in both places, and goes
 * back to holding them itself once the table is empty. */
static void test_stream_table_inline_then_heap(void **state)
{
    (void)state;
    pair *p = pair_new();
    uint32_t ids[5];
    static int tag[5];
    for (int i = 0; i < 5; i++) {
        assert_int_equal(flare_yamux_open_stream(p->a.y, &ids[i], &p->a.out), 0);
        flare_yamux_set_stream_user(p->a.y, ids[i], &tag[i]);
        if (i == FLARE__YST_INLINE - 1)
            assert_null(p->a.y->streams);
    }
    assert_non_null(p->a.y->streams);
    assert_int_equal(pump(p), 0);
    drain(&p->b);
    assert_int_equal(count_ev(&p->b, FLARE_YAMUX_EV_STREAM_OPENED), 5);
    for (int i = 0; i < 5; i++)
        assert_ptr_equal(flare_yamux_get_stream_user(p->a.y, ids[i]), &tag[i]);
    /* The middle, the first and the last go: the others are still found. */
    const int gone[3] = {2, 0, 4};
    for (int k = 0; k < 3; k++)
        assert_int_equal(flare_yamux_reset_stream(p->a.y, ids[gone[k]], &p->a.out), 0);
    drain(&p->a);
    assert_int_equal(p->a.y->nstreams, 2);
    assert_null(flare_yamux_get_stream_user(p->a.y, ids[0]));
    assert_null(flare_yamux_get_stream_user(p->a.y, ids[2]));
    assert_null(flare_yamux_get_stream_user(p->a.y, ids[4]));
    assert_ptr_equal(flare_yamux_get_stream_user(p->a.y, ids[1]), &tag[1]);
    assert_ptr_equal(flare_yamux_get_stream_user(p->a.y, ids[3]), &tag[3]);
    assert_int_equal(flare_yamux_reset_stream(p->a.y, ids[3], &p->a.out), 0);
    assert_int_equal(flare_yamux_reset_stream(p->a.y, ids[1], &p->a.out), 0);
    drain(&p->a);
    assert_int_equal(p->a.y->nstreams, 0);
    assert_null(p->a.y->streams);
    /* Held in the session again, and still usable. */
    uint32_t id;
    assert_int_equal(flare_yamux_open_stream(p->a.y, &id, &p->a.out), 0);
    assert_null(p->a.y->streams);
    assert_true(flare_yamux_writable(p->a.y, id) > 0);
    assert_int_equal(flare_yamux_writable(p->a.y, ids[1]), 0);
    assert_int_equal(pump(p), 0);
    pair_del(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_batches_free),
        cmocka_unit_test(test_streaming_keeps_buffer),
        cmocka_unit_test(test_large_buffer_not_kept),
        cmocka_unit_test(test_idle_session_holds_nothing),
        cmocka_unit_test(test_stream_table_inline_then_heap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
