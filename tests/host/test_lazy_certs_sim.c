/* The QUIC and WebRTC-direct certificates are made at their transport's
 * first use, not at host creation: hosts that only speak TCP hold none; the
 * first listen, dial or export makes one; a failure to make it is that
 * call's error, and the next call tries again. */
#include <stdlib.h>

#include "support/test.h"

#include "flare/host.h"
#include "flare/sim.h"
#include "flare/sim_world.h"
#include "support/helpers.h"
#include "transport/quic.h"
#include "transport/webrtc/link.h"

#define MS FLARE_NS_PER_MS

typedef flare_test_node lnode;

static void make(flare_sim *sim, lnode *n, const char *name, const char *ip, uint8_t seed)
{
    assert_int_equal(
        flare_test_node_make(sim, flare_sim_internet(sim), n, name, ip, seed, 10 * MS, NULL), 0);
}

static void addr(flare_multiaddr *ma, const char *ip, const char *tail)
{
    char s[128];
    snprintf(s, sizeof(s), "/ip4/%s/%s", ip, tail);
    assert_int_equal(flare_multiaddr_parse(ma, s), 0);
}

static int certs(lnode *n)
{
    return flare__quic_cred_made(n->h) * 2 + flare__webrtc_direct_cert_made(n->h);
}

static void test_tcp_hosts_hold_no_certificates(void **state)
{
    flare_sim *sim = flare_sim_new(1, NULL);
    lnode a, b;
    make(sim, &a, "a", "198.51.100.1", 1);
    make(sim, &b, "b", "198.51.100.2", 2);
    flare_multiaddr ma;
    addr(&ma, a.ip, "tcp/4001");
    assert_int_equal(flare_host_listen(a.h, &ma), 0);
    assert_int_equal(flare_multiaddr_with_peerid(&ma, flare_host_peerid(a.h)), 0);
    (void)flare_test_dial_ok(sim, b.h, &ma, 2000);
    flare_test_run_ms(sim, 500);
    assert_int_equal(certs(&a), 0);
    assert_int_equal(certs(&b), 0);

    /* Exporting the WebRTC-direct certificate makes it, and only it. */
    flare_buf pem;
    flare_buf_init(&pem, NULL);
    assert_int_equal(flare_host_webrtc_cert_pem(a.h, &pem), 0);
    assert_true(pem.len > 0);
    flare_buf_free(&pem);
    assert_int_equal(certs(&a), 1);

    /* A QUIC listen makes a's; a QUIC dial makes b's; both connect. */
    addr(&ma, a.ip, "udp/4001/quic-v1");
    assert_int_equal(flare_host_listen(a.h, &ma), 0);
    assert_int_equal(certs(&a), 3);
    assert_int_equal(flare_multiaddr_with_peerid(&ma, flare_host_peerid(a.h)), 0);
    flare_dial_opts o = {.force_new = 1};
    flare_test_dial r = {0};
    assert_int_equal(flare_host_dial(b.h, &ma, &o, flare_test_dial_cb, &r), 0);
    assert_int_equal(certs(&b), 2);
    flare_test_run_ms(sim, 2000);
    assert_int_equal(r.status, 0);
    flare_test_assert_stack(r.conn, "quic-v1", "tls", "quic");

    /* A WebRTC-direct dial makes b's DTLS certificate; the connection
     * authenticates against the certhash a announced (the exported one). */
    addr(&ma, a.ip, "udp/4002/webrtc-direct");
    assert_int_equal(flare_host_listen(a.h, &ma), 0);
    flare_multiaddr bound[4];
    size_t n = flare_host_listen_addrs(a.h, bound, 4);
    size_t i = 0;
    while (i < n && !flare_multiaddr_has(&bound[i], FLARE_MA_CERTHASH))
        i++;
    assert_true(i < n);
    assert_int_equal(flare_multiaddr_with_peerid(&bound[i], flare_host_peerid(a.h)), 0);
    memset(&r, 0, sizeof(r));
    assert_int_equal(flare_host_dial(b.h, &bound[i], &o, flare_test_dial_cb, &r), 0);
    assert_int_equal(certs(&b), 3);
    flare_test_run_ms(sim, 3000);
    assert_int_equal(r.status, 0);
    assert_string_equal(flare_conn_transport(r.conn), "webrtc-direct");
    flare_host_del(b.h);
    flare_host_del(a.h);
    flare_sim_del(sim);
}

/* A wall clock before 1970 + 1 hour: no QUIC certificate can be made. */
static uint64_t epoch_time(flare_io *io)
{
    (void)io;
    return 0;
}

static void test_certificate_failure_is_the_calls_error(void **state)
{
    flare_sim *sim = flare_sim_new(2, NULL);
    lnode a, b;
    make(sim, &a, "a", "198.51.100.1", 1);
    make(sim, &b, "b", "198.51.100.2", 2);
    flare_io *io = flare_host_io(a.h);
    const flare_io_ops *real = io->ops;
    flare_io_ops broken = *real;
    broken.unix_time = epoch_time;
    io->ops = &broken;
    flare_multiaddr ma;
    addr(&ma, a.ip, "udp/4001/quic-v1");
    assert_int_equal(flare_host_listen(a.h, &ma), FLARE_ERR_INVALID_ARG);
    addr(&ma, b.ip, "udp/4002/quic-v1");
    flare_test_dial r = {0};
    assert_int_equal(flare_host_dial(a.h, &ma, NULL, flare_test_dial_cb, &r),
                     FLARE_ERR_INVALID_ARG);
    flare_test_run_ms(sim, 100);
    assert_int_equal(r.calls, 0);
    assert_int_equal(certs(&a), 0);
    /* The clock is back: the next listen makes it. */
    io->ops = real;
    addr(&ma, a.ip, "udp/4001/quic-v1");
    assert_int_equal(flare_host_listen(a.h, &ma), 0);
    assert_int_equal(certs(&a), 2);
    flare_host_del(b.h);
    flare_host_del(a.h);
    flare_sim_del(sim);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcp_hosts_hold_no_certificates),
        cmocka_unit_test(test_certificate_failure_is_the_calls_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
