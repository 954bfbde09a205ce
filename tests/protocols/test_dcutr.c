/* DCUtR: codec, the two cores pumped against each other with a simulated
 * relay, retries, timeouts and bad input. */
#include "support/test.h"

#include <stdlib.h>

#include "dcutr.pb-c.h"
#include "flare/dcutr.h"

#define MS FLARE_NS_PER_MS
#define S  FLARE_NS_PER_S

/* Appends one framed HolePunch built by hand: type (or none if < 0) and raw
 * address fields. */
static void raw_msg(flare_buf *b, long type, const uint8_t *const *addrs, const size_t *lens,
                    size_t n)
{
    flare_buf body;
    flare_buf_init(&body, NULL);
    if (type >= 0) {
        assert_int_equal(flare_buf_append_byte(&body, 0x08), 0);
        assert_int_equal(flare_buf_append_uvarint(&body, (uint64_t)type), 0);
    }
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(flare_buf_append_byte(&body, 0x12), 0);
        assert_int_equal(flare_buf_append_uvarint(&body, lens[i]), 0);
        assert_int_equal(flare_buf_append(&body, addrs[i], lens[i]), 0);
    }
    assert_int_equal(flare_buf_append_uvarint(b, body.len), 0);
    assert_int_equal(flare_buf_append(b, body.base, body.len), 0);
    flare_buf_free(&body);
}

/* ---- codec ---- */

static void test_codec_vectors(void **state)
{
    (void)state;
    flare_buf b;
    flare_buf_init(&b, NULL);
    assert_int_equal(flare_dcutr_msg_encode(&b, FLARE_DCUTR_SYNC, NULL, 0), 0);
    assert_int_equal(flare_dcutr_msg_encode(&b, FLARE_DCUTR_CONNECT, NULL, 0), 0);
    static const uint8_t want[] = {0x03, 0x08, 0xac, 0x02, 0x02, 0x08, 0x64};
    assert_int_equal(b.len, sizeof(want));
    assert_memory_equal(b.base, want, sizeof(want));
    flare_buf_reset(&b);

    /* Same bytes as protobuf-c packing the schema (wire compatibility). */
    flare_multiaddr addrs[2] = {flare_test_ma("/ip4/1.2.3.4/tcp/4001"),
                                flare_test_ma("/ip6/2600::1/udp/1/quic-v1")};
    assert_int_equal(flare_dcutr_msg_encode(&b, FLARE_DCUTR_CONNECT, addrs, 2), 0);
    FlareDcutr__HolePunch hp = FLARE_DCUTR__HOLE_PUNCH__INIT;
    ProtobufCBinaryData bd[2] = {{addrs[0].len, addrs[0].bytes}, {addrs[1].len, addrs[1].bytes}};
    hp.type = FLARE_DCUTR__HOLE_PUNCH__TYPE__CONNECT;
    hp.n_obsaddrs = 2;
    hp.obsaddrs = bd;
    uint8_t packed[256];
    size_t plen = flare_dcutr__hole_punch__pack(&hp, packed);
    assert_int_equal(b.base[0], plen);
    assert_int_equal(b.len, plen + 1);
    assert_memory_equal(b.base + 1, packed, plen);

    flare_dcutr_msg m;
    assert_int_equal(flare_dcutr_msg_decode(&m, packed, plen), 0);
    assert_int_equal(m.type, FLARE_DCUTR_CONNECT);
    assert_int_equal(m.naddrs, 2);
    assert_int_equal(m.ndropped, 0);
    assert_true(flare_multiaddr_equal(&m.addrs[1], &addrs[1]));
    flare_buf_free(&b);
}

static void test_codec_bad(void **state)
{
    (void)state;
    flare_dcutr_msg m;
    static const uint8_t unknown_type[] = {0x08, 0x01};
    static const uint8_t big_type[] = {0x08, 0xe4, 0x80, 0x80, 0x80, 0x10}; /* 100 + 2^32 */
    static const uint8_t type_as_bytes[] = {0x0a, 0x00};
    static const uint8_t addr_as_varint[] = {0x08, 0x64, 0x10, 0x01};
    static const uint8_t trunc_varint[] = {0x08, 0x80};
    static const uint8_t trunc_len[] = {0x08, 0x64, 0x12, 0x05, 0x04};
    static const uint8_t only_addr[] = {0x12, 0x00};
    static const uint8_t unknown_field[] = {0x18, 0x07, 0x08, 0xac, 0x02};
    assert_int_equal(flare_dcutr_msg_decode(&m, NULL, 0), FLARE_ERR_MALFORMED);
    assert_int_equal(flare_dcutr_msg_decode(&m, only_addr, 2), FLARE_ERR_MALFORMED);
    assert_int_equal(flare_dcutr_msg_decode(&m, unknown_type, 2), FLARE_ERR_UNKNOWN_CODE);
    assert_int_equal(flare_dcutr_msg_decode(&m, big_type, 6), FLARE_ERR_UNKNOWN_CODE);
    assert_int_equal(flare_dcutr_msg_decode(&m, type_as_bytes, 2), FLARE_ERR_MALFORMED);
    assert_int_equal(flare_dcutr_msg_decode(&m, addr_as_varint, 4), FLARE_ERR_MALFORMED);
    assert_int_equal(flare_dcutr_msg_decode(&m, trunc_varint, 2), FLARE_ERR_TRUNCATED);
    assert_int_equal(flare_dcutr_msg_decode(&m, trunc_len, 5), FLARE_ERR_TRUNCATED);
    assert_int_equal(flare_dcutr_msg_decode(&m, unknown_field, 5), 0);
    assert_int_equal(m.type, FLARE_DCUTR_SYNC);
    uint8_t *big = calloc(1, FLARE_DCUTR_MAX_MSG + 1);
    assert_int_equal(flare_dcutr_msg_decode(&m, big, FLARE_DCUTR_MAX_MSG + 1), FLARE_ERR_TOO_LARGE);
    free(big);
}

static void test_codec_addr_filtering(void **state)
{
    (void)state;
    flare_multiaddr good = flare_test_ma("/ip4/1.2.3.4/tcp/4001");
    flare_multiaddr relayed =
        flare_test_ma("/ip4/5.6.7.8/tcp/1/p2p/12D3KooWGC6TvWhfapngX6wvJHMYvKpDMXPb3ZnCZ6dMoaMtimQ5/"
                      "p2p-circuit");
    static const uint8_t garbage[] = {0x04, 0x01, 0x02};       /* ip4 truncated */
    static const uint8_t unknown[] = {0xff, 0xff, 0x03, 0x00}; /* unknown code */
    const uint8_t *a[] = {garbage, relayed.bytes, good.bytes, unknown, good.bytes};
    size_t l[] = {sizeof(garbage), relayed.len, good.len, sizeof(unknown), good.len};
    flare_buf b;
    flare_buf_init(&b, NULL);
    raw_msg(&b, FLARE_DCUTR_CONNECT, a, l, 5);
    flare_dcutr_msg m;
    size_t hdr = b.base[0] & 0x80 ? 2 : 1;
    assert_int_equal(flare_dcutr_msg_decode(&m, b.base + hdr, b.len - hdr), 0);
    assert_int_equal(m.naddrs, 1); /* garbage, relayed, unknown and the duplicate dropped */
    assert_int_equal(m.ndropped, 4);
    assert_true(flare_multiaddr_equal(&m.addrs[0], &good));

    /* More than FLARE_DCUTR_MAX_ADDRS distinct addresses: the first are kept. */
    flare_buf_reset(&b);
    flare_multiaddr many[40];
    const uint8_t *pa[40];
    size_t pl[40];
    for (int i = 0; i < 40; i++) {
        char s[64];
        snprintf(s, sizeof(s), "/ip4/1.2.3.%d/tcp/1", i);
        many[i] = flare_test_ma(s);
        pa[i] = many[i].bytes;
        pl[i] = many[i].len;
    }
    raw_msg(&b, FLARE_DCUTR_CONNECT, pa, pl, 40);
    assert_int_equal(flare_dcutr_msg_decode(&m, b.base + 2, b.len - 2), 0);
    assert_int_equal(m.naddrs, FLARE_DCUTR_MAX_ADDRS);
    assert_int_equal(m.ndropped, 40 - FLARE_DCUTR_MAX_ADDRS);
    assert_true(flare_multiaddr_equal(&m.addrs[31], &many[31]));

    /* Encoding refuses a body over 4 KiB and leaves out untouched. */
    flare_buf_reset(&b);
    char name[300];
    memset(name, 'a', sizeof(name));
    memcpy(name, "/dns4/", 6);
    strcpy(name + 290, "/tcp/1");
    flare_multiaddr longa[16];
    for (int i = 0; i < 16; i++)
        longa[i] = flare_test_ma(name);
    assert_int_equal(flare_dcutr_msg_encode(&b, FLARE_DCUTR_CONNECT, longa, 13), 0);
    size_t len13 = b.len;
    assert_true(len13 > 3800);
    assert_int_equal(flare_dcutr_msg_encode(&b, FLARE_DCUTR_CONNECT, longa, 16),
                     FLARE_ERR_TOO_LARGE);
    assert_int_equal(b.len, len13);
    assert_int_equal(flare_dcutr_msg_encode(&b, 7, NULL, 0), FLARE_ERR_INVALID_ARG);
    flare_buf_free(&b);
}

/* ---- the two cores against each other ---- */

typedef struct net {
    flare_dcutr_initiator b;
    flare_dcutr_responder a;
    flare_buf b_out, a_out;
    flare_multiaddr a_addrs[2], b_addrs[2];
    flare_tstamp owd; /* one-way delay through the relay */
    flare_dcutr_tracer tr;
} net;

static net *net_new(const flare_dcutr_settings *s, flare_tstamp owd)
{
    net *n = calloc(1, sizeof(*n));
    flare_dcutr_settings st;
    if (s)
        st = *s;
    else
        flare_dcutr_settings_default(&st);
    flare_dcutr_tracer_init(&n->tr);
    st.tracer = &n->tr;
    st.trace_id = 7;
    assert_int_equal(flare_dcutr_initiator_init(&n->b, &st, NULL), 0);
    assert_int_equal(flare_dcutr_responder_init(&n->a, &st, NULL), 0);
    flare_buf_init(&n->b_out, NULL);
    flare_buf_init(&n->a_out, NULL);
    n->a_addrs[0] = flare_test_ma("/ip4/198.51.100.1/tcp/4001");
    n->a_addrs[1] = flare_test_ma("/ip6/2001:db8::1/tcp/4001");
    n->b_addrs[0] = flare_test_ma("/ip4/203.0.113.9/tcp/5555");
    n->b_addrs[1] = flare_test_ma("/ip4/203.0.113.9/udp/5555/quic-v1");
    n->owd = owd;
    return n;
}

static void net_del(net *n)
{
    flare_dcutr_initiator_free(&n->b);
    flare_dcutr_responder_free(&n->a);
    flare_buf_free(&n->b_out);
    flare_buf_free(&n->a_out);
    free(n);
}

static flare_dcutr_event b_event(net *n)
{
    flare_dcutr_event ev;
    assert_int_equal(flare_dcutr_initiator_poll_event(&n->b, &ev), 1);
    return ev;
}

static flare_dcutr_event a_event(net *n)
{
    flare_dcutr_event ev;
    assert_int_equal(flare_dcutr_responder_poll_event(&n->a, &ev), 1);
    return ev;
}

/* One full exchange starting at t0; returns (via pointers) when A and B
 * were told to dial. */
static void exchange(net *n, flare_tstamp t0, flare_tstamp *a_dial, flare_tstamp *b_dial)
{
    flare_tstamp t = t0;
    assert_int_equal(flare_dcutr_initiator_start(&n->b, t, n->b_addrs, 2, &n->b_out), 0);
    assert_int_equal(flare_dcutr_responder_stream_open(&n->a, t), 0);
    t += n->owd; /* CONNECT reaches A */
    assert_int_equal(
        flare_dcutr_responder_recv(&n->a, n->b_out.base, n->b_out.len, t, n->a_addrs, 2, &n->a_out),
        0);
    flare_buf_reset(&n->b_out);
    t += n->owd; /* A's CONNECT reaches B */
    assert_int_equal(flare_dcutr_initiator_recv(&n->b, n->a_out.base, n->a_out.len, t, &n->b_out),
                     0);
    flare_buf_reset(&n->a_out);
    flare_tstamp sync_at = t;
    assert_int_equal(flare_dcutr_initiator_expiry(&n->b), sync_at + n->owd);
    assert_int_equal(flare_dcutr_initiator_poll_event(&n->b, &(flare_dcutr_event){0}), 0);
    t += n->owd; /* SYNC reaches A, and B's timer fires at the same instant */
    assert_int_equal(
        flare_dcutr_responder_recv(&n->a, n->b_out.base, n->b_out.len, t, n->a_addrs, 2, &n->a_out),
        0);
    flare_buf_reset(&n->b_out);
    assert_int_equal(n->a_out.len, 0);
    flare_dcutr_event ev = a_event(n);
    assert_int_equal(ev.type, FLARE_DCUTR_EV_DIAL);
    assert_int_equal(ev.naddrs, 2);
    assert_true(flare_multiaddr_equal(&ev.addrs[0], &n->b_addrs[0]));
    assert_int_equal(ev.rtt, 2 * n->owd);
    *a_dial = t;
    t = flare_dcutr_initiator_expiry(&n->b);
    assert_int_equal(flare_dcutr_initiator_handle_expiry(&n->b, t), 0);
    ev = b_event(n);
    assert_int_equal(ev.type, FLARE_DCUTR_EV_DIAL);
    assert_int_equal(ev.rtt, 2 * n->owd);
    assert_int_equal(ev.naddrs, 2);
    assert_true(flare_multiaddr_equal(&ev.addrs[1], &n->a_addrs[1]));
    *b_dial = t;
}

static void test_pump_success(void **state)
{
    (void)state;
    net *n = net_new(NULL, 37 * MS);
    flare_tstamp a_dial, b_dial, t0 = 1000 * S;
    exchange(n, t0, &a_dial, &b_dial);
    /* RTT measured exactly; B dials at SYNC + RTT/2, A when SYNC arrives. */
    assert_int_equal(n->b.rtt, 74 * MS);
    assert_int_equal(b_dial, t0 + 74 * MS + 37 * MS);
    assert_int_equal(a_dial, t0 + 74 * MS + 37 * MS);
    assert_int_equal(n->a.rtt, 74 * MS); /* A's view: its CONNECT to SYNC */

    flare_multiaddr conn = flare_test_ma("/ip4/198.51.100.1/tcp/4001");
    assert_int_equal(flare_dcutr_initiator_dial_result(&n->b, 1, &conn, b_dial + 5 * MS), 0);
    assert_int_equal(b_event(n).type, FLARE_DCUTR_EV_SUCCESS);
    assert_true(flare_dcutr_initiator_done(&n->b));
    assert_int_equal(flare_dcutr_initiator_expiry(&n->b), FLARE_TSTAMP_NEVER);
    assert_int_equal(flare_dcutr_responder_dial_result(&n->a, 1, &n->b_addrs[0], a_dial + 5 * MS),
                     0);
    flare_dcutr_event ev = a_event(n);
    assert_int_equal(ev.type, FLARE_DCUTR_EV_SUCCESS);
    assert_int_equal(ev.attempt, 1);
    assert_int_equal(flare_dcutr_responder_expiry(&n->a), FLARE_TSTAMP_NEVER);

    /* Tracer: both sides logged into one tracer. */
    assert_int_equal(n->tr.attempts, 2);
    assert_int_equal(n->tr.outcomes[1][FLARE_DCUTR_TR_TCP][FLARE_DCUTR_IPV4], 2);
    assert_int_equal(n->tr.success_attempt[0], 2);
    assert_int_equal(n->tr.last_rtt, 74 * MS);
    const flare_dcutr_trace_entry *e = flare_dcutr_tracer_entry(&n->tr, 0);
    assert_int_equal(e->step, FLARE_DCUTR_STEP_DIRECT_UP);
    assert_int_equal(e->initiator, 0);
    assert_int_equal(e->id, 7);
    /* B's steps in order with their times. */
    static const struct {
        flare_dcutr_step step;
        flare_tstamp dt;
    } want[] = {
        {FLARE_DCUTR_STEP_CONNECT_SENT, 0},      {FLARE_DCUTR_STEP_CONNECT_RECEIVED, 74 * MS},
        {FLARE_DCUTR_STEP_RTT, 74 * MS},         {FLARE_DCUTR_STEP_SYNC_SENT, 74 * MS},
        {FLARE_DCUTR_STEP_DIAL_START, 111 * MS}, {FLARE_DCUTR_STEP_DIRECT_UP, 116 * MS}};
    size_t k = 0;
    for (size_t i = n->tr.logged; i-- > 0;) {
        e = flare_dcutr_tracer_entry(&n->tr, i);
        if (!e->initiator)
            continue;
        assert_true(k < 6);
        assert_int_equal(e->step, want[k].step);
        assert_int_equal(e->t, t0 + want[k].dt);
        assert_int_equal(e->attempt, 1);
        k++;
    }
    assert_int_equal(k, 6);
    net_del(n);
}

static void test_pump_fragmented(void **state)
{
    (void)state;
    net *n = net_new(NULL, 10 * MS);
    assert_int_equal(flare_dcutr_initiator_start(&n->b, 0, n->b_addrs, 2, &n->b_out), 0);
    assert_int_equal(flare_dcutr_responder_stream_open(&n->a, 0), 0);
    for (size_t i = 0; i < n->b_out.len; i++)
        assert_int_equal(
            flare_dcutr_responder_recv(&n->a, n->b_out.base + i, 1, 5, n->a_addrs, 2, &n->a_out),
            0);
    assert_true(n->a_out.len > 0);
    flare_buf_reset(&n->b_out);
    for (size_t i = 0; i < n->a_out.len; i++)
        assert_int_equal(
            flare_dcutr_initiator_recv(&n->b, n->a_out.base + i, 1, 20 * MS, &n->b_out), 0);
    assert_int_equal(n->b.rtt, 20 * MS);
    assert_int_equal(n->b_out.len, 4); /* SYNC */
    net_del(n);
}

/* Dial phases fail; B retries on a new stream; success on attempt 3. */
static void test_retry_then_success(void **state)
{
    (void)state;
    flare_dcutr_settings s;
    flare_dcutr_settings_default(&s);
    s.retry_backoff = 2 * S;
    net *n = net_new(&s, 20 * MS);
    flare_tstamp a_dial, b_dial, t = 0;
    for (unsigned attempt = 1; attempt <= 3; attempt++) {
        exchange(n, t, &a_dial, &b_dial);
        assert_int_equal(n->b.attempt, attempt);
        if (attempt == 3)
            break;
        assert_int_equal(flare_dcutr_responder_dial_result(&n->a, 0, NULL, a_dial + S), 0);
        flare_dcutr_event ev = a_event(n);
        assert_int_equal(ev.type, FLARE_DCUTR_EV_FAILED);
        assert_int_equal(ev.reason, FLARE_DCUTR_REASON_DIAL);
        assert_int_equal(flare_dcutr_initiator_dial_result(&n->b, 0, NULL, b_dial + S), 0);
        assert_int_equal(flare_dcutr_initiator_poll_event(&n->b, &ev), 0);
        /* backoff grows with the attempt number */
        assert_int_equal(flare_dcutr_initiator_expiry(&n->b), b_dial + S + attempt * 2 * S);
        t = flare_dcutr_initiator_expiry(&n->b);
        assert_int_equal(flare_dcutr_initiator_start(&n->b, t, n->b_addrs, 2, &n->b_out),
                         FLARE_ERR_STATE);
        assert_int_equal(flare_dcutr_initiator_handle_expiry(&n->b, t), 0);
        ev = b_event(n);
        assert_int_equal(ev.type, FLARE_DCUTR_EV_RETRY);
        assert_int_equal(ev.reason, FLARE_DCUTR_REASON_DIAL);
        assert_int_equal(ev.attempt, attempt);
    }
    assert_int_equal(flare_dcutr_initiator_dial_result(&n->b, 1, &n->a_addrs[1], b_dial + 1), 0);
    flare_dcutr_event ev = b_event(n);
    assert_int_equal(ev.type, FLARE_DCUTR_EV_SUCCESS);
    assert_int_equal(ev.attempt, 3);
    assert_int_equal(n->tr.success_attempt[2], 1);
    assert_int_equal(n->tr.outcomes[1][FLARE_DCUTR_TR_TCP][FLARE_DCUTR_IPV6], 1);
    /* failures are classified by the first dialed address (TCP/IPv4 on both
     * sides), two per side */
    assert_int_equal(n->tr.outcomes[0][FLARE_DCUTR_TR_TCP][FLARE_DCUTR_IPV4], 4);
    net_del(n);
}

static void test_give_up_after_three(void **state)
{
    (void)state;
    net *n = net_new(NULL, 5 * MS);
    flare_tstamp a_dial, b_dial, t = 0;
    for (unsigned attempt = 1; attempt <= 3; attempt++) {
        exchange(n, t, &a_dial, &b_dial);
        /* no dial_result: the dial phase times out */
        t = flare_dcutr_initiator_expiry(&n->b);
        assert_int_equal(t, b_dial + FLARE_DCUTR_DEFAULT_DIAL_TIMEOUT);
        assert_int_equal(flare_dcutr_initiator_handle_expiry(&n->b, t - 1), 0);
        assert_int_equal(flare_dcutr_initiator_poll_event(&n->b, &(flare_dcutr_event){0}), 0);
        assert_int_equal(flare_dcutr_initiator_handle_expiry(&n->b, t), 0);
        assert_int_equal(flare_dcutr_responder_handle_expiry(&n->a, t), 0);
        flare_dcutr_event aev = a_event(n);
        assert_int_equal(aev.reason, FLARE_DCUTR_REASON_DIAL_TIMEOUT);
        /* A ends too: its last attempt's failure is final. */
        assert_int_equal(aev.final, attempt == 3);
        assert_int_equal(flare_dcutr_responder_done(&n->a), attempt == 3);
        flare_dcutr_event ev = b_event(n);
        if (attempt < 3) {
            assert_int_equal(ev.type, FLARE_DCUTR_EV_RETRY); /* no backoff: at once */
            assert_false(flare_dcutr_initiator_done(&n->b));
        } else {
            assert_int_equal(ev.type, FLARE_DCUTR_EV_FAILED);
            assert_int_equal(ev.reason, FLARE_DCUTR_REASON_DIAL_TIMEOUT);
            assert_int_equal(ev.attempt, 3);
            assert_true(ev.final);
        }
    }
    assert_true(flare_dcutr_initiator_done(&n->b));
    assert_int_equal(flare_dcutr_initiator_start(&n->b, t, n->b_addrs, 2, &n->b_out),
                     FLARE_ERR_STATE);
    assert_int_equal(n->tr.gave_up[FLARE_DCUTR_REASON_DIAL_TIMEOUT], 2);        /* A and B */
    assert_int_equal(n->tr.attempt_failed[FLARE_DCUTR_REASON_DIAL_TIMEOUT], 6); /* A and B */
    /* A refuses a fourth stream */
    assert_int_equal(flare_dcutr_responder_stream_open(&n->a, t), FLARE_ERR_LIMIT);
    net_del(n);
}

static void test_stream_timeouts(void **state)
{
    (void)state;
    net *n = net_new(NULL, 5 * MS);
    assert_int_equal(flare_dcutr_initiator_start(&n->b, 0, n->b_addrs, 2, &n->b_out), 0);
    assert_int_equal(flare_dcutr_initiator_expiry(&n->b), FLARE_DCUTR_DEFAULT_STREAM_TIMEOUT);
    assert_int_equal(flare_dcutr_initiator_handle_expiry(&n->b, 60 * S), FLARE_ERR_TIMEOUT);
    flare_dcutr_event ev = b_event(n);
    assert_int_equal(ev.type, FLARE_DCUTR_EV_RETRY);
    assert_int_equal(ev.reason, FLARE_DCUTR_REASON_STREAM_TIMEOUT);
    /* a reset stream also retries; a refused protocol gives up */
    flare_buf_reset(&n->b_out);
    assert_int_equal(flare_dcutr_initiator_start(&n->b, 61 * S, n->b_addrs, 2, &n->b_out), 0);
    assert_int_equal(flare_dcutr_initiator_stream_error(&n->b, FLARE_ERR_RESET, 62 * S), 0);
    assert_int_equal(b_event(n).type, FLARE_DCUTR_EV_RETRY);
    assert_int_equal(flare_dcutr_initiator_start(&n->b, 63 * S, n->b_addrs, 2, &n->b_out), 0);
    assert_int_equal(flare_dcutr_initiator_stream_error(&n->b, FLARE_ERR_NEGOTIATION, 64 * S), 0);
    ev = b_event(n);
    assert_int_equal(ev.type, FLARE_DCUTR_EV_FAILED);
    assert_int_equal(ev.reason, FLARE_DCUTR_REASON_UNSUPPORTED);
    assert_int_equal(flare_dcutr_initiator_stream_error(&n->b, FLARE_ERR_RESET, 64 * S),
                     FLARE_ERR_STATE);

    /* A: waiting for CONNECT, then for SYNC */
    assert_int_equal(flare_dcutr_responder_stream_open(&n->a, 0), 0);
    assert_int_equal(flare_dcutr_responder_handle_expiry(&n->a, 60 * S - 1), 0);
    assert_int_equal(flare_dcutr_responder_handle_expiry(&n->a, 60 * S), FLARE_ERR_TIMEOUT);
    assert_int_equal(a_event(n).reason, FLARE_DCUTR_REASON_STREAM_TIMEOUT);
    assert_int_equal(flare_dcutr_responder_stream_open(&n->a, 100 * S), 0);
    flare_buf c;
    flare_buf_init(&c, NULL);
    assert_int_equal(flare_dcutr_msg_encode(&c, FLARE_DCUTR_CONNECT, n->b_addrs, 1), 0);
    assert_int_equal(
        flare_dcutr_responder_recv(&n->a, c.base, c.len, 101 * S, n->a_addrs, 1, &n->a_out), 0);
    assert_int_equal(flare_dcutr_responder_expiry(&n->a), 161 * S);
    assert_int_equal(flare_dcutr_responder_handle_expiry(&n->a, 161 * S), FLARE_ERR_TIMEOUT);
    flare_buf_free(&c);
    net_del(n);
}

/* A ends with an outcome even when B stops early: B's stream ending before
 * SYNC fails the attempt, B not coming back within a stream timeout ends the
 * punch, and so does the relayed connection going away. */
static void test_responder_ends(void **state)
{
    (void)state;
    net *n = net_new(NULL, 5 * MS);
    assert_int_equal(flare_dcutr_responder_stream_error(&n->a, FLARE_ERR_RESET, 0),
                     FLARE_ERR_STATE); /* no stream yet */
    assert_int_equal(flare_dcutr_responder_stream_open(&n->a, 0), 0);
    assert_int_equal(flare_dcutr_responder_stream_error(&n->a, FLARE_ERR_RESET, 1 * S), 0);
    flare_dcutr_event ev = a_event(n);
    assert_int_equal(ev.type, FLARE_DCUTR_EV_FAILED);
    assert_int_equal(ev.reason, FLARE_DCUTR_REASON_STREAM);
    assert_false(ev.final);
    assert_false(flare_dcutr_responder_done(&n->a));
    /* B does not come back. */
    assert_int_equal(flare_dcutr_responder_expiry(&n->a), 61 * S);
    assert_int_equal(flare_dcutr_responder_handle_expiry(&n->a, 61 * S - 1), 0);
    assert_int_equal(flare_dcutr_responder_poll_event(&n->a, &ev), 0);
    assert_int_equal(flare_dcutr_responder_handle_expiry(&n->a, 61 * S), 0);
    ev = a_event(n);
    assert_int_equal(ev.type, FLARE_DCUTR_EV_FAILED);
    assert_int_equal(ev.reason, FLARE_DCUTR_REASON_STREAM);
    assert_int_equal(ev.attempt, 1);
    assert_true(ev.final);
    assert_true(flare_dcutr_responder_done(&n->a));
    assert_int_equal(flare_dcutr_responder_expiry(&n->a), FLARE_TSTAMP_NEVER);
    assert_int_equal(flare_dcutr_responder_stream_open(&n->a, 62 * S), FLARE_ERR_STATE);
    assert_int_equal(flare_dcutr_responder_abort(&n->a, 62 * S), FLARE_ERR_STATE);
    assert_int_equal(n->tr.gave_up[FLARE_DCUTR_REASON_STREAM], 1);
    net_del(n);

    /* Waiting for SYNC when the relayed connection goes. */
    n = net_new(NULL, 5 * MS);
    assert_int_equal(flare_dcutr_responder_stream_open(&n->a, 0), 0);
    assert_int_equal(flare_dcutr_responder_abort(&n->a, 1 * S), 0);
    ev = a_event(n);
    assert_true(ev.final);
    assert_int_equal(ev.reason, FLARE_DCUTR_REASON_STREAM);
    assert_true(flare_dcutr_responder_done(&n->a));
    net_del(n);
}

/* ---- bad input ---- */

static int a_feed(net *n, const flare_buf *in)
{
    return flare_dcutr_responder_recv(&n->a, in->base, in->len, 1, n->a_addrs, 2, &n->a_out);
}

static void test_responder_bad_input(void **state)
{
    (void)state;
    net *n = net_new(NULL, MS);
    flare_buf in, sync;
    flare_buf_init(&in, NULL);
    flare_buf_init(&sync, NULL);
    assert_int_equal(flare_dcutr_msg_encode(&sync, FLARE_DCUTR_SYNC, NULL, 0), 0);

    assert_int_equal(a_feed(n, &sync), FLARE_ERR_STATE); /* no stream yet */

    assert_int_equal(flare_dcutr_responder_stream_open(&n->a, 0), 0);
    assert_int_equal(a_feed(n, &sync), FLARE_ERR_PROTO); /* SYNC before CONNECT */
    flare_dcutr_event ev = a_event(n);
    assert_int_equal(ev.type, FLARE_DCUTR_EV_FAILED);
    assert_int_equal(ev.reason, FLARE_DCUTR_REASON_PROTOCOL);
    assert_int_equal(n->a_out.len, 0);
    assert_int_equal(a_feed(n, &sync), FLARE_ERR_PROTO); /* that stream is finished */

    n->a.attempt = 0; /* reuse the core for more cases */
    assert_int_equal(flare_dcutr_responder_stream_open(&n->a, 0), 0);
    raw_msg(&in, 5, NULL, NULL, 0);
    assert_int_equal(a_feed(n, &in), FLARE_ERR_UNKNOWN_CODE);

    n->a.attempt = 0;
    assert_int_equal(flare_dcutr_responder_stream_open(&n->a, 0), 0);
    flare_buf_reset(&in);
    const uint8_t *pa[] = {n->b_addrs[0].bytes};
    size_t pl[] = {n->b_addrs[0].len};
    raw_msg(&in, -1, pa, pl, 1); /* missing type */
    assert_int_equal(a_feed(n, &in), FLARE_ERR_MALFORMED);

    n->a.attempt = 0;
    assert_int_equal(flare_dcutr_responder_stream_open(&n->a, 0), 0);
    static const uint8_t oversize[] = {0x81, 0x20}; /* 4097 */
    assert_int_equal(flare_dcutr_responder_recv(&n->a, oversize, 2, 1, n->a_addrs, 2, &n->a_out),
                     FLARE_ERR_TOO_LARGE);

    n->a.attempt = 0;
    assert_int_equal(flare_dcutr_responder_stream_open(&n->a, 0), 0);
    static const uint8_t overlong[] = {0x80, 0x00};
    assert_int_equal(flare_dcutr_responder_recv(&n->a, overlong, 2, 1, n->a_addrs, 2, &n->a_out),
                     FLARE_ERR_OVERLONG);

    /* CONNECT with only relayed / garbage addresses */
    n->a.attempt = 0;
    assert_int_equal(flare_dcutr_responder_stream_open(&n->a, 0), 0);
    flare_multiaddr relayed =
        flare_test_ma("/ip4/5.6.7.8/tcp/1/p2p/12D3KooWGC6TvWhfapngX6wvJHMYvKpDMXPb3ZnCZ6dMoaMtimQ5/"
                      "p2p-circuit");
    static const uint8_t garbage[] = {0x06, 0x00};
    const uint8_t *ra[] = {relayed.bytes, garbage};
    size_t rl[] = {relayed.len, sizeof(garbage)};
    flare_buf_reset(&in);
    raw_msg(&in, FLARE_DCUTR_CONNECT, ra, rl, 2);
    while (flare_dcutr_responder_poll_event(&n->a, &ev))
        ;
    assert_int_equal(a_feed(n, &in), FLARE_ERR_PROTO);
    ev = a_event(n);
    assert_int_equal(ev.reason, FLARE_DCUTR_REASON_NO_ADDRS);
    assert_int_equal(n->a_out.len, 0);

    /* a good CONNECT but we have nothing to offer */
    n->a.attempt = 0;
    assert_int_equal(flare_dcutr_responder_stream_open(&n->a, 0), 0);
    flare_buf_reset(&in);
    assert_int_equal(flare_dcutr_msg_encode(&in, FLARE_DCUTR_CONNECT, n->b_addrs, 2), 0);
    assert_int_equal(flare_dcutr_responder_recv(&n->a, in.base, in.len, 1, NULL, 0, &n->a_out),
                     FLARE_ERR_REFUSED);

    /* duplicate CONNECT, and bytes after SYNC */
    n->a.attempt = 0;
    assert_int_equal(flare_dcutr_responder_stream_open(&n->a, 0), 0);
    assert_int_equal(a_feed(n, &in), 0);
    assert_true(n->a_out.len > 0);
    assert_int_equal(a_feed(n, &in), FLARE_ERR_PROTO);
    n->a.attempt = 0;
    assert_int_equal(flare_dcutr_responder_stream_open(&n->a, 0), 0);
    assert_int_equal(a_feed(n, &in), 0);
    flare_buf_reset(&in);
    assert_int_equal(flare_dcutr_msg_encode(&in, FLARE_DCUTR_SYNC, NULL, 0), 0);
    assert_int_equal(flare_buf_append_byte(&in, 0x00), 0);
    assert_int_equal(a_feed(n, &in), FLARE_ERR_PROTO);
    /* the SYNC itself was taken: the dial goes ahead */
    int saw_dial = 0;
    while (flare_dcutr_responder_poll_event(&n->a, &ev))
        saw_dial |= ev.type == FLARE_DCUTR_EV_DIAL;
    assert_true(saw_dial);
    assert_int_equal(flare_dcutr_responder_dial_result(&n->a, 1, NULL, 2), 0);
    assert_int_equal(flare_dcutr_responder_dial_result(&n->a, 1, NULL, 2), FLARE_ERR_STATE);

    flare_buf_free(&in);
    flare_buf_free(&sync);
    net_del(n);
}

static void test_initiator_bad_input(void **state)
{
    (void)state;
    net *n = net_new(NULL, MS);
    flare_buf in;
    flare_buf_init(&in, NULL);
    assert_int_equal(flare_dcutr_initiator_recv(&n->b, (const uint8_t *)"x", 1, 0, &n->b_out),
                     FLARE_ERR_STATE);
    assert_int_equal(flare_dcutr_initiator_start(&n->b, 0, NULL, 0, &n->b_out),
                     FLARE_ERR_INVALID_ARG);
    assert_int_equal(flare_dcutr_initiator_dial_result(&n->b, 1, NULL, 0), FLARE_ERR_STATE);

    /* A answers SYNC: a protocol violation ends the punch without retry */
    assert_int_equal(flare_dcutr_initiator_start(&n->b, 0, n->b_addrs, 2, &n->b_out), 0);
    assert_int_equal(flare_dcutr_msg_encode(&in, FLARE_DCUTR_SYNC, NULL, 0), 0);
    flare_buf_reset(&n->b_out);
    assert_int_equal(flare_dcutr_initiator_recv(&n->b, in.base, in.len, 1, &n->b_out),
                     FLARE_ERR_PROTO);
    assert_int_equal(n->b_out.len, 0);
    flare_dcutr_event ev = b_event(n);
    assert_int_equal(ev.type, FLARE_DCUTR_EV_FAILED);
    assert_int_equal(ev.reason, FLARE_DCUTR_REASON_PROTOCOL);
    assert_true(flare_dcutr_initiator_done(&n->b));

    /* CONNECT without usable address */
    assert_int_equal(flare_dcutr_initiator_init(&n->b, NULL, NULL), 0);
    assert_int_equal(flare_dcutr_initiator_start(&n->b, 0, n->b_addrs, 2, &n->b_out), 0);
    flare_buf_reset(&in);
    assert_int_equal(flare_dcutr_msg_encode(&in, FLARE_DCUTR_CONNECT, NULL, 0), 0);
    assert_int_equal(flare_dcutr_initiator_recv(&n->b, in.base, in.len, 1, &n->b_out),
                     FLARE_ERR_PROTO);
    assert_int_equal(b_event(n).reason, FLARE_DCUTR_REASON_NO_ADDRS);

    /* oversize, and a good CONNECT followed by junk */
    assert_int_equal(flare_dcutr_initiator_init(&n->b, NULL, NULL), 0);
    assert_int_equal(flare_dcutr_initiator_start(&n->b, 0, n->b_addrs, 2, &n->b_out), 0);
    static const uint8_t oversize[] = {0xff, 0xff, 0x03};
    assert_int_equal(flare_dcutr_initiator_recv(&n->b, oversize, 3, 1, &n->b_out),
                     FLARE_ERR_TOO_LARGE);
    assert_int_equal(flare_dcutr_initiator_init(&n->b, NULL, NULL), 0);
    assert_int_equal(flare_dcutr_initiator_start(&n->b, 0, n->b_addrs, 2, &n->b_out), 0);
    flare_buf_reset(&in);
    assert_int_equal(flare_dcutr_msg_encode(&in, FLARE_DCUTR_CONNECT, n->a_addrs, 2), 0);
    assert_int_equal(flare_buf_append_byte(&in, 0x02), 0);
    flare_buf_reset(&n->b_out);
    assert_int_equal(flare_dcutr_initiator_recv(&n->b, in.base, in.len, 10, &n->b_out),
                     FLARE_ERR_PROTO);
    assert_int_equal(n->b_out.len, 4); /* SYNC went out; the punch goes on */
    assert_int_equal(flare_dcutr_initiator_expiry(&n->b), 15);
    assert_false(flare_dcutr_initiator_done(&n->b));
    /* A's dial won before our timer: no EV_DIAL any more */
    assert_int_equal(flare_dcutr_initiator_dial_result(&n->b, 1, NULL, 12), 0);
    assert_int_equal(b_event(n).type, FLARE_DCUTR_EV_SUCCESS);
    assert_int_equal(flare_dcutr_initiator_expiry(&n->b), FLARE_TSTAMP_NEVER);
    assert_int_equal(flare_dcutr_initiator_handle_expiry(&n->b, 15), 0);
    assert_int_equal(flare_dcutr_initiator_poll_event(&n->b, &(flare_dcutr_event){0}), 0);
    flare_buf_free(&in);
    net_del(n);
}

static void test_settings(void **state)
{
    (void)state;
    flare_dcutr_initiator b;
    flare_dcutr_settings s;
    flare_dcutr_settings_default(&s);
    s.max_attempts = 300;
    assert_int_equal(flare_dcutr_initiator_init(&b, &s, NULL), FLARE_ERR_INVALID_ARG);
    assert_int_equal(flare_dcutr_initiator_init(&b, NULL, NULL), 0);
    assert_int_equal(b.s.max_attempts, 3);
    assert_int_equal(b.s.dial_timeout, 5 * S);
    assert_int_equal(b.s.stream_timeout, 60 * S);
    assert_int_equal(flare_dcutr_initiator_expiry(&b), FLARE_TSTAMP_NEVER);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codec_vectors),        cmocka_unit_test(test_codec_bad),
        cmocka_unit_test(test_codec_addr_filtering), cmocka_unit_test(test_pump_success),
        cmocka_unit_test(test_pump_fragmented),      cmocka_unit_test(test_retry_then_success),
        cmocka_unit_test(test_give_up_after_three),  cmocka_unit_test(test_stream_timeouts),
        cmocka_unit_test(test_responder_ends),       cmocka_unit_test(test_responder_bad_input),
        cmocka_unit_test(test_initiator_bad_input),  cmocka_unit_test(test_settings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
