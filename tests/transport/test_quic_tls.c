/* QUIC with libp2p identities: each side presents a libp2p certificate
 * (flare__quic_tls_cred) and checks the other's with the libp2p rules and
 * the expected peer ID; a wrong expectation fails the handshake. Also the
 * stateless-reset secret derivation. */
#include "security/tls/tls_cert.h"
#include "transport/quic_pair.h"

typedef struct ident {
    flare_privkey key;
    flare_peerid id;
    flare_peerid expect; /* what this side expects the peer to be */
    int has_expect;
    flare_peerid got;
} ident;

static int libp2p_verify(qp_ep *e, gnutls_session_t tls)
{
    ident *me = e->ctx;
    flare_pubkey pk;
    return flare__tls_session_verify(tls, 1800000000, me->has_expect ? &me->expect : NULL, &pk,
                                     &me->got);
}

static void make_ident(ident *d, flare_prng *prng)
{
    memset(d, 0, sizeof(*d));
    assert_int_equal(flare_privkey_generate(&d->key, flare_prng_rng(prng)), 0);
    assert_int_equal(flare_peerid_from_pubkey(&d->id, &d->key.pub), 0);
}

static qp_ep *add_ident(qp_net *n, ident *d)
{
    gnutls_certificate_credentials_t cred;
    assert_int_equal(flare__quic_tls_cred(&d->key, 1800000000, flare_prng_rng(&n->prng), &cred), 0);
    qp_ep *e = qp_add_cred(n, NULL, cred);
    e->verify = libp2p_verify;
    e->ctx = d;
    return e;
}

static int settled(qp_net *n)
{
    return (n->eps[0].established && n->eps[1].established) || n->eps[0].closed;
}

static void run(int wrong_expectation)
{
    qp_net net;
    qp_init(&net, 21);
    ident a, b, c;
    make_ident(&a, &net.prng);
    make_ident(&b, &net.prng);
    make_ident(&c, &net.prng);
    qp_ep *ea = add_ident(&net, &a);
    qp_ep *eb = add_ident(&net, &b);
    a.expect = wrong_expectation ? c.id : b.id;
    a.has_expect = 1;
    flare__quic_conn *qc;
    assert_int_equal(flare__quic_connect(ea->ep, &eb->addr, NULL, net.now, &qc), 0);
    assert_true(qp_run_until(&net, settled, 10 * FLARE_NS_PER_S));
    if (!wrong_expectation) {
        assert_true(flare_peerid_equal(&a.got, &b.id));
        assert_true(flare_peerid_equal(&b.got, &a.id));
        assert_int_equal(ea->closed + eb->closed, 0);
    } else {
        assert_int_equal(ea->established, 0);
        assert_int_equal(ea->closed_err, FLARE_ERR_PEER_ID_MISMATCH);
        assert_true(flare_peerid_equal(&a.got, &b.id)); /* who it really was */
    }
    qp_free(&net);
}

static void test_mutual_peer_ids(void **state)
{
    run(0);
}

static void test_expected_peer_mismatch(void **state)
{
    run(1);
}

static void test_reset_secret_stable(void **state)
{
    flare_prng prng;
    flare_prng_seed(&prng, 5);
    ident a, b;
    make_ident(&a, &prng);
    make_ident(&b, &prng);
    uint8_t s1[32], s2[32], s3[32];
    assert_int_equal(flare__quic_reset_secret(&a.key, s1), 0);
    assert_int_equal(flare__quic_reset_secret(&a.key, s2), 0);
    assert_int_equal(flare__quic_reset_secret(&b.key, s3), 0);
    assert_memory_equal(s1, s2, 32);
    assert_memory_not_equal(s1, s3, 32);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mutual_peer_ids),
        cmocka_unit_test(test_expected_peer_mismatch),
        cmocka_unit_test(test_reset_secret_stable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
