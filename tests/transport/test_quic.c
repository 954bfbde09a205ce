/* QUIC core: handshake, streams, loss, reordering, NAT rebinding, close
 * codes, idle timeout and keep-alive, version negotiation, stateless reset
 * and the endpoint's bounds, with endpoints exchanging datagrams in memory. */
#include "transport/quic_pair.h"

static qp_net net;

static int both_established(qp_net *n)
{
    return n->eps[0].established && n->eps[1].established;
}

static int client_closed(qp_net *n)
{
    return n->eps[0].closed > 0;
}

static int both_closed(qp_net *n)
{
    return n->eps[0].closed > 0 && n->eps[1].closed > 0;
}

static flare__quic_conn *connect_pair(qp_net *n)
{
    qp_ep *a = &n->eps[0], *b = &n->eps[1];
    flare__quic_conn *qc;
    assert_int_equal(flare__quic_connect(a->ep, &b->addr, NULL, n->now, &qc), 0);
    assert_true(qp_run_until(n, both_established, 10 * FLARE_NS_PER_S));
    assert_ptr_equal(a->conn, qc);
    assert_int_equal(a->verified, 1);
    assert_int_equal(b->verified, 1);
    assert_false(flare__quic_conn_is_server(qc));
    assert_true(flare__quic_conn_is_server(b->conn));
    return qc;
}

static int setup(void **state)
{
    qp_init(&net, 7);
    qp_add(&net, NULL);
    qp_add(&net, NULL);
    return 0;
}

static int teardown(void **state)
{
    qp_free(&net);
    return 0;
}

static void test_handshake(void **state)
{
    connect_pair(&net);
    assert_int_equal(flare__quic_ep_conns(net.eps[1].ep), 1);
    assert_int_equal(flare__quic_ep_handshakes(net.eps[1].ep), 0);
    flare_ipaddr r;
    flare__quic_conn_remote(net.eps[1].conn, &r);
    assert_true(flare_ipaddr_equal(&r, &net.eps[0].addr));
}

static size_t echoed_len;
static int echo_done(qp_net *n)
{
    return n->eps[0].rx_fin && n->eps[0].rx_len == echoed_len;
}

/* Client sends len bytes and FIN on a new stream; the server echoes. */
static void echo_round(qp_net *n, size_t len, flare_tstamp limit)
{
    qp_ep *a = &n->eps[0], *b = &n->eps[1];
    b->echo = 1;
    flare__quic_stream *st;
    assert_int_equal(flare__quic_stream_open(a->conn, NULL, &st), 0);
    uint8_t *data = malloc(len);
    assert_non_null(data);
    for (size_t i = 0; i < len; i++)
        data[i] = (uint8_t)(i * 31 + (i >> 8));
    size_t off = 0;
    echoed_len = len;
    while (off < len) {
        size_t n1 = len - off < 100000 ? len - off : 100000;
        int rv = flare__quic_stream_write(st, data + off, n1);
        assert_true(rv >= 0);
        off += n1;
        if (rv == 1) { /* above the high mark: let it drain */
            int before = a->writable;
            while (a->writable == before)
                qp_step(n);
        }
    }
    flare__quic_stream_fin(st);
    assert_true(qp_run_until(n, echo_done, limit));
    assert_int_equal(b->rx_len, len);
    assert_memory_equal(b->rx, data, len);
    assert_memory_equal(a->rx, data, len);
    free(data);
    /* Both ends finished: the stream closes on both sides. */
    qp_run_for(n, 100 * FLARE_NS_PER_MS);
    assert_int_equal(a->stream_closes, 1);
    assert_int_equal(b->stream_closes, 1);
}

static void test_stream_echo(void **state)
{
    connect_pair(&net);
    echo_round(&net, 3 << 20, 30 * FLARE_NS_PER_S);
}

static void test_loss_and_reordering(void **state)
{
    net.loss_pct = 5;
    net.reorder = 1;
    connect_pair(&net);
    echo_round(&net, 512 * 1024, 120 * FLARE_NS_PER_S);
    assert_int_equal(net.eps[0].closed + net.eps[1].closed, 0);
}

/* The client's NAT mapping changes mid-transfer (new source port): the
 * connection survives and the server follows the new address. */
static void test_nat_rebinding(void **state)
{
    qp_ep *a = &net.eps[0], *b = &net.eps[1];
    connect_pair(&net);
    echo_round(&net, 64 * 1024, 10 * FLARE_NS_PER_S);
    a->seen.port = 4242;
    a->rx_len = 0;
    a->rx_fin = 0;
    b->rx_len = 0;
    a->stream_closes = b->stream_closes = 0;
    echo_round(&net, 256 * 1024, 30 * FLARE_NS_PER_S);
    flare_ipaddr r;
    flare__quic_conn_remote(b->conn, &r);
    assert_int_equal(r.port, 4242);
    assert_int_equal(a->closed + b->closed, 0);
}

static void test_close_with_code(void **state)
{
    flare__quic_conn *qc = connect_pair(&net);
    flare__quic_conn_close(qc, 42);
    assert_true(qp_run_until(&net, both_closed, 5 * FLARE_NS_PER_S));
    assert_int_equal(net.eps[0].closed_err, FLARE_ERR_CLOSED);
    assert_int_equal(net.eps[1].closed_err, FLARE_ERR_CLOSED);
    assert_int_equal(net.eps[1].closed_code, 42);
    assert_int_equal(flare__quic_ep_conns(net.eps[0].ep), 0);
    assert_int_equal(flare__quic_ep_conns(net.eps[1].ep), 0);
}

static void test_keepalive_and_idle_timeout(void **state)
{
    connect_pair(&net);
    /* Keep-alive (2 s) holds a quiet connection past the idle timeout (5 s). */
    qp_run_for(&net, 20 * FLARE_NS_PER_S);
    assert_int_equal(net.eps[0].closed + net.eps[1].closed, 0);
    /* The network dies: both sides time out. */
    net.blackhole = 1;
    assert_true(qp_run_until(&net, both_closed, 20 * FLARE_NS_PER_S));
    assert_int_equal(net.eps[0].closed_err, FLARE_ERR_TIMEOUT);
    assert_int_equal(net.eps[1].closed_err, FLARE_ERR_TIMEOUT);
}

static void test_verify_refused(void **state)
{
    qp_ep *a = &net.eps[0], *b = &net.eps[1];
    a->refuse = FLARE_ERR_PEER_ID_MISMATCH;
    flare__quic_conn *qc;
    assert_int_equal(flare__quic_connect(a->ep, &b->addr, NULL, net.now, &qc), 0);
    assert_true(qp_run_until(&net, both_closed, 20 * FLARE_NS_PER_S));
    assert_int_equal(a->established + b->established, 0);
    assert_int_equal(a->closed_err, FLARE_ERR_PEER_ID_MISMATCH);
    assert_int_equal(flare__quic_ep_handshakes(b->ep), 0);
}

static void test_server_refuses_client(void **state)
{
    qp_ep *a = &net.eps[0], *b = &net.eps[1];
    b->refuse = FLARE_ERR_PEER_ID_MISMATCH;
    flare__quic_conn *qc;
    assert_int_equal(flare__quic_connect(a->ep, &b->addr, NULL, net.now, &qc), 0);
    assert_true(qp_run_until(&net, both_closed, 20 * FLARE_NS_PER_S));
    assert_int_equal(b->established, 0);
    assert_int_equal(b->closed_err, FLARE_ERR_PEER_ID_MISMATCH);
    assert_int_not_equal(a->closed_err, 0);
}

static void test_version_negotiation(void **state)
{
    qp_ep *a = &net.eps[0], *b = &net.eps[1];
    uint8_t pkt[1200] = {0};
    pkt[0] = 0xc0;
    pkt[1] = 0x1a, pkt[2] = 0x2a, pkt[3] = 0x3a, pkt[4] = 0x4a; /* unknown version */
    pkt[5] = 8;
    memset(pkt + 6, 0x11, 8); /* DCID */
    pkt[14] = 8;
    memset(pkt + 15, 0x22, 8); /* SCID */
    flare__quic_ep_input(b->ep, &a->addr, pkt, sizeof(pkt), net.now);
    assert_int_equal(net.nq, 1);
    const qp_pkt *vn = &net.q[0];
    assert_true(vn->data[0] & 0x80);
    assert_memory_equal(vn->data + 1, "\0\0\0\0", 4); /* version 0: VN */
    assert_int_equal(vn->data[5], 8);
    assert_memory_equal(vn->data + 6, pkt + 15, 8); /* echoes the client's SCID */
    /* It lists v1. */
    int found = 0;
    for (size_t i = 6 + 8 + 1 + 8; i + 4 <= vn->len; i += 4)
        found |= memcmp(vn->data + i, "\0\0\0\1", 4) == 0;
    assert_true(found);
    /* A small datagram gets nothing (no amplification). */
    net.nq = 0;
    flare__quic_ep_input(b->ep, &a->addr, pkt, 600, net.now);
    assert_int_equal(net.nq, 0);
    assert_int_equal(flare__quic_ep_conns(b->ep), 0);
}

static const uint8_t secret[32] = {1, 2, 3, 4, 5};
static void with_secret(flare__quic_config *cfg)
{
    cfg->reset_secret = secret;
}

/* The server restarts (its state is gone, its reset secret persists): the
 * client's next packet draws a Stateless Reset and the client closes at once. */
static void test_stateless_reset(void **state)
{
    qp_free(&net);
    qp_init(&net, 11);
    qp_add(&net, NULL);
    qp_ep *b = qp_add(&net, with_secret);
    connect_pair(&net);
    qp_run_for(&net, 100 * FLARE_NS_PER_MS);
    flare__quic_ep_del(b->ep);
    flare__quic_config cfg;
    qp_config(b, &cfg);
    with_secret(&cfg);
    assert_int_equal(flare__quic_ep_new(&cfg, &b->ep), 0);
    flare__quic_stream *st;
    assert_int_equal(flare__quic_stream_open(net.eps[0].conn, NULL, &st), 0);
    assert_int_equal(flare__quic_stream_write(st, (const uint8_t *)"hello", 5), 0);
    flare_tstamp start = net.now;
    assert_true(qp_run_until(&net, client_closed, 3 * FLARE_NS_PER_S));
    assert_int_equal(net.eps[0].closed_err, FLARE_ERR_RESET);
    assert_true(net.now - start < FLARE_NS_PER_S);
}

static void small_limits(flare__quic_config *cfg)
{
    cfg->settings.max_handshakes = 2;
    cfg->settings.max_streams_in = 4;
}

static int all_connected(qp_net *n)
{
    for (int i = 1; i < n->neps; i++)
        if (!n->eps[i].established)
            return 0;
    return 1;
}

/* Five clients at once, two handshakes allowed: never more than two in
 * progress, and every client gets in as the earlier ones finish. */
static void test_handshake_bound(void **state)
{
    qp_free(&net);
    qp_init(&net, 13);
    qp_ep *srv = qp_add(&net, small_limits);
    for (int i = 0; i < 5; i++) {
        qp_ep *c = qp_add(&net, NULL);
        flare__quic_conn *qc;
        assert_int_equal(flare__quic_connect(c->ep, &srv->addr, NULL, net.now, &qc), 0);
    }
    flare_tstamp end = net.now + 30 * FLARE_NS_PER_S;
    while (!all_connected(&net) && net.now < end) {
        qp_step(&net);
        assert_true(flare__quic_ep_handshakes(srv->ep) <= 2);
    }
    assert_true(all_connected(&net));
    assert_int_equal(flare__quic_ep_conns(srv->ep), 5);
}

static void test_stream_limit(void **state)
{
    qp_free(&net);
    qp_init(&net, 17);
    qp_add(&net, NULL);
    qp_add(&net, small_limits);
    connect_pair(&net);
    flare__quic_stream *st;
    for (int i = 0; i < 4; i++)
        assert_int_equal(flare__quic_stream_open(net.eps[0].conn, NULL, &st), 0);
    assert_int_equal(flare__quic_stream_open(net.eps[0].conn, NULL, &st), FLARE_ERR_LIMIT);
}

static void test_stream_reset(void **state)
{
    qp_ep *a = &net.eps[0], *b = &net.eps[1];
    connect_pair(&net);
    flare__quic_stream *st;
    assert_int_equal(flare__quic_stream_open(a->conn, NULL, &st), 0);
    assert_int_equal(flare__quic_stream_write(st, (const uint8_t *)"abc", 3), 0);
    qp_run_for(&net, 50 * FLARE_NS_PER_MS);
    assert_non_null(b->stream);
    assert_int_equal(b->rx_len, 3);
    flare__quic_stream_reset(st, 7);
    assert_int_equal(flare__quic_stream_write(st, (const uint8_t *)"x", 1), FLARE_ERR_STATE);
    qp_run_for(&net, 200 * FLARE_NS_PER_MS);
    assert_true(b->resets >= 1);
    assert_int_equal(a->stream_closes, 1);
    assert_int_equal(b->stream_closes, 1);
    assert_int_equal(a->closed + b->closed, 0);
}

/* Random datagrams, short and long headers: dropped, nothing kept. */
static void test_garbage(void **state)
{
    qp_ep *a = &net.eps[0], *b = &net.eps[1];
    uint8_t pkt[1500];
    for (int i = 0; i < 2000; i++) {
        size_t len = 1 + flare_prng_next(&net.prng) % sizeof(pkt);
        qp_rand(pkt, len, &net.prng);
        if (i % 2)
            pkt[0] |= 0xc0, pkt[1] = 0, pkt[2] = 0, pkt[3] = 0, pkt[4] = 1; /* v1 long header */
        flare__quic_ep_input(b->ep, &a->addr, pkt, len, net.now);
        net.nq = 0;
    }
    assert_int_equal(flare__quic_ep_conns(b->ep), 0);
    /* The endpoint still works. */
    connect_pair(&net);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_handshake, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_echo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loss_and_reordering, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nat_rebinding, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_with_code, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keepalive_and_idle_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_refuses_client, setup, teardown),
        cmocka_unit_test_setup_teardown(test_version_negotiation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stateless_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handshake_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
