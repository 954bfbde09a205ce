/* libp2p WebRTC message framing, and streams over data channels through the
 * host's muxer interface (two associations on a direct packet pipe). */
#include "support/test.h"

#include "transport/webrtc/frame.h"
#include "transport/webrtc/mux.h"

#define MS ((flare_tstamp)1000000)

/* ---- framing ------------------------------------------------------------------------- */

static void test_frame_roundtrip(void **state)
{
    flare_buf b;
    flare_buf_init(&b, NULL);
    static uint8_t big[FLARE__WEBRTC_MAX_DATA];
    memset(big, 0xab, sizeof(big));
    assert_int_equal(flare__webrtc_msg_encode(&b, FLARE__WEBRTC_NO_FLAG, big, sizeof(big)), 0);
    assert_true(b.len <= FLARE__WEBRTC_MAX_MSG);
    size_t first = b.len;
    assert_int_equal(flare__webrtc_msg_encode(&b, FLARE__WEBRTC_FIN, NULL, 0), 0);
    assert_int_equal(flare__webrtc_msg_encode(&b, FLARE__WEBRTC_FIN_ACK, big, 3), 0);
    assert_int_equal(flare__webrtc_msg_encode(&b, 0, big, sizeof(big)), 0); /* with a flag: fits */
    assert_true(b.len - first - 4 - 7 <= FLARE__WEBRTC_MAX_MSG);
    assert_int_equal(flare__webrtc_msg_encode(&b, FLARE__WEBRTC_NO_FLAG, big, sizeof(big) + 1),
                     FLARE_ERR_INVALID_ARG);
    flare__webrtc_msg m;
    long k = flare__webrtc_msg_parse(b.base, b.len, &m);
    assert_int_equal(k, (long)first);
    assert_int_equal(m.flag, FLARE__WEBRTC_NO_FLAG);
    assert_int_equal(m.len, sizeof(big));
    assert_memory_equal(m.data, big, sizeof(big));
    /* Incomplete: AGAIN at every cut. */
    for (size_t cut = 0; cut < first; cut += 997)
        assert_int_equal(flare__webrtc_msg_parse(b.base, cut, &m), FLARE_ERR_AGAIN);
    flare_buf_consume(&b, first);
    k = flare__webrtc_msg_parse(b.base, b.len, &m);
    assert_int_equal(k, 3); /* 02 08 00 */
    assert_int_equal(m.flag, FLARE__WEBRTC_FIN);
    assert_null(m.data);
    flare_buf_consume(&b, (size_t)k);
    k = flare__webrtc_msg_parse(b.base, b.len, &m);
    assert_int_equal(m.flag, FLARE__WEBRTC_FIN_ACK);
    assert_int_equal(m.len, 3);
    flare_buf_free(&b);
}

static void test_frame_bad_input(void **state)
{
    flare__webrtc_msg m;
    /* Prefix over 16 KiB, in two and three bytes. */
    const uint8_t big2[] = {0xff, 0x7f};
    assert_int_equal(flare__webrtc_msg_parse(big2, 2, &m), FLARE_ERR_TOO_LARGE);
    const uint8_t big3[] = {0x80, 0x80, 0x01};
    assert_int_equal(flare__webrtc_msg_parse(big3, 3, &m), FLARE_ERR_TOO_LARGE);
    const uint8_t cont3[] = {0x80, 0x80, 0x80};
    assert_int_equal(flare__webrtc_msg_parse(cont3, 3, &m), FLARE_ERR_TOO_LARGE);
    /* 16384 - 2 bytes of body: the largest allowed prefix. */
    const uint8_t max[] = {0xfe, 0x7f};
    assert_int_equal(flare__webrtc_msg_parse(max, 2, &m), FLARE_ERR_AGAIN);
    /* flag as bytes, message as varint, a group, field 0. */
    const uint8_t w1[] = {0x02, 0x0a, 0x00};
    assert_int_equal(flare__webrtc_msg_parse(w1, 3, &m), FLARE_ERR_MALFORMED);
    const uint8_t w2[] = {0x02, 0x10, 0x05};
    assert_int_equal(flare__webrtc_msg_parse(w2, 3, &m), FLARE_ERR_MALFORMED);
    const uint8_t w3[] = {0x01, 0x0b};
    assert_true(flare__webrtc_msg_parse(w3, 2, &m) < 0);
    const uint8_t w4[] = {0x02, 0x00, 0x00};
    assert_true(flare__webrtc_msg_parse(w4, 3, &m) < 0);
    /* bytes field longer than the message. */
    const uint8_t w5[] = {0x03, 0x12, 0x09, 0x00};
    assert_true(flare__webrtc_msg_parse(w5, 4, &m) < 0);
    /* Unknown flag values and unknown fields are ignored. */
    const uint8_t u[] = {0x04, 0x08, 0x07, 0x18, 0x01};
    assert_int_equal(flare__webrtc_msg_parse(u, 5, &m), 5);
    assert_int_equal(m.flag, FLARE__WEBRTC_NO_FLAG);
    /* An empty message. */
    const uint8_t e[] = {0x00};
    assert_int_equal(flare__webrtc_msg_parse(e, 1, &m), 1);
}

/* ---- streams ------------------------------------------------------------------------- */

typedef struct evlog {
    flare__mux_event e[1024];
    size_t k;
} evlog;

typedef struct net {
    flare__sctp *sa, *sb;
    flare__webrtc_mux *ma, *mb;
    flare_tstamp now;
    evlog la, lb; /* every event each muxer reported */
} net;

static const flare__muxer_ops *ops = &flare__webrtc_mux_ops;
static flare_tstamp g_base = 1000 * MS;

static void pump(net *n)
{
    uint8_t buf[4096];
    for (int moved = 1; moved;) {
        moved = 0;
        long k;
        while ((k = flare__sctp_pop_out(n->sa, buf, sizeof(buf))) > 0)
            flare__sctp_input(n->sb, buf, (size_t)k, n->now), moved = 1;
        while ((k = flare__sctp_pop_out(n->sb, buf, sizeof(buf))) > 0)
            flare__sctp_input(n->sa, buf, (size_t)k, n->now), moved = 1;
    }
}

static void run(net *n, flare_tstamp ms)
{
    flare_tstamp end = n->now + ms * MS;
    pump(n);
    while (n->now < end) {
        n->now += 10 * MS;
        if (n->ma != NULL) {
            ops->handle_expiry(n->ma, n->now, NULL);
            ops->handle_expiry(n->mb, n->now, NULL);
            /* The host polls after each batch, and sends what that produced. */
            flare__mux_event e;
            while (ops->poll_event(n->ma, &e) == 1)
                if (n->la.k < 1024)
                    n->la.e[n->la.k++] = e;
            while (ops->poll_event(n->mb, &e) == 1)
                if (n->lb.k < 1024)
                    n->lb.e[n->lb.k++] = e;
            pump(n);
        } else {
            flare__sctp_handle_expiry(n->sa, n->now);
            flare__sctp_handle_expiry(n->sb, n->now);
        }
        pump(n);
    }
}

static void net_init(net *n, uint32_t max_streams_b, size_t max_buffered_b)
{
    memset(n, 0, sizeof(*n));
    g_base += 100000 * MS;
    n->now = g_base;
    flare__sctp_cfg ca = {.is_dtls_client = 1}, cb = {.is_dtls_client = 0};
    assert_int_equal(flare__sctp_new(&n->sa, &ca, n->now), 0);
    assert_int_equal(flare__sctp_new(&n->sb, &cb, n->now), 0);
    run(n, 100);
    assert_true(flare__sctp_is_up(n->sa));
    flare__webrtc_mux_cfg ma = {.sctp = n->sa};
    flare__webrtc_mux_cfg mb = {
        .sctp = n->sb, .max_streams = max_streams_b, .max_buffered = max_buffered_b};
    assert_int_equal(flare__webrtc_mux_new(&n->ma, &ma), 0);
    assert_int_equal(flare__webrtc_mux_new(&n->mb, &mb), 0);
}

static void net_free(net *n)
{
    ops->free(n->ma);
    ops->free(n->mb);
    flare__sctp_del(n->sa);
    flare__sctp_del(n->sb);
}

static size_t count(const evlog *l, flare__mux_event_type t, uint32_t id)
{
    size_t c = 0;
    for (size_t i = 0; i < l->k; i++)
        c += l->e[i].type == t && (id == UINT32_MAX || l->e[i].stream_id == id);
    return c;
}

/* Runs until l has an event t on id (at most 5 s); returns whether it came. */
static int wait_for(net *n, const evlog *l, flare__mux_event_type t, uint32_t id)
{
    for (int i = 0; i < 500 && count(l, t, id) == 0; i++)
        run(n, 10);
    return count(l, t, id) > 0;
}

/* Reads everything readable on id into dst; returns the bytes read, sets
 * *eof on the end of stream. */
static size_t read_all(flare__webrtc_mux *m, uint32_t id, uint8_t *dst, size_t cap, int *eof)
{
    size_t got = 0;
    for (;;) {
        long r = ops->read(m, id, dst + got, cap - got, NULL);
        if (r == 0)
            *eof = 1;
        if (r <= 0)
            return got;
        got += (size_t)r;
    }
}

/* 256 KiB one way, bytes back the other way, half-close both ways, the
 * channel gone. */
static void test_stream_echo_and_half_close(void **state)
{
    net n;
    net_init(&n, 0, 0);
    uint32_t id;
    assert_int_equal(ops->open_stream(n.ma, &id, NULL), 0);
    size_t total = 256 * 1024, sent = 0, got = 0;
    uint8_t *data = malloc(total), *rx = malloc(total);
    for (size_t i = 0; i < total; i++)
        data[i] = (uint8_t)(i * 31 + i / 251);
    int eof = 0;
    for (int round = 0; round < 2000 && !eof; round++) {
        if (sent < total) {
            long w = ops->write(n.ma, id, data + sent, total - sent, NULL);
            assert_true(w >= 0);
            sent += (size_t)w;
            if (sent == total)
                assert_int_equal(ops->close_stream(n.ma, id, NULL), 0);
        }
        run(&n, 10);
        if (count(&n.lb, FLARE__MUX_EV_STREAM_OPENED, id))
            got += read_all(n.mb, id, rx + got, total - got, &eof);
    }
    assert_int_equal(count(&n.lb, FLARE__MUX_EV_STREAM_OPENED, id), 1);
    assert_true(count(&n.lb, FLARE__MUX_EV_STREAM_READABLE, id) > 0);
    assert_int_equal(count(&n.lb, FLARE__MUX_EV_STREAM_REMOTE_CLOSED, id), 1);
    assert_int_equal(got, total);
    assert_memory_equal(rx, data, total);
    assert_true(eof);
    /* Our side is closed for writing; the other still writes. */
    assert_int_equal(ops->write(n.ma, id, data, 1, NULL), FLARE_ERR_CLOSED);
    assert_int_equal(ops->write(n.mb, id, data, 1000, NULL), 1000);
    assert_int_equal(ops->close_stream(n.mb, id, NULL), 0);
    assert_true(wait_for(&n, &n.la, FLARE__MUX_EV_STREAM_REMOTE_CLOSED, id));
    run(&n, 500);
    assert_true(count(&n.la, FLARE__MUX_EV_STREAM_READABLE, id) > 0);
    assert_int_equal(count(&n.la, FLARE__MUX_EV_STREAM_CLOSED, id), 0); /* bytes unread */
    eof = 0;
    assert_int_equal(read_all(n.ma, id, rx, total, &eof), 1000);
    assert_true(eof);
    assert_true(wait_for(&n, &n.la, FLARE__MUX_EV_STREAM_CLOSED, id));
    assert_true(wait_for(&n, &n.lb, FLARE__MUX_EV_STREAM_CLOSED, id));
    assert_int_equal(count(&n.la, FLARE__MUX_EV_STREAM_RESET, UINT32_MAX), 0);
    assert_int_equal(count(&n.lb, FLARE__MUX_EV_STREAM_RESET, UINT32_MAX), 0);
    assert_int_equal(ops->num_streams(n.ma), 0);
    assert_int_equal(ops->num_streams(n.mb), 0);
    assert_int_equal(flare__sctp_num_channels(n.sa), 0);
    free(data);
    free(rx);
    net_free(&n);
}

static void test_stream_reset(void **state)
{
    net n;
    net_init(&n, 0, 0);
    uint32_t id;
    assert_int_equal(ops->open_stream(n.ma, &id, NULL), 0);
    assert_int_equal(ops->write(n.ma, id, (const uint8_t *)"hello", 5, NULL), 5);
    assert_true(wait_for(&n, &n.lb, FLARE__MUX_EV_STREAM_READABLE, id));
    assert_int_equal(count(&n.lb, FLARE__MUX_EV_STREAM_OPENED, id), 1);
    assert_int_equal(ops->readable(n.mb, id), 5);
    assert_int_equal(ops->reset_stream(n.mb, id, NULL), 0);
    assert_true(wait_for(&n, &n.la, FLARE__MUX_EV_STREAM_RESET, id));
    assert_true(wait_for(&n, &n.la, FLARE__MUX_EV_STREAM_CLOSED, id));
    assert_true(wait_for(&n, &n.lb, FLARE__MUX_EV_STREAM_CLOSED, id));
    assert_int_equal(ops->write(n.ma, id, (const uint8_t *)"x", 1, NULL), FLARE_ERR_NOT_FOUND);
    assert_int_equal(ops->num_streams(n.mb), 0);
    assert_int_equal(ops->num_streams(n.ma), 0);
    net_free(&n);
}

/* The peer opens more streams than we allow: the extra channels are
 * closed, the allowed ones work. */
static void test_too_many_streams(void **state)
{
    net n;
    net_init(&n, 3, 0);
    uint32_t ids[10];
    for (int i = 0; i < 10; i++)
        assert_int_equal(ops->open_stream(n.ma, &ids[i], NULL), 0);
    run(&n, 3000);
    assert_int_equal(count(&n.lb, FLARE__MUX_EV_STREAM_OPENED, UINT32_MAX), 3);
    assert_int_equal(ops->num_streams(n.mb), 3);
    assert_int_equal(count(&n.la, FLARE__MUX_EV_STREAM_RESET, UINT32_MAX), 7);
    assert_int_equal(count(&n.la, FLARE__MUX_EV_STREAM_CLOSED, UINT32_MAX), 7);
    assert_int_equal(ops->num_streams(n.ma), 3);
    assert_int_equal(flare__sctp_num_channels(n.sb), 3);
    assert_int_equal(ops->write(n.ma, ids[0], (const uint8_t *)"ok", 2, NULL), 2);
    assert_true(wait_for(&n, &n.lb, FLARE__MUX_EV_STREAM_READABLE, ids[0]));
    assert_int_equal(ops->readable(n.mb, ids[0]), 2);
    net_free(&n);
}

/* A channel labelled "init" (js-libp2p's dialer opens it to start ICE) is
 * closed, never a stream; other channels are streams as usual. */
static void test_init_channel_closed(void **state)
{
    net n;
    net_init(&n, 0, 0);
    uint16_t cid;
    assert_int_equal(flare__sctp_open_channel(n.sa, &cid, "init", ""), 0);
    run(&n, 1000);
    assert_int_equal(count(&n.lb, FLARE__MUX_EV_STREAM_OPENED, UINT32_MAX), 0);
    assert_int_equal(flare__sctp_num_channels(n.sb), 0);
    uint32_t id;
    assert_int_equal(ops->open_stream(n.ma, &id, NULL), 0);
    assert_int_equal(ops->write(n.ma, id, (const uint8_t *)"ok", 2, NULL), 2);
    assert_true(wait_for(&n, &n.lb, FLARE__MUX_EV_STREAM_READABLE, id));
    assert_int_equal(count(&n.lb, FLARE__MUX_EV_STREAM_OPENED, UINT32_MAX), 1);
    net_free(&n);
}

/* A peer that sends garbage or an oversized message on a stream: that
 * stream is reset, the session goes on. */
static void test_bad_frames_reset_stream(void **state)
{
    net n;
    net_init(&n, 0, 0);
    uint32_t id, id2;
    assert_int_equal(ops->open_stream(n.ma, &id, NULL), 0);
    assert_int_equal(ops->open_stream(n.ma, &id2, NULL), 0);
    const uint8_t bad[] = {0x80, 0x80, 0x01, 0x00}; /* a 16 KiB prefix */
    assert_int_equal(flare__sctp_send(n.sa, (uint16_t)id, bad, sizeof(bad)), 0);
    const uint8_t junk[] = {0x02, 0x0a, 0x00};
    assert_int_equal(flare__sctp_send(n.sa, (uint16_t)id2, junk, sizeof(junk)), 0);
    assert_true(wait_for(&n, &n.lb, FLARE__MUX_EV_STREAM_RESET, id));
    assert_true(wait_for(&n, &n.lb, FLARE__MUX_EV_STREAM_RESET, id2));
    assert_true(wait_for(&n, &n.la, FLARE__MUX_EV_STREAM_CLOSED, id));
    assert_true(wait_for(&n, &n.la, FLARE__MUX_EV_STREAM_CLOSED, id2));
    uint32_t id3;
    assert_int_equal(ops->open_stream(n.ma, &id3, NULL), 0);
    assert_int_equal(ops->write(n.ma, id3, (const uint8_t *)"fine", 4, NULL), 4);
    assert_true(wait_for(&n, &n.lb, FLARE__MUX_EV_STREAM_READABLE, id3));
    assert_int_equal(ops->readable(n.mb, id3), 4);
    net_free(&n);
}

/* A reader that does not read: the bytes held stay near the bound and the
 * sender is held back; reading lets the rest through. */
static void test_receive_bound(void **state)
{
    net n;
    size_t bound = 64 * 1024;
    net_init(&n, 0, bound);
    uint32_t id;
    assert_int_equal(ops->open_stream(n.ma, &id, NULL), 0);
    size_t total = 2 * 1024 * 1024, sent = 0;
    uint8_t *data = calloc(1, total);
    for (int i = 0; i < 300 && sent < total; i++) {
        long w = ops->write(n.ma, id, data + sent, total - sent, NULL);
        assert_true(w >= 0);
        sent += (size_t)w;
        run(&n, 10);
    }
    assert_true(sent < total);
    size_t held = ops->readable(n.mb, id);
    assert_true(held >= bound && held < bound + FLARE__WEBRTC_MAX_MSG);
    int eof = 0;
    size_t got = 0;
    for (int i = 0; i < 5000 && got < total; i++) {
        got += read_all(n.mb, id, data, total, &eof);
        if (sent < total) {
            long w = ops->write(n.ma, id, data, total - sent, NULL);
            assert_true(w >= 0);
            sent += (size_t)w;
        }
        run(&n, 10);
    }
    assert_int_equal(got, total);
    assert_true(count(&n.la, FLARE__MUX_EV_STREAM_WRITABLE, id) > 0);
    free(data);
    net_free(&n);
}

/* Room in the send buffer again must reach the writer even while its own
 * receive side is full and unread (an echo that holds back its reads until
 * its writes go through): b's receive side is jammed with a's data, b's
 * writes fill its send buffer, then a reads; b must hear STREAM_WRITABLE
 * without reading anything. */
static void test_writable_while_receive_full(void **state)
{
    net n;
    net_init(&n, 0, 64 * 1024);
    uint32_t id;
    assert_int_equal(ops->open_stream(n.ma, &id, NULL), 0);
    size_t total = 4 * 1024 * 1024, sent_a = 0;
    uint8_t *data = calloc(1, total);
    for (int i = 0; i < 100; i++) {
        long w = ops->write(n.ma, id, data, total - sent_a, NULL);
        assert_true(w >= 0);
        sent_a += (size_t)w;
        run(&n, 10);
    }
    assert_true(sent_a < total); /* b holds a back */
    assert_int_equal(count(&n.lb, FLARE__MUX_EV_STREAM_OPENED, id), 1);
    /* b writes until its send buffer is full (a reads nothing yet). */
    long w = 0;
    for (int i = 0; i < 100; i++) {
        w = ops->write(n.mb, id, data, total, NULL);
        assert_true(w >= 0);
        if ((size_t)w < total)
            break;
    }
    assert_true((size_t)w < total);
    size_t before = count(&n.lb, FLARE__MUX_EV_STREAM_WRITABLE, id);
    int eof = 0;
    for (int i = 0; i < 100 && count(&n.lb, FLARE__MUX_EV_STREAM_WRITABLE, id) == before; i++) {
        read_all(n.ma, id, data, total, &eof);
        run(&n, 10);
    }
    assert_true(count(&n.lb, FLARE__MUX_EV_STREAM_WRITABLE, id) > before);
    assert_true(ops->readable(n.mb, id) >= 64 * 1024); /* b still read nothing */
    free(data);
    net_free(&n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_roundtrip),
        cmocka_unit_test(test_frame_bad_input),
        cmocka_unit_test(test_stream_echo_and_half_close),
        cmocka_unit_test(test_stream_reset),
        cmocka_unit_test(test_too_many_streams),
        cmocka_unit_test(test_init_channel_closed),
        cmocka_unit_test(test_bad_frames_reset_stream),
        cmocka_unit_test(test_receive_bound),
        cmocka_unit_test(test_writable_while_receive_full),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
