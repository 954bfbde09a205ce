/* DTLS endpoints over an in-memory datagram pipe: handshake, fingerprints,
 * application datagrams, replays on the caller's clock, bad input. */
#include "support/test.h"

#include "transport/webrtc/dtls.h"

#define MS ((flare_tstamp)1000000)
#define T0 ((int64_t)1700000000)

typedef struct pair {
    flare__dtls_cert *ca, *cb;
    flare__dtls *a, *b; /* a: client */
    flare_tstamp now;
    unsigned drop_a, drop_b; /* datagrams to lose in each direction */
    size_t sent_a, sent_b;
} pair;

static flare__dtls_cert *cert(uint64_t seed)
{
    flare_prng p;
    flare_prng_seed(&p, seed);
    flare__dtls_cert *c = NULL;
    assert_int_equal(flare__dtls_cert_generate(&c, flare_prng_rng(&p), T0, T0 + 86400), 0);
    return c;
}

static void setup_pair(pair *p, const uint8_t *fp_for_a, const uint8_t *fp_for_b)
{
    flare__dtls_cfg ca = {.is_client = 1, .cert = p->ca, .expected_fp = fp_for_a};
    flare__dtls_cfg cb = {.is_client = 0, .cert = p->cb, .expected_fp = fp_for_b};
    assert_int_equal(flare__dtls_new(&p->a, &ca, p->now), 0);
    assert_int_equal(flare__dtls_new(&p->b, &cb, p->now), 0);
}

/* Moves queued datagrams both ways until quiet; returns how many moved. */
static size_t pump(pair *p)
{
    uint8_t buf[4096];
    size_t moved = 0;
    for (int progress = 1; progress;) {
        progress = 0;
        long n;
        while ((n = flare__dtls_pop_out(p->a, buf, sizeof(buf))) > 0) {
            progress = 1, moved++, p->sent_a++;
            if (p->drop_a > 0) {
                p->drop_a--;
                continue;
            }
            flare__dtls_input(p->b, buf, (size_t)n, p->now);
        }
        while ((n = flare__dtls_pop_out(p->b, buf, sizeof(buf))) > 0) {
            progress = 1, moved++, p->sent_b++;
            if (p->drop_b > 0) {
                p->drop_b--;
                continue;
            }
            flare__dtls_input(p->a, buf, (size_t)n, p->now);
        }
    }
    return moved;
}

/* Runs the clock to each endpoint's next timer for up to ms. */
static void run(pair *p, flare_tstamp until)
{
    pump(p);
    while (p->now < until) {
        flare_tstamp e = flare__dtls_expiry(p->a), eb = flare__dtls_expiry(p->b);
        if (eb < e)
            e = eb;
        if (e == FLARE_TSTAMP_NEVER || e > until)
            break;
        if (e > p->now)
            p->now = e;
        flare__dtls_handle_expiry(p->a, p->now);
        flare__dtls_handle_expiry(p->b, p->now);
        pump(p);
    }
}

static void free_pair(pair *p)
{
    flare__dtls_del(p->a);
    flare__dtls_del(p->b);
    flare__dtls_cert_del(p->ca);
    flare__dtls_cert_del(p->cb);
}

static void test_handshake_and_data(void **state)
{
    pair p = {.ca = cert(1), .cb = cert(2), .now = 5 * MS};
    setup_pair(&p, flare__dtls_cert_fingerprint(p.cb), flare__dtls_cert_fingerprint(p.ca));
    assert_int_equal(flare__dtls_get_state(p.a), FLARE__DTLS_HANDSHAKING);
    pump(&p);
    assert_int_equal(flare__dtls_get_state(p.a), FLARE__DTLS_CONNECTED);
    assert_int_equal(flare__dtls_get_state(p.b), FLARE__DTLS_CONNECTED);
    assert_memory_equal(flare__dtls_peer_fingerprint(p.a), flare__dtls_cert_fingerprint(p.cb),
                        FLARE__DTLS_FP_LEN);
    assert_memory_equal(flare__dtls_peer_fingerprint(p.b), flare__dtls_cert_fingerprint(p.ca),
                        FLARE__DTLS_FP_LEN);
    /* No handshake timer once connected. */
    assert_true(flare__dtls_expiry(p.a) == FLARE_TSTAMP_NEVER);

    size_t mtu = flare__dtls_data_mtu(p.a);
    assert_true(mtu >= 1100 && mtu < FLARE__DTLS_MTU);
    uint8_t msg[1200], got[2048];
    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (uint8_t)(i * 7);
    assert_int_equal(flare__dtls_send(p.a, msg, mtu), 0);
    assert_int_equal(flare__dtls_send(p.a, msg, 3), 0);
    assert_int_equal(flare__dtls_send(p.a, msg, mtu + 1), FLARE_ERR_TOO_LARGE);
    pump(&p);
    assert_int_equal(flare__dtls_read(p.b, got, sizeof(got)), (long)mtu);
    assert_memory_equal(got, msg, mtu);
    assert_int_equal(flare__dtls_read(p.b, got, sizeof(got)), 3);
    assert_int_equal(flare__dtls_read(p.b, got, sizeof(got)), FLARE_ERR_AGAIN);
    assert_int_equal(flare__dtls_send(p.b, msg, 100), 0);
    pump(&p);
    assert_int_equal(flare__dtls_read(p.a, got, sizeof(got)), 100);

    /* close_notify ends the peer's side. */
    flare__dtls_close(p.a);
    pump(&p);
    assert_int_equal(flare__dtls_get_state(p.b), FLARE__DTLS_CLOSED);
    assert_int_equal(flare__dtls_send(p.a, msg, 1), FLARE_ERR_STATE);
    free_pair(&p);
}

/* Without an expected fingerprint the caller learns the peer's. */
static void test_unknown_peer_reports_fingerprint(void **state)
{
    pair p = {.ca = cert(3), .cb = cert(4)};
    setup_pair(&p, flare__dtls_cert_fingerprint(p.cb), NULL);
    pump(&p);
    assert_int_equal(flare__dtls_get_state(p.b), FLARE__DTLS_CONNECTED);
    assert_memory_equal(flare__dtls_peer_fingerprint(p.b), flare__dtls_cert_fingerprint(p.ca),
                        FLARE__DTLS_FP_LEN);
    free_pair(&p);
}

/* A certificate other than the expected one fails the handshake on both
 * sides that check. */
static void test_wrong_fingerprint_fails(void **state)
{
    pair p = {.ca = cert(5), .cb = cert(6)};
    uint8_t wrong[FLARE__DTLS_FP_LEN];
    memcpy(wrong, flare__dtls_cert_fingerprint(p.cb), sizeof(wrong));
    wrong[0] ^= 1;
    setup_pair(&p, wrong, NULL);
    run(&p, 30000 * MS);
    assert_int_equal(flare__dtls_get_state(p.a), FLARE__DTLS_FAILED);
    assert_int_equal(flare__dtls_error(p.a), FLARE_ERR_PEER_ID_MISMATCH);
    assert_int_not_equal(flare__dtls_get_state(p.b), FLARE__DTLS_CONNECTED);
    assert_null(flare__dtls_peer_fingerprint(p.a));
    free_pair(&p);
}

/* Lost flights are replayed when the caller's clock reaches the timer, and
 * the handshake completes on virtual time alone. */
static void test_loss_replayed_on_caller_clock(void **state)
{
    pair p = {.ca = cert(7), .cb = cert(8), .drop_a = 1, .drop_b = 2};
    setup_pair(&p, NULL, NULL);
    pump(&p);
    assert_int_equal(flare__dtls_get_state(p.a), FLARE__DTLS_HANDSHAKING);
    flare_tstamp e = flare__dtls_expiry(p.a);
    assert_true(e == 1000 * MS);
    run(&p, 20000 * MS);
    assert_int_equal(flare__dtls_get_state(p.a), FLARE__DTLS_CONNECTED);
    assert_int_equal(flare__dtls_get_state(p.b), FLARE__DTLS_CONNECTED);
    assert_true(p.now >= 2000 * MS && p.now < 20000 * MS);
    free_pair(&p);
}

/* A silent peer: the handshake gives up at its deadline. */
static void test_handshake_timeout(void **state)
{
    pair p = {.ca = cert(9), .cb = cert(10), .drop_a = 1000};
    setup_pair(&p, NULL, NULL);
    run(&p, 60000 * MS);
    assert_int_equal(flare__dtls_get_state(p.a), FLARE__DTLS_FAILED);
    assert_int_equal(flare__dtls_error(p.a), FLARE_ERR_TIMEOUT);
    assert_true(p.now == 20000 * MS);
    /* Exponential backoff: 1+2+4+8 s, then the deadline. */
    assert_true(p.sent_a <= 6);
    free_pair(&p);
}

/* Garbage and truncated records are ignored, before and after the
 * handshake; the session keeps working. */
static void test_garbage_ignored(void **state)
{
    pair p = {.ca = cert(11), .cb = cert(12)};
    setup_pair(&p, NULL, NULL);
    flare_prng r;
    flare_prng_seed(&r, 99);
    flare_rng rng = flare_prng_rng(&r);
    uint8_t junk[1500];
    for (int i = 0; i < 200; i++) {
        size_t len = 1 + (size_t)(i * 37 % (int)sizeof(junk));
        rng.fn(junk, len, rng.user);
        if (i % 3 == 0)
            junk[0] = 22, junk[1] = 0xfe, junk[2] = 0xfd; /* looks like a DTLS handshake */
        assert_int_equal(flare__dtls_input(p.b, junk, len, p.now), 0);
    }
    pump(&p);
    assert_int_equal(flare__dtls_get_state(p.b), FLARE__DTLS_CONNECTED);
    for (int i = 0; i < 200; i++) {
        size_t len = 1 + (size_t)(i * 53 % (int)sizeof(junk));
        rng.fn(junk, len, rng.user);
        junk[0] = 23, junk[1] = 0xfe, junk[2] = 0xfd; /* application data */
        flare__dtls_input(p.a, junk, len, p.now);
    }
    uint8_t got[2048];
    assert_int_equal(flare__dtls_read(p.a, got, sizeof(got)), FLARE_ERR_AGAIN);
    assert_int_equal(flare__dtls_send(p.b, (const uint8_t *)"ok", 2), 0);
    pump(&p);
    assert_int_equal(flare__dtls_read(p.a, got, sizeof(got)), 2);
    assert_int_equal(flare__dtls_get_state(p.a), FLARE__DTLS_CONNECTED);
    free_pair(&p);
}

/* The stored certificate keeps its fingerprint (the /certhash). */
static void test_cert_export_import(void **state)
{
    flare__dtls_cert *c = cert(13), *c2 = NULL, *c3 = cert(13);
    flare_buf pem;
    flare_buf_init(&pem, NULL);
    assert_int_equal(flare__dtls_cert_export(c, &pem), 0);
    assert_non_null(memmem(pem.base, pem.len, "BEGIN CERTIFICATE", 17));
    assert_int_equal(flare__dtls_cert_import(&c2, pem.base, pem.len), 0);
    assert_memory_equal(flare__dtls_cert_fingerprint(c), flare__dtls_cert_fingerprint(c2),
                        FLARE__DTLS_FP_LEN);
    /* A new key each time, even from the same seed. */
    assert_memory_not_equal(flare__dtls_cert_fingerprint(c), flare__dtls_cert_fingerprint(c3),
                            FLARE__DTLS_FP_LEN);
    assert_int_equal(flare__dtls_cert_import(&c2, (const uint8_t *)"junk", 4), FLARE_ERR_MALFORMED);
    flare__dtls_cert_del(c2);
    flare__dtls_cert_del(c3);
    /* The imported certificate handshakes. */
    c2 = NULL;
    assert_int_equal(flare__dtls_cert_import(&c2, pem.base, pem.len), 0);
    pair p = {.ca = cert(14), .cb = c2};
    setup_pair(&p, flare__dtls_cert_fingerprint(c), NULL);
    pump(&p);
    assert_int_equal(flare__dtls_get_state(p.a), FLARE__DTLS_CONNECTED);
    free_pair(&p);
    flare__dtls_cert_del(c);
    flare_buf_free(&pem);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake_and_data),
        cmocka_unit_test(test_unknown_peer_reports_fingerprint),
        cmocka_unit_test(test_wrong_fingerprint_fails),
        cmocka_unit_test(test_loss_replayed_on_caller_clock),
        cmocka_unit_test(test_handshake_timeout),
        cmocka_unit_test(test_garbage_ignored),
        cmocka_unit_test(test_cert_export_import),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
