/* yamux keepalive as go-yamux does it: no ping at start, a ping only after
 * keepalive_interval with nothing received, and still a bound on a peer
 * that writes but never reads. Default settings: 30 s interval, 10 s ping
 * timeout. */
#include "yamux_pair.h"

#define S FLARE_NS_PER_S

/* PING frames with these flags in buf (walking Data payloads). */
static size_t count_pings(const flare_buf *b, uint16_t flags)
{
    size_t n = 0, off = 0;
    while (off + 12 <= b->len) {
        const uint8_t *h = b->base + off;
        uint16_t f = (uint16_t)(h[2] << 8 | h[3]);
        uint32_t l = (uint32_t)h[8] << 24 | (uint32_t)h[9] << 16 | (uint32_t)h[10] << 8 | h[11];
        n += h[1] == FLARE_YAMUX_TYPE_PING && f == flags;
        off += 12 + (h[1] == FLARE_YAMUX_TYPE_DATA ? l : 0);
    }
    return n;
}

/* a keeps alive with the defaults; b never pings on its own. */
static pair *pair_default_a(void)
{
    flare_yamux_settings sa, sb;
    flare_yamux_settings_default(&sa);
    settings_nokeepalive(&sb, 0);
    return pair_new_with(&sa, &sb);
}

static uint32_t open_and_accept(pair *p)
{
    uint32_t id;
    assert_int_equal(flare_yamux_open_stream(p->b.y, &id, &p->b.out), 0);
    assert_int_equal(pump(p), 0);
    assert_int_equal(flare_yamux_accept_stream(p->a.y, id, &p->a.out), 0);
    assert_int_equal(pump(p), 0);
    return id;
}

/* At time t, b sends a byte on stream id and a reads it; if a_writes, a
 * writes one back. Then a's keepalive timer runs if due. Returns the pings
 * a sent; a's output then reaches b (answer) or is lost. */
static size_t step(pair *p, uint32_t id, flare_tstamp t, int a_writes, int answer)
{
    p->now = t;
    assert_int_equal(flare_yamux_write(p->b.y, id, (const uint8_t *)"x", 1, &p->b.out), 1);
    assert_int_equal(deliver(p, &p->b, &p->a), 0);
    uint8_t c;
    assert_int_equal(flare_yamux_read(p->a.y, id, &c, 1, &p->a.out), 1);
    if (a_writes)
        assert_int_equal(flare_yamux_write(p->a.y, id, (const uint8_t *)"y", 1, &p->a.out), 1);
    if (flare_yamux_expiry(p->a.y) <= t)
        assert_int_equal(flare_yamux_handle_expiry(p->a.y, t, &p->a.out), 0);
    size_t pings = count_pings(&p->a.out, FLARE_YAMUX_FLAG_SYN);
    if (answer) {
        assert_int_equal(pump(p), 0);
        uint8_t buf[64];
        while (flare_yamux_read(p->b.y, id, buf, sizeof(buf), &p->b.out) > 0)
            ;
        flare_buf_reset(&p->b.out);
    } else {
        flare_buf_reset(&p->a.out);
    }
    return pings;
}

/* A frame every 10 s: no ping at all for 100 s; each frame defers it, so
 * the ping comes 30 s after the last one. */
static void test_busy_session_does_not_ping(void **state)
{
    pair *p = pair_default_a();
    assert_int_equal(flare_yamux_expiry(p->a.y), 30 * S);
    uint32_t id = open_and_accept(p);
    for (flare_tstamp t = 10 * S; t <= 100 * S; t += 10 * S) {
        assert_int_equal(step(p, id, t, 0, 1), 0);
        assert_int_equal(flare_yamux_expiry(p->a.y), t + 30 * S);
    }
    assert_int_equal(p->a.y->ping_out, 0);
    assert_int_equal(flare_yamux_handle_expiry(p->a.y, 130 * S, &p->a.out), 0);
    assert_int_equal(count_pings(&p->a.out, FLARE_YAMUX_FLAG_SYN), 1);
    pair_del(p);
}

/* Request/response traffic both ways every 10 s, with a peer that reads:
 * one ping per 4 intervals (the proof bound), answered. */
static void test_busy_exchange_pings_every_4_intervals(void **state)
{
    pair *p = pair_default_a();
    uint32_t id = open_and_accept(p);
    size_t pings = 0;
    for (flare_tstamp t = 10 * S; t <= 300 * S; t += 10 * S) {
        size_t n = step(p, id, t, 1, 1);
        /* a's first data went out at 10 s: proof due at 130 s; the ping
         * then proves the data before it, so the next bound runs from a's
         * next data (140 s) to 260 s. */
        assert_int_equal(n, t == 130 * S || t == 260 * S);
        pings += n;
    }
    assert_int_equal(pings, 2);
    assert_int_equal(p->a.y->dead, 0);
    pair_del(p);
}

/* Idle: one ping after 30 s; a peer that then goes silent is dropped
 * at interval + ping timeout after the last thing it sent. */
static void test_idle_pings_after_interval_and_times_out(void **state)
{
    pair *p = pair_default_a();
    assert_int_equal(flare_yamux_handle_expiry(p->a.y, 29 * S, &p->a.out), 0);
    assert_int_equal(p->a.out.len, 0);
    assert_int_equal(flare_yamux_handle_expiry(p->a.y, 30 * S, &p->a.out), 0);
    assert_int_equal(count_pings(&p->a.out, FLARE_YAMUX_FLAG_SYN), 1);
    p->now = 30 * S + 5 * FLARE_NS_PER_MS;
    assert_int_equal(pump(p), 0);
    assert_int_equal(flare_yamux_rtt(p->a.y), 5 * FLARE_NS_PER_MS);
    /* b goes silent after its ACK at p->now. */
    flare_tstamp last = p->now;
    assert_int_equal(flare_yamux_expiry(p->a.y), last + 30 * S);
    assert_int_equal(flare_yamux_handle_expiry(p->a.y, last + 30 * S, &p->a.out), 0);
    assert_int_equal(count_pings(&p->a.out, FLARE_YAMUX_FLAG_SYN), 1);
    flare_buf_reset(&p->a.out);
    assert_int_equal(flare_yamux_expiry(p->a.y), last + 40 * S);
    assert_int_equal(flare_yamux_handle_expiry(p->a.y, last + 40 * S - 1, &p->a.out), 0);
    assert_int_equal(flare_yamux_handle_expiry(p->a.y, last + 40 * S, &p->a.out),
                     FLARE_ERR_TIMEOUT);
    pair_del(p);
}

/* A peer that keeps writing but never reads what we send (so never echoes
 * a ping) is still dropped: 4 intervals after our first data, plus the
 * ping timeout. */
static void test_blind_writer_is_dropped(void **state)
{
    pair *p = pair_default_a();
    uint32_t id = open_and_accept(p);
    size_t pings = 0;
    for (flare_tstamp t = 10 * S; t < 130 * S; t += 10 * S)
        pings += step(p, id, t, 1, 0);
    assert_int_equal(pings, 0);
    assert_int_equal(flare_yamux_expiry(p->a.y), 130 * S);
    /* The ping at 130 s goes unanswered while b keeps writing. */
    assert_int_equal(step(p, id, 130 * S, 1, 0), 1);
    assert_int_equal(flare_yamux_expiry(p->a.y), 140 * S);
    assert_int_equal(step(p, id, 135 * S, 1, 0), 0);
    assert_int_equal(flare_yamux_expiry(p->a.y), 140 * S);
    assert_int_equal(flare_yamux_handle_expiry(p->a.y, 140 * S, &p->a.out), FLARE_ERR_TIMEOUT);
    pair_del(p);
}

/* Both sides keep alive and stay idle for 300 s, with 1 ms of delay: a
 * received PING is input too, so each interval sees one ping, not two. */
static void test_idle_pair_one_ping_per_interval(void **state)
{
    flare_yamux_settings sa, sb;
    flare_yamux_settings_default(&sa);
    flare_yamux_settings_default(&sb);
    sb.is_client = 0;
    pair *p = pair_new_with(&sa, &sb);
    size_t pings = 0;
    for (;;) {
        flare_tstamp ea = flare_yamux_expiry(p->a.y), eb = flare_yamux_expiry(p->b.y);
        side *s = ea <= eb ? &p->a : &p->b;
        flare_tstamp t = ea <= eb ? ea : eb;
        if (t > 300 * S)
            break;
        assert_int_equal(flare_yamux_handle_expiry(s->y, t, &s->out), 0);
        pings += count_pings(&s->out, FLARE_YAMUX_FLAG_SYN);
        p->now = t + FLARE_NS_PER_MS;
        assert_int_equal(pump(p), 0);
    }
    assert_int_equal(pings, 9); /* at 30 s, 60.001 s, ... 270.008 s */
    assert_int_equal(p->a.y->dead, 0);
    assert_int_equal(p->b.y->dead, 0);
    pair_del(p);
}

/* With keepalive on and no RTT known, the first stream to free half its
 * window measures one, so the window can grow. */
static void test_rtt_measured_when_streaming(void **state)
{
    pair *p = pair_default_a();
    /* b receives: give it keepalive too (it measures for its windows). */
    p->b.y->s.keepalive_interval = 30 * S;
    p->b.y->s.ping_timeout = 10 * S;
    uint32_t id = open_and_accept(p);
    assert_int_equal(flare_yamux_rtt(p->b.y), 0);
    uint8_t buf[8192] = {0};
    size_t sent = 0;
    for (int round = 0; round < 64; round++) {
        long n = flare_yamux_write(p->a.y, id, buf, sizeof(buf), &p->a.out);
        assert_true(n >= 0);
        sent += (size_t)n;
        p->now += FLARE_NS_PER_MS;
        assert_int_equal(pump(p), 0);
        uint8_t dst[8192];
        while (flare_yamux_read(p->b.y, id, dst, sizeof(dst), &p->b.out) > 0)
            ;
        assert_int_equal(pump(p), 0);
    }
    assert_true(sent >= 256 * 1024);
    assert_true(flare_yamux_rtt(p->b.y) > 0);
    /* Small transfers on other sessions never ping (see the busy test). */
    pair_del(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_busy_session_does_not_ping),
        cmocka_unit_test(test_idle_pings_after_interval_and_times_out),
        cmocka_unit_test(test_busy_exchange_pings_every_4_intervals),
        cmocka_unit_test(test_blind_writer_is_dropped),
        cmocka_unit_test(test_idle_pair_one_ping_per_interval),
        cmocka_unit_test(test_rtt_measured_when_streaming),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
