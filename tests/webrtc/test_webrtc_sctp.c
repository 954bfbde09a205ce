/* SCTP associations and data channels over usrsctp, first on a direct packet
 * pipe, then over two DTLS endpoints: association set-up on virtual time,
 * DCEP, messages, channel close by stream reset, bounds. */
#include "support/test.h"

#include <dirent.h>

#include "transport/webrtc/dtls.h"
#include "transport/webrtc/sctp.h"

#define MS ((flare_tstamp)1000000)

typedef struct side {
    flare__sctp *s;
    flare__dtls *d; /* NULL: packets go straight to the other side */
    flare__dtls_cert *cert;
} side;

typedef struct net {
    side a, b; /* a: DTLS client */
    flare_tstamp now;
    size_t n_pkts;
    size_t lose_from, lose_to; /* a's packets numbered so are lost */
} net;

static flare_tstamp g_base = 1000 * MS;

static void deliver(net *n, side *to, const uint8_t *p, size_t len)
{
    uint8_t buf[4096];
    if (to->d == NULL) {
        flare__sctp_input(to->s, p, len, n->now);
        return;
    }
    flare__dtls_input(to->d, p, len, n->now);
    if (to->s == NULL)
        return;
    long k;
    while ((k = flare__dtls_read(to->d, buf, sizeof(buf))) > 0)
        flare__sctp_input(to->s, buf, (size_t)k, n->now);
}

/* Moves one side's output to the other; returns packets moved. */
static size_t move(net *n, side *from, side *to)
{
    uint8_t buf[4096];
    size_t moved = 0;
    long k;
    if (from->s != NULL &&
        (from->d == NULL || flare__dtls_get_state(from->d) == FLARE__DTLS_CONNECTED)) {
        while ((k = flare__sctp_pop_out(from->s, buf, sizeof(buf))) > 0) {
            moved++;

            n->n_pkts++;
            if (from == &n->a && n->n_pkts >= n->lose_from && n->n_pkts < n->lose_to)
                continue;
            if (from->d == NULL)
                deliver(n, to, buf, (size_t)k);
            else if (flare__dtls_send(from->d, buf, (size_t)k) != 0)
                fail_msg("dtls send of %ld (mtu %zu)", k, flare__dtls_data_mtu(from->d));
        }
    }
    if (from->d != NULL)
        while ((k = flare__dtls_pop_out(from->d, buf, sizeof(buf))) > 0) {
            moved++;
            deliver(n, to, buf, (size_t)k);
        }
    return moved;
}

static void pump(net *n)
{
    while (move(n, &n->a, &n->b) + move(n, &n->b, &n->a) > 0) {
    }
}

static void step(net *n, flare_tstamp dt)
{
    n->now += dt;
    flare__sctp_handle_expiry(n->a.s, n->now);
    flare__sctp_handle_expiry(n->b.s, n->now);
    pump(n);
}

static void run(net *n, flare_tstamp ms)
{
    flare_tstamp end = n->now + ms * MS;
    pump(n);
    while (n->now < end)
        step(n, 10 * MS);
}

static void new_sctp(net *n)
{
    flare__sctp_cfg ca = {.is_dtls_client = 1, .max_channels = 16};
    flare__sctp_cfg cb = {.is_dtls_client = 0, .max_channels = 16};
    if (n->a.d != NULL) {
        ca.mtu = flare__dtls_data_mtu(n->a.d);
        cb.mtu = flare__dtls_data_mtu(n->b.d);
    }
    assert_int_equal(flare__sctp_new(&n->a.s, &ca, n->now), 0);
    assert_int_equal(flare__sctp_new(&n->b.s, &cb, n->now), 0);
}

static void net_init(net *n, int with_dtls)
{
    memset(n, 0, sizeof(*n));
    g_base += 100000 * MS; /* one usrsctp clock per process: keep it moving forward */
    n->now = g_base;
    if (with_dtls) {
        flare_prng p;
        flare_prng_seed(&p, 1);
        assert_int_equal(flare__dtls_cert_generate(&n->a.cert, flare_prng_rng(&p), 0, 1 << 30), 0);
        assert_int_equal(flare__dtls_cert_generate(&n->b.cert, flare_prng_rng(&p), 0, 1 << 30), 0);
        flare__dtls_cfg da = {.is_client = 1,
                              .cert = n->a.cert,
                              .expected_fp = flare__dtls_cert_fingerprint(n->b.cert)};
        flare__dtls_cfg db = {.is_client = 0,
                              .cert = n->b.cert,
                              .expected_fp = flare__dtls_cert_fingerprint(n->a.cert)};
        assert_int_equal(flare__dtls_new(&n->a.d, &da, n->now), 0);
        assert_int_equal(flare__dtls_new(&n->b.d, &db, n->now), 0);
        pump(n);
        assert_int_equal(flare__dtls_get_state(n->a.d), FLARE__DTLS_CONNECTED);
    }
    new_sctp(n);
}

static void net_free(net *n)
{
    flare__sctp_del(n->a.s);
    flare__sctp_del(n->b.s);
    flare__dtls_del(n->a.d);
    flare__dtls_del(n->b.d);
    flare__dtls_cert_del(n->a.cert);
    flare__dtls_cert_del(n->b.cert);
}

/* The next event of type t on s (other events skipped); asserts it comes. */
static flare__sctp_event expect(flare__sctp *s, flare__sctp_event_type t, uint8_t *buf)
{
    flare__sctp_event ev;
    while (flare__sctp_poll(s, &ev, buf, FLARE__SCTP_MAX_MESSAGE) == 1)
        if (ev.type == t)
            return ev;
    fail_msg("event %d did not come", (int)t);
    return ev;
}

/* Threads of the process; *timer set if one is usrsctp's timer thread. */
static int nthreads(int *timer)
{
    DIR *d = opendir("/proc/self/task");
    int k = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.')
            continue;
        char path[300], comm[64] = {0};
        snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (f != NULL) {
            if (fgets(comm, sizeof(comm), f) == NULL)
                comm[0] = 0;
            fclose(f);
        }
        *timer |= strncmp(comm, "SCTP timer", 10) == 0;
        k++;
    }
    closedir(d);
    return k;
}

static void exchange(net *n)
{
    uint8_t buf[FLARE__SCTP_MAX_MESSAGE];
    uint16_t id = 0;
    assert_int_equal(flare__sctp_open_channel(n->a.s, &id, "", ""), 0);
    assert_int_equal(id % 2, 0); /* the DTLS client's ids are even */
    uint8_t msg[FLARE__SCTP_MAX_MESSAGE];
    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (uint8_t)(i * 13 + 1);
    /* Data right after the OPEN (ordered: it arrives after it). */
    assert_int_equal(flare__sctp_send(n->a.s, id, msg, 5), 0);
    assert_int_equal(flare__sctp_send(n->a.s, id, msg, sizeof(msg)), 0);
    assert_int_equal(flare__sctp_send(n->a.s, id, msg, sizeof(msg) + 1), FLARE_ERR_TOO_LARGE);
    run(n, 200);
    flare__sctp_event ev = expect(n->b.s, FLARE__SCTP_EV_CHANNEL_OPEN, buf);
    assert_int_equal(ev.id, id);
    ev = expect(n->b.s, FLARE__SCTP_EV_MESSAGE, buf);
    assert_int_equal(ev.len, 5);
    assert_memory_equal(buf, msg, 5);
    ev = expect(n->b.s, FLARE__SCTP_EV_MESSAGE, buf);
    assert_int_equal(ev.len, sizeof(msg));
    assert_memory_equal(buf, msg, sizeof(msg));
    /* The answerer's channels are odd. */
    uint16_t id2 = 0;
    assert_int_equal(flare__sctp_open_channel(n->b.s, &id2, "x", "y"), 0);
    assert_int_equal(id2 % 2, 1);
    assert_int_equal(flare__sctp_send(n->b.s, id2, msg, 1000), 0);
    run(n, 200);
    ev = expect(n->a.s, FLARE__SCTP_EV_MESSAGE, buf);
    assert_int_equal(ev.id, id2);
    assert_int_equal(ev.len, 1000);

    /* Closing resets both directions; the id is free after. */
    assert_int_equal(flare__sctp_num_channels(n->a.s), 2);
    assert_int_equal(flare__sctp_close_channel(n->a.s, id), 0);
    run(n, 200);
    ev = expect(n->b.s, FLARE__SCTP_EV_CHANNEL_CLOSED, buf);
    assert_int_equal(ev.id, id);
    ev = expect(n->a.s, FLARE__SCTP_EV_CHANNEL_CLOSED, buf);
    assert_int_equal(ev.id, id);
    assert_int_equal(flare__sctp_num_channels(n->a.s), 1);
    assert_int_equal(flare__sctp_num_channels(n->b.s), 1);
    assert_int_equal(flare__sctp_send(n->a.s, id, msg, 1), FLARE_ERR_NOT_FOUND);
}

static void test_direct_pipe(void **state)
{
    int timer = 0, t0 = nthreads(&timer);
    net n;
    net_init(&n, 0);
    assert_false(flare__sctp_is_up(n.a.s));
    run(&n, 100);
    assert_true(flare__sctp_is_up(n.a.s));
    assert_true(flare__sctp_is_up(n.b.s));
    exchange(&n);
    /* usrsctp runs without a timer or receive thread: the caller's clock
     * drives it. */
    /* usrsctp's iterator thread (it only waits for iterator jobs, which
     * AF_CONN associations never start) is the one it may add. */
    assert_true(nthreads(&timer) <= t0 + 1);
    assert_false(timer);
    net_free(&n);
}

static void test_over_dtls(void **state)
{
    net n;
    net_init(&n, 1);
    run(&n, 100);
    assert_true(flare__sctp_is_up(n.a.s));
    assert_true(flare__sctp_is_up(n.b.s));
    exchange(&n);
    net_free(&n);
}

/* Data packets lost in the middle of a transfer are recovered (fast
 * retransmit on the peer's SACKs) and messages arrive whole and in order.
 * Timer-driven retransmissions are not tested here: usrsctp picks the
 * chunks to resend by comparing real timestamps (see sctp.h). */
static void test_loss_recovered(void **state)
{
    net n;
    net_init(&n, 0);
    run(&n, 100);
    assert_true(flare__sctp_is_up(n.a.s));
    uint16_t id;
    uint8_t buf[FLARE__SCTP_MAX_MESSAGE], msg[3000];
    assert_int_equal(flare__sctp_open_channel(n.a.s, &id, "", ""), 0);
    n.lose_from = n.n_pkts + 20;
    n.lose_to = n.n_pkts + 23;
    for (int i = 0; i < 40; i++) {
        memset(msg, i, sizeof(msg));
        assert_int_equal(flare__sctp_send(n.a.s, id, msg, sizeof(msg)), 0);
    }
    run(&n, 5000);
    expect(n.b.s, FLARE__SCTP_EV_CHANNEL_OPEN, buf);
    for (int i = 0; i < 40; i++) {
        flare__sctp_event ev = expect(n.b.s, FLARE__SCTP_EV_MESSAGE, buf);
        assert_int_equal(ev.len, sizeof(msg));
        assert_int_equal(buf[0], i);
        assert_int_equal(buf[sizeof(msg) - 1], i);
    }
    net_free(&n);
}

/* A peer sending a message over the size limit: the channel is closed, the
 * association stays. */
static void test_oversized_message_closes_channel(void **state)
{
    net n;
    net_init(&n, 0);
    /* b accepts 1000-byte messages only. */
    flare__sctp_del(n.b.s);
    flare__sctp_cfg cb = {.is_dtls_client = 0, .max_channels = 16, .max_message = 1000};
    flare__sctp_del(n.a.s);
    flare__sctp_cfg ca = {.is_dtls_client = 1, .max_channels = 16};
    assert_int_equal(flare__sctp_new(&n.a.s, &ca, n.now), 0);
    assert_int_equal(flare__sctp_new(&n.b.s, &cb, n.now), 0);
    run(&n, 100);
    uint16_t id;
    uint8_t buf[FLARE__SCTP_MAX_MESSAGE], msg[5000] = {0};
    assert_int_equal(flare__sctp_open_channel(n.a.s, &id, "", ""), 0);
    assert_int_equal(flare__sctp_send(n.a.s, id, msg, 1000), 0);
    assert_int_equal(flare__sctp_send(n.a.s, id, msg, sizeof(msg)), 0);
    run(&n, 300);
    flare__sctp_event ev = expect(n.b.s, FLARE__SCTP_EV_MESSAGE, buf);
    assert_int_equal(ev.len, 1000);
    expect(n.b.s, FLARE__SCTP_EV_CHANNEL_CLOSED, buf);
    expect(n.a.s, FLARE__SCTP_EV_CHANNEL_CLOSED, buf);
    assert_true(flare__sctp_is_up(n.a.s));
    uint16_t id2;
    assert_int_equal(flare__sctp_open_channel(n.a.s, &id2, "", ""), 0);
    assert_int_equal(flare__sctp_send(n.a.s, id2, msg, 10), 0);
    run(&n, 100);
    ev = expect(n.b.s, FLARE__SCTP_EV_MESSAGE, buf);
    assert_int_equal(ev.id, id2);
    net_free(&n);
}

/* Channels are bounded by the streams the association offers: a peer
 * cannot open more than max_channels, and neither can we. */
static void test_too_many_channels(void **state)
{
    net n;
    net_init(&n, 0);
    run(&n, 100);
    uint16_t id;
    int opened = 0;
    while (flare__sctp_open_channel(n.a.s, &id, "", "") == 0)
        opened++;
    assert_int_equal(opened, 7); /* even ids 2..14 of 16 */
    assert_int_equal(flare__sctp_open_channel(n.a.s, &id, "", ""), FLARE_ERR_LIMIT);
    run(&n, 100);
    assert_true(flare__sctp_num_channels(n.b.s) <= 16);
    /* Data for a stream id beyond the association's streams never reaches
     * us; data on a channel never opened is dropped. */
    assert_int_equal(flare__sctp_open_negotiated(n.a.s, 1), 0);
    uint8_t buf[FLARE__SCTP_MAX_MESSAGE];
    assert_int_equal(flare__sctp_send(n.a.s, 1, (const uint8_t *)"x", 1), 0);
    run(&n, 100);
    flare__sctp_event ev;
    while (flare__sctp_poll(n.b.s, &ev, buf, sizeof(buf)) == 1)
        assert_int_not_equal(ev.type, FLARE__SCTP_EV_MESSAGE);
    assert_int_equal(flare__sctp_open_negotiated(n.a.s, 16), FLARE_ERR_OUT_OF_RANGE);
    net_free(&n);
}

/* Garbage as SCTP packets: ignored (bad checksum), the association lives. */
static void test_garbage_packets(void **state)
{
    net n;
    net_init(&n, 0);
    run(&n, 100);
    flare_prng r;
    flare_prng_seed(&r, 5);
    flare_rng rng = flare_prng_rng(&r);
    uint8_t junk[1200];
    for (int i = 0; i < 300; i++) {
        size_t len = (size_t)(i * 31) % sizeof(junk);
        rng.fn(junk, len, rng.user);
        if (i % 2 == 0 && len >= 4)
            junk[0] = 0x13, junk[1] = 0x88, junk[2] = 0x13, junk[3] = 0x88; /* ports 5000 */
        flare__sctp_input(n.b.s, junk, len, n.now);
    }
    run(&n, 100);
    assert_true(flare__sctp_is_up(n.b.s));
    uint16_t id;
    uint8_t buf[FLARE__SCTP_MAX_MESSAGE];
    assert_int_equal(flare__sctp_open_channel(n.a.s, &id, "", ""), 0);
    assert_int_equal(flare__sctp_send(n.a.s, id, (const uint8_t *)"hi", 2), 0);
    run(&n, 100);
    flare__sctp_event ev = expect(n.b.s, FLARE__SCTP_EV_MESSAGE, buf);
    assert_int_equal(ev.len, 2);
    net_free(&n);
}

/* A full send buffer: a message that does not fit fails with AGAIN, and
 * WRITABLE comes only once the peer acknowledged data, never from polls
 * alone. usrsctp calls the socket writable with a little room (its low-water
 * mark, less than a message): a writer retrying on each WRITABLE (the mux's
 * streams) would otherwise spin forever inside one poll loop while the peer
 * reads nothing. */
static void test_writable_only_after_acks(void **state)
{
    static const size_t sizes[] = {10000, 12000, FLARE__SCTP_MAX_MESSAGE};
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        net n;
        net_init(&n, 0);
        run(&n, 100);
        uint16_t id;
        uint8_t buf[FLARE__SCTP_MAX_MESSAGE], msg[FLARE__SCTP_MAX_MESSAGE] = {0};
        flare__sctp_event ev;
        assert_int_equal(flare__sctp_open_channel(n.a.s, &id, "", ""), 0);
        run(&n, 100);
        while (flare__sctp_poll(n.a.s, &ev, buf, sizeof(buf)) == 1) {
        }
        int sent = 0, rc;
        while ((rc = flare__sctp_send(n.a.s, id, msg, sizes[k])) == 0)
            sent++;
        assert_int_equal(rc, FLARE_ERR_AGAIN);
        assert_true(sent > 0);
        for (int i = 0; i < 100; i++) {
            while (flare__sctp_poll(n.a.s, &ev, buf, sizeof(buf)) == 1)
                assert_int_not_equal(ev.type, FLARE__SCTP_EV_WRITABLE);
            assert_int_equal(flare__sctp_send(n.a.s, id, msg, sizes[k]), FLARE_ERR_AGAIN);
        }
        /* The peer's SACKs free the buffer: WRITABLE, and the message fits. */
        run(&n, 200);
        expect(n.a.s, FLARE__SCTP_EV_WRITABLE, buf);
        assert_int_equal(flare__sctp_send(n.a.s, id, msg, sizes[k]), 0);
        net_free(&n);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_direct_pipe),
        cmocka_unit_test(test_over_dtls),
        cmocka_unit_test(test_loss_recovered),
        cmocka_unit_test(test_oversized_message_closes_channel),
        cmocka_unit_test(test_too_many_channels),
        cmocka_unit_test(test_garbage_packets),
        cmocka_unit_test(test_writable_only_after_acks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
